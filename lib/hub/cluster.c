/*
 * Several hubs on one store (vigil_hub_set_cluster(); docs/architecture.md,
 * "Clustering"). Two threads per clustered hub:
 *
 * - the lease thread renews (or tries to take) the store lease
 *   VIGIL_HUB_LEADER_LEASE every renew_interval on a connection of its own.
 *   The hub counts its lease from before the call that granted it, on the
 *   monotonic clock, so a slow answer shortens it, never lengthens it; a
 *   failed renewal, another holder, or a renewal that would expire before
 *   the next one ends the leadership at once (fencing on the hub's side; the
 *   remediator fences on its side with the epoch).
 * - the leader thread, on each new term, takes the tail's end, rebuilds the
 *   windows of the watched series from the store (vigil_hub_windows_rebuild()) and recovers the
 * ledger's unfinished requests (lib/hub/recover.c), then, while the term lasts, feeds the windows
 * and the engine with the samples every hub commits (vigil_store_tail(), on a third connection).
 * The hub's own ingests reach the engine through the tail too (hub.c skips them), so each sample is
 * evaluated once. A store without a tail (SQLite) leaves the feeding to hub.c, from this hub's
 *   ingests, while it leads.
 */
#include "hub/hub_int.h"
#include "core/cond.h"
#include "internal/json.h"
#include "vigil/sys/store.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define COMPONENT       "cluster"
#define TTL_DEFAULT_MS  3000
#define TAIL_DEFAULT_MS 100
#define TAIL_BATCH      4096 /* samples of one vigil_store_tail() call */
#define AGENT_TAG       "agent"

struct vigil__hub_cluster {
    char holder[VIGIL_STORE_LEASE_HOLDER_MAX + 1];
    int64_t ttl_ms, renew_ms, tail_ms;
    vigil_store *lease_st; /* the lease thread's connection */
    vigil_store *tail_st;  /* the leader thread's */
    int tail_ok;           /* the store has vigil_store_tail() */

    pthread_mutex_t mu;
    pthread_cond_t lease_cv;  /* lease thread: stopping */
    pthread_cond_t leader_cv; /* leader thread: a term began, or stopping */
    int stopping;
    int leader;       /* this hub leads (until valid_ns) */
    uint64_t epoch;   /* of the term it leads, or the last epoch it saw */
    int64_t valid_ns; /* monotonic: the end of the lease as this hub counts it */
    uint64_t term;    /* terms begun; the leader thread compares it with its own */
    int fed;          /* the current term's takeover is done: samples flow */
    char leader_holder[VIGIL_STORE_LEASE_HOLDER_MAX + 1];
    uint64_t terms, tailed;
    uint64_t fenced; /* a remediator refused this epoch: never lead under it again */
    pthread_t lease_t, leader_t;
    int threads; /* threads running (0, 1 or 2) */

    /* leader thread only */
    char cursor[VIGIL_STORE_TAIL_CURSOR_MAX + 1];
    vigil_batch *batch;
    int64_t last_tail_warn_ns;
};

int vigil_hub_cluster_options_init(vigil_hub_cluster_options *opts, unsigned int version)
{
    if (!opts)
        return vigil__error_set(VIGIL_EINVAL, "hub cluster options: NULL");
    if (vigil__version_check("hub cluster options", version, VIGIL_HUB_CLUSTER_OPTIONS_VERSION))
        return VIGIL_EVERSION;
    vigil_hub_cluster_options d = VIGIL_HUB_CLUSTER_OPTIONS_INIT;
    *opts = d;
    return VIGIL_OK;
}

/* ---- state ------------------------------------------------------------------ */

/* Ends the term (mu held): nothing is evaluated nor dispatched from now on. */
static void step_down_locked(vigil_hub *hub, const char *why)
{
    vigil__hub_cluster *c = hub->cluster;
    if (!c->leader)
        return;
    c->leader = 0;
    c->fed = 0;
    vigil__log(&hub->logger, VIGIL_LOG_WARN, COMPONENT, "stopped leading",
               "holder=%s epoch=%llu reason=\"%s\"", c->holder, (unsigned long long)c->epoch, why);
}

int vigil__hub_may_act(vigil_hub *hub, uint64_t *epoch)
{
    vigil__hub_cluster *c = hub->cluster;
    if (!c) {
        *epoch = 0;
        return 1;
    }
    pthread_mutex_lock(&c->mu);
    if (c->leader && vigil__monotonic_ns() >= c->valid_ns)
        step_down_locked(hub, "the lease ran out before it was renewed");
    int ok = c->leader;
    *epoch = c->epoch;
    pthread_mutex_unlock(&c->mu);
    return ok;
}

