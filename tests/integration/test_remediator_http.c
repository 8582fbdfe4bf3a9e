/* The remediator over real HTTP on loopback: signed POST /v1/execute (answered
 * once the action has finished; a redelivery gets the same answer), bad
 * signatures and stale timestamps (401, audited), bad bodies (400 with a
 * path), approvals and release through the admin routes, late results posted
 * to a hub (a second server here), the audit routes; and vigil-remediator as
 * a real process: port 0, address parsed from its log, a signed request,
 * SIGTERM exits 0. */
#include <cJSON.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "httptest.h"
#include "proctest.h"
#include "api/internal.h"
#include "testutil.h"
#include "vigil/remediator.h"

#define SECRET      "http-test-signing-secret-0123456789"
#define AUDIT_KEY   "http-test-audit-key-0123456789abcdef"
#define ADMIN_TOKEN "rem-admin-token-00000000000000"
#define READ_TOKEN  "rem-read-token-111111111111111"
#define HUB_TOKEN   "rem-hub-token-2222222222222222"

/* ---- a fake hub: records POST /v1/actions/{id}/result ----------------------------- */

typedef struct fake_hub {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n;
    char id[256];
    char auth[256];
    char body[8192];
    int fail_first; /* answer 503 to the first post */
    int sig_ok;     /* the last post's X-Vigil-Signature verified with SECRET */
} fake_hub;

static fake_hub g_hub = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, "", "", "", 1, 0};

static void hub_result_route(vigil__api_call *call, void *payload)
{
    fake_hub *h = payload;
    const vigil_api_request *req = vigil__api_call_request(call);
    size_t len = 0;
    const char *body = vigil__api_call_body(call, &len);
    pthread_mutex_lock(&h->mu);
    if (h->fail_first) {
        h->fail_first = 0;
        pthread_mutex_unlock(&h->mu);
        vigil__api_resp_error(vigil__api_call_response(call), 503, "unavailable", "later", NULL);
        vigil__api_finish(call);
        return;
    }
    snprintf(h->id, sizeof(h->id), "%s", vigil__api_call_path_arg(call, 0));
    snprintf(h->body, sizeof(h->body), "%.*s", (int)len, body);
    h->auth[0] = '\0';
    const char *sig = NULL;
    for (size_t i = 0; i < req->nheaders; i++) {
        if (strcasecmp(req->headers[i].name, "Authorization") == 0)
            snprintf(h->auth, sizeof(h->auth), "%s", req->headers[i].value);
        if (strcasecmp(req->headers[i].name, VIGIL_SIGNATURE_HEADER) == 0)
            sig = req->headers[i].value;
    }
    h->sig_ok = vigil_signature_verify(sig, SECRET, strlen(SECRET), req->body, req->body_len,
                                       (int64_t)time(NULL), 0) == VIGIL_OK;
    h->n++;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    vigil__api_resp_json(vigil__api_call_response(call), 200, "{}", 2);
    vigil__api_finish(call);
}

static void hub_wait(int n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 30;
    pthread_mutex_lock(&g_hub.mu);
    while (g_hub.n < n)
        if (pthread_cond_timedwait(&g_hub.cv, &g_hub.mu, &ts))
            break;
    int got = g_hub.n;
    pthread_mutex_unlock(&g_hub.mu);
    ck_assert_int_ge(got, n);
}

/* ---- fixture ------------------------------------------------------------------------ */

typedef struct fixture {
    vigil_remediator *rem;
    vigil_api *api;
    vigil_httpd *httpd;
    vigil_api *hub_api;
    vigil_httpd *hub_httpd;
    char base[64];
    char hub_base[64];
} fixture;

