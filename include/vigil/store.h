/*
 * vigil/store.h - the store: everything the daemons persist (series and
 * samples, ingest batch ids, the action ledger, decisions, audit rows,
 * silences, policy state, drift, desired state) behind one backend interface,
 * with queries and retention.
 *
 * A store is opened from a URL whose scheme picks the backend:
 *
 *   sqlite://PATH            a file; PATH relative ("sqlite://./var/vigil.db",
 *                            "sqlite://vigil.db") or absolute
 *                            ("sqlite:///var/lib/vigil/vigil.db")
 *   sqlite::memory:          a private in-memory database (also sqlite://:memory:)
 *
 * An optional query string follows the path: "?mode=ro" opens read-only,
 * "?mode=rw" requires an existing file, "?mode=rwc" (the default) creates it;
 * "&synchronous=full|normal", "&busy_timeout=<duration>" (e.g. 250ms) and
 * "&checkpoint=background|inline" override the options. Unknown keys are refused. The URL is not
 * percent-decoded: a path must not contain '?'.
 *
 *   postgresql://[USER@]HOST[:PORT]/DATABASE[?OPTIONS]   a PostgreSQL database
 *                            (also postgres://...; libpq's URL: a unix socket
 *                            directory as ?host=/run/postgresql)
 *
 * PostgreSQL options, besides libpq's own (sslmode, connect_timeout,
 * application_name, ...; unknown ones are refused): "pool=N" connections the
 * store keeps (1..64, default 2), "schema=NAME" the schema of vigil's tables
 * (created when missing; default: the server's search_path),
 * "password_env=VAR" or "password_file=PATH" (mode 0600) where the password
 * is read from, "tail=off" (no vigil_store_tail(): a single hub saves one
 * row per write), "timeout=T" how long a call waits for each answer of the
 * server (N or Nms milliseconds, Ns seconds; 100ms..3600s, default 30s):
 * past it the connection is closed, the next call opens a new one, and the
 * call fails with VIGIL_ETIMEOUT naming the operation and the timeout (a
 * COMMIT past it reports that its outcome is unknown); connecting waits at
 * most the shorter of timeout and connect_timeout (default 5 s). TCP
 * connections default to keepalives (5 s idle, 2 s interval, 3 probes) and
 * tcp_user_timeout=10000 unless the URL sets them. libpq's PGPASSWORD and
 * PGPASSFILE work too. A password in
 * the URL itself is refused (VIGIL_EINVAL): credentials never sit in a
 * configuration file. busy_timeout_ms becomes the server's lock_timeout,
 * VIGIL_STORE_SYNC_FULL its synchronous_commit=on (NORMAL keeps the
 * server's setting), read_only its default_transaction_read_only;
 * max_size_bytes is refused (the server's quotas bound its size) and the
 * checkpoint options are SQLite's. docs/architecture.md ("The PostgreSQL
 * store") describes its tables, partitions, retries and the tail.
 *
 * The SQLite and PostgreSQL backends are built in. Other backends (store types,
 * <vigil/sys/store.h>) are registered on a vigil_store_registry passed through
 * the options; a scheme resolves in the built-in types first, then there.
 * There is no global registry.
 *
 * Strings in the records below are NUL-terminated UTF-8. In records passed to
 * the store they are borrowed for the duration of the call; in records handed
 * to a callback they are borrowed for the duration of the callback.
 * Records (vigil_store_series, _point, _action, _decision, _audit, _silence,
 * _resource) are data, not output structs: they have no version field, the
 * library hands them to a callback or takes them as input and never fills
 * one the caller allocated. The output structs, which the library fills for
 * the caller (vigil_store_write_result, vigil_store_retention_result), start
 * with `unsigned int version` set by the caller.
 *
 * Callbacks: a callback returns 0 to continue; any other value stops the
 * iteration, and the function that called it returns that value unchanged
 * (return a positive value to tell it from the library's negative codes).
 * A callback must not call into the same store (calls on one store are
 * serialised and would deadlock).
 *
 * Threads: a vigil_store may be used from several threads; its calls are
 * serialised by a mutex it owns. For concurrent reads while a writer is busy,
 * open a second store on the same file (SQLite's WAL lets readers run beside
 * one writer). A vigil_store_registry is not synchronised: fill it before
 * opening stores, then only read it. Registry and options must outlive
 * vigil_store_open() only; the registry must also outlive every store opened
 * through it (the store uses the type and its payload). A SQLite store opened
 * read-write on a file starts one checkpoint thread in vigil_store_open()
 * (unless checkpoint is inline) and joins it in vigil_store_close(); that
 * thread logs through the store's logger.
 */
#ifndef VIGIL_STORE_H
#define VIGIL_STORE_H

#include "vigil/batch.h"
#include "vigil/common.h"
#include "vigil/log.h"
#include "vigil/metric.h"
#include "vigil/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @name Limits of stored records @since 0.1.0 */
/**@{*/
#define VIGIL_STORE_URL_MAX      4096       /**< bytes in a store URL */
#define VIGIL_STORE_ID_MAX       128        /**< bytes in an action, silence id */
#define VIGIL_STORE_KEY_MAX      4096       /**< bytes in a name, key, series key */
#define VIGIL_STORE_TEXT_MAX     (4 << 20)  /**< bytes in a text or JSON field */
#define VIGIL_STORE_BLOB_MAX     (16 << 20) /**< bytes in a policy-state blob */
#define VIGIL_STORE_MATCHERS_MAX 64         /**< tag matchers in one query */
/**@}*/

/** A store type (a backend's vtable), defined in <vigil/sys/store.h>. @since 0.2.0 */
typedef struct vigil_store_type vigil_store_type;

/** How hard a commit waits for the disk. @since 0.1.0 */
typedef enum vigil_store_sync {
    /** SQLite synchronous=NORMAL in WAL mode: a commit survives a process
     * crash; a power loss may lose the last commits, never corrupt. */
    VIGIL_STORE_SYNC_NORMAL = 0,
    /** synchronous=FULL: every commit is on disk before it returns. */
    VIGIL_STORE_SYNC_FULL = 1
} vigil_store_sync;

/**
 * Where the SQLite backend checkpoints its write-ahead log (copies committed
 * pages back into the database file so the log can start over).
 * @since 0.1.0
 */
