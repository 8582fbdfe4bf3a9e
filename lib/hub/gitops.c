/* The hub's side of GitOps: the bulk desired state of a source (PUT
 * /v1/desired with "resources"), drift reports (POST and GET /v1/drift),
 * the built-in drift rule that turns a self-healing drift item into an
 * action request, and the git-managed policies (PUT /v1/policies) swapped
 * into the engine with the configuration's rules. */
#include "crypto/crypto.h"
#include "hub/hub_int.h"
#include "internal/json.h"
#include "policy/policy_int.h"
#include "policy/replace.h"
#include "vigil/sys/action.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#define COMPONENT      "hub"
#define GIT_BODY_DEPTH 32
#define GIT_ITEMS_MAX  20000
#define SOURCE_MAX     253
#define REVISION_MAX   128
#define KIND_MAX       64
#define RNAME_MAX      253
#define LABELS_MAX     64
#define LABEL_MAX      253
#define SPEC_MAX       (1 << 20)
#define DIFF_MAX       256
#define FIELD_MAX      256
#define DIFF_VALUE_MAX 4096
#define ERROR_MAX      4096
#define API_SOURCE     "api"
#define TRACK_PREFIX   "hub.drift/"
#define GITPOL_PREFIX  "hub.policies/"
#define REASON_CLIP    200
#define GIT_YAML_NODES (GIT_ITEMS_MAX * 256)
#define GIT_YAML_BYTES (256u << 20)

/* ---- small helpers ------------------------------------------------------------------- */

static int git_bad(int code, const char *fmt, ...) VIGIL__PRINTF(2, 3);

static int git_bad(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vigil__error_setv(code, fmt, ap);
    va_end(ap);
    return rc;
}

/* 400 for every problem of a body but a store failure or out of memory. */
static int as_request_error(int rc)
{
    switch (rc) {
    case VIGIL_OK:
    case VIGIL_ENOMEM:
    case VIGIL_EBUSY:
    case VIGIL_EIO:
    case VIGIL_EFULL:
    case VIGIL_EREADONLY:
    case VIGIL_ECLOSED:
    case VIGIL_ECORRUPT:
    case VIGIL_ECONFLICT:
    case VIGIL_EEXISTS:
    case VIGIL_EJSON:
    case VIGIL_ENOTFOUND: return rc;
    default: return VIGIL_EINVAL;
    }
}

static int body_parse(cJSON **out, vigil__api_call *call, const char *const *keys)
{
    size_t len = 0;
    const char *body = vigil__api_call_body(call, &len);
    int rc = vigil__json_parse(out, body, len, GIT_BODY_DEPTH);
    if (rc)
        return rc;
    if (!cJSON_IsObject(*out))
        return git_bad(VIGIL_EINVAL, "expected a JSON object");
    const cJSON *it;
    cJSON_ArrayForEach(it, *out)
    {
        size_t k = 0;
        while (keys[k] && strcmp(keys[k], it->string) != 0)
            k++;
        if (!keys[k])
            return git_bad(VIGIL_EINVAL, "%.64s: unknown key", it->string);
    }
    return VIGIL_OK;
}

static int unknown_keys(const cJSON *obj, const char *path, const char *const *keys)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, obj)
    {
        size_t k = 0;
        while (keys[k] && strcmp(keys[k], it->string) != 0)
            k++;
        if (!keys[k])
            return git_bad(VIGIL_EINVAL, "%s.%.64s: unknown key", path, it->string);
    }
    return VIGIL_OK;
}

static int printable(const char *s, int allow_space)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f || (!allow_space && c == ' '))
            return 0;
    }
    return 1;
}

/* A string member at `path`.`key`: required or optional (NULL when absent). */
static int str_at(const char **out, const cJSON *obj, const char *path, const char *key, size_t max,
                  int required)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    const char *dot = *path ? "." : "";
    *out = NULL;
    if (!v || cJSON_IsNull(v))
        return required ? git_bad(VIGIL_EINVAL, "%s%s%s: required", path, dot, key) : VIGIL_OK;
    if (!cJSON_IsString(v))
        return git_bad(VIGIL_EINVAL, "%s%s%s: expected a string", path, dot, key);
    size_t n = strlen(v->valuestring);
    if (required && n == 0)
        return git_bad(VIGIL_EINVAL, "%s%s%s: must not be empty", path, dot, key);
    if (n > max)
        return git_bad(VIGIL_EINVAL, "%s%s%s: longer than %zu bytes", path, dot, key, max);
    if (!printable(v->valuestring, 1))
        return git_bad(VIGIL_EINVAL, "%s%s%s: control characters are not allowed", path, dot, key);
    *out = v->valuestring;
    return VIGIL_OK;
}

static int bool_at(int *out, const cJSON *obj, const char *path, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = 0;
    if (!v || cJSON_IsNull(v))
        return VIGIL_OK;
    if (!cJSON_IsBool(v))
        return git_bad(VIGIL_EINVAL, "%s.%s: expected true or false", path, key);
    *out = cJSON_IsTrue(v);
    return VIGIL_OK;
}

/* source and revision of a publication. */
static int source_revision(const char **source, const char **revision, const cJSON *j)
{
    int rc = str_at(source, j, "", "source", SOURCE_MAX, 1);
    if (!rc && !printable(*source, 0))
        rc = git_bad(VIGIL_EINVAL, "source: spaces are not allowed");
    if (!rc && strchr(*source, '/'))
        rc = git_bad(VIGIL_EINVAL, "source: '/' is not allowed (a source is a host name)");
    if (!rc && strcmp(*source, API_SOURCE) == 0)
        rc = git_bad(VIGIL_EINVAL, "source: \"api\" is reserved for the single-target form");
    if (!rc)
        rc = str_at(revision, j, "", "revision", REVISION_MAX, 1);
    if (!rc && !printable(*revision, 0))
        rc = git_bad(VIGIL_EINVAL, "revision: spaces are not allowed");
    return rc;
}

static const cJSON *array_at(const cJSON *j, const char *key, int *rc)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, key);
    *rc = VIGIL_OK;
    if (!a)
        *rc = git_bad(VIGIL_EINVAL, "%s: required", key);
    else if (!cJSON_IsArray(a))
        *rc = git_bad(VIGIL_EINVAL, "%s: expected an array", key);
    else if ((size_t)cJSON_GetArraySize(a) > GIT_ITEMS_MAX)
        *rc = git_bad(VIGIL_EINVAL, "%s: more than %d entries", key, GIT_ITEMS_MAX);
    return *rc ? NULL : a;
}

