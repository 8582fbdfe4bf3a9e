/* Events to a Redis stream over hiredis (see redis.h). The publisher thread
 * pipelines up to PIPELINE_MAX XADDs per round trip; its socket has a
 * command timeout, so a Redis that stops answering costs the thread, never
 * the caller of vigil__redis_publish(), which only takes the queue's mutex.
 * vigil__redis_stop() shuts the sockets down (shutdown(2)) to end a blocked
 * read at once; the fds are published under the mutex and withdrawn before
 * the context is freed, so a reused fd number is never shut down. */
#include "redis/redis.h"

#include "core/cond.h"
#include "crypto/crypto.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define PIPELINE_MAX       64
#define BACKOFF_BASE_MS    100
#define BACKOFF_MAX_MS     5000
#define CONNECT_TIMEOUT_MS 1000
#define COMMAND_TIMEOUT_MS 2000
#define READ_BLOCK_MS      1000
#define READ_COUNT         100
#define DRAIN_MS           2000
#define TYPE_MAX           64

typedef struct item {
    char *type;
    char *data;
    size_t bytes;
    int64_t ts_ms;
} item;

struct vigil__redis {
    char host[256];
    int port;
    long db;
    char *stream;
    char *origin;
    char *password; /* wiped when freed */
    char *password_env;
    char maxlen[24];
    int subscribe;
    vigil__redis_deliver_cb deliver;
    void *deliver_payload;
    vigil_logger logger;

    pthread_mutex_t mu;
    pthread_cond_t cv;      /* publisher: queued, or stopping */
    pthread_cond_t done_cv; /* stop(): the publisher has ended */
    pthread_cond_t sub_cv;  /* the reader's backoff: stopping */
    item *q;                /* ring of queue_max */
    size_t queue_max, head, count, bytes;
    int started, stopping, pub_done;
    int64_t drain_until;
    int pub_fd, sub_fd; /* -1: none (under mu) */
    int connected;      /* under mu */
    pthread_t pub, sub;
    int has_sub;

    vigil__prom_family *m_published, *m_dropped, *m_reconnects, *m_received, *m_errors;
};

static const char *const k_reason[] = {"reason", NULL};
static const char *const k_conn[] = {"connection", NULL};

static void item_free(item *it)
{
    vigil__free(it->type);
    vigil__free(it->data);
    it->type = it->data = NULL;
}

static void drop(vigil__redis *r, const char *reason, double n)
{
    const char *v[] = {reason};
    if (n > 0)
        vigil__prom_add(r->m_dropped, v, n);
}

/* ---- URL ------------------------------------------------------------------ */

