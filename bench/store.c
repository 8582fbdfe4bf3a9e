/*
 * bench/store: write throughput of the SQLite store against plain SQLite
 * (and of the PostgreSQL store, with BENCH_STORE_PG_URL)
 * inserts on the same machine, query latency over a day of samples, window
 * append and aggregate cost, and memory per series window.
 * Prints figures; never fails on time.
 *
 *   BENCH_STORE_COMMIT_ONLY=1    the commit latency figures only
 *   BENCH_STORE_URL_OPTIONS=...  appended to the URL of the write figures, e.g. "?log=off"
 *   BENCH_STORE_RECOVERY_MB=N    the write log size of the recovery figure (256; 0: skip)
 *   BENCH_STORE_RECOVERY_ONLY=1  the recovery figure alone
 *   BENCH_STORE_PG_URL=postgresql://...  also the write and commit figures on that
 *                                PostgreSQL database, beside SQLite's (each figure in a
 *                                new schema bench_PID_N, left for you to drop)
 */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vigil/sys/store.h"
#include "vigil/vigil.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench/store: %s: %s\n", what, vigil_error_last()->message);
    exit(1);
}

/* Counting allocator: measures the bytes windows really take. */
static long long g_live_bytes;

static void *c_malloc(size_t n, void *p)
{
    (void)p;
    size_t *h = malloc(n + sizeof(size_t) * 2);
    if (!h)
        return NULL;
    h[0] = n;
    g_live_bytes += (long long)n;
    return h + 2;
}

static void *c_realloc(void *ptr, size_t n, void *p)
{
    (void)p;
    if (!ptr)
        return c_malloc(n, NULL);
    size_t *h = (size_t *)ptr - 2;
    size_t old = h[0];
    size_t *nh = realloc(h, n + sizeof(size_t) * 2);
    if (!nh)
        return NULL;
    nh[0] = n;
    g_live_bytes += (long long)n - (long long)old;
    return nh + 2;
}

static void c_free(void *ptr, void *p)
{
    (void)p;
    if (!ptr)
        return;
    size_t *h = (size_t *)ptr - 2;
    g_live_bytes -= (long long)h[0];
    free(h);
}

static char g_dir[256];
/* BENCH_STORE_PG_URL, and whether the figure being taken is PostgreSQL's */
static const char *g_pg_url;
static int g_use_pg;

/* A fresh PostgreSQL store URL: the base URL and a new schema. */
static const char *pg_fresh_url(char *url, size_t len)
{
    static int n;
    snprintf(url, len, "%s%sschema=bench_%d_%d", g_pg_url, strchr(g_pg_url, '?') ? "&" : "?",
             (int)getpid(), n++);
    return url;
}

/* BENCH_STORE_URL_OPTIONS: appended to the store URL, e.g. "?log=off" */
static vigil_store *open_fresh(const char *name)
{
    char url[1400], path[400];
    snprintf(path, sizeof(path), "%s/%s", g_dir, name);
    unlink(path);
    const char *extra = getenv("BENCH_STORE_URL_OPTIONS");
    snprintf(url, sizeof(url), "sqlite://%s%s", path, extra ? extra : "");
    if (g_use_pg)
        pg_fresh_url(url, sizeof(url));
    vigil_store *st = NULL;
    if (vigil_store_open(&st, url, NULL) != VIGIL_OK)
        die("open");
    return st;
}

/* Writes nseries x nsamples, one timestamp per round across all series, in
 * batches of `batch` metrics; returns samples per second of the store writes
 * alone (building the batches is not timed). */
