/*
 * The policy engine's persisted state: the writer and the reader of the
 * records kept in the store under "policy/<rule>/{s,t,a}/<key>" (series,
 * targets, actions) and "policy/_engine" (sequences).
 */
#include "internal/json.h"
#include "policy/policy_int.h"

#include <stdio.h>
#include <string.h>

/* ---- persistence ---------------------------------------------------------------- */

void vigil__policy_persist_fail(vigil_engine *e, const char *what, const char *key)
{
    e->stats.eval_errors++;
    vigil__log(&e->logger, VIGIL_LOG_ERROR, "policy", "cannot persist policy state",
               "what=%s key_len=%zu error=\"%s\"", what, strlen(key), vigil_error_last()->message);
}

static int put_blob(vigil_engine *e, const char *what, const char *key, const vigil_buf *b)
{
    int rc = vigil_store_state_put(e->o.store, key, b->ptr, b->size);
    if (rc < 0)
        vigil__policy_persist_fail(e, what, key);
    return rc;
}

static int state_key(vigil_buf *k, const char *rule, char kind, const char *rest)
{
    vigil__buf_clear(k);
    return vigil__buf_printf(k, "policy/%s/%c/%s", rule, kind, rest);
}

static int json_str_field(vigil_buf *b, const char *name, const char *v)
{
    int rc;
    if ((rc = vigil__buf_printf(b, ",\"%s\":", name)) < 0)
        return rc;
    if (!v)
        return vigil__buf_puts(b, "null");
    return vigil__json_put_string(b, v, strlen(v));
}

static int json_ts_array(vigil_buf *b, const char *name, const int64_t *v, size_t n)
{
    int rc = vigil__buf_printf(b, ",\"%s\":[", name);
    for (size_t i = 0; i < n && rc >= 0; i++)
        rc = vigil__buf_printf(b, "%s%lld", i ? "," : "", (long long)v[i]);
    return rc < 0 ? rc : vigil__buf_putc(b, ']');
}

void vigil__policy_persist_series(vigil_engine *e, pol_series *s)
{
    vigil_buf *b = &e->tmp2;
    vigil_buf k = VIGIL_BUF_INIT;
    vigil__buf_clear(b);
    int rc = vigil__buf_printf(b,
                               "{\"st\":%d,\"since\":%lld,\"ps\":%lld,\"na\":%d,\"noted\":%u,"
                               "\"la\":%lld,\"fl\":%d,\"lt\":%lld,\"du\":%lld",
                               s->state, (long long)s->since, (long long)s->pending_since,
                               s->need_act, s->noted, (long long)s->last_act, s->flapping,
                               (long long)s->last_transition, (long long)s->defer_until);
    if (rc >= 0)
        rc = json_ts_array(b, "ft", s->flap_ts, s->nflap);
    if (rc >= 0)
        rc = json_str_field(b, "ag", s->agent);
    if (rc >= 0)
        rc = json_str_field(b, "why", s->reason);
    if (rc >= 0 && s->retry)
        rc = json_str_field(b, "rt", s->retry);
    if (rc >= 0)
        rc = vigil__buf_puts(b, ",\"tags\":{");
    for (size_t i = 0; i < s->ntags && rc >= 0; i++) {
        if (i)
            rc = vigil__buf_putc(b, ',');
        if (rc >= 0)
            rc = vigil__json_put_string(b, s->tag_keys[i], strlen(s->tag_keys[i]));
        if (rc >= 0)
            rc = vigil__buf_putc(b, ':');
        if (rc >= 0)
            rc = vigil__json_put_string(b, s->tag_vals[i], strlen(s->tag_vals[i]));
    }
    if (rc >= 0)
        rc = vigil__buf_puts(b, "}}");
    if (rc >= 0)
        rc = state_key(&k, s->rule->name, 's', s->key);
    if (rc >= 0)
        put_blob(e, "series", k.ptr, b);
    else
        vigil__policy_persist_fail(e, "series", s->key);
    vigil_buf_dispose(&k);
}

