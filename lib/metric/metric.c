/* The metric model: validation and the canonical series key. */
#include "metric/metric_int.h"

#include <math.h>
#include <stdio.h>

#define F VIGIL__NAME_FIRST | VIGIL__NAME_REST
#define R VIGIL__NAME_REST
const unsigned char vigil__metric_name_class[256] = {
    ['0'] = R, ['1'] = R, ['2'] = R, ['3'] = R, ['4'] = R, ['5'] = R, ['6'] = R, ['7'] = R,
    ['8'] = R, ['9'] = R, [':'] = F, ['_'] = F, ['A'] = F, ['B'] = F, ['C'] = F, ['D'] = F,
    ['E'] = F, ['F'] = F, ['G'] = F, ['H'] = F, ['I'] = F, ['J'] = F, ['K'] = F, ['L'] = F,
    ['M'] = F, ['N'] = F, ['O'] = F, ['P'] = F, ['Q'] = F, ['R'] = F, ['S'] = F, ['T'] = F,
    ['U'] = F, ['V'] = F, ['W'] = F, ['X'] = F, ['Y'] = F, ['Z'] = F, ['a'] = F, ['b'] = F,
    ['c'] = F, ['d'] = F, ['e'] = F, ['f'] = F, ['g'] = F, ['h'] = F, ['i'] = F, ['j'] = F,
    ['k'] = F, ['l'] = F, ['m'] = F, ['n'] = F, ['o'] = F, ['p'] = F, ['q'] = F, ['r'] = F,
    ['s'] = F, ['t'] = F, ['u'] = F, ['v'] = F, ['w'] = F, ['x'] = F, ['y'] = F, ['z'] = F,
};
#undef F
#undef R

int vigil__metric_check_name(const char *s, size_t len, const vigil__json_path *path,
                             const char *what)
{
    char shown[512] = "";
    if (len > VIGIL_METRIC_NAME_MAX)
        return vigil__error_set(VIGIL_ELIMIT, "%s: %s longer than %d bytes (%zu)",
                                vigil__json_path_str(path), what, VIGIL_METRIC_NAME_MAX, len);
    if (vigil__metric_name_chars(s, len))
        return VIGIL_OK;
    vigil__json_quote_clip(shown, sizeof(shown), s, len);
    return vigil__error_set(VIGIL_ENAME, "%s: invalid %s %s (expected [a-zA-Z_:][a-zA-Z0-9_:]*)",
                            vigil__json_path_str(path), what, shown);
}

int vigil_metric_name_valid(const char *name)
{
    if (!name)
        return 0;
    size_t len = strnlen(name, VIGIL_METRIC_NAME_MAX + 1);
    return len <= VIGIL_METRIC_NAME_MAX && vigil__metric_name_chars(name, len);
}

void vigil__metric_sort_tags(vigil_tag *tags, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        vigil_tag t = tags[i];
        size_t j = i;
        while (j > 0 && strcmp(tags[j - 1].key, t.key) > 0) {
            tags[j] = tags[j - 1];
            j--;
        }
        tags[j] = t;
    }
}

/* The path of a field for a message: k1, then k2[0..k2len) when k2 is set.
 * Only built when there is something to report. */
static void field_path(vigil__json_path *p, const char *k1, const char *k2, size_t k2len)
{
    vigil__json_path_init(p);
    vigil__json_path_key(p, k1, strlen(k1));
    if (k2)
        vigil__json_path_key(p, k2, k2len);
}

/* True when s[0..n) is all ASCII (8 bytes at a time). */
static int all_ascii(const char *s, size_t n)
{
    uint64_t acc = 0, w;
    size_t i = 0;
    for (; n - i >= 8; i += 8) {
        memcpy(&w, s + i, 8);
        acc |= w;
    }
    for (; i < n; i++)
        acc |= (unsigned char)s[i];
    return !(acc & UINT64_C(0x8080808080808080));
}

/* Checks a text (tag value, error) of at most max bytes that is UTF-8; its
 * length goes to *len. Only a text with a byte above ASCII needs the UTF-8
 * check. The field's path is k1 (and the tag key k2). */
