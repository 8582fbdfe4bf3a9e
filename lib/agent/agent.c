/* The agent: collectors on their schedules, batching, shipping through the
 * ingest client, the on-disk spool, heartbeat and self-metrics. */
#include "agent/agent_int.h"
#include "agent/spool.h"
#include "client/client_int.h"
#include "crypto/crypto.h"
#include "gzip/gzip.h"
#include "internal/common.h"
#include "internal/plugin.h"
#include "vigil/agent.h"
#include "vigil/client.h"
#include "vigil/sys/collector.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define COMPONENT "agent"

struct vigil_agent {
    vigil_logger logger;
    char *id;
    vigil_tag *tags; /* global tags, owned strings */
    size_t ntags;
    int64_t interval_ms, heartbeat_ms, max_delay_ms, shutdown_ms;
    int64_t backoff_ms, backoff_max_ms;
    size_t max_metrics;
    unsigned int attempts; /* client rounds of one normal send */
    int offline;

    vigil_collector_registry *own_registry;
    const vigil_collector_registry *registry;
    vigil_collector_options copts;
    char *proc_root, *sys_root, *base_dir;
    char **exec_allow; /* NULL-terminated copy, or NULL */
    vigil_collector **colls;
    size_t ncolls, ccap;

    vigil_client *client;
    vigil__spool *spool;

    vigil_batch *pending; /* samples waiting to be shipped */
    int64_t pending_since;
    vigil_batch *scratch; /* one collection */
    vigil_batch *events;  /* samples of event-driven collectors */
    int64_t next_heartbeat;
    int64_t hub_retry_at; /* no normal send before this (after a failure) */
    unsigned int hub_failures;
    uint64_t rng;
    vigil_buf gz, rec;

    int wake[2];
    int stop;

    /* counters (atomics: read from any thread) */
    uint64_t n_collections, n_metrics, n_sent, n_failures, n_dropped, n_spooled, n_replayed,
        n_events, n_spool_bytes, n_spool_records, n_spool_corrupt, n_refused, n_splits;
};

#define COUNT(a, field, n) __atomic_add_fetch(&(a)->field, (uint64_t)(n), __ATOMIC_RELAXED)

/* ---- options ----------------------------------------------------------------- */

int vigil_agent_options_init(vigil_agent_options *opts, unsigned int version)
{
    if (!opts)
        return vigil__error_set(VIGIL_EINVAL, "agent options: NULL argument");
    if (vigil__version_check("agent options", version, VIGIL_AGENT_OPTIONS_VERSION))
        return VIGIL_EVERSION;
    vigil_agent_options d = VIGIL_AGENT_OPTIONS_INIT;
    *opts = d;
    return VIGIL_OK;
}

/* Mirrors the spool counters into the atomics vigil_agent_stats_get() reads. */
static void sync_spool_stats(vigil_agent *a)
{
    vigil__spool_stats st;
    vigil__spool_stats_get(a->spool, &st);
    __atomic_store_n(&a->n_spool_bytes, st.bytes, __ATOMIC_RELAXED);
    __atomic_store_n(&a->n_spool_records, st.records, __ATOMIC_RELAXED);
    __atomic_store_n(&a->n_spool_corrupt, st.corrupt, __ATOMIC_RELAXED);
}

/* ---- creation ------------------------------------------------------------------ */

static int copy_str(char **dst, const char *src, const char *what)
{
    *dst = NULL;
    if (!src || !*src)
        return VIGIL_OK;
    if (strlen(src) > STR_OPTION_MAX)
        return vigil__error_set(VIGIL_EINVAL, "agent: %s is longer than %d bytes", what,
                                STR_OPTION_MAX);
    *dst = vigil__strdup(src);
    return *dst ? VIGIL_OK : vigil__error_oom();
}

static int set_id(vigil_agent *a, const char *id)
{
    char host[256];
    if (!id || !*id) {
        if (gethostname(host, sizeof(host)) != 0 || !host[0])
            snprintf(host, sizeof(host), "%s", "localhost");
        host[sizeof(host) - 1] = '\0';
        id = host;
    }
    size_t len = strlen(id);
    if (len > VIGIL_AGENT_ID_MAX)
        return vigil__error_set(VIGIL_EINVAL, "agent: id is longer than %d bytes",
                                VIGIL_AGENT_ID_MAX);
    if (!vigil__utf8_valid(id, len))
        return vigil__error_set(VIGIL_EENCODING, "agent: id is not valid UTF-8");
    a->id = vigil__strdup(id);
    return a->id ? VIGIL_OK : vigil__error_oom();
}

static int set_tags(vigil_agent *a, const vigil_tag *tags, size_t n, const vigil_config_node *cfg)
{
    if (!n)
        return VIGIL_OK;
    if (!tags)
        return vigil__error_set(VIGIL_EINVAL, "agent: tags is NULL with ntags %zu", n);
    if (n > TAGS_MAX)
        return vigil__error_set(VIGIL_ELIMIT, "agent: at most %d global tags", TAGS_MAX);
    const vigil_config_node *tnode =
        vigil_config_node_get(vigil_config_node_get(cfg, "agent"), "tags");
    for (size_t i = 0; i < n; i++) {
        const vigil_config_node *at = tnode ? vigil_config_node_at(tnode, i) : NULL;
        char msg[160];
        if (!tags[i].key || !tags[i].value)
            return vigil__error_set(VIGIL_EINVAL, "agent: tags[%zu] has a NULL key or value", i);
        if (!vigil_metric_name_valid(tags[i].key)) {
            snprintf(msg, sizeof(msg), "invalid tag key \"%.64s\"", tags[i].key);
            return at ? vigil_error_set_at(VIGIL_ENAME, at, msg)
                      : vigil__error_set(VIGIL_ENAME, "agent: %s", msg);
        }
        if (strcmp(tags[i].key, "host") == 0)
            return at ? vigil_error_set_at(VIGIL_EINVAL, at,
                                           "the host tag is the agent id: set agent.id instead")
                      : vigil__error_set(VIGIL_EINVAL,
                                         "agent: the host tag is the agent id: set agent_id");
        size_t vl = strlen(tags[i].value);
        if (vl > VIGIL_METRIC_TAG_VALUE_MAX || !vigil__utf8_valid(tags[i].value, vl)) {
            snprintf(msg, sizeof(msg), "tag value of \"%.64s\" is too long or not UTF-8",
                     tags[i].key);
            return at ? vigil_error_set_at(VIGIL_EVALUE, at, msg)
                      : vigil__error_set(VIGIL_EVALUE, "agent: %s", msg);
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(tags[k].key, tags[i].key) == 0)
                return vigil__error_set(VIGIL_EINVAL, "agent: duplicate tag key \"%.64s\"",
                                        tags[i].key);
    }
    a->tags = vigil__calloc(n, sizeof(vigil_tag));
    if (!a->tags)
        return vigil__error_oom();
    for (size_t i = 0; i < n; i++) {
        char *k = vigil__strdup(tags[i].key);
        char *v = k ? vigil__strdup(tags[i].value) : NULL;
        if (!v) {
            vigil__free(k);
            return vigil__error_oom();
        }
        a->tags[i].key = k;
        a->tags[i].value = v;
        a->ntags = i + 1;
    }
    return VIGIL_OK;
}

