/* A fleet: one hub, a remediator per host. Three vigil-remediator processes
 * on loopback stand for host web-01, host db-01 and the default remediator;
 * the hub (vigil-collector) has `remediator:` (the default) and a
 * `remediators:` list mapping agent id globs to the other two, each with its
 * own secret. Batches from agents web-01, db-01 and app-07 each fire a
 * policy; each action must run on the remediator of its host (its
 * GET /v1/actions and its audit chain), the unmatched agent's on the default,
 * and the hub's ledger must show all three succeeded. A manual request names
 * its host through its target's "<host>/" prefix. A late result for db-01's
 * action is checked with db-01's remediator's secret. A hub killed while
 * db-01's request runs redelivers it, after its restart, to db-01's
 * remediator, which runs it once. An approval through the hub reaches
 * db-01's remediator, whose signed late result closes the hub's ledger. The
 * config loader's
 * errors for a bad `remediators:` list are checked too. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "httptest.h"
#include "proctest.h"
#include "testutil.h"
#include "vigil/vigil.h"

#define SEC_WEB     "fleet-test-secret-web-0123456789abcdef"
#define SEC_DB      "fleet-test-secret-db-0123456789abcdefgh"
#define SEC_DEF     "fleet-test-secret-default-0123456789abc"
#define AUDIT_KEY   "fleet-test-audit-key-0123456789abcdef"
#define DEADLINE_MS 30000

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

static int64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* A remediator with one `log` action, note, its secret in env `secret_env`. */
static void start_remediator(pt_proc *p, const char *dir, const char *name, const char *secret_env)
{
    char cfg[2048], file[64];
    snprintf(cfg, sizeof(cfg),
             "listen: 127.0.0.1:0\n"
             "secret_env: %s\n"
             "audit: sqlite://%s/%s.db\n"
             "audit_key_env: VT_FLEET_AUDIT_KEY\n"
             "guards: {dry_run: false, cooldown: 0, max_attempts: 50, window: 10m,"
             " reset_after: 10m, rate_limit: 600/min, max_concurrent: 4}\n"
             "actions:\n"
             "  - {name: note, type: log, targets: \".*\"}\n",
             secret_env, dir, name);
    snprintf(file, sizeof(file), "%s.yaml", name);
    vt_write_file(dir, file, cfg, strlen(cfg));
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    char *args[] = {(char *)pt_bin_path("vigil-remediator"), "--config", path, NULL};
    pt_start(p, name, args, dir, 1);
}

/* The targets of the actions a remediator ran and that succeeded (the
 * executions of its GET /v1/actions), oldest first, as "target;" joined. */
static int remediator_targets(const pt_proc *p, char *out, size_t size)
{
    cJSON *j = get_json(p, "/v1/actions?limit=100");
    cJSON *list = j ? cJSON_GetObjectItem(j, "executions") : NULL;
    cJSON *a;
    int n = 0;
    out[0] = '\0';
    cJSON_ArrayForEach(a, list)
    {
        cJSON *t = cJSON_GetObjectItem(a, "target");
        cJSON *st = cJSON_GetObjectItem(a, "status");
        if (!cJSON_IsString(t) || !cJSON_IsString(st) || strcmp(st->valuestring, "succeeded"))
            continue;
        size_t len = strlen(out);
        snprintf(out + len, size - len, "%s;", t->valuestring);
        n++;
    }
    cJSON_Delete(j);
    return n;
}

static void ingest(const pt_proc *hub, const char *agent, int64_t ts)
{
    char body[512], url[128];
    snprintf(body, sizeof(body),
             "{\"agent\":\"%s\",\"batch_id\":\"%s-1\",\"metrics\":[{\"name\":\"queue_depth\","
             "\"value\":99,\"ts\":%lld,\"tags\":{\"host\":\"%s\"}}]}",
             agent, agent, (long long)ts, agent);
    snprintf(url, sizeof(url), "%s/v1/ingest", hub->base);
    http_result r;
    http_do("POST", url, body, strlen(body), NULL, &r);
    ck_assert_msg(r.status == 202, "ingest %s: %ld %s", agent, r.status, r.body ? r.body : "");
    http_result_free(&r);
}

