/*
 * error_rate_policy - the seed guide's ErrorRatePolicy written as a code
 * policy with the public plug-in interface <vigil/sys/policy.h>: when the mean
 * of `error_rate` over 5 minutes is above 0.05, ask `scale_up` for the
 * series' `service` tag.
 *
 *   error_rate_policy
 *
 * The type is registered on an engine (never a global) backed by an in-memory
 * store ("sqlite://:memory:"), a rule of that kind is loaded from a YAML
 * snippet, and six minutes of samples are ingested: the error rate of
 * service "checkout" climbs from 1% to 12%. The engine's decision and the
 * request it makes are printed.
 *
 * Build against an installed libvigil:
 *   cc -o error_rate_policy error_rate_policy.c $(pkg-config --cflags --libs vigil)
 *
 * Exit status 0 when exactly one scale_up request for "checkout" was made, 1
 * otherwise.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vigil/vigil.h>
#include <vigil/sys/policy.h>

#define T0 1732650000000LL

typedef struct error_rate_policy {
    double limit;      /* `limit:` of the rule, default 0.05 */
    int64_t window_ms; /* `over:` of the rule, default 5m */
} error_rate_policy;

static const char *const k_keys[] = {"limit", "over", NULL};

static int erp_create(void **state, const vigil_config_node *rule, void *payload)
{
    (void)payload;
    error_rate_policy *p = calloc(1, sizeof(*p));
    if (!p)
        return VIGIL_ENOMEM;
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
    (void)metric;
    int rc = vigil_policy_ctx_aggregate(ctx, NULL, VIGIL_WINDOW_MEAN, p->window_ms, &mean);
    if (rc != VIGIL_OK)
        return rc;
    out->value = mean;
    out->active = mean > p->limit;
    if (out->active) {
        out->request.action = "scale_up";
        out->request.target = "{{tags.service}}"; /* the engine fills it from the series */
        out->request.reason = "mean error_rate over 5m above 0.05";
    }
    return VIGIL_OK;
}

static void erp_destroy(void *state)
{
    free(state);
}

static const vigil_policy_type k_error_rate_type = {
    VIGIL_POLICY_TYPE_VERSION, k_keys, erp_create, erp_evaluate, erp_destroy, NULL};

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

int main(void)
{
    vigil_store *store = NULL;
    vigil_engine *engine = NULL;
    vigil_config *cfg = NULL;
    vigil_batch *batch = NULL;
    seen s = {0, 0, T0};
    int status = 1;

    if (vigil_store_open(&store, "sqlite://:memory:", NULL) != VIGIL_OK)
        return fail("store");
    vigil_engine_options o = VIGIL_ENGINE_OPTIONS_INIT;
    o.store = store;
    o.clock = fake_clock; /* the samples below are from T0 on */
    o.clock_payload = &s;
    o.on_decision = on_decision;
    o.on_request = on_request;
    o.request_payload = &s;
    o.logger.min_level = VIGIL_LOG_WARN;
    if (vigil_engine_new(&engine, &o) != VIGIL_OK) {
        status = fail("engine");
        goto out;
    }
    if (vigil_engine_register_type(engine, "error_rate", &k_error_rate_type, NULL) != VIGIL_OK) {
        status = fail("register");
        goto out;
    }
    if (vigil_config_load_string(&cfg, k_rules, strlen(k_rules), "rules.yaml", NULL) != VIGIL_OK ||
        vigil_engine_load(engine, vigil_config_node_get(vigil_config_root(cfg, 0), "policies")) !=
            VIGIL_OK) {
        status = fail("rules");
        goto out;
    }
    if (vigil_batch_new(&batch) != VIGIL_OK) {
        status = fail("batch");
        goto out;
    }
    /* one sample every 30 s for 6 minutes: 1% ... rising to 12% */
    for (int i = 0; i <= 12; i++) {
        vigil_tag tags[] = {{"service", "checkout"}};
        vigil_metric m = {
            "error_rate", 0.01 + 0.01 * (i > 2 ? i - 2 : 0), T0 + i * 30000LL, tags, 1, NULL};
        s.now = m.ts_ms;
        vigil_batch_clear(batch);
        if (vigil_batch_add(batch, &m) != VIGIL_OK ||
            vigil_engine_ingest(engine, batch) != VIGIL_OK) {
            status = fail("ingest");
            goto out;
        }
    }
    status = s.requests == 1 && s.ok ? 0 : 1;
    if (status)
        fprintf(stderr, "error_rate_policy: expected one scale_up for checkout, got %d\n",
                s.requests);
out:
    vigil_batch_free(batch);
    vigil_config_free(cfg);
    vigil_engine_free(engine);
    vigil_store_close(store);
    return status;
}