static void fx_start(fixture *f, const char *actions_yaml, int with_hub)
{
    const char *dir = vt_tmpdir();
    memset(f, 0, sizeof(*f));
    vigil_logger quiet = VIGIL_LOGGER_INIT;
    quiet.min_level = VIGIL_LOG_OFF;
    setenv("VIGIL_TEST_REM_ADMIN", ADMIN_TOKEN, 1);
    setenv("VIGIL_TEST_REM_READ", READ_TOKEN, 1);
    setenv("VIGIL_TEST_REM_HUB", HUB_TOKEN, 1);
    if (with_hub) {
        vigil_api_options ho = VIGIL_API_OPTIONS_INIT;
        ho.logger = quiet;
        ck_assert_int_eq(vigil_api_new(&f->hub_api, &ho), VIGIL_OK);
        ck_assert_int_eq(vigil__api_route(f->hub_api, "POST", "/v1/actions/*/result", 0,
                                          VIGIL__API_BODY, hub_result_route, &g_hub),
                         VIGIL_OK);
        vigil_httpd_options hs = VIGIL_HTTPD_OPTIONS_INIT;
        hs.listen = "127.0.0.1:0";
        hs.threads = 2;
        hs.logger = quiet;
        ck_assert_int_eq(vigil_httpd_new(&f->hub_httpd, f->hub_api, &hs), VIGIL_OK);
        ck_assert_int_eq(vigil_httpd_start(f->hub_httpd), VIGIL_OK);
        snprintf(f->hub_base, sizeof(f->hub_base), "http://%s", vigil_httpd_address(f->hub_httpd));
    }
    static char url[600];
    snprintf(url, sizeof(url), "sqlite://%s/rem.db", dir);
    vigil_config *cfg = NULL;
    ck_assert_int_eq(
        vigil_config_load_string(&cfg, actions_yaml, strlen(actions_yaml), "r.yaml", NULL),
        VIGIL_OK);
    vigil_remediator_options o = VIGIL_REMEDIATOR_OPTIONS_INIT;
    o.store_url = url;
    o.audit_key = AUDIT_KEY;
    o.audit_key_len = strlen(AUDIT_KEY);
    setenv("VIGIL_TEST_REM_SECRET", SECRET, 1);
    o.secret_env = "VIGIL_TEST_REM_SECRET";
    o.cooldown_ms = VIGIL_REMEDIATOR_DISABLED;
    o.max_attempts = (unsigned int)VIGIL_REMEDIATOR_DISABLED;
    o.rate_per_s = VIGIL_REMEDIATOR_DISABLED;
    o.base_dir = dir;
    o.actions = vigil_config_node_get(vigil_config_root(cfg, 0), "actions");
    o.logger = quiet;
    if (with_hub) {
        o.hub_url = f->hub_base;
        o.hub_token_env = "VIGIL_TEST_REM_HUB";
        o.hub_backoff_ms = 20;
    }
    int rc = vigil_remediator_new(&f->rem, &o);
    ck_assert_msg(rc == VIGIL_OK, "%s", vigil_error_last()->message);
    vigil_config_free(cfg);
    ck_assert_int_eq(vigil_remediator_start(f->rem), VIGIL_OK);

    vigil_api_token toks[2] = {{"ops", "VIGIL_TEST_REM_ADMIN", NULL, VIGIL_API_SCOPE_ADMIN},
                               {"reader", "VIGIL_TEST_REM_READ", NULL, VIGIL_API_SCOPE_READ}};
    vigil_api_options ao = VIGIL_API_OPTIONS_INIT;
    ao.tokens = toks;
    ao.ntokens = 2;
    ao.logger = quiet;
    ck_assert_int_eq(vigil_api_new(&f->api, &ao), VIGIL_OK);
    ck_assert_int_eq(vigil_remediator_mount(f->rem, f->api), VIGIL_OK);
    ck_assert_int_eq(vigil_remediator_mount(f->rem, f->api), VIGIL_EEXISTS);
    vigil_httpd_options so = VIGIL_HTTPD_OPTIONS_INIT;
    so.listen = "127.0.0.1:0";
    so.threads = 4;
    so.logger = quiet;
    ck_assert_int_eq(vigil_httpd_new(&f->httpd, f->api, &so), VIGIL_OK);
    ck_assert_int_eq(vigil_httpd_start(f->httpd), VIGIL_OK);
    snprintf(f->base, sizeof(f->base), "http://%s", vigil_httpd_address(f->httpd));
}

static void fx_stop(fixture *f)
{
    vigil_httpd_quiesce(f->httpd);
    vigil_remediator_stop(f->rem);
    vigil_httpd_free(f->httpd);
    vigil_api_free(f->api);
    vigil_remediator_free(f->rem);
    vigil_httpd_free(f->hub_httpd);
    vigil_api_free(f->hub_api);
}