int vigil__hub_cluster_tails(const vigil_hub *hub)
{
    return hub->cluster && hub->cluster->tail_ok;
}

void vigil__hub_cluster_fenced(vigil_hub *hub, uint64_t epoch)
{
    vigil__hub_cluster *c = hub->cluster;
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    if (epoch > c->fenced)
        c->fenced = epoch;
    if (c->leader && c->epoch <= epoch)
        step_down_locked(hub, "a remediator refused the epoch as stale");
    pthread_cond_signal(&c->lease_cv); /* give the lease up now */
    pthread_mutex_unlock(&c->mu);
}

/* ---- the lease thread --------------------------------------------------------- */

static void *lease_main(void *arg)
{
    vigil_hub *hub = arg;
    vigil__hub_cluster *c = hub->cluster;
    pthread_setname_np(pthread_self(), "vigil-lease");
    int64_t last_err_ns = 0;
    pthread_mutex_lock(&c->mu);
    while (!c->stopping) {
        pthread_mutex_unlock(&c->mu);
        int64_t t0 = vigil__monotonic_ns();
        vigil_store_lease l = VIGIL_STORE_LEASE_INIT;
        int rc = vigil_store_lease_acquire(c->lease_st, VIGIL_HUB_LEADER_LEASE, c->holder,
                                           c->ttl_ms, &l);
        char err[300] = "";
        if (rc)
            snprintf(err, sizeof(err), "%s", vigil_error_last()->message);
        int64_t t1 = vigil__monotonic_ns();
        pthread_mutex_lock(&c->mu);
        if (rc) {
            step_down_locked(hub, "the lease could not be renewed");
            if (t1 - last_err_ns > 10LL * 1000000000) {
                vigil_buf m = VIGIL_BUF_INIT;
                if (vigil__logfmt_value(&m, err) == VIGIL_OK)
                    vigil__log(&hub->logger, VIGIL_LOG_WARN, COMPONENT, "lease call failed",
                               "code=%d error=%s", rc, m.ptr);
                vigil_buf_dispose(&m);
                last_err_ns = t1;
            }
        } else if (l.held && l.epoch <= c->fenced) {
            /* a remediator saw a newer epoch than the store gave this hub:
             * give the lease up so that another hub takes it under a new
             * epoch, and stay away for a ttl */
            step_down_locked(hub, "the epoch was refused as stale");
            pthread_mutex_unlock(&c->mu);
            vigil_store_lease_release(c->lease_st, VIGIL_HUB_LEADER_LEASE, c->holder);
            vigil__log(&hub->logger, VIGIL_LOG_ERROR, COMPONENT,
                       "gave the lease up: its epoch was refused as stale", "holder=%s epoch=%llu",
                       c->holder, (unsigned long long)l.epoch);
            pthread_mutex_lock(&c->mu);
            snprintf(c->leader_holder, sizeof(c->leader_holder), "%s", "");
            int64_t until = vigil__monotonic_ms() + c->ttl_ms;
            while (!c->stopping && vigil__monotonic_ms() < until)
                vigil__cond_wait_until(&c->lease_cv, &c->mu, until);
            continue;
        } else if (l.held) {
            int64_t valid = t0 + (l.expires_ms - l.now_ms) * 1000000;
            if (valid - t1 <= c->renew_ms * 1000000) {
                step_down_locked(hub, "the lease would expire before the next renewal");
            } else if (!c->leader || l.epoch != c->epoch) {
                c->leader = 1;
                c->fed = 0;
                c->epoch = l.epoch;
                c->valid_ns = valid;
                c->term++;
                c->terms++;
                pthread_cond_signal(&c->leader_cv);
                vigil__log(&hub->logger, VIGIL_LOG_INFO, COMPONENT, "leading",
                           "holder=%s epoch=%llu ttl_ms=%lld", c->holder,
                           (unsigned long long)l.epoch, (long long)c->ttl_ms);
            } else {
                c->valid_ns = valid;
            }
        } else {
            step_down_locked(hub, "another hub holds the lease");
            c->epoch = l.epoch;
        }
        if (!rc)
            snprintf(c->leader_holder, sizeof(c->leader_holder), "%s",
                     l.held || l.expires_ms > l.now_ms ? l.holder : "");
        int64_t next_ms = (t0 + c->renew_ms * 1000000) / 1000000;
        uint64_t fenced = c->fenced;
        while (!c->stopping && c->fenced == fenced && vigil__monotonic_ms() < next_ms)
            vigil__cond_wait_until(&c->lease_cv, &c->mu, next_ms);
    }
    int was = c->leader;
    c->leader = 0;
    c->fed = 0;
    pthread_mutex_unlock(&c->mu);
    if (was) {
        /* another hub takes over at once instead of after the ttl */
        if (vigil_store_lease_release(c->lease_st, VIGIL_HUB_LEADER_LEASE, c->holder) == VIGIL_OK)
            vigil__log(&hub->logger, VIGIL_LOG_INFO, COMPONENT, "released the lease", "holder=%s",
                       c->holder);
    }
    return NULL;
}

