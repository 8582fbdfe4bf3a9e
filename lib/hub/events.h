/* The hub's events bus (lib/hub/events.c): publishers append SSE frames to
 * bounded per-subscriber queues; a subscriber whose queue is full is dropped.
 * Private to lib/hub. */
#ifndef VIGIL_HUB_EVENTS_H
#define VIGIL_HUB_EVENTS_H

#include "api/internal.h"

typedef struct vigil__events vigil__events;
typedef struct vigil__events_sub vigil__events_sub;

int vigil__events_new(vigil__events **out, size_t queue_max, size_t max_subscribers);
/* Ends every subscription (readers see the end once their queue is read)
 * and refuses new ones. */
void vigil__events_close(vigil__events *ev);
/* Every subscription must be closed first. */
void vigil__events_free(vigil__events *ev);
/* Publishes "event: type\ndata: ...\n\n" (newlines in data become several
 * data lines). Checked by the caller. */
int vigil__events_publish(vigil__events *ev, const char *type, const char *data);
/* A tap sees every event vigil__events_publish() is given (not those of
 * vigil__events_deliver()), before the subscribers; set before the first
 * publish. It must not block. */
typedef void (*vigil__events_tap_cb)(void *payload, const char *type, const char *data);
void vigil__events_set_tap(vigil__events *ev, vigil__events_tap_cb tap, void *payload);
/* As vigil__events_publish(), without the tap: events that came from
 * elsewhere (another hub's, read from Redis). */
int vigil__events_deliver(vigil__events *ev, const char *type, const char *data);
/* A subscription as a response stream; VIGIL_EOVERLOADED when full,
 * VIGIL_ECLOSED after close. */
int vigil__events_subscribe(vigil__events *ev, void **ctx, const vigil__api_stream_ops **ops);
size_t vigil__events_subscribers(vigil__events *ev);
uint64_t vigil__events_dropped(vigil__events *ev);

#endif
