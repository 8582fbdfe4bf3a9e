/* The registry of resource types, and the diff and heal builders the types
 * fill. */
#include "internal/json.h"
#include "internal/plugin.h"
#include "manifest/manifest_int.h"

#include <string.h>

struct vigil_resource_registry {
    /* vigil_resource_type copies, which resources point to; first, for
     * vigil__plugin_registry_free() */
    vigil__plugin_list types;
};

VIGIL__PLUGIN_HEAD_CHECK(vigil_resource_type);

static const vigil__plugin_kind k_kind = {"resource type", VIGIL_RESOURCE_TYPE_VERSION, NULL, 64};

static const vigil_resource_type *const builtins[] = {
    &vigil__resource_service, &vigil__resource_file, &vigil__resource_sysctl,
    &vigil__resource_policy};

const char *vigil_resource_status_name(vigil_resource_status status)
{
    switch (status) {
    case VIGIL_RESOURCE_IN_SYNC: return "in_sync";
    case VIGIL_RESOURCE_DRIFTED: return "drifted";
    case VIGIL_RESOURCE_MISSING: return "missing";
    case VIGIL_RESOURCE_ERROR: return "error";
    }
    return "unknown";
}

int vigil_resource_registry_new(vigil_resource_registry **out)
{
    return vigil__plugin_registry_new((void **)out, sizeof(**out), "vigil_resource_registry_new");
}

void vigil_resource_registry_free(vigil_resource_registry *registry)
{
    vigil__plugin_registry_free(registry ? &registry->types : NULL);
}

size_t vigil_resource_registry_count(const vigil_resource_registry *registry)
{
    return registry ? vigil__plugin_list_count(&registry->types) : 0;
}

const char *vigil_resource_registry_name_at(const vigil_resource_registry *registry, size_t index)
{
    return registry ? vigil__plugin_list_name_at(&registry->types, index) : NULL;
}

const vigil_resource_type *vigil__resource_builtin(const char *kind)
{
    for (size_t i = 0; i < VIGIL__ARRAY_LEN(builtins); i++)
        if (strcmp(builtins[i]->name, kind) == 0)
            return builtins[i];
    return NULL;
}

const vigil_resource_type *vigil__resource_find(const vigil_resource_registry *registry,
                                                const char *kind)
{
    const vigil_resource_type *t = vigil__resource_builtin(kind);
    if (!t && registry)
        t = vigil__plugin_list_find(&registry->types, kind);
    return t;
}

int vigil_resource_register(vigil_resource_registry *registry, const vigil_resource_type *type)
{
    int rc = vigil__plugin_check(&k_kind, registry, type, type ? type->version : 0,
                                 type ? type->name : NULL);
    if (!rc && (!type->parse || !type->destroy))
        rc = vigil__plugin_missing(&k_kind, type->name, "parse and destroy are required");
    if (!rc && (!type->observe != !type->diff))
        rc = vigil__plugin_missing(&k_kind, type->name,
                                   "observe and diff go together (both or neither)");
    if (!rc && vigil__resource_builtin(type->name))
        rc = vigil__plugin_exists(&k_kind, type->name, true);
    if (rc)
        return vigil__plugin_fail(rc, type ? type->payload : NULL,
                                  type ? type->payload_free : NULL);
    return vigil__plugin_list_add(&registry->types, &k_kind, type, sizeof(*type));
}

/* ---- diff builder ----------------------------------------------------------- */

static int json_scalar_str(char **out, const char *s)
{
    vigil_buf b = VIGIL_BUF_INIT;
    int rc = s ? vigil__json_put_string(&b, s, strlen(s)) : vigil__buf_puts(&b, "null");
    if (rc < 0) {
        vigil_buf_dispose(&b);
        return rc;
    }
    *out = vigil__buf_detach(&b);
    return *out ? VIGIL_OK : vigil__error_oom();
}

static int diff_push(vigil_resource_diff *d, const char *field, char *des, char *obs)
{
    char *f = NULL;
    if (d->n >= VIGIL__RESOURCE_DIFF_MAX) {
        vigil__free(des);
        vigil__free(obs);
        return vigil__error_set(VIGIL_ELIMIT, "a diff has at most %d entries",
                                VIGIL__RESOURCE_DIFF_MAX);
    }
    if (!(f = vigil__strdup(field)) ||
        vigil__array_grow((void **)&d->v, &d->cap, d->n + 1, sizeof(*d->v)) < 0) {
        vigil__free(f);
        vigil__free(des);
        vigil__free(obs);
        return vigil__error_oom();
    }
    d->v[d->n].field = f;
    d->v[d->n].desired = des;
    d->v[d->n].observed = obs;
    d->n++;
    return VIGIL_OK;
}

