/* hub: the GitOps routes in-process (PUT /v1/desired bulk form, POST and GET
 * /v1/drift, PUT /v1/policies), the built-in drift rule with a recording
 * dispatcher and an injected clock, and what survives a restart. Real SQLite
 * files in temporary directories throughout. The loop over real HTTP with a
 * remediator and restore_file is tests/integration/test_gitops_heal.c. */
#include <cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hub_testutil.h"
#include "testutil.h"

#define REV1 "0123456789abcdef0123456789abcdef01234567"
#define REV2 "89abcdef0123456789abcdef0123456789abcdef"
#define SHA1 "1111111111111111111111111111111111111111111111111111111111111111"
#define SHA2 "2222222222222222222222222222222222222222222222222222222222222222"

static int64_t g_now;

static int64_t test_clock(void *p)
{
    (void)p;
    return __atomic_load_n(&g_now, __ATOMIC_SEQ_CST);
}

static vigil_hub *hub_clocked(const vigil_action_dispatcher *d)
{
    vigil_hub_options o;
    hub_defaults(&o);
    o.clock = test_clock;
    vigil_hub *hub = NULL;
    ck_assert_msg(vigil_hub_new(&hub, &o) == VIGIL_OK, "%s", vigil_error_last()->message);
    if (d)
        ck_assert_int_eq(vigil_hub_set_dispatcher(hub, d), VIGIL_OK);
    ck_assert_int_eq(vigil_hub_start(hub), VIGIL_OK);
    return hub;
}

static void setup(void)
{
    db_url_reset();
    g_now = 1700000000000LL;
}

/* ---- a recording dispatcher ---------------------------------------------------------- */

typedef struct recorder {
    pthread_mutex_t mu;
    size_t n;
    char ids[16][128];
    char actions[16][64];
    char targets[16][128];
    char params[16][512];
    vigil_action_done_cb done[16];
    void *payload[16];
} recorder;

