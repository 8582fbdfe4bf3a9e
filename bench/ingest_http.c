/* bench/ingest_http: ingest throughput over HTTP on loopback.
 *
 * An in-process hub (SQLite file in a temporary directory) behind the
 * built-in server, loaded by a libcurl-multi client with 32 connections
 * posting batches of 1,000 metrics (100 series); every request is counted
 * when its 202 arrives, i.e. after its samples are committed. Every request
 * of the whole program has its own batch id and new timestamps, so none is
 * a duplicate and no sample replaces another. Figures, never pass/fail.
 *
 * Load shapes:
 *  - closed loop: each of the 32 connections sends its next request as soon
 *    as the previous one is answered. This measures throughput (metrics/s).
 *    Its latency is not a service time: with 32 requests always in flight,
 *    Little's law makes the mean latency 32 / throughput (about 100 ms at
 *    300 req/s) whatever the hub does, so its p99 is printed for reference
 *    only.
 *  - open loop: requests are due on a fixed schedule (300 req/s = 300,000
 *    metrics/s, the target, then 80% and 67% of it) on whichever of the 32
 *    connections is free. Latency is measured from the time a request was
 *    due, not from when a free connection let it go, so a hub that falls
 *    behind is charged for the wait (no coordinated omission). The p50/p99
 *    of these runs are the figures to hold against "p99 < 50 ms".
 * Then, as the ceiling, the requests/s of a bare libmicrohttpd server (same
 * thread count) that reads the same bodies and answers 200 OK.
 *
 *   make build/bench/ingest_http && build/bench/ingest_http [seconds [--hub-only]]
 *   INGEST_HTTP_RATE=<req/s>   one open-loop run at that rate only
 *   INGEST_HTTP_STORE=<query>  appended to the store URL, e.g. "?checkpoint=inline"
 *   INGEST_HTTP_METRICS=1      with --hub-only: print the hub's /metrics at the end
 *   INGEST_HTTP_SERIES=<n>     series per batch (a divisor of 1,000; default 100): 1000
 *                              gives each series one sample a request
 *   INGEST_HTTP_AGENTS=1       each connection is an agent with a host tag of its own, so
 *                              its series are its own and arrive in order (by default all
 *                              connections share the same series, whose requests commit
 *                              slightly out of order)
 *   INGEST_HTTP_REDIS=<url>    the hub also publishes its events to that Redis stream
 *                              (collector.yaml redis:), INGEST_HTTP_EVENTS_MS=<ms> its ingest
 *                              events every that many ms (default 1 s), INGEST_HTTP_REDIS_QUEUE
 *                              its queue (redis.queue); see bench/ingest_redis.sh
 *   INGEST_HTTP_MEMORY=<s>     instead of the throughput runs: open loop at INGEST_HTTP_RATE
 *                              (default 20 req/s) for that long, printing RSS, windows and
 *                              write log every 30 s (e.g. with INGEST_HTTP_AGENTS=1
 *                              INGEST_HTTP_SERIES=1000 --hub-only)
 * Without INGEST_HTTP_AGENTS and INGEST_HTTP_SERIES both shapes run, each
 * against a fresh hub: the shared one (100 series) and the fleet (32 agents x
 * 1,000 series of their own: one sample per series per request).
 */
#include <curl/curl.h>
#include <dirent.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <vigil/vigil.h>

#define CONNS   32
#define METRICS 1000
/* series per batch: 100, or INGEST_HTTP_SERIES (a divisor of METRICS) */
static int SERIES = 100;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A request body whose batch id and timestamps are rewritten in place for
 * every request (fixed-width fields), so no batch is a duplicate and no
 * sample replaces another. */
typedef struct body {
    char *text;
    size_t len;
    size_t id_off;
    size_t ts_off[METRICS];
} body;

/* INGEST_HTTP_AGENTS=1: each connection is an agent with a host of its own */
static int g_agents;
/* bumped for each shape: the connections' bodies are built again */
static int g_shape;

static void body_init(body *b, int conn)
{
    size_t cap = METRICS * 100 + 128;
    b->text = malloc(cap);
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
                                  conn, k % SERIES);
        else
            n += (size_t)snprintf(b->text + n, cap - n,
                                  "0000000000000,\"tags\":{\"host\":\"h%02d\",\"series\":\"%d\"}}",
                                  k % 10, k % SERIES);
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
        put_digits(b->text + b->ts_off[k], ts_base + seq * (METRICS / SERIES) + k / SERIES, 13);
}

