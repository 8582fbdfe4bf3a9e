/* The `process` action type: start, stop or restart a program that Vigil
 * supervises directly (hosts without a service manager, and tests).
 *
 *   op: restart                  # start | stop | restart
 *   start: ["./bin/demo", "--port", "7680"]   # stays in the foreground
 *   pidfile: ./var/demo.pid      # "PID STARTTIME\n", written atomically
 *   stop_signal: TERM            # then KILL after stop_timeout
 *   stop_timeout: 10s
 *   start_timeout: 5s            # bound on exec + settle
 *   settle: 0s                   # the program must still run after this
 *   env_passthrough, workdir, user, group   # as for exec
 *   log_file: ./var/demo.log     # stdout + stderr (appended); default /dev/null
 *
 * Pidfile rules. Vigil writes "PID STARTTIME\n" (STARTTIME is field 22 of
 * /proc/PID/stat) to a temporary file in the same directory and renames it
 * over the pidfile. A missing pidfile means "not running". Before any
 * signal the pid is checked to be that very process: it must exist, not be
 * a zombie, and have the recorded start time (read again after a pidfd is
 * opened, so the check and the signal refer to the same process). A pid
 * whose start time differs belongs to another program now: it is never
 * signalled, the stale pidfile is removed and the result says so. A pidfile
 * without a start time (not written by Vigil) is refused (reason
 * "bad_pidfile").
 *
 * Stopping sends stop_signal to the program's process group (to the pid
 * alone when it left the group Vigil gave it), then SIGCONT so a stopped
 * (SIGSTOP) program handles it, waits up to stop_timeout, then sends SIGKILL,
 * which also ends stopped and hung processes.
 *
 * Reaping. The program is a child of this process. The action keeps its pid
 * and reaps it when it is stopped, on every execution, and from
 * vigil_action_registry_reap() (waitpid(pid, WNOHANG)), which removes the
 * pidfile of a program that exited by itself. A registry created later (after
 * a reload) adopts a running child named by the pidfile.
 *
 * Starting goes through the one runner (lib/proc): argv only, a process group
 * of its own, stdin from /dev/null, stdout and stderr to log_file, all other
 * descriptors closed, and the program check (an executable regular file that
 * neither group nor others can write, owned by root or the user Vigil runs
 * as) before every start.
 *
 * Result reasons: bad_pidfile, stop_failed (still alive after SIGKILL),
 * spawn_failed (refused by the program check, or the exec failed), pidfile (cannot write it),
 * exited (the program ended during settle), timeout, cancelled. */
#include "action/action_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

enum { OP_START = 1, OP_STOP = 2, OP_RESTART = 3 };

typedef struct proc_state {
    pthread_mutex_t mu;
    int op;
    vigil__argv_tpl argv;
    char *pidfile;
    int stop_signal;
    int64_t stop_timeout_ms, start_timeout_ms, settle_ms;
    char **env_names;
    char *workdir;
    vigil__proc_ids ids;
    char *log_file;
    char *name;
    const vigil_logger *logger;
    vigil_getenv_cb getenv;
    void *getenv_payload;
    pid_t child; /* the program we started and have not reaped, or 0 */
} proc_state;

static const char *const k_keys[] = {
    "op",     "start",           "pidfile", "stop_signal", "stop_timeout", "start_timeout",
    "settle", "env_passthrough", "workdir", "user",        "group",        "log_file",
    NULL};

/* ---- pidfile ------------------------------------------------------------------ */

enum { PF_MISSING = 0, PF_BAD, PF_OK };

static int pidfile_read(const char *path, pid_t *pid, unsigned long long *start, char *why,
                        size_t whylen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return PF_MISSING;
        snprintf(why, whylen, "cannot read pidfile %s: %s", path, strerror(errno));
        return PF_BAD;
    }
    char buf[128];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf) - 1)) < 0 && errno == EINTR)
        ;
    close(fd);
    if (n < 0) {
        snprintf(why, whylen, "cannot read pidfile %s: %s", path, strerror(errno));
        return PF_BAD;
    }
    buf[n] = '\0';
    long long p;
    unsigned long long st;
    char extra;
    int k = sscanf(buf, "%lld %llu %c", &p, &st, &extra);
    if (k < 1 || p <= 1 || p > 0x7fffffffLL) {
        snprintf(why, whylen, "pidfile %s does not hold a pid", path);
        return PF_BAD;
    }
    if (k != 2) {
        snprintf(why, whylen,
                 "pidfile %s names pid %lld without its start time (not written by Vigil); "
                 "refusing to signal an unverified pid",
                 path, p);
        return PF_BAD;
    }
    *pid = (pid_t)p;
    *start = st;
    return PF_OK;
}

