/*
 * vigil/remediator.h - the remediator: it receives action requests (from a
 * hub in process, or signed over HTTP), passes each through the guards,
 * executes it at most once, records everything in a hash-chained audit log
 * and reports the result.
 *
 * Guards, in this order; the first that refuses gives the result REFUSED with
 * its name as reason (dry_run gives DRY_RUN), and a "guard" audit row:
 *   not_allowed   the action's allowlists (vigil_action_registry_validate())
 *   dry_run       global (guards), per action (dry_run: true) or per request
 *   busy          another action is running on the same target
 *   cooldown      the same (action, target) started less than cooldown ago
 *   quarantined   the target used max_attempts executions within window: it
 *                 stays quarantined until reset_after passes with no new
 *                 request for it, or an administrator releases it
 *                 (vigil_remediator_release(), POST /v1/targets/{t}/release)
 *   rate_limited  the global token bucket (rate_limit, rate_burst) is empty
 *   concurrency   max_concurrent actions are running
 *   approval      the action requires approval: the request is answered
 *                 PENDING_APPROVAL and waits for vigil_remediator_approve() or
 *                 _deny() (POST /v1/actions/{id}/approve | /deny) or for its
 *                 expiry; the final result (run, or REFUSED "approval_denied" /
 *                 "approval_expired") goes to the late_result callback and, when
 *                 configured, to the hub (POST {hub}/v1/actions/{id}/result).
 * The cooldown starts, the attempt counts and the token is taken when an
 * execution starts. Guard state (cooldowns, attempts, quarantines, pending
 * approvals) is kept in the store, so a restart keeps it.
 *
 * Exactly once. Every request has an id (one is minted when it has none). It
 * is recorded in the store's actions ledger before anything runs; an id that
 * is already recorded is never executed again: a finished one is answered
 * with its recorded result, one still running is answered when it finishes
 * (with the same result), one found unfinished after a restart (the process
 * died while it ran) is answered FAILED with reason "interrupted".
 *
 * Audit. Every request, guard refusal, execution start, approval decision and
 * result is appended to the audit chain (vigil/audit.h) kept in the same
 * store, which is opened with synchronous FULL. Every result carries the
 * (seq, mac) of its "result" row: the checkpoint the hub keeps.
 *
 * Routes added by vigil_remediator_mount():
 *   POST /v1/execute                signature  X-Vigil-Signature (vigil_signature_verify())
 *                                              with the shared secret; 401 and an "auth"
 *                                              audit row when bad or stale; 200 with the
 *                                              result {"id","status","reason","output",
 *                                              "duration_ms","audit":{"seq","mac"}} once it
 *                                              has finished; 202 {"id","status":
 *                                              "pending_approval"} for an approval
 *   GET  /v1/actions                read       configured actions, recent executions,
 *                                              pending approvals, quarantined targets
 *   POST /v1/actions/{id}/approve   admin      {"id","status":"approved"}
 *   POST /v1/actions/{id}/deny      admin      {"id","status":"refused","reason":"approval_denied"}
 *   POST /v1/targets/{target}/release admin    {"target","released":true|false}
 *   GET  /v1/audit?since=&limit=    read       vigil_audit_list_json()
 *   GET  /v1/audit/verify[?seq=&mac=] read     vigil_audit_report_json()
 * and its metrics to GET /metrics. Approve, deny, release and audit verify
 * also accept, instead of the token, the hub's signed forward of a call it
 * authenticated (since 0.3.0): X-Vigil-Signature over "<METHOD> <path>\n<actor>\n"
 * with the execute secret, the actor in X-Vigil-Actor (docs/http-api.md,
 * "Forwarded admin calls"); a bad signature is 401 and an `auth` audit row.
 *
 * Threads: vigil_remediator_submit(), the dispatcher, _approve(), _deny(),
 * _release(), _tick() and the routes may be called from many threads.
 * vigil_remediator_start() and _stop() are called from one controlling
 * thread; the remediator runs its worker threads, a ticker and (with a hub
 * URL) a result poster between them.
 */
#ifndef VIGIL_REMEDIATOR_H
#define VIGIL_REMEDIATOR_H

