/* hub: policies and results, in-process. The result route's bad inputs,
 * manual requests, silences, policies and decisions routes, desired state, a
 * policy firing end to end through ingest -> engine -> dispatcher -> result ->
 * "remediated", and the collector.yaml keys of policies and the remediator.
 * The HTTP dispatcher against a remediator stand-in is in
 * tests/integration/test_hub_dispatch.c. Real SQLite files in temporary
 * directories throughout. */
#include <cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hub/dispatch.h"
#include "vigil/sys/policy.h"
#include "vigil/sys/store.h"
#include "hub_testutil.h"
#include "testutil.h"

/* ---- the result route and the result function ---------------------------------------- */

static vigil_hub *hub_plain(void)
{
    vigil_hub_options o;
    hub_defaults(&o);
    return hub_with(&o);
}

START_TEST(no_remediator_fails_requests)
{
    vigil_hub *hub = hub_plain();
    vigil_api *api = mount(hub);
    treq ev = {.path = "/v1/events", .headers = {AUTH_R}};
    vigil_api_response *events = run(api, &ev);
    ck_assert_int_eq(vigil_api_response_status(events), 200);
    char id[128];
    manual(api, "{\"action\":\"restart_demo\",\"target\":\"demo\",\"dry_run\":true}", id,
           sizeof(id));
    vigil_store_action *a = wait_action(hub, id, NULL);
    ck_assert_str_eq(a->status, "failed");
    ck_assert_str_eq(a->result_reason, "no_remediator");
    ck_assert_int_eq(a->dry_run, 1);
    vigil_store_action_free(a);
    /* the result was published as an "action" event */
    char buf[4096];
    size_t got = 0, n = 0;
    while (got < sizeof(buf) - 1 &&
           vigil_api_response_read(events, buf + got, sizeof(buf) - 1 - got, &n) == VIGIL_OK && n)
        got += n;
    buf[got] = '\0';
    char want[256];
    snprintf(want, sizeof(want),
             "event: action\ndata: {\"id\":\"%s\",\"status\":\"failed\",\"reason\":\"no_"
             "remediator\",\"action\":\"restart_demo\",\"target\":\"demo\",\"policy\":null,",
             id);
    ck_assert_msg(strstr(buf, want) != NULL, "%s", buf);
    vigil_api_response_free(events);
    ck_assert(metric_value(api, "vigil_action_dispatch_failures_total{reason=\"no_remediator\"}") ==
              1.0);
    vigil_api_free(api);
    vigil_hub_free(hub);
}
END_TEST

/* A dispatcher that records requests and reports results when told to. */
typedef struct recorder {
    pthread_mutex_t mu;
    size_t n;
    char ids[16][128];
    char actions[16][64];
    char targets[16][64];
    vigil_action_done_cb done[16];
    void *payload[16];
    int refuse; /* submit returns this */
} recorder;

static int rec_submit(void *self, const vigil_action_request *req, vigil_action_done_cb done,
                      void *payload)
{
    recorder *r = self;
    if (r->refuse)
        return r->refuse;
    pthread_mutex_lock(&r->mu);
    size_t i = r->n++;
    snprintf(r->ids[i], sizeof(r->ids[i]), "%s", req->id);
    snprintf(r->actions[i], sizeof(r->actions[i]), "%s", req->action);
    snprintf(r->targets[i], sizeof(r->targets[i]), "%s", req->target ? req->target : "");
    r->done[i] = done;
    r->payload[i] = payload;
    pthread_mutex_unlock(&r->mu);
    return VIGIL_OK;
}

static void rec_init(recorder *r, vigil_action_dispatcher *d)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->mu, NULL);
    vigil_action_dispatcher x = VIGIL_ACTION_DISPATCHER_INIT;
    x.self = r;
    x.submit = rec_submit;
    *d = x;
}

/* Reports request i's result through the dispatcher's done callback. */
static void rec_done(recorder *r, size_t i, vigil_action_status status, const char *reason)
{
    vigil_action_result res = VIGIL_ACTION_RESULT_INIT;
    res.status = status;
    ck_assert_int_eq(vigil_action_result_set_id(&res, r->ids[i]), VIGIL_OK);
    ck_assert_int_eq(vigil_action_result_set_reason(&res, reason), VIGIL_OK);
    r->done[i](&res, r->payload[i]);
    vigil_action_result_clear(&res);
}

/* The requested action name and target reach the log escaped: a newline
 * in them cannot forge a log line. */
static pthread_mutex_t g_lmu = PTHREAD_MUTEX_INITIALIZER;
static char g_lines[16384];

static void capture(const vigil_log_record *r, void *payload)
{
    (void)payload;
    pthread_mutex_lock(&g_lmu);
    size_t n = strlen(g_lines);
    snprintf(g_lines + n, sizeof(g_lines) - n, "%s|%s\n", r->message, r->fields);
    pthread_mutex_unlock(&g_lmu);
}

START_TEST(request_fields_escaped_in_logs)
{
    vigil_hub_options o;
    hub_defaults(&o);
    o.logger.cb = capture;
    o.logger.min_level = VIGIL_LOG_INFO;
    g_lines[0] = '\0';
    vigil_hub *hub = hub_with(&o);
    vigil_api *api = mount(hub);
    char id[128];
    manual(api, "{\"action\":\"restart\\nlevel=error msg=forged\",\"target\":\"a\\\"b\\r\\nc\"}",
           id, sizeof(id));
    vigil_store_action *a = wait_action(hub, id, NULL);
    vigil_store_action_free(a);
    pthread_mutex_lock(&g_lmu);
    char *line = strstr(g_lines, "action requested|");
    ck_assert_msg(line != NULL, "%s", g_lines);
    char *end = strchr(line, '\n');
    *end = '\0';
    ck_assert_msg(strstr(line, "action=\"restart\\nlevel=error msg=forged\"") != NULL, "%s", line);
    ck_assert_msg(strstr(line, "target=\"a\\\"b\\r\\nc\"") != NULL, "%s", line);
    *end = '\n';
    ck_assert_ptr_null(strstr(g_lines, "\nlevel=error msg=forged"));
    pthread_mutex_unlock(&g_lmu);
    vigil_api_free(api);
    vigil_hub_free(hub);
}
END_TEST

START_TEST(result_route_bad_inputs)
{
    vigil_hub_options ho;
    hub_defaults(&ho);
    setenv("VT_HP_SECRET", SECRET, 1);
    ho.remediator_secret_env = "VT_HP_SECRET"; /* results are checked with it */
    vigil_hub *hub = hub_with(&ho);
    recorder rec;
    vigil_action_dispatcher d;
    rec_init(&rec, &d);
    ck_assert_int_eq(vigil_hub_set_dispatcher(hub, &d), VIGIL_OK);
    vigil_api *api = mount(hub);
    char id[128], path[256], body[512];
    manual(api, "{\"action\":\"restart_demo\",\"target\":\"demo\"}", id, sizeof(id));
    ck_assert_uint_eq(rec.n, 1);
    ck_assert_str_eq(rec.ids[0], id);
    snprintf(path, sizeof(path), "/v1/actions/%s/result", id);
    expect_signed(api, path, AUTH_W, "{\"status\":", 400, "invalid_json", "status",
                  "unexpected end of input");
    expect_signed(api, path, AUTH_W, "[1]", 400, "invalid_request", "", "expected a JSON object");
    expect_signed(api, path, AUTH_W, "{\"status\":\"exploded\"}", 400, "invalid_request", "status",
                  "expected succeeded, failed");
    expect_signed(api, path, AUTH_W, "{\"reason\":\"x\"}", 400, "invalid_request", "status",
                  "required");
    expect_signed(api, path, AUTH_W, "{\"status\":7}", 400, "invalid_request", "status",
                  "expected a string");
    expect_signed(api, path, AUTH_W, "{\"status\":\"failed\",\"duration_ms\":\"12\"}", 400,
                  "invalid_request", "duration_ms", "expected an integer");
    expect_signed(api, path, AUTH_W, "{\"status\":\"failed\",\"duration_ms\":-1}", 400,
                  "invalid_request", "duration_ms", "expected an integer from 0");
    expect_signed(api, path, AUTH_W, "{\"status\":\"refused\",\"retry_after_ms\":-5}", 400,
                  "invalid_request", "retry_after_ms", "expected an integer from 0");
    expect_signed(api, path, AUTH_W, "{\"status\":\"refused\",\"retry_after_ms\":\"1s\"}", 400,
                  "invalid_request", "retry_after_ms", "expected an integer");
    expect_signed(api, path, AUTH_W, "{\"status\":\"failed\",\"output\":[]}", 400,
                  "invalid_request", "output", "expected a string or null");
    expect_signed(api, path, AUTH_W, "{\"status\":\"failed\",\"audit\":{\"seq\":1}}", 400,
                  "invalid_request", "audit.mac", "required");
    expect_signed(api, path, AUTH_W,
                  "{\"status\":\"failed\",\"audit\":{\"seq\":1,\"mac\":\"abc\"}}", 400,
                  "invalid_request", "audit.mac", "expected 64 hex digits");
    expect_signed(api, path, AUTH_W,
                  "{\"status\":\"failed\",\"audit\":{\"seq\":0,\"mac\":\"" MAC_A "\"}}", 400,
                  "invalid_request", "audit.seq", "expected an integer from 1");
    expect_signed(api, path, AUTH_W, "{\"status\":\"failed\",\"colour\":\"red\"}", 400,
                  "invalid_request", "colour", "unknown key");
    expect_signed(api, path, AUTH_W, "{\"id\":\"other\",\"status\":\"failed\"}", 400,
                  "invalid_request", "id", "does not match the id in the path");
    expect_signed(api, "/v1/actions/nope/result", AUTH_W, "{\"status\":\"failed\"}", 404,
                  "not_found", "", "no action request with id \\\"nope\\\"");
    expect_error(api, "POST", path, NULL, "{\"status\":\"failed\"}", 401, "unauthorized", "", "");
    /* a write token is not enough: an unsigned or badly signed result is refused */
    expect_error(api, "POST", path, AUTH_W, "{\"status\":\"succeeded\"}", 401, "unauthorized", "",
                 "signature: missing");
    {
        vigil_buf sig = VIGIL_BUF_INIT;
        const char *forged = "{\"status\":\"succeeded\"}";
        ck_assert_int_eq(vigil_signature_make(&sig, "not-the-secret-0123456789abcdef0", 32,
                                              (int64_t)time(NULL), forged, strlen(forged)),
                         VIGIL_OK);
        char hdr[256];
        snprintf(hdr, sizeof(hdr), "%s: %s", VIGIL_SIGNATURE_HEADER, sig.ptr);
        vigil_buf_dispose(&sig);
        treq t = {"POST", path, NULL, {AUTH_W, JSON_CT, hdr, NULL}, forged};
        vigil_api_response *r = run(api, &t);
        ck_assert_int_eq(vigil_api_response_status(r), 401);
        ck_assert_ptr_nonnull(strstr(vigil_api_response_body(r, NULL), "signature: mismatch"));
        vigil_api_response_free(r);
    }
    expect_error(api, "POST", path, AUTH_R, "{\"status\":\"failed\"}", 403, "forbidden", "", "");
    expect_error(api, "GET", path, AUTH_W, NULL, 405, "method_not_allowed", "", "");
    expect_error(api, "POST", "/v1/actions/a/b/result", AUTH_W, "{\"status\":\"failed\"}", 404,
                 "not_found", "", "no such route");
    expect_error(api, "POST", "/v1/actions//result", AUTH_W, "{\"status\":\"failed\"}", 404,
                 "not_found", "", "no such route");
    /* nothing above changed the ledger */
    ledger_status(hub, id, body, sizeof(body));
    ck_assert_str_eq(body, "pending");
    /* the dispatcher's own result, then the route's replay */
    rec_done(&rec, 0, VIGIL_ACTION_REFUSED, "cooldown");
    ledger_status(hub, id, body, sizeof(body));
    ck_assert_str_eq(body, "refused");
    expect_signed(api, path, AUTH_W, "{\"status\":\"succeeded\"}", 409, "conflict", "",
                  "already has a final result (refused)");
    vigil_api_free(api);
    vigil_hub_free(hub);
}
END_TEST