static int kind_valid(const char *k)
{
    if (!(k[0] >= 'A' && k[0] <= 'Z'))
        return 0;
    for (const char *p = k + 1; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
            return 0;
    return 1;
}

/* target, kind and name of a resource or drift item at `path`: the target
 * must be "<source>/<kind>/<name>". */
static int identity(const char **target, const char **kind, const char **name, const cJSON *o,
                    const char *path, const char *source)
{
    int rc = str_at(target, o, path, "target", VIGIL_ACTION_VALUE_MAX, 1);
    if (!rc)
        rc = str_at(kind, o, path, "kind", KIND_MAX, 1);
    if (!rc && !kind_valid(*kind))
        rc = git_bad(VIGIL_EINVAL, "%s.kind: expected a kind such as \"File\", got \"%.64s\"", path,
                     *kind);
    if (!rc)
        rc = str_at(name, o, path, "name", RNAME_MAX, 1);
    if (!rc && (!printable(*name, 0) || strchr(*name, '/')))
        rc = git_bad(VIGIL_EINVAL, "%s.name: spaces and '/' are not allowed", path);
    if (!rc) {
        size_t ls = strlen(source), lk = strlen(*kind);
        const char *t = *target;
        if (strncmp(t, source, ls) != 0 || t[ls] != '/' || strncmp(t + ls + 1, *kind, lk) != 0 ||
            t[ls + 1 + lk] != '/' || strcmp(t + ls + lk + 2, *name) != 0)
            rc = git_bad(VIGIL_EINVAL, "%s.target: expected \"%s/%s/%s\" (<source>/<kind>/<name>)",
                         path, source, *kind, *name);
    }
    return rc;
}

static int labels_valid(const cJSON *o, const char *path)
{
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(o, "labels");
    if (!l || cJSON_IsNull(l))
        return VIGIL_OK;
    if (!cJSON_IsObject(l))
        return git_bad(VIGIL_EINVAL, "%s.labels: expected an object of strings", path);
    if (cJSON_GetArraySize(l) > LABELS_MAX)
        return git_bad(VIGIL_EINVAL, "%s.labels: more than %d labels", path, LABELS_MAX);
    const cJSON *it;
    cJSON_ArrayForEach(it, l)
    {
        if (strlen(it->string) == 0 || strlen(it->string) > LABEL_MAX || !printable(it->string, 0))
            return git_bad(VIGIL_EINVAL, "%s.labels: a key of 1-%d bytes without spaces expected",
                           path, LABEL_MAX);
        if (!cJSON_IsString(it))
            return git_bad(VIGIL_EINVAL, "%s.labels.%.64s: expected a string", path, it->string);
        if (strlen(it->valuestring) > LABEL_MAX || !printable(it->valuestring, 1))
            return git_bad(VIGIL_EINVAL, "%s.labels.%.64s: at most %d bytes, no control characters",
                           path, it->string, LABEL_MAX);
    }
    return VIGIL_OK;
}

/* A duplicate target at index i of `targets` (sorted copy). */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int dup_target(const char **targets, size_t n, const char **dup)
{
    const char **v = vigil__malloc((n ? n : 1) * sizeof(*v));
    if (!v)
        return vigil__error_oom();
    memcpy(v, targets, n * sizeof(*v));
    qsort(v, n, sizeof(*v), cmp_str);
    *dup = NULL;
    for (size_t i = 1; i < n && !*dup; i++)
        if (strcmp(v[i - 1], v[i]) == 0)
            *dup = v[i];
    vigil__free(v);
    return VIGIL_OK;
}

static size_t index_of(const char **targets, size_t n, const char *t)
{
    size_t i = 0;
    while (i < n && strcmp(targets[i], t) != 0)
        i++;
    return i;
}

static int publish_json(vigil_hub *hub, const char *type, vigil_buf *b)
{
    if (b->size <= 60 * 1024)
        vigil_hub_publish(hub, type, b->ptr);
    return VIGIL_OK;
}

static void log_error(vigil_hub *hub, const char *what, int rc)
{
    vigil_buf m = VIGIL_BUF_INIT;
    if (vigil__logfmt_value(&m, vigil_error_last()->message) == VIGIL_OK)
        vigil__log(&hub->logger, VIGIL_LOG_ERROR, COMPONENT, what, "code=%d error=%s", rc, m.ptr);
    vigil_buf_dispose(&m);
}

/* ---- PUT /v1/desired (bulk) ---------------------------------------------------------------- */

typedef struct src_keys {
    const char *source;
    char **keys;
    size_t n, cap;
    int oom;
} src_keys;

static int collect_source_keys(const vigil_store_resource *r, void *payload)
{
    src_keys *k = payload;
    if (strcmp(r->source ? r->source : "", k->source) != 0)
        return 0;
    if (vigil__array_grow((void **)&k->keys, &k->cap, k->n + 1, sizeof(char *)) ||
        !(k->keys[k->n] = vigil__strdup(r->key))) {
        k->oom = 1;
        return 1;
    }
    k->n++;
    return 0;
}

static void src_keys_free(src_keys *k)
{
    for (size_t i = 0; i < k->n; i++)
        vigil__free(k->keys[i]);
    vigil__free(k->keys);
}

static int list_source_keys(vigil_hub *hub, vigil_store_resource_set set, src_keys *k)
{
    int rc = vigil_store_resource_list(hub->store, set, NULL, collect_source_keys, k);
    if (rc > 0 || k->oom)
        rc = vigil__error_oom();
    return rc;
}

int vigil__hub_desired_bulk(vigil_hub *hub, const cJSON *j, vigil_buf *out)
{
    static const char *const keys[] = {"source", "revision", "resources", NULL};
    static const char *const rkeys[] = {"target",   "kind", "name", "labels",
                                        "selfHeal", "spec", NULL};
    const char *source = NULL, *revision = NULL;
    int rc = VIGIL_OK;
    const cJSON *it;
    cJSON_ArrayForEach(it, j)
    {
        size_t k = 0;
        while (keys[k] && strcmp(keys[k], it->string) != 0)
            k++;
        if (!keys[k])
            return git_bad(VIGIL_EINVAL, "%.64s: unknown key", it->string);
    }
    rc = source_revision(&source, &revision, j);
    const cJSON *res = rc ? NULL : array_at(j, "resources", &rc);
    size_t n = res ? (size_t)cJSON_GetArraySize(res) : 0;
    vigil_store_resource *recs = vigil__calloc(n ? n : 1, sizeof(*recs));
    char **bodies = vigil__calloc(n ? n : 1, sizeof(char *));
    char **specs = vigil__calloc(n ? n : 1, sizeof(char *));
    const char **targets = vigil__calloc(n ? n : 1, sizeof(char *));
    if (!rc && (!recs || !bodies || !specs || !targets))
        rc = vigil__error_oom();
    int64_t now = vigil__hub_now(hub);
    size_t i = 0;
    const cJSON *o;
    cJSON_ArrayForEach(o, res)
    {
        if (rc)
            break;
        char path[48];
        snprintf(path, sizeof(path), "resources[%zu]", i);
        const char *target = NULL, *kind = NULL, *name = NULL;
        int heal = 0;
        if (!cJSON_IsObject(o)) {
            rc = git_bad(VIGIL_EINVAL, "%s: expected an object", path);
            break;
        }
        rc = unknown_keys(o, path, rkeys);
        if (!rc)
            rc = identity(&target, &kind, &name, o, path, source);
        if (!rc)
            rc = labels_valid(o, path);
        if (!rc)
            rc = bool_at(&heal, o, path, "selfHeal");
        const cJSON *spec = cJSON_GetObjectItemCaseSensitive(o, "spec");
        if (!rc && !spec)
            rc = git_bad(VIGIL_EINVAL, "%s.spec: required", path);
        if (!rc && !cJSON_IsObject(spec))
            rc = git_bad(VIGIL_EINVAL, "%s.spec: expected an object", path);
        if (!rc && (!(specs[i] = cJSON_PrintUnformatted(spec)) ||
                    !(bodies[i] = cJSON_PrintUnformatted(o))))
            rc = vigil__error_oom();
        if (!rc && strlen(specs[i]) > SPEC_MAX)
            rc = git_bad(VIGIL_EINVAL, "%s.spec: larger than %d bytes", path, SPEC_MAX);
        if (rc)
            break;
        targets[i] = target;
        recs[i].key = target;
        recs[i].kind = kind;
        recs[i].name = name;
        recs[i].source = source;
        recs[i].revision = revision;
        recs[i].body_json = bodies[i];
        recs[i].updated_ms = now;
        i++;
    }
    const char *dup = NULL;
    if (!rc && n > 1)
        rc = dup_target(targets, n, &dup);
    if (!rc && dup) {
        size_t first = index_of(targets, n, dup);
        rc = git_bad(VIGIL_EINVAL, "resources[%zu].target: \"%.200s\" appears twice",
                     first + 1 + index_of(targets + first + 1, n - first - 1, dup), dup);
    }
    src_keys old = {source, NULL, 0, 0, 0};
    size_t removed = 0;
    if (!rc) {
        pthread_mutex_lock(&hub->git_mu);
        rc = list_source_keys(hub, VIGIL_STORE_DESIRED, &old);
        if (!rc)
            rc = vigil_store_resource_replace(hub->store, VIGIL_STORE_DESIRED, source, recs, n);
        if (!rc) {
            /* the engine follows the store: new specs, then the pruned targets */
            for (size_t k = 0; k < n; k++) {
                int erc = vigil_engine_set_desired(hub->engine, targets[k], specs[k]);
                if (erc)
                    vigil__hub_engine_error(hub, "set_desired", erc);
            }
            const char **sorted = vigil__malloc((n ? n : 1) * sizeof(*sorted));
            if (sorted) {
                memcpy(sorted, targets, n * sizeof(*sorted));
                qsort(sorted, n, sizeof(*sorted), cmp_str);
            }
            for (size_t k = 0; k < old.n; k++) {
                const char *key = old.keys[k];
                if (n && (sorted ? bsearch(&key, sorted, n, sizeof(*sorted), cmp_str) != NULL
                                 : index_of(targets, n, key) < n))
                    continue;
                removed++;
                int erc = vigil_engine_set_desired(hub->engine, old.keys[k], NULL);
                if (erc && erc != VIGIL_ENOTFOUND)
                    vigil__hub_engine_error(hub, "set_desired", erc);
            }
            vigil__free(sorted);
        }
        pthread_mutex_unlock(&hub->git_mu);
    }
    src_keys_free(&old);
    if (!rc)
        rc = vigil__buf_puts(out, "{\"source\":");
    if (!rc)
        rc = vigil__json_put_string(out, source, strlen(source));
    if (!rc)
        rc = vigil__buf_puts(out, ",\"revision\":");
    if (!rc)
        rc = vigil__json_put_string(out, revision, strlen(revision));
    if (!rc)
        rc = vigil__buf_printf(out, ",\"resources\":%zu,\"removed\":%zu}", n, removed);
    if (!rc)
        vigil__log(&hub->logger, VIGIL_LOG_INFO, COMPONENT, "desired state published",
                   "source=%s revision=%s resources=%zu removed=%zu", source, revision, n, removed);
    for (size_t k = 0; k < n; k++) {
        if (bodies)
            cJSON_free(bodies[k]);
        if (specs)
            cJSON_free(specs[k]);
    }
    vigil__free(recs);
    vigil__free(bodies);
    vigil__free(specs);
    vigil__free(targets);
    return as_request_error(rc);
}

int vigil__hub_desired_spec(const char *body_json, char **spec)
{
    *spec = NULL;
    cJSON *j = NULL;
    int rc = vigil__json_parse(&j, body_json, strlen(body_json), GIT_BODY_DEPTH);
    if (rc)
        return rc;
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "spec");
    if (!cJSON_IsObject(s))
        rc = git_bad(VIGIL_EINVAL, "stored desired record without a spec");
    else if (!(*spec = cJSON_PrintUnformatted(s)))
        rc = vigil__error_oom();
    cJSON_Delete(j);
    return rc;
}

