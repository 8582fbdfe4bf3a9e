/* The `process` action type: start, stop or restart a program that Vigil
 * supervises directly (hosts without a service manager, and tests).
 *
 *   op: restart                  # start | stop | restart
 *   start: ["./bin/demo", "--port", "7680"]   # stays in the foreground
 *   pidfile: ./var/demo.pid      # the program's pidfile: "PID" or "PID STARTTIME"
 *   writes_pidfile: false        # true: the program writes it; Vigil only reads it
 *   stop_signal: TERM            # then KILL after stop_timeout
 *   stop_timeout: 10s
 *   start_timeout: 5s            # bound on exec + settle
 *   settle: 0s                   # the program must still run after this
 *   env_passthrough, workdir, user, group   # as for exec
 *   log_file: ./var/demo.log     # stdout + stderr (appended); default /dev/null
 *
 * Pidfile rules. The pidfile holds a bare "PID" (as nginx, PostgreSQL and
 * init scripts write it) or Vigil's "PID STARTTIME" (STARTTIME is field 22
 * of /proc/PID/stat). Missing, unreadable, garbage, or naming a pid that is
 * not running (or, with a start time, that is another process now): the
 * program is not running, and start/restart start it. A pidfile that is a
 * symbolic link is refused (O_NOFOLLOW; reason "bad_pidfile"). A live pid is
 * signalled only when it is provably the configured program:
 *   - Vigil's own child (the process it started and has not reaped, held by
 *     a pidfd), or
 *   - a process whose /proc/PID/exe is the configured program (the same
 *     file) and whose effective user is the expected one (`user`, else the
 *     user Vigil runs as);
 * otherwise the action fails, signals nothing, and its reason says which
 * check failed: "wrong_program" or "wrong_user".
 *
 * Vigil's own record. Every start is recorded as "PID STARTTIME" in
 * <state_dir>/<pidfile path with '/' as %2F>.started (one record per
 * pidfile, shared by the actions that name it; state_dir:
 * vigil_action_registry_options, the remediator's `state_dir`; created mode
 * 0700 when missing); the record
 * is how a registry built later (after a reload or a restart of the daemon)
 * finds what Vigil started when the program's pidfile says nothing. Vigil
 * never fights the program over its pidfile: with writes_pidfile: true it
 * never writes nor removes it; otherwise (the program writes none) Vigil
 * writes "PID STARTTIME" to it atomically after each start and removes it
 * when that program ends, and a program that rewrites it is read as above.
 * Pidfiles and the log file are opened with O_NOFOLLOW; a pidfile, log file
 * or state directory in a directory that other users may write is refused
 * when the action is configured (VIGIL_EPERM, with the path and the mode).
 *
 * Stopping sends stop_signal to the program's process group (to the pid
 * alone when it left the group Vigil gave it, or is not Vigil's child), then
 * SIGCONT so a stopped (SIGSTOP) program handles it, waits up to
 * stop_timeout, then sends SIGKILL, which also ends stopped and hung
 * processes.
 *
 * Reaping. The program is a child of this process. The action keeps its pid
 * and a pidfd and reaps it when it is stopped, on every execution, and from
 * vigil_action_registry_reap() (waitpid(pid, WNOHANG)), which removes the
 * record (and Vigil's pidfile) of a program that exited by itself. A registry
 * created later (after a reload) adopts a running child named by the record
 * or by Vigil's pidfile.
 *
 * Starting goes through the one runner (lib/proc): argv only, a process group
 * of its own, stdin from /dev/null, stdout and stderr to log_file, all other
 * descriptors closed, and the program check (an executable regular file that
 * neither group nor others can write, owned by root or the user Vigil runs
 * as) before every start.
 *
 * Result reasons: bad_pidfile (a symlinked pidfile), wrong_program and
 * wrong_user (a live pid that is not provably the program), stop_failed
 * (still alive after SIGKILL), spawn_failed (refused by the program check, or
 * the exec failed, or the log file cannot be opened), pidfile (cannot write
 * the pidfile or the record), exited (the program ended during settle),
 * timeout, cancelled. */
#include "action/action_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
    int writes_pidfile; /* the program writes the pidfile: never written nor removed */
    char *record;       /* <state_dir>/<name>.pid, or NULL without a state_dir */
    int stop_signal;
    int64_t stop_timeout_ms, start_timeout_ms, settle_ms;
    char **env_names;
    char *workdir;
    vigil__proc_ids ids;
    uid_t uid; /* the user the program runs as: ids.uid or ours */
    char *log_file;
    char *name;
    const vigil_logger *logger;
    vigil_getenv_cb getenv;
    void *getenv_payload;
    pid_t child;  /* the program we started and have not reaped, or 0 */
    int child_fd; /* its pidfd, or -1 */
} proc_state;

