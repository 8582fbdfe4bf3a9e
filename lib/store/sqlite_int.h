/*
 * Private to the SQLite backend (lib/store/sqlite*.c): the handle, the cached
 * statements and helpers shared by its files. The only header of the library
 * that includes sqlite3.h besides those files.
 */
#ifndef VIGIL_STORE_SQLITE_INT_H
#define VIGIL_STORE_SQLITE_INT_H

#include "internal/common.h"
#include "store/chunk.h"
#include "vigil/sys/store.h"

#include <pthread.h>
#include <sqlite3.h>

/* Schema version written by this code (PRAGMA user_version). */
#define VIGIL__SQ_SCHEMA_VERSION 4
/* PRAGMA application_id of a vigil database: "Vigl". */
#define VIGIL__SQ_APPLICATION_ID 0x5669676c

/* Cached statements, prepared on first use (sqlite.c holds the SQL). */
typedef enum sq_stmt_id {
    SQ_BEGIN,
    SQ_COMMIT,
    SQ_ROLLBACK,
    SQ_BATCH_INSERT,
    SQ_SERIES_FIND,
    SQ_SERIES_INSERT,
    SQ_DATA_VERSION,
    SQ_HEAD_GET,
    SQ_HEAD_PUT,
    SQ_HEAD_APPEND,
    SQ_HEAD_CLOSE,
    SQ_HEAD_DELETE,
    SQ_CHUNK_AT,
    SQ_CHUNK_NEXT,
    SQ_CHUNK_FIRST,
    SQ_CHUNK_INSERT,
    SQ_CHUNK_REPLACE,
    SQ_CHUNK_DELETE,
    SQ_CHUNK_RANGE,
    SQ_CHUNK_BACK,
    SQ_SERIES_ALL,
    SQ_SERIES_BY_NAME,
    SQ_SERIES_BY_GLOB,
    SQ_RET_NEXT_SERIES,
    SQ_RET_DELETE_BATCHES,
    SQ_ACTION_INSERT,
    SQ_ACTION_UPDATE,
    SQ_ACTION_GET,
    SQ_ACTION_LIST,
    SQ_DECISION_INSERT,
    SQ_DECISION_LIST,
    SQ_AUDIT_INSERT,
    SQ_AUDIT_LIST,
    SQ_AUDIT_LAST,
    SQ_SILENCE_PUT,
    SQ_SILENCE_DELETE,
    SQ_SILENCE_LIST,
    SQ_STATE_PUT,
    SQ_STATE_GET,
    SQ_STATE_DELETE,
    SQ_STATE_LIST,
    SQ_STATE_LIST_RANGE,
    SQ_RES_DELETE_SET,
    SQ_RES_DELETE_SOURCE,
    SQ_RES_PUT,
    SQ_RES_DELETE,
    SQ_RES_GET,
    SQ_RES_LIST,
    SQ_LOG_INSERT,
    SQ_LOG_ALL,
    SQ_LOG_DELETE,
    SQ_LOG_HEAD,
    SQ_STMT_COUNT
} sq_stmt_id;

/* A sample of a write. The rows of a write are sorted by series, and the
 * rows of a series by ts, before they are written, each series' into its
 * chunks at once; the sorts are stable, so of two samples with the same
 * (series, ts) the later in the batch is kept (last write wins). */
typedef struct sq_row {
    int64_t series;
    size_t index; /* in the written batch */
} sq_row;

/* Series id cache: the series in the order they were cached, and open
 * addressing on the canonical series key over them. A lookup tries the
 * series cached after the last one found first: an agent sends its series
 * in the same order each time, the order they were created and cached in,
 * so a batch reads the cache in order instead of at random. */
typedef struct sq_slot {
    uint64_t hash;
    int64_t id;
    char *key;
} sq_slot;

typedef struct sq_cache {
    sq_slot *ent; /* in the order cached */
    size_t n, ent_cap;
    uint32_t *idx; /* entry + 1, 0: empty */
    size_t cap;    /* power of two, or 0 */
    size_t max;    /* entries kept at most */
    size_t guess;  /* the entry tried first */
} sq_cache;

/* What the writer knows of a series' head (its last chunk, the one new
 * samples are appended to): its start, size and the state to encode after
 * its last sample.
 * Kept for the series written recently, keyed by series id (open addressing;
 * id 0 marks an empty slot); cleared whenever the chunks may have changed
 * behind it: a rolled-back write, retention, another connection's commit. */
typedef struct sq_tail {
    int64_t series;
    int none; /* the series has no head, hence no chunk */
    int64_t start_ts;
    size_t bytes;
    int64_t n;
    vigil__chunk_tail enc;
} sq_tail;

