/*
 * Private to lib/manifest/: the loaded manifest, its resources, the diff and
 * heal builders handed to resource types, and the built-in types (Service,
 * File, Sysctl, Policy).
 */
#ifndef VIGIL_MANIFEST_INT_H
#define VIGIL_MANIFEST_INT_H

#include "internal/common.h"
#include "vigil/config.h"
#include "vigil/manifest.h"
#include "vigil/sys/resource.h"

#include <stdbool.h>
#include <stddef.h>

/* Entries of one diff and parameters of one heal request, at most. */
#define VIGIL__RESOURCE_DIFF_MAX  64
#define VIGIL__RESOURCE_HEAL_MAX  32
#define VIGIL__RESOURCE_VALUE_MAX 4096
/* Labels of one resource, at most; bytes of a label key and value. */
#define VIGIL__RESOURCE_LABELS_MAX 64
#define VIGIL__RESOURCE_LABEL_KEY  253
#define VIGIL__RESOURCE_LABEL_VAL  1024
/* Bytes of a revision in a body. */
#define VIGIL__MANIFEST_REVISION_MAX 128

struct vigil_resource {
    const vigil_resource_type *type; /* a built-in, or the registry's copy */
    const vigil_manifest *manifest;
    char *kind, *name, *file;
    unsigned int line, column;
    char **label_keys, **label_values;
    size_t nlabels;
    int self_heal;
    char *spec_json;
    void *state;
};

struct vigil_manifest {
    char *root;
    char **files;
    size_t nfiles;
    vigil_resource *res;
    size_t n, res_cap;
    size_t *hash; /* open addressing over (kind, name): index + 1, 0 empty */
    size_t hash_cap;
    char *proc_root, *sys_root, *systemctl;
    vigil_logger logger;
    vigil_clock_cb clock;
    void *clock_payload;
    vigil_getenv_cb getenv;
    void *getenv_payload;
    size_t max_source_size;
    const vigil_policy_registry *policy_types; /* during the load only */
};

/* One diff entry: values are JSON scalar text. */
typedef struct vigil__diff_ent {
    char *field, *desired, *observed;
} vigil__diff_ent;

struct vigil_resource_diff {
    vigil__diff_ent *v;
    size_t n, cap;
    int status; /* -1: not set */
};

struct vigil_resource_heal {
    char *action, *target;
    char **keys, **values;
    size_t n, cap;
};

/* registry.c */
const vigil_resource_type *vigil__resource_find(const vigil_resource_registry *registry,
                                                const char *kind);
/* The built-in type named `kind`, or NULL. */
const vigil_resource_type *vigil__resource_builtin(const char *kind);
void vigil__resource_diff_dispose(vigil_resource_diff *d);
void vigil__resource_heal_dispose(vigil_resource_heal *h);

/* load.c: the context handed to a callback about resource `r` (r may be
 * NULL during parse: then kind, name and file are given). */
void vigil__manifest_context(const vigil_manifest *m, const vigil_resource_type *t,
                             const char *kind, const char *name, const char *file,
                             vigil_resource_context *ctx);

/* load.c: VIGIL_EINVAL unless host is 1 to 253 bytes without '/' or control characters. */
int vigil__manifest_host_check(const char *host);

/* util.c: shared by the built-in types */
/* Records a located error with a formatted message; returns code. */
int vigil__manifest_err(const vigil_config_node *n, int code, const char *fmt, ...)
    VIGIL__PRINTF(3, 4);
/* Reads a required or optional string of `map` (located errors). */
int vigil__manifest_string(const char **out, const vigil_config_node *map, const char *key,
                           bool required);
/* Checks a host path named in a manifest: non-empty, no NUL, no ".."
 * component, at most PATH_MAX bytes. */
int vigil__manifest_host_path(const vigil_config_node *at, const char *path);
/* Lower-case hex of a SHA-256 (65 bytes with the NUL). */
void vigil__manifest_hex(char out[65], const unsigned char sum[32]);
/* SHA-256 of the file open at `fd` as lower-case hex; *size receives its
 * length. At most `max` bytes (VIGIL_ELIMIT beyond). VIGIL_EIO on read
 * errors (errno kept). */
int vigil__manifest_sha256_fd(int fd, size_t max, char out[65], uint64_t *size);
/* True when s is 64 lower-case hex digits. */
bool vigil__manifest_is_sha256(const char *s);
/* Appends `node` as JSON (scalars as strings, null as null). */
int vigil__manifest_node_json(vigil_buf *b, const vigil_config_node *node);
/* Appends "key": to an object being written (with a leading comma unless
 * *first; clears *first). */
int vigil__manifest_json_key(vigil_buf *b, bool *first, const char *key);
/* Appends a string value (NULL: null). */
int vigil__manifest_json_str(vigil_buf *b, const char *s);
/* Appends `node` as JSON guessing scalar types: integers and decimals in
 * the JSON number grammar as numbers, true/false as booleans, the rest as
 * strings (for a policy rule). */
int vigil__manifest_node_json_typed(vigil_buf *b, const vigil_config_node *node);

/* Built-in types (file.c, service.c, sysctl.c, policy.c). */
extern const vigil_resource_type vigil__resource_file;
extern const vigil_resource_type vigil__resource_service;
extern const vigil_resource_type vigil__resource_sysctl;
extern const vigil_resource_type vigil__resource_policy;

/* file.c: for vigil_manifest_write_blobs(): the desired bytes' sha256 and
 * where they come from (a resolved source path, or inline content), or
 * false when the File has only a sha256. */
bool vigil__resource_file_blob(const void *state, const char **sha256, const char **source,
                               const char **content, size_t *content_len);

#endif
