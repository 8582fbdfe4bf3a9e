/* The hub: validated ingests queue to one committer thread that writes them
 * as a group; an answering thread then appends the stored samples to the
 * windows and answers every caller, and an evaluator thread feeds them to
 * the policy engine, while the committer writes the next groups; a ticker
 * publishes ingest rates to the events bus. */
#include "core/cond.h"
#include "hub/hub_int.h"
#include "metric/internal.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define EVENT_TYPE_MAX 64
#define EVENT_DATA_MAX (64 * 1024)
/* Samples waiting for their commit at most, in commit groups: bounds the
 * memory the queue holds. */
#define QUEUED_SAMPLES_FACTOR 4
/* Groups written to the store and not yet answered and fed to the policy
 * engine, at most: past it the committer waits (and the queue fills). */
#define POST_GROUPS_MAX 3
/* Committed groups kept for their memory (their merged batch's arrays). */
#define SPARE_GROUPS_MAX 2

/* An ingest waiting for its commit. Its metrics were copied into its group's
 * merged batch when it was queued; it keeps its ids for the duplicate check. */
struct ingest_req {
    size_t first; /* index of its first metric in the group's merged batch */
    size_t count;
    char *agent;
    char *batch_id;
    vigil_hub_ingest_cb cb;
    void *payload;
    int status;
    vigil_hub_ingest_result result;
    char message[512];
    ingest_req *next;
};

/* Ingests committed together: their metrics in one batch, written in one
 * store transaction. */
struct commit_group {
    vigil_batch *merged;
    ingest_req *head, *tail;
    size_t nreq;
    size_t nsamples;
    int failed; /* a copy into `merged` failed: the whole group is refused */
    commit_group *next;
    ingest_req *answered, *answered_tail; /* answered, waiting to feed the engine */
    /* the outcome of its write (committer), for its answers (answerer) */
    int rc;
    size_t new_series;
    char message[512];
};

static void group_free(commit_group *g);

int vigil_hub_options_init(vigil_hub_options *opts, unsigned int version)
{
    if (!opts)
        return vigil__error_set(VIGIL_EINVAL, "hub options: NULL");
    if (vigil__version_check("hub options", version, VIGIL_HUB_OPTIONS_VERSION))
        return VIGIL_EVERSION;
    vigil_hub_options d = VIGIL_HUB_OPTIONS_INIT;
    d.version = version;
    /* an older program's struct ends where its version's fields end */
    memcpy(opts, &d,
           version == 1   ? offsetof(vigil_hub_options, remediator_ca_file)
           : version == 2 ? offsetof(vigil_hub_options, ui_dir)
                          : sizeof(d));
    return VIGIL_OK;
}

/* A monotonic deadline in ns as the ms deadline of a timed wait (rounded up,
 * so that a wait never ends before the deadline it was given). */
static int64_t ns_to_ms_up(int64_t ns)
{
    return (ns + 999999) / 1000000;
}

/* ---- metrics ------------------------------------------------------------------ */

static double g_queue(void *p)
{
    vigil_hub *hub = p;
    pthread_mutex_lock(&hub->mu);
    double v = (double)hub->qlen;
    pthread_mutex_unlock(&hub->mu);
    return v;
}

static double g_queue_cap(void *p)
{
    return (double)((vigil_hub *)p)->queue_max;
}

static double g_series(void *p)
{
    vigil_hub *hub = p;
    pthread_mutex_lock(&hub->mu);
    double v = (double)hub->series;
    pthread_mutex_unlock(&hub->mu);
    return v;
}

static double g_windows(void *p)
{
    vigil_hub *hub = p;
    pthread_mutex_lock(&hub->win_mu);
    double v = (double)vigil_window_set_count(hub->windows);
    pthread_mutex_unlock(&hub->win_mu);
    return v;
}

static double g_unwatched(void *p)
{
    return (double)vigil__hub_windows_unwatched(p);
}

static double g_refused_now(void *p)
{
    return (double)vigil__hub_windows_refused(p);
}

static double g_window_bytes(void *p)
{
    vigil_hub *hub = p;
    pthread_mutex_lock(&hub->win_mu);
    double v = (double)vigil_window_set_memory(hub->windows);
    pthread_mutex_unlock(&hub->win_mu);
    return v;
}

/* The store's write log figures (0 for a backend without them). */
static vigil_store_stats store_stats(void *p)
{
    vigil_store_stats st = VIGIL_STORE_STATS_INIT;
    if (vigil_store_stats_get(((vigil_hub *)p)->store, &st) != VIGIL_OK)
        memset(&st, 0, sizeof(st));
    return st;
}

static double g_log_bytes(void *p)
{
    return (double)store_stats(p).log_bytes;
}

static double g_unfolded(void *p)
{
    return (double)store_stats(p).unfolded_samples;
}

static double g_unfolded_bytes(void *p)
{
    return (double)store_stats(p).unfolded_bytes;
}

static double g_fold_seconds(void *p)
{
    return store_stats(p).last_fold_seconds;
}

static double g_subscribers(void *p)
{
    return (double)vigil__events_subscribers(((vigil_hub *)p)->events);
}