static int rec_submit(void *self, const vigil_action_request *req, vigil_action_done_cb done,
                      void *payload)
{
    recorder *r = self;
    pthread_mutex_lock(&r->mu);
    size_t i = r->n++;
    snprintf(r->ids[i], sizeof(r->ids[i]), "%s", req->id);
    snprintf(r->actions[i], sizeof(r->actions[i]), "%s", req->action);
    snprintf(r->targets[i], sizeof(r->targets[i]), "%s", req->target);
    r->params[i][0] = '\0';
    for (size_t k = 0; k < req->nparams; k++) {
        size_t used = strlen(r->params[i]);
        snprintf(r->params[i] + used, sizeof(r->params[i]) - used, "%s=%s;", req->params[k].key,
                 req->params[k].value);
    }
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

static void rec_done(recorder *r, size_t i, vigil_action_status status)
{
    vigil_action_result res = VIGIL_ACTION_RESULT_INIT;
    res.status = status;
    ck_assert_int_eq(vigil_action_result_set_id(&res, r->ids[i]), VIGIL_OK);
    r->done[i](&res, r->payload[i]);
    vigil_action_result_clear(&res);
}

/* ---- bodies ------------------------------------------------------------------------------- */

static const char *resource(char *buf, size_t size, const char *source, const char *name,
                            const char *path)
{
    snprintf(buf, size,
             "{\"target\":\"%s/File/%s\",\"kind\":\"File\",\"name\":\"%s\",\"labels\":"
             "{\"tier\":\"web\"},\"selfHeal\":true,\"spec\":{\"path\":\"%s\",\"sha256\":\"" SHA1
             "\"}}",
             source, name, name, path);
    return buf;
}

/* A drift item of File `name`: status, and a heal when heal != 0. */
static const char *item(char *buf, size_t size, const char *name, const char *status, int heal)
{
    char h[512] = "";
    if (heal)
        snprintf(h, sizeof(h),
                 ",\"heal\":{\"action\":\"restore_file\",\"target\":\"web-01/File/%s\","
                 "\"params\":{\"path\":\"/etc/%s\",\"sha256\":\"" SHA1 "\",\"mode\":\"0644\"}}",
                 name, name);
    snprintf(buf, size,
             "{\"target\":\"web-01/File/%s\",\"kind\":\"File\",\"name\":\"%s\",\"status\":\"%s\","
             "\"selfHeal\":%s,\"diff\":[%s]%s}",
             name, name, status, heal ? "true" : "false",
             strcmp(status, "in_sync") == 0 ? ""
                                            : "{\"field\":\"sha256\",\"desired\":\"" SHA1
                                              "\",\"observed\":\"" SHA2 "\"}",
             h);
    return buf;
}

static void post_drift(vigil_api *api, const char *items, const char *want)
{
    char body[8192], out[2048];
    snprintf(body, sizeof(body),
             "{\"source\":\"web-01\",\"revision\":\"" REV1 "\",\"observed\":1700000000000,"
             "\"items\":[%s]}",
             items);
    int st = call(api, "POST", "/v1/drift", NULL, AUTH_W, body, out, sizeof(out));
    ck_assert_msg(st == 200, "status %d: %s", st, out);
    ck_assert_str_eq(out, want);
}

/* ---- desired ------------------------------------------------------------------------------ */

START_TEST(desired_bulk_replaces_and_prunes)
{
    vigil_hub *hub = hub_clocked(NULL);
    vigil_api *api = mount(hub);
    char a[512], b[512], c[512], body[4096], out[16384];
    ck_assert_int_eq(call(api, "PUT", "/v1/desired", NULL, AUTH_W,
                          "{\"target\":\"api\",\"desired\":{\"replicas\":3}}", out, sizeof(out)),
                     200);
    snprintf(body, sizeof(body),
             "{\"source\":\"web-01\",\"revision\":\"" REV1 "\",\"resources\":[%s,%s,%s]}",
             resource(a, sizeof(a), "web-01", "motd", "/etc/motd"),
             resource(b, sizeof(b), "web-01", "hosts", "/etc/hosts"),
             resource(c, sizeof(c), "web-01", "issue", "/etc/issue"));
    ck_assert_int_eq(call(api, "PUT", "/v1/desired", NULL, AUTH_W, body, out, sizeof(out)), 200);
    ck_assert_str_eq(out, "{\"source\":\"web-01\",\"revision\":\"" REV1
                          "\",\"resources\":3,\"removed\":0}");
    snprintf(body, sizeof(body),
             "{\"source\":\"web-02\",\"revision\":\"" REV1 "\",\"resources\":[%s]}",
             resource(a, sizeof(a), "web-02", "motd", "/etc/motd"));
    ck_assert_int_eq(call(api, "PUT", "/v1/desired", NULL, AUTH_W, body, out, sizeof(out)), 200);

    ck_assert_int_eq(
        call(api, "GET", "/v1/desired", "target=web-01/File/motd", AUTH_R, NULL, out, sizeof(out)),
        200);
    ck_assert_str_eq(out, "{\"target\":\"web-01/File/motd\",\"desired\":{\"path\":"
                          "\"/etc/motd\",\"sha256\":\"" SHA1 "\"},\"updated\":1700000000000,"
                          "\"source\":\"web-01\",\"revision\":\"" REV1 "\",\"kind\":\"File\","
                          "\"name\":\"motd\",\"labels\":{\"tier\":\"web\"},\"selfHeal\":true}");
    ck_assert_int_eq(call(api, "GET", "/v1/desired", NULL, AUTH_R, NULL, out, sizeof(out)), 200);
    cJSON *j = cJSON_Parse(out);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "desired")), 5);
    cJSON_Delete(j);
    ck_assert_int_eq(
        call(api, "GET", "/v1/desired", "source=web-02", AUTH_R, NULL, out, sizeof(out)), 200);
    j = cJSON_Parse(out);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "desired")), 1);
    cJSON_Delete(j);

    /* a new publication without "issue": pruned from the store and the engine */
    g_now += 1000;
    snprintf(body, sizeof(body),
             "{\"source\":\"web-01\",\"revision\":\"" REV2 "\",\"resources\":[%s,%s]}",
             resource(a, sizeof(a), "web-01", "motd", "/etc/motd"),
             resource(b, sizeof(b), "web-01", "hosts", "/etc/hosts"));
    ck_assert_int_eq(call(api, "PUT", "/v1/desired", NULL, AUTH_W, body, out, sizeof(out)), 200);
    ck_assert_str_eq(out, "{\"source\":\"web-01\",\"revision\":\"" REV2
                          "\",\"resources\":2,\"removed\":1}");
    ck_assert_int_eq(
        call(api, "GET", "/v1/desired", "target=web-01/File/issue", AUTH_R, NULL, out, sizeof(out)),
        404);
    ck_assert_int_eq(call(api, "GET", "/v1/desired", NULL, AUTH_R, NULL, out, sizeof(out)), 200);
    j = cJSON_Parse(out);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "desired")), 4);
    cJSON_Delete(j);
    ck_assert_msg(strstr(out, "\"revision\":\"" REV2 "\"") != NULL, "%s", out);
    vigil_engine *e = vigil_hub_engine(hub);
    ck_assert_int_eq(vigil_engine_set_desired(e, "web-01/File/issue", NULL), VIGIL_ENOTFOUND);
    vigil_api_free(api);
    vigil_hub_free(hub);

    /* restarted: the records of every source are the engine's desired state again */
    hub = hub_clocked(NULL);
    e = vigil_hub_engine(hub);
    ck_assert_int_eq(vigil_engine_set_desired(e, "web-01/File/motd", NULL), VIGIL_OK);
    ck_assert_int_eq(vigil_engine_set_desired(e, "web-02/File/motd", NULL), VIGIL_OK);
    ck_assert_int_eq(vigil_engine_set_desired(e, "api", NULL), VIGIL_OK);
    ck_assert_int_eq(vigil_engine_set_desired(e, "web-01/File/issue", NULL), VIGIL_ENOTFOUND);
    /* an empty publication clears a source */
    api = mount(hub);
    ck_assert_int_eq(call(api, "PUT", "/v1/desired", NULL, AUTH_W,
                          "{\"source\":\"web-01\",\"revision\":\"" REV2 "\",\"resources\":[]}", out,
                          sizeof(out)),
                     200);
    ck_assert_str_eq(out, "{\"source\":\"web-01\",\"revision\":\"" REV2
                          "\",\"resources\":0,\"removed\":2}");
    vigil_api_free(api);
    vigil_hub_free(hub);
}
END_TEST

