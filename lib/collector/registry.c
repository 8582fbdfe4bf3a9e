/* The registry of collector types and collector instances: shared config
 * keys, tags, error samples, schedule and backoff. */
#include "collector/coll_int.h"
#include "internal/plugin.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define TYPE_NAME_MAX   64
#define TAGS_CONFIG_MAX 32
#define ALLOW_MAX       256
#define DEFAULT_IVL_MS  10000
#define DEFAULT_BACKOFF 300000

struct vigil_collector_registry {
    /* vigil_collector_type copies; first, for vigil__plugin_registry_free() */
    vigil__plugin_list types;
};

VIGIL__PLUGIN_HEAD_CHECK(vigil_collector_type);

static const vigil__plugin_kind k_kind = {"collector type", VIGIL_COLLECTOR_TYPE_VERSION, "_",
                                          TYPE_NAME_MAX};

static const vigil_collector_type *const k_builtins[] = {
    &vigil__collector_cpu,  &vigil__collector_memory, &vigil__collector_load,
    &vigil__collector_disk, &vigil__collector_net,    &vigil__collector_process,
    &vigil__collector_http, &vigil__collector_tcp,    &vigil__collector_file,
    &vigil__collector_exec,
};

static bool is_builtin(const char *name)
{
    for (size_t i = 0; i < VIGIL__ARRAY_LEN(k_builtins); i++)
        if (strcmp(k_builtins[i]->name, name) == 0)
            return true;
    return false;
}

struct vigil_collector {
    const vigil_collector_type *type;
    void *state;
    vigil_logger logger;
    vigil_collector_context ctx;
    char *proc_root;
    char *sys_root;
    char *base_dir;
    char *name_cfg; /* NULL when `name` is absent */
    char **exec_allow;
    vigil_tag *tags; /* configured tags, owned strings */
    size_t ntags;
    int64_t interval_ms;
    int64_t backoff_max_ms;
    int64_t next_due;
    unsigned int failures;
    int last_status;
    vigil_batch *scratch;
};

/* ---- registry ------------------------------------------------------------- */

int vigil_collector_registry_new(vigil_collector_registry **out)
{
    return vigil__plugin_registry_new((void **)out, sizeof(**out), "vigil_collector_registry_new");
}

void vigil_collector_registry_free(vigil_collector_registry *registry)
{
    vigil__plugin_registry_free(registry ? &registry->types : NULL);
}

void vigil__collector_registry_set_fallback(vigil_collector_registry *registry,
                                            const vigil_collector_registry *fallback)
{
    registry->types.fallback = fallback ? &fallback->types : NULL;
}

int vigil_collector_register(vigil_collector_registry *registry, const vigil_collector_type *type)
{
    int rc = vigil__plugin_check(&k_kind, registry, type, type ? type->version : 0,
                                 type ? type->name : NULL);
    if (!rc && (!type->create || !type->collect || !type->destroy))
        rc = vigil__plugin_missing(&k_kind, type->name, "create, collect and destroy are required");
    if (!rc && type->poll_fd && !type->on_event)
        rc = vigil__plugin_missing(&k_kind, type->name, "on_event is required with poll_fd");
    if (!rc && is_builtin(type->name))
        rc = vigil__plugin_exists(&k_kind, type->name, true);
    if (rc)
        return vigil__plugin_fail(rc, type ? type->payload : NULL,
                                  type ? type->payload_free : NULL);
    return vigil__plugin_list_add(&registry->types, &k_kind, type, sizeof(*type));
}

int vigil_collector_registry_add_builtins(vigil_collector_registry *registry)
{
    if (!registry)
        return vigil__error_set(VIGIL_EINVAL,
                                "vigil_collector_registry_add_builtins: NULL registry");
    for (size_t i = 0; i < VIGIL__ARRAY_LEN(k_builtins); i++) {
        int rc = vigil__plugin_list_add(&registry->types, &k_kind, k_builtins[i],
                                        sizeof(*k_builtins[i]));
        if (rc != VIGIL_OK)
            return rc;
    }
    return VIGIL_OK;
}

const vigil_collector_type *
vigil_collector_registry_lookup(const vigil_collector_registry *registry, const char *name)
{
    if (!registry || !name)
        return NULL;
    return vigil__plugin_list_find(&registry->types, name);
}

