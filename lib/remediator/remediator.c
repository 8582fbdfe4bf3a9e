/* The remediator: life cycle, the worker pool, the exactly-once ledger,
 * guards in order, execution and the audit rows of each step.
 *
 * One request goes: submit (an in-flight entry per id: redeliveries of an id
 * being processed wait on it) -> worker: ledger put (an id seen before is
 * answered from the ledger and never run) -> audit "request" -> not_allowed
 * -> dry_run -> busy .. concurrency (guards.c) -> approval (parked) or
 * ledger "running" + audit "execute" -> execute -> audit "result" -> ledger
 * final (with the result row's seq and mac) -> every waiter is answered.
 * Approvals are in approvals.c, recovery at start-up in recovery.c. */
#include "internal/json.h"
#include "core/cond.h"
#include "internal/plugin.h"
#include "remediator/rem_int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- requests ------------------------------------------------------------------ */

static int dup_opt(char **out, const char *s)
{
    *out = NULL;
    if (!s)
        return VIGIL_OK;
    *out = vigil__strdup(s);
    return *out ? VIGIL_OK : vigil__error_oom();
}

void vigil__rem_req_free(rem_req *r)
{
    if (!r)
        return;
    vigil__free(r->id);
    vigil__free(r->action);
    vigil__free(r->target);
    vigil__free(r->reason);
    vigil__free(r->policy);
    for (size_t i = 0; i < r->nparams; i++) {
        vigil__free((char *)r->params[i].key);
        vigil__free((char *)r->params[i].value);
    }
    vigil__free(r->params);
    memset(r, 0, sizeof(*r));
}

int vigil__rem_req_copy(rem_req *dst, const vigil_action_request *src)
{
    memset(dst, 0, sizeof(*dst));
    int rc = dup_opt(&dst->id, src->id);
    if (!rc)
        rc = dup_opt(&dst->action, src->action ? src->action : "");
    if (!rc)
        rc = dup_opt(&dst->target, src->target ? src->target : "");
    if (!rc)
        rc = dup_opt(&dst->reason, src->reason);
    if (!rc)
        rc = dup_opt(&dst->policy, src->policy);
    if (!rc && src->nparams) {
        dst->params = vigil__calloc(src->nparams, sizeof(vigil_action_param));
        if (!dst->params)
            rc = vigil__error_oom();
        for (size_t i = 0; !rc && i < src->nparams; i++) {
            char *k = NULL, *v = NULL;
            rc = dup_opt(&k, src->params[i].key);
            if (!rc)
                rc = dup_opt(&v, src->params[i].value);
            dst->params[i].key = k;
            dst->params[i].value = v;
            dst->nparams++;
        }
    }
    dst->dry_run = src->dry_run;
    if (rc)
        vigil__rem_req_free(dst);
    return rc;
}

void vigil__rem_req_view(const rem_req *r, vigil_action_request *out)
{
    vigil_action_request v = VIGIL_ACTION_REQUEST_INIT;
    v.id = r->id;
    v.action = r->action;
    v.target = r->target;
    v.params = r->params;
    v.nparams = r->nparams;
    v.reason = r->reason;
    v.policy = r->policy;
    v.dry_run = r->dry_run;
    *out = v;
}

/* Appends s as a JSON string of at most `max` bytes of input. */
int vigil__rem_put_clipped(vigil_buf *b, const char *s, size_t max)
{
    if (!s)
        return vigil__buf_puts(b, "null");
    size_t n = strlen(s);
    return vigil__json_put_string(b, s, n > max ? max : n);
}

int vigil__rem_put_field(vigil_buf *b, const char *head, const char *s, size_t max)
{
    int rc = vigil__buf_puts(b, head);
    return rc ? rc : vigil__rem_put_clipped(b, s, max);
}

int vigil__rem_params_json(vigil_buf *out, const rem_req *r)
{
    int rc = vigil__buf_putc(out, '{');
    for (size_t i = 0; i < r->nparams && !rc; i++) {
        if (i)
            rc = vigil__buf_putc(out, ',');
        if (!rc)
            rc = vigil__rem_put_clipped(out, r->params[i].key ? r->params[i].key : "",
                                        AUDIT_TEXT_MAX);
        if (!rc)
            rc = vigil__buf_putc(out, ':');
        if (!rc)
            rc = vigil__rem_put_clipped(out, r->params[i].value ? r->params[i].value : "",
                                        AUDIT_TEXT_MAX);
    }
    return rc ? rc : vigil__buf_putc(out, '}');
}

int vigil__rem_params_parse(rem_req *r, const char *json)
{
    cJSON *j = NULL;
    if (!json || !*json)
        return VIGIL_OK;
    int rc = vigil__json_parse(&j, json, strlen(json), 4);
    if (rc)
        return rc;
    size_t n = (size_t)cJSON_GetArraySize(j);
    if (cJSON_IsObject(j) && n) {
        r->params = vigil__calloc(n, sizeof(vigil_action_param));
        if (!r->params)
            rc = vigil__error_oom();
        const cJSON *it;
        cJSON_ArrayForEach(it, j)
        {
            if (rc || !cJSON_IsString(it))
                continue;
            char *k = vigil__strdup(it->string), *v = vigil__strdup(it->valuestring);
            if (!k || !v) {
                vigil__free(k);
                vigil__free(v);
                rc = vigil__error_oom();
                break;
            }
            r->params[r->nparams].key = k;
            r->params[r->nparams].value = v;
            r->nparams++;
        }
    }
    cJSON_Delete(j);
    return rc;
}

/* A copy of s that the ledger accepts: valid UTF-8 (other bytes become '?'),
 * at most `max` bytes (cut at a character boundary), `empty` when empty. */
static char *ledger_text(const char *s, size_t max, const char *empty)
{
    if (!s || !*s)
        return empty ? vigil__strdup(empty) : NULL;
    size_t n = strlen(s);
    if (n > max)
        n = max;
    char *d = vigil__malloc(n + 1);
    if (!d)
        return NULL;
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (len && i + len <= n && vigil__utf8_valid(s + i, len)) {
            memcpy(d + i, s + i, len);
            i += len;
        } else {
            d[i++] = '?';
        }
    }
    d[n] = '\0';
    return d;
}

/* ---- results ------------------------------------------------------------------- */

