/* The `vigil` CLI as a real child process against a real hub (vigil-collector)
 * and remediator (vigil-remediator) on loopback ports: every command, its
 * exit code (0 ok, 1 failed check or refused, 2 usage, 3 hub unreachable)
 * and its output, human and --json; the hub's admin routes forwarded signed
 * to the remediator (and called in-process), GET /v1/agents; and the local
 * commands: validate over every shipped config and over broken files, test
 * over configs/policy-tests, simulate. */
#include <cJSON.h>
#include <fcntl.h>
#include <glob.h>
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

#define SECRET       "cli-test-signing-secret-0123456789"
#define ADMIN_TOKEN  "cli-admin-token-000000000000000"
#define READ_TOKEN   "cli-read-token-1111111111111111"
#define INGEST_TOKEN "cli-ingest-token-22222222222222"

/* ---- running the CLI ------------------------------------------------------------- */

typedef struct run {
    int code;
    char *out;
    char *err;
} run;

static void run_free(run *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof(*r));
}

/* Runs build/bin/vigil with `args` (NULL-terminated, after the program) in
 * `cwd`, stdout and stderr captured apart. */
static run vigil_run(const char *cwd, const char *const *args)
{
    static int seq;
    const char *dir = vt_tmpdir();
    char outp[PATH_MAX], errp[PATH_MAX];
    snprintf(outp, sizeof(outp), "%s/cli-%d.out", dir, seq);
    snprintf(errp, sizeof(errp), "%s/cli-%d.err", dir, seq++);
    char *argv[64];
    int n = 0;
    argv[n++] = (char *)pt_bin_path("vigil");
    for (; args[n - 1] && n < 63; n++)
        argv[n] = (char *)args[n - 1];
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addchdir_np(&fa, cwd);
    pid_t pid;
    ck_assert_int_eq(posix_spawn(&pid, argv[0], &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    run r;
    r.code = pt_wait_exit(pid);
    r.out = pt_slurp(outp);
    r.err = pt_slurp(errp);
    return r;
}

#define RUN(cwd, ...) vigil_run((cwd), (const char *const[]){__VA_ARGS__, NULL})

static void expect(const run *r, int code, const char *in_out, const char *in_err)
{
    ck_assert_msg(r->code == code, "exit %d, expected %d\nstdout: %s\nstderr: %s", r->code, code,
                  r->out, r->err);
    if (in_out)
        ck_assert_msg(strstr(r->out, in_out) != NULL, "stdout lacks \"%s\":\n%s\nstderr: %s",
                      in_out, r->out, r->err);
    if (in_err)
        ck_assert_msg(strstr(r->err, in_err) != NULL, "stderr lacks \"%s\":\n%s", in_err, r->err);
}

/* stdout parsed as JSON (the test fails when it is not). */
static cJSON *out_json(const run *r)
{
    cJSON *j = cJSON_Parse(r->out);
    ck_assert_msg(j != NULL, "not JSON: %s", r->out);
    return j;
}

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

static void clear_env(void)
{
    unsetenv("VIGIL_URL");
    unsetenv("VIGIL_TOKEN");
    unsetenv("VIGIL_ADMIN_TOKEN");
    unsetenv("VIGIL_READ_TOKEN");
    setenv("VT_CLI_SECRET", SECRET, 1);
    setenv("VT_CLI_ADMIN", ADMIN_TOKEN, 1);
    setenv("VT_CLI_READ", READ_TOKEN, 1);
    setenv("VT_CLI_INGEST", INGEST_TOKEN, 1);
}

static long hub_req(const char *base, const char *method, const char *path, const char *body,
                    const char *token, const char *const *extra, http_result *r)
{
    char url[1024];
    snprintf(url, sizeof(url), "%s%s", base, path);
    /* X-Vigil-Request: the API's cross-site defence of body-less POSTs */
    const char *hdrs[8] = {"X-Vigil-Request: test"};
    for (int i = 0; extra && extra[i] && i < 6; i++)
        hdrs[i + 1] = extra[i];
    http_opts o = {0};
    o.token = token;
    o.extra = hdrs;
    http_do(method, url, body, body ? strlen(body) : 0, &o, r);
    return r->status;
}

static void ingest(const char *base, const char *batch_id, const char *metrics)
{
    char body[4096];
    snprintf(body, sizeof(body), "{\"agent\":\"h1\",\"batch_id\":\"%s\",\"metrics\":[%s]}",
             batch_id, metrics);
    http_result r;
    ck_assert_int_eq(hub_req(base, "POST", "/v1/ingest", body, INGEST_TOKEN, NULL, &r), 202);
    http_result_free(&r);
}

/* The first action of the hub's ledger with `status` (and `target` unless
 * NULL), its id in `id`. */
static int wait_action(const char *base, const char *status, const char *target, char *id,
                       size_t size)
{
    for (int64_t end = pt_mono_ms() + 20000; pt_mono_ms() < end; usleep(20000)) {
        http_result r;
        int found = 0;
        if (hub_req(base, "GET", "/v1/actions", NULL, READ_TOKEN, NULL, &r) == 200 && r.body) {
            cJSON *j = cJSON_Parse(r.body);
            const cJSON *a;
            cJSON_ArrayForEach(a, cJSON_GetObjectItem(j, "actions"))
            {
                const char *st = cJSON_GetStringValue(cJSON_GetObjectItem(a, "status"));
                const char *tg = cJSON_GetStringValue(cJSON_GetObjectItem(a, "target"));
                if (st && strcmp(st, status) == 0 && (!target || (tg && strcmp(tg, target) == 0))) {
                    snprintf(id, size, "%s", cJSON_GetStringValue(cJSON_GetObjectItem(a, "id")));
                    found = 1;
                    break;
                }
            }
            cJSON_Delete(j);
        }
        http_result_free(&r);
        if (found)
            return 1;
    }
    return 0;
}

/* ---- a hub and a remediator ------------------------------------------------------------ */

static const char *remediator_yaml(const char *dir, int standalone)
{
    char text[4096];
    snprintf(text, sizeof(text),
             "listen: 127.0.0.1:0\n"
             "secret_env: VT_CLI_SECRET\n"
             "security: {tokens: [{name: ops, env: VT_CLI_ADMIN, scopes: [admin]}]}\n"
             "audit: sqlite://./rem.db\n"
             "guards: {cooldown: 0s}\n"
             "execution: {tick: 50ms}\n"
             "actions:\n"
             "  - name: gated\n"
             "    type: exec\n"
             "    argv: [\"/usr/bin/touch\", \"%s/marker\"]\n"
             "    targets: \"^demo[0-9]*$\"\n"
             "    timeout: 10s\n"
             "    approval: {required: true, expires: 15m}\n",
             dir);
    return write_file(dir, standalone ? "remediator.yaml" : "rem-inproc.yaml", text);
}

static const char *collector_yaml(const char *dir, const char *remediator_block)
{
    char text[4096];
    snprintf(text, sizeof(text),
             "listen: 127.0.0.1:0\n"
             "store: sqlite://./vigil.db\n"
             "http: {threads: 4, timeout: 5s, drain_timeout: 5s}\n"
             "security:\n"
             "  tokens:\n"
             "    - {name: agents, env: VT_CLI_INGEST, scopes: [ingest]}\n"
             "    - {name: dashboard, env: VT_CLI_READ, scopes: [read]}\n"
             "    - {name: ops, env: VT_CLI_ADMIN, scopes: [admin]}\n"
             "%s\n"
             "policy_interval: 100ms\n"
             "policies:\n"
             "  - name: demo_down\n"
             "    kind: threshold\n"
             "    metric: process_up\n"
             "    match: {process: \"demo*\"}\n"
             "    window: 1s\n"
             "    op: \"<\"\n"
             "    threshold: 1\n"
             "    action: gated\n"
             "    target: \"{{tags.process}}\"\n",
             remediator_block);
    return write_file(dir, "collector.yaml", text);
}

/* Ingests two heartbeats 1 s apart and a demo outage. */
static void feed(const char *base)
{
    char m[2048];
    int64_t now = wall_ms();
    snprintf(m, sizeof(m),
             "{\"name\":\"vigil_agent_heartbeat\",\"value\":1,\"ts\":%lld,\"tags\":{\"host\":"
             "\"h1\"}}",
             (long long)(now - 1000));
    ingest(base, "cli-1", m);
    snprintf(m, sizeof(m),
             "{\"name\":\"vigil_agent_heartbeat\",\"value\":1,\"ts\":%lld,\"tags\":{\"host\":"
             "\"h1\"}},{\"name\":\"process_up\",\"value\":0,\"ts\":%lld,\"tags\":{\"host\":"
             "\"h1\",\"process\":\"demo\"}}",
             (long long)now, (long long)now);
    ingest(base, "cli-2", m);
}

START_TEST(cli_against_hub_and_remediator)
{
    clear_env();
    const char *dir = vt_tmpdir();
    pt_proc rem, hub;
    char *rargs[] = {(char *)pt_bin_path("vigil-remediator"), "--config",
                     (char *)remediator_yaml(dir, 1), NULL};
    pt_start(&rem, "remediator", rargs, dir, 1);
    char block[256];
    snprintf(block, sizeof(block), "remediator: {url: '%s', secret_env: VT_CLI_SECRET}", rem.base);
    char *hargs[] = {(char *)pt_bin_path("vigil-collector"), "--config",
                     (char *)collector_yaml(dir, block), NULL};
    pt_start(&hub, "collector", hargs, dir, 1);
    const char *U = hub.base;
    run r;

    /* status before anything: ready, no agent */
    r = RUN(dir, "--url", U, "--token", ADMIN_TOKEN, "status");
    expect(&r, 0, "ready", NULL);
    ck_assert_ptr_nonnull(strstr(r.out, "agents     0"));
    run_free(&r);

    feed(U);
    char id[256] = "";
    ck_assert_msg(wait_action(U, "pending_approval", "demo", id, sizeof(id)), "no pending action");

    /* actions: human and JSON */
    r = RUN(dir, "--url", U, "--token", READ_TOKEN, "actions");
    expect(&r, 0, "pending_approval", NULL);
    ck_assert_ptr_nonnull(strstr(r.out, "gated"));
    ck_assert_ptr_nonnull(strstr(r.out, id));
    ck_assert_ptr_nonnull(strstr(r.out, "REQUESTED"));
    run_free(&r);
    r = RUN(dir, "--url", U, "--token", READ_TOKEN, "actions", "--status", "pending_approval",
            "--json");
    expect(&r, 0, NULL, NULL);
    cJSON *j = out_json(&r);
    cJSON *a0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "actions"), 0);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(a0, "id")), id);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(a0, "target")), "demo");
    cJSON_Delete(j);
    run_free(&r);
    r = RUN(dir, "--url", U, "--token", READ_TOKEN, "actions", "--status", "succeeded", "--json");
    expect(&r, 0, "{\"actions\":[]", NULL);
    run_free(&r);
    r = RUN(dir, "--url", U, "actions", "--since", "soon");
    expect(&r, 2, NULL, "--since: expected a duration");
    run_free(&r);

    /* approve: the read token may not, an unknown id is 404, the id is approved once */
    r = RUN(dir, "--url", U, "--token", READ_TOKEN, "approve", id);
    expect(&r, 1, NULL, "HTTP 403 forbidden");
    run_free(&r);
    r = RUN(dir, "--url", U, "approve", id);
    expect(&r, 1, NULL, "HTTP 401 unauthorized");
    run_free(&r);
    r = RUN(dir, "--url", U, "--token", ADMIN_TOKEN, "deny", "no-such-action");
    expect(&r, 1, NULL, "HTTP 404 not_found");
    run_free(&r);
    r = RUN(dir, "--url", U, "--token", ADMIN_TOKEN, "approve", id, "--json");
    expect(&r, 0, "\"status\":\"approved\"", NULL);
    j = out_json(&r);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(j, "id")), id);
    cJSON_Delete(j);
    run_free(&r);
    r = RUN(dir, "--url", U, "--token", ADMIN_TOKEN, "approve", id);
    expect(&r, 1, NULL, "HTTP 404 not_found: no request");
    run_free(&r);
    char marker[PATH_MAX + 16];
    snprintf(marker, sizeof(marker), "%s/marker", dir);
    for (int64_t end = pt_mono_ms() + 20000; access(marker, F_OK) != 0 && pt_mono_ms() < end;)
        usleep(20000);
    ck_assert_msg(access(marker, F_OK) == 0, "the approved action did not run");

    /* the remediator recorded who approved: the hub on behalf of the token */
    http_result h;
    ck_assert_int_eq(hub_req(rem.base, "GET", "/v1/audit", NULL, ADMIN_TOKEN, NULL, &h), 200);
    ck_assert_msg(strstr(h.body, "hub for token ops from 127.0.0.1") != NULL, "%s", h.body);
    http_result_free(&h);

    /* the remediator's own routes: the token still works, a bad signature does not */
    ck_assert_int_eq(
        hub_req(rem.base, "POST", "/v1/actions/nope/approve", NULL, ADMIN_TOKEN, NULL, &h), 404);
    http_result_free(&h);
    const char *badsig[] = {"X-Vigil-Signature: t=1,v1=00", NULL};
    ck_assert_int_eq(hub_req(rem.base, "POST", "/v1/actions/nope/approve", NULL, NULL, badsig, &h),
                     401);
    ck_assert_ptr_nonnull(strstr(h.body, "signature"));
    http_result_free(&h);
    ck_assert_int_eq(hub_req(rem.base, "POST", "/v1/targets/demo/release", NULL, NULL, NULL, &h),
                     401);
    http_result_free(&h);
    /* a valid forward signature opens the route it was made for, and no other */
    vigil_buf sig = VIGIL_BUF_INIT;
    const char *payload = "POST /v1/actions/nope/approve\nme\n";
    ck_assert_int_eq(vigil_signature_make(&sig, SECRET, strlen(SECRET), wall_ms() / 1000, payload,
                                          strlen(payload)),
                     VIGIL_OK);
    char sighdr[256];
    snprintf(sighdr, sizeof(sighdr), "X-Vigil-Signature: %s", sig.ptr);
    vigil_buf_dispose(&sig);
    const char *goodsig[] = {sighdr, "X-Vigil-Actor: me", NULL};
    ck_assert_int_eq(hub_req(rem.base, "POST", "/v1/actions/nope/approve", NULL, NULL, goodsig, &h),
                     404);
    ck_assert_ptr_nonnull(strstr(h.body, "waiting for approval"));
    http_result_free(&h);
    ck_assert_int_eq(hub_req(rem.base, "POST", "/v1/actions/nope/deny", NULL, NULL, goodsig, &h),
                     401);
    ck_assert_ptr_nonnull(strstr(h.body, "signature: mismatch"));
    http_result_free(&h);
    const char *otheractor[] = {sighdr, "X-Vigil-Actor: someone else", NULL};
    ck_assert_int_eq(
        hub_req(rem.base, "POST", "/v1/actions/nope/approve", NULL, NULL, otheractor, &h), 401);
    http_result_free(&h);

    /* deny: an outage of another process gets a second request */
    char m[512];
    snprintf(m, sizeof(m),
             "{\"name\":\"process_up\",\"value\":0,\"ts\":%lld,\"tags\":{\"host\":\"h1\","
             "\"process\":\"demo2\"}}",
             (long long)wall_ms());
    ingest(U, "cli-3", m);
    char id2[256] = "";
    if (!wait_action(U, "pending_approval", "demo2", id2, sizeof(id2))) {
        hub_req(U, "GET", "/v1/actions", NULL, READ_TOKEN, NULL, &h);
        fprintf(stderr, "actions: %s\n", h.body);
        http_result_free(&h);
        hub_req(U, "GET", "/v1/decisions", NULL, READ_TOKEN, NULL, &h);
        fprintf(stderr, "decisions: %s\n", h.body);
        http_result_free(&h);
        ck_abort_msg("no second request");
    }
    ck_assert_str_ne(id, id2);
    r = RUN(dir, "--url", U, "--token", ADMIN_TOKEN, "deny", id2);
    expect(&r, 0, "denied", NULL);
    run_free(&r);

    /* release and audit verify, forwarded */
    r = RUN(dir, "--url", U, "--token", ADMIN_TOKEN, "release", "demo");
    expect(&r, 0, "demo was not quarantined", NULL);
    run_free(&r);
    r = RUN(dir, "--url", U, "--token", ADMIN_TOKEN, "--json", "release", "demo");
    expect(&r, 0, "\"released\":false", NULL);
    run_free(&r);
    /* a target with '/' (a drift heal's host/Kind/name), sent as one %2F-encoded segment */
    r = RUN(dir, "--url", U, "--token", ADMIN_TOKEN, "--json", "release", "h1/File/motd");
    expect(&r, 0, "{\"target\":\"h1/File/motd\",\"released\":false}", NULL);
    run_free(&r);
    r = RUN(dir, "--url", U, "--token", ADMIN_TOKEN, "audit", "verify");
    expect(&r, 0, "audit chain ok: ", NULL);
    run_free(&r);
    r = RUN(dir, "--url", U, "--token", ADMIN_TOKEN, "audit", "verify", "--json");
    expect(&r, 0, "\"ok\":true", NULL);
    run_free(&r);
    r = RUN(dir, "--url", U, "--token", READ_TOKEN, "audit", "verify");
    expect(&r, 1, NULL, "HTTP 403");
    run_free(&r);
    r = RUN(dir, "--url", U, "audit");
    expect(&r, 2, NULL, "expected \"verify\"");
    run_free(&r);

    /* agents */
    r = RUN(dir, "--url", U, "--token", READ_TOKEN, "agents");
    expect(&r, 0, "h1", NULL);
    ck_assert_ptr_nonnull(strstr(r.out, "HEARTBEAT"));
    run_free(&r);
    r = RUN(dir, "--url", U, "--token", READ_TOKEN, "agents", "--json");
    expect(&r, 0, NULL, NULL);
    j = out_json(&r);
    cJSON *ag = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "agents"), 0);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(ag, "id")), "h1");
    ck_assert_int_eq((int)cJSON_GetNumberValue(cJSON_GetObjectItem(ag, "series")), 3);
    ck_assert_int_eq((int)cJSON_GetNumberValue(cJSON_GetObjectItem(ag, "interval_ms")), 1000);
    ck_assert_int_eq((int)cJSON_GetNumberValue(cJSON_GetObjectItem(ag, "stale_after_ms")), 3000);
    ck_assert(cJSON_IsBool(cJSON_GetObjectItem(ag, "stale")));
    cJSON_Delete(j);
    run_free(&r);

    /* query: the points as lines (not a terminal) and JSON */
    r = RUN(dir, "--url", U, "--token", READ_TOKEN, "query", "process_up", "--match",
            "process=demo");
    expect(&r, 0, "process_up{", NULL);
    ck_assert_ptr_nonnull(strstr(r.out, "process=\"demo\""));
    ck_assert_ptr_nonnull(strstr(r.out, "Z  0\n"));
    run_free(&r);
    r = RUN(dir, "--url", U, "--token", READ_TOKEN, "query", "process_up", "--since", "2h",
            "--step", "1m", "--agg", "min", "--json");
    expect(&r, 0, "\"series\":[", NULL);
    j = out_json(&r);
    cJSON *s0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "series"), 0);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(s0, "name")), "process_up");
    cJSON_Delete(j);
    run_free(&r);
    r = RUN(dir, "--url", U, "--token", READ_TOKEN, "query", "no_such_metric");
    expect(&r, 0, "no samples of no_such_metric", NULL);
    run_free(&r);
    r = RUN(dir, "--url", U, "query");
    expect(&r, 2, NULL, "METRIC is required");
    run_free(&r);
    r = RUN(dir, "--url", U, "query", "process_up", "--agg", "median");
    expect(&r, 2, NULL, "--agg: expected mean");
    run_free(&r);
    r = RUN(dir, "--url", U, "query", "process_up", "--match", "nokey");
    expect(&r, 2, NULL, "--match: expected key=value");
    run_free(&r);

    /* decisions */
    r = RUN(dir, "--url", U, "--token", READ_TOKEN, "decisions");
    expect(&r, 0, "demo_down", NULL);
    ck_assert_ptr_nonnull(strstr(r.out, "fired"));
    run_free(&r);
    r = RUN(dir, "--url", U, "--token", READ_TOKEN, "decisions", "--since", "1h", "--limit", "1",
            "--json");
    expect(&r, 0, NULL, NULL);
    j = out_json(&r);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "decisions")), 1);
    cJSON_Delete(j);
    run_free(&r);

    /* silences: add, list, rm */
    r = RUN(dir, "--url", U, "--token", ADMIN_TOKEN, "silence", "add", "target=demo,policy=demo_*",
            "--for", "1h", "--comment", "maintenance window");
    expect(&r, 0, "silence ", NULL);
    ck_assert_ptr_nonnull(strstr(r.out, " added"));
    run_free(&r);
    r = RUN(dir, "--url", U, "--token", READ_TOKEN, "silence", "list");
    expect(&r, 0, "maintenance window", NULL);
    ck_assert_ptr_nonnull(strstr(r.out, "active"));
    ck_assert_ptr_nonnull(strstr(r.out, "target=demo"));
    run_free(&r);
    r = RUN(dir, "--url", U, "--token", READ_TOKEN, "silence", "list", "--json");
    j = out_json(&r);
    cJSON *sil = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "silences"), 0);
    char sid[128];
    snprintf(sid, sizeof(sid), "%s", cJSON_GetStringValue(cJSON_GetObjectItem(sil, "id")));
    cJSON_Delete(j);
    run_free(&r);
    r = RUN(dir, "--url", U, "--token", ADMIN_TOKEN, "silence", "rm", sid);
    expect(&r, 0, "removed", NULL);
    run_free(&r);
    r = RUN(dir, "--url", U, "--token", ADMIN_TOKEN, "silence", "rm", sid);
    expect(&r, 1, NULL, "HTTP 404");
    run_free(&r);
    r = RUN(dir, "--url", U, "silence", "add", "target=demo");
    expect(&r, 2, NULL, "--for is required");
    run_free(&r);
    r = RUN(dir, "--url", U, "silence", "add", "demo", "--for", "1h");
    expect(&r, 2, NULL, "MATCHERS: expected key=glob");
    run_free(&r);
    r = RUN(dir, "--url", U, "silence", "mute");
    expect(&r, 2, NULL, "unknown subcommand");
    run_free(&r);

    /* drift: a host's report, then the CLI's view of it */
    ck_assert_int_eq(
        hub_req(U, "POST", "/v1/drift",
                "{\"source\":\"h1\",\"revision\":\"abc123\",\"items\":["
                "{\"target\":\"h1/File/motd\",\"kind\":\"File\",\"name\":\"motd\",\"status\":"
                "\"drifted\",\"diff\":[{\"field\":\"mode\",\"desired\":\"0644\",\"observed\":"
                "\"0600\"}]},"
                "{\"target\":\"h1/File/issue\",\"kind\":\"File\",\"name\":\"issue\",\"status\":"
                "\"in_sync\"}]}",
                ADMIN_TOKEN, NULL, &h),
        200);
    http_result_free(&h);
    r = RUN(dir, "--url", U, "--token", READ_TOKEN, "drift");
    expect(&r, 0, "1 drifted of 2 resources", NULL);
    ck_assert_ptr_nonnull(strstr(r.out, "h1/File/motd"));
    ck_assert_ptr_nonnull(strstr(r.out, "drifted   mode: 0644 -> 0600"));
    ck_assert_ptr_null(strstr(r.out, "h1/File/issue"));
    run_free(&r);
    r = RUN(dir, "--url", U, "--token", READ_TOKEN, "drift", "--all");
    expect(&r, 0, "h1/File/issue", NULL);
    run_free(&r);
    r = RUN(dir, "--url", U, "--token", READ_TOKEN, "drift", "--json");
    expect(&r, 0, "\"drifted\":1", NULL);
    run_free(&r);
    r = RUN(dir, "--url", U, "drift", "now");
    expect(&r, 2, NULL, "unexpected argument \"now\"");
    run_free(&r);

    /* status, human and JSON */
    r = RUN(dir, "--url", U, "--token", ADMIN_TOKEN, "status");
    expect(&r, 0, "hub        ", NULL);
    ck_assert_ptr_nonnull(strstr(r.out, "agents     1"));
    ck_assert_ptr_nonnull(strstr(r.out, "  h1 "));
    ck_assert_ptr_nonnull(strstr(r.out, "firing     "));
    ck_assert_ptr_nonnull(strstr(r.out, "gated"));
    ck_assert_ptr_nonnull(strstr(r.out, "drift      1\n"));
    run_free(&r);
    r = RUN(dir, "--url", U, "--token", ADMIN_TOKEN, "status", "--remediator", rem.base);
    expect(&r, 0, "remediator ", NULL);
    ck_assert_ptr_nonnull(strstr(r.out, "  ok\n"));
    run_free(&r);
    r = RUN(dir, "--url", U, "--token", ADMIN_TOKEN, "status", "--json");
    expect(&r, 0, NULL, NULL);
    j = out_json(&r);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(j, "hub")), "ready");
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "agents")), 1);
    ck_assert_int_ge(cJSON_GetArraySize(cJSON_GetObjectItem(j, "recent_actions")), 2);
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(j, "firing_count")));
    ck_assert_int_eq((int)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "drift_count")), 1);
    cJSON_Delete(j);
    run_free(&r);

    /* the hub and token from the environment, then from an env file */
    setenv("VIGIL_URL", U, 1);
    setenv("VIGIL_TOKEN", READ_TOKEN, 1);
    r = RUN(dir, "agents");
    expect(&r, 0, "h1", NULL);
    run_free(&r);
    unsetenv("VIGIL_URL");
    unsetenv("VIGIL_TOKEN");
    char envtext[512];
    snprintf(envtext, sizeof(envtext),
             "# written by make run\nexport VIGIL_URL=%s\nVIGIL_ADMIN_TOKEN='%s'\n", U,
             ADMIN_TOKEN);
    const char *envf = write_file(dir, "cli.env", envtext);
    r = RUN(dir, "--env-file", envf, "audit", "verify");
    expect(&r, 0, "audit chain ok", NULL);
    run_free(&r);
    char vdir[PATH_MAX + 8];
    snprintf(vdir, sizeof(vdir), "%s/var", dir);
    mkdir(vdir, 0700);
    write_file(vdir, "dev.env", envtext);
    r = RUN(dir, "audit", "verify", "--json");
    expect(&r, 0, "\"ok\":true", NULL);
    run_free(&r);
    write_file(dir, "bad.env", "this is not an assignment\n");
    r = RUN(dir, "--env-file", "bad.env", "agents");
    expect(&r, 2, NULL, "bad.env:1:1: expected KEY=VALUE");
    run_free(&r);
    r = RUN(dir, "--env-file", "missing.env", "agents");
    expect(&r, 2, NULL, "missing.env: No such file");
    run_free(&r);

    /* a hub that cannot be reached: exit 3 */
    int closed = ht_closed_port();
    char dead[64];
    snprintf(dead, sizeof(dead), "http://127.0.0.1:%d", closed);
    r = RUN(dir, "--url", dead, "status");
    expect(&r, 3, NULL, "cannot reach the hub");
    run_free(&r);
    r = RUN(dir, "--url", dead, "actions");
    expect(&r, 3, NULL, "cannot reach the hub");
    run_free(&r);
    r = RUN(dir, "--url", "ftp://x", "status");
    expect(&r, 2, NULL, "--url ftp://x");
    run_free(&r);

    /* the forwarded calls when the remediator is gone: 503; status says so */
    char rembase[64];
    snprintf(rembase, sizeof(rembase), "%s", rem.base);
    ck_assert_int_eq(pt_stop(&rem), 0);
    setenv("VIGIL_REMEDIATOR_URL", rembase, 1);
    r = RUN(dir, "--url", U, "--token", ADMIN_TOKEN, "status");
    unsetenv("VIGIL_REMEDIATOR_URL");
    expect(&r, 1, "UNREACHABLE", NULL);
    run_free(&r);
    r = RUN(dir, "--url", U, "--token", ADMIN_TOKEN, "--json", "status", "--remediator", rembase);
    expect(&r, 1, "\"remediator\":{\"url\":", NULL);
    ck_assert_ptr_nonnull(strstr(r.out, "\"ok\":false"));
    run_free(&r);
    r = RUN(dir, "--url", U, "--token", ADMIN_TOKEN, "audit", "verify");
    expect(&r, 1, NULL, "HTTP 503 unavailable: the remediator could not be reached");
    run_free(&r);

    ck_assert_int_eq(pt_stop(&hub), 0);
}
END_TEST

