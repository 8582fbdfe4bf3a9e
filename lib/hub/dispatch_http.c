/* The hub's HTTP dispatcher: worker threads POST each action request to the
 * remediator's /v1/execute, signed with X-Vigil-Signature, and wait for the
 * answer (the remediator answers once the action has finished). Network
 * errors, 5xx, 429 and 408 are retried with capped exponential backoff and
 * jitter, a bounded number of times; any other 4xx is final. A request id is
 * delivered by one worker at a time. Requests go through lib/http, one handle
 * per worker, so each worker keeps its connection to the remediator alive. */
#include "core/cond.h"
#include "crypto/crypto.h"
#include "hub/dispatch.h"
#include "http/http.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define EXECUTE_PATH    "/v1/execute"
#define URL_MAX         4096
#define DEF_TIMEOUT_MS  (5 * 60 * 1000)
#define DEF_CONNECT_MS  5000
#define DEF_ATTEMPTS    5
#define DEF_BACKOFF_MS  500
#define DEF_BACKOFF_MAX 30000
#define DEF_WORKERS     2
#define DEF_QUEUE       1024
#define WORKERS_MAX     64
#define RESP_MAX        (VIGIL_ACTION_OUTPUT_MAX + 65536)
#define ERR_OUTPUT_MAX  4096
#define COMPONENT       "hub"

typedef struct job {
    char *id;
    char *action;
    vigil_buf body;
    vigil__dispatch_done_cb done_ex; /* internal callers: with the audit checkpoint */
    vigil_action_done_cb done;       /* vigil_action_dispatcher callers */
    void *payload;
    struct job *next;
} job;

typedef struct worker {
    vigil__dispatch *d;
    pthread_t thread;
    int started;
    vigil__http *http;
    job *cur;
    vigil__http_response resp;
} worker;

struct vigil__dispatch {
    char *url;
    char *ca_file, *cert_file, *key_file; /* TLS of the link, or NULL */
    unsigned char *secret;
    size_t secret_len;
    int64_t timeout_ms, connect_ms, backoff_ms, backoff_max_ms;
    unsigned int attempts;
    size_t queue_max;
    vigil_logger logger;

    pthread_mutex_t mu;
    pthread_cond_t cv; /* work queued, or stopping */
    job *head, *tail;
    size_t qlen;
    worker *workers;
    size_t nworkers;
    int stopping; /* also read without the lock by the progress callback */
    int stopped;
    uint64_t rng;
};

static int is_stopping(vigil__dispatch *d)
{
    return __atomic_load_n(&d->stopping, __ATOMIC_ACQUIRE);
}

static void job_free(job *j)
{
    if (!j)
        return;
    vigil__free(j->id);
    vigil__free(j->action);
    vigil_buf_dispose(&j->body);
    vigil__free(j);
}

static void job_finish(job *j, const vigil_action_result *r, int64_t seq, const char *mac)
{
    if (j->done_ex)
        j->done_ex(r, seq, mac, j->payload);
    else
        j->done(r, j->payload);
}

/* ---- one delivery ------------------------------------------------------------ */

static int stop_requested(void *payload)
{
    return is_stopping(payload);
}

/* Sets a FAILED result with `reason` and a message as output. */
static void fail(vigil_action_result *r, const char *reason, const char *msg, size_t len)
{
    r->status = VIGIL_ACTION_FAILED;
    vigil_action_result_set_reason(r, reason);
    if (msg)
        vigil_action_result_set_output(r, msg, len < ERR_OUTPUT_MAX ? len : ERR_OUTPUT_MAX);
}

static void fail_msg(vigil_action_result *r, const char *reason, const char *msg)
{
    fail(r, reason, msg, strlen(msg));
}

typedef enum attempt_outcome { FINAL, RETRY, CANCELLED } attempt_outcome;

