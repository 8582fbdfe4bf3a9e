/* The hub's side of remediation: the policy engine it owns, the actions
 * ledger, dispatch of requests (the built-in HTTP dispatcher or one set by
 * the embedder) and the one entry point of results. */
#include "crypto/crypto.h"
#include "hub/hub_int.h"
#include "internal/json.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVENT_MAX      (60 * 1024)
#define EVENT_TEXT_MAX 4096
#define COMPONENT      "hub"

int64_t vigil__hub_now(const vigil_hub *hub)
{
    return hub->clock ? hub->clock(hub->clock_payload) : vigil__now_ms();
}

/* Statuses after which no other result is accepted. */
static int status_final(const char *s)
{
    return s && strcmp(s, "pending") != 0 && strcmp(s, "pending_approval") != 0 &&
           strcmp(s, "approved") != 0 && strcmp(s, "running") != 0;
}

static vigil_engine_stats engine_stats(void *p)
{
    vigil_hub *hub = p;
    vigil_engine_stats st = VIGIL_ENGINE_STATS_INIT;
    if (hub->engine)
        vigil_engine_stats_get(hub->engine, &st);
    return st;
}

static double g_policies(void *p)
{
    return (double)engine_stats(p).policies;
}

static double g_eval_errors(void *p)
{
    vigil_engine_stats st = engine_stats(p);
    return (double)(st.policy_errors + st.template_errors + st.eval_errors);
}

static double g_stale(void *p)
{
    return (double)engine_stats(p).stale;
}

static double g_series_refused(void *p)
{
    return (double)engine_stats(p).series_refused;
}

static double g_series_evicted(void *p)
{
    return (double)engine_stats(p).series_evicted;
}

int vigil__hub_init_action_metrics(vigil_hub *hub)
{
    static const char *const status[] = {"status", NULL};
    static const char *const reason[] = {"reason", NULL};
    static const char *const decision[] = {"decision", NULL};
    static const char *const op[] = {"op", NULL};
    static const double buckets[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};
    vigil__prom *p = hub->prom;
    int rc = vigil__prom_counter(p, &hub->m_actions, "vigil_actions_total",
                                 "Action results recorded, by status.", status);
    if (!rc)
        rc = vigil__prom_histogram(p, &hub->m_dispatch, "vigil_action_dispatch_duration_seconds",
                                   "Time from dispatching an action request to its result.", NULL,
                                   buckets, VIGIL__ARRAY_LEN(buckets));
    if (!rc)
        rc =
            vigil__prom_counter(p, &hub->m_dispatch_failed, "vigil_action_dispatch_failures_total",
                                "Action requests that could not be dispatched, by reason.", reason);
    if (!rc)
        rc = vigil__prom_counter(p, &hub->m_decisions, "vigil_policy_decisions_total",
                                 "Policy decisions recorded, by kind.", decision);
    if (!rc)
        rc = vigil__prom_counter(p, &hub->m_engine_errors, "vigil_policy_engine_errors_total",
                                 "Policy engine calls that failed, by operation.", op);
    if (!rc)
        rc = vigil__prom_gauge_func(p, "vigil_policies", "Policies loaded.", g_policies, hub);
    if (!rc)
        rc = vigil__prom_gauge_func(p, "vigil_policy_evaluation_errors",
                                    "Policy evaluations that failed since start (code policies, "
                                    "templates naming a missing tag, windows).",
                                    g_eval_errors, hub);
    if (!rc)
        rc = vigil__prom_gauge_func(p, "vigil_policy_stale_samples",
                                    "Samples older than act_within, not evaluated, since start.",
                                    g_stale, hub);
    if (!rc)
        rc = vigil__prom_gauge_func(p, "vigil_policy_series_refused",
                                    "New series refused by a cap (series_per_agent, 100,000 per "
                                    "policy) since start; each cap reached is also a `capped` "
                                    "decision.",
                                    g_series_refused, hub);
    if (!rc)
        rc = vigil__prom_gauge_func(p, "vigil_policy_series_evicted",
                                    "Series that left a policy after series_idle without a sample, "
                                    "since start.",
                                    g_series_evicted, hub);
    return rc;
}

void vigil__hub_engine_error(vigil_hub *hub, const char *op, int rc)
{
    const char *v[] = {op};
    vigil__prom_add(hub->m_engine_errors, v, 1);
    vigil_buf m = VIGIL_BUF_INIT;
    if (vigil__logfmt_value(&m, vigil_error_last()->message) == VIGIL_OK)
        vigil__log(&hub->logger, VIGIL_LOG_WARN, COMPONENT, "policy engine call failed",
                   "op=%s code=%d error=%s", op, rc, m.ptr);
    vigil_buf_dispose(&m);
}

/* ---- events -------------------------------------------------------------------------- */

static int put_field(vigil_buf *b, const char *key, const char *value, int comma)
{
    int rc = vigil__buf_printf(b, "%s\"%s\":", comma ? "," : "", key);
    if (!rc) {
        if (!value) {
            rc = vigil__buf_puts(b, "null");
        } else {
            size_t n = strlen(value);
            rc = vigil__json_put_string(b, value, n > EVENT_TEXT_MAX ? EVENT_TEXT_MAX : n);
        }
    }
    return rc;
}

