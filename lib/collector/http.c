/* Built-in collector http: a URL check through lib/http (http and https
 * only, on redirects too), bounded body, per-check timeout. */
#include "collector/coll_int.h"
#include "http/http.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define URL_MAX         8192
#define EXPECT_BODY_MAX 4096

static const char *const http_keys[] = {
    "url",           "timeout",    "expect_status", "expect_body", "follow_redirects",
    "max_redirects", "tls_verify", "ca_file",       "max_body",    NULL};

typedef struct {
    const vigil_collector_context *ctx;
    char *url;
    char *label;
    char *expect_body;
    char *ca_file;
    int64_t timeout_ms;
    int64_t expect_status; /* 0: any 2xx or 3xx */
    int follow;
    int64_t max_redirects;
    int tls_verify;
    uint64_t max_body;
    bool https;
    vigil__http *http;
    vigil__http_response resp;
} http_state;

static void http_destroy(void *p)
{
    http_state *s = p;
    vigil__http_free(s->http);
    vigil__free(s->url);
    vigil__free(s->label);
    vigil__free(s->expect_body);
    vigil__free(s->ca_file);
    vigil__http_response_dispose(&s->resp);
    vigil__free(s);
}

static int dup_opt(char **dst, const char *src)
{
    if (!src)
        return VIGIL_OK;
    *dst = vigil__strdup(src);
    return *dst ? VIGIL_OK : vigil__error_oom();
}

static int check_url(http_state *s, const vigil_config_node *node, const char *url)
{
    if (strlen(url) > URL_MAX)
        return vigil_error_set_at(VIGIL_ELIMIT, node, "URL longer than 8192 bytes");
    size_t n = 0;
    while (isalnum((unsigned char)url[n]) || url[n] == '+' || url[n] == '-' || url[n] == '.')
        n++;
    if (n == 0 || strncmp(url + n, "://", 3) != 0)
        return vigil_error_set_at(VIGIL_EVALUE, node,
                                  "expected an absolute URL such as \"http://host:port/path\"");
    if (!((n == 4 && strncasecmp(url, "http", 4) == 0) ||
          (n == 5 && strncasecmp(url, "https", 5) == 0))) {
        char msg[128];
        snprintf(msg, sizeof(msg), "scheme \"%.*s\" is not supported: only http and https",
                 (int)(n > 32 ? 32 : n), url);
        return vigil_error_set_at(VIGIL_EUNSUPPORTED, node, msg);
    }
    s->https = n == 5;
    vigil__http_url u;
    char why[128];
    int rc = vigil__http_url_parse(&u, url, why, sizeof(why));
    vigil__http_url_dispose(&u);
    if (rc == VIGIL_EVALUE) {
        char msg[160];
        snprintf(msg, sizeof(msg), "invalid URL: %s", why);
        return vigil_error_set_at(VIGIL_EVALUE, node, msg);
    }
    return rc;
}

static int http_config(http_state *s, const vigil_config_node *config,
                       const vigil_collector_context *ctx)
{
    const char *url = NULL, *body = NULL, *ca = NULL;
    int rc = vigil__coll_require_string(&url, config, "url");
    if (rc == VIGIL_OK)
        rc = check_url(s, vigil_config_node_get(config, "url"), url);
    if (rc != VIGIL_OK)
        return rc;
    if ((rc = vigil_config_get_duration(&s->timeout_ms, config, "timeout", 10000)) ||
        (rc = vigil_config_get_int(&s->expect_status, config, "expect_status", 0)) ||
        (rc = vigil_config_get_string(&body, config, "expect_body", NULL)) ||
        (rc = vigil_config_get_bool(&s->follow, config, "follow_redirects", 1)) ||
        (rc = vigil_config_get_int(&s->max_redirects, config, "max_redirects", 5)) ||
        (rc = vigil_config_get_bool(&s->tls_verify, config, "tls_verify", 1)) ||
        (rc = vigil_config_get_string(&ca, config, "ca_file", NULL)) ||
        (rc = vigil_config_get_size(&s->max_body, config, "max_body", 1u << 20)))
        return rc;
    if (s->timeout_ms <= 0)
        return vigil_error_set_at(VIGIL_ERANGE, vigil_config_node_get(config, "timeout"),
                                  "timeout must be positive");
    if (s->expect_status != 0 && (s->expect_status < 100 || s->expect_status > 599))
        return vigil_error_set_at(VIGIL_ERANGE, vigil_config_node_get(config, "expect_status"),
                                  "expect_status must be between 100 and 599");
    if (s->max_redirects < 0 || s->max_redirects > 50)
        return vigil_error_set_at(VIGIL_ERANGE, vigil_config_node_get(config, "max_redirects"),
                                  "max_redirects must be between 0 and 50");
    if (body && strlen(body) > EXPECT_BODY_MAX)
        return vigil_error_set_at(VIGIL_ELIMIT, vigil_config_node_get(config, "expect_body"),
                                  "expect_body longer than 4096 bytes");
    if (body && s->max_body < strlen(body))
        return vigil_error_set_at(VIGIL_ERANGE, vigil_config_node_get(config, "max_body"),
                                  "max_body is smaller than expect_body");
    if (s->max_body > (1u << 30))
        return vigil_error_set_at(VIGIL_ERANGE, vigil_config_node_get(config, "max_body"),
                                  "max_body must be at most 1GiB");
    const char *label = ctx->name ? ctx->name : url;
    if (strlen(label) > VIGIL_METRIC_TAG_VALUE_MAX)
        return vigil_error_set_at(VIGIL_ELIMIT, vigil_config_node_get(config, "url"),
                                  "too long to be a tag value; set name");
    if ((rc = dup_opt(&s->url, url)) || (rc = dup_opt(&s->label, label)) ||
        (rc = dup_opt(&s->expect_body, body)))
        return rc;
    if (ca && (s->ca_file = vigil__coll_resolve(ctx->base_dir, ca)) == NULL)
        return VIGIL_ENOMEM;
    return VIGIL_OK;
}

