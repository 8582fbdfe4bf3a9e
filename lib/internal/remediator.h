/*
 * Private entry points of lib/remediator used by other modules of the
 * library. Never installed.
 */
#ifndef VIGIL_INTERNAL_REMEDIATOR_H
#define VIGIL_INTERNAL_REMEDIATOR_H

#include "vigil/remediator.h"

/* As vigil_remediator_config_load(), for a remediator that runs inside the
 * hub's process (collector.yaml `remediator: {inprocess: true, config:
 * PATH}`, lib/hub/config.c). Every key is checked as usual, but the
 * variables named by secret_env and hub.token_env need not be set, and the
 * options it yields carry no secret_env, no hub_url and no hub_token_env:
 * requests arrive through the in-process dispatcher and late results go to
 * the late_result callback, so listen, http, security, secret_env, max_skew
 * and hub are not used. */
int vigil__remediator_config_load_inprocess(vigil_remediator_config **out, const char *path,
                                            const vigil_config_options *copts);

/* Admin calls the hub forwards to a remediator (POST /v1/actions/{id}/approve
 * and /deny, POST /v1/targets/{t}/release, GET /v1/audit/verify) are signed
 * like /v1/execute (X-Vigil-Signature, the same secret) over this payload
 * instead of a body: "<METHOD> <path>[?<query>]\n<actor>\n", path without
 * the remediator's prefix, its id or target segment percent-decoded,
 * query "seq=<n>&mac=<hex>" for a checkpoint verification, actor the person
 * the hub authenticated (X-Vigil-Actor header, "" when none). Appends it to
 * `out` (lib/remediator/routes.c). */
#define VIGIL__FORWARD_ACTOR_HEADER "X-Vigil-Actor"
int vigil__remediator_forward_payload(vigil_buf *out, const char *method, const char *path,
                                      const char *actor);

#endif
