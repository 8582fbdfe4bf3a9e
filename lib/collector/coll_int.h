/*
 * Private helpers of the collector module (lib/collector). Never installed.
 */
#ifndef VIGIL_COLLECTOR_INT_H
#define VIGIL_COLLECTOR_INT_H

#include "internal/common.h"
#include "vigil/sys/collector.h"

#include <limits.h>

/* The built-in types, in registration order. */
extern const vigil_collector_type vigil__collector_cpu;
extern const vigil_collector_type vigil__collector_memory;
extern const vigil_collector_type vigil__collector_load;
extern const vigil_collector_type vigil__collector_disk;
extern const vigil_collector_type vigil__collector_net;
extern const vigil_collector_type vigil__collector_process;
extern const vigil_collector_type vigil__collector_http;
extern const vigil_collector_type vigil__collector_tcp;
extern const vigil_collector_type vigil__collector_file;
extern const vigil_collector_type vigil__collector_exec;

/* Largest /proc file read whole (a /proc/stat of a very large machine). */
#define VIGIL__COLL_PROC_MAX (8u * 1024u * 1024u)

/* Reads the whole file `path` into `out` (cleared first; NUL-terminated),
 * refusing more than `max` bytes. Returns VIGIL_OK, VIGIL_EIO (with errno kept
 * and a message naming the path), VIGIL_ELIMIT or VIGIL_ENOMEM. */
int vigil__coll_read_file(vigil_buf *out, const char *path, size_t max);

/* Writes root + "/" + rel into buf; VIGIL_ELIMIT when it does not fit. */
int vigil__coll_path(char *buf, size_t size, const char *root, const char *rel);

/* Reads the file `rel` below the proc root `root` into `out` (at most
 * VIGIL__COLL_PROC_MAX bytes); `path` (`size` bytes) receives its full path for
 * the caller's messages. Returns the codes of vigil__coll_path() and
 * vigil__coll_read_file(). */
int vigil__coll_read_proc(vigil_buf *out, char *path, size_t size, const char *root,
                          const char *rel);

/* Resolves a configured path: absolute as is, relative against base_dir.
 * Returns an allocated string or NULL (VIGIL_ENOMEM recorded). */
char *vigil__coll_resolve(const char *base_dir, const char *path);

/* Appends one sample (vigil_batch_add). */
int vigil__coll_emit(vigil_batch *out, const char *name, double value, int64_t ts,
                     const vigil_tag *tags, size_t ntags);

/* Appends one sample carrying one tag. */
int vigil__coll_emit1(vigil_batch *out, const char *name, double value, int64_t ts, const char *key,
                      const char *tag_value);

/* Parses an unsigned decimal at *p, skipping leading blanks, advancing *p.
 * Returns 0 when no digit is found. */
int vigil__coll_parse_u64(const char **p, uint64_t *out);

/* Parses the output of an exec program (Prometheus text exposition or `name
 * value` lines) into `out`, at most `max_metrics` samples stamped `ts`; lines
 * that do not parse, and those past the limit, are counted in *errors. `cut`:
 * the output reached its cap, so a last line without '\n' is dropped. `text`
 * need not be NUL-terminated. Returns VIGIL_OK or VIGIL_ENOMEM. */
int vigil__coll_exec_parse(const char *text, size_t len, int cut, size_t max_metrics,
                           vigil_batch *out, int64_t ts, size_t *errors);

/* Reads an optional list of strings at `key` of `map` into a NULL-terminated
 * array of copies (NULL when absent). Each item must be a non-empty string of
 * at most `max_len` bytes; at most `max_items` items. */
int vigil__coll_get_string_list(char ***out, const vigil_config_node *map, const char *key,
                                size_t max_items, size_t max_len);
void vigil__coll_free_string_list(char **list);
/* True when `s` is in the NULL-terminated `list`. */
bool vigil__coll_list_has(char *const *list, const char *s);

/* Reads a required non-empty string at `key` (VIGIL_EMISSING when absent). */
int vigil__coll_require_string(const char **out, const vigil_config_node *map, const char *key);

/* Seconds between two monotonic readings in ms, or 0 when not positive. */
double vigil__coll_elapsed_s(int64_t prev_ms, int64_t now_ms);

/* CLOCK_MONOTONIC in milliseconds with a fractional part. */
double vigil__coll_mono_ms(void);

#endif
