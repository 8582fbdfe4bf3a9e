/*
 * vigil/agent.h - the agent: runs collectors on their schedules, adds
 * host=<agent id> and the global tags to every sample, batches, ships batches
 * to a hub with vigil_client, and keeps what the hub could not take in a
 * bounded on-disk spool that it replays, oldest first, once a hub answers.
 *
 * Configuration (configs/agent.yaml documents every key):
 *
 *   agent:      {id: "", tags: {env: dev}}      id defaults to gethostname()
 *   hub:        {urls: [http://127.0.0.1:7600], token_env: VIGIL_INGEST_TOKEN,
 *                ca_file: "", cert: "", key: "", insecure: false,
 *                connect_timeout: 5s, timeout: 10s, retries: 2,
 *                backoff: 500ms, backoff_max: 30s, retry_after_max: 60s}
 *   interval:   10s                              default collector interval
 *   heartbeat:  10s                              default: the interval
 *   batch:      {max_metrics: 5000, max_delay: 1s}
 *   spool:      {path: ./var/agent-spool, max_size: 64MiB, fsync: true}
 *   log_level:  info
 *   exec_allow: []                               programs the exec collector may run
 *   shutdown_timeout: 500ms
 *   collectors: [{type: cpu}, ...]               see <vigil/collector.h>
 *
 * Unknown keys are refused with VIGIL_EUNKNOWNKEY and a located message.
 *
 * Shipping. A batch is shipped when it holds batch.max_metrics samples or its
 * oldest sample has waited batch.max_delay. While the spool holds batches, or
 * while the hub is backing off after a failure, new batches are appended to
 * the spool so that order is kept; otherwise the batch is sent with
 * hub.retries retries and spooled when that fails. After a failure the agent
 * waits hub.backoff doubling up to hub.backoff_max (with jitter between half
 * and all of it) before it tries the hub again, then replays the spool in
 * order, a few batches per step.
 *
 * What the hub answers decides what becomes of a batch (see <vigil/client.h>):
 *   - 2xx: delivered.
 *   - 400, 415, or 403 with the error code "agent_mismatch" (the batch's
 *     agent or a host tag is not one the token may speak for): the hub judged
 *     the content and refused it. The batch is dropped, never sent again,
 *     counted in `dropped` and `refused` (and the vigil_agent_dropped and
 *     vigil_agent_refused self-metrics), and logged with the hub's error code
 *     and message (escaped, clipped).
 *   - 413: the hub finds the batch too large. The agent halves it (by
 *     metrics, order kept) and sends the halves in order, halving again while
 *     the hub still answers 413, down to one metric; a single metric still
 *     too large is dropped, counted in `dropped` and `refused` and logged with
 *     its name. Each half has its own batch id derived from its parent's
 *     (the parent's id and ".0" for the first half, ".1" for the second; a
 *     parent id longer than VIGIL_BATCH_ID_MAX - 2 bytes is first replaced by
 *     32 hex digits of its SHA-256), so the same split gives the same ids.
 *     When a part fails for a transient reason, the whole batch is kept
 *     (spooled, or left at the head of the spool) and split again later: the
 *     parts the hub took already are acknowledged as duplicates. `splits`
 *     counts the halvings.
 *   - Anything else judges no batch and the batch is kept, in order, behind a
 *     backoff: network errors, timeouts, redirects, 401, any other 403, 404
 *     (a misrouting proxy), 408, 409, 429 and 5xx (the hub's Retry-After is
 *     honoured between retries of one send, capped by hub.retry_after_max),
 *     and every other 4xx.
 *
 * Events. Event-driven collectors (a watched process that exits) are polled
 * by vigil_agent_run() (or by the caller through vigil_agent_poll_fds()); their
 * samples are shipped at once, outside the batch schedule and ahead of any
 * spool backlog, with one attempt; spooled if that fails.
 *
 * Self-metrics, every heartbeat, with host=<id> and the global tags:
 * vigil_agent_heartbeat (1), vigil_agent_batches_sent, vigil_agent_ship_failures,
 * vigil_agent_spool_bytes, vigil_agent_dropped, vigil_agent_refused (totals
 * since start); and after
 * each collection vigil_agent_collect_duration_ms{collector=<name>}.
 *
 * Threads: an agent is driven by one thread (vigil_agent_step / run / flush /
 * free). vigil_agent_stop() may be called from any thread and from a signal
 * handler. vigil_agent_stats_get() may be called from any thread.
 *
 * Output structs (vigil_agent_stats) are versioned like options: the caller sets
 * @c version (the *_INIT macro does) before the call; the library refuses a
 * version 0 or newer than its own with VIGIL_EVERSION, as it does for options
 * and requests (docs/architecture.md), and otherwise fills the struct. A
 * struct the library hands to a callback has its version set by the library.
 */
