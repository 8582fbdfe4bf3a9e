/*
 * vigil/hub.h - the control-plane core: ingest -> store -> in-memory windows,
 * an events bus, and the hub's HTTP routes (mounted on a vigil_api).
 *
 * An ingest is acknowledged only after its samples are committed to the
 * store. Concurrent ingests are group-committed: each caller's metrics join
 * the open commit group when it queues, and one committer thread writes a
 * whole group in one store transaction (all or nothing for every batch in
 * it); another thread then answers each caller of the group, and a third
 * gives the stored batches, in order, to the policy engine, while the
 * committer writes the next groups. A full queue refuses new
 * ingests with VIGIL_EOVERLOADED (HTTP 429 with Retry-After). A batch whose
 * (agent, batch_id) was stored before is acknowledged as a duplicate
 * ("duplicate": true, accepted 0) and adds nothing to the store (a sample
 * written again replaces the identical stored one: nothing is ever doubled). Every stored sample of
 * a series a loaded rule watches (vigil_engine_watch(); since 0.4.0, every
 * series before) is appended to its window (vigil/window.h) before its
 * caller is answered. Samples more than max_future_ms ahead of the hub's clock are
 * refused.
 *
 * Routes added by vigil_hub_mount():
 *   GET  /readyz       no auth  200 when the store is open and writable, else 503
 *   POST /v1/ingest    ingest   202 {"accepted":N,"duplicate":false}
 *   GET  /v1/query     read     ?name=&match=key:value&from=&to=&step=&agg=
 *                               {"series":[{"name","tags","points":[[ts,value],...]}]}
 *                               times: epoch ms, "now" or relative ("-15m"; default
 *                               from -1h to now, both inclusive); match may repeat, a
 *                               value with * ? [ is a glob; step: a duration; agg:
 *                               mean (default), min, max, sum, count, last
 *   GET  /v1/series    read     ?name=&match=  series and their latest values
 *                               {"series":[{"name","tags","latest":{"ts","value"}}]}
 *   GET  /v1/events    read     server-sent events (also ?access_token=): "ingest"
 *                               rates, "decision" (each policy decision as stored) and
 *                               "action" (each result recorded)
 *   GET  /v1/policies  read     {"policies":[{"name","kind","metric","action","series":[...]}]}
 *   GET  /v1/cluster   read     {"enabled","leader","epoch","holder","leader_holder","terms",
 *                               "tailed"}: vigil_hub_cluster_status_get()
 *   GET  /v1/decisions read     ?since=&limit= (default 1000, at most 10000), oldest first
 *                               {"decisions":[{"id","ts","policy","series","target","action",
 *                               "action_id","decision","reason"}]}
 *   GET  /v1/silences  read     {"silences":[{"id","matchers","starts","ends","created_by",
 *                               "comment"}]}
 *   POST /v1/silences  write    {"matchers":{key: glob},"starts"?,"ends"|"duration","comment"?,
 *                               "created_by"?} -> 201 {"id":"..."}; starts and ends: epoch ms
 *                               or RFC 3339 (starts default now); duration e.g. "2h"
 *   DELETE /v1/silences/{id}  write  200 {"id":"...","deleted":true}; 404 when unknown
 *   GET  /v1/actions   read     ?since=&status=&limit= (default 100, at most 1000): the
 *                               actions ledger, oldest first, with results, audit
 *                               checkpoints and verdicts (the latest decision of each id):
 *                               {"actions":[{"id","requested","updated","action","target",
 *                               "params","reason","policy","series","dry_run","status",
 *                               "result_reason","output","duration_ms","audit":{"seq","mac"}|null,
 *                               "verdict":{"decision","reason","ts"}|null}],
 *                               "checkpoint":{"seq","mac"}|null}
 *   POST /v1/actions   write    a manual request {"action","target","params"?,"reason"?,
 *                               "dry_run"?} -> 202 {"id":"manual-..."}, dispatched like a
 *                               policy's
 *   POST /v1/actions/{id}/result  write  a late result (contracts: {"id"?,"status","reason"?,
 *                               "output"?,"duration_ms"?,"audit"?:{"seq","mac"}}) -> 200
 *                               {"id","status"}; 400 with the JSON path of a bad field, 404
 *                               unknown id, 409 when the id already has a final result
 *   GET  /v1/desired   read     ?target= -> {"target","desired":{...},"updated"}, or every
 *                               target: {"desired":[...]}; a source's record (bulk form)
 *                               also has "source","revision","kind","name","labels",
 *                               "selfHeal" (its "desired" is the spec); ?source= filters
 *   PUT  /v1/desired   write    {"target","desired":{...}} -> 200; fed to the engine's
 *                               desired state and kept in the store (restored at start).
 *                               Bulk form (since 0.3.0; from vigil-gitopsd):
 *                               {"source","revision","resources":[{"target","kind","name",
 *                               "labels"?,"selfHeal"?,"spec"}]} -> 200 {"source","revision",
 *                               "resources":N,"removed":M}: replaces every record of that
 *                               source in one transaction (the targets it drops leave the
 *                               engine's desired state); target = "<source>/<kind>/<name>"
 *   POST /v1/drift     write    (since 0.3.0) {"source","revision","observed"?,"items":[{
 *                               "target","kind","name","status","selfHeal"?,"diff"?:[{"field",
 *                               "desired","observed"}],"error"?,"heal"?:{"action","target",
 *                               "params"?}}]} -> 200 {"items":N,"drifted":D,"requested":R};
 *                               replaces the source's drift records; a "drift" event; the
 *                               built-in drift rule (docs/architecture.md) asks for each
 *                               drifted or missing item's heal through the normal dispatch
 *                               (policy "drift", id "drift-..."), at most one in flight per
 *                               target and none within drift_cooldown_ms of the previous,
 *                               with decisions "fired" and, at the next in_sync report,
 *                               "remediated" (series "drift/<target>")
 *   GET  /v1/drift     read     (since 0.3.0) ?source=&status= -> {"drift":[{"target","kind",
 *                               "name","source","revision","status","selfHeal","diff",
 *                               "error"?,"updated"}],"count":N,"drifted":D}
 *   PUT  /v1/policies  write    (since 0.3.0) {"source","revision","policies":[rule, ...]}
 *                               -> 200 {"source","revision","policies":N}: the git-managed
 *                               rules of that source (keys of a collector.yaml rule), swapped
 *                               all or nothing with the configuration's and the other
 *                               sources' (vigil_engine_replace()); 400 naming
 *                               "policies[i].key", 409 for a name the configuration or
 *                               another source holds; kept in the store (restored at start,
 *                               and re-applied by vigil_hub_reload_policies()); an empty
 *                               list drops the source's rules
 *   GET  /v1/agents    read     (since 0.3.0) {"agents":[{"id","last_heartbeat"|null,
 *                               "last_seen","series","interval_ms","stale_after_ms",
 *                               "stale"}],"now"}: each `host` tag of the stored series;
 *                               interval: the median gap of its vigil_agent_heartbeat
 *                               samples of the past hour (10 s when unknown); stale when
 *                               its last heartbeat is older than 3 intervals
 *   GET  /v1/export/prometheus  read  (since 0.4.0) ?match[]=<selector> (repeatable):
 *                               the newest sample of each selected series in the Prometheus
 *                               text format 0.0.4 with timestamps, as /federate answers;
 *                               selectors name, name{m,...} or {m,...} with matchers
 *                               label="v", !=, =~, !~ (POSIX extended regex, anchored); 400
 *                               for a bad selector (docs/http-api.md)
 *   POST /v1/actions/{id}/approve, POST /v1/actions/{id}/deny,
 *   POST /v1/targets/{target}/release, GET /v1/audit/verify[?seq=&mac=]
 *                      admin    (since 0.3.0) the remediator's routes of the same path
 *                               (vigil/remediator.h), answered with its status and body:
 *                               forwarded, signed with the remediator secret, to
 *                               remediator_url, or called in process on the remediator of
 *                               vigil_hub_attach_remediator(); 503 when there is none or it
 *                               cannot be reached
 * Bodies of the GitOps routes hold at most 20,000 resources, items or policies; every bad
 * field is a 400 naming its JSON path.
 * and the hub's metrics to GET /metrics (also vigil_actions_total{status},
 * vigil_action_dispatch_duration_seconds, vigil_action_dispatch_failures_total{reason},
 * vigil_policy_decisions_total{decision}, vigil_policy_engine_errors_total{op}).
 *
 * Dashboard (@since 0.4.0): vigil_hub_mount() also serves the files of one
 * directory (vigil_hub_options.ui_dir) for GET and HEAD of every path that
 * no route matches and whose first segment is not "v1": "/" is index.html,
 * "/app.js" is app.js; no token is needed (the files hold no data; the page
 * sends its token to the /v1 routes) and a route always wins over a file.
 * Refused: a path with a "." or ".." segment, an encoded '.', '/' or '\',
 * a '\', a control character or an empty segment (400); a hidden file (a
 * segment starting with '.'), a directory, anything but a regular file, a
 * symbolic link leading out of the directory, a file larger than
 * ui_max_file (403); a file that does not exist (404). Other methods get
 * 405. Content-Type follows the extension (html, js and mjs as
 * text/javascript, css, svg, png, json, map, woff2, ico; others
 * application/octet-stream). Every answer carries Content-Security-Policy
 * (VIGIL_HUB_UI_CSP), X-Content-Type-Options: nosniff, Referrer-Policy:
 * no-referrer and X-Frame-Options: DENY; a file has an ETag (a matching
 * If-None-Match is answered 304) and Cache-Control "no-cache" for .html,
 * "public, max-age=600" otherwise. When the directory or its index.html is
 * missing, "/" is answered 404 with a short HTML page saying that the
 * dashboard is not built and that `make ui` builds it; the hub runs as usual.
 *
 * Policies and remediation: the hub owns a policy engine (vigil/policy.h) on
 * its store and windows. After each commit group, once its callers are
 * answered, every stored batch (not duplicates) is evaluated; the events
 * ticker runs the engine's timers every policy_interval_ms. A request of a
 * policy is recorded in the actions ledger ("pending") and handed to the
 * dispatcher: the built-in HTTP one (remediator_url; signed POST
 * /v1/execute from worker threads, retries with backoff on network errors,
 * 5xx, 429 and 408, any other 4xx is final) or one set with
 * vigil_hub_set_dispatcher(). Every
 * result enters through vigil_hub_action_result().
 *
 * Decisions (GET /v1/decisions, "decision" events) name their policy,
 * series and target, and are one of: fired (a reason starting "retry: " when
 * it asks again after `ineffective` or after the remediator's cooldown or
 * quarantine, "deferred by the policy's cooldown" when it sends what the
 * policy held back), resolved, suppressed
 * (flapping), deferred (held back by the policy's cooldown, or refused by the
 * remediator's with a retry_after_ms: its reason says when it is sent; the
 * events ticker sends it then if the condition still holds), silenced,
 * exhausted (the policy's budget; its reason says when it frees), flapping,
 * action_failed, quarantined (the remediator's budget: its reason says how to
 * release the target, POST /v1/targets/{t}/release on the remediator or
 * vigil_remediator_release(), and when it is asked again), remediated,
 * ineffective, escalated, redelivered. A resolved or flapping decision names the target of the
 * series' latest request, else the rule's target rendered for the series
 * (NULL only when the template names a tag the series lacks).
 *
 * Across a restart (vigil_hub_start(), before any thread runs): a request a
 * previous process left "pending" in the ledger is sent again with its id
 * (decision "redelivered"; the remediator's exactly-once ledger answers a
 * known id with its recorded result, a running one when it finishes), or,
 * when requested more than act_within ago, recorded failed with reason
 * "expired_after_restart" (decision action_failed, reason "failed:
 * expired_after_restart"). A request the engine awaits whose ledger record
 * is final is given that result; one the ledger never recorded fails with
 * reason "not_sent_before_restart". Requests waiting for an approval are
 * left to the remediator. So the engine never waits forever on a request.
 *
 * Threads: vigil_hub_ingest(), vigil_hub_ingest_async(), vigil_hub_publish(),
 * vigil_hub_stats_get(), vigil_hub_window_aggregate(), vigil_hub_action_result(),
 * vigil_hub_action_request() and vigil_hub_set_dispatcher() are thread-safe.
 * vigil_hub_start(), vigil_hub_stop() and vigil_hub_free() are called from
 * one controlling thread. The hub starts four threads (the committer, the
 * answerer, the evaluator and the events ticker) in vigil_hub_start() and
 * joins them in vigil_hub_stop(); with a remediator_url, vigil_hub_new()
 * starts the HTTP dispatcher's workers, which vigil_hub_stop() stops
 * (requests not yet answered are recorded as failed, reason "cancelled").
 *
 * Output structs (vigil_hub_stats, vigil_hub_ingest_result) are versioned like options: the caller
 * sets
 * @c version (the *_INIT macro does) before the call; the library refuses a
 * version 0 or newer than its own with VIGIL_EVERSION, as it does for options
 * and requests (docs/architecture.md), and otherwise fills the struct. A
 * struct the library hands to a callback has its version set by the library.
 */
