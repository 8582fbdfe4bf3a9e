/* e2e_heal: the whole healing loop, measured with the real daemons.
 *
 * Runs vigil-remediator, vigil-collector and vigil-agent of this build
 * (build/bin, beside build/bench) from the shipped configs (yaml files), copied
 * into a temporary directory with free ports instead of 7600, 7601 and 7680
 * and a budget sized for this benchmark (guards max_attempts 1000 within the
 * window, rate_limit 6000/min, instead of the demo's 10 and 30/min). The loop
 * starts vigil-demo-service by itself; then:
 *
 *   1. 50 kills: SIGKILL the demo, wait until a new process accepts TCP
 *      connections on its port, wait 500 ms (the hub sees it up), again.
 *   2. A service that dies again 300 ms after each start
 *      (vigil-demo-service --die-after 300): 50 crashes, each from the exit
 *      (seen through a pidfd) to the next process accepting connections.
 *
 * For each it prints p50/p90/p99/max of fault -> new process accepting
 * connections (monotonic clock: once the old process is gone, seen through
 * its pidfd, a connect() to the port every 100 us; the first that succeeds
 * reaches the new process) and of fault -> start
 * of the action (the remediator's ledger: `requested` of its execution, wall
 * clock in ms). It never fails on time: a heal not seen within 30 s is
 * counted as missed and reported; only a set-up failure exits non-zero.
 *
 *   build/bench/e2e_heal            (make bench runs it from the tree's top)
 *   E2E_KILLS=N                     faults per phase (default 50, 1 to 1000)
 */
#include <cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define HEAL_WAIT_MS 30000
#define SETTLE_MS    500
#define MAX_FAULTS   1000

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void die(const char *what)
{
    fprintf(stderr, "e2e_heal: %s\n", what);
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

static void write_text(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(text, 1, len, f) != len || fclose(f) != 0)
        die("cannot write a file in the temporary directory");
}

/* Replaces the first `from` in *text by `to` (the text is reallocated). */
static void replace(char **text, const char *from, const char *to, const char *file)
{
    char *at = strstr(*text, from);
    if (!at) {
        fprintf(stderr, "e2e_heal: configs/%s no longer holds \"%s\"; update bench/e2e_heal.c\n",
                file, from);
        exit(1);
    }
    size_t head = (size_t)(at - *text), fl = strlen(from), tl = strlen(to);
    size_t rest = strlen(at + fl);
    char *out = malloc(head + tl + rest + 1);
    if (!out)
        die("out of memory");
    memcpy(out, *text, head);
    memcpy(out + head, to, tl);
    memcpy(out + head + tl, at + fl, rest + 1);
    free(*text);
    *text = out;
}

