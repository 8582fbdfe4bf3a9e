/* The agent's spool against hubs on loopback: what a hub's answer does to a
 * batch. A real hub (vigil_hub over vigil_httpd) with a small body limit
 * answers 413 and the agent splits the batch, every metric stored exactly
 * once and in order; a scripted server answers 404, 408, 401, 403, 409, 400,
 * 415 and 403 agent_mismatch, and only a judgement of the content drops a
 * batch (counted, logged with the hub's message), everything else keeps it. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gzip/gzip.h"
#include "httptest.h"
#include "testutil.h"
#include "vigil/agent.h"
#include "vigil/api.h"
#include "vigil/httpd.h"
#include "vigil/hub.h"
#include "vigil/store.h"
#include "vigil/sys/collector.h"

/* ---- log capture ----------------------------------------------------------------- */

static pthread_mutex_t g_log_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_log[1 << 18];
static size_t g_log_len;

static void log_cb(const vigil_log_record *r, void *payload)
{
    (void)payload;
    vigil_buf b = VIGIL_BUF_INIT;
    pthread_mutex_lock(&g_log_mu);
    if (vigil_log_format(&b, r) == VIGIL_OK && g_log_len + b.size + 2 < sizeof(g_log)) {
        memcpy(g_log + g_log_len, b.ptr, b.size);
        g_log_len += b.size;
        g_log[g_log_len++] = '\n';
        g_log[g_log_len] = '\0';
    }
    pthread_mutex_unlock(&g_log_mu);
    vigil_buf_dispose(&b);
}

static void log_reset(void)
{
    pthread_mutex_lock(&g_log_mu);
    g_log_len = 0;
    g_log[0] = '\0';
    pthread_mutex_unlock(&g_log_mu);
}

/* The log line containing `needle` (copied), or "" */
static const char *log_line(const char *needle)
{
    static char line[8192];
    line[0] = '\0';
    pthread_mutex_lock(&g_log_mu);
    const char *p = strstr(g_log, needle);
    if (p) {
        const char *s = p;
        while (s > g_log && s[-1] != '\n')
            s--;
        size_t n = strcspn(s, "\n");
        if (n >= sizeof(line))
            n = sizeof(line) - 1;
        memcpy(line, s, n);
        line[n] = '\0';
    }
    pthread_mutex_unlock(&g_log_mu);
    return line;
}

static vigil_logger test_logger(void)
{
    vigil_logger lg = {log_cb, NULL, VIGIL_LOG_DEBUG};
    return lg;
}

/* ---- a collector type writing what the test asks for ------------------------------ */

static int g_count; /* spool_seq samples per collection */
static int g_big;   /* non-zero: one spool_big sample of ~8 KB of random tags first */

static uint64_t g_rng = 88172645463325252ULL;
static uint64_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

static int seq_create(void **state, const vigil_config_node *cfg,
                      const vigil_collector_context *ctx)
{
    (void)cfg;
    (void)ctx;
    *state = NULL;
    return VIGIL_OK;
}

/* spool_seq{} samples i = 0..count-1 at now + i, value i plus a random
 * fraction (so that gzip cannot shrink a batch below the hub's limit) */
static int seq_collect(void *state, vigil_batch *out, int64_t now)
{
    (void)state;
    int rc = VIGIL_OK;
    if (g_big) {
        static char vals[8][1001];
        vigil_tag tags[8];
        static const char *const keys[] = {"a", "b", "c", "d", "e", "f", "g", "h"};
        for (int k = 0; k < 8; k++) {
            for (int i = 0; i < 1000; i++)
                vals[k][i] =
                    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"[rnd() % 62];
            vals[k][1000] = '\0';
            tags[k].key = keys[k];
            tags[k].value = vals[k];
        }
        vigil_metric m = {"spool_big", 1, now, tags, 8, NULL};
        rc = vigil_batch_add(out, &m);
    }
    for (int i = 0; !rc && i < g_count; i++) {
        double v = i + (double)(rnd() % 1000000) / 1e7;
        vigil_metric m = {"spool_seq", v, now + i, NULL, 0, NULL};
        rc = vigil_batch_add(out, &m);
    }
    return rc;
}

static void seq_destroy(void *state)
{
    (void)state;
}

