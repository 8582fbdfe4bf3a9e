/* The configuration tree: arena, accessors, typed getters, located errors. */
#include "config/config_int.h"
#include "vigil/sys/errors.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ------------------------------------------------------------------ */

#define CHUNK_SIZE  (64u * 1024u)
#define ARENA_ALIGN 16u

struct vigil__config_chunk {
    vigil__config_chunk *next;
    size_t size;
    size_t used;
    size_t pad;
    /* data follows, ARENA_ALIGN-aligned (the header is 32 bytes) */
};

void *vigil__config_arena_alloc(vigil__config_arena *a, size_t size)
{
    if (size > SIZE_MAX - ARENA_ALIGN - sizeof(vigil__config_chunk))
        return NULL;
    size = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    vigil__config_chunk *c = a->head;
    if (!c || c->size - c->used < size) {
        if (size > CHUNK_SIZE / 4) {
            /* A large block gets a chunk of its own, behind the current one,
             * so the current chunk keeps serving small allocations. */
            vigil__config_chunk *big = vigil__malloc(sizeof(*big) + size);
            if (!big)
                return NULL;
            big->size = big->used = size;
            if (c) {
                big->next = c->next;
                c->next = big;
            } else {
                big->next = NULL;
                a->head = big;
            }
            return big + 1;
        }
        c = vigil__malloc(sizeof(*c) + CHUNK_SIZE);
        if (!c)
            return NULL;
        c->size = CHUNK_SIZE;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = (char *)(c + 1) + c->used;
    c->used += size;
    return p;
}

void vigil__config_arena_free(vigil__config_arena *a)
{
    vigil__config_chunk *c = a->head;
    while (c) {
        vigil__config_chunk *next = c->next;
        vigil__free(c);
        c = next;
    }
    a->head = NULL;
}

/* ---- located errors -------------------------------------------------------- */

#define PATH_QUOTE_MAX 200
#define TEXT_QUOTE_MAX 64

int vigil__config_fail(const char *file, unsigned int line, unsigned int col, const char *path,
                       int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (path && *path) {
        size_t plen = strlen(path);
        if (plen > PATH_QUOTE_MAX) {
            /* Keep the end of the path, from a character boundary. */
            const char *tail = path + plen - PATH_QUOTE_MAX;
            while (((unsigned char)*tail & 0xC0) == 0x80)
                tail++;
            return vigil__error_set_at(code, file, line, col, "...%s: %s", tail, msg);
        }
        return vigil__error_set_at(code, file, line, col, "%s: %s", path, msg);
    }
    return vigil__error_set_at(code, file, line, col, "%s", msg);
}

static int node_fail(const vigil_config_node *n, int code, const char *fmt, ...)
    VIGIL__PRINTF(3, 4);

static int node_fail(const vigil_config_node *n, int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return vigil__config_fail(n->file, n->line, n->column, n->path, code, "%s", msg);
}

/* Re-records the current error (from a scalar parser) with the node's location;
 * VIGIL_OK passes through. */
static int node_relocate(const vigil_config_node *n, int code)
{
    char msg[1024];
    if (code == VIGIL_OK || code == VIGIL_ENOMEM)
        return code;
    snprintf(msg, sizeof(msg), "%s", vigil_error_last()->message);
    return vigil__config_fail(n->file, n->line, n->column, n->path, code, "%s", msg);
}

/* "got a map", "got a list", "got null", or got "text" (clipped). */
static const char *got(const vigil_config_node *n, char *buf, size_t size)
{
    switch (n->kind) {
    case VIGIL_CONFIG_MAP: return "a map";
    case VIGIL_CONFIG_LIST: return "a list";
    case VIGIL_CONFIG_NULL: return "null";
    case VIGIL_CONFIG_SCALAR: break;
    }
    size_t len = strlen(n->scalar);
    if (len + 3 <= size && len < TEXT_QUOTE_MAX)
        snprintf(buf, size, "\"%s\"", n->scalar);
    else {
        /* Clip on a character boundary so the message stays valid UTF-8. */
        int keep = TEXT_QUOTE_MAX - 4;
        while (keep > 0 && ((unsigned char)n->scalar[keep] & 0xC0) == 0x80)
            keep--;
        snprintf(buf, size, "\"%.*s...\"", keep, n->scalar);
    }
    return buf;
}

/* ---- configuration and nodes ------------------------------------------------- */

void vigil_config_free(vigil_config *config)
{
    if (!config)
        return;
    vigil__config_arena_free(&config->arena);
    vigil__free(config->docs);
    vigil__free(config->file);
    vigil__free(config);
}

size_t vigil_config_document_count(const vigil_config *config)
{
    return config ? config->ndocs : 0;
}

const vigil_config_node *vigil_config_root(const vigil_config *config, size_t index)
{
    if (!config || index >= config->ndocs)
        return NULL;
    return config->docs[index];
}

const char *vigil_config_file(const vigil_config *config)
{
    return config ? config->file : NULL;
}

vigil_config_kind vigil_config_node_kind(const vigil_config_node *node)
{
    return node ? node->kind : VIGIL_CONFIG_NULL;
}

const char *vigil_config_node_path(const vigil_config_node *node)
{
    return node ? node->path : NULL;
}

const char *vigil_config_node_file(const vigil_config_node *node)
{
    return node ? node->file : NULL;
}

unsigned int vigil_config_node_line(const vigil_config_node *node)
{
    return node ? node->line : 0;
}

unsigned int vigil_config_node_column(const vigil_config_node *node)
{
    return node ? node->column : 0;
}

const char *vigil_config_node_scalar(const vigil_config_node *node)
{
    return node && node->kind == VIGIL_CONFIG_SCALAR ? node->scalar : NULL;
}

size_t vigil_config_node_len(const vigil_config_node *node)
{
    if (!node || (node->kind != VIGIL_CONFIG_LIST && node->kind != VIGIL_CONFIG_MAP))
        return 0;
    return node->len;
}

const vigil_config_node *vigil_config_node_at(const vigil_config_node *node, size_t index)
{
    if (!node || (node->kind != VIGIL_CONFIG_LIST && node->kind != VIGIL_CONFIG_MAP) ||
        index >= node->len)
        return NULL;
    return node->entries[index].node;
}

const char *vigil_config_node_key_at(const vigil_config_node *node, size_t index)
{
    if (!node || node->kind != VIGIL_CONFIG_MAP || index >= node->len)
        return NULL;
    return node->entries[index].key;
}

static const vigil__config_entry *find_entry(const vigil_config_node *map, const char *key)
{
    if (!map || !key || map->kind != VIGIL_CONFIG_MAP)
        return NULL;
    if (map->index) {
        size_t lo = 0, hi = map->len;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            const vigil__config_entry *e = &map->entries[map->index[mid]];
            int c = strcmp(e->key, key);
            if (c == 0)
                return e;
            if (c < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        return NULL;
    }
    for (size_t i = 0; i < map->len; i++)
        if (strcmp(map->entries[i].key, key) == 0)
            return &map->entries[i];
    return NULL;
}

const vigil_config_node *vigil_config_node_get(const vigil_config_node *map, const char *key)
{
    const vigil__config_entry *e = find_entry(map, key);
    return e ? e->node : NULL;
}

/* ---- key checks ------------------------------------------------------------ */

/* Edit distance, for "did you mean" hints; only for short keys. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t row[33];
    if (la > 32 || lb > 32)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

int vigil_config_expect_keys(const vigil_config_node *map, const char *const *allowed)
{
    if (!map || map->kind == VIGIL_CONFIG_NULL)
        return VIGIL_OK;
    if (!allowed)
        return vigil__error_set(VIGIL_EINVAL, "vigil_config_expect_keys: NULL list of keys");
    if (map->kind != VIGIL_CONFIG_MAP) {
        char buf[80];
        return node_fail(map, VIGIL_ETYPE, "expected a map, got %s", got(map, buf, sizeof(buf)));
    }
    for (size_t i = 0; i < map->len; i++) {
        const vigil__config_entry *e = &map->entries[i];
        const char *best = NULL;
        size_t best_d = 3; /* suggest only within two edits */
        int found = 0;
        for (const char *const *k = allowed; *k; k++) {
            if (strcmp(*k, e->key) == 0) {
                found = 1;
                break;
            }
            size_t d = edit_distance(*k, e->key);
            if (d < best_d) {
                best_d = d;
                best = *k;
            }
        }
        if (found)
            continue;
        if (best)
            return vigil__config_fail(map->file, e->line, e->column, e->node->path,
                                      VIGIL_EUNKNOWNKEY, "unknown key (did you mean \"%s\"?)",
                                      best);
        return vigil__config_fail(map->file, e->line, e->column, e->node->path, VIGIL_EUNKNOWNKEY,
                                  "unknown key");
    }
    return VIGIL_OK;
}

