/* The action wire formats the hub speaks: the body of POST /v1/execute it
 * sends, and the result it reads back (from the answer, or from a
 * remediator's POST /v1/actions/{id}/result). */
#include "hub/dispatch.h"
#include "hub/hub_int.h"
#include "internal/json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RESULT_MAX_DEPTH 8

int vigil__hub_result_secret_init(vigil_hub *hub, const vigil_hub_options *o)
{
    const void *secret = o->remediator_secret;
    size_t len = o->remediator_secret_len;
    if ((!secret || !len) && o->remediator_secret_env && *o->remediator_secret_env) {
        secret = getenv(o->remediator_secret_env);
        len = secret ? strlen(secret) : 0;
    }
    if (!secret || !len)
        return VIGIL_OK;
    if (!(hub->result_secret = vigil__malloc(len)))
        return vigil__error_oom();
    memcpy(hub->result_secret, secret, len);
    hub->result_secret_len = len;
    return VIGIL_OK;
}

void vigil__hub_result_secret_free(vigil_hub *hub)
{
    if (hub->result_secret) {
        volatile unsigned char *p = hub->result_secret;
        for (size_t i = 0; i < hub->result_secret_len; i++)
            p[i] = 0;
        vigil__free(hub->result_secret);
    }
    hub->result_secret = NULL;
    hub->result_secret_len = 0;
}

int vigil__hub_result_verify(vigil_hub *hub, const vigil_api_request *req, const char *id,
                             const char *body, size_t len)
{
    const unsigned char *secret = hub->result_secret;
    size_t secret_len = hub->result_secret_len;
    int route = vigil__hub_route_of_action(hub, id); /* a fleet: the secret of its remediator */
    if (route >= 0) {
        secret = hub->fleet[route].secret;
        secret_len = hub->fleet[route].secret_len;
    }
    if (!secret)
        return vigil__error_set(VIGIL_EAUTH,
                                "signature: this hub has no remediator secret to check results "
                                "against (remediator.secret_env)");
    return vigil_signature_verify(vigil__api_request_header(req, VIGIL_SIGNATURE_HEADER), secret,
                                  secret_len, body ? body : "", body ? len : 0,
                                  vigil__now_ms() / 1000, 0);
}

int vigil__hub_mac_valid(const char *mac)
{
    size_t n = 0;
    for (; mac[n]; n++) {
        char c = mac[n];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return 0;
    }
    return n == VIGIL__AUDIT_MAC_HEX - 1;
}

static int put_kv_str(vigil_buf *b, const char *key, const char *value, int comma)
{
    int rc = comma ? vigil__buf_putc(b, ',') : VIGIL_OK;
    if (!rc)
        rc = vigil__json_put_string(b, key, strlen(key));
    if (!rc)
        rc = vigil__buf_putc(b, ':');
    if (!rc)
        rc = value ? vigil__json_put_string(b, value, strlen(value)) : vigil__buf_puts(b, "null");
    return rc;
}

int vigil__hub_params_json(vigil_buf *out, const vigil_action_request *req)
{
    int rc = vigil__buf_putc(out, '{');
    for (size_t i = 0; i < req->nparams && !rc; i++) {
        const vigil_action_param *p = &req->params[i];
        rc = put_kv_str(out, p->key ? p->key : "", p->value ? p->value : "", i > 0);
    }
    return rc ? rc : vigil__buf_putc(out, '}');
}

int vigil__hub_request_json(vigil_buf *out, const vigil_action_request *req, uint64_t epoch)
{
    int rc = vigil__buf_putc(out, '{');
    if (!rc)
        rc = put_kv_str(out, "id", req->id ? req->id : "", 0);
    if (!rc)
        rc = put_kv_str(out, "action", req->action ? req->action : "", 1);
    if (!rc)
        rc = put_kv_str(out, "target", req->target ? req->target : "", 1);
    if (!rc)
        rc = vigil__buf_puts(out, ",\"params\":");
    if (!rc)
        rc = vigil__hub_params_json(out, req);
    if (!rc)
        rc = put_kv_str(out, "reason", req->reason ? req->reason : "", 1);
    if (!rc)
        rc = put_kv_str(out, "policy", req->policy ? req->policy : "", 1);
    if (!rc)
        rc = vigil__buf_puts(out, req->dry_run ? ",\"dry_run\":true" : ",\"dry_run\":false");
    if (!rc && epoch)
        rc = vigil__buf_printf(out, ",\"epoch\":%llu", (unsigned long long)epoch);
    if (!rc)
        rc = vigil__buf_putc(out, '}');
    return rc;
}

/* An integer held exactly by a JSON number, within [min, max]. */
static int get_int(int64_t *out, const cJSON *v, const char *path, int64_t min, int64_t max)
{
    if (!cJSON_IsNumber(v))
        return vigil__error_set(VIGIL_ETYPE, "%s: expected an integer", path);
    double d = v->valuedouble;
    if (!isfinite(d) || d != floor(d) || d < (double)min || d > (double)max)
        return vigil__error_set(VIGIL_EVALUE, "%s: expected an integer from %lld to %lld", path,
                                (long long)min, (long long)max);
    *out = (int64_t)d;
    return VIGIL_OK;
}

