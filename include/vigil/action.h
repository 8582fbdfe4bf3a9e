/*
 * vigil/action.h - remediation actions: the request a policy makes, the
 * result of carrying it out, and the registry that maps configured action
 * names (the `actions:` list of remediator.yaml, e.g. `restart_api`) to an
 * action type plus its settings.
 *
 * Built-in action types (vigil_action_registry_add_builtins()):
 *   exec     runs an argv array, never a shell; the program is an absolute
 *            path (PATH is never searched); {{target}} and {{params.x}} fill
 *            whole argv elements only; scrubbed environment; timeout kills the
 *            whole process group; stdout and stderr captured up to a bound.
 *   process  starts, stops or restarts a program Vigil supervises directly.
 *            Its pidfile holds a bare "PID" (written by the program,
 *            writes_pidfile: true) or Vigil's "PID STARTTIME" (written
 *            atomically by Vigil for a program that writes none). Missing,
 *            unreadable, garbage or a dead pid: not running, so start. A live
 *            pid is signalled only when it is provably the program: Vigil's
 *            own child (held by a pidfd), or a process whose /proc/PID/exe is
 *            the configured program and whose effective user is the expected
 *            one (`user`, else Vigil's); otherwise FAILED with reason
 *            "wrong_program" or "wrong_user" and nothing is signalled. A
 *            symlinked pidfile is refused ("bad_pidfile"). What Vigil started
 *            is also recorded in the registry's state_dir.
 *            Pidfiles and log files are opened with O_NOFOLLOW; a pidfile,
 *            log file or state_dir whose directory other users may write is
 *            refused when the action is configured (VIGIL_EPERM).
 *   systemd  start | stop | restart | reload of a unit through systemctl, the
 *            unit allow-listed by globs.
 *   signal   sends a named signal to processes found by pidfile or exact name;
 *            with a pidfile, `program` (required) and `user` (default:
 *            Vigil's) are checked as for process (reasons "wrong_program",
 *            "wrong_user"); by name, every match must pass the same checks.
 *   webhook  POSTs the request as JSON with libcurl, optionally signed
 *            (X-Vigil-Signature) and with a bearer token.
 *   log      records only (shadow mode).
 *   restore_file  (since 0.3.0) writes the bytes of <blobs_dir>/<sha256>
 *            (verified, at most 16 MiB) to the request's path through a
 *            temporary file and a rename, with its mode and owner; the path
 *            must stay under a prefix of `paths` after resolving the
 *            symbolic links of its directory (lib/action/restore_file.c,
 *            configs/remediator.yaml).
 * Third-party types plug in through <vigil/sys/action.h>.
 *
 * Allowlists. Every configured action has a `targets` pattern (a POSIX
 * extended regular expression matched against the WHOLE target; default
 * VIGIL_ACTION_DEFAULT_TARGETS) and a `params` map from parameter name to the
 * pattern its value must match; a parameter not listed is refused. Values are
 * at most VIGIL_ACTION_VALUE_MAX bytes of valid UTF-8; control characters
 * (U+0000-U+001F, U+007F) pass only where the configured pattern matches
 * them. A refused request fails with VIGIL_EPERM and a result whose status is
 * VIGIL_ACTION_REFUSED and reason "not_allowed". A value that fills an argv
 * element reaches the program as one literal argument (no shell ever sees
 * it), but a program may still read a leading '-' as an option: the default
 * pattern refuses that, and patterns you write should too.
 *
 * Child processes. Actions that run programs fork and exec directly. Before
 * every start the program must be an executable regular file that neither
 * group nor others may write, owned by root or by the user Vigil runs as;
 * otherwise the result is VIGIL_ACTION_FAILED, reason "spawn_failed", with
 * an output that names the program and the failed check ("cannot execute
 * PROG: it is writable by group or others (mode 0775)"). The library waits
 * only for the pids it started (never waitpid(-1)), so an embedder must not
 * reap arbitrary children either. Call vigil_action_registry_reap() now and
 * then (e.g. every second or on SIGCHLD) so that a supervised program that
 * exits does not linger as a zombie.
 *
 * Threads: configure a registry (register types, add actions) from one thread
 * before use. After that vigil_action_registry_execute(), _validate(), _find(),
 * _info(), _count() and _reap() may be called from many threads at once.
 *
 * Output structs (vigil_action_result, vigil_action_info) are versioned like options: the caller
 * sets
 * @c version (the *_INIT macro does) before the call; the library refuses a
 * version 0 or newer than its own with VIGIL_EVERSION, as it does for options
 * and requests (docs/architecture.md), and otherwise fills the struct. A
 * struct the library hands to a callback has its version set by the library.
 */
