/* The host of an action request, which picks its remediator in a fleet
 * (vigil_hub_options.remediators): the series' host tag, a drift series'
 * source, the request's host parameter, its target's "<host>/" prefix. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "hub/hub_int.h"
#include "testutil.h"

static const char *host_of(const char *series, const char *target, const char *param)
{
    static char out[64];
    vigil_action_param p = {"host", param};
    vigil_action_request r = VIGIL_ACTION_REQUEST_INIT;
    r.action = "a";
    r.target = target;
    if (param) {
        r.params = &p;
        r.nparams = 1;
    }
    return vigil__hub_request_host(out, sizeof(out), &r, series) ? out : NULL;
}

START_TEST(host_of_a_request)
{
    ck_assert_str_eq(host_of("up{host=\"web-01\",process=\"demo\"}", "demo", NULL), "web-01");
    ck_assert_str_eq(host_of("up{a=\"x,host=\\\"no\\\"\",host=\"db-01\"}", "t", NULL), "db-01");
    ck_assert_str_eq(host_of("up{host=\"h\\\\1\"}", "t", NULL), "h\\1");
    ck_assert_str_eq(host_of("drift/web-02/File/motd", "/etc/motd", NULL), "web-02");
    ck_assert_str_eq(host_of("up{process=\"demo\"}", "demo", "db-07"), "db-07");
    ck_assert_str_eq(host_of(NULL, "db-01/motd", NULL), "db-01");
    ck_assert_str_eq(host_of(NULL, "db-01/motd", "web-09"), "web-09");
    ck_assert_ptr_null(host_of(NULL, "demo", NULL));
    ck_assert_ptr_null(host_of(NULL, "/etc/motd", NULL));
    ck_assert_ptr_null(host_of("up{host=\"\"}", "demo", NULL));
    ck_assert_ptr_null(host_of("drift/web-02", "x", NULL));
    ck_assert_ptr_null(host_of("up", "demo", ""));
    /* cut to the buffer, never past it */
    char small[4];
    vigil_action_request r = VIGIL_ACTION_REQUEST_INIT;
    r.target = "abcdefgh/x";
    ck_assert_int_eq(vigil__hub_request_host(small, sizeof(small), &r, NULL), 1);
    ck_assert_str_eq(small, "abc");
    ck_assert_int_eq(vigil__hub_request_host(small, sizeof(small), &r, "u{host=\"longhost\"}"), 1);
    ck_assert_str_eq(small, "lon");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hub_route");
    TCase *tc = tcase_create("host");
    tcase_add_test(tc, host_of_a_request);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
