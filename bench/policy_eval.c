/*
 * policy_eval - cost of evaluating metrics against many loaded policies.
 *
 * 1,000 threshold rules over 10 metric names: 100 rules per name, each
 * matching one `service` value exactly (mean over 5m > threshold, 30 s for,
 * cooldown, budget, flap damping: every feature that costs per evaluation).
 * Metrics carry a random service of the 100 and a host of 10, so each metric
 * finds 100 rules by its name and exactly one by its tags; the engine keeps
 * its own windows (every sample is appended), state is in an in-memory store.
 * One metric in 64 crosses its threshold, so states move and decisions and
 * requests are recorded as in real life.
 *
 * Prints, over batches of 1,000 metrics through vigil_engine_ingest():
 *   ns/metric p50 and p99 (batch time / 1,000), and metrics/s overall.
 * Then the same rules in a hub (vigil_hub_new() with `policies`, its store a
 * SQLite file in a temporary directory): 10 agent threads, one per host,
 * each calling vigil_hub_ingest() on 40 batches of 1,000 metrics in turn.
 * Prints metrics/s acknowledged (committed) and metrics/s through ingest +
 * evaluation together (until the engine has evaluated the last metric).
 * Never fails on time.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <vigil/vigil.h>

#define NAMES    10
#define SERVICES 100
#define HOSTS    10
#define BATCH    1000
#define BATCHES  400

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int64_t g_clock;

static int64_t bench_clock(void *payload)
{
    (void)payload;
    return g_clock;
}

/* ---- ingest + evaluation through a hub ---------------------------------- */

#define HUB_BATCHES 40 /* per agent thread (one per host) */

static int64_t g_hub_clock; /* the newest batch's time; atomic */

static int64_t hub_clock(void *payload)
{
    (void)payload;
    return __atomic_load_n(&g_hub_clock, __ATOMIC_RELAXED);
}

typedef struct agent {
    pthread_t thread;
    vigil_hub *hub;
    vigil_batch *b[HUB_BATCHES];
    int64_t ts[HUB_BATCHES];
    int failed;
} agent;

static void *agent_main(void *arg)
{
    agent *a = arg;
    for (int i = 0; i < HUB_BATCHES && !a->failed; i++) {
        int64_t prev = hub_clock(NULL);
        while (prev < a->ts[i] && !__atomic_compare_exchange_n(&g_hub_clock, &prev, a->ts[i], 0,
                                                               __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            ;
        vigil_hub_ingest_result r = VIGIL_HUB_INGEST_RESULT_INIT;
        if (vigil_hub_ingest(a->hub, a->b[i], &r) != VIGIL_OK) {
            fprintf(stderr, "hub ingest: %s\n", vigil_error_last()->message);
            a->failed = 1;
        }
    }
    return NULL;
}

static uint64_t g_rng = 88172645463325252ull;

static uint32_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 16);
}

static double now_s(void)
{
    return (double)now_ns() / 1e9;
}

