/* The `signal` action type: send a named signal to processes found by a
 * pidfile or by their exact name.
 *
 *   signal: HUP              # HUP, TERM, USR1, ... (with or without SIG); default HUP
 *   pidfile: /run/nginx.pid  # "PID" or Vigil's "PID STARTTIME" (then the
 *                            # process must have that start time)
 *   program: /usr/sbin/nginx # required with pidfile: /proc/PID/exe must be this file
 *   user: root               # the process's effective user; default: Vigil's
 *   process: nginx           # exact name (/proc/PID/comm, at most 15 bytes):
 *                            # every process of that name; with pidfile, the
 *                            # pid must have that name
 *
 * At least one of pidfile and process is required. Identity rules (as for
 * the process action): a pidfile is opened with O_NOFOLLOW (a symbolic link
 * is refused) and its directory must not be writable by other users (checked
 * when the action is configured); the pid it names is signalled only when
 * /proc/PID/exe is `program` and its effective user is `user`. By name,
 * every match must also pass the `program` (when given) and `user` checks;
 * the others are skipped. Vigil itself is never signalled. The check and
 * the signal refer to the same process (a pidfd opened before the checks).
 * Result reasons: not_running (nothing matched, or the pid is gone or
 * another process now), bad_pidfile (a symlink, unreadable, or no pid in
 * it), wrong_program, wrong_user (the pid is not provably the program),
 * signal_failed (kill(2) failed, e.g. EPERM). */
#include "action/action_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_MATCHES 1024

typedef struct sig_state {
    int sig;
    char *pidfile;
    char *process;
    char *program; /* NULL by name without program */
    uid_t uid;     /* the expected effective user */
} sig_state;

static const char *const k_keys[] = {"signal", "pidfile", "process", "program", "user", NULL};

static void sig_destroy(void *p)
{
    sig_state *s = p;
    if (!s)
        return;
    vigil__free(s->pidfile);
    vigil__free(s->process);
    vigil__free(s->program);
    vigil__free(s);
}

/* The optional `user` key: a name or a uid; default the effective user. */
static int expected_user(uid_t *out, const vigil_config_node *config)
{
    const char *name = NULL;
    *out = geteuid();
    int rc = vigil_config_get_string(&name, config, "user", NULL);
    if (rc || !name)
        return rc;
    struct passwd pw, *res = NULL;
    char buf[4096];
    char *end;
    errno = 0;
    unsigned long v = strtoul(name, &end, 10);
    if (*name >= '0' && *name <= '9' && !*end && !errno && v < UINT32_MAX) {
        *out = (uid_t)v;
        return VIGIL_OK;
    }
    if (getpwnam_r(name, &pw, buf, sizeof(buf), &res) != 0 || !res)
        return vigil__action_cfg_error(vigil_config_node_get(config, "user"), VIGIL_ENOTFOUND,
                                       "unknown user \"%.64s\"", name);
    *out = pw.pw_uid;
    return VIGIL_OK;
}

static int sig_create(void **state, const vigil_config_node *config,
                      const vigil_action_context *ctx)
{
    sig_state *s = vigil__calloc(1, sizeof(*s));
    if (!s)
        return vigil__error_oom();
    const char *process = NULL;
    int rc = vigil__action_get_signal(&s->sig, config, "signal", SIGHUP);
    if (!rc)
        rc = vigil__action_get_path(&s->pidfile, config, "pidfile", ctx->base_dir);
    if (!rc)
        rc = vigil_config_get_string(&process, config, "process", NULL);
    if (!rc && process) {
        size_t n = strlen(process);
        if (n == 0 || n > 15 || strchr(process, '/'))
            rc = vigil__action_cfg_error(vigil_config_node_get(config, "process"), VIGIL_EVALUE,
                                         "a process name is 1 to 15 bytes without '/' (as in "
                                         "/proc/PID/comm), got \"%.64s\"",
                                         process);
        else if (!(s->process = vigil__strdup(process)))
            rc = vigil__error_oom();
    }
    if (!rc && !s->pidfile && !s->process)
        rc = vigil__action_cfg_error(config, VIGIL_EMISSING,
                                     "a signal action needs \"pidfile\" or \"process\"");
    if (!rc)
        rc = vigil__action_get_path(&s->program, config, "program", ctx->base_dir);
    if (!rc && s->pidfile && !s->program)
        rc = vigil__action_cfg_error(config, VIGIL_EMISSING,
                                     "a signal action with a pidfile needs \"program\" (the "
                                     "executable the pid must run, e.g. /usr/sbin/nginx)");
    if (!rc)
        rc = expected_user(&s->uid, config);
    char why[PATH_MAX + 160];
    if (!rc && s->pidfile && vigil__proc_dir_check(s->pidfile, why, sizeof(why)) != VIGIL_OK)
        rc = vigil__action_cfg_error(vigil_config_node_get(config, "pidfile"), VIGIL_EPERM,
                                     "%s: %s", s->pidfile, why);
    if (rc) {
        sig_destroy(s);
        return rc;
    }
    *state = s;
    return VIGIL_OK;
}