static void publish_action(vigil_hub *hub, const vigil_store_action *a,
                           const vigil_action_result *r)
{
    vigil_buf b = VIGIL_BUF_INIT;
    int rc = vigil__buf_puts(&b, "{");
    if (!rc)
        rc = put_field(&b, "id", a->id, 0);
    if (!rc)
        rc = put_field(&b, "status", vigil_action_status_name(r->status), 1);
    if (!rc)
        rc = put_field(&b, "reason", r->reason, 1);
    if (!rc)
        rc = put_field(&b, "action", a->action, 1);
    if (!rc)
        rc = put_field(&b, "target", a->target, 1);
    if (!rc)
        rc = put_field(&b, "policy", a->policy, 1);
    if (!rc)
        rc = vigil__buf_printf(&b, ",\"duration_ms\":%lld,\"ts\":%lld}", (long long)r->duration_ms,
                               (long long)vigil__hub_now(hub));
    if (!rc && b.size <= EVENT_MAX)
        vigil_hub_publish(hub, "action", b.ptr);
    vigil_buf_dispose(&b);
}

void vigil__hub_on_decision(void *payload, const vigil_store_decision *d)
{
    vigil_hub *hub = payload;
    const char *v[] = {d->decision ? d->decision : ""};
    vigil__prom_add(hub->m_decisions, v, 1);
    vigil_buf b = VIGIL_BUF_INIT;
    int rc =
        vigil__buf_printf(&b, "{\"id\":%lld,\"ts\":%lld", (long long)d->id, (long long)d->ts_ms);
    if (!rc)
        rc = put_field(&b, "policy", d->policy, 1);
    if (!rc)
        rc = put_field(&b, "series", d->series, 1);
    if (!rc)
        rc = put_field(&b, "target", d->target, 1);
    if (!rc)
        rc = put_field(&b, "action", d->action, 1);
    if (!rc)
        rc = put_field(&b, "action_id", d->action_id, 1);
    if (!rc)
        rc = put_field(&b, "decision", d->decision, 1);
    if (!rc)
        rc = put_field(&b, "reason", d->reason ? d->reason : "", 1);
    if (!rc)
        rc = vigil__buf_putc(&b, '}');
    if (!rc && b.size <= EVENT_MAX)
        vigil_hub_publish(hub, "decision", b.ptr);
    vigil_buf_dispose(&b);
}

/* ---- results ------------------------------------------------------------------------- */

typedef struct got_action {
    vigil_store_action *a;
} got_action;

int vigil_hub_action_result(vigil_hub *hub, const vigil_action_result *result, int64_t audit_seq,
                            const char *audit_mac)
{
    if (!hub || !result)
        return vigil__error_set(VIGIL_EINVAL, "hub action result: NULL argument");
    if (!result->id || !*result->id || strlen(result->id) > VIGIL_STORE_ID_MAX)
        return vigil__error_set(VIGIL_EINVAL,
                                "hub action result: the result needs an id of 1-%d "
                                "bytes",
                                VIGIL_STORE_ID_MAX);
    const char *status = vigil_action_status_name(result->status);
    if (strcmp(status, "unknown") == 0)
        return vigil__error_set(VIGIL_EINVAL, "hub action result: unknown status %d",
                                (int)result->status);
    int has_mac = audit_mac && *audit_mac;
    if (audit_seq < 0 || (audit_seq > 0) != has_mac ||
        (has_mac && !vigil__hub_mac_valid(audit_mac)))
        return vigil__error_set(VIGIL_EINVAL, "hub action result: an audit checkpoint is a seq "
                                              ">= 1 with a MAC of 64 hex digits");
    int final = result->status != VIGIL_ACTION_PENDING_APPROVAL;
    vigil_store_action *cur = NULL;
    pthread_mutex_lock(&hub->act_mu);
    int rc = vigil_store_action_get(hub->store, result->id, &cur);
    if (rc == VIGIL_ENOTFOUND)
        rc = vigil__error_set(VIGIL_ENOTFOUND, "no action request with id \"%.128s\"", result->id);
    if (!rc && status_final(cur->status))
        rc = vigil__error_set(VIGIL_ECONFLICT, "action \"%.128s\" already has a final result (%s)",
                              result->id, cur->status);
    if (!rc) {
        vigil_store_action up;
        memset(&up, 0, sizeof(up));
        up.id = result->id;
        up.status = status;
        up.result_reason = result->reason;
        up.output = result->output;
        up.duration_ms = result->duration_ms;
        up.updated_ms = vigil__hub_now(hub);
        /* a pending result without a checkpoint keeps none; a later one sets it */
        up.audit_seq = audit_seq;
        up.audit_hash = has_mac ? audit_mac : NULL;
        rc = vigil_store_action_update(hub->store, &up);
    }
    pthread_mutex_unlock(&hub->act_mu);
    if (rc) {
        vigil_store_action_free(cur);
        return rc;
    }
    const char *sv[] = {status};
    vigil__prom_add(hub->m_actions, sv, 1);
    vigil__hub_log_fields(
        hub, final ? VIGIL_LOG_INFO : VIGIL_LOG_DEBUG, "action result",
        (const char *const[]){"id", result->id, "action", cur->action, "status", status, NULL});
    publish_action(hub, cur, result);
    vigil_store_action_free(cur);
    /* outside act_mu: the engine may request the next action (escalation)
     * from inside this call */
    int erc = vigil_engine_action_result(hub->engine, result);
    if (erc && erc != VIGIL_ENOTFOUND)
        vigil__hub_engine_error(hub, "action_result", erc);
    return VIGIL_OK;
}

/* ---- dispatch ------------------------------------------------------------------------ */

typedef struct dispatch_ctx {
    vigil_hub *hub;
    int64_t t0_ns;
    uint64_t epoch; /* the leader's, when clustered; else 0 */
} dispatch_ctx;

