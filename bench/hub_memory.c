/* hub_memory: the hub's memory at fleet shape, measured on the real daemon.
 *
 * Runs vigil-collector of this build (build/bin, beside build/bench) from the
 * shipped configs/collector.yaml (its inline policies) plus the shipped
 * configs/policies (policies_dir), copied into a temporary directory with a
 * free port, its store a SQLite file there, and no remediator listening
 * (requests of policies fail; they are few). A fleet of agents (default
 * 100) each sends its own series (default 1,000 per agent: 100,000 in all),
 * one sample per series per interval (default 10 s), as one batch a
 * interval per agent spread evenly over the interval, on 8 connections.
 *
 * Each agent's 1,000 series look like a host's: process_up of 10 processes
 * (api and demo among them: the shipped api_down and demo_down watch those),
 * http_up of 5 checks (demo_health: demo_hung), http_latency_ms of 5 checks
 * (latency_spike, an anomaly rule over 30 min), replicas_running of 2
 * services (api_replicas), disk_used_ratio of 4 mounts (disk_filling, a change
 * rule: no window) and node_stat series for the rest (no rule).
 *
 * Every minute and at the end it prints the hub's VmRSS and VmHWM
 * (/proc/<pid>/status) and, from its /metrics, the windows gauges
 * (vigil_windows, vigil_windows_memory_bytes, vigil_windows_unwatched_series,
 * vigil_windows_refused_series; "-" when the hub has no such gauge), series
 * and the store's unfolded bytes. Figures, never pass/fail; only a set-up
 * failure exits non-zero.
 *
 *   build/bench/hub_memory          (make bench runs it from the tree's top)
 *   HUB_MEMORY_SECONDS=N            duration (default 600)
 *   HUB_MEMORY_AGENTS=N             agents (default 100, 1 to 10,000)
 *   HUB_MEMORY_SERIES=N             series per agent (default 1,000, 30 to 100,000)
 *   HUB_MEMORY_INTERVAL=N           seconds between two samples of a series (default 10)
 *   HUB_MEMORY_KEEP=1               keep the temporary directory (log, store)
 *   VIGIL_SRCDIR=dir                where configs/ is (default: the working directory)
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define CONNS 8

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void die(const char *what)
{
    fprintf(stderr, "hub_memory: %s\n", what);
    exit(1);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *b = NULL;
    size_t n = 0;
    FILE *m = open_memstream(&b, &n);
    int c;
    while ((c = fgetc(f)) != EOF)
        fputc(c, m);
    fclose(f);
    fclose(m);
    if (len)
        *len = n;
    return b;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    size_t len = strlen(text);
    if (!f || fwrite(text, 1, len, f) != len || fclose(f) != 0)
        die("cannot write a file in the temporary directory");
}

static long env_num(const char *name, long dflt, long lo, long hi)
{
    const char *e = getenv(name);
    if (!e)
        return dflt;
    char *end = NULL;
    long v = strtol(e, &end, 10);
    if (!end || *end || v < lo || v > hi) {
        fprintf(stderr, "hub_memory: %s: expected %ld to %ld\n", name, lo, hi);
        exit(1);
    }
    return v;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sa);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0)
        die("cannot find a free port");
    close(fd);
    return ntohs(sa.sin_port);
}

static void secret(const char *name)
{
    unsigned char b[32];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, b, sizeof(b)) != (ssize_t)sizeof(b))
        die("cannot read /dev/urandom");
    close(fd);
    char hex[65];
    for (size_t i = 0; i < sizeof(b); i++)
        snprintf(hex + 2 * i, 3, "%02x", b[i]);
    setenv(name, hex, 1);
}

/* configs/collector.yaml with the ports 7600 (hub) and 7601 (remediator)
 * replaced, and the shipped policies_dir. */
