/* Clustered hubs in one process on one SQLite file (lib/hub/cluster.c):
 * collector.yaml `cluster:` and its errors, vigil_hub_set_cluster()'s bad
 * arguments, the election, the epoch in every POST /v1/execute body (signed)
 * sent to a remediator stand-in, a follower's refusals, and fencing: a
 * signed 409 stale_epoch makes the leader record nothing, stop and give
 * the lease up; the other hub takes over with the next epoch, recovers the
 * request from the ledger and delivers it with its own epoch. */
#include <cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "api/internal.h"
#include "hub_testutil.h"
#include "testutil.h"
#include "vigil/sys/store.h"

/* ---- config ------------------------------------------------------------------- */

static int load_cfg(const char *text, vigil_hub_config **out)
{
    return vigil_hub_config_load_string(out, text, strlen(text), "c.yaml", NULL);
}

static void cfg_fails(const char *text, int code, const char *msg)
{
    vigil_hub_config *c = NULL;
    ck_assert_msg(load_cfg(text, &c) == code, "accepted or wrong code for: %s (%s)", text,
                  vigil_error_last()->message);
    vt_assert_error(code, msg);
    ck_assert_ptr_null(c);
}

START_TEST(cluster_config)
{
    vigil_hub_config *c = NULL;
    ck_assert_int_eq(load_cfg("", &c), VIGIL_OK);
    const vigil_hub_cluster_options *o = vigil_hub_config_cluster(c);
    ck_assert_uint_eq(o->version, VIGIL_HUB_CLUSTER_OPTIONS_VERSION);
    ck_assert_int_eq(o->enabled, 0);
    ck_assert_ptr_null(o->holder);
    vigil_hub_config_free(c);
    ck_assert_int_eq(load_cfg("cluster: {enabled: true, holder: hub-1, lease_ttl: 6s,"
                              " renew_interval: 1500ms, tail_interval: 20ms}\n",
                              &c),
                     VIGIL_OK);
    o = vigil_hub_config_cluster(c);
    ck_assert_int_eq(o->enabled, 1);
    ck_assert_str_eq(o->holder, "hub-1");
    ck_assert_int_eq(o->lease_ttl_ms, 6000);
    ck_assert_int_eq(o->renew_interval_ms, 1500);
    ck_assert_int_eq(o->tail_interval_ms, 20);
    vigil_hub_config_free(c);
    ck_assert_ptr_null(vigil_hub_config_cluster(NULL));
    cfg_fails("cluster: {enabled: true, ttl: 3s}\n", VIGIL_EUNKNOWNKEY, "ttl");
    cfg_fails("cluster: {lease_ttl: 0s}\n", VIGIL_ERANGE, "expected a duration above 0");
    cfg_fails("cluster: {lease_ttl: 2d}\n", VIGIL_ERANGE, "expected a duration from 3ms to 24h");
    cfg_fails("cluster: {lease_ttl: 3s, renew_interval: 3s}\n", VIGIL_ERANGE,
              "expected a duration below lease_ttl");
    cfg_fails("cluster: {renew_interval: 4s}\n", VIGIL_ERANGE,
              "c.yaml:1:27: cluster.renew_interval: expected a duration below lease_ttl");
    cfg_fails("cluster: {tail_interval: 2m}\n", VIGIL_ERANGE, "expected a duration of at most 1m");
    cfg_fails("cluster: {holder: ''}\n", VIGIL_EVALUE, "expected 1 to 128 bytes");
    cfg_fails("cluster: [1]\n", VIGIL_ETYPE, "cluster");
}
END_TEST

/* ---- vigil_hub_set_cluster -------------------------------------------------------------- */

static vigil_hub *hub_new_quiet(const char *url)
{
    vigil_hub_options o;
    hub_defaults(&o);
    o.store_url = url;
    vigil_hub *hub = NULL;
    ck_assert_msg(vigil_hub_new(&hub, &o) == VIGIL_OK, "%s", vigil_error_last()->message);
    return hub;
}

