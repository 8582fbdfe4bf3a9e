/*
 * vigil/api.h - the transport-neutral HTTP layer: a router that turns a
 * request (method, path, query, headers, body) into a response (status,
 * headers, body, or a stream for long-lived responses such as server-sent
 * events). Any HTTP server can host it: the built-in one (vigil/httpd.h) or
 * an embedder's own. Routes come from the objects mounted on it
 * (vigil_hub_mount()); the api itself answers GET /healthz and GET /metrics.
 *
 * The api checks bearer tokens with scopes (ingest, read, write, admin;
 * admin implies write, write implies read, ingest stands alone), compared in
 * constant time and never logged, or calls an embedder's authentication
 * callback instead. It inflates gzip request bodies up to a cap, answers
 * CORS only for the allowed origins, and counts every request for GET /metrics
 * (Prometheus text format 0.0.4).
 *
 * Every error response is JSON:
 *   {"error":{"code":"invalid_metric","message":"...","path":"metrics[3].value"}}
 * with codes and statuses invalid_json/invalid_metric/invalid_request 400,
 * unauthorized 401, forbidden 403, not_found 404, method_not_allowed 405 (with
 * Allow), too_large 413, unsupported_media_type 415, overloaded 429 (with
 * Retry-After), unavailable 503, conflict 409, internal 500.
 *
 * Threads: vigil_api_handle(), vigil_api_submit() and vigil_api_reload() may
 * be called from many threads at once. Routes are mounted before the first
 * request; the api is freed after the server hosting it has stopped.
 */
#ifndef VIGIL_API_H
#define VIGIL_API_H

#include "vigil/buf.h"
#include "vigil/common.h"
#include "vigil/log.h"
#include "vigil/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @name Scopes of a token (bit flags) @since 0.1.0 */
/**@{*/
#define VIGIL_API_SCOPE_INGEST 0x1u /**< POST /v1/ingest; implies nothing else */
#define VIGIL_API_SCOPE_READ   0x2u /**< GET routes */
#define VIGIL_API_SCOPE_WRITE  0x4u /**< changes; implies read */
#define VIGIL_API_SCOPE_ADMIN  0x8u /**< everything; implies write and read */
/**@}*/

/** An HTTP header, both strings NUL-terminated. @since 0.1.0 */
typedef struct vigil_http_header {
    const char *name;
    const char *value;
} vigil_http_header;

/**
 * A request as the server received it. Every string is borrowed from the
 * caller and must stay valid until the request is answered (vigil_api_handle()
 * returns, or the vigil_api_submit() callback has been called).
 * @since 0.1.0
 */
typedef struct vigil_api_request {
    unsigned int version;             /**< VIGIL_API_REQUEST_VERSION */
    const char *method;               /**< "GET", "POST", ... */
    const char *path;                 /**< as received, percent-encoded, without the query */
    const char *query;                /**< raw query without '?', or NULL */
    const vigil_http_header *headers; /**< names compared case-insensitively */
    size_t nheaders;
    const char *body; /**< raw body as received (possibly gzip), or NULL */
    size_t body_len;
    const char *remote_addr; /**< for logs and the auth callback, or NULL */
    const char *request_id;  /**< set by the server for log correlation, or NULL */
} vigil_api_request;

#define VIGIL_API_REQUEST_VERSION 1
#define VIGIL_API_REQUEST_INIT                                                    \
    {                                                                             \
        VIGIL_API_REQUEST_VERSION, NULL, NULL, NULL, NULL, 0, NULL, 0, NULL, NULL \
    }

/**
 * Fills @p req with an empty request. @return VIGIL_OK, VIGIL_EINVAL (NULL @p
 * req) or VIGIL_EVERSION (@p version 0 or newer than this library's). @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_api_request_init(vigil_api_request *req, unsigned int version);

/**
 * An embedder's authentication check, called instead of the token check for
 * every route that needs a scope (never for GET /healthz).
 * @param req the request (headers, remote address).
 * @param scope the VIGIL_API_SCOPE_* bit the route needs.
 * @return VIGIL_OK to allow; VIGIL_EAUTH for 401 (no or bad credential);
 *         VIGIL_EPERM for 403 (valid credential, wrong scope). Any other code
 *         is answered with 401. Called from the server's threads, concurrently.
 * @since 0.1.0
 */
typedef int (*vigil_api_auth_cb)(const vigil_api_request *req, unsigned int scope, void *payload);

/**
 * A token source. Tokens come from an environment variable (which may hold
 * several tokens separated by commas, for rotation) or from a file (tokens
 * separated by commas or newlines, re-read by vigil_api_reload()). Exactly
 * one of @c env and @c file is set.
 * @since 0.1.0
 */
