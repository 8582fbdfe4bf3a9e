/*
 * PostgreSQL backend: series and samples (write, query, latest), the series
 * id cache, day partitions and retention.
 */
#include "core/hash.h"
#include "store/pg_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS 86400000LL
/* Days around today that get a partition of their own; samples of other
 * days go to the default partition. At most this many new partitions per
 * write. */
#define DAYS_BACK       3660
#define DAYS_AHEAD      400
#define NEW_DAYS_PER_OP 64
/* The tail keeps its rows this long (ms) whatever the retention cutoff. */
#define TAIL_KEEP_MS 3600000LL

/* ---- series id cache ----------------------------------------------------------- */

void vigil__pg_cache_clear(pg_cache *c)
{
    for (size_t i = 0; i < c->cap; i++) {
        vigil__free(c->slots[i].key);
        c->slots[i].key = NULL;
    }
    c->n = 0;
}

static int cache_find(const pg_cache *c, const char *key, uint64_t h, int64_t *id)
{
    if (!c->n)
        return 0;
    size_t mask = c->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        const pg_slot *sl = &c->slots[i];
        if (!sl->key)
            return 0;
        if (sl->hash == h && strcmp(sl->key, key) == 0) {
            *id = sl->id;
            return 1;
        }
    }
}

static int cache_put(pg_cache *c, const char *key, size_t len, uint64_t h, int64_t id)
{
    if (c->n >= c->max)
        return VIGIL_OK;
    if ((c->n + 1) * 2 > c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 1024;
        pg_slot *ns = vigil__calloc(ncap, sizeof(*ns));
        if (!ns)
            return vigil__error_oom();
        for (size_t i = 0; i < c->cap; i++) {
            if (!c->slots[i].key)
                continue;
            size_t j = (size_t)c->slots[i].hash & (ncap - 1);
            while (ns[j].key)
                j = (j + 1) & (ncap - 1);
            ns[j] = c->slots[i];
        }
        vigil__free(c->slots);
        c->slots = ns;
        c->cap = ncap;
    }
    int64_t old;
    if (cache_find(c, key, h, &old))
        return VIGIL_OK;
    char *k = vigil__strndup(key, len);
    if (!k)
        return vigil__error_oom();
    size_t mask = c->cap - 1;
    size_t i = (size_t)h & mask;
    while (c->slots[i].key)
        i = (i + 1) & mask;
    c->slots[i].hash = h;
    c->slots[i].id = id;
    c->slots[i].key = k;
    c->n++;
    return VIGIL_OK;
}

/* ---- glob ----------------------------------------------------------------------- */

int vigil__pg_glob(const char *p, const char *s)
{
    for (;;) {
        char c = *p++;
        if (c == '\0')
            return *s == '\0';
        if (c == '*') {
            while (*p == '*')
                p++;
            if (!*p)
                return 1;
            for (; *s; s++)
                if (vigil__pg_glob(p, s))
                    return 1;
            return 0;
        }
        if (!*s)
            return 0;
        if (c == '?') {
            /* one character: a whole UTF-8 sequence */
            s++;
            while (((unsigned char)*s & 0xc0) == 0x80)
                s++;
            continue;
        }
        if (c == '[') {
            int neg = 0, ok = 0;
            const char *q = p;
            if (*q == '^') {
                neg = 1;
                q++;
            }
            if (*q == ']') {
                ok = *s == ']';
                q++;
            }
            while (*q && *q != ']') {
                if (q[1] == '-' && q[2] && q[2] != ']') {
                    if ((unsigned char)*s >= (unsigned char)q[0] &&
                        (unsigned char)*s <= (unsigned char)q[2])
                        ok = 1;
                    q += 3;
                } else {
                    if (*q == *s)
                        ok = 1;
                    q++;
                }
            }
            if (*q != ']')
                return 0; /* unterminated class: matches nothing, as in SQLite */
            if (ok == neg)
                return 0;
            p = q + 1;
            s++;
            continue;
        }
        if (c != *s)
            return 0;
        s++;
    }
}

/* ---- partitions ------------------------------------------------------------------- */

static int64_t day_of(int64_t ts)
{
    int64_t d = ts / DAY_MS;
    if (ts % DAY_MS < 0)
        d--;
    return d;
}

