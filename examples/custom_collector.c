/*
 * custom_collector - a collector type written outside libvigil with the public
 * plug-in interface <vigil/sys/collector.h>: an HTTP latency check whose
 * collect returns http_latency_ms with a url tag.
 *
 *   custom_collector [URL]
 *
 * URL is http://HOST:PORT/PATH (numeric IPv4 host; plain http, to keep the
 * example free of other libraries). Without URL the example starts its own
 * listener on 127.0.0.1 and checks it. The type is registered on a registry
 * (never a global), one instance is created from a YAML snippet as an agent
 * would from agent.yaml, collected once, and the batch printed as ingest JSON.
 * A check that fails shows up as a vigil_collector_error sample with its
 * message: the instance turns the failure into data, it never crashes.
 *
 * The plug-in contract (docs/plugins.md) shown end to end: the type is a
 * vigil_collector_type whose payload (shared statistics) the registry owns
 * and frees; a type of another version is refused with VIGIL_EVERSION and its
 * payload freed at once; a bad `url` is reported through vigil_error_set_at()
 * (located in the YAML), a failed check through vigil_error_set().
 *
 * Build against an installed libvigil:
 *   cc -o custom_collector custom_collector.c $(pkg-config --cflags --libs vigil) -lpthread
 *
 * Exit status 0 when every check passed (with a URL given: when the
 * collection ran, even if the target was down), 1 otherwise.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <vigil/vigil.h>
#include <vigil/sys/collector.h>

/* ---- the collector type ------------------------------------------------------ */

/* The type's payload: statistics shared by every instance of the type. */
typedef struct {
    unsigned long checks;
    int freed;
} latency_stats;

static void latency_stats_free(void *payload)
{
    ((latency_stats *)payload)->freed++;
}

typedef struct {
    char url[512];
    char host[64];
    int port;
    char path[256];
    int64_t timeout_ms;
    latency_stats *stats;
} http_check;

static const char *const http_check_keys[] = {"url", "timeout", NULL};

static int parse_url(http_check *c, const char *url)
{
    const char *p;
    size_t n;
    if (strncmp(url, "http://", 7) != 0 || strlen(url) >= sizeof(c->url))
        return -1;
    snprintf(c->url, sizeof(c->url), "%s", url);
    p = url + 7;
    n = strcspn(p, ":/");
    if (n == 0 || n >= sizeof(c->host))
        return -1;
    memcpy(c->host, p, n);
    c->host[n] = '\0';
    p += n;
    c->port = 80;
    if (*p == ':') {
        char *end;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port < 1 || port > 65535)
            return -1;
        c->port = (int)port;
        p = end;
    }
    snprintf(c->path, sizeof(c->path), "%s", *p ? p : "/");
    return 0;
}

static int http_check_create(void **state, const vigil_config_node *config,
                             const vigil_collector_context *ctx)
{
    const char *url = NULL;
    struct in_addr addr;
    http_check *c;
    int rc;
    if ((rc = vigil_config_require(config, "url")) != VIGIL_OK ||
        (rc = vigil_config_get_string(&url, config, "url", NULL)) != VIGIL_OK)
        return rc;
    c = calloc(1, sizeof(*c));
    if (!c)
        return vigil_error_set(VIGIL_ENOMEM, NULL);
    if ((rc = vigil_config_get_duration(&c->timeout_ms, config, "timeout", 2000)) != VIGIL_OK) {
        free(c);
        return rc;
    }
    if (parse_url(c, url) != 0 || inet_pton(AF_INET, c->host, &addr) != 1) {
        free(c);
        return vigil_error_set_at(VIGIL_EVALUE, vigil_config_node_get(config, "url"),
                                  "expected http://IPV4:PORT/PATH");
    }
    c->stats = ctx->type_payload;
    *state = c;
    return VIGIL_OK;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* One GET; returns 0 and the HTTP status, or -1 with a reason in err. */
static int http_get(const http_check *c, int *status, char *err, size_t err_size)
{
    struct sockaddr_in sa;
    struct timeval tv;
    char req[512], resp[128];
    int fd, n, len;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)c->port);
    inet_pton(AF_INET, c->host, &sa.sin_addr);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        snprintf(err, err_size, "socket: %s", strerror(errno));
        return -1;
    }
    tv.tv_sec = (time_t)(c->timeout_ms / 1000);
    tv.tv_usec = (suseconds_t)((c->timeout_ms % 1000) * 1000);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        snprintf(err, err_size, "connect to %s:%d: %s", c->host, c->port, strerror(errno));
        close(fd);
        return -1;
    }
    len = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", c->path, c->host);
    if (send(fd, req, (size_t)len, MSG_NOSIGNAL) != len) {
        snprintf(err, err_size, "send: %s", strerror(errno));
        close(fd);
        return -1;
    }
    n = (int)recv(fd, resp, sizeof(resp) - 1, 0);
    close(fd);
    if (n <= 0) {
        snprintf(err, err_size, "no response: %s", n < 0 ? strerror(errno) : "closed");
        return -1;
    }
    resp[n] = '\0';
    if (sscanf(resp, "HTTP/%*d.%*d %d", status) != 1) {
        snprintf(err, err_size, "not an HTTP response");
        return -1;
    }
    return 0;
}

static int http_check_collect(void *state, vigil_batch *out, int64_t ts)
{
    http_check *c = state;
    char err[300];
    int status = 0;
    double t0 = now_ms();
    vigil_tag tag;
    vigil_metric m;
    c->stats->checks++;
    if (http_get(c, &status, err, sizeof(err)) != 0)
        return vigil_error_set(VIGIL_ENETWORK, err); /* becomes an error sample */
    tag.key = "url";
    tag.value = c->url;
    memset(&m, 0, sizeof(m));
    m.name = "http_latency_ms";
    m.value = now_ms() - t0;
    m.ts_ms = ts;
    m.tags = &tag;
    m.ntags = 1;
    return vigil_batch_add(out, &m);
}

