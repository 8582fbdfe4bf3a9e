/* The hub's routes of policies and remediation: /v1/policies, /v1/decisions,
 * /v1/silences, /v1/actions (list, manual request, late results) and
 * /v1/desired. */
#include "core/hash.h"
#include "hub/hub_int.h"
#include "internal/json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define BODY_DEPTH        16
#define DECISIONS_DEFAULT 1000
#define DECISIONS_MAX     10000
#define ACTIONS_DEFAULT   100
#define ACTIONS_MAX       1000
#define DESIRED_KIND      "Target"
#define DESIRED_SOURCE    "api"
#define DESIRED_MAX       (1 << 20)

/* A bad request with an explicit path (the message starts with it). */
static int bad(int code, const char *path, const char *what)
{
    return vigil__error_set(code, "%s: %s", path, what);
}

static int parse_limit(size_t *out, const vigil__api_call *call, size_t def, size_t max)
{
    const char *v = vigil__api_call_param(call, "limit");
    *out = def;
    if (!v)
        return VIGIL_OK;
    size_t n = 0;
    const char *p = v;
    while (*p >= '0' && *p <= '9' && n <= max)
        n = n * 10 + (size_t)(*p++ - '0');
    if (p == v || *p || n == 0 || n > max)
        return vigil__error_set(VIGIL_EINVAL,
                                "limit: expected an integer from 1 to %zu, got "
                                "\"%.40s\"",
                                max, v);
    *out = n;
    return VIGIL_OK;
}

static int parse_since(int64_t *out, const vigil__api_call *call, int64_t now)
{
    const char *v = vigil__api_call_param(call, "since");
    *out = 0;
    return v ? vigil__hub_parse_time(out, "since", v, now, 1) : VIGIL_OK;
}

/* Parses the JSON body into *out (the caller's, cJSON_Delete), an object. */
static int body_object(cJSON **out, vigil__api_call *call, const char *const *keys)
{
    size_t len = 0;
    const char *body = vigil__api_call_body(call, &len);
    int rc = vigil__json_parse(out, body, len, BODY_DEPTH);
    if (rc)
        return rc;
    if (!cJSON_IsObject(*out))
        return vigil__error_set(VIGIL_EINVAL, "expected a JSON object");
    const cJSON *it;
    cJSON_ArrayForEach(it, *out)
    {
        size_t k = 0;
        while (keys[k] && strcmp(keys[k], it->string) != 0)
            k++;
        if (!keys[k])
            return vigil__error_set(VIGIL_EINVAL, "%.64s: unknown key", it->string);
    }
    return VIGIL_OK;
}

/* A string member: required or optional (NULL when absent or null). */
static int get_str(const char **out, const cJSON *obj, const char *key, size_t max, int required)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (!v || cJSON_IsNull(v))
        return required ? bad(VIGIL_EMISSING, key, "required") : VIGIL_OK;
    if (!cJSON_IsString(v))
        return bad(VIGIL_ETYPE, key, "expected a string");
    size_t n = strlen(v->valuestring);
    if (required && n == 0)
        return bad(VIGIL_EVALUE, key, "must not be empty");
    if (n > max)
        return vigil__error_set(VIGIL_ELIMIT, "%s: longer than %zu bytes", key, max);
    *out = v->valuestring;
    return VIGIL_OK;
}

/* A time member: epoch ms (number) or a string as vigil__hub_parse_time reads it. */
static int get_time(int64_t *out, int *present, const cJSON *obj, const char *key, int64_t now)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *present = v && !cJSON_IsNull(v);
    if (!*present)
        return VIGIL_OK;
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (!isfinite(d) || d != floor(d) || d < 0 || d > 9007199254740991.0)
            return bad(VIGIL_EVALUE, key, "expected epoch milliseconds");
        *out = (int64_t)d;
        return VIGIL_OK;
    }
    if (!cJSON_IsString(v))
        return bad(VIGIL_ETYPE, key, "expected epoch milliseconds or a time string");
    int rc = vigil__hub_parse_time(out, key, v->valuestring, now, 1);
    if (!rc)
        return VIGIL_OK;
    /* a copy: the message may not be formatted into itself */
    char why[1024]; /* the size of the error message buffer */
    snprintf(why, sizeof(why), "%s", vigil_error_last()->message + strlen(key) + 2);
    return bad(VIGIL_EVALUE, key, why);
}

/* Codes of a bad body are answered 400 invalid_request (not invalid_metric);
 * malformed JSON stays invalid_json. */
