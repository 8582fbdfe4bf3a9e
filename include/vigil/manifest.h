/*
 * vigil/manifest.h - host manifests (GitOps): load the YAML manifests of a
 * checkout, validate every resource with its type, observe the host, diff
 * desired against observed state, and build the bodies gitopsd publishes to
 * the hub (PUT /v1/desired, PUT /v1/policies, POST /v1/drift). An
 * orchestrator embeds it without the daemon. docs/manifests.md describes the
 * format and the built-in resource types.
 *
 * A manifest file holds one or more YAML documents ("---"), each a resource:
 *
 *   apiVersion: vigil/v1
 *   kind: File                              # Service | File | Sysctl | Policy | registered
 *   metadata: {name: motd, labels: {tier: web}}
 *   spec: {path: /etc/motd, source: files/motd, mode: "0644", selfHeal: true}
 *
 * Unknown top-level keys are refused; metadata.name matches
 * [a-z0-9]([-a-z0-9.]*[a-z0-9])? (at most 253 bytes); a (kind, name) pair
 * appears once across all files. Every error is located:
 * "hosts/web/app.yaml:7:11: spec.mode: expected an octal mode such as \"0644\"",
 * with file (relative to the root), line and column in vigil_error_last().
 *
 * Safety: a manifest is untrusted input. Source directories, listed files and
 * every repository path a resource names stay inside the root: no "..", no
 * absolute source path, and no symlink that resolves outside (each path is
 * resolved with realpath() and its prefix checked). Files, documents per
 * file, resources, nodes and nesting depth are limited; YAML aliases are
 * expanded as copies counted against the node limit, so an alias bomb fails
 * with VIGIL_ELIMIT. ${VAR} is never expanded in a manifest (a repository
 * must not read the daemon's environment).
 *
 * Threads: vigil_manifest_load() may run on any thread. A loaded manifest is
 * immutable: its accessors and the body builders may be called from several
 * threads at once. vigil_manifest_observe() calls the types' observe, diff
 * and heal callbacks on the calling thread; two observes of one manifest may
 * run at once when the types allow it (the built-in ones do). A drift report
 * is immutable too. Registries follow docs/plugins.md: register from one
 * thread, then only read.
 */
#ifndef VIGIL_MANIFEST_H
#define VIGIL_MANIFEST_H

#include "vigil/buf.h"
#include "vigil/common.h"
#include "vigil/log.h"
#include "vigil/types.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A set of loaded manifests (opaque, immutable). @since 0.3.0 */
typedef struct vigil_manifest vigil_manifest;

/** One resource of a manifest, borrowed from it (opaque). @since 0.3.0 */
typedef struct vigil_resource vigil_resource;

/** A registry of resource types (opaque; vtable in <vigil/sys/resource.h>). @since 0.3.0 */
typedef struct vigil_resource_registry vigil_resource_registry;

/** A resource type (vtable in <vigil/sys/resource.h>). @since 0.3.0 */
typedef struct vigil_resource_type vigil_resource_type;

/** The result of observing and diffing every resource (opaque, immutable). @since 0.3.0 */
typedef struct vigil_drift vigil_drift;

/** The state of one resource after observe and diff. @since 0.3.0 */
typedef enum vigil_resource_status {
    VIGIL_RESOURCE_IN_SYNC = 0, /**< "in_sync": observed equals desired */
    VIGIL_RESOURCE_DRIFTED = 1, /**< "drifted": it exists but differs */
    VIGIL_RESOURCE_MISSING = 2, /**< "missing": it does not exist on the host */
    VIGIL_RESOURCE_ERROR = 3    /**< "error": it could not be observed */
} vigil_resource_status;

/**
 * The wire name of a status ("in_sync", "drifted", "missing", "error"), or
 * "unknown". Never NULL. @since 0.3.0
 */
VIGIL_EXTERN(const char *) vigil_resource_status_name(vigil_resource_status status);

