/* vigil_api_response: status, headers, a body or a stream. */
#include "api/internal.h"
#include "internal/json.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

struct vigil_api_response {
    int status;
    int used; /* submitted once */
    vigil_http_header *headers;
    size_t nheaders, cheaders;
    vigil_buf body;
    const vigil__api_stream_ops *ops;
    void *stream;
};

int vigil_api_response_new(vigil_api_response **out)
{
    if (!out)
        return vigil__error_set(VIGIL_EINVAL, "api response: NULL argument");
    vigil_api_response *r = vigil__calloc(1, sizeof(*r));
    if (!r)
        return vigil__error_oom();
    *out = r;
    return VIGIL_OK;
}

static void close_stream(vigil_api_response *r)
{
    if (r->ops) {
        r->ops->close(r->stream);
        r->ops = NULL;
        r->stream = NULL;
    }
}

void vigil_api_response_free(vigil_api_response *resp)
{
    if (!resp)
        return;
    close_stream(resp);
    for (size_t i = 0; i < resp->nheaders; i++) {
        vigil__free((char *)resp->headers[i].name);
        vigil__free((char *)resp->headers[i].value);
    }
    vigil__free(resp->headers);
    vigil_buf_dispose(&resp->body);
    vigil__free(resp);
}

int vigil_api_response_status(const vigil_api_response *resp)
{
    return resp ? resp->status : 0;
}

size_t vigil_api_response_header_count(const vigil_api_response *resp)
{
    return resp ? resp->nheaders : 0;
}

const vigil_http_header *vigil_api_response_header_at(const vigil_api_response *resp, size_t index)
{
    if (!resp || index >= resp->nheaders)
        return NULL;
    return &resp->headers[index];
}

const char *vigil_api_response_header(const vigil_api_response *resp, const char *name)
{
    if (!resp || !name)
        return NULL;
    for (size_t i = 0; i < resp->nheaders; i++)
        if (strcasecmp(resp->headers[i].name, name) == 0)
            return resp->headers[i].value;
    return NULL;
}

const char *vigil_api_response_body(const vigil_api_response *resp, size_t *len)
{
    if (len)
        *len = resp ? resp->body.size : 0;
    return resp && resp->body.ptr ? resp->body.ptr : "";
}

int vigil_api_response_is_stream(const vigil_api_response *resp)
{
    return resp && resp->ops != NULL;
}

int vigil_api_response_set_wake(vigil_api_response *resp, vigil_api_wake_cb wake, void *payload)
{
    if (!resp || !resp->ops)
        return vigil__error_set(VIGIL_EINVAL, "api response: not a stream");
    resp->ops->set_wake(resp->stream, wake, payload);
    return VIGIL_OK;
}

int vigil_api_response_read(vigil_api_response *resp, char *buf, size_t size, size_t *n)
{
    if (n)
        *n = 0;
    if (!resp || !resp->ops || !buf || !n)
        return vigil__error_set(VIGIL_EINVAL, "api response: not a stream");
    return resp->ops->read(resp->stream, buf, size, n);
}

int vigil__api_resp_used(vigil_api_response *resp)
{
    int was = resp->used;
    resp->used = 1;
    return was;
}

int vigil__api_resp_status(vigil_api_response *resp, int status)
{
    resp->status = status;
    return VIGIL_OK;
}

int vigil__api_resp_header(vigil_api_response *resp, const char *name, const char *value)
{
    char *v = vigil__strdup(value);
    if (!v)
        return vigil__error_oom();
    for (size_t i = 0; i < resp->nheaders; i++) {
        if (strcasecmp(resp->headers[i].name, name) == 0) {
            vigil__free((char *)resp->headers[i].value);
            resp->headers[i].value = v;
            return VIGIL_OK;
        }
    }
    char *k = vigil__strdup(name);
    if (!k || vigil__array_grow((void **)&resp->headers, &resp->cheaders, resp->nheaders + 1,
                                sizeof(vigil_http_header))) {
        vigil__free(k);
        vigil__free(v);
        return vigil__error_oom();
    }
    resp->headers[resp->nheaders].name = k;
    resp->headers[resp->nheaders].value = v;
    resp->nheaders++;
    return VIGIL_OK;
}

int vigil__api_resp_text(vigil_api_response *resp, int status, const char *content_type,
                         vigil_buf *body)
{
    int rc = vigil__api_resp_header(resp, "Content-Type", content_type);
    if (rc)
        return rc;
    close_stream(resp);
    vigil_buf_dispose(&resp->body);
    if (body) {
        resp->body = *body;
        body->ptr = NULL;
        body->size = body->asize = 0;
    }
    resp->status = status;
    return VIGIL_OK;
}