/* ---- the drift rule ------------------------------------------------------------------ */

struct vigil__hub_track {
    char *target; /* the resource's target: the key */
    char *action_id;
    char *action;
    int64_t requested_ms;
    int awaiting; /* a request was made and no in_sync report followed yet */
};

static void track_free(vigil__hub_track *t)
{
    if (!t)
        return;
    vigil__free(t->target);
    vigil__free(t->action_id);
    vigil__free(t->action);
    vigil__free(t);
}

static int track_persist(vigil_hub *hub, const vigil__hub_track *t)
{
    vigil_buf k = VIGIL_BUF_INIT, v = VIGIL_BUF_INIT;
    int rc = vigil__buf_printf(&k, TRACK_PREFIX "%s", t->target);
    if (!rc)
        rc = vigil__buf_puts(&v, "{\"id\":");
    if (!rc)
        rc = vigil__json_put_string(&v, t->action_id, strlen(t->action_id));
    if (!rc)
        rc = vigil__buf_puts(&v, ",\"action\":");
    if (!rc)
        rc = vigil__json_put_string(&v, t->action, strlen(t->action));
    if (!rc)
        rc = vigil__buf_printf(&v, ",\"requested\":%lld,\"awaiting\":%s}",
                               (long long)t->requested_ms, t->awaiting ? "true" : "false");
    if (!rc)
        rc = vigil_store_state_put(hub->store, k.ptr, v.ptr, v.size);
    vigil_buf_dispose(&k);
    vigil_buf_dispose(&v);
    return rc;
}

static int track_set(vigil_hub *hub, const char *target, const char *id, const char *action,
                     int64_t requested, int awaiting, vigil__hub_track **out)
{
    vigil__hub_track *t = vigil__pmap_get(hub->tracks, target);
    int fresh = !t;
    if (fresh && !(t = vigil__calloc(1, sizeof(*t))))
        return vigil__error_oom();
    char *nt = fresh ? vigil__strdup(target) : t->target;
    char *ni = vigil__strdup(id);
    char *na = vigil__strdup(action);
    if (!nt || !ni || !na) {
        if (fresh) {
            vigil__free(nt);
            vigil__free(t);
        }
        vigil__free(ni);
        vigil__free(na);
        return vigil__error_oom();
    }
    if (fresh) {
        t->target = nt;
        if (vigil__pmap_put(hub->tracks, t->target, t)) {
            vigil__free(ni);
            vigil__free(na);
            track_free(t);
            return vigil__error_oom();
        }
    }
    vigil__free(t->action_id);
    vigil__free(t->action);
    t->action_id = ni;
    t->action = na;
    t->requested_ms = requested;
    t->awaiting = awaiting;
    if (out)
        *out = t;
    return VIGIL_OK;
}

static int load_track(const char *key, const void *value, size_t len, void *payload)
{
    vigil_hub *hub = payload;
    cJSON *j = NULL;
    if (vigil__json_parse(&j, value, len, 4) != VIGIL_OK)
        return 0;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
    const cJSON *ac = cJSON_GetObjectItemCaseSensitive(j, "action");
    const cJSON *rq = cJSON_GetObjectItemCaseSensitive(j, "requested");
    const cJSON *aw = cJSON_GetObjectItemCaseSensitive(j, "awaiting");
    int rc = VIGIL_OK;
    if (cJSON_IsString(id) && cJSON_IsString(ac) && cJSON_IsNumber(rq))
        rc = track_set(hub, key + strlen(TRACK_PREFIX), id->valuestring, ac->valuestring,
                       (int64_t)rq->valuedouble, cJSON_IsTrue(aw), NULL);
    cJSON_Delete(j);
    return rc ? 1 : 0;
}

static int record_decision(vigil_hub *hub, const char *decision, const char *series,
                           const char *target, const char *action, const char *action_id,
                           const char *reason)
{
    vigil_store_decision d;
    memset(&d, 0, sizeof(d));
    d.ts_ms = vigil__hub_now(hub);
    d.policy = "drift";
    d.series = series;
    d.target = target;
    d.action = action;
    d.action_id = action_id;
    d.decision = decision;
    d.reason = reason;
    int64_t id = 0;
    int rc = vigil_store_decision_append(hub->store, &d, &id);
    if (rc)
        return rc;
    d.id = id;
    vigil__hub_on_decision(hub, &d);
    return VIGIL_OK;
}

/* Statuses after which a request is no longer in flight. */
static int in_flight(vigil_hub *hub, const char *id)
{
    vigil_store_action *a = NULL;
    if (vigil_store_action_get(hub->store, id, &a) != VIGIL_OK)
        return 0;
    const char *s = a->status ? a->status : "";
    int busy = strcmp(s, "pending") == 0 || strcmp(s, "pending_approval") == 0 ||
               strcmp(s, "approved") == 0 || strcmp(s, "running") == 0;
    vigil_store_action_free(a);
    return busy;
}

/* Appends a diff value (a JSON scalar or null) for a reason, clipped. */
static int put_diff_value(vigil_buf *b, const cJSON *v)
{
    if (!v || cJSON_IsNull(v))
        return vigil__buf_puts(b, "null");
    if (cJSON_IsBool(v))
        return vigil__buf_puts(b, cJSON_IsTrue(v) ? "true" : "false");
    if (cJSON_IsNumber(v))
        return vigil__json_put_double(b, v->valuedouble);
    const char *s = v->valuestring ? v->valuestring : "";
    size_t n = strlen(s);
    if (n > REASON_CLIP) {
        n = REASON_CLIP;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    int rc = vigil_action_buf_append(b, s, n);
    return !rc && n < strlen(s) ? vigil__buf_puts(b, "...") : rc;
}

static int drift_reason(vigil_buf *b, const cJSON *item, const char *status, const char *revision)
{
    const cJSON *diff = cJSON_GetObjectItemCaseSensitive(item, "diff");
    const cJSON *first = cJSON_IsArray(diff) ? diff->child : NULL;
    int rc = vigil__buf_puts(b, "drift: ");
    if (first) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(first, "field");
        rc = vigil__buf_puts(b, cJSON_IsString(f) ? f->valuestring : "?");
        if (!rc)
            rc = vigil__buf_puts(b, " desired ");
        if (!rc)
            rc = put_diff_value(b, cJSON_GetObjectItemCaseSensitive(first, "desired"));
        if (!rc)
            rc = vigil__buf_puts(b, " observed ");
        if (!rc)
            rc = put_diff_value(b, cJSON_GetObjectItemCaseSensitive(first, "observed"));
    } else if (!rc) {
        rc = vigil__buf_puts(b, status);
    }
    if (!rc)
        rc = vigil__buf_printf(b, " (revision %.12s)", revision);
    return rc;
}

/* Asks for an item's heal unless a request for its target is in flight or
 * younger than the cooldown. *requested is set when it asked. Called with
 * git_mu held. */