#ifndef VIGIL_AGENT_H
#define VIGIL_AGENT_H

#include "vigil/batch.h"
#include "vigil/collector.h"
#include "vigil/common.h"
#include "vigil/config.h"
#include "vigil/log.h"
#include "vigil/metric.h"
#include "vigil/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @name Defaults of the agent @since 0.1.0 */
/**@{*/
#define VIGIL_AGENT_DEFAULT_HUB_URL    "http://127.0.0.1:7600"
#define VIGIL_AGENT_DEFAULT_TOKEN_ENV  "VIGIL_INGEST_TOKEN"
#define VIGIL_AGENT_DEFAULT_SPOOL_PATH "./var/agent-spool"
/**@}*/

/**
 * Options of an agent. With a configuration, each key present in the file
 * replaces the matching option; logger.min_level is replaced by log_level.
 * Strings and arrays are copied. 0 / NULL selects the default given here.
 * @since 0.1.0
 */
typedef struct vigil_agent_options {
    unsigned int version;             /**< VIGIL_AGENT_OPTIONS_VERSION */
    vigil_logger logger;              /**< the agent, its client, spool and collectors log here */
    const char *agent_id;             /**< default: gethostname() */
    const vigil_tag *tags;            /**< global tags added to every sample */
    size_t ntags;                     /**< entries of tags */
    const char *const *hub_urls;      /**< default: VIGIL_AGENT_DEFAULT_HUB_URL */
    size_t nhub_urls;                 /**< entries of hub_urls */
    const char *token_env;            /**< default VIGIL_AGENT_DEFAULT_TOKEN_ENV; "" for none */
    const char *ca_file;              /**< see vigil_client_options */
    const char *cert_file;            /**< see vigil_client_options */
    const char *key_file;             /**< see vigil_client_options */
    int tls_insecure;                 /**< non-zero: do not verify the hub's certificate */
    int64_t connect_timeout_ms;       /**< default 5000 */
    int64_t request_timeout_ms;       /**< default 10000 */
    int retries;                      /**< retries of one send before spooling; -1: none; 0: 2 */
    int64_t backoff_ms;               /**< default 500 */
    int64_t backoff_max_ms;           /**< default 30000 */
    int64_t retry_after_max_ms;       /**< default 60000 */
    int64_t interval_ms;              /**< default collector interval; default 10000 */
    int64_t heartbeat_ms;             /**< default: interval_ms */
    size_t batch_max_metrics;         /**< default 5000 */
    int64_t batch_max_delay_ms;       /**< default 1000; negative: ship at once */
    const char *spool_path;           /**< default VIGIL_AGENT_DEFAULT_SPOOL_PATH */
    uint64_t spool_max_size;          /**< bytes; default 64 MiB, at least 4 KiB */
    int spool_no_fsync;               /**< non-zero: no fsync after appends */
    int64_t shutdown_timeout_ms;      /**< budget of the final flush; default 500 */
    int64_t collector_backoff_max_ms; /**< see vigil_collector_options; default 300000 */
    const char *const *exec_allow;    /**< see vigil_collector_options (NULL-terminated) */
    const char *proc_root;            /**< see vigil_collector_options */
    const char *sys_root;             /**< see vigil_collector_options */
    const char *base_dir;             /**< relative paths resolve here; default: cwd */
    /** Collector types of the embedder (vigil_collector_register()),
     *  borrowed: it must outlive the agent, and it keeps its payloads. A
     *  `type:` resolves in the built-in types first, then here. NULL: the
     *  built-in types only. @since 0.2.0 (was `registry`) */
    const vigil_collector_registry *collector_types;
    /** Non-zero: neither hub nor spool (vigil_agent_collect_once(), config checks). */
    int offline;
} vigil_agent_options;

