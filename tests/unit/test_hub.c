/* hub: ingest to the store with group commit, duplicates, future samples,
 * windows, the queue limit, stop/drain, the events bus, every hub route
 * through vigil_api_handle() with exact status codes and bodies, and
 * collector.yaml. */
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <sqlite3.h>
#include <zlib.h>

#include "testutil.h"

extern char **environ;

#define HOUR_MS (3600LL * 1000)

/* ---- helpers ------------------------------------------------------------------ */

static vigil_hub *hub_at(const char *url, size_t queue_max)
{
    vigil_hub_options o = VIGIL_HUB_OPTIONS_INIT;
    o.store_url = url;
    o.queue_max = queue_max;
    o.events_interval_ms = HOUR_MS; /* no rate ticks during tests */
    o.logger.min_level = VIGIL_LOG_ERROR;
    vigil_hub *hub = NULL;
    ck_assert_msg(vigil_hub_new(&hub, &o) == VIGIL_OK, "%s", vigil_error_last()->message);
    return hub;
}

/* Rules that watch every series of `cpu` and `w` (a 1 min window each) and
 * never fire: only watched series get a window. */
static const char WATCH_RULES[] =
    "policies:\n"
    "  - {name: watch_cpu, kind: threshold, metric: cpu, window: 1m, op: \">\", threshold: 1e12,"
    " action: noop}\n"
    "  - {name: watch_w, kind: threshold, metric: w, window: 1m, op: \">\", threshold: 1e12,"
    " action: noop}\n";

/* A hub at `url` with `rules` loaded; *cfg keeps them (free after the hub). */
static vigil_hub *hub_with_rules(const char *url, const char *rules, size_t max_series,
                                 vigil_config **cfg)
{
    ck_assert_int_eq(vigil_config_load_string(cfg, rules, strlen(rules), "watch.yaml", NULL),
                     VIGIL_OK);
    vigil_hub_options o = VIGIL_HUB_OPTIONS_INIT;
    o.store_url = url;
    o.events_interval_ms = HOUR_MS;
    o.logger.min_level = VIGIL_LOG_ERROR;
    o.windows.version = VIGIL_WINDOW_SET_OPTIONS_VERSION;
    o.windows.max_series = max_series;
    o.policies = vigil_config_node_get(vigil_config_root(*cfg, 0), "policies");
    vigil_hub *hub = NULL;
    ck_assert_msg(vigil_hub_new(&hub, &o) == VIGIL_OK, "%s", vigil_error_last()->message);
    return hub;
}

static vigil_hub *hub_watching(const char *url, size_t max_series, vigil_config **cfg)
{
    return hub_with_rules(url, WATCH_RULES, max_series, cfg);
}

static vigil_hub *hub_started(const char *url)
{
    vigil_hub *hub = hub_at(url, 0);
    ck_assert_int_eq(vigil_hub_start(hub), VIGIL_OK);
    return hub;
}

static const char *file_url(void)
{
    static char url[600];
    snprintf(url, sizeof(url), "sqlite://%s/hub.db", vt_tmpdir());
    return url;
}

/* n metrics "name"{host=h1,i=k} with ts = ts0 + k. */
static vigil_batch *mk_batch(const char *id, size_t n, const char *name, int64_t ts0)
{
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    if (id)
        ck_assert_int_eq(vigil_batch_set_id(b, id), VIGIL_OK);
    ck_assert_int_eq(vigil_batch_set_agent(b, "h1"), VIGIL_OK);
    for (size_t k = 0; k < n; k++) {
        char iv[16];
        snprintf(iv, sizeof(iv), "%zu", k % 10);
        vigil_tag tags[] = {{"host", "h1"}, {"i", iv}};
        vigil_metric m = {name, (double)k, ts0 + (int64_t)k, tags, 2, NULL};
        ck_assert_int_eq(vigil_batch_add(b, &m), VIGIL_OK);
    }
    return b;
}

static int count_point(const vigil_store_series *s, const vigil_store_point *p, void *payload)
{
    (void)s;
    (void)p;
    (*(size_t *)payload)++;
    return 0;
}

static size_t store_count(vigil_store *st, const char *name)
{
    vigil_store_query q = VIGIL_STORE_QUERY_INIT;
    q.name = name;
    size_t n = 0;
    ck_assert_int_eq(vigil_store_query_run(st, &q, count_point, &n), VIGIL_OK);
    return n;
}

typedef struct treq {
    const char *method;
    const char *path;
    const char *query;
    const char *headers[8];
    const char *body;
    size_t body_len;
} treq;

static void fill_req(vigil_api_request *req, vigil_http_header *hs, char (*store)[512],
                     const treq *t)
{
    size_t nh = 0;
    for (size_t i = 0; i < 8 && t->headers[i]; i++) {
        snprintf(store[i], 512, "%s", t->headers[i]);
        char *colon = strchr(store[i], ':');
        *colon = '\0';
        hs[nh].name = store[i];
        hs[nh].value = colon + 2;
        nh++;
    }
    vigil_api_request r = VIGIL_API_REQUEST_INIT;
    r.method = t->method ? t->method : "GET";
    r.path = t->path;
    r.query = t->query;
    r.headers = hs;
    r.nheaders = nh;
    r.body = t->body;
    r.body_len = t->body && !t->body_len ? strlen(t->body) : t->body_len;
    *req = r;
}

static vigil_api_response *run(vigil_api *api, const treq *t)
{
    vigil_http_header hs[8];
    char store[8][512];
    vigil_api_request req;
    fill_req(&req, hs, store, t);
    vigil_api_response *resp = NULL;
    ck_assert_int_eq(vigil_api_response_new(&resp), VIGIL_OK);
    ck_assert_int_eq(vigil_api_handle(api, &req, resp), VIGIL_OK);
    return resp;
}

static void expect(vigil_api_response *r, int status, const char *body)
{
    const char *b = vigil_api_response_body(r, NULL);
    ck_assert_msg(vigil_api_response_status(r) == status, "status %d, expected %d; body %s",
                  vigil_api_response_status(r), status, b);
    if (body)
        ck_assert_str_eq(b, body);
}

static void expect_free(vigil_api_response *r, int status, const char *body)
{
    expect(r, status, body);
    vigil_api_response_free(r);
}

/* Asserts an error answer: status, code, path and a message substring. */
static void expect_error(vigil_api_response *r, int status, const char *code, const char *path,
                         const char *msg_part)
{
    expect(r, status, NULL);
    const char *b = vigil_api_response_body(r, NULL);
    char want[256];
    snprintf(want, sizeof(want), "{\"error\":{\"code\":\"%s\",\"message\":\"", code);
    ck_assert_msg(strncmp(b, want, strlen(want)) == 0, "body %s lacks %s", b, want);
    snprintf(want, sizeof(want), "\",\"path\":\"%s\"}}", path);
    ck_assert_msg(strlen(b) > strlen(want) && strcmp(b + strlen(b) - strlen(want), want) == 0,
                  "body %s does not end with %s", b, want);
    ck_assert_msg(strstr(b, msg_part) != NULL, "body %s lacks %s", b, msg_part);
    vigil_api_response_free(r);
}

static vigil_api *mounted(vigil_hub *hub, int with_tokens)
{
    vigil_api_options o = VIGIL_API_OPTIONS_INIT;
    vigil_api_token toks[] = {{"agents", "VT_HUB_INGEST", NULL, VIGIL_API_SCOPE_INGEST},
                              {"dash", "VT_HUB_READ", NULL, VIGIL_API_SCOPE_READ}};
    setenv("VT_HUB_INGEST", "hub-ingest-token-000000000", 1);
    setenv("VT_HUB_READ", "hub-read-token-1111111111111", 1);
    if (with_tokens) {
        o.tokens = toks;
        o.ntokens = 2;
    }
    o.max_body = 1024 * 1024;
    o.logger.min_level = VIGIL_LOG_ERROR;
    vigil_api *api = NULL;
    ck_assert_int_eq(vigil_api_new(&api, &o), VIGIL_OK);
    ck_assert_int_eq(vigil_hub_mount(hub, api), VIGIL_OK);
    return api;
}

#define JSON_CT "Content-Type: application/json"

static vigil_api_response *post(vigil_api *api, const char *body)
{
    treq t = {.method = "POST", .path = "/v1/ingest", .body = body, .headers = {JSON_CT}};
    return run(api, &t);
}

/* ---- hub core ------------------------------------------------------------------ */