int vigil_resource_diff_add(vigil_resource_diff *diff, const char *field, const char *desired,
                            const char *observed)
{
    if (!diff || !field)
        return vigil__error_set(VIGIL_EINVAL, "vigil_resource_diff_add: NULL diff or field");
    if ((desired && strlen(desired) > VIGIL__RESOURCE_VALUE_MAX) ||
        (observed && strlen(observed) > VIGIL__RESOURCE_VALUE_MAX))
        return vigil__error_set(VIGIL_ELIMIT, "%.64s: a diff value has at most %d bytes", field,
                                VIGIL__RESOURCE_VALUE_MAX);
    char *des = NULL, *obs = NULL;
    int rc;
    if ((rc = json_scalar_str(&des, desired)) < 0)
        return rc;
    if ((rc = json_scalar_str(&obs, observed)) < 0) {
        vigil__free(des);
        return rc;
    }
    return diff_push(diff, field, des, obs);
}

int vigil_resource_diff_add_int(vigil_resource_diff *diff, const char *field, int64_t desired,
                                int64_t observed)
{
    if (!diff || !field)
        return vigil__error_set(VIGIL_EINVAL, "vigil_resource_diff_add_int: NULL diff or field");
    vigil_buf a = VIGIL_BUF_INIT, b = VIGIL_BUF_INIT;
    if (vigil__json_put_int64(&a, desired) < 0 || vigil__json_put_int64(&b, observed) < 0) {
        vigil_buf_dispose(&a);
        vigil_buf_dispose(&b);
        return vigil__error_oom();
    }
    return diff_push(diff, field, vigil__buf_detach(&a), vigil__buf_detach(&b));
}

int vigil_resource_diff_status(vigil_resource_diff *diff, vigil_resource_status status)
{
    if (!diff || (int)status < VIGIL_RESOURCE_IN_SYNC || status > VIGIL_RESOURCE_ERROR)
        return vigil__error_set(VIGIL_EINVAL,
                                "vigil_resource_diff_status: NULL diff or a status out of range");
    diff->status = (int)status;
    return VIGIL_OK;
}

void vigil__resource_diff_dispose(vigil_resource_diff *d)
{
    for (size_t i = 0; i < d->n; i++) {
        vigil__free(d->v[i].field);
        vigil__free(d->v[i].desired);
        vigil__free(d->v[i].observed);
    }
    vigil__free(d->v);
    memset(d, 0, sizeof(*d));
    d->status = -1;
}

/* ---- heal builder ----------------------------------------------------------- */

static bool action_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '-'))
            return false;
    }
    return true;
}

int vigil_resource_heal_set(vigil_resource_heal *heal, const char *action, const char *target)
{
    if (!heal || !action || !action_name_valid(action))
        return vigil__error_set(VIGIL_EINVAL,
                                "vigil_resource_heal_set: action \"%.64s\" is "
                                "invalid (1 to 128 of A-Z a-z 0-9 _ . : -)",
                                action ? action : "");
    char *a = vigil__strdup(action), *t = target ? vigil__strdup(target) : NULL;
    if (!a || (target && !t)) {
        vigil__free(a);
        vigil__free(t);
        return vigil__error_oom();
    }
    vigil__free(heal->action);
    vigil__free(heal->target);
    heal->action = a;
    heal->target = t;
    return VIGIL_OK;
}

int vigil_resource_heal_param(vigil_resource_heal *heal, const char *key, const char *value)
{
    if (!heal || !key || !value)
        return vigil__error_set(VIGIL_EINVAL, "vigil_resource_heal_param: NULL argument");
    if (strlen(value) > VIGIL__RESOURCE_VALUE_MAX)
        return vigil__error_set(VIGIL_ELIMIT, "heal parameter %.64s: at most %d bytes", key,
                                VIGIL__RESOURCE_VALUE_MAX);
    char *v = vigil__strdup(value);
    if (!v)
        return vigil__error_oom();
    for (size_t i = 0; i < heal->n; i++)
        if (strcmp(heal->keys[i], key) == 0) {
            vigil__free(heal->values[i]);
            heal->values[i] = v;
            return VIGIL_OK;
        }
    if (heal->n >= VIGIL__RESOURCE_HEAL_MAX) {
        vigil__free(v);
        return vigil__error_set(VIGIL_ELIMIT, "a heal request has at most %d parameters",
                                VIGIL__RESOURCE_HEAL_MAX);
    }
    char *k = vigil__strdup(key);
    size_t cap = heal->cap;
    if (!k || vigil__array_grow((void **)&heal->keys, &cap, heal->n + 1, sizeof(char *)) < 0 ||
        vigil__array_grow((void **)&heal->values, &heal->cap, heal->n + 1, sizeof(char *)) < 0) {
        vigil__free(k);
        vigil__free(v);
        return vigil__error_oom();
    }
    heal->keys[heal->n] = k;
    heal->values[heal->n] = v;
    heal->n++;
    return VIGIL_OK;
}

void vigil__resource_heal_dispose(vigil_resource_heal *h)
{
    for (size_t i = 0; i < h->n; i++) {
        vigil__free(h->keys[i]);
        vigil__free(h->values[i]);
    }
    vigil__free(h->keys);
    vigil__free(h->values);
    vigil__free(h->action);
    vigil__free(h->target);
    memset(h, 0, sizeof(*h));
}
