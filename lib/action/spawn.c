/* Child processes for actions: fork + execve of an argv array (never a
 * shell), a new process group, a scrubbed environment, captured output,
 * deadlines that SIGKILL the whole group. Plus the configuration helpers
 * the built-in types share (paths, argv templates, users, signals). */
#include "action/action_int.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- configuration helpers ---------------------------------------------- */

int vigil__action_cfg_error(const vigil_config_node *node, int code, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (!node)
        return vigil__error_set(code, "%s", msg);
    return vigil_config_error(node, code, msg);
}

int vigil__action_path(char **out, const vigil_config_node *node, const char *path,
                       const char *base_dir)
{
    *out = NULL;
    if (!path || !*path)
        return vigil__action_cfg_error(node, VIGIL_EVALUE, "expected a path, got \"\"");
    if (path[0] == '/') {
        *out = vigil__strdup(path);
        return *out ? VIGIL_OK : vigil__error_oom();
    }
    if (!base_dir)
        return vigil__action_cfg_error(
            node, VIGIL_EVALUE,
            "relative path \"%.200s\" needs a base directory (give an absolute path)", path);
    vigil_buf b = VIGIL_BUF_INIT;
    const char *p = path;
    while (p[0] == '.' && p[1] == '/')
        p += 2;
    int rc = vigil__buf_puts(&b, base_dir);
    if (!rc && (b.size == 0 || b.ptr[b.size - 1] != '/'))
        rc = vigil__buf_putc(&b, '/');
    if (!rc)
        rc = vigil__buf_puts(&b, p);
    if (rc) {
        vigil_buf_dispose(&b);
        return rc;
    }
    *out = vigil__buf_detach(&b);
    return VIGIL_OK;
}

int vigil__action_get_path(char **out, const vigil_config_node *map, const char *key,
                           const char *base_dir)
{
    const char *s = NULL;
    *out = NULL;
    int rc = vigil_config_get_string(&s, map, key, NULL);
    if (rc || !s)
        return rc;
    return vigil__action_path(out, vigil_config_node_get(map, key), s, base_dir);
}

void vigil__action_strv_free(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        vigil__free(*p);
    vigil__free(v);
}

int vigil__action_get_strv(char ***out, size_t *n, const vigil_config_node *map, const char *key,
                           size_t max)
{
    *out = NULL;
    if (n)
        *n = 0;
    const vigil_config_node *list = vigil_config_node_get(map, key);
    size_t len = 0;
    if (list && vigil_config_node_kind(list) != VIGIL_CONFIG_NULL) {
        int rc = vigil_config_list(list);
        if (rc)
            return rc;
        len = vigil_config_node_len(list);
        if (len > max)
            return vigil__action_cfg_error(list, VIGIL_ELIMIT, "at most %zu entries allowed", max);
    }
    char **v = vigil__calloc(len + 1, sizeof(char *));
    if (!v)
        return vigil__error_oom();
    for (size_t i = 0; i < len; i++) {
        const char *s;
        int rc = vigil_config_string(&s, vigil_config_node_at(list, i));
        if (!rc && !(v[i] = vigil__strdup(s)))
            rc = vigil__error_oom();
        if (rc) {
            vigil__action_strv_free(v);
            return rc;
        }
    }
    *out = v;
    if (n)
        *n = len;
    return VIGIL_OK;
}

/* Length of the valid UTF-8 sequence starting at s, 0 when invalid. */
static size_t utf8_len(const unsigned char *s)
{
    size_t len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
    for (size_t i = 1; i < len; i++)
        if (!s[i])
            return 0;
    return len && vigil__utf8_valid((const char *)s, len) ? len : 0;
}

int vigil__action_quote(vigil_buf *b, const char *s, size_t max)
{
    int rc = vigil__buf_putc(b, '"');
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t i = 0;
    while (p[i] && !rc) {
        unsigned char c = p[i];
        if (i >= max) {
            rc = vigil__buf_puts(b, "...");
            break;
        }
        if (c == '"' || c == '\\')
            rc = vigil__buf_printf(b, "\\%c", c);
        else if (c == '\n')
            rc = vigil__buf_puts(b, "\\n");
        else if (c == '\t')
            rc = vigil__buf_puts(b, "\\t");
        else if (c < 0x20 || c == 0x7f)
            rc = vigil__buf_printf(b, "\\x%02x", c);
        else if (c < 0x80)
            rc = vigil__buf_putc(b, (char)c);
        else {
            size_t k = utf8_len(p + i); /* whole characters only; bad bytes as \xNN */
            if (k) {
                rc = vigil__buf_put(b, (const char *)p + i, k);
                i += k;
                continue;
            }
            rc = vigil__buf_printf(b, "\\x%02x", c);
        }
        i++;
    }
    return rc ? rc : vigil__buf_putc(b, '"');
}

