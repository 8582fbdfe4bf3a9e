/* The vigil-collector daemon over real HTTP on an ephemeral loopback port:
 * flags and --check-config, start-up refusals, token and policy reload on SIGHUP,
 * SIGTERM drain, the concurrency test (8 threads x 200 batches x 500 metrics:
 * the store holds exactly what was acknowledged) and the kill test (SIGKILL in
 * the middle of a stream: every 202'd batch survives a restart). */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "httptest.h"
#include "testutil.h"

extern char **environ;

#define TOKEN  "daemon-ingest-token-0000000"
#define RTOKEN "daemon-read-token-111111111"

/* ---- the daemon ------------------------------------------------------------------ */

static const char *daemon_path(void)
{
    static char path[PATH_MAX + 32];
    if (path[0])
        return path;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    ck_assert_int_gt(n, 0);
    exe[n] = '\0';
    /* <build>/tests/test_hub_http -> <build>/bin/vigil-collector */
    char *slash = strrchr(exe, '/');
    *slash = '\0';
    slash = strrchr(exe, '/');
    *slash = '\0';
    snprintf(path, sizeof(path), "%s/bin/vigil-collector", exe);
    ck_assert_msg(access(path, X_OK) == 0, "daemon not built: %s", path);
    return path;
}

typedef struct hubd {
    pid_t pid;
    int port;
    char log[512];
    char base[64];
} hubd;

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return calloc(1, 1);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = calloc(1, (size_t)n + 1);
    if (n > 0 && fread(b, 1, (size_t)n, f) != (size_t)n)
        b[0] = '\0';
    fclose(f);
    return b;
}

static int log_contains(const hubd *d, const char *needle)
{
    char *s = slurp(d->log);
    int r = strstr(s, needle) != NULL;
    free(s);
    return r;
}

/* Runs the daemon with `args`, stdout+stderr to `log`, in `cwd` (NULL: here). */
static pid_t spawn_daemon(char *const *args, const char *log, const char *cwd)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    if (cwd)
        posix_spawn_file_actions_addchdir_np(&fa, cwd);
    pid_t pid;
    ck_assert_int_eq(posix_spawn(&pid, daemon_path(), &fa, NULL, args, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

static int wait_exit(pid_t pid)
{
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Starts the daemon and waits for its "listening" line (the bound port). */
static void daemon_start(hubd *d, const char *config, const char *dir, const char *cwd)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->log, sizeof(d->log), "%s/daemon-%ld.log", dir, (long)time(NULL) ^ random());
    char *args[] = {(char *)daemon_path(), "--config", (char *)config, NULL};
    d->pid = spawn_daemon(args, d->log, cwd);
    for (int i = 0; i < 3000 && !d->port; i++) {
        char *s = slurp(d->log);
        const char *p = strstr(s, "msg=listening address=127.0.0.1:");
        if (p)
            d->port = atoi(p + strlen("msg=listening address=127.0.0.1:"));
        free(s);
        if (!d->port) {
            int st;
            ck_assert_msg(waitpid(d->pid, &st, WNOHANG) == 0, "daemon exited early");
            usleep(10000);
        }
    }
    ck_assert_int_gt(d->port, 0);
    snprintf(d->base, sizeof(d->base), "http://127.0.0.1:%d", d->port);
}

static int daemon_stop(hubd *d, int sig)
{
    kill(d->pid, sig);
    return wait_exit(d->pid);
}

static const char *write_config(const char *dir, const char *name, const char *text)
{
    static char path[8][512];
    static int n;
    char *p = path[n++ % 8];
    snprintf(p, 512, "%s", vt_write_file(dir, name, text, strlen(text)));
    return p;
}

static const char *config_for(const char *dir, const char *extra)
{
    char text[2048];
    snprintf(text, sizeof(text),
             "listen: 127.0.0.1:0\n"
             "store: sqlite://%s/vigil.db\n"
             "http: {threads: 2, timeout: 5s, drain_timeout: 5s}\n"
             "security:\n"
             "  tokens:\n"
             "    - {name: agents, env: VT_D_INGEST, scopes: [ingest]}\n"
             "    - {name: dash, env: VT_D_READ, scopes: [read]}\n"
             "%s"
             /* last, so that `extra` keeps its line numbers. The samples
              * are from 1970: no retention pass while a slow run (valgrind)
              * still counts them. */
             "retention_interval: 24h\n",
             dir, extra ? extra : "");
    return write_config(dir, "collector.yaml", text);
}

static long request(const hubd *d, const char *method, const char *path, const char *body,
                    size_t len, const http_opts *o, http_result *r)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", d->base, path);
    http_do(method, url, body, body ? (len ? len : strlen(body)) : 0, o, r);
    return r->status;
}