int vigil__rem_result_json(vigil_buf *out, const vigil_action_result *r, int64_t seq,
                           const char *mac)
{
    int rc = vigil__rem_put_field(out, "{\"id\":", r->id, VIGIL_ACTION_ID_MAX);
    if (!rc)
        rc = vigil__buf_printf(
            out, ",\"status\":\"%s\",\"reason\":", vigil_action_status_name(r->status));
    if (!rc)
        rc = vigil__rem_put_clipped(out, r->reason, VIGIL_ACTION_TEXT_MAX);
    if (!rc)
        rc = vigil__buf_puts(out, ",\"output\":");
    if (!rc)
        rc = r->output ? vigil__json_put_string(out, r->output, r->output_len)
                       : vigil__buf_puts(out, "null");
    if (!rc)
        rc = vigil__buf_printf(out, ",\"duration_ms\":%lld",
                               (long long)(r->duration_ms > 0 ? r->duration_ms : 0));
    if (!rc && r->version >= 2 && r->retry_after_ms > 0)
        rc = vigil__buf_printf(out, ",\"retry_after_ms\":%lld", (long long)r->retry_after_ms);
    if (!rc && seq > 0 && mac && *mac)
        rc =
            vigil__buf_printf(out, ",\"audit\":{\"seq\":%lld,\"mac\":\"%s\"}", (long long)seq, mac);
    return rc ? rc : vigil__buf_putc(out, '}');
}

/* ---- small helpers -------------------------------------------------------------- */

static int64_t real_clock(void *payload)
{
    (void)payload;
    return vigil__now_ms();
}

int64_t vigil__rem_now(vigil_remediator *rem)
{
    return rem->o.clock(rem->o.clock_payload);
}

const char *vigil__rem_action_label(vigil_remediator *rem, const char *action)
{
    vigil_action_info info = VIGIL_ACTION_INFO_INIT;
    if (action && vigil_action_registry_find(rem->registry, action, &info) == VIGIL_OK)
        return info.name;
    return "unknown";
}

int vigil__rem_audit_row(vigil_remediator *rem, const char *kind, const char *id, vigil_buf *data,
                         int64_t *seq, char mac[VIGIL_AUDIT_MAC_HEX])
{
    int rc = vigil_audit_append(rem->audit, kind, id, data->ptr ? data->ptr : "{}", seq, mac);
    if (rc)
        vigil__log(&rem->logger, VIGIL_LOG_ERROR, "remediator", "audit append failed",
                   "kind=%s error=\"%s\"", kind, vigil_error_last()->message);
    return rc;
}

void vigil__rem_ledger_status(vigil_remediator *rem, const char *id, const char *status,
                              int64_t seq, const char *mac)
{
    vigil_store_action u;
    memset(&u, 0, sizeof(u));
    u.id = id;
    u.status = status;
    u.duration_ms = -1;
    u.updated_ms = vigil__rem_now(rem);
    u.audit_seq = seq;
    u.audit_hash = mac && *mac ? mac : NULL;
    if (vigil_store_action_update(rem->store, &u))
        vigil__log(&rem->logger, VIGIL_LOG_ERROR, "remediator", "ledger update failed",
                   "status=%s error=\"%s\"", status, vigil_error_last()->message);
}

static void free_waiters(rem_waiter *w)
{
    while (w) {
        rem_waiter *n = w->next;
        vigil__free(w);
        w = n;
    }
}

static void call_waiters(rem_waiter *w, const vigil_action_result *res, int64_t seq,
                         const char *mac)
{
    for (; w; w = w->next) {
        if (w->cb)
            w->cb(res, seq, mac ? mac : "", w->payload);
        else if (w->plain)
            w->plain(res, w->payload);
    }
}

/* Removes `flight` from the table (with mu held). */
static void flight_unlink_locked(vigil_remediator *rem, rem_flight *flight)
{
    for (rem_flight **p = &rem->flights; *p; p = &(*p)->next) {
        if (*p == flight) {
            *p = flight->next;
            return;
        }
    }
}

static rem_flight *flight_find_locked(vigil_remediator *rem, const char *id, rem_flight *except)
{
    for (rem_flight *f = rem->flights; f; f = f->next)
        if (f != except && strcmp(f->id, id) == 0)
            return f;
    return NULL;
}

/* Answers every waiter of `flight` (and frees it); with `late`, also the
 * late_result callback and the hub. */
static void deliver(vigil_remediator *rem, rem_flight *flight, const vigil_action_result *res,
                    int64_t seq, const char *mac, int late)
{
    rem_waiter *w = NULL;
    if (flight) {
        pthread_mutex_lock(&rem->mu);
        flight_unlink_locked(rem, flight);
        w = flight->waiters;
        flight->waiters = NULL;
        pthread_mutex_unlock(&rem->mu);
    }
    call_waiters(w, res, seq, mac);
    free_waiters(w);
    if (flight) {
        vigil__free(flight->id);
        vigil__free(flight);
    }
    if (!late)
        return;
    if (rem->o.late_result)
        rem->o.late_result(res, seq, mac ? mac : "", rem->o.late_result_payload);
    if (rem->hub) {
        vigil_buf b = VIGIL_BUF_INIT;
        if (vigil__rem_result_json(&b, res, seq, mac) ||
            vigil__hubpost_enqueue(rem->hub, res->id, b.ptr, b.size))
            vigil__log(&rem->logger, VIGIL_LOG_ERROR, "remediator",
                       "late result not queued for the hub", "error=\"%s\"",
                       vigil_error_last()->message);
        vigil_buf_dispose(&b);
    }
}

/* A result that was not recorded (shutting down, store failure): the HTTP
 * route answers 503 so that the hub delivers it again later. */
void vigil__rem_deliver_unrecorded(vigil_remediator *rem, rem_flight *flight, const char *id,
                                   const char *reason, const char *message)
{
    vigil_action_result res = VIGIL__ACTION_RESULT_EMPTY;
    vigil_action_result_set_id(&res, id);
    vigil_action_result_set_reason(&res, reason);
    if (message)
        vigil_action_result_set_output(&res, message, strlen(message));
    res.status = VIGIL_ACTION_FAILED;
    res.exit_code = REM_EXIT_UNRECORDED;
    deliver(rem, flight, &res, 0, "", 0);
    vigil_action_result_clear(&res);
}