/**
 * Creates an empty registry of resource types. The built-in kinds (Service,
 * File, Sysctl, Policy) are not in it: every loader knows them, and
 * registering one of their names is VIGIL_EEXISTS.
 * @param out receives the registry, the caller's; free with
 *        vigil_resource_registry_free().
 * @return VIGIL_OK, VIGIL_EINVAL (NULL @p out) or VIGIL_ENOMEM.
 * @since 0.3.0
 */
VIGIL_EXTERN(int) vigil_resource_registry_new(vigil_resource_registry **out);

/**
 * Frees a registry and runs the payload_free of every type registered on it.
 * Every manifest loaded with it must have been freed first. NULL is a no-op.
 * @since 0.3.0
 */
VIGIL_EXTERN(void) vigil_resource_registry_free(vigil_resource_registry *registry);

/** Number of types registered (built-in kinds not included). @since 0.3.0 */
VIGIL_EXTERN(size_t) vigil_resource_registry_count(const vigil_resource_registry *registry);

/** Name of registered type @p index (registration order), or NULL. @since 0.3.0 */
VIGIL_EXTERN(const char *)
vigil_resource_registry_name_at(const vigil_resource_registry *registry, size_t index);

/** The version of vigil_manifest_options this header describes. @since 0.3.0 */
#define VIGIL_MANIFEST_OPTIONS_VERSION 1

/**
 * What to load and how. Zero fields take the defaults given. Strings are
 * borrowed during vigil_manifest_load() only (the manifest keeps copies).
 * @since 0.3.0
 */
typedef struct vigil_manifest_options {
    unsigned int version; /**< VIGIL_MANIFEST_OPTIONS_VERSION */
    /** Required: the directory every path is relative to and must stay in (a
     * checkout). Resolved with realpath() once. */
    const char *root;
    /** NULL-terminated list of directories relative to @c root whose *.yaml and
     * *.yml files are loaded, recursively, in byte order of their relative
     * paths. A directory that does not exist is VIGIL_ENOTFOUND. NULL (and no
     * @c files): the root itself. */
    const char *const *sources;
    /** NULL-terminated list of files relative to @c root, loaded in the order
     * given, after those of @c sources. */
    const char *const *files;
    /** Types besides the built-in kinds (borrowed; must outlive the manifest). */
    const vigil_resource_registry *resource_types;
    size_t max_file_size;   /**< bytes in one manifest file; 0: 4 MiB */
    size_t max_documents;   /**< documents in one file; 0: 1000 */
    size_t max_resources;   /**< resources in all files; 0: 20,000 */
    size_t max_files;       /**< manifest files; 0: 10,000 */
    unsigned int max_depth; /**< nesting of lists and maps; 0: 32 */
    size_t max_nodes;       /**< YAML nodes of one file after alias expansion; 0: 200,000 */
    size_t max_source_size; /**< bytes of a File's source or content; 0: 16 MiB */
    const char *proc_root;  /**< where /proc is (tests use a fake tree); NULL: "/proc" */
    const char *sys_root;   /**< where /sys is; NULL: "/sys" */
    /** The systemctl program a Service with `unit` is observed with (argv
     * only, no shell: `systemctl show --property=... -- UNIT`); NULL:
     * "/usr/bin/systemctl" when it exists, else "/bin/systemctl". */
    const char *systemctl;
    vigil_logger logger;  /**< where types log; all zero: stderr, info */
    vigil_clock_cb clock; /**< epoch milliseconds; NULL: the real-time clock */
    void *clock_payload;
    vigil_getenv_cb getenv; /**< handed to types; NULL: getenv(3) */
    void *getenv_payload;
    /** Code policy kinds a Policy resource may name besides the built-in
     * ones (borrowed during the load); NULL: none. */
    const vigil_policy_registry *policy_types;
} vigil_manifest_options;

/** vigil_manifest_options with every default. @since 0.3.0 */
#define VIGIL_MANIFEST_OPTIONS_INIT                                                              \
    {                                                                                            \
        VIGIL_MANIFEST_OPTIONS_VERSION, NULL, NULL, NULL, NULL, 0, 0, 0, 0, 0, 0, 0, NULL, NULL, \
            NULL, VIGIL_LOGGER_INIT, NULL, NULL, NULL, NULL, NULL                                \
    }

