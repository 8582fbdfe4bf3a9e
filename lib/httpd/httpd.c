/* The built-in HTTP server: libmicrohttpd hosting a vigil_api.
 *
 * Each request gets a context on the first call of the access handler. The
 * body is collected (up to max_body), the request is submitted to the api,
 * and when the api answers later (an ingest waiting for its commit) the
 * connection is suspended and resumed from the api's done callback. Event
 * streams are read through the response's stream: when nothing is ready the
 * connection is suspended and the stream's wake callback resumes it.
 *
 * libmicrohttpd forbids stopping a daemon with suspended connections, so the
 * server counts them and vigil_httpd_stop() ends the streams and waits for
 * every submitted request to be answered before stopping the daemon.
 *
 * The daemon polls with poll(2), not epoll. In epoll mode with a thread pool,
 * MHD_quiesce_daemon() removes the listening socket from each worker's epoll
 * set while the workers, which see the quiesce flag at once, remove it too:
 * whichever comes second fails (ENOENT), and libmicrohttpd 0.9.75 aborts the
 * process ("Failed to remove listen FD from epoll set", daemon.c:5531).
 * Closing the returned socket at once made it worse (EBADF in a worker). In
 * poll mode quiescing only sets the flag and wakes each worker through its
 * inter-thread channel; each rebuilds its poll set without the socket. The
 * socket stays open until MHD_stop_daemon() has joined the workers, as the
 * libmicrohttpd manual requires; shutdown(2) makes the kernel refuse new
 * connections meanwhile. */
#include "api/internal.h"
#include "core/cond.h"
#include "crypto/crypto.h"
#include "vigil/httpd.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TLS_FILE_MAX (1024 * 1024)
#define STREAM_BLOCK (16 * 1024)
#define HEADERS_MAX  100
#define LOG_PATH_MAX 256
/* How long vigil_httpd_stop() lets ended event streams flush their last chunk. */
#define STREAM_FLUSH_MS 1000

typedef struct req_ctx req_ctx;

struct vigil_httpd {
    vigil_api *api;
    char *listen;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int ipv6;
    unsigned int threads;
    unsigned int max_connections;
    unsigned int per_ip;
    unsigned int timeout_s;
    size_t connection_memory;
    uint64_t max_body;
    uint64_t max_buffered;
    uint64_t buffered;      /* body bytes reserved by requests now (atomic) */
    uint64_t buffered_peak; /* highest value of buffered (atomic) */
    char *cert_pem;
    char *key_pem;
    char *ca_pem;
    int insecure;
    vigil_logger logger;

    struct MHD_Daemon *daemon;
    int started, stopped, quiesced;
    int listen_fd; /* from MHD_quiesce_daemon(), closed after MHD_stop_daemon(); -1: none */
    int port;
    char address[80];
    uint32_t id_prefix;
    uint32_t id_seq;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t inflight;  /* requests whose answer is not sent yet (streams excluded) */
    size_t pending;   /* submitted to the api, done not yet called */
    size_t suspended; /* connections suspended by us */
    req_ctx *streams; /* streaming responses, doubly linked */
    char last_error[256];
};

struct req_ctx {
    vigil_httpd *h;
    struct MHD_Connection *conn;
    pthread_mutex_t mu;
    int64_t start_ns;
    vigil_buf body;
    vigil_http_header *headers;
    size_t nheaders;
    char *query;
    char *path;
    char method[16];
    char remote[INET6_ADDRSTRLEN + 8];
    char request_id[20];
    vigil_api_request req;
    vigil_api_response *resp;
    int submitted;
    int done;
    int is_suspended;
    int wake_pending;
    int stream_end;
    int is_stream;
    int counted;       /* still counted in h->inflight */
    int has_length;    /* the request declared a Content-Length */
    uint64_t reserved; /* bytes of h->buffered this request holds */
    int status;
    uint64_t bytes_out;
    req_ctx *prev, *next;
};

int vigil_httpd_options_init(vigil_httpd_options *opts, unsigned int version)
{
    if (!opts)
        return vigil__error_set(VIGIL_EINVAL, "httpd options: NULL");
    if (vigil__version_check("httpd options", version, VIGIL_HTTPD_OPTIONS_VERSION))
        return VIGIL_EVERSION;
    vigil_httpd_options d = VIGIL_HTTPD_OPTIONS_INIT;
    *opts = d;
    return VIGIL_OK;
}

/* ---- listen address ------------------------------------------------------- */

