/* Healing services as they exist in the wild, with the real daemons:
 * vigil-remediator, vigil-collector and vigil-agent run as processes on
 * ephemeral loopback ports with temporary directories, and supervise
 * vigil-demo-service, which writes its own bare-pid pidfile (--pidfile).
 *
 *   - started before Vigil and killed: restarted; started before Vigil and
 *     frozen with SIGSTOP behind an http check: the frozen process (not
 *     Vigil's child: proven the program by /proc/PID/exe and its owner) is
 *     stopped and a new one answers; Vigil's own child frozen the same way
 *     (proven by its pidfd): stopped and replaced too;
 *   - a pidfile naming an unrelated live process: the action refuses
 *     (wrong_program) and that process lives on;
 *   - killed 300 ms after each restart, three times: restarted each time,
 *     within 2 s of the kill (the latencies are printed). This needs the agent
 *     to see each start as an event (inotify on the pidfile), not at its next
 *     poll. Nothing is mocked. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "httptest.h"
#include "proctest.h"
#include "testutil.h"

#define SECRET      "heal-test-signing-secret-0123456789"
#define AUDIT_KEY   "heal-test-audit-key-0123456789abcdef"
#define DEADLINE_MS 30000

typedef struct heal {
    const char *dir;
    char pidfile[512];
    int port;
    pt_proc rem, hub, agent;
} heal;

/* A loopback port free right now (the demo binds it with SO_REUSEADDR). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

/* The pid in the pidfile when that process is alive (not a zombie), or 0. */
static pid_t live_pid(const char *pidfile)
{
    char *s = pt_slurp(pidfile);
    long pid = strtol(s, NULL, 10);
    free(s);
    if (pid <= 1)
        return 0;
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC); /* procfs files have no size: no pt_slurp */
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    const char *p = strrchr(buf, ')');
    int alive = p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
    return alive ? (pid_t)pid : 0;
}

/* Waits for the pidfile to name a live process other than `not`. */
static pid_t wait_new_pid(const heal *h, pid_t not, int64_t deadline_ms)
{
    while (pt_mono_ms() < deadline_ms) {
        pid_t p = live_pid(h->pidfile);
        if (p && p != not )
            return p;
        usleep(1000);
    }
    return 0;
}

/* GET /healthz of the demo; returns the pid its body names, or 0. */
static pid_t demo_answers(const heal *h)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", h->port);
    http_result r;
    http_do("GET", url, NULL, 0, NULL, &r);
    const char *at = r.status == 200 && r.body ? strstr(r.body, "\"pid\":") : NULL;
    pid_t pid = at ? (pid_t)atol(at + 6) : 0;
    http_result_free(&r);
    return pid;
}

/* Waits for the pidfile to name a live process other than `not` that
 * answers GET /healthz itself. */
static pid_t wait_healthy(const heal *h, pid_t not, int64_t deadline_ms)
{
    while (pt_mono_ms() < deadline_ms) {
        pid_t p = live_pid(h->pidfile);
        if (p && p != not &&demo_answers(h) == p)
            return p;
        usleep(5000);
    }
    return 0;
}

static void dump_logs(const heal *h)
{
    pt_dump_log(&h->agent);
    pt_dump_log(&h->hub);
    pt_dump_log(&h->rem);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    vt_write_file(dir, name, text, strlen(text));
}

/* Starts the three daemons. The demo writes its own pidfile; with
 * `http_check`, the agent also checks GET /healthz and a policy restarts the
 * demo when it fails. */
