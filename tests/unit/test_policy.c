/* Policy engine: rule kinds, the state machine, guards, the closed loop,
 * persistence across restarts, code policies, bad input and replay. Real
 * SQLite files in a temporary directory, an injected clock, exact decisions. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"
#include "vigil/engine.h"
#include "vigil/policy.h"
#include "vigil/sys/policy.h"

#define T0   1700000000000LL
#define MAXR 64

typedef struct rec {
    int64_t now;
    char dec[MAXR][512]; /* "decision target action reason" */
    char dec_id[MAXR][80];
    size_t nd;
    char req[MAXR][512]; /* "action target k=v,..." */
    char req_id[MAXR][80];
    size_t nr;
    vigil_engine *engine;
    int fail_in_callback; /* on_request answers FAILED from inside the callback */
} rec;

static int64_t clk(void *p)
{
    return ((rec *)p)->now;
}

/* Every decision of every test names its target and its series (issue 13). */
static void on_dec(void *p, const vigil_store_decision *d)
{
    rec *r = p;
    ck_assert_msg(d->target != NULL, "decision %s of %s has no target", d->decision, d->policy);
    ck_assert_msg(d->series != NULL && *d->series, "decision %s of %s has no series", d->decision,
                  d->policy);
    if (r->nd >= MAXR)
        return;
    snprintf(r->dec[r->nd], sizeof(r->dec[0]), "%s %s %s | %s", d->decision,
             d->target ? d->target : "-", d->action ? d->action : "-", d->reason ? d->reason : "");
    snprintf(r->dec_id[r->nd], sizeof(r->dec_id[0]), "%s", d->action_id ? d->action_id : "");
    r->nd++;
}

static void on_req(void *p, const vigil_engine_request *q)
{
    rec *r = p;
    if (r->nr >= MAXR)
        return;
    int n =
        snprintf(r->req[r->nr], sizeof(r->req[0]), "%s %s", q->request->action, q->request->target);
    for (size_t i = 0; i < q->request->nparams; i++)
        n += snprintf(r->req[r->nr] + n, sizeof(r->req[0]) - (size_t)n, "%s%s=%s", i ? "," : " ",
                      q->request->params[i].key, q->request->params[i].value);
    snprintf(r->req_id[r->nr], sizeof(r->req_id[0]), "%s", q->request->id);
    r->nr++;
    if (r->fail_in_callback) {
        vigil_action_result res = VIGIL_ACTION_RESULT_INIT;
        res.id = (char *)q->request->id;
        res.status = VIGIL_ACTION_FAILED;
        res.reason = (char *)"network";
        ck_assert_int_eq(vigil_engine_action_result(r->engine, &res), VIGIL_OK);
    }
}

static const char *tmpdir(void)
{
    static const char *dir;
    if (!dir)
        dir = vt_tmpdir();
    return dir;
}

static const char *db_url(const char *name)
{
    static char url[8][600];
    static int k;
    k = (k + 1) % 8;
    snprintf(url[k], sizeof(url[k]), "sqlite://%s/%s", tmpdir(), name);
    return url[k];
}

static vigil_store *open_store(const char *name)
{
    vigil_store *st = NULL;
    int rc = vigil_store_open(&st, db_url(name), NULL);
    ck_assert_msg(rc == VIGIL_OK, "store: %s", vigil_error_last()->message);
    return st;
}

/* The policy types new engines get (the code policy tests set it). */
static const vigil_policy_registry *g_types;

static vigil_engine *new_engine(vigil_store *st, rec *r)
{
    vigil_engine_options o = VIGIL_ENGINE_OPTIONS_INIT;
    o.store = st;
    o.policy_types = g_types;
    o.clock = clk;
    o.clock_payload = r;
    o.on_decision = on_dec;
    o.decision_payload = r;
    o.on_request = on_req;
    o.request_payload = r;
    o.logger.min_level = VIGIL_LOG_OFF;
    vigil_engine *e = NULL;
    ck_assert_int_eq(vigil_engine_new(&e, &o), VIGIL_OK);
    r->engine = e;
    return e;
}

static int load_yaml(vigil_engine *e, const char *yaml)
{
    vigil_config *c = NULL;
    int rc = vigil_config_load_string(&c, yaml, strlen(yaml), "p.yaml", NULL);
    ck_assert_msg(rc == VIGIL_OK, "yaml: %s", vigil_error_last()->message);
    rc = vigil_engine_load(e, vigil_config_node_get(vigil_config_root(c, 0), "policies"));
    vigil_config_free(c);
    return rc;
}

static void load_ok(vigil_engine *e, const char *yaml)
{
    int rc = load_yaml(e, yaml);
    ck_assert_msg(rc == VIGIL_OK, "load: %s", vigil_error_last()->message);
}

/* Ingests one sample at the clock's time (ts == now unless ts_off). tags "k=v,k=v". */
static void feed_at(vigil_engine *e, rec *r, const char *agent, const char *name, double v,
                    int64_t ts, const char *tags)
{
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    if (agent)
        ck_assert_int_eq(vigil_batch_set_agent(b, agent), VIGIL_OK);
    vigil_tag t[8];
    char buf[256];
    size_t nt = 0;
    snprintf(buf, sizeof(buf), "%s", tags ? tags : "");
    for (char *save = NULL, *p = strtok_r(buf, ",", &save); p && nt < 8;
         p = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(p, '=');
        *eq = '\0';
        t[nt].key = p;
        t[nt].value = eq + 1;
        nt++;
    }
    vigil_metric m = {name, v, ts, t, nt, NULL};
    ck_assert_int_eq(vigil_batch_add(b, &m), VIGIL_OK);
    ck_assert_int_eq(vigil_engine_ingest(e, b), VIGIL_OK);
    vigil_batch_free(b);
    (void)r;
}

static void feed(vigil_engine *e, rec *r, const char *name, double v, const char *tags)
{
    feed_at(e, r, "h1", name, v, r->now, tags);
}

static void result(vigil_engine *e, const char *id, vigil_action_status st, const char *reason)
{
    vigil_action_result res = VIGIL_ACTION_RESULT_INIT;
    res.id = (char *)id;
    res.status = st;
    res.reason = (char *)reason;
    int rc = vigil_engine_action_result(e, &res);
    ck_assert_msg(rc == VIGIL_OK, "result: %s", vigil_error_last()->message);
}

/* asserts the decision kinds recorded so far, space-separated */
static void expect_kinds(const rec *r, const char *kinds)
{
    char got[2048] = "";
    for (size_t i = 0; i < r->nd; i++) {
        char k[64];
        sscanf(r->dec[i], "%63s", k);
        if (i)
            strcat(got, " ");
        strcat(got, k);
    }
    ck_assert_str_eq(got, kinds);
}

static vigil_engine_stats stats(vigil_engine *e)
{
    vigil_engine_stats s = VIGIL_ENGINE_STATS_INIT;
    ck_assert_int_eq(vigil_engine_stats_get(e, &s), VIGIL_OK);
    return s;
}

#define SETUP(dbname)                     \
    rec R;                                \
    memset(&R, 0, sizeof(R));             \
    R.now = T0;                           \
    vigil_store *st = open_store(dbname); \
    vigil_engine *e = new_engine(st, &R)

#define TEARDOWN()        \
    vigil_engine_free(e); \
    vigil_store_close(st)

static const char *HIGH_ERR = "policies:\n"
                              "  - name: high_error_rate\n"
                              "    kind: threshold\n"
                              "    metric: error_rate\n"
                              "    match: {service: \"*\"}\n"
                              "    window: 5m\n"
                              "    aggregate: last\n"
                              "    op: \">\"\n"
                              "    threshold: 0.05\n"
                              "    clear: 0.03\n"
                              "    action: scale_up\n"
                              "    target: \"{{tags.service}}\"\n";

/* Captures the fields of the engine's "decision" and template log lines. */
typedef struct log_cap {
    char fields[8][512];
    int n;
} log_cap;

static void cap_log(const vigil_log_record *r, void *p)
{
    log_cap *c = p;
    if (c->n < 8 &&
        (strcmp(r->message, "decision") == 0 || strncmp(r->message, "template names", 14) == 0))
        snprintf(c->fields[c->n++], sizeof(c->fields[0]), "%s", r->fields ? r->fields : "");
}

/* A target expanded from an agent's tag value cannot forge a log line: the
 * decision's fields are escaped as logfmt. */
START_TEST(decision_log_fields_are_escaped)
{
    rec R;
    memset(&R, 0, sizeof(R));
    R.now = T0;
    vigil_store *st = open_store("logesc.db");
    vigil_engine_options o = VIGIL_ENGINE_OPTIONS_INIT;
    log_cap cap;
    memset(&cap, 0, sizeof(cap));
    o.store = st;
    o.clock = clk;
    o.clock_payload = &R;
    o.on_decision = on_dec;
    o.decision_payload = &R;
    o.on_request = on_req;
    o.request_payload = &R;
    o.logger.cb = cap_log;
    o.logger.payload = &cap;
    vigil_engine *e = NULL;
    ck_assert_int_eq(vigil_engine_new(&e, &o), VIGIL_OK);
    R.engine = e;
    load_ok(e, HIGH_ERR);
    feed(e, &R, "error_rate", 0.06, "service=api\nts=0 level=error msg=forged");
    ck_assert_uint_eq(R.nr, 1);
    ck_assert_int_eq(cap.n, 1);
    ck_assert_msg(strchr(cap.fields[0], '\n') == NULL, "raw newline in: %s", cap.fields[0]);
    ck_assert_msg(strstr(cap.fields[0], "target=\"api\\nts=0 level=error msg=forged\"") != NULL,
                  "%s", cap.fields[0]);
    ck_assert_ptr_nonnull(strstr(cap.fields[0], "policy=high_error_rate decision=fired "));
    vigil_engine_free(e);
    vigil_store_close(st);
}
END_TEST

START_TEST(threshold_hysteresis)
{
    SETUP("hyst.db");
    load_ok(e, HIGH_ERR);
    feed(e, &R, "error_rate", 0.01, "service=api");
    expect_kinds(&R, "");
    R.now += 1000;
    feed(e, &R, "error_rate", 0.06, "service=api"); /* crosses above: fires */
    expect_kinds(&R, "fired");
    ck_assert_uint_eq(R.nr, 1);
    ck_assert_str_eq(R.req[0], "scale_up api");
    ck_assert_str_eq(R.req_id[0], R.dec_id[0]);
    ck_assert_ptr_nonnull(strstr(R.dec[0], "last(error_rate) over 5m = 0.06 > 0.05"));
    R.now += 1000;
    feed(e, &R, "error_rate", 0.04, "service=api"); /* between threshold and clear */
    expect_kinds(&R, "fired");
    R.now += 1000;
    feed(e, &R, "error_rate", 0.02, "service=api"); /* below clear: resolves */
    expect_kinds(&R, "fired resolved");
    ck_assert_ptr_nonnull(strstr(R.dec[1], "past 0.03 (clear)"));
    ck_assert_uint_eq(R.nr, 1);
    /* another service is another series */
    R.now += 1000;
    feed(e, &R, "error_rate", 0.5, "service=web");
    expect_kinds(&R, "fired resolved fired");
    ck_assert_str_eq(R.req[1], "scale_up web");
    /* a non-matching metric (no service tag) is ignored */
    feed(e, &R, "error_rate", 0.9, "host=h1");
    ck_assert_uint_eq(R.nd, 3);

    vigil_buf b = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil_engine_policies_json(e, &b), VIGIL_OK);
    ck_assert_ptr_nonnull(strstr(b.ptr, "{\"policies\":[{\"name\":\"high_error_rate\","
                                        "\"kind\":\"threshold\",\"metric\":\"error_rate\","
                                        "\"action\":\"scale_up\",\"series\":[{\"series\":"
                                        "\"error_rate{service=\\\"api\\\"}\",\"state\":"
                                        "\"resolved\",\"value\":0.02,"));
    ck_assert_ptr_nonnull(strstr(b.ptr, "\"state\":\"firing\",\"value\":0.5"));
    ck_assert_int_eq(vigil_engine_decisions_json(e, 0, 0, &b), VIGIL_OK);
    ck_assert_ptr_nonnull(strstr(b.ptr, "{\"decisions\":[{\"id\":"));
    ck_assert_ptr_nonnull(strstr(b.ptr, "\"decision\":\"fired\""));
    ck_assert_ptr_nonnull(strstr(b.ptr, "\"decision\":\"resolved\""));
    ck_assert_int_eq(vigil_engine_decisions_json(e, T0 + 3500, 1, &b), VIGIL_OK);
    ck_assert_ptr_nonnull(strstr(b.ptr, "\"target\":\"web\""));
    ck_assert_ptr_null(strstr(b.ptr, "\"resolved\""));
    vigil_buf_dispose(&b);
    vigil_engine_stats s = stats(e);
    ck_assert_uint_eq(s.policies, 1);
    ck_assert_uint_eq(s.decisions, 3);
    ck_assert_uint_eq(s.requests, 2);
    TEARDOWN();
}
END_TEST

START_TEST(for_timing)
{
    SETUP("for.db");
    load_ok(e, "policies:\n"
               "  - {name: p, kind: threshold, metric: m, op: \">\", threshold: 1, for: 30s,\n"
               "     action: a, target: x}\n");
    feed(e, &R, "m", 2, NULL); /* pending */
    R.now += 20000;
    feed(e, &R, "m", 2, NULL);
    expect_kinds(&R, "");
    R.now += 5000;
    feed(e, &R, "m", 0, NULL); /* back to ok before 30 s */
    R.now += 5000;
    feed(e, &R, "m", 2, NULL); /* pending again, from here */
    R.now += 29999;
    feed(e, &R, "m", 2, NULL);
    expect_kinds(&R, "");
    R.now += 1;
    feed(e, &R, "m", 2, NULL); /* held 30 s: fires */
    expect_kinds(&R, "fired");
    ck_assert_str_eq(R.req[0], "a x");
    TEARDOWN();
}
END_TEST

