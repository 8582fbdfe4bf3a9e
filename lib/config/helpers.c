/* The helpers shared by the daemon configuration loaders (config/helpers.h). */
#include "config/helpers.h"

#include <stdio.h>
#include <string.h>

int vigil__config_section(const vigil_config_node **out, const vigil_config_node *root,
                          const char *key, const char *const *keys)
{
    const vigil_config_node *n = vigil_config_node_get(root, key);
    *out = NULL;
    if (!n || vigil_config_node_kind(n) == VIGIL_CONFIG_NULL)
        return VIGIL_OK;
    int rc = vigil_config_map(n);
    if (!rc)
        rc = vigil_config_expect_keys(n, keys);
    if (!rc)
        *out = n;
    return rc;
}

static int get_range(int64_t *out, const vigil_config_node *map, const char *key, int64_t dflt,
                     int64_t min, int64_t max)
{
    const vigil_config_node *n = vigil_config_node_get(map, key);
    if (!n) { /* absent: the default, unchecked */
        *out = dflt;
        return VIGIL_OK;
    }
    int rc = vigil_config_get_int(out, map, key, dflt); /* null: the default */
    if (rc)
        return rc;
    if (*out < min || *out > max) {
        char msg[96];
        snprintf(msg, sizeof(msg), "expected an integer from %lld to %lld", (long long)min,
                 (long long)max);
        return vigil_error_set_at(VIGIL_ERANGE, n, msg);
    }
    return VIGIL_OK;
}

int vigil__config_get_uint(unsigned int *out, const vigil_config_node *map, const char *key,
                           unsigned int dflt, int64_t min, int64_t max)
{
    int64_t v;
    int rc = get_range(&v, map, key, dflt, min, max);
    if (!rc)
        *out = (unsigned int)v;
    return rc;
}

int vigil__config_get_count(size_t *out, const vigil_config_node *map, const char *key, size_t dflt,
                            int64_t min, int64_t max)
{
    int64_t v;
    int rc = get_range(&v, map, key, (int64_t)dflt, min, max);
    if (!rc)
        *out = (size_t)v;
    return rc;
}

int vigil__config_at_least(const vigil_config_node *map, const char *key, int64_t v, int64_t min,
                           const char *what)
{
    if (v >= min)
        return VIGIL_OK;
    char msg[160];
    snprintf(msg, sizeof(msg), "must be at least %s", what);
    return vigil_error_set_at(VIGIL_ERANGE, vigil_config_node_get(map, key), msg);
}

int vigil__config_string_list(const vigil_config_node *list, const char **out, size_t max,
                              size_t *n, const char *what)
{
    int rc = vigil_config_list(list);
    if (rc)
        return rc;
    size_t len = vigil_config_node_len(list);
    if (len > max) {
        char msg[128];
        snprintf(msg, sizeof(msg), "at most %zu %s", max, what);
        return vigil_error_set_at(VIGIL_ELIMIT, list, msg);
    }
    for (size_t i = 0; i < len; i++)
        if ((rc = vigil_config_string(&out[i], vigil_config_node_at(list, i))) != VIGIL_OK)
            return rc;
    *n = len;
    return VIGIL_OK;
}

int vigil__config_log(vigil_log_level *out, const vigil_config_node *root)
{
    static const char *const keys[] = {"level", NULL};
    const vigil_config_node *n;
    const char *lvl;
    int rc = vigil__config_section(&n, root, "log", keys);
    if (rc || !n)
        return rc;
    if ((rc = vigil_config_get_string(&lvl, n, "level", "info")))
        return rc;
    if (vigil_log_level_parse(out, lvl))
        return vigil_error_set_at(VIGIL_EVALUE, vigil_config_node_get(n, "level"),
                                  "expected debug, info, warn, error or off");
    return VIGIL_OK;
}

int vigil__config_open(void **obj, size_t size, bool have_out, const char *path, const char *text,
                       size_t len, const char *name, const vigil_config_options *copts,
                       const char *what)
{
    vigil_config *cfg = NULL;
    *obj = NULL;
    if (!have_out || (!path && !text))
        return vigil__error_set(VIGIL_EINVAL, "%s: NULL argument", what);
    int rc = text ? vigil_config_load_string(&cfg, text, len, name, copts)
                  : vigil_config_load_file(&cfg, path, copts);
    if (rc)
        return rc;
    if (!(*obj = vigil__calloc(1, size))) {
        vigil_config_free(cfg);
        return vigil__error_oom();
    }
    memcpy(*obj, &cfg, sizeof(cfg)); /* the first member */
    return VIGIL_OK;
}
