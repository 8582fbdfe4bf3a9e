/*
 * SQLite backend: the write log (sqlite_int.h, sq_log). A write appends its
 * samples as one row of table wlog, whatever the number of series in it;
 * the samples no chunk holds yet are kept in memory, by series, and folded
 * into the chunks in slices of a few milliseconds between writes. At open,
 * and whenever another connection changed the database, the log is read
 * back into memory, so nothing acknowledged is lost when the process dies
 * at any point, and replaying a row whose samples were folded already
 * writes the same values again.
 *
 * A log row: byte 1 (the format), then per series: varint(series id),
 * varint(count), and per sample varint(zigzag(ts - previous ts; the first:
 * ts)), a kind byte (0: value, 8 bytes IEEE 754 little-endian; 1: error,
 * varint(length) and its bytes). Samples of a series in a row are sorted by
 * ts without repeats.
 */
#include "store/sqlite_int.h"
#include "store/store_int.h"
#include "vigil/store.h"

#include <stdlib.h>
#include <string.h>

#define LOG_FORMAT 1

/* ---- encoding ---------------------------------------------------------------------- */

static int put_varint(vigil_buf *b, uint64_t v)
{
    unsigned char tmp[10];
    size_t n = 0;
    do {
        unsigned char c = (unsigned char)(v & 0x7f);
        v >>= 7;
        tmp[n++] = (unsigned char)(c | (v ? 0x80 : 0));
    } while (v);
    return vigil__buf_put(b, (const char *)tmp, n);
}

static int get_varint(const unsigned char **p, const unsigned char *end, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (*p >= end)
            return -1;
        unsigned char c = *(*p)++;
        if (shift == 63 && c > 1)
            return -1;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

static uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (v < 0 ? UINT64_MAX : 0);
}

static int64_t unzigzag(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

void vigil__sq_log_defaults(sq_log *l)
{
    if (!l->fold_interval_ms)
        l->fold_interval_ms = 2000;
    if (l->fold_slice_ms < 0)
        l->fold_slice_ms = 0;
    else if (!l->fold_slice_ms)
        l->fold_slice_ms = 5;
    if (!l->memory_soft)
        l->memory_soft = (size_t)256 << 20;
    if (!l->memory_hard || l->memory_hard < l->memory_soft)
        l->memory_hard = l->memory_soft * 2;
}

int vigil__sq_log_begin(vigil__sq *s)
{
    vigil__buf_clear(&s->log.blob);
    unsigned char f = LOG_FORMAT;
    return vigil__buf_put(&s->log.blob, (const char *)&f, 1) ? vigil__error_oom() : VIGIL_OK;
}

int vigil__sq_log_put(vigil__sq *s, int64_t series, const vigil__sample *x, size_t n)
{
    vigil_buf *b = &s->log.blob;
    if (put_varint(b, (uint64_t)series) || put_varint(b, n))
        return vigil__error_oom();
    int64_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        if (put_varint(b, zigzag((int64_t)((uint64_t)x[i].ts - (uint64_t)prev))))
            return vigil__error_oom();
        prev = x[i].ts;
        unsigned char kind = x[i].error ? 1 : 0;
        if (vigil__buf_put(b, (const char *)&kind, 1))
            return vigil__error_oom();
        if (x[i].error) {
            if (put_varint(b, x[i].error_len) || vigil__buf_put(b, x[i].error, x[i].error_len))
                return vigil__error_oom();
        } else {
            uint64_t bits;
            memcpy(&bits, &x[i].value, 8);
            unsigned char le[8];
            for (int k = 0; k < 8; k++)
                le[k] = (unsigned char)(bits >> (8 * k));
            if (vigil__buf_put(b, (const char *)le, 8))
                return vigil__error_oom();
        }
    }
    return VIGIL_OK;
}

int vigil__sq_log_insert(vigil__sq *s)
{
    if (s->log.blob.size <= 1)
        return VIGIL_OK;
    int rc;
    sqlite3_stmt *st = vigil__sq_stmt(s, SQ_LOG_INSERT, &rc);
    if (!st)
        return rc;
    sqlite3_bind_blob(st, 1, s->log.blob.ptr, (int)s->log.blob.size, SQLITE_STATIC);
    rc = vigil__sq_exec_stmt(s, st, "appending to the write log");
    sqlite3_clear_bindings(st);
    return rc;
}