static void record_result(vigil_hub *hub, const vigil_action_result *r, int64_t seq,
                          const char *mac)
{
    int rc = vigil_hub_action_result(hub, r, seq, mac);
    if (rc) {
        vigil_buf m = VIGIL_BUF_INIT;
        if (vigil__logfmt_value(&m, vigil_error_last()->message) == VIGIL_OK)
            vigil__log(&hub->logger, VIGIL_LOG_WARN, COMPONENT, "action result not recorded",
                       "id=%s code=%d error=%s", r->id ? r->id : "", rc, m.ptr);
        vigil_buf_dispose(&m);
    }
}

static void done_ex(const vigil_action_result *r, int64_t seq, const char *mac, void *payload)
{
    dispatch_ctx *c = payload;
    vigil_hub *hub = c->hub;
    uint64_t epoch = c->epoch;
    vigil__prom_observe(hub->m_dispatch, NULL, (double)(vigil__monotonic_ns() - c->t0_ns) / 1e9);
    vigil__free(c);
    if (epoch && r->reason && strcmp(r->reason, VIGIL__STALE_EPOCH) == 0) {
        /* fenced out: a newer leader owns the ledger and redelivers the
         * request with its epoch; this hub records nothing */
        vigil__log(&hub->logger, VIGIL_LOG_WARN, COMPONENT,
                   "remediator refused the request: stale epoch; left to the leader",
                   "id=%s epoch=%llu", r->id ? r->id : "", (unsigned long long)epoch);
        vigil__hub_cluster_fenced(hub, epoch);
        return;
    }
    record_result(hub, r, seq, mac);
}

static void done_plain(const vigil_action_result *r, void *payload)
{
    done_ex(r, 0, NULL, payload);
}

/* Records a FAILED result with `reason` for a request that went nowhere. */
static void fail_request(vigil_hub *hub, const char *id, const char *reason, const char *msg)
{
    const char *v[] = {reason};
    vigil__prom_add(hub->m_dispatch_failed, v, 1);
    vigil_action_result r = VIGIL__ACTION_RESULT_EMPTY;
    r.status = VIGIL_ACTION_FAILED;
    vigil_action_result_set_id(&r, id);
    vigil_action_result_set_reason(&r, reason);
    if (msg)
        vigil_action_result_set_output(&r, msg, strlen(msg));
    if (r.id)
        record_result(hub, &r, 0, NULL);
    vigil_action_result_clear(&r);
}

int vigil__hub_dispatch(vigil_hub *hub, const vigil_action_request *req, const char *series)
{
    if (!req->id || !*req->id)
        return vigil__error_set(VIGIL_EINVAL, "hub dispatch: the request has no id");
    vigil_buf params = VIGIL_BUF_INIT;
    int rc = vigil__hub_params_json(&params, req);
    int created = 0;
    if (!rc) {
        vigil_store_action a;
        memset(&a, 0, sizeof(a));
        a.id = req->id;
        a.requested_ms = vigil__hub_now(hub);
        a.action = req->action;
        a.target = req->target ? req->target : "";
        a.params_json = params.ptr;
        a.reason = req->reason;
        a.policy = req->policy;
        a.series = series;
        a.dry_run = req->dry_run != 0;
        a.status = "pending";
        a.duration_ms = -1;
        a.updated_ms = a.requested_ms;
        rc = vigil_store_action_put(hub->store, &a, &created);
        if (!rc && !created)
            rc = vigil__error_set(VIGIL_EEXISTS, "action request \"%.128s\" exists already",
                                  req->id);
    }
    vigil_buf_dispose(&params);
    if (rc) {
        /* Not in the ledger, so never dispatched: the engine learns it failed. */
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", vigil_error_last()->message);
        vigil__hub_engine_error(hub, "ledger", rc);
        vigil_action_result r = VIGIL__ACTION_RESULT_EMPTY;
        r.status = VIGIL_ACTION_FAILED;
        if (vigil_action_result_set_id(&r, req->id) == VIGIL_OK &&
            vigil_action_result_set_reason(&r, "ledger_failed") == VIGIL_OK && rc != VIGIL_EEXISTS)
            vigil_engine_action_result(hub->engine, &r);
        vigil_action_result_clear(&r);
        return vigil__error_set(rc, "%s", msg);
    }
    vigil__hub_log_fields(hub, VIGIL_LOG_INFO, "action requested",
                          (const char *const[]){"id", req->id, "action", req->action, "policy",
                                                req->policy, "target", req->target, NULL});
    vigil__hub_submit(hub, req, series);
    return VIGIL_OK;
}

/* The value of tag `host` in a series key (name{k="v",...}, keys sorted,
 * values escaped), unescaped into out, or the source of a drift series
 * ("drift/<source>/<kind>/<name>"); 0 when there is none. */
static int series_host(char *out, size_t size, const char *series)
{
    if (series && strncmp(series, "drift/", 6) == 0) {
        /* a drift request: "drift/<source>/<kind>/<name>", the source a host */
        size_t n = strcspn(series + 6, "/");
        if (!n || !series[6 + n])
            return 0;
        n = n < size - 1 ? n : size - 1;
        memcpy(out, series + 6, n);
        out[n] = '\0';
        return 1;
    }
    const char *p = series ? strchr(series, '{') : NULL;
    if (!p)
        return 0;
    for (;;) {
        p++; /* past '{' or ',' */
        const char *eq = strchr(p, '=');
        if (!eq || eq[1] != '"')
            return 0;
        int is_host = (size_t)(eq - p) == 4 && memcmp(p, "host", 4) == 0;
        size_t n = 0;
        const char *v = eq + 2;
        for (; *v && *v != '"'; v++) {
            char c = *v;
            if (c == '\\' && v[1]) {
                v++;
                c = *v == 'n' ? '\n' : *v;
            }
            if (is_host && n + 1 < size)
                out[n++] = c;
        }
        if (is_host) {
            out[n] = '\0';
            return n > 0;
        }
        if (!*v || v[1] != ',') /* the value ends with '"', then ',' or '}' */
            return 0;
        p = v + 1;
    }
}

