/*
 * vigil/config.h - YAML configuration: a node tree that remembers the file,
 * line and column of every node, typed getters with located errors, unknown
 * key detection, ${VAR} / ${VAR:-default} expansion, and limits on size,
 * depth, node count and alias expansion. Multi-document files ("---") load as
 * several documents.
 *
 * Every error names its location:
 *   configs/agent.yaml:12:5: collectors[0].interval: expected a duration such as "10s", got "ten"
 * and vigil_error_last() carries the file, line and column separately.
 *
 * The tree: every node keeps the file, line and column (1-based) where it
 * starts, and its path from the document root ("collectors[0].interval"; ""
 * for a root; keys that are not made of letters, digits, '_' and '-' are
 * written as `labels["app.io/name"]`). Map keys must be scalars (a list, map
 * or alias as a key is VIGIL_EYAML) and are not ${}-expanded; a key repeated
 * in one map is VIGIL_EYAML ("duplicate key \"x\" (first at line 2, column
 * 3)", located at the second occurrence). An unquoted empty value, "~",
 * "null", "Null" or "NULL" is a VIGIL_CONFIG_NULL node; anything quoted is a
 * scalar. A node copied from an alias keeps the location of the anchored
 * original and takes the path where the alias is used. Merge keys ("<<") are
 * not interpreted: "<<" is an ordinary key.
 *
 * Threads: a loaded vigil_config is immutable; it and its nodes may be read
 * from many threads at once.
 */
#ifndef VIGIL_CONFIG_H
#define VIGIL_CONFIG_H

#include "vigil/common.h"
#include "vigil/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Node kinds. @since 0.1.0 */
typedef enum vigil_config_kind {
    VIGIL_CONFIG_NULL = 0,   /**< empty value, "~" or "null" */
    VIGIL_CONFIG_SCALAR = 1, /**< any other scalar; read it with the typed getters */
    VIGIL_CONFIG_LIST = 2,
    VIGIL_CONFIG_MAP = 3
} vigil_config_kind;

/**
 * Options of the loader. Besides the limits below, the text of the tree (keys,
 * values after expansion, and paths, copies included) may take at most
 * 16 x max_file_size bytes, and a document may define at most 10,000
 * anchors (VIGIL_ELIMIT beyond).
 * @since 0.1.0
 */
typedef struct vigil_config_options {
    unsigned int version;   /**< VIGIL_CONFIG_OPTIONS_VERSION */
    size_t max_file_size;   /**< bytes; 0: 4 MiB */
    unsigned int max_depth; /**< nesting of lists and maps; 0: 64 */
    size_t max_nodes;       /**< nodes after alias expansion, all documents; 0: 100,000 */
    int no_env;             /**< non-zero: do not expand ${...} */
    vigil_getenv_cb getenv; /**< ${VAR} expansion; NULL: getenv(3) */
    void *getenv_payload;
    /**
     * @name Plug-in types a daemon configuration may name
     * Read by the daemon configuration loaders (vigil_hub_config_load(),
     * vigil_remediator_config_load() and their _string variants), ignored by
     * vigil_config_load_file() and vigil_config_load_string(). A name resolves
     * in the built-in types first, then in these registries; NULL: the
     * built-in types only. Borrowed: they must outlive the loaded
     * configuration, whose options (vigil_hub_config_hub(),
     * vigil_remediator_config_options()) carry them on (@c store_types,
     * @c policy_types, @c action_types). The agent has no loader of its own:
     * its collector types come through vigil_agent_options.collector_types.
     * @since 0.2.0
     */
    /**@{*/
    const vigil_store_registry *store_types;   /**< `store:` and `audit:` URL schemes */
    const vigil_policy_registry *policy_types; /**< `kind:` of the hub's `policies:` */
    const vigil_action_registry *action_types; /**< `type:` of remediator.yaml's `actions:` */
    /**@}*/
} vigil_config_options;

#define VIGIL_CONFIG_OPTIONS_VERSION 1
#define VIGIL_CONFIG_OPTIONS_INIT                                              \
    {                                                                          \
        VIGIL_CONFIG_OPTIONS_VERSION, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL \
    }