int vigil__dispatch_verify(const vigil__dispatch *d, const char *header, const void *body,
                           size_t len)
{
    return vigil_signature_verify(header, d->secret, d->secret_len, body ? body : "",
                                  body ? len : 0, vigil__now_ms() / 1000, 0);
}

static attempt_outcome attempt(worker *w, job *j, vigil_action_result *r, int64_t *seq, char *mac)
{
    vigil__dispatch *d = w->d;
    vigil_buf sig = VIGIL_BUF_INIT, hdr = VIGIL_BUF_INIT;
    int rc = vigil__buf_puts(&hdr, VIGIL_SIGNATURE_HEADER ": ");
    if (!rc)
        rc = vigil_signature_make(&sig, d->secret, d->secret_len, vigil__now_ms() / 1000,
                                  j->body.ptr, j->body.size);
    if (!rc)
        rc = vigil__buf_put(&hdr, sig.ptr, sig.size);
    const char *lines[] = {"Content-Type: application/json", "Expect:", "Accept: application/json",
                           hdr.ptr};
    vigil_buf_dispose(&sig);
    if (rc) {
        vigil_buf_dispose(&hdr);
        fail_msg(r, "internal_error", vigil_error_last()->message);
        return FINAL;
    }
    vigil__http_request req = VIGIL__HTTP_REQUEST_INIT;
    req.url = d->url;
    req.ca_file = d->ca_file;
    req.cert_file = d->cert_file;
    req.key_file = d->key_file;
    req.body = j->body.ptr ? j->body.ptr : "";
    req.body_len = j->body.size;
    req.headers = lines;
    req.nheaders = VIGIL__ARRAY_LEN(lines);
    req.user_agent = "vigil-hub/" VIGIL_VERSION;
    req.connect_timeout_ms = d->connect_ms;
    req.timeout_ms = d->timeout_ms;
    req.max_response = RESP_MAX;
    req.overflow = VIGIL__HTTP_OVERFLOW_CLIP;
    req.cancel_cb = stop_requested;
    req.cancel_payload = d;
    int hrc = vigil__http_perform(w->http, &req, &w->resp);
    vigil_buf_dispose(&hdr);
    long status = w->resp.status;

    if (hrc == VIGIL_ECLOSED || (hrc != VIGIL_OK && is_stopping(d))) {
        fail_msg(r, "cancelled", "the hub stopped before the remediator answered");
        return CANCELLED;
    }
    if (hrc != VIGIL_OK) {
        fail_msg(r, "network", w->resp.error[0] ? w->resp.error : vigil_error_last()->message);
        return RETRY;
    }
    const char *body = w->resp.body.ptr ? w->resp.body.ptr : "";
    if ((status == 200 || status == 202) && !w->resp.clipped) {
        /* the remediator signs its answers: a result or an audit checkpoint
         * from anyone else is not taken */
        char sv[256];
        const char *sh =
            vigil__http_response_header(&w->resp, VIGIL_SIGNATURE_HEADER, sv, sizeof(sv));
        if (vigil__dispatch_verify(d, sh, body, w->resp.body.size) != VIGIL_OK) {
            char msg[384];
            snprintf(msg, sizeof(msg), "the remediator's answer is not signed with the secret: %s",
                     vigil_error_last()->message);
            fail_msg(r, "bad_signature", msg);
            return FINAL;
        }
    }
    if (status == 200 || status == 202) {
        if (!w->resp.clipped &&
            vigil__hub_result_parse(body, w->resp.body.size, 0, r, seq, mac) == VIGIL_OK &&
            (!r->id || strcmp(r->id, j->id) == 0)) {
            vigil_action_result_set_id(r, j->id);
            if (status == 202 && r->status != VIGIL_ACTION_PENDING_APPROVAL)
                r->status = VIGIL_ACTION_PENDING_APPROVAL;
            return FINAL;
        }
        if (status == 202) {
            /* accepted for approval, whatever the body says */
            vigil_action_result_clear(r);
            vigil_action_result_set_id(r, j->id);
            r->status = VIGIL_ACTION_PENDING_APPROVAL;
            *seq = 0;
            mac[0] = '\0';
            return FINAL;
        }
        char msg[512];
        snprintf(msg, sizeof(msg), "the remediator's answer is not a result for \"%s\": %s", j->id,
                 w->resp.clipped ? "too large" : vigil_error_last()->message);
        vigil_action_result_clear(r);
        *seq = 0;
        mac[0] = '\0';
        fail_msg(r, "bad_response", msg);
        return FINAL;
    }
    char reason[32];
    snprintf(reason, sizeof(reason), "http_%ld", status);
    /* a remediator that saw a newer leader's epoch: this hub is fenced out */
    if (status == 409 && !w->resp.clipped && strstr(body, "\"stale_epoch\"")) {
        char sv[256];
        const char *sh =
            vigil__http_response_header(&w->resp, VIGIL_SIGNATURE_HEADER, sv, sizeof(sv));
        if (vigil__dispatch_verify(d, sh, body, w->resp.body.size) == VIGIL_OK)
            snprintf(reason, sizeof(reason), "%s", VIGIL__STALE_EPOCH);
    }
    fail(r, reason, body, w->resp.body.size);
    /* 5xx, 429 (the remediator's queue is full) and 408 say nothing about the
     * request itself: deliver it again (its id makes that safe). */
    return status >= 500 || status == 429 || status == 408 ? RETRY : FINAL;
}

