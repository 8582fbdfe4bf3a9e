/* The `exec` action type: runs an argv array (never a shell).
 *
 *   argv: ["/usr/sbin/logrotate", "--force", "{{params.config}}"]
 *   env_passthrough: [LANG]      # besides the fixed PATH
 *   workdir: /                   # default "/"
 *   user: nobody                 # optional, needs root
 *   group: nogroup               # optional, needs root
 *   max_output: 64KiB            # stdout + stderr kept in the result
 *
 * The program goes through the runner's check before every run (lib/proc):
 * an executable regular file that neither group nor others can write, owned
 * by root or the user Vigil runs as.
 *
 * Result reasons: exit_code (non-zero exit), signal (killed by a signal),
 * timeout, cancelled, spawn_failed (the program was refused by the check or
 * could not be executed; the output says why). */
#include "action/action_int.h"

#include <string.h>

typedef struct exec_state {
    vigil__argv_tpl argv;
    char **env_names;
    char *workdir;
    vigil__proc_ids ids;
    size_t max_output;
    char *name;
    vigil_getenv_cb getenv;
    void *getenv_payload;
} exec_state;

static const char *const k_keys[] = {"argv",  "env_passthrough", "workdir", "user",
                                     "group", "max_output",      NULL};

static void exec_destroy(void *p)
{
    exec_state *s = p;
    if (!s)
        return;
    vigil__argv_free(&s->argv);
    vigil__action_strv_free(s->env_names);
    vigil__free(s->workdir);
    vigil__ids_free(&s->ids);
    vigil__free(s->name);
    vigil__free(s);
}

static int exec_create(void **state, const vigil_config_node *config,
                       const vigil_action_context *ctx)
{
    exec_state *s = vigil__calloc(1, sizeof(*s));
    if (!s)
        return vigil__error_oom();
    int rc = vigil__argv_parse(&s->argv, config, "argv", ctx->base_dir, true);
    if (!rc)
        rc = vigil__action_child_parse(&s->env_names, &s->workdir, &s->ids, config, ctx->base_dir);
    if (!rc)
        rc = vigil__action_get_output_max(&s->max_output, config);
    if (!rc && !(s->name = vigil__strdup(ctx->action_name)))
        rc = vigil__error_oom();
    if (rc) {
        exec_destroy(s);
        return rc;
    }
    s->getenv = ctx->getenv;
    s->getenv_payload = ctx->getenv_payload;
    *state = s;
    return VIGIL_OK;
}

static int exec_validate(void *p, const vigil_action_request *req)
{
    exec_state *s = p;
    return vigil__argv_check(&s->argv, req, s->name);
}

static int exec_describe(void *p, const vigil_action_request *req, vigil_buf *out)
{
    exec_state *s = p;
    const char **argv = vigil__calloc(s->argv.n + 1, sizeof(char *));
    if (!argv)
        return vigil__error_oom();
    vigil__argv_expand(&s->argv, req, argv);
    int rc = vigil__argv_describe(out, argv);
    vigil__free(argv);
    return rc;
}

static int exec_execute(void *p, const vigil_action_request *req, const vigil_action_exec *exec,
                        vigil_action_result *result)
{
    exec_state *s = p;
    const char **argv = vigil__calloc(s->argv.n + 1, sizeof(char *));
    char **env = NULL;
    if (!argv)
        return vigil__error_oom();
    int rc = vigil__env_build(&env, s->env_names, s->getenv, s->getenv_payload);
    if (!rc) {
        vigil__argv_expand(&s->argv, req, argv);
        rc = vigil__action_run(argv, (const char *const *)env, s->workdir, &s->ids, exec,
                               s->max_output, result);
    }
    vigil__action_strv_free(env);
    vigil__free(argv);
    return rc;
}

const vigil_action_type vigil__action_exec_type = {
    .version = VIGIL_ACTION_TYPE_VERSION,
    .name = "exec",
    .keys = k_keys,
    .create = exec_create,
    .validate = exec_validate,
    .execute = exec_execute,
    .destroy = exec_destroy,
    .describe = exec_describe,
};