typedef enum vigil_store_checkpoint {
    /** A thread of the store, with a connection of its own, runs PASSIVE
     * checkpoints beside the writer, which never waits for them; a write that
     * finds the log above wal_max_pages first runs a TRUNCATE checkpoint
     * itself, so the log never grows without limit. In-memory and read-only
     * stores have no thread. (URL option checkpoint=background.) */
    VIGIL_STORE_CHECKPOINT_BACKGROUND = 0,
    /** No thread: SQLite checkpoints inside the commit that takes the log
     * past checkpoint_pages, so that commit waits for it. (URL option
     * checkpoint=inline.) */
    VIGIL_STORE_CHECKPOINT_INLINE = 1
} vigil_store_checkpoint;

/**
 * Options of vigil_store_open(). Zero fields mean the defaults. The fields
 * after no_create_dirs exist from version 2 on; a program that sets version
 * 1 passes the smaller struct and gets their defaults.
 * @since 0.1.0
 */
typedef struct vigil_store_options {
    unsigned int version;                 /**< VIGIL_STORE_OPTIONS_VERSION */
    vigil_logger logger;                  /**< where the store logs ("store" component) */
    const vigil_store_registry *registry; /**< NULL: the built-in types only */
    int read_only;                        /**< non-zero: open read-only (as ?mode=ro) */
    vigil_store_sync synchronous;         /**< default VIGIL_STORE_SYNC_NORMAL */
    int64_t busy_timeout_ms;              /**< wait this long for a lock held elsewhere; 0: 5000 */
    uint64_t max_size_bytes; /**< cap on the database size (VIGIL_EFULL past it); 0: none */
    size_t series_cache_max; /**< series ids cached in memory; 0: 1,000,000 */
    int no_create_dirs;      /**< non-zero: do not create missing parent directories */
    /* version 2 */
    vigil_store_checkpoint checkpoint; /**< default VIGIL_STORE_CHECKPOINT_BACKGROUND */
    /** background: a checkpoint starts once this many pages were committed
     * to the log since the last one; inline: SQLite's wal_autocheckpoint.
     * 0: 4,096 (16 MiB of 4 KiB pages) */
    size_t checkpoint_pages;
    /** background: a checkpoint also runs this often while the log holds
     * pages not yet copied back; 0: 1,000 ms */
    int64_t checkpoint_interval_ms;
    /** background: the hard bound on the log; a write that finds more pages
     * in it first runs a blocking TRUNCATE checkpoint. At least
     * checkpoint_pages. 0: 65,536 (256 MiB of 4 KiB pages) */
    size_t wal_max_pages;
} vigil_store_options;

#define VIGIL_STORE_OPTIONS_VERSION 2
#define VIGIL_STORE_OPTIONS_INIT                                                                   \
    {                                                                                              \
        VIGIL_STORE_OPTIONS_VERSION, VIGIL_LOGGER_INIT, NULL, 0, VIGIL_STORE_SYNC_NORMAL, 0, 0, 0, \
            0, VIGIL_STORE_CHECKPOINT_BACKGROUND, 0, 0, 0                                          \
    }

/**
 * Fills @p opts with the defaults of @p version (VIGIL_STORE_OPTIONS_VERSION).
 * @return VIGIL_OK, VIGIL_EINVAL for NULL, or VIGIL_EVERSION for a version 0
 *         or newer than this library's (1..VIGIL_STORE_OPTIONS_VERSION is
 *         accepted; an older version fills only the fields it has).
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_store_options_init(vigil_store_options *opts, unsigned int version);

/* ---- registry ------------------------------------------------------------ */

/**
 * Creates an empty registry of store types (the built-in "sqlite" is not in
 * it: vigil_store_open() always knows it). Register types with
 * vigil_store_register() (<vigil/sys/store.h>).
 * @param out receives the registry, the caller's; free with vigil_store_registry_free().
 * @return VIGIL_OK, VIGIL_EINVAL (NULL @p out) or VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_store_registry_new(vigil_store_registry **out);

/**
 * Frees a registry and runs the payload_free of every type registered on it.
 * No store opened through it may still be open. NULL is a no-op.
 * @since 0.1.0
 */
VIGIL_EXTERN(void) vigil_store_registry_free(vigil_store_registry *registry);

/* ---- open / close -------------------------------------------------------- */

/**
 * Opens the store named by @p url (see the top of this header). The SQLite
 * backend creates the file (and missing parent directories) unless read-only,
 * creates or migrates the schema forward, and refuses a database written by a
 * newer version without touching it.
 * @param out receives the store, the caller's; close with vigil_store_close().
 * @param opts NULL for defaults.
 * @return VIGIL_OK; VIGIL_EINVAL (NULL argument, malformed URL or query
 *         option, bad options); VIGIL_ERANGE (busy_timeout_ms above INT32_MAX);
 *         VIGIL_ELIMIT (URL too long); VIGIL_EUNSUPPORTED (unknown
 *         scheme; the message names it and the known ones); VIGIL_ENOTFOUND
 *         (read-only or mode=rw and the file does not exist); VIGIL_EIO
 *         (cannot open or create the file or its directory); VIGIL_ECORRUPT
 *         (not a database, or a damaged one); VIGIL_EVERSION (schema newer
 *         than this library); VIGIL_EREADONLY (read-only and the schema needs
 *         creating or migrating); VIGIL_EBUSY (locked past the busy timeout);
 *         VIGIL_EFULL; VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_store_open(vigil_store **out, const char *url, const vigil_store_options *opts);

/**
 * Closes a store and frees it, after joining its checkpoint thread (which
 * may be finishing a checkpoint). NULL is a no-op. @since 0.1.0
 */
VIGIL_EXTERN(void) vigil_store_close(vigil_store *store);

/**
 * The scheme of the store's backend ("sqlite"), borrowed from the store.
 * @since 0.1.0
 */
VIGIL_EXTERN(const char *) vigil_store_scheme(const vigil_store *store);

/* ---- samples ------------------------------------------------------------- */

/**
 * What vigil_store_write() did. An output struct: the caller sets @c version
 * (or uses VIGIL_STORE_WRITE_RESULT_INIT); an unknown one is VIGIL_EVERSION.
 * @since 0.1.0 (@c version since 0.2.0)
 */
