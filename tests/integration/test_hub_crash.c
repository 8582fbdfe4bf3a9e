/* No action lost in a hub crash, for real: vigil-remediator and
 * vigil-collector run as processes on ephemeral loopback ports. A sample
 * fires a policy whose action is slow (an exec action running a helper that
 * records each run and sleeps 2 s); while it runs, the collector is killed
 * with SIGKILL and started again on the same store. The restarted hub
 * redelivers the pending request with its id; the remediator answers it
 * from its exactly-once ledger (waiting for the run in flight, or from the
 * recorded result): the helper ran once, the remediator audited one
 * execution, the hub's ledger shows the action succeeded, and the decision
 * log shows fired, redelivered and, once the series recovers, remediated.
 * Prints the decision log of the action. Nothing is mocked. */
#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
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

#define SECRET      "crash-test-signing-secret-0123456789"
#define AUDIT_KEY   "crash-test-audit-key-0123456789abcdef"
#define DEADLINE_MS 60000

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

/* POSTs one process_up sample of the demo to the hub. */
static void ingest_up(const pt_proc *hub, double value)
{
    char url[600], body[512];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    snprintf(url, sizeof(url), "%s/v1/ingest", hub->base);
    snprintf(body, sizeof(body),
             "{\"agent\":\"h1\",\"metrics\":[{\"name\":\"process_up\",\"value\":%g,\"ts\":%lld,"
             "\"tags\":{\"host\":\"h1\",\"process\":\"demo\"}}]}",
             value, now);
    http_result r;
    http_do("POST", url, body, strlen(body), NULL, &r);
    ck_assert_msg(r.status == 202, "ingest: %ld %s", r.status, r.body ? r.body : "");
    http_result_free(&r);
}

/* Lines in a file (0 when it does not exist). */
static int count_lines(const char *path)
{
    char *s = pt_slurp(path);
    int n = 0;
    for (const char *p = s; *p; p++)
        n += *p == '\n';
    free(s);
    return n;
}

/* Status of action `id` in the list `key` of a daemon's GET /v1/actions
 * (the hub's "actions", the remediator's "executions"); "" when not listed. */
static void action_status(const pt_proc *p, const char *key, const char *id, char *out, size_t size)
{
    cJSON *j = get_json(p, "/v1/actions");
    cJSON *list = j ? cJSON_GetObjectItem(j, key) : NULL;
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

/* The decision kinds of the hub's log naming action `id`, space-separated
 * into `kinds`; the action_id of the first "fired" into `fired` when given.
 * Every decision must name its target and series. */
static void decisions(const pt_proc *hub, const char *id, char *kinds, size_t size, char *fired,
                      size_t fsize, int print)
{
    cJSON *j = get_json(hub, "/v1/decisions?since=0&limit=1000");
    cJSON *list = j ? cJSON_GetObjectItem(j, "decisions") : NULL;
    cJSON *d;
    kinds[0] = '\0';
    if (fired)
        fired[0] = '\0';
    cJSON_ArrayForEach(d, list)
    {
        cJSON *kind = cJSON_GetObjectItem(d, "decision");
        cJSON *aid = cJSON_GetObjectItem(d, "action_id");
        cJSON *target = cJSON_GetObjectItem(d, "target");
        cJSON *series = cJSON_GetObjectItem(d, "series");
        ck_assert_msg(cJSON_IsString(target) && !strcmp(target->valuestring, "demo"),
                      "decision %s without its target", kind->valuestring);
        ck_assert_msg(cJSON_IsString(series) && strstr(series->valuestring, "process_up"),
                      "decision %s without its series", kind->valuestring);
        if (fired && !fired[0] && !strcmp(kind->valuestring, "fired") && cJSON_IsString(aid))
            snprintf(fired, fsize, "%s", aid->valuestring);
        if (id && cJSON_IsString(aid) && !strcmp(aid->valuestring, id)) {
            size_t n = strlen(kinds);
            snprintf(kinds + n, size - n, "%s%s", n ? " " : "", kind->valuestring);
        }
        if (print)
            printf("hub_crash: decision %-12s action_id=%s reason=\"%s\"\n", kind->valuestring,
                   cJSON_IsString(aid) ? aid->valuestring : "-",
                   cJSON_GetObjectItem(d, "reason")->valuestring);
    }
    cJSON_Delete(j);
}

/* Rows of the remediator's audit log of `kind` for action `id`. */
static int audit_rows(const pt_proc *rem, const char *kind, const char *id)
{
    cJSON *j = get_json(rem, "/v1/audit?limit=1000");
    ck_assert_ptr_nonnull(j);
    int n = 0;
    cJSON *list = NULL, *it;
    cJSON_ArrayForEach(it, j)
    {
        if (cJSON_IsArray(it))
            list = it;
    }
    cJSON_ArrayForEach(it, list)
    {
        cJSON *k = cJSON_GetObjectItem(it, "kind");
        cJSON *aid = cJSON_GetObjectItem(it, "action_id");
        if (cJSON_IsString(k) && !strcmp(k->valuestring, kind) && cJSON_IsString(aid) &&
            !strcmp(aid->valuestring, id))
            n++;
    }
    cJSON_Delete(j);
    return n;
}

static void write_file(const char *dir, const char *name, const char *text)
{
    vt_write_file(dir, name, text, strlen(text));
}

/* Copies the helper `name` ($VIGIL_TEST_HELPERS/name) to `to`, mode 0700
 * (the runner refuses a program others can write). */
static void copy_helper(const char *name, const char *to)
{
    const char *dir = getenv("VIGIL_TEST_HELPERS");
    ck_assert_msg(dir && *dir, "VIGIL_TEST_HELPERS is not set (run through make test)");
    char from[PATH_MAX];
    snprintf(from, sizeof(from), "%s/%s", dir, name);
    int in = open(from, O_RDONLY | O_CLOEXEC);
    ck_assert_msg(in >= 0, "%s: %s", from, strerror(errno));
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
    ck_assert_int_ge(out, 0);
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof(buf))) > 0)
        ck_assert_int_eq(write(out, buf, (size_t)n), n);
    close(in);
    ck_assert_int_eq(close(out), 0);
}

