/* bench/remediate: the remediator's throughput and latency, in process.
 *
 * 1. requests/s through the whole path -- ledger put (synchronous FULL),
 *    audit rows (request, execute, result), guards, the `log` action, ledger
 *    updates -- with guards set so that nothing refuses; requests submitted
 *    all at once, distinct ids and targets.
 * 2. latency from the request's submission to its child process running,
 *    for an `exec` action running /bin/date +%s%N (the child prints the time
 *    it read once started, after its own exec and dynamic loading), p50/p99
 *    over sequential requests.
 * Prints figures; never fails on time. Run: make build/bench/remediate && build/bench/remediate */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vigil/vigil.h"

#define KEY "bench-audit-key-0123456789abcdef"

static int64_t now_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

typedef struct counter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, ok;
    int64_t child_ns; /* from the last output */
} counter;

static void on_done(const vigil_action_result *r, void *p)
{
    counter *c = p;
    pthread_mutex_lock(&c->mu);
    c->done++;
    if (r->status == VIGIL_ACTION_SUCCEEDED)
        c->ok++;
    if (r->output)
        c->child_ns = strtoll(r->output, NULL, 10);
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void wait_for(counter *c, int n)
{
    pthread_mutex_lock(&c->mu);
    while (c->done < n)
        pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
}

static vigil_remediator *open_rem(const char *dir, const char *db, const char *yaml,
                                  unsigned int conc)
{
    static char url[512];
    snprintf(url, sizeof(url), "sqlite://%s/%s", dir, db);
    vigil_config *cfg = NULL;
    if (vigil_config_load_string(&cfg, yaml, strlen(yaml), "bench.yaml", NULL)) {
        fprintf(stderr, "config: %s\n", vigil_error_last()->message);
        exit(1);
    }
    vigil_remediator_options o = VIGIL_REMEDIATOR_OPTIONS_INIT;
    o.store_url = url;
    o.audit_key = KEY;
    o.audit_key_len = strlen(KEY);
    o.cooldown_ms = VIGIL_REMEDIATOR_DISABLED;
    o.max_attempts = (unsigned int)VIGIL_REMEDIATOR_DISABLED;
    o.rate_per_s = VIGIL_REMEDIATOR_DISABLED;
    o.max_concurrent = conc;
    o.workers = conc; /* no worker beyond the concurrency limit */
    o.queue_max = 100000;
    o.actions = vigil_config_node_get(vigil_config_root(cfg, 0), "actions");
    o.logger.min_level = VIGIL_LOG_OFF;
    vigil_remediator *rem = NULL;
    if (vigil_remediator_new(&rem, &o) || vigil_remediator_start(rem)) {
        fprintf(stderr, "remediator: %s\n", vigil_error_last()->message);
        exit(1);
    }
    vigil_config_free(cfg);
    return rem;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 2000;
    int m = argc > 2 ? atoi(argv[2]) : 200;
    char dir[] = "/tmp/vigil-bench-remediate-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }

    /* 1. throughput with the log action */
    vigil_remediator *rem =
        open_rem(dir, "log.db", "actions:\n  - {name: note, type: log, level: debug}\n", 4);
    counter c = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};
    char id[64], target[64];
    int64_t t0 = now_ns(CLOCK_MONOTONIC);
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "bench-%d", i);
        snprintf(target, sizeof(target), "t%d", i);
        vigil_action_request rq = VIGIL_ACTION_REQUEST_INIT;
        rq.id = id;
        rq.action = "note";
        rq.target = target;
        if (vigil_remediator_submit(rem, &rq, on_done, &c)) {
            fprintf(stderr, "submit: %s\n", vigil_error_last()->message);
            return 1;
        }
    }
    wait_for(&c, n);
    double secs = (double)(now_ns(CLOCK_MONOTONIC) - t0) / 1e9;
    vigil_audit_report rep = VIGIL_AUDIT_REPORT_INIT;
    vigil_audit_verify(vigil_remediator_audit(rem), &rep);
    printf("remediate: %d requests through guards + ledger + audit (log action, synchronous=full): "
           "%.0f requests/s (%d succeeded, %lld audit rows, chain %s)\n",
           n, n / secs, c.ok, (long long)rep.entries, rep.ok ? "ok" : "BROKEN");
    vigil_remediator_free(rem);

    /* 2. submission -> child process running, for exec */
    rem = open_rem(dir, "exec.db",
                   "actions:\n  - {name: stamp, type: exec, argv: [\"/bin/date\", \"+%s%N\"], "
                   "targets: \"^x[0-9]+$\"}\n",
                   4);
    int64_t *lat = calloc((size_t)m, sizeof(int64_t));
    counter d = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};
    for (int i = 0; i < m; i++) {
        snprintf(id, sizeof(id), "exec-%d", i);
        snprintf(target, sizeof(target), "x%d", i);
        vigil_action_request rq = VIGIL_ACTION_REQUEST_INIT;
        rq.id = id;
        rq.action = "stamp";
        rq.target = target;
        int64_t sent = now_ns(CLOCK_REALTIME);
        if (vigil_remediator_submit(rem, &rq, on_done, &d)) {
            fprintf(stderr, "submit: %s\n", vigil_error_last()->message);
            return 1;
        }
        wait_for(&d, i + 1);
        lat[i] = d.child_ns - sent;
    }
    qsort(lat, (size_t)m, sizeof(int64_t), cmp64);
    printf("remediate: request submitted -> exec child running (/bin/date +%%s%%N, %d sequential, "
           "%d succeeded): p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
           m, d.ok, lat[m / 2] / 1e6, lat[(m * 99) / 100 < m ? (m * 99) / 100 : m - 1] / 1e6,
           lat[m - 1] / 1e6);
    free(lat);
    vigil_remediator_free(rem);
    return 0;
}
