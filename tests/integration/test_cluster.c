/* Several hubs on one store, as real processes (issue #20, "Done when"):
 * - vigil-remediator refuses signed requests of an older leader epoch (409
 *   stale_epoch, audited, not in its ledger), and one without an epoch once
 *   it has seen one (409 epoch_required); the highest epoch survives a
 *   restart;
 * - two vigil-collector processes on one SQLite file elect one leader; when
 *   it is SIGKILLed the other takes over with the next epoch;
 * - two vigil-collector processes on one PostgreSQL server (a private
 *   instance, tests/unit/pgtest.h): agents ingest to both, the leader
 *   dispatches a policy's action with its epoch; it is SIGKILLed; the other
 *   takes over within 5 s (the measured time is printed), its policies see
 *   samples ingested at either hub (through the store's tail) and dispatch
 *   with the next epoch; a request replayed with the dead leader's epoch is
 *   refused; no action ran twice; no acknowledged sample is lost. */
#include <cJSON.h>
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
#include "vigil/signature.h"

#define SECRET    "cluster-test-signing-secret-0123456789"
#define AUDIT_KEY "cluster-test-audit-key-0123456789abcdef"

static vt_pg g_server;

/* ---- HTTP helpers ------------------------------------------------------------ */

static void get(const char *base, const char *path, http_result *r)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", base, path);
    http_opts o;
    memset(&o, 0, sizeof(o));
    http_do("GET", url, NULL, 0, &o, r);
}

static long post_json(const char *base, const char *path, const char *body, http_result *r)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", base, path);
    http_opts o;
    memset(&o, 0, sizeof(o));
    http_do("POST", url, body, strlen(body), &o, r);
    return r->status;
}

/* POST /v1/execute signed with SECRET now. */
static void post_exec(const char *base, const char *body, http_result *r)
{
    char url[256], hdr[256];
    vigil_buf sig = VIGIL_BUF_INIT;
    ck_assert_int_eq(
        vigil_signature_make(&sig, SECRET, strlen(SECRET), (int64_t)time(NULL), body, strlen(body)),
        VIGIL_OK);
    snprintf(hdr, sizeof(hdr), "%s: %s", VIGIL_SIGNATURE_HEADER, sig.ptr);
    vigil_buf_dispose(&sig);
    const char *extra[2] = {hdr, NULL};
    snprintf(url, sizeof(url), "%s/v1/execute", base);
    http_opts o;
    memset(&o, 0, sizeof(o));
    o.extra = extra;
    http_do("POST", url, body, strlen(body), &o, r);
}

/* The answer's X-Vigil-Signature verifies with SECRET over its body. */
static int answer_signed(const http_result *r)
{
    const char *h = strcasestr(r->headers, "\r\nX-Vigil-Signature:");
    if (!h)
        return 0;
    h += 20;
    while (*h == ' ')
        h++;
    char sv[256];
    snprintf(sv, sizeof(sv), "%.*s", (int)strcspn(h, "\r\n"), h);
    return vigil_signature_verify(sv, SECRET, strlen(SECRET), r->body, r->len, (int64_t)time(NULL),
                                  0) == VIGIL_OK;
}

static int count_of(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

/* The remediator's audit rows of `kind` for action id `id`. */
static int audit_rows(const char *rem_base, const char *kind, const char *id)
{
    http_result r;
    get(rem_base, "/v1/audit?limit=1000", &r);
    ck_assert_int_eq(r.status, 200);
    cJSON *j = cJSON_Parse(r.body);
    ck_assert_ptr_nonnull(j);
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(j, "entries"))
    {
        const cJSON *k = cJSON_GetObjectItem(e, "kind");
        const cJSON *a = cJSON_GetObjectItem(e, "action_id");
        if (cJSON_IsString(k) && strcmp(k->valuestring, kind) == 0 && cJSON_IsString(a) &&
            strcmp(a->valuestring, id) == 0)
            n++;
    }
    cJSON_Delete(j);
    http_result_free(&r);
    return n;
}