START_TEST(bad_bodies_name_their_path)
{
    vigil_hub *hub = hub_clocked(NULL);
    vigil_api *api = mount(hub);
    const char *D = "/v1/desired";
#define RES_HEAD "{\"source\":\"web-01\",\"revision\":\"" REV1 "\",\"resources\":["
#define FILE_OK  "{\"target\":\"web-01/File/a\",\"kind\":\"File\",\"name\":\"a\",\"spec\":{}}"
    expect_error(api, "PUT", D, AUTH_W, "{\"source\":\"web-01\",\"resources\":[]}", 400,
                 "invalid_request", "revision", "revision: required");
    expect_error(api, "PUT", D, AUTH_W, "{\"source\":\"api\",\"revision\":\"r\",\"resources\":[]}",
                 400, "invalid_request", "source", "reserved");
    expect_error(api, "PUT", D, AUTH_W, "{\"source\":\"a b\",\"revision\":\"r\",\"resources\":[]}",
                 400, "invalid_request", "source", "spaces are not allowed");
    expect_error(api, "PUT", D, AUTH_W, "{\"source\":\"w\",\"revision\":\"r\",\"resources\":{}}",
                 400, "invalid_request", "resources", "expected an array");
    expect_error(api, "PUT", D, AUTH_W,
                 "{\"source\":\"w\",\"revision\":\"r\",\"resources\":[],\"x\":1}", 400,
                 "invalid_request", "x", "x: unknown key");
    expect_error(api, "PUT", D, AUTH_W, RES_HEAD FILE_OK ",3]}", 400, "invalid_request",
                 "resources[1]", "expected an object");
    expect_error(api, "PUT", D, AUTH_W,
                 RES_HEAD "{\"target\":\"web-02/File/a\",\"kind\":\"File\",\"name\":\"a\","
                          "\"spec\":{}}]}",
                 400, "invalid_request", "resources[0].target",
                 "expected \\\"web-01/File/a\\\" (<source>/<kind>/<name>)");
    expect_error(api, "PUT", D, AUTH_W,
                 RES_HEAD FILE_OK ",{\"target\":\"web-01/file/b\",\"kind\":\"file\",\"name\":"
                                  "\"b\",\"spec\":{}}]}",
                 400, "invalid_request", "resources[1].kind", "expected a kind such as");
    expect_error(api, "PUT", D, AUTH_W,
                 RES_HEAD "{\"target\":\"web-01/File/a\",\"kind\":\"File\",\"name\":\"a\"}]}", 400,
                 "invalid_request", "resources[0].spec", "required");
    expect_error(api, "PUT", D, AUTH_W,
                 RES_HEAD "{\"target\":\"web-01/File/a\",\"kind\":\"File\",\"name\":\"a\","
                          "\"spec\":{},\"selfHeal\":\"yes\"}]}",
                 400, "invalid_request", "resources[0].selfHeal", "expected true or false");
    expect_error(api, "PUT", D, AUTH_W,
                 RES_HEAD "{\"target\":\"web-01/File/a\",\"kind\":\"File\",\"name\":\"a\","
                          "\"spec\":{},\"labels\":{\"t\":1}}]}",
                 400, "invalid_request", "resources[0].labels.t", "expected a string");
    expect_error(api, "PUT", D, AUTH_W,
                 RES_HEAD "{\"target\":\"web-01/File/a\",\"kind\":\"File\",\"name\":\"a\","
                          "\"spec\":{},\"extra\":1}]}",
                 400, "invalid_request", "resources[0].extra", "unknown key");
    expect_error(api, "PUT", D, AUTH_W, RES_HEAD FILE_OK "," FILE_OK "]}", 400, "invalid_request",
                 "resources[1].target", "appears twice");
    expect_error(api, "PUT", D, AUTH_R, RES_HEAD "]}", 403, "forbidden", "", "");
    expect_error(api, "PUT", D, NULL, RES_HEAD "]}", 401, "unauthorized", "", "");
    /* over 20,000 resources */
    {
        size_t n = 20001, cap = n * 4 + 256;
        char *big = malloc(cap);
        size_t used = (size_t)snprintf(big, cap, "%s", RES_HEAD);
        for (size_t i = 0; i < n; i++)
            used += (size_t)snprintf(big + used, cap - used, "%s{}", i ? "," : "");
        snprintf(big + used, cap - used, "]}");
        expect_error(api, "PUT", D, AUTH_W, big, 400, "invalid_request", "resources",
                     "more than 20000 entries");
        free(big);
    }
    /* nothing was stored */
    char out[512];
    ck_assert_int_eq(call(api, "GET", D, NULL, AUTH_R, NULL, out, sizeof(out)), 200);
    ck_assert_str_eq(out, "{\"desired\":[]}");

    const char *R = "/v1/drift";
#define DRIFT_HEAD "{\"source\":\"web-01\",\"revision\":\"" REV1 "\",\"items\":["
#define ITEM_PRE   "{\"target\":\"web-01/File/a\",\"kind\":\"File\",\"name\":\"a\","
    expect_error(api, "POST", R, AUTH_W, DRIFT_HEAD ITEM_PRE "\"status\":\"odd\"}]}", 400,
                 "invalid_request", "items[0].status",
                 "expected in_sync, drifted, missing or error");
    expect_error(api, "POST", R, AUTH_W,
                 DRIFT_HEAD ITEM_PRE "\"status\":\"drifted\","
                                     "\"error\":\"x\"}]}",
                 400, "invalid_request", "items[0].error", "only with status");
    expect_error(api, "POST", R, AUTH_W,
                 DRIFT_HEAD ITEM_PRE "\"status\":\"drifted\",\"diff\":[{\"field\":\"mode\","
                                     "\"desired\":{}}]}]}",
                 400, "invalid_request", "items[0].diff[0].desired",
                 "expected a string, number, boolean or null");
    expect_error(api, "POST", R, AUTH_W,
                 DRIFT_HEAD ITEM_PRE "\"status\":\"drifted\",\"diff\":[{\"desired\":1}]}]}", 400,
                 "invalid_request", "items[0].diff[0].field", "required");
    expect_error(api, "POST", R, AUTH_W,
                 DRIFT_HEAD ITEM_PRE "\"status\":\"drifted\",\"heal\":{\"action\":\"a\","
                                     "\"target\":\"t\"}}]}",
                 400, "invalid_request", "items[0].heal", "only with selfHeal true");
    expect_error(api, "POST", R, AUTH_W,
                 DRIFT_HEAD ITEM_PRE "\"status\":\"drifted\",\"selfHeal\":true,\"heal\":{"
                                     "\"target\":\"t\"}}]}",
                 400, "invalid_request", "items[0].heal.action", "required");
    expect_error(api, "POST", R, AUTH_W,
                 DRIFT_HEAD ITEM_PRE "\"status\":\"drifted\",\"selfHeal\":true,\"heal\":{"
                                     "\"action\":\"a\",\"target\":\"t\",\"params\":{\"p\":2}}}]}",
                 400, "invalid_request", "items[0].heal.params.p", "expected a string");
    expect_error(api, "POST", R, AUTH_W,
                 "{\"source\":\"web-01\",\"revision\":\"r\",\"observed\":-5,\"items\":[]}", 400,
                 "invalid_request", "observed", "expected epoch milliseconds");
    expect_error(api, "POST", R, AUTH_W, "{\"source\":\"web-01\",\"revision\":\"r\"}", 400,
                 "invalid_request", "items", "required");
    expect_error(api, "POST", R, AUTH_W, "[1]", 400, "invalid_request", "",
                 "expected a JSON object");
    expect_error(api, "POST", R, AUTH_W, "{\"source\":", 400, "invalid_json", "source",
                 "unexpected end of input");
    expect_error(api, "POST", R, AUTH_R, DRIFT_HEAD "]}", 403, "forbidden", "", "");
    expect_error(api, "GET", R, NULL, NULL, 401, "unauthorized", "", "");
    char path[64];
    snprintf(path, sizeof(path), "%s", R);
    ck_assert_int_eq(call(api, "GET", path, "status=bad", AUTH_R, NULL, out, sizeof(out)), 400);
    ck_assert_msg(strstr(out, "\"path\":\"status\"") != NULL, "%s", out);

    const char *P = "/v1/policies";
    expect_error(api, "PUT", P, AUTH_W,
                 "{\"source\":\"web-01\",\"revision\":\"r\",\"policies\":[{\"name\":\"a\"},2]}",
                 400, "invalid_request", "policies[1]", "expected an object");
    expect_error(api, "PUT", P, AUTH_W, "{\"source\":\"web-01\",\"revision\":\"r\"}", 400,
                 "invalid_request", "policies", "required");
    expect_error(api, "PUT", P, AUTH_R,
                 "{\"source\":\"web-01\",\"revision\":\"r\",\"policies\":[]}", 403, "forbidden", "",
                 "");
    vigil_api_free(api);
    vigil_hub_free(hub);
}
END_TEST

