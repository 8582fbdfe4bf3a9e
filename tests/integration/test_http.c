/* lib/http against real servers on loopback: a small threaded HTTP/1.1
 * server written here (keep-alive, echo, big and slow answers, redirects)
 * and the library's own TLS server with the test CA (tls_fixtures.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http/http.h"
#include "testutil.h"
#include "tls_fixtures.h"
#include "vigil/api.h"
#include "vigil/httpd.h"

#define MAX_CONN 64
#define BIG_LEN  (2u << 20)

typedef struct server {
    int lfd, port;
    int stop[2]; /* readable once the server stops */
    pthread_t acceptor;
    pthread_t conns[MAX_CONN];
    int nconns;
    pthread_mutex_t mu;
    int connections, requests;
} server;

static server g_srv;

typedef struct conn_arg {
    server *srv;
    int fd;
} conn_arg;

static int send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n <= 0)
            return -1; /* the client went away */
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static int respond(int fd, int status, const char *extra, const char *body, size_t len, int close_)
{
    char head[1024];
    int n = snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%s%s\r\n", status,
                     len, close_ ? "Connection: close\r\n" : "", extra);
    if (send_all(fd, head, (size_t)n))
        return -1;
    return send_all(fd, body, len);
}

/* Reads one request (head and Content-Length body) into req; its length, or -1. */
static ssize_t read_request(int fd, char *req, size_t size)
{
    size_t n = 0;
    char *end = NULL;
    while (!end) {
        if (n == size - 1)
            return -1;
        ssize_t r = recv(fd, req + n, size - 1 - n, 0);
        if (r <= 0)
            return -1;
        n += (size_t)r;
        req[n] = '\0';
        end = strstr(req, "\r\n\r\n");
    }
    size_t head = (size_t)(end + 4 - req), body = 0;
    const char *cl = strcasestr(req, "\r\nContent-Length:");
    if (cl && cl < end)
        body = (size_t)strtoul(cl + 17, NULL, 10);
    while (n < head + body && n < size - 1) {
        ssize_t r = recv(fd, req + n, size - 1 - n, 0);
        if (r <= 0)
            return -1;
        n += (size_t)r;
    }
    req[n] = '\0';
    return (ssize_t)n;
}

static void *conn_main(void *p)
{
    conn_arg *a = p;
    server *s = a->srv;
    static char big[BIG_LEN];
    char req[16384];
    for (;;) {
        ssize_t n = read_request(a->fd, req, sizeof(req));
        if (n < 0)
            break;
        char method[16] = "", path[256] = "";
        sscanf(req, "%15s %255s", method, path);
        pthread_mutex_lock(&s->mu);
        s->requests++;
        pthread_mutex_unlock(&s->mu);
        int rc = 0;
        if (strcmp(path, "/ok") == 0) {
            rc = respond(a->fd, 200, "X-Test:  yes \r\nRetry-After: 7\r\n", "hello vigil", 11, 0);
        } else if (strcmp(path, "/echo") == 0) {
            rc = respond(a->fd, 200, "Content-Type: text/plain\r\n", req, (size_t)n, 0);
        } else if (strcmp(path, "/big") == 0) {
            memset(big, 'x', sizeof(big));
            rc = respond(a->fd, 200, "", big, sizeof(big), 0);
        } else if (strcmp(path, "/redir") == 0) {
            rc = respond(a->fd, 302, "Location: /ok\r\n", "", 0, 0);
        } else if (strcmp(path, "/ftp") == 0) {
            char h[128];
            snprintf(h, sizeof(h), "Location: ftp://127.0.0.1:%d/file\r\n", s->port);
            rc = respond(a->fd, 302, h, "", 0, 0);
        } else if (strcmp(path, "/slow") == 0) {
            struct pollfd pfd = {s->stop[0], POLLIN, 0};
            poll(&pfd, 1, 5000); /* far beyond any test's patience; ends at stop */
            rc = respond(a->fd, 200, "", "late", 4, 1);
        } else if (strcmp(path, "/quick-then-slow") == 0) {
            /* the head and a first piece at once, the rest after 400 ms */
            const char *h = "HTTP/1.1 200 X\r\nContent-Length: 8\r\nConnection: close\r\n\r\nfirst";
            rc = send_all(a->fd, h, strlen(h));
            usleep(400 * 1000);
            if (!rc)
                rc = send_all(a->fd, "end", 3);
        } else {
            rc = respond(a->fd, 404, "", "no", 2, 0);
        }
        if (rc)
            break;
    }
    close(a->fd);
    free(a);
    return NULL;
}

