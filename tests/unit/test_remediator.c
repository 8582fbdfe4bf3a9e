/* The remediator in process: every guard with an injected clock, approvals,
 * dry runs, the exactly-once ledger (the same id delivered 5 times, also
 * concurrently, and again after a restart, runs once: counted by a real
 * child process appending to a marker file), interrupted requests, the
 * audit rows of each step, and remediator.yaml. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "action_testutil.h"
#include "testutil.h"
#include "vigil/remediator.h"
#include "vigil/sys/store.h"

#define AUDIT_KEY "remediator-test-audit-key-0123456789"
#define SECRET    "remediator-test-secret-abcdef-0123"

/* ---- clock ------------------------------------------------------------------------ */

static int64_t g_now = 1700000000000LL;
static pthread_mutex_t g_clock_mu = PTHREAD_MUTEX_INITIALIZER;

static int64_t test_clock(void *p)
{
    (void)p;
    pthread_mutex_lock(&g_clock_mu);
    int64_t v = g_now;
    pthread_mutex_unlock(&g_clock_mu);
    return v;
}

static void advance(int64_t ms)
{
    pthread_mutex_lock(&g_clock_mu);
    g_now += ms;
    pthread_mutex_unlock(&g_clock_mu);
}

/* ---- the gate action type: runs until the test opens it ------------------------- */

typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open, entered, runs;
} gate;

static gate g_gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};

static int gate_create(void **state, const vigil_config_node *cfg, const vigil_action_context *ctx)
{
    (void)cfg;
    *state = ctx->type_payload;
    return VIGIL_OK;
}

static int gate_execute(void *state, const vigil_action_request *rq, const vigil_action_exec *ex,
                        vigil_action_result *res)
{
    (void)rq;
    (void)ex;
    gate *g = state;
    pthread_mutex_lock(&g->mu);
    g->entered++;
    pthread_cond_broadcast(&g->cv);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    g->runs++;
    pthread_mutex_unlock(&g->mu);
    res->status = VIGIL_ACTION_SUCCEEDED;
    return VIGIL_OK;
}

/* The embedder's action types: the gate, registered once per test process. */
static vigil_action_registry *action_types(void)
{
    static vigil_action_registry *reg;
    if (!reg) {
        vigil_action_type t = {
            .version = VIGIL_ACTION_TYPE_VERSION,
            .name = "gate",
            .payload = &g_gate,
            .create = gate_create,
            .execute = gate_execute,
        };
        ck_assert_int_eq(vigil_action_registry_new(&reg, NULL), VIGIL_OK);
        ck_assert_int_eq(vigil_action_register(reg, &t), VIGIL_OK);
    }
    return reg;
}

static void gate_reset(void)
{
    pthread_mutex_lock(&g_gate.mu);
    g_gate.open = g_gate.entered = g_gate.runs = 0;
    pthread_mutex_unlock(&g_gate.mu);
}

static void gate_wait_entered(int n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 20;
    pthread_mutex_lock(&g_gate.mu);
    while (g_gate.entered < n)
        if (pthread_cond_timedwait(&g_gate.cv, &g_gate.mu, &ts))
            break;
    int e = g_gate.entered;
    pthread_mutex_unlock(&g_gate.mu);
    ck_assert_int_ge(e, n);
}

static void gate_open(void)
{
    pthread_mutex_lock(&g_gate.mu);
    g_gate.open = 1;
    pthread_cond_broadcast(&g_gate.cv);
    pthread_mutex_unlock(&g_gate.mu);
}

/* ---- results ------------------------------------------------------------------------ */

typedef struct waitres {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    vigil_action_result r;
    int64_t seq;
    char mac[VIGIL_AUDIT_MAC_HEX];
} waitres;

static void wr_init(waitres *w)
{
    memset(w, 0, sizeof(*w));
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    vigil_action_result init = VIGIL_ACTION_RESULT_INIT;
    w->r = init;
}

static void wr_free(waitres *w)
{
    vigil_action_result_clear(&w->r);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
}

static void on_result(const vigil_action_result *r, int64_t seq, const char *mac, void *p)
{
    waitres *w = p;
    pthread_mutex_lock(&w->mu);
    ck_assert_int_eq(w->done, 0); /* exactly once */
    vigil_action_result_copy(&w->r, r);
    w->seq = seq;
    snprintf(w->mac, sizeof(w->mac), "%s", mac);
    w->done = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void wr_wait(waitres *w)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 30;
    pthread_mutex_lock(&w->mu);
    while (!w->done)
        if (pthread_cond_timedwait(&w->cv, &w->mu, &ts))
            break;
    int done = w->done;
    pthread_mutex_unlock(&w->mu);
    ck_assert_msg(done, "no result within 30 s");
}

/* Late results, collected. */
#define LATE_MAX 32
static pthread_mutex_t g_late_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_late_cv = PTHREAD_COND_INITIALIZER;
static vigil_action_result g_late[LATE_MAX];
static int64_t g_late_seq[LATE_MAX];
static int g_nlate;

static void on_late(const vigil_action_result *r, int64_t seq, const char *mac, void *p)
{
    (void)p;
    (void)mac;
    pthread_mutex_lock(&g_late_mu);
    if (g_nlate < LATE_MAX) {
        vigil_action_result init = VIGIL_ACTION_RESULT_INIT;
        g_late[g_nlate] = init;
        vigil_action_result_copy(&g_late[g_nlate], r);
        g_late_seq[g_nlate] = seq;
        g_nlate++;
    }
    pthread_cond_broadcast(&g_late_cv);
    pthread_mutex_unlock(&g_late_mu);
}

static void late_reset(void)
{
    pthread_mutex_lock(&g_late_mu);
    for (int i = 0; i < g_nlate; i++)
        vigil_action_result_clear(&g_late[i]);
    g_nlate = 0;
    pthread_mutex_unlock(&g_late_mu);
}

static const vigil_action_result *late_wait(int n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 30;
    pthread_mutex_lock(&g_late_mu);
    while (g_nlate < n)
        if (pthread_cond_timedwait(&g_late_cv, &g_late_mu, &ts))
            break;
    int got = g_nlate;
    pthread_mutex_unlock(&g_late_mu);
    ck_assert_int_ge(got, n);
    return &g_late[n - 1];
}

/* ---- remediator -------------------------------------------------------------------- */

static vigil_remediator_options base_opts(const char *dir)
{
    static char url[8][600];
    static int next;
    char *u = url[next++ % 8];
    snprintf(u, 600, "sqlite://%s/rem.db", dir);
    vigil_remediator_options o = VIGIL_REMEDIATOR_OPTIONS_INIT;
    o.store_url = u;
    o.audit_key = AUDIT_KEY;
    o.audit_key_len = strlen(AUDIT_KEY);
    o.secret = SECRET;
    o.secret_len = strlen(SECRET);
    o.clock = test_clock;
    o.tick_interval_ms = 3600000; /* the tests tick themselves */
    o.base_dir = dir;
    o.action_types = action_types();
    o.late_result = on_late;
    o.logger.min_level = VIGIL_LOG_OFF;
    return o;
}

