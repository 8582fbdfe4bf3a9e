/*
 * Private to the PostgreSQL backend (lib/store/pg*.c): the handle, its pool
 * of connections, the prepared statements and helpers shared by its files.
 * The only header of the library that includes libpq-fe.h.
 */
#ifndef VIGIL_STORE_PG_INT_H
#define VIGIL_STORE_PG_INT_H

#include "internal/common.h"
#include "vigil/sys/store.h"

#include <libpq-fe.h>

/* Schema version written by this code (table vigil_schema). */
#define VIGIL__PG_SCHEMA_VERSION 1
/* Connections of one handle: ?pool=N, 1..PG_POOL_MAX, default 2. */
#define VIGIL__PG_POOL_DEFAULT 2
#define VIGIL__PG_POOL_MAX     64
/* Rows of one INSERT (its arrays) and of one DELETE of retention. */
#define VIGIL__PG_ROWS_MAX 50000
/* The deadline of one statement's answer: ?timeout=, in ms. */
#define VIGIL__PG_TIMEOUT_DEFAULT_MS 30000
#define VIGIL__PG_TIMEOUT_MIN_MS     100
#define VIGIL__PG_TIMEOUT_MAX_MS     3600000

/* Prepared statements, prepared on each connection on first use (pg.c
 * holds the SQL). */
typedef enum pg_stmt_id {
    PG_BATCH_INSERT,
    PG_SERIES_FIND,
    PG_SERIES_INSERT,
    PG_SAMPLES_UPSERT,
    PG_SAMPLES_UPSERT_NO_TAIL,
    PG_SERIES_ALL,
    PG_SERIES_BY_NAME,
    PG_RAW,
    PG_AGG,
    PG_LATEST,
    PG_PART_LIST,
    PG_PART_COUNT_OLD,
    PG_RET_DELETE_BATCHES,
    PG_RET_DELETE_SAMPLES,
    PG_ACTION_INSERT,
    PG_ACTION_UPDATE,
    PG_ACTION_GET,
    PG_ACTION_LIST,
    PG_DECISION_INSERT,
    PG_DECISION_LIST,
    PG_AUDIT_INSERT,
    PG_AUDIT_LIST,
    PG_AUDIT_LAST,
    PG_SILENCE_PUT,
    PG_SILENCE_DELETE,
    PG_SILENCE_LIST,
    PG_STATE_PUT,
    PG_STATE_GET,
    PG_STATE_DELETE,
    PG_STATE_LIST,
    PG_RES_DELETE_SET,
    PG_RES_DELETE_SOURCE,
    PG_RES_PUT,
    PG_RES_DELETE,
    PG_RES_GET,
    PG_RES_LIST,
    PG_LEASE_SEED,
    PG_LEASE_LOCK,
    PG_LEASE_SET,
    PG_LEASE_RELEASE,
    PG_LEASE_GET,
    PG_TAIL_NOW,
    PG_TAIL_READ,
    PG_TAIL_TRIM,
    PG_STMT_COUNT
} pg_stmt_id;

/* One connection of the pool. */
typedef struct pg_conn {
    PGconn *c;
    unsigned char prepared[PG_STMT_COUNT]; /* statements prepared on c */
} pg_conn;

/* A series id cached by key (name followed by the canonical tags text). */
typedef struct pg_slot {
    char *key; /* owned; NULL: empty slot */
    uint64_t hash;
    int64_t id;
} pg_slot;

typedef struct pg_cache {
    pg_slot *slots;
    size_t cap, n, max;
} pg_cache;

/* A day partition of samples this handle knows of (created or found). */
typedef struct pg_days {
    int64_t *day; /* sorted */
    size_t n, cap;
} pg_days;