#ifndef VIGIL_ACTION_H
#define VIGIL_ACTION_H

#include "vigil/common.h"
#include "vigil/config.h"
#include "vigil/log.h"
#include "vigil/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @name Limits and defaults @since 0.1.0 */
/**@{*/
#define VIGIL_ACTION_VALUE_MAX          4096     /**< bytes in a target or parameter value */
#define VIGIL_ACTION_ID_MAX             128      /**< bytes in a request id */
#define VIGIL_ACTION_NAME_MAX           128      /**< bytes in an action or type name */
#define VIGIL_ACTION_TEXT_MAX           4096     /**< bytes in a request's reason or policy */
#define VIGIL_ACTION_PARAMS_MAX         64       /**< parameters in one request */
#define VIGIL_ACTION_OUTPUT_DEFAULT     65536    /**< default bound of captured output */
#define VIGIL_ACTION_OUTPUT_MAX         16777216 /**< largest `max_output` accepted */
#define VIGIL_ACTION_TIMEOUT_DEFAULT_MS 30000    /**< default `timeout` of an action */
/** The `targets` pattern of an action that does not set one. */
#define VIGIL_ACTION_DEFAULT_TARGETS "[A-Za-z0-9_][A-Za-z0-9_.:@-]{0,254}"
/**@}*/

/**
 * What became of a request. The names (vigil_action_status_name()) are
 * those of the wire format: "succeeded", "failed", "timeout", "refused",
 * "dry_run", "pending_approval". Values never change.
 * @since 0.1.0
 */
typedef enum vigil_action_status {
    VIGIL_ACTION_SUCCEEDED = 0,       /**< the action ran and reported success */
    VIGIL_ACTION_FAILED = 1,          /**< it ran (or tried to) and failed */
    VIGIL_ACTION_TIMEOUT = 2,         /**< it ran past its timeout and was stopped */
    VIGIL_ACTION_REFUSED = 3,         /**< an allowlist or guard refused it; see reason */
    VIGIL_ACTION_DRY_RUN = 4,         /**< allowed, but not run (dry run) */
    VIGIL_ACTION_PENDING_APPROVAL = 5 /**< waiting for an administrator's approval */
} vigil_action_status;

/**
 * Returns the wire name of a status, or "unknown" for a value this version
 * does not know. Never NULL. Thread-safe. @since 0.1.0
 */
VIGIL_EXTERN(const char *) vigil_action_status_name(vigil_action_status status);

/**
 * Parses a wire name as vigil_action_status_name() writes it.
 * @return VIGIL_OK, VIGIL_EINVAL for NULL arguments, VIGIL_EVALUE for an
 *         unknown name. Thread-safe. @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_action_status_parse(vigil_action_status *out, const char *name);

/** A request parameter: name and value, both NUL-terminated. @since 0.1.0 */
typedef struct vigil_action_param {
    const char *key;
    const char *value;
} vigil_action_param;

/**
 * An action request, as a policy makes it or as POST /v1/execute carries it.
 * All strings are borrowed from the caller for the duration of the call that
 * takes the request; the library copies what it keeps. Initialise with
 * VIGIL_ACTION_REQUEST_INIT so fields added later default to zero.
 * @since 0.1.0
 */
typedef struct vigil_action_request {
    unsigned int version;             /**< VIGIL_ACTION_REQUEST_VERSION */
    const char *id;                   /**< unique id (minted by the hub), or NULL */
    const char *action;               /**< configured action name, e.g. "restart_demo" */
    const char *target;               /**< what to act on, e.g. "demo"; NULL means "" */
    const vigil_action_param *params; /**< parameters, or NULL */
    size_t nparams;
    const char *reason; /**< why (free text), or NULL */
    const char *policy; /**< the policy that fired, or NULL */
    int dry_run;        /**< non-zero: check the allowlists, do not run */
} vigil_action_request;

#define VIGIL_ACTION_REQUEST_VERSION 1
#define VIGIL_ACTION_REQUEST_INIT                                              \
    {                                                                          \
        VIGIL_ACTION_REQUEST_VERSION, NULL, NULL, NULL, NULL, 0, NULL, NULL, 0 \
    }