/* POST /v1/execute with a signature made with `secret` at `t` (0: now). */
static void post_exec_as(const char *base, const char *body, const char *secret, int64_t t,
                         const char *ctype, const char *encoding, http_result *r)
{
    char url[256], hdr[256];
    vigil_buf sig = VIGIL_BUF_INIT;
    const char *extra[2] = {NULL, NULL};
    if (secret) {
        ck_assert_int_eq(vigil_signature_make(&sig, secret, strlen(secret),
                                              t ? t : (int64_t)time(NULL), body, strlen(body)),
                         VIGIL_OK);
        snprintf(hdr, sizeof(hdr), "%s: %s", VIGIL_SIGNATURE_HEADER, sig.ptr);
        extra[0] = hdr;
    }
    vigil_buf_dispose(&sig);
    snprintf(url, sizeof(url), "%s/v1/execute", base);
    http_opts o;
    memset(&o, 0, sizeof(o));
    o.extra = extra;
    o.ctype = ctype;
    o.encoding = encoding;
    http_do("POST", url, body, strlen(body), &o, r);
}

static void post_exec(const char *base, const char *body, const char *secret, int64_t t,
                      http_result *r)
{
    post_exec_as(base, body, secret, t, NULL, NULL, r);
}

/* The sum of the "failures" counts of the auth rows in an audit listing. */
static int failures_sum(const char *s)
{
    int sum = 0;
    const char *key = "\"failures\":";
    for (const char *p = s; (p = strstr(p, key)); p++)
        sum += atoi(p + strlen(key));
    return sum;
}

static int count_of(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

static void get(const char *base, const char *path, const char *token, http_result *r)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", base, path);
    http_opts o;
    memset(&o, 0, sizeof(o));
    o.token = token;
    http_do("GET", url, NULL, 0, &o, r);
}

/* A body-less POST (approve, deny, release), with the custom header that a
 * cross-site form cannot send. */
static void post(const char *base, const char *path, const char *token, http_result *r)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", base, path);
    const char *extra[] = {"X-Vigil-Request: 1", NULL};
    http_opts o;
    memset(&o, 0, sizeof(o));
    o.token = token;
    o.extra = extra;
    http_do("POST", url, NULL, 0, &o, r);
}

static const char *k_actions = "actions:\n"
                               "  - {name: note, type: log}\n"
                               "  - {name: ask, type: log, approval: {required: true}}\n";

START_TEST(execute_signed_and_redelivered)
{
    fixture f;
    fx_start(&f, k_actions, 0);
    const char *body = "{\"id\":\"h-1\",\"action\":\"note\",\"target\":\"demo\",\"params\":{},"
                       "\"reason\":\"test\",\"policy\":\"p\",\"dry_run\":false}";
    http_result r1, r2;
    post_exec(f.base, body, SECRET, 0, &r1);
    ck_assert_int_eq(r1.status, 200);
    /* the answer is signed with the secret over its body */
    {
        char sv[256] = "";
        const char *h = strcasestr(r1.headers, "\r\nX-Vigil-Signature:");
        ck_assert_ptr_nonnull(h);
        h += 20;
        while (*h == ' ')
            h++;
        snprintf(sv, sizeof(sv), "%.*s", (int)strcspn(h, "\r\n"), h);
        ck_assert_int_eq(vigil_signature_verify(sv, SECRET, strlen(SECRET), r1.body, r1.len,
                                                (int64_t)time(NULL), 0),
                         VIGIL_OK);
    }
    cJSON *j = cJSON_Parse(r1.body);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "id")->valuestring, "h-1");
    ck_assert_str_eq(cJSON_GetObjectItem(j, "status")->valuestring, "succeeded");
    cJSON *audit = cJSON_GetObjectItem(j, "audit");
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(audit, "seq")));
    ck_assert_int_eq((int)strlen(cJSON_GetObjectItem(audit, "mac")->valuestring), 64);
    cJSON_Delete(j);
    post_exec(f.base, body, SECRET, 0, &r2);
    ck_assert_int_eq(r2.status, 200);
    ck_assert_str_eq(r2.body, r1.body);
    http_result_free(&r1);
    http_result_free(&r2);

    /* the executions list */
    get(f.base, "/v1/actions", READ_TOKEN, &r1);
    ck_assert_int_eq(r1.status, 200);
    ck_assert_ptr_nonnull(strstr(r1.body, "\"name\":\"note\""));
    ck_assert_ptr_nonnull(strstr(r1.body, "\"id\":\"h-1\""));
    ck_assert_ptr_nonnull(strstr(r1.body, "\"status\":\"succeeded\""));
    http_result_free(&r1);
    get(f.base, "/v1/actions", NULL, &r1);
    ck_assert_int_eq(r1.status, 401);
    http_result_free(&r1);
    get(f.base, "/v1/actions?limit=0", READ_TOKEN, &r1);
    ck_assert_int_eq(r1.status, 400);
    ck_assert_ptr_nonnull(strstr(r1.body, "limit: expected an integer from 1 to 1000"));
    http_result_free(&r1);

    /* metrics */
    get(f.base, "/metrics", READ_TOKEN, &r1);
    ck_assert_int_eq(r1.status, 200);
    ck_assert_ptr_nonnull(
        strstr(r1.body, "vigil_remediator_results_total{action=\"note\",status=\"succeeded\"} 1"));
    ck_assert_ptr_nonnull(strstr(r1.body, "vigil_remediator_execution_duration_seconds_count"));
    http_result_free(&r1);
    fx_stop(&f);
}
END_TEST

