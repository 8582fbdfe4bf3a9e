/* Private state of the hub shared by lib/hub/hub.c (ingest, committer,
 * events), lib/hub/routes.c (HTTP routes) and lib/hub/config.c. */
#ifndef VIGIL_HUB_INT_H
#define VIGIL_HUB_INT_H

#include "api/internal.h"
#include "internal/json.h"
#include "hub/dispatch.h"
#include "hub/events.h"
#include "vigil/hub.h"
#include "vigil/engine.h"
#include "vigil/policy.h"

#include <pthread.h>

typedef struct ingest_req ingest_req;

/* Remediators of a fleet at most, and agent globs of one at most. */
#define VIGIL_HUB_FLEET_MAX 256

/* One remediator of a fleet (vigil_hub_options.remediators). */
typedef struct vigil__hub_route {
    char **agents; /* globs over agent ids */
    size_t nagents;
    vigil__dispatch *d;
    unsigned char *secret; /* checks this remediator's signed late results */
    size_t secret_len;
} vigil__hub_route;
typedef struct commit_group commit_group;
typedef struct vigil__hub_track vigil__hub_track;
typedef struct vigil__hub_gitpol vigil__hub_gitpol;
typedef struct vigil__hub_cluster vigil__hub_cluster;
struct vigil__pmap;

struct vigil_hub {
    char *store_url;
    int64_t retention_ms;
    int64_t retention_interval_ms;
    size_t queue_max;
    size_t group_max_samples;
    int64_t max_future_ms;
    size_t max_batch_metrics;
    int64_t events_interval_ms;
    vigil_logger logger;

    vigil_store *store;  /* the committer's */
    vigil_store *reader; /* queries: a second connection, or `store` for :memory: */
    vigil_window_set *windows;
    pthread_mutex_t win_mu;
    /* windows only where a policy looks (lib/hub/windows.c): the answerer's
     * decisions per series and their counts (under win_mu) */
    struct vigil__hub_wcache *wcache;
    vigil_buf wkey;              /* answerer: scratch series key */
    uint64_t watch_gen;          /* decisions of another generation are asked again */
    size_t win_unwatched;        /* series decided unwatched */
    size_t win_refused;          /* watched series refused by max_series now */
    uint64_t win_refused_total;  /* series refused so far */
    size_t win_refused_unlogged; /* refused since the last log line */
    int64_t win_refused_logged;  /* monotonic ms of that line, 0: none */
    pthread_mutex_t sync_mu;     /* serialises syncs and rebuilds */
    uint64_t synced_gen;         /* engine generation the windows were synced to (sync_mu) */
    vigil__events *events;

    pthread_mutex_t mu;
    pthread_cond_t cv;                /* committer: work queued, room after it, or stopping */
    pthread_cond_t tick_cv;           /* ticker: stopping */
    pthread_cond_t answer_cv;         /* answerer: a group written, or the committer ended */
    pthread_cond_t eval_cv;           /* evaluator: a group answered, or the answerer ended */
    commit_group *open;               /* the group new ingests join */
    commit_group *ready, *ready_tail; /* sealed groups, oldest first */
    commit_group *spare;              /* committed groups kept for their memory */
    size_t nspare;
    /* written groups, oldest first, waiting for the answerer */
    commit_group *committed, *committed_tail;
    /* answered groups, oldest first, waiting for the evaluator (the engine) */
    commit_group *to_feed, *to_feed_tail;
    size_t npost;       /* groups written and not yet recycled by the evaluator */
    int committer_done; /* the committer has written its last group */
    int answerer_done;  /* the answerer has answered the last group */
    size_t qlen;        /* ingests waiting for their commit */
    size_t qsamples;    /* their samples */
    int started, stopping, stopped;
    pthread_t committer, answerer, evaluator, ticker;

    /* counters (under mu) */
    uint64_t samples, batches, duplicates, commits, rejected;
    int store_failing;     /* the last ingest commit failed (under mu) */
    char store_error[520]; /* its message (under mu) */
    size_t series;

    /* metrics */
    vigil__prom *prom;
    vigil__prom_family *m_samples;
    vigil__prom_family *m_batches;
    vigil__prom_family *m_duplicates;
    vigil__prom_family *m_rejected;
    vigil__prom_family *m_commit;
    vigil__prom_family *m_group;
    vigil__prom_family *m_dropped;
    vigil__prom_family *m_retention;
    vigil__prom_family *m_win_refused;        /* samples no window took (past max_series) */
    vigil__prom_family *m_win_refused_series; /* series refused by max_series */

