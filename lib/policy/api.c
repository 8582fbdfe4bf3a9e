/*
 * The engine's surroundings: silences, desired state, the JSON listings, the
 * evaluation context of code policies and replay.
 */
#include "internal/json.h"
#include "policy/policy_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define GLOB_MAX 1024

/* ---- silences ---------------------------------------------------------------------- */

static void silence_free(pol_silence *s)
{
    if (!s)
        return;
    vigil__free(s->id);
    vigil__free(s->matchers_json);
    for (size_t i = 0; i < s->n; i++) {
        vigil__free(s->keys[i]);
        vigil__free(s->globs[i]);
    }
    vigil__free(s->keys);
    vigil__free(s->globs);
    vigil__free(s->created_by);
    vigil__free(s->comment);
    vigil__free(s);
}

/* Parses and checks matchers JSON into s->keys / s->globs. */
static int parse_matchers(pol_silence *s, const char *json)
{
    cJSON *o = NULL;
    vigil__json_init();
    int rc = vigil__json_parse(&o, json, strlen(json), 4);
    if (rc < 0) {
        vigil__error_prefix("silence matchers");
        return rc;
    }
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return vigil__error_set(VIGIL_EVALUE, "silence matchers: expected an object of globs");
    }
    size_t n = (size_t)cJSON_GetArraySize(o);
    if (n == 0 || n > VIGIL_METRIC_TAGS_MAX + 2) {
        cJSON_Delete(o);
        return vigil__error_set(VIGIL_EVALUE, "silence matchers: expected 1 to %d matchers",
                                VIGIL_METRIC_TAGS_MAX + 2);
    }
    s->keys = vigil__calloc(n, sizeof(char *));
    s->globs = vigil__calloc(n, sizeof(char *));
    if (!s->keys || !s->globs) {
        cJSON_Delete(o);
        return vigil__error_oom();
    }
    const cJSON *i;
    rc = VIGIL_OK;
    cJSON_ArrayForEach(i, o)
    {
        if (!cJSON_IsString(i)) {
            rc = vigil__error_set(VIGIL_EVALUE, "silence matchers.%.64s: expected a string glob",
                                  i->string);
            break;
        }
        if (strcmp(i->string, "policy") != 0 && strcmp(i->string, "target") != 0 &&
            !vigil_metric_name_valid(i->string)) {
            rc = vigil__error_set(VIGIL_EVALUE,
                                  "silence matchers: \"%.64s\" is neither policy, target nor a "
                                  "tag name",
                                  i->string);
            break;
        }
        if (!*i->valuestring || strlen(i->valuestring) > GLOB_MAX) {
            rc = vigil__error_set(VIGIL_EVALUE,
                                  "silence matchers.%.64s: expected a glob of 1 to %d bytes",
                                  i->string, GLOB_MAX);
            break;
        }
        s->keys[s->n] = vigil__strdup(i->string);
        s->globs[s->n] = vigil__strdup(i->valuestring);
        s->n++;
        if (!s->keys[s->n - 1] || !s->globs[s->n - 1]) {
            rc = vigil__error_oom();
            break;
        }
    }
    cJSON_Delete(o);
    return rc;
}

static int silence_push(vigil_engine *e, pol_silence *s)
{
    if (e->nsilences == e->capsilences &&
        vigil__array_grow((void **)&e->silences, &e->capsilences, e->nsilences + 1,
                          sizeof(*e->silences)) < 0)
        return VIGIL_ENOMEM;
    e->silences[e->nsilences++] = s;
    return VIGIL_OK;
}

