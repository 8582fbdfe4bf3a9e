/* The ingest client: POST /v1/ingest through lib/http. One HTTP handle per
 * client keeps the connection alive between sends; a transfer or a backoff
 * wait is cut short by the cancel fd. */
#include "client/client_int.h"

#include "crypto/crypto.h"
#include "gzip/gzip.h"
#include "http/http.h"
#include "internal/json.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RESP_MAX        65536 /* bytes of a response body kept for the error message */
#define INGEST_PATH     "/v1/ingest"
#define TOKEN_MAX       4096
#define PATH_OPTION_MAX 4096
#define DEF_CONNECT_MS  5000
#define DEF_REQUEST_MS  30000
#define DEF_ATTEMPTS    5
#define DEF_BACKOFF_MS  500
#define DEF_BACKOFF_MAX 30000
#define DEF_RETRY_AFTER 60000
#define COMPONENT       "client"

struct vigil_client {
    char **urls; /* full ingest URLs */
    size_t nurls;
    size_t preferred; /* index of the URL that answered last */
    char *auth;       /* "Authorization: Bearer ..." (secret) or NULL */
    char *ca_file, *cert_file, *key_file, *user_agent;
    int insecure;
    int64_t connect_ms, request_ms, backoff_base, backoff_max, retry_after_max;
    unsigned int max_attempts;
    vigil_logger logger;
    int cancel_fd;
    int64_t cancel_grace; /* ms a transfer may go on once cancel_fd is readable */
    int64_t deadline;     /* monotonic ms after which a send gives up; 0: none */

    vigil__http *http;
    vigil__http_response resp;
    const char *hdr[5];     /* request headers: JSON, then gzip, then the token */
    int64_t retry_after_ms; /* from the last response, -1 when absent */
    uint64_t rng;

    /* counters: written by the sending thread, read by any (atomics) */
    uint64_t n_sent, n_failed, n_dropped, n_retried, n_requests, n_backoff_ms;
    int last_status;
};

/* ---- options ---------------------------------------------------------------- */

int vigil_client_options_init(vigil_client_options *opts, unsigned int version)
{
    if (!opts)
        return vigil__error_set(VIGIL_EINVAL, "client options: NULL argument");
    if (vigil__version_check("client options", version, VIGIL_CLIENT_OPTIONS_VERSION))
        return VIGIL_EVERSION;
    vigil_client_options d = VIGIL_CLIENT_OPTIONS_INIT;
    *opts = d;
    return VIGIL_OK;
}

/* ---- randomness -------------------------------------------------------------- */

int vigil_client_batch_id(char *out, size_t size)
{
    if (!out || size < 33)
        return vigil__error_set(VIGIL_EINVAL, "batch id: buffer of at least 33 bytes required");
    unsigned char raw[16];
    int rc = vigil__crypto_random(raw, sizeof(raw));
    if (rc)
        return rc;
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof(raw); i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[32] = '\0';
    return VIGIL_OK;
}

/* ---- creation ------------------------------------------------------------------ */

static int check_url(const char *url, size_t index)
{
    if (!url || !*url)
        return vigil__error_set(VIGIL_EINVAL, "client: urls[%zu] is empty", index);
    if (strlen(url) > VIGIL_CLIENT_URL_MAX)
        return vigil__error_set(VIGIL_EINVAL, "client: urls[%zu] is longer than %d bytes", index,
                                VIGIL_CLIENT_URL_MAX);
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return vigil__error_set(
                VIGIL_EINVAL, "client: urls[%zu] contains a space or control character", index);
    vigil__http_url u;
    int rc = vigil__http_url_parse(&u, url, NULL, 0);
    if (rc == VIGIL_ENOMEM) {
        /* returned as is */
    } else if (rc || !u.scheme) {
        rc = vigil__error_set(VIGIL_EINVAL, "client: urls[%zu] \"%.200s\" is not a valid URL",
                              index, url);
    } else if (strcmp(u.scheme, "http") != 0 && strcmp(u.scheme, "https") != 0) {
        rc = vigil__error_set(VIGIL_EINVAL,
                              "client: urls[%zu]: scheme \"%.20s\" is not allowed (http or https)",
                              index, u.scheme);
    } else if (!u.host || !*u.host) {
        rc = vigil__error_set(VIGIL_EINVAL, "client: urls[%zu] \"%.200s\" has no host", index, url);
    } else if (u.user) {
        rc = vigil__error_set(VIGIL_EINVAL,
                              "client: urls[%zu]: credentials in a URL are refused; use token_env",
                              index);
    } else if (u.query) {
        rc = vigil__error_set(VIGIL_EINVAL, "client: urls[%zu]: a hub URL takes no query string",
                              index);
    }
    vigil__http_url_dispose(&u);
    return rc;
}