static const vigil_collector_type seq_type = {
    .version = VIGIL_COLLECTOR_TYPE_VERSION,
    .name = "spool_seq",
    .create = seq_create,
    .collect = seq_collect,
    .destroy = seq_destroy,
};

static vigil_collector_registry *g_reg;

static void setup(void)
{
    ck_assert_int_eq(vigil_collector_registry_new(&g_reg), VIGIL_OK);
    ck_assert_int_eq(vigil_collector_register(g_reg, &seq_type), VIGIL_OK);
    g_count = 5;
    g_big = 0;
    log_reset();
}

static void teardown(void)
{
    vigil_collector_registry_free(g_reg);
    g_reg = NULL;
}

/* ---- the agent ---------------------------------------------------------------------- */

static const char *fresh_dir(void)
{
    static char out[8][600];
    static int n;
    char *p = out[n % 8];
    snprintf(p, sizeof(out[0]), "%s/s%d", vt_tmpdir(), n);
    n++;
    ck_assert_msg(mkdir(p, 0700) == 0, "mkdir %s: %s", p, strerror(errno));
    return p;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct agent_env {
    vigil_config *cfg;
    vigil_agent *a;
    char url[64];
    const char *urls[1];
} agent_env;

/* An agent shipping to 127.0.0.1:port at once (no batching delay), one
 * attempt per send, a short backoff, its spool in a fresh directory; the
 * spool_seq collector runs once an hour, the heartbeat every `heartbeat_ms`. */
static void agent_start(agent_env *e, int port, int retries, int64_t heartbeat_ms)
{
    char y[1024];
    snprintf(y, sizeof(y),
             "agent: {id: spool-host}\n"
             "spool: {path: \"%s\", fsync: false}\n"
             "collectors: [{type: spool_seq, interval: 1h}]\n",
             fresh_dir());
    ck_assert_int_eq(vigil_config_load_string(&e->cfg, y, strlen(y), "agent.yaml", NULL), VIGIL_OK);
    snprintf(e->url, sizeof(e->url), "http://127.0.0.1:%d", port);
    e->urls[0] = e->url;
    vigil_agent_options o;
    ck_assert_int_eq(vigil_agent_options_init(&o, VIGIL_AGENT_OPTIONS_VERSION), VIGIL_OK);
    o.collector_types = g_reg;
    o.logger = test_logger();
    o.hub_urls = e->urls;
    o.nhub_urls = 1;
    o.token_env = "";
    o.retries = retries;
    o.backoff_ms = 10;
    o.backoff_max_ms = 20;
    o.request_timeout_ms = 5000;
    o.batch_max_delay_ms = -1;
    o.heartbeat_ms = heartbeat_ms;
    o.interval_ms = 3600 * 1000;
    int rc = vigil_agent_new(&e->a, e->cfg, &o);
    ck_assert_msg(rc == VIGIL_OK, "agent: %s", vigil_error_last()->message);
}

static void agent_stop(agent_env *e)
{
    vigil_agent_free(e->a);
    vigil_config_free(e->cfg);
}

static vigil_agent_stats stats(const vigil_agent *a)
{
    vigil_agent_stats s = VIGIL_AGENT_STATS_INIT;
    ck_assert_int_eq(vigil_agent_stats_get(a, &s), VIGIL_OK);
    return s;
}

/* ---- a real hub with a small body limit --------------------------------------------- */

typedef struct real_hub {
    vigil_hub *hub;
    vigil_api *api;
    vigil_httpd *httpd;
    int port;
} real_hub;

static void real_hub_start(real_hub *s, uint64_t max_body)
{
    memset(s, 0, sizeof(*s));
    vigil_hub_options o = VIGIL_HUB_OPTIONS_INIT;
    o.store_url = "sqlite::memory:";
    o.events_interval_ms = 3600 * 1000;
    o.logger = test_logger();
    ck_assert_int_eq(vigil_hub_new(&s->hub, &o), VIGIL_OK);
    /* a rule that reads an hour of spool_seq: its series gets a window */
    static const char rule[] = "policies:\n"
                               "  - {name: seq, kind: threshold, metric: spool_seq, window: 1h,\n"
                               "     op: \">\", threshold: 1e12, action: noop}\n";
    vigil_config *cfg = NULL;
    ck_assert_int_eq(vigil_config_load_string(&cfg, rule, strlen(rule), "seq.yaml", NULL),
                     VIGIL_OK);
    ck_assert_int_eq(
        vigil_engine_load(vigil_hub_engine(s->hub),
                          vigil_config_node_get(vigil_config_root(cfg, 0), "policies")),
        VIGIL_OK);
    vigil_config_free(cfg);
    ck_assert_int_eq(vigil_hub_start(s->hub), VIGIL_OK);
    vigil_api_options ao = VIGIL_API_OPTIONS_INIT;
    ao.max_body = max_body;
    ao.logger = test_logger();
    ck_assert_int_eq(vigil_api_new(&s->api, &ao), VIGIL_OK);
    ck_assert_int_eq(vigil_hub_mount(s->hub, s->api), VIGIL_OK);
    vigil_httpd_options ho = VIGIL_HTTPD_OPTIONS_INIT;
    ho.listen = "127.0.0.1:0";
    ho.logger = test_logger();
    ho.max_body = max_body;
    ck_assert_msg(vigil_httpd_new(&s->httpd, s->api, &ho) == VIGIL_OK, "%s",
                  vigil_error_last()->message);
    ck_assert_msg(vigil_httpd_start(s->httpd) == VIGIL_OK, "%s", vigil_error_last()->message);
    s->port = vigil_httpd_port(s->httpd);
    ck_assert_int_gt(s->port, 0);
}

static void real_hub_stop(real_hub *s)
{
    vigil_httpd_quiesce(s->httpd);
    vigil_hub_stop(s->hub);
    vigil_httpd_free(s->httpd);
    vigil_api_free(s->api);
    vigil_hub_free(s->hub);
}

static vigil_hub_stats hub_stats(real_hub *s)
{
    vigil_hub_stats st = VIGIL_HUB_STATS_INIT;
    ck_assert_int_eq(vigil_hub_stats_get(s->hub, &st), VIGIL_OK);
    return st;
}

typedef struct points {
    size_t n;
    int in_order; /* each value's integer part is the previous one's plus 1 */
    double last;
} points;

static int collect_point(const vigil_store_series *s, const vigil_store_point *p, void *payload)
{
    (void)s;
    points *pts = payload;
    if (pts->n > 0 && (long)p->value != (long)pts->last + 1)
        pts->in_order = 0;
    pts->last = p->value;
    pts->n++;
    return 0;
}

/* The stored samples of `name` (the hub's store, oldest first). */
static points stored(real_hub *s, const char *name)
{
    vigil_store_query q = VIGIL_STORE_QUERY_INIT;
    q.name = name;
    points pts = {0, 1, 0};
    ck_assert_int_eq(vigil_store_query_run(vigil_hub_store(s->hub), &q, collect_point, &pts),
                     VIGIL_OK);
    return pts;
}

/* Samples of spool_seq{host=spool-host} in the hub's window: a sample that
 * arrives after a newer one of its series is stored but stays out of the
 * window, so a full count says the samples arrived in order. */
static double window_count(real_hub *s, int64_t now)
{
    vigil_tag t = {"host", "spool-host"};
    vigil_metric m = {"spool_seq", 0, now, &t, 1, NULL};
    vigil_buf key = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil_metric_series_key(&key, &m), VIGIL_OK);
    double v = -1;
    ck_assert_int_eq(
        vigil_hub_window_aggregate(s->hub, key.ptr, VIGIL_WINDOW_COUNT, 3600 * 1000, now, &v),
        VIGIL_OK);
    vigil_buf_dispose(&key);
    return v;
}

