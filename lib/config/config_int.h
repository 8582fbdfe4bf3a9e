/*
 * Private to lib/config/: the node tree shared by the YAML loader (load.c),
 * the ${VAR} expander (env.c) and the accessors and typed getters (tree.c).
 * yaml.h is included by load.c only.
 */
#ifndef VIGIL_CONFIG_INT_H
#define VIGIL_CONFIG_INT_H

#include "internal/common.h"
#include "vigil/config.h"

/* Maps with more entries than this get a sorted index for lookups. */
#define VIGIL__CONFIG_INDEX_MIN 8

/* An entry of a list (key NULL) or a map. */
typedef struct vigil__config_entry {
    const char *key;   /* map key (borrowed from the arena), NULL in a list */
    unsigned int line; /* the key's location (maps), 1-based */
    unsigned int column;
    vigil_config_node *node;
} vigil__config_entry;

struct vigil_config_node {
    vigil_config_kind kind;
    unsigned int line;   /* 1-based */
    unsigned int column; /* 1-based */
    const char *file;    /* the configuration's file name */
    const char *path;    /* "" for a root */
    const char *scalar;  /* SCALAR only: text after expansion */
    vigil__config_entry *entries;
    size_t len;
    /* Maps with more than VIGIL__CONFIG_INDEX_MIN entries: entry indexes
     * sorted by key, for binary search; NULL otherwise. Shared by copies. */
    const size_t *index;
};

/* A bump allocator: every node, string and array of a configuration lives in
 * it and is released at once by vigil_config_free(), which therefore never
 * walks (or recurses into) the tree. */
typedef struct vigil__config_chunk vigil__config_chunk;

typedef struct vigil__config_arena {
    vigil__config_chunk *head;
} vigil__config_arena;

void *vigil__config_arena_alloc(vigil__config_arena *a, size_t size);
void vigil__config_arena_free(vigil__config_arena *a);

struct vigil_config {
    char *file;
    vigil_config_node **docs;
    size_t ndocs;
    vigil__config_arena arena;
};

/* Records a located error "file:line:col: path: <fmt>" (the path part is left
 * out for a root) and returns `code`. Long paths are clipped at the front. */
int vigil__config_fail(const char *file, unsigned int line, unsigned int col, const char *path,
                       int code, const char *fmt, ...) VIGIL__PRINTF(6, 7);

/* Expands ${VAR}, ${VAR:-default} and $$ in s[0..len) into `out` (cleared
 * first). Values from the environment are inserted as they are, never
 * expanded again; a default is literal text up to the first '}' and, as in
 * the shell, replaces an unset or empty variable. A variable
 * longer than 1 MiB or a result longer than `max_len` is VIGIL_ELIMIT; an
 * unset variable without default VIGIL_EENV; a malformed reference
 * VIGIL_EVALUE; a variable that is not valid UTF-8 VIGIL_EENCODING. Errors are
 * recorded without a location (the caller adds it). */
int vigil__config_expand(vigil_buf *out, const char *s, size_t len, size_t max_len,
                         vigil_getenv_cb getenv_cb, void *payload);

#define VIGIL__CONFIG_MAX_VAR (1024u * 1024u)

#endif
