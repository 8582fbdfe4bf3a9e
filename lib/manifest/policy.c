/* The built-in Policy resource type: a policy rule managed by Git. Its spec
 * is a rule as in collector.yaml (metadata.name is its name), checked by the
 * policy library's own rule parser, so errors read the same. It has no
 * observed state: it reaches the hub through PUT /v1/policies. */
#include "internal/policy.h"
#include "manifest/manifest_int.h"

#include <string.h>

typedef struct policy_spec {
    char *json; /* the rule as JSON, "name" first */
} policy_spec;

static void policy_destroy(void *state)
{
    policy_spec *p = state;
    if (!p)
        return;
    vigil__free(p->json);
    vigil__free(p);
}

static int policy_parse(void **state, const vigil_config_node *spec,
                        const vigil_resource_context *ctx)
{
    const vigil_manifest *m = ctx->type_payload;
    int rc = vigil__policy_rule_check(spec, ctx->name, m->policy_types);
    if (rc < 0)
        return rc;
    vigil_buf b = VIGIL_BUF_INIT;
    bool first = true;
    if ((rc = vigil__buf_putc(&b, '{')) >= 0 &&
        (rc = vigil__manifest_json_key(&b, &first, "name")) >= 0)
        rc = vigil__manifest_json_str(&b, ctx->name);
    for (size_t i = 0; rc >= 0 && i < vigil_config_node_len(spec); i++)
        if ((rc = vigil__manifest_json_key(&b, &first, vigil_config_node_key_at(spec, i))) >= 0)
            rc = vigil__manifest_node_json_typed(&b, vigil_config_node_at(spec, i));
    if (rc >= 0)
        rc = vigil__buf_putc(&b, '}');
    policy_spec *p = rc >= 0 ? vigil__calloc(1, sizeof(*p)) : NULL;
    if (!p || !(p->json = vigil__buf_detach(&b))) {
        vigil_buf_dispose(&b);
        vigil__free(p);
        return rc < 0 ? rc : vigil__error_oom();
    }
    *state = p;
    return VIGIL_OK;
}

static const char *policy_to_json(const void *state)
{
    return ((const policy_spec *)state)->json;
}

const vigil_resource_type vigil__resource_policy = {
    .version = VIGIL_RESOURCE_TYPE_VERSION,
    .name = "Policy",
    .keys = NULL, /* the rule parser checks the keys of the rule's kind */
    .parse = policy_parse,
    .to_json = policy_to_json,
    .destroy = policy_destroy,
};
