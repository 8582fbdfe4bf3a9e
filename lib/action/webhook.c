/* The `webhook` action type: POSTs the request as JSON through lib/http.
 *
 *   url: https://pager.example/hook   # http or https only; redirects are not followed
 *   token_env: PAGER_TOKEN            # optional: Authorization: Bearer <value>
 *   secret_env: PAGER_HMAC_SECRET     # optional: X-Vigil-Signature header
 *   retries: 2                        # extra attempts (0 to 10) after a network
 *                                     # error, 408, 429 or 5xx
 *   retry_backoff: 1s                 # wait before retry n is retry_backoff * 2^(n-1)
 *   ca_file: /etc/ssl/private-ca.pem  # optional CA bundle for https
 *   max_output: 64KiB                 # response body kept in the result
 *
 * Body: {"id":…,"action":…,"target":…,"params":{…},"reason":…,"policy":…,"host":…}
 * Signature: X-Vigil-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
 * "<t>.<body>")> (lib/crypto), as the hub signs /v1/execute. Token and secret
 * are read from the environment when the action is configured, never
 * logged, and wiped when it is destroyed. The whole exchange, retries
 * included, is bounded by the action's timeout. Success is a 2xx answer.
 * Result reasons: http_status (a non-2xx answer), network (no answer),
 * timeout, cancelled. The URL is never put in results or logs (webhook URLs
 * often embed credentials). */
#include "action/action_int.h"
#include "http/http.h"
#include "internal/json.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define RETRIES_MAX 10
/* One attempt's connect limit, so that a black hole leaves time to retry. */
#define CONNECT_MAX_MS 10000

typedef struct hook_state {
    char *url;
    char *origin; /* scheme://host[:port], for descriptions */
    char *token;
    char *secret;
    char *ca_file;
    int retries;
    int64_t backoff_ms;
    size_t max_output;
    char *host;
    vigil_clock_cb clock;
    void *clock_payload;
} hook_state;

static const char *const k_keys[] = {"url",           "token_env", "secret_env", "retries",
                                     "retry_backoff", "ca_file",   "max_output", NULL};

static void hook_destroy(void *p)
{
    hook_state *s = p;
    if (!s)
        return;
    vigil__free(s->url);
    vigil__free(s->origin);
    vigil__free_wiped(s->token);
    vigil__free_wiped(s->secret);
    vigil__free(s->ca_file);
    vigil__free(s->host);
    vigil__free(s);
}