/* ---- drift ------------------------------------------------------------------------------- */

START_TEST(drift_replaces_per_source_and_filters)
{
    vigil_hub *hub = hub_clocked(NULL);
    vigil_api *api = mount(hub);
    char a[1024], b[1024], c[1024], items[4096], out[16384];
    snprintf(items, sizeof(items), "%s,%s,%s", item(a, sizeof(a), "motd", "drifted", 0),
             item(b, sizeof(b), "hosts", "in_sync", 0), item(c, sizeof(c), "issue", "missing", 0));
    post_drift(api, items, "{\"items\":3,\"drifted\":2,\"requested\":0}");
    char body[2048];
    snprintf(body, sizeof(body),
             "{\"source\":\"web-02\",\"revision\":\"" REV2 "\",\"items\":[{\"target\":\"web-02/"
             "Sysctl/somaxconn\",\"kind\":\"Sysctl\",\"name\":\"somaxconn\",\"status\":\"error\","
             "\"error\":\"cannot read /proc/sys/net/core/somaxconn\"}]}");
    ck_assert_int_eq(call(api, "POST", "/v1/drift", NULL, AUTH_W, body, out, sizeof(out)), 200);
    ck_assert_str_eq(out, "{\"items\":1,\"drifted\":0,\"requested\":0}");

    ck_assert_int_eq(call(api, "GET", "/v1/drift", NULL, AUTH_R, NULL, out, sizeof(out)), 200);
    cJSON *j = cJSON_Parse(out);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "count")->valueint, 4);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "drifted")->valueint, 2);
    cJSON_Delete(j);
    ck_assert_int_eq(call(api, "GET", "/v1/drift", "source=web-01&status=drifted", AUTH_R, NULL,
                          out, sizeof(out)),
                     200);
    ck_assert_str_eq(out, "{\"drift\":[{\"target\":\"web-01/File/motd\",\"kind\":\"File\","
                          "\"name\":\"motd\",\"source\":\"web-01\",\"revision\":\"" REV1 "\","
                          "\"status\":\"drifted\",\"selfHeal\":false,\"diff\":[{\"field\":"
                          "\"sha256\",\"desired\":\"" SHA1 "\",\"observed\":\"" SHA2 "\"}],"
                          "\"updated\":1700000000000}],\"count\":1,\"drifted\":1}");
    ck_assert_int_eq(call(api, "GET", "/v1/drift", "status=error", AUTH_R, NULL, out, sizeof(out)),
                     200);
    ck_assert_msg(strstr(out, "\"error\":\"cannot read /proc/sys/net/core/somaxconn\"") &&
                      strstr(out, "\"count\":1"),
                  "%s", out);

    /* a new report of web-01 replaces its records, web-02's stay */
    post_drift(api, item(a, sizeof(a), "motd", "in_sync", 0),
               "{\"items\":1,\"drifted\":0,\"requested\":0}");
    ck_assert_int_eq(call(api, "GET", "/v1/drift", NULL, AUTH_R, NULL, out, sizeof(out)), 200);
    j = cJSON_Parse(out);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "count")->valueint, 2);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "drifted")->valueint, 0);
    cJSON_Delete(j);
    ck_assert_int_eq(call(api, "GET", "/v1/drift", "source=web-01", AUTH_R, NULL, out, sizeof(out)),
                     200);
    ck_assert_msg(strstr(out, "\"status\":\"in_sync\"") && strstr(out, "\"count\":1"), "%s", out);
    vigil_api_free(api);
    vigil_hub_free(hub);
}
END_TEST