static int parse_listen(vigil_httpd *h, const char *listen)
{
    const char *colon;
    char host[INET6_ADDRSTRLEN + 2];
    size_t hl;
    if (listen[0] == '[') {
        const char *end = strchr(listen, ']');
        if (!end || end[1] != ':')
            goto bad;
        hl = (size_t)(end - listen - 1);
        if (hl == 0 || hl >= sizeof(host))
            goto bad;
        memcpy(host, listen + 1, hl);
        host[hl] = '\0';
        colon = end + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon)
            goto bad;
        hl = (size_t)(colon - listen);
        if (hl == 0 || hl >= sizeof(host))
            goto bad;
        memcpy(host, listen, hl);
        host[hl] = '\0';
    }
    const char *ps = colon + 1;
    if (!*ps || strlen(ps) > 5)
        goto bad;
    long port = 0;
    for (const char *p = ps; *p; p++) {
        if (*p < '0' || *p > '9')
            goto bad;
        port = port * 10 + (*p - '0');
    }
    if (port > 65535)
        goto bad;
    if (strcmp(host, "localhost") == 0)
        memcpy(host, "127.0.0.1", 10);
    memset(&h->addr, 0, sizeof(h->addr));
    struct sockaddr_in *a4 = (struct sockaddr_in *)&h->addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&h->addr;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        h->addrlen = sizeof(*a4);
        h->ipv6 = 0;
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        h->addrlen = sizeof(*a6);
        h->ipv6 = 1;
    } else {
        goto bad;
    }
    return VIGIL_OK;
bad:
    return vigil__error_set(VIGIL_EINVAL,
                            "listen: expected HOST:PORT with an IPv4 address, [IPv6] or "
                            "localhost and a port 0-65535, got \"%.100s\"",
                            listen);
}

static int is_loopback(const vigil_httpd *h)
{
    if (!h->ipv6) {
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)&h->addr;
        return (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
    }
    const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&h->addr;
    if (IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr))
        return 1;
    return IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr) && a6->sin6_addr.s6_addr[12] == 127;
}

static int read_pem(char **out, const char *path, const char *what)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return vigil__error_set(VIGIL_EIO, "httpd: cannot read TLS %s %s: %s", what, path,
                                strerror(errno));
    char *buf = vigil__malloc(TLS_FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        return vigil__error_oom();
    }
    size_t n = fread(buf, 1, TLS_FILE_MAX + 1, f);
    int err = ferror(f);
    fclose(f);
    if (err || n == 0 || n > TLS_FILE_MAX) {
        vigil__free(buf);
        return vigil__error_set(err ? VIGIL_EIO : VIGIL_ELIMIT, "httpd: TLS %s %s is %s", what,
                                path, err ? "unreadable" : (n ? "larger than 1 MiB" : "empty"));
    }
    buf[n] = '\0';
    *out = buf;
    return VIGIL_OK;
}

/* ---- lifecycle ---------------------------------------------------------- */

void vigil_httpd_free(vigil_httpd *h)
{
    if (!h)
        return;
    vigil_httpd_stop(h);
    vigil__free(h->listen);
    vigil__free(h->cert_pem);
    vigil__free_wiped(h->key_pem);
    vigil__free(h->ca_pem);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    vigil__free(h);
}