START_TEST(cli_against_hub_with_inprocess_remediator)
{
    clear_env();
    const char *dir = vt_tmpdir();
    remediator_yaml(dir, 0);
    pt_proc hub;
    char *hargs[] = {
        (char *)pt_bin_path("vigil-collector"), "--config",
        (char *)collector_yaml(dir, "remediator: {inprocess: true, config: rem-inproc.yaml}"),
        NULL};
    pt_start(&hub, "collector-inproc", hargs, dir, 1);
    const char *U = hub.base;
    feed(U);
    char id[256] = "";
    ck_assert_msg(wait_action(U, "pending_approval", "demo", id, sizeof(id)), "no pending action");
    run r = RUN(dir, "--url", U, "--token", ADMIN_TOKEN, "approve", id);
    expect(&r, 0, "approved", NULL);
    run_free(&r);
    char marker[PATH_MAX + 16];
    snprintf(marker, sizeof(marker), "%s/marker", dir);
    for (int64_t end = pt_mono_ms() + 20000; access(marker, F_OK) != 0 && pt_mono_ms() < end;)
        usleep(20000);
    ck_assert_msg(access(marker, F_OK) == 0, "the approved action did not run");
    /* the late result reached the hub's ledger */
    char sid[256];
    ck_assert_msg(wait_action(U, "succeeded", NULL, sid, sizeof(sid)), "no succeeded action");
    ck_assert_str_eq(sid, id);
    r = RUN(dir, "--url", U, "--token", ADMIN_TOKEN, "approve", id);
    expect(&r, 1, NULL, "HTTP 404 not_found: no request");
    run_free(&r);
    r = RUN(dir, "--url", U, "--token", ADMIN_TOKEN, "deny", "unknown-id");
    expect(&r, 1, NULL, "HTTP 404");
    run_free(&r);
    r = RUN(dir, "--url", U, "--token", ADMIN_TOKEN, "release", "demo", "--json");
    expect(&r, 0, "{\"target\":\"demo\",\"released\":false}", NULL);
    run_free(&r);
    r = RUN(dir, "--url", U, "--token", ADMIN_TOKEN, "audit", "verify", "--json");
    expect(&r, 0, "\"ok\":true", NULL);
    run_free(&r);
    http_result h;
    ck_assert_int_eq(
        hub_req(U, "GET", "/v1/audit/verify?seq=0&mac=zz", NULL, ADMIN_TOKEN, NULL, &h), 400);
    http_result_free(&h);
    ck_assert_int_eq(pt_stop(&hub), 0);
}
END_TEST