typedef struct vigil_store_write_result {
    unsigned int version; /**< set by the caller: VIGIL_STORE_WRITE_RESULT_VERSION */
    size_t written;       /**< samples written (inserted or replaced) */
    int duplicate;        /**< non-zero: the batch id was seen before; nothing written */
    size_t new_series;    /**< series created by this batch */
} vigil_store_write_result;

/** @since 0.2.0 */
#define VIGIL_STORE_WRITE_RESULT_VERSION 1
/** All zero but the version. @since 0.2.0 */
#define VIGIL_STORE_WRITE_RESULT_INIT             \
    {                                             \
        VIGIL_STORE_WRITE_RESULT_VERSION, 0, 0, 0 \
    }

/**
 * Writes every metric of @p batch in one transaction: all or nothing. A
 * sample whose (series, ts) exists replaces it (last write wins). A metric
 * with @c error set is stored with a NULL value and its error text. When the
 * batch has an id (vigil_batch_id()), the pair (agent, batch id) is recorded
 * in the same transaction; a pair seen before writes nothing and sets
 * result->duplicate (the ingest answer's "duplicate": true).
 * @param result may be NULL; else its @c version is set (the rest is
 *        overwritten, zero on failure).
 * @return VIGIL_OK; VIGIL_EINVAL (NULL store or batch); VIGIL_EVERSION
 *         (unknown result version; nothing written); VIGIL_EREADONLY;
 *         VIGIL_EFULL (nothing of the batch is stored); VIGIL_EBUSY (locked
 *         past the busy timeout; nothing stored); VIGIL_ECORRUPT; VIGIL_EIO;
 *         VIGIL_ENOMEM. After any failure the store stays usable.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_store_write(vigil_store *store, const vigil_batch *batch, vigil_store_write_result *result);

/** @name Limits of vigil_store_write_group() @since 0.1.0 */
/**@{*/
#define VIGIL_STORE_PARTS_MAX (1 << 20) /**< parts in one group */
/**@}*/

/**
 * One ingest batch inside a merged batch, for vigil_store_write_group(): the
 * next @c count metrics of the merged batch, and the batch id that makes
 * the batch idempotent. Strings are borrowed for the call.
 * @since 0.1.0
 */
typedef struct vigil_store_batch_part {
    const char *agent;    /**< agent of the batch id, at most VIGIL_AGENT_ID_MAX bytes; NULL: "" */
    const char *batch_id; /**< at most VIGIL_BATCH_ID_MAX bytes; NULL: no id, always written */
    size_t count;         /**< metrics of this part (may be 0) */
} vigil_store_batch_part;

/**
 * Writes many batches in one transaction, all or nothing: what a group
 * commit needs. @p merged holds the metrics of every part, part after part
 * in the order of @p parts (its own agent and id are ignored). For each part
 * in order: when it has a batch id, the pair (agent, batch id) is recorded,
 * and a pair recorded before (by an earlier write or an earlier part of the
 * same group) makes the part a duplicate whose metrics are not written;
 * otherwise its metrics are written as vigil_store_write() writes them.
 * @param results NULL, or an array of @p nparts that receives what was done
 *        for each part; the caller sets every element's @c version (the
 *        rest is overwritten, zero on failure).
 * @return VIGIL_OK; VIGIL_EINVAL (NULL store or batch, NULL parts with
 *         @p nparts > 0, counts that do not add up to the batch's count, an
 *         empty batch id); VIGIL_EVERSION (an element of @p results with an
 *         unknown version; nothing written); VIGIL_ELIMIT (more than VIGIL_STORE_PARTS_MAX
 *         parts, an agent or id too long); VIGIL_EENCODING (agent or id not
 *         UTF-8); VIGIL_EUNSUPPORTED (the backend has no write_group);
 *         otherwise the codes of vigil_store_write(), with nothing of any
 *         part stored.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_store_write_group(vigil_store *store, const vigil_batch *merged,
                        const vigil_store_batch_part *parts, size_t nparts,
                        vigil_store_write_result *results);

/** How a matcher compares a tag value (or the metric name). @since 0.1.0 */
typedef enum vigil_store_match_op {
    /** the tag is present and equal to the value */
    VIGIL_STORE_MATCH_EQ = 0,
    /** the tag is absent or different from the value */
    VIGIL_STORE_MATCH_NE = 1,
    /** the tag is present and matches the glob: '*' any run of characters, '?' one
     * character, [abc] / [a-z] / [^a-z] a class; case-sensitive, no escapes
     * (use [*] for a literal '*'). "*" matches any value of a present tag. */
    VIGIL_STORE_MATCH_GLOB = 2,
    /** the tag is absent or does not match the glob */
    VIGIL_STORE_MATCH_NOT_GLOB = 3
} vigil_store_match_op;

/** One tag matcher. All matchers of a query must hold. @since 0.1.0 */
typedef struct vigil_store_matcher {
    const char *key; /**< a tag key */
    vigil_store_match_op op;
    const char *value;
} vigil_store_matcher;

/** Aggregate of a downsampled query; each is computed in the store. @since 0.1.0 */
typedef enum vigil_store_agg {
    VIGIL_STORE_AGG_MEAN = 0,
    VIGIL_STORE_AGG_MIN = 1,
    VIGIL_STORE_AGG_MAX = 2,
    VIGIL_STORE_AGG_SUM = 3,
    VIGIL_STORE_AGG_COUNT = 4, /**< number of samples with a value */
    VIGIL_STORE_AGG_LAST = 5   /**< value of the newest sample with a value */
} vigil_store_agg;

/**
 * Parses an aggregate name ("mean", "min", "max", "sum", "count", "last").
 * @return VIGIL_OK, VIGIL_EINVAL (NULL) or VIGIL_EVALUE (unknown name).
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_store_agg_parse(vigil_store_agg *out, const char *name);

/** The name of an aggregate, or "unknown". Never NULL. @since 0.1.0 */
VIGIL_EXTERN(const char *) vigil_store_agg_name(vigil_store_agg agg);

/**
 * A query: which series (name and tag matchers) and, for samples, which time
 * range and resolution.
 * @since 0.1.0
 */