static int body_code(int rc)
{
    switch (rc) {
    case VIGIL_EVALUE:
    case VIGIL_ETYPE:
    case VIGIL_EMISSING:
    case VIGIL_ELIMIT:
    case VIGIL_EENCODING:
    case VIGIL_ERANGE: return VIGIL_EINVAL;
    default: return rc;
    }
}

/* ---- policies and decisions -------------------------------------------------------- */

static void route_policies(vigil__api_call *call, void *payload)
{
    vigil_hub *hub = payload;
    vigil_buf b = VIGIL_BUF_INIT;
    int rc = vigil_engine_policies_json(hub->engine, &b);
    vigil__api_answer(call, rc, 200, &b);
}

static void route_decisions(vigil__api_call *call, void *payload)
{
    vigil_hub *hub = payload;
    int64_t since = 0;
    size_t limit = 0;
    int rc = parse_since(&since, call, vigil__hub_now(hub));
    if (!rc)
        rc = parse_limit(&limit, call, DECISIONS_DEFAULT, DECISIONS_MAX);
    vigil_buf b = VIGIL_BUF_INIT;
    if (!rc)
        rc = vigil_engine_decisions_json(hub->engine, since, limit, &b);
    vigil__api_answer(call, rc, 200, &b);
}

/* ---- silences ------------------------------------------------------------------------ */

static void route_silences(vigil__api_call *call, void *payload)
{
    vigil_hub *hub = payload;
    vigil_buf b = VIGIL_BUF_INIT;
    int rc = vigil_engine_silences_json(hub->engine, &b);
    vigil__api_answer(call, rc, 200, &b);
}

static int matchers_json(vigil_buf *out, const cJSON *m)
{
    if (!m)
        return bad(VIGIL_EMISSING, "matchers", "required");
    if (!cJSON_IsObject(m))
        return bad(VIGIL_ETYPE, "matchers", "expected an object of globs");
    if (!m->child)
        return bad(VIGIL_EVALUE, "matchers", "expected at least one matcher");
    int rc = vigil__buf_putc(out, '{');
    const cJSON *it;
    size_t i = 0;
    cJSON_ArrayForEach(it, m)
    {
        if (!cJSON_IsString(it))
            return vigil__error_set(VIGIL_ETYPE, "matchers.%.64s: expected a string", it->string);
        if (!rc && i++)
            rc = vigil__buf_putc(out, ',');
        if (!rc)
            rc = vigil__json_put_string(out, it->string, strlen(it->string));
        if (!rc)
            rc = vigil__buf_putc(out, ':');
        if (!rc)
            rc = vigil__json_put_string(out, it->valuestring, strlen(it->valuestring));
    }
    return rc ? rc : vigil__buf_putc(out, '}');
}

static void route_silence_add(vigil__api_call *call, void *payload)
{
    static const char *const keys[] = {"matchers", "starts",     "ends", "duration",
                                       "comment",  "created_by", NULL};
    vigil_hub *hub = payload;
    int64_t now = vigil__hub_now(hub);
    cJSON *j = NULL;
    vigil_buf m = VIGIL_BUF_INIT, id = VIGIL_BUF_INIT, out = VIGIL_BUF_INIT;
    const char *comment = NULL, *by = NULL, *dur = NULL;
    int64_t starts = now, ends = 0;
    int has_starts = 0, has_ends = 0;
    int rc = body_object(&j, call, keys);
    if (!rc)
        rc = matchers_json(&m, cJSON_GetObjectItemCaseSensitive(j, "matchers"));
    if (!rc)
        rc = get_time(&starts, &has_starts, j, "starts", now);
    if (!rc && !has_starts)
        starts = now;
    if (!rc)
        rc = get_time(&ends, &has_ends, j, "ends", now);
    if (!rc)
        rc = get_str(&dur, j, "duration", 64, 0);
    if (!rc)
        rc = get_str(&comment, j, "comment", VIGIL_ACTION_TEXT_MAX, 0);
    if (!rc)
        rc = get_str(&by, j, "created_by", VIGIL_ACTION_NAME_MAX, 0);
    if (!rc && has_ends == (dur != NULL))
        rc = vigil__error_set(VIGIL_EINVAL, "ends: set exactly one of ends and duration");
    if (!rc && dur) {
        int64_t d = 0;
        if (vigil_scalar_parse_duration(&d, dur) || d <= 0)
            rc = bad(VIGIL_EVALUE, "duration", "expected a positive duration such as \"2h\"");
        else
            ends = starts + d;
    }
    if (!rc && ends <= starts)
        rc = bad(VIGIL_EVALUE, "ends", "must be after starts");
    if (!rc)
        rc = vigil_engine_silence_add(hub->engine, m.ptr, starts, ends, by ? by : "api",
                                      comment ? comment : "", &id);
    if (!rc)
        rc = vigil__buf_puts(&out, "{\"id\":");
    if (!rc)
        rc = vigil__json_put_string(&out, id.ptr ? id.ptr : "", id.size);
    if (!rc)
        rc = vigil__buf_putc(&out, '}');
    cJSON_Delete(j);
    vigil_buf_dispose(&m);
    vigil_buf_dispose(&id);
    vigil__api_answer(call, body_code(rc), 201, &out);
}