START_TEST(cli_hub_without_remediator)
{
    clear_env();
    const char *dir = vt_tmpdir();
    pt_proc hub;
    char *hargs[] = {(char *)pt_bin_path("vigil-collector"), "--config",
                     (char *)collector_yaml(dir, ""), NULL};
    pt_start(&hub, "collector-alone", hargs, dir, 1);
    run r = RUN(dir, "--url", hub.base, "--token", ADMIN_TOKEN, "approve", "x");
    expect(&r, 1, NULL, "HTTP 503 unavailable: no remediator is configured");
    run_free(&r);
    r = RUN(dir, "--url", hub.base, "--token", ADMIN_TOKEN, "agents", "--json");
    expect(&r, 0, "{\"agents\":[],\"now\":", NULL);
    run_free(&r);
    ck_assert_int_eq(pt_stop(&hub), 0);
}
END_TEST

/* ---- usage and help ------------------------------------------------------------------ */

START_TEST(cli_usage_and_help)
{
    clear_env();
    const char *dir = vt_tmpdir();
    run r = RUN(dir, "help");
    expect(&r, 0, "usage: vigil", NULL);
    static const char *const cmds[] = {"status", "query",    "decisions", "actions", "approve",
                                       "deny",   "silence",  "release",   "agents",  "drift",
                                       "audit",  "validate", "simulate",  "test"};
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        ck_assert_ptr_nonnull(strstr(r.out, cmds[i]));
        run h = RUN(dir, "help", cmds[i]);
        char want[64];
        snprintf(want, sizeof(want), "usage: vigil %s", cmds[i]);
        expect(&h, 0, want, NULL);
        run_free(&h);
        run h2 = RUN(dir, cmds[i], "--help");
        expect(&h2, 0, want, NULL);
        run_free(&h2);
    }
    run_free(&r);
    r = RUN(dir, "--help");
    expect(&r, 0, "Exit codes: 0 ok, 1 failed check", NULL);
    run_free(&r);
    r = vigil_run(dir, (const char *const[]){NULL});
    expect(&r, 2, NULL, "usage: vigil");
    run_free(&r);
    r = RUN(dir, "frobnicate");
    expect(&r, 2, NULL, "unknown command \"frobnicate\"");
    run_free(&r);
    r = RUN(dir, "help", "frobnicate");
    expect(&r, 2, NULL, "unknown command");
    run_free(&r);
    r = RUN(dir, "approve");
    expect(&r, 2, NULL, "ID is required");
    run_free(&r);
    r = RUN(dir, "release", "a", "b");
    expect(&r, 2, NULL, "unexpected argument \"b\"");
    run_free(&r);
    r = RUN(dir, "actions", "--status", "succeded");
    expect(&r, 2, NULL, "--status: expected pending, pending_approval, succeeded, failed");
    run_free(&r);
    r = RUN(dir, "--url");
    expect(&r, 2, NULL, "--url needs a value");
    run_free(&r);
}
END_TEST