/* Audit "result", ledger final, metrics, answer. */
void vigil__rem_finalize(vigil_remediator *rem, const rem_req *req, vigil_action_result *res,
                         rem_flight *flight, int late)
{
    if (!res->id)
        vigil_action_result_set_id(res, req->id);
    if (res->output && res->output_len > RESULT_OUTPUT_MAX) {
        size_t n = RESULT_OUTPUT_MAX;
        while (n && ((unsigned char)res->output[n] & 0xC0) == 0x80)
            n--;
        res->output[n] = '\0';
        res->output_len = n;
        res->output_truncated = 1;
    }
    vigil_buf d = VIGIL_BUF_INIT;
    int rc = vigil__buf_printf(
        &d, "{\"status\":\"%s\",\"reason\":", vigil_action_status_name(res->status));
    if (!rc)
        rc = vigil__rem_put_clipped(&d, res->reason, AUDIT_TEXT_MAX);
    if (!rc)
        rc = vigil__buf_printf(
            &d, ",\"duration_ms\":%lld,\"exit_code\":%d,\"output\":", (long long)res->duration_ms,
            res->exit_code < -1 ? -1 : res->exit_code);
    if (!rc)
        rc = res->output
                 ? vigil__json_put_string(&d, res->output,
                                          res->output_len > AUDIT_OUTPUT_MAX ? AUDIT_OUTPUT_MAX
                                                                             : res->output_len)
                 : vigil__buf_puts(&d, "null");
    if (!rc)
        rc = vigil__buf_printf(&d, ",\"output_bytes\":%zu}", res->output_len);
    int64_t seq = 0;
    char mac[VIGIL_AUDIT_MAC_HEX] = "";
    if (!rc)
        vigil__rem_audit_row(rem, "result", req->id, &d, &seq, mac);
    vigil_buf_dispose(&d);

    vigil_store_action u;
    memset(&u, 0, sizeof(u));
    u.id = req->id;
    u.status = vigil_action_status_name(res->status);
    u.result_reason = res->reason;
    u.output = res->output;
    u.duration_ms = res->duration_ms;
    u.updated_ms = vigil__rem_now(rem);
    u.audit_seq = seq;
    u.audit_hash = mac[0] ? mac : NULL;
    if (vigil_store_action_update(rem->store, &u))
        vigil__log(&rem->logger, VIGIL_LOG_ERROR, "remediator", "ledger update failed",
                   "error=\"%s\"", vigil_error_last()->message);
    if (late) {
        vigil_buf key = VIGIL_BUF_INIT;
        if (!vigil__buf_printf(&key, "%s%s", REM_KEY_APPROVAL, req->id))
            vigil_store_state_delete(rem->store, key.ptr);
        vigil_buf_dispose(&key);
    }
    const char *labels[] = {vigil__rem_action_label(rem, req->action),
                            vigil_action_status_name(res->status)};
    vigil__prom_add(rem->m_exec, labels, 1);
    deliver(rem, flight, res, seq, mac, late);
}

/* A refusal by guard `reason`: audit "guard", then finalize. */
void vigil__rem_refuse(vigil_remediator *rem, const rem_req *req, const char *reason,
                       const char *message, int64_t retry_after_ms, rem_flight *flight, int late)
{
    vigil_buf d = VIGIL_BUF_INIT;
    int rc = vigil__buf_printf(&d, "{\"guard\":\"%s\",\"message\":", reason);
    if (!rc)
        rc = vigil__rem_put_clipped(&d, message, AUDIT_OUTPUT_MAX);
    if (!rc)
        rc = vigil__buf_putc(&d, '}');
    if (!rc)
        vigil__rem_audit_row(rem, "guard", req->id, &d, NULL, NULL);
    vigil_buf_dispose(&d);
    const char *labels[] = {reason};
    vigil__prom_add(rem->m_refused, labels, 1);
    vigil_action_result res = VIGIL__ACTION_RESULT_EMPTY;
    res.status = VIGIL_ACTION_REFUSED;
    res.retry_after_ms = retry_after_ms > 0 ? retry_after_ms : 0;
    vigil_action_result_set_reason(&res, reason);
    if (message)
        vigil_action_result_set_output(&res, message, strlen(message));
    vigil__rem_finalize(rem, req, &res, flight, late);
    vigil_action_result_clear(&res);
}

static void internal_failure(vigil_remediator *rem, const rem_req *req, rem_flight *flight,
                             int late, const char *what)
{
    char msg[512];
    snprintf(msg, sizeof(msg), "%s: %s", what, vigil_error_last()->message);
    vigil_action_result res = VIGIL__ACTION_RESULT_EMPTY;
    res.status = VIGIL_ACTION_FAILED;
    vigil_action_result_set_reason(&res, "internal_error");
    vigil_action_result_set_output(&res, msg, strlen(msg));
    vigil__rem_finalize(rem, req, &res, flight, late);
    vigil_action_result_clear(&res);
}

/* ---- execution -------------------------------------------------------------------- */

static void execute(vigil_remediator *rem, const rem_req *req, rem_flight *flight, int late)
{
    vigil__rem_ledger_status(rem, req->id, "running", 0, NULL);
    vigil_buf d = VIGIL_BUF_INIT;
    int rc = vigil__rem_put_field(&d, "{\"action\":", req->action, AUDIT_TEXT_MAX);
    if (!rc)
        rc = vigil__rem_put_field(&d, ",\"target\":", req->target, AUDIT_TEXT_MAX);
    if (!rc)
        rc = vigil__buf_putc(&d, '}');
    if (!rc)
        rc = vigil__rem_audit_row(rem, "execute", req->id, &d, NULL, NULL);
    vigil_buf_dispose(&d);
    if (rc) {
        vigil__rem_guards_done(rem, req->target);
        internal_failure(rem, req, flight, late, "audit");
        return;
    }
    vigil_action_request view;
    vigil__rem_req_view(req, &view);
    view.dry_run = 0;
    vigil_action_result res = VIGIL__ACTION_RESULT_EMPTY;
    rc = vigil_action_registry_execute(rem->registry, &view, NULL, &res);
    vigil__rem_guards_done(rem, req->target);
    vigil_action_registry_reap(rem->registry);
    if (rc == VIGIL_EINVAL) {
        internal_failure(rem, req, flight, late, "execute");
    } else {
        const char *labels[] = {vigil__rem_action_label(rem, req->action)};
        vigil__prom_observe(rem->m_latency, labels, (double)res.duration_ms / 1000.0);
        vigil__rem_finalize(rem, req, &res, flight, late);
    }
    vigil_action_result_clear(&res);
}

/* Parks a request that needs approval. Takes `req`. */
static void park(vigil_remediator *rem, rem_req *req, rem_flight *flight, int64_t expires_ms)
{
    rem_approval *ap = vigil__calloc(1, sizeof(*ap));
    if (!ap) {
        vigil__error_oom();
        internal_failure(rem, req, flight, 0, "approval");
        return;
    }
    ap->req = *req;
    memset(req, 0, sizeof(*req));
    ap->expires_ms = expires_ms;
    vigil_buf key = VIGIL_BUF_INIT, d = VIGIL_BUF_INIT;
    int rc = vigil__buf_printf(&key, "%s%s", REM_KEY_APPROVAL, ap->req.id);
    if (!rc)
        rc = vigil__buf_printf(&d, "{\"expires\":%lld}", (long long)expires_ms);
    if (!rc)
        rc = vigil_store_state_put(rem->store, key.ptr, d.ptr, d.size);
    int64_t seq = 0;
    char mac[VIGIL_AUDIT_MAC_HEX] = "";
    vigil__buf_clear(&d);
    if (!rc)
        rc = vigil__buf_printf(&d, "{\"state\":\"pending\",\"expires\":%lld}",
                               (long long)expires_ms);
    if (!rc)
        rc = vigil__rem_audit_row(rem, "approval", ap->req.id, &d, &seq, mac);
    vigil_buf_dispose(&key);
    vigil_buf_dispose(&d);
    if (rc) {
        internal_failure(rem, &ap->req, flight, 0, "approval");
        vigil__rem_req_free(&ap->req);
        vigil__free(ap);
        return;
    }
    vigil__rem_ledger_status(rem, ap->req.id, "pending_approval", seq, mac);
    vigil_action_result res = VIGIL__ACTION_RESULT_EMPTY;
    res.status = VIGIL_ACTION_PENDING_APPROVAL;
    vigil_action_result_set_id(&res, ap->req.id);
    pthread_mutex_lock(&rem->mu);
    ap->next = rem->approvals;
    rem->approvals = ap;
    pthread_mutex_unlock(&rem->mu);
    vigil__log(&rem->logger, VIGIL_LOG_INFO, "remediator", "waiting for approval",
               "action=%s expires=%lld", vigil__rem_action_label(rem, ap->req.action),
               (long long)expires_ms);
    deliver(rem, flight, &res, seq, mac, 0);
    vigil_action_result_clear(&res);
}