START_TEST(options_and_bad_store)
{
    vigil_hub_options o;
    ck_assert_int_eq(vigil_hub_options_init(&o, VIGIL_HUB_OPTIONS_VERSION), VIGIL_OK);
    ck_assert_ptr_null(o.store_url);
    char newer[64];
    snprintf(newer, sizeof(newer), "hub options: version %d is not supported",
             VIGIL_HUB_OPTIONS_VERSION + 1);
    ck_assert_int_eq(vigil_hub_options_init(&o, VIGIL_HUB_OPTIONS_VERSION + 1), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, newer);
    vigil_hub *hub = NULL;
    o.store_url = "mysql://db/vigil";
    ck_assert_int_eq(vigil_hub_new(&hub, &o), VIGIL_EUNSUPPORTED);
    vt_assert_error(VIGIL_EUNSUPPORTED, "hub: ");
    ck_assert_ptr_null(hub);
    o.store_url = "sqlite::memory:";
    o.retention_ms = -1;
    ck_assert_int_eq(vigil_hub_new(&hub, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "must not be negative");
    ck_assert_int_eq(vigil_hub_new(NULL, NULL), VIGIL_EINVAL);
    vigil_hub_free(NULL);
    vigil_hub_stop(NULL);
}
END_TEST

START_TEST(ingest_commits_and_feeds_windows)
{
    vigil_config *cfg = NULL;
    vigil_hub *hub = hub_watching("sqlite::memory:", 0, &cfg);
    vigil_batch *b = mk_batch("b-1", 3, "cpu", 1000);
    vigil_hub_ingest_result res = {VIGIL_HUB_INGEST_RESULT_VERSION, 99, 99};
    ck_assert_int_eq(vigil_hub_ingest(hub, b, &res), VIGIL_ECLOSED);
    vt_assert_error(VIGIL_ECLOSED, "hub: not started");
    ck_assert_int_eq(vigil_hub_start(hub), VIGIL_OK);
    ck_assert_int_eq(vigil_hub_start(hub), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_hub_ingest(hub, b, &res), VIGIL_OK);
    ck_assert_uint_eq(res.accepted, 3);
    ck_assert_int_eq(res.duplicate, 0);
    ck_assert_uint_eq(store_count(vigil_hub_store(hub), "cpu"), 3);
    /* the same batch id again: acknowledged, not stored twice */
    ck_assert_int_eq(vigil_hub_ingest(hub, b, &res), VIGIL_OK);
    ck_assert_uint_eq(res.accepted, 0);
    ck_assert_int_eq(res.duplicate, 1);
    ck_assert_uint_eq(store_count(vigil_hub_store(hub), "cpu"), 3);
    /* a retry carrying later samples under the same id changes nothing either */
    vigil_batch *again = mk_batch("b-1", 3, "cpu", 4000);
    ck_assert_int_eq(vigil_hub_ingest(hub, again, &res), VIGIL_OK);
    ck_assert_int_eq(res.duplicate, 1);
    vigil_batch_free(again);
    ck_assert_uint_eq(store_count(vigil_hub_store(hub), "cpu"), 3);
    vigil_hub_stats st = VIGIL_HUB_STATS_INIT;
    ck_assert_int_eq(vigil_hub_stats_get(hub, &st), VIGIL_OK);
    ck_assert_uint_eq(st.version, VIGIL_HUB_STATS_VERSION);
    ck_assert_uint_eq(st.samples, 3);
    /* output structs carry the caller's version; an unknown one is refused */
    vigil_hub_stats bad_st = VIGIL_HUB_STATS_INIT;
    bad_st.version = 0;
    ck_assert_int_eq(vigil_hub_stats_get(hub, &bad_st), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "hub stats: version 0 is not supported");
    vigil_hub_ingest_result bad_res = VIGIL_HUB_INGEST_RESULT_INIT;
    bad_res.version = VIGIL_HUB_INGEST_RESULT_VERSION + 1;
    ck_assert_int_eq(vigil_hub_ingest(hub, b, &bad_res), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "hub ingest result: version 2 is not supported");
    ck_assert_uint_eq(st.samples, 3);
    ck_assert_uint_eq(st.batches, 1);
    ck_assert_uint_eq(st.duplicates, 2);
    ck_assert_uint_eq(st.series, 3);
    ck_assert_uint_eq(st.windows, 3);
    /* every stored sample is in its window */
    double v = -1;
    ck_assert_int_eq(
        vigil_hub_window_aggregate(hub, "cpu{host=\"h1\",i=\"2\"}", VIGIL_WINDOW_LAST, 0, 5000, &v),
        VIGIL_OK);
    ck_assert(v == 2.0);
    /* ... once: the duplicate's samples were not appended again */
    ck_assert_int_eq(vigil_hub_window_aggregate(hub, "cpu{host=\"h1\",i=\"2\"}", VIGIL_WINDOW_COUNT,
                                                0, 5000, &v),
                     VIGIL_OK);
    ck_assert(v == 1.0);
    ck_assert_int_eq(
        vigil_hub_window_aggregate(hub, "cpu{host=\"h9\"}", VIGIL_WINDOW_LAST, 0, 5000, &v),
        VIGIL_ENOTFOUND);
    vt_assert_error(VIGIL_ENOTFOUND, "no window for cpu{host=\"h9\"}");
    vigil_batch_free(b);
    /* samples more than 5 minutes ahead are refused, nothing stored */
    vigil_batch *fut = NULL;
    ck_assert_int_eq(vigil_batch_new(&fut), VIGIL_OK);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000;
    vigil_metric ok = {"future", 1, now, NULL, 0, NULL};
    vigil_metric bad = {"future", 1, now + 6 * 60 * 1000, NULL, 0, NULL};
    ck_assert_int_eq(vigil_batch_add(fut, &ok), VIGIL_OK);
    ck_assert_int_eq(vigil_batch_add(fut, &bad), VIGIL_OK);
    ck_assert_int_eq(vigil_hub_ingest(hub, fut, &res), VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE, "metrics[1].ts: ");
    vt_assert_error(VIGIL_EVALUE, "is more than 5m in the future");
    ck_assert_uint_eq(store_count(vigil_hub_store(hub), "future"), 0);
    vigil_batch_free(fut);
    ck_assert_int_eq(vigil_hub_stats_get(hub, &st), VIGIL_OK);
    ck_assert_uint_eq(st.rejected, 2); /* not started, then the future sample */
    vigil_hub_stop(hub);
    vigil_batch *late = mk_batch(NULL, 1, "cpu", 1);
    ck_assert_int_eq(vigil_hub_ingest(hub, late, NULL), VIGIL_ECLOSED);
    vt_assert_error(VIGIL_ECLOSED, "hub: shutting down");
    ck_assert_int_eq(vigil_hub_start(hub), VIGIL_ECLOSED);
    vigil_batch_free(late);
    vigil_hub_free(hub);
    vigil_config_free(cfg);
}
END_TEST

typedef struct async_rec {
    pthread_mutex_t mu;
    int calls;
    int status;
    size_t accepted;
} async_rec;

static void async_cb(int status, const char *message, const vigil_hub_ingest_result *r,
                     void *payload)
{
    (void)message;
    async_rec *a = payload;
    pthread_mutex_lock(&a->mu);
    a->calls++;
    a->status = status;
    a->accepted += r->accepted;
    pthread_mutex_unlock(&a->mu);
}

START_TEST(async_ingest_and_stop_drains)
{
    vigil_hub *hub = hub_started("sqlite::memory:");
    async_rec a = {PTHREAD_MUTEX_INITIALIZER, 0, -1, 0};
    for (int i = 0; i < 20; i++) {
        char id[16];
        snprintf(id, sizeof(id), "a-%d", i);
        vigil_batch *b = mk_batch(id, 10, "mem", 1000 + i * 100);
        ck_assert_int_eq(vigil_hub_ingest_async(hub, b, async_cb, &a), VIGIL_OK);
    }
    /* stop commits everything queued and answers every caller */
    vigil_hub_stop(hub);
    ck_assert_int_eq(a.calls, 20);
    ck_assert_int_eq(a.status, VIGIL_OK);
    ck_assert_uint_eq(a.accepted, 200);
    ck_assert_uint_eq(store_count(vigil_hub_store(hub), "mem"), 200);
    vigil_batch *b = mk_batch("x", 1, "mem", 1);
    ck_assert_int_eq(vigil_hub_ingest_async(hub, b, async_cb, &a), VIGIL_ECLOSED);
    ck_assert_int_eq(vigil_hub_ingest_async(hub, b, NULL, NULL), VIGIL_EINVAL);
    vigil_batch_free(b); /* refused: still ours */
    vigil_hub_free(hub);
}
END_TEST

typedef struct conc {
    vigil_hub *hub;
    int id;
    size_t acked;
} conc;

static void *conc_main(void *arg)
{
    conc *c = arg;
    for (int i = 0; i < 50; i++) {
        char id[32];
        snprintf(id, sizeof(id), "t%d-%d", c->id, i);
        vigil_batch *b = mk_batch(id, 100, "conc", (int64_t)c->id * 1000000 + i * 1000);
        vigil_hub_ingest_result r = VIGIL_HUB_INGEST_RESULT_INIT;
        if (vigil_hub_ingest(c->hub, b, &r) == VIGIL_OK)
            c->acked += r.accepted;
        vigil_batch_free(b);
    }
    return NULL;
}

START_TEST(concurrent_ingests_group_commit)
{
    vigil_hub *hub = hub_started(file_url());
    pthread_t th[8];
    conc cs[8];
    for (int i = 0; i < 8; i++) {
        cs[i].hub = hub;
        cs[i].id = i;
        cs[i].acked = 0;
        ck_assert_int_eq(pthread_create(&th[i], NULL, conc_main, &cs[i]), 0);
    }
    size_t acked = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        acked += cs[i].acked;
    }
    ck_assert_uint_eq(acked, 8 * 50 * 100);
    ck_assert_uint_eq(store_count(vigil_hub_store(hub), "conc"), acked);
    vigil_hub_stats st = VIGIL_HUB_STATS_INIT;
    vigil_hub_stats_get(hub, &st);
    ck_assert_uint_eq(st.batches, 400);
    ck_assert_uint_le(st.commits, st.batches);
    vigil_hub_free(hub);
}
END_TEST

/* Holds the store's lock (inside one of its callbacks) so the committer
 * blocks and the queue fills. */
typedef struct full_ctx {
    vigil_hub *hub;
    vigil_api *api;
    async_rec first;
    vigil_api_response *queued;
    int queued_done;
    int ran;
} full_ctx;

static void queued_done(vigil_api_response *resp, void *payload)
{
    (void)resp;
    full_ctx *f = payload;
    __atomic_store_n(&f->queued_done, 1, __ATOMIC_SEQ_CST);
}

static int hold_store(const vigil_store_series *s, void *payload)
{
    (void)s;
    full_ctx *f = payload;
    if (f->ran++)
        return 0;
    vigil_batch *b = mk_batch("q-1", 5, "queue", 5000);
    ck_assert_int_eq(vigil_hub_ingest_async(f->hub, b, async_cb, &f->first), VIGIL_OK);
    vigil_hub_stats st = VIGIL_HUB_STATS_INIT;
    for (int i = 0; i < 5000; i++) {
        vigil_hub_stats_get(f->hub, &st);
        if (st.queue_depth == 0)
            break;
        usleep(1000);
    }
    ck_assert_uint_eq(st.queue_depth, 0); /* the committer took it and waits for the store */
    /* one more fits the queue (queue_max 1) ... */
    static vigil_http_header hs[] = {{"Content-Type", "application/json"}};
    static vigil_api_request req = VIGIL_API_REQUEST_INIT;
    req.method = "POST";
    req.path = "/v1/ingest";
    req.headers = hs;
    req.nheaders = 1;
    req.body = "{\"batch_id\":\"q-2\",\"metrics\":[{\"name\":\"queue\",\"value\":1,\"ts\":9000}]}";
    req.body_len = strlen(req.body);
    ck_assert_int_eq(vigil_api_response_new(&f->queued), VIGIL_OK);
    ck_assert_int_eq(vigil_api_submit(f->api, &req, f->queued, queued_done, f), VIGIL_OK);
    ck_assert_int_eq(__atomic_load_n(&f->queued_done, __ATOMIC_SEQ_CST), 0);
    /* ... and the next is refused with 429 and Retry-After */
    vigil_api_response *r =
        post(f->api, "{\"metrics\":[{\"name\":\"queue\",\"value\":1,\"ts\":1}]}");
    expect(r, 429,
           "{\"error\":{\"code\":\"overloaded\",\"message\":\"hub: the ingest queue is full (1 "
           "batches waiting); retry later\",\"path\":\"\"}}");
    ck_assert_str_eq(vigil_api_response_header(r, "Retry-After"), "1");
    vigil_api_response_free(r);
    vigil_batch *c = mk_batch("q-3", 1, "queue", 1);
    ck_assert_int_eq(vigil_hub_ingest_async(f->hub, c, async_cb, &f->first), VIGIL_EOVERLOADED);
    vt_assert_error(VIGIL_EOVERLOADED, "the ingest queue is full");
    vigil_batch_free(c);
    return 0;
}

START_TEST(queue_full_is_429)
{
    vigil_hub *hub = hub_at(file_url(), 1);
    ck_assert_int_eq(vigil_hub_start(hub), VIGIL_OK);
    vigil_api *api = mounted(hub, 0);
    vigil_batch *seed = mk_batch("seed", 1, "queue", 1);
    ck_assert_int_eq(vigil_hub_ingest(hub, seed, NULL), VIGIL_OK);
    vigil_batch_free(seed);
    full_ctx f;
    memset(&f, 0, sizeof(f));
    f.hub = hub;
    f.api = api;
    pthread_mutex_init(&f.first.mu, NULL);
    ck_assert_int_eq(vigil_store_series_list(vigil_hub_store(hub), NULL, hold_store, &f), VIGIL_OK);
    vigil_hub_stop(hub); /* commits the two queued ones */
    ck_assert_int_eq(f.first.calls, 1);
    ck_assert_int_eq(f.first.status, VIGIL_OK);
    ck_assert_int_eq(f.queued_done, 1);
    expect(f.queued, 202, "{\"accepted\":1,\"duplicate\":false}");
    vigil_api_response_free(f.queued);
    ck_assert_uint_eq(store_count(vigil_hub_store(hub), "queue"), 7);
    treq m = {.path = "/metrics"};
    vigil_api_response *r = run(api, &m);
    expect(r, 200, NULL);
    ck_assert_ptr_nonnull(strstr(vigil_api_response_body(r, NULL),
                                 "vigil_ingest_rejected_batches_total{reason=\"overloaded\"} 2\n"));
    vigil_api_response_free(r);
    vigil_api_free(api);
    vigil_hub_free(hub);
}
END_TEST

/* ---- routes ----------------------------------------------------------------------- */