static void route_silence_delete(vigil__api_call *call, void *payload)
{
    vigil_hub *hub = payload;
    const char *id = vigil__api_call_path_arg(call, 0);
    int rc = vigil_engine_silence_delete(hub->engine, id);
    vigil_buf out = VIGIL_BUF_INIT;
    if (!rc)
        rc = vigil__buf_puts(&out, "{\"id\":");
    if (!rc)
        rc = vigil__json_put_string(&out, id, strlen(id));
    if (!rc)
        rc = vigil__buf_puts(&out, ",\"deleted\":true}");
    vigil__api_answer(call, rc, 200, &out);
}

/* ---- GET /v1/actions ------------------------------------------------------------------ */

typedef struct act_row {
    vigil_store_action a; /* strings owned (vigil__strdup) */
    char *verdict;        /* latest decision for its id, or NULL */
    char *verdict_reason;
    int64_t verdict_ts;
} act_row;

typedef struct act_list {
    act_row *rows;
    size_t n, cap;
    size_t *slots; /* open addressing: index + 1, 0 empty */
    size_t nslots;
    int oom;
} act_list;

static char *dup_or_null(const char *s)
{
    return s ? vigil__strdup(s) : NULL;
}

static int collect_action(const vigil_store_action *a, void *payload)
{
    act_list *l = payload;
    if (vigil__array_grow((void **)&l->rows, &l->cap, l->n + 1, sizeof(act_row))) {
        l->oom = 1;
        return 1;
    }
    act_row *r = &l->rows[l->n];
    memset(r, 0, sizeof(*r));
    r->a = *a;
    r->a.id = dup_or_null(a->id);
    r->a.action = dup_or_null(a->action);
    r->a.target = dup_or_null(a->target);
    r->a.params_json = dup_or_null(a->params_json);
    r->a.reason = dup_or_null(a->reason);
    r->a.policy = dup_or_null(a->policy);
    r->a.series = dup_or_null(a->series);
    r->a.status = dup_or_null(a->status);
    r->a.result_reason = dup_or_null(a->result_reason);
    r->a.output = dup_or_null(a->output);
    r->a.audit_hash = dup_or_null(a->audit_hash);
    l->n++;
    if ((a->id && !r->a.id) || (a->action && !r->a.action) || (a->target && !r->a.target) ||
        (a->params_json && !r->a.params_json) || (a->reason && !r->a.reason) ||
        (a->policy && !r->a.policy) || (a->series && !r->a.series) || (a->status && !r->a.status) ||
        (a->result_reason && !r->a.result_reason) || (a->output && !r->a.output) ||
        (a->audit_hash && !r->a.audit_hash)) {
        l->oom = 1;
        return 1;
    }
    return 0;
}

static void act_list_free(act_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        vigil_store_action *a = &l->rows[i].a;
        vigil__free((char *)a->id);
        vigil__free((char *)a->action);
        vigil__free((char *)a->target);
        vigil__free((char *)a->params_json);
        vigil__free((char *)a->reason);
        vigil__free((char *)a->policy);
        vigil__free((char *)a->series);
        vigil__free((char *)a->status);
        vigil__free((char *)a->result_reason);
        vigil__free((char *)a->output);
        vigil__free((char *)a->audit_hash);
        vigil__free(l->rows[i].verdict);
        vigil__free(l->rows[i].verdict_reason);
    }
    vigil__free(l->rows);
    vigil__free(l->slots);
}

static int index_actions(act_list *l)
{
    l->nslots = 16;
    while (l->nslots < l->n * 2)
        l->nslots *= 2;
    l->slots = vigil__calloc(l->nslots, sizeof(size_t));
    if (!l->slots)
        return vigil__error_oom();
    for (size_t i = 0; i < l->n; i++) {
        size_t k = (size_t)vigil__hash_str(l->rows[i].a.id) & (l->nslots - 1);
        while (l->slots[k])
            k = (k + 1) & (l->nslots - 1);
        l->slots[k] = i + 1;
    }
    return VIGIL_OK;
}

