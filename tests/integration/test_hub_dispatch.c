/* The hub's built-in HTTP dispatcher against a remediator stand-in on
 * loopback that checks X-Vigil-Signature: success, retry on 503, final 4xx,
 * wrong secret, unreachable, pending approval then a late result, the queue
 * bound and stop cancelling what is in flight. Real SQLite files in
 * temporary directories. */
#include <arpa/inet.h>
#include <cJSON.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hub_testutil.h"
#include "tls_fixtures.h"
#include "testutil.h"
#include "vigil/sys/store.h"

#define MAX_SCRIPT 16
#define MAX_BODY   (1 << 20)

/* ---- the remediator stand-in ------------------------------------------------------ */

/* Answers POST /v1/execute: checks the signature (401 when it does not
 * verify), then answers with the next scripted status (200 with a succeeded
 * result carrying an audit checkpoint, 202 pending_approval, or the status
 * with an error body); the last script entry repeats. */
typedef struct standin {
    int fd;
    int port;
    pthread_t thread;
    pthread_mutex_t mu;
    int stop;
    int release; /* answers held by script entry 1 go out */
    int script[MAX_SCRIPT];
    size_t nscript;
    size_t requests; /* POSTs received */
    size_t bad_sigs; /* refused signatures */
    char last_body[4096];
    char last_sig[256];
    char url[64];
} standin;

static int read_request(int fd, char *buf, size_t size, size_t *hlen, size_t *blen)
{
    size_t got = 0;
    for (;;) {
        buf[got] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end) {
            *hlen = (size_t)(end - buf) + 4;
            const char *cl = strcasestr(buf, "\r\ncontent-length:");
            size_t want = cl ? (size_t)strtoul(cl + 17, NULL, 10) : 0;
            if (*hlen + want >= size)
                return -1;
            while (got < *hlen + want) {
                ssize_t n = recv(fd, buf + got, *hlen + want - got, 0);
                if (n <= 0)
                    return -1;
                got += (size_t)n;
            }
            buf[got] = '\0';
            *blen = want;
            return 0;
        }
        if (got + 1 >= size)
            return -1;
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 200) <= 0)
            return 1; /* idle: let the caller check for stop */
        ssize_t n = recv(fd, buf + got, size - 1 - got, 0);
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
}

/* Answers with `body` signed with `secret` (NULL: unsigned), as a
 * remediator signs its answers. */
static void reply_as(int fd, int status, const char *body, const char *secret)
{
    char head[512], sh[256] = "";
    if (secret) {
        vigil_buf sig = VIGIL_BUF_INIT;
        ck_assert_int_eq(vigil_signature_make(&sig, secret, strlen(secret), (int64_t)time(NULL),
                                              body, strlen(body)),
                         VIGIL_OK);
        snprintf(sh, sizeof(sh), "%s: %s\r\n", VIGIL_SIGNATURE_HEADER, sig.ptr);
        vigil_buf_dispose(&sig);
    }
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n%sContent-Length: "
                     "%zu\r\n\r\n",
                     status, sh, strlen(body));
    send(fd, head, (size_t)n, MSG_NOSIGNAL);
    send(fd, body, strlen(body), MSG_NOSIGNAL);
}

static void reply(int fd, int status, const char *body)
{
    reply_as(fd, status, body, SECRET);
}