/**
 * Returns the value of parameter @p key of @p request (borrowed), or NULL
 * when the request has no such parameter. Thread-safe. @since 0.1.0
 */
VIGIL_EXTERN(const char *)
vigil_action_request_param(const vigil_action_request *request, const char *key);

/**
 * The result of a request. Every string is owned by the result, allocated by
 * the library, and released by vigil_action_result_clear(); set them with the
 * vigil_action_result_set_*() functions.
 *
 * Versioned like every struct the library fills: the caller sets @c version
 * (VIGIL_ACTION_RESULT_INIT does) before passing the result to a function
 * that fills it, which refuses an unknown version with VIGIL_EVERSION and
 * otherwise clears it first (vigil_action_result_clear()) and fills it. A
 * result the library hands to a callback (vigil_action_done_cb,
 * vigil_remediator_result_cb) has its version set by the library.
 *
 * @c reason is a short machine-readable token: for REFUSED the guard or
 * allowlist that refused ("not_allowed", or a guard name such as "cooldown");
 * for FAILED what went wrong ("exit_code", "signal", "spawn_failed",
 * "http_status", "network", "cancelled", ... documented per action type);
 * "timeout" for TIMEOUT; NULL when there is nothing to add.
 * @c output is valid UTF-8 without NUL bytes (invalid bytes are replaced by
 * U+FFFD): the captured output of a program, a response body, or a message.
 * @since 0.1.0 (@c version since 0.2.0)
 */
typedef struct vigil_action_result {
    unsigned int version;       /**< set by the caller: VIGIL_ACTION_RESULT_VERSION */
    char *id;                   /**< the request id, or NULL */
    vigil_action_status status; /**< what became of the request */
    char *reason;               /**< short token, or NULL */
    char *output;               /**< captured output or a message, or NULL */
    size_t output_len;          /**< bytes in @c output (excluding the NUL) */
    int output_truncated;       /**< non-zero: output was cut at the action's bound */
    int exit_code;              /**< exit status of the program, or -1 */
    int term_signal;            /**< signal that ended the program, or 0 */
    int64_t duration_ms;        /**< wall time spent executing */
    /**
     * REFUSED by a guard that ends by itself (the remediator's "cooldown",
     * "quarantined"): how many ms after the refusal a request for the same
     * action and target would no longer be refused by it, at the earliest;
     * 0 when unknown or for any other result. A policy engine sends the
     * request again then (decision `deferred`). Only in a result of version 2
     * or later: the library neither reads nor writes it in a version 1 result.
     * @since 0.2.0 (version 2)
     */
    int64_t retry_after_ms;
} vigil_action_result;

/**
 * The version of vigil_action_result this header describes: 2 (retry_after_ms
 * added). Version 1 results (without retry_after_ms) are still accepted.
 * @since 0.2.0
 */
#define VIGIL_ACTION_RESULT_VERSION 2
/**
 * A result no call has filled yet: the version, everything else zero
 * (VIGIL_ACTION_SUCCEEDED is 0; named so that C++ accepts it).
 * @since 0.1.0 (all zero but the version since 0.2.0)
 */
#define VIGIL_ACTION_RESULT_INIT                                                                \
    {                                                                                           \
        VIGIL_ACTION_RESULT_VERSION, NULL, VIGIL_ACTION_SUCCEEDED, NULL, NULL, 0, 0, 0, 0, 0, 0 \
    }

/**
 * Frees every string of @p result and resets it to the empty result: the
 * version is kept, the status is FAILED, exit_code -1, every other field 0.
 * NULL is a no-op. @since 0.1.0
 */
VIGIL_EXTERN(void) vigil_action_result_clear(vigil_action_result *result);

/**
 * Replaces @p dst by a deep copy of @p src (dst is cleared first; on failure
 * it is left cleared); @p dst keeps its own version (retry_after_ms is
 * copied only when both are version 2 or later, else it is 0 or absent).
 * @return VIGIL_OK, VIGIL_EINVAL, VIGIL_EVERSION (unknown @p dst version; dst
 *         is left as it was) or VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_action_result_copy(vigil_action_result *dst, const vigil_action_result *src);

/**
 * @name Setters of a result's strings
 * Each replaces the previous string (copied; NULL clears). set_output copies
 * @p len bytes of @p data, replacing NUL bytes and invalid UTF-8 by U+FFFD,
 * so the output can always be carried in JSON; it clears output_truncated.
 * @return VIGIL_OK, VIGIL_EINVAL (NULL result), VIGIL_EVERSION (unknown
 *         result version) or VIGIL_ENOMEM (the previous string is kept).
 * @since 0.1.0
 */
