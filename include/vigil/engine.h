/*
 * vigil/engine.h - the policy engine: it loads rules (<vigil/policy.h>),
 * evaluates every ingested metric against them, runs their state machines and
 * timers, records decisions in the store and hands action requests to its
 * caller. The functions of this header keep the vigil_engine_ prefix.
 *
 * Persistence. Every state that matters (pending-since, firing, budgets,
 * cooldowns, flap history, verification deadlines, outstanding action ids) is
 * kept in the store under keys starting with "policy/", written when it
 * changes, and restored when a policy of the same name is loaded again.
 * vigil_engine_replace() swaps the rule set at run time, keeping the state of
 * unchanged rules and deleting the persisted state of dropped ones.
 *
 * Threads. Every function of an engine may be called from any thread; calls
 * are serialised by one mutex. The callbacks of the options are called with
 * no engine lock held, so they may call back into the engine (for example
 * vigil_engine_action_result() from on_request when dispatch fails). Code
 * policies (create, evaluate, destroy) are called with the lock held and must
 * not call the engine.
 */
#ifndef VIGIL_ENGINE_H
#define VIGIL_ENGINE_H

#include "vigil/action.h"
#include "vigil/batch.h"
#include "vigil/buf.h"
#include "vigil/common.h"
#include "vigil/config.h"
#include "vigil/log.h"
#include "vigil/metric.h"
#include "vigil/policy.h"
#include "vigil/store.h"
#include "vigil/types.h"
#include "vigil/window.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * An action request made by the engine, handed to on_request. Everything is
 * borrowed for the duration of the callback.
 * @since 0.1.0
 */
typedef struct vigil_engine_request {
    unsigned int version;                /**< VIGIL_ENGINE_REQUEST_VERSION */
    const vigil_action_request *request; /**< id minted by the engine */
    const char *series;                  /**< series key that triggered it, or NULL */
} vigil_engine_request;

#define VIGIL_ENGINE_REQUEST_VERSION 1

/**
 * Options of an engine. Initialise with VIGIL_ENGINE_OPTIONS_INIT or
 * vigil_engine_options_init() so fields added later default to zero.
 * @since 0.1.0
 */
typedef struct vigil_engine_options {
    unsigned int version; /**< VIGIL_ENGINE_OPTIONS_VERSION */
    /** Required, borrowed (must outlive the engine): state, decisions and
     * silences persist here. */
    vigil_store *store;
    /**
     * Answers window queries: @p agg over the samples of @p series_key with
     * now_ms - duration_ms < ts <= now_ms. Returns VIGIL_OK, VIGIL_ENOTFOUND
     * when there is no sample, or another negative code. Called with the
     * engine lock held, from the thread that called vigil_engine_ingest().
     * NULL: the engine appends the samples of the series a rule reads the
     * history of (vigil_engine_watch() above 0) to windows of its own (since
     * 0.4.0; every ingested sample before).
     */
    int (*aggregate)(void *payload, const char *series_key, vigil_window_agg agg,
                     int64_t duration_ms, int64_t now_ms, double *out);
    void *aggregate_payload;
    /** Wall clock in ms since the epoch for timers; NULL: real time. */
    vigil_clock_cb clock;
    void *clock_payload;
    /** Called for every request the engine makes (no lock held). NULL: none. */
    void (*on_request)(void *payload, const vigil_engine_request *req);
    void *request_payload;
    /** Called for every decision after it is stored (no lock held). NULL: none. */
    void (*on_decision)(void *payload, const vigil_store_decision *d);
    void *decision_payload;
    /** Samples older than this (relative to the clock) are never acted on; 0: 5 min. */
    int64_t act_within_ms;
    vigil_logger logger; /**< component "policy" */
    /** Bounds of the engine's own windows (only when @c aggregate is NULL);
     * zero fields: max age = the longest rule window (at least 1 h), 4096
     * samples, 100,000 series. */
    vigil_window_set_options windows;
    /** Policy types of the embedder (<vigil/sys/policy.h>), borrowed: it must
     * outlive the engine, and it keeps its payloads. A rule's `kind` resolves
     * in the built-in kinds first, then here. NULL: the built-in kinds only.
     * @since 0.2.0 */
    const vigil_policy_registry *policy_types;
    /** Cardinality (version 2; @since 0.3.0). A series of a rule (other than
     * an absent rule, whose point is silence) that has had no sample for this
     * long and is quiet (ok, nothing pending, no action awaited) leaves the
     * rule at the next tick (counted in series_evicted). 0: 1 hour; negative:
     * never. */
    int64_t series_idle_ms;
    /** New series one agent (the batch's agent, "" without one) may add to
     * one rule at most; past it, and past the 100,000 series of a rule, a new
     * series is refused: counted (series_refused), logged, and recorded as a
     * `capped` decision once a minute per rule. 0: 10,000. */
    size_t series_per_agent;
} vigil_engine_options;

