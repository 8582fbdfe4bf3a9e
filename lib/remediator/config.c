/* remediator.yaml: the remediator, its api and its server. Every key is
 * documented in configs/remediator.yaml; unknown keys are refused with their
 * location; the actions are validated by configuring them once. */
#include "config/helpers.h"
#include "httpd/internal.h"
#include "internal/plugin.h"
#include "internal/remediator.h"
#include "remediator/rem_int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_LISTEN "127.0.0.1:7601"

struct vigil_remediator_config {
    vigil_config *cfg; /* first: vigil__config_open() */
    char base_dir[PATH_MAX];
    vigil_remediator_options rem;
    vigil_api_options api;
    vigil_httpd_options httpd;
    vigil_remediator_daemon_options daemon;
    vigil__api_security sec;
    int inprocess; /* vigil__remediator_config_load_inprocess(): no HTTP, no secrets */
    const vigil_config_options *copts; /* during the load only */
};

static int env_name(const char **out, const vigil_config_node *map, const char *key, int must_set)
{
    int rc = vigil_config_get_string(out, map, key, NULL);
    if (rc || !*out)
        return rc;
    const vigil_config_node *n = vigil_config_node_get(map, key);
    if (!**out) {
        *out = NULL; /* "" means: not used */
        return VIGIL_OK;
    }
    if (must_set) {
        const char *v = getenv(*out);
        if (!v || !*v) {
            char msg[256];
            snprintf(msg, sizeof(msg), "environment variable %.128s is not set", *out);
            return vigil_error_set_at(VIGIL_EENV, n, msg);
        }
    }
    return VIGIL_OK;
}

static int parse_guards(vigil_remediator_options *o, const vigil_config_node *root)
{
    static const char *const keys[] = {"dry_run",    "cooldown",       "max_attempts",
                                       "window",     "reset_after",    "rate_limit",
                                       "rate_burst", "max_concurrent", NULL};
    const vigil_config_node *g;
    int rc = vigil__config_section(&g, root, "guards", keys);
    if (rc || !g)
        return rc;
    double burst = 0;
    const vigil_config_node *rl = vigil_config_node_get(g, "rate_limit");
    if ((rc = vigil_config_get_bool(&o->dry_run, g, "dry_run", o->dry_run)) ||
        (rc = vigil_config_get_duration(&o->cooldown_ms, g, "cooldown", o->cooldown_ms)) ||
        (rc = vigil__config_get_uint(&o->max_attempts, g, "max_attempts", o->max_attempts, 0,
                                     1000000)) ||
        (rc = vigil_config_get_duration(&o->window_ms, g, "window", o->window_ms)) ||
        (rc = vigil_config_get_duration(&o->reset_after_ms, g, "reset_after", o->reset_after_ms)) ||
        (rc = vigil__config_get_uint(&o->max_concurrent, g, "max_concurrent", o->max_concurrent, 1,
                                     4096)) ||
        (rc = vigil_config_get_double(&burst, g, "rate_burst", 0)))
        return rc;
    /* In the file 0 turns a guard off; in the options 0 is the default. */
    if (vigil_config_node_get(g, "cooldown") && o->cooldown_ms == 0)
        o->cooldown_ms = VIGIL_REMEDIATOR_DISABLED;
    if (vigil_config_node_get(g, "max_attempts") && o->max_attempts == 0)
        o->max_attempts = (unsigned int)VIGIL_REMEDIATOR_DISABLED;
    if (vigil_config_node_get(g, "reset_after") && o->reset_after_ms == 0)
        o->reset_after_ms = VIGIL_REMEDIATOR_DISABLED;
    if (rl && vigil_config_node_kind(rl) == VIGIL_CONFIG_SCALAR &&
        (strcmp(vigil_config_node_scalar(rl), "0") == 0 ||
         strcmp(vigil_config_node_scalar(rl), "none") == 0)) {
        o->rate_per_s = VIGIL_REMEDIATOR_DISABLED;
    } else if ((rc = vigil_config_get_rate(&o->rate_per_s, g, "rate_limit", o->rate_per_s))) {
        return rc;
    }
    if (burst < 0 || burst > 1e9)
        return vigil_error_set_at(VIGIL_ERANGE, vigil_config_node_get(g, "rate_burst"),
                                  "expected a number from 0 to 1000000000");
    o->rate_burst = burst;
    if (o->max_attempts != (unsigned int)VIGIL_REMEDIATOR_DISABLED &&
        vigil_config_node_get(g, "window") && o->window_ms <= 0)
        return vigil_error_set_at(VIGIL_EVALUE, vigil_config_node_get(g, "window"),
                                  "a budget (max_attempts) needs a window longer than 0");
    return VIGIL_OK;
}