/* ---- signals --------------------------------------------------------------- */

static const struct {
    const char *name;
    int sig;
} k_signals[] = {
    {"HUP", SIGHUP},   {"INT", SIGINT},       {"QUIT", SIGQUIT},   {"KILL", SIGKILL},
    {"USR1", SIGUSR1}, {"USR2", SIGUSR2},     {"TERM", SIGTERM},   {"CONT", SIGCONT},
    {"STOP", SIGSTOP}, {"ALRM", SIGALRM},     {"WINCH", SIGWINCH}, {"TSTP", SIGTSTP},
    {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},     {"PIPE", SIGPIPE},   {"ABRT", SIGABRT},
    {"URG", SIGURG},   {"IO", SIGIO},         {"PWR", SIGPWR},     {"XCPU", SIGXCPU},
    {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},   {"SYS", SIGSYS},
};

int vigil__action_signal_parse(const char *name)
{
    if (!name)
        return 0;
    if (strncasecmp(name, "SIG", 3) == 0)
        name += 3;
    for (size_t i = 0; i < VIGIL__ARRAY_LEN(k_signals); i++)
        if (strcasecmp(name, k_signals[i].name) == 0)
            return k_signals[i].sig;
    return 0;
}

const char *vigil__action_signal_name(int sig)
{
    for (size_t i = 0; i < VIGIL__ARRAY_LEN(k_signals); i++)
        if (k_signals[i].sig == sig)
            return k_signals[i].name;
    return "?";
}

int vigil__action_get_signal(int *out, const vigil_config_node *map, const char *key, int dflt)
{
    const char *s;
    int rc = vigil_config_get_string(&s, map, key, NULL);
    if (rc)
        return rc;
    if (!s) {
        *out = dflt;
        return VIGIL_OK;
    }
    int sig = vigil__action_signal_parse(s);
    if (!sig)
        return vigil__action_cfg_error(vigil_config_node_get(map, key), VIGIL_EVALUE,
                                       "unknown signal \"%.64s\" (use a name such as HUP, TERM, "
                                       "USR1)",
                                       s);
    *out = sig;
    return VIGIL_OK;
}

/* ---- users and groups ------------------------------------------------------ */

static int parse_id(const char *s, unsigned long *out)
{
    if (!*s || !isdigit((unsigned char)*s))
        return -1;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v >= (unsigned long)UINT32_MAX)
        return -1;
    *out = v;
    return 0;
}

static int lookup_user(const vigil_config_node *node, const char *name, uid_t *uid, gid_t *gid,
                       char **pw_name)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    unsigned long v;
    int e;
    if (parse_id(name, &v) == 0)
        e = getpwuid_r((uid_t)v, &pw, buf, sizeof(buf), &res);
    else
        e = getpwnam_r(name, &pw, buf, sizeof(buf), &res);
    if (e || !res)
        return vigil__action_cfg_error(node, VIGIL_ENOTFOUND, "unknown user \"%.64s\"", name);
    *uid = pw.pw_uid;
    *gid = pw.pw_gid;
    *pw_name = vigil__strdup(pw.pw_name);
    return *pw_name ? VIGIL_OK : vigil__error_oom();
}

static int lookup_group(const vigil_config_node *node, const char *name, gid_t *gid)
{
    struct group gr, *res = NULL;
    char buf[16384];
    unsigned long v;
    int e;
    if (parse_id(name, &v) == 0)
        e = getgrgid_r((gid_t)v, &gr, buf, sizeof(buf), &res);
    else
        e = getgrnam_r(name, &gr, buf, sizeof(buf), &res);
    if (e || !res)
        return vigil__action_cfg_error(node, VIGIL_ENOTFOUND, "unknown group \"%.64s\"", name);
    *gid = gr.gr_gid;
    return VIGIL_OK;
}

void vigil__ids_free(vigil__ids *ids)
{
    if (!ids)
        return;
    vigil__free(ids->groups);
    memset(ids, 0, sizeof(*ids));
}

