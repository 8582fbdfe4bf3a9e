/* bench/ingest_pg: bench/ingest_http's load against one SQLite hub, one hub
 * on PostgreSQL and two hubs on the same PostgreSQL database (issue #20).
 *
 * It starts its own PostgreSQL server the way the test suites do
 * (tests/unit/pgtest.h: initdb and postgres from /usr/lib/postgresql/N/bin on
 * a free loopback port, data under build/pg, as "nobody" when run as root,
 * stopped and removed at the end, also on failure or SIGINT/SIGTERM; the
 * server dies with this process). Hubs are in-process vigil_hub instances,
 * each behind its own API server on its own loopback port; every
 * configuration gets a fresh database (SQLite file or CREATE DATABASE).
 *
 * The load is bench/ingest_http's: 32 libcurl-multi connections posting
 * batches of 1,000 metrics, counted when their 202 arrives (after commit);
 * every request has its own batch id and new timestamps. Both shapes: the
 * shared 100 series, and the fleet (32 agents x 1,000 series of their own).
 * With two hubs, connections 0-15 post to the first and 16-31 to the
 * second (in the fleet shape: agents c00-c15 and c16-c31), and the hubs
 * form a cluster (vigil_hub_set_cluster(), collector.yaml `cluster:`): both
 * ingest, the leader holds the store's lease and reads every sample back
 * from the store's tail for its policies (it has none here), as in
 * production; the single hubs are not clustered.
 *  - closed loop: each connection sends its next request as soon as the
 *    previous one is answered: metrics/s (its p99 is queueing, 32 in flight);
 *  - open loop: requests due on a fixed schedule on whichever connection is
 *    free, latency measured from the due time (no coordinated omission), at
 *    a ladder of rates that suits the PostgreSQL write path: 25, 50 and 100
 *    req/s (25,000, 50,000 and 100,000 metrics/s) by default.
 *
 * PostgreSQL runs with fsync=on (the default, as in production) and with
 * fsync=off + full_page_writes=off (as the test suites run it); which one is
 * printed in every row. The SQLite hub uses the store's default URL
 * (WAL, synchronous=NORMAL).
 *
 *   make build/bench/ingest_pg && build/bench/ingest_pg [seconds per run (default 10)]
 *   INGEST_PG_FSYNC=on|off|both   PostgreSQL's fsync (default both)
 *   INGEST_PG_RATES=25,50,100     the open-loop rates in requests/s (1,000 metrics each)
 *   INGEST_PG_POOL=<n>            each hub's store connections (URL pool=; store default 2)
 *   INGEST_PG_SHAPES=shared|fleet|both   (default both)
 *   VIGIL_BUILD=<dir>             the build tree (default ./build): the server's data go under it
 * Figures, never pass/fail.
 */
#include "../tests/unit/pgtest.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <vigil/vigil.h>

#define CONNS    32
#define METRICS  1000
#define MAXRATES 8

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the private PostgreSQL server --------------------------------------------- */

static vt_pg g_pg;

static void pg_cleanup(void)
{
    vt_pg_stop(&g_pg);
}

static void on_signal(int sig)
{
    (void)sig;
    if (g_pg.pid && getpid() == g_pg.owner) {
        kill(g_pg.pid, SIGQUIT);
        waitpid(g_pg.pid, NULL, 0);
        g_pg.pid = 0;
    }
    if (g_pg.dir[0])
        vt_pg_rm_rf(g_pg.dir);
    _exit(1);
}

