/* The hub's admin routes, so that people and tools need one URL: approve,
 * deny, release and audit verify, forwarded signed to the remediator (or
 * called in-process when the hub runs it, vigil_hub_attach_remediator()),
 * and GET /v1/agents: each agent's last heartbeat and whether it is stale. */
#include "hub/hub_int.h"
#include "http/http.h"
#include "internal/json.h"
#include "internal/remediator.h"
#include "vigil/audit.h"
#include "vigil/remediator.h"
#include "vigil/signature.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FORWARD_TIMEOUT_MS  30000
#define FORWARD_CONNECT_MS  5000
#define FORWARD_RESP_MAX    (1024 * 1024)
#define ACTOR_MAX           256
#define AGENTS_MAX          10000
#define HEARTBEAT_METRIC    "vigil_agent_heartbeat"
#define HEARTBEAT_GAPS      16
#define DEFAULT_INTERVAL_MS 10000
#define STALE_FACTOR        3

/* ---- who asked -------------------------------------------------------------------- */

/* "token <name> from <address>", or the address, for the remediator's audit. */
static const char *actor(vigil__api_call *call, char *buf, size_t size)
{
    const vigil_api_request *req = vigil__api_call_request(call);
    const char *addr = req->remote_addr ? req->remote_addr : "";
    const char *name = vigil__api_call_principal(call);
    if (name && *addr)
        snprintf(buf, size, "token %s from %s", name, addr);
    else if (name)
        snprintf(buf, size, "token %s", name);
    else
        snprintf(buf, size, "%s", addr);
    /* a header value: no control characters */
    for (char *p = buf; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return buf;
}

/* ---- forwarding over HTTP ------------------------------------------------------ */

static int put_encoded(vigil_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = VIGIL_OK;
    for (const unsigned char *p = (const unsigned char *)s; *p && !rc; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~')
            rc = vigil__buf_putc(b, (char)*p);
        else
            rc = vigil__buf_printf(b, "%%%c%c", hex[*p >> 4], hex[*p & 15]);
    }
    return rc;
}

/* Sends METHOD <remediator><prefix><arg-encoded><suffix>[?query], signed, and
 * answers the call with the remediator's status and body. */
static void forward(vigil__api_call *call, vigil_hub *hub, int route, const char *method,
                    const char *prefix, const char *arg, const char *suffix, const char *query)
{
    vigil_api_response *resp = vigil__api_call_response(call);
    /* a fleet: the remediator of the action's or the target's host */
    vigil__dispatch *d = route >= 0 ? hub->fleet[route].d : hub->http;
    if (!d) {
        vigil__api_resp_error(resp, 503, "unavailable",
                              "no remediator is configured for its host (remediators: in "
                              "collector.yaml, and no default remediator.url)",
                              NULL);
        vigil__api_finish(call);
        return;
    }
    char who[ACTOR_MAX];
    actor(call, who, sizeof(who));
    const char *base = NULL;
    size_t blen = vigil__dispatch_base_url(d, &base);
    size_t slen = 0;
    const void *secret = vigil__dispatch_secret(d, &slen);

    vigil_buf url = VIGIL_BUF_INIT, path = VIGIL_BUF_INIT, payload = VIGIL_BUF_INIT;
    vigil_buf sig = VIGIL_BUF_INIT, sig_hdr = VIGIL_BUF_INIT, actor_hdr = VIGIL_BUF_INIT;
    int rc = vigil__buf_put(&url, base, blen);
    if (!rc)
        rc = vigil__buf_puts(&url, prefix);
    if (!rc && arg)
        rc = put_encoded(&url, arg);
    if (!rc)
        rc = vigil__buf_puts(&url, suffix);
    if (!rc && query)
        rc = vigil__buf_printf(&url, "?%s", query);
    if (!rc)
        rc = vigil__buf_printf(&path, "%s%s%s%s%s", prefix, arg ? arg : "", suffix,
                               query ? "?" : "", query ? query : "");
    if (!rc)
        rc = vigil__remediator_forward_payload(&payload, method, path.ptr, who);
    if (!rc)
        rc = vigil_signature_make(&sig, secret, slen, vigil__now_ms() / 1000, payload.ptr,
                                  payload.size);
    if (!rc)
        rc = vigil__buf_printf(&sig_hdr, "%s: %s", VIGIL_SIGNATURE_HEADER, sig.ptr);
    if (!rc)
        rc = vigil__buf_printf(&actor_hdr, "%s: %s", VIGIL__FORWARD_ACTOR_HEADER, who);
    vigil__http *http = NULL;
    if (!rc)
        rc = vigil__http_new(&http);
    vigil__http_response hr = VIGIL__HTTP_RESPONSE_INIT;
    int hrc = VIGIL_OK;
    if (!rc) {
        /* X-Vigil-Request: the remediator's cross-site defence of body-less POSTs */
        const char *lines[] = {"Accept: application/json", "Expect:", "X-Vigil-Request: hub",
                               sig_hdr.ptr, actor_hdr.ptr};
        vigil__http_request req = VIGIL__HTTP_REQUEST_INIT;
        req.method = method;
        req.url = url.ptr;
        req.headers = lines;
        req.nheaders = VIGIL__ARRAY_LEN(lines);
        req.user_agent = "vigil-hub/" VIGIL_VERSION;
        req.connect_timeout_ms = FORWARD_CONNECT_MS;
        req.timeout_ms = FORWARD_TIMEOUT_MS;
        req.max_response = FORWARD_RESP_MAX;
        if (strcmp(method, "POST") == 0) {
            req.body = "";
            req.body_len = 0;
        }
        hrc = vigil__http_perform(http, &req, &hr);
    }
    if (rc) {
        vigil__api_resp_from_code(resp, rc, vigil_error_last()->message);
    } else if (hrc) {
        char msg[400];
        snprintf(msg, sizeof(msg), "the remediator could not be reached: %s",
                 hr.error[0] ? hr.error : vigil_error_last()->message);
        vigil__log(&hub->logger, VIGIL_LOG_WARN, "hub", "admin call not forwarded",
                   "route=\"%s\" error=\"%s\"", prefix, msg);
        vigil__api_resp_error(resp, 503, "unavailable", msg, NULL);
    } else if (hr.status < 200 || hr.status > 599) {
        vigil__api_resp_error(resp, 503, "unavailable", "the remediator gave no valid answer",
                              NULL);
    } else {
        vigil__api_resp_json(resp, (int)hr.status, hr.body.ptr ? hr.body.ptr : "", hr.body.size);
    }
    vigil__http_response_dispose(&hr);
    vigil__http_free(http);
    vigil_buf_dispose(&url);
    vigil_buf_dispose(&path);
    vigil_buf_dispose(&payload);
    vigil_buf_dispose(&sig);
    vigil_buf_dispose(&sig_hdr);
    vigil_buf_dispose(&actor_hdr);
    vigil__api_finish(call);
}

/* 0 when a remediator can take the call; otherwise answers 503. */
static int no_remediator(vigil__api_call *call, vigil_hub *hub)
{
    if (hub->rem || hub->http || hub->nfleet)
        return 0;
    vigil__api_resp_error(vigil__api_call_response(call), 503, "unavailable",
                          "no remediator is configured (remediator.url or inprocess)", NULL);
    vigil__api_finish(call);
    return 1;
}

/* ---- approve, deny, release ------------------------------------------------------ */

static void decide(vigil__api_call *call, vigil_hub *hub, int approve)
{
    if (no_remediator(call, hub))
        return;
    const char *id = vigil__api_call_path_arg(call, 0);
    if (!hub->rem) {
        forward(call, hub, vigil__hub_route_of_action(hub, id), "POST", "/v1/actions/", id,
                approve ? "/approve" : "/deny", NULL);
        return;
    }
    char who[ACTOR_MAX];
    actor(call, who, sizeof(who));
    int rc = approve ? vigil_remediator_approve(hub->rem, id, who)
                     : vigil_remediator_deny(hub->rem, id, who);
    vigil_buf b = VIGIL_BUF_INIT;
    if (!rc)
        rc = vigil__buf_puts(&b, "{\"id\":");
    if (!rc)
        rc = vigil__json_put_string(&b, id, strlen(id));
    if (!rc)
        rc = vigil__buf_puts(&b, approve ? ",\"status\":\"approved\"}"
                                         : ",\"status\":\"refused\",\"reason\":"
                                           "\"approval_denied\"}");
    vigil__api_answer(call, rc, 200, &b);
}

static void route_approve(vigil__api_call *call, void *payload)
{
    decide(call, payload, 1);
}

static void route_deny(vigil__api_call *call, void *payload)
{
    decide(call, payload, 0);
}

static void route_release(vigil__api_call *call, void *payload)
{
    vigil_hub *hub = payload;
    if (no_remediator(call, hub))
        return;
    const char *target = vigil__api_call_path_arg(call, 0);
    if (!hub->rem) {
        forward(call, hub, vigil__hub_route_of_target(hub, target), "POST", "/v1/targets/", target,
                "/release", NULL);
        return;
    }
    char who[ACTOR_MAX];
    int released = 0;
    int rc = vigil_remediator_release(hub->rem, target, actor(call, who, sizeof(who)), &released);
    vigil_buf b = VIGIL_BUF_INIT;
    if (!rc)
        rc = vigil__buf_puts(&b, "{\"target\":");
    if (!rc)
        rc = vigil__json_put_string(&b, target, strlen(target));
    if (!rc)
        rc = vigil__buf_printf(&b, ",\"released\":%s}", released ? "true" : "false");
    vigil__api_answer(call, rc, 200, &b);
}

/* ---- audit verify ---------------------------------------------------------------- */

static int is_digits(const char *s)
{
    if (!s || *s < '1' || *s > '9' || strlen(s) > 18)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

static int is_hex64(const char *s)
{
    if (!s || strlen(s) != 64)
        return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F')))
            return 0;
    return 1;
}

static void route_verify(vigil__api_call *call, void *payload)
{
    vigil_hub *hub = payload;
    const char *seq = vigil__api_call_param(call, "seq");
    const char *mac = vigil__api_call_param(call, "mac");
    if ((seq || mac) && (!is_digits(seq) || !is_hex64(mac))) {
        vigil__api_resp_error(vigil__api_call_response(call), 400, "invalid_request",
                              "seq: a checkpoint needs seq (an integer >= 1) and mac (64 hex "
                              "digits)",
                              NULL);
        vigil__api_finish(call);
        return;
    }
    if (no_remediator(call, hub))
        return;
    if (!hub->rem) {
        char q[128];
        if (seq)
            snprintf(q, sizeof(q), "seq=%s&mac=%s", seq, mac);
        forward(call, hub, -1, "GET", "/v1/audit/verify", NULL, "", seq ? q : NULL);
        return;
    }
    vigil_audit *audit = vigil_remediator_audit(hub->rem);
    vigil_audit_report rep = VIGIL_AUDIT_REPORT_INIT;
    int rc = seq ? vigil_audit_verify_checkpoint(audit, strtoll(seq, NULL, 10), mac, &rep)
                 : vigil_audit_verify(audit, &rep);
    vigil_buf b = VIGIL_BUF_INIT;
    if (!rc)
        rc = vigil_audit_report_json(&rep, &b);
    vigil__api_answer(call, rc, 200, &b);
}

/* ---- GET /v1/agents ----------------------------------------------------------------- */

typedef struct agent_row {
    char *id;
    int64_t last_seen;
    int64_t last_heartbeat; /* 0: none */
    size_t series;
    int64_t interval_ms;
} agent_row;

typedef struct agents {
    agent_row *rows;
    size_t n, cap;
    int err; /* STOP code */
} agents;

#define STOP_LIMIT 1
#define STOP_OOM   2

static const char *host_of(const vigil_store_series *s)
{
    for (size_t i = 0; i < s->ntags; i++)
        if (strcmp(s->tags[i].key, "host") == 0)
            return s->tags[i].value;
    return NULL;
}

static agent_row *agent_find(agents *a, const char *id)
{
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->rows[i].id, id) == 0)
            return &a->rows[i];
    return NULL;
}

