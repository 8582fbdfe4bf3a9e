/* The remediator's HTTP routes on a vigil_api: POST /v1/execute (signed by
 * the hub, answered asynchronously once the action has finished), the
 * actions list, approvals, quarantine release, and the audit routes. */
#include "action/action_int.h"
#include "internal/json.h"
#include "remediator/rem_int.h"
#include "internal/remediator.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define EXEC_MAX_DEPTH 8
#define LIST_MAX       1000

static void bad_request(vigil__api_call *call, const char *code, const char *msg)
{
    char path[256] = "";
    const char *colon = strstr(msg, ": ");
    if (colon && (size_t)(colon - msg) < sizeof(path) && !memchr(msg, ' ', (size_t)(colon - msg))) {
        memcpy(path, msg, (size_t)(colon - msg));
        path[colon - msg] = '\0';
    }
    vigil__api_resp_error(vigil__api_call_response(call), 400, code, msg, path);
}

static void from_code(vigil__api_call *call, int rc)
{
    vigil__api_resp_from_code(vigil__api_call_response(call), rc, vigil_error_last()->message);
}

/* ---- POST /v1/execute ----------------------------------------------------------- */

/* Signs the answer to an authenticated execute request (X-Vigil-Signature
 * over "<t>.<body>" with the hub<->remediator secret, as the hub signs its
 * requests), so the hub can tell the remediator's results and audit
 * checkpoints from anyone else's, then completes the call. */
static void finish_signed(vigil__api_call *call, vigil_remediator *rem)
{
    vigil_api_response *resp = vigil__api_call_response(call);
    size_t len = 0;
    const char *body = vigil_api_response_body(resp, &len);
    vigil_buf sig = VIGIL_BUF_INIT;
    if (vigil_signature_make(&sig, rem->secret, rem->secret_len, vigil__now_ms() / 1000,
                             body ? body : "", body ? len : 0) == VIGIL_OK)
        vigil__api_resp_header(resp, VIGIL_SIGNATURE_HEADER, sig.ptr);
    else
        vigil__api_resp_error(resp, 500, "internal", "the answer could not be signed", NULL);
    vigil_buf_dispose(&sig);
    vigil__api_finish(call);
}

typedef struct exec_ctx {
    vigil__api_call *call;
    vigil_remediator *rem;
} exec_ctx;

static void exec_done(const vigil_action_result *r, int64_t seq, const char *mac, void *payload)
{
    exec_ctx *ctx = payload;
    vigil__api_call *call = ctx->call;
    vigil_remediator *rem = ctx->rem;
    vigil__free(ctx);
    vigil_api_response *resp = vigil__api_call_response(call);
    vigil_buf b = VIGIL_BUF_INIT;
    int rc;
    if (r->status == VIGIL_ACTION_FAILED && r->exit_code == REM_EXIT_UNRECORDED) {
        /* not recorded (stopping, store failure): the hub delivers it again */
        char msg[512];
        snprintf(msg, sizeof(msg), "the request was not recorded (%s): deliver it again later",
                 r->reason ? r->reason : "unavailable");
        vigil__api_resp_error(resp, 503, "unavailable", msg, NULL);
    } else if (r->status == VIGIL_ACTION_PENDING_APPROVAL) {
        rc = vigil__buf_puts(&b, "{\"id\":");
        if (!rc)
            rc = vigil__json_put_string(&b, r->id ? r->id : "", r->id ? strlen(r->id) : 0);
        if (!rc)
            rc = vigil__buf_puts(&b, ",\"status\":\"pending_approval\"}");
        if (rc)
            vigil__api_resp_from_code(resp, rc, "out of memory");
        else
            vigil__api_resp_json_buf(resp, 202, &b);
    } else {
        rc = vigil__rem_result_json(&b, r, seq, mac);
        if (rc)
            vigil__api_resp_from_code(resp, rc, "out of memory");
        else
            vigil__api_resp_json_buf(resp, 200, &b);
    }
    vigil_buf_dispose(&b);
    finish_signed(call, rem);
}