/* redis://host[:port][/db] into host, port, db. */
static int parse_url(const char *url, char *host, size_t host_size, int *port, long *db, char *why,
                     size_t why_size)
{
    static const char scheme[] = "redis://";
    *port = 6379;
    *db = 0;
    if (!url || !*url) {
        snprintf(why, why_size, "expected redis://host[:port][/db]");
        return VIGIL_EVALUE;
    }
    if (strlen(url) > VIGIL__REDIS_URL_MAX) {
        snprintf(why, why_size, "longer than %d bytes", VIGIL__REDIS_URL_MAX);
        return VIGIL_EVALUE;
    }
    if (strncmp(url, "rediss://", 9) == 0) {
        snprintf(why, why_size,
                 "rediss:// (TLS) is not supported: this build's hiredis has no TLS; use "
                 "redis:// on a trusted network or a TLS tunnel");
        return VIGIL_EVALUE;
    }
    if (strncmp(url, scheme, sizeof(scheme) - 1) != 0) {
        snprintf(why, why_size, "expected redis://host[:port][/db], got \"%.80s\"", url);
        return VIGIL_EVALUE;
    }
    const char *p = url + sizeof(scheme) - 1;
    const char *end = p + strcspn(p, "/?#");
    if (memchr(p, '@', (size_t)(end - p))) {
        snprintf(why, why_size,
                 "a user or password in the URL is refused: put the password in the "
                 "environment variable named by password_env");
        return VIGIL_EVALUE;
    }
    const char *hs = p, *he;
    const char *colon;
    if (*p == '[') {
        he = memchr(p, ']', (size_t)(end - p));
        if (!he) {
            snprintf(why, why_size, "unterminated [ in the host");
            return VIGIL_EVALUE;
        }
        hs = p + 1;
        colon = he + 1 < end && he[1] == ':' ? he + 1 : NULL;
        if (he + 1 < end && !colon) {
            snprintf(why, why_size, "expected :port after ]");
            return VIGIL_EVALUE;
        }
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
        he = colon ? colon : end;
    }
    size_t hl = (size_t)(he - hs);
    if (hl == 0 || hl >= host_size) {
        snprintf(why, why_size, "expected a host name");
        return VIGIL_EVALUE;
    }
    for (const char *c = hs; c < he; c++) {
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '.' || *c == '-' || *c == ':' || *c == '_')) {
            snprintf(why, why_size, "the host holds '%c'", *c);
            return VIGIL_EVALUE;
        }
    }
    memcpy(host, hs, hl);
    host[hl] = '\0';
    if (colon) {
        char *e = NULL;
        errno = 0;
        long v = strtol(colon + 1, &e, 10);
        if (e != end || colon + 1 == end || errno || v < 1 || v > 65535) {
            snprintf(why, why_size, "expected a port from 1 to 65535");
            return VIGIL_EVALUE;
        }
        *port = (int)v;
    }
    if (*end == '?' || *end == '#') {
        snprintf(why, why_size, "query strings and fragments are not supported");
        return VIGIL_EVALUE;
    }
    if (*end == '/' && end[1]) {
        char *e = NULL;
        errno = 0;
        long v = strtol(end + 1, &e, 10);
        if (*e || errno || v < 0 || v > 1000000 || !(end[1] >= '0' && end[1] <= '9')) {
            snprintf(why, why_size, "expected a database number after /, got \"%.40s\"", end + 1);
            return VIGIL_EVALUE;
        }
        *db = v;
    }
    return VIGIL_OK;
}

int vigil__redis_url_check(const char *url, char *why, size_t why_size)
{
    char host[256];
    int port;
    long db;
    return parse_url(url, host, sizeof(host), &port, &db, why, why_size);
}

/* ---- lifecycle ------------------------------------------------------------ */

static int name_ok(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("._:-/{}", *s)))
            return 0;
    return 1;
}

static double g_queue(void *p)
{
    vigil__redis *r = p;
    pthread_mutex_lock(&r->mu);
    double v = (double)r->count;
    pthread_mutex_unlock(&r->mu);
    return v;
}

static double g_connected(void *p)
{
    return (double)vigil__redis_connected(p);
}