START_TEST(hub_killed_mid_action_redelivers_exactly_once)
{
    const char *dir = vt_tmpdir();
    char cfg[8192], helper[PATH_MAX], runs[PATH_MAX + 8];
    pt_proc rem, hub, hub2;

    setenv("VIGIL_REMEDIATOR_SECRET", SECRET, 1);
    setenv("VIGIL_AUDIT_KEY", AUDIT_KEY, 1);
    snprintf(helper, sizeof(helper), "%s/slow_action", dir);
    snprintf(runs, sizeof(runs), "%s.runs", helper);
    copy_helper("slow_action", helper);

    /* the remediator: one slow exec action */
    snprintf(cfg, sizeof(cfg),
             "listen: 127.0.0.1:0\n"
             "secret_env: VIGIL_REMEDIATOR_SECRET\n"
             "audit: sqlite://%s/remediator.db\n"
             "audit_key_env: VIGIL_AUDIT_KEY\n"
             "guards: {dry_run: false, cooldown: 1s, max_attempts: 5, window: 10m,"
             " reset_after: 10m, rate_limit: 60/min, max_concurrent: 2}\n"
             "actions:\n"
             "  - name: slow_restart\n"
             "    type: exec\n"
             "    argv: [\"%s\", \"run\", \"2000\"]\n"
             "    targets: \"^demo$\"\n"
             "    timeout: 30s\n",
             dir, helper);
    write_file(dir, "remediator.yaml", cfg);
    char *rargs[] = {(char *)pt_bin_path("vigil-remediator"), "--config", "remediator.yaml", NULL};
    pt_start(&rem, "remediator", rargs, dir, 1);

    /* the hub: demo_down asks for slow_restart */
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
             "    action: slow_restart\n"
             "    target: \"{{tags.process}}\"\n"
             "    verify: {within: 60s}\n",
             dir, rem.base);
    write_file(dir, "collector.yaml", cfg);
    char *hargs[] = {(char *)pt_bin_path("vigil-collector"), "--config", "collector.yaml", NULL};
    pt_start(&hub, "collector", hargs, dir, 1);

    /* 1. the policy fires; the action starts running */
    ingest_up(&hub, 0);
    int64_t end = pt_mono_ms() + DEADLINE_MS;
    while (pt_mono_ms() < end && count_lines(runs) == 0)
        usleep(2000);
    if (count_lines(runs) == 0) {
        pt_dump_log(&hub);
        pt_dump_log(&rem);
    }
    ck_assert_msg(count_lines(runs) == 1, "the action never started");

    /* 2. the hub dies while the request is in flight */
    ck_assert_int_eq(kill(hub.pid, SIGKILL), 0);
    ck_assert_int_eq(pt_wait_exit(hub.pid), 128 + SIGKILL);
    int64_t killed_ms = pt_mono_ms();
    char fired[256], kinds[512], status[64];
    /* 3. started again on the same store */
    pt_start(&hub2, "collector2", hargs, dir, 1);
    printf("hub_crash: restarted %lld ms after the kill, action still running: %s\n",
           (long long)(pt_mono_ms() - killed_ms), count_lines(runs) == 1 ? "yes" : "no");
    decisions(&hub2, NULL, kinds, sizeof(kinds), fired, sizeof(fired), 0);
    ck_assert_msg(fired[0], "no fired decision survived the crash");

    /* 4. the redelivered request completes: the ledger shows it final */
    end = pt_mono_ms() + DEADLINE_MS;
    do {
        action_status(&hub2, "actions", fired, status, sizeof(status));
        if (!strcmp(status, "succeeded"))
            break;
        usleep(20000);
    } while (pt_mono_ms() < end);
    if (strcmp(status, "succeeded")) {
        pt_dump_log(&hub2);
        pt_dump_log(&rem);
    }
    ck_assert_str_eq(status, "succeeded");

    /* 5. the series recovers: remediated */
    ingest_up(&hub2, 1);
    end = pt_mono_ms() + DEADLINE_MS;
    do {
        decisions(&hub2, fired, kinds, sizeof(kinds), NULL, 0, 0);
        if (strstr(kinds, "remediated"))
            break;
        usleep(20000);
    } while (pt_mono_ms() < end);
    decisions(&hub2, fired, kinds, sizeof(kinds), NULL, 0, 1);
    ck_assert_str_eq(kinds, "fired redelivered remediated");

    /* 6. exactly once: one run, one execution audited, one result; the
     * remediator's ledger agrees and its chain verifies */
    usleep(500000);
    ck_assert_int_eq(count_lines(runs), 1);
    ck_assert_int_eq(audit_rows(&rem, "execute", fired), 1);
    ck_assert_int_eq(audit_rows(&rem, "result", fired), 1);
    action_status(&rem, "executions", fired, status, sizeof(status));
    ck_assert_str_eq(status, "succeeded");
    cJSON *v = get_json(&rem, "/v1/audit/verify");
    ck_assert_ptr_nonnull(v);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(v, "ok")));
    cJSON_Delete(v);
    char *log = pt_slurp(hub2.log);
    ck_assert_msg(strstr(log, "msg=\"action redelivered after restart\"") != NULL, "%s", log);
    free(log);

    ck_assert_int_eq(pt_stop(&hub2), 0);
    ck_assert_int_eq(pt_stop(&rem), 0);
}
END_TEST