/* ---- the leader thread ---------------------------------------------------------- */

typedef struct tail_ctx {
    vigil_hub *hub;
    size_t n;   /* samples read */
    int failed; /* the engine refused a batch */
    char agent[VIGIL_METRIC_TAG_VALUE_MAX + 1];
} tail_ctx;

/* Feeds the collected batch to the engine. */
static void flush(tail_ctx *t)
{
    vigil__hub_cluster *c = t->hub->cluster;
    if (!vigil_batch_count(c->batch))
        return;
    vigil_hub *hub = t->hub;
    size_t refused = 0;
    int first_rc = VIGIL_OK;
    char first_msg[256] = "";
    pthread_mutex_lock(&hub->win_mu);
    vigil__hub_windows_append(hub, c->batch, 0, vigil_batch_count(c->batch), &refused, &first_rc,
                              first_msg, sizeof(first_msg));
    pthread_mutex_unlock(&hub->win_mu);
    if (refused)
        vigil__prom_add(hub->m_win_refused, NULL, (double)refused);
    int rc = vigil_batch_set_agent(c->batch, t->agent[0] ? t->agent : NULL);
    if (!rc)
        rc = vigil_engine_ingest(hub->engine, c->batch);
    if (rc)
        vigil__hub_engine_error(t->hub, "ingest", rc);
    vigil_batch_clear(c->batch);
}

static int tail_cb(const vigil_store_series *series, const vigil_store_point *p, void *payload)
{
    tail_ctx *t = payload;
    vigil_hub *hub = t->hub;
    vigil__hub_cluster *c = hub->cluster;
    const char *agent = "";
    for (size_t i = 0; i < series->ntags; i++)
        if (strcmp(series->tags[i].key, AGENT_TAG) == 0)
            agent = series->tags[i].value;
    if (strcmp(agent, t->agent) != 0) {
        flush(t);
        snprintf(t->agent, sizeof(t->agent), "%s", agent);
    }
    vigil_metric m = {series->name, p->value, p->ts_ms, series->tags, series->ntags, p->error};
    t->n++;
    if (vigil_batch_add(c->batch, &m) != VIGIL_OK)
        vigil__hub_engine_error(hub, "ingest", vigil_error_last()->code);
    if (vigil_batch_count(c->batch) >= TAIL_BATCH)
        flush(t);
    return 0;
}

static int nothing_cb(const vigil_store_series *s, const vigil_store_point *p, void *payload)
{
    (void)s;
    (void)p;
    (void)payload;
    return 0;
}

/* A new term: the tail's end first (what is committed after it is fed to
 * the engine; what before, the windows hold), then the windows, then the
 * ledger. */
static void takeover(vigil_hub *hub)
{
    vigil__hub_cluster *c = hub->cluster;
    if (c->tail_ok) {
        char next[VIGIL_STORE_TAIL_CURSOR_MAX + 1];
        int rc = vigil_store_tail(c->tail_st, NULL, 1, nothing_cb, NULL, next, sizeof(next));
        if (rc)
            vigil__log(&hub->logger, VIGIL_LOG_ERROR, COMPONENT, "cannot read the tail's end",
                       "code=%d error=\"%s\"", rc, vigil_error_last()->message);
        else
            memcpy(c->cursor, next, sizeof(next));
    }
    /* every series the rules watch, from every hub's samples (windows.c) */
    vigil_hub_windows_rebuild(hub, NULL, 0);
    vigil__hub_recover_actions(hub);
}

/* Waits (mu held) until `deadline_ms` (monotonic), a stop or a new term. */
static void leader_wait(vigil__hub_cluster *c, int64_t deadline_ms, uint64_t term)
{
    while (!c->stopping && c->term == term && vigil__monotonic_ms() < deadline_ms)
        vigil__cond_wait_until(&c->leader_cv, &c->mu, deadline_ms);
}