static int drift_heal(vigil_hub *hub, const cJSON *item, const char *target, const char *status,
                      const char *revision, int *requested)
{
    *requested = 0;
    const cJSON *heal = cJSON_GetObjectItemCaseSensitive(item, "heal");
    int64_t now = vigil__hub_now(hub);
    vigil__hub_track *t = vigil__pmap_get(hub->tracks, target);
    if (t && (in_flight(hub, t->action_id) || now - t->requested_ms < hub->drift_cooldown_ms))
        return VIGIL_OK;
    const char *action = cJSON_GetObjectItemCaseSensitive(heal, "action")->valuestring;
    const char *htarget = cJSON_GetObjectItemCaseSensitive(heal, "target")->valuestring;
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(heal, "params");
    vigil_action_param params[VIGIL_ACTION_PARAMS_MAX];
    vigil_action_request req = VIGIL_ACTION_REQUEST_INIT;
    const cJSON *it;
    cJSON_ArrayForEach(it, ps)
    {
        params[req.nparams].key = it->string;
        params[req.nparams].value = it->valuestring;
        req.nparams++;
    }
    req.params = req.nparams ? params : NULL;
    vigil_buf reason = VIGIL_BUF_INIT, series = VIGIL_BUF_INIT;
    int rc = drift_reason(&reason, item, status, revision);
    if (!rc && reason.size > VIGIL_ACTION_TEXT_MAX) {
        reason.size = VIGIL_ACTION_TEXT_MAX;
        while (reason.size > 0 && ((unsigned char)reason.ptr[reason.size] & 0xC0) == 0x80)
            reason.size--;
        reason.ptr[reason.size] = '\0';
    }
    if (!rc)
        rc = vigil__buf_printf(&series, "drift/%s", target);
    unsigned char rnd[4] = {0};
    if (vigil__crypto_random(rnd, sizeof(rnd)) != VIGIL_OK) {
        uint64_t x = (uint64_t)vigil__monotonic_ns();
        memcpy(rnd, &x, sizeof(rnd));
    }
    char id[64];
    snprintf(id, sizeof(id), "drift-%lld-%02x%02x%02x%02x", (long long)now, rnd[0], rnd[1], rnd[2],
             rnd[3]);
    req.id = id;
    req.action = action;
    req.target = htarget;
    req.reason = reason.ptr;
    req.policy = "drift";
    /* tracked before the dispatch: an in-process result may come back at once */
    if (!rc)
        rc = track_set(hub, target, id, action, now, 1, &t);
    if (!rc)
        rc = vigil__hub_dispatch(hub, &req, series.ptr);
    if (!rc) {
        *requested = 1;
        int prc = track_persist(hub, t);
        if (prc)
            log_error(hub, "drift request not persisted", prc);
        rc = record_decision(hub, "fired", series.ptr, htarget, action, id, reason.ptr);
    }
    vigil_buf_dispose(&reason);
    vigil_buf_dispose(&series);
    return rc;
}

static int drift_in_sync(vigil_hub *hub, const char *target, const char *revision)
{
    vigil__hub_track *t = vigil__pmap_get(hub->tracks, target);
    if (!t || !t->awaiting)
        return VIGIL_OK;
    t->awaiting = 0;
    int rc = track_persist(hub, t);
    if (rc)
        log_error(hub, "drift state not persisted", rc);
    vigil_buf reason = VIGIL_BUF_INIT, series = VIGIL_BUF_INIT;
    rc =
        vigil__buf_printf(&reason, "in sync again at revision %.12s after %s", revision, t->action);
    if (!rc)
        rc = vigil__buf_printf(&series, "drift/%s", target);
    if (!rc)
        rc = record_decision(hub, "remediated", series.ptr, NULL, t->action, t->action_id,
                             reason.ptr);
    vigil_buf_dispose(&reason);
    vigil_buf_dispose(&series);
    return rc;
}

/* ---- POST /v1/drift ------------------------------------------------------------------- */

static const char *const k_statuses[] = {"in_sync", "drifted", "missing", "error", NULL};

static int scalar_or_null(const cJSON *v)
{
    return !v || cJSON_IsNull(v) || cJSON_IsBool(v) || cJSON_IsNumber(v) || cJSON_IsString(v);
}

static int diff_valid(const cJSON *item, const char *path)
{
    static const char *const dkeys[] = {"field", "desired", "observed", NULL};
    const cJSON *diff = cJSON_GetObjectItemCaseSensitive(item, "diff");
    if (!diff || cJSON_IsNull(diff))
        return VIGIL_OK;
    if (!cJSON_IsArray(diff))
        return git_bad(VIGIL_EINVAL, "%s.diff: expected an array", path);
    if (cJSON_GetArraySize(diff) > DIFF_MAX)
        return git_bad(VIGIL_EINVAL, "%s.diff: more than %d entries", path, DIFF_MAX);
    size_t k = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, diff)
    {
        char dp[96];
        snprintf(dp, sizeof(dp), "%s.diff[%zu]", path, k++);
        const char *field = NULL;
        if (!cJSON_IsObject(d))
            return git_bad(VIGIL_EINVAL, "%s: expected an object", dp);
        int rc = unknown_keys(d, dp, dkeys);
        if (!rc)
            rc = str_at(&field, d, dp, "field", FIELD_MAX, 1);
        for (int w = 0; w < 2 && !rc; w++) {
            const char *key = w ? "observed" : "desired";
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(d, key);
            if (!scalar_or_null(v))
                rc = git_bad(VIGIL_EINVAL, "%s.%s: expected a string, number, boolean or null", dp,
                             key);
            else if (cJSON_IsString(v) && strlen(v->valuestring) > DIFF_VALUE_MAX)
                rc = git_bad(VIGIL_EINVAL, "%s.%s: longer than %d bytes", dp, key, DIFF_VALUE_MAX);
        }
        if (rc)
            return rc;
    }
    return VIGIL_OK;
}

static int heal_valid(const cJSON *item, const char *path, int self_heal)
{
    static const char *const hkeys[] = {"action", "target", "params", NULL};
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(item, "heal");
    if (!h || cJSON_IsNull(h))
        return VIGIL_OK;
    char hp[80];
    snprintf(hp, sizeof(hp), "%s.heal", path);
    if (!self_heal)
        return git_bad(VIGIL_EINVAL, "%s: only with selfHeal true", hp);
    if (!cJSON_IsObject(h))
        return git_bad(VIGIL_EINVAL, "%s: expected an object", hp);
    const char *action = NULL, *target = NULL;
    int rc = unknown_keys(h, hp, hkeys);
    if (!rc)
        rc = str_at(&action, h, hp, "action", VIGIL_ACTION_NAME_MAX, 1);
    if (!rc && !printable(action, 0))
        rc = git_bad(VIGIL_EINVAL, "%s.action: spaces are not allowed", hp);
    if (!rc)
        rc = str_at(&target, h, hp, "target", VIGIL_ACTION_VALUE_MAX, 1);
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(h, "params");
    if (!rc && ps && !cJSON_IsNull(ps)) {
        if (!cJSON_IsObject(ps))
            return git_bad(VIGIL_EINVAL, "%s.params: expected an object of strings", hp);
        if (cJSON_GetArraySize(ps) > VIGIL_ACTION_PARAMS_MAX)
            return git_bad(VIGIL_EINVAL, "%s.params: more than %d parameters", hp,
                           VIGIL_ACTION_PARAMS_MAX);
        const cJSON *it;
        cJSON_ArrayForEach(it, ps)
        {
            if (!*it->string || strlen(it->string) > VIGIL_ACTION_NAME_MAX)
                return git_bad(VIGIL_EINVAL, "%s.params: a name of 1-%d bytes expected", hp,
                               VIGIL_ACTION_NAME_MAX);
            if (!cJSON_IsString(it))
                return git_bad(VIGIL_EINVAL, "%s.params.%.64s: expected a string", hp, it->string);
            if (strlen(it->valuestring) > VIGIL_ACTION_VALUE_MAX)
                return git_bad(VIGIL_EINVAL, "%s.params.%.64s: longer than %d bytes", hp,
                               it->string, VIGIL_ACTION_VALUE_MAX);
        }
    }
    return rc;
}

static int route_has_dispatcher(vigil_hub *hub)
{
    pthread_mutex_lock(&hub->mu);
    int has = hub->has_disp || hub->http;
    pthread_mutex_unlock(&hub->mu);
    return has;
}

