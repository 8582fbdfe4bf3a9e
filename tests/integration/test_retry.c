/* Ineffective is not the end, and a cooldown delays, it does not drop (issue
 * 13), with the real daemons on ephemeral loopback ports: the agent watches a
 * service whose pidfile never appears (process_up stays 0), the hub's policy
 * asks the remediator for a `log` action that succeeds without fixing
 * anything, verification fails (verify 1s, no escalate), and the policy asks
 * again: `ineffective` then `fired` with a reason starting "retry: ". The
 * remediator's cooldown (2s) refuses that retry with retry_after_ms over
 * HTTP: the hub records `deferred` and its events ticker sends the request
 * when the cooldown ends (`fired`, "retry: the remediator's cooldown
 * ended"), which then runs. Prints the decision log. */
#include <cJSON.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "httptest.h"
#include "proctest.h"
#include "testutil.h"

#define SECRET      "retry-test-signing-secret-0123456789"
#define DEADLINE_MS 30000

static void write_file(const char *dir, const char *name, const char *text)
{
    vt_write_file(dir, name, text, strlen(text));
}

/* The decisions of policy ghost_down, "kind | reason | action_id" per line. */
static int decisions(const pt_proc *hub, char kinds[][64], char reasons[][512], char ids[][160],
                     int max)
{
    char url[600];
    http_result r;
    snprintf(url, sizeof(url), "%s/v1/decisions?since=0&limit=1000", hub->base);
    http_do("GET", url, NULL, 0, NULL, &r);
    cJSON *j = r.status == 200 && r.body ? cJSON_Parse(r.body) : NULL;
    http_result_free(&r);
    cJSON *list = j ? cJSON_GetObjectItem(j, "decisions") : NULL;
    cJSON *d;
    int n = 0;
    cJSON_ArrayForEach(d, list)
    {
        cJSON *k = cJSON_GetObjectItem(d, "decision");
        cJSON *why = cJSON_GetObjectItem(d, "reason");
        cJSON *aid = cJSON_GetObjectItem(d, "action_id");
        if (n >= max || !cJSON_IsString(k))
            continue;
        snprintf(kinds[n], 64, "%s", k->valuestring);
        snprintf(reasons[n], 512, "%s", cJSON_IsString(why) ? why->valuestring : "");
        snprintf(ids[n], 160, "%s", cJSON_IsString(aid) ? aid->valuestring : "");
        n++;
    }
    cJSON_Delete(j);
    return n;
}

START_TEST(ineffective_then_retry_then_deferred)
{
    const char *dir = vt_tmpdir();
    char cfg[4096];
    pt_proc rem, hub, agent;
    setenv("VIGIL_REMEDIATOR_SECRET", SECRET, 1);

    snprintf(cfg, sizeof(cfg),
             "listen: 127.0.0.1:0\n"
             "secret_env: VIGIL_REMEDIATOR_SECRET\n"
             "audit: sqlite://%s/remediator.db\n"
             "guards: {cooldown: 2s, max_attempts: 0, rate_limit: 0}\n"
             "actions:\n"
             "  - {name: note, type: log, level: info, targets: \"^ghost$\"}\n",
             dir);
    write_file(dir, "remediator.yaml", cfg);
    char *rargs[] = {(char *)pt_bin_path("vigil-remediator"), "--config", "remediator.yaml", NULL};
    pt_start(&rem, "remediator", rargs, dir, 1);

    snprintf(
        cfg, sizeof(cfg),
        "listen: 127.0.0.1:0\n"
        "store: sqlite://%s/hub.db\n"
        "remediator: {url: \"%s\", secret_env: VIGIL_REMEDIATOR_SECRET}\n"
        "policy_interval: 100ms\n"
        "policies:\n"
        "  - {name: ghost_down, kind: threshold, metric: process_up, match: {process: ghost},\n"
        "     window: 1s, op: \"<\", threshold: 1, action: note,\n"
        "     target: \"{{tags.process}}\", verify: {within: 1s}}\n",
        dir, rem.base);
    write_file(dir, "collector.yaml", cfg);
    char *hargs[] = {(char *)pt_bin_path("vigil-collector"), "--config", "collector.yaml", NULL};
    pt_start(&hub, "collector", hargs, dir, 1);

    snprintf(cfg, sizeof(cfg),
             "agent: {id: h1}\n"
             "hub: {urls: [\"%s\"], connect_timeout: 1s, timeout: 5s, backoff: 100ms,"
             " backoff_max: 1s}\n"
             "interval: 1s\n"
             "batch: {max_metrics: 1000, max_delay: 100ms}\n"
             "spool: {path: %s/spool, fsync: false}\n"
             "collectors:\n"
             "  - {type: process, name: ghost, pidfile: %s/ghost.pid, interval: 200ms}\n",
             hub.base, dir, dir);
    write_file(dir, "agent.yaml", cfg);
    char *aargs[] = {(char *)pt_bin_path("vigil-agent"), "--config", "agent.yaml", NULL};
    pt_start(&agent, "agent", aargs, dir, 0);

    /* fired, ineffective, fired (retry), deferred, fired (retry after the cooldown) */
    static char kinds[64][64], reasons[64][512], ids[64][160];
    int n = 0;
    for (int64_t end = pt_mono_ms() + DEADLINE_MS; pt_mono_ms() < end; usleep(100000)) {
        n = decisions(&hub, kinds, reasons, ids, 64);
        if (n >= 5)
            break;
    }
    for (int i = 0; i < n; i++)
        printf("retry: decision %-12s %s\n", kinds[i], reasons[i]);
    fflush(stdout);
    if (n < 5) {
        pt_dump_log(&hub);
        pt_dump_log(&rem);
    }
    ck_assert_int_ge(n, 5);
    ck_assert_str_eq(kinds[0], "fired");
    ck_assert_str_eq(kinds[1], "ineffective");
    ck_assert_str_eq(ids[1], ids[0]);
    ck_assert_str_eq(reasons[1], "no recovery within 1s after note succeeded");
    ck_assert_str_eq(kinds[2], "fired");
    ck_assert_str_ne(ids[2], ids[0]);
    ck_assert_msg(
        strncmp(reasons[2], "retry: note was ineffective (no recovery within 1s); ", 53) == 0, "%s",
        reasons[2]);
    /* the remediator's cooldown (2s since the first) refuses it, with retry_after_ms */
    ck_assert_str_eq(kinds[3], "deferred");
    ck_assert_str_eq(ids[3], ids[2]);
    ck_assert_msg(strstr(reasons[3], "refused by the remediator: cooldown: note ran on this "
                                     "target ") != NULL &&
                      strstr(reasons[3], "; sent again in ") != NULL,
                  "%s", reasons[3]);
    ck_assert_str_eq(kinds[4], "fired");
    ck_assert_msg(strncmp(reasons[4], "retry: the remediator's cooldown ended; ", 40) == 0, "%s",
                  reasons[4]);

    ck_assert_int_eq(pt_stop(&agent), 0);
    ck_assert_int_eq(pt_stop(&hub), 0);
    ck_assert_int_eq(pt_stop(&rem), 0);
}
END_TEST

static Suite *retry_suite(void)
{
    Suite *s = suite_create("retry");
    TCase *tc = tcase_create("retry");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, ineffective_then_retry_then_deferred);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(retry_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
