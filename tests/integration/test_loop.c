/* The loop, for real: vigil-remediator, vigil-collector and vigil-agent run
 * as processes on ephemeral loopback ports with temporary directories. The
 * agent watches vigil-demo-service, which the remediator supervises through
 * a `process` action. The loop starts the service (process_up=0 at first),
 * the test kills it with SIGKILL, and the loop must start a new one: the hub
 * lists the action as succeeded, the decision ends `remediated`, and the
 * remediator's audit chain verifies. Prints the time from the kill to the new
 * process's start. Nothing is mocked. */
#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "httptest.h"
#include "proctest.h"
#include "testutil.h"

#define SECRET      "loop-test-signing-secret-0123456789"
#define AUDIT_KEY   "loop-test-audit-key-0123456789abcdef"
#define DEADLINE_MS 60000

/* GET base+path and parse the body as JSON (NULL unless 200). */
static cJSON *get_json(const pt_proc *p, const char *path)
{
    char url[600];
    http_result r;
    snprintf(url, sizeof(url), "%s%s", p->base, path);
    http_do("GET", url, NULL, 0, NULL, &r);
    cJSON *j = r.status == 200 && r.body ? cJSON_Parse(r.body) : NULL;
    http_result_free(&r);
    return j;
}

/* The pid in a process action's pidfile ("PID STARTTIME"), or 0. */
static pid_t read_pidfile(const char *path)
{
    char *s = pt_slurp(path);
    long pid = strtol(s, NULL, 10);
    free(s);
    return pid > 0 ? (pid_t)pid : 0;
}

/* Start time of `pid` as seconds since boot (field 22 of /proc/pid/stat). */
static double start_since_boot(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    char *s = pt_slurp(path);
    const char *p = strrchr(s, ')');
    unsigned long long ticks = 0;
    for (int field = 2; p && *p && field < 22; p++)
        if (*p == ' ')
            field++;
    if (p)
        ticks = strtoull(p, NULL, 10);
    free(s);
    return (double)ticks / (double)sysconf(_SC_CLK_TCK);
}

/* The start time (as start_since_boot()) of a process forked now: the
 * reference point in the same clock as the new demo's start time. */
static double start_reference(void)
{
    pid_t c = fork();
    ck_assert_int_ge(c, 0);
    if (c == 0)
        _exit(0); /* a zombie's /proc/<pid>/stat stays readable until reaped */
    double t = start_since_boot(c);
    int st;
    waitpid(c, &st, 0);
    return t;
}

/* The hub's latest process_up of the demo, or -1 when it has none yet. */
static double hub_process_up(const pt_proc *hub)
{
    cJSON *j = get_json(hub, "/v1/series?name=process_up&match=process:demo");
    double v = -1;
    cJSON *series = j ? cJSON_GetObjectItem(j, "series") : NULL;
    cJSON *first = series ? cJSON_GetArrayItem(series, 0) : NULL;
    cJSON *latest = first ? cJSON_GetObjectItem(first, "latest") : NULL;
    cJSON *val = latest ? cJSON_GetObjectItem(latest, "value") : NULL;
    if (cJSON_IsNumber(val))
        v = val->valuedouble;
    cJSON_Delete(j);
    return v;
}

/* Status of action `id` in the hub's GET /v1/actions ("" when not listed). */
static void hub_action_status(const pt_proc *hub, const char *id, char *out, size_t size)
{
    cJSON *j = get_json(hub, "/v1/actions?limit=1000");
    cJSON *list = j ? cJSON_GetObjectItem(j, "actions") : NULL;
    cJSON *a;
    out[0] = '\0';
    cJSON_ArrayForEach(a, list)
    {
        cJSON *aid = cJSON_GetObjectItem(a, "id");
        cJSON *st = cJSON_GetObjectItem(a, "status");
        if (cJSON_IsString(aid) && !strcmp(aid->valuestring, id) && cJSON_IsString(st))
            snprintf(out, size, "%s", st->valuestring);
    }
    cJSON_Delete(j);
}

/* The action_id of the newest "fired" decision of demo_down, and whether a
 * "remediated" decision exists for it. */