typedef struct vigil__pg {
    char *conninfo;  /* the URL without vigil's own options; owned */
    char *password;  /* from password_env= or password_file=; owned, wiped */
    char *schema;    /* ?schema=, validated; NULL: the server's search_path */
    char *display;   /* host:port/db for messages (no credentials) */
    char *opts_line; /* libpq "options": search_path, lock_timeout, ...; owned */
    int read_only;
    int no_tail; /* ?tail=off: writes keep no tail; vigil_store_tail() is unsupported */
    int64_t connect_timeout_s;
    int64_t timeout_ms; /* ?timeout=: the deadline of each statement's answer */
    int timed_out;      /* the last statement ran past it (its connection is closed) */
    vigil_logger logger;

    pg_conn *pool;
    size_t npool;
    size_t cur;    /* the connection of the call in progress */
    int in_txn;    /* a transaction is open on pool[cur] */
    int delivered; /* the call has handed a row to its callback */
    uint64_t reconnects;

    pg_cache cache;
    pg_days days;

    /* retention cursor (retain() is called repeatedly for one cutoff) */
    int ret_active;
    int64_t ret_cutoff;
    int ret_batches_done;
    int ret_tail_done;

    /* scratch */
    vigil_buf a1, a2, a3, a4; /* array literals */
    vigil_buf key, qkey, tagbuf, errtext;
    vigil_tag *tags;
    size_t tags_cap;
    struct pg_row *rows;
    size_t rows_cap;
} vigil__pg;

/* A sample of a write: series, ts, the metric it came from. */
typedef struct pg_row {
    int64_t series;
    int64_t ts;
    size_t index;
} pg_row;

/* ---- pg.c ---------------------------------------------------------------- */

/* Records a failed result or connection as the thread's error: code from the
 * SQLSTATE (connection loss: VIGIL_EIO), message "postgresql: OP: TEXT". */
int vigil__pg_error(vigil__pg *s, const PGresult *res, const char *op);

/* Waits for the answer to what was just sent on the call's connection
 * (`sent`: what the PQsend* call returned) until s->timeout_ms from now,
 * polling its socket. VIGIL_OK: *out is the result as PQexec() would return
 * it (the first error result, else the last; NULL when sending failed: the
 * connection's error message tells why), the caller's to PQclear. Past the
 * deadline: closes the connection (the next call reconnects), sets
 * s->timed_out and returns VIGIL_ETIMEOUT naming `op` and the timeout. */
int vigil__pg_await(vigil__pg *s, int sent, PGresult **out, const char *op);

/* Whether a statement may be retried once on a fresh connection when the
 * connection is lost while it runs. */
typedef enum pg_retry { PG_NO_RETRY = 0, PG_RETRY = 1 } pg_retry;

/* Runs prepared statement `id` on the call's connection with text
 * parameters (NULL: SQL NULL; lengths/formats may be NULL for all-text),
 * results in text (binary when `binary`). On success *out is the result
 * (PGRES_TUPLES_OK or PGRES_COMMAND_OK), the caller's to PQclear. A
 * connection lost while it ran is re-established and the statement run
 * again once when `retry` and no transaction is open and no row was handed
 * to a callback yet; otherwise VIGIL_EIO. */
int vigil__pg_exec(vigil__pg *s, pg_stmt_id id, int nparams, const char *const *values,
                   const int *lengths, const int *formats, int binary, pg_retry retry,
                   PGresult **out, const char *op);
/* Runs SQL text (no parameters) on the call's connection; *out may be NULL.
 * Both wait for the answer at most s->timeout_ms (VIGIL_ETIMEOUT, never
 * retried). */
int vigil__pg_sql(vigil__pg *s, const char *sql, pg_retry retry, PGresult **out, const char *op);

/* Picks a healthy connection for a call (reconnecting a broken one) and
 * resets the call's state. Every vtable member calls it first. */
int vigil__pg_enter(vigil__pg *s);

/* BEGIN / COMMIT / ROLLBACK on the call's connection. */
int vigil__pg_begin(vigil__pg *s, const char *op);
int vigil__pg_commit(vigil__pg *s, const char *op);
void vigil__pg_rollback(vigil__pg *s);
/* Whether the last failure was the connection's (not the statement's). */
int vigil__pg_conn_lost(vigil__pg *s);

int vigil__pg_check_writable(vigil__pg *s, const char *op);

/* Appends `text` quoted for an array literal ("..." with \ and " escaped);
 * NULL appends NULL. */
