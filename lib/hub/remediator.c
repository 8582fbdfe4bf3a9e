/* A remediator running in the hub's process: the hub dispatches to it with
 * library calls and its late results enter the hub's one result entry point. */
#include "hub/hub_int.h"
#include "vigil/remediator.h"

#include <string.h>

/* Late results of the in-process remediator (approvals, expiries, requests a
 * previous process left unfinished) go to vigil_hub_action_result(). */
static void late_result(const vigil_action_result *result, int64_t audit_seq, const char *audit_mac,
                        void *payload)
{
    vigil_hub *hub = payload;
    if (vigil_hub_action_result(hub, result, audit_seq, audit_mac) != VIGIL_OK)
        vigil__log(&hub->logger, VIGIL_LOG_WARN, "hub", "late result of the remediator refused",
                   "id_len=%zu error=\"%s\"", result->id ? strlen(result->id) : (size_t)0,
                   vigil_error_last()->message);
}

int vigil_hub_attach_remediator(vigil_hub *hub, const vigil_remediator_options *opts,
                                vigil_remediator **out)
{
    if (!out)
        return vigil__error_set(VIGIL_EINVAL, "hub attach remediator: NULL argument");
    *out = NULL;
    if (!hub || !opts)
        return vigil__error_set(VIGIL_EINVAL, "hub attach remediator: NULL argument");
    if (opts->late_result)
        return vigil__error_set(VIGIL_EINVAL,
                                "hub attach remediator: late_result is the hub's; leave it NULL");
    vigil_remediator_options ro = *opts;
    ro.late_result = late_result;
    ro.late_result_payload = hub;
    vigil_remediator *rem = NULL;
    vigil_action_dispatcher disp = VIGIL_ACTION_DISPATCHER_INIT;
    int rc = vigil_remediator_new(&rem, &ro);
    if (!rc)
        rc = vigil_remediator_dispatcher(rem, &disp);
    if (!rc)
        rc = vigil_hub_set_dispatcher(hub, &disp);
    if (!rc && (rc = vigil_remediator_start(rem)) != VIGIL_OK)
        vigil_hub_set_dispatcher(hub, NULL);
    if (rc) {
        vigil_remediator_free(rem);
        return rc;
    }
    hub->rem = rem;
    *out = rem;
    return VIGIL_OK;
}
