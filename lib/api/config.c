/* The `security:` block shared by collector.yaml and remediator.yaml:
 *   security:
 *     tokens: [{name: agents, env: VIGIL_INGEST_TOKEN, scopes: [ingest], agents: [web-01]},
 *              {name: ops, file: /etc/vigil/ops.token, scopes: [admin]}]
 *     allowed_origins: ["https://ops.example.com"]
 *     insecure: false */
#include "api/internal.h"
#include "vigil/metric.h"

#include <stdint.h>
#include <string.h>

#define TOKENS_MAX 64

static int parse_scopes(unsigned int *out, const vigil_config_node *list)
{
    int rc = vigil_config_list(list);
    if (rc)
        return rc;
    unsigned int scopes = 0;
    size_t n = vigil_config_node_len(list);
    if (n == 0)
        return vigil_error_set_at(VIGIL_EVALUE, list,
                                  "a token needs at least one scope (ingest, read, write, admin)");
    for (size_t i = 0; i < n; i++) {
        const vigil_config_node *e = vigil_config_node_at(list, i);
        const char *s;
        if ((rc = vigil_config_string(&s, e)))
            return rc;
        if (strcmp(s, "ingest") == 0)
            scopes |= VIGIL_API_SCOPE_INGEST;
        else if (strcmp(s, "read") == 0)
            scopes |= VIGIL_API_SCOPE_READ;
        else if (strcmp(s, "write") == 0)
            scopes |= VIGIL_API_SCOPE_WRITE;
        else if (strcmp(s, "admin") == 0)
            scopes |= VIGIL_API_SCOPE_ADMIN;
        else
            return vigil_error_set_at(VIGIL_EVALUE, e,
                                      "expected a scope: ingest, read, write or admin");
    }
    *out = scopes;
    return VIGIL_OK;
}

/* `agents: [web-01, "web-*"]`: the strings of the list, borrowed from the
 * configuration, in a new array. */
static int parse_agents(vigil_api_binding *b, const vigil_config_node *list)
{
    int rc = vigil_config_list(list);
    if (rc)
        return rc;
    size_t n = vigil_config_node_len(list);
    if (n == 0 || n > 256)
        return vigil_error_set_at(VIGIL_EVALUE, list,
                                  "expected 1 to 256 agent ids or globs (omit agents: for a token "
                                  "that may speak for every host)");
    const char **a = vigil__calloc(n, sizeof(char *));
    if (!a)
        return vigil__error_oom();
    for (size_t i = 0; i < n; i++) {
        const vigil_config_node *e = vigil_config_node_at(list, i);
        if ((rc = vigil_config_string(&a[i], e))) {
            vigil__free(a);
            return rc;
        }
        if (!*a[i] || strlen(a[i]) > VIGIL_AGENT_ID_MAX) {
            vigil__free(a);
            return vigil_error_set_at(VIGIL_EVALUE, e,
                                      "expected an agent id or glob of 1 to 200 bytes");
        }
    }
    b->agents = a;
    b->nagents = n;
    return VIGIL_OK;
}

static int parse_token(vigil_api_token *t, const vigil_config_node *m)
{
    static const char *const keys[] = {"name", "env", "file", "scopes", "agents", NULL};
    int rc = vigil_config_map(m);
    if (!rc)
        rc = vigil_config_expect_keys(m, keys);
    if (!rc)
        rc = vigil_config_require(m, "name");
    if (!rc)
        rc = vigil_config_require(m, "scopes");
    if (!rc)
        rc = vigil_config_get_string(&t->name, m, "name", NULL);
    if (!rc)
        rc = vigil_config_get_string(&t->env, m, "env", NULL);
    if (!rc)
        rc = vigil_config_get_string(&t->file, m, "file", NULL);
    if (rc)
        return rc;
    if (!*t->name)
        return vigil_error_set_at(VIGIL_EVALUE, vigil_config_node_get(m, "name"),
                                  "a token name must not be empty");
    if (t->env && !*t->env)
        t->env = NULL;
    if (t->file && !*t->file)
        t->file = NULL;
    if ((t->env && t->file) || (!t->env && !t->file))
        return vigil_error_set_at(VIGIL_EVALUE, m, "set exactly one of env and file");
    return parse_scopes(&t->scopes, vigil_config_node_get(m, "scopes"));
}

