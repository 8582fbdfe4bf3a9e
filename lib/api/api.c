/* The transport-neutral router: prefix, routes, authentication, CORS, body
 * checks and gzip inflation, request metrics, and the built-in routes
 * GET /healthz and GET /metrics. */
#include "api/auth.h"
#include "api/internal.h"
#include "gzip/gzip.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define PATH_MAX_LEN   2048
#define QUERY_MAX_LEN  8192
#define QUERY_MAX_ARGS 64
#define AUTH_MAX_LEN   4096
#define ORIGINS_MAX    64
#define PATH_ARGS_MAX  4

typedef struct api_route {
    char *method;
    char *path;
    unsigned int scope;
    unsigned int flags;
    vigil__api_handler fn;
    void *payload;
    vigil__api_alt_auth alt_auth;
    const char *alt_name; /* static */
    vigil__api_head_check head_check;
} api_route;

struct vigil_api {
    char *prefix;
    size_t prefix_len;
    char **origins;
    size_t norigins;
    vigil_api_auth_cb auth_cb;
    void *auth_payload;
    vigil__api_auth *auth;
    uint64_t max_body;
    uint64_t max_inflated;
    unsigned int retry_after_s;
    vigil_logger logger;
    api_route *routes;
    size_t nroutes, croutes;
    vigil__prom *prom;
    vigil__prom_family *m_requests;
    vigil__prom_family *m_duration;
    vigil__prom_family *m_inflight;
    vigil__prom **regs;
    size_t nregs, cregs;
    api_route fallback; /* vigil__api_fallback(): fn NULL when none */
};

struct vigil__api_call {
    vigil_api *api;
    const vigil_api_request *req;
    vigil_api_response *resp;
    vigil_api_done_cb done;
    void *done_payload;
    const char *route_label;
    const char *rel_path; /* req->path after the prefix */
    int64_t start_ns;
    int precheck; /* vigil__api_precheck(): the headers only, no body yet */
    const char *body;
    size_t body_len;
    char *inflated;
    vigil__api_param *params;
    size_t nparams, cparams;
    char *path_args[PATH_ARGS_MAX]; /* segments matched by '*' in the route's path */
    size_t npath_args;
    char principal[128]; /* name of the token source that authenticated the call, or "" */
    int alt_authed;      /* the route's alternative check (a signature) authenticated it */
};

int vigil_api_request_init(vigil_api_request *req, unsigned int version)
{
    if (!req)
        return vigil__error_set(VIGIL_EINVAL, "api request: NULL");
    if (vigil__version_check("api request", version, VIGIL_API_REQUEST_VERSION))
        return VIGIL_EVERSION;
    vigil_api_request d = VIGIL_API_REQUEST_INIT;
    *req = d;
    return VIGIL_OK;
}

int vigil_api_options_init(vigil_api_options *opts, unsigned int version)
{
    if (!opts)
        return vigil__error_set(VIGIL_EINVAL, "api options: NULL");
    if (vigil__version_check("api options", version, VIGIL_API_OPTIONS_VERSION))
        return VIGIL_EVERSION;
    vigil_api_options d = VIGIL_API_OPTIONS_INIT;
    *opts = d;
    return VIGIL_OK;
}

/* ---- built-in routes ------------------------------------------------------ */

static void route_healthz(vigil__api_call *call, void *payload)
{
    (void)payload;
    static const char body[] = "{\"status\":\"ok\"}";
    vigil__api_resp_json(call->resp, 200, body, sizeof(body) - 1);
    vigil__api_finish(call);
}

int vigil_api_metrics_text(vigil_api *api, vigil_buf *out)
{
    if (!api || !out)
        return vigil__error_set(VIGIL_EINVAL, "api metrics: NULL argument");
    vigil__buf_clear(out);
    int rc = vigil__prom_render(api->prom, out);
    for (size_t i = 0; i < api->nregs && !rc; i++)
        rc = vigil__prom_render(api->regs[i], out);
    return rc;
}