static act_row *find_row(act_list *l, const char *id)
{
    size_t k = (size_t)vigil__hash_str(id) & (l->nslots - 1);
    while (l->slots[k]) {
        act_row *r = &l->rows[l->slots[k] - 1];
        if (strcmp(r->a.id, id) == 0)
            return r;
        k = (k + 1) & (l->nslots - 1);
    }
    return NULL;
}

static int verdict_of(const vigil_store_decision *d, void *payload)
{
    act_list *l = payload;
    if (!d->action_id || !*d->action_id)
        return 0;
    act_row *r = find_row(l, d->action_id);
    if (!r)
        return 0;
    char *v = vigil__strdup(d->decision);
    char *why = vigil__strdup(d->reason ? d->reason : "");
    if (!v || !why) {
        vigil__free(v);
        vigil__free(why);
        l->oom = 1;
        return 1;
    }
    vigil__free(r->verdict);
    vigil__free(r->verdict_reason);
    r->verdict = v;
    r->verdict_reason = why;
    r->verdict_ts = d->ts_ms;
    return 0;
}

static int put_str_field(vigil_buf *b, const char *key, const char *v)
{
    int rc = vigil__buf_printf(b, ",\"%s\":", key);
    if (!rc)
        rc = v ? vigil__json_put_string(b, v, strlen(v)) : vigil__buf_puts(b, "null");
    return rc;
}

static int put_action(vigil_buf *b, const act_row *r, int comma)
{
    const vigil_store_action *a = &r->a;
    int rc = vigil__buf_puts(b, comma ? ",{\"id\":" : "{\"id\":");
    if (!rc)
        rc = vigil__json_put_string(b, a->id, strlen(a->id));
    if (!rc)
        rc = vigil__buf_printf(b, ",\"requested\":%lld,\"updated\":%lld",
                               (long long)a->requested_ms, (long long)a->updated_ms);
    if (!rc)
        rc = put_str_field(b, "action", a->action);
    if (!rc)
        rc = put_str_field(b, "target", a->target);
    if (!rc) {
        vigil__json_problem pb;
        const char *p = a->params_json ? a->params_json : "{}";
        if (vigil__json_check(p, strlen(p), BODY_DEPTH, &pb) != VIGIL_OK)
            p = "{}";
        rc = vigil__buf_printf(b, ",\"params\":%s", p);
    }
    if (!rc)
        rc = put_str_field(b, "reason", a->reason);
    if (!rc)
        rc = put_str_field(b, "policy", a->policy);
    if (!rc)
        rc = put_str_field(b, "series", a->series);
    if (!rc)
        rc = vigil__buf_printf(b, ",\"dry_run\":%s", a->dry_run ? "true" : "false");
    if (!rc)
        rc = put_str_field(b, "status", a->status);
    if (!rc)
        rc = put_str_field(b, "result_reason", a->result_reason);
    if (!rc)
        rc = put_str_field(b, "output", a->output);
    if (!rc && a->duration_ms >= 0)
        rc = vigil__buf_printf(b, ",\"duration_ms\":%lld", (long long)a->duration_ms);
    else if (!rc)
        rc = vigil__buf_puts(b, ",\"duration_ms\":null");
    if (!rc && a->audit_seq > 0 && a->audit_hash) {
        rc = vigil__buf_printf(b, ",\"audit\":{\"seq\":%lld,\"mac\":", (long long)a->audit_seq);
        if (!rc)
            rc = vigil__json_put_string(b, a->audit_hash, strlen(a->audit_hash));
        if (!rc)
            rc = vigil__buf_putc(b, '}');
    } else if (!rc) {
        rc = vigil__buf_puts(b, ",\"audit\":null");
    }
    if (!rc && r->verdict) {
        rc = vigil__buf_puts(b, ",\"verdict\":{\"decision\":");
        if (!rc)
            rc = vigil__json_put_string(b, r->verdict, strlen(r->verdict));
        if (!rc)
            rc = put_str_field(b, "reason", r->verdict_reason);
        if (!rc)
            rc = vigil__buf_printf(b, ",\"ts\":%lld}", (long long)r->verdict_ts);
    } else if (!rc) {
        rc = vigil__buf_puts(b, ",\"verdict\":null");
    }
    return rc ? rc : vigil__buf_putc(b, '}');
}

static int valid_status_filter(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 32)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || *s == '_'))
            return 0;
    return 1;
}