/* configs/<name> with the shipped ports replaced by ports[] (whole numbers only). */
static char *shipped_config(const char *name, const int ports[3])
{
    static const char *const shipped[3] = {"7600", "7601", "7680"};
    char path[PATH_MAX];
    const char *src = getenv("VIGIL_SRCDIR");
    snprintf(path, sizeof(path), "%s/configs/%s", src ? src : ".", name);
    size_t len;
    char *text = slurp(path, &len);
    if (!text) {
        fprintf(stderr, "e2e_heal: cannot read %s (run from the tree's top)\n", path);
        exit(1);
    }
    char *out = NULL;
    size_t olen = 0;
    FILE *m = open_memstream(&out, &olen);
    for (size_t i = 0; i < len;) {
        int k = 0;
        while (k < 3 && strncmp(text + i, shipped[k], 4) != 0)
            k++;
        if (k < 3 && (i == 0 || text[i - 1] < '0' || text[i - 1] > '9') &&
            (i + 4 >= len || text[i + 4] < '0' || text[i + 4] > '9')) {
            fprintf(m, "%d", ports[k]);
            i += 4;
        } else {
            fputc(text[i++], m);
        }
    }
    fclose(m);
    free(text);
    return out;
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

/* True when something accepts a TCP connection on 127.0.0.1:port. */
static int accepting(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

typedef struct daemon_proc {
    pid_t pid;
    char log[PATH_MAX];
} daemon_proc;

static void start(daemon_proc *d, const char *dir, const char *bin, const char *name,
                  const char *config, int wait_listen)
{
    char prog[PATH_MAX], cfg[PATH_MAX];
    snprintf(prog, sizeof(prog), "%s/vigil-%s", bin, name);
    snprintf(cfg, sizeof(cfg), "%s/%s", dir, config);
    snprintf(d->log, sizeof(d->log), "%s/%s.log", dir, name);
    char *argv[] = {prog, "--config", cfg, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, d->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_addchdir_np(&fa, dir);
    if (posix_spawn(&d->pid, prog, &fa, NULL, argv, environ) != 0) {
        fprintf(stderr, "e2e_heal: cannot start %s (run make first)\n", prog);
        exit(1);
    }
    posix_spawn_file_actions_destroy(&fa);
    for (int64_t end = mono_us() + 20000000; wait_listen && mono_us() < end;) {
        char *s = slurp(d->log, NULL);
        int up = s && strstr(s, "msg=listening") != NULL;
        free(s);
        if (up)
            return;
        int st;
        if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
            fprintf(stderr, "e2e_heal: vigil-%s exited; its log is %s\n", name, d->log);
            exit(1);
        }
        usleep(10000);
    }
    if (wait_listen) {
        fprintf(stderr, "e2e_heal: vigil-%s did not start; its log is %s\n", name, d->log);
        exit(1);
    }
}

static void stop(daemon_proc *d)
{
    if (d->pid <= 0)
        return;
    kill(d->pid, SIGTERM);
    int st;
    for (int i = 0; i < 1000 && waitpid(d->pid, &st, WNOHANG) != d->pid; i++)
        usleep(10000);
    kill(d->pid, SIGKILL);
    waitpid(d->pid, &st, WNOHANG);
    d->pid = 0;
}

/* The live pid var/demo.pid names ("PID STARTTIME"), other than `old`; 0 if none. */
static pid_t demo_pid(const char *pidfile, pid_t old)
{
    char *s = slurp(pidfile, NULL);
    long pid = s ? strtol(s, NULL, 10) : 0;
    free(s);
    if (pid <= 0 || pid == old || kill((pid_t)pid, 0) != 0)
        return 0;
    return (pid_t)pid;
}

/* Waits until the old demo is gone (its pidfd, -1: already gone) and then
 * until something accepts on `port`: a new process, since the old one's
 * socket closed with it. Returns the time it accepted (mono us) or 0. */
static int64_t wait_accepting(int old_pidfd, int port, int64_t t0_us)
{
    if (old_pidfd >= 0) {
        struct pollfd pf = {old_pidfd, POLLIN, 0};
        poll(&pf, 1, HEAL_WAIT_MS);
    }
    while (mono_us() - t0_us < (int64_t)HEAL_WAIT_MS * 1000) {
        if (accepting(port))
            return mono_us();
        usleep(100);
    }
    return 0;
}

/* Waits (untimed: the pidfile is written after the start) until the pidfile
 * names a live demo other than `old`; its pid or 0 after 30 s. */
static pid_t wait_pid(const char *pidfile, pid_t old)
{
    for (int64_t end = mono_us() + (int64_t)HEAL_WAIT_MS * 1000; mono_us() < end;) {
        pid_t p = demo_pid(pidfile, old);
        if (p)
            return p;
        usleep(200);
    }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void print_stats(const char *what, double *v, size_t n, size_t missed,
                        const char *missed_what)
{
    if (!n) {
        printf("e2e_heal: %-44s no sample (%zu missed)\n", what, missed);
        return;
    }
    qsort(v, n, sizeof(*v), cmp_double);
#define RANK(p) \
    v[(size_t)((p) * (double)n + 0.999999) > 0 ? (size_t)((p) * (double)n + 0.999999) - 1 : 0]
    printf("e2e_heal: %-44s n=%zu p50 %7.2f ms  p90 %7.2f ms  p99 %7.2f ms  max %7.2f ms", what, n,
           RANK(0.50), RANK(0.90), RANK(0.99), v[n - 1]);
#undef RANK
    if (missed)
        printf("  (%zu %s)", missed, missed_what);
    printf("\n");
    fflush(stdout);
}

/* ---- the remediator's ledger -------------------------------------------------------- */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    FILE *m = ud;
    return fwrite(p, size, n, m);
}

/* `requested` (wall ms) of every execution of restart_demo, ascending. */
static size_t ledger_starts(int port, int64_t *out, size_t max)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/actions?since=0&limit=1000", port);
    char *body = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&body, &len);
    CURL *c = curl_easy_init();
    char auth[200];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", getenv("VIGIL_ADMIN_TOKEN"));
    struct curl_slist *hdr = curl_slist_append(NULL, auth);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, m);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_cleanup(c);
    curl_slist_free_all(hdr);
    fclose(m);
    size_t n = 0;
    cJSON *j = rc == CURLE_OK ? cJSON_Parse(body) : NULL;
    cJSON *e, *list = j ? cJSON_GetObjectItem(j, "executions") : NULL;
    cJSON_ArrayForEach(e, list)
    {
        cJSON *a = cJSON_GetObjectItem(e, "action"), *r = cJSON_GetObjectItem(e, "requested");
        if (n < max && cJSON_IsString(a) && !strcmp(a->valuestring, "restart_demo") &&
            cJSON_IsNumber(r))
            out[n++] = (int64_t)r->valuedouble;
    }
    cJSON_Delete(j);
    free(body);
    for (size_t i = 1; i < n; i++) /* insertion sort: they come nearly sorted */
        for (size_t k = i; k > 0 && out[k - 1] > out[k]; k--) {
            int64_t t = out[k];
            out[k] = out[k - 1];
            out[k - 1] = t;
        }
    return n;
}