START_TEST(cooldown_per_target)
{
    SETUP("cool.db");
    load_ok(e, "policies:\n"
               "  - {name: p, kind: threshold, metric: m, op: \">\", threshold: 1, cooldown: 5m,\n"
               "     action: a, target: x}\n");
    feed(e, &R, "m", 2, NULL);
    R.now += 1000;
    feed(e, &R, "m", 0, NULL);
    R.now += 60000;
    feed(e, &R, "m", 2, NULL); /* fires again, but in cooldown: held back, not dropped */
    expect_kinds(&R, "fired resolved deferred");
    ck_assert_ptr_nonnull(strstr(R.dec[2], "deferred x a | cooldown: last request 1m1s ago "
                                           "(cooldown 5m); sent in 3m59s (at "));
    ck_assert_ptr_nonnull(strstr(R.dec[2], "if the condition still holds"));
    ck_assert_str_eq(R.dec_id[2], "");
    R.now += 60000;
    feed(e, &R, "m", 2, NULL); /* still cooling: recorded once */
    ck_assert_int_eq(vigil_engine_tick(e, 0), VIGIL_OK);
    expect_kinds(&R, "fired resolved deferred");
    /* the cooldown ends: the timers send it, without a new sample or `repeat` */
    R.now = T0 + 5 * 60000 - 1; /* 5m after the first request */
    ck_assert_int_eq(vigil_engine_tick(e, 0), VIGIL_OK);
    expect_kinds(&R, "fired resolved deferred");
    R.now += 1;
    ck_assert_int_eq(vigil_engine_tick(e, 0), VIGIL_OK);
    expect_kinds(&R, "fired resolved deferred fired");
    ck_assert_ptr_nonnull(strstr(R.dec[3], "fired x a | deferred by the policy's cooldown; "));
    ck_assert_uint_eq(R.nr, 2);
    /* resolved while held back: nothing is sent */
    R.now += 1000;
    feed(e, &R, "m", 0, NULL);
    R.now += 1000;
    feed(e, &R, "m", 2, NULL);
    expect_kinds(&R, "fired resolved deferred fired resolved deferred");
    R.now += 1000;
    feed(e, &R, "m", 0, NULL);
    R.now += 10 * 60000;
    ck_assert_int_eq(vigil_engine_tick(e, 0), VIGIL_OK);
    expect_kinds(&R, "fired resolved deferred fired resolved deferred resolved");
    ck_assert_uint_eq(R.nr, 2);
    TEARDOWN();
}
END_TEST

START_TEST(repeat_after_previous_finished)
{
    SETUP("repeat.db");
    load_ok(e, "policies:\n"
               "  - {name: p, kind: threshold, metric: m, op: \">\", threshold: 1, repeat: 1m,\n"
               "     action: a, target: x}\n");
    feed(e, &R, "m", 2, NULL);
    R.now += 120000;
    feed(e, &R, "m", 2, NULL); /* previous still outstanding: no repeat */
    ck_assert_uint_eq(R.nr, 1);
    result(e, R.req_id[0], VIGIL_ACTION_SUCCEEDED, NULL);
    R.now += 1000;
    feed(e, &R, "m", 2, NULL); /* finished, repeat elapsed: asks again */
    ck_assert_uint_eq(R.nr, 2);
    expect_kinds(&R, "fired fired");
    ck_assert_str_ne(R.req_id[0], R.req_id[1]);
    R.now += 1000;
    feed(e, &R, "m", 2, NULL);
    ck_assert_uint_eq(R.nr, 2);
    TEARDOWN();
}
END_TEST

START_TEST(budget_exhaustion)
{
    SETUP("budget.db");
    load_ok(e, "policies:\n"
               "  - {name: p, kind: threshold, metric: m, op: \">\", threshold: 1,\n"
               "     budget: {max_actions: 2, window: 1h}, action: a, target: x}\n");
    for (int i = 0; i < 3; i++) {
        feed(e, &R, "m", 2, NULL);
        R.now += 1000;
        feed(e, &R, "m", 0, NULL);
        R.now += 1000;
    }
    expect_kinds(&R, "fired resolved fired resolved exhausted resolved");
    ck_assert_ptr_nonnull(strstr(R.dec[4], "budget: 2 actions within 1h on x"));
    ck_assert_uint_eq(R.nr, 2);
    /* an hour after the first action, one slot is free again */
    R.now = T0 + 3600000 + 500;
    feed(e, &R, "m", 2, NULL);
    ck_assert_uint_eq(R.nr, 3);
    TEARDOWN();
}
END_TEST

START_TEST(flap_damping)
{
    SETUP("flap.db");
    load_ok(e, "policies:\n"
               "  - {name: p, kind: threshold, metric: m, op: \">\", threshold: 1,\n"
               "     flap: {transitions: 3, window: 10m, settle: 5m}, action: a, target: x}\n");
    double vals[] = {2, 0, 2, 0, 2};
    for (size_t i = 0; i < 5; i++) {
        feed(e, &R, "m", vals[i], NULL);
        R.now += 1000;
    }
    /* 4th change flaps; the firing after it is suppressed */
    expect_kinds(&R, "fired resolved fired flapping resolved suppressed");
    ck_assert_ptr_nonnull(strstr(R.dec[3], "4 state changes within 10m (limit 3)"));
    ck_assert_ptr_nonnull(strstr(R.dec[5], "| flapping"));
    ck_assert_uint_eq(R.nr, 2);
    vigil_buf b = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil_engine_policies_json(e, &b), VIGIL_OK);
    ck_assert_ptr_nonnull(strstr(b.ptr, "\"state\":\"flapping\""));
    /* stable for settle: damping ends, the next sample acts */
    R.now += 5 * 60000;
    ck_assert_int_eq(vigil_engine_tick(e, 0), VIGIL_OK);
    ck_assert_int_eq(vigil_engine_policies_json(e, &b), VIGIL_OK);
    ck_assert_ptr_nonnull(strstr(b.ptr, "\"state\":\"firing\""));
    vigil_buf_dispose(&b);
    feed(e, &R, "m", 2, NULL);
    ck_assert_uint_eq(R.nr, 3);
    TEARDOWN();
}
END_TEST

START_TEST(silences)
{
    SETUP("sil.db");
    load_ok(e, HIGH_ERR);
    vigil_buf id = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil_engine_silence_add(e, "{\"policy\":\"high_*\",\"service\":\"api\"}",
                                              T0 - 1, T0 + 60000, "ops", "deploy", &id),
                     VIGIL_OK);
    ck_assert_ptr_nonnull(strstr(id.ptr, "sil-"));
    feed(e, &R, "error_rate", 0.5, "service=api");
    R.now += 1000;
    feed(e, &R, "error_rate", 0.5, "service=api");
    expect_kinds(&R, "silenced");
    ck_assert_uint_eq(R.nr, 0);
    char want[128];
    snprintf(want, sizeof(want), "silenced api scale_up | silence %s", id.ptr);
    ck_assert_str_eq(R.dec[0], want);
    /* another service is not silenced */
    feed(e, &R, "error_rate", 0.5, "service=web");
    expect_kinds(&R, "silenced fired");
    /* once the silence ends the firing series acts */
    R.now = T0 + 60000;
    feed(e, &R, "error_rate", 0.5, "service=api");
    expect_kinds(&R, "silenced fired fired");

    vigil_buf b = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil_engine_silences_json(e, &b), VIGIL_OK);
    char exp[512];
    snprintf(exp, sizeof(exp),
             "{\"silences\":[{\"id\":\"%s\",\"matchers\":{\"policy\":\"high_*\",\"service\":"
             "\"api\"},\"starts\":%lld,\"ends\":%lld,\"created_by\":\"ops\",\"comment\":"
             "\"deploy\"}]}",
             id.ptr, T0 - 1, T0 + 60000);
    ck_assert_str_eq(b.ptr, exp);
    ck_assert_int_eq(vigil_engine_silence_delete(e, id.ptr), VIGIL_OK);
    ck_assert_int_eq(vigil_engine_silence_delete(e, id.ptr), VIGIL_ENOTFOUND);
    vt_assert_error(VIGIL_ENOTFOUND, "no silence with id");
    ck_assert_int_eq(vigil_engine_silences_json(e, &b), VIGIL_OK);
    ck_assert_str_eq(b.ptr, "{\"silences\":[]}");

    /* bad input */
    ck_assert_int_eq(vigil_engine_silence_add(e, "[1]", 0, 10, NULL, NULL, NULL), VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE, "expected an object of globs");
    ck_assert_int_eq(vigil_engine_silence_add(e, "{}", 0, 10, NULL, NULL, NULL), VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE, "expected 1 to");
    ck_assert_int_eq(vigil_engine_silence_add(e, "{\"policy\":1}", 0, 10, NULL, NULL, NULL),
                     VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE, "policy: expected a string glob");
    ck_assert_int_eq(vigil_engine_silence_add(e, "{\"a b\":\"x\"}", 0, 10, NULL, NULL, NULL),
                     VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE, "neither policy, target nor a tag name");
    ck_assert_int_eq(vigil_engine_silence_add(e, "{\"target\":\"x\"}", 10, 10, NULL, NULL, NULL),
                     VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE, "ends must be after starts");
    ck_assert_int_eq(vigil_engine_silence_add(e, "{\"target\":", 0, 10, NULL, NULL, NULL),
                     VIGIL_EJSON);
    ck_assert_int_eq(vigil_engine_silence_add(NULL, "{}", 0, 10, NULL, NULL, NULL), VIGIL_EINVAL);
    vigil_buf_dispose(&b);
    vigil_buf_dispose(&id);

    /* silences persist: a new engine on the same store reads them */
    ck_assert_int_eq(
        vigil_engine_silence_add(e, "{\"target\":\"x*\"}", T0, T0 + 1000, NULL, NULL, NULL),
        VIGIL_OK);
    vigil_engine_free(e);
    e = new_engine(st, &R);
    ck_assert_int_eq(vigil_engine_silences_json(e, &b), VIGIL_OK);
    ck_assert_ptr_nonnull(strstr(b.ptr, "\"matchers\":{\"target\":\"x*\"}"));
    vigil_buf_dispose(&b);
    TEARDOWN();
}
END_TEST

static const char *ABSENT = "policies:\n"
                            "  - name: agent_silent\n"
                            "    kind: absent\n"
                            "    metric: vigil_agent_heartbeat\n"
                            "    match: {host: \"*\"}\n"
                            "    for: 30s\n"
                            "    action: page_oncall\n"
                            "    target: \"{{tags.host}}\"\n";

START_TEST(absent_on_timer)
{
    SETUP("absent.db");
    load_ok(e, ABSENT);
    feed_at(e, &R, "h1", "vigil_agent_heartbeat", 1, R.now, "host=h1");
    feed_at(e, &R, "h2", "vigil_agent_heartbeat", 1, R.now, "host=h2");
    R.now += 29000;
    ck_assert_int_eq(vigil_engine_tick(e, 0), VIGIL_OK);
    expect_kinds(&R, "");
    /* h1 keeps sending other data; h2 sends nothing */
    feed_at(e, &R, "h1", "cpu_usage", 0.5, R.now, "host=h1");
    R.now += 1000;
    ck_assert_int_eq(vigil_engine_tick(e, 0), VIGIL_OK);
    expect_kinds(&R, "fired fired");
    ck_assert_str_eq(R.dec[0], "fired h1 page_oncall | series gone: no sample of "
                               "vigil_agent_heartbeat{host=\"h1\"} for 30s while agent h1 "
                               "still reports");
    ck_assert_str_eq(R.dec[1], "fired h2 page_oncall | agent silent: no data from agent h2 "
                               "for 30s");
    ck_assert_str_eq(R.req[0], "page_oncall h1");
    ck_assert_str_eq(R.req[1], "page_oncall h2");
    /* ticking again does not ask again */
    R.now += 1000;
    ck_assert_int_eq(vigil_engine_tick(e, 0), VIGIL_OK);
    ck_assert_uint_eq(R.nr, 2);
    /* the heartbeat returns: resolved */
    feed_at(e, &R, "h2", "vigil_agent_heartbeat", 1, R.now, "host=h2");
    expect_kinds(&R, "fired fired resolved");
    ck_assert_ptr_nonnull(strstr(R.dec[2], "resolved h2 page_oncall"));
    TEARDOWN();
}
END_TEST

START_TEST(desired_state)
{
    SETUP("desired.db");
    load_ok(e, "policies:\n"
               "  - {name: replicas, kind: desired, metric: replicas_running,\n"
               "     match: {service: \"*\"}, op: \"<\", field: spec.replicas,\n"
               "     action: scale_up, target: \"{{tags.service}}\"}\n");
    feed(e, &R, "replicas_running", 1, "service=api"); /* no desired state: nothing */
    expect_kinds(&R, "");
    ck_assert_int_eq(vigil_engine_set_desired(e, "api", "{\"spec\":{\"replicas\":3}}"), VIGIL_OK);
    R.now += 1000;
    feed(e, &R, "replicas_running", 2, "service=api");
    expect_kinds(&R, "fired");
    ck_assert_ptr_nonnull(
        strstr(R.dec[0], "last(replicas_running) over 1m = 2 < desired spec.replicas 3 of api"));
    R.now += 1000;
    feed(e, &R, "replicas_running", 3, "service=api");
    expect_kinds(&R, "fired resolved");
    /* bad desired input */
    ck_assert_int_eq(vigil_engine_set_desired(e, "api", "[1]"), VIGIL_ETYPE);
    vt_assert_error(VIGIL_ETYPE, "expected an object");
    ck_assert_int_eq(vigil_engine_set_desired(e, "api", "{\"a\":"), VIGIL_EJSON);
    ck_assert_int_eq(vigil_engine_set_desired(e, "nope", NULL), VIGIL_ENOTFOUND);
    ck_assert_int_eq(vigil_engine_set_desired(e, "api", NULL), VIGIL_OK);
    ck_assert_int_eq(vigil_engine_set_desired(e, NULL, "{}"), VIGIL_EINVAL);
    /* a field that is not a number is an evaluation error, counted */
    ck_assert_int_eq(vigil_engine_set_desired(e, "api", "{\"spec\":{\"replicas\":\"3\"}}"),
                     VIGIL_OK);
    R.now += 1000;
    feed(e, &R, "replicas_running", 0, "service=api");
    ck_assert_uint_eq(stats(e).eval_errors, 1);
    expect_kinds(&R, "fired resolved");
    TEARDOWN();
}
END_TEST