/* The hub section: returns 0, or 1 on a failure (printed). */
static int bench_hub(const char *yaml, size_t len, char names[][8], char svcs[][8], char hosts[][8])
{
    char dir[] = "/tmp/vigil-bench-policy-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char url[600], path[600];
    snprintf(url, sizeof(url), "sqlite://%s/hub.db", dir);
    vigil_config *cfg = NULL;
    if (vigil_config_load_string(&cfg, yaml, len, "bench.yaml", NULL) != VIGIL_OK) {
        fprintf(stderr, "rules: %s\n", vigil_error_last()->message);
        return 1;
    }
    int64_t t0 = 1732650000000LL;
    g_hub_clock = t0;
    vigil_hub_options ho = VIGIL_HUB_OPTIONS_INIT;
    ho.store_url = url;
    ho.logger.min_level = VIGIL_LOG_OFF;
    ho.policies = vigil_config_node_get(vigil_config_root(cfg, 0), "policies");
    ho.clock = hub_clock;
    vigil_hub *hub = NULL;
    if (vigil_hub_new(&hub, &ho) != VIGIL_OK || vigil_hub_start(hub) != VIGIL_OK) {
        fprintf(stderr, "hub: %s\n", vigil_error_last()->message);
        return 1;
    }
    vigil_config_free(cfg);
    static agent agents[HOSTS];
    for (int h = 0; h < HOSTS; h++) {
        agents[h].hub = hub;
        for (int i = 0; i < HUB_BATCHES; i++) {
            vigil_batch_new(&agents[h].b[i]);
            vigil_batch_set_agent(agents[h].b[i], hosts[h]);
            agents[h].ts[i] = t0 + i * 1000LL;
            for (int k = 0; k < BATCH; k++) {
                vigil_tag t[] = {{"host", hosts[h]}, {"service", svcs[rnd() % SERVICES]}};
                double v = rnd() % 64 == 0 ? 1.0 : 0.1;
                vigil_metric m = {names[rnd() % NAMES], v, agents[h].ts[i], t, 2, NULL};
                vigil_batch_add(agents[h].b[i], &m);
            }
        }
    }
    vigil_engine *e = vigil_hub_engine(hub);
    vigil_engine_stats st0 = VIGIL_ENGINE_STATS_INIT, st = VIGIL_ENGINE_STATS_INIT;
    vigil_engine_stats_get(e, &st0);
    const uint64_t total = (uint64_t)HOSTS * HUB_BATCHES * BATCH;
    double start = now_s();
    for (int h = 0; h < HOSTS; h++)
        pthread_create(&agents[h].thread, NULL, agent_main, &agents[h]);
    int failed = 0;
    for (int h = 0; h < HOSTS; h++) {
        pthread_join(agents[h].thread, NULL);
        failed |= agents[h].failed;
    }
    double acked = now_s() - start;
    do {
        vigil_engine_stats_get(e, &st);
        if (st.metrics - st0.metrics < total)
            usleep(1000);
    } while (!failed && st.metrics - st0.metrics < total && now_s() - start < 120);
    double evaluated = now_s() - start;
    vigil_hub_stats hs = VIGIL_HUB_STATS_INIT;
    vigil_hub_stats_get(hub, &hs);
    if (!failed && st.metrics - st0.metrics == total)
        printf("policy_eval: through vigil_hub_ingest (%d agent threads, SQLite file, the same "
               "%zu rules): %.0f metrics/s acknowledged after commit, %.0f metrics/s through "
               "ingest + evaluation together  (%llu commit groups, %llu evaluations, %llu "
               "decisions, %llu requests)\n",
               HOSTS, st.policies, (double)total / acked, (double)total / evaluated,
               (unsigned long long)hs.commits,
               (unsigned long long)(st.evaluations - st0.evaluations),
               (unsigned long long)(st.decisions - st0.decisions),
               (unsigned long long)(st.requests - st0.requests));
    else
        fprintf(stderr, "policy_eval: the hub evaluated %llu of %llu metrics\n",
                (unsigned long long)(st.metrics - st0.metrics), (unsigned long long)total);
    vigil_hub_free(hub);
    for (int h = 0; h < HOSTS; h++)
        for (int i = 0; i < HUB_BATCHES; i++)
            vigil_batch_free(agents[h].b[i]);
    static const char *const sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/hub.db%s", dir, sfx[i]);
        unlink(path);
    }
    rmdir(dir);
    return failed || st.metrics - st0.metrics != total;
}