static vigil_remediator *rem_new(vigil_remediator_options *o, const char *actions_yaml)
{
    vigil_config *cfg = at_load(actions_yaml);
    o->actions = at_actions(cfg);
    vigil_remediator *rem = NULL;
    int rc = vigil_remediator_new(&rem, o);
    ck_assert_msg(rc == VIGIL_OK, "new: %s", vigil_error_last()->message);
    vigil_config_free(cfg);
    o->actions = NULL;
    ck_assert_int_eq(vigil_remediator_start(rem), VIGIL_OK);
    return rem;
}

/* Submits and waits; `out` receives a copy of the result (clear it). */
static void run(vigil_remediator *rem, const char *id, const char *action, const char *target,
                waitres *w)
{
    vigil_action_request rq = at_req(action, target);
    rq.id = id;
    wr_init(w);
    int rc = vigil_remediator_submit_audited(rem, &rq, on_result, w);
    ck_assert_msg(rc == VIGIL_OK, "submit: %s", vigil_error_last()->message);
    wr_wait(w);
}

static void expect(vigil_remediator *rem, const char *id, const char *action, const char *target,
                   vigil_action_status status, const char *reason)
{
    waitres w;
    run(rem, id, action, target, &w);
    ck_assert_msg(w.r.status == status, "%s: status %s, expected %s (reason %s, output %s)", id,
                  vigil_action_status_name(w.r.status), vigil_action_status_name(status),
                  w.r.reason ? w.r.reason : "-", w.r.output ? w.r.output : "-");
    if (reason) {
        ck_assert_ptr_nonnull(w.r.reason);
        ck_assert_str_eq(w.r.reason, reason);
    }
    ck_assert_str_eq(w.r.id, id);
    ck_assert_int_gt(w.seq, 0);
    ck_assert_int_eq((int)strlen(w.mac), 64);
    wr_free(&w);
}

static char *audit_text(vigil_remediator *rem)
{
    vigil_buf b = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil_audit_list_json(vigil_remediator_audit(rem), 0, 1000, &b), VIGIL_OK);
    char *s = strdup(b.ptr);
    vigil_buf_dispose(&b);
    return s;
}

static void assert_chain_ok(vigil_remediator *rem)
{
    vigil_audit_report rep = VIGIL_AUDIT_REPORT_INIT;
    ck_assert_int_eq(vigil_audit_verify(vigil_remediator_audit(rem), &rep), VIGIL_OK);
    ck_assert_msg(rep.ok, "chain broken at %lld: %s", (long long)rep.broken_at, rep.reason);
}

static const char *k_log_actions = "actions:\n"
                                   "  - {name: note, type: log}\n"
                                   "  - {name: other, type: log}\n"
                                   "  - {name: hold, type: gate}\n"
                                   "  - {name: ask, type: log, approval: {required: true, "
                                   "expires: 10m}}\n"
                                   "  - {name: shadow, type: log, dry_run: true}\n"
                                   "  - {name: only_demo, type: log, targets: \"^demo$\"}\n";

/* ---- guards ------------------------------------------------------------------------- */

START_TEST(not_allowed_refused_and_audited)
{
    const char *dir = vt_tmpdir();
    vigil_remediator_options o = base_opts(dir);
    vigil_remediator *rem = rem_new(&o, k_log_actions);
    expect(rem, "na-1", "only_demo", "db; rm -rf /", VIGIL_ACTION_REFUSED, "not_allowed");
    expect(rem, "na-2", "no_such_action", "demo", VIGIL_ACTION_REFUSED, "not_allowed");
    expect(rem, "na-3", "only_demo", "demo", VIGIL_ACTION_SUCCEEDED, NULL);
    char *a = audit_text(rem);
    ck_assert_ptr_nonnull(strstr(a, "\"guard\":\"not_allowed\""));
    ck_assert_ptr_nonnull(strstr(a, "\"kind\":\"request\""));
    ck_assert_ptr_nonnull(strstr(a, "\"kind\":\"execute\""));
    ck_assert_ptr_nonnull(strstr(a, "\"kind\":\"result\""));
    free(a);
    assert_chain_ok(rem);
    vigil_remediator_free(rem);
}
END_TEST

/* A store type of the embedder: the SQLite type under the scheme "wrapped",
 * counting its opens in its payload. */
static int wrapped_open(void **out, const char *url, const char *rest,
                        const vigil_store_options *opts, void *payload)
{
    (*(int *)payload)++;
    return vigil_store_sqlite_type()->open(out, url, rest, opts, NULL);
}

static void count_free(void *payload)
{
    (*(int *)payload) += 100;
}

START_TEST(embedder_types_reach_the_remediator)
{
    const char *dir = vt_tmpdir();
    int opens = 0;
    vigil_store_registry *stores = NULL;
    ck_assert_int_eq(vigil_store_registry_new(&stores), VIGIL_OK);
    vigil_store_type st = *vigil_store_sqlite_type();
    st.name = "wrapped";
    st.payload = &opens;
    st.payload_free = count_free;
    st.open = wrapped_open;
    ck_assert_int_eq(vigil_store_register(stores, &st), VIGIL_OK);

    vigil_remediator_options o = base_opts(dir);
    char url[600];
    snprintf(url, sizeof(url), "wrapped://%s/rem.db", dir);
    o.store_url = url;
    o.store_types = stores;
    /* `gate` comes from the test's registry (o.action_types), `log` is built in */
    vigil_remediator *rem = rem_new(&o, k_log_actions);
    ck_assert_int_eq(opens, 1);
    ck_assert_str_eq(vigil_store_scheme(vigil_remediator_store(rem)), "wrapped");
    expect(rem, "et-1", "note", "demo", VIGIL_ACTION_SUCCEEDED, NULL);
    gate_reset();
    pthread_mutex_lock(&g_gate.mu);
    g_gate.open = 1;
    pthread_mutex_unlock(&g_gate.mu);
    expect(rem, "et-2", "hold", "demo", VIGIL_ACTION_SUCCEEDED, NULL);
    ck_assert_int_eq(g_gate.runs, 1);
    assert_chain_ok(rem);
    vigil_remediator_free(rem);
    /* the registries keep their payloads: freed with them, not with the remediator */
    ck_assert_int_eq(opens, 1);
    vigil_store_registry_free(stores);
    ck_assert_int_eq(opens, 101);

    /* without the embedder's action types, `gate` is unknown */
    o = base_opts(dir);
    o.action_types = NULL;
    vigil_config *cfg = at_load(k_log_actions);
    o.actions = at_actions(cfg);
    ck_assert_int_eq(vigil_remediator_new(&rem, &o), VIGIL_EUNSUPPORTED);
    vt_assert_error(VIGIL_EUNSUPPORTED,
                    "actions[2].type: unknown action type \"gate\" (known: "
                    "exec, process, systemd, signal, webhook, log, restore_file)");
    vigil_config_free(cfg);
}
END_TEST