typedef struct sq_tails {
    sq_tail *slots;
    size_t cap; /* power of two, or 0 */
    size_t n;
    size_t max;
} sq_tails;

/* The background checkpointer of a file store (sqlite.c): a thread with a
 * connection of its own that runs PASSIVE checkpoints. The writer's WAL hook
 * tells it how many frames the log holds; `mu` guards every field the two
 * threads share. */
typedef struct sq_ckpt {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* checkpointer: woken, or told to stop */
    pthread_cond_t idle_cv; /* writer: the running checkpoint finished */
    sqlite3 *db;            /* the checkpointer's connection */
    const char *path;       /* borrowed from the store */
    vigil_logger logger;
    int64_t interval_ms;
    int pages;      /* wake the thread this many frames past `backfilled` */
    int slack;      /* frames the writer copies itself to start the log over */
    int stop;       /* the store is closing */
    int wake;       /* the writer asked for a checkpoint */
    int running;    /* a checkpoint is in progress on the thread */
    int held;       /* the writer runs its own checkpoint; do not start one */
    int wal_frames; /* frames in the log after the writer's last commit */
    int backfilled; /* frames the last checkpoint copied back */
    int failing;    /* the last checkpoint failed (logged once per streak) */
} sq_ckpt;

/* The write log (sqlite_log.c). A write commits its samples as one row of
 * table wlog instead of one row update per series; the samples it holds
 * and no chunk does yet, "pending", are kept in memory by series, sorted by
 * ts without repeats (a later write replaces a sample), so that queries see
 * chunks and pending together. A fold writes the pending samples into the
 * chunks in transactions of a few series each (a "round": the series
 * pending when it started, then the log rows up to round_seq deleted with
 * its last slice). Folding a sample twice, or replaying a log row whose
 * samples a chunk already holds, writes the same (series, ts) = value
 * again, so replay after a crash is idempotent. */
typedef struct sq_pend {
    int64_t series; /* 0: empty slot */
    vigil__sample *x;
    int64_t *seq; /* the log row of each sample */
    size_t n, cap, seq_cap;
    int64_t last; /* x[n - 1].ts when n > 0: an append is checked without reading x */
} sq_pend;

typedef struct sq_log {
    int on;                   /* writes go through the log (URL log=on, the default) */
    int idle_fold;            /* folds run between writes (vigil__store_fold_idle) */
    sq_pend *slots;           /* open addressing on the series id */
    size_t cap, used;         /* slots, and slots with a series (pending or not) */
    size_t bytes;             /* memory of pending samples and their error texts */
    uint64_t samples;         /* pending samples */
    int64_t since_ms;         /* monotonic: the first sample pending since the last round */
    int64_t fold_interval_ms; /* a round starts when samples are pending this long */
    int64_t fold_slice_ms;    /* a slice folds series for about this long, 0: all of the round */
    size_t fold_batch;        /* and at most this many series and log rows deleted, 0: no limit */
    size_t memory_soft;       /* a round starts, and is finished at once, past this */
    size_t memory_hard;       /* writes are refused (VIGIL_EFULL) past this */
    int64_t data_version;     /* PRAGMA data_version the pending samples match */
    int loaded;               /* pending reflects the log as of data_version */
    int64_t *round;           /* series of the running round */
    size_t round_n, round_i, round_cap;
    int64_t round_seq;   /* log rows up to this one are folded when the round ends */
    int64_t trim_seq;    /* log rows up to this one are folded: slices delete them */
    int64_t trimmed_seq; /* and up to this one they are deleted */
    int64_t round_t0;    /* monotonic ms: the round started */
    int round_on;
    int64_t last_seq;  /* the newest log row read or written */
    int64_t first_seq; /* the oldest log row this connection knows is there */
    int64_t retry_ms;  /* monotonic: after a failed fold, none before this */
    vigil_buf blob;    /* scratch: a log row being encoded */
    /* figures */
    uint64_t rows;        /* log rows not deleted yet (as far as this connection knows) */
    uint64_t row_bytes;   /* their bytes */
    uint64_t folds;       /* rounds finished */
    int64_t last_fold_us; /* duration of the last round, slices added up */
    int64_t round_us;     /* of the running round so far */
    uint64_t folded;      /* samples written into chunks by folds */
} sq_log;

