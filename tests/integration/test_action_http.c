/* The webhook action against a real HTTP server on loopback (ht_server):
 * signed JSON bodies and headers, bounded retries, refused connections, and a
 * hanging server that runs the action into its deadline. */
#include <mbedtls/md.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "action_testutil.h"
#include "httptest.h"

static const char *hook_getenv(void *payload, const char *name)
{
    (void)payload;
    if (strcmp(name, "PAGER_TOKEN") == 0)
        return "s3cr3t-token";
    if (strcmp(name, "PAGER_HMAC_SECRET") == 0)
        return "hmac-key";
    return NULL;
}

static int64_t fixed_clock(void *payload)
{
    (void)payload;
    return 1700000000123LL;
}

static vigil_action_registry *hook_registry(int port, const char *extra)
{
    vigil_action_registry_options o = VIGIL_ACTION_REGISTRY_OPTIONS_INIT;
    o.getenv = hook_getenv;
    o.clock = fixed_clock;
    o.host = "testhost";
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "actions:\n  - {name: page, type: webhook, url: 'http://127.0.0.1:%d/page', "
             "params: {sev: '[a-z]+'}, retry_backoff: 10ms%s}\n",
             port, extra);
    return at_configure(&o, yaml);
}

static vigil_action_result page(vigil_action_registry *r)
{
    vigil_action_param p = {"sev", "high"};
    vigil_action_request rq = at_req("page", "h1");
    rq.id = "w1";
    rq.params = &p;
    rq.nparams = 1;
    rq.reason = "disk \"full\"\n";
    rq.policy = "disk_full";
    vigil_action_result res = VIGIL_ACTION_RESULT_INIT;
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_OK);
    return res;
}

START_TEST(webhook_posts_signed_json)
{
    ht_server *s = ht_server_start();
    /* the first attempt fails, the retry succeeds */
    ht_action script[] = {{HT_REPLY, 500, "reply0", NULL}, {HT_REPLY, 201, "reply1", NULL}};
    ht_server_script(s, script, 2);
    vigil_action_registry *r = hook_registry(s->port, ", token_env: PAGER_TOKEN, secret_env: "
                                                      "PAGER_HMAC_SECRET, retries: 2");
    vigil_action_result res = page(r);
    ck_assert_int_eq(res.status, VIGIL_ACTION_SUCCEEDED);
    ck_assert_str_eq(res.output, "HTTP 201\nreply1");
    ck_assert_int_eq(ht_server_requests(s), 2);
    const char *want_body = "{\"id\":\"w1\",\"action\":\"page\",\"target\":\"h1\",\"params\":{"
                            "\"sev\":\"high\"},\"reason\":\"disk \\\"full\\\"\\n\",\"policy\":"
                            "\"disk_full\",\"host\":\"testhost\"}";
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < 2; i++) {
        const ht_request *q = &s->req[i];
        ck_assert_str_eq(q->method, "POST");
        ck_assert_str_eq(q->path, "/page");
        ck_assert_str_eq(q->body, want_body);
        ck_assert_str_eq(q->auth, "Bearer s3cr3t-token");
        ck_assert_str_eq(q->ctype, "application/json");
        /* check the signature as a receiver would */
        char msg[8300];
        int n = snprintf(msg, sizeof(msg), "1700000000.%s", q->body);
        unsigned char mac[32];
        ck_assert_int_eq(mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256),
                                         (const unsigned char *)"hmac-key", 8,
                                         (const unsigned char *)msg, (size_t)n, mac),
                         0);
        char want_sig[128] = "t=1700000000,v1=";
        for (int k = 0; k < 32; k++)
            snprintf(want_sig + 16 + 2 * k, 3, "%02x", mac[k]);
        ck_assert_str_eq(q->signature, want_sig);
    }
    pthread_mutex_unlock(&s->mu);
    vigil_action_result_clear(&res);
    vigil_action_registry_free(r);
    ht_server_stop(s);
}
END_TEST

