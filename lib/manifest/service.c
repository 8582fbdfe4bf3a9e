/* The built-in Service resource type: a supervised process (start argv and
 * pidfile) or a systemd unit, its desired state (running or stopped), the
 * number of processes running its argv (replicas) and an optional health
 * check (http or tcp). Healed through the action the manifest names. */
#include "http/http.h"
#include "manifest/manifest_int.h"
#include "proc/proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define ARGV_MAX       64
#define ARG_MAX_BYTES  4096
#define CMDLINE_MAX    65536
#define HEALTH_TIMEOUT 2000
#define HEALTH_MAX     60000
#define SYSTEMCTL_WAIT 10000
#define UNIT_MAX       256
#define REPLICAS_MAX   10000

typedef struct service_spec {
    char **argv; /* NULL-terminated; NULL for a unit */
    size_t argc;
    char *pidfile;
    int has_user;
    uid_t uid;
    char *unit;
    int running;      /* desired state */
    int64_t replicas; /* -1: not checked */
    char *http, *tcp_host, *tcp_port;
    int64_t timeout_ms;
    char *action;
    char *json;
} service_spec;

typedef struct service_obs {
    int running;
    int64_t replicas; /* -1: not counted */
    int health_checked;
    char health[256]; /* "" when healthy */
} service_obs;

static const char *const service_keys[] = {"process", "unit",   "state", "replicas",
                                           "health",  "action", NULL};
static const char *const process_keys[] = {"start", "pidfile", "user", NULL};
static const char *const health_keys[] = {"http", "tcp", "timeout", NULL};

static void service_destroy(void *state)
{
    service_spec *s = state;
    if (!s)
        return;
    for (size_t i = 0; s->argv && i < s->argc; i++)
        vigil__free(s->argv[i]);
    vigil__free(s->argv);
    vigil__free(s->pidfile);
    vigil__free(s->unit);
    vigil__free(s->http);
    vigil__free(s->tcp_host);
    vigil__free(s->tcp_port);
    vigil__free(s->action);
    vigil__free(s->json);
    vigil__free(s);
}

static bool unit_valid(const char *u)
{
    size_t n = strlen(u);
    if (n == 0 || n > UNIT_MAX || u[0] == '-' || u[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = u[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == ':' || c == '_' || c == '.' || c == '@' || c == '-' || c == '\\'))
            return false;
    }
    return true;
}

static bool action_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '-'))
            return false;
    }
    return true;
}

static int parse_user(service_spec *s, const vigil_config_node *at, const char *user)
{
    size_t n = strlen(user), digits = strspn(user, "0123456789");
    if (n && digits == n && n <= 10 && strtoull(user, NULL, 10) < 4294967295ull) {
        s->uid = (uid_t)strtoull(user, NULL, 10);
        s->has_user = 1;
        return VIGIL_OK;
    }
    struct passwd pw, *res = NULL;
    char buf[2048];
    if (n == 0 || n > 32 || getpwnam_r(user, &pw, buf, sizeof(buf), &res) != 0 || !res)
        return vigil__manifest_err(at, VIGIL_EVALUE, "no user named \"%.32s\" on this host", user);
    s->uid = pw.pw_uid;
    s->has_user = 1;
    return VIGIL_OK;
}