typedef struct vigil_api_token {
    const char *name;    /**< label for logs and messages; never the token */
    const char *env;     /**< environment variable name, or NULL */
    const char *file;    /**< file path, or NULL */
    unsigned int scopes; /**< VIGIL_API_SCOPE_* bits */
} vigil_api_token;

/**
 * Fewest bytes of a bearer token: a source holding a shorter one is refused
 * (vigil_api_new(), vigil_api_reload()). @since 0.3.0
 */
#define VIGIL_API_TOKEN_MIN 16

/**
 * Binds a token source to the agents its holders may speak for on
 * POST /v1/ingest. A batch authenticated by a bound token must name an agent
 * matching one of @c agents (globs: '*', '?', '[...]'), and each metric's
 * `host` tag must equal that agent; otherwise the hub answers 403 with the
 * error code "agent_mismatch". A missing `agent` is filled in when the
 * binding is a single name without glob characters; a missing `host` tag is
 * filled in with the agent. A token without a binding speaks for every host.
 * @since 0.3.0
 */
typedef struct vigil_api_binding {
    const char *token;         /**< vigil_api_token.name of the bound source */
    const char *const *agents; /**< agent ids or globs, at least one */
    size_t nagents;            /**< at most 256 */
} vigil_api_binding;

/** Options of an api. @since 0.1.0 */
typedef struct vigil_api_options {
    unsigned int version; /**< VIGIL_API_OPTIONS_VERSION */
    /** Path prefix the routes are mounted under, e.g. "/vigil"; NULL or "": none. */
    const char *prefix;
    /** Token sources; with none and no auth_cb, every route is open. */
    const vigil_api_token *tokens;
    size_t ntokens;
    /** Replaces the token check when set. */
    vigil_api_auth_cb auth_cb;
    void *auth_payload;
    /** Origins (e.g. "https://ops.example.com") answered with CORS headers. */
    const char *const *allowed_origins;
    size_t nallowed_origins;
    /** Largest raw body accepted (413 above); 0: 8 MiB. */
    uint64_t max_body;
    /** Largest body after gzip inflation (413 above); 0: 64 MiB. */
    uint64_t max_inflated;
    /** Seconds sent in Retry-After with 429 and 503; 0: 1. */
    unsigned int retry_after_s;
    vigil_logger logger;
    /** Agent bindings of token sources (version 2; @since 0.3.0); NULL: none. */
    const vigil_api_binding *bindings;
    size_t nbindings;
} vigil_api_options;

#define VIGIL_API_OPTIONS_VERSION 2
#define VIGIL_API_OPTIONS_INIT                                                                     \
    {                                                                                              \
        VIGIL_API_OPTIONS_VERSION, NULL, NULL, 0, NULL, NULL, NULL, 0, 0, 0, 0, VIGIL_LOGGER_INIT, \
            NULL, 0                                                                                \
    }

/**
 * Fills @p opts with defaults. @return VIGIL_OK, VIGIL_EINVAL (NULL @p opts) or
 * VIGIL_EVERSION (@p version 0 or newer than this library's). @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_api_options_init(vigil_api_options *opts, unsigned int version);

/**
 * Creates an api with the built-in routes GET /healthz and GET /metrics and
 * loads its tokens (the strings of @p opts are copied).
 * @param out receives the api, the caller's; free it with vigil_api_free().
 * @param opts NULL for defaults.
 * @return VIGIL_OK; VIGIL_EINVAL (bad options: a token without a source, a
 *         source with both env and file, no scopes, a prefix not starting with
 *         '/'); VIGIL_EENV (a token variable is not set); VIGIL_EIO (a token
 *         file cannot be read); VIGIL_EVALUE (a source holds no token, or a
 *         token shorter than VIGIL_API_TOKEN_MIN bytes); VIGIL_ENOMEM; and
 *         VIGIL_EINVAL for a binding naming no token, bound twice, or without
 *         agents.
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_api_new(vigil_api **out, const vigil_api_options *opts);

/**
 * Frees an api. The server hosting it must be stopped first and no request
 * may be in flight. NULL is a no-op. @since 0.1.0
 */
VIGIL_EXTERN(void) vigil_api_free(vigil_api *api);

/**
 * Re-reads every token source (environment variables and files), for
 * rotation without downtime. On failure the previous tokens stay in force.
 * @return VIGIL_OK, or the codes of vigil_api_new() for token sources.
 * Thread-safe. @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_api_reload(vigil_api *api);

/**
 * True when requests need a credential: tokens are configured or an auth
 * callback is set. A server uses it to refuse an open, non-loopback listener.
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_api_has_auth(const vigil_api *api);

/**
 * Called once a submitted request has its response (status and headers set,
 * body complete or stream ready). From the submitting thread before
 * vigil_api_submit() returns, or later from a library thread; it must not block.
 * @since 0.1.0
 */
