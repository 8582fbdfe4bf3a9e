/*
 * error_rate_policy - the seed guide's ErrorRatePolicy written as a code
 * policy with the public plug-in interface <vigil/sys/policy.h>: when the mean
 * of `error_rate` over 5 minutes is above 0.05, ask `scale_up` for the
 * series' `service` tag.
 *
 *   error_rate_policy
 *
 * The type is registered on a vigil_policy_registry (never a global) handed
 * to an engine backed by an in-memory store ("sqlite://:memory:"), a rule of
 * that kind is loaded from a YAML snippet, and six minutes of samples are
 * ingested: the error rate of service "checkout" climbs from 1% to 12%. The
 * engine's decision and the request it makes are printed.
 *
 * The plug-in contract (docs/plugins.md) shown end to end: the type's payload
 * (the action to request, and a count of evaluation errors) belongs to the
 * registry, which frees it; a type of another version is refused with
 * VIGIL_EVERSION and its payload freed at once; a bad rule is refused through
 * vigil_error_set_at() (located in the YAML) and a bad sample through
 * vigil_error_set() (the engine logs and counts it).
 *
 * Build against an installed libvigil:
 *   cc -o error_rate_policy error_rate_policy.c $(pkg-config --cflags --libs vigil)
 *
 * Exit status 0 when exactly one scale_up request for "checkout" was made and
 * every check above held, 1 otherwise.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vigil/vigil.h>
#include <vigil/sys/policy.h>

#define T0 1732650000000LL

/* The type's payload: what every rule of the kind shares. */
typedef struct erp_shared {
    const char *action; /* the action to request */
    int freed;
} erp_shared;

static void erp_shared_free(void *payload)
{
    ((erp_shared *)payload)->freed++;
}

typedef struct error_rate_policy {
    double limit;      /* `limit:` of the rule, default 0.05 */
    int64_t window_ms; /* `over:` of the rule, default 5m */
    const erp_shared *shared;
} error_rate_policy;

static const char *const k_keys[] = {"limit", "over", NULL};

static int erp_create(void **state, const vigil_config_node *rule, void *payload)
{
    error_rate_policy *p = calloc(1, sizeof(*p));
    if (!p)
        return vigil_error_set(VIGIL_ENOMEM, NULL);
    p->shared = payload;
    int rc = vigil_config_get_double(&p->limit, rule, "limit", 0.05);
    if (rc == VIGIL_OK)
        rc = vigil_config_get_duration(&p->window_ms, rule, "over", 5 * 60 * 1000);
    if (rc == VIGIL_OK && p->window_ms <= 0)
        rc = vigil_error_set_at(VIGIL_ERANGE, vigil_config_node_get(rule, "over"),
                                "expected a duration above 0");
    if (rc != VIGIL_OK) {
        free(p);
        return rc;
    }
    *state = p;
    return VIGIL_OK;
}

static int erp_evaluate(void *state, const vigil_metric *metric, vigil_policy_ctx *ctx,
                        vigil_policy_verdict *out)
{
    const error_rate_policy *p = state;
    double mean;
    if (!(metric->value >= 0 && metric->value <= 1))
        return vigil_error_set(VIGIL_EVALUE, "error_rate is not a ratio between 0 and 1");
    int rc = vigil_policy_ctx_aggregate(ctx, NULL, VIGIL_WINDOW_MEAN, p->window_ms, &mean);
    if (rc != VIGIL_OK)
        return rc;
    out->value = mean;
    out->active = mean > p->limit;
    if (out->active) {
        out->request.action = p->shared->action;
        out->request.target = "{{tags.service}}"; /* the engine fills it from the series */
        out->request.reason = "mean error_rate over 5m above 0.05";
    }
    return VIGIL_OK;
}

static void erp_destroy(void *state)
{
    free(state);
}

/* The type, with @p shared as its payload. The registry copies the struct. */
static vigil_policy_type error_rate_type(erp_shared *shared)
{
    vigil_policy_type t;
    memset(&t, 0, sizeof(t));
    t.version = VIGIL_POLICY_TYPE_VERSION;
    t.name = "error_rate";
    t.payload = shared;
    t.payload_free = erp_shared_free;
    t.keys = k_keys;
    t.create = erp_create;
    t.evaluate = erp_evaluate;
    t.destroy = erp_destroy;
    return t;
}

static const char k_bad_rule[] = "policies:\n"
                                 "  - {name: broken, kind: error_rate, metric: error_rate,\n"
                                 "     action: scale_up, over: 0s}\n";

static const char k_rules[] = "policies:\n"
                              "  - name: checkout_errors\n"
                              "    kind: error_rate\n"
                              "    metric: error_rate\n"
                              "    match: {service: \"*\"}\n"
                              "    limit: 0.05\n"
                              "    over: 5m\n"
                              "    cooldown: 5m\n";

typedef struct seen {
    int requests;
    int ok;
    int64_t now;
} seen;

static int64_t fake_clock(void *payload)
{
    return ((seen *)payload)->now;
}

static void on_decision(void *payload, const vigil_store_decision *d)
{
    (void)payload;
    printf("decision: %s policy=%s target=%s action=%s id=%s\n  reason: %s\n", d->decision,
           d->policy, d->target ? d->target : "-", d->action ? d->action : "-",
           d->action_id ? d->action_id : "-", d->reason ? d->reason : "");
}