int vigil_config_require(const vigil_config_node *map, const char *key)
{
    if (!key)
        return vigil__error_set(VIGIL_EINVAL, "vigil_config_require: NULL key");
    if (!map)
        return vigil__error_set(VIGIL_EMISSING, "missing required key \"%s\"", key);
    if (map->kind != VIGIL_CONFIG_MAP && map->kind != VIGIL_CONFIG_NULL) {
        char buf[80];
        return node_fail(map, VIGIL_ETYPE, "expected a map, got %s", got(map, buf, sizeof(buf)));
    }
    const vigil__config_entry *e = find_entry(map, key);
    if (!e)
        return node_fail(map, VIGIL_EMISSING, "missing required key \"%s\"", key);
    if (e->node->kind == VIGIL_CONFIG_NULL)
        return node_fail(e->node, VIGIL_EMISSING, "required key \"%s\" has no value", key);
    return VIGIL_OK;
}

int vigil_error_set_at(int code, const vigil_config_node *node, const char *message)
{
    if (code >= 0) /* a failure is never reported as success */
        code = VIGIL_ERROR;
    if (!node)
        return vigil_error_set(code, message);
    return node_fail(node, code, "%s", message ? message : vigil_strerror(code));
}

/* ---- typed getters of a node ----------------------------------------------- */