/**@{*/
VIGIL_EXTERN(int) vigil_action_result_set_id(vigil_action_result *result, const char *id);
VIGIL_EXTERN(int) vigil_action_result_set_reason(vigil_action_result *result, const char *reason);
VIGIL_EXTERN(int)
vigil_action_result_set_output(vigil_action_result *result, const char *data, size_t len);
/**@}*/

/**
 * Asked while an action runs; returns non-zero to stop it now (the result is
 * FAILED with reason "cancelled"). exec and systemd (whose program's process
 * group is then killed) and webhook ask at least every 50 ms while they
 * wait; process asks between stopping and starting; signal and log never
 * wait. Called from the executing thread. @since 0.1.0
 */
typedef int (*vigil_action_cancel_cb)(void *payload);

/** Options of a registry. @since 0.1.0 */
typedef struct vigil_action_registry_options {
    unsigned int version; /**< VIGIL_ACTION_REGISTRY_OPTIONS_VERSION */
    vigil_logger logger;  /**< where actions log */
    /** Absolute directory against which relative program, pidfile and
     * workdir paths are made absolute when actions are configured (the
     * daemon's working directory). NULL: relative paths are refused. */
    const char *base_dir;
    /** Host name reported by actions (webhook bodies); NULL: gethostname(). */
    const char *host;
    /** Reads the environment for the actions (token_env, secret_env,
     * env_passthrough), from the threads that configure or execute;
     * NULL: getenv(3). */
    vigil_getenv_cb getenv;
    void *getenv_payload;
    /** Wall clock (webhook signature timestamps); NULL: the real clock. */
    vigil_clock_cb clock;
    void *clock_payload;
    /** When > 0, every action's timeout is at most this many ms. */
    int64_t max_timeout_ms;
    /** Directory where actions keep their own records (the process type
     * records what it started for pidfile P in "<state_dir>/<P with '/' as
     * %2F>.started"), made
     * absolute against base_dir; created (mode 0700) when first needed.
     * NULL: no records (a registry rebuilt later finds its programs by
     * Vigil's pidfiles only). @since 0.2.0 */
    const char *state_dir;
} vigil_action_registry_options;

#define VIGIL_ACTION_REGISTRY_OPTIONS_VERSION 1
#define VIGIL_ACTION_REGISTRY_OPTIONS_INIT                                                      \
    {                                                                                           \
        VIGIL_ACTION_REGISTRY_OPTIONS_VERSION, VIGIL_LOGGER_INIT, NULL, NULL, NULL, NULL, NULL, \
            NULL, 0, NULL                                                                       \
    }

/**
 * Fills @p opts with defaults. @return VIGIL_OK, VIGIL_EINVAL (NULL @p opts) or
 * VIGIL_EVERSION (@p version 0 or newer than this library's). @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_action_registry_options_init(vigil_action_registry_options *opts, unsigned int version);

/**
 * Creates an empty registry: no action types (see
 * vigil_action_registry_add_builtins()) and no actions. The options' strings
 * are copied.
 * @param out receives the registry, the caller's; free with vigil_action_registry_free().
 * @param opts NULL for defaults.
 * @return VIGIL_OK, VIGIL_EINVAL (relative base_dir, relative state_dir
 *         without a base_dir), VIGIL_EVERSION (unknown options version),
 *         VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_action_registry_new(vigil_action_registry **out, const vigil_action_registry_options *opts);

/**
 * Destroys every configured action, then calls the payload destructor of
 * every registered type, and frees the registry. Programs started by
 * `process` actions keep running (a new registry finds them by pidfile).
 * NULL is a no-op. Not thread-safe with any other call on the registry.
 * @since 0.1.0
 */
VIGIL_EXTERN(void) vigil_action_registry_free(vigil_action_registry *registry);

