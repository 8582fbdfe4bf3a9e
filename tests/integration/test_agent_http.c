/* The agent against a hub on 127.0.0.1 (libmicrohttpd): scheduling with an
 * injected clock, heartbeat and self-metrics, host and global tags, the spool
 * across restarts, events ahead of the backlog, failing collectors, the run
 * loop, and the daemon as a process. Its in-process cases (configuration,
 * options, collect_once, allocation failures) are in tests/unit/test_agent.c. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "agent_testutil.h"
#include "testutil.h"
#include "vigil/agent.h"

/* ---- a hub (libmicrohttpd) -------------------------------------------------------- */

#define HUB_MAX 512

typedef struct {
    struct MHD_Daemon *d;
    int port;
    pthread_mutex_t mu;
    int status; /* answer to POST /v1/ingest */
    char *bodies[HUB_MAX];
    int n;     /* accepted bodies */
    int posts; /* every POST */
    char auth[256];
} mhub;

typedef struct {
    char *data;
    size_t len;
} upload;

static char *inflate_all(const char *in, size_t len)
{
    size_t cap = 1 << 20;
    char *out = malloc(cap);
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    ck_assert_int_eq(inflateInit2(&zs, 15 + 16), Z_OK);
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)len;
    zs.next_out = (Bytef *)out;
    zs.avail_out = (uInt)cap - 1;
    int rc = inflate(&zs, Z_FINISH);
    out[zs.total_out] = '\0';
    inflateEnd(&zs);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    (void)url;
    (void)method;
    (void)version;
    mhub *h = cls;
    upload *u = *con_cls;
    if (!u) {
        *con_cls = calloc(1, sizeof(upload));
        return MHD_YES;
    }
    if (*upload_size) {
        u->data = realloc(u->data, u->len + *upload_size);
        memcpy(u->data + u->len, upload_data, *upload_size);
        u->len += *upload_size;
        *upload_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&h->mu);
    int status = h->status;
    h->posts++;
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    snprintf(h->auth, sizeof(h->auth), "%s", auth ? auth : "");
    if (status == 202 && h->n < HUB_MAX) {
        const char *enc = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Encoding");
        char *body = enc && strcmp(enc, "gzip") == 0 ? inflate_all(u->data, u->len) : NULL;
        h->bodies[h->n++] = body ? body : strdup("<not gzip>");
    }
    pthread_mutex_unlock(&h->mu);
    const char *text = status == 202   ? "{\"accepted\":1,\"duplicate\":false}"
                       : status == 400 ? "{\"error\":{\"code\":\"invalid_metric\",\"message\":"
                                         "\"metrics[0].value: expected a finite number\"}}"
                                       : "{\"error\":{\"code\":\"unavailable\",\"message\":\"x\"}}";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned int)status, r);
    MHD_destroy_response(r);
    return ret;
}

static void on_done(void *cls, struct MHD_Connection *conn, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    upload *u = *con_cls;
    if (u) {
        free(u->data);
        free(u);
    }
    *con_cls = NULL;
}

static mhub *hub_start(int port)
{
    mhub *h = calloc(1, sizeof(*h));
    pthread_mutex_init(&h->mu, NULL);
    h->status = 202;
    h->port = port;
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t)port, NULL, NULL, on_request,
                            h, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_NOTIFY_COMPLETED, on_done,
                            NULL, MHD_OPTION_END);
    ck_assert_ptr_nonnull(h->d);
    return h;
}

static void hub_set_status(mhub *h, int status)
{
    pthread_mutex_lock(&h->mu);
    h->status = status;
    pthread_mutex_unlock(&h->mu);
}

static int hub_count(mhub *h)
{
    pthread_mutex_lock(&h->mu);
    int n = h->n;
    pthread_mutex_unlock(&h->mu);
    return n;
}