size_t vigil_collector_registry_count(const vigil_collector_registry *registry)
{
    return registry ? vigil__plugin_list_count(&registry->types) : 0;
}

const char *vigil_collector_registry_name_at(const vigil_collector_registry *registry, size_t index)
{
    return registry ? vigil__plugin_list_name_at(&registry->types, index) : NULL;
}

/* ---- options -------------------------------------------------------------- */

int vigil_collector_options_init(vigil_collector_options *opts, unsigned int version)
{
    if (!opts)
        return vigil__error_set(VIGIL_EINVAL, "vigil_collector_options_init: NULL options");
    if (vigil__version_check("collector options", version, VIGIL_COLLECTOR_OPTIONS_VERSION))
        return VIGIL_EVERSION;
    vigil_collector_options d = VIGIL_COLLECTOR_OPTIONS_INIT;
    *opts = d;
    return VIGIL_OK;
}

/* ---- instances ------------------------------------------------------------ */

void vigil_collector_free(vigil_collector *c)
{
    if (!c)
        return;
    if (c->state)
        c->type->destroy(c->state);
    for (size_t i = 0; i < c->ntags; i++) {
        vigil__free((char *)c->tags[i].key);
        vigil__free((char *)c->tags[i].value);
    }
    vigil__free(c->tags);
    vigil__coll_free_string_list(c->exec_allow);
    vigil__free(c->proc_root);
    vigil__free(c->sys_root);
    vigil__free(c->base_dir);
    vigil__free(c->name_cfg);
    vigil_batch_free(c->scratch);
    vigil__free(c);
}

static int dup_str(char **dst, const char *src)
{
    *dst = vigil__strdup(src);
    return *dst ? VIGIL_OK : vigil__error_oom();
}

static int set_base_dir(vigil_collector *c, const char *base)
{
    char cwd[PATH_MAX];
    if (base && base[0] == '/')
        return dup_str(&c->base_dir, base);
    if (!getcwd(cwd, sizeof(cwd)))
        return vigil__error_set(VIGIL_EIO, "cannot read the working directory: %s",
                                strerror(errno));
    if (!base || !base[0] || strcmp(base, ".") == 0)
        return dup_str(&c->base_dir, cwd);
    c->base_dir = vigil__coll_resolve(cwd, base);
    return c->base_dir ? VIGIL_OK : VIGIL_ENOMEM;
}

static int copy_allow(vigil_collector *c, const char *const *allow)
{
    if (!allow)
        return VIGIL_OK;
    size_t n = 0;
    while (allow[n])
        n++;
    if (n > ALLOW_MAX)
        return vigil__error_set(VIGIL_ELIMIT, "exec_allow has more than %d entries", ALLOW_MAX);
    c->exec_allow = vigil__calloc(n + 1, sizeof(char *));
    if (!c->exec_allow)
        return vigil__error_oom();
    for (size_t i = 0; i < n; i++)
        if (dup_str(&c->exec_allow[i], allow[i]) != VIGIL_OK)
            return VIGIL_ENOMEM;
    return VIGIL_OK;
}

static int read_tags(vigil_collector *c, const vigil_config_node *config)
{
    const vigil_config_node *tags = vigil_config_node_get(config, "tags");
    if (!tags || vigil_config_node_kind(tags) == VIGIL_CONFIG_NULL)
        return VIGIL_OK;
    int rc = vigil_config_map(tags);
    if (rc != VIGIL_OK)
        return rc;
    size_t n = vigil_config_node_len(tags);
    if (n > TAGS_CONFIG_MAX)
        return vigil_error_set_at(VIGIL_ELIMIT, tags, "more than 32 tags");
    c->tags = vigil__calloc(n ? n : 1, sizeof(vigil_tag));
    if (!c->tags)
        return vigil__error_oom();
    for (size_t i = 0; i < n; i++) {
        const char *key = vigil_config_node_key_at(tags, i);
        const vigil_config_node *v = vigil_config_node_at(tags, i);
        if (!vigil_metric_name_valid(key))
            return vigil_error_set_at(VIGIL_ENAME, v,
                                      "invalid tag key (expected [a-zA-Z_:][a-zA-Z0-9_:]*)");
        const char *value = NULL;
        rc = vigil_config_string(&value, v);
        if (rc != VIGIL_OK)
            return rc;
        if (strlen(value) > VIGIL_METRIC_TAG_VALUE_MAX)
            return vigil_error_set_at(VIGIL_ELIMIT, v, "tag value longer than 1024 bytes");
        char *k = vigil__strdup(key), *s = vigil__strdup(value);
        if (!k || !s) {
            vigil__free(k);
            vigil__free(s);
            return vigil__error_oom();
        }
        c->tags[c->ntags].key = k;
        c->tags[c->ntags].value = s;
        c->ntags++;
    }
    return VIGIL_OK;
}

