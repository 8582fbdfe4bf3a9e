/*
 * bench/metric_json - throughput of the ingest body codec on a realistic
 * 10,000-metric batch (100 hosts x 100 series: cpu_usage{cpu}, disk, net,
 * memory, load; 3-4 tags each; full-precision ratios and integral counters).
 * Also times the per-metric work the hub does after decoding: copying each
 * metric into another batch (vigil_batch_add), building its canonical series
 * key and appending it to a window set. Prints figures only; never fails on
 * time.
 *
 *   make build/bench/metric_json && build/bench/metric_json [seconds [PART]]
 *
 * PART (decode, encode, add, key or window) runs one part only (for a
 * profiler).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <vigil/vigil.h>

#define NMETRICS 10000

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Rates are per second of this thread's CPU time, i.e. what one core does even
 * when other processes share the machine; the wall time is printed too. */
static double now_s(void)
{
    return clock_s(CLOCK_THREAD_CPUTIME_ID);
}

static double wall_s(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

static void report(const char *what, long iters, size_t bytes, double cpu, double wall)
{
    printf("%s: %.0f metrics/s, %.1f MB/s (%ld iterations, %.2f s CPU, %.2f s wall)\n", what,
           (double)iters * NMETRICS / cpu, (double)iters * (double)bytes / cpu / 1e6, iters, cpu,
           wall);
}

static void report_ns(const char *what, long iters, double cpu, double wall)
{
    double n = (double)iters * NMETRICS;
    printf("%s: %.0f metrics/s, %.1f ns/metric (%ld iterations, %.2f s CPU, %.2f s wall)\n", what,
           n / cpu, cpu * 1e9 / n, iters, cpu, wall);
}

static unsigned long long g_seed = 0x2545F4914F6CDD1DULL;

static double rnd(void)
{
    g_seed ^= g_seed << 13;
    g_seed ^= g_seed >> 7;
    g_seed ^= g_seed << 17;
    return (double)(g_seed >> 11) / 9007199254740992.0;
}

static int check(int rc, const char *what)
{
    if (rc != VIGIL_OK) {
        fprintf(stderr, "metric_json: %s: %s\n", what, vigil_error_last()->message);
        exit(1);
    }
    return rc;
}

static void build(vigil_batch *b)
{
    static const char *envs[] = {"prod", "staging"};
    static const char *mounts[] = {"/", "/var", "/home", "/srv"};
    static const char *ifaces[] = {"eth0", "eth1", "lo"};
    long long ts = 1732650000000LL;
    check(vigil_batch_set_agent(b, "collector-17"), "agent");
    check(vigil_batch_set_id(b, "7f3a9c0e-2b1d-4e5f-8a6b-0c1d2e3f4a5b"), "batch id");
    for (int h = 0; h < 100; h++) {
        char host[32], cpu[8];
        snprintf(host, sizeof(host), "web-%03d.eu-west.example.net", h);
        const char *env = envs[h % 2];
        for (int k = 0; k < 100; k++) {
            vigil_tag tags[4] = {{"host", host}, {"env", env}, {NULL, NULL}, {NULL, NULL}};
            vigil_metric m = {NULL, 0, ts + k, tags, 2, NULL};
            if (k < 64) {
                snprintf(cpu, sizeof(cpu), "%d", k);
                m.name = "cpu_usage";
                tags[2].key = "cpu";
                tags[2].value = cpu;
                tags[3].key = "mode";
                tags[3].value = k % 2 ? "user" : "system";
                m.ntags = 4;
                m.value = rnd();
            } else if (k < 80) {
                m.name = "disk_used_ratio";
                tags[2].key = "mount";
                tags[2].value = mounts[k % 4];
                tags[3].key = "fs";
                tags[3].value = "ext4";
                m.ntags = 4;
                m.value = rnd();
            } else if (k < 92) {
                m.name = "net_rx_bytes_per_second";
                tags[2].key = "iface";
                tags[2].value = ifaces[k % 3];
                m.ntags = 3;
                m.value = (double)(long long)(rnd() * 1e9);
            } else {
                m.name = k % 2 ? "memory_used_ratio" : "load1";
                tags[2].key = "region";
                tags[2].value = "eu-west-1";
                m.ntags = 3;
                m.value = k % 2 ? rnd() : (double)(int)(rnd() * 800) / 100;
            }
            check(vigil_batch_add(b, &m), "add");
        }
    }
}

static int wants(const char *only, const char *part)
{
    return !only[0] || strcmp(only, part) == 0;
}

/* Runs one part for `secs` of CPU time: op(d, aux) per iteration. */
typedef void (*part_fn)(const vigil_batch *d, void *aux);

static void run_part(const char *name, double secs, part_fn op, const vigil_batch *d, void *aux)
{
    long iters = 0;
    double t, t0 = now_s(), w0 = wall_s();
    do {
        op(d, aux);
        iters++;
    } while ((t = now_s() - t0) < secs);
    report_ns(name, iters, t, wall_s() - w0);
}

/* What the hub did per request before committing: every metric copied into
 * the group's batch. */
static void op_add(const vigil_batch *d, void *aux)
{
    vigil_batch *merged = aux;
    vigil_batch_clear(merged);
    for (size_t i = 0; i < vigil_batch_count(d); i++)
        check(vigil_batch_add(merged, vigil_batch_get(d, i)), "add");
}

static void op_key(const vigil_batch *d, void *aux)
{
    vigil_buf *key = aux;
    for (size_t i = 0; i < vigil_batch_count(d); i++)
        check(vigil_metric_series_key(key, vigil_batch_get(d, i)), "series key");
}

/* Each round's samples are newer than the last round's, as in the hub. */
static void op_window(const vigil_batch *d, void *aux)
{
    static int64_t shift;
    vigil_window_set *set = aux;
    shift += 1000;
    for (size_t i = 0; i < vigil_batch_count(d); i++) {
        vigil_metric m = *vigil_batch_get(d, i);
        m.ts_ms += shift;
        check(vigil_window_set_append_metric(set, &m, NULL), "window");
    }
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 1.5;
    const char *only = argc > 2 ? argv[2] : "";
    vigil_batch *b = NULL, *d = NULL, *merged = NULL;
    vigil_window_set *set = NULL;
    vigil_buf body = VIGIL_BUF_INIT, out = VIGIL_BUF_INIT, key = VIGIL_BUF_INIT;
    check(vigil_batch_new(&b), "new");
    check(vigil_batch_new(&d), "new");
    check(vigil_batch_new(&merged), "new");
    check(vigil_window_set_new(&set, NULL), "window set");
    build(b);
    check(vigil_batch_encode_json(&body, b), "encode");
    printf("batch: %zu metrics, body %zu bytes (%.1f bytes/metric)\n", vigil_batch_count(b),
           body.size, (double)body.size / (double)vigil_batch_count(b));

    /* Warm up, then time whole iterations until `secs` have passed. */
    check(vigil_batch_decode_json(d, body.ptr, body.size, NULL), "decode");
    long iters = 0;
    double t0, w0, t;
    if (wants(only, "decode")) {
        t0 = now_s();
        w0 = wall_s();
        do {
            check(vigil_batch_decode_json(d, body.ptr, body.size, NULL), "decode");
            iters++;
        } while ((t = now_s() - t0) < secs);
        report("decode", iters, body.size, t, wall_s() - w0);
    }
    if (wants(only, "encode")) {
        iters = 0;
        t0 = now_s();
        w0 = wall_s();
        do {
            check(vigil_batch_encode_json(&out, d), "encode");
            iters++;
        } while ((t = now_s() - t0) < secs);
        report("encode", iters, out.size, t, wall_s() - w0);
        if (out.size != body.size || memcmp(out.ptr, body.ptr, body.size) != 0)
            fprintf(stderr, "metric_json: warning: re-encoded body differs\n");
    }
    vigil_batch_set_max_metrics(merged, NMETRICS);
    op_add(d, merged); /* warm up: the arena and arrays at full size */
    if (wants(only, "add"))
        run_part("add", secs, op_add, d, merged);
    if (wants(only, "key"))
        run_part("series key", secs, op_key, d, &key);
    op_window(d, set); /* warm up: every window created */
    if (wants(only, "window"))
        run_part("window append", secs, op_window, d, set);

    vigil_buf_dispose(&body);
    vigil_buf_dispose(&out);
    vigil_buf_dispose(&key);
    vigil_window_set_free(set);
    vigil_batch_free(b);
    vigil_batch_free(d);
    vigil_batch_free(merged);
    return 0;
}