START_TEST(anomaly_and_change)
{
    SETUP("anom.db");
    load_ok(e, "policies:\n"
               "  - {name: spike, kind: anomaly, metric: lat, window: 10m, sigma: 3,\n"
               "     action: a, target: t}\n"
               "  - {name: climb, kind: change, metric: disk, window: 1m, op: \">\",\n"
               "     threshold: 1, action: b, target: t}\n");
    for (int i = 0; i < 20; i++) {
        feed(e, &R, "lat", 10 + (i % 2 ? 0.5 : -0.5), NULL);
        R.now += 1000;
    }
    expect_kinds(&R, "");
    feed(e, &R, "lat", 100, NULL);
    expect_kinds(&R, "fired");
    ck_assert_ptr_nonnull(strstr(R.dec[0], "lat = 100 is "));
    ck_assert_ptr_nonnull(strstr(R.dec[0], "sigma from the mean"));
    R.now += 1000;
    /* change: 0.5/s is below the bound, 3/s above */
    feed(e, &R, "disk", 10, NULL);
    R.now += 10000;
    feed(e, &R, "disk", 15, NULL);
    ck_assert_uint_eq(R.nd, 1);
    R.now += 10000;
    feed(e, &R, "disk", 75, NULL);
    expect_kinds(&R, "fired fired");
    ck_assert_ptr_nonnull(strstr(R.dec[1], "change of disk over 1m = 3.25/s > 1"));
    ck_assert_str_eq(R.req[1], "b t");
    TEARDOWN();
}
END_TEST

START_TEST(templating)
{
    SETUP("tmpl.db");
    load_ok(e, "policies:\n"
               "  - name: p\n"
               "    kind: threshold\n"
               "    metric: m\n"
               "    match: {service: \"api-*\", region: \"*\"}\n"
               "    op: \">=\"\n"
               "    threshold: 1\n"
               "    action: a\n"
               "    target: \"{{tags.service}}.{{ tags.region }}\"\n"
               "    params: {svc: \"{{tags.service}}\", who: \"{{target}}\", m: \"{{metric}}\"}\n");
    feed(e, &R, "m", 1, "region=eu,service=api-1");
    ck_assert_uint_eq(R.nr, 1);
    ck_assert_str_eq(R.req[0], "a api-1.eu svc=api-1,who=api-1.eu,m=m");
    /* a tag present but empty never makes an empty target */
    R.now += 1000;
    feed(e, &R, "m", 1, "region=,service=api-2");
    ck_assert_uint_eq(R.nr, 1);
    ck_assert_uint_eq(stats(e).template_errors, 1);
    TEARDOWN();
}
END_TEST

START_TEST(escalation_when_verification_fails)
{
    SETUP("esc.db");
    load_ok(e, "policies:\n"
               "  - {name: demo_down, kind: threshold, metric: process_up,\n"
               "     match: {process: demo}, op: \"<\", threshold: 1, action: restart_demo,\n"
               "     target: \"{{tags.process}}\", verify: {within: 10s},\n"
               "     escalate: [page_oncall, call_cto]}\n");
    feed(e, &R, "process_up", 0, "process=demo");
    ck_assert_uint_eq(R.nr, 1);
    result(e, R.req_id[0], VIGIL_ACTION_SUCCEEDED, NULL);
    R.now += 9999;
    ck_assert_int_eq(vigil_engine_tick(e, 0), VIGIL_OK);
    expect_kinds(&R, "fired");
    R.now += 1;
    ck_assert_int_eq(vigil_engine_tick(e, 0), VIGIL_OK);
    expect_kinds(&R, "fired ineffective escalated");
    ck_assert_str_eq(R.dec[1], "ineffective demo restart_demo | no recovery within 10s after "
                               "restart_demo succeeded");
    ck_assert_str_eq(R.dec_id[1], R.req_id[0]);
    ck_assert_str_eq(R.dec[2], "escalated demo page_oncall | restart_demo was ineffective; "
                               "escalating to page_oncall");
    ck_assert_uint_eq(R.nr, 2);
    ck_assert_str_eq(R.req[1], "page_oncall demo");
    ck_assert_str_eq(R.dec_id[2], R.req_id[1]);
    /* the page succeeds and the process recovers: remediated */
    result(e, R.req_id[1], VIGIL_ACTION_SUCCEEDED, NULL);
    R.now += 2000;
    feed(e, &R, "process_up", 1, "process=demo");
    expect_kinds(&R, "fired ineffective escalated resolved remediated");
    ck_assert_str_eq(R.dec_id[4], R.req_id[1]);
    ck_assert_ptr_nonnull(strstr(R.dec[4], "recovered 2s after page_oncall succeeded"));
    /* settled: a late result is unknown */
    vigil_action_result res = VIGIL_ACTION_RESULT_INIT;
    res.id = R.req_id[1];
    ck_assert_int_eq(vigil_engine_action_result(e, &res), VIGIL_ENOTFOUND);
    vt_assert_error(VIGIL_ENOTFOUND, "is not awaited by the policy engine");
    TEARDOWN();
}
END_TEST

START_TEST(action_failed_and_statuses)
{
    SETUP("fail.db");
    load_ok(e, "policies:\n"
               "  - {name: p, kind: threshold, metric: m, op: \">\", threshold: 1, action: a,\n"
               "     target: x, escalate: [b]}\n");
    /* failed: action_failed and escalation at once */
    feed(e, &R, "m", 2, "k=1");
    result(e, R.req_id[0], VIGIL_ACTION_FAILED, "exit_code");
    expect_kinds(&R, "fired action_failed escalated");
    ck_assert_str_eq(R.dec[1], "action_failed x a | failed: exit_code");
    ck_assert_str_eq(R.req[1], "b x");
    /* escalation action times out: no further level */
    result(e, R.req_id[1], VIGIL_ACTION_TIMEOUT, "timeout");
    expect_kinds(&R, "fired action_failed escalated action_failed");
    /* refused: recorded, no escalation */
    feed(e, &R, "m", 2, "k=2");
    result(e, R.req_id[2], VIGIL_ACTION_REFUSED, "not_allowed");
    expect_kinds(&R, "fired action_failed escalated action_failed fired action_failed");
    ck_assert_str_eq(R.dec[5], "action_failed x a | refused: not_allowed");
    /* dry run: no decision, settled; pending approval: noted, still awaited */
    feed(e, &R, "m", 2, "k=3");
    result(e, R.req_id[3], VIGIL_ACTION_DRY_RUN, NULL);
    feed(e, &R, "m", 2, "k=4");
    result(e, R.req_id[4], VIGIL_ACTION_PENDING_APPROVAL, NULL);
    ck_assert_uint_eq(R.nd, 8);
    result(e, R.req_id[4], VIGIL_ACTION_SUCCEEDED, NULL);
    vigil_action_result res = VIGIL_ACTION_RESULT_INIT;
    res.id = R.req_id[3];
    ck_assert_int_eq(vigil_engine_action_result(e, &res), VIGIL_ENOTFOUND);
    res.id = (char *)"someone-else";
    ck_assert_int_eq(vigil_engine_action_result(e, &res), VIGIL_ENOTFOUND);
    res.id = NULL;
    ck_assert_int_eq(vigil_engine_action_result(e, &res), VIGIL_EINVAL);
    TEARDOWN();
}
END_TEST

/* A refusal with retry_after_ms (a version 2 result). */
static void refused(vigil_engine *e, const char *id, const char *reason, const char *output,
                    int64_t retry_after_ms, unsigned int version)
{
    vigil_action_result res = VIGIL_ACTION_RESULT_INIT;
    res.version = version;
    res.id = (char *)id;
    res.status = VIGIL_ACTION_REFUSED;
    res.reason = (char *)reason;
    res.output = (char *)output;
    res.output_len = output ? strlen(output) : 0;
    res.retry_after_ms = retry_after_ms;
    int rc = vigil_engine_action_result(e, &res);
    ck_assert_msg(rc == VIGIL_OK, "result: %s", vigil_error_last()->message);
}

/* Issue 13 item 3: verification fails and no escalation is left: the policy
 * asks again for its action, as `fired` with a reason that says it is a
 * retry, under its cooldown and budget. */
START_TEST(ineffective_then_retry)
{
    SETUP("retry.db");
    load_ok(e, "policies:\n"
               "  - {name: demo_down, kind: threshold, metric: process_up,\n"
               "     match: {process: demo}, op: \"<\", threshold: 1, action: restart_demo,\n"
               "     target: \"{{tags.process}}\", verify: {within: 10s}, cooldown: 15s,\n"
               "     budget: {max_actions: 2, window: 1h}}\n");
    feed(e, &R, "process_up", 0, "process=demo");
    result(e, R.req_id[0], VIGIL_ACTION_SUCCEEDED, NULL);
    R.now += 10000;
    ck_assert_int_eq(vigil_engine_tick(e, 0), VIGIL_OK);
    /* the cooldown (15s) still runs: held back until it ends */
    expect_kinds(&R, "fired ineffective deferred");
    ck_assert_str_eq(R.dec[1], "ineffective demo restart_demo | no recovery within 10s after "
                               "restart_demo succeeded");
    ck_assert_ptr_nonnull(strstr(R.dec[2], "deferred demo restart_demo | cooldown: last request "
                                           "10s ago (cooldown 15s); sent in 5s (at "));
    ck_assert_uint_eq(R.nr, 1);
    R.now += 5000;
    ck_assert_int_eq(vigil_engine_tick(e, 0), VIGIL_OK);
    expect_kinds(&R, "fired ineffective deferred fired");
    ck_assert_str_eq(R.dec[3], "fired demo restart_demo | retry: restart_demo was ineffective (no "
                               "recovery within 10s); last(process_up) over 1m = 0 < 1");
    ck_assert_uint_eq(R.nr, 2);
    ck_assert_str_eq(R.req[1], "restart_demo demo");
    ck_assert_str_eq(R.dec_id[3], R.req_id[1]);
    /* ineffective again: the budget (2 per hour) is used up */
    result(e, R.req_id[1], VIGIL_ACTION_SUCCEEDED, NULL);
    R.now += 10000;
    ck_assert_int_eq(vigil_engine_tick(e, 0), VIGIL_OK);
    R.now += 5000;
    ck_assert_int_eq(vigil_engine_tick(e, 0), VIGIL_OK);
    expect_kinds(&R, "fired ineffective deferred fired ineffective deferred exhausted");
    ck_assert_ptr_nonnull(strstr(R.dec[6], "exhausted demo restart_demo | budget: 2 actions within "
                                           "1h on demo; released when the oldest leaves the "
                                           "window, in 59m30s (at "));
    ck_assert_uint_eq(R.nr, 2);
    /* a recovery ends it all */
    R.now += 1000;
    feed(e, &R, "process_up", 1, "process=demo");
    expect_kinds(&R, "fired ineffective deferred fired ineffective deferred exhausted resolved");
    TEARDOWN();
}
END_TEST

/* Without a cooldown the retry follows `ineffective` at once; an escalation
 * list used up counts as no escalation left. */
START_TEST(ineffective_retry_after_escalations)
{
    SETUP("retry2.db");
    load_ok(e, "policies:\n"
               "  - {name: p, kind: threshold, metric: m, op: \">\", threshold: 1, action: a,\n"
               "     target: x, verify: {within: 5s}, escalate: [b]}\n");
    feed(e, &R, "m", 2, NULL);
    result(e, R.req_id[0], VIGIL_ACTION_SUCCEEDED, NULL);
    R.now += 5000;
    ck_assert_int_eq(vigil_engine_tick(e, 0), VIGIL_OK);
    expect_kinds(&R, "fired ineffective escalated");
    result(e, R.req_id[1], VIGIL_ACTION_SUCCEEDED, NULL);
    R.now += 5000;
    ck_assert_int_eq(vigil_engine_tick(e, 0), VIGIL_OK);
    expect_kinds(&R, "fired ineffective escalated ineffective fired");
    ck_assert_ptr_nonnull(strstr(R.dec[4], "fired x a | retry: b was ineffective (no recovery "
                                           "within 5s); "));
    ck_assert_uint_eq(R.nr, 3);
    ck_assert_str_eq(R.req[2], "a x");
    TEARDOWN();
}
END_TEST

/* Issue 13 item 8: the remediator's cooldown delays a request, it does not
 * drop it; a quarantine is its own decision, with how to release. */
START_TEST(remediator_cooldown_defers)
{
    SETUP("remcool.db");
    load_ok(e, "policies:\n"
               "  - {name: p, kind: threshold, metric: m, op: \">\", threshold: 1, action: a,\n"
               "     target: x, repeat: 1h}\n");
    feed(e, &R, "m", 2, NULL);
    refused(e, R.req_id[0], "cooldown", "cooldown: a ran on this target 3s ago (cooldown 10s)",
            7000, VIGIL_ACTION_RESULT_VERSION);
    expect_kinds(&R, "fired deferred");
    ck_assert_ptr_nonnull(strstr(R.dec[1], "deferred x a | refused by the remediator: cooldown: "
                                           "a ran on this target 3s ago (cooldown 10s); sent "
                                           "again in 7s (at "));
    ck_assert_str_eq(R.dec_id[1], R.req_id[0]);
    R.now += 6999;
    feed(e, &R, "m", 2, NULL); /* samples do not send it early */
    ck_assert_int_eq(vigil_engine_tick(e, 0), VIGIL_OK);
    ck_assert_uint_eq(R.nr, 1);
    R.now += 1;
    ck_assert_int_eq(vigil_engine_tick(e, 0), VIGIL_OK);
    expect_kinds(&R, "fired deferred fired");
    ck_assert_str_eq(R.dec[2],
                     "fired x a | retry: the remediator's cooldown ended; last(m) over 1m = 2 > 1");
    ck_assert_uint_eq(R.nr, 2);
    /* a version 1 result has no retry_after_ms: the refusal is final */
    refused(e, R.req_id[1], "cooldown", NULL, 7000, 1);
    expect_kinds(&R, "fired deferred fired action_failed");
    ck_assert_str_eq(R.dec[3], "action_failed x a | refused: cooldown");
    R.now += 60000;
    ck_assert_int_eq(vigil_engine_tick(e, 0), VIGIL_OK);
    ck_assert_uint_eq(R.nr, 2);
    TEARDOWN();
}
END_TEST