/* An id recorded before: answer from the ledger. */
static void answer_recorded(vigil_remediator *rem, rem_job *job)
{
    vigil_store_action *rec = NULL;
    if (vigil_store_action_get(rem->store, job->req.id, &rec)) {
        vigil__rem_deliver_unrecorded(rem, job->flight, job->req.id, "internal_error",
                                      vigil_error_last()->message);
        return;
    }
    vigil_action_status st;
    int known = vigil_action_status_parse(&st, rec->status ? rec->status : "") == VIGIL_OK;
    if (known) {
        vigil_action_result res = VIGIL__ACTION_RESULT_EMPTY;
        res.status = st;
        vigil_action_result_set_id(&res, rec->id);
        if (st != VIGIL_ACTION_PENDING_APPROVAL) {
            vigil_action_result_set_reason(&res, rec->result_reason);
            if (rec->output)
                vigil_action_result_set_output(&res, rec->output, strlen(rec->output));
            res.duration_ms = rec->duration_ms > 0 ? rec->duration_ms : 0;
        }
        deliver(rem, job->flight, &res, rec->audit_seq, rec->audit_hash ? rec->audit_hash : "", 0);
        vigil_action_result_clear(&res);
        vigil_store_action_free(rec);
        return;
    }
    vigil_store_action_free(rec);
    /* pending, approved or running: in this process, another flight carries
     * it (an approval racing with a redelivery): wait for that one */
    pthread_mutex_lock(&rem->mu);
    rem_flight *other = flight_find_locked(rem, job->req.id, job->flight);
    if (other) {
        flight_unlink_locked(rem, job->flight);
        rem_waiter **tail = &other->waiters;
        while (*tail)
            tail = &(*tail)->next;
        *tail = job->flight->waiters;
        job->flight->waiters = NULL;
        pthread_mutex_unlock(&rem->mu);
        vigil__free(job->flight->id);
        vigil__free(job->flight);
        job->flight = NULL;
        return;
    }
    pthread_mutex_unlock(&rem->mu);
    /* left unfinished by a process that died: never run again */
    vigil_action_result res = VIGIL__ACTION_RESULT_EMPTY;
    res.status = VIGIL_ACTION_FAILED;
    vigil_action_result_set_reason(&res, "interrupted");
    static const char msg[] = "the remediator stopped while this request was in progress";
    vigil_action_result_set_output(&res, msg, sizeof(msg) - 1);
    vigil__rem_finalize(rem, &job->req, &res, job->flight, 0);
    vigil_action_result_clear(&res);
}

static void process_new(vigil_remediator *rem, rem_job *job)
{
    rem_req *req = &job->req;
    int64_t now = vigil__rem_now(rem);
    vigil_buf params = VIGIL_BUF_INIT;
    vigil_store_action rec;
    memset(&rec, 0, sizeof(rec));
    char *action = ledger_text(req->action, LEDGER_TEXT_MAX, "-");
    char *target = ledger_text(req->target, LEDGER_TEXT_MAX, "-");
    char *reason = ledger_text(req->reason, LEDGER_TEXT_MAX, NULL);
    char *policy = ledger_text(req->policy, LEDGER_TEXT_MAX, NULL);
    int rc = vigil__rem_params_json(&params, req);
    if (!rc && (!action || !target || (req->reason && *req->reason && !reason) ||
                (req->policy && *req->policy && !policy)))
        rc = vigil__error_oom();
    int created = 0;
    if (!rc) {
        rec.id = req->id;
        rec.requested_ms = now;
        rec.action = action;
        rec.target = target;
        rec.params_json = params.ptr;
        rec.reason = reason;
        rec.policy = policy;
        rec.dry_run = req->dry_run;
        rec.status = "pending";
        rec.duration_ms = -1;
        rec.updated_ms = now;
        rc = vigil_store_action_put(rem->store, &rec, &created);
    }
    vigil__free(action);
    vigil__free(target);
    vigil__free(reason);
    vigil__free(policy);
    if (rc) {
        vigil_buf_dispose(&params);
        vigil__log(&rem->logger, VIGIL_LOG_ERROR, "remediator", "ledger put failed", "error=\"%s\"",
                   vigil_error_last()->message);
        vigil__rem_deliver_unrecorded(rem, job->flight, req->id, "internal_error",
                                      vigil_error_last()->message);
        job->flight = NULL;
        return;
    }
    if (!created) {
        vigil_buf_dispose(&params);
        answer_recorded(rem, job);
        job->flight = NULL;
        return;
    }
    rem_flight *flight = job->flight;
    job->flight = NULL;

    /* audit "request" */
    vigil_buf d = VIGIL_BUF_INIT;
    rc = vigil__rem_put_field(&d, "{\"action\":", req->action, AUDIT_TEXT_MAX);
    if (!rc)
        rc = vigil__rem_put_field(&d, ",\"target\":", req->target, AUDIT_TEXT_MAX);
    if (!rc)
        rc = vigil__buf_printf(&d, ",\"target_bytes\":%zu,\"params\":", strlen(req->target));
    if (!rc)
        rc = vigil__buf_put(&d, params.ptr, params.size);
    if (!rc)
        rc = vigil__rem_put_field(&d, ",\"reason\":", req->reason, AUDIT_TEXT_MAX);
    if (!rc)
        rc = vigil__rem_put_field(&d, ",\"policy\":", req->policy, AUDIT_TEXT_MAX);
    if (!rc)
        rc = vigil__buf_printf(&d, ",\"dry_run\":%s}", req->dry_run ? "true" : "false");
    if (!rc)
        rc = vigil__rem_audit_row(rem, "request", req->id, &d, NULL, NULL);
    vigil_buf_dispose(&d);
    vigil_buf_dispose(&params);
    if (rc) {
        internal_failure(rem, req, flight, 0, "audit");
        return;
    }

    /* not_allowed */
    vigil_action_request view;
    vigil__rem_req_view(req, &view);
    vigil_action_result res = VIGIL__ACTION_RESULT_EMPTY;
    rc = vigil_action_registry_validate(rem->registry, &view, &res);
    if (rc == VIGIL_EPERM || rc == VIGIL_ENOTFOUND) {
        char msg[1024];
        snprintf(msg, sizeof(msg), "%s", res.output ? res.output : vigil_error_last()->message);
        vigil_action_result_clear(&res);
        vigil__rem_refuse(rem, req, "not_allowed", msg, 0, flight, 0);
        return;
    }
    vigil_action_result_clear(&res);
    if (rc) {
        internal_failure(rem, req, flight, 0, "validate");
        return;
    }
    vigil_action_info info = VIGIL_ACTION_INFO_INIT;
    vigil_action_registry_find(rem->registry, req->action, &info);

    /* dry_run */
    if (rem->o.dry_run || req->dry_run || info.dry_run) {
        const char *why = rem->o.dry_run ? "global" : info.dry_run ? "action" : "request";
        vigil__buf_printf(&d, "{\"guard\":\"dry_run\",\"message\":\"dry run (%s)\"}", why);
        vigil__rem_audit_row(rem, "guard", req->id, &d, NULL, NULL);
        vigil_buf_dispose(&d);
        const char *labels[] = {"dry_run"};
        vigil__prom_add(rem->m_refused, labels, 1);
        view.dry_run = 1;
        rc = vigil_action_registry_execute(rem->registry, &view, NULL, &res);
        if (rc && res.status != VIGIL_ACTION_REFUSED)
            internal_failure(rem, req, flight, 0, "dry run");
        else
            vigil__rem_finalize(rem, req, &res, flight, 0);
        vigil_action_result_clear(&res);
        return;
    }

    /* busy .. concurrency, approval */
    const char *why = NULL;
    char msg[512];
    int64_t retry_after = 0;
    int g = vigil__rem_guards_check(rem, req, REM_PHASE_NEW, info.approval_required, &why, msg,
                                    sizeof(msg), &retry_after);
    if (g < 0) {
        internal_failure(rem, req, flight, 0, "guards");
    } else if (g == REM_GUARD_REFUSE) {
        vigil__rem_refuse(rem, req, why, msg, retry_after, flight, 0);
    } else if (g == REM_GUARD_APPROVAL) {
        park(rem, req, flight, now + info.approval_expires_ms);
    } else {
        execute(rem, req, flight, 0);
    }
}