int vigil_httpd_new(vigil_httpd **out, vigil_api *api, const vigil_httpd_options *opts)
{
    vigil_httpd_options d = VIGIL_HTTPD_OPTIONS_INIT;
    if (!out || !api)
        return vigil__error_set(VIGIL_EINVAL, "httpd: NULL argument");
    *out = NULL;
    if (!opts)
        opts = &d;
    if (vigil__version_check("httpd options", opts->version, VIGIL_HTTPD_OPTIONS_VERSION))
        return VIGIL_EVERSION;
    if (opts->timeout_ms < 0)
        return vigil__error_set(VIGIL_EINVAL, "httpd: timeout must not be negative");
    if ((opts->tls_key && !opts->tls_cert) || (opts->tls_cert && !opts->tls_key))
        return vigil__error_set(VIGIL_EINVAL, "httpd: tls cert and key go together");
    if (opts->tls_client_ca && !opts->tls_cert)
        return vigil__error_set(VIGIL_EINVAL, "httpd: tls client_ca needs cert and key");
    if (opts->tls_cert && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        return vigil__error_set(VIGIL_EUNSUPPORTED,
                                "httpd: this libmicrohttpd was built without TLS");
    vigil_httpd *h = vigil__calloc(1, sizeof(*h));
    if (!h)
        return vigil__error_oom();
    pthread_mutex_init(&h->mu, NULL);
    h->listen_fd = -1;
    vigil__cond_init_monotonic(&h->cv);
    h->api = api;
    h->logger = opts->logger;
    h->insecure = opts->insecure;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    h->threads = opts->threads ? opts->threads : (unsigned int)(ncpu > 0 ? ncpu : 1);
    h->max_connections = opts->max_connections ? opts->max_connections : 1024;
    h->per_ip = opts->per_ip ? opts->per_ip : 64;
    h->timeout_s = opts->timeout_ms ? (unsigned int)((opts->timeout_ms + 999) / 1000) : 30;
    h->connection_memory = opts->connection_memory ? opts->connection_memory : 128 * 1024;
    h->max_body = opts->max_body ? opts->max_body : 8u * 1024 * 1024;
    h->max_buffered =
        opts->version >= 2 && opts->max_buffered ? opts->max_buffered : 256u * 1024 * 1024;
    int rc = VIGIL_OK;
    if (h->max_buffered < h->max_body)
        rc = vigil__error_set(VIGIL_EINVAL,
                              "httpd: max_buffered (%llu bytes) is smaller than max_body (%llu "
                              "bytes): no body could ever be read",
                              (unsigned long long)h->max_buffered, (unsigned long long)h->max_body);
    h->listen = vigil__strdup(opts->listen ? opts->listen : "127.0.0.1:7600");
    if (!rc && !h->listen)
        rc = vigil__error_oom();
    if (!rc)
        rc = parse_listen(h, h->listen);
    if (!rc && !is_loopback(h) && !vigil_api_has_auth(api) && !h->insecure)
        rc = vigil__error_set(VIGIL_EPERM,
                              "httpd: refusing to listen on %s without authentication: "
                              "configure security.tokens, or set security.insecure: true",
                              h->listen);
    if (!rc && opts->tls_cert)
        rc = read_pem(&h->cert_pem, opts->tls_cert, "certificate");
    if (!rc && opts->tls_key)
        rc = read_pem(&h->key_pem, opts->tls_key, "key");
    if (!rc && opts->tls_client_ca)
        rc = read_pem(&h->ca_pem, opts->tls_client_ca, "client CA");
    if (rc) {
        vigil_httpd_free(h);
        return rc;
    }
    h->id_prefix = (uint32_t)vigil__crypto_seed();
    *out = h;
    return VIGIL_OK;
}

/* ---- request contexts ------------------------------------------------------ */

/* Takes n bytes of the global body budget: 0, or -1 when they do not fit. */
static int reserve(req_ctx *c, uint64_t n)
{
    vigil_httpd *h = c->h;
    uint64_t cur = __atomic_load_n(&h->buffered, __ATOMIC_RELAXED);
    do {
        if (n > h->max_buffered - cur)
            return -1;
    } while (!__atomic_compare_exchange_n(&h->buffered, &cur, cur + n, 1, __ATOMIC_SEQ_CST,
                                          __ATOMIC_RELAXED));
    c->reserved += n;
    uint64_t now = cur + n, peak = __atomic_load_n(&h->buffered_peak, __ATOMIC_RELAXED);
    while (now > peak && !__atomic_compare_exchange_n(&h->buffered_peak, &peak, now, 1,
                                                      __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
        ;
    return 0;
}

uint64_t vigil_httpd_buffered_peak(const vigil_httpd *h)
{
    return h ? __atomic_load_n(&h->buffered_peak, __ATOMIC_SEQ_CST) : 0;
}

static void ctx_free(req_ctx *c)
{
    if (c->reserved)
        __atomic_sub_fetch(&c->h->buffered, c->reserved, __ATOMIC_SEQ_CST);
    vigil_api_response_free(c->resp);
    vigil_buf_dispose(&c->body);
    vigil__free(c->headers);
    vigil__free(c->query);
    vigil__free(c->path);
    pthread_mutex_destroy(&c->mu);
    vigil__free(c);
}

/* Counts a submitted request answered, under h->mu and with a broadcast, so
 * that vigil_httpd_stop() waiting for settled() wakes at once and cannot
 * free the server before this returns. Called without any request's mutex
 * held: the order is h->mu, then c->mu. */
static void unpend(vigil_httpd *h)
{
    pthread_mutex_lock(&h->mu);
    __atomic_sub_fetch(&h->pending, 1, __ATOMIC_SEQ_CST);
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

static void uncount(req_ctx *c)
{
    if (!c->counted)
        return;
    c->counted = 0;
    vigil_httpd *h = c->h;
    pthread_mutex_lock(&h->mu);
    h->inflight--;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

static void remote_of(struct MHD_Connection *conn, char *out, size_t size)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    out[0] = '\0';
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)size);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)size);
}

/* ---- responses ----------------------------------------------------------- */

static enum MHD_Result queue_plain(req_ctx *c, int status, const char *code, const char *message)
{
    vigil_api_response *r = NULL;
    if (vigil_api_response_new(&r))
        return MHD_NO;
    vigil__api_resp_error(r, status, code, message, NULL);
    const char *body;
    size_t len;
    body = vigil_api_response_body(r, &len);
    struct MHD_Response *mr =
        MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
    vigil_api_response_free(r);
    if (!mr)
        return MHD_NO;
    MHD_add_response_header(mr, "Content-Type", "application/json");
    MHD_add_response_header(mr, "X-Request-Id", c->request_id);
    MHD_add_response_header(mr, "Connection", "close");
    enum MHD_Result ret = MHD_queue_response(c->conn, (unsigned int)status, mr);
    MHD_destroy_response(mr);
    c->status = status;
    c->bytes_out = len;
    return ret; /* counted until on_completed(): the answer is sent then */
}

