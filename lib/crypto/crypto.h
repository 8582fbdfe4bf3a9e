/*
 * Hashing, message authentication and randomness: the one owner of mbedTLS in
 * the library (SHA-256 for the file collector, HMAC-SHA256 for
 * X-Vigil-Signature and the audit chain, random bytes for batch ids and audit
 * keys). Never installed; not API.
 *
 * Contexts live in the caller's storage (no allocation); their contents are
 * private to lib/crypto/crypto.c. A context is used by one thread at a time;
 * the functions themselves share no state.
 */
#ifndef VIGIL_CRYPTO_H
#define VIGIL_CRYPTO_H

#include "internal/common.h"

#include <stddef.h>

#define VIGIL__CRYPTO_SHA256_LEN 32

/* Storage for a streaming SHA-256: start, update any number of times, finish;
 * then free (start may be called again in between). */
typedef struct vigil__crypto_sha256_ctx {
    union {
        unsigned char bytes[256];
        long double align_ld;
        void *align_p;
        unsigned long long align_ll;
    } opaque;
} vigil__crypto_sha256_ctx;

/* Storage for a streaming HMAC-SHA256 keyed once: update any number of times,
 * finish (which leaves it ready for the next message under the same key);
 * then free, which wipes the key material. */
typedef struct vigil__crypto_hmac_ctx {
    union {
        unsigned char bytes[128];
        long double align_ld;
        void *align_p;
        unsigned long long align_ll;
    } opaque;
} vigil__crypto_hmac_ctx;

/* SHA-256 of data[0..len) into out. Returns VIGIL_OK or VIGIL_ERROR. */
int vigil__crypto_sha256(unsigned char out[VIGIL__CRYPTO_SHA256_LEN], const void *data, size_t len);

/* Streaming SHA-256. start initialises `ctx` (call free afterwards even when
 * it fails); update and finish return VIGIL_OK or VIGIL_ERROR; free never
 * fails and takes a context that start never saw only if it is all zero. */
int vigil__crypto_sha256_start(vigil__crypto_sha256_ctx *ctx);
int vigil__crypto_sha256_update(vigil__crypto_sha256_ctx *ctx, const void *data, size_t len);
int vigil__crypto_sha256_finish(vigil__crypto_sha256_ctx *ctx,
                                unsigned char out[VIGIL__CRYPTO_SHA256_LEN]);
void vigil__crypto_sha256_free(vigil__crypto_sha256_ctx *ctx);

/* HMAC-SHA256 (RFC 2104) of data[0..len) under key[0..key_len) into out.
 * Returns VIGIL_OK or VIGIL_ERROR. */
int vigil__crypto_hmac_sha256(unsigned char out[VIGIL__CRYPTO_SHA256_LEN], const void *key,
                              size_t key_len, const void *data, size_t len);

/* Streaming HMAC-SHA256. start keys `ctx` (call free afterwards even when it
 * fails); finish writes the MAC of everything updated since start or the
 * previous finish and starts the next message under the same key. Each
 * returns VIGIL_OK or VIGIL_ERROR (message set). free wipes the key pads. */
int vigil__crypto_hmac_start(vigil__crypto_hmac_ctx *ctx, const void *key, size_t key_len);
int vigil__crypto_hmac_update(vigil__crypto_hmac_ctx *ctx, const void *data, size_t len);
int vigil__crypto_hmac_finish(vigil__crypto_hmac_ctx *ctx,
                              unsigned char out[VIGIL__CRYPTO_SHA256_LEN]);
/* Drops a message in progress: the next update starts a new one under the
 * same key. Returns VIGIL_OK or VIGIL_ERROR. */
int vigil__crypto_hmac_reset(vigil__crypto_hmac_ctx *ctx);
void vigil__crypto_hmac_free(vigil__crypto_hmac_ctx *ctx);

/* 1 when a[0..len) equals b[0..len), else 0, in time that depends on len
 * only (for MACs and tokens). */
int vigil__crypto_equal(const void *a, const void *b, size_t len);

/* Fills buf[0..len) with bytes from the kernel's CSPRNG (getrandom(2),
 * /dev/urandom on kernels without it). Blocks only until the pool is
 * initialised at boot. Returns VIGIL_OK or VIGIL_EIO. */
int vigil__crypto_random(void *buf, size_t len);

/* A non-zero seed for a jitter generator (vigil__rand_next()): eight bytes of
 * vigil__crypto_random(), or the monotonic clock and the process id when the
 * kernel gives none (the error is then recorded, and the seed returned all
 * the same). */
uint64_t vigil__crypto_seed(void);

/* Verifies a DER certificate against the CA certificates of the PEM file
 * ca_file (it must be signed by one of them directly) and, when host is not
 * NULL, that it names host. Returns VIGIL_OK; VIGIL_EIO (ca_file cannot be
 * read or parsed), VIGIL_EAUTH (the certificate is not trusted; the reason
 * is in the message). */
int vigil__crypto_x509_verify(const void *der, size_t len, const char *ca_file, const char *host);

#endif
