/* The registry of policy types (code policies), looked up by kind. */
#include "internal/plugin.h"
#include "policy/policy_int.h"

struct vigil_policy_registry {
    /* vigil_policy_type copies, which rules point to; first, for
     * vigil__plugin_registry_free() */
    vigil__plugin_list types;
};

VIGIL__PLUGIN_HEAD_CHECK(vigil_policy_type);

static const vigil__plugin_kind k_kind = {"policy type", VIGIL_POLICY_TYPE_VERSION, "_", 64};

int vigil_policy_registry_new(vigil_policy_registry **out)
{
    return vigil__plugin_registry_new((void **)out, sizeof(**out), "vigil_policy_registry_new");
}

void vigil_policy_registry_free(vigil_policy_registry *registry)
{
    vigil__plugin_registry_free(registry ? &registry->types : NULL);
}

const vigil_policy_type *vigil__policy_registry_find(const vigil_policy_registry *registry,
                                                     const char *name)
{
    return registry ? vigil__plugin_list_find(&registry->types, name) : NULL;
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
    if (rc)
        return vigil__plugin_fail(rc, type ? type->payload : NULL,
                                  type ? type->payload_free : NULL);
    return vigil__plugin_list_add(&registry->types, &k_kind, type, sizeof(*type));
}