static void hub_stop(mhub *h)
{
    MHD_stop_daemon(h->d);
    for (int i = 0; i < h->n; i++)
        free(h->bodies[i]);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

/* Decodes accepted body i into a new batch. */
static vigil_batch *hub_batch(mhub *h, int i)
{
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    pthread_mutex_lock(&h->mu);
    ck_assert_int_lt(i, h->n);
    int rc = vigil_batch_decode_json(b, h->bodies[i], strlen(h->bodies[i]), NULL);
    ck_assert_msg(rc == VIGIL_OK, "body %d: %s: %s", i, vigil_error_last()->message, h->bodies[i]);
    pthread_mutex_unlock(&h->mu);
    return b;
}

/* ---- scheduling ------------------------------------------------------------------------------ */

START_TEST(step_schedules_with_an_injected_clock)
{
    mhub *h = hub_start(free_port());
    const char *dir = fresh_dir();
    vigil_config *cfg = std_config(h->port, dir, "  - {type: counter, name: slow, interval: 3s}\n");
    vigil_agent_options o = test_opts();
    vigil_agent *a = new_agent(cfg, &o);
    ck_assert_str_eq(vigil_agent_id(a), "test-host");
    int64_t next = 0;

    ck_assert_int_eq(vigil_agent_step(a, T0, &next), VIGIL_OK);
    ck_assert_int_eq(next, T0 + 1000);
    ck_assert_uint_eq(stats(a).collections, 2);
    ck_assert_int_eq(hub_count(h), 1);

    ck_assert_int_eq(vigil_agent_step(a, T0 + 500, &next), VIGIL_OK);
    ck_assert_uint_eq(stats(a).collections, 2); /* nothing was due */
    ck_assert_int_eq(next, T0 + 1000);
    ck_assert_int_eq(hub_count(h), 1);

    ck_assert_int_eq(vigil_agent_step(a, T0 + 1000, &next), VIGIL_OK);
    ck_assert_uint_eq(stats(a).collections, 3); /* only the 1s one */
    ck_assert_int_eq(next, T0 + 2000);
    ck_assert_int_eq(vigil_agent_step(a, T0 + 2000, &next), VIGIL_OK);
    ck_assert_int_eq(next, T0 + 3000);
    ck_assert_int_eq(vigil_agent_step(a, T0 + 3000, &next), VIGIL_OK);
    ck_assert_uint_eq(stats(a).collections, 6); /* both */
    ck_assert_uint_eq(stats(a).batches_sent, 4);

    /* the first batch: every sample has host and the global tags; a tag the
     * collector set itself is kept */
    vigil_batch *b = hub_batch(h, 0);
    ck_assert_str_eq(vigil_batch_agent(b), "test-host");
    ck_assert_uint_eq(strlen(vigil_batch_id(b)), 32);
    for (size_t i = 0; i < vigil_batch_count(b); i++) {
        const vigil_metric *m = vigil_batch_get(b, i);
        ck_assert_str_eq(tag(m, "host"), "test-host");
        ck_assert_str_eq(tag(m, "role"), "db");
        ck_assert_int_eq(m->ts_ms, T0);
    }
    const vigil_metric *c = find(b, "test_counter");
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(tag(c, "env"), "collector-wins");
    ck_assert_str_eq(tag(find(b, "vigil_agent_heartbeat"), "env"), "test");
    ck_assert_int_eq(count_named(b, "vigil_agent_collect_duration_ms"), 2);
    ck_assert_ptr_nonnull(find(b, "vigil_agent_batches_sent"));
    ck_assert_ptr_nonnull(find(b, "vigil_agent_ship_failures"));
    ck_assert_ptr_nonnull(find(b, "vigil_agent_spool_bytes"));
    ck_assert_ptr_nonnull(find(b, "vigil_agent_dropped"));
    const vigil_metric *d = find(b, "vigil_agent_collect_duration_ms");
    ck_assert(tag(d, "collector") != NULL);
    vigil_batch_free(b);

    vigil_agent_free(a);
    vigil_config_free(cfg);
    hub_stop(h);
}
END_TEST

START_TEST(heartbeat_every_interval)
{
    mhub *h = hub_start(free_port());
    const char *dir = fresh_dir();
    vigil_config *cfg = std_config(h->port, dir, NULL);
    vigil_agent_options o = test_opts();
    vigil_agent *a = new_agent(cfg, &o);
    for (int64_t t = 0; t <= 12000; t += 1000)
        ck_assert_int_eq(vigil_agent_step(a, T0 + t, NULL), VIGIL_OK);
    int beats = 0;
    int64_t ts[8];
    for (int i = 0; i < hub_count(h); i++) {
        vigil_batch *b = hub_batch(h, i);
        const vigil_metric *m = find(b, "vigil_agent_heartbeat");
        if (m) {
            ck_assert_double_eq(m->value, 1);
            ck_assert_int_lt(beats, 8);
            ts[beats++] = m->ts_ms;
            /* the self-metrics ride along */
            ck_assert_ptr_nonnull(find(b, "vigil_agent_batches_sent"));
        }
        vigil_batch_free(b);
    }
    ck_assert_int_eq(beats, 3);
    ck_assert_int_eq(ts[0], T0);
    ck_assert_int_eq(ts[1], T0 + 5000);
    ck_assert_int_eq(ts[2], T0 + 10000);
    vigil_agent_free(a);
    vigil_config_free(cfg);
    hub_stop(h);
}
END_TEST

START_TEST(host_defaults_to_the_host_name)
{
    mhub *h = hub_start(free_port());
    const char *dir = fresh_dir();
    char y[1024];
    snprintf(y, sizeof(y),
             "hub: {urls: [\"http://127.0.0.1:%d\"], token_env: \"\"}\n"
             "batch: {max_delay: 0}\n"
             "spool: {path: \"%s\", fsync: false}\n"
             "collectors: [{type: counter}]\n",
             h->port, dir);
    vigil_config *cfg = load_yaml(y);
    vigil_agent_options o = test_opts();
    vigil_agent *a = new_agent(cfg, &o);
    char host[256] = "";
    ck_assert_int_eq(gethostname(host, sizeof(host)), 0);
    ck_assert_str_eq(vigil_agent_id(a), host);
    ck_assert_int_eq(vigil_agent_step(a, T0, NULL), VIGIL_OK);
    vigil_batch *b = hub_batch(h, 0);
    ck_assert_str_eq(vigil_batch_agent(b), host);
    for (size_t i = 0; i < vigil_batch_count(b); i++)
        ck_assert_str_eq(tag(vigil_batch_get(b, i), "host"), host);
    vigil_batch_free(b);
    vigil_agent_free(a);
    vigil_config_free(cfg);
    hub_stop(h);
}
END_TEST

START_TEST(batches_wait_for_max_delay_and_split_at_max_metrics)
{
    mhub *h = hub_start(free_port());
    const char *dir = fresh_dir();
    char y[2048];
    snprintf(y, sizeof(y),
             "agent: {id: h}\nhub: {urls: [\"http://127.0.0.1:%d\"], token_env: \"\"}\n"
             "interval: 1s\nheartbeat: 1h\n"
             "spool: {path: \"%s\", fsync: false}\ncollectors: [{type: counter}]\n",
             h->port, dir);
    vigil_config *cfg = load_yaml(y);
    vigil_agent_options o = test_opts();
    o.batch_max_delay_ms = 2500; /* the file has no max_delay: the option holds */
    vigil_agent *a = new_agent(cfg, &o);
    int64_t next;
    ck_assert_int_eq(vigil_agent_step(a, T0, &next), VIGIL_OK);
    ck_assert_int_eq(next, T0 + 1000);
    ck_assert_int_eq(vigil_agent_step(a, T0 + 1000, &next), VIGIL_OK);
    ck_assert_int_eq(vigil_agent_step(a, T0 + 2000, &next), VIGIL_OK);
    ck_assert_int_eq(next, T0 + 2500); /* the oldest sample's max_delay */
    ck_assert_int_eq(hub_count(h), 0);
    ck_assert_int_eq(vigil_agent_step(a, T0 + 2500, &next), VIGIL_OK);
    ck_assert_int_eq(hub_count(h), 1);
    vigil_batch *b = hub_batch(h, 0);
    ck_assert_int_eq(count_named(b, "test_counter"), 3);
    vigil_batch_free(b);
    vigil_agent_free(a);
    vigil_config_free(cfg);

    /* at most max_metrics a batch: a full batch leaves at once */
    const char *dir2 = fresh_dir();
    snprintf(y, sizeof(y),
             "agent: {id: h}\nhub: {urls: [\"http://127.0.0.1:%d\"], token_env: \"\"}\n"
             "batch: {max_metrics: 3, max_delay: 1h}\n"
             "spool: {path: \"%s\", fsync: false}\ncollectors: [{type: counter}]\n",
             h->port, dir2);
    cfg = load_yaml(y);
    a = new_agent(cfg, &o);
    /* counter, its duration, heartbeat and 5 self-metrics: 8 samples */
    ck_assert_int_eq(vigil_agent_step(a, T0, &next), VIGIL_OK);
    ck_assert_int_eq(hub_count(h), 3);
    for (int i = 1; i < 3; i++) {
        b = hub_batch(h, i);
        ck_assert_uint_eq(vigil_batch_count(b), 3);
        vigil_batch_free(b);
    }
    ck_assert_int_eq(vigil_agent_flush(a, 1000), VIGIL_OK);
    ck_assert_int_eq(hub_count(h), 4);
    b = hub_batch(h, 3);
    ck_assert_uint_eq(vigil_batch_count(b), 2);
    vigil_batch_free(b);
    vigil_agent_free(a);
    vigil_config_free(cfg);
    hub_stop(h);
}
END_TEST

/* ---- the spool ------------------------------------------------------------------------------ */

/* Every test_counter value from 1 to n arrives exactly once, in order, and
 * no batch id twice. */
static void assert_exactly_once_in_order(mhub *h, int n)
{
    int expect = 1;
    char ids[HUB_MAX][64];
    int nb = hub_count(h);
    for (int i = 0; i < nb; i++) {
        vigil_batch *b = hub_batch(h, i);
        snprintf(ids[i], sizeof(ids[i]), "%s", vigil_batch_id(b));
        for (int k = 0; k < i; k++)
            ck_assert_str_ne(ids[k], ids[i]);
        for (size_t j = 0; j < vigil_batch_count(b); j++) {
            const vigil_metric *m = vigil_batch_get(b, j);
            if (strcmp(m->name, "test_counter") != 0)
                continue;
            ck_assert_msg((int)m->value == expect, "batch %d: got %g, expected %d", i, m->value,
                          expect);
            expect++;
        }
        vigil_batch_free(b);
    }
    ck_assert_int_eq(expect, n + 1);
}

START_TEST(hub_down_spools_and_replays_after_restart)
{
    int port = free_port();
    const char *dir = fresh_dir();
    vigil_config *cfg = std_config(port, dir, NULL);
    vigil_agent_options o = test_opts();

    /* hub down: every batch goes to the spool */
    vigil_agent *a = new_agent(cfg, &o);
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(vigil_agent_step(a, T0 + i * 1000, NULL), VIGIL_OK);
    vigil_agent_stats s = stats(a);
    ck_assert_uint_eq(s.batches_sent, 0);
    ck_assert_uint_eq(s.spooled, 10);
    ck_assert_uint_eq(s.ship_failures, 1); /* then backing off: straight to the spool */
    ck_assert_uint_eq(s.spool_records, 10);
    ck_assert_uint_gt(s.spool_bytes, 0);
    ck_assert_uint_eq(s.dropped, 0);
    ck_assert_ptr_nonnull(strstr(g_log, "hub unavailable; spooling"));
    vigil_agent_free(a);

    /* restarted agent, hub still down: the spool is recovered */
    a = new_agent(cfg, &o);
    ck_assert_uint_eq(stats(a).spool_records, 10);
    vigil_agent_free(a);

    /* hub up: the next agent replays everything, oldest first */
    mhub *h = hub_start(port);
    a = new_agent(cfg, &o);
    int64_t next = 0;
    ck_assert_int_eq(vigil_agent_step(a, T0 + 20000, &next), VIGIL_OK);
    for (int i = 0; i < 10 && stats(a).spool_records > 0; i++)
        ck_assert_int_eq(vigil_agent_step(a, T0 + 20000, &next), VIGIL_OK);
    s = stats(a);
    ck_assert_uint_eq(s.spool_records, 0);
    ck_assert_uint_eq(s.replayed, 11); /* 10 old + the new one queued behind them */
    ck_assert_uint_eq(s.dropped, 0);
    assert_exactly_once_in_order(h, 11);
    vigil_agent_free(a);

    /* nothing is replayed twice by a later agent */
    a = new_agent(cfg, &o);
    ck_assert_uint_eq(stats(a).spool_records, 0);
    vigil_agent_free(a);
    vigil_config_free(cfg);
    hub_stop(h);
}
END_TEST

START_TEST(unauthorized_is_spooled_and_bad_request_dropped)
{
    mhub *h = hub_start(free_port());
    const char *dir = fresh_dir();
    vigil_config *cfg = std_config(h->port, dir, NULL);
    vigil_agent_options o = test_opts();
    vigil_agent *a = new_agent(cfg, &o);

    hub_set_status(h, 401);
    ck_assert_int_eq(vigil_agent_step(a, T0, NULL), VIGIL_OK);
    vigil_agent_stats s = stats(a);
    ck_assert_uint_eq(s.spooled, 1);
    ck_assert_uint_eq(s.dropped, 0);
    ck_assert_uint_eq(s.ship_failures, 1);

    /* the token was rotated: after the backoff the spool is delivered */
    hub_set_status(h, 202);
    ck_assert_int_eq(vigil_agent_step(a, T0 + 30000, NULL), VIGIL_OK);
    s = stats(a);
    ck_assert_uint_eq(s.replayed, 2);
    ck_assert_uint_eq(s.spool_records, 0);
    assert_exactly_once_in_order(h, 2);

    hub_set_status(h, 400);
    ck_assert_int_eq(vigil_agent_step(a, T0 + 31000, NULL), VIGIL_OK);
    s = stats(a);
    ck_assert_uint_eq(s.dropped, 1);
    ck_assert_uint_eq(s.spool_records, 0);
    ck_assert_ptr_nonnull(strstr(g_log, "hub refused the batch; dropped"));
    ck_assert_ptr_nonnull(strstr(g_log, "metrics[0].value: expected a finite number"));
    vigil_agent_free(a);
    vigil_config_free(cfg);
    hub_stop(h);
}
END_TEST

START_TEST(events_ship_at_once_ahead_of_the_backlog)
{
    int port = free_port();
    const char *dir = fresh_dir();
    vigil_config *cfg = std_config(port, dir, "  - {type: evt, name: watch}\n");
    vigil_agent_options o = test_opts();
    vigil_agent *a = new_agent(cfg, &o);
    int fds[4];
    ck_assert_uint_eq(vigil_agent_poll_fds(a, fds, 4), 2); /* wake pipe + the event fd */
    ck_assert_int_eq(fds[1], g_evt[0]);

    /* hub down: a backlog builds up and the agent backs off (10s) */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(vigil_agent_step(a, T0 + i * 1000, NULL), VIGIL_OK);
    ck_assert_uint_eq(stats(a).spool_records, 3);

    /* hub back, inside the backoff: the event goes out at once, first; the
     * hub answering ends the backoff and the backlog follows, in order */
    mhub *h = hub_start(port);
    ck_assert_int_eq(write(g_evt[1], "x", 1), 1);
    ck_assert_int_eq(vigil_agent_step(a, T0 + 2500, NULL), VIGIL_OK);
    ck_assert_uint_eq(stats(a).events, 1);
    ck_assert_int_eq(hub_count(h), 4);
    ck_assert_uint_eq(stats(a).spool_records, 0);
    vigil_batch *b = hub_batch(h, 0);
    ck_assert_uint_eq(vigil_batch_count(b), 1);
    const vigil_metric *m = vigil_batch_get(b, 0);
    ck_assert_str_eq(m->name, "process_up");
    ck_assert_double_eq(m->value, 0);
    ck_assert_str_eq(tag(m, "process"), "demo");
    ck_assert_str_eq(tag(m, "host"), "test-host");
    ck_assert_int_eq(m->ts_ms, T0 + 2500);
    vigil_batch_free(b);
    for (int i = 1; i < 4; i++) {
        b = hub_batch(h, i);
        ck_assert_double_eq(find(b, "test_counter")->value, i);
        vigil_batch_free(b);
    }
    vigil_agent_free(a);
    vigil_config_free(cfg);
    hub_stop(h);
}
END_TEST

START_TEST(failing_collector_becomes_an_error_sample)
{
    mhub *h = hub_start(free_port());
    const char *dir = fresh_dir();
    vigil_config *cfg = std_config(h->port, dir, "  - {type: failing, name: sensor}\n");
    vigil_agent_options o = test_opts();
    vigil_agent *a = new_agent(cfg, &o);
    int64_t next;
    ck_assert_int_eq(vigil_agent_step(a, T0, &next), VIGIL_OK);
    vigil_batch *b = hub_batch(h, 0);
    const vigil_metric *m = find(b, "vigil_collector_error");
    ck_assert_ptr_nonnull(m);
    ck_assert_str_eq(tag(m, "collector"), "sensor");
    ck_assert_str_eq(tag(m, "host"), "test-host");
    ck_assert_ptr_nonnull(m->error);
    ck_assert_ptr_nonnull(strstr(m->error, "sensor unplugged"));
    ck_assert_ptr_nonnull(find(b, "test_counter")); /* the others carry on */
    vigil_batch_free(b);
    /* backed off: at T0+1s only the counter runs */
    ck_assert_int_eq(vigil_agent_step(a, T0 + 1000, &next), VIGIL_OK);
    b = hub_batch(h, 1);
    ck_assert_ptr_null(find(b, "vigil_collector_error"));
    vigil_batch_free(b);
    vigil_agent_free(a);
    vigil_config_free(cfg);
    hub_stop(h);
}
END_TEST

/* A real child watched by the built-in process collector: its death is seen
 * through the event descriptor and shipped at once, on its own. */
START_TEST(process_exit_is_shipped_through_the_event_path)
{
    mhub *h = hub_start(free_port());
    const char *dir = fresh_dir();
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        execl("/bin/sleep", "sleep", "30", (char *)NULL);
        _exit(127);
    }
    char pid[32];
    snprintf(pid, sizeof(pid), "%d\n", (int)child);
    const char *pidfile = vt_write_file(dir, "demo.pid", pid, strlen(pid));
    char extra[1024];
    snprintf(extra, sizeof(extra),
             "  - {type: process, name: demo, pidfile: \"%s\", interval: 1h}\n", pidfile);
    char spool[600];
    snprintf(spool, sizeof(spool), "%s/spool", dir);
    vigil_config *cfg = std_config(h->port, spool, extra);
    vigil_agent_options o = test_opts();
    vigil_agent *a = new_agent(cfg, &o);
    int fds[4];
    size_t nfds = vigil_agent_poll_fds(a, fds, 4);
    if (nfds < 2) { /* no pidfd_open here: exits are seen by polling instead */
        fprintf(stderr, "process watch: pidfd_open unavailable, event path not tested\n");
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        vigil_agent_free(a);
        vigil_config_free(cfg);
        hub_stop(h);
        return;
    }
    ck_assert_int_eq(vigil_agent_step(a, T0, NULL), VIGIL_OK);
    vigil_batch *b = hub_batch(h, 0);
    const vigil_metric *up = find(b, "process_up");
    ck_assert_ptr_nonnull(up);
    ck_assert_double_eq(up->value, 1);
    vigil_batch_free(b);

    int64_t t_kill = mono_ms();
    ck_assert_int_eq(kill(child, SIGKILL), 0);
    struct pollfd p = {fds[1], POLLIN, 0};
    ck_assert_int_eq(poll(&p, 1, 10000), 1);
    /* nothing else is due: only the event path can produce a sample now */
    ck_assert_int_eq(vigil_agent_step(a, T0 + 10, NULL), VIGIL_OK);
    int64_t t_shipped = mono_ms();
    ck_assert_uint_eq(stats(a).events, 1);
    ck_assert_int_eq(hub_count(h), 2);
    b = hub_batch(h, 1);
    up = find(b, "process_up");
    ck_assert_ptr_nonnull(up);
    ck_assert_double_eq(up->value, 0);
    ck_assert_str_eq(tag(up, "process"), "demo");
    ck_assert_str_eq(tag(up, "host"), "test-host");
    ck_assert_ptr_null(find(b, "test_counter"));
    vigil_batch_free(b);
    fprintf(stderr, "process watch: exit to hub in %lld ms\n", (long long)(t_shipped - t_kill));
    waitpid(child, NULL, 0);
    vigil_agent_free(a);
    vigil_config_free(cfg);
    hub_stop(h);
}
END_TEST

