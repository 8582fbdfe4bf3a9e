/* collector.yaml: the hub, its api and its server. Every key is documented
 * in configs/collector.yaml; unknown keys are refused with their location. */
#include "config/helpers.h"
#include "httpd/internal.h"
#include "hub/hub_int.h"
#include "internal/plugin.h"
#include "internal/remediator.h"
#include "redis/redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vigil_hub_config {
    vigil_config *cfg; /* first: vigil__config_open() */
    vigil_hub_options hub;
    vigil_api_options api;
    vigil_httpd_options httpd;
    vigil_hub_daemon_options daemon;
    vigil_hub_cluster_options cluster; /* cluster: (strings borrowed from cfg) */
    vigil__api_security sec;
    vigil_remediator_config *rem;      /* remediator: {inprocess: true, config: PATH}, else NULL */
    vigil_hub_remediator *fleet;       /* remediators: (c->hub.remediators) */
    const char **fleet_agents;         /* their globs, borrowed from cfg */
    const vigil_config_options *copts; /* during the load only */
};

static int positive_duration(int64_t *out, const vigil_config_node *map, const char *key)
{
    int rc = vigil_config_get_duration(out, map, key, 0);
    if (!rc && vigil_config_node_get(map, key) && *out <= 0)
        rc = vigil_error_set_at(VIGIL_ERANGE, vigil_config_node_get(map, key),
                                "expected a duration above 0");
    return rc;
}

/* remediator: {inprocess: true, config: PATH}: the remediator.yaml at PATH
 * is loaded now, for a remediator in this process; the keys of the HTTP
 * dispatcher are refused next to it. */
static int parse_inprocess(vigil_hub_config *c, const vigil_config_node *n)
{
    static const char *const http_keys[] = {"url",     "secret_env",  "timeout", "retries",
                                            "backoff", "backoff_max", "workers", "queue",
                                            "ca_file", "cert",        "key",     NULL};
    for (size_t i = 0; http_keys[i]; i++) {
        const vigil_config_node *k = vigil_config_node_get(n, http_keys[i]);
        if (k)
            return vigil_error_set_at(VIGIL_EVALUE, k,
                                      "not with inprocess: true (it configures the HTTP "
                                      "dispatcher; the remediator runs in this process)");
    }
    const char *path = NULL;
    int rc = vigil_config_require(n, "config");
    if (!rc)
        rc = vigil_config_get_string(&path, n, "config", NULL);
    if (rc)
        return rc;
    const vigil_config_node *at = vigil_config_node_get(n, "config");
    if (!*path)
        return vigil_error_set_at(VIGIL_EVALUE, at, "expected the path of a remediator.yaml");
    rc = vigil__remediator_config_load_inprocess(&c->rem, path, c->copts);
    if (rc && rc != VIGIL_ENOMEM) {
        /* "collector.yaml:L:C: remediator.config: remediator.yaml:L:C: ..." */
        char msg[1024];
        snprintf(msg, sizeof(msg), "%s", vigil_error_last()->message);
        rc = vigil_error_set_at(rc, at, msg);
    }
    return rc;
}

static int check_secret_env(const vigil_config_node *n, const char *env);
static int check_url(const vigil_config_node *n, const char *u);

/* A TLS file path; "" is none. */
static int tls_path(const char **out, const vigil_config_node *map, const char *key)
{
    int rc = vigil_config_get_string(out, map, key, NULL);
    if (!rc && *out && !**out)
        *out = NULL;
    return rc;
}

