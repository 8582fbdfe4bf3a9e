/*
 * YAML → node tree, with libyaml's event parser. The only file of libvigil
 * that includes yaml.h.
 *
 * The tree is built from the event stream with an explicit stack of open
 * containers (never by recursion), so nesting is checked as events arrive
 * and a 100,000-deep input is refused at depth max_depth + 1. Aliases are
 * expanded as copies (iteratively, with an explicit work list), each copied
 * node counted against max_nodes, so an alias bomb fails fast.
 *
 * Memory: every node, string and array of the tree lives in the
 * configuration's arena (tree.c), through vigil__malloc. libyaml allocates
 * its own parser state, tokens and events with malloc(3): it has no
 * allocator hooks, so those allocations bypass vigil_allocator_set(). They
 * are bounded by the input size (max_file_size) and released before the
 * load returns.
 */
#include "core/hash.h"
#include "config/config_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#define DEFAULT_MAX_FILE  ((size_t)4 * 1024 * 1024)
#define DEFAULT_MAX_DEPTH 64u
#define DEFAULT_MAX_NODES ((size_t)100000)
/* Keys, expanded values and paths of the tree may take this many times
 * max_file_size bytes in all (paths grow with depth, aliases copy paths). */
#define TEXT_BUDGET_FACTOR 16
#define KEY_QUOTE_MAX      64
#define MAX_ANCHORS        10000

typedef struct {
    size_t max_file;
    size_t max_nodes;
    size_t max_text;
    unsigned int max_depth;
    int no_env;
    vigil_getenv_cb getenv;
    void *getenv_payload;
} limits;

/* An open list or map. `items` is a scratch vector kept for reuse by the
 * next container opened at the same depth. */
typedef struct {
    vigil_config_node *node;
    vigil__config_entry *items;
    size_t len;
    size_t cap;
    const char *key; /* maps: the key waiting for its value */
    unsigned int kline;
    unsigned int kcol;
    int has_key;
} frame;

typedef struct {
    char *name;
    vigil_config_node *node;
} anchor_slot;

typedef struct {
    const char *key;
    size_t idx;
} sort_item;

typedef struct {
    const vigil_config_node *src;
    vigil_config_node *dst;
    size_t level; /* containers enclosing dst */
} copy_item;

typedef struct {
    vigil_config *cfg;
    const char *file;
    limits lim;
    size_t nodes;
    size_t text;
    unsigned int line; /* of the current event */
    unsigned int col;
    frame *frames;
    size_t nframes;
    size_t frames_cap;
    vigil_config_node *root;
    anchor_slot *anchors; /* open addressing, power-of-two capacity */
    size_t anchors_cap;
    size_t nanchors;
    vigil_buf exp;
    sort_item *sort;
    size_t sort_cap;
    copy_item *copy;
    size_t copy_cap;
    size_t docs_cap;
} loader;

/* ---- options ---------------------------------------------------------------- */

int vigil_config_options_init(vigil_config_options *opts, unsigned int version)
{
    if (!opts)
        return vigil__error_set(VIGIL_EINVAL, "vigil_config_options_init: NULL options");
    if (vigil__version_check("config options", version, VIGIL_CONFIG_OPTIONS_VERSION))
        return VIGIL_EVERSION;
    memset(opts, 0, sizeof(*opts));
    opts->version = version;
    return VIGIL_OK;
}

static int resolve(limits *l, const vigil_config_options *o)
{
    memset(l, 0, sizeof(*l));
    if (o && vigil__version_check("config options", o->version, VIGIL_CONFIG_OPTIONS_VERSION))
        return VIGIL_EVERSION;
    l->max_file = o && o->max_file_size ? o->max_file_size : DEFAULT_MAX_FILE;
    if (l->max_file > SIZE_MAX / 2)
        l->max_file = SIZE_MAX / 2;
    l->max_depth = o && o->max_depth ? o->max_depth : DEFAULT_MAX_DEPTH;
    l->max_nodes = o && o->max_nodes ? o->max_nodes : DEFAULT_MAX_NODES;
    l->max_text =
        l->max_file > SIZE_MAX / TEXT_BUDGET_FACTOR ? SIZE_MAX : l->max_file * TEXT_BUDGET_FACTOR;
    if (o) {
        l->no_env = o->no_env;
        l->getenv = o->getenv;
        l->getenv_payload = o->getenv_payload;
    }
    return VIGIL_OK;
}

