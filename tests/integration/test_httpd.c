/* httpd: the built-in server over real HTTP on an ephemeral loopback port
 * (libcurl and raw sockets): option checks, the hub's routes and error
 * statuses, request logging without secrets, event streams, every limit
 * (Content-Length, idle timeout, per-IP, headers, chunked bodies), quiesce
 * and drain, TLS and client certificates. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "httptest.h"
#include "tls_fixtures.h"
#include "testutil.h"

#define TOK_INGEST "httpd-ingest-token-000000"
#define TOK_READ   "httpd-read-token-11111111"

/* ---- log capture ------------------------------------------------------------- */

static pthread_mutex_t g_log_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_log[256 * 1024];
static size_t g_log_len;

static void log_cb(const vigil_log_record *r, void *payload)
{
    (void)payload;
    pthread_mutex_lock(&g_log_mu);
    int n = snprintf(g_log + g_log_len, sizeof(g_log) - g_log_len, "%s %s %s %s\n",
                     vigil_log_level_name(r->level), r->component ? r->component : "-", r->message,
                     r->fields);
    if (n > 0 && g_log_len + (size_t)n < sizeof(g_log))
        g_log_len += (size_t)n;
    pthread_mutex_unlock(&g_log_mu);
}

static void log_reset(void)
{
    pthread_mutex_lock(&g_log_mu);
    g_log_len = 0;
    g_log[0] = '\0';
    pthread_mutex_unlock(&g_log_mu);
}

static int log_has(const char *needle)
{
    pthread_mutex_lock(&g_log_mu);
    int r = strstr(g_log, needle) != NULL;
    pthread_mutex_unlock(&g_log_mu);
    return r;
}

/* Waits (up to 5 s) for a log line containing `needle`. */
static int log_wait(const char *needle)
{
    for (int i = 0; i < 500; i++) {
        if (log_has(needle))
            return 1;
        usleep(10000);
    }
    return 0;
}

/* ---- a server with a hub ------------------------------------------------------ */

typedef struct srv {
    vigil_hub *hub;
    vigil_api *api;
    vigil_httpd *httpd;
    int port;
    char base[96];
} srv;

static vigil_logger test_logger(void)
{
    vigil_logger lg = {log_cb, NULL, VIGIL_LOG_INFO};
    return lg;
}

static void srv_start(srv *s, vigil_httpd_options *ho, int tokens, uint64_t max_body)
{
    memset(s, 0, sizeof(*s));
    vigil_hub_options o = VIGIL_HUB_OPTIONS_INIT;
    o.store_url = "sqlite::memory:";
    o.events_interval_ms = 3600 * 1000;
    o.logger = test_logger();
    ck_assert_int_eq(vigil_hub_new(&s->hub, &o), VIGIL_OK);
    ck_assert_int_eq(vigil_hub_start(s->hub), VIGIL_OK);
    setenv("VT_HTTPD_INGEST", TOK_INGEST, 1);
    setenv("VT_HTTPD_READ", TOK_READ, 1);
    vigil_api_token toks[] = {{"agents", "VT_HTTPD_INGEST", NULL, VIGIL_API_SCOPE_INGEST},
                              {"dash", "VT_HTTPD_READ", NULL, VIGIL_API_SCOPE_READ}};
    vigil_api_options ao = VIGIL_API_OPTIONS_INIT;
    if (tokens) {
        ao.tokens = toks;
        ao.ntokens = 2;
    }
    ao.max_body = max_body;
    ao.max_inflated = 1024 * 1024;
    ao.logger = test_logger();
    ck_assert_int_eq(vigil_api_new(&s->api, &ao), VIGIL_OK);
    ck_assert_int_eq(vigil_hub_mount(s->hub, s->api), VIGIL_OK);
    vigil_httpd_options d = VIGIL_HTTPD_OPTIONS_INIT;
    if (!ho)
        ho = &d;
    if (!ho->listen)
        ho->listen = "127.0.0.1:0";
    ho->logger = test_logger();
    if (!ho->max_body)
        ho->max_body = max_body;
    ck_assert_msg(vigil_httpd_new(&s->httpd, s->api, ho) == VIGIL_OK, "%s",
                  vigil_error_last()->message);
    ck_assert_msg(vigil_httpd_start(s->httpd) == VIGIL_OK, "%s", vigil_error_last()->message);
    s->port = vigil_httpd_port(s->httpd);
    ck_assert_int_gt(s->port, 0);
    snprintf(s->base, sizeof(s->base), "%s://127.0.0.1:%d", ho->tls_cert ? "https" : "http",
             s->port);
}

static void srv_stop(srv *s)
{
    vigil_httpd_quiesce(s->httpd);
    vigil_hub_stop(s->hub);
    vigil_httpd_free(s->httpd);
    vigil_api_free(s->api);
    vigil_hub_free(s->hub);
}

static long get(const srv *s, const char *path, const http_opts *o, http_result *r)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", s->base, path);
    http_do("GET", url, NULL, 0, o, r);
    return r->status;
}

static long post(const srv *s, const char *path, const char *body, size_t len, const http_opts *o,
                 http_result *r)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", s->base, path);
    http_do("POST", url, body, len ? len : strlen(body), o, r);
    return r->status;
}

