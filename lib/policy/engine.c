/*
 * The policy engine: the index of rules by metric name, the state machine per
 * (policy, series), guards (silences, flap damping, cooldown, budget), the
 * closed loop (verification, escalation), persistence of every state in the
 * store, and the call-outs queued under the lock and run after it.
 */
#include "internal/json.h"
#include "policy/policy_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define RING_MAX        4096
#define SERIES_PER_RULE 100000
#define REASON_MAX      512

static const char *const state_names[] = {"ok", "pending", "firing", "resolved"};

/* ---- small helpers ------------------------------------------------------------- */

static int vec_push(pol_vec *v, pol_rule *r)
{
    if (v->n == v->cap && vigil__array_grow((void **)&v->v, &v->cap, v->n + 1, sizeof(*v->v)) < 0)
        return VIGIL_ENOMEM;
    v->v[v->n++] = r;
    return VIGIL_OK;
}

static void vec_remove(pol_vec *v, const pol_rule *r)
{
    for (size_t i = 0; i < v->n; i++)
        if (v->v[i] == r) {
            memmove(&v->v[i], &v->v[i + 1], (v->n - i - 1) * sizeof(*v->v));
            v->n--;
            return;
        }
}

static int64_t clock_now(vigil_engine *e)
{
    return e->o.clock ? e->o.clock(e->o.clock_payload) : vigil__now_ms();
}

int64_t vigil__policy_now(vigil_engine *e)
{
    return clock_now(e);
}

static void fmt_dur(char *b, size_t n, int64_t ms)
{
    if (vigil_scalar_format_duration(b, n, ms < 0 ? 0 : ms) < 0)
        snprintf(b, n, "%lldms", (long long)ms);
}

static const char *op_name(int op)
{
    static const char *const names[] = {">", ">=", "<", "<=", "==", "!="};
    return names[op];
}

static int cmp_op(double v, int op, double lim)
{
    switch (op) {
    case OP_GT: return v > lim;
    case OP_GE: return v >= lim;
    case OP_LT: return v < lim;
    case OP_LE: return v <= lim;
    case OP_EQ: return v == lim;
    default: return v != lim;
    }
}

/* ---- call-outs ------------------------------------------------------------------ */

static void out_free(pol_out *o)
{
    for (size_t i = 0; i < VIGIL__ARRAY_LEN(o->strs); i++)
        vigil__free(o->strs[i]);
    if (o->params) {
        for (size_t i = 0; i < o->r.nparams; i++) {
            vigil__free((char *)o->params[i].key);
            vigil__free((char *)o->params[i].value);
        }
        vigil__free(o->params);
    }
    vigil__free(o->series);
    vigil__free(o);
}

static char *dup_or_null(const char *s, int *fail)
{
    if (!s)
        return NULL;
    char *d = vigil__strdup(s);
    if (!d)
        *fail = 1;
    return d;
}

static void out_push(vigil_engine *e, pol_out *o)
{
    o->next = NULL;
    *e->out_tail = o;
    e->out_tail = &o->next;
}

void vigil__policy_flush(vigil_engine *e)
{
    pthread_mutex_lock(&e->mu);
    pol_out *o = e->out_head;
    e->out_head = NULL;
    e->out_tail = &e->out_head;
    pthread_mutex_unlock(&e->mu);
    while (o) {
        pol_out *next = o->next;
        if (o->is_request) {
            if (e->o.on_request) {
                vigil_engine_request req = {VIGIL_ENGINE_REQUEST_VERSION, &o->r, o->series};
                e->o.on_request(e->o.request_payload, &req);
            }
        } else if (e->o.on_decision) {
            e->o.on_decision(e->o.decision_payload, &o->d);
        }
        out_free(o);
        o = next;
    }
}

/* ---- persistence ---------------------------------------------------------------- */

static void persist_fail(vigil_engine *e, const char *what, const char *key)
{
    e->stats.eval_errors++;
    vigil__log(&e->logger, VIGIL_LOG_ERROR, "policy", "cannot persist policy state",
               "what=%s key_len=%zu error=\"%s\"", what, strlen(key), vigil_error_last()->message);
}

static int put_blob(vigil_engine *e, const char *what, const char *key, const vigil_buf *b)
{
    int rc = vigil_store_state_put(e->o.store, key, b->ptr, b->size);
    if (rc < 0)
        persist_fail(e, what, key);
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

static void persist_series(vigil_engine *e, pol_series *s)
{
    vigil_buf *b = &e->tmp2;
    vigil_buf k = VIGIL_BUF_INIT;
    vigil__buf_clear(b);
    int rc = vigil__buf_printf(b,
                               "{\"st\":%d,\"since\":%lld,\"ps\":%lld,\"na\":%d,\"noted\":%u,"
                               "\"la\":%lld,\"fl\":%d,\"lt\":%lld",
                               s->state, (long long)s->since, (long long)s->pending_since,
                               s->need_act, s->noted, (long long)s->last_act, s->flapping,
                               (long long)s->last_transition);
    if (rc >= 0)
        rc = json_ts_array(b, "ft", s->flap_ts, s->nflap);
    if (rc >= 0)
        rc = json_str_field(b, "ag", s->agent);
    if (rc >= 0)
        rc = json_str_field(b, "why", s->reason);
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
        persist_fail(e, "series", s->key);
    vigil_buf_dispose(&k);
}

static void persist_target(vigil_engine *e, pol_rule *r, pol_target *t)
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
        persist_fail(e, "target", t->target);
    vigil_buf_dispose(&k);
}

static void persist_action(vigil_engine *e, pol_action *a)
{
    vigil_buf *b = &e->tmp2;
    vigil_buf k = VIGIL_BUF_INIT;
    vigil__buf_clear(b);
    int rc = vigil__buf_printf(b, "{\"esc\":%d,\"ph\":%d,\"dl\":%lld", a->esc, a->phase,
                               (long long)a->deadline);
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
        persist_fail(e, "action", a->id);
    vigil_buf_dispose(&k);
}

static void unpersist_action(vigil_engine *e, pol_action *a)
{
    vigil_buf k = VIGIL_BUF_INIT;
    if (state_key(&k, a->series->rule->name, 'a', a->id) >= 0) {
        int rc = vigil_store_state_delete(e->o.store, k.ptr);
        if (rc < 0 && rc != VIGIL_ENOTFOUND)
            persist_fail(e, "action", a->id);
    }
    vigil_buf_dispose(&k);
}

static int persist_seq(vigil_engine *e)
{
    char b[64];
    int n = snprintf(b, sizeof(b), "{\"seq\":%llu,\"sseq\":%llu}", (unsigned long long)e->seq,
                     (unsigned long long)e->sseq);
    int rc = vigil_store_state_put(e->o.store, "policy/_engine", b, (size_t)n);
    if (rc < 0)
        persist_fail(e, "sequence", "policy/_engine");
    return rc;
}

/* ---- decisions ----------------------------------------------------------------- */

static void decide(vigil_engine *e, const pol_rule *r, const pol_series *s, const char *target,
                   const char *action, const char *action_id, const char *kind, const char *reason,
                   int64_t now)
{
    vigil_store_decision d = {0,         now,  r->name, s ? s->key : NULL, target, action,
                              action_id, kind, reason};
    int64_t id = 0;
    int rc = vigil_store_decision_append(e->o.store, &d, &id);
    vigil__log(&e->logger, rc < 0 ? VIGIL_LOG_ERROR : VIGIL_LOG_INFO, "policy",
               rc < 0 ? "cannot record decision" : "decision",
               "policy=%s decision=%s target=%s action_id=%s", r->name, kind, target ? target : "",
               action_id ? action_id : "");
    if (rc < 0) {
        e->stats.eval_errors++;
        return;
    }
    e->stats.decisions++;
    if (!e->o.on_decision)
        return;
    pol_out *o = vigil__calloc(1, sizeof(*o));
    if (!o) {
        e->stats.eval_errors++;
        return;
    }
    int fail = 0;
    d.id = id;
    d.policy = o->strs[0] = dup_or_null(r->name, &fail);
    d.series = o->strs[1] = dup_or_null(d.series, &fail);
    d.target = o->strs[2] = dup_or_null(target, &fail);
    d.action = o->strs[3] = dup_or_null(action, &fail);
    d.action_id = o->strs[4] = dup_or_null(action_id, &fail);
    d.decision = o->strs[5] = dup_or_null(kind, &fail);
    d.reason = o->strs[6] = dup_or_null(reason, &fail);
    o->d = d;
    if (fail) {
        out_free(o);
        e->stats.eval_errors++;
        return;
    }
    out_push(e, o);
}

/* ---- series, targets, actions ---------------------------------------------------- */

static void action_free(pol_action *a)
{
    vigil__free(a->id);
    vigil__free(a->action);
    vigil__free(a->target);
    vigil__free(a);
}

static void series_free(pol_series *s)
{
    vigil__free(s->key);
    for (size_t i = 0; i < s->ntags; i++) {
        vigil__free(s->tag_keys[i]);
        vigil__free(s->tag_vals[i]);
    }
    vigil__free(s->tag_keys);
    vigil__free(s->tag_vals);
    vigil__free(s->agent);
    vigil__free(s->reason);
    vigil__free(s->flap_ts);
    vigil__free(s->ring_ts);
    vigil__free(s->ring_v);
    vigil__free(s->code_action);
    vigil__free(s->code_target);
    vigil__free(s->code_reason);
    for (size_t i = 0; i < s->code_nparams; i++) {
        vigil__free(s->code_pkeys[i]);
        vigil__free(s->code_pvals[i]);
    }
    vigil__free(s->code_pkeys);
    vigil__free(s->code_pvals);
    for (size_t i = 0; i < s->nacts; i++)
        action_free(s->acts[i]);
    vigil__free(s->acts);
    vigil__free(s);
}

