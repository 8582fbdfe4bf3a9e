/*
 * The store front-end: backend registry, URL scheme dispatch, argument
 * validation and the per-store mutex. Backends (sys/store.h) see only
 * validated input.
 */
#include "internal/common.h"
#include "internal/plugin.h"
#include "internal/store.h"
#include "store/store_int.h"
#include "vigil/sys/store.h"

#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHEME_MAX 32

struct vigil_store_registry {
    /* vigil_store_type copies, which open stores point to; first, for
     * vigil__plugin_registry_free() */
    vigil__plugin_list types;
};

VIGIL__PLUGIN_HEAD_CHECK(vigil_store_type);

static const vigil__plugin_kind k_kind = {"store type", VIGIL_STORE_TYPE_VERSION, "+.-",
                                          SCHEME_MAX};

struct vigil_store {
    const vigil_store_type *backend;
    void *handle;
    pthread_mutex_t mu;
    char scheme[SCHEME_MAX + 1];
};

/* ---- small validation helpers ------------------------------------------------ */

static int check_text(const char *what, const char *s, size_t max, int required)
{
    if (!s) {
        if (required)
            return vigil__error_set(VIGIL_EINVAL, "store: %s is required", what);
        return VIGIL_OK;
    }
    size_t len = strlen(s);
    if (required && len == 0)
        return vigil__error_set(VIGIL_EINVAL, "store: %s must not be empty", what);
    if (len > max)
        return vigil__error_set(VIGIL_ELIMIT, "store: %s is %zu bytes, more than the limit of %zu",
                                what, len, max);
    if (!vigil__utf8_valid(s, len))
        return vigil__error_set(VIGIL_EENCODING, "store: %s is not valid UTF-8", what);
    return VIGIL_OK;
}

static int check_version(const char *what, unsigned int version, unsigned int current)
{
    char label[64];
    snprintf(label, sizeof(label), "store %s", what);
    return vigil__version_check(label, version, current);
}

/* Makes sure a failing backend call leaves a message behind. */
static int backend_rc(const vigil_store *st, const char *op, int rc)
{
    if (rc < 0 && vigil_error_last()->code != rc)
        return vigil__error_set(rc, "%s: %s failed: %s", st->scheme, op, vigil_strerror(rc));
    return rc;
}

static int unsupported(const vigil_store *st, const char *op)
{
    return vigil__error_set(VIGIL_EUNSUPPORTED, "%s: the backend does not support %s", st->scheme,
                            op);
}

#define LOCKED_CALL(st, op, member, ...)                            \
    do {                                                            \
        if (!(st)->backend->member)                                 \
            return unsupported((st), op);                           \
        pthread_mutex_lock(&(st)->mu);                              \
        int rc_ = (st)->backend->member((st)->handle, __VA_ARGS__); \
        pthread_mutex_unlock(&(st)->mu);                            \
        return backend_rc((st), op, rc_);                           \
    } while (0)

/* ---- public helpers ------------------------------------------------------------ */

/* Bytes of vigil_store_options a program of `version` passes (1..current). */
static size_t options_size(unsigned int version)
{
    return version == 1 ? offsetof(vigil_store_options, checkpoint) : sizeof(vigil_store_options);
}

int vigil_store_options_init(vigil_store_options *opts, unsigned int version)
{
    if (!opts)
        return vigil__error_set(VIGIL_EINVAL, "store options: NULL");
    if (vigil__version_check("store options", version, VIGIL_STORE_OPTIONS_VERSION))
        return VIGIL_EVERSION;
    vigil_store_options d = VIGIL_STORE_OPTIONS_INIT;
    d.version = version;
    memcpy(opts, &d, options_size(version));
    return VIGIL_OK;
}

static const char *const g_agg_names[] = {"mean", "min", "max", "sum", "count", "last"};

int vigil_store_agg_parse(vigil_store_agg *out, const char *name)
{
    if (!out || !name)
        return vigil__error_set(VIGIL_EINVAL, "store aggregate: NULL argument");
    for (size_t i = 0; i < VIGIL__ARRAY_LEN(g_agg_names); i++) {
        if (strcmp(name, g_agg_names[i]) == 0) {
            *out = (vigil_store_agg)i;
            return VIGIL_OK;
        }
    }
    return vigil__error_set(VIGIL_EVALUE,
                            "store aggregate: unknown \"%.64s\" (expected mean, min, max, sum, "
                            "count or last)",
                            name);
}

const char *vigil_store_agg_name(vigil_store_agg agg)
{
    if ((unsigned)agg < VIGIL__ARRAY_LEN(g_agg_names))
        return g_agg_names[agg];
    return "unknown";
}

/* ---- registry -------------------------------------------------------------- */

/* The part of vigil_store_type a version-2 type has (0.2.0 to 0.3.x). */
#define TYPE_V2_SIZE offsetof(vigil_store_type, lease_acquire)

int vigil_store_register(vigil_store_registry *registry, const vigil_store_type *type)
{
    /* A version-2 type is read as the struct it is (up to write_group), with
     * the members version 3 appended NULL: its lease and tail calls fail
     * VIGIL_EUNSUPPORTED. The copy keeps the version its author set. */
    vigil_store_type v2;
    unsigned int version = type ? type->version : 0;
    if (type && version == 2) {
        memset(&v2, 0, sizeof(v2));
        memcpy(&v2, type, TYPE_V2_SIZE);
        type = &v2;
        version = VIGIL_STORE_TYPE_VERSION;
    }
    int rc = vigil__plugin_check(&k_kind, registry, type, version, type ? type->name : NULL);
    if (!rc && (!type->open || !type->close || !type->write || !type->query || !type->series_list ||
                !type->latest))
        rc = vigil__plugin_missing(
            &k_kind, type->name, "open, close, write, query, series_list and latest are required");
    if (!rc && (strcmp(type->name, vigil_store_sqlite_type()->name) == 0 ||
                strcmp(type->name, vigil_store_postgresql_type()->name) == 0 ||
                strcmp(type->name, vigil__store_postgres_alias()->name) == 0))
        rc = vigil__plugin_exists(&k_kind, type->name, true);
    if (rc)
        return vigil__plugin_fail(rc, type ? type->payload : NULL,
                                  type ? type->payload_free : NULL);
    return vigil__plugin_list_add(&registry->types, &k_kind, type, sizeof(*type));
}

int vigil_store_registry_new(vigil_store_registry **out)
{
    return vigil__plugin_registry_new((void **)out, sizeof(**out), "vigil_store_registry_new");
}

void vigil_store_registry_free(vigil_store_registry *registry)
{
    vigil__plugin_registry_free(registry ? &registry->types : NULL);
}

