/* The remediator inside the hub's process: collector.yaml
 * `remediator: {inprocess: true, config: PATH}` (parsed by
 * vigil_hub_config_load(), read with vigil_hub_config_remediator()), and
 * vigil-collector running it as a real process: a metric ingested over HTTP
 * breaks a threshold, the in-process remediator runs an exec action (a marker
 * file appears), the hub's GET /v1/actions shows it succeeded, SIGTERM exits 0. */
#include <cJSON.h>
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

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *write_file(const char *dir, const char *name, const char *text)
{
    static char path[8][PATH_MAX];
    static int n;
    char *p = path[n++ % 8];
    snprintf(p, PATH_MAX, "%s", vt_write_file(dir, name, text, strlen(text)));
    return p;
}

/* A remediator.yaml whose HTTP side names variables that are not set: fine
 * for a remediator in process, refused for a standalone one. `audit` and
 * `marker` may be relative (to the working directory). */
static const char *remediator_yaml(const char *dir, const char *name, const char *audit,
                                   const char *marker)
{
    char text[4096];
    snprintf(text, sizeof(text),
             "listen: 127.0.0.1:1                 # not served in process\n"
             "secret_env: VT_IP_UNSET_SECRET\n"
             "hub: {url: 'http://127.0.0.1:1', token_env: VT_IP_UNSET_TOKEN}\n"
             "audit: sqlite://%s\n"
             "guards: {cooldown: 0s}\n"
             "execution: {tick: 50ms}\n"
             "actions:\n"
             "  - name: mark\n"
             "    type: exec\n"
             "    argv: [\"/usr/bin/touch\", \"%s\"]\n"
             "    targets: \"^demo$\"\n"
             "    timeout: 10s\n",
             audit, marker);
    return write_file(dir, name, text);
}

static int load_cfg(const char *text, vigil_hub_config **out)
{
    return vigil_hub_config_load_string(out, text, strlen(text), "c.yaml", NULL);
}

static void cfg_fails(const char *text, int code, const char *msg)
{
    vigil_hub_config *c = NULL;
    ck_assert_msg(load_cfg(text, &c) == code, "accepted or wrong code for: %s (%s)", text,
                  vigil_error_last()->message);
    vt_assert_error(code, msg);
    ck_assert_ptr_null(c);
}

/* ---- configuration ------------------------------------------------------------------ */

START_TEST(inprocess_config_loads)
{
    const char *dir = vt_tmpdir();
    unsetenv("VT_IP_UNSET_SECRET");
    unsetenv("VT_IP_UNSET_TOKEN");
    char audit[PATH_MAX + 16], marker[PATH_MAX + 16], text[PATH_MAX + 200];
    snprintf(audit, sizeof(audit), "%s/rem.db", dir);
    snprintf(marker, sizeof(marker), "%s/marker", dir);
    const char *rpath = remediator_yaml(dir, "r.yaml", audit, marker);
    snprintf(text, sizeof(text), "remediator:\n  inprocess: true\n  config: %s\n", rpath);

    vigil_hub_config *c = NULL;
    ck_assert_msg(load_cfg(text, &c) == VIGIL_OK, "%s", vigil_error_last()->message);
    const vigil_remediator_config *r = vigil_hub_config_remediator(c);
    ck_assert_ptr_nonnull(r);
    const vigil_remediator_options *ro = vigil_remediator_config_options(r);
    char url[PATH_MAX + 32];
    snprintf(url, sizeof(url), "sqlite://%s", audit);
    ck_assert_str_eq(ro->store_url, url);
    ck_assert_ptr_null(ro->secret_env);
    ck_assert_ptr_null(ro->hub_url);
    ck_assert_ptr_null(ro->hub_token_env);
    ck_assert_int_eq(ro->cooldown_ms, VIGIL_REMEDIATOR_DISABLED);
    ck_assert_int_eq(ro->tick_interval_ms, 50);
    ck_assert_ptr_nonnull(ro->actions);
    ck_assert_ptr_null(vigil_hub_config_hub(c)->remediator_url);
    vigil_hub_config_free(c);

    /* the same file for a standalone remediator needs its signing secret */
    vigil_remediator_config *alone = NULL;
    ck_assert_int_eq(vigil_remediator_config_load(&alone, rpath, NULL), VIGIL_EENV);
    vt_assert_error(VIGIL_EENV, "VT_IP_UNSET_SECRET");
    ck_assert_ptr_null(alone);

    /* inprocess: false, or no remediator block: nothing in process */
    setenv("VT_IP_SECRET", "inprocess-test-secret-00000000000", 1);
    ck_assert_int_eq(load_cfg("remediator: {inprocess: false, url: 'http://127.0.0.1:7601',"
                              " secret_env: VT_IP_SECRET}\n",
                              &c),
                     VIGIL_OK);
    ck_assert_ptr_null(vigil_hub_config_remediator(c));
    ck_assert_str_eq(vigil_hub_config_hub(c)->remediator_url, "http://127.0.0.1:7601");
    vigil_hub_config_free(c);
    ck_assert_int_eq(load_cfg("listen: 127.0.0.1:0\n", &c), VIGIL_OK);
    ck_assert_ptr_null(vigil_hub_config_remediator(c));
    vigil_hub_config_free(c);
    ck_assert_ptr_null(vigil_hub_config_remediator(NULL));
}
END_TEST