/* A string or null (NULL) field; absent leaves *out NULL. */
static int get_opt_str(const char **out, const cJSON *obj, const char *key, size_t max)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (!v || cJSON_IsNull(v))
        return VIGIL_OK;
    if (!cJSON_IsString(v))
        return vigil__error_set(VIGIL_ETYPE, "%s: expected a string or null", key);
    if (strlen(v->valuestring) > max)
        return vigil__error_set(VIGIL_ELIMIT, "%s: longer than %zu bytes", key, max);
    *out = v->valuestring;
    return VIGIL_OK;
}

static int parse_audit(const cJSON *a, int64_t *seq, char mac[VIGIL__AUDIT_MAC_HEX], int strict)
{
    if (cJSON_IsNull(a))
        return VIGIL_OK;
    if (!cJSON_IsObject(a))
        return vigil__error_set(VIGIL_ETYPE, "audit: expected an object {\"seq\",\"mac\"}");
    const cJSON *it;
    cJSON_ArrayForEach(it, a)
    {
        if (strict && strcmp(it->string, "seq") != 0 && strcmp(it->string, "mac") != 0)
            return vigil__error_set(VIGIL_EINVAL, "audit.%.64s: unknown key", it->string);
    }
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(a, "seq");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(a, "mac");
    if (!s)
        return vigil__error_set(VIGIL_EMISSING, "audit.seq: required");
    if (!m)
        return vigil__error_set(VIGIL_EMISSING, "audit.mac: required");
    int rc = get_int(seq, s, "audit.seq", 1, INT64_C(9007199254740991));
    if (rc)
        return rc;
    if (!cJSON_IsString(m))
        return vigil__error_set(VIGIL_ETYPE, "audit.mac: expected a string");
    if (!vigil__hub_mac_valid(m->valuestring))
        return vigil__error_set(VIGIL_EVALUE, "audit.mac: expected 64 hex digits");
    memcpy(mac, m->valuestring, VIGIL__AUDIT_MAC_HEX);
    return VIGIL_OK;
}

static int parse_obj(const cJSON *j, int strict, vigil_action_result *out, int64_t *seq,
                     char mac[VIGIL__AUDIT_MAC_HEX])
{
    static const char *const keys[] = {"id",          "status", "reason",         "output",
                                       "duration_ms", "audit",  "retry_after_ms", NULL};
    if (!cJSON_IsObject(j))
        return vigil__error_set(VIGIL_ETYPE, "expected a JSON object");
    const cJSON *it;
    cJSON_ArrayForEach(it, j)
    {
        size_t k = 0;
        while (keys[k] && strcmp(keys[k], it->string) != 0)
            k++;
        if (!keys[k] && strict)
            return vigil__error_set(VIGIL_EINVAL, "%.64s: unknown key", it->string);
    }
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "status");
    if (!st)
        return vigil__error_set(VIGIL_EMISSING, "status: required");
    if (!cJSON_IsString(st))
        return vigil__error_set(VIGIL_ETYPE, "status: expected a string");
    vigil_action_status status;
    if (vigil_action_status_parse(&status, st->valuestring))
        return vigil__error_set(VIGIL_EVALUE,
                                "status: expected succeeded, failed, timeout, refused, dry_run or "
                                "pending_approval");
    out->status = status;
    const char *id = NULL, *reason = NULL, *output = NULL;
    int rc = get_opt_str(&id, j, "id", VIGIL_ACTION_ID_MAX);
    if (!rc && cJSON_GetObjectItemCaseSensitive(j, "id") && !id)
        rc = vigil__error_set(VIGIL_ETYPE, "id: expected a string");
    if (!rc && id && !*id)
        rc = vigil__error_set(VIGIL_EVALUE, "id: must not be empty");
    if (!rc)
        rc = get_opt_str(&reason, j, "reason", VIGIL_ACTION_TEXT_MAX);
    if (!rc)
        rc = get_opt_str(&output, j, "output", VIGIL_ACTION_OUTPUT_MAX);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "duration_ms");
    if (!rc && d && !cJSON_IsNull(d))
        rc = get_int(&out->duration_ms, d, "duration_ms", 0, INT64_C(9007199254740991));
    const cJSON *ra = cJSON_GetObjectItemCaseSensitive(j, "retry_after_ms");
    if (!rc && ra && !cJSON_IsNull(ra) && out->version >= 2)
        rc = get_int(&out->retry_after_ms, ra, "retry_after_ms", 0, INT64_C(9007199254740991));
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "audit");
    if (!rc && a)
        rc = parse_audit(a, seq, mac, strict);
    if (!rc)
        rc = vigil_action_result_set_id(out, id);
    if (!rc)
        rc = vigil_action_result_set_reason(out, reason);
    if (!rc && output)
        rc = vigil_action_result_set_output(out, output, strlen(output));
    return rc;
}

int vigil__hub_result_parse(const char *text, size_t len, int strict, vigil_action_result *out,
                            int64_t *audit_seq, char audit_mac[VIGIL__AUDIT_MAC_HEX])
{
    vigil_action_result_clear(out);
    *audit_seq = 0;
    audit_mac[0] = '\0';
    cJSON *j = NULL;
    int rc = vigil__json_parse(&j, text, len, RESULT_MAX_DEPTH);
    if (rc)
        return rc;
    rc = parse_obj(j, strict, out, audit_seq, audit_mac);
    cJSON_Delete(j);
    if (rc) {
        vigil_action_result_clear(out);
        *audit_seq = 0;
        audit_mac[0] = '\0';
    }
    return rc;
}
