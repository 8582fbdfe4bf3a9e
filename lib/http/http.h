/*
 * The library's HTTP client, the one owner of libcurl: the ingest client
 * (lib/client), the http collector, the webhook action, the hub's dispatcher
 * to a remediator and the remediator's late results to the hub all make their
 * requests through it. Never installed; not API.
 *
 * Defaults are the safe ones: http and https only, redirects never followed,
 * TLS peers verified, a response body capped at 1 MiB. libcurl's process-wide
 * initialisation runs once, under pthread_once, the first time a handle is
 * made (vigil__http_init()); it is never undone.
 *
 * Threads: a handle is used by one thread at a time; distinct handles may be
 * used at once from different threads. The URL and date helpers are
 * thread-safe.
 */
#ifndef VIGIL_HTTP_H
#define VIGIL_HTTP_H

#include "internal/common.h"

#include <stddef.h>
#include <stdint.h>

/* The response cap when a request sets none. */
#define VIGIL__HTTP_RESPONSE_DEFAULT (1024 * 1024)
/* Response header bytes kept (the last response's block); more are dropped. */
#define VIGIL__HTTP_HEADERS_MAX 65536
/* Size of vigil__http_response.error. */
#define VIGIL__HTTP_ERROR_MAX 256

/* A reusable client: one libcurl easy handle in its own multi handle, so the
 * connection (and TLS session, and DNS answer) of one request is kept for the
 * next one to the same host. */
typedef struct vigil__http vigil__http;

/* What happens to a response body larger than max_response. */
typedef enum vigil__http_overflow {
    VIGIL__HTTP_OVERFLOW_FAIL = 0, /* the transfer ends with VIGIL_ELIMIT, body discarded */
    VIGIL__HTTP_OVERFLOW_CLIP = 1, /* the first max_response bytes are kept, the rest is read
                                      and dropped (the connection stays reusable); clipped=1 */
    VIGIL__HTTP_OVERFLOW_STOP = 2  /* the first max_response bytes are kept and the transfer
                                      ends there, successfully; clipped=1 */
} vigil__http_overflow;

/* One request. Start from VIGIL__HTTP_REQUEST_INIT (all zero but cancel_fd);
 * strings are borrowed for the duration of the call. */
typedef struct vigil__http_request {
    const char *method;         /* NULL: GET, or POST when body is set */
    const char *url;            /* http:// or https:// (required) */
    const char *const *headers; /* "Name: value" lines ("Name:" removes one of
                                   libcurl's); copies are wiped after the call,
                                   so they may carry secrets */
    size_t nheaders;
    const void *body; /* request body (POST), or NULL */
    size_t body_len;
    const char *user_agent; /* NULL: none sent */
    const char *ca_file;    /* PEM bundle to trust instead of the system's */
    const char *ca_dir;     /* directory of hashed CA certificates */
    const char *cert_file;  /* TLS client certificate (PEM), with key_file */
    const char *key_file;
    int insecure;               /* 1: do not verify the server's certificate and name */
    int64_t connect_timeout_ms; /* 0: libcurl's default (300 s) */
    int64_t timeout_ms;         /* whole request, connection included; 0: none */
    int follow_redirects;       /* 0 (default): a 3xx is the answer, never followed */
    long max_redirects;         /* with follow_redirects: at most this many (http/https only) */
    size_t max_response;        /* body cap; 0: VIGIL__HTTP_RESPONSE_DEFAULT */
    vigil__http_overflow overflow;
    int cancel_fd; /* -1: none. Once readable (never read), the transfer
                      ends with VIGIL_ECLOSED, after cancel_grace_ms */
    int64_t cancel_grace_ms;
    int (*cancel_cb)(void *payload); /* polled at least every 100 ms; non-zero cancels */
    void *cancel_payload;
    int fresh_connection; /* 1: a new connection, closed afterwards (health checks) */
    int no_proxy;         /* 1: ignore http_proxy and friends */
    int cert_expiry;      /* 1: report the server certificate's expiry (https) */
} vigil__http_request;

#define VIGIL__HTTP_REQUEST_INIT \
    {                            \
        .cancel_fd = -1          \
    }

/* Microseconds from the start of the request to each stage, as libcurl
 * measures them (0 for a stage that did not happen, e.g. tls over http). */
typedef struct vigil__http_timings {
    int64_t dns_us;        /* name resolved */
    int64_t connect_us;    /* TCP connected */
    int64_t tls_us;        /* TLS handshake done */
    int64_t first_byte_us; /* first byte of the answer */
    int64_t total_us;      /* whole transfer */
} vigil__http_timings;