START_TEST(remediator_quarantine_decision)
{
    SETUP("quar.db");
    load_ok(e, "policies:\n"
               "  - {name: p, kind: threshold, metric: m, op: \">\", threshold: 1, action: a,\n"
               "     target: x}\n");
    const char *msg = "quarantined: 3 attempts within 10m; released after 1m without requests, "
                      "or now by an administrator: POST /v1/targets/x/release on the hub "
                      "(vigil release) or the remediator (scope admin)";
    feed(e, &R, "m", 2, NULL);
    refused(e, R.req_id[0], "quarantined", msg, 60000, VIGIL_ACTION_RESULT_VERSION);
    expect_kinds(&R, "fired quarantined");
    ck_assert_ptr_nonnull(
        strstr(R.dec[1], "POST /v1/targets/x/release on the hub (vigil release)"));
    ck_assert_ptr_nonnull(strstr(R.dec[1], "; sent again in 1m (at "));
    /* the engine keeps quiet while the quarantine's quiet time runs */
    R.now += 59999;
    feed(e, &R, "m", 2, NULL);
    ck_assert_int_eq(vigil_engine_tick(e, 0), VIGIL_OK);
    ck_assert_uint_eq(R.nr, 1);
    R.now += 1;
    ck_assert_int_eq(vigil_engine_tick(e, 0), VIGIL_OK);
    expect_kinds(&R, "fired quarantined fired");
    ck_assert_str_eq(R.dec[2],
                     "fired x a | retry: the target's quarantine ended; last(m) over 1m = 2 > 1");
    /* without retry_after_ms: the decision only */
    refused(e, R.req_id[1], "quarantined", NULL, 0, VIGIL_ACTION_RESULT_VERSION);
    expect_kinds(&R, "fired quarantined fired quarantined");
    ck_assert_str_eq(R.dec[3], "quarantined x a | refused by the remediator: quarantined");
    R.now += 3600000;
    ck_assert_int_eq(vigil_engine_tick(e, 0), VIGIL_OK);
    ck_assert_uint_eq(R.nr, 2);
    TEARDOWN();
}
END_TEST

/* A held-back request survives a restart of the engine; state written before
 * deferrals existed (no "du", "rt") still loads. */
START_TEST(deferral_persists)
{
    SETUP("defer-persist.db");
    const char *pol = "policies:\n"
                      "  - {name: p, kind: threshold, metric: m, op: \">\", threshold: 1, "
                      "action: a,\n"
                      "     target: x}\n";
    load_ok(e, pol);
    feed(e, &R, "m", 2, NULL);
    refused(e, R.req_id[0], "cooldown", NULL, 5000, VIGIL_ACTION_RESULT_VERSION);
    vigil_engine_free(e);
    e = new_engine(st, &R);
    load_ok(e, pol);
    R.now += 5000;
    ck_assert_int_eq(vigil_engine_tick(e, 0), VIGIL_OK);
    expect_kinds(&R, "fired deferred fired");
    ck_assert_str_eq(R.dec[2],
                     "fired x a | retry: the remediator's cooldown ended; last(m) over 1m = 2 > 1");
    vigil_engine_free(e);
    /* a series record of the old format */
    const char *old = "{\"st\":2,\"since\":1,\"ps\":0,\"na\":1,\"noted\":4,\"la\":1,"
                      "\"fl\":0,\"lt\":1,\"ft\":[],\"ag\":\"h1\",\"why\":\"old\",\"tags\":{}}";
    ck_assert_int_eq(vigil_store_state_put(st, "policy/q/s/m", old, strlen(old)), VIGIL_OK);
    e = new_engine(st, &R);
    load_ok(e, "policies:\n"
               "  - {name: q, kind: threshold, metric: m, op: \">\", threshold: 1, action: c,\n"
               "     target: y}\n");
    R.now += 1000;
    feed(e, &R, "m", 2, NULL); /* firing, need_act restored: it acts */
    expect_kinds(&R, "fired deferred fired fired");
    ck_assert_str_eq(R.dec[3], "fired y c | old");
    TEARDOWN();
}
END_TEST

/* The agent's sample with the new process up arrives before the action's
 * result: `remediated` is recorded when the success arrives, with the delay
 * from the request, not at the next poll sample; this survives a restart of
 * the engine, and an action record of an older version (no "rq", "rv")
 * still loads. */
START_TEST(recovered_before_the_result)
{
    SETUP("early.db");
    const char *pol =
        "policies:\n"
        "  - {name: demo_down, kind: threshold, metric: process_up,\n"
        "     match: {process: demo}, op: \"<\", threshold: 1, action: restart_demo,\n"
        "     target: \"{{tags.process}}\", verify: {within: 10s}}\n";
    load_ok(e, pol);
    feed(e, &R, "process_up", 0, "process=demo");
    ck_assert_uint_eq(R.nr, 1);
    R.now += 9;
    feed(e, &R, "process_up", 1, "process=demo");
    expect_kinds(&R, "fired resolved");
    R.now += 3;
    result(e, R.req_id[0], VIGIL_ACTION_SUCCEEDED, NULL);
    expect_kinds(&R, "fired resolved remediated");
    ck_assert_str_eq(R.dec[2], "remediated demo restart_demo | recovered 9ms after restart_demo "
                               "was requested, before its result arrived");
    ck_assert_str_eq(R.dec_id[2], R.req_id[0]);
    /* settled: nothing to verify, no ineffective later, a late result is unknown */
    R.now += 10000;
    ck_assert_int_eq(vigil_engine_tick(e, 0), VIGIL_OK);
    expect_kinds(&R, "fired resolved remediated");
    vigil_action_result res = VIGIL_ACTION_RESULT_INIT;
    res.id = R.req_id[0];
    ck_assert_int_eq(vigil_engine_action_result(e, &res), VIGIL_ENOTFOUND);

    /* recovered in the same millisecond, the engine restarted before the result */
    feed(e, &R, "process_up", 0, "process=demo");
    ck_assert_uint_eq(R.nr, 2);
    feed(e, &R, "process_up", 1, "process=demo");
    expect_kinds(&R, "fired resolved remediated fired resolved");
    vigil_engine_free(e);
    e = new_engine(st, &R);
    load_ok(e, pol);
    R.now += 20;
    result(e, R.req_id[1], VIGIL_ACTION_SUCCEEDED, NULL);
    expect_kinds(&R, "fired resolved remediated fired resolved remediated");
    ck_assert_str_eq(R.dec[5], "remediated demo restart_demo | recovered 0ms after restart_demo "
                               "was requested, before its result arrived");

    /* an action record of an older version: no request time, no recovery */
    R.now += 10000;
    feed(e, &R, "process_up", 0, "process=demo");
    ck_assert_uint_eq(R.nr, 3);
    vigil_engine_free(e);
    char key[256];
    snprintf(key, sizeof(key), "policy/demo_down/a/%s", R.req_id[2]);
    void *blob = NULL;
    size_t len = 0;
    ck_assert_int_eq(vigil_store_state_get(st, key, &blob, &len), VIGIL_OK);
    char rec_text[1024];
    ck_assert_uint_lt(len, sizeof(rec_text));
    memcpy(rec_text, blob, len);
    rec_text[len] = '\0';
    vigil_free(blob);
    char *rq = strstr(rec_text, ",\"rq\":");
    ck_assert_ptr_nonnull(rq);
    char *end = strchr(rq + 1, ',');
    ck_assert_ptr_nonnull(end);
    memmove(rq, end, strlen(end) + 1);
    ck_assert_ptr_null(strstr(rec_text, "\"rq\""));
    ck_assert_int_eq(vigil_store_state_put(st, key, rec_text, strlen(rec_text)), VIGIL_OK);
    e = new_engine(st, &R);
    load_ok(e, pol);
    R.now += 5;
    feed(e, &R, "process_up", 1, "process=demo");
    result(e, R.req_id[2], VIGIL_ACTION_SUCCEEDED, NULL);
    ck_assert_uint_eq(R.nd, 9);
    ck_assert_str_eq(R.dec[8], "remediated demo restart_demo | recovered before the result of "
                               "restart_demo arrived");
    TEARDOWN();
}
END_TEST

/* A sample taken before a remediation of its target ended starts no second
 * request, which would restart the healthy new process (test_heal's flake):
 * the program seen down while another policy's restart stops it, or a late
 * sample of the process a restart replaced. A sample taken after it does. */
START_TEST(samples_answered_by_a_remediation)
{
    SETUP("answered.db");
    load_ok(e,
            "policies:\n"
            "  - {name: demo_unhealthy, kind: threshold, metric: http_up, match: {check: demo},\n"
            "     op: \"<\", threshold: 1, action: restart_demo, target: \"{{tags.check}}\"}\n"
            "  - {name: demo_down, kind: threshold, metric: process_up,\n"
            "     match: {process: demo}, op: \"<\", threshold: 1, action: restart_demo,\n"
            "     target: \"{{tags.process}}\"}\n");
    feed(e, &R, "process_up", 1, "process=demo");
    feed(e, &R, "http_up", 0, "check=demo");
    ck_assert_uint_eq(R.nr, 1);
    ck_assert_str_eq(R.req[0], "restart_demo demo");
    /* the restart stops the frozen program: seen down while it runs */
    R.now += 50;
    feed(e, &R, "process_up", 0, "process=demo");
    ck_assert_uint_eq(R.nr, 1);
    expect_kinds(&R, "fired");
    R.now += 20;
    result(e, R.req_id[0], VIGIL_ACTION_SUCCEEDED, NULL);
    /* delivered late, taken before the success: the process it replaced */
    feed_at(e, &R, "h1", "process_up", 0, R.now - 5, "process=demo");
    feed_at(e, &R, "h1", "http_up", 0, R.now - 5, "check=demo");
    ck_assert_uint_eq(R.nr, 1);
    expect_kinds(&R, "fired");
    /* taken at the success, or later: news */
    R.now += 100;
    feed(e, &R, "http_up", 1, "check=demo");
    feed(e, &R, "process_up", 1, "process=demo");
    R.now += 100;
    feed(e, &R, "process_up", 0, "process=demo");
    ck_assert_uint_eq(R.nr, 2);
    ck_assert_str_eq(R.req[1], "restart_demo demo");
    expect_kinds(&R, "fired resolved remediated fired");
    ck_assert_str_eq(R.dec[3], "fired demo restart_demo | last(process_up) over 1m = 0 < 1");

    /* one policy: its restart succeeded and the new process is up; a sample
     * of the old one taken before the success comes late */
    R.now += 30;
    result(e, R.req_id[1], VIGIL_ACTION_SUCCEEDED, NULL);
    int64_t done = R.now;
    R.now += 10;
    feed(e, &R, "process_up", 1, "process=demo");
    feed_at(e, &R, "h1", "process_up", 0, done - 1, "process=demo");
    feed_at(e, &R, "h1", "process_up", 0, done, "process=demo");
    ck_assert_uint_eq(R.nr, 2);
    expect_kinds(&R, "fired resolved remediated fired resolved remediated");
    /* the new process dies: news */
    feed_at(e, &R, "h1", "process_up", 0, R.now + 1, "process=demo");
    ck_assert_uint_eq(R.nr, 3);
    expect_kinds(&R, "fired resolved remediated fired resolved remediated fired");
    TEARDOWN();
}
END_TEST

START_TEST(callbacks_may_reenter)
{
    SETUP("reenter.db");
    R.fail_in_callback = 1;
    load_ok(e, "policies:\n"
               "  - {name: p, kind: threshold, metric: m, op: \">\", threshold: 1, action: a,\n"
               "     target: x}\n");
    feed(e, &R, "m", 2, NULL);
    expect_kinds(&R, "fired action_failed");
    ck_assert_str_eq(R.dec[1], "action_failed x a | failed: network");
    TEARDOWN();
}
END_TEST

START_TEST(act_within_drops_old_samples)
{
    SETUP("old.db");
    load_ok(e, "policies:\n"
               "  - {name: p, kind: threshold, metric: m, op: \">\", threshold: 1, action: a,\n"
               "     target: x}\n"
               "  - {name: q, kind: threshold, metric: m, op: \">\", threshold: 1, action: a,\n"
               "     target: y, act_within: 1h}\n");
    feed_at(e, &R, "h1", "m", 5, R.now - 5 * 60000 - 1, NULL); /* replayed spool */
    expect_kinds(&R, "fired");                                 /* only q (act_within 1h) */
    ck_assert_str_eq(R.req[0], "a y");
    ck_assert_uint_eq(stats(e).stale, 1);
    feed_at(e, &R, "h1", "m", 5, R.now - 5 * 60000, NULL); /* exactly at the edge: acted on */
    expect_kinds(&R, "fired fired");
    TEARDOWN();
}
END_TEST

START_TEST(restart_mid_for)
{
    rec R;
    memset(&R, 0, sizeof(R));
    R.now = T0;
    const char *rules = "policies:\n"
                        "  - {name: p, kind: threshold, metric: m, op: \">\", threshold: 1,\n"
                        "     for: 1m, budget: {max_actions: 1, window: 1h}, action: a,\n"
                        "     target: x}\n";
    vigil_store *st = open_store("restart.db");
    vigil_engine *e = new_engine(st, &R);
    load_ok(e, rules);
    feed(e, &R, "m", 2, NULL);
    R.now += 60000;
    feed(e, &R, "m", 2, NULL); /* fires, uses the budget */
    R.now += 1000;
    feed(e, &R, "m", 0, NULL);
    R.now += 1000;
    feed(e, &R, "m", 2, NULL); /* pending again from T0 + 62 s */
    expect_kinds(&R, "fired resolved");
    vigil_engine_free(e);
    vigil_store_close(st);

    /* torn down mid-for: rebuilt from the same file */
    st = open_store("restart.db");
    e = new_engine(st, &R);
    load_ok(e, rules);
    vigil_buf b = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil_engine_policies_json(e, &b), VIGIL_OK);
    ck_assert_ptr_nonnull(
        strstr(b.ptr, "\"state\":\"pending\",\"value\":null,\"since\":1700000062000"));
    vigil_buf_dispose(&b);
    R.now = T0 + 62000 + 59999;
    feed(e, &R, "m", 2, NULL);
    expect_kinds(&R, "fired resolved");
    R.now += 1;
    feed(e, &R, "m", 2, NULL); /* the pending timer continued: held 60 s now */
    /* and the budget continued too: exhausted rather than fired */
    expect_kinds(&R, "fired resolved exhausted");
    ck_assert_uint_eq(R.nr, 1);
    vigil_engine_free(e);
    vigil_store_close(st);

    /* outstanding actions survive a restart: their result is still awaited */
    memset(&R, 0, sizeof(R));
    R.now = T0;
    st = open_store("restart2.db");
    e = new_engine(st, &R);
    load_ok(e, "policies:\n"
               "  - {name: p, kind: threshold, metric: m, op: \">\", threshold: 1, action: a,\n"
               "     target: x, verify: {within: 5s}, escalate: [b]}\n");
    feed(e, &R, "m", 2, NULL);
    char id[80];
    snprintf(id, sizeof(id), "%s", R.req_id[0]);
    vigil_engine_free(e);
    e = new_engine(st, &R);
    load_ok(e, "policies:\n"
               "  - {name: p, kind: threshold, metric: m, op: \">\", threshold: 1, action: a,\n"
               "     target: x, verify: {within: 5s}, escalate: [b]}\n");
    result(e, id, VIGIL_ACTION_SUCCEEDED, NULL);
    vigil_engine_free(e);
    e = new_engine(st, &R);
    load_ok(e, "policies:\n"
               "  - {name: p, kind: threshold, metric: m, op: \">\", threshold: 1, action: a,\n"
               "     target: x, verify: {within: 5s}, escalate: [b]}\n");
    R.now += 5000;
    ck_assert_int_eq(vigil_engine_tick(e, 0), VIGIL_OK);
    expect_kinds(&R, "fired ineffective escalated");
    /* ids minted after the restarts are new */
    ck_assert_str_ne(R.req_id[1], id);
    vigil_engine_free(e);
    vigil_store_close(st);
}
END_TEST