/* Frees what a rule holds at run time (series, targets, their actions). */
static void rule_state_free(vigil_engine *e, pol_rule *r)
{
    for (size_t i = 0; i < r->nslist; i++) {
        pol_series *s = r->slist[i];
        for (size_t j = 0; j < s->nacts; j++)
            vigil__pmap_del(&e->actions, s->acts[j]->id);
        series_free(s);
    }
    vigil__free(r->slist);
    r->slist = NULL;
    r->nslist = r->capslist = 0;
    vigil__pmap_dispose(&r->series);
    for (size_t i = 0; i < r->targets.cap; i++) {
        pol_target *t = r->targets.e[i].val;
        if (r->targets.e[i].key) {
            vigil__free(t->target);
            vigil__free(t->budget_ts);
            vigil__free(t);
        }
    }
    vigil__pmap_dispose(&r->targets);
}

static pol_series *series_new(vigil_engine *e, pol_rule *r, const char *key, const vigil_tag *tags,
                              size_t ntags)
{
    if (r->nslist >= SERIES_PER_RULE) {
        vigil__error_set(VIGIL_ELIMIT, "policy %s: more than %d series", r->name, SERIES_PER_RULE);
        return NULL;
    }
    pol_series *s = vigil__calloc(1, sizeof(*s));
    if (!s || !(s->key = vigil__strdup(key)))
        goto oom;
    s->rule = r;
    s->value = NAN;
    if (ntags) {
        s->tag_keys = vigil__calloc(ntags, sizeof(char *));
        s->tag_vals = vigil__calloc(ntags, sizeof(char *));
        if (!s->tag_keys || !s->tag_vals)
            goto oom;
        for (size_t i = 0; i < ntags; i++) {
            s->tag_keys[i] = vigil__strdup(tags[i].key);
            s->tag_vals[i] = vigil__strdup(tags[i].value);
            s->ntags++;
            if (!s->tag_keys[i] || !s->tag_vals[i])
                goto oom;
        }
    }
    if (r->nslist == r->capslist &&
        vigil__array_grow((void **)&r->slist, &r->capslist, r->nslist + 1, sizeof(*r->slist)) < 0)
        goto oom;
    if (vigil__pmap_put(&r->series, s->key, s) < 0)
        goto oom;
    r->slist[r->nslist++] = s;
    (void)e;
    return s;
oom:
    if (s)
        series_free(s);
    vigil__error_oom();
    return NULL;
}

static pol_target *target_get(pol_rule *r, const char *target)
{
    pol_target *t = vigil__pmap_get(&r->targets, target);
    if (t)
        return t;
    t = vigil__calloc(1, sizeof(*t));
    if (!t || !(t->target = vigil__strdup(target)) ||
        vigil__pmap_put(&r->targets, t->target, t) < 0) {
        if (t)
            vigil__free(t->target);
        vigil__free(t);
        vigil__error_oom();
        return NULL;
    }
    return t;
}

static void act_detach(vigil_engine *e, pol_action *a)
{
    pol_series *s = a->series;
    vigil__pmap_del(&e->actions, a->id);
    for (size_t i = 0; i < s->nacts; i++)
        if (s->acts[i] == a) {
            memmove(&s->acts[i], &s->acts[i + 1], (s->nacts - i - 1) * sizeof(*s->acts));
            s->nacts--;
            break;
        }
}

static void act_settle(vigil_engine *e, pol_action *a)
{
    act_detach(e, a);
    unpersist_action(e, a);
    action_free(a);
}

static int act_attach(vigil_engine *e, pol_series *s, pol_action *a)
{
    if (s->nacts == s->capacts &&
        vigil__array_grow((void **)&s->acts, &s->capacts, s->nacts + 1, sizeof(*s->acts)) < 0)
        return VIGIL_ENOMEM;
    if (vigil__pmap_put(&e->actions, a->id, a) < 0)
        return VIGIL_ENOMEM;
    s->acts[s->nacts++] = a;
    return VIGIL_OK;
}

/* ---- requests --------------------------------------------------------------------- */

static void mint_id(vigil_engine *e, const pol_rule *r, int64_t now, char *out, size_t size)
{
    char num[48];
    e->seq++;
    int nl = snprintf(num, sizeof(num), "-%lld-%llu", (long long)now, (unsigned long long)e->seq);
    size_t room = size - 1 - (size_t)nl;
    size_t n = strlen(r->name);
    if (n > room)
        n = room;
    for (size_t i = 0; i < n; i++) {
        char c = r->name[i];
        out[i] = ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-')
                     ? c
                     : '_';
    }
    memcpy(out + n, num, (size_t)nl + 1);
}

static void template_error(vigil_engine *e, pol_series *s, const char *what, const char *name,
                           size_t len)
{
    e->stats.template_errors++;
    vigil__log(&e->logger, VIGIL_LOG_WARN, "policy", "template names a missing tag; no request",
               "policy=%s series=%s in=%s tag=%.*s", s->rule->name, s->key, what,
               (int)(len > 200 ? 200 : len), name);
}

/* Expands the target of series s into *out (owned). Returns VIGIL_OK, or
 * VIGIL_ENOTFOUND after logging and counting a template error. */
static int expand_target(vigil_engine *e, pol_series *s, char **out)
{
    const char *tmpl = s->code_target ? s->code_target : s->rule->target;
    const char *miss = NULL;
    size_t ml = 0;
    int rc = vigil__policy_expand(&e->tmp, tmpl, s, NULL, &miss, &ml);
    if (rc == VIGIL_ENOTFOUND) {
        if (!(s->noted & NOTE_NOTARGET))
            template_error(e, s, "target", miss, ml);
        s->noted |= NOTE_NOTARGET;
        return rc;
    }
    if (rc < 0)
        return rc;
    *out = vigil__buf_detach(&e->tmp);
    return *out ? VIGIL_OK : vigil__error_oom();
}

/* Builds and queues a request; records `kind` (fired / escalated) with it. */
static int request(vigil_engine *e, pol_series *s, const char *action, const char *target, int esc,
                   const char *kind, const char *reason, int64_t now)
{
    pol_rule *r = s->rule;
    char **pk = s->code_pkeys ? s->code_pkeys : r->param_keys;
    char **pv = s->code_pkeys ? s->code_pvals : r->param_vals;
    size_t np = s->code_pkeys ? s->code_nparams : r->nparams;
    pol_out *o = vigil__calloc(1, sizeof(*o));
    pol_action *a = vigil__calloc(1, sizeof(*a));
    char id[VIGIL_POLICY_ACTION_ID_MAX + 1];
    int rc = VIGIL_ENOMEM;
    if (!o || !a)
        goto fail;
    o->is_request = 1;
    if (np) {
        o->params = vigil__calloc(np, sizeof(*o->params));
        if (!o->params)
            goto fail;
    }
    for (size_t i = 0; i < np; i++) {
        const char *miss = NULL;
        size_t ml = 0;
        rc = vigil__policy_expand(&e->tmp, pv[i], s, target, &miss, &ml);
        if (rc == VIGIL_ENOTFOUND) {
            template_error(e, s, pk[i], miss, ml);
            goto fail;
        }
        if (rc < 0)
            goto fail;
        o->params[i].key = vigil__strdup(pk[i]);
        o->params[i].value = vigil__buf_detach(&e->tmp);
        o->r.nparams = i + 1;
        if (!o->params[i].key || !o->params[i].value) {
            rc = VIGIL_ENOMEM;
            goto fail;
        }
    }
    mint_id(e, r, now, id, sizeof(id));
    int fail = 0;
    a->id = dup_or_null(id, &fail);
    a->action = dup_or_null(action, &fail);
    a->target = dup_or_null(target, &fail);
    o->strs[0] = dup_or_null(id, &fail);
    o->strs[1] = dup_or_null(action, &fail);
    o->strs[2] = dup_or_null(target, &fail);
    o->strs[3] = dup_or_null(reason, &fail);
    o->strs[4] = dup_or_null(r->name, &fail);
    o->series = dup_or_null(s->key, &fail);
    rc = VIGIL_ENOMEM;
    if (fail)
        goto fail;
    a->series = s;
    a->esc = esc;
    a->phase = PH_OUTSTANDING;
    if ((rc = act_attach(e, s, a)) < 0)
        goto fail;
    persist_seq(e);
    persist_action(e, a);
    decide(e, r, s, target, action, id, kind, reason, now);
    vigil_action_request req = VIGIL_ACTION_REQUEST_INIT;
    req.id = o->strs[0];
    req.action = o->strs[1];
    req.target = o->strs[2];
    req.params = o->params;
    req.nparams = o->r.nparams;
    req.reason = o->strs[3];
    req.policy = o->strs[4];
    o->r = req;
    e->stats.requests++;
    if (e->o.on_request)
        out_push(e, o);
    else
        out_free(o);
    return VIGIL_OK;
fail:
    if (rc == VIGIL_ENOMEM) {
        e->stats.eval_errors++;
        vigil__log(&e->logger, VIGIL_LOG_ERROR, "policy", "out of memory making a request",
                   "policy=%s", r->name);
    }
    if (o)
        out_free(o);
    if (a)
        action_free(a);
    return rc;
}

static int act_pending(const pol_series *s)
{
    for (size_t i = 0; i < s->nacts; i++)
        if (s->acts[i]->phase != PH_VERIFY)
            return 1;
    return 0;
}