#define VIGIL_AGENT_OPTIONS_VERSION 1
#define VIGIL_AGENT_OPTIONS_INIT                                                                   \
    {                                                                                              \
        VIGIL_AGENT_OPTIONS_VERSION, VIGIL_LOGGER_INIT, NULL, NULL, 0, NULL, 0, NULL, NULL, NULL,  \
            NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, NULL, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL, \
            0                                                                                      \
    }

/**
 * Fills @p opts with the defaults of @p version.
 * @return VIGIL_OK, VIGIL_EINVAL (NULL) or VIGIL_EVERSION (unknown version).
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_agent_options_init(vigil_agent_options *opts, unsigned int version);

/**
 * Creates an agent from a configuration (its first document; NULL: options
 * only) and options (NULL: defaults): reads and checks every key, creates the
 * collectors, the client and opens the spool (both skipped when offline).
 * Nothing is collected or sent before the first vigil_agent_step().
 * @param out receives the agent, the caller's; free it with vigil_agent_free().
 * @return VIGIL_OK; configuration errors, located in the file:
 *         VIGIL_EUNKNOWNKEY, VIGIL_ETYPE, VIGIL_EVALUE, VIGIL_ERANGE,
 *         VIGIL_EMISSING, VIGIL_ENOTFOUND (unknown collector type), VIGIL_ENAME
 *         (bad tag key), and the codes of vigil_collector_new();
 *         VIGIL_EINVAL (bad options or hub URL), VIGIL_EENV, VIGIL_EBUSY (the
 *         spool is used by another agent), VIGIL_EIO, VIGIL_EVERSION (spool of a
 *         newer version), VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_agent_new(vigil_agent **out, const vigil_config *config, const vigil_agent_options *opts);

/**
 * Checks a configuration as vigil_agent_new() would, without opening the
 * spool or keeping anything (the collectors are created and freed).
 * @return as vigil_agent_new(). @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_agent_check_config(const vigil_config *config, const vigil_agent_options *opts);

/**
 * Frees an agent. Samples not yet shipped are appended to the spool (never
 * sent: call vigil_agent_flush() first for that). NULL is a no-op.
 * @since 0.1.0
 */
VIGIL_EXTERN(void) vigil_agent_free(vigil_agent *agent);

/**
 * Adds one collector from a configuration map (an entry shaped like those of
 * `collectors:`), created with the agent's registry and options; it is first
 * due at the next step.
 * @return VIGIL_OK or the codes of vigil_collector_new(). @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_agent_add_collector(vigil_agent *agent, const vigil_config_node *entry);

/**
 * Does the work that is due at @p now_ms: handles pending events of
 * event-driven collectors (shipping them at once), runs due collectors, adds
 * the heartbeat and self-metrics when due, ships a full or old enough batch,
 * and replays a few spooled batches when the hub may be back. Blocks only
 * while sending (bounded by the hub timeouts and retries).
 * @param now_ms wall-clock time in ms since the epoch (tests inject it); use
 *        the same clock every call.
 * @param next_deadline_ms if not NULL, receives when step wants to be called
 *        again (same clock), at the latest; it may be <= now_ms.
 * @return VIGIL_OK (shipping and spool failures are logged and counted, not
 *         returned); VIGIL_EINVAL; VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_agent_step(vigil_agent *agent, int64_t now_ms, int64_t *next_deadline_ms);

/**
 * Writes up to @p max descriptors that an external loop should poll for
 * readability (POLLIN) and then call vigil_agent_step(): the event-driven
 * collectors' descriptors and the agent's wake-up pipe (readable after
 * vigil_agent_stop()). Borrowed: never close them.
 * @return the number of descriptors the agent has (may exceed @p max).
 * @since 0.1.0
 */