static int set_exec_allow(vigil_agent *a, const char *const *allow)
{
    if (!allow)
        return VIGIL_OK;
    size_t n = 0;
    while (allow[n]) {
        if (++n > ALLOW_MAX)
            return vigil__error_set(VIGIL_ELIMIT, "agent: at most %d exec_allow entries",
                                    ALLOW_MAX);
    }
    a->exec_allow = vigil__calloc(n + 1, sizeof(char *));
    if (!a->exec_allow)
        return vigil__error_oom();
    for (size_t i = 0; i < n; i++)
        if (!(a->exec_allow[i] = vigil__strdup(allow[i])))
            return vigil__error_oom();
    return VIGIL_OK;
}

static char *resolve_path(const char *base, const char *path)
{
    vigil_buf b = VIGIL_BUF_INIT;
    int rc = path[0] == '/' || !base ? vigil__buf_puts(&b, path)
                                     : vigil__buf_printf(&b, "%s/%s", base, path);
    if (rc) {
        vigil_buf_dispose(&b);
        return NULL;
    }
    return vigil__buf_detach(&b);
}

static int open_client(vigil_agent *a, const vigil_agent_options *o, const vigil_config_node *root)
{
    static const char *const dflt_urls[] = {VIGIL_AGENT_DEFAULT_HUB_URL};
    vigil_client_options co;
    vigil_client_options_init(&co, VIGIL_CLIENT_OPTIONS_VERSION);
    co.urls = o->nhub_urls ? o->hub_urls : dflt_urls;
    co.nurls = o->nhub_urls ? o->nhub_urls : 1;
    co.token_env = o->token_env ? o->token_env : VIGIL_AGENT_DEFAULT_TOKEN_ENV;
    co.ca_file = o->ca_file;
    co.cert_file = o->cert_file;
    co.key_file = o->key_file;
    co.insecure = o->tls_insecure;
    co.connect_timeout_ms = o->connect_timeout_ms ? o->connect_timeout_ms : DEF_CONNECT;
    co.request_timeout_ms = o->request_timeout_ms ? o->request_timeout_ms : DEF_REQUEST;
    co.max_attempts = a->attempts;
    co.backoff_base_ms = a->backoff_ms;
    co.backoff_max_ms = a->backoff_max_ms;
    co.retry_after_max_ms = o->retry_after_max_ms ? o->retry_after_max_ms : DEF_RETRY_AFTER;
    co.logger = a->logger;
    int rc = vigil_client_new(&a->client, &co);
    if (rc && root) {
        /* name the place in the file that holds the hub settings */
        const vigil_config_node *hub = vigil_config_node_get(root, "hub");
        const vigil_config_node *at = vigil_config_node_get(hub, "urls");
        if (!at)
            at = hub;
        if (at) {
            char msg[1024];
            const char *m = vigil_error_last()->message;
            snprintf(msg, sizeof(msg), "%s", strncmp(m, "client: ", 8) == 0 ? m + 8 : m);
            return vigil_error_set_at(rc, at, msg);
        }
    }
    if (!rc)
        vigil__client_set_cancel_fd(a->client, a->wake[0], a->shutdown_ms);
    return rc;
}

static int add_collector(vigil_agent *a, const vigil_config_node *entry)
{
    int rc = vigil__array_grow((void **)&a->colls, &a->ccap, a->ncolls + 1, sizeof(*a->colls));
    if (rc)
        return rc;
    vigil_collector *c = NULL;
    rc = vigil_collector_new(&c, a->registry, entry, &a->copts);
    if (rc)
        return rc;
    a->colls[a->ncolls++] = c;
    return VIGIL_OK;
}

