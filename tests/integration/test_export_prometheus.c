/* GET /v1/export/prometheus scraped by a real Prometheus (/usr/bin/prometheus,
 * Debian package prometheus) that the test starts on a free loopback port
 * with a temporary configuration: one job federating the hub's export with
 * a match[] selector and a bearer token of scope read from a file
 * (authorization: credentials_file). The test then asks Prometheus' HTTP API
 * (/api/v1/query) until the hub's series appear with their value and labels
 * (a tag key made a valid label name, a value with a quote and a backslash).
 * The export refuses a request without the token (401) and with an ingest
 * token (403). Skipped with a message when Prometheus is not installed. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "httptest.h"
#include "proctest.h"
#include "redistest.h"
#include "testutil.h"

#define PROM_BIN     "/usr/bin/prometheus"
#define READ_TOKEN   "vt-export-read-token-0123456789"
#define INGEST_TOKEN "vt-export-ingest-token-0123456789"
#define DEADLINE_MS  60000

static int64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Starts args as rt_spawn() does and waits for the hub's "listening" line. */
static void hub_start(pt_proc *p, const char *dir)
{
    char cfg[1024], path[PATH_MAX];
    snprintf(cfg, sizeof(cfg),
             "listen: 127.0.0.1:0\n"
             "store: sqlite://%s/hub.db\n"
             "security:\n"
             "  tokens:\n"
             "    - {name: agents, env: VT_EXP_INGEST, scopes: [ingest]}\n"
             "    - {name: prometheus, env: VT_EXP_READ, scopes: [read]}\n",
             dir);
    vt_write_file(dir, "collector.yaml", cfg, strlen(cfg));
    snprintf(path, sizeof(path), "%s/collector.yaml", dir);
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "hub");
    snprintf(p->log, sizeof(p->log), "%s/hub.log", dir);
    char *args[] = {(char *)pt_bin_path("vigil-collector"), "--config", path, NULL};
    p->pid = rt_spawn(args, dir, p->log);
    static const char needle[] = "msg=listening address=127.0.0.1:";
    for (int64_t end = pt_mono_ms() + 20000; !p->port && pt_mono_ms() < end; usleep(10000)) {
        char *s = pt_slurp(p->log);
        const char *at = strstr(s, needle);
        if (at)
            p->port = atoi(at + strlen(needle));
        free(s);
    }
    if (!p->port)
        pt_dump_log(p);
    ck_assert_msg(p->port > 0, "the hub did not log its address");
    snprintf(p->base, sizeof(p->base), "http://127.0.0.1:%d", p->port);
}

static void ingest(const pt_proc *hub, const char *batch_id, const char *metrics)
{
    char body[2048], url[128];
    snprintf(body, sizeof(body), "{\"agent\":\"h1\",\"batch_id\":\"%s\",\"metrics\":[%s]}",
             batch_id, metrics);
    snprintf(url, sizeof(url), "%s/v1/ingest", hub->base);
    http_opts o = {0};
    o.token = INGEST_TOKEN;
    http_result r;
    http_do("POST", url, body, strlen(body), &o, &r);
    ck_assert_msg(r.status == 202, "ingest: %ld %s", r.status, r.body);
    http_result_free(&r);
}

/* Prometheus' instant query; the "result" array (cJSON_Delete the root in
 * *root), or NULL while Prometheus is not answering. */
static cJSON *prom_query(int port, const char *query_encoded, cJSON **root)
{
    char url[1024];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v1/query?query=%s", port, query_encoded);
    http_result r;
    http_do("GET", url, NULL, 0, NULL, &r);
    *root = r.status == 200 ? cJSON_Parse(r.body) : NULL;
    http_result_free(&r);
    cJSON *data = *root ? cJSON_GetObjectItem(*root, "data") : NULL;
    return data ? cJSON_GetObjectItem(data, "result") : NULL;
}