static int nolease_open(void **out, const char *url, const char *rest,
                        const vigil_store_options *opts, void *payload)
{
    (void)payload;
    return vigil_store_sqlite_type()->open(out, url, rest, opts, NULL);
}

START_TEST(set_cluster_arguments)
{
    db_url_reset();
    vigil_hub *hub = hub_new_quiet(db_url());
    vigil_hub_cluster_options o = VIGIL_HUB_CLUSTER_OPTIONS_INIT;
    ck_assert_int_eq(vigil_hub_cluster_options_init(NULL, 1), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_hub_cluster_options_init(&o, 9), VIGIL_EVERSION);
    ck_assert_int_eq(vigil_hub_cluster_options_init(&o, VIGIL_HUB_CLUSTER_OPTIONS_VERSION),
                     VIGIL_OK);
    ck_assert_int_eq(vigil_hub_set_cluster(NULL, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "hub cluster: NULL hub");
    o.version = 7;
    ck_assert_int_eq(vigil_hub_set_cluster(hub, &o), VIGIL_EVERSION);
    o.version = VIGIL_HUB_CLUSTER_OPTIONS_VERSION;
    o.enabled = 1;
    o.lease_ttl_ms = 2;
    ck_assert_int_eq(vigil_hub_set_cluster(hub, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "hub cluster: lease_ttl_ms 2 is out of range (3 to 86400000)");
    o.lease_ttl_ms = 1000;
    o.renew_interval_ms = 1000;
    ck_assert_int_eq(vigil_hub_set_cluster(hub, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "renew_interval_ms 1000 must be from 1 to below the lease ttl "
                                  "(1000 ms)");
    o.renew_interval_ms = 0;
    o.tail_interval_ms = 60001;
    ck_assert_int_eq(vigil_hub_set_cluster(hub, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "tail_interval_ms 60001 is out of range (1 to 60000)");
    o.tail_interval_ms = 0;
    o.holder = "";
    ck_assert_int_eq(vigil_hub_set_cluster(hub, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "hub cluster: the holder must not be empty");
    char longer[130];
    memset(longer, 'h', 129);
    longer[129] = '\0';
    o.holder = longer;
    ck_assert_int_eq(vigil_hub_set_cluster(hub, &o), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "the holder is 129 bytes, more than the limit of 128");
    o.holder = "h\xff";
    ck_assert_int_eq(vigil_hub_set_cluster(hub, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "the holder is not valid UTF-8");
    /* not enabled (or NULL): a single hub */
    o.holder = NULL;
    o.enabled = 0;
    ck_assert_int_eq(vigil_hub_set_cluster(hub, &o), VIGIL_OK);
    ck_assert_int_eq(vigil_hub_set_cluster(hub, NULL), VIGIL_OK);
    vigil_hub_cluster_status s = VIGIL_HUB_CLUSTER_STATUS_INIT;
    ck_assert_int_eq(vigil_hub_cluster_status_get(hub, &s), VIGIL_OK);
    ck_assert_int_eq(s.enabled, 0);
    ck_assert_int_eq(vigil_hub_cluster_status_get(NULL, &s), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_hub_cluster_status_get(hub, NULL), VIGIL_EINVAL);
    s.version = 0;
    ck_assert_int_eq(vigil_hub_cluster_status_get(hub, &s), VIGIL_EVERSION);
    /* enabled: the default holder is <hostname>:<pid> */
    o.enabled = 1;
    ck_assert_int_eq(vigil_hub_set_cluster(hub, &o), VIGIL_OK);
    ck_assert_int_eq(vigil_hub_set_cluster(hub, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "hub cluster: set already");
    s.version = VIGIL_HUB_CLUSTER_STATUS_VERSION;
    ck_assert_int_eq(vigil_hub_cluster_status_get(hub, &s), VIGIL_OK);
    ck_assert_int_eq(s.enabled, 1);
    ck_assert_int_eq(s.leader, 0);
    char suffix[32];
    snprintf(suffix, sizeof(suffix), ":%ld", (long)getpid());
    ck_assert_msg(strlen(s.holder) > strlen(suffix) &&
                      strcmp(s.holder + strlen(s.holder) - strlen(suffix), suffix) == 0,
                  "holder %s", s.holder);
    ck_assert_int_eq(vigil_hub_start(hub), VIGIL_OK);
    ck_assert_int_eq(vigil_hub_set_cluster(hub, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "hub cluster: the hub is started already");
    vigil_hub_free(hub);

    /* an in-memory store is private to its process */
    hub = hub_new_quiet("sqlite::memory:");
    ck_assert_int_eq(vigil_hub_set_cluster(hub, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "is private to this process (in memory); hubs share a store");
    vigil_hub_free(hub);

    /* a store without leases */
    vigil_store_registry *reg = NULL;
    ck_assert_int_eq(vigil_store_registry_new(&reg), VIGIL_OK);
    vigil_store_type t = *vigil_store_sqlite_type();
    t.name = "nolease";
    t.open = nolease_open;
    t.lease_acquire = NULL;
    t.lease_release = NULL;
    t.lease_get = NULL;
    ck_assert_int_eq(vigil_store_register(reg, &t), VIGIL_OK);
    vigil_hub_options ho;
    hub_defaults(&ho);
    char url[700];
    snprintf(url, sizeof(url), "nolease://%s/nolease.db", vt_tmpdir());
    ho.store_url = url;
    ho.store_types = reg;
    ck_assert_int_eq(vigil_hub_new(&hub, &ho), VIGIL_OK);
    ck_assert_int_eq(vigil_hub_set_cluster(hub, &o), VIGIL_EUNSUPPORTED);
    vt_assert_error(VIGIL_EUNSUPPORTED, "has no leases");
    vigil_hub_free(hub);
    vigil_store_registry_free(reg);
}
END_TEST

/* ---- a remediator stand-in ---------------------------------------------------------- */

typedef struct standin {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n;
    int stale_next; /* answer the next request 409 stale_epoch (signed) */
    char bodies[8][1024];
    int sig_ok[8];
    vigil_api *api;
    vigil_httpd *httpd;
    char url[64];
} standin;

static void exec_route(vigil__api_call *call, void *payload)
{
    standin *s = payload;
    const vigil_api_request *req = vigil__api_call_request(call);
    const char *sig = NULL;
    for (size_t i = 0; i < req->nheaders; i++)
        if (strcasecmp(req->headers[i].name, VIGIL_SIGNATURE_HEADER) == 0)
            sig = req->headers[i].value;
    char answer[512];
    int status = 200;
    pthread_mutex_lock(&s->mu);
    int k = s->n < 8 ? s->n : 7;
    snprintf(s->bodies[k], sizeof(s->bodies[k]), "%.*s", (int)req->body_len, req->body);
    s->sig_ok[k] = vigil_signature_verify(sig, SECRET, strlen(SECRET), req->body, req->body_len,
                                          (int64_t)time(NULL), 0) == VIGIL_OK;
    cJSON *j = cJSON_ParseWithLength(req->body, req->body_len);
    const char *id = j ? cJSON_GetObjectItem(j, "id")->valuestring : "";
    if (s->stale_next) {
        s->stale_next = 0;
        status = 409;
        snprintf(answer, sizeof(answer),
                 "{\"error\":{\"code\":\"stale_epoch\",\"message\":\"epoch 1 is older than "
                 "epoch 9\",\"path\":\"epoch\"}}");
    } else {
        snprintf(answer, sizeof(answer),
                 "{\"id\":\"%s\",\"status\":\"succeeded\",\"reason\":null,\"output\":\"ok\","
                 "\"duration_ms\":1}",
                 id);
    }
    cJSON_Delete(j);
    s->n++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    vigil_api_response *resp = vigil__api_call_response(call);
    vigil__api_resp_json(resp, status, answer, strlen(answer));
    vigil_buf sb = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil_signature_make(&sb, SECRET, strlen(SECRET), (int64_t)time(NULL), answer,
                                          strlen(answer)),
                     VIGIL_OK);
    vigil__api_resp_header(resp, VIGIL_SIGNATURE_HEADER, sb.ptr);
    vigil_buf_dispose(&sb);
    vigil__api_finish(call);
}

static void standin_start(standin *s)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    vigil_api_options ao = VIGIL_API_OPTIONS_INIT;
    ao.logger.min_level = VIGIL_LOG_OFF;
    ck_assert_int_eq(vigil_api_new(&s->api, &ao), VIGIL_OK);
    ck_assert_int_eq(
        vigil__api_route(s->api, "POST", "/v1/execute", 0, VIGIL__API_BODY, exec_route, s),
        VIGIL_OK);
    vigil_httpd_options ho = VIGIL_HTTPD_OPTIONS_INIT;
    ho.listen = "127.0.0.1:0";
    ho.threads = 2;
    ho.logger.min_level = VIGIL_LOG_OFF;
    ck_assert_int_eq(vigil_httpd_new(&s->httpd, s->api, &ho), VIGIL_OK);
    ck_assert_int_eq(vigil_httpd_start(s->httpd), VIGIL_OK);
    snprintf(s->url, sizeof(s->url), "http://%s", vigil_httpd_address(s->httpd));
}

static void standin_stop(standin *s)
{
    vigil_httpd_free(s->httpd);
    vigil_api_free(s->api);
}

/* Waits until the stand-in has received n requests. */
static void standin_wait(standin *s, int n)
{
    int64_t end = mono_ms() + WAIT_MS;
    pthread_mutex_lock(&s->mu);
    while (s->n < n) {
        pthread_mutex_unlock(&s->mu);
        ck_assert_msg(mono_ms() < end, "the stand-in got %d of %d requests", s->n, n);
        usleep(5000);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
}

static vigil_hub *cluster_hub(const char *holder, const char *rem_url)
{
    vigil_hub_options o;
    hub_defaults(&o);
    setenv("VT_HC_SECRET", SECRET, 1);
    o.remediator_url = rem_url;
    o.remediator_secret_env = "VT_HC_SECRET";
    vigil_hub *hub = NULL;
    ck_assert_msg(vigil_hub_new(&hub, &o) == VIGIL_OK, "%s", vigil_error_last()->message);
    vigil_hub_cluster_options c = VIGIL_HUB_CLUSTER_OPTIONS_INIT;
    c.enabled = 1;
    c.holder = holder;
    c.lease_ttl_ms = 600;
    c.renew_interval_ms = 100;
    ck_assert_msg(vigil_hub_set_cluster(hub, &c) == VIGIL_OK, "%s", vigil_error_last()->message);
    ck_assert_int_eq(vigil_hub_start(hub), VIGIL_OK);
    return hub;
}

/* Waits until exactly one of two hubs leads; returns it (0 or 1). */
static int wait_leader(vigil_hub *h[2], vigil_hub_cluster_status *out)
{
    int64_t end = mono_ms() + WAIT_MS;
    for (;;) {
        int n = 0, who = -1;
        for (int i = 0; i < 2; i++) {
            vigil_hub_cluster_status s = VIGIL_HUB_CLUSTER_STATUS_INIT;
            if (!h[i])
                continue;
            ck_assert_int_eq(vigil_hub_cluster_status_get(h[i], &s), VIGIL_OK);
            if (s.leader) {
                n++;
                who = i;
                *out = s;
            }
        }
        ck_assert_msg(n <= 1, "two leaders");
        if (n == 1)
            return who;
        ck_assert_msg(mono_ms() < end, "no leader");
        usleep(5000);
    }
}

static const char *status_of(vigil_hub *hub, const char *id, char *buf, size_t size)
{
    ledger_status(hub, id, buf, size);
    return buf;
}

START_TEST(epoch_in_requests_and_fencing)
{
    db_url_reset();
    standin s;
    standin_start(&s);
    vigil_hub *h[2] = {cluster_hub("hub-a", s.url), cluster_hub("hub-b", s.url)};
    vigil_hub_cluster_status st;
    int L = wait_leader(h, &st);
    int F = 1 - L;
    ck_assert_uint_ge(st.epoch, 1);
    ck_assert_str_eq(st.holder, L ? "hub-b" : "hub-a");
    ck_assert_str_eq(st.leader_holder, st.holder);
    uint64_t e1 = st.epoch;

    /* a follower refuses manual requests */
    vigil_action_request rq = VIGIL_ACTION_REQUEST_INIT;
    rq.action = "note";
    rq.target = "r1";
    vigil_buf id = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil_hub_action_request(h[F], &rq, &id), VIGIL_EUNSUPPORTED);
    vt_assert_error(VIGIL_EUNSUPPORTED, "this hub is a follower");

    /* the leader's request carries its epoch, under the signature */
    ck_assert_int_eq(vigil_hub_action_request(h[L], &rq, &id), VIGIL_OK);
    standin_wait(&s, 1);
    char want[64];
    snprintf(want, sizeof(want), ",\"dry_run\":false,\"epoch\":%llu}", (unsigned long long)e1);
    ck_assert_msg(strstr(s.bodies[0], want), "body %s lacks %s", s.bodies[0], want);
    ck_assert_int_eq(s.sig_ok[0], 1);
    char buf[64];
    for (int64_t end = mono_ms() + WAIT_MS;
         strcmp(status_of(h[L], id.ptr, buf, sizeof(buf)), "succeeded") != 0;) {
        ck_assert(mono_ms() < end);
        usleep(5000);
    }

    /* the remediator saw a newer epoch: the leader records nothing, steps
     * down and gives the lease up; the other hub leads under the next
     * epoch, recovers the request and delivers it with its epoch */
    pthread_mutex_lock(&s.mu);
    s.stale_next = 1;
    pthread_mutex_unlock(&s.mu);
    char id2[160];
    ck_assert_int_eq(vigil_hub_action_request(h[L], &rq, &id), VIGIL_OK);
    snprintf(id2, sizeof(id2), "%s", id.ptr);
    standin_wait(&s, 2);
    /* the signed refusal ends the old leader's term */
    for (int64_t end = mono_ms() + WAIT_MS;;) {
        vigil_hub_cluster_status o = VIGIL_HUB_CLUSTER_STATUS_INIT;
        ck_assert_int_eq(vigil_hub_cluster_status_get(h[L], &o), VIGIL_OK);
        if (!o.leader)
            break;
        ck_assert_msg(mono_ms() < end, "the fenced hub still leads");
        usleep(2000);
    }
    int nl = wait_leader(h, &st);
    ck_assert_int_eq(nl, F);
    ck_assert_uint_eq(st.epoch, e1 + 1);
    standin_wait(&s, 3);
    snprintf(want, sizeof(want), "\"epoch\":%llu}", (unsigned long long)(e1 + 1));
    ck_assert_msg(strstr(s.bodies[2], want), "body %s lacks %s", s.bodies[2], want);
    char wid[200];
    snprintf(wid, sizeof(wid), "\"id\":\"%s\"", id2);
    ck_assert_msg(strstr(s.bodies[2], wid), "redelivery %s is not of %s", s.bodies[2], id2);
    for (int64_t end = mono_ms() + WAIT_MS;
         strcmp(status_of(h[F], id2, buf, sizeof(buf)), "succeeded") != 0;) {
        ck_assert_msg(mono_ms() < end, "ledger status %s", buf);
        usleep(5000);
    }
    vigil_hub_cluster_status old = VIGIL_HUB_CLUSTER_STATUS_INIT;
    ck_assert_int_eq(vigil_hub_cluster_status_get(h[L], &old), VIGIL_OK);
    ck_assert_int_eq(old.leader, 0);
    vigil_buf_dispose(&id);
    vigil_hub_free(h[0]);
    vigil_hub_free(h[1]);
    standin_stop(&s);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("hub_cluster");
    TCase *tc = tcase_create("cluster");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, cluster_config);
    tcase_add_test(tc, set_cluster_arguments);
    tcase_add_test(tc, epoch_in_requests_and_fencing);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