static void process_approved(vigil_remediator *rem, rem_job *job)
{
    rem_flight *flight = job->flight;
    job->flight = NULL;
    const char *why = NULL;
    char msg[512];
    int64_t retry_after = 0;
    int g = vigil__rem_guards_check(rem, &job->req, REM_PHASE_APPROVED, 0, &why, msg, sizeof(msg),
                                    &retry_after);
    if (g < 0)
        internal_failure(rem, &job->req, flight, 1, "guards");
    else if (g == REM_GUARD_REFUSE)
        vigil__rem_refuse(rem, &job->req, why, msg, retry_after, flight, 1);
    else
        execute(rem, &job->req, flight, 1);
}

void vigil__rem_queue_push(vigil_remediator *rem, rem_job *job)
{
    if (rem->qtail)
        rem->qtail->next = job;
    else
        rem->qhead = job;
    rem->qtail = job;
    rem->qlen++;
    pthread_cond_signal(&rem->cv);
}

void vigil__rem_job_free(rem_job *job)
{
    if (!job)
        return;
    vigil__rem_req_free(&job->req);
    if (job->flight) {
        free_waiters(job->flight->waiters);
        vigil__free(job->flight->id);
        vigil__free(job->flight);
    }
    vigil__free(job);
}

static void *worker_main(void *arg)
{
    vigil_remediator *rem = arg;
    for (;;) {
        pthread_mutex_lock(&rem->mu);
        while (!rem->qhead && !rem->stopping)
            pthread_cond_wait(&rem->cv, &rem->mu);
        if (rem->stopping) {
            pthread_mutex_unlock(&rem->mu);
            break;
        }
        rem_job *job = rem->qhead;
        rem->qhead = job->next;
        if (!rem->qhead)
            rem->qtail = NULL;
        rem->qlen--;
        pthread_mutex_unlock(&rem->mu);
        if (job->kind == REM_JOB_APPROVED)
            process_approved(rem, job);
        else
            process_new(rem, job);
        vigil__rem_job_free(job);
    }
    return NULL;
}

/* ---- submit ------------------------------------------------------------------------ */

static int id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > VIGIL_ACTION_ID_MAX || !vigil__utf8_valid(id, n))
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)id[i] < 0x20 || id[i] == 0x7f)
            return 0;
    return 1;
}

/* Frees what submit_common() allocated and did not hand over (each may be NULL). */
static void submit_undo(rem_job *job, rem_waiter *w, rem_flight *flight)
{
    vigil__rem_job_free(job);
    vigil__free(w);
    if (flight)
        vigil__free(flight->id);
    vigil__free(flight);
}

static int submit_common(vigil_remediator *rem, const vigil_action_request *request,
                         vigil_remediator_result_cb cb, vigil_action_done_cb plain, void *payload)
{
    if (!rem || !request || (!cb && !plain))
        return vigil__error_set(VIGIL_EINVAL, "remediator submit: NULL argument");
    if (vigil__version_check("remediator submit request", request->version,
                             VIGIL_ACTION_REQUEST_VERSION))
        return VIGIL_EVERSION;
    if (request->id && !id_valid(request->id))
        return vigil__error_set(VIGIL_EINVAL,
                                "id: expected 1 to %d bytes of UTF-8 without control characters",
                                VIGIL_ACTION_ID_MAX);
    if (request->nparams && !request->params)
        return vigil__error_set(VIGIL_EINVAL, "remediator submit: nparams without params");
    rem_job *job = vigil__calloc(1, sizeof(*job));
    rem_waiter *w = vigil__calloc(1, sizeof(*w));
    rem_flight *flight = vigil__calloc(1, sizeof(*flight));
    int rc = job && w && flight ? vigil__rem_req_copy(&job->req, request) : vigil__error_oom();
    char minted[64];
    if (!rc && !job->req.id) {
        pthread_mutex_lock(&rem->mu);
        uint64_t n = ++rem->mint_seq;
        pthread_mutex_unlock(&rem->mu);
        snprintf(minted, sizeof(minted), "rem-%lld-%d-%llu", (long long)vigil__rem_now(rem),
                 (int)getpid(), (unsigned long long)n);
        if (!(job->req.id = vigil__strdup(minted)))
            rc = vigil__error_oom();
    }
    if (!rc && !(flight->id = vigil__strdup(job->req.id)))
        rc = vigil__error_oom();
    if (rc) {
        submit_undo(job, w, flight);
        return rc;
    }
    w->cb = cb;
    w->plain = plain;
    w->payload = payload;
    pthread_mutex_lock(&rem->mu);
    if (!rem->started || rem->stopping) {
        rc = vigil__error_set(VIGIL_ECLOSED, "remediator: not running");
    } else {
        rem_flight *f = flight_find_locked(rem, job->req.id, NULL);
        if (f) {
            rem_waiter **tail = &f->waiters;
            while (*tail)
                tail = &(*tail)->next;
            *tail = w;
            w = NULL;
        } else if (rem->qlen >= rem->o.queue_max) {
            rc = vigil__error_set(VIGIL_EOVERLOADED, "remediator: %zu requests are queued",
                                  rem->qlen);
        } else {
            flight->waiters = w;
            w = NULL;
            flight->next = rem->flights;
            rem->flights = flight;
            job->flight = flight;
            flight = NULL;
            vigil__rem_queue_push(rem, job);
            job = NULL;
        }
    }
    pthread_mutex_unlock(&rem->mu);
    submit_undo(job, w, flight);
    return rc;
}

