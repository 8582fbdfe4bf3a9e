/*
 * Private helpers shared by the files of lib/action/: child processes
 * (spawn.c), /proc inspection, signal names, path and argv handling, and the
 * built-in action types. Never installed.
 */
#ifndef VIGIL_ACTION_INT_H
#define VIGIL_ACTION_INT_H

#include <stdbool.h>
#include <sys/types.h>

#include "internal/common.h"
#include "vigil/action.h"
#include "vigil/config.h"
#include "vigil/signature.h"
#include "vigil/sys/action.h"

/* The fixed PATH of every child; PATH is never searched by Vigil itself. */
#define VIGIL__ACTION_PATH "PATH=/usr/sbin:/usr/bin:/sbin:/bin"
#define VIGIL__ARGV_MAX    256 /* elements of a configured argv */
#define VIGIL__ENV_MAX     64  /* names in env_passthrough */

/* ---- built-in types ---- */
extern const vigil_action_type vigil__action_exec_type;
extern const vigil_action_type vigil__action_process_type;
extern const vigil_action_type vigil__action_systemd_type;
extern const vigil_action_type vigil__action_signal_type;
extern const vigil_action_type vigil__action_webhook_type;
extern const vigil_action_type vigil__action_log_type;

/* ---- configuration helpers (spawn.c) ---- */
/* vigil_config_error() with a printf format. Returns `code`. */
int vigil__action_cfg_error(const vigil_config_node *node, int code, const char *fmt, ...)
    VIGIL__PRINTF(3, 4);
/* Makes `path` (from `node`) absolute against `base_dir`. *out is the
 * caller's. VIGIL_EVALUE (located) for an empty or a relative path without
 * a base directory. */
int vigil__action_path(char **out, const vigil_config_node *node, const char *path,
                       const char *base_dir);
/* Reads an optional path key of `map` (NULL when absent) made absolute. */
int vigil__action_get_path(char **out, const vigil_config_node *map, const char *key,
                           const char *base_dir);
/* Frees a NULL-terminated array of strings and the array. */
void vigil__action_strv_free(char **v);
/* Reads an optional list of strings (NULL-terminated copy; an absent key
 * gives an empty list). `max` bounds its length. */
int vigil__action_get_strv(char ***out, size_t *n, const vigil_config_node *map, const char *key,
                           size_t max);
/* Appends `s` to `b` as a double-quoted, escaped string clipped to about
 * `max` bytes (for messages and logs): control characters and bytes that are
 * not valid UTF-8 become \xNN, so the result is always valid UTF-8. */
int vigil__action_quote(vigil_buf *b, const char *s, size_t max);

/* Signal names: "HUP", "SIGHUP", "hup" -> SIGHUP. 0 when unknown. */
int vigil__action_signal_parse(const char *name);
const char *vigil__action_signal_name(int sig);
/* Reads an optional signal key (default `dflt`), located error when bad. */
int vigil__action_get_signal(int *out, const vigil_config_node *map, const char *key, int dflt);

/* Identity to drop to in the child. */
typedef struct vigil__ids {
    int set; /* non-zero: change to uid/gid/groups */
    uid_t uid;
    gid_t gid;
    gid_t *groups;
    size_t ngroups;
} vigil__ids;
/* Reads the optional `user` and `group` keys of `map`. Dropping needs root
 * (VIGIL_EPERM) unless the ids are the process's own (then a no-op). */
int vigil__ids_parse(vigil__ids *ids, const vigil_config_node *map);
void vigil__ids_free(vigil__ids *ids);

/* env_passthrough names, validated. */
int vigil__env_names_parse(char ***out, const vigil_config_node *map);
/* Builds the child environment: PATH plus the passthrough variables that
 * are set. *out is NULL-terminated; free with vigil__action_strv_free(). */
int vigil__env_build(char ***out, char *const *names, vigil_getenv_cb getenv_cb, void *payload);

/* ---- argv templates (spawn.c) ---- */
enum { VIGIL__ARG_LITERAL = 0, VIGIL__ARG_TARGET = 1, VIGIL__ARG_PARAM = 2 };
typedef struct vigil__argv_tpl {
    size_t n;
    char **text; /* literal text, or the parameter name for VIGIL__ARG_PARAM */
    int *kind;
} vigil__argv_tpl;
/* Parses the list `key` of `map`: argv[0] is a literal program made
 * absolute; with `allow_placeholders`, {{target}} and {{params.NAME}} may
 * fill whole elements (NAME must be listed in the action's `params`). */