static int get_str(const char **out, const cJSON *obj, const char *key, int required,
                   int allow_null)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (!v) {
        if (required)
            return vigil__error_set(VIGIL_EMISSING, "%s: required", key);
        return VIGIL_OK;
    }
    if (allow_null && cJSON_IsNull(v))
        return VIGIL_OK;
    if (!cJSON_IsString(v))
        return vigil__error_set(VIGIL_ETYPE, "%s: expected a string%s", key,
                                allow_null ? " or null" : "");
    *out = v->valuestring;
    return VIGIL_OK;
}

/* Parses and checks the body of POST /v1/execute. params is the caller's. */
static int parse_request(cJSON *j, vigil_action_request *rq, vigil_action_param **params,
                         uint64_t *epoch)
{
    static const char *const keys[] = {"id",     "action",  "target", "params", "reason",
                                       "policy", "dry_run", "epoch",  NULL};
    *params = NULL;
    *epoch = 0;
    if (!cJSON_IsObject(j))
        return vigil__error_set(VIGIL_ETYPE, "top level: expected a JSON object");
    const cJSON *it;
    cJSON_ArrayForEach(it, j)
    {
        size_t k = 0;
        while (keys[k] && strcmp(keys[k], it->string) != 0)
            k++;
        if (!keys[k]) {
            vigil__json_path p;
            vigil__json_path_init(&p);
            vigil__json_path_key(&p, it->string, strlen(it->string));
            return vigil__error_set(VIGIL_EINVAL, "%s: unknown key", vigil__json_path_str(&p));
        }
    }
    int rc;
    if ((rc = get_str(&rq->id, j, "id", 1, 0)) || (rc = get_str(&rq->action, j, "action", 1, 0)) ||
        (rc = get_str(&rq->target, j, "target", 1, 0)) ||
        (rc = get_str(&rq->reason, j, "reason", 0, 1)) ||
        (rc = get_str(&rq->policy, j, "policy", 0, 1)))
        return rc;
    size_t idlen = strlen(rq->id);
    if (idlen == 0 || idlen > VIGIL_ACTION_ID_MAX)
        return vigil__error_set(VIGIL_EVALUE, "id: expected 1 to %d bytes", VIGIL_ACTION_ID_MAX);
    for (size_t i = 0; i < idlen; i++)
        if ((unsigned char)rq->id[i] < 0x20 || rq->id[i] == 0x7f)
            return vigil__error_set(VIGIL_EVALUE, "id: control characters are not allowed");
    if (!*rq->action)
        return vigil__error_set(VIGIL_EVALUE, "action: must not be empty");
    const cJSON *dr = cJSON_GetObjectItemCaseSensitive(j, "dry_run");
    if (dr && !cJSON_IsBool(dr) && !cJSON_IsNull(dr))
        return vigil__error_set(VIGIL_ETYPE, "dry_run: expected true or false");
    rq->dry_run = cJSON_IsTrue(dr);
    /* the leader's fencing epoch (clustered hubs): an integer from 1 to 2^53 - 1 */
    const cJSON *ep = cJSON_GetObjectItemCaseSensitive(j, "epoch");
    if (ep && !cJSON_IsNull(ep)) {
        double d = cJSON_IsNumber(ep) ? ep->valuedouble : 0;
        if (!cJSON_IsNumber(ep) || d != floor(d) || d < 1 || d > 9007199254740991.0)
            return vigil__error_set(VIGIL_EVALUE, "epoch: expected an integer from 1 to 2^53 - 1");
        *epoch = (uint64_t)d;
    }
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(j, "params");
    if (!ps || cJSON_IsNull(ps))
        return VIGIL_OK;
    if (!cJSON_IsObject(ps))
        return vigil__error_set(VIGIL_ETYPE, "params: expected an object of strings");
    size_t n = (size_t)cJSON_GetArraySize(ps);
    if (n > VIGIL_ACTION_PARAMS_MAX)
        return vigil__error_set(VIGIL_ELIMIT, "params: more than %d parameters",
                                VIGIL_ACTION_PARAMS_MAX);
    if (!n)
        return VIGIL_OK;
    *params = vigil__calloc(n, sizeof(vigil_action_param));
    if (!*params)
        return vigil__error_oom();
    size_t i = 0;
    cJSON_ArrayForEach(it, ps)
    {
        if (!cJSON_IsString(it)) {
            vigil__json_path p;
            vigil__json_path_init(&p);
            vigil__json_path_key(&p, "params", 6);
            vigil__json_path_key(&p, it->string, strlen(it->string));
            return vigil__error_set(VIGIL_ETYPE, "%s: expected a string", vigil__json_path_str(&p));
        }
        (*params)[i].key = it->string;
        (*params)[i].value = it->valuestring;
        i++;
    }
    rq->params = *params;
    rq->nparams = i;
    return VIGIL_OK;
}