/* ---- the write log: SIGKILL at any point ------------------------------------------ */

#define WL_SERIES 100 /* series per batch: each batch brings one sample to each */
#define WL_CYCLES 4
#define WL_MAX    1500 /* batches in all (150,000 points: one query) */

/* POSTs batch k (WL_SERIES series of host h<s>, ts base + k s, value k):
 * the HTTP status, 0 when the hub did not answer. */
static long post_batch(const pt_proc *hub, int k, long long base, int *duplicate)
{
    static char body[WL_SERIES * 120 + 128];
    size_t n = (size_t)snprintf(body, sizeof(body),
                                "{\"agent\":\"fleet\",\"batch_id\":\"wl-%d\",\"metrics\":[", k);
    for (int s = 0; s < WL_SERIES; s++)
        n +=
            (size_t)snprintf(body + n, sizeof(body) - n,
                             "%s{\"name\":\"wl\",\"value\":%d,\"ts\":%lld,\"tags\":{\"h\":\"%d\"}}",
                             s ? "," : "", k, base + (long long)k * 1000, s);
    n += (size_t)snprintf(body + n, sizeof(body) - n, "]}");
    char url[600];
    snprintf(url, sizeof(url), "%s/v1/ingest", hub->base);
    http_result r;
    http_do("POST", url, body, n, NULL, &r);
    long status = r.status;
    if (duplicate)
        *duplicate = r.body && strstr(r.body, "\"duplicate\":true") != NULL;
    http_result_free(&r);
    return status;
}

/* The collector is killed (SIGKILL, from a child process after a random
 * delay) while batches are posted one after another, folds of 20 series per
 * transaction running all the time (so most kills land inside a fold round,
 * some inside a commit or a fold transaction), and started again on the same
 * store, WL_CYCLES times. Then every acknowledged batch is there, complete,
 * each sample once with its value; a batch not acknowledged (the one in
 * flight at the kill) is there completely or not at all; an acknowledged
 * batch sent again is a duplicate. */