/* The type serving `scheme`: the built-in type first, then the registry's;
 * NULL when none does. `known` receives their names ("sqlite, a, b"). */
static const vigil_store_type *find_type(const vigil_store_registry *registry, const char *scheme,
                                         char *known, size_t known_size)
{
    const vigil_store_type *found = NULL;
    snprintf(known, known_size, "%s, %s, %s", vigil_store_sqlite_type()->name,
             vigil_store_postgresql_type()->name, vigil__store_postgres_alias()->name);
    if (strcmp(vigil_store_sqlite_type()->name, scheme) == 0)
        found = vigil_store_sqlite_type();
    else if (strcmp(vigil_store_postgresql_type()->name, scheme) == 0)
        found = vigil_store_postgresql_type();
    else if (strcmp(vigil__store_postgres_alias()->name, scheme) == 0)
        found = vigil__store_postgres_alias();
    if (!registry)
        return found;
    if (!found)
        found = vigil__plugin_list_find(&registry->types, scheme);
    for (size_t i = 0; i < registry->types.n; i++) {
        size_t kl = strlen(known);
        if (kl + SCHEME_MAX + 3 < known_size)
            snprintf(known + kl, known_size - kl, ", %s",
                     vigil__plugin_list_name_at(&registry->types, i));
    }
    return found;
}

int vigil__store_url_check(const char *url, const vigil_store_registry *registry,
                           const vigil_config_node *at)
{
    const char *colon = strchr(url, ':');
    char scheme[SCHEME_MAX + 1], known[256];
    size_t len = colon ? (size_t)(colon - url) : 0;
    if (len > SCHEME_MAX)
        len = 0;
    memcpy(scheme, url, len);
    scheme[len] = '\0';
    const vigil_store_type *t = find_type(registry, scheme, known, sizeof(known));
    if (t && (t == vigil_store_postgresql_type() || t == vigil__store_postgres_alias())) {
        /* refused now with its place in the file, not at the start */
        int rc = vigil__pg_url_check(url);
        if (rc == VIGIL_EINVAL) {
            char msg[1200];
            snprintf(msg, sizeof(msg), "%s", vigil_error_last()->message);
            return vigil_error_set_at(rc, at, msg);
        }
        return rc;
    }
    if (t)
        return VIGIL_OK;
    if (!registry || !registry->types.n)
        return vigil_error_set_at(
            VIGIL_EUNSUPPORTED, at,
            "expected sqlite://PATH or postgresql://HOST/DATABASE (the store backends "
            "built in)");
    char msg[400];
    if (len)
        snprintf(msg, sizeof(msg), "unsupported URL scheme \"%s\" (known: %s)", scheme, known);
    else
        snprintf(msg, sizeof(msg), "expected SCHEME:... (known schemes: %s)", known);
    return vigil_error_set_at(VIGIL_EUNSUPPORTED, at, msg);
}

/* ---- open / close ---------------------------------------------------------- */

int vigil_store_open(vigil_store **out, const char *url, const vigil_store_options *opts)
{
    if (!out || !url)
        return vigil__error_set(VIGIL_EINVAL, "store: NULL argument");
    *out = NULL;
    vigil_store_options o = VIGIL_STORE_OPTIONS_INIT;
    if (opts) {
        int rc = check_version("options", opts->version, VIGIL_STORE_OPTIONS_VERSION);
        if (rc)
            return rc;
        /* An older program passes a smaller struct: the rest keeps its defaults. */
        memcpy(&o, opts, options_size(opts->version));
        o.version = VIGIL_STORE_OPTIONS_VERSION;
    }
    if (o.busy_timeout_ms < 0)
        return vigil__error_set(VIGIL_EINVAL, "store: busy_timeout_ms must not be negative");
    if (o.busy_timeout_ms == 0)
        o.busy_timeout_ms = VIGIL__STORE_DEFAULT_BUSY_MS;
    if (o.busy_timeout_ms > INT32_MAX)
        return vigil__error_set(VIGIL_ERANGE, "store: busy_timeout_ms is too large");
    if (o.synchronous != VIGIL_STORE_SYNC_NORMAL && o.synchronous != VIGIL_STORE_SYNC_FULL)
        return vigil__error_set(VIGIL_EINVAL, "store: unknown synchronous mode %d",
                                (int)o.synchronous);
    if (o.series_cache_max == 0)
        o.series_cache_max = VIGIL__STORE_DEFAULT_CACHE;
    if (o.checkpoint != VIGIL_STORE_CHECKPOINT_BACKGROUND &&
        o.checkpoint != VIGIL_STORE_CHECKPOINT_INLINE)
        return vigil__error_set(VIGIL_EINVAL, "store: unknown checkpoint mode %d",
                                (int)o.checkpoint);
    if (o.checkpoint_interval_ms < 0)
        return vigil__error_set(VIGIL_EINVAL, "store: checkpoint_interval_ms must not be negative");
    if (o.checkpoint_interval_ms == 0)
        o.checkpoint_interval_ms = VIGIL__STORE_DEFAULT_CKPT_MS;
    if (o.checkpoint_interval_ms > INT32_MAX)
        return vigil__error_set(VIGIL_ERANGE, "store: checkpoint_interval_ms is too large");
    if (o.checkpoint_pages == 0)
        o.checkpoint_pages = VIGIL__STORE_DEFAULT_CKPT_PAGES;
    if (o.wal_max_pages == 0)
        o.wal_max_pages = o.checkpoint_pages > VIGIL__STORE_DEFAULT_WAL_MAX
                              ? o.checkpoint_pages
                              : VIGIL__STORE_DEFAULT_WAL_MAX;
    if (o.checkpoint_pages > INT32_MAX || o.wal_max_pages > INT32_MAX)
        return vigil__error_set(VIGIL_ERANGE,
                                "store: checkpoint_pages and wal_max_pages must be at most %d",
                                INT32_MAX);
    if (o.wal_max_pages < o.checkpoint_pages)
        return vigil__error_set(VIGIL_EINVAL,
                                "store: wal_max_pages (%zu) must not be below checkpoint_pages "
                                "(%zu)",
                                o.wal_max_pages, o.checkpoint_pages);

    size_t len = strlen(url);
    if (len > VIGIL_STORE_URL_MAX)
        return vigil__error_set(VIGIL_ELIMIT, "store: URL is %zu bytes, more than %d", len,
                                VIGIL_STORE_URL_MAX);
    if (!vigil__utf8_valid(url, len))
        return vigil__error_set(VIGIL_EINVAL, "store: URL is not valid UTF-8");
    const char *colon = strchr(url, ':');
    if (!colon || colon == url || (size_t)(colon - url) > SCHEME_MAX)
        return vigil__error_set(VIGIL_EINVAL,
                                "store: \"%.200s\" is not a store URL (expected "
                                "sqlite://PATH or sqlite::memory:)",
                                url);
    char scheme[SCHEME_MAX + 1];
    memcpy(scheme, url, (size_t)(colon - url));
    scheme[colon - url] = '\0';

    char known[256];
    const vigil_store_type *found = find_type(o.registry, scheme, known, sizeof(known));
    if (!found)
        return vigil__error_set(VIGIL_EUNSUPPORTED,
                                "store: unsupported URL scheme \"%s\" (known: %s)", scheme, known);

    vigil_store *st = vigil__calloc(1, sizeof(*st));
    if (!st)
        return vigil__error_oom();
    if (pthread_mutex_init(&st->mu, NULL) != 0) {
        vigil__free(st);
        return vigil__error_set(VIGIL_ENOMEM, "store: cannot create a mutex");
    }
    st->backend = found;
    memcpy(st->scheme, scheme, strlen(scheme) + 1);
    int rc = found->open(&st->handle, url, colon + 1, &o, found->payload);
    if (rc != VIGIL_OK) {
        rc = backend_rc(st, "open", rc);
        pthread_mutex_destroy(&st->mu);
        vigil__free(st);
        return rc;
    }
    *out = st;
    return VIGIL_OK;
}