static const char *const k_keys[] = {"op",
                                     "start",
                                     "pidfile",
                                     "writes_pidfile",
                                     "stop_signal",
                                     "stop_timeout",
                                     "start_timeout",
                                     "settle",
                                     "env_passthrough",
                                     "workdir",
                                     "user",
                                     "group",
                                     "log_file",
                                     NULL};

/* ---- state ---------------------------------------------------------------------- */

static void proc_destroy(void *p)
{
    proc_state *s = p;
    if (!s)
        return;
    pthread_mutex_destroy(&s->mu);
    if (s->child_fd >= 0)
        close(s->child_fd);
    vigil__argv_free(&s->argv);
    vigil__free(s->pidfile);
    vigil__free(s->record);
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

/* Refuses `path` (the value of `key`) when others may write its directory. */
static int check_dir(const vigil_config_node *config, const char *key, const char *path)
{
    char why[PATH_MAX + 160];
    if (!path || vigil__proc_dir_check(path, why, sizeof(why)) == VIGIL_OK)
        return VIGIL_OK;
    const vigil_config_node *n = vigil_config_node_get(config, key);
    return vigil__action_cfg_error(n ? n : config, VIGIL_EPERM, "%s: %s", path, why);
}

/* Sets s->child to `pid` when it is our unreaped child; opens its pidfd. */
static void adopt(proc_state *s, pid_t pid, unsigned long long start)
{
    vigil__proc_statinfo ps;
    if (pid <= 1 || vigil__proc_stat(pid, &ps) != VIGIL_OK || ps.starttime != start ||
        ps.state == 'Z' || waitpid(pid, NULL, WNOHANG) != 0)
        return;
    s->child = pid;
    s->child_fd = vigil__proc_pidfd_open(pid);
}

/* <state_dir>/<pidfile path, '%' and '/' percent-encoded>.started: one
 * record per pidfile, shared by every action that names it. */
static int record_path(char **out, const char *state_dir, const char *pidfile)
{
    vigil_buf b = VIGIL_BUF_INIT;
    int rc = vigil__buf_printf(&b, "%s/", state_dir);
    size_t name_at = b.size;
    for (const char *p = pidfile; !rc && *p; p++)
        rc = *p == '/'   ? vigil__buf_puts(&b, "%2F")
             : *p == '%' ? vigil__buf_puts(&b, "%25")
                         : vigil__buf_putc(&b, *p);
    if (!rc)
        rc = vigil__buf_puts(&b, ".started");
    if (!rc && b.size - name_at > NAME_MAX)
        rc = vigil__error_set(
            VIGIL_ELIMIT, "pidfile path %.200s is too long to name Vigil's record of it", pidfile);
    if (rc) {
        vigil_buf_dispose(&b);
        return rc;
    }
    *out = vigil__buf_detach(&b);
    return VIGIL_OK;
}

static int proc_create(void **state, const vigil_config_node *config,
                       const vigil_action_context *ctx)
{
    proc_state *s = vigil__calloc(1, sizeof(*s));
    if (!s)
        return vigil__error_oom();
    s->child_fd = -1;
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
        rc = vigil_config_get_bool(&s->writes_pidfile, config, "writes_pidfile", 0);
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
    if (!rc && ctx->version >= 1 && ctx->state_dir)
        rc = record_path(&s->record, ctx->state_dir, s->pidfile);
    if (!rc)
        rc = check_dir(config, "pidfile", s->pidfile);
    if (!rc)
        rc = check_dir(config, "log_file", s->log_file);
    if (!rc && s->record) {
        char why[PATH_MAX + 160];
        if (vigil__proc_dir_check(s->record, why, sizeof(why)) != VIGIL_OK)
            rc = vigil__action_cfg_error(config, VIGIL_EPERM, "state_dir: %s", why);
    }
    if (rc) {
        proc_destroy(s);
        return rc;
    }
    s->uid = s->ids.set ? s->ids.uid : geteuid();
    s->logger = ctx->logger;
    s->getenv = ctx->getenv;
    s->getenv_payload = ctx->getenv_payload;
    /* Adopt a running child named by Vigil's record or by Vigil's pidfile (a
     * registry rebuilt on reload). */
    vigil__pidfile pf;
    char why[PATH_MAX + 160];
    if (s->record &&
        vigil__proc_pidfile_read(s->record, &pf, why, sizeof(why)) == VIGIL__PIDFILE_OK &&
        pf.has_start)
        adopt(s, pf.pid, pf.start);
    if (!s->child &&
        vigil__proc_pidfile_read(s->pidfile, &pf, why, sizeof(why)) == VIGIL__PIDFILE_OK &&
        pf.has_start)
        adopt(s, pf.pid, pf.start);
    vigil_error_clear();
    *state = s;
    return VIGIL_OK;
}

/* The child `pid` is gone: forget it, remove its record and (when Vigil
 * writes it) its pidfile. */
static void forget_child(proc_state *s, pid_t pid)
{
    if (s->record)
        vigil__proc_pidfile_remove(s->record, pid);
    if (!s->writes_pidfile)
        vigil__proc_pidfile_remove(s->pidfile, pid);
    if (pid == s->child) {
        if (s->child_fd >= 0)
            close(s->child_fd);
        s->child_fd = -1;
        s->child = 0;
    }
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
    forget_child(s, s->child);
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

enum { PR_MISSING = 0, PR_REFUSED, PR_RUNNING };

/* Decides whether live-or-not `pid`, named by `what` (a path), is our
 * program. PR_RUNNING with *pidfd open on it (or -1 without pidfd support),
 * PR_MISSING when it is not running (said in `out`), PR_REFUSED when it runs
 * but is not provably the configured program (said in `out`, *reason set). */
static int check_pid(proc_state *s, const vigil__pidfile *pf, const char *what, int *pidfd,
                     vigil_buf *out, const char **reason)
{
    pid_t pid = pf->pid;
    *pidfd = -1;
    if (pid == getpid()) {
        vigil__buf_printf(out, "%s names pid %d, Vigil itself; not signalled", what, (int)pid);
        *reason = "wrong_program";
        return PR_REFUSED;
    }
    int fd = vigil__proc_pidfd_open(pid);
    vigil__proc_statinfo ps, again;
    int rc = vigil__proc_stat(pid, &ps);
    char why[PATH_MAX + 200];
    int verdict = PR_MISSING;
    if (rc != VIGIL_OK || ps.state == 'Z' || ps.state == 'X') {
        vigil__buf_printf(out, "%s named pid %d, which is no longer running\n", what, (int)pid);
    } else if (pf->has_start && ps.starttime != pf->start) {
        vigil__buf_printf(out,
                          "%s named pid %d, which is another process now (start time %llu, "
                          "the file says %llu); not signalled\n",
                          what, (int)pid, ps.starttime, pf->start);
        vigil__log(s->logger, VIGIL_LOG_WARN, "action", "stale pidfile names a reused pid",
                   "action=%s pid=%d", s->name, (int)pid);
    } else {
        int id = vigil__proc_identity(pid, s->argv.text[0], s->uid, why, sizeof(why));
        if (id == VIGIL__ID_PROGRAM || id == VIGIL__ID_USER) {
            vigil__buf_printf(out,
                              "%s names running pid %d, which is not provably %s: %s; not "
                              "signalled",
                              what, (int)pid, s->argv.text[0], why);
            *reason = id == VIGIL__ID_PROGRAM ? "wrong_program" : "wrong_user";
            vigil__log(s->logger, VIGIL_LOG_WARN, "action",
                       "pidfile names a process that is "
                       "not the program; not signalled",
                       "action=%s pid=%d check=%s", s->name, (int)pid, *reason);
            verdict = PR_REFUSED;
        } else if (id == VIGIL__ID_OK && vigil__proc_stat(pid, &again) == VIGIL_OK &&
                   again.starttime == ps.starttime && again.state != 'Z') {
            *pidfd = fd; /* opened before the checks: it refers to the checked process */
            return PR_RUNNING;
        } else {
            vigil__buf_printf(out, "%s named pid %d, which is no longer running\n", what, (int)pid);
        }
    }
    if (fd >= 0)
        close(fd);
    return verdict;
}

/* Finds out whether the program runs; on PR_RUNNING *pid is its pid and
 * *pidfd refers to it (or is -1 without pidfd support). */
static int probe(proc_state *s, pid_t *pid, int *pidfd, vigil_buf *out, const char **reason)
{
    *pidfd = -1;
    if (s->child > 0) { /* our own child, not reaped: proven by its pidfd */
        *pid = s->child;
        if (s->child_fd >= 0)
            *pidfd = fcntl(s->child_fd, F_DUPFD_CLOEXEC, 3);
        return PR_RUNNING;
    }
    vigil__pidfile pf;
    char why[PATH_MAX + 160];
    int r = vigil__proc_pidfile_read(s->pidfile, &pf, why, sizeof(why));
    if (r == VIGIL__PIDFILE_SYMLINK) {
        vigil__buf_puts(out, why);
        *reason = "bad_pidfile";
        return PR_REFUSED;
    }
    if (r == VIGIL__PIDFILE_UNREADABLE || r == VIGIL__PIDFILE_GARBAGE)
        vigil__buf_printf(out, "%s: taken as not running\n", why);
    pid_t named = 0;
    if (r == VIGIL__PIDFILE_OK) {
        int v = check_pid(s, &pf, "pidfile", pidfd, out, reason);
        if (v != PR_MISSING) {
            *pid = pf.pid;
            return v;
        }
        named = pf.pid;
        if (!s->writes_pidfile)
            vigil__proc_pidfile_remove(s->pidfile, pf.pid);
    }
    /* The pidfile names nothing running: what Vigil started may still run
     * (the program removed or has not written its pidfile yet). */
    if (s->record &&
        vigil__proc_pidfile_read(s->record, &pf, why, sizeof(why)) == VIGIL__PIDFILE_OK &&
        pf.has_start && pf.pid != named) {
        vigil_buf scratch = VIGIL_BUF_INIT;
        const char *ignored = NULL;
        int v = check_pid(s, &pf, "Vigil's record", pidfd, &scratch, &ignored);
        vigil_buf_dispose(&scratch);
        if (v == PR_RUNNING) {
            vigil__buf_printf(out, "Vigil's record names running pid %d\n", (int)pf.pid);
            *pid = pf.pid;
            return PR_RUNNING;
        }
        vigil__proc_pidfile_remove(s->record, pf.pid); /* stale */
    }
    return PR_MISSING;
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
    if (gone)
        forget_child(s, pid);
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
    return VIGIL_OK;
}

/* Records what Vigil started in its state directory (created when missing). */
static int write_record(proc_state *s, pid_t pid, unsigned long long start)
{
    if (!s->record)
        return VIGIL_OK;
    char *slash = strrchr(s->record, '/');
    if (slash && slash != s->record) {
        *slash = '\0';
        int r = mkdir(s->record, 0700);
        int e = errno;
        *slash = '/';
        if (r != 0 && e != EEXIST)
            return vigil__error_set(VIGIL_EIO, "cannot create the state directory of %s: %s",
                                    s->record, strerror(e));
    }
    return vigil__proc_pidfile_write(s->record, pid, start);
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
    int fd = s->log_file
                 ? open(s->log_file,
                        O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0640)
                 : open("/dev/null", O_WRONLY | O_CLOEXEC);
    pid_t pid = -1;
    int64_t until = vigil__monotonic_ms() + s->start_timeout_ms;
    if (until > exec->deadline_ms)
        until = exec->deadline_ms;
    if (fd < 0) {
        int e = errno;
        vigil__buf_printf(
            out, "cannot open %s: %s%s", s->log_file ? s->log_file : "/dev/null", strerror(e),
            e == ELOOP ? " (a symbolic link: log files are opened with O_NOFOLLOW)" : "");
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
            s->child_fd = vigil__proc_pidfd_open(pid);
        }
    }
    vigil__action_strv_free(env);
    vigil__free(argv);
    if (rc || pid < 0)
        return rc;
    vigil__proc_statinfo ps;
    rc = vigil__proc_stat(pid, &ps);
    if (!rc)
        rc = write_record(s, pid, ps.starttime);
    if (!rc && !s->writes_pidfile)
        rc = vigil__proc_pidfile_write(s->pidfile, pid, ps.starttime);
    if (rc) {
        vigil__buf_printf(out, "%s; stopping pid %d again", vigil_error_last()->message, (int)pid);
        kill(-pid, SIGKILL);
        waitpid(pid, NULL, 0);
        forget_child(s, pid);
        return vigil__action_result_fill(result, VIGIL_ACTION_FAILED, "pidfile", out);
    }
    if (s->settle_ms > 0) {
        int64_t settle = vigil__monotonic_ms() + s->settle_ms;
        int status;
        if (settle > until)
            settle = until;
        if (vigil__proc_wait_gone(pid, -1, settle, &status)) {
            forget_child(s, pid);
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
    const char *reason = NULL;
    int pr = probe(s, &pid, &pidfd, &out, &reason);
    if (pr == PR_REFUSED) {
        rc = vigil__action_result_fill(result, VIGIL_ACTION_FAILED, reason, &out);
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
        if (pr == PR_MISSING && out.size == 0)
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