int vigil__hub_request_host(char *out, size_t size, const vigil_action_request *req,
                            const char *series)
{
    out[0] = '\0';
    if (series_host(out, size, series))
        return 1;
    const char *h = vigil_action_request_param(req, "host");
    if (h && *h) {
        snprintf(out, size, "%s", h);
        return 1;
    }
    const char *t = req->target;
    const char *slash = t ? strchr(t, '/') : NULL;
    if (slash && slash > t) {
        size_t n = (size_t)(slash - t);
        n = n < size - 1 ? n : size - 1;
        memcpy(out, t, n);
        out[n] = '\0';
        return 1;
    }
    return 0;
}

/* The fleet entry of the remediator of req's host: the first whose globs
 * match; -1 for the default (hub->http). */
static int route_index(const vigil_hub *hub, const vigil_action_request *req, const char *series)
{
    char host[256];
    if (!hub->nfleet || !vigil__hub_request_host(host, sizeof(host), req, series))
        return -1;
    for (size_t i = 0; i < hub->nfleet; i++)
        for (size_t k = 0; k < hub->fleet[i].nagents; k++)
            if (fnmatch(hub->fleet[i].agents[k], host, 0) == 0)
                return (int)i;
    return -1;
}

static vigil__dispatch *route_of(vigil_hub *hub, const vigil_action_request *req,
                                 const char *series)
{
    int i = route_index(hub, req, series);
    return i < 0 ? hub->http : hub->fleet[i].d;
}

int vigil__hub_route_of_target(const vigil_hub *hub, const char *target)
{
    vigil_action_request req = VIGIL_ACTION_REQUEST_INIT;
    req.target = target;
    return route_index(hub, &req, NULL);
}

int vigil__hub_route_of_action(vigil_hub *hub, const char *id)
{
    vigil_store_action *a = NULL;
    if (!hub->nfleet || !id || vigil_store_action_get(hub->store, id, &a) != VIGIL_OK)
        return -1;
    vigil_action_request req = VIGIL_ACTION_REQUEST_INIT;
    vigil_action_param host = {"host", NULL};
    cJSON *params = a->params_json ? cJSON_Parse(a->params_json) : NULL;
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(params, "host");
    if (cJSON_IsString(h)) {
        host.value = h->valuestring;
        req.params = &host;
        req.nparams = 1;
    }
    req.id = a->id;
    req.action = a->action;
    req.target = a->target;
    int i = route_index(hub, &req, a->series);
    cJSON_Delete(params);
    vigil_store_action_free(a);
    return i;
}

void vigil__hub_submit(vigil_hub *hub, const vigil_action_request *req, const char *series)
{
    uint64_t epoch = 0;
    if (!vigil__hub_may_act(hub, &epoch)) {
        /* a follower, or a leader whose lease ran out: the request stays
         * pending in the ledger, which the next leader recovers */
        vigil__log(&hub->logger, VIGIL_LOG_WARN, COMPONENT,
                   "not the leader: request left pending for the leader", "id=%s", req->id);
        return;
    }
    pthread_mutex_lock(&hub->mu);
    int has = hub->has_disp;
    vigil_action_dispatcher disp = hub->disp;
    pthread_mutex_unlock(&hub->mu);
    vigil__dispatch *http = has ? NULL : route_of(hub, req, series);
    if (!has && !http) {
        fail_request(hub, req->id, "no_remediator", "no remediator is configured for its host");
        return;
    }
    dispatch_ctx *c = vigil__malloc(sizeof(*c));
    if (!c) {
        fail_request(hub, req->id, "dispatch_failed", "out of memory");
        return;
    }
    c->hub = hub;
    c->t0_ns = vigil__monotonic_ns();
    c->epoch = epoch;
    int rc = has ? disp.submit(disp.self, req, done_plain, c)
                 : vigil__dispatch_submit(http, req, epoch, done_ex, c);
    if (rc) {
        vigil__free(c);
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", vigil_error_last()->message);
        vigil__log(&hub->logger, VIGIL_LOG_WARN, COMPONENT, "action not dispatched",
                   "id=%s code=%d", req->id, rc);
        fail_request(hub, req->id, "dispatch_failed", msg);
    }
}

static void on_request(void *payload, const vigil_engine_request *er)
{
    vigil_hub *hub = payload;
    vigil__hub_dispatch(hub, er->request, er->series);
}

vigil_engine *vigil_hub_engine(vigil_hub *hub)
{
    return hub ? hub->engine : NULL;
}

int vigil_hub_set_dispatcher(vigil_hub *hub, const vigil_action_dispatcher *d)
{
    if (!hub)
        return vigil__error_set(VIGIL_EINVAL, "hub set dispatcher: NULL hub");
    if (d && vigil__version_check("action dispatcher", d->version, VIGIL_ACTION_DISPATCHER_VERSION))
        return VIGIL_EVERSION;
    if (d && !d->submit)
        return vigil__error_set(VIGIL_EINVAL, "hub set dispatcher: submit is required");
    pthread_mutex_lock(&hub->mu);
    if (d) {
        hub->disp = *d;
        hub->has_disp = 1;
    } else {
        memset(&hub->disp, 0, sizeof(hub->disp));
        hub->has_disp = 0;
    }
    pthread_mutex_unlock(&hub->mu);
    return VIGIL_OK;
}

