/*
 * Private interface of lib/api: route registration for the objects that mount
 * routes on a vigil_api (the hub, later the remediator), response builders,
 * and the small Prometheus registry behind GET /metrics. Never installed.
 */
#ifndef VIGIL_API_INTERNAL_H
#define VIGIL_API_INTERNAL_H

#include "internal/common.h"
#include "vigil/api.h"
#include "vigil/config.h"

/* ---- Prometheus registry (lib/api/prom.c) -------------------------------- */

typedef struct vigil__prom vigil__prom;
typedef struct vigil__prom_family vigil__prom_family;

/* A gauge whose value is computed when the registry is rendered. */
typedef double (*vigil__prom_gauge_fn)(void *payload);

int vigil__prom_new(vigil__prom **out);
void vigil__prom_free(vigil__prom *prom);
/* Families. `labels` is NULL-terminated (NULL: no labels); names must be
 * valid Prometheus names. Buckets are upper bounds in increasing order
 * (+Inf is implicit). The family is borrowed from the registry. */
int vigil__prom_counter(vigil__prom *prom, vigil__prom_family **out, const char *name,
                        const char *help, const char *const *labels);
int vigil__prom_gauge(vigil__prom *prom, vigil__prom_family **out, const char *name,
                      const char *help, const char *const *labels);
int vigil__prom_histogram(vigil__prom *prom, vigil__prom_family **out, const char *name,
                          const char *help, const char *const *labels, const double *buckets,
                          size_t nbuckets);
int vigil__prom_gauge_func(vigil__prom *prom, const char *name, const char *help,
                           vigil__prom_gauge_fn fn, void *payload);
/* Updates; `values` holds one value per label (NULL for a family without
 * labels). A failed allocation of a new label set drops the update. */
void vigil__prom_add(vigil__prom_family *f, const char *const *values, double delta);
void vigil__prom_set(vigil__prom_family *f, const char *const *values, double value);
void vigil__prom_observe(vigil__prom_family *f, const char *const *values, double value);
/* Appends the text exposition of every family. */
int vigil__prom_render(vigil__prom *prom, vigil_buf *out);
/* The value of one child (tests and the hub's rate ticks); 0 when absent. */
double vigil__prom_value(vigil__prom_family *f, const char *const *values);

/* Default latency buckets, in seconds. */
extern const double vigil__prom_latency_buckets[];
extern const size_t vigil__prom_latency_nbuckets;

/* ---- routes (lib/api/api.c) ---------------------------------------------- */

typedef struct vigil__api_call vigil__api_call;
typedef void (*vigil__api_handler)(vigil__api_call *call, void *payload);

/* Route flags. */
#define VIGIL__API_BODY        0x1u /* accepts a JSON body (Content-Type checked, gzip inflated) */
#define VIGIL__API_QUERY_TOKEN 0x2u /* also accepts ?access_token= (EventSource) */
/* takes a body the route checks itself (size checked only; no Content-Type
 * check, no inflation): routes authenticated by a signature over the raw
 * body, which must be checked before anything is done with it */
#define VIGIL__API_RAW 0x4u

/* The header (any value) that lets a body-less state-changing request
 * through without Content-Type: application/json (cross-site defence). */
#define VIGIL__API_CSRF_HEADER "X-Vigil-Request"
/* a request carrying X-Vigil-Signature skips the token check: the handler
 * MUST verify the signature (the remediator's admin routes the hub forwards) */
#define VIGIL__API_SIGNED 0x8u

/* Adds a route: `path` (after the prefix) and `method`. A path segment "*"
 * matches any one non-empty segment (at most 4 per route; see
 * vigil__api_call_path_arg()); other segments match exactly. scope 0: no
 * authentication. Called before the api serves requests. */
int vigil__api_route(vigil_api *api, const char *method, const char *path, unsigned int scope,
                     unsigned int flags, vigil__api_handler fn, void *payload);
