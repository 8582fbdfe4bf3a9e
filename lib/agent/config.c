/* agent.yaml: the agent's configuration applied to its options. Every key is
 * documented in configs/agent.yaml; unknown keys are refused with their
 * location. */
#include "agent/agent_int.h"
#include "agent/spool.h"
#include "config/helpers.h"
#include "internal/common.h"
#include "vigil/agent.h"
#include "vigil/sys/collector.h"

static const char *const k_top_keys[] = {"agent",
                                         "hub",
                                         "interval",
                                         "heartbeat",
                                         "batch",
                                         "spool",
                                         "log_level",
                                         "exec_allow",
                                         "collectors",
                                         "shutdown_timeout",
                                         "collector_backoff_max",
                                         NULL};
static const char *const k_agent_keys[] = {"id", "tags", NULL};
static const char *const k_hub_keys[] = {
    "urls",    "token_env",   "ca_file",         "cert",
    "key",     "insecure",    "timeout",         "retries",
    "backoff", "backoff_max", "retry_after_max", "connect_timeout",
    NULL};
static const char *const k_batch_keys[] = {"max_metrics", "max_delay", NULL};
static const char *const k_spool_keys[] = {"path", "max_size", "fsync", NULL};

int vigil__agent_config_apply(vigil_agent_options *o, const vigil_config_node *root,
                              cfg_arrays *arr)
{
    int rc;
    if (!root || vigil_config_node_kind(root) == VIGIL_CONFIG_NULL)
        return VIGIL_OK;
    if ((rc = vigil_config_map(root)) || (rc = vigil_config_expect_keys(root, k_top_keys)))
        return rc;
    const vigil_config_node *agent, *hub, *batch, *spool, *n;
    if ((rc = vigil__config_section(&agent, root, "agent", k_agent_keys)) ||
        (rc = vigil__config_section(&hub, root, "hub", k_hub_keys)) ||
        (rc = vigil__config_section(&batch, root, "batch", k_batch_keys)) ||
        (rc = vigil__config_section(&spool, root, "spool", k_spool_keys)))
        return rc;

    /* agent */
    if ((rc = vigil_config_get_string(&o->agent_id, agent, "id", o->agent_id)))
        return rc;
    if ((n = vigil_config_node_get(agent, "tags")) &&
        vigil_config_node_kind(n) != VIGIL_CONFIG_NULL) {
        if ((rc = vigil_config_map(n)))
            return rc;
        size_t len = vigil_config_node_len(n);
        if (len > TAGS_MAX)
            return vigil_error_set_at(VIGIL_ELIMIT, n, "at most 32 global tags");
        for (size_t i = 0; i < len; i++) {
            arr->tags[i].key = vigil_config_node_key_at(n, i);
            if ((rc = vigil_config_string(&arr->tags[i].value, vigil_config_node_at(n, i))))
                return rc;
        }
        o->tags = arr->tags;
        o->ntags = len;
    }

    /* hub */
    if ((n = vigil_config_node_get(hub, "urls")) &&
        vigil_config_node_kind(n) != VIGIL_CONFIG_NULL) {
        size_t len = 0;
        if ((rc = vigil__config_string_list(n, arr->urls, URLS_MAX, &len, "hub URLs")))
            return rc;
        if (len == 0)
            return vigil_error_set_at(VIGIL_EVALUE, n, "at least one hub URL is required");
        o->hub_urls = arr->urls;
        o->nhub_urls = len;
    }
    int64_t retries = o->retries < 0 ? 0 : o->retries ? o->retries : DEF_RETRIES;
    if ((rc = vigil_config_get_string(&o->token_env, hub, "token_env", o->token_env)) ||
        (rc = vigil_config_get_string(&o->ca_file, hub, "ca_file", o->ca_file)) ||
        (rc = vigil_config_get_string(&o->cert_file, hub, "cert", o->cert_file)) ||
        (rc = vigil_config_get_string(&o->key_file, hub, "key", o->key_file)) ||
        (rc = vigil_config_get_bool(&o->tls_insecure, hub, "insecure", o->tls_insecure)) ||
        (rc = vigil_config_get_duration(&o->connect_timeout_ms, hub, "connect_timeout",
                                        o->connect_timeout_ms ? o->connect_timeout_ms
                                                              : DEF_CONNECT)) ||
        (rc = vigil_config_get_duration(&o->request_timeout_ms, hub, "timeout",
                                        o->request_timeout_ms ? o->request_timeout_ms
                                                              : DEF_REQUEST)) ||
        (rc = vigil_config_get_int(&retries, hub, "retries", retries)) ||
        (rc = vigil_config_get_duration(&o->backoff_ms, hub, "backoff",
                                        o->backoff_ms ? o->backoff_ms : DEF_BACKOFF)) ||
        (rc = vigil_config_get_duration(&o->backoff_max_ms, hub, "backoff_max",
                                        o->backoff_max_ms ? o->backoff_max_ms : DEF_BACKOFF_MAX)) ||
        (rc = vigil_config_get_duration(&o->retry_after_max_ms, hub, "retry_after_max",
                                        o->retry_after_max_ms ? o->retry_after_max_ms
                                                              : DEF_RETRY_AFTER)))
        return rc;
    if ((rc = vigil__config_at_least(hub, "connect_timeout", o->connect_timeout_ms, 1, "1ms")) ||
        (rc = vigil__config_at_least(hub, "timeout", o->request_timeout_ms, 1, "1ms")) ||
        (rc = vigil__config_at_least(hub, "backoff", o->backoff_ms, 1, "1ms")) ||
        (rc = vigil__config_at_least(hub, "backoff_max", o->backoff_max_ms, o->backoff_ms,
                                     "hub.backoff")) ||
        (rc = vigil__config_at_least(hub, "retry_after_max", o->retry_after_max_ms, 1, "1ms")) ||
        (rc = vigil__config_at_least(hub, "retries", retries, 0, "0")))
        return rc;
    if (retries > MAX_RETRIES)
        return vigil_error_set_at(VIGIL_ERANGE, vigil_config_node_get(hub, "retries"),
                                  "must be at most 10");
    o->retries = retries == 0 ? -1 : (int)retries;

    /* schedule */
    if ((rc = vigil_config_get_duration(&o->interval_ms, root, "interval",
                                        o->interval_ms ? o->interval_ms : DEF_INTERVAL)) ||
        (rc = vigil__config_at_least(root, "interval", o->interval_ms,
                                     VIGIL_COLLECTOR_MIN_INTERVAL_MS, "10ms")) ||
        (rc = vigil_config_get_duration(&o->heartbeat_ms, root, "heartbeat",
                                        o->heartbeat_ms ? o->heartbeat_ms : o->interval_ms)) ||
        (rc = vigil__config_at_least(root, "heartbeat", o->heartbeat_ms,
                                     VIGIL_COLLECTOR_MIN_INTERVAL_MS, "10ms")) ||
        (rc = vigil_config_get_duration(&o->shutdown_timeout_ms, root, "shutdown_timeout",
                                        o->shutdown_timeout_ms ? o->shutdown_timeout_ms
                                                               : DEF_SHUTDOWN)) ||
        (rc = vigil_config_get_duration(&o->collector_backoff_max_ms, root, "collector_backoff_max",
                                        o->collector_backoff_max_ms)))
        return rc;

    /* batch */
    int64_t max_metrics = o->batch_max_metrics ? (int64_t)o->batch_max_metrics : DEF_MAX_METRICS;
    if ((rc = vigil_config_get_int(&max_metrics, batch, "max_metrics", max_metrics)) ||
        (rc = vigil__config_at_least(batch, "max_metrics", max_metrics, 1, "1")) ||
        (rc = vigil_config_get_duration(&o->batch_max_delay_ms, batch, "max_delay",
                                        o->batch_max_delay_ms ? o->batch_max_delay_ms
                                                              : DEF_MAX_DELAY)))
        return rc;
    if (o->batch_max_delay_ms == 0)
        o->batch_max_delay_ms = -1; /* "max_delay: 0": ship at once */
    if (max_metrics > VIGIL_BATCH_DEFAULT_MAX_METRICS)
        return vigil_error_set_at(VIGIL_ERANGE, vigil_config_node_get(batch, "max_metrics"),
                                  "must be at most 100000");
    o->batch_max_metrics = (size_t)max_metrics;

    /* spool */
    int fsync_on = !o->spool_no_fsync;
    uint64_t max_size = o->spool_max_size ? o->spool_max_size : VIGIL__SPOOL_DEFAULT_MAX;
    if ((rc = vigil_config_get_string(&o->spool_path, spool, "path", o->spool_path)) ||
        (rc = vigil_config_get_size(&max_size, spool, "max_size", max_size)) ||
        (rc = vigil_config_get_bool(&fsync_on, spool, "fsync", fsync_on)))
        return rc;
    if (max_size < 4096)
        return vigil_error_set_at(VIGIL_ERANGE, vigil_config_node_get(spool, "max_size"),
                                  "must be at least 4KiB");
    o->spool_max_size = max_size;
    o->spool_no_fsync = !fsync_on;

    /* logging and exec */
    if ((n = vigil_config_node_get(root, "log_level")) &&
        vigil_config_node_kind(n) != VIGIL_CONFIG_NULL) {
        const char *s;
        vigil_log_level lv;
        if ((rc = vigil_config_string(&s, n)))
            return rc;
        if (vigil_log_level_parse(&lv, s) != VIGIL_OK)
            return vigil_error_set_at(VIGIL_EVALUE, n,
                                      "expected a log level (debug, info, warn, error, off)");
        o->logger.min_level = lv;
    }
    if ((n = vigil_config_node_get(root, "exec_allow")) &&
        vigil_config_node_kind(n) != VIGIL_CONFIG_NULL) {
        size_t len = 0;
        if ((rc = vigil__config_string_list(n, arr->allow, ALLOW_MAX, &len, "exec_allow entries")))
            return rc;
        arr->allow[len] = NULL;
        o->exec_allow = arr->allow;
    }
    if ((n = vigil_config_node_get(root, "collectors")) &&
        vigil_config_node_kind(n) != VIGIL_CONFIG_NULL && (rc = vigil_config_list(n)))
        return rc;
    return VIGIL_OK;
}