/* Fails unless `node` is present and of `kind`; what is "a map", "a string", ... */
static int expect_kind(const vigil_config_node *node, vigil_config_kind kind, const char *what)
{
    char buf[80];
    if (!node)
        return vigil__error_set(VIGIL_EMISSING, "missing value (expected %s)", what);
    if (node->kind != kind)
        return node_fail(node, VIGIL_ETYPE, "expected %s, got %s", what,
                         got(node, buf, sizeof(buf)));
    return VIGIL_OK;
}

/* The text of a scalar node for the converter named `fn`, which writes to `dst`;
 * what is "a string", "an integer", ... */
static int scalar_of(const char **out, const void *dst, const char *fn, const vigil_config_node *n,
                     const char *what)
{
    if (!dst)
        return vigil__error_set(VIGIL_EINVAL, "%s: NULL out", fn);
    int rc = expect_kind(n, VIGIL_CONFIG_SCALAR, what);
    if (rc == VIGIL_OK)
        *out = n->scalar;
    return rc;
}

int vigil_config_string(const char **out, const vigil_config_node *node)
{
    return scalar_of(out, out, "vigil_config_string", node, "a string");
}

int vigil_config_int(int64_t *out, const vigil_config_node *node)
{
    const char *s = NULL;
    char buf[80];
    int rc = scalar_of(&s, out, "vigil_config_int", node, "an integer");
    if (rc)
        return rc;
    const char *p = s;
    int neg = 0;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    if (*p < '0' || *p > '9')
        return node_fail(node, VIGIL_EVALUE, "expected an integer, got %s",
                         got(node, buf, sizeof(buf)));
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1u : (uint64_t)INT64_MAX;
    uint64_t v = 0;
    int over = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (limit - d) / 10)
            over = 1;
        else
            v = v * 10 + d;
    }
    if (*p)
        return node_fail(node, VIGIL_EVALUE, "expected an integer, got %s",
                         got(node, buf, sizeof(buf)));
    if (over)
        return node_fail(node, VIGIL_ERANGE, "expected an integer from %lld to %lld, got %s",
                         (long long)INT64_MIN, (long long)INT64_MAX, got(node, buf, sizeof(buf)));
    if (neg)
        *out = v == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)v;
    else
        *out = (int64_t)v;
    return VIGIL_OK;
}