static int init_metrics(vigil_hub *hub)
{
    static const char *const reason[] = {"reason", NULL};
    static const double group_buckets[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
    vigil__prom *p = NULL;
    int rc = vigil__prom_new(&p);
    if (rc)
        return rc;
    hub->prom = p;
    rc = vigil__prom_counter(p, &hub->m_samples, "vigil_ingest_samples_total",
                             "Samples committed to the store.", NULL);
    if (!rc)
        rc = vigil__prom_counter(p, &hub->m_batches, "vigil_ingest_batches_total",
                                 "Batches committed to the store (duplicates excluded).", NULL);
    if (!rc)
        rc = vigil__prom_counter(p, &hub->m_duplicates, "vigil_ingest_duplicate_batches_total",
                                 "Batches acknowledged as duplicates of a stored batch id.", NULL);
    if (!rc)
        rc = vigil__prom_counter(p, &hub->m_rejected, "vigil_ingest_rejected_batches_total",
                                 "Ingest requests refused, by reason (the error code).", reason);
    if (!rc)
        rc = vigil__prom_histogram(p, &hub->m_commit, "vigil_store_commit_duration_seconds",
                                   "Time to write one commit group to the store.", NULL,
                                   vigil__prom_latency_buckets, vigil__prom_latency_nbuckets);
    if (!rc)
        rc = vigil__prom_histogram(p, &hub->m_group, "vigil_ingest_commit_group_batches",
                                   "Ingest requests answered by one commit group.", NULL,
                                   group_buckets, VIGIL__ARRAY_LEN(group_buckets));
    if (!rc)
        rc = vigil__prom_counter(p, &hub->m_dropped, "vigil_events_dropped_subscribers_total",
                                 "Event subscribers dropped for falling behind.", NULL);
    if (!rc)
        rc = vigil__prom_counter(p, &hub->m_retention, "vigil_store_retention_deleted_total",
                                 "Samples deleted by retention.", NULL);
    if (!rc)
        rc = vigil__prom_counter(p, &hub->m_win_refused, "vigil_windows_refused_samples_total",
                                 "Samples stored but added to no window (the series is past "
                                 "the windows' max_series, or memory ran out).",
                                 NULL);
    if (!rc)
        rc =
            vigil__prom_counter(p, &hub->m_win_refused_series, "vigil_windows_refused_series_total",
                                "Series a policy watches that got no window, refused by the "
                                "windows' max_series (counted once per series and rule set).",
                                NULL);
    if (!rc)
        rc = vigil__prom_gauge_func(p, "vigil_ingest_queue_depth",
                                    "Ingest requests waiting for their commit.", g_queue, hub);
    if (!rc)
        rc = vigil__prom_gauge_func(p, "vigil_ingest_queue_capacity",
                                    "Ingest requests that may wait before 429.", g_queue_cap, hub);
    if (!rc)
        rc = vigil__prom_gauge_func(p, "vigil_series", "Series in the store.", g_series, hub);
    if (!rc)
        rc = vigil__prom_gauge_func(p, "vigil_windows",
                                    "Series with an in-memory window (watched by a policy).",
                                    g_windows, hub);
    if (!rc)
        rc = vigil__prom_gauge_func(p, "vigil_windows_unwatched_series",
                                    "Series seen recently that no policy watches (no window).",
                                    g_unwatched, hub);
    if (!rc)
        rc = vigil__prom_gauge_func(p, "vigil_windows_refused_series",
                                    "Series a policy watches that have no window now, past the "
                                    "windows' max_series.",
                                    g_refused_now, hub);
    if (!rc)
        rc = vigil__prom_gauge_func(p, "vigil_windows_memory_bytes",
                                    "Memory used by the in-memory windows.", g_window_bytes, hub);
    if (!rc)
        rc = vigil__prom_gauge_func(p, "vigil_events_subscribers", "Connected event subscribers.",
                                    g_subscribers, hub);
    if (!rc)
        rc = vigil__prom_gauge_func(p, "vigil_store_log_bytes",
                                    "Bytes of the store's write log not folded yet.", g_log_bytes,
                                    hub);
    if (!rc)
        rc = vigil__prom_gauge_func(p, "vigil_store_unfolded_samples",
                                    "Samples held in memory until a fold writes them to chunks.",
                                    g_unfolded, hub);
    if (!rc)
        rc = vigil__prom_gauge_func(p, "vigil_store_unfolded_bytes",
                                    "Memory of the unfolded samples (capped by log_memory).",
                                    g_unfolded_bytes, hub);
    if (!rc)
        rc = vigil__prom_gauge_func(p, "vigil_store_fold_duration_seconds",
                                    "Duration of the last fold round, its transactions added up.",
                                    g_fold_seconds, hub);
    if (!rc)
        rc = vigil__hub_init_action_metrics(hub);
    return rc;
}

const char *vigil__hub_reason(int status)
{
    switch (status) {
    case VIGIL_EJSON: return "invalid_json";
    case VIGIL_ETYPE:
    case VIGIL_EMISSING:
    case VIGIL_ENAME:
    case VIGIL_EVALUE:
    case VIGIL_EENCODING:
    case VIGIL_ELIMIT:
    case VIGIL_ERANGE: return "invalid_metric";
    case VIGIL_EINVAL: return "invalid_request";
    case VIGIL_EOVERLOADED: return "overloaded";
    case VIGIL_EBUSY:
    case VIGIL_EIO:
    case VIGIL_EFULL:
    case VIGIL_EREADONLY:
    case VIGIL_ECLOSED:
    case VIGIL_ETIMEOUT:
    case VIGIL_ECORRUPT: return "unavailable";
    default: return "internal";
    }
}

void vigil__hub_rejected(vigil_hub *hub, const char *reason)
{
    const char *v[] = {reason};
    vigil__prom_add(hub->m_rejected, v, 1);
    pthread_mutex_lock(&hub->mu);
    hub->rejected++;
    pthread_mutex_unlock(&hub->mu);
}

/* ---- lifecycle ----------------------------------------------------------------- */

static int count_series(const vigil_store_series *s, void *payload)
{
    (void)s;
    (*(size_t *)payload)++;
    return 0;
}

void vigil_hub_free(vigil_hub *hub)
{
    if (!hub)
        return;
    vigil_hub_stop(hub);
    vigil__hub_cluster_free(hub);
    vigil__hub_free_engine(hub);
    if (hub->reader && hub->reader != hub->store)
        vigil_store_close(hub->reader);
    vigil_store_close(hub->store);
    vigil__hub_windows_free(hub);
    vigil_window_set_free(hub->windows);
    group_free(hub->open);
    while (hub->spare) {
        commit_group *g = hub->spare;
        hub->spare = g->next;
        group_free(g);
    }
    vigil__hub_fanout_free(hub);
    vigil__events_free(hub->events);
    vigil__prom_free(hub->prom);
    pthread_cond_destroy(&hub->tick_cv);
    pthread_cond_destroy(&hub->answer_cv);
    pthread_cond_destroy(&hub->eval_cv);
    pthread_cond_destroy(&hub->cv);
    pthread_mutex_destroy(&hub->mu);
    pthread_mutex_destroy(&hub->win_mu);
    pthread_mutex_destroy(&hub->sync_mu);
    pthread_mutex_destroy(&hub->act_mu);
    pthread_mutex_destroy(&hub->git_mu);
    vigil__free(hub->store_url);
    vigil__free(hub->ui_dir);
    vigil__free(hub);
}

static int is_memory_url(const char *url)
{
    return strstr(url, ":memory:") != NULL;
}

int vigil_hub_new(vigil_hub **out, const vigil_hub_options *opts)
{
    vigil_hub_options d = VIGIL_HUB_OPTIONS_INIT;
    if (!out)
        return vigil__error_set(VIGIL_EINVAL, "hub: NULL argument");
    *out = NULL;
    if (!opts)
        opts = &d;
    if (vigil__version_check("hub options", opts->version, VIGIL_HUB_OPTIONS_VERSION))
        return VIGIL_EVERSION;
    if (opts->retention_ms < 0 || opts->retention_interval_ms < 0 || opts->max_future_ms < 0 ||
        opts->events_interval_ms < 0)
        return vigil__error_set(VIGIL_EINVAL, "hub: durations must not be negative");
    vigil_hub *hub = vigil__calloc(1, sizeof(*hub));
    if (!hub)
        return vigil__error_oom();
    pthread_mutex_init(&hub->mu, NULL);
    pthread_mutex_init(&hub->win_mu, NULL);
    pthread_mutex_init(&hub->sync_mu, NULL);
    pthread_mutex_init(&hub->act_mu, NULL);
    pthread_mutex_init(&hub->git_mu, NULL);
    vigil__cond_init_monotonic(&hub->cv);
    vigil__cond_init_monotonic(&hub->tick_cv);
    vigil__cond_init_monotonic(&hub->answer_cv);
    vigil__cond_init_monotonic(&hub->eval_cv);
    hub->logger = opts->logger;
    hub->retention_ms = opts->retention_ms ? opts->retention_ms : 14LL * 24 * 3600 * 1000;
    hub->retention_interval_ms =
        opts->retention_interval_ms ? opts->retention_interval_ms : 60 * 1000;
    hub->queue_max = opts->queue_max ? opts->queue_max : 1024;
    hub->group_max_samples = opts->group_max_samples ? opts->group_max_samples : 200000;
    hub->max_future_ms = opts->max_future_ms ? opts->max_future_ms : 5 * 60 * 1000;
    hub->max_batch_metrics =
        opts->max_batch_metrics ? opts->max_batch_metrics : VIGIL_BATCH_DEFAULT_MAX_METRICS;
    hub->events_interval_ms = opts->events_interval_ms ? opts->events_interval_ms : 1000;
    int rc = VIGIL_OK;
    hub->store_url = vigil__strdup(opts->store_url ? opts->store_url : VIGIL_HUB_DEFAULT_STORE);
    if (!hub->store_url)
        rc = vigil__error_oom();
    if (!rc)
        rc = init_metrics(hub);
    if (!rc)
        rc = vigil__events_new(&hub->events, opts->events_queue_max, opts->events_max_subscribers);
    vigil_window_set_options wso = opts->windows;
    if (wso.version == 0) /* embedded: the layout of this options version */
        wso.version = VIGIL_WINDOW_SET_OPTIONS_VERSION;
    if (!rc)
        rc = vigil_window_set_new(&hub->windows, &wso);
    hub->store_types = opts->store_types;
    if (!rc)
        rc = vigil__hub_windows_init(hub);
    vigil_store_options so = VIGIL_STORE_OPTIONS_INIT;
    so.logger = opts->logger;
    so.registry = opts->store_types;
    if (!rc)
        rc = vigil_store_open(&hub->store, hub->store_url, &so);
    if (!rc && !is_memory_url(hub->store_url)) {
        so.read_only = 1;
        rc = vigil_store_open(&hub->reader, hub->store_url, &so);
    } else if (!rc) {
        hub->reader = hub->store;
    }
    if (!rc)
        rc = vigil_store_series_list(hub->store, NULL, count_series, &hub->series);
    if (!rc)
        rc = vigil__hub_init_engine(hub, opts);
    if (!rc)
        rc = vigil__hub_ui_init(hub, opts);
    if (!rc)
        rc = vigil__hub_fanout_init(hub, opts);
    if (rc) {
        vigil__error_prefix("hub");
        vigil_hub_free(hub);
        return rc;
    }
    *out = hub;
    return VIGIL_OK;
}

/* ---- ingest -------------------------------------------------------------------- */

static int validate(vigil_hub *hub, const vigil_batch *batch)
{
    size_t n = vigil_batch_count(batch);
    if (n > hub->max_batch_metrics)
        return vigil__error_set(VIGIL_ELIMIT, "metrics: more than %zu metrics in one batch",
                                hub->max_batch_metrics);
    int64_t limit = vigil__now_ms() + hub->max_future_ms;
    for (size_t i = 0; i < n; i++) {
        const vigil_metric *m = vigil_batch_get(batch, i);
        if (m->ts_ms > limit) {
            char d[32];
            vigil_scalar_format_duration(d, sizeof(d), hub->max_future_ms);
            return vigil__error_set(VIGIL_EVALUE,
                                    "metrics[%zu].ts: %lld is more than %s in the future", i,
                                    (long long)m->ts_ms, d);
        }
    }
    return VIGIL_OK;
}

static void req_free(ingest_req *r)
{
    vigil__free(r->agent);
    vigil__free(r->batch_id);
    vigil__free(r);
}

static void group_free(commit_group *g)
{
    if (!g)
        return;
    vigil_batch_free(g->merged);
    vigil__free(g);
}

/* The open group, sealing it first when `n` more samples would not fit;
 * called with hub->mu held. NULL when out of memory. */
static commit_group *group_for(vigil_hub *hub, size_t n)
{
    commit_group *g = hub->open;
    if (g && g->nreq && g->nsamples + n > hub->group_max_samples) {
        if (hub->ready_tail)
            hub->ready_tail->next = g;
        else
            hub->ready = g;
        hub->ready_tail = g;
        hub->open = g = NULL;
    }
    if (!g) {
        if (hub->spare) {
            g = hub->spare;
            hub->spare = g->next;
            hub->nspare--;
            g->next = NULL;
        } else {
            g = vigil__calloc(1, sizeof(*g));
            if (!g)
                return NULL;
            if (vigil_batch_new(&g->merged)) {
                vigil__free(g);
                return NULL;
            }
        }
        hub->open = g;
    }
    size_t cap = n > hub->group_max_samples ? n : hub->group_max_samples;
    vigil_batch_set_max_metrics(g->merged, g->nsamples + n > cap ? g->nsamples + n : cap);
    return g;
}

int vigil__hub_enqueue(vigil_hub *hub, vigil_batch *batch, int owned, vigil_hub_ingest_cb cb,
                       void *payload)
{
    if (!hub || !batch || !cb)
        return vigil__error_set(VIGIL_EINVAL, "hub ingest: NULL argument");
    int rc = validate(hub, batch);
    if (rc) {
        vigil__hub_rejected(hub, vigil__hub_reason(rc));
        return rc;
    }
    ingest_req *r = vigil__calloc(1, sizeof(*r));
    const char *agent = vigil_batch_agent(batch), *id = vigil_batch_id(batch);
    if (r && id)
        r->batch_id = vigil__strdup(id);
    if (r && agent)
        r->agent = vigil__strdup(agent);
    if (!r || (id && !r->batch_id) || (agent && !r->agent)) {
        if (r)
            req_free(r);
        vigil__hub_rejected(hub, "internal");
        return vigil__error_oom();
    }
    r->count = vigil_batch_count(batch);
    r->cb = cb;
    r->payload = payload;
    pthread_mutex_lock(&hub->mu);
    if (!hub->started || hub->stopping) {
        int started = hub->started;
        pthread_mutex_unlock(&hub->mu);
        req_free(r);
        vigil__hub_rejected(hub, "unavailable");
        return vigil__error_set(VIGIL_ECLOSED, started ? "hub: shutting down" : "hub: not started");
    }
    if (hub->qlen >= hub->queue_max ||
        (hub->qsamples &&
         hub->qsamples + r->count > QUEUED_SAMPLES_FACTOR * hub->group_max_samples)) {
        size_t q = hub->qlen;
        pthread_mutex_unlock(&hub->mu);
        req_free(r);
        vigil__hub_rejected(hub, "overloaded");
        return vigil__error_set(VIGIL_EOVERLOADED,
                                "hub: the ingest queue is full (%zu batches waiting); retry later",
                                q);
    }
    commit_group *g = group_for(hub, r->count);
    if (!g) {
        pthread_mutex_unlock(&hub->mu);
        req_free(r);
        vigil__hub_rejected(hub, "internal");
        return vigil__error_oom();
    }
    /* Copy the metrics into the group now, on the caller's thread, so the
     * committer only writes. A failed copy cannot be undone in the merged
     * batch: the whole group is refused, so nothing is half-stored. */
    r->first = vigil_batch_count(g->merged);
    if (!g->failed) {
        /* The batch's metrics are valid already: copied without a second
         * validation. */
        int arc = vigil__batch_append(g->merged, batch, 0, r->count);
        if (arc)
            g->failed = arc;
    }
    if (g->tail)
        g->tail->next = r;
    else
        g->head = r;
    g->tail = r;
    g->nreq++;
    g->nsamples += r->count;
    hub->qlen++;
    hub->qsamples += r->count;
    pthread_cond_signal(&hub->cv);
    pthread_mutex_unlock(&hub->mu);
    if (owned)
        vigil_batch_free(batch);
    return VIGIL_OK;
}

int vigil__hub_full(vigil_hub *hub)
{
    pthread_mutex_lock(&hub->mu);
    size_t q = hub->qlen;
    int full = hub->qlen >= hub->queue_max ||
               hub->qsamples >= QUEUED_SAMPLES_FACTOR * hub->group_max_samples;
    pthread_mutex_unlock(&hub->mu);
    if (!full)
        return 0;
    vigil__hub_rejected(hub, "overloaded");
    vigil__error_set(VIGIL_EOVERLOADED,
                     "hub: the ingest queue is full (%zu batches waiting); retry later", q);
    return 1;
}

int vigil_hub_ingest_async(vigil_hub *hub, vigil_batch *batch, vigil_hub_ingest_cb cb,
                           void *payload)
{
    return vigil__hub_enqueue(hub, batch, 1, cb, payload);
}

typedef struct sync_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    int status;
    char message[512];
    vigil_hub_ingest_result result;
} sync_wait;

