/*
 * vigil/httpd.h - the built-in HTTP server (libmicrohttpd) hosting a
 * vigil_api: a thread pool, every limit set explicitly (connections, per-IP
 * connections, idle timeout, per-connection memory, body size), optional TLS
 * with client-certificate verification, and one logfmt line per request with
 * a request id (the query string, which may carry ?access_token=, is never
 * logged).
 *
 * A body larger than max_body is refused with 413 from its Content-Length,
 * before it is read; a chunked body that grows past it closes the connection.
 * Authentication comes first: the path, method and credentials of a request
 * are checked on its headers, and a refusal (401, 403, 404, 405) is sent
 * before any body byte is read (and without "100 Continue"). The bodies held
 * at once across connections are capped by max_buffered (503 past it).
 * Listening on a non-loopback address while the api has no authentication
 * (no tokens, no auth callback) is refused unless @c insecure is set, and
 * then logged as a warning at every start.
 *
 * Threads: the server runs its own threads between vigil_httpd_start() and
 * vigil_httpd_stop(). The functions are called from one controlling thread;
 * vigil_httpd_port() and vigil_httpd_address() from any.
 */
#ifndef VIGIL_HTTPD_H
#define VIGIL_HTTPD_H

#include "vigil/api.h"
#include "vigil/common.h"
#include "vigil/log.h"
#include "vigil/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Options of a server. Zero fields mean the defaults. @since 0.1.0 */
typedef struct vigil_httpd_options {
    unsigned int version; /**< VIGIL_HTTPD_OPTIONS_VERSION */
    /** "HOST:PORT": an IPv4 address, "[IPv6]" or "localhost"; port 0 binds
     * an ephemeral port. NULL: "127.0.0.1:7600". */
    const char *listen;
    unsigned int threads;         /**< worker threads; 0: one per online CPU */
    unsigned int max_connections; /**< 0: 1024 (event streams included) */
    unsigned int per_ip;          /**< connections from one address; 0: 64 */
    int64_t timeout_ms;           /**< idle connection timeout, whole seconds; 0: 30 s */
    size_t connection_memory;     /**< per-connection memory (headers, buffers); 0: 128 KiB */
    uint64_t max_body;            /**< largest request body; 0: 8 MiB */
    const char *tls_cert;         /**< PEM certificate file: TLS on; NULL: plain HTTP */
    const char *tls_key;          /**< PEM private key file, required with tls_cert */
    const char *tls_client_ca;    /**< PEM CA file: clients must present a certificate it signed */
    int insecure;                 /**< non-zero: allow an unauthenticated non-loopback listener */
    vigil_logger logger;          /**< request lines and server events ("httpd" component) */
    /** Request body bytes held at once across all connections (version 2;
     * @since 0.3.0): a request whose Content-Length does not fit what is
     * left is answered 503 overloaded (Retry-After: 1) before its body is
     * read; a chunked body that no longer fits closes its connection.
     * 0: 256 MiB; at least max_body. */
    uint64_t max_buffered;
} vigil_httpd_options;

#define VIGIL_HTTPD_OPTIONS_VERSION 2
#define VIGIL_HTTPD_OPTIONS_INIT                                                  \
    {                                                                             \
        VIGIL_HTTPD_OPTIONS_VERSION, NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL, 0, \
            VIGIL_LOGGER_INIT, 0                                                  \
    }