static void route_drift_post(vigil__api_call *call, void *payload)
{
    static const char *const keys[] = {"source", "revision", "observed", "items", NULL};
    static const char *const ikeys[] = {"target", "kind",  "name", "status", "selfHeal",
                                        "diff",   "error", "heal", NULL};
    vigil_hub *hub = payload;
    cJSON *j = NULL;
    const char *source = NULL, *revision = NULL;
    vigil_buf out = VIGIL_BUF_INIT;
    int rc = body_parse(&j, call, keys);
    if (!rc)
        rc = source_revision(&source, &revision, j);
    int64_t observed = vigil__hub_now(hub);
    const cJSON *ob = j ? cJSON_GetObjectItemCaseSensitive(j, "observed") : NULL;
    if (!rc && ob && !cJSON_IsNull(ob)) {
        double d = cJSON_IsNumber(ob) ? ob->valuedouble : -1;
        if (!isfinite(d) || d < 0 || d != floor(d) || d > 9007199254740991.0)
            rc = git_bad(VIGIL_EINVAL, "observed: expected epoch milliseconds");
        else
            observed = (int64_t)d;
    }
    const cJSON *items = rc ? NULL : array_at(j, "items", &rc);
    size_t n = items ? (size_t)cJSON_GetArraySize(items) : 0;
    vigil_store_resource *recs = vigil__calloc(n ? n : 1, sizeof(*recs));
    char **bodies = vigil__calloc(n ? n : 1, sizeof(char *));
    const char **targets = vigil__calloc(n ? n : 1, sizeof(char *));
    const cJSON **objs = vigil__calloc(n ? n : 1, sizeof(cJSON *));
    if (!rc && (!recs || !bodies || !targets || !objs))
        rc = vigil__error_oom();
    size_t i = 0, drifted = 0, requested = 0;
    int64_t now = vigil__hub_now(hub);
    const cJSON *o;
    cJSON_ArrayForEach(o, items)
    {
        if (rc)
            break;
        char path[48];
        snprintf(path, sizeof(path), "items[%zu]", i);
        const char *target = NULL, *kind = NULL, *name = NULL, *status = NULL, *err = NULL;
        int heal = 0;
        if (!cJSON_IsObject(o)) {
            rc = git_bad(VIGIL_EINVAL, "%s: expected an object", path);
            break;
        }
        rc = unknown_keys(o, path, ikeys);
        if (!rc)
            rc = identity(&target, &kind, &name, o, path, source);
        if (!rc)
            rc = str_at(&status, o, path, "status", 16, 1);
        if (!rc) {
            size_t k = 0;
            while (k_statuses[k] && strcmp(k_statuses[k], status) != 0)
                k++;
            if (!k_statuses[k])
                rc = git_bad(VIGIL_EINVAL,
                             "%s.status: expected in_sync, drifted, missing or error, got "
                             "\"%.16s\"",
                             path, status);
        }
        if (!rc)
            rc = bool_at(&heal, o, path, "selfHeal");
        if (!rc)
            rc = str_at(&err, o, path, "error", ERROR_MAX, 0);
        if (!rc && err && strcmp(status, "error") != 0)
            rc = git_bad(VIGIL_EINVAL, "%s.error: only with status \"error\"", path);
        if (!rc)
            rc = diff_valid(o, path);
        if (!rc)
            rc = heal_valid(o, path, heal);
        if (!rc && !(bodies[i] = cJSON_PrintUnformatted(o)))
            rc = vigil__error_oom();
        if (rc)
            break;
        if (strcmp(status, "drifted") == 0 || strcmp(status, "missing") == 0)
            drifted++;
        targets[i] = target;
        objs[i] = o;
        recs[i].key = target;
        recs[i].kind = kind;
        recs[i].name = name;
        recs[i].source = source;
        recs[i].revision = revision;
        recs[i].status = status;
        recs[i].body_json = bodies[i];
        recs[i].updated_ms = now;
        i++;
    }
    const char *dup = NULL;
    if (!rc && n > 1)
        rc = dup_target(targets, n, &dup);
    if (!rc && dup) {
        size_t first = index_of(targets, n, dup);
        rc = git_bad(VIGIL_EINVAL, "items[%zu].target: \"%.200s\" appears twice",
                     first + 1 + index_of(targets + first + 1, n - first - 1, dup), dup);
    }
    if (!rc) {
        pthread_mutex_lock(&hub->git_mu);
        rc = vigil_store_resource_replace(hub->store, VIGIL_STORE_DRIFT, source, recs, n);
        int dispatch = !rc && route_has_dispatcher(hub);
        for (size_t k = 0; k < n && !rc; k++) {
            int erc = VIGIL_OK;
            if (strcmp(recs[k].status, "in_sync") == 0) {
                erc = drift_in_sync(hub, targets[k], revision);
            } else if (dispatch && strcmp(recs[k].status, "error") != 0 &&
                       cJSON_GetObjectItemCaseSensitive(objs[k], "heal") &&
                       !cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(objs[k], "heal"))) {
                int asked = 0;
                erc = drift_heal(hub, objs[k], targets[k], recs[k].status, revision, &asked);
                requested += (size_t)asked;
            }
            if (erc)
                log_error(hub, "drift rule failed", erc);
        }
        pthread_mutex_unlock(&hub->git_mu);
    }
    if (!rc)
        rc = vigil__buf_printf(&out, "{\"items\":%zu,\"drifted\":%zu,\"requested\":%zu}", n,
                               drifted, requested);
    if (!rc) {
        vigil_buf ev = VIGIL_BUF_INIT;
        int erc = vigil__buf_puts(&ev, "{\"source\":");
        if (!erc)
            erc = vigil__json_put_string(&ev, source, strlen(source));
        if (!erc)
            erc = vigil__buf_puts(&ev, ",\"revision\":");
        if (!erc)
            erc = vigil__json_put_string(&ev, revision, strlen(revision));
        if (!erc)
            erc = vigil__buf_printf(&ev,
                                    ",\"observed\":%lld,\"items\":%zu,\"drifted\":%zu,"
                                    "\"requested\":%zu,\"ts\":%lld}",
                                    (long long)observed, n, drifted, requested, (long long)now);
        if (!erc)
            publish_json(hub, "drift", &ev);
        vigil_buf_dispose(&ev);
    }
    for (size_t k = 0; k < n && bodies; k++)
        cJSON_free(bodies[k]);
    vigil__free(recs);
    vigil__free(bodies);
    vigil__free(targets);
    vigil__free(objs);
    cJSON_Delete(j);
    vigil__api_answer(call, as_request_error(rc), 200, &out);
}

/* ---- GET /v1/drift --------------------------------------------------------------------- */

typedef struct drift_out {
    vigil_buf b;
    const char *source, *status;
    size_t n, drifted;
    int err;
} drift_out;

static int put_drift(const vigil_store_resource *r, void *payload)
{
    drift_out *o = payload;
    if (o->source && strcmp(r->source ? r->source : "", o->source) != 0)
        return 0;
    if (o->status && strcmp(r->status ? r->status : "", o->status) != 0)
        return 0;
    cJSON *j = NULL;
    const char *body = r->body_json ? r->body_json : "{}";
    if (vigil__json_parse(&j, body, strlen(body), GIT_BODY_DEPTH) != VIGIL_OK)
        j = cJSON_CreateObject();
    if (!j) {
        o->err = vigil__error_oom();
        return 1;
    }
    const cJSON *heal = cJSON_GetObjectItemCaseSensitive(j, "selfHeal");
    const cJSON *diff = cJSON_GetObjectItemCaseSensitive(j, "diff");
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
    char *diff_s = cJSON_IsArray(diff) ? cJSON_PrintUnformatted(diff) : NULL;
    int rc = vigil__buf_puts(&o->b, o->n++ ? ",{\"target\":" : "{\"target\":");
    if (!rc)
        rc = vigil__json_put_string(&o->b, r->key, strlen(r->key));
    const char *fields[][2] = {{"kind", r->kind},
                               {"name", r->name},
                               {"source", r->source ? r->source : ""},
                               {"revision", r->revision ? r->revision : ""},
                               {"status", r->status ? r->status : ""}};
    for (size_t k = 0; k < VIGIL__ARRAY_LEN(fields) && !rc; k++) {
        rc = vigil__buf_printf(&o->b, ",\"%s\":", fields[k][0]);
        if (!rc)
            rc = vigil__json_put_string(&o->b, fields[k][1], strlen(fields[k][1]));
    }
    if (!rc)
        rc = vigil__buf_printf(&o->b, ",\"selfHeal\":%s,\"diff\":%s",
                               cJSON_IsTrue(heal) ? "true" : "false", diff_s ? diff_s : "[]");
    if (!rc && cJSON_IsString(err)) {
        rc = vigil__buf_puts(&o->b, ",\"error\":");
        if (!rc)
            rc = vigil__json_put_string(&o->b, err->valuestring, strlen(err->valuestring));
    }
    if (!rc)
        rc = vigil__buf_printf(&o->b, ",\"updated\":%lld}", (long long)r->updated_ms);
    if (r->status && (strcmp(r->status, "drifted") == 0 || strcmp(r->status, "missing") == 0))
        o->drifted++;
    cJSON_free(diff_s);
    cJSON_Delete(j);
    if (rc) {
        o->err = rc;
        return 1;
    }
    return 0;
}