int vigil_remediator_submit(vigil_remediator *rem, const vigil_action_request *request,
                            vigil_action_done_cb done, void *payload)
{
    if (!done)
        return vigil__error_set(VIGIL_EINVAL, "remediator submit: NULL callback");
    return submit_common(rem, request, NULL, done, payload);
}

int vigil_remediator_submit_audited(vigil_remediator *rem, const vigil_action_request *request,
                                    vigil_remediator_result_cb done, void *payload)
{
    if (!done)
        return vigil__error_set(VIGIL_EINVAL, "remediator submit: NULL callback");
    return submit_common(rem, request, done, NULL, payload);
}

static int dispatcher_submit(void *self, const vigil_action_request *request,
                             vigil_action_done_cb done, void *payload)
{
    return vigil_remediator_submit(self, request, done, payload);
}

int vigil_remediator_dispatcher(vigil_remediator *rem, vigil_action_dispatcher *out)
{
    if (!rem || !out)
        return vigil__error_set(VIGIL_EINVAL, "remediator dispatcher: NULL argument");
    vigil_action_dispatcher d = VIGIL_ACTION_DISPATCHER_INIT;
    d.self = rem;
    d.submit = dispatcher_submit;
    *out = d;
    return VIGIL_OK;
}

/* ---- life cycle ------------------------------------------------------------------ */

int vigil_remediator_options_init(vigil_remediator_options *opts, unsigned int version)
{
    if (!opts)
        return vigil__error_set(VIGIL_EINVAL, "remediator options: NULL");
    if (vigil__version_check("remediator options", version, VIGIL_REMEDIATOR_OPTIONS_VERSION))
        return VIGIL_EVERSION;
    vigil_remediator_options d = VIGIL_REMEDIATOR_OPTIONS_INIT;
    *opts = d;
    return VIGIL_OK;
}

static double pending_gauge(void *payload)
{
    vigil_remediator *rem = payload;
    size_t n = 0;
    pthread_mutex_lock(&rem->mu);
    for (const rem_approval *a = rem->approvals; a; a = a->next)
        n++;
    pthread_mutex_unlock(&rem->mu);
    return (double)n;
}

static int init_metrics(vigil_remediator *rem)
{
    static const char *const as[] = {"action", "status", NULL};
    static const char *const r[] = {"reason", NULL};
    static const char *const a[] = {"action", NULL};
    int rc = vigil__prom_new(&rem->prom);
    if (!rc)
        rc = vigil__prom_counter(rem->prom, &rem->m_exec, "vigil_remediator_results_total",
                                 "Requests finished, by action and result status.", as);
    if (!rc)
        rc = vigil__prom_counter(rem->prom, &rem->m_refused, "vigil_remediator_refusals_total",
                                 "Requests refused (or dry-run) by a guard, by reason.", r);
    if (!rc)
        rc = vigil__prom_histogram(rem->prom, &rem->m_latency,
                                   "vigil_remediator_execution_duration_seconds",
                                   "Time an action took to execute, by action.", a,
                                   vigil__prom_latency_buckets, vigil__prom_latency_nbuckets);
    if (!rc)
        rc = vigil__prom_gauge_func(rem->prom, "vigil_remediator_pending_approvals",
                                    "Requests waiting for an administrator's approval.",
                                    pending_gauge, rem);
    return rc;
}

/* The database path of a sqlite:// URL, for the key file; NULL for memory
 * and for a server (postgresql://): their key comes from audit_key_env. */
static char *db_path(const char *url)
{
    const char *p = NULL;
    if (strncmp(url, "sqlite://", 9) == 0)
        p = url + 9;
    else if (strncmp(url, "sqlite:", 7) == 0)
        p = url + 7;
    if (!p || !*p || strncmp(p, ":memory:", 8) == 0)
        return NULL;
    size_t n = strcspn(p, "?");
    return vigil__strndup(p, n);
}

static int load_secret(vigil_remediator *rem, const vigil_remediator_options *o)
{
    if (o->secret) {
        if (o->secret_len < VIGIL_SIGNATURE_SECRET_MIN)
            return vigil__error_set(VIGIL_EINVAL,
                                    "remediator: the secret is %zu bytes; at least %d are required",
                                    o->secret_len, VIGIL_SIGNATURE_SECRET_MIN);
        rem->secret = vigil__malloc(o->secret_len);
        if (!rem->secret)
            return vigil__error_oom();
        memcpy(rem->secret, o->secret, o->secret_len);
        rem->secret_len = o->secret_len;
        return VIGIL_OK;
    }
    if (!o->secret_env)
        return VIGIL_OK;
    const char *v = getenv(o->secret_env);
    if (!v || !*v)
        return vigil__error_set(VIGIL_EENV,
                                "secret_env: environment variable %.128s (the request signing "
                                "secret shared with the hub) is not set",
                                o->secret_env);
    if (strlen(v) < VIGIL_SIGNATURE_SECRET_MIN)
        return vigil__error_set(VIGIL_EVALUE,
                                "secret_env: the secret in %.128s is %zu bytes; at least %d are "
                                "required (e.g. head -c 32 /dev/urandom | base64)",
                                o->secret_env, strlen(v), VIGIL_SIGNATURE_SECRET_MIN);
    rem->secret_len = strlen(v);
    rem->secret = vigil__strdup(v);
    return rem->secret ? VIGIL_OK : vigil__error_oom();
}