START_TEST(result_function_codes)
{
    vigil_hub *hub = hub_plain();
    recorder rec;
    vigil_action_dispatcher d;
    char buf[64];
    rec_init(&rec, &d);
    ck_assert_int_eq(vigil_hub_set_dispatcher(hub, &d), VIGIL_OK);
    vigil_action_request req = VIGIL_ACTION_REQUEST_INIT;
    req.action = "restart_demo";
    req.target = "demo";
    vigil_buf id = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil_hub_action_request(hub, &req, &id), VIGIL_OK);
    vigil_action_result r = VIGIL_ACTION_RESULT_INIT;
    ck_assert_int_eq(vigil_hub_action_result(hub, &r, 0, NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "needs an id");
    ck_assert_int_eq(vigil_action_result_set_id(&r, id.ptr), VIGIL_OK);
    r.status = (vigil_action_status)42;
    ck_assert_int_eq(vigil_hub_action_result(hub, &r, 0, NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "unknown status 42");
    r.status = VIGIL_ACTION_SUCCEEDED;
    ck_assert_int_eq(vigil_hub_action_result(hub, &r, 3, NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "64 hex digits");
    ck_assert_int_eq(vigil_hub_action_result(hub, &r, 3, "xyz"), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_hub_action_result(NULL, &r, 0, NULL), VIGIL_EINVAL);
    /* pending approval is not final; a final result after it is accepted */
    r.status = VIGIL_ACTION_PENDING_APPROVAL;
    ck_assert_int_eq(vigil_hub_action_result(hub, &r, 0, NULL), VIGIL_OK);
    ck_assert_int_eq(vigil_hub_action_result(hub, &r, 0, NULL), VIGIL_OK);
    r.status = VIGIL_ACTION_DRY_RUN;
    ck_assert_int_eq(vigil_hub_action_result(hub, &r, 7, MAC_A), VIGIL_OK);
    r.status = VIGIL_ACTION_SUCCEEDED;
    ck_assert_int_eq(vigil_hub_action_result(hub, &r, 8, MAC_B), VIGIL_ECONFLICT);
    vt_assert_error(VIGIL_ECONFLICT, "already has a final result (dry_run)");
    vigil_action_result_set_id(&r, "unknown-id");
    ck_assert_int_eq(vigil_hub_action_result(hub, &r, 0, NULL), VIGIL_ENOTFOUND);
    vt_assert_error(VIGIL_ENOTFOUND, "no action request with id \"unknown-id\"");
    vigil_action_result_clear(&r);
    /* manual request inputs */
    req.target = NULL;
    ck_assert_int_eq(vigil_hub_action_request(hub, &req, &id), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "target: required");
    req.target = "demo";
    req.version = 9;
    ck_assert_int_eq(vigil_hub_action_request(hub, &req, &id), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "hub action request: version 9 is not supported");
    /* a dispatcher that refuses: the request is recorded as failed */
    req.version = VIGIL_ACTION_REQUEST_VERSION;
    rec.refuse = VIGIL_EOVERLOADED;
    ck_assert_int_eq(vigil_hub_action_request(hub, &req, &id), VIGIL_OK);
    vigil_store_action *a = NULL;
    ck_assert_int_eq(vigil_store_action_get(vigil_hub_store(hub), id.ptr, &a), VIGIL_OK);
    ck_assert_str_eq(a->status, "failed");
    ck_assert_str_eq(a->result_reason, "dispatch_failed");
    vigil_store_action_free(a);
    /* the dispatcher reports late: the hub refuses the second final result */
    rec_done(&rec, 0, VIGIL_ACTION_SUCCEEDED, NULL);
    ledger_status(hub, rec.ids[0], buf, sizeof(buf));
    ck_assert_str_eq(buf, "dry_run");
    vigil_action_dispatcher bad = VIGIL_ACTION_DISPATCHER_INIT;
    ck_assert_int_eq(vigil_hub_set_dispatcher(hub, &bad), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_hub_set_dispatcher(hub, NULL), VIGIL_OK);
    vigil_buf_dispose(&id);
    vigil_hub_free(hub);
}
END_TEST

START_TEST(manual_request_route_bad_inputs)
{
    vigil_hub *hub = hub_plain();
    vigil_api *api = mount(hub);
    expect_error(api, "POST", "/v1/actions", AUTH_W, "{\"target\":\"demo\"}", 400,
                 "invalid_request", "action", "required");
    expect_error(api, "POST", "/v1/actions", AUTH_W, "{\"action\":\"a\",\"target\":5}", 400,
                 "invalid_request", "target", "expected a string");
    expect_error(api, "POST", "/v1/actions", AUTH_W,
                 "{\"action\":\"a\",\"target\":\"t\",\"params\":{\"x\":1}}", 400, "invalid_request",
                 "params.x", "expected a string");
    expect_error(api, "POST", "/v1/actions", AUTH_W,
                 "{\"action\":\"a\",\"target\":\"t\",\"dry_run\":\"yes\"}", 400, "invalid_request",
                 "dry_run", "expected true or false");
    expect_error(api, "POST", "/v1/actions", AUTH_W, "{\"action\":\"a\",\"target\":\"t\",\"x\":1}",
                 400, "invalid_request", "x", "unknown key");
    expect_error(api, "POST", "/v1/actions", AUTH_R, "{\"action\":\"a\",\"target\":\"t\"}", 403,
                 "forbidden", "", "");
    expect_error(api, "GET", "/v1/actions", NULL, NULL, 401, "unauthorized", "", "");
    expect_error(api, "GET", "/v1/actions", AUTH_R "x", NULL, 401, "unauthorized", "", "");
    char out[256];
    ck_assert_int_eq(call(api, "GET", "/v1/actions", "limit=0", AUTH_R, NULL, out, sizeof(out)),
                     400);
    ck_assert_int_eq(
        call(api, "GET", "/v1/actions", "since=yesterday", AUTH_R, NULL, out, sizeof(out)), 400);
    ck_assert_msg(strstr(out, "since: expected epoch milliseconds") != NULL, "%s", out);
    ck_assert_int_eq(
        call(api, "GET", "/v1/actions", "status=A%20B", AUTH_R, NULL, out, sizeof(out)), 400);
    ck_assert_int_eq(
        call(api, "GET", "/v1/actions", "since=-1h&limit=5", AUTH_R, NULL, out, sizeof(out)), 200);
    vigil_api_free(api);
    vigil_hub_free(hub);
}
END_TEST

/* ---- policies: silences, policies, decisions, desired, the loop ------------------------ */

static const char *const DEMO_RULE = "policies:\n"
                                     "  - name: demo_down\n"
                                     "    kind: threshold\n"
                                     "    metric: process_up\n"
                                     "    match: {process: demo}\n"
                                     "    window: 1s\n"
                                     "    aggregate: last\n"
                                     "    op: \"<\"\n"
                                     "    threshold: 1\n"
                                     "    for: 0s\n"
                                     "    action: restart_demo\n"
                                     "    target: \"{{tags.process}}\"\n"
                                     "    verify: {within: 30s}\n";

/* A hub with the demo_down rule (from a collector.yaml) and a recording dispatcher. */
static vigil_hub *hub_demo(recorder *rec, vigil_hub_config **cfg)
{
    ck_assert_msg(vigil_hub_config_load_string(cfg, DEMO_RULE, strlen(DEMO_RULE), "demo.yaml",
                                               NULL) == VIGIL_OK,
                  "%s", vigil_error_last()->message);
    vigil_hub_options o;
    hub_defaults(&o);
    o.policies = vigil_hub_config_hub(*cfg)->policies;
    vigil_hub *hub = NULL;
    ck_assert_msg(vigil_hub_new(&hub, &o) == VIGIL_OK, "%s", vigil_error_last()->message);
    vigil_action_dispatcher d;
    rec_init(rec, &d);
    ck_assert_int_eq(vigil_hub_set_dispatcher(hub, &d), VIGIL_OK);
    ck_assert_int_eq(vigil_hub_start(hub), VIGIL_OK);
    return hub;
}

static void ingest_up(vigil_hub *hub, double value, int64_t ts)
{
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    ck_assert_int_eq(vigil_batch_set_agent(b, "h1"), VIGIL_OK);
    vigil_tag tags[] = {{"host", "h1"}, {"process", "demo"}};
    vigil_metric m = {"process_up", value, ts, tags, 2, NULL};
    ck_assert_int_eq(vigil_batch_add(b, &m), VIGIL_OK);
    vigil_hub_ingest_result r = VIGIL_HUB_INGEST_RESULT_INIT;
    ck_assert_int_eq(vigil_hub_ingest(hub, b, &r), VIGIL_OK);
    ck_assert_uint_eq(r.accepted, 1);
    vigil_batch_free(b);
}

/* A cardinality cap reached through the hub leaves a `capped` decision and
 * a metric, never silence. */
START_TEST(series_cap_leaves_decision_and_metric)
{
    static const char rule[] = "policies:\n"
                               "  - name: any_down\n"
                               "    kind: threshold\n"
                               "    metric: process_up\n"
                               "    match: {process: \"*\"}\n"
                               "    window: 1s\n"
                               "    aggregate: last\n"
                               "    op: \"<\"\n"
                               "    threshold: 1\n"
                               "    action: restart_demo\n"
                               "    target: \"{{tags.process}}\"\n";
    vigil_hub_config *cfg = NULL;
    ck_assert_msg(vigil_hub_config_load_string(&cfg, rule, strlen(rule), "any.yaml", NULL) ==
                      VIGIL_OK,
                  "%s", vigil_error_last()->message);
    vigil_hub_options o;
    hub_defaults(&o);
    o.policies = vigil_hub_config_hub(cfg)->policies;
    o.series_per_agent = 1;
    vigil_hub *hub = hub_with(&o);
    vigil_api *api = mount(hub);
    int64_t now = (int64_t)time(NULL) * 1000;
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    ck_assert_int_eq(vigil_batch_set_agent(b, "h1"), VIGIL_OK);
    vigil_tag t1[] = {{"host", "h1"}, {"process", "demo"}};
    vigil_tag t2[] = {{"host", "h1"}, {"process", "junk-1"}};
    vigil_metric m1 = {"process_up", 1, now, t1, 2, NULL};
    vigil_metric m2 = {"process_up", 1, now, t2, 2, NULL};
    ck_assert_int_eq(vigil_batch_add(b, &m1), VIGIL_OK);
    ck_assert_int_eq(vigil_batch_add(b, &m2), VIGIL_OK);
    vigil_hub_ingest_result r = VIGIL_HUB_INGEST_RESULT_INIT;
    ck_assert_int_eq(vigil_hub_ingest(hub, b, &r), VIGIL_OK);
    vigil_batch_free(b);
    ck_assert(wait_metric(api, "vigil_policy_series_refused", 1) == 1.0);
    ck_assert(metric_value(api, "vigil_policy_series_evicted") == 0.0);
    ck_assert(wait_metric(api, "vigil_policy_decisions_total{decision=\"capped\"}", 1) == 1.0);
    char out[8192];
    ck_assert_int_eq(call(api, "GET", "/v1/decisions", "since=0", AUTH_R, NULL, out, sizeof(out)),
                     200);
    ck_assert_msg(strstr(out, "\"decision\":\"capped\",\"reason\":\"agent h1 holds its limit of 1 "
                              "series of this policy (series_per_agent)") != NULL,
                  "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "\"target\":\"h1\""));
    ck_assert_ptr_nonnull(strstr(out, "junk-1"));
    vigil_api_free(api);
    vigil_hub_free(hub);
    vigil_hub_config_free(cfg);
}
END_TEST

static size_t rec_count(recorder *r)
{
    pthread_mutex_lock(&r->mu);
    size_t n = r->n;
    pthread_mutex_unlock(&r->mu);
    return n;
}

static void wait_requests(recorder *r, size_t n)
{
    int64_t end = mono_ms() + WAIT_MS;
    while (rec_count(r) < n && mono_ms() < end)
        usleep(2000);
    ck_assert_uint_eq(rec_count(r), n);
}

/* True when GET /v1/decisions lists `decision` for action `id`. */
static int has_decision(vigil_api *api, const char *id, const char *decision)
{
    char out[65536];
    ck_assert_int_eq(call(api, "GET", "/v1/decisions", "since=0", AUTH_R, NULL, out, sizeof(out)),
                     200);
    cJSON *j = cJSON_Parse(out);
    ck_assert_msg(j != NULL, "%s", out);
    cJSON *d;
    int found = 0;
    cJSON_ArrayForEach(d, cJSON_GetObjectItem(j, "decisions"))
    {
        cJSON *aid = cJSON_GetObjectItem(d, "action_id");
        cJSON *kind = cJSON_GetObjectItem(d, "decision");
        if (cJSON_IsString(aid) && cJSON_IsString(kind) && !strcmp(aid->valuestring, id) &&
            !strcmp(kind->valuestring, decision))
            found = 1;
    }
    cJSON_Delete(j);
    return found;
}

static void wait_decision(vigil_api *api, const char *id, const char *decision)
{
    int64_t end = mono_ms() + WAIT_MS;
    while (!has_decision(api, id, decision) && mono_ms() < end)
        usleep(5000);
    ck_assert_msg(has_decision(api, id, decision), "no \"%s\" decision for %s", decision, id);
}

START_TEST(policy_fires_end_to_end_remediated)
{
    recorder rec;
    vigil_hub_config *cfg = NULL;
    vigil_hub *hub = hub_demo(&rec, &cfg);
    vigil_api *api = mount(hub);
    int64_t now = (int64_t)time(NULL) * 1000;
    /* ingest -> engine -> on_request -> ledger + dispatcher */
    ingest_up(hub, 0, now);
    wait_requests(&rec, 1);
    ck_assert_str_eq(rec.actions[0], "restart_demo");
    ck_assert_str_eq(rec.targets[0], "demo");
    const char *id = rec.ids[0];
    vigil_store_action *a = NULL;
    ck_assert_int_eq(vigil_store_action_get(vigil_hub_store(hub), id, &a), VIGIL_OK);
    ck_assert_str_eq(a->status, "pending");
    ck_assert_str_eq(a->policy, "demo_down");
    ck_assert_ptr_nonnull(a->series);
    ck_assert_msg(strstr(a->series, "process_up") != NULL, "%s", a->series);
    vigil_store_action_free(a);
    wait_decision(api, id, "fired");
    /* the result comes back through the dispatcher; the series recovers */
    rec_done(&rec, 0, VIGIL_ACTION_SUCCEEDED, NULL);
    char st[64];
    ledger_status(hub, id, st, sizeof(st));
    ck_assert_str_eq(st, "succeeded");
    ingest_up(hub, 1, now + 1000);
    wait_decision(api, id, "remediated");
    /* GET /v1/actions carries the verdict; GET /v1/policies the policy */
    char out[65536];
    ck_assert_int_eq(call(api, "GET", "/v1/actions", NULL, AUTH_R, NULL, out, sizeof(out)), 200);
    cJSON *j = cJSON_Parse(out);
    cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "actions"), 0);
    ck_assert_str_eq(cJSON_GetObjectItem(first, "policy")->valuestring, "demo_down");
    cJSON *verdict = cJSON_GetObjectItem(first, "verdict");
    ck_assert_msg(cJSON_IsObject(verdict), "%s", out);
    ck_assert_str_eq(cJSON_GetObjectItem(verdict, "decision")->valuestring, "remediated");
    cJSON_Delete(j);
    ck_assert_int_eq(call(api, "GET", "/v1/policies", NULL, AUTH_R, NULL, out, sizeof(out)), 200);
    ck_assert_msg(strstr(out, "\"name\":\"demo_down\"") != NULL, "%s", out);
    ck_assert(metric_value(api, "vigil_policy_decisions_total{decision=\"fired\"}") == 1.0);
    ck_assert(metric_value(api, "vigil_policy_decisions_total{decision=\"remediated\"}") == 1.0);
    ck_assert(wait_metric(api, "vigil_actions_total{status=\"succeeded\"}", 1) == 1.0);
    /* decisions route inputs */
    ck_assert_int_eq(
        call(api, "GET", "/v1/decisions", "limit=100000", AUTH_R, NULL, out, sizeof(out)), 400);
    ck_assert_msg(strstr(out, "limit: expected an integer from 1 to 10000") != NULL, "%s", out);
    ck_assert_int_eq(
        call(api, "GET", "/v1/decisions", "since=soon", AUTH_R, NULL, out, sizeof(out)), 400);
    ck_assert_int_eq(
        call(api, "GET", "/v1/decisions", "since=-1h&limit=1", AUTH_R, NULL, out, sizeof(out)),
        200);
    ck_assert_int_eq(call(api, "GET", "/v1/policies", NULL, NULL, NULL, out, sizeof(out)), 401);
    vigil_api_free(api);
    vigil_hub_free(hub);
    vigil_hub_config_free(cfg);
}
END_TEST

