/* The hub's HTTP dispatcher: worker threads POST each action request to the
 * remediator's /v1/execute, signed with X-Vigil-Signature, and wait for the
 * answer (the remediator answers once the action has finished). Network
 * errors and 5xx are retried with capped exponential backoff and jitter, a
 * bounded number of times; a 4xx is final. A request id is delivered by one
 * worker at a time. The only file of lib/hub that includes curl.h. */
#include "hub/dispatch.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
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
    CURL *easy;
    job *cur;
    vigil_buf resp;
    int resp_clipped;
    char errbuf[CURL_ERROR_SIZE];
} worker;

struct vigil__dispatch {
    char *url;
    unsigned char *secret;
    size_t secret_len;
    int64_t timeout_ms, connect_ms, backoff_ms, backoff_max_ms;
    unsigned int attempts;
    size_t queue_max;
    vigil_logger logger;
    int curl_inited;

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

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int is_stopping(vigil__dispatch *d)
{
    return __atomic_load_n(&d->stopping, __ATOMIC_ACQUIRE);
}

/* xorshift64*: jitter only. Called with d->mu held. */
static uint64_t rng_next(vigil__dispatch *d)
{
    uint64_t x = d->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    d->rng = x;
    return x * 2685821657736338717ULL;
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

static size_t write_cb(char *data, size_t size, size_t n, void *ud)
{
    worker *w = ud;
    size_t len = size * n;
    size_t room = w->resp.size < RESP_MAX ? RESP_MAX - w->resp.size : 0;
    size_t take = len < room ? len : room;
    if (take < len)
        w->resp_clipped = 1;
    if (take && vigil__buf_put(&w->resp, data, take) != VIGIL_OK)
        w->resp_clipped = 1;
    return len;
}

static int progress_cb(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt;
    (void)dn;
    (void)ut;
    (void)un;
    worker *w = ud;
    return is_stopping(w->d) ? 1 : 0;
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
    struct curl_slist *hs = NULL, *t;
    const char *lines[] = {"Content-Type: application/json", "Expect:", "Accept: application/json",
                           hdr.ptr};
    for (size_t i = 0; !rc && i < VIGIL__ARRAY_LEN(lines); i++) {
        t = curl_slist_append(hs, lines[i]);
        if (!t)
            rc = vigil__error_oom();
        else
            hs = t;
    }
    vigil_buf_dispose(&sig);
    vigil_buf_dispose(&hdr);
    if (rc) {
        curl_slist_free_all(hs);
        fail_msg(r, "internal_error", vigil_error_last()->message);
        return FINAL;
    }
    vigil__buf_clear(&w->resp);
    w->resp_clipped = 0;
    w->errbuf[0] = '\0';
    CURL *e = w->easy;
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, j->body.ptr);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)j->body.size);
    CURLcode cc = curl_easy_perform(e);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hs);

    if (cc == CURLE_ABORTED_BY_CALLBACK || (cc != CURLE_OK && is_stopping(d))) {
        fail_msg(r, "cancelled", "the hub stopped before the remediator answered");
        return CANCELLED;
    }
    if (cc != CURLE_OK) {
        const char *msg = w->errbuf[0] ? w->errbuf : curl_easy_strerror(cc);
        fail_msg(r, "network", msg);
        return RETRY;
    }
    const char *body = w->resp.ptr ? w->resp.ptr : "";
    if (status == 200 || status == 202) {
        if (!w->resp_clipped &&
            vigil__hub_result_parse(body, w->resp.size, 0, r, seq, mac) == VIGIL_OK &&
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
                 w->resp_clipped ? "too large" : vigil_error_last()->message);
        vigil_action_result_clear(r);
        *seq = 0;
        mac[0] = '\0';
        fail_msg(r, "bad_response", msg);
        return FINAL;
    }
    char reason[32];
    snprintf(reason, sizeof(reason), "http_%ld", status);
    fail(r, reason, body, w->resp.size);
    return status >= 500 ? RETRY : FINAL;
}