/* ---- pending samples ------------------------------------------------------------------ */

/* Series ids are rowids, handed out in order: the id itself spreads them
 * over the slots, and the series of a log row (sorted by id) land in
 * neighbouring slots, so that adding a row reads the table in order. */
static size_t slot_of(int64_t series, size_t cap)
{
    return (size_t)series & (cap - 1);
}

static void pend_clear(sq_log *l, sq_pend *p)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->x[i].error) {
            l->bytes -= p->x[i].error_len;
            vigil__free((void *)p->x[i].error);
        }
    l->samples -= p->n;
    l->bytes -= p->cap * sizeof(*p->x) + p->seq_cap * sizeof(*p->seq);
    vigil__free(p->x);
    vigil__free(p->seq);
    p->x = NULL;
    p->seq = NULL;
    p->n = p->cap = p->seq_cap = 0;
}

const sq_pend *vigil__sq_log_pending(const vigil__sq *s, int64_t series)
{
    const sq_log *l = &s->log;
    if (!l->samples)
        return NULL;
    for (size_t i = slot_of(series, l->cap);; i = (i + 1) & (l->cap - 1)) {
        const sq_pend *p = &l->slots[i];
        if (!p->series)
            return NULL;
        if (p->series == series)
            return p->n ? p : NULL;
    }
}

/* The slot of `series`, created when new (slots of series with nothing
 * pending are dropped when the table grows). */
static sq_pend *pend_slot(sq_log *l, int64_t series)
{
    if ((l->used + 1) * 2 > l->cap) {
        size_t live = 0;
        for (size_t i = 0; i < l->cap; i++)
            live += l->slots[i].n != 0;
        size_t ncap = 1024;
        while ((live + 1) * 4 > ncap)
            ncap *= 2;
        sq_pend *ns = vigil__calloc(ncap, sizeof(*ns));
        if (!ns)
            return NULL;
        for (size_t i = 0; i < l->cap; i++) {
            sq_pend *p = &l->slots[i];
            if (!p->series)
                continue;
            if (!p->n) {
                vigil__free(p->x);
                vigil__free(p->seq);
                l->bytes -= p->cap * sizeof(*p->x) + p->seq_cap * sizeof(*p->seq);
                continue;
            }
            size_t j = slot_of(p->series, ncap);
            while (ns[j].series)
                j = (j + 1) & (ncap - 1);
            ns[j] = *p;
        }
        vigil__free(l->slots);
        l->slots = ns;
        l->cap = ncap;
        l->used = live;
    }
    size_t i = slot_of(series, l->cap);
    while (l->slots[i].series && l->slots[i].series != series)
        i = (i + 1) & (l->cap - 1);
    if (!l->slots[i].series) {
        l->slots[i].series = series;
        l->used++;
    }
    return &l->slots[i];
}

/* Adds one sample; a sample at the same ts is replaced. The error text is
 * copied. */
static int pend_put(sq_log *l, int64_t series, const vigil__sample *x, int64_t seq)
{
    sq_pend *p = pend_slot(l, series);
    if (!p)
        return vigil__error_oom();
    size_t at = p->n;
    if (p->n && x->ts <= p->last) {
        size_t lo = 0, hi = p->n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (p->x[mid].ts < x->ts)
                lo = mid + 1;
            else
                hi = mid;
        }
        at = lo;
    }
    char *err = NULL;
    if (x->error) {
        err = vigil__malloc(x->error_len ? x->error_len : 1);
        if (!err)
            return vigil__error_oom();
        memcpy(err, x->error, x->error_len);
    }
    if (at < p->n && p->x[at].ts == x->ts) {
        if (p->x[at].error) {
            l->bytes -= p->x[at].error_len;
            vigil__free((void *)p->x[at].error);
        }
    } else {
        size_t old = p->cap, old_seq = p->seq_cap;
        int g = vigil__array_grow((void **)&p->x, &p->cap, p->n + 1, sizeof(*p->x));
        l->bytes += (p->cap - old) * sizeof(*p->x);
        if (!g)
            g = vigil__array_grow((void **)&p->seq, &p->seq_cap, p->n + 1, sizeof(*p->seq));
        l->bytes += (p->seq_cap - old_seq) * sizeof(*p->seq);
        if (g) {
            vigil__free(err);
            return vigil__error_oom();
        }
        memmove(p->x + at + 1, p->x + at, (p->n - at) * sizeof(*p->x));
        memmove(p->seq + at + 1, p->seq + at, (p->n - at) * sizeof(*p->seq));
        p->n++;
        l->samples++;
    }
    p->x[at] = *x;
    p->x[at].error = err;
    p->seq[at] = seq;
    if (at == p->n - 1)
        p->last = x->ts;
    if (err)
        l->bytes += x->error_len;
    return VIGIL_OK;
}

