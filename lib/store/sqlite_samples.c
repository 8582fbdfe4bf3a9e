/*
 * SQLite backend: series and samples (write, query, latest), the series id
 * cache, and retention.
 */
#include "core/hash.h"
#include "store/sqlite_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- series id cache ----------------------------------------------------------- */

void vigil__sq_cache_clear(sq_cache *c)
{
    for (size_t i = 0; i < c->n; i++)
        vigil__free(c->ent[i].key);
    if (c->cap)
        memset(c->idx, 0, c->cap * sizeof(*c->idx));
    c->n = c->guess = 0;
}

void vigil__sq_cache_free(sq_cache *c)
{
    vigil__sq_cache_clear(c);
    vigil__free(c->ent);
    vigil__free(c->idx);
    memset(c, 0, sizeof(*c));
}

static int cache_find(sq_cache *c, const char *key, uint64_t h, int64_t *id)
{
    if (!c->n)
        return 0;
    if (c->guess < c->n) {
        const sq_slot *e = &c->ent[c->guess];
        if (e->hash == h && strcmp(e->key, key) == 0) {
            *id = e->id;
            c->guess++;
            return 1;
        }
    }
    size_t mask = c->cap - 1;
    for (size_t i = (size_t)h & mask; c->idx[i]; i = (i + 1) & mask) {
        const sq_slot *e = &c->ent[c->idx[i] - 1];
        if (e->hash == h && strcmp(e->key, key) == 0) {
            *id = e->id;
            c->guess = c->idx[i];
            return 1;
        }
    }
    return 0;
}

/* Past the cache's limit a series is not cached (and is looked up in the
 * database each time); an allocation failure is reported. */
static int cache_put(sq_cache *c, const char *key, size_t len, uint64_t h, int64_t id)
{
    if (c->n >= c->max || c->n >= UINT32_MAX - 1)
        return VIGIL_OK;
    if (vigil__array_grow((void **)&c->ent, &c->ent_cap, c->n + 1, sizeof(*c->ent)) != 0)
        return vigil__error_oom();
    if ((c->n + 1) * 2 > c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 1024;
        uint32_t *ni = vigil__calloc(ncap, sizeof(*ni));
        if (!ni)
            return vigil__error_oom();
        for (size_t e = 0; e < c->n; e++) {
            size_t j = (size_t)c->ent[e].hash & (ncap - 1);
            while (ni[j])
                j = (j + 1) & (ncap - 1);
            ni[j] = (uint32_t)(e + 1);
        }
        vigil__free(c->idx);
        c->idx = ni;
        c->cap = ncap;
    }
    char *k = vigil__strndup(key, len);
    if (!k)
        return vigil__error_oom();
    size_t mask = c->cap - 1;
    size_t i = (size_t)h & mask;
    while (c->idx[i])
        i = (i + 1) & mask;
    c->ent[c->n].hash = h;
    c->ent[c->n].id = id;
    c->ent[c->n].key = k;
    c->idx[i] = (uint32_t)++c->n;
    c->guess = c->n;
    return VIGIL_OK;
}

/* The id of the metric's series, created (with its tags) when new. */
static int series_id(vigil__sq *s, const vigil_metric *m, int64_t *id, int *created)
{
    int rc = vigil_metric_series_key(&s->key, m);
    if (rc)
        return rc;
    uint64_t h = vigil__hash_bytes(s->key.ptr, s->key.size);
    if (cache_find(&s->cache, s->key.ptr, h, id))
        return VIGIL_OK;
    /* The key is the name followed by the canonical tags text. */
    size_t nlen = strlen(m->name);
    const char *tags = s->key.ptr + nlen;
    int tlen = (int)(s->key.size - nlen);
    sqlite3_stmt *st = vigil__sq_stmt(s, SQ_SERIES_FIND, &rc);
    if (!st)
        return rc;
    sqlite3_bind_text(st, 1, m->name, (int)nlen, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, tags, tlen, SQLITE_STATIC);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        return cache_put(&s->cache, s->key.ptr, s->key.size, h, *id);
    }
    sqlite3_reset(st);
    if (r != SQLITE_DONE)
        return vigil__sq_error(s, r, "looking up a series");

    if (!(st = vigil__sq_stmt(s, SQ_SERIES_INSERT, &rc)))
        return rc;
    sqlite3_bind_text(st, 1, m->name, (int)nlen, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, tags, tlen, SQLITE_STATIC);
    if ((rc = vigil__sq_exec_stmt(s, st, "creating a series")) != 0)
        return rc;
    *id = sqlite3_last_insert_rowid(s->db);
    *created = 1;
    if ((rc = vigil__sq_tails_created(s, *id)) != 0)
        return rc;
    return cache_put(&s->cache, s->key.ptr, s->key.size, h, *id);
}