static int parse_process(service_spec *s, const vigil_config_node *p)
{
    int rc;
    const char *pidfile, *user;
    if ((rc = vigil_config_map(p)) < 0 || (rc = vigil_config_expect_keys(p, process_keys)) < 0 ||
        (rc = vigil_config_require(p, "start")) < 0)
        return rc;
    const vigil_config_node *start = vigil_config_node_get(p, "start");
    if ((rc = vigil_config_list(start)) < 0)
        return rc;
    size_t n = vigil_config_node_len(start);
    if (n == 0 || n > ARGV_MAX)
        return vigil__manifest_err(start, n ? VIGIL_ELIMIT : VIGIL_EVALUE,
                                   "expected 1 to %d arguments, got %zu", ARGV_MAX, n);
    if (!(s->argv = vigil__calloc(n + 1, sizeof(char *))))
        return vigil__error_oom();
    for (size_t i = 0; i < n; i++) {
        const char *a;
        const vigil_config_node *an = vigil_config_node_at(start, i);
        if ((rc = vigil_config_string(&a, an)) < 0)
            return rc;
        if (strlen(a) > ARG_MAX_BYTES)
            return vigil__manifest_err(an, VIGIL_ELIMIT, "an argument has at most %d bytes",
                                       ARG_MAX_BYTES);
        if (i == 0 && a[0] != '/')
            return vigil__manifest_err(an, VIGIL_EVALUE,
                                       "expected the absolute path of the program, got "
                                       "\"%.64s\" (no PATH search)",
                                       a);
        if (i == 0 && (rc = vigil__manifest_host_path(an, a)) < 0)
            return rc;
        if (!(s->argv[i] = vigil__strdup(a)))
            return vigil__error_oom();
        s->argc = i + 1;
    }
    if ((rc = vigil__manifest_string(&pidfile, p, "pidfile", false)) < 0)
        return rc;
    if (pidfile) {
        if ((rc = vigil__manifest_host_path(vigil_config_node_get(p, "pidfile"), pidfile)) < 0)
            return rc;
        if (!(s->pidfile = vigil__strdup(pidfile)))
            return vigil__error_oom();
    }
    if ((rc = vigil__manifest_string(&user, p, "user", false)) < 0)
        return rc;
    if (user && (rc = parse_user(s, vigil_config_node_get(p, "user"), user)) < 0)
        return rc;
    return VIGIL_OK;
}

/* Splits "host:port" ("[v6]:port"). */
static int parse_tcp(service_spec *s, const vigil_config_node *at, const char *hp)
{
    const char *colon = strrchr(hp, ':');
    const char *h = hp, *he = colon;
    if (hp[0] == '[') {
        const char *close = strchr(hp, ']');
        if (!close || close[1] != ':')
            colon = NULL;
        h = hp + 1;
        he = close;
    }
    if (!colon || he == h || !colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
        strlen(colon + 1) > 5 || atoi(colon + 1) < 1 || atoi(colon + 1) > 65535)
        return vigil__manifest_err(at, VIGIL_EVALUE,
                                   "expected host:port such as 127.0.0.1:8080, got \"%.64s\"", hp);
    if (!(s->tcp_host = vigil__strndup(h, (size_t)(he - h))) ||
        !(s->tcp_port = vigil__strdup(colon + 1)))
        return vigil__error_oom();
    return VIGIL_OK;
}

static int parse_health(service_spec *s, const vigil_config_node *h)
{
    int rc;
    const char *http, *tcp;
    if ((rc = vigil_config_map(h)) < 0 || (rc = vigil_config_expect_keys(h, health_keys)) < 0 ||
        (rc = vigil__manifest_string(&http, h, "http", false)) < 0 ||
        (rc = vigil__manifest_string(&tcp, h, "tcp", false)) < 0)
        return rc;
    if (!http == !tcp)
        return vigil__manifest_err(h, http ? VIGIL_EVALUE : VIGIL_EMISSING,
                                   "expected one of http or tcp");
    if ((rc = vigil_config_get_duration(&s->timeout_ms, h, "timeout", HEALTH_TIMEOUT)) < 0)
        return rc;
    if (s->timeout_ms <= 0 || s->timeout_ms > HEALTH_MAX)
        return vigil__manifest_err(vigil_config_node_get(h, "timeout"), VIGIL_ERANGE,
                                   "expected a timeout from 1ms to 60s");
    if (http) {
        if ((strncmp(http, "http://", 7) != 0 && strncmp(http, "https://", 8) != 0) ||
            strlen(http) > 2048)
            return vigil__manifest_err(vigil_config_node_get(h, "http"), VIGIL_EVALUE,
                                       "expected an http:// or https:// URL, got \"%.64s\"", http);
        if (!(s->http = vigil__strdup(http)))
            return vigil__error_oom();
        return VIGIL_OK;
    }
    return parse_tcp(s, vigil_config_node_get(h, "tcp"), tcp);
}