/* The audit chain of a remediator verifies and has at least `min` entries. */
static void assert_audit(const pt_proc *p, double min)
{
    cJSON *v = get_json(p, "/v1/audit/verify");
    ck_assert_ptr_nonnull(v);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(v, "ok")));
    cJSON *entries = cJSON_GetObjectItem(v, "entries");
    ck_assert_msg(cJSON_IsNumber(entries) && entries->valuedouble >= min,
                  "%s: audit entries %g < %g", p->name,
                  cJSON_IsNumber(entries) ? entries->valuedouble : -1.0, min);
    cJSON_Delete(v);
}

/* True when the remediator's audit log (GET /v1/audit) names `needle`. */
static int audit_names(const pt_proc *p, const char *needle)
{
    char url[600];
    http_result r;
    snprintf(url, sizeof(url), "%s/v1/audit?limit=100", p->base);
    http_do("GET", url, NULL, 0, NULL, &r);
    int found = r.status == 200 && r.body && strstr(r.body, needle) != NULL;
    http_result_free(&r);
    return found;
}

/* POST /v1/actions/{id}/result signed with `secret`; the HTTP status. */
static long late_result(const pt_proc *hub, const char *id, const char *secret)
{
    char url[300], body[300], hdr[300];
    snprintf(url, sizeof(url), "%s/v1/actions/%s/result", hub->base, id);
    snprintf(body, sizeof(body), "{\"id\":\"%s\",\"status\":\"succeeded\"}", id);
    vigil_buf sig = VIGIL_BUF_INIT;
    ck_assert_int_eq(
        vigil_signature_make(&sig, secret, strlen(secret), now_ms() / 1000, body, strlen(body)),
        VIGIL_OK);
    snprintf(hdr, sizeof(hdr), "%s: %s", VIGIL_SIGNATURE_HEADER, sig.ptr);
    vigil_buf_dispose(&sig);
    const char *extra[] = {hdr, NULL};
    http_opts o = {0};
    o.extra = extra;
    http_result r;
    http_do("POST", url, body, strlen(body), &o, &r);
    long status = r.status;
    http_result_free(&r);
    return status;
}