/**
 * Fills @p opts with defaults. @return VIGIL_OK, VIGIL_EINVAL (NULL @p opts) or
 * VIGIL_EVERSION (@p version 0 or newer than this library's). @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_config_options_init(vigil_config_options *opts, unsigned int version);

/**
 * Loads a YAML file. The size is checked with fstat() before reading, and at
 * most max_file_size + 1 bytes are read. Aliases are expanded as copies,
 * counted against max_nodes, so an alias bomb fails with VIGIL_ELIMIT instead
 * of exhausting memory. ${VAR} and ${VAR:-default} in scalar values are
 * expanded ($$ is a literal $, a '$' before anything else is literal); as in
 * the shell, the default also replaces a variable set to "". The default is
 * literal text up to the first '}'; values from the environment are never
 * expanded again. A variable longer than 1 MiB, or an expanded value longer
 * than max_file_size, is VIGIL_ELIMIT. Inside flow collections ([...] and
 * {...}) quote a value that holds ${...}: YAML reads '{' and '}' there as
 * flow indicators.
 * Every error but VIGIL_ENOMEM and VIGIL_EINVAL names the file, and, when it
 * concerns a place in it, the line, column and path
 * ("f.yaml:3:9: hub.token: environment variable \"TOKEN\" is not set ...").
 * @param out receives the configuration, the caller's; free with
 *        vigil_config_free(). Set to NULL on failure.
 * @param opts NULL for defaults.
 * @return VIGIL_OK; VIGIL_EINVAL (NULL argument), VIGIL_EVERSION (unknown
 *         options version),
 *         VIGIL_EIO (cannot open or read), VIGIL_ELIMIT (file size, depth,
 *         nodes, text), VIGIL_EYAML (syntax, duplicate or non-scalar key),
 *         VIGIL_EALIAS (alias to an undefined anchor, or to a list or map that
 *         contains the alias), VIGIL_EENV (variable without default not set),
 *         VIGIL_EVALUE (malformed ${...}), VIGIL_EENCODING (invalid UTF-8,
 *         NUL byte or control character in the file, "\0" in a string),
 *         VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_config_load_file(vigil_config **out, const char *path, const vigil_config_options *opts);

/**
 * As vigil_config_load_file(), from memory (@p text need not be
 * NUL-terminated; it is not kept). @p name is used as the file name in
 * locations (NULL: "<string>").
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_config_load_string(vigil_config **out, const char *text, size_t len, const char *name,
                         const vigil_config_options *opts);

/** Frees a configuration and all its nodes. NULL is a no-op. @since 0.1.0 */
VIGIL_EXTERN(void) vigil_config_free(vigil_config *config);

/** Number of documents (0 for an empty file). @since 0.1.0 */
VIGIL_EXTERN(size_t) vigil_config_document_count(const vigil_config *config);

/** Root node of document @p index, or NULL when out of range. @since 0.1.0 */
VIGIL_EXTERN(const vigil_config_node *) vigil_config_root(const vigil_config *config, size_t index);

/** The file name the configuration was loaded from. @since 0.1.0 */
VIGIL_EXTERN(const char *) vigil_config_file(const vigil_config *config);

/** @name Node inspection (all borrowed; NULL node → NULL / 0) @since 0.1.0 */
/**@{*/
VIGIL_EXTERN(vigil_config_kind) vigil_config_node_kind(const vigil_config_node *node);
/** Path from the document root, e.g. "collectors[0].interval" ("" for the root). */
VIGIL_EXTERN(const char *) vigil_config_node_path(const vigil_config_node *node);
VIGIL_EXTERN(const char *) vigil_config_node_file(const vigil_config_node *node);
VIGIL_EXTERN(unsigned int) vigil_config_node_line(const vigil_config_node *node);
VIGIL_EXTERN(unsigned int) vigil_config_node_column(const vigil_config_node *node);
/** A scalar's text after ${} expansion; NULL for other kinds. */
VIGIL_EXTERN(const char *) vigil_config_node_scalar(const vigil_config_node *node);
/** Entries of a list or map; 0 for other kinds. */
VIGIL_EXTERN(size_t) vigil_config_node_len(const vigil_config_node *node);
/** Entry @p index of a list, or value @p index of a map, in file order. */
VIGIL_EXTERN(const vigil_config_node *)
vigil_config_node_at(const vigil_config_node *node, size_t index);
/** Key @p index of a map, or NULL. */
VIGIL_EXTERN(const char *) vigil_config_node_key_at(const vigil_config_node *node, size_t index);
/** Value of @p key in a map, or NULL when absent or not a map. */
VIGIL_EXTERN(const vigil_config_node *)
vigil_config_node_get(const vigil_config_node *map, const char *key);
/**@}*/