/* ---- daemons ----------------------------------------------------------------- */

static void start_remediator(pt_proc *p, const char *dir, const char *name)
{
    char cfg[2048];
    setenv("VIGIL_CLUSTER_SECRET", SECRET, 1);
    setenv("VIGIL_CLUSTER_AUDIT_KEY", AUDIT_KEY, 1);
    snprintf(cfg, sizeof(cfg),
             "listen: 127.0.0.1:0\n"
             "secret_env: VIGIL_CLUSTER_SECRET\n"
             "audit: sqlite://%s/remediator.db\n"
             "audit_key_env: VIGIL_CLUSTER_AUDIT_KEY\n"
             "guards: {dry_run: false, cooldown: 0, max_attempts: 0, rate_limit: 0}\n"
             "actions:\n"
             "  - {name: note, type: log}\n",
             dir);
    vt_write_file(dir, "remediator.yaml", cfg, strlen(cfg));
    char *args[] = {(char *)pt_bin_path("vigil-remediator"), "--config", "remediator.yaml", NULL};
    pt_start(p, name, args, dir, 1);
}

/* A vigil-collector of a cluster on `store`, its own working directory
 * <dir>/<name>; `rem` the remediator's base URL. */
static void start_hub(pt_proc *p, const char *dir, const char *name, const char *store,
                      const char *rem)
{
    char sub[600], cfg[4096];
    setenv("VIGIL_CLUSTER_SECRET", SECRET, 1);
    snprintf(sub, sizeof(sub), "%s/%s", dir, name);
    mkdir(sub, 0700);
    snprintf(cfg, sizeof(cfg),
             "listen: 127.0.0.1:0\n"
             "store: \"%s\"\n"
             "remediator: {url: \"%s\", secret_env: VIGIL_CLUSTER_SECRET, backoff: 50ms}\n"
             "cluster: {enabled: true, holder: %s, lease_ttl: 2s, renew_interval: 500ms,"
             " tail_interval: 50ms}\n"
             "policy_interval: 200ms\n"
             "policies:\n"
             "  - name: too_hot\n"
             "    kind: threshold\n"
             "    metric: temp\n"
             "    match: {room: \"*\"}\n"
             "    window: 1m\n"
             "    aggregate: last\n"
             "    op: \">\"\n"
             "    threshold: 100\n"
             "    for: 0s\n"
             "    action: note\n"
             "    target: \"{{tags.room}}\"\n",
             store, rem ? rem : "http://127.0.0.1:9", name);
    vt_write_file(sub, "collector.yaml", cfg, strlen(cfg));
    char *args[] = {(char *)pt_bin_path("vigil-collector"), "--config", "collector.yaml", NULL};
    pt_start(p, name, args, sub, 1);
}

typedef struct cstat {
    int leader;
    long long epoch;
    char leader_holder[160];
} cstat;

/* GET /v1/cluster of a hub; 0 when it does not answer. */
static int cluster_of(const pt_proc *p, cstat *out)
{
    memset(out, 0, sizeof(*out));
    http_result r;
    get(p->base, "/v1/cluster", &r);
    int ok = r.status == 200;
    if (ok) {
        cJSON *j = cJSON_Parse(r.body);
        ck_assert_ptr_nonnull(j);
        ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "enabled")));
        out->leader = cJSON_IsTrue(cJSON_GetObjectItem(j, "leader"));
        out->epoch = (long long)cJSON_GetObjectItem(j, "epoch")->valuedouble;
        const cJSON *lh = cJSON_GetObjectItem(j, "leader_holder");
        if (cJSON_IsString(lh))
            snprintf(out->leader_holder, sizeof(out->leader_holder), "%s", lh->valuestring);
        cJSON_Delete(j);
    }
    http_result_free(&r);
    return ok;
}