static int open_audit(vigil_remediator *rem, const vigil_remediator_options *o)
{
    vigil_buf key = VIGIL_BUF_INIT;
    int rc = VIGIL_OK;
    if (o->audit_key) {
        rc = vigil__buf_put(&key, o->audit_key, o->audit_key_len);
    } else {
        char *path = db_path(rem->store_url);
        char *kf = NULL;
        if (path) {
            size_t n = strlen(path) + 5;
            kf = vigil__malloc(n);
            if (kf)
                snprintf(kf, n, "%s.key", path);
        }
        if (path && !kf)
            rc = vigil__error_oom();
        if (!rc && !kf && (!o->audit_key_env || !getenv(o->audit_key_env)))
            rc = vigil__error_set(VIGIL_EENV,
                                  "audit_key_env: a store without a file (in memory, or on a "
                                  "database server) needs the audit key from the environment");
        if (!rc)
            rc = vigil_audit_key_load(&key, o->audit_key_env, kf);
        vigil__free(path);
        vigil__free(kf);
    }
    vigil_audit_options ao = VIGIL_AUDIT_OPTIONS_INIT;
    ao.store = rem->store;
    ao.key = key.ptr;
    ao.key_len = key.size;
    ao.clock = o->clock;
    ao.clock_payload = o->clock_payload;
    ao.logger = rem->logger;
    if (!rc)
        rc = vigil_audit_open(&rem->audit, &ao);
    if (key.ptr) {
        volatile char *p = key.ptr;
        for (size_t i = 0; i < key.asize; i++)
            p[i] = 0;
    }
    vigil_buf_dispose(&key);
    return rc;
}

static int build_registry(vigil_remediator *rem, const vigil_remediator_options *o)
{
    vigil_action_registry_options ro = VIGIL_ACTION_REGISTRY_OPTIONS_INIT;
    ro.logger = rem->logger;
    ro.base_dir = rem->base_dir;
    ro.clock = o->clock;
    ro.clock_payload = o->clock_payload;
    char *dflt = NULL;
    ro.state_dir = o->state_dir;
    if (!ro.state_dir && (dflt = db_path(rem->store_url)) != NULL) {
        size_t n = strlen(dflt) + 7;
        char *sd = vigil__malloc(n);
        if (!sd) {
            vigil__free(dflt);
            return vigil__error_oom();
        }
        snprintf(sd, n, "%s.state", dflt);
        vigil__free(dflt);
        ro.state_dir = dflt = sd;
    }
    int rc = vigil_action_registry_new(&rem->registry, &ro);
    vigil__free(dflt);
    if (!rc)
        rc = vigil_action_registry_add_builtins(rem->registry);
    if (!rc)
        vigil__action_registry_set_fallback(rem->registry, o->action_types);
    if (!rc && o->actions)
        rc = vigil_action_registry_configure(rem->registry, o->actions);
    return rc;
}

/* Options say 0 for "the default" and VIGIL_REMEDIATOR_DISABLED for "off";
 * the guards read 0 as "off". */
static void resolve_guards(vigil_remediator_options *o)
{
    o->cooldown_ms = o->cooldown_ms < 0 ? 0 : o->cooldown_ms ? o->cooldown_ms : 60000;
    o->max_attempts = o->max_attempts == (unsigned int)VIGIL_REMEDIATOR_DISABLED ? 0
                      : o->max_attempts                                          ? o->max_attempts
                                                                                 : 3;
    o->window_ms = o->window_ms ? o->window_ms : 600000;
    o->reset_after_ms = o->reset_after_ms < 0 ? 0 : o->reset_after_ms ? o->reset_after_ms : 600000;
    o->rate_per_s = o->rate_per_s < 0 ? 0 : o->rate_per_s > 0 ? o->rate_per_s : 0.5;
    o->max_concurrent = o->max_concurrent ? o->max_concurrent : 4;
}

int vigil_remediator_new(vigil_remediator **out, const vigil_remediator_options *opts)
{
    vigil_remediator_options dflt = VIGIL_REMEDIATOR_OPTIONS_INIT;
    if (!out)
        return vigil__error_set(VIGIL_EINVAL, "remediator: NULL argument");
    *out = NULL;
    if (!opts)
        opts = &dflt;
    if (vigil__version_check("remediator options", opts->version, VIGIL_REMEDIATOR_OPTIONS_VERSION))
        return VIGIL_EVERSION;
    if (opts->window_ms < 0 || opts->rate_burst < 0 || opts->max_skew_s < 0 ||
        opts->tick_interval_ms < 0 || opts->hub_backoff_ms < 0 || opts->hub_timeout_ms < 0)
        return vigil__error_set(VIGIL_EINVAL, "remediator options: negative duration or rate");
    if (opts->audit_key && !opts->audit_key_len)
        return vigil__error_set(VIGIL_EINVAL, "remediator options: array without length");
    const char *url = opts->store_url ? opts->store_url : VIGIL_REMEDIATOR_DEFAULT_STORE;
    if (strstr(url, "synchronous=normal"))
        return vigil__error_set(VIGIL_EINVAL, "remediator: the audit store must be written with "
                                              "synchronous=full");

    vigil_remediator *rem = vigil__calloc(1, sizeof(*rem));
    if (!rem)
        return vigil__error_oom();
    rem->o = *opts;
    resolve_guards(&rem->o);
    rem->logger = opts->logger;
    rem->o.logger = opts->logger;
    if (!rem->o.clock) {
        rem->o.clock = real_clock;
        rem->o.clock_payload = NULL;
    }
    if (!rem->o.workers)
        rem->o.workers = rem->o.max_concurrent + 2;
    if (rem->o.workers > 256)
        rem->o.workers = 256;
    if (!rem->o.queue_max)
        rem->o.queue_max = 1024;
    if (!rem->o.tick_interval_ms)
        rem->o.tick_interval_ms = 200;
    if (!rem->o.recent_max)
        rem->o.recent_max = 100;
    if (!rem->o.max_skew_s)
        rem->o.max_skew_s = VIGIL_SIGNATURE_MAX_SKEW_S;
    rem->o.actions = NULL;
    rem->o.audit_key = NULL;
    rem->o.secret = NULL;
    rem->o.secret_env = NULL;
    rem->o.store_url = NULL;
    rem->o.base_dir = NULL;
    rem->o.audit_key_env = NULL;
    rem->o.hub_url = NULL;
    rem->o.hub_token_env = NULL;
    pthread_mutex_init(&rem->mu, NULL);
    pthread_mutex_init(&rem->authmu, NULL);
    pthread_mutex_init(&rem->epoch_mu, NULL);
    rem->auth_last_ms = INT64_MIN / 2;
    pthread_cond_init(&rem->cv, NULL);
    vigil__cond_init_monotonic(&rem->tcv);
    memset(&rem->g, 0, sizeof(rem->g));
    pthread_mutex_init(&rem->g.mu, NULL);
    rem->g_inited = 1;

    int rc = VIGIL_OK;
    if (!(rem->store_url = vigil__strdup(url)))
        rc = vigil__error_oom();
    if (!rc) {
        if (opts->base_dir) {
            rem->base_dir = vigil__strdup(opts->base_dir);
            if (!rem->base_dir)
                rc = vigil__error_oom();
        } else {
            char cwd[PATH_MAX];
            if (!getcwd(cwd, sizeof(cwd)))
                rc = vigil__error_set(VIGIL_EIO, "remediator: getcwd: %s", strerror(errno));
            else if (!(rem->base_dir = vigil__strdup(cwd)))
                rc = vigil__error_oom();
        }
    }
    if (!rc)
        rc = load_secret(rem, opts);
    if (!rc)
        rc = init_metrics(rem);
    if (!rc)
        rc = build_registry(rem, opts);
    if (!rc) {
        vigil_store_options so = VIGIL_STORE_OPTIONS_INIT;
        so.logger = rem->logger;
        so.synchronous = VIGIL_STORE_SYNC_FULL;
        so.registry = opts->store_types;
        rc = vigil_store_open(&rem->store, rem->store_url, &so);
    }
    if (!rc)
        rc = open_audit(rem, opts);
    if (!rc)
        rc = vigil__rem_guards_init(rem);
    if (!rc && opts->hub_url)
        rc = vigil__hubpost_new(&rem->hub, opts, rem->secret, rem->secret_len, &rem->logger);
    if (!rc)
        rc = vigil__rem_recover(rem);
    if (rc) {
        vigil_error saved = *vigil_error_last();
        char msg[1024];
        snprintf(msg, sizeof(msg), "%s", saved.message);
        vigil_remediator_free(rem);
        return vigil__error_set(rc, "%s", msg);
    }
    *out = rem;
    return VIGIL_OK;
}