/* The latest decision named `decision` with series drift/<target>, as JSON text. */
static int find_decision(vigil_api *api, const char *decision, const char *series, char *out,
                         size_t size)
{
    char all[65536];
    ck_assert_int_eq(call(api, "GET", "/v1/decisions", NULL, AUTH_R, NULL, all, sizeof(all)), 200);
    cJSON *j = cJSON_Parse(all);
    int found = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, cJSON_GetObjectItem(j, "decisions"))
    {
        if (strcmp(cJSON_GetObjectItem(d, "decision")->valuestring, decision) == 0 &&
            strcmp(cJSON_GetObjectItem(d, "series")->valuestring, series) == 0) {
            char *s = cJSON_PrintUnformatted(d);
            snprintf(out, size, "%s", s);
            cJSON_free(s);
            found++;
        }
    }
    cJSON_Delete(j);
    return found;
}

START_TEST(drift_rule_requests_once_per_target)
{
    recorder rec;
    vigil_action_dispatcher d;
    rec_init(&rec, &d);
    vigil_hub *hub = hub_clocked(&d);
    vigil_api *api = mount(hub);
    treq ev = {.path = "/v1/events", .headers = {AUTH_R}};
    vigil_api_response *events = run(api, &ev);
    ck_assert_int_eq(vigil_api_response_status(events), 200);
    char a[1024], b[1024], c[1024], items[4096], dec[4096];
    /* drifted with a heal: asked; without selfHeal: only recorded; error: not asked */
    snprintf(items, sizeof(items), "%s,%s,%s", item(a, sizeof(a), "motd", "drifted", 1),
             item(b, sizeof(b), "hosts", "drifted", 0), item(c, sizeof(c), "issue", "missing", 1));
    post_drift(api, items, "{\"items\":3,\"drifted\":3,\"requested\":2}");
    ck_assert_uint_eq(rec.n, 2);
    ck_assert_str_eq(rec.actions[0], "restore_file");
    ck_assert_str_eq(rec.targets[0], "web-01/File/motd");
    ck_assert_str_eq(rec.params[0], "path=/etc/motd;sha256=" SHA1 ";mode=0644;");
    ck_assert_msg(strncmp(rec.ids[0], "drift-1700000000000-", 20) == 0, "%s", rec.ids[0]);
    ck_assert_str_eq(rec.targets[1], "web-01/File/issue");
    vigil_store_action *act = NULL;
    ck_assert_int_eq(vigil_store_action_get(vigil_hub_store(hub), rec.ids[0], &act), VIGIL_OK);
    ck_assert_str_eq(act->policy, "drift");
    ck_assert_str_eq(act->series, "drift/web-01/File/motd");
    ck_assert_str_eq(act->status, "pending");
    ck_assert_str_eq(act->reason,
                     "drift: sha256 desired " SHA1 " observed " SHA2 " (revision 0123456789ab)");
    vigil_store_action_free(act);
    ck_assert_int_eq(find_decision(api, "fired", "drift/web-01/File/motd", dec, sizeof(dec)), 1);
    char want[1024];
    snprintf(want, sizeof(want),
             "\"policy\":\"drift\",\"series\":\"drift/web-01/File/motd\",\"target\":\"web-01/"
             "File/motd\",\"action\":\"restore_file\",\"action_id\":\"%s\",\"decision\":\"fired\"",
             rec.ids[0]);
    ck_assert_msg(strstr(dec, want) != NULL, "%s lacks %s", dec, want);

    /* in flight: not asked again, even past the cooldown */
    g_now += 60000;
    post_drift(api, item(a, sizeof(a), "motd", "drifted", 1),
               "{\"items\":1,\"drifted\":1,\"requested\":0}");
    ck_assert_uint_eq(rec.n, 2);
    /* finished but inside the cooldown: not asked */
    rec_done(&rec, 0, VIGIL_ACTION_SUCCEEDED);
    g_now += 1000;
    rec_done(&rec, 1, VIGIL_ACTION_FAILED);
    char buf[64];
    ledger_status(hub, rec.ids[0], buf, sizeof(buf));
    ck_assert_str_eq(buf, "succeeded");
    vigil_hub_options o;
    hub_defaults(&o);
    ck_assert_int_eq(o.drift_cooldown_ms, 0); /* the default, 10 s, applies */
    g_now = 1700000000000LL + 9999;
    post_drift(api, item(a, sizeof(a), "motd", "drifted", 1),
               "{\"items\":1,\"drifted\":1,\"requested\":0}");
    /* past the cooldown: asked again */
    g_now = 1700000000000LL + 10000;
    post_drift(api, item(a, sizeof(a), "motd", "drifted", 1),
               "{\"items\":1,\"drifted\":1,\"requested\":1}");
    ck_assert_uint_eq(rec.n, 3);
    ck_assert_int_eq(find_decision(api, "fired", "drift/web-01/File/motd", dec, sizeof(dec)), 2);
    rec_done(&rec, 2, VIGIL_ACTION_SUCCEEDED);

    /* in sync after a request: remediated, once */
    post_drift(api, item(a, sizeof(a), "motd", "in_sync", 1),
               "{\"items\":1,\"drifted\":0,\"requested\":0}");
    ck_assert_int_eq(find_decision(api, "remediated", "drift/web-01/File/motd", dec, sizeof(dec)),
                     1);
    snprintf(want, sizeof(want),
             "\"action\":\"restore_file\",\"action_id\":\"%s\",\"decision\":\"remediated\","
             "\"reason\":\"in sync again at revision 0123456789ab after restore_file\"",
             rec.ids[2]);
    ck_assert_msg(strstr(dec, want) != NULL, "%s lacks %s", dec, want);
    post_drift(api, item(a, sizeof(a), "motd", "in_sync", 1),
               "{\"items\":1,\"drifted\":0,\"requested\":0}");
    ck_assert_int_eq(find_decision(api, "remediated", "drift/web-01/File/motd", dec, sizeof(dec)),
                     1);

    /* events: drift summaries and the decisions */
    char sse[65536];
    size_t got = 0, n = 0;
    while (got < sizeof(sse) - 1 &&
           vigil_api_response_read(events, sse + got, sizeof(sse) - 1 - got, &n) == VIGIL_OK && n)
        got += n;
    sse[got] = '\0';
    ck_assert_msg(strstr(sse, "event: drift\ndata: {\"source\":\"web-01\",\"revision\":\"" REV1
                              "\",\"observed\":1700000000000,\"items\":3,\"drifted\":3,"
                              "\"requested\":2,"),
                  "%s", sse);
    ck_assert_msg(strstr(sse, "event: decision\n") && strstr(sse, "\"decision\":\"remediated\""),
                  "%s", sse);
    vigil_api_response_free(events);
    vigil_api_free(api);
    vigil_hub_free(hub);

    /* a restarted hub remembers the request: still inside the cooldown of the third */
    hub = hub_clocked(&d);
    api = mount(hub);
    g_now = 1700000000000LL + 15000;
    post_drift(api, item(a, sizeof(a), "motd", "drifted", 1),
               "{\"items\":1,\"drifted\":1,\"requested\":0}");
    ck_assert_uint_eq(rec.n, 3);
    vigil_api_free(api);
    vigil_hub_free(hub);
}
END_TEST

