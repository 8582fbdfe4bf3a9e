/* Helpers shared by the agent suites (tests/unit/test_agent.c,
 * tests/integration/test_agent_http.c): fresh directories, a free port, batch
 * lookups, the test's collector types (counter, evt, failing) in a registry
 * set up per test, a captured log, options and configurations. Header-only. */
#ifndef VIGIL_AGENT_TESTUTIL_H
#define VIGIL_AGENT_TESTUTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "vigil/agent.h"
#include "vigil/sys/collector.h"

/* A new empty directory. All of them live in one vt_tmpdir() per process,
 * so that suites run without fork (valgrind) stay within its limit. */
static inline const char *fresh_dir(void)
{
    static char base[512], out[8][600];
    static int n;
    if (!base[0])
        snprintf(base, sizeof(base), "%s", vt_tmpdir());
    char *p = out[n % 8];
    snprintf(p, sizeof(out[0]), "%s/d%d", base, n);
    n++;
    ck_assert_msg(mkdir(p, 0700) == 0, "mkdir %s: %s", p, strerror(errno));
    return p;
}

static inline int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t sl = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    close(fd);
    return ntohs(sa.sin_port);
}

/* Starts a hub on `port` (a port that was free). */

static inline const char *tag(const vigil_metric *m, const char *key)
{
    for (size_t i = 0; i < m->ntags; i++)
        if (strcmp(m->tags[i].key, key) == 0)
            return m->tags[i].value;
    return NULL;
}

static inline const vigil_metric *find(const vigil_batch *b, const char *name)
{
    for (size_t i = 0; i < vigil_batch_count(b); i++)
        if (strcmp(vigil_batch_get(b, i)->name, name) == 0)
            return vigil_batch_get(b, i);
    return NULL;
}

static inline int count_named(const vigil_batch *b, const char *name)
{
    int n = 0;
    for (size_t i = 0; i < vigil_batch_count(b); i++)
        n += strcmp(vigil_batch_get(b, i)->name, name) == 0;
    return n;
}

/* ---- test collector types ------------------------------------------------------------- */

static int g_seq;      /* test_counter values continue across agents */
static int g_evt[2];   /* the "evt" type's descriptor is g_evt[0] */
static int g_fail_msg; /* the failing type's message variant */

static inline int counter_create(void **state, const vigil_config_node *cfg,
                                 const vigil_collector_context *ctx)
{
    (void)cfg;
    (void)ctx;
    *state = &g_seq;
    return VIGIL_OK;
}

static inline int counter_collect(void *state, vigil_batch *out, int64_t now)
{
    int *seq = state;
    vigil_tag t = {"env", "collector-wins"};
    vigil_metric m = {"test_counter", ++*seq, now, &t, 1, NULL};
    return vigil_batch_add(out, &m);
}

static inline void nothing_destroy(void *state)
{
    (void)state;
}

static const vigil_collector_type counter_type = {
    .version = VIGIL_COLLECTOR_TYPE_VERSION,
    .name = "counter",
    .flags = VIGIL_COLLECTOR_RATES,
    .create = counter_create,
    .collect = counter_collect,
    .destroy = nothing_destroy,
};

static inline int evt_create(void **state, const vigil_config_node *cfg,
                             const vigil_collector_context *ctx)
{
    (void)cfg;
    (void)ctx;
    *state = g_evt;
    return VIGIL_OK;
}

static inline int evt_collect(void *state, vigil_batch *out, int64_t now)
{
    (void)state;
    (void)out;
    (void)now;
    return VIGIL_OK;
}

static inline int evt_fd(void *state)
{
    return ((int *)state)[0];
}

static inline int evt_on_event(void *state, vigil_batch *out, int64_t now)
{
    char buf[64];
    ssize_t n = read(((int *)state)[0], buf, sizeof(buf));
    if (n <= 0)
        return VIGIL_OK;
    vigil_tag t = {"process", "demo"};
    vigil_metric m = {"process_up", 0, now, &t, 1, NULL};
    return vigil_batch_add(out, &m);
}

static const vigil_collector_type evt_type = {
    .version = VIGIL_COLLECTOR_TYPE_VERSION,
    .name = "evt",
    .flags = VIGIL_COLLECTOR_EVENTS,
    .create = evt_create,
    .collect = evt_collect,
    .poll_fd = evt_fd,
    .on_event = evt_on_event,
    .destroy = nothing_destroy,
};