START_TEST(inprocess_config_errors)
{
    const char *dir = vt_tmpdir();
    char audit[PATH_MAX + 16], marker[PATH_MAX + 16], text[PATH_MAX + 300], expect[PATH_MAX + 200];
    snprintf(audit, sizeof(audit), "%s/rem.db", dir);
    snprintf(marker, sizeof(marker), "%s/marker", dir);
    const char *rpath = remediator_yaml(dir, "r.yaml", audit, marker);
    setenv("VT_IP_SECRET", "inprocess-test-secret-00000000000", 1);

    /* the keys of the HTTP dispatcher are refused next to inprocess, located */
    snprintf(text, sizeof(text),
             "remediator:\n  inprocess: true\n  config: %s\n  url: http://127.0.0.1:7601\n", rpath);
    cfg_fails(text, VIGIL_EVALUE, "c.yaml:4:8: remediator.url: not with inprocess: true");
    snprintf(text, sizeof(text),
             "remediator:\n  secret_env: VT_IP_SECRET\n  inprocess: true\n  config: %s\n", rpath);
    cfg_fails(text, VIGIL_EVALUE, "c.yaml:2:15: remediator.secret_env: not with inprocess: true");
    snprintf(text, sizeof(text), "remediator: {inprocess: true, config: %s, workers: 2}\n", rpath);
    cfg_fails(text, VIGIL_EVALUE, "remediator.workers: not with inprocess: true");

    cfg_fails("remediator: {inprocess: true}\n", VIGIL_EMISSING, "missing required key \"config\"");
    cfg_fails("remediator: {inprocess: true, config: ''}\n", VIGIL_EVALUE,
              "remediator.config: expected the path of a remediator.yaml");
    snprintf(text, sizeof(text),
             "remediator: {url: 'http://127.0.0.1:7601', secret_env: VT_IP_SECRET, config: %s}\n",
             rpath);
    cfg_fails(text, VIGIL_EVALUE, "remediator.config: needs inprocess: true");
    cfg_fails("remediator: {inprocess: maybe, config: r.yaml}\n", VIGIL_EVALUE,
              "remediator.inprocess");
    cfg_fails("remediator: {inprocess: true, config: [a]}\n", VIGIL_ETYPE, "remediator.config");

    /* the remediator.yaml's own errors: after the location of `config:` */
    snprintf(text, sizeof(text), "remediator:\n  inprocess: true\n  config: %s/none.yaml\n", dir);
    cfg_fails(text, VIGIL_EIO, "c.yaml:3:11: remediator.config: ");
    const char *bad = write_file(dir, "bad.yaml", "audit: 'sqlite::memory:'\nbogus: 1\n");
    snprintf(text, sizeof(text), "remediator:\n  inprocess: true\n  config: %s\n", bad);
    snprintf(expect, sizeof(expect), "c.yaml:3:11: remediator.config: %s:2:1: bogus: unknown key",
             bad);
    cfg_fails(text, VIGIL_EUNKNOWNKEY, expect);
    /* its HTTP keys are still checked, only their variables need not be set */
    const char *badhub = write_file(dir, "badhub.yaml", "hub: {url: 'ftp://x'}\n");
    snprintf(text, sizeof(text), "remediator: {inprocess: true, config: %s}\n", badhub);
    cfg_fails(text, VIGIL_EUNSUPPORTED, "hub.url: expected an http:// or https:// URL");
    const char *badact = write_file(dir, "badact.yaml",
                                    "actions:\n  - {name: a, type: exec, argv: [bin/x], x: 1}\n");
    snprintf(text, sizeof(text), "remediator: {inprocess: true, config: %s}\n", badact);
    cfg_fails(text, VIGIL_EUNKNOWNKEY, "badact.yaml:2:");
}
END_TEST

