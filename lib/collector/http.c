/* Built-in collector http: a URL check with libcurl (http and https only,
 * on redirects too), bounded body, per-check timeout. */
#include "collector/coll_int.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

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
    CURL *curl;
    vigil_buf body;
    bool truncated;
    char errbuf[CURL_ERROR_SIZE];
} http_state;

static void http_destroy(void *p)
{
    http_state *s = p;
    if (s->curl) {
        curl_easy_cleanup(s->curl);
        curl_global_cleanup();
    }
    vigil__free(s->url);
    vigil__free(s->label);
    vigil__free(s->expect_body);
    vigil__free(s->ca_file);
    vigil_buf_dispose(&s->body);
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
    CURLU *u = curl_url();
    if (!u)
        return vigil__error_oom();
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
    curl_url_cleanup(u);
    if (uc == CURLUE_OUT_OF_MEMORY)
        return vigil__error_oom();
    if (uc != CURLUE_OK) {
        char msg[160];
        snprintf(msg, sizeof(msg), "invalid URL: %s", curl_url_strerror(uc));
        return vigil_error_set_at(VIGIL_EVALUE, node, msg);
    }
    return VIGIL_OK;
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

static size_t on_body(char *data, size_t size, size_t nmemb, void *payload)
{
    http_state *s = payload;
    size_t n = size * nmemb;
    size_t room = s->max_body > s->body.size ? (size_t)(s->max_body - s->body.size) : 0;
    if (n > room) {
        if (room > 0 && vigil__buf_put(&s->body, data, room) != VIGIL_OK)
            return 0;
        s->truncated = true;
        return 0; /* stop reading: enough of the body */
    }
    if (n > 0 && vigil__buf_put(&s->body, data, n) != VIGIL_OK)
        return 0;
    return n;
}

static int http_setup(http_state *s)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return vigil__error_set(VIGIL_ERROR, "curl_global_init failed");
    s->curl = curl_easy_init();
    if (!s->curl) {
        curl_global_cleanup();
        return vigil__error_oom();
    }
    CURL *c = s->curl;
    CURLcode e = CURLE_OK;
#define SET(opt, val)                            \
    do {                                         \
        if (e == CURLE_OK)                       \
            e = curl_easy_setopt(c, opt, (val)); \
    } while (0)
    SET(CURLOPT_URL, s->url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, (long)s->follow);
    SET(CURLOPT_MAXREDIRS, (long)s->max_redirects);
    SET(CURLOPT_TIMEOUT_MS, (long)s->timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)s->timeout_ms);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_FRESH_CONNECT, 1L);
    SET(CURLOPT_FORBID_REUSE, 1L);
    SET(CURLOPT_PROXY, ""); /* a health check goes straight to its target */
    SET(CURLOPT_USERAGENT, "vigil-agent/" VIGIL_VERSION);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, s);
    SET(CURLOPT_ERRORBUFFER, s->errbuf);
    SET(CURLOPT_SSL_VERIFYPEER, (long)s->tls_verify);
    SET(CURLOPT_SSL_VERIFYHOST, s->tls_verify ? 2L : 0L);
    if (s->ca_file)
        SET(CURLOPT_CAINFO, s->ca_file);
    if (s->https)
        SET(CURLOPT_CERTINFO, 1L);
#undef SET
    if (e != CURLE_OK)
        return vigil__error_set(e == CURLE_OUT_OF_MEMORY ? VIGIL_ENOMEM : VIGIL_EUNSUPPORTED,
                                "libcurl option: %s", curl_easy_strerror(e));
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
        rc = http_setup(s);
    if (rc != VIGIL_OK) {
        http_destroy(s);
        return rc;
    }
    *state = s;
    return VIGIL_OK;
}

/* Days until the leaf certificate's "Expire date" (OpenSSL's certinfo
 * format, "Jan 13 12:00:00 2030 GMT"); false when unknown. */
static bool cert_days_left(CURL *c, int64_t now_ms, double *days)
{
    struct curl_certinfo *ci = NULL;
    if (curl_easy_getinfo(c, CURLINFO_CERTINFO, &ci) != CURLE_OK || !ci || ci->num_of_certs < 1)
        return false;
    for (struct curl_slist *l = ci->certinfo[0]; l; l = l->next) {
        if (strncmp(l->data, "Expire date:", 12) != 0)
            continue;
        struct tm tm;
        memset(&tm, 0, sizeof(tm));
        const char *end = strptime(l->data + 12, "%b %d %H:%M:%S %Y", &tm);
        if (!end)
            return false;
        time_t t = timegm(&tm);
        *days = ((double)t * 1000.0 - (double)now_ms) / 86400000.0;
        return true;
    }
    return false;
}

static int http_collect(void *p, vigil_batch *out, int64_t now_ms)
{
    http_state *s = p;
    vigil__buf_clear(&s->body);
    s->truncated = false;
    s->errbuf[0] = '\0';
    CURLcode e = curl_easy_perform(s->curl);
    if (e == CURLE_WRITE_ERROR && s->truncated)
        e = CURLE_OK; /* we stopped reading on purpose */
    if (e == CURLE_OUT_OF_MEMORY)
        return vigil__error_oom();
    const char *L = s->label;
    int rc;
    if (e != CURLE_OK) {
        vigil__log(s->ctx->logger, VIGIL_LOG_DEBUG, "collector", "http check failed",
                   "check=%s error=\"%s\"", L, s->errbuf[0] ? s->errbuf : curl_easy_strerror(e));
        return vigil__coll_emit1(out, "http_up", 0, now_ms, "check", L);
    }
    long status = 0;
    curl_off_t total_us = 0;
    curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(s->curl, CURLINFO_TOTAL_TIME_T, &total_us);
    bool up = s->expect_status ? status == s->expect_status : (status >= 200 && status < 400);
    if (up && s->expect_body) {
        const char *hit = NULL;
        if (s->body.size > 0)
            hit = memmem(s->body.ptr, s->body.size, s->expect_body, strlen(s->expect_body));
        up = hit != NULL;
    }
    if ((rc = vigil__coll_emit1(out, "http_up", up ? 1 : 0, now_ms, "check", L)) ||
        (rc = vigil__coll_emit1(out, "http_status_code", (double)status, now_ms, "check", L)) ||
        (rc = vigil__coll_emit1(out, "http_latency_ms", (double)total_us / 1000.0, now_ms, "check",
                                L)))
        return rc;
    double days;
    if (s->https && cert_days_left(s->curl, now_ms, &days))
        return vigil__coll_emit1(out, "http_cert_days_left", days, now_ms, "check", L);
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