typedef struct vigil_store_query {
    unsigned int version;                /**< VIGIL_STORE_QUERY_VERSION */
    const char *name;                    /**< metric name; NULL: every name */
    vigil_store_match_op name_op;        /**< how @c name matches (EQ default; GLOB allowed) */
    const vigil_store_matcher *matchers; /**< tag matchers, all must hold */
    size_t nmatchers;                    /**< at most VIGIL_STORE_MATCHERS_MAX */
    int64_t from_ms;                     /**< first ts included (ms); 0 with to_ms 0: everything */
    int64_t to_ms;                       /**< first ts excluded; 0: no upper bound */
    int64_t step_ms;                     /**< 0: raw samples; > 0: one point per step */
    vigil_store_agg aggregate;           /**< used when step_ms > 0 */
    size_t limit; /**< at most this many points per series, oldest first; 0: all */
} vigil_store_query;

#define VIGIL_STORE_QUERY_VERSION 1
#define VIGIL_STORE_QUERY_INIT                                                   \
    {                                                                            \
        VIGIL_STORE_QUERY_VERSION, NULL, VIGIL_STORE_MATCH_EQ, NULL, 0, 0, 0, 0, \
            VIGIL_STORE_AGG_MEAN, 0                                              \
    }

/** A stored series, borrowed during a callback. @since 0.1.0 */
typedef struct vigil_store_series {
    int64_t id;            /**< the backend's id of the series */
    const char *key;       /**< canonical series key (vigil_metric_series_key()) */
    const char *name;      /**< metric name */
    const vigil_tag *tags; /**< sorted by key */
    size_t ntags;
} vigil_store_series;

/**
 * One point of a query result. Raw: a sample, whose @c error is non-NULL (and
 * value NaN) for a failed collection. Downsampled: @c ts_ms is the start of
 * the step (ts - ts mod step, aligned to the epoch), @c value the aggregate
 * (a count for COUNT), @c error NULL; steps without a value yield no point.
 * @since 0.1.0
 */
typedef struct vigil_store_point {
    int64_t ts_ms;
    double value;
    const char *error;
} vigil_store_point;

/** Receives the series of vigil_store_series_list(). @since 0.1.0 */
typedef int (*vigil_store_series_cb)(const vigil_store_series *series, void *payload);

/** Receives the points of a query, series by series, oldest first. @since 0.1.0 */
typedef int (*vigil_store_point_cb)(const vigil_store_series *series,
                                    const vigil_store_point *point, void *payload);

/**
 * Runs @p query: for each matching series (ordered by name, then tags), its points
 * in [from_ms, to_ms), raw or one per step aggregated by the store.
 * Results stream through @p cb; nothing is collected in memory.
 * @return VIGIL_OK (also when nothing matches); a non-zero value returned by
 *         @p cb; VIGIL_EINVAL (NULL argument, to_ms <= from_ms when set,
 *         step_ms < 0, unknown op or aggregate, empty matcher key);
 *         VIGIL_EVERSION (unknown query version); VIGIL_ELIMIT (too many matchers, name or value
 * too long); VIGIL_EBUSY; VIGIL_ECORRUPT; VIGIL_EIO; VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_store_query_run(vigil_store *store, const vigil_store_query *query, vigil_store_point_cb cb,
                      void *payload);

/**
 * Lists the series matching the name and matchers of @p query (its time
 * fields are ignored), ordered by name, then tags. NULL @p query lists every series.
 * @return as vigil_store_query_run().
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_store_series_list(vigil_store *store, const vigil_store_query *query,
                        vigil_store_series_cb cb, void *payload);

/**
 * Calls @p cb once per matching series with its newest sample whose ts is
 * before query->to_ms (when set) and at or after query->from_ms (when set);
 * series without such a sample are skipped. NULL @p query: every series.
 * @return as vigil_store_query_run().
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_store_latest(vigil_store *store, const vigil_store_query *query, vigil_store_point_cb cb,
                   void *payload);

/* ---- actions: the exactly-once ledger ----------------------------------- */

/**
 * An action request and, once known, its result (docs/http-api.md,
 * "POST /v1/execute" and "GET /v1/actions"). Request fields are set by vigil_store_action_put();
 * result fields by vigil_store_action_update().
 * @c status is free text so later statuses need no ABI change; the values in
 * use are "pending", "pending_approval", "approved", "denied", "running",
 * "succeeded", "failed", "timeout", "refused", "dry_run", "expired".
 * @since 0.1.0
 */
typedef struct vigil_store_action {
    const char *id;          /**< unique; at most VIGIL_STORE_ID_MAX bytes; required */
    int64_t requested_ms;    /**< when it was requested */
    const char *action;      /**< action name; required */
    const char *target;      /**< required */
    const char *params_json; /**< JSON object text; NULL stored as "{}" */
    const char *reason;      /**< why it was requested; NULL: "" */
    const char *policy;      /**< policy that fired; NULL: none (manual) */
    const char *series;      /**< series key that triggered it; NULL: none */
    int dry_run;
    /* result */
    const char *status;        /**< NULL on put: "pending" */
    const char *result_reason; /**< guard or allowlist that refused, error text; NULL: none */
    const char *output;        /**< captured output; NULL: none */
    int64_t duration_ms;       /**< -1 unknown */
    int64_t updated_ms;        /**< when status last changed */
    int64_t audit_seq;         /**< audit checkpoint returned with the result; 0: none */
    const char *audit_hash;    /**< its hash (hex); NULL: none */
} vigil_store_action;

/**
 * Records an action request unless its id is already recorded (the
 * remediator's exactly-once gate: execute only when @p created is 1).
 * @param created receives 1 when recorded now, 0 when the id existed (the
 *        existing record is left unchanged); may be NULL.
 * @return VIGIL_OK; VIGIL_EINVAL (NULL, missing id/action/target);
 *         VIGIL_ELIMIT (a field too long); VIGIL_EENCODING (invalid UTF-8);
 *         VIGIL_EREADONLY, VIGIL_EFULL, VIGIL_EBUSY, VIGIL_EIO, VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_store_action_put(vigil_store *store, const vigil_store_action *action, int *created);

/**
 * Sets the result fields of action @c update->id: status (required),
 * result_reason, output, duration_ms, updated_ms, audit_seq, audit_hash. The
 * request fields of @p update are ignored.
 * @return VIGIL_OK; VIGIL_ENOTFOUND (no such id); codes as vigil_store_action_put().
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_store_action_update(vigil_store *store, const vigil_store_action *update);

/**
 * Reads one action. @param out receives a copy, the caller's; free it with
 * vigil_store_action_free().
 * @return VIGIL_OK, VIGIL_EINVAL, VIGIL_ENOTFOUND, VIGIL_EBUSY, VIGIL_EIO, VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_store_action_get(vigil_store *store, const char *id, vigil_store_action **out);

/** Frees an action returned by vigil_store_action_get(). NULL is a no-op. @since 0.1.0 */
VIGIL_EXTERN(void) vigil_store_action_free(vigil_store_action *action);

