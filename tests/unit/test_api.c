/* api: the transport-neutral router alone: built-in routes, 404/405, prefix,
 * tokens and scopes, the auth callback, body checks and gzip, query parsing,
 * CORS, asynchronous answers, the Prometheus registry and its text. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "api/internal.h"
#include "testutil.h"

extern char **environ;

/* ---- helpers ------------------------------------------------------------------ */

typedef struct treq {
    const char *method;
    const char *path;
    const char *query;
    const char *headers[16]; /* "Name: value" */
    const char *body;
    size_t body_len;
} treq;

static vigil_api_response *run(vigil_api *api, const treq *t)
{
    vigil_http_header hs[16];
    char store[16][512];
    size_t nh = 0;
    for (size_t i = 0; i < 16 && t->headers[i]; i++) {
        snprintf(store[i], sizeof(store[i]), "%s", t->headers[i]);
        char *colon = strchr(store[i], ':');
        ck_assert_ptr_nonnull(colon);
        *colon = '\0';
        hs[nh].name = store[i];
        hs[nh].value = colon + 1 + (colon[1] == ' ');
        nh++;
    }
    vigil_api_request req = VIGIL_API_REQUEST_INIT;
    req.method = t->method ? t->method : "GET";
    req.path = t->path;
    req.query = t->query;
    req.headers = hs;
    req.nheaders = nh;
    req.body = t->body;
    req.body_len = t->body && !t->body_len ? strlen(t->body) : t->body_len;
    vigil_api_response *resp = NULL;
    ck_assert_int_eq(vigil_api_response_new(&resp), VIGIL_OK);
    ck_assert_int_eq(vigil_api_handle(api, &req, resp), VIGIL_OK);
    return resp;
}

static void expect(vigil_api_response *r, int status, const char *body)
{
    size_t len;
    const char *b = vigil_api_response_body(r, &len);
    ck_assert_msg(vigil_api_response_status(r) == status, "status %d, expected %d; body %s",
                  vigil_api_response_status(r), status, b);
    if (body)
        ck_assert_str_eq(b, body);
    ck_assert_uint_eq(len, strlen(b));
}

static void expect_free(vigil_api_response *r, int status, const char *body)
{
    expect(r, status, body);
    vigil_api_response_free(r);
}

static vigil_api *api_plain(void)
{
    vigil_api *api = NULL;
    ck_assert_int_eq(vigil_api_new(&api, NULL), VIGIL_OK);
    return api;
}

/* A test route that answers 200 with the body length it received. */
static void echo_route(vigil__api_call *call, void *payload)
{
    (void)payload;
    size_t len;
    const char *body = vigil__api_call_body(call, &len);
    char out[128];
    int n = snprintf(out, sizeof(out), "{\"len\":%zu,\"first\":\"%c\"}", len, len ? body[0] : '-');
    vigil__api_resp_json(vigil__api_call_response(call), 200, out, (size_t)n);
    vigil__api_finish(call);
}

/* Echoes the query parameters as k=v;... */
static void params_route(vigil__api_call *call, void *payload)
{
    (void)payload;
    size_t n;
    const vigil__api_param *ps = vigil__api_call_params(call, &n);
    vigil_buf b = VIGIL_BUF_INIT;
    for (size_t i = 0; i < n; i++)
        vigil__buf_printf(&b, "%s=%s;", ps[i].key, ps[i].value);
    vigil__api_resp_text(vigil__api_call_response(call), 200, "text/plain", &b);
    vigil_buf_dispose(&b);
    vigil__api_finish(call);
}

static void silent_route(vigil__api_call *call, void *payload)
{
    (void)payload;
    vigil__api_finish(call);
}

/* ---- options, built-ins, routing -------------------------------------------- */

