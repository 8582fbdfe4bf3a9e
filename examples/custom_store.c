/*
 * custom_store - a store type (a backend) written outside libvigil with the
 * public plug-in interface <vigil/sys/store.h>: "ring", which keeps the last
 * samples of every store in a fixed ring in memory, for a test rig or an
 * embedded device without a disk. It serves URLs "ring:NAME".
 *
 *   custom_store
 *
 * The type is registered on a vigil_store_registry (never a global), a store
 * is opened through it by URL as a hub opens its store_url, a batch is
 * written and read back with a query. The plug-in contract (docs/plugins.md)
 * shown end to end: the type's payload (the ring size and a count of open
 * stores) belongs to the registry, which frees it; a type of another version
 * is refused with VIGIL_EVERSION and its payload freed at once; a URL the
 * type cannot serve is refused through vigil_error_set(), and the store
 * reports that message. Calls the type leaves NULL (the action ledger,
 * audit, ...) fail with VIGIL_EUNSUPPORTED without reaching it.
 *
 * Build against an installed libvigil:
 *   cc -o custom_store custom_store.c $(pkg-config --cflags --libs vigil)
 *
 * Exit status 0 when every check passed, 1 otherwise.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vigil/vigil.h>
#include <vigil/sys/store.h>

/* ---- the store type ------------------------------------------------------------------ */

/* The type's payload: shared by every store the type opens. */
typedef struct ring_shared {
    size_t capacity; /* samples kept per store */
    int open_stores;
    int freed;
} ring_shared;

static void ring_shared_free(void *payload)
{
    ((ring_shared *)payload)->freed++;
}

typedef struct ring_sample {
    char name[64];
    double value;
    int64_t ts_ms;
} ring_sample;

/* One open store. The library serialises the calls on one handle. */
typedef struct ring {
    ring_shared *shared;
    ring_sample *v;
    size_t next, count;
} ring;

static int ring_open(void **out, const char *url, const char *rest, const vigil_store_options *opts,
                     void *payload)
{
    ring_shared *shared = payload;
    ring *r;
    (void)url;
    (void)opts; /* opts->read_only, opts->logger... are there when needed */
    if (rest[0] == '\0' || strchr(rest, '/'))
        return vigil_error_set(VIGIL_EINVAL, "ring: expected ring:NAME");
    r = calloc(1, sizeof(*r));
    if (!r || !(r->v = calloc(shared->capacity, sizeof(*r->v)))) {
        free(r);
        return vigil_error_set(VIGIL_ENOMEM, NULL);
    }
    r->shared = shared;
    shared->open_stores++;
    *out = r;
    return VIGIL_OK;
}

static void ring_close(void *handle)
{
    ring *r = handle;
    r->shared->open_stores--;
    free(r->v);
    free(r);
}

static int ring_write(void *handle, const vigil_batch *batch, vigil_store_write_result *result)
{
    ring *r = handle;
    for (size_t i = 0; i < vigil_batch_count(batch); i++) {
        const vigil_metric *m = vigil_batch_get(batch, i);
        ring_sample *s = &r->v[r->next];
        if (strlen(m->name) >= sizeof(s->name))
            return vigil_error_set(VIGIL_ELIMIT, "ring: metric names are at most 63 bytes");
        snprintf(s->name, sizeof(s->name), "%s", m->name);
        s->value = m->value;
        s->ts_ms = m->ts_ms;
        r->next = (r->next + 1) % r->shared->capacity;
        if (r->count < r->shared->capacity)
            r->count++;
    }
    result->written = vigil_batch_count(batch);
    return VIGIL_OK;
}

/* Raw points of the query's name, oldest first (tags are not kept: one series per name). */
static int ring_query(void *handle, const vigil_store_query *q, vigil_store_point_cb cb,
                      void *payload)
{
    ring *r = handle;
    size_t first = (r->next + r->shared->capacity - r->count) % r->shared->capacity;
    if (q->step_ms > 0 || q->nmatchers > 0)
        return vigil_error_set(VIGIL_EUNSUPPORTED, "ring: only raw queries by name");
    for (size_t i = 0; i < r->count; i++) {
        const ring_sample *s = &r->v[(first + i) % r->shared->capacity];
        vigil_store_series series = {0, s->name, s->name, NULL, 0};
        vigil_store_point point = {s->ts_ms, s->value, NULL};
        if (q->name && strcmp(q->name, s->name) != 0)
            continue;
        if (s->ts_ms < q->from_ms || (q->to_ms && s->ts_ms >= q->to_ms))
            continue;
        int rc = cb(&series, &point, payload);
        if (rc != 0)
            return rc; /* a callback's value goes back unchanged */
    }
    return VIGIL_OK;
}

static int ring_series_list(void *handle, const vigil_store_query *q, vigil_store_series_cb cb,
                            void *payload)
{
    (void)handle;
    (void)q;
    (void)cb;
    (void)payload;
    return vigil_error_set(VIGIL_EUNSUPPORTED, "ring: no series index");
}