/* 503 overloaded: the bodies held across connections are at max_buffered. */
static enum MHD_Result queue_busy(req_ctx *c)
{
    vigil_httpd *h = c->h;
    char msg[160];
    snprintf(msg, sizeof(msg),
             "the server holds its limit of %llu bytes of request bodies; retry later",
             (unsigned long long)h->max_buffered);
    vigil_api_response *r = NULL;
    if (vigil_api_response_new(&r))
        return MHD_NO;
    vigil__api_resp_error(r, 503, "overloaded", msg, NULL);
    size_t len;
    const char *body = vigil_api_response_body(r, &len);
    struct MHD_Response *mr =
        MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
    vigil_api_response_free(r);
    if (!mr)
        return MHD_NO;
    MHD_add_response_header(mr, "Content-Type", "application/json");
    MHD_add_response_header(mr, "Retry-After", "1");
    MHD_add_response_header(mr, "X-Request-Id", c->request_id);
    MHD_add_response_header(mr, "Connection", "close");
    enum MHD_Result ret = MHD_queue_response(c->conn, 503, mr);
    MHD_destroy_response(mr);
    c->status = 503;
    c->bytes_out = len;
    return ret;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    req_ctx *c = cls;
    vigil_httpd *h = c->h;
    pthread_mutex_lock(&c->mu);
    int end = c->stream_end;
    c->wake_pending = 0;
    pthread_mutex_unlock(&c->mu);
    if (end)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = 0;
    int rc = vigil_api_response_read(c->resp, buf, max, &n);
    if (rc == VIGIL_ECLOSED)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (rc)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (n) {
        c->bytes_out += n;
        return (ssize_t)n;
    }
    pthread_mutex_lock(&c->mu);
    if (!c->wake_pending && !c->stream_end) {
        c->is_suspended = 1;
        __atomic_add_fetch(&h->suspended, 1, __ATOMIC_SEQ_CST);
        MHD_suspend_connection(c->conn);
    }
    pthread_mutex_unlock(&c->mu);
    return 0;
}

/* Resumes a connection we suspended; called with c->mu held. */
static void resume_locked(req_ctx *c)
{
    vigil_httpd *h = c->h;
    c->is_suspended = 0;
    MHD_resume_connection(c->conn);
    __atomic_sub_fetch(&h->suspended, 1, __ATOMIC_SEQ_CST);
}

static void on_wake(void *payload)
{
    req_ctx *c = payload;
    pthread_mutex_lock(&c->mu);
    if (c->is_suspended)
        resume_locked(c);
    else
        c->wake_pending = 1;
    pthread_mutex_unlock(&c->mu);
}

static enum MHD_Result queue_api_response(req_ctx *c)
{
    vigil_api_response *resp = c->resp;
    int status = vigil_api_response_status(resp);
    struct MHD_Response *mr;
    if (vigil_api_response_is_stream(resp)) {
        mr =
            MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK, stream_read, c, NULL);
        if (!mr)
            return MHD_NO;
        c->is_stream = 1;
        vigil_httpd *h = c->h;
        pthread_mutex_lock(&h->mu);
        c->next = h->streams;
        if (h->streams)
            h->streams->prev = c;
        h->streams = c;
        pthread_mutex_unlock(&h->mu);
        vigil_api_response_set_wake(resp, on_wake, c);
    } else {
        size_t len;
        const char *body = vigil_api_response_body(resp, &len);
        mr = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
        if (!mr)
            return MHD_NO;
        c->bytes_out = len;
    }
    size_t nh = vigil_api_response_header_count(resp);
    for (size_t i = 0; i < nh; i++) {
        const vigil_http_header *hd = vigil_api_response_header_at(resp, i);
        MHD_add_response_header(mr, hd->name, hd->value);
    }
    MHD_add_response_header(mr, "X-Request-Id", c->request_id);
    enum MHD_Result ret = MHD_queue_response(c->conn, (unsigned int)status, mr);
    MHD_destroy_response(mr);
    c->status = status;
    /* A stream is not waited for by the drain; any other answer is counted
     * until on_completed(), once it has been sent: MHD_stop_daemon() would
     * drop an answer queued but not yet written. */
    if (c->is_stream)
        uncount(c);
    return ret;
}

static void on_done(vigil_api_response *resp, void *payload)
{
    (void)resp;
    req_ctx *c = payload;
    vigil_httpd *h = c->h;
    pthread_mutex_lock(&c->mu);
    c->done = 1;
    if (c->is_suspended)
        resume_locked(c);
    pthread_mutex_unlock(&c->mu);
    unpend(h);
}

/* ---- request collection ------------------------------------------------------- */