static void heal_start(heal *h, int http_check)
{
    char cfg[32768];
    setenv("VIGIL_REMEDIATOR_SECRET", SECRET, 1);
    setenv("VIGIL_AUDIT_KEY", AUDIT_KEY, 1);

    snprintf(cfg, sizeof(cfg),
             "listen: 127.0.0.1:0\n"
             "secret_env: VIGIL_REMEDIATOR_SECRET\n"
             "audit: sqlite://%s/remediator.db\n"
             "audit_key_env: VIGIL_AUDIT_KEY\n"
             "guards: {dry_run: false, cooldown: 0, max_attempts: 0, rate_limit: 0,"
             " max_concurrent: 2}\n"
             "actions:\n"
             "  - name: restart_demo\n"
             "    type: process\n"
             "    op: restart\n"
             "    start: [\"%s\", \"--port\", \"%d\", \"--pidfile\", \"%s\"]\n"
             "    pidfile: %s\n"
             "    writes_pidfile: true\n"
             "    stop_signal: TERM\n"
             "    stop_timeout: 2s\n"
             "    start_timeout: 5s\n"
             "    log_file: %s/demo.log\n"
             "    targets: \"^demo$\"\n",
             h->dir, pt_bin_path("vigil-demo-service"), h->port, h->pidfile, h->pidfile, h->dir);
    write_file(h->dir, "remediator.yaml", cfg);
    char *rargs[] = {(char *)pt_bin_path("vigil-remediator"), "--config", "remediator.yaml", NULL};
    pt_start(&h->rem, "remediator", rargs, h->dir, 1);

    int n = snprintf(cfg, sizeof(cfg),
                     "listen: 127.0.0.1:0\n"
                     "store: sqlite://%s/hub.db\n"
                     "remediator: {url: \"%s\", secret_env: VIGIL_REMEDIATOR_SECRET}\n"
                     "policies:\n"
                     "  - name: demo_down\n"
                     "    kind: threshold\n"
                     "    metric: process_up\n"
                     "    match: {process: demo}\n"
                     "    window: 1s\n"
                     "    aggregate: last\n"
                     "    op: \"<\"\n"
                     "    threshold: 1\n"
                     "    for: 0s\n"
                     "    action: restart_demo\n"
                     "    target: \"{{tags.process}}\"\n"
                     "    verify: {within: 30s}\n",
                     h->dir, h->rem.base);
    if (http_check)
        snprintf(cfg + n, sizeof(cfg) - (size_t)n,
                 "  - name: demo_unhealthy\n"
                 "    kind: threshold\n"
                 "    metric: http_up\n"
                 "    match: {check: demo}\n"
                 "    window: 1s\n"
                 "    aggregate: last\n"
                 "    op: \"<\"\n"
                 "    threshold: 1\n"
                 "    for: 0s\n"
                 "    action: restart_demo\n"
                 "    target: \"{{tags.check}}\"\n"
                 "    verify: {within: 30s}\n");
    write_file(h->dir, "collector.yaml", cfg);
    char *hargs[] = {(char *)pt_bin_path("vigil-collector"), "--config", "collector.yaml", NULL};
    pt_start(&h->hub, "collector", hargs, h->dir, 1);

    n = snprintf(cfg, sizeof(cfg),
                 "agent: {id: h1}\n"
                 "hub: {urls: [\"%s\"], connect_timeout: 1s, timeout: 5s, backoff: 100ms,"
                 " backoff_max: 1s}\n"
                 "interval: 1s\n"
                 "heartbeat: 1s\n"
                 "batch: {max_metrics: 1000, max_delay: 20ms}\n"
                 "spool: {path: %s/spool, fsync: false}\n"
                 "collectors:\n"
                 "  - type: process\n"
                 "    name: demo\n"
                 "    pidfile: %s\n"
                 "    watch: true\n"
                 "    interval: 1s\n",
                 h->hub.base, h->dir, h->pidfile);
    if (http_check)
        snprintf(cfg + n, sizeof(cfg) - (size_t)n,
                 "  - type: http\n"
                 "    name: demo\n"
                 "    url: http://127.0.0.1:%d/healthz\n"
                 "    timeout: 500ms\n"
                 "    interval: 1s\n",
                 h->port);
    write_file(h->dir, "agent.yaml", cfg);
    char *aargs[] = {(char *)pt_bin_path("vigil-agent"), "--config", "agent.yaml", NULL};
    pt_start(&h->agent, "agent", aargs, h->dir, 0);
}