START_TEST(dry_run_global_action_request)
{
    const char *dir = vt_tmpdir();
    vigil_remediator_options o = base_opts(dir);
    vigil_remediator *rem = rem_new(&o, k_log_actions);
    expect(rem, "dr-1", "shadow", "t1", VIGIL_ACTION_DRY_RUN, "dry_run");
    waitres w;
    vigil_action_request rq = at_req("note", "t2");
    rq.id = "dr-2";
    rq.dry_run = 1;
    wr_init(&w);
    ck_assert_int_eq(vigil_remediator_submit_audited(rem, &rq, on_result, &w), VIGIL_OK);
    wr_wait(&w);
    ck_assert_int_eq(w.r.status, VIGIL_ACTION_DRY_RUN);
    ck_assert_ptr_nonnull(strstr(w.r.output, "dry run: note (log)"));
    wr_free(&w);
    vigil_remediator_free(rem);

    o = base_opts(dir);
    o.dry_run = 1;
    rem = rem_new(&o, k_log_actions);
    expect(rem, "dr-3", "note", "t3", VIGIL_ACTION_DRY_RUN, "dry_run");
    /* the allowlist comes first */
    expect(rem, "dr-4", "only_demo", "x", VIGIL_ACTION_REFUSED, "not_allowed");
    char *a = audit_text(rem);
    ck_assert_ptr_nonnull(strstr(a, "\"guard\":\"dry_run\""));
    ck_assert_ptr_null(strstr(a, "\"kind\":\"execute\""));
    free(a);
    vigil_remediator_free(rem);
}
END_TEST

START_TEST(cooldown_per_action_and_target)
{
    const char *dir = vt_tmpdir();
    vigil_remediator_options o = base_opts(dir);
    o.cooldown_ms = 60000;
    o.max_attempts = (unsigned int)VIGIL_REMEDIATOR_DISABLED;
    vigil_remediator *rem = rem_new(&o, k_log_actions);
    expect(rem, "cd-1", "note", "web1", VIGIL_ACTION_SUCCEEDED, NULL);
    advance(30000);
    expect(rem, "cd-2", "note", "web1", VIGIL_ACTION_REFUSED, "cooldown");
    expect(rem, "cd-3", "other", "web1", VIGIL_ACTION_SUCCEEDED, NULL); /* other action */
    expect(rem, "cd-4", "note", "web2", VIGIL_ACTION_SUCCEEDED, NULL);  /* other target */
    vigil_remediator_free(rem);
    /* a restart keeps the cooldown */
    rem = rem_new(&o, k_log_actions);
    expect(rem, "cd-5", "note", "web1", VIGIL_ACTION_REFUSED, "cooldown");
    advance(30001);
    expect(rem, "cd-6", "note", "web1", VIGIL_ACTION_SUCCEEDED, NULL);
    char *a = audit_text(rem);
    ck_assert_ptr_nonnull(strstr(a, "cooldown: note ran on this target 30s ago (cooldown 1m)"));
    free(a);
    assert_chain_ok(rem);
    vigil_remediator_free(rem);
}
END_TEST

/* A refusal by a guard that ends by itself says when (retry_after_ms). */
START_TEST(refusals_carry_retry_after)
{
    const char *dir = vt_tmpdir();
    vigil_remediator_options o = base_opts(dir);
    o.cooldown_ms = 10000;
    o.max_attempts = 2;
    o.window_ms = 600000;
    o.reset_after_ms = 60000;
    o.rate_per_s = VIGIL_REMEDIATOR_DISABLED;
    vigil_remediator *rem = rem_new(&o, k_log_actions);
    waitres w;
    run(rem, "ra-1", "note", "web1", &w);
    ck_assert_int_eq(w.r.status, VIGIL_ACTION_SUCCEEDED);
    ck_assert_int_eq(w.r.retry_after_ms, 0);
    wr_free(&w);
    advance(3000);
    run(rem, "ra-2", "note", "web1", &w);
    ck_assert_int_eq(w.r.status, VIGIL_ACTION_REFUSED);
    ck_assert_str_eq(w.r.reason, "cooldown");
    ck_assert_uint_eq(w.r.version, VIGIL_ACTION_RESULT_VERSION);
    ck_assert_int_eq(w.r.retry_after_ms, 7000);
    wr_free(&w);
    advance(7000);
    expect(rem, "ra-3", "note", "web1", VIGIL_ACTION_SUCCEEDED, NULL);
    advance(10000);
    run(rem, "ra-4", "note", "web1", &w);
    ck_assert_int_eq(w.r.status, VIGIL_ACTION_REFUSED);
    ck_assert_str_eq(w.r.reason, "quarantined");
    ck_assert_int_eq(w.r.retry_after_ms, 60000);
    ck_assert_str_eq(w.r.output, "quarantined: 2 attempts within 10m; released after 1m without "
                                 "requests, or now by an administrator: POST "
                                 "/v1/targets/web1/release on the hub (vigil release) or the "
                                 "remediator (scope admin)");
    wr_free(&w);
    /* the answer replayed from the ledger has no retry_after_ms */
    run(rem, "ra-2", "note", "web1", &w);
    ck_assert_int_eq(w.r.status, VIGIL_ACTION_REFUSED);
    ck_assert_int_eq(w.r.retry_after_ms, 0);
    wr_free(&w);
    vigil_remediator_free(rem);
}
END_TEST

START_TEST(zero_options_are_the_defaults_and_disabled_turns_off)
{
    const char *dir = vt_tmpdir();
    vigil_remediator_options o = base_opts(dir); /* guards all 0: the defaults */
    vigil_remediator *rem = rem_new(&o, k_log_actions);
    expect(rem, "zd-1", "note", "web1", VIGIL_ACTION_SUCCEEDED, NULL);
    advance(59000);
    expect(rem, "zd-2", "note", "web1", VIGIL_ACTION_REFUSED, "cooldown"); /* 60 s */
    advance(1001);
    expect(rem, "zd-3", "note", "web1", VIGIL_ACTION_SUCCEEDED, NULL);
    char *a = audit_text(rem);
    ck_assert_ptr_nonnull(strstr(a, "(cooldown 1m)"));
    free(a);
    vigil_remediator_free(rem);

    dir = vt_tmpdir();
    o = base_opts(dir);
    o.cooldown_ms = VIGIL_REMEDIATOR_DISABLED;
    o.max_attempts = (unsigned int)VIGIL_REMEDIATOR_DISABLED;
    o.rate_per_s = VIGIL_REMEDIATOR_DISABLED;
    rem = rem_new(&o, k_log_actions);
    for (int i = 0; i < 8; i++) { /* more than the default budget of 3 */
        char id[16];
        snprintf(id, sizeof(id), "zo-%d", i);
        expect(rem, id, "note", "web1", VIGIL_ACTION_SUCCEEDED, NULL);
    }
    vigil_remediator_free(rem);
}
END_TEST