/* (Re)starts the postmaster of g_pg with fsync on or off; 0 on success. */
static int pg_launch(int fsync_on)
{
    vt_pg_halt(&g_pg);
    char port[16], log[700];
    snprintf(port, sizeof(port), "%d", g_pg.port);
    snprintf(log, sizeof(log), "%s/postgres.log", g_pg.dir);
    char postgres[300];
    snprintf(postgres, sizeof(postgres), "%s/postgres", g_pg.bin);
    char *argv[] = {postgres,
                    "-D",
                    g_pg.data,
                    "-p",
                    port,
                    "-k",
                    g_pg.sock,
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    fsync_on ? "fsync=on" : "fsync=off",
                    "-c",
                    fsync_on ? "full_page_writes=on" : "full_page_writes=off",
                    "-c",
                    "max_connections=200",
                    "-c",
                    "shared_buffers=256MB",
                    "-c",
                    "unix_socket_permissions=0777",
                    NULL};
    g_pg.pid = vt_pg_spawn(&g_pg, argv, log, 1);
    if (g_pg.pid < 0) {
        g_pg.pid = 0;
        return -1;
    }
    char conninfo[800];
    snprintf(conninfo, sizeof(conninfo),
             "host=%s port=%d user=%s dbname=postgres connect_timeout=5", g_pg.sock, g_pg.port,
             VT_PG_USER);
    double deadline = now_s() + 60;
    while (PQping(conninfo) != PQPING_OK) {
        if (waitpid(g_pg.pid, NULL, WNOHANG) == g_pg.pid) {
            g_pg.pid = 0;
            vt_pg_fail(&g_pg, "postgres exited at start", log);
            return -1;
        }
        if (now_s() > deadline) {
            vt_pg_fail(&g_pg, "postgres did not accept connections within 60 s", log);
            return -1;
        }
        poll(NULL, 0, 20);
    }
    return 0;
}

/* ---- the load (bench/ingest_http's, with a URL per connection) ------------------ */

typedef struct body {
    char *text;
    size_t len;
    size_t id_off;
    size_t ts_off[METRICS];
} body;

static int g_agents; /* fleet shape: each connection an agent with series of its own */
static int g_series = 100;
static long g_seq; /* batch ids and timestamps never repeat in one program */

static void body_init(body *b, int conn)
{
    size_t cap = METRICS * 100 + 128;
    b->text = malloc(cap);
    if (!b->text) {
        fprintf(stderr, "ingest_pg: out of memory\n");
        exit(1);
    }
    size_t n = (size_t)snprintf(b->text, cap, "{\"agent\":\"bench\",\"batch_id\":\"");
    b->id_off = n;
    n += (size_t)snprintf(b->text + n, cap - n, "b-0000000000\",\"metrics\":[");
    for (int k = 0; k < METRICS; k++) {
        n += (size_t)snprintf(b->text + n, cap - n,
                              "%s{\"name\":\"bench_metric\",\"value\":%d.5,\"ts\":", k ? "," : "",
                              k);
        b->ts_off[k] = n;
        if (g_agents)
            n += (size_t)snprintf(b->text + n, cap - n,
                                  "0000000000000,\"tags\":{\"host\":\"c%02d\",\"series\":\"%d\"}}",
                                  conn, k % g_series);
        else
            n += (size_t)snprintf(b->text + n, cap - n,
                                  "0000000000000,\"tags\":{\"host\":\"h%02d\",\"series\":\"%d\"}}",
                                  k % 10, k % g_series);
    }
    n += (size_t)snprintf(b->text + n, cap - n, "]}");
    b->len = n;
}

