/* The JSON codec of the ingest body:
 * {"agent":"h1","batch_id":"...","metrics":[{"name","value","ts","tags","error"}]} */
#include "metric/metric_int.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>

int vigil_batch_decode_options_init(vigil_batch_decode_options *opts, unsigned int version)
{
    if (!opts)
        return vigil__error_set(VIGIL_EINVAL, "decode options: NULL");
    if (vigil__version_check("decode options", version, VIGIL_BATCH_DECODE_OPTIONS_VERSION))
        return VIGIL_EVERSION;
    vigil_batch_decode_options init = VIGIL_BATCH_DECODE_OPTIONS_INIT;
    *opts = init;
    return VIGIL_OK;
}

/* ---- decode ------------------------------------------------------------------ */

typedef struct {
    vigil_batch *b;
    int64_t default_ts;
    size_t index;    /* of the metric being decoded */
    size_t prev_off; /* where the previous metric's tags start in b->tags */
    /* Lengths of the previous metric's strings, to share equal ones. */
    size_t prev_nlen, prev_klen[VIGIL_METRIC_TAGS_MAX], prev_vlen[VIGIL_METRIC_TAGS_MAX];
} decoder;

typedef struct {
    const char *key, *value;
    size_t klen, vlen;
} raw_tag;

/* Records "<path>: <message>" where the path is metrics[i] followed by the
 * given keys (NULL-terminated list of at most two). */
static int fail_at(int code, const decoder *d, const char *k1, const char *k2, const char *msg)
{
    vigil__json_path p;
    vigil__json_path_init(&p);
    vigil__json_path_key(&p, "metrics", 7);
    vigil__json_path_index(&p, d->index);
    if (k1)
        vigil__json_path_key(&p, k1, strlen(k1));
    if (k2)
        vigil__json_path_key(&p, k2, strlen(k2));
    return vigil__error_set(code, "%s: %s", vigil__json_path_str(&p), msg);
}

static void metric_path(vigil__json_path *p, const decoder *d, const char *k1)
{
    vigil__json_path_init(p);
    vigil__json_path_key(p, "metrics", 7);
    vigil__json_path_index(p, d->index);
    if (k1)
        vigil__json_path_key(p, k1, strlen(k1));
}

/* cJSON_IsString() and friends, without a call into the shared library. */
static inline int is_type(const cJSON *v, int type)
{
    return (v->type & 0xFF) == type;
}

static const char *type_name(const cJSON *v)
{
    switch (v->type & 0xFF) {
    case cJSON_False:
    case cJSON_True: return "a boolean";
    case cJSON_NULL: return "null";
    case cJSON_Number: return "a number";
    case cJSON_String: return "a string";
    case cJSON_Array: return "an array";
    case cJSON_Object: return "an object";
    default: return "an unknown value";
    }
}

static int fail_type(const decoder *d, const char *k1, const char *k2, const cJSON *v,
                     const char *expected)
{
    char msg[160];
    snprintf(msg, sizeof(msg), "expected %s, got %s", expected, type_name(v));
    return fail_at(VIGIL_ETYPE, d, k1, k2, msg);
}

/* Returns the slot of a metric field, or NULL for an unknown one. */
enum { F_NAME, F_VALUE, F_TS, F_TAGS, F_ERROR, F_COUNT };

static int field_id(const char *k)
{
    switch (k[0]) {
    case 'n': return k[1] == 'a' && k[2] == 'm' && k[3] == 'e' && !k[4] ? F_NAME : -1;
    case 'v':
        return k[1] == 'a' && k[2] == 'l' && k[3] == 'u' && k[4] == 'e' && !k[5] ? F_VALUE : -1;
    case 't':
        if (k[1] == 's' && !k[2])
            return F_TS;
        return k[1] == 'a' && k[2] == 'g' && k[3] == 's' && !k[4] ? F_TAGS : -1;
    case 'e': return strcmp(k, "error") == 0 ? F_ERROR : -1;
    default: return -1;
    }
}