static char *hub_config(const char *src, int hub_port, int rem_port)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/configs/collector.yaml", src);
    size_t len;
    char *text = slurp(path, &len);
    if (!text) {
        fprintf(stderr, "hub_memory: cannot read %s (run from the tree's top)\n", path);
        exit(1);
    }
    char *out = NULL;
    size_t olen = 0;
    FILE *m = open_memstream(&out, &olen);
    for (size_t i = 0; i < len;) {
        int k = strncmp(text + i, "7600", 4) == 0 ? 0 : strncmp(text + i, "7601", 4) == 0 ? 1 : -1;
        if (k >= 0 && (i == 0 || text[i - 1] < '0' || text[i - 1] > '9') &&
            (i + 4 >= len || text[i + 4] < '0' || text[i + 4] > '9')) {
            fprintf(m, "%d", k == 0 ? hub_port : rem_port);
            i += 4;
        } else {
            fputc(text[i++], m);
        }
    }
    char abs[PATH_MAX];
    snprintf(path, sizeof(path), "%s/configs/policies", src);
    if (!realpath(path, abs))
        die("cannot find configs/policies");
    fprintf(m, "\npolicies_dir: %s\n", abs);
    fclose(m);
    free(text);
    return out;
}

typedef struct hub_proc {
    pid_t pid;
    char log[PATH_MAX];
} hub_proc;

static void start_hub(hub_proc *h, const char *dir, const char *bin)
{
    char prog[PATH_MAX + 32], cfg[PATH_MAX];
    snprintf(prog, sizeof(prog), "%s/vigil-collector", bin);
    snprintf(cfg, sizeof(cfg), "%s/collector.yaml", dir);
    snprintf(h->log, sizeof(h->log), "%s/collector.log", dir);
    char *argv[] = {prog, "--config", cfg, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, h->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_addchdir_np(&fa, dir);
    if (posix_spawn(&h->pid, prog, &fa, NULL, argv, environ) != 0) {
        fprintf(stderr, "hub_memory: cannot start %s (run make first)\n", prog);
        exit(1);
    }
    posix_spawn_file_actions_destroy(&fa);
    for (int64_t end = mono_ms() + 30000; mono_ms() < end;) {
        char *s = slurp(h->log, NULL);
        int up = s && strstr(s, "msg=listening") != NULL;
        free(s);
        if (up)
            return;
        int st;
        if (waitpid(h->pid, &st, WNOHANG) == h->pid) {
            fprintf(stderr, "hub_memory: vigil-collector exited; its log is %s\n", h->log);
            exit(1);
        }
        usleep(10000);
    }
    fprintf(stderr, "hub_memory: vigil-collector did not start; its log is %s\n", h->log);
    exit(1);
}

static void stop_hub(hub_proc *h)
{
    kill(h->pid, SIGTERM);
    int st;
    for (int i = 0; i < 6000 && waitpid(h->pid, &st, WNOHANG) != h->pid; i++)
        usleep(10000);
    kill(h->pid, SIGKILL);
    waitpid(h->pid, &st, WNOHANG);
}

/* kB of a /proc/<pid>/status field ("VmRSS:"), or -1. */
static long status_kb(pid_t pid, const char *field)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    char *s = slurp(path, NULL);
    long v = -1;
    const char *at = s ? strstr(s, field) : NULL;
    if (at)
        v = strtol(at + strlen(field), NULL, 10);
    free(s);
    return v;
}

typedef struct sink {
    char *p;
    size_t n, cap;
} sink;

static size_t sink_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    sink *s = ud;
    size_t n = size * nmemb;
    if (s->n + n + 1 > s->cap) {
        size_t nc = (s->n + n + 1) * 2;
        char *np = realloc(s->p, nc);
        if (!np)
            return 0;
        s->p = np;
        s->cap = nc;
    }
    memcpy(s->p + s->n, ptr, n);
    s->n += n;
    s->p[s->n] = '\0';
    return n;
}