static void route_metrics(vigil__api_call *call, void *payload)
{
    (void)payload;
    vigil_buf b = VIGIL_BUF_INIT;
    int rc = vigil_api_metrics_text(call->api, &b);
    if (rc)
        vigil__api_resp_from_code(call->resp, rc, vigil_error_last()->message);
    else
        vigil__api_resp_text(call->resp, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
    vigil_buf_dispose(&b);
    vigil__api_finish(call);
}

/* ---- lifecycle -------------------------------------------------------------- */

void vigil_api_free(vigil_api *api)
{
    if (!api)
        return;
    for (size_t i = 0; i < api->nroutes; i++) {
        vigil__free(api->routes[i].method);
        vigil__free(api->routes[i].path);
    }
    vigil__free(api->routes);
    for (size_t i = 0; i < api->norigins; i++)
        vigil__free(api->origins[i]);
    vigil__free(api->origins);
    vigil__free(api->regs);
    vigil__prom_free(api->prom);
    vigil__api_auth_free(api->auth);
    vigil__free(api->prefix);
    vigil__free(api);
}

static int init_metrics(vigil_api *api)
{
    static const char *const route_code[] = {"route", "code", NULL};
    static const char *const route_only[] = {"route", NULL};
    int rc = vigil__prom_new(&api->prom);
    if (!rc)
        rc = vigil__prom_counter(api->prom, &api->m_requests, "vigil_http_requests_total",
                                 "HTTP requests answered, by route and status code.", route_code);
    if (!rc)
        rc = vigil__prom_histogram(
            api->prom, &api->m_duration, "vigil_http_request_duration_seconds",
            "Time from receiving a request to having its response, by route.", route_only,
            vigil__prom_latency_buckets, vigil__prom_latency_nbuckets);
    if (!rc)
        rc = vigil__prom_gauge(api->prom, &api->m_inflight, "vigil_http_requests_in_flight",
                               "Requests received and not yet answered.", NULL);
    return rc;
}

int vigil_api_new(vigil_api **out, const vigil_api_options *opts)
{
    vigil_api_options defaults = VIGIL_API_OPTIONS_INIT;
    if (!out)
        return vigil__error_set(VIGIL_EINVAL, "api: NULL argument");
    *out = NULL;
    if (!opts)
        opts = &defaults;
    if (vigil__version_check("api options", opts->version, VIGIL_API_OPTIONS_VERSION))
        return VIGIL_EVERSION;
    const char *prefix = opts->prefix ? opts->prefix : "";
    size_t plen = strlen(prefix);
    while (plen && prefix[plen - 1] == '/')
        plen--;
    if (plen && prefix[0] != '/')
        return vigil__error_set(VIGIL_EINVAL, "api: prefix \"%.64s\" must start with '/'", prefix);
    if (opts->ntokens && !opts->tokens)
        return vigil__error_set(VIGIL_EINVAL, "api: ntokens without tokens");
    if (opts->nallowed_origins > ORIGINS_MAX || (opts->nallowed_origins && !opts->allowed_origins))
        return vigil__error_set(VIGIL_EINVAL, "api: at most %d allowed origins", ORIGINS_MAX);
    for (size_t i = 0; i < opts->nallowed_origins; i++)
        if (!opts->allowed_origins[i] || !*opts->allowed_origins[i])
            return vigil__error_set(VIGIL_EINVAL, "api: allowed origin %zu is empty", i);

    vigil_api *api = vigil__calloc(1, sizeof(*api));
    if (!api)
        return vigil__error_oom();
    api->logger = opts->logger;
    api->auth_cb = opts->auth_cb;
    api->auth_payload = opts->auth_payload;
    api->max_body = opts->max_body ? opts->max_body : 8u * 1024 * 1024;
    api->max_inflated = opts->max_inflated ? opts->max_inflated : 64u * 1024 * 1024;
    api->retry_after_s = opts->retry_after_s ? opts->retry_after_s : 1;
    int rc = VIGIL_OK;
    api->prefix = vigil__strndup(prefix, plen);
    api->prefix_len = plen;
    if (!api->prefix)
        rc = vigil__error_oom();
    if (!rc && opts->nallowed_origins) {
        api->origins = vigil__calloc(opts->nallowed_origins, sizeof(char *));
        if (!api->origins)
            rc = vigil__error_oom();
        for (size_t i = 0; !rc && i < opts->nallowed_origins; i++) {
            if (!(api->origins[i] = vigil__strdup(opts->allowed_origins[i])))
                rc = vigil__error_oom();
            else
                api->norigins++;
        }
    }
    if (!rc)
        rc = init_metrics(api);
    if (!rc)
        rc = vigil__api_auth_new(&api->auth, opts->tokens, opts->ntokens,
                                 opts->version >= 2 ? opts->bindings : NULL,
                                 opts->version >= 2 ? opts->nbindings : 0, &api->logger);
    if (!rc)
        rc = vigil__api_route(api, "GET", "/healthz", 0, 0, route_healthz, NULL);
    if (!rc)
        rc = vigil__api_route(api, "GET", "/metrics", VIGIL_API_SCOPE_READ, 0, route_metrics, NULL);
    if (rc) {
        vigil_api_free(api);
        return rc;
    }
    *out = api;
    return VIGIL_OK;
}

int vigil_api_reload(vigil_api *api)
{
    if (!api)
        return vigil__error_set(VIGIL_EINVAL, "api: NULL argument");
    int rc = vigil__api_auth_reload(api->auth);
    if (rc)
        vigil__log(&api->logger, VIGIL_LOG_ERROR, "api",
                   "token reload failed; previous tokens kept", "error=%d", rc);
    else
        vigil__log(&api->logger, VIGIL_LOG_INFO, "api", "tokens reloaded", "sources=%zu",
                   vigil__api_auth_sources(api->auth));
    return rc;
}

int vigil_api_has_auth(const vigil_api *api)
{
    return api && (api->auth_cb || vigil__api_auth_sources(api->auth) > 0);
}

int vigil__api_route(vigil_api *api, const char *method, const char *path, unsigned int scope,
                     unsigned int flags, vigil__api_handler fn, void *payload)
{
    for (size_t i = 0; i < api->nroutes; i++)
        if (strcmp(api->routes[i].method, method) == 0 && strcmp(api->routes[i].path, path) == 0)
            return vigil__error_set(VIGIL_EEXISTS, "api: route %s %s already mounted", method,
                                    path);
    if (vigil__array_grow((void **)&api->routes, &api->croutes, api->nroutes + 1,
                          sizeof(api_route)))
        return VIGIL_ENOMEM;
    api_route *r = &api->routes[api->nroutes];
    r->method = vigil__strdup(method);
    r->path = vigil__strdup(path);
    if (!r->method || !r->path) {
        vigil__free(r->method);
        vigil__free(r->path);
        return vigil__error_oom();
    }
    r->scope = scope;
    r->flags = flags;
    r->fn = fn;
    r->payload = payload;
    r->alt_auth = NULL;
    r->alt_name = NULL;
    r->head_check = NULL;
    api->nroutes++;
    return VIGIL_OK;
}

int vigil__api_route_alt_auth(vigil_api *api, const char *method, const char *path,
                              vigil__api_alt_auth fn, const char *name)
{
    for (size_t i = 0; i < api->nroutes; i++)
        if (strcmp(api->routes[i].method, method) == 0 && strcmp(api->routes[i].path, path) == 0) {
            api->routes[i].alt_auth = fn;
            api->routes[i].alt_name = name;
            return VIGIL_OK;
        }
    return vigil__error_set(VIGIL_ENOTFOUND, "api: route %s %s is not mounted", method, path);
}

int vigil__api_route_head_check(vigil_api *api, const char *method, const char *path,
                                vigil__api_head_check fn)
{
    for (size_t i = 0; i < api->nroutes; i++)
        if (strcmp(api->routes[i].method, method) == 0 && strcmp(api->routes[i].path, path) == 0) {
            api->routes[i].head_check = fn;
            return VIGIL_OK;
        }
    return vigil__error_set(VIGIL_ENOTFOUND, "api: route %s %s is not mounted", method, path);
}

int vigil__api_routes(vigil_api *api, const vigil__api_route_def *defs, size_t n, void *payload)
{
    int rc = VIGIL_OK;
    for (size_t i = 0; i < n && !rc; i++)
        rc = vigil__api_route(api, defs[i].method, defs[i].path, defs[i].scope, defs[i].flags,
                              defs[i].fn, payload);
    return rc;
}

int vigil__api_fallback(vigil_api *api, vigil__api_handler fn, void *payload)
{
    if (api->fallback.fn)
        return vigil__error_set(VIGIL_EEXISTS, "api: a static file handler is already mounted");
    memset(&api->fallback, 0, sizeof(api->fallback));
    api->fallback.method = (char *)"GET";
    api->fallback.path = (char *)"static";
    api->fallback.fn = fn;
    api->fallback.payload = payload;
    return VIGIL_OK;
}

int vigil__api_add_registry(vigil_api *api, vigil__prom *prom)
{
    if (vigil__array_grow((void **)&api->regs, &api->cregs, api->nregs + 1, sizeof(vigil__prom *)))
        return VIGIL_ENOMEM;
    api->regs[api->nregs++] = prom;
    return VIGIL_OK;
}

/* ---- call accessors ------------------------------------------------------ */

const char *vigil__api_call_principal(const vigil__api_call *call)
{
    return call->principal[0] ? call->principal : NULL;
}

size_t vigil__api_call_agents(const vigil__api_call *call, const char *const **agents)
{
    return vigil__api_auth_agents(call->api->auth, vigil__api_call_principal(call), agents);
}

const char *vigil__api_call_path(const vigil__api_call *call)
{
    return call->rel_path ? call->rel_path : "/";
}

const vigil_api_request *vigil__api_call_request(const vigil__api_call *call)
{
    return call->req;
}

vigil_api_response *vigil__api_call_response(vigil__api_call *call)
{
    return call->resp;
}

const char *vigil__api_call_body(const vigil__api_call *call, size_t *len)
{
    if (len)
        *len = call->body_len;
    return call->body ? call->body : "";
}

const vigil__api_param *vigil__api_call_params(const vigil__api_call *call, size_t *n)
{
    *n = call->nparams;
    return call->params;
}

const char *vigil__api_call_param(const vigil__api_call *call, const char *key)
{
    for (size_t i = 0; i < call->nparams; i++)
        if (strcmp(call->params[i].key, key) == 0)
            return call->params[i].value;
    return NULL;
}

const char *vigil__api_call_path_arg(const vigil__api_call *call, size_t index)
{
    return index < call->npath_args ? call->path_args[index] : NULL;
}

static void call_free(vigil__api_call *call)
{
    for (size_t i = 0; i < call->npath_args; i++)
        vigil__free(call->path_args[i]);
    for (size_t i = 0; i < call->nparams; i++) {
        vigil__free(call->params[i].key);
        vigil__free(call->params[i].value);
    }
    vigil__free(call->params);
    vigil__free(call->inflated);
    vigil__free(call);
}

void vigil__api_finish(vigil__api_call *call)
{
    vigil_api *api = call->api;
    vigil_api_response *resp = call->resp;
    int status = vigil_api_response_status(resp);
    if (status == 0 && !vigil_api_response_is_stream(resp)) {
        vigil__api_resp_error(resp, 500, "internal", "the route produced no response", NULL);
        status = 500;
    }
    if ((status == 429 || status == 503) && !vigil_api_response_header(resp, "Retry-After"))
        vigil__api_resp_set_retry_after(resp, api->retry_after_s);
    vigil__api_resp_header(resp, "X-Content-Type-Options", "nosniff");
    if (status >= 500)
        vigil__log(&api->logger, VIGIL_LOG_WARN, "api", "request failed", "route=%s status=%d",
                   call->route_label, status);
    char code[16];
    snprintf(code, sizeof(code), "%d", status);
    const char *rc_labels[] = {call->route_label, code};
    vigil__prom_add(api->m_requests, rc_labels, 1);
    const char *r_labels[] = {call->route_label};
    vigil__prom_observe(api->m_duration, r_labels,
                        (double)(vigil__monotonic_ns() - call->start_ns) / 1e9);
    vigil__prom_add(api->m_inflight, NULL, -1);
    vigil_api_done_cb done = call->done;
    void *payload = call->done_payload;
    call_free(call);
    done(resp, payload);
}

void vigil__api_answer(vigil__api_call *call, int rc, int status, vigil_buf *body)
{
    vigil_api_response *resp = vigil__api_call_response(call);
    if (rc)
        vigil__api_resp_from_code(resp, rc, vigil_error_last()->message);
    else
        vigil__api_resp_json_buf(resp, status, body);
    vigil_buf_dispose(body);
    vigil__api_finish(call);
}

/* ---- request parsing ------------------------------------------------------- */

const char *vigil__api_request_header(const vigil_api_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (req->headers[i].name && req->headers[i].value &&
            strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

/* Percent-decodes s[0..len) into a new string; `plus` turns '+' into ' '.
 * Refuses bad escapes, NUL and invalid UTF-8. */
static int pct_decode(char **out, const char *s, size_t len, int plus)
{
    char *d = vigil__malloc(len + 1);
    if (!d)
        return vigil__error_oom();
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%') {
            int a = i + 1 < len ? vigil__hex_value((unsigned char)s[i + 1]) : -1;
            int b = i + 2 < len ? vigil__hex_value((unsigned char)s[i + 2]) : -1;
            if (a < 0 || b < 0) {
                vigil__free(d);
                return vigil__error_set(VIGIL_EINVAL, "bad percent-escape");
            }
            int h = a * 16 + b;
            c = (char)h;
            i += 2;
        } else if (plus && c == '+') {
            c = ' ';
        }
        d[n++] = c;
    }
    d[n] = '\0';
    if (!vigil__utf8_valid(d, n)) {
        vigil__free(d);
        return vigil__error_set(VIGIL_EENCODING, "NUL or invalid UTF-8");
    }
    *out = d;
    return VIGIL_OK;
}

static int parse_query(vigil__api_call *call, const char *q)
{
    size_t len = strlen(q);
    if (len > QUERY_MAX_LEN)
        return vigil__error_set(VIGIL_ELIMIT, "query: longer than %d bytes", QUERY_MAX_LEN);
    size_t i = 0;
    while (i < len) {
        size_t start = i;
        while (i < len && q[i] != '&')
            i++;
        size_t end = i++;
        if (end == start)
            continue;
        if (call->nparams >= QUERY_MAX_ARGS)
            return vigil__error_set(VIGIL_ELIMIT, "query: more than %d parameters", QUERY_MAX_ARGS);
        const char *eq = memchr(q + start, '=', end - start);
        size_t klen = eq ? (size_t)(eq - (q + start)) : end - start;
        char *k = NULL, *v = NULL;
        int rc = pct_decode(&k, q + start, klen, 1);
        if (!rc)
            rc = eq ? pct_decode(&v, eq + 1, (size_t)(q + end - eq - 1), 1)
                    : ((v = vigil__strdup("")) ? VIGIL_OK : vigil__error_oom());
        if (!rc && vigil__array_grow((void **)&call->params, &call->cparams, call->nparams + 1,
                                     sizeof(vigil__api_param)))
            rc = VIGIL_ENOMEM;
        if (rc) {
            vigil__free(k);
            vigil__free(v);
            if (rc != VIGIL_ENOMEM) {
                char why[128];
                snprintf(why, sizeof(why), "%s", vigil_error_last()->message);
                return vigil__error_set(VIGIL_EINVAL, "query: %s", why);
            }
            return rc;
        }
        call->params[call->nparams].key = k;
        call->params[call->nparams].value = v;
        call->nparams++;
    }
    return VIGIL_OK;
}

/* ---- gzip ----------------------------------------------------------------- */

/* Inflates a gzip body (concatenated members allowed) into at most `cap`
 * bytes: VIGIL_ELIMIT above the cap, VIGIL_EVALUE for corrupt data. */
static int gunzip(char **out, size_t *out_len, const char *in, size_t in_len, uint64_t cap)
{
    vigil_buf b = VIGIL_BUF_INIT;
    int rc = vigil__gzip_inflate(&b, in, in_len, cap > SIZE_MAX - 2 ? SIZE_MAX - 2 : (size_t)cap);
    if (rc) {
        vigil_buf_dispose(&b);
        if (rc == VIGIL_ELIMIT)
            return vigil__error_set(VIGIL_ELIMIT, "inflated body exceeds the limit of %llu bytes",
                                    (unsigned long long)cap);
        if (rc == VIGIL_ECORRUPT)
            return vigil__error_set(VIGIL_EVALUE, "body: malformed or truncated gzip data");
        return rc;
    }
    *out_len = b.size;
    *out = vigil__buf_detach(&b);
    return *out ? VIGIL_OK : vigil__error_oom();
}

/* ---- submit ------------------------------------------------------------- */

static const char *scope_name(unsigned int scope)
{
    switch (scope) {
    case VIGIL_API_SCOPE_INGEST: return "ingest";
    case VIGIL_API_SCOPE_READ: return "read";
    case VIGIL_API_SCOPE_WRITE: return "write";
    default: return "admin";
    }
}

static int origin_allowed(const vigil_api *api, const char *origin)
{
    if (!origin)
        return 0;
    for (size_t i = 0; i < api->norigins; i++)
        if (strcmp(api->origins[i], origin) == 0)
            return 1;
    return 0;
}

static void unauthorized(vigil__api_call *call, const char *message)
{
    vigil__api_resp_error(call->resp, 401, "unauthorized", message, NULL);
    vigil__api_resp_header(call->resp, "WWW-Authenticate", "Bearer realm=\"vigil\"");
}

/* 0 when allowed; otherwise the error response is set. */
static int authenticate(vigil__api_call *call, const api_route *route)
{
    vigil_api *api = call->api;
    if (call->precheck && route->head_check) {
        /* Headers only: a credential over the body (a signature) cannot be
         * verified yet; its header decides whether the body is read. */
        char why[256] = "";
        if (route->head_check(call->req, route->payload, why, sizeof(why)) == VIGIL_OK) {
            /* verified with the body: alt_auth or the route itself. A well-formed
             * signature header passes the cross-site check here as a verified one does
             * in the dispatch, which checks both again with the body */
            if (route->alt_auth)
                call->alt_authed = 1;
            return 0;
        }
        if (!route->scope) {
            vigil__api_resp_error(call->resp, 401, "unauthorized", why[0] ? why : "unauthorized",
                                  NULL);
            return 1;
        }
    }
    if (!route->scope)
        return 0;
    if (route->alt_auth && route->alt_auth(call->req, route->payload) == VIGIL_OK) {
        snprintf(call->principal, sizeof(call->principal), "%s",
                 route->alt_name ? route->alt_name : "");
        call->alt_authed = 1;
        return 0;
    }
    if ((route->flags & VIGIL__API_SIGNED) &&
        vigil__api_request_header(call->req, "X-Vigil-Signature"))
        return 0;
    if (api->auth_cb) {
        int rc = api->auth_cb(call->req, route->scope, api->auth_payload);
        if (rc == VIGIL_OK)
            return 0;
        if (rc == VIGIL_EPERM) {
            char msg[96];
            snprintf(msg, sizeof(msg), "the credential lacks the %s scope",
                     scope_name(route->scope));
            vigil__api_resp_error(call->resp, 403, "forbidden", msg, NULL);
        } else {
            unauthorized(call, "authentication failed");
        }
        return 1;
    }
    if (vigil__api_auth_sources(api->auth) == 0)
        return 0;
    const char *h = vigil__api_request_header(call->req, "Authorization");
    const char *tok = NULL;
    size_t len = 0;
    if (h) {
        if (strlen(h) > AUTH_MAX_LEN || strncasecmp(h, "Bearer ", 7) != 0) {
            unauthorized(call, "the Authorization header must be \"Bearer <token>\"");
            return 1;
        }
        tok = h + 7;
        while (*tok == ' ')
            tok++;
        len = strlen(tok);
        while (len && tok[len - 1] == ' ')
            len--;
    } else if (route->flags & VIGIL__API_QUERY_TOKEN) {
        tok = vigil__api_call_param(call, "access_token");
        len = tok ? strlen(tok) : 0;
        if (len > AUTH_MAX_LEN)
            tok = NULL;
    }
    if (!tok || !len) {
        unauthorized(call, "missing bearer token");
        return 1;
    }
    char name[sizeof(call->principal)];
    int rc = vigil__api_auth_check(api->auth, tok, len, route->scope, name, sizeof(name));
    if (rc == VIGIL_OK) {
        memcpy(call->principal, name, sizeof(name));
        return 0;
    }
    if (rc == VIGIL_EPERM) {
        char msg[256];
        snprintf(msg, sizeof(msg), "token \"%s\" lacks the %s scope", name,
                 scope_name(route->scope));
        vigil__api_resp_error(call->resp, 403, "forbidden", msg, NULL);
        return 1;
    }
    unauthorized(call, "invalid token");
    return 1;
}

/* 0 when the raw body is within max_body; otherwise the error response is
 * set. The raw body is what the route sees (call->body). */
static int check_size(vigil__api_call *call)
{
    vigil_api *api = call->api;
    const vigil_api_request *req = call->req;
    if ((uint64_t)req->body_len > api->max_body) {
        char msg[128];
        snprintf(msg, sizeof(msg), "request body exceeds the limit of %llu bytes",
                 (unsigned long long)api->max_body);
        vigil__api_resp_error(call->resp, 413, "too_large", msg, NULL);
        return 1;
    }
    call->body = req->body;
    call->body_len = req->body ? req->body_len : 0;
    return 0;
}

/* 0 when the body is usable; otherwise the error response is set. */
static int check_body(vigil__api_call *call)
{
    vigil_api *api = call->api;
    const vigil_api_request *req = call->req;
    if (check_size(call))
        return 1;
    const char *ct = vigil__api_request_header(req, "Content-Type");
    if (!ct || strncasecmp(ct, "application/json", 16) != 0 ||
        (ct[16] != '\0' && ct[16] != ';' && ct[16] != ' ')) {
        vigil__api_resp_error(call->resp, 415, "unsupported_media_type",
                              "Content-Type must be application/json", NULL);
        return 1;
    }
    const char *ce = vigil__api_request_header(req, "Content-Encoding");
    call->body = req->body;
    call->body_len = req->body ? req->body_len : 0;
    if (!ce || strcasecmp(ce, "identity") == 0)
        return 0;
    if (strcasecmp(ce, "gzip") != 0 && strcasecmp(ce, "x-gzip") != 0) {
        vigil__api_resp_error(call->resp, 415, "unsupported_media_type",
                              "Content-Encoding must be gzip or identity", NULL);
        return 1;
    }
    int rc = gunzip(&call->inflated, &call->body_len, call->body ? call->body : "", call->body_len,
                    api->max_inflated);
    if (rc == VIGIL_ELIMIT) {
        vigil__api_resp_error(call->resp, 413, "too_large", vigil_error_last()->message, NULL);
        return 1;
    }
    if (rc == VIGIL_EVALUE) {
        vigil__api_resp_error(call->resp, 400, "invalid_request", vigil_error_last()->message,
                              NULL);
        return 1;
    }
    if (rc) {
        vigil__api_resp_from_code(call->resp, rc, vigil_error_last()->message);
        return 1;
    }
    call->body = call->inflated;
    return 0;
}

static int add_allow(vigil_api_response *resp, const vigil_api *api, const char *path)
{
    char allow[128] = "";
    size_t n = 0;
    for (size_t i = 0; i < api->nroutes; i++) {
        if (strcmp(api->routes[i].path, path) != 0)
            continue;
        int w =
            snprintf(allow + n, sizeof(allow) - n, "%s%s", n ? ", " : "", api->routes[i].method);
        if (w < 0 || (size_t)w >= sizeof(allow) - n)
            break;
        n += (size_t)w;
    }
    return vigil__api_resp_header(resp, "Allow", allow);
}

/* True when the raw (still percent-encoded) path segment s[0..n) decodes to
 * the literal segment lit[0..litn). */
static int segment_equal(const char *lit, size_t litn, const char *s, size_t n)
{
    size_t j = 0;
    for (size_t i = 0; i < n; i++, j++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            int a = i + 1 < n ? vigil__hex_value((unsigned char)s[i + 1]) : -1;
            int b = i + 2 < n ? vigil__hex_value((unsigned char)s[i + 2]) : -1;
            if (a < 0 || b < 0)
                return 0;
            c = a * 16 + b;
            i += 2;
        }
        if (j >= litn || (unsigned char)lit[j] != c)
            return 0;
    }
    return j == litn;
}

