/* The action registry: action types, configured actions with their
 * allowlists, validation and execution; plus requests and results. */
#include "action/action_int.h"
#include "internal/plugin.h"

#include <ctype.h>
#include <stddef.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define APPROVAL_EXPIRES_DEFAULT_MS (15 * 60 * 1000)

/* ---- statuses, requests, results ------------------------------------------ */

static const char *const k_status[] = {"succeeded", "failed",  "timeout",
                                       "refused",   "dry_run", "pending_approval"};

const char *vigil_action_status_name(vigil_action_status status)
{
    if ((unsigned)status >= VIGIL__ARRAY_LEN(k_status))
        return "unknown";
    return k_status[status];
}

int vigil_action_status_parse(vigil_action_status *out, const char *name)
{
    if (!out || !name)
        return vigil__error_set(VIGIL_EINVAL, "vigil_action_status_parse: NULL argument");
    for (size_t i = 0; i < VIGIL__ARRAY_LEN(k_status); i++) {
        if (strcmp(name, k_status[i]) == 0) {
            *out = (vigil_action_status)i;
            return VIGIL_OK;
        }
    }
    return vigil__error_set(VIGIL_EVALUE, "unknown action status \"%.64s\"", name);
}

const char *vigil_action_request_param(const vigil_action_request *request, const char *key)
{
    if (!request || !key || !request->params)
        return NULL;
    for (size_t i = 0; i < request->nparams; i++)
        if (request->params[i].key && strcmp(request->params[i].key, key) == 0)
            return request->params[i].value;
    return NULL;
}

/* Bytes of a result of @p version the caller allocated: a version 1 result
 * ends before retry_after_ms and is never written past that. */
static size_t result_size(unsigned int version)
{
    return version >= 2 ? sizeof(vigil_action_result)
                        : offsetof(vigil_action_result, retry_after_ms);
}

void vigil_action_result_clear(vigil_action_result *result)
{
    if (!result)
        return;
    vigil__free(result->id);
    vigil__free(result->reason);
    vigil__free(result->output);
    unsigned int version = result->version;
    vigil_action_result empty = VIGIL__ACTION_RESULT_EMPTY;
    memcpy(result, &empty, result_size(version));
    result->version = version;
}

static int check_result(const vigil_action_result *result, const char *fn)
{
    if (!result)
        return vigil__error_set(VIGIL_EINVAL, "%s: NULL result", fn);
    if (result->version == 0 || result->version > VIGIL_ACTION_RESULT_VERSION)
        return vigil__error_set(VIGIL_EVERSION, "%s: result version %u is not supported", fn,
                                result->version);
    return VIGIL_OK;
}

static int set_str(char **slot, const char *s)
{
    char *c = NULL;
    if (s && !(c = vigil__strdup(s)))
        return vigil__error_oom();
    vigil__free(*slot);
    *slot = c;
    return VIGIL_OK;
}

int vigil_action_result_set_id(vigil_action_result *result, const char *id)
{
    int vrc = check_result(result, "vigil_action_result_set_id");
    if (vrc)
        return vrc;
    return set_str(&result->id, id);
}

int vigil_action_result_set_reason(vigil_action_result *result, const char *reason)
{
    int vrc = check_result(result, "vigil_action_result_set_reason");
    if (vrc)
        return vrc;
    return set_str(&result->reason, reason);
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80)
        return s[0] ? 1 : 0;
    size_t len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
    if (!len || len > n || s[0] > 0xf4)
        return 0;
    return vigil__utf8_valid((const char *)s, len) ? len : 0;
}

int vigil_action_result_set_output(vigil_action_result *result, const char *data, size_t len)
{
    int vrc = check_result(result, "vigil_action_result_set_output");
    if (vrc)
        return vrc;
    if (!data) {
        vigil__free(result->output);
        result->output = NULL;
        result->output_len = 0;
        result->output_truncated = 0;
        return VIGIL_OK;
    }
    vigil_buf b = VIGIL_BUF_INIT;
    int rc = vigil__buf_grow(&b, len);
    const unsigned char *p = (const unsigned char *)data;
    for (size_t i = 0; i < len && !rc;) {
        size_t k = utf8_seq(p + i, len - i);
        if (k) {
            rc = vigil__buf_put(&b, data + i, k);
            i += k;
        } else {
            rc = vigil__buf_puts(&b, "\xef\xbf\xbd"); /* U+FFFD */
            i++;
        }
    }
    if (!rc) /* terminates an empty output too (grow alone leaves it unterminated) */
        rc = vigil__buf_put(&b, "", 0);
    if (rc) {
        vigil_buf_dispose(&b);
        return rc;
    }
    vigil__free(result->output);
    result->output_len = b.size;
    result->output = vigil__buf_detach(&b);
    result->output_truncated = 0;
    return VIGIL_OK;
}