static int http_create(void **state, const vigil_config_node *config,
                       const vigil_collector_context *ctx)
{
    http_state *s = vigil__calloc(1, sizeof(*s));
    if (!s)
        return vigil__error_oom();
    s->ctx = ctx;
    int rc = http_config(s, config, ctx);
    if (rc == VIGIL_OK)
        rc = vigil__http_new(&s->http);
    if (rc != VIGIL_OK) {
        http_destroy(s);
        return rc;
    }
    *state = s;
    return VIGIL_OK;
}

static int http_collect(void *p, vigil_batch *out, int64_t now_ms)
{
    http_state *s = p;
    vigil__http_request req = VIGIL__HTTP_REQUEST_INIT;
    req.url = s->url;
    req.user_agent = "vigil-agent/" VIGIL_VERSION;
    req.follow_redirects = s->follow;
    req.max_redirects = (long)s->max_redirects;
    req.timeout_ms = s->timeout_ms;
    req.connect_timeout_ms = s->timeout_ms;
    req.fresh_connection = 1;
    req.no_proxy = 1; /* a health check goes straight to its target */
    req.insecure = !s->tls_verify;
    req.ca_file = s->ca_file;
    req.cert_expiry = s->https;
    req.max_response = s->max_body ? (size_t)s->max_body : 1; /* 0 would mean the default */
    req.overflow = VIGIL__HTTP_OVERFLOW_STOP;                 /* enough of the body */
    int rc = vigil__http_perform(s->http, &req, &s->resp);
    if (rc == VIGIL_ENOMEM)
        return rc;
    const char *L = s->label;
    if (rc != VIGIL_OK) {
        vigil__log(s->ctx->logger, VIGIL_LOG_DEBUG, "collector", "http check failed",
                   "check=%s error=\"%s\"", L, s->resp.error);
        return vigil__coll_emit1(out, "http_up", 0, now_ms, "check", L);
    }
    long status = s->resp.status;
    const vigil_buf *body = &s->resp.body;
    bool up = s->expect_status ? status == s->expect_status : (status >= 200 && status < 400);
    if (up && s->expect_body) {
        const char *hit = NULL;
        if (body->size > 0)
            hit = memmem(body->ptr, body->size, s->expect_body, strlen(s->expect_body));
        up = hit != NULL;
    }
    if ((rc = vigil__coll_emit1(out, "http_up", up ? 1 : 0, now_ms, "check", L)) ||
        (rc = vigil__coll_emit1(out, "http_status_code", (double)status, now_ms, "check", L)) ||
        (rc = vigil__coll_emit1(out, "http_latency_ms", (double)s->resp.timings.total_us / 1000.0,
                                now_ms, "check", L)))
        return rc;
    if (s->https && s->resp.has_cert_expiry) {
        double days = ((double)s->resp.cert_expiry_s * 1000.0 - (double)now_ms) / 86400000.0;
        return vigil__coll_emit1(out, "http_cert_days_left", days, now_ms, "check", L);
    }
    return VIGIL_OK;
}

const vigil_collector_type vigil__collector_http = {
    .version = VIGIL_COLLECTOR_TYPE_VERSION,
    .name = "http",
    .keys = http_keys,
    .create = http_create,
    .collect = http_collect,
    .destroy = http_destroy,
};