static int parse_remediator(vigil_hub_config *c, const vigil_config_node *root)
{
    static const char *const keys[] = {
        "url",   "secret_env", "timeout", "retries", "backoff", "backoff_max", "workers",
        "queue", "inprocess",  "config",  "ca_file", "cert",    "key",         NULL};
    const vigil_config_node *n;
    int rc = vigil__config_section(&n, root, "remediator", keys);
    if (rc || !n)
        return rc;
    int inprocess = 0;
    if ((rc = vigil_config_get_bool(&inprocess, n, "inprocess", 0)))
        return rc;
    if (inprocess)
        return parse_inprocess(c, n);
    if (vigil_config_node_get(n, "config"))
        return vigil_error_set_at(VIGIL_EVALUE, vigil_config_node_get(n, "config"),
                                  "needs inprocess: true (a remediator.yaml for a remediator run "
                                  "in this process)");
    vigil_hub_options *h = &c->hub;
    size_t retries = 4, workers = 0, queue = 0;
    if ((rc = vigil_config_require(n, "url")) ||
        (rc = vigil_config_get_string(&h->remediator_url, n, "url", NULL)) ||
        (rc = vigil_config_get_string(&h->remediator_secret_env, n, "secret_env",
                                      "VIGIL_REMEDIATOR_SECRET")) ||
        (rc = positive_duration(&h->remediator_timeout_ms, n, "timeout")) ||
        (rc = vigil__config_get_count(&retries, n, "retries", 4, 0, 100)) ||
        (rc = positive_duration(&h->remediator_backoff_ms, n, "backoff")) ||
        (rc = positive_duration(&h->remediator_backoff_max_ms, n, "backoff_max")) ||
        (rc = vigil__config_get_count(&workers, n, "workers", 0, 0, 64)) ||
        (rc = vigil__config_get_count(&queue, n, "queue", 0, 0, 1000000)) ||
        (rc = tls_path(&h->remediator_ca_file, n, "ca_file")) ||
        (rc = tls_path(&h->remediator_cert, n, "cert")) ||
        (rc = tls_path(&h->remediator_key, n, "key")))
        return rc;
    if (!h->remediator_cert != !h->remediator_key)
        return vigil_error_set_at(VIGIL_EVALUE, n, "set both cert and key, or neither");
    if (vigil_config_node_get(n, "workers") && workers == 0)
        return vigil_error_set_at(VIGIL_ERANGE, vigil_config_node_get(n, "workers"),
                                  "expected an integer from 1 to 64");
    if (vigil_config_node_get(n, "queue") && queue == 0)
        return vigil_error_set_at(VIGIL_ERANGE, vigil_config_node_get(n, "queue"),
                                  "expected an integer from 1 to 1000000");
    if ((rc = check_url(n, h->remediator_url)))
        return rc;
    h->remediator_attempts = (unsigned int)retries + 1;
    h->remediator_workers = workers;
    h->remediator_queue_max = queue;
    return check_secret_env(n, h->remediator_secret_env);
}

/* The secret of `secret_env` must be set now, so that a missing one fails
 * with its location rather than when the hub starts. */
static int check_secret_env(const vigil_config_node *n, const char *env)
{
    const char *v = env && *env ? getenv(env) : NULL;
    const vigil_config_node *at = vigil_config_node_get(n, "secret_env");
    if (v && *v && strlen(v) < VIGIL_SIGNATURE_SECRET_MIN) {
        char msg[240];
        snprintf(msg, sizeof(msg),
                 "the secret in \"%.100s\" is %zu bytes; at least %d are required (e.g. head "
                 "-c 32 /dev/urandom | base64)",
                 env, strlen(v), VIGIL_SIGNATURE_SECRET_MIN);
        return vigil_error_set_at(VIGIL_EVALUE, at ? at : n, msg);
    }
    if (v && *v)
        return VIGIL_OK;
    char msg[200];
    snprintf(msg, sizeof(msg),
             "environment variable \"%.100s\" (the remediator's signing secret) is not set",
             env ? env : "");
    return vigil_error_set_at(VIGIL_EENV, at ? at : n, msg);
}

static int check_url(const vigil_config_node *n, const char *u)
{
    if (!u || (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0) ||
        !u[strncmp(u, "http://", 7) == 0 ? 7 : 8])
        return vigil_error_set_at(VIGIL_EVALUE, vigil_config_node_get(n, "url"),
                                  "expected an http:// or https:// URL");
    return VIGIL_OK;
}

/* remediators: [{agents: [globs], url, secret_env}]: a fleet, one remediator
 * per host (vigil_hub_options.remediators); first match wins. */