/* ---- write ------------------------------------------------------------------------ */

/* Records (agent, batch id); *dup is set when the pair was recorded before. */
static int record_batch_id(vigil__sq *s, const char *agent, const char *bid, int *dup)
{
    int rc;
    sqlite3_stmt *st = vigil__sq_stmt(s, SQ_BATCH_INSERT, &rc);
    if (!st)
        return rc;
    sqlite3_bind_text(st, 1, agent ? agent : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, bid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, vigil__now_ms());
    if ((rc = vigil__sq_exec_stmt(s, st, "recording the batch id")) != 0)
        return rc;
    *dup = sqlite3_changes(s->db) == 0;
    return VIGIL_OK;
}

/* Looks up (or creates) the series of metrics [from, from + n) of `b` and
 * appends one row per metric to s->rows (*nrows of them so far). */
static int collect_rows(vigil__sq *s, const vigil_batch *b, size_t from, size_t n, size_t *nrows,
                        vigil_store_write_result *res, int *created_any)
{
    if (vigil__array_grow((void **)&s->rows, &s->rows_cap, *nrows + n, sizeof(*s->rows)) != 0)
        return vigil__error_oom();
    sq_row *row = s->rows + *nrows;
    for (size_t i = from; i < from + n; i++, row++) {
        int created = 0;
        int rc = series_id(s, vigil_batch_get(b, i), &row->series, &created);
        if (created) {
            *created_any = 1;
            res->new_series++;
        }
        if (rc)
            return rc;
        row->index = i;
    }
    *nrows += n;
    res->written = n;
    return VIGIL_OK;
}

#define RADIX_BITS 11
#define RADIX_SIZE (1u << RADIX_BITS)

/* Sorts s->rows[0, n) by series, keeping the batch order of the rows of a
 * series (a stable LSD radix sort on the series id), unless they are in
 * order already (one series, or a batch written series by series). */
static int sort_rows(vigil__sq *s, size_t n)
{
    int64_t max = 0;
    int sorted = 1;
    for (size_t i = 0; i < n; i++) {
        if (s->rows[i].series > max)
            max = s->rows[i].series;
        if (i && s->rows[i].series < s->rows[i - 1].series)
            sorted = 0;
    }
    if (sorted)
        return VIGIL_OK;
    /* rows [n, 2n): the scratch space of the passes */
    if (vigil__array_grow((void **)&s->rows, &s->rows_cap, 2 * n, sizeof(*s->rows)) != 0)
        return vigil__error_oom();
    sq_row *from = s->rows, *to = s->rows + n;
    size_t count[RADIX_SIZE];
    for (unsigned shift = 0; shift < 64 && (uint64_t)max >> shift; shift += RADIX_BITS) {
        memset(count, 0, sizeof(count));
        for (size_t i = 0; i < n; i++)
            count[((uint64_t)from[i].series >> shift) & (RADIX_SIZE - 1)]++;
        size_t sum = 0;
        for (size_t d = 0; d < RADIX_SIZE; d++) {
            size_t c = count[d];
            count[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++)
            to[count[((uint64_t)from[i].series >> shift) & (RADIX_SIZE - 1)]++] = from[i];
        sq_row *t = from;
        from = to;
        to = t;
    }
    if (from != s->rows)
        memcpy(s->rows, from, n * sizeof(*s->rows));
    return VIGIL_OK;
}

/* Sorts x[0, n) by ts, stably (bottom-up merge sort through s->merged). */
static int sort_by_ts(vigil__sq *s, vigil__sample *x, size_t n)
{
    size_t i = 1;
    while (i < n && x[i - 1].ts <= x[i].ts)
        i++;
    if (i >= n)
        return VIGIL_OK;
    if (vigil__array_grow((void **)&s->merged, &s->merged_cap, n, sizeof(*s->merged)) != 0)
        return vigil__error_oom();
    vigil__sample *from = x, *to = s->merged;
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t a = lo, b = mid, k = lo;
            while (a < mid && b < hi)
                to[k++] = from[b].ts < from[a].ts ? from[b++] : from[a++];
            while (a < mid)
                to[k++] = from[a++];
            while (b < hi)
                to[k++] = from[b++];
        }
        vigil__sample *t = from;
        from = to;
        to = t;
    }
    if (from != x)
        memcpy(x, from, n * sizeof(*x));
    return VIGIL_OK;
}

