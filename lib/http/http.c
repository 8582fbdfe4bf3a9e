/* libcurl behind lib/http/http.h: the only file of the library that includes
 * curl/curl.h. Every request runs on the handle's multi interface, so a wait
 * can also watch a cancel descriptor and the connection cache outlives the
 * request. */
#include "http/http.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define POLL_MS        1000 /* longest wait inside libcurl between checks */
#define POLL_CANCEL_MS 100  /* ... when a cancel callback has to be polled */

struct vigil__http {
    CURLM *multi;
    CURL *easy;
};

/* State of one transfer, seen by the callbacks. */
typedef struct xfer {
    const vigil__http_request *req;
    vigil__http_response *resp;
    size_t cap;
    int over; /* OVERFLOW_FAIL: the cap was passed */
    int stop; /* OVERFLOW_STOP: ended on purpose */
    int oom;
} xfer;

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static CURLcode g_init = CURLE_FAILED_INIT;

/* libcurl's global initialisation is process-wide by its own design. */
static void init_once(void)
{
    g_init = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int vigil__http_init(void)
{
    pthread_once(&g_once, init_once);
    if (g_init != CURLE_OK)
        return vigil__error_set(VIGIL_EIO, "http: libcurl could not be initialised: %s",
                                curl_easy_strerror(g_init));
    return VIGIL_OK;
}

int vigil__http_new(vigil__http **out)
{
    if (!out)
        return vigil__error_set(VIGIL_EINVAL, "http: NULL argument");
    *out = NULL;
    int rc = vigil__http_init();
    if (rc)
        return rc;
    vigil__http *h = vigil__calloc(1, sizeof(*h));
    if (!h)
        return vigil__error_oom();
    h->multi = curl_multi_init();
    h->easy = h->multi ? curl_easy_init() : NULL;
    if (!h->easy) {
        vigil__http_free(h);
        return vigil__error_set(VIGIL_ENOMEM, "http: libcurl handles could not be created");
    }
    *out = h;
    return VIGIL_OK;
}

void vigil__http_free(vigil__http *h)
{
    if (!h)
        return;
    if (h->easy)
        curl_easy_cleanup(h->easy);
    if (h->multi)
        curl_multi_cleanup(h->multi);
    vigil__free(h);
}

void vigil__http_response_dispose(vigil__http_response *resp)
{
    if (!resp)
        return;
    vigil_buf_dispose(&resp->body);
    vigil_buf_dispose(&resp->headers);
}

/* ---- callbacks ------------------------------------------------------------------ */

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    xfer *x = ud;
    vigil_buf *b = &x->resp->body;
    size_t len = size * n;
    size_t room = b->size < x->cap ? x->cap - b->size : 0;
    if (len > room) {
        switch (x->req->overflow) {
        case VIGIL__HTTP_OVERFLOW_CLIP:
            x->resp->clipped = 1;
            if (room && vigil__buf_put(b, data, room) != VIGIL_OK) {
                x->oom = 1;
                return 0;
            }
            return len; /* read on, keep nothing more */
        case VIGIL__HTTP_OVERFLOW_STOP:
            x->resp->clipped = 1;
            if (room && vigil__buf_put(b, data, room) != VIGIL_OK) {
                x->oom = 1;
                return 0;
            }
            x->stop = 1;
            return 0;
        default: x->over = 1; return 0;
        }
    }
    if (len && vigil__buf_put(b, data, len) != VIGIL_OK) {
        x->oom = 1;
        return 0;
    }
    return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
    xfer *x = ud;
    vigil_buf *h = &x->resp->headers;
    size_t len = size * n;
    if (len >= 5 && strncmp(data, "HTTP/", 5) == 0)
        vigil__buf_clear(h); /* a new response (after a redirect or a 100): its headers only */
    if (h->size + len <= VIGIL__HTTP_HEADERS_MAX && vigil__buf_put(h, data, len) != VIGIL_OK) {
        x->oom = 1;
        return 0;
    }
    return len;
}

/* ---- one request ---------------------------------------------------------------- */

static void wipe_list(struct curl_slist *l)
{
    for (struct curl_slist *p = l; p; p = p->next)
        if (p->data)
            explicit_bzero(p->data, strlen(p->data));
    curl_slist_free_all(l);
}

/* The leaf certificate's notAfter from CURLINFO_CERTINFO ("Expire date:",
 * OpenSSL's format "Jan 13 12:00:00 2030 GMT"); 0 when unknown. */