static int create(vigil_agent **out, const vigil_config *config, const vigil_agent_options *opts,
                  int check_only)
{
    if (!out && !check_only)
        return vigil__error_set(VIGIL_EINVAL, "agent: NULL argument");
    if (out)
        *out = NULL;
    vigil_agent_options o;
    if (opts) {
        if (vigil__version_check("agent options", opts->version, VIGIL_AGENT_OPTIONS_VERSION))
            return VIGIL_EVERSION;
        o = *opts;
    } else {
        vigil_agent_options_init(&o, VIGIL_AGENT_OPTIONS_VERSION);
    }
    const vigil_config_node *root = config ? vigil_config_root(config, 0) : NULL;
    cfg_arrays *arr = vigil__calloc(1, sizeof(*arr));
    if (!arr)
        return vigil__error_oom();
    int rc = vigil__agent_config_apply(&o, root, arr);
    if (rc) {
        vigil__free(arr);
        return rc;
    }

    vigil_agent *a = vigil__calloc(1, sizeof(*a));
    if (!a) {
        vigil__free(arr);
        return vigil__error_oom();
    }
    a->wake[0] = a->wake[1] = -1;
    a->logger = o.logger;
    a->offline = o.offline != 0;
    a->interval_ms = o.interval_ms ? o.interval_ms : DEF_INTERVAL;
    a->heartbeat_ms = o.heartbeat_ms ? o.heartbeat_ms : a->interval_ms;
    a->max_delay_ms = o.batch_max_delay_ms > 0   ? o.batch_max_delay_ms
                      : o.batch_max_delay_ms < 0 ? 0
                                                 : DEF_MAX_DELAY;
    a->shutdown_ms = o.shutdown_timeout_ms ? o.shutdown_timeout_ms : DEF_SHUTDOWN;
    a->backoff_ms = o.backoff_ms ? o.backoff_ms : DEF_BACKOFF;
    a->backoff_max_ms = o.backoff_max_ms ? o.backoff_max_ms : DEF_BACKOFF_MAX;
    a->max_metrics = o.batch_max_metrics ? o.batch_max_metrics : DEF_MAX_METRICS;
    a->attempts = o.retries < 0 ? 1u : (unsigned int)(o.retries ? o.retries : DEF_RETRIES) + 1u;
    a->pending_since = -1;

    if (o.interval_ms < 0 || o.heartbeat_ms < 0 || o.shutdown_timeout_ms < 0 || o.backoff_ms < 0 ||
        o.backoff_max_ms < 0 || o.retries > MAX_RETRIES ||
        (o.interval_ms && o.interval_ms < VIGIL_COLLECTOR_MIN_INTERVAL_MS) ||
        a->max_metrics > VIGIL_BATCH_DEFAULT_MAX_METRICS || (o.nhub_urls && !o.hub_urls))
        rc = vigil__error_set(VIGIL_EINVAL, "agent: an option is out of range");
    if (a->backoff_max_ms < a->backoff_ms)
        a->backoff_max_ms = a->backoff_ms;
    if (!rc)
        rc = set_id(a, o.agent_id);
    if (!rc)
        rc = set_tags(a, o.tags, o.ntags, root);
    if (!rc)
        rc = set_exec_allow(a, o.exec_allow);
    if (!rc)
        rc = copy_str(&a->proc_root, o.proc_root, "proc_root");
    if (!rc)
        rc = copy_str(&a->sys_root, o.sys_root, "sys_root");
    if (!rc)
        rc = copy_str(&a->base_dir, o.base_dir, "base_dir");
    if (!rc && pipe2(a->wake, O_CLOEXEC | O_NONBLOCK) != 0)
        rc = vigil__error_set(VIGIL_EIO, "agent: pipe: %s", strerror(errno));
    if (!rc)
        rc = vigil_batch_new(&a->pending);
    if (!rc)
        rc = vigil_batch_new(&a->scratch);
    if (!rc)
        rc = vigil_batch_new(&a->events);
    if (!rc) {
        vigil_batch_set_max_metrics(a->pending, a->max_metrics);
        a->rng = vigil__crypto_seed();
    }
    if (!rc) {
        rc = vigil_collector_registry_new(&a->own_registry);
        if (!rc)
            rc = vigil_collector_registry_add_builtins(a->own_registry);
        if (!rc)
            vigil__collector_registry_set_fallback(a->own_registry, o.collector_types);
        a->registry = a->own_registry;
    }
    if (!rc) {
        vigil_collector_options_init(&a->copts, VIGIL_COLLECTOR_OPTIONS_VERSION);
        a->copts.logger = a->logger;
        a->copts.proc_root = a->proc_root;
        a->copts.sys_root = a->sys_root;
        a->copts.base_dir = a->base_dir;
        a->copts.default_interval_ms = a->interval_ms;
        a->copts.backoff_max_ms = o.collector_backoff_max_ms;
        a->copts.exec_allow = (const char *const *)a->exec_allow;
        const vigil_config_node *list = vigil_config_node_get(root, "collectors");
        size_t nc =
            vigil_config_node_kind(list) == VIGIL_CONFIG_LIST ? vigil_config_node_len(list) : 0;
        for (size_t i = 0; !rc && i < nc; i++)
            rc = add_collector(a, vigil_config_node_at(list, i));
    }
    /* a configuration check builds the client (it checks the URLs and
     * connects to nothing) but leaves the spool alone */
    if (!rc && !a->offline)
        rc = open_client(a, &o, root);
    if (!rc && !a->offline && !check_only) {
        {
            const char *sp =
                o.spool_path && *o.spool_path ? o.spool_path : VIGIL_AGENT_DEFAULT_SPOOL_PATH;
            char *path = resolve_path(a->base_dir, sp);
            if (!path) {
                rc = vigil__error_oom();
            } else {
                vigil__spool_options so = {path, o.spool_max_size, o.spool_no_fsync, &a->logger};
                rc = vigil__spool_open(&a->spool, &so);
                vigil__free(path);
            }
        }
    }
    vigil__free(arr);
    if (rc || check_only) {
        vigil_agent_free(a);
        return rc;
    }
    sync_spool_stats(a);
    vigil__log(&a->logger, VIGIL_LOG_INFO, COMPONENT, "agent ready",
               "id=%s collectors=%zu spool_records=%llu", a->id, a->ncolls,
               (unsigned long long)__atomic_load_n(&a->n_spool_records, __ATOMIC_RELAXED));
    *out = a;
    return VIGIL_OK;
}

int vigil_agent_new(vigil_agent **out, const vigil_config *config, const vigil_agent_options *opts)
{
    return create(out, config, opts, 0);
}

int vigil_agent_check_config(const vigil_config *config, const vigil_agent_options *opts)
{
    return create(NULL, config, opts, 1);
}

int vigil_agent_add_collector(vigil_agent *a, const vigil_config_node *entry)
{
    if (!a || !entry)
        return vigil__error_set(VIGIL_EINVAL, "agent add collector: NULL argument");
    return add_collector(a, entry);
}

/* ---- shipping ------------------------------------------------------------------- */

static void hub_ok(vigil_agent *a)
{
    if (a->hub_failures)
        vigil__log(&a->logger, VIGIL_LOG_INFO, COMPONENT, "hub is back", "failures=%u",
                   a->hub_failures);
    a->hub_failures = 0;
    a->hub_retry_at = 0;
}

static void hub_failed(vigil_agent *a, int64_t now, int code)
{
    a->hub_failures++;
    int64_t ceiling = vigil__backoff_ceiling(a->backoff_ms, a->backoff_max_ms, a->hub_failures);
    int64_t delay = vigil__backoff_jitter(ceiling, &a->rng);
    a->hub_retry_at = now + delay;
    vigil__log(&a->logger, VIGIL_LOG_WARN, COMPONENT, "hub unavailable; spooling",
               "code=%s failures=%u retry_in_ms=%lld", vigil_strerror(code), a->hub_failures,
               (long long)delay);
}

