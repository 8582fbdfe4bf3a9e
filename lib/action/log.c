/* The `log` action type: records the request and does nothing else (shadow
 * mode: see what the policies would do before letting them act).
 *
 *   level: info      # debug | info | warn | error: level of the log record
 *
 * The result is SUCCEEDED with a one-line description as output:
 *   logged restart_demo target="demo" policy="demo_down" params={} reason="..." */
#include "action/action_int.h"

#include <string.h>

typedef struct log_state {
    vigil_log_level level;
    const vigil_logger *logger;
} log_state;

static const char *const k_keys[] = {"level", NULL};

static void log_destroy(void *p)
{
    vigil__free(p);
}

static int log_create(void **state, const vigil_config_node *config,
                      const vigil_action_context *ctx)
{
    const char *level;
    vigil_log_level lv = VIGIL_LOG_INFO;
    int rc = vigil_config_get_string(&level, config, "level", "info");
    if (rc)
        return rc;
    if (vigil_log_level_parse(&lv, level) != VIGIL_OK || lv == VIGIL_LOG_OFF)
        return vigil__action_cfg_error(vigil_config_node_get(config, "level"), VIGIL_EVALUE,
                                       "expected debug, info, warn or error, got \"%.64s\"", level);
    log_state *s = vigil__calloc(1, sizeof(*s));
    if (!s)
        return vigil__error_oom();
    s->level = lv;
    s->logger = ctx->logger;
    *state = s;
    return VIGIL_OK;
}

static int describe_request(vigil_buf *b, const vigil_action_request *req)
{
    int rc = vigil__buf_puts(b, " target=");
    if (!rc)
        rc = vigil__action_quote(b, req->target ? req->target : "", 256);
    if (!rc && req->policy) {
        rc = vigil__buf_puts(b, " policy=");
        if (!rc)
            rc = vigil__action_quote(b, req->policy, 256);
    }
    if (!rc)
        rc = vigil__buf_puts(b, " params={");
    for (size_t i = 0; i < req->nparams && !rc; i++) {
        rc = vigil__buf_printf(b, "%s%s=", i ? ", " : "", req->params[i].key);
        if (!rc)
            rc = vigil__action_quote(b, req->params[i].value, 256);
    }
    if (!rc)
        rc = vigil__buf_putc(b, '}');
    if (!rc && req->reason) {
        rc = vigil__buf_puts(b, " reason=");
        if (!rc)
            rc = vigil__action_quote(b, req->reason, 512);
    }
    return rc;
}

static int log_execute(void *p, const vigil_action_request *req, const vigil_action_exec *exec,
                       vigil_action_result *result)
{
    (void)exec;
    log_state *s = p;
    vigil_buf b = VIGIL_BUF_INIT;
    int rc = vigil__buf_printf(&b, "logged %s", req->action);
    if (!rc)
        rc = describe_request(&b, req);
    if (!rc) {
        vigil__log(s->logger, s->level, "action", "action request logged (log action)", "action=%s",
                   b.ptr + 7);
        result->status = VIGIL_ACTION_SUCCEEDED;
        rc = vigil_action_result_set_output(result, b.ptr, b.size);
    }
    vigil_buf_dispose(&b);
    return rc;
}

static int log_describe(void *p, const vigil_action_request *req, vigil_buf *out)
{
    (void)p;
    int rc = vigil__buf_puts(out, "would log");
    return rc ? rc : describe_request(out, req);
}

const vigil_action_type vigil__action_log_type = {
    .version = VIGIL_ACTION_TYPE_VERSION,
    .name = "log",
    .keys = k_keys,
    .create = log_create,
    .execute = log_execute,
    .destroy = log_destroy,
    .describe = log_describe,
};