/**
 * Initialises @p opts to the defaults of @p version.
 * @return VIGIL_OK, VIGIL_EINVAL (NULL), VIGIL_EVERSION.
 * @since 0.3.0
 */
VIGIL_EXTERN(int) vigil_manifest_options_init(vigil_manifest_options *opts, unsigned int version);

/**
 * Loads and validates every manifest of @p opts: all or nothing (the first
 * error fails the load, and no resource of a failed load is visible).
 * @param out receives the manifest, the caller's; free with
 *        vigil_manifest_free(). NULL on failure.
 * @return VIGIL_OK; VIGIL_EINVAL (NULL argument, no root); VIGIL_EVERSION
 *         (options version); VIGIL_ENOTFOUND (root, source directory or
 *         listed file missing; a `source` file missing); VIGIL_EPERM (a path
 *         escapes the root: "..", absolute, or a symlink resolving outside);
 *         VIGIL_ELIMIT (file size, files, documents, resources, nodes, depth;
 *         alias bombs); VIGIL_EYAML, VIGIL_EALIAS, VIGIL_EENCODING (as
 *         vigil_config_load_file()); VIGIL_EVALUE (apiVersion, metadata.name,
 *         a spec value); VIGIL_EUNSUPPORTED (unknown kind); VIGIL_EUNKNOWNKEY;
 *         VIGIL_EMISSING; VIGIL_ETYPE; VIGIL_EEXISTS (duplicate kind and
 *         name, naming both places); VIGIL_EIO; VIGIL_ENOMEM; or what a
 *         type's parse returns. The message is located ("file:line:col: ...").
 * @since 0.3.0
 */
VIGIL_EXTERN(int) vigil_manifest_load(vigil_manifest **out, const vigil_manifest_options *opts);

/** Frees a manifest and its resources (types' destroy callbacks). NULL: no-op. @since 0.3.0 */
VIGIL_EXTERN(void) vigil_manifest_free(vigil_manifest *manifest);

/** The resolved root (realpath) the manifest was loaded from. @since 0.3.0 */
VIGIL_EXTERN(const char *) vigil_manifest_root(const vigil_manifest *manifest);

/** Number of manifest files loaded. @since 0.3.0 */
VIGIL_EXTERN(size_t) vigil_manifest_file_count(const vigil_manifest *manifest);

/** Manifest file @p index (relative to the root, load order), or NULL. @since 0.3.0 */
VIGIL_EXTERN(const char *) vigil_manifest_file_at(const vigil_manifest *manifest, size_t index);

/** Number of resources. @since 0.3.0 */
VIGIL_EXTERN(size_t) vigil_manifest_count(const vigil_manifest *manifest);

/**
 * Resource @p index, in load order (files in order, documents in file
 * order), borrowed from the manifest; NULL out of range. @since 0.3.0
 */
VIGIL_EXTERN(const vigil_resource *)
vigil_manifest_at(const vigil_manifest *manifest, size_t index);

/** The resource of @p kind and @p name, or NULL. @since 0.3.0 */
VIGIL_EXTERN(const vigil_resource *)
vigil_manifest_find(const vigil_manifest *manifest, const char *kind, const char *name);

