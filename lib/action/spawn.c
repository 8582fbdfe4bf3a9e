/* The configuration helpers the built-in action types share (paths, argv
 * templates, users, signals, the child environment), and running a program
 * to completion through the one runner (lib/proc) into an action result. */
#include "action/action_int.h"

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    return vigil_error_set_at(code, node, msg);
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

void vigil__ids_free(vigil__proc_ids *ids)
{
    if (!ids)
        return;
    vigil__free(ids->groups);
    memset(ids, 0, sizeof(*ids));
}

int vigil__ids_parse(vigil__proc_ids *ids, const vigil_config_node *map)
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

int vigil__action_child_parse(char ***env_names, char **workdir, vigil__proc_ids *ids,
                              const vigil_config_node *map, const char *base_dir)
{
    int rc = vigil__env_names_parse(env_names, map);
    if (!rc)
        rc = vigil__action_get_path(workdir, map, "workdir", base_dir);
    return rc ? rc : vigil__ids_parse(ids, map);
}

int vigil__action_get_output_max(size_t *out, const vigil_config_node *map)
{
    uint64_t v = 0;
    int rc = vigil_config_get_size(&v, map, "max_output", VIGIL_ACTION_OUTPUT_DEFAULT);
    if (!rc && v > VIGIL_ACTION_OUTPUT_MAX)
        rc = vigil__action_cfg_error(vigil_config_node_get(map, "max_output"), VIGIL_ERANGE,
                                     "at most 16MiB");
    if (!rc)
        *out = (size_t)v;
    return rc;
}

int vigil__action_result_fill(vigil_action_result *r, vigil_action_status st, const char *reason,
                              const vigil_buf *out)
{
    r->status = st;
    int rc = vigil_action_result_set_reason(r, reason);
    size_t len = out->size;
    while (len && out->ptr[len - 1] == '\n')
        len--;
    return rc ? rc : vigil_action_result_set_output(r, out->ptr ? out->ptr : "", len);
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
    if (!(env[k++] = vigil__strdup(VIGIL__PROC_PATH)))
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

int vigil__action_run(const char *const *argv, const char *const *envp, const char *workdir,
                      const vigil__proc_ids *ids, const vigil_action_exec *exec, size_t max_output,
                      vigil_action_result *result)
{
    vigil__proc_spec sp = {argv,
                           envp,
                           workdir,
                           ids,
                           -1,
                           false,
                           false,
                           max_output,
                           exec->deadline_ms,
                           exec->cancel,
                           exec->cancel_payload};
    vigil__proc_result run;
    memset(&run, 0, sizeof(run));
    int rc = vigil__proc_run(&sp, &run);
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
    case VIGIL__PROC_EXITED:
        result->status = run.exit_code == 0 ? VIGIL_ACTION_SUCCEEDED : VIGIL_ACTION_FAILED;
        return run.exit_code == 0 ? VIGIL_OK : vigil_action_result_set_reason(result, "exit_code");
    case VIGIL__PROC_SIGNALED:
        result->status = VIGIL_ACTION_FAILED;
        return vigil_action_result_set_reason(result, "signal");
    case VIGIL__PROC_TIMEOUT:
        result->status = VIGIL_ACTION_TIMEOUT;
        return vigil_action_result_set_reason(result, "timeout");
    case VIGIL__PROC_LOST: {
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

bool vigil__sleep_until(int64_t deadline_ms, vigil_action_cancel_cb cancel, void *payload)
{
    for (;;) {
        if (cancel && cancel(payload))
            return true;
        int64_t left = deadline_ms - vigil__monotonic_ms();
        if (left <= 0)
            return false;
        if (left > 50)
            left = 50;
        struct timespec ts = {0, (long)left * 1000000L};
        nanosleep(&ts, NULL);
    }
}