/* ---- a scripted server ------------------------------------------------------------- */

#define SCRIPT_MAX 16
#define SEEN_MAX   64

typedef struct answer {
    int status;
    const char *body; /* JSON error body */
} answer;

typedef struct seen {
    int status; /* what the server answered */
    char batch_id[160];
    size_t metrics;
    double refused; /* vigil_agent_refused in the batch, -1 when absent */
} seen;

typedef struct fake {
    int lfd, port;
    int stop[2];
    pthread_t acceptor;
    pthread_mutex_t mu;
    answer script[SCRIPT_MAX];
    int nscript, next;
    seen seen[SEEN_MAX];
    int nseen;
} fake;

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One request (head and Content-Length body) into a malloc'd buffer. */
static char *read_request(int fd, size_t *head, size_t *body)
{
    size_t cap = 1 << 16, n = 0;
    char *req = malloc(cap + 1);
    ck_assert_ptr_nonnull(req);
    char *end = NULL;
    while (!end) {
        if (n == cap)
            goto fail;
        ssize_t r = recv(fd, req + n, cap - n, 0);
        if (r <= 0)
            goto fail;
        n += (size_t)r;
        req[n] = '\0';
        end = strstr(req, "\r\n\r\n");
    }
    *head = (size_t)(end + 4 - req);
    const char *cl = strcasestr(req, "\r\nContent-Length:");
    *body = cl && cl < end ? (size_t)strtoul(cl + 17, NULL, 10) : 0;
    if (*head + *body > cap) {
        cap = *head + *body;
        char *nr = realloc(req, cap + 1);
        ck_assert_ptr_nonnull(nr);
        req = nr;
    }
    while (n < *head + *body) {
        ssize_t r = recv(fd, req + n, cap - n, 0);
        if (r <= 0)
            goto fail;
        n += (size_t)r;
    }
    return req;
fail:
    free(req);
    return NULL;
}