/* Authentication failures are audited in aggregate: the first failure of a
 * quiet period is written at once; those that follow within
 * REM_AUTH_AUDIT_MS are counted and written as one row ("failures":N) by the
 * next failure after the period, the ticker or the stop, so a flood of bad
 * signatures costs one audit commit per period, not one each. */
static void audit_auth(vigil_remediator *rem, const vigil_api_request *req, const char *why)
{
    const char *labels[] = {"unauthorized"};
    vigil__prom_add(rem->m_refused, labels, 1);
    vigil__rem_auth_failure(rem, why, req->remote_addr);
}

/* 0 when the Content-Encoding and Content-Type of a signed body are
 * acceptable; otherwise the error response is set. */
static int signed_body_ok(vigil__api_call *call, const vigil_api_request *req)
{
    vigil_api_response *resp = vigil__api_call_response(call);
    const char *ce = vigil__api_request_header(req, "Content-Encoding");
    if (ce && strcasecmp(ce, "identity") != 0) {
        vigil__api_resp_error(resp, 415, "unsupported_media_type",
                              "Content-Encoding is not accepted on a signed request", NULL);
        return 1;
    }
    const char *ct = vigil__api_request_header(req, "Content-Type");
    if (!ct || strncasecmp(ct, "application/json", 16) != 0 ||
        (ct[16] != '\0' && ct[16] != ';' && ct[16] != ' ')) {
        vigil__api_resp_error(resp, 415, "unsupported_media_type",
                              "Content-Type must be application/json", NULL);
        return 1;
    }
    return 0;
}

/* Before the body of POST /v1/execute is read (the server's precheck): a
 * missing, malformed or stale signature header is refused 401 without the
 * upload, logged and audited as route_execute() does; a well-formed, fresh
 * one lets the body be read and verified there. */
static int execute_head(const vigil_api_request *req, void *payload, char *why, size_t why_size)
{
    vigil_remediator *rem = payload;
    int rc = vigil__signature_check_head(vigil__api_request_header(req, VIGIL_SIGNATURE_HEADER),
                                         vigil__rem_now(rem) / 1000, rem->o.max_skew_s);
    if (rc) {
        snprintf(why, why_size, "%s", vigil_error_last()->message);
        vigil__log(&rem->logger, VIGIL_LOG_WARN, "remediator", "execute request refused",
                   "reason=\"%s\"", why);
        audit_auth(rem, req, why);
    }
    return rc;
}