static int hub_decisions(const pt_proc *hub, char *fired_id, size_t size,
                         const char *remediated_for)
{
    cJSON *j = get_json(hub, "/v1/decisions?since=0&limit=1000");
    cJSON *list = j ? cJSON_GetObjectItem(j, "decisions") : NULL;
    cJSON *d;
    int remediated = 0;
    if (fired_id)
        fired_id[0] = '\0';
    cJSON_ArrayForEach(d, list)
    {
        cJSON *kind = cJSON_GetObjectItem(d, "decision");
        cJSON *aid = cJSON_GetObjectItem(d, "action_id");
        cJSON *pol = cJSON_GetObjectItem(d, "policy");
        if (!cJSON_IsString(kind) || !cJSON_IsString(pol) || strcmp(pol->valuestring, "demo_down"))
            continue;
        if (fired_id && !strcmp(kind->valuestring, "fired") && cJSON_IsString(aid))
            snprintf(fired_id, size, "%s", aid->valuestring);
        if (remediated_for && !strcmp(kind->valuestring, "remediated") && cJSON_IsString(aid) &&
            !strcmp(aid->valuestring, remediated_for))
            remediated = 1;
    }
    cJSON_Delete(j);
    return remediated;
}

static void write_file(const char *dir, const char *name, const char *text)
{
    vt_write_file(dir, name, text, strlen(text));
}