#ifndef VIGIL_HUB_H
#define VIGIL_HUB_H

#include "vigil/action.h"
#include "vigil/api.h"
#include "vigil/batch.h"
#include "vigil/buf.h"
#include "vigil/common.h"
#include "vigil/config.h"
#include "vigil/httpd.h"
#include "vigil/log.h"
#include "vigil/metric.h"
#include "vigil/policy.h"
#include "vigil/remediator.h"
#include "vigil/store.h"
#include "vigil/types.h"
#include "vigil/window.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Default store of a hub: a file under the working directory. @since 0.1.0 */
#define VIGIL_HUB_DEFAULT_STORE "sqlite://./var/vigil.db"

/**
 * One remediator of a fleet (vigil_hub_options.remediators): the remediator
 * of the hosts whose agent ids match one of @c agents. The hub sends it the
 * requests whose host (see vigil_hub_options.remediators) matches, over the
 * built-in HTTP dispatcher, with the retry and queue settings of the
 * options' remediator_* fields and a secret and TLS files of its own. Every string is
 * borrowed for the vigil_hub_new() call only. @since 0.3.0
 */
typedef struct vigil_hub_remediator {
    /** Globs (fnmatch) over agent ids, e.g. "web-*"; at least one. */
    const char *const *agents;
    size_t nagents;
    /** Base URL of this remediator (http or https); required. */
    const char *url;
    /** Environment variable holding this remediator's X-Vigil-Signature
     * secret (read by vigil_hub_new(), never logged), unless @c secret is set. */
    const char *secret_env;
    /** The secret itself (copied), instead of @c secret_env. */
    const void *secret;
    size_t secret_len;
    /** TLS of the link to an https:// URL, as remediator_ca_file,
     * remediator_cert and remediator_key of vigil_hub_options: a PEM CA
     * bundle instead of the system's, a client certificate and its key
     * (together). NULL: none. */
    const char *ca_file;
    const char *cert;
    const char *key;
} vigil_hub_remediator;