static const char *oom_text;

static int op_cfg(void *ctx)
{
    return load_cfg(oom_text, ctx);
}

static void cleanup_cfg(void *ctx)
{
    vigil_hub_config **out = ctx;
    vigil_hub_config_free(*out);
    *out = NULL;
}

START_TEST(inprocess_config_oom)
{
    const char *dir = vt_tmpdir();
    char audit[PATH_MAX + 16], marker[PATH_MAX + 16], text[PATH_MAX + 200];
    snprintf(audit, sizeof(audit), "%s/rem.db", dir);
    snprintf(marker, sizeof(marker), "%s/marker", dir);
    const char *rpath = remediator_yaml(dir, "r.yaml", audit, marker);
    snprintf(text, sizeof(text), "remediator: {inprocess: true, config: %s}\n", rpath);
    oom_text = text;
    vigil_hub_config *c = NULL;
    ck_assert_int_gt(vt_oom_sweep(op_cfg, cleanup_cfg, &c, 0), 5);
}
END_TEST

/* ---- the daemon ------------------------------------------------------------------- */

/* Starts vigil-collector with `config` in `cwd` and waits until it listens. */
static void daemon_start(pt_proc *d, const char *config, const char *cwd)
{
    char *args[] = {(char *)pt_bin_path("vigil-collector"), "--config", (char *)config, NULL};
    pt_start(d, "collector", args, cwd, 1);
}

static long request(const pt_proc *d, const char *method, const char *path, const char *body,
                    http_result *r)
{
    char url[600];
    snprintf(url, sizeof(url), "%s%s", d->base, path);
    http_do(method, url, body, body ? strlen(body) : 0, NULL, r);
    return r->status;
}

/* The status of the only action of the hub's GET /v1/actions, "" when none. */
static void action_status(const pt_proc *d, char *out, size_t size, char *action, size_t asize)
{
    http_result r;
    out[0] = action[0] = '\0';
    if (request(d, "GET", "/v1/actions", NULL, &r) == 200 && r.body) {
        cJSON *j = cJSON_Parse(r.body);
        cJSON *a = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "actions"), 0);
        const char *st = cJSON_GetStringValue(cJSON_GetObjectItem(a, "status"));
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(a, "action"));
        snprintf(out, size, "%s", st ? st : "");
        snprintf(action, asize, "%s", name ? name : "");
        cJSON_Delete(j);
    }
    http_result_free(&r);
}

