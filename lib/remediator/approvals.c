/* The remediator's approvals: requests parked until an operator approves or
 * denies them (or they expire at a tick), and the release of a quarantined
 * target, each decision audited. */
#include "internal/json.h"
#include "remediator/rem_int.h"

#include <stdio.h>
#include <string.h>

/* ---- approvals ------------------------------------------------------------------- */

static rem_approval *approval_take_locked(vigil_remediator *rem, const char *id)
{
    for (rem_approval **p = &rem->approvals; *p; p = &(*p)->next) {
        if (strcmp((*p)->req.id, id) == 0) {
            rem_approval *a = *p;
            *p = a->next;
            a->next = NULL;
            return a;
        }
    }
    return NULL;
}

void vigil__rem_approval_free(rem_approval *a)
{
    if (!a)
        return;
    vigil__rem_req_free(&a->req);
    vigil__free(a);
}

static int audit_decision(vigil_remediator *rem, const char *id, const char *decision,
                          const char *who)
{
    vigil_buf d = VIGIL_BUF_INIT;
    int rc = vigil__buf_printf(&d, "{\"decision\":\"%s\",\"by\":", decision);
    if (!rc)
        rc = vigil__rem_put_clipped(&d, who ? who : "", WHO_MAX);
    if (!rc)
        rc = vigil__buf_putc(&d, '}');
    if (!rc)
        rc = vigil__rem_audit_row(rem, "approval", id, &d, NULL, NULL);
    vigil_buf_dispose(&d);
    return rc;
}

static int check_id_arg(vigil_remediator *rem, const char *id)
{
    if (!rem || !id || !*id)
        return vigil__error_set(VIGIL_EINVAL, "remediator: NULL argument");
    return VIGIL_OK;
}

static int not_pending(const char *id)
{
    char q[96] = "";
    vigil__json_quote_clip(q, sizeof(q), id, strlen(id));
    return vigil__error_set(VIGIL_ENOTFOUND, "no request %s is waiting for approval", q);
}

int vigil_remediator_approve(vigil_remediator *rem, const char *id, const char *who)
{
    int rc = check_id_arg(rem, id);
    if (rc)
        return rc;
    rem_flight *flight = vigil__calloc(1, sizeof(*flight));
    rem_job *job = vigil__calloc(1, sizeof(*job));
    if (flight)
        flight->id = vigil__strdup(id);
    if (!flight || !job || !flight->id) {
        if (flight)
            vigil__free(flight->id);
        vigil__free(flight);
        vigil__free(job);
        return vigil__error_oom();
    }
    pthread_mutex_lock(&rem->mu);
    if (!rem->started || rem->stopping) {
        pthread_mutex_unlock(&rem->mu);
        vigil__free(flight->id);
        vigil__free(flight);
        vigil__free(job);
        return vigil__error_set(VIGIL_ECLOSED, "remediator: not running");
    }
    rem_approval *ap = approval_take_locked(rem, id);
    if (!ap) {
        pthread_mutex_unlock(&rem->mu);
        vigil__free(flight->id);
        vigil__free(flight);
        vigil__free(job);
        return not_pending(id);
    }
    flight->next = rem->flights;
    rem->flights = flight;
    pthread_mutex_unlock(&rem->mu);

    audit_decision(rem, id, "approved", who);
    vigil__rem_ledger_status(rem, id, "approved", 0, NULL);
    vigil__log(&rem->logger, VIGIL_LOG_INFO, "remediator", "approved", "action=%s",
               vigil__rem_action_label(rem, ap->req.action));
    job->kind = REM_JOB_APPROVED;
    job->req = ap->req;
    memset(&ap->req, 0, sizeof(ap->req));
    vigil__rem_approval_free(ap);
    job->flight = flight;
    pthread_mutex_lock(&rem->mu);
    if (rem->stopping) {
        pthread_mutex_unlock(&rem->mu);
        vigil__rem_ledger_status(rem, id, "pending_approval", 0, NULL);
        vigil__rem_deliver_unrecorded(rem, flight, id, "shutting_down",
                                      "the remediator is stopping");
        job->flight = NULL;
        vigil__rem_job_free(job);
        return vigil__error_set(VIGIL_ECLOSED, "remediator: stopping");
    }
    vigil__rem_queue_push(rem, job);
    pthread_mutex_unlock(&rem->mu);
    return VIGIL_OK;
}

/* Final refusal of a parked request (denied, expired). */
static void approval_refuse(vigil_remediator *rem, rem_approval *ap, const char *decision,
                            const char *reason, const char *who)
{
    audit_decision(rem, ap->req.id, decision, who);
    char msg[128];
    snprintf(msg, sizeof(msg), "%s: the request was %s", reason, decision);
    vigil__rem_refuse(rem, &ap->req, reason, msg, 0, NULL, 1);
}

int vigil_remediator_deny(vigil_remediator *rem, const char *id, const char *who)
{
    int rc = check_id_arg(rem, id);
    if (rc)
        return rc;
    pthread_mutex_lock(&rem->mu);
    rem_approval *ap = approval_take_locked(rem, id);
    pthread_mutex_unlock(&rem->mu);
    if (!ap)
        return not_pending(id);
    approval_refuse(rem, ap, "denied", "approval_denied", who);
    vigil__rem_approval_free(ap);
    return VIGIL_OK;
}

int vigil_remediator_tick(vigil_remediator *rem)
{
    if (!rem)
        return vigil__error_set(VIGIL_EINVAL, "remediator: NULL argument");
    vigil_action_registry_reap(rem->registry);
    vigil__rem_auth_flush(rem, 0);
    int64_t now = vigil__rem_now(rem);
    rem_approval *expired = NULL;
    pthread_mutex_lock(&rem->mu);
    for (rem_approval **p = &rem->approvals; *p;) {
        if ((*p)->expires_ms <= now) {
            rem_approval *a = *p;
            *p = a->next;
            a->next = expired;
            expired = a;
        } else {
            p = &(*p)->next;
        }
    }
    pthread_mutex_unlock(&rem->mu);
    while (expired) {
        rem_approval *a = expired;
        expired = a->next;
        approval_refuse(rem, a, "expired", "approval_expired", "");
        vigil__rem_approval_free(a);
    }
    return VIGIL_OK;
}

int vigil_remediator_release(vigil_remediator *rem, const char *target, const char *who,
                             int *released)
{
    int dummy;
    if (!released)
        released = &dummy;
    *released = 0;
    if (!rem || !target || !*target)
        return vigil__error_set(VIGIL_EINVAL, "remediator release: NULL argument");
    int rc = vigil__rem_guards_release(rem, target, released);
    if (rc)
        return rc;
    vigil_buf d = VIGIL_BUF_INIT;
    rc = vigil__rem_put_field(&d, "{\"target\":", target, AUDIT_TEXT_MAX);
    if (!rc)
        rc = vigil__buf_printf(&d, ",\"released\":%s,\"by\":", *released ? "true" : "false");
    if (!rc)
        rc = vigil__rem_put_clipped(&d, who ? who : "", WHO_MAX);
    if (!rc)
        rc = vigil__buf_putc(&d, '}');
    if (!rc)
        rc = vigil__rem_audit_row(rem, "release", NULL, &d, NULL, NULL);
    vigil_buf_dispose(&d);
    return rc;
}