START_TEST(bad_signatures_are_401_and_audited)
{
    fixture f;
    fx_start(&f, k_actions, 0);
    const char *body = "{\"id\":\"s-1\",\"action\":\"note\",\"target\":\"demo\"}";
    http_result r;
    post_exec(f.base, body, "wrong-secret-wrong-secret", 0, &r);
    ck_assert_int_eq(r.status, 401);
    ck_assert_ptr_nonnull(strstr(r.body, "\"code\":\"unauthorized\""));
    ck_assert_ptr_nonnull(strstr(r.body, "signature: mismatch"));
    http_result_free(&r);
    post_exec(f.base, body, NULL, 0, &r);
    ck_assert_int_eq(r.status, 401);
    ck_assert_ptr_nonnull(strstr(r.body, "signature: missing"));
    http_result_free(&r);
    post_exec(f.base, body, SECRET, (int64_t)time(NULL) - 400, &r);
    ck_assert_int_eq(r.status, 401);
    ck_assert_ptr_nonnull(strstr(r.body, "signature: timestamp is"));
    http_result_free(&r);
    /* a gzip body is refused after the signature check, never inflated */
    post_exec_as(f.base, body, SECRET, 0, NULL, "gzip", &r);
    ck_assert_int_eq(r.status, 415);
    ck_assert_ptr_nonnull(strstr(r.body, "Content-Encoding is not accepted on a signed request"));
    http_result_free(&r);
    post_exec_as(f.base, body, "wrong-secret-wrong-secret", 0, NULL, "gzip", &r);
    ck_assert_int_eq(r.status, 401);
    http_result_free(&r);
    /* nothing ran; the refusals are audited in aggregate: the first at once,
     * those within the next second as one row (by the ticker) */
    int64_t deadline = (int64_t)time(NULL) + 15;
    int n = 0, sum = 0;
    for (;;) {
        get(f.base, "/v1/audit?since=0&limit=100", READ_TOKEN, &r);
        ck_assert_int_eq(r.status, 200);
        n = count_of(r.body, "\"kind\":\"auth\"");
        sum = failures_sum(r.body);
        if (sum == 4 || (int64_t)time(NULL) > deadline)
            break;
        http_result_free(&r);
        usleep(20 * 1000); /* polling a condition, with a deadline */
    }
    ck_assert_msg(sum == 4 && n >= 1 && n <= 4, "%s", r.body);
    ck_assert_ptr_nonnull(strstr(r.body, "\"failures\":1}"));
    ck_assert_ptr_nonnull(strstr(r.body, "signature: mismatch"));
    ck_assert_ptr_null(strstr(r.body, "\"kind\":\"request\""));
    http_result_free(&r);
    get(f.base, "/v1/audit?since=soon", READ_TOKEN, &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_ptr_nonnull(strstr(r.body, "since: expected epoch milliseconds"));
    http_result_free(&r);
    get(f.base, "/v1/audit/verify", READ_TOKEN, &r);
    ck_assert_int_eq(r.status, 200);
    char want[64];
    snprintf(want, sizeof(want), "{\"ok\":true,\"entries\":%d}", n);
    ck_assert_str_eq(r.body, want);
    http_result_free(&r);
    fx_stop(&f);
}
END_TEST

/* POST /v1/execute announcing an 8 MiB body with "Expect: 100-continue":
 * a missing, malformed or stale signature header is answered 401 from the
 * headers, never "100 Continue", so no body byte is read; a well-formed,
 * fresh header gets "100 Continue" (the body is then verified). */
static void exec_head_answer(const fixture *f, const char *sig_header, char *buf, size_t size)
{
    const char *colon = strrchr(vigil_httpd_address(f->httpd), ':');
    ck_assert_ptr_nonnull(colon);
    int fd = raw_connect(NULL, atoi(colon + 1));
    ck_assert_int_ge(fd, 0);
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "POST /v1/execute HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Content-Type: application/json\r\nContent-Length: 8388608\r\n"
                     "Expect: 100-continue\r\n%s%s\r\n",
                     sig_header ? sig_header : "", sig_header ? "\r\n" : "");
    raw_send(fd, head, (size_t)n);
    int closed = 0;
    size_t got = 0;
    /* the status line and headers, for at most 50 x 200 ms */
    for (int i = 0; i < 50 && !strstr(buf, "\r\n\r\n"); i++) {
        got += raw_recv(fd, buf + got, size - got, 200, &closed);
        if (closed)
            break;
    }
    close(fd);
}

