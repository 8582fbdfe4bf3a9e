/* Events to Redis (vigil_hub_options.redis_*): the events bus is tapped into
 * the Redis publisher of lib/redis, and, with redis_subscribe, the events
 * other hubs published come back from the stream into this hub's bus
 * (without the tap, so they are never published again). */
#include "crypto/crypto.h"
#include "hub/hub_int.h"
#include "redis/redis.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void tap(void *payload, const char *type, const char *data)
{
    vigil__redis_publish(payload, type, data);
}

/* Another hub's event to this hub's subscribers. Its "ingest" rates gain
 * "hub": the origin (checked by the reader: [A-Za-z0-9._:-/{}], nothing to
 * escape), so a client can tell the hubs' figures apart instead of mixing
 * their running totals. */
static void deliver(void *payload, const char *origin, const char *type, const char *data)
{
    vigil_hub *hub = payload;
    if (strcmp(type, "ingest") == 0 && data[0] == '{' && data[1] != '}') {
        size_t n = strlen(origin) + strlen(data) + 16;
        char *d = vigil__malloc(n);
        if (!d)
            return;
        snprintf(d, n, "{\"hub\":\"%s\",%s", origin, data + 1);
        vigil__events_deliver(hub->events, type, d);
        vigil__free(d);
        return;
    }
    vigil__events_deliver(hub->events, type, data);
}

/* "<hostname>-<pid>-<8 hex>", the hostname's other characters as '_'. */
static void default_origin(char *out, size_t size)
{
    char host[64] = "";
    if (gethostname(host, sizeof(host) - 1) != 0 || !host[0])
        snprintf(host, sizeof(host), "hub");
    host[sizeof(host) - 1] = '\0';
    for (char *p = host; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-'))
            *p = '_';
    unsigned char rnd[4] = {0};
    if (vigil__crypto_random(rnd, sizeof(rnd)))
        memset(rnd, 0, sizeof(rnd));
    snprintf(out, size, "%s-%ld-%02x%02x%02x%02x", host, (long)getpid(), rnd[0], rnd[1], rnd[2],
             rnd[3]);
}

int vigil__hub_fanout_init(vigil_hub *hub, const vigil_hub_options *o)
{
    if (o->version < 3 || !o->redis_url || !*o->redis_url)
        return VIGIL_OK;
    char origin[VIGIL__REDIS_ORIGIN_MAX + 1];
    if (o->redis_hub_id && *o->redis_hub_id)
        snprintf(origin, sizeof(origin), "%s", o->redis_hub_id);
    else
        default_origin(origin, sizeof(origin));
    if (o->redis_hub_id && strlen(o->redis_hub_id) > VIGIL__REDIS_ORIGIN_MAX)
        return vigil__error_set(VIGIL_EINVAL, "redis hub_id: longer than %d bytes",
                                VIGIL__REDIS_ORIGIN_MAX);
    vigil__redis_options ro = {0};
    ro.url = o->redis_url;
    ro.stream = o->redis_stream;
    ro.maxlen = o->redis_maxlen;
    ro.queue_max = o->redis_queue_max;
    ro.password_env = o->redis_password_env;
    ro.origin = origin;
    ro.subscribe = o->redis_subscribe;
    ro.deliver = deliver;
    ro.deliver_payload = hub;
    ro.logger = hub->logger;
    ro.prom = hub->prom;
    int rc = vigil__redis_new(&hub->redis, &ro);
    if (rc)
        return rc;
    vigil__events_set_tap(hub->events, tap, hub->redis);
    vigil__log(&hub->logger, VIGIL_LOG_INFO, "hub", "events go to Redis",
               "stream=%s hub_id=%s subscribe=%s",
               o->redis_stream ? o->redis_stream : "vigil:events", origin,
               o->redis_subscribe ? "true" : "false");
    return VIGIL_OK;
}

int vigil__hub_fanout_start(vigil_hub *hub)
{
    return hub->redis ? vigil__redis_start(hub->redis) : VIGIL_OK;
}

void vigil__hub_fanout_stop(vigil_hub *hub)
{
    if (hub->redis)
        vigil__redis_stop(hub->redis);
}

void vigil__hub_fanout_free(vigil_hub *hub)
{
    vigil__redis_free(hub->redis);
    hub->redis = NULL;
}