START_TEST(options_and_request_init)
{
    vigil_api_options o;
    ck_assert_int_eq(vigil_api_options_init(&o, VIGIL_API_OPTIONS_VERSION), VIGIL_OK);
    ck_assert_uint_eq(o.version, VIGIL_API_OPTIONS_VERSION);
    ck_assert_ptr_null(o.prefix);
    ck_assert_int_eq(vigil_api_options_init(&o, 99), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "api options: version 99 is not supported");
    vigil_api_request r;
    ck_assert_int_eq(vigil_api_request_init(&r, VIGIL_API_REQUEST_VERSION), VIGIL_OK);
    ck_assert_ptr_null(r.method);
    ck_assert_int_eq(vigil_api_request_init(&r, 7), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "api request: version 7 is not supported");
    ck_assert_int_eq(vigil_api_request_init(NULL, 1), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "api request: NULL");
    o.version = 5;
    vigil_api *api = NULL;
    ck_assert_int_eq(vigil_api_new(&api, &o), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "api options: version 5 is not supported");
    ck_assert_int_eq(vigil_api_new(NULL, NULL), VIGIL_EINVAL);
    vigil_api_options_init(&o, VIGIL_API_OPTIONS_VERSION);
    o.prefix = "vigil";
    ck_assert_int_eq(vigil_api_new(&api, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "must start with '/'");
    ck_assert_ptr_null(api);
    vigil_api_free(NULL);
}
END_TEST

START_TEST(error_bodies_use_the_json_escaper)
{
    /* Error bodies go through lib/json's escaper: quotes and backslashes,
     * the short escapes, other control characters as \u00XX, DEL and UTF-8
     * as they are, an invalid byte as U+FFFD. */
    vigil_api_response *r = NULL;
    ck_assert_int_eq(vigil_api_response_new(&r), VIGIL_OK);
    ck_assert_int_eq(
        vigil__api_resp_error(r, 400, "bad", "q\"b\\s\b\f\n\r\t\x01\x1f\x7f \xc3\xa9 \xff|", NULL),
        VIGIL_OK);
    expect(r, 400,
           "{\"error\":{\"code\":\"bad\",\"message\":\"q\\\"b\\\\s\\b\\f\\n\\r\\t"
           "\\u0001\\u001f\x7f \xc3\xa9 \xef\xbf\xbd|\",\"path\":\"\"}}");
    vigil_api_response_free(r);
}
END_TEST

START_TEST(healthz_and_errors)
{
    vigil_api *api = api_plain();
    treq t = {.path = "/healthz"};
    vigil_api_response *r = run(api, &t);
    expect(r, 200, "{\"status\":\"ok\"}");
    ck_assert_str_eq(vigil_api_response_header(r, "content-type"), "application/json");
    ck_assert_str_eq(vigil_api_response_header(r, "X-Content-Type-Options"), "nosniff");
    ck_assert(!vigil_api_response_is_stream(r));
    vigil_api_response_free(r);

    treq nf = {.path = "/nope"};
    expect_free(run(api, &nf), 404,
                "{\"error\":{\"code\":\"not_found\",\"message\":\"no such route\",\"path\":\"\"}}");

    treq m = {.method = "POST", .path = "/healthz"};
    r = run(api, &m);
    expect(r, 405,
           "{\"error\":{\"code\":\"method_not_allowed\",\"message\":\"method POST is not allowed "
           "on this route\",\"path\":\"\"}}");
    ck_assert_str_eq(vigil_api_response_header(r, "Allow"), "GET");
    vigil_api_response_free(r);

    treq bad = {.path = "/he%zzlthz"};
    expect_free(run(api, &bad), 400,
                "{\"error\":{\"code\":\"invalid_request\",\"message\":\"path: bad percent-escape, "
                "NUL or invalid UTF-8\",\"path\":\"\"}}");
    treq nul = {.path = "/healthz%00"};
    expect_free(run(api, &nul), 400, NULL);
    treq enc = {.path = "/%68ealthz"}; /* %68 = 'h' */
    expect_free(run(api, &enc), 200, "{\"status\":\"ok\"}");
    vigil_api_free(api);
}
END_TEST

START_TEST(prefix_mount)
{
    vigil_api_options o = VIGIL_API_OPTIONS_INIT;
    o.prefix = "/vigil/";
    vigil_api *api = NULL;
    ck_assert_int_eq(vigil_api_new(&api, &o), VIGIL_OK);
    treq a = {.path = "/vigil/healthz"};
    expect_free(run(api, &a), 200, "{\"status\":\"ok\"}");
    treq b = {.path = "/healthz"};
    expect_free(run(api, &b), 404, NULL);
    treq c = {.path = "/vigilx/healthz"};
    expect_free(run(api, &c), 404, NULL);
    treq d = {.path = "/vigil"};
    expect_free(run(api, &d), 404, NULL);
    vigil_api_free(api);
}
END_TEST

START_TEST(route_without_answer_is_500)
{
    vigil_api *api = api_plain();
    ck_assert_int_eq(vigil__api_route(api, "GET", "/silent", 0, 0, silent_route, NULL), VIGIL_OK);
    ck_assert_int_eq(vigil__api_route(api, "GET", "/silent", 0, 0, silent_route, NULL),
                     VIGIL_EEXISTS);
    vt_assert_error(VIGIL_EEXISTS, "route GET /silent already mounted");
    treq t = {.path = "/silent"};
    expect_free(run(api, &t), 500,
                "{\"error\":{\"code\":\"internal\",\"message\":\"the route produced no "
                "response\",\"path\":\"\"}}");
    vigil_api_free(api);
}
END_TEST

START_TEST(bad_arguments)
{
    vigil_api *api = api_plain();
    vigil_api_response *r = NULL;
    ck_assert_int_eq(vigil_api_response_new(&r), VIGIL_OK);
    vigil_api_request req = VIGIL_API_REQUEST_INIT;
    ck_assert_int_eq(vigil_api_handle(api, &req, r), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "without a method");
    req.method = "GET";
    req.path = "/healthz";
    req.version = 9;
    ck_assert_int_eq(vigil_api_handle(api, &req, r), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "api submit request: version 9 is not supported");
    req.version = VIGIL_API_REQUEST_VERSION;
    ck_assert_int_eq(vigil_api_handle(NULL, &req, r), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_api_handle(api, &req, r), VIGIL_OK);
    ck_assert_int_eq(vigil_api_handle(api, &req, r), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "already used");
    /* accessors on a plain response */
    ck_assert_ptr_null(vigil_api_response_header_at(r, 99));
    ck_assert_ptr_null(vigil_api_response_header(r, "X-None"));
    char buf[8];
    size_t n = 5;
    ck_assert_int_eq(vigil_api_response_read(r, buf, sizeof(buf), &n), VIGIL_EINVAL);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(vigil_api_response_set_wake(r, NULL, NULL), VIGIL_EINVAL);
    ck_assert_str_eq(vigil_api_response_body(NULL, NULL), "");
    ck_assert_int_eq(vigil_api_response_status(NULL), 0);
    vigil_api_response_free(r);
    vigil_api_response_free(NULL);
    ck_assert_int_eq(vigil_api_response_new(NULL), VIGIL_EINVAL);
    vigil_api_free(api);
}
END_TEST

/* ---- tokens and scopes -------------------------------------------------------- */

#define TOK_INGEST  "ingest-token-aaaaaaaaaaaa"
#define TOK_INGEST2 "ingest-token-rotated-bbbb"
#define TOK_READ    "read-token-cccccccccccccc"
#define TOK_WRITE   "write-token-dddddddddddddd"
#define TOK_ADMIN   "admin-token-eeeeeeeeeeeeee"

typedef struct auth_env {
    vigil_api *api;
    const char *file;
} auth_env;

static auth_env auth_setup(void)
{
    auth_env e;
    setenv("VT_INGEST", " " TOK_INGEST " , " TOK_INGEST2 ",", 1);
    setenv("VT_READ", TOK_READ, 1);
    setenv("VT_ADMIN", TOK_ADMIN, 1);
    const char *dir = vt_tmpdir();
    e.file = vt_write_file(dir, "write.token", TOK_WRITE "\n", strlen(TOK_WRITE) + 1);
    static char file_copy[512];
    snprintf(file_copy, sizeof(file_copy), "%s", e.file);
    e.file = file_copy;
    vigil_api_token toks[] = {
        {"agents", "VT_INGEST", NULL, VIGIL_API_SCOPE_INGEST},
        {"dash", "VT_READ", NULL, VIGIL_API_SCOPE_READ},
        {"gitops", NULL, file_copy, VIGIL_API_SCOPE_WRITE},
        {"ops", "VT_ADMIN", NULL, VIGIL_API_SCOPE_ADMIN},
    };
    vigil_api_options o = VIGIL_API_OPTIONS_INIT;
    o.tokens = toks;
    o.ntokens = 4;
    ck_assert_int_eq(vigil_api_new(&e.api, &o), VIGIL_OK);
    ck_assert(vigil_api_has_auth(e.api));
    vigil_api *api = e.api;
    ck_assert_int_eq(vigil__api_route(api, "POST", "/t/ingest", VIGIL_API_SCOPE_INGEST,
                                      VIGIL__API_BODY, echo_route, NULL),
                     VIGIL_OK);
    ck_assert_int_eq(
        vigil__api_route(api, "GET", "/t/read", VIGIL_API_SCOPE_READ, 0, echo_route, NULL),
        VIGIL_OK);
    ck_assert_int_eq(
        vigil__api_route(api, "GET", "/t/write", VIGIL_API_SCOPE_WRITE, 0, echo_route, NULL),
        VIGIL_OK);
    ck_assert_int_eq(
        vigil__api_route(api, "GET", "/t/admin", VIGIL_API_SCOPE_ADMIN, 0, echo_route, NULL),
        VIGIL_OK);
    ck_assert_int_eq(vigil__api_route(api, "GET", "/t/events", VIGIL_API_SCOPE_READ,
                                      VIGIL__API_QUERY_TOKEN, echo_route, NULL),
                     VIGIL_OK);
    return e;
}

static int status_with(vigil_api *api, const char *method, const char *path, const char *token)
{
    char h[256];
    snprintf(h, sizeof(h), "Authorization: Bearer %s", token);
    treq t = {.method = method, .path = path, .headers = {h, "Content-Type: application/json"}};
    if (strcmp(method, "POST") == 0)
        t.body = "{}";
    vigil_api_response *r = run(api, &t);
    int s = vigil_api_response_status(r);
    vigil_api_response_free(r);
    return s;
}

START_TEST(tokens_and_scopes)
{
    auth_env e = auth_setup();
    vigil_api *api = e.api;
    treq none = {.path = "/t/read"};
    vigil_api_response *r = run(api, &none);
    expect(r, 401,
           "{\"error\":{\"code\":\"unauthorized\",\"message\":\"missing bearer token\","
           "\"path\":\"\"}}");
    ck_assert_str_eq(vigil_api_response_header(r, "WWW-Authenticate"), "Bearer realm=\"vigil\"");
    vigil_api_response_free(r);

    treq bad = {.path = "/t/read", .headers = {"Authorization: Bearer nope-nope-nope-nope"}};
    expect_free(run(api, &bad), 401,
                "{\"error\":{\"code\":\"unauthorized\",\"message\":\"invalid token\","
                "\"path\":\"\"}}");
    treq basic = {.path = "/t/read", .headers = {"Authorization: Basic dXNlcjpwYXNz"}};
    expect_free(run(api, &basic), 401,
                "{\"error\":{\"code\":\"unauthorized\",\"message\":\"the Authorization header "
                "must be \\\"Bearer <token>\\\"\",\"path\":\"\"}}");
    treq prefix = {.path = "/t/read", .headers = {"Authorization: Bearer " TOK_READ "x"}};
    expect_free(run(api, &prefix), 401, NULL);
    treq shortt = {.path = "/t/read", .headers = {"Authorization: Bearer read-token"}};
    expect_free(run(api, &shortt), 401, NULL);

    treq wrong = {.path = "/t/read", .headers = {"Authorization: Bearer " TOK_INGEST}};
    expect_free(run(api, &wrong), 403,
                "{\"error\":{\"code\":\"forbidden\",\"message\":\"token \\\"agents\\\" lacks "
                "the read scope\",\"path\":\"\"}}");

    /* ingest stands alone; admin ⊃ write ⊃ read */
    ck_assert_int_eq(status_with(api, "POST", "/t/ingest", TOK_INGEST), 200);
    ck_assert_int_eq(status_with(api, "POST", "/t/ingest", TOK_INGEST2), 200);
    ck_assert_int_eq(status_with(api, "POST", "/t/ingest", TOK_READ), 403);
    ck_assert_int_eq(status_with(api, "POST", "/t/ingest", TOK_ADMIN), 403);
    ck_assert_int_eq(status_with(api, "GET", "/t/read", TOK_READ), 200);
    ck_assert_int_eq(status_with(api, "GET", "/t/read", TOK_WRITE), 200);
    ck_assert_int_eq(status_with(api, "GET", "/t/read", TOK_ADMIN), 200);
    ck_assert_int_eq(status_with(api, "GET", "/t/write", TOK_READ), 403);
    ck_assert_int_eq(status_with(api, "GET", "/t/write", TOK_WRITE), 200);
    ck_assert_int_eq(status_with(api, "GET", "/t/write", TOK_ADMIN), 200);
    ck_assert_int_eq(status_with(api, "GET", "/t/admin", TOK_WRITE), 403);
    ck_assert_int_eq(status_with(api, "GET", "/t/admin", TOK_ADMIN), 200);
    ck_assert_int_eq(status_with(api, "GET", "/t/admin", TOK_INGEST), 403);

    /* /healthz never needs a token; /metrics needs read */
    treq h = {.path = "/healthz"};
    expect_free(run(api, &h), 200, NULL);
    treq mt = {.path = "/metrics"};
    expect_free(run(api, &mt), 401, NULL);
    ck_assert_int_eq(status_with(api, "GET", "/metrics", TOK_READ), 200);

    /* ?access_token= only where the route allows it (EventSource) */
    treq qt = {.path = "/t/events", .query = "access_token=" TOK_READ};
    expect_free(run(api, &qt), 200, NULL);
    treq qt2 = {.path = "/t/read", .query = "access_token=" TOK_READ};
    expect_free(run(api, &qt2), 401, NULL);
    treq qt3 = {.path = "/t/events", .query = "access_token=" TOK_INGEST};
    expect_free(run(api, &qt3), 403, NULL);
    vigil_api_free(api);
}
END_TEST

START_TEST(tokens_reload_and_rotation)
{
    auth_env e = auth_setup();
    vigil_api *api = e.api;
    ck_assert_int_eq(status_with(api, "GET", "/t/write", TOK_WRITE), 200);
    /* rotate: new file content, new env token */
    FILE *f = fopen(e.file, "w");
    ck_assert_ptr_nonnull(f);
    fputs("write-token-new-ffffffffffff,\nwrite-token-second-gggggggg\n", f);
    fclose(f);
    setenv("VT_READ", "read-token-new-hhhhhhhhhhh", 1);
    ck_assert_int_eq(status_with(api, "GET", "/t/write", TOK_WRITE), 200); /* not yet */
    ck_assert_int_eq(vigil_api_reload(api), VIGIL_OK);
    ck_assert_int_eq(status_with(api, "GET", "/t/write", TOK_WRITE), 401);
    ck_assert_int_eq(status_with(api, "GET", "/t/write", "write-token-new-ffffffffffff"), 200);
    ck_assert_int_eq(status_with(api, "GET", "/t/write", "write-token-second-gggggggg"), 200);
    ck_assert_int_eq(status_with(api, "GET", "/t/read", TOK_READ), 401);
    ck_assert_int_eq(status_with(api, "GET", "/t/read", "read-token-new-hhhhhhhhhhh"), 200);
    /* a failed reload keeps the previous tokens */
    ck_assert_int_eq(unlink(e.file), 0);
    ck_assert_int_eq(vigil_api_reload(api), VIGIL_EIO);
    vt_assert_error(VIGIL_EIO, "token \"gitops\": cannot read");
    ck_assert_int_eq(status_with(api, "GET", "/t/write", "write-token-new-ffffffffffff"), 200);
    unsetenv("VT_READ");
    ck_assert_int_eq(vigil_api_reload(NULL), VIGIL_EINVAL);
    vigil_api_free(api);
}
END_TEST

static int new_with_token(const vigil_api_token *t)
{
    vigil_api_options o = VIGIL_API_OPTIONS_INIT;
    o.tokens = t;
    o.ntokens = 1;
    vigil_api *api = NULL;
    int rc = vigil_api_new(&api, &o);
    vigil_api_free(api);
    return rc;
}

START_TEST(token_sources_refused)
{
    vigil_api_token both = {"x", "VT_A", "/tmp/f", VIGIL_API_SCOPE_READ};
    ck_assert_int_eq(new_with_token(&both), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "token \"x\": set exactly one of env and file");
    vigil_api_token none = {"x", NULL, NULL, VIGIL_API_SCOPE_READ};
    ck_assert_int_eq(new_with_token(&none), VIGIL_EINVAL);
    vigil_api_token noname = {NULL, "VT_A", NULL, VIGIL_API_SCOPE_READ};
    ck_assert_int_eq(new_with_token(&noname), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "tokens[0]: a name is required");
    vigil_api_token noscope = {"x", "VT_A", NULL, 0};
    ck_assert_int_eq(new_with_token(&noscope), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "scopes must be ingest, read, write or admin");
    unsetenv("VT_UNSET_VAR");
    vigil_api_token unset = {"agents", "VT_UNSET_VAR", NULL, VIGIL_API_SCOPE_INGEST};
    ck_assert_int_eq(new_with_token(&unset), VIGIL_EENV);
    vt_assert_error(VIGIL_EENV, "token \"agents\": environment variable VT_UNSET_VAR is not set");
    setenv("VT_EMPTY", " , ,", 1);
    vigil_api_token empty = {"agents", "VT_EMPTY", NULL, VIGIL_API_SCOPE_INGEST};
    ck_assert_int_eq(new_with_token(&empty), VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE, "environment variable VT_EMPTY holds no token");
    /* a token shorter than 16 bytes is refused, and never quoted */
    setenv("VT_SHORT", "long-enough-token-000,fifteen-bytes!!", 1);
    vigil_api_token shorty = {"agents", "VT_SHORT", NULL, VIGIL_API_SCOPE_INGEST};
    ck_assert_int_eq(new_with_token(&shorty), VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE, "token \"agents\": a token from environment variable VT_SHORT "
                                  "is 15 bytes; at least 16 are required");
    ck_assert_ptr_null(strstr(vigil_error_last()->message, "fifteen"));
    setenv("VT_SPACE", "secret part-two-of-the-token", 1);
    vigil_api_token space = {"agents", "VT_SPACE", NULL, VIGIL_API_SCOPE_INGEST};
    ck_assert_int_eq(new_with_token(&space), VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE, "only visible ASCII");
    ck_assert_ptr_null(strstr(vigil_error_last()->message, "secret"));
    vigil_api_token missing = {"ops", NULL, "/nonexistent/vigil.token", VIGIL_API_SCOPE_ADMIN};
    ck_assert_int_eq(new_with_token(&missing), VIGIL_EIO);
    vt_assert_error(VIGIL_EIO, "token \"ops\": cannot read /nonexistent/vigil.token");
    char big[600];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    setenv("VT_BIG", big, 1);
    vigil_api_token lng = {"agents", "VT_BIG", NULL, VIGIL_API_SCOPE_INGEST};
    ck_assert_int_eq(new_with_token(&lng), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "longer than 512 bytes");
}
END_TEST

static int g_cb_calls;
static unsigned g_cb_scope;

static int auth_cb(const vigil_api_request *req, unsigned int scope, void *payload)
{
    (void)payload;
    g_cb_calls++;
    g_cb_scope = scope;
    for (size_t i = 0; i < req->nheaders; i++) {
        if (strcmp(req->headers[i].name, "X-User") == 0) {
            if (strcmp(req->headers[i].value, "alice") == 0)
                return VIGIL_OK;
            if (strcmp(req->headers[i].value, "bob") == 0)
                return VIGIL_EPERM;
        }
    }
    return VIGIL_EAUTH;
}

START_TEST(auth_callback_replaces_tokens)
{
    setenv("VT_READ", TOK_READ, 1);
    vigil_api_token tok = {"dash", "VT_READ", NULL, VIGIL_API_SCOPE_READ};
    vigil_api_options o = VIGIL_API_OPTIONS_INIT;
    o.tokens = &tok;
    o.ntokens = 1;
    o.auth_cb = auth_cb;
    vigil_api *api = NULL;
    ck_assert_int_eq(vigil_api_new(&api, &o), VIGIL_OK);
    ck_assert(vigil_api_has_auth(api));
    g_cb_calls = 0;
    treq alice = {.path = "/metrics", .headers = {"X-User: alice"}};
    expect_free(run(api, &alice), 200, NULL);
    ck_assert_int_eq(g_cb_calls, 1);
    ck_assert_uint_eq(g_cb_scope, VIGIL_API_SCOPE_READ);
    treq bob = {.path = "/metrics", .headers = {"X-User: bob"}};
    expect_free(run(api, &bob), 403,
                "{\"error\":{\"code\":\"forbidden\",\"message\":\"the credential lacks the read "
                "scope\",\"path\":\"\"}}");
    treq tokonly = {.path = "/metrics", .headers = {"Authorization: Bearer " TOK_READ}};
    expect_free(run(api, &tokonly), 401,
                "{\"error\":{\"code\":\"unauthorized\",\"message\":\"authentication failed\","
                "\"path\":\"\"}}");
    treq h = {.path = "/healthz"};
    expect_free(run(api, &h), 200, NULL);
    ck_assert_int_eq(g_cb_calls, 3);
    vigil_api_free(api);
    vigil_api *open = api_plain();
    ck_assert(!vigil_api_has_auth(open));
    treq m = {.path = "/metrics"};
    expect_free(run(open, &m), 200, NULL);
    vigil_api_free(open);
}
END_TEST

/* ---- bodies ---------------------------------------------------------------------- */

static vigil_api *body_api(uint64_t max_body, uint64_t max_inflated)
{
    vigil_api_options o = VIGIL_API_OPTIONS_INIT;
    o.max_body = max_body;
    o.max_inflated = max_inflated;
    vigil_api *api = NULL;
    ck_assert_int_eq(vigil_api_new(&api, &o), VIGIL_OK);
    ck_assert_int_eq(vigil__api_route(api, "POST", "/echo", 0, VIGIL__API_BODY, echo_route, NULL),
                     VIGIL_OK);
    return api;
}

static size_t gzip_buf(unsigned char *out, size_t cap, const void *in, size_t len)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    ck_assert_int_eq(deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)len;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    ck_assert_int_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
    size_t n = cap - zs.avail_out;
    deflateEnd(&zs);
    return n;
}