static void put_digits(char *p, long long v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

static void body_stamp(body *b, long seq, long long ts_base)
{
    put_digits(b->text + b->id_off + 2, seq, 10);
    for (int k = 0; k < METRICS; k++)
        put_digits(b->text + b->ts_off[k], ts_base + seq * (METRICS / g_series) + k / g_series, 13);
}

typedef struct slot {
    CURL *h;
    body b;
    const char *url;
    double start;
} slot;

typedef struct run_result {
    long ok;
    long failed;
    double seconds;
    double *lat;
    size_t nlat;
} run_result;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

/* Posts for `seconds` over CONNS connections, connection i to urls[i * nurl
 * / CONNS]; rate 0: closed loop, else open loop at `rate` requests/s. */
static run_result load(const char *const *urls, int nurl, double seconds, long long ts_base,
                       double rate)
{
    static slot slots[CONNS];
    run_result r;
    memset(&r, 0, sizeof(r));
    size_t cap = 1 << 20;
    r.lat = malloc(cap * sizeof(double));
    CURLM *m = curl_multi_init();
    if (!r.lat || !m) {
        fprintf(stderr, "ingest_pg: out of memory\n");
        exit(1);
    }
    curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)CONNS);
    struct curl_slist *hs = curl_slist_append(NULL, "Content-Type: application/json");
    hs = curl_slist_append(hs, "Expect:");
    slot *idle[CONNS];
    int nidle = 0, idle_head = 0;
    for (int i = 0; i < CONNS; i++) {
        if (!slots[i].h)
            slots[i].h = curl_easy_init();
        free(slots[i].b.text);
        body_init(&slots[i].b, i);
        slots[i].url = urls[i * nurl / CONNS];
        curl_easy_setopt(slots[i].h, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(slots[i].h, CURLOPT_PRIVATE, &slots[i]);
        curl_easy_setopt(slots[i].h, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(slots[i].h, CURLOPT_HTTPHEADER, hs);
        idle[nidle++] = &slots[i];
    }
    double t0 = now_s(), end = t0 + seconds, next_due = t0;
    int running = 0, active = 0;
    for (;;) {
        double t = now_s();
        while (nidle && t < end && (rate <= 0 || t >= next_due)) {
            nidle--;
            slot *s = idle[idle_head];
            idle_head = (idle_head + 1) % CONNS;
            body_stamp(&s->b, g_seq++, ts_base);
            curl_easy_setopt(s->h, CURLOPT_URL, s->url);
            curl_easy_setopt(s->h, CURLOPT_POSTFIELDS, s->b.text);
            curl_easy_setopt(s->h, CURLOPT_POSTFIELDSIZE, (long)s->b.len);
            s->start = rate > 0 ? next_due : now_s();
            curl_multi_add_handle(m, s->h);
            active++;
            next_due += rate > 0 ? 1.0 / rate : 0;
        }
        if (!active && (t >= end || !nidle))
            break;
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            slot *s;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            long code = 0;
            curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &code);
            double done = now_s();
            if (msg->data.result == CURLE_OK && code == 202) {
                r.ok++;
                if (r.nlat < cap)
                    r.lat[r.nlat++] = done - s->start;
            } else if (!r.failed++) {
                fprintf(stderr, "ingest_pg: first failure: %s, HTTP %ld\n",
                        curl_easy_strerror(msg->data.result), code);
            }
            curl_multi_remove_handle(m, s->h);
            active--;
            idle[(idle_head + nidle++) % CONNS] = s;
        }
        int wait_ms = 100;
        if (rate > 0 && nidle) {
            double until = (next_due - now_s()) * 1000.0;
            wait_ms = until < 0 ? 0 : until > 100 ? 100 : (int)until;
        } else if (rate <= 0 && nidle && now_s() < end) {
            wait_ms = 0;
        }
        if (active)
            curl_multi_poll(m, NULL, 0, wait_ms, NULL);
        else if (wait_ms)
            usleep((useconds_t)wait_ms * 1000);
    }
    r.seconds = now_s() - t0;
    curl_multi_cleanup(m);
    curl_slist_free_all(hs);
    qsort(r.lat, r.nlat, sizeof(double), cmp_double);
    return r;
}

static double pct(const run_result *r, double p)
{
    if (!r->nlat)
        return 0;
    return r->lat[(size_t)(p * (double)(r->nlat - 1))] * 1000.0;
}

/* ---- hubs and the table -------------------------------------------------------- */

typedef struct row {
    char config[48];
    char shape[8];
    double closed_mps, closed_p99;
    double mps[MAXRATES], p50[MAXRATES], p99[MAXRATES];
    long failed[MAXRATES], closed_failed;
} row;

static double g_rates[MAXRATES] = {25, 50, 100};
static int g_nrates = 3;
static row g_rows[32];
static int g_nrows;

typedef struct hub_set {
    int n;
    vigil_hub *hub[2];
    vigil_api *api[2];
    vigil_httpd *httpd[2];
    char target[2][128];
} hub_set;

