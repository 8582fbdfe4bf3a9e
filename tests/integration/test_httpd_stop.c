/* Stopping a server with requests in flight, 200 times in a row.
 *
 * A vigil_httpd (thread pool of 4) hosts a real vigil_api with one slow route
 * (answered a few milliseconds later from another thread, as the hub answers
 * an ingest after its commit) while four client threads keep sending
 * requests. Each round starts a server, waits until requests are in flight
 * and stops it with vigil_httpd_shutdown(). Every stop must return cleanly
 * (never a crash: libmicrohttpd aborted the process when quiescing raced
 * with its worker threads), and each request is accounted for by its id:
 * one the route accepted (its handler ran) must get a complete 200 answer,
 * however the stop fell, since the drain waits for it; one the route never
 * saw may find the server gone (refused, reset, or closed before any byte);
 * none may be truncated. */
#include "api/internal.h"
#include "testutil.h"
#include "vigil/api.h"
#include "vigil/httpd.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS        200
#define CLIENTS       4
#define ANSWER_US     3000
#define PENDING_MAX   256
#define ROUND_WAIT_MS 200
#define REQUESTS_MAX  (1 << 20)

/* ---- the slow route: answered later by the finisher thread ---------------- */

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static vigil__api_call *g_calls[PENDING_MAX];
static size_t g_ncalls;
static int g_finisher_stop;
static long g_submitted;
/* per request id: the route ran for it; the client read a complete 200 */
static unsigned char g_entered[REQUESTS_MAX], g_answered[REQUESTS_MAX];
static long g_next_id;

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void answer(vigil__api_call *call)
{
    static const char body[] = "{\"ok\":true,\"padding\":\"................................\"}";
    vigil__api_resp_json(vigil__api_call_response(call), 200, body, sizeof(body) - 1);
    vigil__api_finish(call);
}

static void route_slow(vigil__api_call *call, void *payload)
{
    (void)payload;
    const char *id = vigil__api_call_param(call, "id");
    long n = id ? strtol(id, NULL, 10) : -1;
    pthread_mutex_lock(&g_mu);
    if (n >= 0 && n < REQUESTS_MAX)
        g_entered[n] = 1;
    g_submitted++;
    if (g_ncalls < PENDING_MAX) {
        g_calls[g_ncalls++] = call;
        call = NULL;
        pthread_cond_signal(&g_cv);
    }
    pthread_mutex_unlock(&g_mu);
    if (call)
        answer(call);
}

static void *finisher(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&g_mu);
    for (;;) {
        while (!g_ncalls && !g_finisher_stop)
            pthread_cond_wait(&g_cv, &g_mu);
        if (!g_ncalls && g_finisher_stop)
            break;
        pthread_mutex_unlock(&g_mu);
        usleep(ANSWER_US);
        pthread_mutex_lock(&g_mu);
        vigil__api_call *batch[PENDING_MAX];
        size_t n = g_ncalls;
        memcpy(batch, g_calls, n * sizeof(*batch));
        g_ncalls = 0;
        pthread_mutex_unlock(&g_mu);
        for (size_t i = 0; i < n; i++)
            answer(batch[i]);
        pthread_mutex_lock(&g_mu);
    }
    pthread_mutex_unlock(&g_mu);
    return NULL;
}

static size_t pending_calls(void)
{
    pthread_mutex_lock(&g_mu);
    size_t n = g_ncalls;
    pthread_mutex_unlock(&g_mu);
    return n;
}

/* ---- clients ------------------------------------------------------------- */

static volatile int g_port; /* 0: no server right now */
static volatile int g_clients_stop;
static long g_sent, g_complete, g_no_answer, g_truncated;
static char g_bad[512];

/* Request `id` on a fresh connection: 1 a complete 200 answer, 0 no answer
 * at all (refused, reset, or closed before any byte), -1 a truncated or
 * malformed answer (described in g_bad). */
static int one_request(int port, long id)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return 0;
    }
    char req[128];
    int rlen = snprintf(req, sizeof(req),
                        "GET /v1/slow?id=%ld HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: "
                        "close\r\n\r\n",
                        id);
    if (send(fd, req, (size_t)rlen, MSG_NOSIGNAL) != (ssize_t)rlen) {
        close(fd);
        return 0;
    }
    char buf[4096];
    size_t len = 0;
    int err = 0;
    for (;;) {
        ssize_t n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
        if (n > 0) {
            len += (size_t)n;
            if (len == sizeof(buf) - 1)
                break;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            err = errno;
        break;
    }
    close(fd);
    buf[len] = '\0';
    if (len == 0)
        return 0; /* closed or reset before any answer */
    const char *end = strstr(buf, "\r\n\r\n");
    const char *cl = strstr(buf, "Content-Length: ");
    int ok = strncmp(buf, "HTTP/1.1 200 ", 13) == 0 && end && cl && cl < end &&
             (size_t)(buf + len - (end + 4)) == (size_t)strtoul(cl + 16, NULL, 10);
    if (ok)
        return 1;
    pthread_mutex_lock(&g_mu);
    if (!g_bad[0])
        snprintf(g_bad, sizeof(g_bad), "truncated answer (%zu bytes, errno %d): %.300s", len, err,
                 buf);
    pthread_mutex_unlock(&g_mu);
    return -1;
}