/** A filter for listing time-ordered records. Zero fields filter nothing. @since 0.1.0 */
typedef struct vigil_store_filter {
    unsigned int version; /**< VIGIL_STORE_FILTER_VERSION */
    int64_t since_ms;     /**< only records at or after this time */
    int64_t after_id;     /**< only records with a larger id / seq (paging) */
    size_t limit;         /**< at most this many records; 0: no limit */
    const char *status;   /**< actions only: only this status */
    const char *target;   /**< actions and decisions: only this target */
    const char *policy;   /**< actions and decisions: only this policy */
} vigil_store_filter;

#define VIGIL_STORE_FILTER_VERSION 1
#define VIGIL_STORE_FILTER_INIT                               \
    {                                                         \
        VIGIL_STORE_FILTER_VERSION, 0, 0, 0, NULL, NULL, NULL \
    }

/** Receives actions. @since 0.1.0 */
typedef int (*vigil_store_action_cb)(const vigil_store_action *action, void *payload);

/**
 * Lists actions ordered by (requested_ms, id). @p filter NULL: all;
 * filter->after_id is ignored.
 * @return VIGIL_OK, a non-zero value from @p cb, VIGIL_EINVAL, VIGIL_EBUSY,
 *         VIGIL_EIO, VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_store_action_list(vigil_store *store, const vigil_store_filter *filter,
                        vigil_store_action_cb cb, void *payload);

/* ---- decisions (append-only) --------------------------------------------- */

/**
 * A policy decision (docs/http-api.md, "GET /v1/decisions"). @c decision is one of
 * "fired", "resolved", "suppressed", "deferred", "silenced", "exhausted",
 * "flapping", "action_failed", "quarantined", "remediated", "ineffective",
 * "escalated", "redelivered" (vigil/hub.h says what each means; not
 * checked, so later kinds need no change).
 * @since 0.1.0
 */
typedef struct vigil_store_decision {
    int64_t id; /**< assigned by the store on append, increasing */
    int64_t ts_ms;
    const char *policy;    /**< required */
    const char *series;    /**< NULL: none */
    const char *target;    /**< NULL: none */
    const char *action;    /**< NULL: none */
    const char *action_id; /**< NULL: none */
    const char *decision;  /**< required */
    const char *reason;    /**< NULL: "" */
} vigil_store_decision;

/**
 * Appends a decision (decision->id is ignored).
 * @param id_out receives the id assigned; may be NULL.
 * @return VIGIL_OK, VIGIL_EINVAL, VIGIL_ELIMIT, VIGIL_EENCODING,
 *         VIGIL_EREADONLY, VIGIL_EFULL, VIGIL_EBUSY, VIGIL_EIO, VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_store_decision_append(vigil_store *store, const vigil_store_decision *decision,
                            int64_t *id_out);

/** Receives decisions. @since 0.1.0 */
typedef int (*vigil_store_decision_cb)(const vigil_store_decision *decision, void *payload);

/**
 * Lists decisions in id order, filtered by since_ms, after_id, limit, target
 * and policy. @p filter NULL: all.
 * @return as vigil_store_action_list().
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_store_decision_list(vigil_store *store, const vigil_store_filter *filter,
                          vigil_store_decision_cb cb, void *payload);

/* ---- audit rows (append-only, never removed by retention) ----------------- */

/**
 * One row of the hash-chained audit log. The store only keeps rows; the audit
 * module computes the chain (mac = HMAC(key, prev_mac || row)).
 * @since 0.1.0
 */
typedef struct vigil_store_audit {
    int64_t seq; /**< >= 1, chosen by the caller: the previous seq + 1 */
    int64_t ts_ms;
    const char *kind;      /**< "request", "guard", "execute", "result", ...; required */
    const char *action_id; /**< NULL: none */
    const char *data_json; /**< the row's content as JSON text; NULL: "{}" */
    const char *prev_mac;  /**< hex mac of row seq-1 ("" for the first); NULL: "" */
    const char *mac;       /**< hex mac of this row; required */
} vigil_store_audit;

/**
 * Appends an audit row.
 * @return VIGIL_OK; VIGIL_EEXISTS (a row with this seq exists; nothing
 *         changed); VIGIL_EINVAL (seq < 1, missing kind or mac); VIGIL_ELIMIT;
 *         VIGIL_EENCODING; VIGIL_EREADONLY, VIGIL_EFULL, VIGIL_EBUSY,
 *         VIGIL_EIO, VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_store_audit_append(vigil_store *store, const vigil_store_audit *row);

/** Receives audit rows. @since 0.1.0 */
typedef int (*vigil_store_audit_cb)(const vigil_store_audit *row, void *payload);

/**
 * Iterates audit rows in seq order, from the first with seq > filter->after_id
 * (and ts >= since_ms, up to limit). @p filter NULL: all rows.
 * @return as vigil_store_action_list().
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_store_audit_list(vigil_store *store, const vigil_store_filter *filter,
                       vigil_store_audit_cb cb, void *payload);

/**
 * Calls @p cb once with the row of the highest seq.
 * @return VIGIL_OK; VIGIL_ENOTFOUND (no rows); a non-zero value from @p cb;
 *         VIGIL_EINVAL, VIGIL_EBUSY, VIGIL_EIO, VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_store_audit_last(vigil_store *store, vigil_store_audit_cb cb, void *payload);

/* ---- silences ------------------------------------------------------------- */

/** A maintenance silence. @since 0.1.0 */
typedef struct vigil_store_silence {
    const char *id;            /**< unique; at most VIGIL_STORE_ID_MAX bytes; required */
    const char *matchers_json; /**< what it silences, JSON text (e.g. {"host":"h1"}); required */
    int64_t starts_ms;
    int64_t ends_ms;        /**< > starts_ms */
    const char *created_by; /**< NULL: "" */
    const char *comment;    /**< NULL: "" */
    int64_t created_ms;
} vigil_store_silence;

