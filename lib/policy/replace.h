/* The policy engine's replacement of its rule set from several lists (the
 * hub's configuration rules plus the git-managed rules of each source),
 * shared by lib/policy/reload.c and lib/hub/. */
#ifndef VIGIL_POLICY_REPLACE_H
#define VIGIL_POLICY_REPLACE_H

#include "vigil/engine.h"

/* As vigil_engine_replace(), with the rules of lists[0], then the files of
 * `dir`, then lists[1..nlists): all or nothing; a name may appear once
 * across them all (VIGIL_EEXISTS otherwise). */
int vigil__policy_replace_lists(vigil_engine *e, const vigil_config_node *const *lists,
                                size_t nlists, const char *dir, const vigil_config_options *copts,
                                vigil_engine_reload_result *result);

#endif