    /* policies and actions (lib/hub/actions.c) */
    vigil_engine *engine;
    int64_t (*clock)(void *payload); /* NULL: real time */
    void *clock_payload;
    int64_t policy_interval_ms;
    int64_t act_within_ms;        /* options.act_within_ms, 0 made the default */
    vigil__dispatch *http;        /* the built-in HTTP dispatcher, or NULL */
    unsigned char *result_secret; /* checks signed late results (result.c); NULL: none */
    size_t result_secret_len;
    vigil__hub_route *fleet; /* options.remediators: one dispatcher each */
    size_t nfleet;
    vigil_action_dispatcher disp;   /* set by vigil_hub_set_dispatcher() (under mu) */
    int has_disp;                   /* under mu */
    pthread_mutex_t act_mu;         /* serialises a result's check-and-update */
    vigil_batch *feed;              /* evaluator: one stored batch for the engine */
    vigil__prom_family *m_actions;  /* results by status */
    vigil__prom_family *m_dispatch; /* submit to result, seconds */
    vigil__prom_family *m_dispatch_failed;
    vigil__prom_family *m_decisions;
    vigil__prom_family *m_engine_errors;

    /* GitOps (lib/hub/gitops.c), under git_mu: publications of desired
     * state and drift, the drift rule's requests, git-managed policies */
    pthread_mutex_t git_mu;
    int64_t drift_cooldown_ms;
    struct vigil__pmap *tracks; /* resource target -> vigil__hub_track */
    vigil__hub_gitpol **gitpol; /* the sources' rules, in publication order */
    size_t ngitpol, capgitpol;
    vigil_config *cfg_rules; /* a copy of the configuration's `policies:`, or NULL */
    char *cfg_dir;           /* its policies_dir, or NULL */
    /* the remediator of vigil_hub_attach_remediator(), or NULL (routes_admin.c) */
    vigil_remediator *rem;

    /* the dashboard (lib/hub/ui.c) */
    char *ui_dir; /* NULL: none */
    uint64_t ui_max_file;

    /* events to Redis (lib/hub/fanout.c), or NULL */
    struct vigil__redis *redis;

    /* several hubs on one store (lib/hub/cluster.c); NULL: a single hub */
    vigil__hub_cluster *cluster;
    const vigil_store_registry *store_types; /* options.store_types (borrowed) */
};

/* Checks the X-Vigil-Signature of a remediator's late result (POST
 * /v1/actions/{id}/result) over its raw body with the secret of the
 * remediator action `id` was sent to (a fleet's entry, else the hub's HTTP
 * remediator; lib/hub/result.c): VIGIL_OK, or VIGIL_EAUTH with the reason
 * (also when the hub has no HTTP remediator). */
int vigil__hub_result_verify(vigil_hub *hub, const vigil_api_request *req, const char *id,
                             const char *body, size_t len);
/* Keeps a copy of the remediator secret of `o` (remediator_secret, or the
 * variable named by remediator_secret_env when it is set), with which late
 * results are checked; none configured: results are refused. VIGIL_ENOMEM. */
int vigil__hub_result_secret_init(vigil_hub *hub, const vigil_hub_options *o);
void vigil__hub_result_secret_free(vigil_hub *hub);
/* Logs `msg` with the key/value pairs of `kv` (NULL-terminated; a NULL
 * value is ""), each value escaped as logfmt and clipped to 200 bytes
 * (lib/hub/logfields.c): for fields that come from requests. */
void vigil__hub_log_fields(vigil_hub *hub, vigil_log_level level, const char *msg,
                           const char *const *kv);
/* Holds *batch to the agents its token is bound to (lib/hub/identity.c):
 * VIGIL_OK (the batch may be replaced by a copy with the agent and host tags
 * filled in); VIGIL_EPERM with the reason in `why` (answered 403
 * agent_mismatch); VIGIL_ELIMIT or VIGIL_ENOMEM. nagents 0: unbound, no check. */
int vigil__hub_bind_batch(vigil_batch **batch, const char *token, const char *const *agents,
                          size_t nagents, char *why, size_t why_size);
/* Counts a refused ingest under `reason` (an error code such as "invalid_json"). */
void vigil__hub_rejected(vigil_hub *hub, const char *reason);
/* The error code ("invalid_metric", "overloaded", ...) a status is answered with. */
const char *vigil__hub_reason(int status);
/* Non-zero (with the error recorded) when a new ingest would be refused for
 * a full queue: checked before decoding a body. */
int vigil__hub_full(vigil_hub *hub);
/* Validates and queues a batch; `owned`: the hub frees it after the callback.
 * Counts refusals. */
int vigil__hub_enqueue(vigil_hub *hub, vigil_batch *batch, int owned, vigil_hub_ingest_cb cb,
                       void *payload);

/* ---- policies and actions (lib/hub/actions.c) -------------------------------- */

