/*
 * SQLite backend: the samples of a series live in chunks (chunk.h). A
 * series' last chunk, its head, is a row of table heads (keyed by series id,
 * so the heads of all series sit together in a few pages); the full chunks
 * before it are rows of table chunks keyed by (series_id, start_ts). Chunks
 * of a series never overlap: each holds the samples from its start_ts to its
 * end_ts, the next one starts after that, and the head is the last. A series
 * without a head has no chunk.
 *
 * A write appends a series' new samples to its head with one UPDATE that
 * concatenates the encoded bytes; a full head moves to chunks and a new head
 * starts. So a write of many samples of few series costs a few row writes in
 * a few pages, not one B-tree insert per sample. Samples at or before the
 * head's end (late, or replacing a stored one) are merged into the chunk that
 * covers them, which is decoded, merged and written again (split when it
 * grows past VIGIL__CHUNK_BYTES).
 */
#include "store/sqlite_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- the tail cache --------------------------------------------------------------- */

static size_t tail_hash(int64_t id, size_t mask)
{
    uint64_t h = (uint64_t)id * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 17) & mask;
}

void vigil__sq_tails_clear(vigil__sq *s)
{
    if (s->tails.n)
        memset(s->tails.slots, 0, s->tails.cap * sizeof(*s->tails.slots));
    s->tails.n = 0;
}

void vigil__sq_tails_free(vigil__sq *s)
{
    vigil__free(s->tails.slots);
    memset(&s->tails, 0, sizeof(s->tails));
}

static sq_tail *tail_find(sq_tails *c, int64_t id)
{
    if (!c->n)
        return NULL;
    size_t mask = c->cap - 1;
    for (size_t i = tail_hash(id, mask);; i = (i + 1) & mask) {
        if (c->slots[i].series == id)
            return &c->slots[i];
        if (!c->slots[i].series)
            return NULL;
    }
}

/* Stores *t (past the limit, nothing: the tail is read again next time). */
static int tail_put(sq_tails *c, const sq_tail *t)
{
    sq_tail *old = tail_find(c, t->series);
    if (old) {
        *old = *t;
        return VIGIL_OK;
    }
    if (c->n >= c->max)
        return VIGIL_OK;
    if ((c->n + 1) * 2 > c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 1024;
        sq_tail *ns = vigil__calloc(ncap, sizeof(*ns));
        if (!ns)
            return vigil__error_oom();
        for (size_t i = 0; i < c->cap; i++) {
            if (!c->slots[i].series)
                continue;
            size_t j = tail_hash(c->slots[i].series, ncap - 1);
            while (ns[j].series)
                j = (j + 1) & (ncap - 1);
            ns[j] = c->slots[i];
        }
        vigil__free(c->slots);
        c->slots = ns;
        c->cap = ncap;
    }
    size_t mask = c->cap - 1;
    size_t i = tail_hash(t->series, mask);
    while (c->slots[i].series)
        i = (i + 1) & mask;
    c->slots[i] = *t;
    c->n++;
    return VIGIL_OK;
}

int vigil__sq_tails_created(vigil__sq *s, int64_t series)
{
    sq_tail t;
    memset(&t, 0, sizeof(t));
    t.series = series;
    t.none = 1;
    return tail_put(&s->tails, &t);
}

int vigil__sq_tails_check(vigil__sq *s)
{
    int rc;
    sqlite3_stmt *st = vigil__sq_stmt(s, SQ_DATA_VERSION, &rc);
    if (!st)
        return rc;
    int r = sqlite3_step(st);
    int64_t v = r == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (r != SQLITE_ROW)
        return vigil__sq_error(s, r, "reading the data version");
    if (!s->data_version_known || v != s->data_version)
        vigil__sq_tails_clear(s);
    s->data_version = v;
    s->data_version_known = 1;
    return VIGIL_OK;
}

/* ---- reading a chunk row ---------------------------------------------------------- */

static int corrupt(vigil__sq *s, int64_t series, int64_t start)
{
    return vigil__error_set(VIGIL_ECORRUPT,
                            "sqlite: the chunk of series %lld at ts %lld is malformed (%s)",
                            (long long)series, (long long)start, s->path);
}

/* Copies the data of column `col` of the current row into `into`. */
static int copy_data(sqlite3_stmt *st, int col, vigil_buf *into)
{
    const void *p = sqlite3_column_blob(st, col);
    size_t len = (size_t)sqlite3_column_bytes(st, col);
    vigil__buf_clear(into);
    if (len && (!p || vigil__buf_put(into, p, len) != 0))
        return vigil__error_oom();
    return VIGIL_OK;
}