static int days_has(const pg_days *d, int64_t day)
{
    size_t lo = 0, hi = d->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (d->day[mid] == day)
            return 1;
        if (d->day[mid] < day)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static int days_add(pg_days *d, int64_t day)
{
    if (days_has(d, day))
        return VIGIL_OK;
    if (vigil__array_grow((void **)&d->day, &d->cap, d->n + 1, sizeof(*d->day)) != 0)
        return vigil__error_oom();
    size_t i = d->n;
    while (i > 0 && d->day[i - 1] > day) {
        d->day[i] = d->day[i - 1];
        i--;
    }
    d->day[i] = day;
    d->n++;
    return VIGIL_OK;
}

static void days_remove(pg_days *d, int64_t day)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->day[i] == day) {
            memmove(d->day + i, d->day + i + 1, (d->n - i - 1) * sizeof(*d->day));
            d->n--;
            return;
        }
}

/* Reads the day partitions that exist into s->days (replacing it). */
static int days_load(vigil__pg *s)
{
    PGresult *res = NULL;
    int rc = vigil__pg_exec(s, PG_PART_LIST, 0, NULL, NULL, NULL, 0, PG_RETRY, &res,
                            "listing partitions");
    if (rc)
        return rc;
    s->days.n = 0;
    for (int i = 0; rc == VIGIL_OK && i < PQntuples(res); i++)
        rc = days_add(&s->days, strtoll(PQgetvalue(res, i, 0), NULL, 10));
    PQclear(res);
    return rc;
}

/* Creates the partitions of the days of metrics [0, n) of `b` that have
 * none, in a transaction of its own before the write (creating a partition
 * locks the parent table, briefly), under an advisory lock so that hubs
 * create each one once. A day whose samples already sit in the default
 * partition keeps them there. */
static int ensure_days(vigil__pg *s, const vigil_batch *b)
{
    int64_t today = day_of(vigil__now_ms());
    int64_t want[NEW_DAYS_PER_OP];
    size_t nwant = 0;
    size_t n = vigil_batch_count(b);
    for (size_t i = 0; i < n && nwant < NEW_DAYS_PER_OP; i++) {
        int64_t d = day_of(vigil_batch_get(b, i)->ts_ms);
        if (d < today - DAYS_BACK || d > today + DAYS_AHEAD || days_has(&s->days, d))
            continue;
        size_t k = 0;
        while (k < nwant && want[k] != d)
            k++;
        if (k == nwant)
            want[nwant++] = d;
    }
    if (!nwant)
        return VIGIL_OK;
    int rc = vigil__pg_begin(s, "creating partitions");
    if (rc)
        return rc;
    rc = vigil__pg_sql(s, "SELECT pg_advisory_xact_lock(95010706685954)", PG_NO_RETRY, NULL,
                       "creating partitions");
    if (rc == VIGIL_OK)
        rc = days_load(s);
    for (size_t i = 0; rc == VIGIL_OK && i < nwant; i++) {
        if (days_has(&s->days, want[i]))
            continue;
        char sql[256];
        snprintf(sql, sizeof(sql),
                 "SAVEPOINT p; CREATE TABLE samples_d%lld PARTITION OF samples"
                 " FOR VALUES FROM (%lld) TO (%lld); RELEASE SAVEPOINT p",
                 (long long)want[i], (long long)(want[i] * DAY_MS),
                 (long long)((want[i] + 1) * DAY_MS));
        PGconn *c = s->pool[s->cur].c;
        PGresult *res = NULL;
        rc = vigil__pg_await(s, c && PQsendQuery(c, sql), &res, "creating a partition");
        if (rc)
            break;
        ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        if (st != PGRES_COMMAND_OK && state && strcmp(state, "23514") == 0) {
            /* the default partition holds samples of that day: they stay */
            PQclear(res);
            rc = vigil__pg_sql(s, "ROLLBACK TO SAVEPOINT p; RELEASE SAVEPOINT p", PG_NO_RETRY, NULL,
                               "creating partitions");
        } else if (st != PGRES_COMMAND_OK) {
            rc = vigil__pg_error(s, res, "creating a partition");
            PQclear(res);
        } else {
            PQclear(res);
        }
        if (rc == VIGIL_OK)
            rc = days_add(&s->days, want[i]);
    }
    if (rc == VIGIL_OK)
        rc = vigil__pg_commit(s, "creating partitions");
    if (rc) {
        vigil__pg_rollback(s);
        s->days.n = 0; /* reloaded next time */
    }
    return rc;
}