#define VIGIL_ENGINE_OPTIONS_VERSION 2
#define VIGIL_ENGINE_OPTIONS_INIT                                                              \
    {                                                                                          \
        VIGIL_ENGINE_OPTIONS_VERSION, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, \
            VIGIL_LOGGER_INIT, {0, {0, 0, 0}, 0}, NULL, 0, 0                                   \
    }

/**
 * Fills @p opts with defaults. @return VIGIL_OK, VIGIL_EINVAL (NULL @p opts) or
 * VIGIL_EVERSION (@p version 0 or newer than this library's). @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_engine_options_init(vigil_engine_options *opts, unsigned int version);

/**
 * Creates an engine without policies. Silences are read from the store.
 * @param out receives the engine, the caller's; free with vigil_engine_free().
 * @return VIGIL_OK; VIGIL_EINVAL (NULL @p out or options, no store, bad
 *         version, negative act_within); codes of the store; VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_engine_new(vigil_engine **out, const vigil_engine_options *opts);

/**
 * Frees an engine and its policies (code policies' destroy; the payloads of
 * their types stay with the registry). Persisted state stays in the store.
 * NULL is a no-op. No other call on the engine may run or follow.
 * @since 0.1.0
 */
VIGIL_EXTERN(void) vigil_engine_free(vigil_engine *engine);

/**
 * Loads rules from a YAML list of maps (the `policies:` node). All or nothing:
 * on failure no rule of the list is added. Persisted state of each policy is
 * restored from the store.
 * @param policies the list; NULL or a null node adds nothing.
 * @return VIGIL_OK; with a located message: VIGIL_ETYPE, VIGIL_EMISSING,
 *         VIGIL_EUNKNOWNKEY, VIGIL_EUNSUPPORTED (a kind neither built in nor in
 *         the options' policy_types), VIGIL_EVALUE
 *         (bad op, aggregate, duration, template, name, negative window...),
 *         VIGIL_EEXISTS (a name already loaded), VIGIL_ELIMIT, or what a code
 *         type's create returns; VIGIL_ENOMEM; codes of the store.
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_engine_load(vigil_engine *engine, const vigil_config_node *policies);

/**
 * Loads every *.yaml and *.yml file of @p dir, in name order; each holds a
 * top-level map with a `policies:` list (and nothing else). All or nothing
 * across the directory.
 * @param copts options of the YAML loader, NULL for defaults.
 * @return as vigil_engine_load(), plus VIGIL_EIO (cannot read the directory)
 *         and the codes of vigil_config_load_file().
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_engine_load_dir(vigil_engine *engine, const char *dir, const vigil_config_options *copts);

/** What vigil_engine_replace() did. @since 0.1.0 */
typedef struct vigil_engine_reload_result {
    unsigned int version; /**< set by the caller: VIGIL_ENGINE_RELOAD_RESULT_VERSION */
    size_t added;         /**< rules whose name was not loaded: state restored from the store */
    size_t changed;       /**< same name, another definition: started fresh */
    size_t removed;       /**< loaded rules absent from the new set: dropped */
    size_t kept;          /**< same name and definition: their state carried over */
} vigil_engine_reload_result;