static void route_execute(vigil__api_call *call, void *payload)
{
    vigil_remediator *rem = payload;
    const vigil_api_request *req = vigil__api_call_request(call);
    vigil_api_response *resp = vigil__api_call_response(call);
    int64_t now_s = vigil__rem_now(rem) / 1000;
    int rc = vigil_signature_verify(vigil__api_request_header(req, VIGIL_SIGNATURE_HEADER),
                                    rem->secret, rem->secret_len, req->body ? req->body : "",
                                    req->body_len, now_s, rem->o.max_skew_s);
    if (rc) {
        char msg[300];
        snprintf(msg, sizeof(msg), "%s", vigil_error_last()->message);
        vigil__log(&rem->logger, VIGIL_LOG_WARN, "remediator", "execute request refused",
                   "reason=\"%s\"", msg);
        audit_auth(rem, req, msg);
        if (rc == VIGIL_EAUTH)
            vigil__api_resp_error(resp, 401, "unauthorized", msg, NULL);
        else
            vigil__api_resp_from_code(resp, rc, msg);
        vigil__api_finish(call);
        return;
    }
    if (signed_body_ok(call, req)) {
        finish_signed(call, rem);
        return;
    }
    size_t len = 0;
    const char *body = vigil__api_call_body(call, &len);
    cJSON *j = NULL;
    rc = vigil__json_parse(&j, body, len, EXEC_MAX_DEPTH);
    if (rc) {
        if (rc == VIGIL_ENOMEM)
            from_code(call, rc);
        else
            bad_request(call, rc == VIGIL_EJSON ? "invalid_json" : "invalid_request",
                        vigil_error_last()->message);
        finish_signed(call, rem);
        return;
    }
    vigil_action_request rq = VIGIL_ACTION_REQUEST_INIT;
    vigil_action_param *params = NULL;
    uint64_t epoch = 0, highest = 0;
    rc = parse_request(j, &rq, &params, &epoch);
    if (!rc) {
        /* fencing: before the ledger, so a refusal leaves no trace there */
        rc = vigil__rem_epoch_admit(rem, epoch, &highest);
        if (rc == VIGIL_ECONFLICT) {
            vigil__rem_epoch_audit(rem, &rq, epoch, highest, req->remote_addr);
            vigil__api_resp_error(resp, 409, epoch ? "stale_epoch" : "epoch_required",
                                  vigil_error_last()->message, "epoch");
        } else if (rc) {
            vigil__api_resp_error(resp, 503, "unavailable", vigil_error_last()->message, NULL);
        }
        if (rc) {
            vigil__free(params);
            cJSON_Delete(j);
            finish_signed(call, rem);
            return;
        }
    }
    exec_ctx *ctx = NULL;
    if (!rc && !(ctx = vigil__malloc(sizeof(*ctx))))
        rc = vigil__error_oom();
    if (!rc) {
        ctx->call = call;
        ctx->rem = rem;
        rc = vigil_remediator_submit_audited(rem, &rq, exec_done, ctx);
        if (rc)
            vigil__free(ctx); /* exec_done is never called on an error */
    }
    /* on success `call` may already be answered and freed */
    if (rc) {
        if (rc == VIGIL_ENOMEM || rc == VIGIL_EOVERLOADED || rc == VIGIL_ECLOSED)
            from_code(call, rc);
        else
            bad_request(call, "invalid_request", vigil_error_last()->message);
    }
    vigil__free(params);
    cJSON_Delete(j);
    if (rc)
        finish_signed(call, rem);
}

/* ---- GET /v1/actions -------------------------------------------------------------- */

static int parse_since(int64_t *out, const char *text, int64_t now)
{
    int64_t d;
    if (text[0] == '-' && vigil_scalar_parse_duration(&d, text + 1) == VIGIL_OK) {
        *out = now - d;
        return VIGIL_OK;
    }
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    if (*text >= '0' && *text <= '9' && end && !*end && v >= 0) {
        *out = v;
        return VIGIL_OK;
    }
    return vigil__error_set(VIGIL_EVALUE,
                            "since: expected epoch milliseconds or a relative time such as -15m");
}

static int parse_limit(size_t *out, const char *text, size_t dflt)
{
    *out = dflt;
    if (!text)
        return VIGIL_OK;
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    if (*text < '0' || *text > '9' || !end || *end || v < 1 || v > LIST_MAX)
        return vigil__error_set(VIGIL_EVALUE, "limit: expected an integer from 1 to %d", LIST_MAX);
    *out = (size_t)v;
    return VIGIL_OK;
}

typedef struct recent {
    vigil_buf *rows; /* ring of rendered rows */
    size_t cap, n, next;
    int rc;
} recent;