static void *accept_main(void *p)
{
    server *s = p;
    for (;;) {
        struct pollfd pfd[2] = {{s->lfd, POLLIN, 0}, {s->stop[0], POLLIN, 0}};
        if (poll(pfd, 2, -1) < 0 && errno != EINTR)
            break;
        if (pfd[1].revents)
            break;
        if (!(pfd[0].revents & POLLIN))
            continue;
        int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        conn_arg *a = malloc(sizeof(*a));
        a->srv = s;
        a->fd = fd;
        pthread_mutex_lock(&s->mu);
        s->connections++;
        if (s->nconns < MAX_CONN && pthread_create(&s->conns[s->nconns], NULL, conn_main, a) == 0) {
            s->nconns++;
        } else {
            close(fd);
            free(a);
        }
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

static void server_start(void)
{
    server *s = &g_srv;
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    ck_assert_int_eq(pipe(s->stop), 0);
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(s->lfd, 16), 0);
    socklen_t len = sizeof(a);
    getsockname(s->lfd, (struct sockaddr *)&a, &len);
    s->port = ntohs(a.sin_port);
    ck_assert_int_eq(pthread_create(&s->acceptor, NULL, accept_main, s), 0);
}

static void server_stop(void)
{
    server *s = &g_srv;
    ck_assert_int_eq(write(s->stop[1], "x", 1), 1);
    pthread_join(s->acceptor, NULL);
    shutdown(s->lfd, SHUT_RDWR);
    for (int i = 0; i < s->nconns; i++)
        pthread_join(s->conns[i], NULL);
    close(s->lfd);
    close(s->stop[0]);
    close(s->stop[1]);
    pthread_mutex_destroy(&s->mu);
}

static int counter(int *field)
{
    pthread_mutex_lock(&g_srv.mu);
    int v = *field;
    pthread_mutex_unlock(&g_srv.mu);
    return v;
}

static vigil__http *g_http;
static vigil__http_response g_resp;

static void setup(void)
{
    vt_alloc_install();
    server_start();
    ck_assert_int_eq(vigil__http_new(&g_http), VIGIL_OK);
    vigil__http_response r = VIGIL__HTTP_RESPONSE_INIT;
    g_resp = r;
}

static void teardown(void)
{
    vigil__http_free(g_http);
    vigil__http_response_dispose(&g_resp);
    server_stop();
}

static const char *url(const char *path)
{
    static char buf[256];
    snprintf(buf, sizeof(buf), "http://127.0.0.1:%d%s", g_srv.port, path);
    return buf;
}

static int get(const char *path, vigil__http_request *req)
{
    req->url = url(path);
    return vigil__http_perform(g_http, req, &g_resp);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- plain exchanges ------------------------------------------------------------- */

START_TEST(get_status_body_headers_timings)
{
    vigil__http_request req = VIGIL__HTTP_REQUEST_INIT;
    ck_assert_int_eq(get("/ok", &req), VIGIL_OK);
    ck_assert_int_eq(g_resp.status, 200);
    ck_assert_str_eq(g_resp.body.ptr, "hello vigil");
    ck_assert_int_eq(g_resp.clipped, 0);
    ck_assert_str_eq(g_resp.reason, "");
    ck_assert_str_eq(g_resp.error, "");
    char v[64];
    ck_assert_str_eq(vigil__http_response_header(&g_resp, "x-test", v, sizeof(v)), "yes");
    ck_assert_str_eq(vigil__http_response_header(&g_resp, "Retry-After", v, sizeof(v)), "7");
    ck_assert_ptr_null(vigil__http_response_header(&g_resp, "X-Absent", v, sizeof(v)));
    ck_assert_ptr_null(vigil__http_response_header(&g_resp, "X-Test", v, 3)); /* too long */
    const vigil__http_timings *t = &g_resp.timings;
    ck_assert_int_gt(t->connect_us, 0);
    ck_assert_int_ge(t->connect_us, t->dns_us);
    ck_assert_int_eq(t->tls_us, 0); /* no TLS over http */
    ck_assert_int_ge(t->first_byte_us, t->connect_us);
    ck_assert_int_ge(t->total_us, t->first_byte_us);
    ck_assert_int_eq(g_resp.has_cert_expiry, 0);
    /* a 404 is an answer too */
    ck_assert_int_eq(get("/nothing", &req), VIGIL_OK);
    ck_assert_int_eq(g_resp.status, 404);
    ck_assert_str_eq(g_resp.body.ptr, "no");
    ck_assert_ptr_null(vigil__http_response_header(&g_resp, "X-Test", v, sizeof(v)));
}
END_TEST

START_TEST(post_method_headers_and_body)
{
    const char *hdr[] = {"Content-Type: application/json", "X-Token: secret", "Expect:"};
    vigil__http_request req = VIGIL__HTTP_REQUEST_INIT;
    req.headers = hdr;
    req.nheaders = 3;
    req.body = "{\"a\":1}";
    req.body_len = 7;
    req.user_agent = "vigil-test/1";
    ck_assert_int_eq(get("/echo", &req), VIGIL_OK);
    ck_assert_int_eq(g_resp.status, 200);
    const char *e = g_resp.body.ptr;
    ck_assert_msg(strncmp(e, "POST /echo HTTP/1.1\r\n", 21) == 0, "%s", e);
    ck_assert_ptr_nonnull(strstr(e, "\r\nX-Token: secret\r\n"));
    ck_assert_ptr_nonnull(strstr(e, "\r\nContent-Type: application/json\r\n"));
    ck_assert_ptr_nonnull(strstr(e, "\r\nUser-Agent: vigil-test/1\r\n"));
    ck_assert_ptr_null(strstr(e, "Expect:"));
    ck_assert_ptr_nonnull(strstr(e, "\r\n\r\n{\"a\":1}"));

    req.method = "PUT";
    ck_assert_int_eq(get("/echo", &req), VIGIL_OK);
    ck_assert_msg(strncmp(g_resp.body.ptr, "PUT /echo HTTP/1.1\r\n", 20) == 0, "%s",
                  g_resp.body.ptr);
    vigil__http_request plain = VIGIL__HTTP_REQUEST_INIT;
    plain.method = "DELETE";
    ck_assert_int_eq(get("/echo", &plain), VIGIL_OK);
    ck_assert_msg(strncmp(g_resp.body.ptr, "DELETE /echo HTTP/1.1\r\n", 23) == 0, "%s",
                  g_resp.body.ptr);
    plain.method = NULL;
    ck_assert_int_eq(get("/echo", &plain), VIGIL_OK);
    ck_assert_msg(strncmp(g_resp.body.ptr, "GET /echo HTTP/1.1\r\n", 20) == 0, "%s",
                  g_resp.body.ptr);
    ck_assert_ptr_null(strstr(g_resp.body.ptr, "User-Agent"));
}
END_TEST

START_TEST(connection_is_kept_or_fresh)
{
    vigil__http_request req = VIGIL__HTTP_REQUEST_INIT;
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(get("/ok", &req), VIGIL_OK);
        ck_assert_int_eq(g_resp.status, 200);
    }
    ck_assert_int_eq(counter(&g_srv.requests), 3);
    ck_assert_int_eq(counter(&g_srv.connections), 1); /* one connection, kept alive */
    req.fresh_connection = 1;
    ck_assert_int_eq(get("/ok", &req), VIGIL_OK);
    ck_assert_int_eq(get("/ok", &req), VIGIL_OK);
    ck_assert_int_eq(counter(&g_srv.connections), 3);
}
END_TEST

/* ---- limits ---------------------------------------------------------------------- */

START_TEST(size_cap)
{
    vigil__http_request req = VIGIL__HTTP_REQUEST_INIT;
    /* the default cap (1 MiB) refuses 2 MiB: VIGIL_ELIMIT, nothing kept */
    ck_assert_int_eq(get("/big", &req), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "http: the response body exceeds 1048576 bytes");
    ck_assert_uint_eq(g_resp.body.size, 0);
    ck_assert_int_eq(g_resp.status, 200);
    req.max_response = 1000;
    ck_assert_int_eq(get("/big", &req), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "exceeds 1000 bytes");
    ck_assert_uint_eq(g_resp.body.size, 0);
    /* the handle is still usable afterwards */
    ck_assert_int_eq(get("/ok", &req), VIGIL_OK);
    ck_assert_str_eq(g_resp.body.ptr, "hello vigil");
    /* clip: the first bytes kept, the rest read and dropped */
    req.overflow = VIGIL__HTTP_OVERFLOW_CLIP;
    ck_assert_int_eq(get("/big", &req), VIGIL_OK);
    ck_assert_uint_eq(g_resp.body.size, 1000);
    ck_assert_int_eq(g_resp.clipped, 1);
    /* stop: the first bytes kept, the transfer ended there */
    req.overflow = VIGIL__HTTP_OVERFLOW_STOP;
    ck_assert_int_eq(get("/big", &req), VIGIL_OK);
    ck_assert_uint_eq(g_resp.body.size, 1000);
    ck_assert_int_eq(g_resp.clipped, 1);
    /* a cap large enough: all of it */
    req.overflow = VIGIL__HTTP_OVERFLOW_FAIL;
    req.max_response = BIG_LEN;
    ck_assert_int_eq(get("/big", &req), VIGIL_OK);
    ck_assert_uint_eq(g_resp.body.size, BIG_LEN);
    ck_assert_int_eq(g_resp.clipped, 0);
}
END_TEST

START_TEST(redirect_is_not_followed)
{
    vigil__http_request req = VIGIL__HTTP_REQUEST_INIT;
    ck_assert_int_eq(get("/redir", &req), VIGIL_OK);
    ck_assert_int_eq(g_resp.status, 302);
    char v[64];
    ck_assert_str_eq(vigil__http_response_header(&g_resp, "Location", v, sizeof(v)), "/ok");
    ck_assert_int_eq(counter(&g_srv.requests), 1); /* /ok was never asked */
    /* followed only when asked, and only to http or https */
    req.follow_redirects = 1;
    req.max_redirects = 3;
    ck_assert_int_eq(get("/redir", &req), VIGIL_OK);
    ck_assert_int_eq(g_resp.status, 200);
    ck_assert_str_eq(g_resp.body.ptr, "hello vigil");
    ck_assert_ptr_null(vigil__http_response_header(&g_resp, "Location", v, sizeof(v)));
    ck_assert_int_eq(counter(&g_srv.requests), 3);
    ck_assert_int_eq(get("/ftp", &req), VIGIL_ENETWORK);
    ck_assert_int_eq(counter(&g_srv.requests), 4);
}
END_TEST

START_TEST(timeout)
{
    vigil__http_request req = VIGIL__HTTP_REQUEST_INIT;
    req.timeout_ms = 300;
    int64_t t0 = mono_ms();
    ck_assert_int_eq(get("/slow", &req), VIGIL_ETIMEOUT);
    int64_t took = mono_ms() - t0;
    vt_assert_error(VIGIL_ETIMEOUT, "http: ");
    ck_assert_msg(strstr(vigil_error_last()->message, "127.0.0.1") == NULL,
                  "the message names the URL: %s", vigil_error_last()->message);
    ck_assert_int_ge(took, 250);
    ck_assert_int_lt(took, 2000);
    ck_assert_int_eq(g_resp.status, 0);
    ck_assert_str_eq(g_resp.reason, "Timeout was reached");
    ck_assert_str_ne(g_resp.error, "");
}
END_TEST

START_TEST(refused_is_a_network_error)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd); /* nothing listens there now */
    char u[128];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/", ntohs(a.sin_port));
    vigil__http_request req = VIGIL__HTTP_REQUEST_INIT;
    req.url = u;
    ck_assert_int_eq(vigil__http_perform(g_http, &req, &g_resp), VIGIL_ENETWORK);
    vt_assert_error(VIGIL_ENETWORK, "http: ");
    ck_assert_int_eq(g_resp.status, 0);
    ck_assert_str_eq(g_resp.reason, "Couldn't connect to server");
    /* other schemes are refused before any connection */
    req.url = "ftp://127.0.0.1/";
    ck_assert_int_eq(vigil__http_perform(g_http, &req, &g_resp), VIGIL_ENETWORK);
    ck_assert_str_eq(g_resp.reason, "Unsupported protocol");
    ck_assert_int_eq(vigil__http_perform(NULL, &req, &g_resp), VIGIL_EINVAL);
    req.url = NULL;
    ck_assert_int_eq(vigil__http_perform(g_http, &req, &g_resp), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "http: NULL argument");
}
END_TEST