START_TEST(budget_quarantine_reset_and_release)
{
    const char *dir = vt_tmpdir();
    vigil_remediator_options o = base_opts(dir);
    o.cooldown_ms = VIGIL_REMEDIATOR_DISABLED;
    o.max_attempts = 2;
    o.window_ms = 600000;
    o.reset_after_ms = 600000;
    o.rate_per_s = VIGIL_REMEDIATOR_DISABLED;
    vigil_remediator *rem = rem_new(&o, k_log_actions);
    expect(rem, "bq-1", "note", "db", VIGIL_ACTION_SUCCEEDED, NULL);
    expect(rem, "bq-2", "other", "db", VIGIL_ACTION_SUCCEEDED, NULL);
    expect(rem, "bq-3", "note", "db", VIGIL_ACTION_REFUSED, "quarantined");
    expect(rem, "bq-4", "note", "cache", VIGIL_ACTION_SUCCEEDED, NULL); /* per target */
    advance(300000);
    expect(rem, "bq-5", "note", "db", VIGIL_ACTION_REFUSED, "quarantined");
    advance(540000); /* 9 min after the last request: still quarantined */
    expect(rem, "bq-6", "note", "db", VIGIL_ACTION_REFUSED, "quarantined");
    vigil_remediator_free(rem);
    rem = rem_new(&o, k_log_actions); /* survives a restart */
    advance(540000);
    expect(rem, "bq-7", "note", "db", VIGIL_ACTION_REFUSED, "quarantined");
    advance(600000); /* reset_after without requests */
    expect(rem, "bq-8", "note", "db", VIGIL_ACTION_SUCCEEDED, NULL);
    expect(rem, "bq-9", "note", "db", VIGIL_ACTION_SUCCEEDED, NULL);
    expect(rem, "bq-10", "note", "db", VIGIL_ACTION_REFUSED, "quarantined");
    int released = -1;
    ck_assert_int_eq(vigil_remediator_release(rem, "db", "admin", &released), VIGIL_OK);
    ck_assert_int_eq(released, 1);
    ck_assert_int_eq(vigil_remediator_release(rem, "db", "admin", &released), VIGIL_OK);
    ck_assert_int_eq(released, 0);
    expect(rem, "bq-11", "note", "db", VIGIL_ACTION_SUCCEEDED, NULL);
    ck_assert_int_eq(vigil_remediator_release(rem, NULL, "admin", &released), VIGIL_EINVAL);
    char *a = audit_text(rem);
    ck_assert_ptr_nonnull(strstr(a, "\"kind\":\"release\""));
    free(a);
    assert_chain_ok(rem);
    vigil_remediator_free(rem);
}
END_TEST

START_TEST(rate_limit_token_bucket)
{
    const char *dir = vt_tmpdir();
    vigil_remediator_options o = base_opts(dir);
    o.cooldown_ms = VIGIL_REMEDIATOR_DISABLED;
    o.max_attempts = (unsigned int)VIGIL_REMEDIATOR_DISABLED;
    ck_assert_int_eq(vigil_scalar_parse_rate(&o.rate_per_s, "2/min"), VIGIL_OK);
    vigil_remediator *rem = rem_new(&o, k_log_actions);
    expect(rem, "rl-1", "note", "a", VIGIL_ACTION_SUCCEEDED, NULL);
    expect(rem, "rl-2", "note", "b", VIGIL_ACTION_SUCCEEDED, NULL);
    expect(rem, "rl-3", "note", "c", VIGIL_ACTION_REFUSED, "rate_limited");
    advance(29000);
    expect(rem, "rl-4", "note", "c", VIGIL_ACTION_REFUSED, "rate_limited");
    advance(2000);
    expect(rem, "rl-5", "note", "c", VIGIL_ACTION_SUCCEEDED, NULL);
    expect(rem, "rl-6", "note", "d", VIGIL_ACTION_REFUSED, "rate_limited");
    vigil_remediator_free(rem);
}
END_TEST

START_TEST(busy_and_concurrency)
{
    const char *dir = vt_tmpdir();
    gate_reset();
    vigil_remediator_options o = base_opts(dir);
    o.cooldown_ms = VIGIL_REMEDIATOR_DISABLED;
    o.max_attempts = (unsigned int)VIGIL_REMEDIATOR_DISABLED;
    o.rate_per_s = VIGIL_REMEDIATOR_DISABLED;
    o.max_concurrent = 1;
    vigil_remediator *rem = rem_new(&o, k_log_actions);
    waitres held;
    vigil_action_request rq = at_req("hold", "t1");
    rq.id = "bc-1";
    wr_init(&held);
    ck_assert_int_eq(vigil_remediator_submit_audited(rem, &rq, on_result, &held), VIGIL_OK);
    gate_wait_entered(1);
    expect(rem, "bc-2", "note", "t1", VIGIL_ACTION_REFUSED, "busy");
    expect(rem, "bc-3", "note", "t2", VIGIL_ACTION_REFUSED, "concurrency");
    gate_open();
    wr_wait(&held);
    ck_assert_int_eq(held.r.status, VIGIL_ACTION_SUCCEEDED);
    wr_free(&held);
    expect(rem, "bc-4", "note", "t1", VIGIL_ACTION_SUCCEEDED, NULL);
    vigil_remediator_free(rem);
}
END_TEST

