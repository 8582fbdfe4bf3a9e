/* The hub's built-in HTTP dispatcher (lib/hub/dispatch_http.c): worker
 * threads POST signed requests to a remediator's /v1/execute and report each
 * result once; and the parser of the result wire format shared with the
 * route POST /v1/actions/{id}/result (lib/hub/result.c). Private to lib/hub. */
#ifndef VIGIL_HUB_DISPATCH_H
#define VIGIL_HUB_DISPATCH_H

#include "internal/common.h"
#include "vigil/action.h"
#include "vigil/signature.h"

/* Hex digits of an audit MAC (HMAC-SHA256) plus the NUL. */
#define VIGIL__AUDIT_MAC_HEX 65

/* ---- results (lib/hub/result.c) ---------------------------------------------- */

/* The result wire format (contracts: answer of POST /v1/execute, body of POST
 * /v1/actions/{id}/result):
 *   {"id":"…","status":"succeeded|failed|timeout|refused|dry_run|pending_approval",
 *    "reason":"…"|null,"output":"…"|null,"duration_ms":12,"audit":{"seq":42,"mac":"<64 hex>"}}
 * Parses text[0..len) into *out (cleared first), *audit_seq (0 when absent) and
 * audit_mac ("" when absent). `strict`: unknown keys are refused (the route);
 * otherwise ignored (answers of a newer remediator). The id is optional.
 * Errors are located by JSON path ("audit.seq: expected an integer ≥ 1"):
 * VIGIL_EJSON, VIGIL_EENCODING, VIGIL_ELIMIT (malformed JSON), VIGIL_ETYPE,
 * VIGIL_EVALUE, VIGIL_EMISSING (status), VIGIL_EINVAL (unknown key), VIGIL_ENOMEM. */
int vigil__hub_result_parse(const char *text, size_t len, int strict, vigil_action_result *out,
                            int64_t *audit_seq, char audit_mac[VIGIL__AUDIT_MAC_HEX]);

/* Appends the JSON body of POST /v1/execute for `req` (docs/http-api.md, "POST /v1/execute"):
 * {"id","action","target","params":{},"reason","policy","dry_run"}, and "epoch" (the
 * leader's fencing epoch) after them when `epoch` is not 0 (a clustered hub). */
int vigil__hub_request_json(vigil_buf *out, const vigil_action_request *req, uint64_t epoch);

/* The reason of a FAILED result when the remediator refused the request's
 * epoch as older than one it saw (409 stale_epoch, signed): the hub that
 * sent it has lost the leadership. */
#define VIGIL__STALE_EPOCH "stale_epoch"

/* Appends req's params as a JSON object ({} when none). */
int vigil__hub_params_json(vigil_buf *out, const vigil_action_request *req);

/* True when `mac` is 64 lowercase or uppercase hex digits. */
int vigil__hub_mac_valid(const char *mac);

/* ---- the HTTP dispatcher (lib/hub/dispatch_http.c) ------------------------------ */

typedef struct vigil__dispatch vigil__dispatch;

/* Receives the one result of a submitted request with the remediator's audit
 * checkpoint (0 and "" when it sent none). Called from a worker thread (or the
 * thread calling vigil__dispatch_stop() for requests cancelled then). */
typedef void (*vigil__dispatch_done_cb)(const vigil_action_result *result, int64_t audit_seq,
                                        const char *audit_mac, void *payload);

typedef struct vigil__dispatch_options {
    const char *url;        /* base URL of the remediator (http or https); required */
    const void *secret;     /* HMAC key of X-Vigil-Signature (copied, never logged); required */
    size_t secret_len;      /* > 0 */
    int64_t timeout_ms;     /* one delivery, request to answer; 0: 5 minutes */
    int64_t connect_ms;     /* connection timeout; 0: 5 s */
    unsigned int attempts;  /* deliveries of one request at most; 0: 5 */
    int64_t backoff_ms;     /* first retry delay; 0: 500 ms */
    int64_t backoff_max_ms; /* cap of the delays; 0: 30 s */
    size_t workers;         /* worker threads; 0: 2 */
    size_t queue_max;       /* requests queued (not yet delivered) at most; 0: 1024 */
    vigil_logger logger;
    const char *ca_file;   /* TLS: PEM CA bundle to trust instead of the system's, or NULL */
    const char *cert_file; /* TLS client certificate (PEM), with key_file, or NULL */
    const char *key_file;
} vigil__dispatch_options;

/* Checks an X-Vigil-Signature header value (NULL: missing) over `body`
 * with the dispatcher's secret, against the current time: the signature of
 * a remediator's answer or late result. VIGIL_OK; VIGIL_EAUTH with the
 * reason ("signature: missing", "signature: mismatch", ...). Thread-safe. */
int vigil__dispatch_verify(const vigil__dispatch *d, const char *header, const void *body,
                           size_t len);

/* Creates the dispatcher and starts its workers. Codes: VIGIL_EINVAL (bad URL,
 * no secret), VIGIL_EIO (libcurl), VIGIL_ERROR (thread), VIGIL_ENOMEM. */
int vigil__dispatch_new(vigil__dispatch **out, const vigil__dispatch_options *opts);

/* Queues a request (copied), with the fencing epoch of a clustered hub's
 * leader (0: none, the body has no "epoch"). VIGIL_OK: `done` is called exactly once.
 * VIGIL_EOVERLOADED (queue full), VIGIL_ECONFLICT (a request with this id is
 * queued or being delivered), VIGIL_ECLOSED (stopping), VIGIL_EINVAL (no id,
 * no action), VIGIL_ENOMEM. Thread-safe. */
int vigil__dispatch_submit(vigil__dispatch *d, const vigil_action_request *req, uint64_t epoch,
                           vigil__dispatch_done_cb done, void *payload);

/* The dispatcher as a vigil_action_dispatcher (its done callback gets no audit
 * checkpoint). */
void vigil__dispatch_interface(vigil__dispatch *d, vigil_action_dispatcher *out);

/* Refuses new requests, aborts deliveries in progress and answers every
 * request not delivered with FAILED "cancelled", then joins the workers.
 * Idempotent. */
void vigil__dispatch_stop(vigil__dispatch *d);

/* Stops and frees. NULL is a no-op. */
void vigil__dispatch_free(vigil__dispatch *d);

/* The remediator's base URL: *url[0..returned length) (lib/hub/routes_admin.c). */
size_t vigil__dispatch_base_url(const vigil__dispatch *d, const char **url);
/* The signing secret (borrowed; never logged) and its length. */
const void *vigil__dispatch_secret(const vigil__dispatch *d, size_t *len);

/* Requests queued or being delivered. */
size_t vigil__dispatch_pending(vigil__dispatch *d);

#endif
