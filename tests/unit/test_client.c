/* The ingest client in-process: option checks, batch ids, the gzip codec it
 * sends with. Its exchanges with a server are in
 * tests/integration/test_client_http.c. */
#include <stdlib.h>
#include <string.h>

#include "client_testutil.h"
#include "gzip/gzip.h"
#include "testutil.h"
#include "vigil/client.h"

START_TEST(bad_options)
{
    vigil_client *c = NULL;
    vigil_client_options o;
    ck_assert_int_eq(vigil_client_options_init(&o, 99), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION,
                    "client options: version 99 is not supported (this library reads version 1)");
    ck_assert_int_eq(vigil_client_options_init(NULL, VIGIL_CLIENT_OPTIONS_VERSION), VIGIL_EINVAL);
    vigil_client_options_init(&o, VIGIL_CLIENT_OPTIONS_VERSION);
    ck_assert_int_eq(vigil_client_new(&c, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "at least one hub URL");
    ck_assert_int_eq(vigil_client_new(NULL, &o), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_client_new(&c, NULL), VIGIL_EINVAL);

    static const struct {
        const char *url, *msg;
    } bad[] = {{"ftp://127.0.0.1/", "scheme \"ftp\" is not allowed"},
               {"file:///etc/passwd", "is not allowed"},
               {"http://user:pw@127.0.0.1:7600", "credentials in a URL are refused"},
               {"http://127.0.0.1:7600/?x=1", "takes no query string"},
               {"http://127.0.0.1 :7600", "space or control character"},
               {"not a url", "space or control character"},
               {"127.0.0.1:7600", "is not a valid URL"},
               {"", "is empty"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *u[1] = {bad[i].url};
        o.urls = u;
        o.nurls = 1;
        ck_assert_msg(vigil_client_new(&c, &o) == VIGIL_EINVAL, "accepted %s", bad[i].url);
        vt_assert_error(VIGIL_EINVAL, bad[i].msg);
        ck_assert_ptr_null(c);
    }
    const char *many[17];
    for (int i = 0; i < 17; i++)
        many[i] = "http://127.0.0.1:1";
    o.urls = many;
    o.nurls = 17;
    ck_assert_int_eq(vigil_client_new(&c, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "at most 16 hub URLs");
    o.nurls = 1;
    o.backoff_base_ms = -1;
    ck_assert_int_eq(vigil_client_new(&c, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "backoff_base_ms must not be negative");
    o.backoff_base_ms = 0;
    o.cert_file = "/tmp/cert.pem";
    ck_assert_int_eq(vigil_client_new(&c, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "cert_file and key_file go together");
    o.cert_file = NULL;
    o.version = 7;
    ck_assert_int_eq(vigil_client_new(&c, &o), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "client options: version 7 is not supported");
    o.version = VIGIL_CLIENT_OPTIONS_VERSION;

    /* tokens: bad characters refused, never quoted; an unset variable only warns */
    setenv("VT_BAD_TOKEN", "abc\r\nX-Evil: 1", 1);
    o.token_env = "VT_BAD_TOKEN";
    ck_assert_int_eq(vigil_client_new(&c, &o), VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE, "$VT_BAD_TOKEN contains a space or a non-printable character");
    ck_assert_ptr_null(strstr(vigil_error_last()->message, "Evil"));
    unsetenv("VT_UNSET_TOKEN");
    o = fast_opts(1);
    o.token_env = "VT_UNSET_TOKEN";
    c = new_client(&o);
    ck_assert_ptr_nonnull(strstr(g_log, "token variable is not set"));
    ck_assert_ptr_nonnull(strstr(g_log, "token_env=VT_UNSET_TOKEN"));
    vigil_client_stats s = VIGIL_CLIENT_STATS_INIT;
    s.version = 9;
    ck_assert_int_eq(vigil_client_stats_get(c, &s), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "client stats: version 9 is not supported");
    ck_assert_int_eq(vigil_client_stats_get(NULL, &s), VIGIL_EINVAL);
    vigil_client_free(c);
    vigil_client_free(NULL);
}
END_TEST

START_TEST(batch_ids_are_random_hex)
{
    char a[33], b[33], small[10];
    ck_assert_int_eq(vigil_client_batch_id(a, sizeof(a)), VIGIL_OK);
    ck_assert_int_eq(vigil_client_batch_id(b, sizeof(b)), VIGIL_OK);
    ck_assert(is_hex32(a));
    ck_assert(is_hex32(b));
    ck_assert_str_ne(a, b);
    ck_assert_int_eq(vigil_client_batch_id(small, sizeof(small)), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "at least 33 bytes");
    ck_assert_int_eq(vigil_client_batch_id(NULL, 40), VIGIL_EINVAL);
}
END_TEST

START_TEST(gzip_round_trip_and_bad_input)
{
    char text[20000];
    for (size_t i = 0; i < sizeof(text); i++)
        text[i] = (char)('a' + (i * 7) % 26);
    vigil_buf gz = VIGIL_BUF_INIT, back = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil__gzip_compress(&gz, text, sizeof(text)), VIGIL_OK);
    ck_assert_uint_lt(gz.size, sizeof(text));
    ck_assert_int_eq(vigil__gzip_inflate(&back, gz.ptr, gz.size, 1 << 20), VIGIL_OK);
    ck_assert_uint_eq(back.size, sizeof(text));
    ck_assert_int_eq(memcmp(back.ptr, text, sizeof(text)), 0);
    ck_assert_int_eq(vigil__gzip_inflate(&back, gz.ptr, gz.size, 1000), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "exceeds 1000 bytes");
    ck_assert_int_eq(vigil__gzip_inflate(&back, gz.ptr, gz.size / 2, 1 << 20), VIGIL_ECORRUPT);
    vt_assert_error(VIGIL_ECORRUPT, "truncated");
    ck_assert_int_eq(vigil__gzip_inflate(&back, "not gzip at all", 15, 1 << 20), VIGIL_ECORRUPT);
    vt_assert_error(VIGIL_ECORRUPT, "invalid gzip data");
    ck_assert_uint_eq(back.size, 0);
    vigil_buf_dispose(&gz);
    vigil_buf_dispose(&back);
}
END_TEST

START_TEST(request_bad_arguments)
{
    vigil_client *c = NULL;
    vigil_client_options o = VIGIL_CLIENT_OPTIONS_INIT;
    const char *urls[] = {"http://127.0.0.1:1"};
    o.urls = urls;
    o.nurls = 1;
    ck_assert_int_eq(vigil_client_new(&c, &o), VIGIL_OK);
    vigil_buf out = VIGIL_BUF_INIT;
    int status = -1;
    ck_assert_int_eq(vigil_client_request(NULL, "GET", "/v1/agents", NULL, 0, &status, &out),
                     VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "client request: NULL argument");
    ck_assert_int_eq(status, 0);
    ck_assert_int_eq(vigil_client_request(c, "GET", "/x", NULL, 3, &status, &out), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_client_request(c, "GET", "/x", NULL, 0, NULL, &out), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_client_request(c, "GET", "/x", NULL, 0, &status, NULL), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_client_request(c, "PATCH", "/x", NULL, 0, &status, &out), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "client request: method must be GET, POST, PUT or DELETE");
    ck_assert_int_eq(vigil_client_request(c, "GET", "v1/agents", NULL, 0, &status, &out),
                     VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "the path must start with '/'");
    ck_assert_int_eq(vigil_client_request(c, "GET", "/v1/a b", NULL, 0, &status, &out),
                     VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "the path has a space or control character");
    char *longp = malloc(8194);
    memset(longp, 'a', 8193);
    longp[0] = '/';
    longp[8193] = '\0';
    ck_assert_int_eq(vigil_client_request(c, "GET", longp, NULL, 0, &status, &out), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "at most 8192 bytes");
    free(longp);
    /* nothing listens on port 1 */
    ck_assert_int_eq(vigil_client_request(c, "GET", "/v1/agents", NULL, 0, &status, &out),
                     VIGIL_ENETWORK);
    vt_assert_error(VIGIL_ENETWORK, "client: GET /v1/agents failed: ");
    ck_assert_int_eq(status, 0);
    ck_assert_ptr_null(out.ptr);
    vigil_client_free(c);
}
END_TEST

static Suite *client_suite(void)
{
    Suite *s = suite_create("client");
    TCase *tc = tcase_create("client");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, bad_options);
    tcase_add_test(tc, batch_ids_are_random_hex);
    tcase_add_test(tc, gzip_round_trip_and_bad_input);
    tcase_add_test(tc, request_bad_arguments);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(client_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
