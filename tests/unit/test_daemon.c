/* lib/daemon: the sd_notify protocol (exact datagrams on a real AF_UNIX
 * socket, path and abstract), its bad inputs, the signal helpers; and
 * vigil_hub_attach_remediator()'s argument checks and life cycle. */
#include "testutil.h"
#include "vigil/daemon.h"
#include "vigil/hub.h"
#include "vigil/remediator.h"

#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* A datagram socket bound at `name` ('@' first: abstract); NOTIFY_SOCKET set to it. */
static int bind_notify(const char *name)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    size_t n = strlen(name);
    ck_assert_uint_lt(n, sizeof(sa.sun_path));
    memcpy(sa.sun_path, name, n);
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    if (name[0] == '@')
        sa.sun_path[0] = '\0';
    else
        len++;
    ck_assert_msg(bind(fd, (struct sockaddr *)&sa, len) == 0, "bind %s: %s", name, strerror(errno));
    ck_assert_int_eq(setenv("NOTIFY_SOCKET", name, 1), 0);
    return fd;
}

/* The next datagram (1 s at most), NUL-terminated into buf. */
static const char *recv_one(int fd, char *buf, size_t size)
{
    struct pollfd p = {fd, POLLIN, 0};
    ck_assert_msg(poll(&p, 1, 1000) == 1, "no datagram");
    ssize_t n = recv(fd, buf, size - 1, 0);
    ck_assert_int_ge(n, 0);
    buf[n] = '\0';
    return buf;
}

static void assert_nothing(int fd)
{
    struct pollfd p = {fd, POLLIN, 0};
    ck_assert_int_eq(poll(&p, 1, 50), 0);
}