/**
 * Registers the built-in types exec, process, systemd, signal, webhook, log
 * and restore_file (since 0.3.0); vigil_action_register() refuses these names, this is the one way
 * to put them in a registry. @return VIGIL_OK, VIGIL_EINVAL (NULL registry), VIGIL_EEXISTS (the
 * built-ins are registered already), VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_action_registry_add_builtins(vigil_action_registry *registry);

/**
 * Configures the actions of an `actions:` list (a list of maps). All or
 * nothing: on failure no action of the list is added. Each map takes the
 * common keys
 *   name (required), type (required), targets (pattern, default
 *   VIGIL_ACTION_DEFAULT_TARGETS), timeout (duration, default 30s), dry_run
 *   (bool), approval: {required: bool (false), expires: duration (15m)},
 *   params: {name: pattern, ...}
 * plus the keys of its type. Patterns are POSIX extended regular expressions
 * matched against the whole value (they are anchored for you).
 * @param list the `actions` node; NULL or null is an empty list.
 * @return VIGIL_OK; or with a located message ("file:12:5: actions[1].argv[2]:
 *         ..."): VIGIL_ETYPE, VIGIL_EMISSING (name, type), VIGIL_EUNKNOWNKEY,
 *         VIGIL_EUNSUPPORTED (unknown type, URL scheme), VIGIL_EVALUE (bad
 *         pattern, duration, signal, unit glob, path...), VIGIL_EEXISTS (two
 *         actions of one name), VIGIL_EPERM (user/group without root),
 *         VIGIL_ENOTFOUND (unknown user or group), VIGIL_EENV (a token_env or
 *         secret_env variable not set), VIGIL_ENOMEM, or what a type's create
 *         returns.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_action_registry_configure(vigil_action_registry *registry, const vigil_config_node *list);

/**
 * Configures one action from its map (as one entry of
 * vigil_action_registry_configure()). @return as that function.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_action_registry_add(vigil_action_registry *registry, const vigil_config_node *action);

/**
 * A configured action, as vigil_action_registry_info() and _find() describe
 * it. Strings and arrays are borrowed from the registry and stay valid until
 * it is freed. @since 0.1.0
 */
typedef struct vigil_action_info {
    unsigned int version;              /**< set by the caller: VIGIL_ACTION_INFO_VERSION */
    const char *name;                  /**< configured name */
    const char *type;                  /**< type name, e.g. "exec" */
    const char *targets;               /**< the targets pattern as configured */
    int64_t timeout_ms;                /**< after max_timeout_ms */
    int dry_run;                       /**< the action's own dry_run */
    int approval_required;             /**< approval.required */
    int64_t approval_expires_ms;       /**< approval.expires */
    size_t nparams;                    /**< allowed parameters */
    const char *const *param_names;    /**< nparams names */
    const char *const *param_patterns; /**< nparams patterns, as configured */
    const char *file;                  /**< where it was configured, or NULL */
    unsigned int line;
} vigil_action_info;

#define VIGIL_ACTION_INFO_VERSION 1
#define VIGIL_ACTION_INFO_INIT                                                          \
    {                                                                                   \
        VIGIL_ACTION_INFO_VERSION, NULL, NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, 0 \
    }

/** Number of configured actions. Thread-safe after configuration. @since 0.1.0 */
VIGIL_EXTERN(size_t) vigil_action_registry_count(const vigil_action_registry *registry);

/**
 * Describes action @p index (configuration order).
 * @return VIGIL_OK, VIGIL_EINVAL, VIGIL_EVERSION (unknown @c out->version),
 *         VIGIL_ENOTFOUND (index out of range).
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_action_registry_info(const vigil_action_registry *registry, size_t index,
                           vigil_action_info *out);

/**
 * Describes the action named @p name. @return VIGIL_OK, VIGIL_EINVAL,
 * VIGIL_EVERSION (unknown @c out->version),
 * VIGIL_ENOTFOUND ("no action named \"x\""). @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_action_registry_find(const vigil_action_registry *registry, const char *name,
                           vigil_action_info *out);

/**
 * Checks @p request against its action's allowlists and the action type's
 * own validation, without running anything. This is the `not_allowed` guard.
 * @param result when not NULL, receives (cleared first) a REFUSED result with
 *        reason "not_allowed" and the message as output when the request is
 *        refused; it is left cleared with the id set otherwise.
 * @return VIGIL_OK; VIGIL_EPERM when refused (message says why, e.g.
 *         "restart_demo: target \"a;b\" does not match ^demo$"),
 *         VIGIL_ENOTFOUND for an unknown action (also REFUSED, "not_allowed"),
 *         VIGIL_EINVAL (NULL arguments), VIGIL_EVERSION (unknown request
 *         or result version), VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_action_registry_validate(const vigil_action_registry *registry,
                               const vigil_action_request *request, vigil_action_result *result);

/** Options of one execution. @since 0.1.0 */
typedef struct vigil_action_exec_options {
    unsigned int version;          /**< VIGIL_ACTION_EXEC_OPTIONS_VERSION */
    vigil_action_cancel_cb cancel; /**< NULL: never cancelled */
    void *cancel_payload;
    int64_t timeout_ms; /**< > 0: shorter timeout than the action's; 0: the action's */
} vigil_action_exec_options;