START_TEST(unsigned_uploads_refused_before_the_body)
{
    fixture f;
    fx_start(&f, k_actions, 0);
    char buf[4096], sig[160];
    buf[0] = '\0';
    exec_head_answer(&f, NULL, buf, sizeof(buf));
    ck_assert_msg(strncmp(buf, "HTTP/1.1 401", 12) == 0, "got %s", buf);
    buf[0] = '\0';
    exec_head_answer(&f, "X-Vigil-Signature: t=12,v1=zz", buf, sizeof(buf));
    ck_assert_msg(strncmp(buf, "HTTP/1.1 401", 12) == 0, "got %s", buf);
    snprintf(sig, sizeof(sig), "X-Vigil-Signature: t=%lld,v1=%064d", (long long)time(NULL) - 400,
             0);
    buf[0] = '\0';
    exec_head_answer(&f, sig, buf, sizeof(buf));
    ck_assert_msg(strncmp(buf, "HTTP/1.1 401", 12) == 0, "got %s", buf);
    snprintf(sig, sizeof(sig), "X-Vigil-Signature: t=%lld,v1=%064d", (long long)time(NULL), 0);
    buf[0] = '\0';
    exec_head_answer(&f, sig, buf, sizeof(buf));
    ck_assert_msg(strncmp(buf, "HTTP/1.1 100", 12) == 0, "got %s", buf);
    fx_stop(&f);
}
END_TEST

/* A flood of bad signatures costs one audit row per second, not one each. */
START_TEST(auth_failures_are_audited_in_aggregate)
{
    fixture f;
    fx_start(&f, k_actions, 0);
    const char *body = "{\"id\":\"s-2\",\"action\":\"note\",\"target\":\"demo\"}";
    int64_t t0 = (int64_t)time(NULL);
    http_result r;
    for (int i = 0; i < 100; i++) {
        post_exec(f.base, body, "wrong-secret-wrong-secret", 0, &r);
        ck_assert_int_eq(r.status, 401);
        http_result_free(&r);
    }
    int64_t elapsed = (int64_t)time(NULL) - t0;
    int64_t deadline = (int64_t)time(NULL) + 15;
    int n = 0, sum = 0;
    for (;;) {
        get(f.base, "/v1/audit?since=0&limit=1000", READ_TOKEN, &r);
        ck_assert_int_eq(r.status, 200);
        n = count_of(r.body, "\"kind\":\"auth\"");
        sum = failures_sum(r.body);
        if (sum == 100 || (int64_t)time(NULL) > deadline)
            break;
        http_result_free(&r);
        usleep(20 * 1000); /* polling a condition, with a deadline */
    }
    ck_assert_msg(sum == 100, "%s", r.body);
    /* one row per started second at most, plus the one flushed after */
    ck_assert_msg(n >= 1 && n <= elapsed + 3, "%d rows in %lld s", n, (long long)elapsed);
    http_result_free(&r);
    fx_stop(&f);
}
END_TEST