/* One route of a table for vigil__api_routes(). */
typedef struct vigil__api_route_def {
    const char *method;
    const char *path;
    unsigned int scope;
    unsigned int flags;
    vigil__api_handler fn;
} vigil__api_route_def;
/* vigil__api_route() for each of the `n` routes of `defs` in order, all with
 * `payload`; stops at the first error and returns it. */
int vigil__api_routes(vigil_api *api, const vigil__api_route_def *defs, size_t n, void *payload);
/* A route's own credential check (e.g. a webhook signature), tried before
 * the token check: VIGIL_OK authenticates the call (principal `name`), any
 * other code falls through to the token check. Called with the route's
 * payload, from the server's threads. */
typedef int (*vigil__api_alt_auth)(const vigil_api_request *req, void *payload);
/* Sets the alternative check of the route `method` `path` already mounted.
 * Returns VIGIL_OK or VIGIL_ENOTFOUND. */
int vigil__api_route_alt_auth(vigil_api *api, const char *method, const char *path,
                              vigil__api_alt_auth fn, const char *name);
/* A route's check of the headers alone, for a credential computed over the
 * body (a signature): called by vigil__api_precheck() only, before the body
 * is read. VIGIL_OK when the headers carry the credential in a form the body
 * may verify (the body is then read and checked as usual: by the route's
 * alt_auth, or by a scope-0 route itself); otherwise `why` (at most
 * `why_size` bytes) says what is wrong, and a scope-0 route is answered 401
 * with it at once, while a scoped route falls through to the token check.
 * Called with the route's payload, from the server's threads. */
typedef int (*vigil__api_head_check)(const vigil_api_request *req, void *payload, char *why,
                                     size_t why_size);
/* Sets the head check of the route `method` `path` already mounted.
 * Returns VIGIL_OK or VIGIL_ENOTFOUND. */
int vigil__api_route_head_check(vigil_api *api, const char *method, const char *path,
                                vigil__api_head_check fn);
/* The handler of the GET and HEAD requests whose path (after the prefix)
 * matches no route and whose first segment is not "v1" (the hub's dashboard
 * files): no authentication, route label "static"; any other method on
 * such a path is answered 405 (Allow: GET, HEAD). A route always wins over
 * it. At most one per api: VIGIL_EEXISTS. Called before the api serves
 * requests. */
int vigil__api_fallback(vigil_api *api, vigil__api_handler fn, void *payload);
/* The request's path after the api's prefix, still percent-encoded as
 * received ("/" at least). */
const char *vigil__api_call_path(const vigil__api_call *call);
/* Adds a registry rendered by GET /metrics after the api's own (borrowed: it
 * must outlive the api). */
int vigil__api_add_registry(vigil_api *api, vigil__prom *prom);

const vigil_api_request *vigil__api_call_request(const vigil__api_call *call);
/* Runs the checks of a request that need no body (path, route, method,
 * query, authentication) before a server reads the body: 0 when the body may
 * be read (the request is then submitted as usual and checked again), 1 when
 * `resp` holds the answer to send instead (counted in the api's metrics).
 * req->body is ignored. Any thread. */
int vigil__api_precheck(vigil_api *api, const vigil_api_request *req, vigil_api_response *resp);
/* The value of the request's first header named `name` (compared
 * case-insensitively), or NULL. */
const char *vigil__api_request_header(const vigil_api_request *req, const char *name);
/* The name of the token source (vigil_api_token.name) whose token
 * authenticated the call; NULL when no token did (an open route, an open
 * api, or an embedder's auth_cb). */
const char *vigil__api_call_principal(const vigil__api_call *call);
/* The agents (ids or globs) the call's token source is bound to, borrowed
 * from the api, and their count; 0 (and NULL) when the call was not
 * authenticated by a bound token: its holder speaks for every host. */