START_TEST(ingest_route_statuses)
{
    vigil_hub *hub = hub_started("sqlite::memory:");
    vigil_api *api = mounted(hub, 0);
    const char *good =
        "{\"agent\":\"h1\",\"batch_id\":\"r-1\",\"metrics\":["
        "{\"name\":\"cpu_usage\",\"value\":0.5,\"ts\":1000,\"tags\":{\"host\":\"h1\"}},"
        "{\"name\":\"cpu_usage\",\"value\":null,\"error\":\"timeout\",\"ts\":2000,"
        "\"tags\":{\"host\":\"h1\"}}]}";
    expect_free(post(api, good), 202, "{\"accepted\":2,\"duplicate\":false}");
    expect_free(post(api, good), 202, "{\"accepted\":0,\"duplicate\":true}");
    /* without an agent too; the same id from another agent is another batch */
    const char *anon = "{\"batch_id\":\"r-1\",\"metrics\":[{\"name\":\"cpu_usage\",\"value\":1,"
                       "\"ts\":3000}]}";
    expect_free(post(api, anon), 202, "{\"accepted\":1,\"duplicate\":false}");
    expect_free(post(api, anon), 202, "{\"accepted\":0,\"duplicate\":true}");
    expect_free(post(api, "{\"metrics\":[]}"), 202, "{\"accepted\":0,\"duplicate\":false}");

    expect_error(post(api, "{\"metrics\":[{\"name\":"), 400, "invalid_json", "metrics[0].name",
                 "unexpected end of input");
    expect_error(post(api, "not json"), 400, "invalid_json", "", "");
    expect_error(post(api, ""), 400, "invalid_json", "", "");
    expect_error(post(api, "{\"metrics\":[{\"name\":\"x\",\"value\":\"high\",\"ts\":1}]}"), 400,
                 "invalid_metric", "metrics[0].value", "metrics[0].value: ");
    expect_error(post(api, "{\"metrics\":{}}"), 400, "invalid_metric", "metrics", "array");
    expect_error(post(api, "[1,2]"), 400, "invalid_metric", "", "expected an object");
    expect_error(post(api, "{\"metrics\":[{\"name\":\"x\",\"value\":1,\"ts\":1,"
                           "\"tags\":{\"host\":\"a\\u0000b\"}}]}"),
                 400, "invalid_metric", "metrics[0].tags.host", "");
    expect_error(post(api, "{\"metrics\":[{\"name\":\"x\",\"value\":1,\"ts\":1,"
                           "\"tags\":{\"host\":\"a\xff\xfe\"}}]}"),
                 400, "invalid_metric", "metrics[0].tags.host", "UTF-8");
    expect_error(post(api, "{\"metrics\":[{\"name\":\"x\",\"value\":1,\"ts\":1}],\"bogus\":1}"),
                 400, "invalid_metric", "bogus", "unknown field");
    expect_error(post(api, "{\"metrics\":[{\"name\":\"9x\",\"value\":1,\"ts\":1}]}"), 400,
                 "invalid_metric", "metrics[0].name", "");
    expect_error(post(api, "{\"metrics\":[{\"name\":\"x\",\"value\":1,\"ts\":99999999999999}]}"),
                 400, "invalid_metric", "metrics[0].ts", "is more than 5m in the future");

    /* wrong method, unknown route, media type */
    treq g = {.path = "/v1/ingest"};
    vigil_api_response *r = run(api, &g);
    expect(r, 405, NULL);
    ck_assert_str_eq(vigil_api_response_header(r, "Allow"), "POST");
    vigil_api_response_free(r);
    treq nf = {.method = "POST", .path = "/v1/ingests", .body = "{}", .headers = {JSON_CT}};
    expect_free(run(api, &nf), 404, NULL);
    treq ct = {.method = "POST",
               .path = "/v1/ingest",
               .body = "{}",
               .headers = {"Content-Type: text/plain"}};
    expect_error(run(api, &ct), 415, "unsupported_media_type", "", "application/json");
    char *big = malloc(2 * 1024 * 1024);
    memset(big, ' ', 2 * 1024 * 1024);
    treq large = {.method = "POST",
                  .path = "/v1/ingest",
                  .body = big,
                  .body_len = 2 * 1024 * 1024,
                  .headers = {JSON_CT}};
    expect_error(run(api, &large), 413, "too_large", "", "limit of 1048576 bytes");
    free(big);

    treq rz = {.path = "/readyz"};
    expect_free(run(api, &rz), 200, "{\"status\":\"ready\"}");
    expect_free(run(api, &rz), 200, "{\"status\":\"ready\"}");
    /* an unauthenticated probe writes nothing to the store */
    void *v = NULL;
    size_t vlen = 0;
    ck_assert_int_eq(vigil_store_state_get(vigil_hub_store(hub), "vigil.hub.readyz", &v, &vlen),
                     VIGIL_ENOTFOUND);
    vigil_hub_stop(hub);
    r = post(api, good);
    expect(
        r, 503,
        "{\"error\":{\"code\":\"unavailable\",\"message\":\"hub: shutting down\",\"path\":\"\"}}");
    ck_assert_str_eq(vigil_api_response_header(r, "Retry-After"), "1");
    vigil_api_response_free(r);
    expect_free(run(api, &rz), 503,
                "{\"error\":{\"code\":\"unavailable\",\"message\":\"the hub is not running\","
                "\"path\":\"\"}}");
    vigil_api_free(api);
    vigil_hub_free(hub);
}
END_TEST

START_TEST(auth_on_hub_routes)
{
    vigil_hub *hub = hub_started("sqlite::memory:");
    vigil_api *api = mounted(hub, 1);
    const char *body = "{\"metrics\":[{\"name\":\"x\",\"value\":1,\"ts\":1}]}";
    treq none = {.method = "POST", .path = "/v1/ingest", .body = body, .headers = {JSON_CT}};
    expect_free(run(api, &none), 401,
                "{\"error\":{\"code\":\"unauthorized\",\"message\":\"missing bearer token\","
                "\"path\":\"\"}}");
    treq bad = {.method = "POST",
                .path = "/v1/ingest",
                .body = body,
                .headers = {JSON_CT, "Authorization: Bearer wrong-token-0000000000"}};
    expect_free(run(api, &bad), 401,
                "{\"error\":{\"code\":\"unauthorized\",\"message\":\"invalid token\","
                "\"path\":\"\"}}");
    treq scope = {.method = "POST",
                  .path = "/v1/ingest",
                  .body = body,
                  .headers = {JSON_CT, "Authorization: Bearer hub-read-token-1111111111111"}};
    expect_free(run(api, &scope), 403,
                "{\"error\":{\"code\":\"forbidden\",\"message\":\"token \\\"dash\\\" lacks the "
                "ingest scope\",\"path\":\"\"}}");
    treq ok = {.method = "POST",
               .path = "/v1/ingest",
               .body = body,
               .headers = {JSON_CT, "Authorization: Bearer hub-ingest-token-000000000"}};
    expect_free(run(api, &ok), 202, "{\"accepted\":1,\"duplicate\":false}");
    treq q = {.path = "/v1/query",
              .query = "name=x&from=0",
              .headers = {"Authorization: Bearer hub-ingest-token-000000000"}};
    expect_free(run(api, &q), 403, NULL);
    treq q2 = {.path = "/v1/query",
               .query = "name=x&from=0",
               .headers = {"Authorization: Bearer hub-read-token-1111111111111"}};
    expect_free(run(api, &q2), 200,
                "{\"series\":[{\"name\":\"x\",\"tags\":{},\"points\":[[1,1]]}]}");
    treq ev = {.path = "/v1/events", .query = "access_token=hub-read-token-1111111111111"};
    vigil_api_response *r = run(api, &ev);
    expect(r, 200, "");
    ck_assert(vigil_api_response_is_stream(r));
    vigil_api_response_free(r);
    treq ev2 = {.path = "/v1/events"};
    expect_free(run(api, &ev2), 401, NULL);
    treq rz = {.path = "/readyz"};
    expect_free(run(api, &rz), 200, NULL);
    vigil_api_free(api);
    vigil_hub_free(hub);
}
END_TEST

/* A token bound to agents: a batch for another host is refused with 403
 * agent_mismatch naming the binding; the agent and the host tags are filled
 * in when absent. */
static vigil_api *mounted_bound(vigil_hub *hub, const char *const *agents, size_t nagents)
{
    vigil_api_options o = VIGIL_API_OPTIONS_INIT;
    vigil_api_token toks[] = {{"web", "VT_HUB_BOUND", NULL, VIGIL_API_SCOPE_INGEST},
                              {"dash", "VT_HUB_READ", NULL, VIGIL_API_SCOPE_READ}};
    vigil_api_binding b[] = {{"web", agents, nagents}};
    setenv("VT_HUB_BOUND", "hub-bound-token-0000000000", 1);
    setenv("VT_HUB_READ", "hub-read-token-1111111111111", 1);
    o.tokens = toks;
    o.ntokens = 2;
    o.bindings = b;
    o.nbindings = 1;
    o.logger.min_level = VIGIL_LOG_ERROR;
    vigil_api *api = NULL;
    ck_assert_msg(vigil_api_new(&api, &o) == VIGIL_OK, "%s", vigil_error_last()->message);
    ck_assert_int_eq(vigil_hub_mount(hub, api), VIGIL_OK);
    return api;
}

static vigil_api_response *post_bound(vigil_api *api, const char *body)
{
    treq t = {.method = "POST",
              .path = "/v1/ingest",
              .body = body,
              .headers = {JSON_CT, "Authorization: Bearer hub-bound-token-0000000000"}};
    return run(api, &t);
}