START_TEST(each_action_lands_on_its_hosts_remediator)
{
    const char *dir = vt_tmpdir();
    pt_proc web, db, def, hub;
    setenv("VT_FLEET_SEC_WEB", SEC_WEB, 1);
    setenv("VT_FLEET_SEC_DB", SEC_DB, 1);
    setenv("VT_FLEET_SEC_DEF", SEC_DEF, 1);
    setenv("VT_FLEET_AUDIT_KEY", AUDIT_KEY, 1);
    start_remediator(&web, dir, "rem-web", "VT_FLEET_SEC_WEB");
    start_remediator(&db, dir, "rem-db", "VT_FLEET_SEC_DB");
    start_remediator(&def, dir, "rem-default", "VT_FLEET_SEC_DEF");

    char cfg[4096];
    snprintf(cfg, sizeof(cfg),
             "listen: 127.0.0.1:0\n"
             "store: sqlite://%s/hub.db\n"
             "remediator: {url: \"%s\", secret_env: VT_FLEET_SEC_DEF, retries: 1}\n"
             "remediators:\n"
             "  - {agents: [\"web-*\", \"www-*\"], url: \"%s\", secret_env: VT_FLEET_SEC_WEB}\n"
             "  - {agents: [\"db-*\"], url: \"%s\", secret_env: VT_FLEET_SEC_DB}\n"
             "  - {agents: [\"db-01\"], url: \"http://127.0.0.1:1\","
             " secret_env: VT_FLEET_SEC_DB}\n"
             "policies:\n"
             "  - name: deep_queue\n"
             "    kind: threshold\n"
             "    metric: queue_depth\n"
             "    match: {host: \"*\"}\n"
             "    window: 1m\n"
             "    aggregate: last\n"
             "    op: \">\"\n"
             "    threshold: 10\n"
             "    for: 0s\n"
             "    action: note\n"
             "    target: \"queue-of-{{tags.host}}\"\n",
             dir, def.base, web.base, db.base);
    vt_write_file(dir, "collector.yaml", cfg, strlen(cfg));
    char cpath[PATH_MAX];
    snprintf(cpath, sizeof(cpath), "%s/collector.yaml", dir);
    char *hargs[] = {(char *)pt_bin_path("vigil-collector"), "--config", cpath, NULL};
    pt_start(&hub, "collector", hargs, dir, 1);

    int64_t ts = now_ms();
    ingest(&hub, "web-01", ts);
    ingest(&hub, "db-01", ts);
    ingest(&hub, "app-07", ts);

    /* a manual request for db-01: its host from the target's prefix */
    char url[128];
    snprintf(url, sizeof(url), "%s/v1/actions", hub.base);
    const char *manual =
        "{\"action\":\"note\",\"target\":\"db-01/motd\",\"reason\":\"fleet test\"}";
    http_result r;
    http_do("POST", url, manual, strlen(manual), NULL, &r);
    ck_assert_msg(r.status == 202 || r.status == 200, "manual request: %ld %s", r.status,
                  r.body ? r.body : "");
    http_result_free(&r);

    char tw[512] = "", td[512] = "", tf[512] = "";
    int nw = 0, nd = 0, nf = 0;
    for (int64_t end = pt_mono_ms() + DEADLINE_MS; pt_mono_ms() < end;) {
        nw = remediator_targets(&web, tw, sizeof(tw));
        nd = remediator_targets(&db, td, sizeof(td));
        nf = remediator_targets(&def, tf, sizeof(tf));
        if (nw >= 1 && nd >= 2 && nf >= 1)
            break;
        usleep(20000);
    }
    if (nw != 1 || nd != 2 || nf != 1) {
        pt_dump_log(&hub);
        pt_dump_log(&web);
        pt_dump_log(&db);
        pt_dump_log(&def);
    }
    ck_assert_str_eq(tw, "queue-of-web-01;");
    ck_assert_int_eq(nd, 2);
    ck_assert_ptr_nonnull(strstr(td, "queue-of-db-01;"));
    ck_assert_ptr_nonnull(strstr(td, "db-01/motd;"));
    ck_assert_str_eq(tf, "queue-of-app-07;");

    /* each remediator's own audit chain holds its request and verifies */
    ck_assert(audit_names(&web, "queue-of-web-01"));
    ck_assert(!audit_names(&web, "queue-of-db-01"));
    ck_assert(audit_names(&db, "queue-of-db-01"));
    ck_assert(audit_names(&def, "queue-of-app-07"));
    ck_assert(!audit_names(&def, "queue-of-web-01"));
    assert_audit(&web, 2);
    assert_audit(&db, 4);
    assert_audit(&def, 2);

    /* the hub's ledger: every request succeeded (results from each) */
    int ok = 0;
    for (int64_t end = pt_mono_ms() + DEADLINE_MS; pt_mono_ms() < end && ok < 4;) {
        cJSON *j = get_json(&hub, "/v1/actions?limit=100");
        cJSON *a, *list = j ? cJSON_GetObjectItem(j, "actions") : NULL;
        ok = 0;
        cJSON_ArrayForEach(a, list)
        {
            cJSON *st = cJSON_GetObjectItem(a, "status");
            ok += cJSON_IsString(st) && !strcmp(st->valuestring, "succeeded");
        }
        cJSON_Delete(j);
        if (ok < 4)
            usleep(20000);
    }
    ck_assert_int_eq(ok, 4);

    /* a late result for db-01's action: checked with db-01's remediator's
     * secret, so one signed with web-01's is refused */
    char db_id[128] = "";
    cJSON *j = get_json(&hub, "/v1/actions?limit=100");
    cJSON *a, *list = j ? cJSON_GetObjectItem(j, "actions") : NULL;
    cJSON_ArrayForEach(a, list)
    {
        cJSON *t = cJSON_GetObjectItem(a, "target"), *id = cJSON_GetObjectItem(a, "id");
        if (cJSON_IsString(t) && !strcmp(t->valuestring, "queue-of-db-01") && cJSON_IsString(id))
            snprintf(db_id, sizeof(db_id), "%s", id->valuestring);
    }
    cJSON_Delete(j);
    ck_assert_msg(db_id[0], "no action for queue-of-db-01");
    ck_assert_int_eq(late_result(&hub, db_id, SEC_WEB), 401);
    ck_assert_int_ne(late_result(&hub, db_id, SEC_DB), 401);
    ck_assert_int_eq(late_result(&hub, db_id, SEC_DEF), 401);

    ck_assert_int_eq(pt_stop(&hub), 0);
    ck_assert_int_eq(pt_stop(&web), 0);
    ck_assert_int_eq(pt_stop(&db), 0);
    ck_assert_int_eq(pt_stop(&def), 0);
}
END_TEST