/* ---- manual requests ----------------------------------------------------------------- */

static int check_text(const char *what, const char *s, size_t max, int required)
{
    if (!s || !*s)
        return required ? vigil__error_set(VIGIL_EINVAL, "%s: required", what) : VIGIL_OK;
    size_t n = strlen(s);
    if (n > max)
        return vigil__error_set(VIGIL_ELIMIT, "%s: longer than %zu bytes", what, max);
    if (!vigil__utf8_valid(s, n))
        return vigil__error_set(VIGIL_EINVAL, "%s: invalid UTF-8", what);
    return VIGIL_OK;
}

int vigil_hub_action_request(vigil_hub *hub, const vigil_action_request *request, vigil_buf *id_out)
{
    if (id_out)
        vigil__buf_clear(id_out);
    if (!hub || !request)
        return vigil__error_set(VIGIL_EINVAL, "hub action request: NULL argument");
    if (vigil__version_check("hub action request", request->version, VIGIL_ACTION_REQUEST_VERSION))
        return VIGIL_EVERSION;
    int rc = check_text("action", request->action, VIGIL_ACTION_NAME_MAX, 1);
    if (!rc)
        rc = check_text("target", request->target, VIGIL_ACTION_VALUE_MAX, 1);
    if (!rc)
        rc = check_text("reason", request->reason, VIGIL_ACTION_TEXT_MAX, 0);
    if (!rc && request->nparams > VIGIL_ACTION_PARAMS_MAX)
        rc = vigil__error_set(VIGIL_ELIMIT, "params: more than %d parameters",
                              VIGIL_ACTION_PARAMS_MAX);
    if (!rc && request->nparams && !request->params)
        rc = vigil__error_set(VIGIL_EINVAL, "params: missing");
    for (size_t i = 0; !rc && i < request->nparams; i++) {
        char what[64];
        snprintf(what, sizeof(what), "params[%zu]", i);
        rc = check_text(what, request->params[i].key, VIGIL_ACTION_NAME_MAX, 1);
        if (!rc && !request->params[i].value)
            rc = vigil__error_set(VIGIL_EINVAL, "%s: no value", what);
        if (!rc)
            rc = check_text(what, request->params[i].value, VIGIL_ACTION_VALUE_MAX, 0);
    }
    if (rc)
        return rc;
    uint64_t epoch;
    if (!vigil__hub_may_act(hub, &epoch))
        return vigil__error_set(VIGIL_EUNSUPPORTED,
                                "this hub is a follower: manual requests go to the leader "
                                "(GET /v1/cluster names it)");
    unsigned char rnd[4] = {0};
    if (vigil__crypto_random(rnd, sizeof(rnd)) != VIGIL_OK) {
        uint64_t x = (uint64_t)vigil__monotonic_ns();
        memcpy(rnd, &x, sizeof(rnd));
    }
    char id[64];
    snprintf(id, sizeof(id), "manual-%lld-%02x%02x%02x%02x", (long long)vigil__hub_now(hub), rnd[0],
             rnd[1], rnd[2], rnd[3]);
    vigil_action_request r = *request;
    r.id = id;
    r.policy = NULL;
    rc = vigil__hub_dispatch(hub, &r, NULL);
    if (!rc && id_out)
        rc = vigil__buf_puts(id_out, id);
    return rc;
}

/* ---- the engine ---------------------------------------------------------------------- */

static int aggregate(void *payload, const char *series_key, vigil_window_agg agg,
                     int64_t duration_ms, int64_t now_ms, double *out)
{
    return vigil_hub_window_aggregate(payload, series_key, agg, duration_ms, now_ms, out);
}

/* Writes a YAML map of scalars as a JSON object of strings. */
static int map_json(vigil_buf *b, const vigil_config_node *map)
{
    int rc = vigil_config_map(map);
    if (!rc && vigil_config_node_len(map) == 0)
        rc = vigil_error_set_at(VIGIL_EVALUE, map, "expected at least one matcher");
    if (!rc)
        rc = vigil__buf_putc(b, '{');
    for (size_t i = 0; !rc && i < vigil_config_node_len(map); i++) {
        const char *key = vigil_config_node_key_at(map, i);
        const char *value = NULL;
        rc = vigil_config_string(&value, vigil_config_node_at(map, i));
        if (!rc && i)
            rc = vigil__buf_putc(b, ',');
        if (!rc)
            rc = vigil__json_put_string(b, key, strlen(key));
        if (!rc)
            rc = vigil__buf_putc(b, ':');
        if (!rc)
            rc = vigil__json_put_string(b, value, strlen(value));
    }
    return rc ? rc : vigil__buf_putc(b, '}');
}

static int config_time(int64_t *out, const vigil_config_node *map, const char *key, int64_t def,
                       int required)
{
    const vigil_config_node *n = vigil_config_node_get(map, key);
    if (!n || vigil_config_node_kind(n) == VIGIL_CONFIG_NULL) {
        if (required)
            return vigil_config_require(map, key);
        *out = def;
        return VIGIL_OK;
    }
    const char *s;
    int rc = vigil_config_string(&s, n);
    if (rc)
        return rc;
    if (vigil__hub_parse_time(out, key, s, 0, 1) || s[0] == '-' || strcmp(s, "now") == 0)
        return vigil_error_set_at(VIGIL_EVALUE, n,
                                  "expected epoch milliseconds or an RFC 3339 time such as "
                                  "\"2025-01-31T22:00:00Z\"");
    return VIGIL_OK;
}