static int corrupt_row(vigil__sq *s, int64_t seq)
{
    return vigil__error_set(VIGIL_ECORRUPT, "sqlite: write log row %lld is malformed (%s)",
                            (long long)seq, s->path);
}

/* The series of a row come in id order, and ids are mostly dense: the
 * samples of the series a few ids ahead are about to grow, so their cache
 * lines are asked for now (a guess; a wrong one costs nothing). */
static void prefetch_ahead(const sq_log *l, int64_t series)
{
    if (!l->cap)
        return;
    const sq_pend *q = &l->slots[slot_of(series + 4, l->cap)];
    if (q->series == series + 4 && q->x && q->n < q->cap) {
        __builtin_prefetch(q->x + q->n, 1);
        __builtin_prefetch(q->seq + q->n, 1);
    }
}

/* Adds the samples of one log row to the pending ones. */
static int apply_row(vigil__sq *s, int64_t seq, const void *data, size_t len)
{
    const unsigned char *p = data, *end = p + len;
    if (len < 1 || *p++ != LOG_FORMAT)
        return corrupt_row(s, seq);
    while (p < end) {
        uint64_t series, n;
        if (get_varint(&p, end, &series) || get_varint(&p, end, &n) || !series ||
            series > INT64_MAX || n > len)
            return corrupt_row(s, seq);
        prefetch_ahead(&s->log, (int64_t)series);
        int64_t ts = 0;
        for (uint64_t i = 0; i < n; i++) {
            uint64_t d;
            if (get_varint(&p, end, &d) || p >= end)
                return corrupt_row(s, seq);
            ts = (int64_t)((uint64_t)ts + (uint64_t)unzigzag(d));
            vigil__sample x = {ts, 0, NULL, 0};
            unsigned char kind = *p++;
            if (kind == 0) {
                if (end - p < 8)
                    return corrupt_row(s, seq);
                uint64_t bits = 0;
                for (int k = 0; k < 8; k++)
                    bits |= (uint64_t)p[k] << (8 * k);
                memcpy(&x.value, &bits, 8);
                p += 8;
            } else if (kind == 1) {
                uint64_t el;
                if (get_varint(&p, end, &el) || el > (uint64_t)(end - p))
                    return corrupt_row(s, seq);
                x.error = (const char *)p;
                x.error_len = (size_t)el;
                p += el;
            } else {
                return corrupt_row(s, seq);
            }
            int rc = pend_put(&s->log, (int64_t)series, &x, seq);
            if (rc)
                return rc;
        }
    }
    return VIGIL_OK;
}

static void pend_all_clear(sq_log *l)
{
    for (size_t i = 0; i < l->cap; i++)
        if (l->slots[i].series)
            pend_clear(l, &l->slots[i]);
    vigil__free(l->slots);
    l->slots = NULL;
    l->cap = l->used = 0;
    l->round_on = 0;
    l->since_ms = 0;
}

void vigil__sq_log_free(vigil__sq *s)
{
    pend_all_clear(&s->log);
    vigil__free(s->log.round);
    vigil_buf_dispose(&s->log.blob);
}

/* Drops the pending samples of log rows before `first` (deleted: folded
 * into the chunks by another connection). */