int vigil__argv_parse(vigil__argv_tpl *tpl, const vigil_config_node *map, const char *key,
                      const char *base_dir, bool allow_placeholders);
void vigil__argv_free(vigil__argv_tpl *tpl);
/* VIGIL_EPERM when a parameter the template needs is missing. */
int vigil__argv_check(const vigil__argv_tpl *tpl, const vigil_action_request *req,
                      const char *action);
/* Fills argv (n + 1 slots, NULL-terminated) with pointers into the template
 * and the request. */
void vigil__argv_expand(const vigil__argv_tpl *tpl, const vigil_action_request *req,
                        const char **argv);
/* "would run /bin/echo \"a b\"" style description. */
int vigil__argv_describe(vigil_buf *out, const char *const *argv);

/* ---- child processes (spawn.c) ---- */
typedef struct vigil__spawn {
    const char *const *argv; /* NULL-terminated; argv[0] is the absolute program */
    const char *const *envp; /* NULL-terminated */
    const char *workdir;     /* NULL: "/" */
    const vigil__ids *ids;   /* NULL: keep the process's ids */
    int out_fd;              /* >= 0: stdout and stderr go there; -1: capture (pipe) */
} vigil__spawn;

/* Forks and execs in a new process group (the child leads it) with stdin
 * from /dev/null, all other descriptors closed, default signal dispositions
 * and an empty signal mask. Waits (until `deadline_ms`, monotonic) for the
 * exec to succeed. *pipe_rd receives the capture pipe's read end (or -1).
 * VIGIL_ECHILD with "cannot execute PROG: ..." when the exec failed (the
 * child is reaped), VIGIL_ETIMEOUT, VIGIL_EIO. */
int vigil__spawn_start(const vigil__spawn *sp, int64_t deadline_ms, pid_t *pid, int *pipe_rd);

enum {
    VIGIL__RUN_EXITED = 0,
    VIGIL__RUN_SIGNALED,
    VIGIL__RUN_TIMEOUT,
    VIGIL__RUN_CANCELLED,
    VIGIL__RUN_LOST /* the status was reaped elsewhere */
};
typedef struct vigil__run {
    int how;
    int exit_code;   /* when EXITED, else -1 */
    int term_signal; /* when SIGNALED, else 0 */
    vigil_buf output;
    int truncated;
} vigil__run;

/* Captures the child's output (up to max_output bytes, the rest is read and
 * dropped) until it exits, the deadline passes or cancel() says so; then
 * SIGKILLs whatever is left of its process group and reaps it. */
int vigil__spawn_wait(pid_t pid, int pipe_rd, int64_t deadline_ms, vigil_action_cancel_cb cancel,
                      void *cancel_payload, size_t max_output, vigil__run *run);

/* Spawn + wait + fill `result` (status, reason, output, exit code). */
int vigil__spawn_run_result(const vigil__spawn *sp, const vigil_action_exec *exec,
                            size_t max_output, vigil_action_result *result);

/* ---- /proc (spawn.c) ---- */
typedef struct vigil__procstat {
    char state; /* R, S, D, Z, T, ... */
    pid_t pgrp;
    unsigned long long starttime; /* field 22, clock ticks since boot */
} vigil__procstat;
/* VIGIL_OK, VIGIL_ENOTFOUND (no such process), VIGIL_ECORRUPT, VIGIL_EIO. */
int vigil__proc_stat(pid_t pid, vigil__procstat *out);
/* True when the process exists and is not a zombie. */
bool vigil__proc_alive(pid_t pid);
/* Opens a pidfd (-1 when the kernel has none or the process is gone). */
int vigil__pidfd_open(pid_t pid);
/* Sends `sig` through the pidfd when there is one, else with kill(2). */
int vigil__pidfd_signal(int pidfd, pid_t pid, int sig);
/* Waits until process `pid` is gone (reaping it when it is our child) or
 * until `deadline_ms`. Returns true when gone. *status receives the wait
 * status when reaped (else -1). */
bool vigil__proc_wait_gone(pid_t pid, int pidfd, int64_t deadline_ms, int *status);

/* Sleeps until deadline, waking for cancel; true when cancelled. */
bool vigil__sleep_until(int64_t deadline_ms, vigil_action_cancel_cb cancel, void *payload);

#endif
