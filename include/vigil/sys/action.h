/*
 * vigil/sys/action.h - the action type plug-in interface. An action type
 * ("exec", "webhook", or your own) is a versioned vtable registered on a
 * vigil_action_registry; each configured action of that type gets its own
 * state from create(). The built-in types use this same interface.
 *
 * Life cycle of one configured action:
 *   create()   once, when the action is configured, from its config map;
 *   validate() before every execution (and by vigil_action_registry_validate()),
 *              after the registry checked the target and parameter allowlists;
 *   describe() for dry runs (optional);
 *   execute()  to carry a request out;
 *   reap()     now and then, from vigil_action_registry_reap() (optional);
 *   destroy()  once, when the registry is freed or a configure call fails.
 * validate(), describe(), execute() and reap() may be called from several
 * threads at once, also on the same state: a type that cannot allow that
 * must serialise internally.
 */
#ifndef VIGIL_SYS_ACTION_H
#define VIGIL_SYS_ACTION_H

#include "vigil/action.h"
#include "vigil/common.h"
#include "vigil/config.h"
#include "vigil/sys/errors.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * What create() gets besides the action's config map. Valid during create()
 * only, except @c logger, @c host, the callbacks and their payloads, which
 * stay valid until destroy() returns. Fields are never NULL unless noted.
 * @since 0.1.0
 */
typedef struct vigil_action_context {
    unsigned int version;       /**< VIGIL_ACTION_CONTEXT_VERSION */
    const char *action_name;    /**< the configured name */
    const vigil_logger *logger; /**< the registry's logger */
    const char *base_dir;       /**< absolute, or NULL: relative paths are an error */
    const char *host;           /**< the host name */
    int64_t timeout_ms;         /**< the action's `timeout` */
    vigil_getenv_cb getenv;     /**< reads the environment */
    void *getenv_payload;
    vigil_clock_cb clock; /**< wall clock in ms */
    void *clock_payload;
    void *type_payload; /**< vigil_action_type.payload, may be NULL */
    /** Absolute directory where actions keep their own records (the
     * process type: what it started), or NULL: keep none. The directory may
     * not exist yet. @since 0.2.0 */
    const char *state_dir;
} vigil_action_context;

#define VIGIL_ACTION_CONTEXT_VERSION 1

/**
 * What execute() gets besides the request. @c deadline_ms is on
 * CLOCK_MONOTONIC, in milliseconds (clock_gettime(CLOCK_MONOTONIC) seconds
 * * 1000 + nanoseconds / 1000000): stop and report VIGIL_ACTION_TIMEOUT when
 * it passes. @c cancel may be NULL; when set, poll it at least every 50 ms
 * while waiting and stop (FAILED, reason "cancelled") when it returns non-zero.
 * @since 0.1.0
 */
typedef struct vigil_action_exec {
    unsigned int version; /**< VIGIL_ACTION_EXEC_VERSION */
    int64_t deadline_ms;
    int64_t timeout_ms; /**< the timeout the deadline was computed from */
    vigil_action_cancel_cb cancel;
    void *cancel_payload;
} vigil_action_exec;

#define VIGIL_ACTION_EXEC_VERSION 1

/**
 * An action type. Only @c version, @c name, @c create and @c execute are
 * required. vigil_action_register() copies the struct and the name. The
 * first four fields are those of every plug-in kind (docs/plugins.md) and
 * never move; later fields are only ever added at the end, with a new
 * version.
 * @since 0.1.0
 */