/* Writes rows [0, n) of s->rows (metrics of `b`, sorted by series) into the
 * chunks, or into one write log row, series by series: each series' samples
 * sorted by ts, of two with the same ts the later in the batch kept. */
static int write_rows(vigil__sq *s, const vigil_batch *b, size_t n, int use_log)
{
    int rc;
    if (use_log && (rc = vigil__sq_log_begin(s)) != 0)
        return rc;
    size_t i = 0;
    while (i < n) {
        int64_t series = s->rows[i].series;
        size_t j = i;
        while (j < n && s->rows[j].series == series)
            j++;
        if (vigil__array_grow((void **)&s->samples, &s->samples_cap, j - i, sizeof(*s->samples)))
            return vigil__error_oom();
        for (size_t k = i; k < j; k++) {
            const vigil_metric *m = vigil_batch_get(b, s->rows[k].index);
            vigil__sample *x = &s->samples[k - i];
            x->ts = m->ts_ms;
            x->value = m->error ? 0 : m->value;
            x->error = m->error;
            x->error_len = m->error ? strlen(m->error) : 0;
        }
        size_t k = j - i;
        if ((rc = sort_by_ts(s, s->samples, k)) != 0)
            return rc;
        size_t u = 0;
        for (size_t t = 0; t < k; t++) {
            if (u && s->samples[u - 1].ts == s->samples[t].ts)
                u--; /* the later one replaces it */
            s->samples[u++] = s->samples[t];
        }
        rc = use_log ? vigil__sq_log_put(s, series, s->samples, u)
                     : vigil__sq_chunks_write(s, series, s->samples, u);
        if (rc)
            return rc;
        i = j;
    }
    return use_log ? vigil__sq_log_insert(s) : VIGIL_OK;
}

/* A write brings at least this many samples per series on average: one
 * chunk update per series costs little per sample, so while the log is
 * empty it goes straight into the chunks. */
#define LOG_DENSE 8

/* Whether the write of rows [0, n) goes through the log: always, unless it
 * is dense and nothing is in the log (no row, folded or not, that a replay
 * could apply over what this write puts in the chunks). */
static int through_log(const vigil__sq *s, size_t n)
{
    const sq_log *l = &s->log;
    if (!l->on)
        return 0;
    if (l->rows || l->samples || !l->loaded)
        return 1;
    size_t nseries = 0;
    for (size_t i = 0; i < n; i++)
        nseries += !i || s->rows[i].series != s->rows[i - 1].series;
    return n < LOG_DENSE * nseries;
}

/* Writes `nparts` parts of `b` in one transaction; on failure rolls back,
 * zeroes the results and returns the code. The batch ids are recorded and
 * the series looked up part by part, in order; then the samples of every
 * part that is not a duplicate are written together, series by series. */