static void expect_400(fixture *f, const char *body, const char *code, const char *msg,
                       const char *path)
{
    http_result r;
    post_exec(f->base, body, SECRET, 0, &r);
    ck_assert_msg(r.status == 400, "%s -> %ld %s", body, r.status, r.body);
    char want[256];
    snprintf(want, sizeof(want), "\"code\":\"%s\"", code);
    ck_assert_msg(strstr(r.body, want), "%s lacks %s", r.body, want);
    ck_assert_msg(strstr(r.body, msg), "%s lacks %s", r.body, msg);
    snprintf(want, sizeof(want), "\"path\":\"%s\"", path);
    ck_assert_msg(strstr(r.body, want), "%s lacks %s", r.body, want);
    http_result_free(&r);
}

START_TEST(bad_bodies_are_400_with_a_path)
{
    fixture f;
    fx_start(&f, k_actions, 0);
    expect_400(&f, "{\"id\":", "invalid_json", "id: unexpected end of input", "id");
    expect_400(&f, "[1]", "invalid_request", "top level: expected a JSON object", "");
    expect_400(&f, "{\"action\":\"note\",\"target\":\"x\"}", "invalid_request", "id: required",
               "id");
    expect_400(&f, "{\"id\":\"b\",\"target\":\"x\"}", "invalid_request", "action: required",
               "action");
    expect_400(&f, "{\"id\":\"b\",\"action\":\"note\"}", "invalid_request", "target: required",
               "target");
    expect_400(&f, "{\"id\":7,\"action\":\"note\",\"target\":\"x\"}", "invalid_request",
               "id: expected a string", "id");
    expect_400(&f, "{\"id\":\"b\",\"action\":\"note\",\"target\":\"x\",\"extra\":1}",
               "invalid_request", "extra: unknown key", "extra");
    expect_400(&f, "{\"id\":\"b\",\"action\":\"note\",\"target\":\"x\",\"params\":{\"n\":1}}",
               "invalid_request", "params.n: expected a string", "params.n");
    expect_400(&f, "{\"id\":\"b\",\"action\":\"note\",\"target\":\"x\",\"dry_run\":\"yes\"}",
               "invalid_request", "dry_run: expected true or false", "dry_run");
    expect_400(&f, "{\"id\":\"\",\"action\":\"note\",\"target\":\"x\"}", "invalid_request",
               "id: expected 1 to 128 bytes", "id");
    expect_400(&f, "{\"id\":\"a\\u0000b\",\"action\":\"note\",\"target\":\"x\"}", "invalid_request",
               "", "id");
    /* injection through the target: refused by the allowlist, as a result */
    http_result r;
    post_exec(f.base, "{\"id\":\"inj-1\",\"action\":\"note\",\"target\":\"$(touch /tmp/x); a\"}",
              SECRET, 0, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "\"status\":\"refused\",\"reason\":\"not_allowed\""));
    http_result_free(&r);
    /* wrong content type: checked after the signature */
    post_exec_as(f.base, "{}", SECRET, 0, "text/plain", NULL, &r);
    ck_assert_int_eq(r.status, 415);
    ck_assert_ptr_nonnull(strstr(r.body, "Content-Type must be application/json"));
    http_result_free(&r);
    post_exec_as(f.base, "{}", NULL, 0, "text/plain", NULL, &r);
    ck_assert_int_eq(r.status, 401);
    http_result_free(&r);
    fx_stop(&f);
}
END_TEST