void vigil_store_close(vigil_store *store)
{
    if (!store)
        return;
    store->backend->close(store->handle);
    pthread_mutex_destroy(&store->mu);
    vigil__free(store);
}

const char *vigil_store_scheme(const vigil_store *store)
{
    return store ? store->scheme : "";
}

/* ---- samples ------------------------------------------------------------------ */

/* An output struct's version as the caller set it: 0 and versions newer
 * than this library's are VIGIL_EVERSION. */
static int check_result_version(const char *what, unsigned int version, unsigned int current)
{
    if (version == 0 || version > current)
        return vigil__error_set(VIGIL_EVERSION, "store %s: result version %u is not supported",
                                what, version);
    return VIGIL_OK;
}

int vigil_store_write(vigil_store *store, const vigil_batch *batch,
                      vigil_store_write_result *result)
{
    if (result) {
        int rc = check_result_version("write", result->version, VIGIL_STORE_WRITE_RESULT_VERSION);
        if (rc)
            return rc;
        vigil_store_write_result zero = VIGIL_STORE_WRITE_RESULT_INIT;
        zero.version = result->version;
        *result = zero;
    }
    if (!store || !batch)
        return vigil__error_set(VIGIL_EINVAL, "store write: NULL argument");
    if (!store->backend->write)
        return unsupported(store, "write");
    /* the backend fills this library's layout */
    vigil_store_write_result r = VIGIL_STORE_WRITE_RESULT_INIT;
    pthread_mutex_lock(&store->mu);
    int rc = store->backend->write(store->handle, batch, &r);
    pthread_mutex_unlock(&store->mu);
    if (result && rc == VIGIL_OK) {
        r.version = result->version;
        *result = r;
    }
    return backend_rc(store, "write", rc);
}

/* Zeroes write results but for their version, which becomes this library's
 * (the only one so far). */
static void stamp_results(vigil_store_write_result *results, size_t n)
{
    vigil_store_write_result zero = VIGIL_STORE_WRITE_RESULT_INIT;
    for (size_t i = 0; i < n; i++)
        results[i] = zero;
}

int vigil_store_write_group(vigil_store *store, const vigil_batch *merged,
                            const vigil_store_batch_part *parts, size_t nparts,
                            vigil_store_write_result *results)
{
    for (size_t i = 0; results && i < nparts && i < VIGIL_STORE_PARTS_MAX; i++)
        if (results[i].version == 0 || results[i].version > VIGIL_STORE_WRITE_RESULT_VERSION)
            return vigil__error_set(VIGIL_EVERSION,
                                    "store write group: results[%zu] version %u is not supported",
                                    i, results[i].version);
    if (results && nparts <= VIGIL_STORE_PARTS_MAX)
        stamp_results(results, nparts);
    if (!store || !merged || (nparts && !parts))
        return vigil__error_set(VIGIL_EINVAL, "store write group: NULL argument");
    if (nparts > VIGIL_STORE_PARTS_MAX)
        return vigil__error_set(VIGIL_ELIMIT,
                                "store write group: %zu parts, more than the limit of %d", nparts,
                                VIGIL_STORE_PARTS_MAX);
    size_t total = 0, n = vigil_batch_count(merged);
    for (size_t i = 0; i < nparts; i++) {
        const vigil_store_batch_part *p = &parts[i];
        char what[64];
        if (p->count > n - total)
            return vigil__error_set(VIGIL_EINVAL,
                                    "store write group: parts[%zu] runs past the %zu metrics of "
                                    "the batch",
                                    i, n);
        total += p->count;
        snprintf(what, sizeof(what), "parts[%zu].agent", i);
        int rc = check_text(what, p->agent, VIGIL_AGENT_ID_MAX, 0);
        if (rc == VIGIL_OK) {
            snprintf(what, sizeof(what), "parts[%zu].batch_id", i);
            rc = check_text(what, p->batch_id, VIGIL_BATCH_ID_MAX, 0);
        }
        if (rc == VIGIL_OK && p->batch_id && !p->batch_id[0])
            rc = vigil__error_set(VIGIL_EINVAL, "store write group: parts[%zu].batch_id is empty",
                                  i);
        if (rc)
            return rc;
    }
    if (total != n)
        return vigil__error_set(
            VIGIL_EINVAL, "store write group: the parts hold %zu metrics, the batch %zu", total, n);
    if (!store->backend->write_group)
        return unsupported(store, "write_group");
    vigil_store_write_result one = VIGIL_STORE_WRITE_RESULT_INIT;
    vigil_store_write_result *res = results;
    if (!res) {
        /* The backend always gets an array; without the caller's, a
         * temporary one (a single part needs no allocation). */
        res = nparts <= 1 ? &one : vigil__calloc(nparts, sizeof(*res));
        if (!res)
            return vigil__error_oom();
        stamp_results(res, nparts ? nparts : 1);
    }
    pthread_mutex_lock(&store->mu);
    int rc = store->backend->write_group(store->handle, merged, parts, nparts, res);
    pthread_mutex_unlock(&store->mu);
    rc = backend_rc(store, "write_group", rc);
    if (rc && results)
        stamp_results(results, nparts);
    for (size_t i = 0; !rc && results && i < nparts; i++)
        results[i].version = VIGIL_STORE_WRITE_RESULT_VERSION;
    if (res != results && res != &one)
        vigil__free(res);
    return rc;
}