START_TEST(content_type_and_encoding)
{
    vigil_api *api = body_api(0, 0);
    treq noct = {.method = "POST", .path = "/echo", .body = "{}"};
    expect_free(run(api, &noct), 415,
                "{\"error\":{\"code\":\"unsupported_media_type\",\"message\":\"Content-Type must "
                "be application/json\",\"path\":\"\"}}");
    treq form = {.method = "POST",
                 .path = "/echo",
                 .body = "{}",
                 .headers = {"Content-Type: application/x-www-form-urlencoded"}};
    expect_free(run(api, &form), 415, NULL);
    treq jsonx = {.method = "POST",
                  .path = "/echo",
                  .body = "{}",
                  .headers = {"Content-Type: application/jsonx"}};
    expect_free(run(api, &jsonx), 415, NULL);
    treq ok = {.method = "POST",
               .path = "/echo",
               .body = "{}",
               .headers = {"content-type: application/json; charset=utf-8"}};
    expect_free(run(api, &ok), 200, "{\"len\":2,\"first\":\"{\"}");
    treq br = {.method = "POST",
               .path = "/echo",
               .body = "{}",
               .headers = {"Content-Type: application/json", "Content-Encoding: br"}};
    expect_free(run(api, &br), 415,
                "{\"error\":{\"code\":\"unsupported_media_type\",\"message\":\"Content-Encoding "
                "must be gzip or identity\",\"path\":\"\"}}");
    treq ident = {.method = "POST",
                  .path = "/echo",
                  .body = "{}",
                  .headers = {"Content-Type: application/json", "Content-Encoding: identity"}};
    expect_free(run(api, &ident), 200, NULL);
    vigil_api_free(api);
}
END_TEST

