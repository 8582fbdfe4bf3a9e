/* The checks shared by the plug-in registries (lib/internal/plugin.h). */
#include "internal/plugin.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static bool name_valid(const vigil__plugin_kind *k, const char *s)
{
    size_t n = strlen(s);
    if (!k->extra) {
        if (n == 0 || n > k->name_max || !(s[0] >= 'A' && s[0] <= 'Z'))
            return false;
        for (size_t i = 1; i < n; i++)
            if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                  (s[i] >= '0' && s[i] <= '9')))
                return false;
        return true;
    }
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
    if (!name || !name_valid(k, name)) {
        if (!k->extra)
            return vigil__error_set(VIGIL_ENAME,
                                    "%s: name \"%.64s\" is invalid (expected [A-Z][A-Za-z0-9]*, "
                                    "at most %zu bytes)",
                                    k->what, name ? name : "", k->name_max);
        return vigil__error_set(VIGIL_ENAME,
                                "%s: name \"%.64s\" is invalid (expected [a-z][a-z0-9%s]*, at "
                                "most %zu bytes)",
                                k->what, name ? name : "", k->extra, k->name_max);
    }
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

int vigil__plugin_fail(int rc, void *payload, vigil_free_cb payload_free)
{
    if (payload_free)
        payload_free(payload);
    return rc;
}

int vigil__plugin_registry_new(void **out, size_t size, const char *fn)
{
    if (!out)
        return vigil__error_set(VIGIL_EINVAL, "%s: out is NULL", fn);
    *out = vigil__calloc(1, size);
    return *out ? VIGIL_OK : vigil__error_oom();
}

static vigil__plugin_head head_of(const void *type)
{
    vigil__plugin_head h;
    memcpy(&h, type, sizeof(h));
    return h;
}

static const void *find_own(const vigil__plugin_list *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(head_of(l->v[i]).name, name) == 0)
            return l->v[i];
    return NULL;
}

int vigil__plugin_list_add(vigil__plugin_list *l, const vigil__plugin_kind *k, const void *type,
                           size_t size)
{
    vigil__plugin_head h = head_of(type);
    if (find_own(l, h.name))
        return vigil__plugin_fail(vigil__plugin_exists(k, h.name, false), h.payload,
                                  h.payload_free);
    size_t len = strlen(h.name) + 1;
    char *e = vigil__calloc(1, size + len);
    if (!e || vigil__array_grow((void **)&l->v, &l->cap, l->n + 1, sizeof(void *)) != VIGIL_OK) {
        vigil__free(e);
        return vigil__plugin_fail(vigil__error_oom(), h.payload, h.payload_free);
    }
    memcpy(e, type, size);
    char *name = e + size;
    memcpy(name, h.name, len);
    const char *cname = name;
    memcpy(e + offsetof(vigil__plugin_head, name), &cname, sizeof(cname));
    l->v[l->n++] = e;
    return VIGIL_OK;
}

const void *vigil__plugin_list_find(const vigil__plugin_list *l, const char *name)
{
    const void *t = NULL;
    for (; l && !t; l = l->fallback)
        t = find_own(l, name);
    return t;
}

/* Walks the names a lookup resolves: a fallback's type is listed when the
 * lookup from the top finds that very copy (no type before it shadows it). */
static size_t walk(const vigil__plugin_list *top, size_t index, const char **name)
{
    size_t n = 0;
    *name = NULL;
    for (const vigil__plugin_list *l = top; l; l = l->fallback)
        for (size_t i = 0; i < l->n; i++) {
            const char *s = head_of(l->v[i]).name;
            if (l != top && vigil__plugin_list_find(top, s) != l->v[i])
                continue;
            if (n++ == index) {
                *name = s;
                return n;
            }
        }
    return n;
}

size_t vigil__plugin_list_count(const vigil__plugin_list *l)
{
    const char *name;
    return l ? walk(l, SIZE_MAX, &name) : 0;
}

const char *vigil__plugin_list_name_at(const vigil__plugin_list *l, size_t index)
{
    const char *name = NULL;
    if (l)
        walk(l, index, &name);
    return name;
}

void vigil__plugin_list_dispose(vigil__plugin_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        vigil__plugin_head h = head_of(l->v[i]);
        if (h.payload_free)
            h.payload_free(h.payload);
        vigil__free(l->v[i]);
    }
    vigil__free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

void vigil__plugin_registry_free(vigil__plugin_list *types)
{
    if (!types)
        return;
    vigil__plugin_list_dispose(types);
    vigil__free(types); /* the registry: the list is its first member */
}