static int write_parts(vigil__sq *s, const vigil_batch *b, const vigil_store_batch_part *parts,
                       size_t nparts, vigil_store_write_result *res, const char *op)
{
    int rc;
    char what[64];
    if ((rc = vigil__sq_log_admit(s)) != 0)
        return rc;
    snprintf(what, sizeof(what), "%s: starting a transaction", op);
    if ((rc = vigil__sq_begin(s, what)) != 0)
        return rc;
    rc = vigil__sq_tails_check(s);
    if (rc == VIGIL_OK)
        rc = vigil__sq_log_sync(s); /* another connection's rows, before ours */
    int created_any = 0;
    size_t from = 0, nrows = 0;
    for (size_t i = 0; i < nparts && rc == VIGIL_OK; i++) {
        int dup = 0;
        if (parts[i].batch_id)
            rc = record_batch_id(s, parts[i].agent, parts[i].batch_id, &dup);
        if (rc == VIGIL_OK && dup)
            res[i].duplicate = 1;
        else if (rc == VIGIL_OK)
            rc = collect_rows(s, b, from, parts[i].count, &nrows, &res[i], &created_any);
        from += parts[i].count;
    }
    if (rc == VIGIL_OK)
        rc = sort_rows(s, nrows);
    int use_log = through_log(s, nrows);
    if (rc == VIGIL_OK)
        rc = write_rows(s, b, nrows, use_log);
    if (rc == VIGIL_OK) {
        snprintf(what, sizeof(what), "%s: committing", op);
        rc = vigil__sq_commit(s, what);
    }
    if (rc != VIGIL_OK) {
        vigil__sq_rollback(s);
        /* Ids of series created in the rolled-back transaction are void. */
        if (created_any)
            vigil__sq_cache_clear(&s->cache);
        vigil__sq_tails_clear(s); /* and what the cache says of their chunks */
        memset(res, 0, nparts * sizeof(*res));
        return rc;
    }
    if (use_log)
        vigil__sq_log_committed(s);
    if (s->log.on)
        vigil__sq_log_tend(s);
    return VIGIL_OK;
}

int vigil__sq_write(void *h, const vigil_batch *batch, vigil_store_write_result *res)
{
    vigil_store_batch_part part = {vigil_batch_agent(batch), vigil_batch_id(batch),
                                   vigil_batch_count(batch)};
    int rc = vigil__sq_check_writable(h, "write");
    if (rc)
        return rc;
    if ((rc = write_parts(h, batch, &part, 1, res, "write")) != 0)
        vigil__error_prefix("batch of %zu metrics not stored", vigil_batch_count(batch));
    return rc;
}

int vigil__sq_write_group(void *h, const vigil_batch *merged, const vigil_store_batch_part *parts,
                          size_t nparts, vigil_store_write_result *results)
{
    int rc = vigil__sq_check_writable(h, "write group");
    if (rc)
        return rc;
    if ((rc = write_parts(h, merged, parts, nparts, results, "write group")) != 0)
        vigil__error_prefix("%zu batches (%zu metrics) not stored", nparts,
                            vigil_batch_count(merged));
    return rc;
}

/* ---- series selection ------------------------------------------------------------ */

typedef int (*series_fn)(vigil__sq *s, const vigil_store_series *series, void *ctx);

/* Parses canonical tags text {k="v",...} (escapes \\ \" \n) into s->tags. */
static int parse_tags(vigil__sq *s, const char *text, size_t *ntags)
{
    vigil__buf_clear(&s->tagbuf);
    *ntags = 0;
    if (!*text)
        return VIGIL_OK;
    size_t len = strlen(text);
    /* Unescaped text is never longer than the input. */
    if (vigil__buf_grow(&s->tagbuf, len + 1) != 0)
        return vigil__error_oom();
    char *out = s->tagbuf.ptr;
    const char *p = text;
    size_t n = 0;
    if (*p++ != '{')
        goto bad;
    while (*p != '}') {
        if (n == VIGIL_METRIC_TAGS_MAX)
            goto bad;
        if (vigil__array_grow((void **)&s->tags, &s->tags_cap, n + 1, sizeof(*s->tags)) != 0)
            return vigil__error_oom();
        s->tags[n].key = out;
        while (*p && *p != '=')
            *out++ = *p++;
        *out++ = '\0';
        if (p[0] != '=' || p[1] != '"')
            goto bad;
        p += 2;
        s->tags[n].value = out;
        while (*p != '"') {
            if (!*p)
                goto bad;
            if (*p == '\\') {
                p++;
                if (*p == 'n')
                    *out++ = '\n';
                else if (*p == '\\' || *p == '"')
                    *out++ = *p;
                else
                    goto bad;
                p++;
            } else {
                *out++ = *p++;
            }
        }
        *out++ = '\0';
        p++;
        n++;
        if (*p == ',')
            p++;
        else if (*p != '}')
            goto bad;
    }
    if (p[1] != '\0')
        goto bad;
    *ntags = n;
    return VIGIL_OK;
bad:
    return vigil__error_set(VIGIL_ECORRUPT, "sqlite: series tags \"%.200s\" are malformed (%s)",
                            text, s->path);
}