START_TEST(drift_without_dispatcher_only_records)
{
    vigil_hub *hub = hub_clocked(NULL);
    vigil_api *api = mount(hub);
    char a[1024], out[4096];
    post_drift(api, item(a, sizeof(a), "motd", "drifted", 1),
               "{\"items\":1,\"drifted\":1,\"requested\":0}");
    ck_assert_int_eq(call(api, "GET", "/v1/actions", NULL, AUTH_R, NULL, out, sizeof(out)), 200);
    ck_assert_str_eq(out, "{\"actions\":[],\"checkpoint\":null}");
    vigil_api_free(api);
    vigil_hub_free(hub);
}
END_TEST

START_TEST(drift_cooldown_from_collector_yaml)
{
    const char *yaml = "store: \"sqlite::memory:\"\ndrift: {cooldown: 45s}\n";
    vigil_hub_config *cfg = NULL;
    ck_assert_int_eq(vigil_hub_config_load_string(&cfg, yaml, strlen(yaml), "collector.yaml", NULL),
                     VIGIL_OK);
    ck_assert_int_eq(vigil_hub_config_hub(cfg)->drift_cooldown_ms, 45000);
    vigil_hub_config_free(cfg);
    const char *bad = "drift: {cooldown: 45s, every: 1s}\n";
    ck_assert_int_eq(vigil_hub_config_load_string(&cfg, bad, strlen(bad), "collector.yaml", NULL),
                     VIGIL_EUNKNOWNKEY);
    vt_assert_error(VIGIL_EUNKNOWNKEY, "collector.yaml:1:24: drift.every: unknown key");
    const char *zero = "drift: {cooldown: 0s}\n";
    ck_assert_int_eq(vigil_hub_config_load_string(&cfg, zero, strlen(zero), "collector.yaml", NULL),
                     VIGIL_ERANGE);
    vt_assert_error(VIGIL_ERANGE, "drift.cooldown: expected a duration above 0");

    /* the configured cooldown applies */
    recorder rec;
    vigil_action_dispatcher d;
    rec_init(&rec, &d);
    vigil_hub_options o;
    hub_defaults(&o);
    o.clock = test_clock;
    o.drift_cooldown_ms = 45000;
    vigil_hub *hub = NULL;
    ck_assert_int_eq(vigil_hub_new(&hub, &o), VIGIL_OK);
    ck_assert_int_eq(vigil_hub_set_dispatcher(hub, &d), VIGIL_OK);
    ck_assert_int_eq(vigil_hub_start(hub), VIGIL_OK);
    vigil_api *api = mount(hub);
    char a[1024];
    post_drift(api, item(a, sizeof(a), "motd", "drifted", 1),
               "{\"items\":1,\"drifted\":1,\"requested\":1}");
    rec_done(&rec, 0, VIGIL_ACTION_SUCCEEDED);
    g_now += 44999;
    post_drift(api, item(a, sizeof(a), "motd", "drifted", 1),
               "{\"items\":1,\"drifted\":1,\"requested\":0}");
    g_now += 1;
    post_drift(api, item(a, sizeof(a), "motd", "drifted", 1),
               "{\"items\":1,\"drifted\":1,\"requested\":1}");
    ck_assert_uint_eq(rec.n, 2);
    rec_done(&rec, 1, VIGIL_ACTION_SUCCEEDED);
    vigil_api_free(api);
    vigil_hub_free(hub);
    o.drift_cooldown_ms = -1;
    ck_assert_int_eq(vigil_hub_new(&hub, &o), VIGIL_EINVAL);
}
END_TEST

/* ---- git-managed policies ------------------------------------------------------------------ */

#define RULE(name, op)                                                                          \
    "{\"name\":\"" name "\",\"kind\":\"threshold\",\"metric\":\"cpu_usage\",\"op\":\"" op "\"," \
    "\"threshold\":0.9,\"action\":\"note\",\"target\":\"x\"}"

static int put_policies(vigil_api *api, const char *source, const char *list, char *out,
                        size_t size)
{
    char body[8192];
    snprintf(body, sizeof(body), "{\"source\":\"%s\",\"revision\":\"" REV1 "\",\"policies\":[%s]}",
             source, list);
    return call(api, "PUT", "/v1/policies", NULL, AUTH_W, body, out, size);
}

static vigil_hub *hub_with_config_rule(vigil_config **cfg_out)
{
    const char *yaml = "policies:\n"
                       "  - {name: from_config, kind: threshold, metric: load1, op: \">\", "
                       "threshold: 4, action: note, target: host}\n";
    vigil_config *cfg = NULL;
    ck_assert_int_eq(vigil_config_load_string(&cfg, yaml, strlen(yaml), "collector.yaml", NULL),
                     VIGIL_OK);
    vigil_hub_options o;
    hub_defaults(&o);
    o.clock = test_clock;
    o.policies = vigil_config_node_get(vigil_config_root(cfg, 0), "policies");
    *cfg_out = cfg;
    return hub_with(&o);
}