/* Decodes a chunk into s->merged[0, *n), checking that its last sample is at
 * end_ts and that it holds `count` samples. */
static int decode_all(vigil__sq *s, int64_t series, int64_t start, int64_t end, int64_t count,
                      const vigil_buf *data, size_t *n, vigil__chunk_tail *tail)
{
    vigil__chunk_iter it;
    vigil__chunk_iter_init(&it, start, data->ptr, data->size);
    size_t k = 0;
    vigil__sample x;
    int r;
    while ((r = vigil__chunk_next(&it, &x)) == 1) {
        if (vigil__array_grow((void **)&s->merged, &s->merged_cap, k + 1, sizeof(*s->merged)))
            return vigil__error_oom();
        s->merged[k++] = x;
    }
    if (r != 0 || k == 0 || (int64_t)k != count || s->merged[k - 1].ts != end)
        return corrupt(s, series, start);
    *n = k;
    if (tail)
        *tail = it.tail;
    return VIGIL_OK;
}

/* Reads the head of `series` into s->chunk; 0 when it has none. */
static int head_read(vigil__sq *s, int64_t series, int64_t *start, int64_t *end, int64_t *n)
{
    int rc;
    sqlite3_stmt *st = vigil__sq_stmt(s, SQ_HEAD_GET, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, series);
    int r = sqlite3_step(st);
    if (r != SQLITE_ROW) {
        sqlite3_reset(st);
        return r == SQLITE_DONE ? 0 : vigil__sq_error(s, r, "reading the head of a series");
    }
    *start = sqlite3_column_int64(st, 0);
    *end = sqlite3_column_int64(st, 1);
    *n = sqlite3_column_int64(st, 2);
    rc = copy_data(st, 3, &s->chunk);
    sqlite3_reset(st);
    return rc ? rc : 1;
}

/* Fills *t from the series' head in the database. */
static int tail_load(vigil__sq *s, int64_t series, sq_tail *t)
{
    memset(t, 0, sizeof(*t));
    t->series = series;
    int64_t end = 0;
    int rc = head_read(s, series, &t->start_ts, &end, &t->n);
    if (rc <= 0) {
        t->none = rc == 0;
        return rc;
    }
    size_t k;
    t->bytes = s->chunk.size;
    return decode_all(s, series, t->start_ts, end, t->n, &s->chunk, &k, &t->enc);
}

/* ---- writing ------------------------------------------------------------------------ */

/* Encodes x[0, ...) into s->chunk2 from an empty chunk, as many samples as
 * fit (at least one); returns how many. */
static size_t encode_piece(vigil__sq *s, const vigil__sample *x, size_t n, vigil__chunk_tail *enc,
                           int *rc)
{
    vigil__buf_clear(&s->chunk2);
    memset(enc, 0, sizeof(*enc));
    enc->empty = 1;
    size_t i = 0;
    while (i < n) {
        size_t sz = vigil__chunk_size(enc, &x[i]);
        if (i > 0 && (sz == 0 || s->chunk2.size + sz > VIGIL__CHUNK_BYTES))
            break;
        if ((*rc = vigil__chunk_put(&s->chunk2, enc, &x[i])) != VIGIL_OK)
            return 0;
        i++;
    }
    *rc = VIGIL_OK;
    return i;
}

static int row_write(vigil__sq *s, sq_stmt_id id, int64_t series, int64_t start, int64_t end,
                     int64_t n, const vigil_buf *data, const char *op)
{
    int rc;
    sqlite3_stmt *st = vigil__sq_stmt(s, id, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, series);
    sqlite3_bind_int64(st, 2, start);
    sqlite3_bind_int64(st, 3, end);
    sqlite3_bind_int64(st, 4, n);
    sqlite3_bind_blob(st, 5, data->ptr, (int)data->size, SQLITE_STATIC);
    if ((rc = vigil__sq_exec_stmt(s, st, op)) != 0)
        return rc;
    if (sqlite3_changes(s->db) != 1)
        return vigil__error_set(VIGIL_ECORRUPT,
                                "sqlite: %s: no chunk of series %lld at ts %lld (%s)", op,
                                (long long)series, (long long)start, s->path);
    return VIGIL_OK;
}

static int series_stmt(vigil__sq *s, sq_stmt_id id, int64_t series, const char *op)
{
    int rc;
    sqlite3_stmt *st = vigil__sq_stmt(s, id, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, series);
    return vigil__sq_exec_stmt(s, st, op);
}