/* ---- the run loop ------------------------------------------------------------------------- */

static void *run_thread(void *p)
{
    return (void *)(intptr_t)vigil_agent_run(p);
}

START_TEST(run_until_stopped_from_another_thread)
{
    mhub *h = hub_start(free_port());
    const char *dir = fresh_dir();
    char y[1024];
    snprintf(y, sizeof(y),
             "agent: {id: runner}\n"
             "hub: {urls: [\"http://127.0.0.1:%d\"], token_env: \"\"}\n"
             "interval: 20ms\nheartbeat: 50ms\nbatch: {max_delay: 30ms}\n"
             "spool: {path: \"%s\", fsync: false}\n"
             "collectors: [{type: counter}, {type: evt}]\n",
             h->port, dir);
    vigil_config *cfg = load_yaml(y);
    vigil_agent_options o = test_opts();
    vigil_agent *a = new_agent(cfg, &o);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, run_thread, a), 0);
    while (hub_count(h) < 3)
        usleep(5000);
    /* an event is picked up by the loop's poll and shipped on its own */
    ck_assert_int_eq(write(g_evt[1], "x", 1), 1);
    while (stats(a).events < 1)
        usleep(5000);
    vigil_agent_stop(a);
    void *rc = NULL;
    ck_assert_int_eq(pthread_join(th, &rc), 0);
    ck_assert_int_eq((int)(intptr_t)rc, VIGIL_OK);
    vigil_agent_stats s = stats(a);
    ck_assert_uint_ge(s.batches_sent, 3);
    ck_assert_uint_eq(s.spool_records, 0);
    ck_assert_ptr_nonnull(strstr(g_log, "agent stopped"));
    /* every counter value arrived once, in order (the last flush included) */
    assert_exactly_once_in_order(h, g_seq);
    vigil_agent_free(a);
    vigil_config_free(cfg);
    hub_stop(h);
}
END_TEST

