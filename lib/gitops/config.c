/* gitopsd.yaml: the runner, its git source, its api and its server. Every
 * key is documented in configs/gitopsd.yaml; unknown keys are refused with
 * their location. ${HOSTNAME} is left for the runner, which replaces it with
 * the host id in manifests.sources. */
#include "api/internal.h"
#include "config/helpers.h"
#include "gitops/gitops_int.h"
#include "httpd/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_LISTEN  "127.0.0.1:7602"
#define DEFAULT_WORKDIR "./var/gitops"
#define HOSTNAME_REF    "${HOSTNAME}"

struct vigil_gitops_config {
    vigil_config *cfg; /* first: vigil__config_open() */
    vigil_gitops_options ops;
    vigil_gitsync_options git;
    vigil_manifest_options man;
    vigil_api_options api;
    vigil_httpd_options httpd;
    vigil_gitops_daemon_options daemon;
    vigil__api_security sec;
    const char *sources[VIGIL_GITOPS_MAX_SOURCES + 1];
    char *blobs_dir;
    const vigil_config_options *user; /* during the load only */
};

/* ${HOSTNAME} stays literal for the runner; the rest as the caller's. */
static const char *cfg_getenv(void *payload, const char *name)
{
    const vigil_config_options *user = payload;
    if (strcmp(name, "HOSTNAME") == 0)
        return HOSTNAME_REF;
    if (user && user->getenv)
        return user->getenv(user->getenv_payload, name);
    return getenv(name);
}

static const char *env_value(const vigil_gitops_config *c, const char *name)
{
    if (c->user && c->user->getenv)
        return c->user->getenv(c->user->getenv_payload, name);
    return getenv(name);
}

/* An environment variable name under `key`; with must_set, it must be set. */
static int env_name(vigil_gitops_config *c, const char **out, const vigil_config_node *map,
                    const char *key, int must_set)
{
    int rc = vigil_config_get_string(out, map, key, NULL);
    if (rc || !*out)
        return rc;
    const vigil_config_node *n = vigil_config_node_get(map, key);
    if (!**out) {
        *out = NULL;
        return VIGIL_OK;
    }
    if (must_set) {
        const char *v = env_value(c, *out);
        if (!v || !*v) {
            char msg[256];
            snprintf(msg, sizeof(msg), "environment variable %.128s is not set", *out);
            return vigil_error_set_at(VIGIL_EENV, n, msg);
        }
    }
    return VIGIL_OK;
}

static int get_size_t(size_t *out, const vigil_config_node *map, const char *key, uint64_t max)
{
    uint64_t v = 0;
    int rc = vigil_config_get_size(&v, map, key, 0);
    if (rc)
        return rc;
    if (v > max) {
        char msg[96];
        snprintf(msg, sizeof(msg), "expected at most %llu", (unsigned long long)max);
        return vigil_error_set_at(VIGIL_ERANGE, vigil_config_node_get(map, key), msg);
    }
    *out = (size_t)v;
    return VIGIL_OK;
}