int vigil_config_double(double *out, const vigil_config_node *node)
{
    const char *s = NULL;
    char buf[80];
    int rc = scalar_of(&s, out, "vigil_config_double", node, "a number");
    if (rc)
        return rc;
    /* Decimal notation only: optional '-', digits, fraction, exponent. No
     * hexadecimal, inf or nan, which strtod() would accept. */
    const char *p = s;
    int digits = 0;
    if (*p == '-')
        p++;
    for (; *p; p++) {
        if (*p >= '0' && *p <= '9')
            digits = 1;
        else if (*p != '.' && *p != 'e' && *p != 'E' && *p != '-' && *p != '+')
            break;
    }
    char *end = NULL;
    double v = 0;
    if (!*p && digits && *s != '+') {
        errno = 0;
        v = strtod(s, &end);
    }
    if (!end || end == s || *end)
        return node_fail(node, VIGIL_EVALUE, "expected a number, got %s",
                         got(node, buf, sizeof(buf)));
    if (!isfinite(v))
        return node_fail(node, VIGIL_ERANGE, "expected a finite number, got %s",
                         got(node, buf, sizeof(buf)));
    *out = v;
    return VIGIL_OK;
}

int vigil_config_bool(int *out, const vigil_config_node *node)
{
    static const struct {
        const char *text;
        int value;
    } words[] = {{"true", 1}, {"false", 0}, {"yes", 1}, {"no", 0}, {"on", 1}, {"off", 0}};
    const char *s = NULL;
    char buf[80];
    int rc = scalar_of(&s, out, "vigil_config_bool", node, "a boolean");
    if (rc)
        return rc;
    for (size_t i = 0; i < VIGIL__ARRAY_LEN(words); i++) {
        if (strcmp(s, words[i].text) == 0) {
            *out = words[i].value;
            return VIGIL_OK;
        }
    }
    return node_fail(node, VIGIL_EVALUE, "expected a boolean (true/false, yes/no, on/off), got %s",
                     got(node, buf, sizeof(buf)));
}

int vigil_config_duration(int64_t *out_ms, const vigil_config_node *node)
{
    const char *s = NULL;
    int rc = scalar_of(&s, out_ms, "vigil_config_duration", node, "a duration");
    return rc ? rc : node_relocate(node, vigil_scalar_parse_duration(out_ms, s));
}

int vigil_config_size(uint64_t *out_bytes, const vigil_config_node *node)
{
    const char *s = NULL;
    int rc = scalar_of(&s, out_bytes, "vigil_config_size", node, "a size");
    return rc ? rc : node_relocate(node, vigil_scalar_parse_size(out_bytes, s));
}

int vigil_config_rate(double *out_per_second, const vigil_config_node *node)
{
    const char *s = NULL;
    int rc = scalar_of(&s, out_per_second, "vigil_config_rate", node, "a rate");
    return rc ? rc : node_relocate(node, vigil_scalar_parse_rate(out_per_second, s));
}