static int latest_cb(const vigil_store_series *s, const vigil_store_point *p, void *payload)
{
    agents *a = payload;
    const char *host = host_of(s);
    if (!host || !*host)
        return 0;
    agent_row *r = agent_find(a, host);
    if (!r) {
        if (a->n >= AGENTS_MAX)
            return STOP_LIMIT;
        if (a->n == a->cap) {
            size_t cap = a->cap ? a->cap * 2 : 16;
            agent_row *rows = vigil__realloc(a->rows, cap * sizeof(*rows));
            if (!rows)
                return STOP_OOM;
            a->rows = rows;
            a->cap = cap;
        }
        r = &a->rows[a->n];
        memset(r, 0, sizeof(*r));
        r->id = vigil__strdup(host);
        if (!r->id)
            return STOP_OOM;
        a->n++;
    }
    r->series++;
    if (p->ts_ms > r->last_seen)
        r->last_seen = p->ts_ms;
    if (strcmp(s->name, HEARTBEAT_METRIC) == 0 && p->ts_ms > r->last_heartbeat)
        r->last_heartbeat = p->ts_ms;
    return 0;
}

typedef struct beats {
    int64_t ts[HEARTBEAT_GAPS + 1];
    size_t n; /* samples seen */
} beats;

static int beat_cb(const vigil_store_series *s, const vigil_store_point *p, void *payload)
{
    (void)s;
    beats *b = payload;
    b->ts[b->n % (HEARTBEAT_GAPS + 1)] = p->ts_ms;
    b->n++;
    return 0;
}