static int parse_fleet(vigil_hub_config *c, const vigil_config_node *root)
{
    static const char *const keys[] = {"agents", "url", "secret_env", "ca_file",
                                       "cert",   "key", NULL};
    const vigil_config_node *list = vigil_config_node_get(root, "remediators");
    if (!list || vigil_config_node_kind(list) == VIGIL_CONFIG_NULL)
        return VIGIL_OK;
    int rc = vigil_config_list(list);
    if (rc)
        return rc;
    if (c->rem)
        return vigil_error_set_at(VIGIL_EVALUE, list,
                                  "not with remediator.inprocess: true (the remediator in this "
                                  "process takes every request)");
    size_t n = vigil_config_node_len(list), total = 0;
    if (n > VIGIL_HUB_FLEET_MAX)
        return vigil_error_set_at(VIGIL_ELIMIT, list, "at most 256 remediators");
    if (!n)
        return VIGIL_OK;
    for (size_t i = 0; i < n; i++) {
        const vigil_config_node *e = vigil_config_node_at(list, i);
        const vigil_config_node *a;
        if ((rc = vigil_config_map(e)) || (rc = vigil_config_expect_keys(e, keys)) ||
            (rc = vigil_config_require(e, "agents")) || (rc = vigil_config_require(e, "url")))
            return rc;
        a = vigil_config_node_get(e, "agents");
        if ((rc = vigil_config_list(a)))
            return rc;
        if (vigil_config_node_len(a) == 0)
            return vigil_error_set_at(VIGIL_EVALUE, a, "expected at least one agent id glob");
        total += vigil_config_node_len(a);
    }
    c->fleet = vigil__calloc(n, sizeof(*c->fleet));
    c->fleet_agents = vigil__calloc(total, sizeof(*c->fleet_agents));
    if (!c->fleet || !c->fleet_agents)
        return vigil__error_oom();
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        const vigil_config_node *e = vigil_config_node_at(list, i);
        const vigil_config_node *a = vigil_config_node_get(e, "agents");
        vigil_hub_remediator *r = &c->fleet[i];
        size_t k = 0;
        if ((rc = vigil__config_string_list(a, c->fleet_agents + used, VIGIL_HUB_FLEET_MAX, &k,
                                            "agent id globs")))
            return rc;
        for (size_t j = 0; j < k; j++)
            if (!*c->fleet_agents[used + j] || strlen(c->fleet_agents[used + j]) > 255)
                return vigil_error_set_at(VIGIL_EVALUE, vigil_config_node_at(a, j),
                                          "expected a glob of 1 to 255 bytes");
        r->agents = c->fleet_agents + used;
        r->nagents = k;
        used += k;
        if ((rc = vigil_config_get_string(&r->url, e, "url", NULL)) ||
            (rc = check_url(e, r->url)) ||
            (rc = vigil_config_get_string(&r->secret_env, e, "secret_env",
                                          "VIGIL_REMEDIATOR_SECRET")) ||
            (rc = check_secret_env(e, r->secret_env)) ||
            (rc = tls_path(&r->ca_file, e, "ca_file")) || (rc = tls_path(&r->cert, e, "cert")) ||
            (rc = tls_path(&r->key, e, "key")))
            return rc;
        if (!r->cert != !r->key)
            return vigil_error_set_at(VIGIL_EVALUE, e, "set both cert and key, or neither");
    }
    c->hub.remediators = c->fleet;
    c->hub.nremediators = n;
    return VIGIL_OK;
}

/* redis: {url, stream, maxlen, queue, password_env, subscribe, hub_id}:
 * events to a Redis stream (vigil_hub_options.redis_*). */