static int check_op(const char *what, vigil_store_match_op op)
{
    if ((unsigned)op > VIGIL_STORE_MATCH_NOT_GLOB)
        return vigil__error_set(VIGIL_EINVAL, "store query: %s: unknown match operator %d", what,
                                (int)op);
    return VIGIL_OK;
}

/* Validates a query; `samples` also checks the time fields. */
static int check_query(const vigil_store_query *q, int samples)
{
    int rc = check_version("query", q->version, VIGIL_STORE_QUERY_VERSION);
    if (rc)
        return rc;
    if ((rc = check_text("query name", q->name, VIGIL_STORE_KEY_MAX, 0)) != 0)
        return rc;
    if ((rc = check_op("name", q->name_op)) != 0)
        return rc;
    if (q->name && q->name_op != VIGIL_STORE_MATCH_EQ && q->name_op != VIGIL_STORE_MATCH_GLOB)
        return vigil__error_set(VIGIL_EINVAL, "store query: the name matches with EQ or GLOB only");
    if (q->nmatchers > VIGIL_STORE_MATCHERS_MAX)
        return vigil__error_set(VIGIL_ELIMIT,
                                "store query: %zu matchers, more than the limit of %d",
                                q->nmatchers, VIGIL_STORE_MATCHERS_MAX);
    if (q->nmatchers && !q->matchers)
        return vigil__error_set(VIGIL_EINVAL, "store query: matchers is NULL");
    for (size_t i = 0; i < q->nmatchers; i++) {
        const vigil_store_matcher *m = &q->matchers[i];
        char what[48];
        snprintf(what, sizeof(what), "matchers[%zu].key", i);
        if ((rc = check_text(what, m->key, VIGIL_METRIC_NAME_MAX, 1)) != 0)
            return rc;
        snprintf(what, sizeof(what), "matchers[%zu].value", i);
        if ((rc = check_text(what, m->value, VIGIL_METRIC_TAG_VALUE_MAX, 0)) != 0)
            return rc;
        if (!m->value)
            return vigil__error_set(VIGIL_EINVAL, "store query: matchers[%zu].value is required",
                                    i);
        snprintf(what, sizeof(what), "matchers[%zu]", i);
        if ((rc = check_op(what, m->op)) != 0)
            return rc;
    }
    if (!samples)
        return VIGIL_OK;
    if (q->to_ms != 0 && q->to_ms <= q->from_ms)
        return vigil__error_set(VIGIL_EINVAL,
                                "store query: to_ms (%lld) must be after from_ms (%lld)",
                                (long long)q->to_ms, (long long)q->from_ms);
    if (q->step_ms < 0)
        return vigil__error_set(VIGIL_EINVAL, "store query: step_ms must not be negative");
    if ((unsigned)q->aggregate > VIGIL_STORE_AGG_LAST)
        return vigil__error_set(VIGIL_EINVAL, "store query: unknown aggregate %d",
                                (int)q->aggregate);
    return VIGIL_OK;
}

static const vigil_store_query g_all = VIGIL_STORE_QUERY_INIT;

int vigil_store_query_run(vigil_store *store, const vigil_store_query *query,
                          vigil_store_point_cb cb, void *payload)
{
    if (!store || !query || !cb)
        return vigil__error_set(VIGIL_EINVAL, "store query: NULL argument");
    int rc = check_query(query, 1);
    if (rc)
        return rc;
    LOCKED_CALL(store, "query", query, query, cb, payload);
}

int vigil_store_series_list(vigil_store *store, const vigil_store_query *query,
                            vigil_store_series_cb cb, void *payload)
{
    if (!store || !cb)
        return vigil__error_set(VIGIL_EINVAL, "store series: NULL argument");
    if (!query)
        query = &g_all;
    int rc = check_query(query, 0);
    if (rc)
        return rc;
    LOCKED_CALL(store, "series list", series_list, query, cb, payload);
}

int vigil_store_latest(vigil_store *store, const vigil_store_query *query, vigil_store_point_cb cb,
                       void *payload)
{
    if (!store || !cb)
        return vigil__error_set(VIGIL_EINVAL, "store latest: NULL argument");
    if (!query)
        query = &g_all;
    int rc = check_query(query, 1);
    if (rc)
        return rc;
    LOCKED_CALL(store, "latest", latest, query, cb, payload);
}

/* ---- actions ------------------------------------------------------------------ */

static int check_action_result(const vigil_store_action *a)
{
    int rc;
    if ((rc = check_text("action status", a->status, VIGIL_STORE_ID_MAX, 0)) != 0 ||
        (rc = check_text("action result_reason", a->result_reason, VIGIL_STORE_TEXT_MAX, 0)) != 0 ||
        (rc = check_text("action output", a->output, VIGIL_STORE_TEXT_MAX, 0)) != 0 ||
        (rc = check_text("action audit_hash", a->audit_hash, VIGIL_STORE_KEY_MAX, 0)) != 0)
        return rc;
    return VIGIL_OK;
}

int vigil_store_action_put(vigil_store *store, const vigil_store_action *action, int *created)
{
    int dummy;
    if (!created)
        created = &dummy;
    *created = 0;
    if (!store || !action)
        return vigil__error_set(VIGIL_EINVAL, "store action: NULL argument");
    int rc;
    if ((rc = check_text("action id", action->id, VIGIL_STORE_ID_MAX, 1)) != 0 ||
        (rc = check_text("action name", action->action, VIGIL_STORE_KEY_MAX, 1)) != 0 ||
        (rc = check_text("action target", action->target, VIGIL_STORE_KEY_MAX, 1)) != 0 ||
        (rc = check_text("action params_json", action->params_json, VIGIL_STORE_TEXT_MAX, 0)) !=
            0 ||
        (rc = check_text("action reason", action->reason, VIGIL_STORE_TEXT_MAX, 0)) != 0 ||
        (rc = check_text("action policy", action->policy, VIGIL_STORE_KEY_MAX, 0)) != 0 ||
        (rc = check_text("action series", action->series, VIGIL_STORE_KEY_MAX, 0)) != 0 ||
        (rc = check_action_result(action)) != 0)
        return rc;
    LOCKED_CALL(store, "action put", action_put, action, created);
}