typedef struct collect {
    req_ctx *c;
    size_t cap;
    vigil_buf q;
    int oom;
} collect;

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    (void)kind;
    collect *col = cls;
    req_ctx *c = col->c;
    if (c->nheaders >= HEADERS_MAX)
        return MHD_NO;
    if (vigil__array_grow((void **)&c->headers, &col->cap, c->nheaders + 1,
                          sizeof(vigil_http_header))) {
        col->oom = 1;
        return MHD_NO;
    }
    c->headers[c->nheaders].name = key;
    c->headers[c->nheaders].value = value ? value : "";
    c->nheaders++;
    return MHD_YES;
}

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    collect *col = cls;
    int rc = VIGIL_OK;
    if (col->q.size)
        rc = vigil__buf_putc(&col->q, '&');
    if (!rc)
        rc = vigil__buf_put(&col->q, key, key_size);
    if (!rc && value) {
        rc = vigil__buf_putc(&col->q, '=');
        if (!rc)
            rc = vigil__buf_put(&col->q, value, value_size);
    }
    if (rc) {
        col->oom = 1;
        return MHD_NO;
    }
    return MHD_YES;
}

/* The raw URL is kept: the api percent-decodes paths and queries itself. */
static size_t no_unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    (void)conn;
    return strlen(s);
}

static int build_request(req_ctx *c, const char *method)
{
    collect col;
    memset(&col, 0, sizeof(col));
    col.c = c;
    MHD_get_connection_values(c->conn, MHD_HEADER_KIND, collect_header, &col);
    MHD_get_connection_values_n(c->conn, MHD_GET_ARGUMENT_KIND, collect_arg, &col);
    if (col.oom) {
        vigil_buf_dispose(&col.q);
        return VIGIL_ENOMEM;
    }
    if (col.q.size) {
        c->query = vigil__buf_detach(&col.q);
        if (!c->query)
            return VIGIL_ENOMEM;
    }
    vigil_api_request_init(&c->req, VIGIL_API_REQUEST_VERSION);
    c->req.method = method;
    c->req.path = c->path;
    c->req.query = c->query;
    c->req.headers = c->headers;
    c->req.nheaders = c->nheaders;
    c->req.body = c->body.ptr;
    c->req.body_len = c->body.size;
    c->req.remote_addr = c->remote;
    c->req.request_id = c->request_id;
    return VIGIL_OK;
}

/* GnuTLS's verification of the peer's certificate against the trust list
 * that libmicrohttpd installed from tls_client_ca. libmicrohttpd requests a
 * client certificate but does not verify it and exposes only the GnuTLS
 * session; GnuTLS is already loaded as libmicrohttpd's TLS library, so the
 * function is looked up in the process instead of linking GnuTLS directly. */
typedef int (*verify_peers_fn)(void *session, unsigned int *status);

static int client_cert_ok(req_ctx *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c->conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (!ci || !ci->tls_session)
        return 0;
    verify_peers_fn verify;
    *(void **)&verify = dlsym(RTLD_DEFAULT, "gnutls_certificate_verify_peers2");
    if (!verify)
        return 0;
    unsigned int status = 1;
    int rc = verify(ci->tls_session, &status);
    return rc == 0 && status == 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    vigil_httpd *h = cls;
    req_ctx *c = *con_cls;
    if (!c) {
        c = vigil__calloc(1, sizeof(*c));
        if (!c)
            return MHD_NO;
        pthread_mutex_init(&c->mu, NULL);
        c->h = h;
        c->conn = conn;
        c->start_ns = vigil__monotonic_ns();
        c->path = vigil__strdup(url);
        if (!c->path) {
            ctx_free(c);
            return MHD_NO;
        }
        snprintf(c->method, sizeof(c->method), "%s", method);
        remote_of(conn, c->remote, sizeof(c->remote));
        uint32_t seq = __atomic_add_fetch(&h->id_seq, 1, __ATOMIC_RELAXED);
        snprintf(c->request_id, sizeof(c->request_id), "%08x%08x", h->id_prefix, seq);
        c->counted = 1;
        pthread_mutex_lock(&h->mu);
        h->inflight++;
        pthread_mutex_unlock(&h->mu);
        *con_cls = c;
        if (h->ca_pem && !client_cert_ok(c))
            return queue_plain(c, 401, "unauthorized",
                               "a client certificate signed by the configured CA is required");
        /* Authentication (and route, method, query) on the headers alone,
         * before any body byte is read: a refusal queued now is sent
         * without "100 Continue" and the body is never read. */
        if (build_request(c, c->method))
            return queue_plain(c, 500, "internal", "out of memory");
        if (vigil_api_response_new(&c->resp))
            return queue_plain(c, 500, "internal", "out of memory");
        if (vigil__api_precheck(h->api, &c->req, c->resp))
            return queue_api_response(c);
        vigil_api_response_free(c->resp);
        c->resp = NULL;
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end = NULL;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno == ERANGE || (uint64_t)n > h->max_body) {
                char msg[128];
                snprintf(msg, sizeof(msg), "request body exceeds the limit of %llu bytes",
                         (unsigned long long)h->max_body);
                return queue_plain(c, 413, "too_large", msg);
            }
            c->has_length = 1;
            if (n && reserve(c, (uint64_t)n))
                return queue_busy(c);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (c->submitted)
            return MHD_NO;
        if ((uint64_t)c->body.size + *upload_data_size > h->max_body)
            return MHD_NO; /* chunked body past the limit: close the connection */
        if (!c->has_length && reserve(c, *upload_data_size))
            return MHD_NO; /* chunked body past the global budget: close the connection */
        if (vigil__buf_put(&c->body, upload_data, *upload_data_size))
            return MHD_NO;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (!c->submitted) {
        c->req.body = c->body.ptr;
        c->req.body_len = c->body.size;
        if (vigil_api_response_new(&c->resp))
            return queue_plain(c, 500, "internal", "out of memory");
        c->submitted = 1;
        __atomic_add_fetch(&h->pending, 1, __ATOMIC_SEQ_CST);
        if (vigil_api_submit(h->api, &c->req, c->resp, on_done, c) != VIGIL_OK) {
            unpend(h);
            return queue_plain(c, 500, "internal", vigil_error_last()->message);
        }
        pthread_mutex_lock(&c->mu);
        if (!c->done) {
            c->is_suspended = 1;
            __atomic_add_fetch(&h->suspended, 1, __ATOMIC_SEQ_CST);
            MHD_suspend_connection(conn);
            pthread_mutex_unlock(&c->mu);
            return MHD_YES;
        }
        pthread_mutex_unlock(&c->mu);
    }
    pthread_mutex_lock(&c->mu);
    int done = c->done;
    pthread_mutex_unlock(&c->mu);
    if (!done)
        return MHD_YES;
    return queue_api_response(c);
}