static void record(fake *f, int status, const char *gz, size_t len)
{
    seen s = {status, "", 0, -1};
    vigil_buf json = VIGIL_BUF_INIT;
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil__gzip_inflate(&json, gz, len, 64u << 20), VIGIL_OK);
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    ck_assert_int_eq(vigil_batch_decode_json(b, json.ptr, json.size, NULL), VIGIL_OK);
    snprintf(s.batch_id, sizeof(s.batch_id), "%s", vigil_batch_id(b) ? vigil_batch_id(b) : "");
    s.metrics = vigil_batch_count(b);
    for (size_t i = 0; i < s.metrics; i++)
        if (strcmp(vigil_batch_get(b, i)->name, "vigil_agent_refused") == 0)
            s.refused = vigil_batch_get(b, i)->value;
    vigil_batch_free(b);
    vigil_buf_dispose(&json);
    pthread_mutex_lock(&f->mu);
    if (f->nseen < SEEN_MAX)
        f->seen[f->nseen++] = s;
    pthread_mutex_unlock(&f->mu);
}

typedef struct conn_arg {
    fake *f;
    int fd;
} conn_arg;

static void *conn_main(void *p)
{
    conn_arg *c = p;
    fake *f = c->f;
    for (;;) {
        size_t head = 0, body = 0;
        char *req = read_request(c->fd, &head, &body);
        if (!req)
            break;
        pthread_mutex_lock(&f->mu);
        answer a = {202, NULL};
        if (f->next < f->nscript)
            a = f->script[f->next++];
        pthread_mutex_unlock(&f->mu);
        record(f, a.status, req + head, body);
        free(req);
        const char *text = a.body ? a.body : "{\"accepted\":1,\"duplicate\":false}";
        char hdr[256];
        int n = snprintf(hdr, sizeof(hdr),
                         "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\n\r\n",
                         a.status, strlen(text));
        if (send_all(c->fd, hdr, (size_t)n) || send_all(c->fd, text, strlen(text)))
            break;
    }
    close(c->fd);
    free(c);
    return NULL;
}

static void *accept_main(void *p)
{
    fake *f = p;
    for (;;) {
        struct pollfd pf[2] = {{f->lfd, POLLIN, 0}, {f->stop[0], POLLIN, 0}};
        if (poll(pf, 2, -1) < 0 && errno == EINTR)
            continue;
        if (pf[1].revents)
            break;
        int fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        conn_arg *c = malloc(sizeof(*c));
        ck_assert_ptr_nonnull(c);
        c->f = f;
        c->fd = fd;
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, NULL, conn_main, c), 0);
        pthread_detach(t);
    }
    return NULL;
}