#include "vigil/action.h"
#include "vigil/api.h"
#include "vigil/audit.h"
#include "vigil/common.h"
#include "vigil/config.h"
#include "vigil/httpd.h"
#include "vigil/log.h"
#include "vigil/store.h"
#include "vigil/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Default audit store of a remediator. @since 0.1.0 */
#define VIGIL_REMEDIATOR_DEFAULT_STORE "sqlite://./var/remediator.db"

/**
 * Receives a result together with the audit checkpoint of its "result" row
 * (@p audit_seq 0 and @p audit_mac "" when there is none). @p result is
 * borrowed for the call. Called from a remediator thread; it must not block
 * for long nor call vigil_remediator_stop().
 * @since 0.1.0
 */
typedef void (*vigil_remediator_result_cb)(const vigil_action_result *result, int64_t audit_seq,
                                           const char *audit_mac, void *payload);

/**
 * The value that turns a guard off: cooldown_ms, max_attempts (stored as
 * UINT_MAX in that unsigned field), reset_after_ms and rate_per_s. In these
 * fields, as in every option, 0 means the documented default.
 * @since 0.2.0
 */
#define VIGIL_REMEDIATOR_DISABLED (-1)

/**
 * Options of a remediator. Initialise with VIGIL_REMEDIATOR_OPTIONS_INIT or
 * vigil_remediator_options_init(): all zero but the version, and 0 in any
 * field means its documented default. A guard is turned off with
 * VIGIL_REMEDIATOR_DISABLED (in remediator.yaml, with 0).
 * @since 0.1.0 (0 means the default, and VIGIL_REMEDIATOR_DISABLED, since 0.2.0)
 */