typedef struct vigil_action_type {
    unsigned int version; /**< VIGIL_ACTION_TYPE_VERSION */
    /** Type name used by `type:` in the config: [a-z][a-z0-9_]*, at most 64
     * bytes. */
    const char *name;
    /** Passed to create() as ctx->type_payload; owned by the registry once
     * registered. */
    void *payload;
    /** Optional. Frees @c payload when the registry is freed, or at once
     * when registration fails. */
    vigil_free_cb payload_free;
    /** NULL-terminated list of the config keys this type accepts besides the
     * common ones (name, type, targets, timeout, dry_run, approval, params);
     * any other key is refused with VIGIL_EUNKNOWNKEY. NULL: none. */
    const char *const *keys;
    /**
     * Creates the state of one configured action from its map @p config
     * (borrowed, valid during the call only: copy what you keep). Report bad
     * values with vigil_error_set_at() so the message names the place.
     * @return VIGIL_OK with *state set (may be NULL), or a negative code;
     *         destroy() is not called when create() fails.
     */
    int (*create)(void **state, const vigil_config_node *config, const vigil_action_context *ctx);
    /**
     * Optional. Refuses a request the type cannot or must not carry out
     * (for example a required parameter missing, a unit name not allowed):
     * return VIGIL_EPERM through vigil_error_set() with a clear message.
     * The registry has already checked the target and the parameters against
     * the action's allowlists. Must not block.
     * @return VIGIL_OK or VIGIL_EPERM (or VIGIL_ENOMEM).
     */
    int (*validate)(void *state, const vigil_action_request *request);
    /**
     * Carries out @p request (already validated), blocking until done or
     * until @p exec's deadline. Fills @p result (cleared, with the id set):
     * status SUCCEEDED, FAILED or TIMEOUT, and reason, output, exit_code,
     * term_signal as they apply; the registry sets duration_ms.
     * @return VIGIL_OK whenever @p result describes the outcome, including
     *         failures; a negative code only when the type itself failed
     *         (VIGIL_ENOMEM...), which the registry reports as FAILED with
     *         reason "internal_error".
     */
    int (*execute)(void *state, const vigil_action_request *request, const vigil_action_exec *exec,
                   vigil_action_result *result);
    /** Optional. Frees the state. Must not fail. */
    void (*destroy)(void *state);
    /**
     * Optional. Appends to @p out (a vigil_buf of the caller) one line that
     * says what execute() would do with @p request, for dry runs, e.g.
     * "would run /usr/sbin/logrotate --force /etc/logrotate.d/app". Use
     * vigil_action_buf_append() to append. @return VIGIL_OK or VIGIL_ENOMEM.
     */
    int (*describe)(void *state, const vigil_action_request *request, vigil_buf *out);
    /** Optional. Periodic non-blocking maintenance, e.g. reaping children. */
    void (*reap)(void *state);
} vigil_action_type;

/**
 * The version of vigil_action_type this header describes. Version 2 (0.2.0)
 * put the fields every plug-in kind shares first; version 1 is refused with
 * VIGIL_EVERSION.
 * @since 0.1.0
 */
#define VIGIL_ACTION_TYPE_VERSION 2

/**
 * Registers an action type. The struct and its name are copied; the payload
 * belongs to the registry from this call on: payload_free (when set) runs
 * when the registry is freed, or before this function returns when
 * registration fails, whatever the reason.
 * @return VIGIL_OK; VIGIL_EINVAL (NULL registry or type, missing create or
 *         execute); VIGIL_EVERSION (a version other than
 *         VIGIL_ACTION_TYPE_VERSION); VIGIL_ENAME (bad name); VIGIL_EEXISTS
 *         (a type of that name is registered, or built in: "action type
 *         \"exec\" is built in"); VIGIL_ENOMEM.
 * Not thread-safe with other calls on the registry.
 * @since 0.2.0
 */
VIGIL_EXTERN(int)
vigil_action_register(vigil_action_registry *registry, const vigil_action_type *type);

/**
 * Appends @p len bytes of @p data to @p buf (a vigil_buf handed to a plug-in,
 * e.g. by describe()), growing it with the library's allocator.
 * @return VIGIL_OK, VIGIL_EINVAL, VIGIL_ENOMEM. @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_action_buf_append(vigil_buf *buf, const char *data, size_t len);

#ifdef __cplusplus
}
#endif

#endif