int vigil_action_result_copy(vigil_action_result *dst, const vigil_action_result *src)
{
    if (!dst || !src || dst == src)
        return vigil__error_set(VIGIL_EINVAL, "vigil_action_result_copy: bad arguments");
    int vrc = check_result(dst, "vigil_action_result_copy");
    if (vrc)
        return vrc;
    vigil_action_result_clear(dst);
    vigil_action_result r = VIGIL__ACTION_RESULT_EMPTY;
    memcpy(&r, src, result_size(src->version));
    if (src->version < 2)
        r.retry_after_ms = 0;
    r.version = dst->version;
    r.id = r.reason = r.output = NULL;
    if ((src->id && !(r.id = vigil__strdup(src->id))) ||
        (src->reason && !(r.reason = vigil__strdup(src->reason))) ||
        (src->output && !(r.output = vigil__strndup(src->output, src->output_len)))) {
        vigil_action_result_clear(&r);
        return vigil__error_oom();
    }
    memcpy(dst, &r, result_size(dst->version));
    return VIGIL_OK;
}

int vigil_action_buf_append(vigil_buf *buf, const char *data, size_t len)
{
    if (!buf || (!data && len))
        return vigil__error_set(VIGIL_EINVAL, "vigil_action_buf_append: bad arguments");
    return vigil__buf_put(buf, data ? data : "", len);
}

/* ---- the registry ------------------------------------------------------------ */

typedef struct reg_action {
    char *name;
    const vigil_action_type *type; /* a copy in the registry's list */
    void *state;
    char *targets;
    regex_t targets_re;
    bool targets_compiled;
    bool targets_default;
    size_t nparams;
    char **pnames;
    char **ppatterns;
    regex_t *pre;
    int64_t timeout_ms;
    int dry_run;
    int approval_required;
    int64_t approval_expires_ms;
    char *file;
    unsigned int line;
} reg_action;

struct vigil_action_registry {
    vigil_logger logger;
    char *base_dir;
    char *host;
    vigil_getenv_cb getenv;
    void *getenv_payload;
    vigil_clock_cb clock;
    void *clock_payload;
    int64_t max_timeout_ms;
    char *state_dir;
    /* vigil_action_type copies; its fallback is another registry's list,
     * borrowed (vigil__action_registry_set_fallback) */
    vigil__plugin_list types;
    reg_action **actions;
    size_t nactions, cactions;
};

static const char *default_getenv(void *payload, const char *name)
{
    (void)payload;
    return getenv(name);
}

static int64_t default_clock(void *payload)
{
    (void)payload;
    return vigil__now_ms();
}

int vigil_action_registry_options_init(vigil_action_registry_options *opts, unsigned int version)
{
    if (!opts)
        return vigil__error_set(VIGIL_EINVAL, "vigil_action_registry_options_init: NULL options");
    if (vigil__version_check("action registry options", version,
                             VIGIL_ACTION_REGISTRY_OPTIONS_VERSION))
        return VIGIL_EVERSION;
    vigil_action_registry_options init = VIGIL_ACTION_REGISTRY_OPTIONS_INIT;
    *opts = init;
    return VIGIL_OK;
}

int vigil_action_exec_options_init(vigil_action_exec_options *opts, unsigned int version)
{
    if (!opts)
        return vigil__error_set(VIGIL_EINVAL, "vigil_action_exec_options_init: NULL options");
    if (vigil__version_check("action exec options", version, VIGIL_ACTION_EXEC_OPTIONS_VERSION))
        return VIGIL_EVERSION;
    vigil_action_exec_options init = VIGIL_ACTION_EXEC_OPTIONS_INIT;
    *opts = init;
    return VIGIL_OK;
}

int vigil_action_registry_new(vigil_action_registry **out,
                              const vigil_action_registry_options *opts)
{
    if (!out)
        return vigil__error_set(VIGIL_EINVAL, "vigil_action_registry_new: NULL out");
    *out = NULL;
    vigil_action_registry_options dflt = VIGIL_ACTION_REGISTRY_OPTIONS_INIT;
    if (!opts)
        opts = &dflt;
    if (vigil__version_check("action registry options", opts->version,
                             VIGIL_ACTION_REGISTRY_OPTIONS_VERSION))
        return VIGIL_EVERSION;
    if (opts->base_dir && opts->base_dir[0] != '/')
        return vigil__error_set(VIGIL_EINVAL,
                                "action registry options: base_dir \"%.200s\" is not absolute",
                                opts->base_dir);
    if (opts->max_timeout_ms < 0)
        return vigil__error_set(VIGIL_EINVAL, "action registry options: max_timeout_ms < 0");
    vigil_action_registry *r = vigil__calloc(1, sizeof(*r));
    if (!r)
        return vigil__error_oom();
    r->logger = opts->logger;
    r->getenv = opts->getenv ? opts->getenv : default_getenv;
    r->getenv_payload = opts->getenv_payload;
    r->clock = opts->clock ? opts->clock : default_clock;
    r->clock_payload = opts->clock_payload;
    r->max_timeout_ms = opts->max_timeout_ms;
    char host[256];
    const char *h = opts->host;
    if (!h) {
        if (gethostname(host, sizeof(host)) != 0)
            snprintf(host, sizeof(host), "localhost");
        host[sizeof(host) - 1] = '\0';
        h = host;
    }
    if ((opts->base_dir && !(r->base_dir = vigil__strdup(opts->base_dir))) ||
        !(r->host = vigil__strdup(h))) {
        vigil_action_registry_free(r);
        return vigil__error_oom();
    }
    if (opts->state_dir) {
        int rc = vigil__action_path(&r->state_dir, NULL, opts->state_dir, opts->base_dir);
        if (rc) {
            vigil_action_registry_free(r);
            return rc == VIGIL_ENOMEM ? rc
                                      : vigil__error_set(VIGIL_EINVAL,
                                                         "action registry options: state_dir "
                                                         "\"%.200s\" is relative and there is "
                                                         "no base_dir",
                                                         opts->state_dir);
        }
    }
    *out = r;
    return VIGIL_OK;
}