int vigil__ids_parse(vigil__ids *ids, const vigil_config_node *map)
{
    memset(ids, 0, sizeof(*ids));
    const char *user = NULL, *group = NULL;
    int rc = vigil_config_get_string(&user, map, "user", NULL);
    if (!rc)
        rc = vigil_config_get_string(&group, map, "group", NULL);
    if (rc || (!user && !group))
        return rc;
    uid_t uid = geteuid();
    gid_t gid = getegid();
    char *pw_name = NULL;
    const vigil_config_node *where = vigil_config_node_get(map, user ? "user" : "group");
    if (user && (rc = lookup_user(vigil_config_node_get(map, "user"), user, &uid, &gid, &pw_name)))
        return rc;
    if (group && (rc = lookup_group(vigil_config_node_get(map, "group"), group, &gid))) {
        vigil__free(pw_name);
        return rc;
    }
    if (geteuid() != 0) {
        vigil__free(pw_name);
        if (uid == geteuid() && gid == getegid())
            return VIGIL_OK; /* already that identity: nothing to drop */
        return vigil__action_cfg_error(where, VIGIL_EPERM,
                                       "changing to another user or group needs root (Vigil "
                                       "runs as uid %u)",
                                       (unsigned)geteuid());
    }
    int n = 64;
    gid_t *groups = vigil__calloc((size_t)n, sizeof(gid_t));
    if (!groups) {
        vigil__free(pw_name);
        return vigil__error_oom();
    }
    if (pw_name) {
        if (getgrouplist(pw_name, gid, groups, &n) < 0)
            n = 64; /* more than 64: keep the first 64 */
    } else {
        groups[0] = gid;
        n = 1;
    }
    vigil__free(pw_name);
    ids->set = 1;
    ids->uid = uid;
    ids->gid = gid;
    ids->groups = groups;
    ids->ngroups = (size_t)n;
    return VIGIL_OK;
}

/* ---- environment ----------------------------------------------------------- */

static bool env_name_valid(const char *s)
{
    if (!s || !(isalpha((unsigned char)*s) || *s == '_'))
        return false;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_'))
            return false;
    return true;
}

int vigil__env_names_parse(char ***out, const vigil_config_node *map)
{
    size_t n;
    int rc = vigil__action_get_strv(out, &n, map, "env_passthrough", VIGIL__ENV_MAX);
    if (rc)
        return rc;
    const vigil_config_node *list = vigil_config_node_get(map, "env_passthrough");
    for (size_t i = 0; i < n; i++) {
        const char *s = (*out)[i];
        if (!env_name_valid(s) || strcmp(s, "PATH") == 0) {
            rc = vigil__action_cfg_error(vigil_config_node_at(list, i), VIGIL_EVALUE,
                                         strcmp(s, "PATH") == 0
                                             ? "PATH is fixed (/usr/sbin:/usr/bin:/sbin:/bin) and "
                                               "cannot be passed through"
                                             : "\"%.64s\" is not an environment variable name",
                                         s);
            vigil__action_strv_free(*out);
            *out = NULL;
            return rc;
        }
    }
    return VIGIL_OK;
}

int vigil__env_build(char ***out, char *const *names, vigil_getenv_cb getenv_cb, void *payload)
{
    size_t n = 0;
    while (names && names[n])
        n++;
    char **env = vigil__calloc(n + 2, sizeof(char *));
    if (!env)
        return vigil__error_oom();
    size_t k = 0;
    if (!(env[k++] = vigil__strdup(VIGIL__ACTION_PATH)))
        goto oom;
    for (size_t i = 0; i < n; i++) {
        const char *v = getenv_cb ? getenv_cb(payload, names[i]) : getenv(names[i]);
        if (!v)
            continue;
        vigil_buf b = VIGIL_BUF_INIT;
        if (vigil__buf_printf(&b, "%s=%s", names[i], v)) {
            vigil_buf_dispose(&b);
            goto oom;
        }
        env[k++] = vigil__buf_detach(&b);
    }
    *out = env;
    return VIGIL_OK;
oom:
    vigil__action_strv_free(env);
    return vigil__error_oom();
}

/* ---- argv templates --------------------------------------------------------- */

void vigil__argv_free(vigil__argv_tpl *tpl)
{
    if (!tpl)
        return;
    for (size_t i = 0; tpl->text && i < tpl->n; i++)
        vigil__free(tpl->text[i]);
    vigil__free(tpl->text);
    vigil__free(tpl->kind);
    memset(tpl, 0, sizeof(*tpl));
}

/* "{{target}}" / "{{ params.x }}" -> kind and name; -1 when the element
 * holds no placeholder, -2 when it holds one that does not fill it. */
