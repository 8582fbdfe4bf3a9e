/* The demo as a newcomer plays with it (issue 13): vigil-remediator,
 * vigil-collector and vigil-agent run from the shipped configs/remediator.yaml,
 * collector.yaml and agent.yaml, unmodified, as scripts/run.sh runs them:
 * secrets in the environment, the daemons started in that order (each waited
 * for until it logs msg=listening), relative paths against the working
 * directory. The working directory is a temporary one instead of the tree,
 * holding var/ and build/bin/vigil-demo-service (a copy of the sanitizer
 * build's), so the configs' relative paths (./var/..., ./build/bin/...) need
 * no rewriting and the tree's ./var is left alone. The one change: the
 * configs are copied there with their ports (7600, 7601, 7680) replaced by
 * free ones, so a `make run` of the developer's does not make the test fail
 * (nor the test disturb it). The loop starts the demo service; the test kills
 * it with SIGKILL five times, the first right after the loop started it, then
 * 3 s after each heal, and prints the heal latencies (kill -> a new live
 * process in var/demo.pid) and their p50: each is healed within 2 s (the
 * issue's re-crash bound: the first kill included, which may come before the
 * agent ever saw the process up), p50 under 100 ms.
 * Then it keeps killing until the remediator's budget quarantines the target:
 * the decision log shows `quarantined` with how to release it. */
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

#define KILLS        5
#define HEAL_MAX_MS  30000
#define HEAL_EACH_MS 2000 /* every heal, the first kill's included */
#define READ_TOKEN   "demo-test-read-token-000000000"
#define ADMIN_TOKEN  "demo-test-admin-token-00000000"
#define KILLS_BUDGET 12 /* kills after the five, at most, until the quarantine */

/* GET base+path with the read token, parsed (NULL unless 200). */
static cJSON *get_json(const char *base, const char *path)
{
    char url[600];
    http_result r;
    http_opts o = {0};
    o.token = READ_TOKEN;
    snprintf(url, sizeof(url), "%s%s", base, path);
    http_do("GET", url, NULL, 0, &o, &r);
    cJSON *j = r.status == 200 && r.body ? cJSON_Parse(r.body) : NULL;
    http_result_free(&r);
    return j;
}

/* The pid in var/demo.pid, or 0. */
static pid_t read_pidfile(const char *path)
{
    char *s = pt_slurp(path);
    long pid = strtol(s, NULL, 10);
    free(s);
    return pid > 0 ? (pid_t)pid : 0;
}

/* Waits for a live pid in the pidfile other than `old`; 0 after `ms`. */
static pid_t wait_new_pid(const char *pidfile, pid_t old, int64_t ms)
{
    for (int64_t end = pt_mono_ms() + ms; pt_mono_ms() < end;) {
        pid_t p = read_pidfile(pidfile);
        if (p && p != old && kill(p, 0) == 0)
            return p;
        usleep(1000);
    }
    return 0;
}

/* Copies src to dst with mode 0755 (the remediator refuses a program others
 * may write). */