static int put_kv(vigil_buf *b, const char *key, const char *v)
{
    int rc = vigil__buf_printf(b, ",\"%s\":", key);
    if (!rc)
        rc = v ? vigil__json_put_string(b, v, strlen(v)) : vigil__buf_puts(b, "null");
    return rc;
}

static int recent_cb(const vigil_store_action *a, void *payload)
{
    recent *r = payload;
    vigil_buf *b = &r->rows[r->next];
    vigil__buf_clear(b);
    int rc = vigil__buf_puts(b, "{\"id\":");
    if (!rc)
        rc = vigil__json_put_string(b, a->id, strlen(a->id));
    if (!rc)
        rc = put_kv(b, "action", a->action);
    if (!rc)
        rc = put_kv(b, "target", a->target);
    if (!rc)
        rc = put_kv(b, "status", a->status);
    if (!rc)
        rc = put_kv(b, "reason", a->result_reason);
    if (!rc)
        rc = put_kv(b, "policy", a->policy);
    if (!rc)
        rc = vigil__buf_printf(b, ",\"requested\":%lld,\"updated\":%lld,\"duration_ms\":%lld",
                               (long long)a->requested_ms, (long long)a->updated_ms,
                               (long long)a->duration_ms);
    if (!rc && a->audit_seq > 0)
        rc = vigil__buf_printf(b, ",\"audit\":{\"seq\":%lld,\"mac\":\"%s\"}",
                               (long long)a->audit_seq, a->audit_hash ? a->audit_hash : "");
    if (!rc)
        rc = vigil__buf_putc(b, '}');
    if (rc) {
        r->rc = rc;
        return 1;
    }
    r->next = (r->next + 1) % r->cap;
    if (r->n < r->cap)
        r->n++;
    return 0;
}

static int actions_json(vigil_remediator *rem, vigil_buf *out, int64_t since, size_t limit)
{
    int rc = vigil__buf_puts(out, "{\"actions\":[");
    size_t n = vigil_action_registry_count(rem->registry);
    for (size_t i = 0; i < n && !rc; i++) {
        vigil_action_info info = VIGIL_ACTION_INFO_INIT;
        if ((rc = vigil_action_registry_info(rem->registry, i, &info)))
            break;
        if (i)
            rc = vigil__buf_putc(out, ',');
        if (!rc)
            rc = vigil__buf_puts(out, "{\"name\":");
        if (!rc)
            rc = vigil__json_put_string(out, info.name, strlen(info.name));
        if (!rc)
            rc = put_kv(out, "type", info.type);
        if (!rc)
            rc = put_kv(out, "targets", info.targets);
        if (!rc)
            rc = vigil__buf_printf(out,
                                   ",\"timeout_ms\":%lld,\"dry_run\":%s,\"approval\":{\"required\":"
                                   "%s,\"expires_ms\":%lld},\"params\":{",
                                   (long long)info.timeout_ms, info.dry_run ? "true" : "false",
                                   info.approval_required ? "true" : "false",
                                   (long long)info.approval_expires_ms);
        for (size_t k = 0; k < info.nparams && !rc; k++) {
            if (k)
                rc = vigil__buf_putc(out, ',');
            if (!rc)
                rc = vigil__json_put_string(out, info.param_names[k], strlen(info.param_names[k]));
            if (!rc)
                rc = vigil__buf_putc(out, ':');
            if (!rc)
                rc = vigil__json_put_string(out, info.param_patterns[k],
                                            strlen(info.param_patterns[k]));
        }
        if (!rc)
            rc = vigil__buf_puts(out, "}}");
    }
    if (!rc)
        rc = vigil__buf_puts(out, "],\"executions\":[");
    recent r = {NULL, limit, 0, 0, 0};
    if (!rc) {
        r.rows = vigil__calloc(limit, sizeof(vigil_buf));
        if (!r.rows)
            rc = vigil__error_oom();
    }
    if (!rc) {
        vigil_store_filter f = VIGIL_STORE_FILTER_INIT;
        f.since_ms = since;
        rc = vigil_store_action_list(rem->store, &f, recent_cb, &r);
        if (rc > 0)
            rc = r.rc ? r.rc : VIGIL_ENOMEM;
    }
    for (size_t i = 0; i < r.n && !rc; i++) {
        size_t k = (r.next + r.cap - r.n + i) % r.cap;
        if (i)
            rc = vigil__buf_putc(out, ',');
        if (!rc)
            rc = vigil__buf_put(out, r.rows[k].ptr, r.rows[k].size);
    }
    for (size_t i = 0; r.rows && i < r.cap; i++)
        vigil_buf_dispose(&r.rows[i]);
    vigil__free(r.rows);
    if (!rc)
        rc = vigil__buf_puts(out, "],\"pending_approvals\":[");
    pthread_mutex_lock(&rem->mu);
    int first = 1;
    for (const rem_approval *a = rem->approvals; a && !rc; a = a->next) {
        if (!first)
            rc = vigil__buf_putc(out, ',');
        first = 0;
        if (!rc)
            rc = vigil__buf_puts(out, "{\"id\":");
        if (!rc)
            rc = vigil__json_put_string(out, a->req.id, strlen(a->req.id));
        if (!rc)
            rc = put_kv(out, "action", a->req.action);
        if (!rc)
            rc = put_kv(out, "target", a->req.target);
        if (!rc)
            rc = vigil__buf_printf(out, ",\"expires\":%lld}", (long long)a->expires_ms);
    }
    pthread_mutex_unlock(&rem->mu);
    if (!rc)
        rc = vigil__buf_puts(out, "],\"quarantined\":");
    if (!rc)
        rc = vigil__rem_guards_quarantined_json(rem, out);
    return rc ? rc : vigil__buf_putc(out, '}');
}