/** Options of a hub. Zero fields mean the defaults. @since 0.1.0 */
typedef struct vigil_hub_options {
    unsigned int version; /**< VIGIL_HUB_OPTIONS_VERSION */
    /** Store URL (vigil/store.h); NULL: VIGIL_HUB_DEFAULT_STORE. */
    const char *store_url;
    /** Samples and batch ids older than this are deleted; 0: 14 days. */
    int64_t retention_ms;
    /** How often retention runs (one bounded chunk per run); 0: 1 minute. */
    int64_t retention_interval_ms;
    /** Ingest requests waiting for their commit; more: VIGIL_EOVERLOADED; 0: 1024. */
    size_t queue_max;
    /** Samples committed by one group at most; 0: 200,000. Four groups' worth
     * of samples may wait at most (more: VIGIL_EOVERLOADED), which bounds the
     * memory of the queue. */
    size_t group_max_samples;
    /** Samples with ts later than now + this are refused; 0: 5 minutes. */
    int64_t max_future_ms;
    /** Metrics in one ingest body at most; 0: VIGIL_BATCH_DEFAULT_MAX_METRICS. */
    size_t max_batch_metrics;
    /** Bounds of the in-memory windows (defaults of vigil/window.h); its
     * version and its window's may be left 0 (embedded structs have the
     * layout of this options version). Since 0.4.0 only watched series get
     * a window, kept as long as their rules read (window + for), at most
     * window.max_age; a watched series past max_series is counted
     * (vigil_windows_refused_series) and logged. */
    vigil_window_set_options windows;
    /** Interval of the "ingest" rate events (and SSE keep-alive); 0: 1 s. */
    int64_t events_interval_ms;
    /** Events buffered per subscriber; a subscriber that falls further behind is
     * dropped; 0: 256. */
    size_t events_queue_max;
    /** Concurrent event subscribers; more are refused with 429; 0: 64. */
    size_t events_max_subscribers;
    /** Where the hub logs ("hub" component); the store logs there too. */
    vigil_logger logger;
    /** Store types of the embedder (vigil_store_register()), borrowed: it
     * must outlive the hub. @c store_url's scheme resolves in the built-in
     * types first, then here. NULL: the built-in types only. An in-process
     * remediator takes its action types (and store types) through its own
     * options: vigil_remediator_options.action_types. @since 0.2.0 */
    const vigil_store_registry *store_types;

    /* ---- policies (vigil/policy.h) ---- */
    /** Inline rules: a YAML sequence as vigil_engine_load() reads it, loaded
     * by vigil_hub_new() (borrowed for that call only); NULL: none. */
    const vigil_config_node *policies;
    /** A directory whose *.yaml and *.yml files each hold a top-level
     * `policies:` list, loaded by vigil_hub_new() in name order; a relative
     * path is relative to the working directory; NULL: none. */
    const char *policies_dir;
    /** Silences ensured by vigil_hub_new(): a YAML list of maps
     * {matchers: {key: glob, ...}, starts, ends, comment} (starts and ends:
     * epoch ms or RFC 3339 UTC "2025-01-31T22:00:00Z"; starts default 0).
     * One identical to a stored silence is not added again. NULL: none. */
    const vigil_config_node *silences;
    /** Wall clock in ms for the engine's timers and the action ledger; NULL:
     * real time. */
    vigil_clock_cb clock;
    void *clock_payload;
    /** How often the events ticker runs the engine's timers (absent rules,
     * verify deadlines, flap settling); 0: 1 s. */
    int64_t policy_interval_ms;
    /** Policies never act on a sample older than this; 0: 5 minutes. At
     * start, a request left pending by a previous process and older than
     * this is not sent again but recorded failed ("expired_after_restart"). */
    int64_t act_within_ms;
    /** Policy types of the embedder (vigil_policy_register()), borrowed: it
     * must outlive the hub. A rule's `kind` resolves in the built-in kinds
     * first, then here (also in vigil_hub_reload_policies() and in the checks
     * of vigil_hub_new()). NULL: the built-in kinds only. @since 0.2.0 */
    const vigil_policy_registry *policy_types;

    /* ---- dispatch to a remediator (the built-in HTTP dispatcher) ---- */
    /** Base URL of the remediator (POST <url>/v1/execute); NULL: no HTTP
     * dispatcher (use vigil_hub_set_dispatcher(), else requests fail with
     * reason "no_remediator"). */
    const char *remediator_url;
    /** Environment variable holding the X-Vigil-Signature secret; read by
     * vigil_hub_new(), never logged. Required with remediator_url unless
     * remediator_secret is set. */
    const char *remediator_secret_env;
    /** The secret itself (copied), instead of remediator_secret_env. */
    const void *remediator_secret;
    size_t remediator_secret_len;
    /** One delivery, request to answer (the remediator answers once the
     * action has finished); 0: 5 minutes. */
    int64_t remediator_timeout_ms;
    /** Deliveries of one request at most (network errors, 5xx, 429 and 408
     * are retried; any other 4xx is final); 0: 5. */
    unsigned int remediator_attempts;
    /** First retry delay, doubled per retry up to backoff_max, with jitter
     * (a delay d becomes a random value in [d/2, d]); 0: 500 ms and 30 s. */
    int64_t remediator_backoff_ms;
    int64_t remediator_backoff_max_ms;
    /** Worker threads delivering requests; 0: 2. */
    size_t remediator_workers;
    /** Requests waiting for a worker at most; more fail with reason
     * "dispatch_failed"; 0: 1024. */
    size_t remediator_queue_max;
    /** TLS of the link to an https:// remediator (version 2; @since 0.3.0):
     * a PEM CA bundle to trust instead of the system's, and a client
     * certificate and its key (PEM, together) for a remediator that requires
     * one (http.tls.client_ca in remediator.yaml). NULL: none. The files are
     * checked readable when the hub is created. */
    const char *remediator_ca_file;
    const char *remediator_cert;
    const char *remediator_key;
    /** Cardinality of the policy engine (version 2; @since 0.3.0): see
     * vigil_engine_options series_idle_ms (0: 1 hour; negative: never) and
     * series_per_agent (0: 10,000). */
    int64_t series_idle_ms;
    size_t series_per_agent;

    /* ---- GitOps ---- */
    /** The built-in drift rule (POST /v1/drift) asks for a target's heal
     * again only when its previous request is no longer in flight and was
     * made at least this long ago (collector.yaml `drift: {cooldown}`);
     * 0: VIGIL_HUB_DRIFT_COOLDOWN_DEFAULT_MS (version 2; @since 0.3.0). */
    int64_t drift_cooldown_ms;

    /* ---- a fleet: one remediator per host (@since 0.3.0) ---- */
    /** Remediators of other hosts, borrowed for vigil_hub_new() only; NULL:
     * none. A request goes to the first entry whose agent globs match its
     * host, else to remediator_url (the default; none: it fails with reason
     * "no_remediator"). Its host is, in this order: the `host` tag of the
     * series that fired the policy (the agent id) or, for a drift request,
     * the source that reported it (POST /v1/drift: the gitopsd host), the
     * request's `host` parameter, the part of its target before the first
     * '/' ("db-01/motd").
     * A dispatcher set with vigil_hub_set_dispatcher() takes every request
     * instead. Read only when @c version is 2 or more. */
    const vigil_hub_remediator *remediators;
    size_t nremediators;

    /* ---- the dashboard (version 3; @since 0.4.0) ---- */
    /** The directory of the dashboard's files (collector.yaml `ui: {dir}`),
     * which vigil_hub_mount() serves, without a token, for GET and HEAD of
     * every path that no route matches outside /v1 ("/" is index.html; see
     * "Dashboard" at the top of this header). NULL: the directory the library
     * was built with, $(PREFIX)/share/vigil/ui of its Makefile
     * (/usr/local/share/vigil/ui by default), where `make install` puts the
     * dashboard; "": no dashboard (such paths get the api's 404). A
     * relative path is relative to the working directory. Read when
     * @c version is 3 or more (older callers get the built-in directory). */
    const char *ui_dir;
    /** Largest file served from ui_dir (bigger ones are refused with 403);
     * 0: VIGIL_HUB_UI_MAX_FILE_DEFAULT. */
    uint64_t ui_max_file;
    /* ---- events to Redis (version 3; @since 0.4.0) ---- */
    /** redis://host[:port][/db] (no password in it; TLS is not supported):
     * every event of the bus (GET /v1/events: "ingest" rates, "decision",
     * "action", "drift" and those of vigil_hub_publish()) is also appended,
     * by a background thread, to a Redis stream (XADD MAXLEN ~) with the
     * fields origin (@c redis_hub_id), type, data (the event's JSON) and ts
     * (epoch ms). A bounded queue sits between the bus and that thread: a
     * slow or unreachable Redis never blocks an ingest or the bus; a full
     * queue drops the event (vigil_redis_dropped_total{reason}); a lost
     * connection is made again with a jittered backoff (100 ms doubling to
     * 5 s). NULL: none. Read only when @c version is 3 or more. */
    const char *redis_url;
    /** The stream's key; NULL: "vigil:events". */
    const char *redis_stream;
    /** Approximate length bound of the stream (MAXLEN ~); 0: 100,000. */
    size_t redis_maxlen;
    /** Events waiting for the publisher at most (and 32 MiB); 0: 10,000. */
    size_t redis_queue_max;
    /** Environment variable holding the password (AUTH), read by
     * vigil_hub_new() (VIGIL_EINVAL when unset or empty), never logged;
     * NULL: no AUTH. */
    const char *redis_password_env;
    /** Non-zero: a second connection reads the stream (XREAD BLOCK) and
     * delivers to this hub's event subscribers every event another hub
     * published (its origin differs), so the subscribers of any hub see
     * every hub's events, each once. */
    int redis_subscribe;
    /** This hub's origin id in the stream, 1-128 bytes of [A-Za-z0-9._:-/{}];
     * NULL: "<hostname>-<pid>-<8 random hex digits>", new each process. */
    const char *redis_hub_id;
} vigil_hub_options;