/* A gauge of the metrics text as printed ("-" when absent). */
static void gauge(char *out, size_t size, const char *text, const char *name)
{
    char pat[128];
    snprintf(pat, sizeof(pat), "\n%s ", name);
    const char *at = text ? strstr(text, pat) : NULL;
    if (!at) {
        snprintf(out, size, "-");
        return;
    }
    double v = strtod(at + strlen(pat), NULL);
    snprintf(out, size, "%.0f", v);
}

static char *fetch_metrics(int port)
{
    CURL *c = curl_easy_init();
    if (!c)
        return NULL;
    char url[128], auth[160];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", getenv("VIGIL_READ_TOKEN"));
    struct curl_slist *h = curl_slist_append(NULL, auth);
    sink s = {NULL, 0, 0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        free(s.p);
        return NULL;
    }
    return s.p;
}

static void report(pid_t pid, int port, double secs, uint64_t acked, uint64_t failed)
{
    char *m = fetch_metrics(port);
    char win[32], wbytes[32], unw[32], ref[32], series[32], unf[32];
    gauge(win, sizeof(win), m, "vigil_windows");
    gauge(wbytes, sizeof(wbytes), m, "vigil_windows_memory_bytes");
    gauge(unw, sizeof(unw), m, "vigil_windows_unwatched_series");
    gauge(ref, sizeof(ref), m, "vigil_windows_refused_series");
    gauge(series, sizeof(series), m, "vigil_series");
    gauge(unf, sizeof(unf), m, "vigil_store_unfolded_bytes");
    free(m);
    long rss = status_kb(pid, "VmRSS:"), hwm = status_kb(pid, "VmHWM:");
    printf("%6.0f s  rss %7.1f MiB  hwm %7.1f MiB  samples %10llu (failed %llu)  series %s  "
           "windows %s (%s bytes)  unwatched %s  refused %s  unfolded %s bytes\n",
           secs, rss / 1024.0, hwm / 1024.0, (unsigned long long)acked, (unsigned long long)failed,
           series, win, wbytes, unw, ref, unf);
    fflush(stdout);
}

/* ---- the fleet ------------------------------------------------------------------- */

typedef struct conn {
    CURL *c;
    struct curl_slist *hdr;
    char *body;
    size_t cap;
    int busy;
    sink resp;
} conn;

/* The JSON batch of agent a (its series, one sample each at ts). */
static size_t build_body(conn *k, int a, long nseries, uint64_t seq, int64_t ts)
{
    static const char *const procs[] = {"api",   "demo",  "sshd", "cron",   "nginx",
                                        "redis", "agent", "ntpd", "docker", "postgres"};
    static const char *const checks[] = {"demo_health", "home", "login", "search", "checkout"};
    static const char *const services[] = {"api", "web"};
    static const char *const mounts[] = {"/", "/var", "/home", "/data"};
    size_t need = (size_t)nseries * 120 + 256;
    if (k->cap < need) {
        free(k->body);
        k->body = malloc(need);
        if (!k->body)
            die("out of memory");
        k->cap = need;
    }
    char *p = k->body, *end = k->body + k->cap;
    p += snprintf(p, (size_t)(end - p),
                  "{\"agent\":\"host%04d\",\"batch_id\":\"m-%d-%llu\",\"metrics\":[", a, a,
                  (unsigned long long)seq);
    long i = 0;
#define ADD(...)                                                 \
    do {                                                         \
        p += snprintf(p, (size_t)(end - p), "%s", i ? "," : ""); \
        p += snprintf(p, (size_t)(end - p), __VA_ARGS__);        \
        i++;                                                     \
    } while (0)
    for (size_t j = 0; j < 10; j++)
        ADD("{\"name\":\"process_up\",\"value\":1,\"ts\":%lld,\"tags\":{\"host\":\"host%04d\","
            "\"process\":\"%s\"}}",
            (long long)ts, a, procs[j]);
    for (size_t j = 0; j < 5; j++)
        ADD("{\"name\":\"http_up\",\"value\":1,\"ts\":%lld,\"tags\":{\"host\":\"host%04d\","
            "\"check\":\"%s\"}}",
            (long long)ts, a, checks[j]);
    for (size_t j = 0; j < 5; j++)
        ADD("{\"name\":\"http_latency_ms\",\"value\":%.1f,\"ts\":%lld,\"tags\":{\"host\":"
            "\"host%04d\",\"check\":\"%s\"}}",
            40.0 + (double)((seq * 7 + j * 13 + (uint64_t)a) % 10), (long long)ts, a, checks[j]);
    for (size_t j = 0; j < 2; j++)
        ADD("{\"name\":\"replicas_running\",\"value\":3,\"ts\":%lld,\"tags\":{\"host\":"
            "\"host%04d\",\"service\":\"%s\"}}",
            (long long)ts, a, services[j]);
    for (size_t j = 0; j < 4; j++)
        ADD("{\"name\":\"disk_used_ratio\",\"value\":0.42,\"ts\":%lld,\"tags\":{\"host\":"
            "\"host%04d\",\"mount\":\"%s\"}}",
            (long long)ts, a, mounts[j]);
    for (long j = 0; i < nseries; j++)
        ADD("{\"name\":\"node_stat\",\"value\":%lld,\"ts\":%lld,\"tags\":{\"host\":\"host%04d\","
            "\"i\":\"%ld\"}}",
            (long long)((seq + (uint64_t)j) % 1000), (long long)ts, a, j);
#undef ADD
    p += snprintf(p, (size_t)(end - p), "]}");
    return (size_t)(p - k->body);
}