static void expect_http(http_result *r, long status, const char *body)
{
    ck_assert_msg(r->curl == CURLE_OK, "curl: %s", curl_easy_strerror(r->curl));
    ck_assert_msg(r->status == status, "status %ld, expected %ld: %s", r->status, status, r->body);
    if (body)
        ck_assert_str_eq(r->body, body);
    http_result_free(r);
}

/* ---- options ------------------------------------------------------------------- */

static int new_with(vigil_api *api, const char *listen, int insecure)
{
    vigil_httpd_options o = VIGIL_HTTPD_OPTIONS_INIT;
    o.listen = listen;
    o.insecure = insecure;
    o.logger = test_logger();
    vigil_httpd *h = NULL;
    int rc = vigil_httpd_new(&h, api, &o);
    vigil_httpd_free(h);
    return rc;
}

START_TEST(options_refused)
{
    vigil_httpd_options o;
    ck_assert_int_eq(vigil_httpd_options_init(&o, VIGIL_HTTPD_OPTIONS_VERSION), VIGIL_OK);
    ck_assert_int_eq(vigil_httpd_options_init(&o, 0), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION,
                    "httpd options: version 0 is not supported (this library reads version 2)");
    ck_assert_int_eq(vigil_httpd_options_init(NULL, 1), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "httpd options: NULL");
    vigil_api *api = NULL;
    ck_assert_int_eq(vigil_api_new(&api, NULL), VIGIL_OK);
    static const char *bad[] = {"nonsense",      "127.0.0.1", "127.0.0.1:99999",
                                "[::1]",         ":80",       "host.example:80",
                                "127.0.0.1:80x", "[::1:80",   "1.2.3.4:"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(new_with(api, bad[i], 0) == VIGIL_EINVAL, "accepted %s", bad[i]);
        vt_assert_error(VIGIL_EINVAL, "listen: expected HOST:PORT");
    }
    ck_assert_int_eq(new_with(api, "0.0.0.0:0", 0), VIGIL_EPERM);
    vt_assert_error(VIGIL_EPERM, "refusing to listen on 0.0.0.0:0 without authentication");
    ck_assert_int_eq(new_with(api, "[::]:0", 0), VIGIL_EPERM);
    ck_assert_int_eq(new_with(api, "[::1]:0", 0), VIGIL_OK);
    ck_assert_int_eq(new_with(api, "localhost:0", 0), VIGIL_OK);
    ck_assert_int_eq(new_with(api, "127.9.9.9:0", 0), VIGIL_OK);

    /* insecure: allowed, started, and warned about loudly */
    log_reset();
    vigil_httpd_options io = VIGIL_HTTPD_OPTIONS_INIT;
    io.listen = "0.0.0.0:0";
    io.insecure = 1;
    io.logger = test_logger();
    vigil_httpd *h = NULL;
    ck_assert_int_eq(vigil_httpd_new(&h, api, &io), VIGIL_OK);
    ck_assert_int_eq(vigil_httpd_start(h), VIGIL_OK);
    ck_assert_int_eq(vigil_httpd_start(h), VIGIL_EINVAL);
    ck_assert(log_has("warn httpd INSECURE: listening beyond loopback with no authentication"));
    vigil_httpd_free(h);

    vigil_httpd_options t = VIGIL_HTTPD_OPTIONS_INIT;
    t.listen = "127.0.0.1:0";
    t.tls_key = "/x.key";
    ck_assert_int_eq(vigil_httpd_new(&h, api, &t), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "tls cert and key go together");
    t.tls_cert = "/nonexistent/cert.pem";
    ck_assert_int_eq(vigil_httpd_new(&h, api, &t), VIGIL_EIO);
    vt_assert_error(VIGIL_EIO, "cannot read TLS certificate /nonexistent/cert.pem");
    t.tls_cert = NULL;
    t.tls_key = NULL;
    t.tls_client_ca = "/ca.pem";
    ck_assert_int_eq(vigil_httpd_new(&h, api, &t), VIGIL_EINVAL);
    t.tls_client_ca = NULL;
    t.timeout_ms = -5;
    ck_assert_int_eq(vigil_httpd_new(&h, api, &t), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_httpd_new(&h, NULL, NULL), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_httpd_quiesce(NULL), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_httpd_port(NULL), 0);
    ck_assert_str_eq(vigil_httpd_address(NULL), "");
    vigil_httpd_free(NULL);

    /* a port already in use */
    srv s;
    srv_start(&s, NULL, 0, 0);
    char busy[64];
    snprintf(busy, sizeof(busy), "127.0.0.1:%d", s.port);
    vigil_httpd_options bo = VIGIL_HTTPD_OPTIONS_INIT;
    bo.listen = busy;
    bo.logger = test_logger();
    ck_assert_int_eq(vigil_httpd_new(&h, api, &bo), VIGIL_OK);
    ck_assert_int_eq(vigil_httpd_start(h), VIGIL_ENETWORK);
    char want[128];
    snprintf(want, sizeof(want), "httpd: cannot listen on %s: %s", busy, strerror(EADDRINUSE));
    ck_assert_str_eq(vigil_error_last()->message, want);
    ck_assert_int_eq(vigil_error_last()->code, VIGIL_ENETWORK);
    vigil_httpd_free(h);
    srv_stop(&s);
    /* a port bound (not even listening) by a plain socket of another owner */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t sl = sizeof(sa);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    snprintf(busy, sizeof(busy), "127.0.0.1:%d", ntohs(sa.sin_port));
    ck_assert_int_eq(vigil_httpd_new(&h, api, &bo), VIGIL_OK);
    ck_assert_int_eq(vigil_httpd_start(h), VIGIL_ENETWORK);
    snprintf(want, sizeof(want), "httpd: cannot listen on %s: Address already in use", busy);
    ck_assert_str_eq(vigil_error_last()->message, want);
    vigil_httpd_free(h);
    close(fd);
    vigil_api_free(api);
}
END_TEST

