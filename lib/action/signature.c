/* X-Vigil-Signature: HMAC-SHA256 over "<t>.<body>" (lib/crypto), as the hub
 * signs POST /v1/execute and the webhook action signs its body. */
#include "action/action_int.h"
#include "crypto/crypto.h"
#include "internal/common.h"
#include "vigil/action.h"
#include "vigil/signature.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAC_LEN     32
#define T_DIGITS    20
#define MAX_ENTRIES 8

static int hmac(const void *secret, size_t secret_len, int64_t t, const void *body, size_t len,
                unsigned char mac[MAC_LEN])
{
    char prefix[T_DIGITS + 2];
    int n = snprintf(prefix, sizeof(prefix), "%" PRId64 ".", t);
    vigil__crypto_hmac_ctx ctx;
    int rc = vigil__crypto_hmac_start(&ctx, secret, secret_len);
    if (!rc)
        rc = vigil__crypto_hmac_update(&ctx, prefix, (size_t)n);
    if (!rc)
        rc = vigil__crypto_hmac_update(&ctx, body, len);
    if (!rc)
        rc = vigil__crypto_hmac_finish(&ctx, mac);
    vigil__crypto_hmac_free(&ctx);
    if (rc)
        return vigil__error_set(VIGIL_ERROR, "signature: HMAC-SHA256 failed");
    return VIGIL_OK;
}

int vigil_signature_make(vigil_buf *out, const void *secret, size_t secret_len, int64_t unix_s,
                         const void *body, size_t body_len)
{
    unsigned char mac[MAC_LEN];
    int rc;

    if (!out || !secret || !secret_len || (!body && body_len))
        return vigil__error_set(VIGIL_EINVAL, "signature: NULL or empty argument");
    rc = hmac(secret, secret_len, unix_s, body, body_len, mac);
    if (!rc)
        rc = vigil__buf_printf(out, "t=%" PRId64 ",v1=", unix_s);
    for (size_t i = 0; i < MAC_LEN && !rc; i++)
        rc = vigil__buf_printf(out, "%02x", mac[i]);
    memset(mac, 0, sizeof(mac));
    return rc;
}

/* Decodes exactly 64 hex digits ending at a ',' or the end. */
static int unhex(const char *p, size_t n, unsigned char out[MAC_LEN])
{
    if (n != 2 * MAC_LEN)
        return -1;
    return vigil__hex_decode(out, p, MAC_LEN);
}

/* Parses the header and checks its timestamp against now_s: the entries
 * v1 in got[0..*ngot) and the timestamp in *t; VIGIL_EAUTH with the message
 * of vigil_signature_verify() otherwise. */
static int parse_header(const char *header_value, int64_t now_s, int64_t max_skew_s, int64_t *t_out,
                        unsigned char got[MAX_ENTRIES][MAC_LEN], size_t *ngot_out)
{
    size_t ngot = 0;
    int have_t = 0;
    int64_t t = 0;
    const char *p;

    if (!header_value || !*header_value)
        return vigil__error_set(VIGIL_EAUTH, "signature: missing");
    if (max_skew_s <= 0)
        max_skew_s = VIGIL_SIGNATURE_MAX_SKEW_S;
    if (strlen(header_value) > 1024)
        return vigil__error_set(VIGIL_EAUTH, "signature: malformed header");

    for (p = header_value; *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n > 2 && p[0] == 't' && p[1] == '=' && !have_t) {
            char num[T_DIGITS + 1];
            char *stop;
            if (n - 2 > T_DIGITS)
                return vigil__error_set(VIGIL_EAUTH, "signature: malformed header");
            memcpy(num, p + 2, n - 2);
            num[n - 2] = '\0';
            errno = 0;
            long long v = strtoll(num, &stop, 10);
            if (errno || *stop || num[0] == '-' || num[0] == '+' || num[0] == ' ')
                return vigil__error_set(VIGIL_EAUTH, "signature: malformed header");
            t = (int64_t)v;
            have_t = 1;
        } else if (n > 3 && !strncmp(p, "v1=", 3)) {
            if (ngot == MAX_ENTRIES || unhex(p + 3, n - 3, got[ngot]) != 0)
                return vigil__error_set(VIGIL_EAUTH, "signature: malformed header");
            ngot++;
        } else if (n == 0 || !memchr(p, '=', n)) {
            return vigil__error_set(VIGIL_EAUTH, "signature: malformed header");
        } /* other schemes (v2=...) are ignored so senders can add them */
        p += n;
        if (*p == ',')
            p++;
    }
    if (!have_t || !ngot)
        return vigil__error_set(VIGIL_EAUTH, "signature: malformed header");

    int64_t skew = t > now_s ? t - now_s : now_s - t;
    if (t < 0 || skew > max_skew_s)
        return vigil__error_set(VIGIL_EAUTH,
                                "signature: timestamp is %" PRId64
                                " s away from now (limit %" PRId64 " s)",
                                skew, max_skew_s);
    *t_out = t;
    *ngot_out = ngot;
    return VIGIL_OK;
}

int vigil__signature_check_head(const char *header_value, int64_t now_s, int64_t max_skew_s)
{
    unsigned char got[MAX_ENTRIES][MAC_LEN];
    size_t ngot = 0;
    int64_t t = 0;
    return parse_header(header_value, now_s, max_skew_s, &t, got, &ngot);
}

int vigil_signature_verify(const char *header_value, const void *secret, size_t secret_len,
                           const void *body, size_t body_len, int64_t now_s, int64_t max_skew_s)
{
    unsigned char want[MAC_LEN], got[MAX_ENTRIES][MAC_LEN];
    size_t ngot = 0;
    int64_t t = 0;
    int rc;

    if (!secret || !secret_len || (!body && body_len))
        return vigil__error_set(VIGIL_EINVAL, "signature: NULL or empty argument");
    rc = parse_header(header_value, now_s, max_skew_s, &t, got, &ngot);
    if (rc)
        return rc;
    rc = hmac(secret, secret_len, t, body, body_len, want);
    if (rc)
        return rc;
    int ok = 0;
    for (size_t i = 0; i < ngot; i++)
        ok |= vigil__crypto_equal(got[i], want, MAC_LEN);
    memset(want, 0, sizeof(want));
    return ok ? VIGIL_OK : vigil__error_set(VIGIL_EAUTH, "signature: mismatch");
}