static double bench_write(const char *name, int nseries, int nsamples, int batch, double *per_cpu)
{
    vigil_store *st = open_fresh(name);
    vigil_batch *b = NULL;
    if (vigil_batch_new(&b) != VIGIL_OK)
        die("batch");
    vigil_batch_set_max_metrics(b, (size_t)batch);
    char host[32];
    double spent = 0, cpu = 0;
    long long total = 0;
    int64_t t0 = 1700000000000;
    for (int round = 0; round < nsamples; round++) {
        for (int s = 0; s < nseries; s++) {
            snprintf(host, sizeof(host), "host-%d", s);
            vigil_tag tags[2] = {{"host", host}, {"env", "prod"}};
            vigil_metric m = {"cpu_usage", (double)(round + s) * 0.5, t0 + round * 1000LL, tags, 2,
                              NULL};
            if (vigil_batch_add(b, &m) != VIGIL_OK)
                die("batch add");
            if ((int)vigil_batch_count(b) == batch) {
                double a = now_s(), c = cpu_s();
                if (vigil_store_write(st, b, NULL) != VIGIL_OK)
                    die("write");
                spent += now_s() - a;
                cpu += cpu_s() - c;
                total += batch;
                vigil_batch_clear(b);
            }
        }
    }
    if (vigil_batch_count(b)) {
        double a = now_s(), c = cpu_s();
        if (vigil_store_write(st, b, NULL) != VIGIL_OK)
            die("write");
        spent += now_s() - a;
        cpu += cpu_s() - c;
        total += (long long)vigil_batch_count(b);
    }
    vigil_batch_free(b);
    /* The close is timed: it folds what the write log still holds into the
     * chunks, so the figure is the cost of writing the samples all the way. */
    double a = now_s(), c = cpu_s();
    vigil_store_close(st);
    spent += now_s() - a;
    cpu += cpu_s() - c;
    *per_cpu = (double)total / cpu;
    return (double)total / spent;
}

/* The anchor: plain SQLite, one prepared INSERT, one transaction, an
 * equivalent WITHOUT ROWID table, same pragmas, same order of rows. */