static const char *label(const cJSON *series, const char *name)
{
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(series, "metric"), name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const char *value_of(const cJSON *series)
{
    const cJSON *v = cJSON_GetArrayItem(cJSON_GetObjectItem(series, "value"), 1);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

START_TEST(prometheus_scrapes_the_export)
{
    if (access(PROM_BIN, X_OK) != 0) {
        fprintf(stderr,
                "SKIP prometheus_scrapes_the_export: %s is not installed (Debian package "
                "prometheus; scripts/deps.sh installs it)\n",
                PROM_BIN);
        return;
    }
    setenv("VT_EXP_READ", READ_TOKEN, 1);
    setenv("VT_EXP_INGEST", INGEST_TOKEN, 1);
    const char *dir = vt_tmpdir();
    pt_proc hub;
    hub_start(&hub, dir);
    char m[1024];
    int64_t ts = now_ms();
    snprintf(m, sizeof(m),
             "{\"name\":\"vt_temp\",\"value\":21.5,\"ts\":%lld,\"tags\":{\"host\":\"h1\","
             "\"rack:row\":\"q\\\"u\\\\o\"}},"
             "{\"name\":\"vt_temp\",\"value\":-3,\"ts\":%lld,\"tags\":{\"host\":\"h2\"}},"
             "{\"name\":\"other_metric\",\"value\":9,\"ts\":%lld,\"tags\":{\"host\":\"h1\"}}",
             (long long)ts, (long long)ts, (long long)ts);
    ingest(&hub, "exp-1", m);

    /* the route's own answers */
    char url[512];
    snprintf(url, sizeof(url), "%s/v1/export/prometheus?match[]=vt_temp", hub.base);
    http_result r;
    http_do("GET", url, NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 401);
    http_result_free(&r);
    http_opts o = {0};
    o.token = INGEST_TOKEN;
    http_do("GET", url, NULL, 0, &o, &r);
    ck_assert_int_eq(r.status, 403);
    http_result_free(&r);
    o.token = READ_TOKEN;
    http_do("GET", url, NULL, 0, &o, &r);
    ck_assert_int_eq(r.status, 200);
    char want[512];
    snprintf(want, sizeof(want),
             "# TYPE vt_temp untyped\n"
             "vt_temp{host=\"h1\",rack_row=\"q\\\"u\\\\o\"} 21.5 %lld\n"
             "vt_temp{host=\"h2\"} -3 %lld\n",
             (long long)ts, (long long)ts);
    ck_assert_str_eq(r.body, want);
    http_result_free(&r);

    /* Prometheus, federating it */
    vt_write_file(dir, "read.token", READ_TOKEN "\n", strlen(READ_TOKEN) + 1);
    char cfg[2048], path[PATH_MAX], data[PATH_MAX], listen[64];
    snprintf(cfg, sizeof(cfg),
             "global:\n"
             "  scrape_interval: 1s\n"
             "  scrape_timeout: 1s\n"
             "scrape_configs:\n"
             "  - job_name: vigil\n"
             "    honor_labels: true\n"
             "    metrics_path: /v1/export/prometheus\n"
             "    params:\n"
             "      'match[]': ['{__name__=~\"vt_.*\"}']\n"
             "    authorization:\n"
             "      credentials_file: %s/read.token\n"
             "    static_configs:\n"
             "      - targets: ['127.0.0.1:%d']\n",
             dir, hub.port);
    vt_write_file(dir, "prometheus.yml", cfg, strlen(cfg));
    snprintf(path, sizeof(path), "--config.file=%s/prometheus.yml", dir);
    snprintf(data, sizeof(data), "--storage.tsdb.path=%s/prom-data", dir);
    int pport = ht_closed_port();
    snprintf(listen, sizeof(listen), "--web.listen-address=127.0.0.1:%d", pport);
    char plog[PATH_MAX + 16];
    snprintf(plog, sizeof(plog), "%s/prometheus.log", dir);
    char *args[] = {PROM_BIN, path, data, listen, "--log.level=warn", NULL};
    pid_t prom = rt_spawn(args, dir, plog);

    int found = 0;
    cJSON *root = NULL;
    for (int64_t end = pt_mono_ms() + DEADLINE_MS; pt_mono_ms() < end && !found; usleep(200000)) {
        cJSON_Delete(root);
        cJSON *res = prom_query(pport, "vt_temp", &root);
        found = cJSON_GetArraySize(res) == 2;
        int st;
        ck_assert_msg(waitpid(prom, &st, WNOHANG) != prom, "prometheus exited: see %s", plog);
    }
    if (!found) {
        char *s = pt_slurp(plog);
        fprintf(stderr, "---- prometheus log ----\n%s\n", s);
        free(s);
    }
    ck_assert_msg(found, "Prometheus never returned the hub's two vt_temp series");
    cJSON *res = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "data"), "result");
    int seen_h1 = 0, seen_h2 = 0;
    char instance[64];
    snprintf(instance, sizeof(instance), "127.0.0.1:%d", hub.port);
    cJSON *s;
    cJSON_ArrayForEach(s, res)
    {
        ck_assert_str_eq(label(s, "__name__"), "vt_temp");
        ck_assert_str_eq(label(s, "job"), "vigil");
        ck_assert_str_eq(label(s, "instance"), instance);
        if (strcmp(label(s, "host"), "h1") == 0) {
            ck_assert_str_eq(value_of(s), "21.5");
            ck_assert_str_eq(label(s, "rack_row"), "q\"u\\o");
            seen_h1 = 1;
        } else {
            ck_assert_str_eq(label(s, "host"), "h2");
            ck_assert_str_eq(value_of(s), "-3");
            ck_assert_ptr_null(label(s, "rack_row"));
            seen_h2 = 1;
        }
    }
    ck_assert(seen_h1 && seen_h2);
    cJSON_Delete(root);
    /* the selector kept other_metric out; the scrape itself succeeded */
    res = prom_query(pport, "other_metric", &root);
    ck_assert_int_eq(cJSON_GetArraySize(res), 0);
    cJSON_Delete(root);
    res = prom_query(pport, "up%7Bjob%3D%22vigil%22%7D", &root);
    ck_assert_int_eq(cJSON_GetArraySize(res), 1);
    ck_assert_str_eq(value_of(cJSON_GetArrayItem(res, 0)), "1");
    cJSON_Delete(root);

    kill(prom, SIGTERM);
    waitpid(prom, NULL, 0);
    ck_assert_int_eq(pt_stop(&hub), 0);
}
END_TEST

static Suite *export_suite(void)
{
    Suite *s = suite_create("export_prometheus");
    TCase *tc = tcase_create("prometheus");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, prometheus_scrapes_the_export);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(export_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