START_TEST(approval_routes_and_late_result_to_hub)
{
    fixture f;
    g_hub.n = 0;
    g_hub.fail_first = 1;
    fx_start(&f, k_actions, 1);
    http_result r;
    post_exec(f.base, "{\"id\":\"ap-h1\",\"action\":\"ask\",\"target\":\"web\"}", SECRET, 0, &r);
    ck_assert_int_eq(r.status, 202);
    ck_assert_str_eq(r.body, "{\"id\":\"ap-h1\",\"status\":\"pending_approval\"}");
    http_result_free(&r);
    get(f.base, "/v1/actions", READ_TOKEN, &r);
    ck_assert_ptr_nonnull(strstr(r.body, "\"pending_approvals\":[{\"id\":\"ap-h1\""));
    http_result_free(&r);
    post(f.base, "/v1/actions/ap-h1/approve", NULL, &r);
    ck_assert_int_eq(r.status, 401);
    http_result_free(&r);
    post(f.base, "/v1/actions/ap-h1/approve", READ_TOKEN, &r);
    ck_assert_int_eq(r.status, 403);
    http_result_free(&r);
    /* a body-less approve as a cross-site form would send it (no custom
     * header, no JSON type): refused, even with the admin token */
    {
        char url[512];
        snprintf(url, sizeof(url), "%s/v1/actions/ap-h1/approve", f.base);
        http_opts o;
        memset(&o, 0, sizeof(o));
        o.token = ADMIN_TOKEN;
        o.ctype = "application/x-www-form-urlencoded";
        http_do("POST", url, "a=1", 3, &o, &r);
        ck_assert_int_eq(r.status, 415);
        ck_assert_ptr_nonnull(strstr(r.body, "a state-changing request needs Content-Type: "
                                             "application/json or an X-Vigil-Request header"));
        http_result_free(&r);
        get(f.base, "/v1/actions", READ_TOKEN, &r); /* still waiting */
        ck_assert_ptr_nonnull(strstr(r.body, "\"pending_approvals\":[{\"id\":\"ap-h1\""));
        http_result_free(&r);
    }
    post(f.base, "/v1/actions/nope/approve", ADMIN_TOKEN, &r);
    ck_assert_int_eq(r.status, 404);
    ck_assert_ptr_nonnull(strstr(r.body, "no request \\\"nope\\\" is waiting for approval"));
    http_result_free(&r);
    post(f.base, "/v1/actions/ap-h1/approve", ADMIN_TOKEN, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"id\":\"ap-h1\",\"status\":\"approved\"}");
    http_result_free(&r);
    /* the audit names the approver by its token's name and address, never the token */
    get(f.base, "/v1/audit?since=0&limit=100", READ_TOKEN, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(strstr(r.body, "token ops from 127.0.0.1") != NULL, "%s", r.body);
    ck_assert_ptr_null(strstr(r.body, ADMIN_TOKEN));
    http_result_free(&r);
    /* the hub answers 503 first: the poster retries */
    hub_wait(1);
    pthread_mutex_lock(&g_hub.mu);
    ck_assert_str_eq(g_hub.id, "ap-h1");
    ck_assert_str_eq(g_hub.auth, "Bearer " HUB_TOKEN);
    ck_assert_msg(g_hub.sig_ok, "the late result is not signed with the secret");
    cJSON *j = cJSON_Parse(g_hub.body);
    pthread_mutex_unlock(&g_hub.mu);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "status")->valuestring, "succeeded");
    cJSON *audit = cJSON_GetObjectItem(j, "audit");
    int64_t seq = (int64_t)cJSON_GetObjectItem(audit, "seq")->valuedouble;
    char mac[80], path[256];
    snprintf(mac, sizeof(mac), "%s", cJSON_GetObjectItem(audit, "mac")->valuestring);
    cJSON_Delete(j);
    /* the checkpoint verifies through the route; a wrong one does not */
    snprintf(path, sizeof(path), "/v1/audit/verify?seq=%lld&mac=%s", (long long)seq, mac);
    get(f.base, path, READ_TOKEN, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "\"ok\":true"));
    http_result_free(&r);
    mac[0] = mac[0] == 'a' ? 'b' : 'a';
    snprintf(path, sizeof(path), "/v1/audit/verify?seq=%lld&mac=%s", (long long)seq, mac);
    get(f.base, path, READ_TOKEN, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "\"ok\":false"));
    ck_assert_ptr_nonnull(strstr(r.body, "checkpoint mac differs"));
    http_result_free(&r);
    get(f.base, "/v1/audit/verify?seq=x", READ_TOKEN, &r);
    ck_assert_int_eq(r.status, 400);
    http_result_free(&r);

    /* deny */
    post_exec(f.base, "{\"id\":\"ap-h2\",\"action\":\"ask\",\"target\":\"web\"}", SECRET, 0, &r);
    ck_assert_int_eq(r.status, 202);
    http_result_free(&r);
    post(f.base, "/v1/actions/ap-h2/deny", ADMIN_TOKEN, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "approval_denied"));
    http_result_free(&r);
    hub_wait(2);
    pthread_mutex_lock(&g_hub.mu);
    ck_assert_str_eq(g_hub.id, "ap-h2");
    ck_assert_ptr_nonnull(strstr(g_hub.body, "\"reason\":\"approval_denied\""));
    pthread_mutex_unlock(&g_hub.mu);
    /* a redelivery of the denied id gets the recorded result */
    post_exec(f.base, "{\"id\":\"ap-h2\",\"action\":\"ask\",\"target\":\"web\"}", SECRET, 0, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "\"status\":\"refused\",\"reason\":\"approval_denied\""));
    http_result_free(&r);

    /* release */
    post(f.base, "/v1/targets/web/release", ADMIN_TOKEN, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"target\":\"web\",\"released\":false}");
    http_result_free(&r);
    post(f.base, "/v1/targets/web/release", READ_TOKEN, &r);
    ck_assert_int_eq(r.status, 403);
    http_result_free(&r);
    /* a '/' in a target travels as %2F: one segment, decoded on its own */
    post(f.base, "/v1/targets/h1%2FFile%2Fmotd/release", ADMIN_TOKEN, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"target\":\"h1/File/motd\",\"released\":false}");
    http_result_free(&r);
    post(f.base, "/v1/targets/h1/File/motd/release", ADMIN_TOKEN, &r);
    ck_assert_int_eq(r.status, 404);
    http_result_free(&r);
    /* escapes in a fixed segment decode too */
    post(f.base, "/v1/t%61rgets/web/release", ADMIN_TOKEN, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"target\":\"web\",\"released\":false}");
    http_result_free(&r);
    post(f.base, "/v1/targets/web%zz/release", ADMIN_TOKEN, &r);
    ck_assert_int_eq(r.status, 400);
    http_result_free(&r);
    fx_stop(&f);
}
END_TEST

