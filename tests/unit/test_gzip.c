/* lib/gzip: round trips, concatenated members, the inflate cap (a zip bomb
 * refused with VIGIL_ELIMIT and bounded memory), corrupt and truncated input,
 * CRC-32, and allocation failures. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gzip/gzip.h"
#include "testutil.h"

/* Deterministic bytes that compress somewhat (a small alphabet). */
static void fill(char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (char)('a' + (seed >> 16) % 16);
    }
}

static void round_trip(size_t n)
{
    char *in = malloc(n ? n : 1);
    fill(in, n, (unsigned)n);
    vigil_buf gz = VIGIL_BUF_INIT, back = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil__gzip_compress(&gz, in, n), VIGIL_OK);
    ck_assert_uint_ge(gz.size, 18); /* header and trailer at least */
    ck_assert_uint_eq((unsigned char)gz.ptr[0], 0x1f);
    ck_assert_uint_eq((unsigned char)gz.ptr[1], 0x8b);
    ck_assert_int_eq(vigil__gzip_inflate(&back, gz.ptr, gz.size, n), VIGIL_OK);
    ck_assert_uint_eq(back.size, n);
    ck_assert_int_eq(memcmp(back.ptr, in, n), 0);
    ck_assert_int_eq(back.ptr[n], '\0');
    vigil_buf_dispose(&gz);
    vigil_buf_dispose(&back);
    free(in);
}

START_TEST(round_trips)
{
    size_t sizes[] = {0, 1, 100, 511, 512, 8192, 70000, 3u << 20};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        round_trip(sizes[i]);
}
END_TEST

START_TEST(concatenated_members)
{
    vigil_buf a = VIGIL_BUF_INIT, b = VIGIL_BUF_INIT, both = VIGIL_BUF_INIT, out = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil__gzip_compress(&a, "hello, ", 7), VIGIL_OK);
    ck_assert_int_eq(vigil__gzip_compress(&b, "world", 5), VIGIL_OK);
    ck_assert_int_eq(vigil__buf_put(&both, a.ptr, a.size), VIGIL_OK);
    ck_assert_int_eq(vigil__buf_put(&both, b.ptr, b.size), VIGIL_OK);
    ck_assert_int_eq(vigil__gzip_inflate(&out, both.ptr, both.size, 100), VIGIL_OK);
    ck_assert_str_eq(out.ptr, "hello, world");
    /* the cap counts both members */
    ck_assert_int_eq(vigil__gzip_inflate(&out, both.ptr, both.size, 11), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "gunzip: output exceeds 11 bytes");
    ck_assert_uint_eq(out.size, 0);
    /* garbage after a member is corrupt, not ignored */
    ck_assert_int_eq(vigil__buf_put(&both, "xx", 2), VIGIL_OK);
    ck_assert_int_eq(vigil__gzip_inflate(&out, both.ptr, both.size, 100), VIGIL_ECORRUPT);
    vt_assert_error(VIGIL_ECORRUPT, "invalid gzip data");
    vigil_buf_dispose(&a);
    vigil_buf_dispose(&b);
    vigil_buf_dispose(&both);
    vigil_buf_dispose(&out);
}
END_TEST

START_TEST(cap_is_exact)
{
    char in[5000];
    fill(in, sizeof(in), 3);
    vigil_buf gz = VIGIL_BUF_INIT, out = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil__gzip_compress(&gz, in, sizeof(in)), VIGIL_OK);
    ck_assert_int_eq(vigil__gzip_inflate(&out, gz.ptr, gz.size, sizeof(in)), VIGIL_OK);
    ck_assert_uint_eq(out.size, sizeof(in));
    ck_assert_int_eq(vigil__gzip_inflate(&out, gz.ptr, gz.size, sizeof(in) - 1), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "gunzip: output exceeds 4999 bytes");
    ck_assert_uint_eq(out.size, 0);
    ck_assert_int_eq(vigil__gzip_inflate(&out, gz.ptr, gz.size, 0), VIGIL_ELIMIT);
    vigil_buf_dispose(&gz);
    vigil_buf_dispose(&out);
}
END_TEST