static int pidfile_write(const char *path, pid_t pid, unsigned long long start)
{
    vigil_buf tmp = VIGIL_BUF_INIT;
    int rc = vigil__buf_printf(&tmp, "%s.tmp.XXXXXX", path);
    if (rc)
        return rc;
    int fd = mkostemp(tmp.ptr, O_CLOEXEC);
    if (fd < 0) {
        rc = vigil__error_set(VIGIL_EIO, "cannot write pidfile %s: %s", path, strerror(errno));
        vigil_buf_dispose(&tmp);
        return rc;
    }
    char line[64];
    int len = snprintf(line, sizeof(line), "%d %llu\n", (int)pid, start);
    if (fchmod(fd, 0644) != 0 || write(fd, line, (size_t)len) != len || fsync(fd) != 0) {
        rc = vigil__error_set(VIGIL_EIO, "cannot write pidfile %s: %s", path, strerror(errno));
        close(fd);
        unlink(tmp.ptr);
    } else if (close(fd) != 0 || rename(tmp.ptr, path) != 0) {
        rc = vigil__error_set(VIGIL_EIO, "cannot write pidfile %s: %s", path, strerror(errno));
        unlink(tmp.ptr);
    }
    vigil_buf_dispose(&tmp);
    return rc;
}

/* Removes the pidfile when it still names `pid`. */
static void pidfile_remove(const char *path, pid_t pid)
{
    pid_t p;
    unsigned long long st;
    char why[16];
    if (pidfile_read(path, &p, &st, why, sizeof(why)) == PF_OK && p == pid)
        unlink(path);
}

/* ---- state ---------------------------------------------------------------------- */

static void proc_destroy(void *p)
{
    proc_state *s = p;
    if (!s)
        return;
    pthread_mutex_destroy(&s->mu);
    vigil__argv_free(&s->argv);
    vigil__free(s->pidfile);
    vigil__action_strv_free(s->env_names);
    vigil__free(s->workdir);
    vigil__ids_free(&s->ids);
    vigil__free(s->log_file);
    vigil__free(s->name);
    vigil__free(s);
}

static int get_positive(int64_t *out, const vigil_config_node *map, const char *key, int64_t dflt,
                        bool allow_zero)
{
    int rc = vigil_config_get_duration(out, map, key, dflt);
    if (!rc && (*out < 0 || (*out == 0 && !allow_zero)))
        rc = vigil__action_cfg_error(vigil_config_node_get(map, key), VIGIL_EVALUE,
                                     "must be more than 0");
    return rc;
}

static int proc_create(void **state, const vigil_config_node *config,
                       const vigil_action_context *ctx)
{
    proc_state *s = vigil__calloc(1, sizeof(*s));
    if (!s)
        return vigil__error_oom();
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        vigil__free(s);
        return vigil__error_set(VIGIL_ERROR, "cannot create a mutex");
    }
    const char *op = NULL;
    int rc = vigil_config_get_string(&op, config, "op", "restart");
    if (!rc) {
        s->op = strcmp(op, "start") == 0     ? OP_START
                : strcmp(op, "stop") == 0    ? OP_STOP
                : strcmp(op, "restart") == 0 ? OP_RESTART
                                             : 0;
        if (!s->op)
            rc = vigil__action_cfg_error(vigil_config_node_get(config, "op"), VIGIL_EVALUE,
                                         "expected start, stop or restart, got \"%.64s\"", op);
    }
    if (!rc)
        rc = vigil__argv_parse(&s->argv, config, "start", ctx->base_dir, false);
    if (!rc)
        rc = vigil_config_require(config, "pidfile");
    if (!rc)
        rc = vigil__action_get_path(&s->pidfile, config, "pidfile", ctx->base_dir);
    if (!rc)
        rc = vigil__action_get_signal(&s->stop_signal, config, "stop_signal", SIGTERM);
    if (!rc)
        rc = get_positive(&s->stop_timeout_ms, config, "stop_timeout", 10000, false);
    if (!rc)
        rc = get_positive(&s->start_timeout_ms, config, "start_timeout", 5000, false);
    if (!rc)
        rc = get_positive(&s->settle_ms, config, "settle", 0, true);
    if (!rc)
        rc = vigil__action_child_parse(&s->env_names, &s->workdir, &s->ids, config, ctx->base_dir);
    if (!rc)
        rc = vigil__action_get_path(&s->log_file, config, "log_file", ctx->base_dir);
    if (!rc && !(s->name = vigil__strdup(ctx->action_name)))
        rc = vigil__error_oom();
    if (rc) {
        proc_destroy(s);
        return rc;
    }
    s->logger = ctx->logger;
    s->getenv = ctx->getenv;
    s->getenv_payload = ctx->getenv_payload;
    /* Adopt a running child named by the pidfile (a registry rebuilt on reload). */
    pid_t pid;
    unsigned long long st;
    char why[16];
    vigil__proc_statinfo ps;
    if (pidfile_read(s->pidfile, &pid, &st, why, sizeof(why)) == PF_OK &&
        vigil__proc_stat(pid, &ps) == VIGIL_OK && ps.starttime == st && ps.state != 'Z' &&
        waitpid(pid, NULL, WNOHANG) == 0)
        s->child = pid;
    vigil_error_clear();
    *state = s;
    return VIGIL_OK;
}

