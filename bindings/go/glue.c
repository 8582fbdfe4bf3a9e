/*
 * glue.c - the C side of the Go binding (see glue.h). Every entry of a Go
 * type's vtable forwards to an exported Go function (callbacks.go), which
 * recovers panics and records them with vigil_error_set().
 */
#include "glue.h"

#include <string.h>

#include "_cgo_export.h"

void *gv_ptr(uintptr_t handle)
{
    return (void *)handle;
}

static void free_keys(char **keys)
{
    if (!keys)
        return;
    for (char **k = keys; *k; k++)
        free(*k);
    free(keys);
}

static void gv_payload_free(void *p)
{
    gv_payload *pl = p;
    if (!pl)
        return;
    goVigilHandleDelete(pl->handle);
    free_keys(pl->keys);
    free(pl);
}

/* A payload owning @p handle and a copy of the keys; on failure the handle
 * is deleted, so the caller never cleans up. */
static gv_payload *gv_payload_new(char **keys, size_t nkeys, uintptr_t handle)
{
    gv_payload *pl = calloc(1, sizeof(*pl));
    if (!pl) {
        goVigilHandleDelete(handle);
        return NULL;
    }
    pl->handle = handle;
    if (nkeys > 0) {
        pl->keys = calloc(nkeys + 1, sizeof(char *));
        if (!pl->keys) {
            gv_payload_free(pl);
            return NULL;
        }
        for (size_t i = 0; i < nkeys; i++) {
            pl->keys[i] = strdup(keys[i]);
            if (!pl->keys[i]) {
                gv_payload_free(pl);
                return NULL;
            }
        }
    }
    return pl;
}

/* ---- policies ------------------------------------------------------------- */

static int gv_policy_create(void **state, const vigil_config_node *rule, void *payload)
{
    gv_payload *pl = payload;
    gv_policy_state *s = calloc(1, sizeof(*s));
    if (!s)
        return vigil_error_set(VIGIL_ENOMEM, NULL);
    uintptr_t h = 0;
    int rc = goVigilPolicyCreate(pl->handle, (vigil_config_node *)rule, &h);
    if (rc < 0) {
        free(s);
        return rc;
    }
    s->handle = h;
    *state = s;
    return VIGIL_OK;
}

static int gv_policy_evaluate(void *state, const vigil_metric *metric, vigil_policy_ctx *ctx,
                              vigil_policy_verdict *out)
{
    return goVigilPolicyEvaluate((gv_policy_state *)state, (vigil_metric *)metric, ctx, out);
}

void gv_policy_state_set(gv_policy_state *s, char *action, char *target, char *reason,
                         vigil_action_param *params, size_t nparams)
{
    free(s->action);
    free(s->target);
    free(s->reason);
    for (size_t i = 0; i < s->nparams; i++) {
        free((char *)s->params[i].key);
        free((char *)s->params[i].value);
    }
    free(s->params);
    s->action = action;
    s->target = target;
    s->reason = reason;
    s->params = params;
    s->nparams = nparams;
}

void gv_policy_verdict_fill(gv_policy_state *s, vigil_policy_verdict *out)
{
    out->request.action = s->action;
    out->request.target = s->target;
    out->request.reason = s->reason;
    out->request.params = s->params;
    out->request.nparams = s->nparams;
}

static void gv_policy_destroy(void *state)
{
    gv_policy_state *s = state;
    if (!s)
        return;
    goVigilHandleDelete(s->handle);
    gv_policy_state_set(s, NULL, NULL, NULL, NULL, 0);
    free(s);
}

int gv_policy_register(vigil_policy_registry *reg, const char *name, char **keys, size_t nkeys,
                       uintptr_t handle)
{
    gv_payload *pl = gv_payload_new(keys, nkeys, handle);
    if (!pl)
        return vigil_error_set(VIGIL_ENOMEM, NULL);
    vigil_policy_type t;
    memset(&t, 0, sizeof(t));
    t.version = VIGIL_POLICY_TYPE_VERSION;
    t.name = name;
    t.payload = pl;
    t.payload_free = gv_payload_free;
    t.keys = (const char *const *)pl->keys;
    t.create = gv_policy_create;
    t.evaluate = gv_policy_evaluate;
    t.destroy = gv_policy_destroy;
    return vigil_policy_register(reg, &t);
}

/* ---- actions -------------------------------------------------------------- */

static int gv_action_create(void **state, const vigil_config_node *config,
                            const vigil_action_context *ctx)
{
    gv_payload *pl = ctx->type_payload;
    uintptr_t h = 0;
    int rc = goVigilActionCreate(pl->handle, (vigil_config_node *)config,
                                 (vigil_action_context *)ctx, &h);
    if (rc < 0)
        return rc;
    *state = (void *)h;
    return VIGIL_OK;
}