static void try_act(vigil_engine *e, pol_series *s, int64_t now)
{
    pol_rule *r = s->rule;
    char why[REASON_MAX], b1[32], b2[32];
    const char *action = s->code_action ? s->code_action : r->action;
    if (!action) {
        if (!(s->noted & NOTE_NOACTION)) {
            e->stats.eval_errors++;
            vigil__log(&e->logger, VIGIL_LOG_WARN, "policy",
                       "code policy gave no action and the rule has none", "policy=%s", r->name);
        }
        s->noted |= NOTE_NOACTION;
        return;
    }
    char *target = NULL;
    if (expand_target(e, s, &target) < 0)
        return;
    const pol_silence *sil = vigil__policy_silenced(e, r, s, target, now);
    if (sil) {
        if (!(s->noted & NOTE_SILENCED)) {
            snprintf(why, sizeof(why), "silence %s", sil->id);
            decide(e, r, s, target, action, NULL, "silenced", why, now);
        }
        s->noted |= NOTE_SILENCED;
        goto done;
    }
    if (s->flapping) {
        if (!(s->noted & NOTE_FLAPPING))
            decide(e, r, s, target, action, NULL, "suppressed", "flapping", now);
        s->noted |= NOTE_FLAPPING;
        goto done;
    }
    pol_target *t = target_get(r, target);
    if (!t) {
        e->stats.eval_errors++;
        goto done;
    }
    if (r->cooldown_ms > 0 && t->last_action && now - t->last_action < r->cooldown_ms) {
        if (!(s->noted & NOTE_COOLDOWN)) {
            fmt_dur(b1, sizeof(b1), now - t->last_action);
            fmt_dur(b2, sizeof(b2), r->cooldown_ms);
            snprintf(why, sizeof(why), "cooldown: last request %s ago (cooldown %s)", b1, b2);
            decide(e, r, s, target, action, NULL, "suppressed", why, now);
        }
        s->noted |= NOTE_COOLDOWN;
        goto done;
    }
    if (r->budget_max > 0) {
        size_t k = 0;
        for (size_t i = 0; i < t->nbudget; i++)
            if (now - t->budget_ts[i] < r->budget_window_ms)
                t->budget_ts[k++] = t->budget_ts[i];
        t->nbudget = k;
        if ((int64_t)t->nbudget >= r->budget_max) {
            if (!(s->noted & NOTE_EXHAUSTED)) {
                fmt_dur(b1, sizeof(b1), r->budget_window_ms);
                snprintf(why, sizeof(why), "budget: %lld actions within %s on %s",
                         (long long)r->budget_max, b1, target);
                decide(e, r, s, target, action, NULL, "exhausted", why, now);
            }
            s->noted |= NOTE_EXHAUSTED;
            goto done;
        }
    }
    if (r->budget_max > 0) {
        size_t cap = (size_t)r->budget_max;
        int64_t *nb = vigil__realloc(t->budget_ts, cap * sizeof(int64_t));
        if (!nb) {
            e->stats.eval_errors++;
            goto done;
        }
        t->budget_ts = nb;
    }
    const char *reason = s->code_reason ? s->code_reason : s->reason;
    if (request(e, s, action, target, 0, "fired", reason ? reason : "condition holds", now) < 0)
        goto done;
    s->need_act = 0;
    s->last_act = now;
    t->last_action = now;
    if (r->budget_max > 0)
        t->budget_ts[t->nbudget++] = now;
    persist_target(e, r, t);
done:
    vigil__free(target);
}

/* ---- the state machine -------------------------------------------------------------- */

static void flap_record(vigil_engine *e, pol_series *s, int64_t ts, int64_t now)
{
    pol_rule *r = s->rule;
    s->last_transition = ts;
    if (r->flap_transitions <= 0)
        return;
    size_t cap = (size_t)r->flap_transitions + 1;
    if (!s->flap_ts) {
        s->flap_ts = vigil__calloc(cap, sizeof(int64_t));
        if (!s->flap_ts) {
            e->stats.eval_errors++;
            return;
        }
    }
    size_t k = 0;
    for (size_t i = 0; i < s->nflap; i++)
        if (ts - s->flap_ts[i] < r->flap_window_ms)
            s->flap_ts[k++] = s->flap_ts[i];
    s->nflap = k;
    if (s->nflap == cap) {
        memmove(s->flap_ts, s->flap_ts + 1, (cap - 1) * sizeof(int64_t));
        s->nflap--;
    }
    s->flap_ts[s->nflap++] = ts;
    if (!s->flapping && (int64_t)s->nflap > r->flap_transitions) {
        char why[REASON_MAX], b1[32], b2[32];
        s->flapping = 1;
        fmt_dur(b1, sizeof(b1), r->flap_window_ms);
        fmt_dur(b2, sizeof(b2), r->flap_settle_ms);
        snprintf(why, sizeof(why),
                 "%zu state changes within %s (limit %lld); actions suppressed until stable "
                 "for %s",
                 s->nflap, b1, (long long)r->flap_transitions, b2);
        decide(e, r, s, NULL, r->action, NULL, "flapping", why, now);
    }
}

static void set_state(vigil_engine *e, pol_series *s, int st, int64_t ts, int64_t now)
{
    int old = s->state;
    s->state = st;
    s->since = ts;
    if (old != st && !(old == ST_RESOLVED && st == ST_OK))
        flap_record(e, s, ts, now);
}

static void flap_settle(vigil_engine *e, pol_series *s, int64_t t)
{
    if (s->flapping && t - s->last_transition >= s->rule->flap_settle_ms) {
        s->flapping = 0;
        s->nflap = 0;
        s->noted &= ~NOTE_FLAPPING;
        vigil__log(&e->logger, VIGIL_LOG_INFO, "policy", "series stable again", "policy=%s",
                   s->rule->name);
        persist_series(e, s);
    }
}

static void set_reason(pol_series *s, const char *reason)
{
    char *d = vigil__strdup(reason ? reason : "");
    if (d) {
        vigil__free(s->reason);
        s->reason = d;
    }
}

static void fire(vigil_engine *e, pol_series *s, int64_t ts, int64_t now, const char *reason)
{
    set_state(e, s, ST_FIRING, ts, now);
    s->need_act = 1;
    s->noted = 0;
    set_reason(s, reason);
    try_act(e, s, now);
    persist_series(e, s);
}

static void recovered(vigil_engine *e, pol_series *s, int64_t now)
{
    for (size_t i = 0; i < s->nacts;) {
        pol_action *a = s->acts[i];
        if (a->phase != PH_VERIFY) {
            i++;
            continue;
        }
        char why[REASON_MAX], b1[32];
        fmt_dur(b1, sizeof(b1), s->rule->verify_ms - (a->deadline - now));
        snprintf(why, sizeof(why), "recovered %s after %s succeeded", b1, a->action);
        decide(e, s->rule, s, a->target, a->action, a->id, "remediated", why, now);
        act_settle(e, a);
    }
}

/* What was judged, for the reason of a decision: formatted only when one is
 * recorded (formatting numbers costs more than evaluating). */
typedef struct eval_info {
    const char *text; /* a ready reason, or NULL */
    const pol_rule *r;
    const char *target;
    const char *code_reason;
    double v, lim, z, mean, last;
    int active, firing;
} eval_info;

static const char *reason_text(const eval_info *ev, char *buf, size_t n)
{
    const pol_rule *r = ev->r;
    char b1[32];
    if (ev->text)
        return ev->text;
    fmt_dur(b1, sizeof(b1), r->window_ms);
    const char *op = ev->active ? op_name(r->op) : "past";
    const char *clr = ev->firing ? " (clear)" : "";
    switch (r->kind) {
    case POL_THRESHOLD:
        snprintf(buf, n, "%s(%s) over %s = %.6g %s %.6g%s", vigil_window_agg_name(r->agg),
                 r->metric, b1, ev->v, op, ev->lim, clr);
        break;
    case POL_CHANGE:
        snprintf(buf, n, "change of %s over %s = %.6g/s %s %.6g%s", r->metric, b1, ev->v, op,
                 ev->lim, clr);
        break;
    case POL_DESIRED:
        snprintf(buf, n, "%s(%s) over %s = %.6g %s desired %s %.6g of %.64s",
                 vigil_window_agg_name(r->agg), r->metric, b1, ev->v,
                 ev->active ? op_name(r->op) : "not", r->field, ev->lim,
                 ev->target ? ev->target : "");
        break;
    case POL_ANOMALY:
        snprintf(buf, n, "%s = %.6g is %.3g sigma from the mean %.6g over %s (%s %.3g)", r->metric,
                 ev->last, ev->z, ev->mean, b1, ev->active ? "above" : "within", ev->lim);
        break;
    default:
        snprintf(buf, n, "%s: %s", r->kind_name,
                 ev->code_reason ? ev->code_reason
                                 : (ev->active ? "condition holds" : "condition cleared"));
        break;
    }
    return buf;
}