void vigil__policy_persist_target(vigil_engine *e, pol_rule *r, pol_target *t)
{
    vigil_buf *b = &e->tmp2;
    vigil_buf k = VIGIL_BUF_INIT;
    vigil__buf_clear(b);
    int rc = vigil__buf_printf(b, "{\"la\":%lld", (long long)t->last_action);
    if (rc >= 0)
        rc = json_ts_array(b, "b", t->budget_ts, t->nbudget);
    if (rc >= 0)
        rc = vigil__buf_putc(b, '}');
    if (rc >= 0)
        rc = state_key(&k, r->name, 't', t->target);
    if (rc >= 0)
        put_blob(e, "target", k.ptr, b);
    else
        vigil__policy_persist_fail(e, "target", t->target);
    vigil_buf_dispose(&k);
}

void vigil__policy_persist_action(vigil_engine *e, pol_action *a)
{
    vigil_buf *b = &e->tmp2;
    vigil_buf k = VIGIL_BUF_INIT;
    vigil__buf_clear(b);
    int rc = vigil__buf_printf(b, "{\"esc\":%d,\"ph\":%d,\"dl\":%lld,\"rq\":%lld", a->esc, a->phase,
                               (long long)a->deadline, (long long)a->requested);
    if (rc >= 0 && a->recovered)
        rc = vigil__buf_printf(b, ",\"rv\":%lld", (long long)a->recovered_at);
    if (rc >= 0)
        rc = json_str_field(b, "s", a->series->key);
    if (rc >= 0)
        rc = json_str_field(b, "act", a->action);
    if (rc >= 0)
        rc = json_str_field(b, "tg", a->target);
    if (rc >= 0)
        rc = vigil__buf_putc(b, '}');
    if (rc >= 0)
        rc = state_key(&k, a->series->rule->name, 'a', a->id);
    if (rc >= 0)
        put_blob(e, "action", k.ptr, b);
    else
        vigil__policy_persist_fail(e, "action", a->id);
    vigil_buf_dispose(&k);
}

void vigil__policy_unpersist_action(vigil_engine *e, pol_action *a)
{
    vigil_buf k = VIGIL_BUF_INIT;
    if (state_key(&k, a->series->rule->name, 'a', a->id) >= 0) {
        int rc = vigil_store_state_delete(e->o.store, k.ptr);
        if (rc < 0 && rc != VIGIL_ENOTFOUND)
            vigil__policy_persist_fail(e, "action", a->id);
    }
    vigil_buf_dispose(&k);
}

int vigil__policy_persist_seq(vigil_engine *e)
{
    char b[64];
    int n = snprintf(b, sizeof(b), "{\"seq\":%llu,\"sseq\":%llu}", (unsigned long long)e->seq,
                     (unsigned long long)e->sseq);
    int rc = vigil_store_state_put(e->o.store, "policy/_engine", b, (size_t)n);
    if (rc < 0)
        vigil__policy_persist_fail(e, "sequence", "policy/_engine");
    return rc;
}

/* ---- restoring state ----------------------------------------------------------------- */

typedef struct restore_ent {
    char *key;
    char *val;
    size_t len;
} restore_ent;

typedef struct restore_ctx {
    restore_ent *v;
    size_t n, cap;
    int rc;
} restore_ctx;

static int restore_cb(const char *key, const void *value, size_t len, void *payload)
{
    restore_ctx *c = payload;
    if (c->n == c->cap && vigil__array_grow((void **)&c->v, &c->cap, c->n + 1, sizeof(*c->v)) < 0)
        return c->rc = VIGIL_ENOMEM, 1;
    restore_ent *r = &c->v[c->n];
    r->key = vigil__strdup(key);
    r->val = vigil__strndup(value, len);
    r->len = len;
    c->n++;
    if (!r->key || !r->val)
        return c->rc = VIGIL_ENOMEM, 1;
    return 0;
}

static int64_t jint(const cJSON *o, const char *k)
{
    const cJSON *i = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(i) ? (int64_t)i->valuedouble : 0;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *i = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(i) ? i->valuestring : NULL;
}

static int64_t *jts_array(const cJSON *o, const char *k, size_t max, size_t *n)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, k);
    *n = 0;
    if (!cJSON_IsArray(a) || max == 0)
        return NULL;
    int64_t *v = vigil__calloc(max, sizeof(int64_t));
    if (!v)
        return NULL;
    const cJSON *i;
    cJSON_ArrayForEach(i, a)
    {
        if (*n < max && cJSON_IsNumber(i))
            v[(*n)++] = (int64_t)i->valuedouble;
    }
    return v;
}