START_TEST(daemon_runs_the_remediator_in_process)
{
    const char *dir = vt_tmpdir();
    unsetenv("VIGIL_REMEDIATOR_SECRET");
    unsetenv("VT_IP_UNSET_SECRET");
    unsetenv("VT_IP_UNSET_TOKEN");
    char marker[PATH_MAX + 16], text[PATH_MAX + 1024], rdb[PATH_MAX + 16];
    snprintf(marker, sizeof(marker), "%s/marker", dir);
    snprintf(rdb, sizeof(rdb), "%s/rem.db", dir);
    /* relative paths: to the daemon's working directory (dir) */
    remediator_yaml(dir, "rem.yaml", "./rem.db", marker);
    const char *cfg = write_file(dir, "collector.yaml",
                                 "listen: 127.0.0.1:0\n"
                                 "store: sqlite://./vigil.db\n"
                                 "http: {threads: 2, timeout: 5s, drain_timeout: 5s}\n"
                                 "remediator: {inprocess: true, config: rem.yaml}\n"
                                 "policy_interval: 100ms\n"
                                 "policies:\n"
                                 "  - name: demo_down\n"
                                 "    kind: threshold\n"
                                 "    metric: process_up\n"
                                 "    match: {process: demo}\n"
                                 "    window: 1s\n"
                                 "    op: \"<\"\n"
                                 "    threshold: 1\n"
                                 "    action: mark\n"
                                 "    target: \"{{tags.process}}\"\n");

    /* --check-config reads the remediator.yaml too */
    pt_proc d;
    char *chk[] = {(char *)pt_bin_path("vigil-collector"), "--config", (char *)cfg,
                   "--check-config", NULL};
    pt_start(&d, "check", chk, dir, 0);
    ck_assert_int_eq(pt_wait_exit(d.pid), 0);
    write_file(dir, "bad-rem.yaml", "guards: {cooldown: soon}\n");
    const char *badcfg =
        write_file(dir, "bad.yaml", "remediator: {inprocess: true, config: bad-rem.yaml}\n");
    char *chk2[] = {(char *)pt_bin_path("vigil-collector"), "--config", (char *)badcfg,
                    "--check-config", NULL};
    pt_start(&d, "check-bad", chk2, dir, 0);
    ck_assert_int_eq(pt_wait_exit(d.pid), 1);
    char *out = pt_slurp(d.log);
    ck_assert_msg(strstr(out, "bad.yaml:1:39: remediator.config: bad-rem.yaml:1:20: "
                              "guards.cooldown: ") != NULL,
                  "%s", out);
    free(out);

    daemon_start(&d, cfg, dir);
    http_result r;
    /* the remediator's own routes are not served */
    ck_assert_int_eq(request(&d, "POST", "/v1/execute", "{}", &r), 404);
    http_result_free(&r);
    /* but the hub's own admin routes reach it in process (routes_admin.c) */
    ck_assert_int_eq(request(&d, "GET", "/v1/audit/verify", NULL, &r), 200);
    ck_assert_ptr_nonnull(strstr(r.body, "\"ok\":true"));
    http_result_free(&r);

    snprintf(text, sizeof(text),
             "{\"agent\":\"h1\",\"batch_id\":\"ip-1\",\"metrics\":[{\"name\":\"process_up\","
             "\"value\":0,\"ts\":%lld,\"tags\":{\"process\":\"demo\"}}]}",
             (long long)wall_ms());
    ck_assert_int_eq(request(&d, "POST", "/v1/ingest", text, &r), 202);
    http_result_free(&r);

    char status[64] = "", action[64] = "";
    for (int64_t end = pt_mono_ms() + 20000; pt_mono_ms() < end; usleep(20000)) {
        action_status(&d, status, sizeof(status), action, sizeof(action));
        if (access(marker, F_OK) == 0 && strcmp(status, "succeeded") == 0)
            break;
    }
    if (strcmp(status, "succeeded") != 0)
        pt_dump_log(&d);
    ck_assert_msg(access(marker, F_OK) == 0, "the exec action did not write %s", marker);
    ck_assert_str_eq(status, "succeeded");
    ck_assert_str_eq(action, "mark");
    ck_assert_int_eq(access(rdb, F_OK), 0); /* the remediator's store, under the cwd */

    int rc = pt_stop(&d);
    if (rc != 0)
        pt_dump_log(&d);
    ck_assert_int_eq(rc, 0);
    out = pt_slurp(d.log);
    /* one server only: the hub's */
    const char *first = strstr(out, "msg=listening");
    ck_assert_ptr_nonnull(first);
    ck_assert_ptr_null(strstr(first + 1, "msg=listening"));
    ck_assert_ptr_nonnull(strstr(out, "component=remediator"));
    free(out);
}
END_TEST

static Suite *hub_inprocess_suite(void)
{
    Suite *s = suite_create("hub_inprocess");
    TCase *tc = tcase_create("config");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, inprocess_config_loads);
    tcase_add_test(tc, inprocess_config_errors);
    tcase_add_test(tc, inprocess_config_oom);
    suite_add_tcase(s, tc);
    TCase *td = tcase_create("daemon");
    tcase_set_timeout(td, 90);
    tcase_add_test(td, daemon_runs_the_remediator_in_process);
    suite_add_tcase(s, td);
    return s;
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    SRunner *sr = srunner_create(hub_inprocess_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