/* ---- restart: requests left pending by a hub that died ------------------------------- */

static int64_t g_clock_ms;

static int64_t test_clock(void *payload)
{
    (void)payload;
    return g_clock_ms;
}

/* The demo hub of hub_demo() with the clock at g_clock_ms. */
static vigil_hub *hub_demo_clocked(recorder *rec, vigil_hub_config **cfg)
{
    ck_assert_msg(vigil_hub_config_load_string(cfg, DEMO_RULE, strlen(DEMO_RULE), "demo.yaml",
                                               NULL) == VIGIL_OK,
                  "%s", vigil_error_last()->message);
    vigil_hub_options o;
    hub_defaults(&o);
    o.policies = vigil_hub_config_hub(*cfg)->policies;
    o.clock = test_clock;
    vigil_hub *hub = NULL;
    ck_assert_msg(vigil_hub_new(&hub, &o) == VIGIL_OK, "%s", vigil_error_last()->message);
    vigil_action_dispatcher d;
    rec_init(rec, &d);
    ck_assert_int_eq(vigil_hub_set_dispatcher(hub, &d), VIGIL_OK);
    ck_assert_int_eq(vigil_hub_start(hub), VIGIL_OK);
    return hub;
}

/* A hub that dies: a child process runs the demo hub with its clock at
 * `t0`, lets demo_down fire (the request reaches the dispatcher, which never
 * answers), writes the request's id to a pipe and _exits without stopping
 * anything. Returns the id in `id`. */
static void crash_with_pending(int64_t t0, char *id, size_t size)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    db_url(); /* the child and the parent share the database */
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        g_clock_ms = t0;
        recorder rec;
        vigil_hub_config *cfg = NULL;
        vigil_hub *hub = hub_demo_clocked(&rec, &cfg);
        ingest_up(hub, 0, t0);
        wait_requests(&rec, 1);
        char st[64];
        ledger_status(hub, rec.ids[0], st, sizeof(st));
        if (strcmp(st, "pending") == 0 && write(fds[1], rec.ids[0], strlen(rec.ids[0])) > 0)
            _exit(0);
        _exit(1);
    }
    close(fds[1]);
    ssize_t n = read(fds[0], id, size - 1);
    close(fds[0]);
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the crashing hub failed");
    ck_assert_int_gt(n, 0);
    id[n] = '\0';
}

/* The reason of the `decision` naming action `id` ("" when none); checks
 * that the decision names its target and series. */
static void decision_reason(vigil_api *api, const char *id, const char *decision, char *out,
                            size_t size)
{
    char body[65536];
    ck_assert_int_eq(call(api, "GET", "/v1/decisions", "since=0", AUTH_R, NULL, body, sizeof(body)),
                     200);
    cJSON *j = cJSON_Parse(body);
    cJSON *d;
    out[0] = '\0';
    cJSON_ArrayForEach(d, cJSON_GetObjectItem(j, "decisions"))
    {
        cJSON *aid = cJSON_GetObjectItem(d, "action_id");
        cJSON *kind = cJSON_GetObjectItem(d, "decision");
        if (cJSON_IsString(aid) && !strcmp(aid->valuestring, id) &&
            !strcmp(kind->valuestring, decision)) {
            ck_assert_str_eq(cJSON_GetObjectItem(d, "target")->valuestring, "demo");
            ck_assert_msg(strstr(cJSON_GetObjectItem(d, "series")->valuestring, "process_up"), "%s",
                          body);
            snprintf(out, size, "%s", cJSON_GetObjectItem(d, "reason")->valuestring);
        }
    }
    cJSON_Delete(j);
}