static void serve_conn(standin *s, int fd)
{
    char *buf = malloc(MAX_BODY);
    for (;;) {
        size_t hlen = 0, blen = 0;
        int rc = read_request(fd, buf, MAX_BODY, &hlen, &blen);
        if (rc == 1) {
            pthread_mutex_lock(&s->mu);
            int stop = s->stop;
            pthread_mutex_unlock(&s->mu);
            if (stop)
                break;
            continue;
        }
        if (rc < 0)
            break;
        const char *body = buf + hlen;
        char sig[256] = "";
        const char *h = strcasestr(buf, "\r\nX-Vigil-Signature:");
        if (h) {
            h += 20;
            while (*h == ' ')
                h++;
            size_t k = strcspn(h, "\r\n");
            snprintf(sig, sizeof(sig), "%.*s", (int)k, h);
        }
        int vrc = vigil_signature_verify(sig[0] ? sig : NULL, SECRET, strlen(SECRET), body, blen,
                                         time(NULL), 0);
        char id[160] = "";
        cJSON *j = cJSON_ParseWithLength(body, blen);
        cJSON *jid = j ? cJSON_GetObjectItem(j, "id") : NULL;
        if (cJSON_IsString(jid))
            snprintf(id, sizeof(id), "%s", jid->valuestring);
        cJSON_Delete(j);
        pthread_mutex_lock(&s->mu);
        size_t k = s->requests < s->nscript ? s->requests : s->nscript - 1;
        int status = s->script[k];
        s->requests++;
        snprintf(s->last_body, sizeof(s->last_body), "%.*s", (int)blen, body);
        snprintf(s->last_sig, sizeof(s->last_sig), "%s", sig);
        if (vrc)
            s->bad_sigs++;
        size_t seq = s->requests;
        pthread_mutex_unlock(&s->mu);
        char out[512];
        const char *answer_secret = SECRET;
        if (status == 2 || status == 3) {
            /* a succeeded result unsigned (2) or signed with another secret (3) */
            answer_secret = status == 2 ? NULL : "another-secret-0123456789abcdef0";
            status = 200;
        }
        if (status == 1) {
            /* hang until the test releases it (or stops) */
            for (;;) {
                pthread_mutex_lock(&s->mu);
                int go = s->release || s->stop;
                pthread_mutex_unlock(&s->mu);
                if (go)
                    break;
                usleep(2000);
            }
            status = 200;
        }
        if (vrc) {
            reply(fd, 401,
                  "{\"error\":{\"code\":\"unauthorized\",\"message\":\"signature: "
                  "mismatch\",\"path\":\"\"}}");
        } else if (status == 200) {
            snprintf(out, sizeof(out),
                     "{\"id\":\"%s\",\"status\":\"succeeded\",\"reason\":null,\"output\":\"done\","
                     "\"duration_ms\":12,\"audit\":{\"seq\":%zu,\"mac\":\"%s\"}}",
                     id, 40 + seq, MAC_A);
            reply_as(fd, 200, out, answer_secret);
        } else if (status == 202) {
            snprintf(out, sizeof(out), "{\"id\":\"%s\",\"status\":\"pending_approval\"}", id);
            reply(fd, 202, out);
        } else {
            reply(fd, status,
                  "{\"error\":{\"code\":\"x\",\"message\":\"scripted\",\"path\":\"\"}}");
        }
    }
    free(buf);
}

static void *standin_main(void *arg)
{
    standin *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        int stop = s->stop;
        pthread_mutex_unlock(&s->mu);
        if (stop)
            break;
        struct pollfd p = {s->fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        serve_conn(s, c);
        close(c);
    }
    return NULL;
}