static int init_metrics(vigil__redis *r, vigil__prom *p)
{
    int rc = vigil__prom_counter(p, &r->m_published, "vigil_redis_published_total",
                                 "Events appended to the Redis stream.", NULL);
    if (!rc)
        rc = vigil__prom_counter(p, &r->m_dropped, "vigil_redis_dropped_total",
                                 "Events not published to Redis, by reason (queue_full: Redis "
                                 "slow or down; error: refused or lost with the connection; "
                                 "shutdown).",
                                 k_reason);
    if (!rc)
        rc = vigil__prom_counter(p, &r->m_reconnects, "vigil_redis_reconnects_total",
                                 "Connections to Redis made again after one was lost.", NULL);
    if (!rc)
        rc = vigil__prom_counter(p, &r->m_received, "vigil_redis_received_total",
                                 "Events of other hubs read from the stream and delivered to "
                                 "this hub's event subscribers.",
                                 NULL);
    if (!rc)
        rc = vigil__prom_counter(p, &r->m_errors, "vigil_redis_connect_failures_total",
                                 "Failed attempts to connect to Redis, by connection "
                                 "(publish, subscribe).",
                                 k_conn);
    if (!rc)
        rc = vigil__prom_gauge_func(p, "vigil_redis_connected",
                                    "1 while the publisher holds a connection to Redis.",
                                    g_connected, r);
    if (!rc)
        rc = vigil__prom_gauge_func(p, "vigil_redis_queue_depth",
                                    "Events waiting for the Redis publisher.", g_queue, r);
    /* every reason shows from the start, at 0 */
    static const char *const reasons[] = {"queue_full", "error", "shutdown", "invalid"};
    for (size_t i = 0; !rc && i < sizeof(reasons) / sizeof(reasons[0]); i++)
        vigil__prom_add(r->m_dropped, &reasons[i], 0);
    static const char *const conns[] = {"publish", "subscribe"};
    for (size_t i = 0; !rc && i < 2; i++)
        vigil__prom_add(r->m_errors, &conns[i], 0);
    if (!rc) {
        vigil__prom_add(r->m_published, NULL, 0);
        vigil__prom_add(r->m_received, NULL, 0);
    }
    return rc;
}

void vigil__redis_free(vigil__redis *r)
{
    if (!r)
        return;
    vigil__redis_stop(r);
    pthread_mutex_lock(&r->mu);
    while (r->count) {
        item_free(&r->q[r->head]);
        r->head = (r->head + 1) % r->queue_max;
        r->count--;
    }
    pthread_mutex_unlock(&r->mu);
    pthread_cond_destroy(&r->cv);
    pthread_cond_destroy(&r->done_cv);
    pthread_cond_destroy(&r->sub_cv);
    pthread_mutex_destroy(&r->mu);
    vigil__free(r->q);
    vigil__free(r->stream);
    vigil__free(r->origin);
    vigil__free_wiped(r->password);
    vigil__free(r->password_env);
    vigil__free(r);
}

int vigil__redis_new(vigil__redis **out, const vigil__redis_options *o)
{
    char why[256];
    *out = NULL;
    vigil__redis *r = vigil__calloc(1, sizeof(*r));
    if (!r)
        return vigil__error_oom();
    pthread_mutex_init(&r->mu, NULL);
    vigil__cond_init_monotonic(&r->cv);
    vigil__cond_init_monotonic(&r->done_cv);
    vigil__cond_init_monotonic(&r->sub_cv);
    r->pub_fd = r->sub_fd = -1;
    r->queue_max = o->queue_max ? o->queue_max : 10000;
    snprintf(r->maxlen, sizeof(r->maxlen), "%zu", o->maxlen ? o->maxlen : 100000);
    r->subscribe = o->subscribe;
    r->deliver = o->deliver;
    r->deliver_payload = o->deliver_payload;
    r->logger = o->logger;
    const char *stream = o->stream && *o->stream ? o->stream : "vigil:events";
    int rc = VIGIL_OK;
    if (parse_url(o->url, r->host, sizeof(r->host), &r->port, &r->db, why, sizeof(why)))
        rc = vigil__error_set(VIGIL_EINVAL, "redis url: %s", why);
    else if (!name_ok(stream, VIGIL__REDIS_STREAM_MAX))
        rc = vigil__error_set(VIGIL_EINVAL,
                              "redis stream: 1-%d bytes of [A-Za-z0-9._:-/{}], got \"%.80s\"",
                              VIGIL__REDIS_STREAM_MAX, stream);
    else if (!name_ok(o->origin, VIGIL__REDIS_ORIGIN_MAX))
        rc = vigil__error_set(VIGIL_EINVAL, "redis hub_id: 1-%d bytes of [A-Za-z0-9._:-/{}]",
                              VIGIL__REDIS_ORIGIN_MAX);
    else if (r->queue_max > 10000000)
        rc = vigil__error_set(VIGIL_EINVAL, "redis queue: at most 10000000");
    if (!rc && o->password_env && *o->password_env) {
        const char *pw = getenv(o->password_env);
        if (!pw || !*pw)
            rc = vigil__error_set(VIGIL_EINVAL,
                                  "redis password_env: the variable \"%.100s\" is not set or is "
                                  "empty",
                                  o->password_env);
        else if (strlen(pw) > 4096)
            rc = vigil__error_set(VIGIL_EINVAL,
                                  "redis password_env: the password in \"%.100s\" is longer "
                                  "than 4096 bytes",
                                  o->password_env);
        else if (!(r->password = vigil__strdup(pw)) ||
                 !(r->password_env = vigil__strdup(o->password_env)))
            rc = vigil__error_oom();
    }
    if (!rc && (!(r->stream = vigil__strdup(stream)) || !(r->origin = vigil__strdup(o->origin)) ||
                !(r->q = vigil__calloc(r->queue_max, sizeof(item)))))
        rc = vigil__error_oom();
    if (!rc && o->prom)
        rc = init_metrics(r, o->prom);
    if (rc) {
        vigil__redis_free(r);
        return rc;
    }
    *out = r;
    return VIGIL_OK;
}