static void step(vigil_engine *e, pol_series *s, int active, const eval_info *ev, int64_t ts,
                 int64_t now)
{
    pol_rule *r = s->rule;
    char rbuf[REASON_MAX];
    flap_settle(e, s, ts);
    if (!active) {
        if (s->state == ST_FIRING) {
            set_state(e, s, ST_RESOLVED, ts, now);
            s->need_act = 0;
            decide(e, r, s, NULL, r->action, NULL, "resolved", reason_text(ev, rbuf, sizeof(rbuf)),
                   now);
            recovered(e, s, now);
            persist_series(e, s);
        } else if (s->state != ST_OK) {
            set_state(e, s, ST_OK, ts, now);
            recovered(e, s, now);
            persist_series(e, s);
        } else if (s->nacts) {
            recovered(e, s, now);
        }
        return;
    }
    switch (s->state) {
    case ST_OK:
    case ST_RESOLVED:
        if (r->for_ms <= 0) {
            fire(e, s, ts, now, reason_text(ev, rbuf, sizeof(rbuf)));
        } else {
            set_state(e, s, ST_PENDING, ts, now);
            s->pending_since = ts;
            set_reason(s, reason_text(ev, rbuf, sizeof(rbuf)));
            persist_series(e, s);
        }
        break;
    case ST_PENDING:
        if (ts - s->pending_since >= r->for_ms)
            fire(e, s, ts, now, reason_text(ev, rbuf, sizeof(rbuf)));
        break;
    default:
        if (!s->need_act && r->repeat_ms > 0 && s->last_act && now - s->last_act >= r->repeat_ms &&
            !act_pending(s)) {
            s->need_act = 1;
            s->noted = 0;
            set_reason(s, reason_text(ev, rbuf, sizeof(rbuf)));
        }
        if (s->need_act) {
            unsigned int before = s->noted;
            int need = s->need_act;
            try_act(e, s, now);
            if (before != s->noted || need != s->need_act)
                persist_series(e, s);
        }
        break;
    }
}

/* ---- evaluation ------------------------------------------------------------------ */

int vigil__policy_aggregate(vigil_engine *e, const char *series_key, vigil_window_agg agg,
                            int64_t duration_ms, int64_t now_ms, double *out)
{
    if (e->o.aggregate)
        return e->o.aggregate(e->o.aggregate_payload, series_key, agg, duration_ms, now_ms, out);
    vigil_window *w = vigil_window_set_get(e->windows, series_key);
    if (!w)
        return vigil__error_set(VIGIL_ENOTFOUND, "no samples of %.200s", series_key);
    return vigil_window_aggregate(w, agg, duration_ms, now_ms, out);
}

static const char *metric_tag(const vigil_metric *m, const char *key)
{
    for (size_t i = 0; i < m->ntags; i++)
        if (strcmp(m->tags[i].key, key) == 0)
            return m->tags[i].value;
    return NULL;
}

static int rule_matches(const pol_rule *r, const vigil_metric *m)
{
    for (size_t i = 0; i < r->nmatch; i++) {
        const pol_matcher *pm = &r->match[i];
        const char *v = metric_tag(m, pm->key);
        if (!v)
            return 0;
        if (pm->glob ? !(pm->value[0] == '*' && pm->value[1] == '\0') &&
                           !vigil__policy_glob(pm->value, v)
                     : strcmp(pm->value, v) != 0)
            return 0;
    }
    return 1;
}

static int change_slope(pol_series *s, int64_t ts, double v, int64_t window, double *out)
{
    if (!s->ring_ts) {
        s->ring_ts = vigil__calloc(8, sizeof(int64_t));
        s->ring_v = vigil__calloc(8, sizeof(double));
        if (!s->ring_ts || !s->ring_v)
            return vigil__error_oom();
        s->ring_cap = 8;
    }
    /* drop what fell out of the window, then append */
    while (s->ring_n && ts - s->ring_ts[s->ring_head] >= window) {
        s->ring_head = (s->ring_head + 1) % s->ring_cap;
        s->ring_n--;
    }
    size_t newest = (s->ring_head + s->ring_n + s->ring_cap - 1) % s->ring_cap;
    if (s->ring_n && s->ring_ts[newest] > ts)
        return VIGIL_ENOTFOUND; /* out of order: ignore */
    if (s->ring_n && s->ring_ts[newest] == ts) {
        s->ring_v[newest] = v;
    } else {
        if (s->ring_n == s->ring_cap) {
            if (s->ring_cap >= RING_MAX) {
                s->ring_head = (s->ring_head + 1) % s->ring_cap;
                s->ring_n--;
            } else {
                size_t nc = s->ring_cap * 2;
                int64_t *nt = vigil__malloc(nc * sizeof(int64_t));
                double *nv = vigil__malloc(nc * sizeof(double));
                if (!nt || !nv) {
                    vigil__free(nt);
                    vigil__free(nv);
                    return vigil__error_oom();
                }
                for (size_t i = 0; i < s->ring_n; i++) {
                    nt[i] = s->ring_ts[(s->ring_head + i) % s->ring_cap];
                    nv[i] = s->ring_v[(s->ring_head + i) % s->ring_cap];
                }
                vigil__free(s->ring_ts);
                vigil__free(s->ring_v);
                s->ring_ts = nt;
                s->ring_v = nv;
                s->ring_cap = nc;
                s->ring_head = 0;
            }
        }
        size_t at = (s->ring_head + s->ring_n) % s->ring_cap;
        s->ring_ts[at] = ts;
        s->ring_v[at] = v;
        s->ring_n++;
    }
    if (s->ring_n < 2)
        return VIGIL_ENOTFOUND;
    int64_t t0 = s->ring_ts[s->ring_head];
    double v0 = s->ring_v[s->ring_head];
    *out = (v - v0) / ((double)(ts - t0) / 1000.0);
    return VIGIL_OK;
}

static int save_code_request(pol_series *s, const vigil_policy_verdict *v)
{
    const vigil_action_request *q = &v->request;
    int fail = 0;
    char *act = dup_or_null(q->action, &fail);
    char *tg = dup_or_null(q->target, &fail);
    char *why = dup_or_null(q->reason, &fail);
    size_t np = q->params ? q->nparams : 0;
    char **pk = NULL, **pv = NULL;
    if (np > VIGIL_ACTION_PARAMS_MAX)
        np = VIGIL_ACTION_PARAMS_MAX;
    if (np) {
        pk = vigil__calloc(np, sizeof(char *));
        pv = vigil__calloc(np, sizeof(char *));
        if (!pk || !pv)
            fail = 1;
        for (size_t i = 0; i < np && !fail; i++) {
            pk[i] = dup_or_null(q->params[i].key ? q->params[i].key : "", &fail);
            pv[i] = dup_or_null(q->params[i].value ? q->params[i].value : "", &fail);
        }
    }
    if (fail) {
        vigil__free(act);
        vigil__free(tg);
        vigil__free(why);
        for (size_t i = 0; i < np && pk && pv; i++) {
            vigil__free(pk[i]);
            vigil__free(pv[i]);
        }
        vigil__free(pk);
        vigil__free(pv);
        return vigil__error_oom();
    }
    vigil__free(s->code_action);
    vigil__free(s->code_target);
    vigil__free(s->code_reason);
    for (size_t i = 0; i < s->code_nparams; i++) {
        vigil__free(s->code_pkeys[i]);
        vigil__free(s->code_pvals[i]);
    }
    vigil__free(s->code_pkeys);
    vigil__free(s->code_pvals);
    s->code_action = act;
    s->code_target = tg;
    s->code_reason = why;
    s->code_pkeys = pk;
    s->code_pvals = pv;
    s->code_nparams = np;
    return VIGIL_OK;
}

static void eval_error(vigil_engine *e, const pol_rule *r, const char *what)
{
    e->stats.eval_errors++;
    vigil__log(&e->logger, VIGIL_LOG_WARN, "policy", what, "policy=%s error=\"%s\"", r->name,
               vigil_error_last()->message);
}