static void heal_stop(heal *h)
{
    ck_assert_int_eq(pt_stop(&h->agent), 0);
    ck_assert_int_eq(pt_stop(&h->hub), 0);
    ck_assert_int_eq(pt_stop(&h->rem), 0);
    /* the demo outlives the remediator (as it should): end it */
    pid_t last = live_pid(h->pidfile);
    if (last > 0) {
        kill(last, SIGCONT);
        kill(last, SIGKILL);
        usleep(100000);
    }
}

static void heal_init(heal *h)
{
    memset(h, 0, sizeof(*h));
    h->dir = vt_tmpdir();
    h->port = free_port();
    snprintf(h->pidfile, sizeof(h->pidfile), "%s/demo.pid", h->dir);
}

/* A process of the test, output to <dir>/<name>.log. */
static pid_t spawn_logged(const heal *h, const char *name, char *const *argv)
{
    char log[PATH_MAX + 32];
    snprintf(log, sizeof(log), "%s/%s.log", h->dir, name);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    ck_assert_int_eq(posix_spawn(&pid, argv[0], &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

START_TEST(own_pidfile_killed_then_frozen)
{
    heal h;
    heal_init(&h);
    /* the service runs before Vigil, and writes its own bare pid */
    char port[16];
    snprintf(port, sizeof(port), "%d", h.port);
    char *dargs[] = {
        (char *)pt_bin_path("vigil-demo-service"), "--port", port, "--pidfile", h.pidfile, NULL};
    pid_t first = spawn_logged(&h, "demo-before", dargs);
    int64_t end = pt_mono_ms() + DEADLINE_MS;
    while (pt_mono_ms() < end && live_pid(h.pidfile) != first)
        usleep(5000);
    ck_assert_int_eq(live_pid(h.pidfile), first);
    char *text = pt_slurp(h.pidfile);
    char want[32];
    snprintf(want, sizeof(want), "%d\n", (int)first);
    ck_assert_str_eq(text, want); /* a bare PID, not Vigil's format */
    free(text);
    ck_assert_int_eq(demo_answers(&h), first);

    heal_start(&h, 1);
    usleep(1500000); /* the agent reports it up and healthy: nothing to do */
    ck_assert_int_eq(live_pid(h.pidfile), first);

    /* 1. killed: restarted (it is not Vigil's child; its pidfile names a dead pid) */
    ck_assert_int_eq(kill(first, SIGKILL), 0);
    int64_t t0 = pt_mono_ms();
    waitpid(first, NULL, 0);
    pid_t second = wait_new_pid(&h, first, pt_mono_ms() + DEADLINE_MS);
    int64_t t1 = pt_mono_ms();
    if (!second)
        dump_logs(&h);
    ck_assert_msg(second > 0, "the demo service was not restarted");
    printf("heal: own pidfile, killed -> new process %lld ms\n", (long long)(t1 - t0));
    second = wait_healthy(&h, first, pt_mono_ms() + 5000);
    ck_assert_msg(second > 0, "the restarted demo service does not answer");

    /* 2. Vigil's own child frozen behind the http check: still "running",
     * but it does not answer; the policy on http_up restarts it, the frozen
     * one is stopped through its pidfd */
    usleep(1500000); /* let the agent see it healthy first */
    ck_assert_int_eq(kill(second, SIGSTOP), 0);
    t0 = pt_mono_ms();
    pid_t third = wait_new_pid(&h, second, pt_mono_ms() + DEADLINE_MS);
    t1 = pt_mono_ms();
    if (!third)
        dump_logs(&h);
    ck_assert_msg(third > 0, "the frozen demo service was not replaced");
    printf("heal: frozen (SIGSTOP) behind an http check -> new process %lld ms\n",
           (long long)(t1 - t0));
    third = wait_healthy(&h, second, pt_mono_ms() + 5000);
    ck_assert_msg(third > 0, "no new demo service answers");
    ck_assert_int_ne(kill(second, 0), 0); /* stopped and reaped by the remediator */
    heal_stop(&h);
}
END_TEST

/* Waits until the test's child `pid` has ended; returns its wait status, or
 * -1 when it still runs at the deadline. */
static int wait_ended(pid_t pid, int64_t deadline_ms)
{
    while (pt_mono_ms() < deadline_ms) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            return st;
        usleep(5000);
    }
    return -1;
}

/* A service started before Vigil, writing its own bare pid, frozen behind the
 * http check: it is not Vigil's child, so the restart signals it only after
 * /proc/PID/exe and its owner prove it is the configured program; the frozen
 * process ends and a new one answers. */
START_TEST(own_pidfile_frozen)
{
    heal h;
    heal_init(&h);
    char port[16];
    snprintf(port, sizeof(port), "%d", h.port);
    char *dargs[] = {
        (char *)pt_bin_path("vigil-demo-service"), "--port", port, "--pidfile", h.pidfile, NULL};
    pid_t first = spawn_logged(&h, "demo-before", dargs);
    int64_t end = pt_mono_ms() + DEADLINE_MS;
    while (pt_mono_ms() < end && demo_answers(&h) != first)
        usleep(5000);
    ck_assert_int_eq(demo_answers(&h), first);
    char *text = pt_slurp(h.pidfile);
    char want[32];
    snprintf(want, sizeof(want), "%d\n", (int)first);
    ck_assert_str_eq(text, want); /* a bare PID, not Vigil's format */
    free(text);

    heal_start(&h, 1);
    usleep(1500000); /* the agent reports it up and healthy: nothing to do */
    ck_assert_int_eq(live_pid(h.pidfile), first);
    ck_assert_int_eq(waitpid(first, NULL, WNOHANG), 0);

    ck_assert_int_eq(kill(first, SIGSTOP), 0);
    int64_t t0 = pt_mono_ms();
    pid_t next = wait_healthy(&h, first, t0 + DEADLINE_MS);
    int64_t t1 = pt_mono_ms();
    if (!next)
        dump_logs(&h);
    ck_assert_msg(next > 0, "the frozen demo service (started before Vigil) was not replaced");
    /* the frozen process ended: TERM then CONT (it handles TERM and exits 0),
     * or KILL past the stop timeout */
    int st = wait_ended(first, pt_mono_ms() + 10000);
    ck_assert_msg(st != -1, "the frozen demo service (pid %d) still runs", (int)first);
    ck_assert_msg((WIFEXITED(st) && WEXITSTATUS(st) == 0) ||
                      (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL),
                  "the frozen demo service ended with status 0x%x", st);
    ck_assert_int_eq(demo_answers(&h), next);
    char *log = pt_slurp(h.rem.log);
    ck_assert_ptr_null(strstr(log, "wrong_program"));
    ck_assert_ptr_null(strstr(log, "wrong_user"));
    free(log);
    printf("heal: started before Vigil, frozen (SIGSTOP) behind an http check -> pid %d %s, "
           "new process %d answers after %lld ms\n",
           (int)first, WIFEXITED(st) ? "stopped by TERM" : "killed by KILL", (int)next,
           (long long)(t1 - t0));
    heal_stop(&h);
}
END_TEST

START_TEST(unrelated_pid_is_refused)
{
    heal h;
    heal_init(&h);
    /* the pidfile names a live process of the test that is not the demo */
    char *sargs[] = {"/bin/sleep", "1000", NULL};
    pid_t other = spawn_logged(&h, "sleep", sargs);
    char line[32];
    snprintf(line, sizeof(line), "%d\n", (int)other);
    write_file(h.dir, "demo.pid", line);
    /* nothing listens on the port: the http check fails and asks for a restart */
    heal_start(&h, 1);
    int64_t end = pt_mono_ms() + DEADLINE_MS;
    int refused = 0;
    while (pt_mono_ms() < end && !refused) {
        char *log = pt_slurp(h.rem.log);
        refused = strstr(log, "reason=wrong_program") != NULL;
        free(log);
        if (!refused)
            usleep(50000);
    }
    if (!refused)
        dump_logs(&h);
    ck_assert_msg(refused, "the remediator did not refuse the unrelated pid");
    usleep(300000);
    ck_assert_int_eq(kill(other, 0), 0); /* lives on */
    ck_assert_int_eq(waitpid(other, NULL, WNOHANG), 0);
    ck_assert_int_eq(live_pid(h.pidfile), other); /* nothing else started */
    ck_assert_int_eq(demo_answers(&h), 0);
    printf("heal: a pidfile naming an unrelated live process: refused (wrong_program), "
           "pid %d untouched\n",
           (int)other);
    ck_assert_int_eq(pt_stop(&h.agent), 0);
    ck_assert_int_eq(pt_stop(&h.hub), 0);
    ck_assert_int_eq(pt_stop(&h.rem), 0);
    kill(other, SIGKILL);
    waitpid(other, NULL, 0);
}
END_TEST

START_TEST(recrash_is_healed_each_time)
{
    heal h;
    heal_init(&h);
    heal_start(&h, 0);
    /* the loop starts the demo itself (process_up 0 at first) */
    pid_t cur = wait_new_pid(&h, 0, pt_mono_ms() + DEADLINE_MS);
    if (!cur)
        dump_logs(&h);
    ck_assert_msg(cur > 0, "the loop never started the demo service");
    int64_t started = pt_mono_ms();
    int64_t worst = 0;
    for (int i = 1; i <= 3; i++) {
        /* killed 300 ms after its restart, before the agent's next poll */
        int64_t wait = started + 300 - pt_mono_ms();
        if (wait > 0)
            usleep((useconds_t)wait * 1000);
        if (kill(cur, SIGKILL) != 0) {
            int e = errno;
            dump_logs(&h);
            char demo[PATH_MAX + 32];
            snprintf(demo, sizeof(demo), "%s/demo.log", h.dir);
            char *text = pt_slurp(demo);
            fprintf(stderr, "---- demo log ----\n%s\n", text);
            free(text);
            ck_abort_msg("re-crash %d: pid %d, read as the healed one, was gone before it was "
                         "killed: %s",
                         i, (int)cur, strerror(e));
        }
        int64_t t0 = pt_mono_ms();
        pid_t next = wait_new_pid(&h, cur, t0 + DEADLINE_MS);
        started = pt_mono_ms();
        if (!next)
            dump_logs(&h);
        ck_assert_msg(next > 0, "re-crash %d was not healed", i);
        printf("heal: re-crash %d: kill -> new process %lldms\n", i, (long long)(started - t0));
        fflush(stdout);
        if (started - t0 > worst)
            worst = started - t0;
        cur = next;
    }
    ck_assert_msg(worst < 2000, "a re-crash took %lld ms to heal", (long long)worst);
    /* Vigil recorded what it started in its own state directory, beside
     * the database; the program's pidfile is the program's */
    char state[PATH_MAX + 32];
    snprintf(state, sizeof(state), "%s/remediator.db.state", h.dir);
    struct stat sb;
    ck_assert_int_eq(stat(state, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0700);
    DIR *d = opendir(state);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    int records = 0;
    while ((e = readdir(d)) != NULL)
        records += strstr(e->d_name, ".started") != NULL;
    closedir(d);
    ck_assert_int_eq(records, 1);
    char *text = pt_slurp(h.pidfile);
    char want[32];
    snprintf(want, sizeof(want), "%d\n", (int)cur);
    ck_assert_str_eq(text, want);
    free(text);
    heal_stop(&h);
}
END_TEST

static Suite *heal_suite(void)
{
    Suite *s = suite_create("heal");
    TCase *tc = tcase_create("heal");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, own_pidfile_killed_then_frozen);
    tcase_add_test(tc, own_pidfile_frozen);
    tcase_add_test(tc, unrelated_pid_is_refused);
    tcase_add_test(tc, recrash_is_healed_each_time);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(heal_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