static int parse_redis(vigil_hub_config *c, const vigil_config_node *root)
{
    static const char *const keys[] = {"url",          "stream",    "maxlen", "queue",
                                       "password_env", "subscribe", "hub_id", NULL};
    const vigil_config_node *n;
    vigil_hub_options *h = &c->hub;
    int rc = vigil__config_section(&n, root, "redis", keys);
    if (rc || !n)
        return rc;
    char why[256];
    if ((rc = vigil_config_require(n, "url")) ||
        (rc = vigil_config_get_string(&h->redis_url, n, "url", NULL)))
        return rc;
    if (vigil__redis_url_check(h->redis_url, why, sizeof(why)))
        return vigil_error_set_at(VIGIL_EVALUE, vigil_config_node_get(n, "url"), why);
    if ((rc = vigil_config_get_string(&h->redis_stream, n, "stream", NULL)) ||
        (rc = vigil__config_get_count(&h->redis_maxlen, n, "maxlen", 0, 1, 100000000)) ||
        (rc = vigil__config_get_count(&h->redis_queue_max, n, "queue", 0, 1, 10000000)) ||
        (rc = vigil_config_get_string(&h->redis_password_env, n, "password_env", NULL)) ||
        (rc = vigil_config_get_bool(&h->redis_subscribe, n, "subscribe", 0)) ||
        (rc = vigil_config_get_string(&h->redis_hub_id, n, "hub_id", NULL)))
        return rc;
    if (h->redis_stream && !*h->redis_stream)
        h->redis_stream = NULL;
    if (h->redis_hub_id && !*h->redis_hub_id)
        h->redis_hub_id = NULL;
    if (h->redis_password_env && !*h->redis_password_env)
        h->redis_password_env = NULL;
    const char *pw = h->redis_password_env ? getenv(h->redis_password_env) : NULL;
    if (h->redis_password_env && (!pw || !*pw)) {
        snprintf(why, sizeof(why),
                 "environment variable \"%.100s\" (the Redis password) is not set",
                 h->redis_password_env);
        return vigil_error_set_at(VIGIL_EENV, vigil_config_node_get(n, "password_env"), why);
    }
    return VIGIL_OK;
}

/* policies, policies_dir, silences, policy_interval, act_within: checked by
 * loading them into a scratch engine, so a bad rule fails here with its
 * file:line rather than when the daemon starts. */
static int parse_policies(vigil_hub_config *c, const vigil_config_node *root)
{
    vigil_hub_options *h = &c->hub;
    int rc = parse_remediator(c, root);
    if (!rc)
        rc = parse_fleet(c, root);
    if (!rc)
        rc = positive_duration(&h->policy_interval_ms, root, "policy_interval");
    if (!rc)
        rc = positive_duration(&h->act_within_ms, root, "act_within");
    const vigil_config_node *drift = vigil_config_node_get(root, "drift");
    static const char *const drift_keys[] = {"cooldown", NULL};
    if (!rc && drift && vigil_config_node_kind(drift) != VIGIL_CONFIG_NULL) {
        rc = vigil_config_map(drift);
        if (!rc)
            rc = vigil_config_expect_keys(drift, drift_keys);
        if (!rc)
            rc = positive_duration(&h->drift_cooldown_ms, drift, "cooldown");
    }
    if (!rc)
        rc = vigil_config_get_duration(&h->series_idle_ms, root, "series_idle", 0);
    if (!rc && h->series_idle_ms < 0)
        rc = vigil_error_set_at(VIGIL_ERANGE, vigil_config_node_get(root, "series_idle"),
                                "expected a duration, or 0 for the default (1h)");
    if (!rc)
        rc = vigil__config_get_count(&h->series_per_agent, root, "series_per_agent", 0, 0, 100000);
    if (!rc)
        rc = vigil_config_get_string(&h->policies_dir, root, "policies_dir", NULL);
    if (rc)
        return rc;
    const vigil_config_node *p = vigil_config_node_get(root, "policies");
    if (p && vigil_config_node_kind(p) != VIGIL_CONFIG_NULL) {
        if ((rc = vigil_config_list(p)))
            return rc;
        h->policies = p;
    }
    const vigil_config_node *s = vigil_config_node_get(root, "silences");
    if (s && vigil_config_node_kind(s) != VIGIL_CONFIG_NULL) {
        if ((rc = vigil_config_list(s)))
            return rc;
        h->silences = s;
    }
    if (h->policies_dir && !*h->policies_dir)
        h->policies_dir = NULL;
    return vigil__hub_check_policies(h);
}