static int dup_opt(char **dst, const char *src, const char *what)
{
    if (!src || !*src)
        return VIGIL_OK;
    if (strlen(src) > PATH_OPTION_MAX)
        return vigil__error_set(VIGIL_EINVAL, "client: %s is longer than %d bytes", what,
                                PATH_OPTION_MAX);
    *dst = vigil__strdup(src);
    return *dst ? VIGIL_OK : vigil__error_oom();
}

static int check_duration(int64_t v, const char *what)
{
    if (v < 0)
        return vigil__error_set(VIGIL_EINVAL, "client: %s must not be negative", what);
    return VIGIL_OK;
}

/* Retry-After of the last response, in ms (delta seconds or an HTTP date); -1
 * when absent or unreadable. */
static int64_t retry_after(const vigil__http_response *resp)
{
    char v[256];
    const char *s = vigil__http_response_header(resp, "Retry-After", v, sizeof(v));
    if (!s || !*s)
        return -1;
    if (*s >= '0' && *s <= '9') {
        char *end = NULL;
        errno = 0;
        long long secs = strtoll(s, &end, 10);
        if (!errno && end && !*end && secs >= 0)
            return secs > INT64_MAX / 1000 ? INT64_MAX : secs * 1000;
        return -1;
    }
    int64_t when;
    if (vigil__http_date_parse(s, &when) != VIGIL_OK)
        return -1;
    int64_t d = when * 1000 - vigil__now_ms();
    return d > 0 ? d : 0;
}

static int setup_http(vigil_client *c)
{
    c->hdr[0] = "Content-Type: application/json";
    c->hdr[1] = "Expect:";
    c->hdr[2] = "Content-Encoding: gzip";
    c->hdr[3] = c->auth;
    return vigil__http_new(&c->http);
}

static int read_token(vigil_client *c, const char *token_env)
{
    if (!token_env || !*token_env)
        return VIGIL_OK;
    const char *tok = getenv(token_env);
    if (!tok || !*tok) {
        vigil__log(&c->logger, VIGIL_LOG_WARN, COMPONENT,
                   "token variable is not set; sending without a token", "token_env=%s", token_env);
        return VIGIL_OK;
    }
    size_t len = strlen(tok);
    if (len > TOKEN_MAX)
        return vigil__error_set(VIGIL_EVALUE,
                                "client: the token in $%.100s is longer than %d bytes", token_env,
                                TOKEN_MAX);
    for (const unsigned char *p = (const unsigned char *)tok; *p; p++)
        if (*p < 0x21 || *p > 0x7e)
            return vigil__error_set(VIGIL_EVALUE,
                                    "client: the token in $%.100s contains a space or a "
                                    "non-printable character",
                                    token_env);
    vigil_buf b = VIGIL_BUF_INIT;
    int rc = vigil__buf_printf(&b, "Authorization: Bearer %s", tok);
    if (rc) {
        vigil_buf_dispose(&b);
        return rc;
    }
    c->auth = vigil__buf_detach(&b);
    return c->auth ? VIGIL_OK : vigil__error_oom();
}

