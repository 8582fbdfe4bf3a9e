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

#include <stddef.h>

/* One kind of plug-in, as its registry describes it. */
typedef struct vigil__plugin_kind {
    const char *what;     /* "collector type": starts every message */
    unsigned int version; /* the vtable version this library reads */
    const char *extra;    /* name characters allowed after the first besides [a-z0-9];
                             NULL: names are [A-Z][A-Za-z0-9]* (resource kinds) */
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
int vigil__plugin_fail(int rc, void *payload, vigil_free_cb payload_free);

/* The fields every vtable starts with, in this order (docs/plugins.md). A
 * registry asserts that its kind's struct starts so; the list reads them
 * from a copy with memcpy, never through a cast. */
typedef struct vigil__plugin_head {
    unsigned int version;
    const char *name;
    void *payload;
    vigil_free_cb payload_free;
} vigil__plugin_head;

#define VIGIL__PLUGIN_HEAD_CHECK(T)                                                             \
    _Static_assert(offsetof(T, version) == offsetof(vigil__plugin_head, version) &&             \
                       offsetof(T, name) == offsetof(vigil__plugin_head, name) &&               \
                       offsetof(T, payload) == offsetof(vigil__plugin_head, payload) &&         \
                       offsetof(T, payload_free) == offsetof(vigil__plugin_head, payload_free), \
                   #T " starts with version, name, payload, payload_free")

/*
 * The types a registry holds, in registration order: each a copy of the
 * caller's struct whose name points at a copy of its own, in one allocation,
 * so that what was created from a type may keep a pointer to it. A list may
 * have a fallback (borrowed, it must outlive the list): lookups and listing
 * see the list's own types first, then the fallback's that those do not
 * shadow; registration sees the list's own types only.
 */
typedef struct vigil__plugin_list {
    void **v;
    size_t n, cap;
    const struct vigil__plugin_list *fallback;
} vigil__plugin_list;

/* Allocates a zeroed registry object of `size` bytes into *out; `fn` names
 * the public function in the VIGIL_EINVAL message of a NULL out. */
int vigil__plugin_registry_new(void **out, size_t size, const char *fn);

/* Appends a copy of `type` (`size` bytes, already checked by the caller)
 * unless the list holds its name already (VIGIL_EEXISTS). On any failure the
 * type's payload_free runs, as the contract says. */
int vigil__plugin_list_add(vigil__plugin_list *l, const vigil__plugin_kind *k, const void *type,
                           size_t size);

/* The copy registered under `name`: the list's own, then its fallback's. */
const void *vigil__plugin_list_find(const vigil__plugin_list *l, const char *name);

/* The names vigil__plugin_list_find() resolves, each once, in lookup order:
 * how many, and the one at `index` (NULL out of range). */
size_t vigil__plugin_list_count(const vigil__plugin_list *l);
const char *vigil__plugin_list_name_at(const vigil__plugin_list *l, size_t index);

/* Runs every payload_free of the list's own types and frees the copies. */
void vigil__plugin_list_dispose(vigil__plugin_list *l);

/* Frees a registry object whose first member is the list `types` (NULL:
 * no-op), after disposing of the list. */
void vigil__plugin_registry_free(vigil__plugin_list *types);

/*
 * Chaining: an object (agent, remediator) keeps a registry of its own with
 * the built-in types and resolves a name there first, then in the registry
 * the embedder gave it (borrowed; it must outlive the registry it is set on).
 * Lookups and listing (count, name_at) follow the chain and agree: a name
 * is listed once, where lookup finds it; registration sees the registry's
 * own types only. The action registry's count is of configured actions, not
 * types, and does not follow the chain.
 */
void vigil__collector_registry_set_fallback(vigil_collector_registry *registry,
                                            const vigil_collector_registry *fallback);
void vigil__action_registry_set_fallback(vigil_action_registry *registry,
                                         const vigil_action_registry *fallback);

/*
 * Checks the scheme of a store URL named in a configuration at `at`: the
 * built-in type, then `registry` (may be NULL). VIGIL_EUNSUPPORTED, located,
 * otherwise: "expected sqlite://PATH or postgresql://HOST/DATABASE (the store backends built in)"
 * without registered types, "unsupported URL scheme \"x\" (known: sqlite,
 * a)" with some.
 */
int vigil__store_url_check(const char *url, const vigil_store_registry *registry,
                           const vigil_config_node *at);

#endif