static void sync_cb(int status, const char *message, const vigil_hub_ingest_result *result,
                    void *payload)
{
    sync_wait *w = payload;
    pthread_mutex_lock(&w->mu);
    w->status = status;
    snprintf(w->message, sizeof(w->message), "%s", message);
    w->result = *result;
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int vigil_hub_ingest(vigil_hub *hub, const vigil_batch *batch, vigil_hub_ingest_result *result)
{
    unsigned int version = result ? result->version : 0;
    if (result &&
        vigil__version_check("hub ingest result", version, VIGIL_HUB_INGEST_RESULT_VERSION))
        return VIGIL_EVERSION;
    if (result) {
        memset(result, 0, sizeof(*result));
        result->version = version;
    }
    sync_wait w;
    memset(&w, 0, sizeof(w));
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    /* The batch is borrowed: the request does not own it and the caller
     * waits here until the committer is done with it. */
    int rc = vigil__hub_enqueue(hub, (vigil_batch *)(uintptr_t)batch, 0, sync_cb, &w);
    if (rc == VIGIL_OK) {
        pthread_mutex_lock(&w.mu);
        while (!w.done)
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        rc = w.status;
        if (rc)
            vigil__error_set(rc, "%s", w.message);
        else if (result) {
            *result = w.result;
            result->version = version;
        }
    }
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    return rc;
}

/* ---- the committer ---------------------------------------------------------- */

/* Appends the samples of every stored request of a group to the windows of
 * the series a policy watches (lib/hub/windows.c); a duplicate's samples
 * were stored before and are not appended twice. */
static void update_windows(vigil_hub *hub, const commit_group *g)
{
    if (vigil__hub_cluster_tails(hub))
        return; /* the leader's windows follow the store's tail (cluster.c) */
    size_t refused = 0;
    int first_rc = VIGIL_OK;
    char first_msg[256] = "";
    pthread_mutex_lock(&hub->win_mu);
    for (const ingest_req *r = g->head; r; r = r->next) {
        if (r->result.duplicate)
            continue;
        vigil__hub_windows_append(hub, g->merged, r->first, r->count, &refused, &first_rc,
                                  first_msg, sizeof(first_msg));
    }
    pthread_mutex_unlock(&hub->win_mu);
    if (refused) {
        vigil__prom_add(hub->m_win_refused, NULL, (double)refused);
        vigil_buf v = VIGIL_BUF_INIT;
        if (vigil__logfmt_value(&v, first_msg) == VIGIL_OK)
            vigil__log(&hub->logger, VIGIL_LOG_WARN, "hub", "samples not added to windows",
                       "count=%zu code=%d first=%s", refused, first_rc, v.ptr);
        vigil_buf_dispose(&v);
    }
}

/* Keeps an answered request until the group has fed the engine. */
static void group_answered(commit_group *g, ingest_req *r)
{
    r->next = NULL;
    if (g->answered_tail)
        g->answered_tail->next = r;
    else
        g->answered = r;
    g->answered_tail = r;
}

/* After the callers of a group are answered: gives every stored batch
 * (duplicates and refused batches excluded) to the policy engine, frees the
 * requests and clears the merged batch. */
static void feed_engine(vigil_hub *hub, commit_group *g)
{
    ingest_req *head = g->answered;
    g->answered = g->answered_tail = NULL;
    /* clustered: only the leader evaluates, and from the store's tail when
     * the store has one (every hub's samples, each once; cluster.c) */
    uint64_t epoch;
    int evaluate = !vigil__hub_cluster_tails(hub) && vigil__hub_may_act(hub, &epoch);
    /* one call for the whole merged batch when it holds one agent's stored
     * batches only (the common case), else one per batch */
    int whole = head != NULL && evaluate;
    for (ingest_req *r = head; r && whole; r = r->next)
        whole = !r->status && !r->result.duplicate &&
                ((!r->agent && !head->agent) ||
                 (r->agent && head->agent && strcmp(r->agent, head->agent) == 0));
    int rc = VIGIL_OK;
    if (whole && vigil_batch_set_agent(g->merged, head->agent) == VIGIL_OK) {
        rc = vigil_engine_ingest(hub->engine, g->merged);
        if (rc)
            vigil__hub_engine_error(hub, "ingest", rc);
    } else {
        size_t n = vigil_batch_count(g->merged);
        vigil_batch_set_max_metrics(hub->feed, hub->max_batch_metrics);
        for (ingest_req *r = head; r && evaluate; r = r->next) {
            if (r->status || r->result.duplicate || !r->count)
                continue;
            vigil_batch_clear(hub->feed);
            rc = vigil_batch_set_agent(hub->feed, r->agent);
            if (!rc && r->first < n)
                rc = vigil__batch_append(hub->feed, g->merged, r->first,
                                         r->count < n - r->first ? r->count : n - r->first);
            if (!rc)
                rc = vigil_engine_ingest(hub->engine, hub->feed);
            if (rc)
                vigil__hub_engine_error(hub, "ingest", rc);
        }
        vigil_batch_clear(hub->feed);
    }
    while (head) {
        ingest_req *r = head;
        head = r->next;
        req_free(r);
    }
    vigil_batch_clear(g->merged);
}

/* The parts of a group for vigil_store_write_group(): one per request, in
 * queue order, as their metrics were merged. NULL when out of memory. */
static vigil_store_batch_part *group_parts(const commit_group *g, vigil_store_write_result **res)
{
    size_t n = g->nreq ? g->nreq : 1;
    vigil_store_batch_part *parts = vigil__calloc(n, sizeof(*parts) + sizeof(**res));
    if (!parts)
        return NULL;
    *res = (vigil_store_write_result *)(void *)(parts + n);
    for (size_t i = 0; i < n; i++)
        (*res)[i].version = VIGIL_STORE_WRITE_RESULT_VERSION;
    size_t i = 0;
    for (const ingest_req *r = g->head; r; r = r->next, i++) {
        parts[i].agent = r->agent;
        parts[i].batch_id = r->batch_id;
        parts[i].count = r->count;
    }
    return parts;
}

/* Writes a group (on the committer). The samples of every request and
 * every batch id are written in one transaction (all or nothing for the
 * whole group); a request whose batch id was recorded before (or earlier in
 * the same group) is a duplicate and its samples are not written again. The
 * outcome waits in the group and its requests for commit_group_answer(). */
static void commit_group_write(vigil_hub *hub, commit_group *g)
{
    int64_t t0 = vigil__monotonic_ns();
    vigil_store_write_result *res = NULL;
    vigil_store_batch_part *parts = NULL;
    int rc = g->failed;
    g->message[0] = '\0';
    g->new_series = 0;
    if (!rc && !(parts = group_parts(g, &res)))
        rc = VIGIL_ENOMEM;
    if (rc) {
        snprintf(g->message, sizeof(g->message), "hub: out of memory while queueing the batch");
    } else {
        rc = vigil_store_write_group(hub->store, g->merged, parts, g->nreq, res);
        if (rc)
            snprintf(g->message, sizeof(g->message), "store: %s", vigil_error_last()->message);
    }
    g->rc = rc;
    size_t i = 0;
    for (ingest_req *r = g->head; r; r = r->next, i++) {
        r->status = rc;
        if (rc) {
            snprintf(r->message, sizeof(r->message), "%s", g->message);
            continue;
        }
        g->new_series += res[i].new_series;
        r->result.duplicate = res[i].duplicate;
        r->result.accepted = res[i].duplicate ? 0 : r->count;
    }
    vigil__free(parts);
    vigil__prom_observe(hub->m_commit, NULL, (double)(vigil__monotonic_ns() - t0) / 1e9);
    vigil__prom_observe(hub->m_group, NULL, (double)g->nreq);
}

/* Answers the callers of a written group (on the answerer), after its
 * samples joined the windows and the counters. */
static void commit_group_answer(vigil_hub *hub, commit_group *g)
{
    uint64_t samples = 0, batches = 0, dups = 0;
    for (const ingest_req *r = g->head; r && !g->rc; r = r->next) {
        if (r->result.duplicate) {
            dups++;
        } else {
            samples += r->count;
            batches++;
        }
    }
    vigil__prom_add(hub->m_samples, NULL, (double)samples);
    vigil__prom_add(hub->m_batches, NULL, (double)batches);
    vigil__prom_add(hub->m_duplicates, NULL, (double)dups);
    if (!g->rc)
        update_windows(hub, g);
    pthread_mutex_lock(&hub->mu);
    hub->samples += samples;
    hub->batches += batches;
    hub->duplicates += dups;
    hub->series += g->new_series;
    hub->commits++;
    /* what GET /readyz reports: the last commit's failure, until one succeeds */
    hub->store_failing = g->rc != 0;
    if (g->rc)
        snprintf(hub->store_error, sizeof(hub->store_error), "%.500s", g->message);
    pthread_mutex_unlock(&hub->mu);
    if (g->rc) {
        vigil_buf v = VIGIL_BUF_INIT;
        if (vigil__logfmt_value(&v, g->message) == VIGIL_OK)
            vigil__log(&hub->logger, VIGIL_LOG_ERROR, "hub", "batches not stored",
                       "batches=%zu code=%d error=%s", g->nreq, g->rc, v.ptr);
        vigil_buf_dispose(&v);
    }
    while (g->head) {
        ingest_req *r = g->head;
        g->head = r->next;
        if (r->status)
            vigil__hub_rejected(hub, vigil__hub_reason(r->status));
        r->result.version = VIGIL_HUB_INGEST_RESULT_VERSION;
        r->cb(r->status, r->message, &r->result, r->payload);
        group_answered(g, r);
    }
    g->tail = NULL;
    g->nreq = g->nsamples = 0;
    g->failed = 0;
    g->next = NULL;
}

/* Keeps a group whose engine feed is done for its memory, or frees it;
 * called with hub->mu held. */
static void group_recycle(vigil_hub *hub, commit_group *g)
{
    if (hub->nspare < SPARE_GROUPS_MAX) {
        g->next = hub->spare;
        hub->spare = g;
        hub->nspare++;
    } else {
        group_free(g);
    }
}

static void run_retention(vigil_hub *hub)
{
    vigil_store_retention_options ro = VIGIL_STORE_RETENTION_OPTIONS_INIT;
    ro.max_chunks = 1;
    vigil_store_retention_result res = VIGIL_STORE_RETENTION_RESULT_INIT;
    int rc = vigil_store_retain(hub->store, vigil__now_ms() - hub->retention_ms, &ro, &res);
    if (rc) {
        vigil__log(&hub->logger, VIGIL_LOG_WARN, "hub", "retention failed", "code=%d", rc);
        return;
    }
    vigil__prom_add(hub->m_retention, NULL, (double)res.samples_deleted);
    if (res.samples_deleted || res.batch_ids_deleted)
        vigil__log(&hub->logger, VIGIL_LOG_INFO, "hub", "retention", "samples=%llu batch_ids=%llu",
                   (unsigned long long)res.samples_deleted,
                   (unsigned long long)res.batch_ids_deleted);
}

static void *committer_main(void *arg)
{
    vigil_hub *hub = arg;
    pthread_setname_np(pthread_self(), "vigil-commit");
    int64_t next_retention = vigil__monotonic_ns() + hub->retention_interval_ms * 1000000;
    pthread_mutex_lock(&hub->mu);
    for (;;) {
        while (!hub->ready && !(hub->open && hub->open->nreq) && !hub->stopping &&
               vigil__monotonic_ns() < next_retention)
            vigil__cond_wait_until(&hub->cv, &hub->mu, ns_to_ms_up(next_retention));
        if (!hub->ready && !(hub->open && hub->open->nreq)) {
            if (hub->stopping)
                break;
            pthread_mutex_unlock(&hub->mu);
            run_retention(hub);
            next_retention = vigil__monotonic_ns() + hub->retention_interval_ms * 1000000;
            pthread_mutex_lock(&hub->mu);
            continue;
        }
        /* The oldest sealed group, else the open one. */
        commit_group *g = hub->ready;
        if (g) {
            hub->ready = g->next;
            if (!hub->ready)
                hub->ready_tail = NULL;
        } else {
            g = hub->open;
            hub->open = NULL;
        }
        hub->qlen -= g->nreq;
        hub->qsamples -= g->nsamples;
        pthread_mutex_unlock(&hub->mu);
        commit_group_write(hub, g);
        pthread_mutex_lock(&hub->mu);
        /* on to the answerer; few groups wait there, so memory stays bounded */
        while (hub->npost >= POST_GROUPS_MAX)
            pthread_cond_wait(&hub->cv, &hub->mu);
        g->next = NULL;
        if (hub->committed_tail)
            hub->committed_tail->next = g;
        else
            hub->committed = g;
        hub->committed_tail = g;
        hub->npost++;
        pthread_cond_signal(&hub->answer_cv);
    }
    hub->committer_done = 1;
    pthread_cond_signal(&hub->answer_cv);
    pthread_mutex_unlock(&hub->mu);
    return NULL;
}

/* ---- the answerer ------------------------------------------------------------ */

/* Answers written groups in order, then passes them on to the evaluator, so
 * that the answers wait neither for the next store write nor for the policy
 * engine. Ends when the committer has ended and every group is answered. */
static void *answerer_main(void *arg)
{
    vigil_hub *hub = arg;
    pthread_setname_np(pthread_self(), "vigil-answer");
    pthread_mutex_lock(&hub->mu);
    for (;;) {
        while (!hub->committed && !hub->committer_done)
            pthread_cond_wait(&hub->answer_cv, &hub->mu);
        commit_group *g = hub->committed;
        if (!g)
            break;
        hub->committed = g->next;
        if (!hub->committed)
            hub->committed_tail = NULL;
        pthread_mutex_unlock(&hub->mu);
        commit_group_answer(hub, g);
        pthread_mutex_lock(&hub->mu);
        if (hub->to_feed_tail)
            hub->to_feed_tail->next = g;
        else
            hub->to_feed = g;
        hub->to_feed_tail = g;
        pthread_cond_signal(&hub->eval_cv);
    }
    hub->answerer_done = 1;
    pthread_cond_signal(&hub->eval_cv);
    pthread_mutex_unlock(&hub->mu);
    return NULL;
}

/* ---- the evaluator ---------------------------------------------------------- */

/* Gives answered groups, in order, to the policy engine and recycles them.
 * Ends when the answerer has ended and every group is fed. */
static void *evaluator_main(void *arg)
{
    vigil_hub *hub = arg;
    pthread_setname_np(pthread_self(), "vigil-eval");
    pthread_mutex_lock(&hub->mu);
    for (;;) {
        while (!hub->to_feed && !hub->answerer_done)
            pthread_cond_wait(&hub->eval_cv, &hub->mu);
        commit_group *g = hub->to_feed;
        if (!g)
            break;
        hub->to_feed = g->next;
        if (!hub->to_feed)
            hub->to_feed_tail = NULL;
        g->next = NULL;
        pthread_mutex_unlock(&hub->mu);
        feed_engine(hub, g);
        pthread_mutex_lock(&hub->mu);
        group_recycle(hub, g);
        hub->npost--;
        pthread_cond_signal(&hub->cv);
    }
    pthread_mutex_unlock(&hub->mu);
    return NULL;
}

/* ---- events ticker ---------------------------------------------------------- */

static void *ticker_main(void *arg)
{
    vigil_hub *hub = arg;
    pthread_setname_np(pthread_self(), "vigil-events");
    uint64_t last_samples = 0, last_batches = 0;
    int64_t last = vigil__monotonic_ns();
    int64_t next_expire = last + 30LL * 1000000000;
    pthread_mutex_lock(&hub->mu);
    last_samples = hub->samples;
    last_batches = hub->batches;
    int64_t next_event = last + hub->events_interval_ms * 1000000;
    int64_t next_policy = last + hub->policy_interval_ms * 1000000;
    while (!hub->stopping) {
        int64_t deadline = next_event < next_policy ? next_event : next_policy;
        while (!hub->stopping && vigil__monotonic_ns() < deadline)
            vigil__cond_wait_until(&hub->tick_cv, &hub->mu, ns_to_ms_up(deadline));
        if (hub->stopping)
            break;
        if (vigil__monotonic_ns() >= next_policy) {
            /* the engine's timers: absent rules, verify deadlines, flap settling */
            pthread_mutex_unlock(&hub->mu);
            uint64_t epoch;
            int trc = vigil__hub_may_act(hub, &epoch)
                          ? vigil_engine_tick(hub->engine, vigil__hub_now(hub))
                          : VIGIL_OK;
            if (trc)
                vigil__hub_engine_error(hub, "tick", trc);
            /* rules changed without a hub reload (vigil_hub_engine()), or at start */
            vigil__hub_windows_sync(hub);
            next_policy = vigil__monotonic_ns() + hub->policy_interval_ms * 1000000;
            pthread_mutex_lock(&hub->mu);
            if (hub->stopping)
                break;
            if (vigil__monotonic_ns() < next_event)
                continue;
        }
        next_event = vigil__monotonic_ns() + hub->events_interval_ms * 1000000;
        uint64_t s = hub->samples, b = hub->batches;
        size_t series = hub->series, q = hub->qlen;
        pthread_mutex_unlock(&hub->mu);
        int64_t now = vigil__monotonic_ns();
        double secs = (double)(now - last) / 1e9;
        if (secs <= 0)
            secs = 1e-9;
        char data[320];
        snprintf(data, sizeof(data),
                 "{\"ts\":%lld,\"samples\":%llu,\"batches\":%llu,\"samples_per_second\":%.1f,"
                 "\"batches_per_second\":%.2f,\"series\":%zu,\"queue\":%zu}",
                 (long long)vigil__now_ms(), (unsigned long long)s, (unsigned long long)b,
                 (double)(s - last_samples) / secs, (double)(b - last_batches) / secs, series, q);
        uint64_t dropped_before = vigil__events_dropped(hub->events);
        vigil__events_publish(hub->events, "ingest", data);
        uint64_t dropped = vigil__events_dropped(hub->events) - dropped_before;
        if (dropped)
            vigil__prom_add(hub->m_dropped, NULL, (double)dropped);
        last = now;
        last_samples = s;
        last_batches = b;
        if (now >= next_expire) {
            pthread_mutex_lock(&hub->win_mu);
            vigil_window_set_expire(hub->windows, vigil__now_ms());
            pthread_mutex_unlock(&hub->win_mu);
            next_expire = now + 30LL * 1000000000;
        }
        pthread_mutex_lock(&hub->mu);
    }
    pthread_mutex_unlock(&hub->mu);
    return NULL;
}

int vigil_hub_start(vigil_hub *hub)
{
    if (!hub)
        return vigil__error_set(VIGIL_EINVAL, "hub: NULL argument");
    pthread_mutex_lock(&hub->mu);
    int started = hub->started, stopped = hub->stopping;
    pthread_mutex_unlock(&hub->mu);
    if (stopped)
        return vigil__error_set(VIGIL_ECLOSED, "hub: stopped");
    if (started)
        return vigil__error_set(VIGIL_EINVAL, "hub: already started");
    if (vigil__hub_fanout_start(hub))
        return VIGIL_ERROR;
    /* before the ticker: no request of this run exists while it runs; a
     * clustered hub recovers when it becomes the leader (cluster.c) */
    if (!hub->cluster)
        vigil__hub_recover_actions(hub);
    /* the pipeline, last stage first: evaluator, answerer, committer */
    int made = 0;
    if (pthread_create(&hub->evaluator, NULL, evaluator_main, hub) == 0)
        made++;
    if (made == 1 && pthread_create(&hub->answerer, NULL, answerer_main, hub) == 0)
        made++;
    if (made == 2 && pthread_create(&hub->committer, NULL, committer_main, hub) == 0)
        made++;
    if (made < 3) {
        pthread_mutex_lock(&hub->mu);
        hub->committer_done = 1;
        hub->answerer_done = made < 2;
        pthread_cond_signal(&hub->answer_cv);
        pthread_cond_signal(&hub->eval_cv);
        pthread_mutex_unlock(&hub->mu);
        if (made == 2)
            pthread_join(hub->answerer, NULL);
        if (made >= 1)
            pthread_join(hub->evaluator, NULL);
        hub->committer_done = hub->answerer_done = 0;
        return vigil__error_set(VIGIL_ERROR, "hub: cannot start the %s thread",
                                made == 0   ? "evaluator"
                                : made == 1 ? "answering"
                                            : "committer");
    }
    if (pthread_create(&hub->ticker, NULL, ticker_main, hub)) {
        pthread_mutex_lock(&hub->mu);
        hub->stopping = 1;
        pthread_cond_broadcast(&hub->cv);
        pthread_mutex_unlock(&hub->mu);
        pthread_join(hub->committer, NULL);
        pthread_join(hub->answerer, NULL);
        pthread_join(hub->evaluator, NULL);
        return vigil__error_set(VIGIL_ERROR, "hub: cannot start the events thread");
    }
    pthread_mutex_lock(&hub->mu);
    hub->started = 1;
    size_t series = hub->series;
    pthread_mutex_unlock(&hub->mu);
    if (vigil__hub_cluster_start(hub) != VIGIL_OK)
        vigil__log(&hub->logger, VIGIL_LOG_ERROR, "hub", "clustering not started; following",
                   "error=\"%s\"", vigil_error_last()->message);
    vigil__log(&hub->logger, VIGIL_LOG_INFO, "hub", "started", "series=%zu queue_max=%zu", series,
               hub->queue_max);
    vigil__hub_warn_no_dispatcher(hub);
    return VIGIL_OK;
}

void vigil_hub_stop(vigil_hub *hub)
{
    if (!hub)
        return;
    pthread_mutex_lock(&hub->mu);
    if (hub->stopped) {
        pthread_mutex_unlock(&hub->mu);
        return;
    }
    int started = hub->started;
    hub->stopping = 1;
    size_t queued = hub->qlen;
    pthread_mutex_unlock(&hub->mu);
    /* first: no evaluation nor dispatch from here on, and the lease goes to
     * another hub at once */
    vigil__hub_cluster_stop(hub);
    pthread_mutex_lock(&hub->mu);
    pthread_cond_broadcast(&hub->cv);
    pthread_cond_broadcast(&hub->tick_cv);
    pthread_mutex_unlock(&hub->mu);
    if (started) {
        vigil__log(&hub->logger, VIGIL_LOG_INFO, "hub", "stopping: committing queued ingests",
                   "queued=%zu", queued);
        pthread_join(hub->committer, NULL);
        pthread_join(hub->answerer, NULL);
        pthread_join(hub->evaluator, NULL);
        pthread_join(hub->ticker, NULL);
    }
    /* after the threads that request actions; results of requests not
     * delivered are recorded ("cancelled") and published before the bus closes */
    vigil__hub_stop_dispatch(hub);
    vigil__events_close(hub->events);
    vigil__hub_fanout_stop(hub);
    pthread_mutex_lock(&hub->mu);
    hub->stopped = 1;
    pthread_mutex_unlock(&hub->mu);
    if (started)
        vigil__log(&hub->logger, VIGIL_LOG_INFO, "hub", "stopped", "samples=%llu batches=%llu",
                   (unsigned long long)hub->samples, (unsigned long long)hub->batches);
}

/* ---- misc ------------------------------------------------------------------ */

int vigil_hub_publish(vigil_hub *hub, const char *type, const char *data_json)
{
    if (!hub || !type || !data_json)
        return vigil__error_set(VIGIL_EINVAL, "hub publish: NULL argument");
    size_t tl = strlen(type);
    if (tl == 0 || tl > EVENT_TYPE_MAX)
        return vigil__error_set(VIGIL_EINVAL, "hub publish: type must be 1-%d bytes",
                                EVENT_TYPE_MAX);
    for (const char *p = type; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '.'))
            return vigil__error_set(VIGIL_EINVAL, "hub publish: type may hold only [a-z0-9_.]");
    size_t dl = strlen(data_json);
    if (dl > EVENT_DATA_MAX)
        return vigil__error_set(VIGIL_ELIMIT, "hub publish: data larger than %d bytes",
                                EVENT_DATA_MAX);
    if (!vigil__utf8_valid(data_json, dl))
        return vigil__error_set(VIGIL_EENCODING, "hub publish: data is not valid UTF-8");
    return vigil__events_publish(hub->events, type, data_json);
}