int vigil_client_new(vigil_client **out, const vigil_client_options *opts)
{
    if (!out || !opts)
        return vigil__error_set(VIGIL_EINVAL, "client: NULL argument");
    *out = NULL;
    if (vigil__version_check("client options", opts->version, VIGIL_CLIENT_OPTIONS_VERSION))
        return VIGIL_EVERSION;
    if (!opts->urls || opts->nurls == 0)
        return vigil__error_set(VIGIL_EINVAL, "client: at least one hub URL is required");
    if (opts->nurls > VIGIL_CLIENT_URLS_MAX)
        return vigil__error_set(VIGIL_EINVAL, "client: at most %d hub URLs, got %zu",
                                VIGIL_CLIENT_URLS_MAX, opts->nurls);
    int rc;
    for (size_t i = 0; i < opts->nurls; i++)
        if ((rc = check_url(opts->urls[i], i)) != VIGIL_OK)
            return rc;
    if ((rc = check_duration(opts->connect_timeout_ms, "connect_timeout_ms")) ||
        (rc = check_duration(opts->request_timeout_ms, "request_timeout_ms")) ||
        (rc = check_duration(opts->backoff_base_ms, "backoff_base_ms")) ||
        (rc = check_duration(opts->backoff_max_ms, "backoff_max_ms")) ||
        (rc = check_duration(opts->retry_after_max_ms, "retry_after_max_ms")))
        return rc;
    int has_cert = opts->cert_file && *opts->cert_file;
    int has_key = opts->key_file && *opts->key_file;
    if (has_cert != has_key)
        return vigil__error_set(VIGIL_EINVAL, "client: cert_file and key_file go together");

    vigil_client *c = vigil__calloc(1, sizeof(*c));
    if (!c)
        return vigil__error_oom();
    c->cancel_fd = -1;
    c->retry_after_ms = -1;
    c->logger = opts->logger;
    c->insecure = opts->insecure != 0;
    c->connect_ms = opts->connect_timeout_ms ? opts->connect_timeout_ms : DEF_CONNECT_MS;
    c->request_ms = opts->request_timeout_ms ? opts->request_timeout_ms : DEF_REQUEST_MS;
    c->backoff_base = opts->backoff_base_ms ? opts->backoff_base_ms : DEF_BACKOFF_MS;
    c->backoff_max = opts->backoff_max_ms ? opts->backoff_max_ms : DEF_BACKOFF_MAX;
    c->retry_after_max = opts->retry_after_max_ms ? opts->retry_after_max_ms : DEF_RETRY_AFTER;
    c->max_attempts = opts->max_attempts ? opts->max_attempts : DEF_ATTEMPTS;
    if (c->backoff_max < c->backoff_base)
        c->backoff_max = c->backoff_base;

    rc = VIGIL_OK;
    c->urls = vigil__calloc(opts->nurls, sizeof(char *));
    if (!c->urls)
        rc = vigil__error_oom();
    for (size_t i = 0; !rc && i < opts->nurls; i++) {
        const char *u = opts->urls[i];
        size_t len = strlen(u);
        while (len > 0 && u[len - 1] == '/')
            len--;
        vigil_buf b = VIGIL_BUF_INIT;
        rc = vigil__buf_put(&b, u, len);
        if (!rc)
            rc = vigil__buf_puts(&b, INGEST_PATH);
        if (rc) {
            vigil_buf_dispose(&b);
            break;
        }
        c->urls[i] = vigil__buf_detach(&b);
        c->nurls = i + 1;
    }
    if (!rc)
        rc = dup_opt(&c->ca_file, opts->ca_file, "ca_file");
    if (!rc)
        rc = dup_opt(&c->cert_file, opts->cert_file, "cert_file");
    if (!rc)
        rc = dup_opt(&c->key_file, opts->key_file, "key_file");
    if (!rc)
        rc = dup_opt(&c->user_agent,
                     opts->user_agent && *opts->user_agent ? opts->user_agent
                                                           : "vigil/" VIGIL_VERSION,
                     "user_agent");
    if (!rc)
        rc = read_token(c, opts->token_env);
    if (!rc) {
        c->rng = vigil__crypto_seed();
        rc = setup_http(c);
    }
    if (rc) {
        vigil_client_free(c);
        return rc;
    }
    *out = c;
    return VIGIL_OK;
}