/* The engine awaits `id` no more: a result for it is not expected. */
static void engine_awaits_not(vigil_hub *hub, const char *id)
{
    vigil_action_result r = VIGIL_ACTION_RESULT_INIT;
    r.status = VIGIL_ACTION_SUCCEEDED;
    ck_assert_int_eq(vigil_action_result_set_id(&r, id), VIGIL_OK);
    ck_assert_int_eq(vigil_engine_action_result(vigil_hub_engine(hub), &r), VIGIL_ENOTFOUND);
    vigil_action_result_clear(&r);
}

START_TEST(restart_expires_pending_past_act_within)
{
    const int64_t t0 = INT64_C(1750000000000);
    char id[256], reason[512], st[64];
    crash_with_pending(t0, id, sizeof(id));
    /* the new hub starts 5 min (act_within's default) and 1 ms later */
    g_clock_ms = t0 + VIGIL_POLICY_ACT_WITHIN_DEFAULT + 1;
    recorder rec;
    vigil_hub_config *cfg = NULL;
    vigil_hub *hub = hub_demo_clocked(&rec, &cfg);
    vigil_api *api = mount(hub);
    ck_assert_uint_eq(rec_count(&rec), 0); /* not sent again */
    vigil_store_action *a = NULL;
    ck_assert_int_eq(vigil_store_action_get(vigil_hub_store(hub), id, &a), VIGIL_OK);
    ck_assert_str_eq(a->status, "failed");
    ck_assert_str_eq(a->result_reason, "expired_after_restart");
    ck_assert_str_eq(a->output, "pending when the hub stopped; requested 300001ms ago, more than "
                                "act_within (5m): not sent again");
    vigil_store_action_free(a);
    decision_reason(api, id, "fired", reason, sizeof(reason));
    ck_assert_msg(reason[0], "the fired decision of %s is gone", id);
    decision_reason(api, id, "action_failed", reason, sizeof(reason));
    ck_assert_str_eq(reason, "failed: expired_after_restart");
    decision_reason(api, id, "redelivered", reason, sizeof(reason));
    ck_assert_str_eq(reason, "");
    ck_assert(metric_value(api, "vigil_action_dispatch_failures_total{reason="
                                "\"expired_after_restart\"}") == 1.0);
    engine_awaits_not(hub, id);
    /* the policy is free again: a recovery, a new failure, a new request */
    ingest_up(hub, 1, g_clock_ms);
    ingest_up(hub, 0, g_clock_ms + 1000);
    g_clock_ms += 1000;
    wait_requests(&rec, 1);
    ck_assert_str_ne(rec.ids[0], id);
    ledger_status(hub, id, st, sizeof(st));
    ck_assert_str_eq(st, "failed");
    rec_done(&rec, 0, VIGIL_ACTION_SUCCEEDED, NULL);
    vigil_api_free(api);
    vigil_hub_free(hub);
    vigil_hub_config_free(cfg);
}
END_TEST

START_TEST(restart_redelivers_pending_with_its_id)
{
    const int64_t t0 = INT64_C(1750000000000);
    char id[256], reason[512], st[64];
    crash_with_pending(t0, id, sizeof(id));
    /* within act_within: sent again, with the same id */
    g_clock_ms = t0 + 10000;
    recorder rec;
    vigil_hub_config *cfg = NULL;
    vigil_hub *hub = hub_demo_clocked(&rec, &cfg);
    vigil_api *api = mount(hub);
    wait_requests(&rec, 1);
    ck_assert_str_eq(rec.ids[0], id);
    ck_assert_str_eq(rec.actions[0], "restart_demo");
    ck_assert_str_eq(rec.targets[0], "demo");
    decision_reason(api, id, "redelivered", reason, sizeof(reason));
    ck_assert_str_eq(reason, "pending when the hub stopped; sent again with its id (the "
                             "remediator runs an id at most once)");
    ledger_status(hub, id, st, sizeof(st));
    ck_assert_str_eq(st, "pending");
    /* its result closes the loop as if the hub had never stopped */
    rec_done(&rec, 0, VIGIL_ACTION_SUCCEEDED, NULL);
    ledger_status(hub, id, st, sizeof(st));
    ck_assert_str_eq(st, "succeeded");
    ingest_up(hub, 1, g_clock_ms);
    wait_decision(api, id, "remediated");
    decision_reason(api, id, "remediated", reason, sizeof(reason));
    ck_assert_msg(strstr(reason, "after restart_demo succeeded") != NULL, "%s", reason);
    ck_assert_uint_eq(rec_count(&rec), 1);
    vigil_api_free(api);
    vigil_hub_free(hub);
    vigil_hub_config_free(cfg);
}
END_TEST

/* The engine's state says a request is awaited; the ledger has it final
 * (the process died between the two) or never recorded it (died before). */
static void engine_fires_alone(int64_t t0, const char *final_status, char *id, size_t size)
{
    vigil_hub_config *cfg = NULL;
    ck_assert_int_eq(
        vigil_hub_config_load_string(&cfg, DEMO_RULE, strlen(DEMO_RULE), "demo.yaml", NULL),
        VIGIL_OK);
    vigil_store *store = NULL;
    ck_assert_int_eq(vigil_store_open(&store, db_url(), NULL), VIGIL_OK);
    g_clock_ms = t0;
    vigil_engine_options eo = VIGIL_ENGINE_OPTIONS_INIT;
    eo.store = store;
    eo.clock = test_clock;
    eo.logger.min_level = VIGIL_LOG_OFF;
    vigil_engine *e = NULL;
    ck_assert_int_eq(vigil_engine_new(&e, &eo), VIGIL_OK);
    ck_assert_int_eq(vigil_engine_load(e, vigil_hub_config_hub(cfg)->policies), VIGIL_OK);
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    vigil_tag tags[] = {{"host", "h1"}, {"process", "demo"}};
    vigil_metric m = {"process_up", 0, t0, tags, 2, NULL};
    ck_assert_int_eq(vigil_batch_add(b, &m), VIGIL_OK);
    ck_assert_int_eq(vigil_engine_ingest(e, b), VIGIL_OK);
    vigil_batch_free(b);
    vigil_buf d = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil_engine_decisions_json(e, 0, 10, &d), VIGIL_OK);
    cJSON *j = cJSON_Parse(d.ptr);
    cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "decisions"), 0);
    ck_assert_msg(first != NULL, "%s", d.ptr);
    snprintf(id, size, "%s", cJSON_GetObjectItem(first, "action_id")->valuestring);
    cJSON_Delete(j);
    vigil_buf_dispose(&d);
    if (final_status) {
        vigil_store_action a;
        memset(&a, 0, sizeof(a));
        a.id = id;
        a.requested_ms = t0;
        a.action = "restart_demo";
        a.target = "demo";
        a.status = "pending";
        a.duration_ms = -1;
        ck_assert_int_eq(vigil_store_action_put(store, &a, NULL), VIGIL_OK);
        a.status = final_status;
        a.result_reason = "ok";
        a.updated_ms = t0 + 5;
        ck_assert_int_eq(vigil_store_action_update(store, &a), VIGIL_OK);
    }
    vigil_engine_free(e);
    vigil_store_close(store);
    vigil_hub_config_free(cfg);
}

START_TEST(restart_settles_what_the_engine_awaits)
{
    const int64_t t0 = INT64_C(1750000000000);
    char id[256], reason[512];
    /* never recorded in the ledger: fails, the engine is free */
    engine_fires_alone(t0, NULL, id, sizeof(id));
    g_clock_ms = t0 + 1000;
    recorder rec;
    vigil_hub_config *cfg = NULL;
    vigil_hub *hub = hub_demo_clocked(&rec, &cfg);
    vigil_api *api = mount(hub);
    ck_assert_uint_eq(rec_count(&rec), 0);
    decision_reason(api, id, "action_failed", reason, sizeof(reason));
    ck_assert_str_eq(reason, "failed: not_sent_before_restart");
    engine_awaits_not(hub, id);
    vigil_api_free(api);
    vigil_hub_free(hub);
    vigil_hub_config_free(cfg);
}
END_TEST

START_TEST(restart_gives_the_engine_a_recorded_result)
{
    const int64_t t0 = INT64_C(1750000000000);
    char id[256];
    /* recorded as succeeded: the engine verifies it, the recovery remediates */
    engine_fires_alone(t0, "succeeded", id, sizeof(id));
    g_clock_ms = t0 + 1000;
    recorder rec;
    vigil_hub_config *cfg = NULL;
    vigil_hub *hub = hub_demo_clocked(&rec, &cfg);
    vigil_api *api = mount(hub);
    ck_assert_uint_eq(rec_count(&rec), 0);
    ingest_up(hub, 1, g_clock_ms);
    wait_decision(api, id, "remediated");
    engine_awaits_not(hub, id);
    vigil_api_free(api);
    vigil_hub_free(hub);
    vigil_hub_config_free(cfg);
}
END_TEST