/* A TLS file path; "" is none. */
static int tls_path(const char **out, const vigil_config_node *map, const char *key)
{
    int rc = vigil_config_get_string(out, map, key, NULL);
    if (!rc && *out && !**out)
        *out = NULL;
    return rc;
}

static int parse(vigil_remediator_config *c)
{
    static const char *const top[] = {"listen",  "http",  "secret_env",    "max_skew", "security",
                                      "hub",     "audit", "audit_key_env", "guards",   "execution",
                                      "actions", "log",   "state_dir",     NULL};
    static const char *const hub_keys[] = {"url",     "token_env", "attempts", "backoff", "timeout",
                                           "ca_file", "cert",      "key",      NULL};
    static const char *const exec_keys[] = {"workers", "queue", "tick", "recent", NULL};

    vigil_remediator_options_init(&c->rem, VIGIL_REMEDIATOR_OPTIONS_VERSION);
    vigil_api_options_init(&c->api, VIGIL_API_OPTIONS_VERSION);
    vigil_httpd_options_init(&c->httpd, VIGIL_HTTPD_OPTIONS_VERSION);
    c->httpd.listen = DEFAULT_LISTEN;
    c->daemon.version = VIGIL_REMEDIATOR_DAEMON_OPTIONS_VERSION;
    c->daemon.drain_timeout_ms = 10000;
    c->daemon.log_level = VIGIL_LOG_INFO;
    c->rem.store_url = VIGIL_REMEDIATOR_DEFAULT_STORE;
    c->rem.secret_env = "VIGIL_REMEDIATOR_SECRET";
    c->rem.base_dir = c->base_dir;
    if (c->copts) {
        c->rem.store_types = c->copts->store_types;
        c->rem.action_types = c->copts->action_types;
    }

    const vigil_config_node *root = vigil_config_root(c->cfg, 0);
    if (vigil_config_document_count(c->cfg) > 1)
        return vigil_error_set_at(VIGIL_EVALUE, vigil_config_root(c->cfg, 1),
                                  "remediator.yaml holds one document");
    int rc = VIGIL_OK;
    if (root && vigil_config_node_kind(root) != VIGIL_CONFIG_NULL) {
        rc = vigil_config_map(root);
        if (!rc)
            rc = vigil_config_expect_keys(root, top);
    } else {
        root = NULL;
    }
    if (!rc)
        rc = vigil_config_get_string(&c->rem.store_url, root, "audit",
                                     VIGIL_REMEDIATOR_DEFAULT_STORE);
    if (!rc)
        rc = vigil_config_get_string(&c->rem.secret_env, root, "secret_env",
                                     "VIGIL_REMEDIATOR_SECRET");
    int64_t skew = 0;
    if (!rc)
        rc = vigil_config_get_duration(&skew, root, "max_skew", 0);
    if (!rc)
        rc = env_name(&c->rem.audit_key_env, root, "audit_key_env", 0);
    if (!rc)
        rc = vigil_config_get_string(&c->rem.state_dir, root, "state_dir", NULL);
    if (rc)
        return rc;
    if (c->rem.state_dir && !*c->rem.state_dir)
        return vigil_error_set_at(VIGIL_EVALUE, vigil_config_node_get(root, "state_dir"),
                                  "expected a directory");
    c->rem.max_skew_s = skew / 1000;
    if (skew && skew < 1000)
        return vigil_error_set_at(VIGIL_ERANGE, vigil_config_node_get(root, "max_skew"),
                                  "expected at least 1s");
    if ((rc = vigil__store_url_check(c->rem.store_url, c->rem.store_types,
                                     vigil_config_node_get(root, "audit"))))
        return rc;
    if (strstr(c->rem.store_url, "synchronous=normal"))
        return vigil_error_set_at(VIGIL_EVALUE, vigil_config_node_get(root, "audit"),
                                  "the audit store is always written with synchronous=full");
    if (!*c->rem.secret_env)
        return vigil_error_set_at(VIGIL_EVALUE, vigil_config_node_get(root, "secret_env"),
                                  "expected the name of an environment variable");
    const char *sv = getenv(c->rem.secret_env);
    if (!c->inprocess && (!sv || !*sv)) {
        char msg[300];
        snprintf(msg, sizeof(msg),
                 "environment variable %.128s (the request signing secret shared with the hub) "
                 "is not set",
                 c->rem.secret_env);
        const vigil_config_node *n = vigil_config_node_get(root, "secret_env");
        if (n)
            return vigil_error_set_at(VIGIL_EENV, n, msg);
        return vigil__error_set_at(VIGIL_EENV, vigil_config_file(c->cfg), 0, 0, "secret_env: %s",
                                   msg);
    }
    if (sv && *sv && strlen(sv) < VIGIL_SIGNATURE_SECRET_MIN) {
        char msg[300];
        snprintf(msg, sizeof(msg),
                 "secret_env: the secret in %.128s is %zu bytes; at least %d are required (e.g. "
                 "head -c 32 /dev/urandom | base64)",
                 c->rem.secret_env, strlen(sv), VIGIL_SIGNATURE_SECRET_MIN);
        const vigil_config_node *n = vigil_config_node_get(root, "secret_env");
        if (n)
            return vigil_error_set_at(VIGIL_EVALUE, n, msg);
        return vigil__error_set_at(VIGIL_EVALUE, vigil_config_file(c->cfg), 0, 0, "%s", msg);
    }

    rc = vigil__httpd_server_parse(root, &c->httpd, &c->api, &c->sec, &c->daemon.drain_timeout_ms);
    if (rc)
        return rc;

    const vigil_config_node *n;
    if ((rc = vigil__config_section(&n, root, "hub", hub_keys)))
        return rc;
    if (n) {
        if ((rc = vigil_config_require(n, "url")) ||
            (rc = vigil_config_get_string(&c->rem.hub_url, n, "url", NULL)) ||
            (rc = env_name(&c->rem.hub_token_env, n, "token_env", !c->inprocess)) ||
            (rc = vigil__config_get_uint(&c->rem.hub_attempts, n, "attempts", 0, 0, 1000)) ||
            (rc = vigil_config_get_duration(&c->rem.hub_backoff_ms, n, "backoff", 0)) ||
            (rc = vigil_config_get_duration(&c->rem.hub_timeout_ms, n, "timeout", 0)) ||
            (rc = tls_path(&c->rem.hub_ca_file, n, "ca_file")) ||
            (rc = tls_path(&c->rem.hub_cert, n, "cert")) ||
            (rc = tls_path(&c->rem.hub_key, n, "key")))
            return rc;
        if (!c->rem.hub_cert != !c->rem.hub_key)
            return vigil_error_set_at(VIGIL_EVALUE, n, "set both cert and key, or neither");
        if (strncmp(c->rem.hub_url, "http://", 7) != 0 &&
            strncmp(c->rem.hub_url, "https://", 8) != 0)
            return vigil_error_set_at(VIGIL_EUNSUPPORTED, vigil_config_node_get(n, "url"),
                                      "expected an http:// or https:// URL");
    }
    if ((rc = parse_guards(&c->rem, root)))
        return rc;
    if ((rc = vigil__config_section(&n, root, "execution", exec_keys)))
        return rc;
    if (n) {
        unsigned int workers = 0, queue = 0, recent = 0;
        if ((rc = vigil__config_get_uint(&workers, n, "workers", 0, 0, 256)) ||
            (rc = vigil__config_get_uint(&queue, n, "queue", 0, 0, 1000000)) ||
            (rc = vigil__config_get_uint(&recent, n, "recent", 0, 0, 1000)) ||
            (rc = vigil_config_get_duration(&c->rem.tick_interval_ms, n, "tick", 0)))
            return rc;
        c->rem.workers = workers;
        c->rem.queue_max = queue;
        c->rem.recent_max = recent;
    }
    if ((rc = vigil__config_log(&c->daemon.log_level, root)))
        return rc;

    /* the actions: configured once here so that errors show at load time */
    c->rem.actions = vigil_config_node_get(root, "actions");
    vigil_action_registry_options ro = VIGIL_ACTION_REGISTRY_OPTIONS_INIT;
    ro.base_dir = c->base_dir;
    ro.state_dir = c->rem.state_dir;
    ro.logger.min_level = VIGIL_LOG_OFF;
    vigil_action_registry *reg = NULL;
    rc = vigil_action_registry_new(&reg, &ro);
    if (!rc)
        rc = vigil_action_registry_add_builtins(reg);
    if (!rc)
        vigil__action_registry_set_fallback(reg, c->rem.action_types);
    if (!rc && c->rem.actions)
        rc = vigil_action_registry_configure(reg, c->rem.actions);
    vigil_action_registry_free(reg);
    if (!rc && c->inprocess) {
        c->rem.secret_env = NULL;
        c->rem.hub_url = NULL;
        c->rem.hub_token_env = NULL;
        c->rem.hub_ca_file = c->rem.hub_cert = c->rem.hub_key = NULL;
    }
    return rc;
}