typedef struct same_silence {
    const char *matchers;
    int64_t starts, ends;
    const char *comment;
    int found;
} same_silence;

static int find_silence(const vigil_store_silence *s, void *payload)
{
    same_silence *w = payload;
    if (s->starts_ms != w->starts || s->ends_ms != w->ends ||
        strcmp(s->comment ? s->comment : "", w->comment) != 0)
        return 0;
    cJSON *a = cJSON_Parse(s->matchers_json);
    cJSON *b = cJSON_Parse(w->matchers);
    if (a && b && cJSON_Compare(a, b, 1))
        w->found = 1;
    cJSON_Delete(a);
    cJSON_Delete(b);
    return w->found;
}

static int add_silences(vigil_store *store, vigil_engine *engine, const vigil_config_node *list)
{
    static const char *const keys[] = {"matchers", "starts", "ends", "comment", NULL};
    if (!list || vigil_config_node_kind(list) == VIGIL_CONFIG_NULL)
        return VIGIL_OK;
    int rc = vigil_config_list(list);
    vigil__json_init();
    for (size_t i = 0; !rc && i < vigil_config_node_len(list); i++) {
        const vigil_config_node *s = vigil_config_node_at(list, i);
        const char *comment = "";
        int64_t starts = 0, ends = 0;
        vigil_buf m = VIGIL_BUF_INIT, id = VIGIL_BUF_INIT;
        rc = vigil_config_map(s);
        if (!rc)
            rc = vigil_config_expect_keys(s, keys);
        if (!rc)
            rc = vigil_config_require(s, "matchers");
        if (!rc)
            rc = map_json(&m, vigil_config_node_get(s, "matchers"));
        if (!rc)
            rc = config_time(&starts, s, "starts", 0, 0);
        if (!rc)
            rc = config_time(&ends, s, "ends", 0, 1);
        if (!rc)
            rc = vigil_config_get_string(&comment, s, "comment", "");
        if (!rc && ends <= starts)
            rc = vigil_error_set_at(VIGIL_EVALUE, vigil_config_node_get(s, "ends"),
                                    "must be after starts");
        same_silence w = {m.ptr, starts, ends, comment, 0};
        if (!rc) {
            rc = vigil_store_silence_list(store, 0, find_silence, &w);
            if (rc > 0)
                rc = VIGIL_OK;
        }
        if (!rc && !w.found) {
            rc = vigil_engine_silence_add(engine, m.ptr, starts, ends, "config", comment, &id);
            if (rc) {
                char msg[1024];
                snprintf(msg, sizeof(msg), "%s", vigil_error_last()->message);
                rc = vigil_error_set_at(rc, s, msg);
            }
        }
        vigil_buf_dispose(&m);
        vigil_buf_dispose(&id);
    }
    return rc;
}

/* The options' policies, policies_dir and silences. */
static int load_policies(vigil_store *store, vigil_engine *engine, const vigil_hub_options *o)
{
    int rc = VIGIL_OK;
    if (o->policies && vigil_config_node_kind(o->policies) != VIGIL_CONFIG_NULL)
        rc = vigil_engine_load(engine, o->policies);
    if (!rc && o->policies_dir && *o->policies_dir)
        rc = vigil_engine_load_dir(engine, o->policies_dir, NULL);
    if (!rc)
        rc = add_silences(store, engine, o->silences);
    return rc;
}

int vigil__hub_check_policies(const vigil_hub_options *o)
{
    if (!o->policies && !(o->policies_dir && *o->policies_dir) && !o->silences)
        return VIGIL_OK;
    vigil_store_options so = VIGIL_STORE_OPTIONS_INIT;
    so.logger = o->logger;
    so.logger.min_level = VIGIL_LOG_OFF;
    vigil_store *store = NULL;
    vigil_engine *engine = NULL;
    int rc = vigil_store_open(&store, "sqlite::memory:", &so);
    vigil_engine_options eo = VIGIL_ENGINE_OPTIONS_INIT;
    eo.store = store;
    eo.logger = so.logger;
    eo.policy_types = o->policy_types;
    if (!rc)
        rc = vigil_engine_new(&engine, &eo);
    if (!rc)
        rc = load_policies(store, engine, o);
    vigil_engine_free(engine);
    vigil_store_close(store);
    return rc;
}

int vigil_hub_reload_policies(vigil_hub *hub, const vigil_hub_options *o,
                              struct vigil_engine_reload_result *result)
{
    if (!hub || !o)
        return vigil__error_set(VIGIL_EINVAL, "hub reload policies: NULL argument");
    if (result && vigil__version_check("hub reload policies result", result->version,
                                       VIGIL_ENGINE_RELOAD_RESULT_VERSION))
        return VIGIL_EVERSION;
    vigil_engine_reload_result r = VIGIL_ENGINE_RELOAD_RESULT_INIT;
    int rc = vigil__hub_reload_with_git(hub, o, &r);
    vigil_buf m = VIGIL_BUF_INIT;
    if (rc) {
        if (vigil__logfmt_value(&m, vigil_error_last()->message) == VIGIL_OK)
            vigil__log(&hub->logger, VIGIL_LOG_ERROR, COMPONENT,
                       "policy reload failed; previous policies kept", "code=%d error=%s", rc,
                       m.ptr);
        vigil_buf_dispose(&m);
        return rc;
    }
    vigil__log(&hub->logger, VIGIL_LOG_INFO, COMPONENT, "policies reloaded",
               "added=%zu changed=%zu removed=%zu kept=%zu", r.added, r.changed, r.removed, r.kept);
    if (result) {
        unsigned int v = result->version;
        *result = r;
        result->version = v;
    }
    rc = add_silences(hub->store, hub->engine, o->silences);
    if (rc && vigil__logfmt_value(&m, vigil_error_last()->message) == VIGIL_OK)
        vigil__log(&hub->logger, VIGIL_LOG_ERROR, COMPONENT,
                   "silences of the configuration not added", "code=%d error=%s", rc, m.ptr);
    vigil_buf_dispose(&m);
    return rc;
}

