/*
 * Private: what the daemon configuration loaders (lib/hub/config.c,
 * lib/remediator/config.c, lib/agent/config.c, lib/httpd/config.c) share, so
 * that each key kind is read, range-checked and reported one way. Errors are
 * located (vigil_error_set_at) with the messages the loaders have always
 * given.
 */
#ifndef VIGIL_CONFIG_HELPERS_H
#define VIGIL_CONFIG_HELPERS_H

#include "internal/common.h"
#include "vigil/config.h"
#include "vigil/log.h"

/* The map under `key` of `root`, its keys checked against `keys`; *out is
 * NULL (and the call succeeds) when the key is absent or null. */
int vigil__config_section(const vigil_config_node **out, const vigil_config_node *root,
                          const char *key, const char *const *keys);

/* An integer under `key` from `min` to `max` ("expected an integer from MIN
 * to MAX", VIGIL_ERANGE); absent or null: `dflt`, unchecked. */
int vigil__config_get_uint(unsigned int *out, const vigil_config_node *map, const char *key,
                           unsigned int dflt, int64_t min, int64_t max);
int vigil__config_get_count(size_t *out, const vigil_config_node *map, const char *key, size_t dflt,
                            int64_t min, int64_t max);

/* VIGIL_ERANGE "must be at least WHAT", located at `key`, when v < min. */
int vigil__config_at_least(const vigil_config_node *map, const char *key, int64_t v, int64_t min,
                           const char *what);

/* A list of at most `max` strings (borrowed from the configuration) into
 * out[0..*n); more is VIGIL_ELIMIT "at most MAX WHAT". */
int vigil__config_string_list(const vigil_config_node *list, const char **out, size_t max,
                              size_t *n, const char *what);

/* `log: {level: debug|info|warn|error|off}` of `root` into *out (left as
 * it is when absent). */
int vigil__config_log(vigil_log_level *out, const vigil_config_node *root);

/* The start of vigil_<x>_config_load() and _load_string(): checks the
 * arguments ("<what>: NULL argument" without an out-parameter, a path or a
 * text), loads the file at `path`, or, with `text` set, the `len` bytes of
 * `text` named `name`, and allocates the loader's object (`size` bytes,
 * zeroed) into *obj with the configuration in its first member, a
 * `vigil_config *`. On failure nothing is left allocated. The caller has
 * cleared its out-parameter. */
int vigil__config_open(void **obj, size_t size, bool have_out, const char *path, const char *text,
                       size_t len, const char *name, const vigil_config_options *copts,
                       const char *what);

#endif