VIGIL_EXTERN(size_t) vigil_agent_poll_fds(const vigil_agent *agent, int *fds, size_t max);

/**
 * Runs the agent until vigil_agent_stop(): steps on the wall clock, sleeping
 * in poll(2) on the event descriptors until the next deadline, then flushes
 * (vigil_agent_flush() with shutdown_timeout).
 * @return VIGIL_OK after a stop; VIGIL_EINVAL; VIGIL_EIO (poll or the spool
 *         failed); VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_agent_run(vigil_agent *agent);

/**
 * Asks vigil_agent_run() to return (and a send in progress to give up, its
 * batch going to the spool). Async-signal-safe: it only sets a flag and
 * writes one byte to a pipe. @since 0.1.0
 */
VIGIL_EXTERN(void) vigil_agent_stop(vigil_agent *agent);

/**
 * Ships the samples collected but not yet shipped, spending at most
 * @p timeout_ms on the hub (one attempt); what cannot be sent in time goes to
 * the spool. Does not replay the spool.
 * @return VIGIL_OK; VIGIL_EIO (spool), VIGIL_ENOMEM. @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_agent_flush(vigil_agent *agent, int64_t timeout_ms);

/**
 * Collects every collector once into @p out (cleared first; host and global
 * tags added, agent id set), without shipping. Rate-based collectors are read
 * twice, @p gap_ms apart (0: 1000), so that their rates are present.
 * @return VIGIL_OK, VIGIL_EINVAL, VIGIL_ELIMIT (batch full), VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_agent_collect_once(vigil_agent *agent, vigil_batch *out, int64_t gap_ms);

/** The agent id (host tag value), borrowed. @since 0.1.0 */
VIGIL_EXTERN(const char *) vigil_agent_id(const vigil_agent *agent);

/** Number of collectors. @since 0.1.0 */
VIGIL_EXTERN(size_t) vigil_agent_collector_count(const vigil_agent *agent);

/**
 * Counters of an agent. Set @c version (or use VIGIL_AGENT_STATS_INIT).
 * @since 0.1.0
 */
typedef struct vigil_agent_stats {
    unsigned int version;   /**< VIGIL_AGENT_STATS_VERSION */
    uint64_t collections;   /**< collector runs */
    uint64_t metrics;       /**< samples collected (self-metrics included) */
    uint64_t batches_sent;  /**< batches a hub accepted (replays included) */
    uint64_t ship_failures; /**< sends that failed and went to the spool */
    uint64_t dropped;       /**< batches refused by the hub or lost (spool full, no spool) */
    uint64_t spooled;       /**< batches appended to the spool */
    uint64_t replayed;      /**< spooled batches a hub accepted */
    uint64_t events;        /**< event batches shipped outside the schedule */
    uint64_t spool_bytes;   /**< bytes of the spool on disk */
    uint64_t spool_records; /**< batches waiting in the spool */
    uint64_t spool_corrupt; /**< damaged spool records skipped */
    /** batches (or parts of a split batch) the hub refused for their content
     *  (400, 415, 403 agent_mismatch, one metric too large); also in dropped
     *  @since 0.2.0 */
    uint64_t refused;
    uint64_t splits; /**< batches (or parts) halved after a 413 @since 0.2.0 */
} vigil_agent_stats;

#define VIGIL_AGENT_STATS_VERSION 1
#define VIGIL_AGENT_STATS_INIT                                           \
    {                                                                    \
        VIGIL_AGENT_STATS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 \
    }

/**
 * Reads the counters. Thread-safe.
 * @return VIGIL_OK, VIGIL_EINVAL (NULL) or VIGIL_EVERSION (unknown version). @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_agent_stats_get(const vigil_agent *agent, vigil_agent_stats *out);

#ifdef __cplusplus
}
#endif

#endif
