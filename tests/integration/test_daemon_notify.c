/* Every daemon tells the service manager it is ready, that it reloads at
 * SIGHUP and, at SIGTERM, that it is stopping: vigil-collector,
 * vigil-remediator, vigil-agent and vigil-gitopsd (when built) started as real
 * processes with NOTIFY_SOCKET naming a datagram socket bound here, as the
 * units of configs/systemd/ (Type=notify) expect; the collector also through
 * an abstract socket ("@name"), the form systemd itself uses. */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <spawn.h>
#include <limits.h>
#include <unistd.h>

#include "proctest.h"
#include "testutil.h"

/* A datagram socket bound at `path` ("@name": in the abstract namespace),
 * named by NOTIFY_SOCKET. */
static int bind_notify(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    ck_assert_uint_lt(strlen(path), sizeof(sa.sun_path));
    memcpy(sa.sun_path, path, strlen(path));
    socklen_t len = sizeof(sa);
    if (path[0] == '@') {
        sa.sun_path[0] = '\0';
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
    }
    ck_assert_msg(bind(fd, (struct sockaddr *)&sa, len) == 0, "bind %s: %s", path, strerror(errno));
    ck_assert_int_eq(setenv("NOTIFY_SOCKET", path, 1), 0);
    return fd;
}

/* Waits (20 s at most) for the next datagram. */
static void expect(int fd, const char *want, pt_proc *p)
{
    struct pollfd pf = {fd, POLLIN, 0};
    if (poll(&pf, 1, 20000) != 1) {
        pt_dump_log(p);
        ck_abort_msg("%s: no notification, expected \"%s\"", p->name, want);
    }
    char b[2048];
    ssize_t n = recv(fd, b, sizeof(b) - 1, 0);
    ck_assert_int_gt(n, 0);
    b[n] = '\0';
    ck_assert_str_eq(b, want);
}

static void ready_then_stopping(const char *name, char *const *args, const char *dir, int abstract)
{
    char path[600];
    if (abstract)
        snprintf(path, sizeof(path), "@vigil-test-notify-%ld-%s", (long)getpid(), name);
    else
        snprintf(path, sizeof(path), "%s/%s.notify", dir, name);
    int fd = bind_notify(path);
    pt_proc p;
    pt_start(&p, name, args, dir, 0);
    expect(fd, "READY=1\n", &p);
    kill(p.pid, SIGHUP);
    struct pollfd pf = {fd, POLLIN, 0};
    ck_assert_int_eq(poll(&pf, 1, 20000), 1);
    char b[256];
    ssize_t n = recv(fd, b, sizeof(b) - 1, 0);
    ck_assert_int_gt(n, 0);
    b[n] = '\0';
    ck_assert_msg(strncmp(b, "RELOADING=1\nMONOTONIC_USEC=", 27) == 0, "%s: got \"%s\"", name, b);
    expect(fd, "READY=1\n", &p);
    int status = pt_stop(&p);
    expect(fd, "STOPPING=1\n", &p);
    if (status != 0)
        pt_dump_log(&p);
    ck_assert_int_eq(status, 0);
    close(fd);
    unsetenv("NOTIFY_SOCKET");
}

START_TEST(collector_notifies)
{
    const char *dir = vt_tmpdir();
    char cfg[1024];
    snprintf(cfg, sizeof(cfg), "listen: 127.0.0.1:0\nstore: sqlite://%s/hub.db\n", dir);
    vt_write_file(dir, "collector.yaml", cfg, strlen(cfg));
    char *args[] = {(char *)pt_bin_path("vigil-collector"), "--config", "collector.yaml", NULL};
    ready_then_stopping("collector", args, dir, 0);
}
END_TEST

START_TEST(collector_notifies_abstract_socket)
{
    const char *dir = vt_tmpdir();
    char cfg[1024];
    snprintf(cfg, sizeof(cfg), "listen: 127.0.0.1:0\nstore: sqlite://%s/hub.db\n", dir);
    vt_write_file(dir, "collector.yaml", cfg, strlen(cfg));
    char *args[] = {(char *)pt_bin_path("vigil-collector"), "--config", "collector.yaml", NULL};
    ready_then_stopping("collector", args, dir, 1);
}
END_TEST