static int restore_desired(const vigil_store_resource *r, void *payload)
{
    vigil_hub *hub = payload;
    int rc;
    if (strcmp(r->kind, "Target") == 0 && strcmp(r->source ? r->source : "", "api") == 0) {
        rc = vigil_engine_set_desired(hub->engine, r->name, r->body_json ? r->body_json : "{}");
    } else {
        /* a source's record (PUT /v1/desired, bulk form): its spec under its key */
        char *spec = NULL;
        rc = vigil__hub_desired_spec(r->body_json ? r->body_json : "{}", &spec);
        if (!rc)
            rc = vigil_engine_set_desired(hub->engine, r->key, spec);
        cJSON_free(spec);
    }
    if (rc)
        vigil__hub_engine_error(hub, "set_desired", rc);
    return 0;
}

/* Creates a dispatcher to `url` with the retry settings of `o` and the TLS
 * files of `tls` (ca_file, cert, key). `what` names the remediator in errors
 * ("remediator", "remediators[1]"). With `secret_copy`, the secret is copied
 * there (to check that remediator's signed late results). */
static int start_http(vigil__dispatch **out, const vigil_hub_options *o, const char *what,
                      const char *url, const char *secret_env, const void *secret,
                      size_t secret_len, const vigil_hub_remediator *tls,
                      unsigned char **secret_copy, size_t *secret_copy_len)
{
    if (!secret || !secret_len) {
        const char *env = secret_env;
        if (!env || !*env)
            return vigil__error_set(VIGIL_EINVAL, "%s: secret_env is required with a url", what);
        const char *v = getenv(env);
        if (!v || !*v)
            return vigil__error_set(VIGIL_EENV,
                                    "%s.secret_env: environment variable \"%.100s\" is "
                                    "not set",
                                    what, env);
        secret = v;
        secret_len = strlen(v);
    }
    if (secret_len < VIGIL_SIGNATURE_SECRET_MIN)
        return vigil__error_set(VIGIL_EVALUE,
                                "%s: the signing secret is %zu bytes; at least %d are required",
                                what, secret_len, VIGIL_SIGNATURE_SECRET_MIN);
    vigil__dispatch_options d;
    memset(&d, 0, sizeof(d));
    d.url = url;
    d.secret = secret;
    d.secret_len = secret_len;
    d.timeout_ms = o->remediator_timeout_ms;
    d.attempts = o->remediator_attempts;
    d.backoff_ms = o->remediator_backoff_ms;
    d.backoff_max_ms = o->remediator_backoff_max_ms;
    d.workers = o->remediator_workers;
    d.queue_max = o->remediator_queue_max;
    d.logger = o->logger;
    if (o->version >= 2) {
        d.ca_file = tls->ca_file;
        d.cert_file = tls->cert;
        d.key_file = tls->key;
    }
    int rc = vigil__dispatch_new(out, &d);
    if (!rc && secret_copy) {
        if (!(*secret_copy = vigil__malloc(secret_len)))
            return vigil__error_oom();
        memcpy(*secret_copy, secret, secret_len);
        *secret_copy_len = secret_len;
    }
    if (rc && rc != VIGIL_ENOMEM)
        rc = vigil__error_set(rc, "%s: %s", what, vigil_error_last()->message);
    return rc;
}

/* options.remediators: checked, then one dispatcher each (hub->fleet). */
static int start_fleet(vigil_hub *hub, const vigil_hub_options *o)
{
    if (o->version < 2 || !o->nremediators)
        return VIGIL_OK;
    if (!o->remediators)
        return vigil__error_set(VIGIL_EINVAL, "remediators: NULL with nremediators %zu",
                                o->nremediators);
    if (o->nremediators > VIGIL_HUB_FLEET_MAX)
        return vigil__error_set(VIGIL_ELIMIT, "remediators: more than %d", VIGIL_HUB_FLEET_MAX);
    hub->fleet = vigil__calloc(o->nremediators, sizeof(*hub->fleet));
    if (!hub->fleet)
        return vigil__error_oom();
    for (size_t i = 0; i < o->nremediators; i++) {
        const vigil_hub_remediator *r = &o->remediators[i];
        vigil__hub_route *f = &hub->fleet[i];
        hub->nfleet = i + 1;
        char what[48];
        snprintf(what, sizeof(what), "remediators[%zu]", i);
        if (!r->url || !*r->url)
            return vigil__error_set(VIGIL_EINVAL, "%s.url: required", what);
        if (!r->nagents || !r->agents || r->nagents > VIGIL_HUB_FLEET_MAX)
            return vigil__error_set(VIGIL_EINVAL, "%s.agents: expected 1 to %d globs", what,
                                    VIGIL_HUB_FLEET_MAX);
        f->agents = vigil__calloc(r->nagents, sizeof(*f->agents));
        if (!f->agents)
            return vigil__error_oom();
        for (size_t k = 0; k < r->nagents; k++) {
            if (!r->agents[k] || !*r->agents[k] || strlen(r->agents[k]) > 255)
                return vigil__error_set(
                    VIGIL_EINVAL, "%s.agents[%zu]: expected a glob of 1 to 255 bytes", what, k);
            if (!(f->agents[k] = vigil__strdup(r->agents[k])))
                return vigil__error_oom();
            f->nagents = k + 1;
        }
        vigil_hub_remediator tls = {0};
        tls.ca_file = r->ca_file;
        tls.cert = r->cert;
        tls.key = r->key;
        int rc = start_http(&f->d, o, what, r->url, r->secret_env, r->secret, r->secret_len, &tls,
                            &f->secret, &f->secret_len);
        if (rc)
            return rc;
    }
    return VIGIL_OK;
}