#define VIGIL_ENGINE_RELOAD_RESULT_VERSION 1
#define VIGIL_ENGINE_RELOAD_RESULT_INIT                \
    {                                                  \
        VIGIL_ENGINE_RELOAD_RESULT_VERSION, 0, 0, 0, 0 \
    }

/**
 * Replaces every loaded rule with the rules of @p policies (as
 * vigil_engine_load() reads it) followed by those of the files of @p dir (as
 * vigil_engine_load_dir() reads them), all or nothing: every rule is parsed
 * and validated first, and on any error nothing changes (the rules loaded
 * keep evaluating). A name may appear once across the list and the files.
 *
 * On success, for each rule of the new set:
 * - same name and same definition as a loaded rule (the same keys and values,
 *   whatever their order, quoting or place in a file): the loaded rule stays,
 *   with all its in-memory state (pending `for`, firing, cooldowns, budgets,
 *   flap history, absent timers, outstanding actions and their verification);
 * - a name not loaded: a new rule, whose persisted state is restored from the
 *   store as vigil_engine_load() does;
 * - a loaded name with another definition: a new rule that starts fresh; the
 *   persisted state of the old definition is deleted from the store.
 * A loaded rule whose name is not in the new set is dropped, and its
 * persisted state deleted from the store (so that a rule of that name added
 * later starts fresh). The outstanding actions of a dropped or changed rule
 * are forgotten: their results are answered VIGIL_ENOTFOUND. A failure to delete persisted state is
 * logged and counted (eval_errors) and does not undo the replacement. Kinds of code policies
 * (the options' policy_types) resolve as in a load; a kept
 * code policy keeps its state (the one created by this call is destroyed).
 * Policies are listed (vigil_engine_policies_json()) in the new order.
 *
 * @param policies the `policies:` list; NULL or a null node: none.
 * @param dir a directory of policy files; NULL or "": none.
 * @param copts options of the YAML loader for the files of @p dir, NULL for
 *        defaults.
 * @param result when not NULL (its version set by the caller), receives the
 *        counts.
 * @return VIGIL_OK; VIGIL_EINVAL (NULL engine); VIGIL_EVERSION (bad result version); the codes
 *         of vigil_engine_load() and vigil_engine_load_dir() with their
 *         located messages ("file:line:col: ..."), VIGIL_EEXISTS naming a
 *         duplicate name; VIGIL_ENOMEM; codes of the store (restoring).
 * Thread-safe: the swap is done under the engine's lock, so it is atomic for
 * vigil_engine_ingest(), vigil_engine_tick() and every other call running
 * concurrently.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_engine_replace(vigil_engine *engine, const vigil_config_node *policies, const char *dir,
                     const vigil_config_options *copts, vigil_engine_reload_result *result);

/**
 * Evaluates every metric of @p batch (in order, event time) against the
 * policies watching its name; notes the batch's agent (or each metric's host
 * tag) as alive. Metrics carrying an error are skipped. A code policy that
 * fails, or a template that names a missing tag, is logged and counted
 * (vigil_engine_stats()) and does not stop the others.
 * @return VIGIL_OK; VIGIL_EINVAL (NULL); a store error while persisting.
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_engine_ingest(vigil_engine *engine, const vigil_batch *batch);

/**
 * Advances timers to @p now_ms (0: the engine's clock): absent rules,
 * verification deadlines (`ineffective`, escalation, or the retry of the
 * rule's action when no escalation is left), requests held back by a
 * cooldown or quarantine whose time has come, and flap settling.
 * Call it every second or so.
 * @return VIGIL_OK, VIGIL_EINVAL, or a store error.
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_engine_tick(vigil_engine *engine, int64_t now_ms);

/**
 * Feeds the result of an action the engine requested (the closed loop):
 * SUCCEEDED starts verification; FAILED and TIMEOUT record `action_failed`
 * and escalate; REFUSED with reason "quarantined" records `quarantined`
 * (its reason: the result's output, which says how to release the target);
 * REFUSED with reason "cooldown" and a retry_after_ms (a version 2 result)
 * while the condition still holds records `deferred`; in both cases, with a
 * retry_after_ms, the request is made again by vigil_engine_tick() that many
 * ms later if the condition still holds (`fired`, reason "retry: ...");
 * any other REFUSED records `action_failed` without escalating; DRY_RUN
 * ends the request without a decision; PENDING_APPROVAL is noted only.
 * @return VIGIL_OK; VIGIL_ENOTFOUND (an id the engine did not mint, or one
 *         already finished); VIGIL_EINVAL; a store error.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_engine_action_result(vigil_engine *engine, const vigil_action_result *result);

/**
 * Sets (or with @p json_object NULL, removes) the desired state of @p target,
 * a JSON object (at most VIGIL_POLICY_DESIRED_MAX bytes), for `desired` rules
 * and code policies. Kept in memory.
 * @return VIGIL_OK; VIGIL_EINVAL (NULL engine or target); VIGIL_ETYPE (not an
 *         object); VIGIL_EJSON / VIGIL_EENCODING / VIGIL_ELIMIT (bad JSON);
 *         VIGIL_ENOTFOUND (removing an unknown target); VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_engine_set_desired(vigil_engine *engine, const char *target, const char *json_object);

/**
 * Adds a silence, persisted in the store. While it is active (starts_ms <=
 * clock < ends_ms) every request it matches is recorded as `silenced` and not
 * made.
 * @param matchers_json an object of globs: "policy" (the policy name),
 *        "target" (the request's target) and any other key a tag of the
 *        series; all must match; at least one.
 * @param created_by, comment may be NULL.
 * @param id_out when not NULL, receives the new id (cleared first).
 * @return VIGIL_OK; VIGIL_EVALUE (not an object of strings, empty, ends_ms <=
 *         starts_ms, bad glob); VIGIL_EJSON; VIGIL_EINVAL (NULL); store
 *         codes; VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_engine_silence_add(vigil_engine *engine, const char *matchers_json, int64_t starts_ms,
                         int64_t ends_ms, const char *created_by, const char *comment,
                         vigil_buf *id_out);

/**
 * Deletes a silence. @return VIGIL_OK, VIGIL_ENOTFOUND, VIGIL_EINVAL, store
 * codes. @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_engine_silence_delete(vigil_engine *engine, const char *id);

/**
 * Writes {"silences":[{"id","matchers":{...},"starts","ends","created_by",
 * "comment"}]} (every silence, also expired ones, by start) into @p out
 * (cleared first). @return VIGIL_OK, VIGIL_EINVAL, VIGIL_ENOMEM, store codes.
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_engine_silences_json(vigil_engine *engine, vigil_buf *out);

/**
 * Writes {"policies":[{"name","kind","metric","action","series":[{"series",
 * "state","value","since"}]}]} into @p out (cleared first): each policy in load
 * order with its series' states ("ok", "pending", "firing", "resolved",
 * "flapping"), last values (null when none) and the time the state began.
 * @return VIGIL_OK, VIGIL_EINVAL, VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_engine_policies_json(vigil_engine *engine, vigil_buf *out);

/**
 * Writes {"decisions":[{"id","ts","policy","series","target","action",
 * "action_id","decision","reason"}]} from the store into @p out (cleared
 * first), oldest first, with ts >= @p since_ms, at most @p limit (0: 1000).
 * Absent fields are null.
 * @return VIGIL_OK, VIGIL_EINVAL, VIGIL_ENOMEM, store codes.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_engine_decisions_json(vigil_engine *engine, int64_t since_ms, size_t limit, vigil_buf *out);

/** Counters of an engine. @since 0.1.0 */
typedef struct vigil_engine_stats {
    unsigned int version;     /**< set by the caller: VIGIL_ENGINE_STATS_VERSION */
    size_t policies;          /**< loaded */
    uint64_t metrics;         /**< metrics ingested */
    uint64_t evaluations;     /**< (policy, metric) evaluations */
    uint64_t stale;           /**< samples older than act_within, not evaluated */
    uint64_t policy_errors;   /**< code policies that returned an error */
    uint64_t template_errors; /**< requests not made: a template named a missing tag */
    uint64_t eval_errors;     /**< other evaluation failures (window, store) */
    uint64_t decisions;       /**< decisions recorded */
    uint64_t requests;        /**< requests made (on_request calls) */
    /** Series that left a rule idle (version 2; @since 0.3.0). */
    uint64_t series_evicted;
    /** New series refused by a cap: series_per_agent or 100,000 per rule
     * (version 2; @since 0.3.0). */
    uint64_t series_refused;
} vigil_engine_stats;

