/*
 * The policy engine: the state machine per (policy, series), guards
 * (silences, flap damping, cooldown, budget), the closed loop (verification,
 * escalation), and the call-outs queued under the lock and run after it. The
 * rule index is in index.c, persisted state in persist.c, loading and
 * replacing the rule set in reload.c.
 */
#include "internal/json.h"
#include "policy/policy_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define RING_MAX                               4096
#define SERIES_PER_RULE                        100000
#define REASON_MAX                             512
#define VIGIL__POLICY_SERIES_IDLE_DEFAULT      (3600 * 1000)
#define VIGIL__POLICY_SERIES_PER_AGENT_DEFAULT 10000

/* Series each agent added to a rule: the map's values own their keys. */
typedef struct agent_cnt {
    char *agent;
    size_t n;
} agent_cnt;

static const char *const state_names[] = {"ok", "pending", "firing", "resolved"};

/* ---- small helpers ------------------------------------------------------------- */

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
    if (ms <= 0) /* with its unit in a reason: "0ms", not the config format's "0" */
        snprintf(b, n, "0ms");
    else if (vigil_scalar_format_duration(b, n, ms) < 0)
        snprintf(b, n, "%lldms", (long long)ms);
}

/* "in 7s (at 2024-11-26T19:40:08.123Z)": when a held-back request is sent. */
static void fmt_when(char *b, size_t n, int64_t now, int64_t at)
{
    char d[32];
    struct tm tm;
    time_t secs = (time_t)(at / 1000);
    fmt_dur(d, sizeof(d), at - now);
    if (at >= 0 && gmtime_r(&secs, &tm))
        snprintf(b, n, "in %s (at %04d-%02d-%02dT%02d:%02d:%02d.%03dZ)", d, tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(at % 1000));
    else
        snprintf(b, n, "in %s", d);
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

char *vigil__policy_dup_or_null(const char *s, int *fail)
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

/* ---- decisions ----------------------------------------------------------------- */

static void decide(vigil_engine *e, const pol_rule *r, const pol_series *s, const char *target,
                   const char *action, const char *action_id, const char *kind, const char *reason,
                   int64_t now)
{
    vigil_store_decision d = {0,         now,  r->name, s ? s->key : NULL, target, action,
                              action_id, kind, reason};
    int64_t id = 0;
    int rc = vigil_store_decision_append(e->o.store, &d, &id);
    /* the target may come from an agent's tag values: escaped as logfmt */
    vigil_buf f = VIGIL_BUF_INIT;
    if (vigil_log_field(&f, "policy", r->name) == VIGIL_OK &&
        vigil_log_field(&f, "decision", kind) == VIGIL_OK &&
        vigil_log_field(&f, "target", target ? target : "") == VIGIL_OK &&
        vigil_log_field(&f, "action_id", action_id ? action_id : "") == VIGIL_OK)
        vigil__log(&e->logger, rc < 0 ? VIGIL_LOG_ERROR : VIGIL_LOG_INFO, "policy",
                   rc < 0 ? "cannot record decision" : "decision", "%s", f.ptr + 1);
    vigil_buf_dispose(&f);
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
    d.policy = o->strs[0] = vigil__policy_dup_or_null(r->name, &fail);
    d.series = o->strs[1] = vigil__policy_dup_or_null(d.series, &fail);
    d.target = o->strs[2] = vigil__policy_dup_or_null(target, &fail);
    d.action = o->strs[3] = vigil__policy_dup_or_null(action, &fail);
    d.action_id = o->strs[4] = vigil__policy_dup_or_null(action_id, &fail);
    d.decision = o->strs[5] = vigil__policy_dup_or_null(kind, &fail);
    d.reason = o->strs[6] = vigil__policy_dup_or_null(reason, &fail);
    o->d = d;
    if (fail) {
        out_free(o);
        e->stats.eval_errors++;
        return;
    }
    out_push(e, o);
}

/* The target a decision without a request of its own names: that of the
 * series' latest request, else the rule's target template rendered for the
 * series; NULL when the template names a tag the series lacks (or out of
 * memory). The caller frees it. */
static char *series_target(const pol_series *s)
{
    if (s->nacts)
        return vigil__strdup(s->acts[s->nacts - 1]->target);
    const char *tmpl = s->code_target ? s->code_target : s->rule->target;
    const char *miss = NULL;
    size_t ml = 0;
    vigil_buf b = VIGIL_BUF_INIT;
    char *out = NULL;
    if (vigil__policy_expand(&b, tmpl, s, NULL, &miss, &ml) == VIGIL_OK)
        out = vigil__buf_detach(&b);
    vigil_buf_dispose(&b);
    return out;
}

/* ---- series, targets, actions ---------------------------------------------------- */

void vigil__policy_action_free(pol_action *a)
{
    vigil__free(a->id);
    vigil__free(a->action);
    vigil__free(a->target);
    vigil__free(a);
}

/* Frees the request a policy type's code gave a series (any part may be NULL;
 * pk and pv hold np strings each). */
static void code_free(char *act, char *tg, char *why, char **pk, char **pv, size_t np)
{
    vigil__free(act);
    vigil__free(tg);
    vigil__free(why);
    for (size_t i = 0; i < np; i++) {
        vigil__free(pk ? pk[i] : NULL);
        vigil__free(pv ? pv[i] : NULL);
    }
    vigil__free(pk);
    vigil__free(pv);
}

static void series_free(pol_series *s)
{
    vigil__free(s->owner);
    vigil__free(s->key);
    for (size_t i = 0; i < s->ntags; i++) {
        vigil__free(s->tag_keys[i]);
        vigil__free(s->tag_vals[i]);
    }
    vigil__free(s->tag_keys);
    vigil__free(s->tag_vals);
    vigil__free(s->agent);
    vigil__free(s->reason);
    vigil__free(s->retry);
    vigil__free(s->flap_ts);
    vigil__free(s->ring_ts);
    vigil__free(s->ring_v);
    code_free(s->code_action, s->code_target, s->code_reason, s->code_pkeys, s->code_pvals,
              s->code_nparams);
    for (size_t i = 0; i < s->nacts; i++)
        vigil__policy_action_free(s->acts[i]);
    vigil__free(s->acts);
    vigil__free(s);
}

/* Frees what a rule holds at run time (series, targets, their actions). */
void vigil__policy_rule_state_free(vigil_engine *e, pol_rule *r)
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
    for (size_t i = 0; i < r->per_agent.cap; i++)
        if (r->per_agent.e[i].key) {
            agent_cnt *c = r->per_agent.e[i].val;
            vigil__free(c->agent);
            vigil__free(c);
        }
    vigil__pmap_dispose(&r->per_agent);
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

/* A cap reached: counted, logged and recorded as a `capped` decision at
 * most once a minute per rule, never silence. */
static void capped(vigil_engine *e, pol_rule *r, const char *key, const char *target,
                   const char *why, int64_t now)
{
    e->stats.series_refused++;
    if (r->capped_noted && now - r->capped_noted < 60000)
        return;
    r->capped_noted = now;
    char reason[REASON_MAX];
    snprintf(reason, sizeof(reason),
             "%s; new series are not tracked (%llu refused so far), first refused: %.200s", why,
             (unsigned long long)e->stats.series_refused, key);
    vigil_buf k = VIGIL_BUF_INIT;
    if (vigil__logfmt_value(&k, key) == VIGIL_OK)
        vigil__log(&e->logger, VIGIL_LOG_WARN, "policy", "series cap reached; new series refused",
                   "policy=%s series=%s refused=%llu", r->name, k.ptr,
                   (unsigned long long)e->stats.series_refused);
    vigil_buf_dispose(&k);
    /* every decision names its series and target: the refused series, and
     * the agent that sent it (or "") */
    pol_series one;
    memset(&one, 0, sizeof(one));
    one.key = (char *)(uintptr_t)key;
    decide(e, r, &one, target, r->action, NULL, "capped", reason, now);
}

static size_t agent_count(const pol_rule *r, const char *agent)
{
    const agent_cnt *c = vigil__pmap_get(&r->per_agent, agent);
    return c ? c->n : 0;
}

static int agent_count_add(pol_rule *r, const char *agent)
{
    agent_cnt *c = vigil__pmap_get(&r->per_agent, agent);
    if (!c) {
        if (!(c = vigil__calloc(1, sizeof(*c))) || !(c->agent = vigil__strdup(agent))) {
            vigil__free(c);
            return vigil__error_oom();
        }
        if (vigil__pmap_put(&r->per_agent, c->agent, c) < 0) {
            vigil__free(c->agent);
            vigil__free(c);
            return VIGIL_ENOMEM;
        }
    }
    c->n++;
    return VIGIL_OK;
}

/* One series fewer for `agent` (NULL: not counted); the entry goes at 0. */
static void agent_uncount(pol_rule *r, const char *agent)
{
    agent_cnt *c = agent ? vigil__pmap_get(&r->per_agent, agent) : NULL;
    if (!c || --c->n)
        return;
    vigil__pmap_del(&r->per_agent, c->agent);
    vigil__free(c->agent);
    vigil__free(c);
}

pol_series *vigil__policy_series_new(vigil_engine *e, pol_rule *r, const char *agent,
                                     const char *key, const vigil_tag *tags, size_t ntags)
{
    if (r->nslist >= SERIES_PER_RULE) {
        char why[160];
        snprintf(why, sizeof(why), "the policy holds its limit of %d series", SERIES_PER_RULE);
        capped(e, r, key, agent ? agent : "", why, clock_now(e));
        vigil__error_set(VIGIL_ELIMIT, "policy %s: more than %d series", r->name, SERIES_PER_RULE);
        return NULL;
    }
    if (agent && e->series_per_agent && agent_count(r, agent) >= e->series_per_agent) {
        char why[400];
        snprintf(why, sizeof(why),
                 "agent %.200s holds its limit of %zu series of this policy (series_per_agent)",
                 agent, e->series_per_agent);
        capped(e, r, key, agent, why, clock_now(e));
        vigil__error_set(VIGIL_ELIMIT, "policy %s: agent %.200s has %zu series", r->name, agent,
                         e->series_per_agent);
        return NULL;
    }
    pol_series *s = vigil__calloc(1, sizeof(*s));
    if (!s || !(s->key = vigil__strdup(key)) || (agent && !(s->owner = vigil__strdup(agent))))
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
    if (s->owner && agent_count_add(r, s->owner) < 0)
        goto oom;
    if (vigil__pmap_put(&r->series, s->key, s) < 0) {
        agent_uncount(r, s->owner);
        goto oom;
    }
    r->slist[r->nslist++] = s;
    return s;
oom:
    if (s)
        series_free(s);
    vigil__error_oom();
    return NULL;
}

pol_target *vigil__policy_target_get(pol_rule *r, const char *target)
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
    vigil__policy_unpersist_action(e, a);
    vigil__policy_action_free(a);
}