START_TEST(hub_killed_mid_fold_loses_and_doubles_nothing)
{
    const char *dir = vt_tmpdir();
    char cfg[1024];
    snprintf(cfg, sizeof(cfg),
             "listen: 127.0.0.1:0\n"
             "store: sqlite://%s/wl.db?fold_interval=1ms&fold_batch=20\n",
             dir);
    write_file(dir, "collector.yaml", cfg);
    char *hargs[] = {(char *)pt_bin_path("vigil-collector"), "--config", "collector.yaml", NULL};
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    long long base = (long long)now.tv_sec * 1000 - 50 * 60 * 1000;
    static int acked[WL_MAX], inflight[WL_MAX];
    memset(acked, 0, sizeof(acked));
    memset(inflight, 0, sizeof(inflight));
    unsigned rng = (unsigned)now.tv_nsec;
    int k = 0;
    pt_proc hub;
    char name[32];
    for (int cycle = 0; cycle < WL_CYCLES; cycle++) {
        snprintf(name, sizeof(name), "wl-collector%d", cycle);
        pt_start(&hub, name, hargs, dir, 1);
        rng = rng * 1103515245u + 12345u;
        int delay_ms = 30 + (int)((rng >> 8) % 200);
        pid_t killer = fork();
        ck_assert_int_ge(killer, 0);
        if (killer == 0) {
            usleep((useconds_t)delay_ms * 1000);
            kill(hub.pid, SIGKILL);
            _exit(0);
        }
        while (k < WL_MAX) {
            long st = post_batch(&hub, k, base, NULL);
            if (st != 202) {
                inflight[k++] = 1; /* maybe stored, maybe not: not acknowledged */
                break;
            }
            acked[k++] = 1;
        }
        int ws;
        ck_assert_int_eq(waitpid(killer, &ws, 0), killer);
        ck_assert_int_eq(pt_wait_exit(hub.pid), 128 + SIGKILL);
        printf("hub_crash: cycle %d killed after %d ms, %d batches so far\n", cycle, delay_ms, k);
    }
    pt_start(&hub, "wl-collector-last", hargs, dir, 1);

    /* what the restarted hub answers */
    char url[700];
    snprintf(url, sizeof(url), "%s/v1/query?name=wl&from=%lld&to=%lld", hub.base, base - 1000,
             base + (long long)WL_MAX * 1000);
    http_result qr;
    http_do("GET", url, NULL, 0, NULL, &qr);
    if (qr.status != 200)
        pt_dump_log(&hub);
    ck_assert_msg(qr.status == 200, "query: %ld %.300s", qr.status, qr.body ? qr.body : "");
    cJSON *j = cJSON_Parse(qr.body);
    http_result_free(&qr);
    ck_assert_ptr_nonnull(j);
    static int seen[WL_SERIES][WL_MAX];
    memset(seen, 0, sizeof(seen));
    int nseries = 0;
    cJSON *ser;
    cJSON_ArrayForEach(ser, cJSON_GetObjectItem(j, "series"))
    {
        nseries++;
        cJSON *tags = cJSON_GetObjectItem(ser, "tags");
        int s = atoi(cJSON_GetObjectItem(tags, "h")->valuestring);
        ck_assert(s >= 0 && s < WL_SERIES);
        cJSON *pt;
        cJSON_ArrayForEach(pt, cJSON_GetObjectItem(ser, "points"))
        {
            long long ts = (long long)cJSON_GetArrayItem(pt, 0)->valuedouble;
            int b = (int)((ts - base) / 1000);
            ck_assert(b >= 0 && b < WL_MAX && ts == base + (long long)b * 1000);
            ck_assert_msg(!seen[s][b], "series %d: batch %d twice", s, b);
            seen[s][b] = 1;
            ck_assert_int_eq((int)cJSON_GetArrayItem(pt, 1)->valuedouble, b);
        }
    }
    cJSON_Delete(j);
    ck_assert_int_eq(nseries, WL_SERIES);
    int nacked = 0, partial = 0;
    for (int b = 0; b < k; b++) {
        int have = 0;
        for (int s = 0; s < WL_SERIES; s++)
            have += seen[s][b];
        nacked += acked[b];
        if (acked[b])
            ck_assert_msg(have == WL_SERIES, "acknowledged batch %d: %d of %d samples", b, have,
                          WL_SERIES);
        else
            partial += have != 0 && have != WL_SERIES;
    }
    ck_assert_int_eq(partial, 0);
    printf("hub_crash: %d batches acknowledged over %d kills, all there once\n", nacked, WL_CYCLES);
    /* the last acknowledged batch, sent again, is a duplicate */
    int last = k - 1;
    while (last >= 0 && !acked[last])
        last--;
    ck_assert_int_ge(last, 0);
    int dup = 0;
    ck_assert_int_eq(post_batch(&hub, last, base, &dup), 202);
    ck_assert(dup);
    ck_assert_int_eq(pt_stop(&hub), 0);
}
END_TEST

static Suite *hub_crash_suite(void)
{
    Suite *s = suite_create("hub_crash");
    TCase *tc = tcase_create("crash");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, hub_killed_mid_action_redelivers_exactly_once);
    tcase_add_test(tc, hub_killed_mid_fold_loses_and_doubles_nothing);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(hub_crash_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