/* Appends [id length][id][gzip body] to the spool. */
static int spool_put(vigil_agent *a, const void *gz, size_t len, const char *id)
{
    if (!a->spool) {
        COUNT(a, n_dropped, 1);
        return VIGIL_OK;
    }
    size_t idlen = strlen(id);
    if (idlen > SPOOL_ID_MAX)
        idlen = SPOOL_ID_MAX;
    vigil__buf_clear(&a->rec);
    int rc = vigil__buf_putc(&a->rec, (char)(unsigned char)idlen);
    if (!rc)
        rc = vigil__buf_put(&a->rec, id, idlen);
    if (!rc)
        rc = vigil__buf_put(&a->rec, gz, len);
    if (rc)
        return rc;
    uint64_t dropped_before = 0;
    vigil__spool_stats st;
    vigil__spool_stats_get(a->spool, &st);
    dropped_before = st.dropped;
    rc = vigil__spool_append(a->spool, a->rec.ptr, a->rec.size);
    vigil__spool_stats_get(a->spool, &st);
    if (st.dropped > dropped_before)
        COUNT(a, n_dropped, st.dropped - dropped_before);
    sync_spool_stats(a);
    if (rc == VIGIL_ENOMEM)
        return rc;
    if (rc) {
        COUNT(a, n_dropped, 1);
        vigil__log(&a->logger, VIGIL_LOG_ERROR, COMPONENT, "cannot spool batch; dropped",
                   "batch_id=%s error=\"%s\"", id, vigil_error_last()->message);
        return VIGIL_OK;
    }
    COUNT(a, n_spooled, 1);
    return VIGIL_OK;
}

/* A batch the hub refused for its content (logged by the client). */
static void refused(vigil_agent *a)
{
    COUNT(a, n_dropped, 1);
    COUNT(a, n_refused, 1);
}

/* The batch id of half `half` (0 or 1) of the batch `parent`: the parent's id
 * and ".0" or ".1", so that a part sent again (its parent split again after a
 * failure) is the same batch to the hub, which acknowledges it as a duplicate.
 * Past VIGIL_BATCH_ID_MAX, the parent's id is first replaced by 32 hex digits
 * of its SHA-256. */
static int derive_id(char out[VIGIL_BATCH_ID_MAX + 1], const char *parent, int half)
{
    size_t len = strlen(parent);
    if (len + 2 <= VIGIL_BATCH_ID_MAX) {
        snprintf(out, VIGIL_BATCH_ID_MAX + 1, "%s.%d", parent, half);
        return VIGIL_OK;
    }
    unsigned char h[VIGIL__CRYPTO_SHA256_LEN];
    int rc = vigil__crypto_sha256(h, parent, len);
    if (rc)
        return rc;
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < 16; i++) {
        out[2 * i] = hex[h[i] >> 4];
        out[2 * i + 1] = hex[h[i] & 15];
    }
    snprintf(out + 32, VIGIL_BATCH_ID_MAX + 1 - 32, ".%d", half);
    return VIGIL_OK;
}

/* Sends metrics [lo, hi) of `whole` as one batch with id `id` (the agent of
 * `whole`), halving it again while the hub finds it too large. VIGIL_OK when
 * every part was accepted (counted in *accepted) or refused for good; the
 * transient code of the first part that was not. */
static int send_range(vigil_agent *a, const vigil_batch *whole, size_t lo, size_t hi,
                      const char *id, unsigned int attempts, int64_t deadline, size_t *accepted)
{
    vigil_batch *part = NULL;
    vigil_buf gz = VIGIL_BUF_INIT;
    int rc = vigil_batch_new(&part);
    if (!rc && vigil_batch_agent(whole))
        rc = vigil_batch_set_agent(part, vigil_batch_agent(whole));
    if (!rc)
        rc = vigil_batch_set_id(part, id);
    for (size_t i = lo; !rc && i < hi; i++)
        rc = vigil_batch_add(part, vigil_batch_get(whole, i));
    if (!rc)
        rc = vigil__client_encode(&gz, part);
    if (rc) { /* not sent: nothing the hub said */
        vigil_buf_dispose(&gz);
        vigil_batch_free(part);
        return rc;
    }
    rc = vigil__client_send_gzip(a->client, gz.ptr, gz.size, id, attempts, deadline);
    if (rc == VIGIL_OK) {
        COUNT(a, n_sent, 1);
        (*accepted)++;
    } else if (rc == VIGIL_EHTTP) {
        refused(a);
        rc = VIGIL_OK;
    } else if (rc == VIGIL_ELIMIT && hi - lo == 1) {
        vigil__log(&a->logger, VIGIL_LOG_ERROR, COMPONENT,
                   "a single metric is larger than the hub accepts; dropped",
                   "batch_id=%s metric=%s bytes=%zu", id, vigil_batch_get(whole, lo)->name,
                   gz.size);
        refused(a);
        rc = VIGIL_OK;
    } else if (rc == VIGIL_ELIMIT) {
        char left[VIGIL_BATCH_ID_MAX + 1], right[VIGIL_BATCH_ID_MAX + 1];
        size_t mid = lo + (hi - lo) / 2;
        vigil_buf_dispose(&gz);
        vigil_batch_free(part);
        part = NULL;
        COUNT(a, n_splits, 1);
        rc = derive_id(left, id, 0);
        if (!rc)
            rc = derive_id(right, id, 1);
        if (!rc)
            rc = send_range(a, whole, lo, mid, left, attempts, deadline, accepted);
        if (!rc)
            rc = send_range(a, whole, mid, hi, right, attempts, deadline, accepted);
    }
    vigil_buf_dispose(&gz);
    vigil_batch_free(part);
    return rc;
}

/* A batch the hub found too large (413): decoded and sent in halves, in
 * order, each half halved again while the hub still finds it too large, down
 * to one metric (dropped, counted and logged when even that is too large).
 * VIGIL_OK when every part was accepted or refused for good; otherwise the
 * transient code of the first part that was not, and the caller keeps the
 * whole batch: its parts get the same ids when it is split again, so those
 * the hub took already are acknowledged as duplicates. */