int vigil__pg_array_text(vigil_buf *b, const char *text, size_t len);

/* ---- pg_samples.c ------------------------------------------------------------ */

int vigil__pg_write(void *h, const vigil_batch *batch, vigil_store_write_result *res);
int vigil__pg_write_group(void *h, const vigil_batch *merged, const vigil_store_batch_part *parts,
                          size_t nparts, vigil_store_write_result *results);
int vigil__pg_query(void *h, const vigil_store_query *q, vigil_store_point_cb cb, void *payload);
int vigil__pg_series_list(void *h, const vigil_store_query *q, vigil_store_series_cb cb,
                          void *payload);
int vigil__pg_latest(void *h, const vigil_store_query *q, vigil_store_point_cb cb, void *payload);
int vigil__pg_retain(void *h, int64_t cutoff_ms, const vigil_store_retention_options *opts,
                     vigil_store_retention_result *res);
void vigil__pg_cache_clear(pg_cache *c);
/* SQLite's GLOB: '*', '?', [abc], [a-z], [^a-z]; case-sensitive. */
int vigil__pg_glob(const char *pattern, const char *s);

/* ---- pg_records.c ------------------------------------------------------------ */

int vigil__pg_action_put(void *h, const vigil_store_action *a, int *created);
int vigil__pg_action_update(void *h, const vigil_store_action *a);
int vigil__pg_action_get(void *h, const char *id, vigil_store_action_cb cb, void *payload);
int vigil__pg_action_list(void *h, const vigil_store_filter *f, vigil_store_action_cb cb,
                          void *payload);
int vigil__pg_decision_append(void *h, const vigil_store_decision *d, int64_t *id_out);
int vigil__pg_decision_list(void *h, const vigil_store_filter *f, vigil_store_decision_cb cb,
                            void *payload);
int vigil__pg_audit_append(void *h, const vigil_store_audit *row);
int vigil__pg_audit_list(void *h, const vigil_store_filter *f, vigil_store_audit_cb cb,
                         void *payload);
int vigil__pg_audit_last(void *h, vigil_store_audit_cb cb, void *payload);
int vigil__pg_silence_put(void *h, const vigil_store_silence *x);
int vigil__pg_silence_delete(void *h, const char *id);
int vigil__pg_silence_list(void *h, int64_t active_at_ms, vigil_store_silence_cb cb, void *payload);
int vigil__pg_state_put(void *h, const char *key, const void *value, size_t len);
int vigil__pg_state_get(void *h, const char *key, vigil_store_state_cb cb, void *payload);
int vigil__pg_state_delete(void *h, const char *key);
int vigil__pg_state_list(void *h, const char *prefix, vigil_store_state_cb cb, void *payload);
int vigil__pg_resource_replace(void *h, vigil_store_resource_set set, const char *source,
                               const vigil_store_resource *records, size_t n);
int vigil__pg_resource_put(void *h, vigil_store_resource_set set,
                           const vigil_store_resource *record);
int vigil__pg_resource_delete(void *h, vigil_store_resource_set set, const char *key);
int vigil__pg_resource_list(void *h, vigil_store_resource_set set, const char *key,
                            vigil_store_resource_cb cb, void *payload);

/* ---- pg_lease.c ------------------------------------------------------------ */

int vigil__pg_lease_acquire(void *h, const char *name, const char *holder, int64_t ttl_ms,
                            vigil_store_lease *out);
int vigil__pg_lease_release(void *h, const char *name, const char *holder);
int vigil__pg_lease_get(void *h, const char *name, vigil_store_lease *out);
int vigil__pg_tail(void *h, const char *cursor, size_t max_samples, vigil_store_point_cb cb,
                   void *payload, char *next_cursor, size_t next_cursor_len);

/* Parses canonical tags text into s->tags (pg_samples.c). */
int vigil__pg_parse_tags(vigil__pg *s, const char *text, size_t *ntags);

/* Formats an int64 into buf (at least 24 bytes) and returns buf. */
const char *vigil__pg_i64(char *buf, int64_t v);

#endif