/* Waits (deadline ms) until exactly one of the hubs leads; its index. */
static int wait_one_leader(pt_proc *h, int n, int64_t deadline_ms, cstat *st)
{
    int64_t end = pt_mono_ms() + deadline_ms;
    for (;;) {
        int leaders = 0, who = -1;
        for (int i = 0; i < n; i++) {
            cstat s;
            if (h[i].pid > 0 && cluster_of(&h[i], &s) && s.leader) {
                leaders++;
                who = i;
                *st = s;
            }
        }
        if (leaders == 1)
            return who;
        ck_assert_msg(leaders <= 1, "%d hubs lead at once", leaders);
        ck_assert_msg(pt_mono_ms() < end, "no leader after %lld ms", (long long)deadline_ms);
        usleep(20000);
    }
}

static void kill9(pt_proc *p)
{
    kill(p->pid, SIGKILL);
    int st;
    waitpid(p->pid, &st, 0);
    p->pid = 0;
}

/* ---- the remediator's side of fencing ---------------------------------------------- */

static const char *exec_body(char *buf, size_t size, const char *id, long long epoch)
{
    int n = snprintf(buf, size,
                     "{\"id\":\"%s\",\"action\":\"note\",\"target\":\"r1\",\"params\":{},"
                     "\"reason\":\"t\",\"policy\":\"p\",\"dry_run\":false",
                     id);
    if (epoch >= 0)
        snprintf(buf + n, size - (size_t)n, ",\"epoch\":%lld}", epoch);
    else
        snprintf(buf + n, size - (size_t)n, "}");
    return buf;
}