/* ---- validate, test, simulate ------------------------------------------------------ */

START_TEST(cli_validate_shipped_configs)
{
    clear_env();
    const char *src = vt_srcdir();
    static const char *const pats[] = {"configs/*.yaml", "configs/policies/*.yaml",
                                       "configs/policy-tests/*.yaml"};
    const char *args[64];
    int n = 0;
    /* not the tokens of a `make run` left in ./var/dev.env: the notes below are about
     * variables that are not set */
    args[n++] = "--env-file";
    args[n++] = "/dev/null";
    args[n++] = "validate";
    glob_t g[3];
    for (int i = 0; i < 3; i++) {
        char pat[PATH_MAX];
        snprintf(pat, sizeof(pat), "%s/%s", src, pats[i]);
        ck_assert_int_eq(glob(pat, 0, NULL, &g[i]), 0);
        for (size_t k = 0; k < g[i].gl_pathc && n < 60; k++)
            args[n++] = g[i].gl_pathv[k] + strlen(src) + 1;
    }
    ck_assert_int_ge(n, 8);
    args[n] = NULL;
    run r = vigil_run(src, args);
    expect(&r, 0, "configs/collector.yaml: ok (collector)", NULL);
    ck_assert_ptr_nonnull(strstr(r.out, "configs/agent.yaml: ok (agent)"));
    ck_assert_ptr_nonnull(strstr(r.out, "configs/remediator.yaml: ok (remediator)"));
    ck_assert_ptr_nonnull(strstr(r.out, "configs/gitopsd.yaml: ok (gitopsd)"));
    ck_assert_ptr_nonnull(strstr(r.out, "configs/policies/example.yaml: ok (policies)"));
    ck_assert_ptr_nonnull(strstr(r.out, "configs/policy-tests/demo_down.yaml: ok (policy-test)"));
    ck_assert_ptr_nonnull(strstr(r.err, "note: VIGIL_INGEST_TOKEN is not set"));
    run_free(&r);
    args[n++] = "--json";
    args[n] = NULL;
    r = vigil_run(src, args);
    expect(&r, 0, "\"errors\":0}", NULL);
    cJSON *j = out_json(&r);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "files")),
                     n - 4); /* --env-file FILE validate ... --json */
    cJSON_Delete(j);
    run_free(&r);
    for (int i = 0; i < 3; i++)
        globfree(&g[i]);
}
END_TEST

