/* The `systemd` action type: start, stop, restart or reload the unit named
 * by the target, through systemctl (run as exec: argv
 * [systemctl, OP, "--", UNIT], never a shell).
 *
 *   op: restart                         # start | stop | restart | reload
 *   units: ["api.service", "api-*.service"]   # globs (fnmatch) the target must match
 *   systemctl: /usr/bin/systemctl       # absolute path (relative: against base_dir)
 *   max_output: 64KiB
 *
 * Unit names are checked before the globs: [A-Za-z0-9:_.@-]+, at most 255
 * bytes, no leading '-', ending in .service, .socket, .timer, .target,
 * .mount or .path. The "--" also ends systemctl's option parsing.
 * systemctl goes through the same runner and program check as exec.
 * Result reasons: as exec. */
#include "action/action_int.h"

#include <fnmatch.h>
#include <string.h>

typedef struct sd_state {
    const char *op;
    char **units;
    size_t nunits;
    char *systemctl;
    size_t max_output;
    char *name;
} sd_state;

static const char *const k_keys[] = {"op", "units", "systemctl", "max_output", NULL};
static const char *const k_ops[] = {"start", "stop", "restart", "reload"};
static const char *const k_suffixes[] = {".service", ".socket", ".timer",
                                         ".target",  ".mount",  ".path"};

static bool unit_char(char c, bool glob)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ':' ||
           c == '_' || c == '.' || c == '@' || c == '-' ||
           (glob && (c == '*' || c == '?' || c == '[' || c == ']' || c == '!'));
}

static bool has_suffix(const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < VIGIL__ARRAY_LEN(k_suffixes); i++) {
        size_t k = strlen(k_suffixes[i]);
        if (n > k && strcmp(s + n - k, k_suffixes[i]) == 0)
            return true;
    }
    return false;
}

/* NULL when valid, else why not. */
static const char *unit_problem(const char *s, bool glob)
{
    size_t n = strlen(s);
    if (n == 0)
        return "is empty";
    if (n > 255)
        return "is longer than 255 bytes";
    if (s[0] == '-')
        return "starts with '-'";
    for (size_t i = 0; i < n; i++)
        if (!unit_char(s[i], glob))
            return glob ? "may only hold A-Z a-z 0-9 : _ . @ - and the glob characters * ? [ ] !"
                        : "may only hold A-Z a-z 0-9 : _ . @ -";
    if (!has_suffix(s))
        return "must end in .service, .socket, .timer, .target, .mount or .path";
    return NULL;
}

static void sd_destroy(void *p)
{
    sd_state *s = p;
    if (!s)
        return;
    vigil__action_strv_free(s->units);
    vigil__free(s->systemctl);
    vigil__free(s->name);
    vigil__free(s);
}

static int sd_create(void **state, const vigil_config_node *config, const vigil_action_context *ctx)
{
    sd_state *s = vigil__calloc(1, sizeof(*s));
    if (!s)
        return vigil__error_oom();
    const char *op, *systemctl;
    int rc = vigil_config_get_string(&op, config, "op", "restart");
    if (!rc) {
        for (size_t i = 0; i < VIGIL__ARRAY_LEN(k_ops) && !s->op; i++)
            if (strcmp(op, k_ops[i]) == 0)
                s->op = k_ops[i];
        if (!s->op)
            rc = vigil__action_cfg_error(vigil_config_node_get(config, "op"), VIGIL_EVALUE,
                                         "expected start, stop, restart or reload, got \"%.64s\"",
                                         op);
    }
    if (!rc)
        rc = vigil_config_require(config, "units");
    if (!rc)
        rc = vigil__action_get_strv(&s->units, &s->nunits, config, "units", 256);
    if (!rc && s->nunits == 0)
        rc = vigil__action_cfg_error(vigil_config_node_get(config, "units"), VIGIL_EVALUE,
                                     "list at least one unit glob");
    for (size_t i = 0; !rc && i < s->nunits; i++) {
        const char *why = unit_problem(s->units[i], true);
        if (why)
            rc = vigil__action_cfg_error(
                vigil_config_node_at(vigil_config_node_get(config, "units"), i), VIGIL_EVALUE,
                "\"%.64s\" is not a unit glob: it %s", s->units[i], why);
    }
    if (!rc)
        rc = vigil_config_get_string(&systemctl, config, "systemctl", "/usr/bin/systemctl");
    if (!rc)
        rc = vigil__action_path(&s->systemctl, vigil_config_node_get(config, "systemctl"),
                                systemctl, ctx->base_dir);
    if (!rc)
        rc = vigil__action_get_output_max(&s->max_output, config);
    if (!rc && !(s->name = vigil__strdup(ctx->action_name)))
        rc = vigil__error_oom();
    if (rc) {
        sd_destroy(s);
        return rc;
    }
    *state = s;
    return VIGIL_OK;
}

static int sd_validate(void *p, const vigil_action_request *req)
{
    sd_state *s = p;
    const char *unit = req->target ? req->target : "";
    vigil_buf q = VIGIL_BUF_INIT;
    vigil__action_quote(&q, unit, 64);
    const char *why = unit_problem(unit, false);
    int rc = VIGIL_OK;
    if (why) {
        rc = vigil__error_set(VIGIL_EPERM, "%s: unit %s %s", s->name, q.ptr ? q.ptr : "", why);
    } else {
        size_t i = 0;
        while (i < s->nunits && fnmatch(s->units[i], unit, 0) != 0)
            i++;
        if (i == s->nunits)
            rc = vigil__error_set(VIGIL_EPERM, "%s: unit %s matches none of the action's units",
                                  s->name, q.ptr ? q.ptr : "");
    }
    vigil_buf_dispose(&q);
    return rc;
}

static int sd_describe(void *p, const vigil_action_request *req, vigil_buf *out)
{
    sd_state *s = p;
    const char *argv[] = {s->systemctl, s->op, "--", req->target ? req->target : "", NULL};
    return vigil__argv_describe(out, argv);
}

static int sd_execute(void *p, const vigil_action_request *req, const vigil_action_exec *exec,
                      vigil_action_result *result)
{
    sd_state *s = p;
    const char *argv[] = {s->systemctl, s->op, "--", req->target ? req->target : "", NULL};
    const char *envp[] = {VIGIL__PROC_PATH, NULL};
    return vigil__action_run(argv, envp, NULL, NULL, exec, s->max_output, result);
}

const vigil_action_type vigil__action_systemd_type = {
    .version = VIGIL_ACTION_TYPE_VERSION,
    .name = "systemd",
    .keys = k_keys,
    .create = sd_create,
    .validate = sd_validate,
    .execute = sd_execute,
    .destroy = sd_destroy,
    .describe = sd_describe,
};