int vigil__api_resp_json_buf(vigil_api_response *resp, int status, vigil_buf *body)
{
    return vigil__api_resp_text(resp, status, "application/json", body);
}

int vigil__api_resp_json(vigil_api_response *resp, int status, const char *body, size_t len)
{
    vigil_buf b = VIGIL_BUF_INIT;
    int rc = vigil__buf_put(&b, body, len);
    if (!rc)
        rc = vigil__api_resp_json_buf(resp, status, &b);
    vigil_buf_dispose(&b);
    return rc;
}

void vigil__api_resp_set_retry_after(vigil_api_response *resp, unsigned int seconds)
{
    char v[16];
    snprintf(v, sizeof(v), "%u", seconds ? seconds : 1);
    vigil__api_resp_header(resp, "Retry-After", v);
}

int vigil__api_resp_error(vigil_api_response *resp, int status, const char *code,
                          const char *message, const char *path)
{
    vigil_buf b = VIGIL_BUF_INIT;
    message = message ? message : "";
    path = path ? path : "";
    int rc = vigil__buf_puts(&b, "{\"error\":{\"code\":");
    if (!rc)
        rc = vigil__json_put_string(&b, code, strlen(code));
    if (!rc)
        rc = vigil__buf_puts(&b, ",\"message\":");
    if (!rc)
        rc = vigil__json_put_string(&b, message, strlen(message));
    if (!rc)
        rc = vigil__buf_puts(&b, ",\"path\":");
    if (!rc)
        rc = vigil__json_put_string(&b, path, strlen(path));
    if (!rc)
        rc = vigil__buf_puts(&b, "}}");
    if (!rc)
        rc = vigil__api_resp_json_buf(resp, status, &b);
    vigil_buf_dispose(&b);
    if (rc) {
        /* Still answer: a fixed body needs no allocation beyond the copy. */
        resp->status = 500;
    }
    return rc;
}

/* The JSON path at the start of a decoder message ("metrics[3].value: ..."):
 * the text before the first ": " when it looks like a path. */
static size_t message_path(const char *message)
{
    const char *colon = strstr(message, ": ");
    if (!colon || colon == message)
        return 0;
    for (const char *p = message; p < colon; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '[' || c == ']' || c == ':'))
            return 0;
    }
    return (size_t)(colon - message);
}

int vigil__api_resp_from_code(vigil_api_response *resp, int vigil_code, const char *message)
{
    int status = 400;
    const char *code = "invalid_request";
    switch (vigil_code) {
    case VIGIL_EJSON: code = "invalid_json"; break;
    case VIGIL_ETYPE:
    case VIGIL_EMISSING:
    case VIGIL_ENAME:
    case VIGIL_EVALUE:
    case VIGIL_EENCODING:
    case VIGIL_ELIMIT:
    case VIGIL_ERANGE: code = "invalid_metric"; break;
    case VIGIL_EINVAL: code = "invalid_request"; break;
    case VIGIL_EAUTH:
        status = 401;
        code = "unauthorized";
        break;
    case VIGIL_EPERM:
        status = 403;
        code = "forbidden";
        break;
    case VIGIL_ENOTFOUND:
        status = 404;
        code = "not_found";
        break;
    case VIGIL_ECONFLICT:
    case VIGIL_EEXISTS:
        status = 409;
        code = "conflict";
        break;
    case VIGIL_EOVERLOADED:
        status = 429;
        code = "overloaded";
        break;
    case VIGIL_EBUSY:
    case VIGIL_EIO:
    case VIGIL_EFULL:
    case VIGIL_EREADONLY:
    case VIGIL_ECLOSED:
    case VIGIL_ETIMEOUT:
    case VIGIL_ECORRUPT:
        status = 503;
        code = "unavailable";
        break;
    default:
        status = 500;
        code = "internal";
        break;
    }
    char path[256] = "";
    const char *msg = message ? message : vigil_strerror(vigil_code);
    if (status == 400) {
        size_t n = message_path(msg);
        if (n && n < sizeof(path)) {
            memcpy(path, msg, n);
            path[n] = '\0';
        }
    }
    return vigil__api_resp_error(resp, status, code, msg, path);
}

int vigil__api_resp_stream(vigil_api_response *resp, int status, const char *content_type,
                           const vigil__api_stream_ops *ops, void *ctx)
{
    int rc = vigil__api_resp_header(resp, "Content-Type", content_type);
    if (!rc)
        rc = vigil__api_resp_header(resp, "Cache-Control", "no-cache");
    if (rc) {
        ops->close(ctx);
        return rc;
    }
    close_stream(resp);
    vigil__buf_clear(&resp->body);
    resp->ops = ops;
    resp->stream = ctx;
    resp->status = status;
    return VIGIL_OK;
}