static void log_request(vigil_httpd *h, req_ctx *c, enum MHD_RequestTerminationCode toe)
{
    if (h->logger.min_level > VIGIL_LOG_INFO)
        return;
    vigil_buf f = VIGIL_BUF_INIT;
    char path[LOG_PATH_MAX + 4];
    snprintf(path, sizeof(path), "%.*s%s", LOG_PATH_MAX, c->path ? c->path : "",
             c->path && strlen(c->path) > LOG_PATH_MAX ? "..." : "");
    int rc = vigil__buf_printf(&f, "request_id=%s remote=%s method=", c->request_id,
                               c->remote[0] ? c->remote : "-");
    if (!rc)
        rc = vigil__logfmt_value(&f, c->method);
    if (!rc)
        rc = vigil__buf_puts(&f, " path=");
    if (!rc)
        rc = vigil__logfmt_value(&f, path);
    if (!rc)
        rc = vigil__buf_printf(&f, " status=%d duration_ms=%.3f bytes_in=%zu bytes_out=%llu%s",
                               c->status, (double)(vigil__monotonic_ns() - c->start_ns) / 1e6,
                               c->body.size, (unsigned long long)c->bytes_out,
                               toe == MHD_REQUEST_TERMINATED_COMPLETED_OK      ? ""
                               : toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? " end=timeout"
                                                                               : " end=aborted");
    if (!rc)
        vigil__log(&h->logger, VIGIL_LOG_INFO, "httpd", "request", "%s", f.ptr);
    vigil_buf_dispose(&f);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    vigil_httpd *h = cls;
    req_ctx *c = *con_cls;
    if (!c)
        return;
    *con_cls = NULL;
    log_request(h, c, toe);
    if (c->is_stream) {
        pthread_mutex_lock(&h->mu);
        if (c->prev)
            c->prev->next = c->next;
        else
            h->streams = c->next;
        if (c->next)
            c->next->prev = c->prev;
        pthread_cond_broadcast(&h->cv);
        pthread_mutex_unlock(&h->mu);
    }
    uncount(c);
    ctx_free(c);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    vigil_httpd *h = cls;
    char msg[256];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    pthread_mutex_lock(&h->mu);
    snprintf(h->last_error, sizeof(h->last_error), "%s", msg);
    pthread_mutex_unlock(&h->mu);
    vigil_buf v = VIGIL_BUF_INIT;
    if (vigil__logfmt_value(&v, msg) == VIGIL_OK)
        vigil__log(&h->logger, VIGIL_LOG_WARN, "httpd", "libmicrohttpd", "detail=%s", v.ptr);
    vigil_buf_dispose(&v);
}

/* ---- start / stop ------------------------------------------------------- */

/* Why libmicrohttpd could not listen, in the operating system's words: its
 * own message names the port it was passed (0, the address carries the
 * real one). Binds a socket of the same family to the address, with the
 * options libmicrohttpd sets, and returns the errno of the bind or listen
 * that fails, 0 when both succeed now (the socket is closed at once). */
