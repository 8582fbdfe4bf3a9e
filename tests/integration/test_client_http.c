/* The ingest client against a scripted HTTP server on 127.0.0.1 (ht_server):
 * gzip bodies, token header, keep-alive, retries and backoff, Retry-After,
 * drops, 401/403, dropped and hanging connections, failover, cancellation,
 * TLS. Its in-process cases are in tests/unit/test_client.c. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/client_int.h"
#include "client_testutil.h"
#include "gzip/gzip.h"
#include "httptest.h"
#include "testutil.h"
#include "vigil/client.h"

/* ---- helpers ------------------------------------------------------------------------- */

static vigil_batch *make_batch(int n)
{
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    ck_assert_int_eq(vigil_batch_set_agent(b, "h1"), VIGIL_OK);
    for (int i = 0; i < n; i++) {
        char cpu[16];
        snprintf(cpu, sizeof(cpu), "%d", i);
        vigil_tag t[2] = {{"cpu", cpu}, {"host", "h1"}};
        vigil_metric m = {"cpu_usage", 0.25 * i, 1732650000000LL + i, t, 2, NULL};
        ck_assert_int_eq(vigil_batch_add(b, &m), VIGIL_OK);
    }
    return b;
}

static vigil_client_stats get_stats(const vigil_client *c)
{
    vigil_client_stats s = VIGIL_CLIENT_STATS_INIT;
    ck_assert_int_eq(vigil_client_stats_get(c, &s), VIGIL_OK);
    return s;
}

/* ---- tests ---------------------------------------------------------------------------- */

START_TEST(gzip_token_keepalive_and_body)
{
    setenv("VT_CLIENT_TOKEN", "s3cret-token", 1);
    ht_server *h = ht_server_start();
    vigil_client_options o = fast_opts(h->port);
    o.token_env = "VT_CLIENT_TOKEN";
    vigil_client *c = new_client(&o);
    char ids[3][129];
    for (int k = 0; k < 3; k++) {
        vigil_batch *b = make_batch(3 + k);
        ck_assert_int_eq(vigil_client_send(c, b), VIGIL_OK);
        ck_assert(is_hex32(vigil_batch_id(b)));
        snprintf(ids[k], sizeof(ids[k]), "%s", vigil_batch_id(b));
        vigil_batch_free(b);
    }
    ck_assert_str_ne(ids[0], ids[1]);
    ck_assert_str_ne(ids[1], ids[2]);
    vigil_client_stats s = get_stats(c);
    ck_assert_uint_eq(s.sent, 3);
    ck_assert_uint_eq(s.requests, 3);
    ck_assert_uint_eq(s.retried, 0);
    ck_assert_int_eq(s.last_status, 202);
    vigil_client_free(c);
    ht_server_stop(h);
}
END_TEST

/* The same scenario, inspecting what the hub received. */
START_TEST(hub_receives_gzip_json_with_token_on_one_connection)
{
    setenv("VT_CLIENT_TOKEN", "s3cret-token", 1);
    ht_server *h = ht_server_start();
    vigil_client_options o = fast_opts(h->port);
    o.token_env = "VT_CLIENT_TOKEN";
    vigil_client *c = new_client(&o);
    vigil_batch *b = make_batch(4);
    ck_assert_int_eq(vigil_client_send(c, b), VIGIL_OK);
    vigil_batch *b2 = make_batch(1);
    ck_assert_int_eq(vigil_batch_set_id(b2, "caller-chosen-id"), VIGIL_OK);
    ck_assert_int_eq(vigil_client_send(c, b2), VIGIL_OK);
    vigil_client_free(c);

    pthread_mutex_lock(&h->mu);
    ck_assert_int_eq(h->nreq, 2);
    ck_assert_int_eq(h->nconn, 1); /* kept alive */
    ht_request *r = &h->req[0];
    ck_assert_str_eq(r->encoding, "gzip");
    ck_assert_str_eq(r->auth, "Bearer s3cret-token");
    ck_assert_str_eq(r->batch_id, vigil_batch_id(b));
    /* the inflated body decodes to the batch that was sent */
    vigil_batch *got = NULL;
    ck_assert_int_eq(vigil_batch_new(&got), VIGIL_OK);
    int rc = vigil_batch_decode_json(got, r->body, r->body_len, NULL);
    ck_assert_msg(rc == VIGIL_OK, "decode: %s (%s)", vigil_error_last()->message, r->body);
    ck_assert_uint_eq(vigil_batch_count(got), 4);
    ck_assert_str_eq(vigil_batch_agent(got), "h1");
    ck_assert_str_eq(vigil_batch_id(got), vigil_batch_id(b));
    for (size_t i = 0; i < 4; i++) {
        const vigil_metric *m = vigil_batch_get(got, i), *w = vigil_batch_get(b, i);
        ck_assert_str_eq(m->name, w->name);
        ck_assert_double_eq(m->value, w->value);
        ck_assert_int_eq(m->ts_ms, w->ts_ms);
        ck_assert_uint_eq(m->ntags, 2);
        ck_assert_str_eq(m->tags[0].value, w->tags[0].value);
    }
    ck_assert_str_eq(h->req[1].batch_id, "caller-chosen-id");
    pthread_mutex_unlock(&h->mu);
    /* the token is never logged */
    ck_assert_ptr_null(strstr(g_log, "s3cret"));
    vigil_batch_free(got);
    vigil_batch_free(b);
    vigil_batch_free(b2);
    ht_server_stop(h);
}
END_TEST