/* ---- cancel ---------------------------------------------------------------------- */

static void *write_later(void *p)
{
    int fd = *(int *)p;
    usleep(200 * 1000);
    ck_assert_int_eq(write(fd, "x", 1), 1);
    return NULL;
}

START_TEST(cancel_fd_aborts_a_slow_transfer)
{
    int pfd[2];
    ck_assert_int_eq(pipe(pfd), 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, write_later, &pfd[1]), 0);
    vigil__http_request req = VIGIL__HTTP_REQUEST_INIT;
    req.cancel_fd = pfd[0];
    int64_t t0 = mono_ms();
    ck_assert_int_eq(get("/slow", &req), VIGIL_ECLOSED);
    int64_t took = mono_ms() - t0;
    pthread_join(t, NULL);
    vt_assert_error(VIGIL_ECLOSED, "http: the transfer was cancelled");
    ck_assert_int_ge(took, 150);
    ck_assert_int_lt(took, 1000); /* promptly: not at the next 1 s poll */
    ck_assert_str_eq(g_resp.reason, "cancelled");

    /* already readable, with a grace period: the transfer may go on that long */
    req.cancel_grace_ms = 300;
    t0 = mono_ms();
    ck_assert_int_eq(get("/slow", &req), VIGIL_ECLOSED);
    took = mono_ms() - t0;
    ck_assert_int_ge(took, 250);
    ck_assert_int_lt(took, 1500);
    /* ... and a transfer that ends within it succeeds */
    req.cancel_grace_ms = 3000;
    ck_assert_int_eq(get("/quick-then-slow", &req), VIGIL_OK);
    ck_assert_str_eq(g_resp.body.ptr, "firstend");
    /* no grace: refused before anything is read */
    req.cancel_grace_ms = 0;
    ck_assert_int_eq(get("/quick-then-slow", &req), VIGIL_ECLOSED);
    close(pfd[0]);
    close(pfd[1]);
}
END_TEST