static int split_send(vigil_agent *a, const void *gz, size_t len, const char *id,
                      unsigned int attempts, int64_t deadline, size_t *accepted)
{
    vigil_buf json = VIGIL_BUF_INIT;
    vigil_batch *whole = NULL;
    int rc = vigil__gzip_inflate(&json, gz, len, SPLIT_INFLATE_MAX);
    if (!rc)
        rc = vigil_batch_new(&whole);
    if (!rc)
        rc = vigil_batch_decode_json(whole, json.ptr, json.size, NULL);
    vigil_buf_dispose(&json);
    size_t n = rc ? 0 : vigil_batch_count(whole);
    if (rc == VIGIL_ENOMEM || (!rc && n == 0)) {
        vigil_batch_free(whole);
        return rc;
    }
    if (rc) { /* cannot happen with the agent's own bodies: nothing to split */
        vigil__log(&a->logger, VIGIL_LOG_ERROR, COMPONENT,
                   "hub found the batch too large and it cannot be split; dropped",
                   "batch_id=%s error=\"%s\"", id, vigil_error_last()->message);
        vigil_batch_free(whole);
        refused(a);
        return VIGIL_OK;
    }
    const char *base = vigil_batch_id(whole) ? vigil_batch_id(whole) : id;
    if (n == 1) {
        vigil__log(&a->logger, VIGIL_LOG_ERROR, COMPONENT,
                   "a single metric is larger than the hub accepts; dropped",
                   "batch_id=%s metric=%s bytes=%zu", base, vigil_batch_get(whole, 0)->name, len);
        refused(a);
        vigil_batch_free(whole);
        return VIGIL_OK;
    }
    COUNT(a, n_splits, 1);
    vigil__log(&a->logger, VIGIL_LOG_INFO, COMPONENT, "hub found the batch too large; splitting",
               "batch_id=%s metrics=%zu bytes=%zu", base, n, len);
    char left[VIGIL_BATCH_ID_MAX + 1], right[VIGIL_BATCH_ID_MAX + 1];
    size_t mid = n / 2;
    rc = derive_id(left, base, 0);
    if (!rc)
        rc = derive_id(right, base, 1);
    if (!rc)
        rc = send_range(a, whole, 0, mid, left, attempts, deadline, accepted);
    if (!rc)
        rc = send_range(a, whole, mid, n, right, attempts, deadline, accepted);
    vigil_batch_free(whole);
    return rc;
}

/* Sends one encoded batch, or spools it. `urgent` (events) skips the queue:
 * one attempt even while the hub backs off or the spool holds a backlog.
 * `deadline` (monotonic, 0: none) bounds the send. */
static int deliver(vigil_agent *a, const vigil_buf *gz, const char *id, int64_t now, int urgent,
                   int64_t deadline)
{
    if (a->offline) {
        COUNT(a, n_dropped, 1);
        return VIGIL_OK;
    }
    vigil__spool_stats st;
    vigil__spool_stats_get(a->spool, &st);
    if (!urgent && (st.records > 0 || now < a->hub_retry_at))
        return spool_put(a, gz->ptr, gz->size, id);
    unsigned int attempts = urgent || deadline ? 1u : a->attempts;
    int rc = vigil__client_send_gzip(a->client, gz->ptr, gz->size, id, attempts, deadline);
    if (rc == VIGIL_OK) {
        COUNT(a, n_sent, 1);
        hub_ok(a);
        return VIGIL_OK;
    }
    if (rc == VIGIL_EHTTP) { /* refused for good: logged by the client */
        refused(a);
        return VIGIL_OK;
    }
    if (rc == VIGIL_ELIMIT) { /* 413: sent in parts, or kept whole */
        size_t accepted = 0;
        rc = split_send(a, gz->ptr, gz->size, id, attempts, deadline, &accepted);
        if (rc == VIGIL_OK) {
            hub_ok(a);
            return VIGIL_OK;
        }
    }
    if (rc == VIGIL_ENOMEM)
        return rc;
    COUNT(a, n_failures, 1);
    if (rc != VIGIL_ECLOSED)
        hub_failed(a, now, rc);
    return spool_put(a, gz->ptr, gz->size, id);
}

/* Encodes `batch` (agent id, fresh batch id), clears it and delivers it. */
static int ship_batch(vigil_agent *a, vigil_batch *batch, int64_t now, int urgent, int64_t deadline)
{
    if (vigil_batch_count(batch) == 0)
        return VIGIL_OK;
    int rc = vigil_batch_set_agent(batch, a->id);
    if (!rc)
        rc = vigil_batch_set_id(batch, NULL);
    if (!rc)
        rc = vigil__client_encode(&a->gz, batch);
    if (rc)
        return rc;
    char id[VIGIL_BATCH_ID_MAX + 1];
    snprintf(id, sizeof(id), "%s", vigil_batch_id(batch));
    vigil_batch_clear(batch);
    if (batch == a->pending)
        a->pending_since = -1;
    return deliver(a, &a->gz, id, now, urgent, deadline);
}