START_TEST(retries_5xx_with_the_same_batch_id)
{
    ht_server *h = ht_server_start();
    ht_action acts[] = {{HT_REPLY, 500, NULL, NULL}, {HT_REPLY, 503, NULL, NULL}};
    ht_server_script(h, acts, 2);
    vigil_client_options o = fast_opts(h->port);
    vigil_client *c = new_client(&o);
    vigil_batch *b = make_batch(2);
    ck_assert_int_eq(vigil_client_send(c, b), VIGIL_OK);
    vigil_client_stats s = get_stats(c);
    ck_assert_uint_eq(s.requests, 3);
    ck_assert_uint_eq(s.retried, 2);
    ck_assert_uint_eq(s.sent, 1);
    ck_assert_uint_eq(s.failed, 0);
    ck_assert_uint_eq(s.dropped, 0);
    pthread_mutex_lock(&h->mu);
    ck_assert_int_eq(h->nreq, 3);
    for (int i = 0; i < 3; i++)
        ck_assert_str_eq(h->req[i].batch_id, vigil_batch_id(b));
    pthread_mutex_unlock(&h->mu);
    ck_assert_ptr_nonnull(strstr(g_log, "status=500"));
    ck_assert_ptr_nonnull(strstr(g_log, "retrying after backoff"));
    vigil_batch_free(b);
    vigil_client_free(c);
    ht_server_stop(h);
}
END_TEST

START_TEST(gives_up_after_max_attempts)
{
    ht_server *h = ht_server_start();
    ht_server_default(h, HT_REPLY, 503, NULL);
    vigil_client_options o = fast_opts(h->port);
    o.max_attempts = 4;
    vigil_client *c = new_client(&o);
    vigil_batch *b = make_batch(1);
    ck_assert_int_eq(vigil_client_send(c, b), VIGIL_EOVERLOADED);
    vt_assert_error(VIGIL_EOVERLOADED, "hub answered 503");
    vigil_client_stats s = get_stats(c);
    ck_assert_uint_eq(s.requests, 4);
    ck_assert_uint_eq(s.retried, 3);
    ck_assert_uint_eq(s.failed, 1);
    ck_assert_uint_eq(s.sent, 0);
    ck_assert_int_eq(s.last_status, 503);
    /* a second send of the same batch keeps its id */
    char id[129];
    snprintf(id, sizeof(id), "%s", vigil_batch_id(b));
    ck_assert_int_eq(vigil_client_send(c, b), VIGIL_EOVERLOADED);
    ck_assert_str_eq(vigil_batch_id(b), id);
    pthread_mutex_lock(&h->mu);
    ck_assert_int_eq(h->nreq, 8);
    for (int i = 0; i < 8; i++)
        ck_assert_str_eq(h->req[i].batch_id, id);
    pthread_mutex_unlock(&h->mu);
    vigil_batch_free(b);
    vigil_client_free(c);
    ht_server_stop(h);
}
END_TEST