/* ---- queue ---------------------------------------------------------------- */

void vigil__redis_publish(vigil__redis *r, const char *type, const char *data)
{
    size_t tl = strlen(type), dl = strlen(data);
    item it = {vigil__malloc(tl + 1), vigil__malloc(dl + 1), tl + dl + 2, vigil__now_ms()};
    pthread_mutex_lock(&r->mu);
    if (!it.type || !it.data || r->stopping || r->count == r->queue_max ||
        r->bytes + it.bytes > VIGIL__REDIS_QUEUE_BYTES) {
        const char *why = r->stopping ? "shutdown" : "queue_full";
        pthread_mutex_unlock(&r->mu);
        item_free(&it);
        drop(r, why, 1);
        return;
    }
    memcpy(it.type, type, tl + 1);
    memcpy(it.data, data, dl + 1);
    r->q[(r->head + r->count) % r->queue_max] = it;
    r->count++;
    r->bytes += it.bytes;
    if (r->count == 1)
        pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

int vigil__redis_connected(vigil__redis *r)
{
    pthread_mutex_lock(&r->mu);
    int v = r->connected;
    pthread_mutex_unlock(&r->mu);
    return v;
}

/* ---- connections ------------------------------------------------------------ */

static struct timeval tv_ms(int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

/* Runs one command; the reply (freeReplyObject) or NULL with the reason. */
static redisReply *command(redisContext *c, int argc, const char **argv, char *why, size_t n)
{
    redisReply *rep = redisCommandArgv(c, argc, argv, NULL);
    if (!rep)
        snprintf(why, n, "%s", c->errstr[0] ? c->errstr : "connection lost");
    return rep;
}

/* Dials Redis, authenticates and selects the database. NULL with the reason
 * in `why` (*auth set when the password was refused). */
static redisContext *dial(vigil__redis *r, int64_t timeout_ms, char *why, size_t n, int *auth)
{
    *auth = 0;
    redisContext *c = redisConnectWithTimeout(r->host, r->port, tv_ms(CONNECT_TIMEOUT_MS));
    if (!c) {
        snprintf(why, n, "out of memory");
        return NULL;
    }
    if (c->err) {
        snprintf(why, n, "%s", c->errstr);
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv_ms(timeout_ms));
    if (r->password) {
        const char *argv[] = {"AUTH", r->password};
        redisReply *rep = command(c, 2, argv, why, n);
        if (rep && rep->type == REDIS_REPLY_ERROR) {
            *auth = 1;
            snprintf(why, n,
                     "authentication refused with the password of $%s (check the variable "
                     "and requirepass): %.200s",
                     r->password_env, rep->str);
        }
        int ok = rep && rep->type != REDIS_REPLY_ERROR;
        if (rep)
            freeReplyObject(rep);
        if (!ok) {
            redisFree(c);
            return NULL;
        }
    }
    if (r->db) {
        char db[24];
        snprintf(db, sizeof(db), "%ld", r->db);
        const char *argv[] = {"SELECT", db};
        redisReply *rep = command(c, 2, argv, why, n);
        int ok = rep && rep->type != REDIS_REPLY_ERROR;
        if (rep && !ok)
            snprintf(why, n, "SELECT %s refused: %.200s", db, rep->str);
        if (rep)
            freeReplyObject(rep);
        if (!ok) {
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

/* A failed dial: counted, logged once per outage (an authentication
 * failure at error level, every time its message changes). */
static void dial_failed(vigil__redis *r, const char *conn, const char *why, int auth, char *last,
                        size_t last_size)
{
    const char *v[] = {conn};
    vigil__prom_add(r->m_errors, v, 1);
    if (strcmp(last, why) == 0)
        return;
    snprintf(last, last_size, "%s", why);
    char addr[300];
    snprintf(addr, sizeof(addr), "%s:%d", r->host, r->port);
    vigil__log(&r->logger, auth ? VIGIL_LOG_ERROR : VIGIL_LOG_WARN, "redis",
               auth ? "authentication failed; retrying with backoff"
                    : "cannot connect; retrying with backoff",
               "connection=%s address=%s reason=\"%s\"", conn, addr, why);
}

/* Waits (mu held) until `deadline_ms` or stopping; 1 when stopping. */
static int wait_or_stop(vigil__redis *r, pthread_cond_t *cv, int64_t deadline_ms)
{
    while (!r->stopping && vigil__monotonic_ms() < deadline_ms)
        vigil__cond_wait_until(cv, &r->mu, deadline_ms);
    return r->stopping;
}

/* ---- the publisher -------------------------------------------------------- */

/* XADDs `n` items in one pipeline: the number published, -1 when the
 * connection failed (the rest are dropped as "error"). */
static int xadd(vigil__redis *r, redisContext *c, item *its, size_t n, char *why, size_t why_size)
{
    for (size_t i = 0; i < n; i++) {
        char ts[24];
        snprintf(ts, sizeof(ts), "%lld", (long long)its[i].ts_ms);
        const char *argv[] = {"XADD", r->stream,   "MAXLEN",  "~",    r->maxlen,
                              "*",    "origin",    r->origin, "type", its[i].type,
                              "data", its[i].data, "ts",      ts};
        if (redisAppendCommandArgv(c, 14, argv, NULL) != REDIS_OK) {
            snprintf(why, why_size, "%s", c->errstr);
            drop(r, "error", (double)n);
            return -1;
        }
    }
    size_t ok = 0, refused = 0;
    for (size_t i = 0; i < n; i++) {
        void *v = NULL;
        if (redisGetReply(c, &v) != REDIS_OK || !v) {
            snprintf(why, why_size, "%s", c->errstr[0] ? c->errstr : "connection lost");
            vigil__prom_add(r->m_published, NULL, (double)ok);
            drop(r, "error", (double)(n - ok - refused));
            return -1;
        }
        redisReply *rep = v;
        if (rep->type == REDIS_REPLY_ERROR) {
            if (!refused)
                vigil__log(&r->logger, VIGIL_LOG_WARN, "redis", "XADD refused",
                           "stream=%s reason=\"%.200s\"", r->stream, rep->str);
            refused++;
        } else {
            ok++;
        }
        freeReplyObject(rep);
    }
    vigil__prom_add(r->m_published, NULL, (double)ok);
    drop(r, "error", (double)refused);
    return (int)ok;
}

static void *pub_main(void *p)
{
    vigil__redis *r = p;
    redisContext *c = NULL;
    uint64_t rng = vigil__crypto_seed();
    unsigned int attempt = 0;
    int64_t next_try = 0;
    int ever = 0;
    char last[512] = "", why[512];
    item batch[PIPELINE_MAX];
    pthread_mutex_lock(&r->mu);
    for (;;) {
        if (r->stopping && (!c || !r->count || vigil__monotonic_ms() >= r->drain_until))
            break;
        if (!c) {
            if (wait_or_stop(r, &r->cv, next_try))
                continue;
            pthread_mutex_unlock(&r->mu);
            int auth = 0;
            c = dial(r, COMMAND_TIMEOUT_MS, why, sizeof(why), &auth);
            if (!c) {
                dial_failed(r, "publish", why, auth, last, sizeof(last));
                attempt++;
                next_try =
                    vigil__monotonic_ms() +
                    vigil__backoff_jitter(
                        vigil__backoff_ceiling(BACKOFF_BASE_MS, BACKOFF_MAX_MS, attempt), &rng);
                pthread_mutex_lock(&r->mu);
                continue;
            }
            attempt = 0;
            last[0] = '\0';
            if (ever)
                vigil__prom_add(r->m_reconnects, NULL, 1);
            vigil__log(&r->logger, VIGIL_LOG_INFO, "redis",
                       ever ? "reconnected; publishing events" : "connected; publishing events",
                       "address=%s:%d stream=%s", r->host, r->port, r->stream);
            ever = 1;
            pthread_mutex_lock(&r->mu);
            r->pub_fd = c->fd;
            r->connected = 1;
            continue;
        }
        if (!r->count) {
            if (r->stopping)
                break;
            pthread_cond_wait(&r->cv, &r->mu);
            continue;
        }
        size_t n = 0;
        while (r->count && n < PIPELINE_MAX) {
            batch[n] = r->q[r->head];
            r->q[r->head].type = r->q[r->head].data = NULL;
            r->bytes -= batch[n].bytes;
            r->head = (r->head + 1) % r->queue_max;
            r->count--;
            n++;
        }
        pthread_mutex_unlock(&r->mu);
        int got = xadd(r, c, batch, n, why, sizeof(why));
        for (size_t i = 0; i < n; i++)
            item_free(&batch[i]);
        pthread_mutex_lock(&r->mu);
        if (got < 0) {
            r->pub_fd = -1;
            r->connected = 0;
            pthread_mutex_unlock(&r->mu);
            redisFree(c);
            c = NULL;
            vigil__log(&r->logger, VIGIL_LOG_WARN, "redis",
                       "connection lost; events queue until it is back (dropped when full)",
                       "address=%s:%d reason=\"%s\"", r->host, r->port, why);
            snprintf(last, sizeof(last), "%s", why);
            next_try = vigil__monotonic_ms() + BACKOFF_BASE_MS;
            pthread_mutex_lock(&r->mu);
        }
    }
    r->pub_fd = -1;
    r->connected = 0;
    r->pub_done = 1;
    pthread_cond_broadcast(&r->done_cv);
    pthread_mutex_unlock(&r->mu);
    if (c)
        redisFree(c);
    return NULL;
}

/* ---- the subscriber ------------------------------------------------------- */

static int type_ok(const char *t, size_t len)
{
    if (len == 0 || len > TYPE_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= '0' && t[i] <= '9') || t[i] == '_' ||
              t[i] == '.'))
            return 0;
    return 1;
}

/* Delivers one stream entry [id, [field, value, ...]] unless this origin
 * published it; records its id in `last_id`. */
static void entry(vigil__redis *r, const redisReply *e, char *last_id, size_t last_size)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING || e->element[0]->len >= last_size)
        return;
    memcpy(last_id, e->element[0]->str, e->element[0]->len);
    last_id[e->element[0]->len] = '\0';
    const redisReply *f = e->element[1];
    if (f->type != REDIS_REPLY_ARRAY)
        return;
    const redisReply *origin = NULL, *type = NULL, *data = NULL;
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        const redisReply *k = f->element[i], *v = f->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        if (strcmp(k->str, "origin") == 0)
            origin = v;
        else if (strcmp(k->str, "type") == 0)
            type = v;
        else if (strcmp(k->str, "data") == 0)
            data = v;
    }
    if (origin && strcmp(origin->str, r->origin) == 0)
        return;
    if (!origin || !type || !data || strlen(origin->str) != origin->len ||
        !name_ok(origin->str, VIGIL__REDIS_ORIGIN_MAX) || !type_ok(type->str, type->len) ||
        data->len > VIGIL__REDIS_DATA_MAX || strlen(data->str) != data->len ||
        !vigil__utf8_valid(data->str, data->len)) {
        drop(r, "invalid", 1);
        return;
    }
    vigil__prom_add(r->m_received, NULL, 1);
    if (r->deliver)
        r->deliver(r->deliver_payload, origin->str, type->str, data->str);
}