static int cert_expiry(CURL *c, int64_t *out)
{
    struct curl_certinfo *ci = NULL;
    if (curl_easy_getinfo(c, CURLINFO_CERTINFO, &ci) != CURLE_OK || !ci || ci->num_of_certs < 1)
        return 0;
    for (struct curl_slist *l = ci->certinfo[0]; l; l = l->next) {
        if (strncmp(l->data, "Expire date:", 12) != 0)
            continue;
        struct tm tm;
        memset(&tm, 0, sizeof(tm));
        if (!strptime(l->data + 12, "%b %d %H:%M:%S %Y", &tm))
            return 0;
        *out = (int64_t)timegm(&tm);
        return 1;
    }
    return 0;
}

static int64_t info_us(CURL *c, CURLINFO what)
{
    curl_off_t v = 0;
    return curl_easy_getinfo(c, what, &v) == CURLE_OK ? (int64_t)v : 0;
}

static CURLcode set_options(CURL *e, const vigil__http_request *req, struct curl_slist *hs, xfer *x,
                            char *errbuf)
{
    CURLcode cc = CURLE_OK;
#define SET(o, v)                           \
    do {                                    \
        if (cc == CURLE_OK)                 \
            cc = curl_easy_setopt(e, o, v); \
    } while (0)
    SET(CURLOPT_URL, req->url);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, req->follow_redirects ? 1L : 0L);
    if (req->follow_redirects)
        SET(CURLOPT_MAXREDIRS, req->max_redirects);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    if (req->connect_timeout_ms > 0)
        SET(CURLOPT_CONNECTTIMEOUT_MS, (long)req->connect_timeout_ms);
    if (req->timeout_ms > 0)
        SET(CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);
    if (req->body) {
        SET(CURLOPT_POST, 1L);
        SET(CURLOPT_POSTFIELDS, req->body);
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    }
    if (req->method && strcmp(req->method, req->body ? "POST" : "GET") != 0) {
        if (strcmp(req->method, "HEAD") == 0)
            SET(CURLOPT_NOBODY, 1L);
        else
            SET(CURLOPT_CUSTOMREQUEST, req->method);
    }
    if (hs)
        SET(CURLOPT_HTTPHEADER, hs);
    if (req->user_agent)
        SET(CURLOPT_USERAGENT, req->user_agent);
    SET(CURLOPT_SSL_VERIFYPEER, req->insecure ? 0L : 1L);
    SET(CURLOPT_SSL_VERIFYHOST, req->insecure ? 0L : 2L);
    if (req->ca_file)
        SET(CURLOPT_CAINFO, req->ca_file);
    if (req->ca_dir)
        SET(CURLOPT_CAPATH, req->ca_dir);
    if (req->cert_file)
        SET(CURLOPT_SSLCERT, req->cert_file);
    if (req->key_file)
        SET(CURLOPT_SSLKEY, req->key_file);
    if (req->fresh_connection) {
        SET(CURLOPT_FRESH_CONNECT, 1L);
        SET(CURLOPT_FORBID_REUSE, 1L);
    }
    if (req->no_proxy)
        SET(CURLOPT_PROXY, "");
    if (req->cert_expiry)
        SET(CURLOPT_CERTINFO, 1L);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, x);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, x);
    SET(CURLOPT_ERRORBUFFER, errbuf);
#undef SET
    return cc;
}

/* Drives the transfer on the multi handle. Returns 1 when cancelled. */
static int run(vigil__http *h, const vigil__http_request *req, CURLcode *result, int *multi_failed)
{
    int running = 1;
    int64_t cancel_at = 0; /* once the fd is readable: the end of the grace period */
    *result = CURLE_OK;
    *multi_failed = 0;
    while (running) {
        if (curl_multi_perform(h->multi, &running) != CURLM_OK) {
            *multi_failed = 1;
            break;
        }
        if (!running)
            break;
        if (req->cancel_cb && req->cancel_cb(req->cancel_payload))
            return 1;
        int timeout = req->cancel_cb ? POLL_CANCEL_MS : POLL_MS;
        if (cancel_at) {
            int64_t left = cancel_at - vigil__monotonic_ms();
            if (left <= 0)
                return 1;
            timeout = left < timeout ? (int)left : timeout;
        }
        int watch = req->cancel_fd >= 0 && !cancel_at;
        struct curl_waitfd w = {req->cancel_fd, CURL_WAIT_POLLIN, 0};
        if (curl_multi_poll(h->multi, watch ? &w : NULL, watch ? 1 : 0, timeout, NULL) !=
            CURLM_OK) {
            *multi_failed = 1;
            break;
        }
        if (watch && (w.revents & CURL_WAIT_POLLIN)) {
            if (req->cancel_grace_ms <= 0)
                return 1;
            cancel_at = vigil__monotonic_ms() + req->cancel_grace_ms;
        }
    }
    int msgs;
    CURLMsg *m;
    while ((m = curl_multi_info_read(h->multi, &msgs)) != NULL)
        if (m->msg == CURLMSG_DONE && m->easy_handle == h->easy)
            *result = m->data.result;
    return 0;
}