typedef void (*vigil_api_done_cb)(vigil_api_response *resp, void *payload);

/**
 * Answers @p req into @p resp without blocking: routing, authentication,
 * CORS, body checks and the route's handler. Work that waits (an ingest
 * waiting for its commit) completes later and then calls @p done.
 * @p done is called exactly once when this returns VIGIL_OK, and never when it
 * returns an error.
 * @param resp a fresh response from vigil_api_response_new(), owned by the caller.
 * @return VIGIL_OK (every HTTP outcome, 4xx and 5xx included, is a response);
 *         VIGIL_EINVAL for a NULL argument or a response that was already
 *         used; VIGIL_EVERSION for an unknown request version.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_api_submit(vigil_api *api, const vigil_api_request *req, vigil_api_response *resp,
                 vigil_api_done_cb done, void *payload);

/**
 * As vigil_api_submit(), blocking until the response is complete: the
 * simplest way to host the api in a server whose handlers may block.
 * @return VIGIL_OK or VIGIL_EINVAL. @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_api_handle(vigil_api *api, const vigil_api_request *req, vigil_api_response *resp);

/**
 * Writes the Prometheus text exposition (format 0.0.4) of every metric of the
 * api and of the objects mounted on it into @p out (cleared first), as
 * GET /metrics serves it. @return VIGIL_OK or VIGIL_ENOMEM. @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_api_metrics_text(vigil_api *api, vigil_buf *out);

/**
 * Creates an empty response. @return VIGIL_OK or VIGIL_ENOMEM.
 * @param out the caller's; free with vigil_api_response_free() once the
 *        request is answered (after the done callback).
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_api_response_new(vigil_api_response **out);

/**
 * Frees a response and closes its stream, if any (an SSE subscription ends).
 * NULL is a no-op. @since 0.1.0
 */
VIGIL_EXTERN(void) vigil_api_response_free(vigil_api_response *resp);

/** The HTTP status (0 before the response is complete). @since 0.1.0 */
VIGIL_EXTERN(int) vigil_api_response_status(const vigil_api_response *resp);

/** Number of response headers. @since 0.1.0 */
VIGIL_EXTERN(size_t) vigil_api_response_header_count(const vigil_api_response *resp);

/**
 * Header @p index, borrowed from the response, or NULL when out of range.
 * @since 0.1.0
 */
VIGIL_EXTERN(const vigil_http_header *)
vigil_api_response_header_at(const vigil_api_response *resp, size_t index);

/**
 * The value of the first header named @p name (case-insensitive), borrowed,
 * or NULL. @since 0.1.0
 */
VIGIL_EXTERN(const char *)
vigil_api_response_header(const vigil_api_response *resp, const char *name);

/**
 * The body, borrowed from the response ("" when empty; never NULL), and its
 * length in @p len when not NULL. Empty for a streaming response.
 * @since 0.1.0
 */
VIGIL_EXTERN(const char *) vigil_api_response_body(const vigil_api_response *resp, size_t *len);

/** True when the body is a stream read with vigil_api_response_read(). @since 0.1.0 */
VIGIL_EXTERN(int) vigil_api_response_is_stream(const vigil_api_response *resp);

/**
 * Called by the library, from any thread, when a stream has new data or has
 * ended. It may be called spuriously; it must not block nor call back into
 * the response. @since 0.1.0
 */
typedef void (*vigil_api_wake_cb)(void *payload);

/**
 * Sets the callback that tells the server a stream can be read again; a
 * server that finds nothing to read pauses the connection until the wake.
 * Set it before the first vigil_api_response_read(). Thread-safe.
 * @return VIGIL_OK, or VIGIL_EINVAL when the response is not a stream.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_api_response_set_wake(vigil_api_response *resp, vigil_api_wake_cb wake, void *payload);

/**
 * Reads up to @p size bytes of a stream into @p buf.
 * @param n receives the number of bytes copied; 0 means nothing is ready now
 *        (wait for the wake callback).
 * @return VIGIL_OK; VIGIL_ECLOSED when the stream has ended (the subscriber was
 *         dropped as too slow, or the source shut down) and everything was read;
 *         VIGIL_EINVAL when the response is not a stream.
 * Called from one server thread at a time per response.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_api_response_read(vigil_api_response *resp, char *buf, size_t size, size_t *n);

#ifdef __cplusplus
}
#endif

#endif