static void prune(sq_log *l, int64_t first)
{
    for (size_t i = 0; i < l->cap; i++) {
        sq_pend *p = &l->slots[i];
        size_t u = 0;
        for (size_t k = 0; k < p->n; k++) {
            if (p->seq[k] < first) {
                if (p->x[k].error) {
                    l->bytes -= p->x[k].error_len;
                    vigil__free((void *)p->x[k].error);
                }
                l->samples--;
                continue;
            }
            p->x[u] = p->x[k];
            p->seq[u++] = p->seq[k];
        }
        p->n = u;
        if (u)
            p->last = p->x[u - 1].ts;
    }
}

/* One-row integer query through a fresh statement; 0 for NULL. */
static int query_i64(vigil__sq *s, const char *sql, int64_t *a, int64_t *b)
{
    sqlite3_stmt *st = NULL;
    int r = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (r == SQLITE_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
        *a = sqlite3_column_int64(st, 0);
        if (b)
            *b = sqlite3_column_int64(st, 1);
        r = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return r == SQLITE_OK ? VIGIL_OK : vigil__sq_error(s, r, "reading the write log");
}

/* Brings the pending samples in line with the log: the whole log when
 * nothing was loaded yet; else the samples of rows deleted since are
 * dropped and the rows added since are read. */
static int load(vigil__sq *s)
{
    sq_log *l = &s->log;
    int64_t first = 0, dummy = 0;
    int rc = query_i64(s, "SELECT coalesce(min(seq), 0), 0 FROM wlog", &first, &dummy);
    if (rc)
        return rc;
    if (!l->loaded) {
        pend_all_clear(l);
        l->last_seq = l->trim_seq = l->trimmed_seq = 0;
    } else {
        l->round_on = 0; /* the other connection may have folded what it holds */
        prune(l, first ? first : INT64_MAX);
    }
    int64_t from = l->last_seq;
    l->loaded = 0;
    sqlite3_stmt *st = vigil__sq_stmt(s, SQ_LOG_ALL, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, from);
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t seq = sqlite3_column_int64(st, 0);
        const void *data = sqlite3_column_blob(st, 1);
        size_t len = (size_t)sqlite3_column_bytes(st, 1);
        if (!data && len)
            rc = vigil__error_oom();
        else
            rc = apply_row(s, seq, data, len);
        if (rc)
            break;
        l->last_seq = seq;
    }
    sqlite3_reset(st);
    if (rc == VIGIL_OK && r != SQLITE_DONE)
        rc = vigil__sq_error(s, r, "reading the write log");
    int64_t rows = 0, bytes = 0;
    if (rc == VIGIL_OK)
        rc = query_i64(s, "SELECT count(*), coalesce(sum(length(data)), 0) FROM wlog", &rows,
                       &bytes);
    if (rc) {
        pend_all_clear(l);
        return rc;
    }
    l->rows = (uint64_t)rows;
    l->row_bytes = (uint64_t)bytes;
    l->first_seq = first;
    if (l->samples && !l->since_ms)
        l->since_ms = vigil__monotonic_ms();
    if (!l->samples)
        l->since_ms = 0;
    l->loaded = 1;
    return VIGIL_OK;
}

static int data_version(vigil__sq *s, int64_t *out)
{
    int rc;
    sqlite3_stmt *st = vigil__sq_stmt(s, SQ_DATA_VERSION, &rc);
    if (!st)
        return rc;
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return r == SQLITE_ROW ? VIGIL_OK : vigil__sq_error(s, r, "reading the data version");
}

int vigil__sq_log_sync(vigil__sq *s)
{
    sq_log *l = &s->log;
    if (!l->on)
        return VIGIL_OK;
    int64_t dv = 0;
    int rc = data_version(s, &dv);
    if (rc)
        return rc;
    if (l->loaded && dv == l->data_version)
        return VIGIL_OK;
    int64_t t0 = vigil__monotonic_ms();
    if ((rc = load(s)) != 0)
        return rc;
    l->data_version = dv;
    if (l->rows)
        vigil__log(&s->logger, VIGIL_LOG_DEBUG, "store", "read the write log",
                   "path=%s rows=%llu samples=%llu ms=%lld", s->path, (unsigned long long)l->rows,
                   (unsigned long long)l->samples, (long long)(vigil__monotonic_ms() - t0));
    return VIGIL_OK;
}