static pol_silence *silence_from(const vigil_store_silence *r, int *rc)
{
    pol_silence *s = vigil__calloc(1, sizeof(*s));
    if (!s) {
        *rc = vigil__error_oom();
        return NULL;
    }
    s->id = vigil__strdup(r->id);
    s->matchers_json = vigil__strdup(r->matchers_json);
    s->created_by = vigil__strdup(r->created_by ? r->created_by : "");
    s->comment = vigil__strdup(r->comment ? r->comment : "");
    s->starts = r->starts_ms;
    s->ends = r->ends_ms;
    s->created = r->created_ms;
    if (!s->id || !s->matchers_json || !s->created_by || !s->comment) {
        silence_free(s);
        *rc = vigil__error_oom();
        return NULL;
    }
    if ((*rc = parse_matchers(s, r->matchers_json)) < 0) {
        silence_free(s);
        return NULL;
    }
    return s;
}

static int load_cb(const vigil_store_silence *r, void *payload)
{
    vigil_engine *e = payload;
    int rc = VIGIL_OK;
    pol_silence *s = silence_from(r, &rc);
    if (!s) {
        if (rc == VIGIL_ENOMEM)
            return 1;
        vigil__log(&e->logger, VIGIL_LOG_WARN, "policy", "ignoring a stored silence",
                   "id=%s error=\"%s\"", r->id, vigil_error_last()->message);
        return 0;
    }
    if (silence_push(e, s) < 0) {
        silence_free(s);
        return 1;
    }
    return 0;
}

int vigil__policy_silences_load(vigil_engine *e)
{
    int rc = vigil_store_silence_list(e->o.store, 0, load_cb, e);
    if (rc > 0)
        return vigil__error_oom();
    return rc;
}

void vigil__policy_silences_free(vigil_engine *e)
{
    for (size_t i = 0; i < e->nsilences; i++)
        silence_free(e->silences[i]);
    vigil__free(e->silences);
    e->silences = NULL;
    e->nsilences = e->capsilences = 0;
}

const pol_silence *vigil__policy_silenced(vigil_engine *e, const pol_rule *r, const pol_series *s,
                                          const char *target, int64_t now)
{
    for (size_t i = 0; i < e->nsilences; i++) {
        const pol_silence *sil = e->silences[i];
        if (now < sil->starts || now >= sil->ends)
            continue;
        int all = 1;
        for (size_t j = 0; j < sil->n && all; j++) {
            const char *v;
            if (strcmp(sil->keys[j], "policy") == 0)
                v = r->name;
            else if (strcmp(sil->keys[j], "target") == 0)
                v = target;
            else
                v = vigil__policy_series_tag(s, sil->keys[j]);
            all = v && vigil__policy_glob(sil->globs[j], v);
        }
        if (all)
            return sil;
    }
    return NULL;
}

int vigil_engine_silence_add(vigil_engine *e, const char *matchers_json, int64_t starts_ms,
                             int64_t ends_ms, const char *created_by, const char *comment,
                             vigil_buf *id_out)
{
    if (!e || !matchers_json)
        return vigil__error_set(VIGIL_EINVAL, "silence_add: NULL argument");
    if (ends_ms <= starts_ms)
        return vigil__error_set(VIGIL_EVALUE, "silence: ends must be after starts");
    if (starts_ms < 0)
        return vigil__error_set(VIGIL_EVALUE, "silence: starts must not be negative");
    pol_silence probe;
    memset(&probe, 0, sizeof(probe));
    int rc = parse_matchers(&probe, matchers_json);
    for (size_t i = 0; i < probe.n; i++) {
        vigil__free(probe.keys[i]);
        vigil__free(probe.globs[i]);
    }
    vigil__free(probe.keys);
    vigil__free(probe.globs);
    if (rc < 0)
        return rc;
    int64_t now = vigil__policy_now(e);
    pthread_mutex_lock(&e->mu);
    if (e->replaying)
        now = e->replay_now;
    char id[64];
    e->sseq++;
    snprintf(id, sizeof(id), "sil-%lld-%llu", (long long)now, (unsigned long long)e->sseq);
    vigil_store_silence row = {id, matchers_json, starts_ms, ends_ms, created_by, comment, now};
    char seqb[64];
    int n = snprintf(seqb, sizeof(seqb), "{\"seq\":%llu,\"sseq\":%llu}", (unsigned long long)e->seq,
                     (unsigned long long)e->sseq);
    rc = vigil_store_state_put(e->o.store, "policy/_engine", seqb, (size_t)n);
    if (rc >= 0)
        rc = vigil_store_silence_put(e->o.store, &row);
    pol_silence *s = NULL;
    if (rc >= 0)
        s = silence_from(&row, &rc);
    if (s && (rc = silence_push(e, s)) < 0)
        silence_free(s);
    if (rc >= 0 && id_out) {
        vigil__buf_clear(id_out);
        rc = vigil__buf_puts(id_out, id);
    }
    pthread_mutex_unlock(&e->mu);
    return rc;
}