static void eval_rule(vigil_engine *e, pol_rule *r, const vigil_metric *m, const char *key,
                      const char *agent, int64_t now)
{
    int64_t aw = r->act_within_ms > 0 ? r->act_within_ms : e->act_within_ms;
    if (m->ts_ms < now - aw) {
        e->stats.stale++;
        return;
    }
    e->stats.evaluations++;
    pol_series *s = vigil__pmap_get(&r->series, key);
    if (!s) {
        s = series_new(e, r, key, m->tags, m->ntags);
        if (!s) {
            eval_error(e, r, "cannot track series");
            return;
        }
        if (r->kind == POL_ABSENT) {
            s->agent = agent ? vigil__strdup(agent) : NULL;
            persist_series(e, s);
        }
    }
    s->last_seen = now;
    if (agent && (!s->agent || strcmp(s->agent, agent) != 0)) {
        char *d = vigil__strdup(agent);
        if (d) {
            vigil__free(s->agent);
            s->agent = d;
        }
    }
    int64_t ts = m->ts_ms;
    eval_info ev;
    memset(&ev, 0, sizeof(ev));
    ev.r = r;
    ev.firing = s->state == ST_FIRING;
    ev.v = NAN;
    ev.last = m->value;
    char *target = NULL;
    int rc;
    switch (r->kind) {
    case POL_ABSENT:
        s->value = m->value;
        s->has_value = 1;
        ev.text = "samples arrive again";
        step(e, s, 0, &ev, ts, now);
        return;
    case POL_THRESHOLD:
    case POL_CHANGE:
        if (r->kind == POL_THRESHOLD)
            rc = vigil__policy_aggregate(e, key, r->agg, r->window_ms, ts, &ev.v);
        else
            rc = change_slope(s, ts, m->value, r->window_ms, &ev.v);
        if (rc == VIGIL_ENOTFOUND)
            return;
        if (rc < 0) {
            eval_error(e, r, "window query failed");
            return;
        }
        ev.lim = ev.firing ? r->clear : r->threshold;
        ev.active = cmp_op(ev.v, r->op, ev.lim);
        break;
    case POL_DESIRED:
        if (expand_target(e, s, &target) < 0)
            return;
        rc = vigil__policy_desired_number(e, target, r->field, &ev.lim);
        if (rc == VIGIL_OK)
            rc = vigil__policy_aggregate(e, key, r->agg, r->window_ms, ts, &ev.v);
        if (rc < 0) {
            if (rc != VIGIL_ENOTFOUND)
                eval_error(e, r, "desired state comparison failed");
            vigil__free(target);
            return;
        }
        ev.target = target;
        ev.active = cmp_op(ev.v, r->op, ev.lim);
        break;
    case POL_ANOMALY: {
        double sd;
        rc = vigil__policy_aggregate(e, key, VIGIL_WINDOW_MEAN, r->window_ms, ts, &ev.mean);
        if (rc == VIGIL_OK)
            rc = vigil__policy_aggregate(e, key, VIGIL_WINDOW_STDDEV, r->window_ms, ts, &sd);
        if (rc == VIGIL_ENOTFOUND)
            return;
        if (rc < 0) {
            eval_error(e, r, "window query failed");
            return;
        }
        ev.z = sd > 0 ? fabs(m->value - ev.mean) / sd : 0.0;
        ev.lim = ev.firing ? r->clear : r->sigma;
        ev.active = ev.z > ev.lim;
        ev.v = m->value;
        break;
    }
    default: {
        vigil_policy_verdict vd;
        memset(&vd, 0, sizeof(vd));
        vd.version = VIGIL_POLICY_VERDICT_VERSION;
        vd.value = NAN;
        vigil_action_request init = VIGIL_ACTION_REQUEST_INIT;
        vd.request = init;
        vigil_policy_ctx ctx = {e, r, key, ts};
        rc = r->type->type->evaluate(r->state, m, &ctx, &vd);
        if (rc < 0) {
            e->stats.policy_errors++;
            vigil__log(&e->logger, VIGIL_LOG_WARN, "policy", "code policy failed",
                       "policy=%s kind=%s code=%d error=\"%s\"", r->name, r->kind_name, rc,
                       vigil_error_last()->message);
            return;
        }
        ev.active = vd.active != 0;
        ev.v = vd.value;
        if (ev.active && save_code_request(s, &vd) < 0) {
            eval_error(e, r, "cannot keep the request of a code policy");
            return;
        }
        ev.code_reason = ev.active ? s->code_reason : NULL;
        break;
    }
    }
    s->value = ev.v;
    s->has_value = isfinite(ev.v);
    step(e, s, ev.active, &ev, ts, now);
    vigil__free(target);
}

static int gather(vigil_engine *e, const pol_bucket *b, const vigil_metric *m, pol_vec *c)
{
    c->n = 0;
    for (size_t i = 0; i < b->nidx; i++) {
        const char *v = metric_tag(m, b->idx[i].key);
        if (!v)
            continue;
        const pol_vec *l = vigil__pmap_get(&b->idx[i].values, v);
        for (size_t j = 0; l && j < l->n; j++)
            if (vec_push(c, l->v[j]) < 0)
                return VIGIL_ENOMEM;
    }
    for (size_t j = 0; j < b->rest.n; j++)
        if (vec_push(c, b->rest.v[j]) < 0)
            return VIGIL_ENOMEM;
    /* load order, so evaluation is deterministic and intuitive */
    for (size_t i = 1; i < c->n; i++)
        for (size_t j = i; j > 0 && c->v[j - 1]->order > c->v[j]->order; j--) {
            pol_rule *t = c->v[j];
            c->v[j] = c->v[j - 1];
            c->v[j - 1] = t;
        }
    (void)e;
    return VIGIL_OK;
}

static void note_agent(vigil_engine *e, const char *agent, int64_t now)
{
    pol_agent *a = vigil__pmap_get(&e->agents, agent);
    if (!a) {
        if (e->agents.n >= 100000)
            return;
        a = vigil__calloc(1, sizeof(*a));
        if (!a || !(a->id = vigil__strdup(agent)) || vigil__pmap_put(&e->agents, a->id, a) < 0) {
            if (a)
                vigil__free(a->id);
            vigil__free(a);
            return;
        }
    }
    a->last = now;
}

int vigil__policy_ingest_locked(vigil_engine *e, const vigil_batch *batch, int64_t now)
{
    size_t n = vigil_batch_count(batch);
    const char *bagent = vigil_batch_agent(batch);
    const char *last_host = NULL;
    pol_vec cands = {NULL, 0, 0};
    if (bagent)
        note_agent(e, bagent, now);
    for (size_t i = 0; i < n; i++) {
        const vigil_metric *m = vigil_batch_get(batch, i);
        e->stats.metrics++;
        const char *agent = bagent;
        if (!agent) {
            agent = metric_tag(m, "host");
            if (agent && (!last_host || strcmp(agent, last_host) != 0)) {
                note_agent(e, agent, now);
                last_host = agent;
            }
        }
        if (m->error)
            continue;
        const pol_bucket *b = vigil__pmap_get(&e->by_metric, m->name);
        if (!b && !e->windows)
            continue;
        if (vigil_metric_series_key(&e->key, m) < 0) {
            e->stats.eval_errors++;
            continue;
        }
        if (e->windows) {
            int rc = vigil_window_set_append(e->windows, e->key.ptr, m->ts_ms, m->value, NULL);
            if (rc < 0 && rc != VIGIL_ERANGE)
                e->stats.eval_errors++;
        }
        if (!b)
            continue;
        if (gather(e, b, m, &cands) < 0) {
            e->stats.eval_errors++;
            continue;
        }
        for (size_t j = 0; j < cands.n; j++)
            if (rule_matches(cands.v[j], m))
                eval_rule(e, cands.v[j], m, e->key.ptr, agent, now);
    }
    vigil__free(cands.v);
    return VIGIL_OK;
}

/* ---- timers -------------------------------------------------------------------------- */

static void absent_check(vigil_engine *e, pol_series *s, int64_t now)
{
    pol_rule *r = s->rule;
    if (s->state == ST_FIRING) {
        if (s->need_act) {
            unsigned int before = s->noted;
            try_act(e, s, now);
            if (before != s->noted || !s->need_act)
                persist_series(e, s);
        }
        return;
    }
    if (now - s->last_seen < r->for_ms)
        return;
    char why[REASON_MAX], b1[32], b2[32];
    const pol_agent *ag = s->agent ? vigil__pmap_get(&e->agents, s->agent) : NULL;
    fmt_dur(b1, sizeof(b1), now - s->last_seen);
    if (!ag || now - ag->last >= r->for_ms) {
        fmt_dur(b2, sizeof(b2), ag ? now - ag->last : now - s->last_seen);
        snprintf(why, sizeof(why), "agent silent: no data from agent %.128s for %s",
                 s->agent ? s->agent : "(unknown)", b2);
    } else {
        snprintf(why, sizeof(why),
                 "series gone: no sample of %.256s for %s while agent %.128s still reports", s->key,
                 b1, s->agent);
    }
    fire(e, s, now, now, why);
}

int vigil__policy_tick_locked(vigil_engine *e, int64_t now)
{
    for (size_t i = 0; i < e->nrules; i++) {
        pol_rule *r = e->rules[i];
        for (size_t j = 0; j < r->nslist; j++) {
            pol_series *s = r->slist[j];
            if (s->flapping)
                flap_settle(e, s, now);
            if (r->kind == POL_ABSENT)
                absent_check(e, s, now);
        }
    }
    /* verification deadlines */
    size_t nexp = 0;
    pol_action **exp = NULL;
    for (size_t i = 0; i < e->actions.cap; i++) {
        pol_action *a = e->actions.e[i].val;
        if (e->actions.e[i].key && a->phase == PH_VERIFY && now >= a->deadline) {
            pol_action **g = vigil__realloc(exp, (nexp + 1) * sizeof(*exp));
            if (!g) {
                vigil__free(exp);
                return vigil__error_oom();
            }
            exp = g;
            exp[nexp++] = a;
        }
    }
    /* oldest first, so decisions come in a stable order */
    for (size_t i = 1; i < nexp; i++)
        for (size_t j = i; j > 0 && strcmp(exp[j - 1]->id, exp[j]->id) > 0; j--) {
            pol_action *t = exp[j];
            exp[j] = exp[j - 1];
            exp[j - 1] = t;
        }
    for (size_t i = 0; i < nexp; i++) {
        pol_action *a = exp[i];
        pol_series *s = a->series;
        char why[REASON_MAX], b1[32];
        fmt_dur(b1, sizeof(b1), s->rule->verify_ms);
        snprintf(why, sizeof(why), "no recovery within %s after %s succeeded", b1, a->action);
        decide(e, s->rule, s, a->target, a->action, a->id, "ineffective", why, now);
        pol_rule *r = s->rule;
        if (a->esc < (int)r->nescalate) {
            const char *next = r->escalate[a->esc];
            snprintf(why, sizeof(why), "%s was ineffective; escalating to %s", a->action, next);
            const pol_silence *sil = vigil__policy_silenced(e, r, s, a->target, now);
            if (sil) {
                char w2[REASON_MAX];
                snprintf(w2, sizeof(w2), "silence %s", sil->id);
                decide(e, r, s, a->target, next, NULL, "silenced", w2, now);
            } else {
                request(e, s, next, a->target, a->esc + 1, "escalated", why, now);
            }
        }
        act_settle(e, a);
    }
    vigil__free(exp);
    return VIGIL_OK;
}

/* ---- closed loop ------------------------------------------------------------------ */