static void standin_start(standin *s, const int *script, size_t n)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    for (size_t i = 0; i < n; i++)
        s->script[i] = script[i];
    s->nscript = n;
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(s->fd, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    ck_assert_int_eq(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(s->fd, 16), 0);
    socklen_t al = sizeof(a);
    getsockname(s->fd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d", s->port);
    ck_assert_int_eq(pthread_create(&s->thread, NULL, standin_main, s), 0);
}

static void standin_stop(standin *s)
{
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    close(s->fd);
    pthread_mutex_destroy(&s->mu);
}

static size_t standin_requests(standin *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->requests;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* ---- dispatch over HTTP -------------------------------------------------------------- */

START_TEST(dispatch_success_signed)
{
    standin s;
    int script[] = {200};
    standin_start(&s, script, 1);
    vigil_hub *hub = hub_to(s.url, SECRET, 0);
    vigil_api *api = mount(hub);
    char id[128];
    manual(api,
           "{\"action\":\"restart_demo\",\"target\":\"demo\",\"params\":{\"level\":\"2\"},"
           "\"reason\":\"by hand\",\"dry_run\":false}",
           id, sizeof(id));
    vigil_store_action *a = wait_action(hub, id, NULL);
    ck_assert_str_eq(a->status, "succeeded");
    ck_assert_str_eq(a->output, "done");
    ck_assert_int_eq(a->duration_ms, 12);
    ck_assert_int_eq(a->audit_seq, 41);
    ck_assert_str_eq(a->audit_hash, MAC_A);
    ck_assert_str_eq(a->params_json, "{\"level\":\"2\"}");
    ck_assert_ptr_null(a->policy);
    vigil_store_action_free(a);
    ck_assert_uint_eq(standin_requests(&s), 1);
    ck_assert_uint_eq(s.bad_sigs, 0);
    /* the body docs/http-api.md describes, and the signature header */
    char want[512];
    snprintf(want, sizeof(want),
             "{\"id\":\"%s\",\"action\":\"restart_demo\",\"target\":\"demo\",\"params\":{"
             "\"level\":\"2\"},\"reason\":\"by hand\",\"policy\":\"\",\"dry_run\":false}",
             id);
    ck_assert_str_eq(s.last_body, want);
    ck_assert_msg(strncmp(s.last_sig, "t=", 2) == 0 && strstr(s.last_sig, ",v1=") != NULL, "%s",
                  s.last_sig);
    /* listed with its checkpoint; counted */
    char out[8192];
    ck_assert_int_eq(call(api, "GET", "/v1/actions", "limit=10", AUTH_R, NULL, out, sizeof(out)),
                     200);
    cJSON *j = cJSON_Parse(out);
    ck_assert_ptr_nonnull(j);
    cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "actions"), 0);
    ck_assert_str_eq(cJSON_GetObjectItem(first, "id")->valuestring, id);
    ck_assert_str_eq(cJSON_GetObjectItem(first, "status")->valuestring, "succeeded");
    ck_assert_str_eq(
        cJSON_GetObjectItem(cJSON_GetObjectItem(first, "params"), "level")->valuestring, "2");
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(first, "audit"), "seq")->valueint, 41);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(first, "verdict")));
    cJSON *cp = cJSON_GetObjectItem(j, "checkpoint");
    ck_assert_str_eq(cJSON_GetObjectItem(cp, "mac")->valuestring, MAC_A);
    cJSON_Delete(j);
    ck_assert_int_eq(
        call(api, "GET", "/v1/actions", "status=failed", AUTH_R, NULL, out, sizeof(out)), 200);
    ck_assert_str_eq(out, "{\"actions\":[],\"checkpoint\":null}");
    ck_assert(wait_metric(api, "vigil_actions_total{status=\"succeeded\"}", 1) == 1.0);
    ck_assert(wait_metric(api, "vigil_action_dispatch_duration_seconds_count", 1) == 1.0);
    vigil_api_free(api);
    vigil_hub_free(hub);
    standin_stop(&s);
}
END_TEST

START_TEST(dispatch_retries_503_then_succeeds)
{
    standin s;
    int script[] = {503, 503, 200};
    standin_start(&s, script, 3);
    vigil_hub *hub = hub_to(s.url, SECRET, 4);
    vigil_api *api = mount(hub);
    char id[128];
    manual(api, "{\"action\":\"restart_demo\",\"target\":\"demo\"}", id, sizeof(id));
    vigil_store_action *a = wait_action(hub, id, NULL);
    ck_assert_str_eq(a->status, "succeeded");
    ck_assert_int_eq(a->audit_seq, 43);
    vigil_store_action_free(a);
    ck_assert_uint_eq(standin_requests(&s), 3);
    vigil_api_free(api);
    vigil_hub_free(hub);
    standin_stop(&s);
}
END_TEST

/* A remediator whose queue is full answers 429 (VIGIL_EOVERLOADED): that is
 * no verdict on the request, which is delivered again with its id. */
START_TEST(dispatch_retries_429_and_408)
{
    standin s;
    int script[] = {429, 408, 200};
    standin_start(&s, script, 3);
    vigil_hub *hub = hub_to(s.url, SECRET, 4);
    vigil_api *api = mount(hub);
    char id[128];
    manual(api, "{\"action\":\"restart_demo\",\"target\":\"demo\"}", id, sizeof(id));
    vigil_store_action *a = wait_action(hub, id, NULL);
    ck_assert_str_eq(a->status, "succeeded");
    vigil_store_action_free(a);
    ck_assert_uint_eq(standin_requests(&s), 3);
    vigil_api_free(api);
    vigil_hub_free(hub);
    standin_stop(&s);
}
END_TEST