typedef struct vigil__sq {
    sqlite3 *db;
    sq_log log;
    sq_ckpt *ckpt;    /* NULL: in-memory, read-only or inline checkpoints */
    int wal_frames;   /* writer: frames in the log after its last commit */
    int wal_max;      /* writer: TRUNCATE checkpoint before a write past this */
    int wal_retry_at; /* writer: after a failed TRUNCATE, wait for this many */
    char *path;       /* file name for messages (":memory:" for memory) */
    int read_only;
    int64_t busy_ms;
    vigil_logger logger;
    sqlite3_stmt *stmt[SQ_STMT_COUNT];
    sq_cache cache;
    sq_tails tails;
    int64_t data_version; /* PRAGMA data_version after the writer's last transaction */
    int data_version_known;
    vigil_buf key;          /* scratch: series key of a write */
    vigil__sample *samples; /* scratch: one series' samples of a write, sorted by ts */
    size_t samples_cap;
    vigil__sample *merged; /* scratch: a chunk's samples merged with new ones */
    size_t merged_cap;
    vigil_buf chunk; /* scratch: a chunk's data read back, or being encoded */
    vigil_buf chunk2;
    vigil_buf errtext; /* scratch: a NUL-terminated error text of a query result */
    sq_row *rows;      /* scratch: the samples of a write, and room to sort them */
    size_t rows_cap;
    vigil_buf qkey; /* scratch: series key of a query result */
    /* scratch: tags of the series being reported */
    vigil_buf tagbuf;
    vigil_tag *tags;
    size_t tags_cap;
    /* retention cursor, continued across calls with the same cutoff */
    int ret_active;
    int ret_batches_done;
    int64_t ret_cutoff;
    int64_t ret_series;
} vigil__sq;

/* Maps a SQLite result code to a vigil status and records
 * "sqlite: <op>: <sqlite message> (<path>)". */
int vigil__sq_error(vigil__sq *s, int sqlite_rc, const char *op);
/* The cached statement `id`, prepared on first use and reset; NULL with the
 * error recorded on failure. */
sqlite3_stmt *vigil__sq_stmt(vigil__sq *s, sq_stmt_id id, int *rc);
/* BEGIN IMMEDIATE / COMMIT / ROLLBACK (rollback ignores errors and does
 * nothing outside a transaction). */
int vigil__sq_begin(vigil__sq *s, const char *op);
int vigil__sq_commit(vigil__sq *s, const char *op);
void vigil__sq_rollback(vigil__sq *s);
/* Runs a statement without result rows to completion and resets it. */
int vigil__sq_exec_stmt(vigil__sq *s, sqlite3_stmt *st, const char *op);
/* Binds a string or NULL. */
int vigil__sq_bind_text(sqlite3_stmt *st, int i, const char *text);
/* Refuses writes on a read-only store. */
int vigil__sq_check_writable(vigil__sq *s, const char *op);

/* sqlite_samples.c */
int vigil__sq_write(void *h, const vigil_batch *batch, vigil_store_write_result *result);
int vigil__sq_write_group(void *h, const vigil_batch *merged, const vigil_store_batch_part *parts,
                          size_t nparts, vigil_store_write_result *results);
int vigil__sq_query(void *h, const vigil_store_query *q, vigil_store_point_cb cb, void *payload);
int vigil__sq_series_list(void *h, const vigil_store_query *q, vigil_store_series_cb cb,
                          void *payload);
int vigil__sq_latest(void *h, const vigil_store_query *q, vigil_store_point_cb cb, void *payload);
int vigil__sq_retain(void *h, int64_t cutoff_ms, const vigil_store_retention_options *opts,
                     vigil_store_retention_result *result);
void vigil__sq_cache_clear(sq_cache *c);
void vigil__sq_cache_free(sq_cache *c);

/* sqlite_chunks.c */
/* Writes the samples [0, n) of one series, sorted by ts without repeats,
 * into its chunks, inside the writer's transaction. */
int vigil__sq_chunks_write(vigil__sq *s, int64_t series, const vigil__sample *x, size_t n);
/* Forgets every cached tail. */
void vigil__sq_tails_clear(vigil__sq *s);
/* Records that a series created in this transaction has no chunk. */
int vigil__sq_tails_created(vigil__sq *s, int64_t series);
void vigil__sq_tails_free(vigil__sq *s);
/* Inside a write transaction, before writing: forgets the cached tails if
 * another connection committed since this one's last transaction (this
 * connection's own commits leave PRAGMA data_version as it is). */
int vigil__sq_tails_check(vigil__sq *s);
/* Calls cb for the samples of `series` in [from, to), oldest first. */
typedef int (*sq_sample_fn)(const vigil__sample *x, void *ctx);
int vigil__sq_chunks_scan(vigil__sq *s, int64_t series, int64_t from, int64_t to, sq_sample_fn cb,
                          void *ctx);