int vigil__hub_init_engine(vigil_hub *hub, const vigil_hub_options *o)
{
    if (o->policy_interval_ms < 0 || o->act_within_ms < 0 || o->remediator_timeout_ms < 0 ||
        o->remediator_backoff_ms < 0 || o->remediator_backoff_max_ms < 0)
        return vigil__error_set(VIGIL_EINVAL, "hub: durations must not be negative");
    hub->clock = o->clock;
    hub->clock_payload = o->clock_payload;
    hub->policy_interval_ms = o->policy_interval_ms ? o->policy_interval_ms : 1000;
    hub->act_within_ms = o->act_within_ms ? o->act_within_ms : VIGIL_POLICY_ACT_WITHIN_DEFAULT;
    int rc = vigil_batch_new(&hub->feed);
    vigil_engine_options eo = VIGIL_ENGINE_OPTIONS_INIT;
    eo.store = hub->store;
    eo.aggregate = aggregate;
    eo.aggregate_payload = hub;
    eo.clock = o->clock;
    eo.clock_payload = o->clock_payload;
    eo.on_request = on_request;
    eo.request_payload = hub;
    eo.on_decision = vigil__hub_on_decision;
    eo.decision_payload = hub;
    eo.act_within_ms = o->act_within_ms;
    eo.logger = o->logger;
    eo.policy_types = o->policy_types;
    if (o->version >= 2) {
        eo.series_idle_ms = o->series_idle_ms;
        eo.series_per_agent = o->series_per_agent;
    }
    if (!rc)
        rc = vigil_engine_new(&hub->engine, &eo);
    if (!rc)
        rc = load_policies(hub->store, hub->engine, o);
    if (!rc) {
        rc = vigil_store_resource_list(hub->store, VIGIL_STORE_DESIRED, NULL, restore_desired, hub);
        if (rc > 0)
            rc = VIGIL_OK;
    }
    if (!rc)
        rc = vigil__hub_gitops_init(hub, o);
    if (!rc && o->remediator_url && *o->remediator_url) {
        vigil_hub_remediator tls = {0};
        tls.ca_file = o->remediator_ca_file;
        tls.cert = o->remediator_cert;
        tls.key = o->remediator_key;
        rc = start_http(&hub->http, o, "remediator", o->remediator_url, o->remediator_secret_env,
                        o->remediator_secret, o->remediator_secret_len, &tls, NULL, NULL);
    }
    if (!rc)
        rc = vigil__hub_result_secret_init(hub, o);
    if (!rc)
        rc = start_fleet(hub, o);
    return rc;
}

void vigil__hub_warn_no_dispatcher(vigil_hub *hub)
{
    pthread_mutex_lock(&hub->mu);
    int has = hub->has_disp || hub->http || hub->nfleet;
    pthread_mutex_unlock(&hub->mu);
    if (has)
        return;
    vigil_buf p = VIGIL_BUF_INIT;
    if (vigil_engine_policies_json(hub->engine, &p) == VIGIL_OK && p.ptr &&
        strstr(p.ptr, "\"name\"") != NULL)
        vigil__log(&hub->logger, VIGIL_LOG_WARN, COMPONENT,
                   "policies are loaded but no remediator is configured: their requests are "
                   "recorded and marked failed (no_remediator)",
                   "remediator=none");
    vigil_buf_dispose(&p);
}

void vigil__hub_stop_dispatch(vigil_hub *hub)
{
    vigil__dispatch_stop(hub->http);
    for (size_t i = 0; i < hub->nfleet; i++)
        vigil__dispatch_stop(hub->fleet[i].d);
}

void vigil__hub_free_engine(vigil_hub *hub)
{
    vigil__dispatch_free(hub->http);
    hub->http = NULL;
    for (size_t i = 0; i < hub->nfleet; i++) {
        vigil__dispatch_free(hub->fleet[i].d);
        if (hub->fleet[i].secret) {
            volatile unsigned char *p = hub->fleet[i].secret;
            for (size_t k = 0; k < hub->fleet[i].secret_len; k++)
                p[k] = 0;
            vigil__free(hub->fleet[i].secret);
        }
        for (size_t k = 0; k < hub->fleet[i].nagents; k++)
            vigil__free(hub->fleet[i].agents[k]);
        vigil__free(hub->fleet[i].agents);
    }
    vigil__free(hub->fleet);
    hub->fleet = NULL;
    hub->nfleet = 0;
    vigil__hub_gitops_free(hub);
    vigil__hub_result_secret_free(hub);
    vigil_engine_free(hub->engine);
    hub->engine = NULL;
    vigil_batch_free(hub->feed);
    hub->feed = NULL;
}
