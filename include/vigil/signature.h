/*
 * vigil/signature.h - request signatures (the X-Vigil-Signature header): an
 * HMAC-SHA256 over a timestamp and the body, with which a hub signs the
 * requests it sends a remediator and the remediator checks them.
 *
 * Every function is thread-safe.
 * Include <vigil/vigil.h> rather than this header directly.
 */
#ifndef VIGIL_SIGNATURE_H
#define VIGIL_SIGNATURE_H

#include "vigil/buf.h"
#include "vigil/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Header that carries a request signature. @since 0.1.0 */
#define VIGIL_SIGNATURE_HEADER "X-Vigil-Signature"
/**
 * Fewest bytes of the secret shared by a hub and its remediators: the hub,
 * the remediator and their configurations refuse a shorter one at start.
 * @since 0.3.0
 */
#define VIGIL_SIGNATURE_SECRET_MIN 32
/** Largest distance, in seconds, between a signature's time and now. @since 0.1.0 */
#define VIGIL_SIGNATURE_MAX_SKEW_S 300

/**
 * Appends to @p out the value of an X-Vigil-Signature header for @p body:
 * "t=<unix_s>,v1=<hex of HMAC-SHA256(secret, "<unix_s>.<body>")>" (64 hex
 * digits). The secret is never copied nor logged.
 * @return VIGIL_OK; VIGIL_EINVAL (NULL out or secret, empty secret, body NULL
 *         with a length); VIGIL_ENOMEM; VIGIL_ERROR (mbedTLS failed).
 * Thread-safe. @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_signature_make(vigil_buf *out, const void *secret, size_t secret_len, int64_t unix_s,
                     const void *body, size_t body_len);

/**
 * Checks an X-Vigil-Signature header value against @p body: the timestamp
 * must be within @p max_skew_s seconds of @p now_s (either side) and one of
 * its v1= values must equal the HMAC (compared in constant time).
 * @param max_skew_s <= 0: VIGIL_SIGNATURE_MAX_SKEW_S.
 * @return VIGIL_OK; VIGIL_EAUTH with the message "signature: missing",
 *         "signature: malformed header", "signature: timestamp is N s away
 *         from now (limit M s)" or "signature: mismatch"; VIGIL_EINVAL (NULL
 *         secret, empty secret); VIGIL_ENOMEM; VIGIL_ERROR (mbedTLS failed).
 * Thread-safe. @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_signature_verify(const char *header_value, const void *secret, size_t secret_len,
                       const void *body, size_t body_len, int64_t now_s, int64_t max_skew_s);

#ifdef __cplusplus
}
#endif

#endif