/** @name Resource accessors (borrowed from the manifest; NULL resource: NULL / 0) @since 0.3.0 */
/**@{*/
VIGIL_EXTERN(const char *) vigil_resource_kind(const vigil_resource *resource);
VIGIL_EXTERN(const char *) vigil_resource_name(const vigil_resource *resource);
/** spec.selfHeal: non-zero when drift should be remediated (default 0). */
VIGIL_EXTERN(int) vigil_resource_self_heal(const vigil_resource *resource);
/** The manifest file (relative to the root) and the document's line and column. */
VIGIL_EXTERN(const char *) vigil_resource_file(const vigil_resource *resource);
VIGIL_EXTERN(unsigned int) vigil_resource_line(const vigil_resource *resource);
VIGIL_EXTERN(unsigned int) vigil_resource_column(const vigil_resource *resource);
/** metadata.labels: how many, and key / value @p index (file order). */
VIGIL_EXTERN(size_t) vigil_resource_label_count(const vigil_resource *resource);
VIGIL_EXTERN(const char *)
vigil_resource_label_key_at(const vigil_resource *resource, size_t index);
VIGIL_EXTERN(const char *)
vigil_resource_label_value_at(const vigil_resource *resource, size_t index);
/** The value of label @p key, or NULL. */
VIGIL_EXTERN(const char *) vigil_resource_label(const vigil_resource *resource, const char *key);
/** The normalised spec as compact JSON text (an object; selfHeal not in it). */
VIGIL_EXTERN(const char *) vigil_resource_spec_json(const vigil_resource *resource);
/** The state the type's parse returned (for a registered type's own use). */
VIGIL_EXTERN(const void *) vigil_resource_spec(const vigil_resource *resource);
/**@}*/

/**
 * Writes the resource's target, "<host>/<Kind>/<name>", into @p buf.
 * @return VIGIL_OK; VIGIL_EINVAL (NULL argument, empty host or a host holding
 *         '/'); VIGIL_ERANGE (@p size too small; @p buf holds "").
 * @since 0.3.0
 */
VIGIL_EXTERN(int)
vigil_resource_target(const vigil_resource *resource, const char *host, char *buf, size_t size);

/**
 * Writes the body of PUT /v1/desired (bulk form) into @p out (cleared first):
 * {"source":host,"revision":rev,"resources":[{"target","kind","name","labels",
 * "selfHeal","spec"}]} with every resource except Policy ones, in load order.
 * @param revision the commit id (any string up to 128 bytes; "" allowed).
 * @return VIGIL_OK, VIGIL_EINVAL (NULL argument, bad host), VIGIL_ELIMIT
 *         (revision too long), VIGIL_ENOMEM.
 * @since 0.3.0
 */
VIGIL_EXTERN(int)
vigil_manifest_desired_body(const vigil_manifest *manifest, const char *host, const char *revision,
                            vigil_buf *out);

/**
 * Writes the body of PUT /v1/policies into @p out (cleared first):
 * {"source":host,"revision":rev,"policies":[rule, ...]}, each rule the spec
 * of a Policy resource as a JSON object with the keys of a YAML rule
 * (metadata.name is its `name`). Codes as vigil_manifest_desired_body().
 * @since 0.3.0
 */
VIGIL_EXTERN(int)
vigil_manifest_policies_body(const vigil_manifest *manifest, const char *host, const char *revision,
                             vigil_buf *out);

/** Number of Policy resources (those vigil_manifest_policies_body() writes). @since 0.3.0 */
VIGIL_EXTERN(size_t) vigil_manifest_policy_count(const vigil_manifest *manifest);

/**
 * Writes the desired bytes of every File resource with `source` or
 * `content` to "<dir>/<sha256>" unless that file exists already: written to
 * a temporary file in @p dir, fsynced, renamed into place, mode 0644. @p dir
 * is created (mode 0755) when missing, its parent must exist.
 * @param written receives how many blobs were written (may be NULL).
 * @return VIGIL_OK; VIGIL_EINVAL; VIGIL_EIO (with the path and strerror);
 *         VIGIL_ECORRUPT (a source changed since load: its sha256 differs);
 *         VIGIL_ENOMEM.
 * Thread-safe against other calls on the manifest; two calls writing one
 * directory at once are safe too (rename is atomic).
 * @since 0.3.0
 */
VIGIL_EXTERN(int)
vigil_manifest_write_blobs(const vigil_manifest *manifest, const char *dir, size_t *written);