/* How the pieces of write_pieces() land. */
typedef enum piece_mode {
    PIECES_INSERT,  /* all inserted into chunks */
    PIECES_REPLACE, /* the first replaces the chunk at its start, the others inserted */
    PIECES_HEAD     /* the last one is the head, the others inserted into chunks */
} piece_mode;

/* Writes x[0, n) (sorted, no repeats) as chunks of at most
 * VIGIL__CHUNK_BYTES. With PIECES_HEAD, *tail describes the new head. */
static int write_pieces(vigil__sq *s, int64_t series, const vigil__sample *x, size_t n,
                        piece_mode mode, sq_tail *tail)
{
    int rc = VIGIL_OK;
    size_t i = 0;
    int first = 1;
    while (i < n) {
        vigil__chunk_tail enc;
        size_t k = encode_piece(s, x + i, n - i, &enc, &rc);
        if (rc)
            return rc;
        int last = i + k == n;
        sq_stmt_id id = mode == PIECES_HEAD && last       ? SQ_HEAD_PUT
                        : mode == PIECES_REPLACE && first ? SQ_CHUNK_REPLACE
                                                          : SQ_CHUNK_INSERT;
        rc = row_write(s, id, series, x[i].ts, x[i + k - 1].ts, (int64_t)k, &s->chunk2,
                       "writing samples");
        if (rc)
            return rc;
        if (id == SQ_HEAD_PUT) {
            tail->none = 0;
            tail->start_ts = x[i].ts;
            tail->bytes = s->chunk2.size;
            tail->n = (int64_t)k;
            tail->enc = enc;
        }
        first = 0;
        i += k;
    }
    return VIGIL_OK;
}

/* Merges the chunk decoded in s->merged[0, m) with x[0, n) (new samples win
 * on equal ts) into s->merged, which grows as needed. */
static int merge_into(vigil__sq *s, size_t m, const vigil__sample *x, size_t n, size_t *out)
{
    if (vigil__array_grow((void **)&s->merged, &s->merged_cap, 2 * (m + n), sizeof(*s->merged)))
        return vigil__error_oom();
    /* merge from [0, m) and x into [m + n, ...) then move down */
    vigil__sample *dst = s->merged + m + n;
    size_t a = 0, b = 0, k = 0;
    while (a < m || b < n) {
        if (b == n || (a < m && s->merged[a].ts < x[b].ts)) {
            dst[k++] = s->merged[a++];
        } else {
            if (a < m && s->merged[a].ts == x[b].ts)
                a++; /* replaced */
            dst[k++] = x[b++];
        }
    }
    memmove(s->merged, dst, k * sizeof(*dst));
    *out = k;
    return VIGIL_OK;
}

static int next_start(vigil__sq *s, int64_t series, int64_t ts, int64_t *next)
{
    int rc;
    sqlite3_stmt *st = vigil__sq_stmt(s, SQ_CHUNK_NEXT, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, series);
    sqlite3_bind_int64(st, 2, ts);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW && sqlite3_column_int64(st, 0) < *next)
        *next = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        return vigil__sq_error(s, r, "reading chunks");
    return VIGIL_OK;
}

/* x[0, n): samples at or before the head's last one, merged group by group
 * into the chunk that covers them: the head, a full chunk, or new chunks
 * before the first one. */
