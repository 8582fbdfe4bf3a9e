/*
 * vigil/gitops.h - the GitOps runner: a git source (vigil/gitsync.h) synced
 * on its adaptive schedule and on demand, the manifests of the checkout
 * loaded (vigil/manifest.h), the desired state, the git-managed policies and
 * the observed drift published to a hub, and the host observed on a short
 * interval of its own. vigil-gitopsd is this runner behind the built-in HTTP
 * server; an orchestrator embeds it the same way.
 *
 * Two clocks:
 *   sync     fetch, load and publish, on min_interval..max_interval (doubling
 *            while nothing changes, back to the minimum after a change, with
 *            jitter), and at once after vigil_gitops_request_sync() (POST
 *            /v1/sync). A commit whose manifests do not load (invalid YAML,
 *            unknown kind, duplicate name...) never replaces the last valid
 *            desired state: it is reported in the status with its
 *            "file:line:col: message" and nothing is published for it.
 *   observe  observe + diff every resource of the valid desired state and
 *            POST the drift report, every observe interval (default 5 s),
 *            and at once (at most every 100 ms) when inotify reports a
 *            change to the file of a File resource.
 *
 * Publication to the hub (bearer token, scope write), each keyed by the host:
 *   PUT  <hub>/v1/desired   vigil_manifest_desired_body(), after each valid load
 *   PUT  <hub>/v1/policies  vigil_manifest_policies_body(), when the manifests
 *                           hold Policy resources or held some before
 *   POST <hub>/v1/drift     vigil_drift_body(), after each observation
 * A failed publication is retried at the next observe tick. Before each
 * publication of a valid load, the desired bytes of File resources are
 * written to the blobs directory (vigil_manifest_write_blobs()).
 *
 * Routes added by vigil_gitops_mount():
 *   POST /v1/sync    write, or a webhook's "X-Hub-Signature-256: sha256=<hex>"
 *                    (HMAC-SHA256 of the raw body with the webhook secret,
 *                    compared in constant time): 202 {"requested":true}
 *   GET  /v1/status  read: vigil_gitops_status_json()
 *
 * Threads: vigil_gitops_step() is called from one thread (the caller's own
 * loop), or vigil_gitops_start() runs that loop on a thread of the runner
 * until vigil_gitops_stop(); never both. vigil_gitops_request_sync(),
 * vigil_gitops_status_json() and the routes may be called from any thread.
 */
#ifndef VIGIL_GITOPS_H
#define VIGIL_GITOPS_H

#include "vigil/api.h"
#include "vigil/buf.h"
#include "vigil/common.h"
#include "vigil/config.h"
#include "vigil/gitsync.h"
#include "vigil/httpd.h"
#include "vigil/log.h"
#include "vigil/manifest.h"
#include "vigil/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The GitOps runner (opaque). @since 0.3.0 */
typedef struct vigil_gitops vigil_gitops;

/** Most entries of vigil_gitops_options.sources. @since 0.3.0 */
#define VIGIL_GITOPS_MAX_SOURCES 64

/**
 * Options of a runner. Initialise with VIGIL_GITOPS_OPTIONS_INIT or
 * vigil_gitops_options_init(): all zero but the version; 0 means the default.
 * Strings are copied by vigil_gitops_new().
 * @since 0.3.0
 */