void vigil_client_free(vigil_client *c)
{
    if (!c)
        return;
    vigil__http_free(c->http);
    for (size_t i = 0; i < c->nurls; i++)
        vigil__free(c->urls[i]);
    vigil__free(c->urls);
    if (c->auth) {
        explicit_bzero(c->auth, strlen(c->auth));
        vigil__free(c->auth);
    }
    vigil__free(c->ca_file);
    vigil__free(c->cert_file);
    vigil__free(c->key_file);
    vigil__free(c->user_agent);
    vigil__http_response_dispose(&c->resp);
    vigil__free(c);
}

void vigil__client_set_cancel_fd(vigil_client *c, int fd, int64_t grace_ms)
{
    if (c) {
        c->cancel_fd = fd;
        c->cancel_grace = grace_ms > 0 ? grace_ms : 0;
    }
}

/* True when the cancel fd is readable now. */
static int cancel_pending(const vigil_client *c)
{
    if (c->cancel_fd < 0)
        return 0;
    struct pollfd p = {c->cancel_fd, POLLIN, 0};
    return poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

/* ---- sending ------------------------------------------------------------------- */

/* OUT_SPLIT: the hub found the body too large (413); the caller splits it. */
enum outcome { OUT_OK, OUT_RETRY, OUT_DROP, OUT_SPLIT, OUT_CANCEL, OUT_FATAL };

/* error.code of a 403 that refuses the batch's content: its agent or a host
 * tag is not one the token may speak for (docs/http-api.md). Any other 403
 * is about the credential and the batch is kept. */
#define CODE_AGENT_MISMATCH "agent_mismatch"

/* Waits up to `ms`, cut short by the cancel fd. Returns 1 when cancelled. */
static int wait_ms(vigil_client *c, int64_t ms)
{
    int64_t end = vigil__monotonic_ms() + ms;
    for (;;) {
        int64_t left = end - vigil__monotonic_ms();
        int timeout = left > 1000 ? 1000 : (int)(left > 0 ? left : 0);
        if (c->cancel_fd >= 0) {
            struct pollfd p = {c->cancel_fd, POLLIN, 0};
            if (poll(&p, 1, timeout) > 0 && (p.revents & POLLIN))
                return 1;
        } else if (timeout > 0) {
            poll(NULL, 0, timeout);
        }
        if (left <= 0 || vigil__monotonic_ms() >= end)
            return 0;
    }
}

/* Extracts error.code and error.message from a hub's JSON error body. */
static void hub_error(const vigil_buf *resp, char *code, size_t ncode, char *msg, size_t nmsg)
{
    snprintf(code, ncode, "%s", "");
    snprintf(msg, nmsg, "%s", "");
    if (!resp->ptr || !resp->size)
        return;
    vigil__json_init();
    cJSON *root = cJSON_ParseWithLength(resp->ptr, resp->size);
    cJSON *err = cJSON_GetObjectItemCaseSensitive(root, "error");
    cJSON *c = cJSON_GetObjectItemCaseSensitive(err, "code");
    cJSON *m = cJSON_GetObjectItemCaseSensitive(err, "message");
    if (cJSON_IsString(c))
        snprintf(code, ncode, "%s", c->valuestring);
    if (cJSON_IsString(m))
        snprintf(msg, nmsg, "%s", m->valuestring);
    else if (!root) /* not JSON: quote the start of the body */
        snprintf(msg, nmsg, "%.*s", (int)(resp->size < 200 ? resp->size : 200), resp->ptr);
    cJSON_Delete(root);
}

/* One HTTP request to urls[idx]. Sets *code to the status to return if this
 * is the last attempt. */
static enum outcome post_once(vigil_client *c, size_t idx, const void *body, size_t len, int gz,
                              const char *batch_id, int *code)
{
    c->retry_after_ms = -1;
    int64_t limit = c->request_ms;
    if (c->deadline) {
        int64_t left = c->deadline - vigil__monotonic_ms();
        if (left < limit)
            limit = left > 1 ? left : 1;
    }
    const char *hdr[4];
    size_t nh = 0;
    hdr[nh++] = c->hdr[0];
    hdr[nh++] = c->hdr[1];
    if (gz)
        hdr[nh++] = c->hdr[2];
    if (c->hdr[3])
        hdr[nh++] = c->hdr[3];
    vigil__http_request req = VIGIL__HTTP_REQUEST_INIT;
    req.url = c->urls[idx];
    req.body = body;
    req.body_len = len;
    req.headers = hdr;
    req.nheaders = nh;
    req.user_agent = c->user_agent;
    req.ca_file = c->ca_file;
    req.cert_file = c->cert_file;
    req.key_file = c->key_file;
    req.insecure = c->insecure;
    req.connect_timeout_ms = c->connect_ms;
    req.timeout_ms = limit;
    req.max_response = RESP_MAX; /* kept for the error message */
    req.overflow = VIGIL__HTTP_OVERFLOW_CLIP;
    req.cancel_fd = c->cancel_fd;
    req.cancel_grace_ms = c->cancel_grace;
    __atomic_add_fetch(&c->n_requests, 1, __ATOMIC_RELAXED);
    int rc = vigil__http_perform(c->http, &req, &c->resp);
    c->retry_after_ms = retry_after(&c->resp);
    const char *url = c->urls[idx];
    if (rc == VIGIL_ECLOSED) {
        *code = vigil__error_set(VIGIL_ECLOSED, "client: send to %s cancelled", url);
        return OUT_CANCEL;
    }
    if (rc == VIGIL_ETIMEOUT || rc == VIGIL_ENETWORK) {
        *code = vigil__error_set(rc, "client: POST %s failed: %s", url, c->resp.reason);
        vigil__log(&c->logger, VIGIL_LOG_WARN, COMPONENT, "ingest request failed",
                   "url=%s batch_id=%s error=\"%s\"", url, batch_id, c->resp.reason);
        return OUT_RETRY;
    }
    if (rc) {
        *code = rc;
        return OUT_FATAL;
    }
    long status = c->resp.status;
    __atomic_store_n(&c->last_status, (int)status, __ATOMIC_RELAXED);
    if (status >= 200 && status < 300)
        return OUT_OK;
    char hcode[64], hmsg[512];
    hub_error(&c->resp.body, hcode, sizeof(hcode), hmsg, sizeof(hmsg));
    vigil_buf f = VIGIL_BUF_INIT;
    vigil__buf_printf(&f, "url=%s batch_id=%s status=%ld", url, batch_id, status);
    if (*hcode) {
        vigil__buf_puts(&f, " code=");
        vigil__logfmt_value(&f, hcode);
    }
    if (*hmsg) {
        vigil__buf_puts(&f, " error=");
        vigil__logfmt_value(&f, hmsg);
    }
    const char *fields = f.ptr ? f.ptr : "";
    enum outcome out;
    /* Only a judgement of the batch's content drops it: 400, 415, or a 403
     * saying the batch speaks for an agent or host the token does not. */
    int refused = status == 400 || status == 415 ||
                  (status == 403 && strcmp(hcode, CODE_AGENT_MISMATCH) == 0);
    if (refused) {
        *code = vigil__error_set(VIGIL_EHTTP, "client: hub refused the batch: %ld %s%s%s", status,
                                 *hcode ? hcode : "", *hcode ? ": " : "", hmsg);
        vigil__log(&c->logger, VIGIL_LOG_ERROR, COMPONENT, "hub refused the batch; dropped", "%s",
                   fields);
        out = OUT_DROP;
    } else if (status == 413) {
        *code = vigil__error_set(VIGIL_ELIMIT, "client: POST %s: hub answered 413%s%s", url,
                                 *hmsg ? ": " : "", hmsg);
        vigil__log(&c->logger, VIGIL_LOG_WARN, COMPONENT, "hub found the batch too large", "%s",
                   fields);
        out = OUT_SPLIT;
    } else if (status == 401 || status == 403) {
        *code = vigil__error_set(status == 401 ? VIGIL_EAUTH : VIGIL_EPERM,
                                 "client: POST %s: hub answered %ld%s%s", url, status,
                                 *hmsg ? ": " : "", hmsg);
        vigil__log(&c->logger, VIGIL_LOG_WARN, COMPONENT, "hub refused the credentials", "%s",
                   fields);
        out = OUT_RETRY;
    } else if (status == 429 || status >= 500) {
        *code = vigil__error_set(VIGIL_EOVERLOADED, "client: POST %s: hub answered %ld%s%s", url,
                                 status, *hmsg ? ": " : "", hmsg);
        vigil__log(&c->logger, VIGIL_LOG_WARN, COMPONENT, "hub cannot take the batch now", "%s",
                   fields);
        out = OUT_RETRY;
    } else if (status >= 400) {
        /* 404 (a misrouting proxy), 408, 409 and the like judge no batch */
        *code = vigil__error_set(status == 408 ? VIGIL_ETIMEOUT : VIGIL_ENETWORK,
                                 "client: POST %s: hub answered %ld%s%s", url, status,
                                 *hmsg ? ": " : "", hmsg);
        vigil__log(&c->logger, VIGIL_LOG_WARN, COMPONENT, "hub did not take the batch; kept", "%s",
                   fields);
        out = OUT_RETRY;
    } else {
        *code = vigil__error_set(VIGIL_ENETWORK,
                                 "client: POST %s: unexpected HTTP status %ld (redirects are "
                                 "not followed)",
                                 url, status);
        vigil__log(&c->logger, VIGIL_LOG_WARN, COMPONENT, "unexpected HTTP status", "%s", fields);
        out = OUT_RETRY;
    }
    vigil_buf_dispose(&f);
    return out;
}

static int64_t backoff_delay(vigil_client *c, unsigned int retry)
{
    int64_t ceiling = vigil__backoff_ceiling(c->backoff_base, c->backoff_max, retry);
    return (int64_t)(vigil__rand_next(&c->rng) % (uint64_t)(ceiling + 1)); /* full jitter */
}

static int send_raw(vigil_client *c, const void *body, size_t len, int gz, const char *batch_id,
                    unsigned int max_attempts)
{
    if (!max_attempts)
        max_attempts = c->max_attempts;
    int code = VIGIL_ENETWORK;
    int64_t retry_after = -1; /* largest Retry-After of the last round */
    for (unsigned int attempt = 0; attempt < max_attempts; attempt++) {
        if (attempt > 0) {
            int64_t d = backoff_delay(c, attempt);
            if (retry_after >= 0) /* honour the hub's Retry-After, capped */
                d = retry_after < c->retry_after_max ? retry_after : c->retry_after_max;
            if (c->deadline && vigil__monotonic_ms() + d >= c->deadline)
                break; /* no time left for another round */
            __atomic_add_fetch(&c->n_retried, 1, __ATOMIC_RELAXED);
            vigil__log(&c->logger, VIGIL_LOG_INFO, COMPONENT, "retrying after backoff",
                       "batch_id=%s attempt=%u delay_ms=%lld", batch_id, attempt + 1, (long long)d);
            int64_t t0 = vigil__monotonic_ms();
            int cancel = wait_ms(c, d);
            __atomic_add_fetch(&c->n_backoff_ms, (uint64_t)(vigil__monotonic_ms() - t0),
                               __ATOMIC_RELAXED);
            if (cancel) {
                code = vigil__error_set(VIGIL_ECLOSED, "client: send cancelled");
                break;
            }
        }
        retry_after = -1;
        for (size_t k = 0; k < c->nurls; k++) {
            size_t idx = (c->preferred + k) % c->nurls;
            if (k > 0 && c->deadline && vigil__monotonic_ms() >= c->deadline)
                break;
            if (k > 0 && cancel_pending(c)) {
                code = vigil__error_set(VIGIL_ECLOSED, "client: send cancelled");
                goto fail;
            }
            enum outcome o = post_once(c, idx, body, len, gz, batch_id, &code);
            if (c->retry_after_ms > retry_after)
                retry_after = c->retry_after_ms;
            if (o == OUT_OK) {
                c->preferred = idx;
                __atomic_add_fetch(&c->n_sent, 1, __ATOMIC_RELAXED);
                vigil_error_clear();
                return VIGIL_OK;
            }
            if (o == OUT_DROP) {
                __atomic_add_fetch(&c->n_dropped, 1, __ATOMIC_RELAXED);
                return code;
            }
            if (o == OUT_SPLIT) /* no other URL or round: the same body would not fit */
                return code;
            if (o == OUT_FATAL || o == OUT_CANCEL)
                goto fail;
        }
    }
fail:
    __atomic_add_fetch(&c->n_failed, 1, __ATOMIC_RELAXED);
    return code;
}

int vigil__client_encode(vigil_buf *out, vigil_batch *batch)
{
    if (!vigil_batch_id(batch)) {
        char id[33];
        int rc = vigil_client_batch_id(id, sizeof(id));
        if (!rc)
            rc = vigil_batch_set_id(batch, id);
        if (rc)
            return rc;
    }
    vigil_buf json = VIGIL_BUF_INIT;
    int rc = vigil_batch_encode_json(&json, batch);
    if (!rc)
        rc = vigil__gzip_compress(out, json.ptr, json.size);
    vigil_buf_dispose(&json);
    return rc;
}

int vigil_client_send(vigil_client *c, vigil_batch *batch)
{
    if (!c || !batch)
        return vigil__error_set(VIGIL_EINVAL, "client send: NULL argument");
    vigil_buf gz = VIGIL_BUF_INIT;
    int rc = vigil__client_encode(&gz, batch);
    if (!rc)
        rc = send_raw(c, gz.ptr, gz.size, 1, vigil_batch_id(batch), 0);
    vigil_buf_dispose(&gz);
    return rc;
}

int vigil_client_send_body(vigil_client *c, const void *body, size_t len, int gzipped)
{
    if (!c || !body)
        return vigil__error_set(VIGIL_EINVAL, "client send: NULL argument");
    if (!len)
        return vigil__error_set(VIGIL_EINVAL, "client send: empty body");
    return send_raw(c, body, len, gzipped != 0, "-", 0);
}

int vigil__client_send_gzip(vigil_client *c, const void *gz, size_t len, const char *batch_id,
                            unsigned int max_attempts, int64_t deadline)
{
    if (!c || !gz || !len)
        return vigil__error_set(VIGIL_EINVAL, "client send: empty body");
    c->deadline = deadline;
    int rc = send_raw(c, gz, len, 1, batch_id && *batch_id ? batch_id : "-", max_attempts);
    c->deadline = 0;
    return rc;
}

int vigil_client_stats_get(const vigil_client *c, vigil_client_stats *out)
{
    if (!c || !out)
        return vigil__error_set(VIGIL_EINVAL, "client stats: NULL argument");
    if (vigil__version_check("client stats", out->version, VIGIL_CLIENT_STATS_VERSION))
        return VIGIL_EVERSION;
    out->sent = __atomic_load_n(&c->n_sent, __ATOMIC_RELAXED);
    out->failed = __atomic_load_n(&c->n_failed, __ATOMIC_RELAXED);
    out->dropped = __atomic_load_n(&c->n_dropped, __ATOMIC_RELAXED);
    out->retried = __atomic_load_n(&c->n_retried, __ATOMIC_RELAXED);
    out->requests = __atomic_load_n(&c->n_requests, __ATOMIC_RELAXED);
    out->backoff_ms = __atomic_load_n(&c->n_backoff_ms, __ATOMIC_RELAXED);
    out->last_status = __atomic_load_n(&c->last_status, __ATOMIC_RELAXED);
    return VIGIL_OK;
}

/* ---- a generic request ------------------------------------------------------- */

#define REQUEST_PATH_MAX 8192
#define REQUEST_RESP_MAX (64 * 1024 * 1024)

int vigil_client_request(vigil_client *c, const char *method, const char *path, const void *body,
                         size_t body_len, int *status, vigil_buf *out)
{
    if (status)
        *status = 0;
    if (!c || !method || !path || !status || !out || (!body && body_len))
        return vigil__error_set(VIGIL_EINVAL, "client request: NULL argument");
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0 && strcmp(method, "PUT") != 0 &&
        strcmp(method, "DELETE") != 0)
        return vigil__error_set(VIGIL_EINVAL,
                                "client request: method must be GET, POST, PUT or DELETE");
    size_t plen = strlen(path);
    if (path[0] != '/' || plen > REQUEST_PATH_MAX)
        return vigil__error_set(VIGIL_EINVAL,
                                "client request: the path must start with '/' and be at most %d "
                                "bytes",
                                REQUEST_PATH_MAX);
    for (const unsigned char *p = (const unsigned char *)path; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return vigil__error_set(VIGIL_EINVAL,
                                    "client request: the path has a space or control character");
    const char *base = c->urls[c->preferred];
    size_t blen = strlen(base) - (sizeof(INGEST_PATH) - 1);
    vigil_buf url = VIGIL_BUF_INIT;
    int rc = vigil__buf_put(&url, base, blen);
    if (!rc)
        rc = vigil__buf_put(&url, path, plen);
    if (rc) {
        vigil_buf_dispose(&url);
        return rc;
    }
    const char *hdr[5];
    size_t nh = 0;
    hdr[nh++] = "Accept: application/json";
    hdr[nh++] = "Expect:";
    hdr[nh++] = "X-Vigil-Request: client"; /* not a browser: the API's cross-site defence */
    if (body)
        hdr[nh++] = c->hdr[0];
    if (c->hdr[3])
        hdr[nh++] = c->hdr[3];
    vigil__http_request req = VIGIL__HTTP_REQUEST_INIT;
    req.method = method;
    req.url = url.ptr;
    req.body = body ? body : (strcmp(method, "GET") != 0 ? "" : NULL);
    req.body_len = body_len;
    req.headers = hdr;
    req.nheaders = nh;
    req.user_agent = c->user_agent;
    req.ca_file = c->ca_file;
    req.cert_file = c->cert_file;
    req.key_file = c->key_file;
    req.insecure = c->insecure;
    req.connect_timeout_ms = c->connect_ms;
    req.timeout_ms = c->request_ms;
    req.max_response = REQUEST_RESP_MAX;
    req.cancel_fd = c->cancel_fd;
    __atomic_add_fetch(&c->n_requests, 1, __ATOMIC_RELAXED);
    rc = vigil__http_perform(c->http, &req, &c->resp);
    vigil_buf_dispose(&url);
    if (rc == VIGIL_ETIMEOUT || rc == VIGIL_ENETWORK)
        return vigil__error_set(rc, "client: %s %s failed: %s", method, path,
                                c->resp.reason ? c->resp.reason : "no answer");
    if (rc)
        return rc;
    *status = (int)c->resp.status;
    __atomic_store_n(&c->last_status, (int)c->resp.status, __ATOMIC_RELAXED);
    if (c->resp.body.size)
        rc = vigil__buf_put(out, c->resp.body.ptr, c->resp.body.size);
    else
        rc = vigil__buf_puts(out, "");
    return rc;
}