static int service_json(service_spec *s)
{
    vigil_buf b = VIGIL_BUF_INIT;
    bool first = true;
    int rc = vigil__buf_putc(&b, '{');
    if (rc >= 0 && s->argv) {
        bool f2 = true;
        if ((rc = vigil__manifest_json_key(&b, &first, "process")) >= 0 &&
            (rc = vigil__buf_putc(&b, '{')) >= 0 &&
            (rc = vigil__manifest_json_key(&b, &f2, "start")) >= 0)
            rc = vigil__buf_putc(&b, '[');
        for (size_t i = 0; rc >= 0 && i < s->argc; i++)
            if (!(i && (rc = vigil__buf_putc(&b, ',')) < 0))
                rc = vigil__manifest_json_str(&b, s->argv[i]);
        if (rc >= 0)
            rc = vigil__buf_putc(&b, ']');
        if (rc >= 0 && s->pidfile && (rc = vigil__manifest_json_key(&b, &f2, "pidfile")) >= 0)
            rc = vigil__manifest_json_str(&b, s->pidfile);
        if (rc >= 0 && s->has_user && (rc = vigil__manifest_json_key(&b, &f2, "uid")) >= 0)
            rc = vigil__buf_printf(&b, "%u", (unsigned)s->uid);
        if (rc >= 0)
            rc = vigil__buf_putc(&b, '}');
    }
    if (rc >= 0 && s->unit && (rc = vigil__manifest_json_key(&b, &first, "unit")) >= 0)
        rc = vigil__manifest_json_str(&b, s->unit);
    if (rc >= 0 && (rc = vigil__manifest_json_key(&b, &first, "state")) >= 0)
        rc = vigil__manifest_json_str(&b, s->running ? "running" : "stopped");
    if (rc >= 0 && s->replicas >= 0 && (rc = vigil__manifest_json_key(&b, &first, "replicas")) >= 0)
        rc = vigil__buf_printf(&b, "%lld", (long long)s->replicas);
    if (rc >= 0 && (s->http || s->tcp_host)) {
        bool f2 = true;
        char d[32];
        vigil_scalar_format_duration(d, sizeof(d), s->timeout_ms);
        if ((rc = vigil__manifest_json_key(&b, &first, "health")) >= 0)
            rc = vigil__buf_putc(&b, '{');
        if (rc >= 0 && s->http && (rc = vigil__manifest_json_key(&b, &f2, "http")) >= 0)
            rc = vigil__manifest_json_str(&b, s->http);
        if (rc >= 0 && s->tcp_host && (rc = vigil__manifest_json_key(&b, &f2, "tcp")) >= 0) {
            char hp[600];
            snprintf(hp, sizeof(hp), strchr(s->tcp_host, ':') ? "[%s]:%s" : "%s:%s", s->tcp_host,
                     s->tcp_port);
            rc = vigil__manifest_json_str(&b, hp);
        }
        if (rc >= 0 && (rc = vigil__manifest_json_key(&b, &f2, "timeout")) >= 0)
            rc = vigil__manifest_json_str(&b, d);
        if (rc >= 0)
            rc = vigil__buf_putc(&b, '}');
    }
    if (rc >= 0 && s->action && (rc = vigil__manifest_json_key(&b, &first, "action")) >= 0)
        rc = vigil__manifest_json_str(&b, s->action);
    if (rc >= 0)
        rc = vigil__buf_putc(&b, '}');
    if (rc < 0) {
        vigil_buf_dispose(&b);
        return rc;
    }
    s->json = vigil__buf_detach(&b);
    return s->json ? VIGIL_OK : vigil__error_oom();
}