START_TEST(dispatch_503_exhausts_attempts)
{
    standin s;
    int script[] = {503};
    standin_start(&s, script, 1);
    vigil_hub *hub = hub_to(s.url, SECRET, 3);
    vigil_api *api = mount(hub);
    char id[128];
    manual(api, "{\"action\":\"restart_demo\",\"target\":\"demo\"}", id, sizeof(id));
    vigil_store_action *a = wait_action(hub, id, NULL);
    ck_assert_str_eq(a->status, "failed");
    ck_assert_str_eq(a->result_reason, "http_503");
    vigil_store_action_free(a);
    ck_assert_uint_eq(standin_requests(&s), 3);
    vigil_api_free(api);
    vigil_hub_free(hub);
    standin_stop(&s);
}
END_TEST

START_TEST(dispatch_4xx_is_final)
{
    standin s;
    int script[] = {400, 200};
    standin_start(&s, script, 2);
    vigil_hub *hub = hub_to(s.url, SECRET, 5);
    vigil_api *api = mount(hub);
    char id[128];
    manual(api, "{\"action\":\"restart_demo\",\"target\":\"demo\"}", id, sizeof(id));
    vigil_store_action *a = wait_action(hub, id, NULL);
    ck_assert_str_eq(a->status, "failed");
    ck_assert_str_eq(a->result_reason, "http_400");
    ck_assert_msg(strstr(a->output, "scripted") != NULL, "%s", a->output);
    vigil_store_action_free(a);
    ck_assert_uint_eq(standin_requests(&s), 1);
    ck_assert(wait_metric(api, "vigil_actions_total{status=\"failed\"}", 1) == 1.0);
    vigil_api_free(api);
    vigil_hub_free(hub);
    standin_stop(&s);
}
END_TEST

START_TEST(dispatch_wrong_secret_refused)
{
    standin s;
    int script[] = {200};
    standin_start(&s, script, 1);
    vigil_hub *hub = hub_to(s.url, "not-the-shared-secret-00000000000000", 5);
    vigil_api *api = mount(hub);
    char id[128];
    manual(api, "{\"action\":\"restart_demo\",\"target\":\"demo\"}", id, sizeof(id));
    vigil_store_action *a = wait_action(hub, id, NULL);
    ck_assert_str_eq(a->status, "failed");
    ck_assert_str_eq(a->result_reason, "http_401");
    ck_assert_msg(strstr(a->output, "signature: mismatch") != NULL, "%s", a->output);
    vigil_store_action_free(a);
    ck_assert_uint_eq(standin_requests(&s), 1);
    ck_assert_uint_eq(s.bad_sigs, 1);
    vigil_api_free(api);
    vigil_hub_free(hub);
    standin_stop(&s);
}
END_TEST

START_TEST(dispatch_unreachable_is_network_failure)
{
    /* a port nobody listens on: bind one, then close it */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t al = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &al);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", ntohs(a.sin_port));
    close(fd);
    vigil_hub *hub = hub_to(url, SECRET, 2);
    vigil_api *api = mount(hub);
    char id[128];
    manual(api, "{\"action\":\"restart_demo\",\"target\":\"demo\"}", id, sizeof(id));
    vigil_store_action *act = wait_action(hub, id, NULL);
    ck_assert_str_eq(act->status, "failed");
    ck_assert_str_eq(act->result_reason, "network");
    vigil_store_action_free(act);
    vigil_api_free(api);
    vigil_hub_free(hub);
}
END_TEST

/* An answer not signed with the secret is not taken as a result: the action
 * is recorded failed (bad_signature), never with the answer's status or
 * audit checkpoint. */
START_TEST(dispatch_answer_must_be_signed)
{
    for (int k = 2; k <= 3; k++) {
        standin s;
        int script[] = {k};
        standin_start(&s, script, 1);
        vigil_hub *hub = hub_to(s.url, SECRET, 3);
        vigil_api *api = mount(hub);
        char id[128];
        manual(api, "{\"action\":\"restart_demo\",\"target\":\"demo\"}", id, sizeof(id));
        vigil_store_action *a = wait_action(hub, id, NULL);
        ck_assert_str_eq(a->status, "failed");
        ck_assert_str_eq(a->result_reason, "bad_signature");
        ck_assert_ptr_nonnull(
            strstr(a->output, k == 2 ? "signature: missing" : "signature: mismatch"));
        ck_assert_int_eq(a->audit_seq, 0);
        vigil_store_action_free(a);
        ck_assert_uint_eq(standin_requests(&s), 1); /* not delivered again: it may have run */
        vigil_api_free(api);
        vigil_hub_free(hub);
        standin_stop(&s);
    }
}
END_TEST