int vigil__sq_log_committed(vigil__sq *s)
{
    sq_log *l = &s->log;
    if (l->blob.size <= 1)
        return VIGIL_OK;
    int64_t seq = sqlite3_last_insert_rowid(s->db);
    int had = l->samples != 0;
    int rc = apply_row(s, seq, l->blob.ptr, l->blob.size);
    if (rc) {
        /* Committed but not all in memory: read the log again before the
         * next query or write. */
        l->loaded = 0;
        vigil__log(&s->logger, VIGIL_LOG_WARN, "store", "write log: samples not kept in memory",
                   "path=%s error=\"%s\"", s->path, vigil_error_last()->message);
        return VIGIL_OK;
    }
    l->rows++;
    l->row_bytes += l->blob.size;
    l->last_seq = seq;
    if (!had && l->samples)
        l->since_ms = vigil__monotonic_ms();
    return VIGIL_OK;
}

/* ---- folding ---------------------------------------------------------------------------- */

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int round_start(vigil__sq *s)
{
    sq_log *l = &s->log;
    l->round_n = l->round_i = 0;
    for (size_t i = 0; i < l->cap; i++) {
        if (!l->slots[i].n)
            continue;
        if (vigil__array_grow((void **)&l->round, &l->round_cap, l->round_n + 1,
                              sizeof(*l->round)) != 0)
            return vigil__error_oom();
        l->round[l->round_n++] = l->slots[i].series;
    }
    /* In id order: neighbouring heads share pages, so a slice dirties
     * (and the WAL receives) a few pages per many series. */
    int sorted = 1;
    for (size_t i = 1; i < l->round_n && sorted; i++)
        sorted = l->round[i - 1] < l->round[i];
    if (!sorted)
        qsort(l->round, l->round_n, sizeof(*l->round), cmp_id);
    l->round_seq = l->last_seq;
    l->round_on = 1;
    l->round_us = 0;
    l->round_t0 = vigil__monotonic_ms();
    return VIGIL_OK;
}

/* Log rows deleted by one slice: how many, their bytes, the last one. */
typedef struct trim_t {
    uint64_t rows, bytes;
    int64_t last;
} trim_t;

/* A slice deletes folded log rows until about this many bytes are gone. */
#define TRIM_BYTES ((int64_t)1 << 20)

/* Inside a fold transaction: deletes the oldest log rows up to `upto` (all
 * of them folded), until `max_bytes` are gone or `max_rows` rows (0: no
 * limit). Always a prefix of the log, so a replay never applies a row whose
 * successor is gone. */
static int trim(vigil__sq *s, int64_t upto, int64_t max_bytes, uint64_t max_rows, trim_t *out)
{
    sq_log *l = &s->log;
    if (upto <= l->trimmed_seq)
        return VIGIL_OK;
    int rc;
    sqlite3_stmt *st = vigil__sq_stmt(s, SQ_LOG_HEAD, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, upto);
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        out->last = sqlite3_column_int64(st, 0);
        out->bytes += (uint64_t)sqlite3_column_int64(st, 1);
        out->rows++;
        if ((max_bytes && out->bytes >= (uint64_t)max_bytes) || (max_rows && out->rows >= max_rows))
            break;
    }
    sqlite3_reset(st);
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        return vigil__sq_error(s, r, "fold: reading log rows");
    if (!out->rows) {
        l->trimmed_seq = upto; /* nothing left up to there */
        return VIGIL_OK;
    }
    if (!(st = vigil__sq_stmt(s, SQ_LOG_DELETE, &rc)))
        return rc;
    sqlite3_bind_int64(st, 1, out->last);
    return vigil__sq_exec_stmt(s, st, "fold: deleting log rows");
}

/* One transaction of the running round: folds its series for about
 * `budget_ms` (0: to the end of the round, and every folded log row
 * deleted), at most fold_batch of them; then deletes folded log rows, oldest
 * first, about TRIM_BYTES of them (at most fold_batch rows), those of the
 * rounds before and, with its last series, those of this one (up to
 * round_seq). Without a round running, a slice only deletes. */
