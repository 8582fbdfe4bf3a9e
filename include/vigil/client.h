/*
 * vigil/client.h - the ingest client: ships metric batches to a hub's
 * POST /v1/ingest with libcurl, for the agent and for any program that wants
 * to feed a hub without running the agent.
 *
 * What a send does:
 *   - the batch gets a random 128-bit hex batch_id unless it has one; the id
 *     stays the same across every retry, so the hub accepts it at most once;
 *   - the body is the ingest JSON, gzip-compressed (Content-Encoding: gzip);
 *   - one connection is kept alive between sends (the transfer handle is
 *     reused);
 *   - the hub URLs are tried in order, starting with the one that answered
 *     last; an answer that judges no batch moves on to the next URL: a
 *     network error, a redirect, 401, a 403 other than agent_mismatch, 404
 *     (a misrouting proxy), 408, 409, 429, 5xx and any 4xx not listed below;
 *     when every URL failed the client waits (exponential backoff with full
 *     jitter, or the hub's Retry-After when it sent one, capped) and tries
 *     the list again, up to max_attempts rounds;
 *   - 400, 415, and a 403 whose error code is "agent_mismatch" (the batch's
 *     agent or a host tag is not one the token may speak for) mean the hub
 *     refuses the batch's content: the hub's error code and message are
 *     logged (escaped, clipped to 511 bytes), the batch is dropped and
 *     counted, and it is never retried;
 *   - 413 means the hub finds the body too large: the send ends at once with
 *     VIGIL_ELIMIT (no other URL, no other round) so that the caller can
 *     split the batch; the batch is not counted as dropped.
 *
 * The bearer token is read from the environment variable named in the options
 * when the client is created; it is never logged. TLS peers are verified by
 * default.
 *
 * Threads: a client is used by one thread at a time. vigil_client_stats() may
 * be called from any thread at any time (the counters are atomic).
 *
 * Output structs (vigil_client_stats) are versioned like options: the caller sets
 * @c version (the *_INIT macro does) before the call; the library refuses a
 * version 0 or newer than its own with VIGIL_EVERSION, as it does for options
 * and requests (docs/architecture.md), and otherwise fills the struct. A
 * struct the library hands to a callback has its version set by the library.
 */
#ifndef VIGIL_CLIENT_H
#define VIGIL_CLIENT_H

#include "vigil/batch.h"
#include "vigil/common.h"
#include "vigil/log.h"
#include "vigil/metric.h"
#include "vigil/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @name Limits of the client @since 0.1.0 */
/**@{*/
#define VIGIL_CLIENT_URLS_MAX 16   /**< hub URLs in one client */
#define VIGIL_CLIENT_URL_MAX  2048 /**< bytes in one hub URL */
/**@}*/

/**
 * Options of vigil_client_new(). Strings are copied by vigil_client_new().
 * Durations are in milliseconds; 0 selects the default given here.
 * @since 0.1.0
 */
typedef struct vigil_client_options {
    unsigned int version;       /**< VIGIL_CLIENT_OPTIONS_VERSION */
    const char *const *urls;    /**< hub base URLs ("http://127.0.0.1:7600"), tried in order */
    size_t nurls;               /**< 1 to VIGIL_CLIENT_URLS_MAX */
    const char *token_env;      /**< name of the variable holding the bearer token, or NULL */
    const char *ca_file;        /**< PEM CA bundle to verify the hub, or NULL: system CAs */
    const char *cert_file;      /**< PEM client certificate for mutual TLS, or NULL */
    const char *key_file;       /**< PEM private key of cert_file, or NULL */
    int insecure;               /**< non-zero: do NOT verify the hub's TLS certificate */
    int64_t connect_timeout_ms; /**< TCP + TLS connect; default 5000 */
    int64_t request_timeout_ms; /**< one whole request; default 30000 */
    unsigned int max_attempts;  /**< rounds over the URL list per send; default 5 */
    int64_t backoff_base_ms;    /**< first backoff ceiling; default 500 */
    int64_t backoff_max_ms;     /**< backoff ceiling cap; default 30000 */
    int64_t retry_after_max_ms; /**< cap on a hub's Retry-After; default 60000 */
    const char *user_agent;     /**< NULL: "vigil/<version>" */
    vigil_logger logger;        /**< where retries and drops are logged */
} vigil_client_options;

#define VIGIL_CLIENT_OPTIONS_VERSION 1
#define VIGIL_CLIENT_OPTIONS_INIT                                                                 \
    {                                                                                             \
        VIGIL_CLIENT_OPTIONS_VERSION, NULL, 0, NULL, NULL, NULL, NULL, 0, 0, 0, 0, 0, 0, 0, NULL, \
            VIGIL_LOGGER_INIT                                                                     \
    }

/**
 * Fills @p opts with the defaults of @p version (VIGIL_CLIENT_OPTIONS_VERSION).
 * @return VIGIL_OK, VIGIL_EINVAL for a NULL @p opts, or VIGIL_EVERSION for an
 *         unknown version.
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_client_options_init(vigil_client_options *opts, unsigned int version);

/**
 * Creates a client. Checks every URL (http or https, a host, no user name or
 * password in it, at most VIGIL_CLIENT_URL_MAX bytes) and reads the token
 * variable once; a token containing control characters is refused.
 * @param out receives the client, the caller's; free it with vigil_client_free().
 * @param opts the options (urls are required).
 * @return VIGIL_OK; VIGIL_EINVAL (NULL argument, bad URL, no URL, too many URLs,
 *         negative duration, cert without key); VIGIL_EVERSION (unknown
 *         options version); VIGIL_EENV (the
 *         token variable is named but not set); VIGIL_EVALUE (token with
 *         control characters); VIGIL_EIO (libcurl could not be initialised);
 *         VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_client_new(vigil_client **out, const vigil_client_options *opts);

/** Closes the connection and frees the client. NULL is a no-op. @since 0.1.0 */
VIGIL_EXTERN(void) vigil_client_free(vigil_client *client);

