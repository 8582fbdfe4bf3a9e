/* The events bus behind GET /v1/events. A published event is formatted once
 * as an SSE frame and shared (reference counted) by the queues of every
 * subscriber. Queues are bounded: a subscriber that cannot keep up is
 * dropped, its stream ends, and its memory is released at once.
 *
 * Wake callbacks (the server resuming a paused connection) are called
 * outside the bus mutex, under a separate publisher mutex; closing a
 * subscription waits for a wake in progress, so a wake never reaches a
 * subscription that is gone. */
#include "hub/events.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

typedef struct frame {
    size_t refs;
    size_t len;
    char data[];
} frame;

struct vigil__events_sub {
    vigil__events *ev;
    frame **q;
    size_t head, count;
    size_t off;
    int ended;
    int dropped;
    vigil_api_wake_cb wake;
    void *wake_payload;
    int wakers;
    struct vigil__events_sub *prev, *next;
};

struct vigil__events {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_mutex_t pub_mu;
    vigil__events_sub *subs;
    size_t nsubs;
    size_t queue_max;
    size_t max_subs;
    int closed;
    uint64_t seq;
    uint64_t dropped;
    vigil__events_sub **wake_buf;
    vigil__events_tap_cb tap;
    void *tap_payload;
};

static const char k_hello[] = ": connected\nretry: 2000\n\n";

int vigil__events_new(vigil__events **out, size_t queue_max, size_t max_subscribers)
{
    vigil__events *ev = vigil__calloc(1, sizeof(*ev));
    if (!ev)
        return vigil__error_oom();
    ev->queue_max = queue_max ? queue_max : 256;
    ev->max_subs = max_subscribers ? max_subscribers : 64;
    ev->wake_buf = vigil__calloc(ev->max_subs, sizeof(vigil__events_sub *));
    if (!ev->wake_buf) {
        vigil__free(ev);
        return vigil__error_oom();
    }
    pthread_mutex_init(&ev->mu, NULL);
    pthread_mutex_init(&ev->pub_mu, NULL);
    pthread_cond_init(&ev->cv, NULL);
    *out = ev;
    return VIGIL_OK;
}

void vigil__events_free(vigil__events *ev)
{
    if (!ev)
        return;
    pthread_cond_destroy(&ev->cv);
    pthread_mutex_destroy(&ev->pub_mu);
    pthread_mutex_destroy(&ev->mu);
    vigil__free(ev->wake_buf);
    vigil__free(ev);
}

static void frame_release(frame *f)
{
    if (f && --f->refs == 0)
        vigil__free(f);
}

/* Drops every queued frame of a subscriber; called with ev->mu held. */
static void sub_clear(vigil__events_sub *s)
{
    size_t cap = s->ev->queue_max + 1;
    while (s->count) {
        frame_release(s->q[s->head]);
        s->q[s->head] = NULL;
        s->head = (s->head + 1) % cap;
        s->count--;
    }
    s->off = 0;
}

static int sub_push(vigil__events_sub *s, frame *f)
{
    size_t cap = s->ev->queue_max + 1;
    if (s->count == cap)
        return VIGIL_EOVERLOADED;
    s->q[(s->head + s->count) % cap] = f;
    s->count++;
    f->refs++;
    return VIGIL_OK;
}

/* Calls the wake callbacks of `n` subscribers collected under ev->mu (whose
 * `wakers` were raised); called with pub_mu held and ev->mu not held. */
static void wake_all(vigil__events *ev, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        vigil__events_sub *s = ev->wake_buf[i];
        s->wake(s->wake_payload);
    }
    if (!n)
        return;
    pthread_mutex_lock(&ev->mu);
    for (size_t i = 0; i < n; i++)
        ev->wake_buf[i]->wakers--;
    pthread_cond_broadcast(&ev->cv);
    pthread_mutex_unlock(&ev->mu);
}

static frame *frame_make(uint64_t id, const char *type, const char *data)
{
    size_t lines = 1;
    for (const char *p = data; *p; p++)
        lines += *p == '\n';
    size_t len = strlen(data);
    size_t need = 64 + strlen(type) + len + lines * 7;
    frame *f = vigil__malloc(sizeof(frame) + need);
    if (!f)
        return NULL;
    f->refs = 1;
    int w = snprintf(f->data, need, "id: %llu\nevent: %s\n", (unsigned long long)id, type);
    size_t n = w > 0 ? (size_t)w : 0;
    const char *p = data;
    for (;;) {
        const char *nl = strchr(p, '\n');
        size_t l = nl ? (size_t)(nl - p) : strlen(p);
        if (l && p[l - 1] == '\r')
            l--;
        memcpy(f->data + n, "data: ", 6);
        n += 6;
        memcpy(f->data + n, p, l);
        n += l;
        f->data[n++] = '\n';
        if (!nl)
            break;
        p = nl + 1;
    }
    f->data[n++] = '\n';
    f->len = n;
    return f;
}

void vigil__events_set_tap(vigil__events *ev, vigil__events_tap_cb tap, void *payload)
{
    ev->tap = tap;
    ev->tap_payload = payload;
}

int vigil__events_publish(vigil__events *ev, const char *type, const char *data)
{
    if (ev->tap)
        ev->tap(ev->tap_payload, type, data);
    return vigil__events_deliver(ev, type, data);
}