/* ---- routes over HTTP ------------------------------------------------------------ */

START_TEST(routes_over_http)
{
    log_reset();
    srv s;
    srv_start(&s, NULL, 1, 1024 * 1024);
    char want[128];
    snprintf(want, sizeof(want), "info httpd listening address=127.0.0.1:%d ", s.port);
    ck_assert(log_has(want));
    snprintf(want, sizeof(want), "127.0.0.1:%d", s.port);
    ck_assert_str_eq(vigil_httpd_address(s.httpd), want);

    http_result r;
    char hv[128];
    ck_assert_int_eq(get(&s, "/healthz", NULL, &r), 200);
    ck_assert_str_eq(r.body, "{\"status\":\"ok\"}");
    ck_assert_uint_eq(strlen(http_header(&r, "X-Request-Id", hv, sizeof(hv))), 16);
    ck_assert_str_eq(http_header(&r, "Content-Type", hv, sizeof(hv)), "application/json");
    http_result_free(&r);

    http_opts ing = {.token = TOK_INGEST};
    const char *body = "{\"agent\":\"h1\",\"batch_id\":\"h-1\",\"metrics\":[{\"name\":\"up\","
                       "\"value\":1,\"ts\":1000,\"tags\":{\"host\":\"h1\"}}]}";
    post(&s, "/v1/ingest", body, 0, &ing, &r);
    expect_http(&r, 202, "{\"accepted\":1,\"duplicate\":false}");
    post(&s, "/v1/ingest", body, 0, &ing, &r);
    expect_http(&r, 202, "{\"accepted\":0,\"duplicate\":true}");

    /* gzip body */
    unsigned char gz[1024];
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    const char *b2 =
        "{\"batch_id\":\"h-2\",\"metrics\":[{\"name\":\"up\",\"value\":0,\"ts\":2000}]}";
    zs.next_in = (Bytef *)(uintptr_t)b2;
    zs.avail_in = (uInt)strlen(b2);
    zs.next_out = gz;
    zs.avail_out = sizeof(gz);
    deflate(&zs, Z_FINISH);
    size_t gzn = sizeof(gz) - zs.avail_out;
    deflateEnd(&zs);
    http_opts gzo = {.token = TOK_INGEST, .encoding = "gzip"};
    post(&s, "/v1/ingest", (const char *)gz, gzn, &gzo, &r);
    expect_http(&r, 202, "{\"accepted\":1,\"duplicate\":false}");

    post(&s, "/v1/ingest", "{\"metrics\":[", 0, &ing, &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert(strncmp(r.body, "{\"error\":{\"code\":\"invalid_json\"", 31) == 0);
    http_result_free(&r);
    post(&s, "/v1/ingest", "{\"metrics\":[{\"name\":\"x\",\"value\":true,\"ts\":1}]}", 0, &ing, &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_ptr_nonnull(strstr(r.body, "\"path\":\"metrics[0].value\""));
    http_result_free(&r);
    post(&s, "/v1/ingest",
         "{\"metrics\":[{\"name\":\"x\",\"value\":1,\"ts\":1,"
         "\"tags\":{\"a\":\"\\u0000\"}}]}",
         0, &ing, &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_ptr_nonnull(strstr(r.body, "\"code\":\"invalid_metric\""));
    http_result_free(&r);

    post(&s, "/v1/ingest", body, 0, NULL, &r);
    expect_http(&r, 401,
                "{\"error\":{\"code\":\"unauthorized\",\"message\":\"missing bearer token\","
                "\"path\":\"\"}}");
    http_opts bad = {.token = "not-the-token-at-all-000"};
    post(&s, "/v1/ingest", body, 0, &bad, &r);
    expect_http(&r, 401, NULL);
    http_opts rd = {.token = TOK_READ};
    post(&s, "/v1/ingest", body, 0, &rd, &r);
    expect_http(&r, 403,
                "{\"error\":{\"code\":\"forbidden\",\"message\":\"token \\\"dash\\\" lacks the "
                "ingest scope\",\"path\":\"\"}}");
    http_opts txt = {.token = TOK_INGEST, .ctype = "text/plain"};
    post(&s, "/v1/ingest", body, 0, &txt, &r);
    expect_http(&r, 415, NULL);
    get(&s, "/v1/nothing", &rd, &r);
    expect_http(&r, 404,
                "{\"error\":{\"code\":\"not_found\",\"message\":\"no such route\",\"path\":\"\"}}");
    get(&s, "/v1/ingest", &ing, &r);
    ck_assert_str_eq(http_header(&r, "Allow", hv, sizeof(hv)), "POST");
    expect_http(&r, 405, NULL);
    get(&s, "/v1/query?name=up&from=0&match=host%3Ah1", &rd, &r);
    expect_http(
        &r, 200,
        "{\"series\":[{\"name\":\"up\",\"tags\":{\"host\":\"h1\"},\"points\":[[1000,1]]}]}");
    get(&s, "/readyz", NULL, &r);
    expect_http(&r, 200, "{\"status\":\"ready\"}");
    get(&s, "/metrics", &rd, &r);
    ck_assert_ptr_nonnull(strstr(r.body, "vigil_ingest_samples_total 2\n"));
    expect_http(&r, 200, NULL);

    /* one logfmt line per request, with its request id */
    ck_assert(log_wait("info httpd request request_id="));
    ck_assert(log_has("method=POST path=/v1/ingest status=202 "));
    ck_assert(log_has("method=GET path=/v1/ingest status=405 "));
    ck_assert(!log_has(TOK_INGEST));
    ck_assert(!log_has(TOK_READ));
    srv_stop(&s);
}
END_TEST

/* ---- event streams ---------------------------------------------------------------- */

typedef struct sse_client {
    char url[256];
    pthread_mutex_t mu;
    char buf[16384];
    size_t len;
    int stop;
    CURLcode rc;
    long status;
} sse_client;

static size_t sse_write(char *p, size_t size, size_t n, void *ud)
{
    sse_client *c = ud;
    size_t len = size * n;
    pthread_mutex_lock(&c->mu);
    if (c->len + len < sizeof(c->buf)) {
        memcpy(c->buf + c->len, p, len);
        c->len += len;
        c->buf[c->len] = '\0';
    }
    int stop = c->stop;
    pthread_mutex_unlock(&c->mu);
    return stop ? 0 : len;
}

static void *sse_main(void *arg)
{
    sse_client *c = arg;
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, c->url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sse_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    c->rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &c->status);
    curl_easy_cleanup(h);
    return NULL;
}

static int sse_wait(sse_client *c, const char *needle)
{
    for (int i = 0; i < 1000; i++) {
        pthread_mutex_lock(&c->mu);
        int found = strstr(c->buf, needle) != NULL;
        pthread_mutex_unlock(&c->mu);
        if (found)
            return 1;
        usleep(5000);
    }
    return 0;
}

START_TEST(events_over_http)
{
    log_reset();
    srv s;
    srv_start(&s, NULL, 1, 0);
    sse_client c;
    memset(&c, 0, sizeof(c));
    pthread_mutex_init(&c.mu, NULL);
    snprintf(c.url, sizeof(c.url), "%s/v1/events?access_token=%s", s.base, TOK_READ);
    pthread_t t;
    pthread_create(&t, NULL, sse_main, &c);
    ck_assert(sse_wait(&c, ": connected\n"));
    ck_assert_int_eq(vigil_hub_publish(s.hub, "policy", "{\"fired\":\"demo_down\"}"), VIGIL_OK);
    ck_assert(sse_wait(&c, "event: policy\ndata: {\"fired\":\"demo_down\"}\n\n"));
    ck_assert_int_eq(vigil_hub_publish(s.hub, "action", "{\"n\":2}"), VIGIL_OK);
    ck_assert(sse_wait(&c, "event: action\ndata: {\"n\":2}\n\n"));
    /* the server stopping ends the stream cleanly */
    vigil_httpd_quiesce(s.httpd);
    vigil_httpd_stop(s.httpd);
    pthread_join(t, NULL);
    ck_assert_int_eq(c.status, 200);
    ck_assert_msg(c.rc == CURLE_OK, "curl: %s", curl_easy_strerror(c.rc));
    ck_assert(log_wait("path=/v1/events status=200"));
    ck_assert(!log_has(TOK_READ)); /* ?access_token= is never logged */
    srv_stop(&s);
}
END_TEST

START_TEST(client_gone_from_stream)
{
    srv s;
    srv_start(&s, NULL, 0, 0);
    sse_client c;
    memset(&c, 0, sizeof(c));
    pthread_mutex_init(&c.mu, NULL);
    snprintf(c.url, sizeof(c.url), "%s/v1/events", s.base);
    pthread_t t;
    pthread_create(&t, NULL, sse_main, &c);
    ck_assert(sse_wait(&c, ": connected\n"));
    pthread_mutex_lock(&c.mu);
    c.stop = 1; /* the client aborts at its next write */
    pthread_mutex_unlock(&c.mu);
    vigil_hub_publish(s.hub, "x", "{}");
    pthread_join(t, NULL);
    ck_assert_int_eq(c.rc, CURLE_WRITE_ERROR);
    /* the server notices at the next event and releases the subscription */
    vigil_hub_stats st = VIGIL_HUB_STATS_INIT;
    for (int i = 0; i < 500; i++) {
        vigil_hub_publish(s.hub, "x", "{}");
        vigil_hub_stats_get(s.hub, &st);
        if (st.subscribers == 0)
            break;
        usleep(10000);
    }
    ck_assert_uint_eq(st.subscribers, 0);
    http_result r;
    get(&s, "/healthz", NULL, &r);
    expect_http(&r, 200, NULL);
    srv_stop(&s);
}
END_TEST

/* ---- limits --------------------------------------------------------------------- */

START_TEST(huge_content_length_refused_unread)
{
    srv s;
    srv_start(&s, NULL, 0, 8 * 1024 * 1024);
    int fd = raw_connect(NULL, s.port);
    ck_assert_int_ge(fd, 0);
    const char *hdr =
        "POST /v1/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Content-Length: 1073741824\r\n\r\n{\"metrics\":[";
    raw_send(fd, hdr, strlen(hdr));
    char buf[4096];
    int closed;
    raw_recv(fd, buf, sizeof(buf), 5000, &closed);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 413", 12) == 0, "got %s", buf);
    ck_assert_ptr_nonnull(strstr(buf, "{\"error\":{\"code\":\"too_large\",\"message\":\"request "
                                      "body exceeds the limit of 8388608 bytes\",\"path\":\"\"}}"));
    ck_assert(closed);
    close(fd);
    /* a chunked body growing past the limit closes the connection */
    fd = raw_connect(NULL, s.port);
    const char *ch =
        "POST /v1/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n";
    raw_send(fd, ch, strlen(ch));
    char chunk[70000];
    memset(chunk, ' ', sizeof(chunk));
    char head[32];
    int hn = snprintf(head, sizeof(head), "%zx\r\n", sizeof(chunk) - 2);
    memcpy(chunk + sizeof(chunk) - 2, "\r\n", 2);
    for (int i = 0; i < 140; i++) {
        raw_send(fd, head, (size_t)hn);
        raw_send(fd, chunk, sizeof(chunk));
    }
    raw_recv(fd, buf, sizeof(buf), 5000, &closed);
    ck_assert(closed);
    ck_assert_ptr_null(strstr(buf, "HTTP/1.1 202"));
    close(fd);
    http_result r;
    get(&s, "/healthz", NULL, &r);
    expect_http(&r, 200, NULL);
    srv_stop(&s);
}
END_TEST

/* ---- authentication before the body; the global body budget ------------------------ */

/* Reads until `needle` arrived, the peer closed, or timeout_ms passed
 * without data; returns whether the needle arrived. */
static int recv_until(int fd, char *buf, size_t size, const char *needle, int timeout_ms)
{
    size_t got = 0;
    buf[0] = '\0';
    while (got < size - 1 && !strstr(buf, needle)) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, timeout_ms) <= 0)
            break;
        ssize_t n = recv(fd, buf + got, size - 1 - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
        buf[got] = '\0';
    }
    return strstr(buf, needle) != NULL;
}