static void action_free(reg_action *a)
{
    if (!a)
        return;
    if (a->type && a->type->destroy)
        a->type->destroy(a->state);
    if (a->targets_compiled)
        regfree(&a->targets_re);
    for (size_t i = 0; i < a->nparams; i++) {
        if (a->pre && a->ppatterns && a->ppatterns[i] && a->pnames[i])
            regfree(&a->pre[i]);
    }
    if (a->pnames)
        for (size_t i = 0; i < a->nparams; i++)
            vigil__free(a->pnames[i]);
    if (a->ppatterns)
        for (size_t i = 0; i < a->nparams; i++)
            vigil__free(a->ppatterns[i]);
    vigil__free(a->pnames);
    vigil__free(a->ppatterns);
    vigil__free(a->pre);
    vigil__free(a->name);
    vigil__free(a->targets);
    vigil__free(a->file);
    vigil__free(a);
}

void vigil_action_registry_free(vigil_action_registry *registry)
{
    if (!registry)
        return;
    for (size_t i = 0; i < registry->nactions; i++)
        action_free(registry->actions[i]);
    vigil__free(registry->actions);
    vigil__plugin_list_dispose(&registry->types);
    vigil__free(registry->base_dir);
    vigil__free(registry->state_dir);
    vigil__free(registry->host);
    vigil__free(registry);
}

VIGIL__PLUGIN_HEAD_CHECK(vigil_action_type);

static const vigil__plugin_kind k_kind = {"action type", VIGIL_ACTION_TYPE_VERSION, "_", 64};

static const vigil_action_type *const k_builtins[] = {
    &vigil__action_exec_type,        &vigil__action_process_type, &vigil__action_systemd_type,
    &vigil__action_signal_type,      &vigil__action_webhook_type, &vigil__action_log_type,
    &vigil__action_restore_file_type};

void vigil__action_registry_set_fallback(vigil_action_registry *registry,
                                         const vigil_action_registry *fallback)
{
    registry->types.fallback = fallback ? &fallback->types : NULL;
}

/* The registry's own types first, then its fallback's. */
static const vigil_action_type *find_type(const vigil_action_registry *r, const char *name)
{
    return vigil__plugin_list_find(&r->types, name);
}

static bool is_builtin(const char *name)
{
    for (size_t i = 0; i < VIGIL__ARRAY_LEN(k_builtins); i++)
        if (strcmp(k_builtins[i]->name, name) == 0)
            return true;
    return false;
}

int vigil_action_register(vigil_action_registry *registry, const vigil_action_type *type)
{
    int rc = vigil__plugin_check(&k_kind, registry, type, type ? type->version : 0,
                                 type ? type->name : NULL);
    if (!rc && (!type->create || !type->execute))
        rc = vigil__plugin_missing(&k_kind, type->name, "create and execute are required");
    if (!rc && is_builtin(type->name))
        rc = vigil__plugin_exists(&k_kind, type->name, true);
    if (rc)
        return vigil__plugin_fail(rc, type ? type->payload : NULL,
                                  type ? type->payload_free : NULL);
    return vigil__plugin_list_add(&registry->types, &k_kind, type, sizeof(*type));
}

int vigil_action_registry_add_builtins(vigil_action_registry *registry)
{
    if (!registry)
        return vigil__error_set(VIGIL_EINVAL, "vigil_action_registry_add_builtins: NULL registry");
    for (size_t i = 0; i < VIGIL__ARRAY_LEN(k_builtins); i++) {
        int rc = vigil__plugin_list_add(&registry->types, &k_kind, k_builtins[i],
                                        sizeof(*k_builtins[i]));
        if (rc)
            return rc;
    }
    return VIGIL_OK;
}

/* ---- configuring actions ----------------------------------------------------- */

static const char *const k_common_keys[] = {"name",    "type",     "targets", "timeout",
                                            "dry_run", "approval", "params"};

static bool action_name_valid(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!(isalnum((unsigned char)s[n]) || s[n] == '_' || s[n] == '-' || s[n] == '.'))
            return false;
    return n > 0 && n <= VIGIL_ACTION_NAME_MAX;
}

/* Compiles `pattern` anchored at both ends. */
static int compile_anchored(regex_t *re, const vigil_config_node *node, const char *pattern)
{
    vigil_buf b = VIGIL_BUF_INIT;
    int rc = vigil__buf_printf(&b, "^(%s)$", pattern);
    if (rc)
        return rc;
    int e = regcomp(re, b.ptr, REG_EXTENDED | REG_NOSUB);
    vigil_buf_dispose(&b);
    if (e) {
        char msg[256];
        regerror(e, re, msg, sizeof(msg));
        return vigil__action_cfg_error(node, VIGIL_EVALUE, "bad regular expression \"%.200s\": %s",
                                       pattern, msg);
    }
    return VIGIL_OK;
}

