/* The checks shared by the plug-in registries (lib/internal/plugin.h). */
#include "internal/plugin.h"

#include <string.h>

static bool name_valid(const vigil__plugin_kind *k, const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > k->name_max || !(s[0] >= 'a' && s[0] <= 'z'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
              strchr(k->extra, s[i])))
            return false;
    return true;
}

int vigil__plugin_check(const vigil__plugin_kind *k, const void *registry, const void *type,
                        unsigned int version, const char *name)
{
    if (!registry)
        return vigil__error_set(VIGIL_EINVAL, "%s: the registry is NULL", k->what);
    if (!type)
        return vigil__error_set(VIGIL_EINVAL, "%s: the type is NULL", k->what);
    if (version != k->version)
        return vigil__error_set(VIGIL_EVERSION,
                                "%s: version %u is not supported (this library reads version %u)",
                                k->what, version, k->version);
    if (!name || !name_valid(k, name))
        return vigil__error_set(VIGIL_ENAME,
                                "%s: name \"%.64s\" is invalid (expected [a-z][a-z0-9%s]*, at "
                                "most %zu bytes)",
                                k->what, name ? name : "", k->extra, k->name_max);
    return VIGIL_OK;
}

int vigil__plugin_missing(const vigil__plugin_kind *k, const char *name, const char *missing)
{
    return vigil__error_set(VIGIL_EINVAL, "%s \"%s\": %s", k->what, name, missing);
}

int vigil__plugin_exists(const vigil__plugin_kind *k, const char *name, bool builtin)
{
    return vigil__error_set(VIGIL_EEXISTS, "%s \"%s\" is %s", k->what, name,
                            builtin ? "built in" : "already registered");
}

int vigil__plugin_fail(int rc, void *payload, void (*payload_free)(void *payload))
{
    if (payload_free)
        payload_free(payload);
    return rc;
}
