/* bench/request_memory: what hostile requests cost the hub's memory.
 *
 * An in-process hub (SQLite in memory) behind the built-in server with an
 * ingest token, on an ephemeral loopback port. Figures, never pass/fail:
 *  1. 200 unauthenticated uploads announcing 8 MiB bodies over 64
 *     connections (half wait for "100 Continue", half send their bodies
 *     anyway): the answers, the server's buffered-body peak and the growth
 *     of the process's resident set (VmRSS and its peak, VmHWM).
 *  2. {"metrics":[0,0,0,...]} inflating to 64 MiB from a gzip body of about
 *     64 KiB, posted 10 times with a valid token: the answer and the growth
 *     of VmHWM (the decoder refuses it after 2 x max_metrics + 2 elements).
 * Meaningful on a plain build (make bench), not under sanitizers.
 *
 *   make build/bench/request_memory && build/bench/request_memory
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vigil/vigil.h>
#include <zlib.h>

#define UPLOADS 200
#define CONNS   64
#define UPLOAD  (8 * 1024 * 1024)
#define TOKEN   "bench-ingest-token-0123456789"

static long status_kib(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, key, kl) == 0)
            v = atol(line + kl);
    if (f)
        fclose(f);
    return v;
}

static int port_g;
static int next_g, ok_g, other_g;
static char chunk_g[1024 * 1024];

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port_g);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        c += w;
        n -= (size_t)w;
    }
}

/* Reads an answer (until the peer closes or 10 s pass without data). */
static size_t read_answer(int fd, char *buf, size_t size)
{
    size_t got = 0;
    while (got < size - 1) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 10000) <= 0)
            break;
        ssize_t n = recv(fd, buf + got, size - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    return got;
}

static void *flood(void *arg)
{
    (void)arg;
    for (;;) {
        int i = __atomic_fetch_add(&next_g, 1, __ATOMIC_SEQ_CST);
        if (i >= UPLOADS)
            return NULL;
        int fd = dial();
        if (fd < 0)
            continue;
        char hdr[256];
        int n = snprintf(hdr, sizeof(hdr),
                         "POST /v1/ingest HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\n"
                         "Content-Length: %d\r\n%s\r\n",
                         UPLOAD, i % 2 ? "" : "Expect: 100-continue\r\n");
        send_all(fd, hdr, (size_t)n);
        if (i % 2)
            for (int k = 0; k < UPLOAD / (int)sizeof(chunk_g); k++)
                send_all(fd, chunk_g, sizeof(chunk_g));
        char buf[4096];
        read_answer(fd, buf, sizeof(buf));
        __atomic_add_fetch(strncmp(buf, "HTTP/1.1 401", 12) == 0 ? &ok_g : &other_g, 1,
                           __ATOMIC_SEQ_CST);
        close(fd);
    }
}

/* gzip of {"metrics":[0,0,...,0]} inflating to about 64 MiB, deflated in
 * 1 MiB steps so that the text never exists whole. */
static unsigned char *zeros_gzip(size_t *len)
{
    size_t cap = 4 * 1024 * 1024;
    unsigned char *out = malloc(cap);
    z_stream z;
    memset(&z, 0, sizeof(z));
    deflateInit2(&z, 9, Z_DEFLATED, 31, 9, Z_DEFAULT_STRATEGY);
    static char step[1024 * 1024];
    for (size_t i = 0; i < sizeof(step); i += 2) {
        step[i] = '0';
        step[i + 1] = ',';
    }
    z.next_out = out;
    z.avail_out = (uInt)cap;
    z.next_in = (unsigned char *)"{\"metrics\":[";
    z.avail_in = 12;
    deflate(&z, Z_NO_FLUSH);
    for (int k = 0; k < 64; k++) { /* 64 MiB less 64 bytes in all: under max_inflated */
        z.next_in = (unsigned char *)step;
        z.avail_in = k < 63 ? sizeof(step) : sizeof(step) - 80;
        deflate(&z, Z_NO_FLUSH);
    }
    z.next_in = (unsigned char *)"0]}";
    z.avail_in = 3;
    deflate(&z, Z_FINISH);
    *len = z.total_out;
    deflateEnd(&z);
    return out;
}