/* ---- bad rules ---------------------------------------------------------------------- */

static void bad_rule(const char *yaml, int code, const char *msg)
{
    rec R;
    memset(&R, 0, sizeof(R));
    vigil_store *st = open_store("bad.db");
    vigil_engine *e = new_engine(st, &R);
    int rc = load_yaml(e, yaml);
    ck_assert_msg(rc == code, "expected %d, got %d (%s) for\n%s", code, rc,
                  vigil_error_last()->message, yaml);
    vt_assert_error(code, msg);
    ck_assert_uint_eq(stats(e).policies, 0);
    vigil_engine_free(e);
    vigil_store_close(st);
}

START_TEST(malformed_rules)
{
    bad_rule("policies:\n  - {name: p, kind: foo, metric: m, action: a}\n", VIGIL_EUNSUPPORTED,
             "p.yaml:2:21: policies[0].kind: unknown kind \"foo\"");
    bad_rule("policies:\n  - {name: p, kind: threshold, metric: m, op: \"=>\", threshold: 1,\n"
             "     action: a}\n",
             VIGIL_EVALUE, "p.yaml:2:47: policies[0].op: unknown op \"=>\"");
    bad_rule("policies:\n  - name: p\n    kind: threshold\n    op: \">\"\n    threshold: 1\n"
             "    action: a\n",
             VIGIL_EMISSING, "p.yaml:2:5: policies[0]: missing required key \"metric\"");
    bad_rule("policies:\n  - name: p\n    kind: threshold\n    metric: m\n    op: \">\"\n"
             "    threshold: 1\n    for: ten\n    action: a\n",
             VIGIL_EVALUE, "p.yaml:7:10: policies[0].for: expected a duration");
    bad_rule("policies:\n  - name: p\n    kind: threshold\n    metric: m\n    op: \">\"\n"
             "    threshold: 1\n    window: -5m\n    action: a\n",
             VIGIL_ERANGE,
             "p.yaml:7:13: policies[0].window: expected a duration, got the "
             "negative \"-5m\"");
    bad_rule("policies:\n  - name: p\n    kind: threshold\n    metric: m\n    op: \">\"\n"
             "    threshold: 1\n    window: 0s\n    action: a\n",
             VIGIL_ERANGE, "p.yaml:7:13: policies[0].window: expected a duration above 0");
    bad_rule("policies:\n  - name: p\n    kind: threshold\n    metric: m\n    match: {host: h1}\n"
             "    op: \">\"\n    threshold: 1\n    action: a\n    target: \"{{tags.service}}\"\n",
             VIGIL_EVALUE,
             "p.yaml:9:13: policies[0].target: template names tag \"service\" that match does "
             "not guarantee (add service: \"*\" to match)");
    bad_rule("policies:\n  - name: p\n    kind: threshold\n    metric: m\n    op: \">\"\n"
             "    threshold: 1\n    action: a\n    params: {x: \"{{tags.service}}\"}\n",
             VIGIL_EVALUE, "p.yaml:8:17: policies[0].params.x: template names tag \"service\"");
    bad_rule("policies:\n  - name: p\n    kind: threshold\n    metric: m\n    op: \">\"\n"
             "    threshold: 1\n    action: a\n    target: \"{{nope}}\"\n",
             VIGIL_EVALUE, "unknown placeholder \"{{nope}}\"");
    bad_rule("policies:\n  - name: p\n    kind: threshold\n    metric: m\n    op: \">\"\n"
             "    threshold: 1\n    action: a\n    target: \"{{tags.x\"\n",
             VIGIL_EVALUE, "unterminated placeholder");
    bad_rule("policies:\n  - name: p\n    kind: threshold\n    metric: m\n    op: \">\"\n"
             "    threshold: 1\n    action: a\n    target: \"{{target}}\"\n",
             VIGIL_EVALUE, "{{target}} may be used in params only");
    bad_rule("policies:\n  - name: p\n    kind: threshold\n    metric: m\n    op: \">\"\n"
             "    threshold: 1\n    action: a\n    treshold: 2\n",
             VIGIL_EUNKNOWNKEY, "p.yaml:8:5: policies[0].treshold: unknown key");
    bad_rule("policies:\n  - {name: p, kind: absent, metric: m, action: a, for: 1m, op: \">\"}\n",
             VIGIL_EUNKNOWNKEY, "policies[0].op: unknown key");
    bad_rule("policies:\n  - {name: p, kind: absent, metric: m, action: a}\n", VIGIL_EMISSING,
             "missing required key \"for\"");
    bad_rule("policies:\n  - {name: p, kind: threshold, metric: m, op: \">\", action: a}\n",
             VIGIL_EMISSING, "missing required key \"threshold\"");
    bad_rule("policies:\n  - {name: p, kind: threshold, metric: m, op: \">\", threshold: x,\n"
             "     action: a}\n",
             VIGIL_EVALUE, "policies[0].threshold");
    bad_rule("policies:\n  - {name: p, kind: threshold, metric: m, op: \">\", threshold: 1,\n"
             "     clear: 2, action: a}\n",
             VIGIL_ERANGE, "clear must not be above threshold with op > or >=");
    bad_rule("policies:\n  - {name: p, kind: threshold, metric: m, op: \">\", threshold: 1,\n"
             "     aggregate: median, action: a}\n",
             VIGIL_EVALUE, "unknown aggregate \"median\"");
    bad_rule("policies:\n  - {name: p, kind: threshold, metric: 9m, op: \">\", threshold: 1,\n"
             "     action: a}\n",
             VIGIL_ENAME, "invalid metric name \"9m\"");
    bad_rule("policies:\n  - {name: \"a b\", kind: threshold, metric: m, op: \">\", threshold: 1,\n"
             "     action: a}\n",
             VIGIL_EVALUE, "invalid policy name \"a b\"");
    bad_rule("policies:\n  - {name: p, kind: threshold, metric: m, op: \">\", threshold: 1}\n",
             VIGIL_EMISSING, "missing required key \"action\"");
    bad_rule("policies:\n  - {name: p, kind: threshold, metric: m, op: \">\", threshold: 1,\n"
             "     action: a, budget: {max_actions: 0}}\n",
             VIGIL_ERANGE, "policies[0].budget.max_actions: expected an integer from 1");
    bad_rule("policies:\n  - {name: p, kind: threshold, metric: m, op: \">\", threshold: 1,\n"
             "     action: a, flap: {transitions: 3, windw: 1m}}\n",
             VIGIL_EUNKNOWNKEY, "policies[0].flap.windw: unknown key");
    bad_rule("policies:\n  - {name: p, kind: desired, metric: m, op: \"<\", field: r,\n"
             "     action: a}\n",
             VIGIL_EMISSING, "a desired rule needs a target");
    bad_rule("policies:\n  - {name: p, kind: anomaly, metric: m, sigma: 0, action: a}\n",
             VIGIL_ERANGE, "expected a sigma above 0");
    bad_rule("policies:\n  - {name: p, kind: threshold, metric: m, op: \">\", threshold: 1,\n"
             "     action: a, window: 2h}\n",
             VIGIL_ERANGE, "window 2h is longer than the history kept (1h)");
    bad_rule("policies:\n  - {name: p, kind: threshold, metric: m, op: \">\", threshold: 1,\n"
             "     action: a}\n  - {name: p, kind: absent, metric: m, action: a, for: 1m}\n",
             VIGIL_EEXISTS, "p.yaml:4:12: policies[1].name: a policy named \"p\" already exists");
    bad_rule("policies: {name: p}\n", VIGIL_ETYPE, "policies");
    bad_rule("policies:\n  - 42\n", VIGIL_ETYPE, "policies[0]");
}
END_TEST

START_TEST(load_dir_sorted_and_all_or_nothing)
{
    rec R;
    memset(&R, 0, sizeof(R));
    R.now = T0;
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/pol", tmpdir());
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    vt_write_file(dir, "b.yaml",
                  "policies:\n  - {name: b, kind: absent, metric: m, for: 1m,\n"
                  "     action: x}\n",
                  strlen("policies:\n  - {name: b, kind: absent, metric: m, for: 1m,\n"
                         "     action: x}\n"));
    vt_write_file(dir, "a.yml",
                  "policies:\n  - {name: a, kind: absent, metric: m, for: 1m,\n"
                  "     action: x}\n",
                  strlen("policies:\n  - {name: a, kind: absent, metric: m, for: 1m,\n"
                         "     action: x}\n"));
    vt_write_file(dir, "notes.txt", "not yaml", 8);
    vigil_store *st = open_store("dir.db");
    vigil_engine *e = new_engine(st, &R);
    ck_assert_int_eq(vigil_engine_load_dir(e, dir, NULL), VIGIL_OK);
    vigil_buf b = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil_engine_policies_json(e, &b), VIGIL_OK);
    ck_assert_ptr_nonnull(strstr(b.ptr, "{\"policies\":[{\"name\":\"a\""));
    ck_assert_ptr_nonnull(strstr(b.ptr, "},{\"name\":\"b\""));
    vigil_engine_free(e);

    /* a duplicate across files, and a bad file, load nothing */
    e = new_engine(st, &R);
    vt_write_file(dir, "c.yaml",
                  "policies:\n  - {name: a, kind: absent, metric: m, for: 1m,\n"
                  "     action: x}\n",
                  strlen("policies:\n  - {name: a, kind: absent, metric: m, for: 1m,\n"
                         "     action: x}\n"));
    ck_assert_int_eq(vigil_engine_load_dir(e, dir, NULL), VIGIL_EEXISTS);
    vt_assert_error(VIGIL_EEXISTS, "c.yaml:2:");
    ck_assert_uint_eq(stats(e).policies, 0);
    vt_write_file(dir, "c.yaml", "policy: []\n", 11);
    ck_assert_int_eq(vigil_engine_load_dir(e, dir, NULL), VIGIL_EUNKNOWNKEY);
    vt_assert_error(VIGIL_EUNKNOWNKEY, "c.yaml:1:1: policy: unknown key");
    ck_assert_uint_eq(stats(e).policies, 0);
    ck_assert_int_eq(vigil_engine_load_dir(e, "/nonexistent/dir", NULL), VIGIL_EIO);
    vt_assert_error(VIGIL_EIO, "cannot open policies directory");
    vigil_buf_dispose(&b);
    vigil_engine_free(e);
    vigil_store_close(st);
}
END_TEST

/* ---- replacing the rule set ------------------------------------------------------ */

static void put_file(const char *dir, const char *name, const char *text)
{
    vt_write_file(dir, name, text, strlen(text));
}

static int count_cb(const char *key, const void *value, size_t len, void *payload)
{
    (void)key;
    (void)value;
    (void)len;
    (*(int *)payload)++;
    return 0;
}

static int state_keys(vigil_store *st, const char *prefix)
{
    int n = 0;
    ck_assert_int_eq(vigil_store_state_list(st, prefix, count_cb, &n), VIGIL_OK);
    return n;
}

/* vigil_engine_replace() with an inline list (YAML text, may be NULL) and a directory. */
static int replace_with(vigil_engine *e, const char *inline_yaml, const char *dir,
                        vigil_engine_reload_result *res)
{
    vigil_config *c = NULL;
    const vigil_config_node *list = NULL;
    if (inline_yaml) {
        int rc =
            vigil_config_load_string(&c, inline_yaml, strlen(inline_yaml), "inline.yaml", NULL);
        ck_assert_msg(rc == VIGIL_OK, "yaml: %s", vigil_error_last()->message);
        list = vigil_config_node_get(vigil_config_root(c, 0), "policies");
    }
    int rc = vigil_engine_replace(e, list, dir, NULL, res);
    vigil_config_free(c);
    return rc;
}

static void policies_json(vigil_engine *e, vigil_buf *b)
{
    ck_assert_int_eq(vigil_engine_policies_json(e, b), VIGIL_OK);
}