START_TEST(cli_validate_broken_files)
{
    clear_env();
    const char *dir = vt_tmpdir();
    write_file(dir, "syntax.yaml", "listen: [\n");
    write_file(dir, "unknown.yaml", "listen: 127.0.0.1:0\nstore: 'sqlite::memory:'\nbogus: 1\n");
    write_file(dir, "policy.yaml",
               "policies:\n  - name: x\n    kind: threshold\n    metric: m\n    op: \"<\"\n"
               "    threshold: 1\n");
    write_file(dir, "agent.yaml", "interval: never\ncollectors: []\n");
    write_file(dir, "rem.yaml", "secret_env: X\nguards: {cooldown: soon}\nactions: []\n");
    write_file(dir, "manifest.yaml",
               "apiVersion: vigil/v1\nkind: Sysctl\nmetadata: {name: s}\nspec: {nokey: 1}\n");
    write_file(dir, "what.yaml", "hello: world\n");
    write_file(dir, "gitopsd.yaml", "repo: {url: 'file:///srv/x'}\nsync: {min_interval: often}\n");
    write_file(dir, "test.yaml", "policy_files: [p.yaml]\ntests:\n  - name: t\n    bogus: 1\n");
    run r = RUN(dir, "validate", "syntax.yaml");
    expect(&r, 1, NULL, "syntax.yaml:2:1: ");
    run_free(&r);
    r = RUN(dir, "validate", "unknown.yaml");
    expect(&r, 1, NULL, "unknown.yaml:3:1: bogus: unknown key");
    run_free(&r);
    r = RUN(dir, "validate", "policy.yaml");
    expect(&r, 1, NULL, "policy.yaml:2:5: policies[0]: missing required key \"action\"");
    run_free(&r);
    r = RUN(dir, "validate", "agent.yaml");
    expect(&r, 1, NULL, "agent.yaml:1:11: ");
    run_free(&r);
    r = RUN(dir, "validate", "rem.yaml");
    expect(&r, 1, NULL, "rem.yaml:2:20: guards.cooldown");
    ck_assert_ptr_nonnull(strstr(r.err, "note: X is not set"));
    run_free(&r);
    /* no secret_env: its default variable gets the placeholder, the rest is checked */
    unsetenv("VIGIL_REMEDIATOR_SECRET");
    write_file(dir, "rem_default.yaml", "guards: {cooldown: soon}\nactions: []\n");
    r = RUN(dir, "validate", "rem_default.yaml");
    expect(&r, 1, NULL, "rem_default.yaml:1:20: guards.cooldown");
    ck_assert_ptr_nonnull(strstr(r.err, "rem_default.yaml: note: VIGIL_REMEDIATOR_SECRET "
                                        "(secret_env's default) is not set"));
    ck_assert_ptr_null(strstr(r.err, "secret_env: environment variable"));
    run_free(&r);
    r = RUN(dir, "validate", "manifest.yaml");
    expect(&r, 1, NULL, "manifest.yaml:4:");
    run_free(&r);
    r = RUN(dir, "validate", "gitopsd.yaml");
    expect(&r, 1, NULL, "gitopsd.yaml:2:22: sync.min_interval: expected a duration");
    run_free(&r);
    r = RUN(dir, "validate", "what.yaml");
    expect(&r, 1, NULL, "what.yaml:1:1: cannot tell the kind");
    run_free(&r);
    r = RUN(dir, "validate", "--kind", "policies", "what.yaml");
    expect(&r, 1, NULL, "what.yaml:1:1: hello: unknown key");
    run_free(&r);
    r = RUN(dir, "validate", "test.yaml");
    expect(&r, 1, NULL, "test.yaml:4:5: tests[0].bogus: unknown key");
    run_free(&r);
    r = RUN(dir, "validate", "missing.yaml");
    expect(&r, 1, NULL, "missing.yaml");
    run_free(&r);
    r = RUN(dir, "validate", "--kind", "nothing", "x.yaml");
    expect(&r, 2, NULL, "--kind: expected agent");
    run_free(&r);
    r = RUN(dir, "validate");
    expect(&r, 2, NULL, "FILE is required");
    run_free(&r);
    r = RUN(dir, "validate", "policy.yaml", "what.yaml", "--json");
    expect(&r, 1, "\"errors\":2}", NULL);
    cJSON *j = out_json(&r);
    cJSON *f0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "files"), 0);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(f0, "kind")), "policies");
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(f0, "ok")));
    cJSON_Delete(j);
    run_free(&r);
}
END_TEST