static void hubs_start(hub_set *hs, int n, const char *store_url)
{
    memset(hs, 0, sizeof(*hs));
    hs->n = n;
    vigil_logger quiet = {NULL, NULL, VIGIL_LOG_WARN};
    for (int i = 0; i < n; i++) {
        vigil_hub_options ho = VIGIL_HUB_OPTIONS_INIT;
        ho.store_url = store_url;
        ho.logger = quiet;
        ho.ui_dir = ""; /* no dashboard */
        vigil_api_options ao = VIGIL_API_OPTIONS_INIT;
        ao.logger = quiet;
        vigil_httpd_options so = VIGIL_HTTPD_OPTIONS_INIT;
        so.listen = "127.0.0.1:0";
        so.logger = quiet;
        /* two hubs: a cluster (collector.yaml cluster:), the leader by the
         * store's lease, tailing every hub's samples for its policies */
        vigil_hub_cluster_options co = VIGIL_HUB_CLUSTER_OPTIONS_INIT;
        co.enabled = n > 1;
        co.holder = i ? "bench-hub-b" : "bench-hub-a";
        if (vigil_hub_new(&hs->hub[i], &ho) || vigil_hub_set_cluster(hs->hub[i], &co) ||
            vigil_hub_start(hs->hub[i]) || vigil_api_new(&hs->api[i], &ao) ||
            vigil_hub_mount(hs->hub[i], hs->api[i]) ||
            vigil_httpd_new(&hs->httpd[i], hs->api[i], &so) || vigil_httpd_start(hs->httpd[i])) {
            fprintf(stderr, "ingest_pg: hub %d on %s: %s\n", i, store_url,
                    vigil_error_last()->message);
            exit(1);
        }
        snprintf(hs->target[i], sizeof(hs->target[i]), "http://%s/v1/ingest",
                 vigil_httpd_address(hs->httpd[i]));
    }
}

static void hubs_stop(hub_set *hs)
{
    for (int i = 0; i < hs->n && hs->n > 1; i++) {
        vigil_hub_cluster_status cs = VIGIL_HUB_CLUSTER_STATUS_INIT;
        if (vigil_hub_cluster_status_get(hs->hub[i], &cs) == VIGIL_OK)
            printf("  cluster: %s %s, epoch %llu, %llu terms, %llu samples read from the tail\n",
                   cs.holder, cs.leader ? "leads" : "follows", (unsigned long long)cs.epoch,
                   (unsigned long long)cs.terms, (unsigned long long)cs.tailed);
    }
    for (int i = 0; i < hs->n; i++) {
        vigil_httpd_quiesce(hs->httpd[i]);
        vigil_hub_stop(hs->hub[i]);
        vigil_httpd_free(hs->httpd[i]);
        vigil_api_free(hs->api[i]);
        vigil_hub_free(hs->hub[i]);
    }
}

/* One configuration, one shape: warm-up, closed loop, then the open-loop
 * ladder; a row of the table. */