static int placeholder(const char *s, const char **name, size_t *nlen)
{
    const char *open = strstr(s, "{{");
    if (!open)
        return strstr(s, "}}") ? -2 : -1;
    if (open != s)
        return -2;
    const char *p = s + 2;
    while (*p == ' ')
        p++;
    const char *start = p;
    while (*p && *p != ' ' && *p != '}')
        p++;
    const char *end = p;
    while (*p == ' ')
        p++;
    if (strcmp(p, "}}") != 0)
        return -2;
    size_t len = (size_t)(end - start);
    if (len == 6 && memcmp(start, "target", 6) == 0)
        return VIGIL__ARG_TARGET;
    if (len > 7 && memcmp(start, "params.", 7) == 0) {
        *name = start + 7;
        *nlen = len - 7;
        return VIGIL__ARG_PARAM;
    }
    *name = start;
    *nlen = len;
    return -3;
}

int vigil__argv_parse(vigil__argv_tpl *tpl, const vigil_config_node *map, const char *key,
                      const char *base_dir, bool allow_placeholders)
{
    memset(tpl, 0, sizeof(*tpl));
    int rc = vigil_config_require(map, key);
    if (rc)
        return rc;
    const vigil_config_node *list = vigil_config_node_get(map, key);
    if ((rc = vigil_config_list(list)))
        return rc;
    size_t n = vigil_config_node_len(list);
    if (n == 0)
        return vigil__action_cfg_error(list, VIGIL_EVALUE,
                                       "expected at least the program, got an empty list");
    if (n > VIGIL__ARGV_MAX)
        return vigil__action_cfg_error(list, VIGIL_ELIMIT, "at most %d elements allowed",
                                       VIGIL__ARGV_MAX);
    const vigil_config_node *params = vigil_config_node_get(map, "params");
    tpl->text = vigil__calloc(n, sizeof(char *));
    tpl->kind = vigil__calloc(n, sizeof(int));
    if (!tpl->text || !tpl->kind) {
        vigil__argv_free(tpl);
        return vigil__error_oom();
    }
    tpl->n = n;
    for (size_t i = 0; i < n; i++) {
        const vigil_config_node *el = vigil_config_node_at(list, i);
        const char *s;
        if ((rc = vigil_config_string(&s, el)))
            goto fail;
        const char *name = NULL;
        size_t nlen = 0;
        int kind = placeholder(s, &name, &nlen);
        if (kind != -1 && (i == 0 || !allow_placeholders)) {
            rc = vigil__action_cfg_error(el, VIGIL_EVALUE,
                                         i == 0 ? "the program must be a literal path, not a "
                                                  "placeholder"
                                                : "placeholders are not allowed here");
            goto fail;
        }
        if (kind == -2) {
            rc = vigil__action_cfg_error(el, VIGIL_EVALUE,
                                         "placeholders must fill a whole argv element, got "
                                         "\"%.200s\"",
                                         s);
            goto fail;
        }
        if (kind == -3) {
            rc = vigil__action_cfg_error(el, VIGIL_EVALUE,
                                         "unknown placeholder {{%.*s}} (use {{target}} or "
                                         "{{params.NAME}})",
                                         (int)(nlen > 64 ? 64 : nlen), name);
            goto fail;
        }
        if (kind == VIGIL__ARG_PARAM) {
            char pname[VIGIL_ACTION_NAME_MAX + 1];
            if (nlen > VIGIL_ACTION_NAME_MAX)
                nlen = VIGIL_ACTION_NAME_MAX;
            memcpy(pname, name, nlen);
            pname[nlen] = '\0';
            if (!vigil_config_node_get(params, pname)) {
                rc = vigil__action_cfg_error(el, VIGIL_EVALUE,
                                             "{{params.%s}} needs an entry \"%s\" in params (the "
                                             "pattern its values must match)",
                                             pname, pname);
                goto fail;
            }
            tpl->text[i] = vigil__strdup(pname);
        } else if (kind == VIGIL__ARG_TARGET) {
            tpl->text[i] = vigil__strdup("target");
        } else if (i == 0) {
            if ((rc = vigil__action_path(&tpl->text[0], el, s, base_dir)))
                goto fail;
        } else {
            tpl->text[i] = vigil__strdup(s);
        }
        if (!tpl->text[i]) {
            rc = vigil__error_oom();
            goto fail;
        }
        tpl->kind[i] = kind < 0 ? VIGIL__ARG_LITERAL : kind;
    }
    return VIGIL_OK;
fail:
    vigil__argv_free(tpl);
    return rc;
}

int vigil__argv_check(const vigil__argv_tpl *tpl, const vigil_action_request *req,
                      const char *action)
{
    for (size_t i = 0; i < tpl->n; i++)
        if (tpl->kind[i] == VIGIL__ARG_PARAM && !vigil_action_request_param(req, tpl->text[i]))
            return vigil__error_set(VIGIL_EPERM, "%s: missing param \"%s\" (argv needs it)", action,
                                    tpl->text[i]);
    return VIGIL_OK;
}