static int action_result_locked(vigil_engine *e, const vigil_action_result *res, int64_t now)
{
    pol_action *a = vigil__pmap_get(&e->actions, res->id);
    if (!a)
        return vigil__error_set(VIGIL_ENOTFOUND,
                                "action \"%.128s\" is not awaited by the policy engine", res->id);
    pol_series *s = a->series;
    pol_rule *r = s->rule;
    char why[REASON_MAX];
    const char *st = vigil_action_status_name(res->status);
    switch (res->status) {
    case VIGIL_ACTION_SUCCEEDED:
        a->phase = PH_VERIFY;
        a->deadline = now + r->verify_ms;
        persist_action(e, a);
        break;
    case VIGIL_ACTION_PENDING_APPROVAL:
        a->phase = PH_APPROVAL;
        persist_action(e, a);
        vigil__log(&e->logger, VIGIL_LOG_INFO, "policy", "action waits for approval",
                   "policy=%s action_id=%s", r->name, a->id);
        break;
    case VIGIL_ACTION_FAILED:
    case VIGIL_ACTION_TIMEOUT:
    case VIGIL_ACTION_REFUSED:
        snprintf(why, sizeof(why), "%s%s%.200s", st, res->reason ? ": " : "",
                 res->reason ? res->reason : "");
        decide(e, r, s, a->target, a->action, a->id, "action_failed", why, now);
        if (res->status != VIGIL_ACTION_REFUSED && a->esc < (int)r->nescalate) {
            const char *next = r->escalate[a->esc];
            snprintf(why, sizeof(why), "%s %s; escalating to %s", a->action, st, next);
            const pol_silence *sil = vigil__policy_silenced(e, r, s, a->target, now);
            if (sil) {
                char w2[REASON_MAX];
                snprintf(w2, sizeof(w2), "silence %s", sil->id);
                decide(e, r, s, a->target, next, NULL, "silenced", w2, now);
            } else {
                request(e, s, next, a->target, a->esc + 1, "escalated", why, now);
            }
        }
        act_settle(e, a);
        break;
    default: /* dry run: nothing was done, nothing to verify */
        vigil__log(&e->logger, VIGIL_LOG_INFO, "policy", "action was a dry run",
                   "policy=%s action_id=%s", r->name, a->id);
        act_settle(e, a);
        break;
    }
    return VIGIL_OK;
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
    if (!s && !(s = series_new(e, r, skey, tv, nt)))
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
    return VIGIL_OK;
}

static int restore_target(pol_rule *r, const char *target, const cJSON *o)
{
    pol_target *t = target_get(r, target);
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
        a->id = dup_or_null(id, &fail);
        a->action = dup_or_null(act, &fail);
        a->target = dup_or_null(tg, &fail);
        a->series = s;
        a->esc = (int)jint(o, "esc");
        a->phase = (int)jint(o, "ph");
        a->deadline = jint(o, "dl");
    }
    if (fail || act_attach(e, s, a) < 0) {
        if (a)
            action_free(a);
        return vigil__error_oom();
    }
    return VIGIL_OK;
}

static int restore_rule(vigil_engine *e, pol_rule *r, int64_t now)
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

/* ---- index ----------------------------------------------------------------------- */

static pol_bucket *bucket_get(vigil_engine *e, const char *metric)
{
    pol_bucket *b = vigil__pmap_get(&e->by_metric, metric);
    if (b)
        return b;
    b = vigil__calloc(1, sizeof(*b));
    if (!b || !(b->metric = vigil__strdup(metric)) ||
        vigil__pmap_put(&e->by_metric, b->metric, b) < 0) {
        if (b)
            vigil__free(b->metric);
        vigil__free(b);
        vigil__error_oom();
        return NULL;
    }
    return b;
}

static const pol_matcher *exact_matcher(const pol_rule *r)
{
    for (size_t i = 0; i < r->nmatch; i++)
        if (!r->match[i].glob)
            return &r->match[i];
    return NULL;
}

static int index_add(vigil_engine *e, pol_rule *r)
{
    pol_bucket *b = bucket_get(e, r->metric);
    if (!b)
        return VIGIL_ENOMEM;
    const pol_matcher *pm = exact_matcher(r);
    if (!pm)
        return vec_push(&b->rest, r) < 0 ? vigil__error_oom() : VIGIL_OK;
    pol_index *ix = NULL;
    for (size_t i = 0; i < b->nidx && !ix; i++)
        if (strcmp(b->idx[i].key, pm->key) == 0)
            ix = &b->idx[i];
    if (!ix) {
        pol_index *ni = vigil__realloc(b->idx, (b->nidx + 1) * sizeof(*ni));
        if (!ni)
            return vigil__error_oom();
        b->idx = ni;
        ix = &b->idx[b->nidx];
        memset(ix, 0, sizeof(*ix));
        if (!(ix->key = vigil__strdup(pm->key)))
            return vigil__error_oom();
        b->nidx++;
    }
    pol_vec *l = vigil__pmap_get(&ix->values, pm->value);
    if (!l) {
        l = vigil__calloc(1, sizeof(*l));
        if (!l)
            return vigil__error_oom();
        /* the key is the value string of the first rule; copy so it outlives rules */
        char *k = vigil__strdup(pm->value);
        if (!k || vigil__pmap_put(&ix->values, k, l) < 0) {
            vigil__free(k);
            vigil__free(l);
            return vigil__error_oom();
        }
    }
    return vec_push(l, r) < 0 ? vigil__error_oom() : VIGIL_OK;
}

static void index_remove(vigil_engine *e, pol_rule *r)
{
    pol_bucket *b = vigil__pmap_get(&e->by_metric, r->metric);
    if (!b)
        return;
    const pol_matcher *pm = exact_matcher(r);
    if (!pm) {
        vec_remove(&b->rest, r);
        return;
    }
    for (size_t i = 0; i < b->nidx; i++)
        if (strcmp(b->idx[i].key, pm->key) == 0) {
            pol_vec *l = vigil__pmap_get(&b->idx[i].values, pm->value);
            if (l)
                vec_remove(l, r);
        }
}

static void bucket_free(pol_bucket *b)
{
    for (size_t i = 0; i < b->nidx; i++) {
        pol_index *ix = &b->idx[i];
        for (size_t j = 0; j < ix->values.cap; j++)
            if (ix->values.e[j].key) {
                pol_vec *l = ix->values.e[j].val;
                vigil__free((char *)ix->values.e[j].key);
                vigil__free(l->v);
                vigil__free(l);
            }
        vigil__pmap_dispose(&ix->values);
        vigil__free(ix->key);
    }
    vigil__free(b->idx);
    vigil__free(b->rest.v);
    vigil__free(b->metric);
    vigil__free(b);
}

int vigil__policy_commit_rules(vigil_engine *e, pol_rule **rules, size_t n)
{
    int rc = VIGIL_OK;
    size_t done = 0;
    int64_t now = e->replaying ? e->replay_now : clock_now(e);
    if (e->nrules + n > e->caprules &&
        vigil__array_grow((void **)&e->rules, &e->caprules, e->nrules + n, sizeof(*e->rules)) < 0)
        return VIGIL_ENOMEM;
    for (; done < n; done++) {
        pol_rule *r = rules[done];
        r->order = e->nrules + done;
        if ((rc = vigil__pmap_put(&e->by_name, r->name, r)) < 0)
            break;
        if ((rc = index_add(e, r)) < 0) {
            index_remove(e, r);
            vigil__pmap_del(&e->by_name, r->name);
            break;
        }
        if ((rc = restore_rule(e, r, now)) < 0) {
            index_remove(e, r);
            vigil__pmap_del(&e->by_name, r->name);
            rule_state_free(e, r);
            break;
        }
    }
    if (rc < 0) {
        while (done > 0) {
            pol_rule *r = rules[--done];
            index_remove(e, r);
            vigil__pmap_del(&e->by_name, r->name);
            rule_state_free(e, r);
        }
        return rc;
    }
    for (size_t i = 0; i < n; i++)
        e->rules[e->nrules++] = rules[i];
    e->stats.policies = e->nrules;
    return VIGIL_OK;
}

/* ---- public: lifecycle ---------------------------------------------------------- */

int vigil_engine_options_init(vigil_engine_options *opts, unsigned int version)
{
    if (!opts)
        return vigil__error_set(VIGIL_EINVAL, "engine options: NULL");
    if (version != VIGIL_ENGINE_OPTIONS_VERSION)
        return vigil__error_set(VIGIL_EINVAL, "engine options: version %u is not supported",
                                version);
    vigil_engine_options d = VIGIL_ENGINE_OPTIONS_INIT;
    *opts = d;
    return VIGIL_OK;
}

static int load_seq(vigil_engine *e)
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