static void route_actions(vigil__api_call *call, void *payload)
{
    vigil_remediator *rem = payload;
    int64_t now = vigil__rem_now(rem), since = now - 24 * 3600 * 1000LL;
    size_t limit = 0;
    const char *s = vigil__api_call_param(call, "since");
    int rc = s ? parse_since(&since, s, now) : VIGIL_OK;
    if (!rc)
        rc = parse_limit(&limit, vigil__api_call_param(call, "limit"), rem->o.recent_max);
    if (rc) {
        bad_request(call, "invalid_request", vigil_error_last()->message);
        vigil__api_finish(call);
        return;
    }
    vigil_buf b = VIGIL_BUF_INIT;
    rc = actions_json(rem, &b, since, limit);
    vigil__api_answer(call, rc, 200, &b);
}

/* ---- approvals and release ---------------------------------------------------------- */

int vigil__remediator_forward_payload(vigil_buf *out, const char *method, const char *path,
                                      const char *actor)
{
    return vigil__buf_printf(out, "%s %s\n%s\n", method, path, actor ? actor : "");
}

/* For a route that also takes the hub's signed forwards (VIGIL__API_SIGNED):
 * 0 when the call carries no signature (its token was checked) or a valid one
 * over `path` (then *signed_ is 1); otherwise answers 401 and returns -1. */
static int check_forward(vigil__api_call *call, vigil_remediator *rem, const char *method,
                         const char *path, int *signed_)
{
    const vigil_api_request *req = vigil__api_call_request(call);
    const char *sig = vigil__api_request_header(req, VIGIL_SIGNATURE_HEADER);
    *signed_ = 0;
    if (!sig)
        return 0;
    const char *actor = vigil__api_request_header(req, VIGIL__FORWARD_ACTOR_HEADER);
    vigil_buf p = VIGIL_BUF_INIT;
    int rc = vigil__remediator_forward_payload(&p, method, path, actor);
    if (!rc)
        rc = vigil_signature_verify(sig, rem->secret, rem->secret_len, p.ptr, p.size,
                                    vigil__rem_now(rem) / 1000, rem->o.max_skew_s);
    vigil_buf_dispose(&p);
    if (!rc) {
        *signed_ = 1;
        return 0;
    }
    char msg[300];
    snprintf(msg, sizeof(msg), "%s", vigil_error_last()->message);
    vigil__log(&rem->logger, VIGIL_LOG_WARN, "remediator", "forwarded admin request refused",
               "reason=\"%s\"", msg);
    audit_auth(rem, req, msg);
    if (rc == VIGIL_EAUTH)
        vigil__api_resp_error(vigil__api_call_response(call), 401, "unauthorized", msg, NULL);
    else
        vigil__api_resp_from_code(vigil__api_call_response(call), rc, msg);
    vigil__api_finish(call);
    return -1;
}