/** The Content-Security-Policy of every dashboard answer. @since 0.4.0 */
#define VIGIL_HUB_UI_CSP                                                              \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " \
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"

/** Default of vigil_hub_options.ui_max_file: 16 MiB. @since 0.4.0 */
#define VIGIL_HUB_UI_MAX_FILE_DEFAULT (16u * 1024 * 1024)

/** Default of vigil_hub_options.drift_cooldown_ms: 10 s. @since 0.3.0 */
#define VIGIL_HUB_DRIFT_COOLDOWN_DEFAULT_MS 10000

#define VIGIL_HUB_OPTIONS_VERSION 3
#define VIGIL_HUB_OPTIONS_INIT                                                                   \
    {                                                                                            \
        VIGIL_HUB_OPTIONS_VERSION, NULL, 0, 0, 0, 0, 0, 0, {0, {0, 0, 0}, 0}, 0, 0, 0,           \
            VIGIL_LOGGER_INIT, NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, \
            0, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL, 0, 0, 0, NULL, 0, NULL, 0, NULL, NULL, 0, 0,  \
            NULL, 0, NULL                                                                        \
    }

/**
 * Fills @p opts with defaults. @return VIGIL_OK, VIGIL_EINVAL (NULL @p opts) or
 * VIGIL_EVERSION (@p version 0 or newer than this library's). @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_hub_options_init(vigil_hub_options *opts, unsigned int version);

/**
 * Creates a hub: opens (and creates) its store, reads its series count and
 * prepares its windows. No thread runs until vigil_hub_start().
 * @param out receives the hub, the caller's; free with vigil_hub_free().
 * @param opts NULL for defaults (strings are copied).
 * @return VIGIL_OK; VIGIL_EINVAL (bad options); the codes of vigil_store_open()
 *         and vigil_window_set_new(); VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_hub_new(vigil_hub **out, const vigil_hub_options *opts);

/**
 * Starts the committer, the answerer, the evaluator and the events ticker.
 * First settles the requests a previous process left unfinished (see
 * "Across a restart" at the top of this header): redelivered through the
 * dispatcher, so set it (vigil_hub_set_dispatcher(),
 * vigil_hub_attach_remediator()) before this call.
 * @return VIGIL_OK; VIGIL_EINVAL (already started); VIGIL_ECLOSED (stopped);
 *         VIGIL_ERROR (a thread could not be created).
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_hub_start(vigil_hub *hub);

/**
 * Stops the hub: new ingests fail with VIGIL_ECLOSED, every ingest already
 * queued is committed and answered, event streams end, and the threads are
 * joined. Idempotent. @since 0.1.0
 */