/* True when the raw path `raw` matches the route path `pattern`, segment by
 * segment, each segment percent-decoded on its own: a segment "*" matches one
 * non-empty segment, whose decoded value may hold '/' ("%2F": a target
 * "h1/File/motd"). With `call`, the matched segments are decoded into
 * call->path_args (VIGIL_ENOMEM is returned as -1). */
static int path_match(const char *pattern, const char *raw, vigil__api_call *call)
{
    const char *p = pattern, *s = raw;
    size_t nargs = 0;
    for (;;) {
        size_t pn = strcspn(p, "/"), sn = strcspn(s, "/");
        if (pn == 1 && p[0] == '*' && p > pattern) {
            if (sn == 0 || nargs >= PATH_ARGS_MAX)
                return 0;
            if (call) {
                char *arg = NULL;
                int rc = pct_decode(&arg, s, sn, 0);
                if (rc == VIGIL_ENOMEM)
                    return -1;
                if (rc)
                    return 0;
                call->path_args[call->npath_args++] = arg;
            }
            nargs++;
        } else if (!segment_equal(p, pn, s, sn)) {
            return 0;
        }
        p += pn;
        s += sn;
        if (!*p || !*s)
            return !*p && !*s;
        p++; /* both at '/' */
        s++;
    }
}