/* Sends a few spooled batches, oldest first, when the hub may take them. */
static int replay(vigil_agent *a, int64_t now, int *more)
{
    *more = 0;
    if (!a->spool || now < a->hub_retry_at)
        return VIGIL_OK;
    for (int i = 0; i < REPLAY_PER_STEP; i++) {
        if (__atomic_load_n(&a->stop, __ATOMIC_RELAXED))
            return VIGIL_OK;
        int rc = vigil__spool_peek(a->spool, &a->rec);
        if (rc == VIGIL_ENOTFOUND)
            break;
        if (rc == VIGIL_ENOMEM)
            return rc;
        if (rc) {
            vigil__log(&a->logger, VIGIL_LOG_ERROR, COMPONENT, "cannot read the spool",
                       "error=\"%s\"", vigil_error_last()->message);
            hub_failed(a, now, rc);
            break;
        }
        size_t idlen = a->rec.size ? (unsigned char)a->rec.ptr[0] : 0;
        if (a->rec.size < 2 + idlen) { /* verified by CRC, so not ours: skip it */
            COUNT(a, n_dropped, 1);
            vigil__spool_pop(a->spool);
            sync_spool_stats(a);
            continue;
        }
        char id[SPOOL_ID_MAX + 1];
        memcpy(id, a->rec.ptr + 1, idlen);
        id[idlen] = '\0';
        const char *gz = a->rec.ptr + 1 + idlen;
        size_t gzlen = a->rec.size - 1 - idlen;
        rc = vigil__client_send_gzip(a->client, gz, gzlen, id, 1, 0);
        size_t accepted = 1;
        if (rc == VIGIL_ELIMIT) { /* 413: sent in parts, or kept whole */
            accepted = 0;
            rc = split_send(a, gz, gzlen, id, 1, 0, &accepted);
        } else if (rc == VIGIL_OK) {
            COUNT(a, n_sent, 1);
        }
        if (rc == VIGIL_OK || rc == VIGIL_EHTTP) {
            if (rc == VIGIL_OK) {
                if (accepted)
                    COUNT(a, n_replayed, 1);
                hub_ok(a);
            } else {
                refused(a);
            }
            int prc = vigil__spool_pop(a->spool);
            sync_spool_stats(a);
            if (prc) {
                vigil__log(&a->logger, VIGIL_LOG_ERROR, COMPONENT, "cannot update the spool",
                           "error=\"%s\"", vigil_error_last()->message);
                hub_failed(a, now, prc);
                break;
            }
            continue;
        }
        if (rc == VIGIL_ENOMEM)
            return rc;
        if (rc != VIGIL_ECLOSED) {
            COUNT(a, n_failures, 1);
            hub_failed(a, now, rc);
        }
        return VIGIL_OK;
    }
    vigil__spool_stats st;
    vigil__spool_stats_get(a->spool, &st);
    *more = st.records > 0 && now >= a->hub_retry_at;
    return VIGIL_OK;
}

/* ---- collecting ----------------------------------------------------------------- */

static int has_tag(const vigil_tag *tags, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(tags[i].key, key) == 0)
            return 1;
    return 0;
}

/* Adds one sample to `dst` with host and the global tags (never overriding
 * the sample's own). A full pending batch is shipped first. */
static int add_sample(vigil_agent *a, vigil_batch *dst, const vigil_metric *m, int64_t now,
                      int may_ship)
{
    vigil_tag tags[VIGIL_METRIC_TAGS_MAX];
    size_t n = m->ntags < VIGIL_METRIC_TAGS_MAX ? m->ntags : VIGIL_METRIC_TAGS_MAX;
    if (n)
        memcpy(tags, m->tags, n * sizeof(vigil_tag));
    if (n < VIGIL_METRIC_TAGS_MAX && !has_tag(tags, n, "host")) {
        tags[n].key = "host";
        tags[n].value = a->id;
        n++;
    }
    for (size_t i = 0; i < a->ntags && n < VIGIL_METRIC_TAGS_MAX; i++) {
        if (!has_tag(tags, n, a->tags[i].key))
            tags[n++] = a->tags[i];
    }
    vigil_metric c = *m;
    c.tags = tags;
    c.ntags = n;
    if (may_ship && vigil_batch_count(dst) >= a->max_metrics) {
        int rc = ship_batch(a, dst, now, 0, 0);
        if (rc)
            return rc;
    }
    int rc = vigil_batch_add(dst, &c);
    if (rc == VIGIL_ELIMIT && may_ship && vigil_batch_count(dst) > 0) {
        if ((rc = ship_batch(a, dst, now, 0, 0)) != VIGIL_OK)
            return rc;
        rc = vigil_batch_add(dst, &c);
    }
    if (rc == VIGIL_ENOMEM)
        return rc;
    if (rc) {
        vigil__log(&a->logger, VIGIL_LOG_WARN, COMPONENT, "sample dropped",
                   "metric=%s error=\"%s\"", m->name, vigil_error_last()->message);
        COUNT(a, n_dropped, 1);
        return VIGIL_OK;
    }
    COUNT(a, n_metrics, 1);
    if (dst == a->pending && a->pending_since < 0)
        a->pending_since = now;
    return VIGIL_OK;
}

static int add_value(vigil_agent *a, const char *name, double v, int64_t now, const char *tk,
                     const char *tv)
{
    vigil_tag t = {tk, tv};
    vigil_metric m = {name, v, now, tk ? &t : NULL, tk ? 1u : 0u, NULL};
    return add_sample(a, a->pending, &m, now, 1);
}

static int merge(vigil_agent *a, const vigil_batch *src, vigil_batch *dst, int64_t now,
                 int may_ship)
{
    size_t n = vigil_batch_count(src);
    for (size_t i = 0; i < n; i++) {
        int rc = add_sample(a, dst, vigil_batch_get(src, i), now, may_ship);
        if (rc)
            return rc;
    }
    return VIGIL_OK;
}

static int run_collector(vigil_agent *a, vigil_collector *c, int64_t now)
{
    vigil_batch_clear(a->scratch);
    int64_t t0 = vigil__monotonic_ms();
    int rc = vigil_collector_collect(c, a->scratch, now, NULL);
    int64_t took = vigil__monotonic_ms() - t0;
    COUNT(a, n_collections, 1);
    if (rc == VIGIL_ENOMEM)
        return rc;
    if (rc)
        vigil__log(&a->logger, VIGIL_LOG_WARN, COMPONENT, "collection incomplete",
                   "collector=%s error=\"%s\"", vigil_collector_name(c),
                   vigil_error_last()->message);
    rc = merge(a, a->scratch, a->pending, now, 1);
    if (!rc)
        rc = add_value(a, "vigil_agent_collect_duration_ms", (double)took, now, "collector",
                       vigil_collector_name(c));
    return rc;
}

static int add_heartbeat(vigil_agent *a, int64_t now)
{
    int rc = add_value(a, "vigil_agent_heartbeat", 1, now, NULL, NULL);
    if (!rc)
        rc = add_value(a, "vigil_agent_batches_sent",
                       (double)__atomic_load_n(&a->n_sent, __ATOMIC_RELAXED), now, NULL, NULL);
    if (!rc)
        rc = add_value(a, "vigil_agent_ship_failures",
                       (double)__atomic_load_n(&a->n_failures, __ATOMIC_RELAXED), now, NULL, NULL);
    if (!rc)
        rc = add_value(a, "vigil_agent_spool_bytes",
                       (double)__atomic_load_n(&a->n_spool_bytes, __ATOMIC_RELAXED), now, NULL,
                       NULL);
    if (!rc)
        rc = add_value(a, "vigil_agent_dropped",
                       (double)__atomic_load_n(&a->n_dropped, __ATOMIC_RELAXED), now, NULL, NULL);
    if (!rc)
        rc = add_value(a, "vigil_agent_refused",
                       (double)__atomic_load_n(&a->n_refused, __ATOMIC_RELAXED), now, NULL, NULL);
    return rc;
}