int vigil__policy_act_attach(vigil_engine *e, pol_series *s, pol_action *a)
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
    char tag[201];
    snprintf(tag, sizeof(tag), "%.*s", (int)(len > 200 ? 200 : len), name);
    vigil_buf f = VIGIL_BUF_INIT; /* the series key holds an agent's tag values */
    if (vigil_log_field(&f, "policy", s->rule->name) == VIGIL_OK &&
        vigil_log_field(&f, "series", s->key) == VIGIL_OK &&
        vigil_log_field(&f, "in", what) == VIGIL_OK && vigil_log_field(&f, "tag", tag) == VIGIL_OK)
        vigil__log(&e->logger, VIGIL_LOG_WARN, "policy", "template names a missing tag; no request",
                   "%s", f.ptr + 1);
    vigil_buf_dispose(&f);
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
    a->id = vigil__policy_dup_or_null(id, &fail);
    a->action = vigil__policy_dup_or_null(action, &fail);
    a->target = vigil__policy_dup_or_null(target, &fail);
    o->strs[0] = vigil__policy_dup_or_null(id, &fail);
    o->strs[1] = vigil__policy_dup_or_null(action, &fail);
    o->strs[2] = vigil__policy_dup_or_null(target, &fail);
    o->strs[3] = vigil__policy_dup_or_null(reason, &fail);
    o->strs[4] = vigil__policy_dup_or_null(r->name, &fail);
    o->series = vigil__policy_dup_or_null(s->key, &fail);
    rc = VIGIL_ENOMEM;
    if (fail)
        goto fail;
    a->series = s;
    a->esc = esc;
    a->phase = PH_OUTSTANDING;
    a->requested = now;
    if ((rc = vigil__policy_act_attach(e, s, a)) < 0)
        goto fail;
    vigil__policy_persist_seq(e);
    vigil__policy_persist_action(e, a);
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
        vigil__policy_action_free(a);
    return rc;
}