static void route_actions(vigil__api_call *call, void *payload)
{
    vigil_hub *hub = payload;
    vigil_store_filter f = VIGIL_STORE_FILTER_INIT;
    act_list l;
    memset(&l, 0, sizeof(l));
    vigil_buf b = VIGIL_BUF_INIT;
    int rc = parse_since(&f.since_ms, call, vigil__hub_now(hub));
    if (!rc)
        rc = parse_limit(&f.limit, call, ACTIONS_DEFAULT, ACTIONS_MAX);
    f.status = vigil__api_call_param(call, "status");
    if (!rc && f.status && !valid_status_filter(f.status))
        rc = vigil__error_set(VIGIL_EINVAL, "status: expected a status such as \"succeeded\"");
    if (!rc) {
        rc = vigil_store_action_list(hub->reader, &f, collect_action, &l);
        if (rc > 0)
            rc = vigil__error_oom();
    }
    if (!rc && l.n) {
        rc = index_actions(&l);
        int64_t oldest = l.rows[0].a.requested_ms;
        for (size_t i = 1; i < l.n; i++)
            if (l.rows[i].a.requested_ms < oldest)
                oldest = l.rows[i].a.requested_ms;
        vigil_store_filter df = VIGIL_STORE_FILTER_INIT;
        df.since_ms = oldest;
        if (!rc) {
            rc = vigil_store_decision_list(hub->reader, &df, verdict_of, &l);
            if (rc > 0)
                rc = vigil__error_oom();
        }
    }
    const act_row *cp = NULL;
    if (!rc)
        rc = vigil__buf_puts(&b, "{\"actions\":[");
    for (size_t i = 0; !rc && i < l.n; i++) {
        rc = put_action(&b, &l.rows[i], i > 0);
        if (l.rows[i].a.audit_seq > 0 && l.rows[i].a.audit_hash &&
            (!cp || l.rows[i].a.audit_seq > cp->a.audit_seq))
            cp = &l.rows[i];
    }
    if (!rc && cp) {
        rc = vigil__buf_printf(
            &b, "],\"checkpoint\":{\"seq\":%lld,\"mac\":", (long long)cp->a.audit_seq);
        if (!rc)
            rc = vigil__json_put_string(&b, cp->a.audit_hash, strlen(cp->a.audit_hash));
        if (!rc)
            rc = vigil__buf_puts(&b, "}}");
    } else if (!rc) {
        rc = vigil__buf_puts(&b, "],\"checkpoint\":null}");
    }
    act_list_free(&l);
    vigil__api_answer(call, rc, 200, &b);
}

/* ---- POST /v1/actions ----------------------------------------------------------------- */

static void route_action_request(vigil__api_call *call, void *payload)
{
    static const char *const keys[] = {"action", "target", "params", "reason", "dry_run", NULL};
    vigil_hub *hub = payload;
    cJSON *j = NULL;
    vigil_action_param params[VIGIL_ACTION_PARAMS_MAX];
    vigil_action_request req = VIGIL_ACTION_REQUEST_INIT;
    vigil_buf id = VIGIL_BUF_INIT, out = VIGIL_BUF_INIT;
    int rc = body_object(&j, call, keys);
    if (!rc)
        rc = get_str(&req.action, j, "action", VIGIL_ACTION_NAME_MAX, 1);
    if (!rc)
        rc = get_str(&req.target, j, "target", VIGIL_ACTION_VALUE_MAX, 1);
    if (!rc)
        rc = get_str(&req.reason, j, "reason", VIGIL_ACTION_TEXT_MAX, 0);
    const cJSON *dr = j ? cJSON_GetObjectItemCaseSensitive(j, "dry_run") : NULL;
    if (!rc && dr && !cJSON_IsNull(dr)) {
        if (!cJSON_IsBool(dr))
            rc = bad(VIGIL_ETYPE, "dry_run", "expected true or false");
        else
            req.dry_run = cJSON_IsTrue(dr);
    }
    const cJSON *ps = j ? cJSON_GetObjectItemCaseSensitive(j, "params") : NULL;
    if (!rc && ps && !cJSON_IsNull(ps)) {
        if (!cJSON_IsObject(ps))
            rc = bad(VIGIL_ETYPE, "params", "expected an object of strings");
        const cJSON *it;
        cJSON_ArrayForEach(it, ps)
        {
            if (rc)
                break;
            if (req.nparams >= VIGIL_ACTION_PARAMS_MAX)
                rc = vigil__error_set(VIGIL_ELIMIT, "params: more than %d parameters",
                                      VIGIL_ACTION_PARAMS_MAX);
            else if (!cJSON_IsString(it))
                rc = vigil__error_set(VIGIL_ETYPE, "params.%.64s: expected a string", it->string);
            else if (strlen(it->valuestring) > VIGIL_ACTION_VALUE_MAX)
                rc = vigil__error_set(VIGIL_ELIMIT, "params.%.64s: longer than %d bytes",
                                      it->string, VIGIL_ACTION_VALUE_MAX);
            else {
                params[req.nparams].key = it->string;
                params[req.nparams].value = it->valuestring;
                req.nparams++;
            }
        }
        req.params = params;
    }
    if (!rc)
        rc = vigil_hub_action_request(hub, &req, &id);
    if (!rc)
        rc = vigil__buf_puts(&out, "{\"id\":");
    if (!rc)
        rc = vigil__json_put_string(&out, id.ptr, id.size);
    if (!rc)
        rc = vigil__buf_putc(&out, '}');
    cJSON_Delete(j);
    vigil_buf_dispose(&id);
    if (rc == VIGIL_EUNSUPPORTED) {
        /* a follower of a cluster: the load balancer or the client retries
         * at the leader */
        vigil_buf_dispose(&out);
        vigil__api_resp_error(vigil__api_call_response(call), 503, "not_leader",
                              vigil_error_last()->message, NULL);
        vigil__api_finish(call);
        return;
    }
    vigil__api_answer(call, body_code(rc), 202, &out);
}

