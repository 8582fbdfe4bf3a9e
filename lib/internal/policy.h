/*
 * Private entry points of lib/policy used by other modules of the library.
 * Never installed.
 */
#ifndef VIGIL_INTERNAL_POLICY_H
#define VIGIL_INTERNAL_POLICY_H

#include "vigil/engine.h"

#include <stddef.h>

/* The ids of the requests @p engine waits on for a result (sent, or waiting
 * for an approval; not those already verified), in id order: a copy, the
 * caller's, to free with vigil__policy_awaited_free(). The hub reconciles
 * them with its ledger at start (lib/hub/recover.c).
 * Returns VIGIL_OK or VIGIL_ENOMEM (*ids NULL, *n 0). Thread-safe. */
int vigil__policy_awaited(vigil_engine *engine, char ***ids, size_t *n);
void vigil__policy_awaited_free(char **ids, size_t n);

#endif