/* Escalates action `a` (failed or ineffective, `cause` says which) to the
 * rule's next escalation action, or decides "silenced" when a silence covers
 * the target; nothing once the escalation list is used up. */
static void escalate(vigil_engine *e, const pol_action *a, const char *cause, int64_t now)
{
    pol_series *s = a->series;
    pol_rule *r = s->rule;
    if (a->esc >= (int)r->nescalate)
        return;
    const char *next = r->escalate[a->esc];
    const pol_silence *sil = vigil__policy_silenced(e, r, s, a->target, now);
    char why[REASON_MAX];
    if (sil) {
        snprintf(why, sizeof(why), "silence %s", sil->id);
        decide(e, r, s, a->target, next, NULL, "silenced", why, now);
    } else {
        snprintf(why, sizeof(why), "%s; escalating to %s", cause, next);
        request(e, s, next, a->target, a->esc + 1, "escalated", why, now);
    }
}

/* Holds the series' next request back until `until`; the timers make it
 * then if the condition still holds, with `cause` leading its reason. */
static void defer(pol_series *s, int64_t until, const char *cause)
{
    char *d = vigil__strdup(cause);
    s->need_act = 1;
    s->defer_until = until;
    if (d) {
        vigil__free(s->retry);
        s->retry = d;
    }
}