static int has_policy(vigil_api *api, const char *name)
{
    char out[16384], want[128];
    ck_assert_int_eq(call(api, "GET", "/v1/policies", NULL, AUTH_R, NULL, out, sizeof(out)), 200);
    snprintf(want, sizeof(want), "\"name\":\"%s\"", name);
    return strstr(out, want) != NULL;
}

START_TEST(policies_swap_all_or_nothing_and_persist)
{
    vigil_config *cfg = NULL;
    vigil_hub *hub = hub_with_config_rule(&cfg);
    vigil_api *api = mount(hub);
    char out[4096];
    ck_assert_int_eq(put_policies(api, "web-01", RULE("git_cpu", ">") "," RULE("git_cpu2", ">="),
                                  out, sizeof(out)),
                     200);
    ck_assert_str_eq(out, "{\"source\":\"web-01\",\"revision\":\"" REV1 "\",\"policies\":2}");
    ck_assert(has_policy(api, "git_cpu") && has_policy(api, "git_cpu2"));
    ck_assert(has_policy(api, "from_config"));

    /* an invalid rule: 400 naming its index and key; the previous rules stay */
    int st = put_policies(api, "web-01", RULE("git_cpu", ">") "," RULE("git_bad", "~"), out,
                          sizeof(out));
    ck_assert_msg(st == 400, "%d %s", st, out);
    ck_assert_msg(strstr(out, "\"code\":\"invalid_request\"") &&
                      strstr(out, "\"path\":\"policies[1].op\"") &&
                      strstr(out, "\"message\":\"policies[1].op: "),
                  "%s", out);
    ck_assert(has_policy(api, "git_cpu2"));
    st = put_policies(api, "web-01", "{\"name\":\"x\",\"kind\":\"threshold\",\"oops\":1}", out,
                      sizeof(out));
    ck_assert_msg(st == 400 && strstr(out, "\"path\":\"policies[0].oops\""), "%d %s", st, out);
    st = put_policies(api, "web-01", RULE("dup", ">") "," RULE("dup", ">"), out, sizeof(out));
    ck_assert_msg(st == 400 && strstr(out, "\"path\":\"policies[1].name\"") &&
                      strstr(out, "appears twice"),
                  "%d %s", st, out);

    /* collisions: with the configuration, with another source */
    st = put_policies(api, "web-02", RULE("from_config", ">"), out, sizeof(out));
    ck_assert_msg(st == 409 && strstr(out, "\"code\":\"conflict\"") &&
                      strstr(out, "is defined by the hub's configuration"),
                  "%d %s", st, out);
    st = put_policies(api, "web-02", RULE("other", ">") "," RULE("git_cpu", ">"), out, sizeof(out));
    ck_assert_msg(st == 409 && strstr(out, "policies[1].name: a policy named \\\"git_cpu\\\" is "
                                           "managed by source \\\"web-01\\\""),
                  "%d %s", st, out);
    ck_assert(!has_policy(api, "other"));
    /* a source keeps its own names */
    ck_assert_int_eq(put_policies(api, "web-01", RULE("git_cpu", ">"), out, sizeof(out)), 200);
    ck_assert(has_policy(api, "git_cpu") && !has_policy(api, "git_cpu2"));
    ck_assert_int_eq(put_policies(api, "web-02", RULE("web2_rule", ">"), out, sizeof(out)), 200);

    /* a reload of the configuration keeps the git-managed rules */
    const char *yaml2 = "policies:\n"
                        "  - {name: from_config2, kind: threshold, metric: load5, op: \">\", "
                        "threshold: 4, action: note, target: host}\n";
    vigil_config *cfg2 = NULL;
    ck_assert_int_eq(vigil_config_load_string(&cfg2, yaml2, strlen(yaml2), "collector.yaml", NULL),
                     VIGIL_OK);
    vigil_hub_options o;
    hub_defaults(&o);
    o.policies = vigil_config_node_get(vigil_config_root(cfg2, 0), "policies");
    ck_assert_int_eq(vigil_hub_reload_policies(hub, &o, NULL), VIGIL_OK);
    ck_assert(has_policy(api, "from_config2") && !has_policy(api, "from_config"));
    ck_assert(has_policy(api, "git_cpu") && has_policy(api, "web2_rule"));
    /* a configuration rule that collides with a git-managed one is refused */
    const char *yaml3 = "policies:\n"
                        "  - {name: git_cpu, kind: threshold, metric: load5, op: \">\", "
                        "threshold: 4, action: note, target: host}\n";
    vigil_config *cfg3 = NULL;
    ck_assert_int_eq(vigil_config_load_string(&cfg3, yaml3, strlen(yaml3), "collector.yaml", NULL),
                     VIGIL_OK);
    o.policies = vigil_config_node_get(vigil_config_root(cfg3, 0), "policies");
    ck_assert_int_eq(vigil_hub_reload_policies(hub, &o, NULL), VIGIL_EEXISTS);
    ck_assert(has_policy(api, "from_config2"));
    /* and the configuration of the last good reload is what PUT swaps with */
    ck_assert_int_eq(put_policies(api, "web-02", RULE("from_config2", ">"), out, sizeof(out)), 409);
    vigil_api_free(api);
    vigil_hub_free(hub);

    /* restarted on the same database: the git-managed rules are back */
    vigil_config_free(cfg3);
    hub = hub_with_config_rule(&cfg3);
    api = mount(hub);
    ck_assert(has_policy(api, "git_cpu") && has_policy(api, "web2_rule"));
    ck_assert(has_policy(api, "from_config"));
    /* an empty list drops a source's rules, also across a restart */
    ck_assert_int_eq(put_policies(api, "web-02", "", out, sizeof(out)), 200);
    ck_assert_str_eq(out, "{\"source\":\"web-02\",\"revision\":\"" REV1 "\",\"policies\":0}");
    ck_assert(!has_policy(api, "web2_rule"));
    vigil_api_free(api);
    vigil_hub_free(hub);
    vigil_config_free(cfg3);
    hub = hub_with_config_rule(&cfg3);
    api = mount(hub);
    ck_assert(has_policy(api, "git_cpu") && !has_policy(api, "web2_rule"));
    vigil_api_free(api);
    vigil_hub_free(hub);
    vigil_config_free(cfg);
    vigil_config_free(cfg2);
    vigil_config_free(cfg3);
}
END_TEST