/* ---- TLS on the hub <-> remediator links ---------------------------------------------- */

typedef struct tls_files {
    char ca[600], server[600], server_key[600], client[600], client_key[600], rogue[600],
        rogue_key[600];
} tls_files;

static void tls_write(tls_files *t)
{
    const char *dir = vt_tmpdir();
    snprintf(t->ca, sizeof(t->ca), "%s",
             vt_write_file(dir, "ca.pem", TLS_CA_PEM, strlen(TLS_CA_PEM)));
    snprintf(t->server, sizeof(t->server), "%s",
             vt_write_file(dir, "server.pem", TLS_SERVER_PEM, strlen(TLS_SERVER_PEM)));
    snprintf(t->server_key, sizeof(t->server_key), "%s",
             vt_write_file(dir, "server.key", TLS_SERVER_KEY, strlen(TLS_SERVER_KEY)));
    snprintf(t->client, sizeof(t->client), "%s",
             vt_write_file(dir, "client.pem", TLS_CLIENT_PEM, strlen(TLS_CLIENT_PEM)));
    snprintf(t->client_key, sizeof(t->client_key), "%s",
             vt_write_file(dir, "client.key", TLS_CLIENT_KEY, strlen(TLS_CLIENT_KEY)));
    snprintf(t->rogue, sizeof(t->rogue), "%s",
             vt_write_file(dir, "rogue.pem", TLS_ROGUE_PEM, strlen(TLS_ROGUE_PEM)));
    snprintf(t->rogue_key, sizeof(t->rogue_key), "%s",
             vt_write_file(dir, "rogue.key", TLS_ROGUE_KEY, strlen(TLS_ROGUE_KEY)));
}

/* A remediator behind the built-in server with TLS and required client
 * certificates, whose late results go to `hub_url` over TLS with `t`'s
 * client certificate. */
typedef struct tls_rem {
    vigil_remediator *rem;
    vigil_api *api;
    vigil_httpd *httpd;
    vigil_config *cfg;
    char url[128];
} tls_rem;

static void tls_rem_start(tls_rem *r, const tls_files *t, const char *hub_url)
{
    memset(r, 0, sizeof(*r));
    static const char yaml[] = "actions:\n"
                               "  - {name: restart_demo, type: log}\n"
                               "  - {name: ask, type: log, approval: {required: true}}\n";
    ck_assert_int_eq(vigil_config_load_string(&r->cfg, yaml, strlen(yaml), "r.yaml", NULL),
                     VIGIL_OK);
    static char db[700];
    snprintf(db, sizeof(db), "sqlite://%s/rem-tls.db", vt_tmpdir());
    setenv("VT_TLS_SECRET", SECRET, 1);
    setenv("VT_TLS_HUBTOK", WTOKEN, 1);
    vigil_remediator_options o = VIGIL_REMEDIATOR_OPTIONS_INIT;
    o.store_url = db;
    o.audit_key = "tls-test-audit-key-0123456789abcdef";
    o.audit_key_len = strlen(o.audit_key);
    o.secret_env = "VT_TLS_SECRET";
    o.cooldown_ms = VIGIL_REMEDIATOR_DISABLED;
    o.max_attempts = (unsigned int)VIGIL_REMEDIATOR_DISABLED;
    o.rate_per_s = VIGIL_REMEDIATOR_DISABLED;
    o.base_dir = vt_tmpdir();
    o.actions = vigil_config_node_get(vigil_config_root(r->cfg, 0), "actions");
    o.logger.min_level = VIGIL_LOG_OFF;
    o.hub_url = hub_url;
    o.hub_token_env = "VT_TLS_HUBTOK";
    o.hub_backoff_ms = 20;
    o.hub_ca_file = t->ca;
    o.hub_cert = t->client;
    o.hub_key = t->client_key;
    ck_assert_msg(vigil_remediator_new(&r->rem, &o) == VIGIL_OK, "%s", vigil_error_last()->message);
    ck_assert_int_eq(vigil_remediator_start(r->rem), VIGIL_OK);
    vigil_api_options ao = VIGIL_API_OPTIONS_INIT;
    ao.logger.min_level = VIGIL_LOG_OFF;
    ck_assert_int_eq(vigil_api_new(&r->api, &ao), VIGIL_OK);
    ck_assert_int_eq(vigil_remediator_mount(r->rem, r->api), VIGIL_OK);
    vigil_httpd_options ho = VIGIL_HTTPD_OPTIONS_INIT;
    ho.listen = "127.0.0.1:0";
    ho.threads = 2;
    ho.tls_cert = t->server;
    ho.tls_key = t->server_key;
    ho.tls_client_ca = t->ca;
    ho.logger.min_level = VIGIL_LOG_OFF;
    ck_assert_int_eq(vigil_httpd_new(&r->httpd, r->api, &ho), VIGIL_OK);
    ck_assert_int_eq(vigil_httpd_start(r->httpd), VIGIL_OK);
    snprintf(r->url, sizeof(r->url), "https://127.0.0.1:%d", vigil_httpd_port(r->httpd));
}