typedef struct vigil_gitops_options {
    unsigned int version; /**< VIGIL_GITOPS_OPTIONS_VERSION */
    /** The git source, borrowed: it must outlive the runner, which is its
     * only user. Required. */
    vigil_gitsync *gitsync;
    /** The host (agent id) targets are built with; NULL: gethostname(). No
     * '/'; at most 253 bytes. */
    const char *host;
    /** NULL-terminated manifest directories relative to the checkout, in
     * which "${HOSTNAME}" is replaced with @c host; NULL: the checkout's
     * root. At most VIGIL_GITOPS_MAX_SOURCES. */
    const char *const *sources;
    /** Limits, resource types, proc_root, systemctl... of the manifest
     * loads (vigil_manifest_options; its root, sources, files, logger,
     * clock and getenv are set by the runner); NULL: the defaults. Borrowed
     * for vigil_gitops_new() only, but its resource_types must outlive the
     * runner. */
    const vigil_manifest_options *manifest;
    /** Where File blobs are written (<blobs_dir>/<sha256>); NULL: none. */
    const char *blobs_dir;
    /** The hub's base URL (http:// or https://); NULL: nothing published. */
    const char *hub_url;
    /** Environment variable holding the hub's bearer token (scope write);
     * NULL: no Authorization header. Read by vigil_gitops_new(). */
    const char *hub_token_env;
    /** Timeout of one request to the hub; 0: 10 s. */
    int64_t hub_timeout_ms;
    /** The sync schedule (vigil_gitsync_schedule_options): 0: 30 s, 5 min,
     * jitter 0.1 (negative: none). */
    int64_t sync_min_interval_ms;
    int64_t sync_max_interval_ms;
    double sync_jitter;
    /** Observe interval; 0: 5 s. */
    int64_t observe_interval_ms;
    /** Environment variable holding the webhook secret of POST /v1/sync;
     * NULL: signatures are not accepted. Read by vigil_gitops_new(). */
    const char *webhook_secret_env;
    /** Reads environment variables; NULL: getenv(3). */
    vigil_getenv_cb getenv;
    void *getenv_payload;
    /** Wall clock (epoch ms) of the status and the reports; NULL: real. */
    vigil_clock_cb clock;
    void *clock_payload;
    /** Monotonic clock (ms) of the two schedules; NULL: CLOCK_MONOTONIC. */
    vigil_clock_cb monotonic;
    void *monotonic_payload;
    /** Random source of the sync jitter; NULL: seeded internally. */
    vigil_gitsync_random_cb random;
    void *random_payload;
    vigil_logger logger; /**< all zero: stderr, info */
} vigil_gitops_options;

/** Current version of vigil_gitops_options. @since 0.3.0 */
#define VIGIL_GITOPS_OPTIONS_VERSION 1
/** All zero but the version. @since 0.3.0 */
#define VIGIL_GITOPS_OPTIONS_INIT                                                                \
    {                                                                                            \
        VIGIL_GITOPS_OPTIONS_VERSION, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, 0, 0.0, 0, \
            NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, VIGIL_LOGGER_INIT              \
    }

/**
 * Fills @p opts as VIGIL_GITOPS_OPTIONS_INIT does.
 * @return VIGIL_OK, VIGIL_EINVAL (NULL @p opts) or VIGIL_EVERSION.
 * @since 0.3.0
 */
VIGIL_EXTERN(int) vigil_gitops_options_init(vigil_gitops_options *opts, unsigned int version);

/**
 * Creates a runner. Nothing is fetched yet: the first vigil_gitops_step()
 * syncs at once.
 * @param out receives the runner (the caller's; vigil_gitops_free()).
 * @return VIGIL_OK; VIGIL_EINVAL (NULL argument, no gitsync, a host with '/'
 *   or empty, a source that is empty, absolute or holds ".."); VIGIL_ELIMIT
 *   (too many sources, host too long); VIGIL_ERANGE (intervals);
 *   VIGIL_EUNSUPPORTED (hub_url not http:// or https://); VIGIL_EENV (the
 *   variable of hub_token_env or webhook_secret_env is not set);
 *   VIGIL_EVERSION; VIGIL_ENOMEM; VIGIL_EIO.
 * @since 0.3.0
 */
VIGIL_EXTERN(int) vigil_gitops_new(vigil_gitops **out, const vigil_gitops_options *opts);

/**
 * Stops the runner's thread if it runs, and frees it (NULL is a no-op). The
 * api it was mounted on must be freed (or stopped serving) first.
 * @since 0.3.0
 */
VIGIL_EXTERN(void) vigil_gitops_free(vigil_gitops *ops);

/**
 * Does the work that is due: a sync when its deadline has passed or one was
 * requested, then an observation when its deadline has passed (or the
 * desired state just changed), then a retry of a failed publication.
 * @param next_ms receives the monotonic time (ms) of the next deadline; may
 *   be NULL.
 * @return VIGIL_OK (also when a sync or a publication failed: that is in the
 *   status); VIGIL_EINVAL (NULL @p ops); VIGIL_EBUSY (the runner's thread
 *   runs).
 * @since 0.3.0
 */
VIGIL_EXTERN(int) vigil_gitops_step(vigil_gitops *ops, int64_t *next_ms);

/**
 * Asks for a sync at the next step (and wakes the runner's thread).
 * Thread-safe. @since 0.3.0
 */
VIGIL_EXTERN(void) vigil_gitops_request_sync(vigil_gitops *ops);

/**
 * Starts a thread that runs vigil_gitops_step() at each deadline.
 * @return VIGIL_OK; VIGIL_EINVAL; VIGIL_EBUSY (already started); VIGIL_EIO.
 * @since 0.3.0
 */
VIGIL_EXTERN(int) vigil_gitops_start(vigil_gitops *ops);

/**
 * Stops the thread of vigil_gitops_start() (a step in progress finishes
 * first) and joins it. NULL or not started: no-op. @since 0.3.0
 */