static int bind_errno(const vigil_httpd *h)
{
    int fd = socket(h->ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno;
    int on = 1, e = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (h->ipv6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
    if (bind(fd, (const struct sockaddr *)&h->addr, h->addrlen) != 0 || listen(fd, 1) != 0)
        e = errno;
    close(fd);
    return e;
}

int vigil_httpd_start(vigil_httpd *h)
{
    if (!h)
        return vigil__error_set(VIGIL_EINVAL, "httpd: NULL argument");
    if (h->started)
        return vigil__error_set(VIGIL_EINVAL, "httpd: already started");
    /* poll, not epoll: see the top of this file */
    unsigned int flags =
        MHD_USE_POLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (h->ipv6)
        flags |= MHD_USE_IPv6;
    if (h->cert_pem)
        flags |= MHD_USE_TLS;
    struct MHD_OptionItem ops[16];
    size_t n = 0;
#define OPT(o, v, p)                  \
    do {                              \
        ops[n].option = (o);          \
        ops[n].value = (intptr_t)(v); \
        ops[n].ptr_value = (p);       \
        n++;                          \
    } while (0)
    OPT(MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, h); /* first, so it sees everything */
    OPT(MHD_OPTION_CONNECTION_LIMIT, h->max_connections, NULL);
    OPT(MHD_OPTION_PER_IP_CONNECTION_LIMIT, h->per_ip, NULL);
    OPT(MHD_OPTION_CONNECTION_TIMEOUT, h->timeout_s, NULL);
    OPT(MHD_OPTION_CONNECTION_MEMORY_LIMIT, h->connection_memory, NULL);
    if (h->threads > 1)
        OPT(MHD_OPTION_THREAD_POOL_SIZE, h->threads, NULL);
    OPT(MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, h);
    OPT(MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)no_unescape, NULL);
    OPT(MHD_OPTION_SOCK_ADDR, 0, &h->addr);
    OPT(MHD_OPTION_STRICT_FOR_CLIENT, 1, NULL);
    if (h->cert_pem) {
        OPT(MHD_OPTION_HTTPS_MEM_CERT, 0, h->cert_pem);
        OPT(MHD_OPTION_HTTPS_MEM_KEY, 0, h->key_pem);
        if (h->ca_pem)
            OPT(MHD_OPTION_HTTPS_MEM_TRUST, 0, h->ca_pem);
    }
    OPT(MHD_OPTION_END, 0, NULL);
#undef OPT
    h->last_error[0] = '\0';
    errno = 0;
    h->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_ARRAY, ops,
                                 MHD_OPTION_END);
    if (!h->daemon) {
        int e = errno;
        int be = bind_errno(h);
        return vigil__error_set(VIGIL_ENETWORK, "httpd: cannot listen on %s: %s", h->listen,
                                be                 ? strerror(be)
                                : h->last_error[0] ? h->last_error
                                : e                ? strerror(e)
                                                   : "libmicrohttpd refused");
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? (int)di->port : 0;
    char host[INET6_ADDRSTRLEN];
    if (h->ipv6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&h->addr)->sin6_addr, host, sizeof(host));
        snprintf(h->address, sizeof(h->address), "[%s]:%d", host, h->port);
    } else {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&h->addr)->sin_addr, host, sizeof(host));
        snprintf(h->address, sizeof(h->address), "%s:%d", host, h->port);
    }
    h->started = 1;
    if (!is_loopback(h) && !vigil_api_has_auth(h->api))
        vigil__log(&h->logger, VIGIL_LOG_WARN, "httpd",
                   "INSECURE: listening beyond loopback with no authentication; anyone who can "
                   "reach this address can read and write",
                   "address=%s", h->address);
    vigil__log(&h->logger, VIGIL_LOG_INFO, "httpd", "listening",
               "address=%s tls=%s client_cert=%s threads=%u max_connections=%u per_ip=%u "
               "timeout_s=%u",
               h->address, h->cert_pem ? "on" : "off", h->ca_pem ? "required" : "off", h->threads,
               h->max_connections, h->per_ip, h->timeout_s);
    return VIGIL_OK;
}

int vigil_httpd_port(const vigil_httpd *h)
{
    return h ? h->port : 0;
}

const char *vigil_httpd_address(const vigil_httpd *h)
{
    return h ? h->address : "";
}