START_TEST(silences_routes_and_effect)
{
    recorder rec;
    vigil_hub_config *cfg = NULL;
    vigil_hub *hub = hub_demo(&rec, &cfg);
    vigil_api *api = mount(hub);
    char out[8192];
    ck_assert_int_eq(call(api, "POST", "/v1/silences", NULL, AUTH_W,
                          "{\"matchers\":{\"target\":\"demo\"},\"duration\":\"1h\","
                          "\"comment\":\"maintenance\"}",
                          out, sizeof(out)),
                     201);
    cJSON *j = cJSON_Parse(out);
    ck_assert_msg(cJSON_IsString(cJSON_GetObjectItem(j, "id")), "%s", out);
    char id[160];
    snprintf(id, sizeof(id), "%s", cJSON_GetObjectItem(j, "id")->valuestring);
    cJSON_Delete(j);
    ck_assert_int_eq(call(api, "GET", "/v1/silences", NULL, AUTH_R, NULL, out, sizeof(out)), 200);
    ck_assert_msg(strstr(out, id) != NULL && strstr(out, "maintenance") != NULL, "%s", out);
    /* silenced: the policy records it and requests nothing */
    ingest_up(hub, 0, (int64_t)time(NULL) * 1000);
    int64_t end = mono_ms() + WAIT_MS;
    while (metric_value(api, "vigil_policy_decisions_total{decision=\"silenced\"}") < 1 &&
           mono_ms() < end)
        usleep(2000);
    ck_assert(metric_value(api, "vigil_policy_decisions_total{decision=\"silenced\"}") >= 1.0);
    ck_assert_uint_eq(rec_count(&rec), 0);
    /* bad inputs */
    expect_error(api, "POST", "/v1/silences", AUTH_W, "{\"duration\":\"1h\"}", 400,
                 "invalid_request", "matchers", "required");
    expect_error(api, "POST", "/v1/silences", AUTH_W, "{\"matchers\":{},\"duration\":\"1h\"}", 400,
                 "invalid_request", "matchers", "at least one matcher");
    expect_error(api, "POST", "/v1/silences", AUTH_W,
                 "{\"matchers\":{\"target\":3},\"duration\":\"1h\"}", 400, "invalid_request",
                 "matchers.target", "expected a string");
    expect_error(api, "POST", "/v1/silences", AUTH_W, "{\"matchers\":{\"target\":\"x\"}}", 400,
                 "invalid_request", "ends", "set exactly one of ends and duration");
    expect_error(api, "POST", "/v1/silences", AUTH_W,
                 "{\"matchers\":{\"target\":\"x\"},\"ends\":5,\"duration\":\"1h\"}", 400,
                 "invalid_request", "ends", "set exactly one of ends and duration");
    expect_error(api, "POST", "/v1/silences", AUTH_W,
                 "{\"matchers\":{\"target\":\"x\"},\"starts\":10,\"ends\":5}", 400,
                 "invalid_request", "ends", "must be after starts");
    expect_error(api, "POST", "/v1/silences", AUTH_W,
                 "{\"matchers\":{\"target\":\"x\"},\"duration\":\"forever\"}", 400,
                 "invalid_request", "duration", "expected a positive duration");
    expect_error(api, "POST", "/v1/silences", AUTH_W,
                 "{\"matchers\":{\"target\":\"x\"},\"ends\":\"2030-13-01T00:00:00Z\"}", 400,
                 "invalid_request", "ends", "RFC 3339");
    expect_error(api, "POST", "/v1/silences", AUTH_W,
                 "{\"matchers\":{\"target\":\"x\"},\"duration\":\"1h\",\"who\":1}", 400,
                 "invalid_request", "who", "unknown key");
    expect_error(api, "POST", "/v1/silences", AUTH_R,
                 "{\"matchers\":{\"target\":\"x\"},\"duration\":\"1h\"}", 403, "forbidden", "", "");
    expect_error(api, "POST", "/v1/silences", NULL, "{}", 401, "unauthorized", "", "");
    /* an RFC 3339 window */
    ck_assert_int_eq(call(api, "POST", "/v1/silences", NULL, AUTH_W,
                          "{\"matchers\":{\"host\":\"h*\"},\"starts\":\"2030-01-01T00:00:00Z\","
                          "\"ends\":\"2030-01-01T02:00:00+01:00\",\"created_by\":\"alice\"}",
                          out, sizeof(out)),
                     201);
    ck_assert_int_eq(call(api, "GET", "/v1/silences", NULL, AUTH_R, NULL, out, sizeof(out)), 200);
    ck_assert_msg(strstr(out, "1893456000000") != NULL && strstr(out, "1893459600000") != NULL,
                  "%s", out);
    /* delete */
    char path[256];
    snprintf(path, sizeof(path), "/v1/silences/%s", id);
    ck_assert_int_eq(call(api, "DELETE", path, NULL, AUTH_W, NULL, out, sizeof(out)), 200);
    char want[256];
    snprintf(want, sizeof(want), "{\"id\":\"%s\",\"deleted\":true}", id);
    ck_assert_str_eq(out, want);
    expect_error(api, "DELETE", path, AUTH_W, NULL, 404, "not_found", "", "");
    expect_error(api, "DELETE", path, AUTH_R, NULL, 403, "forbidden", "", "");
    expect_error(api, "DELETE", "/v1/silences/", AUTH_W, NULL, 404, "not_found", "",
                 "no such route");
    vigil_api_free(api);
    vigil_hub_free(hub);
    vigil_hub_config_free(cfg);
}
END_TEST

START_TEST(desired_routes)
{
    vigil_hub *hub = hub_plain();
    vigil_api *api = mount(hub);
    char out[4096];
    ck_assert_int_eq(call(api, "PUT", "/v1/desired", NULL, AUTH_W,
                          "{\"target\":\"api\",\"desired\":{\"replicas\":3,\"state\":\"running\"}}",
                          out, sizeof(out)),
                     200);
    ck_assert_str_eq(out,
                     "{\"target\":\"api\",\"desired\":{\"replicas\":3,\"state\":\"running\"}}");
    ck_assert_int_eq(call(api, "GET", "/v1/desired", "target=api", AUTH_R, NULL, out, sizeof(out)),
                     200);
    const char *one = "{\"target\":\"api\",\"desired\":{\"replicas\":3,";
    ck_assert_msg(strncmp(out, one, strlen(one)) == 0, "%s", out);
    ck_assert_int_eq(call(api, "GET", "/v1/desired", NULL, AUTH_R, NULL, out, sizeof(out)), 200);
    const char *lead = "{\"desired\":[{\"target\":\"api\",\"desired\":{\"replicas\":3,";
    ck_assert_msg(strncmp(out, lead, strlen(lead)) == 0, "%s", out);
    ck_assert_int_eq(call(api, "GET", "/v1/desired", "target=nope", AUTH_R, NULL, out, sizeof(out)),
                     404);
    ck_assert_msg(strstr(out, "no desired state for target") != NULL, "%s", out);
    expect_error(api, "PUT", "/v1/desired", AUTH_W, "{\"target\":\"api\"}", 400, "invalid_request",
                 "desired", "required");
    expect_error(api, "PUT", "/v1/desired", AUTH_W, "{\"target\":\"api\",\"desired\":[1]}", 400,
                 "invalid_request", "desired", "expected an object");
    expect_error(api, "PUT", "/v1/desired", AUTH_W, "{\"desired\":{}}", 400, "invalid_request",
                 "target", "required");
    expect_error(api, "PUT", "/v1/desired", AUTH_R, "{\"target\":\"a\",\"desired\":{}}", 403,
                 "forbidden", "", "");
    vigil_api_free(api);
    vigil_hub_free(hub);
    /* a restarted hub still has it */
    hub = hub_plain();
    api = mount(hub);
    ck_assert_int_eq(call(api, "GET", "/v1/desired", "target=api", AUTH_R, NULL, out, sizeof(out)),
                     200);
    vigil_api_free(api);
    vigil_hub_free(hub);
}
END_TEST

/* Counts warn records saying no remediator is configured. */
static void count_no_remediator(const vigil_log_record *r, void *payload)
{
    if (r->level == VIGIL_LOG_WARN && strstr(r->message, "no remediator is configured"))
        __atomic_add_fetch((int *)payload, 1, __ATOMIC_SEQ_CST);
}

/* Starts a hub whose engine holds DEMO_RULE, with `d` set as its dispatcher
 * before the start when not NULL; returns the warnings counted. */
static int start_warnings(const vigil_action_dispatcher *d)
{
    int warned = 0;
    vigil_hub_options o;
    hub_defaults(&o);
    o.logger.cb = count_no_remediator;
    o.logger.payload = &warned;
    o.logger.min_level = VIGIL_LOG_WARN;
    vigil_hub *hub = NULL;
    ck_assert_int_eq(vigil_hub_new(&hub, &o), VIGIL_OK);
    vigil_config *cfg = NULL;
    ck_assert_int_eq(vigil_config_load_string(&cfg, DEMO_RULE, strlen(DEMO_RULE), "w.yaml", NULL),
                     VIGIL_OK);
    ck_assert_int_eq(
        vigil_engine_load(vigil_hub_engine(hub),
                          vigil_config_node_get(vigil_config_root(cfg, 0), "policies")),
        VIGIL_OK);
    vigil_config_free(cfg);
    if (d)
        ck_assert_int_eq(vigil_hub_set_dispatcher(hub, d), VIGIL_OK);
    ck_assert_int_eq(vigil_hub_start(hub), VIGIL_OK);
    vigil_hub_free(hub);
    return __atomic_load_n(&warned, __ATOMIC_SEQ_CST);
}

START_TEST(warns_only_without_any_dispatcher)
{
    ck_assert_int_eq(start_warnings(NULL), 1);
    recorder rec;
    vigil_action_dispatcher d;
    rec_init(&rec, &d);
    ck_assert_int_eq(start_warnings(&d), 0);
    pthread_mutex_destroy(&rec.mu);
}
END_TEST

START_TEST(engine_for_embedders)
{
    vigil_hub *hub = hub_plain();
    ck_assert_ptr_null(vigil_hub_engine(NULL));
    vigil_engine *e = vigil_hub_engine(hub);
    ck_assert_ptr_nonnull(e);
    vigil_config *cfg = NULL;
    ck_assert_int_eq(vigil_config_load_string(&cfg, DEMO_RULE, strlen(DEMO_RULE), "e.yaml", NULL),
                     VIGIL_OK);
    ck_assert_int_eq(
        vigil_engine_load(e, vigil_config_node_get(vigil_config_root(cfg, 0), "policies")),
        VIGIL_OK);
    vigil_config_free(cfg);
    vigil_api *api = mount(hub);
    char out[4096];
    ck_assert_int_eq(call(api, "GET", "/v1/policies", NULL, AUTH_R, NULL, out, sizeof(out)), 200);
    ck_assert_msg(strstr(out, "\"name\":\"demo_down\"") != NULL, "%s", out);
    ck_assert(metric_value(api, "vigil_policies") == 1.0);
    /* with no dispatcher, the rule's request is recorded and failed */
    ingest_up(hub, 0, (int64_t)time(NULL) * 1000);
    int64_t end = mono_ms() + WAIT_MS;
    while (metric_value(api, "vigil_actions_total{status=\"failed\"}") < 1 && mono_ms() < end)
        usleep(2000);
    ck_assert(metric_value(api, "vigil_action_dispatch_failures_total{reason=\"no_remediator\"}") ==
              1.0);
    vigil_api_free(api);
    vigil_hub_free(hub);
}
END_TEST

/* ---- the embedder's plug-ins reach the hub ------------------------------------------ */

typedef struct plug_count {
    int opens, evaluations, freed;
} plug_count;

static void plug_free(void *payload)
{
    ((plug_count *)payload)->freed++;
}

/* A store type: the SQLite type under the scheme "wrapped", counting opens. */
static int wrapped_open(void **out, const char *url, const char *rest,
                        const vigil_store_options *opts, void *payload)
{
    ((plug_count *)payload)->opens++;
    return vigil_store_sqlite_type()->open(out, url, rest, opts, NULL);
}

/* A policy type "down": active while the value is below 1. */
static int down_create(void **state, const vigil_config_node *rule, void *payload)
{
    (void)rule;
    *state = payload;
    return VIGIL_OK;
}

static int down_evaluate(void *state, const vigil_metric *m, vigil_policy_ctx *ctx,
                         vigil_policy_verdict *out)
{
    (void)ctx;
    ((plug_count *)state)->evaluations++;
    out->active = m->value < 1;
    out->value = m->value;
    return VIGIL_OK;
}