static void run_config(const char *config, const char *shape, int nhubs, const char *store_url,
                       double seconds)
{
    hub_set hs;
    hubs_start(&hs, nhubs, store_url);
    const char *urls[2] = {hs.target[0], hs.target[nhubs - 1]};
    row *w = &g_rows[g_nrows++];
    memset(w, 0, sizeof(*w));
    snprintf(w->config, sizeof(w->config), "%s", config);
    snprintf(w->shape, sizeof(w->shape), "%s", shape);
    printf("\n%s, %s shape (%d hub%s, 32 connections%s)\n", config, shape, nhubs,
           nhubs > 1 ? "s" : "", nhubs > 1 ? " split 16/16" : "");
    fflush(stdout);
    long long ts_base = 1700000000000LL;
    run_result r = load(urls, nhubs, seconds < 2 ? seconds : 2, ts_base, 0); /* warm-up */
    free(r.lat);
    r = load(urls, nhubs, seconds, ts_base + 100000000LL, 0);
    w->closed_mps = (double)r.ok * METRICS / r.seconds;
    w->closed_p99 = pct(&r, 0.99);
    w->closed_failed = r.failed;
    uint64_t commits = 0, batches = 0;
    for (int i = 0; i < nhubs; i++) {
        vigil_hub_stats st = VIGIL_HUB_STATS_INIT;
        vigil_hub_stats_get(hs.hub[i], &st);
        commits += st.commits;
        batches += st.batches;
    }
    printf("  closed loop: %8.0f metrics/s (%ld requests, %ld failed)  p50 %.1f ms  p99 %.1f ms"
           "  commit groups %llu for %llu batches\n",
           w->closed_mps, r.ok, r.failed, pct(&r, 0.50), w->closed_p99, (unsigned long long)commits,
           (unsigned long long)batches);
    free(r.lat);
    for (int k = 0; k < g_nrates; k++) {
        r = load(urls, nhubs, seconds, ts_base + (long long)(k + 2) * 100000000LL, g_rates[k]);
        w->mps[k] = (double)r.ok * METRICS / r.seconds;
        w->p50[k] = pct(&r, 0.50);
        w->p99[k] = pct(&r, 0.99);
        w->failed[k] = r.failed;
        printf("  offered %6.0f metrics/s: %8.0f acknowledged  from due time p50 %.1f ms  p99 "
               "%.1f ms  (%ld failed)\n",
               g_rates[k] * METRICS, w->mps[k], w->p50[k], w->p99[k], r.failed);
        fflush(stdout);
        free(r.lat);
    }
    hubs_stop(&hs);
}

static void print_table(void)
{
    printf("\n%-37s %-6s %11s %9s", "configuration", "shape", "closed m/s", "p99 ms");
    for (int k = 0; k < g_nrates; k++)
        printf(" | @%-6.0f ack m/s p50 ms p99 ms", g_rates[k] * METRICS);
    printf("\n");
    for (int i = 0; i < g_nrows; i++) {
        const row *w = &g_rows[i];
        printf("%-37s %-6s %11.0f %9.1f", w->config, w->shape, w->closed_mps, w->closed_p99);
        for (int k = 0; k < g_nrates; k++)
            printf(" | %15.0f %6.1f %6.1f%s", w->mps[k], w->p50[k], w->p99[k],
                   w->failed[k] ? "!" : "");
        printf("\n");
    }
    printf("(m/s: metrics/s acknowledged after commit; open-loop p50/p99 from the due time; "
           "'!' = some requests failed)\n");
}