static int cancel_after(void *p)
{
    int64_t *at = p;
    return mono_ms() >= *at;
}

START_TEST(cancel_callback)
{
    int64_t at = mono_ms() + 200;
    vigil__http_request req = VIGIL__HTTP_REQUEST_INIT;
    req.cancel_cb = cancel_after;
    req.cancel_payload = &at;
    int64_t t0 = mono_ms();
    ck_assert_int_eq(get("/slow", &req), VIGIL_ECLOSED);
    int64_t took = mono_ms() - t0;
    ck_assert_int_ge(took, 150);
    ck_assert_int_lt(took, 1000);
    at = mono_ms() + 60000;
    ck_assert_int_eq(get("/ok", &req), VIGIL_OK);
}
END_TEST

/* ---- TLS: the library's server with the test CA --------------------------------------- */

typedef struct tls_srv {
    vigil_api *api;
    vigil_httpd *httpd;
    char url[128];
} tls_srv;

static void tls_start(tls_srv *s, const char *dir, int client_ca)
{
    char cert[512], key[512], ca[512];
    snprintf(cert, sizeof(cert), "%s",
             vt_write_file(dir, "s.pem", TLS_SERVER_PEM, strlen(TLS_SERVER_PEM)));
    snprintf(key, sizeof(key), "%s",
             vt_write_file(dir, "s.key", TLS_SERVER_KEY, strlen(TLS_SERVER_KEY)));
    snprintf(ca, sizeof(ca), "%s", vt_write_file(dir, "ca.pem", TLS_CA_PEM, strlen(TLS_CA_PEM)));
    vigil_api_options ao = VIGIL_API_OPTIONS_INIT;
    ao.logger.min_level = VIGIL_LOG_OFF;
    ck_assert_int_eq(vigil_api_new(&s->api, &ao), VIGIL_OK);
    vigil_httpd_options ho = VIGIL_HTTPD_OPTIONS_INIT;
    ho.listen = "127.0.0.1:0";
    ho.tls_cert = cert;
    ho.tls_key = key;
    ho.tls_client_ca = client_ca ? ca : NULL;
    ho.logger.min_level = VIGIL_LOG_OFF;
    ck_assert_msg(vigil_httpd_new(&s->httpd, s->api, &ho) == VIGIL_OK, "%s",
                  vigil_error_last()->message);
    ck_assert_int_eq(vigil_httpd_start(s->httpd), VIGIL_OK);
    snprintf(s->url, sizeof(s->url), "https://127.0.0.1:%d/healthz", vigil_httpd_port(s->httpd));
}