typedef struct vigil_remediator_options {
    unsigned int version; /**< VIGIL_REMEDIATOR_OPTIONS_VERSION */
    /** Store of the audit chain, the ledger and the guard state: a
     * sqlite:// URL (vigil/store.h), opened with synchronous FULL
     * ("synchronous=normal" in the URL is refused). NULL:
     * VIGIL_REMEDIATOR_DEFAULT_STORE. */
    const char *store_url;
    /** The audit key (copied), VIGIL_AUDIT_KEY_MIN bytes at least; NULL: read
     * with vigil_audit_key_load() from @c audit_key_env, else from the file
     * "<database path>.key" (created when missing). */
    const void *audit_key;
    size_t audit_key_len;
    /** Environment variable holding the audit key; NULL: the key file. */
    const char *audit_key_env;

    /** The `actions:` list (vigil_action_registry_configure()), borrowed for
     * vigil_remediator_new() only; NULL: no actions. */
    const vigil_config_node *actions;
    /** Action types of the embedder (vigil_action_register()), borrowed:
     * it must outlive the remediator, and it keeps its payloads. A `type:`
     * of the actions resolves in the built-in types first, then here; the
     * actions configured on this registry itself are not used. NULL: the
     * built-in types only. @since 0.2.0 */
    const vigil_action_registry *action_types;
    /** Store types of the embedder (vigil_store_register()), borrowed: it
     * must outlive the remediator. @c store_url's scheme resolves in the
     * built-in types first, then here. NULL: the built-in types only.
     * @since 0.2.0 */
    const vigil_store_registry *store_types;
    /** Directory against which relative program paths are made absolute;
     * NULL: the working directory. */
    const char *base_dir;

    /* ---- guards ---- */
    int dry_run; /**< non-zero: nothing runs */
    /** Time between two executions per (action, target); 0: 60 s;
     * VIGIL_REMEDIATOR_DISABLED (any negative value): no cooldown. */
    int64_t cooldown_ms;
    /** Executions per target within window_ms, the next one quarantines the
     * target; 0: 3; VIGIL_REMEDIATOR_DISABLED: no budget. */
    unsigned int max_attempts;
    /** The budget's window; 0: 10 min. Negative values are refused. */
    int64_t window_ms;
    /** Quiet time that ends a quarantine; 0: 10 min;
     * VIGIL_REMEDIATOR_DISABLED (any negative value): a quarantine ends at
     * the next request. */
    int64_t reset_after_ms;
    /** Global token bucket refill per second; 0: 0.5 (30/min);
     * VIGIL_REMEDIATOR_DISABLED (any negative value): no rate limit. */
    double rate_per_s;
    double rate_burst;           /**< bucket size; 0: the requests of one minute, at least 1 */
    unsigned int max_concurrent; /**< actions running at once; 0: 4 */

    /* ---- execution ---- */
    /** Worker threads; 0: max_concurrent + 2 (the extra ones decide guards
     * while max_concurrent actions run). */
    size_t workers;
    /** Requests waiting for a worker; more are refused with
     * VIGIL_EOVERLOADED; 0: 1024. */
    size_t queue_max;
    /** How often the ticker reaps child processes and expires approvals;
     * 0: 200 ms. */
    int64_t tick_interval_ms;
    /** Wall clock in ms since the epoch (guards, audit, ledger, signature
     * timestamps); NULL: real time. */
    vigil_clock_cb clock;
    void *clock_payload;

    /* ---- POST /v1/execute ---- */
    /** Environment variable holding the shared signing secret; read by
     * vigil_remediator_new(), never logged. */
    const char *secret_env;
    /** The secret itself (copied), instead of @c secret_env. One of the two
     * is required for vigil_remediator_mount(). */
    const void *secret;
    size_t secret_len;
    /** Largest distance between a signature's time and now; 0:
     * VIGIL_SIGNATURE_MAX_SKEW_S. */
    int64_t max_skew_s;

    /* ---- late results ---- */
    /** Called with the final result of every request that was answered
     * PENDING_APPROVAL (approved and run, denied, expired), and of every
     * request a previous process left unfinished (FAILED "interrupted"; these
     * are reported from within vigil_remediator_new()). */
    vigil_remediator_result_cb late_result;
    void *late_result_payload;
    /** Hub base URL: late results are also POSTed to
     * <hub_url>/v1/actions/{id}/result; NULL: not sent. */
    const char *hub_url;
    /** Environment variable holding the bearer token for the hub (scope
     * write); NULL: no Authorization header. */
    const char *hub_token_env;
    /** Attempts per late result (network errors and 5xx are retried); 0: 8. */
    unsigned int hub_attempts;
    /** First retry delay, doubled per retry up to 30 s; 0: 500 ms. */
    int64_t hub_backoff_ms;
    /** Timeout of one POST; 0: 10 s. */
    int64_t hub_timeout_ms;

    /** Executions listed by GET /v1/actions at most; 0: 100. */
    size_t recent_max;
    /** Where the remediator logs ("remediator"); actions, store and audit too. */
    vigil_logger logger;
    /** Directory of the actions' own records (vigil_action_registry_options
     * state_dir: the process action records what it started there), made
     * absolute against base_dir. NULL: "<database path>.state" beside the
     * store of @c store_url (none for an in-memory store). @since 0.2.0 */
    const char *state_dir;
    /** TLS of the link to an https:// hub (late results; version 2;
     * @since 0.3.0): a PEM CA bundle to trust instead of the system's, and a
     * client certificate and its key (PEM, together) for a hub that requires
     * one. NULL: none. Checked readable when the remediator is created. */
    const char *hub_ca_file;
    const char *hub_cert;
    const char *hub_key;
} vigil_remediator_options;

#define VIGIL_REMEDIATOR_OPTIONS_VERSION 2
#define VIGIL_REMEDIATOR_OPTIONS_INIT                                                              \
    {                                                                                              \
        VIGIL_REMEDIATOR_OPTIONS_VERSION, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL, 0, 0, 0, 0, \
            0, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, 0, 0, 0, 0, \
            VIGIL_LOGGER_INIT, NULL, NULL, NULL, NULL                                              \
    }