START_TEST(approval_approve_deny_expire)
{
    const char *dir = vt_tmpdir();
    late_reset();
    vigil_remediator_options o = base_opts(dir);
    o.cooldown_ms = VIGIL_REMEDIATOR_DISABLED;
    o.max_attempts = (unsigned int)VIGIL_REMEDIATOR_DISABLED;
    vigil_remediator *rem = rem_new(&o, k_log_actions);
    expect(rem, "ap-1", "ask", "x", VIGIL_ACTION_PENDING_APPROVAL, NULL);
    expect(rem, "ap-2", "ask", "y", VIGIL_ACTION_PENDING_APPROVAL, NULL);
    expect(rem, "ap-3", "ask", "z", VIGIL_ACTION_PENDING_APPROVAL, NULL);
    /* a redelivery of a pending id is still pending */
    expect(rem, "ap-1", "ask", "x", VIGIL_ACTION_PENDING_APPROVAL, NULL);

    ck_assert_int_eq(vigil_remediator_approve(rem, "nope", "ops"), VIGIL_ENOTFOUND);
    vt_assert_error(VIGIL_ENOTFOUND, "no request \"nope\" is waiting for approval");
    ck_assert_int_eq(vigil_remediator_approve(rem, "ap-1", "ops"), VIGIL_OK);
    const vigil_action_result *r = late_wait(1);
    ck_assert_str_eq(r->id, "ap-1");
    ck_assert_int_eq(r->status, VIGIL_ACTION_SUCCEEDED);
    ck_assert_int_eq(vigil_remediator_approve(rem, "ap-1", "ops"), VIGIL_ENOTFOUND);
    /* the final result is recorded */
    expect(rem, "ap-1", "ask", "x", VIGIL_ACTION_SUCCEEDED, NULL);

    ck_assert_int_eq(vigil_remediator_deny(rem, "ap-2", "ops"), VIGIL_OK);
    r = late_wait(2);
    ck_assert_str_eq(r->id, "ap-2");
    ck_assert_int_eq(r->status, VIGIL_ACTION_REFUSED);
    ck_assert_str_eq(r->reason, "approval_denied");
    expect(rem, "ap-2", "ask", "y", VIGIL_ACTION_REFUSED, "approval_denied");

    /* pending approvals survive a restart */
    vigil_remediator_free(rem);
    rem = rem_new(&o, k_log_actions);
    advance(9 * 60000);
    ck_assert_int_eq(vigil_remediator_tick(rem), VIGIL_OK);
    expect(rem, "ap-3", "ask", "z", VIGIL_ACTION_PENDING_APPROVAL, NULL);
    advance(60000);
    ck_assert_int_eq(vigil_remediator_tick(rem), VIGIL_OK);
    r = late_wait(3);
    ck_assert_str_eq(r->id, "ap-3");
    ck_assert_int_eq(r->status, VIGIL_ACTION_REFUSED);
    ck_assert_str_eq(r->reason, "approval_expired");
    expect(rem, "ap-3", "ask", "z", VIGIL_ACTION_REFUSED, "approval_expired");
    char *a = audit_text(rem);
    ck_assert_ptr_nonnull(strstr(a, "\"decision\":\"approved\""));
    ck_assert_ptr_nonnull(strstr(a, "\"decision\":\"denied\""));
    ck_assert_ptr_nonnull(strstr(a, "\"decision\":\"expired\""));
    free(a);
    assert_chain_ok(rem);
    vigil_remediator_free(rem);
    late_reset();
}
END_TEST

/* ---- exactly once -------------------------------------------------------------------- */

static int count_runs(const char *dir)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/marker.argv", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "once-", 5) == 0)
            n++;
    fclose(f);
    return n;
}

static const char *marker_actions(const char *dir)
{
    static char yaml[2048];
    char marker[1024];
    snprintf(marker, sizeof(marker), "%s/marker", dir);
    at_copy_helper("record_argv", marker);
    snprintf(yaml, sizeof(yaml),
             "actions:\n"
             "  - name: mark\n"
             "    type: exec\n"
             "    argv: [\"%s\", \"{{target}}\"]\n"
             "    targets: \"^once-[0-9]+$\"\n",
             marker);
    return yaml;
}

typedef struct sub_arg {
    vigil_remediator *rem;
    waitres *w;
    int n;
} sub_arg;

static void *submit_thread(void *p)
{
    sub_arg *a = p;
    for (int i = 0; i < a->n; i++) {
        vigil_action_request rq = at_req("mark", "once-1");
        rq.id = "eo-1";
        ck_assert_int_eq(vigil_remediator_submit_audited(a->rem, &rq, on_result, &a->w[i]),
                         VIGIL_OK);
    }
    return NULL;
}

START_TEST(exactly_once_redeliveries_and_restart)
{
    const char *dir = vt_tmpdir();
    vigil_remediator_options o = base_opts(dir);
    const char *yaml = marker_actions(dir);
    vigil_remediator *rem = rem_new(&o, yaml);
    waitres w[6];
    for (int i = 0; i < 6; i++)
        wr_init(&w[i]);
    /* five deliveries: three from this thread and two from another, at once */
    sub_arg arg = {rem, &w[3], 2};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, submit_thread, &arg), 0);
    for (int i = 0; i < 3; i++) {
        vigil_action_request rq = at_req("mark", "once-1");
        rq.id = "eo-1";
        ck_assert_int_eq(vigil_remediator_submit_audited(rem, &rq, on_result, &w[i]), VIGIL_OK);
    }
    pthread_join(th, NULL);
    for (int i = 0; i < 5; i++) {
        wr_wait(&w[i]);
        ck_assert_int_eq(w[i].r.status, VIGIL_ACTION_SUCCEEDED);
        ck_assert_str_eq(w[i].r.id, "eo-1");
        ck_assert_int_eq(w[i].seq, w[0].seq);
        ck_assert_str_eq(w[i].mac, w[0].mac);
        ck_assert_str_eq(w[i].r.output, w[0].r.output);
    }
    ck_assert_ptr_nonnull(strstr(w[0].r.output, "recorded 2 args"));
    ck_assert_int_eq(count_runs(dir), 1);
    vigil_remediator_free(rem);

    /* once more after a restart: a new object on the same store */
    rem = rem_new(&o, yaml);
    vigil_action_request rq = at_req("mark", "once-1");
    rq.id = "eo-1";
    ck_assert_int_eq(vigil_remediator_submit_audited(rem, &rq, on_result, &w[5]), VIGIL_OK);
    wr_wait(&w[5]);
    ck_assert_int_eq(w[5].r.status, VIGIL_ACTION_SUCCEEDED);
    ck_assert_int_eq(w[5].seq, w[0].seq);
    ck_assert_str_eq(w[5].mac, w[0].mac);
    ck_assert_str_eq(w[5].r.output, w[0].r.output);
    ck_assert_int_eq(count_runs(dir), 1);
    /* the result's checkpoint verifies */
    vigil_audit_report rep = VIGIL_AUDIT_REPORT_INIT;
    ck_assert_int_eq(
        vigil_audit_verify_checkpoint(vigil_remediator_audit(rem), w[0].seq, w[0].mac, &rep),
        VIGIL_OK);
    ck_assert(rep.ok);
    for (int i = 0; i < 6; i++)
        wr_free(&w[i]);
    /* a different id runs */
    expect(rem, "eo-2", "mark", "once-2", VIGIL_ACTION_SUCCEEDED, NULL);
    ck_assert_int_eq(count_runs(dir), 2);
    vigil_remediator_free(rem);
}
END_TEST