int vigil_engine_new(vigil_engine **out, const vigil_engine_options *opts)
{
    if (!out)
        return vigil__error_set(VIGIL_EINVAL, "engine: NULL argument");
    *out = NULL;
    if (!opts)
        return vigil__error_set(VIGIL_EINVAL, "engine: options are required (a store)");
    if (opts->version == 0 || opts->version > VIGIL_ENGINE_OPTIONS_VERSION)
        return vigil__error_set(VIGIL_EINVAL, "engine options: version %u is not supported",
                                opts->version);
    if (!opts->store)
        return vigil__error_set(VIGIL_EINVAL, "engine: options.store is required");
    if (opts->act_within_ms < 0)
        return vigil__error_set(VIGIL_EINVAL, "engine: act_within_ms must not be negative");
    vigil_engine *e = vigil__calloc(1, sizeof(*e));
    if (!e)
        return vigil__error_oom();
    if (pthread_mutex_init(&e->mu, NULL) != 0) {
        vigil__free(e);
        return vigil__error_set(VIGIL_ERROR, "engine: cannot create a mutex");
    }
    e->o = *opts;
    e->logger = opts->logger;
    e->act_within_ms = opts->act_within_ms ? opts->act_within_ms : VIGIL_POLICY_ACT_WITHIN_DEFAULT;
    e->out_tail = &e->out_head;
    e->stats.version = VIGIL_ENGINE_STATS_VERSION;
    int rc = VIGIL_OK;
    if (!opts->aggregate) {
        vigil_window_set_options wo = opts->windows;
        if (wo.version == 0)
            wo.version = VIGIL_WINDOW_SET_OPTIONS_VERSION;
        if (wo.window.version == 0)
            wo.window.version = VIGIL_WINDOW_OPTIONS_VERSION;
        e->window_max_age =
            wo.window.max_age_ms ? wo.window.max_age_ms : VIGIL_WINDOW_DEFAULT_MAX_AGE_MS;
        rc = vigil_window_set_new(&e->windows, &wo);
    }
    if (rc >= 0)
        rc = load_seq(e);
    if (rc >= 0)
        rc = vigil__policy_silences_load(e);
    if (rc < 0) {
        vigil_engine_free(e);
        return rc;
    }
    *out = e;
    return VIGIL_OK;
}

void vigil_engine_free(vigil_engine *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->nrules; i++) {
        rule_state_free(e, e->rules[i]);
        vigil__policy_rule_free(e->rules[i]);
    }
    vigil__free(e->rules);
    for (size_t i = 0; i < e->by_metric.cap; i++)
        if (e->by_metric.e[i].key)
            bucket_free(e->by_metric.e[i].val);
    vigil__pmap_dispose(&e->by_metric);
    vigil__pmap_dispose(&e->by_name);
    vigil__pmap_dispose(&e->actions);
    for (size_t i = 0; i < e->agents.cap; i++)
        if (e->agents.e[i].key) {
            pol_agent *a = e->agents.e[i].val;
            vigil__free(a->id);
            vigil__free(a);
        }
    vigil__pmap_dispose(&e->agents);
    vigil__policy_desired_free(e);
    vigil__policy_silences_free(e);
    for (size_t i = 0; i < e->ntypes; i++) {
        if (e->types[i].type->payload_free)
            e->types[i].type->payload_free(e->types[i].payload);
        vigil__free(e->types[i].kind);
    }
    vigil__free(e->types);
    vigil_window_set_free(e->windows);
    while (e->out_head) {
        pol_out *n = e->out_head->next;
        out_free(e->out_head);
        e->out_head = n;
    }
    vigil_buf_dispose(&e->key);
    vigil_buf_dispose(&e->tmp);
    vigil_buf_dispose(&e->tmp2);
    pthread_mutex_destroy(&e->mu);
    vigil__free(e);
}

int vigil_engine_register_type(vigil_engine *e, const char *kind, const vigil_policy_type *type,
                               void *payload)
{
    int rc = VIGIL_OK;
    if (!e || !kind || !type) {
        rc = vigil__error_set(VIGIL_EINVAL, "register_type: NULL argument");
        goto fail;
    }
    if (type->version == 0 || type->version > VIGIL_POLICY_TYPE_VERSION) {
        rc = vigil__error_set(VIGIL_EVERSION, "policy type %.64s: version %u is not supported",
                              kind, type->version);
        goto fail;
    }
    if (!type->create || !type->evaluate || !type->destroy) {
        rc = vigil__error_set(VIGIL_EINVAL,
                              "policy type %.64s: create, evaluate and destroy "
                              "are required",
                              kind);
        goto fail;
    }
    size_t n = strlen(kind);
    int ok = n > 0 && n <= 64 && kind[0] >= 'a' && kind[0] <= 'z';
    for (size_t i = 0; i < n && ok; i++)
        ok = (kind[i] >= 'a' && kind[i] <= 'z') || (kind[i] >= '0' && kind[i] <= '9') ||
             kind[i] == '_';
    if (!ok) {
        rc = vigil__error_set(VIGIL_ENAME,
                              "policy kind \"%.64s\": expected [a-z][a-z0-9_]*, at "
                              "most 64 bytes",
                              kind);
        goto fail;
    }
    static const char *const builtin[] = {"threshold", "absent", "change", "desired", "anomaly"};
    for (size_t i = 0; i < VIGIL__ARRAY_LEN(builtin); i++)
        if (strcmp(kind, builtin[i]) == 0) {
            rc = vigil__error_set(VIGIL_EEXISTS, "policy kind \"%s\" is built in", kind);
            goto fail;
        }
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < e->ntypes && rc == VIGIL_OK; i++)
        if (strcmp(e->types[i].kind, kind) == 0)
            rc = vigil__error_set(VIGIL_EEXISTS, "policy kind \"%s\" is already registered", kind);
    if (rc == VIGIL_OK && e->ntypes == e->captypes &&
        vigil__array_grow((void **)&e->types, &e->captypes, e->ntypes + 1, sizeof(*e->types)) < 0)
        rc = VIGIL_ENOMEM;
    if (rc == VIGIL_OK) {
        char *k = vigil__strdup(kind);
        if (!k) {
            rc = vigil__error_oom();
        } else {
            pol_type_reg reg = {k, type, payload};
            e->types[e->ntypes++] = reg;
        }
    }
    pthread_mutex_unlock(&e->mu);
    if (rc == VIGIL_OK)
        return rc;
fail:
    if (type && type->payload_free)
        type->payload_free(payload);
    return rc;
}

int vigil_engine_load(vigil_engine *e, const vigil_config_node *policies)
{
    if (!e)
        return vigil__error_set(VIGIL_EINVAL, "engine_load: NULL engine");
    pol_rule **rules = NULL;
    size_t n = 0;
    pthread_mutex_lock(&e->mu);
    int rc = vigil__policy_parse_rules(e, policies, 1, &rules, &n);
    if (rc >= 0 && n)
        rc = vigil__policy_commit_rules(e, rules, n);
    if (rc < 0)
        for (size_t i = 0; i < n; i++)
            vigil__policy_rule_free(rules[i]);
    pthread_mutex_unlock(&e->mu);
    vigil__free(rules);
    return rc;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int yaml_name(const char *n)
{
    size_t l = strlen(n);
    if (n[0] == '.')
        return 0;
    return (l > 5 && strcmp(n + l - 5, ".yaml") == 0) || (l > 4 && strcmp(n + l - 4, ".yml") == 0);
}

/* Parsed rules not yet committed. */
typedef struct rule_list {
    pol_rule **v;
    size_t n, cap;
} rule_list;

static void rule_list_dispose(rule_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        vigil__policy_rule_free(l->v[i]);
    vigil__free(l->v);
    memset(l, 0, sizeof(*l));
}

/* Moves the n rules of @p rules (an array it frees) to the end of @p all,
 * refusing a name already in @p all at the rule's file:line. On failure the
 * rules not moved are freed. */
static int rule_list_take(rule_list *all, pol_rule **rules, size_t n)
{
    int rc = VIGIL_OK;
    for (size_t j = 0; j < n; j++) {
        for (size_t k = 0; k < all->n && rc >= 0; k++)
            if (strcmp(all->v[k]->name, rules[j]->name) == 0)
                rc = vigil__error_set_at(VIGIL_EEXISTS, rules[j]->file, rules[j]->line, 1,
                                         "a policy named \"%s\" already exists", rules[j]->name);
        if (rc >= 0 && all->n + 1 > VIGIL_POLICY_MAX_RULES)
            rc = vigil__error_set_at(VIGIL_ELIMIT, rules[j]->file, rules[j]->line, 1,
                                     "more than %d policies", VIGIL_POLICY_MAX_RULES);
        if (rc >= 0 && all->n == all->cap &&
            vigil__array_grow((void **)&all->v, &all->cap, all->n + 1, sizeof(*all->v)) < 0)
            rc = VIGIL_ENOMEM;
        if (rc < 0) {
            for (size_t k = j; k < n; k++)
                vigil__policy_rule_free(rules[k]);
            break;
        }
        all->v[all->n++] = rules[j];
    }
    vigil__free(rules);
    return rc;
}

/* Parses every policy file of @p dir, in name order, appending to @p all.
 * Called with the lock held. */
static int collect_dir(vigil_engine *e, const char *dir, const vigil_config_options *copts,
                       int check_loaded, rule_list *all)
{
    DIR *d = opendir(dir);
    if (!d)
        return vigil__error_set(VIGIL_EIO, "%s: cannot open policies directory: %s", dir,
                                strerror(errno));
    char **names = NULL;
    size_t nn = 0, cap = 0;
    int rc = VIGIL_OK;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!yaml_name(de->d_name))
            continue;
        if (nn >= 10000) {
            rc = vigil__error_set(VIGIL_ELIMIT, "%s: more than 10000 policy files", dir);
            break;
        }
        if (nn == cap && vigil__array_grow((void **)&names, &cap, nn + 1, sizeof(char *)) < 0) {
            rc = VIGIL_ENOMEM;
            break;
        }
        if (!(names[nn] = vigil__strdup(de->d_name))) {
            rc = vigil__error_oom();
            break;
        }
        nn++;
    }
    closedir(d);
    if (nn > 1)
        qsort(names, nn, sizeof(char *), name_cmp);
    vigil_config **cfgs = nn ? vigil__calloc(nn, sizeof(*cfgs)) : NULL;
    if (nn && !cfgs && rc >= 0)
        rc = vigil__error_oom();
    vigil_buf path = VIGIL_BUF_INIT;
    static const char *const top_keys[] = {"policies", NULL};
    for (size_t i = 0; i < nn && rc >= 0; i++) {
        vigil__buf_clear(&path);
        if ((rc = vigil__buf_printf(&path, "%s/%s", dir, names[i])) < 0)
            break;
        if ((rc = vigil_config_load_file(&cfgs[i], path.ptr, copts)) < 0)
            break;
        for (size_t doc = 0; doc < vigil_config_document_count(cfgs[i]) && rc >= 0; doc++) {
            const vigil_config_node *root = vigil_config_root(cfgs[i], doc);
            if (vigil_config_node_kind(root) == VIGIL_CONFIG_NULL)
                continue;
            if ((rc = vigil_config_map(root)) < 0 ||
                (rc = vigil_config_expect_keys(root, top_keys)) < 0)
                break;
            pol_rule **rules = NULL;
            size_t n = 0;
            if ((rc = vigil__policy_parse_rules(e, vigil_config_node_get(root, "policies"),
                                                check_loaded, &rules, &n)) < 0)
                break;
            rc = rule_list_take(all, rules, n);
        }
    }
    for (size_t i = 0; i < nn; i++) {
        if (cfgs)
            vigil_config_free(cfgs[i]);
        vigil__free(names[i]);
    }
    vigil__free(cfgs);
    vigil__free(names);
    vigil_buf_dispose(&path);
    return rc;
}