/**
 * Fills @p opts as VIGIL_REMEDIATOR_OPTIONS_INIT does (all zero: the
 * defaults). @return VIGIL_OK, VIGIL_EINVAL (NULL @p opts) or VIGIL_EVERSION
 * (@p version 0 or newer than this library's). @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_remediator_options_init(vigil_remediator_options *opts, unsigned int version);

/**
 * Creates a remediator: opens its store (synchronous FULL), loads the audit
 * key and opens the chain, builds the action registry (built-in types, then
 * those of @c action_types; configured actions), reads the signing secret, restores the guard
 * state and pending approvals, and finishes every request the ledger shows
 * unfinished by a previous process (FAILED "interrupted", audited). No thread
 * runs until vigil_remediator_start().
 * @param out receives the remediator, the caller's; free with vigil_remediator_free().
 * @param opts NULL for defaults (strings are copied).
 * @return VIGIL_OK; VIGIL_EINVAL (bad options); VIGIL_EENV (secret_env or
 *         audit_key_env not set); the codes of vigil_store_open(),
 *         vigil_audit_key_load(), vigil_audit_open(),
 *         vigil_action_registry_configure(); VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_remediator_new(vigil_remediator **out, const vigil_remediator_options *opts);

/**
 * Starts the workers, the ticker and the hub poster.
 * @return VIGIL_OK; VIGIL_EINVAL (already started); VIGIL_ECLOSED (stopped);
 *         VIGIL_ERROR (a thread could not be created).
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_remediator_start(vigil_remediator *rem);

/**
 * Stops: new requests fail with VIGIL_ECLOSED; requests waiting for a worker
 * are answered FAILED "shutting_down" without being recorded (a redelivery
 * after a restart runs them); actions that are running finish and are
 * answered; late results still queued for the hub get one more attempt; the
 * threads are joined. Pending approvals stay pending (in the store).
 * Idempotent. @since 0.1.0
 */
VIGIL_EXTERN(void) vigil_remediator_stop(vigil_remediator *rem);

/**
 * Stops the remediator (vigil_remediator_stop()) and frees it. Every api it
 * is mounted on must be freed first. Programs started by `process` actions
 * keep running. NULL is a no-op. @since 0.1.0
 */
VIGIL_EXTERN(void) vigil_remediator_free(vigil_remediator *rem);

/**
 * Queues @p request (copied) and returns without waiting: guards, ledger,
 * execution and audit happen on a worker thread. On VIGIL_OK @p done is
 * called exactly once, from a remediator thread (never from within this
 * call): with the final result, or with
 * PENDING_APPROVAL for a request waiting for approval (its final result goes
 * to the late_result callback and the hub).
 * @return VIGIL_OK; VIGIL_EINVAL (NULL, an id longer than
 *         VIGIL_ACTION_ID_MAX or not valid UTF-8); VIGIL_EVERSION (unknown
 *         request version); VIGIL_EOVERLOADED (queue
 *         full); VIGIL_ECLOSED (not started or stopped); VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_remediator_submit(vigil_remediator *rem, const vigil_action_request *request,
                        vigil_action_done_cb done, void *payload);

/**
 * As vigil_remediator_submit(), with a callback that also receives the
 * audit checkpoint of the result. @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_remediator_submit_audited(vigil_remediator *rem, const vigil_action_request *request,
                                vigil_remediator_result_cb done, void *payload);

/**
 * Fills @p out with an in-process dispatcher (vigil/action.h) whose submit is
 * vigil_remediator_submit(); hand it to vigil_hub_set_dispatcher(). The
 * remediator must outlive its users.
 * @return VIGIL_OK or VIGIL_EINVAL. @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_remediator_dispatcher(vigil_remediator *rem, vigil_action_dispatcher *out);

/**
 * Approves the pending request @p id: the guards from busy on are checked
 * again (a refusal is its final result) and it runs on a worker. The final
 * result goes to late_result and the hub.
 * @param who the administrator, for the audit row (NULL: "").
 * @return VIGIL_OK; VIGIL_ENOTFOUND (no pending request @p id);
 *         VIGIL_ECLOSED; VIGIL_EOVERLOADED; the store's and audit's codes;
 *         VIGIL_EINVAL; VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_remediator_approve(vigil_remediator *rem, const char *id, const char *who);

/**
 * Denies the pending request @p id: its final result is REFUSED
 * "approval_denied". @return as vigil_remediator_approve(). @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_remediator_deny(vigil_remediator *rem, const char *id, const char *who);

/**
 * Ends the quarantine of @p target (and forgets its attempts), audited.
 * @param released receives 1 when the target was quarantined; may be NULL.
 * @return VIGIL_OK, VIGIL_EINVAL, the store's and audit's codes, VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_remediator_release(vigil_remediator *rem, const char *target, const char *who, int *released);

/**
 * Runs the periodic work now: reaps child processes and expires approvals
 * whose time has passed on the remediator's clock. The ticker calls it
 * every tick_interval_ms; tests with an injected clock call it directly.
 * @return VIGIL_OK or VIGIL_EINVAL. @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_remediator_tick(vigil_remediator *rem);

/** The audit chain (borrowed; valid until vigil_remediator_free()). @since 0.1.0 */
VIGIL_EXTERN(vigil_audit *) vigil_remediator_audit(vigil_remediator *rem);