START_TEST(retry_after_is_honoured_and_capped)
{
    ht_server *h = ht_server_start();
    /* one hour: only the cap (20 ms) lets this test finish */
    ht_action acts[] = {{HT_REPLY, 429,
                         "{\"error\":{\"code\":\"overloaded\",\"message\":\"slow down\"}}",
                         "Retry-After: 3600\r\n"},
                        {HT_REPLY, 429, NULL, "Retry-After: Wed, 21 Oct 2099 07:28:00 GMT\r\n"}};
    ht_server_script(h, acts, 2);
    vigil_client_options o = fast_opts(h->port);
    vigil_client *c = new_client(&o);
    vigil_batch *b = make_batch(1);
    ck_assert_int_eq(vigil_client_send(c, b), VIGIL_OK);
    vigil_client_stats s = get_stats(c);
    ck_assert_uint_eq(s.requests, 3);
    ck_assert_uint_eq(s.retried, 2);
    ck_assert_ptr_nonnull(strstr(g_log, "delay_ms=20"));
    ck_assert_ptr_nonnull(strstr(g_log, "error=\"slow down\""));
    vigil_batch_free(b);
    vigil_client_free(c);
    ht_server_stop(h);
}
END_TEST

START_TEST(other_4xx_drops_and_logs_the_hub_message)
{
    ht_server *h = ht_server_start();
    ht_action acts[] = {{HT_REPLY, 400,
                         "{\"error\":{\"code\":\"invalid_metric\",\"message\":\"metrics[0].value: "
                         "expected a finite number\",\"path\":\"metrics[0].value\"}}",
                         NULL}};
    ht_server_script(h, acts, 1);
    vigil_client_options o = fast_opts(h->port);
    vigil_client *c = new_client(&o);
    vigil_batch *b = make_batch(1);
    ck_assert_int_eq(vigil_client_send(c, b), VIGIL_EHTTP);
    vt_assert_error(VIGIL_EHTTP,
                    "hub refused the batch: 400 invalid_metric: metrics[0].value: expected a "
                    "finite number");
    vigil_client_stats s = get_stats(c);
    ck_assert_uint_eq(s.requests, 1);
    ck_assert_uint_eq(s.dropped, 1);
    ck_assert_uint_eq(s.retried, 0);
    ck_assert_uint_eq(s.failed, 0);
    ck_assert_ptr_nonnull(strstr(g_log, "level=error"));
    ck_assert_ptr_nonnull(strstr(g_log, "code=invalid_metric"));
    ck_assert_ptr_nonnull(strstr(g_log, "metrics[0].value: expected a finite number"));

    /* a body that is not JSON is quoted */
    ht_action acts2[] = {{HT_REPLY, 415, "not json, sorry", NULL}};
    ht_server_script(h, acts2, 1);
    ck_assert_int_eq(vigil_client_send(c, b), VIGIL_EHTTP);
    vt_assert_error(VIGIL_EHTTP, "415 not json, sorry");
    ck_assert_uint_eq(get_stats(c).dropped, 2);

    /* 413 is not a drop: the caller splits the batch */
    ht_action acts3[] = {{HT_REPLY, 413, "too big, sorry", NULL}};
    ht_server_script(h, acts3, 1);
    ck_assert_int_eq(vigil_client_send(c, b), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "hub answered 413: too big, sorry");
    ck_assert_uint_eq(get_stats(c).dropped, 2);
    vigil_batch_free(b);
    vigil_client_free(c);
    ht_server_stop(h);
}
END_TEST

START_TEST(unauthorized_is_transient)
{
    ht_server *h = ht_server_start();
    ht_server_default(h, HT_REPLY, 401,
                      "{\"error\":{\"code\":\"unauthorized\",\"message\":\"bad token\"}}");
    vigil_client_options o = fast_opts(h->port);
    o.max_attempts = 2;
    vigil_client *c = new_client(&o);
    vigil_batch *b = make_batch(1);
    ck_assert_int_eq(vigil_client_send(c, b), VIGIL_EAUTH);
    vt_assert_error(VIGIL_EAUTH, "401: bad token");
    vigil_client_stats s = get_stats(c);
    ck_assert_uint_eq(s.requests, 2);
    ck_assert_uint_eq(s.failed, 1);
    ck_assert_uint_eq(s.dropped, 0);
    ht_server_default(h, HT_REPLY, 403, NULL);
    ck_assert_int_eq(vigil_client_send(c, b), VIGIL_EPERM);
    vt_assert_error(VIGIL_EPERM, "403");
    ck_assert_uint_eq(get_stats(c).dropped, 0);
    vigil_batch_free(b);
    vigil_client_free(c);
    ht_server_stop(h);
}
END_TEST