static int merge_old(vigil__sq *s, int64_t series, const vigil__sample *x, size_t n, sq_tail *t)
{
    int rc;
    size_t a = 0;
    while (a < n) {
        size_t m = 0;
        if (x[a].ts >= t->start_ts) { /* the rest belongs to the head */
            int64_t start, end, count;
            if ((rc = head_read(s, series, &start, &end, &count)) < 0)
                return rc;
            if (rc == 0 || start != t->start_ts)
                return corrupt(s, series, t->start_ts);
            if ((rc = decode_all(s, series, start, end, count, &s->chunk, &m, NULL)) != 0 ||
                (rc = merge_into(s, m, x + a, n - a, &m)) != 0)
                return rc;
            return write_pieces(s, series, s->merged, m, PIECES_HEAD, t);
        }
        sqlite3_stmt *st = vigil__sq_stmt(s, SQ_CHUNK_AT, &rc);
        if (!st)
            return rc;
        sqlite3_bind_int64(st, 1, series);
        sqlite3_bind_int64(st, 2, x[a].ts);
        int r = sqlite3_step(st);
        int have = r == SQLITE_ROW;
        int64_t start = 0, end = 0, count = 0;
        rc = VIGIL_OK;
        if (have) {
            start = sqlite3_column_int64(st, 0);
            end = sqlite3_column_int64(st, 1);
            count = sqlite3_column_int64(st, 2);
            rc = copy_data(st, 3, &s->chunk);
        }
        sqlite3_reset(st);
        if (r != SQLITE_ROW && r != SQLITE_DONE)
            return vigil__sq_error(s, r, "reading chunks");
        if (rc)
            return rc;
        int64_t next = t->start_ts;
        if ((rc = next_start(s, series, x[a].ts, &next)) != 0)
            return rc;
        size_t b = a;
        while (b < n && x[b].ts < next)
            b++;
        if (have && (rc = decode_all(s, series, start, end, count, &s->chunk, &m, NULL)) != 0)
            return rc;
        if ((rc = merge_into(s, m, x + a, b - a, &m)) != 0)
            return rc;
        rc = write_pieces(s, series, s->merged, m, have ? PIECES_REPLACE : PIECES_INSERT, NULL);
        if (rc)
            return rc;
        a = b;
    }
    return VIGIL_OK;
}

/* x[0, n): samples after the head's last one (or of a series without
 * chunks): appended to the head while it has room; then the head moves to
 * chunks and the rest makes new chunks, the last of them the head. */
static int append_new(vigil__sq *s, int64_t series, const vigil__sample *x, size_t n, sq_tail *t)
{
    int rc;
    size_t i = 0;
    if (!t->none) {
        vigil__chunk_tail enc = t->enc;
        size_t bytes = t->bytes;
        vigil__buf_clear(&s->chunk2);
        while (i < n) {
            size_t sz = vigil__chunk_size(&enc, &x[i]);
            if (sz == 0 || bytes + sz > VIGIL__CHUNK_BYTES)
                break;
            if ((rc = vigil__chunk_put(&s->chunk2, &enc, &x[i])) != 0)
                return rc;
            bytes += sz;
            i++;
        }
        if (i > 0) {
            rc = row_write(s, SQ_HEAD_APPEND, series, t->start_ts, enc.last_ts, (int64_t)i,
                           &s->chunk2, "writing samples");
            if (rc)
                return rc;
            t->enc = enc;
            t->bytes = bytes;
            t->n += (int64_t)i;
        }
        if (i < n && (rc = series_stmt(s, SQ_HEAD_CLOSE, series, "closing a chunk")) != 0)
            return rc;
    }
    return i < n ? write_pieces(s, series, x + i, n - i, PIECES_HEAD, t) : VIGIL_OK;
}

int vigil__sq_chunks_write(vigil__sq *s, int64_t series, const vigil__sample *x, size_t n)
{
    sq_tail t;
    const sq_tail *c = tail_find(&s->tails, series);
    int rc;
    if (c)
        t = *c;
    else if ((rc = tail_load(s, series, &t)) != 0)
        return rc;
    size_t old = 0;
    if (!t.none)
        while (old < n && x[old].ts <= t.enc.last_ts)
            old++;
    if (old && (rc = merge_old(s, series, x, old, &t)) != 0)
        return rc;
    if (old < n && (rc = append_new(s, series, x + old, n - old, &t)) != 0)
        return rc;
    return tail_put(&s->tails, &t);
}

/* ---- reading ---------------------------------------------------------------------- */

/* Calls cb for the samples of one chunk in [from, to). 1: past `to`. */
static int scan_one(vigil__sq *s, int64_t series, int64_t start, const void *data, size_t len,
                    int64_t from, int64_t to, sq_sample_fn cb, void *ctx)
{
    vigil__chunk_iter it;
    vigil__chunk_iter_init(&it, start, data, len);
    vigil__sample x;
    int k;
    while ((k = vigil__chunk_next(&it, &x)) == 1) {
        if (x.ts < from)
            continue;
        if (x.ts >= to)
            return 1;
        int rc = cb(&x, ctx);
        if (rc)
            return rc;
    }
    return k < 0 ? corrupt(s, series, start) : VIGIL_OK;
}

