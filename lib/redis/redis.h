/* Events to Redis streams (lib/redis/redis.c), the only folder that includes
 * hiredis (make check-deps). A publisher thread takes events from a bounded
 * queue and appends them to one stream with XADD ... MAXLEN ~ N; a full queue
 * drops the event and counts it, so a slow or dead Redis never blocks the
 * caller. A lost connection is dialled again with a jittered exponential
 * backoff. With `subscribe`, a second thread reads the stream on its own
 * connection (XREAD BLOCK) and hands every entry whose origin differs from
 * this one's to `deliver`. Private to the library. */
#ifndef VIGIL_REDIS_REDIS_H
#define VIGIL_REDIS_REDIS_H

#include "api/internal.h"
#include "vigil/log.h"

#include <stddef.h>
#include <stdint.h>

/* URL, stream and origin bounds, and the queue's byte bound. */
#define VIGIL__REDIS_URL_MAX     512
#define VIGIL__REDIS_STREAM_MAX  200
#define VIGIL__REDIS_ORIGIN_MAX  128
#define VIGIL__REDIS_QUEUE_BYTES (32u * 1024 * 1024)
#define VIGIL__REDIS_DATA_MAX    (64 * 1024)

typedef struct vigil__redis vigil__redis;

/* An event read from the stream that another origin published; called from
 * the subscriber thread, type and data valid during the call. */
typedef void (*vigil__redis_deliver_cb)(void *payload, const char *origin, const char *type,
                                        const char *data);

typedef struct vigil__redis_options {
    const char *url;          /* redis://host[:port][/db]; required */
    const char *stream;       /* stream key; NULL or "": "vigil:events" */
    size_t maxlen;            /* approximate bound of the stream; 0: 100,000 */
    size_t queue_max;         /* events waiting for the publisher; 0: 10,000 */
    const char *password_env; /* variable holding the password (AUTH); NULL or "": none */
    const char *origin;       /* this publisher's id, written with every event; required */
    int subscribe;            /* read the stream and deliver other origins' events */
    vigil__redis_deliver_cb deliver;
    void *deliver_payload;
    vigil_logger logger;
    vigil__prom *prom; /* its metrics are added here (vigil_redis_*) */
} vigil__redis_options;

/* Checks a redis:// URL: VIGIL_OK, or VIGIL_EVALUE with the reason in `why`
 * (a password in the URL, rediss://, a bad port or db...). */
int vigil__redis_url_check(const char *url, char *why, size_t why_size);
/* Creates the publisher (no thread, no connection yet): VIGIL_OK;
 * VIGIL_EINVAL (a bad URL, stream or origin; the variable of password_env
 * unset or empty), VIGIL_ENOMEM. */
int vigil__redis_new(vigil__redis **out, const vigil__redis_options *o);
/* Starts the publisher (and subscriber) threads: VIGIL_OK or VIGIL_ERROR. */
int vigil__redis_start(vigil__redis *r);
/* Publishes what is queued for up to 2 s while connected, then stops and
 * joins the threads; events still queued are dropped (reason "shutdown").
 * Idempotent. */
void vigil__redis_stop(vigil__redis *r);
/* Stops and frees; NULL is a no-op. */
void vigil__redis_free(vigil__redis *r);
/* Queues an event for XADD; never blocks on Redis. A full queue (or one past
 * VIGIL__REDIS_QUEUE_BYTES) drops it, counted with reason "queue_full".
 * Thread-safe. */
void vigil__redis_publish(vigil__redis *r, const char *type, const char *data);
/* 1 while the publisher holds a connection. */
int vigil__redis_connected(vigil__redis *r);

#endif