/* ---- helpers ----------------------------------------------------------------- */

static unsigned int to_uint(size_t v)
{
    return v >= (size_t)UINT32_MAX ? UINT32_MAX : (unsigned int)v;
}

/* 1-based line and column (in characters) of byte `off` of `text`. */
static void locate_offset(const char *text, size_t len, size_t off, unsigned int *line,
                          unsigned int *col)
{
    size_t l = 1, c = 1, i = 0;
    if (off > len)
        off = len;
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0 && off >= 3)
        i = 3; /* a byte-order mark takes no column */
    for (; i < off; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (ch == '\n' || (ch == '\r' && (i + 1 >= len || text[i + 1] != '\n'))) {
            l++;
            c = 1;
        } else if ((ch & 0xC0) != 0x80) {
            c++;
        }
    }
    *line = to_uint(l);
    *col = to_uint(c);
}

/* Length of the UTF-8 sequence a lead byte announces, 0 when it cannot lead. */
static size_t utf8_seq_len(unsigned char c)
{
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return 2;
    if (c >= 0xE0 && c <= 0xEF)
        return 3;
    if (c >= 0xF0 && c <= 0xF4)
        return 4;
    return 0;
}

/* The whole input must be UTF-8 without NUL bytes. Checked here so that the
 * error has a line and column, and so that libyaml, which guesses the
 * encoding from a byte-order mark, never sees UTF-16 (FF FE and FE FF are not
 * UTF-8); a UTF-8 byte-order mark is skipped by libyaml. */
static int check_encoding(const char *file, const char *text, size_t len)
{
    size_t i = 0;
    unsigned int line, col;
    while (i < len) {
        unsigned char c = (unsigned char)text[i];
        if (c == 0) {
            locate_offset(text, len, i, &line, &col);
            return vigil__error_set_at(VIGIL_EENCODING, file, line, col,
                                       "NUL byte in the file (YAML must be UTF-8 text)");
        }
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n = utf8_seq_len(c);
        if (!n || n > len - i || !vigil__utf8_valid(text + i, n)) {
            locate_offset(text, len, i, &line, &col);
            return vigil__error_set_at(VIGIL_EENCODING, file, line, col,
                                       "invalid UTF-8 (byte 0x%02X)", c);
        }
        i += n;
    }
    return VIGIL_OK;
}

static int fail(loader *L, const char *path, int code, const char *fmt, ...) VIGIL__PRINTF(4, 5);

static int fail(loader *L, const char *path, int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return vigil__config_fail(L->file, L->line, L->col, path, code, "%s", msg);
}

/* Allocates `n` bytes of text (keys, values, paths) against the budget. */
static char *text_alloc(loader *L, size_t n, const char *path, int *rc)
{
    if (n > L->lim.max_text - L->text) {
        *rc = fail(L, path, VIGIL_ELIMIT,
                   "the configuration needs more than %zu bytes of keys, values and paths "
                   "(%d x max_file_size)",
                   L->lim.max_text, TEXT_BUDGET_FACTOR);
        return NULL;
    }
    char *p = vigil__config_arena_alloc(&L->cfg->arena, n);
    if (!p) {
        *rc = vigil__error_oom();
        return NULL;
    }
    L->text += n;
    *rc = VIGIL_OK;
    return p;
}

/* Keys made of letters, digits, '_' and '-' are written `parent.key`;
 * others `parent["key"]`, with '"' and '\' escaped. */