/**
 * Inserts a silence, or replaces the one with the same id.
 * @return VIGIL_OK; VIGIL_EINVAL (NULL, missing id or matchers, ends_ms <=
 *         starts_ms); VIGIL_ELIMIT; VIGIL_EENCODING; VIGIL_EREADONLY,
 *         VIGIL_EFULL, VIGIL_EBUSY, VIGIL_EIO, VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_store_silence_put(vigil_store *store, const vigil_store_silence *silence);

/**
 * Deletes a silence. @return VIGIL_OK, VIGIL_ENOTFOUND, VIGIL_EINVAL,
 * VIGIL_EREADONLY, VIGIL_EBUSY, VIGIL_EIO. @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_store_silence_delete(vigil_store *store, const char *id);

/** Receives silences. @since 0.1.0 */
typedef int (*vigil_store_silence_cb)(const vigil_store_silence *silence, void *payload);

/**
 * Lists silences ordered by (starts_ms, id): with @p active_at_ms > 0 only
 * those with starts_ms <= active_at_ms < ends_ms, otherwise all.
 * @return VIGIL_OK, a non-zero value from @p cb, VIGIL_EINVAL, VIGIL_EBUSY,
 *         VIGIL_EIO, VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_store_silence_list(vigil_store *store, int64_t active_at_ms, vigil_store_silence_cb cb,
                         void *payload);

/* ---- policy state (key -> blob) ------------------------------------------ */

/**
 * Stores @p len bytes under @p key (replacing any previous value), for the
 * policy engine's timers, budgets and cooldowns. Keys are at most
 * VIGIL_STORE_KEY_MAX bytes of UTF-8; values at most VIGIL_STORE_BLOB_MAX.
 * @return VIGIL_OK, VIGIL_EINVAL, VIGIL_ELIMIT, VIGIL_EENCODING,
 *         VIGIL_EREADONLY, VIGIL_EFULL, VIGIL_EBUSY, VIGIL_EIO, VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_store_state_put(vigil_store *store, const char *key, const void *value, size_t len);

/**
 * Reads the value under @p key. @param out receives a copy (NUL-terminated
 * beyond @p len for convenience), the caller's; free it with vigil_free().
 * @param len receives its length.
 * @return VIGIL_OK, VIGIL_ENOTFOUND, VIGIL_EINVAL, VIGIL_EBUSY, VIGIL_EIO, VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_store_state_get(vigil_store *store, const char *key, void **out, size_t *len);

/**
 * Deletes the value under @p key. @return VIGIL_OK, VIGIL_ENOTFOUND,
 * VIGIL_EINVAL, VIGIL_EREADONLY, VIGIL_EBUSY, VIGIL_EIO. @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_store_state_delete(vigil_store *store, const char *key);

/** Receives policy-state entries; @p value is borrowed. @since 0.1.0 */
typedef int (*vigil_store_state_cb)(const char *key, const void *value, size_t len, void *payload);

/**
 * Lists entries whose key starts with @p prefix (NULL or "": all), in key order.
 * @return VIGIL_OK, a non-zero value from @p cb, VIGIL_EINVAL, VIGIL_EBUSY,
 *         VIGIL_EIO, VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_store_state_list(vigil_store *store, const char *prefix, vigil_store_state_cb cb,
                       void *payload);

/* ---- desired state and drift (from gitopsd) ------------------------------ */

/**
 * A resource record: an entry of the desired state, or a drift report about
 * one resource.
 * @since 0.1.0
 */
typedef struct vigil_store_resource {
    const char *key;       /**< unique per set, e.g. "Service/api" or "h1/Service/api"; required */
    const char *kind;      /**< "Service", "File", "Sysctl", ...; required */
    const char *name;      /**< metadata.name; required */
    const char *source;    /**< where it came from (repository, manifest path); NULL: "" */
    const char *revision;  /**< git commit or other version; NULL: "" */
    const char *status;    /**< drift: "in_sync", "drifted", "missing", "error"; desired: NULL */
    const char *body_json; /**< desired: the spec; drift: the diff; JSON text; NULL: "{}" */
    int64_t updated_ms;
} vigil_store_resource;

/** Which set of resource records. @since 0.1.0 */
typedef enum vigil_store_resource_set {
    VIGIL_STORE_DESIRED = 0, /**< desired state from manifests */
    VIGIL_STORE_DRIFT = 1    /**< drift reports */
} vigil_store_resource_set;

/**
 * Replaces, in one transaction, every record of @p set whose source equals
 * @p source (NULL: every record of the set) with @p records (all of which
 * must carry that source when @p source is not NULL). A gitopsd sync thus
 * swaps its whole view atomically. @p n may be 0 (clears).
 * @return VIGIL_OK; VIGIL_EINVAL (NULL, missing field, duplicate key, a
 *         record of another source); VIGIL_ELIMIT; VIGIL_EENCODING;
 *         VIGIL_EREADONLY, VIGIL_EFULL (nothing changed), VIGIL_EBUSY,
 *         VIGIL_EIO, VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_store_resource_replace(vigil_store *store, vigil_store_resource_set set, const char *source,
                             const vigil_store_resource *records, size_t n);

/**
 * Inserts or replaces one record of @p set (same key).
 * @return as vigil_store_resource_replace().
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_store_resource_put(vigil_store *store, vigil_store_resource_set set,
                         const vigil_store_resource *record);

/**
 * Deletes one record of @p set. @return VIGIL_OK, VIGIL_ENOTFOUND,
 * VIGIL_EINVAL, VIGIL_EREADONLY, VIGIL_EBUSY, VIGIL_EIO. @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_store_resource_delete(vigil_store *store, vigil_store_resource_set set, const char *key);

/** Receives resource records. @since 0.1.0 */
typedef int (*vigil_store_resource_cb)(const vigil_store_resource *record, void *payload);

/**
 * Lists the records of @p set in key order; @p key not NULL: only that one
 * (VIGIL_ENOTFOUND when absent).
 * @return VIGIL_OK, VIGIL_ENOTFOUND, a non-zero value from @p cb, VIGIL_EINVAL,
 *         VIGIL_EBUSY, VIGIL_EIO, VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_store_resource_list(vigil_store *store, vigil_store_resource_set set, const char *key,
                          vigil_store_resource_cb cb, void *payload);

/* ---- retention ------------------------------------------------------------ */