static int check_text(const char *s, size_t max, const char *k1, const char *k2, size_t k2len,
                      const char *what, size_t *len)
{
    size_t n = strnlen(s, max + 1);
    *len = n;
    if (n <= max && (all_ascii(s, n) || vigil__utf8_valid(s, n)))
        return VIGIL_OK;
    vigil__json_path path;
    field_path(&path, k1, k2, k2len);
    if (n > max)
        return vigil__error_set(VIGIL_ELIMIT, "%s: %s longer than %zu bytes",
                                vigil__json_path_str(&path), what, max);
    return vigil__error_set(VIGIL_EENCODING, "%s: %s is not valid UTF-8",
                            vigil__json_path_str(&path), what);
}

/* Records why s is not a valid name (vigil__metric_name_len() gave 0). */
static int name_error(const char *s, const char *k1, const char *k2, size_t k2len, const char *what)
{
    vigil__json_path path;
    size_t len = strnlen(s, VIGIL_METRIC_NAME_MAX + 1);
    field_path(&path, k1, k2, k2len);
    int rc = vigil__metric_check_name(s, len, &path, what);
    return rc ? rc
              : vigil__error_set(VIGIL_ENAME, "%s: invalid %s", vigil__json_path_str(&path), what);
}

int vigil__metric_validate_lens(const vigil_metric *m, vigil__metric_lens *lens)
{
    int rc;
    if (!m)
        return vigil__error_set(VIGIL_EINVAL, "metric is NULL");
    if (!m->name)
        return vigil__error_set(VIGIL_EINVAL, "name: is NULL");
    if (!(lens->name = vigil__metric_name_len(m->name)))
        return name_error(m->name, "name", NULL, 0, "metric name");
    if (m->ts_ms < 0 || m->ts_ms > VIGIL__METRIC_TS_MAX)
        return vigil__error_set(VIGIL_EVALUE, "ts: expected milliseconds from 0 to %lld, got %lld",
                                (long long)VIGIL__METRIC_TS_MAX, (long long)m->ts_ms);
    lens->error = 0;
    if (m->error) {
        if (!m->error[0])
            return vigil__error_set(VIGIL_EVALUE, "error: expected a non-empty text");
        if ((rc = check_text(m->error, VIGIL_METRIC_ERROR_MAX, "error", NULL, 0, "error text",
                             &lens->error)) != VIGIL_OK)
            return rc;
    } else if (!isfinite(m->value)) {
        return vigil__error_set(VIGIL_EVALUE, "value: expected a finite number, got %s",
                                isnan(m->value) ? "NaN" : "an infinity");
    }
    if (m->ntags > VIGIL_METRIC_TAGS_MAX)
        return vigil__error_set(VIGIL_ELIMIT, "tags: more than %d tags (%zu)",
                                VIGIL_METRIC_TAGS_MAX, m->ntags);
    if (m->ntags && !m->tags)
        return vigil__error_set(VIGIL_EINVAL, "tags: NULL with ntags %zu", m->ntags);
    const char *keys[VIGIL_METRIC_TAGS_MAX];
    for (size_t i = 0; i < m->ntags; i++) {
        const vigil_tag *t = &m->tags[i];
        if (!t->key || !t->value)
            return vigil__error_set(VIGIL_EINVAL, "tags[%zu]: %s is NULL", i,
                                    t->key ? "value" : "key");
        size_t klen = vigil__metric_name_len(t->key);
        if (!klen)
            return name_error(t->key, "tags", t->key, strnlen(t->key, VIGIL_METRIC_NAME_MAX + 1),
                              "tag key");
        if ((rc = check_text(t->value, VIGIL_METRIC_TAG_VALUE_MAX, "tags", t->key, klen,
                             "tag value", &lens->value[i])) != VIGIL_OK)
            return rc;
        lens->key[i] = klen;
        /* Insertion into a sorted list of keys finds duplicates. */
        size_t j = i;
        int cmp = 1;
        while (j > 0 && (cmp = strcmp(keys[j - 1], t->key)) > 0) {
            keys[j] = keys[j - 1];
            j--;
        }
        if (j > 0 && cmp == 0) {
            vigil__json_path path;
            field_path(&path, "tags", t->key, klen);
            return vigil__error_set(VIGIL_EINVAL, "%s: duplicate tag key",
                                    vigil__json_path_str(&path));
        }
        keys[j] = t->key;
    }
    return VIGIL_OK;
}