void vigil__argv_expand(const vigil__argv_tpl *tpl, const vigil_action_request *req,
                        const char **argv)
{
    for (size_t i = 0; i < tpl->n; i++) {
        switch (tpl->kind[i]) {
        case VIGIL__ARG_TARGET: argv[i] = req->target ? req->target : ""; break;
        case VIGIL__ARG_PARAM: {
            const char *v = vigil_action_request_param(req, tpl->text[i]);
            argv[i] = v ? v : "";
            break;
        }
        default: argv[i] = tpl->text[i];
        }
    }
    argv[tpl->n] = NULL;
}

int vigil__argv_describe(vigil_buf *out, const char *const *argv)
{
    int rc = vigil__buf_puts(out, "would run");
    for (size_t i = 0; argv[i] && !rc; i++) {
        rc = vigil__buf_putc(out, ' ');
        bool plain = argv[i][0] != '\0';
        for (const char *p = argv[i]; *p && plain; p++)
            plain = isalnum((unsigned char)*p) || strchr("/._-=:,@+%", *p);
        if (!rc)
            rc = plain ? vigil__buf_puts(out, argv[i]) : vigil__action_quote(out, argv[i], 256);
    }
    return rc;
}

/* ---- child processes --------------------------------------------------------- */

static int64_t now_mono(void)
{
    return vigil__monotonic_ms();
}

/* Moves fd to a number >= 3 (close-on-exec), so the child's dup2 calls onto
 * 0, 1 and 2 never clobber it. */
static int fd_high(int fd)
{
    if (fd < 0 || fd >= 3)
        return fd;
    int n = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    return n;
}