static void down_destroy(void *state)
{
    (void)state;
}

static const char *const DOWN_RULE = "policies:\n"
                                     "  - {name: plug_down, kind: down, metric: process_up,\n"
                                     "     match: {process: demo}, action: restart_demo,\n"
                                     "     target: \"{{tags.process}}\"}\n";

START_TEST(embedder_types_reach_the_hub)
{
    plug_count stores_n = {0, 0, 0}, policies_n = {0, 0, 0};
    vigil_store_registry *stores = NULL;
    vigil_policy_registry *policies = NULL;
    ck_assert_int_eq(vigil_store_registry_new(&stores), VIGIL_OK);
    ck_assert_int_eq(vigil_policy_registry_new(&policies), VIGIL_OK);
    vigil_store_type st = *vigil_store_sqlite_type();
    st.name = "wrapped";
    st.payload = &stores_n;
    st.payload_free = plug_free;
    st.open = wrapped_open;
    ck_assert_int_eq(vigil_store_register(stores, &st), VIGIL_OK);
    vigil_policy_type pt = {
        .version = VIGIL_POLICY_TYPE_VERSION,
        .name = "down",
        .payload = &policies_n,
        .payload_free = plug_free,
        .create = down_create,
        .evaluate = down_evaluate,
        .destroy = down_destroy,
    };
    ck_assert_int_eq(vigil_policy_register(policies, &pt), VIGIL_OK);

    vigil_config *cfg = NULL;
    ck_assert_int_eq(vigil_config_load_string(&cfg, DOWN_RULE, strlen(DOWN_RULE), "p.yaml", NULL),
                     VIGIL_OK);
    vigil_hub_options o;
    hub_defaults(&o);
    char url[1200];
    snprintf(url, sizeof(url), "wrapped://%s/plug.db", vt_tmpdir());
    o.store_url = url;
    o.policies = vigil_config_node_get(vigil_config_root(cfg, 0), "policies");

    /* without the registries, neither the scheme nor the kind is known */
    vigil_hub *hub = NULL;
    ck_assert_int_eq(vigil_hub_new(&hub, &o), VIGIL_EUNSUPPORTED);
    vt_assert_error(VIGIL_EUNSUPPORTED,
                    "unsupported URL scheme \"wrapped\" (known: sqlite, postgresql, postgres)");
    o.store_types = stores;
    ck_assert_int_eq(vigil_hub_new(&hub, &o), VIGIL_EUNSUPPORTED);
    vt_assert_error(VIGIL_EUNSUPPORTED, "p.yaml:2:29: policies[0].kind: unknown kind \"down\"");
    o.policy_types = policies;
    stores_n.opens = 0;
    hub = hub_with(&o);
    vigil_config_free(cfg);
    ck_assert_int_eq(stores_n.opens, 2); /* the writer and the reader */
    ck_assert_str_eq(vigil_store_scheme(vigil_hub_store(hub)), "wrapped");

    /* the code policy evaluates the ingested sample and fires */
    ingest_up(hub, 0, (int64_t)time(NULL) * 1000);
    vigil_engine_stats es = VIGIL_ENGINE_STATS_INIT;
    int64_t end = mono_ms() + WAIT_MS;
    do {
        usleep(2000);
        ck_assert_int_eq(vigil_engine_stats_get(vigil_hub_engine(hub), &es), VIGIL_OK);
    } while (es.requests < 1 && mono_ms() < end);
    ck_assert_uint_eq(es.requests, 1);
    ck_assert_int_ge(policies_n.evaluations, 1);
    vigil_hub_free(hub);
    /* the registries keep their payloads until they are freed */
    ck_assert_int_eq(stores_n.freed + policies_n.freed, 0);
    vigil_store_registry_free(stores);
    vigil_policy_registry_free(policies);
    ck_assert_int_eq(stores_n.freed, 1);
    ck_assert_int_eq(policies_n.freed, 1);
}
END_TEST

/* collector.yaml naming an embedder's store scheme and policy kind: they
 * resolve in the loader options' registries, which the loaded options carry
 * on; names found nowhere fail where they are written. */
START_TEST(collector_yaml_names_embedder_types)
{
    plug_count stores_n = {0, 0, 0}, policies_n = {0, 0, 0};
    vigil_store_registry *stores = NULL;
    vigil_policy_registry *policies = NULL;
    ck_assert_int_eq(vigil_store_registry_new(&stores), VIGIL_OK);
    ck_assert_int_eq(vigil_policy_registry_new(&policies), VIGIL_OK);
    vigil_store_type st = *vigil_store_sqlite_type();
    st.name = "wrapped";
    st.payload = &stores_n;
    st.payload_free = plug_free;
    st.open = wrapped_open;
    ck_assert_int_eq(vigil_store_register(stores, &st), VIGIL_OK);
    vigil_policy_type pt = {
        .version = VIGIL_POLICY_TYPE_VERSION,
        .name = "down",
        .payload = &policies_n,
        .payload_free = plug_free,
        .create = down_create,
        .evaluate = down_evaluate,
        .destroy = down_destroy,
    };
    ck_assert_int_eq(vigil_policy_register(policies, &pt), VIGIL_OK);
    char text[2048];
    snprintf(text, sizeof(text), "store: wrapped://%s/c.db\n%s", vt_tmpdir(), DOWN_RULE);
    vigil_config_options co = VIGIL_CONFIG_OPTIONS_INIT;
    vigil_hub_config *c = NULL;

    /* the built-in types only: neither the scheme nor the kind is known */
    ck_assert_int_eq(vigil_hub_config_load_string(&c, text, strlen(text), "c.yaml", &co),
                     VIGIL_EUNSUPPORTED);
    ck_assert_str_eq(vigil_error_last()->message,
                     "c.yaml:1:8: store: expected sqlite://PATH or postgresql://HOST/DATABASE (the "
                     "store backends built in)");
    ck_assert_ptr_null(c);
    co.store_types = stores;
    ck_assert_int_eq(vigil_hub_config_load_string(&c, text, strlen(text), "c.yaml", &co),
                     VIGIL_EUNSUPPORTED);
    ck_assert_str_eq(vigil_error_last()->message,
                     "c.yaml:3:29: policies[0].kind: unknown kind \"down\" (expected threshold, "
                     "absent, change, desired, anomaly or a registered code policy)");
    co.policy_types = policies;
    ck_assert_msg(vigil_hub_config_load_string(&c, text, strlen(text), "c.yaml", &co) == VIGIL_OK,
                  "%s", vigil_error_last()->message);
    ck_assert_ptr_eq(vigil_hub_config_hub(c)->store_types, stores);
    ck_assert_ptr_eq(vigil_hub_config_hub(c)->policy_types, policies);
    vigil_hub_config_free(c);

    /* with the registries, an unknown name still fails, located */
    const char *bad_scheme = "store: nope://x\n";
    ck_assert_int_eq(
        vigil_hub_config_load_string(&c, bad_scheme, strlen(bad_scheme), "c.yaml", &co),
        VIGIL_EUNSUPPORTED);
    ck_assert_str_eq(vigil_error_last()->message,
                     "c.yaml:1:8: store: unsupported URL scheme \"nope\" (known: sqlite, "
                     "postgresql, postgres, wrapped)");
    const char *bad_kind = "policies:\n"
                           "  - {name: plug_down, kind: downn, metric: process_up,\n"
                           "     action: restart_demo, target: x}\n";
    ck_assert_int_eq(vigil_hub_config_load_string(&c, bad_kind, strlen(bad_kind), "c.yaml", &co),
                     VIGIL_EUNSUPPORTED);
    ck_assert_str_eq(vigil_error_last()->message,
                     "c.yaml:2:29: policies[0].kind: unknown kind \"downn\" (expected threshold, "
                     "absent, change, desired, anomaly or a registered code policy)");
    ck_assert_int_eq(stores_n.freed + policies_n.freed, 0);
    vigil_store_registry_free(stores);
    vigil_policy_registry_free(policies);
}
END_TEST

START_TEST(collector_yaml_policies_and_dir)
{
    const char *dir = vt_tmpdir();
    char rules[600], text[4096];
    snprintf(rules, sizeof(rules), "%s/rules", dir);
    ck_assert_int_eq(mkdir(rules, 0700), 0);
    const char *rule_a = "policies:\n"
                         "  - {name: agent_silent, kind: absent, metric: vigil_agent_heartbeat,\n"
                         "     match: {host: \"*\"}, for: 30s, action: page_oncall,\n"
                         "     target: \"{{tags.host}}\"}\n";
    vt_write_file(rules, "a.yaml", rule_a, strlen(rule_a));
    snprintf(text, sizeof(text),
             "%spolicies_dir: %s\n"
             "silences: [{matchers: {policy: agent_silent}, ends: \"2099-01-01T00:00:00Z\","
             " comment: quiet}]\n",
             DEMO_RULE, rules);
    vigil_hub_config *c = NULL;
    ck_assert_msg(vigil_hub_config_load_string(&c, text, strlen(text), "c.yaml", NULL) == VIGIL_OK,
                  "%s", vigil_error_last()->message);
    vigil_hub_options o = *vigil_hub_config_hub(c);
    o.store_url = db_url();
    o.logger.min_level = VIGIL_LOG_OFF;
    o.events_interval_ms = o.policy_interval_ms = 3600 * 1000;
    vigil_hub *hub = NULL;
    ck_assert_msg(vigil_hub_new(&hub, &o) == VIGIL_OK, "%s", vigil_error_last()->message);
    vigil_api *api = mount(hub);
    char out[16384];
    ck_assert_int_eq(call(api, "GET", "/v1/policies", NULL, AUTH_R, NULL, out, sizeof(out)), 200);
    ck_assert_msg(strstr(out, "\"demo_down\"") && strstr(out, "\"agent_silent\""), "%s", out);
    ck_assert_int_eq(call(api, "GET", "/v1/silences", NULL, AUTH_R, NULL, out, sizeof(out)), 200);
    ck_assert_msg(strstr(out, "quiet") != NULL, "%s", out);
    vigil_api_free(api);
    vigil_hub_free(hub);
    /* the same silence is not added twice by a restart */
    ck_assert_int_eq(vigil_hub_new(&hub, &o), VIGIL_OK);
    api = mount(hub);
    ck_assert_int_eq(call(api, "GET", "/v1/silences", NULL, AUTH_R, NULL, out, sizeof(out)), 200);
    ck_assert_msg(strstr(out, "quiet") == strrchr(strstr(out, "quiet"), 'q'), "%s", out);
    const char *q = strstr(out, "quiet");
    ck_assert_ptr_null(strstr(q + 1, "quiet"));
    vigil_api_free(api);
    vigil_hub_free(hub);
    vigil_hub_config_free(c);

    /* a bad rule in the directory: its file and line */
    const char *rule_b = "policies:\n"
                         "  - name: broken\n"
                         "    kind: threshold\n"
                         "    metric: cpu_usage\n"
                         "    op: \"=~\"\n"
                         "    threshold: 1\n"
                         "    action: x\n";
    vt_write_file(rules, "b.yaml", rule_b, strlen(rule_b));
    c = NULL;
    ck_assert_int_ne(vigil_hub_config_load_string(&c, text, strlen(text), "c.yaml", NULL),
                     VIGIL_OK);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(vigil_error_last()->message, "b.yaml:5:") != NULL, "%s",
                  vigil_error_last()->message);
    /* a bad inline rule: its line in collector.yaml */
    const char *bad = "policies:\n"
                      "  - name: x\n"
                      "    kind: sometimes\n"
                      "    metric: cpu_usage\n"
                      "    action: y\n";
    ck_assert_int_ne(vigil_hub_config_load_string(&c, bad, strlen(bad), "c.yaml", NULL), VIGIL_OK);
    ck_assert_msg(strstr(vigil_error_last()->message, "c.yaml:3:") != NULL, "%s",
                  vigil_error_last()->message);
    /* a policies_dir that does not exist */
    const char *nodir = "policies_dir: /nonexistent/vigil-rules\n";
    ck_assert_int_ne(vigil_hub_config_load_string(&c, nodir, strlen(nodir), "c.yaml", NULL),
                     VIGIL_OK);
    ck_assert_msg(strstr(vigil_error_last()->message, "/nonexistent/vigil-rules") != NULL, "%s",
                  vigil_error_last()->message);
}
END_TEST