static int count_point(const vigil_store_series *s, const vigil_store_point *p, void *payload)
{
    (void)s;
    (void)p;
    (*(size_t *)payload)++;
    return 0;
}

static size_t stored_samples(const char *dir, const char *name)
{
    char url[600];
    snprintf(url, sizeof(url), "sqlite://%s/vigil.db", dir);
    vigil_store_options so = VIGIL_STORE_OPTIONS_INIT;
    so.read_only = 1;
    vigil_store *st = NULL;
    ck_assert_msg(vigil_store_open(&st, url, &so) == VIGIL_OK, "%s", vigil_error_last()->message);
    vigil_store_query q = VIGIL_STORE_QUERY_INIT;
    q.name = name;
    size_t n = 0;
    ck_assert_int_eq(vigil_store_query_run(st, &q, count_point, &n), VIGIL_OK);
    vigil_store_close(st);
    return n;
}

static void env_tokens(void)
{
    setenv("VT_D_INGEST", TOKEN, 1);
    setenv("VT_D_READ", RTOKEN, 1);
}

/* ---- flags and configuration --------------------------------------------------- */

START_TEST(flags_and_check_config)
{
    const char *dir = vt_tmpdir();
    char log[600];
    snprintf(log, sizeof(log), "%s/out.log", dir);
    env_tokens();
    const char *good = config_for(dir, NULL);
    char *a1[] = {(char *)daemon_path(), "--config", (char *)good, "--check-config", NULL};
    ck_assert_int_eq(wait_exit(spawn_daemon(a1, log, NULL)), 0);
    char *out = slurp(log);
    ck_assert_ptr_nonnull(strstr(out, "configuration "));
    ck_assert_ptr_nonnull(strstr(out, " is valid"));
    free(out);
    ck_assert_int_ne(access(strcat(strcpy(log, dir), "/vigil.db"), F_OK), 0); /* not opened */
    snprintf(log, sizeof(log), "%s/out.log", dir);

    const char *bad = write_config(dir, "bad.yaml", "listen: 127.0.0.1:0\nlisten_port: 1\n");
    char *a2[] = {(char *)daemon_path(), "--config", (char *)bad, "--check-config", NULL};
    truncate(log, 0);
    ck_assert_int_eq(wait_exit(spawn_daemon(a2, log, NULL)), 1);
    out = slurp(log);
    ck_assert_msg(strstr(out, "bad.yaml:2:1: listen_port: unknown key") != NULL, "%s", out);
    free(out);

    unsetenv("VT_D_READ");
    truncate(log, 0);
    ck_assert_int_eq(wait_exit(spawn_daemon(a1, log, NULL)), 1);
    out = slurp(log);
    ck_assert_msg(strstr(out, "environment variable VT_D_READ is not set") != NULL, "%s", out);
    free(out);
    env_tokens();

    const char *open_any = write_config(dir, "open.yaml", "listen: 0.0.0.0:0\n");
    char *a3[] = {(char *)daemon_path(), "--config", (char *)open_any, NULL};
    truncate(log, 0);
    ck_assert_int_eq(wait_exit(spawn_daemon(a3, log, NULL)), 1);
    out = slurp(log);
    ck_assert_msg(strstr(out, "refusing to listen on 0.0.0.0:0 without authentication") != NULL,
                  "%s", out);
    free(out);

    /* policies and the remediator are checked too: a bad rule by file:line, a
     * missing signing secret by name */
    const char *rule = config_for(dir, "policies:\n"
                                       "  - name: p\n"
                                       "    kind: threshold\n"
                                       "    metric: cpu_usage\n"
                                       "    op: \"~\"\n"
                                       "    threshold: 1\n"
                                       "    action: a\n");
    char *a6[] = {(char *)daemon_path(), "--config", (char *)rule, "--check-config", NULL};
    truncate(log, 0);
    ck_assert_int_eq(wait_exit(spawn_daemon(a6, log, NULL)), 1);
    out = slurp(log);
    ck_assert_msg(strstr(out, "collector.yaml:12:") != NULL && strstr(out, "op") != NULL, "%s",
                  out);
    free(out);
    unsetenv("VT_D_RSECRET");
    const char *rem = config_for(dir, "remediator: {url: 'http://127.0.0.1:9',"
                                      " secret_env: VT_D_RSECRET}\n");
    char *a7[] = {(char *)daemon_path(), "--config", (char *)rem, "--check-config", NULL};
    truncate(log, 0);
    ck_assert_int_eq(wait_exit(spawn_daemon(a7, log, NULL)), 1);
    out = slurp(log);
    ck_assert_msg(strstr(out, "environment variable \"VT_D_RSECRET\"") != NULL, "%s", out);
    free(out);
    setenv("VT_D_RSECRET", "daemon-signing-secret-00000000000", 1);
    truncate(log, 0);
    ck_assert_int_eq(wait_exit(spawn_daemon(a7, log, NULL)), 0);

    char *a4[] = {(char *)daemon_path(), "--bogus", NULL};
    ck_assert_int_eq(wait_exit(spawn_daemon(a4, log, NULL)), 2);
    char *a5[] = {(char *)daemon_path(), "--version", NULL};
    truncate(log, 0);
    ck_assert_int_eq(wait_exit(spawn_daemon(a5, log, NULL)), 0);
    out = slurp(log);
    ck_assert_ptr_nonnull(strstr(out, "vigil-collector " VIGIL_VERSION));
    free(out);
}
END_TEST