VIGIL_EXTERN(void) vigil_gitops_stop(vigil_gitops *ops);

/**
 * Writes the status as JSON into @p out (appended):
 * {"host","commit" (of the desired state in use, "" before the first valid
 * load),"checkout" (the commit checked out),"resources","policies",
 * "sync":{"count","last" (epoch ms, 0 before),"result" ("ok", "error":
 * fetch failed, "invalid": the manifests of "commit" did not load),"commit",
 * "error","errors":[{"file","line","column","message"}],"interval"},
 * "drift":{"observed","items","drifted","errors"},
 * "hub":{"url","last","result","error"}}.
 * @return VIGIL_OK, VIGIL_EINVAL, VIGIL_ENOMEM. Thread-safe.
 * @since 0.3.0
 */
VIGIL_EXTERN(int) vigil_gitops_status_json(vigil_gitops *ops, vigil_buf *out);

/**
 * Adds POST /v1/sync and GET /v1/status to @p api (before it serves).
 * @return VIGIL_OK; VIGIL_EINVAL; VIGIL_EEXISTS (mounted twice);
 *   VIGIL_ENOMEM. @since 0.3.0
 */
VIGIL_EXTERN(int) vigil_gitops_mount(vigil_gitops *ops, vigil_api *api);

/* ---- gitopsd.yaml ------------------------------------------------------------------- */

/** A parsed gitopsd.yaml (opaque). @since 0.3.0 */
typedef struct vigil_gitops_config vigil_gitops_config;

/** Settings of the daemon process. @since 0.3.0 */
typedef struct vigil_gitops_daemon_options {
    unsigned int version;      /**< VIGIL_GITOPS_DAEMON_OPTIONS_VERSION */
    int64_t drain_timeout_ms;  /**< http.drain_timeout; default 10 s */
    vigil_log_level log_level; /**< log.level; default info */
} vigil_gitops_daemon_options;

/** Current version of vigil_gitops_daemon_options. @since 0.3.0 */
#define VIGIL_GITOPS_DAEMON_OPTIONS_VERSION 1

/**
 * Loads gitopsd.yaml (configs/gitopsd.yaml documents every key): listen,
 * http, security, log, host, repo, manifests, sync, observe, hub, webhook.
 * Environment variables named by token_env, hub.token_env and
 * webhook.secret_env must be set when named.
 * @param copts ${VAR} expansion and the like; NULL: defaults.
 * @return VIGIL_OK; the codes of vigil_config_load_file(); VIGIL_EUNKNOWNKEY,
 *   VIGIL_ETYPE, VIGIL_EVALUE, VIGIL_ERANGE, VIGIL_EMISSING,
 *   VIGIL_EUNSUPPORTED, VIGIL_EENV (located messages); VIGIL_ENOMEM.
 * @since 0.3.0
 */
VIGIL_EXTERN(int)
vigil_gitops_config_load(vigil_gitops_config **out, const char *path,
                         const vigil_config_options *copts);

/** As vigil_gitops_config_load(), from memory. @since 0.3.0 */
VIGIL_EXTERN(int)
vigil_gitops_config_load_string(vigil_gitops_config **out, const char *text, size_t len,
                                const char *name, const vigil_config_options *copts);

/** Frees a configuration (NULL is a no-op). @since 0.3.0 */
VIGIL_EXTERN(void) vigil_gitops_config_free(vigil_gitops_config *config);

/**
 * The options the configuration describes, borrowed from it until
 * vigil_gitops_config_free(). The runner options' gitsync is NULL: create
 * one from vigil_gitops_config_gitsync() and set it.
 * @since 0.3.0
 */
VIGIL_EXTERN(const vigil_gitops_options *)
vigil_gitops_config_options(const vigil_gitops_config *config);
/** @copydoc vigil_gitops_config_options */
VIGIL_EXTERN(const vigil_gitsync_options *)
vigil_gitops_config_gitsync(const vigil_gitops_config *config);
/** @copydoc vigil_gitops_config_options */
VIGIL_EXTERN(const vigil_api_options *) vigil_gitops_config_api(const vigil_gitops_config *config);
/** @copydoc vigil_gitops_config_options */
VIGIL_EXTERN(const vigil_httpd_options *)
vigil_gitops_config_httpd(const vigil_gitops_config *config);
/** @copydoc vigil_gitops_config_options */
VIGIL_EXTERN(const vigil_gitops_daemon_options *)
vigil_gitops_config_daemon(const vigil_gitops_config *config);

#ifdef __cplusplus
}
#endif

#endif