static inline int failing_collect(void *state, vigil_batch *out, int64_t now)
{
    (void)state;
    (void)out;
    (void)now;
    return vigil_error_set(VIGIL_EIO, g_fail_msg ? "other" : "sensor unplugged");
}

static const vigil_collector_type failing_type = {
    .version = VIGIL_COLLECTOR_TYPE_VERSION,
    .name = "failing",
    .create = counter_create,
    .collect = failing_collect,
    .destroy = nothing_destroy,
};

static vigil_collector_registry *g_reg;

static inline void setup(void)
{
    vt_alloc_install(); /* every test may sweep allocations */
    ck_assert_int_eq(vigil_collector_registry_new(&g_reg), VIGIL_OK);
    /* the test's own types only: the agent resolves the built-ins itself */
    ck_assert_int_eq(vigil_collector_register(g_reg, &counter_type), VIGIL_OK);
    ck_assert_int_eq(vigil_collector_register(g_reg, &evt_type), VIGIL_OK);
    ck_assert_int_eq(vigil_collector_register(g_reg, &failing_type), VIGIL_OK);
    ck_assert_int_eq(pipe2(g_evt, O_NONBLOCK | O_CLOEXEC), 0);
    g_seq = 0;
}

static inline void teardown(void)
{
    vigil_collector_registry_free(g_reg);
    g_reg = NULL;
    close(g_evt[0]);
    close(g_evt[1]);
}

/* ---- helpers ------------------------------------------------------------------------------- */

static char g_log[1 << 16];
static size_t g_log_len;
static pthread_mutex_t g_log_mu = PTHREAD_MUTEX_INITIALIZER;

static inline void log_cb(const vigil_log_record *r, void *payload)
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

static inline vigil_agent_options test_opts(void)
{
    vigil_agent_options o;
    ck_assert_int_eq(vigil_agent_options_init(&o, VIGIL_AGENT_OPTIONS_VERSION), VIGIL_OK);
    o.collector_types = g_reg;
    o.logger.cb = log_cb;
    o.logger.min_level = VIGIL_LOG_DEBUG;
    g_log_len = 0;
    g_log[0] = '\0';
    return o;
}

static inline vigil_config *load_yaml(const char *yaml)
{
    vigil_config *c = NULL;
    int rc = vigil_config_load_string(&c, yaml, strlen(yaml), "agent.yaml", NULL);
    ck_assert_msg(rc == VIGIL_OK, "yaml: %s", vigil_error_last()->message);
    return c;
}

/* A configuration shipping to `port`, spooling into `spool`. */
static inline vigil_config *std_config(int port, const char *spool, const char *extra)
{
    char y[4096];
    snprintf(y, sizeof(y),
             "agent: {id: test-host, tags: {env: test, role: db}}\n"
             "hub: {urls: [\"http://127.0.0.1:%d\"], token_env: \"\", timeout: 2s,\n"
             "      connect_timeout: 1s, retries: 0, backoff: 20s, backoff_max: 20s}\n"
             "interval: 1s\n"
             "heartbeat: 5s\n"
             "batch: {max_metrics: 1000, max_delay: 0}\n"
             "spool: {path: \"%s\", max_size: 1MiB, fsync: false}\n"
             "collectors:\n"
             "  - {type: counter}\n"
             "%s",
             port, spool, extra ? extra : "");
    return load_yaml(y);
}

static inline vigil_agent *new_agent(const vigil_config *cfg, const vigil_agent_options *o)
{
    vigil_agent *a = NULL;
    int rc = vigil_agent_new(&a, cfg, o);
    ck_assert_msg(rc == VIGIL_OK, "agent: %s", vigil_error_last()->message);
    return a;
}

static inline vigil_agent_stats stats(const vigil_agent *a)
{
    vigil_agent_stats s = VIGIL_AGENT_STATS_INIT;
    ck_assert_int_eq(vigil_agent_stats_get(a, &s), VIGIL_OK);
    vigil_agent_stats bad_stats = VIGIL_AGENT_STATS_INIT;
    bad_stats.version = 0;
    ck_assert_int_eq(vigil_agent_stats_get(a, &bad_stats), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "agent stats: version 0 is not supported");
    return s;
}

#define T0 1732650000000LL

static inline int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