int vigil_config_percent(double *out_ratio, const vigil_config_node *node)
{
    const char *s = NULL;
    int rc = scalar_of(&s, out_ratio, "vigil_config_percent", node, "a percentage");
    return rc ? rc : node_relocate(node, vigil_scalar_parse_percent(out_ratio, s));
}

int vigil_config_list(const vigil_config_node *node)
{
    return expect_kind(node, VIGIL_CONFIG_LIST, "a list");
}

int vigil_config_map(const vigil_config_node *node)
{
    return expect_kind(node, VIGIL_CONFIG_MAP, "a map");
}

/* ---- getters of a map entry with a default -------------------------------- */

/* Finds `key` in `map`. *out is the value, or NULL when it is absent or null: then `dflt`
 * (`size` bytes) has been copied to `dst`. */
static int lookup(const vigil_config_node **out, const vigil_config_node *map, const char *key,
                  void *dst, const void *dflt, size_t size)
{
    *out = NULL;
    if (!dst || !key)
        return vigil__error_set(VIGIL_EINVAL, "vigil_config_get_*: NULL argument");
    if (map && map->kind != VIGIL_CONFIG_NULL) {
        int rc = expect_kind(map, VIGIL_CONFIG_MAP, "a map");
        if (rc)
            return rc;
        const vigil_config_node *v = vigil_config_node_get(map, key);
        if (v && v->kind != VIGIL_CONFIG_NULL)
            *out = v;
    }
    if (!*out)
        memcpy(dst, dflt, size);
    return VIGIL_OK;
}

int vigil_config_get_string(const char **out, const vigil_config_node *map, const char *key,
                            const char *dflt)
{
    const vigil_config_node *v;
    int rc = lookup(&v, map, key, out, &dflt, sizeof(dflt));
    return rc || !v ? rc : vigil_config_string(out, v);
}

int vigil_config_get_int(int64_t *out, const vigil_config_node *map, const char *key, int64_t dflt)
{
    const vigil_config_node *v;
    int rc = lookup(&v, map, key, out, &dflt, sizeof(dflt));
    return rc || !v ? rc : vigil_config_int(out, v);
}

int vigil_config_get_double(double *out, const vigil_config_node *map, const char *key, double dflt)
{
    const vigil_config_node *v;
    int rc = lookup(&v, map, key, out, &dflt, sizeof(dflt));
    return rc || !v ? rc : vigil_config_double(out, v);
}

int vigil_config_get_bool(int *out, const vigil_config_node *map, const char *key, int dflt)
{
    const vigil_config_node *v;
    int rc = lookup(&v, map, key, out, &dflt, sizeof(dflt));
    return rc || !v ? rc : vigil_config_bool(out, v);
}

int vigil_config_get_duration(int64_t *out_ms, const vigil_config_node *map, const char *key,
                              int64_t dflt)
{
    const vigil_config_node *v;
    int rc = lookup(&v, map, key, out_ms, &dflt, sizeof(dflt));
    return rc || !v ? rc : vigil_config_duration(out_ms, v);
}

int vigil_config_get_size(uint64_t *out_bytes, const vigil_config_node *map, const char *key,
                          uint64_t dflt)
{
    const vigil_config_node *v;
    int rc = lookup(&v, map, key, out_bytes, &dflt, sizeof(dflt));
    return rc || !v ? rc : vigil_config_size(out_bytes, v);
}

int vigil_config_get_rate(double *out_per_second, const vigil_config_node *map, const char *key,
                          double dflt)
{
    const vigil_config_node *v;
    int rc = lookup(&v, map, key, out_per_second, &dflt, sizeof(dflt));
    return rc || !v ? rc : vigil_config_rate(out_per_second, v);
}

int vigil_config_get_percent(double *out_ratio, const vigil_config_node *map, const char *key,
                             double dflt)
{
    const vigil_config_node *v;
    int rc = lookup(&v, map, key, out_ratio, &dflt, sizeof(dflt));
    return rc || !v ? rc : vigil_config_percent(out_ratio, v);
}