typedef struct slot {
    CURL *h;
    body b;
    double start; /* when the request was due (open loop) or sent (closed loop) */
    long seq;
    int shape; /* g_shape its body was built for */
} slot;

/* Batch ids and timestamps never repeat across the runs of one program. */
static long g_seq;

typedef struct run_result {
    long done;
    long ok;
    long failed;
    double seconds;
    double *lat;
    size_t nlat;
} run_result;

/* CPU seconds used so far by the threads of this process, by thread name. */
typedef struct thread_cpu {
    char name[32];
    double seconds;
} thread_cpu;

static size_t threads_cpu(thread_cpu *out, size_t max)
{
    size_t n = 0;
    long tck = sysconf(_SC_CLK_TCK);
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], buf[1024];
        snprintf(path, sizeof(path), "/proc/self/task/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[len] = '\0';
        char *l = strchr(buf, '('), *r = strrchr(buf, ')');
        if (!l || !r)
            continue;
        char name[32];
        snprintf(name, sizeof(name), "%.*s", (int)(r - l - 1), l + 1);
        unsigned long ut = 0, st = 0;
        /* fields after the name: state ppid pgrp session tty tpgid flags minflt cminflt
         * majflt cmajflt utime stime */
        if (sscanf(r + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
            continue;
        size_t i = 0;
        while (i < n && strcmp(out[i].name, name) != 0)
            i++;
        if (i == n) {
            if (n == max)
                continue;
            snprintf(out[n].name, sizeof(out[n].name), "%s", name);
            out[n++].seconds = 0;
        }
        out[i].seconds += (double)(ut + st) / (double)tck;
    }
    if (d)
        closedir(d);
    return n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void start_one(CURLM *m, slot *s, const char *url, long seq, long long ts_base,
                      struct curl_slist *hs, double due)
{
    s->seq = seq;
    body_stamp(&s->b, seq, ts_base);
    curl_easy_setopt(s->h, CURLOPT_URL, url);
    curl_easy_setopt(s->h, CURLOPT_POSTFIELDS, s->b.text);
    curl_easy_setopt(s->h, CURLOPT_POSTFIELDSIZE, (long)s->b.len);
    curl_easy_setopt(s->h, CURLOPT_HTTPHEADER, hs);
    s->start = due > 0 ? due : now_s();
    curl_multi_add_handle(m, s->h);
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return size * n;
}

/* Posts bodies over CONNS connections for `seconds`; `want` is the status
 * that counts as success. rate 0: closed loop (each connection sends its next
 * request as soon as the previous is answered); rate > 0: requests start on a
 * fixed schedule of `rate` per second, on whichever connection is free. */
static run_result load(const char *url, double seconds, long want, long long ts_base, double rate)
{
    static slot slots[CONNS];
    run_result r;
    memset(&r, 0, sizeof(r));
    size_t cap = 1 << 20;
    r.lat = malloc(cap * sizeof(double));
    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)CONNS);
    struct curl_slist *hs = NULL;
    hs = curl_slist_append(hs, "Content-Type: application/json");
    hs = curl_slist_append(hs, "Expect:");
    /* free connections, oldest first: in open loop every connection (in the
     * fleet shape every agent) gets its turn, not the same few */
    slot *idle[CONNS];
    int nidle = 0, idle_head = 0;
    for (int i = 0; i < CONNS; i++) {
        if (!slots[i].h)
            slots[i].h = curl_easy_init();
        if (!slots[i].b.text || slots[i].shape != g_shape) {
            free(slots[i].b.text);
            body_init(&slots[i].b, (int)i);
            slots[i].shape = g_shape;
        }
        curl_easy_setopt(slots[i].h, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(slots[i].h, CURLOPT_PRIVATE, &slots[i]);
        curl_easy_setopt(slots[i].h, CURLOPT_TCP_NODELAY, 1L);
        idle[(idle_head + nidle++) % CONNS] = &slots[i];
    }
    double t0 = now_s(), end = t0 + seconds, next_due = t0;
    int running = 0, active = 0;
    for (;;) {
        double t = now_s();
        while (nidle && t < end && (rate <= 0 || t >= next_due)) {
            nidle--;
            slot *next = idle[idle_head];
            idle_head = (idle_head + 1) % CONNS;
            start_one(m, next, url, g_seq++, ts_base, hs, rate > 0 ? next_due : 0);
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
            r.done++;
            if (msg->data.result == CURLE_OK && code == want) {
                r.ok++;
                if (r.nlat < cap)
                    r.lat[r.nlat++] = done - s->start;
            } else if (!r.failed++) {
                fprintf(stderr, "ingest_http: first failure: %s, HTTP %ld\n",
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
    size_t i = (size_t)(p * (double)(r->nlat - 1));
    return r->lat[i] * 1000.0;
}

/* ---- the bare libmicrohttpd ceiling -------------------------------------------- */

static enum MHD_Result bare_handler(void *cls, struct MHD_Connection *c, const char *url,
                                    const char *method, const char *version, const char *data,
                                    size_t *size, void **ctx)
{
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)data;
    static int marker;
    if (!*ctx) {
        *ctx = &marker;
        return MHD_YES;
    }
    if (*size) {
        *size = 0; /* read and discard the body */
        return MHD_YES;
    }
    static const char ok[] = "OK";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(2, (void *)(uintptr_t)ok, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

/* The process's resident memory in MiB (VmRSS). */
static double rss_mib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = 0;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = atof(line + 6);
    if (f)
        fclose(f);
    return kb / 1024.0;
}

/* The value of one line of the hub's /metrics text, 0 when absent. */
static double metric_value(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, name, n) == 0 && p[n] == ' ')
            return atof(p + n + 1);
    return 0;
}

/* INGEST_HTTP_MEMORY=<seconds>: the shape in open loop at INGEST_HTTP_RATE
 * requests/s (default 20: 20,000 metrics/s), printing every 30 s the
 * process's RSS (hub and client), the windows and the write log. */
static void run_memory(vigil_api *api, const char *target, double total, long long ts_base)
{
    double rate = getenv("INGEST_HTTP_RATE") ? atof(getenv("INGEST_HTTP_RATE")) : 20.0;
    printf("memory: open loop at %.0f metrics/s for %.0f s (RSS of the whole process: hub and "
           "client)\n",
           rate * METRICS, total);
    printf("memory: %6.0f s  RSS %7.1f MiB\n", 0.0, rss_mib());
    double done = 0;
    while (done < total) {
        double slice = total - done < 30 ? total - done : 30;
        run_result r = load(target, slice, 202, ts_base, rate);
        done += slice;
        vigil_buf mt = VIGIL_BUF_INIT;
        if (vigil_api_metrics_text(api, &mt) != VIGIL_OK)
            break;
        printf("memory: %6.0f s  RSS %7.1f MiB  series %.0f  windows %.0f (%.1f MiB)  unfolded "
               "%.0f samples (%.1f MiB), log %.1f MiB  p99 %.1f ms  failed %ld\n",
               done, rss_mib(), metric_value(mt.ptr, "vigil_series"),
               metric_value(mt.ptr, "vigil_windows"),
               metric_value(mt.ptr, "vigil_windows_memory_bytes") / 1048576.0,
               metric_value(mt.ptr, "vigil_store_unfolded_samples"),
               metric_value(mt.ptr, "vigil_store_unfolded_bytes") / 1048576.0,
               metric_value(mt.ptr, "vigil_store_log_bytes") / 1048576.0, pct(&r, 0.99), r.failed);
        fflush(stdout);
        vigil_buf_dispose(&mt);
        free(r.lat);
    }
}

static void remove_db(const char *dir)
{
    char db[700];
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(db, sizeof(db), "%s/bench.db%s", dir, sfx[i]);
        unlink(db);
    }
    rmdir(dir);
}

/* One shape against a fresh hub: the closed loop, then the open-loop rates.
 * Returns the closed-loop metrics/s. */
static double run_shape(double seconds, int hub_only, long ncpu)
{
    char dir[] = "/tmp/vigil-bench-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(1);
    }
    char url[600];
    const char *store_q = getenv("INGEST_HTTP_STORE");
    snprintf(url, sizeof(url), "sqlite://%s/bench.db%s", dir, store_q ? store_q : "");
    vigil_logger quiet = {NULL, NULL, VIGIL_LOG_WARN};
    vigil_hub_options ho = VIGIL_HUB_OPTIONS_INIT;
    ho.store_url = url;
    ho.logger = quiet;
    ho.redis_url = getenv("INGEST_HTTP_REDIS");
    ho.redis_queue_max =
        getenv("INGEST_HTTP_REDIS_QUEUE") ? atol(getenv("INGEST_HTTP_REDIS_QUEUE")) : 0;
    ho.events_interval_ms =
        getenv("INGEST_HTTP_EVENTS_MS") ? atoll(getenv("INGEST_HTTP_EVENTS_MS")) : 0;
    vigil_api_options ao = VIGIL_API_OPTIONS_INIT;
    ao.logger = quiet;
    vigil_httpd_options so = VIGIL_HTTPD_OPTIONS_INIT;
    so.listen = "127.0.0.1:0";
    so.logger = quiet;
    vigil_hub *hub = NULL;
    vigil_api *api = NULL;
    vigil_httpd *httpd = NULL;
    if (vigil_hub_new(&hub, &ho) || vigil_hub_start(hub) || vigil_api_new(&api, &ao) ||
        vigil_hub_mount(hub, api) || vigil_httpd_new(&httpd, api, &so) ||
        vigil_httpd_start(httpd)) {
        fprintf(stderr, "ingest_http: %s\n", vigil_error_last()->message);
        exit(1);
    }
    char target[128];
    snprintf(target, sizeof(target), "http://%s/v1/ingest", vigil_httpd_address(httpd));
    printf("\nshape: %d connections, batches of %d metrics (%d series%s), %.0f s per run,"
           " %ld server threads, store %s\n",
           CONNS, METRICS, SERIES,
           g_agents ? " of each connection's own host" : ", shared by all connections", seconds,
           ncpu, url);

    long long ts_base = 1700000000000LL;
    if (getenv("INGEST_HTTP_MEMORY")) {
        /* samples of now: windows and retention see a live fleet */
        struct timespec rt;
        clock_gettime(CLOCK_REALTIME, &rt);
        run_memory(api, target, atof(getenv("INGEST_HTTP_MEMORY")),
                   (long long)rt.tv_sec * 1000 - 60000);
        vigil_httpd_quiesce(httpd);
        vigil_hub_stop(hub);
        vigil_httpd_free(httpd);
        vigil_api_free(api);
        vigil_hub_free(hub);
        remove_db(dir);
        return 0;
    }
    load(target, seconds < 2 ? seconds : 2, 202, ts_base, 0); /* warm-up */
    thread_cpu before[16], after[16];
    size_t nb = threads_cpu(before, 16);
    run_result r = load(target, seconds, 202, ts_base + 100000000LL, 0);
    size_t na = threads_cpu(after, 16);
    vigil_hub_stats st = VIGIL_HUB_STATS_INIT;
    vigil_hub_stats_get(hub, &st);
    double mps = (double)r.ok * METRICS / r.seconds;
    printf("hub, as fast as it goes (closed loop; latency = queueing, see the top of "
           "bench/ingest_http.c):\n"
           "         %8.0f metrics/s acknowledged after commit  (%ld requests, %ld failed, "
           "%.1f req/s)  latency p50 %.1f ms  p99 %.1f ms  commit groups %llu for %llu batches\n",
           mps, r.ok, r.failed, (double)r.ok / r.seconds, pct(&r, 0.50), pct(&r, 0.99),
           (unsigned long long)st.commits, (unsigned long long)st.batches);
    printf("         CPU seconds per thread during the run:");
    for (size_t i = 0; i < na; i++) {
        double b = 0;
        for (size_t k = 0; k < nb; k++)
            if (strcmp(before[k].name, after[i].name) == 0)
                b = before[k].seconds;
        printf(" %s %.2f",
               strcmp(after[i].name, "ingest_http") == 0 ? "client(main)" : after[i].name,
               after[i].seconds - b);
    }
    printf(" (of %.2f s)\n", r.seconds);
    free(r.lat);
    /* latency at a fixed offered load: the target rate, then 80% and 67% of it */
    double offered[] = {300.0, 240.0, 200.0};
    size_t noffered = 3;
    if (getenv("INGEST_HTTP_RATE")) { /* one offered rate only (req/s) */
        offered[0] = atof(getenv("INGEST_HTTP_RATE"));
        noffered = 1;
    }
    for (size_t i = 0; i < noffered; i++) {
        r = load(target, seconds, 202, ts_base + (long long)(i + 2) * 100000000LL, offered[i]);
        printf("hub, offered %.0f metrics/s (%.0f req/s on up to %d connections, open loop):\n"
               "         %8.0f metrics/s acknowledged  latency from due time p50 %.1f ms  "
               "p99 %.1f ms  (%ld failed)\n",
               offered[i] * METRICS, offered[i], CONNS, (double)r.ok * METRICS / r.seconds,
               pct(&r, 0.50), pct(&r, 0.99), r.failed);
        free(r.lat);
    }
    vigil_httpd_quiesce(httpd);
    vigil_hub_stop(hub);
    vigil_httpd_free(httpd);
    if (hub_only) {
        vigil_buf mt = VIGIL_BUF_INIT;
        if (getenv("INGEST_HTTP_METRICS") && vigil_api_metrics_text(api, &mt) == VIGIL_OK)
            fputs(mt.ptr, stdout);
        vigil_buf_dispose(&mt);
    }
    vigil_api_free(api);
    vigil_hub_free(hub);
    remove_db(dir);
    return mps;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 10.0;
    int hub_only = argc > 2 && strcmp(argv[2], "--hub-only") == 0;
    if (seconds <= 0)
        seconds = 10.0;
    /* Both shapes by default, so that tuning one cannot lose the other; one
     * shape when INGEST_HTTP_AGENTS or INGEST_HTTP_SERIES says which. */
    const char *ag = getenv("INGEST_HTTP_AGENTS"), *ns = getenv("INGEST_HTTP_SERIES");
    struct {
        int agents, series;
        const char *name;
    } shapes[2] = {{0, 100, "shared series"}, {1, 1000, "fleet: every agent its own series"}};
    int nshapes = 2;
    if (ag || ns) {
        shapes[0].agents = ag && atoi(ag) == 1;
        shapes[0].series = ns ? atoi(ns) : 100;
        shapes[0].name = "as asked";
        nshapes = 1;
    }
    for (int i = 0; i < nshapes; i++)
        if (shapes[i].series <= 0 || METRICS % shapes[i].series != 0) {
            fprintf(stderr, "ingest_http: INGEST_HTTP_SERIES must divide %d\n", METRICS);
            return 2;
        }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    curl_global_init(CURL_GLOBAL_ALL);
    printf("ingest_http: %ld CPUs\n", ncpu);
    double mps[2] = {0, 0};
    for (int i = 0; i < nshapes; i++) {
        g_agents = shapes[i].agents;
        SERIES = shapes[i].series;
        g_shape++;
        printf("\n== %s", shapes[i].name);
        mps[i] = run_shape(seconds, hub_only, ncpu);
    }
    if (hub_only) {
        curl_global_cleanup();
        return 0;
    }
    /* the ceiling: bare libmicrohttpd, same threads, same bodies, 200 OK */
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, NULL,
                                            NULL, bare_handler, NULL, MHD_OPTION_THREAD_POOL_SIZE,
                                            (unsigned int)(ncpu > 1 ? ncpu : 1),
                                            MHD_OPTION_CONNECTION_LIMIT, 1024u, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "ingest_http: cannot start the bare server\n");
        return 1;
    }
    char target[128];
    snprintf(target, sizeof(target), "http://127.0.0.1:%u/",
             (unsigned)MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port);
    long long ts_base = 1700000000000LL;
    load(target, seconds < 2 ? seconds : 2, 200, ts_base, 0);
    run_result r = load(target, seconds, 200, ts_base, 0);
    double ceiling = (double)r.ok * METRICS / (r.seconds > 0 ? r.seconds : 1);
    printf("\nceiling: %8.0f req/s from a bare libmicrohttpd answering 200 OK to the same bodies "
           "(= %.0f metrics/s)  latency p50 %.1f ms  p99 %.1f ms\n",
           (double)r.ok / r.seconds, ceiling, pct(&r, 0.50), pct(&r, 0.99));
    for (int i = 0; i < nshapes; i++)
        printf("ratio:   hub / ceiling = %.2f  (%s, closed loop)\n", mps[i] / ceiling,
               shapes[i].name);
    free(r.lat);
    MHD_stop_daemon(d);
    curl_global_cleanup();
    return 0;
}