void vigil__api_security_dispose(vigil__api_security *sec)
{
    for (size_t i = 0; i < sec->nbindings; i++)
        vigil__free((void *)(uintptr_t)sec->bindings[i].agents);
    vigil__free(sec->bindings);
    vigil__free(sec->tokens);
    vigil__free(sec->origins);
    memset(sec, 0, sizeof(*sec));
}

int vigil__api_security_parse(vigil__api_security *out, const vigil_config_node *security)
{
    static const char *const keys[] = {"tokens", "allowed_origins", "insecure", NULL};
    memset(out, 0, sizeof(*out));
    if (!security || vigil_config_node_kind(security) == VIGIL_CONFIG_NULL)
        return VIGIL_OK;
    int rc = vigil_config_map(security);
    if (!rc)
        rc = vigil_config_expect_keys(security, keys);
    if (!rc)
        rc = vigil_config_get_bool(&out->insecure, security, "insecure", 0);
    if (rc)
        return rc;
    const vigil_config_node *toks = vigil_config_node_get(security, "tokens");
    if (toks && vigil_config_node_kind(toks) != VIGIL_CONFIG_NULL) {
        if ((rc = vigil_config_list(toks)))
            return rc;
        size_t n = vigil_config_node_len(toks);
        if (n > TOKENS_MAX)
            return vigil_error_set_at(VIGIL_ELIMIT, toks, "at most 64 tokens");
        if (n) {
            out->tokens = vigil__calloc(n, sizeof(vigil_api_token));
            out->bindings = vigil__calloc(n, sizeof(vigil_api_binding));
            if (!out->tokens || !out->bindings) {
                vigil__api_security_dispose(out);
                return vigil__error_oom();
            }
        }
        for (size_t i = 0; i < n; i++) {
            const vigil_config_node *m = vigil_config_node_at(toks, i);
            if ((rc = parse_token(&out->tokens[i], m))) {
                vigil__api_security_dispose(out);
                return rc;
            }
            out->ntokens++;
            for (size_t k = 0; k < i; k++)
                if (strcmp(out->tokens[k].name, out->tokens[i].name) == 0) {
                    vigil__api_security_dispose(out);
                    return vigil_error_set_at(VIGIL_EVALUE, vigil_config_node_get(m, "name"),
                                              "a token name must be unique");
                }
            const vigil_config_node *ag = vigil_config_node_get(m, "agents");
            if (ag && vigil_config_node_kind(ag) != VIGIL_CONFIG_NULL) {
                vigil_api_binding *b = &out->bindings[out->nbindings];
                if ((rc = parse_agents(b, ag))) {
                    vigil__api_security_dispose(out);
                    return rc;
                }
                b->token = out->tokens[i].name;
                out->nbindings++;
            }
        }
    }
    const vigil_config_node *orig = vigil_config_node_get(security, "allowed_origins");
    if (orig && vigil_config_node_kind(orig) != VIGIL_CONFIG_NULL) {
        if ((rc = vigil_config_list(orig))) {
            vigil__api_security_dispose(out);
            return rc;
        }
        size_t n = vigil_config_node_len(orig);
        if (n > 64) {
            vigil__api_security_dispose(out);
            return vigil_error_set_at(VIGIL_ELIMIT, orig, "at most 64 origins");
        }
        if (n) {
            out->origins = vigil__calloc(n, sizeof(char *));
            if (!out->origins) {
                vigil__api_security_dispose(out);
                return vigil__error_oom();
            }
        }
        for (size_t i = 0; i < n; i++) {
            const vigil_config_node *e = vigil_config_node_at(orig, i);
            const char *s;
            if ((rc = vigil_config_string(&s, e))) {
                vigil__api_security_dispose(out);
                return rc;
            }
            if (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0) {
                vigil__api_security_dispose(out);
                return vigil_error_set_at(VIGIL_EVALUE, e,
                                          "expected an origin such as \"https://ops.example.com\"");
            }
            out->origins[out->norigins++] = s;
        }
    }
    return VIGIL_OK;
}
