/*
 * Private interface of lib/remediator: the remediator object shared by its
 * files (remediator.c: life cycle, workers, exactly-once; approvals.c:
 * approvals and releases; recovery.c: unfinished requests at start-up;
 * guards.c: guard state; routes.c: HTTP; config.c: remediator.yaml;
 * hubpost.c: late results to the hub). Never installed.
 */
#ifndef VIGIL_REMEDIATOR_INT_H
#define VIGIL_REMEDIATOR_INT_H

#include <pthread.h>

#include "api/internal.h"
#include "internal/common.h"
#include "vigil/remediator.h"
#include "vigil/signature.h"
#include "vigil/sys/action.h"

/* Store state keys. */
#define REM_KEY_TARGET   "remediator/t/"
#define REM_KEY_APPROVAL "remediator/approval/"
#define REM_KEY_EPOCH    "remediator/epoch" /* the highest leader epoch admitted */
/* exit_code of a FAILED result that was never recorded in the ledger
 * (stopping, store failure): POST /v1/execute answers it 503 so the hub
 * delivers the request again, instead of 200 with a final result. */
#define REM_EXIT_UNRECORDED (-2)

/* An owned copy of a request. */
typedef struct rem_req {
    char *id;
    char *action;
    char *target;
    char *reason;
    char *policy;
    vigil_action_param *params; /* keys and values owned */
    size_t nparams;
    int dry_run;
} rem_req;

int vigil__rem_req_copy(rem_req *dst, const vigil_action_request *src);
void vigil__rem_req_free(rem_req *r);
/* A borrowed view of an owned copy. */
void vigil__rem_req_view(const rem_req *r, vigil_action_request *out);
/* {"k":"v",...} */
int vigil__rem_params_json(vigil_buf *out, const rem_req *r);
/* Parses params_json (as stored in the ledger) into r->params. */
int vigil__rem_params_parse(rem_req *r, const char *json);

/* ---- guard state (guards.c) ---- */
typedef struct rem_cooldown {
    char *action;
    int64_t last_ms;
} rem_cooldown;

typedef struct rem_target {
    char *target;
    int64_t *attempts; /* start times, oldest first, at most max_attempts */
    size_t nattempts;
    int64_t last_request_ms;
    int quarantined;
    rem_cooldown *cds;
    size_t ncds, ccds;
    int running; /* in memory only: an action runs on it now */
    struct rem_target *next;
} rem_target;

#define REM_TARGET_BUCKETS 256

typedef struct rem_guards {
    pthread_mutex_t mu;
    rem_target *buckets[REM_TARGET_BUCKETS];
    size_t ntargets;
    double tokens;
    int64_t tokens_ms; /* when tokens was last refilled; 0: never */
    unsigned int running;
} rem_guards;

/* Guard phases. */
enum { REM_PHASE_NEW = 0, REM_PHASE_APPROVED = 1 };
/* Outcomes of vigil__rem_guards_check(). */
enum { REM_GUARD_PASS = 0, REM_GUARD_REFUSE = 1, REM_GUARD_APPROVAL = 2 };

/* ---- the remediator ---- */
typedef struct rem_waiter {
    vigil_remediator_result_cb cb;
    vigil_action_done_cb plain;
    void *payload;
    struct rem_waiter *next;
} rem_waiter;

typedef struct rem_flight {
    char *id;
    rem_waiter *waiters;
    struct rem_flight *next;
} rem_flight;

enum { REM_JOB_NEW = 0, REM_JOB_APPROVED = 1 };

typedef struct rem_job {
    int kind;
    rem_req req;
    rem_flight *flight;
    struct rem_job *next;
} rem_job;

typedef struct rem_approval {
    rem_req req;
    int64_t expires_ms;
    struct rem_approval *next;
} rem_approval;

typedef struct vigil__hubpost vigil__hubpost;

struct vigil_remediator {
    vigil_remediator_options o; /* copied; strings below */
    char *store_url;
    char *secret;
    size_t secret_len;
    char *base_dir;
    vigil_logger logger;

    vigil_store *store;
    vigil_audit *audit;
    vigil_action_registry *registry;
    vigil__hubpost *hub;

    rem_guards g;

    pthread_mutex_t mu; /* queue, flights, approvals, state flags */
    pthread_cond_t cv;  /* queue and stop (workers) */
    pthread_cond_t tcv; /* ticker (monotonic clock) */
    int g_inited;
    rem_job *qhead, *qtail;
    size_t qlen;
    rem_flight *flights;
    rem_approval *approvals;
    int started, stopping, stopped;
    pthread_t *threads;
    size_t nthreads;
    pthread_t ticker;
    int ticker_started;
    uint64_t mint_seq;

    /* refused signatures waiting for their aggregated audit row (authlog.c) */
    pthread_mutex_t authmu;
    uint64_t auth_pending, auth_total;
    int64_t auth_last_ms; /* monotonic; when the last row was written */
    char auth_why[257];
    char auth_remote[65];

    vigil__prom *prom;
    vigil__prom_family *m_exec;
    vigil__prom_family *m_refused;
    vigil__prom_family *m_latency;
    vigil__prom_family *m_pending;

    /* the highest leader epoch admitted (epoch.c), under epoch_mu */
    pthread_mutex_t epoch_mu;
    int epoch_loaded;
    uint64_t epoch_highest;
};

/* ---- epoch.c: fencing of clustered hubs ---- */
/* Admits a request of `epoch` (0: the request has none): VIGIL_OK, storing
 * it first when it is the highest so far; VIGIL_ECONFLICT when older than
 * the highest admitted, or 0 after any epoch was seen; the store's codes
 * (nothing admitted). *highest: the highest epoch admitted. */
