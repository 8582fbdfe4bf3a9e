/*
 * The one child-process runner of the library (private, never installed).
 * Every program the library starts goes through here: the exec collector,
 * the exec, process and systemd actions.
 *
 * What it guarantees, for every child:
 *   - argv only, never a shell: argv[0] is an absolute path that is passed to
 *     execve(2) as is (PATH is never searched);
 *   - the program passes vigil__proc_check_program() just before it starts:
 *     an executable regular file that neither group nor others can write,
 *     owned by root or by the effective user of this process;
 *   - the environment is exactly the one given, plus VIGIL__PROC_PATH when it
 *     names no PATH;
 *   - stdin is /dev/null; stdout and stderr go to a capture pipe or to a
 *     descriptor of the caller; every other descriptor is closed;
 *   - default signal dispositions and an empty signal mask;
 *   - the child leads a process group of its own; on a deadline, a
 *     cancellation, and after a normal exit, the whole group is SIGKILLed
 *     (so nothing the program left behind survives the run);
 *   - the optional identity (supplementary groups, gid, uid) is dropped and
 *     the working directory set ("/" by default) before the exec;
 *   - an exec that fails is reported with the step that failed, and the
 *     child is reaped: the runner never leaves a zombie. It waits only for the
 *     pids it started (never waitpid(-1)); when SIGCHLD is ignored and the
 *     kernel reaps the child itself, the run ends as VIGIL__PROC_LOST.
 */
#ifndef VIGIL_PROC_PROC_H
#define VIGIL_PROC_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "internal/common.h"

/* The fixed PATH given to a child whose environment names none. */
#define VIGIL__PROC_PATH "PATH=/usr/sbin:/usr/bin:/sbin:/bin"

/* Identity to drop to in the child. */
typedef struct vigil__proc_ids {
    int set; /* non-zero: change to uid/gid/groups */
    uid_t uid;
    gid_t gid;
    gid_t *groups;
    size_t ngroups;
} vigil__proc_ids;

/* Non-zero to stop waiting (polled about every 50 ms). */
typedef int (*vigil__proc_cancel_cb)(void *payload);

typedef struct vigil__proc_spec {
    const char *const *argv;      /* NULL-terminated; argv[0] is the absolute program */
    const char *const *envp;      /* NULL-terminated, or NULL for none (PATH is added) */
    const char *workdir;          /* NULL: "/" */
    const vigil__proc_ids *ids;   /* NULL: keep this process's identity */
    int out_fd;                   /* >= 3: stdout and stderr go there; -1: capture */
    bool stderr_to_null;          /* with capture: stderr to /dev/null (else captured too) */
    bool until_eof;               /* vigil__proc_wait: also wait for the end of the output */
    size_t max_output;            /* bytes of captured output kept; the rest is drained */
    int64_t deadline_ms;          /* monotonic ms (vigil__monotonic_ms()) */
    vigil__proc_cancel_cb cancel; /* NULL: never cancelled */
    void *cancel_payload;
} vigil__proc_spec;

enum {
    VIGIL__PROC_EXITED = 0,
    VIGIL__PROC_SIGNALED,
    VIGIL__PROC_TIMEOUT,
    VIGIL__PROC_CANCELLED,
    VIGIL__PROC_LOST /* the status was reaped elsewhere (SIGCHLD ignored) */
};

typedef struct vigil__proc_result {
    int how;          /* VIGIL__PROC_* */
    int exit_code;    /* when EXITED, else -1 */
    int term_signal;  /* when SIGNALED, else 0 */
    vigil_buf output; /* captured output, at most max_output bytes; the caller's */
    int truncated;    /* non-zero when output beyond max_output was dropped */
} vigil__proc_result;

/* Checks that `path` may be run. On failure writes the reason to `why`
 * (which never repeats the path), e.g. "No such file or directory",
 * "it is writable by group or others (mode 0775)", and returns
 * VIGIL_EVALUE (not an absolute path), VIGIL_ENOTFOUND (stat(2) failed) or
 * VIGIL_EPERM (not an executable regular file; writable by group or others;
 * owned by someone other than root or the effective user). */
int vigil__proc_check_program(const char *path, char *why, size_t whylen);

/* Checks the program, then forks and execs it as described above, waiting
 * (until spec->deadline_ms) for the exec to succeed. *pipe_rd receives the
 * capture pipe's read end, or -1 (when spec->out_fd >= 0, or pipe_rd is NULL
 * and out_fd is -1, the output goes to /dev/null). Returns VIGIL_OK, or
 * VIGIL_ECHILD with "cannot execute PROG: WHY" (the check failed or the exec
 * did; nothing is left running), VIGIL_ETIMEOUT ("PROG did not start in
 * time"; the child is killed and reaped), VIGIL_EIO, VIGIL_EINVAL,
 * VIGIL_ENOMEM. */
int vigil__proc_start(const vigil__proc_spec *spec, pid_t *pid, int *pipe_rd);

