/* mbedTLS behind lib/crypto/crypto.h: the only file of the library that
 * includes mbedtls/ (or psa/) headers. Works with mbedTLS 2.28 and 3.x. */
#include "crypto/crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <mbedtls/md.h>
#include <mbedtls/sha256.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crt.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#if MBEDTLS_VERSION_MAJOR >= 3
#define SHA256_STARTS  mbedtls_sha256_starts
#define SHA256_UPDATE  mbedtls_sha256_update
#define SHA256_FINISH  mbedtls_sha256_finish
#define SHA256_ONESHOT mbedtls_sha256
#else
#define SHA256_STARTS  mbedtls_sha256_starts_ret
#define SHA256_UPDATE  mbedtls_sha256_update_ret
#define SHA256_FINISH  mbedtls_sha256_finish_ret
#define SHA256_ONESHOT mbedtls_sha256_ret
#endif

_Static_assert(sizeof(mbedtls_sha256_context) <= sizeof(((vigil__crypto_sha256_ctx *)0)->opaque),
               "vigil__crypto_sha256_ctx is too small for mbedtls_sha256_context");
_Static_assert(sizeof(mbedtls_md_context_t) <= sizeof(((vigil__crypto_hmac_ctx *)0)->opaque),
               "vigil__crypto_hmac_ctx is too small for mbedtls_md_context_t");

#define SHA(ctx) ((mbedtls_sha256_context *)(void *)(ctx)->opaque.bytes)
#define MD(ctx)  ((mbedtls_md_context_t *)(void *)(ctx)->opaque.bytes)

int vigil__crypto_sha256(unsigned char out[VIGIL__CRYPTO_SHA256_LEN], const void *data, size_t len)
{
    if (SHA256_ONESHOT(data, len, out, 0) != 0)
        return vigil__error_set(VIGIL_ERROR, "sha256 failed");
    return VIGIL_OK;
}

int vigil__crypto_sha256_start(vigil__crypto_sha256_ctx *ctx)
{
    mbedtls_sha256_init(SHA(ctx));
    if (SHA256_STARTS(SHA(ctx), 0) != 0)
        return vigil__error_set(VIGIL_ERROR, "sha256 init failed");
    return VIGIL_OK;
}

int vigil__crypto_sha256_update(vigil__crypto_sha256_ctx *ctx, const void *data, size_t len)
{
    if (len && SHA256_UPDATE(SHA(ctx), data, len) != 0)
        return vigil__error_set(VIGIL_ERROR, "sha256 update failed");
    return VIGIL_OK;
}

int vigil__crypto_sha256_finish(vigil__crypto_sha256_ctx *ctx,
                                unsigned char out[VIGIL__CRYPTO_SHA256_LEN])
{
    if (SHA256_FINISH(SHA(ctx), out) != 0)
        return vigil__error_set(VIGIL_ERROR, "sha256 finish failed");
    return VIGIL_OK;
}

void vigil__crypto_sha256_free(vigil__crypto_sha256_ctx *ctx)
{
    if (ctx)
        mbedtls_sha256_free(SHA(ctx));
}

int vigil__crypto_hmac_start(vigil__crypto_hmac_ctx *ctx, const void *key, size_t key_len)
{
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    mbedtls_md_init(MD(ctx));
    if (!md || mbedtls_md_setup(MD(ctx), md, 1) != 0 ||
        mbedtls_md_hmac_starts(MD(ctx), key, key_len) != 0)
        return vigil__error_set(VIGIL_ERROR, "HMAC-SHA256 setup failed");
    return VIGIL_OK;
}

int vigil__crypto_hmac_update(vigil__crypto_hmac_ctx *ctx, const void *data, size_t len)
{
    if (len && mbedtls_md_hmac_update(MD(ctx), data, len) != 0)
        return vigil__error_set(VIGIL_ERROR, "HMAC-SHA256 failed");
    return VIGIL_OK;
}

int vigil__crypto_hmac_finish(vigil__crypto_hmac_ctx *ctx,
                              unsigned char out[VIGIL__CRYPTO_SHA256_LEN])
{
    if (mbedtls_md_hmac_finish(MD(ctx), out) != 0 || mbedtls_md_hmac_reset(MD(ctx)) != 0)
        return vigil__error_set(VIGIL_ERROR, "HMAC-SHA256 failed");
    return VIGIL_OK;
}