static void route_drift_get(vigil__api_call *call, void *payload)
{
    vigil_hub *hub = payload;
    drift_out o;
    memset(&o, 0, sizeof(o));
    o.source = vigil__api_call_param(call, "source");
    o.status = vigil__api_call_param(call, "status");
    int rc = VIGIL_OK;
    if (o.source && (!*o.source || strlen(o.source) > SOURCE_MAX))
        rc = git_bad(VIGIL_EINVAL, "source: expected 1-%d bytes", SOURCE_MAX);
    if (!rc && o.status) {
        size_t k = 0;
        while (k_statuses[k] && strcmp(k_statuses[k], o.status) != 0)
            k++;
        if (!k_statuses[k])
            rc = git_bad(VIGIL_EINVAL, "status: expected in_sync, drifted, missing or error");
    }
    if (!rc)
        rc = vigil__buf_puts(&o.b, "{\"drift\":[");
    if (!rc) {
        rc = vigil_store_resource_list(hub->reader, VIGIL_STORE_DRIFT, NULL, put_drift, &o);
        if (rc > 0 || o.err)
            rc = o.err ? o.err : vigil__error_oom();
    }
    if (!rc)
        rc = vigil__buf_printf(&o.b, "],\"count\":%zu,\"drifted\":%zu}", o.n, o.drifted);
    vigil__api_answer(call, rc, 200, &o.b);
}

/* ---- git-managed policies ---------------------------------------------------------------- */

struct vigil__hub_gitpol {
    char *source;
    char *revision;
    char *json;        /* {"revision":..,"policies":[...]}: what is persisted */
    vigil_config *cfg; /* {"policies": [...]} loaded as YAML */
    size_t n;
};

static void gitpol_free(vigil__hub_gitpol *g)
{
    if (!g)
        return;
    vigil__free(g->source);
    vigil__free(g->revision);
    vigil__free(g->json);
    vigil_config_free(g->cfg);
    vigil__free(g);
}

/* Writes a JSON value as YAML flow text (strings quoted, ": " and ", "). */
static int json_flow(vigil_buf *b, const cJSON *v)
{
    int rc = VIGIL_OK;
    if (cJSON_IsObject(v)) {
        rc = vigil__buf_putc(b, '{');
        const cJSON *it;
        size_t k = 0;
        cJSON_ArrayForEach(it, v)
        {
            if (!rc && k++)
                rc = vigil__buf_puts(b, ", ");
            if (!rc)
                rc = vigil__json_put_string(b, it->string, strlen(it->string));
            if (!rc)
                rc = vigil__buf_puts(b, ": ");
            if (!rc)
                rc = json_flow(b, it);
        }
        return rc ? rc : vigil__buf_putc(b, '}');
    }
    if (cJSON_IsArray(v)) {
        rc = vigil__buf_putc(b, '[');
        const cJSON *it;
        size_t k = 0;
        cJSON_ArrayForEach(it, v)
        {
            if (!rc && k++)
                rc = vigil__buf_puts(b, ", ");
            if (!rc)
                rc = json_flow(b, it);
        }
        return rc ? rc : vigil__buf_putc(b, ']');
    }
    if (cJSON_IsString(v))
        return vigil__json_put_string(b, v->valuestring, strlen(v->valuestring));
    if (cJSON_IsNumber(v))
        return vigil__json_put_double(b, v->valuedouble);
    if (cJSON_IsBool(v))
        return vigil__buf_puts(b, cJSON_IsTrue(v) ? "true" : "false");
    return vigil__buf_puts(b, "null");
}

/* Writes a config node as YAML flow text (every scalar quoted). */
static int node_flow(vigil_buf *b, const vigil_config_node *n)
{
    int rc = VIGIL_OK;
    switch (vigil_config_node_kind(n)) {
    case VIGIL_CONFIG_MAP:
    case VIGIL_CONFIG_LIST: {
        int map = vigil_config_node_kind(n) == VIGIL_CONFIG_MAP;
        rc = vigil__buf_putc(b, map ? '{' : '[');
        for (size_t i = 0; i < vigil_config_node_len(n) && !rc; i++) {
            if (i)
                rc = vigil__buf_puts(b, ", ");
            if (!rc && map) {
                const char *k = vigil_config_node_key_at(n, i);
                rc = vigil__json_put_string(b, k, strlen(k));
                if (!rc)
                    rc = vigil__buf_puts(b, ": ");
            }
            if (!rc)
                rc = node_flow(b, vigil_config_node_at(n, i));
        }
        return rc ? rc : vigil__buf_putc(b, map ? '}' : ']');
    }
    case VIGIL_CONFIG_SCALAR: {
        const char *s = vigil_config_node_scalar(n);
        return vigil__json_put_string(b, s, strlen(s));
    }
    default: return vigil__buf_puts(b, "null");
    }
}

/* Loads `{"policies": <flow>}` text as YAML (no ${} expansion). */
static int load_flow(vigil_config **out, const vigil_buf *text, const char *name)
{
    vigil_config_options co = VIGIL_CONFIG_OPTIONS_INIT;
    co.no_env = 1;
    co.max_file_size = GIT_YAML_BYTES;
    co.max_nodes = GIT_YAML_NODES;
    return vigil_config_load_string(out, text->ptr ? text->ptr : "", text->size, name, &co);
}

static const vigil_config_node *policies_node(const vigil_config *cfg)
{
    return cfg ? vigil_config_node_get(vigil_config_root(cfg, 0), "policies") : NULL;
}

/* The configuration's rules (a `policies:` node) kept as a loaded copy. */
static int copy_config_rules(vigil_config **out, const vigil_config_node *policies)
{
    *out = NULL;
    if (!policies || vigil_config_node_kind(policies) == VIGIL_CONFIG_NULL)
        return VIGIL_OK;
    vigil_buf b = VIGIL_BUF_INIT;
    int rc = vigil__buf_puts(&b, "{\"policies\": ");
    if (!rc)
        rc = node_flow(&b, policies);
    if (!rc)
        rc = vigil__buf_putc(&b, '}');
    if (!rc)
        rc = load_flow(out, &b, "collector.yaml policies");
    vigil_buf_dispose(&b);
    return rc;
}

/* Swaps the engine's rules: the configuration's (`cfg`, `dir`) and every
 * source's, with `repl` standing in for the source of the same name (or
 * added; with no rules it drops that source). Called with git_mu held. */
static int replace_all(vigil_hub *hub, const vigil_config *cfg, const char *dir,
                       const vigil__hub_gitpol *repl, const char *repl_source,
                       vigil_engine_reload_result *res)
{
    size_t cap = hub->ngitpol + 2;
    const vigil_config_node **lists = vigil__calloc(cap, sizeof(*lists));
    if (!lists)
        return vigil__error_oom();
    size_t n = 0;
    lists[n++] = policies_node(cfg);
    int seen = 0;
    for (size_t i = 0; i < hub->ngitpol; i++) {
        if (repl_source && strcmp(hub->gitpol[i]->source, repl_source) == 0) {
            seen = 1;
            if (repl)
                lists[n++] = policies_node(repl->cfg);
        } else {
            lists[n++] = policies_node(hub->gitpol[i]->cfg);
        }
    }
    if (!seen && repl)
        lists[n++] = policies_node(repl->cfg);
    int rc = vigil__policy_replace_lists(hub->engine, lists, n, dir, NULL, res);
    vigil__free(lists);
    if (rc == VIGIL_OK)
        vigil__hub_windows_sync(hub); /* logs its own failure; the rules are in */
    return rc;
}

/* Installs `g` (NULL: removes the source) in hub->gitpol. */
static int gitpol_install(vigil_hub *hub, const char *source, vigil__hub_gitpol *g,
                          vigil__hub_gitpol **old)
{
    *old = NULL;
    for (size_t i = 0; i < hub->ngitpol; i++) {
        if (strcmp(hub->gitpol[i]->source, source) != 0)
            continue;
        *old = hub->gitpol[i];
        if (g) {
            hub->gitpol[i] = g;
        } else {
            memmove(&hub->gitpol[i], &hub->gitpol[i + 1],
                    (hub->ngitpol - i - 1) * sizeof(*hub->gitpol));
            hub->ngitpol--;
        }
        return VIGIL_OK;
    }
    if (!g)
        return VIGIL_OK;
    if (vigil__array_grow((void **)&hub->gitpol, &hub->capgitpol, hub->ngitpol + 1,
                          sizeof(*hub->gitpol)))
        return vigil__error_oom();
    hub->gitpol[hub->ngitpol++] = g;
    return VIGIL_OK;
}