static int restore_series(vigil_engine *e, pol_rule *r, const char *skey, const cJSON *o,
                          int64_t now)
{
    const cJSON *tags = cJSON_GetObjectItemCaseSensitive(o, "tags");
    size_t nt = 0;
    vigil_tag tv[VIGIL_METRIC_TAGS_MAX];
    const cJSON *i;
    if (cJSON_IsObject(tags))
        cJSON_ArrayForEach(i, tags)
        {
            if (nt < VIGIL_METRIC_TAGS_MAX && cJSON_IsString(i)) {
                tv[nt].key = i->string;
                tv[nt].value = i->valuestring;
                nt++;
            }
        }
    pol_series *s = vigil__pmap_get(&r->series, skey);
    if (!s && !(s = vigil__policy_series_new(e, r, NULL, skey, tv, nt)))
        return vigil_error_last()->code;
    int st = (int)jint(o, "st");
    s->state = st >= ST_OK && st <= ST_RESOLVED ? st : ST_OK;
    s->since = jint(o, "since");
    s->pending_since = jint(o, "ps");
    s->need_act = jint(o, "na") != 0;
    s->noted = (unsigned int)jint(o, "noted");
    s->last_act = jint(o, "la");
    s->flapping = jint(o, "fl") != 0;
    s->last_transition = jint(o, "lt");
    /* absent in state written before 0.2.0: nothing held back */
    s->defer_until = jint(o, "du");
    s->last_seen = now;
    if (r->flap_transitions > 0) {
        s->flap_ts = jts_array(o, "ft", (size_t)r->flap_transitions + 1, &s->nflap);
        if (!s->flap_ts && s->nflap == 0) {
            s->flap_ts = vigil__calloc((size_t)r->flap_transitions + 1, sizeof(int64_t));
            if (!s->flap_ts)
                return vigil__error_oom();
        }
    }
    const char *ag = jstr(o, "ag");
    if (ag && !(s->agent = vigil__strdup(ag)))
        return vigil__error_oom();
    const char *why = jstr(o, "why");
    if (why && !(s->reason = vigil__strdup(why)))
        return vigil__error_oom();
    const char *rt = jstr(o, "rt");
    if (rt && !(s->retry = vigil__strdup(rt)))
        return vigil__error_oom();
    return VIGIL_OK;
}

static int restore_target(pol_rule *r, const char *target, const cJSON *o)
{
    pol_target *t = vigil__policy_target_get(r, target);
    if (!t)
        return VIGIL_ENOMEM;
    t->last_action = jint(o, "la");
    vigil__free(t->budget_ts);
    t->budget_ts = NULL;
    t->nbudget = 0;
    if (r->budget_max > 0) {
        t->budget_ts = jts_array(o, "b", (size_t)r->budget_max, &t->nbudget);
        if (!t->budget_ts)
            return vigil__error_oom();
    }
    return VIGIL_OK;
}

static int restore_action(vigil_engine *e, pol_rule *r, const char *id, const cJSON *o)
{
    const char *skey = jstr(o, "s"), *act = jstr(o, "act"), *tg = jstr(o, "tg");
    pol_series *s = skey ? vigil__pmap_get(&r->series, skey) : NULL;
    if (!s || !act || !tg || vigil__pmap_get(&e->actions, id)) {
        vigil__log(&e->logger, VIGIL_LOG_WARN, "policy", "dropping an unusable persisted action",
                   "policy=%s", r->name);
        return VIGIL_OK;
    }
    pol_action *a = vigil__calloc(1, sizeof(*a));
    int fail = !a;
    if (a) {
        a->id = vigil__policy_dup_or_null(id, &fail);
        a->action = vigil__policy_dup_or_null(act, &fail);
        a->target = vigil__policy_dup_or_null(tg, &fail);
        a->series = s;
        a->esc = (int)jint(o, "esc");
        a->phase = (int)jint(o, "ph");
        a->deadline = jint(o, "dl");
        /* "rq" and "rv" are absent from the state of older versions */
        a->requested = jint(o, "rq");
        a->recovered = cJSON_GetObjectItemCaseSensitive(o, "rv") != NULL;
        a->recovered_at = jint(o, "rv");
    }
    if (fail || vigil__policy_act_attach(e, s, a) < 0) {
        if (a)
            vigil__policy_action_free(a);
        return vigil__error_oom();
    }
    return VIGIL_OK;
}