START_TEST(dropped_connection_is_retried)
{
    ht_server *h = ht_server_start();
    ht_action acts[] = {{HT_DROP, 0, NULL, NULL}, {HT_DROP, 0, NULL, NULL}};
    ht_server_script(h, acts, 2);
    vigil_client_options o = fast_opts(h->port);
    vigil_client *c = new_client(&o);
    vigil_batch *b = make_batch(1);
    ck_assert_int_eq(vigil_client_send(c, b), VIGIL_OK);
    vigil_client_stats s = get_stats(c);
    ck_assert_uint_eq(s.requests, 3);
    ck_assert_uint_eq(s.retried, 2);
    pthread_mutex_lock(&h->mu);
    ck_assert_int_eq(h->nconn, 3);
    ck_assert_str_eq(h->req[0].batch_id, h->req[2].batch_id);
    pthread_mutex_unlock(&h->mu);
    ck_assert_ptr_nonnull(strstr(g_log, "ingest request failed"));

    ht_server_default(h, HT_DROP, 0, NULL);
    ck_assert_int_eq(vigil_client_send(c, b), VIGIL_ENETWORK);
    vt_assert_error(VIGIL_ENETWORK, "failed");
    vigil_batch_free(b);
    vigil_client_free(c);
    ht_server_stop(h);
}
END_TEST

START_TEST(hanging_hub_times_out)
{
    ht_server *h = ht_server_start();
    ht_action acts[] = {{HT_HANG, 0, NULL, NULL}};
    ht_server_script(h, acts, 1);
    vigil_client_options o = fast_opts(h->port);
    o.request_timeout_ms = 150;
    vigil_client *c = new_client(&o);
    vigil_batch *b = make_batch(1);
    ck_assert_int_eq(vigil_client_send(c, b), VIGIL_OK);
    ck_assert_uint_eq(get_stats(c).requests, 2);
    ck_assert_ptr_nonnull(strstr(g_log, "imeout")); /* curl: "Timeout was reached" */

    ht_server_default(h, HT_HANG, 0, NULL);
    o.max_attempts = 1;
    vigil_client *c1 = new_client(&o);
    ck_assert_int_eq(vigil_client_send(c1, b), VIGIL_ETIMEOUT);
    vt_assert_error(VIGIL_ETIMEOUT, "POST http://127.0.0.1:");
    vigil_client_free(c1);
    vigil_batch_free(b);
    vigil_client_free(c);
    ht_server_stop(h);
}
END_TEST

START_TEST(urls_are_tried_in_order)
{
    ht_server *h = ht_server_start();
    vigil_client_options o = fast_opts(h->port);
    snprintf(g_urls[0], sizeof(g_urls[0]), "http://127.0.0.1:%d/", ht_closed_port());
    snprintf(g_urls[1], sizeof(g_urls[1]), "http://127.0.0.1:%d", h->port);
    g_url_ptrs[1] = g_urls[1];
    o.nurls = 2;
    o.max_attempts = 1;
    vigil_client *c = new_client(&o);
    vigil_batch *b = make_batch(1);
    ck_assert_int_eq(vigil_client_send(c, b), VIGIL_OK);
    ck_assert_uint_eq(get_stats(c).requests, 2);
    ck_assert_uint_eq(get_stats(c).retried, 0);
    /* the URL that answered is tried first next time */
    vigil_batch_set_id(b, NULL);
    ck_assert_int_eq(vigil_client_send(c, b), VIGIL_OK);
    ck_assert_uint_eq(get_stats(c).requests, 3);
    vigil_batch_free(b);
    vigil_client_free(c);
    ht_server_stop(h);
}
END_TEST

