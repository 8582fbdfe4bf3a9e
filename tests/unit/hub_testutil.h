/* Helpers shared by the hub suites that drive a vigil_hub in-process
 * (tests/unit/test_hub_policy.c, tests/integration/test_hub_dispatch.c): one
 * SQLite database per test, hub options, the API mounted on the hub and
 * called without a server, ledger and metric waits. Header-only. */
#ifndef VIGIL_HUB_TESTUTIL_H
#define VIGIL_HUB_TESTUTIL_H

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "vigil/sys/store.h"
#include "vigil/vigil.h"

#define SECRET  "stand-in-secret-0123456789abcdef"
#define WTOKEN  "hub-write-token-22222222222222"
#define RTOKEN  "hub-read-token-3333333333333333"
#define MAC_A   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define MAC_B   "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define WAIT_MS 15000
#define JSON_CT "Content-Type: application/json"
#define AUTH_W  "Authorization: Bearer " WTOKEN
#define AUTH_R  "Authorization: Bearer " RTOKEN

static inline int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- hub helpers ------------------------------------------------------------------ */

/* One database per test: db_url_reset() runs before each (also when the
 * tests share one process, with CK_FORK=no). */
static char g_db_url[600];

static inline void db_url_reset(void)
{
    g_db_url[0] = '\0';
}

static inline const char *db_url(void)
{
    if (!g_db_url[0])
        snprintf(g_db_url, sizeof(g_db_url), "sqlite://%s/hub.db", vt_tmpdir());
    return g_db_url;
}

static inline void hub_defaults(vigil_hub_options *o)
{
    vigil_hub_options d = VIGIL_HUB_OPTIONS_INIT;
    *o = d;
    o->store_url = db_url();
    o->events_interval_ms = 3600 * 1000;
    o->policy_interval_ms = 3600 * 1000;
    o->logger.min_level = VIGIL_LOG_OFF;
    o->remediator_backoff_ms = 5;
    o->remediator_backoff_max_ms = 20;
    o->remediator_timeout_ms = 10000;
}

static inline vigil_hub *hub_with(const vigil_hub_options *o)
{
    vigil_hub *hub = NULL;
    ck_assert_msg(vigil_hub_new(&hub, o) == VIGIL_OK, "%s", vigil_error_last()->message);
    ck_assert_int_eq(vigil_hub_start(hub), VIGIL_OK);
    return hub;
}

/* A hub dispatching to `url` with `secret`. */
static inline vigil_hub *hub_to(const char *url, const char *secret, unsigned int attempts)
{
    vigil_hub_options o;
    hub_defaults(&o);
    setenv("VT_HP_SECRET", secret, 1);
    o.remediator_url = url;
    o.remediator_secret_env = "VT_HP_SECRET";
    o.remediator_attempts = attempts;
    return hub_with(&o);
}

static inline vigil_api *mount(vigil_hub *hub)
{
    vigil_api_options o = VIGIL_API_OPTIONS_INIT;
    vigil_api_token toks[] = {{"ops", "VT_HP_WRITE", NULL, VIGIL_API_SCOPE_WRITE},
                              {"dash", "VT_HP_READ", NULL, VIGIL_API_SCOPE_READ}};
    setenv("VT_HP_WRITE", WTOKEN, 1);
    setenv("VT_HP_READ", RTOKEN, 1);
    o.tokens = toks;
    o.ntokens = 2;
    o.logger.min_level = VIGIL_LOG_OFF;
    vigil_api *api = NULL;
    ck_assert_int_eq(vigil_api_new(&api, &o), VIGIL_OK);
    ck_assert_int_eq(vigil_hub_mount(hub, api), VIGIL_OK);
    return api;
}

typedef struct treq {
    const char *method;
    const char *path;
    const char *query;
    const char *headers[4];
    const char *body;
} treq;

static inline vigil_api_response *run(vigil_api *api, const treq *t)
{
    vigil_http_header hs[4];
    char store[4][512];
    size_t nh = 0;
    for (size_t i = 0; i < 4 && t->headers[i]; i++) {
        snprintf(store[i], 512, "%s", t->headers[i]);
        char *colon = strchr(store[i], ':');
        *colon = '\0';
        hs[nh].name = store[i];
        hs[nh].value = colon + 2;
        nh++;
    }
    vigil_api_request r = VIGIL_API_REQUEST_INIT;
    r.method = t->method ? t->method : "GET";
    r.path = t->path;
    r.query = t->query;
    r.headers = hs;
    r.nheaders = nh;
    r.body = t->body;
    r.body_len = t->body ? strlen(t->body) : 0;
    vigil_api_response *resp = NULL;
    ck_assert_int_eq(vigil_api_response_new(&resp), VIGIL_OK);
    ck_assert_int_eq(vigil_api_handle(api, &r, resp), VIGIL_OK);
    return resp;
}

/* Runs a request and returns its status; the body is copied into `body`. */
static inline int call(vigil_api *api, const char *method, const char *path, const char *query,
                       const char *auth, const char *body, char *out, size_t size)
{
    /* a body-less state-changing request carries the custom header that
     * tells it from a cross-site form */
    int bodyless_change = !body && strcmp(method, "GET") != 0;
    treq t = {method,
              path,
              query,
              {auth,
               body              ? JSON_CT
               : bodyless_change ? "X-Vigil-Request: 1"
                                 : NULL,
               NULL, NULL},
              body};
    vigil_api_response *r = run(api, &t);
    int status = vigil_api_response_status(r);
    if (out)
        snprintf(out, size, "%s", vigil_api_response_body(r, NULL));
    vigil_api_response_free(r);
    return status;
}