START_TEST(remediator_refuses_stale_epochs)
{
    const char *dir = vt_tmpdir();
    pt_proc rem;
    start_remediator(&rem, dir, "remediator");
    char body[512];
    http_result r;

    /* a single hub: no epoch, as before */
    post_exec(rem.base, exec_body(body, sizeof(body), "single-1", -1), &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "\"status\":\"succeeded\""));
    http_result_free(&r);

    /* a leader of epoch 3 */
    post_exec(rem.base, exec_body(body, sizeof(body), "e3-1", 3), &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "\"status\":\"succeeded\""));
    http_result_free(&r);

    /* an older leader: 409 stale_epoch, signed, nothing run nor recorded */
    post_exec(rem.base, exec_body(body, sizeof(body), "e2-1", 2), &r);
    ck_assert_int_eq(r.status, 409);
    ck_assert_msg(answer_signed(&r), "the refusal is not signed");
    ck_assert_msg(strstr(r.body, "\"code\":\"stale_epoch\""), "%s", r.body);
    ck_assert_ptr_nonnull(strstr(r.body, "epoch 2 is older than epoch 3, the newest this "
                                         "remediator has seen"));
    http_result_free(&r);
    /* a request without an epoch, now that epochs were seen */
    post_exec(rem.base, exec_body(body, sizeof(body), "none-1", -1), &r);
    ck_assert_int_eq(r.status, 409);
    ck_assert_ptr_nonnull(strstr(r.body, "\"code\":\"epoch_required\""));
    ck_assert_ptr_nonnull(strstr(r.body, "the request has no epoch"));
    http_result_free(&r);
    /* bad epochs */
    static const char *const bad[] = {"0", "-1", "1.5", "\"3\"", "9007199254740992", "true"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(body, sizeof(body),
                 "{\"id\":\"bad-%zu\",\"action\":\"note\",\"target\":\"r1\",\"epoch\":%s}", i,
                 bad[i]);
        post_exec(rem.base, body, &r);
        ck_assert_msg(r.status == 400, "epoch %s: %ld %s", bad[i], r.status, r.body);
        ck_assert_ptr_nonnull(strstr(r.body, "epoch: expected an integer from 1 to 2^53 - 1"));
        http_result_free(&r);
    }
    /* the same epoch and newer ones pass */
    post_exec(rem.base, exec_body(body, sizeof(body), "e3-2", 3), &r);
    ck_assert_int_eq(r.status, 200);
    http_result_free(&r);
    post_exec(rem.base, exec_body(body, sizeof(body), "e4-1", 4), &r);
    ck_assert_int_eq(r.status, 200);
    http_result_free(&r);
    /* the old leader's own request replayed (same id, its epoch): refused
     * before the ledger, even though that id ran */
    post_exec(rem.base, exec_body(body, sizeof(body), "e3-1", 3), &r);
    ck_assert_int_eq(r.status, 409);
    ck_assert_ptr_nonnull(strstr(r.body, "\"code\":\"stale_epoch\""));
    http_result_free(&r);

    /* audited, not in the ledger, not run */
    ck_assert_int_eq(audit_rows(rem.base, "epoch_refused", "e2-1"), 1);
    ck_assert_int_eq(audit_rows(rem.base, "epoch_refused", "none-1"), 1);
    ck_assert_int_eq(audit_rows(rem.base, "epoch_refused", "e3-1"), 1);
    ck_assert_int_eq(audit_rows(rem.base, "execute", "e2-1"), 0);
    ck_assert_int_eq(audit_rows(rem.base, "execute", "e3-1"), 1);
    get(rem.base, "/v1/actions", &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_null(strstr(r.body, "\"id\":\"e2-1\""));
    ck_assert_ptr_null(strstr(r.body, "\"id\":\"none-1\""));
    ck_assert_ptr_nonnull(strstr(r.body, "\"id\":\"e4-1\""));
    http_result_free(&r);
    get(rem.base, "/metrics", &r);
    ck_assert_ptr_nonnull(strstr(r.body, "reason=\"stale_epoch\"} 2"));
    ck_assert_ptr_nonnull(strstr(r.body, "reason=\"epoch_required\"} 1"));
    http_result_free(&r);
    get(rem.base, "/v1/audit/verify", &r);
    ck_assert_ptr_nonnull(strstr(r.body, "\"ok\":true"));
    http_result_free(&r);

    /* the highest epoch survives a restart */
    ck_assert_int_eq(pt_stop(&rem), 0);
    start_remediator(&rem, dir, "remediator2");
    post_exec(rem.base, exec_body(body, sizeof(body), "e3-3", 3), &r);
    ck_assert_int_eq(r.status, 409);
    ck_assert_ptr_nonnull(strstr(r.body, "epoch 3 is older than epoch 4"));
    http_result_free(&r);
    post_exec(rem.base, exec_body(body, sizeof(body), "e5-1", 5), &r);
    ck_assert_int_eq(r.status, 200);
    http_result_free(&r);
    ck_assert_int_eq(pt_stop(&rem), 0);
}
END_TEST

/* ---- the lease on one SQLite file ------------------------------------------------- */