static void *leader_main(void *arg)
{
    vigil_hub *hub = arg;
    vigil__hub_cluster *c = hub->cluster;
    pthread_setname_np(pthread_self(), "vigil-leader");
    uint64_t done_term = 0;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->stopping && !(c->leader && (c->term != done_term || c->tail_ok)))
            pthread_cond_wait(&c->leader_cv, &c->mu);
        if (c->stopping)
            break;
        uint64_t term = c->term;
        if (term != done_term) {
            pthread_mutex_unlock(&c->mu);
            takeover(hub);
            pthread_mutex_lock(&c->mu);
            done_term = term;
            if (c->term == term && c->leader)
                c->fed = 1;
            continue;
        }
        if (!c->tail_ok)
            continue;
        pthread_mutex_unlock(&c->mu);
        tail_ctx t;
        memset(&t, 0, sizeof(t));
        t.hub = hub;
        char next[VIGIL_STORE_TAIL_CURSOR_MAX + 1];
        int rc =
            vigil_store_tail(c->tail_st, c->cursor, TAIL_BATCH, tail_cb, &t, next, sizeof(next));
        flush(&t);
        int64_t now_ns = vigil__monotonic_ns();
        if (rc == VIGIL_OK) {
            memcpy(c->cursor, next, sizeof(next));
        } else if (now_ns - c->last_tail_warn_ns > 10LL * 1000000000) {
            vigil__log(&hub->logger, VIGIL_LOG_WARN, COMPONENT, "tail read failed",
                       "code=%d error=\"%s\"", rc, vigil_error_last()->message);
            c->last_tail_warn_ns = now_ns;
        }
        pthread_mutex_lock(&c->mu);
        c->tailed += t.n;
        if (rc || t.n < TAIL_BATCH)
            leader_wait(c, vigil__monotonic_ms() + c->tail_ms, term);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* ---- life cycle ------------------------------------------------------------------ */

static int holder_default(char *out, size_t size)
{
    char host[256];
    if (gethostname(host, sizeof(host)) != 0 || !host[0])
        snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    snprintf(out, size, "%.100s:%ld", host, (long)getpid());
    return VIGIL_OK;
}

static int open_conn(vigil_hub *hub, vigil_store **out)
{
    vigil_store_options so = VIGIL_STORE_OPTIONS_INIT;
    so.logger = hub->logger;
    so.registry = hub->store_types;
    return vigil_store_open(out, hub->store_url, &so);
}

static double g_leader(void *p)
{
    vigil_hub_cluster_status s = VIGIL_HUB_CLUSTER_STATUS_INIT;
    vigil_hub_cluster_status_get(p, &s);
    return s.leader;
}

static double g_epoch(void *p)
{
    vigil_hub_cluster_status s = VIGIL_HUB_CLUSTER_STATUS_INIT;
    vigil_hub_cluster_status_get(p, &s);
    return (double)s.epoch;
}