static fake *fake_start(const answer *script, int n)
{
    fake *f = calloc(1, sizeof(*f));
    ck_assert_ptr_nonnull(f);
    ck_assert_int_le(n, SCRIPT_MAX);
    memcpy(f->script, script, (size_t)n * sizeof(*script));
    f->nscript = n;
    pthread_mutex_init(&f->mu, NULL);
    f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(f->lfd, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(f->lfd, 16), 0);
    socklen_t sl = sizeof(sa);
    ck_assert_int_eq(getsockname(f->lfd, (struct sockaddr *)&sa, &sl), 0);
    f->port = ntohs(sa.sin_port);
    ck_assert_int_eq(pipe(f->stop), 0);
    ck_assert_int_eq(pthread_create(&f->acceptor, NULL, accept_main, f), 0);
    return f;
}

static void fake_stop(fake *f)
{
    ck_assert_int_eq(write(f->stop[1], "x", 1), 1);
    pthread_join(f->acceptor, NULL);
    close(f->lfd);
    close(f->stop[0]);
    close(f->stop[1]);
    pthread_mutex_destroy(&f->mu);
    free(f); /* connection threads end when the agent's client closes */
}

static seen fake_seen(fake *f, int i)
{
    pthread_mutex_lock(&f->mu);
    ck_assert_int_lt(i, f->nseen);
    seen s = f->seen[i];
    pthread_mutex_unlock(&f->mu);
    return s;
}

static int fake_count(fake *f)
{
    pthread_mutex_lock(&f->mu);
    int n = f->nseen;
    pthread_mutex_unlock(&f->mu);
    return n;
}

/* ---- tests -------------------------------------------------------------------------- */

/* A real hub whose body limit is smaller than the agent's batch answers 413:
 * the agent halves the batch until the parts fit, and every metric is stored
 * exactly once, in the order it was collected. */
START_TEST(real_hub_413_splits_every_metric_once_in_order)
{
    real_hub h;
    real_hub_start(&h, 1500);
    g_count = 300;
    agent_env e;
    agent_start(&e, h.port, 2, 3600 * 1000);
    int64_t t0 = now_ms();
    ck_assert_int_eq(vigil_agent_step(e.a, t0, NULL), VIGIL_OK);

    vigil_agent_stats s = stats(e.a);
    ck_assert_uint_ge(s.splits, 1);
    ck_assert_uint_eq(s.dropped, 0);
    ck_assert_uint_eq(s.refused, 0);
    ck_assert_uint_eq(s.spooled, 0);
    ck_assert_uint_eq(s.spool_records, 0);
    ck_assert_uint_ge(s.batches_sent, 2);
    vigil_hub_stats hs = hub_stats(&h);
    /* every sample the agent collected (self-metrics included), once */
    ck_assert_uint_eq(hs.samples, s.metrics);
    ck_assert_uint_eq(hs.duplicates, 0);
    ck_assert_uint_eq(hs.batches, s.batches_sent);
    points p = stored(&h, "spool_seq");
    ck_assert_uint_eq(p.n, 300);
    ck_assert(p.in_order);
    ck_assert_double_eq(window_count(&h, t0 + 300), 300);
    /* and through the hub's HTTP API, as a user would look */
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/query?name=spool_seq&from=%lld&to=%lld",
             h.port, (long long)t0, (long long)(t0 + 1000));
    http_result r;
    http_do("GET", url, NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    size_t npoints = 0;
    for (const char *q = strstr(r.body, "\"points\":[["); q && (q = strchr(q + 1, '[')) != NULL;)
        npoints++;
    ck_assert_uint_eq(npoints, 300 + 1); /* the list's "[" and one per point */
    http_result_free(&r);
    const char *line = log_line("hub found the batch too large; splitting");
    ck_assert_ptr_nonnull(strstr(line, "metrics="));
    ck_assert_ptr_nonnull(strstr(log_line("hub found the batch too large\""), "status=413"));
    printf("413 split: %llu samples in %llu batches after %llu splits\n",
           (unsigned long long)hs.samples, (unsigned long long)s.batches_sent,
           (unsigned long long)s.splits);
    agent_stop(&e);
    real_hub_stop(&h);
}
END_TEST

/* A batch split, its second half not taken (503): the whole batch is kept;
 * split again at the replay, each half carries the same derived id as the
 * first time, so a hub acknowledges the half it took as a duplicate. */
