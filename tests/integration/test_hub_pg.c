/* The daemons on PostgreSQL, for real: a server this program starts
 * (tests/unit/pgtest.h), vigil-collector with `store: postgresql://...` and
 * vigil-remediator with `audit: postgresql://...`, as processes on
 * ephemeral loopback ports. A sample fires a policy; the action runs once;
 * the hub's ledger and decisions and the remediator's audit chain live on
 * the server. Batches are ingested and queried; the hub is stopped and
 * started again and still has everything (a batch sent again is a
 * duplicate); a second hub on the same database serves what the first
 * ingested and the other way round. Skipped (with a message) when the
 * server binaries are not installed. */
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
#include "pgtest.h"
#include "proctest.h"
#include "testutil.h"

#define SECRET      "pg-test-signing-secret-0123456789abcd"
#define AUDIT_KEY   "pg-test-audit-key-0123456789abcdef012"
#define DEADLINE_MS 60000

static vt_pg g_server;

static cJSON *get_json(const pt_proc *p, const char *path)
{
    char url[900];
    http_result r;
    snprintf(url, sizeof(url), "%s%s", p->base, path);
    http_do("GET", url, NULL, 0, NULL, &r);
    cJSON *j = r.status == 200 && r.body ? cJSON_Parse(r.body) : NULL;
    http_result_free(&r);
    return j;
}

static void write_file(const char *dir, const char *name, const char *text)
{
    vt_write_file(dir, name, text, strlen(text));
}

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