/* ---- write ------------------------------------------------------------------------ */

/* A series key of the write not in the cache. */
typedef struct pg_new {
    size_t row;  /* index of its first row in s->rows */
    size_t part; /* the part of that row */
    int64_t id;  /* -1: not found yet */
} pg_new;

static int cmp_row(const void *a, const void *b)
{
    const pg_row *x = a, *y = b;
    if (x->series != y->series)
        return x->series < y->series ? -1 : 1;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* The canonical key of metric m into s->key; *nlen the name's length. */
static int metric_key(vigil__pg *s, const vigil_metric *m, size_t *nlen)
{
    int rc = vigil_metric_series_key(&s->key, m);
    *nlen = strlen(m->name);
    return rc;
}

/* Looks up or creates the series of rows whose series is -1, setting
 * res[part].new_series for those created. */
static int resolve_series(vigil__pg *s, const vigil_batch *b, size_t nrows, const size_t *row_part,
                          vigil_store_write_result *res, int *created_any)
{
    pg_new *nw = NULL;
    size_t nnew = 0, cap = 0;
    int rc = VIGIL_OK;
    /* keys not cached, each once (a cache of this write's keys avoids
     * sending one twice) */
    pg_cache seen = {NULL, 0, 0, (size_t)-1};
    for (size_t r = 0; r < nrows && rc == VIGIL_OK; r++) {
        const vigil_metric *m = vigil_batch_get(b, s->rows[r].index);
        size_t nlen;
        if ((rc = metric_key(s, m, &nlen)) != 0)
            break;
        uint64_t h = vigil__hash_bytes(s->key.ptr, s->key.size);
        int64_t id;
        if (cache_find(&s->cache, s->key.ptr, h, &id)) {
            s->rows[r].series = id;
            continue;
        }
        if (cache_find(&seen, s->key.ptr, h, &id)) {
            s->rows[r].series = -2 - id; /* the index of its pg_new, resolved below */
            continue;
        }
        if (vigil__array_grow((void **)&nw, &cap, nnew + 1, sizeof(*nw)) != 0 ||
            cache_put(&seen, s->key.ptr, s->key.size, h, (int64_t)nnew) != 0) {
            rc = vigil__error_oom();
            break;
        }
        nw[nnew] = (pg_new){r, row_part[r], -1};
        s->rows[r].series = -2 - (int64_t)nnew;
        nnew++;
    }
    vigil__pg_cache_clear(&seen);
    vigil__free(seen.slots);
    /* name and tags arrays of the new keys */
    for (int round = 0; rc == VIGIL_OK && nnew && round < 3; round++) {
        vigil__buf_clear(&s->a1);
        vigil__buf_clear(&s->a2);
        size_t sent = 0;
        rc = vigil__buf_putc(&s->a1, '{') || vigil__buf_putc(&s->a2, '{') ? vigil__error_oom() : 0;
        for (size_t i = 0; rc == VIGIL_OK && i < nnew; i++) {
            if (nw[i].id >= 0)
                continue;
            const vigil_metric *m = vigil_batch_get(b, s->rows[nw[i].row].index);
            size_t nlen;
            if ((rc = metric_key(s, m, &nlen)) != 0)
                break;
            if ((sent && (vigil__buf_putc(&s->a1, ',') || vigil__buf_putc(&s->a2, ','))) ||
                vigil__pg_array_text(&s->a1, m->name, nlen) ||
                vigil__pg_array_text(&s->a2, s->key.ptr + nlen, s->key.size - nlen))
                rc = vigil__error_oom();
            sent++;
        }
        if (rc == VIGIL_OK && (vigil__buf_putc(&s->a1, '}') || vigil__buf_putc(&s->a2, '}')))
            rc = vigil__error_oom();
        if (rc || !sent)
            break;
        /* the ordinality i counts the keys sent; map it back */
        size_t *which = vigil__calloc(sent, sizeof(*which));
        if (!which) {
            rc = vigil__error_oom();
            break;
        }
        for (size_t i = 0, k = 0; i < nnew; i++)
            if (nw[i].id < 0)
                which[k++] = i;
        const char *params[2] = {s->a1.ptr, s->a2.ptr};
        PGresult *r = NULL;
        /* round 0: find; 1: create (the created ones are counted); 2: find
         * those another session created meanwhile */
        pg_stmt_id id = round == 1 ? PG_SERIES_INSERT : PG_SERIES_FIND;
        rc = vigil__pg_exec(s, id, 2, params, NULL, NULL, 0, PG_NO_RETRY, &r,
                            round == 1 ? "creating series" : "looking up series");
        for (int t = 0; rc == VIGIL_OK && t < PQntuples(r); t++) {
            int64_t sid = strtoll(PQgetvalue(r, t, 0), NULL, 10);
            long long ord = strtoll(PQgetvalue(r, t, 1), NULL, 10);
            if (ord < 1 || (size_t)ord > sent)
                continue;
            pg_new *e = &nw[which[ord - 1]];
            e->id = sid;
            if (round == 1) {
                res[e->part].new_series++;
                *created_any = 1;
            }
        }
        PQclear(r);
        vigil__free(which);
    }
    for (size_t i = 0; rc == VIGIL_OK && i < nnew; i++) {
        if (nw[i].id < 0) {
            rc = vigil__error_set(VIGIL_ERROR, "postgresql: a series could not be created (%s)",
                                  s->display);
            break;
        }
        const vigil_metric *m = vigil_batch_get(b, s->rows[nw[i].row].index);
        size_t nlen;
        if ((rc = metric_key(s, m, &nlen)) == VIGIL_OK)
            rc = cache_put(&s->cache, s->key.ptr, s->key.size,
                           vigil__hash_bytes(s->key.ptr, s->key.size), nw[i].id);
    }
    for (size_t r = 0; rc == VIGIL_OK && r < nrows; r++)
        if (s->rows[r].series <= -2)
            s->rows[r].series = nw[-2 - s->rows[r].series].id;
    vigil__free(nw);
    return rc;
}

static int put_double(vigil_buf *b, double v)
{
    if (isnan(v))
        return vigil__buf_puts(b, "NaN");
    if (isinf(v))
        return vigil__buf_puts(b, v > 0 ? "Infinity" : "-Infinity");
    return vigil__buf_printf(b, "%.17g", v);
}

/* Upserts rows [0, n) (sorted, one per (series, ts)) in statements of at
 * most VIGIL__PG_ROWS_MAX rows. */
static int upsert_rows(vigil__pg *s, const vigil_batch *b, size_t n)
{
    int rc = VIGIL_OK;
    for (size_t from = 0; from < n && rc == VIGIL_OK; from += VIGIL__PG_ROWS_MAX) {
        size_t to = from + VIGIL__PG_ROWS_MAX < n ? from + VIGIL__PG_ROWS_MAX : n;
        vigil__buf_clear(&s->a1);
        vigil__buf_clear(&s->a2);
        vigil__buf_clear(&s->a3);
        vigil__buf_clear(&s->a4);
        int bad = vigil__buf_putc(&s->a1, '{') || vigil__buf_putc(&s->a2, '{') ||
                  vigil__buf_putc(&s->a3, '{') || vigil__buf_putc(&s->a4, '{');
        for (size_t i = from; !bad && i < to; i++) {
            const vigil_metric *m = vigil_batch_get(b, s->rows[i].index);
            const char *sep = i > from ? "," : "";
            bad = vigil__buf_printf(&s->a1, "%s%lld", sep, (long long)s->rows[i].series) ||
                  vigil__buf_printf(&s->a2, "%s%lld", sep, (long long)s->rows[i].ts) ||
                  vigil__buf_puts(&s->a3, sep) || vigil__buf_puts(&s->a4, sep) ||
                  (m->error ? vigil__buf_puts(&s->a3, "NULL") : put_double(&s->a3, m->value)) ||
                  vigil__pg_array_text(&s->a4, m->error, m->error ? strlen(m->error) : 0);
        }
        bad = bad || vigil__buf_putc(&s->a1, '}') || vigil__buf_putc(&s->a2, '}') ||
              vigil__buf_putc(&s->a3, '}') || vigil__buf_putc(&s->a4, '}');
        if (bad)
            return vigil__error_oom();
        char now[24];
        const char *params[5] = {s->a1.ptr, s->a2.ptr, s->a3.ptr, s->a4.ptr,
                                 vigil__pg_i64(now, vigil__now_ms())};
        PGresult *r = NULL;
        rc = vigil__pg_exec(s, s->no_tail ? PG_SAMPLES_UPSERT_NO_TAIL : PG_SAMPLES_UPSERT,
                            s->no_tail ? 4 : 5, params, NULL, NULL, 0, PG_NO_RETRY, &r,
                            "writing samples");
        PQclear(r);
    }
    return rc;
}

/* One attempt at the transaction of write_parts(). */
static int write_txn(vigil__pg *s, const vigil_batch *b, const vigil_store_batch_part *parts,
                     size_t nparts, vigil_store_write_result *res, int *created_any,
                     int *committing)
{
    int rc = vigil__pg_begin(s, "starting a transaction");
    if (rc)
        return rc;
    size_t total = vigil_batch_count(b), nrows = 0, from = 0;
    size_t *row_part = NULL;
    if (vigil__array_grow((void **)&s->rows, &s->rows_cap, total ? total : 1, sizeof(*s->rows)) !=
            0 ||
        !(row_part = vigil__calloc(total ? total : 1, sizeof(*row_part))))
        rc = vigil__error_oom();
    char now[24];
    vigil__pg_i64(now, vigil__now_ms());
    for (size_t i = 0; rc == VIGIL_OK && i < nparts; i++) {
        int dup = 0;
        if (parts[i].batch_id) {
            const char *params[3] = {parts[i].agent ? parts[i].agent : "", parts[i].batch_id, now};
            PGresult *r = NULL;
            rc = vigil__pg_exec(s, PG_BATCH_INSERT, 3, params, NULL, NULL, 0, PG_NO_RETRY, &r,
                                "recording the batch id");
            if (rc == VIGIL_OK)
                dup = strcmp(PQcmdTuples(r), "0") == 0;
            PQclear(r);
        }
        if (rc == VIGIL_OK && dup) {
            res[i].duplicate = 1;
        } else if (rc == VIGIL_OK) {
            for (size_t k = from; k < from + parts[i].count; k++) {
                s->rows[nrows].index = k;
                s->rows[nrows].ts = vigil_batch_get(b, k)->ts_ms;
                row_part[nrows] = i;
                nrows++;
            }
            res[i].written = parts[i].count;
        }
        from += parts[i].count;
    }
    if (rc == VIGIL_OK && nrows)
        rc = resolve_series(s, b, nrows, row_part, res, created_any);
    vigil__free(row_part);
    if (rc == VIGIL_OK && nrows) {
        /* sorted by (series, ts, batch order); of equal (series, ts) the
         * last in the batch is kept */
        qsort(s->rows, nrows, sizeof(*s->rows), cmp_row);
        size_t u = 0;
        for (size_t t = 0; t < nrows; t++) {
            if (u && s->rows[u - 1].series == s->rows[t].series &&
                s->rows[u - 1].ts == s->rows[t].ts)
                u--;
            s->rows[u++] = s->rows[t];
        }
        rc = upsert_rows(s, b, u);
    }
    if (rc == VIGIL_OK) {
        *committing = 1;
        rc = vigil__pg_commit(s, "committing");
    }
    return rc;
}

/* Writes `nparts` parts of `b` in one transaction, all or nothing. A
 * connection lost before the commit was sent is re-established and the
 * transaction run again once (nothing of it was committed); one lost during
 * the commit is reported (VIGIL_EIO: the outcome is unknown, and a retry
 * with the same batch ids is then safe). One that timed out is not run
 * again. */
static int write_parts(vigil__pg *s, const vigil_batch *b, const vigil_store_batch_part *parts,
                       size_t nparts, vigil_store_write_result *res)
{
    int rc = vigil__pg_enter(s);
    if (rc == VIGIL_OK)
        rc = ensure_days(s, b);
    for (int attempt = 0; rc == VIGIL_OK; attempt++) {
        int created_any = 0, committing = 0;
        rc = write_txn(s, b, parts, nparts, res, &created_any, &committing);
        if (rc == VIGIL_OK)
            break;
        int lost = vigil__pg_conn_lost(s);
        int timed_out = s->timed_out; /* the server did not answer: not again */
        vigil__pg_rollback(s);
        if (created_any)
            vigil__pg_cache_clear(&s->cache);
        memset(res, 0, nparts * sizeof(*res));
        if (!lost || timed_out || committing || attempt > 0 || vigil__pg_enter(s) != VIGIL_OK)
            break;
        vigil__log(&s->logger, VIGIL_LOG_INFO, "store",
                   "retrying a write on a new connection (the old one was lost before the "
                   "commit)",
                   "server=%s", s->display);
        rc = VIGIL_OK;
    }
    return rc;
}

int vigil__pg_write(void *h, const vigil_batch *batch, vigil_store_write_result *res)
{
    vigil_store_batch_part part = {vigil_batch_agent(batch), vigil_batch_id(batch),
                                   vigil_batch_count(batch)};
    int rc = vigil__pg_check_writable(h, "write");
    if (rc)
        return rc;
    if ((rc = write_parts(h, batch, &part, 1, res)) != 0)
        vigil__error_prefix("batch of %zu metrics not stored", vigil_batch_count(batch));
    return rc;
}

int vigil__pg_write_group(void *h, const vigil_batch *merged, const vigil_store_batch_part *parts,
                          size_t nparts, vigil_store_write_result *results)
{
    int rc = vigil__pg_check_writable(h, "write group");
    if (rc)
        return rc;
    if ((rc = write_parts(h, merged, parts, nparts, results)) != 0)
        vigil__error_prefix("%zu batches (%zu metrics) not stored", nparts,
                            vigil_batch_count(merged));
    return rc;
}

/* ---- series selection ------------------------------------------------------------ */

typedef int (*series_fn)(vigil__pg *s, const vigil_store_series *series, void *ctx);

/* Parses canonical tags text {k="v",...} (escapes \\ \" \n) into s->tags. */
int vigil__pg_parse_tags(vigil__pg *s, const char *text, size_t *ntags)
{
    vigil__buf_clear(&s->tagbuf);
    *ntags = 0;
    if (!*text)
        return VIGIL_OK;
    size_t len = strlen(text);
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
    return vigil__error_set(VIGIL_ECORRUPT, "postgresql: series tags \"%.200s\" are malformed (%s)",
                            text, s->display);
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
        case VIGIL_STORE_MATCH_GLOB: ok = val && vigil__pg_glob(m->value, val); break;
        default: ok = !val || !vigil__pg_glob(m->value, val); break;
        }
        if (!ok)
            return 0;
    }
    return 1;
}

