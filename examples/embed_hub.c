/* embed_hub: an application that already runs its own libmicrohttpd server
 * mounts the hub's routes under /vigil next to its own routes, through the
 * transport-neutral vigil_api (no vigil_httpd involved).
 *
 *   embed_hub                 self-test: start on an ephemeral loopback port,
 *                             ingest and read back through /vigil, exit 0
 *   embed_hub --serve PORT    serve until interrupted (Ctrl-C)
 *
 * Build: cc embed_hub.c $(pkg-config --cflags --libs vigil libmicrohttpd)
 *
 * The server uses one thread per connection, so a request may simply block
 * in vigil_api_handle() until the hub has committed an ingest, and an event
 * stream may block in its content reader until the next event. (A server
 * with an event loop would use vigil_api_submit() and suspend/resume the
 * connection instead, as vigil_httpd does.) */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vigil/vigil.h>

#define MAX_BODY    (8 * 1024 * 1024)
#define MAX_HEADERS 64

typedef struct request {
    char *body;
    size_t len;
    int too_large;
    vigil_http_header headers[MAX_HEADERS];
    size_t nheaders;
    char query[4096];
    size_t qlen;
} request;

/* An event stream: the content reader waits for the stream's wake callback. */
typedef struct stream {
    vigil_api_response *resp;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int woken;
} stream;

static void on_wake(void *payload)
{
    stream *s = payload;
    pthread_mutex_lock(&s->mu);
    s->woken = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static ssize_t read_stream(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    stream *s = cls;
    for (;;) {
        size_t n = 0;
        pthread_mutex_lock(&s->mu);
        s->woken = 0;
        pthread_mutex_unlock(&s->mu);
        int rc = vigil_api_response_read(s->resp, buf, max, &n);
        if (rc == VIGIL_ECLOSED)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (rc)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (n)
            return (ssize_t)n;
        pthread_mutex_lock(&s->mu);
        while (!s->woken)
            pthread_cond_wait(&s->cv, &s->mu); /* thread per connection: blocking is fine */
        pthread_mutex_unlock(&s->mu);
    }
}

static void free_stream(void *cls)
{
    stream *s = cls;
    vigil_api_response_free(s->resp); /* ends the subscription first */
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static enum MHD_Result add_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    (void)kind;
    request *r = cls;
    if (r->nheaders < MAX_HEADERS) {
        r->headers[r->nheaders].name = key;
        r->headers[r->nheaders].value = value ? value : "";
        r->nheaders++;
    }
    return MHD_YES;
}

static enum MHD_Result add_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
    (void)kind;
    request *r = cls;
    int n = snprintf(r->query + r->qlen, sizeof(r->query) - r->qlen, "%s%s%s%s", r->qlen ? "&" : "",
                     key, value ? "=" : "", value ? value : "");
    if (n > 0 && r->qlen + (size_t)n < sizeof(r->query))
        r->qlen += (size_t)n;
    return MHD_YES;
}

/* The raw URL is handed to the api, which decodes paths and queries itself. */
static size_t keep_escapes(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned int status, const char *text)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)(uintptr_t)text,
                                                             MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *data,
                               size_t *size, void **ctx)
{
    (void)version;
    vigil_api *api = cls;
    request *r = *ctx;
    if (!r) {
        r = calloc(1, sizeof(*r));
        if (!r)
            return MHD_NO;
        *ctx = r;
        return MHD_YES;
    }
    if (*size) {
        if (r->len + *size > MAX_BODY) {
            r->too_large = 1;
        } else {
            char *nb = realloc(r->body, r->len + *size);
            if (!nb)
                return MHD_NO;
            memcpy(nb + r->len, data, *size);
            r->body = nb;
            r->len += *size;
        }
        *size = 0;
        return MHD_YES;
    }
    /* The application's own routes. */
    if (strncmp(url, "/vigil/", 7) != 0)
        return reply_text(c, strcmp(url, "/") == 0 ? 200 : 404,
                          strcmp(url, "/") == 0 ? "my application\n" : "not found\n");
    if (r->too_large)
        return reply_text(c, 413,
                          "{\"error\":{\"code\":\"too_large\",\"message\":\"body too "
                          "large\",\"path\":\"\"}}");

    /* Everything under /vigil goes to the hub. */
    MHD_get_connection_values(c, MHD_HEADER_KIND, add_header, r);
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, add_arg, r);
    vigil_api_request req = VIGIL_API_REQUEST_INIT;
    req.method = method;
    req.path = url;
    req.query = r->qlen ? r->query : NULL;
    req.headers = r->headers;
    req.nheaders = r->nheaders;
    req.body = r->body;
    req.body_len = r->len;
    vigil_api_response *resp = NULL;
    if (vigil_api_response_new(&resp) || vigil_api_handle(api, &req, resp)) {
        vigil_api_response_free(resp);
        return MHD_NO;
    }
    struct MHD_Response *mr;
    if (vigil_api_response_is_stream(resp)) {
        stream *s = calloc(1, sizeof(*s));
        if (!s) {
            vigil_api_response_free(resp);
            return MHD_NO;
        }
        s->resp = resp;
        pthread_mutex_init(&s->mu, NULL);
        pthread_cond_init(&s->cv, NULL);
        vigil_api_response_set_wake(resp, on_wake, s);
        mr = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, read_stream, s, free_stream);
    } else {
        size_t len;
        const char *body = vigil_api_response_body(resp, &len);
        mr = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
    }
    for (size_t i = 0; mr && i < vigil_api_response_header_count(resp); i++) {
        const vigil_http_header *h = vigil_api_response_header_at(resp, i);
        MHD_add_response_header(mr, h->name, h->value);
    }
    enum MHD_Result ret =
        mr ? MHD_queue_response(c, (unsigned int)vigil_api_response_status(resp), mr) : MHD_NO;
    if (mr)
        MHD_destroy_response(mr);
    if (!vigil_api_response_is_stream(resp))
        vigil_api_response_free(resp);
    return ret;
}