int vigil__sq_chunks_scan(vigil__sq *s, int64_t series, int64_t from, int64_t to, sq_sample_fn cb,
                          void *ctx)
{
    int rc;
    sqlite3_stmt *st = vigil__sq_stmt(s, SQ_CHUNK_RANGE, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, series);
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, to);
    int r;
    rc = VIGIL_OK;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_int64(st, 1) < from)
            continue;
        rc = scan_one(s, series, sqlite3_column_int64(st, 0), sqlite3_column_blob(st, 3),
                      (size_t)sqlite3_column_bytes(st, 3), from, to, cb, ctx);
        if (rc)
            break;
    }
    sqlite3_reset(st);
    if (rc == 1)
        return VIGIL_OK; /* past `to`: the head is too */
    if (rc)
        return rc;
    if (r != SQLITE_DONE)
        return vigil__sq_error(s, r, "reading samples");
    int64_t start, end, n;
    if ((rc = head_read(s, series, &start, &end, &n)) <= 0 || end < from || start >= to)
        return rc < 0 ? rc : VIGIL_OK;
    rc = scan_one(s, series, start, s->chunk.ptr, s->chunk.size, from, to, cb, ctx);
    return rc == 1 ? VIGIL_OK : rc;
}

/* The last sample of one chunk in [from, to): 1 and *out, or 0. */
static int last_of(vigil__sq *s, int64_t series, int64_t start, const vigil_buf *data, int64_t from,
                   int64_t to, vigil__sample *out)
{
    vigil__chunk_iter it;
    vigil__chunk_iter_init(&it, start, data->ptr, data->size);
    vigil__sample x;
    int k, found = 0;
    while ((k = vigil__chunk_next(&it, &x)) == 1 && x.ts < to) {
        if (x.ts >= from) {
            *out = x;
            found = 1;
        }
    }
    return k < 0 ? corrupt(s, series, start) : found;
}

int vigil__sq_chunks_last(vigil__sq *s, int64_t series, int64_t from, int64_t to,
                          vigil__sample *out)
{
    int64_t start, end, n;
    int rc = head_read(s, series, &start, &end, &n);
    if (rc <= 0)
        return rc;
    if (end < from)
        return 0;
    if (start < to) /* the head holds a sample before `to`: the last one is in it */
        return last_of(s, series, start, &s->chunk, from, to, out);
    sqlite3_stmt *st = vigil__sq_stmt(s, SQ_CHUNK_BACK, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, series);
    sqlite3_bind_int64(st, 2, to);
    int r = sqlite3_step(st);
    rc = 0;
    /* the last chunk that starts before `to` holds the last sample before it */
    if (r == SQLITE_ROW && sqlite3_column_int64(st, 1) >= from) {
        start = sqlite3_column_int64(st, 0);
        rc = copy_data(st, 3, &s->chunk);
        if (rc == VIGIL_OK)
            rc = 2;
    }
    sqlite3_reset(st);
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        return vigil__sq_error(s, r, "reading the latest sample");
    return rc == 2 ? last_of(s, series, start, &s->chunk, from, to, out) : rc;
}

/* ---- retention -------------------------------------------------------------------- */

/* The oldest full chunk of `series` that starts before `cutoff`, or its head
 * (head set) when there is none; 0 when neither starts before the cutoff.
 * Decodes it into s->merged[0, *m) when it ends at or after the cutoff. */
static int oldest(vigil__sq *s, int64_t series, int64_t cutoff, int *head, int64_t *start,
                  int64_t *count, size_t *m, size_t *keep)
{
    int rc;
    sqlite3_stmt *st = vigil__sq_stmt(s, SQ_CHUNK_FIRST, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, series);
    sqlite3_bind_int64(st, 2, cutoff);
    int r = sqlite3_step(st);
    int64_t end = 0;
    rc = VIGIL_OK;
    if (r == SQLITE_ROW) {
        *head = 0;
        *start = sqlite3_column_int64(st, 0);
        end = sqlite3_column_int64(st, 1);
        *count = sqlite3_column_int64(st, 2);
        if (end >= cutoff)
            rc = copy_data(st, 3, &s->chunk);
    }
    sqlite3_reset(st);
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        return vigil__sq_error(s, r, "retention: reading chunks");
    if (rc)
        return rc;
    if (r == SQLITE_DONE) {
        *head = 1;
        if ((rc = head_read(s, series, start, &end, count)) <= 0 || *start >= cutoff)
            return rc < 0 ? rc : 0;
    }
    *m = *keep = 0;
    if (end >= cutoff) {
        if ((rc = decode_all(s, series, *start, end, *count, &s->chunk, m, NULL)) != 0)
            return rc;
        size_t drop = 0;
        while (drop < *m && s->merged[drop].ts < cutoff)
            drop++;
        *keep = *m - drop;
    }
    return 1;
}