/* ---- POST /v1/actions/{id}/result --------------------------------------------------- */

static void route_action_result(vigil__api_call *call, void *payload)
{
    vigil_hub *hub = payload;
    const char *id = vigil__api_call_path_arg(call, 0);
    size_t len = 0;
    const char *body = vigil__api_call_body(call, &len);
    vigil_action_result r = VIGIL__ACTION_RESULT_EMPTY;
    int64_t seq = 0;
    char mac[VIGIL__AUDIT_MAC_HEX];
    int rc = vigil__hub_result_verify(hub, vigil__api_call_request(call), id, body, len);
    if (rc == VIGIL_EAUTH) {
        vigil__api_resp_error(vigil__api_call_response(call), 401, "unauthorized",
                              vigil_error_last()->message, NULL);
        vigil__api_finish(call);
        return;
    }
    if (!rc && strlen(id) > VIGIL_STORE_ID_MAX)
        rc = vigil__error_set(VIGIL_ENOTFOUND, "no action request with such a long id");
    if (!rc) {
        rc = body_code(vigil__hub_result_parse(body, len, 1, &r, &seq, mac));
    }
    if (!rc && r.id && strcmp(r.id, id) != 0)
        rc = bad(VIGIL_EINVAL, "id", "does not match the id in the path");
    if (!rc)
        rc = vigil_action_result_set_id(&r, id);
    if (!rc)
        rc = vigil_hub_action_result(hub, &r, seq, mac);
    vigil_buf out = VIGIL_BUF_INIT;
    if (!rc)
        rc = vigil__buf_puts(&out, "{\"id\":");
    if (!rc)
        rc = vigil__json_put_string(&out, id, strlen(id));
    if (!rc)
        rc = vigil__buf_printf(&out, ",\"status\":\"%s\"}", vigil_action_status_name(r.status));
    vigil_action_result_clear(&r);
    vigil__api_answer(call, rc, 200, &out);
}

/* ---- /v1/desired ------------------------------------------------------------------------ */

typedef struct desired_out {
    vigil_buf b;
    size_t n;
    int err;
    const char *source; /* filter, or NULL */
    const char *key;    /* filter on a bulk record's key, or NULL */
} desired_out;

/* A source's record (bulk form): its resource object, the spec as "desired". */
static int put_bulk_desired(desired_out *o, const vigil_store_resource *r)
{
    cJSON *j = NULL;
    const char *body = r->body_json ? r->body_json : "{}";
    if (vigil__json_parse(&j, body, strlen(body), 32) != VIGIL_OK)
        j = cJSON_CreateObject();
    if (!j)
        return vigil__error_oom();
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(j, "spec");
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(j, "labels");
    char *spec_s = cJSON_IsObject(spec) ? cJSON_PrintUnformatted(spec) : NULL;
    char *labels_s = cJSON_IsObject(labels) ? cJSON_PrintUnformatted(labels) : NULL;
    int rc = vigil__buf_puts(&o->b, o->n++ ? ",{\"target\":" : "{\"target\":");
    if (!rc)
        rc = vigil__json_put_string(&o->b, r->key, strlen(r->key));
    if (!rc)
        rc = vigil__buf_printf(&o->b, ",\"desired\":%s,\"updated\":%lld", spec_s ? spec_s : "{}",
                               (long long)r->updated_ms);
    if (!rc)
        rc = put_str_field(&o->b, "source", r->source ? r->source : "");
    if (!rc)
        rc = put_str_field(&o->b, "revision", r->revision ? r->revision : "");
    if (!rc)
        rc = put_str_field(&o->b, "kind", r->kind);
    if (!rc)
        rc = put_str_field(&o->b, "name", r->name);
    if (!rc)
        rc = vigil__buf_printf(
            &o->b, ",\"labels\":%s,\"selfHeal\":%s}", labels_s ? labels_s : "{}",
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "selfHeal")) ? "true" : "false");
    cJSON_free(spec_s);
    cJSON_free(labels_s);
    cJSON_Delete(j);
    return rc;
}