int vigil__http_perform(vigil__http *h, const vigil__http_request *req, vigil__http_response *resp)
{
    if (!h || !req || !resp || !req->url)
        return vigil__error_set(VIGIL_EINVAL, "http: NULL argument");
    if (req->nheaders && !req->headers)
        return vigil__error_set(VIGIL_EINVAL, "http: headers missing");
    resp->status = 0;
    vigil__buf_clear(&resp->body);
    vigil__buf_clear(&resp->headers);
    resp->clipped = 0;
    resp->has_cert_expiry = 0;
    resp->cert_expiry_s = 0;
    memset(&resp->timings, 0, sizeof(resp->timings));
    resp->reason = "";
    resp->error[0] = '\0';

    struct curl_slist *hs = NULL;
    for (size_t i = 0; i < req->nheaders; i++) {
        struct curl_slist *t = curl_slist_append(hs, req->headers[i]);
        if (!t) {
            wipe_list(hs);
            return vigil__error_oom();
        }
        hs = t;
    }
    xfer x = {req, resp, req->max_response ? req->max_response : VIGIL__HTTP_RESPONSE_DEFAULT,
              0,   0,    0};
    char errbuf[CURL_ERROR_SIZE];
    errbuf[0] = '\0';
    CURL *e = h->easy;
    curl_easy_reset(e); /* options only: connections, sessions and DNS answers stay */
    CURLcode cc = set_options(e, req, hs, &x, errbuf);
    if (cc != CURLE_OK) {
        curl_easy_reset(e);
        wipe_list(hs);
        return cc == CURLE_OUT_OF_MEMORY ? vigil__error_oom()
                                         : vigil__error_set(VIGIL_EIO,
                                                            "http: libcurl refused "
                                                            "an option: %s",
                                                            curl_easy_strerror(cc));
    }
    if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
        curl_easy_reset(e);
        wipe_list(hs);
        return vigil__error_set(VIGIL_EIO, "http: libcurl refused the transfer");
    }
    int multi_failed = 0;
    int cancelled = run(h, req, &cc, &multi_failed);
    curl_multi_remove_handle(h->multi, e);

    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &resp->status);
    resp->timings.dns_us = info_us(e, CURLINFO_NAMELOOKUP_TIME_T);
    resp->timings.connect_us = info_us(e, CURLINFO_CONNECT_TIME_T);
    resp->timings.tls_us = info_us(e, CURLINFO_APPCONNECT_TIME_T);
    resp->timings.first_byte_us = info_us(e, CURLINFO_STARTTRANSFER_TIME_T);
    resp->timings.total_us = info_us(e, CURLINFO_TOTAL_TIME_T);
    if (req->cert_expiry)
        resp->has_cert_expiry = cert_expiry(e, &resp->cert_expiry_s);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
    wipe_list(hs);

    int rc = VIGIL_OK;
    if (cancelled) {
        resp->reason = "cancelled";
        snprintf(resp->error, sizeof(resp->error), "%s", "the transfer was cancelled");
        rc = vigil__error_set(VIGIL_ECLOSED, "http: the transfer was cancelled");
    } else if (x.oom || cc == CURLE_OUT_OF_MEMORY) {
        rc = vigil__error_oom();
    } else if (multi_failed) {
        rc = vigil__error_set(VIGIL_EIO, "http: libcurl failed to drive the transfer");
    } else if (cc == CURLE_WRITE_ERROR && x.stop) {
        rc = VIGIL_OK; /* OVERFLOW_STOP: ended on purpose */
    } else if (cc == CURLE_WRITE_ERROR && x.over) {
        vigil__buf_clear(&resp->body);
        resp->reason = "response too large";
        snprintf(resp->error, sizeof(resp->error), "the response body exceeds %zu bytes", x.cap);
        rc = vigil__error_set(VIGIL_ELIMIT, "http: the response body exceeds %zu bytes", x.cap);
    } else if (cc != CURLE_OK) {
        resp->reason = curl_easy_strerror(cc);
        snprintf(resp->error, sizeof(resp->error), "%s", errbuf[0] ? errbuf : resp->reason);
        rc = vigil__error_set(cc == CURLE_OPERATION_TIMEDOUT ? VIGIL_ETIMEOUT : VIGIL_ENETWORK,
                              "http: %s", resp->error);
    }
    return rc;
}