START_TEST(two_hubs_on_sqlite_elect_one_leader)
{
    const char *dir = vt_tmpdir();
    char store[700];
    snprintf(store, sizeof(store), "sqlite://%s/shared.db", dir);
    pt_proc h[2];
    start_hub(&h[0], dir, "hub-a", store, NULL);
    start_hub(&h[1], dir, "hub-b", store, NULL);
    cstat s;
    int who = wait_one_leader(h, 2, 10000, &s);
    ck_assert_int_ge(s.epoch, 1);
    long long first = s.epoch;
    const char *names[2] = {"hub-a", "hub-b"};
    ck_assert_str_eq(s.leader_holder, names[who]);
    /* the follower knows who leads */
    cstat f;
    ck_assert(cluster_of(&h[1 - who], &f));
    ck_assert_int_eq(f.leader, 0);
    ck_assert_str_eq(f.leader_holder, names[who]);
    /* a follower refuses manual requests: 503 not_leader */
    http_result r;
    post_json(h[1 - who].base, "/v1/actions", "{\"action\":\"note\",\"target\":\"r1\"}", &r);
    ck_assert_int_eq(r.status, 503);
    ck_assert_ptr_nonnull(strstr(r.body, "\"code\":\"not_leader\""));
    http_result_free(&r);
    get(h[who].base, "/metrics", &r);
    ck_assert_ptr_nonnull(strstr(r.body, "vigil_cluster_leader 1"));
    http_result_free(&r);

    int64_t t0 = pt_mono_ms();
    kill9(&h[who]);
    int next = wait_one_leader(h, 2, 10000, &s);
    int64_t took = pt_mono_ms() - t0;
    ck_assert_int_eq(next, 1 - who);
    ck_assert_int_eq(s.epoch, first + 1);
    ck_assert_msg(took < 5000, "takeover took %lld ms", (long long)took);
    printf("test_cluster: SQLite takeover after SIGKILL: %lld ms (lease_ttl 2s)\n",
           (long long)took);
    /* a clean stop releases the lease */
    start_hub(&h[who], dir, "hub-c", store, NULL);
    ck_assert_int_eq(pt_stop(&h[next]), 0);
    t0 = pt_mono_ms();
    int third = wait_one_leader(h, 2, 10000, &s);
    ck_assert_int_eq(third, who);
    ck_assert_int_eq(s.epoch, first + 2);
    printf("test_cluster: SQLite takeover after a clean stop: %lld ms\n",
           (long long)(pt_mono_ms() - t0));
    ck_assert_int_eq(pt_stop(&h[who]), 0);
}
END_TEST

/* ---- two hubs on one PostgreSQL ---------------------------------------------------- */

typedef struct acked {
    char series[64][32]; /* room tag of each acknowledged sample's series */
    int64_t ts[4096];
    char room[4096][16];
    double value[4096];
    int n;
} acked;

/* Ingests one sample of `room` at `hub` (agent `agent`, a batch id); records
 * it when the hub acknowledged it (202). */
static long ingest(const pt_proc *hub, const char *agent, const char *room, double value,
                   int64_t ts, acked *a)
{
    char body[512];
    static int seq;
    snprintf(body, sizeof(body),
             "{\"agent\":\"%s\",\"batch_id\":\"%s-%d\",\"metrics\":[{\"name\":\"temp\","
             "\"value\":%g,\"ts\":%lld,\"tags\":{\"room\":\"%s\",\"agent\":\"%s\"}}]}",
             agent, agent, ++seq, value, (long long)ts, room, agent);
    http_result r;
    long st = post_json(hub->base, "/v1/ingest", body, &r);
    http_result_free(&r);
    if (st == 202 && a->n < 4096) {
        a->ts[a->n] = ts;
        snprintf(a->room[a->n], sizeof(a->room[0]), "%s", room);
        a->value[a->n] = value;
        a->n++;
    }
    return st;
}

/* The ledger's action ids for target `room` (a JSON array text in out). */
static int ledger_ids(const pt_proc *hub, const char *room, char ids[][128], int max,
                      char statuses[][32])
{
    http_result r;
    get(hub->base, "/v1/actions?since=-1h&limit=1000", &r);
    ck_assert_int_eq(r.status, 200);
    cJSON *j = cJSON_Parse(r.body);
    ck_assert_ptr_nonnull(j);
    int n = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItem(j, "actions"))
    {
        if (strcmp(cJSON_GetObjectItem(a, "target")->valuestring, room) != 0 || n >= max)
            continue;
        snprintf(ids[n], 128, "%s", cJSON_GetObjectItem(a, "id")->valuestring);
        snprintf(statuses[n], 32, "%s", cJSON_GetObjectItem(a, "status")->valuestring);
        n++;
    }
    cJSON_Delete(j);
    http_result_free(&r);
    return n;
}

/* Waits (15 s) until the ledger has a succeeded action for `room`; its id. */
static void wait_succeeded(const pt_proc *hub, const char *room, char *id)
{
    char ids[8][128], st[8][32];
    for (int64_t end = pt_mono_ms() + 15000;;) {
        int n = ledger_ids(hub, room, ids, 8, st);
        for (int i = 0; i < n; i++)
            if (strcmp(st[i], "succeeded") == 0) {
                snprintf(id, 128, "%s", ids[i]);
                return;
            }
        ck_assert_msg(pt_mono_ms() < end, "no succeeded action for %s (%d in the ledger)", room, n);
        usleep(50000);
    }
}