static int matches(const vigil_store_query *q, const vigil_tag *tags, size_t ntags)
{
    for (size_t i = 0; i < q->nmatchers; i++) {
        const vigil_store_matcher *m = &q->matchers[i];
        const char *val = NULL;
        for (size_t t = 0; t < ntags; t++) {
            if (strcmp(tags[t].key, m->key) == 0) {
                val = tags[t].value;
                break;
            }
        }
        int ok;
        switch (m->op) {
        case VIGIL_STORE_MATCH_EQ: ok = val && strcmp(val, m->value) == 0; break;
        case VIGIL_STORE_MATCH_NE: ok = !val || strcmp(val, m->value) != 0; break;
        case VIGIL_STORE_MATCH_GLOB: ok = val && sqlite3_strglob(m->value, val) == 0; break;
        default: ok = !val || sqlite3_strglob(m->value, val) != 0; break;
        }
        if (!ok)
            return 0;
    }
    return 1;
}

/* Calls fn for every series matching q's name and matchers, ordered by name, then tags. */
static int each_series(vigil__sq *s, const vigil_store_query *q, series_fn fn, void *ctx)
{
    int rc;
    sq_stmt_id sid = !q->name                             ? SQ_SERIES_ALL
                     : q->name_op == VIGIL_STORE_MATCH_EQ ? SQ_SERIES_BY_NAME
                                                          : SQ_SERIES_BY_GLOB;
    sqlite3_stmt *st = vigil__sq_stmt(s, sid, &rc);
    if (!st)
        return rc;
    if (q->name)
        sqlite3_bind_text(st, 1, q->name, -1, SQLITE_STATIC);
    int r;
    rc = VIGIL_OK;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        vigil_store_series ser;
        ser.id = sqlite3_column_int64(st, 0);
        ser.name = (const char *)sqlite3_column_text(st, 1);
        const char *tags = (const char *)sqlite3_column_text(st, 2);
        if (!ser.name || !tags) {
            rc = vigil__error_oom();
            break;
        }
        if ((rc = parse_tags(s, tags, &ser.ntags)) != 0)
            break;
        ser.tags = s->tags;
        if (!matches(q, ser.tags, ser.ntags))
            continue;
        vigil__buf_clear(&s->qkey);
        if (vigil__buf_puts(&s->qkey, ser.name) != 0 || vigil__buf_puts(&s->qkey, tags) != 0) {
            rc = vigil__error_oom();
            break;
        }
        ser.key = s->qkey.ptr;
        if ((rc = fn(s, &ser, ctx)) != 0)
            break;
    }
    if (rc == VIGIL_OK && r != SQLITE_DONE)
        rc = vigil__sq_error(s, r, "reading series");
    sqlite3_reset(st);
    return rc;
}

/* ---- queries ------------------------------------------------------------------------ */

typedef struct point_ctx {
    const vigil_store_query *q;
    vigil_store_point_cb cb;
    vigil_store_series_cb scb;
    void *payload;
} point_ctx;

static int64_t q_to(const vigil_store_query *q)
{
    return q->to_ms ? q->to_ms : INT64_MAX;
}

static int64_t q_from(const vigil_store_query *q)
{
    return (q->from_ms || q->to_ms) ? q->from_ms : INT64_MIN;
}

/* The state of one series' points: raw, or aggregated step by step. */
typedef struct emit_ctx {
    point_ctx *c;
    vigil__sq *s;
    const vigil_store_series *ser;
    size_t left;  /* points still allowed (SIZE_MAX: no limit) */
    int limited;  /* stopped at the limit, not by the callback */
    int have;     /* a step is open */
    int64_t step; /* its start */
    double sum, min, max, last;
    int64_t count;
} emit_ctx;

#define EMIT_LIMIT 1 /* private: stop, the limit is reached */

static int emit(emit_ctx *e, int64_t ts, double value, const char *error)
{
    if (!e->left) {
        e->limited = 1;
        return EMIT_LIMIT;
    }
    vigil_store_point p = {ts, value, error};
    int rc = e->c->cb(e->ser, &p, e->c->payload);
    e->left--;
    return rc;
}