/* As call(), POST with the body signed with SECRET (X-Vigil-Signature), as a
 * remediator posts its late results. */
static inline int call_signed(vigil_api *api, const char *path, const char *auth, const char *body,
                              char *out, size_t size)
{
    vigil_buf sig = VIGIL_BUF_INIT;
    ck_assert_int_eq(
        vigil_signature_make(&sig, SECRET, strlen(SECRET), (int64_t)time(NULL), body, strlen(body)),
        VIGIL_OK);
    char hdr[256];
    snprintf(hdr, sizeof(hdr), "%s: %s", VIGIL_SIGNATURE_HEADER, sig.ptr);
    vigil_buf_dispose(&sig);
    treq t = {"POST", path, NULL, {auth, JSON_CT, hdr, NULL}, body};
    vigil_api_response *r = run(api, &t);
    int status = vigil_api_response_status(r);
    if (out)
        snprintf(out, size, "%s", vigil_api_response_body(r, NULL));
    vigil_api_response_free(r);
    return status;
}

/* Asserts the answer to a signed POST: status, error code, path and a
 * message part. */
static inline void expect_signed(vigil_api *api, const char *path, const char *auth,
                                 const char *body, int status, const char *code, const char *jpath,
                                 const char *msg)
{
    char out[4096];
    int st = call_signed(api, path, auth, body, out, sizeof(out));
    ck_assert_msg(st == status, "POST %s %s: status %d, expected %d: %s", path, body, st, status,
                  out);
    char want[256];
    snprintf(want, sizeof(want), "{\"error\":{\"code\":\"%s\"", code);
    ck_assert_msg(strncmp(out, want, strlen(want)) == 0, "body %s lacks %s", out, want);
    snprintf(want, sizeof(want), "\"path\":\"%s\"}}", jpath);
    ck_assert_msg(strstr(out, want) != NULL, "body %s lacks %s", out, want);
    ck_assert_msg(strstr(out, msg) != NULL, "body %s lacks %s", out, msg);
}

/* Asserts an error answer: status, code, path and a message part. */
static inline void expect_error(vigil_api *api, const char *method, const char *path,
                                const char *auth, const char *body, int status, const char *code,
                                const char *jpath, const char *msg)
{
    char out[4096];
    int st = call(api, method, path, NULL, auth, body, out, sizeof(out));
    ck_assert_msg(st == status, "%s %s %s: status %d, expected %d: %s", method, path,
                  body ? body : "", st, status, out);
    char want[256];
    snprintf(want, sizeof(want), "{\"error\":{\"code\":\"%s\"", code);
    ck_assert_msg(strncmp(out, want, strlen(want)) == 0, "body %s lacks %s", out, want);
    snprintf(want, sizeof(want), "\"path\":\"%s\"}}", jpath);
    ck_assert_msg(strstr(out, want) != NULL, "body %s lacks %s", out, want);
    ck_assert_msg(strstr(out, msg) != NULL, "body %s lacks %s", out, msg);
}

/* Status of action `id` in the ledger ("" when absent). */
static inline void ledger_status(vigil_hub *hub, const char *id, char *out, size_t size)
{
    vigil_store_action *a = NULL;
    out[0] = '\0';
    if (vigil_store_action_get(vigil_hub_store(hub), id, &a) == VIGIL_OK)
        snprintf(out, size, "%s", a->status);
    vigil_store_action_free(a);
}

/* Waits until action `id` leaves "pending"; returns its record (caller frees). */
static inline vigil_store_action *wait_action(vigil_hub *hub, const char *id,
                                              const char *not_status)
{
    char st[64];
    int64_t end = mono_ms() + WAIT_MS;
    do {
        ledger_status(hub, id, st, sizeof(st));
        if (st[0] && strcmp(st, "pending") != 0 && (!not_status || strcmp(st, not_status) != 0))
            break;
        usleep(2000);
    } while (mono_ms() < end);
    vigil_store_action *a = NULL;
    ck_assert_msg(vigil_store_action_get(vigil_hub_store(hub), id, &a) == VIGIL_OK, "%s",
                  vigil_error_last()->message);
    return a;
}

/* POST /v1/actions; returns the new id in `id`. */
static inline void manual(vigil_api *api, const char *body, char *id, size_t size)
{
    char out[512];
    int st = call(api, "POST", "/v1/actions", NULL, AUTH_W, body, out, sizeof(out));
    ck_assert_msg(st == 202, "status %d: %s", st, out);
    cJSON *j = cJSON_Parse(out);
    cJSON *jid = cJSON_GetObjectItem(j, "id");
    ck_assert(cJSON_IsString(jid));
    snprintf(id, size, "%s", jid->valuestring);
    cJSON_Delete(j);
    ck_assert_msg(strncmp(id, "manual-", 7) == 0, "id %s", id);
}

static inline double metric_value(vigil_api *api, const char *series)
{
    vigil_buf b = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil_api_metrics_text(api, &b), VIGIL_OK);
    double v = -1;
    const char *p = b.ptr;
    size_t n = strlen(series);
    while (p && *p) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            v = strtod(p + n + 1, NULL);
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    vigil_buf_dispose(&b);
    return v;
}

/* The value of `series` once it reaches `want` (or at WAIT_MS): counters are
 * bumped just after the store row a test waits on is written. */
static inline double wait_metric(vigil_api *api, const char *series, double want)
{
    int64_t end = mono_ms() + WAIT_MS;
    double v = metric_value(api, series);
    while (v < want && mono_ms() < end) {
        usleep(2000);
        v = metric_value(api, series);
    }
    return v;
}

#endif