const char *vigil__http_response_header(const vigil__http_response *resp, const char *name,
                                        char *out, size_t size)
{
    if (!resp || !name || !out || !size || !resp->headers.ptr)
        return NULL;
    size_t nl = strlen(name);
    const char *p = resp->headers.ptr, *end = p + resp->headers.size;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol ? eol : end;
        if ((size_t)(line_end - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1, *ve = line_end;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            size_t len = (size_t)(ve - v);
            if (len >= size)
                return NULL;
            memcpy(out, v, len);
            out[len] = '\0';
            return out;
        }
        p = eol ? eol + 1 : end;
    }
    return NULL;
}

/* ---- URLs and dates ---------------------------------------------------------- */

void vigil__http_url_dispose(vigil__http_url *u)
{
    if (!u)
        return;
    vigil__free(u->scheme);
    vigil__free(u->host);
    vigil__free(u->port);
    vigil__free(u->user);
    vigil__free(u->query);
    memset(u, 0, sizeof(*u));
}

/* Copies one part into *dst (NULL when the URL has none). */
static int url_part(CURLU *u, CURLUPart part, char **dst)
{
    char *v = NULL;
    CURLUcode uc = curl_url_get(u, part, &v, 0);
    if (uc == CURLUE_OUT_OF_MEMORY)
        return vigil__error_oom();
    if (uc != CURLUE_OK || !v)
        return VIGIL_OK;
    *dst = vigil__strdup(v);
    curl_free(v);
    return *dst ? VIGIL_OK : vigil__error_oom();
}

int vigil__http_url_parse(vigil__http_url *out, const char *url, char *why, size_t why_size)
{
    if (why && why_size)
        why[0] = '\0';
    if (!out || !url)
        return vigil__error_set(VIGIL_EINVAL, "http: NULL argument");
    memset(out, 0, sizeof(*out));
    int rc = vigil__http_init();
    if (rc)
        return rc;
    CURLU *u = curl_url();
    if (!u)
        return vigil__error_oom();
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (uc == CURLUE_OUT_OF_MEMORY) {
        rc = vigil__error_oom();
    } else if (uc != CURLUE_OK) {
        if (why && why_size)
            snprintf(why, why_size, "%s", curl_url_strerror(uc));
        rc = vigil__error_set(VIGIL_EVALUE, "http: not a valid URL: %s", curl_url_strerror(uc));
    } else if ((rc = url_part(u, CURLUPART_SCHEME, &out->scheme)) ||
               (rc = url_part(u, CURLUPART_HOST, &out->host)) ||
               (rc = url_part(u, CURLUPART_PORT, &out->port)) ||
               (rc = url_part(u, CURLUPART_USER, &out->user)) ||
               (rc = url_part(u, CURLUPART_QUERY, &out->query))) {
        /* rc set */
    }
    curl_url_cleanup(u);
    return rc;
}

int vigil__http_date_parse(const char *text, int64_t *unix_s)
{
    if (!text || !unix_s)
        return vigil__error_set(VIGIL_EINVAL, "http: NULL argument");
    time_t t = curl_getdate(text, NULL);
    if (t == (time_t)-1)
        return vigil__error_set(VIGIL_EVALUE, "http: not an HTTP date");
    *unix_s = (int64_t)t;
    return VIGIL_OK;
}

int vigil__http_tls_check(const char *what, const char *ca_file, const char *cert_file,
                          const char *key_file)
{
    if (!cert_file != !key_file)
        return vigil__error_set(VIGIL_EINVAL, "%s: a client certificate and its key go together",
                                what);
    const char *files[3] = {ca_file, cert_file, key_file};
    const char *names[3] = {"ca_file", "cert", "key"};
    for (int i = 0; i < 3; i++) {
        if (!files[i])
            continue;
        if (!*files[i])
            return vigil__error_set(VIGIL_EINVAL, "%s: %s is empty", what, names[i]);
        FILE *f = fopen(files[i], "rb");
        if (!f)
            return vigil__error_set(VIGIL_EIO, "%s: %s %.200s: cannot read it: %s", what, names[i],
                                    files[i], strerror(errno));
        fclose(f);
    }
    return VIGIL_OK;
}