static double bench_raw(int nseries, int nsamples)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/raw.db", g_dir);
    unlink(path);
    sqlite3 *db = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        return 0;
    sqlite3_exec(db,
                 "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                 "CREATE TABLE raw(series_id INTEGER NOT NULL, ts INTEGER NOT NULL, value REAL,"
                 " PRIMARY KEY(series_id, ts)) WITHOUT ROWID",
                 NULL, NULL, NULL);
    sqlite3_stmt *ins = NULL;
    sqlite3_prepare_v2(db, "INSERT INTO raw VALUES(?, ?, ?)", -1, &ins, NULL);
    int64_t t0 = 1700000000000;
    double a = now_s();
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    for (int round = 0; round < nsamples; round++) {
        for (int s = 0; s < nseries; s++) {
            sqlite3_bind_int64(ins, 1, s + 1);
            sqlite3_bind_int64(ins, 2, t0 + round * 1000LL);
            sqlite3_bind_double(ins, 3, (double)(round + s) * 0.5);
            sqlite3_step(ins);
            sqlite3_reset(ins);
        }
    }
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    double spent = now_s() - a;
    sqlite3_finalize(ins);
    sqlite3_close(db);
    return (double)nseries * nsamples / spent;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Commit latency under sustained writes, the load of the hub's committer:
 * groups of `group` metrics over 100 series written back to back for
 * `seconds`, with the checkpoint mode of `query` ("?checkpoint=inline" or
 * ""). Prints the p50/p99/max of one write and the largest WAL seen. */
static void bench_commit_latency(const char *label, const char *query, int group, double seconds)
{
    char url[1400], path[400], wal[420];
    snprintf(path, sizeof(path), "%s/commit.db", g_dir);
    snprintf(wal, sizeof(wal), "%s-wal", path);
    unlink(path);
    unlink(wal);
    snprintf(url, sizeof(url), "sqlite://%s%s", path, query);
    if (g_use_pg)
        pg_fresh_url(url, sizeof(url));
    vigil_store *st = NULL;
    if (vigil_store_open(&st, url, NULL) != VIGIL_OK)
        die("open");
    vigil_batch *b = NULL;
    if (vigil_batch_new(&b) != VIGIL_OK)
        die("batch");
    vigil_batch_set_max_metrics(b, (size_t)group);
    size_t cap = 1 << 16, n = 0;
    double *lat = malloc(cap * sizeof(double));
    long long wal_max = 0;
    char sv[16];
    int64_t ts = 1700000000000;
    double end = now_s() + seconds, cpu0 = cpu_s();
    long long samples = 0;
    while (now_s() < end && n < cap) {
        vigil_batch_clear(b);
        for (int k = 0; k < group; k++) {
            snprintf(sv, sizeof(sv), "%d", k % 100);
            vigil_tag tags[2] = {{"host", "h1"}, {"series", sv}};
            vigil_metric m = {"bench_metric", k * 0.5, ts + k / 100, tags, 2, NULL};
            if (vigil_batch_add(b, &m) != VIGIL_OK)
                die("batch add");
        }
        ts += group / 100 + 1;
        double a = now_s();
        if (vigil_store_write(st, b, NULL) != VIGIL_OK)
            die("write");
        lat[n++] = (now_s() - a) * 1e3;
        samples += group;
        struct stat sb;
        if (stat(wal, &sb) == 0 && sb.st_size > wal_max)
            wal_max = sb.st_size;
    }
    double cpu = cpu_s() - cpu0;
    vigil_batch_free(b);
    vigil_store_close(st);
    qsort(lat, n, sizeof(double), cmp_d);
    printf("commit of %5d metrics, %-22s p50 %6.2f ms  p99 %6.2f ms  max %6.2f ms  "
           "(%zu commits, %.0f samples/s, %.0f per CPU-second, WAL at most %.1f MiB)\n",
           group, label, lat[n / 2], lat[(size_t)((double)(n - 1) * 0.99)], lat[n - 1], n,
           (double)samples / seconds, (double)samples / cpu, (double)wal_max / 1048576.0);
    free(lat);
    unlink(path);
    unlink(wal);
}

static int count_cb(const vigil_store_series *s, const vigil_store_point *p, void *payload)
{
    (void)s;
    (void)p;
    (*(long *)payload)++;
    return 0;
}

static void bench_query(void)
{
    vigil_store *st = open_fresh("query.db");
    vigil_batch *b = NULL;
    vigil_batch_new(&b);
    int64_t t0 = 1700000000000;
    for (int i = 0; i < 86400; i++) {
        vigil_tag tags[1] = {{"host", "h1"}};
        vigil_metric m = {"cpu_usage", sin(i / 600.0), t0 + i * 1000LL, tags, 1, NULL};
        vigil_batch_add(b, &m);
        if (vigil_batch_count(b) == 10000) {
            if (vigil_store_write(st, b, NULL) != VIGIL_OK)
                die("write");
            vigil_batch_clear(b);
        }
    }
    if (vigil_store_write(st, b, NULL) != VIGIL_OK)
        die("write");
    vigil_batch_free(b);
    /* Another 99 series around it, so the table is not trivially small. */
    vigil_batch_new(&b);
    char host[16];
    for (int s = 0; s < 99; s++) {
        snprintf(host, sizeof(host), "h%d", s + 2);
        for (int i = 0; i < 8640; i++) {
            vigil_tag tags[1] = {{"host", host}};
            vigil_metric m = {"cpu_usage", 1, t0 + i * 10000LL, tags, 1, NULL};
            vigil_batch_add(b, &m);
        }
        if (vigil_store_write(st, b, NULL) != VIGIL_OK)
            die("write");
        vigil_batch_clear(b);
    }
    vigil_batch_free(b);

    vigil_store_matcher mt = {"host", VIGIL_STORE_MATCH_EQ, "h1"};
    vigil_store_query q = VIGIL_STORE_QUERY_INIT;
    q.name = "cpu_usage";
    q.matchers = &mt;
    q.nmatchers = 1;
    q.from_ms = t0;
    q.to_ms = t0 + 86400 * 1000LL;
    const int reps = 15;
    double raw[15], step[15], step_cpu[15];
    long n_raw = 0, n_step = 0;
    for (int r = 0; r < reps; r++) {
        long n = 0;
        q.step_ms = 0;
        double a = now_s();
        if (vigil_store_query_run(st, &q, count_cb, &n) != VIGIL_OK)
            die("query");
        raw[r] = (now_s() - a) * 1e3;
        n_raw = n;
        n = 0;
        q.step_ms = 60000;
        q.aggregate = VIGIL_STORE_AGG_MEAN;
        a = now_s();
        double c = cpu_s();
        if (vigil_store_query_run(st, &q, count_cb, &n) != VIGIL_OK)
            die("query");
        step[r] = (now_s() - a) * 1e3;
        step_cpu[r] = (cpu_s() - c) * 1e3;
        n_step = n;
    }
    qsort(raw, reps, sizeof(double), cmp_d);
    qsort(step, reps, sizeof(double), cmp_d);
    qsort(step_cpu, reps, sizeof(double), cmp_d);
    printf("query 1 series, 86,400 x 1 s samples, raw:       %8.2f ms median, %.2f min"
           " (%ld points)\n",
           raw[reps / 2], raw[0], n_raw);
    printf("query 1 series, 86,400 x 1 s samples, 60 s mean: %8.2f ms median, %.2f min,"
           " %.2f ms CPU median (%ld points)   target < 10 ms\n",
           step[reps / 2], step[0], step_cpu[reps / 2], n_step);
    static const vigil_store_agg aggs[] = {VIGIL_STORE_AGG_MIN, VIGIL_STORE_AGG_MAX,
                                           VIGIL_STORE_AGG_SUM, VIGIL_STORE_AGG_COUNT,
                                           VIGIL_STORE_AGG_LAST};
    printf("  other aggregates at 60 s step (median ms):");
    for (size_t k = 0; k < sizeof(aggs) / sizeof(aggs[0]); k++) {
        q.step_ms = 60000;
        q.aggregate = aggs[k];
        for (int r = 0; r < reps; r++) {
            long n = 0;
            double a = now_s();
            if (vigil_store_query_run(st, &q, count_cb, &n) != VIGIL_OK)
                die("query");
            step[r] = (now_s() - a) * 1e3;
        }
        qsort(step, reps, sizeof(double), cmp_d);
        printf(" %s %.2f", vigil_store_agg_name(aggs[k]), step[reps / 2]);
    }
    printf("\n");
    vigil_store_close(st);
}

static volatile double g_sink;

static void bench_window(void)
{
    vigil_window_options o = VIGIL_WINDOW_OPTIONS_INIT;
    o.max_age_ms = 3600 * 1000;
    o.max_samples = 4096;
    vigil_window *w = NULL;
    if (vigil_window_new(&w, &o) != VIGIL_OK)
        die("window");
    const long n = 5000000;
    double a = now_s();
    for (long i = 0; i < n; i++)
        vigil_window_append(w, i * 1000, (double)(i & 1023));
    double append_ns = (now_s() - a) * 1e9 / (double)n;
    printf("window append (1 s samples, bound 1 h / 4096):   %8.1f ns/op   target < 100 ns\n",
           append_ns);

    int64_t end = (n - 1) * 1000;
    static const struct {
        vigil_window_agg agg;
        int64_t dur;
        long reps;
    } cases[] = {
        {VIGIL_WINDOW_LAST, 60000, 5000000},    {VIGIL_WINDOW_MEAN, 300000, 1000000},
        {VIGIL_WINDOW_MAX, 300000, 1000000},    {VIGIL_WINDOW_RATE, 300000, 1000000},
        {VIGIL_WINDOW_STDDEV, 300000, 1000000}, {VIGIL_WINDOW_P99, 300000, 200000},
        {VIGIL_WINDOW_MEAN, 3600000, 200000},   {VIGIL_WINDOW_P95, 3600000, 20000},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        double out = 0, sum = 0;
        a = now_s();
        for (long r = 0; r < cases[k].reps; r++) {
            vigil_window_aggregate(w, cases[k].agg, cases[k].dur, end, &out);
            sum += out;
        }
        g_sink = sum;
        double ns = (now_s() - a) * 1e9 / (double)cases[k].reps;
        char d[32];
        vigil_scalar_format_duration(d, sizeof(d), cases[k].dur);
        double cnt = 0;
        vigil_window_aggregate(w, VIGIL_WINDOW_COUNT, cases[k].dur, end, &cnt);
        printf("window %-6s over %-3s (%4.0f samples):            %8.1f ns/op\n",
               vigil_window_agg_name(cases[k].agg), d, cnt, ns);
    }
    printf("window struct + buffer, 1 s samples over 1 h:    %8zu bytes (vigil_window_memory)\n",
           vigil_window_memory(w));
    vigil_window_free(w);

    /* A set of 10,000 series, 10 s samples over 1 h (360 each): bytes per
     * series as counted by the allocator. Keys are built before timing. */
    enum { NSER = 10000, NSAMP = 360 };
    char **keys = malloc(NSER * sizeof(char *));
    for (int s = 0; s < NSER; s++) {
        keys[s] = malloc(48);
        snprintf(keys[s], 48, "cpu_usage{host=\"host-%d\"}", s);
    }
    long long before = g_live_bytes;
    vigil_window_set_options so = VIGIL_WINDOW_SET_OPTIONS_INIT;
    so.window.max_age_ms = 3600 * 1000;
    so.max_series = NSER;
    vigil_window_set *set = NULL;
    if (vigil_window_set_new(&set, &so) != VIGIL_OK)
        die("window set");
    a = now_s();
    for (int i = 0; i < NSAMP; i++)
        for (int s = 0; s < NSER; s++)
            if (vigil_window_set_append(set, keys[s], i * 10000LL, i, NULL) != VIGIL_OK)
                die("window set append");
    double set_ns = (now_s() - a) * 1e9 / ((double)NSAMP * NSER);
    long long bytes = g_live_bytes - before;
    printf("window set append by series key (10k series):    %8.1f ns/op\n", set_ns);
    printf("window set, 10k series x 360 samples (10 s over 1 h): %.0f bytes/series measured "
           "(%.0f by vigil_window_set_memory)\n",
           (double)bytes / NSER, (double)vigil_window_set_memory(set) / NSER);
    for (int s = 0; s < NSER; s++)
        free(keys[s]);
    free(keys);
    vigil_window_set_free(set);
}

/* Recovery after SIGKILL: a child process writes batches of 10,000 samples
 * over 100,000 series with folds held off until the write log holds `mb`
 * MiB, then kills itself; the parent opens the store (the log is read back
 * into memory) and closes it (everything is folded), timing both. */
static void bench_recovery(int mb)
{
    char path[400], url[600];
    snprintf(path, sizeof(path), "%s/recovery.db", g_dir);
    unlink(path);
    snprintf(url, sizeof(url), "sqlite://%s?fold_interval=1h&log_memory=1TiB&log_memory_max=1TiB",
             path);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        vigil_store *st = NULL;
        if (vigil_store_open(&st, url, NULL) != VIGIL_OK)
            die("open");
        vigil_batch *b = NULL;
        if (vigil_batch_new(&b) != VIGIL_OK)
            die("batch");
        vigil_batch_set_max_metrics(b, 10000);
        char host[32];
        long long total = 0;
        double t0 = now_s();
        for (long long i = 0;; i++) {
            vigil_batch_clear(b);
            for (int k = 0; k < 10000; k++) {
                long long n = i * 10000 + k;
                snprintf(host, sizeof(host), "host-%lld", n % 100000);
                vigil_tag tags[1] = {{"host", host}};
                vigil_metric m = {"cpu_usage",
                                  (double)(n % 977) * 0.25,
                                  1700000000000LL + (n / 100000) * 1000,
                                  tags,
                                  1,
                                  NULL};
                if (vigil_batch_add(b, &m) != VIGIL_OK)
                    die("batch add");
            }
            if (vigil_store_write(st, b, NULL) != VIGIL_OK)
                die("write");
            total += 10000;
            vigil_store_stats s = VIGIL_STORE_STATS_INIT;
            if (i % 16 == 0 && vigil_store_stats_get(st, &s) == VIGIL_OK &&
                s.log_bytes >= (uint64_t)mb << 20) {
                printf("recovery: %lld samples written in %.1f s, write log %.0f MiB in %llu rows,"
                       " %.0f MiB of unfolded samples in memory; SIGKILL\n",
                       total, now_s() - t0, (double)s.log_bytes / 1048576.0,
                       (unsigned long long)s.log_rows, (double)s.unfolded_bytes / 1048576.0);
                fflush(stdout);
                raise(SIGKILL);
            }
        }
    }
    int ws = 0;
    waitpid(pid, &ws, 0);
    if (!WIFSIGNALED(ws) || WTERMSIG(ws) != SIGKILL) {
        fprintf(stderr, "bench/store: the recovery child did not die by SIGKILL\n");
        exit(1);
    }
    double a = now_s();
    vigil_store *st = NULL;
    if (vigil_store_open(&st, url, NULL) != VIGIL_OK)
        die("open after SIGKILL");
    double opened = now_s() - a;
    vigil_store_stats s = VIGIL_STORE_STATS_INIT;
    vigil_store_stats_get(st, &s);
    a = now_s();
    vigil_store_close(st);
    double closed = now_s() - a;
    printf("recovery after SIGKILL with %.0f MiB of unfolded log: open (log read back) %.2f s,"
           " %llu samples pending; then close (all folded) %.2f s\n",
           (double)s.log_bytes / 1048576.0, opened, (unsigned long long)s.unfolded_samples, closed);
    char f[420];
    static const char *const sfx[] = {"", "-wal", "-shm"};
    for (size_t k = 0; k < 3; k++) {
        snprintf(f, sizeof(f), "%s%s", path, sfx[k]);
        unlink(f);
    }
}