START_TEST(running_at_crash_is_interrupted_not_rerun)
{
    const char *dir = vt_tmpdir();
    vigil_remediator_options o = base_opts(dir);
    const char *yaml = marker_actions(dir);
    /* a ledger row left "running" by a process that died */
    vigil_store *st = NULL;
    ck_assert_int_eq(vigil_store_open(&st, o.store_url, NULL), VIGIL_OK);
    vigil_store_action a;
    memset(&a, 0, sizeof(a));
    a.id = "crash-1";
    a.requested_ms = g_now;
    a.action = "mark";
    a.target = "once-9";
    a.status = "running";
    a.duration_ms = -1;
    int created = 0;
    ck_assert_int_eq(vigil_store_action_put(st, &a, &created), VIGIL_OK);
    ck_assert_int_eq(created, 1);
    vigil_store_close(st);

    late_reset();
    vigil_remediator *rem = rem_new(&o, yaml);
    const vigil_action_result *r = late_wait(1);
    ck_assert_str_eq(r->id, "crash-1");
    ck_assert_str_eq(r->reason, "interrupted");
    expect(rem, "crash-1", "mark", "once-9", VIGIL_ACTION_FAILED, "interrupted");
    ck_assert_int_eq(count_runs(dir), 0);
    assert_chain_ok(rem);
    vigil_remediator_free(rem);
    late_reset();
}
END_TEST

/* ---- submit, dispatcher, bad input --------------------------------------------------- */

static void plain_done(const vigil_action_result *r, void *p)
{
    on_result(r, 0, "", p);
}

START_TEST(dispatcher_and_bad_submits)
{
    const char *dir = vt_tmpdir();
    vigil_remediator_options o = base_opts(dir);
    vigil_remediator *rem = NULL;
    ck_assert_int_eq(vigil_remediator_new(&rem, &o), VIGIL_OK);
    vigil_action_request rq = at_req("note", "x");
    waitres w;
    wr_init(&w);
    /* not started */
    ck_assert_int_eq(vigil_remediator_submit(rem, &rq, plain_done, &w), VIGIL_ECLOSED);
    ck_assert_int_eq(vigil_remediator_start(rem), VIGIL_OK);
    ck_assert_int_eq(vigil_remediator_start(rem), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_remediator_submit(rem, &rq, NULL, &w), VIGIL_EINVAL);
    rq.id = "bad\nid";
    ck_assert_int_eq(vigil_remediator_submit(rem, &rq, plain_done, &w), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "id: expected 1 to 128 bytes");
    rq.id = NULL; /* an id is minted */
    vigil_action_dispatcher d;
    ck_assert_int_eq(vigil_remediator_dispatcher(rem, &d), VIGIL_OK);
    ck_assert_int_eq(d.submit(d.self, &rq, plain_done, &w), VIGIL_OK);
    wr_wait(&w);
    /* no actions configured: refused by the allowlist */
    ck_assert_int_eq(w.r.status, VIGIL_ACTION_REFUSED);
    ck_assert_str_eq(w.r.reason, "not_allowed");
    ck_assert_ptr_nonnull(strstr(w.r.id, "rem-"));
    wr_free(&w);
    vigil_remediator_stop(rem);
    ck_assert_int_eq(vigil_remediator_submit(rem, &rq, plain_done, &w), VIGIL_ECLOSED);
    ck_assert_int_eq(vigil_remediator_start(rem), VIGIL_ECLOSED);
    vigil_remediator_free(rem);
    vigil_remediator_free(NULL);

    ck_assert_int_eq(vigil_remediator_new(NULL, &o), VIGIL_EINVAL);
    o.version = 99;
    ck_assert_int_eq(vigil_remediator_new(&rem, &o), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "remediator options: version 99 is not supported (this "
                                    "library reads version 2)");
    o = base_opts(dir);
    o.store_url = "sqlite:///nonexistent-dir-x/a.db?synchronous=normal";
    ck_assert_int_eq(vigil_remediator_new(&rem, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "synchronous=full");
    o = base_opts(dir);
    o.secret = NULL;
    o.secret_env = "VIGIL_TEST_UNSET_SECRET_VAR";
    unsetenv("VIGIL_TEST_UNSET_SECRET_VAR");
    ck_assert_int_eq(vigil_remediator_new(&rem, &o), VIGIL_EENV);
    vt_assert_error(VIGIL_EENV, "VIGIL_TEST_UNSET_SECRET_VAR");
    o = base_opts(dir);
    o.audit_key_len = 4;
    ck_assert_int_eq(vigil_remediator_new(&rem, &o), VIGIL_ELIMIT);
    vigil_remediator_options oi;
    ck_assert_int_eq(vigil_remediator_options_init(&oi, VIGIL_REMEDIATOR_OPTIONS_VERSION),
                     VIGIL_OK);
    ck_assert_int_eq(oi.cooldown_ms, 0); /* all zero: the defaults */
    ck_assert_int_eq(oi.max_concurrent, 0);
    ck_assert_int_eq(vigil_remediator_options_init(&oi, 7), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "remediator options: version 7 is not supported");
}
END_TEST

START_TEST(audit_key_file_beside_the_database)
{
    const char *dir = vt_tmpdir();
    vigil_remediator_options o = base_opts(dir);
    o.audit_key = NULL;
    o.audit_key_len = 0;
    vigil_remediator *rem = rem_new(&o, k_log_actions);
    expect(rem, "kf-1", "note", "x", VIGIL_ACTION_SUCCEEDED, NULL);
    vigil_remediator_free(rem);
    char path[1024];
    snprintf(path, sizeof(path), "%s/rem.db.key", dir);
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0600);
    rem = rem_new(&o, k_log_actions); /* same key: the chain still verifies */
    assert_chain_ok(rem);
    vigil_remediator_free(rem);
}
END_TEST

/* ---- remediator.yaml ------------------------------------------------------------------- */