/** Options of vigil_store_retain(). Zero fields mean the defaults. @since 0.1.0 */
typedef struct vigil_store_retention_options {
    unsigned int version; /**< VIGIL_STORE_RETENTION_OPTIONS_VERSION */
    size_t chunk_rows;    /**< rows deleted per transaction; 0: 10,000 */
    size_t max_chunks;    /**< stop after this many transactions; 0: until done */
} vigil_store_retention_options;

#define VIGIL_STORE_RETENTION_OPTIONS_VERSION 1
#define VIGIL_STORE_RETENTION_OPTIONS_INIT          \
    {                                               \
        VIGIL_STORE_RETENTION_OPTIONS_VERSION, 0, 0 \
    }

/**
 * What vigil_store_retain() did. An output struct: the caller sets @c version
 * (or uses VIGIL_STORE_RETENTION_RESULT_INIT); an unknown one is
 * VIGIL_EVERSION.
 * @since 0.1.0 (@c version since 0.2.0)
 */
typedef struct vigil_store_retention_result {
    unsigned int version; /**< set by the caller: VIGIL_STORE_RETENTION_RESULT_VERSION */
    uint64_t samples_deleted;
    uint64_t batch_ids_deleted; /**< ingest batch ids older than the cutoff */
    size_t chunks;              /**< transactions committed */
    int done;                   /**< non-zero: nothing older than the cutoff remains */
} vigil_store_retention_result;

/** @since 0.2.0 */
#define VIGIL_STORE_RETENTION_RESULT_VERSION 1
/** All zero but the version. @since 0.2.0 */
#define VIGIL_STORE_RETENTION_RESULT_INIT                \
    {                                                    \
        VIGIL_STORE_RETENTION_RESULT_VERSION, 0, 0, 0, 0 \
    }

/**
 * Deletes samples (and recorded ingest batch ids) with a timestamp before
 * @p cutoff_ms, in transactions of at most chunk_rows rows each so writers
 * wait at most one chunk. Audit rows, actions, decisions, silences, state and
 * resources are never deleted. Call it again while result->done is 0 to
 * continue after max_chunks.
 * @param opts NULL for defaults. @param result may be NULL; else its
 *        @c version is set (the rest is overwritten).
 * @return VIGIL_OK; VIGIL_EINVAL; VIGIL_EVERSION (unknown result version;
 *         nothing deleted); VIGIL_EREADONLY; VIGIL_EBUSY (chunks
 *         committed so far stay deleted); VIGIL_EIO; VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_store_retain(vigil_store *store, int64_t cutoff_ms, const vigil_store_retention_options *opts,
                   vigil_store_retention_result *result);

/* ---- leases: one leader among several hubs -------------------------------- */

/** @name Limits of leases and the tail @since 0.4.0 */
/**@{*/
#define VIGIL_STORE_LEASE_NAME_MAX   128      /**< bytes in a lease name */
#define VIGIL_STORE_LEASE_HOLDER_MAX 128      /**< bytes in a lease holder */
#define VIGIL_STORE_LEASE_TTL_MAX    86400000 /**< longest lease, in ms (a day) */
#define VIGIL_STORE_TAIL_CURSOR_MAX  64       /**< bytes in a tail cursor */
#define VIGIL_STORE_TAIL_MAX         65536    /**< samples of one vigil_store_tail() call */
/**@}*/

/**
 * A lease as the store holds it: who, until when, under which fencing epoch.
 * An output struct: the caller sets @c version (or uses
 * VIGIL_STORE_LEASE_INIT); an unknown one is VIGIL_EVERSION.
 * @since 0.4.0
 */
typedef struct vigil_store_lease {
    unsigned int version; /**< set by the caller: VIGIL_STORE_LEASE_VERSION */
    /** The holder (the last one when it has expired), NUL-terminated. */
    char holder[VIGIL_STORE_LEASE_HOLDER_MAX + 1];
    /** Fencing epoch: 1 for the first holder, one more at each change of
     * holder, never smaller; a renewal keeps it. */
    uint64_t epoch;
    /** When it expires (or expired), ms since the Unix epoch, on the
     * backend's clock (the database server's for a server backend). */
    int64_t expires_ms;
    /** The backend's clock when it answered, ms since the Unix epoch:
     * expires_ms - now_ms is how long the lease still runs, free of any
     * skew between this host's clock and the backend's. */
    int64_t now_ms;
    /** vigil_store_lease_acquire(): non-zero when the caller holds it now.
     * vigil_store_lease_get(): non-zero when someone holds it (not expired). */
    int held;
} vigil_store_lease;

/** @since 0.4.0 */
#define VIGIL_STORE_LEASE_VERSION 1
/** All zero but the version. @since 0.4.0 */
#define VIGIL_STORE_LEASE_INIT                     \
    {                                              \
        VIGIL_STORE_LEASE_VERSION, {0}, 0, 0, 0, 0 \
    }

/**
 * Takes or renews the lease @p name for @p holder, atomically: when the lease
 * is absent, expired, or held by @p holder, @p holder holds it until the
 * backend's now + @p ttl_ms; the epoch grows by exactly one whenever the
 * holder changes (the first holder gets epoch 1) or takes it again after
 * vigil_store_lease_release(), and stays when the same holder renews (also a
 * renewal after its own expiry, when nobody took it in between). Otherwise nothing changes and @p
 * out describes the current holder with held = 0. Several hubs (processes, hosts) sharing one store
 * thus agree on one leader; the epoch fences out an old leader that has not
 * noticed it lost the lease (docs/architecture.md, "Clustering").
 * @param name lease name, 1..VIGIL_STORE_LEASE_NAME_MAX bytes of UTF-8.
 * @param holder who takes it, 1..VIGIL_STORE_LEASE_HOLDER_MAX bytes of UTF-8.
 * @param ttl_ms 1..VIGIL_STORE_LEASE_TTL_MAX.
 * @param out filled (its @c version kept) on VIGIL_OK; zero but the version
 *        on failure.
 * @return VIGIL_OK (held or not: see out->held); VIGIL_EINVAL (NULL
 *         argument, empty name or holder, ttl_ms out of range);
 *         VIGIL_EVERSION (unknown @p out version); VIGIL_ELIMIT (name or
 *         holder too long); VIGIL_EENCODING (not UTF-8); VIGIL_EUNSUPPORTED
 *         (a backend without leases); VIGIL_EREADONLY; VIGIL_EBUSY;
 *         VIGIL_EIO (then the caller must assume it does not hold the lease).
 * Threads: as every store call.
 * @since 0.4.0
 */
