/*
 * vigil-demo-service - a tiny foreground HTTP service for demonstrations and
 * the end-to-end loop test: the program the `process` action of
 * configs/remediator.yaml supervises and the agent watches.
 *
 *   vigil-demo-service [--port N] [--bind ADDR] [--pidfile PATH] [--die-after MS]
 *
 * --die-after MS: a service that keeps crashing, for the healing benchmark
 * (bench/e2e_heal): MS milliseconds after it listens (1 to 3600000) it ends
 * with status 70, as a program that crashes soon after each start would.
 *
 * --pidfile PATH: once listening, it writes its own pid ("PID\n", as nginx
 * or PostgreSQL do) to PATH, and removes the file when it stops, if the file
 * still names it.
 *
 * Answers every GET with 200 and a small JSON body ({"status":"ok","pid":N})
 * and anything else with 405, one short request per connection. Stays in
 * the foreground; SIGTERM and SIGINT end it with status 0. --port 0 binds an
 * ephemeral port. It logs one logfmt line with the address it bound.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int parse_port(const char *s, int *out)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *s == '\0' || *end != '\0' || v < 0 || v > 65535)
        return -1;
    *out = (int)v;
    return 0;
}

static void serve(int fd)
{
    char req[2048];
    char body[96];
    char resp[320];
    size_t got = 0;
    struct pollfd p = {fd, POLLIN, 0};

    /* read the request head (bounded, 2 s at most) */
    while (got < sizeof(req) - 1 && poll(&p, 1, 2000) == 1) {
        ssize_t n = read(fd, req + got, sizeof(req) - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        req[got] = '\0';
        if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
            break;
    }
    req[got] = '\0';
    int is_get = strncmp(req, "GET ", 4) == 0;
    int blen = snprintf(body, sizeof(body),
                        is_get ? "{\"status\":\"ok\",\"pid\":%ld}\n"
                               : "{\"error\":\"method not allowed\"}\n",
                        (long)getpid());
    int rlen = snprintf(resp, sizeof(resp),
                        "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: "
                        "%d\r\nConnection: close\r\n\r\n%s",
                        is_get ? "200 OK" : "405 Method Not Allowed", blen, body);
    for (int off = 0; off < rlen;) {
        ssize_t n = write(fd, resp + off, (size_t)(rlen - off));
        if (n <= 0)
            break;
        off += (int)n;
    }
}

/* Writes "PID\n" to path (never through a symbolic link). */
static int write_pidfile(const char *path)
{
    char line[32];
    int len = snprintf(line, sizeof(line), "%ld\n", (long)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    int ok = write(fd, line, (size_t)len) == len;
    return close(fd) == 0 && ok ? 0 : -1;
}

static void remove_pidfile(const char *path)
{
    char buf[32] = {0};
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n > 0 && strtol(buf, NULL, 10) == (long)getpid())
        unlink(path);
}

int main(int argc, char **argv)
{
    const char *pidfile = NULL;
    int port = 7680;
    long die_after_ms = 0;
    const char *bind_addr = "127.0.0.1";
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    struct sigaction act;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--port") && i + 1 < argc) {
            if (parse_port(argv[++i], &port) != 0) {
                fprintf(stderr, "vigil-demo-service: --port: expected 0 to 65535\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--bind") && i + 1 < argc) {
            bind_addr = argv[++i];
        } else if (!strcmp(argv[i], "--pidfile") && i + 1 < argc) {
            pidfile = argv[++i];
        } else if (!strcmp(argv[i], "--die-after") && i + 1 < argc) {
            char *end = NULL;
            errno = 0;
            die_after_ms = strtol(argv[++i], &end, 10);
            if (errno || !end || *end || end == argv[i] || die_after_ms < 1 ||
                die_after_ms > 3600000) {
                fprintf(stderr, "vigil-demo-service: --die-after: expected 1 to 3600000 (ms)\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: vigil-demo-service [--port N] [--bind ADDR] [--pidfile PATH] "
                   "[--die-after MS]\n");
            return 0;
        } else {
            fprintf(stderr, "vigil-demo-service: unknown argument \"%s\" (try --help)\n", argv[i]);
            return 2;
        }
    }

    memset(&act, 0, sizeof(act));
    act.sa_handler = on_signal;
    sigaction(SIGTERM, &act, NULL);
    sigaction(SIGINT, &act, NULL);
    signal(SIGPIPE, SIG_IGN);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    if (inet_pton(AF_INET, bind_addr, &sa.sin_addr) != 1) {
        fprintf(stderr, "vigil-demo-service: --bind: \"%s\" is not an IPv4 address\n", bind_addr);
        return 2;
    }
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 64) != 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &len) != 0) {
        fprintf(stderr, "level=error component=demo msg=\"cannot listen on %s:%d: %s\"\n",
                bind_addr, port, strerror(errno));
        return 1;
    }
    fprintf(stderr, "level=info component=demo msg=listening addr=%s:%u pid=%ld\n", bind_addr,
            (unsigned)ntohs(sa.sin_port), (long)getpid());
    if (pidfile && write_pidfile(pidfile) != 0) {
        fprintf(stderr, "level=error component=demo msg=\"cannot write pidfile %s: %s\"\n", pidfile,
                strerror(errno));
        return 1;
    }

    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!stop_requested) {
        int wait_ms = 500;
        if (die_after_ms) {
            struct timespec t;
            clock_gettime(CLOCK_MONOTONIC, &t);
            long left = die_after_ms -
                        ((t.tv_sec - t0.tv_sec) * 1000L + (t.tv_nsec - t0.tv_nsec) / 1000000L);
            if (left <= 0) {
                fprintf(stderr,
                        "level=error component=demo msg=\"dying as asked (--die-after)\"\n");
                return 70;
            }
            wait_ms = left < wait_ms ? (int)left : wait_ms;
        }
        struct pollfd p = {lfd, POLLIN, 0};
        int r = poll(&p, 1, wait_ms);
        if (r <= 0)
            continue;
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        serve(fd);
        close(fd);
    }
    close(lfd);
    if (pidfile)
        remove_pidfile(pidfile);
    fprintf(stderr, "level=info component=demo msg=stopped\n");
    return 0;
}