START_TEST(stop_spools_when_the_hub_hangs)
{
    /* a listener that never answers */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(lfd, 8), 0);
    socklen_t sl = sizeof(sa);
    getsockname(lfd, (struct sockaddr *)&sa, &sl);
    const char *dir = fresh_dir();
    char y[1024];
    snprintf(y, sizeof(y),
             "agent: {id: hang}\n"
             "hub: {urls: [\"http://127.0.0.1:%d\"], token_env: \"\", timeout: 1h, retries: 0}\n"
             "interval: 20ms\nbatch: {max_delay: 0}\nshutdown_timeout: 50ms\n"
             "spool: {path: \"%s\", fsync: false}\n"
             "collectors: [{type: counter}]\n",
             ntohs(sa.sin_port), dir);
    vigil_config *cfg = load_yaml(y);
    vigil_agent_options o = test_opts();
    vigil_agent *a = new_agent(cfg, &o);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, run_thread, a), 0);
    while (g_seq < 1)
        usleep(5000);
    usleep(50000); /* the first send is now stuck on the silent hub */
    vigil_agent_stop(a);
    void *rc = NULL;
    ck_assert_int_eq(pthread_join(th, &rc), 0);
    ck_assert_int_eq((int)(intptr_t)rc, VIGIL_OK);
    vigil_agent_stats s = stats(a);
    ck_assert_uint_ge(s.spooled, 1);
    ck_assert_uint_eq(s.batches_sent, 0);
    ck_assert_uint_eq(s.dropped, 0);
    vigil_agent_free(a);
    vigil_config_free(cfg);
    close(lfd);
}
END_TEST

