/* The `signal` action type: send a named signal to processes found by a
 * pidfile or by their exact name.
 *
 *   signal: HUP              # HUP, TERM, USR1, ... (with or without SIG); default HUP
 *   pidfile: /run/nginx.pid  # the first number in it is the pid; when a
 *                            # second one follows (Vigil's "PID STARTTIME"),
 *                            # the process must have that start time
 *   process: nginx           # exact name (/proc/PID/comm, at most 15 bytes):
 *                            # every process of that name; with pidfile, the
 *                            # pid must have that name
 *
 * At least one of pidfile and process is required. Vigil itself is never
 * signalled. Result reasons: not_running (nothing matched, or the pid is not
 * the expected process), signal_failed (kill(2) failed, e.g. EPERM). */
#include "action/action_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
} sig_state;

static const char *const k_keys[] = {"signal", "pidfile", "process", NULL};

static void sig_destroy(void *p)
{
    sig_state *s = p;
    if (!s)
        return;
    vigil__free(s->pidfile);
    vigil__free(s->process);
    vigil__free(s);
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
    int fd = open(s->pidfile, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        vigil__buf_printf(out, "cannot read pidfile %s: %s", s->pidfile, strerror(errno));
        return vigil__action_result_fill(result, VIGIL_ACTION_FAILED, "not_running", out);
    }
    char buf[128];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    buf[n < 0 ? 0 : n] = '\0';
    long long pid;
    unsigned long long start;
    int k = sscanf(buf, "%lld %llu", &pid, &start);
    if (k < 1 || pid <= 1 || pid > 0x7fffffffLL) {
        vigil__buf_printf(out, "pidfile %s does not hold a pid", s->pidfile);
        return vigil__action_result_fill(result, VIGIL_ACTION_FAILED, "not_running", out);
    }
    int pidfd = vigil__proc_pidfd_open((pid_t)pid);
    vigil__proc_statinfo ps;
    char comm[64];
    const char *why = NULL;
    if (pid == getpid())
        why = "is Vigil itself";
    else if (vigil__proc_stat((pid_t)pid, &ps) != VIGIL_OK || ps.state == 'Z')
        why = "is not running";
    else if (k == 2 && ps.starttime != start)
        why = "is another process now (its start time differs from the pidfile's)";
    else if (s->process &&
             (!read_comm((pid_t)pid, comm, sizeof(comm)) || strcmp(comm, s->process) != 0))
        why = "is not the expected process";
    if (why) {
        if (pidfd >= 0)
            close(pidfd);
        vigil__buf_printf(out, "pid %lld from %s %s; not signalled", pid, s->pidfile, why);
        return vigil__action_result_fill(result, VIGIL_ACTION_FAILED, "not_running", out);
    }
    int r = vigil__proc_pidfd_signal(pidfd, (pid_t)pid, s->sig);
    int err = errno;
    if (pidfd >= 0)
        close(pidfd);
    if (r != 0) {
        vigil__buf_printf(out, "cannot send %s to pid %lld: %s", name, pid, strerror(err));
        return vigil__action_result_fill(result, VIGIL_ACTION_FAILED, "signal_failed", out);
    }
    vigil__buf_printf(out, "sent %s to pid %lld", name, pid);
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
    size_t failed = 0, matched = 0;
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
        matched++;
        if (kill((pid_t)pid, s->sig) == 0) {
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
