/* The hub's actions across a restart (vigil_hub_start()): no request is
 * lost when the hub dies between a request and its result, and the policy
 * engine never waits forever on one.
 *
 * - A request left "pending" in the ledger is redelivered with its id (the
 *   remediator's exactly-once ledger answers a known id with its recorded
 *   result, a running one when it finishes), with a `redelivered` decision;
 *   one requested longer than act_within ago is closed as failed, reason
 *   "expired_after_restart" (the engine records `action_failed`).
 * - A request the engine awaits whose ledger record is final (the process
 *   died between the two) is given that result; one the ledger never
 *   recorded (died before it) fails, reason "not_sent_before_restart".
 * - Requests waiting for an approval are left to the remediator, which
 *   sends their result when they are approved, denied or expire. */
#include "hub/hub_int.h"
#include "internal/json.h"
#include "internal/policy.h"
#include "internal/store.h"

#include <stdio.h>
#include <string.h>

#define COMPONENT "hub"

typedef struct pend_list {
    vigil_store_action **v;
    size_t n, cap;
    int oom;
} pend_list;

static int collect_pending(const vigil_store_action *a, void *payload)
{
    pend_list *l = payload;
    if (vigil__array_grow((void **)&l->v, &l->cap, l->n + 1, sizeof(*l->v)) < 0 ||
        vigil__store_action_dup(&l->v[l->n], a)) {
        l->oom = 1;
        return 1;
    }
    l->n++;
    return 0;
}

static void pend_free(pend_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        vigil_store_action_free(l->v[i]);
    vigil__free(l->v);
}

static int is_pending(const pend_list *l, const char *id)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i]->id, id) == 0)
            return 1;
    return 0;
}

static void log_error(vigil_hub *hub, const char *msg, const char *id, int rc)
{
    vigil_buf m = VIGIL_BUF_INIT;
    if (vigil__logfmt_value(&m, vigil_error_last()->message) == VIGIL_OK)
        vigil__log(&hub->logger, VIGIL_LOG_ERROR, COMPONENT, msg, "id=%s code=%d error=%s",
                   id ? id : "", rc, m.ptr);
    vigil_buf_dispose(&m);
}

/* A FAILED result with `reason` through vigil_hub_action_result(): the
 * ledger, the engine (action_failed), the "action" event. */
static void close_failed(vigil_hub *hub, const char *id, const char *reason, const char *msg)
{
    const char *v[] = {reason};
    vigil__prom_add(hub->m_dispatch_failed, v, 1);
    vigil_action_result r = VIGIL__ACTION_RESULT_EMPTY;
    r.status = VIGIL_ACTION_FAILED;
    int rc = vigil_action_result_set_id(&r, id);
    if (!rc)
        rc = vigil_action_result_set_reason(&r, reason);
    if (!rc)
        rc = vigil_action_result_set_output(&r, msg, strlen(msg));
    if (!rc)
        rc = vigil_hub_action_result(hub, &r, 0, NULL);
    if (rc)
        log_error(hub, "action not closed after restart", id, rc);
    vigil_action_result_clear(&r);
}

/* ---- requests the engine awaits ------------------------------------------------- */

/* Statuses of the hub's ledger after which a result is awaited no more. */
static int ledger_final(const char *s)
{
    return strcmp(s, "pending") != 0 && strcmp(s, "pending_approval") != 0 &&
           strcmp(s, "approved") != 0 && strcmp(s, "running") != 0;
}

/* Settles an id the engine awaits that is not pending in the ledger.
 * Returns 1 when the engine was given a result. */
static int settle_awaited(vigil_hub *hub, const char *id)
{
    vigil_store_action *a = NULL;
    vigil_action_result r = VIGIL__ACTION_RESULT_EMPTY;
    int rc = vigil_store_action_get(hub->store, id, &a);
    int given = 0;
    if (rc == VIGIL_ENOTFOUND) {
        static const char msg[] =
            "the hub stopped after the policy asked for this action and before it was recorded "
            "in the ledger: it was never sent";
        r.status = VIGIL_ACTION_FAILED;
        rc = vigil_action_result_set_reason(&r, "not_sent_before_restart");
        if (!rc)
            rc = vigil_action_result_set_output(&r, msg, sizeof(msg) - 1);
        given = 1;
        vigil__log(&hub->logger, VIGIL_LOG_WARN, COMPONENT,
                   "a request of a policy was never sent; closed as failed",
                   "id=%s reason=not_sent_before_restart", id);
    } else if (!rc && ledger_final(a->status)) {
        /* recorded, but the process died before the engine heard of it */
        vigil_action_status st;
        if (vigil_action_status_parse(&st, a->status) == VIGIL_OK) {
            r.status = st;
            rc = vigil_action_result_set_reason(&r, a->result_reason);
        } else {
            r.status = VIGIL_ACTION_FAILED;
            rc = vigil_action_result_set_reason(&r, a->status);
        }
        if (!rc && a->output)
            rc = vigil_action_result_set_output(&r, a->output, strlen(a->output));
        r.duration_ms = a->duration_ms > 0 ? a->duration_ms : 0;
        given = 1;
    }
    if (!rc && given)
        rc = vigil_action_result_set_id(&r, id);
    if (!rc && given) {
        rc = vigil_engine_action_result(hub->engine, &r);
        if (rc && rc != VIGIL_ENOTFOUND)
            vigil__hub_engine_error(hub, "action_result", rc);
        rc = VIGIL_OK;
    }
    if (rc)
        log_error(hub, "awaited action not settled after restart", id, rc);
    vigil_action_result_clear(&r);
    vigil_store_action_free(a);
    return given && !rc;
}