static void completed(void *cls, struct MHD_Connection *c, void **ctx,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    request *r = *ctx;
    if (r) {
        free(r->body);
        free(r);
        *ctx = NULL;
    }
}

/* One HTTP/1.0 request to ourselves over a plain socket; returns the status. */
static int self_request(unsigned int port, const char *req, char *resp, size_t size)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    size_t len = strlen(req), off = 0;
    while (off < len) {
        ssize_t n = send(fd, req + off, len - off, 0);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    size_t got = 0;
    ssize_t n;
    while (got < size - 1 && (n = recv(fd, resp + got, size - 1 - got, 0)) > 0)
        got += (size_t)n;
    resp[got] = '\0';
    close(fd);
    int status = -1;
    sscanf(resp, "HTTP/%*s %d", &status);
    return status;
}

static int selftest(unsigned int port)
{
    char resp[4096], req[1024];
    static const char body[] = "{\"agent\":\"embed\",\"batch_id\":\"embed-1\",\"metrics\":["
                               "{\"name\":\"demo_up\",\"value\":1,\"ts\":1000,"
                               "\"tags\":{\"host\":\"embed\"}}]}";
    snprintf(req, sizeof(req),
             "POST /vigil/v1/ingest HTTP/1.0\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             sizeof(body) - 1, body);
    int s1 = self_request(port, req, resp, sizeof(resp));
    printf("POST /vigil/v1/ingest -> %d %s\n", s1,
           strstr(resp, "\r\n\r\n") ? strstr(resp, "\r\n\r\n") + 4 : "");
    int s2 = self_request(port, "GET /vigil/v1/query?name=demo_up&from=0 HTTP/1.0\r\n\r\n", resp,
                          sizeof(resp));
    const char *b = strstr(resp, "\r\n\r\n");
    printf("GET /vigil/v1/query -> %d %s\n", s2, b ? b + 4 : "");
    int s3 = self_request(port, "GET / HTTP/1.0\r\n\r\n", resp, sizeof(resp));
    printf("GET / (the application's own route) -> %d\n", s3);
    return s1 == 202 && s2 == 200 && b && strstr(b, "[[1000,1]]") && s3 == 200 ? 0 : 1;
}

int main(int argc, char **argv)
{
    unsigned int port = 0;
    int serve = argc == 3 && strcmp(argv[1], "--serve") == 0;
    if (serve)
        port = (unsigned int)atoi(argv[2]);
    else if (argc != 1) {
        fprintf(stderr, "usage: embed_hub [--serve PORT]\n");
        return 2;
    }

    /* The hub and its routes, mounted under /vigil. An in-memory store keeps
     * the example self-contained; a real application would use a file. */
    vigil_hub_options ho = VIGIL_HUB_OPTIONS_INIT;
    ho.store_url = "sqlite::memory:";
    vigil_api_options ao = VIGIL_API_OPTIONS_INIT;
    ao.prefix = "/vigil";
    vigil_hub *hub = NULL;
    vigil_api *api = NULL;
    if (vigil_hub_new(&hub, &ho) || vigil_hub_start(hub) || vigil_api_new(&api, &ao) ||
        vigil_hub_mount(hub, api)) {
        fprintf(stderr, "embed_hub: %s\n", vigil_error_last()->message);
        return 1;
    }
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, handler,
        api, MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
        MHD_OPTION_UNESCAPE_CALLBACK, keep_escapes, NULL, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
        MHD_OPTION_CONNECTION_LIMIT, 256u, MHD_OPTION_PER_IP_CONNECTION_LIMIT, 32u, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "embed_hub: cannot start the HTTP server\n");
        return 1;
    }
    port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
    int status = 0;
    if (serve) {
        printf("embed_hub: serving on 127.0.0.1:%u (hub under /vigil); Ctrl-C stops\n", port);
        fflush(stdout);
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        int sig;
        sigwait(&set, &sig);
    } else {
        status = selftest(port);
    }
    /* Stop the hub first: event streams end and every queued ingest is
     * answered, so no connection is left waiting on it. */
    vigil_hub_stop(hub);
    MHD_stop_daemon(d);
    vigil_api_free(api);
    vigil_hub_free(hub);
    return status;
}