/* The id of the stream's newest entry, "0-0" when it has none. */
static int newest_id(vigil__redis *r, redisContext *c, char *id, size_t size, char *why, size_t n)
{
    const char *argv[] = {"XREVRANGE", r->stream, "+", "-", "COUNT", "1"};
    redisReply *rep = command(c, 6, argv, why, n);
    if (!rep)
        return -1;
    int rc = 0;
    snprintf(id, size, "0-0");
    if (rep->type == REDIS_REPLY_ERROR) {
        snprintf(why, n, "XREVRANGE refused: %.200s", rep->str);
        rc = -1;
    } else if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 &&
               rep->element[0]->type == REDIS_REPLY_ARRAY && rep->element[0]->elements == 2 &&
               rep->element[0]->element[0]->type == REDIS_REPLY_STRING &&
               rep->element[0]->element[0]->len < size) {
        snprintf(id, size, "%s", rep->element[0]->element[0]->str);
    }
    freeReplyObject(rep);
    return rc;
}

static void *sub_main(void *p)
{
    vigil__redis *r = p;
    redisContext *c = NULL;
    uint64_t rng = vigil__crypto_seed();
    unsigned int attempt = 0;
    int64_t next_try = 0;
    char last[512] = "", why[512], last_id[64] = "";
    char block[16], count[16];
    snprintf(block, sizeof(block), "%d", READ_BLOCK_MS);
    snprintf(count, sizeof(count), "%d", READ_COUNT);
    pthread_mutex_lock(&r->mu);
    while (!r->stopping) {
        if (!c) {
            if (wait_or_stop(r, &r->sub_cv, next_try))
                break;
            pthread_mutex_unlock(&r->mu);
            int auth = 0;
            c = dial(r, READ_BLOCK_MS + COMMAND_TIMEOUT_MS, why, sizeof(why), &auth);
            if (c && !last_id[0] && newest_id(r, c, last_id, sizeof(last_id), why, sizeof(why))) {
                redisFree(c);
                c = NULL;
            }
            if (!c) {
                dial_failed(r, "subscribe", why, auth, last, sizeof(last));
                attempt++;
                next_try =
                    vigil__monotonic_ms() +
                    vigil__backoff_jitter(
                        vigil__backoff_ceiling(BACKOFF_BASE_MS, BACKOFF_MAX_MS, attempt), &rng);
                pthread_mutex_lock(&r->mu);
                continue;
            }
            attempt = 0;
            last[0] = '\0';
            pthread_mutex_lock(&r->mu);
            r->sub_fd = c->fd;
            continue;
        }
        pthread_mutex_unlock(&r->mu);
        const char *argv[] = {"XREAD", "COUNT",   count,     "BLOCK",
                              block,   "STREAMS", r->stream, last_id};
        redisReply *rep = command(c, 8, argv, why, sizeof(why));
        int failed = !rep || rep->type == REDIS_REPLY_ERROR;
        if (rep && rep->type == REDIS_REPLY_ERROR)
            snprintf(why, sizeof(why), "XREAD refused: %.200s", rep->str);
        if (rep && rep->type == REDIS_REPLY_ARRAY) {
            for (size_t s = 0; s < rep->elements; s++) {
                const redisReply *st = rep->element[s];
                if (st->type != REDIS_REPLY_ARRAY || st->elements != 2 ||
                    st->element[1]->type != REDIS_REPLY_ARRAY)
                    continue;
                for (size_t i = 0; i < st->element[1]->elements; i++)
                    entry(r, st->element[1]->element[i], last_id, sizeof(last_id));
            }
        }
        if (rep)
            freeReplyObject(rep);
        pthread_mutex_lock(&r->mu);
        if (failed) {
            r->sub_fd = -1;
            int stopping = r->stopping;
            pthread_mutex_unlock(&r->mu);
            redisFree(c);
            c = NULL;
            if (!stopping) {
                vigil__log(&r->logger, VIGIL_LOG_WARN, "redis",
                           "stream reader lost its connection; reconnecting",
                           "address=%s:%d reason=\"%s\"", r->host, r->port, why);
                snprintf(last, sizeof(last), "%s", why);
            }
            next_try = vigil__monotonic_ms() + BACKOFF_BASE_MS;
            pthread_mutex_lock(&r->mu);
        }
    }
    r->sub_fd = -1;
    pthread_mutex_unlock(&r->mu);
    if (c)
        redisFree(c);
    return NULL;
}

