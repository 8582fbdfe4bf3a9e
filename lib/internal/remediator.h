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

#endif