int vigil_store_action_update(vigil_store *store, const vigil_store_action *update)
{
    if (!store || !update)
        return vigil__error_set(VIGIL_EINVAL, "store action: NULL argument");
    int rc;
    if ((rc = check_text("action id", update->id, VIGIL_STORE_ID_MAX, 1)) != 0 ||
        (rc = check_text("action status", update->status, VIGIL_STORE_ID_MAX, 1)) != 0 ||
        (rc = check_action_result(update)) != 0)
        return rc;
    LOCKED_CALL(store, "action update", action_update, update);
}

void vigil_store_action_free(vigil_store_action *a)
{
    if (!a)
        return;
    /* Every string lives in the same block as the struct. */
    vigil__free(a);
}

static size_t slen(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

static const char *scopy(char **p, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    memcpy(*p, s, n);
    const char *r = *p;
    *p += n;
    return r;
}

int vigil__store_action_dup(vigil_store_action **out, const vigil_store_action *a)
{
    *out = NULL;
    size_t total = sizeof(vigil_store_action) + slen(a->id) + slen(a->action) + slen(a->target) +
                   slen(a->params_json) + slen(a->reason) + slen(a->policy) + slen(a->series) +
                   slen(a->status) + slen(a->result_reason) + slen(a->output) + slen(a->audit_hash);
    vigil_store_action *c = vigil__malloc(total);
    if (!c)
        return vigil__error_oom();
    *c = *a;
    char *p = (char *)(c + 1);
    c->id = scopy(&p, a->id);
    c->action = scopy(&p, a->action);
    c->target = scopy(&p, a->target);
    c->params_json = scopy(&p, a->params_json);
    c->reason = scopy(&p, a->reason);
    c->policy = scopy(&p, a->policy);
    c->series = scopy(&p, a->series);
    c->status = scopy(&p, a->status);
    c->result_reason = scopy(&p, a->result_reason);
    c->output = scopy(&p, a->output);
    c->audit_hash = scopy(&p, a->audit_hash);
    *out = c;
    return VIGIL_OK;
}

static int action_copy_cb(const vigil_store_action *a, void *payload)
{
    return vigil__store_action_dup(payload, a);
}

int vigil_store_action_get(vigil_store *store, const char *id, vigil_store_action **out)
{
    if (out)
        *out = NULL;
    if (!store || !id || !out)
        return vigil__error_set(VIGIL_EINVAL, "store action: NULL argument");
    int rc = check_text("action id", id, VIGIL_STORE_ID_MAX, 1);
    if (rc)
        return rc;
    LOCKED_CALL(store, "action get", action_get, id, action_copy_cb, out);
}

static int check_filter(const vigil_store_filter *f)
{
    if (!f)
        return VIGIL_OK;
    int rc = check_version("filter", f->version, VIGIL_STORE_FILTER_VERSION);
    if (rc)
        return rc;
    if ((rc = check_text("filter status", f->status, VIGIL_STORE_ID_MAX, 0)) != 0 ||
        (rc = check_text("filter target", f->target, VIGIL_STORE_KEY_MAX, 0)) != 0 ||
        (rc = check_text("filter policy", f->policy, VIGIL_STORE_KEY_MAX, 0)) != 0)
        return rc;
    return VIGIL_OK;
}

static const vigil_store_filter g_nofilter = VIGIL_STORE_FILTER_INIT;

int vigil_store_action_list(vigil_store *store, const vigil_store_filter *filter,
                            vigil_store_action_cb cb, void *payload)
{
    if (!store || !cb)
        return vigil__error_set(VIGIL_EINVAL, "store action: NULL argument");
    int rc = check_filter(filter);
    if (rc)
        return rc;
    LOCKED_CALL(store, "action list", action_list, filter ? filter : &g_nofilter, cb, payload);
}

/* ---- decisions ------------------------------------------------------------------ */

int vigil_store_decision_append(vigil_store *store, const vigil_store_decision *d, int64_t *id_out)
{
    if (id_out)
        *id_out = 0;
    if (!store || !d)
        return vigil__error_set(VIGIL_EINVAL, "store decision: NULL argument");
    int rc;
    if ((rc = check_text("decision policy", d->policy, VIGIL_STORE_KEY_MAX, 1)) != 0 ||
        (rc = check_text("decision kind", d->decision, VIGIL_STORE_ID_MAX, 1)) != 0 ||
        (rc = check_text("decision series", d->series, VIGIL_STORE_KEY_MAX, 0)) != 0 ||
        (rc = check_text("decision target", d->target, VIGIL_STORE_KEY_MAX, 0)) != 0 ||
        (rc = check_text("decision action", d->action, VIGIL_STORE_KEY_MAX, 0)) != 0 ||
        (rc = check_text("decision action_id", d->action_id, VIGIL_STORE_ID_MAX, 0)) != 0 ||
        (rc = check_text("decision reason", d->reason, VIGIL_STORE_TEXT_MAX, 0)) != 0)
        return rc;
    int64_t dummy;
    LOCKED_CALL(store, "decision append", decision_append, d, id_out ? id_out : &dummy);
}

int vigil_store_decision_list(vigil_store *store, const vigil_store_filter *filter,
                              vigil_store_decision_cb cb, void *payload)
{
    if (!store || !cb)
        return vigil__error_set(VIGIL_EINVAL, "store decision: NULL argument");
    int rc = check_filter(filter);
    if (rc)
        return rc;
    LOCKED_CALL(store, "decision list", decision_list, filter ? filter : &g_nofilter, cb, payload);
}

/* ---- audit ---------------------------------------------------------------------- */

int vigil_store_audit_append(vigil_store *store, const vigil_store_audit *row)
{
    if (!store || !row)
        return vigil__error_set(VIGIL_EINVAL, "store audit: NULL argument");
    if (row->seq < 1)
        return vigil__error_set(VIGIL_EINVAL, "store audit: seq must be at least 1, got %lld",
                                (long long)row->seq);
    int rc;
    if ((rc = check_text("audit kind", row->kind, VIGIL_STORE_ID_MAX, 1)) != 0 ||
        (rc = check_text("audit mac", row->mac, VIGIL_STORE_KEY_MAX, 1)) != 0 ||
        (rc = check_text("audit prev_mac", row->prev_mac, VIGIL_STORE_KEY_MAX, 0)) != 0 ||
        (rc = check_text("audit action_id", row->action_id, VIGIL_STORE_ID_MAX, 0)) != 0 ||
        (rc = check_text("audit data_json", row->data_json, VIGIL_STORE_TEXT_MAX, 0)) != 0)
        return rc;
    LOCKED_CALL(store, "audit append", audit_append, row);
}

int vigil_store_audit_list(vigil_store *store, const vigil_store_filter *filter,
                           vigil_store_audit_cb cb, void *payload)
{
    if (!store || !cb)
        return vigil__error_set(VIGIL_EINVAL, "store audit: NULL argument");
    int rc = check_filter(filter);
    if (rc)
        return rc;
    LOCKED_CALL(store, "audit list", audit_list, filter ? filter : &g_nofilter, cb, payload);
}

int vigil_store_audit_last(vigil_store *store, vigil_store_audit_cb cb, void *payload)
{
    if (!store || !cb)
        return vigil__error_set(VIGIL_EINVAL, "store audit: NULL argument");
    LOCKED_CALL(store, "audit last", audit_last, cb, payload);
}

/* ---- silences ------------------------------------------------------------------- */

int vigil_store_silence_put(vigil_store *store, const vigil_store_silence *s)
{
    if (!store || !s)
        return vigil__error_set(VIGIL_EINVAL, "store silence: NULL argument");
    int rc;
    if ((rc = check_text("silence id", s->id, VIGIL_STORE_ID_MAX, 1)) != 0 ||
        (rc = check_text("silence matchers_json", s->matchers_json, VIGIL_STORE_TEXT_MAX, 1)) !=
            0 ||
        (rc = check_text("silence created_by", s->created_by, VIGIL_STORE_KEY_MAX, 0)) != 0 ||
        (rc = check_text("silence comment", s->comment, VIGIL_STORE_TEXT_MAX, 0)) != 0)
        return rc;
    if (s->ends_ms <= s->starts_ms)
        return vigil__error_set(VIGIL_EINVAL,
                                "store silence \"%s\": ends_ms must be after starts_ms", s->id);
    LOCKED_CALL(store, "silence put", silence_put, s);
}

int vigil_store_silence_delete(vigil_store *store, const char *id)
{
    if (!store || !id)
        return vigil__error_set(VIGIL_EINVAL, "store silence: NULL argument");
    int rc = check_text("silence id", id, VIGIL_STORE_ID_MAX, 1);
    if (rc)
        return rc;
    LOCKED_CALL(store, "silence delete", silence_delete, id);
}

int vigil_store_silence_list(vigil_store *store, int64_t active_at_ms, vigil_store_silence_cb cb,
                             void *payload)
{
    if (!store || !cb)
        return vigil__error_set(VIGIL_EINVAL, "store silence: NULL argument");
    LOCKED_CALL(store, "silence list", silence_list, active_at_ms, cb, payload);
}

/* ---- policy state --------------------------------------------------------------- */

int vigil_store_state_put(vigil_store *store, const char *key, const void *value, size_t len)
{
    if (!store || !key || (!value && len))
        return vigil__error_set(VIGIL_EINVAL, "store state: NULL argument");
    int rc = check_text("state key", key, VIGIL_STORE_KEY_MAX, 1);
    if (rc)
        return rc;
    if (len > VIGIL_STORE_BLOB_MAX)
        return vigil__error_set(VIGIL_ELIMIT,
                                "store state \"%.64s\": value is %zu bytes, more than the limit "
                                "of %d",
                                key, len, VIGIL_STORE_BLOB_MAX);
    LOCKED_CALL(store, "state put", state_put, key, value ? value : "", len);
}

typedef struct state_copy {
    void *ptr;
    size_t len;
} state_copy;

static int state_copy_cb(const char *key, const void *value, size_t len, void *payload)
{
    (void)key;
    state_copy *c = payload;
    c->ptr = vigil__malloc(len + 1);
    if (!c->ptr)
        return vigil__error_oom();
    if (len)
        memcpy(c->ptr, value, len);
    ((char *)c->ptr)[len] = '\0';
    c->len = len;
    return 0;
}

int vigil_store_state_get(vigil_store *store, const char *key, void **out, size_t *len)
{
    if (out)
        *out = NULL;
    if (len)
        *len = 0;
    if (!store || !key || !out)
        return vigil__error_set(VIGIL_EINVAL, "store state: NULL argument");
    int rc = check_text("state key", key, VIGIL_STORE_KEY_MAX, 1);
    if (rc)
        return rc;
    if (!store->backend->state_get)
        return unsupported(store, "state get");
    state_copy c = {NULL, 0};
    pthread_mutex_lock(&store->mu);
    rc = store->backend->state_get(store->handle, key, state_copy_cb, &c);
    pthread_mutex_unlock(&store->mu);
    if (rc != VIGIL_OK) {
        vigil__free(c.ptr);
        return backend_rc(store, "state get", rc);
    }
    *out = c.ptr;
    if (len)
        *len = c.len;
    return VIGIL_OK;
}

int vigil_store_state_delete(vigil_store *store, const char *key)
{
    if (!store || !key)
        return vigil__error_set(VIGIL_EINVAL, "store state: NULL argument");
    int rc = check_text("state key", key, VIGIL_STORE_KEY_MAX, 1);
    if (rc)
        return rc;
    LOCKED_CALL(store, "state delete", state_delete, key);
}

int vigil_store_state_list(vigil_store *store, const char *prefix, vigil_store_state_cb cb,
                           void *payload)
{
    if (!store || !cb)
        return vigil__error_set(VIGIL_EINVAL, "store state: NULL argument");
    int rc = check_text("state prefix", prefix, VIGIL_STORE_KEY_MAX, 0);
    if (rc)
        return rc;
    LOCKED_CALL(store, "state list", state_list, prefix ? prefix : "", cb, payload);
}

/* ---- resources -------------------------------------------------------------------- */

static int check_set(vigil_store_resource_set set)
{
    if (set != VIGIL_STORE_DESIRED && set != VIGIL_STORE_DRIFT)
        return vigil__error_set(VIGIL_EINVAL, "store resource: unknown set %d", (int)set);
    return VIGIL_OK;
}

static int check_resource(const vigil_store_resource *r, size_t i)
{
    static const char *const names[] = {"key",      "kind",   "name",     "source",
                                        "revision", "status", "body_json"};
    const char *vals[] = {r->key,      r->kind,   r->name,     r->source,
                          r->revision, r->status, r->body_json};
    for (size_t k = 0; k < VIGIL__ARRAY_LEN(names); k++) {
        char what[64];
        snprintf(what, sizeof(what), "resource[%zu].%s", i, names[k]);
        int rc =
            check_text(what, vals[k], k == 6 ? VIGIL_STORE_TEXT_MAX : VIGIL_STORE_KEY_MAX, k < 3);
        if (rc)
            return rc;
    }
    return VIGIL_OK;
}

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int vigil_store_resource_replace(vigil_store *store, vigil_store_resource_set set,
                                 const char *source, const vigil_store_resource *records, size_t n)
{
    if (!store || (n && !records))
        return vigil__error_set(VIGIL_EINVAL, "store resource: NULL argument");
    int rc = check_set(set);
    if (rc || (rc = check_text("resource source", source, VIGIL_STORE_KEY_MAX, 0)) != 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if ((rc = check_resource(&records[i], i)) != 0)
            return rc;
        if (source && (!records[i].source || strcmp(records[i].source, source) != 0))
            return vigil__error_set(VIGIL_EINVAL,
                                    "store resource: resource[%zu] (\"%.200s\") has another "
                                    "source than \"%.200s\"",
                                    i, records[i].key, source);
    }
    if (n > 1) {
        const char **keys = vigil__malloc(n * sizeof(*keys));
        if (!keys)
            return vigil__error_oom();
        for (size_t i = 0; i < n; i++)
            keys[i] = records[i].key;
        qsort(keys, n, sizeof(*keys), cmp_strp);
        for (size_t i = 1; i < n; i++) {
            if (strcmp(keys[i - 1], keys[i]) == 0) {
                rc = vigil__error_set(VIGIL_EINVAL, "store resource: duplicate key \"%.200s\"",
                                      keys[i]);
                break;
            }
        }
        vigil__free(keys);
        if (rc)
            return rc;
    }
    LOCKED_CALL(store, "resource replace", resource_replace, set, source, records, n);
}

int vigil_store_resource_put(vigil_store *store, vigil_store_resource_set set,
                             const vigil_store_resource *record)
{
    if (!store || !record)
        return vigil__error_set(VIGIL_EINVAL, "store resource: NULL argument");
    int rc = check_set(set);
    if (rc || (rc = check_resource(record, 0)) != 0)
        return rc;
    LOCKED_CALL(store, "resource put", resource_put, set, record);
}

int vigil_store_resource_delete(vigil_store *store, vigil_store_resource_set set, const char *key)
{
    if (!store || !key)
        return vigil__error_set(VIGIL_EINVAL, "store resource: NULL argument");
    int rc = check_set(set);
    if (rc || (rc = check_text("resource key", key, VIGIL_STORE_KEY_MAX, 1)) != 0)
        return rc;
    LOCKED_CALL(store, "resource delete", resource_delete, set, key);
}

int vigil_store_resource_list(vigil_store *store, vigil_store_resource_set set, const char *key,
                              vigil_store_resource_cb cb, void *payload)
{
    if (!store || !cb)
        return vigil__error_set(VIGIL_EINVAL, "store resource: NULL argument");
    int rc = check_set(set);
    if (rc || (rc = check_text("resource key", key, VIGIL_STORE_KEY_MAX, 0)) != 0)
        return rc;
    LOCKED_CALL(store, "resource list", resource_list, set, key, cb, payload);
}

/* ---- retention ---------------------------------------------------------------------- */

int vigil_store_retain(vigil_store *store, int64_t cutoff_ms,
                       const vigil_store_retention_options *opts,
                       vigil_store_retention_result *result)
{
    vigil_store_retention_result local = VIGIL_STORE_RETENTION_RESULT_INIT;
    if (result) {
        int rc = check_result_version("retention", result->version,
                                      VIGIL_STORE_RETENTION_RESULT_VERSION);
        if (rc)
            return rc;
        local.version = result->version;
        *result = local;
    } else {
        result = &local;
    }
    if (!store)
        return vigil__error_set(VIGIL_EINVAL, "store retention: NULL argument");
    vigil_store_retention_options o = VIGIL_STORE_RETENTION_OPTIONS_INIT;
    if (opts) {
        int rc = check_version("retention options", opts->version,
                               VIGIL_STORE_RETENTION_OPTIONS_VERSION);
        if (rc)
            return rc;
        o = *opts;
    }
    if (o.chunk_rows == 0)
        o.chunk_rows = VIGIL__STORE_DEFAULT_CHUNK;
    if (o.chunk_rows > INT32_MAX)
        return vigil__error_set(VIGIL_ERANGE, "store retention: chunk_rows is too large");
    if (!store->backend->retain)
        return unsupported(store, "retention");
    /* One transaction per call with the mutex released in between, so other
     * users of this store wait for one chunk at most. */
    vigil_store_retention_options one = o;
    one.max_chunks = 1;
    for (;;) {
        vigil_store_retention_result r = VIGIL_STORE_RETENTION_RESULT_INIT;
        pthread_mutex_lock(&store->mu);
        int rc = store->backend->retain(store->handle, cutoff_ms, &one, &r);
        pthread_mutex_unlock(&store->mu);
        result->samples_deleted += r.samples_deleted;
        result->batch_ids_deleted += r.batch_ids_deleted;
        result->chunks += r.chunks;
        result->done = r.done;
        if (rc != VIGIL_OK)
            return backend_rc(store, "retention", rc);
        /* r.chunks == 0: a backend that made no progress; do not spin. */
        if (r.done || r.chunks == 0 || (o.max_chunks && result->chunks >= o.max_chunks))
            return VIGIL_OK;
    }
}

int vigil_store_stats_get(vigil_store *store, vigil_store_stats *out)
{
    if (!store || !out)
        return vigil__error_set(VIGIL_EINVAL, "store stats: NULL argument");
    unsigned int version = out->version;
    if (check_version("stats", version, VIGIL_STORE_STATS_VERSION))
        return VIGIL_EVERSION;
    memset(out, 0, sizeof(*out));
    out->version = version;
    if (store->backend != vigil_store_sqlite_type())
        return unsupported(store, "stats");
    pthread_mutex_lock(&store->mu);
    vigil__sq_stats(store->handle, out);
    pthread_mutex_unlock(&store->mu);
    return VIGIL_OK;
}

void vigil__store_fold_idle(vigil_store *store, int on)
{
    if (!store || store->backend != vigil_store_sqlite_type())
        return;
    pthread_mutex_lock(&store->mu);
    vigil__sq_fold_idle(store->handle, on);
    pthread_mutex_unlock(&store->mu);
}

int vigil__store_tend(vigil_store *store, int64_t *next_ms)
{
    *next_ms = INT64_MAX;
    if (!store || store->backend != vigil_store_sqlite_type())
        return 0;
    /* idle work never waits for the store: ask again in a moment */
    if (pthread_mutex_trylock(&store->mu) != 0) {
        *next_ms = vigil__monotonic_ms() + 2;
        return 0;
    }
    int ran = vigil__sq_tend(store->handle, next_ms);
    pthread_mutex_unlock(&store->mu);
    return ran;
}

/* ---- leases ------------------------------------------------------------------------ */

/* Checks a lease name or holder: NULL or empty EINVAL, too long ELIMIT, not
 * UTF-8 EENCODING. */
static int check_lease_text(const char *op, const char *what, const char *s, size_t max)
{
    if (!s || !s[0])
        return vigil__error_set(VIGIL_EINVAL, "store %s: the %s must not be %s", op, what,
                                s ? "empty" : "NULL");
    size_t len = strlen(s);
    if (len > max)
        return vigil__error_set(VIGIL_ELIMIT,
                                "store %s: the %s is %zu bytes, more than the limit of %zu", op,
                                what, len, max);
    if (!vigil__utf8_valid(s, len))
        return vigil__error_set(VIGIL_EENCODING, "store %s: the %s is not valid UTF-8", op, what);
    return VIGIL_OK;
}

/* Checks and zeroes a caller's lease (all but the version). */
static int lease_out_reset(const char *op, vigil_store_lease *out)
{
    if (!out)
        return vigil__error_set(VIGIL_EINVAL, "store %s: NULL argument", op);
    if (out->version == 0 || out->version > VIGIL_STORE_LEASE_VERSION)
        return vigil__error_set(VIGIL_EVERSION, "store %s: lease version %u is not supported", op,
                                out->version);
    unsigned int v = out->version;
    memset(out, 0, sizeof(*out));
    out->version = v;
    return VIGIL_OK;
}

/* Calls a lease member that fills a lease: the backend fills this library's
 * layout, copied to the caller's on success. */
static int lease_call(vigil_store *st, const char *op, const char *name, const char *holder,
                      int64_t ttl_ms, vigil_store_lease *out)
{
    vigil_store_lease l = VIGIL_STORE_LEASE_INIT;
    int rc;
    pthread_mutex_lock(&st->mu);
    if (holder)
        rc = st->backend->lease_acquire(st->handle, name, holder, ttl_ms, &l);
    else
        rc = st->backend->lease_get(st->handle, name, &l);
    pthread_mutex_unlock(&st->mu);
    if (rc != VIGIL_OK)
        return backend_rc(st, op, rc);
    l.holder[VIGIL_STORE_LEASE_HOLDER_MAX] = '\0';
    l.version = out->version;
    *out = l;
    return VIGIL_OK;
}

int vigil_store_lease_acquire(vigil_store *store, const char *name, const char *holder,
                              int64_t ttl_ms, vigil_store_lease *out)
{
    static const char op[] = "lease acquire";
    int rc = lease_out_reset(op, out);
    if (rc)
        return rc;
    if (!store)
        return vigil__error_set(VIGIL_EINVAL, "store %s: NULL argument", op);
    if ((rc = check_lease_text(op, "name", name, VIGIL_STORE_LEASE_NAME_MAX)) ||
        (rc = check_lease_text(op, "holder", holder, VIGIL_STORE_LEASE_HOLDER_MAX)))
        return rc;
    if (ttl_ms < 1 || ttl_ms > VIGIL_STORE_LEASE_TTL_MAX)
        return vigil__error_set(VIGIL_EINVAL, "store %s: ttl_ms %lld is out of range (1 to %d)", op,
                                (long long)ttl_ms, VIGIL_STORE_LEASE_TTL_MAX);
    if (!store->backend->lease_acquire)
        return unsupported(store, op);
    return lease_call(store, op, name, holder, ttl_ms, out);
}

int vigil_store_lease_release(vigil_store *store, const char *name, const char *holder)
{
    static const char op[] = "lease release";
    if (!store)
        return vigil__error_set(VIGIL_EINVAL, "store %s: NULL argument", op);
    int rc;
    if ((rc = check_lease_text(op, "name", name, VIGIL_STORE_LEASE_NAME_MAX)) ||
        (rc = check_lease_text(op, "holder", holder, VIGIL_STORE_LEASE_HOLDER_MAX)))
        return rc;
    LOCKED_CALL(store, op, lease_release, name, holder);
}

int vigil_store_lease_get(vigil_store *store, const char *name, vigil_store_lease *out)
{
    static const char op[] = "lease get";
    int rc = lease_out_reset(op, out);
    if (rc)
        return rc;
    if (!store)
        return vigil__error_set(VIGIL_EINVAL, "store %s: NULL argument", op);
    if ((rc = check_lease_text(op, "name", name, VIGIL_STORE_LEASE_NAME_MAX)))
        return rc;
    if (!store->backend->lease_get)
        return unsupported(store, op);
    return lease_call(store, op, name, NULL, 0, out);
}

/* ---- tail ----------------------------------------------------------------------------- */

int vigil_store_tail(vigil_store *store, const char *cursor, size_t max_samples,
                     vigil_store_point_cb cb, void *payload, char *next_cursor,
                     size_t next_cursor_len)
{
    static const char op[] = "tail";
    if (!store || !cb || !next_cursor)
        return vigil__error_set(VIGIL_EINVAL, "store %s: NULL argument", op);
    if (next_cursor_len < VIGIL_STORE_TAIL_CURSOR_MAX + 1)
        return vigil__error_set(VIGIL_ELIMIT, "store %s: next_cursor_len %zu is less than %d bytes",
                                op, next_cursor_len, VIGIL_STORE_TAIL_CURSOR_MAX + 1);
    if (max_samples < 1 || max_samples > VIGIL_STORE_TAIL_MAX)
        return vigil__error_set(VIGIL_EINVAL, "store %s: max_samples %zu is out of range (1 to %d)",
                                op, max_samples, VIGIL_STORE_TAIL_MAX);
    if (!cursor)
        cursor = "";
    size_t len = strlen(cursor);
    if (len > VIGIL_STORE_TAIL_CURSOR_MAX)
        return vigil__error_set(VIGIL_ELIMIT,
                                "store %s: the cursor is %zu bytes, more than the limit of %d", op,
                                len, VIGIL_STORE_TAIL_CURSOR_MAX);
    for (size_t i = 0; i < len; i++)
        if (cursor[i] < 0x21 || cursor[i] > 0x7e)
            return vigil__error_set(
                VIGIL_EINVAL, "store %s: the cursor is not one the store made (byte %zu)", op, i);
    if (!store->backend->tail)
        return unsupported(store, op);
    char next[VIGIL_STORE_TAIL_CURSOR_MAX + 1] = "";
    pthread_mutex_lock(&store->mu);
    int rc =
        store->backend->tail(store->handle, cursor, max_samples, cb, payload, next, sizeof(next));
    pthread_mutex_unlock(&store->mu);
    if (rc != VIGIL_OK)
        return rc > 0 ? rc : backend_rc(store, op, rc);
    next[VIGIL_STORE_TAIL_CURSOR_MAX] = '\0';
    memcpy(next_cursor, next, strlen(next) + 1);
    return VIGIL_OK;
}