START_TEST(remediator_notifies)
{
    const char *dir = vt_tmpdir();
    setenv("VIGIL_REMEDIATOR_SECRET", "0123456789abcdef0123456789abcdef", 1);
    char cfg[1024];
    snprintf(cfg, sizeof(cfg),
             "listen: 127.0.0.1:0\n"
             "secret_env: VIGIL_REMEDIATOR_SECRET\n"
             "audit: sqlite://%s/remediator.db\n"
             "actions:\n"
             "  - name: say\n"
             "    type: log\n"
             "    targets: \"^t$\"\n",
             dir);
    vt_write_file(dir, "remediator.yaml", cfg, strlen(cfg));
    char *args[] = {(char *)pt_bin_path("vigil-remediator"), "--config", "remediator.yaml", NULL};
    ready_then_stopping("remediator", args, dir, 0);
}
END_TEST

START_TEST(agent_notifies)
{
    const char *dir = vt_tmpdir();
    char cfg[1024];
    snprintf(cfg, sizeof(cfg),
             "agent: {id: n1}\n"
             "hub: {urls: [\"http://127.0.0.1:9\"], connect_timeout: 100ms, timeout: 200ms}\n"
             "interval: 1s\n"
             "spool: {path: %s/spool, fsync: false}\n"
             "collectors:\n"
             "  - type: load\n",
             dir);
    vt_write_file(dir, "agent.yaml", cfg, strlen(cfg));
    char *args[] = {(char *)pt_bin_path("vigil-agent"), "--config", "agent.yaml", NULL};
    ready_then_stopping("agent", args, dir, 0);
}
END_TEST

/* git ARGS... in `dir` (argv, no shell), with an identity of its own. */
static void git(const char *dir, const char *a1, const char *a2, const char *a3, const char *a4)
{
    char *argv[] = {"git",
                    "-C",
                    (char *)dir,
                    "-c",
                    "user.name=vigil-test",
                    "-c",
                    "user.email=vigil-test@localhost",
                    "-c",
                    "commit.gpgsign=false",
                    "-c",
                    "init.defaultBranch=main",
                    (char *)a1,
                    (char *)a2,
                    (char *)a3,
                    (char *)a4,
                    NULL};
    pid_t pid;
    ck_assert_int_eq(posix_spawnp(&pid, "git", NULL, NULL, argv, environ), 0);
    ck_assert_int_eq(pt_wait_exit(pid), 0);
}

START_TEST(gitopsd_notifies)
{
    const char *build = getenv("VIGIL_TEST_BUILD");
    char bin[PATH_MAX];
    snprintf(bin, sizeof(bin), "%s/bin/vigil-gitopsd", build ? build : "build");
    if (access(bin, X_OK) != 0) {
        printf("test_daemon_notify: %s is not built: gitopsd's notifications not tested\n", bin);
        return;
    }
    const char *dir = vt_tmpdir();
    char repo[PATH_MAX], cfg[2 * PATH_MAX + 512], text[PATH_MAX + 256];
    snprintf(repo, sizeof(repo), "%s/repo", dir);
    ck_assert_int_eq(mkdir(repo, 0755), 0);
    git(repo, "init", "-q", NULL, NULL);
    snprintf(repo, sizeof(repo), "%s/repo/hosts", dir);
    ck_assert_int_eq(mkdir(repo, 0755), 0);
    snprintf(repo, sizeof(repo), "%s/repo/hosts/n1", dir);
    ck_assert_int_eq(mkdir(repo, 0755), 0);
    snprintf(text, sizeof(text),
             "apiVersion: vigil/v1\n"
             "kind: File\n"
             "metadata: {name: motd}\n"
             "spec: {path: %s/motd, content: \"hello\\n\", mode: \"0644\"}\n",
             dir);
    vt_write_file(repo, "motd.yaml", text, strlen(text));
    snprintf(repo, sizeof(repo), "%s/repo", dir);
    git(repo, "add", "-A", NULL, NULL);
    git(repo, "commit", "-q", "-m", "first");
    snprintf(cfg, sizeof(cfg),
             "listen: 127.0.0.1:0\n"
             "host: n1\n"
             "repo: {url: \"%s\", workdir: \"%s/wd\"}\n"
             "manifests: {sources: [\"hosts/${HOSTNAME}\"]}\n"
             "sync: {min_interval: 10m, max_interval: 20m}\n",
             repo, dir);
    vt_write_file(dir, "gitopsd.yaml", cfg, strlen(cfg));
    char *args[] = {bin, "--config", "gitopsd.yaml", NULL};
    ready_then_stopping("gitopsd", args, dir, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("daemon_notify");
    TCase *tc = tcase_create("notify");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, collector_notifies);
    tcase_add_test(tc, remediator_notifies);
    tcase_add_test(tc, agent_notifies);
    tcase_add_test(tc, collector_notifies_abstract_socket);
    tcase_add_test(tc, gitopsd_notifies);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
