/* The registry of policy types (code policies), looked up by kind. */
#include "internal/plugin.h"
#include "policy/policy_int.h"

#include <string.h>

/* A registered type: the caller's struct copied, with its own name; one
 * allocation each, so that rules may keep a pointer to it. */
typedef struct reg_entry {
    vigil_policy_type type;
    char *name;
} reg_entry;

struct vigil_policy_registry {
    reg_entry **v;
    size_t n, cap;
};

static const vigil__plugin_kind k_kind = {"policy type", VIGIL_POLICY_TYPE_VERSION, "_", 64};

int vigil_policy_registry_new(vigil_policy_registry **out)
{
    if (!out)
        return vigil__error_set(VIGIL_EINVAL, "vigil_policy_registry_new: out is NULL");
    *out = vigil__calloc(1, sizeof(**out));
    return *out ? VIGIL_OK : vigil__error_oom();
}

void vigil_policy_registry_free(vigil_policy_registry *registry)
{
    if (!registry)
        return;
    for (size_t i = 0; i < registry->n; i++) {
        reg_entry *e = registry->v[i];
        if (e->type.payload_free)
            e->type.payload_free(e->type.payload);
        vigil__free(e->name);
        vigil__free(e);
    }
    vigil__free(registry->v);
    vigil__free(registry);
}

const vigil_policy_type *vigil__policy_registry_find(const vigil_policy_registry *registry,
                                                     const char *name)
{
    for (size_t i = 0; registry && i < registry->n; i++)
        if (strcmp(registry->v[i]->name, name) == 0)
            return &registry->v[i]->type;
    return NULL;
}

int vigil_policy_register(vigil_policy_registry *registry, const vigil_policy_type *type)
{
    int rc = vigil__plugin_check(&k_kind, registry, type, type ? type->version : 0,
                                 type ? type->name : NULL);
    if (!rc && (!type->create || !type->evaluate || !type->destroy))
        rc =
            vigil__plugin_missing(&k_kind, type->name, "create, evaluate and destroy are required");
    if (!rc && vigil__policy_kind_builtin(type->name))
        rc = vigil__plugin_exists(&k_kind, type->name, true);
    if (!rc && vigil__policy_registry_find(registry, type->name))
        rc = vigil__plugin_exists(&k_kind, type->name, false);
    reg_entry *e = NULL;
    if (!rc && (!(e = vigil__calloc(1, sizeof(*e))) || !(e->name = vigil__strdup(type->name)) ||
                vigil__array_grow((void **)&registry->v, &registry->cap, registry->n + 1,
                                  sizeof(reg_entry *)))) {
        if (e)
            vigil__free(e->name);
        vigil__free(e);
        rc = vigil__error_oom();
    }
    if (rc)
        return vigil__plugin_fail(rc, type ? type->payload : NULL,
                                  type ? type->payload_free : NULL);
    e->type = *type;
    e->type.name = e->name;
    registry->v[registry->n++] = e;
    return VIGIL_OK;
}