int vigil_engine_silence_delete(vigil_engine *e, const char *id)
{
    if (!e || !id)
        return vigil__error_set(VIGIL_EINVAL, "silence_delete: NULL argument");
    pthread_mutex_lock(&e->mu);
    int rc = vigil_store_silence_delete(e->o.store, id);
    if (rc >= 0 || rc == VIGIL_ENOTFOUND) {
        for (size_t i = 0; i < e->nsilences; i++)
            if (strcmp(e->silences[i]->id, id) == 0) {
                silence_free(e->silences[i]);
                memmove(&e->silences[i], &e->silences[i + 1],
                        (e->nsilences - i - 1) * sizeof(*e->silences));
                e->nsilences--;
                break;
            }
    }
    if (rc == VIGIL_ENOTFOUND)
        vigil__error_set(rc, "no silence with id \"%.128s\"", id);
    pthread_mutex_unlock(&e->mu);
    return rc;
}

static int put_str(vigil_buf *b, const char *s)
{
    if (!s)
        return vigil__buf_puts(b, "null");
    return vigil__json_put_string(b, s, strlen(s));
}

static int silence_json_cb(const vigil_store_silence *r, void *payload)
{
    vigil_buf *b = payload;
    int rc = vigil__buf_puts(b, b->ptr[b->size - 1] == '[' ? "{\"id\":" : ",{\"id\":");
    if (rc >= 0)
        rc = put_str(b, r->id);
    if (rc >= 0)
        rc = vigil__buf_printf(b, ",\"matchers\":%s,\"starts\":%lld,\"ends\":%lld,\"created_by\":",
                               r->matchers_json, (long long)r->starts_ms, (long long)r->ends_ms);
    if (rc >= 0)
        rc = put_str(b, r->created_by ? r->created_by : "");
    if (rc >= 0)
        rc = vigil__buf_puts(b, ",\"comment\":");
    if (rc >= 0)
        rc = put_str(b, r->comment ? r->comment : "");
    if (rc >= 0)
        rc = vigil__buf_putc(b, '}');
    return rc < 0 ? 1 : 0;
}

int vigil_engine_silences_json(vigil_engine *e, vigil_buf *out)
{
    if (!e || !out)
        return vigil__error_set(VIGIL_EINVAL, "silences_json: NULL argument");
    vigil__buf_clear(out);
    int rc = vigil__buf_puts(out, "{\"silences\":[");
    if (rc >= 0)
        rc = vigil_store_silence_list(e->o.store, 0, silence_json_cb, out);
    if (rc > 0)
        return vigil__error_oom();
    if (rc >= 0)
        rc = vigil__buf_puts(out, "]}");
    return rc;
}

/* ---- desired state --------------------------------------------------------------- */

static void desired_entry_free(pol_desired *d)
{
    cJSON_Delete(d->doc);
    vigil__free(d->target);
    vigil__free(d->json);
    vigil__free(d);
}

void vigil__policy_desired_free(vigil_engine *e)
{
    for (size_t i = 0; i < e->desired.cap; i++)
        if (e->desired.e[i].key)
            desired_entry_free(e->desired.e[i].val);
    vigil__pmap_dispose(&e->desired);
}