#define VIGIL_ACTION_EXEC_OPTIONS_VERSION 1
#define VIGIL_ACTION_EXEC_OPTIONS_INIT                   \
    {                                                    \
        VIGIL_ACTION_EXEC_OPTIONS_VERSION, NULL, NULL, 0 \
    }

/**
 * Fills @p opts with defaults. @return VIGIL_OK, VIGIL_EINVAL (NULL @p opts) or
 * VIGIL_EVERSION (@p version 0 or newer than this library's). @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_action_exec_options_init(vigil_action_exec_options *opts, unsigned int version);

/**
 * Carries out @p request: validates it (as vigil_action_registry_validate()),
 * then, when the request or the action is a dry run, returns a DRY_RUN result
 * describing what would have run; otherwise runs the action type with the
 * action's timeout and blocks until it finishes. Guards other than the
 * allowlist (cooldown, budget, approval...) are the remediator's business.
 * @param result cleared first, then always filled (id copied from the
 *        request) unless the return is VIGIL_EINVAL or VIGIL_EVERSION
 *        (unknown result version).
 * @param opts NULL for defaults.
 * @return VIGIL_OK when the action was carried out or dry-run: the status is
 *         SUCCEEDED, FAILED, TIMEOUT or DRY_RUN; VIGIL_EPERM / VIGIL_ENOTFOUND
 *         when refused (status REFUSED, reason "not_allowed"); VIGIL_EINVAL;
 *         VIGIL_ENOMEM or another negative code when the library itself
 *         failed (status FAILED, reason "internal_error").
 * Thread-safe: many requests may run at once, also on the same action.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_action_registry_execute(vigil_action_registry *registry, const vigil_action_request *request,
                              const vigil_action_exec_options *opts, vigil_action_result *result);

/**
 * Reaps supervised programs (process actions) that have exited, without
 * blocking, and gives every action type its periodic maintenance.
 * Thread-safe. @return VIGIL_OK or VIGIL_EINVAL. @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_action_registry_reap(vigil_action_registry *registry);

/* ---- dispatch: how requests travel from a policy engine to a remediator -- */

/**
 * Receives the result of a dispatched request, exactly once per accepted
 * submit, possibly on another thread. @p result is borrowed for the call
 * (copy it with vigil_action_result_copy() to keep it); its status may be
 * PENDING_APPROVAL, in which case the final result arrives later by another
 * path (the hub's POST /v1/actions/{id}/result).
 * @since 0.1.0
 */
typedef void (*vigil_action_done_cb)(const vigil_action_result *result, void *payload);

/**
 * A dispatcher: something that carries action requests to a remediator and
 * reports their results. The hub has an HTTP one (signed POST /v1/execute)
 * and the remediator provides an in-process one (vigil/remediator.h); an
 * embedder may supply its own. The struct is copied by whoever takes it;
 * @c self must outlive that user.
 * @since 0.1.0
 */
typedef struct vigil_action_dispatcher {
    unsigned int version; /**< VIGIL_ACTION_DISPATCHER_VERSION */
    void *self;           /**< passed to every callback */
    /**
     * Queues @p request (borrowed; copy what you keep) and returns without
     * waiting for it to run. On VIGIL_OK, @p done is called exactly once with
     * the result; on an error it is never called. Must be thread-safe.
     * @return VIGIL_OK, VIGIL_EOVERLOADED (queue full), VIGIL_ECLOSED
     *         (shutting down), VIGIL_EINVAL, VIGIL_ENOMEM.
     */
    int (*submit)(void *self, const vigil_action_request *request, vigil_action_done_cb done,
                  void *payload);
} vigil_action_dispatcher;

#define VIGIL_ACTION_DISPATCHER_VERSION 1
#define VIGIL_ACTION_DISPATCHER_INIT                \
    {                                               \
        VIGIL_ACTION_DISPATCHER_VERSION, NULL, NULL \
    }

#ifdef __cplusplus
}
#endif

#endif