static int cmp_i64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return a < b ? -1 : a > b;
}

/* The median gap between the agent's last heartbeats of the hour before now. */
static int agent_interval(vigil_hub *hub, agent_row *r, int64_t now)
{
    r->interval_ms = DEFAULT_INTERVAL_MS;
    if (!r->last_heartbeat)
        return VIGIL_OK;
    vigil_store_matcher m = {0};
    m.key = "host";
    m.value = r->id;
    m.op = VIGIL_STORE_MATCH_EQ;
    vigil_store_query q = VIGIL_STORE_QUERY_INIT;
    q.name = HEARTBEAT_METRIC;
    q.matchers = &m;
    q.nmatchers = 1;
    q.from_ms = now - 3600 * 1000;
    q.to_ms = now + 5 * 60 * 1000 + 1;
    beats b = {{0}, 0};
    int rc = vigil_store_query_run(hub->reader, &q, beat_cb, &b);
    if (rc || b.n < 2)
        return rc;
    size_t k = b.n < HEARTBEAT_GAPS + 1 ? b.n : HEARTBEAT_GAPS + 1;
    int64_t ts[HEARTBEAT_GAPS + 1], gaps[HEARTBEAT_GAPS] = {0};
    memcpy(ts, b.ts, k * sizeof(ts[0]));
    qsort(ts, k, sizeof(ts[0]), cmp_i64);
    size_t ng = 0;
    for (size_t i = 1; i < k; i++)
        if (ts[i] > ts[i - 1])
            gaps[ng++] = ts[i] - ts[i - 1];
    if (!ng)
        return VIGIL_OK;
    qsort(gaps, ng, sizeof(gaps[0]), cmp_i64);
    r->interval_ms = gaps[ng / 2];
    return VIGIL_OK;
}

