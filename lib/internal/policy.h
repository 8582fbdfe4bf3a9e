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

/* Checks one policy rule map as the engine's loader does (same codes and
 * located messages), with `name` (non-NULL) as its name instead of a `name`
 * key, which the map may then not hold; code kinds resolve in `types` (may
 * be NULL). Used by the manifest library's Policy resources. */
int vigil__policy_rule_check(const vigil_config_node *rule, const char *name,
                             const vigil_policy_registry *types);

#endif