static void *client(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&g_clients_stop, __ATOMIC_SEQ_CST)) {
        int port = __atomic_load_n(&g_port, __ATOMIC_SEQ_CST);
        if (!port) {
            usleep(200);
            continue;
        }
        long id = __atomic_fetch_add(&g_next_id, 1, __ATOMIC_SEQ_CST);
        if (id >= REQUESTS_MAX)
            break;
        __atomic_add_fetch(&g_sent, 1, __ATOMIC_SEQ_CST);
        int r = one_request(port, id);
        if (r > 0)
            g_answered[id] = 1; /* one client per id: read after the join */
        __atomic_add_fetch(r > 0    ? &g_complete
                           : r == 0 ? &g_no_answer
                                    : &g_truncated,
                           1, __ATOMIC_SEQ_CST);
        if (r == 0)
            usleep(300); /* refused: the server is stopping; do not spin */
    }
    return NULL;
}

/* ---- the test -------------------------------------------------------------- */

START_TEST(stop_with_requests_in_flight_200_times)
{
    signal(SIGPIPE, SIG_IGN);
    vigil_logger quiet = VIGIL_LOGGER_INIT;
    quiet.min_level = VIGIL_LOG_OFF;
    vigil_api_options ao = VIGIL_API_OPTIONS_INIT;
    ao.logger = quiet;
    vigil_api *api = NULL;
    ck_assert_int_eq(vigil_api_new(&api, &ao), VIGIL_OK);
    ck_assert_int_eq(vigil__api_route(api, "GET", "/v1/slow", 0, 0, route_slow, NULL), VIGIL_OK);

    pthread_t fin, cl[CLIENTS];
    ck_assert_int_eq(pthread_create(&fin, NULL, finisher, NULL), 0);
    for (int i = 0; i < CLIENTS; i++)
        ck_assert_int_eq(pthread_create(&cl[i], NULL, client, NULL), 0);

    int64_t t0 = now_us();
    int with_inflight = 0;
    for (int round = 0; round < ROUNDS; round++) {
        vigil_httpd_options so = VIGIL_HTTPD_OPTIONS_INIT;
        so.listen = "127.0.0.1:0";
        so.threads = 4;
        so.logger = quiet;
        vigil_httpd *h = NULL;
        ck_assert_int_eq(vigil_httpd_new(&h, api, &so), VIGIL_OK);
        ck_assert_int_eq(vigil_httpd_start(h), VIGIL_OK);
        __atomic_store_n(&g_port, vigil_httpd_port(h), __ATOMIC_SEQ_CST);
        /* stop once requests wait for their answer (or after a while) */
        int64_t until = now_us() + ROUND_WAIT_MS * 1000;
        while (pending_calls() < 2 && now_us() < until)
            usleep(100);
        if (pending_calls() > 0)
            with_inflight++;
        int rc = vigil_httpd_shutdown(h, 5000, NULL, NULL);
        ck_assert_msg(rc == VIGIL_OK, "round %d: shutdown returned %d (%s)", round, rc,
                      vigil_error_last()->message);
        __atomic_store_n(&g_port, 0, __ATOMIC_SEQ_CST);
        vigil_httpd_free(h);
    }
    int64_t elapsed_ms = (now_us() - t0) / 1000;

    __atomic_store_n(&g_clients_stop, 1, __ATOMIC_SEQ_CST);
    for (int i = 0; i < CLIENTS; i++)
        pthread_join(cl[i], NULL);
    pthread_mutex_lock(&g_mu);
    g_finisher_stop = 1;
    pthread_cond_signal(&g_cv);
    pthread_mutex_unlock(&g_mu);
    pthread_join(fin, NULL);
    vigil_api_free(api);

    fprintf(stderr,
            "test_httpd_stop: %d stops in %lld ms, %d with requests in flight; %ld complete "
            "answers, %ld without an answer, %ld truncated; the route accepted %ld\n",
            ROUNDS, (long long)elapsed_ms, with_inflight, g_complete, g_no_answer, g_truncated,
            g_submitted);
    ck_assert_msg(g_truncated == 0, "%ld truncated answers; first: %s", g_truncated, g_bad);
    ck_assert_int_lt(g_next_id, REQUESTS_MAX);
    /* every request the route accepted got its complete answer, and only those */
    long entered = 0, lost = 0, first_lost = -1, stray = 0;
    for (long id = 0; id < g_next_id; id++) {
        entered += g_entered[id];
        if (g_entered[id] && !g_answered[id] && lost++ == 0)
            first_lost = id;
        stray += !g_entered[id] && g_answered[id];
    }
    ck_assert_msg(lost == 0,
                  "%ld requests entered the route but got no complete answer (first: id %ld)", lost,
                  first_lost);
    ck_assert_int_eq(stray, 0);
    /* the counts add up: each request sent is answered, unanswered or truncated */
    ck_assert_int_eq(entered, g_submitted);
    ck_assert_int_eq(g_complete, entered);
    ck_assert_int_eq(g_complete + g_no_answer + g_truncated, g_sent);
    ck_assert_msg(with_inflight >= ROUNDS / 2, "only %d of %d stops had requests in flight",
                  with_inflight, ROUNDS);
    ck_assert_int_gt(g_complete, ROUNDS);
    ck_assert_int_lt(elapsed_ms, 25000);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("httpd_stop");
    TCase *tc = tcase_create("stop");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, stop_with_requests_in_flight_200_times);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