/* The last sample of `series` in [from, to): 1 and *x, or 0 when none. */
int vigil__sq_chunks_last(vigil__sq *s, int64_t series, int64_t from, int64_t to, vigil__sample *x);
/* Retention of one series inside a transaction: deletes its samples before
 * `cutoff`, whole chunks or trimmed ones, while *budget allows (at least one
 * chunk when *deleted is 0). *done: nothing of the series is left before the
 * cutoff. */
int vigil__sq_chunks_retain(vigil__sq *s, int64_t series, int64_t cutoff, int64_t *budget,
                            uint64_t *deleted, int *done);
/* Migration 2 -> 3: moves the rows of table samples into chunks. */
int vigil__sq_chunks_migrate(vigil__sq *s);

/* sqlite_log.c */
/* Fills the defaults of the log's settings left 0. */
void vigil__sq_log_defaults(sq_log *l);
/* Loads the log into memory when another connection changed the database
 * since (or when never loaded). Inside or outside a transaction. */
int vigil__sq_log_sync(vigil__sq *s);
/* Inside the write transaction: starts a log row, adds one series' samples
 * (sorted by ts without repeats), inserts the row (nothing when empty). */
int vigil__sq_log_begin(vigil__sq *s);
int vigil__sq_log_put(vigil__sq *s, int64_t series, const vigil__sample *x, size_t n);
int vigil__sq_log_insert(vigil__sq *s);
/* After the write transaction committed: its samples become pending. */
int vigil__sq_log_committed(vigil__sq *s);
/* Refuses a write while pending memory is past the hard cap (after one
 * attempt to fold everything). */
int vigil__sq_log_admit(vigil__sq *s);
/* Outside a transaction, after a write: folds a slice when a round is due
 * (with idle folding on, only when a round is overdue or memory is past
 * log_memory). Failures are logged, not returned (the write is committed). */
void vigil__sq_log_tend(vigil__sq *s);

/* Outside a transaction: folds every pending sample and empties the log. */
int vigil__sq_log_fold_all(vigil__sq *s);
/* *any: a pending sample is older than `cutoff`. */
int vigil__sq_log_pending_before(vigil__sq *s, int64_t cutoff, int *any);
/* The pending samples of `series` (NULL when none). */
const sq_pend *vigil__sq_log_pending(const vigil__sq *s, int64_t series);
void vigil__sq_log_free(vigil__sq *s);

/* sqlite_records.c */
/* sqlite_lease.c */
int vigil__sq_lease_acquire(void *h, const char *name, const char *holder, int64_t ttl_ms,
                            vigil_store_lease *out);
int vigil__sq_lease_release(void *h, const char *name, const char *holder);
int vigil__sq_lease_get(void *h, const char *name, vigil_store_lease *out);

int vigil__sq_action_put(void *h, const vigil_store_action *a, int *created);
int vigil__sq_action_update(void *h, const vigil_store_action *a);
int vigil__sq_action_get(void *h, const char *id, vigil_store_action_cb cb, void *payload);
int vigil__sq_action_list(void *h, const vigil_store_filter *f, vigil_store_action_cb cb,
                          void *payload);
int vigil__sq_decision_append(void *h, const vigil_store_decision *d, int64_t *id_out);
int vigil__sq_decision_list(void *h, const vigil_store_filter *f, vigil_store_decision_cb cb,
                            void *payload);
int vigil__sq_audit_append(void *h, const vigil_store_audit *row);
int vigil__sq_audit_list(void *h, const vigil_store_filter *f, vigil_store_audit_cb cb,
                         void *payload);
int vigil__sq_audit_last(void *h, vigil_store_audit_cb cb, void *payload);
int vigil__sq_silence_put(void *h, const vigil_store_silence *s);
int vigil__sq_silence_delete(void *h, const char *id);
int vigil__sq_silence_list(void *h, int64_t active_at_ms, vigil_store_silence_cb cb, void *payload);
int vigil__sq_state_put(void *h, const char *key, const void *value, size_t len);
int vigil__sq_state_get(void *h, const char *key, vigil_store_state_cb cb, void *payload);
int vigil__sq_state_delete(void *h, const char *key);
int vigil__sq_state_list(void *h, const char *prefix, vigil_store_state_cb cb, void *payload);
int vigil__sq_resource_replace(void *h, vigil_store_resource_set set, const char *source,
                               const vigil_store_resource *records, size_t n);
int vigil__sq_resource_put(void *h, vigil_store_resource_set set,
                           const vigil_store_resource *record);
int vigil__sq_resource_delete(void *h, vigil_store_resource_set set, const char *key);
int vigil__sq_resource_list(void *h, vigil_store_resource_set set, const char *key,
                            vigil_store_resource_cb cb, void *payload);

#endif