/* ---- the daemon ----------------------------------------------------------------------- */

START_TEST(daemon_signed_request_and_sigterm)
{
    const char *dir = vt_tmpdir();
    const char *cfg = "listen: 127.0.0.1:0\n"
                      "audit: sqlite://./var/r.db\n"
                      "secret_env: VIGIL_TEST_DAEMON_SECRET\n"
                      "guards: {cooldown: 0s}\n"
                      "actions:\n"
                      "  - {name: note, type: log}\n";
    vt_write_file(dir, "remediator.yaml", cfg, strlen(cfg));
    char *args[] = {(char *)pt_bin_path("vigil-remediator"), "--config", "remediator.yaml", NULL};
    pt_proc d;

    /* without the secret it refuses to start */
    unsetenv("VIGIL_TEST_DAEMON_SECRET");
    pt_start(&d, "nosecret", args, dir, 0);
    ck_assert_int_eq(pt_wait_exit(d.pid), 1);
    char *s = pt_slurp(d.log);
    ck_assert_msg(strstr(s, "environment variable VIGIL_TEST_DAEMON_SECRET"), "%s", s);
    free(s);

    setenv("VIGIL_TEST_DAEMON_SECRET", SECRET, 1);
    char *check[] = {args[0], "--config", "remediator.yaml", "--check-config", NULL};
    pt_start(&d, "check", check, dir, 0);
    ck_assert_int_eq(pt_wait_exit(d.pid), 0);
    char *ver[] = {args[0], "--version", NULL};
    pt_start(&d, "version", ver, dir, 0);
    ck_assert_int_eq(pt_wait_exit(d.pid), 0);
    s = pt_slurp(d.log);
    ck_assert_ptr_nonnull(strstr(s, "vigil-remediator " VIGIL_VERSION));
    free(s);

    pt_start(&d, "daemon", args, dir, 1);
    const char *base = d.base;
    http_result r;
    post_exec(base, "{\"id\":\"d-1\",\"action\":\"note\",\"target\":\"demo\"}", SECRET, 0, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "\"status\":\"succeeded\""));
    http_result_free(&r);
    get(base, "/v1/audit/verify", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"ok\":true,\"entries\":3}");
    http_result_free(&r);
    kill(d.pid, SIGHUP);
    ck_assert_int_eq(pt_stop(&d), 0);
    /* the key file was created beside the database */
    char key[PATH_MAX];
    snprintf(key, sizeof(key), "%s/var/r.db.key", dir);
    ck_assert_int_eq(access(key, R_OK), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("remediator_http");
    TCase *tc = tcase_create("http");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, execute_signed_and_redelivered);
    tcase_add_test(tc, bad_signatures_are_401_and_audited);
    tcase_add_test(tc, unsigned_uploads_refused_before_the_body);
    tcase_add_test(tc, auth_failures_are_audited_in_aggregate);
    tcase_add_test(tc, bad_bodies_are_400_with_a_path);
    tcase_add_test(tc, approval_routes_and_late_result_to_hub);
    suite_add_tcase(s, tc);
    tc = tcase_create("daemon");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, daemon_signed_request_and_sigterm);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