/* ---- allocation failures ------------------------------------------------------------------ */

typedef struct oom_ctx {
    vigil_api *api;
    recorder *rec;
    const char *method, *path, *body;
} oom_ctx;

/* One call of a route: 200 is VIGIL_OK, 500 VIGIL_ENOMEM; anything else fails the test. */
static int oom_op(void *p)
{
    oom_ctx *c = p;
    g_now += 10;
    vigil_api_response *resp = NULL;
    int rc = vigil_api_response_new(&resp);
    if (rc)
        return rc;
    vigil_http_header h[2] = {{"Authorization", "Bearer " WTOKEN},
                              {"Content-Type", "application/json"}};
    vigil_api_request r = VIGIL_API_REQUEST_INIT;
    r.method = c->method;
    r.path = c->path;
    r.headers = h;
    r.nheaders = 2;
    r.body = c->body;
    r.body_len = strlen(c->body);
    rc = vigil_api_handle(c->api, &r, resp);
    int st = rc ? 0 : vigil_api_response_status(resp);
    if (!rc && st != 200 && st != 500)
        ck_abort_msg("%s %s: status %d: %s", c->method, c->path, st,
                     vigil_api_response_body(resp, NULL));
    vigil_api_response_free(resp);
    if (rc)
        return rc;
    return st == 200 ? VIGIL_OK : VIGIL_ENOMEM;
}

/* Answers every request the drift rule made, so nothing is left in flight. */
static void oom_cleanup(void *p)
{
    oom_ctx *c = p;
    if (!c->rec)
        return;
    for (size_t i = 0; i < c->rec->n; i++)
        rec_done(c->rec, i, VIGIL_ACTION_SUCCEEDED);
    c->rec->n = 0;
}

START_TEST(oom_sweeps)
{
    vt_alloc_install(); /* before the hub: every block it frees must be counted */
    recorder rec;
    vigil_action_dispatcher d;
    rec_init(&rec, &d);
    vigil_hub_options o;
    hub_defaults(&o);
    o.clock = test_clock;
    o.drift_cooldown_ms = 1;
    vigil_hub *hub = NULL;
    ck_assert_int_eq(vigil_hub_new(&hub, &o), VIGIL_OK);
    ck_assert_int_eq(vigil_hub_set_dispatcher(hub, &d), VIGIL_OK);
    ck_assert_int_eq(vigil_hub_start(hub), VIGIL_OK);
    vigil_api *api = mount(hub);
    char a[1024], b[1024], drift[4096], desired[4096], pol[4096];
    snprintf(drift, sizeof(drift),
             "{\"source\":\"web-01\",\"revision\":\"" REV1 "\",\"items\":[%s,%s]}",
             item(a, sizeof(a), "motd", "drifted", 1), item(b, sizeof(b), "hosts", "in_sync", 1));
    snprintf(desired, sizeof(desired),
             "{\"source\":\"web-01\",\"revision\":\"" REV1 "\",\"resources\":[%s]}",
             resource(a, sizeof(a), "web-01", "motd", "/etc/motd"));
    snprintf(pol, sizeof(pol),
             "{\"source\":\"web-01\",\"revision\":\"" REV1
             "\",\"policies\":[" RULE("g1", ">") "]}");
    oom_ctx cases[] = {{api, &rec, "POST", "/v1/drift", drift},
                       {api, NULL, "PUT", "/v1/desired", desired},
                       {api, NULL, "PUT", "/v1/policies", pol}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* once first: what the hub keeps from then on (a target's record, a
         * metric's labels) is not a leak of the next calls */
        ck_assert_int_eq(oom_op(&cases[i]), VIGIL_OK);
        oom_cleanup(&cases[i]);
        /* a warm pass too: the metric series of the 500 answers (kept by the
         * api's registry) are made the first time */
        for (long n = 0;; n++) {
            vt_alloc_fail_at(n, 0);
            int rc = oom_op(&cases[i]);
            vt_alloc_fail_at(-1, 0);
            oom_cleanup(&cases[i]);
            if (rc == VIGIL_OK)
                break;
        }
        ck_assert_int_gt(vt_oom_sweep(oom_op, oom_cleanup, &cases[i], 0), 3);
    }
    vigil_api_free(api);
    vigil_hub_free(hub);
}
END_TEST

static Suite *hub_gitops_suite(void)
{
    Suite *s = suite_create("hub_gitops");
    TCase *tc = tcase_create("routes");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, desired_bulk_replaces_and_prunes);
    tcase_add_test(tc, bad_bodies_name_their_path);
    tcase_add_test(tc, drift_replaces_per_source_and_filters);
    tcase_add_test(tc, drift_rule_requests_once_per_target);
    tcase_add_test(tc, drift_without_dispatcher_only_records);
    tcase_add_test(tc, drift_cooldown_from_collector_yaml);
    tcase_add_test(tc, policies_swap_all_or_nothing_and_persist);
    tcase_add_test(tc, oom_sweeps);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(hub_gitops_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