/* ---- requests pending in the ledger ----------------------------------------------- */

static int params_of(const char *json, vigil_action_param **out, size_t *n, cJSON **doc)
{
    *out = NULL;
    *n = 0;
    *doc = NULL;
    if (!json || !*json)
        return VIGIL_OK;
    vigil__json_init();
    cJSON *j = cJSON_Parse(json);
    if (!j)
        return vigil__error_set(VIGIL_EINVAL, "the ledger's params are not JSON");
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return vigil__error_set(VIGIL_EINVAL, "the ledger's params are not a JSON object");
    }
    size_t k = (size_t)cJSON_GetArraySize(j);
    vigil_action_param *p = k ? vigil__calloc(k, sizeof(*p)) : NULL;
    if (k && !p) {
        cJSON_Delete(j);
        return vigil__error_oom();
    }
    size_t i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, j)
    {
        if (!cJSON_IsString(it)) {
            vigil__free(p);
            cJSON_Delete(j);
            return vigil__error_set(VIGIL_EINVAL, "the ledger's param \"%.64s\" is not a string",
                                    it->string);
        }
        p[i].key = it->string;
        p[i].value = it->valuestring;
        i++;
    }
    *out = p;
    *n = i;
    *doc = j;
    return VIGIL_OK;
}

static void decide_redelivered(vigil_hub *hub, const vigil_store_action *a)
{
    if (!a->policy || !*a->policy)
        return; /* a manual request: no policy, no decision */
    vigil_store_decision d = {0,
                              vigil__hub_now(hub),
                              a->policy,
                              a->series,
                              a->target,
                              a->action,
                              a->id,
                              "redelivered",
                              "pending when the hub stopped; sent again with its id (the "
                              "remediator runs an id at most once)"};
    int rc = vigil_store_decision_append(hub->store, &d, &d.id);
    if (rc)
        log_error(hub, "cannot record decision", a->id, rc);
    else
        vigil__hub_on_decision(hub, &d);
}

static void redeliver(vigil_hub *hub, const vigil_store_action *a)
{
    vigil_action_param *params = NULL;
    size_t nparams = 0;
    cJSON *doc = NULL;
    int rc = params_of(a->params_json, &params, &nparams, &doc);
    if (rc) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", vigil_error_last()->message);
        close_failed(hub, a->id, "dispatch_failed", msg);
        return;
    }
    vigil_action_request req = VIGIL_ACTION_REQUEST_INIT;
    req.id = a->id;
    req.action = a->action;
    req.target = a->target;
    req.params = params;
    req.nparams = nparams;
    req.reason = a->reason;
    req.policy = a->policy;
    req.dry_run = a->dry_run;
    decide_redelivered(hub, a);
    vigil__hub_log_fields(
        hub, VIGIL_LOG_INFO, "action redelivered after restart",
        (const char *const[]){"id", a->id, "action", a->action, "policy", a->policy, NULL});
    vigil__hub_submit(hub, &req);
    vigil__free(params);
    cJSON_Delete(doc);
}

static void fmt_ms(char *out, size_t size, int64_t ms)
{
    if (ms % 60000 == 0)
        snprintf(out, size, "%lldm", (long long)(ms / 60000));
    else if (ms % 1000 == 0)
        snprintf(out, size, "%llds", (long long)(ms / 1000));
    else
        snprintf(out, size, "%lldms", (long long)ms);
}

void vigil__hub_recover_actions(vigil_hub *hub)
{
    pend_list pend = {NULL, 0, 0, 0};
    vigil_store_filter f = VIGIL_STORE_FILTER_INIT;
    f.status = "pending";
    /* both lists first: results and requests made below are not in them */
    int rc = vigil_store_action_list(hub->store, &f, collect_pending, &pend);
    if (pend.oom)
        rc = vigil__error_oom();
    if (rc) {
        log_error(hub, "cannot list the requests a previous run left pending", NULL, rc);
        pend_free(&pend);
        return;
    }
    char **ids = NULL;
    size_t nids = 0;
    rc = vigil__policy_awaited(hub->engine, &ids, &nids);
    if (rc)
        log_error(hub, "cannot list the requests the policy engine awaits", NULL, rc);
    size_t settled = 0, redelivered = 0, expired = 0;
    for (size_t i = 0; i < nids; i++)
        if (!is_pending(&pend, ids[i]))
            settled += (size_t)settle_awaited(hub, ids[i]);
    vigil__policy_awaited_free(ids, nids);
    for (size_t i = 0; i < pend.n; i++) {
        const vigil_store_action *a = pend.v[i];
        int64_t age = vigil__hub_now(hub) - a->requested_ms;
        if (age > hub->act_within_ms) {
            char msg[256], b1[32], b2[32];
            fmt_ms(b1, sizeof(b1), age);
            fmt_ms(b2, sizeof(b2), hub->act_within_ms);
            snprintf(msg, sizeof(msg),
                     "pending when the hub stopped; requested %s ago, more than act_within (%s): "
                     "not sent again",
                     b1, b2);
            vigil__log(&hub->logger, VIGIL_LOG_WARN, COMPONENT,
                       "a request left pending by a previous run expired; closed as failed",
                       "id=%s reason=expired_after_restart age_ms=%lld", a->id, (long long)age);
            close_failed(hub, a->id, "expired_after_restart", msg);
            expired++;
        } else {
            redeliver(hub, a);
            redelivered++;
        }
    }
    pend_free(&pend);
    if (settled || redelivered || expired)
        vigil__log(&hub->logger, VIGIL_LOG_INFO, COMPONENT, "actions recovered after restart",
                   "redelivered=%zu expired=%zu settled=%zu", redelivered, expired, settled);
}