START_TEST(no_hub_is_a_network_error)
{
    vigil_client_options o = fast_opts(ht_closed_port());
    vigil_client *c = new_client(&o);
    vigil_batch *b = make_batch(1);
    ck_assert_int_eq(vigil_client_send(c, b), VIGIL_ENETWORK);
    vt_assert_error(VIGIL_ENETWORK, "/v1/ingest failed");
    vigil_client_stats s = get_stats(c);
    ck_assert_uint_eq(s.requests, 3);
    ck_assert_uint_eq(s.failed, 1);
    ck_assert_int_eq(s.last_status, 0);
    vigil_batch_free(b);
    vigil_client_free(c);
}
END_TEST

START_TEST(cancel_fd_aborts_a_send)
{
    ht_server *h = ht_server_start();
    ht_server_default(h, HT_HANG, 0, NULL);
    vigil_client_options o = fast_opts(h->port);
    o.request_timeout_ms = 60000; /* only the cancel can end it in time */
    vigil_client *c = new_client(&o);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(write(p[1], "x", 1), 1);
    vigil__client_set_cancel_fd(c, p[0], 0);
    vigil_batch *b = make_batch(1);
    ck_assert_int_eq(vigil_client_send(c, b), VIGIL_ECLOSED);
    vt_assert_error(VIGIL_ECLOSED, "cancelled");
    ck_assert_uint_eq(get_stats(c).failed, 1);
    /* with a grace period the transfer may go on a little, then gives up */
    vigil__client_set_cancel_fd(c, p[0], 100);
    ck_assert_int_eq(vigil_client_send(c, b), VIGIL_ECLOSED);
    ck_assert_uint_eq(get_stats(c).requests, 2);
    /* ... and a hub that answers within it gets the batch */
    ht_server_default(h, HT_REPLY, 202, NULL);
    vigil__client_set_cancel_fd(c, p[0], 5000);
    ck_assert_int_eq(vigil_client_send(c, b), VIGIL_OK);
    /* no retry rounds after a cancel */
    ht_server_default(h, HT_REPLY, 503, NULL);
    ck_assert_int_eq(vigil_client_send(c, b), VIGIL_ECLOSED);
    ck_assert_uint_eq(get_stats(c).requests, 4);
    vigil__client_set_cancel_fd(c, -1, 0);
    close(p[0]);
    close(p[1]);
    vigil_batch_free(b);
    vigil_client_free(c);
    ht_server_stop(h);
}
END_TEST

START_TEST(deadline_bounds_a_send)
{
    ht_server *h = ht_server_start();
    ht_server_default(h, HT_HANG, 0, NULL);
    vigil_client_options o = fast_opts(h->port);
    o.request_timeout_ms = 60000;
    vigil_client *c = new_client(&o);
    vigil_buf gz = VIGIL_BUF_INIT;
    vigil_batch *b = make_batch(1);
    ck_assert_int_eq(vigil__client_encode(&gz, b), VIGIL_OK);
    int rc = vigil__client_send_gzip(c, gz.ptr, gz.size, vigil_batch_id(b), 5,
                                     vigil__monotonic_ms() + 100);
    ck_assert_int_eq(rc, VIGIL_ETIMEOUT);
    ck_assert_uint_eq(get_stats(c).requests, 1);
    vigil_buf_dispose(&gz);
    vigil_batch_free(b);
    vigil_client_free(c);
    ht_server_stop(h);
}
END_TEST

START_TEST(send_body_plain_and_gzip)
{
    ht_server *h = ht_server_start();
    vigil_client_options o = fast_opts(h->port);
    vigil_client *c = new_client(&o);
    const char *json = "{\"agent\":\"h1\",\"batch_id\":\"raw-1\",\"metrics\":[]}";
    ck_assert_int_eq(vigil_client_send_body(c, json, strlen(json), 0), VIGIL_OK);
    vigil_buf gz = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil__gzip_compress(&gz, json, strlen(json)), VIGIL_OK);
    ck_assert_int_eq(vigil_client_send_body(c, gz.ptr, gz.size, 1), VIGIL_OK);
    vigil_buf_dispose(&gz);
    ck_assert_int_eq(vigil_client_send_body(c, json, 0, 0), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "empty body");
    ck_assert_int_eq(vigil_client_send_body(NULL, json, 1, 0), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_client_send(c, NULL), VIGIL_EINVAL);
    pthread_mutex_lock(&h->mu);
    ck_assert_int_eq(h->nreq, 2);
    ck_assert_str_eq(h->req[0].encoding, "");
    ck_assert_str_eq(h->req[0].body, json);
    ck_assert_str_eq(h->req[1].encoding, "gzip");
    ck_assert_str_eq(h->req[1].body, json);
    pthread_mutex_unlock(&h->mu);
    vigil_client_free(c);
    ht_server_stop(h);
}
END_TEST

