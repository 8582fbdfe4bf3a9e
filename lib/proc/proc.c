/* The one child-process runner (see proc.h for what it guarantees), and the
 * helpers that look at processes by pid (/proc, pidfds). */
#include "proc/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- the program check ------------------------------------------------------- */

int vigil__proc_check_program(const char *path, char *why, size_t whylen)
{
    struct stat st;
    if (!path || path[0] != '/') {
        snprintf(why, whylen, "it is not an absolute path (PATH is never searched)");
        return VIGIL_EVALUE;
    }
    if (stat(path, &st) != 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        return VIGIL_ENOTFOUND;
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & 0111) == 0 || access(path, X_OK) != 0) {
        snprintf(why, whylen, "it is not an executable regular file");
        return VIGIL_EPERM;
    }
    if (st.st_mode & 0022) {
        snprintf(why, whylen, "it is writable by group or others (mode %04o)",
                 (unsigned)(st.st_mode & 07777));
        return VIGIL_EPERM;
    }
    uid_t me = geteuid();
    if (st.st_uid != 0 && st.st_uid != me) {
        snprintf(why, whylen,
                 "it is owned by uid %u, neither root nor the user this process runs as "
                 "(uid %u)",
                 (unsigned)st.st_uid, (unsigned)me);
        return VIGIL_EPERM;
    }
    return VIGIL_OK;
}

/* ---- starting ------------------------------------------------------------------ */

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

enum { ST_SETPGID, ST_REDIRECT, ST_IDS, ST_CHDIR, ST_EXEC, ST_COUNT };

/* Child side, between fork and exec: async-signal-safe calls only. */
static void child_exec(const vigil__proc_spec *sp, char *const *envp, int devnull, int out,
                       int errfd, int maxfd)
{
    int stage = ST_SETPGID;
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
    stage = ST_REDIRECT;
    if (dup2(devnull, 0) < 0 || dup2(out, 1) < 0 ||
        dup2(sp->out_fd < 0 && sp->stderr_to_null ? devnull : out, 2) < 0)
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
    stage = ST_IDS;
    if (sp->ids && sp->ids->set) {
        if (setgroups(sp->ids->ngroups, sp->ids->groups) != 0 || setgid(sp->ids->gid) != 0 ||
            setuid(sp->ids->uid) != 0)
            goto fail;
    }
    stage = ST_CHDIR;
    if (chdir(sp->workdir ? sp->workdir : "/") != 0)
        goto fail;
    stage = ST_EXEC;
    execve(sp->argv[0], (char *const *)sp->argv, envp);
fail : {
    int msg[2] = {stage, errno};
    ssize_t w = write(errfd, msg, sizeof(msg));
    (void)w;
    _exit(127);
}
}

static const char *const k_stages[] = {"setpgid", "redirecting descriptors",
                                       "changing user or group", "changing directory to", "exec"};

/* The child's environment: the caller's, with the fixed PATH first when it
 * names none. The strings stay the caller's. */
static char **make_env(const char *const *envp)
{
    size_t n = 0;
    bool has_path = false;
    for (; envp && envp[n]; n++)
        has_path |= strncmp(envp[n], "PATH=", 5) == 0;
    char **env = vigil__calloc(n + 2, sizeof(char *));
    if (!env)
        return NULL;
    size_t k = 0;
    if (!has_path)
        env[k++] = (char *)VIGIL__PROC_PATH;
    for (size_t i = 0; i < n; i++)
        env[k++] = (char *)envp[i];
    return env;
}

/* Reads the [stage, errno] report of a child whose exec may fail: nothing
 * (EOF) means the exec succeeded. Returns the bytes read, or -1 on timeout. */