/**
 * Observes the host for every resource whose type has observe (not Policy),
 * diffs each against its desired state, and asks the type how to heal each
 * self-healing drifted or missing one. A resource that cannot be observed
 * is an item with status error and the message; it does not fail the call.
 * @param out receives the report, the caller's; free with vigil_drift_free().
 * @param host the agent id targets are built with ("<host>/<Kind>/<name>").
 * @return VIGIL_OK, VIGIL_EINVAL (NULL argument, bad host), VIGIL_ENOMEM.
 * @since 0.3.0
 */
VIGIL_EXTERN(int)
vigil_manifest_observe(vigil_drift **out, const vigil_manifest *manifest, const char *host);

/** Frees a drift report. NULL is a no-op. @since 0.3.0 */
VIGIL_EXTERN(void) vigil_drift_free(vigil_drift *drift);

/** Number of items (one per observed resource, load order). @since 0.3.0 */
VIGIL_EXTERN(size_t) vigil_drift_count(const vigil_drift *drift);

/** Items whose status is drifted or missing. @since 0.3.0 */
VIGIL_EXTERN(size_t) vigil_drift_drifted(const vigil_drift *drift);

/** Items whose status is error. @since 0.3.0 */
VIGIL_EXTERN(size_t) vigil_drift_errors(const vigil_drift *drift);

/** When the observation was made (the manifest's clock, epoch ms). @since 0.3.0 */
VIGIL_EXTERN(int64_t) vigil_drift_observed_ms(const vigil_drift *drift);

/** The version of vigil_drift_item this header describes. @since 0.3.0 */
#define VIGIL_DRIFT_ITEM_VERSION 1

/**
 * One item of a drift report. Strings are borrowed from the report.
 * @since 0.3.0
 */
typedef struct vigil_drift_item {
    unsigned int version; /**< set by the caller: VIGIL_DRIFT_ITEM_VERSION */
    const char *target;   /**< "<host>/<Kind>/<name>" */
    const char *kind;
    const char *name;
    vigil_resource_status status;
    int self_heal;     /**< the resource's selfHeal */
    size_t diff_count; /**< entries for vigil_drift_diff_at() */
    const char *error; /**< with status error: why; else NULL */
    /** {"action","target","params":{...}} when self_heal is set, the status
     * is drifted or missing and the type knows how to heal it; else NULL. */
    const char *heal_json;
    const char *item_json; /**< the item as in the POST /v1/drift body */
} vigil_drift_item;

/** A drift item with no content. @since 0.3.0 */
#define VIGIL_DRIFT_ITEM_INIT                                                                      \
    {                                                                                              \
        VIGIL_DRIFT_ITEM_VERSION, NULL, NULL, NULL, VIGIL_RESOURCE_IN_SYNC, 0, 0, NULL, NULL, NULL \
    }

/**
 * Describes item @p index.
 * @return VIGIL_OK, VIGIL_EINVAL (NULL), VIGIL_EVERSION (@c out->version),
 *         VIGIL_ENOTFOUND (index out of range).
 * @since 0.3.0
 */
VIGIL_EXTERN(int)
vigil_drift_item_at(const vigil_drift *drift, size_t index, vigil_drift_item *out);

/**
 * Entry @p index of item @p item's diff: the field and the desired and
 * observed values as JSON scalar text ("\"0644\"", "3", "true", "null"), all
 * borrowed from the report.
 * @return VIGIL_OK, VIGIL_EINVAL (NULL argument), VIGIL_ENOTFOUND.
 * @since 0.3.0
 */
VIGIL_EXTERN(int)
vigil_drift_diff_at(const vigil_drift *drift, size_t item, size_t index, const char **field,
                    const char **desired_json, const char **observed_json);

/**
 * Writes the body of POST /v1/drift into @p out (cleared first):
 * {"source":host,"revision":rev,"observed":ms,"items":[item, ...]}.
 * @return VIGIL_OK, VIGIL_EINVAL (NULL argument), VIGIL_ELIMIT (revision
 *         longer than 128 bytes), VIGIL_ENOMEM.
 * @since 0.3.0
 */
VIGIL_EXTERN(int) vigil_drift_body(const vigil_drift *drift, const char *revision, vigil_buf *out);

#ifdef __cplusplus
}
#endif

#endif