static void *ticker_main(void *arg)
{
    vigil_remediator *rem = arg;
    pthread_mutex_lock(&rem->mu);
    while (!rem->stopping) {
        vigil__cond_wait_until(&rem->tcv, &rem->mu,
                               vigil__monotonic_ms() + rem->o.tick_interval_ms);
        if (rem->stopping)
            break;
        pthread_mutex_unlock(&rem->mu);
        vigil_remediator_tick(rem);
        pthread_mutex_lock(&rem->mu);
    }
    pthread_mutex_unlock(&rem->mu);
    return NULL;
}

int vigil_remediator_start(vigil_remediator *rem)
{
    if (!rem)
        return vigil__error_set(VIGIL_EINVAL, "remediator: NULL argument");
    pthread_mutex_lock(&rem->mu);
    int started = rem->started, stopped = rem->stopping;
    pthread_mutex_unlock(&rem->mu);
    if (stopped)
        return vigil__error_set(VIGIL_ECLOSED, "remediator: stopped");
    if (started)
        return vigil__error_set(VIGIL_EINVAL, "remediator: already started");
    rem->threads = vigil__calloc(rem->o.workers, sizeof(pthread_t));
    if (!rem->threads)
        return vigil__error_oom();
    int rc = rem->hub ? vigil__hubpost_start(rem->hub) : VIGIL_OK;
    for (size_t i = 0; !rc && i < rem->o.workers; i++) {
        if (pthread_create(&rem->threads[i], NULL, worker_main, rem))
            rc = vigil__error_set(VIGIL_ERROR, "remediator: cannot start a worker thread");
        else
            rem->nthreads++;
    }
    if (!rc) {
        if (pthread_create(&rem->ticker, NULL, ticker_main, rem))
            rc = vigil__error_set(VIGIL_ERROR, "remediator: cannot start the ticker");
        else
            rem->ticker_started = 1;
    }
    pthread_mutex_lock(&rem->mu);
    rem->started = 1;
    pthread_mutex_unlock(&rem->mu);
    if (rc) {
        vigil_remediator_stop(rem);
        return rc;
    }
    vigil__log(&rem->logger, VIGIL_LOG_INFO, "remediator", "started",
               "actions=%zu workers=%zu max_concurrent=%u dry_run=%d",
               vigil_action_registry_count(rem->registry), rem->o.workers, rem->o.max_concurrent,
               rem->o.dry_run);
    return VIGIL_OK;
}

void vigil_remediator_stop(vigil_remediator *rem)
{
    if (!rem)
        return;
    pthread_mutex_lock(&rem->mu);
    if (rem->stopped) {
        pthread_mutex_unlock(&rem->mu);
        return;
    }
    rem->stopping = 1;
    rem->stopped = 1;
    pthread_cond_broadcast(&rem->cv);
    pthread_cond_broadcast(&rem->tcv);
    pthread_mutex_unlock(&rem->mu);
    for (size_t i = 0; i < rem->nthreads; i++)
        pthread_join(rem->threads[i], NULL);
    rem->nthreads = 0;
    if (rem->ticker_started) {
        pthread_join(rem->ticker, NULL);
        rem->ticker_started = 0;
    }
    /* requests still queued were never recorded: answer them */
    pthread_mutex_lock(&rem->mu);
    rem_job *q = rem->qhead;
    rem->qhead = rem->qtail = NULL;
    rem->qlen = 0;
    pthread_mutex_unlock(&rem->mu);
    while (q) {
        rem_job *job = q;
        q = q->next;
        if (job->kind == REM_JOB_APPROVED)
            vigil__rem_ledger_status(rem, job->req.id, "pending_approval", 0, NULL);
        vigil__rem_deliver_unrecorded(rem, job->flight, job->req.id, "shutting_down",
                                      "the remediator is stopping");
        job->flight = NULL;
        vigil__rem_job_free(job);
    }
    vigil__rem_auth_flush(rem, 1);
    if (rem->hub)
        vigil__hubpost_stop(rem->hub);
    vigil__log(&rem->logger, VIGIL_LOG_INFO, "remediator", "stopped", NULL);
}

void vigil_remediator_free(vigil_remediator *rem)
{
    if (!rem)
        return;
    vigil_remediator_stop(rem);
    vigil__free(rem->threads);
    while (rem->approvals) {
        rem_approval *a = rem->approvals;
        rem->approvals = a->next;
        vigil__rem_approval_free(a);
    }
    while (rem->flights) {
        rem_flight *f = rem->flights;
        rem->flights = f->next;
        free_waiters(f->waiters);
        vigil__free(f->id);
        vigil__free(f);
    }
    vigil__hubpost_free(rem->hub);
    if (rem->g_inited)
        vigil__rem_guards_free(rem);
    vigil_audit_free(rem->audit);
    vigil_store_close(rem->store);
    vigil_action_registry_free(rem->registry);
    vigil__prom_free(rem->prom);
    if (rem->secret) {
        volatile char *p = rem->secret;
        for (size_t i = 0; i < rem->secret_len; i++)
            p[i] = 0;
        vigil__free(rem->secret);
    }
    vigil__free(rem->base_dir);
    vigil__free(rem->store_url);
    pthread_cond_destroy(&rem->tcv);
    pthread_cond_destroy(&rem->cv);
    pthread_mutex_destroy(&rem->authmu);
    pthread_mutex_destroy(&rem->epoch_mu);
    pthread_mutex_destroy(&rem->mu);
    vigil__free(rem);
}

vigil_audit *vigil_remediator_audit(vigil_remediator *rem)
{
    return rem ? rem->audit : NULL;
}

vigil_store *vigil_remediator_store(vigil_remediator *rem)
{
    return rem ? rem->store : NULL;
}

vigil_action_registry *vigil_remediator_registry(vigil_remediator *rem)
{
    return rem ? rem->registry : NULL;
}