/**
 * Sends @p batch to the hub, blocking through every retry (at most about
 * max_attempts * (nurls * request_timeout_ms + backoff_max_ms)).
 * If the batch has no batch id, a random one is set on it first (so a caller
 * that keeps the batch and sends it again later is still idempotent).
 * @return VIGIL_OK when a hub accepted it (2xx).
 *         Transient failures, after every attempt (keep the batch and send it
 *         again later): VIGIL_ENETWORK (no hub reachable, a redirect, 404 and
 *         the other 4xx that judge no batch), VIGIL_ETIMEOUT (also 408),
 *         VIGIL_EOVERLOADED (429 or 5xx), VIGIL_EAUTH (401), VIGIL_EPERM (403
 *         other than agent_mismatch).
 *         Too large: VIGIL_ELIMIT (413; split the batch and send the parts,
 *         each with its own batch id; since 0.2.0, was VIGIL_EHTTP).
 *         Permanent: VIGIL_EHTTP (400, 415 or 403 agent_mismatch: the hub
 *         refused the batch's content; it is counted as dropped and must not
 *         be sent again; since 0.2.0 no other status).
 *         VIGIL_EINVAL (NULL argument), VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_client_send(vigil_client *client, vigil_batch *batch);

/**
 * As vigil_client_send(), for a body that is already encoded: an ingest JSON
 * document carrying its batch_id, or (when @p gzipped is non-zero) its gzip
 * compression, sent as it is. Used to replay stored batches.
 * @return as vigil_client_send(); VIGIL_EINVAL also for an empty body.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_client_send_body(vigil_client *client, const void *body, size_t len, int gzipped);

/**
 * Counters of a client since it was created. Set @c version to
 * VIGIL_CLIENT_STATS_VERSION (or use VIGIL_CLIENT_STATS_INIT) before the call.
 * @since 0.1.0
 */
typedef struct vigil_client_stats {
    unsigned int version; /**< VIGIL_CLIENT_STATS_VERSION */
    uint64_t sent;        /**< batches a hub accepted */
    uint64_t failed;      /**< sends that ended with a transient failure */
    uint64_t dropped;     /**< batches a hub refused (400, 415, 403 agent_mismatch) */
    uint64_t retried;     /**< backoff waits before another round of attempts */
    uint64_t requests;    /**< HTTP requests made (every attempt on every URL) */
    uint64_t backoff_ms;  /**< total time spent waiting between rounds */
    int last_status;      /**< HTTP status of the last response, 0 for none */
} vigil_client_stats;

#define VIGIL_CLIENT_STATS_VERSION 1
#define VIGIL_CLIENT_STATS_INIT                         \
    {                                                   \
        VIGIL_CLIENT_STATS_VERSION, 0, 0, 0, 0, 0, 0, 0 \
    }

/**
 * Reads the counters into @p out. Thread-safe.
 * @return VIGIL_OK, VIGIL_EINVAL (NULL argument) or VIGIL_EVERSION (unknown version).
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_client_stats_get(const vigil_client *client, vigil_client_stats *out);

/**
 * Writes a new random batch id (32 lowercase hex digits, 128 bits from the
 * kernel's random source) and a NUL into @p out, which holds at least 33 bytes.
 * @return VIGIL_OK, VIGIL_EINVAL (NULL or short buffer) or VIGIL_EIO.
 * Thread-safe. @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_client_batch_id(char *out, size_t size);

/**
 * Makes one request of the hub's HTTP API (docs/http-api.md) with the
 * client's token, TLS settings and timeouts: @p method to @p path (with its
 * query, already percent-encoded, e.g. "/v1/actions?status=failed") on the
 * hub URL that answered last (the first one at the start). No retry, no
 * other URL: the caller sees every answer. This is what the `vigil` CLI
 * uses; the ingest sends above are the way to feed metrics. Every request
 * carries X-Vigil-Request (so a body-less POST or DELETE passes the API's
 * cross-site defence) and Accept: application/json.
 * @param method "GET", "POST", "PUT" or "DELETE".
 * @param path starts with '/', at most 8 KiB, no space or control character.
 * @param body the JSON body sent with Content-Type: application/json, or NULL
 *        for none (then @p body_len is 0).
 * @param status receives the HTTP status of the answer (0 when none came).
 * @param out the answer's body is appended to it (ptr non-NULL and
 *        NUL-terminated on success, even for an empty body); the caller's,
 *        released with vigil_buf_dispose(). At most 64 MiB.
 * @return VIGIL_OK when the hub answered, whatever the status;
 *         VIGIL_ENETWORK (no answer: refused, DNS, TLS), VIGIL_ETIMEOUT,
 *         VIGIL_ELIMIT (answer over 64 MiB), VIGIL_EINVAL (NULL argument, bad
 *         method or path), VIGIL_ECLOSED, VIGIL_EIO, VIGIL_ENOMEM.
 * Not counted in the send counters except @c requests and @c last_status.
 * @since 0.3.0
 */
VIGIL_EXTERN(int)
vigil_client_request(vigil_client *client, const char *method, const char *path, const void *body,
                     size_t body_len, int *status, vigil_buf *out);

#ifdef __cplusplus
}
#endif

#endif