static int count_lines(const char *path)
{
    char *s = pt_slurp(path);
    int n = 0;
    for (const char *p = s; *p; p++)
        n += *p == '\n';
    free(s);
    return n;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* POSTs one batch; *duplicate from the answer. Returns the status. */
static long ingest(const pt_proc *hub, const char *batch_id, const char *name, double value,
                   long long ts, int *duplicate)
{
    char url[600], body[600];
    snprintf(url, sizeof(url), "%s/v1/ingest", hub->base);
    snprintf(body, sizeof(body),
             "{\"agent\":\"h1\"%s%s%s,\"metrics\":[{\"name\":\"%s\",\"value\":%g,\"ts\":%lld,"
             "\"tags\":{\"host\":\"h1\",\"process\":\"demo\"}}]}",
             batch_id ? ",\"batch_id\":\"" : "", batch_id ? batch_id : "", batch_id ? "\"" : "",
             name, value, ts);
    http_result r;
    http_do("POST", url, body, strlen(body), NULL, &r);
    long st = r.status;
    if (duplicate)
        *duplicate = r.body && strstr(r.body, "\"duplicate\":true") != NULL;
    http_result_free(&r);
    return st;
}

/* The values of metric `name` a hub answers, "ts=value;" each. */
static void query(const pt_proc *hub, const char *name, char *out, size_t size)
{
    char path[300];
    snprintf(path, sizeof(path), "/v1/query?name=%s&from=0&to=%lld", name, now_ms() + 3600000);
    cJSON *j = get_json(hub, path);
    ck_assert_msg(j != NULL, "query %s failed", name);
    out[0] = '\0';
    cJSON *ser, *pt;
    cJSON_ArrayForEach(ser, cJSON_GetObjectItem(j, "series"))
    {
        cJSON_ArrayForEach(pt, cJSON_GetObjectItem(ser, "points"))
        {
            size_t n = strlen(out);
            snprintf(out + n, size - n, "%lld=%g;",
                     (long long)cJSON_GetArrayItem(pt, 0)->valuedouble,
                     cJSON_GetArrayItem(pt, 1)->valuedouble);
        }
    }
    cJSON_Delete(j);
}

/* The status of the first action of the hub's ledger; its id into `id`. */
static void first_action(const pt_proc *hub, char *id, size_t idlen, char *status, size_t stlen)
{
    cJSON *j = get_json(hub, "/v1/actions");
    cJSON *a = j ? cJSON_GetArrayItem(cJSON_GetObjectItem(j, "actions"), 0) : NULL;
    id[0] = status[0] = '\0';
    if (a) {
        snprintf(id, idlen, "%s", cJSON_GetObjectItem(a, "id")->valuestring);
        snprintf(status, stlen, "%s", cJSON_GetObjectItem(a, "status")->valuestring);
    }
    cJSON_Delete(j);
}

START_TEST(daemons_on_postgresql)
{
    const char *dir = vt_tmpdir();
    char cfg[8192], helper[PATH_MAX], runs[PATH_MAX + 8];
    pt_proc rem, hub, hub2;
    setenv("VIGIL_REMEDIATOR_SECRET", SECRET, 1);
    setenv("VIGIL_AUDIT_KEY", AUDIT_KEY, 1);
    snprintf(helper, sizeof(helper), "%s/slow_action", dir);
    snprintf(runs, sizeof(runs), "%s.runs", helper);
    copy_helper("slow_action", helper);

    /* the remediator: its audit log and ledger in schema "rem" */
    snprintf(cfg, sizeof(cfg),
             "listen: 127.0.0.1:0\n"
             "secret_env: VIGIL_REMEDIATOR_SECRET\n"
             "audit: \"%s&schema=rem&pool=2\"\n"
             "audit_key_env: VIGIL_AUDIT_KEY\n"
             "guards: {dry_run: false, cooldown: 1s, max_attempts: 5, window: 10m,"
             " reset_after: 10m, rate_limit: 60/min, max_concurrent: 2}\n"
             "actions:\n"
             "  - name: restart_demo\n"
             "    type: exec\n"
             "    argv: [\"%s\", \"run\", \"10\"]\n"
             "    targets: \"^demo$\"\n"
             "    timeout: 30s\n",
             g_server.url, helper);
    write_file(dir, "remediator.yaml", cfg);
    char *rargs[] = {(char *)pt_bin_path("vigil-remediator"), "--config", "remediator.yaml", NULL};
    pt_start(&rem, "remediator", rargs, dir, 1);

    /* the hub: samples, ledger, decisions in schema "hub" */
    snprintf(cfg, sizeof(cfg),
             "listen: 127.0.0.1:0\n"
             "store: \"%s&schema=hub\"\n"
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
             "    target: \"{{tags.process}}\"\n",
             g_server.url, rem.base);
    write_file(dir, "collector.yaml", cfg);
    char *hargs[] = {(char *)pt_bin_path("vigil-collector"), "--config", "collector.yaml", NULL};
    pt_start(&hub, "collector", hargs, dir, 1);

    /* 1. a failing sample: the action runs once, the ledger says so */
    long long t0 = now_ms();
    ck_assert_int_eq(ingest(&hub, "b-down", "process_up", 0, t0, NULL), 202);
    char id[128], status[64];
    int64_t end = pt_mono_ms() + DEADLINE_MS;
    do {
        first_action(&hub, id, sizeof(id), status, sizeof(status));
        if (!strcmp(status, "succeeded"))
            break;
        usleep(20000);
    } while (pt_mono_ms() < end);
    if (strcmp(status, "succeeded")) {
        pt_dump_log(&hub);
        pt_dump_log(&rem);
    }
    ck_assert_str_eq(status, "succeeded");
    ck_assert_int_eq(count_lines(runs), 1);

    /* 2. ingest and query */
    for (int i = 1; i <= 5; i++) {
        char bid[32];
        snprintf(bid, sizeof(bid), "b-%d", i);
        ck_assert_int_eq(ingest(&hub, bid, "load", i, t0 + i, NULL), 202);
    }
    char got[2048], want[2048] = "";
    for (int i = 1; i <= 5; i++) {
        size_t n = strlen(want);
        snprintf(want + n, sizeof(want) - n, "%lld=%d;", t0 + i, i);
    }
    query(&hub, "load", got, sizeof(got));
    ck_assert_str_eq(got, want);

    /* 3. stopped and started again: everything is still there */
    ck_assert_int_eq(pt_stop(&hub), 0);
    pt_start(&hub, "collector-restarted", hargs, dir, 1);
    query(&hub, "load", got, sizeof(got));
    ck_assert_str_eq(got, want);
    int dup = 0;
    ck_assert_int_eq(ingest(&hub, "b-3", "load", 99, t0 + 3, &dup), 202);
    ck_assert_int_eq(dup, 1);
    query(&hub, "load", got, sizeof(got));
    ck_assert_str_eq(got, want);
    char id2[128];
    first_action(&hub, id2, sizeof(id2), status, sizeof(status));
    ck_assert_str_eq(id2, id);
    ck_assert_str_eq(status, "succeeded");
    cJSON *d = get_json(&hub, "/v1/decisions?since=0&limit=100");
    ck_assert_ptr_nonnull(d);
    char *text = cJSON_PrintUnformatted(d);
    ck_assert_msg(strstr(text, "\"decision\":\"fired\"") != NULL, "%s", text);
    free(text);
    cJSON_Delete(d);

    /* 4. a second hub on the same database: each serves what the other took */
    snprintf(cfg, sizeof(cfg), "listen: 127.0.0.1:0\nstore: \"%s&schema=hub&pool=1\"\n",
             g_server.url);
    write_file(dir, "collector2.yaml", cfg);
    char *h2args[] = {(char *)pt_bin_path("vigil-collector"), "--config", "collector2.yaml", NULL};
    pt_start(&hub2, "collector2", h2args, dir, 1);
    query(&hub2, "load", got, sizeof(got));
    ck_assert_str_eq(got, want);
    ck_assert_int_eq(ingest(&hub2, "b-6", "load", 6, t0 + 6, NULL), 202);
    ck_assert_int_eq(ingest(&hub, "b-6", "load", 66, t0 + 6, &dup), 202);
    ck_assert_int_eq(dup, 1); /* the batch ids are shared too */
    size_t n = strlen(want);
    snprintf(want + n, sizeof(want) - n, "%lld=6;", t0 + 6);
    query(&hub, "load", got, sizeof(got));
    ck_assert_str_eq(got, want);

    /* 5. the remediator's audit chain, on the server, verifies */
    cJSON *v = get_json(&rem, "/v1/audit/verify");
    ck_assert_ptr_nonnull(v);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(v, "ok")));
    cJSON_Delete(v);
    ck_assert_int_eq(pt_stop(&hub2), 0);
    ck_assert_int_eq(pt_stop(&hub), 0);
    ck_assert_int_eq(pt_stop(&rem), 0);
    /* restarted, the remediator reads its chain back from the server */
    pt_start(&rem, "remediator-restarted", rargs, dir, 1);
    v = get_json(&rem, "/v1/audit/verify");
    ck_assert_ptr_nonnull(v);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(v, "ok")));
    cJSON_Delete(v);
    ck_assert_int_eq(pt_stop(&rem), 0);
}
END_TEST