START_TEST(cli_policy_tests)
{
    clear_env();
    const char *src = vt_srcdir();
    run r = RUN(src, "test", "configs/policy-tests/demo_down.yaml",
                "configs/policy-tests/example.yaml");
    expect(&r, 0, "all policy tests passed", NULL);
    ck_assert_ptr_nonnull(strstr(r.out, "PASS  configs/policy-tests/demo_down.yaml: a crash is "
                                        "restarted and verified (3 decisions)"));
    run_free(&r);

    /* a broken expectation fails with a diff */
    const char *dir = vt_tmpdir();
    char text[4096];
    snprintf(text, sizeof(text),
             "policy_files: [%s/configs/collector.yaml]\n"
             "tests:\n"
             "  - name: wrong time\n"
             "    input:\n"
             "      - metric: process_up\n"
             "        tags: {process: demo, host: h1}\n"
             "        values: \"1 1 0 1\"\n"
             "    expect:\n"
             "      - {at: 1s, policy: demo_down, decision: fired, target: demo}\n"
             "      - {at: 3s, decision: resolved}\n"
             "      - {at: 3s, decision: remediated}\n",
             src);
    write_file(dir, "broken.yaml", text);
    r = RUN(dir, "test", "broken.yaml");
    expect(&r, 1, "FAIL  broken.yaml: wrong time", NULL);
    ck_assert_ptr_nonnull(strstr(r.out, "- at=1s policy=demo_down decision=fired target=demo"));
    ck_assert_ptr_nonnull(strstr(r.out, "(broken.yaml:9)"));
    ck_assert_ptr_nonnull(
        strstr(r.out, "+ at=2s policy=demo_down decision=fired target=demo action=restart_demo"));
    ck_assert_ptr_nonnull(strstr(r.out, "        at=3s policy=demo_down decision=resolved"));
    ck_assert_ptr_nonnull(strstr(r.out, "1 failed, 0 files with errors"));
    run_free(&r);
    r = RUN(dir, "test", "broken.yaml", "--json");
    expect(&r, 1, "\"ok\":false", NULL);
    run_free(&r);

    /* an extra decision fails too; a file error is located */
    snprintf(text, sizeof(text),
             "policy_files: [%s/configs/collector.yaml]\n"
             "tests:\n"
             "  - input:\n"
             "      - {metric: process_up, tags: {process: demo}, values: \"0\"}\n"
             "    actions: none\n"
             "    expect: []\n",
             src);
    write_file(dir, "extra.yaml", text);
    r = RUN(dir, "test", "extra.yaml");
    expect(&r, 1, "FAIL  extra.yaml: test 1", NULL);
    ck_assert_ptr_nonnull(strstr(r.out, "+ at=0s policy=demo_down decision=fired"));
    run_free(&r);
    write_file(dir, "bad.yaml",
               "policy_files: [nope.yaml]\ntests:\n  - input: []\n    actions: maybe\n");
    r = RUN(dir, "test", "bad.yaml");
    expect(&r, 1, NULL, "bad.yaml:4:14: actions: expected succeed, fail or none");
    run_free(&r);
    write_file(dir, "values.yaml",
               "policy_files: [x.yaml]\ntests:\n  - input:\n      - {metric: m, values: \"1 "
               "two\"}\n");
    r = RUN(dir, "test", "values.yaml");
    expect(&r, 1, NULL, "x.yaml");
    run_free(&r);
    r = RUN(dir, "test");
    expect(&r, 2, NULL, "FILE is required");
    run_free(&r);
}
END_TEST