int vigil__policy_restore_rule(vigil_engine *e, pol_rule *r, int64_t now)
{
    restore_ctx c = {NULL, 0, 0, 0};
    vigil_buf prefix = VIGIL_BUF_INIT;
    int rc = vigil__buf_printf(&prefix, "policy/%s/", r->name);
    if (rc >= 0)
        rc = vigil_store_state_list(e->o.store, prefix.ptr, restore_cb, &c);
    if (rc > 0)
        rc = c.rc < 0 ? vigil__error_oom() : VIGIL_ERROR;
    /* series first (s), then targets (t), then actions (a), which refer to series */
    static const char order[] = {'s', 't', 'a'};
    for (size_t pass = 0; pass < 3 && rc >= 0; pass++) {
        for (size_t i = 0; i < c.n && rc >= 0; i++) {
            const char *k = c.v[i].key + prefix.size;
            if (k[0] != order[pass] || k[1] != '/')
                continue;
            cJSON *o = NULL;
            vigil__json_init();
            if (vigil__json_parse(&o, c.v[i].val, c.v[i].len, 8) < 0 || !cJSON_IsObject(o)) {
                if (vigil_error_last()->code == VIGIL_ENOMEM) {
                    rc = VIGIL_ENOMEM;
                } else {
                    vigil__log(&e->logger, VIGIL_LOG_WARN, "policy",
                               "ignoring corrupt persisted state", "policy=%s", r->name);
                }
                cJSON_Delete(o);
                continue;
            }
            if (order[pass] == 's')
                rc = restore_series(e, r, k + 2, o, now);
            else if (order[pass] == 't')
                rc = restore_target(r, k + 2, o);
            else
                rc = restore_action(e, r, k + 2, o);
            cJSON_Delete(o);
        }
    }
    for (size_t i = 0; i < c.n; i++) {
        vigil__free(c.v[i].key);
        vigil__free(c.v[i].val);
    }
    vigil__free(c.v);
    vigil_buf_dispose(&prefix);
    return rc;
}

int vigil__policy_load_seq(vigil_engine *e)
{
    void *v = NULL;
    size_t len = 0;
    int rc = vigil_store_state_get(e->o.store, "policy/_engine", &v, &len);
    if (rc == VIGIL_ENOTFOUND)
        return VIGIL_OK;
    if (rc < 0)
        return rc;
    cJSON *o = NULL;
    vigil__json_init();
    rc = vigil__json_parse(&o, v, len, 4);
    vigil_free(v);
    if (rc == VIGIL_ENOMEM)
        return rc;
    if (rc == VIGIL_OK && cJSON_IsObject(o)) {
        e->seq = (uint64_t)jint(o, "seq");
        e->sseq = (uint64_t)jint(o, "sseq");
    }
    cJSON_Delete(o);
    return VIGIL_OK;
}

/* Deletes the persisted state of a rule (every key under "policy/<name>/"). */
static int key_cb(const char *key, const void *value, size_t len, void *payload)
{
    (void)value;
    (void)len;
    return restore_cb(key, "", 0, payload);
}

void vigil__policy_unpersist_rule(vigil_engine *e, const char *name)
{
    restore_ctx c = {NULL, 0, 0, 0};
    vigil_buf prefix = VIGIL_BUF_INIT;
    int rc = vigil__buf_printf(&prefix, "policy/%s/", name);
    if (rc >= 0)
        rc = vigil_store_state_list(e->o.store, prefix.ptr, key_cb, &c);
    if (rc > 0)
        rc = c.rc < 0 ? vigil__error_oom() : VIGIL_ERROR;
    for (size_t i = 0; i < c.n && rc >= 0; i++) {
        rc = vigil_store_state_delete(e->o.store, c.v[i].key);
        if (rc == VIGIL_ENOTFOUND)
            rc = VIGIL_OK;
    }
    if (rc < 0)
        vigil__policy_persist_fail(e, "removed policy", prefix.ptr ? prefix.ptr : name);
    for (size_t i = 0; i < c.n; i++) {
        vigil__free(c.v[i].key);
        vigil__free(c.v[i].val);
    }
    vigil__free(c.v);
    vigil_buf_dispose(&prefix);
}