/* ---- reloading policies ---------------------------------------------------------------- */

typedef struct log_capture {
    pthread_mutex_t mu;
    char text[8192];
} log_capture;

static void capture_log(const vigil_log_record *r, void *payload)
{
    log_capture *c = payload;
    pthread_mutex_lock(&c->mu);
    size_t n = strlen(c->text);
    snprintf(c->text + n, sizeof(c->text) - n, "%s %s %s\n", vigil_log_level_name(r->level),
             r->message, r->fields);
    pthread_mutex_unlock(&c->mu);
}

static int logged(log_capture *c, const char *what)
{
    pthread_mutex_lock(&c->mu);
    int yes = strstr(c->text, what) != NULL;
    pthread_mutex_unlock(&c->mu);
    return yes;
}

START_TEST(reload_policies_keeps_state_and_refuses_bad_sets)
{
    recorder rec;
    vigil_hub_config *cfg = NULL;
    vigil_hub *hub = hub_demo(&rec, &cfg);
    vigil_api *api = mount(hub);
    char out[16384];
    /* demo_down fires: its series is firing */
    ingest_up(hub, 0, (int64_t)time(NULL) * 1000);
    wait_requests(&rec, 1);
    ck_assert_int_eq(call(api, "GET", "/v1/policies", NULL, AUTH_R, NULL, out, sizeof(out)), 200);
    ck_assert_msg(strstr(out, "\"state\":\"firing\"") != NULL, "%s", out);

    char rules[600], text[4096];
    snprintf(rules, sizeof(rules), "%s/reload_rules", vt_tmpdir());
    ck_assert_int_eq(mkdir(rules, 0700), 0);
    const char *rule_a = "policies:\n"
                         "  - {name: agent_silent, kind: absent, metric: vigil_agent_heartbeat,\n"
                         "     match: {host: \"*\"}, for: 30s, action: page_oncall,\n"
                         "     target: \"{{tags.host}}\"}\n";
    vt_write_file(rules, "a.yaml", rule_a, strlen(rule_a));
    snprintf(text, sizeof(text), "%spolicies_dir: %s\n", DEMO_RULE, rules);
    vigil_hub_config *fresh = NULL;
    ck_assert_msg(vigil_hub_config_load_string(&fresh, text, strlen(text), "c.yaml", NULL) ==
                      VIGIL_OK,
                  "%s", vigil_error_last()->message);
    vigil_engine_reload_result res = VIGIL_ENGINE_RELOAD_RESULT_INIT;
    ck_assert_int_eq(vigil_hub_reload_policies(hub, vigil_hub_config_hub(fresh), &res), VIGIL_OK);
    ck_assert_uint_eq(res.added, 1);
    ck_assert_uint_eq(res.kept, 1);
    ck_assert_uint_eq(res.changed + res.removed, 0);
    ck_assert_int_eq(call(api, "GET", "/v1/policies", NULL, AUTH_R, NULL, out, sizeof(out)), 200);
    ck_assert_msg(strstr(out, "\"agent_silent\"") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "\"state\":\"firing\"") != NULL, "kept state: %s", out);
    ck_assert(metric_value(api, "vigil_policies") == 2.0);
    vigil_hub_config_free(fresh);

    /* a rule replaced by another, and demo_down dropped */
    const char *rule_b = "policies:\n"
                         "  - {name: agent_gone, kind: absent, metric: vigil_agent_heartbeat,\n"
                         "     match: {host: \"*\"}, for: 1m, action: page_oncall,\n"
                         "     target: \"{{tags.host}}\"}\n";
    vt_write_file(rules, "a.yaml", rule_b, strlen(rule_b));
    vigil_hub_options o = VIGIL_HUB_OPTIONS_INIT;
    o.policies_dir = rules;
    ck_assert_int_eq(vigil_hub_reload_policies(hub, &o, &res), VIGIL_OK);
    ck_assert_uint_eq(res.added, 1);
    ck_assert_uint_eq(res.removed, 2);
    ck_assert_int_eq(call(api, "GET", "/v1/policies", NULL, AUTH_R, NULL, out, sizeof(out)), 200);
    ck_assert_msg(strstr(out, "\"agent_gone\"") && !strstr(out, "\"agent_silent\"") &&
                      !strstr(out, "\"demo_down\""),
                  "%s", out);

    /* bad sets: nothing changes */
    const char *broken = "policies:\n  - {name: x, kind: threshold, metric: m, op: \"=~\",\n"
                         "     threshold: 1, action: y}\n";
    vt_write_file(rules, "b.yaml", broken, strlen(broken));
    ck_assert_int_eq(vigil_hub_reload_policies(hub, &o, &res), VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE, "b.yaml:2:47: policies[0].op: unknown op \"=~\"");
    o.policies_dir = "/nonexistent/vigil-rules";
    ck_assert_int_eq(vigil_hub_reload_policies(hub, &o, NULL), VIGIL_EIO);
    ck_assert_int_eq(call(api, "GET", "/v1/policies", NULL, AUTH_R, NULL, out, sizeof(out)), 200);
    ck_assert_msg(strstr(out, "\"agent_gone\"") != NULL, "%s", out);
    ck_assert_int_eq(vigil_hub_reload_policies(NULL, &o, NULL), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_hub_reload_policies(hub, NULL, NULL), VIGIL_EINVAL);
    res.version = 99;
    ck_assert_int_eq(vigil_hub_reload_policies(hub, &o, &res), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "hub reload policies result: version 99 is not supported");
    /* the request of the dropped rule still gets its result (the ledger
     * records it; the engine no longer knows the id) */
    rec_done(&rec, 0, VIGIL_ACTION_FAILED, "test");
    vigil_api_free(api);
    vigil_hub_free(hub);
    vigil_hub_config_free(cfg);
    pthread_mutex_destroy(&rec.mu);

    /* what the hub logs */
    log_capture lc;
    memset(&lc, 0, sizeof(lc));
    pthread_mutex_init(&lc.mu, NULL);
    vigil_hub_options lo;
    hub_defaults(&lo);
    lo.logger.cb = capture_log;
    lo.logger.payload = &lc;
    lo.logger.min_level = VIGIL_LOG_INFO;
    char url[700];
    snprintf(url, sizeof(url), "sqlite://%s/reload-log.db", vt_tmpdir());
    lo.store_url = url;
    ck_assert_int_eq(vigil_hub_new(&hub, &lo), VIGIL_OK);
    vt_write_file(rules, "b.yaml", "policies: []\n", 13);
    o.policies_dir = rules;
    ck_assert_int_eq(vigil_hub_reload_policies(hub, &o, NULL), VIGIL_OK);
    ck_assert_msg(logged(&lc, "info policies reloaded added=1 changed=0 removed=0 kept=0"), "%s",
                  lc.text);
    vt_write_file(rules, "b.yaml", broken, strlen(broken));
    ck_assert_int_eq(vigil_hub_reload_policies(hub, &o, NULL), VIGIL_EVALUE);
    ck_assert_msg(logged(&lc, "error policy reload failed; previous policies kept code=-"), "%s",
                  lc.text);
    ck_assert_msg(logged(&lc, "b.yaml:2:47: policies[0].op: unknown op"), "%s", lc.text);
    vigil_hub_free(hub);
    pthread_mutex_destroy(&lc.mu);
}
END_TEST

START_TEST(restart_keys_name_what_a_reload_cannot_apply)
{
    const char *a = "listen: 127.0.0.1:0\nstore: sqlite://./x.db\npolicies: []\n"
                    "retention: 1d\n";
    const char *b = "store: sqlite://./x.db\nlisten: 127.0.0.1:1\npolicies_dir: \"\"\n"
                    "events: {interval: 2s}\n";
    vigil_hub_config *ca = NULL, *cb = NULL;
    ck_assert_int_eq(vigil_hub_config_load_string(&ca, a, strlen(a), "a.yaml", NULL), VIGIL_OK);
    ck_assert_int_eq(vigil_hub_config_load_string(&cb, b, strlen(b), "b.yaml", NULL), VIGIL_OK);
    vigil_buf out = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil_hub_config_restart_keys(ca, cb, &out), VIGIL_OK);
    ck_assert_str_eq(out.ptr, "listen,retention,events");
    ck_assert_int_eq(vigil_hub_config_restart_keys(ca, ca, &out), VIGIL_OK);
    ck_assert_str_eq(out.ptr, "");
    ck_assert_uint_eq(out.size, 0);
    ck_assert_int_eq(vigil_hub_config_restart_keys(ca, NULL, &out), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "restart keys: NULL argument");
    vigil_buf_dispose(&out);
    vigil_hub_config_free(ca);
    vigil_hub_config_free(cb);
}
END_TEST

/* ---- collector.yaml ------------------------------------------------------------------- */

static void cfg_fails(const char *text, int code, const char *msg)
{
    vigil_hub_config *c = NULL;
    int rc = vigil_hub_config_load_string(&c, text, strlen(text), "c.yaml", NULL);
    ck_assert_msg(rc == code, "code %d, expected %d, for: %s (%s)", rc, code, text,
                  vigil_error_last()->message);
    vt_assert_error(code, msg);
    ck_assert_ptr_null(c);
}