static void tls_stop(tls_srv *s)
{
    vigil_httpd_quiesce(s->httpd);
    vigil_httpd_free(s->httpd);
    vigil_api_free(s->api);
}

START_TEST(tls_with_the_test_ca)
{
    const char *dir = vt_tmpdir();
    char ca[512], ccert[512], ckey[512];
    tls_srv s;
    tls_start(&s, dir, 0);
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    vigil__http_request req = VIGIL__HTTP_REQUEST_INIT;
    req.url = s.url;
    req.cert_expiry = 1;
    /* not trusted without the CA */
    ck_assert_int_eq(vigil__http_perform(g_http, &req, &g_resp), VIGIL_ENETWORK);
    ck_assert_int_eq(g_resp.status, 0);
    ck_assert_str_ne(g_resp.reason, "");
    /* trusted through ca_file: the answer, the certificate's expiry, a TLS timing */
    req.ca_file = ca;
    ck_assert_msg(vigil__http_perform(g_http, &req, &g_resp) == VIGIL_OK, "%s",
                  vigil_error_last()->message);
    ck_assert_int_eq(g_resp.status, 200);
    ck_assert_str_eq(g_resp.body.ptr, "{\"status\":\"ok\"}");
    ck_assert_int_eq(g_resp.has_cert_expiry, 1);
    struct tm tm = {.tm_year = 2126 - 1900, .tm_mon = 10, .tm_mday = 3, .tm_min = 25, .tm_sec = 45};
    ck_assert_int_eq(g_resp.cert_expiry_s, (int64_t)timegm(&tm));
    ck_assert_int_gt(g_resp.timings.tls_us, 0);
    ck_assert_int_ge(g_resp.timings.tls_us, g_resp.timings.connect_us);
    /* verification off: answered as well */
    req.ca_file = NULL;
    req.insecure = 1;
    ck_assert_int_eq(vigil__http_perform(g_http, &req, &g_resp), VIGIL_OK);
    ck_assert_int_eq(g_resp.status, 200);
    tls_stop(&s);

    /* a server that wants a client certificate signed by the CA */
    tls_start(&s, dir, 1);
    snprintf(ccert, sizeof(ccert), "%s",
             vt_write_file(dir, "c.pem", TLS_CLIENT_PEM, strlen(TLS_CLIENT_PEM)));
    snprintf(ckey, sizeof(ckey), "%s",
             vt_write_file(dir, "c.key", TLS_CLIENT_KEY, strlen(TLS_CLIENT_KEY)));
    vigil__http_request creq = VIGIL__HTTP_REQUEST_INIT;
    creq.url = s.url;
    creq.ca_file = ca;
    ck_assert_int_eq(vigil__http_perform(g_http, &creq, &g_resp), VIGIL_OK);
    ck_assert_int_eq(g_resp.status, 401);
    creq.cert_file = ccert;
    creq.key_file = ckey;
    creq.fresh_connection = 1;
    ck_assert_msg(vigil__http_perform(g_http, &creq, &g_resp) == VIGIL_OK, "%s",
                  vigil_error_last()->message);
    ck_assert_int_eq(g_resp.status, 200);
    tls_stop(&s);
}
END_TEST