static int raw_point(const vigil__sample *x, void *vctx)
{
    emit_ctx *e = vctx;
    if (!x->error)
        return emit(e, x->ts, x->value, NULL);
    vigil__buf_clear(&e->s->errtext);
    if (vigil__buf_put(&e->s->errtext, x->error, x->error_len) != 0 ||
        vigil__buf_putc(&e->s->errtext, '\0') != 0)
        return vigil__error_oom();
    return emit(e, x->ts, NAN, e->s->errtext.ptr);
}

/* Emits the open step's aggregate. */
static int step_flush(emit_ctx *e)
{
    if (!e->have)
        return VIGIL_OK;
    e->have = 0;
    double v;
    switch (e->c->q->aggregate) {
    case VIGIL_STORE_AGG_MEAN: v = e->sum / (double)e->count; break;
    case VIGIL_STORE_AGG_MIN: v = e->min; break;
    case VIGIL_STORE_AGG_MAX: v = e->max; break;
    case VIGIL_STORE_AGG_SUM: v = e->sum; break;
    case VIGIL_STORE_AGG_COUNT: v = (double)e->count; break;
    default: v = e->last; break;
    }
    return emit(e, e->step, v, NULL);
}

/* The start of the step holding ts: ts - (ts mod step), aligned to the epoch. */
static int64_t step_of(int64_t ts, int64_t step)
{
    int64_t r = ts % step;
    if (r < 0)
        r += step;
    return (int64_t)((uint64_t)ts - (uint64_t)r);
}

static int agg_point(const vigil__sample *x, void *vctx)
{
    emit_ctx *e = vctx;
    if (x->error)
        return VIGIL_OK; /* failed collections have no value to aggregate */
    int64_t st = step_of(x->ts, e->c->q->step_ms);
    if (e->have && st != e->step) {
        int rc = step_flush(e);
        if (rc)
            return rc;
    }
    if (!e->have) {
        e->have = 1;
        e->step = st;
        e->sum = 0;
        e->count = 0;
        e->min = e->max = x->value;
    }
    e->sum += x->value;
    e->count++;
    if (x->value < e->min)
        e->min = x->value;
    if (x->value > e->max)
        e->max = x->value;
    e->last = x->value;
    return VIGIL_OK;
}

/* With the write log, a query reads the log and the chunks in one snapshot
 * (a read transaction, unless one is open), so that a fold committed by
 * another connection in between cannot show a sample twice or a replaced
 * one. */
static int read_begin(vigil__sq *s, int *began)
{
    *began = 0;
    if (!s->log.on || !sqlite3_get_autocommit(s->db))
        return VIGIL_OK;
    int r = sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL);
    if (r != SQLITE_OK)
        return vigil__sq_error(s, r, "starting a read transaction");
    *began = 1;
    return VIGIL_OK;
}

static void read_end(vigil__sq *s, int began)
{
    if (began)
        sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
}

/* The samples of a chunk scan merged with the pending ones of the series
 * (write log): in ts order; at the same ts, the pending sample (newer). */
typedef struct merge_ctx {
    const vigil__sample *p, *end;
    sq_sample_fn cb;
    void *ctx;
    int stopped; /* cb returned non-zero */
} merge_ctx;

static int merge_point(const vigil__sample *x, void *vctx)
{
    merge_ctx *m = vctx;
    int rc;
    while (m->p < m->end && m->p->ts < x->ts)
        if ((rc = m->cb(m->p++, m->ctx)) != 0) {
            m->stopped = 1;
            return rc;
        }
    if (m->p < m->end && m->p->ts == x->ts)
        x = m->p++;
    if ((rc = m->cb(x, m->ctx)) != 0)
        m->stopped = 1;
    return rc;
}

/* The first pending sample at or after ts. */
static const vigil__sample *pend_lower(const sq_pend *p, int64_t ts)
{
    size_t lo = 0, hi = p->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->x[mid].ts < ts)
            lo = mid + 1;
        else
            hi = mid;
    }
    return p->x + lo;
}