START_TEST(collector_yaml_remediator_keys)
{
    setenv("VT_HP_SECRET", SECRET, 1);
    const char *text = "remediator: {url: 'http://127.0.0.1:9/', secret_env: VT_HP_SECRET,"
                       " timeout: 2s, retries: 0, backoff: 10ms, backoff_max: 1s, workers: 3,"
                       " queue: 8}\n"
                       "policy_interval: 250ms\nact_within: 1m\n";
    vigil_hub_config *c = NULL;
    ck_assert_msg(vigil_hub_config_load_string(&c, text, strlen(text), "c.yaml", NULL) == VIGIL_OK,
                  "%s", vigil_error_last()->message);
    const vigil_hub_options *o = vigil_hub_config_hub(c);
    ck_assert_str_eq(o->remediator_url, "http://127.0.0.1:9/");
    ck_assert_int_eq(o->remediator_timeout_ms, 2000);
    ck_assert_uint_eq(o->remediator_attempts, 1);
    ck_assert_int_eq(o->remediator_backoff_ms, 10);
    ck_assert_int_eq(o->remediator_backoff_max_ms, 1000);
    ck_assert_uint_eq(o->remediator_workers, 3);
    ck_assert_uint_eq(o->remediator_queue_max, 8);
    ck_assert_int_eq(o->policy_interval_ms, 250);
    ck_assert_int_eq(o->act_within_ms, 60000);
    ck_assert_ptr_null(o->policies);
    /* the options make a hub that dispatches there */
    vigil_hub_options ho = *o;
    ho.store_url = db_url();
    ho.logger.min_level = VIGIL_LOG_OFF;
    vigil_hub *hub = NULL;
    ck_assert_int_eq(vigil_hub_new(&hub, &ho), VIGIL_OK);
    vigil_hub_free(hub);
    vigil_hub_config_free(c);
    /* retries left out: the documented default, 4 deliveries after the first */
    const char *dflt = "remediator: {url: 'http://127.0.0.1:9/', secret_env: VT_HP_SECRET}\n";
    c = NULL;
    ck_assert_msg(vigil_hub_config_load_string(&c, dflt, strlen(dflt), "d.yaml", NULL) == VIGIL_OK,
                  "%s", vigil_error_last()->message);
    ck_assert_uint_eq(vigil_hub_config_hub(c)->remediator_attempts, 5);
    vigil_hub_config_free(c);

    cfg_fails("remediator: {secret_env: VT_HP_SECRET}\n", VIGIL_EMISSING,
              "c.yaml:1:13: remediator: missing required key \"url\"");
    cfg_fails("remediator: {url: 'ftp://h/x', secret_env: VT_HP_SECRET}\n", VIGIL_EVALUE,
              "remediator.url: expected an http:// or https:// URL");
    cfg_fails("remediator: {url: 'http://h', secret_env: VT_HP_SECRET, retries: 101}\n",
              VIGIL_ERANGE, "remediator.retries: expected an integer from 0 to 100");
    cfg_fails("remediator: {url: 'http://h', secret_env: VT_HP_SECRET, workers: 0}\n", VIGIL_ERANGE,
              "remediator.workers: expected an integer from 1 to 64");
    cfg_fails("remediator: {url: 'http://h', secret_env: VT_HP_SECRET, timeout: 0s}\n",
              VIGIL_ERANGE, "remediator.timeout: expected a duration above 0");
    cfg_fails("remediator: {url: 'http://h', secret_env: VT_HP_SECRET, backoff: soon}\n",
              VIGIL_EVALUE, "remediator.backoff");
    cfg_fails("remediator: {url: 'http://h', secret_env: VT_HP_SECRET, inprocess: true}\n",
              VIGIL_EVALUE, "remediator.url: not with inprocess: true");
    cfg_fails("remediator: {url: 'http://h', secret_env: VT_HP_UNSET_SECRET}\n", VIGIL_EENV,
              "c.yaml:1:43: remediator.secret_env: environment variable \"VT_HP_UNSET_SECRET\"");
    cfg_fails("policy_interval: 0s\n", VIGIL_ERANGE,
              "policy_interval: expected a duration above 0");
    cfg_fails("policies: {name: x}\n", VIGIL_ETYPE, "policies");
    cfg_fails("silences: [{matchers: {}, ends: 5}]\n", VIGIL_EVALUE,
              "silences[0].matchers: expected at least one matcher");
    cfg_fails("silences: [{matchers: {target: demo}}]\n", VIGIL_EMISSING,
              "missing required key \"ends\"");
    cfg_fails("silences: [{matchers: {target: demo}, starts: 10, ends: 5}]\n", VIGIL_EVALUE,
              "silences[0].ends: must be after starts");
    cfg_fails("silences: [{matchers: {target: demo}, ends: tomorrow}]\n", VIGIL_EVALUE,
              "silences[0].ends: expected epoch milliseconds or an RFC 3339 time");
    cfg_fails("silences: [{matchers: {target: demo}, ends: 5, why: x}]\n", VIGIL_EUNKNOWNKEY,
              "silences[0].why: unknown key");
    /* an in-process remediator.yaml's error, located where collector.yaml names it */
    char rem_yaml[1024], ip_text[1200];
    snprintf(rem_yaml, sizeof(rem_yaml), "%s",
             vt_write_file(vt_tmpdir(), "bad-rem.yaml", "guards: {cooldown: soon}\n", 25));
    snprintf(ip_text, sizeof(ip_text), "remediator: {inprocess: true, config: %s}\n", rem_yaml);
    vigil_hub_config *hc = NULL;
    ck_assert_msg(vigil_hub_config_load_string(&hc, ip_text, strlen(ip_text), "c.yaml", NULL) ==
                      VIGIL_EVALUE,
                  "%s", vigil_error_last()->message);
    char want[2400];
    snprintf(want, sizeof(want),
             "c.yaml:1:39: remediator.config: %s:1:20: guards.cooldown: expected a duration "
             "such as \"10s\", got \"soon\"",
             rem_yaml);
    ck_assert_str_eq(vigil_error_last()->message, want);
    ck_assert_str_eq(vigil_error_last()->file, "c.yaml");
    ck_assert_uint_eq(vigil_error_last()->line, 1);
    ck_assert_uint_eq(vigil_error_last()->column, 39);
    /* a hub given a remediator URL and no secret refuses to start */
    vigil_hub_options bad;
    hub_defaults(&bad);
    bad.remediator_url = "http://127.0.0.1:9";
    ck_assert_int_eq(vigil_hub_new(&hub, &bad), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "secret_env is required");
    bad.remediator_secret_env = "VT_HP_UNSET_SECRET";
    ck_assert_int_eq(vigil_hub_new(&hub, &bad), VIGIL_EENV);
    /* a secret shorter than 32 bytes is refused */
    bad.remediator_secret = "s";
    bad.remediator_secret_len = 1;
    ck_assert_int_eq(vigil_hub_new(&hub, &bad), VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE,
                    "remediator: the signing secret is 1 bytes; at least 32 are required");
    bad.remediator_secret = SECRET;
    bad.remediator_secret_len = strlen(SECRET);
    bad.remediator_url = "gopher://x";
    ck_assert_int_eq(vigil_hub_new(&hub, &bad), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "scheme \"gopher\" is not allowed");
}
END_TEST

/* ---- out of memory ------------------------------------------------------------------- */

static int op_cfg(void *ctx)
{
    vigil_hub_config **out = ctx;
    setenv("VT_HP_SECRET", SECRET, 1);
    const char *text = "remediator: {url: 'http://127.0.0.1:9', secret_env: VT_HP_SECRET,"
                       " retries: 2, workers: 1}\npolicy_interval: 2s\n";
    return vigil_hub_config_load_string(out, text, strlen(text), "oom.yaml", NULL);
}

static void cleanup_cfg(void *ctx)
{
    vigil_hub_config **out = ctx;
    vigil_hub_config_free(*out);
    *out = NULL;
}

static int op_result(void *ctx)
{
    vigil_action_result *r = ctx;
    int64_t seq = 0;
    char mac[VIGIL__AUDIT_MAC_HEX];
    const char *body = "{\"id\":\"a-1\",\"status\":\"failed\",\"reason\":\"exit_code\","
                       "\"output\":\"boom\",\"duration_ms\":3,\"audit\":{\"seq\":4,"
                       "\"mac\":\"" MAC_A "\"}}";
    return vigil__hub_result_parse(body, strlen(body), 1, r, &seq, mac);
}

static void cleanup_result(void *ctx)
{
    vigil_action_result_clear(ctx);
}

START_TEST(oom_sweeps)
{
    vigil_hub_config *cfg = NULL;
    ck_assert_int_gt(vt_oom_sweep(op_cfg, cleanup_cfg, &cfg, 0), 5);
    vigil_action_result r = VIGIL_ACTION_RESULT_INIT;
    ck_assert_int_gt(vt_oom_sweep(op_result, cleanup_result, &r, 0), 3);
}
END_TEST

/* ---- suite ------------------------------------------------------------------------------- */

static Suite *hub_policy_suite(void)
{
    Suite *s = suite_create("hub_policy");
    TCase *tc = tcase_create("results");
    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, db_url_reset, NULL);
    tcase_add_test(tc, no_remediator_fails_requests);
    tcase_add_test(tc, result_route_bad_inputs);
    tcase_add_test(tc, request_fields_escaped_in_logs);
    tcase_add_test(tc, series_cap_leaves_decision_and_metric);
    tcase_add_test(tc, result_function_codes);
    tcase_add_test(tc, manual_request_route_bad_inputs);
    tcase_add_test(tc, collector_yaml_remediator_keys);
    tcase_add_test(tc, oom_sweeps);
    suite_add_tcase(s, tc);
    tc = tcase_create("policies");
    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, db_url_reset, NULL);
    tcase_add_test(tc, policy_fires_end_to_end_remediated);
    tcase_add_test(tc, silences_routes_and_effect);
    tcase_add_test(tc, desired_routes);
    tcase_add_test(tc, engine_for_embedders);
    tcase_add_test(tc, embedder_types_reach_the_hub);
    tcase_add_test(tc, collector_yaml_names_embedder_types);
    tcase_add_test(tc, warns_only_without_any_dispatcher);
    tcase_add_test(tc, collector_yaml_policies_and_dir);
    tcase_add_test(tc, reload_policies_keeps_state_and_refuses_bad_sets);
    tcase_add_test(tc, restart_keys_name_what_a_reload_cannot_apply);
    suite_add_tcase(s, tc);
    tc = tcase_create("restart");
    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, db_url_reset, NULL);
    tcase_add_test(tc, restart_expires_pending_past_act_within);
    tcase_add_test(tc, restart_redelivers_pending_with_its_id);
    tcase_add_test(tc, restart_settles_what_the_engine_awaits);
    tcase_add_test(tc, restart_gives_the_engine_a_recorded_result);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(hub_policy_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