int vigil_httpd_quiesce(vigil_httpd *h)
{
    if (!h || !h->started || h->stopped)
        return vigil__error_set(VIGIL_EINVAL, "httpd: not running");
    if (h->quiesced)
        return VIGIL_OK;
    /* The workers may still poll the socket until they see the quiesce: it
     * is closed only after MHD_stop_daemon() has joined them. shutdown(2)
     * makes the kernel refuse new connections (and reset those not yet
     * accepted) now. */
    MHD_socket fd = MHD_quiesce_daemon(h->daemon);
    if (fd != MHD_INVALID_SOCKET) {
        h->listen_fd = fd;
        shutdown(fd, SHUT_RDWR);
    }
    h->quiesced = 1;
    vigil__log(&h->logger, VIGIL_LOG_INFO, "httpd", "stopped accepting connections", "address=%s",
               h->address);
    return VIGIL_OK;
}

/* Waits until cond(h) holds, at most timeout_ms (< 0: no limit), on the
 * monotonic clock; every change cond reads is broadcast on h->cv. */
static int wait_until(vigil_httpd *h, int (*cond)(vigil_httpd *), int64_t timeout_ms)
{
    int64_t deadline = vigil__monotonic_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
    int rc = VIGIL_OK;
    pthread_mutex_lock(&h->mu);
    while (!cond(h)) {
        if (timeout_ms < 0)
            pthread_cond_wait(&h->cv, &h->mu);
        else if (vigil__cond_wait_until(&h->cv, &h->mu, deadline) == ETIMEDOUT && !cond(h)) {
            rc = VIGIL_ETIMEOUT;
            break;
        }
    }
    pthread_mutex_unlock(&h->mu);
    return rc;
}

static int drained(vigil_httpd *h)
{
    return h->inflight == 0;
}

int vigil_httpd_drain(vigil_httpd *h, int64_t timeout_ms)
{
    if (!h)
        return vigil__error_set(VIGIL_EINVAL, "httpd: NULL argument");
    if (!h->started || h->stopped)
        return VIGIL_OK;
    if (wait_until(h, drained, timeout_ms))
        return vigil__error_set(VIGIL_ETIMEOUT, "httpd: %zu requests still in progress",
                                h->inflight);
    return VIGIL_OK;
}

static int no_streams(vigil_httpd *h)
{
    return h->streams == NULL;
}

static int settled(vigil_httpd *h)
{
    return __atomic_load_n(&h->pending, __ATOMIC_SEQ_CST) == 0 &&
           __atomic_load_n(&h->suspended, __ATOMIC_SEQ_CST) == 0;
}

void vigil_httpd_stop(vigil_httpd *h)
{
    if (!h || !h->started || h->stopped)
        return;
    /* End every stream; a suspended one is resumed so it can finish. */
    pthread_mutex_lock(&h->mu);
    for (req_ctx *c = h->streams; c; c = c->next) {
        pthread_mutex_lock(&c->mu);
        c->stream_end = 1;
        if (c->is_suspended) {
            c->is_suspended = 0;
            MHD_resume_connection(c->conn);
            __atomic_sub_fetch(&h->suspended, 1, __ATOMIC_SEQ_CST);
        }
        pthread_mutex_unlock(&c->mu);
    }
    pthread_mutex_unlock(&h->mu);
    /* Give ended streams a moment to send their last chunk. */
    wait_until(h, no_streams, STREAM_FLUSH_MS);
    /* Every submitted request must have its answer before the daemon stops. */
    int64_t waited = 0;
    while (wait_until(h, settled, 1000) == VIGIL_ETIMEOUT) {
        waited += 1000;
        vigil__log(&h->logger, VIGIL_LOG_WARN, "httpd", "waiting for answers before stopping",
                   "pending=%zu waited_ms=%lld", h->pending, (long long)waited);
    }
    MHD_stop_daemon(h->daemon);
    h->daemon = NULL;
    if (h->listen_fd >= 0) {
        close(h->listen_fd);
        h->listen_fd = -1;
    }
    h->stopped = 1;
    vigil__log(&h->logger, VIGIL_LOG_INFO, "httpd", "stopped", "address=%s", h->address);
}

int vigil_httpd_shutdown(vigil_httpd *h, int64_t drain_timeout_ms, vigil_httpd_flush_cb flush,
                         void *payload)
{
    if (!h)
        return vigil__error_set(VIGIL_EINVAL, "httpd: NULL argument");
    int rc = VIGIL_OK;
    if (h->started && !h->stopped) {
        vigil_httpd_quiesce(h);
        if (wait_until(h, drained, drain_timeout_ms)) {
            size_t left;
            pthread_mutex_lock(&h->mu);
            left = h->inflight;
            pthread_mutex_unlock(&h->mu);
            vigil__log(&h->logger, VIGIL_LOG_WARN, "httpd", "requests still in progress; stopping",
                       "inflight=%zu drain_timeout_ms=%lld", left, (long long)drain_timeout_ms);
            rc = vigil__error_set(VIGIL_ETIMEOUT,
                                  "httpd: %zu requests still in progress after %lld ms", left,
                                  (long long)drain_timeout_ms);
        }
    }
    if (flush)
        flush(payload);
    vigil_httpd_stop(h);
    return rc;
}