/* ---- URLs, dates, allocation failures -------------------------------------------------- */

START_TEST(url_parse_and_dates)
{
    vigil__http_url u;
    char why[128];
    ck_assert_int_eq(
        vigil__http_url_parse(&u, "HTTPS://user:pw@Host.example:8443/p?q=1", why, sizeof(why)),
        VIGIL_OK);
    ck_assert_str_eq(u.scheme, "https");
    ck_assert_str_eq(u.host, "Host.example");
    ck_assert_str_eq(u.port, "8443");
    ck_assert_str_eq(u.user, "user");
    ck_assert_str_eq(u.query, "q=1");
    ck_assert_str_eq(why, "");
    vigil__http_url_dispose(&u);
    ck_assert_int_eq(vigil__http_url_parse(&u, "http://h/", NULL, 0), VIGIL_OK);
    ck_assert_ptr_null(u.port);
    ck_assert_ptr_null(u.user);
    ck_assert_ptr_null(u.query);
    vigil__http_url_dispose(&u);
    ck_assert_int_eq(vigil__http_url_parse(&u, "no scheme here", why, sizeof(why)), VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE, "http: not a valid URL: ");
    ck_assert_str_ne(why, "");
    vigil__http_url_dispose(&u);

    int64_t t = 0;
    ck_assert_int_eq(vigil__http_date_parse("Sun, 06 Nov 1994 08:49:37 GMT", &t), VIGIL_OK);
    ck_assert_int_eq(t, 784111777);
    ck_assert_int_eq(vigil__http_date_parse("Sunday, 06-Nov-94 08:49:37 GMT", &t), VIGIL_OK);
    ck_assert_int_eq(t, 784111777);
    ck_assert_int_eq(vigil__http_date_parse("soon", &t), VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE, "http: not an HTTP date");
}
END_TEST