static int simple_key(const char *k)
{
    if (!*k)
        return 0;
    for (; *k; k++) {
        char c = *k;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static int make_path(loader *L, const char *parent, const char *key, size_t index, const char **out)
{
    size_t plen = strlen(parent), need;
    char idx[32];
    int rc, simple = 0;
    if (key) {
        simple = simple_key(key);
        if (simple) {
            need = plen + (plen ? 1 : 0) + strlen(key);
        } else {
            need = plen + 4;
            for (const char *k = key; *k; k++) {
                unsigned char c = (unsigned char)*k;
                need += (c == '"' || c == '\\') ? 2 : c < 0x20 ? 4 : 1;
            }
        }
    } else {
        need = plen + (size_t)snprintf(idx, sizeof(idx), "[%zu]", index);
    }
    char *p = text_alloc(L, need + 1, parent, &rc);
    if (!p)
        return rc;
    memcpy(p, parent, plen);
    char *w = p + plen;
    if (!key) {
        memcpy(w, idx, need - plen);
        w += need - plen;
    } else if (simple) {
        if (plen)
            *w++ = '.';
        size_t klen = strlen(key);
        memcpy(w, key, klen);
        w += klen;
    } else {
        static const char hex[] = "0123456789abcdef";
        *w++ = '[';
        *w++ = '"';
        for (const char *k = key; *k; k++) {
            unsigned char c = (unsigned char)*k;
            if (c == '"' || c == '\\') {
                *w++ = '\\';
                *w++ = (char)c;
            } else if (c < 0x20) {
                *w++ = '\\';
                *w++ = 'x';
                *w++ = hex[c >> 4];
                *w++ = hex[c & 15];
            } else {
                *w++ = (char)c;
            }
        }
        *w++ = '"';
        *w++ = ']';
    }
    *w = '\0';
    *out = p;
    return VIGIL_OK;
}

static int new_node(loader *L, vigil_config_kind kind, unsigned int line, unsigned int col,
                    const char *path, vigil_config_node **out)
{
    if (L->nodes >= L->lim.max_nodes)
        return fail(L, path, VIGIL_ELIMIT,
                    "more than %zu nodes (max_nodes; an alias counts as a copy of its anchor)",
                    L->lim.max_nodes);
    vigil_config_node *n = vigil__config_arena_alloc(&L->cfg->arena, sizeof(*n));
    if (!n)
        return vigil__error_oom();
    L->nodes++;
    memset(n, 0, sizeof(*n));
    n->kind = kind;
    n->line = line;
    n->column = col;
    n->file = L->file;
    n->path = path;
    *out = n;
    return VIGIL_OK;
}

/* Path of a node about to be added at the current position. */
static int position_path(loader *L, const char **path)
{
    if (!L->nframes) {
        *path = "";
        return VIGIL_OK;
    }
    frame *f = &L->frames[L->nframes - 1];
    if (f->node->kind == VIGIL_CONFIG_MAP)
        return make_path(L, f->node->path, f->key, 0, path);
    return make_path(L, f->node->path, NULL, f->len, path);
}

static int attach(loader *L, vigil_config_node *n)
{
    if (!L->nframes) {
        L->root = n;
        return VIGIL_OK;
    }
    frame *f = &L->frames[L->nframes - 1];
    int rc = vigil__array_grow((void **)&f->items, &f->cap, f->len + 1, sizeof(*f->items));
    if (rc)
        return rc;
    vigil__config_entry *e = &f->items[f->len++];
    if (f->node->kind == VIGIL_CONFIG_MAP) {
        e->key = f->key;
        e->line = f->kline;
        e->column = f->kcol;
    } else {
        e->key = NULL;
        e->line = n->line;
        e->column = n->column;
    }
    e->node = n;
    f->has_key = 0;
    f->key = NULL;
    return VIGIL_OK;
}

static int is_key_position(const loader *L)
{
    if (!L->nframes)
        return 0;
    const frame *f = &L->frames[L->nframes - 1];
    return f->node->kind == VIGIL_CONFIG_MAP && !f->has_key;
}

/* ---- anchors ------------------------------------------------------------------ */

/* Anchors are per document: the table is dropped at each document boundary,
 * so that many small documents never rescan one large table. */
static void anchors_reset(loader *L)
{
    for (size_t i = 0; i < L->anchors_cap; i++)
        vigil__free(L->anchors[i].name);
    vigil__free(L->anchors);
    L->anchors = NULL;
    L->anchors_cap = 0;
    L->nanchors = 0;
}

static anchor_slot *anchor_slot_for(anchor_slot *slots, size_t cap, const char *name)
{
    size_t i = (size_t)vigil__hash_str(name) & (cap - 1);
    while (slots[i].name && strcmp(slots[i].name, name) != 0)
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

static vigil_config_node *anchor_find(loader *L, const char *name)
{
    if (!L->anchors_cap)
        return NULL;
    anchor_slot *s = anchor_slot_for(L->anchors, L->anchors_cap, name);
    return s->name ? s->node : NULL;
}

/* A later definition of the same anchor replaces the earlier one. */
static int anchor_define(loader *L, const char *name, vigil_config_node *n)
{
    /* The table is an unkeyed hash: a cap keeps crafted collisions cheap. */
    if (L->nanchors >= MAX_ANCHORS && !anchor_find(L, name))
        return fail(L, n->path, VIGIL_ELIMIT, "more than %d anchors in one document", MAX_ANCHORS);
    if ((L->nanchors + 1) * 2 > L->anchors_cap) {
        size_t ncap = L->anchors_cap ? L->anchors_cap * 2 : 16;
        anchor_slot *ns = vigil__calloc(ncap, sizeof(*ns));
        if (!ns)
            return vigil__error_oom();
        for (size_t i = 0; i < L->anchors_cap; i++)
            if (L->anchors[i].name)
                *anchor_slot_for(ns, ncap, L->anchors[i].name) = L->anchors[i];
        vigil__free(L->anchors);
        L->anchors = ns;
        L->anchors_cap = ncap;
    }
    anchor_slot *s = anchor_slot_for(L->anchors, L->anchors_cap, name);
    if (!s->name) {
        s->name = vigil__strdup(name);
        if (!s->name)
            return vigil__error_oom();
        L->nanchors++;
    }
    s->node = n;
    return VIGIL_OK;
}

/* ---- alias expansion ----------------------------------------------------------- */

static int clone_node(loader *L, const vigil_config_node *s, const char *path, size_t level,
                      vigil_config_node **out)
{
    int container = s->kind == VIGIL_CONFIG_LIST || s->kind == VIGIL_CONFIG_MAP;
    if (container && level + 1 > L->lim.max_depth)
        return fail(L, path, VIGIL_ELIMIT,
                    "nesting deeper than %u lists and maps (max_depth), through an alias",
                    L->lim.max_depth);
    int rc = new_node(L, s->kind, s->line, s->column, path, out);
    if (rc)
        return rc;
    (*out)->scalar = s->scalar; /* immutable text is shared with the original */
    (*out)->index = s->index;
    return VIGIL_OK;
}

/* Copies the tree at `src` to the current position, level by level with a
 * work list. Copies keep the locations of the original nodes and take the
 * paths of where the alias is used. */
static int copy_tree(loader *L, const vigil_config_node *src, const char *path,
                     vigil_config_node **out)
{
    size_t ncopy = 0;
    int rc = clone_node(L, src, path, L->nframes, out);
    if (rc)
        return rc;
    if ((rc = vigil__array_grow((void **)&L->copy, &L->copy_cap, 1, sizeof(*L->copy))))
        return rc;
    L->copy[ncopy++] = (copy_item){src, *out, L->nframes};
    while (ncopy) {
        copy_item it = L->copy[--ncopy];
        const vigil_config_node *s = it.src;
        vigil_config_node *d = it.dst;
        if (!s->len)
            continue;
        if (s->len > SIZE_MAX / sizeof(*d->entries))
            return vigil__error_oom();
        vigil__config_entry *entries =
            vigil__config_arena_alloc(&L->cfg->arena, s->len * sizeof(*entries));
        if (!entries)
            return vigil__error_oom();
        for (size_t i = 0; i < s->len; i++) {
            const vigil__config_entry *e = &s->entries[i];
            const char *cpath;
            vigil_config_node *c;
            if ((rc =
                     make_path(L, d->path, s->kind == VIGIL_CONFIG_MAP ? e->key : NULL, i, &cpath)))
                return rc;
            if ((rc = clone_node(L, e->node, cpath, it.level + 1, &c)))
                return rc;
            entries[i] = *e;
            entries[i].node = c;
            if (e->node->len) {
                rc =
                    vigil__array_grow((void **)&L->copy, &L->copy_cap, ncopy + 1, sizeof(*L->copy));
                if (rc)
                    return rc;
                L->copy[ncopy++] = (copy_item){e->node, c, it.level + 1};
            }
        }
        d->entries = entries;
        d->len = s->len;
    }
    return VIGIL_OK;
}

/* ---- events --------------------------------------------------------------------- */

static int is_null_scalar(const yaml_event_t *ev)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    const char *tag = (const char *)ev->data.scalar.tag;
    if (tag && strcmp(tag, "tag:yaml.org,2002:null") == 0)
        return 1;
    if (!ev->data.scalar.plain_implicit || ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    for (size_t i = 0; i < VIGIL__ARRAY_LEN(nulls); i++)
        if (strcmp((const char *)ev->data.scalar.value, nulls[i]) == 0)
            return 1;
    return 0;
}

static const char *clip_key(const char *key, int *n)
{
    size_t len = strlen(key);
    *n = len > KEY_QUOTE_MAX ? KEY_QUOTE_MAX : (int)len;
    while (*n > 0 && (size_t)*n < len && ((unsigned char)key[*n] & 0xC0) == 0x80)
        (*n)--;
    return (size_t)*n < len ? "..." : "";
}

static int on_scalar(loader *L, const yaml_event_t *ev)
{
    const char *val = (const char *)ev->data.scalar.value;
    size_t vlen = ev->data.scalar.length;
    const char *path;
    int rc;
    int nul = memchr(val, '\0', vlen) != NULL;
    if (is_key_position(L)) {
        frame *f = &L->frames[L->nframes - 1];
        if (nul)
            return fail(L, f->node->path, VIGIL_EENCODING, "NUL character in a key");
        char *key = text_alloc(L, vlen + 1, f->node->path, &rc);
        if (!key)
            return rc;
        memcpy(key, val, vlen + 1);
        f->key = key;
        f->kline = L->line;
        f->kcol = L->col;
        f->has_key = 1;
        return VIGIL_OK;
    }
    if ((rc = position_path(L, &path)))
        return rc;
    if (nul)
        return fail(L, path, VIGIL_EENCODING, "NUL character in a string");
    vigil_config_node *n;
    int null = is_null_scalar(ev);
    if ((rc = new_node(L, null ? VIGIL_CONFIG_NULL : VIGIL_CONFIG_SCALAR, L->line, L->col, path,
                       &n)))
        return rc;
    if (!null) {
        const char *text = val;
        size_t tlen = vlen;
        if (!L->lim.no_env && memchr(val, '$', vlen)) {
            rc = vigil__config_expand(&L->exp, val, vlen, L->lim.max_file, L->lim.getenv,
                                      L->lim.getenv_payload);
            if (rc == VIGIL_ENOMEM)
                return rc;
            if (rc) {
                char msg[1024];
                memcpy(msg, vigil_error_last()->message, sizeof(msg) - 1);
                msg[sizeof(msg) - 1] = '\0';
                return fail(L, path, rc, "%s", msg);
            }
            text = L->exp.ptr;
            tlen = L->exp.size;
        }
        char *s = text_alloc(L, tlen + 1, path, &rc);
        if (!s)
            return rc;
        memcpy(s, text, tlen);
        s[tlen] = '\0';
        n->scalar = s;
    }
    if ((rc = attach(L, n)))
        return rc;
    if (ev->data.scalar.anchor)
        return anchor_define(L, (const char *)ev->data.scalar.anchor, n);
    return VIGIL_OK;
}

static int on_start(loader *L, vigil_config_kind kind, const char *anchor)
{
    const char *path;
    vigil_config_node *n;
    int rc;
    if (is_key_position(L))
        return fail(L, L->frames[L->nframes - 1].node->path, VIGIL_EYAML,
                    "a map key must be a scalar, not a %s",
                    kind == VIGIL_CONFIG_MAP ? "map" : "list");
    if ((rc = position_path(L, &path)))
        return rc;
    if (L->nframes + 1 > L->lim.max_depth)
        return fail(L, path, VIGIL_ELIMIT, "nesting deeper than %u lists and maps (max_depth)",
                    L->lim.max_depth);
    if ((rc = new_node(L, kind, L->line, L->col, path, &n)))
        return rc;
    if ((rc = attach(L, n)))
        return rc;
    if (L->nframes == L->frames_cap) {
        size_t old = L->frames_cap;
        rc = vigil__array_grow((void **)&L->frames, &L->frames_cap, L->nframes + 1,
                               sizeof(*L->frames));
        if (rc)
            return rc;
        memset(L->frames + old, 0, (L->frames_cap - old) * sizeof(*L->frames));
    }
    frame *f = &L->frames[L->nframes++];
    f->node = n;
    f->len = 0;
    f->key = NULL;
    f->has_key = 0;
    if (anchor)
        return anchor_define(L, anchor, n);
    return VIGIL_OK;
}

static int cmp_sort_item(const void *a, const void *b)
{
    const sort_item *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c)
        return c;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int duplicate(loader *L, const vigil_config_node *map, size_t first, size_t second)
{
    const vigil__config_entry *a = &map->entries[first], *b = &map->entries[second];
    int n;
    const char *more = clip_key(b->key, &n);
    return vigil__config_fail(L->file, b->line, b->column, b->node->path, VIGIL_EYAML,
                              "duplicate key \"%.*s%s\" (first at line %u, column %u)", n, b->key,
                              more, a->line, a->column);
}

/* Refuses duplicate keys; gives large maps a sorted index for lookups. */
static int finish_map(loader *L, vigil_config_node *map)
{
    size_t n = map->len;
    if (n <= VIGIL__CONFIG_INDEX_MIN) {
        for (size_t j = 1; j < n; j++)
            for (size_t i = 0; i < j; i++)
                if (strcmp(map->entries[i].key, map->entries[j].key) == 0)
                    return duplicate(L, map, i, j);
        return VIGIL_OK;
    }
    int rc = vigil__array_grow((void **)&L->sort, &L->sort_cap, n, sizeof(*L->sort));
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++)
        L->sort[i] = (sort_item){map->entries[i].key, i};
    qsort(L->sort, n, sizeof(*L->sort), cmp_sort_item);
    /* Report the duplicate that comes first in the file. */
    size_t best = SIZE_MAX, best_first = 0;
    for (size_t i = 1; i < n; i++) {
        if (strcmp(L->sort[i - 1].key, L->sort[i].key) == 0 && L->sort[i].idx < best) {
            best = L->sort[i].idx;
            best_first = L->sort[i - 1].idx;
        }
    }
    if (best != SIZE_MAX) {
        /* The earliest occurrence of that key, for the message. */
        for (size_t i = 0; i < best; i++)
            if (strcmp(map->entries[i].key, map->entries[best].key) == 0) {
                best_first = i;
                break;
            }
        return duplicate(L, map, best_first, best);
    }
    if (n > SIZE_MAX / sizeof(size_t))
        return vigil__error_oom();
    size_t *index = vigil__config_arena_alloc(&L->cfg->arena, n * sizeof(size_t));
    if (!index)
        return vigil__error_oom();
    for (size_t i = 0; i < n; i++)
        index[i] = L->sort[i].idx;
    map->index = index;
    return VIGIL_OK;
}

static int on_end(loader *L)
{
    frame *f = &L->frames[L->nframes - 1];
    vigil_config_node *n = f->node;
    if (f->len) {
        if (f->len > SIZE_MAX / sizeof(*n->entries))
            return vigil__error_oom();
        n->entries = vigil__config_arena_alloc(&L->cfg->arena, f->len * sizeof(*n->entries));
        if (!n->entries)
            return vigil__error_oom();
        memcpy(n->entries, f->items, f->len * sizeof(*n->entries));
        n->len = f->len;
    }
    f->len = 0;
    L->nframes--;
    if (n->kind == VIGIL_CONFIG_MAP)
        return finish_map(L, n);
    return VIGIL_OK;
}

static int on_alias(loader *L, const char *name)
{
    const char *path;
    vigil_config_node *n;
    int rc;
    int nl;
    const char *more = clip_key(name, &nl);
    if (is_key_position(L))
        return fail(L, L->frames[L->nframes - 1].node->path, VIGIL_EYAML,
                    "a map key must be a scalar, not an alias (*%.*s%s)", nl, name, more);
    if ((rc = position_path(L, &path)))
        return rc;
    const vigil_config_node *src = anchor_find(L, name);
    if (!src)
        return fail(L, path, VIGIL_EALIAS, "alias *%.*s%s refers to an undefined anchor", nl, name,
                    more);
    for (size_t i = 0; i < L->nframes; i++)
        if (L->frames[i].node == src)
            return fail(L, path, VIGIL_EALIAS,
                        "alias *%.*s%s refers to a list or map that contains it", nl, name, more);
    if ((rc = copy_tree(L, src, path, &n)))
        return rc;
    return attach(L, n);
}

static int on_event(loader *L, const yaml_event_t *ev)
{
    int rc;
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        L->root = NULL;
        L->nframes = 0;
        anchors_reset(L);
        return VIGIL_OK;
    case YAML_DOCUMENT_END_EVENT:
        anchors_reset(L);
        if (!L->root)
            return VIGIL_OK;
        rc = vigil__array_grow((void **)&L->cfg->docs, &L->docs_cap, L->cfg->ndocs + 1,
                               sizeof(*L->cfg->docs));
        if (rc)
            return rc;
        L->cfg->docs[L->cfg->ndocs++] = L->root;
        L->root = NULL;
        return VIGIL_OK;
    case YAML_SCALAR_EVENT: return on_scalar(L, ev);
    case YAML_SEQUENCE_START_EVENT:
        return on_start(L, VIGIL_CONFIG_LIST, (const char *)ev->data.sequence_start.anchor);
    case YAML_MAPPING_START_EVENT:
        return on_start(L, VIGIL_CONFIG_MAP, (const char *)ev->data.mapping_start.anchor);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT: return L->nframes ? on_end(L) : VIGIL_OK;
    case YAML_ALIAS_EVENT: return on_alias(L, (const char *)ev->data.alias.anchor);
    default: return VIGIL_OK;
    }
}

static int yaml_failure(loader *L, const yaml_parser_t *p, const char *text, size_t len)
{
    const char *problem = p->problem ? p->problem : "malformed YAML";
    unsigned int line, col;
    switch (p->error) {
    case YAML_MEMORY_ERROR: return vigil__error_oom();
    case YAML_READER_ERROR:
        locate_offset(text, len, p->problem_offset, &line, &col);
        if (p->problem_value >= 0)
            return vigil__error_set_at(VIGIL_EENCODING, L->file, line, col, "%s (U+%04X)", problem,
                                       (unsigned int)p->problem_value);
        return vigil__error_set_at(VIGIL_EENCODING, L->file, line, col, "%s", problem);
    default:
        line = to_uint(p->problem_mark.line + 1);
        col = to_uint(p->problem_mark.column + 1);
        if (p->context)
            return vigil__error_set_at(VIGIL_EYAML, L->file, line, col,
                                       "%s (%s at line %zu, column %zu)", problem, p->context,
                                       p->context_mark.line + 1, p->context_mark.column + 1);
        return vigil__error_set_at(VIGIL_EYAML, L->file, line, col, "%s", problem);
    }
}

static void loader_dispose(loader *L)
{
    anchors_reset(L);
    vigil__free(L->anchors);
    for (size_t i = 0; i < L->frames_cap; i++)
        vigil__free(L->frames[i].items);
    vigil__free(L->frames);
    vigil__free(L->sort);
    vigil__free(L->copy);
    vigil_buf_dispose(&L->exp);
}

static int load(vigil_config **out, const char *text, size_t len, const char *name,
                const limits *lim)
{
    loader L;
    yaml_parser_t parser;
    int rc;
    if (len > lim->max_file)
        return vigil__error_set_at(VIGIL_ELIMIT, name, 0, 0,
                                   "%zu bytes, above the limit of %zu (max_file_size)", len,
                                   lim->max_file);
    if ((rc = check_encoding(name, text, len)))
        return rc;
    memset(&L, 0, sizeof(L));
    L.lim = *lim;
    L.cfg = vigil__calloc(1, sizeof(*L.cfg));
    if (!L.cfg)
        return vigil__error_oom();
    L.cfg->file = vigil__strdup(name);
    if (!L.cfg->file) {
        vigil_config_free(L.cfg);
        return vigil__error_oom();
    }
    L.file = L.cfg->file;
    /* libyaml allocates with malloc(3): see the comment at the top. */
    if (!yaml_parser_initialize(&parser)) {
        vigil_config_free(L.cfg);
        return vigil__error_oom();
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)(len ? text : ""), len);
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = yaml_failure(&L, &parser, text, len);
            break;
        }
        L.line = to_uint(ev.start_mark.line + 1);
        L.col = to_uint(ev.start_mark.column + 1);
        int done = ev.type == YAML_STREAM_END_EVENT;
        rc = on_event(&L, &ev);
        yaml_event_delete(&ev);
        if (rc || done)
            break;
    }
    yaml_parser_delete(&parser);
    loader_dispose(&L);
    if (rc) {
        vigil_config_free(L.cfg);
        return rc;
    }
    *out = L.cfg;
    return VIGIL_OK;
}