static int service_parse(void **state, const vigil_config_node *spec,
                         const vigil_resource_context *ctx)
{
    (void)ctx;
    int rc, self_heal = 0;
    const char *unit, *st, *action;
    const vigil_config_node *proc = vigil_config_node_get(spec, "process");
    if (proc && vigil_config_node_kind(proc) == VIGIL_CONFIG_NULL)
        proc = NULL;
    if ((rc = vigil__manifest_string(&unit, spec, "unit", false)) < 0)
        return rc;
    if (!proc == !unit)
        return vigil__manifest_err(spec, proc ? VIGIL_EVALUE : VIGIL_EMISSING,
                                   "expected one of process or unit");
    service_spec *s = vigil__calloc(1, sizeof(*s));
    if (!s)
        return vigil__error_oom();
    s->replicas = -1;
    if (proc && (rc = parse_process(s, proc)) < 0)
        goto fail;
    if (unit) {
        if (!unit_valid(unit)) {
            rc = vigil__manifest_err(vigil_config_node_get(spec, "unit"), VIGIL_EVALUE,
                                     "expected a systemd unit name such as api.service, got "
                                     "\"%.64s\"",
                                     unit);
            goto fail;
        }
        if (!(s->unit = vigil__strdup(unit))) {
            rc = vigil__error_oom();
            goto fail;
        }
    }
    if ((rc = vigil_config_get_string(&st, spec, "state", "running")) < 0)
        goto fail;
    if (strcmp(st, "running") != 0 && strcmp(st, "stopped") != 0) {
        rc = vigil__manifest_err(vigil_config_node_get(spec, "state"), VIGIL_EVALUE,
                                 "expected running or stopped, got \"%.32s\"", st);
        goto fail;
    }
    s->running = strcmp(st, "running") == 0;
    const vigil_config_node *rn = vigil_config_node_get(spec, "replicas");
    if (rn && vigil_config_node_kind(rn) != VIGIL_CONFIG_NULL) {
        if (!proc) {
            rc = vigil__manifest_err(rn, VIGIL_EVALUE, "replicas needs process (not unit)");
            goto fail;
        }
        if ((rc = vigil_config_int(&s->replicas, rn)) < 0)
            goto fail;
        if (s->replicas < 0 || s->replicas > REPLICAS_MAX) {
            rc = vigil__manifest_err(rn, VIGIL_ERANGE, "expected 0 to %d", REPLICAS_MAX);
            goto fail;
        }
    }
    const vigil_config_node *hn = vigil_config_node_get(spec, "health");
    if (hn && vigil_config_node_kind(hn) != VIGIL_CONFIG_NULL && (rc = parse_health(s, hn)) < 0)
        goto fail;
    if ((rc = vigil__manifest_string(&action, spec, "action", false)) < 0 ||
        (rc = vigil_config_get_bool(&self_heal, spec, "selfHeal", 0)) < 0)
        goto fail;
    if (action && !action_valid(action)) {
        rc = vigil__manifest_err(vigil_config_node_get(spec, "action"), VIGIL_EVALUE,
                                 "invalid action name \"%.64s\" (1 to 128 of A-Z a-z 0-9 _ . : -)",
                                 action);
        goto fail;
    }
    if (self_heal && !action) {
        rc = vigil__manifest_err(spec, VIGIL_EMISSING,
                                 "missing required key \"action\" (selfHeal needs the action "
                                 "that restores the service)");
        goto fail;
    }
    if ((action && !(s->action = vigil__strdup(action))) || (rc = service_json(s)) < 0) {
        rc = rc < 0 ? rc : vigil__error_oom();
        goto fail;
    }
    *state = s;
    return VIGIL_OK;
fail:
    service_destroy(s);
    return rc;
}

static const char *service_to_json(const void *state)
{
    return ((const service_spec *)state)->json;
}

/* ---- observe ---------------------------------------------------------------- */

/* Reads up to max bytes of a small file; -1 when it cannot be opened. */
static ssize_t read_small(const char *path, char *buf, size_t max)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    size_t got = 0;
    while (got < max) {
        ssize_t n = read(fd, buf + got, max - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    return (ssize_t)got;
}

/* Processes whose command line is exactly argv. */
static int64_t count_replicas(const service_spec *s, const char *proc_root)
{
    DIR *d = opendir(proc_root);
    if (!d)
        return -1;
    char *buf = vigil__malloc(CMDLINE_MAX);
    if (!buf) {
        closedir(d);
        return -1;
    }
    size_t want = 0;
    for (size_t i = 0; i < s->argc; i++)
        want += strlen(s->argv[i]) + 1;
    int64_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] < '1' || de->d_name[0] > '9' ||
            strspn(de->d_name, "0123456789") != strlen(de->d_name))
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s/cmdline", proc_root, de->d_name);
        ssize_t len = read_small(path, buf, CMDLINE_MAX);
        if (len != (ssize_t)want)
            continue;
        size_t off = 0, i = 0;
        for (; i < s->argc; i++) {
            size_t l = strlen(s->argv[i]) + 1;
            if (memcmp(buf + off, s->argv[i], l) != 0)
                break;
            off += l;
        }
        n += i == s->argc;
    }
    vigil__free(buf);
    closedir(d);
    return n;
}

/* Field 22 (starttime) and the state of <proc>/PID/stat; -1 when gone. */
static int proc_stat(const char *proc_root, pid_t pid, char *state, unsigned long long *start)
{
    char path[PATH_MAX], buf[1024];
    snprintf(path, sizeof(path), "%s/%d/stat", proc_root, (int)pid);
    ssize_t n = read_small(path, buf, sizeof(buf) - 1);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    if (!p || sscanf(p + 2, "%c", state) != 1)
        return -1;
    /* starttime (field 22) is the 19th field after the state (field 3) */
    const char *q = p + 2;
    for (int f = 0; f < 19 && q; f++) {
        q = strchr(q, ' ');
        if (q)
            q++;
    }
    if (!q || sscanf(q, "%llu", start) != 1)
        return -1;
    return 0;
}

