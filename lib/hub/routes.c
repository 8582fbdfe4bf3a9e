/* The hub's HTTP routes: /readyz, /v1/ingest, /v1/query, /v1/series,
 * /v1/events, and its metrics on /metrics. */
#include "hub/hub_int.h"
#include "internal/json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define QUERY_MAX_POINTS 200000
#define QUERY_MAX_SERIES 10000

/* ---- /readyz ---------------------------------------------------------------- */

static void route_readyz(vigil__api_call *call, void *payload)
{
    vigil_hub *hub = payload;
    vigil_api_response *resp = vigil__api_call_response(call);
    char failed[600] = "";
    pthread_mutex_lock(&hub->mu);
    int running = hub->started && !hub->stopping;
    if (hub->store_failing)
        snprintf(failed, sizeof(failed), "store: %s", hub->store_error);
    pthread_mutex_unlock(&hub->mu);
    if (!running) {
        vigil__api_resp_error(resp, 503, "unavailable", "the hub is not running", NULL);
    } else if (failed[0]) {
        vigil__api_resp_error(resp, 503, "unavailable", failed, NULL);
    } else {
        /* read-only: an unauthenticated probe never writes to the store */
        void *v = NULL;
        size_t vlen = 0;
        int rc = vigil_store_state_get(hub->reader, "vigil.hub.readyz", &v, &vlen);
        vigil_free(v);
        if (rc == VIGIL_ENOTFOUND)
            rc = VIGIL_OK;
        if (rc) {
            char msg[600];
            snprintf(msg, sizeof(msg), "store: %s", vigil_error_last()->message);
            vigil__api_resp_error(resp, 503, "unavailable", msg, NULL);
        } else {
            static const char body[] = "{\"status\":\"ready\"}";
            vigil__api_resp_json(resp, 200, body, sizeof(body) - 1);
        }
    }
    vigil__api_finish(call);
}

/* ---- /v1/ingest ------------------------------------------------------------- */