/* Reads the child's output into result->output (max_output bytes kept, the
 * rest read and dropped, `truncated` set) until it exits (and, with
 * until_eof, its output ends), the deadline passes or cancel says so; then
 * SIGKILLs whatever is left of its process group, reaps the child and closes
 * pipe_rd. VIGIL_OK (the outcome is in result->how) or VIGIL_ENOMEM (the
 * child is still killed and reaped). */
int vigil__proc_wait(pid_t pid, int pipe_rd, const vigil__proc_spec *spec,
                     vigil__proc_result *result);

/* vigil__proc_start() with capture, then vigil__proc_wait(). */
int vigil__proc_run(const vigil__proc_spec *spec, vigil__proc_result *result);

/* ---- processes by pid ---- */

typedef struct vigil__proc_statinfo {
    char state; /* R, S, D, Z, T, ... */
    pid_t pgrp;
    unsigned long long starttime; /* field 22, clock ticks since boot */
} vigil__proc_statinfo;
/* Reads /proc/PID/stat. VIGIL_OK, VIGIL_ENOTFOUND (no such process),
 * VIGIL_ECORRUPT, VIGIL_EIO. */
int vigil__proc_stat(pid_t pid, vigil__proc_statinfo *out);
/* True when the process exists and is not a zombie. */
bool vigil__proc_alive(pid_t pid);
/* Opens a pidfd: -1 with errno when the kernel has none (ENOSYS) or the
 * process is gone (ESRCH). */
int vigil__proc_pidfd_open(pid_t pid);
/* Sends `sig` through the pidfd when there is one, else with kill(2). */
int vigil__proc_pidfd_signal(int pidfd, pid_t pid, int sig);
/* Waits until process `pid` is gone (reaping it when it is our child) or
 * until `deadline_ms`. Returns true when gone. *status receives the wait
 * status when reaped (else -1). */
bool vigil__proc_wait_gone(pid_t pid, int pidfd, int64_t deadline_ms, int *status);

/* ---- pidfiles and the identity of the process they name (pidfile.c) ---- */

/* What a pidfile says: a bare "PID" (written by the program) or Vigil's
 * "PID STARTTIME" (STARTTIME is field 22 of /proc/PID/stat). */
typedef struct vigil__pidfile {
    pid_t pid;
    unsigned long long start; /* when has_start */
    int has_start;
} vigil__pidfile;

enum {
    VIGIL__PIDFILE_OK = 0,
    VIGIL__PIDFILE_MISSING,    /* no such file (or a missing directory) */
    VIGIL__PIDFILE_UNREADABLE, /* open or read failed */
    VIGIL__PIDFILE_GARBAGE,    /* holds no pid (empty, text, pid <= 1, trailing junk) */
    VIGIL__PIDFILE_SYMLINK     /* a symbolic link: refused (O_NOFOLLOW) */
};

/* Parses "PID" or "PID STARTTIME" with optional surrounding blanks and one
 * trailing newline. Returns 0, or -1 when the text holds no valid pid. */
int vigil__proc_pidfile_parse(const char *text, vigil__pidfile *out);
/* Reads and parses the pidfile at `path`, opened with O_NOFOLLOW and
 * O_NONBLOCK (a FIFO never blocks). Returns VIGIL__PIDFILE_*; for anything
 * but OK and MISSING writes a message naming the path to `why`. */
int vigil__proc_pidfile_read(const char *path, vigil__pidfile *out, char *why, size_t whylen);
/* Writes "PID STARTTIME\n" to a temporary file in the same directory
 * (mode 0644, fsynced) and renames it over `path`. VIGIL_OK or VIGIL_EIO
 * ("cannot write pidfile PATH: ..."), VIGIL_ENOMEM. */
int vigil__proc_pidfile_write(const char *path, pid_t pid, unsigned long long start);
/* Removes the pidfile at `path` when it still names `pid`. */
void vigil__proc_pidfile_remove(const char *path, pid_t pid);
/* Checks the directory that holds `path`: a directory writable by others
 * (mode o+w, sticky or not) lets any user plant or replace the file, and is
 * refused: VIGIL_EPERM with "directory DIR is writable by other users (mode
 * 1777)" in `why`. VIGIL_OK also when the directory does not exist (yet). */
int vigil__proc_dir_check(const char *path, char *why, size_t whylen);

enum { VIGIL__ID_OK = 0, VIGIL__ID_PROGRAM, VIGIL__ID_USER, VIGIL__ID_GONE };
/* Checks that live process `pid` runs `program` (/proc/PID/exe and the file
 * are the same inode; NULL: any program) as user `uid` (the effective uid
 * in /proc/PID/status).
 * Returns VIGIL__ID_OK, or the check that failed with a message in `why`:
 * VIGIL__ID_PROGRAM ("/proc/PID/exe is /usr/bin/sleep, not PROGRAM", or
 * "cannot read /proc/PID/exe: Permission denied"), VIGIL__ID_USER ("it runs
 * as uid 1000, not uid 0"), VIGIL__ID_GONE (it ended meanwhile). */
int vigil__proc_identity(pid_t pid, const char *program, uid_t uid, char *why, size_t whylen);

#endif