START_TEST(replace_keeps_state_of_unchanged_rules)
{
    SETUP("replace.db");
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/rep", tmpdir());
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    put_file(dir, "a.yaml",
             "policies:\n"
             "  - {name: p, kind: threshold, metric: m, op: \">\", threshold: 1, for: 30s,\n"
             "     action: a, target: x}\n"
             "  - {name: c, kind: threshold, metric: m, op: \">\", threshold: 1, action: c,\n"
             "     target: x}\n"
             "  - {name: r, kind: threshold, metric: m, op: \">\", threshold: 1, action: r,\n"
             "     target: x}\n");
    vigil_engine_reload_result res = VIGIL_ENGINE_RELOAD_RESULT_INIT;
    ck_assert_int_eq(replace_with(e, NULL, dir, &res), VIGIL_OK);
    ck_assert_uint_eq(res.added, 3);
    ck_assert_uint_eq(res.kept + res.changed + res.removed, 0);
    feed(e, &R, "m", 2, NULL); /* p pending from T0; c and r fire */
    expect_kinds(&R, "fired fired");
    ck_assert_str_eq(R.req[0], "c x");
    ck_assert_str_eq(R.req[1], "r x");
    ck_assert_int_gt(state_keys(st, "policy/r/"), 0);
    ck_assert_int_gt(state_keys(st, "policy/c/"), 0);

    /* p: same definition, other key order and place; c: another threshold;
     * r: gone; n: new, inline */
    R.now += 10000;
    put_file(dir, "a.yaml",
             "policies:\n"
             "  - name: c\n    kind: threshold\n    metric: m\n    op: \">\"\n"
             "    threshold: 1.5\n    action: c\n    target: x\n"
             "  - name: p\n    kind: threshold\n    metric: m\n    for: 30s\n"
             "    threshold: 1\n    op: \">\"\n    target: x\n    action: a\n");
    res.added = res.changed = res.removed = res.kept = 99;
    ck_assert_int_eq(
        replace_with(e,
                     "policies:\n  - {name: n, kind: threshold, metric: m, op: \">\",\n"
                     "     threshold: 1, action: n, target: x}\n",
                     dir, &res),
        VIGIL_OK);
    ck_assert_uint_eq(res.added, 1);
    ck_assert_uint_eq(res.changed, 1);
    ck_assert_uint_eq(res.removed, 1);
    ck_assert_uint_eq(res.kept, 1);
    ck_assert_uint_eq(stats(e).policies, 3);
    /* the removed rule's persisted state is deleted, as is the old one of c */
    ck_assert_int_eq(state_keys(st, "policy/r/"), 0);
    ck_assert_int_eq(state_keys(st, "policy/c/"), 0);
    ck_assert_int_gt(state_keys(st, "policy/p/"), 0);
    vigil_buf b = VIGIL_BUF_INIT;
    policies_json(e, &b);
    ck_assert_ptr_nonnull(strstr(b.ptr, "{\"policies\":[{\"name\":\"n\""));
    ck_assert_ptr_nonnull(strstr(b.ptr, "{\"name\":\"c\",\"kind\":\"threshold\",\"metric\":\"m\","
                                        "\"action\":\"c\",\"series\":[]},{\"name\":\"p\""));
    ck_assert_ptr_nonnull(strstr(b.ptr, "\"state\":\"pending\",\"value\":2,\"since\":"));
    ck_assert_ptr_null(strstr(b.ptr, "\"name\":\"r\""));

    R.now += 10000; /* T0 + 20 s: p still pending; c (fresh) and n fire; r is gone */
    feed(e, &R, "m", 2, NULL);
    expect_kinds(&R, "fired fired fired fired");
    ck_assert_uint_eq(R.nr, 4);
    ck_assert_str_eq(R.req[2], "n x");
    ck_assert_str_eq(R.req[3], "c x");
    R.now += 9999;
    feed(e, &R, "m", 2, NULL);
    ck_assert_uint_eq(R.nr, 4);
    R.now += 1; /* T0 + 30 s: p fires at its original deadline */
    feed(e, &R, "m", 2, NULL);
    ck_assert_uint_eq(R.nr, 5);
    ck_assert_str_eq(R.req[4], "a x");

    /* a replace with nothing drops everything */
    ck_assert_int_eq(replace_with(e, NULL, NULL, &res), VIGIL_OK);
    ck_assert_uint_eq(res.removed, 3);
    ck_assert_uint_eq(res.added + res.kept + res.changed, 0);
    ck_assert_uint_eq(stats(e).policies, 0);
    ck_assert_int_eq(state_keys(st, "policy/p/"), 0);
    R.now += 1000;
    feed(e, &R, "m", 0, NULL);
    ck_assert_uint_eq(R.nd, 5);
    ck_assert_int_eq(replace_with(e, NULL, NULL, NULL), VIGIL_OK);
    vigil_buf_dispose(&b);
    TEARDOWN();
}
END_TEST

START_TEST(replace_restores_new_rules_from_the_store)
{
    SETUP("replace_restore.db");
    const char *y = "policies:\n"
                    "  - {name: p, kind: threshold, metric: m, op: \">\", threshold: 1, for: 30s,\n"
                    "     action: a, target: x}\n";
    load_ok(e, y);
    feed(e, &R, "m", 2, NULL); /* pending since T0, persisted */
    vigil_engine_free(e);
    /* a new engine with no rule: p arrives by replace, as new, and resumes */
    e = new_engine(st, &R);
    vigil_engine_reload_result res = VIGIL_ENGINE_RELOAD_RESULT_INIT;
    ck_assert_int_eq(replace_with(e, y, NULL, &res), VIGIL_OK);
    ck_assert_uint_eq(res.added, 1);
    R.now += 30000;
    feed(e, &R, "m", 2, NULL);
    expect_kinds(&R, "fired");
    TEARDOWN();
}
END_TEST

static void replace_fails(vigil_engine *e, rec *R, const char *inline_yaml, const char *dir,
                          int code, const char *msg)
{
    vigil_engine_reload_result res = VIGIL_ENGINE_RELOAD_RESULT_INIT;
    res.added = 7;
    int rc = replace_with(e, inline_yaml, dir, &res);
    ck_assert_msg(rc == code, "expected %d, got %d (%s)", code, rc, vigil_error_last()->message);
    vt_assert_error(code, msg);
    ck_assert_uint_eq(res.added, 7);
    /* the old rule set is untouched and still evaluates */
    ck_assert_uint_eq(stats(e).policies, 1);
    size_t nr = R->nr;
    R->now += 1000;
    feed(e, R, "m", 2, NULL);
    ck_assert_uint_eq(R->nr, nr + 1);
    R->now += 1000;
    feed(e, R, "m", 0, NULL);
}

/* Cardinality: a per-agent series limit refuses new series with a counted,
 * logged reason and a `capped` decision (once a minute per rule); idle
 * series leave the rule, which then takes new ones again. */
START_TEST(series_caps_and_idle_eviction)
{
    rec R;
    memset(&R, 0, sizeof(R));
    R.now = T0;
    vigil_store *st = open_store("cap.db");
    vigil_engine_options o = VIGIL_ENGINE_OPTIONS_INIT;
    o.store = st;
    o.clock = clk;
    o.clock_payload = &R;
    o.on_decision = on_dec;
    o.decision_payload = &R;
    o.on_request = on_req;
    o.request_payload = &R;
    o.logger.min_level = VIGIL_LOG_OFF;
    o.series_per_agent = 2;
    o.series_idle_ms = 10 * 60 * 1000;
    vigil_engine *e = NULL;
    ck_assert_int_eq(vigil_engine_new(&e, &o), VIGIL_OK);
    R.engine = e;
    load_ok(e, HIGH_ERR);
    feed_at(e, &R, "web-01", "error_rate", 0.01, R.now, "service=a");
    feed_at(e, &R, "web-01", "error_rate", 0.01, R.now, "service=b");
    ck_assert_uint_eq(R.nd, 0);
    /* a third series of web-01: refused, counted, one decision */
    feed_at(e, &R, "web-01", "error_rate", 0.01, R.now, "service=junk1");
    feed_at(e, &R, "web-01", "error_rate", 0.01, R.now, "service=junk2");
    ck_assert_uint_eq(stats(e).series_refused, 2);
    ck_assert_uint_eq(R.nd, 1);
    ck_assert_msg(strstr(R.dec[0], "capped web-01 scale_up | agent web-01 holds its limit of 2 "
                                   "series of this policy (series_per_agent); new series are "
                                   "not tracked (1 refused so far), first refused: "
                                   "error_rate{service=\"junk1\"}") != NULL,
                  "%s", R.dec[0]);
    /* another agent has its own allowance */
    feed_at(e, &R, "web-02", "error_rate", 0.01, R.now, "service=c");
    ck_assert_uint_eq(stats(e).series_refused, 2);
    /* a minute later the cap, still reached, is recorded again */
    R.now += 61 * 1000;
    feed_at(e, &R, "web-01", "error_rate", 0.01, R.now, "service=junk3");
    ck_assert_uint_eq(R.nd, 2);
    ck_assert_ptr_nonnull(strstr(R.dec[1], "(3 refused so far)"));
    /* a firing series is never evicted; quiet ones leave after 10 minutes */
    feed_at(e, &R, "web-02", "error_rate", 0.5, R.now, "service=c");
    size_t nd = R.nd;
    R.now += 11 * 60 * 1000;
    ck_assert_int_eq(vigil_engine_tick(e, R.now), VIGIL_OK);
    ck_assert_uint_eq(stats(e).series_evicted, 2);
    /* web-01 may add series again */
    feed_at(e, &R, "web-01", "error_rate", 0.01, R.now, "service=d");
    ck_assert_uint_eq(stats(e).series_refused, 3);
    ck_assert_uint_ge(R.nd, nd);
    /* a version 1 stats struct is filled up to its own end */
    vigil_engine_stats v1;
    memset(&v1, 0xab, sizeof(v1));
    v1.version = 1;
    ck_assert_int_eq(vigil_engine_stats_get(e, &v1), VIGIL_OK);
    ck_assert_uint_eq(v1.series_evicted, 0xababababababababull);
    vigil_engine_free(e);
    vigil_store_close(st);
}
END_TEST