int vigil_hub_set_cluster(vigil_hub *hub, const vigil_hub_cluster_options *opts)
{
    if (!hub)
        return vigil__error_set(VIGIL_EINVAL, "hub cluster: NULL hub");
    if (opts && vigil__version_check("hub cluster options", opts->version,
                                     VIGIL_HUB_CLUSTER_OPTIONS_VERSION))
        return VIGIL_EVERSION;
    pthread_mutex_lock(&hub->mu);
    int started = hub->started || hub->stopping;
    pthread_mutex_unlock(&hub->mu);
    if (started)
        return vigil__error_set(VIGIL_EINVAL, "hub cluster: the hub is started already");
    if (hub->cluster)
        return vigil__error_set(VIGIL_EINVAL, "hub cluster: set already");
    if (!opts || !opts->enabled)
        return VIGIL_OK;
    int64_t ttl = opts->lease_ttl_ms ? opts->lease_ttl_ms : TTL_DEFAULT_MS;
    if (ttl < 3 || ttl > VIGIL_STORE_LEASE_TTL_MAX)
        return vigil__error_set(VIGIL_EINVAL,
                                "hub cluster: lease_ttl_ms %lld is out of range (3 to %d)",
                                (long long)ttl, VIGIL_STORE_LEASE_TTL_MAX);
    int64_t renew = opts->renew_interval_ms ? opts->renew_interval_ms : ttl / 3;
    if (renew < 1 || renew >= ttl)
        return vigil__error_set(VIGIL_EINVAL,
                                "hub cluster: renew_interval_ms %lld must be from 1 to below the "
                                "lease ttl (%lld ms)",
                                (long long)renew, (long long)ttl);
    int64_t tail = opts->tail_interval_ms ? opts->tail_interval_ms : TAIL_DEFAULT_MS;
    if (tail < 1 || tail > 60000)
        return vigil__error_set(VIGIL_EINVAL,
                                "hub cluster: tail_interval_ms %lld is out of range (1 to 60000)",
                                (long long)tail);
    if (opts->holder) {
        size_t len = strlen(opts->holder);
        if (!len)
            return vigil__error_set(VIGIL_EINVAL, "hub cluster: the holder must not be empty");
        if (len > VIGIL_STORE_LEASE_HOLDER_MAX)
            return vigil__error_set(VIGIL_ELIMIT,
                                    "hub cluster: the holder is %zu bytes, more than the limit "
                                    "of %d",
                                    len, VIGIL_STORE_LEASE_HOLDER_MAX);
        if (!vigil__utf8_valid(opts->holder, len))
            return vigil__error_set(VIGIL_EINVAL, "hub cluster: the holder is not valid UTF-8");
    }
    if (hub->reader == hub->store)
        return vigil__error_set(VIGIL_EINVAL,
                                "hub cluster: the store %s is private to this process (in "
                                "memory); hubs share a store",
                                hub->store_url);
    vigil__hub_cluster *c = vigil__calloc(1, sizeof(*c));
    if (!c)
        return vigil__error_oom();
    c->ttl_ms = ttl;
    c->renew_ms = renew;
    c->tail_ms = tail;
    if (opts->holder)
        snprintf(c->holder, sizeof(c->holder), "%s", opts->holder);
    else
        holder_default(c->holder, sizeof(c->holder));
    int rc = open_conn(hub, &c->lease_st);
    if (!rc)
        rc = open_conn(hub, &c->tail_st);
    if (!rc)
        rc = vigil_batch_new(&c->batch);
    if (!rc) {
        /* the store must have leases: a read tells */
        vigil_store_lease l = VIGIL_STORE_LEASE_INIT;
        rc = vigil_store_lease_get(c->lease_st, VIGIL_HUB_LEADER_LEASE, &l);
        if (rc == VIGIL_ENOTFOUND || rc == VIGIL_OK)
            rc = VIGIL_OK;
        else if (rc == VIGIL_EUNSUPPORTED)
            rc =
                vigil__error_set(VIGIL_EUNSUPPORTED, "hub cluster: the store %s has no leases (%s)",
                                 hub->store_url, vigil_error_last()->message);
    }
    if (!rc) {
        char next[VIGIL_STORE_TAIL_CURSOR_MAX + 1];
        int trc = vigil_store_tail(c->tail_st, NULL, 1, nothing_cb, NULL, next, sizeof(next));
        c->tail_ok = trc == VIGIL_OK;
        if (trc && trc != VIGIL_EUNSUPPORTED)
            rc = trc;
    }
    if (rc) {
        vigil_store_close(c->lease_st);
        vigil_store_close(c->tail_st);
        vigil_batch_free(c->batch);
        vigil__free(c);
        return rc;
    }
    vigil_batch_set_max_metrics(c->batch, TAIL_BATCH + 1);
    pthread_mutex_init(&c->mu, NULL);
    vigil__cond_init_monotonic(&c->lease_cv);
    vigil__cond_init_monotonic(&c->leader_cv);
    hub->cluster = c;
    rc = vigil__prom_gauge_func(hub->prom, "vigil_cluster_leader",
                                "1 while this hub leads (holds the lease), else 0.", g_leader, hub);
    if (!rc)
        rc = vigil__prom_gauge_func(hub->prom, "vigil_cluster_epoch",
                                    "Fencing epoch this hub leads under, or last saw.", g_epoch,
                                    hub);
    vigil__log(&hub->logger, VIGIL_LOG_INFO, COMPONENT, "clustered",
               "holder=%s ttl_ms=%lld renew_ms=%lld tail=%s", c->holder, (long long)ttl,
               (long long)renew, c->tail_ok ? "yes" : "no (the leader evaluates its own ingests)");
    return rc;
}