static int put_desired(const vigil_store_resource *r, void *payload)
{
    desired_out *o = payload;
    const char *src = r->source ? r->source : "";
    if (o->source && strcmp(src, o->source) != 0)
        return 0;
    if (strcmp(r->kind, DESIRED_KIND) != 0 || strcmp(src, DESIRED_SOURCE) != 0) {
        if (o->key && strcmp(r->key, o->key) != 0)
            return 0;
        int rc = put_bulk_desired(o, r);
        if (rc) {
            o->err = rc;
            return 1;
        }
        return 0;
    }
    vigil__json_problem pb;
    const char *body = r->body_json ? r->body_json : "{}";
    if (vigil__json_check(body, strlen(body), BODY_DEPTH, &pb) != VIGIL_OK)
        body = "{}";
    int rc = vigil__buf_puts(&o->b, o->n++ ? ",{\"target\":" : "{\"target\":");
    if (!rc)
        rc = vigil__json_put_string(&o->b, r->name, strlen(r->name));
    if (!rc)
        rc = vigil__buf_printf(&o->b, ",\"desired\":%s,\"updated\":%lld}", body,
                               (long long)r->updated_ms);
    if (rc) {
        o->err = rc;
        return 1;
    }
    return 0;
}

static int desired_key(vigil_buf *key, const char *target)
{
    int rc = vigil__buf_puts(key, "desired/");
    return rc ? rc : vigil__buf_puts(key, target);
}

static void route_desired_get(vigil__api_call *call, void *payload)
{
    vigil_hub *hub = payload;
    const char *target = vigil__api_call_param(call, "target");
    desired_out o;
    memset(&o, 0, sizeof(o));
    vigil_buf key = VIGIL_BUF_INIT;
    int rc = VIGIL_OK;
    if (target) {
        if (!*target || strlen(target) > VIGIL_ACTION_VALUE_MAX)
            rc = vigil__error_set(VIGIL_EINVAL, "target: expected 1-%d bytes",
                                  VIGIL_ACTION_VALUE_MAX);
        if (!rc)
            rc = desired_key(&key, target);
        if (!rc) {
            rc = vigil_store_resource_list(hub->reader, VIGIL_STORE_DESIRED, key.ptr, put_desired,
                                           &o);
            if (rc == VIGIL_ENOTFOUND || (!rc && !o.err && o.n == 0)) {
                /* a source's record is kept under the target itself */
                o.key = target;
                rc = vigil_store_resource_list(hub->reader, VIGIL_STORE_DESIRED, target,
                                               put_desired, &o);
            }
            if (rc == VIGIL_ENOTFOUND || (!rc && !o.err && o.n == 0))
                rc = vigil__error_set(VIGIL_ENOTFOUND, "no desired state for target \"%.128s\"",
                                      target);
        }
        if (rc > 0 || o.err)
            rc = o.err ? o.err : vigil__error_oom();
    } else {
        o.source = vigil__api_call_param(call, "source");
        if (o.source && (!*o.source || strlen(o.source) > 253))
            rc = vigil__error_set(VIGIL_EINVAL, "source: expected 1-253 bytes");
        if (!rc)
            rc = vigil__buf_puts(&o.b, "{\"desired\":[");
        if (!rc) {
            rc = vigil_store_resource_list(hub->reader, VIGIL_STORE_DESIRED, NULL, put_desired, &o);
            if (rc > 0 || o.err)
                rc = o.err ? o.err : vigil__error_oom();
        }
        if (!rc)
            rc = vigil__buf_puts(&o.b, "]}");
    }
    vigil_buf_dispose(&key);
    vigil__api_answer(call, rc, 200, &o.b);
}