int vigil_config_load_string(vigil_config **out, const char *text, size_t len, const char *name,
                             const vigil_config_options *opts)
{
    limits lim;
    if (!out)
        return vigil__error_set(VIGIL_EINVAL, "vigil_config_load_string: NULL out");
    *out = NULL;
    if (!text && len)
        return vigil__error_set(VIGIL_EINVAL, "vigil_config_load_string: NULL text");
    int rc = resolve(&lim, opts);
    if (rc)
        return rc;
    return load(out, text ? text : "", len, name ? name : "<string>", &lim);
}

static int io_error(const char *path, const char *what, int err)
{
    char buf[256];
    return vigil__error_set_at(VIGIL_EIO, path, 0, 0, "%s: %s", what,
                               strerror_r(err, buf, sizeof(buf)));
}

int vigil_config_load_file(vigil_config **out, const char *path, const vigil_config_options *opts)
{
    limits lim;
    struct stat st;
    if (!out)
        return vigil__error_set(VIGIL_EINVAL, "vigil_config_load_file: NULL out");
    *out = NULL;
    if (!path)
        return vigil__error_set(VIGIL_EINVAL, "vigil_config_load_file: NULL path");
    int rc = resolve(&lim, opts);
    if (rc)
        return rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return io_error(path, "cannot open", errno);
    if (fstat(fd, &st) != 0) {
        rc = io_error(path, "cannot stat", errno);
        close(fd);
        return rc;
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return io_error(path, "cannot read", EISDIR);
    }
    /* Refuse an oversized file before reading it, then read at most one
     * byte more than the limit (the file may grow, or be a pipe). */
    if (S_ISREG(st.st_mode) && (uintmax_t)st.st_size > (uintmax_t)lim.max_file) {
        close(fd);
        return vigil__error_set_at(VIGIL_ELIMIT, path, 0, 0,
                                   "%jd bytes, above the limit of %zu (max_file_size)",
                                   (intmax_t)st.st_size, lim.max_file);
    }
    size_t cap = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size + 1 : 4096;
    if (cap > lim.max_file + 1)
        cap = lim.max_file + 1;
    size_t total = 0;
    char *buf = vigil__malloc(cap);
    if (!buf) {
        close(fd);
        return vigil__error_oom();
    }
    for (;;) {
        if (total == cap) {
            if (cap == lim.max_file + 1)
                break;
            size_t ncap = cap > (lim.max_file + 1) / 2 ? lim.max_file + 1 : cap * 2;
            char *nb = vigil__realloc(buf, ncap);
            if (!nb) {
                vigil__free(buf);
                close(fd);
                return vigil__error_oom();
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + total, cap - total);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = io_error(path, "cannot read", errno);
            vigil__free(buf);
            close(fd);
            return rc;
        }
        if (r == 0)
            break;
        total += (size_t)r;
    }
    close(fd);
    if (total > lim.max_file) {
        vigil__free(buf);
        return vigil__error_set_at(VIGIL_ELIMIT, path, 0, 0, "more than %zu bytes (max_file_size)",
                                   lim.max_file);
    }
    rc = load(out, buf, total, path, &lim);
    vigil__free(buf);
    return rc;
}