/* ---- start and stop ------------------------------------------------------- */

int vigil__redis_start(vigil__redis *r)
{
    pthread_mutex_lock(&r->mu);
    int started = r->started;
    pthread_mutex_unlock(&r->mu);
    if (started)
        return VIGIL_OK;
    if (pthread_create(&r->pub, NULL, pub_main, r))
        return vigil__error_set(VIGIL_ERROR, "redis: cannot start the publisher thread");
    if (r->subscribe && pthread_create(&r->sub, NULL, sub_main, r)) {
        pthread_mutex_lock(&r->mu);
        r->stopping = 1;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        pthread_join(r->pub, NULL);
        return vigil__error_set(VIGIL_ERROR, "redis: cannot start the stream reader thread");
    }
    pthread_mutex_lock(&r->mu);
    r->has_sub = r->subscribe;
    r->started = 1;
    pthread_mutex_unlock(&r->mu);
    return VIGIL_OK;
}

void vigil__redis_stop(vigil__redis *r)
{
    pthread_mutex_lock(&r->mu);
    if (!r->started || r->stopping) {
        r->stopping = 1;
        pthread_mutex_unlock(&r->mu);
        return;
    }
    r->stopping = 1;
    r->drain_until = vigil__monotonic_ms() + DRAIN_MS;
    pthread_cond_broadcast(&r->cv);
    pthread_cond_broadcast(&r->sub_cv);
    if (r->sub_fd >= 0)
        shutdown(r->sub_fd, SHUT_RDWR);
    while (!r->pub_done && vigil__monotonic_ms() < r->drain_until)
        vigil__cond_wait_until(&r->done_cv, &r->mu, r->drain_until);
    if (!r->pub_done && r->pub_fd >= 0)
        shutdown(r->pub_fd, SHUT_RDWR);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->pub, NULL);
    if (r->has_sub) {
        /* the reader may have connected after the first shutdown */
        pthread_mutex_lock(&r->mu);
        if (r->sub_fd >= 0)
            shutdown(r->sub_fd, SHUT_RDWR);
        pthread_mutex_unlock(&r->mu);
        pthread_join(r->sub, NULL);
    }
    pthread_mutex_lock(&r->mu);
    size_t left = r->count;
    while (r->count) {
        item_free(&r->q[r->head]);
        r->head = (r->head + 1) % r->queue_max;
        r->count--;
    }
    r->bytes = 0;
    pthread_mutex_unlock(&r->mu);
    drop(r, "shutdown", (double)left);
}