/* Warns when a pattern accepts a value starting with '-': placed in an argv
 * element, such a value is read as an option by most programs
 * ("--output=/etc/passwd"). Probes a few option shapes. */
static void warn_leading_dash(const vigil_action_registry *r, const char *action, const char *what,
                              const regex_t *re, const char *pattern)
{
    static const char *const probes[] = {"-", "--", "-x", "-rf", "-1", "--help", "--x=y", NULL};
    for (size_t i = 0; probes[i]; i++)
        if (regexec(re, probes[i], 0, NULL, 0) == 0) {
            vigil_buf p = VIGIL_BUF_INIT, v = VIGIL_BUF_INIT;
            if (!vigil__logfmt_value(&p, pattern) && !vigil__logfmt_value(&v, probes[i]))
                vigil__log(&r->logger, VIGIL_LOG_WARN, "action",
                           "a pattern accepts values starting with '-', which programs may read "
                           "as options; anchor it to refuse them (e.g. ^[a-z0-9][a-z0-9-]*$)",
                           "action=%s what=%s pattern=%s accepts=%s", action, what, p.ptr, v.ptr);
            vigil_buf_dispose(&p);
            vigil_buf_dispose(&v);
            return;
        }
}

static int check_keys(const vigil_config_node *map, const vigil_action_type *t)
{
    size_t n = VIGIL__ARRAY_LEN(k_common_keys), extra = 0;
    while (t->keys && t->keys[extra])
        extra++;
    const char **keys = vigil__calloc(n + extra + 1, sizeof(char *));
    if (!keys)
        return vigil__error_oom();
    for (size_t i = 0; i < n; i++)
        keys[i] = k_common_keys[i];
    for (size_t i = 0; i < extra; i++)
        keys[n + i] = t->keys[i];
    int rc = vigil_config_expect_keys(map, keys);
    vigil__free(keys);
    return rc;
}

static int parse_params(reg_action *a, const vigil_config_node *map)
{
    const vigil_config_node *params = vigil_config_node_get(map, "params");
    if (!params || vigil_config_node_kind(params) == VIGIL_CONFIG_NULL)
        return VIGIL_OK;
    int rc = vigil_config_map(params);
    if (rc)
        return rc;
    size_t n = vigil_config_node_len(params);
    if (n > VIGIL_ACTION_PARAMS_MAX)
        return vigil__action_cfg_error(params, VIGIL_ELIMIT, "at most %d params allowed",
                                       VIGIL_ACTION_PARAMS_MAX);
    if (n == 0)
        return VIGIL_OK;
    a->pnames = vigil__calloc(n, sizeof(char *));
    a->ppatterns = vigil__calloc(n, sizeof(char *));
    a->pre = vigil__calloc(n, sizeof(regex_t));
    if (!a->pnames || !a->ppatterns || !a->pre)
        return vigil__error_oom();
    for (size_t i = 0; i < n; i++) {
        const char *key = vigil_config_node_key_at(params, i);
        const vigil_config_node *v = vigil_config_node_at(params, i);
        const char *pattern;
        if (!action_name_valid(key))
            return vigil__action_cfg_error(v, VIGIL_ENAME,
                                           "param name \"%.64s\" must match [A-Za-z0-9_.-]+", key);
        if ((rc = vigil_config_string(&pattern, v)))
            return rc;
        if (!(a->pnames[i] = vigil__strdup(key)))
            return vigil__error_oom();
        a->nparams = i + 1;
        if ((rc = compile_anchored(&a->pre[i], v, pattern))) {
            vigil__free(a->pnames[i]);
            a->pnames[i] = NULL;
            return rc;
        }
        if (!(a->ppatterns[i] = vigil__strdup(pattern))) {
            regfree(&a->pre[i]);
            return vigil__error_oom();
        }
    }
    return VIGIL_OK;
}

