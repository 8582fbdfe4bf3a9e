/* Private state of the hub shared by lib/hub/hub.c (ingest, committer,
 * events), lib/hub/routes.c (HTTP routes) and lib/hub/config.c. */
#ifndef VIGIL_HUB_INT_H
#define VIGIL_HUB_INT_H

#include "api/internal.h"
#include "hub/events.h"
#include "vigil/hub.h"

#include <pthread.h>

typedef struct ingest_req ingest_req;
typedef struct commit_group commit_group;

struct vigil_hub {
    char *store_url;
    int64_t retention_ms;
    int64_t retention_interval_ms;
    size_t queue_max;
    size_t group_max_samples;
    int64_t max_future_ms;
    size_t max_batch_metrics;
    int64_t events_interval_ms;
    vigil_logger logger;

    vigil_store *store;  /* the committer's */
    vigil_store *reader; /* queries: a second connection, or `store` for :memory: */
    vigil_window_set *windows;
    pthread_mutex_t win_mu;
    vigil__events *events;

    pthread_mutex_t mu;
    pthread_cond_t cv;                /* committer: work queued or stopping */
    pthread_cond_t tick_cv;           /* ticker: stopping */
    commit_group *open;               /* the group new ingests join */
    commit_group *ready, *ready_tail; /* sealed groups, oldest first */
    commit_group *spare;              /* a committed group kept for its memory */
    size_t qlen;                      /* ingests waiting for their commit */
    size_t qsamples;                  /* their samples */
    vigil_batch *idbatch;             /* committer: records one batch id */
    int started, stopping, stopped;
    pthread_t committer, ticker;

    /* counters (under mu) */
    uint64_t samples, batches, duplicates, commits, rejected;
    size_t series;

    /* metrics */
    vigil__prom *prom;
    vigil__prom_family *m_samples;
    vigil__prom_family *m_batches;
    vigil__prom_family *m_duplicates;
    vigil__prom_family *m_rejected;
    vigil__prom_family *m_commit;
    vigil__prom_family *m_group;
    vigil__prom_family *m_dropped;
    vigil__prom_family *m_retention;
};

/* Counts a refused ingest under `reason` (an error code such as "invalid_json"). */
void vigil__hub_rejected(vigil_hub *hub, const char *reason);
/* The error code ("invalid_metric", "overloaded", ...) a status is answered with. */
const char *vigil__hub_reason(int status);
/* Non-zero (with the error recorded) when a new ingest would be refused for
 * a full queue: checked before decoding a body. */
int vigil__hub_full(vigil_hub *hub);
/* Validates and queues a batch; `owned`: the hub frees it after the callback.
 * Counts refusals. */
int vigil__hub_enqueue(vigil_hub *hub, vigil_batch *batch, int owned, vigil_hub_ingest_cb cb,
                       void *payload);

#endif