/* Child side, between fork and exec: async-signal-safe calls only. */
static void child_exec(const vigil__spawn *sp, int devnull, int out, int errfd, int maxfd)
{
    int stage = 0;
    sigset_t none;
    sigemptyset(&none);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            sigaction(s, &dfl, NULL);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (setpgid(0, 0) != 0)
        goto fail;
    stage = 1;
    if (dup2(devnull, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
        goto fail;
    int closed = 0;
#ifdef SYS_close_range
    closed = (errfd == 3 || syscall(SYS_close_range, 3u, (unsigned)errfd - 1, 0u) == 0) &&
             syscall(SYS_close_range, (unsigned)errfd + 1, ~0u, 0u) == 0;
#endif
    if (!closed) {
        for (int fd = 3; fd < maxfd; fd++)
            if (fd != errfd)
                close(fd);
    }
    stage = 2;
    if (sp->ids && sp->ids->set) {
        if (setgroups(sp->ids->ngroups, sp->ids->groups) != 0 || setgid(sp->ids->gid) != 0 ||
            setuid(sp->ids->uid) != 0)
            goto fail;
    }
    stage = 3;
    if (chdir(sp->workdir ? sp->workdir : "/") != 0)
        goto fail;
    stage = 4;
    execve(sp->argv[0], (char *const *)sp->argv, (char *const *)sp->envp);
fail : {
    int msg[2] = {stage, errno};
    ssize_t w = write(errfd, msg, sizeof(msg));
    (void)w;
    _exit(127);
}
}

static const char *const k_stages[] = {"setpgid", "redirecting descriptors",
                                       "changing user or group", "changing directory to", "exec"};

int vigil__spawn_start(const vigil__spawn *sp, int64_t deadline_ms, pid_t *pid, int *pipe_rd)
{
    int devnull = -1, errp[2] = {-1, -1}, outp[2] = {-1, -1};
    int rc = VIGIL_OK;
    *pid = -1;
    if (pipe_rd)
        *pipe_rd = -1;
    devnull = fd_high(open("/dev/null", O_RDWR | O_CLOEXEC));
    if (devnull < 0 || pipe2(errp, O_CLOEXEC) != 0) {
        rc = vigil__error_set(VIGIL_EIO, "cannot prepare a child process: %s", strerror(errno));
        goto out;
    }
    errp[0] = fd_high(errp[0]);
    errp[1] = fd_high(errp[1]);
    int out = sp->out_fd;
    if (out < 0) {
        if (pipe2(outp, O_CLOEXEC) != 0) {
            rc = vigil__error_set(VIGIL_EIO, "cannot create a pipe: %s", strerror(errno));
            goto out;
        }
        outp[0] = fd_high(outp[0]);
        outp[1] = fd_high(outp[1]);
        out = outp[1];
    } else {
        out = sp->out_fd;
    }
    if (devnull < 0 || errp[0] < 0 || errp[1] < 0 || out < 0 || (sp->out_fd < 0 && outp[0] < 0)) {
        rc = vigil__error_set(VIGIL_EIO, "cannot prepare a child process: %s", strerror(errno));
        goto out;
    }
    long omax = sysconf(_SC_OPEN_MAX);
    int maxfd = omax < 0 || omax > 65536 ? 65536 : (int)omax;
    if (out < 3) { /* an out_fd of 0..2 from the caller: move it out of the way */
        rc = vigil__error_set(VIGIL_EINVAL, "output descriptor %d is reserved", out);
        goto out;
    }
    pid_t p = fork();
    if (p < 0) {
        rc = vigil__error_set(VIGIL_ECHILD, "cannot fork: %s", strerror(errno));
        goto out;
    }
    if (p == 0)
        child_exec(sp, devnull, out, errp[1], maxfd);
    setpgid(p, p); /* also from the parent, so the group exists before we signal it */
    close(errp[1]);
    errp[1] = -1;
    if (outp[1] >= 0) {
        close(outp[1]);
        outp[1] = -1;
    }
    int msg[2];
    size_t got = 0;
    for (;;) {
        int64_t left = deadline_ms - now_mono();
        struct pollfd pfd = {errp[0], POLLIN, 0};
        int pr = poll(&pfd, 1, left <= 0 ? 0 : left > 1000 ? 1000 : (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr == 0) {
            if (left > 0)
                continue;
            kill(-p, SIGKILL);
            kill(p, SIGKILL);
            waitpid(p, NULL, 0);
            rc = vigil__error_set(VIGIL_ETIMEOUT, "%s did not start in time", sp->argv[0]);
            goto out;
        }
        ssize_t r = read(errp[0], (char *)msg + got, sizeof(msg) - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
        if (got == sizeof(msg))
            break;
    }
    if (got > 0) {
        int status;
        while (waitpid(p, &status, 0) < 0 && errno == EINTR)
            ;
        int stage = got == sizeof(msg) && msg[0] >= 0 && msg[0] <= 4 ? msg[0] : 4;
        int err = got == sizeof(msg) ? msg[1] : 0;
        if (stage == 3)
            rc = vigil__error_set(VIGIL_ECHILD, "cannot execute %s: changing directory to %s: %s",
                                  sp->argv[0], sp->workdir ? sp->workdir : "/", strerror(err));
        else if (stage == 4)
            rc =
                vigil__error_set(VIGIL_ECHILD, "cannot execute %s: %s", sp->argv[0], strerror(err));
        else
            rc = vigil__error_set(VIGIL_ECHILD, "cannot execute %s: %s: %s", sp->argv[0],
                                  k_stages[stage], strerror(err));
        goto out;
    }
    *pid = p;
    if (pipe_rd) {
        *pipe_rd = outp[0];
        outp[0] = -1;
    }
out:
    if (devnull >= 0)
        close(devnull);
    for (int i = 0; i < 2; i++) {
        if (errp[i] >= 0)
            close(errp[i]);
        if (outp[i] >= 0)
            close(outp[i]);
    }
    return rc;
}

int vigil__pidfd_open(pid_t pid)
{
#ifdef SYS_pidfd_open
    long fd = syscall(SYS_pidfd_open, pid, 0);
    return fd < 0 ? -1 : (int)fd;
#else
    (void)pid;
    return -1;
#endif
}

int vigil__pidfd_signal(int pidfd, pid_t pid, int sig)
{
#ifdef SYS_pidfd_send_signal
    if (pidfd >= 0)
        return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
#else
    (void)pidfd;
#endif
    return kill(pid, sig);
}

/* True when `pid` (our child) has exited, without reaping it. */
static bool child_exited(pid_t pid)
{
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
        return errno == ECHILD;
    return si.si_pid == pid;
}

static int read_some(int fd, vigil__run *run, size_t max_output)
{
    char chunk[16384];
    ssize_t r = read(fd, chunk, sizeof(chunk));
    if (r < 0)
        return errno == EINTR || errno == EAGAIN ? 1 : 0;
    if (r == 0)
        return 0;
    size_t keep = 0;
    if (run->output.size < max_output)
        keep =
            max_output - run->output.size < (size_t)r ? max_output - run->output.size : (size_t)r;
    if (keep < (size_t)r)
        run->truncated = 1;
    if (keep && vigil__buf_put(&run->output, chunk, keep))
        return -1;
    return 1;
}

int vigil__spawn_wait(pid_t pid, int pipe_rd, int64_t deadline_ms, vigil_action_cancel_cb cancel,
                      void *cancel_payload, size_t max_output, vigil__run *run)
{
    int rc = VIGIL_OK;
    run->how = VIGIL__RUN_EXITED;
    run->exit_code = -1;
    run->term_signal = 0;
    run->truncated = 0;
    int pidfd = vigil__pidfd_open(pid);
    int step = 1;
    bool exited = false;
    for (;;) {
        if (child_exited(pid)) {
            exited = true;
            break;
        }
        int64_t now = now_mono();
        if (now >= deadline_ms) {
            run->how = VIGIL__RUN_TIMEOUT;
            break;
        }
        if (cancel && cancel(cancel_payload)) {
            run->how = VIGIL__RUN_CANCELLED;
            break;
        }
        int64_t wait = deadline_ms - now;
        if (cancel && wait > 50)
            wait = 50;
        if (pidfd < 0) { /* no pidfd: poll the child with a growing step */
            if (wait > step)
                wait = step;
            if (step < 50)
                step *= 2;
        }
        struct pollfd pfd[2];
        nfds_t np = 0;
        if (pipe_rd >= 0)
            pfd[np++] = (struct pollfd){pipe_rd, POLLIN, 0};
        if (pidfd >= 0)
            pfd[np++] = (struct pollfd){pidfd, POLLIN, 0};
        int pr = poll(pfd, np, (int)wait);
        if (pr > 0 && pipe_rd >= 0 && (pfd[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            int r = read_some(pipe_rd, run, max_output);
            if (r < 0) {
                rc = vigil__error_oom();
                run->how = VIGIL__RUN_CANCELLED;
                break;
            }
            if (r == 0) {
                close(pipe_rd);
                pipe_rd = -1;
            }
        }
    }
    /* Whatever is left of the group goes: on timeout the program and its
     * children, after a normal exit any process it left behind. The leader
     * is not reaped yet, so the group id cannot have been reused. */
    kill(-pid, SIGKILL);
    if (!exited)
        kill(pid, SIGKILL);
    int status = 0;
    pid_t w;
    while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
        ;
    if (w != pid && run->how == VIGIL__RUN_EXITED)
        run->how = VIGIL__RUN_LOST; /* reaped by someone else (SIGCHLD ignored?) */
    if (pidfd >= 0)
        close(pidfd);
    /* Drain: the writers are gone or dying; stop at EOF or after 100 ms (a
     * process that escaped the group may hold the pipe open). */
    if (pipe_rd >= 0) {
        int64_t until = now_mono() + 100;
        for (;;) {
            int64_t left = until - now_mono();
            struct pollfd pfd = {pipe_rd, POLLIN, 0};
            if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
                break;
            int r = read_some(pipe_rd, run, max_output);
            if (r < 0) {
                rc = vigil__error_oom();
                break;
            }
            if (r == 0)
                break;
        }
        close(pipe_rd);
    }
    if (run->how == VIGIL__RUN_EXITED) {
        if (WIFEXITED(status)) {
            run->exit_code = WEXITSTATUS(status);
        } else if (WIFSIGNALED(status)) {
            run->how = VIGIL__RUN_SIGNALED;
            run->term_signal = WTERMSIG(status);
        }
    }
    return rc;
}

int vigil__spawn_run_result(const vigil__spawn *sp, const vigil_action_exec *exec,
                            size_t max_output, vigil_action_result *result)
{
    pid_t pid;
    int pipe_rd;
    int rc = vigil__spawn_start(sp, exec->deadline_ms, &pid, &pipe_rd);
    if (rc == VIGIL_ETIMEOUT) {
        result->status = VIGIL_ACTION_TIMEOUT;
        const char *m = vigil_error_last()->message;
        int rc2 = vigil_action_result_set_reason(result, "timeout");
        return rc2 ? rc2 : vigil_action_result_set_output(result, m, strlen(m));
    }
    if (rc == VIGIL_ECHILD || rc == VIGIL_EIO) {
        result->status = VIGIL_ACTION_FAILED;
        const char *m = vigil_error_last()->message;
        int rc2 = vigil_action_result_set_reason(result, "spawn_failed");
        return rc2 ? rc2 : vigil_action_result_set_output(result, m, strlen(m));
    }
    if (rc)
        return rc;
    vigil__run run;
    memset(&run, 0, sizeof(run));
    rc = vigil__spawn_wait(pid, pipe_rd, exec->deadline_ms, exec->cancel, exec->cancel_payload,
                           max_output, &run);
    if (!rc)
        rc = vigil_action_result_set_output(result, run.output.ptr ? run.output.ptr : "",
                                            run.output.size);
    vigil_buf_dispose(&run.output);
    if (rc)
        return rc;
    result->output_truncated = run.truncated;
    result->exit_code = run.exit_code;
    result->term_signal = run.term_signal;
    switch (run.how) {
    case VIGIL__RUN_EXITED:
        result->status = run.exit_code == 0 ? VIGIL_ACTION_SUCCEEDED : VIGIL_ACTION_FAILED;
        return run.exit_code == 0 ? VIGIL_OK : vigil_action_result_set_reason(result, "exit_code");
    case VIGIL__RUN_SIGNALED:
        result->status = VIGIL_ACTION_FAILED;
        return vigil_action_result_set_reason(result, "signal");
    case VIGIL__RUN_TIMEOUT:
        result->status = VIGIL_ACTION_TIMEOUT;
        return vigil_action_result_set_reason(result, "timeout");
    case VIGIL__RUN_LOST: {
        static const char msg[] = "the exit status of the program was lost: something else "
                                  "reaped it (is SIGCHLD ignored in this process?)";
        result->status = VIGIL_ACTION_FAILED;
        rc = vigil_action_result_set_reason(result, "lost");
        return rc ? rc : vigil_action_result_set_output(result, msg, sizeof(msg) - 1);
    }
    default:
        result->status = VIGIL_ACTION_FAILED;
        return vigil_action_result_set_reason(result, "cancelled");
    }
}

/* ---- /proc ---------------------------------------------------------------------- */

int vigil__proc_stat(pid_t pid, vigil__procstat *out)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ESRCH
                   ? vigil__error_set(VIGIL_ENOTFOUND, "no process %d", (int)pid)
                   : vigil__error_set(VIGIL_EIO, "%s: %s", path, strerror(errno));
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf) - 1)) < 0 && errno == EINTR)
        ;
    close(fd);
    if (n <= 0)
        return n == 0 || errno == ESRCH
                   ? vigil__error_set(VIGIL_ENOTFOUND, "no process %d", (int)pid)
                   : vigil__error_set(VIGIL_EIO, "%s: %s", path, strerror(errno));
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: parse after the
     * last ')'. Fields from there: 3 state, 4 ppid, 5 pgrp, ... 22 starttime. */
    char *p = strrchr(buf, ')');
    if (!p)
        return vigil__error_set(VIGIL_ECORRUPT, "%s: unexpected format", path);
    p++;
    char *save = NULL;
    int field = 3;
    memset(out, 0, sizeof(*out));
    for (char *tok = strtok_r(p, " ", &save); tok; tok = strtok_r(NULL, " ", &save), field++) {
        if (field == 3)
            out->state = tok[0];
        else if (field == 5)
            out->pgrp = (pid_t)strtol(tok, NULL, 10);
        else if (field == 22) {
            out->starttime = strtoull(tok, NULL, 10);
            return VIGIL_OK;
        }
    }
    return vigil__error_set(VIGIL_ECORRUPT, "%s: unexpected format", path);
}

bool vigil__proc_alive(pid_t pid)
{
    vigil__procstat st;
    if (vigil__proc_stat(pid, &st) != VIGIL_OK)
        return false;
    return st.state != 'Z' && st.state != 'X' && st.state != 'x';
}

bool vigil__proc_wait_gone(pid_t pid, int pidfd, int64_t deadline_ms, int *status)
{
    int step = 1;
    if (status)
        *status = -1;
    for (;;) {
        int st;
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid) {
            if (status)
                *status = st;
            return true;
        }
        /* not our child (ECHILD), or ours and still running (0) */
        if (w < 0 && !vigil__proc_alive(pid))
            return true;
        int64_t left = deadline_ms - now_mono();
        if (left <= 0)
            return false;
        if (pidfd >= 0) {
            struct pollfd pfd = {pidfd, POLLIN, 0};
            poll(&pfd, 1, left > 1000 ? 1000 : (int)left);
            if (!(pfd.revents & POLLIN))
                continue;
            /* exited: a child of ours is reaped on the next round; someone
             * else's is gone as far as we are concerned once it is a zombie */
            if (waitpid(pid, &st, WNOHANG) == pid) {
                if (status)
                    *status = st;
                return true;
            }
            if (!vigil__proc_alive(pid))
                return true;
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        } else {
            int64_t ms = left < step ? left : step;
            struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
            if (step < 50)
                step *= 2;
        }
    }
}

bool vigil__sleep_until(int64_t deadline_ms, vigil_action_cancel_cb cancel, void *payload)
{
    for (;;) {
        if (cancel && cancel(payload))
            return true;
        int64_t left = deadline_ms - now_mono();
        if (left <= 0)
            return false;
        if (left > 50)
            left = 50;
        struct timespec ts = {0, (long)left * 1000000L};
        nanosleep(&ts, NULL);
    }
}