int main(void)
{
    vigil_allocator al = {VIGIL_ALLOCATOR_VERSION, c_malloc, c_realloc, c_free, NULL};
    vigil_allocator_set(&al);
    const char *base = getenv("TMPDIR");
    snprintf(g_dir, sizeof(g_dir), "%s/vigil-bench-store-XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    printf("bench/store  (SQLite %s, database files in %s)\n", sqlite3_libversion(), g_dir);

    static const struct {
        int nseries, nsamples, batch;
    } w[] = {{10, 100000, 1000}, {10, 100000, 10000}, {100000, 10, 1000}, {100000, 10, 10000}};
    double raw_few = 0, raw_many = 0, sqlite_rate[4] = {0};
    g_pg_url = getenv("BENCH_STORE_PG_URL");
    if (g_pg_url && !*g_pg_url)
        g_pg_url = NULL;
    if (getenv("BENCH_STORE_RECOVERY_ONLY")) { /* the recovery figure alone */
        int mb = getenv("BENCH_STORE_RECOVERY_MB") ? atoi(getenv("BENCH_STORE_RECOVERY_MB")) : 256;
        bench_recovery(mb > 0 ? mb : 256);
        rmdir(g_dir);
        return 0;
    }
    for (size_t i = 0; i < sizeof(w) / sizeof(w[0]) && !getenv("BENCH_STORE_COMMIT_ONLY"); i++) {
        if (i == 0 || i == 2) {
            double c0 = cpu_s();
            double raw = bench_raw(w[i].nseries, w[i].nsamples);
            double per = (double)w[i].nseries * w[i].nsamples / (cpu_s() - c0);
            printf("raw SQLite INSERT, one transaction, %6d x %6d: %9.0f samples/s"
                   " (%9.0f per CPU-second)\n",
                   w[i].nseries, w[i].nsamples, raw, per);
            *(i == 0 ? &raw_few : &raw_many) = raw;
        }
        double raw = i < 2 ? raw_few : raw_many;
        double per_cpu = 0;
        double r = bench_write("write.db", w[i].nseries, w[i].nsamples, w[i].batch, &per_cpu);
        printf("store write %6d series x %6d, batch %5d: %9.0f samples/s"
               " (%9.0f per CPU-second) %5.1f%% of raw   target >= 400,000\n",
               w[i].nseries, w[i].nsamples, w[i].batch, r, per_cpu, 100.0 * r / raw);
        sqlite_rate[i] = r;
    }
    /* The same writes on PostgreSQL (CPU: this process only; the server's
     * is not counted). */
    for (size_t i = 0;
         g_pg_url && i < sizeof(w) / sizeof(w[0]) && !getenv("BENCH_STORE_COMMIT_ONLY"); i++) {
        double per_cpu = 0;
        g_use_pg = 1;
        double r = bench_write("write.db", w[i].nseries, w[i].nsamples, w[i].batch, &per_cpu);
        g_use_pg = 0;
        printf("postgresql write %6d series x %6d, batch %5d: %9.0f samples/s"
               " (%9.0f per client CPU-second), SQLite %9.0f\n",
               w[i].nseries, w[i].nsamples, w[i].batch, r, per_cpu, sqlite_rate[i]);
    }
    const char *only = getenv("BENCH_STORE_COMMIT_ONLY");
    double secs = getenv("BENCH_STORE_SECONDS") ? atof(getenv("BENCH_STORE_SECONDS")) : 8.0;
    bench_commit_latency("checkpoint=background:", "", 12000, secs);
    bench_commit_latency("checkpoint=inline:", "?checkpoint=inline", 12000, secs);
    bench_commit_latency("checkpoint=background:", "", 1000, secs);
    bench_commit_latency("checkpoint=inline:", "?checkpoint=inline", 1000, secs);
    if (g_pg_url) {
        g_use_pg = 1;
        bench_commit_latency("postgresql:", "", 12000, secs);
        bench_commit_latency("postgresql:", "", 1000, secs);
        g_use_pg = 0;
    }
    if (only)
        goto done;
    bench_query();
    bench_window();
    /* BENCH_STORE_RECOVERY_MB: the log size of the recovery figure (default
     * 256; 0: skip) */
    int rmb = getenv("BENCH_STORE_RECOVERY_MB") ? atoi(getenv("BENCH_STORE_RECOVERY_MB")) : 256;
    if (rmb > 0)
        bench_recovery(rmb);
done:;

    char path[400];
    static const char *const files[] = {"raw.db", "write.db", "query.db"};
    static const char *const sfx[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++)
        for (size_t k = 0; k < 3; k++) {
            snprintf(path, sizeof(path), "%s/%s%s", g_dir, files[i], sfx[k]);
            unlink(path);
        }
    rmdir(g_dir);
    return 0;
}