/* The hub's wall clock (options.clock or real time), ms. */
int64_t vigil__hub_now(const vigil_hub *hub);
/* Adds the policy and action metric families to hub->prom. */
int vigil__hub_init_action_metrics(vigil_hub *hub);
/* Creates hub->engine, loads the options' policies, policies_dir and
 * silences, restores desired states, and creates the HTTP dispatcher when a
 * remediator URL is set. */
int vigil__hub_init_engine(vigil_hub *hub, const vigil_hub_options *opts);
/* Loads the options' policies, policies_dir and silences into a scratch
 * engine (in-memory store): the errors vigil_hub_new() would give. */
int vigil__hub_check_policies(const vigil_hub_options *opts);
/* Stops the HTTP dispatcher (pending requests are answered "cancelled"). */
void vigil__hub_stop_dispatch(vigil_hub *hub);
/* Warns (once, from vigil_hub_start()) when policies are loaded but no
 * dispatcher will carry their requests. */
void vigil__hub_warn_no_dispatcher(vigil_hub *hub);
/* Frees the engine and the dispatcher. */
void vigil__hub_free_engine(vigil_hub *hub);
/* Counts an engine call that failed (op: "ingest", "tick", ...) and logs it. */
void vigil__hub_engine_error(vigil_hub *hub, const char *op, int rc);
/* Records a request in the ledger and dispatches it (policies and manual). */
int vigil__hub_dispatch(vigil_hub *hub, const vigil_action_request *req, const char *series);
/* Hands a request already in the ledger to the dispatcher (the remediator of
 * its host in a fleet; `series` may be NULL); a request that cannot be handed
 * over gets a FAILED result ("no_remediator", "dispatch_failed"). */
void vigil__hub_submit(vigil_hub *hub, const vigil_action_request *req, const char *series);
/* The host a request is for (vigil_hub_options.remediators): the `host` tag
 * of `series` (or the source of a drift series), else its `host` parameter,
 * else its target's part before the first '/'. Writes it (NUL-terminated, cut to size - 1) to out;
 * 0 when it has none (out is ""), else 1. */
int vigil__hub_request_host(char *out, size_t size, const vigil_action_request *req,
                            const char *series);
/* The fleet entry (hub->fleet index) that action `id` of the ledger went to,
 * or -1: the default remediator (also when the ledger has no such id). */
int vigil__hub_route_of_action(vigil_hub *hub, const char *id);
/* The fleet entry of a target's host (its part before the first '/'), or -1:
 * the default remediator. */
int vigil__hub_route_of_target(const vigil_hub *hub, const char *target);
/* The engine's on_decision: counts a stored decision and publishes it. */
void vigil__hub_on_decision(void *payload, const vigil_store_decision *d);
/* At start (lib/hub/recover.c): requests a previous process left pending in
 * the ledger are redelivered with their ids, or closed as failed
 * ("expired_after_restart") when older than act_within; requests the engine
 * awaits that the ledger has final are given their result, and those it
 * never recorded fail ("not_sent_before_restart"). */
void vigil__hub_recover_actions(vigil_hub *hub);
/* Mounts the routes of policies, decisions, silences, actions and desired state. */
int vigil__hub_mount_policy_routes(vigil_hub *hub, vigil_api *api);

/* ---- clustering (lib/hub/cluster.c) ------------------------------------------------ */

/* Whether this hub may evaluate and dispatch now: 1 for a single hub (epoch
 * 0), else while it leads under a lease it still holds (*epoch: the term's;
 * the check ends the term when the lease ran out). Thread-safe. */
int vigil__hub_may_act(vigil_hub *hub, uint64_t *epoch);
/* Non-zero when the leader's engine and windows are fed by the store's tail
 * (a clustered hub on a store with vigil_store_tail()): ingests then skip them. */
int vigil__hub_cluster_tails(const vigil_hub *hub);
/* A remediator refused a request of `epoch` as stale: the term ends now. */
void vigil__hub_cluster_fenced(vigil_hub *hub, uint64_t epoch);
/* Start (from vigil_hub_start(), last) and stop (first in vigil_hub_stop():
 * releases the lease) the lease and leader threads; free. No-ops unclustered. */
int vigil__hub_cluster_start(vigil_hub *hub);
void vigil__hub_cluster_stop(vigil_hub *hub);
void vigil__hub_cluster_free(vigil_hub *hub);
/* Mounts GET /v1/cluster. */
int vigil__hub_mount_cluster_routes(vigil_hub *hub, vigil_api *api);
/* ---- windows only where a policy looks (lib/hub/windows.c) ---------------------- */