START_TEST(body_limits_and_gzip)
{
    vigil_api *api = body_api(4096, 64 * 1024);
    char big[5000];
    memset(big, ' ', sizeof(big));
    treq large = {.method = "POST",
                  .path = "/echo",
                  .body = big,
                  .body_len = sizeof(big),
                  .headers = {"Content-Type: application/json"}};
    expect_free(run(api, &large), 413,
                "{\"error\":{\"code\":\"too_large\",\"message\":\"request body exceeds the limit "
                "of 4096 bytes\",\"path\":\"\"}}");

    /* gzip inflated */
    static unsigned char gz[8192];
    const char *doc = "{\"hello\":\"world\"}";
    size_t n = gzip_buf(gz, sizeof(gz), doc, strlen(doc));
    treq g = {.method = "POST",
              .path = "/echo",
              .body = (const char *)gz,
              .body_len = n,
              .headers = {"Content-Type: application/json", "Content-Encoding: gzip"}};
    expect_free(run(api, &g), 200, "{\"len\":17,\"first\":\"{\"}");

    /* two concatenated gzip members */
    static unsigned char gz2[16384];
    memcpy(gz2, gz, n);
    memcpy(gz2 + n, gz, n);
    g.body = (const char *)gz2;
    g.body_len = 2 * n;
    expect_free(run(api, &g), 200, "{\"len\":34,\"first\":\"{\"}");

    /* a bomb: 16 MiB of spaces compress to about 16 KiB, far over max_inflated */
    vigil_api *api2 = body_api(64 * 1024, 1024 * 1024);
    size_t raw = 16 * 1024 * 1024;
    char *zeros = malloc(raw);
    memset(zeros, ' ', raw);
    static unsigned char bomb[65536];
    size_t bn = gzip_buf(bomb, sizeof(bomb), zeros, raw);
    free(zeros);
    ck_assert_uint_lt(bn, 32 * 1024);
    treq b = {.method = "POST",
              .path = "/echo",
              .body = (const char *)bomb,
              .body_len = bn,
              .headers = {"Content-Type: application/json", "Content-Encoding: gzip"}};
    expect_free(run(api2, &b), 413,
                "{\"error\":{\"code\":\"too_large\",\"message\":\"inflated body exceeds the limit "
                "of 1048576 bytes\",\"path\":\"\"}}");
    vigil_api_free(api2);

    /* corrupt and truncated gzip */
    treq c = {.method = "POST",
              .path = "/echo",
              .body = "\x1f\x8b\x08\x00garbage-garbage",
              .headers = {"Content-Type: application/json", "Content-Encoding: gzip"}};
    expect_free(run(api, &c), 400,
                "{\"error\":{\"code\":\"invalid_request\",\"message\":\"body: malformed or "
                "truncated gzip data\",\"path\":\"\"}}");
    treq t = {.method = "POST",
              .path = "/echo",
              .body = (const char *)gz,
              .body_len = n - 6,
              .headers = {"Content-Type: application/json", "Content-Encoding: gzip"}};
    expect_free(run(api, &t), 400, NULL);
    treq e = {.method = "POST",
              .path = "/echo",
              .headers = {"Content-Type: application/json", "Content-Encoding: gzip"}};
    expect_free(run(api, &e), 400, NULL);
    vigil_api_free(api);
}
END_TEST

