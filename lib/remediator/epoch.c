/*
 * The leader's fencing epoch (several hubs on one store; docs/http-api.md,
 * "POST /v1/execute"). The remediator keeps the highest epoch it has
 * admitted in its store (state key REM_KEY_EPOCH, written before the
 * request it came with is admitted, so it survives a restart) and refuses a
 * request of an older epoch: its sender is a hub that lost the leadership
 * and has not noticed yet. Once any epoch has been seen, a request without
 * one is refused too (a hub that is not clustered, or one configured
 * wrongly, must not act beside a fenced leader); a remediator that never saw
 * an epoch serves single hubs exactly as before. Refusals are audited
 * ("epoch_refused") but never written to the ledger: the ledger's id gate
 * would otherwise answer the new leader's delivery of the same request
 * with the refusal.
 */
#include "remediator/rem_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads the stored epoch (mu held); 0 when none is stored. */
static int load(vigil_remediator *rem)
{
    if (rem->epoch_loaded)
        return VIGIL_OK;
    void *v = NULL;
    size_t len = 0;
    int rc = vigil_store_state_get(rem->store, REM_KEY_EPOCH, &v, &len);
    if (rc == VIGIL_ENOTFOUND) {
        rem->epoch_highest = 0;
        rem->epoch_loaded = 1;
        return VIGIL_OK;
    }
    if (rc)
        return rc;
    char *end = NULL;
    errno = 0;
    unsigned long long e = strtoull(v, &end, 10);
    int bad = errno || !len || end != (char *)v + len;
    vigil__free(v);
    if (bad)
        return vigil__error_set(VIGIL_ECORRUPT, "remediator: the stored epoch (%s) is not a number",
                                REM_KEY_EPOCH);
    rem->epoch_highest = e;
    rem->epoch_loaded = 1;
    return VIGIL_OK;
}

int vigil__rem_epoch_admit(vigil_remediator *rem, uint64_t epoch, uint64_t *highest)
{
    pthread_mutex_lock(&rem->epoch_mu);
    int rc = load(rem);
    if (!rc && epoch > rem->epoch_highest) {
        char text[32];
        int n = snprintf(text, sizeof(text), "%" PRIu64, epoch);
        rc = vigil_store_state_put(rem->store, REM_KEY_EPOCH, text, (size_t)n);
        if (!rc) {
            vigil__log(&rem->logger, VIGIL_LOG_INFO, "remediator", "new leader epoch",
                       "epoch=%" PRIu64 " previous=%" PRIu64, epoch, rem->epoch_highest);
            rem->epoch_highest = epoch;
        }
    }
    if (!rc && epoch < rem->epoch_highest)
        rc = epoch ? vigil__error_set(VIGIL_ECONFLICT,
                                      "epoch %" PRIu64 " is older than epoch %" PRIu64
                                      ", the newest this remediator has seen: the hub that sent "
                                      "it is no longer the leader",
                                      epoch, rem->epoch_highest)
                   : vigil__error_set(VIGIL_ECONFLICT,
                                      "the request has no epoch and this remediator serves a "
                                      "cluster of hubs (epoch %" PRIu64 " seen)",
                                      rem->epoch_highest);
    *highest = rem->epoch_highest;
    pthread_mutex_unlock(&rem->epoch_mu);
    return rc;
}

void vigil__rem_epoch_audit(vigil_remediator *rem, const vigil_action_request *rq, uint64_t epoch,
                            uint64_t highest, const char *remote)
{
    const char *labels[] = {epoch ? "stale_epoch" : "epoch_required"};
    vigil__prom_add(rem->m_refused, labels, 1);
    vigil_buf d = VIGIL_BUF_INIT;
    int rc = epoch ? vigil__buf_printf(&d, "{\"epoch\":%" PRIu64, epoch)
                   : vigil__buf_puts(&d, "{\"epoch\":null");
    if (!rc)
        rc = vigil__buf_printf(&d, ",\"highest\":%" PRIu64, highest);
    if (!rc)
        rc = vigil__rem_put_field(&d, ",\"action\":", rq->action, AUDIT_TEXT_MAX);
    if (!rc)
        rc = vigil__rem_put_field(&d, ",\"target\":", rq->target, AUDIT_TEXT_MAX);
    if (!rc)
        rc = vigil__rem_put_field(&d, ",\"remote\":", remote, WHO_MAX);
    if (!rc)
        rc = vigil__buf_putc(&d, '}');
    if (!rc)
        vigil__rem_audit_row(rem, "epoch_refused", rq->id, &d, NULL, NULL);
    vigil_buf_dispose(&d);
    vigil__log(&rem->logger, VIGIL_LOG_WARN, "remediator", "execute request refused: stale epoch",
               "id_len=%zu epoch=%" PRIu64 " highest=%" PRIu64, strlen(rq->id), epoch, highest);
}