START_TEST(shipped_config_loads)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/configs/remediator.yaml", vt_srcdir());
    setenv("VIGIL_REMEDIATOR_SECRET", SECRET, 1);
    setenv("VIGIL_ADMIN_TOKEN", "shipped-admin-token-0000000", 1);
    setenv("VIGIL_REMEDIATOR_HUB_TOKEN", "shipped-hub-token-00000000", 1);
    vigil_remediator_config *c = NULL;
    int rc = vigil_remediator_config_load(&c, path, NULL);
    ck_assert_msg(rc == VIGIL_OK, "%s", vigil_error_last()->message);
    const vigil_remediator_options *o = vigil_remediator_config_options(c);
    ck_assert_str_eq(o->store_url, "sqlite://./var/remediator.db");
    ck_assert_str_eq(o->secret_env, "VIGIL_REMEDIATOR_SECRET");
    ck_assert_int_eq(o->cooldown_ms, VIGIL_REMEDIATOR_DISABLED); /* cooldown: 0s (issue 13) */
    ck_assert_int_eq(o->max_attempts, 10);
    ck_assert_int_eq(o->reset_after_ms, 60000);
    ck_assert_int_eq(o->max_concurrent, 4);
    ck_assert(o->rate_per_s > 0.49 && o->rate_per_s < 0.51);
    ck_assert_ptr_null(o->audit_key_env);
    ck_assert_ptr_nonnull(o->actions);
    ck_assert_str_eq(vigil_remediator_config_httpd(c)->listen, "127.0.0.1:7601");
    ck_assert_int_eq(vigil_remediator_config_daemon(c)->drain_timeout_ms, 10000);
    ck_assert_int_eq(vigil_remediator_config_api(c)->ntokens, 1);
    ck_assert_str_eq(o->hub_url, "http://127.0.0.1:7600");
    ck_assert_str_eq(o->hub_token_env, "VIGIL_REMEDIATOR_HUB_TOKEN");
    vigil_remediator_config_free(c);

    unsetenv("VIGIL_REMEDIATOR_SECRET");
    ck_assert_int_eq(vigil_remediator_config_load(&c, path, NULL), VIGIL_EENV);
    vt_assert_error(VIGIL_EENV, "remediator.yaml:39:13: secret_env: environment variable "
                                "VIGIL_REMEDIATOR_SECRET");
    setenv("VIGIL_REMEDIATOR_SECRET", SECRET, 1);
}
END_TEST

static void bad_config(const char *yaml, int code, const char *needle)
{
    vigil_remediator_config *c = NULL;
    ck_assert_int_eq(vigil_remediator_config_load_string(&c, yaml, strlen(yaml), "r.yaml", NULL),
                     code);
    vt_assert_error(code, needle);
    ck_assert_ptr_null(c);
}

/* remediator.yaml naming an embedder's action type and store scheme: they
 * resolve in the loader options' registries, which the loaded options carry
 * on; names found nowhere fail where they are written. */
START_TEST(config_names_embedder_types)
{
    setenv("VIGIL_REMEDIATOR_SECRET", SECRET, 1);
    int opens = 0;
    vigil_store_registry *stores = NULL;
    ck_assert_int_eq(vigil_store_registry_new(&stores), VIGIL_OK);
    vigil_store_type st = *vigil_store_sqlite_type();
    st.name = "wrapped";
    st.payload = &opens;
    st.payload_free = count_free;
    st.open = wrapped_open;
    ck_assert_int_eq(vigil_store_register(stores, &st), VIGIL_OK);
    static const char yaml[] = "audit: wrapped://./audit.db\n"
                               "actions:\n"
                               "  - {name: note, type: log}\n"
                               "  - {name: hold, type: gate}\n";
    vigil_config_options co = VIGIL_CONFIG_OPTIONS_INIT;
    vigil_remediator_config *c = NULL;

    /* the built-in types only */
    ck_assert_int_eq(vigil_remediator_config_load_string(&c, yaml, strlen(yaml), "r.yaml", &co),
                     VIGIL_EUNSUPPORTED);
    ck_assert_str_eq(vigil_error_last()->message,
                     "r.yaml:1:8: audit: expected sqlite://PATH or postgresql://HOST/DATABASE (the "
                     "store backends built in)");
    co.store_types = stores;
    ck_assert_int_eq(vigil_remediator_config_load_string(&c, yaml, strlen(yaml), "r.yaml", &co),
                     VIGIL_EUNSUPPORTED);
    ck_assert_str_eq(vigil_error_last()->message,
                     "r.yaml:4:24: actions[1].type: unknown action type \"gate\" (known: exec, "
                     "process, systemd, signal, webhook, log, restore_file)");
    co.action_types = action_types();
    ck_assert_msg(vigil_remediator_config_load_string(&c, yaml, strlen(yaml), "r.yaml", &co) ==
                      VIGIL_OK,
                  "%s", vigil_error_last()->message);
    const vigil_remediator_options *o = vigil_remediator_config_options(c);
    ck_assert_ptr_eq(o->store_types, stores);
    ck_assert_ptr_eq(o->action_types, action_types());
    ck_assert_str_eq(o->store_url, "wrapped://./audit.db");
    vigil_remediator_config_free(c);

    /* with the registries, an unknown name still fails, located */
    static const char bad_type[] = "actions:\n  - {name: hold, type: gatee}\n";
    ck_assert_int_eq(
        vigil_remediator_config_load_string(&c, bad_type, strlen(bad_type), "r.yaml", &co),
        VIGIL_EUNSUPPORTED);
    ck_assert_str_eq(vigil_error_last()->message,
                     "r.yaml:2:24: actions[0].type: unknown action type \"gatee\" (known: exec, "
                     "process, systemd, signal, webhook, log, restore_file, gate)");
    static const char bad_scheme[] = "audit: nope://x\n";
    ck_assert_int_eq(
        vigil_remediator_config_load_string(&c, bad_scheme, strlen(bad_scheme), "r.yaml", &co),
        VIGIL_EUNSUPPORTED);
    ck_assert_str_eq(vigil_error_last()->message,
                     "r.yaml:1:8: audit: unsupported URL scheme \"nope\" (known: sqlite, "
                     "postgresql, postgres, wrapped)");
    ck_assert_ptr_null(c);
    ck_assert_int_eq(opens, 0); /* loading opens nothing */
    vigil_store_registry_free(stores);
}
END_TEST