START_TEST(zip_bomb_is_refused)
{
    /* 64 MiB of zeros compress to about 64 KiB; inflating with a 1 MiB cap
     * stops at the cap, having allocated about twice the cap at most. */
    size_t raw = 64u << 20, cap = 1u << 20;
    char *zeros = calloc(1, raw);
    ck_assert_ptr_nonnull(zeros);
    vigil_buf gz = VIGIL_BUF_INIT, out = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil__gzip_compress(&gz, zeros, raw), VIGIL_OK);
    free(zeros);
    ck_assert_uint_lt(gz.size, raw / 500);
    ck_assert_int_eq(vigil__gzip_inflate(&out, gz.ptr, gz.size, cap), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "gunzip: output exceeds 1048576 bytes");
    ck_assert_uint_eq(out.size, 0);
    ck_assert_uint_le(out.asize, 2 * cap + 2);
    vigil_buf_dispose(&gz);
    vigil_buf_dispose(&out);
}
END_TEST

START_TEST(corrupt_and_truncated)
{
    char in[2000];
    fill(in, sizeof(in), 9);
    vigil_buf gz = VIGIL_BUF_INIT, out = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil__gzip_compress(&gz, in, sizeof(in)), VIGIL_OK);
    ck_assert_int_eq(vigil__gzip_inflate(&out, gz.ptr, gz.size - 3, 1 << 20), VIGIL_ECORRUPT);
    vt_assert_error(VIGIL_ECORRUPT, "gunzip: truncated gzip data");
    ck_assert_int_eq(vigil__gzip_inflate(&out, "", 0, 1 << 20), VIGIL_ECORRUPT);
    vt_assert_error(VIGIL_ECORRUPT, "truncated");
    ck_assert_int_eq(vigil__gzip_inflate(&out, "plain text, no gzip", 19, 1 << 20), VIGIL_ECORRUPT);
    vt_assert_error(VIGIL_ECORRUPT, "invalid gzip data");
    gz.ptr[gz.size - 5] ^= 1; /* the CRC-32 of the trailer */
    ck_assert_int_eq(vigil__gzip_inflate(&out, gz.ptr, gz.size, 1 << 20), VIGIL_ECORRUPT);
    vt_assert_error(VIGIL_ECORRUPT, "incorrect data check");
    ck_assert_uint_eq(out.size, 0);
    vigil_buf_dispose(&gz);
    vigil_buf_dispose(&out);
}
END_TEST

START_TEST(crc32_check_value)
{
    ck_assert_uint_eq(vigil__gzip_crc32(0, "123456789", 9), 0xcbf43926u);
    ck_assert_uint_eq(vigil__gzip_crc32(0, "", 0), 0);
    uint32_t c = vigil__gzip_crc32(0, "1234", 4);
    ck_assert_uint_eq(vigil__gzip_crc32(c, "56789", 5), 0xcbf43926u);
}
END_TEST

typedef struct {
    vigil_buf gz, out;
} oom_ctx;

static int oom_op(void *p)
{
    oom_ctx *x = p;
    char in[3000];
    fill(in, sizeof(in), 5);
    int rc = vigil__gzip_compress(&x->gz, in, sizeof(in));
    if (!rc)
        rc = vigil__gzip_inflate(&x->out, x->gz.ptr, x->gz.size, sizeof(in));
    if (!rc && (x->out.size != sizeof(in) || memcmp(x->out.ptr, in, sizeof(in)) != 0))
        rc = VIGIL_ERROR;
    return rc;
}

static void oom_free(void *p)
{
    oom_ctx *x = p;
    vigil_buf_dispose(&x->gz);
    vigil_buf_dispose(&x->out);
}

START_TEST(oom_sweep)
{
    oom_ctx x = {VIGIL_BUF_INIT, VIGIL_BUF_INIT};
    ck_assert_int_gt(vt_oom_sweep(oom_op, oom_free, &x, 0), 2);
}
END_TEST

static Suite *gzip_suite(void)
{
    Suite *s = suite_create("gzip");
    TCase *tc = tcase_create("gzip");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, round_trips);
    tcase_add_test(tc, concatenated_members);
    tcase_add_test(tc, cap_is_exact);
    tcase_add_test(tc, zip_bomb_is_refused);
    tcase_add_test(tc, corrupt_and_truncated);
    tcase_add_test(tc, crc32_check_value);
    tcase_add_test(tc, oom_sweep);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(gzip_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