/* The `cluster:` values vigil_hub_set_cluster() would refuse, located. */
static int check_cluster(const vigil_hub_cluster_options *o, const vigil_config_node *n)
{
    if (!n)
        return VIGIL_OK;
    int64_t ttl = o->lease_ttl_ms ? o->lease_ttl_ms : 3000;
    if (o->lease_ttl_ms && (ttl < 3 || ttl > VIGIL_STORE_LEASE_TTL_MAX))
        return vigil_error_set_at(VIGIL_ERANGE, vigil_config_node_get(n, "lease_ttl"),
                                  "expected a duration from 3ms to 24h");
    if (o->renew_interval_ms && o->renew_interval_ms >= ttl)
        return vigil_error_set_at(VIGIL_ERANGE, vigil_config_node_get(n, "renew_interval"),
                                  "expected a duration below lease_ttl");
    if (o->tail_interval_ms > 60000)
        return vigil_error_set_at(VIGIL_ERANGE, vigil_config_node_get(n, "tail_interval"),
                                  "expected a duration of at most 1m");
    if (o->holder) {
        size_t len = strlen(o->holder);
        if (!len || len > VIGIL_STORE_LEASE_HOLDER_MAX)
            return vigil_error_set_at(VIGIL_EVALUE, vigil_config_node_get(n, "holder"),
                                      "expected 1 to 128 bytes");
    }
    return VIGIL_OK;
}

static int parse(vigil_hub_config *c)
{
    static const char *const top[] = {
        "listen",     "http",        "store",        "retention",   "retention_interval",
        "security",   "ingest",      "windows",      "events",      "log",
        "remediator", "policies",    "policies_dir", "silences",    "policy_interval",
        "act_within", "remediators", "drift",        "series_idle", "series_per_agent",
        "ui",         "redis",       "cluster",      NULL};
    static const char *const ingest_keys[] = {"queue", "max_metrics", "max_future",
                                              "group_max_samples", NULL};
    static const char *const window_keys[] = {"max_age", "max_samples", "max_series", NULL};
    static const char *const event_keys[] = {"interval", "queue", "max_subscribers", NULL};
    static const char *const ui_keys[] = {"dir", "max_file", NULL};
    static const char *const cluster_keys[] = {"enabled",        "holder",        "lease_ttl",
                                               "renew_interval", "tail_interval", NULL};

    vigil_hub_options_init(&c->hub, VIGIL_HUB_OPTIONS_VERSION);
    vigil_api_options_init(&c->api, VIGIL_API_OPTIONS_VERSION);
    vigil_httpd_options_init(&c->httpd, VIGIL_HTTPD_OPTIONS_VERSION);
    vigil_hub_cluster_options_init(&c->cluster, VIGIL_HUB_CLUSTER_OPTIONS_VERSION);
    c->daemon.version = VIGIL_HUB_DAEMON_OPTIONS_VERSION;
    c->daemon.drain_timeout_ms = 10000;
    c->daemon.log_level = VIGIL_LOG_INFO;
    c->hub.store_url = VIGIL_HUB_DEFAULT_STORE;
    if (c->copts) {
        c->hub.store_types = c->copts->store_types;
        c->hub.policy_types = c->copts->policy_types;
    }

    const vigil_config_node *root = vigil_config_root(c->cfg, 0);
    if (vigil_config_document_count(c->cfg) > 1)
        return vigil_error_set_at(VIGIL_EVALUE, vigil_config_root(c->cfg, 1),
                                  "collector.yaml holds one document");
    if (!root || vigil_config_node_kind(root) == VIGIL_CONFIG_NULL)
        return VIGIL_OK;
    int rc = vigil_config_map(root);
    if (!rc)
        rc = vigil_config_expect_keys(root, top);
    if (!rc)
        rc = vigil_config_get_string(&c->hub.store_url, root, "store", VIGIL_HUB_DEFAULT_STORE);
    if (!rc)
        rc = vigil_config_get_duration(&c->hub.retention_ms, root, "retention", 0);
    if (!rc)
        rc =
            vigil_config_get_duration(&c->hub.retention_interval_ms, root, "retention_interval", 0);
    if (rc)
        return rc;
    if ((rc = vigil__store_url_check(c->hub.store_url, c->hub.store_types,
                                     vigil_config_node_get(root, "store"))))
        return rc;

    rc = vigil__httpd_server_parse(root, &c->httpd, &c->api, &c->sec, &c->daemon.drain_timeout_ms);
    if (rc)
        return rc;

    const vigil_config_node *n;
    if ((rc = vigil__config_section(&n, root, "ingest", ingest_keys)))
        return rc;
    if (n && ((rc = vigil__config_get_count(&c->hub.queue_max, n, "queue", 0, 0, 1000000)) ||
              (rc = vigil__config_get_count(&c->hub.max_batch_metrics, n, "max_metrics", 0, 0,
                                            10000000)) ||
              (rc = vigil_config_get_duration(&c->hub.max_future_ms, n, "max_future", 0)) ||
              (rc = vigil__config_get_count(&c->hub.group_max_samples, n, "group_max_samples", 0, 0,
                                            100000000))))
        return rc;
    if ((rc = vigil__config_section(&n, root, "windows", window_keys)))
        return rc;
    if (n &&
        ((rc = vigil_config_get_duration(&c->hub.windows.window.max_age_ms, n, "max_age", 0)) ||
         (rc = vigil__config_get_count(&c->hub.windows.window.max_samples, n, "max_samples", 0, 0,
                                       VIGIL_WINDOW_MAX_SAMPLES_LIMIT)) ||
         (rc = vigil__config_get_count(&c->hub.windows.max_series, n, "max_series", 0, 0,
                                       100000000))))
        return rc;
    if ((rc = vigil__config_section(&n, root, "events", event_keys)))
        return rc;
    if (n && ((rc = vigil_config_get_duration(&c->hub.events_interval_ms, n, "interval", 0)) ||
              (rc = vigil__config_get_count(&c->hub.events_queue_max, n, "queue", 0, 0, 1000000)) ||
              (rc = vigil__config_get_count(&c->hub.events_max_subscribers, n, "max_subscribers", 0,
                                            0, 100000))))
        return rc;
    if ((rc = vigil__config_section(&n, root, "ui", ui_keys)))
        return rc;
    if (n && ((rc = vigil_config_get_string(&c->hub.ui_dir, n, "dir", NULL)) ||
              (rc = vigil_config_get_size(&c->hub.ui_max_file, n, "max_file", 0))))
        return rc;
    if (n && vigil_config_node_get(n, "max_file") &&
        (c->hub.ui_max_file == 0 || c->hub.ui_max_file > (uint64_t)1 << 30))
        return vigil_error_set_at(VIGIL_ERANGE, vigil_config_node_get(n, "max_file"),
                                  "expected a size from 1 byte to 1GiB");
    if ((rc = vigil__config_section(&n, root, "cluster", cluster_keys)))
        return rc;
    if (n && ((rc = vigil_config_get_bool(&c->cluster.enabled, n, "enabled", 0)) ||
              (rc = vigil_config_get_string(&c->cluster.holder, n, "holder", NULL)) ||
              (rc = positive_duration(&c->cluster.lease_ttl_ms, n, "lease_ttl")) ||
              (rc = positive_duration(&c->cluster.renew_interval_ms, n, "renew_interval")) ||
              (rc = positive_duration(&c->cluster.tail_interval_ms, n, "tail_interval"))))
        return rc;
    if ((rc = check_cluster(&c->cluster, n)))
        return rc;
    if ((rc = parse_policies(c, root)) || (rc = parse_redis(c, root)))
        return rc;
    return vigil__config_log(&c->daemon.log_level, root);
}