static int get_env(char **out, const vigil_config_node *config, const char *key,
                   const vigil_action_context *ctx)
{
    const char *name;
    *out = NULL;
    int rc = vigil_config_get_string(&name, config, key, NULL);
    if (rc || !name)
        return rc;
    const char *v = ctx->getenv(ctx->getenv_payload, name);
    if (!v || !*v)
        return vigil__action_cfg_error(vigil_config_node_get(config, key), VIGIL_EENV,
                                       "environment variable %.64s is not set", name);
    if (strlen(v) > 4096)
        return vigil__action_cfg_error(vigil_config_node_get(config, key), VIGIL_ELIMIT,
                                       "environment variable %.64s is longer than 4096 bytes",
                                       name);
    for (const char *c = v; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return vigil__action_cfg_error(vigil_config_node_get(config, key), VIGIL_EVALUE,
                                           "environment variable %.64s holds a control character",
                                           name);
    *out = vigil__strdup(v);
    return *out ? VIGIL_OK : vigil__error_oom();
}

static int parse_url(hook_state *s, const vigil_config_node *node, const char *url)
{
    if (strlen(url) > 4096)
        return vigil__action_cfg_error(node, VIGIL_ELIMIT, "the URL is longer than 4096 bytes");
    vigil__http_url u;
    int rc = vigil__http_url_parse(&u, url, NULL, 0);
    if (rc == VIGIL_ENOMEM) {
        /* returned as is */
    } else if (rc || !u.scheme) {
        rc = vigil__action_cfg_error(node, VIGIL_EVALUE, "\"%.200s\" is not a valid URL", url);
    } else if (strcasecmp(u.scheme, "http") != 0 && strcasecmp(u.scheme, "https") != 0) {
        rc = vigil__action_cfg_error(node, VIGIL_EUNSUPPORTED,
                                     "URL scheme \"%.32s\" is not supported (use http or https)",
                                     u.scheme);
    } else if (!u.host || !*u.host) {
        rc = vigil__action_cfg_error(node, VIGIL_EVALUE, "\"%.200s\" names no host", url);
    } else {
        vigil_buf b = VIGIL_BUF_INIT;
        rc = vigil__buf_printf(&b, "%s://%s%s%s", u.scheme, u.host, u.port ? ":" : "",
                               u.port ? u.port : "");
        if (!rc && !(s->url = vigil__strdup(url)))
            rc = vigil__error_oom();
        if (rc)
            vigil_buf_dispose(&b);
        else
            s->origin = vigil__buf_detach(&b);
    }
    vigil__http_url_dispose(&u);
    return rc;
}

static int hook_create(void **state, const vigil_config_node *config,
                       const vigil_action_context *ctx)
{
    if (vigil__http_init() != VIGIL_OK)
        return vigil__error_set(VIGIL_ENETWORK, "webhook: %s", vigil_error_last()->message);
    hook_state *s = vigil__calloc(1, sizeof(*s));
    if (!s)
        return vigil__error_oom();
    const char *url;
    int64_t retries;
    int rc = vigil_config_require(config, "url");
    if (!rc)
        rc = vigil_config_get_string(&url, config, "url", NULL);
    if (!rc)
        rc = parse_url(s, vigil_config_node_get(config, "url"), url);
    if (!rc)
        rc = get_env(&s->token, config, "token_env", ctx);
    if (!rc)
        rc = get_env(&s->secret, config, "secret_env", ctx);
    if (!rc)
        rc = vigil_config_get_int(&retries, config, "retries", 2);
    if (!rc && (retries < 0 || retries > RETRIES_MAX))
        rc = vigil__action_cfg_error(vigil_config_node_get(config, "retries"), VIGIL_ERANGE,
                                     "expected 0 to %d", RETRIES_MAX);
    if (!rc)
        rc = vigil_config_get_duration(&s->backoff_ms, config, "retry_backoff", 1000);
    if (!rc)
        rc = vigil__action_get_path(&s->ca_file, config, "ca_file", ctx->base_dir);
    if (!rc)
        rc = vigil__action_get_output_max(&s->max_output, config);
    if (!rc && !(s->host = vigil__strdup(ctx->host)))
        rc = vigil__error_oom();
    if (rc) {
        hook_destroy(s);
        return rc;
    }
    s->retries = (int)retries;
    s->clock = ctx->clock;
    s->clock_payload = ctx->clock_payload;
    *state = s;
    return VIGIL_OK;
}

/* A JSON string, or null for NULL (invalid UTF-8 would become U+FFFD). */
static int json_str(vigil_buf *b, const char *s)
{
    return s ? vigil__json_put_string(b, s, strlen(s)) : vigil__buf_puts(b, "null");
}

static int build_body(vigil_buf *b, const hook_state *s, const vigil_action_request *req)
{
    int rc = vigil__buf_puts(b, "{\"id\":");
    if (!rc)
        rc = json_str(b, req->id);
    if (!rc)
        rc = vigil__buf_puts(b, ",\"action\":");
    if (!rc)
        rc = json_str(b, req->action);
    if (!rc)
        rc = vigil__buf_puts(b, ",\"target\":");
    if (!rc)
        rc = json_str(b, req->target ? req->target : "");
    if (!rc)
        rc = vigil__buf_puts(b, ",\"params\":{");
    for (size_t i = 0; i < req->nparams && !rc; i++) {
        if (i)
            rc = vigil__buf_putc(b, ',');
        if (!rc)
            rc = json_str(b, req->params[i].key);
        if (!rc)
            rc = vigil__buf_putc(b, ':');
        if (!rc)
            rc = json_str(b, req->params[i].value);
    }
    if (!rc)
        rc = vigil__buf_puts(b, "},\"reason\":");
    if (!rc)
        rc = json_str(b, req->reason);
    if (!rc)
        rc = vigil__buf_puts(b, ",\"policy\":");
    if (!rc)
        rc = json_str(b, req->policy);
    if (!rc)
        rc = vigil__buf_puts(b, ",\"host\":");
    if (!rc)
        rc = json_str(b, s->host);
    if (!rc)
        rc = vigil__buf_putc(b, '}');
    return rc;
}

static int sign(vigil_buf *hdr, const char *secret, int64_t t, const vigil_buf *body)
{
    int rc = vigil__buf_puts(hdr, VIGIL_SIGNATURE_HEADER ": ");
    if (!rc)
        rc = vigil_signature_make(hdr, secret, strlen(secret), t, body->ptr, body->size);
    return rc;
}

typedef struct xfer {
    vigil__http_response resp;
    int truncated;
    int cancelled;
    int deadline; /* the last attempt ran into the action's deadline */
} xfer;

static int exec_cancelled(void *payload)
{
    const vigil_action_exec *exec = payload;
    return exec->cancel(exec->cancel_payload);
}

/* One POST. *status receives the HTTP status (0 without an answer), errbuf
 * (VIGIL__HTTP_ERROR_MAX bytes) the reason when there is none. Returns 1 when
 * no time is left, a negative code for a local failure, else 0. */
static int post_once(hook_state *s, const vigil_buf *body, const vigil_action_exec *exec, xfer *x,
                     long *status, char *errbuf)
{
    int64_t left = exec->deadline_ms - vigil__monotonic_ms();
    if (left <= 0)
        return 1;
    *status = 0;
    errbuf[0] = '\0';
    x->truncated = 0;
    x->deadline = 0;
    vigil__http *http = NULL;
    vigil_buf auth = VIGIL_BUF_INIT, sig = VIGIL_BUF_INIT;
    const char *h[4] = {"Content-Type: application/json", "Expect:", NULL, NULL};
    size_t nh = 2;
    int rc = VIGIL_OK;
    if (s->token) {
        rc = vigil__buf_printf(&auth, "Authorization: Bearer %s", s->token);
        if (!rc)
            h[nh++] = auth.ptr;
    }
    if (!rc && s->secret) {
        rc = sign(&sig, s->secret, s->clock(s->clock_payload) / 1000, body);
        if (!rc)
            h[nh++] = sig.ptr;
    }
    if (!rc)
        rc = vigil__http_new(&http);
    if (!rc) {
        vigil__http_request req = VIGIL__HTTP_REQUEST_INIT;
        req.url = s->url;
        req.body = body->ptr ? body->ptr : "";
        req.body_len = body->size;
        req.headers = h;
        req.nheaders = nh;
        req.user_agent = "vigil/" VIGIL_VERSION;
        req.timeout_ms = left;
        req.connect_timeout_ms = left < CONNECT_MAX_MS ? left : CONNECT_MAX_MS;
        req.ca_file = s->ca_file;
        req.max_response = s->max_output ? s->max_output : 1;
        req.overflow = VIGIL__HTTP_OVERFLOW_CLIP;
        if (exec->cancel) {
            req.cancel_cb = exec_cancelled;
            req.cancel_payload = (void *)(uintptr_t)exec;
        }
        int r = vigil__http_perform(http, &req, &x->resp);
        x->truncated = x->resp.clipped;
        if (s->max_output == 0 && x->resp.body.size) { /* nothing is kept */
            x->truncated = 1;
            vigil__buf_clear(&x->resp.body);
        }
        if (r == VIGIL_OK)
            *status = x->resp.status;
        else if (r == VIGIL_ECLOSED)
            x->cancelled = 1;
        else if (r == VIGIL_ETIMEOUT || r == VIGIL_ENETWORK)
            snprintf(errbuf, VIGIL__HTTP_ERROR_MAX, "%s", x->resp.error);
        else
            rc = r;
        /* The total limit is the time left to the deadline, but libcurl
         * measures it on its own clock from its own start, and its expiry
         * can come a millisecond before vigil__monotonic_ms() reaches the
         * deadline: the clock alone cannot tell a deadline from a network
         * failure. When the connect limit is the same, the timeout is the
         * deadline's; when it is shorter, it is the limit whose time is
         * nearer to the attempt's end. */
        if (r == VIGIL_ETIMEOUT) {
            int64_t spare = exec->deadline_ms - vigil__monotonic_ms();
            x->deadline = req.connect_timeout_ms >= req.timeout_ms ||
                          spare < (req.timeout_ms - req.connect_timeout_ms) / 2;
        }
    }
    vigil__http_free(http);
    /* the buffers held the token and the signature: wipe them */
    if (auth.ptr)
        memset(auth.ptr, 0, auth.size);
    vigil_buf_dispose(&auth);
    vigil_buf_dispose(&sig);
    return rc;
}

static int finish(vigil_action_result *r, vigil_action_status st, const char *reason,
                  const vigil_buf *msg, xfer *x)
{
    r->status = st;
    int rc = vigil_action_result_set_reason(r, reason);
    vigil_buf out = VIGIL_BUF_INIT;
    if (!rc)
        rc = vigil__buf_put(&out, msg->ptr ? msg->ptr : "", msg->size);
    if (!rc && x->resp.body.size) {
        rc = vigil__buf_putc(&out, '\n');
        if (!rc)
            rc = vigil__buf_put(&out, x->resp.body.ptr, x->resp.body.size);
    }
    if (!rc)
        rc = vigil_action_result_set_output(r, out.ptr ? out.ptr : "", out.size);
    vigil_buf_dispose(&out);
    r->output_truncated = x->truncated;
    return rc;
}

static int hook_execute(void *p, const vigil_action_request *req, const vigil_action_exec *exec,
                        vigil_action_result *result)
{
    hook_state *s = p;
    vigil_buf body = VIGIL_BUF_INIT, msg = VIGIL_BUF_INIT;
    xfer x;
    memset(&x, 0, sizeof(x));
    char errbuf[VIGIL__HTTP_ERROR_MAX];
    int rc = build_body(&body, s, req);
    long status = 0;
    int attempts = 0;
    errbuf[0] = '\0';
    while (!rc) {
        int r = post_once(s, &body, exec, &x, &status, errbuf);
        if (r == 1) /* no time left for another attempt */
            break;
        if (r < 0) {
            rc = r;
            break;
        }
        attempts++;
        if (x.cancelled || x.deadline || (status >= 200 && status < 300))
            break;
        bool retryable = status == 0 || status == 408 || status == 429 || status >= 500;
        if (!retryable || attempts > s->retries)
            break;
        int shift = attempts - 1 < 20 ? attempts - 1 : 20;
        int64_t wait = s->backoff_ms << shift;
        int64_t now = vigil__monotonic_ms();
        if (now + wait >= exec->deadline_ms)
            break; /* the next attempt would start past the deadline */
        if (vigil__sleep_until(now + wait, exec->cancel, exec->cancel_payload)) {
            x.cancelled = 1;
            break;
        }
    }
    if (!rc) {
        const char *plural = attempts == 1 ? "" : "s";
        if (x.cancelled) {
            vigil__buf_puts(&msg, "cancelled");
            rc = finish(result, VIGIL_ACTION_FAILED, "cancelled", &msg, &x);
        } else if (status >= 200 && status < 300) {
            vigil__buf_printf(&msg, "HTTP %ld", status);
            rc = finish(result, VIGIL_ACTION_SUCCEEDED, NULL, &msg, &x);
        } else if (status) {
            vigil__buf_printf(&msg, "HTTP %ld after %d attempt%s", status, attempts, plural);
            rc = finish(result, VIGIL_ACTION_FAILED, "http_status", &msg, &x);
        } else if (x.deadline || vigil__monotonic_ms() >= exec->deadline_ms || attempts == 0) {
            vigil__buf_printf(&msg, "no answer within the timeout (%lld ms)%s%s",
                              (long long)exec->timeout_ms, errbuf[0] ? ": " : "", errbuf);
            rc = finish(result, VIGIL_ACTION_TIMEOUT, "timeout", &msg, &x);
        } else {
            vigil__buf_printf(&msg, "no answer after %d attempt%s: %s", attempts, plural, errbuf);
            rc = finish(result, VIGIL_ACTION_FAILED, "network", &msg, &x);
        }
    }
    vigil_buf_dispose(&body);
    vigil_buf_dispose(&msg);
    vigil__http_response_dispose(&x.resp);
    return rc;
}

static int hook_describe(void *p, const vigil_action_request *req, vigil_buf *out)
{
    (void)req;
    hook_state *s = p;
    return vigil__buf_printf(out, "would POST the request to %s%s%s", s->origin,
                             s->token ? " with a bearer token" : "", s->secret ? ", signed" : "");
}

const vigil_action_type vigil__action_webhook_type = {
    .version = VIGIL_ACTION_TYPE_VERSION,
    .name = "webhook",
    .keys = k_keys,
    .create = hook_create,
    .execute = hook_execute,
    .destroy = hook_destroy,
    .describe = hook_describe,
};
