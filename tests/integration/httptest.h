/* HTTP helpers for the integration suites: libcurl requests and raw sockets
 * on loopback (test_httpd, test_hub_http, test_loop...), and ht_server, the
 * one scripted HTTP/1.1 server the HTTP clients are tested against
 * (test_client_http, test_action_http). Header-only. */
#ifndef VIGIL_TEST_HTTPTEST_H
#define VIGIL_TEST_HTTPTEST_H

#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

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

/* ---- ht_server: a scripted HTTP/1.1 server on 127.0.0.1 ----------------------------
 * One thread serves one connection at a time (keep-alive honoured). Every
 * request is recorded, then answered by the next scripted action, or by the
 * default one (202 with {"accepted":1,"duplicate":false}) once the script is
 * used up. */

enum { HT_REPLY, HT_HANG, HT_DROP };

typedef struct ht_action {
    int kind; /* HT_REPLY; HT_HANG: read on, never answer, until the client
                 closes or the server stops; HT_DROP: close without answering */
    int status;
    const char *body;    /* NULL: the default body */
    const char *headers; /* extra header lines, each ending in \r\n */
} ht_action;

#define HT_MAX_REQ 64

typedef struct ht_request {
    char method[16];
    char path[256];
    char batch_id[200];  /* the body's "batch_id" string, when it has one */
    char auth[300];      /* Authorization */
    char signature[300]; /* X-Vigil-Signature */
    char ctype[128];     /* Content-Type */
    char encoding[64];   /* Content-Encoding */
    char body[8192];     /* inflated when gzip */
    size_t body_len;
    int conn; /* connection number it came on (1, 2, ...) */
} ht_request;

typedef struct ht_server {
    int lfd, port;
    int stop_pipe[2];
    pthread_t th;
    pthread_mutex_t mu; /* guards what follows; lock it to read req[] */
    ht_action script[16];
    int nscript, next;
    ht_action dflt;
    ht_request req[HT_MAX_REQ];
    int nreq, nconn;
} ht_server;

static inline int ht_inflate(const char *in, size_t len, char *out, size_t cap, size_t *out_len)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, 15 + 16) != Z_OK)
        return -1;
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)len;
    zs.next_out = (Bytef *)out;
    zs.avail_out = (uInt)cap - 1;
    int rc = inflate(&zs, Z_FINISH);
    *out_len = zs.total_out;
    out[*out_len] = '\0';
    inflateEnd(&zs);
    return rc == Z_STREAM_END ? 0 : -1;
}

/* A header's value in a request head ("Name: value" lines after the request
 * line), copied into out; NULL when absent. */
static inline const char *ht_head_value(const char *head, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    out[0] = '\0';
    for (const char *p = strstr(head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ')
                v++;
            const char *e = strstr(v, "\r\n");
            size_t len = e ? (size_t)(e - v) : strlen(v);
            if (len >= n)
                len = n - 1;
            memcpy(out, v, len);
            out[len] = '\0';
            return out;
        }
    }
    return NULL;
}

static inline void ht_record(ht_server *h, const char *head, const char *body, size_t blen)
{
    pthread_mutex_lock(&h->mu);
    if (h->nreq < HT_MAX_REQ) {
        ht_request *r = &h->req[h->nreq];
        memset(r, 0, sizeof(*r));
        r->conn = h->nconn;
        sscanf(head, "%15s %255s", r->method, r->path);
        ht_head_value(head, "Authorization", r->auth, sizeof(r->auth));
        ht_head_value(head, "X-Vigil-Signature", r->signature, sizeof(r->signature));
        ht_head_value(head, "Content-Type", r->ctype, sizeof(r->ctype));
        ht_head_value(head, "Content-Encoding", r->encoding, sizeof(r->encoding));
        if (strcmp(r->encoding, "gzip") == 0) {
            if (ht_inflate(body, blen, r->body, sizeof(r->body), &r->body_len) != 0)
                snprintf(r->body, sizeof(r->body), "%s", "<bad gzip>");
        } else {
            r->body_len = blen < sizeof(r->body) - 1 ? blen : sizeof(r->body) - 1;
            memcpy(r->body, body, r->body_len);
            r->body[r->body_len] = '\0';
        }
        const char *id = strstr(r->body, "\"batch_id\":\"");
        if (id) {
            id += 12;
            const char *e = strchr(id, '"');
            size_t len = e ? (size_t)(e - id) : 0;
            if (len >= sizeof(r->batch_id))
                len = sizeof(r->batch_id) - 1;
            memcpy(r->batch_id, id, len);
        }
    }
    h->nreq++;
    pthread_mutex_unlock(&h->mu);
}

static inline ht_action ht_next_action(ht_server *h)
{
    pthread_mutex_lock(&h->mu);
    ht_action a = h->next < h->nscript ? h->script[h->next++] : h->dflt;
    pthread_mutex_unlock(&h->mu);
    return a;
}

/* Waits until fd is readable or the server stops. Returns 1 when readable. */
static inline int ht_wait_readable(ht_server *h, int fd)
{
    struct pollfd p[2] = {{fd, POLLIN, 0}, {h->stop_pipe[0], POLLIN, 0}};
    for (;;) {
        int n = poll(p, 2, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || (p[1].revents & POLLIN))
            return 0;
        return 1;
    }
}