static int check_keys(const vigil_collector_type *type, const vigil_config_node *config)
{
    static const char *const shared[] = {"type", "name", "interval", "tags"};
    const char *allowed[64 + VIGIL__ARRAY_LEN(shared) + 1];
    size_t n = 0;
    for (size_t i = 0; i < VIGIL__ARRAY_LEN(shared); i++)
        allowed[n++] = shared[i];
    for (const char *const *k = type->keys; k && *k; k++) {
        if (n >= VIGIL__ARRAY_LEN(allowed) - 1)
            return vigil__error_set(VIGIL_ELIMIT, "collector type \"%s\" lists too many keys",
                                    type->name);
        allowed[n++] = *k;
    }
    allowed[n] = NULL;
    return vigil_config_expect_keys(config, allowed);
}

static int read_shared(vigil_collector *c, const vigil_config_node *config,
                       const vigil_collector_options *o)
{
    const char *name = NULL;
    int rc = vigil_config_get_string(&name, config, "name", NULL);
    if (rc != VIGIL_OK)
        return rc;
    if (name) {
        const vigil_config_node *n = vigil_config_node_get(config, "name");
        if (!name[0])
            return vigil_error_set_at(VIGIL_EVALUE, n, "expected a non-empty name");
        if (strlen(name) > VIGIL_METRIC_TAG_VALUE_MAX)
            return vigil_error_set_at(VIGIL_ELIMIT, n, "name longer than 1024 bytes");
        if (dup_str(&c->name_cfg, name) != VIGIL_OK)
            return VIGIL_ENOMEM;
    }
    int64_t dflt = o->default_interval_ms > 0 ? o->default_interval_ms : DEFAULT_IVL_MS;
    rc = vigil_config_get_duration(&c->interval_ms, config, "interval", dflt);
    if (rc != VIGIL_OK)
        return rc;
    if (c->interval_ms < VIGIL_COLLECTOR_MIN_INTERVAL_MS)
        return vigil_error_set_at(VIGIL_ERANGE, vigil_config_node_get(config, "interval"),
                                  "interval must be at least 10ms");
    c->backoff_max_ms = o->backoff_max_ms > 0 ? o->backoff_max_ms : DEFAULT_BACKOFF;
    if (c->backoff_max_ms < c->interval_ms)
        c->backoff_max_ms = c->interval_ms;
    return read_tags(c, config);
}