int vigil_engine_load_dir(vigil_engine *e, const char *dir, const vigil_config_options *copts)
{
    if (!e || !dir)
        return vigil__error_set(VIGIL_EINVAL, "engine_load_dir: NULL argument");
    rule_list all = {NULL, 0, 0};
    pthread_mutex_lock(&e->mu);
    int rc = collect_dir(e, dir, copts, 1, &all);
    if (rc >= 0 && all.n)
        rc = vigil__policy_commit_rules(e, all.v, all.n);
    if (rc < 0)
        rule_list_dispose(&all);
    pthread_mutex_unlock(&e->mu);
    vigil__free(all.v);
    return rc;
}

/* ---- public: replacing the rule set ---------------------------------------------- */

/* Deletes the persisted state of a rule (every key under "policy/<name>/"). */
static int key_cb(const char *key, const void *value, size_t len, void *payload)
{
    (void)value;
    (void)len;
    return restore_cb(key, "", 0, payload);
}

static void unpersist_rule(vigil_engine *e, const char *name)
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
        persist_fail(e, "removed policy", prefix.ptr ? prefix.ptr : name);
    for (size_t i = 0; i < c.n; i++) {
        vigil__free(c.v[i].key);
        vigil__free(c.v[i].val);
    }
    vigil__free(c.v);
    vigil_buf_dispose(&prefix);
}

static void buckets_free(vigil__pmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->e[i].key)
            bucket_free(m->e[i].val);
    vigil__pmap_dispose(m);
}

/* Swaps the engine's rules for the parsed @p nr (all of them, or on failure
 * none: the engine is left as it was and nr stays the caller's). Called with
 * the lock held. */
static int replace_locked(vigil_engine *e, pol_rule **nr, size_t n, vigil_engine_reload_result *res)
{
    int64_t now = e->replaying ? e->replay_now : clock_now(e);
    pol_rule **next = vigil__calloc(n ? n : 1, sizeof(*next));
    unsigned char *kept = vigil__calloc(n ? n : 1, 1);
    vigil__pmap names = {NULL, 0, 0};
    vigil__pmap old_metric = e->by_metric;
    size_t added = 0, changed = 0;
    int rc = next && kept ? VIGIL_OK : vigil__error_oom();
    memset(&e->by_metric, 0, sizeof(e->by_metric));
    for (size_t i = 0; i < n && rc >= 0; i++) {
        pol_rule *old = vigil__pmap_get(&e->by_name, nr[i]->name);
        kept[i] = old && strcmp(old->def, nr[i]->def) == 0;
        next[i] = kept[i] ? old : nr[i];
        if (!kept[i]) {
            if (old)
                changed++;
            else
                added++;
        }
        if ((rc = vigil__pmap_put(&names, next[i]->name, next[i])) < 0)
            break;
        rc = index_add(e, next[i]);
    }
    /* rules new by name restore what a previous run persisted; a changed
     * rule starts fresh (its old state is deleted below) */
    for (size_t i = 0; i < n && rc >= 0; i++)
        if (!kept[i] && !vigil__pmap_get(&e->by_name, nr[i]->name))
            rc = restore_rule(e, nr[i], now);
    if (rc < 0) {
        for (size_t i = 0; i < n && kept; i++)
            if (!kept[i])
                rule_state_free(e, nr[i]);
        buckets_free(&e->by_metric);
        e->by_metric = old_metric;
        vigil__pmap_dispose(&names);
        vigil__free(next);
        vigil__free(kept);
        return rc;
    }
    /* committed from here on: nothing below fails */
    size_t removed = 0;
    for (size_t i = 0; i < e->nrules; i++) {
        pol_rule *old = e->rules[i];
        if (vigil__pmap_get(&names, old->name) == old)
            continue;
        if (!vigil__pmap_get(&names, old->name))
            removed++;
        unpersist_rule(e, old->name);
        rule_state_free(e, old);
        vigil__policy_rule_free(old);
    }
    for (size_t i = 0; i < n; i++) {
        if (kept[i]) {
            /* the rule may have moved: keep its state, take its new place */
            pol_rule *old = next[i];
            char *f = old->file;
            old->file = nr[i]->file;
            nr[i]->file = f;
            old->line = nr[i]->line;
            vigil__policy_rule_free(nr[i]);
        }
        next[i]->order = i;
    }
    buckets_free(&old_metric);
    vigil__pmap_dispose(&e->by_name);
    e->by_name = names;
    vigil__free(e->rules);
    e->rules = next;
    e->nrules = e->caprules = n;
    if (!n) {
        vigil__free(e->rules);
        e->rules = NULL;
        e->caprules = 0;
    }
    e->stats.policies = n;
    vigil__free(kept);
    if (res) {
        res->added = added;
        res->changed = changed;
        res->removed = removed;
        res->kept = n - added - changed;
    }
    return VIGIL_OK;
}

int vigil_engine_replace(vigil_engine *e, const vigil_config_node *policies, const char *dir,
                         const vigil_config_options *copts, vigil_engine_reload_result *result)
{
    if (!e)
        return vigil__error_set(VIGIL_EINVAL, "engine_replace: NULL engine");
    if (result && (result->version == 0 || result->version > VIGIL_ENGINE_RELOAD_RESULT_VERSION))
        return vigil__error_set(
            VIGIL_EVERSION, "engine_replace: result version %u is not supported", result->version);
    rule_list all = {NULL, 0, 0};
    pol_rule **rules = NULL;
    size_t n = 0;
    pthread_mutex_lock(&e->mu);
    int rc = vigil__policy_parse_rules(e, policies, 0, &rules, &n);
    if (rc >= 0)
        rc = rule_list_take(&all, rules, n);
    if (rc >= 0 && dir && *dir)
        rc = collect_dir(e, dir, copts, 0, &all);
    if (rc >= 0)
        rc = replace_locked(e, all.v, all.n, result);
    if (rc < 0)
        rule_list_dispose(&all);
    pthread_mutex_unlock(&e->mu);
    vigil__free(all.v);
    return rc;
}

/* ---- public: running ---------------------------------------------------------------- */

int vigil_engine_ingest(vigil_engine *e, const vigil_batch *batch)
{
    if (!e || !batch)
        return vigil__error_set(VIGIL_EINVAL, "engine_ingest: NULL argument");
    int64_t now = clock_now(e);
    pthread_mutex_lock(&e->mu);
    if (e->replaying)
        now = e->replay_now;
    int rc = vigil__policy_ingest_locked(e, batch, now);
    pthread_mutex_unlock(&e->mu);
    vigil__policy_flush(e);
    return rc;
}

int vigil_engine_tick(vigil_engine *e, int64_t now_ms)
{
    if (!e)
        return vigil__error_set(VIGIL_EINVAL, "engine_tick: NULL engine");
    int64_t now = now_ms > 0 ? now_ms : clock_now(e);
    pthread_mutex_lock(&e->mu);
    int rc = vigil__policy_tick_locked(e, now);
    pthread_mutex_unlock(&e->mu);
    vigil__policy_flush(e);
    return rc;
}

int vigil_engine_action_result(vigil_engine *e, const vigil_action_result *result)
{
    if (!e || !result || !result->id)
        return vigil__error_set(VIGIL_EINVAL, "engine_action_result: NULL argument or id");
    int64_t now = clock_now(e);
    pthread_mutex_lock(&e->mu);
    if (e->replaying)
        now = e->replay_now;
    int rc = action_result_locked(e, result, now);
    pthread_mutex_unlock(&e->mu);
    vigil__policy_flush(e);
    return rc;
}

int vigil_engine_stats_get(vigil_engine *e, vigil_engine_stats *out)
{
    if (!e || !out)
        return vigil__error_set(VIGIL_EINVAL, "engine_stats: NULL argument");
    if (out->version == 0 || out->version > VIGIL_ENGINE_STATS_VERSION)
        return vigil__error_set(VIGIL_EVERSION, "engine_stats: version %u is not supported",
                                out->version);
    pthread_mutex_lock(&e->mu);
    vigil_engine_stats s = e->stats;
    pthread_mutex_unlock(&e->mu);
    s.version = out->version;
    *out = s;
    return VIGIL_OK;
}

const char *vigil__policy_state_name(const pol_series *s)
{
    return s->flapping ? "flapping" : state_names[s->state];
}