VIGIL_EXTERN(void) vigil_hub_stop(vigil_hub *hub);

/**
 * Stops the hub (vigil_hub_stop()), closes its store and frees it. Every api
 * it is mounted on must be freed first. NULL is a no-op. @since 0.1.0
 */
VIGIL_EXTERN(void) vigil_hub_free(vigil_hub *hub);

/**
 * What an ingest did. An output struct (see the top of this header): the
 * caller of vigil_hub_ingest() sets @c version; the hub sets it in the
 * result it hands to a vigil_hub_ingest_cb.
 * @since 0.1.0 (@c version since 0.2.0)
 */
typedef struct vigil_hub_ingest_result {
    unsigned int version; /**< VIGIL_HUB_INGEST_RESULT_VERSION */
    size_t accepted;      /**< samples in the batch that were stored (0 for a duplicate) */
    int duplicate;        /**< non-zero: the batch id was stored before; nothing stored */
} vigil_hub_ingest_result;

/** @since 0.2.0 */
#define VIGIL_HUB_INGEST_RESULT_VERSION 1
/** All zero but the version. @since 0.2.0 */
#define VIGIL_HUB_INGEST_RESULT_INIT          \
    {                                         \
        VIGIL_HUB_INGEST_RESULT_VERSION, 0, 0 \
    }

/**
 * Ingests a batch and returns once it is committed (or refused). The batch is
 * borrowed for the call. Metrics must be valid (vigil_batch guarantees it).
 * @param result may be NULL; else its version is set by the caller.
 * @return VIGIL_OK; VIGIL_EINVAL (NULL); VIGIL_EVERSION (unknown
 *         result->version; nothing queued); VIGIL_EVALUE (a sample more than
 *         max_future_ms in the future; the message names it as
 *         "metrics[3].ts: ..."); VIGIL_ELIMIT (more than max_batch_metrics);
 *         VIGIL_EOVERLOADED (queue full); VIGIL_ECLOSED (not started or
 *         stopped); the codes of vigil_store_write() (nothing of the batch is
 *         stored); VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_hub_ingest(vigil_hub *hub, const vigil_batch *batch, vigil_hub_ingest_result *result);

/**
 * Receives the outcome of vigil_hub_ingest_async(): @p status as
 * vigil_hub_ingest() would return it, @p message its error text ("" on
 * success; valid during the call). Called from the hub's answering thread; it must
 * not block nor call vigil_hub_stop().
 * @since 0.1.0
 */
typedef void (*vigil_hub_ingest_cb)(int status, const char *message,
                                    const vigil_hub_ingest_result *result, void *payload);

/**
 * Queues a batch for commit and returns at once. On VIGIL_OK the hub takes
 * the batch (it frees it) and calls @p cb exactly once; on an error nothing is
 * queued, @p cb is never called and the batch stays the caller's.
 * @return VIGIL_OK, or the validation and queue codes of vigil_hub_ingest().
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_hub_ingest_async(vigil_hub *hub, vigil_batch *batch, vigil_hub_ingest_cb cb, void *payload);

/**
 * Publishes an event to every subscriber of the events bus (GET /v1/events):
 * an SSE frame "event: <type>" with @p data_json as its data. Subscribers
 * whose queue is full are dropped.
 * @param type [a-z0-9_.] at most 64 bytes, e.g. "policy", "action", "drift".
 * @param data_json a JSON document, at most 64 KiB, valid UTF-8.
 * @return VIGIL_OK, VIGIL_EINVAL, VIGIL_ELIMIT, VIGIL_EENCODING, VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_hub_publish(vigil_hub *hub, const char *type, const char *data_json);

/**
 * Counters of a hub, filled by vigil_hub_stats_get(). An output struct: the
 * caller sets @c version. @since 0.1.0 (@c version since 0.2.0)
 */
typedef struct vigil_hub_stats {
    unsigned int version; /**< set by the caller: VIGIL_HUB_STATS_VERSION */
    uint64_t samples;     /**< samples stored since start */
    uint64_t batches;     /**< batches stored since start (duplicates excluded) */
    uint64_t duplicates;  /**< duplicate batches acknowledged */
    uint64_t commits;     /**< commit groups written */
    uint64_t rejected;    /**< ingests refused (validation, queue, store) */
    size_t series;        /**< series in the store */
    size_t windows;       /**< series with an in-memory window */
    size_t queue_depth;   /**< ingests waiting for their commit */
    size_t subscribers;   /**< event subscribers */
} vigil_hub_stats;

/** @since 0.2.0 */
#define VIGIL_HUB_STATS_VERSION 1
/** All zero but the version. @since 0.2.0 */
#define VIGIL_HUB_STATS_INIT                               \
    {                                                      \
        VIGIL_HUB_STATS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0 \
    }