int vigil_hub_stats_get(vigil_hub *hub, vigil_hub_stats *out)
{
    if (!hub || !out)
        return vigil__error_set(VIGIL_EINVAL, "hub stats: NULL argument");
    unsigned int version = out->version;
    if (vigil__version_check("hub stats", version, VIGIL_HUB_STATS_VERSION))
        return VIGIL_EVERSION;
    memset(out, 0, sizeof(*out));
    out->version = version;
    pthread_mutex_lock(&hub->mu);
    out->samples = hub->samples;
    out->batches = hub->batches;
    out->duplicates = hub->duplicates;
    out->commits = hub->commits;
    out->rejected = hub->rejected;
    out->series = hub->series;
    out->queue_depth = hub->qlen;
    pthread_mutex_unlock(&hub->mu);
    pthread_mutex_lock(&hub->win_mu);
    out->windows = vigil_window_set_count(hub->windows);
    pthread_mutex_unlock(&hub->win_mu);
    out->subscribers = vigil__events_subscribers(hub->events);
    return VIGIL_OK;
}

int vigil_hub_window_aggregate(vigil_hub *hub, const char *series_key, vigil_window_agg agg,
                               int64_t duration_ms, int64_t now_ms, double *out)
{
    if (!hub || !series_key || !out)
        return vigil__error_set(VIGIL_EINVAL, "hub window: NULL argument");
    pthread_mutex_lock(&hub->win_mu);
    vigil_window *w = vigil_window_set_get(hub->windows, series_key);
    int rc = w ? vigil_window_aggregate(w, agg, duration_ms, now_ms, out)
               : vigil__error_set(VIGIL_ENOTFOUND, "hub window: no window for %.200s", series_key);
    pthread_mutex_unlock(&hub->win_mu);
    return rc;
}

vigil_store *vigil_hub_store(vigil_hub *hub)
{
    return hub ? hub->store : NULL;
}