static void route_desired_put(vigil__api_call *call, void *payload)
{
    static const char *const keys[] = {"target", "desired", NULL};
    vigil_hub *hub = payload;
    cJSON *j = NULL;
    const char *target = NULL;
    char *desired = NULL;
    vigil_buf key = VIGIL_BUF_INIT, out = VIGIL_BUF_INIT;
    size_t len = 0;
    const char *raw = vigil__api_call_body(call, &len);
    /* the bulk form of a source (vigil-gitopsd) has "resources" */
    int rc = vigil__json_parse(&j, raw, len, 32);
    if (rc == VIGIL_ENOMEM) {
        vigil__api_answer(call, rc, 200, &out);
        return;
    }
    if (!rc && cJSON_IsObject(j) &&
        (cJSON_GetObjectItemCaseSensitive(j, "resources") ||
         cJSON_GetObjectItemCaseSensitive(j, "source"))) {
        rc = vigil__hub_desired_bulk(hub, j, &out);
        cJSON_Delete(j);
        vigil__api_answer(call, rc, 200, &out);
        return;
    }
    cJSON_Delete(j);
    j = NULL;
    rc = body_object(&j, call, keys);
    if (!rc)
        rc = get_str(&target, j, "target", VIGIL_ACTION_VALUE_MAX, 1);
    const cJSON *d = j ? cJSON_GetObjectItemCaseSensitive(j, "desired") : NULL;
    if (!rc && !d)
        rc = bad(VIGIL_EMISSING, "desired", "required");
    if (!rc && !cJSON_IsObject(d))
        rc = bad(VIGIL_ETYPE, "desired", "expected an object");
    if (!rc) {
        desired = cJSON_PrintUnformatted(d);
        if (!desired)
            rc = vigil__error_oom();
        else if (strlen(desired) > DESIRED_MAX)
            rc = vigil__error_set(VIGIL_ELIMIT, "desired: larger than %d bytes", DESIRED_MAX);
    }
    if (!rc) {
        rc = vigil_engine_set_desired(hub->engine, target, desired);
        if (rc == VIGIL_EVALUE || rc == VIGIL_ETYPE) {
            char why[1024]; /* the size of the error message buffer */
            snprintf(why, sizeof(why), "%s", vigil_error_last()->message);
            rc = vigil__error_set(VIGIL_EINVAL, "desired: %s", why);
        }
    }
    if (!rc)
        rc = desired_key(&key, target);
    if (!rc) {
        vigil_store_resource res;
        memset(&res, 0, sizeof(res));
        res.key = key.ptr;
        res.kind = DESIRED_KIND;
        res.name = target;
        res.source = DESIRED_SOURCE;
        res.body_json = desired;
        res.updated_ms = vigil__hub_now(hub);
        rc = vigil_store_resource_put(hub->store, VIGIL_STORE_DESIRED, &res);
    }
    if (!rc)
        rc = vigil__buf_puts(&out, "{\"target\":");
    if (!rc)
        rc = vigil__json_put_string(&out, target, strlen(target));
    if (!rc)
        rc = vigil__buf_printf(&out, ",\"desired\":%s}", desired);
    cJSON_free(desired);
    cJSON_Delete(j);
    vigil_buf_dispose(&key);
    vigil__api_answer(call, body_code(rc), 200, &out);
}

/* ---- mount ------------------------------------------------------------------------------- */

int vigil__hub_mount_policy_routes(vigil_hub *hub, vigil_api *api)
{
    const unsigned int R = VIGIL_API_SCOPE_READ, W = VIGIL_API_SCOPE_WRITE, B = VIGIL__API_BODY;
    const vigil__api_route_def routes[] = {
        {"GET", "/v1/policies", R, 0, route_policies},
        {"GET", "/v1/decisions", R, 0, route_decisions},
        {"GET", "/v1/silences", R, 0, route_silences},
        {"POST", "/v1/silences", W, B, route_silence_add},
        {"DELETE", "/v1/silences/*", W, 0, route_silence_delete},
        {"GET", "/v1/actions", R, 0, route_actions},
        {"POST", "/v1/actions", W, B, route_action_request},
        {"POST", "/v1/actions/*/result", W, VIGIL__API_RAW, route_action_result},
        {"GET", "/v1/desired", R, 0, route_desired_get},
        {"PUT", "/v1/desired", W, B, route_desired_put},
    };
    int rc = vigil__api_routes(api, routes, VIGIL__ARRAY_LEN(routes), hub);
    return rc ? rc : vigil__hub_mount_gitops_routes(hub, api);
}