size_t vigil__api_call_agents(const vigil__api_call *call, const char *const **agents);
vigil_api_response *vigil__api_call_response(vigil__api_call *call);
/* The body after gzip inflation ("" and 0 when none). */
const char *vigil__api_call_body(const vigil__api_call *call, size_t *len);
/* Query parameters, percent-decoded, in request order. */
typedef struct vigil__api_param {
    char *key;
    char *value;
} vigil__api_param;
const vigil__api_param *vigil__api_call_params(const vigil__api_call *call, size_t *n);
/* The first value of `key`, or NULL. */
const char *vigil__api_call_param(const vigil__api_call *call, const char *key);
/* The path segment matched by the index-th "*" segment of the route's path
 * (for a route /v1/silences/{*}, written without the braces, index 0 is the
 * id), percent-decoded, never empty, never containing '/'; NULL when there is
 * no such segment. */
const char *vigil__api_call_path_arg(const vigil__api_call *call, size_t index);
/* Completes the call: the response must be set. Exactly once per call, from
 * any thread; the call is freed. */
void vigil__api_finish(vigil__api_call *call);
/* Answers and completes the call: with rc 0, `status` and the JSON in *body;
 * otherwise the error response of rc with the thread's last error message
 * (vigil__api_resp_from_code). *body is disposed of either way. */
void vigil__api_answer(vigil__api_call *call, int rc, int status, vigil_buf *body);

/* ---- responses (lib/api/response.c) -------------------------------------- */

typedef struct vigil__api_stream_ops {
    /* As vigil_api_response_read(): VIGIL_OK with *n (0: nothing now) or VIGIL_ECLOSED. */
    int (*read)(void *ctx, char *buf, size_t size, size_t *n);
    void (*set_wake)(void *ctx, vigil_api_wake_cb wake, void *payload);
    /* Ends the stream and frees ctx; after it returns, wake is never called. */
    void (*close)(void *ctx);
} vigil__api_stream_ops;

int vigil__api_resp_status(vigil_api_response *resp, int status);
/* Adds a header (copied); a header of the same name is replaced. */
int vigil__api_resp_header(vigil_api_response *resp, const char *name, const char *value);
/* Sets status, Content-Type: application/json and the body (copied). */
int vigil__api_resp_json(vigil_api_response *resp, int status, const char *body, size_t len);
/* As above, taking the buffer's memory. */
int vigil__api_resp_json_buf(vigil_api_response *resp, int status, vigil_buf *body);
int vigil__api_resp_text(vigil_api_response *resp, int status, const char *content_type,
                         vigil_buf *body);
/* {"error":{"code","message","path"}}; path NULL → "". Replaces any body
 * already set. (The api adds Retry-After to every 429 and 503 when the
 * call finishes.) */
int vigil__api_resp_error(vigil_api_response *resp, int status, const char *code,
                          const char *message, const char *path);
/* Maps a libvigil status code (and the JSON path at the start of the
 * message, "metrics[3].value: ...") to an error response. */
int vigil__api_resp_from_code(vigil_api_response *resp, int vigil_code, const char *message);
/* Makes the response a stream owned by it (close is called on free, or at
 * once when this fails). */
int vigil__api_resp_stream(vigil_api_response *resp, int status, const char *content_type,
                           const vigil__api_stream_ops *ops, void *ctx);
void vigil__api_resp_set_retry_after(vigil_api_response *resp, unsigned int seconds);
/* Marks the response as submitted; returns whether it already was. */
int vigil__api_resp_used(vigil_api_response *resp);

/* ---- configuration (lib/api/config.c) ------------------------------------ */

/* Parsed `security:` block: tokens and origins point into `owner`-allocated
 * arrays and the configuration's strings; release with
 * vigil__api_security_dispose(). */
typedef struct vigil__api_security {
    vigil_api_token *tokens;
    size_t ntokens;
    vigil_api_binding *bindings; /* one per token with an `agents:` list */
    size_t nbindings;
    const char **origins;
    size_t norigins;
    int insecure;
} vigil__api_security;

int vigil__api_security_parse(vigil__api_security *out, const vigil_config_node *security);
void vigil__api_security_dispose(vigil__api_security *sec);

#endif