/** The store (borrowed; valid until vigil_remediator_free()). @since 0.1.0 */
VIGIL_EXTERN(vigil_store *) vigil_remediator_store(vigil_remediator *rem);

/** The action registry (borrowed; configured; valid until vigil_remediator_free()). @since 0.1.0 */
VIGIL_EXTERN(vigil_action_registry *) vigil_remediator_registry(vigil_remediator *rem);

/**
 * Adds the remediator's routes (see the top of this header) and metrics to
 * @p api. The remediator must outlive the api.
 * @return VIGIL_OK; VIGIL_EINVAL (NULL, or no signing secret);
 *         VIGIL_EEXISTS (a route already mounted); VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_remediator_mount(vigil_remediator *rem, vigil_api *api);

/* ---- configuration (configs/remediator.yaml) ------------------------------ */

/**
 * Loads and validates a remediator.yaml (every key documented in
 * configs/remediator.yaml): unknown keys are refused with their location,
 * the actions are checked by configuring them once, and the variable named
 * by secret_env must be set. An action's `type:` resolves in the built-in
 * types, then in copts->action_types; the `audit:` scheme in the built-in
 * store type, then in copts->store_types; the loaded options carry both
 * registries on.
 * @param out receives the configuration, the caller's; free with
 *        vigil_remediator_config_free().
 * @param copts loader options (NULL: defaults; its registries are borrowed
 *        and must outlive the configuration).
 * @return VIGIL_OK; the codes of vigil_config_load_file() and
 *         vigil_action_registry_configure(); VIGIL_EUNKNOWNKEY, VIGIL_ETYPE,
 *         VIGIL_EVALUE, VIGIL_ERANGE, VIGIL_EMISSING, VIGIL_EUNSUPPORTED,
 *         VIGIL_EENV (located messages); VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_remediator_config_load(vigil_remediator_config **out, const char *path,
                             const vigil_config_options *copts);

/** As vigil_remediator_config_load(), from memory. @since 0.1.0 */
VIGIL_EXTERN(int)
vigil_remediator_config_load_string(vigil_remediator_config **out, const char *text, size_t len,
                                    const char *name, const vigil_config_options *copts);

/** Frees a configuration. NULL is a no-op. @since 0.1.0 */
VIGIL_EXTERN(void) vigil_remediator_config_free(vigil_remediator_config *config);

/**
 * The options the configuration describes, borrowed from it (valid until
 * vigil_remediator_config_free()); copy a struct to change its logger.
 * @since 0.1.0
 */
VIGIL_EXTERN(const vigil_remediator_options *)
vigil_remediator_config_options(const vigil_remediator_config *config);
/** @copydoc vigil_remediator_config_options */
VIGIL_EXTERN(const vigil_api_options *)
vigil_remediator_config_api(const vigil_remediator_config *config);
/** @copydoc vigil_remediator_config_options */
VIGIL_EXTERN(const vigil_httpd_options *)
vigil_remediator_config_httpd(const vigil_remediator_config *config);

/** Settings of the daemon process. @since 0.1.0 */
typedef struct vigil_remediator_daemon_options {
    unsigned int version;      /**< VIGIL_REMEDIATOR_DAEMON_OPTIONS_VERSION */
    int64_t drain_timeout_ms;  /**< http.drain_timeout; default 10 s */
    vigil_log_level log_level; /**< log.level; default info */
} vigil_remediator_daemon_options;

#define VIGIL_REMEDIATOR_DAEMON_OPTIONS_VERSION 1

/** @copydoc vigil_remediator_config_options */
VIGIL_EXTERN(const vigil_remediator_daemon_options *)
vigil_remediator_config_daemon(const vigil_remediator_config *config);

#ifdef __cplusplus
}
#endif

#endif
