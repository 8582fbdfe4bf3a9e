/*
 * vigil/sys/resource.h - the resource-type interface. Include it on purpose to
 * add a kind of resource to manifests: register the type on a
 * vigil_resource_registry with vigil_resource_register(), hand the registry
 * to the loader (vigil_manifest_options.resource_types) and use its name as
 * the `kind` of a document:
 *
 *   apiVersion: vigil/v1
 *   kind: Mount                 # the registered name
 *   metadata: {name: data}
 *   spec: {path: /srv/data, selfHeal: false}   # `selfHeal` is the library's; the rest the type's
 *
 * The lifecycle of one resource: parse (at load; the spec map -> the type's
 * state, located errors), to_json (at load: the normalised spec published as
 * desired state), then at every vigil_manifest_observe(): observe (the host
 * -> an observed state), diff (desired against observed -> fields and a
 * status), heal (for a self-healing resource that drifted: which action
 * request would put it back), observed_free; destroy when the manifest is
 * freed. A type without observe and diff (as the built-in Policy) is only
 * published, never observed.
 *
 * Threads: parse runs on the thread of vigil_manifest_load(); observe, diff,
 * heal and observed_free on the thread of vigil_manifest_observe(), and two
 * observes of one manifest may run at once: keep them free of shared mutable
 * data, or lock. destroy runs on the thread of vigil_manifest_free().
 * Callbacks must not call the manifest they are called from.
 */
#ifndef VIGIL_SYS_RESOURCE_H
#define VIGIL_SYS_RESOURCE_H

#include "vigil/log.h"
#include "vigil/manifest.h"
#include "vigil/sys/errors.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * The version of vigil_resource_type this header describes. It is 2, as for
 * every plug-in kind (docs/plugins.md); any other version is refused with
 * VIGIL_EVERSION.
 * @since 0.3.0
 */
#define VIGIL_RESOURCE_TYPE_VERSION 2

/** The version of vigil_resource_context this header describes. @since 0.3.0 */
#define VIGIL_RESOURCE_CONTEXT_VERSION 1

/**
 * What the callbacks are handed: where the host's trees are, and the
 * manifest's logger, clock and environment. Owned by the library, valid
 * during the call. Strings are never NULL.
 * @since 0.3.0
 */
typedef struct vigil_resource_context {
    unsigned int version;  /**< VIGIL_RESOURCE_CONTEXT_VERSION */
    const char *root;      /**< the checkout, resolved (realpath), without a trailing '/' */
    const char *proc_root; /**< "/proc" or the options' proc_root */
    const char *sys_root;  /**< "/sys" or the options' sys_root */
    const char *systemctl; /**< the systemctl program (built-in Service) */
    const vigil_logger *logger;
    vigil_clock_cb clock; /**< epoch ms; never NULL */
    void *clock_payload;
    vigil_getenv_cb getenv; /**< never NULL */
    void *getenv_payload;
    void *type_payload; /**< the payload of the type being called */
    const char *kind;   /**< the resource's kind */
    const char *name;   /**< the resource's metadata.name */
    const char *file;   /**< its manifest file, relative to the root */
} vigil_resource_context;

/** Builds the diff of one resource (handed to diff; opaque). @since 0.3.0 */
typedef struct vigil_resource_diff vigil_resource_diff;

/** Builds the heal request of one resource (handed to heal; opaque). @since 0.3.0 */
typedef struct vigil_resource_heal vigil_resource_heal;

/**
 * A resource type. vigil_resource_register() copies the struct and the name.
 * The first four fields are those of every plug-in kind (docs/plugins.md)
 * and never move; later fields are only ever added at the end, with a new
 * version.
 * @since 0.3.0
 */
struct vigil_resource_type {
    unsigned int version; /**< VIGIL_RESOURCE_TYPE_VERSION */
    /** The kind documents name it by: [A-Z][A-Za-z0-9]*, at most 64 bytes,
     * not a built-in kind (Service, File, Sysctl, Policy). */
    const char *name;
    /** Handed to every callback as the context's type_payload; owned by the
     * registry once registered. */
    void *payload;
    /** Optional. Frees @c payload when the registry is freed, or at once when
     * registration fails. */
    vigil_free_cb payload_free;
    /** NULL-terminated list of the type's keys in `spec` (besides selfHeal,
     * which the library reads); any other key is refused before parse
     * (VIGIL_EUNKNOWNKEY). NULL: the type checks its keys itself. */
    const char *const *keys;

    /**
     * Reads the `spec` map of one resource (borrowed during the call; a map,
     * its keys already checked against @c keys) into a state of the type's
     * own. Paths into the checkout go through vigil_resource_path(). On
     * failure return a negative code with a located message
     * (vigil_error_set_at()) and leave *state unset; destroy is not called.
     * Required.
     */
    int (*parse)(void **state, const vigil_config_node *spec, const vigil_resource_context *ctx);

    /**
     * The normalised spec as JSON text: an object, borrowed from @p state
     * (build it in parse). The library checks and copies it. NULL (the
     * callback, or what it returns): the spec map as written, every scalar a
     * string.
     */
    const char *(*to_json)(const void *state);