int vigil__crypto_hmac_reset(vigil__crypto_hmac_ctx *ctx)
{
    if (mbedtls_md_hmac_reset(MD(ctx)) != 0)
        return vigil__error_set(VIGIL_ERROR, "HMAC-SHA256 failed");
    return VIGIL_OK;
}

void vigil__crypto_hmac_free(vigil__crypto_hmac_ctx *ctx)
{
    if (ctx)
        mbedtls_md_free(MD(ctx)); /* zeroises the key pads */
}

int vigil__crypto_hmac_sha256(unsigned char out[VIGIL__CRYPTO_SHA256_LEN], const void *key,
                              size_t key_len, const void *data, size_t len)
{
    vigil__crypto_hmac_ctx ctx;
    int rc = vigil__crypto_hmac_start(&ctx, key, key_len);
    if (!rc)
        rc = vigil__crypto_hmac_update(&ctx, data, len);
    if (!rc)
        rc = vigil__crypto_hmac_finish(&ctx, out);
    vigil__crypto_hmac_free(&ctx);
    return rc;
}

int vigil__crypto_equal(const void *a, const void *b, size_t len)
{
    const volatile unsigned char *x = a, *y = b;
    unsigned char diff = 0;
    for (size_t i = 0; i < len; i++)
        diff |= (unsigned char)(x[i] ^ y[i]);
    return diff == 0;
}

int vigil__crypto_random(void *buf, size_t len)
{
    unsigned char *p = buf;
    size_t got = 0;
    while (got < len) {
        ssize_t n = getrandom(p + got, len - got, 0);
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        break;
    }
    if (got == len)
        return VIGIL_OK;
    /* kernels without getrandom(2) */
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vigil__error_set(VIGIL_EIO, "random: cannot open /dev/urandom: %s", strerror(errno));
    while (got < len) {
        ssize_t n = read(fd, p + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (got != len)
        return vigil__error_set(VIGIL_EIO, "random: short read from /dev/urandom");
    return VIGIL_OK;
}

uint64_t vigil__crypto_seed(void)
{
    uint64_t seed = 0;
    if (vigil__crypto_random(&seed, sizeof(seed)) != VIGIL_OK)
        seed = (uint64_t)vigil__monotonic_ns() ^ ((uint64_t)getpid() << 32);
    return seed ? seed : 0x9e3779b97f4a7c15ULL;
}

int vigil__crypto_x509_verify(const void *der, size_t len, const char *ca_file, const char *host)
{
    mbedtls_x509_crt ca, crt;
    uint32_t flags = 0;
    char why[256];
    int rc;
    mbedtls_x509_crt_init(&ca);
    mbedtls_x509_crt_init(&crt);
    if (mbedtls_x509_crt_parse_file(&ca, ca_file) != 0) {
        rc = vigil__error_set(VIGIL_EIO, "x509: cannot read CA certificates from %s", ca_file);
    } else if (mbedtls_x509_crt_parse_der(&crt, der, len) != 0) {
        rc = vigil__error_set(VIGIL_EAUTH, "x509: the peer's certificate cannot be parsed");
    } else if (mbedtls_x509_crt_verify(&crt, &ca, NULL, host, &flags, NULL, NULL) != 0) {
        why[0] = '\0';
        mbedtls_x509_crt_verify_info(why, sizeof(why), "", flags);
        size_t n = strlen(why);
        while (n > 0 && (why[n - 1] == '\n' || why[n - 1] == ' '))
            why[--n] = '\0';
        for (size_t i = 0; i < n; i++)
            if (why[i] == '\n')
                why[i] = ';';
        rc = vigil__error_set(VIGIL_EAUTH, "x509: certificate not trusted by %s: %s", ca_file,
                              n ? why : "verification failed");
    } else {
        rc = VIGIL_OK;
    }
    mbedtls_x509_crt_free(&crt);
    mbedtls_x509_crt_free(&ca);
    return rc;
}