START_TEST(split_interrupted_is_kept_and_resent_with_the_same_ids)
{
    const answer script[] = {
        {413, "{\"error\":{\"code\":\"too_large\",\"message\":\"too big\"}}"},
        {202, NULL},
        {503, "{\"error\":{\"code\":\"unavailable\",\"message\":\"stopping\"}}"},
        {413, "{\"error\":{\"code\":\"too_large\",\"message\":\"too big\"}}"},
    };
    fake *f = fake_start(script, 4);
    g_count = 40;
    agent_env e;
    agent_start(&e, f->port, -1, 3600 * 1000);
    int64_t t0 = now_ms();
    ck_assert_int_eq(vigil_agent_step(e.a, t0, NULL), VIGIL_OK);
    vigil_agent_stats s = stats(e.a);
    ck_assert_uint_eq(s.splits, 1);
    ck_assert_uint_eq(s.spool_records, 1);
    ck_assert_uint_eq(s.dropped, 0);
    ck_assert_int_eq(fake_count(f), 3);

    ck_assert_int_eq(vigil_agent_step(e.a, t0 + 1000, NULL), VIGIL_OK);
    s = stats(e.a);
    ck_assert_uint_eq(s.splits, 2);
    ck_assert_uint_eq(s.spool_records, 0);
    ck_assert_uint_eq(s.replayed, 1);
    ck_assert_uint_eq(s.dropped, 0);
    ck_assert_int_eq(fake_count(f), 6);
    seen whole = fake_seen(f, 0);
    char id0[200], id1[200];
    snprintf(id0, sizeof(id0), "%s.0", whole.batch_id);
    snprintf(id1, sizeof(id1), "%s.1", whole.batch_id);
    ck_assert_uint_eq(strlen(whole.batch_id), 32);
    ck_assert_str_eq(fake_seen(f, 3).batch_id, whole.batch_id);
    ck_assert_str_eq(fake_seen(f, 1).batch_id, id0);
    ck_assert_str_eq(fake_seen(f, 4).batch_id, id0);
    ck_assert_str_eq(fake_seen(f, 2).batch_id, id1);
    ck_assert_str_eq(fake_seen(f, 5).batch_id, id1);
    ck_assert_uint_eq(fake_seen(f, 1).metrics, whole.metrics / 2);
    ck_assert_uint_eq(fake_seen(f, 4).metrics + fake_seen(f, 5).metrics, whole.metrics);
    ck_assert_uint_eq(whole.metrics, s.metrics);
    agent_stop(&e);
    fake_stop(f);
}
END_TEST

/* One metric larger than the hub's limit can never be accepted: it is
 * dropped with a counted, logged reason, and the rest of its batch arrives. */
START_TEST(single_metric_too_large_is_dropped_the_rest_arrives)
{
    real_hub h;
    real_hub_start(&h, 1500);
    g_count = 20;
    g_big = 1;
    agent_env e;
    agent_start(&e, h.port, 2, 3600 * 1000);
    int64_t t0 = now_ms();
    ck_assert_int_eq(vigil_agent_step(e.a, t0, NULL), VIGIL_OK);
    vigil_agent_stats s = stats(e.a);
    ck_assert_uint_ge(s.splits, 1);
    ck_assert_uint_eq(s.refused, 1);
    ck_assert_uint_eq(s.dropped, 1);
    ck_assert_uint_eq(s.spool_records, 0);
    const char *line = log_line("a single metric is larger than the hub accepts; dropped");
    ck_assert_ptr_nonnull(strstr(line, "level=error"));
    ck_assert_ptr_nonnull(strstr(line, "metric=spool_big"));
    vigil_hub_stats hs = hub_stats(&h);
    ck_assert_uint_eq(hs.samples, s.metrics - 1);
    ck_assert_uint_eq(stored(&h, "spool_big").n, 0);
    points p = stored(&h, "spool_seq");
    ck_assert_uint_eq(p.n, 20);
    ck_assert(p.in_order);
    agent_stop(&e);
    real_hub_stop(&h);
}
END_TEST

/* A misrouting proxy (404), then a 408: the batch stays in the spool; when a
 * hub takes it, it is the same batch (same id, every metric). */