static int parse_action(vigil_action_registry *r, const vigil_config_node *map, reg_action **out)
{
    *out = NULL;
    int rc = vigil_config_map(map);
    if (rc)
        return rc;
    if ((rc = vigil_config_require(map, "name")) || (rc = vigil_config_require(map, "type")))
        return rc;
    const char *name, *type_name;
    if ((rc = vigil_config_get_string(&name, map, "name", NULL)) ||
        (rc = vigil_config_get_string(&type_name, map, "type", NULL)))
        return rc;
    if (!action_name_valid(name))
        return vigil__action_cfg_error(vigil_config_node_get(map, "name"), VIGIL_ENAME,
                                       "action name \"%.64s\" must match [A-Za-z0-9_.-]+ (at most "
                                       "%d bytes)",
                                       name, VIGIL_ACTION_NAME_MAX);
    const vigil_action_type *t = find_type(r, type_name);
    if (!t) {
        vigil_buf known = VIGIL_BUF_INIT;
        for (size_t i = 0, n = vigil__plugin_list_count(&r->types); i < n; i++)
            vigil__buf_printf(&known, "%s%s", known.size ? ", " : "",
                              vigil__plugin_list_name_at(&r->types, i));
        rc = vigil__action_cfg_error(vigil_config_node_get(map, "type"), VIGIL_EUNSUPPORTED,
                                     "unknown action type \"%.64s\" (known: %s)", type_name,
                                     known.ptr ? known.ptr : "none");
        vigil_buf_dispose(&known);
        return rc;
    }
    if ((rc = check_keys(map, t)))
        return rc;
    reg_action *a = vigil__calloc(1, sizeof(*a));
    if (!a)
        return vigil__error_oom();
    const char *targets;
    const vigil_config_node *approval = vigil_config_node_get(map, "approval");
    if (!(a->name = vigil__strdup(name))) {
        rc = vigil__error_oom();
        goto fail;
    }
    if ((rc = vigil_config_get_string(&targets, map, "targets", NULL)))
        goto fail;
    a->targets_default = targets == NULL;
    if (!targets)
        targets = VIGIL_ACTION_DEFAULT_TARGETS;
    if (!(a->targets = vigil__strdup(targets))) {
        rc = vigil__error_oom();
        goto fail;
    }
    if ((rc = compile_anchored(&a->targets_re, vigil_config_node_get(map, "targets"), targets)))
        goto fail;
    a->targets_compiled = true;
    if ((rc = vigil_config_get_duration(&a->timeout_ms, map, "timeout",
                                        VIGIL_ACTION_TIMEOUT_DEFAULT_MS)))
        goto fail;
    if (a->timeout_ms <= 0) {
        rc = vigil__action_cfg_error(vigil_config_node_get(map, "timeout"), VIGIL_EVALUE,
                                     "the timeout must be more than 0");
        goto fail;
    }
    if (r->max_timeout_ms > 0 && a->timeout_ms > r->max_timeout_ms)
        a->timeout_ms = r->max_timeout_ms;
    if ((rc = vigil_config_get_bool(&a->dry_run, map, "dry_run", 0)))
        goto fail;
    a->approval_expires_ms = APPROVAL_EXPIRES_DEFAULT_MS;
    if (approval && vigil_config_node_kind(approval) != VIGIL_CONFIG_NULL) {
        static const char *const akeys[] = {"required", "expires", NULL};
        if ((rc = vigil_config_map(approval)) || (rc = vigil_config_expect_keys(approval, akeys)) ||
            (rc = vigil_config_get_bool(&a->approval_required, approval, "required", 0)) ||
            (rc = vigil_config_get_duration(&a->approval_expires_ms, approval, "expires",
                                            APPROVAL_EXPIRES_DEFAULT_MS)))
            goto fail;
        if (a->approval_expires_ms <= 0) {
            rc = vigil__action_cfg_error(vigil_config_node_get(approval, "expires"), VIGIL_EVALUE,
                                         "approval expiry must be more than 0");
            goto fail;
        }
    }
    if ((rc = parse_params(a, map)))
        goto fail;
    if (!a->targets_default)
        warn_leading_dash(r, a->name, "targets", &a->targets_re, a->targets);
    for (size_t k = 0; k < a->nparams; k++) {
        char what[VIGIL_ACTION_NAME_MAX + 16];
        snprintf(what, sizeof(what), "params.%s", a->pnames[k]);
        warn_leading_dash(r, a->name, what, &a->pre[k], a->ppatterns[k]);
    }
    const char *file = vigil_config_node_file(map);
    if (file && !(a->file = vigil__strdup(file))) {
        rc = vigil__error_oom();
        goto fail;
    }
    a->line = vigil_config_node_line(map);
    vigil_action_context ctx = {VIGIL_ACTION_CONTEXT_VERSION,
                                a->name,
                                &r->logger,
                                r->base_dir,
                                r->host,
                                a->timeout_ms,
                                r->getenv,
                                r->getenv_payload,
                                r->clock,
                                r->clock_payload,
                                t->payload,
                                r->state_dir};
    void *state = NULL;
    if ((rc = t->create(&state, map, &ctx)))
        goto fail;
    a->type = t;
    a->state = state;
    *out = a;
    return VIGIL_OK;
fail:
    action_free(a);
    return rc;
}

static const reg_action *find_action(const vigil_action_registry *r, const char *name)
{
    for (size_t i = 0; i < r->nactions; i++)
        if (strcmp(r->actions[i]->name, name) == 0)
            return r->actions[i];
    return NULL;
}

int vigil_action_registry_configure(vigil_action_registry *registry, const vigil_config_node *list)
{
    if (!registry)
        return vigil__error_set(VIGIL_EINVAL, "vigil_action_registry_configure: NULL registry");
    if (!list || vigil_config_node_kind(list) == VIGIL_CONFIG_NULL)
        return VIGIL_OK;
    int rc = vigil_config_list(list);
    if (rc)
        return rc;
    size_t n = vigil_config_node_len(list);
    if (n == 0)
        return VIGIL_OK;
    if (registry->nactions + n > 100000)
        return vigil__action_cfg_error(list, VIGIL_ELIMIT, "too many actions");
    if (vigil__array_grow((void **)&registry->actions, &registry->cactions, registry->nactions + n,
                          sizeof(reg_action *)))
        return vigil__error_oom();
    size_t base = registry->nactions;
    for (size_t i = 0; i < n; i++) {
        const vigil_config_node *item = vigil_config_node_at(list, i);
        reg_action *a;
        if ((rc = parse_action(registry, item, &a)))
            break;
        if (find_action(registry, a->name)) {
            rc = vigil__action_cfg_error(vigil_config_node_get(item, "name"), VIGIL_EEXISTS,
                                         "an action named \"%s\" is already configured", a->name);
            action_free(a);
            break;
        }
        registry->actions[registry->nactions++] = a;
    }
    if (rc) { /* all or nothing */
        while (registry->nactions > base)
            action_free(registry->actions[--registry->nactions]);
    }
    return rc;
}