/* Handles readable event descriptors: their samples are shipped at once. */
static int handle_events(vigil_agent *a, int64_t now)
{
    struct pollfd fds[64];
    size_t idx[64];
    int rc = VIGIL_OK;
    size_t i = 0;
    while (!rc && i < a->ncolls) {
        size_t n = 0;
        for (; i < a->ncolls && n < VIGIL__ARRAY_LEN(fds); i++) {
            int fd = vigil_collector_poll_fd(a->colls[i]);
            if (fd < 0)
                continue;
            fds[n].fd = fd;
            fds[n].events = POLLIN;
            fds[n].revents = 0;
            idx[n++] = i;
        }
        if (n == 0 || poll(fds, (nfds_t)n, 0) <= 0)
            continue;
        for (size_t k = 0; !rc && k < n; k++) {
            if (!(fds[k].revents & (POLLIN | POLLERR | POLLHUP)))
                continue;
            vigil_batch_clear(a->scratch);
            rc = vigil_collector_on_event(a->colls[idx[k]], a->scratch, now);
            if (rc && rc != VIGIL_ELIMIT)
                return rc;
            rc = merge(a, a->scratch, a->events, now, 0);
        }
    }
    if (rc)
        return rc;
    if (vigil_batch_count(a->events) > 0) {
        COUNT(a, n_events, 1);
        rc = ship_batch(a, a->events, now, 1, 0);
    }
    return rc;
}

int vigil_agent_step(vigil_agent *a, int64_t now, int64_t *next_deadline)
{
    if (!a)
        return vigil__error_set(VIGIL_EINVAL, "agent step: NULL argument");
    int rc = handle_events(a, now);
    int64_t next = now + a->heartbeat_ms;
    for (size_t i = 0; !rc && i < a->ncolls; i++) {
        int64_t due = vigil_collector_next_due(a->colls[i]);
        if (due <= now) {
            rc = run_collector(a, a->colls[i], now);
            due = vigil_collector_next_due(a->colls[i]);
        }
        if (due < next)
            next = due;
    }
    if (!rc && now >= a->next_heartbeat) {
        rc = add_heartbeat(a, now);
        a->next_heartbeat = now + a->heartbeat_ms;
    }
    if (a->next_heartbeat < next)
        next = a->next_heartbeat;
    if (!rc && vigil_batch_count(a->pending) > 0 &&
        (vigil_batch_count(a->pending) >= a->max_metrics ||
         now - a->pending_since >= a->max_delay_ms))
        rc = ship_batch(a, a->pending, now, 0, 0);
    if (!rc && vigil_batch_count(a->pending) > 0 && a->pending_since + a->max_delay_ms < next)
        next = a->pending_since + a->max_delay_ms;
    int more = 0;
    if (!rc)
        rc = replay(a, now, &more);
    if (more)
        next = now;
    else if (a->spool && a->hub_retry_at > now && a->hub_retry_at < next &&
             __atomic_load_n(&a->n_spool_records, __ATOMIC_RELAXED) > 0)
        next = a->hub_retry_at;
    if (next_deadline)
        *next_deadline = next;
    return rc;
}

/* ---- the run loop ----------------------------------------------------------------- */

size_t vigil_agent_poll_fds(const vigil_agent *a, int *fds, size_t max)
{
    if (!a)
        return 0;
    size_t n = 0;
    if (a->wake[0] >= 0) {
        if (fds && n < max)
            fds[n] = a->wake[0];
        n++;
    }
    for (size_t i = 0; i < a->ncolls; i++) {
        int fd = vigil_collector_poll_fd(a->colls[i]);
        if (fd < 0)
            continue;
        if (fds && n < max)
            fds[n] = fd;
        n++;
    }
    return n;
}

void vigil_agent_stop(vigil_agent *a)
{
    if (!a)
        return;
    __atomic_store_n(&a->stop, 1, __ATOMIC_SEQ_CST);
    if (a->wake[1] >= 0) {
        ssize_t w = write(a->wake[1], "x", 1); /* async-signal-safe */
        (void)w;
    }
}

static void drain_wake(vigil_agent *a)
{
    char buf[64];
    while (read(a->wake[0], buf, sizeof(buf)) > 0)
        ;
}

int vigil_agent_run(vigil_agent *a)
{
    if (!a)
        return vigil__error_set(VIGIL_EINVAL, "agent run: NULL argument");
    size_t nfds = vigil_agent_poll_fds(a, NULL, 0);
    struct pollfd *pfds = vigil__calloc(nfds ? nfds : 1, sizeof(struct pollfd));
    int *fds = vigil__calloc(nfds ? nfds : 1, sizeof(int));
    if (!pfds || !fds) {
        vigil__free(pfds);
        vigil__free(fds);
        return vigil__error_oom();
    }
    vigil_agent_poll_fds(a, fds, nfds);
    int rc = VIGIL_OK;
    while (!__atomic_load_n(&a->stop, __ATOMIC_SEQ_CST)) {
        int64_t next = 0;
        rc = vigil_agent_step(a, vigil__now_ms(), &next);
        if (rc)
            break;
        if (__atomic_load_n(&a->stop, __ATOMIC_SEQ_CST))
            break;
        int64_t wait = next - vigil__now_ms();
        if (wait < 0)
            wait = 0;
        if (wait > RUN_SLEEP_MAX)
            wait = RUN_SLEEP_MAX;
        for (size_t i = 0; i < nfds; i++) {
            pfds[i].fd = fds[i];
            pfds[i].events = POLLIN;
            pfds[i].revents = 0;
        }
        if (poll(pfds, (nfds_t)nfds, (int)wait) < 0 && errno != EINTR) {
            rc = vigil__error_set(VIGIL_EIO, "agent: poll: %s", strerror(errno));
            break;
        }
        if (nfds && (pfds[0].revents & POLLIN))
            drain_wake(a);
    }
    vigil__free(pfds);
    vigil__free(fds);
    drain_wake(a);
    int frc = vigil_agent_flush(a, a->shutdown_ms);
    __atomic_store_n(&a->stop, 0, __ATOMIC_SEQ_CST);
    vigil__log(&a->logger, VIGIL_LOG_INFO, COMPONENT, "agent stopped", "id=%s", a->id);
    return rc ? rc : frc;
}