/**
 * Fills @p out. @return VIGIL_OK, VIGIL_EINVAL or VIGIL_EVERSION (unknown
 * out->version). @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_hub_stats_get(vigil_hub *hub, vigil_hub_stats *out);

/**
 * Computes a window aggregate of one series (its canonical key,
 * vigil_metric_series_key()) as vigil_window_aggregate() does.
 * @return VIGIL_OK; VIGIL_ENOTFOUND (no window for the series, or no sample
 *         in range); the codes of vigil_window_aggregate().
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_hub_window_aggregate(vigil_hub *hub, const char *series_key, vigil_window_agg agg,
                           int64_t duration_ms, int64_t now_ms, double *out);

/** Series keys one vigil_hub_windows_rebuild() call takes at most. @since 0.4.0 */
#define VIGIL_HUB_REBUILD_KEYS_MAX 1000000

/**
 * Rebuilds in-memory windows from the store: for each series of
 * @p series_keys (canonical keys, vigil_metric_series_key()) that a loaded
 * rule watches (vigil_engine_watch()), reads the history the rules need from
 * the store (vigil_store_query_run() on the hub's query connection) and
 * replaces the series' window with it, followed by the samples the window
 * received since; series no rule watches, or absent from the store, are left
 * as they are. With @p n 0 (@p series_keys may be NULL) every series the
 * rules watch is rebuilt: what a hub taking over as leader calls, so its
 * policies see the history the previous leader's windows held. The hub also
 * runs it by itself, for the series that need it, after every change of its
 * rules (reloads, PUT /v1/policies, git-managed policies) and at start.
 * A series past windows.max_series gets no window: counted in
 * vigil_windows_refused_series_total and logged.
 * Logs "windows synced with the policies" (info: watched= rebuilt= dropped=
 * refused= ms=) or "windows not rebuilt" (error).
 * @return VIGIL_OK; VIGIL_EINVAL (NULL hub, NULL @p series_keys with @p n > 0,
 *         a NULL or empty key); VIGIL_ELIMIT (more than
 *         VIGIL_HUB_REBUILD_KEYS_MAX keys); codes of the store; VIGIL_ENOMEM.
 * Thread-safe; may run while the hub ingests (calls are serialised with each
 * other); blocks for the store queries. Must not be called from a callback of
 * the hub or its engine.
 * @since 0.4.0
 */
VIGIL_EXTERN(int)
vigil_hub_windows_rebuild(vigil_hub *hub, const char *const *series_keys, size_t n);

/**
 * The hub's store (borrowed; valid until vigil_hub_free()). Calls on it are
 * serialised with the committer's.
 * @since 0.1.0
 */
VIGIL_EXTERN(vigil_store *) vigil_hub_store(vigil_hub *hub);

/**
 * Adds the hub's routes (see the top of this header) and its metrics to
 * @p api. The hub must outlive the api.
 * @return VIGIL_OK, VIGIL_EINVAL, VIGIL_EEXISTS (a route already mounted),
 *         VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_hub_mount(vigil_hub *hub, vigil_api *api);

/* ---- clustering: several hubs on one store ------------------------------- */

/** Name of the store lease that elects the leader (vigil_store_lease_acquire()). @since 0.4.0 */
#define VIGIL_HUB_LEADER_LEASE "vigil-leader"

/**
 * Options of vigil_hub_set_cluster(): several hubs on one shared store
 * (collector.yaml `cluster:`; docs/architecture.md, "Clustering"). Every
 * hub ingests; the one holding the lease VIGIL_HUB_LEADER_LEASE (the
 * leader) evaluates policies and dispatches actions, each request carrying
 * the lease's fencing epoch; the others (followers) serve reads from the
 * store. Zero fields mean the defaults.
 * @since 0.4.0
 */
typedef struct vigil_hub_cluster_options {
    unsigned int version; /**< VIGIL_HUB_CLUSTER_OPTIONS_VERSION */
    int enabled;          /**< non-zero: take part in the election; 0: a single hub */
    /** Who this hub is in the lease, 1..128 bytes of UTF-8, unique among
     * the hubs; NULL: "<hostname>:<pid>" (vigil-collector passes
     * "<hostname>:<port>:<pid>"). Copied. */
    const char *holder;
    int64_t lease_ttl_ms;      /**< lease length; 0: 3000; at most 86400000 */
    int64_t renew_interval_ms; /**< renewal (and election) period; 0: ttl / 3; below ttl */
    /** Period of vigil_store_tail() reads that feed the leader's policies;
     * 0: 100 ms. */
    int64_t tail_interval_ms;
} vigil_hub_cluster_options;

/** @since 0.4.0 */
#define VIGIL_HUB_CLUSTER_OPTIONS_VERSION 1
/** All zero but the version. @since 0.4.0 */
#define VIGIL_HUB_CLUSTER_OPTIONS_INIT                      \
    {                                                       \
        VIGIL_HUB_CLUSTER_OPTIONS_VERSION, 0, NULL, 0, 0, 0 \
    }

/**
 * Fills @p opts with the defaults for @p version.
 * @return VIGIL_OK, VIGIL_EINVAL (NULL), VIGIL_EVERSION. @since 0.4.0
 */
VIGIL_EXTERN(int)
vigil_hub_cluster_options_init(vigil_hub_cluster_options *opts, unsigned int version);

/**
 * Makes the hub one of several on a shared store (before vigil_hub_start();
 * @p opts NULL or not enabled: a single hub, as without the call). From
 * vigil_hub_start() on, a thread of the hub renews or tries to take the
 * lease every renew_interval on a store connection of its own:
 * - taking it (a new epoch): the hub rebuilds its windows from the store,
 *   recovers the ledger's unfinished requests as at start-up, and feeds its
 *   policies with every sample any hub commits, read with vigil_store_tail()
 *   (its own ingests included, so that each sample is evaluated once);
 * - losing it, failing to renew it, or a renewal that would expire before
 *   the next one: the hub stops evaluating and dispatching at once (a
 *   request it would dispatch stays pending in the ledger for the leader).
 * Requests the leader sends to a remediator carry the epoch (POST
 * /v1/execute "epoch", docs/http-api.md); a remediator refuses those of an
 * older epoch than the highest it saw (409 stale_epoch). vigil_hub_stop()
 * releases the lease so that another hub takes over at once.
 * With a store without vigil_store_tail() (SQLite) the leader feeds its
 * policies with its own ingests only (one hub ingesting per SQLite file).
 * @return VIGIL_OK; VIGIL_EINVAL (NULL hub, started already, holder empty
 *         or not UTF-8, a duration out of range, renew_interval >= ttl, an
 *         in-memory store); VIGIL_ELIMIT (holder longer than 128 bytes);
 *         VIGIL_EVERSION; VIGIL_EUNSUPPORTED (the store has no leases);
 *         the codes of vigil_store_open() (the lease's connection);
 *         VIGIL_ENOMEM.
 * Threads: call it from the thread that owns the hub, before start.
 * @since 0.4.0
 */