/* What came back. Start from VIGIL__HTTP_RESPONSE_INIT; vigil__http_perform
 * resets it on each call, keeping the buffers' memory; release it with
 * vigil__http_response_dispose(). */
typedef struct vigil__http_response {
    long status;           /* HTTP status of the last response; 0 without one */
    vigil_buf body;        /* the body (NUL-terminated), within the cap */
    int clipped;           /* the body was cut at max_response */
    vigil_buf headers;     /* the last response's header lines, as received */
    int has_cert_expiry;   /* cert_expiry_s is known */
    int64_t cert_expiry_s; /* the leaf certificate's notAfter, Unix seconds */
    vigil__http_timings timings;
    const char *reason;                /* on failure libcurl's short text, else "" (static) */
    char error[VIGIL__HTTP_ERROR_MAX]; /* on failure the detailed message, else "" */
} vigil__http_response;

#define VIGIL__HTTP_RESPONSE_INIT \
    {                             \
        0                         \
    }

/* Runs libcurl's process-wide initialisation once (pthread_once). Returns
 * VIGIL_OK or VIGIL_EIO (libcurl could not be initialised; every later call
 * fails the same way). */
int vigil__http_init(void);

/* Makes a handle in *out. Returns VIGIL_OK, VIGIL_ENOMEM or VIGIL_EIO. */
int vigil__http_new(vigil__http **out);

/* Closes the handle's connections and frees it. NULL is a no-op. */
void vigil__http_free(vigil__http *http);

/* Performs one request and waits for its end. Returns VIGIL_OK once an answer
 * was received, whatever its status (resp->status); otherwise
 *   VIGIL_ETIMEOUT  timeout_ms or connect_timeout_ms passed
 *   VIGIL_ECLOSED   cancelled through cancel_fd or cancel_cb
 *   VIGIL_ELIMIT    the body exceeded max_response (OVERFLOW_FAIL; body emptied)
 *   VIGIL_ENETWORK  no answer: refused, reset, DNS, TLS verification, a
 *                   redirect refused...
 *   VIGIL_EINVAL    a NULL argument or no URL
 *   VIGIL_ENOMEM, VIGIL_EIO (libcurl refused an option or the transfer)
 * with a message that names no URL (URLs may carry credentials) and, for a
 * network failure, resp->reason and resp->error. resp->status, headers and
 * timings are filled as far as the exchange went, whatever the outcome. */
int vigil__http_perform(vigil__http *http, const vigil__http_request *req,
                        vigil__http_response *resp);

/* Frees the response's buffers; the struct may be reused after. */
void vigil__http_response_dispose(vigil__http_response *resp);

/* Checks the TLS files of a link before its first request: each set one
 * readable, cert and key together. `what` names the link in the message
 * ("remediator: tls cert ./x.pem: cannot read it: ..."). VIGIL_OK or
 * VIGIL_EINVAL / VIGIL_EIO. Thread-safe. */
int vigil__http_tls_check(const char *what, const char *ca_file, const char *cert_file,
                          const char *key_file);

/* Copies the value of the response header `name` (case-insensitive; the
 * first one; blanks around the value trimmed) into out[0..size) and returns
 * out; NULL when absent or longer than size - 1 bytes. */
const char *vigil__http_response_header(const vigil__http_response *resp, const char *name,
                                        char *out, size_t size);

/* The parts of an absolute URL, each a vigil__malloc'ed string or NULL when
 * the URL has none. The scheme is lower case. */
typedef struct vigil__http_url {
    char *scheme;
    char *host;
    char *port; /* only when written in the URL */
    char *user; /* userinfo: credentials in the URL */
    char *query;
} vigil__http_url;

/* Parses `url` (RFC 3986 as libcurl reads it) into *out, which the caller
 * releases with vigil__http_url_dispose() whatever the outcome. Returns
 * VIGIL_OK, VIGIL_EVALUE (not a valid absolute URL; why[0..why_size) says why
 * in libcurl's words when why is not NULL) or VIGIL_ENOMEM. */
int vigil__http_url_parse(vigil__http_url *out, const char *url, char *why, size_t why_size);
void vigil__http_url_dispose(vigil__http_url *url);

/* Parses an HTTP date (RFC 9110: IMF-fixdate and the two obsolete forms)
 * into Unix seconds. Returns VIGIL_OK or VIGIL_EVALUE. */
int vigil__http_date_parse(const char *text, int64_t *unix_s);

#endif