START_TEST(not_found_then_timeout_keeps_the_batch)
{
    const answer script[] = {
        {404, "{\"error\":{\"code\":\"not_found\",\"message\":\"no route\"}}"},
        {408, "{\"error\":{\"code\":\"timeout\",\"message\":\"request timeout\"}}"},
    };
    fake *f = fake_start(script, 2);
    agent_env e;
    agent_start(&e, f->port, -1, 3600 * 1000);
    int64_t t0 = now_ms();
    ck_assert_int_eq(vigil_agent_step(e.a, t0, NULL), VIGIL_OK);
    vigil_agent_stats s = stats(e.a);
    ck_assert_uint_eq(s.spooled, 1);
    ck_assert_uint_eq(s.spool_records, 1);
    ck_assert_uint_eq(s.ship_failures, 1);
    ck_assert_uint_eq(s.dropped, 0);
    const char *line = log_line("hub did not take the batch; kept");
    ck_assert_ptr_nonnull(strstr(line, "status=404"));
    ck_assert_ptr_nonnull(strstr(line, "code=not_found"));
    ck_assert_ptr_nonnull(strstr(line, "error=\"no route\""));

    ck_assert_int_eq(vigil_agent_step(e.a, t0 + 1000, NULL), VIGIL_OK);
    s = stats(e.a);
    ck_assert_uint_eq(s.spool_records, 1);
    ck_assert_uint_eq(s.ship_failures, 2);
    ck_assert_uint_eq(s.dropped, 0);
    ck_assert_ptr_nonnull(strstr(g_log, "status=408"));

    ck_assert_int_eq(vigil_agent_step(e.a, t0 + 2000, NULL), VIGIL_OK);
    s = stats(e.a);
    ck_assert_uint_eq(s.spool_records, 0);
    ck_assert_uint_eq(s.replayed, 1);
    ck_assert_uint_eq(s.dropped, 0);
    ck_assert_uint_eq(s.refused, 0);
    ck_assert_int_eq(fake_count(f), 3);
    seen a = fake_seen(f, 0), b = fake_seen(f, 1), c = fake_seen(f, 2);
    ck_assert_int_eq(a.status, 404);
    ck_assert_int_eq(b.status, 408);
    ck_assert_int_eq(c.status, 202);
    ck_assert_str_eq(a.batch_id, c.batch_id);
    ck_assert_str_eq(b.batch_id, c.batch_id);
    ck_assert_uint_eq(c.metrics, a.metrics);
    ck_assert_uint_eq(c.metrics, s.metrics); /* nothing lost */
    agent_stop(&e);
    fake_stop(f);
}
END_TEST

/* 400: the hub judged the content; the batch is dropped, counted in the
 * stats and the self-metric, and logged with the hub's message, escaped
 * and clipped. */
START_TEST(bad_request_is_dropped_counted_and_logged)
{
    static char body[2048];
    char tail[801];
    memset(tail, 'x', 800);
    tail[800] = '\0';
    snprintf(body, sizeof(body),
             "{\"error\":{\"code\":\"invalid_metric\",\"message\":\"metrics[0].value: "
             "\\\"bad\\\"\\nnext line %sEND\",\"path\":\"metrics[0].value\"}}",
             tail);
    const answer script[] = {{400, body}};
    fake *f = fake_start(script, 1);
    agent_env e;
    agent_start(&e, f->port, 2, 1000);
    int64_t t0 = now_ms();
    ck_assert_int_eq(vigil_agent_step(e.a, t0, NULL), VIGIL_OK);
    vigil_agent_stats s = stats(e.a);
    ck_assert_uint_eq(s.dropped, 1);
    ck_assert_uint_eq(s.refused, 1);
    ck_assert_uint_eq(s.spooled, 0);
    ck_assert_uint_eq(s.spool_records, 0);
    ck_assert_uint_eq(s.ship_failures, 0);
    ck_assert_int_eq(fake_count(f), 1); /* never retried */
    const char *line = log_line("hub refused the batch; dropped");
    ck_assert_ptr_nonnull(strstr(line, "level=error"));
    ck_assert_ptr_nonnull(strstr(line, "status=400"));
    ck_assert_ptr_nonnull(strstr(line, "code=invalid_metric"));
    ck_assert_ptr_nonnull(strstr(line, "error=\"metrics[0].value: \\\"bad\\\"\\nnext line xxx"));
    ck_assert_ptr_null(strstr(line, "END")); /* clipped */
    ck_assert_ptr_null(strchr(line, '\r'));

    /* the next heartbeat reports it */
    ck_assert_int_eq(vigil_agent_step(e.a, t0 + 1000, NULL), VIGIL_OK);
    ck_assert_int_eq(fake_count(f), 2);
    seen hb = fake_seen(f, 1);
    ck_assert_int_eq(hb.status, 202);
    ck_assert_double_eq(hb.refused, 1);
    agent_stop(&e);
    fake_stop(f);
}
END_TEST