static int gv_action_validate(void *state, const vigil_action_request *request)
{
    return goVigilActionValidate((uintptr_t)state, (vigil_action_request *)request);
}

static int gv_action_execute(void *state, const vigil_action_request *request,
                             const vigil_action_exec *exec, vigil_action_result *result)
{
    return goVigilActionExecute((uintptr_t)state, (vigil_action_request *)request,
                                (vigil_action_exec *)exec, result);
}

static void gv_action_destroy(void *state)
{
    goVigilHandleDelete((uintptr_t)state);
}

int gv_action_register(vigil_action_registry *reg, const char *name, char **keys, size_t nkeys,
                       uintptr_t handle)
{
    gv_payload *pl = gv_payload_new(keys, nkeys, handle);
    if (!pl)
        return vigil_error_set(VIGIL_ENOMEM, NULL);
    vigil_action_type t;
    memset(&t, 0, sizeof(t));
    t.version = VIGIL_ACTION_TYPE_VERSION;
    t.name = name;
    t.payload = pl;
    t.payload_free = gv_payload_free;
    t.keys = (const char *const *)pl->keys;
    t.create = gv_action_create;
    t.validate = gv_action_validate;
    t.execute = gv_action_execute;
    t.destroy = gv_action_destroy;
    return vigil_action_register(reg, &t);
}

/* ---- collectors ----------------------------------------------------------- */

static int gv_collector_create(void **state, const vigil_config_node *config,
                               const vigil_collector_context *ctx)
{
    gv_payload *pl = ctx->type_payload;
    uintptr_t h = 0;
    int rc = goVigilCollectorCreate(pl->handle, (vigil_config_node *)config,
                                    (vigil_collector_context *)ctx, &h);
    if (rc < 0)
        return rc;
    *state = (void *)h;
    return VIGIL_OK;
}

static int gv_collector_collect(void *state, vigil_batch *out, int64_t now_ms)
{
    return goVigilCollectorCollect((uintptr_t)state, out, now_ms);
}

static void gv_collector_destroy(void *state)
{
    goVigilHandleDelete((uintptr_t)state);
}

int gv_collector_register(vigil_collector_registry *reg, const char *name, char **keys,
                          size_t nkeys, uintptr_t handle, unsigned int flags)
{
    gv_payload *pl = gv_payload_new(keys, nkeys, handle);
    if (!pl)
        return vigil_error_set(VIGIL_ENOMEM, NULL);
    vigil_collector_type t;
    memset(&t, 0, sizeof(t));
    t.version = VIGIL_COLLECTOR_TYPE_VERSION;
    t.name = name;
    t.payload = pl;
    t.payload_free = gv_payload_free;
    t.flags = flags;
    t.keys = (const char *const *)pl->keys;
    t.create = gv_collector_create;
    t.collect = gv_collector_collect;
    t.destroy = gv_collector_destroy;
    return vigil_collector_register(reg, &t);
}

/* ---- plain callbacks ------------------------------------------------------ */

void gv_log_cb(const vigil_log_record *record, void *payload)
{
    goVigilLog((uintptr_t)payload, (vigil_log_record *)record);
}

vigil_logger gv_logger(uintptr_t handle, int enabled, vigil_log_level min_level)
{
    vigil_logger l = VIGIL_LOGGER_INIT;
    if (enabled) {
        l.cb = gv_log_cb;
        l.payload = (void *)handle;
    }
    l.min_level = min_level;
    return l;
}

void gv_engine_on_request(void *payload, const vigil_engine_request *req)
{
    goVigilEngineRequest((uintptr_t)payload, (vigil_engine_request *)req);
}

void gv_engine_on_decision(void *payload, const vigil_store_decision *d)
{
    goVigilEngineDecision((uintptr_t)payload, (vigil_store_decision *)d);
}

int gv_store_point_cb(const vigil_store_series *series, const vigil_store_point *point,
                      void *payload)
{
    return goVigilStorePoint((uintptr_t)payload, (vigil_store_series *)series,
                             (vigil_store_point *)point);
}

void gv_done_cb(const vigil_action_result *result, int64_t audit_seq, const char *audit_mac,
                void *payload)
{
    goVigilDone((uintptr_t)payload, (vigil_action_result *)result, audit_seq, (char *)audit_mac);
}

static int gv_dispatch_submit(void *self, const vigil_action_request *request,
                              vigil_action_done_cb done, void *payload)
{
    return goVigilDispatch((uintptr_t)self, (vigil_action_request *)request, done, payload);
}

vigil_action_dispatcher gv_dispatcher(uintptr_t handle)
{
    vigil_action_dispatcher d = VIGIL_ACTION_DISPATCHER_INIT;
    d.self = (void *)handle;
    d.submit = gv_dispatch_submit;
    return d;
}

void gv_call_done(vigil_action_done_cb done, const vigil_action_result *result, void *payload)
{
    done(result, payload);
}