static int parse_repo(vigil_gitops_config *c, const vigil_config_node *root)
{
    static const char *const keys[] = {"url",     "ref",     "token_env", "username",
                                       "ca_file", "workdir", "keep",      NULL};
    const vigil_config_node *n;
    int rc = vigil__config_section(&n, root, "repo", keys);
    if (rc)
        return rc;
    if (!n) {
        if (root)
            return vigil_error_set_at(VIGIL_EMISSING, root, "missing required key \"repo\"");
        return vigil__error_set_at(VIGIL_EMISSING, vigil_config_file(c->cfg), 0, 0,
                                   "missing required key \"repo\"");
    }
    vigil_gitsync_options *g = &c->git;
    if ((rc = vigil_config_require(n, "url")) ||
        (rc = vigil_config_get_string(&g->url, n, "url", NULL)) ||
        (rc = vigil_config_get_string(&g->ref, n, "ref", NULL)) ||
        (rc = env_name(c, &g->token_env, n, "token_env", 1)) ||
        (rc = vigil_config_get_string(&g->username, n, "username", NULL)) ||
        (rc = vigil_config_get_string(&g->ca_file, n, "ca_file", NULL)) ||
        (rc = vigil_config_get_string(&g->workdir, n, "workdir", DEFAULT_WORKDIR)) ||
        (rc = vigil__config_get_uint(&g->keep, n, "keep", 0, 1, 100)))
        return rc;
    if (!*g->url)
        return vigil_error_set_at(VIGIL_EVALUE, vigil_config_node_get(n, "url"),
                                  "expected a local path, file:// or https:// URL");
    if (!*g->workdir)
        return vigil_error_set_at(VIGIL_EVALUE, vigil_config_node_get(n, "workdir"),
                                  "expected a directory");
    if (g->ref && !*g->ref)
        g->ref = NULL;
    /* the URL and ref are checked as vigil_gitsync_new() will */
    const char *sep = strstr(g->url, "://");
    if (sep && !((sep - g->url == 5 && strncmp(g->url, "https", 5) == 0) ||
                 (sep - g->url == 4 && strncmp(g->url, "file", 4) == 0)))
        return vigil_error_set_at(VIGIL_EUNSUPPORTED, vigil_config_node_get(n, "url"),
                                  "expected a local path, file:// or https:// URL");
    if (sep && memchr(sep + 3, '@', strcspn(sep + 3, "/")))
        return vigil_error_set_at(VIGIL_EVALUE, vigil_config_node_get(n, "url"),
                                  "credentials in the URL are refused; use token_env");
    vigil_buf b = VIGIL_BUF_INIT;
    rc = vigil__buf_printf(&b, "%s/blobs", g->workdir);
    if (rc)
        return rc;
    c->blobs_dir = vigil__buf_detach(&b);
    if (!c->blobs_dir)
        return vigil__error_oom();
    c->ops.blobs_dir = c->blobs_dir;
    return VIGIL_OK;
}

static int parse_manifests(vigil_gitops_config *c, const vigil_config_node *root)
{
    static const char *const keys[] = {"sources", "limits", NULL};
    static const char *const lkeys[] = {
        "max_file_size", "max_documents", "max_resources",   "max_files",
        "max_depth",     "max_nodes",     "max_source_size", NULL};
    const vigil_config_node *n, *l;
    int rc = vigil__config_section(&n, root, "manifests", keys);
    if (rc || !n)
        return rc;
    const vigil_config_node *src = vigil_config_node_get(n, "sources");
    if (src && vigil_config_node_kind(src) != VIGIL_CONFIG_NULL) {
        size_t count = 0;
        rc =
            vigil__config_string_list(src, c->sources, VIGIL_GITOPS_MAX_SOURCES, &count, "sources");
        if (rc)
            return rc;
        for (size_t i = 0; i < count; i++) {
            const char *s = c->sources[i];
            const vigil_config_node *item = vigil_config_node_at(src, i);
            if (!*s || s[0] == '/' || strstr(s, "..") == s || strstr(s, "/../") ||
                (strlen(s) >= 3 && strcmp(s + strlen(s) - 3, "/..") == 0))
                return vigil_error_set_at(VIGIL_EVALUE, item,
                                          "expected a directory relative to the checkout, "
                                          "without \"..\"");
        }
        c->sources[count] = NULL;
        c->ops.sources = count ? c->sources : NULL;
    }
    if ((rc = vigil__config_section(&l, n, "limits", lkeys)) || !l)
        return rc;
    if ((rc = get_size_t(&c->man.max_file_size, l, "max_file_size", 1ull << 30)) ||
        (rc = vigil__config_get_count(&c->man.max_documents, l, "max_documents", 0, 1, 1000000)) ||
        (rc = vigil__config_get_count(&c->man.max_resources, l, "max_resources", 0, 1, 10000000)) ||
        (rc = vigil__config_get_count(&c->man.max_files, l, "max_files", 0, 1, 10000000)) ||
        (rc = vigil__config_get_uint(&c->man.max_depth, l, "max_depth", 0, 1, 1024)) ||
        (rc = vigil__config_get_count(&c->man.max_nodes, l, "max_nodes", 0, 1, 100000000)) ||
        (rc = get_size_t(&c->man.max_source_size, l, "max_source_size", 1ull << 30)))
        return rc;
    return VIGIL_OK;
}