/* ---- queries ------------------------------------------------------------------ */

START_TEST(query_parsing)
{
    vigil_api *api = api_plain();
    ck_assert_int_eq(vigil__api_route(api, "GET", "/p", 0, 0, params_route, NULL), VIGIL_OK);
    treq a = {.path = "/p", .query = "name=cpu+usage&match=host%3Ah1&match=dc:eu&flag&&x="};
    expect_free(run(api, &a), 200, "name=cpu usage;match=host:h1;match=dc:eu;flag=;x=;");
    treq bad = {.path = "/p", .query = "a=%zz"};
    expect_free(run(api, &bad), 400,
                "{\"error\":{\"code\":\"invalid_request\",\"message\":\"query: bad "
                "percent-escape\",\"path\":\"\"}}");
    treq nul = {.path = "/p", .query = "a=x%00y"};
    expect_free(run(api, &nul), 400,
                "{\"error\":{\"code\":\"invalid_request\",\"message\":\"query: NUL or invalid "
                "UTF-8\",\"path\":\"\"}}");
    treq utf = {.path = "/p", .query = "a=%ff%fe"};
    expect_free(run(api, &utf), 400, NULL);
    treq trunc = {.path = "/p", .query = "a=%4"};
    expect_free(run(api, &trunc), 400, NULL);
    char many[1024] = "";
    for (int i = 0; i < 65; i++)
        strcat(many, "a=1&");
    treq m = {.path = "/p", .query = many};
    expect_free(run(api, &m), 400,
                "{\"error\":{\"code\":\"invalid_request\",\"message\":\"query: more than 64 "
                "parameters\",\"path\":\"\"}}");
    char *longq = malloc(9000);
    memset(longq, 'a', 8999);
    longq[8999] = '\0';
    treq l = {.path = "/p", .query = longq};
    expect_free(run(api, &l), 400, NULL);
    free(longq);
    vigil_api_free(api);
}
END_TEST