int vigil__rem_epoch_admit(vigil_remediator *rem, uint64_t epoch, uint64_t *highest);
/* Audits ("epoch_refused"), counts and logs a refused request. */
void vigil__rem_epoch_audit(vigil_remediator *rem, const vigil_action_request *rq, uint64_t epoch,
                            uint64_t highest, const char *remote);

/* At most one audit row of refused signatures per this many ms. */
#define REM_AUTH_AUDIT_MS 1000
/* Counts a refused signature; writes the aggregated audit row when the
 * period since the last one has passed (lib/remediator/authlog.c). */
void vigil__rem_auth_failure(vigil_remediator *rem, const char *why, const char *remote);
/* Writes the pending aggregated row when the period has passed, or at once
 * with `force` (at stop). */
void vigil__rem_auth_flush(vigil_remediator *rem, int force);

/* Limits of the texts written to the ledger and the audit log. */
#define LEDGER_TEXT_MAX   4096
#define AUDIT_TEXT_MAX    1024
#define AUDIT_OUTPUT_MAX  4096
#define RESULT_OUTPUT_MAX (1u << 20)
#define WHO_MAX           256

int64_t vigil__rem_now(vigil_remediator *rem);

/* ---- remediator.c: shared by approvals.c and recovery.c ---- */
/* Appends s as a JSON string clipped to max bytes, "null" for NULL. */
int vigil__rem_put_clipped(vigil_buf *b, const char *s, size_t max);
/* Appends `head` (such as ",\"reason\":"), then s as vigil__rem_put_clipped(). */
int vigil__rem_put_field(vigil_buf *b, const char *head, const char *s, size_t max);
/* The registered name of the action (its type's label), or "unknown". */
const char *vigil__rem_action_label(vigil_remediator *rem, const char *action);
/* Appends an audit row; *seq and mac receive its position when not NULL. */
int vigil__rem_audit_row(vigil_remediator *rem, const char *kind, const char *id, vigil_buf *data,
                         int64_t *seq, char mac[VIGIL_AUDIT_MAC_HEX]);
void vigil__rem_ledger_status(vigil_remediator *rem, const char *id, const char *status,
                              int64_t seq, const char *mac);
/* Answers the waiters of flight with a FAILED result that is not recorded. */
void vigil__rem_deliver_unrecorded(vigil_remediator *rem, rem_flight *flight, const char *id,
                                   const char *reason, const char *message);
/* Records the final result (audit, ledger) and answers the waiters. */
void vigil__rem_finalize(vigil_remediator *rem, const rem_req *req, vigil_action_result *res,
                         rem_flight *flight, int late);
/* Finalizes req as REFUSED with reason and message; retry_after_ms (0: none)
 * goes into the result's retry_after_ms. */
void vigil__rem_refuse(vigil_remediator *rem, const rem_req *req, const char *reason,
                       const char *message, int64_t retry_after_ms, rem_flight *flight, int late);
void vigil__rem_job_free(rem_job *job);
/* Appends a job to the run queue and wakes a worker. Called with rem->mu held. */
void vigil__rem_queue_push(vigil_remediator *rem, rem_job *job);

/* ---- approvals.c ---- */
void vigil__rem_approval_free(rem_approval *a);

/* ---- recovery.c ---- */
/* Settles what a previous run left unfinished and parks again the requests
 * waiting for approval. Called by vigil_remediator_new. */
int vigil__rem_recover(vigil_remediator *rem);

int vigil__rem_guards_init(vigil_remediator *rem);
void vigil__rem_guards_free(vigil_remediator *rem);
/* Checks busy .. concurrency (and approval in REM_PHASE_NEW) for `req`; on
 * PASS the execution is counted (running, cooldown, attempt, token) and the
 * target state is persisted. On REFUSE, *reason is the guard name, msg a
 * message and *retry_after the ms until a guard that ends by itself (cooldown,
 * quarantine) lets the same request pass, 0 for the others. */
int vigil__rem_guards_check(vigil_remediator *rem, const rem_req *req, int phase,
                            int approval_required, const char **reason, char *msg, size_t msize,
                            int64_t *retry_after);
/* The execution on `target` has finished. */
void vigil__rem_guards_done(vigil_remediator *rem, const char *target);
/* Ends a quarantine; *released 1 when there was one. */
int vigil__rem_guards_release(vigil_remediator *rem, const char *target, int *released);
/* {"target":..,"attempts":n,"last_request":ms} entries of quarantined targets. */
int vigil__rem_guards_quarantined_json(vigil_remediator *rem, vigil_buf *out);

/* ---- results ---- */
/* {"id","status","reason","output","duration_ms","audit":{...}} */
int vigil__rem_result_json(vigil_buf *out, const vigil_action_result *r, int64_t seq,
                           const char *mac);

/* ---- hub poster (hubpost.c) ---- */
int vigil__hubpost_new(vigil__hubpost **out, const vigil_remediator_options *o, const void *secret,
                       size_t secret_len, const vigil_logger *logger);
int vigil__hubpost_start(vigil__hubpost *hp);
void vigil__hubpost_stop(vigil__hubpost *hp);
void vigil__hubpost_free(vigil__hubpost *hp);
/* Queues `body` (copied) for POST <hub>/v1/actions/<id>/result. */
int vigil__hubpost_enqueue(vigil__hubpost *hp, const char *id, const char *body, size_t len);

#endif