/**
 * Fails on the first key of @p map not listed in @p allowed (a NULL-terminated
 * array), naming it and the location of the key: "file:3:1: agent.idd:
 * unknown key", with a hint (did you mean "id"?) when an allowed key is close.
 * @return VIGIL_OK, VIGIL_EUNKNOWNKEY, or VIGIL_ETYPE when @p map is not a map
 *         (a NULL map or a null node is VIGIL_OK).
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_config_expect_keys(const vigil_config_node *map, const char *const *allowed);

/**
 * @name Typed getters of a node
 * Each converts a scalar node and fails with VIGIL_ETYPE or VIGIL_EVALUE (or
 * VIGIL_ERANGE) and a located message on anything else, e.g.
 * "f.yaml:12:5: collectors[0].interval: expected a duration such as \"10s\", got \"ten\"".
 * Strings are borrowed from the configuration.
 * Booleans accept true/false/yes/no/on/off (lower case); integers are decimal
 * with an optional leading '-' (VIGIL_ERANGE outside int64_t); doubles are
 * decimal (fraction and exponent allowed, no hex, inf or nan) and finite
 * (VIGIL_ERANGE otherwise); durations, sizes, rates and percentages follow
 * vigil_scalar_parse_duration() and its siblings. A list, map or null node where a
 * scalar is expected is VIGIL_ETYPE ("expected a string, got a map"). A NULL
 * node is VIGIL_EMISSING; a NULL out-parameter VIGIL_EINVAL.
 * @since 0.1.0
 */
/**@{*/
VIGIL_EXTERN(int) vigil_config_string(const char **out, const vigil_config_node *node);
VIGIL_EXTERN(int) vigil_config_int(int64_t *out, const vigil_config_node *node);
VIGIL_EXTERN(int) vigil_config_double(double *out, const vigil_config_node *node);
VIGIL_EXTERN(int) vigil_config_bool(int *out, const vigil_config_node *node);
VIGIL_EXTERN(int) vigil_config_duration(int64_t *out_ms, const vigil_config_node *node);
VIGIL_EXTERN(int) vigil_config_size(uint64_t *out_bytes, const vigil_config_node *node);
VIGIL_EXTERN(int) vigil_config_rate(double *out_per_second, const vigil_config_node *node);
VIGIL_EXTERN(int) vigil_config_percent(double *out_ratio, const vigil_config_node *node);
/** Succeeds when the node is a list (VIGIL_ETYPE otherwise). */
VIGIL_EXTERN(int) vigil_config_list(const vigil_config_node *node);
/** Succeeds when the node is a map (VIGIL_ETYPE otherwise). */
VIGIL_EXTERN(int) vigil_config_map(const vigil_config_node *node);
/**@}*/

/**
 * @name Getters of a map entry with a default
 * Read @p key of @p map; when the key is absent (or its value is null, or @p map
 * is NULL or a null node, as for an empty `batch:`) they store @p dflt and
 * succeed. A present value of the wrong form fails as the node getters do.
 * @p map must be a map, a null node or NULL (VIGIL_ETYPE otherwise).
 * @since 0.1.0
 */
/**@{*/
VIGIL_EXTERN(int)
vigil_config_get_string(const char **out, const vigil_config_node *map, const char *key,
                        const char *dflt);
VIGIL_EXTERN(int)
vigil_config_get_int(int64_t *out, const vigil_config_node *map, const char *key, int64_t dflt);
VIGIL_EXTERN(int)
vigil_config_get_double(double *out, const vigil_config_node *map, const char *key, double dflt);
VIGIL_EXTERN(int)
vigil_config_get_bool(int *out, const vigil_config_node *map, const char *key, int dflt);
VIGIL_EXTERN(int)
vigil_config_get_duration(int64_t *out_ms, const vigil_config_node *map, const char *key,
                          int64_t dflt);
VIGIL_EXTERN(int)
vigil_config_get_size(uint64_t *out_bytes, const vigil_config_node *map, const char *key,
                      uint64_t dflt);
VIGIL_EXTERN(int)
vigil_config_get_rate(double *out_per_second, const vigil_config_node *map, const char *key,
                      double dflt);
VIGIL_EXTERN(int)
vigil_config_get_percent(double *out_ratio, const vigil_config_node *map, const char *key,
                         double dflt);
/**@}*/

/**
 * Fails with VIGIL_EMISSING and a located message naming @p key
 * ("file:4:3: actions[0]: missing required key \"type\"") when @p map lacks it
 * (located at the map), or when its value is null (located at the value:
 * "actions[0].type: required key \"type\" has no value"). A null node or NULL
 * @p map lacks every key.
 * @return VIGIL_OK or VIGIL_EMISSING (VIGIL_ETYPE when @p map is not a map).
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_config_require(const vigil_config_node *map, const char *key);

#ifdef __cplusplus
}
#endif

#endif