/* ---- CORS ----------------------------------------------------------------------- */

START_TEST(cors_only_for_allowed_origins)
{
    const char *origins[] = {"https://ops.example.com"};
    vigil_api_options o = VIGIL_API_OPTIONS_INIT;
    o.allowed_origins = origins;
    o.nallowed_origins = 1;
    vigil_api *api = NULL;
    ck_assert_int_eq(vigil_api_new(&api, &o), VIGIL_OK);
    treq a = {.path = "/healthz", .headers = {"Origin: https://ops.example.com"}};
    vigil_api_response *r = run(api, &a);
    expect(r, 200, NULL);
    ck_assert_str_eq(vigil_api_response_header(r, "Access-Control-Allow-Origin"),
                     "https://ops.example.com");
    ck_assert_str_eq(vigil_api_response_header(r, "Vary"), "Origin");
    vigil_api_response_free(r);
    treq b = {.path = "/healthz", .headers = {"Origin: https://evil.example.com"}};
    r = run(api, &b);
    expect(r, 200, NULL);
    ck_assert_ptr_null(vigil_api_response_header(r, "Access-Control-Allow-Origin"));
    vigil_api_response_free(r);
    treq pre = {
        .method = "OPTIONS",
        .path = "/metrics",
        .headers = {"Origin: https://ops.example.com", "Access-Control-Request-Method: GET"}};
    r = run(api, &pre);
    expect(r, 204, "");
    ck_assert_str_eq(vigil_api_response_header(r, "Access-Control-Allow-Methods"), "GET");
    ck_assert_ptr_nonnull(
        strstr(vigil_api_response_header(r, "Access-Control-Allow-Headers"), "Authorization"));
    vigil_api_response_free(r);
    treq pre2 = {
        .method = "OPTIONS", .path = "/metrics", .headers = {"Origin: https://evil.example.com"}};
    expect_free(run(api, &pre2), 405, NULL);
    vigil_api_free(api);
    const char *empty[] = {""};
    o.allowed_origins = empty;
    ck_assert_int_eq(vigil_api_new(&api, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "allowed origin 0 is empty");
}
END_TEST

/* ---- asynchronous answers ------------------------------------------------------- */

static void *late_finish(void *arg)
{
    vigil__api_call *call = arg;
    usleep(50 * 1000);
    vigil__api_resp_json(vigil__api_call_response(call), 202, "{\"late\":true}", 13);
    vigil__api_finish(call);
    return NULL;
}

static pthread_t g_late;

static void late_route(vigil__api_call *call, void *payload)
{
    (void)payload;
    ck_assert_int_eq(pthread_create(&g_late, NULL, late_finish, call), 0);
}

typedef struct done_rec {
    pthread_mutex_t mu;
    int calls;
    vigil_api_response *resp;
} done_rec;

static void on_done(vigil_api_response *resp, void *payload)
{
    done_rec *d = payload;
    pthread_mutex_lock(&d->mu);
    d->calls++;
    d->resp = resp;
    pthread_mutex_unlock(&d->mu);
}

START_TEST(async_answers)
{
    vigil_api *api = api_plain();
    ck_assert_int_eq(vigil__api_route(api, "GET", "/late", 0, 0, late_route, NULL), VIGIL_OK);
    done_rec d = {PTHREAD_MUTEX_INITIALIZER, 0, NULL};
    vigil_api_request req = VIGIL_API_REQUEST_INIT;
    req.method = "GET";
    req.path = "/late";
    vigil_api_response *r = NULL;
    ck_assert_int_eq(vigil_api_response_new(&r), VIGIL_OK);
    ck_assert_int_eq(vigil_api_submit(api, &req, r, on_done, &d), VIGIL_OK);
    pthread_mutex_lock(&d.mu);
    int early = d.calls;
    pthread_mutex_unlock(&d.mu);
    ck_assert_int_eq(early, 0); /* answered later, from another thread */
    pthread_join(g_late, NULL);
    ck_assert_int_eq(d.calls, 1);
    ck_assert_ptr_eq(d.resp, r);
    expect(r, 202, "{\"late\":true}");
    vigil_api_response_free(r);
    /* the blocking form waits for it */
    treq t = {.path = "/late"};
    r = run(api, &t);
    expect(r, 202, "{\"late\":true}");
    vigil_api_response_free(r);
    pthread_join(g_late, NULL);
    /* a synchronous route answers before submit returns */
    done_rec d2 = {PTHREAD_MUTEX_INITIALIZER, 0, NULL};
    req.path = "/healthz";
    ck_assert_int_eq(vigil_api_response_new(&r), VIGIL_OK);
    ck_assert_int_eq(vigil_api_submit(api, &req, r, on_done, &d2), VIGIL_OK);
    ck_assert_int_eq(d2.calls, 1);
    ck_assert_int_eq(vigil_api_submit(api, &req, r, NULL, NULL), VIGIL_EINVAL);
    vigil_api_response_free(r);
    vigil_api_free(api);
}
END_TEST

/* ---- metrics ------------------------------------------------------------------------ */

/* Runs `promtool check metrics` on `text` when promtool is installed;
 * returns -1 when it is not. */
static int promtool_check(const char *text)
{
    const char *cands[] = {"/usr/bin/promtool", "/usr/local/bin/promtool"};
    const char *tool = NULL;
    for (size_t i = 0; i < 2 && !tool; i++)
        if (access(cands[i], X_OK) == 0)
            tool = cands[i];
    if (!tool)
        return -1;
    const char *dir = vt_tmpdir();
    const char *in = vt_write_file(dir, "metrics.txt", text, strlen(text));
    char inpath[512], outpath[512];
    snprintf(inpath, sizeof(inpath), "%s", in);
    snprintf(outpath, sizeof(outpath), "%s/promtool.out", dir);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, inpath, O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, outpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    char *argv[] = {(char *)tool, "check", "metrics", NULL};
    pid_t pid;
    ck_assert_int_eq(posix_spawn(&pid, tool, &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        char out[4096] = "";
        FILE *f = fopen(outpath, "r");
        if (f) {
            size_t n = fread(out, 1, sizeof(out) - 1, f);
            out[n] = '\0';
            fclose(f);
        }
        ck_abort_msg("promtool check metrics failed:\n%s\n--- input:\n%s", out, text);
    }
    return 0;
}

START_TEST(prometheus_registry_text)
{
    vigil__prom *p = NULL;
    ck_assert_int_eq(vigil__prom_new(&p), VIGIL_OK);
    vigil__prom_family *c = NULL, *h = NULL, *g = NULL;
    const char *const lab[] = {"route", NULL};
    const double b[] = {0.1, 1};
    ck_assert_int_eq(vigil__prom_counter(p, &c, "t_requests_total", "Requests.", lab), VIGIL_OK);
    ck_assert_int_eq(vigil__prom_histogram(p, &h, "t_latency_seconds", "Latency.", NULL, b, 2),
                     VIGIL_OK);
    ck_assert_int_eq(vigil__prom_gauge(p, &g, "t_depth", "Depth.", NULL), VIGIL_OK);
    const char *v1[] = {"/a\"b\\c\nd"};
    vigil__prom_add(c, v1, 2);
    vigil__prom_observe(h, NULL, 0.05);
    vigil__prom_observe(h, NULL, 0.5);
    vigil__prom_observe(h, NULL, 7);
    vigil__prom_set(g, NULL, 3.5);
    ck_assert(vigil__prom_value(c, v1) == 2);
    ck_assert(vigil__prom_value(h, NULL) == 3);
    vigil_buf out = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil__prom_render(p, &out), VIGIL_OK);
    ck_assert_str_eq(out.ptr, "# HELP t_requests_total Requests.\n"
                              "# TYPE t_requests_total counter\n"
                              "t_requests_total{route=\"/a\\\"b\\\\c\\nd\"} 2\n"
                              "# HELP t_latency_seconds Latency.\n"
                              "# TYPE t_latency_seconds histogram\n"
                              "t_latency_seconds_bucket{le=\"0.10000000000000001\"} 1\n"
                              "t_latency_seconds_bucket{le=\"1\"} 2\n"
                              "t_latency_seconds_bucket{le=\"+Inf\"} 3\n"
                              "t_latency_seconds_sum 7.5499999999999998\n"
                              "t_latency_seconds_count 3\n"
                              "# HELP t_depth Depth.\n"
                              "# TYPE t_depth gauge\n"
                              "t_depth 3.5\n");
    promtool_check(out.ptr);
    vigil_buf_dispose(&out);
    vigil__prom_free(p);
}
END_TEST

START_TEST(metrics_route_counts_requests)
{
    vigil_api *api = api_plain();
    treq h = {.path = "/healthz"};
    expect_free(run(api, &h), 200, NULL);
    expect_free(run(api, &h), 200, NULL);
    treq nf = {.path = "/zzz"};
    expect_free(run(api, &nf), 404, NULL);
    treq m = {.path = "/metrics"};
    vigil_api_response *r = run(api, &m);
    expect(r, 200, NULL);
    ck_assert_str_eq(vigil_api_response_header(r, "Content-Type"),
                     "text/plain; version=0.0.4; charset=utf-8");
    const char *body = vigil_api_response_body(r, NULL);
    ck_assert_ptr_nonnull(
        strstr(body, "vigil_http_requests_total{route=\"/healthz\",code=\"200\"} 2\n"));
    ck_assert_ptr_nonnull(
        strstr(body, "vigil_http_requests_total{route=\"unmatched\",code=\"404\"} 1\n"));
    ck_assert_ptr_nonnull(
        strstr(body, "vigil_http_request_duration_seconds_count{route=\"/healthz\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(body, "vigil_http_requests_in_flight 1\n"));
    promtool_check(body);
    vigil_api_response_free(r);
    vigil_buf b = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil_api_metrics_text(api, &b), VIGIL_OK);
    ck_assert_ptr_nonnull(strstr(b.ptr, "# TYPE vigil_http_requests_total counter"));
    vigil_buf_dispose(&b);
    ck_assert_int_eq(vigil_api_metrics_text(NULL, &b), VIGIL_EINVAL);
    vigil_api_free(api);
}
END_TEST

/* ---- out of memory ------------------------------------------------------------- */

static int op_new(void *ctx)
{
    vigil_api **out = ctx;
    setenv("VT_OOM", TOK_READ "," TOK_ADMIN, 1);
    vigil_api_token t = {"dash", "VT_OOM", NULL, VIGIL_API_SCOPE_READ};
    const char *origins[] = {"https://a.example"};
    vigil_api_options o = VIGIL_API_OPTIONS_INIT;
    o.tokens = &t;
    o.ntokens = 1;
    o.prefix = "/vigil";
    o.allowed_origins = origins;
    o.nallowed_origins = 1;
    return vigil_api_new(out, &o);
}

static void cleanup_new(void *ctx)
{
    vigil_api **out = ctx;
    vigil_api_free(*out);
    *out = NULL;
}

START_TEST(oom_sweep)
{
    vigil_api *api = NULL;
    long fails = vt_oom_sweep(op_new, cleanup_new, &api, 0);
    ck_assert_int_gt(fails, 5);

    /* Under every failing allocation a request is still answered (200 or
     * 500) and nothing leaks. */
    vt_alloc_install();
    ck_assert_int_eq(op_new(&api), VIGIL_OK);
    treq warm = {.path = "/vigil/metrics", .headers = {"Authorization: Bearer " TOK_READ}};
    expect_free(run(api, &warm), 200, NULL);
    long base = vt_alloc_live();
    int saw_500 = 0;
    for (long n = 0; n < 400; n++) {
        vigil_api_response *r = NULL;
        ck_assert_int_eq(vigil_api_response_new(&r), VIGIL_OK);
        vigil_http_header hs[] = {{"Authorization", "Bearer " TOK_READ},
                                  {"Origin", "https://a.example"}};
        vigil_api_request req = VIGIL_API_REQUEST_INIT;
        req.method = "GET";
        req.path = "/vigil/metrics";
        req.query = "a=1&b=2";
        req.headers = hs;
        req.nheaders = 2;
        vt_alloc_fail_at(n, 0);
        int rc = vigil_api_handle(api, &req, r);
        long used = vt_alloc_count();
        vt_alloc_fail_at(-1, 0);
        ck_assert_int_eq(rc, VIGIL_OK);
        int s = vigil_api_response_status(r);
        ck_assert_msg(s == 200 || s == 500, "allocation %ld failing gave status %d", n, s);
        saw_500 |= s == 500;
        vigil_api_response_free(r);
        /* at most the one-time label sets of 500 answers may remain */
        ck_assert_msg(vt_alloc_live() - base <= 16, "allocation %ld failing leaked %ld blocks", n,
                      vt_alloc_live() - base);
        if (n >= used)
            break;
    }
    ck_assert(saw_500);
    vigil_api_free(api);
}
END_TEST

static Suite *api_suite(void)
{
    Suite *s = suite_create("api");
    TCase *tc = tcase_create("api");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, options_and_request_init);
    tcase_add_test(tc, healthz_and_errors);
    tcase_add_test(tc, error_bodies_use_the_json_escaper);
    tcase_add_test(tc, prefix_mount);
    tcase_add_test(tc, route_without_answer_is_500);
    tcase_add_test(tc, bad_arguments);
    tcase_add_test(tc, tokens_and_scopes);
    tcase_add_test(tc, tokens_reload_and_rotation);
    tcase_add_test(tc, token_sources_refused);
    tcase_add_test(tc, auth_callback_replaces_tokens);
    tcase_add_test(tc, content_type_and_encoding);
    tcase_add_test(tc, body_limits_and_gzip);
    tcase_add_test(tc, query_parsing);
    tcase_add_test(tc, cors_only_for_allowed_origins);
    tcase_add_test(tc, async_answers);
    tcase_add_test(tc, prometheus_registry_text);
    tcase_add_test(tc, metrics_route_counts_requests);
    tcase_add_test(tc, oom_sweep);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(api_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