START_TEST(bad_configs_are_located)
{
    setenv("VIGIL_REMEDIATOR_SECRET", SECRET, 1);
    bad_config("listne: 1\n", VIGIL_EUNKNOWNKEY, "r.yaml:1:1: listne: unknown key");
    bad_config("guards:\n  cooldown: soon\n", VIGIL_EVALUE, "r.yaml:2:13: guards.cooldown");
    bad_config("guards: {max_concurrent: 0}\n", VIGIL_ERANGE,
               "guards.max_concurrent: expected an integer from 1 to 4096");
    bad_config("guards: {rate_limit: fast}\n", VIGIL_EVALUE, "r.yaml:1:22: guards.rate_limit");
    bad_config("guards: {typo: 1}\n", VIGIL_EUNKNOWNKEY, "guards.typo: unknown key");
    bad_config("audit: mysql://x\n", VIGIL_EUNSUPPORTED, "r.yaml:1:8: audit: expected sqlite");
    bad_config("audit: sqlite://./x.db?synchronous=normal\n", VIGIL_EVALUE, "synchronous=full");
    bad_config("hub: {token_env: X}\n", VIGIL_EMISSING, "missing required key \"url\"");
    bad_config("hub: {url: \"https://h\", key: /k.pem}\n", VIGIL_EVALUE,
               "set both cert and key, or neither");
    {
        setenv("VIGIL_TEST_HUBTOK", "hub-token-0123456789abcdef", 1);
        static const char y[] =
            "hub: {url: \"https://h\", token_env: VIGIL_TEST_HUBTOK, ca_file: "
            "/etc/vigil/ca.pem, cert: /etc/vigil/rem.pem, key: /etc/vigil/rem.key}\n";
        vigil_remediator_config *c = NULL;
        ck_assert_msg(vigil_remediator_config_load_string(&c, y, strlen(y), "r.yaml", NULL) ==
                          VIGIL_OK,
                      "%s", vigil_error_last()->message);
        const vigil_remediator_options *ro = vigil_remediator_config_options(c);
        ck_assert_str_eq(ro->hub_ca_file, "/etc/vigil/ca.pem");
        ck_assert_str_eq(ro->hub_cert, "/etc/vigil/rem.pem");
        ck_assert_str_eq(ro->hub_key, "/etc/vigil/rem.key");
        vigil_remediator_config_free(c);
    }
    bad_config("hub: {url: ftp://x}\n", VIGIL_EUNSUPPORTED, "hub.url: expected an http://");
    bad_config("hub: {url: \"http://h\", token_env: VIGIL_TEST_NOT_SET_TOKEN}\n", VIGIL_EENV,
               "hub.token_env: environment variable VIGIL_TEST_NOT_SET_TOKEN is not set");
    bad_config("actions:\n  - {name: a, type: exec, argv: [\"rel/prog\"], bogus: 1}\n",
               VIGIL_EUNKNOWNKEY, "r.yaml:2:");
    bad_config("actions:\n  - {name: a, type: nosuch}\n", VIGIL_EUNSUPPORTED, "r.yaml:2:");
    bad_config("execution: {workers: 1000}\n", VIGIL_ERANGE, "execution.workers");
    bad_config("log: {level: loud}\n", VIGIL_EVALUE, "log.level");
    bad_config("secret_env: VIGIL_TEST_NOT_SET_SECRET\n", VIGIL_EENV,
               "r.yaml:1:13: secret_env: environment variable VIGIL_TEST_NOT_SET_SECRET");
    setenv("VIGIL_TEST_SHORT_SECRET", "thirty-one-bytes-of-secret-0000", 1);
    bad_config("secret_env: VIGIL_TEST_SHORT_SECRET\n", VIGIL_EVALUE,
               "secret_env: the secret in VIGIL_TEST_SHORT_SECRET is 31 bytes; at least 32 are "
               "required");
    /* an empty file is the defaults */
    vigil_remediator_config *c = NULL;
    ck_assert_int_eq(vigil_remediator_config_load_string(&c, "", 0, "r.yaml", NULL), VIGIL_OK);
    ck_assert_str_eq(vigil_remediator_config_httpd(c)->listen, "127.0.0.1:7601");
    vigil_remediator_config_free(c);
    ck_assert_int_eq(vigil_remediator_config_load(&c, "/nonexistent/r.yaml", NULL), VIGIL_EIO);
}
END_TEST

/* ---- out of memory ----------------------------------------------------------------- */

typedef struct oom_ctx {
    vigil_remediator_options o;
    vigil_config *cfg;
    vigil_remediator *rem;
} oom_ctx;

static int oom_new(void *p)
{
    oom_ctx *c = p;
    return vigil_remediator_new(&c->rem, &c->o);
}

static void oom_free(void *p)
{
    oom_ctx *c = p;
    vigil_remediator_free(c->rem);
    c->rem = NULL;
}

static int oom_config(void *p)
{
    vigil_remediator_config **c = p;
    return vigil_remediator_config_load_string(c,
                                               "guards: {cooldown: 5s}\nactions:\n  - {name: "
                                               "n, type: log}\n",
                                               57, "r.yaml", NULL);
}

static void oom_config_free(void *p)
{
    vigil_remediator_config **c = p;
    vigil_remediator_config_free(*c);
    *c = NULL;
}

START_TEST(out_of_memory_sweeps)
{
    vt_alloc_install(); /* before anything the test allocates */
    const char *dir = vt_tmpdir();
    late_reset();
    oom_ctx c;
    memset(&c, 0, sizeof(c));
    c.o = base_opts(dir);
    c.o.late_result = NULL;
    /* state to restore: a cooldown, a quarantine, a pending approval */
    c.o.max_attempts = 1;
    vigil_remediator *rem = rem_new(&c.o, k_log_actions);
    expect(rem, "om-1", "note", "a", VIGIL_ACTION_SUCCEEDED, NULL);
    advance(120000);
    expect(rem, "om-2", "note", "a", VIGIL_ACTION_REFUSED, "quarantined");
    expect(rem, "om-3", "ask", "b", VIGIL_ACTION_PENDING_APPROVAL, NULL);
    vigil_remediator_free(rem);
    c.cfg = at_load(k_log_actions);
    c.o.actions = at_actions(c.cfg);
    ck_assert_int_gt(vt_oom_sweep(oom_new, oom_free, &c, 0), 10);
    vigil_config_free(c.cfg);
    setenv("VIGIL_REMEDIATOR_SECRET", SECRET, 1);
    vigil_remediator_config *cfg = NULL;
    ck_assert_int_gt(vt_oom_sweep(oom_config, oom_config_free, &cfg, 0), 10);
}
END_TEST

static Suite *remediator_suite(void)
{
    Suite *s = suite_create("remediator");
    TCase *tc = tcase_create("guards");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, not_allowed_refused_and_audited);
    tcase_add_test(tc, dry_run_global_action_request);
    tcase_add_test(tc, embedder_types_reach_the_remediator);
    tcase_add_test(tc, cooldown_per_action_and_target);
    tcase_add_test(tc, refusals_carry_retry_after);
    tcase_add_test(tc, zero_options_are_the_defaults_and_disabled_turns_off);
    tcase_add_test(tc, budget_quarantine_reset_and_release);
    tcase_add_test(tc, rate_limit_token_bucket);
    tcase_add_test(tc, busy_and_concurrency);
    tcase_add_test(tc, approval_approve_deny_expire);
    suite_add_tcase(s, tc);
    tc = tcase_create("exactly_once");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, exactly_once_redeliveries_and_restart);
    tcase_add_test(tc, running_at_crash_is_interrupted_not_rerun);
    tcase_add_test(tc, dispatcher_and_bad_submits);
    tcase_add_test(tc, audit_key_file_beside_the_database);
    tcase_add_test(tc, out_of_memory_sweeps);
    suite_add_tcase(s, tc);
    tc = tcase_create("config");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, shipped_config_loads);
    tcase_add_test(tc, bad_configs_are_located);
    tcase_add_test(tc, config_names_embedder_types);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(remediator_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