/* Every acknowledged sample is in the store, read through `hub`. */
static void check_no_loss(const pt_proc *hub, const acked *a)
{
    http_result r;
    get(hub->base, "/v1/query?name=temp&from=-1h&to=now", &r);
    ck_assert_int_eq(r.status, 200);
    cJSON *j = cJSON_Parse(r.body);
    ck_assert_ptr_nonnull(j);
    int found = 0;
    for (int i = 0; i < a->n; i++) {
        int hit = 0;
        const cJSON *s;
        cJSON_ArrayForEach(s, cJSON_GetObjectItem(j, "series"))
        {
            const cJSON *room = cJSON_GetObjectItem(cJSON_GetObjectItem(s, "tags"), "room");
            if (!cJSON_IsString(room) || strcmp(room->valuestring, a->room[i]) != 0)
                continue;
            const cJSON *p;
            cJSON_ArrayForEach(p, cJSON_GetObjectItem(s, "points"))
            {
                if ((int64_t)cJSON_GetArrayItem(p, 0)->valuedouble == a->ts[i] &&
                    cJSON_GetArrayItem(p, 1)->valuedouble == a->value[i])
                    hit = 1;
            }
        }
        ck_assert_msg(hit, "acknowledged sample %d (%s at %lld) is missing", i, a->room[i],
                      (long long)a->ts[i]);
        found++;
    }
    cJSON_Delete(j);
    http_result_free(&r);
    printf("test_cluster: %d acknowledged samples, %d found after the failover\n", a->n, found);
}