static int cmp_agent(const void *x, const void *y)
{
    return strcmp(((const agent_row *)x)->id, ((const agent_row *)y)->id);
}

static void route_agents(vigil__api_call *call, void *payload)
{
    vigil_hub *hub = payload;
    agents a = {NULL, 0, 0, 0};
    int64_t now = vigil__hub_now(hub);
    int rc = vigil_store_latest(hub->reader, NULL, latest_cb, &a);
    if (rc == STOP_LIMIT)
        rc = vigil__error_set(VIGIL_EINVAL, "more than %d agents", AGENTS_MAX);
    else if (rc == STOP_OOM)
        rc = vigil__error_oom();
    if (!rc && a.n)
        qsort(a.rows, a.n, sizeof(a.rows[0]), cmp_agent);
    for (size_t i = 0; i < a.n && !rc; i++)
        rc = agent_interval(hub, &a.rows[i], now);
    vigil_buf b = VIGIL_BUF_INIT;
    if (!rc)
        rc = vigil__buf_puts(&b, "{\"agents\":[");
    for (size_t i = 0; i < a.n && !rc; i++) {
        const agent_row *r = &a.rows[i];
        int64_t last = r->last_heartbeat ? r->last_heartbeat : r->last_seen;
        int64_t stale_after = STALE_FACTOR * r->interval_ms;
        rc = vigil__buf_puts(&b, i ? ",{\"id\":" : "{\"id\":");
        if (!rc)
            rc = vigil__json_put_string(&b, r->id, strlen(r->id));
        if (!rc && r->last_heartbeat)
            rc = vigil__buf_printf(&b, ",\"last_heartbeat\":%lld", (long long)r->last_heartbeat);
        else if (!rc)
            rc = vigil__buf_puts(&b, ",\"last_heartbeat\":null");
        if (!rc)
            rc = vigil__buf_printf(&b,
                                   ",\"last_seen\":%lld,\"series\":%zu,\"interval_ms\":%lld,"
                                   "\"stale_after_ms\":%lld,\"stale\":%s}",
                                   (long long)r->last_seen, r->series, (long long)r->interval_ms,
                                   (long long)stale_after,
                                   now - last > stale_after ? "true" : "false");
    }
    if (!rc)
        rc = vigil__buf_printf(&b, "],\"now\":%lld}", (long long)now);
    for (size_t i = 0; i < a.n; i++)
        vigil__free(a.rows[i].id);
    vigil__free(a.rows);
    vigil__api_answer(call, rc, 200, &b);
}

int vigil__hub_mount_admin_routes(vigil_hub *hub, vigil_api *api)
{
    static const vigil__api_route_def routes[] = {
        {"POST", "/v1/actions/*/approve", VIGIL_API_SCOPE_ADMIN, 0, route_approve},
        {"POST", "/v1/actions/*/deny", VIGIL_API_SCOPE_ADMIN, 0, route_deny},
        {"POST", "/v1/targets/*/release", VIGIL_API_SCOPE_ADMIN, 0, route_release},
        {"GET", "/v1/audit/verify", VIGIL_API_SCOPE_ADMIN, 0, route_verify},
        {"GET", "/v1/agents", VIGIL_API_SCOPE_READ, 0, route_agents},
    };
    return vigil__api_routes(api, routes, VIGIL__ARRAY_LEN(routes), hub);
}