static inline void ht_serve_conn(ht_server *h, int fd, char *buf, size_t size)
{
    size_t have = 0;
    for (;;) {
        char *end;
        while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
            if (!ht_wait_readable(h, fd) || have == size)
                return;
            ssize_t n = read(fd, buf + have, size - have);
            if (n <= 0)
                return;
            have += (size_t)n;
        }
        size_t hlen = (size_t)(end - buf) + 4;
        char head[8192];
        size_t cl = hlen < sizeof(head) ? hlen : sizeof(head) - 1;
        memcpy(head, buf, cl);
        head[cl] = '\0';
        char v[64];
        size_t blen =
            ht_head_value(head, "Content-Length", v, sizeof(v)) ? strtoul(v, NULL, 10) : 0;
        if (hlen + blen > size)
            return;
        while (have < hlen + blen) {
            if (!ht_wait_readable(h, fd))
                return;
            ssize_t n = read(fd, buf + have, size - have);
            if (n <= 0)
                return;
            have += (size_t)n;
        }
        ht_record(h, head, buf + hlen, blen);
        memmove(buf, buf + hlen + blen, have - hlen - blen);
        have -= hlen + blen;

        ht_action a = ht_next_action(h);
        if (a.kind == HT_DROP)
            return;
        if (a.kind == HT_HANG) { /* until the client gives up and closes */
            char junk[256];
            while (ht_wait_readable(h, fd) && read(fd, junk, sizeof(junk)) > 0)
                ;
            return;
        }
        const char *body = a.body ? a.body : "{\"accepted\":1,\"duplicate\":false}";
        char resp[4096];
        int n = snprintf(resp, sizeof(resp),
                         "HTTP/1.1 %d Status\r\nContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\n%s\r\n%s",
                         a.status, strlen(body), a.headers ? a.headers : "", body);
        if (write(fd, resp, (size_t)n) != n)
            return;
    }
}

static inline void *ht_server_main(void *p)
{
    ht_server *h = p;
    size_t size = (size_t)1 << 20;
    char *buf = malloc(size);
    for (;;) {
        if (!buf || !ht_wait_readable(h, h->lfd))
            break;
        int fd = accept(h->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_mutex_lock(&h->mu);
        h->nconn++;
        pthread_mutex_unlock(&h->mu);
        ht_serve_conn(h, fd, buf, size);
        close(fd);
    }
    free(buf);
    return NULL;
}

/* Starts a server on an ephemeral port of 127.0.0.1 (h->port). */
static inline ht_server *ht_server_start(void)
{
    ht_server *h = calloc(1, sizeof(*h));
    ck_assert_ptr_nonnull(h);
    pthread_mutex_init(&h->mu, NULL);
    h->dflt.kind = HT_REPLY;
    h->dflt.status = 202;
    ck_assert_int_eq(pipe(h->stop_pipe), 0);
    h->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(h->lfd, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(h->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(h->lfd, 16), 0);
    socklen_t sl = sizeof(sa);
    ck_assert_int_eq(getsockname(h->lfd, (struct sockaddr *)&sa, &sl), 0);
    h->port = ntohs(sa.sin_port);
    ck_assert_int_eq(pthread_create(&h->th, NULL, ht_server_main, h), 0);
    return h;
}

/* The next n requests get acts[0..n), in order. */
static inline void ht_server_script(ht_server *h, const ht_action *acts, int n)
{
    pthread_mutex_lock(&h->mu);
    memcpy(h->script, acts, (size_t)n * sizeof(ht_action));
    h->nscript = n;
    h->next = 0;
    pthread_mutex_unlock(&h->mu);
}

/* The answer once the script is used up. */
static inline void ht_server_default(ht_server *h, int kind, int status, const char *body)
{
    pthread_mutex_lock(&h->mu);
    h->dflt.kind = kind;
    h->dflt.status = status;
    h->dflt.body = body;
    pthread_mutex_unlock(&h->mu);
}

/* Requests recorded so far. */
static inline int ht_server_requests(ht_server *h)
{
    pthread_mutex_lock(&h->mu);
    int n = h->nreq;
    pthread_mutex_unlock(&h->mu);
    return n;
}

/* Waits up to timeout_ms for at least n recorded requests; returns the count. */
static inline int ht_server_wait_requests(ht_server *h, int n, int timeout_ms)
{
    for (int waited = 0; ht_server_requests(h) < n && waited < timeout_ms; waited += 2)
        usleep(2000);
    return ht_server_requests(h);
}

static inline void ht_server_stop(ht_server *h)
{
    ck_assert_int_eq(write(h->stop_pipe[1], "x", 1), 1);
    pthread_join(h->th, NULL);
    close(h->lfd);
    close(h->stop_pipe[0]);
    close(h->stop_pipe[1]);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

/* A port nothing listens on. */
static inline int ht_closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t sl = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    close(fd);
    return ntohs(sa.sin_port);
}

#endif