static void tls_rem_stop(tls_rem *r)
{
    vigil_httpd_quiesce(r->httpd);
    vigil_remediator_stop(r->rem);
    vigil_httpd_free(r->httpd);
    vigil_api_free(r->api);
    vigil_remediator_free(r->rem);
    vigil_config_free(r->cfg);
}

/* A hub dispatching to `url` over TLS: trusting `ca` (NULL: the system's),
 * with a client certificate (NULL: none). */
static vigil_hub *tls_hub(const char *url, const char *ca, const char *cert, const char *key)
{
    vigil_hub_options o;
    hub_defaults(&o);
    setenv("VT_HP_SECRET", SECRET, 1);
    o.remediator_url = url;
    o.remediator_secret_env = "VT_HP_SECRET";
    o.remediator_attempts = 2;
    o.remediator_ca_file = ca;
    o.remediator_cert = cert;
    o.remediator_key = key;
    return hub_with(&o);
}

/* hub -> remediator over TLS with client certificates, and the
 * remediator's late result back to a hub over TLS with its own. */
START_TEST(tls_links_with_client_certificates)
{
    tls_files t;
    tls_write(&t);
    /* the hub serves its API over TLS too, requiring client certificates */
    vigil_hub *hub = NULL;
    tls_rem r;
    vigil_api *hub_api = NULL;
    vigil_httpd *hub_httpd = NULL;
    /* the hub's server must exist before the remediator names it */
    vigil_api_options ao = VIGIL_API_OPTIONS_INIT;
    vigil_api_token toks[] = {{"ops", "VT_HP_WRITE", NULL, VIGIL_API_SCOPE_WRITE}};
    setenv("VT_HP_WRITE", WTOKEN, 1);
    ao.tokens = toks;
    ao.ntokens = 1;
    ao.logger.min_level = VIGIL_LOG_OFF;
    ck_assert_int_eq(vigil_api_new(&hub_api, &ao), VIGIL_OK);
    vigil_httpd_options hs = VIGIL_HTTPD_OPTIONS_INIT;
    hs.listen = "127.0.0.1:0";
    hs.threads = 2;
    hs.tls_cert = t.server;
    hs.tls_key = t.server_key;
    hs.tls_client_ca = t.ca;
    hs.logger.min_level = VIGIL_LOG_OFF;
    ck_assert_int_eq(vigil_httpd_new(&hub_httpd, hub_api, &hs), VIGIL_OK);
    ck_assert_int_eq(vigil_httpd_start(hub_httpd), VIGIL_OK);
    char hub_url[128];
    snprintf(hub_url, sizeof(hub_url), "https://127.0.0.1:%d", vigil_httpd_port(hub_httpd));
    tls_rem_start(&r, &t, hub_url);

    hub = tls_hub(r.url, t.ca, t.client, t.client_key);
    ck_assert_int_eq(vigil_hub_mount(hub, hub_api), VIGIL_OK);
    vigil_api *api = mount(hub);
    char id[128];
    manual(api, "{\"action\":\"restart_demo\",\"target\":\"demo\"}", id, sizeof(id));
    vigil_store_action *a = wait_action(hub, id, NULL);
    ck_assert_msg(strcmp(a->status, "succeeded") == 0, "%s %s %s", a->status,
                  a->result_reason ? a->result_reason : "", a->output ? a->output : "");
    ck_assert_int_gt(a->audit_seq, 0);
    vigil_store_action_free(a);
    /* an approval: the late result comes back over TLS, signed */
    manual(api, "{\"action\":\"ask\",\"target\":\"demo\"}", id, sizeof(id));
    a = wait_action(hub, id, NULL);
    ck_assert_str_eq(a->status, "pending_approval");
    vigil_store_action_free(a);
    ck_assert_int_eq(vigil_remediator_approve(r.rem, id, "test"), VIGIL_OK);
    a = wait_action(hub, id, "pending_approval");
    ck_assert_msg(strcmp(a->status, "succeeded") == 0, "%s", a->status);
    vigil_store_action_free(a);
    vigil_api_free(api);
    vigil_httpd_quiesce(hub_httpd);
    vigil_hub_stop(hub);
    vigil_httpd_free(hub_httpd);
    vigil_api_free(hub_api);
    vigil_hub_free(hub);

    /* without a client certificate, or with one the remediator's CA did not
     * sign: refused; without the CA: the remediator is not trusted */
    const char *certs[3][3] = {
        {t.ca, NULL, NULL}, {t.ca, t.rogue, t.rogue_key}, {NULL, NULL, NULL}};
    for (int i = 0; i < 3; i++) {
        hub = tls_hub(r.url, certs[i][0], certs[i][1], certs[i][2]);
        api = mount(hub);
        manual(api, "{\"action\":\"restart_demo\",\"target\":\"demo\"}", id, sizeof(id));
        a = wait_action(hub, id, NULL);
        ck_assert_str_eq(a->status, "failed");
        ck_assert_msg(strcmp(a->result_reason, i < 2 ? "http_401" : "network") == 0, "%d: %s %s", i,
                      a->result_reason, a->output ? a->output : "");
        vigil_store_action_free(a);
        vigil_api_free(api);
        vigil_hub_free(hub);
    }
    tls_rem_stop(&r);

    /* bad TLS options are refused when the hub is created */
    vigil_hub_options bad;
    hub_defaults(&bad);
    bad.remediator_url = "https://127.0.0.1:9";
    bad.remediator_secret = SECRET;
    bad.remediator_secret_len = strlen(SECRET);
    bad.remediator_cert = t.client;
    ck_assert_int_eq(vigil_hub_new(&hub, &bad), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "remediator: a client certificate and its key go together");
    bad.remediator_cert = NULL;
    bad.remediator_ca_file = "/nonexistent/ca.pem";
    ck_assert_int_eq(vigil_hub_new(&hub, &bad), VIGIL_EIO);
    vt_assert_error(VIGIL_EIO, "remediator: ca_file /nonexistent/ca.pem: cannot read it");
}
END_TEST