int vigil_action_registry_add(vigil_action_registry *registry, const vigil_config_node *action)
{
    if (!registry || !action)
        return vigil__error_set(VIGIL_EINVAL, "vigil_action_registry_add: NULL argument");
    if (vigil__array_grow((void **)&registry->actions, &registry->cactions, registry->nactions + 1,
                          sizeof(reg_action *)))
        return vigil__error_oom();
    reg_action *a;
    int rc = parse_action(registry, action, &a);
    if (rc)
        return rc;
    if (find_action(registry, a->name)) {
        rc = vigil__action_cfg_error(vigil_config_node_get(action, "name"), VIGIL_EEXISTS,
                                     "an action named \"%s\" is already configured", a->name);
        action_free(a);
        return rc;
    }
    registry->actions[registry->nactions++] = a;
    return VIGIL_OK;
}

size_t vigil_action_registry_count(const vigil_action_registry *registry)
{
    return registry ? registry->nactions : 0;
}

static void fill_info(const reg_action *a, vigil_action_info *out)
{
    out->name = a->name;
    out->type = a->type->name;
    out->targets = a->targets;
    out->timeout_ms = a->timeout_ms;
    out->dry_run = a->dry_run;
    out->approval_required = a->approval_required;
    out->approval_expires_ms = a->approval_expires_ms;
    out->nparams = a->nparams;
    out->param_names = (const char *const *)a->pnames;
    out->param_patterns = (const char *const *)a->ppatterns;
    out->file = a->file;
    out->line = a->line;
}

int vigil_action_registry_info(const vigil_action_registry *registry, size_t index,
                               vigil_action_info *out)
{
    if (!registry || !out)
        return vigil__error_set(VIGIL_EINVAL, "vigil_action_registry_info: bad arguments");
    if (vigil__version_check("action info", out->version, VIGIL_ACTION_INFO_VERSION))
        return VIGIL_EVERSION;
    if (index >= registry->nactions)
        return vigil__error_set(VIGIL_ENOTFOUND, "no action at index %zu", index);
    fill_info(registry->actions[index], out);
    return VIGIL_OK;
}

int vigil_action_registry_find(const vigil_action_registry *registry, const char *name,
                               vigil_action_info *out)
{
    if (!registry || !name || !out)
        return vigil__error_set(VIGIL_EINVAL, "vigil_action_registry_find: bad arguments");
    if (vigil__version_check("action info", out->version, VIGIL_ACTION_INFO_VERSION))
        return VIGIL_EVERSION;
    const reg_action *a = find_action(registry, name);
    if (!a) {
        vigil_buf b = VIGIL_BUF_INIT;
        vigil__action_quote(&b, name, 64);
        int rc = vigil__error_set(VIGIL_ENOTFOUND, "no action named %s", b.ptr ? b.ptr : "");
        vigil_buf_dispose(&b);
        return rc;
    }
    fill_info(a, out);
    return VIGIL_OK;
}

/* ---- validation --------------------------------------------------------------- */

static bool has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

/* Records VIGIL_EPERM "ACTION: WHAT \"VALUE\" REASON". */
static int refuse_value(const char *action, const char *what, const char *value, const char *why)
{
    vigil_buf b = VIGIL_BUF_INIT;
    vigil__action_quote(&b, value, 64);
    int rc =
        vigil__error_set(VIGIL_EPERM, "%s: %s %s %s", action, what, b.ptr ? b.ptr : "\"\"", why);
    vigil_buf_dispose(&b);
    return rc;
}

/* Control characters are refused in targets and params whatever the
 * configured pattern allows: they reach argv elements, unit names and log
 * lines, and no legitimate target needs one. */
static int check_value(const char *action, const char *what, const char *v, const regex_t *re,
                       const char *pattern)
{
    size_t len = strlen(v);
    if (len > VIGIL_ACTION_VALUE_MAX) {
        char why[64];
        snprintf(why, sizeof(why), "is longer than %d bytes", VIGIL_ACTION_VALUE_MAX);
        return refuse_value(action, what, v, why);
    }
    if (!vigil__utf8_valid(v, len))
        return refuse_value(action, what, v, "is not valid UTF-8");
    if (has_control(v))
        return refuse_value(action, what, v, "contains a control character");
    if (regexec(re, v, 0, NULL, 0) != 0) {
        vigil_buf why = VIGIL_BUF_INIT;
        int rc = vigil__buf_puts(&why, "does not match ");
        if (!rc)
            rc = vigil__action_quote(&why, pattern, 200);
        rc = rc ? rc : refuse_value(action, what, v, why.ptr);
        vigil_buf_dispose(&why);
        return rc;
    }
    return VIGIL_OK;
}

static int check_text(const char *what, const char *s, size_t max, bool allow_control)
{
    if (!s)
        return VIGIL_OK;
    size_t len = strlen(s);
    if (len > max)
        return vigil__error_set(VIGIL_EPERM, "request %s is longer than %zu bytes", what, max);
    if (!vigil__utf8_valid(s, len))
        return vigil__error_set(VIGIL_EPERM, "request %s is not valid UTF-8", what);
    if (!allow_control && has_control(s))
        return vigil__error_set(VIGIL_EPERM, "request %s contains a control character", what);
    return VIGIL_OK;
}