typedef struct flood {
    int port;
    int next;    /* uploads started (atomic) */
    int ok401;   /* answered 401 without 100 Continue (atomic) */
    int bad;     /* anything else (atomic) */
    char *chunk; /* 1 MiB of body */
} flood;

#define FLOOD_UPLOADS 200
#define FLOOD_CONNS   64
#define UPLOAD_SIZE   (8 * 1024 * 1024)

static void *flood_main(void *arg)
{
    flood *f = arg;
    for (;;) {
        int i = __atomic_fetch_add(&f->next, 1, __ATOMIC_SEQ_CST);
        if (i >= FLOOD_UPLOADS)
            return NULL;
        int fd = raw_connect(NULL, f->port);
        if (fd < 0) {
            __atomic_add_fetch(&f->bad, 1, __ATOMIC_SEQ_CST);
            continue;
        }
        char hdr[256];
        int n = snprintf(
            hdr, sizeof(hdr),
            "POST /v1/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\n%s\r\n",
            UPLOAD_SIZE, i % 2 ? "" : "Expect: 100-continue\r\n");
        raw_send(fd, hdr, (size_t)n);
        if (i % 2) /* no Expect: the client sends its body regardless */
            for (int k = 0; k < UPLOAD_SIZE / (1024 * 1024); k++)
                raw_send(fd, f->chunk, 1024 * 1024);
        char buf[4096];
        int got = recv_until(fd, buf, sizeof(buf), "\"path\":\"\"}}", 10000);
        if (got && strncmp(buf, "HTTP/1.1 401", 12) == 0 && !strstr(buf, "100 Continue") &&
            strstr(buf, "missing bearer token"))
            __atomic_add_fetch(&f->ok401, 1, __ATOMIC_SEQ_CST);
        else if (!(i % 2) || buf[0])
            __atomic_add_fetch(&f->bad, 1, __ATOMIC_SEQ_CST);
        /* without Expect the answer may be lost to the reset of the close
         * (the server refuses to read the body); never anything else */
        close(fd);
    }
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long rss_kib(void)
{
    FILE *fp = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (fp && fgets(line, sizeof(line), fp))
        if (strncmp(line, "VmRSS:", 6) == 0)
            v = atol(line + 6);
    if (fp)
        fclose(fp);
    return v;
}

START_TEST(unauthenticated_uploads_never_read)
{
    srv s;
    vigil_httpd_options ho = VIGIL_HTTPD_OPTIONS_INIT;
    ho.max_buffered = 16 * 1024 * 1024;
    ho.threads = 2;
    srv_start(&s, &ho, 1, UPLOAD_SIZE);
    flood f;
    memset(&f, 0, sizeof(f));
    f.port = s.port;
    f.chunk = malloc(1024 * 1024);
    memset(f.chunk, '0', 1024 * 1024);
    long before = rss_kib();
    pthread_t th[FLOOD_CONNS];
    for (int i = 0; i < FLOOD_CONNS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, flood_main, &f), 0);
    for (int i = 0; i < FLOOD_CONNS; i++)
        pthread_join(th[i], NULL);
    long after = rss_kib();
    fprintf(stderr,
            "unauthenticated_uploads_never_read: %d x 8 MiB over %d connections: "
            "401 x %d, buffered peak %llu bytes, RSS %ld -> %ld KiB\n",
            FLOOD_UPLOADS, FLOOD_CONNS, f.ok401,
            (unsigned long long)vigil_httpd_buffered_peak(s.httpd), before, after);
    ck_assert_int_eq(f.bad, 0);
    ck_assert_int_ge(f.ok401, FLOOD_UPLOADS / 2); /* every one that waited for 100 Continue */
    ck_assert_uint_eq(vigil_httpd_buffered_peak(s.httpd), 0);

    /* authenticated uploads: two 8 MiB bodies fit max_buffered (16 MiB), a third is 503 */
    int fds[3];
    char buf[4096];
    char hdr[320];
    int hn =
        snprintf(hdr, sizeof(hdr),
                 "POST /v1/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 "Authorization: Bearer " TOK_INGEST "\r\nContent-Length: %d\r\n"
                 "Expect: 100-continue\r\n\r\n",
                 UPLOAD_SIZE);
    for (int i = 0; i < 2; i++) {
        fds[i] = raw_connect(NULL, s.port);
        raw_send(fds[i], hdr, (size_t)hn);
        ck_assert_msg(recv_until(fds[i], buf, sizeof(buf), "\r\n\r\n", 5000), "no answer");
        ck_assert_msg(strncmp(buf, "HTTP/1.1 100", 12) == 0, "got %s", buf);
    }
    fds[2] = raw_connect(NULL, s.port);
    raw_send(fds[2], hdr, (size_t)hn);
    ck_assert(recv_until(fds[2], buf, sizeof(buf), "\"path\":\"\"}}", 5000));
    ck_assert_msg(strncmp(buf, "HTTP/1.1 503", 12) == 0, "got %s", buf);
    ck_assert_ptr_nonnull(strstr(buf, "Retry-After: 1"));
    ck_assert_ptr_nonnull(strstr(buf,
                                 "{\"error\":{\"code\":\"overloaded\",\"message\":\"the server "
                                 "holds its limit of 16777216 bytes of request bodies; "
                                 "retry later\""));
    close(fds[2]);
    ck_assert_uint_eq(vigil_httpd_buffered_peak(s.httpd), 16 * 1024 * 1024);
    /* an upload given up frees its share: a new one is let in */
    close(fds[0]);
    int64_t deadline = now_ms() + 10000;
    int let_in = 0;
    while (!let_in && now_ms() < deadline) {
        int fd = raw_connect(NULL, s.port);
        raw_send(fd, hdr, (size_t)hn);
        recv_until(fd, buf, sizeof(buf), "\r\n\r\n", 5000);
        let_in = strncmp(buf, "HTTP/1.1 100", 12) == 0;
        close(fd);
    }
    ck_assert(let_in);
    close(fds[1]);
    ck_assert_uint_le(vigil_httpd_buffered_peak(s.httpd), 16 * 1024 * 1024);
    free(f.chunk);
    srv_stop(&s);
}
END_TEST