static void ingest_done(int status, const char *message, const vigil_hub_ingest_result *result,
                        void *payload)
{
    vigil__api_call *call = payload;
    vigil_api_response *resp = vigil__api_call_response(call);
    if (status) {
        vigil__api_resp_from_code(resp, status, message);
    } else {
        /* Formatted by hand: this runs once per ingest on the answering
         * thread. */
        static const char head[] = "{\"accepted\":";
        char body[96], digits[24];
        size_t n = sizeof(head) - 1, nd = 0, v = result->accepted;
        memcpy(body, head, n);
        do {
            digits[nd++] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        while (nd)
            body[n++] = digits[--nd];
        const char *tail = result->duplicate ? ",\"duplicate\":true}" : ",\"duplicate\":false}";
        size_t tl = strlen(tail);
        memcpy(body + n, tail, tl + 1);
        vigil__api_resp_json(resp, 202, body, n + tl);
    }
    vigil__api_finish(call);
}

static void route_ingest(vigil__api_call *call, void *payload)
{
    vigil_hub *hub = payload;
    vigil_api_response *resp = vigil__api_call_response(call);
    size_t len = 0;
    const char *body = vigil__api_call_body(call, &len);
    vigil_batch *batch = NULL;
    int rc = vigil__hub_full(hub) ? VIGIL_EOVERLOADED : vigil_batch_new(&batch);
    if (!rc) {
        vigil_batch_decode_options o = VIGIL_BATCH_DECODE_OPTIONS_INIT;
        o.max_metrics = hub->max_batch_metrics;
        rc = vigil_batch_decode_json(batch, body, len, &o);
        /* The decoder's EINVAL is a body problem (unknown or duplicate field,
         * duplicate tag), answered like the other invalid metrics. */
        if (rc == VIGIL_EINVAL)
            rc = VIGIL_EVALUE;
        if (rc)
            vigil__hub_rejected(hub, vigil__hub_reason(rc));
    }
    const char *const *agents = NULL;
    size_t nagents = vigil__api_call_agents(call, &agents);
    if (!rc && nagents) {
        char why[768];
        rc = vigil__hub_bind_batch(&batch, vigil__api_call_principal(call), agents, nagents, why,
                                   sizeof(why));
        if (rc == VIGIL_EPERM) {
            vigil__hub_rejected(hub, "agent_mismatch");
            vigil_batch_free(batch);
            vigil__api_resp_error(resp, 403, "agent_mismatch", why, NULL);
            vigil__api_finish(call);
            return;
        }
    }
    if (!rc)
        rc = vigil__hub_enqueue(hub, batch, 1, ingest_done, call);
    if (rc) {
        vigil_batch_free(batch);
        vigil__api_resp_from_code(resp, rc, vigil_error_last()->message);
        vigil__api_finish(call);
    }
}

/* ---- query parameters ---------------------------------------------------------- */

static int parse_time(int64_t *out, const char *key, const char *text, int64_t now)
{
    return vigil__hub_parse_time(out, key, text, now, 0);
}

typedef struct selector {
    vigil_store_query q;
    vigil_store_matcher matchers[VIGIL_STORE_MATCHERS_MAX];
    char *keys[VIGIL_STORE_MATCHERS_MAX];
} selector;

static void selector_dispose(selector *s)
{
    for (size_t i = 0; i < s->q.nmatchers; i++)
        vigil__free(s->keys[i]);
}

static int has_glob(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

/* name (required or not) and match=key:value parameters. */
static int parse_selector(selector *s, const vigil__api_call *call, int name_required)
{
    vigil_store_query q = VIGIL_STORE_QUERY_INIT;
    s->q = q;
    const char *name = vigil__api_call_param(call, "name");
    if (name && !*name)
        name = NULL;
    if (!name && name_required)
        return vigil__error_set(VIGIL_EINVAL, "name: required");
    if (name) {
        if (has_glob(name))
            s->q.name_op = VIGIL_STORE_MATCH_GLOB;
        else if (!vigil_metric_name_valid(name))
            return vigil__error_set(VIGIL_EINVAL, "name: \"%.64s\" is not a metric name", name);
        s->q.name = name;
    }
    size_t n = 0;
    const vigil__api_param *ps = vigil__api_call_params(call, &n);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(ps[i].key, "match") != 0)
            continue;
        const char *v = ps[i].value;
        const char *colon = strchr(v, ':');
        if (!colon || colon == v)
            return vigil__error_set(VIGIL_EINVAL, "match: expected key:value, got \"%.64s\"", v);
        if (s->q.nmatchers >= VIGIL_STORE_MATCHERS_MAX)
            return vigil__error_set(VIGIL_EINVAL, "match: at most %d matchers",
                                    VIGIL_STORE_MATCHERS_MAX);
        char *key = vigil__strndup(v, (size_t)(colon - v));
        if (!key)
            return vigil__error_oom();
        size_t k = s->q.nmatchers++;
        s->keys[k] = key;
        if (!vigil_metric_name_valid(key))
            return vigil__error_set(VIGIL_EINVAL, "match: \"%.64s\" is not a tag key", key);
        s->matchers[k].key = key;
        s->matchers[k].value = colon + 1;
        s->matchers[k].op = has_glob(colon + 1) ? VIGIL_STORE_MATCH_GLOB : VIGIL_STORE_MATCH_EQ;
    }
    s->q.matchers = s->matchers;
    return VIGIL_OK;
}

/* Appends `open`, then "name":...,"tags":{...} of a series. */
static int put_series(vigil_buf *b, const char *open, const vigil_store_series *s)
{
    int rc = vigil__buf_puts(b, open);
    if (!rc)
        rc = vigil__buf_puts(b, "\"name\":");
    if (!rc)
        rc = vigil__json_put_string(b, s->name, strlen(s->name));
    if (!rc)
        rc = vigil__buf_puts(b, ",\"tags\":{");
    for (size_t i = 0; i < s->ntags && !rc; i++) {
        if (i)
            rc = vigil__buf_putc(b, ',');
        if (!rc)
            rc = vigil__json_put_string(b, s->tags[i].key, strlen(s->tags[i].key));
        if (!rc)
            rc = vigil__buf_putc(b, ':');
        if (!rc)
            rc = vigil__json_put_string(b, s->tags[i].value, strlen(s->tags[i].value));
    }
    return rc ? rc : vigil__buf_putc(b, '}');
}

static int put_value(vigil_buf *b, double v)
{
    if (isnan(v) || isinf(v))
        return vigil__buf_puts(b, "null");
    return vigil__json_put_double(b, v);
}