int vigil_engine_set_desired(vigil_engine *e, const char *target, const char *json_object)
{
    if (!e || !target)
        return vigil__error_set(VIGIL_EINVAL, "set_desired: NULL argument");
    if (strlen(target) > VIGIL_ACTION_VALUE_MAX)
        return vigil__error_set(VIGIL_ELIMIT, "set_desired: target longer than %d bytes",
                                VIGIL_ACTION_VALUE_MAX);
    pol_desired *d = NULL;
    int rc = VIGIL_OK;
    if (json_object) {
        size_t len = strlen(json_object);
        if (len > VIGIL_POLICY_DESIRED_MAX)
            return vigil__error_set(VIGIL_ELIMIT, "desired state of %.128s: more than %d bytes",
                                    target, VIGIL_POLICY_DESIRED_MAX);
        cJSON *doc = NULL;
        vigil__json_init();
        if ((rc = vigil__json_parse(&doc, json_object, len, 32)) < 0)
            return rc;
        if (!cJSON_IsObject(doc)) {
            cJSON_Delete(doc);
            return vigil__error_set(VIGIL_ETYPE, "desired state of %.128s: expected an object",
                                    target);
        }
        d = vigil__calloc(1, sizeof(*d));
        if (!d || !(d->target = vigil__strdup(target)) || !(d->json = vigil__strdup(json_object))) {
            cJSON_Delete(doc);
            if (d)
                desired_entry_free(d);
            return vigil__error_oom();
        }
        d->doc = doc;
    }
    pthread_mutex_lock(&e->mu);
    pol_desired *old = vigil__pmap_get(&e->desired, target);
    if (d) {
        rc = vigil__pmap_put(&e->desired, d->target, d);
        if (rc < 0)
            desired_entry_free(d);
        else if (old)
            desired_entry_free(old);
    } else if (old) {
        vigil__pmap_del(&e->desired, target);
        desired_entry_free(old);
    } else {
        rc = vigil__error_set(VIGIL_ENOTFOUND, "no desired state for %.128s", target);
    }
    pthread_mutex_unlock(&e->mu);
    return rc;
}

static int desired_lookup(vigil_engine *e, const char *target, const char *field, double *out)
{
    const pol_desired *d = vigil__pmap_get(&e->desired, target);
    if (!d)
        return vigil__error_set(VIGIL_ENOTFOUND, "no desired state for %.128s", target);
    const cJSON *n = d->doc;
    char seg[257];
    const char *p = field;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        if (l == 0 || l >= sizeof(seg))
            return vigil__error_set(VIGIL_ENOTFOUND, "bad field path \"%.64s\"", field);
        memcpy(seg, p, l);
        seg[l] = '\0';
        n = cJSON_IsObject(n) ? cJSON_GetObjectItemCaseSensitive(n, seg) : NULL;
        if (!n)
            return vigil__error_set(VIGIL_ENOTFOUND, "desired state of %.128s has no %.64s", target,
                                    field);
        p = dot ? dot + 1 : p + l;
    }
    if (!cJSON_IsNumber(n))
        return vigil__error_set(VIGIL_ETYPE, "desired state of %.128s: %.64s is not a number",
                                target, field);
    *out = n->valuedouble;
    return VIGIL_OK;
}

int vigil__policy_desired_number(vigil_engine *e, const char *target, const char *field,
                                 double *out)
{
    return desired_lookup(e, target, field, out);
}

/* ---- listings ------------------------------------------------------------------------ */