/* Sleeps `ms` unless the dispatcher stops first; returns non-zero when stopping. */
static int backoff_wait(vigil__dispatch *d, int64_t ms)
{
    int64_t deadline = vigil__monotonic_ms() + ms;
    pthread_mutex_lock(&d->mu);
    while (!d->stopping) {
        int64_t now = vigil__monotonic_ms();
        if (now >= deadline)
            break;
        vigil__cond_wait_until(&d->cv, &d->mu, deadline);
    }
    int stopping = d->stopping;
    pthread_mutex_unlock(&d->mu);
    return stopping;
}

static void deliver(worker *w, job *j)
{
    vigil__dispatch *d = w->d;
    vigil_action_result r = VIGIL__ACTION_RESULT_EMPTY;
    int64_t seq = 0;
    char mac[VIGIL__AUDIT_MAC_HEX] = "";
    for (unsigned int n = 1;; n++) {
        vigil_action_result_clear(&r);
        seq = 0;
        mac[0] = '\0';
        attempt_outcome o = attempt(w, j, &r, &seq, mac);
        if (o != RETRY)
            break;
        if (n >= d->attempts) {
            vigil__log(&d->logger, VIGIL_LOG_WARN, COMPONENT,
                       "remediator unreachable; giving up on the action",
                       "id=%s attempts=%u reason=%s", j->id, n, r.reason ? r.reason : "");
            break;
        }
        int64_t ceiling = vigil__backoff_ceiling(d->backoff_ms, d->backoff_max_ms, n);
        pthread_mutex_lock(&d->mu);
        int64_t delay = vigil__backoff_jitter(ceiling, &d->rng);
        pthread_mutex_unlock(&d->mu);
        vigil__log(&d->logger, VIGIL_LOG_WARN, COMPONENT, "remediator delivery failed; retrying",
                   "id=%s attempt=%u reason=%s retry_in_ms=%lld", j->id, n,
                   r.reason ? r.reason : "", (long long)delay);
        if (backoff_wait(d, delay)) {
            vigil_action_result_clear(&r);
            fail_msg(&r, "cancelled", "the hub stopped before the remediator answered");
            break;
        }
    }
    if (!r.id)
        vigil_action_result_set_id(&r, j->id);
    job_finish(j, &r, seq, mac);
    vigil_action_result_clear(&r);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    vigil__dispatch *d = w->d;
    pthread_setname_np(pthread_self(), "vigil-dispatch");
    pthread_mutex_lock(&d->mu);
    for (;;) {
        while (!d->stopping && !d->head)
            pthread_cond_wait(&d->cv, &d->mu);
        if (d->stopping)
            break;
        job *j = d->head;
        d->head = j->next;
        if (!d->head)
            d->tail = NULL;
        d->qlen--;
        w->cur = j;
        pthread_mutex_unlock(&d->mu);
        deliver(w, j);
        pthread_mutex_lock(&d->mu);
        w->cur = NULL;
        pthread_mutex_unlock(&d->mu);
        job_free(j);
        pthread_mutex_lock(&d->mu);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

/* ---- lifecycle ------------------------------------------------------------------ */

static int setup_worker(vigil__dispatch *d, worker *w)
{
    w->d = d;
    return vigil__http_new(&w->http);
}

static int check_url(const char *url)
{
    if (!url || !*url)
        return vigil__error_set(VIGIL_EINVAL, "remediator.url: required");
    if (strlen(url) > URL_MAX)
        return vigil__error_set(VIGIL_EINVAL, "remediator.url: longer than %d bytes", URL_MAX);
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return vigil__error_set(VIGIL_EINVAL,
                                    "remediator.url: contains a space or control character");
    vigil__http_url u;
    int rc = vigil__http_url_parse(&u, url, NULL, 0);
    if (rc == VIGIL_ENOMEM)
        ; /* returned as is */
    else if (rc || !u.scheme)
        rc = vigil__error_set(VIGIL_EINVAL, "remediator.url: \"%.200s\" is not a valid URL", url);
    else if (strcmp(u.scheme, "http") != 0 && strcmp(u.scheme, "https") != 0)
        rc = vigil__error_set(VIGIL_EINVAL,
                              "remediator.url: scheme \"%.20s\" is not allowed (http or https)",
                              u.scheme);
    else if (!u.host || !*u.host)
        rc = vigil__error_set(VIGIL_EINVAL, "remediator.url: \"%.200s\" has no host", url);
    else if (u.user)
        rc = vigil__error_set(VIGIL_EINVAL, "remediator.url: credentials in a URL are refused");
    else if (u.query)
        rc = vigil__error_set(VIGIL_EINVAL, "remediator.url: takes no query string");
    vigil__http_url_dispose(&u);
    return rc;
}

void vigil__dispatch_free(vigil__dispatch *d)
{
    if (!d)
        return;
    vigil__dispatch_stop(d);
    for (size_t i = 0; i < d->nworkers; i++) {
        vigil__http_free(d->workers[i].http);
        vigil__http_response_dispose(&d->workers[i].resp);
    }
    vigil__free(d->workers);
    if (d->secret) {
        memset(d->secret, 0, d->secret_len);
        vigil__free(d->secret);
    }
    vigil__free(d->url);
    vigil__free(d->ca_file);
    vigil__free(d->cert_file);
    vigil__free(d->key_file);
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    vigil__free(d);
}

int vigil__dispatch_new(vigil__dispatch **out, const vigil__dispatch_options *o)
{
    *out = NULL;
    int rc = check_url(o->url);
    if (rc)
        return rc;
    if (!o->secret || o->secret_len == 0)
        return vigil__error_set(VIGIL_EINVAL, "remediator: a signing secret is required");
    if (o->timeout_ms < 0 || o->connect_ms < 0 || o->backoff_ms < 0 || o->backoff_max_ms < 0)
        return vigil__error_set(VIGIL_EINVAL, "remediator: durations must not be negative");
    if (o->workers > WORKERS_MAX)
        return vigil__error_set(VIGIL_EINVAL, "remediator.workers: at most %d", WORKERS_MAX);
    if ((rc = vigil__http_tls_check("remediator", o->ca_file, o->cert_file, o->key_file)))
        return rc;
    vigil__dispatch *d = vigil__calloc(1, sizeof(*d));
    if (!d)
        return vigil__error_oom();
    pthread_mutex_init(&d->mu, NULL);
    vigil__cond_init_monotonic(&d->cv);
    d->logger = o->logger;
    d->timeout_ms = o->timeout_ms ? o->timeout_ms : DEF_TIMEOUT_MS;
    d->connect_ms = o->connect_ms ? o->connect_ms : DEF_CONNECT_MS;
    d->attempts = o->attempts ? o->attempts : DEF_ATTEMPTS;
    d->backoff_ms = o->backoff_ms ? o->backoff_ms : DEF_BACKOFF_MS;
    d->backoff_max_ms = o->backoff_max_ms ? o->backoff_max_ms : DEF_BACKOFF_MAX;
    if (d->backoff_max_ms < d->backoff_ms)
        d->backoff_max_ms = d->backoff_ms;
    d->queue_max = o->queue_max ? o->queue_max : DEF_QUEUE;
    d->rng = vigil__crypto_seed();
    size_t nworkers = o->workers ? o->workers : DEF_WORKERS;

    vigil_buf url = VIGIL_BUF_INIT;
    size_t ulen = strlen(o->url);
    while (ulen && o->url[ulen - 1] == '/')
        ulen--;
    rc = vigil__buf_put(&url, o->url, ulen);
    if (!rc)
        rc = vigil__buf_puts(&url, EXECUTE_PATH);
    if (!rc)
        d->url = vigil__buf_detach(&url);
    vigil_buf_dispose(&url);
    if (!rc && !d->url)
        rc = vigil__error_oom();
    if (!rc && ((o->ca_file && !(d->ca_file = vigil__strdup(o->ca_file))) ||
                (o->cert_file && !(d->cert_file = vigil__strdup(o->cert_file))) ||
                (o->key_file && !(d->key_file = vigil__strdup(o->key_file)))))
        rc = vigil__error_oom();
    if (!rc) {
        d->secret = vigil__malloc(o->secret_len);
        if (!d->secret)
            rc = vigil__error_oom();
        else {
            memcpy(d->secret, o->secret, o->secret_len);
            d->secret_len = o->secret_len;
        }
    }
    if (!rc) {
        d->workers = vigil__calloc(nworkers, sizeof(worker));
        if (!d->workers)
            rc = vigil__error_oom();
        else
            d->nworkers = nworkers;
    }
    for (size_t i = 0; !rc && i < d->nworkers; i++)
        rc = setup_worker(d, &d->workers[i]);
    for (size_t i = 0; !rc && i < d->nworkers; i++) {
        if (pthread_create(&d->workers[i].thread, NULL, worker_main, &d->workers[i]))
            rc = vigil__error_set(VIGIL_ERROR, "dispatch: cannot start a worker thread");
        else
            d->workers[i].started = 1;
    }
    if (rc) {
        vigil__dispatch_free(d);
        return rc;
    }
    *out = d;
    return VIGIL_OK;
}

void vigil__dispatch_stop(vigil__dispatch *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->mu);
    if (d->stopped) {
        pthread_mutex_unlock(&d->mu);
        return;
    }
    __atomic_store_n(&d->stopping, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    for (size_t i = 0; i < d->nworkers; i++)
        if (d->workers[i].started) {
            pthread_join(d->workers[i].thread, NULL);
            d->workers[i].started = 0;
        }
    pthread_mutex_lock(&d->mu);
    job *j = d->head;
    d->head = d->tail = NULL;
    d->qlen = 0;
    d->stopped = 1;
    pthread_mutex_unlock(&d->mu);
    while (j) {
        job *next = j->next;
        vigil_action_result r = VIGIL__ACTION_RESULT_EMPTY;
        vigil_action_result_set_id(&r, j->id);
        fail_msg(&r, "cancelled", "the hub stopped before the request was delivered");
        job_finish(j, &r, 0, "");
        vigil_action_result_clear(&r);
        job_free(j);
        j = next;
    }
}

/* ---- submit --------------------------------------------------------------------- */

static int busy_with(vigil__dispatch *d, const char *id)
{
    for (job *j = d->head; j; j = j->next)
        if (strcmp(j->id, id) == 0)
            return 1;
    for (size_t i = 0; i < d->nworkers; i++)
        if (d->workers[i].cur && strcmp(d->workers[i].cur->id, id) == 0)
            return 1;
    return 0;
}

static int submit(vigil__dispatch *d, const vigil_action_request *req, uint64_t epoch,
                  vigil__dispatch_done_cb done_ex, vigil_action_done_cb done, void *payload)
{
    if (!d || !req || (!done_ex && !done))
        return vigil__error_set(VIGIL_EINVAL, "dispatch: NULL argument");
    if (vigil__version_check("dispatch request", req->version, VIGIL_ACTION_REQUEST_VERSION))
        return VIGIL_EVERSION;
    if (!req->id || !*req->id || strlen(req->id) > VIGIL_ACTION_ID_MAX)
        return vigil__error_set(VIGIL_EINVAL, "dispatch: the request needs an id of 1-%d bytes",
                                VIGIL_ACTION_ID_MAX);
    if (!req->action || !*req->action)
        return vigil__error_set(VIGIL_EINVAL, "dispatch: the request names no action");
    if (req->nparams && !req->params)
        return vigil__error_set(VIGIL_EINVAL, "dispatch: params missing");
    job *j = vigil__calloc(1, sizeof(*j));
    if (!j)
        return vigil__error_oom();
    j->id = vigil__strdup(req->id);
    j->action = vigil__strdup(req->action);
    int rc =
        j->id && j->action ? vigil__hub_request_json(&j->body, req, epoch) : vigil__error_oom();
    if (rc) {
        job_free(j);
        return rc;
    }
    j->done_ex = done_ex;
    j->done = done;
    j->payload = payload;
    pthread_mutex_lock(&d->mu);
    if (d->stopping)
        rc = vigil__error_set(VIGIL_ECLOSED, "dispatch: stopping");
    else if (d->qlen >= d->queue_max)
        rc = vigil__error_set(VIGIL_EOVERLOADED,
                              "dispatch: %zu requests are waiting for the remediator", d->qlen);
    else if (busy_with(d, j->id))
        rc = vigil__error_set(VIGIL_ECONFLICT, "dispatch: request \"%.128s\" is already in flight",
                              j->id);
    if (!rc) {
        if (d->tail)
            d->tail->next = j;
        else
            d->head = j;
        d->tail = j;
        d->qlen++;
        pthread_cond_signal(&d->cv);
    }
    pthread_mutex_unlock(&d->mu);
    if (rc)
        job_free(j);
    return rc;
}

int vigil__dispatch_submit(vigil__dispatch *d, const vigil_action_request *req, uint64_t epoch,
                           vigil__dispatch_done_cb done, void *payload)
{
    return submit(d, req, epoch, done, NULL, payload);
}

static int iface_submit(void *self, const vigil_action_request *req, vigil_action_done_cb done,
                        void *payload)
{
    return submit(self, req, 0, NULL, done, payload);
}

void vigil__dispatch_interface(vigil__dispatch *d, vigil_action_dispatcher *out)
{
    vigil_action_dispatcher x = VIGIL_ACTION_DISPATCHER_INIT;
    x.self = d;
    x.submit = iface_submit;
    *out = x;
}

size_t vigil__dispatch_pending(vigil__dispatch *d)
{
    pthread_mutex_lock(&d->mu);
    size_t n = d->qlen;
    for (size_t i = 0; i < d->nworkers; i++)
        n += d->workers[i].cur != NULL;
    pthread_mutex_unlock(&d->mu);
    return n;
}

size_t vigil__dispatch_base_url(const vigil__dispatch *d, const char **url)
{
    *url = d->url;
    return strlen(d->url) - (sizeof(EXECUTE_PATH) - 1);
}

const void *vigil__dispatch_secret(const vigil__dispatch *d, size_t *len)
{
    *len = d->secret_len;
    return d->secret;
}