START_TEST(bound_token_agents)
{
    vigil_hub *hub = hub_started("sqlite::memory:");
    static const char *const one[] = {"web-01"};
    vigil_api *api = mounted_bound(hub, one, 1);
    /* a batch for another host: refused, whatever the token's scope */
    expect_error(post_bound(api, "{\"agent\":\"web-01\",\"metrics\":[{\"name\":\"process_up\","
                                 "\"value\":0,\"ts\":1,\"tags\":{\"host\":\"db-01\"}}]}"),
                 403, "agent_mismatch", "",
                 "metrics[0].tags.host: host db-01 is not the batch's agent web-01 (token "
                 "\\\"web\\\" is bound to [web-01])");
    expect_error(post_bound(api, "{\"agent\":\"db-01\",\"metrics\":[{\"name\":\"x\",\"value\":1,"
                                 "\"ts\":1}]}"),
                 403, "agent_mismatch", "",
                 "agent: db-01 is not one token \\\"web\\\" may speak for (bound to [web-01])");
    /* absent agent and host: filled in from the binding */
    expect_free(post_bound(api, "{\"metrics\":[{\"name\":\"up\",\"value\":1,\"ts\":1000}]}"), 202,
                "{\"accepted\":1,\"duplicate\":false}");
    treq q = {.path = "/v1/series",
              .query = "name=up",
              .headers = {"Authorization: Bearer hub-read-token-1111111111111"}};
    expect_free(run(api, &q), 200,
                "{\"series\":[{\"name\":\"up\",\"tags\":{\"host\":\"web-01\"},\"latest\":{\"ts\":"
                "1000,\"value\":1}}]}");
    vigil_api_free(api);

    /* a glob binding: the agent must be named, and the host follows it */
    static const char *const globs[] = {"web-*", "edge-1"};
    api = mounted_bound(hub, globs, 2);
    expect_error(post_bound(api, "{\"metrics\":[{\"name\":\"x\",\"value\":1,\"ts\":1}]}"), 403,
                 "agent_mismatch", "",
                 "agent: required: token \\\"web\\\" is bound to agents [web-*, edge-1]");
    expect_free(post_bound(api, "{\"agent\":\"web-07\",\"metrics\":[{\"name\":\"g\",\"value\":2,"
                                "\"ts\":1000,\"tags\":{\"host\":\"web-07\"}},{\"name\":\"g\","
                                "\"value\":3,\"ts\":1000,\"tags\":{\"zone\":\"a\"}}]}"),
                202, "{\"accepted\":2,\"duplicate\":false}");
    treq q2 = {.path = "/v1/series",
               .query = "name=g",
               .headers = {"Authorization: Bearer hub-read-token-1111111111111"}};
    expect_free(run(api, &q2), 200,
                "{\"series\":[{\"name\":\"g\",\"tags\":{\"host\":\"web-07\",\"zone\":\"a\"},"
                "\"latest\":{\"ts\":1000,\"value\":3}},{\"name\":\"g\",\"tags\":{\"host\":"
                "\"web-07\"},\"latest\":{\"ts\":1000,\"value\":2}}]}");
    vigil_api_free(api);

    /* bad bindings */
    vigil_api_options o = VIGIL_API_OPTIONS_INIT;
    vigil_api_token toks[] = {{"web", "VT_HUB_BOUND", NULL, VIGIL_API_SCOPE_INGEST}};
    vigil_api_binding nob[] = {{"nobody", one, 1}};
    o.tokens = toks;
    o.ntokens = 1;
    o.bindings = nob;
    o.nbindings = 1;
    vigil_api *bad = NULL;
    ck_assert_int_eq(vigil_api_new(&bad, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "bindings[0]: no token named \"nobody\"");
    vigil_api_binding empty[] = {{"web", one, 0}};
    o.bindings = empty;
    ck_assert_int_eq(vigil_api_new(&bad, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "token \"web\": agents: expected 1 to 256 entries");
    vigil_hub_free(hub);
}
END_TEST

/* {"metrics":[0,0,0,...]} inflating to 64 MiB from a 64 KiB gzip body: the
 * decoder's budget (2 x max_metrics + 2 elements in the metrics array)
 * refuses it after a few hundred kilobytes of tree, before the rest is
 * built. */
START_TEST(gzip_of_zeros_refused_early)
{
    vigil_hub *hub = hub_started("sqlite::memory:");
    vigil_api *api = mounted(hub, 0);
    const size_t inflated = 64u * 1024 * 1024 - 64;
    char *text = malloc(inflated);
    static const char head[] = "{\"metrics\":[";
    memcpy(text, head, sizeof(head) - 1);
    size_t n = sizeof(head) - 1;
    while (n + 4 < inflated) {
        text[n++] = '0';
        text[n++] = ',';
    }
    text[n++] = '0';
    text[n++] = ']';
    text[n++] = '}';
    uLongf cap = compressBound((uLong)n) + 32;
    unsigned char *gz = malloc(cap);
    z_stream z;
    memset(&z, 0, sizeof(z));
    ck_assert_int_eq(deflateInit2(&z, 9, Z_DEFLATED, 31, 9, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (unsigned char *)text;
    z.avail_in = (uInt)n;
    z.next_out = gz;
    z.avail_out = (uInt)cap;
    ck_assert_int_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t gzlen = z.total_out;
    deflateEnd(&z);
    free(text);
    ck_assert_uint_lt(gzlen, 1024 * 1024); /* fits max_body: only the decoder can refuse it */
    vigil_http_header hs[2] = {{"Content-Type", "application/json"}, {"Content-Encoding", "gzip"}};
    vigil_api_request rq = VIGIL_API_REQUEST_INIT;
    rq.method = "POST";
    rq.path = "/v1/ingest";
    rq.headers = hs;
    rq.nheaders = 2;
    rq.body = (const char *)gz;
    rq.body_len = gzlen;
    vigil_api_response *r = NULL;
    ck_assert_int_eq(vigil_api_response_new(&r), VIGIL_OK);
    ck_assert_int_eq(vigil_api_handle(api, &rq, r), VIGIL_OK);
    /* the default max_metrics is 100,000: element 200,002 is past the budget */
    expect_error(r, 400, "invalid_metric", "metrics[200002]",
                 "metrics[200002]: more members or elements than the limit allows (line 1, "
                 "column 400017)");
    free(gz);
    vigil_api_free(api);
    vigil_hub_free(hub);
}
END_TEST

START_TEST(readonly_store_is_503)
{
    const char *url = file_url();
    vigil_hub *hub = hub_started(url);
    vigil_hub_free(hub);
    char ro[700];
    snprintf(ro, sizeof(ro), "%s?mode=ro", url);
    hub = hub_started(ro);
    vigil_api *api = mounted(hub, 0);
    vigil_api_response *r = post(api, "{\"metrics\":[{\"name\":\"x\",\"value\":1,\"ts\":1}]}");
    expect(r, 503, NULL);
    ck_assert_str_eq(vigil_api_response_header(r, "Retry-After"), "1");
    ck_assert_ptr_nonnull(strstr(vigil_api_response_body(r, NULL),
                                 "{\"error\":{\"code\":\"unavailable\",\"message\":\"store: "));
    vigil_api_response_free(r);
    treq rz = {.path = "/readyz"};
    expect_error(run(api, &rz), 503, "unavailable", "", "store: ");
    vigil_api_free(api);
    vigil_hub_free(hub);
}
END_TEST

static void seed_query_data(vigil_api *api)
{
    expect_free(post(api, "{\"batch_id\":\"s1\",\"metrics\":["
                          "{\"name\":\"cpu\",\"value\":1,\"ts\":1000,\"tags\":{\"host\":\"h1\"}},"
                          "{\"name\":\"cpu\",\"value\":2,\"ts\":2000,\"tags\":{\"host\":\"h1\"}},"
                          "{\"name\":\"cpu\",\"value\":3.5,\"ts\":3000,\"tags\":{\"host\":\"h1\"}},"
                          "{\"name\":\"cpu\",\"value\":5,\"ts\":1000,\"tags\":{\"host\":\"h2\"}},"
                          "{\"name\":\"cpu\",\"value\":null,\"error\":\"timeout\",\"ts\":1500,"
                          "\"tags\":{\"host\":\"h3\"}},"
                          "{\"name\":\"mem\",\"value\":7,\"ts\":1000}]}"),
                202, "{\"accepted\":6,\"duplicate\":false}");
}

static void q_expect(vigil_api *api, const char *path, const char *query, int status,
                     const char *body)
{
    treq t = {.path = path, .query = query};
    expect_free(run(api, &t), status, body);
}

START_TEST(query_and_series_routes)
{
    vigil_hub *hub = hub_started("sqlite::memory:");
    vigil_api *api = mounted(hub, 0);
    seed_query_data(api);
    q_expect(api, "/v1/query", "name=cpu&from=0&to=5000", 200,
             "{\"series\":[{\"name\":\"cpu\",\"tags\":{\"host\":\"h1\"},\"points\":[[1000,1],"
             "[2000,2],[3000,3.5]]},{\"name\":\"cpu\",\"tags\":{\"host\":\"h2\"},\"points\":[["
             "1000,5]]},{\"name\":\"cpu\",\"tags\":{\"host\":\"h3\"},\"points\":[[1500,null]]}]}");
    q_expect(api, "/v1/query", "name=cpu&match=host:h1&from=0&to=2000", 200,
             "{\"series\":[{\"name\":\"cpu\",\"tags\":{\"host\":\"h1\"},\"points\":[[1000,1],"
             "[2000,2]]}]}");
    q_expect(api, "/v1/query", "name=cpu&match=host:h1&from=0&to=5000&step=2s&agg=sum", 200,
             "{\"series\":[{\"name\":\"cpu\",\"tags\":{\"host\":\"h1\"},\"points\":[[0,1],"
             "[2000,5.5]]}]}");
    q_expect(api, "/v1/query", "name=cpu&match=host:h%5B12%5D&from=0&to=1000", 200,
             "{\"series\":[{\"name\":\"cpu\",\"tags\":{\"host\":\"h1\"},\"points\":[[1000,1]]},"
             "{\"name\":\"cpu\",\"tags\":{\"host\":\"h2\"},\"points\":[[1000,5]]}]}");
    q_expect(api, "/v1/query", "name=cpu&from=-1h", 200, "{\"series\":[]}");
    q_expect(api, "/v1/query", "name=nothing&from=0", 200, "{\"series\":[]}");
    q_expect(api, "/v1/query", "from=0", 400,
             "{\"error\":{\"code\":\"invalid_request\",\"message\":\"name: required\","
             "\"path\":\"name\"}}");
    q_expect(api, "/v1/query", "name=cpu&from=yesterday", 400,
             "{\"error\":{\"code\":\"invalid_request\",\"message\":\"from: expected epoch "
             "milliseconds, \\\"now\\\" or a relative time such as \\\"-1h\\\", got "
             "\\\"yesterday\\\"\",\"path\":\"from\"}}");
    q_expect(api, "/v1/query", "name=cpu&from=5000&to=1000", 400,
             "{\"error\":{\"code\":\"invalid_request\",\"message\":\"to: must be after from\","
             "\"path\":\"to\"}}");
    q_expect(api, "/v1/query", "name=cpu&agg=sum", 400,
             "{\"error\":{\"code\":\"invalid_request\",\"message\":\"agg: needs step\","
             "\"path\":\"agg\"}}");
    q_expect(api, "/v1/query", "name=cpu&step=2s&agg=median", 400, NULL);
    q_expect(api, "/v1/query", "name=cpu&step=0s", 400, NULL);
    q_expect(api, "/v1/query", "name=cpu&match=host", 400,
             "{\"error\":{\"code\":\"invalid_request\",\"message\":\"match: expected key:value, "
             "got \\\"host\\\"\",\"path\":\"match\"}}");
    q_expect(api, "/v1/query", "name=cpu&match=9x:1", 400, NULL);
    q_expect(api, "/v1/query", "name=c%20pu", 400, NULL);

    q_expect(api, "/v1/series", "name=cpu", 200,
             "{\"series\":[{\"name\":\"cpu\",\"tags\":{\"host\":\"h1\"},\"latest\":{\"ts\":3000,"
             "\"value\":3.5}},{\"name\":\"cpu\",\"tags\":{\"host\":\"h2\"},\"latest\":{\"ts\":"
             "1000,\"value\":5}},{\"name\":\"cpu\",\"tags\":{\"host\":\"h3\"},\"latest\":{\"ts\":"
             "1500,\"value\":null,\"error\":\"timeout\"}}]}");
    q_expect(api, "/v1/series", "name=mem", 200,
             "{\"series\":[{\"name\":\"mem\",\"tags\":{},\"latest\":{\"ts\":1000,\"value\":7}}]}");
    q_expect(api, "/v1/series", NULL, 200, NULL);
    treq wm = {.method = "DELETE", .path = "/v1/series"};
    vigil_api_response *r = run(api, &wm);
    expect(r, 405, NULL);
    ck_assert_str_eq(vigil_api_response_header(r, "Allow"), "GET");
    vigil_api_response_free(r);
    vigil_api_free(api);
    vigil_hub_free(hub);
}
END_TEST

/* ---- events -------------------------------------------------------------------- */

static int g_wakes;

static void wake_cb(void *payload)
{
    (void)payload;
    __atomic_add_fetch(&g_wakes, 1, __ATOMIC_SEQ_CST);
}

static size_t read_all(vigil_api_response *r, char *buf, size_t size, int *rc)
{
    size_t got = 0, n = 0;
    do {
        *rc = vigil_api_response_read(r, buf + got, size - 1 - got, &n);
        got += n;
    } while (*rc == VIGIL_OK && n);
    buf[got] = '\0';
    return got;
}

START_TEST(events_stream)
{
    vigil_hub_options o = VIGIL_HUB_OPTIONS_INIT;
    o.store_url = "sqlite::memory:";
    o.events_interval_ms = HOUR_MS;
    o.events_queue_max = 3;
    o.events_max_subscribers = 2;
    o.logger.min_level = VIGIL_LOG_ERROR;
    vigil_hub *hub = NULL;
    ck_assert_int_eq(vigil_hub_new(&hub, &o), VIGIL_OK);
    ck_assert_int_eq(vigil_hub_start(hub), VIGIL_OK);
    vigil_api *api = mounted(hub, 0);
    treq ev = {.path = "/v1/events"};
    vigil_api_response *fast = run(api, &ev);
    vigil_api_response *slow = run(api, &ev);
    expect(fast, 200, "");
    ck_assert_str_eq(vigil_api_response_header(fast, "Content-Type"), "text/event-stream");
    ck_assert_str_eq(vigil_api_response_header(fast, "Cache-Control"), "no-cache");
    expect_free(run(api, &ev), 429,
                "{\"error\":{\"code\":\"overloaded\",\"message\":\"events: 2 subscribers already "
                "connected\",\"path\":\"\"}}");
    ck_assert_int_eq(vigil_api_response_set_wake(fast, wake_cb, NULL), VIGIL_OK);
    char buf[4096];
    int rc;
    read_all(fast, buf, sizeof(buf), &rc);
    ck_assert_int_eq(rc, VIGIL_OK);
    ck_assert_str_eq(buf, ": connected\nretry: 2000\n\n");
    g_wakes = 0;
    ck_assert_int_eq(vigil_hub_publish(hub, "policy", "{\"a\":1}"), VIGIL_OK);
    ck_assert_int_eq(g_wakes, 1);
    ck_assert_int_eq(vigil_hub_publish(hub, "drift", "{\"line\":1,\n\"two\":2}"), VIGIL_OK);
    ck_assert_int_eq(g_wakes, 1); /* not woken again while unread */
    read_all(fast, buf, sizeof(buf), &rc);
    ck_assert_str_eq(buf, "id: 1\nevent: policy\ndata: {\"a\":1}\n\n"
                          "id: 2\nevent: drift\ndata: {\"line\":1,\ndata: \"two\":2}\n\n");
    /* the slow subscriber never reads: after its queue (3 + hello) fills it is dropped */
    ck_assert_int_eq(vigil_hub_publish(hub, "x", "{}"), VIGIL_OK);
    ck_assert_int_eq(vigil_hub_publish(hub, "x", "{}"), VIGIL_OK);
    vigil_hub_stats st = VIGIL_HUB_STATS_INIT;
    vigil_hub_stats_get(hub, &st);
    ck_assert_uint_eq(st.subscribers, 2);
    size_t n = 9;
    ck_assert_int_eq(vigil_api_response_read(slow, buf, sizeof(buf), &n), VIGIL_ECLOSED);
    ck_assert_uint_eq(n, 0);
    vigil_api_response_free(slow);
    read_all(fast, buf, sizeof(buf), &rc);
    ck_assert_ptr_nonnull(strstr(buf, "id: 4\nevent: x\n"));
    /* bad events */
    ck_assert_int_eq(vigil_hub_publish(hub, "Bad Type", "{}"), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "[a-z0-9_.]");
    ck_assert_int_eq(vigil_hub_publish(hub, "", "{}"), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_hub_publish(hub, "x", "\xff"), VIGIL_EENCODING);
    char *huge = malloc(70000);
    memset(huge, 'a', 69999);
    huge[69999] = '\0';
    ck_assert_int_eq(vigil_hub_publish(hub, "x", huge), VIGIL_ELIMIT);
    free(huge);
    ck_assert_int_eq(vigil_hub_publish(NULL, "x", "{}"), VIGIL_EINVAL);
    /* stopping the hub ends the stream once it is read */
    g_wakes = 0;
    vigil_hub_stop(hub);
    ck_assert_int_eq(g_wakes, 1);
    n = 5;
    ck_assert_int_eq(vigil_api_response_read(fast, buf, sizeof(buf), &n), VIGIL_ECLOSED);
    vigil_api_response_free(fast);
    expect_error(run(api, &ev), 503, "unavailable", "", "shutting down");
    vigil_api_free(api);
    vigil_hub_free(hub);
}
END_TEST

static void *ticker_reader(void *arg)
{
    vigil_api_response *r = arg;
    char buf[4096] = "";
    size_t got = 0;
    for (int i = 0; i < 3000 && !strstr(buf, "event: ingest"); i++) {
        size_t n = 0;
        vigil_api_response_read(r, buf + got, sizeof(buf) - 1 - got, &n);
        got += n;
        buf[got] = '\0';
        if (!n)
            usleep(1000);
    }
    return strstr(buf, "\"samples_per_second\":") ? (void *)1 : NULL;
}

START_TEST(ingest_rate_ticks)
{
    vigil_hub_options o = VIGIL_HUB_OPTIONS_INIT;
    o.store_url = "sqlite::memory:";
    o.events_interval_ms = 50;
    o.logger.min_level = VIGIL_LOG_ERROR;
    vigil_hub *hub = NULL;
    ck_assert_int_eq(vigil_hub_new(&hub, &o), VIGIL_OK);
    ck_assert_int_eq(vigil_hub_start(hub), VIGIL_OK);
    vigil_api *api = mounted(hub, 0);
    treq ev = {.path = "/v1/events"};
    vigil_api_response *r = run(api, &ev);
    pthread_t t;
    pthread_create(&t, NULL, ticker_reader, r);
    void *ok = NULL;
    pthread_join(t, &ok);
    ck_assert_ptr_eq(ok, (void *)1);
    vigil_api_response_free(r);
    vigil_api_free(api);
    vigil_hub_free(hub);
}
END_TEST

/* ---- metrics ------------------------------------------------------------------- */

static void promtool_check(const char *text)
{
    if (access("/usr/bin/promtool", X_OK) != 0)
        return;
    const char *dir = vt_tmpdir();
    char in[512], out[512];
    snprintf(in, sizeof(in), "%s", vt_write_file(dir, "m.txt", text, strlen(text)));
    snprintf(out, sizeof(out), "%s/out.txt", dir);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, in, O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    char *argv[] = {"/usr/bin/promtool", "check", "metrics", NULL};
    pid_t pid;
    ck_assert_int_eq(posix_spawn(&pid, argv[0], &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    int st;
    waitpid(pid, &st, 0);
    char msg[4096] = "";
    FILE *f = fopen(out, "r");
    if (f) {
        msg[fread(msg, 1, sizeof(msg) - 1, f)] = '\0';
        fclose(f);
    }
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "promtool: %s\n%s", msg, text);
}

/* A series past the windows' max_series is stored but gets no window: its
 * samples are counted in /metrics (and logged), never dropped silently. */
START_TEST(windows_past_their_limit_are_counted)
{
    vigil_config *cfg = NULL;
    vigil_hub *hub = hub_watching("sqlite::memory:", 2, &cfg);
    ck_assert_int_eq(vigil_hub_start(hub), VIGIL_OK);
    vigil_api *api = mounted(hub, 0);
    expect_free(post(api, "{\"metrics\":[{\"name\":\"w\",\"value\":1,\"ts\":1000,"
                          "\"tags\":{\"h\":\"a\"}},{\"name\":\"w\",\"value\":1,\"ts\":1000,"
                          "\"tags\":{\"h\":\"b\"}},{\"name\":\"w\",\"value\":1,\"ts\":1000,"
                          "\"tags\":{\"h\":\"c\"}},{\"name\":\"w\",\"value\":2,\"ts\":2000,"
                          "\"tags\":{\"h\":\"c\"}},{\"name\":\"other\",\"value\":2,\"ts\":2000}]}"),
                202, NULL);
    treq m = {.path = "/metrics"};
    vigil_api_response *r = run(api, &m);
    expect(r, 200, NULL);
    const char *b = vigil_api_response_body(r, NULL);
    ck_assert_msg(strstr(b, "vigil_windows 2\n") != NULL, "%s", b);
    ck_assert_msg(strstr(b, "vigil_windows_refused_samples_total 2\n") != NULL, "%s", b);
    /* the series is refused once, and stays visible while it has no window */
    ck_assert_msg(strstr(b, "vigil_windows_refused_series_total 1\n") != NULL, "%s", b);
    ck_assert_msg(strstr(b, "vigil_windows_refused_series 1\n") != NULL, "%s", b);
    /* `other` is watched by no rule: no window, not refused */
    ck_assert_msg(strstr(b, "vigil_windows_unwatched_series 1\n") != NULL, "%s", b);
    ck_assert_msg(strstr(b, "vigil_series 4\n") != NULL, "%s", b);
    vigil_api_response_free(r);
    vigil_api_free(api);
    vigil_hub_free(hub);
    vigil_config_free(cfg);
}
END_TEST

/* ---- windows only where a policy looks ------------------------------------------------ */

static int64_t wall_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Ingests one sample of name{host=<host>}. */
static void ingest_one(vigil_hub *hub, const char *name, const char *host, int64_t ts, double v)
{
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    vigil_tag t[] = {{"host", host}};
    vigil_metric m = {name, v, ts, t, 1, NULL};
    ck_assert_int_eq(vigil_batch_add(b, &m), VIGIL_OK);
    ck_assert_msg(vigil_hub_ingest(hub, b, NULL) == VIGIL_OK, "%s", vigil_error_last()->message);
    vigil_batch_free(b);
}

/* A gauge of the hub's /metrics. */
static double metric_value(vigil_api *api, const char *name)
{
    treq m = {.path = "/metrics"};
    vigil_api_response *r = run(api, &m);
    expect(r, 200, NULL);
    const char *b = vigil_api_response_body(r, NULL);
    char pat[128];
    snprintf(pat, sizeof(pat), "\n%s ", name);
    const char *at = strstr(b, pat);
    ck_assert_msg(at != NULL, "no %s in %s", name, b);
    double v = strtod(at + strlen(pat), NULL);
    vigil_api_response_free(r);
    return v;
}

/* Past the store's log_memory_max (unfolded samples held in memory while
 * the folds fail: here a damaged chunk) ingest is answered 503 with the
 * store's reason and Retry-After, and /metrics shows the unfolded bytes. */
START_TEST(write_log_past_its_hard_cap_is_503)
{
    char url[700], damaged[700];
    const char *dir = vt_tmpdir();
    snprintf(url, sizeof(url), "sqlite://%s/full.db", dir);
    snprintf(damaged, sizeof(damaged), "%s/full.db", dir);
    char off[760];
    snprintf(off, sizeof(off), "%s?log=off", url);
    vigil_hub *hub = hub_started(off);
    vigil_api *api = mounted(hub, 0);
    expect_free(post(api, "{\"metrics\":[{\"name\":\"d\",\"value\":1,\"ts\":1000,"
                          "\"tags\":{\"k\":\"v\"}}]}"),
                202, NULL);
    vigil_api_free(api);
    vigil_hub_free(hub);
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(damaged, &db), SQLITE_OK);
    ck_assert_msg(sqlite3_exec(db, "UPDATE heads SET data = X'03'", NULL, NULL, NULL) == SQLITE_OK,
                  "%s", sqlite3_errmsg(db));
    sqlite3_close(db);

    char capped[800];
    snprintf(capped, sizeof(capped), "%s?log_memory=4KiB&log_memory_max=8KiB&fold_interval=1ms",
             url);
    hub = hub_started(capped);
    api = mounted(hub, 0);
    /* one sample: into the log (a dense write into an empty log would go
     * straight into the damaged chunk and fail there) */
    expect_free(post(api, "{\"metrics\":[{\"name\":\"d\",\"value\":7,\"ts\":1005,"
                          "\"tags\":{\"k\":\"v\"}}]}"),
                202, NULL);
    int status = 202, accepted = 0;
    vigil_api_response *r = NULL;
    for (int i = 0; i < 50 && status == 202; i++) {
        char body[5000];
        int at = snprintf(body, sizeof(body), "{\"metrics\":[");
        for (int k = 0; k < 50; k++)
            at += snprintf(body + at, sizeof(body) - (size_t)at,
                           "%s{\"name\":\"d\",\"value\":%d,\"ts\":%d,\"tags\":{\"k\":\"v\"}}",
                           k ? "," : "", k, 100000 + i * 100 + k);
        snprintf(body + at, sizeof(body) - (size_t)at, "]}");
        vigil_api_response_free(r);
        r = post(api, body);
        status = vigil_api_response_status(r);
        accepted += status == 202;
    }
    expect(r, 503, NULL);
    ck_assert_str_eq(vigil_api_response_header(r, "Retry-After"), "1");
    const char *b = vigil_api_response_body(r, NULL);
    ck_assert_msg(strstr(b, "{\"error\":{\"code\":\"unavailable\"") != NULL, "%s", b);
    ck_assert_msg(strstr(b, "past the hard cap of 8192 (log_memory_max)") != NULL, "%s", b);
    vigil_api_response_free(r);
    ck_assert_int_ge(accepted, 2);
    ck_assert_int_le(accepted, 10);
    ck_assert(metric_value(api, "vigil_store_unfolded_bytes") >= 8192);
    ck_assert(metric_value(api, "vigil_store_unfolded_samples") >= 50.0 * accepted);
    vigil_api_free(api);
    vigil_hub_free(hub);
}
END_TEST

START_TEST(unwatched_series_get_no_window)
{
    vigil_config *cfg = NULL;
    vigil_hub *hub = hub_watching("sqlite::memory:", 0, &cfg);
    ck_assert_int_eq(vigil_hub_start(hub), VIGIL_OK);
    vigil_api *api = mounted(hub, 0);
    double before = metric_value(api, "vigil_windows_memory_bytes");
    int64_t now = wall_now_ms();
    /* 10,000 series no rule watches, twice each */
    for (int round = 0; round < 2; round++)
        for (int k = 0; k < 10; k++) {
            vigil_batch *b = mk_batch(NULL, 0, "free", 0);
            for (int i = 0; i < 1000; i++) {
                char iv[16];
                snprintf(iv, sizeof(iv), "%d", k * 1000 + i);
                vigil_tag t[] = {{"host", "h1"}, {"i", iv}};
                vigil_metric m = {"free", i, now - 1000 + round, t, 2, NULL};
                ck_assert_int_eq(vigil_batch_add(b, &m), VIGIL_OK);
            }
            ck_assert_int_eq(vigil_hub_ingest(hub, b, NULL), VIGIL_OK);
            vigil_batch_free(b);
        }
    ck_assert(metric_value(api, "vigil_windows_memory_bytes") == before);
    ck_assert(metric_value(api, "vigil_windows") == 0);
    ck_assert(metric_value(api, "vigil_windows_unwatched_series") == 10000);
    ck_assert(metric_value(api, "vigil_series") == 10000);
    double v = 0;
    ck_assert_int_eq(
        vigil_hub_window_aggregate(hub, "free{host=\"h1\",i=\"7\"}", VIGIL_WINDOW_LAST, 0, now, &v),
        VIGIL_ENOTFOUND);
    /* a watched series next to them does get one */
    ingest_one(hub, "cpu", "h1", now, 3);
    ck_assert(metric_value(api, "vigil_windows") == 1);
    ck_assert(metric_value(api, "vigil_windows_memory_bytes") > before);
    ck_assert_int_eq(
        vigil_hub_window_aggregate(hub, "cpu{host=\"h1\"}", VIGIL_WINDOW_LAST, 0, now, &v),
        VIGIL_OK);
    ck_assert(v == 3);
    vigil_api_free(api);
    vigil_hub_free(hub);
    vigil_config_free(cfg);
}
END_TEST

/* A window keeps what its rules read: the longest window + for (here 1 min +
 * 30 s), capped by windows.max_age. */
START_TEST(watched_window_has_the_rules_span)
{
    static const char rules[] =
        "policies:\n"
        "  - {name: a, kind: threshold, metric: lat, window: 1m, for: 30s, op: \">\",\n"
        "     threshold: 1e12, action: noop}\n"
        "  - {name: b, kind: threshold, metric: lat, match: {host: h1}, window: 20s,\n"
        "     op: \">\", threshold: 1e12, action: noop}\n"
        "  - {name: c, kind: threshold, metric: lat, match: {host: h2}, window: 2h,\n"
        "     op: \">\", threshold: 1e12, action: noop}\n";
    vigil_config *cfg = NULL;
    vigil_hub *hub = hub_with_rules("sqlite::memory:", rules, 0, &cfg);
    ck_assert_int_eq(vigil_hub_start(hub), VIGIL_OK);
    int64_t now = wall_now_ms();
    for (int i = 30; i >= 0; i--) { /* every 10 s over 5 min */
        ingest_one(hub, "lat", "h1", now - i * 10000, i);
        ingest_one(hub, "lat", "h2", now - i * 10000, i);
    }
    double v = 0;
    /* 90 s: the samples of [now - 90 s, now] */
    ck_assert_int_eq(
        vigil_hub_window_aggregate(hub, "lat{host=\"h1\"}", VIGIL_WINDOW_COUNT, 0, now, &v),
        VIGIL_OK);
    ck_assert(v == 10);
    ck_assert_int_eq(
        vigil_hub_window_aggregate(hub, "lat{host=\"h1\"}", VIGIL_WINDOW_MIN, 0, now, &v),
        VIGIL_OK);
    ck_assert(v == 0);
    ck_assert_int_eq(
        vigil_hub_window_aggregate(hub, "lat{host=\"h1\"}", VIGIL_WINDOW_COUNT, 91000, now, &v),
        VIGIL_ERANGE);
    /* 2 h asked, 1 h (windows.max_age) kept: every sample here */
    ck_assert_int_eq(
        vigil_hub_window_aggregate(hub, "lat{host=\"h2\"}", VIGIL_WINDOW_COUNT, 0, now, &v),
        VIGIL_OK);
    ck_assert(v == 31);
    vigil_hub_free(hub);
    vigil_config_free(cfg);
}
END_TEST

static const char QD_RULE[] =
    "  - {name: qd_count, kind: threshold, metric: qd, aggregate: count, window: 2m,\n"
    "     op: \">=\", threshold: 6, action: noop}\n";

/* Replaces the hub's rules with `text` (a `policies:` document). */
static void reload_with(vigil_hub *hub, const char *text, size_t added, size_t removed)
{
    vigil_config *c = NULL;
    ck_assert_int_eq(vigil_config_load_string(&c, text, strlen(text), "reload.yaml", NULL),
                     VIGIL_OK);
    vigil_hub_options o = VIGIL_HUB_OPTIONS_INIT;
    o.policies = vigil_config_node_get(vigil_config_root(c, 0), "policies");
    vigil_engine_reload_result res = VIGIL_ENGINE_RELOAD_RESULT_INIT;
    ck_assert_msg(vigil_hub_reload_policies(hub, &o, &res) == VIGIL_OK, "%s",
                  vigil_error_last()->message);
    ck_assert_uint_eq(res.added, added);
    ck_assert_uint_eq(res.removed, removed);
    vigil_config_free(c);
}

/* A reload adding a rule over history rebuilds the window from the store
 * (the rule fires on samples ingested before it existed); a reload dropping
 * it frees the window. */
START_TEST(reload_rebuilds_and_frees_windows)
{
    vigil_config *cfg = NULL;
    vigil_hub *hub = hub_watching(file_url(), 0, &cfg);
    ck_assert_int_eq(vigil_hub_start(hub), VIGIL_OK);
    vigil_api *api = mounted(hub, 0);
    int64_t now = wall_now_ms();
    for (int i = 5; i >= 1; i--)
        ingest_one(hub, "qd", "h1", now - i * 10000, 1);
    ingest_one(hub, "cpu", "h1", now - 1000, 1);
    ck_assert(metric_value(api, "vigil_windows") == 1);
    ck_assert(metric_value(api, "vigil_windows_unwatched_series") == 1);
    double v = 0;
    ck_assert_int_eq(
        vigil_hub_window_aggregate(hub, "qd{host=\"h1\"}", VIGIL_WINDOW_COUNT, 0, now, &v),
        VIGIL_ENOTFOUND);

    char text[1024];
    snprintf(text, sizeof(text), "%s%s", WATCH_RULES, QD_RULE);
    reload_with(hub, text, 1, 0);
    /* rebuilt before the reload returned: the five stored samples */
    ck_assert(metric_value(api, "vigil_windows") == 2);
    ck_assert(metric_value(api, "vigil_windows_unwatched_series") == 0);
    ck_assert_int_eq(
        vigil_hub_window_aggregate(hub, "qd{host=\"h1\"}", VIGIL_WINDOW_COUNT, 0, now, &v),
        VIGIL_OK);
    ck_assert(v == 5);
    /* the sixth sample makes six in 2 min: the rule fires on history */
    ingest_one(hub, "qd", "h1", now, 1);
    vigil_buf b = VIGIL_BUF_INIT;
    int fired = 0;
    for (int i = 0; i < 500 && !fired; i++) {
        ck_assert_int_eq(vigil_engine_decisions_json(vigil_hub_engine(hub), 0, 0, &b), VIGIL_OK);
        fired = strstr(b.ptr, "\"policy\":\"qd_count\"") != NULL &&
                strstr(b.ptr, "\"decision\":\"fired\"") != NULL;
        if (!fired)
            usleep(10000);
    }
    ck_assert_msg(fired, "%s", b.ptr);
    vigil_buf_dispose(&b);
    ck_assert_int_eq(
        vigil_hub_window_aggregate(hub, "qd{host=\"h1\"}", VIGIL_WINDOW_COUNT, 0, now, &v),
        VIGIL_OK);
    ck_assert(v == 6);

    /* dropped again: the window goes at once */
    reload_with(hub, WATCH_RULES, 0, 1);
    ck_assert(metric_value(api, "vigil_windows") == 1);
    ck_assert_int_eq(
        vigil_hub_window_aggregate(hub, "qd{host=\"h1\"}", VIGIL_WINDOW_COUNT, 0, now, &v),
        VIGIL_ENOTFOUND);
    /* no rule at all: no window, and a later sample opens none */
    reload_with(hub, "policies: []\n", 0, 2);
    ck_assert(metric_value(api, "vigil_windows") == 0);
    ingest_one(hub, "cpu", "h1", now, 2);
    ck_assert(metric_value(api, "vigil_windows") == 0);
    ck_assert(metric_value(api, "vigil_windows_unwatched_series") == 2);
    vigil_api_free(api);
    vigil_hub_free(hub);
    vigil_config_free(cfg);
}
END_TEST

/* vigil_hub_windows_rebuild(): what a hub taking over as leader calls. */
START_TEST(windows_rebuild_from_the_store)
{
    vigil_config *cfg = NULL;
    vigil_hub *hub = hub_watching(file_url(), 0, &cfg);
    ck_assert_int_eq(vigil_hub_start(hub), VIGIL_OK);
    int64_t now = wall_now_ms();
    for (int i = 4; i >= 0; i--) {
        ingest_one(hub, "cpu", "h1", now - i * 1000, i);
        ingest_one(hub, "cpu", "h2", now - i * 1000, i);
        ingest_one(hub, "mem", "h1", now - i * 1000, i);
    }
    /* every watched series, then one of them */
    ck_assert_int_eq(vigil_hub_windows_rebuild(hub, NULL, 0), VIGIL_OK);
    double v = 0;
    ck_assert_int_eq(
        vigil_hub_window_aggregate(hub, "cpu{host=\"h2\"}", VIGIL_WINDOW_COUNT, 0, now, &v),
        VIGIL_OK);
    ck_assert(v == 5);
    const char *keys[] = {"cpu{host=\"h1\"}", "mem{host=\"h1\"}", "nothere{a=\"b\"}"};
    ck_assert_int_eq(vigil_hub_windows_rebuild(hub, keys, 3), VIGIL_OK);
    ck_assert_int_eq(
        vigil_hub_window_aggregate(hub, "cpu{host=\"h1\"}", VIGIL_WINDOW_SUM, 0, now, &v),
        VIGIL_OK);
    ck_assert(v == 10); /* 4+3+2+1+0, once each */
    /* unwatched stays without a window */
    ck_assert_int_eq(
        vigil_hub_window_aggregate(hub, "mem{host=\"h1\"}", VIGIL_WINDOW_COUNT, 0, now, &v),
        VIGIL_ENOTFOUND);
    vigil_hub_stats st = VIGIL_HUB_STATS_INIT;
    ck_assert_int_eq(vigil_hub_stats_get(hub, &st), VIGIL_OK);
    ck_assert_uint_eq(st.windows, 2);
    /* bad arguments */
    ck_assert_int_eq(vigil_hub_windows_rebuild(NULL, NULL, 0), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "hub windows rebuild: NULL argument");
    ck_assert_int_eq(vigil_hub_windows_rebuild(hub, NULL, 2), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "hub windows rebuild: NULL argument");
    const char *bad[] = {"cpu{host=\"h1\"}", ""};
    ck_assert_int_eq(vigil_hub_windows_rebuild(hub, bad, 2), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "hub windows rebuild: series_keys[1] is empty");
    bad[1] = NULL;
    ck_assert_int_eq(vigil_hub_windows_rebuild(hub, bad, 2), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "hub windows rebuild: series_keys[1] is NULL");
    ck_assert_int_eq(vigil_hub_windows_rebuild(hub, keys, VIGIL_HUB_REBUILD_KEYS_MAX + 1),
                     VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "more than 1000000 series keys");
    vigil_hub_free(hub);
    vigil_config_free(cfg);
}
END_TEST

START_TEST(metrics_of_the_hub)
{
    vigil_config *cfg = NULL;
    vigil_hub *hub = hub_watching("sqlite::memory:", 0, &cfg);
    ck_assert_int_eq(vigil_hub_start(hub), VIGIL_OK);
    vigil_api *api = mounted(hub, 0);
    seed_query_data(api);
    expect_free(post(api, "{\"batch_id\":\"s1\",\"metrics\":[]}"), 202, NULL); /* duplicate */
    expect_free(post(api, "{"), 400, NULL);
    treq m = {.path = "/metrics"};
    vigil_api_response *r = run(api, &m);
    expect(r, 200, NULL);
    const char *b = vigil_api_response_body(r, NULL);
    static const char *const want[] = {
        "vigil_http_requests_total{route=\"/v1/ingest\",code=\"202\"} 2\n",
        "vigil_http_requests_total{route=\"/v1/ingest\",code=\"400\"} 1\n",
        "vigil_ingest_samples_total 6\n",
        "vigil_ingest_batches_total 1\n",
        "vigil_ingest_duplicate_batches_total 1\n",
        "vigil_ingest_rejected_batches_total{reason=\"invalid_json\"} 1\n",
        "vigil_store_commit_duration_seconds_count 2\n",
        "vigil_ingest_commit_group_batches_count 2\n",
        "vigil_series 4\n",
        "vigil_windows 2\n",                  /* cpu h1 and h2: the failed sample has no value */
        "vigil_windows_unwatched_series 1\n", /* mem: no rule watches it */
        "vigil_windows_refused_series 0\n",
        "vigil_windows_refused_series_total 0\n",
        "vigil_ingest_queue_depth 0\n",
        "vigil_ingest_queue_capacity 1024\n",
        "vigil_events_subscribers 0\n",
        "vigil_store_unfolded_samples 6\n", /* in the write log, not folded yet */
        "# TYPE vigil_store_log_bytes gauge\n",
        "# TYPE vigil_store_unfolded_bytes gauge\n",
        "# TYPE vigil_store_fold_duration_seconds gauge\n",
        "# TYPE vigil_http_request_duration_seconds histogram\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (!strstr(b, want[i])) {
            fprintf(stderr, "%s\n", b);
            ck_abort_msg("metrics lack %s", want[i]);
        }
    promtool_check(b);
    vigil_api_response_free(r);
    vigil_api_free(api);
    vigil_hub_free(hub);
    vigil_config_free(cfg);
}
END_TEST

/* ---- configuration -------------------------------------------------------------- */

START_TEST(shipped_collector_yaml_loads)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/configs/collector.yaml", vt_srcdir());
    setenv("VIGIL_INGEST_TOKEN", "cfg-ingest-token-00000000", 1);
    setenv("VIGIL_READ_TOKEN", "cfg-read-token-0000000000", 1);
    setenv("VIGIL_REMEDIATOR_HUB_TOKEN", "cfg-write-token-000000000", 1);
    setenv("VIGIL_ADMIN_TOKEN", "cfg-admin-token-000000000", 1);
    setenv("VIGIL_REMEDIATOR_SECRET", "cfg-secret-0000000000000000000000000", 1);
    vigil_hub_config *c = NULL;
    ck_assert_msg(vigil_hub_config_load(&c, path, NULL) == VIGIL_OK, "%s",
                  vigil_error_last()->message);
    const vigil_httpd_options *h = vigil_hub_config_httpd(c);
    ck_assert_str_eq(h->listen, "127.0.0.1:7600");
    ck_assert_uint_eq(h->max_connections, 1024);
    ck_assert_uint_eq(h->per_ip, 64);
    ck_assert_int_eq(h->timeout_ms, 30000);
    ck_assert_uint_eq(h->max_body, 8u * 1024 * 1024);
    ck_assert_ptr_null(h->tls_cert);
    const vigil_hub_options *o = vigil_hub_config_hub(c);
    ck_assert_str_eq(o->store_url, "sqlite://./var/vigil.db");
    ck_assert_int_eq(o->retention_ms, 14LL * 24 * HOUR_MS);
    const vigil_api_options *a = vigil_hub_config_api(c);
    ck_assert_uint_eq(a->max_inflated, 64u * 1024 * 1024);
    ck_assert_uint_eq(a->ntokens, 4);
    ck_assert_str_eq(a->tokens[0].name, "agents");
    ck_assert_str_eq(a->tokens[0].env, "VIGIL_INGEST_TOKEN");
    ck_assert_uint_eq(a->tokens[0].scopes, VIGIL_API_SCOPE_INGEST);
    ck_assert_uint_eq(a->tokens[1].scopes, VIGIL_API_SCOPE_READ);
    ck_assert_uint_eq(a->tokens[2].scopes, VIGIL_API_SCOPE_WRITE);
    /* people and the vigil CLI: the admin routes forwarded to the remediator */
    ck_assert_str_eq(a->tokens[3].name, "ops");
    ck_assert_str_eq(a->tokens[3].env, "VIGIL_ADMIN_TOKEN");
    ck_assert_uint_eq(a->tokens[3].scopes, VIGIL_API_SCOPE_ADMIN);
    /* the ingest token is bound: to "*" unless VIGIL_INGEST_AGENTS names the agent */
    ck_assert_uint_eq(a->nbindings, 1);
    ck_assert_str_eq(a->bindings[0].token, "agents");
    ck_assert_uint_eq(a->bindings[0].nagents, 1);
    ck_assert_str_eq(a->bindings[0].agents[0],
                     getenv("VIGIL_INGEST_AGENTS") ? getenv("VIGIL_INGEST_AGENTS") : "*");
    ck_assert_str_eq(o->remediator_url, "http://127.0.0.1:7601");
    ck_assert_str_eq(o->remediator_secret_env, "VIGIL_REMEDIATOR_SECRET");
    ck_assert_int_eq(o->remediator_timeout_ms, 5 * 60 * 1000);
    ck_assert_uint_eq(o->remediator_attempts, 5);
    ck_assert_int_eq(o->remediator_backoff_ms, 500);
    ck_assert_int_eq(o->remediator_backoff_max_ms, 30000);
    ck_assert_uint_eq(o->remediator_workers, 2);
    ck_assert_uint_eq(o->remediator_queue_max, 1024);
    ck_assert_ptr_nonnull(o->policies);
    ck_assert_ptr_nonnull(o->silences);
    ck_assert_int_eq(o->policy_interval_ms, 1000);
    ck_assert_int_eq(o->act_within_ms, 5 * 60 * 1000);
    ck_assert_int_eq(vigil_hub_config_daemon(c)->drain_timeout_ms, 10000);
    /* without the signing secret the configuration is refused */
    vigil_hub_config_free(c);
    unsetenv("VIGIL_REMEDIATOR_SECRET");
    c = NULL;
    ck_assert_int_eq(vigil_hub_config_load(&c, path, NULL), VIGIL_EENV);
    vt_assert_error(VIGIL_EENV, "remediator.secret_env: environment variable "
                                "\"VIGIL_REMEDIATOR_SECRET\" (the remediator's signing secret) "
                                "is not set");
    ck_assert_ptr_null(c);
}
END_TEST

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

START_TEST(collector_yaml_errors)
{
    vigil_hub_config *c = NULL;
    ck_assert_int_eq(load_cfg("", &c), VIGIL_OK);
    ck_assert_str_eq(vigil_hub_config_hub(c)->store_url, VIGIL_HUB_DEFAULT_STORE);
    ck_assert_ptr_null(vigil_hub_config_httpd(c)->listen);
    vigil_hub_config_free(c);
    ck_assert_int_eq(load_cfg("listen: 127.0.0.1:0\n"
                              "http: {threads: 3, timeout: 2s, max_body: 1MiB, max_inflated: 4MiB,"
                              " drain_timeout: 3s, tls: {cert: '', key: ''}}\n"
                              "store: 'sqlite::memory:'\n"
                              "retention: 2d\nretention_interval: 5m\n"
                              "security: {tokens: [{name: ops, file: /x, scopes: [admin, read]}],"
                              " allowed_origins: ['https://a.example'], insecure: yes}\n"
                              "ingest: {queue: 8, max_metrics: 500, max_future: 1m,"
                              " group_max_samples: 1000}\n"
                              "windows: {max_age: 10m, max_samples: 100, max_series: 50}\n"
                              "events: {interval: 2s, queue: 16, max_subscribers: 4}\n"
                              "log: {level: warn}\n",
                              &c),
                     VIGIL_OK);
    ck_assert_uint_eq(vigil_hub_config_httpd(c)->threads, 3);
    ck_assert(vigil_hub_config_httpd(c)->insecure);
    ck_assert_uint_eq(vigil_hub_config_api(c)->max_body, 1024 * 1024);
    ck_assert_uint_eq(vigil_hub_config_api(c)->tokens[0].scopes,
                      VIGIL_API_SCOPE_ADMIN | VIGIL_API_SCOPE_READ);
    ck_assert_str_eq(vigil_hub_config_api(c)->allowed_origins[0], "https://a.example");
    ck_assert_uint_eq(vigil_hub_config_api(c)->nbindings, 0);
    vigil_hub_config_free(c);
    ck_assert_int_eq(load_cfg("series_idle: 30m\nseries_per_agent: 500\n", &c), VIGIL_OK);
    ck_assert_int_eq(vigil_hub_config_hub(c)->series_idle_ms, 30 * 60 * 1000);
    ck_assert_uint_eq(vigil_hub_config_hub(c)->series_per_agent, 500);
    vigil_hub_config_free(c);
    cfg_fails("series_per_agent: 200000\n", VIGIL_ERANGE, "series_per_agent");
    /* the dashboard: absent = the built-in directory (NULL), "" = none */
    ck_assert_int_eq(load_cfg("store: 'sqlite::memory:'\n", &c), VIGIL_OK);
    ck_assert_ptr_null(vigil_hub_config_hub(c)->ui_dir);
    ck_assert_uint_eq(vigil_hub_config_hub(c)->ui_max_file, 0);
    vigil_hub_config_free(c);
    ck_assert_int_eq(load_cfg("ui: {dir: ./ui/dist, max_file: 2MiB}\n", &c), VIGIL_OK);
    ck_assert_str_eq(vigil_hub_config_hub(c)->ui_dir, "./ui/dist");
    ck_assert_uint_eq(vigil_hub_config_hub(c)->ui_max_file, 2u * 1024 * 1024);
    ck_assert_uint_eq(vigil_hub_config_hub(c)->version, VIGIL_HUB_OPTIONS_VERSION);
    vigil_hub_config_free(c);
    ck_assert_int_eq(load_cfg("ui: {dir: ''}\n", &c), VIGIL_OK);
    ck_assert_str_eq(vigil_hub_config_hub(c)->ui_dir, "");
    vigil_hub_config_free(c);
    cfg_fails("ui: {dir: ./ui/dist, maxfile: 1MiB}\n", VIGIL_EUNKNOWNKEY,
              "c.yaml:1:22: ui.maxfile: unknown key (did you mean \"max_file\"?)");
    cfg_fails("ui: {max_file: 0}\n", VIGIL_ERANGE,
              "c.yaml:1:16: ui.max_file: expected a size from 1 byte to 1GiB");
    cfg_fails("ui: {max_file: 2GiB}\n", VIGIL_ERANGE, "expected a size from 1 byte to 1GiB");
    cfg_fails("ui: {max_file: big}\n", VIGIL_EVALUE, "ui.max_file");
    cfg_fails("ui: {dir: [a]}\n", VIGIL_ETYPE, "ui.dir");
    cfg_fails("ui: ./ui/dist\n", VIGIL_ETYPE, "ui");
    ck_assert_int_eq(load_cfg("security: {tokens: [{name: a, env: X, scopes: [ingest], agents: "
                              "[web-01, 'web-*']}, {name: b, env: Y, scopes: [read]}]}\n",
                              &c),
                     VIGIL_OK);
    ck_assert_uint_eq(vigil_hub_config_api(c)->nbindings, 1);
    ck_assert_str_eq(vigil_hub_config_api(c)->bindings[0].token, "a");
    ck_assert_uint_eq(vigil_hub_config_api(c)->bindings[0].nagents, 2);
    ck_assert_str_eq(vigil_hub_config_api(c)->bindings[0].agents[1], "web-*");
    vigil_hub_config_free(c);
    /* TLS of the link to the remediator */
    setenv("VT_LONG_SEC", "a-long-enough-secret-0123456789abcdef", 1);
    ck_assert_int_eq(load_cfg("remediator: {url: 'https://rem.example:7601', secret_env: "
                              "VT_LONG_SEC, ca_file: /etc/vigil/ca.pem, cert: /etc/vigil/hub.pem, "
                              "key: /etc/vigil/hub.key}\n",
                              &c),
                     VIGIL_OK);
    ck_assert_str_eq(vigil_hub_config_hub(c)->remediator_ca_file, "/etc/vigil/ca.pem");
    ck_assert_str_eq(vigil_hub_config_hub(c)->remediator_cert, "/etc/vigil/hub.pem");
    ck_assert_str_eq(vigil_hub_config_hub(c)->remediator_key, "/etc/vigil/hub.key");
    vigil_hub_config_free(c);
    cfg_fails("remediator: {url: 'https://rem.example:7601', secret_env: VT_LONG_SEC, cert: "
              "/etc/vigil/hub.pem}\n",
              VIGIL_EVALUE, "set both cert and key, or neither");
    setenv("VT_SHORT_SEC", "short", 1);
    cfg_fails("remediator: {url: 'http://127.0.0.1:7601', secret_env: VT_SHORT_SEC}\n",
              VIGIL_EVALUE,
              "remediator.secret_env: the secret in \"VT_SHORT_SEC\" is 5 bytes; at least 32 are "
              "required");
    cfg_fails("security: {tokens: [{name: a, env: X, scopes: [ingest], agents: []}]}\n",
              VIGIL_EVALUE, "expected 1 to 256 agent ids or globs");
    cfg_fails("security: {tokens: [{name: a, env: X, scopes: [ingest], agents: ['']}]}\n",
              VIGIL_EVALUE, "expected an agent id or glob of 1 to 200 bytes");
    cfg_fails("security: {tokens: [{name: a, env: X, scopes: [ingest]}, {name: a, env: Y, "
              "scopes: [read]}]}\n",
              VIGIL_EVALUE, "a token name must be unique");
    ck_assert_int_eq(load_cfg("listen: 127.0.0.1:0\n"
                              "http: {threads: 3, timeout: 2s, max_body: 1MiB, max_inflated: 4MiB,"
                              " drain_timeout: 3s, tls: {cert: '', key: ''}}\n"
                              "store: 'sqlite::memory:'\n"
                              "security: {tokens: [{name: ops, file: /x, scopes: [admin, read]}],"
                              " allowed_origins: ['https://a.example'], insecure: yes}\n"
                              "ingest: {queue: 8, max_metrics: 500, max_future: 1m,"
                              " group_max_samples: 1000}\n"
                              "windows: {max_age: 10m, max_samples: 100, max_series: 50}\n"
                              "events: {interval: 2s, queue: 16, max_subscribers: 4}\n"
                              "log: {level: warn}\n",
                              &c),
                     VIGIL_OK);
    ck_assert_uint_eq(vigil_hub_config_hub(c)->queue_max, 8);
    ck_assert_int_eq(vigil_hub_config_hub(c)->windows.window.max_age_ms, 600000);
    ck_assert_uint_eq(vigil_hub_config_hub(c)->events_queue_max, 16);
    ck_assert_int_eq(vigil_hub_config_daemon(c)->log_level, VIGIL_LOG_WARN);
    ck_assert_int_eq(vigil_hub_config_daemon(c)->drain_timeout_ms, 3000);
    vigil_hub_config_free(c);

    cfg_fails("listen: 127.0.0.1:7600\nbogus: 1\n", VIGIL_EUNKNOWNKEY,
              "c.yaml:2:1: bogus: unknown key");
    cfg_fails("http: {timout: 3s}\n", VIGIL_EUNKNOWNKEY,
              "http.timout: unknown key (did you mean \"timeout\"?)");
    cfg_fails("http: {timeout: ten}\n", VIGIL_EVALUE, "c.yaml:1:17: http.timeout: ");
    cfg_fails("http: {timeout: 500ms}\n", VIGIL_ERANGE, "the connection timeout is at least 1s");
    cfg_fails("http: {per_ip: -1}\n", VIGIL_ERANGE, "http.per_ip: expected an integer from 0");
    cfg_fails("http: {tls: {cert: a.pem}}\n", VIGIL_EVALUE, "set both cert and key");
    cfg_fails("store: mysql://x\n", VIGIL_EUNSUPPORTED,
              "c.yaml:1:8: store: expected sqlite://PATH");
    cfg_fails("security: {tokens: [{name: a, env: X, file: /y, scopes: [read]}]}\n", VIGIL_EVALUE,
              "set exactly one of env and file");
    cfg_fails("security: {tokens: [{name: a, env: X, scopes: [root]}]}\n", VIGIL_EVALUE,
              "security.tokens[0].scopes[0]: expected a scope");
    cfg_fails("security: {tokens: [{env: X, scopes: [read]}]}\n", VIGIL_EMISSING,
              "missing required key \"name\"");
    cfg_fails("security: {tokens: [{name: a, env: X, scopes: []}]}\n", VIGIL_EVALUE,
              "at least one scope");
    cfg_fails("security: {allowed_origins: [ops.example.com]}\n", VIGIL_EVALUE,
              "expected an origin");
    cfg_fails("security: {insecure: maybe}\n", VIGIL_EVALUE, "security.insecure");
    cfg_fails("ingest: {queue: lots}\n", VIGIL_EVALUE, "ingest.queue");
    cfg_fails("events: {every: 1s}\n", VIGIL_EUNKNOWNKEY, "events.every: unknown key");
    cfg_fails("log: {level: loud}\n", VIGIL_EVALUE, "expected debug, info, warn, error or off");
    cfg_fails("policy: []\n", VIGIL_EUNKNOWNKEY, "policy: unknown key");
    cfg_fails("- a\n", VIGIL_ETYPE, "");
    ck_assert_int_eq(vigil_hub_config_load(&c, "/nonexistent/collector.yaml", NULL), VIGIL_EIO);
    ck_assert_int_eq(vigil_hub_config_load(NULL, "x", NULL), VIGIL_EINVAL);
    vigil_hub_config_free(NULL);
}
END_TEST

/* ---- the dashboard's files (vigil_hub_options.ui_dir) ------------------------------ */

static vigil_hub *ui_hub(unsigned int version, const char *dir)
{
    vigil_hub_options o = VIGIL_HUB_OPTIONS_INIT;
    o.version = version;
    o.store_url = "sqlite::memory:";
    o.logger.min_level = VIGIL_LOG_OFF;
    o.ui_dir = dir;
    o.ui_max_file = 8;
    vigil_hub *hub = NULL;
    ck_assert_int_eq(vigil_hub_new(&hub, &o), VIGIL_OK);
    return hub;
}

START_TEST(dashboard_files_through_the_api)
{
    const char *dir = vt_tmpdir();
    vt_write_file(dir, "index.html", "<p>ok", 5);
    vt_write_file(dir, "big.js", "123456789", 9);
    vigil_hub *hub = ui_hub(VIGIL_HUB_OPTIONS_VERSION, dir);
    vigil_api *api = mounted(hub, 1);
    treq t = {.path = "/"};
    vigil_api_response *r = run(api, &t);
    expect(r, 200, "<p>ok");
    ck_assert_str_eq(vigil_api_response_header(r, "Content-Type"), "text/html; charset=utf-8");
    ck_assert_str_eq(vigil_api_response_header(r, "Cache-Control"), "no-cache");
    ck_assert_str_eq(vigil_api_response_header(r, "Content-Security-Policy"), VIGIL_HUB_UI_CSP);
    vigil_api_response_free(r);
    /* ui_max_file: 8 bytes */
    t.path = "/big.js";
    expect_error(run(api, &t), 403, "forbidden", "", "the file is larger than ui.max_file");
    /* a route wins; nothing under /v1 (even encoded) is a file; other methods 405 */
    t.path = "/v1/nothing";
    expect_error(run(api, &t), 404, "not_found", "", "no such route");
    t.path = "/%761/index.html";
    expect_error(run(api, &t), 404, "not_found", "", "no such route");
    t.path = "/metrics";
    expect_error(run(api, &t), 401, "unauthorized", "", "");
    t.path = "/index.html";
    t.method = "POST";
    r = run(api, &t);
    ck_assert_str_eq(vigil_api_response_header(r, "Allow"), "GET, HEAD");
    expect_error(r, 405, "method_not_allowed", "", "method POST is not allowed");
    t.method = "HEAD";
    expect_free(run(api, &t), 200, "<p>ok");
    vigil_buf m = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil_api_metrics_text(api, &m), VIGIL_OK);
    ck_assert_ptr_nonnull(
        strstr(m.ptr, "vigil_http_requests_total{route=\"static\",code=\"200\"} 2"));
    ck_assert_ptr_nonnull(
        strstr(m.ptr, "vigil_http_requests_total{route=\"static\",code=\"405\"} 1"));
    vigil_buf_dispose(&m);
    vigil_api_free(api);
    vigil_hub_free(hub);

    /* "": no dashboard; the api's own 404 */
    hub = ui_hub(VIGIL_HUB_OPTIONS_VERSION, "");
    api = mounted(hub, 0);
    t.method = "GET";
    t.path = "/";
    expect_error(run(api, &t), 404, "not_found", "", "no such route");
    vigil_api_free(api);
    vigil_hub_free(hub);

    /* a version 2 caller has no ui_dir: the built-in directory, never the field */
    hub = ui_hub(2, "");
    api = mounted(hub, 0);
    r = run(api, &t);
    char idx[] = "/usr/local/share/vigil/ui/index.html";
    if (access(idx, R_OK) == 0) {
        expect(r, 200, NULL);
    } else {
        expect(r, 404, NULL);
        ck_assert_ptr_nonnull(
            strstr(vigil_api_response_body(r, NULL), "<h1>The Vigil dashboard is not built</h1>"));
        ck_assert_str_eq(vigil_api_response_header(r, "Cache-Control"), "no-store");
    }
    vigil_api_response_free(r);
    vigil_api_free(api);
    vigil_hub_free(hub);

    /* under an api prefix */
    hub = ui_hub(VIGIL_HUB_OPTIONS_VERSION, dir);
    vigil_api_options ao = VIGIL_API_OPTIONS_INIT;
    ao.prefix = "/vigil";
    ao.logger.min_level = VIGIL_LOG_OFF;
    ck_assert_int_eq(vigil_api_new(&api, &ao), VIGIL_OK);
    ck_assert_int_eq(vigil_hub_mount(hub, api), VIGIL_OK);
    t.path = "/vigil/";
    expect_free(run(api, &t), 200, "<p>ok");
    t.path = "/vigil/v1/x";
    expect_error(run(api, &t), 404, "not_found", "", "no such route");
    t.path = "/index.html";
    expect_error(run(api, &t), 404, "not_found", "", "no such route");
    vigil_api_free(api);
    vigil_hub_free(hub);
}
END_TEST

/* ---- out of memory ---------------------------------------------------------------- */

static int op_hub_new(void *ctx)
{
    vigil_hub **out = ctx;
    vigil_hub_options o = VIGIL_HUB_OPTIONS_INIT;
    o.store_url = "sqlite::memory:";
    o.logger.min_level = VIGIL_LOG_OFF;
    return vigil_hub_new(out, &o);
}

static void cleanup_hub(void *ctx)
{
    vigil_hub **out = ctx;
    vigil_hub_free(*out);
    *out = NULL;
}

static int op_cfg(void *ctx)
{
    vigil_hub_config **out = ctx;
    setenv("VT_OOM_TOKEN", "oom-token-000000000000000", 1);
    const char *text = "listen: 127.0.0.1:0\nhttp: {tls: {cert: '', key: ''}}\n"
                       "security: {tokens: [{name: a, env: VT_OOM_TOKEN, scopes: [ingest]},"
                       " {name: b, env: VT_OOM_TOKEN, scopes: [read]}],"
                       " allowed_origins: ['https://a.example']}\n"
                       "ingest: {queue: 4}\nwindows: {max_age: 1m}\nevents: {queue: 8}\n";
    return vigil_hub_config_load_string(out, text, strlen(text), "oom.yaml", NULL);
}

static void cleanup_cfg(void *ctx)
{
    vigil_hub_config **out = ctx;
    vigil_hub_config_free(*out);
    *out = NULL;
}

START_TEST(oom_sweeps)
{
    vigil_hub *hub = NULL;
    /* SQLite reports its own allocation failures as I/O errors of the open */
    ck_assert_int_gt(vt_oom_sweep(op_hub_new, cleanup_hub, &hub, VIGIL_EIO), 5);
    vigil_hub_config *cfg = NULL;
    ck_assert_int_gt(vt_oom_sweep(op_cfg, cleanup_cfg, &cfg, 0), 5);
}
END_TEST

static Suite *hub_suite(void)
{
    Suite *s = suite_create("hub");
    TCase *tc = tcase_create("hub");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, options_and_bad_store);
    tcase_add_test(tc, dashboard_files_through_the_api);
    tcase_add_test(tc, ingest_commits_and_feeds_windows);
    tcase_add_test(tc, async_ingest_and_stop_drains);
    tcase_add_test(tc, concurrent_ingests_group_commit);
    tcase_add_test(tc, queue_full_is_429);
    tcase_add_test(tc, ingest_route_statuses);
    tcase_add_test(tc, auth_on_hub_routes);
    tcase_add_test(tc, bound_token_agents);
    tcase_add_test(tc, gzip_of_zeros_refused_early);
    tcase_add_test(tc, readonly_store_is_503);
    tcase_add_test(tc, write_log_past_its_hard_cap_is_503);
    tcase_add_test(tc, query_and_series_routes);
    tcase_add_test(tc, events_stream);
    tcase_add_test(tc, ingest_rate_ticks);
    tcase_add_test(tc, metrics_of_the_hub);
    tcase_add_test(tc, windows_past_their_limit_are_counted);
    tcase_add_test(tc, unwatched_series_get_no_window);
    tcase_add_test(tc, watched_window_has_the_rules_span);
    tcase_add_test(tc, reload_rebuilds_and_frees_windows);
    tcase_add_test(tc, windows_rebuild_from_the_store);
    tcase_add_test(tc, shipped_collector_yaml_loads);
    tcase_add_test(tc, collector_yaml_errors);
    tcase_add_test(tc, oom_sweeps);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(hub_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
