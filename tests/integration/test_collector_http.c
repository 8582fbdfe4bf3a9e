/* The http collector against a small threaded HTTP/1.1 server on 127.0.0.1
 * started by the test: 200, 500, slow beyond the timeout, refused port,
 * redirects to http and to a refused scheme, bounded bodies. */
#include "collector_test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>
#include <unistd.h>

#define MAX_CONN 64

typedef struct {
    int lfd;
    int port;
    int stop[2]; /* readable once the server stops */
    pthread_t acceptor;
    pthread_t conns[MAX_CONN];
    int nconns;
    pthread_mutex_t mu;
    int requests;
} server;

static server g_srv;

typedef struct {
    server *srv;
    int fd;
} conn_arg;

static void send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n <= 0)
            return; /* the client went away (e.g. a bounded body) */
        data += n;
        len -= (size_t)n;
    }
}

static void respond(int fd, int status, const char *extra_headers, const char *body, size_t len)
{
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n", status,
                     len, extra_headers);
    send_all(fd, head, (size_t)n);
    send_all(fd, body, len);
}

static void *conn_main(void *p)
{
    conn_arg *a = p;
    char req[8192];
    size_t n = 0;
    while (n < sizeof(req) - 1) {
        ssize_t r = recv(a->fd, req + n, sizeof(req) - 1 - n, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
        req[n] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    req[n] = '\0';
    char path[256] = "";
    sscanf(req, "GET %255s", path);
    pthread_mutex_lock(&a->srv->mu);
    a->srv->requests++;
    pthread_mutex_unlock(&a->srv->mu);
    if (strcmp(path, "/ok") == 0) {
        respond(a->fd, 200, "", "hello vigil", 11);
    } else if (strcmp(path, "/500") == 0) {
        respond(a->fd, 500, "", "boom", 4);
    } else if (strcmp(path, "/slow") == 0) {
        struct pollfd pfd = {a->srv->stop[0], POLLIN, 0};
        poll(&pfd, 1, 5000); /* far beyond the check's timeout; ends at stop */
        respond(a->fd, 200, "", "late", 4);
    } else if (strcmp(path, "/ftp") == 0) {
        char h[128];
        snprintf(h, sizeof(h), "Location: ftp://127.0.0.1:%d/file\r\n", a->srv->port);
        respond(a->fd, 302, h, "", 0);
    } else if (strcmp(path, "/file") == 0) {
        respond(a->fd, 302, "Location: file:///etc/passwd\r\n", "", 0);
    } else if (strcmp(path, "/redir") == 0) {
        respond(a->fd, 302, "Location: /ok\r\n", "", 0);
    } else if (strcmp(path, "/loop") == 0) {
        respond(a->fd, 302, "Location: /loop\r\n", "", 0);
    } else if (strcmp(path, "/big") == 0) {
        size_t len = 4u << 20;
        char *body = malloc(len);
        memset(body, 'x', len);
        memcpy(body, "START", 5);
        memcpy(body + len - 3, "END", 3);
        respond(a->fd, 200, "", body, len);
        free(body);
    } else {
        respond(a->fd, 404, "", "no", 2);
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
    for (int i = 0; i < s->nconns; i++)
        pthread_join(s->conns[i], NULL);
    close(s->lfd);
    close(s->stop[0]);
    close(s->stop[1]);
    pthread_mutex_destroy(&s->mu);
}

static void http_setup(void)
{
    coll_setup();
    server_start();
}

static void http_teardown(void)
{
    server_stop();
    coll_teardown();
}

/* Runs one check of `path` with extra keys and returns the batch. */
static void check(const char *path, const char *extra)
{
    char flow[1024];
    snprintf(flow, sizeof(flow), "{type: http, name: c, url: \"http://127.0.0.1:%d%s\"%s%s}",
             g_srv.port, path, extra[0] ? ", " : "", extra);
    vigil_collector *c = must(flow, NULL);
    collect(c, 1000);
    vigil_collector_free(c);
}

START_TEST(http_ok)
{
    check("/ok", "timeout: 5s");
    ck_assert_double_eq(value_of(g_batch, "http_up", "check", "c"), 1);
    ck_assert_double_eq(value_of(g_batch, "http_status_code", "check", "c"), 200);
    double ms = value_of(g_batch, "http_latency_ms", "check", "c");
    ck_assert(ms >= 0 && ms < 5000);
    ck_assert_ptr_null(find(g_batch, "http_cert_days_left", NULL, NULL)); /* not https */
    ck_assert_uint_eq(vigil_batch_count(g_batch), 3);
    printf("http: loopback GET %.3f ms\n", ms);
    check("/ok", "expect_body: vigil, expect_status: 200");
    ck_assert_double_eq(value_of(g_batch, "http_up", "check", "c"), 1);
    check("/ok", "expect_body: nope");
    ck_assert_double_eq(value_of(g_batch, "http_up", "check", "c"), 0);
    ck_assert_double_eq(value_of(g_batch, "http_status_code", "check", "c"), 200);
    check("/ok", "expect_status: 204");
    ck_assert_double_eq(value_of(g_batch, "http_up", "check", "c"), 0);
    /* The label defaults to the URL. */
    char flow[256], url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok", g_srv.port);
    snprintf(flow, sizeof(flow), "{type: http, url: \"%s\"}", url);
    vigil_collector *c = must(flow, NULL);
    collect(c, 1);
    ck_assert_double_eq(value_of(g_batch, "http_up", "check", url), 1);
    vigil_collector_free(c);
}
END_TEST

START_TEST(http_server_error)
{
    check("/500", "");
    ck_assert_double_eq(value_of(g_batch, "http_up", "check", "c"), 0);
    ck_assert_double_eq(value_of(g_batch, "http_status_code", "check", "c"), 500);
    ck_assert_ptr_nonnull(find(g_batch, "http_latency_ms", NULL, NULL));
    check("/500", "expect_status: 500");
    ck_assert_double_eq(value_of(g_batch, "http_up", "check", "c"), 1);
    check("/missing", "");
    ck_assert_double_eq(value_of(g_batch, "http_status_code", "check", "c"), 404);
    ck_assert_double_eq(value_of(g_batch, "http_up", "check", "c"), 0);
}
END_TEST

START_TEST(http_slow_beyond_timeout)
{
    check("/slow", "timeout: 200ms");
    ck_assert_double_eq(value_of(g_batch, "http_up", "check", "c"), 0);
    ck_assert_ptr_null(find(g_batch, "http_status_code", NULL, NULL));
    ck_assert_ptr_null(find(g_batch, "http_latency_ms", NULL, NULL));
    ck_assert_uint_eq(vigil_batch_count(g_batch), 1);
}
END_TEST

START_TEST(http_refused_port)
{
    /* A port that was just free: nothing listens there. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    char flow[256];
    snprintf(flow, sizeof(flow), "{type: http, name: c, url: \"http://127.0.0.1:%d/\"}",
             ntohs(a.sin_port));
    vigil_collector *c = must(flow, NULL);
    collect(c, 1);
    ck_assert_double_eq(value_of(g_batch, "http_up", "check", "c"), 0);
    ck_assert_uint_eq(vigil_batch_count(g_batch), 1);
    ck_assert_uint_eq(vigil_collector_failures(c), 0); /* a down target is no collector failure */
    vigil_collector_free(c);
}
END_TEST

START_TEST(http_redirects)
{
    check("/redir", "");
    ck_assert_double_eq(value_of(g_batch, "http_up", "check", "c"), 1);
    ck_assert_double_eq(value_of(g_batch, "http_status_code", "check", "c"), 200);
    check("/redir", "follow_redirects: false");
    ck_assert_double_eq(value_of(g_batch, "http_up", "check", "c"), 1); /* 3xx is up */
    ck_assert_double_eq(value_of(g_batch, "http_status_code", "check", "c"), 302);
    check("/redir", "follow_redirects: false, expect_status: 200");
    ck_assert_double_eq(value_of(g_batch, "http_up", "check", "c"), 0);
    pthread_mutex_lock(&g_srv.mu);
    int before = g_srv.requests;
    pthread_mutex_unlock(&g_srv.mu);
    /* Redirects to another scheme are refused, not followed. */
    check("/ftp", "");
    ck_assert_double_eq(value_of(g_batch, "http_up", "check", "c"), 0);
    ck_assert_uint_eq(vigil_batch_count(g_batch), 1);
    check("/file", "");
    ck_assert_double_eq(value_of(g_batch, "http_up", "check", "c"), 0);
    pthread_mutex_lock(&g_srv.mu);
    int after = g_srv.requests;
    pthread_mutex_unlock(&g_srv.mu);
    ck_assert_int_eq(after - before, 2); /* the ftp:// target (this server) was never asked */
    check("/loop", "max_redirects: 3");
    ck_assert_double_eq(value_of(g_batch, "http_up", "check", "c"), 0);
}
END_TEST

START_TEST(http_body_is_bounded)
{
    check("/big", "max_body: 1KiB, expect_body: START");
    ck_assert_double_eq(value_of(g_batch, "http_up", "check", "c"), 1);
    ck_assert_double_eq(value_of(g_batch, "http_status_code", "check", "c"), 200);
    /* "END" lies beyond the first KiB: never read. */
    check("/big", "max_body: 1KiB, expect_body: END");
    ck_assert_double_eq(value_of(g_batch, "http_up", "check", "c"), 0);
    check("/big", "max_body: 8MiB, expect_body: END, timeout: 10s");
    ck_assert_double_eq(value_of(g_batch, "http_up", "check", "c"), 1);
}
END_TEST

START_TEST(http_https_without_server_is_down)
{
    /* TLS to a plain-HTTP port fails the handshake: down, no certificate days. */
    char flow[256];
    snprintf(flow, sizeof(flow),
             "{type: http, name: c, url: \"https://127.0.0.1:%d/ok\", "
             "timeout: 2s}",
             g_srv.port);
    vigil_collector *c = must(flow, NULL);
    collect(c, 1);
    ck_assert_double_eq(value_of(g_batch, "http_up", "check", "c"), 0);
    ck_assert_ptr_null(find(g_batch, "http_cert_days_left", NULL, NULL));
    vigil_collector_free(c);
}
END_TEST

/* ---- https: libmicrohttpd with TLS and a self-signed certificate for
 * 127.0.0.1 that expires on 2126-11-03 (made once with
 * `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1
 *  -days 36500 -nodes -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1`). */

static const char k_cert[] = "-----BEGIN CERTIFICATE-----\n"
                             "MIIBkTCCATagAwIBAgIUSEizpzzRF6DJdCDJxOIR4ZYbNuQwCgYIKoZIzj0EAwIw\n"
                             "FDESMBAGA1UEAwwJMTI3LjAuMC4xMCAXDTI2MTEyNzAwMTkxMFoYDzIxMjYxMTAz\n"
                             "MDAxOTEwWjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjO\n"
                             "PQMBBwNCAAT1oL/xwr2yBSP5LCV9PzyqA2l8saSYqsekrn6lgV2RihOzQ+BTrwIQ\n"
                             "JHhJUKm68qqHp7bTf6QklsvxG2UVfgw2o2QwYjAdBgNVHQ4EFgQUQ47307bCUVJP\n"
                             "kcQRt9+N1FO5KTwwHwYDVR0jBBgwFoAUQ47307bCUVJPkcQRt9+N1FO5KTwwDwYD\n"
                             "VR0TAQH/BAUwAwEB/zAPBgNVHREECDAGhwR/AAABMAoGCCqGSM49BAMCA0kAMEYC\n"
                             "IQCJ3vPr3GiuHFGEFbMIdBZJzHD7kk8a/S/ot0sYpIkO5AIhAN9iZwiGNtXD49iE\n"
                             "ytGdgnuVEtJOwuKWB/W2kuEhCr1C\n"
                             "-----END CERTIFICATE-----\n";

static const char k_key[] = "-----BEGIN PRIVATE KEY-----\n"
                            "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgQTsakM4ozA2NdlxP\n"
                            "V0iPQr/35ahS6cpd6GuZSpEDL9qhRANCAAT1oL/xwr2yBSP5LCV9PzyqA2l8saSY\n"
                            "qsekrn6lgV2RihOzQ+BTrwIQJHhJUKm68qqHp7bTf6QklsvxG2UVfgw2\n"
                            "-----END PRIVATE KEY-----\n";

static enum MHD_Result tls_answer(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)req_cls;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(6, (void *)"secure", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return ret;
}

START_TEST(https_certificate_days_left)
{
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        printf("https: libmicrohttpd without TLS, skipped\n");
        return;
    }
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL,
                                            NULL, tls_answer, NULL, MHD_OPTION_SOCK_ADDR,
                                            (struct sockaddr *)&a, MHD_OPTION_HTTPS_MEM_KEY, k_key,
                                            MHD_OPTION_HTTPS_MEM_CERT, k_cert, MHD_OPTION_END);
    ck_assert_ptr_nonnull(d);
    int port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
    const char *dir = fresh_dir();
    const char *ca = vt_write_file(dir, "ca.pem", k_cert, strlen(k_cert));
    char flow[1024];

    /* Not trusted by default: a self-signed certificate is down. */
    snprintf(flow, sizeof(flow),
             "{type: http, name: s, url: \"https://127.0.0.1:%d/\", "
             "timeout: 5s}",
             port);
    vigil_collector *c = must(flow, NULL);
    collect(c, 1);
    ck_assert_double_eq(value_of(g_batch, "http_up", "check", "s"), 0);
    vigil_collector_free(c);

    /* Trusted through ca_file: up, with the days left on the certificate. */
    int64_t now = (int64_t)time(NULL) * 1000;
    snprintf(flow, sizeof(flow),
             "{type: http, name: s, url: \"https://127.0.0.1:%d/\", "
             "ca_file: \"%s\", timeout: 5s, expect_body: secure}",
             port, ca);
    c = must(flow, NULL);
    collect(c, now);
    ck_assert_double_eq(value_of(g_batch, "http_up", "check", "s"), 1);
    ck_assert_double_eq(value_of(g_batch, "http_status_code", "check", "s"), 200);
    struct tm tm = {.tm_year = 2126 - 1900, .tm_mon = 10, .tm_mday = 3, .tm_min = 19, .tm_sec = 10};
    double expect = ((double)timegm(&tm) * 1000.0 - (double)now) / 86400000.0;
    double days = value_of(g_batch, "http_cert_days_left", "check", "s");
    ck_assert_double_eq_tol(days, expect, 0.001);
    printf("https: certificate days left %.1f\n", days);
    vigil_collector_free(c);

    /* Verification off: up as well, the days still reported. */
    snprintf(flow, sizeof(flow),
             "{type: http, name: s, url: \"https://127.0.0.1:%d/\", "
             "tls_verify: false}",
             port);
    c = must(flow, NULL);
    collect(c, now);
    ck_assert_double_eq(value_of(g_batch, "http_up", "check", "s"), 1);
    ck_assert_double_eq_tol(value_of(g_batch, "http_cert_days_left", "check", "s"), expect, 0.001);
    vigil_collector_free(c);
    MHD_stop_daemon(d);
}
END_TEST

static Suite *http_suite(void)
{
    Suite *s = suite_create("collector_http");
    TCase *tc = tcase_create("http");
    tcase_add_checked_fixture(tc, http_setup, http_teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, http_ok);
    tcase_add_test(tc, http_server_error);
    tcase_add_test(tc, http_slow_beyond_timeout);
    tcase_add_test(tc, http_refused_port);
    tcase_add_test(tc, http_redirects);
    tcase_add_test(tc, http_body_is_bounded);
    tcase_add_test(tc, http_https_without_server_is_down);
    tcase_add_test(tc, https_certificate_days_left);
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