static ssize_t read_report(int fd, int msg[2], int64_t deadline_ms)
{
    size_t got = 0;
    for (;;) {
        int64_t left = deadline_ms - vigil__monotonic_ms();
        struct pollfd pfd = {fd, POLLIN, 0};
        int pr = poll(&pfd, 1, left <= 0 ? 0 : left > 1000 ? 1000 : (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr == 0) {
            if (left > 0)
                continue;
            return -1;
        }
        ssize_t r = read(fd, (char *)msg + got, 2 * sizeof(int) - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return (ssize_t)got;
        got += (size_t)r;
        if (got == 2 * sizeof(int))
            return (ssize_t)got;
    }
}

int vigil__proc_start(const vigil__proc_spec *sp, pid_t *pid, int *pipe_rd)
{
    int devnull = -1, errp[2] = {-1, -1}, outp[2] = {-1, -1};
    char **env = NULL;
    char why[256];
    *pid = -1;
    if (pipe_rd)
        *pipe_rd = -1;
    if (!sp || !sp->argv || !sp->argv[0])
        return vigil__error_set(VIGIL_EINVAL, "vigil__proc_start: no program");
    const char *prog = sp->argv[0];
    if (sp->out_fd >= 0 && sp->out_fd < 3)
        return vigil__error_set(VIGIL_EINVAL, "output descriptor %d is reserved", sp->out_fd);
    if (vigil__proc_check_program(prog, why, sizeof(why)) != VIGIL_OK)
        return vigil__error_set(VIGIL_ECHILD, "cannot execute %s: %s", prog, why);
    if (!(env = make_env(sp->envp)))
        return vigil__error_oom();
    int rc = VIGIL_OK;
    devnull = fd_high(open("/dev/null", O_RDWR | O_CLOEXEC));
    if (devnull < 0 || pipe2(errp, O_CLOEXEC) != 0) {
        rc = vigil__error_set(VIGIL_EIO, "cannot prepare a child process: %s", strerror(errno));
        goto out;
    }
    errp[0] = fd_high(errp[0]);
    errp[1] = fd_high(errp[1]);
    int out = sp->out_fd;
    if (out < 0 && pipe_rd) {
        if (pipe2(outp, O_CLOEXEC) != 0) {
            rc = vigil__error_set(VIGIL_EIO, "cannot create a pipe: %s", strerror(errno));
            goto out;
        }
        outp[0] = fd_high(outp[0]);
        outp[1] = fd_high(outp[1]);
        out = outp[1];
    } else if (out < 0) {
        out = devnull;
    }
    if (errp[0] < 0 || errp[1] < 0 || out < 0 || (outp[1] >= 0 && outp[0] < 0)) {
        rc = vigil__error_set(VIGIL_EIO, "cannot prepare a child process: %s", strerror(errno));
        goto out;
    }
    long omax = sysconf(_SC_OPEN_MAX);
    int maxfd = omax < 0 || omax > 65536 ? 65536 : (int)omax;
    pid_t p = fork();
    if (p < 0) {
        rc = vigil__error_set(VIGIL_ECHILD, "cannot fork: %s", strerror(errno));
        goto out;
    }
    if (p == 0)
        child_exec(sp, env, devnull, out, errp[1], maxfd);
    setpgid(p, p); /* also from the parent, so the group exists before we signal it */
    close(errp[1]);
    errp[1] = -1;
    if (outp[1] >= 0) {
        close(outp[1]);
        outp[1] = -1;
    }
    int msg[2];
    ssize_t got = read_report(errp[0], msg, sp->deadline_ms);
    if (got < 0) {
        kill(-p, SIGKILL);
        kill(p, SIGKILL);
        while (waitpid(p, NULL, 0) < 0 && errno == EINTR)
            ;
        rc = vigil__error_set(VIGIL_ETIMEOUT, "%s did not start in time", prog);
        goto out;
    }
    if (got > 0) {
        while (waitpid(p, NULL, 0) < 0 && errno == EINTR)
            ;
        bool whole = got == (ssize_t)sizeof(msg);
        int stage = whole && msg[0] >= 0 && msg[0] < ST_COUNT ? msg[0] : ST_EXEC;
        int err = whole ? msg[1] : 0;
        if (stage == ST_CHDIR)
            rc = vigil__error_set(VIGIL_ECHILD, "cannot execute %s: changing directory to %s: %s",
                                  prog, sp->workdir ? sp->workdir : "/", strerror(err));
        else if (stage == ST_EXEC)
            rc = vigil__error_set(VIGIL_ECHILD, "cannot execute %s: %s", prog, strerror(err));
        else
            rc = vigil__error_set(VIGIL_ECHILD, "cannot execute %s: %s: %s", prog, k_stages[stage],
                                  strerror(err));
        goto out;
    }
    *pid = p;
    if (pipe_rd) {
        *pipe_rd = outp[0];
        outp[0] = -1;
    }
out:
    vigil__free(env);
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

/* ---- waiting ------------------------------------------------------------------- */

/* True when `pid` (our child) has exited, without reaping it. ECHILD: the
 * kernel reaped it (SIGCHLD ignored). */
static bool child_exited(pid_t pid)
{
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
        return errno == ECHILD;
    return si.si_pid == pid;
}

/* 1: read something (or nothing yet), 0: end of output, -1: out of memory. */
static int read_some(int fd, vigil__proc_result *run, size_t max_output)
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

int vigil__proc_wait(pid_t pid, int pipe_rd, const vigil__proc_spec *sp, vigil__proc_result *run)
{
    int rc = VIGIL_OK;
    run->how = VIGIL__PROC_EXITED;
    run->exit_code = -1;
    run->term_signal = 0;
    run->truncated = 0;
    int pidfd = vigil__proc_pidfd_open(pid);
    int step = 1;
    bool exited = false;
    for (;;) {
        if (!exited && child_exited(pid))
            exited = true;
        if (exited && (pipe_rd < 0 || !sp->until_eof))
            break;
        int64_t now = vigil__monotonic_ms();
        if (now >= sp->deadline_ms) {
            run->how = VIGIL__PROC_TIMEOUT;
            break;
        }
        if (sp->cancel && sp->cancel(sp->cancel_payload)) {
            run->how = VIGIL__PROC_CANCELLED;
            break;
        }
        int64_t wait = sp->deadline_ms - now;
        if (wait > 1000)
            wait = 1000;
        if (sp->cancel && wait > 50)
            wait = 50;
        if (!exited && pidfd < 0) { /* no pidfd: poll the child with a growing step */
            if (wait > step)
                wait = step;
            if (step < 50)
                step *= 2;
        }
        struct pollfd pfd[2];
        nfds_t np = 0;
        if (pipe_rd >= 0)
            pfd[np++] = (struct pollfd){pipe_rd, POLLIN, 0};
        if (pidfd >= 0 && !exited)
            pfd[np++] = (struct pollfd){pidfd, POLLIN, 0};
        int pr = poll(pfd, np, (int)wait);
        if (pr > 0 && pipe_rd >= 0 && (pfd[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            int r = read_some(pipe_rd, run, sp->max_output);
            if (r < 0) {
                rc = vigil__error_oom();
                run->how = VIGIL__PROC_CANCELLED;
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
    if (w != pid && run->how == VIGIL__PROC_EXITED)
        run->how = VIGIL__PROC_LOST;
    if (pidfd >= 0)
        close(pidfd);
    /* Drain: the writers are gone or dying; stop at EOF or after 100 ms (a
     * process that escaped the group may hold the pipe open). */
    if (pipe_rd >= 0) {
        int64_t until = vigil__monotonic_ms() + 100;
        for (;;) {
            int64_t left = until - vigil__monotonic_ms();
            struct pollfd pfd = {pipe_rd, POLLIN, 0};
            if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
                break;
            int r = read_some(pipe_rd, run, sp->max_output);
            if (r < 0 && rc == VIGIL_OK)
                rc = vigil__error_oom();
            if (r <= 0)
                break;
        }
        close(pipe_rd);
    }
    if (run->how == VIGIL__PROC_EXITED) {
        if (WIFEXITED(status)) {
            run->exit_code = WEXITSTATUS(status);
        } else if (WIFSIGNALED(status)) {
            run->how = VIGIL__PROC_SIGNALED;
            run->term_signal = WTERMSIG(status);
        }
    }
    return rc;
}

int vigil__proc_run(const vigil__proc_spec *sp, vigil__proc_result *result)
{
    pid_t pid;
    int pipe_rd;
    if (sp && sp->out_fd >= 0)
        return vigil__error_set(VIGIL_EINVAL, "vigil__proc_run: captures, takes no out_fd");
    int rc = vigil__proc_start(sp, &pid, &pipe_rd);
    return rc ? rc : vigil__proc_wait(pid, pipe_rd, sp, result);
}

/* ---- processes by pid ------------------------------------------------------------ */

int vigil__proc_stat(pid_t pid, vigil__proc_statinfo *out)
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
    vigil__proc_statinfo st;
    if (vigil__proc_stat(pid, &st) != VIGIL_OK)
        return false;
    return st.state != 'Z' && st.state != 'X' && st.state != 'x';
}

int vigil__proc_pidfd_open(pid_t pid)
{
#ifdef SYS_pidfd_open
    long fd = syscall(SYS_pidfd_open, pid, 0);
    return fd < 0 ? -1 : (int)fd;
#else
    (void)pid;
    errno = ENOSYS;
    return -1;
#endif
}

int vigil__proc_pidfd_signal(int pidfd, pid_t pid, int sig)
{
#ifdef SYS_pidfd_send_signal
    if (pidfd >= 0)
        return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
#else
    (void)pidfd;
#endif
    return kill(pid, sig);
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
        int64_t left = deadline_ms - vigil__monotonic_ms();
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