/* ---- /v1/query ------------------------------------------------------------------ */

typedef struct query_out {
    vigil_buf b;
    int64_t series_id;
    int any;
    size_t points;
    size_t series;
    int err;
} query_out;

#define STOP_LIMIT 1
#define STOP_OOM   2

#define STR_(x) #x
#define STR(x)  STR_(x)

/* A selector and what a listing callback writes; all zero to start. */
typedef struct listing {
    selector sel;
    query_out o;
} listing;

/* Starts a listing: parses the selector and opens {"series":[. */
static int listing_start(listing *l, const vigil__api_call *call, int name_required)
{
    memset(l, 0, sizeof(*l));
    int rc = parse_selector(&l->sel, call, name_required);
    return rc ? rc : vigil__buf_puts(&l->o.b, "{\"series\":[");
}

/* The code of a store listing: a callback's STOP_LIMIT is VIGIL_EINVAL with
 * the message `limit`, STOP_OOM out of memory. */
static int listing_code(int rc, const char *limit)
{
    if (rc == STOP_LIMIT)
        return vigil__error_set(VIGIL_EINVAL, "%s", limit);
    return rc == STOP_OOM ? vigil__error_oom() : rc;
}

/* Closes the listing's JSON with `tail` and answers the call. */
static void listing_answer(vigil__api_call *call, listing *l, int rc, const char *tail)
{
    if (!rc)
        rc = vigil__buf_puts(&l->o.b, tail);
    selector_dispose(&l->sel);
    vigil__api_answer(call, rc == VIGIL_ELIMIT ? VIGIL_EINVAL : rc, 200, &l->o.b);
}

static int query_point(const vigil_store_series *s, const vigil_store_point *p, void *payload)
{
    query_out *o = payload;
    int rc = VIGIL_OK;
    if (!o->any || s->id != o->series_id) {
        if (++o->series > QUERY_MAX_SERIES)
            return STOP_LIMIT;
        rc = put_series(&o->b, o->any ? "]},{" : "{", s);
        if (!rc)
            rc = vigil__buf_puts(&o->b, ",\"points\":[");
        o->any = 1;
        o->series_id = s->id;
    } else {
        rc = vigil__buf_putc(&o->b, ',');
    }
    if (++o->points > QUERY_MAX_POINTS)
        return STOP_LIMIT;
    if (!rc)
        rc = vigil__buf_putc(&o->b, '[');
    if (!rc)
        rc = vigil__json_put_int64(&o->b, p->ts_ms);
    if (!rc)
        rc = vigil__buf_putc(&o->b, ',');
    if (!rc)
        rc = put_value(&o->b, p->error ? NAN : p->value);
    if (!rc)
        rc = vigil__buf_putc(&o->b, ']');
    return rc ? STOP_OOM : 0;
}

static void route_query(vigil__api_call *call, void *payload)
{
    vigil_hub *hub = payload;
    listing l;
    vigil_store_query *q = &l.sel.q;
    int64_t now = vigil__now_ms();
    int rc = listing_start(&l, call, 1);
    const char *from = vigil__api_call_param(call, "from");
    const char *to = vigil__api_call_param(call, "to");
    const char *step = vigil__api_call_param(call, "step");
    const char *agg = vigil__api_call_param(call, "agg");
    q->from_ms = now - 3600 * 1000;
    q->to_ms = now + 1;
    if (!rc && from)
        rc = parse_time(&q->from_ms, "from", from, now);
    if (!rc && to) {
        rc = parse_time(&q->to_ms, "to", to, now);
        q->to_ms += 1; /* "to" is inclusive for the caller */
    }
    if (!rc && q->to_ms <= q->from_ms)
        rc = vigil__error_set(VIGIL_EINVAL, "to: must be after from");
    if (!rc && step) {
        if (vigil_scalar_parse_duration(&q->step_ms, step) || q->step_ms <= 0)
            rc = vigil__error_set(VIGIL_EINVAL,
                                  "step: expected a duration such as \"60s\", got \"%.40s\"", step);
    }
    if (!rc && agg) {
        if (!step)
            rc = vigil__error_set(VIGIL_EINVAL, "agg: needs step");
        else if (vigil_store_agg_parse(&q->aggregate, agg))
            rc = vigil__error_set(VIGIL_EINVAL,
                                  "agg: expected mean, min, max, sum, count or last, got "
                                  "\"%.40s\"",
                                  agg);
    }
    if (!rc)
        rc = listing_code(vigil_store_query_run(hub->reader, q, query_point, &l.o),
                          "the result exceeds " STR(QUERY_MAX_POINTS) " points or " STR(
                              QUERY_MAX_SERIES) " series: narrow the range or the matchers, "
                                                "or set step");
    listing_answer(call, &l, rc, l.o.any ? "]}]}" : "]}");
}