    /**
     * Observes the host: fills *observed with a state of the type's own
     * (NULL allowed, e.g. "it does not exist"). On failure return a negative
     * code with vigil_error_set(): the item's status is error with that
     * message. Optional, with diff: both or neither.
     */
    int (*observe)(void **observed, const void *state, const vigil_resource_context *ctx);

    /**
     * Compares desired (@p state) with @p observed and records what differs
     * with vigil_resource_diff_add*(). The status is, unless the callback sets
     * one with vigil_resource_diff_status(): drifted when it added an entry,
     * else in_sync. A negative return is an error item, as for observe.
     */
    int (*diff)(vigil_resource_diff *diff, const void *state, const void *observed,
                const vigil_resource_context *ctx);

    /** Releases what observe filled. Optional (NULL: nothing to free). */
    void (*observed_free)(void *observed);

    /**
     * For a resource with selfHeal whose status is drifted or missing: says
     * which action request would put it back, with vigil_resource_heal_set()
     * and vigil_resource_heal_param(). Leaving it unset means "cannot heal";
     * a negative return is logged and leaves the item without heal.
     * Optional (NULL: the type never heals).
     */
    int (*heal)(vigil_resource_heal *heal, const void *state, const void *observed,
                const vigil_resource_context *ctx);

    /** Releases the state parse returned. Required. */
    void (*destroy)(void *state);
};

/**
 * Registers @p type under its name. The struct and the name are copied; the
 * payload belongs to the registry from this call on: payload_free (when set)
 * runs when the registry is freed, or before this function returns when
 * registration fails, whatever the reason.
 * @return VIGIL_OK; VIGIL_EINVAL (NULL registry or type; parse or destroy
 *         missing; observe without diff or diff without observe);
 *         VIGIL_EVERSION (a version other than VIGIL_RESOURCE_TYPE_VERSION);
 *         VIGIL_ENAME (bad name); VIGIL_EEXISTS (registered already, or a
 *         built-in kind: "resource type \"File\" is built in"); VIGIL_ENOMEM.
 * Not thread-safe against other calls on the same registry.
 * @since 0.3.0
 */
VIGIL_EXTERN(int)
vigil_resource_register(vigil_resource_registry *registry, const vigil_resource_type *type);

/**
 * Resolves @p rel, a path relative to the checkout named in a manifest at
 * @p at, into the absolute path of an existing file inside ctx->root:
 * refuses an empty or absolute path, a ".." component, and a path whose
 * realpath() leaves the root (a symlink pointing outside), each with
 * VIGIL_EPERM located at @p at ("spec.source: \"../x\" escapes the
 * repository root"); a path that does not exist is VIGIL_ENOTFOUND.
 * @param out receives the resolved path (NUL-terminated) in @p size bytes.
 * @return VIGIL_OK; VIGIL_EPERM; VIGIL_ENOTFOUND; VIGIL_ERANGE (@p size too
 *         small); VIGIL_EINVAL (NULL argument).
 * Thread-safe.
 * @since 0.3.0
 */
VIGIL_EXTERN(int)
vigil_resource_path(const vigil_resource_context *ctx, const vigil_config_node *at, const char *rel,
                    char *out, size_t size);

/**
 * Records that @p field differs: @p desired and @p observed are strings,
 * written as JSON strings (NULL: null). @p field is copied.
 * @return VIGIL_OK, VIGIL_EINVAL (NULL diff or field), VIGIL_ELIMIT (more
 *         than 64 entries, or a value over 4 KiB), VIGIL_ENOMEM.
 * @since 0.3.0
 */
VIGIL_EXTERN(int)
vigil_resource_diff_add(vigil_resource_diff *diff, const char *field, const char *desired,
                        const char *observed);

/** As vigil_resource_diff_add(), with integers. @since 0.3.0 */
VIGIL_EXTERN(int)
vigil_resource_diff_add_int(vigil_resource_diff *diff, const char *field, int64_t desired,
                            int64_t observed);

/**
 * Sets the status of the item (overrides the default drifted / in_sync), as
 * VIGIL_RESOURCE_MISSING for a file that does not exist.
 * @return VIGIL_OK, VIGIL_EINVAL (NULL diff, a status out of range).
 * @since 0.3.0
 */
VIGIL_EXTERN(int)
vigil_resource_diff_status(vigil_resource_diff *diff, vigil_resource_status status);

/**
 * Names the action the hub should request, and its target (NULL: the
 * resource's target "<host>/<Kind>/<name>"). Copied.
 * @return VIGIL_OK, VIGIL_EINVAL (NULL heal or action, an action not made of
 *         [A-Za-z0-9_.:-], 1 to 128 bytes), VIGIL_ENOMEM.
 * @since 0.3.0
 */
VIGIL_EXTERN(int)
vigil_resource_heal_set(vigil_resource_heal *heal, const char *action, const char *target);

/**
 * Adds a string parameter to the heal request (copied; a key given twice
 * keeps the last value).
 * @return VIGIL_OK, VIGIL_EINVAL (NULL argument), VIGIL_ELIMIT (more than 32
 *         parameters, or a value over 4 KiB), VIGIL_ENOMEM.
 * @since 0.3.0
 */
VIGIL_EXTERN(int)
vigil_resource_heal_param(vigil_resource_heal *heal, const char *key, const char *value);

#ifdef __cplusplus
}
#endif

#endif