/* Who decided, for the audit row: "hub for <actor>" for a signed forward,
 * "token <name> from <address>" when a token authenticated the call, else
 * the client address. */
static const char *who(vigil__api_call *call, char *buf, size_t size)
{
    const vigil_api_request *req = vigil__api_call_request(call);
    if (vigil__api_request_header(req, VIGIL_SIGNATURE_HEADER)) {
        const char *actor = vigil__api_request_header(req, VIGIL__FORWARD_ACTOR_HEADER);
        snprintf(buf, size, "hub for %.200s", actor && *actor ? actor : "unknown");
        return buf;
    }
    const char *addr = req->remote_addr ? req->remote_addr : "";
    const char *name = vigil__api_call_principal(call);
    if (!name)
        return addr;
    if (*addr)
        snprintf(buf, size, "token %s from %s", name, addr);
    else
        snprintf(buf, size, "token %s", name);
    return buf;
}

static void decision(vigil__api_call *call, vigil_remediator *rem, int approve)
{
    const char *id = vigil__api_call_path_arg(call, 0);
    char by[256];
    int signed_ = 0;
    vigil_buf path = VIGIL_BUF_INIT;
    int prc = vigil__buf_printf(&path, "/v1/actions/%s/%s", id, approve ? "approve" : "deny");
    if (prc) {
        from_code(call, prc);
        vigil__api_finish(call);
        return;
    }
    prc = check_forward(call, rem, "POST", path.ptr, &signed_);
    vigil_buf_dispose(&path);
    if (prc)
        return;
    const char *w = who(call, by, sizeof(by));
    int rc = approve ? vigil_remediator_approve(rem, id, w) : vigil_remediator_deny(rem, id, w);
    vigil_buf b = VIGIL_BUF_INIT;
    if (!rc) {
        rc = vigil__buf_puts(&b, "{\"id\":");
        if (!rc)
            rc = vigil__json_put_string(&b, id, strlen(id));
        if (!rc)
            rc = vigil__buf_puts(&b, approve ? ",\"status\":\"approved\"}"
                                             : ",\"status\":\"refused\",\"reason\":"
                                               "\"approval_denied\"}");
    }
    vigil__api_answer(call, rc, 200, &b);
}

static void route_approve(vigil__api_call *call, void *payload)
{
    decision(call, payload, 1);
}

static void route_deny(vigil__api_call *call, void *payload)
{
    decision(call, payload, 0);
}

static void route_release(vigil__api_call *call, void *payload)
{
    vigil_remediator *rem = payload;
    const char *target = vigil__api_call_path_arg(call, 0);
    int released = 0;
    char by[256];
    int signed_ = 0;
    vigil_buf path = VIGIL_BUF_INIT;
    int prc = vigil__buf_printf(&path, "/v1/targets/%s/release", target);
    if (prc) {
        from_code(call, prc);
        vigil__api_finish(call);
        return;
    }
    prc = check_forward(call, rem, "POST", path.ptr, &signed_);
    vigil_buf_dispose(&path);
    if (prc)
        return;
    int rc = vigil_remediator_release(rem, target, who(call, by, sizeof(by)), &released);
    vigil_buf b = VIGIL_BUF_INIT;
    if (!rc)
        rc = vigil__buf_puts(&b, "{\"target\":");
    if (!rc)
        rc = vigil__json_put_string(&b, target, strlen(target));
    if (!rc)
        rc = vigil__buf_printf(&b, ",\"released\":%s}", released ? "true" : "false");
    vigil__api_answer(call, rc, 200, &b);
}

/* ---- audit ------------------------------------------------------------------------ */