/* Reads /proc/PID/comm into buf (newline stripped); false when gone. */
static bool read_comm(pid_t pid, char *buf, size_t size)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    if (n > 0 && buf[n - 1] == '\n')
        buf[n - 1] = '\0';
    return true;
}

static int by_pidfile(sig_state *s, vigil_buf *out, vigil_action_result *result)
{
    const char *name = vigil__action_signal_name(s->sig);
    vigil__pidfile pf;
    char why[PATH_MAX + 200];
    int r = vigil__proc_pidfile_read(s->pidfile, &pf, why, sizeof(why));
    if (r == VIGIL__PIDFILE_MISSING) {
        vigil__buf_printf(out, "cannot read pidfile %s: %s", s->pidfile, strerror(ENOENT));
        return vigil__action_result_fill(result, VIGIL_ACTION_FAILED, "not_running", out);
    }
    if (r != VIGIL__PIDFILE_OK) {
        vigil__buf_puts(out, why);
        return vigil__action_result_fill(result, VIGIL_ACTION_FAILED, "bad_pidfile", out);
    }
    pid_t pid = pf.pid;
    int pidfd = vigil__proc_pidfd_open(pid);
    vigil__proc_statinfo ps, again;
    char comm[64];
    const char *reason = "not_running";
    int id = VIGIL__ID_OK;
    why[0] = '\0';
    bool bad = true;
    if (pid == getpid()) {
        snprintf(why, sizeof(why), "is Vigil itself");
        reason = "wrong_program";
    } else if (vigil__proc_stat(pid, &ps) != VIGIL_OK || ps.state == 'Z') {
        snprintf(why, sizeof(why), "is not running");
    } else if (pf.has_start && ps.starttime != pf.start) {
        snprintf(why, sizeof(why),
                 "is another process now (its start time differs from the pidfile's)");
    } else if (s->process &&
               (!read_comm(pid, comm, sizeof(comm)) || strcmp(comm, s->process) != 0)) {
        snprintf(why, sizeof(why), "is not the expected process");
    } else if ((id = vigil__proc_identity(pid, s->program, s->uid, why, sizeof(why))) ==
               VIGIL__ID_PROGRAM) {
        reason = "wrong_program";
    } else if (id == VIGIL__ID_USER) {
        reason = "wrong_user";
    } else if (id == VIGIL__ID_GONE || vigil__proc_stat(pid, &again) != VIGIL_OK ||
               again.starttime != ps.starttime) {
        snprintf(why, sizeof(why), "is not running");
    } else {
        bad = false;
    }
    if (bad) {
        if (pidfd >= 0)
            close(pidfd);
        if (id == VIGIL__ID_PROGRAM || id == VIGIL__ID_USER)
            vigil__buf_printf(out, "pid %d from %s is not provably %s: %s; not signalled", (int)pid,
                              s->pidfile, s->program, why);
        else
            vigil__buf_printf(out, "pid %d from %s %s; not signalled", (int)pid, s->pidfile, why);
        return vigil__action_result_fill(result, VIGIL_ACTION_FAILED, reason, out);
    }
    int rs = vigil__proc_pidfd_signal(pidfd, pid, s->sig);
    int err = errno;
    if (pidfd >= 0)
        close(pidfd);
    if (rs != 0) {
        vigil__buf_printf(out, "cannot send %s to pid %d: %s", name, (int)pid, strerror(err));
        return vigil__action_result_fill(result, VIGIL_ACTION_FAILED, "signal_failed", out);
    }
    vigil__buf_printf(out, "sent %s to pid %d", name, (int)pid);
    return vigil__action_result_fill(result, VIGIL_ACTION_SUCCEEDED, NULL, out);
}