/* Builds a source's entry from its policies array. */
static int gitpol_build(vigil__hub_gitpol **out, const char *source, const char *revision,
                        const cJSON *policies)
{
    *out = NULL;
    vigil__hub_gitpol *g = vigil__calloc(1, sizeof(*g));
    vigil_buf y = VIGIL_BUF_INIT, js = VIGIL_BUF_INIT;
    char *arr = cJSON_PrintUnformatted(policies);
    int rc = g && arr ? VIGIL_OK : vigil__error_oom();
    if (!rc && (!(g->source = vigil__strdup(source)) || !(g->revision = vigil__strdup(revision))))
        rc = vigil__error_oom();
    if (!rc)
        rc = vigil__buf_puts(&y, "{\"policies\": ");
    if (!rc)
        rc = json_flow(&y, policies);
    if (!rc)
        rc = vigil__buf_putc(&y, '}');
    if (!rc)
        rc = load_flow(&g->cfg, &y, "policies");
    if (!rc)
        rc = vigil__buf_puts(&js, "{\"revision\":");
    if (!rc)
        rc = vigil__json_put_string(&js, revision, strlen(revision));
    if (!rc)
        rc = vigil__buf_printf(&js, ",\"policies\":%s}", arr);
    if (!rc)
        g->json = vigil__buf_detach(&js);
    if (!rc)
        g->n = (size_t)cJSON_GetArraySize(policies);
    cJSON_free(arr);
    vigil_buf_dispose(&y);
    vigil_buf_dispose(&js);
    if (rc) {
        gitpol_free(g);
        return rc;
    }
    *out = g;
    return VIGIL_OK;
}

/* Drops "file:line:col: " from the last error's message. */
static const char *unlocated(void)
{
    const vigil_error *e = vigil_error_last();
    const char *m = e->message;
    if (!e->file || !e->line)
        return m;
    char pre[512];
    snprintf(pre, sizeof(pre), "%s:%u:%u: ", e->file, e->line, e->column);
    size_t n = strlen(pre);
    return strncmp(m, pre, n) == 0 ? m + n : m;
}

/* The names the engine holds now (vigil_engine_policies_json()). */
static int engine_names(vigil_hub *hub, cJSON **out)
{
    vigil_buf b = VIGIL_BUF_INIT;
    *out = NULL;
    int rc = vigil_engine_policies_json(hub->engine, &b);
    if (!rc && !(*out = cJSON_Parse(b.ptr)))
        rc = vigil__error_oom();
    vigil_buf_dispose(&b);
    return rc;
}

/* Maps every rule name of a source's set to the source. */
static int gitpol_names(vigil__pmap *m, const vigil__hub_gitpol *g)
{
    const vigil_config_node *l = policies_node(g->cfg);
    for (size_t k = 0; k < vigil_config_node_len(l); k++) {
        const char *nm =
            vigil_config_node_scalar(vigil_config_node_get(vigil_config_node_at(l, k), "name"));
        if (nm && vigil__pmap_put(m, nm, g->source))
            return vigil__error_oom();
    }
    return VIGIL_OK;
}

/* 400 for a duplicate name in the body, 409 for a name held by the
 * configuration or another source. Called with git_mu held. */
static int check_names(vigil_hub *hub, const char *source, const cJSON *policies)
{
    vigil__pmap seen = {NULL, 0, 0}, held = {NULL, 0, 0}, owners = {NULL, 0, 0};
    cJSON *loaded = NULL;
    int rc = VIGIL_OK;
    size_t i = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, policies)
    {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(p, "name");
        if (cJSON_IsString(nm)) {
            if (vigil__pmap_get(&seen, nm->valuestring))
                rc = git_bad(VIGIL_EINVAL, "policies[%zu].name: \"%.200s\" appears twice", i,
                             nm->valuestring);
            else if (vigil__pmap_put(&seen, nm->valuestring, (void *)p))
                rc = vigil__error_oom();
        }
        if (rc)
            break;
        i++;
    }
    if (!rc)
        rc = engine_names(hub, &loaded);
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(loaded, "policies"))
    {
        const cJSON *en = cJSON_GetObjectItemCaseSensitive(e, "name");
        if (!rc && cJSON_IsString(en) && vigil__pmap_put(&held, en->valuestring, (void *)en))
            rc = vigil__error_oom();
    }
    for (size_t s = 0; s < hub->ngitpol && !rc; s++)
        rc = gitpol_names(&owners, hub->gitpol[s]);
    i = 0;
    cJSON_ArrayForEach(p, policies)
    {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(p, "name");
        if (!rc && cJSON_IsString(nm) && vigil__pmap_get(&held, nm->valuestring)) {
            const char *owner = vigil__pmap_get(&owners, nm->valuestring);
            if (!owner)
                rc = git_bad(VIGIL_ECONFLICT,
                             "policies[%zu].name: a policy named \"%.200s\" is defined by the "
                             "hub's configuration (collector.yaml or policies_dir)",
                             i, nm->valuestring);
            else if (strcmp(owner, source) != 0)
                rc = git_bad(VIGIL_ECONFLICT,
                             "policies[%zu].name: a policy named \"%.200s\" is managed by source "
                             "\"%.200s\"",
                             i, nm->valuestring, owner);
        }
        i++;
    }
    cJSON_Delete(loaded);
    vigil__pmap_dispose(&seen);
    vigil__pmap_dispose(&held);
    vigil__pmap_dispose(&owners);
    return rc;
}

static void route_policies_put(vigil__api_call *call, void *payload)
{
    static const char *const keys[] = {"source", "revision", "policies", NULL};
    vigil_hub *hub = payload;
    cJSON *j = NULL;
    const char *source = NULL, *revision = NULL;
    vigil_buf out = VIGIL_BUF_INIT, key = VIGIL_BUF_INIT;
    vigil__hub_gitpol *g = NULL, *old = NULL;
    int rc = body_parse(&j, call, keys);
    if (!rc)
        rc = source_revision(&source, &revision, j);
    const cJSON *pol = rc ? NULL : array_at(j, "policies", &rc);
    size_t i = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, pol)
    {
        if (!rc && !cJSON_IsObject(p))
            rc = git_bad(VIGIL_EINVAL, "policies[%zu]: expected an object", i);
        i++;
    }
    if (!rc)
        rc = vigil__buf_printf(&key, GITPOL_PREFIX "%s", source);
    int locked = 0;
    if (!rc) {
        pthread_mutex_lock(&hub->git_mu);
        locked = 1;
        rc = check_names(hub, source, pol);
    }
    if (!rc && cJSON_GetArraySize(pol) > 0) {
        rc = gitpol_build(&g, source, revision, pol);
        if (rc && rc != VIGIL_ENOMEM) {
            char msg[1024];
            snprintf(msg, sizeof(msg), "%s", unlocated());
            rc = git_bad(rc, "%s", msg);
        }
    }
    vigil_engine_reload_result res = VIGIL_ENGINE_RELOAD_RESULT_INIT;
    if (!rc) {
        rc = replace_all(hub, hub->cfg_rules, hub->cfg_dir, g, source, &res);
        if (rc && rc != VIGIL_ENOMEM) {
            char msg[1024];
            snprintf(msg, sizeof(msg), "%s", unlocated());
            rc = git_bad(rc == VIGIL_EEXISTS ? VIGIL_ECONFLICT : rc, "%s", msg);
        }
    }
    if (!rc) {
        rc = g ? vigil_store_state_put(hub->store, key.ptr, g->json, strlen(g->json))
               : vigil_store_state_delete(hub->store, key.ptr);
        if (rc == VIGIL_ENOTFOUND)
            rc = VIGIL_OK;
        if (rc) {
            /* not kept: the engine goes back to the previous rules */
            char msg[1024];
            snprintf(msg, sizeof(msg), "%s", vigil_error_last()->message);
            if (replace_all(hub, hub->cfg_rules, hub->cfg_dir, NULL, NULL, NULL))
                log_error(hub, "git-managed policies: restoring the previous rules failed", rc);
            rc = git_bad(rc, "policies not stored: %s", msg);
        }
    }
    if (!rc) {
        rc = gitpol_install(hub, source, g, &old);
        if (!rc)
            g = NULL;
    }
    if (locked)
        pthread_mutex_unlock(&hub->git_mu);
    if (!rc) {
        vigil__log(&hub->logger, VIGIL_LOG_INFO, COMPONENT, "git-managed policies replaced",
                   "source=%s revision=%s policies=%d added=%zu changed=%zu removed=%zu kept=%zu",
                   source, revision, cJSON_GetArraySize(pol), res.added, res.changed, res.removed,
                   res.kept);
        rc = vigil__buf_puts(&out, "{\"source\":");
        if (!rc)
            rc = vigil__json_put_string(&out, source, strlen(source));
        if (!rc)
            rc = vigil__buf_puts(&out, ",\"revision\":");
        if (!rc)
            rc = vigil__json_put_string(&out, revision, strlen(revision));
        if (!rc)
            rc = vigil__buf_printf(&out, ",\"policies\":%d}", cJSON_GetArraySize(pol));
    }
    gitpol_free(old);
    gitpol_free(g);
    vigil_buf_dispose(&key);
    cJSON_Delete(j);
    vigil__api_answer(call, as_request_error(rc), 200, &out);
}