START_TEST(two_hubs_on_postgresql_fail_over)
{
    if (!g_server.pid) {
        printf("test_cluster: SKIP two_hubs_on_postgresql_fail_over: %s\n", g_server.err);
        return;
    }
    const char *dir = vt_tmpdir();
    pt_proc rem, h[2];
    start_remediator(&rem, dir, "remediator");
    start_hub(&h[0], dir, "hub-a", g_server.url, rem.base);
    start_hub(&h[1], dir, "hub-b", g_server.url, rem.base);
    cstat s;
    int L = wait_one_leader(h, 2, 15000, &s);
    int F = 1 - L;
    long long old_epoch = s.epoch;
    static acked a;
    memset(&a, 0, sizeof(a));
    int64_t now = (int64_t)time(NULL) * 1000;
    /* agents ingest to both hubs */
    for (int i = 0; i < 20; i++) {
        ck_assert_int_eq(ingest(&h[0], "agent-a", "kitchen", 20 + i, now - 20000 + i * 100, &a),
                         202);
        ck_assert_int_eq(ingest(&h[1], "agent-b", "hall", 30 + i, now - 20000 + i * 100, &a), 202);
    }
    /* a sample ingested at the FOLLOWER crosses the policy: the leader sees
     * it through the store's tail and dispatches with its epoch */
    ck_assert_int_eq(ingest(&h[F], F ? "agent-b" : "agent-a", "attic", 150, now - 5000, &a), 202);
    char first_id[128];
    wait_succeeded(&h[L], "attic", first_id);
    ck_assert_int_eq(audit_rows(rem.base, "execute", first_id), 1);

    /* the leader dies */
    int64_t t0 = pt_mono_ms();
    kill9(&h[L]);
    int nl = wait_one_leader(h, 2, 10000, &s);
    int64_t took = pt_mono_ms() - t0;
    ck_assert_int_eq(nl, F);
    ck_assert_int_eq(s.epoch, old_epoch + 1);
    printf("test_cluster: PostgreSQL takeover after SIGKILL of the leader: %lld ms "
           "(lease_ttl 2s, renew 500ms; epoch %lld -> %lld)\n",
           (long long)took, old_epoch, s.epoch);
    ck_assert_msg(took < 5000, "takeover took %lld ms", (long long)took);

    /* the agent of the dead hub goes to the survivor; ingest goes on */
    for (int i = 0; i < 20; i++) {
        ck_assert_int_eq(ingest(&h[F], "agent-a", "kitchen", 40 + i, now - 10000 + i * 100, &a),
                         202);
        ck_assert_int_eq(ingest(&h[F], "agent-b", "hall", 50 + i, now - 10000 + i * 100, &a), 202);
    }
    /* the new leader evaluates and dispatches with the new epoch */
    ck_assert_int_eq(ingest(&h[F], "agent-a", "cellar", 170, now - 1000, &a), 202);
    char second_id[128];
    wait_succeeded(&h[F], "cellar", second_id);
    ck_assert_int_eq(audit_rows(rem.base, "execute", second_id), 1);

    /* the dead leader's request replayed with its epoch: refused, not run */
    char body[512];
    http_result r;
    snprintf(body, sizeof(body),
             "{\"id\":\"%s\",\"action\":\"note\",\"target\":\"attic\",\"params\":{},"
             "\"reason\":\"replay\",\"policy\":\"too_hot\",\"dry_run\":false,\"epoch\":%lld}",
             first_id, old_epoch);
    post_exec(rem.base, body, &r);
    ck_assert_int_eq(r.status, 409);
    ck_assert_ptr_nonnull(strstr(r.body, "\"code\":\"stale_epoch\""));
    http_result_free(&r);
    snprintf(body, sizeof(body),
             "{\"id\":\"replay-new\",\"action\":\"note\",\"target\":\"attic\",\"params\":{},"
             "\"reason\":\"replay\",\"policy\":\"too_hot\",\"dry_run\":false,\"epoch\":%lld}",
             old_epoch);
    post_exec(rem.base, body, &r);
    ck_assert_int_eq(r.status, 409);
    http_result_free(&r);
    ck_assert_int_eq(audit_rows(rem.base, "epoch_refused", first_id), 1);
    ck_assert_int_eq(audit_rows(rem.base, "execute", "replay-new"), 0);
    /* no action ran twice */
    ck_assert_int_eq(audit_rows(rem.base, "execute", first_id), 1);
    ck_assert_int_eq(audit_rows(rem.base, "execute", second_id), 1);
    char ids[8][128], st[8][32];
    ck_assert_int_eq(ledger_ids(&h[F], "attic", ids, 8, st), 1);
    ck_assert_int_eq(ledger_ids(&h[F], "cellar", ids, 8, st), 1);
    /* no acknowledged sample is lost */
    check_no_loss(&h[F], &a);
    get(h[F].base, "/v1/cluster", &r);
    ck_assert_ptr_nonnull(strstr(r.body, "\"leader\":true"));
    cJSON *j = cJSON_Parse(r.body);
    ck_assert_int_gt((int)cJSON_GetObjectItem(j, "tailed")->valuedouble, 0);
    cJSON_Delete(j);
    http_result_free(&r);
    ck_assert_int_eq(pt_stop(&h[F]), 0);
    ck_assert_int_eq(pt_stop(&rem), 0);
    (void)count_of;
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("cluster");
    TCase *tc = tcase_create("cluster");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, remediator_refuses_stale_epochs);
    tcase_add_test(tc, two_hubs_on_sqlite_elect_one_leader);
    tcase_add_test(tc, two_hubs_on_postgresql_fail_over);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    int up = vt_pg_start(&g_server, "test_cluster");
    if (up == 0)
        printf("test_cluster: SKIP the PostgreSQL run: %s\n", g_server.err);
    else if (up < 0)
        fprintf(stderr, "test_cluster: cannot start PostgreSQL: %s\n", g_server.err);
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    vt_pg_stop(&g_server);
    return failed || up < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