static int by_name(sig_state *s, vigil_buf *out, vigil_action_result *result)
{
    const char *name = vigil__action_signal_name(s->sig);
    DIR *d = opendir("/proc");
    if (!d) {
        vigil__buf_printf(out, "cannot read /proc: %s", strerror(errno));
        return vigil__action_result_fill(result, VIGIL_ACTION_FAILED, "not_running", out);
    }
    pid_t self = getpid();
    size_t failed = 0, matched = 0, skipped = 0;
    int rc = vigil__buf_printf(out, "sent %s to", name);
    vigil_buf errs = VIGIL_BUF_INIT;
    struct dirent *e;
    while (!rc && (e = readdir(d)) != NULL && matched < MAX_MATCHES) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        char comm[64];
        if (*end || pid <= 1 || pid == self || !read_comm((pid_t)pid, comm, sizeof(comm)) ||
            strcmp(comm, s->process) != 0 || !vigil__proc_alive((pid_t)pid))
            continue;
        int pidfd = vigil__proc_pidfd_open((pid_t)pid);
        char why[PATH_MAX + 200];
        if (vigil__proc_identity((pid_t)pid, s->program, s->uid, why, sizeof(why)) !=
            VIGIL__ID_OK) {
            skipped++;
            if (pidfd >= 0)
                close(pidfd);
            continue;
        }
        matched++;
        int r = vigil__proc_pidfd_signal(pidfd, (pid_t)pid, s->sig);
        if (pidfd >= 0)
            close(pidfd);
        if (r == 0) {
            rc = vigil__buf_printf(out, " %ld", pid);
        } else {
            failed++;
            rc = vigil__buf_printf(&errs, "; pid %ld: %s", pid, strerror(errno));
        }
    }
    closedir(d);
    if (rc) {
        vigil_buf_dispose(&errs);
        return rc;
    }
    vigil__buf_clear(out);
    if (matched == 0) {
        vigil__buf_printf(out, "no running process named \"%s\"", s->process);
        if (skipped)
            vigil__buf_printf(out, "%s%s run by uid %u (%zu other%s skipped)",
                              s->program ? " that is " : "", s->program ? s->program : "",
                              (unsigned)s->uid, skipped, skipped == 1 ? "" : "s");
        return vigil__action_result_fill(result, VIGIL_ACTION_FAILED, "not_running", out);
    }
    int ret;
    if (failed) {
        vigil__buf_printf(out, "cannot send %s to %zu of %zu processes named \"%s\"%s", name,
                          failed, matched, s->process, errs.ptr ? errs.ptr : "");
        ret = vigil__action_result_fill(result, VIGIL_ACTION_FAILED, "signal_failed", out);
    } else {
        vigil__buf_printf(out, "sent %s to %zu process%s named \"%s\"", name, matched,
                          matched == 1 ? "" : "es", s->process);
        ret = vigil__action_result_fill(result, VIGIL_ACTION_SUCCEEDED, NULL, out);
    }
    vigil_buf_dispose(&errs);
    return ret;
}

static int sig_execute(void *p, const vigil_action_request *req, const vigil_action_exec *exec,
                       vigil_action_result *result)
{
    (void)req;
    (void)exec;
    sig_state *s = p;
    vigil_buf out = VIGIL_BUF_INIT;
    int rc = s->pidfile ? by_pidfile(s, &out, result) : by_name(s, &out, result);
    vigil_buf_dispose(&out);
    return rc;
}

static int sig_describe(void *p, const vigil_action_request *req, vigil_buf *out)
{
    (void)req;
    sig_state *s = p;
    if (s->pidfile)
        return vigil__buf_printf(out, "would send %s to the pid in %s",
                                 vigil__action_signal_name(s->sig), s->pidfile);
    return vigil__buf_printf(out, "would send %s to every process named \"%s\"",
                             vigil__action_signal_name(s->sig), s->process);
}

const vigil_action_type vigil__action_signal_type = {
    .version = VIGIL_ACTION_TYPE_VERSION,
    .name = "signal",
    .keys = k_keys,
    .create = sig_create,
    .execute = sig_execute,
    .destroy = sig_destroy,
    .describe = sig_describe,
};
