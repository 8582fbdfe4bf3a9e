/* A hub answering 413, with the real daemons (issue 13): vigil-collector runs
 * with a small http.max_body, vigil-agent with an exec collector printing more
 * samples than one body may hold. The agent splits the batch the hub finds too
 * large, and every sample arrives exactly once: the hub's /v1/query shows each
 * of them, once, and again after a while (no late duplicates). Nothing is
 * mocked. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "httptest.h"
#include "proctest.h"
#include "testutil.h"

#define SAMPLES     300
#define MAX_BODY    512
#define DEADLINE_MS 30000

static void write_file(const char *dir, const char *name, const char *text)
{
    vt_write_file(dir, name, text, strlen(text));
}

/* Queries spool_seq on the hub: the number of series, and sets *once when
 * each of them has exactly one point and the values 0..SAMPLES-1 each appear
 * once (its tag i equal to its value). */
static int query(const pt_proc *hub, int *once)
{
    char url[256];
    snprintf(url, sizeof(url), "%s/v1/query?name=spool_seq&from=0&to=now", hub->base);
    http_result r;
    http_do("GET", url, NULL, 0, NULL, &r);
    ck_assert_msg(r.status == 200, "query: %ld %s", (long)r.status, r.body ? r.body : "");
    cJSON *doc = cJSON_Parse(r.body);
    http_result_free(&r);
    ck_assert_ptr_nonnull(doc);
    const cJSON *series = cJSON_GetObjectItemCaseSensitive(doc, "series");
    ck_assert(cJSON_IsArray(series));
    static int seen[SAMPLES];
    memset(seen, 0, sizeof(seen));
    int n = 0, ok = 1;
    const cJSON *s;
    cJSON_ArrayForEach(s, series)
    {
        n++;
        const cJSON *tags = cJSON_GetObjectItemCaseSensitive(s, "tags");
        const cJSON *i = cJSON_GetObjectItemCaseSensitive(tags, "i");
        const cJSON *points = cJSON_GetObjectItemCaseSensitive(s, "points");
        if (!cJSON_IsString(i) || !cJSON_IsArray(points) || cJSON_GetArraySize(points) != 1) {
            ok = 0;
            continue;
        }
        int k = atoi(i->valuestring);
        const cJSON *v = cJSON_GetArrayItem(cJSON_GetArrayItem(points, 0), 1);
        if (k < 0 || k >= SAMPLES || !cJSON_IsNumber(v) || (int)v->valuedouble != k)
            ok = 0;
        else
            seen[k]++;
    }
    for (int k = 0; k < SAMPLES; k++)
        ok &= seen[k] == 1;
    cJSON_Delete(doc);
    *once = ok && n == SAMPLES;
    return n;
}

START_TEST(hub_413_every_metric_arrives_once)
{
    const char *dir = vt_tmpdir();
    static char text[SAMPLES * 48];
    size_t len = 0;
    for (int i = 0; i < SAMPLES; i++)
        len += (size_t)snprintf(text + len, sizeof(text) - len, "spool_seq{i=\"%d\"} %d\n", i, i);
    write_file(dir, "samples.prom", text);

    char cfg[8192];
    snprintf(cfg, sizeof(cfg),
             "listen: 127.0.0.1:0\n"
             "http: {max_body: %d}\n"
             "store: sqlite://%s/hub.db\n",
             MAX_BODY, dir);
    write_file(dir, "collector.yaml", cfg);
    pt_proc hub, agent;
    char *hargs[] = {(char *)pt_bin_path("vigil-collector"), "--config", "collector.yaml", NULL};
    pt_start(&hub, "collector", hargs, dir, 1);

    snprintf(cfg, sizeof(cfg),
             "agent: {id: h1}\n"
             "hub: {urls: [\"%s\"], connect_timeout: 1s, timeout: 5s, backoff: 100ms,"
             " backoff_max: 1s}\n"
             "interval: 1h\n"
             "batch: {max_metrics: 1000, max_delay: 20ms}\n"
             "spool: {path: %s/spool, fsync: false}\n"
             "collectors:\n"
             "  - {type: exec, name: seq, argv: [/bin/cat, \"%s/samples.prom\"], interval: 1h}\n",
             hub.base, dir, dir);
    write_file(dir, "agent.yaml", cfg);
    char *aargs[] = {(char *)pt_bin_path("vigil-agent"), "--config", "agent.yaml", NULL};
    pt_start(&agent, "agent", aargs, dir, 0);

    int once = 0, n = 0;
    for (int64_t end = pt_mono_ms() + DEADLINE_MS; pt_mono_ms() < end;) {
        n = query(&hub, &once);
        if (n >= SAMPLES)
            break;
        usleep(50000);
    }
    if (!once) {
        pt_dump_log(&agent);
        pt_dump_log(&hub);
    }
    ck_assert_msg(once, "%d series of spool_seq, not each of %d samples once", n, SAMPLES);
    /* the hub did answer 413, and the agent split the batch */
    char *log = pt_slurp(agent.log);
    ck_assert_ptr_nonnull(strstr(log, "hub found the batch too large; splitting"));
    ck_assert_ptr_null(strstr(log, "cannot be split; dropped"));
    int splits = 0;
    for (const char *p = log; (p = strstr(p, "too large; splitting")) != NULL; p++)
        splits++;
    free(log);
    log = pt_slurp(hub.log);
    int too_large = 0, taken = 0;
    for (const char *p = log; (p = strstr(p, "path=/v1/ingest status=413")) != NULL; p++)
        too_large++;
    for (const char *p = log; (p = strstr(p, "path=/v1/ingest status=202")) != NULL; p++)
        taken++;
    free(log);
    ck_assert_int_ge(too_large, 1);
    ck_assert_int_ge(taken, 2);
    /* and nothing arrives twice later (a resend from the spool) */
    usleep(1500000);
    n = query(&hub, &once);
    ck_assert_msg(once, "%d series of spool_seq after 1.5 s, not each of %d samples once", n,
                  SAMPLES);
    printf("413 with the daemons: %d samples each stored once, max_body %d: %d answers 413, "
           "%d batches taken, %d splits logged\n",
           SAMPLES, MAX_BODY, too_large, taken, splits);
    ck_assert_int_eq(pt_stop(&agent), 0);
    ck_assert_int_eq(pt_stop(&hub), 0);
}
END_TEST

static Suite *agent_413_suite(void)
{
    Suite *s = suite_create("agent_413");
    TCase *tc = tcase_create("agent_413");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, hub_413_every_metric_arrives_once);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(agent_413_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