typedef struct oom_ctx {
    vigil__http *h;
    vigil__http_response r;
} oom_ctx;

static int oom_op(void *p)
{
    oom_ctx *x = p;
    int rc = vigil__http_new(&x->h);
    vigil__http_request req = VIGIL__HTTP_REQUEST_INIT;
    req.url = url("/ok");
    if (!rc)
        rc = vigil__http_perform(x->h, &req, &x->r);
    if (!rc && strcmp(x->r.body.ptr, "hello vigil") != 0)
        rc = VIGIL_ERROR;
    return rc;
}

static void oom_free(void *p)
{
    oom_ctx *x = p;
    vigil__http_free(x->h);
    vigil__http_response_dispose(&x->r);
    memset(x, 0, sizeof(*x));
}

START_TEST(oom_sweep_new_and_get)
{
    oom_ctx x;
    memset(&x, 0, sizeof(x));
    ck_assert_int_gt(vt_oom_sweep(oom_op, oom_free, &x, 0), 1);
}
END_TEST

static Suite *http_suite(void)
{
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("http");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, get_status_body_headers_timings);
    tcase_add_test(tc, post_method_headers_and_body);
    tcase_add_test(tc, connection_is_kept_or_fresh);
    tcase_add_test(tc, size_cap);
    tcase_add_test(tc, redirect_is_not_followed);
    tcase_add_test(tc, timeout);
    tcase_add_test(tc, refused_is_a_network_error);
    tcase_add_test(tc, cancel_fd_aborts_a_slow_transfer);
    tcase_add_test(tc, cancel_callback);
    tcase_add_test(tc, tls_with_the_test_ca);
    tcase_add_test(tc, url_parse_and_dates);
    tcase_add_test(tc, oom_sweep_new_and_get);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(http_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