START_TEST(replace_is_all_or_nothing)
{
    SETUP("replace_bad.db");
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/repbad", tmpdir());
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    put_file(dir, "a.yaml",
             "policies:\n"
             "  - {name: p, kind: threshold, metric: m, op: \">\", threshold: 1, action: a,\n"
             "     target: x}\n");
    ck_assert_int_eq(replace_with(e, NULL, dir, NULL), VIGIL_OK);
    put_file(dir, "b.yaml", "policies: [\n");
    replace_fails(e, &R, NULL, dir, VIGIL_EYAML, "b.yaml:2:1: ");
    put_file(dir, "b.yaml",
             "policies:\n"
             "  - {name: q, kind: threshold, metric: m, op: \">\", threshold: 1, action: a,\n"
             "     treshold: 2}\n");
    replace_fails(e, &R, NULL, dir, VIGIL_EUNKNOWNKEY,
                  "b.yaml:3:6: policies[0].treshold: unknown key");
    put_file(dir, "b.yaml",
             "policies:\n"
             "  - {name: q, kind: threshold, metric: m, op: \">\", threshold: 1, action: a}\n"
             "  - {name: p, kind: absent, metric: m, for: 1m, action: a}\n");
    replace_fails(e, &R, NULL, dir, VIGIL_EEXISTS,
                  "b.yaml:3:1: a policy named \"p\" already exists");
    put_file(dir, "b.yaml", "policies: []\n");
    replace_fails(e, &R, "policies:\n  - {name: p, kind: absent, metric: m, for: 1m, action: a}\n",
                  dir, VIGIL_EEXISTS, "a.yaml:2:1: a policy named \"p\" already exists");
    replace_fails(e, &R, "policies:\n  - {name: z, kind: nope, metric: m, action: a}\n", dir,
                  VIGIL_EUNSUPPORTED, "inline.yaml:2:21: policies[0].kind: unknown kind \"nope\"");
    replace_fails(e, &R, NULL, "/nonexistent/dir", VIGIL_EIO, "cannot open policies directory");
    ck_assert_int_eq(vigil_engine_replace(NULL, NULL, NULL, NULL, NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "engine_replace: NULL engine");
    vigil_engine_reload_result bad = VIGIL_ENGINE_RELOAD_RESULT_INIT;
    bad.version = 0;
    ck_assert_int_eq(vigil_engine_replace(e, NULL, NULL, NULL, &bad), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "engine replace result: version 0 is not supported");
    vigil_engine_stats bad_stats = VIGIL_ENGINE_STATS_INIT;
    bad_stats.version = VIGIL_ENGINE_STATS_VERSION + 1;
    ck_assert_int_eq(vigil_engine_stats_get(e, &bad_stats), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "engine stats: version 3 is not supported");
    ck_assert_uint_eq(stats(e).policies, 1);
    TEARDOWN();
}
END_TEST

/* ---- code policies ---------------------------------------------------------------- */

typedef struct code_state {
    double limit;
    char target[64];
} code_state;

static int payload_freed;

static int code_create(void **state, const vigil_config_node *rule, void *payload)
{
    ck_assert_ptr_eq(payload, &payload_freed);
    code_state *s = calloc(1, sizeof(*s));
    int rc = vigil_config_get_double(&s->limit, rule, "limit", 0.05);
    if (rc < 0) {
        free(s);
        return rc;
    }
    *state = s;
    return VIGIL_OK;
}

static int code_eval(void *state, const vigil_metric *m, vigil_policy_ctx *ctx,
                     vigil_policy_verdict *out)
{
    code_state *s = state;
    if (m->value < 0)
        return vigil_error_set(VIGIL_EVALUE, "negative error rate");
    double mean;
    int rc = vigil_policy_ctx_aggregate(ctx, NULL, VIGIL_WINDOW_MEAN, 5 * 60000, &mean);
    if (rc < 0)
        return rc;
    out->active = mean > s->limit;
    out->value = mean;
    if (out->active) {
        snprintf(s->target, sizeof(s->target), "{{tags.service}}");
        out->request.target = s->target;
        out->request.reason = "mean error rate too high";
    }
    ck_assert_str_eq(vigil_policy_ctx_policy(ctx), "code");
    ck_assert_int_eq(vigil_policy_ctx_now(ctx), m->ts_ms);
    ck_assert_ptr_nonnull(strstr(vigil_policy_ctx_series(ctx), "error_rate{"));
    ck_assert_ptr_nonnull(vigil_policy_ctx_logger(ctx));
    return VIGIL_OK;
}

static void code_destroy(void *state)
{
    free(state);
}

static void code_payload_free(void *payload)
{
    (*(int *)payload)++;
}

static const char *const code_keys[] = {"limit", NULL};
static vigil_policy_type code_type(void)
{
    vigil_policy_type t = {
        .version = VIGIL_POLICY_TYPE_VERSION,
        .name = "error_rate",
        .payload = &payload_freed,
        .payload_free = code_payload_free,
        .keys = code_keys,
        .create = code_create,
        .evaluate = code_eval,
        .destroy = code_destroy,
    };
    return t;
}

/* A registry holding the code type; g_types points at it. */
static vigil_policy_registry *code_registry(void)
{
    vigil_policy_registry *reg = NULL;
    ck_assert_int_eq(vigil_policy_registry_new(&reg), VIGIL_OK);
    vigil_policy_type t = code_type();
    ck_assert_int_eq(vigil_policy_register(reg, &t), VIGIL_OK);
    g_types = reg;
    return reg;
}

START_TEST(policy_registry_refuses_bad_types)
{
    payload_freed = 0;
    vigil_policy_registry *reg = code_registry();
    g_types = NULL;
    vigil_policy_type t = code_type();
    ck_assert_int_eq(vigil_policy_register(reg, &t), VIGIL_EEXISTS);
    vt_assert_error(VIGIL_EEXISTS, "policy type \"error_rate\" is already registered");
    ck_assert_int_eq(payload_freed, 1); /* freed at once on failure */
    t.name = "threshold";
    ck_assert_int_eq(vigil_policy_register(reg, &t), VIGIL_EEXISTS);
    vt_assert_error(VIGIL_EEXISTS, "policy type \"threshold\" is built in");
    t.name = "Bad-Kind";
    ck_assert_int_eq(vigil_policy_register(reg, &t), VIGIL_ENAME);
    vt_assert_error(VIGIL_ENAME, "policy type: name \"Bad-Kind\" is invalid (expected "
                                 "[a-z][a-z0-9_]*, at most 64 bytes)");
    t = code_type();
    t.name = "x";
    t.version = 99;
    ck_assert_int_eq(vigil_policy_register(reg, &t), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION,
                    "policy type: version 99 is not supported (this library reads version 2)");
    t.version = 1;
    ck_assert_int_eq(vigil_policy_register(reg, &t), VIGIL_EVERSION);
    t = code_type();
    t.name = "x";
    t.evaluate = NULL;
    ck_assert_int_eq(vigil_policy_register(reg, &t), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "policy type \"x\": create, evaluate and destroy are required");
    t = code_type();
    ck_assert_int_eq(vigil_policy_register(NULL, &t), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "policy type: the registry is NULL");
    ck_assert_int_eq(payload_freed, 7);
    ck_assert_int_eq(vigil_policy_register(reg, NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "policy type: the type is NULL");
    ck_assert_int_eq(vigil_policy_registry_new(NULL), VIGIL_EINVAL);
    vigil_policy_registry_free(reg);
    vigil_policy_registry_free(NULL);
    ck_assert_int_eq(payload_freed, 8);
}
END_TEST

/* How much history each series needs: the longest window + for of the rules
 * selecting it (code policies: `history`, 1 h by default); none for change
 * and absent rules, nor for series no rule selects. The generation moves
 * with every change of the rule set. */
static int64_t watch_of(vigil_engine *e, const char *name, const char *k, const char *v)
{
    vigil_tag t = {k, v};
    vigil_metric m = {name, 0, 0, k ? &t : NULL, k ? 1 : 0, NULL};
    int64_t h = -1;
    ck_assert_int_eq(vigil_engine_watch(e, &m, &h), VIGIL_OK);
    return h;
}

START_TEST(watch_says_which_series_need_history)
{
    vigil_policy_registry *types = code_registry();
    SETUP("watch.db");
    g_types = NULL;
    ck_assert_uint_eq(vigil_engine_generation(e), 0);
    ck_assert_int_eq(watch_of(e, "cpu", "host", "a"), 0);
    load_ok(e,
            "policies:\n"
            "  - {name: t1, kind: threshold, metric: cpu, match: {host: a}, window: 5m,\n"
            "     for: 2m, op: \">\", threshold: 1, action: x}\n"
            "  - {name: t2, kind: threshold, metric: cpu, match: {host: \"b*\"}, window: 1m,\n"
            "     op: \">\", threshold: 1, action: x}\n"
            "  - {name: t3, kind: anomaly, metric: cpu, window: 30s, sigma: 3, action: x}\n"
            "  - {name: ch, kind: change, metric: disk, window: 10m, op: \">\", threshold: 1,\n"
            "     action: x}\n"
            "  - {name: ab, kind: absent, metric: beat, for: 1m, action: x}\n"
            "  - {name: de, kind: desired, metric: reps, window: 2m, aggregate: min, op: \"<\",\n"
            "     field: replicas, target: t, action: x}\n"
            "  - {name: c1, kind: error_rate, metric: err, action: x, limit: 1}\n"
            "  - {name: c2, kind: error_rate, metric: err2, history: 10m, action: x, limit: 1}\n");
    uint64_t g1 = vigil_engine_generation(e);
    ck_assert_uint_gt(g1, 0);
    ck_assert_int_eq(watch_of(e, "cpu", "host", "a"), 7 * 60000); /* t1 over t3 */
    ck_assert_int_eq(watch_of(e, "cpu", "host", "b7"), 60000);    /* t2 over t3 */
    ck_assert_int_eq(watch_of(e, "cpu", "host", "c"), 30000);     /* t3 only */
    ck_assert_int_eq(watch_of(e, "cpu", NULL, NULL), 30000);
    ck_assert_int_eq(watch_of(e, "disk", "host", "a"), 0); /* change keeps its own */
    ck_assert_int_eq(watch_of(e, "beat", "host", "a"), 0);
    ck_assert_int_eq(watch_of(e, "reps", "svc", "a"), 120000);
    ck_assert_int_eq(watch_of(e, "err", "svc", "a"), 3600000); /* undeclared: 1 h */
    ck_assert_int_eq(watch_of(e, "err2", "svc", "a"), 600000);
    ck_assert_int_eq(watch_of(e, "mem", "host", "a"), 0);
    /* a failed load changes nothing, a replace moves the generation */
    ck_assert_int_eq(load_yaml(e, "policies:\n  - {name: t1, kind: threshold, metric: m,\n"
                                  "     op: \">\", threshold: 1, action: x}\n"),
                     VIGIL_EEXISTS);
    ck_assert_uint_eq(vigil_engine_generation(e), g1);
    vigil_config *c = NULL;
    const char *y = "policies:\n  - {name: t9, kind: threshold, metric: mem, window: 3m,\n"
                    "     op: \">\", threshold: 1, action: x}\n";
    ck_assert_int_eq(vigil_config_load_string(&c, y, strlen(y), "r.yaml", NULL), VIGIL_OK);
    ck_assert_int_eq(
        vigil_engine_replace(e, vigil_config_node_get(vigil_config_root(c, 0), "policies"), NULL,
                             NULL, NULL),
        VIGIL_OK);
    vigil_config_free(c);
    ck_assert_uint_gt(vigil_engine_generation(e), g1);
    ck_assert_int_eq(watch_of(e, "cpu", "host", "a"), 0);
    ck_assert_int_eq(watch_of(e, "mem", "host", "a"), 180000);
    /* bad arguments */
    vigil_metric m = {"mem", 0, 0, NULL, 0, NULL};
    int64_t h = 5;
    ck_assert_int_eq(vigil_engine_watch(NULL, &m, &h), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "engine_watch: NULL argument");
    ck_assert_int_eq(h, 0);
    ck_assert_int_eq(vigil_engine_watch(e, NULL, &h), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_engine_watch(e, &m, NULL), VIGIL_EINVAL);
    m.ntags = 1;
    ck_assert_int_eq(vigil_engine_watch(e, &m, &h), VIGIL_EINVAL);
    ck_assert_uint_eq(vigil_engine_generation(NULL), 0);
    TEARDOWN();
    /* `history` belongs to code policies, and is a positive duration */
    g_types = types;
    bad_rule("policies:\n  - {name: t, kind: threshold, metric: m, op: \">\", threshold: 1,\n"
             "     action: x, history: 5m}\n",
             VIGIL_EUNKNOWNKEY, "history");
    bad_rule("policies:\n  - {name: c, kind: error_rate, metric: m, action: x, limit: 1,\n"
             "     history: 0s}\n",
             VIGIL_ERANGE, "expected a duration above 0");
    g_types = NULL;
    vigil_policy_registry_free(types);
}
END_TEST

START_TEST(code_policy_errors_are_counted)
{
    payload_freed = 0;
    vigil_policy_registry *types = code_registry();
    SETUP("code.db");
    g_types = NULL;
    load_ok(e, "policies:\n"
               "  - {name: code, kind: error_rate, metric: error_rate, action: scale_up,\n"
               "     limit: 0.05}\n"
               "  - {name: plain, kind: threshold, metric: error_rate, op: \"<\", threshold: 0,\n"
               "     action: alert, target: neg}\n");
    ck_assert_int_eq(load_yaml(e, "policies:\n  - {name: c2, kind: error_rate, metric: e,\n"
                                  "     action: a, limit: x}\n"),
                     VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE, "p.yaml:3:24: policies[0].limit");
    ck_assert_int_eq(load_yaml(e, "policies:\n  - {name: c2, kind: error_rate, metric: e,\n"
                                  "     action: a, limt: 1}\n"),
                     VIGIL_EUNKNOWNKEY);
    /* the code policy fails on a negative value; the other policy still runs */
    feed(e, &R, "error_rate", -1, "service=api");
    ck_assert_uint_eq(stats(e).policy_errors, 1);
    expect_kinds(&R, "fired");
    ck_assert_str_eq(R.req[0], "alert neg");
    R.now += 1000;
    feed(e, &R, "error_rate", 0.5, "service=api");
    ck_assert_uint_eq(R.nr, 1); /* mean over 5 m is (−1 + 0.5) / 2 */
    R.now += 1000;
    feed(e, &R, "error_rate", 0.9, "service=api"); /* mean 0.133 */
    ck_assert_uint_eq(R.nr, 2);
    ck_assert_str_eq(R.req[1], "scale_up api");
    ck_assert_ptr_nonnull(strstr(R.dec[2], "mean error rate too high"));
    /* a code policy naming a tag the metric lacks: logged and counted, no request */
    R.now += 1000;
    feed(e, &R, "error_rate", 0.9, "region=eu");
    ck_assert_uint_eq(R.nr, 2);
    ck_assert_uint_eq(stats(e).template_errors, 1);
    TEARDOWN();
    /* the engine never frees the payloads of its types: the registry does */
    ck_assert_int_eq(payload_freed, 0);
    vigil_policy_registry_free(types);
    ck_assert_int_eq(payload_freed, 1);
    /* an engine without the registry does not know the kind */
    e = new_engine(st = open_store("code2.db"), &R);
    ck_assert_int_eq(load_yaml(e, "policies:\n  - {name: c, kind: error_rate, metric: e, "
                                  "action: a}\n"),
                     VIGIL_EUNSUPPORTED);
    vt_assert_error(VIGIL_EUNSUPPORTED, "p.yaml:2:21: policies[0].kind: unknown kind "
                                        "\"error_rate\"");
    TEARDOWN();
}
END_TEST

/* ---- aggregate callback, replay, bad arguments ------------------------------------ */

static int fixed_agg(void *payload, const char *key, vigil_window_agg agg, int64_t dur, int64_t now,
                     double *out)
{
    (void)key;
    (void)dur;
    (void)now;
    if (agg != VIGIL_WINDOW_MEAN)
        return VIGIL_ENOTFOUND;
    *out = *(double *)payload;
    return VIGIL_OK;
}

/* The engine's own windows (no aggregate callback) hold only the series a
 * rule reads the history of: a code policy asking for another series finds
 * it when a rule watches it, not otherwise. */
static int probe_rc[2];
static int probe_create(void **state, const vigil_config_node *rule, void *payload)
{
    (void)rule;
    (void)payload;
    *state = NULL;
    return VIGIL_OK;
}
static int probe_eval(void *state, const vigil_metric *m, vigil_policy_ctx *ctx,
                      vigil_policy_verdict *out)
{
    (void)state;
    (void)m;
    double v;
    probe_rc[0] = vigil_policy_ctx_aggregate(ctx, "m{host=\"a\"}", VIGIL_WINDOW_LAST, 60000, &v);
    probe_rc[1] = vigil_policy_ctx_aggregate(ctx, "m{host=\"b\"}", VIGIL_WINDOW_LAST, 60000, &v);
    out->active = 0;
    return VIGIL_OK;
}
static void probe_destroy(void *state)
{
    (void)state;
}

START_TEST(own_windows_only_for_watched_series)
{
    vigil_policy_registry *reg = NULL;
    ck_assert_int_eq(vigil_policy_registry_new(&reg), VIGIL_OK);
    vigil_policy_type t = {.version = VIGIL_POLICY_TYPE_VERSION,
                           .name = "probe",
                           .create = probe_create,
                           .evaluate = probe_eval,
                           .destroy = probe_destroy};
    ck_assert_int_eq(vigil_policy_register(reg, &t), VIGIL_OK);
    g_types = reg;
    SETUP("own.db");
    g_types = NULL;
    load_ok(e, "policies:\n"
               "  - {name: t, kind: threshold, metric: m, match: {host: a}, window: 1m,\n"
               "     op: \">\", threshold: 100, action: x}\n"
               "  - {name: p, kind: probe, metric: z, history: 1m, action: x}\n");
    feed(e, &R, "m", 1, "host=a");
    feed(e, &R, "m", 2, "host=b");
    feed(e, &R, "z", 0, "host=a");
    ck_assert_int_eq(probe_rc[0], VIGIL_OK);
    ck_assert_int_eq(probe_rc[1], VIGIL_ENOTFOUND);
    TEARDOWN();
    vigil_policy_registry_free(reg);
}
END_TEST

START_TEST(aggregate_callback_is_used)
{
    rec R;
    memset(&R, 0, sizeof(R));
    R.now = T0;
    double mean = 0.2;
    vigil_store *st = open_store("agg.db");
    vigil_engine_options o;
    ck_assert_int_eq(vigil_engine_options_init(&o, VIGIL_ENGINE_OPTIONS_VERSION), VIGIL_OK);
    o.store = st;
    o.clock = clk;
    o.clock_payload = &R;
    o.on_decision = on_dec;
    o.decision_payload = &R;
    o.aggregate = fixed_agg;
    o.aggregate_payload = &mean;
    o.logger.min_level = VIGIL_LOG_OFF;
    vigil_engine *e = NULL;
    ck_assert_int_eq(vigil_engine_new(&e, &o), VIGIL_OK);
    /* windows beyond 1 h are fine: the callback decides */
    load_ok(e, "policies:\n  - {name: p, kind: threshold, metric: m, window: 2h, aggregate: mean,"
               "\n     op: \">\", threshold: 0.1, action: a}\n");
    feed(e, &R, "m", 0, NULL);
    expect_kinds(&R, "fired");
    vigil_engine_free(e);
    vigil_store_close(st);

    ck_assert_int_eq(vigil_engine_options_init(NULL, 1), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_engine_options_init(&o, 7), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "engine options: version 7 is not supported");
    ck_assert_int_eq(vigil_engine_new(NULL, &o), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_engine_new(&e, NULL), VIGIL_EINVAL);
    o.store = NULL;
    ck_assert_int_eq(vigil_engine_new(&e, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "options.store is required");
    ck_assert_int_eq(vigil_engine_ingest(NULL, NULL), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_engine_tick(NULL, 0), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_engine_load(NULL, NULL), VIGIL_EINVAL);
    vigil_engine_free(NULL);
}
END_TEST

static void replay_once(const char *db, vigil_batch **bs, size_t n, vigil_buf *out)
{
    rec R;
    memset(&R, 0, sizeof(R));
    R.now = 1; /* the real clock is ignored by replay */
    vigil_store *st = open_store(db);
    vigil_engine *e = new_engine(st, &R);
    load_ok(e, HIGH_ERR);
    load_ok(e, ABSENT);
    ck_assert_int_eq(vigil_engine_replay(e, (const vigil_batch *const *)bs, n, 1000), VIGIL_OK);
    ck_assert_int_eq(vigil_engine_decisions_json(e, 0, 0, out), VIGIL_OK);
    vigil_engine_free(e);
    vigil_store_close(st);
}

START_TEST(replay_is_deterministic)
{
    vigil_batch *bs[40];
    for (int i = 0; i < 40; i++) {
        ck_assert_int_eq(vigil_batch_new(&bs[i]), VIGIL_OK);
        ck_assert_int_eq(vigil_batch_set_agent(bs[i], "h1"), VIGIL_OK);
        vigil_tag t[] = {{"service", "api"}};
        vigil_metric m = {"error_rate", (i / 5) % 2 ? 0.1 : 0.01, T0 + i * 2000LL, t, 1, NULL};
        ck_assert_int_eq(vigil_batch_add(bs[i], &m), VIGIL_OK);
        if (i < 5) {
            vigil_tag h[] = {{"host", "h1"}};
            vigil_metric hb = {"vigil_agent_heartbeat", 1, T0 + i * 2000LL, h, 1, NULL};
            ck_assert_int_eq(vigil_batch_add(bs[i], &hb), VIGIL_OK);
        }
    }
    vigil_buf a = VIGIL_BUF_INIT, b = VIGIL_BUF_INIT;
    replay_once("replay1.db", bs, 40, &a);
    replay_once("replay2.db", bs, 40, &b);
    ck_assert_str_eq(a.ptr, b.ptr);
    ck_assert_ptr_nonnull(strstr(a.ptr, "\"decision\":\"fired\""));
    ck_assert_ptr_nonnull(strstr(a.ptr, "series gone"));
    ck_assert_ptr_nonnull(strstr(a.ptr, "\"decision\":\"resolved\""));
    vigil_buf_dispose(&a);
    vigil_buf_dispose(&b);
    for (int i = 0; i < 40; i++)
        vigil_batch_free(bs[i]);
}
END_TEST

START_TEST(replace_resolves_code_policies)
{
    vigil_policy_registry *types = code_registry();
    SETUP("replace_code.db");
    g_types = NULL;
    const char *y = "policies:\n"
                    "  - {name: code, kind: error_rate, metric: error_rate, action: scale_up,\n"
                    "     limit: 0.05}\n";
    vigil_engine_reload_result res = VIGIL_ENGINE_RELOAD_RESULT_INIT;
    ck_assert_int_eq(replace_with(e, y, NULL, &res), VIGIL_OK);
    ck_assert_uint_eq(res.added, 1);
    ck_assert_int_eq(replace_with(e, y, NULL, &res), VIGIL_OK);
    ck_assert_uint_eq(res.kept, 1);
    ck_assert_uint_eq(res.added + res.changed + res.removed, 0);
    ck_assert_int_eq(replace_with(e,
                                  "policies:\n"
                                  "  - {name: code, kind: error_rate, metric: error_rate,\n"
                                  "     action: scale_up, limit: 0.5}\n",
                                  NULL, &res),
                     VIGIL_OK);
    ck_assert_uint_eq(res.changed, 1);
    /* a code policy's create fails: nothing changes */
    ck_assert_int_eq(replace_with(e,
                                  "policies:\n"
                                  "  - {name: code, kind: error_rate, metric: error_rate,\n"
                                  "     action: scale_up, limit: much}\n",
                                  NULL, &res),
                     VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE, "inline.yaml:3:31: policies[0].limit: expected a number");
    ck_assert_uint_eq(stats(e).policies, 1);
    TEARDOWN();
    vigil_policy_registry_free(types);
}
END_TEST

/* ---- out of memory ------------------------------------------------------------------- */

typedef struct oom_ctx {
    vigil_store *st;
} oom_ctx;

static int oom_op(void *p)
{
    oom_ctx *c = p;
    vigil_engine_options o = VIGIL_ENGINE_OPTIONS_INIT;
    o.store = c->st;
    o.logger.min_level = VIGIL_LOG_OFF;
    vigil_engine *e = NULL;
    int rc = vigil_engine_new(&e, &o);
    if (rc < 0)
        return rc;
    vigil_config *cfg = NULL;
    const char *y = "policies:\n"
                    "  - {name: a, kind: threshold, metric: m, match: {service: api, h: \"*\"},\n"
                    "     op: \">\", threshold: 1, action: x, target: \"{{tags.h}}\",\n"
                    "     params: {p: \"{{target}}\"}, escalate: [y], flap: {transitions: 2},\n"
                    "     budget: {max_actions: 2}}\n"
                    "  - {name: b, kind: absent, metric: m, for: 1m, action: x}\n"
                    "  - {name: c, kind: anomaly, metric: n, sigma: 2, action: x}\n";
    rc = vigil_config_load_string(&cfg, y, strlen(y), "oom.yaml", NULL);
    if (rc == VIGIL_OK)
        rc = vigil_engine_load(e, vigil_config_node_get(vigil_config_root(cfg, 0), "policies"));
    vigil_config_free(cfg);
    vigil_engine_free(e);
    return rc;
}

START_TEST(oom_sweep_on_load)
{
    vt_alloc_install();
    oom_ctx c;
    /* state to restore, so the sweep also covers restoring */
    rec R;
    memset(&R, 0, sizeof(R));
    R.now = T0;
    c.st = open_store("oom.db");
    vigil_engine *e = new_engine(c.st, &R);
    load_ok(e, "policies:\n  - {name: a, kind: threshold, metric: m, op: \">\", threshold: 1,\n"
               "     action: x, target: t, budget: {max_actions: 2}, flap: {transitions: 2}}\n");
    feed(e, &R, "m", 2, NULL);
    vigil_engine_free(e);
    long n = vt_oom_sweep(oom_op, NULL, &c, 0);
    ck_assert_int_gt(n, 10);
    vigil_store_close(c.st);
}
END_TEST

static int oom_replace_op(void *p)
{
    oom_ctx *c = p;
    vigil_engine_options o = VIGIL_ENGINE_OPTIONS_INIT;
    o.store = c->st;
    o.logger.min_level = VIGIL_LOG_OFF;
    vigil_engine *e = NULL;
    int rc = vigil_engine_new(&e, &o);
    if (rc < 0)
        return rc;
    vigil_config *c1 = NULL, *c2 = NULL;
    const char *y1 = "policies:\n"
                     "  - {name: k, kind: threshold, metric: m, match: {service: api},\n"
                     "     op: \">\", threshold: 1, action: x, target: t}\n"
                     "  - {name: ch, kind: absent, metric: m, for: 1m, action: x}\n"
                     "  - {name: gone, kind: anomaly, metric: n, sigma: 2, action: x}\n";
    const char *y2 =
        "policies:\n"
        "  - {name: a, kind: threshold, metric: m, op: \">\", threshold: 1,\n"
        "     action: x, target: t, budget: {max_actions: 2}, flap: {transitions: 2}}\n"
        "  - {name: ch, kind: absent, metric: m, for: 2m, action: x}\n"
        "  - {name: k, kind: threshold, metric: m, match: {service: api},\n"
        "     op: \">\", threshold: 1, action: x, target: t}\n"
        "  - {name: d, kind: change, metric: n, threshold: 3, action: x,\n"
        "     match: {h: \"*\", service: web}, target: \"{{tags.h}}\"}\n";
    rc = vigil_config_load_string(&c1, y1, strlen(y1), "one.yaml", NULL);
    if (rc == VIGIL_OK)
        rc = vigil_config_load_string(&c2, y2, strlen(y2), "two.yaml", NULL);
    if (rc == VIGIL_OK)
        rc = vigil_engine_load(e, vigil_config_node_get(vigil_config_root(c1, 0), "policies"));
    if (rc == VIGIL_OK) {
        vigil_engine_reload_result res = VIGIL_ENGINE_RELOAD_RESULT_INIT;
        rc = vigil_engine_replace(e, vigil_config_node_get(vigil_config_root(c2, 0), "policies"),
                                  NULL, NULL, &res);
        vigil_engine_stats s = VIGIL_ENGINE_STATS_INIT;
        vigil_engine_stats_get(e, &s);
        /* all or nothing: either the new set or the old one */
        if (rc == VIGIL_OK && (res.added != 2 || res.changed != 1 || res.kept != 1 ||
                               res.removed != 1 || s.policies != 4))
            rc = VIGIL_ERROR;
        if (rc == VIGIL_ENOMEM && s.policies != 3)
            rc = VIGIL_ERROR;
    }
    vigil_config_free(c1);
    vigil_config_free(c2);
    vigil_engine_free(e);
    return rc;
}

START_TEST(oom_sweep_on_replace)
{
    vt_alloc_install();
    oom_ctx c;
    rec R;
    memset(&R, 0, sizeof(R));
    R.now = T0;
    c.st = open_store("oom_replace.db");
    vigil_engine *e = new_engine(c.st, &R);
    load_ok(e, "policies:\n  - {name: a, kind: threshold, metric: m, op: \">\", threshold: 1,\n"
               "     action: x, target: t, budget: {max_actions: 2}, flap: {transitions: 2}}\n");
    feed(e, &R, "m", 2, NULL); /* state of "a" to restore when it arrives by replace */
    vigil_engine_free(e);
    long n = vt_oom_sweep(oom_replace_op, NULL, &c, 0);
    ck_assert_int_gt(n, 10);
    vigil_store_close(c.st);
}
END_TEST

/* ---- threads ------------------------------------------------------------------------ */

typedef struct thr_ctx {
    vigil_engine *e;
    int which;
} thr_ctx;

static void *thr_main(void *p)
{
    thr_ctx *c = p;
    for (int i = 0; i < 200; i++) {
        if (c->which == 0) {
            vigil_batch *b = NULL;
            vigil_batch_new(&b);
            vigil_tag t[] = {{"service", "api"}};
            vigil_metric m = {"error_rate", i % 2 ? 0.5 : 0.0, T0 + i, t, 1, NULL};
            vigil_batch_add(b, &m);
            vigil_engine_ingest(c->e, b);
            vigil_batch_free(b);
        } else if (c->which == 1) {
            vigil_engine_tick(c->e, T0 + i);
        } else {
            vigil_buf out = VIGIL_BUF_INIT;
            vigil_engine_policies_json(c->e, &out);
            vigil_engine_silence_add(c->e, "{\"target\":\"zzz\"}", 0, 10, NULL, NULL, &out);
            vigil_buf_dispose(&out);
        }
    }
    return NULL;
}

START_TEST(concurrent_calls)
{
    SETUP("thr.db");
    load_ok(e, HIGH_ERR);
    pthread_t t[3];
    thr_ctx c[3];
    for (int i = 0; i < 3; i++) {
        c[i].e = e;
        c[i].which = i;
        ck_assert_int_eq(pthread_create(&t[i], NULL, thr_main, &c[i]), 0);
    }
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    ck_assert_uint_eq(stats(e).metrics, 200);
    TEARDOWN();
}
END_TEST

static Suite *policy_suite(void)
{
    Suite *s = suite_create("policy");
    TCase *tc = tcase_create("policy");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, threshold_hysteresis);
    tcase_add_test(tc, decision_log_fields_are_escaped);
    tcase_add_test(tc, for_timing);
    tcase_add_test(tc, cooldown_per_target);
    tcase_add_test(tc, repeat_after_previous_finished);
    tcase_add_test(tc, budget_exhaustion);
    tcase_add_test(tc, flap_damping);
    tcase_add_test(tc, silences);
    tcase_add_test(tc, absent_on_timer);
    tcase_add_test(tc, desired_state);
    tcase_add_test(tc, anomaly_and_change);
    tcase_add_test(tc, templating);
    tcase_add_test(tc, escalation_when_verification_fails);
    tcase_add_test(tc, action_failed_and_statuses);
    tcase_add_test(tc, ineffective_then_retry);
    tcase_add_test(tc, recovered_before_the_result);
    tcase_add_test(tc, samples_answered_by_a_remediation);
    tcase_add_test(tc, ineffective_retry_after_escalations);
    tcase_add_test(tc, remediator_cooldown_defers);
    tcase_add_test(tc, remediator_quarantine_decision);
    tcase_add_test(tc, deferral_persists);
    tcase_add_test(tc, callbacks_may_reenter);
    tcase_add_test(tc, act_within_drops_old_samples);
    tcase_add_test(tc, restart_mid_for);
    tcase_add_test(tc, malformed_rules);
    tcase_add_test(tc, load_dir_sorted_and_all_or_nothing);
    tcase_add_test(tc, replace_keeps_state_of_unchanged_rules);
    tcase_add_test(tc, replace_restores_new_rules_from_the_store);
    tcase_add_test(tc, replace_is_all_or_nothing);
    tcase_add_test(tc, series_caps_and_idle_eviction);
    tcase_add_test(tc, policy_registry_refuses_bad_types);
    tcase_add_test(tc, code_policy_errors_are_counted);
    tcase_add_test(tc, watch_says_which_series_need_history);
    tcase_add_test(tc, replace_resolves_code_policies);
    tcase_add_test(tc, aggregate_callback_is_used);
    tcase_add_test(tc, own_windows_only_for_watched_series);
    tcase_add_test(tc, replay_is_deterministic);
    tcase_add_test(tc, concurrent_calls);
    suite_add_tcase(s, tc);
    TCase *oom = tcase_create("oom");
    tcase_set_timeout(oom, 120);
    tcase_add_test(oom, oom_sweep_on_load);
    tcase_add_test(oom, oom_sweep_on_replace);
    suite_add_tcase(s, oom);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(policy_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