static int observe_pidfile(const service_spec *s, const vigil_resource_context *ctx, service_obs *o)
{
    vigil__pidfile pf;
    char why[512] = "";
    int r = vigil__proc_pidfile_read(s->pidfile, &pf, why, sizeof(why));
    if (r == VIGIL__PIDFILE_MISSING || r == VIGIL__PIDFILE_GARBAGE)
        return VIGIL_OK; /* not running */
    if (r != VIGIL__PIDFILE_OK)
        return vigil__error_set(VIGIL_EIO, "%s", why);
    char st = 0;
    unsigned long long start = 0;
    if (proc_stat(ctx->proc_root, pf.pid, &st, &start) < 0 || st == 'Z' || st == 'X')
        return VIGIL_OK; /* gone */
    if (pf.has_start && pf.start != start)
        return VIGIL_OK; /* the pid was reused */
    if (strcmp(ctx->proc_root, "/proc") == 0) {
        int id = vigil__proc_identity(pf.pid, s->argv[0], s->has_user ? s->uid : geteuid(), why,
                                      sizeof(why));
        if (id != VIGIL__ID_OK) {
            if (id != VIGIL__ID_GONE)
                vigil__log(ctx->logger, VIGIL_LOG_WARN, "manifest",
                           "the pidfile names another process", "service=%s pidfile=%s why=%s",
                           ctx->name, s->pidfile, why);
            return VIGIL_OK;
        }
    }
    o->running = 1;
    return VIGIL_OK;
}

static int observe_unit(const service_spec *s, const vigil_resource_context *ctx, service_obs *o)
{
    const char *argv[] = {ctx->systemctl, "show", "--property=ActiveState", "--", s->unit, NULL};
    vigil__proc_spec ps = {0};
    ps.argv = argv;
    ps.out_fd = -1;
    ps.stderr_to_null = false;
    ps.max_output = 4096;
    ps.deadline_ms = vigil__monotonic_ms() + SYSTEMCTL_WAIT;
    vigil__proc_result res;
    memset(&res, 0, sizeof(res));
    int rc = vigil__proc_run(&ps, &res);
    if (rc < 0) {
        vigil_buf_dispose(&res.output);
        return rc;
    }
    const char *out = res.output.ptr ? res.output.ptr : "";
    if (res.how != VIGIL__PROC_EXITED || res.exit_code != 0) {
        rc = vigil__error_set(VIGIL_ECHILD, "%s show %s failed (%s %d): %.200s", ctx->systemctl,
                              s->unit, res.how == VIGIL__PROC_EXITED ? "exit" : "how",
                              res.how == VIGIL__PROC_EXITED ? res.exit_code : res.how, out);
        vigil_buf_dispose(&res.output);
        return rc;
    }
    const char *p = strstr(out, "ActiveState=");
    if (!p) {
        rc = vigil__error_set(VIGIL_ECORRUPT, "%s show %s: no ActiveState in \"%.100s\"",
                              ctx->systemctl, s->unit, out);
        vigil_buf_dispose(&res.output);
        return rc;
    }
    p += strlen("ActiveState=");
    o->running = strncmp(p, "active", 6) == 0 && (p[6] == '\n' || p[6] == '\0');
    vigil_buf_dispose(&res.output);
    return VIGIL_OK;
}

static void check_tcp(const service_spec *s, service_obs *o)
{
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    int g = getaddrinfo(s->tcp_host, s->tcp_port, &hints, &ai);
    if (g != 0) {
        snprintf(o->health, sizeof(o->health), "tcp %.100s:%s: %.100s", s->tcp_host, s->tcp_port,
                 gai_strerror(g));
        return;
    }
    int err = ETIMEDOUT;
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        int fd =
            socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int c = connect(fd, a->ai_addr, a->ai_addrlen);
        if (c != 0 && errno == EINPROGRESS) {
            struct pollfd pfd = {fd, POLLOUT, 0};
            int pr;
            while ((pr = poll(&pfd, 1, (int)s->timeout_ms)) < 0 && errno == EINTR)
                ;
            socklen_t l = sizeof(err);
            if (pr == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) == 0 && err == 0)
                c = 0;
            else if (pr == 0)
                err = ETIMEDOUT;
        } else if (c != 0) {
            err = errno;
        }
        close(fd);
        if (c == 0) {
            freeaddrinfo(ai);
            return;
        }
    }
    freeaddrinfo(ai);
    snprintf(o->health, sizeof(o->health), "tcp %.100s:%s: %.100s", s->tcp_host, s->tcp_port,
             strerror(err));
}