int main(void)
{
    vigil_hub_options ho = VIGIL_HUB_OPTIONS_INIT;
    ho.store_url = "sqlite::memory:";
    ho.logger.min_level = VIGIL_LOG_OFF;
    vigil_hub *hub = NULL;
    if (vigil_hub_new(&hub, &ho) || vigil_hub_start(hub)) {
        fprintf(stderr, "hub: %s\n", vigil_error_last()->message);
        return 1;
    }
    setenv("BENCH_INGEST_TOKEN", TOKEN, 1);
    vigil_api_token tok = {"agents", "BENCH_INGEST_TOKEN", NULL, VIGIL_API_SCOPE_INGEST};
    vigil_api_options ao = VIGIL_API_OPTIONS_INIT;
    ao.tokens = &tok;
    ao.ntokens = 1;
    ao.logger.min_level = VIGIL_LOG_OFF;
    vigil_api *api = NULL;
    vigil_httpd *httpd = NULL;
    vigil_httpd_options so = VIGIL_HTTPD_OPTIONS_INIT;
    so.listen = "127.0.0.1:0";
    so.threads = 2;
    so.logger.min_level = VIGIL_LOG_OFF;
    if (vigil_api_new(&api, &ao) || vigil_hub_mount(hub, api) ||
        vigil_httpd_new(&httpd, api, &so) || vigil_httpd_start(httpd)) {
        fprintf(stderr, "server: %s\n", vigil_error_last()->message);
        return 1;
    }
    port_g = vigil_httpd_port(httpd);
    memset(chunk_g, '0', sizeof(chunk_g));
    size_t gzlen = 0;
    unsigned char *gz = zeros_gzip(&gzlen);

    long rss0 = status_kib("VmRSS:"), hwm0 = status_kib("VmHWM:");
    pthread_t th[CONNS];
    for (int i = 0; i < CONNS; i++)
        pthread_create(&th[i], NULL, flood, NULL);
    for (int i = 0; i < CONNS; i++)
        pthread_join(th[i], NULL);
    long rss1 = status_kib("VmRSS:"), hwm1 = status_kib("VmHWM:");
    printf("unauthenticated uploads: %d x 8 MiB over %d connections: 401 x %d, other %d\n", UPLOADS,
           CONNS, ok_g, other_g);
    printf("  server buffered-body peak: %llu bytes\n",
           (unsigned long long)vigil_httpd_buffered_peak(httpd));
    printf("  VmRSS %ld -> %ld KiB (+%ld), VmHWM %ld -> %ld KiB (+%ld)\n", rss0, rss1, rss1 - rss0,
           hwm0, hwm1, hwm1 - hwm0);

    char req[512], buf[4096];
    int hn = snprintf(req, sizeof(req),
                      "POST /v1/ingest HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\n"
                      "Content-Encoding: gzip\r\nAuthorization: Bearer " TOKEN "\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                      gzlen);
    long hwm2 = status_kib("VmHWM:");
    for (int i = 0; i < 10; i++) {
        int fd = dial();
        send_all(fd, req, (size_t)hn);
        send_all(fd, gz, gzlen);
        read_answer(fd, buf, sizeof(buf));
        close(fd);
    }
    long hwm3 = status_kib("VmHWM:");
    char *body = strstr(buf, "\r\n\r\n");
    printf("gzip of zeros: %zu bytes inflating to 64 MiB, 10 posts: %.12s %s\n", gzlen, buf,
           body ? body + 4 : "");
    printf("  VmHWM %ld -> %ld KiB (+%ld)\n", hwm2, hwm3, hwm3 - hwm2);
    free(gz);
    vigil_httpd_quiesce(httpd);
    vigil_hub_stop(hub);
    vigil_httpd_free(httpd);
    vigil_api_free(api);
    vigil_hub_free(hub);
    return 0;
}