static int parse(vigil_gitops_config *c)
{
    static const char *const top[] = {"listen",    "http", "security", "log", "host",    "repo",
                                      "manifests", "sync", "observe",  "hub", "webhook", NULL};
    static const char *const sync_keys[] = {"min_interval", "max_interval", "jitter", NULL};
    static const char *const observe_keys[] = {"interval", NULL};
    static const char *const hub_keys[] = {"url", "token_env", "timeout", NULL};
    static const char *const webhook_keys[] = {"secret_env", NULL};

    vigil_gitops_options_init(&c->ops, VIGIL_GITOPS_OPTIONS_VERSION);
    vigil_gitsync_options_init(&c->git, VIGIL_GITSYNC_OPTIONS_VERSION);
    vigil_manifest_options_init(&c->man, VIGIL_MANIFEST_OPTIONS_VERSION);
    vigil_api_options_init(&c->api, VIGIL_API_OPTIONS_VERSION);
    vigil_httpd_options_init(&c->httpd, VIGIL_HTTPD_OPTIONS_VERSION);
    c->httpd.listen = DEFAULT_LISTEN;
    c->daemon.version = VIGIL_GITOPS_DAEMON_OPTIONS_VERSION;
    c->daemon.drain_timeout_ms = 10000;
    c->daemon.log_level = VIGIL_LOG_INFO;
    c->ops.manifest = &c->man;

    const vigil_config_node *root = vigil_config_root(c->cfg, 0);
    if (vigil_config_document_count(c->cfg) > 1)
        return vigil_error_set_at(VIGIL_EVALUE, vigil_config_root(c->cfg, 1),
                                  "gitopsd.yaml holds one document");
    int rc = VIGIL_OK;
    if (root && vigil_config_node_kind(root) != VIGIL_CONFIG_NULL) {
        rc = vigil_config_map(root);
        if (!rc)
            rc = vigil_config_expect_keys(root, top);
    } else {
        root = NULL;
    }
    if (rc)
        return rc;
    if ((rc = vigil_config_get_string(&c->ops.host, root, "host", NULL)))
        return rc;
    if (c->ops.host && (!*c->ops.host || strchr(c->ops.host, '/') || strchr(c->ops.host, '$')))
        return vigil_error_set_at(VIGIL_EVALUE, vigil_config_node_get(root, "host"),
                                  "expected a host id without '/' (${HOSTNAME} stands for the "
                                  "host itself; leave host out for gethostname())");
    rc = vigil__httpd_server_parse(root, &c->httpd, &c->api, &c->sec, &c->daemon.drain_timeout_ms);
    if (!rc)
        rc = parse_repo(c, root);
    if (!rc)
        rc = parse_manifests(c, root);
    if (rc)
        return rc;

    const vigil_config_node *n;
    if ((rc = vigil__config_section(&n, root, "sync", sync_keys)))
        return rc;
    if (n) {
        double jitter = 0.1;
        if ((rc = vigil_config_get_duration(&c->ops.sync_min_interval_ms, n, "min_interval", 0)) ||
            (rc = vigil_config_get_duration(&c->ops.sync_max_interval_ms, n, "max_interval", 0)) ||
            (rc = vigil_config_get_double(&jitter, n, "jitter", 0.1)))
            return rc;
        if (vigil_config_node_get(n, "min_interval") && c->ops.sync_min_interval_ms < 1000)
            return vigil_error_set_at(VIGIL_ERANGE, vigil_config_node_get(n, "min_interval"),
                                      "expected at least 1s");
        int64_t min = c->ops.sync_min_interval_ms ? c->ops.sync_min_interval_ms : 30000;
        int64_t max = c->ops.sync_max_interval_ms ? c->ops.sync_max_interval_ms : 300000;
        if (max < min)
            return vigil_error_set_at(VIGIL_ERANGE,
                                      vigil_config_node_get(n, "max_interval")
                                          ? vigil_config_node_get(n, "max_interval")
                                          : vigil_config_node_get(n, "min_interval"),
                                      "max_interval must not be below min_interval");
        if (!(jitter >= 0 && jitter <= 0.5))
            return vigil_error_set_at(VIGIL_ERANGE, vigil_config_node_get(n, "jitter"),
                                      "expected a fraction from 0 to 0.5");
        c->ops.sync_jitter = jitter == 0 ? -1 : jitter;
    }
    if ((rc = vigil__config_section(&n, root, "observe", observe_keys)))
        return rc;
    if (n) {
        if ((rc = vigil_config_get_duration(&c->ops.observe_interval_ms, n, "interval", 0)))
            return rc;
        if (vigil_config_node_get(n, "interval") && c->ops.observe_interval_ms < 100)
            return vigil_error_set_at(VIGIL_ERANGE, vigil_config_node_get(n, "interval"),
                                      "expected at least 100ms");
    }
    if ((rc = vigil__config_section(&n, root, "hub", hub_keys)))
        return rc;
    if (n) {
        if ((rc = vigil_config_require(n, "url")) ||
            (rc = vigil_config_get_string(&c->ops.hub_url, n, "url", NULL)) ||
            (rc = env_name(c, &c->ops.hub_token_env, n, "token_env", 1)) ||
            (rc = vigil_config_get_duration(&c->ops.hub_timeout_ms, n, "timeout", 0)))
            return rc;
        if (strncmp(c->ops.hub_url, "http://", 7) != 0 &&
            strncmp(c->ops.hub_url, "https://", 8) != 0)
            return vigil_error_set_at(VIGIL_EUNSUPPORTED, vigil_config_node_get(n, "url"),
                                      "expected an http:// or https:// URL");
    }
    if ((rc = vigil__config_section(&n, root, "webhook", webhook_keys)))
        return rc;
    if (n && (rc = env_name(c, &c->ops.webhook_secret_env, n, "secret_env", 1)))
        return rc;
    if ((rc = vigil__config_log(&c->daemon.log_level, root)))
        return rc;
    c->ops.getenv = c->user ? c->user->getenv : NULL;
    c->ops.getenv_payload = c->user ? c->user->getenv_payload : NULL;
    c->git.getenv = c->ops.getenv;
    c->git.getenv_payload = c->ops.getenv_payload;
    return VIGIL_OK;
}