void vigil_hub_config_free(vigil_hub_config *c)
{
    if (!c)
        return;
    vigil__api_security_dispose(&c->sec);
    vigil_remediator_config_free(c->rem);
    vigil__free(c->fleet);
    vigil__free(c->fleet_agents);
    vigil_config_free(c->cfg);
    vigil__free(c);
}

/* vigil_hub_config_load() (text NULL) and vigil_hub_config_load_string(). */
static int load(vigil_hub_config **out, const char *path, const char *text, size_t len,
                const char *name, const vigil_config_options *copts)
{
    void *obj;
    if (out)
        *out = NULL;
    int rc = vigil__config_open(&obj, sizeof(vigil_hub_config), out != NULL, path, text, len, name,
                                copts, "hub config");
    if (rc)
        return rc;
    vigil_hub_config *c = obj;
    c->copts = copts;
    rc = parse(c);
    c->copts = NULL;
    if (rc)
        vigil_hub_config_free(c);
    else
        *out = c;
    return rc;
}

int vigil_hub_config_load(vigil_hub_config **out, const char *path,
                          const vigil_config_options *copts)
{
    return load(out, path, NULL, 0, NULL, copts);
}

int vigil_hub_config_load_string(vigil_hub_config **out, const char *text, size_t len,
                                 const char *name, const vigil_config_options *copts)
{
    return load(out, NULL, text, len, name, copts);
}