START_TEST(cli_simulate)
{
    clear_env();
    const char *src = vt_srcdir();
    const char *dir = vt_tmpdir();
    char pol[PATH_MAX + 32];
    snprintf(pol, sizeof(pol), "%s/configs/collector.yaml", src);
    write_file(dir, "in.json",
               "[{\"agent\":\"h1\",\"metrics\":["
               "{\"name\":\"process_up\",\"value\":1,\"ts\":1767225600000,\"tags\":{\"process\":"
               "\"demo\"}},"
               "{\"name\":\"process_up\",\"value\":0,\"ts\":1767225601000,\"tags\":{\"process\":"
               "\"demo\"}}]},"
               "{\"metrics\":[{\"name\":\"process_up\",\"value\":1,\"ts\":1767225602000,"
               "\"tags\":{\"process\":\"demo\"}}]}]");
    run r = RUN(dir, "simulate", "--policies", pol, "--input", "in.json");
    expect(&r, 0, "3 samples in 3 steps, 1 actions requested", NULL);
    ck_assert_ptr_nonnull(strstr(r.out, "2026-01-01 00:00:01Z  demo_down          fired"));
    ck_assert_ptr_nonnull(strstr(r.out, "remediated"));
    run_free(&r);
    r = RUN(dir, "simulate", "--policies", pol, "--input", "in.json", "--json");
    expect(&r, 0, NULL, NULL);
    cJSON *j = out_json(&r);
    cJSON *d0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "decisions"), 0);
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(d0, "decision")), "fired");
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(d0, "target")), "demo");
    cJSON_Delete(j);
    run_free(&r);
    write_file(dir, "bad.json", "{\"metrics\":[{\"name\":\"x\",\"value\":\"one\"}]}");
    r = RUN(dir, "simulate", "--policies", pol, "--input", "bad.json");
    expect(&r, 1, NULL, "bad.json: document 0: metrics[0].");
    run_free(&r);
    r = RUN(dir, "simulate", "--policies", pol, "--input", "none.json");
    expect(&r, 1, NULL, "none.json: No such file");
    run_free(&r);
    r = RUN(dir, "simulate", "--input", "in.json");
    expect(&r, 2, NULL, "--policies FILE and --input METRICS.json are required");
    run_free(&r);
}
END_TEST

static Suite *cli_suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tl = tcase_create("local");
    tcase_set_timeout(tl, 120);
    tcase_add_test(tl, cli_usage_and_help);
    tcase_add_test(tl, cli_validate_shipped_configs);
    tcase_add_test(tl, cli_validate_broken_files);
    tcase_add_test(tl, cli_policy_tests);
    tcase_add_test(tl, cli_simulate);
    suite_add_tcase(s, tl);
    TCase *th = tcase_create("hub");
    tcase_set_timeout(th, 240);
    tcase_add_test(th, cli_against_hub_and_remediator);
    tcase_add_test(th, cli_against_hub_with_inprocess_remediator);
    tcase_add_test(th, cli_hub_without_remediator);
    suite_add_tcase(s, th);
    return s;
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    SRunner *sr = srunner_create(cli_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