/* The type, with @p shared as its payload. The registry copies the struct. */
static vigil_store_type ring_type(ring_shared *shared)
{
    vigil_store_type t;
    memset(&t, 0, sizeof(t)); /* optional members left NULL: VIGIL_EUNSUPPORTED */
    t.version = VIGIL_STORE_TYPE_VERSION;
    t.name = "ring";
    t.payload = shared;
    t.payload_free = ring_shared_free;
    t.open = ring_open;
    t.close = ring_close;
    t.write = ring_write;
    t.query = ring_query;
    t.series_list = ring_series_list;
    t.latest = ring_query;
    return t;
}

/* ---- using it ---------------------------------------------------------------------- */

static int print_point(const vigil_store_series *series, const vigil_store_point *point,
                       void *payload)
{
    double *sum = payload;
    printf("%s @%lld = %g\n", series->name, (long long)point->ts_ms, point->value);
    *sum += point->value;
    return 0;
}

static int fail(const char *what)
{
    fprintf(stderr, "custom_store: %s: %s\n", what, vigil_error_last()->message);
    return 1;
}

int main(void)
{
    vigil_store_registry *types = NULL;
    vigil_store *store = NULL;
    vigil_batch *batch = NULL;
    ring_shared shared = {3, 0, 0}, stale = {3, 0, 0};
    vigil_store_options opts = VIGIL_STORE_OPTIONS_INIT;
    vigil_store_query q = VIGIL_STORE_QUERY_INIT;
    vigil_store_write_result res = VIGIL_STORE_WRITE_RESULT_INIT;
    vigil_store_type t;
    double sum = 0;
    int status = 1, rc;

    if (vigil_store_registry_new(&types) != VIGIL_OK)
        return fail("registry");
    /* a type of another version is refused, and its payload freed at once */
    t = ring_type(&stale);
    t.version = VIGIL_STORE_TYPE_VERSION + 1;
    rc = vigil_store_register(types, &t);
    printf("refused: %s\n", vigil_error_last()->message);
    if (rc != VIGIL_EVERSION || stale.freed != 1) {
        fprintf(stderr, "custom_store: a bad version gave %s, payload freed %d times\n",
                vigil_strerror(rc), stale.freed);
        goto out;
    }
    t = ring_type(&shared);
    if (vigil_store_register(types, &t) != VIGIL_OK) {
        status = fail("register");
        goto out;
    }
    opts.registry = types; /* borrowed: it outlives every store opened through it */

    /* the type's own error comes back from vigil_store_open() */
    rc = vigil_store_open(&store, "ring:a/b", &opts);
    printf("refused: %s\n", vigil_error_last()->message);
    if (rc != VIGIL_EINVAL || strcmp(vigil_error_last()->message, "ring: expected ring:NAME")) {
        fprintf(stderr, "custom_store: a bad URL gave %s\n", vigil_strerror(rc));
        goto out;
    }
    if (vigil_store_open(&store, "ring:demo", &opts) != VIGIL_OK) {
        status = fail("open");
        goto out;
    }
    printf("opened a %s store, %d open\n", vigil_store_scheme(store), shared.open_stores);
    if (vigil_batch_new(&batch) != VIGIL_OK) {
        status = fail("batch");
        goto out;
    }
    for (int i = 1; i <= 4; i++) { /* four samples in a ring of three: the first goes */
        vigil_tag tag = {"host", "web-1"};
        vigil_metric m = {"cpu_usage", i / 10.0, 1732650000000LL + i * 1000, &tag, 1, NULL};
        if (vigil_batch_add(batch, &m) != VIGIL_OK) {
            status = fail("batch");
            goto out;
        }
    }
    if (vigil_store_write(store, batch, &res) != VIGIL_OK || res.written != 4) {
        status = fail("write");
        goto out;
    }
    q.name = "cpu_usage";
    if (vigil_store_query_run(store, &q, print_point, &sum) != VIGIL_OK) {
        status = fail("query");
        goto out;
    }
    if (sum < 0.89 || sum > 0.91) {
        fprintf(stderr, "custom_store: expected 0.2 + 0.3 + 0.4, got %g\n", sum);
        goto out;
    }
    /* what the type does not implement never reaches it */
    if (vigil_store_state_put(store, "k", "v", 1) != VIGIL_EUNSUPPORTED) {
        fprintf(stderr, "custom_store: state_put should be unsupported\n");
        goto out;
    }
    printf("unsupported: %s\n", vigil_error_last()->message);
    status = 0;
out:
    vigil_batch_free(batch);
    vigil_store_close(store);
    vigil_store_registry_free(types);
    if (status == 0 && (shared.freed != 1 || shared.open_stores != 0)) {
        fprintf(stderr, "custom_store: the registry did not free the payload\n");
        status = 1;
    }
    return status;
}
