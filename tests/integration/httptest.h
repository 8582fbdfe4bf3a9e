/* HTTP client helpers for the server and daemon suites (test_httpd,
 * test_hub_http): libcurl requests and raw sockets on loopback. Header-only;
 * included by the suites under tests/unit. */
#ifndef VIGIL_TEST_HTTPTEST_H
#define VIGIL_TEST_HTTPTEST_H

#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct http_result {
    long status;
    char *body;
    size_t len;
    char headers[8192];
    size_t hlen;
    CURLcode curl;
} http_result;

typedef struct http_opts {
    const char *token;        /* Authorization: Bearer ... */
    const char *ctype;        /* Content-Type (default application/json for bodies) */
    const char *encoding;     /* Content-Encoding */
    const char *const *extra; /* more "Name: value" headers, NULL-terminated */
    const char *ca_pem;       /* TLS: trust this CA (PEM text) */
    const char *cert_file;    /* TLS client certificate file */
    const char *key_file;
    const char *interface; /* source address */
    CURL *handle;          /* reuse (keep-alive); NULL: a fresh handle */
} http_opts;

static inline size_t ht_body_cb(char *p, size_t size, size_t n, void *ud)
{
    http_result *r = ud;
    size_t len = size * n;
    char *nb = realloc(r->body, r->len + len + 1);
    if (!nb)
        return 0;
    memcpy(nb + r->len, p, len);
    r->body = nb;
    r->len += len;
    r->body[r->len] = '\0';
    return len;
}

static inline size_t ht_header_cb(char *p, size_t size, size_t n, void *ud)
{
    http_result *r = ud;
    size_t len = size * n;
    if (r->hlen + len < sizeof(r->headers)) {
        memcpy(r->headers + r->hlen, p, len);
        r->hlen += len;
        r->headers[r->hlen] = '\0';
    }
    return len;
}

static inline void http_result_free(http_result *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}

/* Value of a response header (case-insensitive name) copied into out, or "". */
static inline const char *http_header(const http_result *r, const char *name, char *out,
                                      size_t size)
{
    out[0] = '\0';
    size_t nl = strlen(name);
    const char *p = r->headers;
    while (p && *p) {
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t k = strcspn(v, "\r\n");
            if (k >= size)
                k = size - 1;
            memcpy(out, v, k);
            out[k] = '\0';
            return out;
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return out;
}

static inline CURLcode http_do(const char *method, const char *url, const char *body, size_t len,
                               const http_opts *o, http_result *r)
{
    static const http_opts none;
    if (!o)
        o = &none;
    memset(r, 0, sizeof(*r));
    CURL *c = o->handle ? o->handle : curl_easy_init();
    ck_assert_ptr_nonnull(c);
    if (o->handle)
        curl_easy_reset(c);
    struct curl_slist *hs = NULL;
    char auth[700];
    if (o->token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", o->token);
        hs = curl_slist_append(hs, auth);
    }
    char ct[200], ce[200];
    if (body || o->ctype) {
        snprintf(ct, sizeof(ct), "Content-Type: %s", o->ctype ? o->ctype : "application/json");
        hs = curl_slist_append(hs, ct);
    }
    if (o->encoding) {
        snprintf(ce, sizeof(ce), "Content-Encoding: %s", o->encoding);
        hs = curl_slist_append(hs, ce);
    }
    hs = curl_slist_append(hs, "Expect:");
    for (size_t i = 0; o->extra && o->extra[i]; i++)
        hs = curl_slist_append(hs, o->extra[i]);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, ht_body_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, ht_header_cb);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    } else if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    }
    if (o->ca_pem) {
        struct curl_blob blob = {(void *)(uintptr_t)o->ca_pem, strlen(o->ca_pem), CURL_BLOB_COPY};
        curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &blob);
    }
    if (o->cert_file) {
        curl_easy_setopt(c, CURLOPT_SSLCERT, o->cert_file);
        curl_easy_setopt(c, CURLOPT_SSLKEY, o->key_file);
    }
    if (o->interface)
        curl_easy_setopt(c, CURLOPT_INTERFACE, o->interface);
    r->curl = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    if (!r->body) {
        r->body = calloc(1, 1);
        ck_assert_ptr_nonnull(r->body);
    }
    curl_slist_free_all(hs);
    if (!o->handle)
        curl_easy_cleanup(c);
    return r->curl;
}

/* Connects to 127.0.0.1:port, optionally from `src` (e.g. "127.0.0.2"). */
static inline int raw_connect(const char *src, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    if (src) {
        struct sockaddr_in s;
        memset(&s, 0, sizeof(s));
        s.sin_family = AF_INET;
        inet_pton(AF_INET, src, &s.sin_addr);
        ck_assert_int_eq(bind(fd, (struct sockaddr *)&s, sizeof(s)), 0);
    }
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static inline void raw_send(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* the server may close early; callers check the answer */
        p += n;
        len -= (size_t)n;
    }
}

/* Reads until the peer closes, `size`-1 bytes arrived, or `timeout_ms`
 * passes without data. Returns the bytes read; *closed tells whether the
 * peer closed (EOF or reset). */
static inline size_t raw_recv(int fd, char *buf, size_t size, int timeout_ms, int *closed)
{
    size_t got = 0;
    *closed = 0;
    while (got < size - 1) {
        struct pollfd p = {fd, POLLIN, 0};
        int pr = poll(&p, 1, timeout_ms);
        if (pr <= 0)
            break;
        ssize_t n = recv(fd, buf + got, size - 1 - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            *closed = 1;
            break;
        }
        got += (size_t)n;
    }
    buf[got] = '\0';
    return got;
}

#endif