VIGIL_EXTERN(int)
vigil_hub_set_cluster(vigil_hub *hub, const vigil_hub_cluster_options *opts);

/**
 * Where a clustered hub stands, filled by vigil_hub_cluster_status_get().
 * An output struct: the caller sets @c version.
 * @since 0.4.0
 */
typedef struct vigil_hub_cluster_status {
    unsigned int version;    /**< set by the caller: VIGIL_HUB_CLUSTER_STATUS_VERSION */
    int enabled;             /**< vigil_hub_set_cluster() enabled it */
    int leader;              /**< non-zero: this hub leads (and may dispatch) now */
    uint64_t epoch;          /**< the epoch this hub leads under, or last saw; 0: none */
    char holder[129];        /**< this hub's holder id */
    char leader_holder[129]; /**< the holder of the lease when last read; "" unknown */
    uint64_t terms;          /**< times this hub took the lease since start */
    uint64_t tailed;         /**< samples read from the tail since start */
} vigil_hub_cluster_status;

/** @since 0.4.0 */
#define VIGIL_HUB_CLUSTER_STATUS_VERSION 1
/** All zero but the version. @since 0.4.0 */
#define VIGIL_HUB_CLUSTER_STATUS_INIT                             \
    {                                                             \
        VIGIL_HUB_CLUSTER_STATUS_VERSION, 0, 0, 0, {0}, {0}, 0, 0 \
    }

/**
 * Fills @p out (GET /v1/cluster answers the same).
 * @return VIGIL_OK, VIGIL_EINVAL (NULL), VIGIL_EVERSION. Thread-safe.
 * @since 0.4.0
 */
VIGIL_EXTERN(int) vigil_hub_cluster_status_get(vigil_hub *hub, vigil_hub_cluster_status *out);

/** The policy engine of vigil/engine.h. @since 0.1.0 */
struct vigil_engine;

/**
 * The hub's policy engine (vigil/engine.h; borrowed, valid until
 * vigil_hub_free()), for an embedder to load rules of its own (vigil_engine_load()),
 * manage silences or set desired states. vigil_hub_new() created it on the
 * hub's store and windows, with the hub's clock, and loaded the rules of the
 * options. Its functions are thread-safe; load rules before vigil_hub_start()
 * to evaluate every ingest.
 * @return the engine, or NULL for a NULL hub. @since 0.1.0
 */
VIGIL_EXTERN(vigil_engine *) vigil_hub_engine(vigil_hub *hub);

/** What vigil_engine_replace() did (vigil/engine.h). @since 0.1.0 */
struct vigil_engine_reload_result;

/**
 * Replaces the hub's policies, at run time, with those of @p opts (its
 * `policies` list and the files of its `policies_dir`, read now) plus the
 * git-managed rules of every source (PUT /v1/policies; since 0.3.0), through
 * vigil_engine_replace(): all or nothing (a name held by both is
 * VIGIL_EEXISTS); unchanged rules keep their state,
 * changed ones start fresh, removed ones are dropped. Then adds the silences
 * of @p opts that are not stored yet (none is deleted). Every other field of
 * @p opts is ignored: what they set needs a new hub. Logs "policies reloaded"
 * (info, with added= changed= removed= kept=) or "policy reload failed;
 * previous policies kept" (error, with the located message). This is what
 * vigil-collector does on SIGHUP with a freshly loaded collector.yaml
 * (vigil_hub_config_hub()).
 * @param opts borrowed for the call.
 * @param result when not NULL (its version set by the caller,
 *        VIGIL_ENGINE_RELOAD_RESULT_VERSION), receives the counts.
 * @return VIGIL_OK; VIGIL_EINVAL (NULL hub or options); VIGIL_EVERSION (bad result version);
 *         the codes of vigil_engine_replace() (nothing changed); after a
 *         successful replacement, the codes of vigil_engine_silence_add()
 *         for a silence that could not be added.
 * Thread-safe; may run while the hub ingests and evaluates.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_hub_reload_policies(vigil_hub *hub, const vigil_hub_options *opts,
                          struct vigil_engine_reload_result *result);

/* ---- actions: dispatch and results ------------------------------------------ */

/**
 * Makes @p dispatcher (copied; its @c self must outlive the hub) carry the
 * hub's action requests instead of the built-in HTTP dispatcher, e.g. the
 * in-process one of vigil_remediator_dispatcher(). NULL restores the built-in
 * one (or none). Call it before vigil_hub_start(); requests already submitted
 * keep their dispatcher. Its done callback feeds vigil_hub_action_result()
 * (without an audit checkpoint), so every result it reports must arrive
 * before vigil_hub_free().
 * @return VIGIL_OK, VIGIL_EINVAL (NULL hub, no submit), VIGIL_EVERSION
 *         (unknown dispatcher version).
 * Thread-safe. @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_hub_set_dispatcher(vigil_hub *hub, const vigil_action_dispatcher *dispatcher);

/**
 * Runs a remediator in the hub's process: creates it from @p opts, makes it
 * the hub's dispatcher (vigil_hub_set_dispatcher() with
 * vigil_remediator_dispatcher()), sends its late results (approvals,
 * expiries, requests a previous process left unfinished) to
 * vigil_hub_action_result() with their audit checkpoint, and starts it. Its
 * own HTTP routes are not mounted (vigil_remediator_mount() does that).
 * Call it before vigil_hub_start().
 * @param opts the remediator's options (borrowed); late_result must be NULL:
 *        the hub takes it.
 * @param out receives the remediator, the caller's. Stop it with
 *        vigil_remediator_stop() before vigil_hub_stop(), and free it with
 *        vigil_remediator_free() after vigil_hub_free().
 * @return VIGIL_OK; VIGIL_EINVAL (NULL argument, late_result set); the codes
 *         of vigil_remediator_new() and vigil_remediator_start(). On error
 *         nothing is attached and *out is NULL.
 * @since 0.2.0
 */
VIGIL_EXTERN(int)
vigil_hub_attach_remediator(vigil_hub *hub, const vigil_remediator_options *opts,
                            vigil_remediator **out);