static void copy_program(const char *src, const char *dst)
{
    FILE *in = fopen(src, "rb");
    ck_assert_ptr_nonnull(in);
    FILE *out = fopen(dst, "wb");
    ck_assert_ptr_nonnull(out);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
    fclose(in);
    ck_assert_int_eq(fclose(out), 0);
    ck_assert_int_eq(chmod(dst, 0755), 0);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Counts the decisions of demo_down of `kind`; with `reason`, copies the last
 * one's reason. */
static int count_decisions(const char *hub, const char *kind, char *reason, size_t size)
{
    cJSON *j = get_json(hub, "/v1/decisions?since=0&limit=1000");
    cJSON *list = j ? cJSON_GetObjectItem(j, "decisions") : NULL;
    cJSON *d;
    int n = 0;
    cJSON_ArrayForEach(d, list)
    {
        cJSON *k = cJSON_GetObjectItem(d, "decision");
        cJSON *pol = cJSON_GetObjectItem(d, "policy");
        cJSON *why = cJSON_GetObjectItem(d, "reason");
        if (cJSON_IsString(k) && cJSON_IsString(pol) && !strcmp(pol->valuestring, "demo_down") &&
            !strcmp(k->valuestring, kind)) {
            n++;
            if (reason && cJSON_IsString(why))
                snprintf(reason, size, "%s", why->valuestring);
        }
    }
    cJSON_Delete(j);
    return n;
}

static void print_decisions(const char *hub)
{
    cJSON *j = get_json(hub, "/v1/decisions?since=0&limit=1000");
    cJSON *list = j ? cJSON_GetObjectItem(j, "decisions") : NULL;
    cJSON *d;
    cJSON_ArrayForEach(d, list)
    {
        cJSON *k = cJSON_GetObjectItem(d, "decision");
        cJSON *why = cJSON_GetObjectItem(d, "reason");
        printf("demo: decision %-12s %s\n", cJSON_IsString(k) ? k->valuestring : "?",
               cJSON_IsString(why) ? why->valuestring : "");
    }
    cJSON_Delete(j);
}

/* Copies configs/<name> of the tree to dir/<name> with the shipped ports
 * replaced by the test's; every other byte is the shipped file's. */
static void copy_config(const char *src, const char *dir, const char *name, const int ports[3])
{
    static const char *const shipped[3] = {"7600", "7601", "7680"};
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/configs/%s", src, name);
    char *text = NULL;
    size_t len = 0;
    FILE *in = fopen(path, "rb");
    ck_assert_msg(in != NULL, "%s: %s", path, strerror(errno));
    FILE *mem = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(mem);
    int c;
    while ((c = fgetc(in)) != EOF)
        fputc(c, mem);
    fclose(in);
    fclose(mem);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *out = fopen(path, "wb");
    ck_assert_msg(out != NULL, "%s: %s", path, strerror(errno));
    for (size_t i = 0; i < len;) {
        int k = 0;
        while (k < 3 && strncmp(text + i, shipped[k], 4) != 0)
            k++;
        /* a whole number only: not a digit before or after */
        if (k < 3 && (i == 0 || text[i - 1] < '0' || text[i - 1] > '9') &&
            (i + 4 >= len || text[i + 4] < '0' || text[i + 4] > '9')) {
            fprintf(out, "%d", ports[k]);
            i += 4;
        } else {
            fputc(text[i++], out);
        }
    }
    fclose(out);
    free(text);
}

START_TEST(five_kills_healed_in_milliseconds)
{
    const char *dir = vt_tmpdir();
    const char *src = vt_srcdir();
    char path[PATH_MAX], pidfile[PATH_MAX + 32], cfg[3][PATH_MAX];
    pt_proc rem, hub, agent;

    /* scripts/run.sh: the secrets in the environment, var/ made */
    setenv("VIGIL_INGEST_TOKEN", "demo-test-ingest-token-0000000", 1);
    setenv("VIGIL_READ_TOKEN", READ_TOKEN, 1);
    setenv("VIGIL_REMEDIATOR_SECRET", "demo-test-signing-secret-000000000", 1);
    setenv("VIGIL_REMEDIATOR_HUB_TOKEN", "demo-test-hub-token-0000000000", 1);
    setenv("VIGIL_ADMIN_TOKEN", ADMIN_TOKEN, 1);
    snprintf(path, sizeof(path), "%s/var", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/build", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/build/bin", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/build/bin/vigil-demo-service", dir);
    copy_program(pt_bin_path("vigil-demo-service"), path);
    snprintf(pidfile, sizeof(pidfile), "%s/var/demo.pid", dir);
    int ports[3] = {ht_closed_port(), ht_closed_port(), ht_closed_port()};
    ck_assert(ports[0] != ports[1] && ports[1] != ports[2] && ports[0] != ports[2]);
    copy_config(src, dir, "remediator.yaml", ports);
    copy_config(src, dir, "collector.yaml", ports);
    copy_config(src, dir, "agent.yaml", ports);
    snprintf(cfg[0], sizeof(cfg[0]), "%s/remediator.yaml", dir);
    snprintf(cfg[1], sizeof(cfg[1]), "%s/collector.yaml", dir);
    snprintf(cfg[2], sizeof(cfg[2]), "%s/agent.yaml", dir);

    char *rargs[] = {(char *)pt_bin_path("vigil-remediator"), "--config", cfg[0], NULL};
    pt_start(&rem, "remediator", rargs, dir, 1);
    char *hargs[] = {(char *)pt_bin_path("vigil-collector"), "--config", cfg[1], NULL};
    pt_start(&hub, "collector", hargs, dir, 1);
    char *aargs[] = {(char *)pt_bin_path("vigil-agent"), "--config", cfg[2], NULL};
    pt_start(&agent, "agent", aargs, dir, 0);
    ck_assert_int_eq(rem.port, ports[1]);
    ck_assert_int_eq(hub.port, ports[0]);

    /* the loop starts the demo by itself */
    pid_t pid = wait_new_pid(pidfile, 0, 30000);
    if (!pid) {
        pt_dump_log(&agent);
        pt_dump_log(&hub);
        pt_dump_log(&rem);
    }
    ck_assert_msg(pid > 0, "the loop did not start vigil-demo-service within 30 s");

    /* five kills: the first at once, then 3 s after each heal */
    int64_t lat[KILLS];
    for (int k = 0; k < KILLS; k++) {
        if (k)
            usleep(3000 * 1000);
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        int64_t t0 = pt_mono_ms();
        pid_t next = wait_new_pid(pidfile, pid, HEAL_MAX_MS);
        lat[k] = pt_mono_ms() - t0;
        if (!next) {
            print_decisions(hub.base);
            pt_dump_log(&hub);
            pt_dump_log(&rem);
        }
        ck_assert_msg(next > 0, "kill %d: not healed within %d ms", k + 1, HEAL_MAX_MS);
        printf("demo: kill %d -> healed in %lld ms\n", k + 1, (long long)lat[k]);
        fflush(stdout);
        pid = next;
    }
    int64_t sorted[KILLS];
    memcpy(sorted, lat, sizeof(lat));
    qsort(sorted, KILLS, sizeof(sorted[0]), cmp_i64);
    printf("demo: heal latencies %lld %lld %lld %lld %lld ms; p50 %lld ms\n", (long long)lat[0],
           (long long)lat[1], (long long)lat[2], (long long)lat[3], (long long)lat[4],
           (long long)sorted[KILLS / 2]);
    fflush(stdout);
    ck_assert_int_eq(count_decisions(hub.base, "action_failed", NULL, 0), 0);
    ck_assert_int_eq(count_decisions(hub.base, "quarantined", NULL, 0), 0);
    ck_assert_int_ge(count_decisions(hub.base, "fired", NULL, 0), KILLS + 1);
    ck_assert_msg(sorted[KILLS / 2] < 100, "p50 %lld ms", (long long)sorted[KILLS / 2]);
    for (int k = 0; k < KILLS; k++)
        ck_assert_msg(lat[k] < HEAL_EACH_MS, "kill %d healed in %lld ms, not within %d ms", k + 1,
                      (long long)lat[k], HEAL_EACH_MS);

    /* then the budget says otherwise: quarantined, with how to release */
    char reason[2048] = "";
    int quarantined = 0;
    for (int k = 0; k < KILLS_BUDGET && !quarantined; k++) {
        usleep(3000 * 1000);
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        pid_t next = wait_new_pid(pidfile, pid, 3000);
        for (int64_t end = pt_mono_ms() + 3000; !next && !quarantined && pt_mono_ms() < end;
             usleep(50000))
            quarantined = count_decisions(hub.base, "quarantined", reason, sizeof(reason)) > 0;
        if (next)
            pid = next;
        else
            ck_assert_msg(quarantined, "kill %d: neither healed nor quarantined", KILLS + k + 1);
    }
    print_decisions(hub.base);
    ck_assert_msg(quarantined, "never quarantined after %d more kills", KILLS_BUDGET);
    ck_assert_msg(strstr(reason, "POST /v1/targets/demo/release on the hub (vigil release)") !=
                      NULL,
                  "%s", reason);
    ck_assert_msg(strstr(reason, "; sent again in 1m (at ") != NULL, "%s", reason);
    ck_assert_int_eq(count_decisions(hub.base, "action_failed", NULL, 0), 0);

    ck_assert_int_eq(pt_stop(&agent), 0);
    ck_assert_int_eq(pt_stop(&hub), 0);
    ck_assert_int_eq(pt_stop(&rem), 0);
    pid_t last = read_pidfile(pidfile);
    if (last > 0 && kill(last, 0) == 0) {
        kill(last, SIGKILL);
        usleep(100000);
    }
}
END_TEST

static Suite *demo_suite(void)
{
    Suite *s = suite_create("demo");
    TCase *tc = tcase_create("demo");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, five_kills_healed_in_milliseconds);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(demo_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