/* Calls fn for every series matching q's name and matchers, ordered by
 * name, then tags. */
static int each_series(vigil__pg *s, const vigil_store_query *q, series_fn fn, void *ctx)
{
    int by_name = q->name && q->name_op == VIGIL_STORE_MATCH_EQ;
    const char *params[1] = {q->name};
    PGresult *r = NULL;
    int rc = vigil__pg_exec(s, by_name ? PG_SERIES_BY_NAME : PG_SERIES_ALL, by_name ? 1 : 0, params,
                            NULL, NULL, 0, PG_RETRY, &r, "reading series");
    if (rc)
        return rc;
    int n = PQntuples(r);
    for (int i = 0; i < n && rc == VIGIL_OK; i++) {
        vigil_store_series ser;
        ser.id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        ser.name = PQgetvalue(r, i, 1);
        const char *tags = PQgetvalue(r, i, 2);
        if (q->name && !by_name && !vigil__pg_glob(q->name, ser.name))
            continue;
        if ((rc = vigil__pg_parse_tags(s, tags, &ser.ntags)) != 0)
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
        rc = fn(s, &ser, ctx);
    }
    PQclear(r);
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

/* Hands row i of r (ts, value, error) to the callback. */
static int emit_row(vigil__pg *s, const vigil_store_series *ser, point_ctx *c, PGresult *r, int i)
{
    vigil_store_point p;
    p.ts_ms = strtoll(PQgetvalue(r, i, 0), NULL, 10);
    p.error = NULL;
    if (PQnfields(r) > 2 && !PQgetisnull(r, i, 2)) {
        p.value = NAN;
        p.error = PQgetvalue(r, i, 2);
    } else if (PQgetisnull(r, i, 1)) {
        p.value = NAN;
    } else {
        p.value = strtod(PQgetvalue(r, i, 1), NULL);
    }
    s->delivered = 1;
    return c->cb(ser, &p, c->payload);
}

static int emit_points(vigil__pg *s, const vigil_store_series *ser, void *vctx)
{
    point_ctx *c = vctx;
    const vigil_store_query *q = c->q;
    char id[24], from[24], to[24], step[24], agg[24], limit[24];
    const char *params[6] = {vigil__pg_i64(id, ser->id),
                             vigil__pg_i64(from, q_from(q)),
                             vigil__pg_i64(to, q_to(q)),
                             NULL,
                             NULL,
                             NULL};
    const char *lim = q->limit ? vigil__pg_i64(limit, (int64_t)q->limit) : NULL;
    PGresult *r = NULL;
    int rc;
    if (q->step_ms == 0) {
        params[3] = lim;
        rc = vigil__pg_exec(s, PG_RAW, 4, params, NULL, NULL, 0, PG_RETRY, &r, "querying samples");
    } else {
        params[3] = vigil__pg_i64(step, q->step_ms);
        params[4] = vigil__pg_i64(agg, (int64_t)q->aggregate);
        params[5] = lim;
        rc = vigil__pg_exec(s, PG_AGG, 6, params, NULL, NULL, 0, PG_RETRY, &r, "querying samples");
    }
    for (int i = 0; rc == VIGIL_OK && i < PQntuples(r); i++)
        rc = emit_row(s, ser, c, r, i);
    PQclear(r);
    return rc;
}

int vigil__pg_query(void *h, const vigil_store_query *q, vigil_store_point_cb cb, void *payload)
{
    point_ctx c = {q, cb, NULL, payload};
    int rc = vigil__pg_enter(h);
    return rc ? rc : each_series(h, q, emit_points, &c);
}

static int emit_series(vigil__pg *s, const vigil_store_series *ser, void *vctx)
{
    point_ctx *c = vctx;
    s->delivered = 1;
    return c->scb(ser, c->payload);
}

int vigil__pg_series_list(void *h, const vigil_store_query *q, vigil_store_series_cb cb,
                          void *payload)
{
    point_ctx c = {q, NULL, cb, payload};
    int rc = vigil__pg_enter(h);
    return rc ? rc : each_series(h, q, emit_series, &c);
}

static int emit_latest(vigil__pg *s, const vigil_store_series *ser, void *vctx)
{
    point_ctx *c = vctx;
    char id[24], from[24], to[24];
    const char *params[3] = {vigil__pg_i64(id, ser->id), vigil__pg_i64(from, q_from(c->q)),
                             vigil__pg_i64(to, q_to(c->q))};
    PGresult *r = NULL;
    int rc = vigil__pg_exec(s, PG_LATEST, 3, params, NULL, NULL, 0, PG_RETRY, &r,
                            "querying the latest sample");
    if (rc == VIGIL_OK && PQntuples(r) > 0)
        rc = emit_row(s, ser, c, r, 0);
    PQclear(r);
    return rc;
}

int vigil__pg_latest(void *h, const vigil_store_query *q, vigil_store_point_cb cb, void *payload)
{
    point_ctx c = {q, cb, NULL, payload};
    int rc = vigil__pg_enter(h);
    return rc ? rc : each_series(h, q, emit_latest, &c);
}

/* ---- retention ------------------------------------------------------------------------ */

/* One pass, one transaction: batch ids first (at most `budget`), then the
 * oldest day partition wholly before the cutoff (dropped whole, however
 * many samples it holds), else at most `budget` samples before the cutoff
 * (those of the partition holding the cutoff and of the default one). */
static int retain_pass(vigil__pg *s, int64_t cutoff, int64_t budget,
                       vigil_store_retention_result *res, int *dropped_day, int64_t *day_out)
{
    char cut[24], lim[24];
    vigil__pg_i64(cut, cutoff);
    PGresult *r = NULL;
    int rc;
    uint64_t did = 0;
    if (!s->ret_tail_done) {
        /* the tail keeps an hour, or less with an earlier cutoff */
        int64_t keep = vigil__now_ms() - TAIL_KEEP_MS;
        char t[24];
        const char *params[1] = {vigil__pg_i64(t, cutoff > keep ? cutoff : keep)};
        rc = vigil__pg_exec(s, PG_TAIL_TRIM, 1, params, NULL, NULL, 0, PG_NO_RETRY, &r,
                            "retention: trimming the tail");
        PQclear(r);
        if (rc)
            return rc;
        s->ret_tail_done = 1;
    }
    if (!s->ret_batches_done) {
        const char *params[2] = {cut, vigil__pg_i64(lim, budget)};
        rc = vigil__pg_exec(s, PG_RET_DELETE_BATCHES, 2, params, NULL, NULL, 0, PG_NO_RETRY, &r,
                            "retention: deleting batch ids");
        if (rc)
            return rc;
        int64_t n = strtoll(PQcmdTuples(r), NULL, 10);
        PQclear(r);
        res->batch_ids_deleted += (uint64_t)n;
        did += (uint64_t)n;
        if (n < budget)
            s->ret_batches_done = 1;
        budget -= n;
    }
    if (budget <= 0)
        return VIGIL_OK;
    if ((rc = days_load(s)) != 0)
        return rc;
    for (size_t i = 0; i < s->days.n; i++) {
        int64_t d = s->days.day[i];
        if (d > INT64_MAX / DAY_MS - 1 || (d + 1) * DAY_MS > cutoff)
            break;
        char sql[128];
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM samples_d%lld", (long long)d);
        if ((rc = vigil__pg_sql(s, sql, PG_NO_RETRY, &r, "retention: counting samples")) != 0)
            return rc;
        uint64_t n = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        snprintf(sql, sizeof(sql), "DROP TABLE samples_d%lld", (long long)d);
        if ((rc = vigil__pg_sql(s, sql, PG_NO_RETRY, NULL, "retention: dropping a partition")) != 0)
            return rc;
        res->samples_deleted += n;
        *dropped_day = 1;
        *day_out = d;
        return VIGIL_OK;
    }
    const char *params[2] = {cut, vigil__pg_i64(lim, budget)};
    rc = vigil__pg_exec(s, PG_RET_DELETE_SAMPLES, 2, params, NULL, NULL, 0, PG_NO_RETRY, &r,
                        "retention: deleting samples");
    if (rc)
        return rc;
    int64_t n = strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    res->samples_deleted += (uint64_t)n;
    did += (uint64_t)n;
    if (n < budget && s->ret_batches_done)
        res->done = 1;
    (void)did;
    return VIGIL_OK;
}

int vigil__pg_retain(void *h, int64_t cutoff_ms, const vigil_store_retention_options *opts,
                     vigil_store_retention_result *res)
{
    vigil__pg *s = h;
    int rc = vigil__pg_check_writable(s, "retention");
    if (rc || (rc = vigil__pg_enter(s)) != 0)
        return rc;
    if (!s->ret_active || s->ret_cutoff != cutoff_ms) {
        s->ret_active = 1;
        s->ret_cutoff = cutoff_ms;
        s->ret_batches_done = 0;
        s->ret_tail_done = 0;
    }
    size_t chunks = opts->max_chunks ? opts->max_chunks : SIZE_MAX;
    while (chunks-- > 0 && !res->done) {
        uint64_t before_s = res->samples_deleted, before_b = res->batch_ids_deleted;
        int dropped = 0;
        int64_t day = 0;
        if ((rc = vigil__pg_begin(s, "retention: starting a transaction")) == 0) {
            rc = retain_pass(s, cutoff_ms, (int64_t)opts->chunk_rows, res, &dropped, &day);
            if (rc == VIGIL_OK)
                rc = vigil__pg_commit(s, "retention: committing");
        }
        if (rc != VIGIL_OK) {
            vigil__pg_rollback(s);
            s->days.n = 0;
            res->samples_deleted = before_s;
            res->batch_ids_deleted = before_b;
            res->done = 0;
            s->ret_active = 0;
            return rc;
        }
        if (dropped) {
            days_remove(&s->days, day);
            vigil__log(&s->logger, VIGIL_LOG_DEBUG, "store", "retention dropped a partition",
                       "day=%lld samples=%llu", (long long)day,
                       (unsigned long long)(res->samples_deleted - before_s));
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