/**
 * The one entry point of action results: from the dispatcher, from the route
 * POST /v1/actions/{id}/result, or from an embedder. Updates the hub's
 * actions ledger (status, reason, output, duration, audit checkpoint),
 * gives the result to the policy engine (closed loop: remediated,
 * ineffective, escalation) and publishes an "action" event.
 * A PENDING_APPROVAL result is not final: the final one may follow.
 * @param result its id names the request; borrowed.
 * @param audit_seq the remediator's audit checkpoint sent with the result
 *        (0: none); @p audit_mac its MAC, 64 hex digits (NULL or "": none).
 * @return VIGIL_OK; VIGIL_ENOTFOUND (no request with that id); VIGIL_ECONFLICT
 *         (the request already has a final result; nothing changed);
 *         VIGIL_EINVAL (NULL, no id, unknown status, bad audit MAC); the codes
 *         of vigil_store_action_update().
 * Thread-safe. @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_hub_action_result(vigil_hub *hub, const vigil_action_result *result, int64_t audit_seq,
                        const char *audit_mac);

/**
 * Requests an action by hand (as POST /v1/actions does): records it in the
 * actions ledger with a new id ("manual-<ms>-<hex>") and dispatches it like
 * a policy's request. The request's own id and policy are ignored.
 * @param id_out receives the id (cleared first); may be NULL.
 * @return VIGIL_OK (the result arrives through vigil_hub_action_result(); a
 *         request that cannot be dispatched is recorded as failed with reason
 *         "no_remediator" or "dispatch_failed"); VIGIL_EINVAL (NULL, no action
 *         or target); VIGIL_EVERSION (unknown request version); VIGIL_ELIMIT
 *         (a field too long); VIGIL_EUNSUPPORTED (a follower of a cluster,
 *         vigil_hub_set_cluster(): nothing recorded; since 0.4.0); the codes
 *         of vigil_store_action_put(); VIGIL_ENOMEM.
 * Thread-safe. @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_hub_action_request(vigil_hub *hub, const vigil_action_request *request, vigil_buf *id_out);

/* ---- configuration (configs/collector.yaml) ------------------------------ */

/**
 * Loads and validates a collector.yaml (keys documented in
 * configs/collector.yaml). Unknown keys are refused with their location.
 * The `store:` scheme and the `kind:` of each policy resolve in the built-in
 * types, then in copts->store_types and copts->policy_types, which the
 * loaded hub options carry on; an in-process remediator's remediator.yaml
 * is loaded with the same @p copts (its `actions:` see copts->action_types).
 * @param out receives the configuration, the caller's; free with
 *        vigil_hub_config_free().
 * @param copts loader options (NULL: defaults; its registries are borrowed
 *        and must outlive the configuration).
 * @return VIGIL_OK; the codes of vigil_config_load_file(); VIGIL_EUNKNOWNKEY,
 *         VIGIL_ETYPE, VIGIL_EVALUE, VIGIL_ERANGE, VIGIL_EMISSING,
 *         VIGIL_EUNSUPPORTED (unknown store scheme or policy kind) (located
 *         messages); VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_hub_config_load(vigil_hub_config **out, const char *path, const vigil_config_options *copts);

/**
 * As vigil_hub_config_load(), from memory; @p name names it in messages.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_hub_config_load_string(vigil_hub_config **out, const char *text, size_t len, const char *name,
                             const vigil_config_options *copts);

/** Frees a configuration. NULL is a no-op. @since 0.1.0 */
VIGIL_EXTERN(void) vigil_hub_config_free(vigil_hub_config *config);

/**
 * The options the configuration describes, borrowed from it (valid until
 * vigil_hub_config_free()); copy a struct to change its logger.
 * @since 0.1.0
 */
VIGIL_EXTERN(const vigil_hub_options *) vigil_hub_config_hub(const vigil_hub_config *config);
/** @copydoc vigil_hub_config_hub */
VIGIL_EXTERN(const vigil_api_options *) vigil_hub_config_api(const vigil_hub_config *config);
/** The `cluster:` section (enabled 0 when absent; holder NULL unless set).
 * @since 0.4.0 */
VIGIL_EXTERN(const vigil_hub_cluster_options *)
vigil_hub_config_cluster(const vigil_hub_config *config);
/** @copydoc vigil_hub_config_hub */
VIGIL_EXTERN(const vigil_httpd_options *) vigil_hub_config_httpd(const vigil_hub_config *config);

/** Settings of the daemon process itself. @since 0.1.0 */
typedef struct vigil_hub_daemon_options {
    unsigned int version;      /**< VIGIL_HUB_DAEMON_OPTIONS_VERSION */
    int64_t drain_timeout_ms;  /**< http.drain_timeout: on SIGTERM, how long requests in
                                    progress may take to finish; default 10 s */
    vigil_log_level log_level; /**< log.level; default info */
} vigil_hub_daemon_options;

#define VIGIL_HUB_DAEMON_OPTIONS_VERSION 1

/** @copydoc vigil_hub_config_hub */
VIGIL_EXTERN(const vigil_hub_daemon_options *)
vigil_hub_config_daemon(const vigil_hub_config *config);

/**
 * Names the top-level keys of collector.yaml whose values differ between the
 * configuration a hub runs with and one loaded later (present in one only, or
 * with another value), except `policies`, `policies_dir` and `silences`,
 * which vigil_hub_reload_policies() applies live: what is named needs a
 * restart (listen, store, security, ...). Files named by the configuration
 * (tokens, a remediator.yaml) are not compared.
 * @param out receives the keys separated by commas, in file order, "" when
 *        none (cleared first).
 * @return VIGIL_OK, VIGIL_EINVAL (NULL), VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_hub_config_restart_keys(const vigil_hub_config *running, const vigil_hub_config *fresh,
                              vigil_buf *out);

/** A loaded remediator.yaml (vigil/remediator.h). @since 0.1.0 */
struct vigil_remediator_config;

/**
 * The remediator to run inside the hub's process, when the configuration
 * says `remediator: {inprocess: true, config: PATH}`: the remediator.yaml at
 * PATH (relative to the working directory), which vigil_hub_config_load()
 * loaded and validated (its errors are located in that file, after the
 * location of `config:`). Its HTTP side is not used: listen, http, security,
 * secret_env, max_skew and hub are checked but the variables they name need
 * not be set, and its options (vigil_remediator_config_options()) carry no
 * secret_env, hub_url nor hub_token_env. To run it, pass those options to
 * vigil_hub_attach_remediator(); on shutdown stop the hub's intake (its
 * server, vigil_httpd_shutdown()), then the remediator, then the hub.
 * `inprocess` excludes the keys
 * of the HTTP dispatcher (url, secret_env, timeout, ...): the hub options
 * then have no remediator_url.
 * @return the configuration, borrowed from @p config (valid until
 *         vigil_hub_config_free()); NULL when the remediator is not in
 *         process or @p config is NULL.
 * @since 0.1.0
 */
VIGIL_EXTERN(const struct vigil_remediator_config *)
vigil_hub_config_remediator(const vigil_hub_config *config);

#ifdef __cplusplus
}
#endif

#endif