int vigil__hub_cluster_start(vigil_hub *hub)
{
    vigil__hub_cluster *c = hub->cluster;
    if (!c)
        return VIGIL_OK;
    if (pthread_create(&c->leader_t, NULL, leader_main, hub))
        return vigil__error_set(VIGIL_ERROR, "hub: cannot start the leader thread");
    c->threads = 1;
    if (pthread_create(&c->lease_t, NULL, lease_main, hub)) {
        vigil__hub_cluster_stop(hub);
        return vigil__error_set(VIGIL_ERROR, "hub: cannot start the lease thread");
    }
    c->threads = 2;
    return VIGIL_OK;
}

void vigil__hub_cluster_stop(vigil_hub *hub)
{
    vigil__hub_cluster *c = hub->cluster;
    if (!c || !c->threads)
        return;
    pthread_mutex_lock(&c->mu);
    c->stopping = 1;
    pthread_cond_broadcast(&c->lease_cv);
    pthread_cond_broadcast(&c->leader_cv);
    pthread_mutex_unlock(&c->mu);
    if (c->threads == 2)
        pthread_join(c->lease_t, NULL);
    pthread_join(c->leader_t, NULL);
    c->threads = 0;
}

void vigil__hub_cluster_free(vigil_hub *hub)
{
    vigil__hub_cluster *c = hub->cluster;
    if (!c)
        return;
    vigil__hub_cluster_stop(hub);
    vigil_store_close(c->lease_st);
    vigil_store_close(c->tail_st);
    vigil_batch_free(c->batch);
    pthread_cond_destroy(&c->lease_cv);
    pthread_cond_destroy(&c->leader_cv);
    pthread_mutex_destroy(&c->mu);
    vigil__free(c);
    hub->cluster = NULL;
}

int vigil_hub_cluster_status_get(vigil_hub *hub, vigil_hub_cluster_status *out)
{
    if (!hub || !out)
        return vigil__error_set(VIGIL_EINVAL, "hub cluster status: NULL argument");
    if (vigil__version_check("hub cluster status", out->version, VIGIL_HUB_CLUSTER_STATUS_VERSION))
        return VIGIL_EVERSION;
    vigil_hub_cluster_status s = VIGIL_HUB_CLUSTER_STATUS_INIT;
    s.version = out->version;
    vigil__hub_cluster *c = hub->cluster;
    if (c) {
        uint64_t epoch;
        s.enabled = 1;
        s.leader = vigil__hub_may_act(hub, &epoch);
        pthread_mutex_lock(&c->mu);
        s.epoch = c->epoch;
        memcpy(s.holder, c->holder, sizeof(s.holder));
        memcpy(s.leader_holder, c->leader_holder, sizeof(s.leader_holder));
        s.terms = c->terms;
        s.tailed = c->tailed;
        pthread_mutex_unlock(&c->mu);
    }
    *out = s;
    return VIGIL_OK;
}

/* GET /v1/cluster */
static void route_cluster(vigil__api_call *call, void *payload)
{
    vigil_hub *hub = payload;
    vigil_hub_cluster_status s = VIGIL_HUB_CLUSTER_STATUS_INIT;
    vigil_buf b = VIGIL_BUF_INIT;
    int rc = vigil_hub_cluster_status_get(hub, &s);
    if (!rc)
        rc = vigil__buf_printf(&b, "{\"enabled\":%s,\"leader\":%s,\"epoch\":%llu,\"holder\":",
                               s.enabled ? "true" : "false", s.leader ? "true" : "false",
                               (unsigned long long)s.epoch);
    if (!rc)
        rc = s.enabled ? vigil__json_put_string(&b, s.holder, strlen(s.holder))
                       : vigil__buf_puts(&b, "null");
    if (!rc)
        rc = vigil__buf_puts(&b, ",\"leader_holder\":");
    if (!rc)
        rc = s.leader_holder[0]
                 ? vigil__json_put_string(&b, s.leader_holder, strlen(s.leader_holder))
                 : vigil__buf_puts(&b, "null");
    if (!rc)
        rc = vigil__buf_printf(&b, ",\"terms\":%llu,\"tailed\":%llu}", (unsigned long long)s.terms,
                               (unsigned long long)s.tailed);
    vigil__api_answer(call, rc, 200, &b);
}

int vigil__hub_mount_cluster_routes(vigil_hub *hub, vigil_api *api)
{
    static const vigil__api_route_def routes[] = {
        {"GET", "/v1/cluster", VIGIL_API_SCOPE_READ, 0, route_cluster},
    };
    return vigil__api_routes(api, routes, VIGIL__ARRAY_LEN(routes), hub);
}