#define VIGIL_ENGINE_STATS_VERSION 2
#define VIGIL_ENGINE_STATS_INIT                                     \
    {                                                               \
        VIGIL_ENGINE_STATS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 \
    }

/**
 * Reads the counters. @return VIGIL_OK, VIGIL_EINVAL (NULL) or VIGIL_EVERSION (bad version).
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_engine_stats_get(vigil_engine *engine, vigil_engine_stats *out);

/**
 * Replays a recorded stream for simulation: for each batch in order, sets the
 * engine's clock to the newest sample timestamp seen so far (so act_within
 * never drops a sample of the stream), ticks at every @p tick_ms of that
 * event time passed, then ingests the batch. The same stream into an engine
 * with the same policies and an empty store yields the same decisions every
 * time. The injected clock is restored before it returns.
 * @param tick_ms > 0: tick interval in event time; 0: 1 s.
 * @return VIGIL_OK, VIGIL_EINVAL, or the first error of ingest or tick.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_engine_replay(vigil_engine *engine, const vigil_batch *const *batches, size_t nbatches,
                    int64_t tick_ms);

/**
 * How much history the loaded rules need for the series of @p metric (its
 * name and tags; value, time and error are ignored): the longest of, over
 * every rule whose metric and match select it, the rule's window plus its
 * `for` (threshold, desired and anomaly rules, which read windows) or its
 * `history` (code policies; 1 h when the rule does not set it). Change rules
 * (which keep their own samples) and absent rules need none. An embedder that
 * answers the engine's window queries (vigil_engine_options.aggregate) keeps
 * a window only for series with a history above 0, at least that long; the
 * hub does so. The answer changes only when the rule set changes
 * (vigil_engine_generation()).
 * @param history_ms receives the history in ms; 0: no rule needs a window of
 *        this series.
 * @return VIGIL_OK; VIGIL_EINVAL (NULL argument); VIGIL_ENOMEM.
 * Thread-safe (takes the engine lock); must not be called from a code policy.
 * @since 0.4.0
 */
VIGIL_EXTERN(int)
vigil_engine_watch(vigil_engine *engine, const vigil_metric *metric, int64_t *history_ms);

/**
 * A number that changes whenever the rule set changes (a load that added
 * rules, vigil_engine_load_dir(), vigil_engine_replace()), so that a caller
 * caching vigil_engine_watch() answers knows when to ask again. It starts at
 * 0 for an engine without rules. NULL: 0. Thread-safe.
 * @since 0.4.0
 */
VIGIL_EXTERN(uint64_t) vigil_engine_generation(vigil_engine *engine);

#ifdef __cplusplus
}
#endif

#endif
