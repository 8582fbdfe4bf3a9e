/* The `listen:` and `http:` blocks:
 *   listen: 127.0.0.1:7600
 *   http: {threads: 2, max_connections: 1024, per_ip: 64, timeout: 30s, max_body: 8MiB,
 *          max_inflated: 64MiB, drain_timeout: 10s, connection_memory: 128KiB,
 *          max_buffered: 256MiB,
 *          tls: {cert: "", key: "", client_ca: ""}} */
#include "config/helpers.h"
#include "httpd/internal.h"

static int get_path(const char **out, const vigil_config_node *map, const char *key)
{
    int rc = vigil_config_get_string(out, map, key, NULL);
    if (!rc && *out && !**out)
        *out = NULL;
    return rc;
}

int vigil__httpd_parse(vigil_httpd_options *opts, uint64_t *max_inflated, int64_t *drain_timeout_ms,
                       const vigil_config_node *listen, const vigil_config_node *http)
{
    static const char *const keys[] = {
        "threads",       "max_connections",   "per_ip", "timeout",      "max_body", "max_inflated",
        "drain_timeout", "connection_memory", "tls",    "max_buffered", NULL};
    static const char *const tls_keys[] = {"cert", "key", "client_ca", NULL};
    int rc;
    *max_inflated = 0;
    *drain_timeout_ms = 0;
    if (listen && vigil_config_node_kind(listen) != VIGIL_CONFIG_NULL) {
        if ((rc = vigil_config_string(&opts->listen, listen)))
            return rc;
    }
    if (!http || vigil_config_node_kind(http) == VIGIL_CONFIG_NULL)
        return VIGIL_OK;
    if ((rc = vigil_config_map(http)) || (rc = vigil_config_expect_keys(http, keys)))
        return rc;
    uint64_t mem = 0;
    if ((rc = vigil__config_get_uint(&opts->threads, http, "threads", 0, 0, 256)) ||
        (rc = vigil__config_get_uint(&opts->max_connections, http, "max_connections", 0, 0,
                                     1000000)) ||
        (rc = vigil__config_get_uint(&opts->per_ip, http, "per_ip", 0, 0, 1000000)) ||
        (rc = vigil_config_get_duration(&opts->timeout_ms, http, "timeout", 0)) ||
        (rc = vigil_config_get_size(&opts->max_body, http, "max_body", 0)) ||
        (rc = vigil_config_get_size(max_inflated, http, "max_inflated", 0)) ||
        (rc = vigil_config_get_duration(drain_timeout_ms, http, "drain_timeout", 0)) ||
        (rc = vigil_config_get_size(&mem, http, "connection_memory", 0)) ||
        (rc = vigil_config_get_size(&opts->max_buffered, http, "max_buffered", 0)))
        return rc;
    if (opts->max_buffered &&
        opts->max_buffered < (opts->max_body ? opts->max_body : 8ull * 1024 * 1024))
        return vigil_error_set_at(VIGIL_ERANGE, vigil_config_node_get(http, "max_buffered"),
                                  "max_buffered must be at least max_body");
    if (opts->timeout_ms && opts->timeout_ms < 1000)
        return vigil_error_set_at(VIGIL_ERANGE, vigil_config_node_get(http, "timeout"),
                                  "the connection timeout is at least 1s");
    if (mem && (mem < 16 * 1024 || mem > 64ull * 1024 * 1024))
        return vigil_error_set_at(VIGIL_ERANGE, vigil_config_node_get(http, "connection_memory"),
                                  "expected a size from 16KiB to 64MiB");
    opts->connection_memory = (size_t)mem;
    const vigil_config_node *tls = vigil_config_node_get(http, "tls");
    if (tls && vigil_config_node_kind(tls) != VIGIL_CONFIG_NULL) {
        if ((rc = vigil_config_map(tls)) || (rc = vigil_config_expect_keys(tls, tls_keys)) ||
            (rc = get_path(&opts->tls_cert, tls, "cert")) ||
            (rc = get_path(&opts->tls_key, tls, "key")) ||
            (rc = get_path(&opts->tls_client_ca, tls, "client_ca")))
            return rc;
        if (!opts->tls_cert != !opts->tls_key)
            return vigil_error_set_at(VIGIL_EVALUE, tls, "set both cert and key, or neither");
        if (opts->tls_client_ca && !opts->tls_cert)
            return vigil_error_set_at(VIGIL_EVALUE, tls, "client_ca needs cert and key");
    }
    return VIGIL_OK;
}

int vigil__httpd_server_parse(const vigil_config_node *root, vigil_httpd_options *httpd,
                              vigil_api_options *api, vigil__api_security *sec,
                              int64_t *drain_timeout_ms)
{
    uint64_t max_inflated = 0;
    int64_t drain = 0;
    int rc = vigil__httpd_parse(httpd, &max_inflated, &drain, vigil_config_node_get(root, "listen"),
                                vigil_config_node_get(root, "http"));
    if (!rc)
        rc = vigil__api_security_parse(sec, vigil_config_node_get(root, "security"));
    if (rc)
        return rc;
    api->max_body = httpd->max_body;
    api->max_inflated = max_inflated;
    api->tokens = sec->tokens;
    api->ntokens = sec->ntokens;
    api->bindings = sec->bindings;
    api->nbindings = sec->nbindings;
    api->allowed_origins = sec->origins;
    api->nallowed_origins = sec->norigins;
    httpd->insecure = sec->insecure;
    if (drain)
        *drain_timeout_ms = drain;
    return VIGIL_OK;
}