static void check_http(const service_spec *s, service_obs *o)
{
    vigil__http *h = NULL;
    if (vigil__http_new(&h) < 0) {
        snprintf(o->health, sizeof(o->health), "http: %s", vigil_error_last()->message);
        return;
    }
    vigil__http_request req = VIGIL__HTTP_REQUEST_INIT;
    req.url = s->http;
    req.timeout_ms = s->timeout_ms;
    req.connect_timeout_ms = s->timeout_ms;
    req.max_response = 65536;
    req.overflow = VIGIL__HTTP_OVERFLOW_STOP;
    req.fresh_connection = 1;
    req.no_proxy = 1;
    vigil__http_response resp = VIGIL__HTTP_RESPONSE_INIT;
    int rc = vigil__http_perform(h, &req, &resp);
    if (rc < 0)
        snprintf(o->health, sizeof(o->health), "GET %.100s: %.120s", s->http,
                 resp.error[0] ? resp.error : vigil_error_last()->message);
    else if (resp.status < 200 || resp.status > 399)
        snprintf(o->health, sizeof(o->health), "GET %.100s: HTTP %ld", s->http, resp.status);
    vigil__http_response_dispose(&resp);
    vigil__http_free(h);
}

static int service_observe(void **observed, const void *state, const vigil_resource_context *ctx)
{
    const service_spec *s = state;
    service_obs *o = vigil__calloc(1, sizeof(*o));
    if (!o)
        return vigil__error_oom();
    o->replicas = -1;
    int rc = VIGIL_OK;
    if (s->unit) {
        rc = observe_unit(s, ctx, o);
    } else {
        if (s->replicas >= 0 || !s->pidfile) {
            o->replicas = count_replicas(s, ctx->proc_root);
            if (o->replicas < 0)
                rc = vigil__error_set(VIGIL_EIO, "cannot read %s: %s", ctx->proc_root,
                                      strerror(errno));
            else if (!s->pidfile)
                o->running = o->replicas > 0;
        }
        if (rc == VIGIL_OK && s->pidfile)
            rc = observe_pidfile(s, ctx, o);
    }
    if (rc < 0) {
        vigil__free(o);
        return rc;
    }
    if (s->running && o->running && (s->http || s->tcp_host)) {
        o->health_checked = 1;
        if (s->http)
            check_http(s, o);
        else
            check_tcp(s, o);
    }
    *observed = o;
    return VIGIL_OK;
}

static int service_diff(vigil_resource_diff *d, const void *state, const void *observed,
                        const vigil_resource_context *ctx)
{
    const service_spec *s = state;
    const service_obs *o = observed;
    (void)ctx;
    int rc;
    if (s->running != o->running &&
        (rc = vigil_resource_diff_add(d, "state", s->running ? "running" : "stopped",
                                      o->running ? "running" : "stopped")) < 0)
        return rc;
    if (s->running && s->replicas >= 0 && o->replicas >= 0 && s->replicas != o->replicas &&
        (rc = vigil_resource_diff_add_int(d, "replicas", s->replicas, o->replicas)) < 0)
        return rc;
    if (o->health_checked && o->health[0] &&
        (rc = vigil_resource_diff_add(d, "health", "ok", o->health)) < 0)
        return rc;
    return VIGIL_OK;
}

static void service_observed_free(void *observed)
{
    vigil__free(observed);
}

static int service_heal(vigil_resource_heal *h, const void *state, const void *observed,
                        const vigil_resource_context *ctx)
{
    const service_spec *s = state;
    (void)observed;
    if (!s->action)
        return VIGIL_OK;
    return vigil_resource_heal_set(h, s->action, ctx->name);
}

const vigil_resource_type vigil__resource_service = {
    .version = VIGIL_RESOURCE_TYPE_VERSION,
    .name = "Service",
    .keys = service_keys,
    .parse = service_parse,
    .to_json = service_to_json,
    .observe = service_observe,
    .diff = service_diff,
    .observed_free = service_observed_free,
    .heal = service_heal,
    .destroy = service_destroy,
};
