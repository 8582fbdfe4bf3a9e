/*
 * config_dump - load a YAML configuration with libvigil and print every node
 * as `path = value (file:line:col)`.
 *
 *   config_dump [FILE]     (without FILE, a small built-in document)
 *
 * Exit status 0 on success; 1 with the located error message otherwise.
 * Uses only the public API.
 */
#include <stdio.h>
#include <string.h>

#include <vigil/vigil.h>

static const char k_builtin[] = "agent:\n"
                                "  id: ${USER:-nobody}\n"
                                "  tags: {env: dev}\n"
                                "interval: 10s\n"
                                "defaults: &d {timeout: 2s}\n"
                                "collectors:\n"
                                "  - {type: cpu}\n"
                                "  - *d\n"
                                "spool:\n";

/* Recursion is fine here: the loader refuses nesting deeper than max_depth
 * (64 by default). */
static void dump(const vigil_config_node *node)
{
    const char *path = vigil_config_node_path(node);
    size_t len = vigil_config_node_len(node);
    printf("%s = ", *path ? path : "(root)");
    switch (vigil_config_node_kind(node)) {
    case VIGIL_CONFIG_NULL: printf("~"); break;
    case VIGIL_CONFIG_SCALAR: printf("%s", vigil_config_node_scalar(node)); break;
    case VIGIL_CONFIG_LIST: printf("[%zu item%s]", len, len == 1 ? "" : "s"); break;
    case VIGIL_CONFIG_MAP: printf("{%zu key%s}", len, len == 1 ? "" : "s"); break;
    }
    printf(" (%s:%u:%u)\n", vigil_config_node_file(node), vigil_config_node_line(node),
           vigil_config_node_column(node));
    for (size_t i = 0; i < len; i++)
        dump(vigil_config_node_at(node, i));
}

int main(int argc, char **argv)
{
    vigil_config *config = NULL;
    int rc;
    if (argc > 2) {
        fprintf(stderr, "usage: %s [FILE]\n", argv[0]);
        return 1;
    }
    if (argc == 2)
        rc = vigil_config_load_file(&config, argv[1], NULL);
    else
        rc = vigil_config_load_string(&config, k_builtin, strlen(k_builtin), "builtin.yaml", NULL);
    if (rc != VIGIL_OK) {
        fprintf(stderr, "%s\n", vigil_error_last()->message);
        return 1;
    }
    size_t docs = vigil_config_document_count(config);
    for (size_t d = 0; d < docs; d++) {
        if (docs > 1)
            printf("# document %zu\n", d + 1);
        dump(vigil_config_root(config, d));
    }
    vigil_config_free(config);
    return 0;
}