int vigil__events_deliver(vigil__events *ev, const char *type, const char *data)
{
    pthread_mutex_lock(&ev->pub_mu);
    pthread_mutex_lock(&ev->mu);
    if (ev->closed) {
        pthread_mutex_unlock(&ev->mu);
        pthread_mutex_unlock(&ev->pub_mu);
        return VIGIL_OK;
    }
    uint64_t id = ++ev->seq;
    pthread_mutex_unlock(&ev->mu);
    frame *f = frame_make(id, type, data);
    if (!f) {
        pthread_mutex_unlock(&ev->pub_mu);
        return vigil__error_oom();
    }
    size_t nw = 0;
    pthread_mutex_lock(&ev->mu);
    for (vigil__events_sub *s = ev->subs; s; s = s->next) {
        if (s->dropped || s->ended)
            continue;
        int was_empty = s->count == 0;
        if (sub_push(s, f)) {
            s->dropped = 1;
            ev->dropped++;
            sub_clear(s);
        } else if (!was_empty) {
            continue;
        }
        if (s->wake && nw < ev->max_subs) {
            s->wakers++;
            ev->wake_buf[nw++] = s;
        }
    }
    frame_release(f);
    pthread_mutex_unlock(&ev->mu);
    wake_all(ev, nw);
    pthread_mutex_unlock(&ev->pub_mu);
    return VIGIL_OK;
}

void vigil__events_close(vigil__events *ev)
{
    size_t nw = 0;
    if (!ev)
        return;
    pthread_mutex_lock(&ev->pub_mu);
    pthread_mutex_lock(&ev->mu);
    ev->closed = 1;
    for (vigil__events_sub *s = ev->subs; s; s = s->next) {
        s->ended = 1;
        if (s->wake && nw < ev->max_subs) {
            s->wakers++;
            ev->wake_buf[nw++] = s;
        }
    }
    pthread_mutex_unlock(&ev->mu);
    wake_all(ev, nw);
    pthread_mutex_unlock(&ev->pub_mu);
}

size_t vigil__events_subscribers(vigil__events *ev)
{
    pthread_mutex_lock(&ev->mu);
    size_t n = ev->nsubs;
    pthread_mutex_unlock(&ev->mu);
    return n;
}

uint64_t vigil__events_dropped(vigil__events *ev)
{
    pthread_mutex_lock(&ev->mu);
    uint64_t n = ev->dropped;
    pthread_mutex_unlock(&ev->mu);
    return n;
}

/* ---- a subscription as a response stream ---------------------------------- */

static int sub_read(void *ctx, char *buf, size_t size, size_t *n)
{
    vigil__events_sub *s = ctx;
    vigil__events *ev = s->ev;
    size_t cap = ev->queue_max + 1;
    size_t got = 0;
    *n = 0;
    pthread_mutex_lock(&ev->mu);
    if (s->dropped) {
        pthread_mutex_unlock(&ev->mu);
        return VIGIL_ECLOSED;
    }
    while (s->count && got < size) {
        frame *f = s->q[s->head];
        size_t take = f->len - s->off;
        if (take > size - got)
            take = size - got;
        memcpy(buf + got, f->data + s->off, take);
        got += take;
        s->off += take;
        if (s->off == f->len) {
            frame_release(f);
            s->q[s->head] = NULL;
            s->head = (s->head + 1) % cap;
            s->count--;
            s->off = 0;
        }
    }
    int ended = s->ended && s->count == 0;
    pthread_mutex_unlock(&ev->mu);
    *n = got;
    return got == 0 && ended ? VIGIL_ECLOSED : VIGIL_OK;
}

static void sub_set_wake(void *ctx, vigil_api_wake_cb wake, void *payload)
{
    vigil__events_sub *s = ctx;
    pthread_mutex_lock(&s->ev->mu);
    s->wake = wake;
    s->wake_payload = payload;
    pthread_mutex_unlock(&s->ev->mu);
}

static void sub_close(void *ctx)
{
    vigil__events_sub *s = ctx;
    vigil__events *ev = s->ev;
    pthread_mutex_lock(&ev->mu);
    if (s->prev)
        s->prev->next = s->next;
    else
        ev->subs = s->next;
    if (s->next)
        s->next->prev = s->prev;
    ev->nsubs--;
    while (s->wakers)
        pthread_cond_wait(&ev->cv, &ev->mu);
    sub_clear(s);
    pthread_mutex_unlock(&ev->mu);
    vigil__free(s->q);
    vigil__free(s);
}

static const vigil__api_stream_ops k_sub_ops = {sub_read, sub_set_wake, sub_close};

int vigil__events_subscribe(vigil__events *ev, void **ctx, const vigil__api_stream_ops **ops)
{
    vigil__events_sub *s = vigil__calloc(1, sizeof(*s));
    if (!s)
        return vigil__error_oom();
    s->ev = ev;
    s->q = vigil__calloc(ev->queue_max + 1, sizeof(frame *));
    frame *hello = vigil__malloc(sizeof(frame) + sizeof(k_hello));
    if (!s->q || !hello) {
        vigil__free(hello);
        vigil__free(s->q);
        vigil__free(s);
        return vigil__error_oom();
    }
    hello->refs = 0;
    hello->len = sizeof(k_hello) - 1;
    memcpy(hello->data, k_hello, sizeof(k_hello));
    pthread_mutex_lock(&ev->mu);
    if (ev->closed || ev->nsubs >= ev->max_subs) {
        int closed = ev->closed;
        size_t max = ev->max_subs;
        pthread_mutex_unlock(&ev->mu);
        vigil__free(hello);
        vigil__free(s->q);
        vigil__free(s);
        if (closed)
            return vigil__error_set(VIGIL_ECLOSED, "events: the hub is shutting down");
        return vigil__error_set(VIGIL_EOVERLOADED, "events: %zu subscribers already connected",
                                max);
    }
    sub_push(s, hello);
    s->next = ev->subs;
    if (ev->subs)
        ev->subs->prev = s;
    ev->subs = s;
    ev->nsubs++;
    pthread_mutex_unlock(&ev->mu);
    *ctx = s;
    *ops = &k_sub_ops;
    return VIGIL_OK;
}