int vigil_collector_new(vigil_collector **out, const vigil_collector_registry *registry,
                        const vigil_config_node *config, const vigil_collector_options *opts)
{
    if (!out || !registry || !config)
        return vigil__error_set(VIGIL_EINVAL, "vigil_collector_new: NULL argument");
    *out = NULL;
    vigil_collector_options o = VIGIL_COLLECTOR_OPTIONS_INIT;
    if (opts) {
        if (vigil__version_check("collector options", opts->version,
                                 VIGIL_COLLECTOR_OPTIONS_VERSION))
            return VIGIL_EVERSION;
        o = *opts;
    }
    int rc = vigil_config_map(config);
    if (rc != VIGIL_OK)
        return rc;
    rc = vigil_config_require(config, "type");
    if (rc != VIGIL_OK)
        return rc;
    const char *tname = NULL;
    rc = vigil_config_get_string(&tname, config, "type", NULL);
    if (rc != VIGIL_OK)
        return rc;
    const vigil_collector_type *type = vigil_collector_registry_lookup(registry, tname);
    if (!type) {
        const vigil_config_node *tn = vigil_config_node_get(config, "type");
        char msg[160];
        snprintf(msg, sizeof(msg), "unknown collector type \"%.64s\"", tname);
        return vigil_error_set_at(VIGIL_ENOTFOUND, tn, msg);
    }
    rc = check_keys(type, config);
    if (rc != VIGIL_OK)
        return rc;

    vigil_collector *c = vigil__calloc(1, sizeof(*c));
    if (!c)
        return vigil__error_oom();
    c->type = type;
    c->logger = o.logger;
    if ((rc = read_shared(c, config, &o)) != VIGIL_OK ||
        (rc = dup_str(&c->proc_root, o.proc_root ? o.proc_root : "/proc")) != VIGIL_OK ||
        (rc = dup_str(&c->sys_root, o.sys_root ? o.sys_root : "/sys")) != VIGIL_OK ||
        (rc = set_base_dir(c, o.base_dir)) != VIGIL_OK ||
        (rc = copy_allow(c, o.exec_allow)) != VIGIL_OK ||
        (rc = vigil_batch_new(&c->scratch)) != VIGIL_OK) {
        vigil_collector_free(c);
        return rc;
    }
    c->ctx.version = VIGIL_COLLECTOR_CONTEXT_VERSION;
    c->ctx.logger = &c->logger;
    c->ctx.proc_root = c->proc_root;
    c->ctx.sys_root = c->sys_root;
    c->ctx.base_dir = c->base_dir;
    c->ctx.name = c->name_cfg;
    c->ctx.interval_ms = c->interval_ms;
    c->ctx.type_payload = type->payload;
    c->ctx.exec_allow = (const char *const *)c->exec_allow;
    void *state = NULL;
    rc = c->type->create(&state, config, &c->ctx);
    if (rc != VIGIL_OK) {
        if (rc > 0)
            rc = vigil__error_set(VIGIL_ERROR, "collector type \"%s\" create returned %d",
                                  c->type->name, rc);
        vigil_collector_free(c);
        return rc;
    }
    c->state = state;
    *out = c;
    return VIGIL_OK;
}

/* Copies the scratch samples into `out`, adding the configured tags that the
 * sample does not carry already. */
static int move_samples(vigil_collector *c, vigil_batch *out)
{
    vigil_tag tags[VIGIL_METRIC_TAGS_MAX];
    size_t n = vigil_batch_count(c->scratch);
    for (size_t i = 0; i < n; i++) {
        const vigil_metric *m = vigil_batch_get(c->scratch, i);
        size_t nt = 0;
        for (size_t j = 0; j < m->ntags && nt < VIGIL_METRIC_TAGS_MAX; j++)
            tags[nt++] = m->tags[j];
        for (size_t j = 0; j < c->ntags; j++) {
            bool have = false;
            for (size_t k = 0; k < m->ntags && !have; k++)
                have = strcmp(m->tags[k].key, c->tags[j].key) == 0;
            if (!have && nt < VIGIL_METRIC_TAGS_MAX)
                tags[nt++] = c->tags[j];
        }
        vigil_metric copy = *m;
        copy.tags = tags;
        copy.ntags = nt;
        int rc = vigil_batch_add(out, &copy);
        if (rc != VIGIL_OK)
            return rc;
    }
    return VIGIL_OK;
}

/* Makes `msg` fit a metric's error text: clipped, invalid UTF-8 replaced. */
static void clean_message(char *dst, size_t size, const char *msg)
{
    snprintf(dst, size, "%s", msg && msg[0] ? msg : "collector failed");
    size_t len = strlen(dst);
    if (!vigil__utf8_valid(dst, len))
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)dst[i] >= 0x80)
                dst[i] = '?';
}

static int emit_error(vigil_collector *c, vigil_batch *out, int64_t now_ms, int code)
{
    const vigil_error *le = vigil_error_last();
    char msg[VIGIL_METRIC_ERROR_MAX];
    clean_message(msg, sizeof(msg), le->code == code ? le->message : vigil_strerror(code));
    vigil__log(&c->logger, VIGIL_LOG_WARN, "collector", "collection failed",
               "collector=%s type=%s code=%d failures=%u error=\"%s\"", vigil_collector_name(c),
               c->type->name, code, c->failures, msg);
    vigil_batch_clear(c->scratch);
    vigil_tag tags[2] = {{"collector", vigil_collector_name(c)}, {"type", c->type->name}};
    vigil_metric m = {VIGIL_COLLECTOR_ERROR_METRIC, NAN, now_ms, tags, 2, msg};
    int rc = vigil_batch_add(c->scratch, &m);
    if (rc == VIGIL_OK)
        rc = move_samples(c, out);
    vigil_batch_clear(c->scratch);
    return rc;
}