int main(void)
{
    vigil_store *store = NULL;
    vigil_engine *engine = NULL;
    vigil_config *cfg = NULL;
    if (vigil_store_open(&store, "sqlite::memory:", NULL) != VIGIL_OK) {
        fprintf(stderr, "store: %s\n", vigil_error_last()->message);
        return 1;
    }
    vigil_engine_options o = VIGIL_ENGINE_OPTIONS_INIT;
    o.store = store;
    o.clock = bench_clock;
    o.logger.min_level = VIGIL_LOG_OFF;
    if (vigil_engine_new(&engine, &o) != VIGIL_OK) {
        fprintf(stderr, "engine: %s\n", vigil_error_last()->message);
        return 1;
    }
    size_t cap = 1 << 20, len = 0;
    char *yaml = malloc(cap);
    len += (size_t)snprintf(yaml + len, cap - len, "policies:\n");
    for (int n = 0; n < NAMES; n++)
        for (int s = 0; s < SERVICES; s++)
            len += (size_t)snprintf(
                yaml + len, cap - len,
                "  - {name: r%d_%d, kind: threshold, metric: m%d, match: {service: svc%d, "
                "host: \"*\"}, window: 5m, aggregate: mean, op: \">\", threshold: 0.9, "
                "clear: 0.5, for: 30s, action: scale_up, target: \"{{tags.service}}\", "
                "cooldown: 5m, budget: {max_actions: 3, window: 1h}, "
                "flap: {transitions: 6, window: 10m, settle: 5m}}\n",
                n, s, n, s);
    if (vigil_config_load_string(&cfg, yaml, len, "bench.yaml", NULL) != VIGIL_OK ||
        vigil_engine_load(engine, vigil_config_node_get(vigil_config_root(cfg, 0), "policies")) !=
            VIGIL_OK) {
        fprintf(stderr, "rules: %s\n", vigil_error_last()->message);
        return 1;
    }
    vigil_config_free(cfg);

    char names[NAMES][8], svcs[SERVICES][8], hosts[HOSTS][8];
    for (int i = 0; i < NAMES; i++)
        snprintf(names[i], sizeof(names[i]), "m%d", i);
    for (int i = 0; i < SERVICES; i++)
        snprintf(svcs[i], sizeof(svcs[i]), "svc%d", i);
    for (int i = 0; i < HOSTS; i++)
        snprintf(hosts[i], sizeof(hosts[i]), "h%d", i);

    vigil_batch **bs = calloc(BATCHES, sizeof(*bs));
    int64_t ts = 1732650000000LL;
    for (int b = 0; b < BATCHES; b++) {
        vigil_batch_new(&bs[b]);
        for (int i = 0; i < BATCH; i++) {
            vigil_tag t[] = {{"host", hosts[rnd() % HOSTS]}, {"service", svcs[rnd() % SERVICES]}};
            double v = rnd() % 64 == 0 ? 1.0 : 0.1;
            vigil_metric m = {names[rnd() % NAMES], v, ts, t, 2, NULL};
            vigil_batch_add(bs[b], &m);
        }
        ts += 1000; /* a batch a second */
    }
    double *per = calloc(BATCHES, sizeof(double));
    g_clock = 1732650000000LL;
    int64_t t0 = now_ns();
    for (int b = 0; b < BATCHES; b++) {
        g_clock = 1732650000000LL + b * 1000LL;
        int64_t s = now_ns();
        if (vigil_engine_ingest(engine, bs[b]) != VIGIL_OK) {
            fprintf(stderr, "ingest: %s\n", vigil_error_last()->message);
            return 1;
        }
        per[b] = (double)(now_ns() - s) / BATCH;
    }
    double total_s = (double)(now_ns() - t0) / 1e9;
    qsort(per, BATCHES, sizeof(double), cmp_d);
    vigil_engine_stats st = VIGIL_ENGINE_STATS_INIT;
    vigil_engine_stats_get(engine, &st);
    printf("policy_eval: %zu rules (%d per metric name, 1 matching by tags), %d metrics in "
           "batches of %d\n",
           st.policies, SERVICES, BATCHES * BATCH, BATCH);
    printf("policy_eval: ns/metric p50 %.0f  p99 %.0f  (ingest + windows + evaluation)\n",
           per[BATCHES / 2], per[BATCHES * 99 / 100]);
    printf("policy_eval: %.0f metrics/s  (%llu evaluations, %llu decisions, %llu requests)\n",
           BATCHES * BATCH / total_s, (unsigned long long)st.evaluations,
           (unsigned long long)st.decisions, (unsigned long long)st.requests);
    for (int b = 0; b < BATCHES; b++)
        vigil_batch_free(bs[b]);
    free(bs);
    free(per);
    vigil_engine_free(engine);
    vigil_store_close(store);
    int rc = bench_hub(yaml, len, names, svcs, hosts);
    free(yaml);
    return rc;
}