VIGIL_EXTERN(int)
vigil_store_lease_acquire(vigil_store *store, const char *name, const char *holder, int64_t ttl_ms,
                          vigil_store_lease *out);

/**
 * Gives the lease @p name up when @p holder holds it: it expires now, its
 * epoch is kept (the next holder gets epoch + 1, @p holder too when it takes
 * it again). Does nothing when another holder has it, or nobody.
 * @return VIGIL_OK (also when not held by @p holder or never taken);
 *         VIGIL_EINVAL, VIGIL_ELIMIT, VIGIL_EENCODING (as
 *         vigil_store_lease_acquire()); VIGIL_EUNSUPPORTED; VIGIL_EREADONLY;
 *         VIGIL_EBUSY; VIGIL_EIO.
 * @since 0.4.0
 */
VIGIL_EXTERN(int)
vigil_store_lease_release(vigil_store *store, const char *name, const char *holder);

/**
 * Reads the lease @p name without changing it (out->held: non-zero when it
 * has not expired).
 * @param out filled (its @c version kept) on VIGIL_OK; zero but the version
 *        otherwise.
 * @return VIGIL_OK; VIGIL_ENOTFOUND (never taken); VIGIL_EINVAL;
 *         VIGIL_EVERSION; VIGIL_ELIMIT; VIGIL_EENCODING; VIGIL_EUNSUPPORTED;
 *         VIGIL_EBUSY; VIGIL_EIO.
 * @since 0.4.0
 */
VIGIL_EXTERN(int)
vigil_store_lease_get(vigil_store *store, const char *name, vigil_store_lease *out);

/* ---- tail: samples as they are committed -------------------------------- */

/**
 * Reads the samples committed after @p cursor, whichever process or host
 * wrote them: how the leader among several hubs sees what the others
 * ingested. Each sample reaches @p cb once (series then point: its ts_ms,
 * value, and error for a failed collection) in an order where, across
 * successive calls each continuing from the previous call's @p next_cursor,
 * every committed sample is returned exactly once and none is skipped, even
 * when writers on several hosts commit out of order. Samples a write
 * replaced (same series and ts) are returned as each write committed them.
 * @param cursor opaque text a previous call put in @p next_cursor (at most
 *        VIGIL_STORE_TAIL_CURSOR_MAX bytes of printable ASCII); NULL or ""
 *        means "from now on": no samples, @p next_cursor receives the current
 *        end. A cursor is only meaningful to the store (and its backend) that
 *        made it.
 * @param max_samples at most this many samples per call, 1..VIGIL_STORE_TAIL_MAX
 *        (more may be committed: call again from @p next_cursor; fewer than
 *        max_samples means nothing more was readable yet).
 * @param cb called once per sample; the series and point are borrowed for
 *        the call. A non-zero return stops the call, which returns it.
 * @param next_cursor receives the cursor to continue from, NUL-terminated;
 *        left unchanged when the call fails or @p cb stops it (continuing
 *        from @p cursor then returns those samples again).
 * @param next_cursor_len its size, at least VIGIL_STORE_TAIL_CURSOR_MAX + 1.
 * @return VIGIL_OK; a non-zero value returned by @p cb; VIGIL_EINVAL (NULL
 *         store, cb or next_cursor, max_samples out of range, a cursor this
 *         backend did not make); VIGIL_ELIMIT (cursor too long, next_cursor_len
 *         too small); VIGIL_EUNSUPPORTED (the backend has no tail: the
 *         built-in SQLite backend, one hub per file); VIGIL_EBUSY; VIGIL_EIO;
 *         VIGIL_ENOMEM.
 * @since 0.4.0
 */
VIGIL_EXTERN(int)
vigil_store_tail(vigil_store *store, const char *cursor, size_t max_samples,
                 vigil_store_point_cb cb, void *payload, char *next_cursor, size_t next_cursor_len);

/* ---- write path figures ------------------------------------------------- */

/**
 * Figures of the write path of the built-in SQLite backend: its write log
 * (each commit one appended row, folded into per-series chunks in rounds
 * between commits; docs/architecture.md). An output struct: the caller sets
 * @c version (or uses VIGIL_STORE_STATS_INIT).
 * @since 0.3.0
 */
typedef struct vigil_store_stats {
    unsigned int version;      /**< set by the caller: VIGIL_STORE_STATS_VERSION */
    uint64_t log_rows;         /**< rows of the write log not deleted yet */
    uint64_t log_bytes;        /**< their bytes */
    uint64_t unfolded_samples; /**< samples held in memory that no chunk holds yet */
    uint64_t unfolded_bytes;   /**< memory they take (what log_memory caps) */
    uint64_t folds;            /**< fold rounds finished since the store was opened */
    uint64_t folded_samples;   /**< samples folds wrote into chunks since then */
    double last_fold_seconds;  /**< the last round's transactions, added up */
} vigil_store_stats;

/** @since 0.3.0 */
#define VIGIL_STORE_STATS_VERSION 1
/** All zero but the version. @since 0.3.0 */
#define VIGIL_STORE_STATS_INIT                           \
    {                                                    \
        VIGIL_STORE_STATS_VERSION, 0, 0, 0, 0, 0, 0, 0.0 \
    }

/**
 * Reads the write path figures of a store.
 * @param store the store. @param out filled (its @c version kept).
 * @return VIGIL_OK; VIGIL_EINVAL (NULL argument); VIGIL_EVERSION (unknown
 *         @p out version); VIGIL_EUNSUPPORTED (a backend other than the
 *         built-in SQLite one: the built-in PostgreSQL backend has no write
 *         log nor folds, and its server's own statistics views say the rest).
 * Threads: any; waits for the store's call in progress, if any.
 * @since 0.3.0
 */
VIGIL_EXTERN(int) vigil_store_stats_get(vigil_store *store, vigil_store_stats *out);

#ifdef __cplusplus
}
#endif

#endif