typedef struct vigil__hub_wcache vigil__hub_wcache;
/* Creates / frees the decision cache (and the answerer's scratch). */
int vigil__hub_windows_init(vigil_hub *hub);
void vigil__hub_windows_free(vigil_hub *hub);
/* Appends metrics [first, first + count) of a stored batch to the windows
 * of the series a rule watches (on the answerer, win_mu held; released while
 * the engine decides a series not decided in this generation). Samples no
 * window took (past max_series, out of memory) are added to *refused; the
 * first one's code and message are kept. */
void vigil__hub_windows_append(vigil_hub *hub, const vigil_batch *batch, size_t first, size_t count,
                               size_t *refused, int *first_rc, char *first_msg, size_t msg_size);
/* When the engine's rule set changed since the last sync: frees the windows
 * no rule needs, resizes the others, rebuilds from the store those a rule
 * needs more history of, and makes the answerer decide every series again.
 * Called after a reload and by the ticker. No hub lock may be held. */
int vigil__hub_windows_sync(vigil_hub *hub);
/* The gauges: series decided unwatched, watched series refused by max_series. */
size_t vigil__hub_windows_unwatched(vigil_hub *hub);
size_t vigil__hub_windows_refused(vigil_hub *hub);

/* ---- GitOps (lib/hub/gitops.c) ----------------------------------------------------- */

/* Reads the drift cooldown, the drift rule's records and the git-managed
 * policies kept in the store (loaded into the engine), and keeps a copy of
 * the options' rules for later swaps. */
int vigil__hub_gitops_init(vigil_hub *hub, const vigil_hub_options *opts);
void vigil__hub_gitops_free(vigil_hub *hub);
/* The bulk form of PUT /v1/desired: validates `j`, replaces the source's
 * records and feeds the engine; writes the answer to `out`. */
int vigil__hub_desired_bulk(vigil_hub *hub, const cJSON *j, vigil_buf *out);
/* The spec of a stored bulk record (cJSON_free). */
int vigil__hub_desired_spec(const char *body_json, char **spec);
/* vigil_hub_reload_policies(): the options' rules plus every source's. */
int vigil__hub_reload_with_git(vigil_hub *hub, const vigil_hub_options *opts,
                               vigil_engine_reload_result *res);
/* Mounts POST and GET /v1/drift and PUT /v1/policies. */
int vigil__hub_mount_gitops_routes(vigil_hub *hub, vigil_api *api);

/* Mounts approve, deny, release, audit verify and agents (lib/hub/routes_admin.c). */
int vigil__hub_mount_admin_routes(vigil_hub *hub, vigil_api *api);
/* ---- the dashboard (lib/hub/ui.c) --------------------------------------------- */

/* Copies the options' ui_dir (NULL: the built-in directory; "": none) and
 * ui_max_file into the hub. VIGIL_ENOMEM. */
int vigil__hub_ui_init(vigil_hub *hub, const vigil_hub_options *opts);
/* Opens `rel` (checked by the caller: relative, no "." or ".." segment)
 * beneath the directory `dfd` whose path is `dir`, read-only and
 * non-blocking: a descriptor, or -1 with errno (EXDEV: the path, through a
 * symbolic link, leads out of the directory; openat2() also refuses every
 * absolute link). With `no_openat2`, or where the kernel has no openat2(),
 * the real path of the file must lie inside the real path of `dir`. */
int vigil__hub_ui_open(int dfd, const char *dir, const char *rel, int no_openat2);
/* Serves the dashboard's files on `api` (vigil__api_fallback()) when the hub
 * has a directory, and logs where it is and whether it is built. */
int vigil__hub_mount_ui(vigil_hub *hub, vigil_api *api);

/* ---- events to Redis and exporters (lib/hub/fanout.c, lib/hub/export.c) ---- */

/* With options.redis_url (version 3): creates hub->redis, taps the events
 * bus into it and, with redis_subscribe, delivers other hubs' events to the
 * bus. VIGIL_OK (nothing to do without a URL), VIGIL_EINVAL, VIGIL_ENOMEM. */
int vigil__hub_fanout_init(vigil_hub *hub, const vigil_hub_options *opts);
/* Starts its threads (VIGIL_OK without Redis; VIGIL_ERROR). */
int vigil__hub_fanout_start(vigil_hub *hub);
/* After the bus closed: flushes for a bounded time and joins its threads. */
void vigil__hub_fanout_stop(vigil_hub *hub);
void vigil__hub_fanout_free(vigil_hub *hub);
/* Mounts GET /v1/export/prometheus. */
int vigil__hub_mount_export_routes(vigil_hub *hub, vigil_api *api);

/* Parses epoch ms, "now", a relative time ("-15m") or, when `rfc3339`, an
 * RFC 3339 time ("2025-01-31T22:00:00Z", offsets and fractions allowed);
 * errors name `key` (VIGIL_EINVAL). */
int vigil__hub_parse_time(int64_t *out, const char *key, const char *text, int64_t now,
                          int rfc3339);

#endif