/* vigil__sq_chunks_scan, with the pending samples of the series. */
static int scan_series(vigil__sq *s, int64_t series, int64_t from, int64_t to, sq_sample_fn cb,
                       void *ctx)
{
    const sq_pend *p = vigil__sq_log_pending(s, series);
    if (!p)
        return vigil__sq_chunks_scan(s, series, from, to, cb, ctx);
    merge_ctx m = {pend_lower(p, from), pend_lower(p, to), cb, ctx, 0};
    int rc = vigil__sq_chunks_scan(s, series, from, to, merge_point, &m);
    if (rc || m.stopped)
        return rc;
    while (m.p < m.end)
        if ((rc = cb(m.p++, ctx)) != 0)
            return rc == 1 ? VIGIL_OK : rc; /* as vigil__sq_chunks_scan does */
    return VIGIL_OK;
}

static int emit_points(vigil__sq *s, const vigil_store_series *ser, void *vctx)
{
    point_ctx *c = vctx;
    const vigil_store_query *q = c->q;
    emit_ctx e;
    memset(&e, 0, sizeof(e));
    e.c = c;
    e.s = s;
    e.ser = ser;
    e.left = q->limit ? q->limit : SIZE_MAX;
    int raw = q->step_ms == 0;
    int rc = scan_series(s, ser->id, q_from(q), q_to(q), raw ? raw_point : agg_point, &e);
    if (rc == VIGIL_OK && !raw)
        rc = step_flush(&e);
    if (e.limited) /* not a 1 of the callback's own, which is passed on */
        rc = VIGIL_OK;
    return rc;
}

int vigil__sq_query(void *h, const vigil_store_query *q, vigil_store_point_cb cb, void *payload)
{
    point_ctx c = {q, cb, NULL, payload};
    int began = 0;
    int rc = read_begin(h, &began);
    if (rc == VIGIL_OK)
        rc = vigil__sq_log_sync(h);
    if (rc == VIGIL_OK)
        rc = each_series(h, q, emit_points, &c);
    read_end(h, began);
    return rc;
}

static int emit_series(vigil__sq *s, const vigil_store_series *ser, void *vctx)
{
    (void)s;
    point_ctx *c = vctx;
    return c->scb(ser, c->payload);
}

int vigil__sq_series_list(void *h, const vigil_store_query *q, vigil_store_series_cb cb,
                          void *payload)
{
    point_ctx c = {q, NULL, cb, payload};
    return each_series(h, q, emit_series, &c);
}

static int emit_latest(vigil__sq *s, const vigil_store_series *ser, void *vctx)
{
    point_ctx *c = vctx;
    vigil__sample x;
    int found = vigil__sq_chunks_last(s, ser->id, q_from(c->q), q_to(c->q), &x);
    if (found < 0)
        return found;
    const sq_pend *pend = vigil__sq_log_pending(s, ser->id);
    if (pend) {
        /* the last pending sample before `to`, if it is at or after `from` */
        const vigil__sample *y = pend_lower(pend, q_to(c->q));
        if (y > pend->x && y[-1].ts >= q_from(c->q) && (!found || y[-1].ts >= x.ts)) {
            x = y[-1];
            found = 1;
        }
    }
    if (!found)
        return 0;
    vigil_store_point p = {x.ts, x.error ? NAN : x.value, NULL};
    if (x.error) {
        vigil__buf_clear(&s->errtext);
        if (vigil__buf_put(&s->errtext, x.error, x.error_len) != 0 ||
            vigil__buf_putc(&s->errtext, '\0') != 0)
            return vigil__error_oom();
        p.error = s->errtext.ptr;
    }
    return c->cb(ser, &p, c->payload);
}

int vigil__sq_latest(void *h, const vigil_store_query *q, vigil_store_point_cb cb, void *payload)
{
    point_ctx c = {q, cb, NULL, payload};
    int began = 0;
    int rc = read_begin(h, &began);
    if (rc == VIGIL_OK)
        rc = vigil__sq_log_sync(h);
    if (rc == VIGIL_OK)
        rc = each_series(h, q, emit_latest, &c);
    read_end(h, began);
    return rc;
}

/* ---- retention ------------------------------------------------------------------------ */

/* One pass of retention: a transaction that deletes about chunk_rows
 * samples (whole stored chunks, so at least one and at most one stored chunk
 * past the budget) and visits at most chunk_rows series, so a pass is bounded
 * even when nothing is old. */