START_TEST(pending_approval_then_late_result)
{
    standin s;
    int script[] = {202};
    standin_start(&s, script, 1);
    vigil_hub *hub = hub_to(s.url, SECRET, 5);
    vigil_api *api = mount(hub);
    char id[128], path[256], body[512], out[1024];
    manual(api, "{\"action\":\"restart_demo\",\"target\":\"demo\"}", id, sizeof(id));
    vigil_store_action *a = wait_action(hub, id, NULL);
    ck_assert_str_eq(a->status, "pending_approval");
    vigil_store_action_free(a);
    snprintf(path, sizeof(path), "/v1/actions/%s/result", id);
    snprintf(body, sizeof(body),
             "{\"id\":\"%s\",\"status\":\"succeeded\",\"reason\":null,\"output\":\"approved and "
             "ran\",\"duration_ms\":7,\"audit\":{\"seq\":99,\"mac\":\"%s\"}}",
             id, MAC_B);
    /* with the write token alone the late result is refused: it must be signed */
    ck_assert_int_eq(call(api, "POST", path, NULL, AUTH_W, body, out, sizeof(out)), 401);
    ck_assert_ptr_nonnull(strstr(out, "signature: missing"));
    ck_assert_int_eq(call_signed(api, path, AUTH_W, body, out, sizeof(out)), 200);
    snprintf(body, sizeof(body), "{\"id\":\"%s\",\"status\":\"succeeded\"}", id);
    ck_assert_str_eq(out, body);
    a = wait_action(hub, id, "pending_approval");
    ck_assert_str_eq(a->status, "succeeded");
    ck_assert_str_eq(a->output, "approved and ran");
    ck_assert_int_eq(a->audit_seq, 99);
    ck_assert_str_eq(a->audit_hash, MAC_B);
    vigil_store_action_free(a);
    /* a replay is a conflict and changes nothing */
    expect_signed(api, path, AUTH_W, "{\"status\":\"failed\",\"reason\":\"late\"}", 409, "conflict",
                  "", "already has a final result (succeeded)");
    ledger_status(hub, id, out, sizeof(out));
    ck_assert_str_eq(out, "succeeded");
    vigil_api_free(api);
    vigil_hub_free(hub);
    standin_stop(&s);
}
END_TEST