/* memcmp(a, b, n) == 0, inline for the short strings of metrics. */
static inline int same_bytes(const char *a, const char *b, size_t n)
{
    uint64_t x, y;
    size_t i = 0;
    for (; n - i >= 8; i += 8) {
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y)
            return 0;
    }
    for (; i < n; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

static inline const char *share(vigil_batch *b, const char *prev, size_t plen, const char *s,
                                size_t len)
{
    if (prev && plen == len && same_bytes(prev, s, len))
        return prev;
    return vigil__batch_strcopy(b, s, len);
}

static int decode_tags(decoder *d, const cJSON *obj, raw_tag *tags, size_t *ntags)
{
    size_t n = 0;
    if (!is_type(obj, cJSON_Object))
        return fail_type(d, "tags", NULL, obj, "an object");
    for (const cJSON *t = obj->child; t; t = t->next) {
        if (n == VIGIL_METRIC_TAGS_MAX) {
            char msg[64];
            snprintf(msg, sizeof(msg), "more than %d tags", VIGIL_METRIC_TAGS_MAX);
            return fail_at(VIGIL_ELIMIT, d, "tags", NULL, msg);
        }
        const char *key = t->string;
        size_t klen = vigil__metric_name_len(key);
        if (!klen) {
            vigil__json_path p;
            klen = strlen(key);
            metric_path(&p, d, "tags");
            vigil__json_path_key(&p, key, klen);
            return vigil__metric_check_name(key, klen, &p, "tag key");
        }
        if (!is_type(t, cJSON_String))
            return fail_type(d, "tags", key, t, "a string");
        size_t vlen = strlen(t->valuestring);
        if (vlen > VIGIL_METRIC_TAG_VALUE_MAX) {
            char msg[64];
            snprintf(msg, sizeof(msg), "tag value longer than %d bytes (%zu)",
                     VIGIL_METRIC_TAG_VALUE_MAX, vlen);
            return fail_at(VIGIL_ELIMIT, d, "tags", key, msg);
        }
        /* Insert in key order; equal keys are duplicates. */
        size_t j = n;
        int cmp = 1;
        while (j > 0 && (cmp = strcmp(tags[j - 1].key, key)) > 0) {
            tags[j] = tags[j - 1];
            j--;
        }
        if (j > 0 && cmp == 0)
            return fail_at(VIGIL_EINVAL, d, "tags", key, "duplicate tag key");
        tags[j].key = key;
        tags[j].klen = klen;
        tags[j].value = t->valuestring;
        tags[j].vlen = vlen;
        n++;
    }
    *ntags = n;
    return VIGIL_OK;
}

static int decode_metric(decoder *d, const cJSON *mo)
{
    const cJSON *f[F_COUNT] = {NULL};
    raw_tag tags[VIGIL_METRIC_TAGS_MAX];
    size_t ntags = 0;
    int rc;
    if (!is_type(mo, cJSON_Object))
        return fail_type(d, NULL, NULL, mo, "an object");
    for (const cJSON *c = mo->child; c; c = c->next) {
        int id = field_id(c->string);
        if (id < 0)
            return fail_at(VIGIL_EINVAL, d, c->string, NULL, "unknown field");
        if (f[id])
            return fail_at(VIGIL_EINVAL, d, c->string, NULL, "duplicate field");
        f[id] = c;
    }

    /* name */
    const cJSON *v = f[F_NAME];
    if (!v)
        return fail_at(VIGIL_EMISSING, d, "name", NULL, "required field is missing");
    if (!is_type(v, cJSON_String))
        return fail_type(d, "name", NULL, v, "a string");
    const char *name = v->valuestring;
    size_t nlen = vigil__metric_name_len(name);
    if (!nlen) {
        vigil__json_path p;
        nlen = strlen(name);
        metric_path(&p, d, "name");
        return vigil__metric_check_name(name, nlen, &p, "metric name");
    }

    /* ts */
    int64_t ts = d->default_ts;
    v = f[F_TS];
    if (v) {
        if (!is_type(v, cJSON_Number))
            return fail_type(d, "ts", NULL, v, "an integer number of milliseconds");
        double t = v->valuedouble;
        if (!(t >= 0 && t <= (double)VIGIL__METRIC_TS_MAX) || (double)(int64_t)t != t)
            return fail_at(VIGIL_EVALUE, d, "ts", NULL,
                           "expected an integer number of milliseconds from 0 to "
                           "9007199254740991");
        ts = (int64_t)t;
    } else if (!d->default_ts) {
        return fail_at(VIGIL_EMISSING, d, "ts", NULL, "required field is missing");
    }

    /* error */
    const char *err = NULL;
    size_t elen = 0;
    v = f[F_ERROR];
    if (v) {
        if (!is_type(v, cJSON_String))
            return fail_type(d, "error", NULL, v, "a string");
        err = v->valuestring;
        elen = strlen(err);
        if (elen == 0)
            return fail_at(VIGIL_EVALUE, d, "error", NULL, "expected a non-empty string");
        if (elen > VIGIL_METRIC_ERROR_MAX)
            return fail_at(VIGIL_ELIMIT, d, "error", NULL, "error text longer than 1024 bytes");
    }

    /* value */
    double value = NAN;
    v = f[F_VALUE];
    if (!v)
        return fail_at(VIGIL_EMISSING, d, "value", NULL, "required field is missing");
    if (err) {
        if (!is_type(v, cJSON_NULL))
            return fail_at(VIGIL_EVALUE, d, "value", NULL, "expected null when \"error\" is set");
    } else if (is_type(v, cJSON_Number)) {
        value = v->valuedouble;
        if (!isfinite(value))
            return fail_at(VIGIL_EVALUE, d, "value", NULL, "expected a finite number");
    } else if (is_type(v, cJSON_NULL)) {
        return fail_at(VIGIL_EVALUE, d, "value", NULL,
                       "expected a finite number (null only with \"error\")");
    } else {
        return fail_type(d, "value", NULL, v, "a finite number");
    }

    /* tags */
    if (f[F_TAGS] && (rc = decode_tags(d, f[F_TAGS], tags, &ntags)) != VIGIL_OK)
        return rc;

    /* Append. Strings equal to the previous metric's are shared. */
    vigil_batch *b = d->b;
    if (b->count == b->cap && (rc = vigil__array_grow((void **)&b->metrics, &b->cap, b->count + 1,
                                                      sizeof(vigil_metric))) != VIGIL_OK)
        return rc;
    if (b->ntags + ntags > b->tags_cap && (rc = vigil__batch_reserve_tags(b, ntags)) != VIGIL_OK)
        return rc;
    const vigil_metric *prev = b->count ? &b->metrics[b->count - 1] : NULL;
    const vigil_tag *ptags = prev && b->tags ? b->tags + d->prev_off : NULL;
    vigil_metric *m = &b->metrics[b->count];
    vigil_tag *dst = b->tags ? b->tags + b->ntags : NULL; /* NULL: no tags yet */
    if (!(m->name = share(b, prev ? prev->name : NULL, d->prev_nlen, name, nlen)))
        return VIGIL_ENOMEM;
    size_t same = prev ? prev->ntags : 0;
    for (size_t i = 0; i < ntags; i++) {
        const vigil_tag *pt = i < same ? &ptags[i] : NULL;
        if (!(dst[i].key =
                  share(b, pt ? pt->key : NULL, d->prev_klen[i], tags[i].key, tags[i].klen)) ||
            !(dst[i].value =
                  share(b, pt ? pt->value : NULL, d->prev_vlen[i], tags[i].value, tags[i].vlen)))
            return VIGIL_ENOMEM;
        d->prev_klen[i] = tags[i].klen;
        d->prev_vlen[i] = tags[i].vlen;
    }
    d->prev_nlen = nlen;
    m->error = NULL;
    if (err && !(m->error = vigil__batch_strcopy(b, err, elen)))
        return VIGIL_ENOMEM;
    m->value = value;
    m->ts_ms = ts;
    m->ntags = ntags;
    m->tags = NULL; /* pointed into b->tags once the array stops moving */
    d->prev_off = b->ntags;
    b->ntags += ntags;
    b->count++;
    return VIGIL_OK;
}

static int top_string(const cJSON *v, const char *field, size_t max, const char **out)
{
    if (!is_type(v, cJSON_String))
        return vigil__error_set(VIGIL_ETYPE, "%s: expected a string, got %s", field, type_name(v));
    size_t len = strlen(v->valuestring);
    if (len == 0)
        return vigil__error_set(VIGIL_EVALUE, "%s: expected a non-empty string", field);
    if (len > max)
        return vigil__error_set(VIGIL_ELIMIT, "%s: longer than %zu bytes (%zu)", field, max, len);
    *out = v->valuestring;
    return VIGIL_OK;
}

static int decode_root(vigil_batch *b, const cJSON *root, const vigil_batch_decode_options *o)
{
    const cJSON *agent = NULL, *id = NULL, *metrics = NULL;
    const char *agent_s = NULL, *id_s = NULL;
    int rc;
    if (!is_type(root, cJSON_Object))
        return vigil__error_set(VIGIL_ETYPE, "top level: expected an object, got %s",
                                type_name(root));
    for (const cJSON *c = root->child; c; c = c->next) {
        const cJSON **slot = strcmp(c->string, "metrics") == 0    ? &metrics
                             : strcmp(c->string, "agent") == 0    ? &agent
                             : strcmp(c->string, "batch_id") == 0 ? &id
                                                                  : NULL;
        if (!slot || *slot) {
            vigil__json_path p;
            vigil__json_path_init(&p);
            vigil__json_path_key(&p, c->string, strlen(c->string));
            return vigil__error_set(VIGIL_EINVAL, "%s: %s field", vigil__json_path_str(&p),
                                    slot ? "duplicate" : "unknown");
        }
        *slot = c;
    }
    if (agent && (rc = top_string(agent, "agent", VIGIL_AGENT_ID_MAX, &agent_s)) != VIGIL_OK)
        return rc;
    if (!agent && o->require_agent)
        return vigil__error_set(VIGIL_EMISSING, "agent: required field is missing");
    if (id && (rc = top_string(id, "batch_id", VIGIL_BATCH_ID_MAX, &id_s)) != VIGIL_OK)
        return rc;
    if (!metrics)
        return vigil__error_set(VIGIL_EMISSING, "metrics: required field is missing");
    if (!is_type(metrics, cJSON_Array))
        return vigil__error_set(VIGIL_ETYPE, "metrics: expected an array, got %s",
                                type_name(metrics));

    size_t limit = o->max_metrics ? o->max_metrics : VIGIL_BATCH_DEFAULT_MAX_METRICS;
    if (b->max_metrics < limit)
        limit = b->max_metrics;
    decoder d;
    d.b = b;
    d.default_ts = o->default_ts_ms;
    d.index = 0;
    d.prev_off = 0;
    d.prev_nlen = 0;
    for (const cJSON *c = metrics->child; c; c = c->next, d.index++) {
        if (d.index >= limit)
            return vigil__error_set(VIGIL_ELIMIT, "metrics: more than %zu metrics", limit);
        if ((rc = decode_metric(&d, c)) != VIGIL_OK)
            return rc;
    }
    vigil__batch_fix_tags(b);
    if ((rc = vigil_batch_set_agent(b, agent_s)) != VIGIL_OK ||
        (rc = vigil_batch_set_id(b, id_s)) != VIGIL_OK)
        return rc;
    return VIGIL_OK;
}

int vigil_batch_decode_json(vigil_batch *b, const char *json, size_t len,
                            const vigil_batch_decode_options *opts)
{
    vigil_batch_decode_options defaults = VIGIL_BATCH_DECODE_OPTIONS_INIT;
    vigil__json_doc doc;
    if (!b)
        return vigil__error_set(VIGIL_EINVAL, "decode: batch is NULL");
    vigil_batch_clear(b);
    if (!json)
        return vigil__error_set(VIGIL_EINVAL, "decode: JSON text is NULL");
    if (!opts)
        opts = &defaults;
    if (vigil__version_check("decode options", opts->version, VIGIL_BATCH_DECODE_OPTIONS_VERSION))
        return VIGIL_EVERSION;
    if (opts->default_ts_ms < 0 || opts->default_ts_ms > VIGIL__METRIC_TS_MAX)
        return vigil__error_set(VIGIL_EINVAL, "decode options: default_ts_ms out of range");
    /* The tree's budget, from max_metrics: the root's few fields, the
     * metrics array, a metric's fields, one tag past VIGIL_METRIC_TAGS_MAX, and in all
     * VIGIL__METRIC_NODES_PER_METRIC values per metric on average. A body of
     * many small values ({"metrics":[0,0,...]}) is refused (VIGIL_ELIMIT)
     * after 2 x max_metrics + 2 of them, before the rest is built (the
     * decoder refuses more than max_metrics with its own message). */
    size_t limit = opts->max_metrics ? opts->max_metrics : VIGIL_BATCH_DEFAULT_MAX_METRICS;
    if (b->max_metrics < limit)
        limit = b->max_metrics;
    vigil__json_limits lim;
    memset(&lim, 0, sizeof(lim));
    lim.max_children[0] = 8;
    lim.max_children[1] = limit > SIZE_MAX / 4 ? 0 : 2 * limit + 2;
    lim.max_children[2] = 8;
    lim.max_children[3] = VIGIL_METRIC_TAGS_MAX + 1;
    lim.max_nodes = limit > (SIZE_MAX - 64) / VIGIL__METRIC_NODES_PER_METRIC
                        ? 0
                        : 64 + (limit + 1) * VIGIL__METRIC_NODES_PER_METRIC;
    int rc = vigil__json_parse_doc_limited(&doc, json, len, VIGIL__METRIC_JSON_DEPTH, &lim);
    if (rc == VIGIL_OK) {
        rc = decode_root(b, doc.root, opts);
        vigil__json_doc_free(&doc);
    }
    if (rc != VIGIL_OK)
        vigil_batch_clear(b);
    return rc;
}

/* ---- encode ------------------------------------------------------------------ */

/* Appends a string known to need no escaping (names, tag keys). */
static int put_plain(vigil_buf *out, const char *s)
{
    size_t n = strlen(s);
    int rc = vigil__buf_grow(out, n + 2);
    if (rc)
        return rc;
    char *p = out->ptr + out->size;
    *p++ = '"';
    memcpy(p, s, n);
    p[n] = '"';
    p[n + 1] = '\0';
    out->size += n + 2;
    return VIGIL_OK;
}

#define TRY(x)                      \
    do {                            \
        if ((rc = (x)) != VIGIL_OK) \
            return rc;              \
    } while (0)

static int encode_metric(vigil_buf *out, const vigil_metric *m)
{
    int rc;
    TRY(vigil__buf_put(out, "{\"name\":", 8));
    TRY(put_plain(out, m->name));
    TRY(vigil__buf_put(out, ",\"value\":", 9));
    if (m->error)
        TRY(vigil__buf_put(out, "null", 4));
    else
        TRY(vigil__json_put_double(out, m->value));
    TRY(vigil__buf_put(out, ",\"ts\":", 6));
    TRY(vigil__json_put_int64(out, m->ts_ms));
    if (m->ntags) {
        TRY(vigil__buf_put(out, ",\"tags\":{", 9));
        for (size_t i = 0; i < m->ntags; i++) {
            if (i)
                TRY(vigil__buf_putc(out, ','));
            TRY(put_plain(out, m->tags[i].key));
            TRY(vigil__buf_putc(out, ':'));
            TRY(vigil__json_put_string(out, m->tags[i].value, strlen(m->tags[i].value)));
        }
        TRY(vigil__buf_putc(out, '}'));
    }
    if (m->error) {
        TRY(vigil__buf_put(out, ",\"error\":", 9));
        TRY(vigil__json_put_string(out, m->error, strlen(m->error)));
    }
    return vigil__buf_putc(out, '}');
}

int vigil_batch_encode_json(vigil_buf *out, const vigil_batch *b)
{
    int rc;
    if (!out || !b)
        return vigil__error_set(VIGIL_EINVAL, "encode: %s is NULL", out ? "batch" : "output");
    vigil__buf_clear(out);
    /* A first guess at the size saves most of the doublings. */
    TRY(vigil__buf_grow(out, 64 + b->count * 96 + b->ntags * 24));
    TRY(vigil__buf_putc(out, '{'));
    if (b->agent) {
        TRY(vigil__buf_put(out, "\"agent\":", 8));
        TRY(vigil__json_put_string(out, b->agent, strlen(b->agent)));
        TRY(vigil__buf_putc(out, ','));
    }
    if (b->id) {
        TRY(vigil__buf_put(out, "\"batch_id\":", 11));
        TRY(vigil__json_put_string(out, b->id, strlen(b->id)));
        TRY(vigil__buf_putc(out, ','));
    }
    TRY(vigil__buf_put(out, "\"metrics\":[", 11));
    for (size_t i = 0; i < b->count; i++) {
        if (i)
            TRY(vigil__buf_putc(out, ','));
        TRY(encode_metric(out, &b->metrics[i]));
    }
    return vigil__buf_put(out, "]}", 2);
}
