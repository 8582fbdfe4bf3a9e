/* The remediator's recovery at start-up: requests a previous run left
 * unfinished (pending, running, approved) are recorded as failed
 * ("interrupted") and never run again; requests waiting for approval are
 * parked again with their expiry. */
#include "internal/json.h"
#include "internal/store.h"
#include "remediator/rem_int.h"

#include <string.h>

/* ---- recovery at start-up -------------------------------------------------------- */

typedef struct rec_list {
    vigil_store_action **v;
    size_t n, cap;
    int oom;
} rec_list;

static char *dup_or_null(const char *s, int *oom)
{
    if (!s)
        return NULL;
    char *d = vigil__strdup(s);
    if (!d)
        *oom = 1;
    return d;
}

static int collect_rec(const vigil_store_action *a, void *payload)
{
    rec_list *l = payload;
    if (vigil__array_grow((void **)&l->v, &l->cap, l->n + 1, sizeof(*l->v)) ||
        vigil__store_action_dup(&l->v[l->n], a))
        return 1;
    l->n++;
    return 0;
}

static int list_status(vigil_remediator *rem, const char *status, rec_list *l)
{
    vigil_store_filter f = VIGIL_STORE_FILTER_INIT;
    f.status = status;
    int rc = vigil_store_action_list(rem->store, &f, collect_rec, l);
    if (rc > 0)
        rc = vigil__error_oom();
    return rc;
}

static int rec_to_req(rem_req *r, const vigil_store_action *c)
{
    memset(r, 0, sizeof(*r));
    int oom = 0;
    r->id = dup_or_null(c->id, &oom);
    r->action = dup_or_null(c->action, &oom);
    r->target = dup_or_null(c->target, &oom);
    r->reason = dup_or_null(c->reason, &oom);
    r->policy = dup_or_null(c->policy, &oom);
    r->dry_run = c->dry_run;
    int rc = oom ? vigil__error_oom() : vigil__rem_params_parse(r, c->params_json);
    if (rc)
        vigil__rem_req_free(r);
    return rc;
}

static int read_expiry(vigil_remediator *rem, const char *id, int64_t *out)
{
    vigil_buf key = VIGIL_BUF_INIT;
    void *v = NULL;
    size_t len = 0;
    int rc = vigil__buf_printf(&key, "%s%s", REM_KEY_APPROVAL, id);
    if (!rc)
        rc = vigil_store_state_get(rem->store, key.ptr, &v, &len);
    vigil_buf_dispose(&key);
    if (rc)
        return rc;
    cJSON *j = NULL;
    rc = vigil__json_parse(&j, v, len, 4);
    vigil_free(v);
    if (rc)
        return rc;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "expires");
    rc = cJSON_IsNumber(e) ? VIGIL_OK : VIGIL_ECORRUPT;
    if (!rc)
        *out = (int64_t)e->valuedouble;
    cJSON_Delete(j);
    return rc;
}

int vigil__rem_recover(vigil_remediator *rem)
{
    static const char *const unfinished[] = {"pending", "running", "approved"};
    rec_list l = {NULL, 0, 0, 0};
    int rc = VIGIL_OK;
    for (size_t s = 0; s < VIGIL__ARRAY_LEN(unfinished) && !rc; s++)
        rc = list_status(rem, unfinished[s], &l);
    for (size_t i = 0; !rc && i < l.n; i++) {
        rem_req r;
        if ((rc = rec_to_req(&r, l.v[i])))
            break;
        vigil__log(&rem->logger, VIGIL_LOG_WARN, "remediator",
                   "request interrupted by a previous stop; not run again", "status=%s",
                   l.v[i]->status ? l.v[i]->status : "-");
        vigil_action_result res = VIGIL__ACTION_RESULT_EMPTY;
        res.status = VIGIL_ACTION_FAILED;
        vigil_action_result_set_reason(&res, "interrupted");
        static const char msg[] = "the remediator stopped while this request was in progress";
        vigil_action_result_set_output(&res, msg, sizeof(msg) - 1);
        vigil__rem_finalize(rem, &r, &res, NULL, 1);
        vigil_action_result_clear(&res);
        vigil__rem_req_free(&r);
    }
    for (size_t i = 0; i < l.n; i++)
        vigil_store_action_free(l.v[i]);
    l.n = 0;
    if (!rc)
        rc = list_status(rem, "pending_approval", &l);
    for (size_t i = 0; !rc && i < l.n; i++) {
        rem_approval *ap = vigil__calloc(1, sizeof(*ap));
        if (!ap) {
            rc = vigil__error_oom();
            break;
        }
        if ((rc = rec_to_req(&ap->req, l.v[i]))) {
            vigil__free(ap);
            break;
        }
        if (read_expiry(rem, ap->req.id, &ap->expires_ms)) {
            vigil_action_info info = VIGIL_ACTION_INFO_INIT;
            ap->expires_ms = l.v[i]->requested_ms;
            if (vigil_action_registry_find(rem->registry, ap->req.action, &info) == VIGIL_OK)
                ap->expires_ms += info.approval_expires_ms;
        }
        ap->next = rem->approvals;
        rem->approvals = ap;
    }
    for (size_t i = 0; i < l.n; i++)
        vigil_store_action_free(l.v[i]);
    vigil__free(l.v);
    return rc;
}