/* Copies the helper `name` ($VIGIL_TEST_HELPERS/name) to `to`, mode 0700
 * (the runner refuses a program others can write). */
static void copy_helper(const char *name, const char *to)
{
    const char *dir = getenv("VIGIL_TEST_HELPERS");
    ck_assert_msg(dir && *dir, "VIGIL_TEST_HELPERS is not set (run through make test)");
    char from[PATH_MAX];
    snprintf(from, sizeof(from), "%s/%s", dir, name);
    size_t n = 0;
    char *bytes = NULL;
    FILE *in = fopen(from, "rb");
    ck_assert_msg(in != NULL, "%s", from);
    FILE *mem = open_memstream(&bytes, &n);
    int c;
    while ((c = fgetc(in)) != EOF)
        fputc(c, mem);
    fclose(in);
    fclose(mem);
    FILE *out = fopen(to, "wb");
    ck_assert_ptr_nonnull(out);
    ck_assert_uint_eq(fwrite(bytes, 1, n, out), n);
    ck_assert_int_eq(fclose(out), 0);
    ck_assert_int_eq(chmod(to, 0700), 0);
    free(bytes);
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

/* The hub dies while db-01's request runs on db-01's remediator; started
 * again on its store, it redelivers the request with its id to that same
 * remediator (which runs an id once), never to the default. */
START_TEST(recovery_redelivers_to_the_hosts_remediator)
{
    const char *dir = vt_tmpdir();
    char cfg[3 * PATH_MAX], helper[PATH_MAX], runs[PATH_MAX + 8], path[PATH_MAX];
    pt_proc db, def, hub, hub2;
    setenv("VT_FLEET_SEC_DB", SEC_DB, 1);
    setenv("VT_FLEET_SEC_DEF", SEC_DEF, 1);
    setenv("VT_FLEET_AUDIT_KEY", AUDIT_KEY, 1);
    snprintf(helper, sizeof(helper), "%s/slow_action", dir);
    snprintf(runs, sizeof(runs), "%s.runs", helper);
    copy_helper("slow_action", helper);

    /* db-01's remediator runs `slow` (2 s); the default only logs it */
    snprintf(cfg, sizeof(cfg),
             "listen: 127.0.0.1:0\n"
             "secret_env: VT_FLEET_SEC_DB\n"
             "audit: sqlite://%s/rem-db.db\n"
             "audit_key_env: VT_FLEET_AUDIT_KEY\n"
             "actions:\n"
             "  - {name: slow, type: exec, argv: [\"%s\", \"run\", \"2000\"], targets: \".*\","
             " timeout: 30s}\n",
             dir, helper);
    vt_write_file(dir, "rem-db.yaml", cfg, strlen(cfg));
    snprintf(path, sizeof(path), "%s/rem-db.yaml", dir);
    char *dargs[] = {(char *)pt_bin_path("vigil-remediator"), "--config", path, NULL};
    pt_start(&db, "rem-db", dargs, dir, 1);
    start_remediator(&def, dir, "rem-default", "VT_FLEET_SEC_DEF");

    snprintf(cfg, sizeof(cfg),
             "listen: 127.0.0.1:0\n"
             "store: sqlite://%s/hub.db\n"
             "remediator: {url: \"%s\", secret_env: VT_FLEET_SEC_DEF}\n"
             "remediators:\n"
             "  - {agents: [\"db-*\"], url: \"%s\", secret_env: VT_FLEET_SEC_DB}\n"
             "policies:\n"
             "  - {name: deep_queue, kind: threshold, metric: queue_depth, match: {host: \"*\"},"
             " window: 1m, aggregate: last, op: \">\", threshold: 10, for: 0s, action: slow,"
             " target: \"queue-of-{{tags.host}}\"}\n",
             dir, def.base, db.base);
    vt_write_file(dir, "collector.yaml", cfg, strlen(cfg));
    char cpath[PATH_MAX];
    snprintf(cpath, sizeof(cpath), "%s/collector.yaml", dir);
    char *hargs[] = {(char *)pt_bin_path("vigil-collector"), "--config", cpath, NULL};
    pt_start(&hub, "collector", hargs, dir, 1);

    ingest(&hub, "db-01", now_ms());
    for (int64_t end = pt_mono_ms() + DEADLINE_MS; pt_mono_ms() < end && !count_lines(runs);)
        usleep(2000);
    if (count_lines(runs) != 1) {
        pt_dump_log(&hub);
        pt_dump_log(&db);
    }
    ck_assert_int_eq(count_lines(runs), 1);
    ck_assert_int_eq(kill(hub.pid, SIGKILL), 0);
    ck_assert_int_eq(pt_wait_exit(hub.pid), 128 + SIGKILL);
    pt_start(&hub2, "collector2", hargs, dir, 1);

    int ok = 0;
    for (int64_t end = pt_mono_ms() + DEADLINE_MS; pt_mono_ms() < end && !ok;) {
        cJSON *j = get_json(&hub2, "/v1/actions?limit=100");
        cJSON *a, *list = j ? cJSON_GetObjectItem(j, "actions") : NULL;
        cJSON_ArrayForEach(a, list)
        {
            cJSON *st = cJSON_GetObjectItem(a, "status");
            ok |= cJSON_IsString(st) && !strcmp(st->valuestring, "succeeded");
        }
        cJSON_Delete(j);
        if (!ok)
            usleep(20000);
    }
    if (!ok) {
        pt_dump_log(&hub2);
        pt_dump_log(&db);
        pt_dump_log(&def);
    }
    ck_assert_msg(ok, "the redelivered request never succeeded");
    char *log = pt_slurp(hub2.log);
    ck_assert_msg(strstr(log, "msg=\"action redelivered after restart\"") != NULL, "%s", log);
    free(log);
    char tdb[512], tdef[512];
    ck_assert_int_eq(remediator_targets(&db, tdb, sizeof(tdb)), 1);
    ck_assert_str_eq(tdb, "queue-of-db-01;");
    ck_assert_int_eq(count_lines(runs), 1);
    ck_assert_int_eq(remediator_targets(&def, tdef, sizeof(tdef)), 0);
    ck_assert(!audit_names(&def, "queue-of-db-01"));

    ck_assert_int_eq(pt_stop(&hub2), 0);
    ck_assert_int_eq(pt_stop(&db), 0);
    ck_assert_int_eq(pt_stop(&def), 0);
}
END_TEST

/* An action of db-01 that needs an approval: approved through the hub (one
 * URL), the call goes to db-01's remediator, which runs it and posts the late
 * result, signed with its own secret, to the hub. */
START_TEST(approval_through_the_hub_reaches_the_hosts_remediator)
{
    const char *dir = vt_tmpdir();
    char cfg[3 * PATH_MAX], path[PATH_MAX];
    pt_proc db, def, hub;
    setenv("VT_FLEET_SEC_DB", SEC_DB, 1);
    setenv("VT_FLEET_SEC_DEF", SEC_DEF, 1);
    setenv("VT_FLEET_AUDIT_KEY", AUDIT_KEY, 1);
    setenv("VT_FLEET_HUB_TOKEN", "fleet-test-hub-token-0123456789", 1);
    start_remediator(&def, dir, "rem-default", "VT_FLEET_SEC_DEF");
    int dbport = ht_closed_port();

    snprintf(cfg, sizeof(cfg),
             "listen: 127.0.0.1:0\n"
             "store: sqlite://%s/hub.db\n"
             "remediator: {url: \"%s\", secret_env: VT_FLEET_SEC_DEF}\n"
             "remediators:\n"
             "  - {agents: [\"db-*\"], url: \"http://127.0.0.1:%d\", secret_env: VT_FLEET_SEC_DB}\n"
             "policies:\n"
             "  - {name: deep_queue, kind: threshold, metric: queue_depth, match: {host: \"*\"},"
             " window: 1m, aggregate: last, op: \">\", threshold: 10, for: 0s, action: careful,"
             " target: \"queue-of-{{tags.host}}\"}\n",
             dir, def.base, dbport);
    vt_write_file(dir, "collector.yaml", cfg, strlen(cfg));
    char cpath[PATH_MAX];
    snprintf(cpath, sizeof(cpath), "%s/collector.yaml", dir);
    char *hargs[] = {(char *)pt_bin_path("vigil-collector"), "--config", cpath, NULL};
    pt_start(&hub, "collector", hargs, dir, 1);

    snprintf(cfg, sizeof(cfg),
             "listen: 127.0.0.1:%d\n"
             "secret_env: VT_FLEET_SEC_DB\n"
             "audit: sqlite://%s/rem-db.db\n"
             "audit_key_env: VT_FLEET_AUDIT_KEY\n"
             "hub: {url: \"%s\", token_env: VT_FLEET_HUB_TOKEN}\n"
             "actions:\n"
             "  - {name: careful, type: log, targets: \".*\", approval: {required: true}}\n",
             dbport, dir, hub.base);
    vt_write_file(dir, "rem-db.yaml", cfg, strlen(cfg));
    snprintf(path, sizeof(path), "%s/rem-db.yaml", dir);
    char *dargs[] = {(char *)pt_bin_path("vigil-remediator"), "--config", path, NULL};
    pt_start(&db, "rem-db", dargs, dir, 1);

    ingest(&hub, "db-01", now_ms());
    char id[128] = "", status[64] = "";
    for (int64_t end = pt_mono_ms() + DEADLINE_MS; pt_mono_ms() < end;) {
        cJSON *j = get_json(&hub, "/v1/actions?limit=100");
        cJSON *a = cJSON_GetArrayItem(j ? cJSON_GetObjectItem(j, "actions") : NULL, 0);
        cJSON *aid = a ? cJSON_GetObjectItem(a, "id") : NULL;
        cJSON *st = a ? cJSON_GetObjectItem(a, "status") : NULL;
        if (cJSON_IsString(aid) && cJSON_IsString(st)) {
            snprintf(id, sizeof(id), "%s", aid->valuestring);
            snprintf(status, sizeof(status), "%s", st->valuestring);
        }
        cJSON_Delete(j);
        if (!strcmp(status, "pending_approval"))
            break;
        usleep(20000);
    }
    if (strcmp(status, "pending_approval")) {
        pt_dump_log(&hub);
        pt_dump_log(&db);
    }
    ck_assert_str_eq(status, "pending_approval");

    char url[300];
    snprintf(url, sizeof(url), "%s/v1/actions/%s/approve", hub.base, id);
    const char *xr[] = {"X-Vigil-Request: test", NULL};
    http_opts o = {0};
    o.extra = xr;
    http_result r;
    http_do("POST", url, NULL, 0, &o, &r);
    if (r.status != 200)
        pt_dump_log(&hub);
    ck_assert_msg(r.status == 200, "approve: %ld %s", r.status, r.body ? r.body : "");
    http_result_free(&r);

    /* db-01's remediator ran it and its signed late result closed the ledger */
    for (int64_t end = pt_mono_ms() + DEADLINE_MS; pt_mono_ms() < end;) {
        cJSON *j = get_json(&hub, "/v1/actions?limit=100");
        cJSON *a = cJSON_GetArrayItem(j ? cJSON_GetObjectItem(j, "actions") : NULL, 0);
        cJSON *st = a ? cJSON_GetObjectItem(a, "status") : NULL;
        if (cJSON_IsString(st))
            snprintf(status, sizeof(status), "%s", st->valuestring);
        cJSON_Delete(j);
        if (!strcmp(status, "succeeded"))
            break;
        usleep(20000);
    }
    if (strcmp(status, "succeeded")) {
        pt_dump_log(&hub);
        pt_dump_log(&db);
    }
    ck_assert_str_eq(status, "succeeded");
    char tdb[512], tdef[512];
    ck_assert_int_eq(remediator_targets(&db, tdb, sizeof(tdb)), 1);
    ck_assert_str_eq(tdb, "queue-of-db-01;");
    ck_assert_int_eq(remediator_targets(&def, tdef, sizeof(tdef)), 0);

    ck_assert_int_eq(pt_stop(&hub), 0);
    ck_assert_int_eq(pt_stop(&db), 0);
    ck_assert_int_eq(pt_stop(&def), 0);
}
END_TEST

/* The remediators: list, refused with its location. */
static void load_fails(const char *text, int code, const char *needle)
{
    vigil_hub_config *c = NULL;
    int rc = vigil_hub_config_load_string(&c, text, strlen(text), "collector.yaml", NULL);
    ck_assert_msg(rc == code, "expected %d, got %d (%s) for:\n%s", code, rc,
                  vigil_error_last()->message, text);
    vt_assert_error(code, needle);
    ck_assert_ptr_null(c);
}

START_TEST(config_remediators)
{
    setenv("VT_FLEET_SEC_WEB", SEC_WEB, 1);
    unsetenv("VT_FLEET_UNSET");
    const char *good = "store: \"sqlite://:memory:\"\n"
                       "remediators:\n"
                       "  - {agents: [\"web-*\"], url: \"https://rem.web:7601\","
                       " secret_env: VT_FLEET_SEC_WEB}\n"
                       "  - {agents: [\"db-*\", \"pg-?\"], url: \"http://rem.db:7601\","
                       " secret_env: VT_FLEET_SEC_WEB}\n";
    vigil_hub_config *c = NULL;
    ck_assert_int_eq(vigil_hub_config_load_string(&c, good, strlen(good), "collector.yaml", NULL),
                     VIGIL_OK);
    const vigil_hub_options *o = vigil_hub_config_hub(c);
    ck_assert_uint_eq(o->nremediators, 2);
    ck_assert_str_eq(o->remediators[0].url, "https://rem.web:7601");
    ck_assert_uint_eq(o->remediators[0].nagents, 1);
    ck_assert_str_eq(o->remediators[0].agents[0], "web-*");
    ck_assert_str_eq(o->remediators[1].secret_env, "VT_FLEET_SEC_WEB");
    ck_assert_uint_eq(o->remediators[1].nagents, 2);
    ck_assert_str_eq(o->remediators[1].agents[1], "pg-?");
    ck_assert_ptr_null(o->remediator_url);
    vigil_hub_config_free(c);

    load_fails("remediators:\n  - {agents: [\"a\"], url: \"http://x\", secret_env: "
               "VT_FLEET_SEC_WEB, tls: true}\n",
               VIGIL_EUNKNOWNKEY, "collector.yaml:2:68: remediators[0].tls: unknown key");
    load_fails("remediators:\n  - {url: \"http://x\", secret_env: VT_FLEET_SEC_WEB}\n",
               VIGIL_EMISSING, "agents");
    load_fails("remediators:\n  - {agents: [], url: \"http://x\", secret_env: VT_FLEET_SEC_WEB}\n",
               VIGIL_EVALUE, "expected at least one agent id glob");
    load_fails("remediators:\n  - {agents: [\"a\"], url: \"ftp://x\", secret_env: "
               "VT_FLEET_SEC_WEB}\n",
               VIGIL_EVALUE, "expected an http:// or https:// URL");
    load_fails("remediators:\n  - {agents: [\"a\"], url: \"http://x\", secret_env: "
               "VT_FLEET_UNSET}\n",
               VIGIL_EENV, "environment variable \"VT_FLEET_UNSET\"");
    load_fails("remediators:\n  - {agents: [\"\"], url: \"http://x\", secret_env: "
               "VT_FLEET_SEC_WEB}\n",
               VIGIL_EVALUE, "expected a glob of 1 to 255 bytes");
    load_fails("remediators:\n  - {agents: [\"a\"], url: \"https://x\", secret_env: "
               "VT_FLEET_SEC_WEB, cert: /etc/vigil/hub.pem}\n",
               VIGIL_EVALUE,
               "collector.yaml:2:5: remediators[0]: set both cert and key, or neither");
    setenv("VT_FLEET_SHORT", "only-20-bytes-secret", 1);
    load_fails("remediators:\n  - {agents: [\"a\"], url: \"http://x\", secret_env: "
               "VT_FLEET_SHORT}\n",
               VIGIL_EVALUE, "the secret in \"VT_FLEET_SHORT\" is 20 bytes; at least 32");
    load_fails("remediators: {agents: [\"a\"]}\n", VIGIL_ETYPE, "remediators");
    load_fails("remediators:\n  - {agents: \"web-*\", url: \"http://x\", secret_env: "
               "VT_FLEET_SEC_WEB}\n",
               VIGIL_ETYPE, "agents");
}
END_TEST

static Suite *fleet_suite(void)
{
    Suite *s = suite_create("hub_fleet");
    TCase *tc = tcase_create("fleet");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, config_remediators);
    tcase_add_test(tc, each_action_lands_on_its_hosts_remediator);
    tcase_add_test(tc, recovery_redelivers_to_the_hosts_remediator);
    tcase_add_test(tc, approval_through_the_hub_reaches_the_hosts_remediator);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(fleet_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