static int fold_slice(vigil__sq *s, int64_t budget_ms)
{
    sq_log *l = &s->log;
    /* Memory that lacks samples of the log (an allocation failed after a
     * commit) must never fold: the round would delete their rows. */
    if (!l->loaded)
        return vigil__sq_log_sync(s);
    int64_t t0 = vigil__monotonic_ns();
    int rc = vigil__sq_begin(s, "fold: starting a transaction");
    if (rc)
        return rc;
    int64_t dv = 0;
    rc = data_version(s, &dv);
    if (rc == VIGIL_OK && dv != l->data_version) {
        /* another connection wrote: read everything again, start over */
        vigil__sq_rollback(s);
        return vigil__sq_log_sync(s);
    }
    if (rc == VIGIL_OK)
        rc = vigil__sq_tails_check(s);
    size_t i = l->round_i;
    uint64_t folded = 0;
    while (rc == VIGIL_OK && l->round_on && i < l->round_n) {
        const sq_pend *p = vigil__sq_log_pending(s, l->round[i]);
        if (p) {
            rc = vigil__sq_chunks_write(s, p->series, p->x, p->n);
            folded += p->n;
        }
        i++;
        if (l->fold_batch && i - l->round_i >= l->fold_batch)
            break;
        if (budget_ms && vigil__monotonic_ns() - t0 >= budget_ms * 1000000)
            break;
    }
    int done = l->round_on && i == l->round_n;
    /* the folded log rows, oldest first, a few per slice (with the last
     * slice of a round all of them would take tens of milliseconds) */
    trim_t tr = {0, 0, 0};
    if (rc == VIGIL_OK)
        rc = trim(s, done ? l->round_seq : l->trim_seq, budget_ms ? TRIM_BYTES : 0,
                  budget_ms ? l->fold_batch : 0, &tr);
    if (rc == VIGIL_OK)
        rc = vigil__sq_commit(s, "fold: committing");
    if (rc) {
        vigil__sq_rollback(s);
        vigil__sq_tails_clear(s);
        return rc;
    }
    for (size_t k = l->round_i; k < i; k++) {
        sq_pend *p = (sq_pend *)vigil__sq_log_pending(s, l->round[k]);
        if (p)
            pend_clear(l, p);
    }
    l->round_i = i;
    l->folded += folded;
    if (tr.rows) {
        l->trimmed_seq = tr.last;
        l->rows -= tr.rows < l->rows ? tr.rows : l->rows;
        l->row_bytes -= tr.bytes < l->row_bytes ? tr.bytes : l->row_bytes;
    }
    if (!l->round_on)
        return VIGIL_OK; /* a slice that only trimmed */
    l->round_us += (vigil__monotonic_ns() - t0) / 1000;
    if (done) {
        l->round_on = 0;
        l->folds++;
        l->last_fold_us = l->round_us;
        l->trim_seq = l->round_seq;
        l->since_ms = l->samples ? vigil__monotonic_ms() : 0;
    }
    return VIGIL_OK;
}

static void fold_failed(vigil__sq *s)
{
    s->log.retry_ms = vigil__monotonic_ms() + 1000;
    vigil__log(&s->logger, VIGIL_LOG_WARN, "store", "write log: fold failed",
               "path=%s error=\"%s\"", s->path, vigil_error_last()->message);
}

/* One step of folding: a slice of the running round (starting one when
 * due), or of the deletion of folded log rows; past log_memory the whole
 * round at once. `idle`: called between writes (vigil__store_tend);
 * else after a write, which with idle folding on only folds when the idle
 * time did not suffice (a round overdue) or memory is past log_memory.
 * Returns 1 when a slice ran (more may be due), else 0 and *next_ms, the
 * monotonic time the next one falls due (INT64_MAX: nothing pending).
 * Failures are logged and retried a second later. */