int vigil__sq_chunks_retain(vigil__sq *s, int64_t series, int64_t cutoff, int64_t *budget,
                            uint64_t *deleted, int *done)
{
    *done = 0;
    for (;;) {
        int head = 0;
        int64_t start = 0, count = 0;
        size_t m = 0, keep = 0;
        int rc = oldest(s, series, cutoff, &head, &start, &count, &m, &keep);
        if (rc <= 0) {
            *done = rc == 0;
            return rc;
        }
        int64_t del = count - (int64_t)keep;
        if (del > *budget && *deleted > 0)
            return VIGIL_OK; /* next transaction */
        if (head) {
            rc = series_stmt(s, SQ_HEAD_DELETE, series, "retention: deleting a chunk");
        } else {
            sqlite3_stmt *st = vigil__sq_stmt(s, SQ_CHUNK_DELETE, &rc);
            if (!st)
                return rc;
            sqlite3_bind_int64(st, 1, series);
            sqlite3_bind_int64(st, 2, start);
            rc = vigil__sq_exec_stmt(s, st, "retention: deleting a chunk");
        }
        if (rc)
            return rc;
        if (keep) {
            sq_tail t;
            rc = write_pieces(s, series, s->merged + (m - keep), keep,
                              head ? PIECES_HEAD : PIECES_INSERT, &t);
            if (rc)
                return rc;
        }
        *deleted += (uint64_t)del;
        *budget -= del;
        if (keep || head) {
            *done = 1; /* what is left starts at or after the cutoff */
            return VIGIL_OK;
        }
    }
}

/* ---- migration 2 -> 3 --------------------------------------------------------------- */

/* Writes the collected samples of one series as chunks; error texts are
 * kept in `texts`, at the offsets in `offs` (SIZE_MAX: a value). */
static int migrate_flush(vigil__sq *s, int64_t series, size_t n, const vigil_buf *texts,
                         const size_t *offs)
{
    for (size_t i = 0; i < n; i++)
        if (offs[i] != SIZE_MAX)
            s->samples[i].error = texts->ptr + offs[i];
    /* rows come sorted by ts with unique ts (the old primary key) */
    sq_tail t;
    return write_pieces(s, series, s->samples, n, PIECES_HEAD, &t);
}

int vigil__sq_chunks_migrate(vigil__sq *s)
{
    sqlite3_stmt *st = NULL;
    int r = sqlite3_prepare_v2(
        s->db, "SELECT series_id, ts, value, error FROM samples ORDER BY series_id, ts", -1, &st,
        NULL);
    if (r != SQLITE_OK)
        return vigil__sq_error(s, r, "migrating the schema: reading samples");
    int rc = VIGIL_OK;
    int64_t cur = 0;
    size_t n = 0, offs_cap = 0;
    size_t *offs = NULL;
    vigil_buf texts = VIGIL_BUF_INIT;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t series = sqlite3_column_int64(st, 0);
        if (n && series != cur) {
            if ((rc = migrate_flush(s, cur, n, &texts, offs)) != 0)
                break;
            n = 0;
            vigil__buf_clear(&texts);
        }
        cur = series;
        if (vigil__array_grow((void **)&s->samples, &s->samples_cap, n + 1, sizeof(*s->samples)) ||
            vigil__array_grow((void **)&offs, &offs_cap, n + 1, sizeof(*offs))) {
            rc = vigil__error_oom();
            break;
        }
        vigil__sample *x = &s->samples[n];
        x->ts = sqlite3_column_int64(st, 1);
        x->value = 0;
        x->error = NULL;
        x->error_len = 0;
        offs[n] = SIZE_MAX;
        if (sqlite3_column_type(st, 2) != SQLITE_NULL) {
            x->value = sqlite3_column_double(st, 2);
        } else {
            const char *e = (const char *)sqlite3_column_text(st, 3);
            size_t len = e ? (size_t)sqlite3_column_bytes(st, 3) : 0;
            if (!len) {
                e = "no value";
                len = 8;
            }
            offs[n] = texts.size;
            x->error_len = len;
            if (vigil__buf_put(&texts, e, len) != 0) {
                rc = vigil__error_oom();
                break;
            }
        }
        n++;
    }
    if (rc == VIGIL_OK && r != SQLITE_DONE)
        rc = vigil__sq_error(s, r, "migrating the schema: reading samples");
    if (rc == VIGIL_OK && n)
        rc = migrate_flush(s, cur, n, &texts, offs);
    sqlite3_finalize(st);
    vigil__free(offs);
    vigil_buf_dispose(&texts);
    return rc;
}