/* Open mode (no tokens) on loopback: a state-changing request must name a
 * loopback Host, so a page of another site whose name resolves to 127.0.0.1
 * (DNS rebinding) cannot post; reads are unaffected. */
START_TEST(open_mode_needs_loopback_host)
{
    srv s;
    srv_start(&s, NULL, 0, 1024 * 1024);
    const char *body = "{\"metrics\":[{\"name\":\"x\",\"value\":1,\"ts\":1}]}";
    const char *hosts[] = {"evil.example", "evil.example:7600", "127.0.0.1.evil.example",
                           "localhost",    "127.0.0.1:7600",    "[::1]:7600"};
    for (int i = 0; i < 6; i++) {
        int fd = raw_connect(NULL, s.port);
        char req[512];
        int n =
            snprintf(req, sizeof(req),
                     "POST /v1/ingest HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     hosts[i], strlen(body), body);
        raw_send(fd, req, (size_t)n);
        char buf[4096];
        int closed;
        raw_recv(fd, buf, sizeof(buf), 5000, &closed);
        close(fd);
        if (i < 3) {
            ck_assert_msg(strncmp(buf, "HTTP/1.1 403", 12) == 0, "%s: %s", hosts[i], buf);
            ck_assert_ptr_nonnull(strstr(
                buf, "{\"error\":{\"code\":\"forbidden\",\"message\":\"open mode (no tokens): "
                     "a state-changing request must name a loopback Host (127.0.0.1, "
                     "localhost or [::1])\",\"path\":\"\"}}"));
        } else {
            ck_assert_msg(strncmp(buf, "HTTP/1.1 202", 12) == 0, "%s: %s", hosts[i], buf);
        }
    }
    /* a read with another Host is answered */
    int fd = raw_connect(NULL, s.port);
    const char *get_req =
        "GET /healthz HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n";
    raw_send(fd, get_req, strlen(get_req));
    char buf[4096];
    int closed;
    raw_recv(fd, buf, sizeof(buf), 5000, &closed);
    close(fd);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 200", 12) == 0, "%s", buf);
    srv_stop(&s);
}
END_TEST

START_TEST(half_request_cut_at_timeout)
{
    vigil_httpd_options ho = VIGIL_HTTPD_OPTIONS_INIT;
    ho.timeout_ms = 1000;
    srv s;
    srv_start(&s, &ho, 0, 0);
    int a = raw_connect(NULL, s.port);
    int b = raw_connect(NULL, s.port);
    const char *half_headers = "POST /v1/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le";
    const char *half_body = "POST /v1/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                            "application/json\r\nContent-Length: 100\r\n\r\n{\"metr";
    raw_send(a, half_headers, strlen(half_headers));
    raw_send(b, half_body, strlen(half_body));
    /* others are unaffected meanwhile */
    http_result r;
    for (int i = 0; i < 3; i++) {
        get(&s, "/healthz", NULL, &r);
        expect_http(&r, 200, NULL);
    }
    char buf[1024];
    int closed_a, closed_b;
    raw_recv(a, buf, sizeof(buf), 10000, &closed_a);
    raw_recv(b, buf, sizeof(buf), 10000, &closed_b);
    ck_assert(closed_a);
    ck_assert(closed_b);
    close(a);
    close(b);
    get(&s, "/healthz", NULL, &r);
    expect_http(&r, 200, NULL);
    srv_stop(&s);
}
END_TEST

START_TEST(per_ip_limit)
{
    vigil_httpd_options ho = VIGIL_HTTPD_OPTIONS_INIT;
    ho.per_ip = 3;
    srv s;
    srv_start(&s, &ho, 0, 0);
    int fds[3];
    const char *slow = "GET /healthz HTTP/1.1\r\nHost: t\r\n";
    for (int i = 0; i < 3; i++) {
        fds[i] = raw_connect(NULL, s.port);
        ck_assert_int_ge(fds[i], 0);
        raw_send(fds[i], slow, strlen(slow));
    }
    usleep(100000);
    /* a fourth from the same address is closed without an answer */
    int extra = raw_connect(NULL, s.port);
    char buf[512];
    int closed = 0;
    if (extra >= 0) {
        raw_send(extra, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", 35);
        raw_recv(extra, buf, sizeof(buf), 5000, &closed);
        ck_assert(closed);
        ck_assert_ptr_null(strstr(buf, "200 OK"));
        close(extra);
    }
    /* another address is unaffected */
    http_opts other = {.interface = "127.0.0.2"};
    http_result r;
    get(&s, "/healthz", &other, &r);
    expect_http(&r, 200, NULL);
    /* the slow ones still get their answer once they finish */
    raw_send(fds[0], "\r\n", 2);
    raw_recv(fds[0], buf, sizeof(buf), 500, &closed);
    ck_assert(strncmp(buf, "HTTP/1.1 200", 12) == 0);
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    usleep(100000);
    get(&s, "/healthz", NULL, &r);
    expect_http(&r, 200, NULL);
    srv_stop(&s);
}
END_TEST

START_TEST(header_flood)
{
    srv s;
    srv_start(&s, NULL, 0, 0);
    int fd = raw_connect(NULL, s.port);
    const char *start = "GET /healthz HTTP/1.1\r\nHost: t\r\n";
    raw_send(fd, start, strlen(start));
    char line[128];
    memset(line, 'a', sizeof(line));
    for (int i = 0; i < 3000; i++) {
        int n = snprintf(line, sizeof(line), "X-Flood-%d: %0100d\r\n", i, i);
        raw_send(fd, line, (size_t)n);
    }
    raw_send(fd, "\r\n", 2);
    char buf[2048];
    int closed;
    raw_recv(fd, buf, sizeof(buf), 5000, &closed);
    ck_assert_msg(buf[0] == '\0' || strncmp(buf, "HTTP/1.1 4", 10) == 0, "got %s", buf);
    ck_assert_ptr_null(strstr(buf, "HTTP/1.1 200"));
    close(fd);
    /* many headers under the memory limit but over the count the api reads */
    http_result r;
    get(&s, "/healthz", NULL, &r);
    expect_http(&r, 200, NULL);
    srv_stop(&s);
}
END_TEST

typedef struct ing_thread {
    const srv *s;
    int id;
    int ok;
} ing_thread;

static void *ing_main(void *arg)
{
    ing_thread *t = arg;
    CURL *h = curl_easy_init();
    http_opts o = {.handle = h};
    for (int i = 0; i < 25; i++) {
        char body[4096];
        int n = snprintf(body, sizeof(body), "{\"batch_id\":\"t%d-%d\",\"metrics\":[", t->id, i);
        for (int k = 0; k < 20; k++)
            n += snprintf(body + n, sizeof(body) - (size_t)n,
                          "%s{\"name\":\"par\",\"value\":%d,\"ts\":%d,\"tags\":{\"t\":\"%d\"}}",
                          k ? "," : "", k, i * 100 + k + 1, t->id);
        snprintf(body + n, sizeof(body) - (size_t)n, "]}");
        http_result r;
        post(t->s, "/v1/ingest", body, 0, &o, &r);
        if (r.status == 202 && strcmp(r.body, "{\"accepted\":20,\"duplicate\":false}") == 0)
            t->ok++;
        http_result_free(&r);
    }
    curl_easy_cleanup(h);
    return NULL;
}

START_TEST(parallel_ingests_suspend_and_resume)
{
    srv s;
    srv_start(&s, NULL, 0, 0);
    pthread_t th[6];
    ing_thread ts[6];
    for (int i = 0; i < 6; i++) {
        ts[i] = (ing_thread){&s, i, 0};
        pthread_create(&th[i], NULL, ing_main, &ts[i]);
    }
    int ok = 0;
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        ok += ts[i].ok;
    }
    ck_assert_int_eq(ok, 150);
    vigil_hub_stats st = VIGIL_HUB_STATS_INIT;
    vigil_hub_stats_get(s.hub, &st);
    ck_assert_uint_eq(st.samples, 3000);
    srv_stop(&s);
}
END_TEST

START_TEST(quiesce_and_drain)
{
    srv s;
    srv_start(&s, NULL, 0, 0);
    http_result r;
    get(&s, "/healthz", NULL, &r);
    expect_http(&r, 200, NULL);
    ck_assert_int_eq(vigil_httpd_quiesce(s.httpd), VIGIL_OK);
    ck_assert_int_eq(vigil_httpd_quiesce(s.httpd), VIGIL_OK);
    ck_assert_int_eq(vigil_httpd_drain(s.httpd, 2000), VIGIL_OK);
    ck_assert_int_lt(raw_connect(NULL, s.port), 0);
    vigil_httpd_stop(s.httpd);
    vigil_httpd_stop(s.httpd);
    ck_assert_int_eq(vigil_httpd_drain(s.httpd, 10), VIGIL_OK);
    srv_stop(&s);
}
END_TEST

/* ---- TLS ---------------------------------------------------------------------- */

START_TEST(tls_and_client_certificates)
{
    const char *dir = vt_tmpdir();
    char cert[512], key[512], ca[512], ccert[512], ckey[512], rcert[512], rkey[512];
    snprintf(cert, sizeof(cert), "%s",
             vt_write_file(dir, "s.pem", TLS_SERVER_PEM, strlen(TLS_SERVER_PEM)));
    snprintf(key, sizeof(key), "%s",
             vt_write_file(dir, "s.key", TLS_SERVER_KEY, strlen(TLS_SERVER_KEY)));
    snprintf(ca, sizeof(ca), "%s", vt_write_file(dir, "ca.pem", TLS_CA_PEM, strlen(TLS_CA_PEM)));
    snprintf(ccert, sizeof(ccert), "%s",
             vt_write_file(dir, "c.pem", TLS_CLIENT_PEM, strlen(TLS_CLIENT_PEM)));
    snprintf(ckey, sizeof(ckey), "%s",
             vt_write_file(dir, "c.key", TLS_CLIENT_KEY, strlen(TLS_CLIENT_KEY)));
    snprintf(rcert, sizeof(rcert), "%s",
             vt_write_file(dir, "r.pem", TLS_ROGUE_PEM, strlen(TLS_ROGUE_PEM)));
    snprintf(rkey, sizeof(rkey), "%s",
             vt_write_file(dir, "r.key", TLS_ROGUE_KEY, strlen(TLS_ROGUE_KEY)));

    vigil_httpd_options ho = VIGIL_HTTPD_OPTIONS_INIT;
    ho.tls_cert = cert;
    ho.tls_key = key;
    srv s;
    srv_start(&s, &ho, 0, 0);
    http_opts tls = {.ca_pem = TLS_CA_PEM};
    http_result r;
    get(&s, "/healthz", &tls, &r);
    expect_http(&r, 200, "{\"status\":\"ok\"}");
    get(&s, "/healthz", NULL, &r); /* not trusted without the CA */
    ck_assert_int_ne(r.curl, CURLE_OK);
    http_result_free(&r);
    char plain[128];
    snprintf(plain, sizeof(plain), "http://127.0.0.1:%d/healthz", s.port);
    http_do("GET", plain, NULL, 0, NULL, &r);
    ck_assert_int_ne(r.status, 200);
    http_result_free(&r);
    srv_stop(&s);

    ho.tls_client_ca = ca;
    srv_start(&s, &ho, 0, 0);
    get(&s, "/healthz", &tls, &r);
    expect_http(&r, 401,
                "{\"error\":{\"code\":\"unauthorized\",\"message\":\"a client certificate signed "
                "by the configured CA is required\",\"path\":\"\"}}");
    http_opts good = {.ca_pem = TLS_CA_PEM, .cert_file = ccert, .key_file = ckey};
    get(&s, "/healthz", &good, &r);
    expect_http(&r, 200, "{\"status\":\"ok\"}");
    http_opts rogue = {.ca_pem = TLS_CA_PEM, .cert_file = rcert, .key_file = rkey};
    get(&s, "/healthz", &rogue, &r);
    ck_assert_int_ne(r.status, 200);
    http_result_free(&r);
    srv_stop(&s);
}
END_TEST

static Suite *httpd_suite(void)
{
    Suite *s = suite_create("httpd");
    TCase *tc = tcase_create("httpd");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, options_refused);
    tcase_add_test(tc, routes_over_http);
    tcase_add_test(tc, events_over_http);
    tcase_add_test(tc, client_gone_from_stream);
    tcase_add_test(tc, huge_content_length_refused_unread);
    tcase_add_test(tc, unauthenticated_uploads_never_read);
    tcase_add_test(tc, open_mode_needs_loopback_host);
    tcase_add_test(tc, half_request_cut_at_timeout);
    tcase_add_test(tc, per_ip_limit);
    tcase_add_test(tc, header_flood);
    tcase_add_test(tc, parallel_ingests_suspend_and_resume);
    tcase_add_test(tc, quiesce_and_drain);
    tcase_add_test(tc, tls_and_client_certificates);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    SRunner *sr = srunner_create(httpd_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
