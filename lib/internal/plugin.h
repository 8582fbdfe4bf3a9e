/*
 * Private: the checks every plug-in registry makes (collector, action, policy
 * and store types), so that the four registries refuse the same things with
 * the same codes and messages. See docs/plugins.md.
 */
#ifndef VIGIL_INTERNAL_PLUGIN_H
#define VIGIL_INTERNAL_PLUGIN_H

#include "internal/common.h"
#include "vigil/action.h"
#include "vigil/collector.h"

/* One kind of plug-in, as its registry describes it. */
typedef struct vigil__plugin_kind {
    const char *what;     /* "collector type": starts every message */
    unsigned int version; /* the vtable version this library reads */
    const char *extra;    /* name characters allowed after the first besides [a-z0-9] */
    size_t name_max;      /* bytes in a name at most */
} vigil__plugin_kind;

/*
 * Checks what every registration checks, in this order, and records the
 * error: NULL registry or type (VIGIL_EINVAL), a version other than
 * k->version (VIGIL_EVERSION), a NULL or bad name (VIGIL_ENAME). The caller
 * reads version and name from the type (0 and NULL for a NULL type).
 */
int vigil__plugin_check(const vigil__plugin_kind *k, const void *registry, const void *type,
                        unsigned int version, const char *name);

/* Records VIGIL_EINVAL "<what> \"name\": <what is missing>", e.g. "create and
 * execute are required". */
int vigil__plugin_missing(const vigil__plugin_kind *k, const char *name, const char *missing);

/* Records VIGIL_EEXISTS "<what> \"name\" is already registered" (or, with
 * builtin set, "... is built in"). */
int vigil__plugin_exists(const vigil__plugin_kind *k, const char *name, bool builtin);

/* Ends a failed registration: runs payload_free(payload) when set (the
 * registry owns the payload from the call on) and returns rc. */
int vigil__plugin_fail(int rc, void *payload, void (*payload_free)(void *payload));

/*
 * Chaining: an object (agent, remediator) keeps a registry of its own with
 * the built-in types and resolves a name there first, then in the registry
 * the embedder gave it (borrowed; it must outlive the registry it is set on).
 * Only type lookups follow the chain; registration, counts and listing see
 * the registry's own types.
 */
void vigil__collector_registry_set_fallback(vigil_collector_registry *registry,
                                            const vigil_collector_registry *fallback);
void vigil__action_registry_set_fallback(vigil_action_registry *registry,
                                         const vigil_action_registry *fallback);

/*
 * Checks the scheme of a store URL named in a configuration at `at`: the
 * built-in type, then `registry` (may be NULL). VIGIL_EUNSUPPORTED, located,
 * otherwise: "expected sqlite://PATH (the only store backend built in)"
 * without registered types, "unsupported URL scheme \"x\" (known: sqlite,
 * a)" with some.
 */
int vigil__store_url_check(const char *url, const vigil_store_registry *registry,
                           const vigil_config_node *at);

#endif