static int64_t backoff_delay(const vigil_collector *c)
{
    int64_t d = c->interval_ms;
    for (unsigned int i = 0; i < c->failures && d < c->backoff_max_ms; i++)
        d *= 2;
    return d < c->backoff_max_ms ? d : c->backoff_max_ms;
}

int vigil_collector_collect(vigil_collector *c, vigil_batch *out, int64_t now_ms,
                            int64_t *next_due_ms)
{
    if (!c || !out)
        return vigil__error_set(VIGIL_EINVAL, "vigil_collector_collect: NULL argument");
    vigil_batch_clear(c->scratch);
    int st = c->type->collect(c->state, c->scratch, now_ms);
    if (st > 0)
        st = vigil__error_set(VIGIL_ERROR, "collect returned %d", st);
    int rc;
    bool on_time = c->next_due > 0 && c->failures == 0 && now_ms >= c->next_due &&
                   now_ms - c->next_due < c->interval_ms;
    c->last_status = st;
    if (st == VIGIL_ENOMEM) {
        /* Not the collector's fault: reported to the caller, schedule kept. */
        vigil_batch_clear(c->scratch);
        c->next_due = now_ms + c->interval_ms;
        if (next_due_ms)
            *next_due_ms = c->next_due;
        return VIGIL_ENOMEM;
    }
    if (st == VIGIL_OK) {
        c->failures = 0;
        c->next_due = (on_time ? c->next_due : now_ms) + c->interval_ms;
        rc = move_samples(c, out);
        vigil_batch_clear(c->scratch);
    } else {
        if (c->failures < UINT_MAX)
            c->failures++;
        c->next_due = now_ms + backoff_delay(c);
        rc = emit_error(c, out, now_ms, st);
    }
    if (next_due_ms)
        *next_due_ms = c->next_due;
    return rc;
}

int64_t vigil_collector_next_due(const vigil_collector *c)
{
    return c ? c->next_due : 0;
}

int vigil_collector_poll_fd(const vigil_collector *c)
{
    if (!c || !c->type->poll_fd)
        return -1;
    return c->type->poll_fd(c->state);
}

int vigil_collector_on_event(vigil_collector *c, vigil_batch *out, int64_t now_ms)
{
    if (!c || !out)
        return vigil__error_set(VIGIL_EINVAL, "vigil_collector_on_event: NULL argument");
    if (!c->type->on_event)
        return VIGIL_OK;
    vigil_batch_clear(c->scratch);
    int st = c->type->on_event(c->state, c->scratch, now_ms);
    if (st > 0)
        st = vigil__error_set(VIGIL_ERROR, "on_event returned %d", st);
    c->last_status = st;
    if (st == VIGIL_ENOMEM) {
        vigil_batch_clear(c->scratch);
        return VIGIL_ENOMEM;
    }
    if (st != VIGIL_OK)
        return emit_error(c, out, now_ms, st);
    int rc = move_samples(c, out);
    vigil_batch_clear(c->scratch);
    return rc;
}

const char *vigil_collector_name(const vigil_collector *c)
{
    if (!c)
        return NULL;
    return c->name_cfg ? c->name_cfg : c->type->name;
}

const char *vigil_collector_type_name(const vigil_collector *c)
{
    return c ? c->type->name : NULL;
}

int64_t vigil_collector_interval(const vigil_collector *c)
{
    return c ? c->interval_ms : 0;
}

unsigned int vigil_collector_flags(const vigil_collector *c)
{
    return c ? c->type->flags : 0;
}

int vigil_collector_last_status(const vigil_collector *c)
{
    return c ? c->last_status : VIGIL_EINVAL;
}

unsigned int vigil_collector_failures(const vigil_collector *c)
{
    return c ? c->failures : 0;
}