static int state_changing(const char *method)
{
    return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
           strcmp(method, "OPTIONS") != 0;
}

static int is_json_type(const char *ct)
{
    return ct && strncasecmp(ct, "application/json", 16) == 0 &&
           (ct[16] == '\0' || ct[16] == ';' || ct[16] == ' ');
}

/* a[0..n) is "localhost" or a loopback IPv4 or IPv6 address literal. */
static int loopback_addr(const char *a, size_t n)
{
    char buf[INET6_ADDRSTRLEN + 1];
    if (n == 0 || n >= sizeof(buf))
        return 0;
    memcpy(buf, a, n);
    buf[n] = '\0';
    if (strcasecmp(buf, "localhost") == 0)
        return 1;
    struct in_addr v4;
    struct in6_addr v6;
    if (inet_pton(AF_INET, buf, &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, buf, &v6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&v6) || (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
    return 0;
}

/* The host of a Host header value ("127.0.0.1:7600", "[::1]:7600",
 * "localhost") is a loopback name or address. */
static int loopback_host(const char *h)
{
    while (*h == ' ')
        h++;
    if (*h == '[') {
        const char *e = strchr(h, ']');
        return e && loopback_addr(h + 1, (size_t)(e - h - 1)) && (!e[1] || e[1] == ':');
    }
    size_t n = strcspn(h, ": ");
    return loopback_addr(h, n);
}

/* Cross-site and DNS-rebinding defences of the routes that change state
 * (0, or 1 with the response set): a browser cannot send a custom header or
 * a JSON Content-Type to another origin without a CORS preflight, so a
 * state-changing request must carry one (routes with a body already require
 * application/json; signed routes carry X-Vigil-Signature, and a request the
 * route's alternative check authenticated carries a signature a page cannot
 * make, whatever its Content-Type: a git host's webhook sent as
 * application/x-www-form-urlencoded, GitHub's default); and in open mode
 * (no tokens) a request from this machine must name a loopback Host, so a
 * page of another site whose name now resolves to 127.0.0.1 is refused. */
static int cross_site(vigil__api_call *call, const api_route *route)
{
    const vigil_api_request *req = call->req;
    if (!state_changing(req->method))
        return 0;
    if (!(route->flags & (VIGIL__API_BODY | VIGIL__API_RAW)) && !call->alt_authed &&
        !is_json_type(vigil__api_request_header(req, "Content-Type")) &&
        !vigil__api_request_header(req, VIGIL__API_CSRF_HEADER)) {
        vigil__api_resp_error(call->resp, 415, "unsupported_media_type",
                              "a state-changing request needs Content-Type: application/json "
                              "or an " VIGIL__API_CSRF_HEADER " header",
                              NULL);
        return 1;
    }
    vigil_api *api = call->api;
    const char *remote = req->remote_addr;
    if (api->auth_cb || vigil__api_auth_sources(api->auth) > 0 || !remote ||
        !loopback_addr(remote, strlen(remote)))
        return 0;
    const char *host = vigil__api_request_header(req, "Host");
    if (!host || !loopback_host(host)) {
        vigil__api_resp_error(call->resp, 403, "forbidden",
                              "open mode (no tokens): a state-changing request must name a "
                              "loopback Host (127.0.0.1, localhost or [::1])",
                              NULL);
        return 1;
    }
    return 0;
}

/* The raw path's first segment, percent-decoded, is "v1": the API's own
 * space, never given to the static file handler. */
static int api_space(const char *raw)
{
    if (*raw == '/')
        raw++;
    return segment_equal("v1", 2, raw, strcspn(raw, "/"));
}

/* Matches the route and runs every check that needs no body (path, route,
 * method, query, authentication): the route, or NULL with the response set. */
static const api_route *prepare(vigil__api_call *call)
{
    vigil_api *api = call->api;
    const vigil_api_request *req = call->req;
    const char *raw = req->path ? req->path : "";
    size_t rlen = strlen(raw);

    if (rlen > PATH_MAX_LEN) {
        vigil__api_resp_error(call->resp, 404, "not_found", "no such route", NULL);
        goto done;
    }
    if (api->prefix_len) {
        if (rlen < api->prefix_len || memcmp(raw, api->prefix, api->prefix_len) != 0 ||
            (raw[api->prefix_len] != '/')) {
            vigil__api_resp_error(call->resp, 404, "not_found", "no such route", NULL);
            goto done;
        }
        raw += api->prefix_len;
        rlen -= api->prefix_len;
    }
    call->rel_path = raw;
    char *path = NULL;
    int prc = pct_decode(&path, raw, rlen, 0);
    if (prc == VIGIL_ENOMEM) {
        vigil__api_resp_from_code(call->resp, prc, vigil_error_last()->message);
        goto done;
    }
    if (prc) {
        vigil__api_resp_error(call->resp, 400, "invalid_request",
                              "path: bad percent-escape, NUL or invalid UTF-8", NULL);
        goto done;
    }
    const api_route *route = NULL;
    int path_known = 0;
    for (size_t i = 0; i < api->nroutes; i++) {
        if (!path_match(api->routes[i].path, raw, NULL))
            continue;
        path_known = 1;
        call->route_label = api->routes[i].path;
        if (strcmp(api->routes[i].method, req->method) == 0) {
            route = &api->routes[i];
            break;
        }
    }
    if (route && path_match(route->path, raw, call) < 0) {
        vigil__free(path);
        vigil__api_resp_from_code(call->resp, VIGIL_ENOMEM, "api: out of memory");
        goto done;
    }
    vigil__free(path);

    const char *origin = vigil__api_request_header(req, "Origin");
    int cors = origin_allowed(api, origin);
    if (cors) {
        vigil__api_resp_header(call->resp, "Access-Control-Allow-Origin", origin);
        vigil__api_resp_header(call->resp, "Vary", "Origin");
    }
    if (!path_known && api->fallback.fn && !api_space(raw)) {
        /* the static files: GET and HEAD only, no token (they hold no data) */
        call->route_label = api->fallback.path;
        if (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0)
            return &api->fallback;
        char msg[96];
        snprintf(msg, sizeof(msg), "method %.16s is not allowed on this route", req->method);
        vigil__api_resp_error(call->resp, 405, "method_not_allowed", msg, NULL);
        vigil__api_resp_header(call->resp, "Allow", "GET, HEAD");
        goto done;
    }
    if (!path_known) {
        vigil__api_resp_error(call->resp, 404, "not_found", "no such route", NULL);
        goto done;
    }
    if (!route) {
        if (cors && strcmp(req->method, "OPTIONS") == 0) {
            vigil__api_resp_status(call->resp, 204);
            const char *allow_headers =
                "Authorization, Content-Type, Content-Encoding, Last-Event-ID, "
                "X-Vigil-Request";
            vigil__api_resp_header(call->resp, "Access-Control-Allow-Headers", allow_headers);
            vigil__api_resp_header(call->resp, "Access-Control-Max-Age", "600");
            add_allow(call->resp, api, call->route_label);
            const char *allow = vigil_api_response_header(call->resp, "Allow");
            vigil__api_resp_header(call->resp, "Access-Control-Allow-Methods", allow ? allow : "");
            goto done;
        }
        char msg[96];
        snprintf(msg, sizeof(msg), "method %.16s is not allowed on this route", req->method);
        vigil__api_resp_error(call->resp, 405, "method_not_allowed", msg, NULL);
        add_allow(call->resp, api, call->route_label);
        goto done;
    }
    if (req->query && *req->query) {
        int rc = parse_query(call, req->query);
        if (rc) {
            vigil__api_resp_error(call->resp, rc == VIGIL_ENOMEM ? 500 : 400,
                                  rc == VIGIL_ENOMEM ? "internal" : "invalid_request",
                                  vigil_error_last()->message, NULL);
            goto done;
        }
    }
    if (authenticate(call, route) || cross_site(call, route))
        goto done;
    return route;
done:
    return NULL;
}

static void dispatch(vigil__api_call *call)
{
    const api_route *route = prepare(call);
    if (!route)
        goto done;
    if ((route->flags & VIGIL__API_RAW) && check_size(call))
        goto done;
    if ((route->flags & VIGIL__API_BODY) && check_body(call))
        goto done;
    route->fn(call, route->payload);
    return;
done:
    vigil__api_finish(call);
}

static void precheck_done(vigil_api_response *resp, void *payload)
{
    (void)resp;
    (void)payload;
}

int vigil__api_precheck(vigil_api *api, const vigil_api_request *req, vigil_api_response *resp)
{
    vigil__api_call *call = vigil__calloc(1, sizeof(*call));
    if (!call) {
        vigil__api_resp_error(resp, 500, "internal", "out of memory", NULL);
        return 1;
    }
    call->api = api;
    call->req = req;
    call->resp = resp;
    call->done = precheck_done;
    call->precheck = 1;
    call->route_label = "unmatched";
    call->start_ns = vigil__monotonic_ns();
    vigil__prom_add(api->m_inflight, NULL, 1);
    if (!prepare(call)) {
        vigil__api_finish(call); /* counted like any answer */
        return 1;
    }
    vigil__prom_add(api->m_inflight, NULL, -1);
    call_free(call);
    return 0;
}

int vigil_api_submit(vigil_api *api, const vigil_api_request *req, vigil_api_response *resp,
                     vigil_api_done_cb done, void *payload)
{
    if (!api || !req || !resp || !done)
        return vigil__error_set(VIGIL_EINVAL, "api submit: NULL argument");
    if (vigil__version_check("api submit request", req->version, VIGIL_API_REQUEST_VERSION))
        return VIGIL_EVERSION;
    if (!req->method || (req->nheaders && !req->headers) || (req->body_len && !req->body))
        return vigil__error_set(VIGIL_EINVAL,
                                "api submit: request without a method, headers or body");
    if (vigil__api_resp_used(resp))
        return vigil__error_set(VIGIL_EINVAL, "api submit: the response was already used");
    vigil__api_call *call = vigil__calloc(1, sizeof(*call));
    if (!call) {
        vigil__api_resp_error(resp, 500, "internal", "out of memory", NULL);
        vigil__prom_add(api->m_requests, (const char *const[]){"unmatched", "500"}, 1);
        done(resp, payload);
        return VIGIL_OK;
    }
    call->api = api;
    call->req = req;
    call->resp = resp;
    call->done = done;
    call->done_payload = payload;
    call->route_label = "unmatched";
    call->start_ns = vigil__monotonic_ns();
    vigil__prom_add(api->m_inflight, NULL, 1);
    dispatch(call);
    return VIGIL_OK;
}

typedef struct sync_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
} sync_wait;

static void sync_done(vigil_api_response *resp, void *payload)
{
    (void)resp;
    sync_wait *w = payload;
    pthread_mutex_lock(&w->mu);
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int vigil_api_handle(vigil_api *api, const vigil_api_request *req, vigil_api_response *resp)
{
    sync_wait w;
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    w.done = 0;
    int rc = vigil_api_submit(api, req, resp, sync_done, &w);
    if (rc == VIGIL_OK) {
        pthread_mutex_lock(&w.mu);
        while (!w.done)
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
    }
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    return rc;
}