START_TEST(tls_is_verified)
{
    /* https to a plain HTTP listener: the TLS handshake fails, nothing is sent */
    ht_server *h = ht_server_start();
    vigil_client_options o = fast_opts(h->port);
    snprintf(g_urls[0], sizeof(g_urls[0]), "https://127.0.0.1:%d", h->port);
    o.max_attempts = 1;
    o.request_timeout_ms = 300; /* the listener waits for an HTTP request forever */
    vigil_client *c = new_client(&o);
    vigil_batch *b = make_batch(1);
    int rc = vigil_client_send(c, b);
    ck_assert_msg(rc == VIGIL_ENETWORK || rc == VIGIL_ETIMEOUT, "got %d", rc);
    ck_assert_ptr_nonnull(strstr(vigil_error_last()->message, "POST https://127.0.0.1:"));
    vigil_client_free(c);
    /* a CA file that does not exist is an error at send time, never ignored */
    o.ca_file = "/nonexistent/ca.pem";
    c = new_client(&o);
    ck_assert_int_eq(vigil_client_send(c, b), VIGIL_ENETWORK);
    vigil_client_free(c);
    pthread_mutex_lock(&h->mu);
    ck_assert_int_eq(h->nreq, 0);
    pthread_mutex_unlock(&h->mu);
    vigil_batch_free(b);
    ht_server_stop(h);
}
END_TEST

typedef struct {
    int port;
    vigil_client *c;
    vigil_batch *b;
} oom_ctx;

static int oom_send(void *p)
{
    oom_ctx *x = p;
    vigil_client_options o = fast_opts(x->port);
    o.logger.min_level = VIGIL_LOG_OFF;
    int rc = vigil_client_new(&x->c, &o);
    if (rc)
        return rc;
    rc = vigil_batch_new(&x->b);
    vigil_tag t = {"k", "v"};
    vigil_metric m = {"up", 1, 1000, &t, 1, NULL};
    if (!rc)
        rc = vigil_batch_add(x->b, &m);
    if (!rc)
        rc = vigil_client_send(x->c, x->b);
    return rc;
}

static void oom_free(void *p)
{
    oom_ctx *x = p;
    vigil_client_free(x->c);
    vigil_batch_free(x->b);
    x->c = NULL;
    x->b = NULL;
}

START_TEST(oom_sweep_new_and_send)
{
    ht_server *h = ht_server_start();
    oom_ctx x = {h->port, NULL, NULL};
    ck_assert_int_gt(vt_oom_sweep(oom_send, oom_free, &x, 0), 0);
    ht_server_stop(h);
}
END_TEST

static Suite *client_suite(void)
{
    Suite *s = suite_create("client_http");
    TCase *tc = tcase_create("client");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, gzip_token_keepalive_and_body);
    tcase_add_test(tc, hub_receives_gzip_json_with_token_on_one_connection);
    tcase_add_test(tc, retries_5xx_with_the_same_batch_id);
    tcase_add_test(tc, gives_up_after_max_attempts);
    tcase_add_test(tc, retry_after_is_honoured_and_capped);
    tcase_add_test(tc, other_4xx_drops_and_logs_the_hub_message);
    tcase_add_test(tc, unauthorized_is_transient);
    tcase_add_test(tc, dropped_connection_is_retried);
    tcase_add_test(tc, hanging_hub_times_out);
    tcase_add_test(tc, urls_are_tried_in_order);
    tcase_add_test(tc, no_hub_is_a_network_error);
    tcase_add_test(tc, cancel_fd_aborts_a_send);
    tcase_add_test(tc, deadline_bounds_a_send);
    tcase_add_test(tc, send_body_plain_and_gzip);
    tcase_add_test(tc, tls_is_verified);
    tcase_add_test(tc, oom_sweep_new_and_send);
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
