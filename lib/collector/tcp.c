/* Built-in collector tcp: a non-blocking connect with a timeout. */
#include "collector/coll_int.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HOST_MAX 255

static const char *const tcp_keys[] = {"host", "port", "timeout", NULL};

typedef struct {
    const vigil_collector_context *ctx;
    char *host;
    char port[8];
    char *label;
    int64_t timeout_ms;
} tcp_state;

static void tcp_destroy(void *p)
{
    tcp_state *s = p;
    vigil__free(s->host);
    vigil__free(s->label);
    vigil__free(s);
}

static int tcp_config(tcp_state *s, const vigil_config_node *config,
                      const vigil_collector_context *ctx)
{
    const char *host = NULL;
    int rc = vigil__coll_require_string(&host, config, "host");
    if (rc != VIGIL_OK)
        return rc;
    if (strlen(host) > HOST_MAX)
        return vigil_error_set_at(VIGIL_ELIMIT, vigil_config_node_get(config, "host"),
                                  "host name longer than 255 bytes");
    if ((rc = vigil_config_require(config, "port")) != VIGIL_OK)
        return rc;
    int64_t port = 0;
    if ((rc = vigil_config_get_int(&port, config, "port", 0)) != VIGIL_OK)
        return rc;
    if (port < 1 || port > 65535)
        return vigil_error_set_at(VIGIL_ERANGE, vigil_config_node_get(config, "port"),
                                  "port must be between 1 and 65535");
    if ((rc = vigil_config_get_duration(&s->timeout_ms, config, "timeout", 5000)) != VIGIL_OK)
        return rc;
    if (s->timeout_ms <= 0)
        return vigil_error_set_at(VIGIL_ERANGE, vigil_config_node_get(config, "timeout"),
                                  "timeout must be positive");
    snprintf(s->port, sizeof(s->port), "%d", (int)port);
    if (!(s->host = vigil__strdup(host)))
        return vigil__error_oom();
    vigil_buf b = VIGIL_BUF_INIT;
    if (ctx->name)
        rc = vigil__buf_puts(&b, ctx->name);
    else if (strchr(host, ':'))
        rc = vigil__buf_printf(&b, "[%s]:%s", host, s->port);
    else
        rc = vigil__buf_printf(&b, "%s:%s", host, s->port);
    if (rc != VIGIL_OK) {
        vigil_buf_dispose(&b);
        return vigil__error_oom();
    }
    s->label = vigil__buf_detach(&b);
    return VIGIL_OK;
}

static int tcp_create(void **state, const vigil_config_node *config,
                      const vigil_collector_context *ctx)
{
    tcp_state *s = vigil__calloc(1, sizeof(*s));
    if (!s)
        return vigil__error_oom();
    s->ctx = ctx;
    int rc = tcp_config(s, config, ctx);
    if (rc != VIGIL_OK) {
        tcp_destroy(s);
        return rc;
    }
    *state = s;
    return VIGIL_OK;
}

/* Tries one address until `deadline` (monotonic ms). 0 on success, else errno. */
static int try_connect(const struct addrinfo *ai, int64_t deadline)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return errno;
    int err = 0;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        err = errno;
        if (err == EINPROGRESS) {
            for (;;) {
                int64_t left = deadline - vigil__monotonic_ms();
                if (left <= 0) {
                    err = ETIMEDOUT;
                    break;
                }
                struct pollfd pfd = {fd, POLLOUT, 0};
                int n = poll(&pfd, 1, (int)(left > 60000 ? 60000 : left));
                if (n < 0 && errno == EINTR)
                    continue;
                if (n < 0) {
                    err = errno;
                    break;
                }
                if (n == 0)
                    continue;
                socklen_t len = sizeof(err);
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
                    err = errno;
                break;
            }
        }
    }
    close(fd);
    return err;
}

static int tcp_collect(void *p, vigil_batch *out, int64_t now_ms)
{
    tcp_state *s = p;
    double start = vigil__coll_mono_ms();
    int64_t deadline = vigil__monotonic_ms() + s->timeout_ms;
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int g = getaddrinfo(s->host, s->port, &hints, &res);
    int err = ENOENT;
    if (g == 0) {
        for (const struct addrinfo *ai = res; ai; ai = ai->ai_next)
            if ((err = try_connect(ai, deadline)) == 0 || vigil__monotonic_ms() >= deadline)
                break;
        freeaddrinfo(res);
    }
    double latency = vigil__coll_mono_ms() - start;
    int rc = vigil__coll_emit1(out, "tcp_up", err == 0 ? 1 : 0, now_ms, "check", s->label);
    if (rc == VIGIL_OK && err == 0)
        rc = vigil__coll_emit1(out, "tcp_connect_latency_ms", latency, now_ms, "check", s->label);
    if (err != 0)
        vigil__log(s->ctx->logger, VIGIL_LOG_DEBUG, "collector", "tcp check failed",
                   "check=%s error=\"%s\"", s->label, g != 0 ? gai_strerror(g) : strerror(err));
    return rc;
}

const vigil_collector_type vigil__collector_tcp = {
    .version = VIGIL_COLLECTOR_TYPE_VERSION,
    .name = "tcp",
    .keys = tcp_keys,
    .create = tcp_create,
    .collect = tcp_collect,
    .destroy = tcp_destroy,
};
