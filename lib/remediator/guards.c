/* Guards after the allowlist: busy, cooldown, budget/quarantine, rate limit,
 * concurrency, approval. The per-target state (attempts, last request,
 * quarantine, cooldowns) is persisted in the store's state table under
 * "remediator/t/<target>" so that a restart keeps it; the running set and
 * the token bucket live in memory only. */
#include "core/hash.h"
#include "internal/json.h"
#include "remediator/rem_int.h"

#include <stdio.h>
#include <string.h>

#define TARGET_KEY_MAX 1024 /* longer targets are keyed by a hash */

/* FNV-1a, part of the stored key format of long targets (target_key): it
 * must never change, so it is not the in-memory table hash of core/hash.h. */
static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

static size_t bucket_of(const char *target)
{
    return (size_t)(vigil__hash_str(target) % REM_TARGET_BUCKETS);
}

static int target_key(vigil_buf *key, const char *target)
{
    vigil__buf_clear(key);
    size_t n = strlen(target);
    if (n <= TARGET_KEY_MAX && vigil__utf8_valid(target, n))
        return vigil__buf_printf(key, "%s%s", REM_KEY_TARGET, target);
    return vigil__buf_printf(key, "%s#%016llx", REM_KEY_TARGET, (unsigned long long)fnv1a(target));
}

static void target_free(rem_target *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->ncds; i++)
        vigil__free(t->cds[i].action);
    vigil__free(t->cds);
    vigil__free(t->attempts);
    vigil__free(t->target);
    vigil__free(t);
}

static rem_target *target_find(rem_guards *g, const char *target)
{
    for (rem_target *t = g->buckets[bucket_of(target)]; t; t = t->next)
        if (strcmp(t->target, target) == 0)
            return t;
    return NULL;
}

static rem_target *target_get(vigil_remediator *rem, const char *target)
{
    rem_guards *g = &rem->g;
    rem_target *t = target_find(g, target);
    if (t)
        return t;
    t = vigil__calloc(1, sizeof(*t));
    size_t cap = rem->o.max_attempts ? rem->o.max_attempts : 1;
    if (t) {
        t->target = vigil__strdup(target);
        t->attempts = vigil__calloc(cap, sizeof(int64_t));
    }
    if (!t || !t->target || !t->attempts) {
        target_free(t);
        vigil__error_oom();
        return NULL;
    }
    size_t b = bucket_of(target);
    t->next = g->buckets[b];
    g->buckets[b] = t;
    g->ntargets++;
    return t;
}

static rem_cooldown *cooldown_find(rem_target *t, const char *action)
{
    for (size_t i = 0; i < t->ncds; i++)
        if (strcmp(t->cds[i].action, action) == 0)
            return &t->cds[i];
    return NULL;
}

static int cooldown_set(rem_target *t, const char *action, int64_t ms)
{
    rem_cooldown *c = cooldown_find(t, action);
    if (c) {
        c->last_ms = ms;
        return VIGIL_OK;
    }
    if (vigil__array_grow((void **)&t->cds, &t->ccds, t->ncds + 1, sizeof(rem_cooldown)))
        return VIGIL_ENOMEM;
    char *a = vigil__strdup(action);
    if (!a)
        return vigil__error_oom();
    t->cds[t->ncds].action = a;
    t->cds[t->ncds].last_ms = ms;
    t->ncds++;
    return VIGIL_OK;
}

static void attempt_push(vigil_remediator *rem, rem_target *t, int64_t ms)
{
    size_t cap = rem->o.max_attempts ? rem->o.max_attempts : 1;
    if (t->nattempts == cap) {
        memmove(t->attempts, t->attempts + 1, (cap - 1) * sizeof(int64_t));
        t->nattempts--;
    }
    t->attempts[t->nattempts++] = ms;
}

static void attempts_prune(vigil_remediator *rem, rem_target *t, int64_t now)
{
    size_t k = 0;
    while (k < t->nattempts && now - t->attempts[k] >= rem->o.window_ms)
        k++;
    if (k) {
        memmove(t->attempts, t->attempts + k, (t->nattempts - k) * sizeof(int64_t));
        t->nattempts -= k;
    }
}