int vigil_metric_validate(const vigil_metric *m)
{
    vigil__metric_lens lens;
    return vigil__metric_validate_lens(m, &lens);
}

#define ONES  UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/* Non-zero when one of the 8 bytes of w may equal c: exact for the lowest
 * such byte, a hint for the others (the per-byte loop decides). */
static inline uint64_t may_hold(uint64_t w, unsigned char c)
{
    uint64_t x = w ^ (ONES * c);
    return (x - ONES) & ~x & HIGHS;
}

/* Writes v[0..n) to p with \\, \" and \n escaped (a tag value in a series
 * key); returns the end. Words of 8 bytes without any of them are copied as
 * they are. */
static char *put_escaped(char *p, const char *v, size_t n)
{
    size_t q = 0;
    while (q < n) {
        if (n - q >= 8) {
            uint64_t w;
            memcpy(&w, v + q, 8);
            if (!(may_hold(w, '\\') | may_hold(w, '"') | may_hold(w, '\n'))) {
                memcpy(p, &w, 8);
                p += 8;
                q += 8;
                continue;
            }
        }
        size_t stop = n - q >= 8 ? q + 8 : n;
        for (; q < stop; q++) {
            char c = v[q];
            if (c == '\\' || c == '"' || c == '\n') {
                *p++ = '\\';
                c = c == '\n' ? 'n' : c;
            }
            *p++ = c;
        }
    }
    return p;
}

int vigil_metric_series_key(vigil_buf *out, const vigil_metric *m)
{
    unsigned char order[VIGIL_METRIC_TAGS_MAX]; /* tag indexes in key order */
    size_t klen[VIGIL_METRIC_TAGS_MAX], vlen[VIGIL_METRIC_TAGS_MAX];
    if (!out)
        return vigil__error_set(VIGIL_EINVAL, "series key: output buffer is NULL");
    vigil__buf_clear(out);
    if (!m || !m->name)
        return vigil__error_set(VIGIL_EINVAL, "series key: metric or name is NULL");
    if (m->ntags > VIGIL_METRIC_TAGS_MAX || (m->ntags && !m->tags))
        return vigil__error_set(VIGIL_EINVAL, "series key: tags: expected at most %d tags",
                                VIGIL_METRIC_TAGS_MAX);
    const vigil_tag *tags = m->tags;
    size_t nlen = strlen(m->name), need = nlen + 2;
    for (size_t i = 0; i < m->ntags; i++) {
        const vigil_tag *t = &tags[i];
        if (!t->key || !t->value)
            return vigil__error_set(VIGIL_EINVAL, "series key: tags[%zu]: %s is NULL", i,
                                    t->key ? "value" : "key");
        /* Tags from a batch are sorted already: one comparison each. */
        size_t j = i;
        while (j > 0 && strcmp(tags[order[j - 1]].key, t->key) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = (unsigned char)i;
        klen[i] = strlen(t->key);
        vlen[i] = strlen(t->value);
        need += klen[i] + 2 * vlen[i] + 4;
    }
    int rc = vigil__buf_grow(out, need);
    if (rc)
        return rc;
    char *p = out->ptr;
    memcpy(p, m->name, nlen);
    p += nlen;
    if (m->ntags) {
        *p++ = '{';
        for (size_t k = 0; k < m->ntags; k++) {
            size_t i = order[k];
            if (k)
                *p++ = ',';
            memcpy(p, tags[i].key, klen[i]);
            p += klen[i];
            *p++ = '=';
            *p++ = '"';
            p = put_escaped(p, tags[i].value, vlen[i]);
            *p++ = '"';
        }
        *p++ = '}';
    }
    *p = '\0';
    out->size = (size_t)(p - out->ptr);
    return VIGIL_OK;
}