static int tend(vigil__sq *s, int idle, int64_t *next_ms)
{
    sq_log *l = &s->log;
    *next_ms = INT64_MAX;
    if (!l->on || s->read_only)
        return 0;
    int64_t now = vigil__monotonic_ms();
    if (now < l->retry_ms) {
        *next_ms = l->retry_ms;
        return 0;
    }
    if (!l->loaded) { /* read the log again first (see fold_slice) */
        if (vigil__sq_log_sync(s) != 0) {
            fold_failed(s);
            *next_ms = l->retry_ms;
        } else {
            *next_ms = now;
        }
        return 0;
    }
    int hurry = l->bytes >= l->memory_soft;
    int64_t interval = l->fold_interval_ms;
    if (l->idle_fold && !idle && !hurry) {
        int late = l->round_on ? now - l->round_t0 >= interval
                               : l->since_ms && now - l->since_ms >= 2 * interval;
        if (!late)
            return 0;
    }
    if (!l->round_on) {
        int due =
            l->last_seq > l->trim_seq && (hurry || (l->since_ms && now - l->since_ms >= interval));
        if (!due && l->trim_seq <= l->trimmed_seq) {
            if (l->since_ms)
                *next_ms = l->since_ms + interval;
            return 0;
        }
        if (due && round_start(s) != 0) {
            fold_failed(s);
            *next_ms = l->retry_ms;
            return 0;
        }
    }
    /* after writes, a round that takes longer than the interval gets
     * longer slices */
    int64_t budget = l->fold_slice_ms;
    if (budget && !idle && now - l->round_t0 > interval)
        budget *= 4;
    do {
        if (fold_slice(s, hurry ? 0 : budget) != 0) {
            fold_failed(s);
            *next_ms = l->retry_ms;
            return 0;
        }
    } while (hurry && l->round_on);
    *next_ms = now;
    return 1;
}

void vigil__sq_log_tend(vigil__sq *s)
{
    int64_t next;
    tend(s, 0, &next);
}

int vigil__sq_log_fold_all(vigil__sq *s)
{
    sq_log *l = &s->log;
    if (!l->on || s->read_only)
        return VIGIL_OK;
    int rc = vigil__sq_log_sync(s);
    /* the running round first, then one over everything left */
    while (rc == VIGIL_OK && l->round_on)
        rc = fold_slice(s, 0);
    if (rc == VIGIL_OK && l->rows && (rc = round_start(s)) == VIGIL_OK)
        while (rc == VIGIL_OK && l->round_on)
            rc = fold_slice(s, 0);
    return rc;
}

int vigil__sq_log_pending_before(vigil__sq *s, int64_t cutoff, int *any)
{
    *any = 0;
    sq_log *l = &s->log;
    int rc = vigil__sq_log_sync(s);
    if (rc || !l->samples)
        return rc;
    for (size_t i = 0; i < l->cap && !*any; i++)
        *any = l->slots[i].n && l->slots[i].x[0].ts < cutoff;
    return VIGIL_OK;
}

int vigil__sq_log_admit(vigil__sq *s)
{
    sq_log *l = &s->log;
    if (!l->on || l->bytes < l->memory_hard)
        return VIGIL_OK;
    int rc = vigil__sq_log_fold_all(s);
    if (rc == VIGIL_OK && l->bytes < l->memory_hard)
        return VIGIL_OK;
    if (rc)
        fold_failed(s);
    return vigil__error_set(
        VIGIL_EFULL,
        "sqlite: write log: %zu bytes of samples not yet folded are held in "
        "memory, past the hard cap of %zu (log_memory_max); the folds fail (%s)",
        l->bytes, l->memory_hard, s->path);
}

void vigil__sq_stats(void *handle, vigil_store_stats *out)
{
    const sq_log *l = &((vigil__sq *)handle)->log;
    out->log_rows = l->rows;
    out->log_bytes = l->row_bytes;
    out->unfolded_samples = l->samples;
    out->unfolded_bytes = l->bytes;
    out->folds = l->folds;
    out->folded_samples = l->folded;
    out->last_fold_seconds = (double)l->last_fold_us / 1e6;
}

void vigil__sq_fold_idle(void *handle, int on)
{
    ((vigil__sq *)handle)->log.idle_fold = on != 0;
}

int vigil__sq_tend(void *handle, int64_t *next_ms)
{
    return tend(handle, 1, next_ms);
}