/* Writes the target's state to the store; failures are logged (the guard
 * decision stands). Called with g.mu held. */
static void target_persist(vigil_remediator *rem, const rem_target *t)
{
    vigil_buf b = VIGIL_BUF_INIT, key = VIGIL_BUF_INIT;
    int rc = vigil__buf_puts(&b, "{\"target\":");
    if (!rc)
        rc = vigil__json_put_string(&b, t->target, strlen(t->target));
    if (!rc)
        rc = vigil__buf_puts(&b, ",\"attempts\":[");
    for (size_t i = 0; !rc && i < t->nattempts; i++) {
        if (i)
            rc = vigil__buf_putc(&b, ',');
        if (!rc)
            rc = vigil__json_put_int64(&b, t->attempts[i]);
    }
    if (!rc)
        rc = vigil__buf_printf(&b, "],\"last_request\":%lld,\"quarantined\":%s,\"cooldowns\":{",
                               (long long)t->last_request_ms, t->quarantined ? "true" : "false");
    for (size_t i = 0; !rc && i < t->ncds; i++) {
        if (i)
            rc = vigil__buf_putc(&b, ',');
        if (!rc)
            rc = vigil__json_put_string(&b, t->cds[i].action, strlen(t->cds[i].action));
        if (!rc)
            rc = vigil__buf_printf(&b, ":%lld", (long long)t->cds[i].last_ms);
    }
    if (!rc)
        rc = vigil__buf_puts(&b, "}}");
    if (!rc)
        rc = target_key(&key, t->target);
    if (!rc)
        rc = vigil_store_state_put(rem->store, key.ptr, b.ptr, b.size);
    if (rc)
        vigil__log(&rem->logger, VIGIL_LOG_WARN, "remediator", "guard state not saved",
                   "error=\"%s\"", vigil_error_last()->message);
    vigil_buf_dispose(&b);
    vigil_buf_dispose(&key);
}

/* ---- loading ------------------------------------------------------------------ */

static int load_one(const char *key, const void *value, size_t len, void *payload)
{
    vigil_remediator *rem = payload;
    cJSON *j = NULL;
    if (vigil__json_parse(&j, value, len, 8) != VIGIL_OK) {
        if (vigil_error_last()->code == VIGIL_ENOMEM)
            return VIGIL_ENOMEM;
        vigil__log(&rem->logger, VIGIL_LOG_WARN, "remediator", "malformed guard state ignored",
                   "key_bytes=%zu", strlen(key));
        return 0;
    }
    const cJSON *tg = cJSON_GetObjectItemCaseSensitive(j, "target");
    int rc = 0;
    if (cJSON_IsString(tg) && *tg->valuestring) {
        rem_target *t = target_get(rem, tg->valuestring);
        if (!t) {
            rc = VIGIL_ENOMEM;
        } else {
            const cJSON *a, *it;
            a = cJSON_GetObjectItemCaseSensitive(j, "attempts");
            cJSON_ArrayForEach(it, a)
            {
                if (cJSON_IsNumber(it))
                    attempt_push(rem, t, (int64_t)it->valuedouble);
            }
            it = cJSON_GetObjectItemCaseSensitive(j, "last_request");
            if (cJSON_IsNumber(it))
                t->last_request_ms = (int64_t)it->valuedouble;
            t->quarantined = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "quarantined"));
            a = cJSON_GetObjectItemCaseSensitive(j, "cooldowns");
            cJSON_ArrayForEach(it, a)
            {
                if (!rc && cJSON_IsNumber(it) && it->string)
                    rc = cooldown_set(t, it->string, (int64_t)it->valuedouble);
            }
        }
    }
    cJSON_Delete(j);
    return rc;
}

int vigil__rem_guards_init(vigil_remediator *rem)
{
    vigil__json_init();
    int rc = vigil_store_state_list(rem->store, REM_KEY_TARGET, load_one, rem);
    if (rc > 0)
        rc = VIGIL_ENOMEM;
    return rc;
}

