/*
 * vigil/sys/collector.h - the collector plug-in interface. Include it on
 * purpose to write a collector type; the built-in collectors use exactly this
 * interface.
 *
 * A type is a versioned vtable registered on a vigil_collector_registry under
 * its name. For every `collectors:` entry whose `type` names it, the instance
 * (vigil_collector, <vigil/collector.h>) calls:
 *
 *   create    once, with the entry's config map and a context; returns state.
 *   collect   at each due time: append samples to the batch.
 *   poll_fd   optional: a descriptor the agent polls for readability.
 *   on_event  optional: called when that descriptor is readable.
 *   destroy   once, when the instance is freed (never after a failed create).
 *
 * The instance owns the keys `type`, `name`, `interval` and `tags`; the type
 * reads its own keys from the same map and lists them in @c keys so unknown
 * keys are refused before create runs. The instance adds the configured tags
 * to every sample; the type adds only its own (e.g. cpu="0"). Each callback is
 * called from one thread at a time for a given state.
 *
 * Failures. A callback that fails returns a negative vigil_status and records
 * a message, with vigil_error_set_at() during create (located in the file) or
 * vigil_error_set() later. The instance turns a failed collect into a
 * vigil_collector_error sample carrying that message and backs off; a type
 * never needs to emit error samples itself. It may still add a sample with
 * `error` set for one failing part (one mount, one check) and return VIGIL_OK.
 * Samples a failing collect appended before it failed are discarded.
 */
#ifndef VIGIL_SYS_COLLECTOR_H
#define VIGIL_SYS_COLLECTOR_H

#include "vigil/collector.h"
#include "vigil/sys/errors.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * The version of vigil_collector_type this header describes. Version 2 (0.2.0)
 * put the fields every plug-in kind shares first (version, name, payload,
 * payload_free); version 1 is refused with VIGIL_EVERSION.
 * @since 0.1.0
 */
#define VIGIL_COLLECTOR_TYPE_VERSION 2

/** The version of vigil_collector_context this header describes. @since 0.1.0 */
#define VIGIL_COLLECTOR_CONTEXT_VERSION 1

/** @name Type flags @since 0.1.0 */
/**@{*/
/** The type computes rates: its first collection adds no rate samples, so a
 *  one-shot run should collect twice, a short time apart. */
#define VIGIL_COLLECTOR_RATES 0x1u
/** The type may expose a descriptor through poll_fd. */
#define VIGIL_COLLECTOR_EVENTS 0x2u
/**@}*/

/**
 * What create receives besides its config. The context and its strings stay
 * valid until destroy returns, so a type may keep the pointer.
 * @since 0.1.0
 */
typedef struct vigil_collector_context {
    unsigned int version;       /**< VIGIL_COLLECTOR_CONTEXT_VERSION */
    const vigil_logger *logger; /**< log through this (never NULL) */
    const char *proc_root;      /**< procfs mount, e.g. "/proc" (never NULL) */
    const char *sys_root;       /**< sysfs mount, e.g. "/sys" (never NULL) */
    const char *base_dir;       /**< absolute; resolve relative paths against it (never NULL) */
    const char *name;           /**< `name` from the config, or NULL when absent */
    int64_t interval_ms;        /**< the instance's interval */
    void *type_payload;         /**< vigil_collector_type.payload (may be NULL) */
    /** The exec allow-list of the options (NULL-terminated), or NULL for none. */
    const char *const *exec_allow;
} vigil_collector_context;

/**
 * A collector type. vigil_collector_register() copies the struct and the name,
 * so it may live on the stack. The first four fields are those of every
 * plug-in kind (docs/plugins.md) and never move; later fields are only ever
 * added at the end, with a new version.
 * @since 0.1.0
 */
struct vigil_collector_type {
    unsigned int version; /**< VIGIL_COLLECTOR_TYPE_VERSION */
    /** The name used as `type:` in configuration: [a-z][a-z0-9_]*, at most 64 bytes. */
    const char *name;
    /** Handed to create as ctx->type_payload; owned by the registry once registered. */
    void *payload;
    /** Optional. Frees @c payload when the registry is freed, or at once when
     *  registration fails. */
    vigil_free_cb payload_free;
    unsigned int flags; /**< VIGIL_COLLECTOR_* flags */
    /** NULL-terminated list of the type's own config keys, or NULL for none. */
    const char *const *keys;

    /**
     * Creates the state of one instance. @p config is the entry's map
     * (borrowed only during the call). On failure, return a negative code with
     * a located message and leave *state unset; destroy is not called.
     * Required.
     */
    int (*create)(void **state, const vigil_config_node *config,
                  const vigil_collector_context *ctx);

    /**
     * Appends this collection's samples to @p out (with vigil_batch_add(),
     * timestamp @p now_ms; zero samples is fine). Return VIGIL_OK or a
     * negative code with a message (vigil_error_set()). Required.
     */
    int (*collect)(void *state, vigil_batch *out, int64_t now_ms);

    /**
     * Returns a descriptor to poll for readability, or -1. It must stay the
     * same from create to destroy and is owned by the state. Optional (NULL: -1).
     */
    int (*poll_fd)(void *state);

    /**
     * Handles what is pending on the poll_fd descriptor without blocking and
     * appends the resulting samples. Optional; required when poll_fd can return
     * a descriptor.
     */
    int (*on_event)(void *state, vigil_batch *out, int64_t now_ms);

    /** Releases the state and everything it holds. Required. */
    void (*destroy)(void *state);
};

/**
 * Registers @p type under its name. The struct and the name are copied; the
 * payload belongs to the registry from this call on: payload_free (when set)
 * runs when the registry is freed, or before this function returns when
 * registration fails, whatever the reason, so the caller never cleans up
 * after a failed call.
 * @return VIGIL_OK; VIGIL_EINVAL (NULL registry or type, missing create,
 *         collect or destroy, poll_fd without on_event); VIGIL_EVERSION (a
 *         version other than VIGIL_COLLECTOR_TYPE_VERSION); VIGIL_ENAME (bad
 *         name); VIGIL_EEXISTS (a type of that name is registered, or
 *         built in: "collector type \"cpu\" is built in"); VIGIL_ENOMEM.
 * Not thread-safe against other calls on the same registry.
 * @since 0.2.0
 */
VIGIL_EXTERN(int)
vigil_collector_register(vigil_collector_registry *registry, const vigil_collector_type *type);

#ifdef __cplusplus
}
#endif

#endif