START_TEST(default_store_under_working_directory)
{
    const char *dir = vt_tmpdir();
    /* insecure on purpose: checks the loud warning too */
    const char *cfg =
        write_config(dir, "c.yaml", "listen: 0.0.0.0:0\nsecurity: {insecure: true}\n");
    hubd d;
    memset(&d, 0, sizeof(d));
    snprintf(d.log, sizeof(d.log), "%s/d.log", dir);
    char *args[] = {(char *)daemon_path(), "--config", (char *)cfg, NULL};
    d.pid = spawn_daemon(args, d.log, dir);
    for (int i = 0; i < 3000 && !d.port; i++) {
        char *s = slurp(d.log);
        const char *p = strstr(s, "msg=listening address=0.0.0.0:");
        if (p)
            d.port = atoi(p + strlen("msg=listening address=0.0.0.0:"));
        free(s);
        usleep(10000);
    }
    ck_assert_int_gt(d.port, 0);
    snprintf(d.base, sizeof(d.base), "http://127.0.0.1:%d", d.port);
    ck_assert(log_contains(&d, "level=warn component=httpd msg=\"INSECURE: listening beyond "
                               "loopback with no authentication"));
    char db[600];
    snprintf(db, sizeof(db), "%s/var/vigil.db", dir);
    ck_assert_int_eq(access(db, F_OK), 0);
    http_result r;
    request(&d, "GET", "/readyz", NULL, 0, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    http_result_free(&r);
    ck_assert_int_eq(daemon_stop(&d, SIGTERM), 0);
}
END_TEST

/* ---- serving, reload, drain ------------------------------------------------------- */

START_TEST(serves_reloads_and_drains)
{
    const char *dir = vt_tmpdir();
    env_tokens();
    const char *tokfile = write_config(dir, "ops.token", "ops-token-first-000000000\n");
    char extra[700];
    snprintf(extra, sizeof(extra), "    - {name: ops, file: %s, scopes: [admin]}\n", tokfile);
    const char *cfg = config_for(dir, extra);
    hubd d;
    daemon_start(&d, cfg, dir, NULL);

    http_result r;
    http_opts ing = {.token = TOKEN};
    const char *b1 = "{\"agent\":\"h1\",\"batch_id\":\"d-1\",\"metrics\":[{\"name\":\"up\","
                     "\"value\":1,\"ts\":1000}]}";
    request(&d, "POST", "/v1/ingest", b1, 0, &ing, &r);
    ck_assert_int_eq(r.status, 202);
    ck_assert_str_eq(r.body, "{\"accepted\":1,\"duplicate\":false}");
    http_result_free(&r);
    request(&d, "POST", "/v1/ingest", b1, 0, NULL, &r);
    ck_assert_int_eq(r.status, 401);
    http_result_free(&r);
    request(&d, "POST", "/v1/ingest",
            "{\"metrics\":[{\"name\":\"x\",\"value\":1,\"ts\":1,"
            "\"tags\":{\"k\":\"\\u0000\"}}]}",
            0, &ing, &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_ptr_nonnull(strstr(r.body, "\"path\":\"metrics[0].tags.k\""));
    http_result_free(&r);
    request(&d, "POST", "/v1/ingest",
            "{\"metrics\":[{\"name\":\"x\",\"value\":1,"
            "\"ts\":4102444800000}]}",
            0, &ing, &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_ptr_nonnull(strstr(r.body, "is more than 5m in the future"));
    http_result_free(&r);
    request(&d, "DELETE", "/v1/ingest", NULL, 0, &ing, &r);
    ck_assert_int_eq(r.status, 405);
    http_result_free(&r);
    request(&d, "GET", "/v2/ingest", NULL, 0, &ing, &r);
    ck_assert_int_eq(r.status, 404);
    http_result_free(&r);

    /* a gzip bomb over HTTP */
    size_t raw = 80u * 1024 * 1024;
    char *zeros = calloc(1, raw);
    uLong cap = compressBound((uLong)raw);
    unsigned char *bomb = malloc(cap);
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY);
    zs.next_in = (Bytef *)zeros;
    zs.avail_in = (uInt)raw;
    zs.next_out = bomb;
    zs.avail_out = (uInt)cap;
    deflate(&zs, Z_FINISH);
    size_t bn = cap - zs.avail_out;
    deflateEnd(&zs);
    free(zeros);
    http_opts gz = {.token = TOKEN, .encoding = "gzip"};
    request(&d, "POST", "/v1/ingest", (const char *)bomb, bn, &gz, &r);
    free(bomb);
    ck_assert_int_eq(r.status, 413);
    ck_assert_str_eq(r.body, "{\"error\":{\"code\":\"too_large\",\"message\":\"inflated body "
                             "exceeds the limit of 67108864 bytes\",\"path\":\"\"}}");
    http_result_free(&r);

    /* the token file is re-read on SIGHUP */
    http_opts ops1 = {.token = "ops-token-first-000000000"};
    http_opts ops2 = {.token = "ops-token-second-11111111"};
    request(&d, "GET", "/metrics", NULL, 0, &ops1, &r);
    ck_assert_int_eq(r.status, 200);
    http_result_free(&r);
    FILE *f = fopen(tokfile, "w");
    fputs("ops-token-second-11111111\n", f);
    fclose(f);
    kill(d.pid, SIGHUP);
    for (int i = 0; i < 500 && !log_contains(&d, "msg=\"tokens reloaded\""); i++)
        usleep(10000);
    ck_assert(log_contains(&d, "msg=\"tokens reloaded\" sources=3"));
    request(&d, "GET", "/metrics", NULL, 0, &ops1, &r);
    ck_assert_int_eq(r.status, 401);
    http_result_free(&r);
    request(&d, "GET", "/metrics", NULL, 0, &ops2, &r);
    ck_assert_int_eq(r.status, 200);
    http_result_free(&r);

    ck_assert_int_eq(daemon_stop(&d, SIGTERM), 0);
    ck_assert(log_contains(&d, "msg=\"stopped accepting connections\""));
    ck_assert(log_contains(&d, "component=hub msg=stopped"));
    ck_assert(!log_contains(&d, TOKEN));
    ck_assert(!log_contains(&d, "ops-token-"));
    ck_assert_uint_eq(stored_samples(dir, "up"), 1);
}
END_TEST

/* ---- SIGHUP reloads policies ----------------------------------------------------------- */

static int log_count(const hubd *d, const char *needle)
{
    char *s = slurp(d->log);
    int n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
        n++;
    free(s);
    return n;
}

static void wait_log_count(const hubd *d, const char *needle, int n)
{
    for (int i = 0; i < 1000 && log_count(d, needle) < n; i++)
        usleep(10000);
    ck_assert_msg(log_count(d, needle) >= n, "log lacks %d x %s", n, needle);
}

static char *get_policies(const hubd *d)
{
    http_result r;
    http_opts rd = {.token = RTOKEN};
    request(d, "GET", "/v1/policies", NULL, 0, &rd, &r);
    ck_assert_int_eq(r.status, 200);
    char *body = strdup(r.body);
    http_result_free(&r);
    return body;
}

START_TEST(sighup_reloads_policies)
{
    const char *dir = vt_tmpdir();
    env_tokens();
    char rules[600], extra[1400];
    snprintf(rules, sizeof(rules), "%s/rules", dir);
    ck_assert_int_eq(mkdir(rules, 0700), 0);
    const char *old_rule = "policies:\n"
                           "  - {name: old_rule, kind: absent, metric: heartbeat, for: 1m,\n"
                           "     action: page}\n";
    vt_write_file(rules, "a.yaml", old_rule, strlen(old_rule));
    snprintf(extra, sizeof(extra), "policies_dir: %s\n", rules);
    const char *cfg = config_for(dir, extra);
    hubd d;
    daemon_start(&d, cfg, dir, NULL);
    char *p = get_policies(&d);
    ck_assert_msg(strstr(p, "\"name\":\"old_rule\"") != NULL, "%s", p);
    free(p);

    /* a rewritten file: the new rule is listed, the old one is gone */
    const char *new_rule = "policies:\n"
                           "  - {name: new_rule, kind: absent, metric: heartbeat, for: 2m,\n"
                           "     action: page}\n";
    vt_write_file(rules, "a.yaml", new_rule, strlen(new_rule));
    kill(d.pid, SIGHUP);
    wait_log_count(&d, "msg=\"policies reloaded\" added=1 changed=0 removed=1 kept=0", 1);
    p = get_policies(&d);
    ck_assert_msg(strstr(p, "\"name\":\"new_rule\"") && !strstr(p, "\"name\":\"old_rule\""), "%s",
                  p);
    free(p);

    /* a broken file: the reload fails, the previous set stays */
    const char *broken = "policies:\n  - {name: x, kind: threshold, metric: m, op: \"=~\",\n"
                         "     threshold: 1, action: y}\n";
    vt_write_file(rules, "b.yaml", broken, strlen(broken));
    kill(d.pid, SIGHUP);
    wait_log_count(&d, "msg=\"configuration reload failed; previous policies kept\"", 1);
    ck_assert(log_contains(&d, "b.yaml:2:47: policies[0].op: unknown op"));
    p = get_policies(&d);
    ck_assert_msg(strstr(p, "\"name\":\"new_rule\"") && !strstr(p, "\"name\":\"x\""), "%s", p);
    free(p);

    /* a key that cannot change live is named, the policies still reload */
    char b[700];
    snprintf(b, sizeof(b), "%s/b.yaml", rules);
    ck_assert_int_eq(unlink(b), 0);
    snprintf(extra, sizeof(extra), "policies_dir: %s\nretention: 30d\n", rules);
    config_for(dir, extra);
    kill(d.pid, SIGHUP);
    wait_log_count(&d, "msg=\"policies reloaded\" added=0 changed=0 removed=0 kept=1", 1);
    ck_assert(log_contains(&d, "level=warn component=collector msg=\"configuration change needs a "
                               "restart; running value kept\" key=retention"));
    ck_assert_int_eq(log_count(&d, "needs a restart"), 1);
    ck_assert_int_eq(daemon_stop(&d, SIGTERM), 0);
}
END_TEST

/* ---- windows only where a policy looks ------------------------------------------- */

static double hub_gauge(const hubd *d, const char *name)
{
    http_result r;
    http_opts rd = {.token = RTOKEN};
    request(d, "GET", "/metrics", NULL, 0, &rd, &r);
    ck_assert_int_eq(r.status, 200);
    char pat[128];
    snprintf(pat, sizeof(pat), "\n%s ", name);
    const char *at = strstr(r.body, pat);
    ck_assert_msg(at != NULL, "no %s in /metrics", name);
    double v = strtod(at + strlen(pat), NULL);
    http_result_free(&r);
    return v;
}

static int64_t wall_ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Posts n samples: name{host=h,i=first..first+n-1} at ts (one series each) or,
 * with same_series, n samples of name{host=h} at ts - (n-1-k) * 10 s. */
static void post_series(const hubd *d, const char *name, int first, int n, int64_t ts,
                        int same_series)
{
    size_t cap = (size_t)n * 128 + 64;
    char *body = malloc(cap);
    size_t len = (size_t)snprintf(body, cap, "{\"metrics\":[");
    for (int k = 0; k < n; k++) {
        if (same_series)
            len += (size_t)snprintf(body + len, cap - len,
                                    "%s{\"name\":\"%s\",\"value\":1,\"ts\":%lld,\"tags\":"
                                    "{\"host\":\"h\"}}",
                                    k ? "," : "", name, (long long)(ts - (n - 1 - k) * 10000));
        else
            len += (size_t)snprintf(body + len, cap - len,
                                    "%s{\"name\":\"%s\",\"value\":1,\"ts\":%lld,\"tags\":"
                                    "{\"host\":\"h\",\"i\":\"%d\"}}",
                                    k ? "," : "", name, (long long)ts, first + k);
    }
    len += (size_t)snprintf(body + len, cap - len, "]}");
    http_result r;
    http_opts in = {.token = TOKEN};
    request(d, "POST", "/v1/ingest", body, len, &in, &r);
    ck_assert_msg(r.status == 202, "%ld %s", r.status, r.body);
    http_result_free(&r);
    free(body);
}

static int decided(const hubd *d, const char *policy, const char *decision)
{
    http_result r;
    http_opts rd = {.token = RTOKEN};
    request(d, "GET", "/v1/decisions", NULL, 0, &rd, &r);
    ck_assert_int_eq(r.status, 200);
    char p[128], k[128];
    snprintf(p, sizeof(p), "\"policy\":\"%s\"", policy);
    snprintf(k, sizeof(k), "\"decision\":\"%s\"", decision);
    int found = strstr(r.body, p) != NULL && strstr(r.body, k) != NULL;
    http_result_free(&r);
    return found;
}

START_TEST(windows_only_where_policies_look)
{
    const char *dir = vt_tmpdir();
    env_tokens();
    char rules[600], extra[1400];
    snprintf(rules, sizeof(rules), "%s/rules", dir);
    ck_assert_int_eq(mkdir(rules, 0700), 0);
    const char *watch = "policies:\n"
                        "  - {name: up_low, kind: threshold, metric: up_w, window: 1m, for: 30s,\n"
                        "     op: \"<\", threshold: -1, action: page}\n";
    vt_write_file(rules, "a.yaml", watch, strlen(watch));
    snprintf(extra, sizeof(extra), "policies_dir: %s\nwindows: {max_series: 3}\n", rules);
    hubd d;
    daemon_start(&d, config_for(dir, extra), dir, NULL);
    double base = hub_gauge(&d, "vigil_windows_memory_bytes");
    int64_t now = wall_ms_now();

    /* 10,000 series no rule watches: no window, the memory gauge stays flat */
    for (int k = 0; k < 10; k++)
        post_series(&d, "free_w", k * 1000, 1000, now - 60000, 0);
    double unw = hub_gauge(&d, "vigil_windows_unwatched_series");
    ck_assert_msg(unw == 10000, "unwatched %f", unw);
    ck_assert(hub_gauge(&d, "vigil_windows") == 0);
    ck_assert(hub_gauge(&d, "vigil_windows_memory_bytes") == base);

    /* watched: a window each; the fourth is past max_series, counted */
    post_series(&d, "up_w", 0, 4, now - 50000, 0);
    ck_assert(hub_gauge(&d, "vigil_windows") == 3);
    ck_assert(hub_gauge(&d, "vigil_windows_memory_bytes") > base);
    ck_assert(hub_gauge(&d, "vigil_windows_refused_series") == 1);
    ck_assert(hub_gauge(&d, "vigil_windows_refused_series_total") == 1);
    ck_assert(log_contains(&d, "msg=\"series watched by a policy get no window: "
                               "windows.max_series reached\" max_series=3 refused=1"));

    /* samples of qd_w before any rule reads them... */
    post_series(&d, "qd_w", 0, 5, now - 10000, 1);
    ck_assert(hub_gauge(&d, "vigil_windows_unwatched_series") == 10001);
    /* ...then a reload adds a rule over 2 min of them, and drops up_low */
    const char *count = "policies:\n"
                        "  - {name: qd_count, kind: threshold, metric: qd_w, aggregate: count,\n"
                        "     window: 2m, op: \">=\", threshold: 6, action: page}\n";
    vt_write_file(rules, "a.yaml", count, strlen(count));
    kill(d.pid, SIGHUP);
    wait_log_count(&d, "msg=\"policies reloaded\" added=1 changed=0 removed=1 kept=0", 1);
    ck_assert(log_contains(&d, "msg=\"windows synced with the policies\" watched=1 rebuilt=1 "
                               "dropped=3 refused=0"));
    ck_assert(hub_gauge(&d, "vigil_windows") == 1);
    ck_assert(hub_gauge(&d, "vigil_windows_refused_series") == 0);
    ck_assert(hub_gauge(&d, "vigil_windows_unwatched_series") == 10004);
    /* one more sample: six in 2 min, five of them from before the rule */
    post_series(&d, "qd_w", 0, 1, now, 1);
    int fired = 0;
    for (int i = 0; i < 1000 && !(fired = decided(&d, "qd_count", "fired")); i++)
        usleep(10000);
    ck_assert_msg(fired, "qd_count did not fire on the rebuilt history");

    /* every rule gone: every window freed */
    const char *none = "policies: []\n";
    vt_write_file(rules, "a.yaml", none, strlen(none));
    kill(d.pid, SIGHUP);
    wait_log_count(&d, "msg=\"policies reloaded\" added=0 changed=0 removed=1 kept=0", 1);
    ck_assert(hub_gauge(&d, "vigil_windows") == 0);
    ck_assert(hub_gauge(&d, "vigil_windows_unwatched_series") == 10005);
    ck_assert_int_eq(daemon_stop(&d, SIGTERM), 0);
}
END_TEST

/* ---- concurrency: 8 threads x 200 batches x 500 metrics ------------------------ */

#define C_THREADS 8
#define C_BATCHES 200
#define C_METRICS 500

typedef struct cthread {
    const hubd *d;
    int id;
    size_t acked;
    int failures;
} cthread;

static void *conc_main(void *arg)
{
    cthread *t = arg;
    CURL *h = curl_easy_init();
    http_opts o = {.token = TOKEN, .handle = h};
    size_t cap = C_METRICS * 96 + 256;
    char *body = malloc(cap);
    for (int b = 0; b < C_BATCHES; b++) {
        size_t n = (size_t)snprintf(body, cap,
                                    "{\"agent\":\"t%d\",\"batch_id\":\"c-%d-%d\","
                                    "\"metrics\":[",
                                    t->id, t->id, b);
        for (int k = 0; k < C_METRICS; k++)
            n += (size_t)snprintf(body + n, cap - n,
                                  "%s{\"name\":\"load\",\"value\":%d,\"ts\":%d,"
                                  "\"tags\":{\"t\":\"%d\",\"s\":\"%d\"}}",
                                  k ? "," : "", k, 1000000 + b * 10 + k / 50, t->id, k % 50);
        n += (size_t)snprintf(body + n, cap - n, "]}");
        http_result r;
        request(t->d, "POST", "/v1/ingest", body, n, &o, &r);
        char want[64];
        snprintf(want, sizeof(want), "{\"accepted\":%d,\"duplicate\":false}", C_METRICS);
        if (r.status == 202 && strcmp(r.body, want) == 0)
            t->acked += C_METRICS;
        else
            t->failures++;
        http_result_free(&r);
    }
    free(body);
    curl_easy_cleanup(h);
    return NULL;
}

START_TEST(concurrent_ingest_exactly_acknowledged)
{
    const char *dir = vt_tmpdir();
    env_tokens();
    hubd d;
    daemon_start(&d, config_for(dir, NULL), dir, NULL);
    pthread_t th[C_THREADS];
    cthread ts[C_THREADS];
    for (int i = 0; i < C_THREADS; i++) {
        ts[i] = (cthread){&d, i, 0, 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, conc_main, &ts[i]), 0);
    }
    size_t acked = 0;
    int failures = 0;
    for (int i = 0; i < C_THREADS; i++) {
        pthread_join(th[i], NULL);
        acked += ts[i].acked;
        failures += ts[i].failures;
    }
    ck_assert_int_eq(failures, 0);
    ck_assert_uint_eq(acked, (size_t)C_THREADS * C_BATCHES * C_METRICS);
    ck_assert_int_eq(daemon_stop(&d, SIGTERM), 0);
    ck_assert_uint_eq(stored_samples(dir, "load"), acked);
}
END_TEST

/* ---- kill test ------------------------------------------------------------------- */

#define K_MAX 100000

typedef struct kstream {
    hubd *d;
    char *acked; /* acked[i]: batch i got 202 */
    int sent;    /* atomic */
} kstream;

static void *kill_stream(void *arg)
{
    kstream *k = arg;
    CURL *h = curl_easy_init();
    http_opts o = {.token = TOKEN, .handle = h};
    for (int i = 0; i < K_MAX; i++) {
        char body[2048];
        int n = snprintf(body, sizeof(body), "{\"batch_id\":\"k-%d\",\"metrics\":[", i);
        for (int m = 0; m < 10; m++)
            n += snprintf(body + n, sizeof(body) - (size_t)n,
                          "%s{\"name\":\"killtest\",\"value\":%d,\"ts\":%d,"
                          "\"tags\":{\"batch\":\"%d\"}}",
                          m ? "," : "", m, 1000 + m, i);
        n += snprintf(body + n, sizeof(body) - (size_t)n, "]}");
        http_result r;
        request(k->d, "POST", "/v1/ingest", body, (size_t)n, &o, &r);
        if (r.status == 202)
            k->acked[i] = 1;
        CURLcode cc = r.curl;
        http_result_free(&r); /* clears r.curl */
        __atomic_store_n(&k->sent, i + 1, __ATOMIC_SEQ_CST);
        if (cc != CURLE_OK)
            break; /* the daemon is gone */
    }
    curl_easy_cleanup(h);
    return NULL;
}

typedef struct kcount {
    int *per_batch;
} kcount;

static int kill_point(const vigil_store_series *s, const vigil_store_point *p, void *payload)
{
    (void)p;
    kcount *k = payload;
    for (size_t i = 0; i < s->ntags; i++)
        if (strcmp(s->tags[i].key, "batch") == 0) {
            int b = atoi(s->tags[i].value);
            if (b >= 0 && b < K_MAX)
                k->per_batch[b]++;
        }
    return 0;
}

/* A stream of ingests, the daemon stopped by `sig` in the middle: after a
 * restart every batch that got a 202 is stored, and a replay is a duplicate. */
static void stop_mid_stream(int sig)
{
    const char *dir = vt_tmpdir();
    env_tokens();
    const char *cfg = config_for(dir, NULL);
    hubd d;
    daemon_start(&d, cfg, dir, NULL);
    kstream k;
    memset(&k, 0, sizeof(k));
    k.d = &d;
    k.acked = calloc(K_MAX, 1);
    pthread_t t;
    pthread_create(&t, NULL, kill_stream, &k);
    /* kill it mid-stream, once a good number of batches went through */
    for (int i = 0; i < 3000 && __atomic_load_n(&k.sent, __ATOMIC_SEQ_CST) < 150; i++)
        usleep(10000);
    ck_assert_int_ge(__atomic_load_n(&k.sent, __ATOMIC_SEQ_CST), 150);
    kill(d.pid, sig);
    ck_assert_int_eq(wait_exit(d.pid), sig == SIGKILL ? 128 + SIGKILL : 0);
    pthread_join(t, NULL);
    int acked = 0;
    for (int i = 0; i < K_MAX; i++)
        acked += k.acked[i];
    ck_assert_int_ge(acked, 150);

    /* restart on the same store, check through the API and the store */
    hubd d2;
    daemon_start(&d2, cfg, dir, NULL);
    http_result r;
    http_opts rd = {.token = RTOKEN};
    request(&d2, "GET", "/v1/series?name=killtest&match=batch:0", NULL, 0, &rd, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"series\":[{\"name\":\"killtest\",\"tags\":{\"batch\":\"0\"},"
                             "\"latest\":{\"ts\":1009,\"value\":9}}]}");
    http_result_free(&r);
    /* a batch acknowledged before the kill is a duplicate now */
    char body[256];
    snprintf(body, sizeof(body),
             "{\"batch_id\":\"k-0\",\"metrics\":[{\"name\":\"killtest\","
             "\"value\":0,\"ts\":1000,\"tags\":{\"batch\":\"0\"}}]}");
    http_opts ing = {.token = TOKEN};
    request(&d2, "POST", "/v1/ingest", body, 0, &ing, &r);
    ck_assert_str_eq(r.body, "{\"accepted\":0,\"duplicate\":true}");
    http_result_free(&r);
    ck_assert_int_eq(daemon_stop(&d2, SIGTERM), 0);

    kcount kc = {calloc(K_MAX, sizeof(int))};
    char url[600];
    snprintf(url, sizeof(url), "sqlite://%s/vigil.db", dir);
    vigil_store_options so = VIGIL_STORE_OPTIONS_INIT;
    so.read_only = 1;
    vigil_store *st = NULL;
    ck_assert_int_eq(vigil_store_open(&st, url, &so), VIGIL_OK);
    vigil_store_query q = VIGIL_STORE_QUERY_INIT;
    q.name = "killtest";
    ck_assert_int_eq(vigil_store_query_run(st, &q, kill_point, &kc), VIGIL_OK);
    vigil_store_close(st);
    for (int i = 0; i < K_MAX; i++)
        if (k.acked[i])
            ck_assert_msg(kc.per_batch[i] == 10,
                          "batch %d was acknowledged but %d of 10 "
                          "samples are stored",
                          i, kc.per_batch[i]);
    free(kc.per_batch);
    free(k.acked);
    ck_assert(!log_contains(&d, "its id not recorded"));
    ck_assert(!log_contains(&d2, "its id not recorded"));
}

START_TEST(sigkill_loses_no_acknowledged_batch)
{
    stop_mid_stream(SIGKILL);
}
END_TEST

START_TEST(sigterm_drains_and_loses_nothing)
{
    stop_mid_stream(SIGTERM);
}
END_TEST

static Suite *hub_http_suite(void)
{
    Suite *s = suite_create("hub_http");
    TCase *tc = tcase_create("daemon");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, flags_and_check_config);
    tcase_add_test(tc, default_store_under_working_directory);
    tcase_add_test(tc, serves_reloads_and_drains);
    tcase_add_test(tc, sighup_reloads_policies);
    tcase_add_test(tc, windows_only_where_policies_look);
    tcase_add_test(tc, concurrent_ingest_exactly_acknowledged);
    tcase_add_test(tc, sigkill_loses_no_acknowledged_batch);
    tcase_add_test(tc, sigterm_drains_and_loses_nothing);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    SRunner *sr = srunner_create(hub_http_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