/**
 * Fills @p opts with defaults. @return VIGIL_OK, VIGIL_EINVAL (NULL @p opts) or
 * VIGIL_EVERSION (@p version 0 or newer than this library's). @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_httpd_options_init(vigil_httpd_options *opts, unsigned int version);

/**
 * Creates a server for @p api (borrowed: it must outlive the server) and
 * checks its options; nothing listens until vigil_httpd_start().
 * @param out receives the server, the caller's; free with vigil_httpd_free().
 * @param opts NULL for defaults (strings are copied; TLS files are read here).
 * @return VIGIL_OK; VIGIL_EINVAL (bad listen address, TLS key without
 *         certificate, ...); VIGIL_EPERM (non-loopback without authentication
 *         and not insecure); VIGIL_EIO (a TLS file cannot be read);
 *         VIGIL_EUNSUPPORTED (TLS asked of a libmicrohttpd built without it);
 *         VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_httpd_new(vigil_httpd **out, vigil_api *api, const vigil_httpd_options *opts);

/**
 * Binds the listening socket, starts the threads and logs the bound address.
 * @return VIGIL_OK; VIGIL_EINVAL (already started); VIGIL_ENETWORK (cannot
 *         bind or start: the message names the address and the operating
 *         system's reason, e.g. "httpd: cannot listen on 127.0.0.1:7601:
 *         Address already in use").
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_httpd_start(vigil_httpd *httpd);

/**
 * The most request body bytes the server has held at once, across all
 * connections, since it was created (never above max_buffered). Any thread.
 * @since 0.3.0
 */
VIGIL_EXTERN(uint64_t) vigil_httpd_buffered_peak(const vigil_httpd *httpd);

/** The bound port (after start; 0 before). @since 0.1.0 */
VIGIL_EXTERN(int) vigil_httpd_port(const vigil_httpd *httpd);

/**
 * The bound address as "HOST:PORT" ("127.0.0.1:43121"), borrowed from the
 * server, or "" before start. @since 0.1.0
 */
VIGIL_EXTERN(const char *) vigil_httpd_address(const vigil_httpd *httpd);

/**
 * Stops accepting connections: new connections are refused at once (the
 * listening socket is shut down, and closed by vigil_httpd_stop()); requests
 * in progress continue. @return VIGIL_OK or VIGIL_EINVAL (not started).
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_httpd_quiesce(vigil_httpd *httpd);

/**
 * Waits until no request is in progress (event streams excluded), at most
 * @p timeout_ms: a request is in progress from its first byte until its
 * answer has been sent, so that a stop after the drain drops no answer.
 * @return VIGIL_OK or VIGIL_ETIMEOUT. @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_httpd_drain(vigil_httpd *httpd, int64_t timeout_ms);

/**
 * Stops the server: ends event streams (giving them up to one second to send
 * their last chunk), waits until every submitted request
 * has been answered by the api (so stop the objects that answer them, such as
 * the hub, first or make sure they keep answering), closes every connection
 * and joins the threads. Idempotent. @since 0.1.0
 */
VIGIL_EXTERN(void) vigil_httpd_stop(vigil_httpd *httpd);

/**
 * Called by vigil_httpd_shutdown() once the server has stopped accepting and
 * drained: the owner of the api stops its object there (vigil_hub_stop()
 * commits what is queued, vigil_remediator_stop() finishes what runs), so
 * that every request still waiting gets its answer before the server closes.
 * @since 0.2.0
 */
typedef void (*vigil_httpd_flush_cb)(void *payload);

/**
 * Stops a server cleanly in one call: stops accepting (vigil_httpd_quiesce()),
 * waits up to @p drain_timeout_ms for the requests in progress to be answered
 * (vigil_httpd_drain()), calls @p flush, then closes every connection and
 * joins the threads (vigil_httpd_stop()). Never aborts the process; safe to
 * call on a server that was never started or is already stopped (then only
 * @p flush runs).
 * @param drain_timeout_ms how long requests in progress may take; negative:
 *        no limit.
 * @param flush NULL, or called once from this thread between the drain and
 *        the close, with @p payload.
 * @return VIGIL_OK; VIGIL_ETIMEOUT when requests were still in progress at
 *         the deadline (logged; the server is stopped all the same: their
 *         answers come from @p flush stopping the api's owner);
 *         VIGIL_EINVAL for a NULL server.
 * Call from one thread, not from a request handler.
 * @since 0.2.0
 */
VIGIL_EXTERN(int)
vigil_httpd_shutdown(vigil_httpd *httpd, int64_t drain_timeout_ms, vigil_httpd_flush_cb flush,
                     void *payload);

/** Stops the server (vigil_httpd_stop()) and frees it. NULL is a no-op. @since 0.1.0 */
VIGIL_EXTERN(void) vigil_httpd_free(vigil_httpd *httpd);

#ifdef __cplusplus
}
#endif

#endif
