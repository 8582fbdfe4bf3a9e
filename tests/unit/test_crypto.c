/* lib/crypto: SHA-256 against the FIPS 180-2 examples, HMAC-SHA256 against
 * the RFC 4231 test cases, streaming against one-shot, constant-time compare
 * and random bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "testutil.h"

static void unhex(const char *hex, unsigned char *out, size_t *len)
{
    size_t n = strlen(hex) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned int v;
        ck_assert_int_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (unsigned char)v;
    }
    *len = n;
}

static void assert_digest(const unsigned char *got, const char *hex, size_t nbytes)
{
    char buf[2 * VIGIL__CRYPTO_SHA256_LEN + 1];
    for (size_t i = 0; i < nbytes; i++)
        snprintf(buf + 2 * i, 3, "%02x", got[i]);
    buf[2 * nbytes] = '\0';
    ck_assert_str_eq(buf, hex);
}

/* FIPS 180-2, appendix B, and the empty message. */
static const struct {
    const char *msg;
    const char *hex;
} k_sha[] = {
    {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
};

START_TEST(sha256_fips_vectors)
{
    unsigned char d[VIGIL__CRYPTO_SHA256_LEN];
    for (size_t i = 0; i < sizeof(k_sha) / sizeof(k_sha[0]); i++) {
        ck_assert_int_eq(vigil__crypto_sha256(d, k_sha[i].msg, strlen(k_sha[i].msg)), VIGIL_OK);
        assert_digest(d, k_sha[i].hex, sizeof(d));
    }
}
END_TEST

START_TEST(sha256_streaming_million_a)
{
    /* FIPS 180-2 B.3: one million 'a', fed in uneven pieces. */
    static char chunk[4097];
    memset(chunk, 'a', sizeof(chunk));
    vigil__crypto_sha256_ctx ctx;
    ck_assert_int_eq(vigil__crypto_sha256_start(&ctx), VIGIL_OK);
    size_t left = 1000000;
    while (left) {
        size_t n = left < sizeof(chunk) ? left : sizeof(chunk);
        ck_assert_int_eq(vigil__crypto_sha256_update(&ctx, chunk, n), VIGIL_OK);
        left -= n;
    }
    ck_assert_int_eq(vigil__crypto_sha256_update(&ctx, NULL, 0), VIGIL_OK);
    unsigned char d[VIGIL__CRYPTO_SHA256_LEN];
    ck_assert_int_eq(vigil__crypto_sha256_finish(&ctx, d), VIGIL_OK);
    vigil__crypto_sha256_free(&ctx);
    assert_digest(d, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", sizeof(d));

    /* the streamed digest of "abc" equals the one-shot one */
    ck_assert_int_eq(vigil__crypto_sha256_start(&ctx), VIGIL_OK);
    ck_assert_int_eq(vigil__crypto_sha256_update(&ctx, "a", 1), VIGIL_OK);
    ck_assert_int_eq(vigil__crypto_sha256_update(&ctx, "bc", 2), VIGIL_OK);
    ck_assert_int_eq(vigil__crypto_sha256_finish(&ctx, d), VIGIL_OK);
    vigil__crypto_sha256_free(&ctx);
    assert_digest(d, k_sha[0].hex, sizeof(d));
}
END_TEST

/* RFC 4231, test cases 1 to 7 (5 compares the first 128 bits only). */
static const struct {
    const char *key_hex;
    const char *data_hex; /* NULL: data is the text below */
    const char *data;
    const char *mac_hex;
} k_hmac[] = {
    {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", NULL, "Hi There",
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
    {"4a656665", NULL, "what do ya want for nothing?",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
     "dddddddddddd",
     NULL, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
    {"0102030405060708090a0b0c0d0e0f10111213141516171819",
     "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
     "cdcdcdcdcdcd",
     NULL, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
    {"0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c", NULL, "Test With Truncation",
     "a3b6167473100ee06e0c796c2955552b"},
    {NULL, NULL, "Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
    {NULL, NULL,
     "This is a test using a larger than block-size key and a larger than block-size data. The "
     "key needs to be hashed before being used by the HMAC algorithm.",
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
};

static void hmac_case(size_t i, unsigned char *key, size_t *klen, unsigned char *data, size_t *dlen)
{
    if (k_hmac[i].key_hex) {
        unhex(k_hmac[i].key_hex, key, klen);
    } else { /* cases 6 and 7: 131 bytes of 0xaa */
        memset(key, 0xaa, 131);
        *klen = 131;
    }
    if (k_hmac[i].data_hex) {
        unhex(k_hmac[i].data_hex, data, dlen);
    } else {
        *dlen = strlen(k_hmac[i].data);
        memcpy(data, k_hmac[i].data, *dlen);
    }
}

START_TEST(hmac_sha256_rfc4231)
{
    for (size_t i = 0; i < sizeof(k_hmac) / sizeof(k_hmac[0]); i++) {
        unsigned char key[200], data[200], mac[VIGIL__CRYPTO_SHA256_LEN];
        size_t klen, dlen;
        hmac_case(i, key, &klen, data, &dlen);
        size_t want = strlen(k_hmac[i].mac_hex) / 2;
        ck_assert_int_eq(vigil__crypto_hmac_sha256(mac, key, klen, data, dlen), VIGIL_OK);
        assert_digest(mac, k_hmac[i].mac_hex, want);

        /* streamed byte by byte, twice on one keyed context: finish starts the next message */
        vigil__crypto_hmac_ctx ctx;
        ck_assert_int_eq(vigil__crypto_hmac_start(&ctx, key, klen), VIGIL_OK);
        for (int round = 0; round < 2; round++) {
            memset(mac, 0, sizeof(mac));
            for (size_t k = 0; k < dlen; k++)
                ck_assert_int_eq(vigil__crypto_hmac_update(&ctx, data + k, 1), VIGIL_OK);
            ck_assert_int_eq(vigil__crypto_hmac_finish(&ctx, mac), VIGIL_OK);
            assert_digest(mac, k_hmac[i].mac_hex, want);
        }
        /* reset drops a message in progress */
        ck_assert_int_eq(vigil__crypto_hmac_update(&ctx, "junk", 4), VIGIL_OK);
        ck_assert_int_eq(vigil__crypto_hmac_reset(&ctx), VIGIL_OK);
        ck_assert_int_eq(vigil__crypto_hmac_update(&ctx, data, dlen), VIGIL_OK);
        ck_assert_int_eq(vigil__crypto_hmac_finish(&ctx, mac), VIGIL_OK);
        assert_digest(mac, k_hmac[i].mac_hex, want);
        vigil__crypto_hmac_free(&ctx);
    }
}
END_TEST

START_TEST(equal_is_exact)
{
    unsigned char a[32], b[32];
    memset(a, 7, sizeof(a));
    memcpy(b, a, sizeof(b));
    ck_assert_int_eq(vigil__crypto_equal(a, b, sizeof(a)), 1);
    ck_assert_int_eq(vigil__crypto_equal(a, b, 0), 1);
    for (size_t i = 0; i < sizeof(a); i++) {
        b[i] ^= 0x80;
        ck_assert_int_eq(vigil__crypto_equal(a, b, sizeof(a)), 0);
        b[i] ^= 0x80;
    }
}
END_TEST

START_TEST(random_bytes_differ)
{
    unsigned char a[32], b[32], zero[32];
    memset(zero, 0, sizeof(zero));
    ck_assert_int_eq(vigil__crypto_random(a, sizeof(a)), VIGIL_OK);
    ck_assert_int_eq(vigil__crypto_random(b, sizeof(b)), VIGIL_OK);
    ck_assert_int_ne(memcmp(a, b, sizeof(a)), 0);
    ck_assert_int_ne(memcmp(a, zero, sizeof(a)), 0);
    ck_assert_int_eq(vigil__crypto_random(a, 0), VIGIL_OK);
    /* more than getrandom(2) hands out in one call for large requests */
    size_t big = 40u << 20;
    unsigned char *p = calloc(1, big);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(vigil__crypto_random(p, big), VIGIL_OK);
    ck_assert_int_ne(memcmp(p + big - sizeof(zero), zero, sizeof(zero)), 0);
    free(p);
}
END_TEST

static Suite *crypto_suite(void)
{
    Suite *s = suite_create("crypto");
    TCase *tc = tcase_create("crypto");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, sha256_fips_vectors);
    tcase_add_test(tc, sha256_streaming_million_a);
    tcase_add_test(tc, hmac_sha256_rfc4231);
    tcase_add_test(tc, equal_is_exact);
    tcase_add_test(tc, random_bytes_differ);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(crypto_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