static void check_states(int fd)
{
    char b[2048];
    ck_assert_int_eq(vigil_daemon_notify(VIGIL_DAEMON_READY, NULL), VIGIL_OK);
    ck_assert_str_eq(recv_one(fd, b, sizeof(b)), "READY=1\n");
    ck_assert_int_eq(vigil_daemon_notify(VIGIL_DAEMON_STOPPING, NULL), VIGIL_OK);
    ck_assert_str_eq(recv_one(fd, b, sizeof(b)), "STOPPING=1\n");
    ck_assert_int_eq(vigil_daemon_notify(VIGIL_DAEMON_STATUS, "draining 3 requests"), VIGIL_OK);
    ck_assert_str_eq(recv_one(fd, b, sizeof(b)), "STATUS=draining 3 requests\n");
    ck_assert_int_eq(vigil_daemon_notify(VIGIL_DAEMON_READY, "listening on 127.0.0.1:7600"),
                     VIGIL_OK);
    ck_assert_str_eq(recv_one(fd, b, sizeof(b)), "READY=1\nSTATUS=listening on 127.0.0.1:7600\n");

    /* RELOADING=1 carries CLOCK_MONOTONIC in microseconds, taken at the call */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned long long before =
        (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000ull;
    ck_assert_int_eq(vigil_daemon_notify(VIGIL_DAEMON_RELOADING, NULL), VIGIL_OK);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned long long after =
        (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000ull;
    recv_one(fd, b, sizeof(b));
    unsigned long long usec = 0;
    int used = 0;
    ck_assert_msg(sscanf(b, "RELOADING=1\nMONOTONIC_USEC=%llu\n%n", &usec, &used) == 1 &&
                      (size_t)used == strlen(b),
                  "datagram \"%s\"", b);
    ck_assert_msg(usec >= before && usec <= after, "MONOTONIC_USEC=%llu not in [%llu, %llu]", usec,
                  before, after);
    assert_nothing(fd);
}

START_TEST(notify_path_socket)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/notify.sock", vt_tmpdir());
    int fd = bind_notify(path);
    check_states(fd);
    close(fd);
    unsetenv("NOTIFY_SOCKET");
}
END_TEST

START_TEST(notify_abstract_socket)
{
    char name[64];
    snprintf(name, sizeof(name), "@vigil-test-notify-%d", (int)getpid());
    int fd = bind_notify(name);
    check_states(fd);
    close(fd);
    unsetenv("NOTIFY_SOCKET");
}
END_TEST

START_TEST(notify_status_limits)
{
    char path[512], b[2048];
    snprintf(path, sizeof(path), "%s/limits.sock", vt_tmpdir());
    int fd = bind_notify(path);
    char status[VIGIL_DAEMON_STATUS_MAX + 2];
    memset(status, 'x', sizeof(status));
    status[VIGIL_DAEMON_STATUS_MAX] = '\0';
    ck_assert_int_eq(vigil_daemon_notify(VIGIL_DAEMON_STATUS, status), VIGIL_OK);
    recv_one(fd, b, sizeof(b));
    ck_assert_uint_eq(strlen(b), 7 + VIGIL_DAEMON_STATUS_MAX + 1);
    ck_assert(strncmp(b, "STATUS=xxx", 10) == 0);
    status[VIGIL_DAEMON_STATUS_MAX] = 'x';
    status[VIGIL_DAEMON_STATUS_MAX + 1] = '\0';
    ck_assert_int_eq(vigil_daemon_notify(VIGIL_DAEMON_STATUS, status), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "status longer than 1024 bytes");
    ck_assert_int_eq(vigil_daemon_notify(VIGIL_DAEMON_READY, "two\nlines"), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "the status must be one line");
    ck_assert_int_eq(vigil_daemon_notify(VIGIL_DAEMON_STATUS, NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "a status is required");
    ck_assert_int_eq(vigil_daemon_notify((vigil_daemon_state)7, NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "unknown state 7");
    ck_assert_int_eq(vigil_daemon_notify((vigil_daemon_state)-1, NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "unknown state -1");
    assert_nothing(fd); /* nothing sent for a refused call */
    close(fd);
    unsetenv("NOTIFY_SOCKET");
}
END_TEST

START_TEST(notify_without_socket_is_a_no_op)
{
    unsetenv("NOTIFY_SOCKET");
    ck_assert_int_eq(vigil_daemon_notify(VIGIL_DAEMON_READY, NULL), VIGIL_OK);
    ck_assert_int_eq(vigil_daemon_notify(VIGIL_DAEMON_STOPPING, "bye"), VIGIL_OK);
    setenv("NOTIFY_SOCKET", "", 1);
    ck_assert_int_eq(vigil_daemon_notify(VIGIL_DAEMON_READY, NULL), VIGIL_OK);
    /* bad inputs are refused even when there is nowhere to send */
    unsetenv("NOTIFY_SOCKET");
    ck_assert_int_eq(vigil_daemon_notify(VIGIL_DAEMON_READY, "a\nb"), VIGIL_EINVAL);
}
END_TEST

START_TEST(notify_bad_socket)
{
    setenv("NOTIFY_SOCKET", "relative/notify.sock", 1);
    ck_assert_int_eq(vigil_daemon_notify(VIGIL_DAEMON_READY, NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "NOTIFY_SOCKET: expected an absolute path or '@name'");
    setenv("NOTIFY_SOCKET", "@", 1);
    ck_assert_int_eq(vigil_daemon_notify(VIGIL_DAEMON_READY, NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "expected an absolute path or '@name'");
    char longp[200];
    memset(longp, 'a', sizeof(longp));
    longp[0] = '/';
    longp[108] = '\0'; /* 108 bytes: no room for the path's NUL */
    setenv("NOTIFY_SOCKET", longp, 1);
    ck_assert_int_eq(vigil_daemon_notify(VIGIL_DAEMON_READY, NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "NOTIFY_SOCKET: longer than 107 bytes");
    /* nobody listens there */
    char path[512];
    snprintf(path, sizeof(path), "%s/nobody.sock", vt_tmpdir());
    setenv("NOTIFY_SOCKET", path, 1);
    ck_assert_int_eq(vigil_daemon_notify(VIGIL_DAEMON_READY, NULL), VIGIL_ENETWORK);
    vt_assert_error(VIGIL_ENETWORK, "cannot send: No such file or directory");
    unsetenv("NOTIFY_SOCKET");
}
END_TEST

/* ---- signals ---------------------------------------------------------------- */

START_TEST(signals_block_and_wait)
{
    ck_assert_int_eq(vigil_daemon_signals_wait(NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "NULL argument");
    ck_assert_int_eq(vigil_daemon_signals_block(), VIGIL_OK);
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    ck_assert(sigismember(&cur, SIGTERM) && sigismember(&cur, SIGINT) && sigismember(&cur, SIGHUP));
    struct sigaction sa;
    sigaction(SIGPIPE, NULL, &sa);
    ck_assert(sa.sa_handler == SIG_IGN);
    vigil_daemon_signal s = 0;
    ck_assert_int_eq(kill(getpid(), SIGHUP), 0);
    ck_assert_int_eq(vigil_daemon_signals_wait(&s), VIGIL_OK);
    ck_assert_int_eq(s, VIGIL_DAEMON_SIGNAL_RELOAD);
    ck_assert_int_eq(kill(getpid(), SIGINT), 0);
    ck_assert_int_eq(vigil_daemon_signals_wait(&s), VIGIL_OK);
    ck_assert_int_eq(s, VIGIL_DAEMON_SIGNAL_STOP);
    ck_assert_int_eq(kill(getpid(), SIGTERM), 0);
    ck_assert_int_eq(vigil_daemon_signals_wait(&s), VIGIL_OK);
    ck_assert_int_eq(s, VIGIL_DAEMON_SIGNAL_STOP);
}
END_TEST

/* ---- vigil_hub_attach_remediator --------------------------------------------- */

static vigil_hub *memory_hub(void)
{
    vigil_hub_options ho = VIGIL_HUB_OPTIONS_INIT;
    ho.store_url = "sqlite://:memory:";
    ho.logger.min_level = VIGIL_LOG_OFF;
    vigil_hub *hub = NULL;
    ck_assert_int_eq(vigil_hub_new(&hub, &ho), VIGIL_OK);
    return hub;
}

static void late(const vigil_action_result *r, int64_t seq, const char *mac, void *payload)
{
    (void)r;
    (void)seq;
    (void)mac;
    (void)payload;
}

START_TEST(attach_remediator_arguments)
{
    vigil_hub *hub = memory_hub();
    vigil_remediator_options ro = VIGIL_REMEDIATOR_OPTIONS_INIT;
    vigil_remediator *rem = (vigil_remediator *)&ro;
    ck_assert_int_eq(vigil_hub_attach_remediator(hub, &ro, NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "hub attach remediator: NULL argument");
    ck_assert_int_eq(vigil_hub_attach_remediator(NULL, &ro, &rem), VIGIL_EINVAL);
    ck_assert_ptr_null(rem);
    ck_assert_int_eq(vigil_hub_attach_remediator(hub, NULL, &rem), VIGIL_EINVAL);
    ro.late_result = late;
    ck_assert_int_eq(vigil_hub_attach_remediator(hub, &ro, &rem), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "late_result is the hub's; leave it NULL");
    ck_assert_ptr_null(rem);
    /* the remediator's own errors come through, and nothing is attached */
    vigil_remediator_options bad = VIGIL_REMEDIATOR_OPTIONS_INIT;
    bad.version = 99;
    ck_assert_int_eq(vigil_hub_attach_remediator(hub, &bad, &rem), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "remediator options: version 99 is not supported");
    ck_assert_ptr_null(rem);
    vigil_hub_free(hub);
}
END_TEST

START_TEST(attach_remediator_runs_requests)
{
    vigil_hub *hub = memory_hub();
    setenv("VIGIL_TEST_ATTACH_SECRET", "0123456789abcdef0123456789abcdef", 1);
    vigil_config *actions = NULL;
    static const char yaml[] = "actions:\n"
                               "  - name: say\n"
                               "    type: log\n"
                               "    targets: \"^t$\"\n";
    ck_assert_int_eq(vigil_config_load_string(&actions, yaml, strlen(yaml), "actions", NULL),
                     VIGIL_OK);
    char url[600];
    snprintf(url, sizeof(url), "sqlite://%s/rem.db", vt_tmpdir());
    vigil_remediator_options ro = VIGIL_REMEDIATOR_OPTIONS_INIT;
    ro.store_url = url;
    ro.secret_env = "VIGIL_TEST_ATTACH_SECRET";
    ro.actions = vigil_config_node_get(vigil_config_root(actions, 0), "actions");
    ro.logger.min_level = VIGIL_LOG_OFF;
    vigil_remediator *rem = NULL;
    int rc = vigil_hub_attach_remediator(hub, &ro, &rem);
    ck_assert_msg(rc == VIGIL_OK, "attach: %d %s", rc, vigil_error_last()->message);
    ck_assert_ptr_nonnull(rem);
    ck_assert_int_eq(vigil_hub_start(hub), VIGIL_OK);

    /* a manual request goes through the attached remediator and its result
     * comes back to the hub's ledger */
    vigil_action_request req = VIGIL_ACTION_REQUEST_INIT;
    req.action = "say";
    req.target = "t";
    req.reason = "test";
    vigil_buf id = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil_hub_action_request(hub, &req, &id), VIGIL_OK);
    int done = 0;
    for (int i = 0; i < 500 && !done; i++) {
        vigil_store_action *a = NULL;
        if (vigil_store_action_get(vigil_hub_store(hub), id.ptr, &a) == VIGIL_OK)
            done = a->status && strcmp(a->status, "succeeded") == 0;
        vigil_store_action_free(a);
        if (!done)
            usleep(10000);
    }
    ck_assert_msg(done, "request %s did not succeed through the attached remediator", id.ptr);
    vigil_buf_dispose(&id);
    vigil_remediator_stop(rem);
    vigil_hub_stop(hub);
    vigil_hub_free(hub);
    vigil_remediator_free(rem);
    vigil_config_free(actions);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("daemon");
    TCase *tc = tcase_create("notify");
    tcase_add_test(tc, notify_path_socket);
    tcase_add_test(tc, notify_abstract_socket);
    tcase_add_test(tc, notify_status_limits);
    tcase_add_test(tc, notify_without_socket_is_a_no_op);
    tcase_add_test(tc, notify_bad_socket);
    suite_add_tcase(s, tc);
    tc = tcase_create("signals");
    tcase_add_test(tc, signals_block_and_wait);
    suite_add_tcase(s, tc);
    tc = tcase_create("attach");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, attach_remediator_arguments);
    tcase_add_test(tc, attach_remediator_runs_requests);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