const vigil_hub_options *vigil_hub_config_hub(const vigil_hub_config *c)
{
    return c ? &c->hub : NULL;
}

const vigil_api_options *vigil_hub_config_api(const vigil_hub_config *c)
{
    return c ? &c->api : NULL;
}

const vigil_httpd_options *vigil_hub_config_httpd(const vigil_hub_config *c)
{
    return c ? &c->httpd : NULL;
}

const vigil_hub_daemon_options *vigil_hub_config_daemon(const vigil_hub_config *c)
{
    return c ? &c->daemon : NULL;
}

const vigil_hub_cluster_options *vigil_hub_config_cluster(const vigil_hub_config *c)
{
    return c ? &c->cluster : NULL;
}

const vigil_remediator_config *vigil_hub_config_remediator(const vigil_hub_config *c)
{
    return c ? c->rem : NULL;
}

/* Same kind and content: scalars by text, lists in order, maps by key. */
static int node_equal(const vigil_config_node *a, const vigil_config_node *b, int depth)
{
    vigil_config_kind k = vigil_config_node_kind(a);
    if (k != vigil_config_node_kind(b) || depth > 256)
        return 0;
    size_t n = vigil_config_node_len(a);
    if (k == VIGIL_CONFIG_SCALAR)
        return strcmp(vigil_config_node_scalar(a), vigil_config_node_scalar(b)) == 0;
    if (n != vigil_config_node_len(b))
        return 0;
    for (size_t i = 0; i < n; i++) {
        const vigil_config_node *bi = k == VIGIL_CONFIG_MAP
                                          ? vigil_config_node_get(b, vigil_config_node_key_at(a, i))
                                          : vigil_config_node_at(b, i);
        if (!bi || !node_equal(vigil_config_node_at(a, i), bi, depth + 1))
            return 0;
    }
    return 1;
}

/* Appends to out the keys of `a` (or, with `absent_only`, of `a` and not of
 * `b`) whose value differs in `b`. */
static int diff_keys(vigil_buf *out, const vigil_config_node *a, const vigil_config_node *b,
                     int absent_only)
{
    static const char *const live[] = {"policies", "policies_dir", "silences"};
    int rc = VIGIL_OK;
    for (size_t i = 0; i < vigil_config_node_len(a) && rc >= 0; i++) {
        const char *key = vigil_config_node_key_at(a, i);
        int skip = 0;
        for (size_t j = 0; j < VIGIL__ARRAY_LEN(live); j++)
            skip |= strcmp(key, live[j]) == 0;
        const vigil_config_node *bv = vigil_config_node_get(b, key);
        if (skip || (absent_only && bv) || (bv && node_equal(vigil_config_node_at(a, i), bv, 0)))
            continue;
        if (out->size)
            rc = vigil__buf_putc(out, ',');
        if (rc >= 0)
            rc = vigil__buf_puts(out, key);
    }
    return rc;
}

int vigil_hub_config_restart_keys(const vigil_hub_config *running, const vigil_hub_config *fresh,
                                  vigil_buf *out)
{
    if (!running || !fresh || !out)
        return vigil__error_set(VIGIL_EINVAL, "hub config restart keys: NULL argument");
    vigil__buf_clear(out);
    const vigil_config_node *a = vigil_config_root(running->cfg, 0);
    const vigil_config_node *b = vigil_config_root(fresh->cfg, 0);
    int rc = VIGIL_OK;
    if (vigil_config_node_kind(a) == VIGIL_CONFIG_MAP)
        rc = diff_keys(out, a, vigil_config_node_kind(b) == VIGIL_CONFIG_MAP ? b : NULL, 0);
    if (rc >= 0 && vigil_config_node_kind(b) == VIGIL_CONFIG_MAP)
        rc = diff_keys(out, b, vigil_config_node_kind(a) == VIGIL_CONFIG_MAP ? a : NULL, 1);
    if (rc >= 0)
        rc = vigil__buf_putc(out, '\0');
    if (rc >= 0)
        out->size--;
    return rc;
}