START_TEST(kill_restart_remediated_audited)
{
    const char *dir = vt_tmpdir();
    char cfg[8192], pidfile[PATH_MAX + 16];
    pt_proc rem, hub, agent;

    setenv("VIGIL_REMEDIATOR_SECRET", SECRET, 1);
    setenv("VIGIL_AUDIT_KEY", AUDIT_KEY, 1);
    snprintf(pidfile, sizeof(pidfile), "%s/demo.pid", dir);

    /* the remediator: supervises the demo service. No cooldown: the agent
     * reports the start at once (inotify on the pidfile), so the kill below
     * comes well within any cooldown of the first start and would be deferred
     * until it ends; this test measures the heal itself (deferral by a
     * cooldown is tested in test_retry). */
    snprintf(cfg, sizeof(cfg),
             "listen: 127.0.0.1:0\n"
             "secret_env: VIGIL_REMEDIATOR_SECRET\n"
             "audit: sqlite://%s/remediator.db\n"
             "audit_key_env: VIGIL_AUDIT_KEY\n"
             "guards: {dry_run: false, cooldown: 0, max_attempts: 5, window: 10m,"
             " reset_after: 10m, rate_limit: 60/min, max_concurrent: 2}\n"
             "actions:\n"
             "  - name: restart_demo\n"
             "    type: process\n"
             "    op: restart\n"
             "    start: [\"%s\", \"--port\", \"0\"]\n"
             "    pidfile: %s\n"
             "    stop_signal: TERM\n"
             "    stop_timeout: 2s\n"
             "    start_timeout: 5s\n"
             "    targets: \"^demo$\"\n",
             dir, pt_bin_path("vigil-demo-service"), pidfile);
    write_file(dir, "remediator.yaml", cfg);
    char *rargs[] = {(char *)pt_bin_path("vigil-remediator"), "--config", "remediator.yaml", NULL};
    pt_start(&rem, "remediator", rargs, dir, 1);

    /* the hub: one policy, demo_down */
    snprintf(cfg, sizeof(cfg),
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
             dir, rem.base);
    write_file(dir, "collector.yaml", cfg);
    char *hargs[] = {(char *)pt_bin_path("vigil-collector"), "--config", "collector.yaml", NULL};
    pt_start(&hub, "collector", hargs, dir, 1);

    /* the agent: watches the demo through its pidfile */
    snprintf(cfg, sizeof(cfg),
             "agent: {id: h1}\n"
             "hub: {urls: [\"%s\"], connect_timeout: 1s, timeout: 5s, backoff: 100ms,"
             " backoff_max: 1s}\n"
             "interval: 1s\n"
             "heartbeat: 1s\n"
             "batch: {max_metrics: 1000, max_delay: 100ms}\n"
             "spool: {path: %s/spool, fsync: false}\n"
             "collectors:\n"
             "  - type: process\n"
             "    name: demo\n"
             "    pidfile: %s\n"
             "    watch: true\n"
             "    interval: 1s\n",
             hub.base, dir, pidfile);
    write_file(dir, "agent.yaml", cfg);
    char *aargs[] = {(char *)pt_bin_path("vigil-agent"), "--config", "agent.yaml", NULL};
    pt_start(&agent, "agent", aargs, dir, 0);

    /* 1. the loop starts the demo by itself: process_up=0 fires demo_down */
    pid_t first = 0;
    int64_t end = pt_mono_ms() + DEADLINE_MS;
    while (pt_mono_ms() < end && !(first = read_pidfile(pidfile)))
        usleep(20000);
    if (!first) {
        pt_dump_log(&agent);
        pt_dump_log(&hub);
        pt_dump_log(&rem);
    }
    ck_assert_msg(first > 0, "the loop never started the demo service");
    ck_assert_int_eq(kill(first, 0), 0);
    while (pt_mono_ms() < end && hub_process_up(&hub) != 1.0)
        usleep(50000);
    ck_assert_msg(hub_process_up(&hub) == 1.0, "the hub never saw process_up=1");

    /* 2. kill it; the loop must start a new one */
    ck_assert_int_eq(kill(first, SIGKILL), 0);
    int64_t killed_ms = pt_mono_ms();
    double killed_at = start_reference();
    pid_t second = 0;
    end = pt_mono_ms() + DEADLINE_MS;
    while (pt_mono_ms() < end) {
        pid_t p = read_pidfile(pidfile);
        if (p && p != first && kill(p, 0) == 0) {
            second = p;
            break;
        }
        usleep(1000);
    }
    int64_t seen_ms = pt_mono_ms();
    if (!second) {
        pt_dump_log(&agent);
        pt_dump_log(&hub);
        pt_dump_log(&rem);
    }
    ck_assert_msg(second > 0, "the demo service was not restarted");
    double started = start_since_boot(second);
    printf("loop: kill -> new process running with its pidfile written: %lld ms "
           "(kernel start times, %ld Hz ticks: %.0f ms apart)\n",
           (long long)(seen_ms - killed_ms), sysconf(_SC_CLK_TCK), (started - killed_at) * 1000.0);
    fflush(stdout);

    /* 3. the hub: the action succeeded and the decision ends remediated */
    char fired[256] = "", status[64] = "";
    int remediated = 0;
    end = pt_mono_ms() + DEADLINE_MS;
    while (pt_mono_ms() < end) {
        hub_decisions(&hub, fired, sizeof(fired), NULL);
        if (fired[0]) {
            hub_action_status(&hub, fired, status, sizeof(status));
            remediated = hub_decisions(&hub, NULL, 0, fired);
            if (remediated && !strcmp(status, "succeeded"))
                break;
        }
        usleep(100000);
    }
    if (!remediated || strcmp(status, "succeeded")) {
        pt_dump_log(&hub);
        pt_dump_log(&rem);
    }
    ck_assert_msg(fired[0], "no fired decision");
    ck_assert_str_eq(status, "succeeded");
    ck_assert_msg(remediated, "decision for %s never became remediated", fired);
    ck_assert_int_eq(kill(second, 0), 0);

    /* 4. the remediator's audit chain verifies */
    cJSON *v = get_json(&rem, "/v1/audit/verify");
    ck_assert_ptr_nonnull(v);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(v, "ok")));
    cJSON *entries = cJSON_GetObjectItem(v, "entries");
    ck_assert(cJSON_IsNumber(entries) && entries->valuedouble >= 6);
    cJSON_Delete(v);

    ck_assert_int_eq(pt_stop(&agent), 0);
    ck_assert_int_eq(pt_stop(&hub), 0);
    ck_assert_int_eq(pt_stop(&rem), 0);
    /* the demo is the remediator's child; make sure nothing outlives the test */
    pid_t last = read_pidfile(pidfile);
    if (last > 0 && kill(last, 0) == 0) {
        kill(last, SIGKILL);
        usleep(100000);
    }
}
END_TEST

static Suite *loop_suite(void)
{
    Suite *s = suite_create("loop");
    TCase *tc = tcase_create("loop");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, kill_restart_remediated_audited);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(loop_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