int vigil_agent_flush(vigil_agent *a, int64_t timeout_ms)
{
    if (!a)
        return vigil__error_set(VIGIL_EINVAL, "agent flush: NULL argument");
    int64_t now = vigil__now_ms();
    int64_t deadline = vigil__monotonic_ms() + (timeout_ms > 0 ? timeout_ms : 1);
    int rc = ship_batch(a, a->events, now, 1, deadline);
    if (!rc)
        rc = ship_batch(a, a->pending, now, 0, deadline);
    return rc;
}

/* ---- one-shot collection ------------------------------------------------------------ */

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int vigil_agent_collect_once(vigil_agent *a, vigil_batch *out, int64_t gap_ms)
{
    if (!a || !out)
        return vigil__error_set(VIGIL_EINVAL, "agent collect once: NULL argument");
    if (gap_ms < 0)
        return vigil__error_set(VIGIL_EINVAL, "agent collect once: negative gap");
    vigil_batch_clear(out);
    int rc = vigil_batch_set_agent(out, a->id);
    int rates = 0;
    int64_t now = vigil__now_ms();
    for (size_t i = 0; !rc && i < a->ncolls; i++) {
        if (!(vigil_collector_flags(a->colls[i]) & VIGIL_COLLECTOR_RATES))
            continue;
        vigil_batch_clear(a->scratch);
        rc = vigil_collector_collect(a->colls[i], a->scratch, now, NULL);
        rates = 1;
    }
    if (!rc && rates)
        sleep_ms(gap_ms ? gap_ms : DEF_ONCE_GAP);
    now = vigil__now_ms();
    for (size_t i = 0; !rc && i < a->ncolls; i++) {
        vigil_batch_clear(a->scratch);
        rc = vigil_collector_collect(a->colls[i], a->scratch, now, NULL);
        if (rc && rc != VIGIL_ELIMIT)
            break;
        size_t n = vigil_batch_count(a->scratch);
        for (size_t k = 0; k < n; k++) {
            rc = add_sample(a, out, vigil_batch_get(a->scratch, k), now, 0);
            if (rc)
                break;
        }
    }
    vigil_batch_clear(a->scratch);
    return rc;
}

/* ---- accessors and teardown --------------------------------------------------------- */

const char *vigil_agent_id(const vigil_agent *a)
{
    return a ? a->id : NULL;
}

size_t vigil_agent_collector_count(const vigil_agent *a)
{
    return a ? a->ncolls : 0;
}

int vigil_agent_stats_get(const vigil_agent *a, vigil_agent_stats *out)
{
    if (!a || !out)
        return vigil__error_set(VIGIL_EINVAL, "agent stats: NULL argument");
    if (vigil__version_check("agent stats", out->version, VIGIL_AGENT_STATS_VERSION))
        return VIGIL_EVERSION;
#define LOAD(f) __atomic_load_n(&a->f, __ATOMIC_RELAXED)
    out->collections = LOAD(n_collections);
    out->metrics = LOAD(n_metrics);
    out->batches_sent = LOAD(n_sent);
    out->ship_failures = LOAD(n_failures);
    out->dropped = LOAD(n_dropped);
    out->spooled = LOAD(n_spooled);
    out->replayed = LOAD(n_replayed);
    out->events = LOAD(n_events);
    out->spool_bytes = LOAD(n_spool_bytes);
    out->spool_records = LOAD(n_spool_records);
    out->spool_corrupt = LOAD(n_spool_corrupt);
    out->refused = LOAD(n_refused);
    out->splits = LOAD(n_splits);
#undef LOAD
    return VIGIL_OK;
}

void vigil_agent_free(vigil_agent *a)
{
    if (!a)
        return;
    /* keep what was collected but not shipped: it goes to the spool */
    if (a->spool) {
        vigil_batch *bs[2] = {a->events, a->pending};
        for (int i = 0; i < 2; i++) {
            vigil_batch *b = bs[i];
            if (!b || vigil_batch_count(b) == 0)
                continue;
            if (vigil_batch_set_agent(b, a->id) == VIGIL_OK &&
                vigil_batch_set_id(b, NULL) == VIGIL_OK &&
                vigil__client_encode(&a->gz, b) == VIGIL_OK) {
                char id[VIGIL_BATCH_ID_MAX + 1];
                snprintf(id, sizeof(id), "%s", vigil_batch_id(b));
                if (spool_put(a, a->gz.ptr, a->gz.size, id) != VIGIL_OK)
                    COUNT(a, n_dropped, 1);
            }
        }
    }
    for (size_t i = 0; i < a->ncolls; i++)
        vigil_collector_free(a->colls[i]);
    vigil__free(a->colls);
    vigil_collector_registry_free(a->own_registry);
    vigil_client_free(a->client);
    vigil__spool_close(a->spool);
    vigil_batch_free(a->pending);
    vigil_batch_free(a->scratch);
    vigil_batch_free(a->events);
    vigil_buf_dispose(&a->gz);
    vigil_buf_dispose(&a->rec);
    if (a->wake[0] >= 0)
        close(a->wake[0]);
    if (a->wake[1] >= 0)
        close(a->wake[1]);
    for (size_t i = 0; i < a->ntags; i++) {
        vigil__free((char *)a->tags[i].key);
        vigil__free((char *)a->tags[i].value);
    }
    vigil__free(a->tags);
    if (a->exec_allow) {
        for (size_t i = 0; a->exec_allow[i]; i++)
            vigil__free(a->exec_allow[i]);
        vigil__free(a->exec_allow);
    }
    vigil__free(a->proc_root);
    vigil__free(a->sys_root);
    vigil__free(a->base_dir);
    vigil__free(a->id);
    vigil__free(a);
}