START_TEST(a_password_in_the_config_is_refused)
{
    const char *dir = vt_tmpdir();
    char cfg[2048];
    snprintf(cfg, sizeof(cfg),
             "listen: 127.0.0.1:0\nstore: \"postgresql://vigil:hunter2@127.0.0.1:%d/vigil\"\n",
             g_server.port);
    write_file(dir, "collector.yaml", cfg);
    char *hargs[] = {(char *)pt_bin_path("vigil-collector"), "--config", "collector.yaml", NULL};
    pt_proc hub;
    pt_start(&hub, "collector-pw", hargs, dir, 0);
    int st = pt_wait_exit(hub.pid);
    ck_assert_int_ne(st, 0);
    char *log = pt_slurp(hub.log);
    ck_assert_msg(strstr(log, "the store URL holds a password") != NULL, "%s", log);
    ck_assert_msg(strstr(log, "hunter2") == NULL, "the password was logged: %s", log);
    free(log);

    /* --check-config refuses it too, with its place in the file (it used to
     * say "valid"), also spelt with %-escapes, and connects to nothing */
    snprintf(cfg, sizeof(cfg),
             "listen: 127.0.0.1:0\nstore: \"postgresql://vigil@127.0.0.1:1/vigil?passw%%6Frd="
             "hunter2\"\n");
    write_file(dir, "collector.yaml", cfg);
    char *cargs[] = {(char *)pt_bin_path("vigil-collector"), "--config", "collector.yaml",
                     "--check-config", NULL};
    pt_start(&hub, "collector-pw-check", cargs, dir, 0);
    st = pt_wait_exit(hub.pid);
    ck_assert_int_ne(st, 0);
    log = pt_slurp(hub.log);
    ck_assert_msg(strstr(log, "collector.yaml:2:") != NULL, "%s", log);
    ck_assert_msg(strstr(log, "the store URL holds a password") != NULL, "%s", log);
    ck_assert_msg(strstr(log, "hunter2") == NULL, "the password was logged: %s", log);
    ck_assert_msg(strstr(log, "is valid") == NULL, "%s", log);
    free(log);
}
END_TEST

static Suite *hub_pg_suite(void)
{
    Suite *s = suite_create("hub_pg");
    TCase *tc = tcase_create("postgresql");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, daemons_on_postgresql);
    tcase_add_test(tc, a_password_in_the_config_is_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    int up = vt_pg_start(&g_server, "test_hub_pg");
    if (up == 0) {
        printf("test_hub_pg: SKIP: %s\n", g_server.err);
        return EXIT_SUCCESS;
    }
    if (up < 0) {
        fprintf(stderr, "test_hub_pg: cannot start PostgreSQL: %s\n", g_server.err);
        vt_pg_stop(&g_server);
        return EXIT_FAILURE;
    }
    SRunner *sr = srunner_create(hub_pg_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    vt_pg_stop(&g_server);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