/* ---- the daemon --------------------------------------------------------------------------- */

static const char *daemon_path(void)
{
    static char path[PATH_MAX + 32];
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    ck_assert_int_gt(n, 0);
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    *slash = '\0'; /* .../tests */
    slash = strrchr(exe, '/');
    *slash = '\0';
    snprintf(path, sizeof(path), "%s/bin/vigil-agent", exe);
    ck_assert_msg(access(path, X_OK) == 0, "%s is missing", path);
    return path;
}

/* Runs the daemon with args, stdout and stderr into files; returns its pid. */
static pid_t spawn(const char *const *args, const char *out, const char *err)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(o, 1);
        dup2(e, 2);
        setenv("ASAN_OPTIONS", "detect_leaks=1", 1);
        execv(args[0], (char *const *)args);
        _exit(127);
    }
    return pid;
}

static int wait_exit(pid_t pid)
{
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st), "daemon died with signal %d", WTERMSIG(st));
    return WEXITSTATUS(st);
}

static char *slurp(const char *path)
{
    static char buf[1 << 20];
    FILE *f = fopen(path, "rb");
    if (!f && errno == ENOENT) { /* the child has not created it yet */
        buf[0] = '\0';
        return buf;
    }
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

START_TEST(daemon_check_config_and_once)
{
    const char *bin = daemon_path();
    const char *dir = fresh_dir();
    char out[1024], err[1024], cfgp[1024];
    snprintf(out, sizeof(out), "%s/out", dir);
    snprintf(err, sizeof(err), "%s/err", dir);
    snprintf(cfgp, sizeof(cfgp), "%s/configs/agent.yaml", vt_srcdir());

    const char *check[] = {bin, "--check-config", "--config", cfgp, NULL};
    ck_assert_int_eq(wait_exit(spawn(check, out, err)), 0);
    ck_assert_ptr_nonnull(strstr(slurp(out), "configuration OK"));

    const char *bad = vt_write_file(dir, "bad.yaml", "hub:\n  urll: x\n", 15);
    const char *check_bad[] = {bin, "--config", bad, "--check-config", NULL};
    ck_assert_int_eq(wait_exit(spawn(check_bad, out, err)), 1);
    char *e = slurp(err);
    ck_assert_ptr_nonnull(strstr(e, "bad.yaml:2:3: hub.urll: unknown key"));
    ck_assert_ptr_nonnull(strstr(e, "level=error"));

    const char *y = "agent: {id: once-host}\n"
                    "collectors: [{type: cpu, per_cpu: false}, {type: memory}, {type: load}]\n";
    const char *onecfg = vt_write_file(dir, "once.yaml", y, strlen(y));
    const char *once[] = {bin, "--config", onecfg, "--once", NULL};
    ck_assert_int_eq(wait_exit(spawn(once, out, err)), 0);
    char *json = slurp(out);
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    int rc = vigil_batch_decode_json(b, json, strlen(json), NULL);
    ck_assert_msg(rc == VIGIL_OK, "%s: %s", vigil_error_last()->message, json);
    ck_assert_str_eq(vigil_batch_agent(b), "once-host");
    const vigil_metric *cpu = find(b, "cpu_usage"); /* a rate: needs the second reading */
    ck_assert_ptr_nonnull(cpu);
    ck_assert(cpu->value >= 0 && cpu->value <= 1);
    ck_assert_str_eq(tag(cpu, "host"), "once-host");
    ck_assert_ptr_nonnull(find(b, "memory_available_bytes"));
    vigil_batch_free(b);

    const char *usage[] = {bin, "--bogus", NULL};
    ck_assert_int_eq(wait_exit(spawn(usage, out, err)), 2);
    ck_assert_ptr_nonnull(strstr(slurp(err), "usage: vigil-agent"));
}
END_TEST

START_TEST(daemon_reloads_on_hup_and_flushes_on_term)
{
    const char *bin = daemon_path();
    const char *dir = fresh_dir();
    char out[600], err[600], spool[600];
    snprintf(out, sizeof(out), "%s/out", dir);
    snprintf(err, sizeof(err), "%s/err", dir);
    snprintf(spool, sizeof(spool), "%s/spool", dir);
    char y[2048];
    snprintf(y, sizeof(y),
             "agent: {id: d1}\nhub: {urls: [\"http://127.0.0.1:%d\"], token_env: \"\"}\n"
             "interval: 50ms\nbatch: {max_delay: 1h}\n"
             "spool: {path: \"%s\", fsync: false}\n"
             "collectors: [{type: memory}]\n",
             free_port(), spool);
    const char *cfg = vt_write_file(dir, "a.yaml", y, strlen(y));
    const char *args[] = {bin, "--config", cfg, NULL};
    pid_t pid = spawn(args, out, err);
    while (!strstr(slurp(err), "agent ready"))
        usleep(10000);

    /* a broken file is refused and the agent keeps running */
    vt_write_file(dir, "a.yaml", "interval: soon\n", 15);
    ck_assert_int_eq(kill(pid, SIGHUP), 0);
    while (!strstr(slurp(err), "reload refused"))
        usleep(10000);
    ck_assert_ptr_nonnull(strstr(slurp(err), "a.yaml:1:11: interval: expected a duration"));
    /* a good one is taken */
    char y2[2048];
    snprintf(y2, sizeof(y2), "%s", y);
    char *id = strstr(y2, "d1");
    id[1] = '2';
    vt_write_file(dir, "a.yaml", y2, strlen(y2));
    ck_assert_int_eq(kill(pid, SIGHUP), 0);
    while (!strstr(slurp(err), "id=d2"))
        usleep(10000);
    usleep(100000);

    /* TERM: what was collected (max_delay 1h: never shipped) goes to the spool */
    ck_assert_int_eq(kill(pid, SIGTERM), 0);
    ck_assert_int_eq(wait_exit(pid), 0);
    ck_assert_ptr_nonnull(strstr(slurp(err), "agent stopped"));
    vigil_config *c = NULL;
    char y3[2048];
    snprintf(y3, sizeof(y3), "spool: {path: \"%s\"}\ncollectors: []\n", spool);
    c = load_yaml(y3);
    vigil_agent_options o = test_opts();
    vigil_agent *a = new_agent(c, &o);
    ck_assert_uint_ge(stats(a).spool_records, 2); /* one per agent generation at least */
    vigil_agent_free(a);
    vigil_config_free(c);
}
END_TEST

static Suite *agent_suite(void)
{
    Suite *s = suite_create("agent_http");
    TCase *tc = tcase_create("agent");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, step_schedules_with_an_injected_clock);
    tcase_add_test(tc, heartbeat_every_interval);
    tcase_add_test(tc, host_defaults_to_the_host_name);
    tcase_add_test(tc, batches_wait_for_max_delay_and_split_at_max_metrics);
    tcase_add_test(tc, hub_down_spools_and_replays_after_restart);
    tcase_add_test(tc, unauthorized_is_spooled_and_bad_request_dropped);
    tcase_add_test(tc, events_ship_at_once_ahead_of_the_backlog);
    tcase_add_test(tc, failing_collector_becomes_an_error_sample);
    tcase_add_test(tc, process_exit_is_shipped_through_the_event_path);
    tcase_add_test(tc, run_until_stopped_from_another_thread);
    tcase_add_test(tc, stop_spools_when_the_hub_hangs);
    tcase_add_test(tc, daemon_check_config_and_once);
    tcase_add_test(tc, daemon_reloads_on_hup_and_flushes_on_term);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(agent_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