int vigil_engine_policies_json(vigil_engine *e, vigil_buf *out)
{
    if (!e || !out)
        return vigil__error_set(VIGIL_EINVAL, "policies_json: NULL argument");
    vigil__buf_clear(out);
    pthread_mutex_lock(&e->mu);
    int rc = vigil__buf_puts(out, "{\"policies\":[");
    for (size_t i = 0; i < e->nrules && rc >= 0; i++) {
        const pol_rule *r = e->rules[i];
        rc = vigil__buf_puts(out, i ? ",{\"name\":" : "{\"name\":");
        if (rc >= 0)
            rc = put_str(out, r->name);
        if (rc >= 0)
            rc = vigil__buf_puts(out, ",\"kind\":");
        if (rc >= 0)
            rc = put_str(out, r->kind_name);
        if (rc >= 0)
            rc = vigil__buf_puts(out, ",\"metric\":");
        if (rc >= 0)
            rc = put_str(out, r->metric);
        if (rc >= 0)
            rc = vigil__buf_puts(out, ",\"action\":");
        if (rc >= 0)
            rc = put_str(out, r->action);
        if (rc >= 0)
            rc = vigil__buf_puts(out, ",\"series\":[");
        for (size_t j = 0; j < r->nslist && rc >= 0; j++) {
            const pol_series *s = r->slist[j];
            rc = vigil__buf_puts(out, j ? ",{\"series\":" : "{\"series\":");
            if (rc >= 0)
                rc = put_str(out, s->key);
            if (rc >= 0)
                rc = vigil__buf_printf(out,
                                       ",\"state\":\"%s\",\"value\":", vigil__policy_state_name(s));
            if (rc >= 0)
                rc = s->has_value && isfinite(s->value) ? vigil__json_put_double(out, s->value)
                                                        : vigil__buf_puts(out, "null");
            if (rc >= 0)
                rc = vigil__buf_printf(out, ",\"since\":%lld}", (long long)s->since);
        }
        if (rc >= 0)
            rc = vigil__buf_puts(out, "]}");
    }
    if (rc >= 0)
        rc = vigil__buf_puts(out, "]}");
    pthread_mutex_unlock(&e->mu);
    return rc;
}

static int decision_json_cb(const vigil_store_decision *d, void *payload)
{
    vigil_buf *b = payload;
    int rc = vigil__buf_printf(
        b, "%s{\"id\":%lld,\"ts\":%lld,\"policy\":", b->ptr[b->size - 1] == '[' ? "" : ",",
        (long long)d->id, (long long)d->ts_ms);
    if (rc >= 0)
        rc = put_str(b, d->policy);
    if (rc >= 0)
        rc = vigil__buf_puts(b, ",\"series\":");
    if (rc >= 0)
        rc = put_str(b, d->series);
    if (rc >= 0)
        rc = vigil__buf_puts(b, ",\"target\":");
    if (rc >= 0)
        rc = put_str(b, d->target);
    if (rc >= 0)
        rc = vigil__buf_puts(b, ",\"action\":");
    if (rc >= 0)
        rc = put_str(b, d->action);
    if (rc >= 0)
        rc = vigil__buf_puts(b, ",\"action_id\":");
    if (rc >= 0)
        rc = put_str(b, d->action_id);
    if (rc >= 0)
        rc = vigil__buf_puts(b, ",\"decision\":");
    if (rc >= 0)
        rc = put_str(b, d->decision);
    if (rc >= 0)
        rc = vigil__buf_puts(b, ",\"reason\":");
    if (rc >= 0)
        rc = put_str(b, d->reason ? d->reason : "");
    if (rc >= 0)
        rc = vigil__buf_putc(b, '}');
    return rc < 0 ? 1 : 0;
}

int vigil_engine_decisions_json(vigil_engine *e, int64_t since_ms, size_t limit, vigil_buf *out)
{
    if (!e || !out)
        return vigil__error_set(VIGIL_EINVAL, "decisions_json: NULL argument");
    vigil__buf_clear(out);
    vigil_store_filter f = VIGIL_STORE_FILTER_INIT;
    f.since_ms = since_ms;
    f.limit = limit ? limit : 1000;
    int rc = vigil__buf_puts(out, "{\"decisions\":[");
    if (rc >= 0)
        rc = vigil_store_decision_list(e->o.store, &f, decision_json_cb, out);
    if (rc > 0)
        return vigil__error_oom();
    if (rc >= 0)
        rc = vigil__buf_puts(out, "]}");
    return rc;
}