void vigil__rem_guards_free(vigil_remediator *rem)
{
    rem_guards *g = &rem->g;
    for (size_t b = 0; b < REM_TARGET_BUCKETS; b++) {
        rem_target *t = g->buckets[b];
        while (t) {
            rem_target *next = t->next;
            target_free(t);
            t = next;
        }
        g->buckets[b] = NULL;
    }
    pthread_mutex_destroy(&g->mu);
}

/* ---- checks ------------------------------------------------------------------- */

static double burst_of(const vigil_remediator *rem)
{
    if (rem->o.rate_burst > 0)
        return rem->o.rate_burst;
    double b = rem->o.rate_per_s * 60.0;
    return b < 1 ? 1 : (double)(int64_t)b;
}

static void fmt_ms(char *buf, size_t size, int64_t ms)
{
    if (ms < 0)
        ms = 0;
    if (vigil_scalar_format_duration(buf, size, ms))
        snprintf(buf, size, "%lldms", (long long)ms);
}

int vigil__rem_guards_check(vigil_remediator *rem, const rem_req *req, int phase,
                            int approval_required, const char **reason, char *msg, size_t msize,
                            int64_t *retry_after)
{
    rem_guards *g = &rem->g;
    int64_t now = vigil__rem_now(rem);
    const vigil_remediator_options *o = &rem->o;
    char d1[32], d2[32];
    *reason = NULL;
    msg[0] = '\0';
    *retry_after = 0;
    pthread_mutex_lock(&g->mu);
    rem_target *t = target_get(rem, req->target);
    if (!t) {
        pthread_mutex_unlock(&g->mu);
        return VIGIL_ENOMEM;
    }
    int64_t prev = t->last_request_ms;
    if (phase == REM_PHASE_NEW)
        t->last_request_ms = now;
    int out = REM_GUARD_PASS;
    rem_cooldown *cd = cooldown_find(t, req->action);
    if (t->running) {
        *reason = "busy";
        snprintf(msg, msize, "busy: another action is running on this target");
        out = REM_GUARD_REFUSE;
    } else if (o->cooldown_ms > 0 && cd && now - cd->last_ms < o->cooldown_ms) {
        *reason = "cooldown";
        fmt_ms(d1, sizeof(d1), now - cd->last_ms);
        fmt_ms(d2, sizeof(d2), o->cooldown_ms);
        snprintf(msg, msize, "cooldown: %s ran on this target %s ago (cooldown %s)", req->action,
                 d1, d2);
        *retry_after = o->cooldown_ms - (now - cd->last_ms);
        out = REM_GUARD_REFUSE;
    }
    if (out == REM_GUARD_PASS && o->max_attempts > 0) {
        if (t->quarantined && phase == REM_PHASE_NEW && now - prev >= o->reset_after_ms) {
            t->quarantined = 0;
            t->nattempts = 0;
            vigil__log(&rem->logger, VIGIL_LOG_INFO, "remediator", "quarantine ended",
                       "reason=reset_after");
        }
        attempts_prune(rem, t, now);
        if (!t->quarantined && t->nattempts >= o->max_attempts) {
            t->quarantined = 1;
            vigil__log(&rem->logger, VIGIL_LOG_WARN, "remediator", "target quarantined",
                       "attempts=%zu", t->nattempts);
        }
        if (t->quarantined) {
            *reason = "quarantined";
            fmt_ms(d1, sizeof(d1), o->window_ms);
            fmt_ms(d2, sizeof(d2), o->reset_after_ms);
            if (o->reset_after_ms > 0)
                snprintf(msg, msize,
                         "quarantined: %u attempts within %s; released after %s without requests, "
                         "or now by an administrator: POST /v1/targets/%.200s/release on the hub "
                         "(vigil release) or the remediator (scope admin)",
                         o->max_attempts, d1, d2, req->target);
            else
                snprintf(msg, msize,
                         "quarantined: %u attempts within %s; released at the next request, or now "
                         "by an administrator: POST /v1/targets/%.200s/release on the hub (vigil "
                         "release) or the remediator (scope admin)",
                         o->max_attempts, d1, req->target);
            *retry_after = o->reset_after_ms > 0 ? o->reset_after_ms : 0;
            out = REM_GUARD_REFUSE;
        }
    }
    if (out == REM_GUARD_PASS && o->rate_per_s > 0) {
        double burst = burst_of(rem);
        if (g->tokens_ms == 0) {
            g->tokens = burst;
        } else if (now > g->tokens_ms) {
            g->tokens += (double)(now - g->tokens_ms) / 1000.0 * o->rate_per_s;
            if (g->tokens > burst)
                g->tokens = burst;
        }
        g->tokens_ms = now > g->tokens_ms ? now : g->tokens_ms;
        if (g->tokens < 1.0) {
            *reason = "rate_limited";
            snprintf(msg, msize, "rate_limited: the global rate limit (%g/s, burst %g) is used up",
                     o->rate_per_s, burst);
            out = REM_GUARD_REFUSE;
        }
    }
    if (out == REM_GUARD_PASS && g->running >= o->max_concurrent) {
        *reason = "concurrency";
        snprintf(msg, msize, "concurrency: %u actions are running (max_concurrent %u)", g->running,
                 o->max_concurrent);
        out = REM_GUARD_REFUSE;
    }
    if (out == REM_GUARD_PASS && phase == REM_PHASE_NEW && approval_required) {
        out = REM_GUARD_APPROVAL;
    } else if (out == REM_GUARD_PASS) {
        if (o->rate_per_s > 0)
            g->tokens -= 1.0;
        g->running++;
        t->running = 1;
        if (o->max_attempts > 0)
            attempt_push(rem, t, now);
        if (cooldown_set(t, req->action, now)) {
            g->running--;
            t->running = 0;
            pthread_mutex_unlock(&g->mu);
            return VIGIL_ENOMEM;
        }
    }
    /* persist what a restart needs: attempts and last request (budget),
     * cooldown starts */
    if ((o->max_attempts > 0 && (phase == REM_PHASE_NEW || out == REM_GUARD_PASS)) ||
        (o->cooldown_ms > 0 && out == REM_GUARD_PASS))
        target_persist(rem, t);
    pthread_mutex_unlock(&g->mu);
    return out;
}