static void on_request(void *payload, const vigil_engine_request *req)
{
    seen *s = payload;
    printf("request: %s target=%s (series %s)\n", req->request->action, req->request->target,
           req->series ? req->series : "-");
    s->requests++;
    s->ok = strcmp(req->request->action, "scale_up") == 0 &&
            strcmp(req->request->target, "checkout") == 0;
}

static int fail(const char *what)
{
    fprintf(stderr, "error_rate_policy: %s: %s\n", what, vigil_error_last()->message);
    return 1;
}

static int load(vigil_engine *engine, vigil_config **cfg, const char *yaml, const char *name)
{
    vigil_config_free(*cfg);
    *cfg = NULL;
    int rc = vigil_config_load_string(cfg, yaml, strlen(yaml), name, NULL);
    return rc ? rc
              : vigil_engine_load(engine,
                                  vigil_config_node_get(vigil_config_root(*cfg, 0), "policies"));
}

int main(void)
{
    vigil_store *store = NULL;
    vigil_policy_registry *types = NULL;
    vigil_engine *engine = NULL;
    vigil_config *cfg = NULL;
    vigil_batch *batch = NULL;
    erp_shared shared = {"scale_up", 0}, stale = {"scale_up", 0};
    seen s = {0, 0, T0};
    int status = 1, rc;

    if (vigil_store_open(&store, "sqlite://:memory:", NULL) != VIGIL_OK)
        return fail("store");
    if (vigil_policy_registry_new(&types) != VIGIL_OK) {
        status = fail("registry");
        goto out;
    }
    /* a type of another version is refused, and its payload freed at once */
    vigil_policy_type t = error_rate_type(&stale);
    t.version = VIGIL_POLICY_TYPE_VERSION + 1;
    rc = vigil_policy_register(types, &t);
    printf("refused: %s\n", vigil_error_last()->message);
    if (rc != VIGIL_EVERSION || stale.freed != 1) {
        fprintf(stderr, "error_rate_policy: a bad version gave %s, payload freed %d times\n",
                vigil_strerror(rc), stale.freed);
        goto out;
    }
    t = error_rate_type(&shared);
    if (vigil_policy_register(types, &t) != VIGIL_OK) {
        status = fail("register");
        goto out;
    }
    vigil_engine_options o = VIGIL_ENGINE_OPTIONS_INIT;
    o.store = store;
    o.policy_types = types; /* borrowed: it outlives the engine */
    o.clock = fake_clock;   /* the samples below are from T0 on */
    o.clock_payload = &s;
    o.on_decision = on_decision;
    o.on_request = on_request;
    o.request_payload = &s;
    o.logger.min_level = VIGIL_LOG_OFF; /* the bad sample below would log an error */
    if (vigil_engine_new(&engine, &o) != VIGIL_OK) {
        status = fail("engine");
        goto out;
    }
    /* the type's own located error */
    rc = load(engine, &cfg, k_bad_rule, "bad.yaml");
    printf("refused: %s\n", vigil_error_last()->message);
    if (rc != VIGIL_ERANGE || vigil_error_last()->line != 3) {
        fprintf(stderr, "error_rate_policy: a bad rule gave %s\n", vigil_strerror(rc));
        goto out;
    }
    if (load(engine, &cfg, k_rules, "rules.yaml") != VIGIL_OK) {
        status = fail("rules");
        goto out;
    }
    if (vigil_batch_new(&batch) != VIGIL_OK) {
        status = fail("batch");
        goto out;
    }
    /* one sample every 30 s for 6 minutes: 1% ... rising to 12%; one bad sample
     * (evaluate fails: the engine counts it and goes on) */
    for (int i = 0; i <= 12; i++) {
        vigil_tag tags[] = {{"service", "checkout"}};
        vigil_metric m = {
            "error_rate", 0.01 + 0.01 * (i > 2 ? i - 2 : 0), T0 + i * 30000LL, tags, 1, NULL};
        if (i == 1)
            m.value = -1;
        s.now = m.ts_ms;
        vigil_batch_clear(batch);
        if (vigil_batch_add(batch, &m) != VIGIL_OK ||
            vigil_engine_ingest(engine, batch) != VIGIL_OK) {
            status = fail("ingest");
            goto out;
        }
    }
    vigil_engine_stats st = VIGIL_ENGINE_STATS_INIT;
    if (vigil_engine_stats_get(engine, &st) != VIGIL_OK || st.policy_errors != 1) {
        fprintf(stderr, "error_rate_policy: expected one policy error\n");
        goto out;
    }
    status = s.requests == 1 && s.ok ? 0 : 1;
    if (status)
        fprintf(stderr, "error_rate_policy: expected one scale_up for checkout, got %d\n",
                s.requests);
out:
    vigil_batch_free(batch);
    vigil_config_free(cfg);
    vigil_engine_free(engine);
    vigil_policy_registry_free(types);
    vigil_store_close(store);
    if (status == 0 && shared.freed != 1) {
        fprintf(stderr, "error_rate_policy: the registry did not free the payload\n");
        status = 1;
    }
    return status;
}
