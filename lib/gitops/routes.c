/* POST /v1/sync (scope write, or a webhook signature) and GET /v1/status. */
#include "api/internal.h"
#include "crypto/crypto.h"
#include "gitops/gitops_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define SIG_PREFIX "sha256="

/* X-Hub-Signature-256: sha256=<hex of HMAC-SHA256(secret, raw body)>. */
static int check_signature(const vigil_api_request *req, void *payload)
{
    vigil_gitops *g = payload;
    if (!g->secret)
        return VIGIL_EAUTH;
    const char *h = vigil__api_request_header(req, "X-Hub-Signature-256");
    if (!h || strncasecmp(h, SIG_PREFIX, sizeof(SIG_PREFIX) - 1) != 0)
        return VIGIL_EAUTH;
    h += sizeof(SIG_PREFIX) - 1;
    unsigned char given[VIGIL__CRYPTO_SHA256_LEN], want[VIGIL__CRYPTO_SHA256_LEN];
    if (strlen(h) != 2 * sizeof(given) || vigil__hex_decode(given, h, sizeof(given)) != 0)
        return VIGIL_EAUTH;
    if (vigil__crypto_hmac_sha256(want, g->secret, g->secret_len, req->body ? req->body : "",
                                  req->body ? req->body_len : 0) != VIGIL_OK)
        return VIGIL_EAUTH;
    int ok = vigil__crypto_equal(given, want, sizeof(want));
    return ok ? VIGIL_OK : VIGIL_EAUTH;
}

/* Before the body is read (the server's precheck): a well-formed
 * X-Hub-Signature-256 lets the body be read, then check_signature() verifies
 * it; anything else falls through to the bearer token check. */
static int signature_head(const vigil_api_request *req, void *payload, char *why, size_t why_size)
{
    vigil_gitops *g = payload;
    const char *h = vigil__api_request_header(req, "X-Hub-Signature-256");
    unsigned char given[VIGIL__CRYPTO_SHA256_LEN];
    if (!g->secret || !h || strncasecmp(h, SIG_PREFIX, sizeof(SIG_PREFIX) - 1) != 0 ||
        strlen(h + sizeof(SIG_PREFIX) - 1) != 2 * sizeof(given) ||
        vigil__hex_decode(given, h + sizeof(SIG_PREFIX) - 1, sizeof(given)) != 0) {
        snprintf(why, why_size, "no well-formed X-Hub-Signature-256");
        return VIGIL_EAUTH;
    }
    return VIGIL_OK;
}

static void route_sync(vigil__api_call *call, void *payload)
{
    vigil_gitops *g = payload;
    vigil_gitops_request_sync(g);
    vigil__log(&g->logger, VIGIL_LOG_INFO, "gitops", "sync requested", "by=%s",
               vigil__api_call_principal(call) ? vigil__api_call_principal(call) : "-");
    vigil_buf b = VIGIL_BUF_INIT;
    int rc = vigil__buf_puts(&b, "{\"requested\":true}");
    vigil__api_answer(call, rc, 202, &b);
}

static void route_status(vigil__api_call *call, void *payload)
{
    vigil_buf b = VIGIL_BUF_INIT;
    int rc = vigil_gitops_status_json(payload, &b);
    vigil__api_answer(call, rc, 200, &b);
}

int vigil_gitops_mount(vigil_gitops *g, vigil_api *api)
{
    if (!g || !api)
        return vigil__error_set(VIGIL_EINVAL, "gitops mount: NULL argument");
    static const vigil__api_route_def defs[] = {
        {"POST", "/v1/sync", VIGIL_API_SCOPE_WRITE, 0, route_sync},
        {"GET", "/v1/status", VIGIL_API_SCOPE_READ, 0, route_status},
    };
    int rc = vigil__api_routes(api, defs, VIGIL__ARRAY_LEN(defs), g);
    if (!rc && g->secret)
        rc = vigil__api_route_alt_auth(api, "POST", "/v1/sync", check_signature, "webhook");
    if (!rc && g->secret)
        rc = vigil__api_route_head_check(api, "POST", "/v1/sync", signature_head);
    return rc;
}