/* Reaps our child if it exited; returns true when it did. Locked. */
static bool reap_locked(proc_state *s, bool log_exit)
{
    if (s->child <= 0)
        return false;
    int status;
    pid_t w = waitpid(s->child, &status, WNOHANG);
    if (w == 0)
        return false;
    if (w == s->child && log_exit) {
        if (WIFSIGNALED(status))
            vigil__log(s->logger, VIGIL_LOG_WARN, "action", "supervised program exited",
                       "action=%s pid=%d signal=%s", s->name, (int)s->child,
                       vigil__action_signal_name(WTERMSIG(status)));
        else
            vigil__log(s->logger, VIGIL_LOG_WARN, "action", "supervised program exited",
                       "action=%s pid=%d exit_code=%d", s->name, (int)s->child,
                       WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    pidfile_remove(s->pidfile, s->child);
    s->child = 0;
    return true;
}

static void proc_reap(void *p)
{
    proc_state *s = p;
    if (pthread_mutex_trylock(&s->mu) != 0)
        return; /* an execution is running; it reaps */
    reap_locked(s, true);
    pthread_mutex_unlock(&s->mu);
}

/* ---- probe, stop, start ---------------------------------------------------------- */

enum { PR_MISSING = 0, PR_BAD, PR_STALE, PR_RUNNING };

/* Finds out whether the pidfile names our program; on PR_RUNNING *pidfd
 * refers to it (or is -1 without pidfd support). */
static int probe(proc_state *s, pid_t *pid, int *pidfd, vigil_buf *out)
{
    unsigned long long st;
    char why[512];
    *pidfd = -1;
    int pf = pidfile_read(s->pidfile, pid, &st, why, sizeof(why));
    if (pf == PF_MISSING)
        return PR_MISSING;
    if (pf == PF_BAD) {
        vigil__buf_puts(out, why);
        return PR_BAD;
    }
    vigil__proc_statinfo ps;
    int fd = vigil__proc_pidfd_open(*pid);
    int rc = vigil__proc_stat(*pid, &ps);
    if (rc == VIGIL_OK && ps.state == 'Z' && waitpid(*pid, NULL, WNOHANG) == *pid) {
        if (*pid == s->child)
            s->child = 0;
        rc = VIGIL_ENOTFOUND;
    }
    if (rc != VIGIL_OK || ps.state == 'Z') {
        vigil__buf_printf(out, "pidfile named pid %d, which is no longer running\n", (int)*pid);
    } else if (ps.starttime != st) {
        vigil__buf_printf(out,
                          "pidfile named pid %d, which is another process now (start time %llu, "
                          "pidfile says %llu); not signalled\n",
                          (int)*pid, ps.starttime, st);
        vigil__log(s->logger, VIGIL_LOG_WARN, "action", "stale pidfile names a reused pid",
                   "action=%s pid=%d", s->name, (int)*pid);
    } else {
        *pidfd = fd;
        return PR_RUNNING;
    }
    if (fd >= 0)
        close(fd);
    unlink(s->pidfile);
    return PR_STALE;
}

static void send_sig(pid_t pid, int pidfd, bool group, int sig)
{
    if (group)
        kill(-pid, sig);
    else
        vigil__proc_pidfd_signal(pidfd, pid, sig);
}

/* Returns VIGIL_OK when the program is gone. */
static int stop(proc_state *s, pid_t pid, int pidfd, const vigil_action_exec *exec, vigil_buf *out)
{
    vigil__proc_statinfo ps;
    bool group = vigil__proc_stat(pid, &ps) == VIGIL_OK && ps.pgrp == pid;
    send_sig(pid, pidfd, group, s->stop_signal);
    if (s->stop_signal != SIGCONT && s->stop_signal != SIGKILL)
        send_sig(pid, pidfd, group, SIGCONT);
    int64_t now = vigil__monotonic_ms();
    int64_t until = now + s->stop_timeout_ms;
    if (until > exec->deadline_ms)
        until = exec->deadline_ms;
    int status;
    bool gone = vigil__proc_wait_gone(pid, pidfd, until, &status);
    bool killed = false;
    if (!gone) {
        send_sig(pid, pidfd, group, SIGKILL);
        if (group) /* the leader too, should it have left the group meanwhile */
            vigil__proc_pidfd_signal(pidfd, pid, SIGKILL);
        killed = true;
        /* SIGKILL is not refused; give it a short grace even past the deadline */
        now = vigil__monotonic_ms();
        until = exec->deadline_ms > now + 1000 ? exec->deadline_ms : now + 1000;
        if (until > now + 5000)
            until = now + 5000;
        gone = vigil__proc_wait_gone(pid, pidfd, until, &status);
    }
    if (pid == s->child && gone)
        s->child = 0;
    if (!gone) {
        vigil__buf_printf(out, "pid %d is still running after SIGKILL\n", (int)pid);
        return VIGIL_EBUSY;
    }
    if (killed)
        vigil__buf_printf(out,
                          "stopped pid %d with KILL (%s had no effect within the stop "
                          "timeout)\n",
                          (int)pid, vigil__action_signal_name(s->stop_signal));
    else
        vigil__buf_printf(out, "stopped pid %d with %s\n", (int)pid,
                          vigil__action_signal_name(s->stop_signal));
    pidfile_remove(s->pidfile, pid);
    return VIGIL_OK;
}

static int start(proc_state *s, const vigil_action_exec *exec, vigil_buf *out,
                 vigil_action_result *result)
{
    char **env = NULL;
    const char **argv = vigil__calloc(s->argv.n + 1, sizeof(char *));
    if (!argv)
        return vigil__error_oom();
    int rc = vigil__env_build(&env, s->env_names, s->getenv, s->getenv_payload);
    if (rc) {
        vigil__free(argv);
        return rc;
    }
    vigil_action_request none = VIGIL_ACTION_REQUEST_INIT;
    vigil__argv_expand(&s->argv, &none, argv);
    int fd = s->log_file ? open(s->log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640)
                         : open("/dev/null", O_WRONLY | O_CLOEXEC);
    pid_t pid = -1;
    int64_t until = vigil__monotonic_ms() + s->start_timeout_ms;
    if (until > exec->deadline_ms)
        until = exec->deadline_ms;
    if (fd < 0) {
        vigil__buf_printf(out, "cannot open %s: %s", s->log_file ? s->log_file : "/dev/null",
                          strerror(errno));
        rc = vigil__action_result_fill(result, VIGIL_ACTION_FAILED, "spawn_failed", out);
    } else {
        if (fd < 3) { /* keep 0..2 free for the child's dup2 */
            int hi = fcntl(fd, F_DUPFD_CLOEXEC, 3);
            close(fd);
            fd = hi;
        }
        vigil__proc_spec sp = {
            argv, (const char *const *)env, s->workdir, &s->ids, fd, false, false, 0, until, NULL,
            NULL};
        rc = fd < 0 ? vigil__error_set(VIGIL_EIO, "cannot open an output descriptor")
                    : vigil__proc_start(&sp, &pid, NULL);
        if (fd >= 0)
            close(fd);
        if (rc == VIGIL_ECHILD || rc == VIGIL_EIO || rc == VIGIL_ETIMEOUT) {
            vigil__buf_puts(out, vigil_error_last()->message);
            rc = vigil__action_result_fill(
                result, rc == VIGIL_ETIMEOUT ? VIGIL_ACTION_TIMEOUT : VIGIL_ACTION_FAILED,
                rc == VIGIL_ETIMEOUT ? "timeout" : "spawn_failed", out);
        } else if (rc == VIGIL_OK) {
            s->child = pid;
        }
    }
    vigil__action_strv_free(env);
    vigil__free(argv);
    if (rc || pid < 0)
        return rc;
    vigil__proc_statinfo ps;
    rc = vigil__proc_stat(pid, &ps);
    if (!rc)
        rc = pidfile_write(s->pidfile, pid, ps.starttime);
    if (rc) {
        vigil__buf_printf(out, "%s; stopping pid %d again", vigil_error_last()->message, (int)pid);
        kill(-pid, SIGKILL);
        waitpid(pid, NULL, 0);
        s->child = 0;
        return vigil__action_result_fill(result, VIGIL_ACTION_FAILED, "pidfile", out);
    }
    if (s->settle_ms > 0) {
        int64_t settle = vigil__monotonic_ms() + s->settle_ms;
        int status;
        if (settle > until)
            settle = until;
        if (vigil__proc_wait_gone(pid, -1, settle, &status)) {
            s->child = 0;
            pidfile_remove(s->pidfile, pid);
            if (status != -1 && WIFEXITED(status)) {
                result->exit_code = WEXITSTATUS(status);
                vigil__buf_printf(out, "pid %d exited with code %d right after starting", (int)pid,
                                  WEXITSTATUS(status));
            } else if (status != -1 && WIFSIGNALED(status)) {
                result->term_signal = WTERMSIG(status);
                vigil__buf_printf(out, "pid %d was killed by %s right after starting", (int)pid,
                                  vigil__action_signal_name(WTERMSIG(status)));
            } else {
                vigil__buf_printf(out, "pid %d ended right after starting", (int)pid);
            }
            return vigil__action_result_fill(result, VIGIL_ACTION_FAILED, "exited", out);
        }
    }
    vigil__buf_printf(out, "started pid %d", (int)pid);
    vigil__log(s->logger, VIGIL_LOG_INFO, "action", "supervised program started",
               "action=%s pid=%d", s->name, (int)pid);
    return vigil__action_result_fill(result, VIGIL_ACTION_SUCCEEDED, NULL, out);
}

static int proc_execute(void *p, const vigil_action_request *req, const vigil_action_exec *exec,
                        vigil_action_result *result)
{
    (void)req;
    proc_state *s = p;
    vigil_buf out = VIGIL_BUF_INIT;
    int rc = VIGIL_OK;
    pthread_mutex_lock(&s->mu);
    reap_locked(s, true);
    pid_t pid;
    int pidfd = -1;
    int pr = probe(s, &pid, &pidfd, &out);
    if (pr == PR_BAD) {
        rc = vigil__action_result_fill(result, VIGIL_ACTION_FAILED, "bad_pidfile", &out);
        goto done;
    }
    if (s->op == OP_START && pr == PR_RUNNING) {
        vigil__buf_printf(&out, "already running (pid %d)", (int)pid);
        rc = vigil__action_result_fill(result, VIGIL_ACTION_SUCCEEDED, NULL, &out);
        goto done;
    }
    if (s->op != OP_START) {
        if (pr == PR_RUNNING && stop(s, pid, pidfd, exec, &out) != VIGIL_OK) {
            rc = vigil__action_result_fill(result, VIGIL_ACTION_FAILED, "stop_failed", &out);
            goto done;
        }
        if (pr == PR_MISSING)
            vigil__buf_puts(&out, "not running\n");
        if (s->op == OP_STOP) {
            rc = vigil__action_result_fill(result, VIGIL_ACTION_SUCCEEDED, NULL, &out);
            goto done;
        }
    }
    if (vigil__monotonic_ms() >= exec->deadline_ms) {
        vigil__buf_puts(&out, "no time left to start the program");
        rc = vigil__action_result_fill(result, VIGIL_ACTION_TIMEOUT, "timeout", &out);
        goto done;
    }
    if (exec->cancel && exec->cancel(exec->cancel_payload)) {
        vigil__buf_puts(&out, "cancelled before starting the program");
        rc = vigil__action_result_fill(result, VIGIL_ACTION_FAILED, "cancelled", &out);
        goto done;
    }
    rc = start(s, exec, &out, result);
done:
    if (pidfd >= 0)
        close(pidfd);
    pthread_mutex_unlock(&s->mu);
    vigil_buf_dispose(&out);
    return rc;
}

static int proc_describe(void *p, const vigil_action_request *req, vigil_buf *out)
{
    (void)req;
    proc_state *s = p;
    static const char *const ops[] = {"", "start", "stop", "restart"};
    int rc = vigil__buf_printf(out, "would %s the program of pidfile %s (", ops[s->op], s->pidfile);
    const char **argv = vigil__calloc(s->argv.n + 1, sizeof(char *));
    if (!argv)
        return vigil__error_oom();
    vigil_action_request none = VIGIL_ACTION_REQUEST_INIT;
    vigil__argv_expand(&s->argv, &none, argv);
    if (!rc)
        rc = vigil__argv_describe(out, argv);
    vigil__free(argv);
    return rc ? rc : vigil__buf_putc(out, ')');
}

const vigil_action_type vigil__action_process_type = {
    .version = VIGIL_ACTION_TYPE_VERSION,
    .name = "process",
    .keys = k_keys,
    .create = proc_create,
    .execute = proc_execute,
    .destroy = proc_destroy,
    .describe = proc_describe,
    .reap = proc_reap,
};