static void route_audit(vigil__api_call *call, void *payload)
{
    vigil_remediator *rem = payload;
    int64_t since = 0;
    size_t limit = 0;
    const char *s = vigil__api_call_param(call, "since");
    int rc = s ? parse_since(&since, s, vigil__rem_now(rem)) : VIGIL_OK;
    if (!rc)
        rc = parse_limit(&limit, vigil__api_call_param(call, "limit"), 0);
    if (rc) {
        bad_request(call, "invalid_request", vigil_error_last()->message);
        vigil__api_finish(call);
        return;
    }
    vigil_buf b = VIGIL_BUF_INIT;
    rc = vigil_audit_list_json(rem->audit, since, limit, &b);
    vigil__api_answer(call, rc, 200, &b);
}

static void route_verify(vigil__api_call *call, void *payload)
{
    vigil_remediator *rem = payload;
    const char *seq = vigil__api_call_param(call, "seq");
    const char *mac = vigil__api_call_param(call, "mac");
    vigil_audit_report rep = VIGIL_AUDIT_REPORT_INIT;
    int rc, signed_ = 0;
    {
        char path[200];
        if (seq && mac && strlen(seq) < 24 && strlen(mac) < 80)
            snprintf(path, sizeof(path), "/v1/audit/verify?seq=%s&mac=%s", seq, mac);
        else
            snprintf(path, sizeof(path), "/v1/audit/verify");
        if (check_forward(call, rem, "GET", path, &signed_))
            return;
    }
    if (seq || mac) {
        char *end = NULL;
        long long v = seq ? strtoll(seq, &end, 10) : 0;
        if (!seq || !mac || *seq < '0' || *seq > '9' || !end || *end || v < 1) {
            bad_request(call, "invalid_request",
                        "seq: a checkpoint needs seq (an integer >= 1) and mac (64 hex digits)");
            vigil__api_finish(call);
            return;
        }
        rc = vigil_audit_verify_checkpoint(rem->audit, v, mac, &rep);
        if (rc == VIGIL_EINVAL) {
            bad_request(call, "invalid_request", "mac: expected 64 hex digits");
            vigil__api_finish(call);
            return;
        }
    } else {
        rc = vigil_audit_verify(rem->audit, &rep);
    }
    vigil_buf b = VIGIL_BUF_INIT;
    if (!rc)
        rc = vigil_audit_report_json(&rep, &b);
    vigil__api_answer(call, rc, 200, &b);
}

int vigil_remediator_mount(vigil_remediator *rem, vigil_api *api)
{
    if (!rem || !api)
        return vigil__error_set(VIGIL_EINVAL, "remediator mount: NULL argument");
    if (!rem->secret)
        return vigil__error_set(VIGIL_EINVAL, "remediator mount: POST /v1/execute needs the "
                                              "signing secret (secret_env)");
    static const vigil__api_route_def routes[] = {
        {"POST", "/v1/execute", 0, VIGIL__API_RAW, route_execute},
        {"GET", "/v1/actions", VIGIL_API_SCOPE_READ, 0, route_actions},
        {"POST", "/v1/actions/*/approve", VIGIL_API_SCOPE_ADMIN, VIGIL__API_SIGNED, route_approve},
        {"POST", "/v1/actions/*/deny", VIGIL_API_SCOPE_ADMIN, VIGIL__API_SIGNED, route_deny},
        {"POST", "/v1/targets/*/release", VIGIL_API_SCOPE_ADMIN, VIGIL__API_SIGNED, route_release},
        {"GET", "/v1/audit", VIGIL_API_SCOPE_READ, 0, route_audit},
        {"GET", "/v1/audit/verify", VIGIL_API_SCOPE_READ, VIGIL__API_SIGNED, route_verify},
    };
    int rc = vigil__api_routes(api, routes, VIGIL__ARRAY_LEN(routes), rem);
    if (!rc)
        rc = vigil__api_route_head_check(api, "POST", "/v1/execute", execute_head);
    if (!rc)
        rc = vigil__api_add_registry(api, rem->prom);
    return rc;
}
