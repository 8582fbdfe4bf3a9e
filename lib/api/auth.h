/* Bearer tokens of an api (lib/api/auth.c). Private to lib/api. */
#ifndef VIGIL_API_AUTH_H
#define VIGIL_API_AUTH_H

#include "api/internal.h"

typedef struct vigil__api_auth vigil__api_auth;

/* Agents one token source may be bound to at most. */
#define VIGIL__API_AGENTS_MAX 256

/* Copies the sources and their agent bindings (by source name) and loads
 * them. VIGIL_EINVAL for a binding naming no source, bound twice, or with no
 * or too many agents. */
int vigil__api_auth_new(vigil__api_auth **out, const vigil_api_token *tokens, size_t ntokens,
                        const vigil_api_binding *bindings, size_t nbindings,
                        const vigil_logger *logger);
/* The agents the source `name` is bound to (borrowed for the auth's
 * lifetime: sources never change after creation) and their count; 0 and
 * NULL when the source is unbound or unknown. */
size_t vigil__api_auth_agents(const vigil__api_auth *auth, const char *name,
                              const char *const **agents);
void vigil__api_auth_free(vigil__api_auth *auth);
/* Re-reads every source; keeps the previous tokens on failure. */
int vigil__api_auth_reload(vigil__api_auth *auth);
size_t vigil__api_auth_sources(const vigil__api_auth *auth);
/* Compares `token` with every loaded token in constant time (no early exit).
 * VIGIL_OK when a token with `scope` matches; VIGIL_EPERM when a token
 * matches without the scope (its source name in `name`); VIGIL_EAUTH otherwise. */
int vigil__api_auth_check(vigil__api_auth *auth, const char *token, size_t len, unsigned int scope,
                          char *name, size_t name_size);
/* Expands admin ⊃ write ⊃ read. */
unsigned int vigil__api_scopes_expand(unsigned int scopes);

#endif