static void http_check_destroy(void *state)
{
    free(state);
}

/* The type, with @p stats as its payload. The registry copies the struct. */
static vigil_collector_type http_check_type(latency_stats *stats)
{
    vigil_collector_type t;
    memset(&t, 0, sizeof(t));
    t.version = VIGIL_COLLECTOR_TYPE_VERSION;
    t.name = "http_latency";
    t.payload = stats;
    t.payload_free = latency_stats_free;
    t.keys = http_check_keys;
    t.create = http_check_create;
    t.collect = http_check_collect;
    t.destroy = http_check_destroy;
    return t;
}

/* ---- a tiny local target, used when no URL is given ---------------------------- */

static void *serve_one(void *arg)
{
    int lfd = *(int *)arg, fd;
    char buf[1024];
    struct pollfd pfd;
    pfd.fd = lfd;
    pfd.events = POLLIN;
    if (poll(&pfd, 1, 5000) != 1)
        return NULL;
    fd = accept(lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    if (recv(fd, buf, sizeof(buf), 0) > 0)
        send(fd, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 40, MSG_NOSIGNAL);
    close(fd);
    return NULL;
}

static int listen_local(int *port)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 4) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

/* ---- main: what an agent does with a registry ------------------------------------ */

static int fail(const char *what)
{
    fprintf(stderr, "custom_collector: %s: %s\n", what, vigil_error_last()->message);
    return 1;
}

static const vigil_config_node *entry(const vigil_config *cfg, size_t i)
{
    return vigil_config_node_at(vigil_config_node_get(vigil_config_root(cfg, 0), "collectors"), i);
}

int main(int argc, char **argv)
{
    vigil_collector_registry *reg = NULL;
    vigil_collector *coll = NULL;
    vigil_config *cfg = NULL;
    vigil_batch *batch = NULL;
    vigil_buf json = VIGIL_BUF_INIT;
    latency_stats stats = {0, 0}, stale = {0, 0};
    vigil_collector_type type;
    pthread_t server;
    int lfd = -1, port = 0, rc, status = 1;
    char url[512], yaml[1024];

    if (argc > 1) {
        snprintf(url, sizeof(url), "%s", argv[1]);
    } else {
        lfd = listen_local(&port);
        if (lfd < 0 || pthread_create(&server, NULL, serve_one, &lfd) != 0) {
            fprintf(stderr, "custom_collector: cannot start the local listener\n");
            return 1;
        }
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", port);
    }
    snprintf(yaml, sizeof(yaml),
             "collectors:\n"
             "  - {type: http_latency, url: \"%s\", timeout: 2s, tags: {team: example}}\n"
             "  - {type: http_latency, url: \"ftp://example.org/\"}\n",
             url);
    if (vigil_collector_registry_new(&reg) != VIGIL_OK) {
        status = fail("registry");
        goto out;
    }
    /* A type of another version is refused, and its payload freed at once. */
    type = http_check_type(&stale);
    type.version = VIGIL_COLLECTOR_TYPE_VERSION + 1;
    rc = vigil_collector_register(reg, &type);
    if (rc != VIGIL_EVERSION || stale.freed != 1) {
        fprintf(stderr, "custom_collector: a bad version gave %s, payload freed %d times\n",
                vigil_strerror(rc), stale.freed);
        goto out;
    }
    printf("refused: %s\n", vigil_error_last()->message);
    type = http_check_type(&stats);
    if (vigil_collector_register(reg, &type) != VIGIL_OK) {
        status = fail("register");
        goto out;
    }
    if (vigil_config_load_string(&cfg, yaml, strlen(yaml), "example.yaml", NULL) != VIGIL_OK) {
        status = fail("config");
        goto out;
    }
    /* The type's located error names the file, line and column. */
    rc = vigil_collector_new(&coll, reg, entry(cfg, 1), NULL);
    if (rc != VIGIL_EVALUE || vigil_error_last()->line != 3) {
        fprintf(stderr, "custom_collector: a bad url gave %s\n", vigil_error_last()->message);
        goto out;
    }
    printf("refused: %s\n", vigil_error_last()->message);
    if (vigil_collector_new(&coll, reg, entry(cfg, 0), NULL) != VIGIL_OK ||
        vigil_batch_new(&batch) != VIGIL_OK ||
        vigil_collector_collect(coll, batch, (int64_t)time(NULL) * 1000, NULL) != VIGIL_OK ||
        vigil_batch_encode_json(&json, batch) != VIGIL_OK) {
        status = fail("collect");
        goto out;
    }
    printf("%s\n", json.ptr);
    if (stats.checks != 1) {
        fprintf(stderr, "custom_collector: the payload counted %lu checks\n", stats.checks);
        goto out;
    }
    if (vigil_collector_last_status(coll) != VIGIL_OK) {
        fprintf(stderr, "custom_collector: the check failed and was reported as data\n");
        if (lfd >= 0)
            goto out; /* our own listener must answer */
    } else if (!strstr(json.ptr, "\"http_latency_ms\"")) {
        fprintf(stderr, "custom_collector: no http_latency_ms sample\n");
        goto out;
    }
    status = 0;
out:
    if (lfd >= 0) {
        pthread_join(server, NULL);
        close(lfd);
    }
    vigil_buf_dispose(&json);
    vigil_batch_free(batch);
    vigil_collector_free(coll);
    vigil_config_free(cfg);
    vigil_collector_registry_free(reg);
    if (status == 0 && stats.freed != 1) {
        fprintf(stderr, "custom_collector: the registry did not free the payload\n");
        status = 1;
    }
    return status;
}