/* The allowlist check; VIGIL_EPERM / VIGIL_ENOTFOUND with a message. */
static int check_request(const vigil_action_registry *r, const vigil_action_request *req,
                         const reg_action **out)
{
    *out = NULL;
    int rc;
    if ((rc = check_text("id", req->id, VIGIL_ACTION_ID_MAX, false)) ||
        (rc = check_text("reason", req->reason, VIGIL_ACTION_TEXT_MAX, true)) ||
        (rc = check_text("policy", req->policy, VIGIL_ACTION_TEXT_MAX, false)))
        return rc;
    if (!req->action || !*req->action)
        return vigil__error_set(VIGIL_EPERM, "the request names no action");
    const reg_action *a = find_action(r, req->action);
    if (!a) {
        vigil_buf b = VIGIL_BUF_INIT;
        vigil__action_quote(&b, req->action, 64);
        rc = vigil__error_set(VIGIL_ENOTFOUND, "no action named %s", b.ptr ? b.ptr : "");
        vigil_buf_dispose(&b);
        return rc;
    }
    const char *target = req->target ? req->target : "";
    if ((rc = check_value(a->name, "target", target, &a->targets_re, a->targets)))
        return rc;
    if (req->nparams > VIGIL_ACTION_PARAMS_MAX)
        return vigil__error_set(VIGIL_EPERM, "%s: more than %d params", a->name,
                                VIGIL_ACTION_PARAMS_MAX);
    if (req->nparams && !req->params)
        return vigil__error_set(VIGIL_EPERM, "%s: nparams set without params", a->name);
    for (size_t i = 0; i < req->nparams; i++) {
        const vigil_action_param *p = &req->params[i];
        if (!p->key || !p->value)
            return vigil__error_set(VIGIL_EPERM, "%s: params[%zu] has no key or value", a->name, i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(req->params[j].key, p->key) == 0)
                return refuse_value(a->name, "param", p->key, "is given twice");
        size_t k = 0;
        while (k < a->nparams && strcmp(a->pnames[k], p->key) != 0)
            k++;
        if (k == a->nparams)
            return refuse_value(a->name, "param", p->key,
                                "is not allowed (not listed in the action's params)");
        char what[VIGIL_ACTION_NAME_MAX + 16];
        snprintf(what, sizeof(what), "param %s", a->pnames[k]);
        if ((rc = check_value(a->name, what, p->value, &a->pre[k], a->ppatterns[k])))
            return rc;
    }
    if (a->type->validate && (rc = a->type->validate(a->state, req))) {
        if (rc == VIGIL_EPERM && strncmp(vigil_error_last()->message, a->name, strlen(a->name)))
            vigil__error_prefix("%s", a->name);
        return rc;
    }
    *out = a;
    return VIGIL_OK;
}

/* Fills a REFUSED "not_allowed" result from the last error (keeps it). */
static int refuse_result(vigil_action_result *result, int code)
{
    vigil_error saved = *vigil_error_last();
    char msg[1024];
    snprintf(msg, sizeof(msg), "%s", saved.message);
    result->status = VIGIL_ACTION_REFUSED;
    int rc = vigil_action_result_set_reason(result, "not_allowed");
    if (!rc)
        rc = vigil_action_result_set_output(result, msg, strlen(msg));
    if (rc)
        return rc;
    vigil__error_set(code, "%s", msg);
    return code;
}

/* Checks `result` for function `fn`, clears it and copies the request's id
 * into it (when the id is valid). */
static int result_start(vigil_action_result *result, const vigil_action_request *request,
                        const char *fn)
{
    int rc = check_result(result, fn);
    if (rc)
        return rc;
    vigil_action_result_clear(result);
    if (request->id && check_text("id", request->id, VIGIL_ACTION_ID_MAX, false) == VIGIL_OK &&
        vigil_action_result_set_id(result, request->id))
        return VIGIL_ENOMEM;
    return VIGIL_OK;
}

int vigil_action_registry_validate(const vigil_action_registry *registry,
                                   const vigil_action_request *request, vigil_action_result *result)
{
    if (!registry || !request)
        return vigil__error_set(VIGIL_EINVAL, "vigil_action_registry_validate: bad arguments");
    if (vigil__version_check("action request", request->version, VIGIL_ACTION_REQUEST_VERSION))
        return VIGIL_EVERSION;
    if (result) {
        int vrc = result_start(result, request, "vigil_action_registry_validate");
        if (vrc)
            return vrc;
    }
    const reg_action *a;
    int rc = check_request(registry, request, &a);
    if (rc && result && (rc == VIGIL_EPERM || rc == VIGIL_ENOTFOUND))
        return refuse_result(result, rc);
    return rc;
}

/* ---- execution ------------------------------------------------------------------ */