/* ---- /v1/series ---------------------------------------------------------------- */

static int series_point(const vigil_store_series *s, const vigil_store_point *p, void *payload)
{
    query_out *o = payload;
    if (++o->series > QUERY_MAX_SERIES)
        return STOP_LIMIT;
    int rc = put_series(&o->b, o->any ? ",{" : "{", s);
    o->any = 1;
    if (!rc)
        rc = vigil__buf_puts(&o->b, ",\"latest\":{\"ts\":");
    if (!rc)
        rc = vigil__json_put_int64(&o->b, p->ts_ms);
    if (!rc)
        rc = vigil__buf_puts(&o->b, ",\"value\":");
    if (!rc)
        rc = put_value(&o->b, p->error ? NAN : p->value);
    if (!rc && p->error) {
        rc = vigil__buf_puts(&o->b, ",\"error\":");
        if (!rc)
            rc = vigil__json_put_string(&o->b, p->error, strlen(p->error));
    }
    if (!rc)
        rc = vigil__buf_puts(&o->b, "}}");
    return rc ? STOP_OOM : 0;
}

static void route_series(vigil__api_call *call, void *payload)
{
    vigil_hub *hub = payload;
    listing l;
    int rc = listing_start(&l, call, 0);
    if (!rc)
        rc = listing_code(vigil_store_latest(hub->reader, &l.sel.q, series_point, &l.o),
                          "more than " STR(QUERY_MAX_SERIES) " series match: narrow the name or "
                                                             "the matchers");
    listing_answer(call, &l, rc, "]}");
}

/* ---- /v1/events ---------------------------------------------------------------- */

static void route_events(vigil__api_call *call, void *payload)
{
    vigil_hub *hub = payload;
    vigil_api_response *resp = vigil__api_call_response(call);
    void *ctx = NULL;
    const vigil__api_stream_ops *ops = NULL;
    int rc = vigil__events_subscribe(hub->events, &ctx, &ops);
    if (!rc)
        rc = vigil__api_resp_stream(resp, 200, "text/event-stream", ops, ctx);
    if (rc)
        vigil__api_resp_from_code(resp, rc, vigil_error_last()->message);
    vigil__api_finish(call);
}

/* ---- mount -------------------------------------------------------------------- */

int vigil_hub_mount(vigil_hub *hub, vigil_api *api)
{
    if (!hub || !api)
        return vigil__error_set(VIGIL_EINVAL, "hub mount: NULL argument");
    vigil__json_init();
    static const vigil__api_route_def routes[] = {
        {"GET", "/readyz", 0, 0, route_readyz},
        {"POST", "/v1/ingest", VIGIL_API_SCOPE_INGEST, VIGIL__API_BODY, route_ingest},
        {"GET", "/v1/query", VIGIL_API_SCOPE_READ, 0, route_query},
        {"GET", "/v1/series", VIGIL_API_SCOPE_READ, 0, route_series},
        {"GET", "/v1/events", VIGIL_API_SCOPE_READ, VIGIL__API_QUERY_TOKEN, route_events},
    };
    int rc = vigil__api_routes(api, routes, VIGIL__ARRAY_LEN(routes), hub);
    if (!rc)
        rc = vigil__hub_mount_policy_routes(hub, api);
    if (!rc)
        rc = vigil__hub_mount_admin_routes(hub, api);
    if (!rc)
        rc = vigil__hub_mount_export_routes(hub, api);
    if (!rc)
        rc = vigil__hub_mount_cluster_routes(hub, api);
    if (!rc)
        rc = vigil__api_add_registry(api, hub->prom);
    if (!rc)
        rc = vigil__hub_mount_ui(hub, api);
    return rc;
}