int main(void)
{
    char self[PATH_MAX], bin[PATH_MAX + 8];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        die("cannot find its own path");
    self[n] = '\0';
    *strrchr(self, '/') = '\0'; /* build/bench */
    *strrchr(self, '/') = '\0'; /* build */
    snprintf(bin, sizeof(bin), "%s/bin", self);
    long seconds = env_num("HUB_MEMORY_SECONDS", 600, 1, 7 * 24 * 3600);
    long agents = env_num("HUB_MEMORY_AGENTS", 100, 1, 10000);
    long nseries = env_num("HUB_MEMORY_SERIES", 1000, 30, 100000);
    long interval = env_num("HUB_MEMORY_INTERVAL", 10, 1, 3600);
    const char *src = getenv("VIGIL_SRCDIR") ? getenv("VIGIL_SRCDIR") : ".";
    static const char *const secrets[] = {"VIGIL_INGEST_TOKEN", "VIGIL_READ_TOKEN",
                                          "VIGIL_REMEDIATOR_SECRET", "VIGIL_REMEDIATOR_HUB_TOKEN",
                                          "VIGIL_ADMIN_TOKEN"};
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
        secret(secrets[i]);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    char tmpl[] = "/tmp/vigil-hub-memory-XXXXXX";
    char *dir = mkdtemp(tmpl);
    if (!dir)
        die("cannot create a temporary directory");
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/var", dir);
    mkdir(path, 0700);
    int port = free_port();
    char *cfg = hub_config(src, port, free_port());
    snprintf(path, sizeof(path), "%s/collector.yaml", dir);
    write_text(path, cfg);
    free(cfg);
    hub_proc h;
    start_hub(&h, dir, bin);
    printf("hub_memory: vigil-collector (pid %d) with configs/collector.yaml and "
           "configs/policies; %ld agents x %ld series = %ld series, one sample each every %ld s, "
           "for %ld s (load average at start: ",
           (int)h.pid, agents, nseries, agents * nseries, interval, seconds);
    char *la = slurp("/proc/loadavg", NULL);
    if (la) {
        la[strcspn(la, "\n")] = '\0';
        printf("%s", la);
    }
    free(la);
    printf(")\n");
    report(h.pid, port, 0, 0, 0);

    CURLM *multi = curl_multi_init();
    conn conns[CONNS];
    memset(conns, 0, sizeof(conns));
    char url[128], auth[160];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/ingest", port);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", getenv("VIGIL_INGEST_TOKEN"));
    for (int i = 0; i < CONNS; i++) {
        conns[i].c = curl_easy_init();
        conns[i].hdr = curl_slist_append(NULL, auth);
        conns[i].hdr = curl_slist_append(conns[i].hdr, "Content-Type: application/json");
        if (!conns[i].c || !conns[i].hdr)
            die("cannot create a curl handle");
        curl_easy_setopt(conns[i].c, CURLOPT_URL, url);
        curl_easy_setopt(conns[i].c, CURLOPT_HTTPHEADER, conns[i].hdr);
        curl_easy_setopt(conns[i].c, CURLOPT_WRITEFUNCTION, sink_write);
        curl_easy_setopt(conns[i].c, CURLOPT_WRITEDATA, &conns[i].resp);
        curl_easy_setopt(conns[i].c, CURLOPT_PRIVATE, &conns[i]);
        curl_easy_setopt(conns[i].c, CURLOPT_TIMEOUT, 60L);
    }
    int64_t t0 = mono_ms(), end = t0 + seconds * 1000;
    int64_t step =
        interval * 1000 / agents; /* agent a's batch k is due at t0 + k*interval + a*step */
    if (step < 1)
        step = 1;
    uint64_t next = 0; /* requests made: batch next / agents of agent next % agents */
    uint64_t acked = 0, failed = 0;
    int64_t next_report = t0 + 60000;
    int running = 0;
    for (;;) {
        int64_t now = mono_ms();
        uint64_t round = next / (uint64_t)agents;
        int a = (int)(next % (uint64_t)agents);
        int64_t due = t0 + (int64_t)round * interval * 1000 + a * step;
        while (due <= now && due < end) {
            conn *k = NULL;
            for (int i = 0; i < CONNS && !k; i++)
                if (!conns[i].busy)
                    k = &conns[i];
            if (!k)
                break; /* behind: the next free connection takes it */
            size_t len = build_body(k, a, nseries, round, wall_ms());
            curl_easy_setopt(k->c, CURLOPT_POSTFIELDS, k->body);
            curl_easy_setopt(k->c, CURLOPT_POSTFIELDSIZE, (long)len);
            k->resp.n = 0;
            k->busy = 1;
            curl_multi_add_handle(multi, k->c);
            next++;
            round = next / (uint64_t)agents;
            a = (int)(next % (uint64_t)agents);
            due = t0 + (int64_t)round * interval * 1000 + a * step;
        }
        curl_multi_perform(multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            conn *k = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&k);
            long code = 0;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
            if (msg->data.result == CURLE_OK && code == 202)
                acked += (uint64_t)nseries;
            else if (failed++ == 0)
                fprintf(stderr, "hub_memory: a batch was answered %ld (%s): %.300s\n", code,
                        curl_easy_strerror(msg->data.result), k->resp.p ? k->resp.p : "");
            curl_multi_remove_handle(multi, msg->easy_handle);
            k->busy = 0;
        }
        now = mono_ms();
        if (now >= next_report) {
            report(h.pid, port, (double)(now - t0) / 1000.0, acked, failed);
            next_report += 60000;
        }
        if (now >= end && running == 0)
            break;
        int64_t wait = due - now;
        if (next_report - now < wait)
            wait = next_report - now;
        if (wait > 100)
            wait = 100;
        if (wait < 0)
            wait = 0;
        curl_multi_poll(multi, NULL, 0, (int)wait, NULL);
    }
    printf("end:\n");
    report(h.pid, port, (double)(mono_ms() - t0) / 1000.0, acked, failed);
    for (int i = 0; i < CONNS; i++) {
        curl_slist_free_all(conns[i].hdr);
        curl_easy_cleanup(conns[i].c);
        free(conns[i].body);
        free(conns[i].resp.p);
    }
    curl_multi_cleanup(multi);
    stop_hub(&h);
    curl_global_cleanup();
    if (getenv("HUB_MEMORY_KEEP")) {
        printf("hub_memory: the hub's log and store are in %s\n", dir);
    } else {
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    return 0;
}