static void log_result(const vigil_action_registry *r, const vigil_action_request *req,
                       const vigil_action_result *res)
{
    /* every value from the request is quoted, escaped and clipped: a hostile
     * value can neither forge a log line nor flood the log */
    vigil_buf a = VIGIL_BUF_INIT, t = VIGIL_BUF_INIT, id = VIGIL_BUF_INIT;
    vigil__action_quote(&a, req->action, 64);
    vigil__action_quote(&t, req->target, 128);
    vigil__action_quote(&id, res->id, 128);
    vigil__log(&r->logger,
               res->status == VIGIL_ACTION_SUCCEEDED || res->status == VIGIL_ACTION_DRY_RUN
                   ? VIGIL_LOG_INFO
                   : VIGIL_LOG_WARN,
               "action", "action finished",
               "action=%s id=%s target=%s status=%s reason=%s duration_ms=%lld",
               a.ptr ? a.ptr : "\"\"", res->id && id.ptr ? id.ptr : "-", t.ptr ? t.ptr : "\"\"",
               vigil_action_status_name(res->status), res->reason ? res->reason : "-",
               (long long)res->duration_ms);
    vigil_buf_dispose(&a);
    vigil_buf_dispose(&t);
    vigil_buf_dispose(&id);
}

static int dry_run_result(const reg_action *a, const vigil_action_request *req,
                          vigil_action_result *result)
{
    vigil_buf b = VIGIL_BUF_INIT;
    int rc = vigil__buf_printf(&b, "dry run: %s (%s): ", a->name, a->type->name);
    if (!rc && a->type->describe) {
        rc = a->type->describe(a->state, req, &b);
    } else if (!rc) {
        rc = vigil__buf_puts(&b, "would act on target ");
        if (!rc)
            rc = vigil__action_quote(&b, req->target ? req->target : "", 256);
    }
    if (!rc)
        rc = vigil_action_result_set_reason(result, "dry_run");
    if (!rc)
        rc = vigil_action_result_set_output(result, b.ptr ? b.ptr : "", b.size);
    vigil_buf_dispose(&b);
    result->status = VIGIL_ACTION_DRY_RUN;
    return rc;
}

int vigil_action_registry_execute(vigil_action_registry *registry,
                                  const vigil_action_request *request,
                                  const vigil_action_exec_options *opts,
                                  vigil_action_result *result)
{
    if (!registry || !request || !result)
        return vigil__error_set(VIGIL_EINVAL, "vigil_action_registry_execute: bad arguments");
    if (vigil__version_check("action request", request->version, VIGIL_ACTION_REQUEST_VERSION))
        return VIGIL_EVERSION;
    vigil_action_exec_options dflt = VIGIL_ACTION_EXEC_OPTIONS_INIT;
    if (!opts)
        opts = &dflt;
    if (vigil__version_check("action exec options", opts->version,
                             VIGIL_ACTION_EXEC_OPTIONS_VERSION))
        return VIGIL_EVERSION;
    int vrc = result_start(result, request, "vigil_action_registry_execute");
    if (vrc)
        return vrc;
    int64_t start = vigil__monotonic_ms();
    const reg_action *a;
    int rc = check_request(registry, request, &a);
    if (rc == VIGIL_EPERM || rc == VIGIL_ENOTFOUND) {
        rc = refuse_result(result, rc);
        vigil_error saved = *vigil_error_last();
        char msg[1024];
        snprintf(msg, sizeof(msg), "%s", saved.message);
        log_result(registry, request, result);
        return vigil__error_set(rc, "%s", msg);
    }
    if (rc)
        return rc;
    if (request->dry_run || a->dry_run) {
        rc = dry_run_result(a, request, result);
        if (!rc)
            log_result(registry, request, result);
        return rc;
    }
    int64_t timeout = a->timeout_ms;
    if (opts->timeout_ms > 0 && opts->timeout_ms < timeout)
        timeout = opts->timeout_ms;
    vigil_action_exec ex = {VIGIL_ACTION_EXEC_VERSION, start + timeout, timeout, opts->cancel,
                            opts->cancel_payload};
    result->status = VIGIL_ACTION_FAILED;
    rc = a->type->execute(a->state, request, &ex, result);
    result->duration_ms = vigil__monotonic_ms() - start;
    if (!rc && result->status != VIGIL_ACTION_SUCCEEDED && result->status != VIGIL_ACTION_FAILED &&
        result->status != VIGIL_ACTION_TIMEOUT)
        rc = vigil__error_set(VIGIL_ERROR, "action type %s reported status %s", a->type->name,
                              vigil_action_status_name(result->status));
    if (rc) {
        vigil_error saved = *vigil_error_last();
        char msg[1024];
        snprintf(msg, sizeof(msg), "%s", saved.message);
        result->status = VIGIL_ACTION_FAILED;
        /* best effort: the strings may not fit after an allocation failure */
        vigil_action_result_set_reason(result, "internal_error");
        vigil_action_result_set_output(result, msg, strlen(msg));
        log_result(registry, request, result);
        return vigil__error_set(rc, "%s", msg);
    }
    log_result(registry, request, result);
    return VIGIL_OK;
}

int vigil_action_registry_reap(vigil_action_registry *registry)
{
    if (!registry)
        return vigil__error_set(VIGIL_EINVAL, "vigil_action_registry_reap: NULL registry");
    for (size_t i = 0; i < registry->nactions; i++) {
        const reg_action *a = registry->actions[i];
        if (a->type->reap)
            a->type->reap(a->state);
    }
    return VIGIL_OK;
}