typedef struct verdict {
    int status;
    const char *body;
    int dropped;
} verdict;

/* Each answer alone: dropped only when it judges the batch's content. */
START_TEST(only_a_judgement_of_the_content_drops)
{
    static const verdict v[] = {
        {400, "{\"error\":{\"code\":\"invalid_json\",\"message\":\"not JSON\"}}", 1},
        {415, "{\"error\":{\"code\":\"unsupported_media_type\",\"message\":\"gzip?\"}}", 1},
        {403,
         "{\"error\":{\"code\":\"agent_mismatch\",\"message\":\"host web-02 is not "
         "token agents' \"}}",
         1},
        {401, "{\"error\":{\"code\":\"unauthorized\",\"message\":\"invalid token\"}}", 0},
        {403, "{\"error\":{\"code\":\"forbidden\",\"message\":\"token lacks ingest\"}}", 0},
        {404, "<html>not found</html>", 0},
        {405, NULL, 0},
        {408, NULL, 0},
        {409, "{\"error\":{\"code\":\"conflict\",\"message\":\"x\"}}", 0},
        {422, NULL, 0},
        {429, "{\"error\":{\"code\":\"overloaded\",\"message\":\"queue full\"}}", 0},
        {503, NULL, 0},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        const char *body = v[i].body ? v[i].body : "{\"error\":{\"code\":\"x\",\"message\":\"y\"}}";
        answer script[] = {{v[i].status, body}};
        fake *f = fake_start(script, 1);
        agent_env e;
        log_reset();
        agent_start(&e, f->port, -1, 3600 * 1000);
        int64_t t0 = now_ms();
        ck_assert_int_eq(vigil_agent_step(e.a, t0, NULL), VIGIL_OK);
        vigil_agent_stats s = stats(e.a);
        ck_assert_msg(s.dropped == (uint64_t)v[i].dropped, "status %d: dropped %llu", v[i].status,
                      (unsigned long long)s.dropped);
        ck_assert_uint_eq(s.refused, s.dropped);
        ck_assert_msg(s.spool_records == (uint64_t)!v[i].dropped, "status %d: spool %llu",
                      v[i].status, (unsigned long long)s.spool_records);
        if (!v[i].dropped) {
            /* kept: delivered whole once the hub takes it */
            ck_assert_int_eq(vigil_agent_step(e.a, t0 + 1000, NULL), VIGIL_OK);
            s = stats(e.a);
            ck_assert_uint_eq(s.spool_records, 0);
            ck_assert_uint_eq(s.replayed, 1);
            ck_assert_int_eq(fake_count(f), 2);
            ck_assert_str_eq(fake_seen(f, 0).batch_id, fake_seen(f, 1).batch_id);
            ck_assert_uint_eq(fake_seen(f, 1).metrics, s.metrics);
        } else {
            ck_assert_ptr_nonnull(strstr(log_line("hub refused the batch; dropped"), "status="));
        }
        agent_stop(&e);
        fake_stop(f);
    }
}
END_TEST

static Suite *agent_spool_suite(void)
{
    Suite *s = suite_create("agent_spool");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, real_hub_413_splits_every_metric_once_in_order);
    tcase_add_test(tc, split_interrupted_is_kept_and_resent_with_the_same_ids);
    tcase_add_test(tc, single_metric_too_large_is_dropped_the_rest_arrives);
    tcase_add_test(tc, not_found_then_timeout_keeps_the_batch);
    tcase_add_test(tc, bad_request_is_dropped_counted_and_logged);
    tcase_add_test(tc, only_a_judgement_of_the_content_drops);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(agent_spool_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