/* Sleeps `ms` unless the dispatcher stops first; returns non-zero when stopping. */
static int backoff_wait(vigil__dispatch *d, int64_t ms)
{
    int64_t deadline = mono_ms() + ms;
    pthread_mutex_lock(&d->mu);
    while (!d->stopping) {
        int64_t now = mono_ms();
        if (now >= deadline)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ns = (int64_t)ts.tv_nsec + (deadline - now) * 1000000;
        ts.tv_sec += (time_t)(ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        pthread_cond_timedwait(&d->cv, &d->mu, &ts);
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
        int64_t delay = d->backoff_ms;
        for (unsigned int k = 1; k < n && delay < d->backoff_max_ms; k++)
            delay *= 2;
        if (delay > d->backoff_max_ms)
            delay = d->backoff_max_ms;
        pthread_mutex_lock(&d->mu);
        uint64_t rnd = rng_next(d);
        pthread_mutex_unlock(&d->mu);
        /* full jitter over the upper half: [delay/2, delay] */
        delay = delay / 2 + (int64_t)(rnd % (uint64_t)(delay / 2 + 1));
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
    w->easy = curl_easy_init();
    if (!w->easy)
        return vigil__error_set(VIGIL_EIO, "dispatch: a libcurl handle could not be created");
    CURL *e = w->easy;
    CURLcode cc = CURLE_OK;
#define SETOPT(o, v)                        \
    do {                                    \
        if (cc == CURLE_OK)                 \
            cc = curl_easy_setopt(e, o, v); \
    } while (0)
    SETOPT(CURLOPT_URL, d->url);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, (long)d->connect_ms);
    SETOPT(CURLOPT_TIMEOUT_MS, (long)d->timeout_ms);
    SETOPT(CURLOPT_POST, 1L);
    SETOPT(CURLOPT_WRITEFUNCTION, write_cb);
    SETOPT(CURLOPT_WRITEDATA, w);
    SETOPT(CURLOPT_NOPROGRESS, 0L);
    SETOPT(CURLOPT_XFERINFOFUNCTION, progress_cb);
    SETOPT(CURLOPT_XFERINFODATA, w);
    SETOPT(CURLOPT_ERRORBUFFER, w->errbuf);
    SETOPT(CURLOPT_USERAGENT, "vigil-hub/" VIGIL_VERSION);
#undef SETOPT
    if (cc != CURLE_OK)
        return vigil__error_set(VIGIL_EIO, "dispatch: libcurl refused an option: %s",
                                curl_easy_strerror(cc));
    return VIGIL_OK;
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
    CURLU *u = curl_url();
    if (!u)
        return vigil__error_oom();
    int rc = VIGIL_OK;
    char *scheme = NULL, *host = NULL, *user = NULL, *query = NULL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK)
        rc = vigil__error_set(VIGIL_EINVAL, "remediator.url: \"%.200s\" is not a valid URL", url);
    else if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
        rc = vigil__error_set(VIGIL_EINVAL,
                              "remediator.url: scheme \"%.20s\" is not allowed (http or https)",
                              scheme);
    else if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host)
        rc = vigil__error_set(VIGIL_EINVAL, "remediator.url: \"%.200s\" has no host", url);
    else if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK)
        rc = vigil__error_set(VIGIL_EINVAL, "remediator.url: credentials in a URL are refused");
    else if (curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK)
        rc = vigil__error_set(VIGIL_EINVAL, "remediator.url: takes no query string");
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_free(query);
    curl_url_cleanup(u);
    return rc;
}

void vigil__dispatch_free(vigil__dispatch *d)
{
    if (!d)
        return;
    vigil__dispatch_stop(d);
    for (size_t i = 0; i < d->nworkers; i++) {
        if (d->workers[i].easy)
            curl_easy_cleanup(d->workers[i].easy);
        vigil_buf_dispose(&d->workers[i].resp);
    }
    vigil__free(d->workers);
    if (d->secret) {
        memset(d->secret, 0, d->secret_len);
        vigil__free(d->secret);
    }
    vigil__free(d->url);
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    if (d->curl_inited)
        curl_global_cleanup();
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
    vigil__dispatch *d = vigil__calloc(1, sizeof(*d));
    if (!d)
        return vigil__error_oom();
    pthread_mutex_init(&d->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cv, &ca);
    pthread_condattr_destroy(&ca);
    d->logger = o->logger;
    d->timeout_ms = o->timeout_ms ? o->timeout_ms : DEF_TIMEOUT_MS;
    d->connect_ms = o->connect_ms ? o->connect_ms : DEF_CONNECT_MS;
    d->attempts = o->attempts ? o->attempts : DEF_ATTEMPTS;
    d->backoff_ms = o->backoff_ms ? o->backoff_ms : DEF_BACKOFF_MS;
    d->backoff_max_ms = o->backoff_max_ms ? o->backoff_max_ms : DEF_BACKOFF_MAX;
    if (d->backoff_max_ms < d->backoff_ms)
        d->backoff_max_ms = d->backoff_ms;
    d->queue_max = o->queue_max ? o->queue_max : DEF_QUEUE;
    d->rng = (uint64_t)vigil__now_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)d;
    if (!d->rng)
        d->rng = 0x9e3779b97f4a7c15ULL;
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
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            rc = vigil__error_set(VIGIL_EIO, "dispatch: libcurl could not be initialised");
        else
            d->curl_inited = 1;
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

static int submit(vigil__dispatch *d, const vigil_action_request *req,
                  vigil__dispatch_done_cb done_ex, vigil_action_done_cb done, void *payload)
{
    if (!d || !req || (!done_ex && !done))
        return vigil__error_set(VIGIL_EINVAL, "dispatch: NULL argument");
    if (req->version != VIGIL_ACTION_REQUEST_VERSION)
        return vigil__error_set(VIGIL_EINVAL, "dispatch: unsupported request version %u",
                                req->version);
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
    int rc = j->id && j->action ? vigil__hub_request_json(&j->body, req) : vigil__error_oom();
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

int vigil__dispatch_submit(vigil__dispatch *d, const vigil_action_request *req,
                           vigil__dispatch_done_cb done, void *payload)
{
    return submit(d, req, done, NULL, payload);
}

static int iface_submit(void *self, const vigil_action_request *req, vigil_action_done_cb done,
                        void *payload)
{
    return submit(self, req, NULL, done, payload);
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