void vigil_gitops_config_free(vigil_gitops_config *c)
{
    if (!c)
        return;
    vigil__api_security_dispose(&c->sec);
    vigil_config_free(c->cfg);
    vigil__free(c->blobs_dir);
    vigil__free(c);
}

static int load(vigil_gitops_config **out, const char *path, const char *text, size_t len,
                const char *name, const vigil_config_options *copts)
{
    if (out)
        *out = NULL;
    vigil_config_options co = VIGIL_CONFIG_OPTIONS_INIT;
    if (copts)
        co = *copts;
    co.getenv = cfg_getenv;
    co.getenv_payload = (void *)copts;
    void *obj;
    int rc = vigil__config_open(&obj, sizeof(vigil_gitops_config), out != NULL, path, text, len,
                                name, &co, "gitops config");
    if (rc)
        return rc;
    vigil_gitops_config *c = obj;
    c->user = copts;
    rc = parse(c);
    c->user = NULL;
    if (rc)
        vigil_gitops_config_free(c);
    else
        *out = c;
    return rc;
}

int vigil_gitops_config_load(vigil_gitops_config **out, const char *path,
                             const vigil_config_options *copts)
{
    return load(out, path, NULL, 0, NULL, copts);
}

int vigil_gitops_config_load_string(vigil_gitops_config **out, const char *text, size_t len,
                                    const char *name, const vigil_config_options *copts)
{
    return load(out, NULL, text, len, name, copts);
}

const vigil_gitops_options *vigil_gitops_config_options(const vigil_gitops_config *c)
{
    return c ? &c->ops : NULL;
}

const vigil_gitsync_options *vigil_gitops_config_gitsync(const vigil_gitops_config *c)
{
    return c ? &c->git : NULL;
}

const vigil_api_options *vigil_gitops_config_api(const vigil_gitops_config *c)
{
    return c ? &c->api : NULL;
}

const vigil_httpd_options *vigil_gitops_config_httpd(const vigil_gitops_config *c)
{
    return c ? &c->httpd : NULL;
}

const vigil_gitops_daemon_options *vigil_gitops_config_daemon(const vigil_gitops_config *c)
{
    return c ? &c->daemon : NULL;
}