void vigil__rem_guards_done(vigil_remediator *rem, const char *target)
{
    rem_guards *g = &rem->g;
    pthread_mutex_lock(&g->mu);
    rem_target *t = target_find(g, target);
    if (t && t->running) {
        t->running = 0;
        if (g->running)
            g->running--;
    }
    pthread_mutex_unlock(&g->mu);
}

int vigil__rem_guards_release(vigil_remediator *rem, const char *target, int *released)
{
    rem_guards *g = &rem->g;
    *released = 0;
    pthread_mutex_lock(&g->mu);
    rem_target *t = target_find(g, target);
    if (t) {
        *released = t->quarantined;
        t->quarantined = 0;
        t->nattempts = 0;
        target_persist(rem, t);
    }
    pthread_mutex_unlock(&g->mu);
    return VIGIL_OK;
}

int vigil__rem_guards_quarantined_json(vigil_remediator *rem, vigil_buf *out)
{
    rem_guards *g = &rem->g;
    int64_t now = vigil__rem_now(rem);
    int rc = vigil__buf_putc(out, '[');
    int first = 1;
    pthread_mutex_lock(&g->mu);
    for (size_t b = 0; b < REM_TARGET_BUCKETS && !rc; b++) {
        for (const rem_target *t = g->buckets[b]; t && !rc; t = t->next) {
            if (!t->quarantined || now - t->last_request_ms >= rem->o.reset_after_ms)
                continue;
            if (!first)
                rc = vigil__buf_putc(out, ',');
            first = 0;
            if (!rc)
                rc = vigil__buf_puts(out, "{\"target\":");
            if (!rc)
                rc = vigil__json_put_string(out, t->target, strlen(t->target));
            if (!rc)
                rc = vigil__buf_printf(out, ",\"last_request\":%lld,\"until\":%lld}",
                                       (long long)t->last_request_ms,
                                       (long long)(t->last_request_ms + rem->o.reset_after_ms));
        }
    }
    pthread_mutex_unlock(&g->mu);
    return rc ? rc : vigil__buf_putc(out, ']');
}