START_TEST(dispatch_queue_bound_and_stop_cancels)
{
    standin s;
    int script[] = {1};
    standin_start(&s, script, 1);
    vigil_hub_options o;
    hub_defaults(&o);
    setenv("VT_HP_SECRET", SECRET, 1);
    o.remediator_url = s.url;
    o.remediator_secret_env = "VT_HP_SECRET";
    o.remediator_workers = 1;
    o.remediator_queue_max = 1;
    vigil_hub *hub = hub_with(&o);
    vigil_api *api = mount(hub);
    char a[128], b[128], c[128];
    manual(api, "{\"action\":\"restart_demo\",\"target\":\"a\"}", a, sizeof(a));
    int64_t end = mono_ms() + WAIT_MS;
    while (standin_requests(&s) < 1 && mono_ms() < end)
        usleep(2000);
    ck_assert_uint_eq(standin_requests(&s), 1); /* a is in flight, held */
    manual(api, "{\"action\":\"restart_demo\",\"target\":\"b\"}", b, sizeof(b));
    manual(api, "{\"action\":\"restart_demo\",\"target\":\"c\"}", c, sizeof(c));
    /* c found the queue full */
    vigil_store_action *x = wait_action(hub, c, NULL);
    ck_assert_str_eq(x->status, "failed");
    ck_assert_str_eq(x->result_reason, "dispatch_failed");
    ck_assert_msg(strstr(x->output, "waiting for the remediator") != NULL, "%s", x->output);
    vigil_store_action_free(x);
    char st[64];
    ledger_status(hub, b, st, sizeof(st));
    ck_assert_str_eq(st, "pending");
    /* stopping the hub cancels what is in flight and what waits */
    vigil_hub_stop(hub);
    x = wait_action(hub, a, NULL);
    ck_assert_str_eq(x->status, "failed");
    ck_assert_str_eq(x->result_reason, "cancelled");
    vigil_store_action_free(x);
    x = wait_action(hub, b, NULL);
    ck_assert_str_eq(x->status, "failed");
    ck_assert_str_eq(x->result_reason, "cancelled");
    ck_assert_msg(strstr(x->output, "before the request was delivered") != NULL, "%s", x->output);
    vigil_store_action_free(x);
    ck_assert_uint_eq(standin_requests(&s), 1);
    vigil_api_free(api);
    vigil_hub_free(hub);
    standin_stop(&s);
}
END_TEST

static Suite *hub_dispatch_suite(void)
{
    Suite *s = suite_create("hub_dispatch");
    TCase *tc = tcase_create("dispatch");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, db_url_reset, NULL);
    tcase_add_test(tc, dispatch_success_signed);
    tcase_add_test(tc, dispatch_answer_must_be_signed);
    tcase_add_test(tc, tls_links_with_client_certificates);
    tcase_add_test(tc, dispatch_retries_503_then_succeeds);
    tcase_add_test(tc, dispatch_retries_429_and_408);
    tcase_add_test(tc, dispatch_503_exhausts_attempts);
    tcase_add_test(tc, dispatch_4xx_is_final);
    tcase_add_test(tc, dispatch_wrong_secret_refused);
    tcase_add_test(tc, dispatch_unreachable_is_network_failure);
    tcase_add_test(tc, pending_approval_then_late_result);
    tcase_add_test(tc, dispatch_queue_bound_and_stop_cancels);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(hub_dispatch_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