/* The sources' rules kept in the store, copied out of the listing (no store
 * call may run inside it). */
typedef struct kv_list {
    char **keys;
    char **values;
    size_t *lens;
    size_t n, cap, capv, capl;
    int oom;
} kv_list;

static int collect_kv(const char *key, const void *value, size_t len, void *payload)
{
    kv_list *l = payload;
    if (vigil__array_grow((void **)&l->keys, &l->cap, l->n + 1, sizeof(char *)) ||
        vigil__array_grow((void **)&l->values, &l->capv, l->n + 1, sizeof(char *)) ||
        vigil__array_grow((void **)&l->lens, &l->capl, l->n + 1, sizeof(size_t))) {
        l->oom = 1;
        return 1;
    }
    l->keys[l->n] = vigil__strdup(key);
    l->values[l->n] = vigil__strndup(value, len);
    l->lens[l->n] = len;
    l->n++;
    if (!l->keys[l->n - 1] || !l->values[l->n - 1]) {
        l->oom = 1;
        return 1;
    }
    return 0;
}

static void kv_list_free(kv_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        vigil__free(l->keys[i]);
        vigil__free(l->values[i]);
    }
    vigil__free(l->keys);
    vigil__free(l->values);
    vigil__free(l->lens);
}

/* Restores a source's rules kept in the store (at start). */
static int load_gitpol(const char *key, const void *value, size_t len, void *payload)
{
    vigil_hub *hub = payload;
    const char *source = key + strlen(GITPOL_PREFIX);
    cJSON *j = NULL;
    vigil__hub_gitpol *g = NULL, *old = NULL;
    int rc = vigil__json_parse(&j, value, len, GIT_BODY_DEPTH);
    const cJSON *rev = rc ? NULL : cJSON_GetObjectItemCaseSensitive(j, "revision");
    const cJSON *pol = rc ? NULL : cJSON_GetObjectItemCaseSensitive(j, "policies");
    if (!rc && (!cJSON_IsString(rev) || !cJSON_IsArray(pol)))
        rc = git_bad(VIGIL_ECORRUPT, "stored git-managed policies of \"%.200s\" are malformed",
                     source);
    if (!rc)
        rc = gitpol_build(&g, source, rev->valuestring, pol);
    if (!rc)
        rc = vigil_engine_load(hub->engine, policies_node(g->cfg));
    if (!rc)
        rc = gitpol_install(hub, source, g, &old);
    if (rc) {
        vigil_buf m = VIGIL_BUF_INIT;
        if (vigil__logfmt_value(&m, vigil_error_last()->message) == VIGIL_OK)
            vigil__log(&hub->logger, VIGIL_LOG_ERROR, COMPONENT,
                       "git-managed policies of a source not loaded; its next publication "
                       "replaces them",
                       "source=%s code=%d error=%s", source, rc, m.ptr);
        vigil_buf_dispose(&m);
        gitpol_free(g);
    } else {
        vigil__log(&hub->logger, VIGIL_LOG_INFO, COMPONENT, "git-managed policies restored",
                   "source=%s revision=%s policies=%zu", source, g->revision, g->n);
    }
    gitpol_free(old);
    cJSON_Delete(j);
    return rc == VIGIL_ENOMEM ? 1 : 0;
}

int vigil__hub_reload_with_git(vigil_hub *hub, const vigil_hub_options *o,
                               vigil_engine_reload_result *res)
{
    vigil_config *cfg = NULL;
    char *dir = NULL;
    int rc = copy_config_rules(&cfg, o->policies);
    if (!rc && o->policies_dir && *o->policies_dir && !(dir = vigil__strdup(o->policies_dir)))
        rc = vigil__error_oom();
    pthread_mutex_lock(&hub->git_mu);
    if (!rc)
        rc = replace_all(hub, cfg, dir, NULL, NULL, res);
    if (!rc) {
        vigil_config_free(hub->cfg_rules);
        vigil__free(hub->cfg_dir);
        hub->cfg_rules = cfg;
        hub->cfg_dir = dir;
        cfg = NULL;
        dir = NULL;
    }
    pthread_mutex_unlock(&hub->git_mu);
    vigil_config_free(cfg);
    vigil__free(dir);
    return rc;
}

/* ---- life cycle and routes ----------------------------------------------------------------- */

int vigil__hub_gitops_init(vigil_hub *hub, const vigil_hub_options *o)
{
    /* drift_cooldown_ms is a field of version 2: a version 1 caller's struct ends before it */
    int64_t cooldown = o->version >= 2 ? o->drift_cooldown_ms : 0;
    if (cooldown < 0)
        return vigil__error_set(VIGIL_EINVAL, "hub: drift_cooldown_ms must not be negative");
    hub->drift_cooldown_ms = cooldown ? cooldown : VIGIL_HUB_DRIFT_COOLDOWN_DEFAULT_MS;
    hub->tracks = vigil__calloc(1, sizeof(vigil__pmap));
    int rc = hub->tracks ? VIGIL_OK : vigil__error_oom();
    if (!rc)
        rc = copy_config_rules(&hub->cfg_rules, o->policies);
    if (!rc && o->policies_dir && *o->policies_dir &&
        !(hub->cfg_dir = vigil__strdup(o->policies_dir)))
        rc = vigil__error_oom();
    if (!rc) {
        rc = vigil_store_state_list(hub->store, TRACK_PREFIX, load_track, hub);
        if (rc > 0)
            rc = vigil__error_oom();
    }
    kv_list kv;
    memset(&kv, 0, sizeof(kv));
    if (!rc) {
        rc = vigil_store_state_list(hub->store, GITPOL_PREFIX, collect_kv, &kv);
        if (rc > 0 || kv.oom)
            rc = vigil__error_oom();
    }
    for (size_t i = 0; i < kv.n && !rc; i++)
        if (load_gitpol(kv.keys[i], kv.values[i], kv.lens[i], hub))
            rc = vigil__error_oom();
    kv_list_free(&kv);
    return rc;
}

void vigil__hub_gitops_free(vigil_hub *hub)
{
    if (hub->tracks) {
        vigil__pmap *m = hub->tracks;
        for (size_t i = 0; i < m->cap; i++)
            if (m->e[i].key)
                track_free(m->e[i].val);
        vigil__pmap_dispose(m);
        vigil__free(m);
        hub->tracks = NULL;
    }
    for (size_t i = 0; i < hub->ngitpol; i++)
        gitpol_free(hub->gitpol[i]);
    vigil__free(hub->gitpol);
    hub->gitpol = NULL;
    hub->ngitpol = hub->capgitpol = 0;
    vigil_config_free(hub->cfg_rules);
    hub->cfg_rules = NULL;
    vigil__free(hub->cfg_dir);
    hub->cfg_dir = NULL;
}

int vigil__hub_mount_gitops_routes(vigil_hub *hub, vigil_api *api)
{
    const unsigned int R = VIGIL_API_SCOPE_READ, W = VIGIL_API_SCOPE_WRITE, B = VIGIL__API_BODY;
    const vigil__api_route_def routes[] = {
        {"POST", "/v1/drift", W, B, route_drift_post},
        {"GET", "/v1/drift", R, 0, route_drift_get},
        {"PUT", "/v1/policies", W, B, route_policies_put},
    };
    return vigil__api_routes(api, routes, VIGIL__ARRAY_LEN(routes), hub);
}