static void remove_sqlite(const char *dir)
{
    char db[700];
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(db, sizeof(db), "%s/bench.db%s", dir, sfx[i]);
        unlink(db);
    }
    rmdir(dir);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 10.0;
    if (seconds <= 0)
        seconds = 10.0;
    const char *fs = getenv("INGEST_PG_FSYNC");
    int fsync_modes[2] = {1, 0}, nmodes = 2;
    if (fs && strcmp(fs, "on") == 0)
        nmodes = 1;
    else if (fs && strcmp(fs, "off") == 0)
        fsync_modes[0] = 0, nmodes = 1;
    else if (fs && strcmp(fs, "both") != 0) {
        fprintf(stderr, "ingest_pg: INGEST_PG_FSYNC must be on, off or both\n");
        return 2;
    }
    if (getenv("INGEST_PG_RATES")) {
        g_nrates = 0;
        char buf[256];
        snprintf(buf, sizeof(buf), "%s", getenv("INGEST_PG_RATES"));
        for (char *t = strtok(buf, ","); t && g_nrates < MAXRATES; t = strtok(NULL, ",")) {
            double v = atof(t);
            if (v <= 0 || v > 100000) {
                fprintf(stderr, "ingest_pg: INGEST_PG_RATES: %s is not a rate in req/s\n", t);
                return 2;
            }
            g_rates[g_nrates++] = v;
        }
    }
    long pool = getenv("INGEST_PG_POOL") ? atol(getenv("INGEST_PG_POOL")) : 0;
    if (pool < 0 || pool > 64) {
        fprintf(stderr, "ingest_pg: INGEST_PG_POOL must be 1..64\n");
        return 2;
    }
    const char *sh = getenv("INGEST_PG_SHAPES");
    int do_shared = !sh || strcmp(sh, "fleet") != 0, do_fleet = !sh || strcmp(sh, "shared") != 0;

    /* the server's data under the build tree, by an absolute path (postgres
     * runs in its data directory) */
    char build[4096];
    const char *b = getenv("VIGIL_BUILD");
    if (!realpath(b && *b ? b : "build", build)) {
        fprintf(stderr, "ingest_pg: the build directory %s: %s\n", b && *b ? b : "build",
                strerror(errno));
        return 1;
    }
    setenv("VIGIL_TEST_BUILD", build, 1);
    int st = vt_pg_start(&g_pg, "ingest_pg");
    if (st != 1) {
        fprintf(stderr, "ingest_pg: %s\n", g_pg.err);
        vt_pg_stop(&g_pg);
        return st == 0 ? 0 : 1; /* no server installed: nothing to measure */
    }
    atexit(pg_cleanup);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    curl_global_init(CURL_GLOBAL_ALL);
    double la[3] = {0, 0, 0};
    FILE *lf = fopen("/proc/loadavg", "r");
    if (lf) {
        if (fscanf(lf, "%lf %lf %lf", &la[0], &la[1], &la[2]) != 3)
            la[0] = la[1] = la[2] = 0;
        fclose(lf);
    }
    printf("ingest_pg: %ld CPUs, load average %.2f %.2f %.2f, %.0f s per run, PostgreSQL %s "
           "(private server, port %d), hub store pool %ld\n",
           sysconf(_SC_NPROCESSORS_ONLN), la[0], la[1], la[2], seconds, g_pg.bin, g_pg.port,
           pool ? pool : 2);

    struct {
        int agents, series;
        const char *name;
    } shapes[2] = {{0, 100, "shared"}, {1, 1000, "fleet"}};
    int ndb = 0;
    for (int s = 0; s < 2; s++) {
        if ((s == 0 && !do_shared) || (s == 1 && !do_fleet))
            continue;
        g_agents = shapes[s].agents;
        g_series = shapes[s].series;
        char dir[] = "/tmp/vigil-bench-XXXXXX";
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            return 1;
        }
        char url[700];
        snprintf(url, sizeof(url), "sqlite://%s/bench.db", dir);
        run_config("SQLite, 1 hub", shapes[s].name, 1, url, seconds);
        remove_sqlite(dir);
    }
    for (int m = 0; m < nmodes; m++) {
        if (pg_launch(fsync_modes[m]) != 0) {
            fprintf(stderr, "ingest_pg: %s\n", g_pg.err);
            return 1;
        }
        for (int s = 0; s < 2; s++) {
            if ((s == 0 && !do_shared) || (s == 1 && !do_fleet))
                continue;
            g_agents = shapes[s].agents;
            g_series = shapes[s].series;
            for (int nhubs = 1; nhubs <= 2; nhubs++) {
                char db[32], sql[64], err[512], url[1200], config[48];
                snprintf(db, sizeof(db), "bench%d", ++ndb);
                snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
                if (vt_pg_exec(&g_pg, "postgres", sql, err, sizeof(err)) != 0) {
                    fprintf(stderr, "ingest_pg: %s: %s\n", sql, err);
                    return 1;
                }
                char pool_q[32] = "";
                if (pool)
                    snprintf(pool_q, sizeof(pool_q), "&pool=%ld", pool);
                snprintf(url, sizeof(url), "postgresql:///%s?host=%s&port=%d&user=%s%s", db,
                         g_pg.sock, g_pg.port, VT_PG_USER, pool_q);
                snprintf(config, sizeof(config), "PostgreSQL fsync=%s, %s",
                         fsync_modes[m] ? "on" : "off", nhubs > 1 ? "2 hubs, cluster" : "1 hub");
                run_config(config, shapes[s].name, nhubs, url, seconds);
            }
        }
    }
    print_table();
    curl_global_cleanup();
    return 0; /* atexit: the server stops and its files go */
}