void vigil_remediator_config_free(vigil_remediator_config *c)
{
    if (!c)
        return;
    vigil__api_security_dispose(&c->sec);
    vigil_config_free(c->cfg);
    vigil__free(c);
}

/* The loaders below: the file at `path`, or with `text`, those `len` bytes. */
static int load(vigil_remediator_config **out, const char *path, const char *text, size_t len,
                const char *name, const vigil_config_options *copts, int inprocess)
{
    void *obj;
    if (out)
        *out = NULL;
    int rc = vigil__config_open(&obj, sizeof(vigil_remediator_config), out != NULL, path, text, len,
                                name, copts, "remediator config");
    if (rc)
        return rc;
    vigil_remediator_config *c = obj;
    c->inprocess = inprocess;
    c->copts = copts;
    if (!getcwd(c->base_dir, sizeof(c->base_dir)))
        rc = vigil__error_set(VIGIL_EIO, "remediator config: getcwd: %s", strerror(errno));
    else
        rc = parse(c);
    c->copts = NULL;
    if (rc) /* freeing records no error: the located message of parse() stays */
        vigil_remediator_config_free(c);
    else
        *out = c;
    return rc;
}

int vigil_remediator_config_load(vigil_remediator_config **out, const char *path,
                                 const vigil_config_options *copts)
{
    return load(out, path, NULL, 0, NULL, copts, 0);
}

int vigil_remediator_config_load_string(vigil_remediator_config **out, const char *text, size_t len,
                                        const char *name, const vigil_config_options *copts)
{
    return load(out, NULL, text, len, name, copts, 0);
}

int vigil__remediator_config_load_inprocess(vigil_remediator_config **out, const char *path,
                                            const vigil_config_options *copts)
{
    return load(out, path, NULL, 0, NULL, copts, 1);
}

const vigil_remediator_options *vigil_remediator_config_options(const vigil_remediator_config *c)
{
    return c ? &c->rem : NULL;
}

const vigil_api_options *vigil_remediator_config_api(const vigil_remediator_config *c)
{
    return c ? &c->api : NULL;
}

const vigil_httpd_options *vigil_remediator_config_httpd(const vigil_remediator_config *c)
{
    return c ? &c->httpd : NULL;
}

const vigil_remediator_daemon_options *
vigil_remediator_config_daemon(const vigil_remediator_config *c)
{
    return c ? &c->daemon : NULL;
}