/* ---- the evaluation context of code policies ---------------------------------------- */

int vigil_policy_ctx_aggregate(vigil_policy_ctx *ctx, const char *series_key, vigil_window_agg agg,
                               int64_t duration_ms, double *out)
{
    if (!ctx || !out)
        return vigil__error_set(VIGIL_EINVAL, "policy ctx: NULL argument");
    if (duration_ms <= 0)
        return vigil__error_set(VIGIL_EINVAL, "policy ctx: duration must be above 0");
    return vigil__policy_aggregate(ctx->engine, series_key ? series_key : ctx->series, agg,
                                   duration_ms, ctx->now, out);
}

int vigil_policy_ctx_desired(vigil_policy_ctx *ctx, const char *target, const char **json_out)
{
    if (!ctx || !target || !json_out)
        return vigil__error_set(VIGIL_EINVAL, "policy ctx: NULL argument");
    const pol_desired *d = vigil__pmap_get(&ctx->engine->desired, target);
    if (!d)
        return vigil__error_set(VIGIL_ENOTFOUND, "no desired state for %.128s", target);
    *json_out = d->json;
    return VIGIL_OK;
}

int vigil_policy_ctx_desired_number(vigil_policy_ctx *ctx, const char *target, const char *field,
                                    double *out)
{
    if (!ctx || !target || !field || !out)
        return vigil__error_set(VIGIL_EINVAL, "policy ctx: NULL argument");
    return desired_lookup(ctx->engine, target, field, out);
}

const char *vigil_policy_ctx_series(const vigil_policy_ctx *ctx)
{
    return ctx ? ctx->series : NULL;
}

int64_t vigil_policy_ctx_now(const vigil_policy_ctx *ctx)
{
    return ctx ? ctx->now : 0;
}

const char *vigil_policy_ctx_policy(const vigil_policy_ctx *ctx)
{
    return ctx ? ctx->rule->name : NULL;
}

const vigil_logger *vigil_policy_ctx_logger(const vigil_policy_ctx *ctx)
{
    static const vigil_logger dflt = VIGIL_LOGGER_INIT;
    return ctx ? &ctx->engine->logger : &dflt;
}

/* ---- replay ---------------------------------------------------------------------------- */

int vigil_engine_replay(vigil_engine *e, const vigil_batch *const *batches, size_t nbatches,
                        int64_t tick_ms)
{
    if (!e || (!batches && nbatches))
        return vigil__error_set(VIGIL_EINVAL, "engine_replay: NULL argument");
    int64_t tick = tick_ms > 0 ? tick_ms : 1000;
    int64_t now = 0, next_tick = 0;
    int rc = VIGIL_OK;
    pthread_mutex_lock(&e->mu);
    e->replaying = 1;
    pthread_mutex_unlock(&e->mu);
    for (size_t i = 0; i < nbatches && rc >= 0; i++) {
        const vigil_batch *b = batches[i];
        if (!b)
            continue;
        for (size_t j = 0; j < vigil_batch_count(b); j++) {
            const vigil_metric *m = vigil_batch_get(b, j);
            if (m->ts_ms > now)
                now = m->ts_ms;
        }
        if (!now)
            continue;
        if (!next_tick)
            next_tick = now + tick;
        while (next_tick <= now && rc >= 0) {
            pthread_mutex_lock(&e->mu);
            e->replay_now = next_tick;
            rc = vigil__policy_tick_locked(e, next_tick);
            pthread_mutex_unlock(&e->mu);
            vigil__policy_flush(e);
            next_tick += tick;
        }
        if (rc < 0)
            break;
        pthread_mutex_lock(&e->mu);
        e->replay_now = now;
        rc = vigil__policy_ingest_locked(e, b, now);
        pthread_mutex_unlock(&e->mu);
        vigil__policy_flush(e);
    }
    pthread_mutex_lock(&e->mu);
    e->replaying = 0;
    pthread_mutex_unlock(&e->mu);
    return rc;
}