/* For each fault (wall ms), the first action start at or after it (ms
 * resolution: one ms early is the same ms), before the next fault. */
static size_t match_starts(const int64_t *fault_ms, size_t nfault, const int64_t *starts,
                           size_t nstarts, double *out)
{
    size_t n = 0, k = 0;
    for (size_t i = 0; i < nfault; i++) {
        while (k < nstarts && starts[k] < fault_ms[i])
            k++;
        if (k < nstarts && (i + 1 == nfault || starts[k] < fault_ms[i + 1]))
            out[n++] = (double)(starts[k] - fault_ms[i]);
    }
    return n;
}

/* ---- one phase ------------------------------------------------------------------------ */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void phase(const char *bin, int die_after_ms, size_t faults)
{
    char dir[] = "/tmp/vigil-e2e-XXXXXX", path[PATH_MAX], pidfile[PATH_MAX];
    if (!mkdtemp(dir))
        die("cannot create a temporary directory");
    snprintf(path, sizeof(path), "%s/var", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/build", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/build/bin", dir);
    mkdir(path, 0755);
    /* the demo program where the shipped remediator.yaml starts it
     * (./build/bin), a copy (the remediator refuses a program others may write) */
    char demo_src[PATH_MAX];
    snprintf(demo_src, sizeof(demo_src), "%s/vigil-demo-service", bin);
    size_t plen;
    char *prog = slurp(demo_src, &plen);
    if (!prog)
        die("build/bin/vigil-demo-service is missing: run make first");
    snprintf(path, sizeof(path), "%s/build/bin/vigil-demo-service", dir);
    write_text(path, prog, plen);
    free(prog);
    chmod(path, 0755);
    snprintf(pidfile, sizeof(pidfile), "%s/var/demo.pid", dir);

    int ports[3] = {free_port(), free_port(), free_port()};
    char *rem = shipped_config("remediator.yaml", ports);
    replace(&rem, "max_attempts: 10 ", "max_attempts: 1000", "remediator.yaml");
    replace(&rem, "rate_limit: 30/min", "rate_limit: 6000/min", "remediator.yaml");
    if (die_after_ms) {
        char from[64], to[96];
        snprintf(from, sizeof(from), "\"--port\", \"%d\"]", ports[2]);
        snprintf(to, sizeof(to), "\"--port\", \"%d\", \"--die-after\", \"%d\"]", ports[2],
                 die_after_ms);
        replace(&rem, from, to, "remediator.yaml");
    }
    snprintf(path, sizeof(path), "%s/remediator.yaml", dir);
    write_text(path, rem, strlen(rem));
    free(rem);
    char *hub = shipped_config("collector.yaml", ports);
    snprintf(path, sizeof(path), "%s/collector.yaml", dir);
    write_text(path, hub, strlen(hub));
    free(hub);
    char *agent = shipped_config("agent.yaml", ports);
    snprintf(path, sizeof(path), "%s/agent.yaml", dir);
    write_text(path, agent, strlen(agent));
    free(agent);

    daemon_proc r, h, a;
    start(&r, dir, bin, "remediator", "remediator.yaml", 1);
    start(&h, dir, bin, "collector", "collector.yaml", 1);
    start(&a, dir, bin, "agent", "agent.yaml", 0);

    double *heal = calloc(faults, sizeof(double)), *act = calloc(faults, sizeof(double));
    int64_t *fault_ms = calloc(faults, sizeof(int64_t));
    int64_t *starts = calloc(4 * faults + 16, sizeof(int64_t));
    if (!heal || !act || !fault_ms || !starts)
        die("out of memory");
    size_t nheal = 0, missed = 0, nfault = 0;

    /* the loop starts the demo by itself */
    pid_t pid = wait_pid(pidfile, 0);
    if (!pid || !wait_accepting(-1, ports[2], mono_us())) {
        fprintf(stderr, "e2e_heal: the loop did not start vigil-demo-service; logs in %s\n", dir);
        exit(1);
    }
    int64_t begin = wall_ms();
    for (size_t i = 0; i < faults; i++) {
        int64_t t0;
        int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (die_after_ms) {
            /* the crash itself, seen at once through the pidfd */
            if (pfd >= 0) {
                struct pollfd pf = {pfd, POLLIN, 0};
                poll(&pf, 1, HEAL_WAIT_MS);
            }
            t0 = mono_us();
            fault_ms[nfault++] = wall_ms();
        } else {
            usleep(SETTLE_MS * 1000);
            fault_ms[nfault++] = wall_ms();
            t0 = mono_us();
            kill(pid, SIGKILL);
        }
        int64_t t1 = wait_accepting(pfd, ports[2], t0);
        if (pfd >= 0)
            close(pfd);
        if (t1)
            heal[nheal++] = (double)(t1 - t0) / 1000.0;
        else
            missed++;
        pid_t next = wait_pid(pidfile, pid);
        if (!next) {
            fprintf(stderr, "e2e_heal: no demo runs any more; logs in %s\n", dir);
            break;
        }
        pid = next;
    }
    size_t nstarts = ledger_starts(ports[1], starts, 4 * faults + 16);
    size_t nact = match_starts(fault_ms, nfault, starts, nstarts, act);
    char what[96];
    if (die_after_ms) {
        snprintf(what, sizeof(what), "re-crash (%d ms) exit -> accepting:", die_after_ms);
        print_stats(what, heal, nheal, missed, "not healed within 30 s");
        snprintf(what, sizeof(what), "re-crash (%d ms) exit -> action start:", die_after_ms);
        print_stats(what, act, nact, nfault - nact,
                    "with no restart in the ledger before the next");
    } else {
        print_stats("kill -> new process accepting:", heal, nheal, missed,
                    "not healed within 30 s");
        print_stats("kill -> action start (remediator ledger):", act, nact, nfault - nact,
                    "with no restart in the ledger before the next");
    }
    printf("e2e_heal:   %zu faults in %.1f s, %zu restarts in the remediator's ledger\n", nfault,
           (double)(wall_ms() - begin) / 1000.0, nstarts);
    fflush(stdout);

    stop(&a);
    stop(&h);
    stop(&r);
    pid_t last = demo_pid(pidfile, 0);
    if (last > 0)
        kill(last, SIGKILL);
    free(heal);
    free(act);
    free(fault_ms);
    free(starts);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A random hex secret of 32 bytes (64 digits) in the environment. */
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

int main(void)
{
    char self[PATH_MAX], bin[PATH_MAX + 8];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        die("cannot find its own path");
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    *slash = '\0'; /* build/bench */
    slash = strrchr(self, '/');
    *slash = '\0'; /* build */
    snprintf(bin, sizeof(bin), "%s/bin", self);

    size_t faults = 50;
    const char *e = getenv("E2E_KILLS");
    if (e) {
        char *end = NULL;
        long v = strtol(e, &end, 10);
        if (!end || *end || v < 1 || v > MAX_FAULTS)
            die("E2E_KILLS: expected 1 to 1000");
        faults = (size_t)v;
    }
    static const char *const secrets[] = {"VIGIL_INGEST_TOKEN", "VIGIL_READ_TOKEN",
                                          "VIGIL_REMEDIATOR_SECRET", "VIGIL_REMEDIATOR_HUB_TOKEN",
                                          "VIGIL_ADMIN_TOKEN"};
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
        secret(secrets[i]);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    signal(SIGPIPE, SIG_IGN);
    printf("e2e_heal: the real daemons (%s) from the shipped configs, budgets sized for %zu "
           "faults\n",
           bin, faults);
    phase(bin, 0, faults);
    phase(bin, 300, faults);
    curl_global_cleanup();
    return 0;
}