START_TEST(webhook_retries_are_bounded)
{
    ht_server *s = ht_server_start();
    ht_action script[] = {{HT_REPLY, 503, "reply0", NULL},
                          {HT_REPLY, 503, "reply1", NULL},
                          {HT_REPLY, 503, "reply2", NULL}};
    ht_server_script(s, script, 3);
    ht_server_default(s, HT_REPLY, 503, "reply3");
    vigil_action_registry *r = hook_registry(s->port, ", retries: 2");
    vigil_action_result res = page(r);
    ck_assert_int_eq(res.status, VIGIL_ACTION_FAILED);
    ck_assert_str_eq(res.reason, "http_status");
    ck_assert_str_eq(res.output, "HTTP 503 after 3 attempts\nreply2");
    ck_assert_int_eq(ht_server_requests(s), 3);
    pthread_mutex_lock(&s->mu);
    ck_assert_str_eq(s->req[0].auth, ""); /* no token configured */
    ck_assert_str_eq(s->req[0].signature, "");
    pthread_mutex_unlock(&s->mu);
    vigil_action_result_clear(&res);
    vigil_action_registry_free(r);
    ht_server_stop(s);

    /* a client error is not retried */
    s = ht_server_start();
    ht_action not_found[] = {{HT_REPLY, 404, "reply0", NULL}};
    ht_server_script(s, not_found, 1);
    r = hook_registry(s->port, ", retries: 3");
    res = page(r);
    ck_assert_str_eq(res.output, "HTTP 404 after 1 attempt\nreply0");
    ck_assert_int_eq(ht_server_requests(s), 1);
    vigil_action_result_clear(&res);
    vigil_action_registry_free(r);
    ht_server_stop(s);
}
END_TEST

START_TEST(webhook_network_errors_and_timeout)
{
    /* nothing listens on that port */
    vigil_action_registry *r = hook_registry(ht_closed_port(), ", retries: 1");
    vigil_action_result res = page(r);
    ck_assert_int_eq(res.status, VIGIL_ACTION_FAILED);
    ck_assert_str_eq(res.reason, "network");
    ck_assert_msg(strncmp(res.output, "no answer after 2 attempts: ", 28) == 0, "%s", res.output);
    vigil_action_result_clear(&res);
    vigil_action_registry_free(r);

    /* the server reads the request and never answers: the deadline ends the
     * action, and that is a timeout however libcurl's clock and ours round
     * it (it came out FAILED/network one run in a hundred under load) */
    ht_server *s = ht_server_start();
    ht_server_default(s, HT_HANG, 0, NULL);
    r = hook_registry(s->port, ", retries: 0, timeout: 300ms");
    res = page(r);
    ck_assert_msg(res.status == VIGIL_ACTION_TIMEOUT, "status %s, output %s",
                  vigil_action_status_name(res.status), res.output);
    ck_assert_str_eq(res.reason, "timeout");
    ck_assert_msg(strncmp(res.output, "no answer within the timeout (300 ms)", 37) == 0, "%s",
                  res.output);
    /* the server thread records the request on its own schedule */
    ck_assert_int_eq(ht_server_wait_requests(s, 1, 5000), 1);
    vigil_action_result_clear(&res);
    vigil_action_registry_free(r);
    ht_server_stop(s);
}
END_TEST

START_TEST(webhook_dry_run_hides_url_path)
{
    vigil_action_registry *r = hook_registry(9, ", token_env: PAGER_TOKEN, dry_run: true");
    vigil_action_result res = page(r);
    ck_assert_int_eq(res.status, VIGIL_ACTION_DRY_RUN);
    ck_assert_str_eq(res.output, "dry run: page (webhook): would POST the request to "
                                 "http://127.0.0.1:9 with a bearer token");
    vigil_action_result_clear(&res);
    vigil_action_registry_free(r);
}
END_TEST

static Suite *action_http_suite(void)
{
    Suite *s = suite_create("action_http");
    TCase *tc = tcase_create("webhook");
    tcase_set_timeout(tc, 15);
    tcase_add_test(tc, webhook_posts_signed_json);
    tcase_add_test(tc, webhook_retries_are_bounded);
    tcase_add_test(tc, webhook_network_errors_and_timeout);
    tcase_add_test(tc, webhook_dry_run_hides_url_path);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(action_http_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