static int retain_chunk(vigil__sq *s, int64_t cutoff, int64_t budget,
                        vigil_store_retention_result *res)
{
    const int64_t max_visits = budget;
    int rc;
    sqlite3_stmt *st;
    if (!s->ret_batches_done) {
        if (!(st = vigil__sq_stmt(s, SQ_RET_DELETE_BATCHES, &rc)))
            return rc;
        sqlite3_bind_int64(st, 1, cutoff);
        sqlite3_bind_int64(st, 2, budget);
        if ((rc = vigil__sq_exec_stmt(s, st, "retention: deleting batch ids")) != 0)
            return rc;
        int64_t n = sqlite3_changes64(s->db);
        res->batch_ids_deleted += (uint64_t)n;
        if (n < budget)
            s->ret_batches_done = 1;
        budget -= n;
    }
    uint64_t deleted = 0; /* samples, in this transaction */
    for (int64_t visits = 0; budget > 0 && visits < max_visits; visits++) {
        if (!(st = vigil__sq_stmt(s, SQ_RET_NEXT_SERIES, &rc)))
            return rc;
        sqlite3_bind_int64(st, 1, s->ret_series);
        int r = sqlite3_step(st);
        int none = r != SQLITE_ROW || sqlite3_column_type(st, 0) == SQLITE_NULL;
        int64_t id = none ? 0 : sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        if (r != SQLITE_ROW)
            return vigil__sq_error(s, r, "retention: reading series");
        if (none) {
            res->done = 1;
            return VIGIL_OK;
        }
        int done = 0;
        uint64_t before = deleted;
        rc = vigil__sq_chunks_retain(s, id, cutoff, &budget, &deleted, &done);
        res->samples_deleted += deleted - before;
        if (rc)
            return rc;
        if (done)
            s->ret_series = id; /* this series is clean; move on */
        else
            break; /* the budget is spent */
    }
    return VIGIL_OK;
}

int vigil__sq_retain(void *h, int64_t cutoff_ms, const vigil_store_retention_options *opts,
                     vigil_store_retention_result *res)
{
    vigil__sq *s = h;
    int rc = vigil__sq_check_writable(s, "retention");
    if (rc)
        return rc;
    if (!s->ret_active || s->ret_cutoff != cutoff_ms) {
        /* Retention works on the chunks: when samples older than the
         * cutoff are pending (late ones), fold everything first, so that
         * they are deleted too. Usually none is, and no fold stalls the
         * writer. (A folded row not yet deleted that a crash replays may
         * bring an old sample back: the next pass deletes it.) */
        int old = 0;
        if ((rc = vigil__sq_log_pending_before(s, cutoff_ms, &old)) != 0)
            return rc;
        if (old && (rc = vigil__sq_log_fold_all(s)) != 0)
            return rc;
        s->ret_active = 1;
        s->ret_cutoff = cutoff_ms;
        s->ret_series = 0;
        s->ret_batches_done = 0;
    }
    size_t chunks = opts->max_chunks ? opts->max_chunks : SIZE_MAX;
    while (chunks-- > 0 && !res->done) {
        uint64_t before_s = res->samples_deleted, before_b = res->batch_ids_deleted;
        if ((rc = vigil__sq_begin(s, "retention: starting a transaction")) == 0) {
            rc = retain_chunk(s, cutoff_ms, (int64_t)opts->chunk_rows, res);
            if (rc == VIGIL_OK)
                rc = vigil__sq_commit(s, "retention: committing");
        }
        vigil__sq_tails_clear(s); /* tails may have been trimmed or deleted */
        if (rc != VIGIL_OK) {
            vigil__sq_rollback(s);
            res->samples_deleted = before_s;
            res->batch_ids_deleted = before_b;
            res->done = 0;
            s->ret_active = 0; /* the cursor may be ahead of what was committed */
            return rc;
        }
        res->chunks++;
    }
    if (res->done) {
        s->ret_active = 0;
        vigil__log(&s->logger, VIGIL_LOG_DEBUG, "store", "retention pass done", "cutoff=%lld",
                   (long long)cutoff_ms);
    }
    return VIGIL_OK;
}