/* The condition ended or a request was made: nothing is held back any more. */
static void clear_retry(pol_series *s)
{
    s->defer_until = 0;
    vigil__free(s->retry);
    s->retry = NULL;
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
    char why[REASON_MAX], b1[32], b2[32], w[96];
    const char *action = s->code_action ? s->code_action : r->action;
    if (s->defer_until) {
        if (now < s->defer_until)
            return; /* held back: recorded as deferred (or quarantined) already */
        s->defer_until = 0;
    }
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
    pol_target *t = vigil__policy_target_get(r, target);
    if (!t) {
        e->stats.eval_errors++;
        goto done;
    }
    if (r->cooldown_ms > 0 && t->last_action && now - t->last_action < r->cooldown_ms) {
        int64_t at = t->last_action + r->cooldown_ms;
        fmt_dur(b1, sizeof(b1), now - t->last_action);
        fmt_dur(b2, sizeof(b2), r->cooldown_ms);
        fmt_when(w, sizeof(w), now, at);
        snprintf(why, sizeof(why),
                 "cooldown: last request %s ago (cooldown %s); sent %s if the condition still "
                 "holds",
                 b1, b2, w);
        decide(e, r, s, target, action, NULL, "deferred", why, now);
        defer(s, at, s->retry ? s->retry : "deferred by the policy's cooldown");
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
                int64_t oldest = t->budget_ts[0];
                for (size_t i = 1; i < t->nbudget; i++)
                    if (t->budget_ts[i] < oldest)
                        oldest = t->budget_ts[i];
                fmt_dur(b1, sizeof(b1), r->budget_window_ms);
                fmt_when(w, sizeof(w), now, oldest + r->budget_window_ms);
                snprintf(why, sizeof(why),
                         "budget: %lld actions within %s on %.200s; released when the oldest "
                         "leaves the window, %s, if the condition still holds",
                         (long long)r->budget_max, b1, target, w);
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
    if (!reason)
        reason = "condition holds";
    if (s->retry) {
        snprintf(why, sizeof(why), "%s; %s", s->retry, reason);
        reason = why;
    }
    if (request(e, s, action, target, 0, "fired", reason, now) < 0)
        goto done;
    s->need_act = 0;
    clear_retry(s);
    s->last_act = now;
    t->last_action = now;
    if (r->budget_max > 0)
        t->budget_ts[t->nbudget++] = now;
    vigil__policy_persist_target(e, r, t);
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
        char *target = series_target(s);
        decide(e, r, s, target, r->action, NULL, "flapping", why, now);
        vigil__free(target);
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
        vigil__policy_persist_series(e, s);
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
    vigil__policy_persist_series(e, s);
}

static void recovered(vigil_engine *e, pol_series *s, int64_t now)
{
    for (size_t i = 0; i < s->nacts;) {
        pol_action *a = s->acts[i];
        if (a->phase == PH_OUTSTANDING && !a->recovered) {
            /* recovered before the action's result arrived (the agent saw
             * the new process first): remediated when the success comes */
            a->recovered = 1;
            a->recovered_at = now;
            vigil__policy_persist_action(e, a);
        }
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

/* "action\x1ftarget" in e->tmp2; NULL when out of memory. */
static const char *done_key(vigil_engine *e, const char *action, const char *target)
{
    vigil__buf_clear(&e->tmp2);
    if (vigil__buf_printf(&e->tmp2, "%s\x1f%s", action, target ? target : "") < 0)
        return NULL;
    return e->tmp2.ptr;
}

/* Remembers that `action` on `target` succeeded at `now`. */
static void done_record(vigil_engine *e, const char *action, const char *target, int64_t now)
{
    const char *key = done_key(e, action, target);
    pol_done *d = key ? vigil__pmap_get(&e->done, key) : NULL;
    if (!d && key) {
        d = vigil__calloc(1, sizeof(*d));
        if (d && (d->key = vigil__strdup(key)) != NULL &&
            vigil__pmap_put(&e->done, d->key, d) == VIGIL_OK) {
            d->at = now;
            return;
        }
        if (d)
            vigil__free(d->key);
        vigil__free(d);
        e->stats.eval_errors++;
        return;
    }
    if (d && now > d->at)
        d->at = now;
}

/* Whether an active sample at `ts` is already answered by a remediation of
 * the same action on the same target: a request of another rule still under
 * way (a restart stops the program, so the program is seen down while it
 * runs, and the new process has not been seen yet; this rule's own requests
 * are its cooldown's business), or a request of any rule that succeeded
 * after the sample was taken (the sample shows the process it replaced). Such a sample starts no
 * episode and no request: acting on it would restart the healthy new process. A sample taken after
 * the success is news, and acts. */
static int answered(vigil_engine *e, pol_series *s, int64_t ts)
{
    const char *action = s->code_action ? s->code_action : s->rule->action;
    const char *miss = NULL;
    size_t ml = 0;
    if (!action || vigil__policy_expand(&e->tmp, s->code_target ? s->code_target : s->rule->target,
                                        s, NULL, &miss, &ml) < 0)
        return 0; /* a missing tag is try_act's to report */
    char *target = vigil__buf_detach(&e->tmp);
    if (!target)
        return 0;
    int yes = 0;
    for (size_t i = 0; i < e->actions.cap && !yes; i++) {
        const pol_action *a = e->actions.e[i].key ? e->actions.e[i].val : NULL;
        yes = a && a->phase == PH_OUTSTANDING && a->series->rule != s->rule &&
              strcmp(a->action, action) == 0 && strcmp(a->target ? a->target : "", target) == 0;
    }
    const char *key = yes ? NULL : done_key(e, action, target);
    const pol_done *d = key ? vigil__pmap_get(&e->done, key) : NULL;
    if (d && ts <= d->at)
        yes = 1;
    if (yes)
        vigil__log(
            &e->logger, VIGIL_LOG_DEBUG, "policy", "sample answered by a remediation of its target",
            "policy=%s action=%s target=%s ts=%lld", s->rule->name, action, target, (long long)ts);
    vigil__free(target);
    return yes;
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
            clear_retry(s);
            char *target = series_target(s);
            decide(e, r, s, target, s->code_action ? s->code_action : r->action, NULL, "resolved",
                   reason_text(ev, rbuf, sizeof(rbuf)), now);
            vigil__free(target);
            recovered(e, s, now);
            vigil__policy_persist_series(e, s);
        } else if (s->state != ST_OK) {
            set_state(e, s, ST_OK, ts, now);
            recovered(e, s, now);
            vigil__policy_persist_series(e, s);
        } else if (s->nacts) {
            recovered(e, s, now);
        }
        return;
    }
    if (s->state != ST_FIRING && answered(e, s, ts))
        return;
    switch (s->state) {
    case ST_OK:
    case ST_RESOLVED:
        if (r->for_ms <= 0) {
            fire(e, s, ts, now, reason_text(ev, rbuf, sizeof(rbuf)));
        } else {
            set_state(e, s, ST_PENDING, ts, now);
            s->pending_since = ts;
            set_reason(s, reason_text(ev, rbuf, sizeof(rbuf)));
            vigil__policy_persist_series(e, s);
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
            int64_t du = s->defer_until;
            try_act(e, s, now);
            if (before != s->noted || need != s->need_act || du != s->defer_until)
                vigil__policy_persist_series(e, s);
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
    char *act = vigil__policy_dup_or_null(q->action, &fail);
    char *tg = vigil__policy_dup_or_null(q->target, &fail);
    char *why = vigil__policy_dup_or_null(q->reason, &fail);
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
            pk[i] = vigil__policy_dup_or_null(q->params[i].key ? q->params[i].key : "", &fail);
            pv[i] = vigil__policy_dup_or_null(q->params[i].value ? q->params[i].value : "", &fail);
        }
    }
    if (fail) {
        code_free(act, tg, why, pk, pv, np);
        return vigil__error_oom();
    }
    code_free(s->code_action, s->code_target, s->code_reason, s->code_pkeys, s->code_pvals,
              s->code_nparams);
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
        s = vigil__policy_series_new(e, r, agent ? agent : "", key, m->tags, m->ntags);
        if (!s) {
            eval_error(e, r, "cannot track series");
            return;
        }
        if (r->kind == POL_ABSENT) {
            s->agent = agent ? vigil__strdup(agent) : NULL;
            vigil__policy_persist_series(e, s);
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
        rc = r->type->evaluate(r->state, m, &ctx, &vd);
        if (rc < 0) {
            e->stats.policy_errors++;
            /* a plug-in's message (a binding's exception text) may quote
             * tag values: escaped as logfmt */
            char msg[512];
            snprintf(msg, sizeof(msg), "%s", vigil_error_last()->message);
            vigil_buf f = VIGIL_BUF_INIT;
            if (vigil_log_field(&f, "error", msg) == VIGIL_OK)
                vigil__log(&e->logger, VIGIL_LOG_WARN, "policy", "code policy failed",
                           "policy=%s kind=%s code=%d%s", r->name, r->kind_name, rc, f.ptr);
            vigil_buf_dispose(&f);
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
            if (vigil__policy_vec_push(c, l->v[j]) < 0)
                return VIGIL_ENOMEM;
    }
    for (size_t j = 0; j < b->rest.n; j++)
        if (vigil__policy_vec_push(c, b->rest.v[j]) < 0)
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

int64_t vigil__policy_rule_history(const pol_rule *r)
{
    switch (r->kind) {
    case POL_THRESHOLD:
    case POL_DESIRED:
    case POL_ANOMALY: return r->window_ms + r->for_ms;
    case POL_CODE: return r->history_ms;
    default: return 0;
    }
}

int vigil_engine_watch(vigil_engine *e, const vigil_metric *metric, int64_t *history_ms)
{
    if (history_ms)
        *history_ms = 0;
    if (!e || !metric || !metric->name || !history_ms || (metric->ntags && !metric->tags))
        return vigil__error_set(VIGIL_EINVAL, "engine_watch: NULL argument");
    int rc = VIGIL_OK;
    int64_t need = 0;
    pthread_mutex_lock(&e->mu);
    const pol_bucket *b = vigil__pmap_get(&e->by_metric, metric->name);
    if (b) {
        pol_vec c = {NULL, 0, 0};
        rc = gather(e, b, metric, &c);
        for (size_t i = 0; rc == VIGIL_OK && i < c.n; i++) {
            int64_t h = vigil__policy_rule_history(c.v[i]);
            if (h > need && rule_matches(c.v[i], metric))
                need = h;
        }
        vigil__free(c.v);
    }
    pthread_mutex_unlock(&e->mu);
    if (rc)
        return vigil__error_oom();
    *history_ms = need;
    return VIGIL_OK;
}

uint64_t vigil_engine_generation(vigil_engine *e)
{
    if (!e)
        return 0;
    pthread_mutex_lock(&e->mu);
    uint64_t g = e->generation;
    pthread_mutex_unlock(&e->mu);
    return g;
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
        /* no rule for the metric: nothing to evaluate, no window either */
        const pol_bucket *b = vigil__pmap_get(&e->by_metric, m->name);
        if (!b)
            continue;
        if (vigil_metric_series_key(&e->key, m) < 0) {
            e->stats.eval_errors++;
            continue;
        }
        if (gather(e, b, m, &cands) < 0) {
            e->stats.eval_errors++;
            continue;
        }
        /* the engine's own windows: only for series a rule reads history of */
        int watched = 0;
        for (size_t j = 0; e->windows && !watched && j < cands.n; j++)
            watched = vigil__policy_rule_history(cands.v[j]) > 0 && rule_matches(cands.v[j], m);
        if (watched) {
            int rc = vigil_window_set_append(e->windows, e->key.ptr, m->ts_ms, m->value, NULL);
            if (rc < 0 && rc != VIGIL_ERANGE)
                e->stats.eval_errors++;
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
            int64_t du = s->defer_until;
            try_act(e, s, now);
            if (before != s->noted || !s->need_act || du != s->defer_until)
                vigil__policy_persist_series(e, s);
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

/* Whether s has been quiet long enough to leave its rule: ok, no sample for
 * series_idle_ms, nothing pending, deferred, flapping or awaited. */
static int idle(const vigil_engine *e, const pol_series *s, int64_t now)
{
    return e->series_idle_ms > 0 && s->rule->kind != POL_ABSENT && s->state == ST_OK &&
           !s->need_act && !s->defer_until && !s->flapping && s->nacts == 0 && s->last_seen &&
           now - s->last_seen >= e->series_idle_ms;
}

int vigil__policy_tick_locked(vigil_engine *e, int64_t now)
{
    for (size_t i = 0; i < e->nrules; i++) {
        pol_rule *r = e->rules[i];
        for (size_t j = 0; j < r->nslist; j++) {
            pol_series *s = r->slist[j];
            if (idle(e, s, now)) {
                /* idle: the series leaves the rule (swap with the last) */
                vigil__pmap_del(&r->series, s->key);
                agent_uncount(r, s->owner);
                r->slist[j] = r->slist[--r->nslist];
                series_free(s);
                e->stats.series_evicted++;
                j--;
                continue;
            }
            if (s->flapping)
                flap_settle(e, s, now);
            if (r->kind == POL_ABSENT) {
                absent_check(e, s, now);
            } else if (s->state == ST_FIRING && s->need_act && s->defer_until &&
                       now >= s->defer_until) {
                /* a held-back request whose cooldown (or quarantine) ended */
                try_act(e, s, now);
                vigil__policy_persist_series(e, s);
            }
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
        int last = a->esc >= (int)s->rule->nescalate;
        char cause[REASON_MAX];
        snprintf(cause, sizeof(cause), "retry: %.128s was ineffective (no recovery within %s)",
                 a->action, b1);
        snprintf(why, sizeof(why), "%s was ineffective", a->action);
        escalate(e, a, why, now);
        act_settle(e, a);
        if (last && s->state == ST_FIRING && !act_pending(s)) {
            /* no escalation left: ask again for the rule's action, under its
             * cooldown, budget and flap damping */
            s->noted = 0;
            defer(s, 0, cause);
            try_act(e, s, now);
            vigil__policy_persist_series(e, s);
        }
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
    char why[REASON_MAX], w[96];
    const char *st = vigil_action_status_name(res->status);
    int64_t ra = res->version >= 2 && res->retry_after_ms > 0 ? res->retry_after_ms : 0;
    int firing = s->state == ST_FIRING;
    if (res->status == VIGIL_ACTION_REFUSED && res->reason &&
        (strcmp(res->reason, "quarantined") == 0 ||
         (strcmp(res->reason, "cooldown") == 0 && ra > 0 && firing))) {
        int quarantined = res->reason[0] == 'q';
        const char *msg = res->output && *res->output ? res->output : res->reason;
        if (ra > 0 && firing) {
            fmt_when(w, sizeof(w), now, now + ra);
            snprintf(why, sizeof(why),
                     "refused by the remediator: %.300s; sent again %s if the condition still "
                     "holds",
                     msg, w);
            defer(s, now + ra,
                  quarantined ? "retry: the target's quarantine ended"
                              : "retry: the remediator's cooldown ended");
            vigil__policy_persist_series(e, s);
        } else {
            snprintf(why, sizeof(why), "refused by the remediator: %.400s", msg);
        }
        decide(e, r, s, a->target, a->action, a->id, quarantined ? "quarantined" : "deferred", why,
               now);
        act_settle(e, a);
        return VIGIL_OK;
    }
    switch (res->status) {
    case VIGIL_ACTION_SUCCEEDED:
        if (a->recovered) {
            done_record(e, a->action, a->target, now);
            char b1[32];
            if (a->requested > 0) {
                fmt_dur(b1, sizeof(b1), a->recovered_at - a->requested);
                snprintf(why, sizeof(why),
                         "recovered %s after %.128s was requested, before its result arrived", b1,
                         a->action);
            } else {
                snprintf(why, sizeof(why), "recovered before the result of %.128s arrived",
                         a->action);
            }
            decide(e, r, s, a->target, a->action, a->id, "remediated", why, now);
            act_settle(e, a);
            break;
        }
        done_record(e, a->action, a->target, now);
        a->phase = PH_VERIFY;
        a->deadline = now + r->verify_ms;
        vigil__policy_persist_action(e, a);
        break;
    case VIGIL_ACTION_PENDING_APPROVAL:
        a->phase = PH_APPROVAL;
        vigil__policy_persist_action(e, a);
        vigil__log(&e->logger, VIGIL_LOG_INFO, "policy", "action waits for approval",
                   "policy=%s action_id=%s", r->name, a->id);
        break;
    case VIGIL_ACTION_FAILED:
    case VIGIL_ACTION_TIMEOUT:
    case VIGIL_ACTION_REFUSED:
        snprintf(why, sizeof(why), "%s%s%.200s", st, res->reason ? ": " : "",
                 res->reason ? res->reason : "");
        decide(e, r, s, a->target, a->action, a->id, "action_failed", why, now);
        if (res->status != VIGIL_ACTION_REFUSED) {
            snprintf(why, sizeof(why), "%s %s", a->action, st);
            escalate(e, a, why, now);
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

/* ---- public: lifecycle ---------------------------------------------------------- */

int vigil_engine_options_init(vigil_engine_options *opts, unsigned int version)
{
    if (!opts)
        return vigil__error_set(VIGIL_EINVAL, "engine options: NULL");
    if (vigil__version_check("engine options", version, VIGIL_ENGINE_OPTIONS_VERSION))
        return VIGIL_EVERSION;
    vigil_engine_options d = VIGIL_ENGINE_OPTIONS_INIT;
    *opts = d;
    return VIGIL_OK;
}

int vigil_engine_new(vigil_engine **out, const vigil_engine_options *opts)
{
    if (!out)
        return vigil__error_set(VIGIL_EINVAL, "engine: NULL argument");
    *out = NULL;
    if (!opts)
        return vigil__error_set(VIGIL_EINVAL, "engine: options are required (a store)");
    if (vigil__version_check("engine options", opts->version, VIGIL_ENGINE_OPTIONS_VERSION))
        return VIGIL_EVERSION;
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
    int64_t idle_ms = opts->version >= 2 ? opts->series_idle_ms : 0;
    size_t per_agent = opts->version >= 2 ? opts->series_per_agent : 0;
    e->series_idle_ms = idle_ms ? idle_ms : VIGIL__POLICY_SERIES_IDLE_DEFAULT;
    e->series_per_agent = per_agent ? per_agent : VIGIL__POLICY_SERIES_PER_AGENT_DEFAULT;
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
        rc = vigil__policy_load_seq(e);
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
        vigil__policy_rule_state_free(e, e->rules[i]);
        vigil__policy_rule_free(e->rules[i]);
    }
    vigil__free(e->rules);
    vigil__policy_buckets_free(&e->by_metric);
    vigil__pmap_dispose(&e->by_name);
    vigil__pmap_dispose(&e->actions);
    for (size_t i = 0; i < e->done.cap; i++)
        if (e->done.e[i].key) {
            pol_done *d = e->done.e[i].val;
            vigil__free(d->key);
            vigil__free(d);
        }
    vigil__pmap_dispose(&e->done);
    for (size_t i = 0; i < e->agents.cap; i++)
        if (e->agents.e[i].key) {
            pol_agent *a = e->agents.e[i].val;
            vigil__free(a->id);
            vigil__free(a);
        }
    vigil__pmap_dispose(&e->agents);
    vigil__policy_desired_free(e);
    vigil__policy_silences_free(e);
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
    if (vigil__version_check("engine stats", out->version, VIGIL_ENGINE_STATS_VERSION))
        return VIGIL_EVERSION;
    pthread_mutex_lock(&e->mu);
    vigil_engine_stats s = e->stats;
    pthread_mutex_unlock(&e->mu);
    s.version = out->version;
    /* a version 1 caller's struct ends before series_evicted */
    memcpy(out, &s, out->version >= 2 ? sizeof(s) : offsetof(vigil_engine_stats, series_evicted));
    return VIGIL_OK;
}

const char *vigil__policy_state_name(const pol_series *s)
{
    return s->flapping ? "flapping" : state_names[s->state];
}
