/* Daemons as real child processes for the suites that run them
 * (test_loop, test_hub_inprocess, test_remediator_http...): the
 * built binaries under $VIGIL_TEST_BUILD/bin, spawned with their output in a
 * log file and their working directory set, the address they log when
 * listening, and a SIGTERM stop that returns the exit status. Header-only. */
#ifndef VIGIL_TEST_PROCTEST_H
#define VIGIL_TEST_PROCTEST_H

#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

typedef struct pt_proc {
    pid_t pid;
    int port;           /* from its "msg=listening address=127.0.0.1:PORT" line */
    char name[32];      /* names its log, <dir>/<name>.log */
    char log[PATH_MAX]; /* stdout and stderr, appended */
    char base[64];      /* http://127.0.0.1:PORT */
} pt_proc;

static inline int64_t pt_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A file's whole content (an empty string when it cannot be read); free() it. */
static inline char *pt_slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return calloc(1, 1);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = calloc(1, (size_t)(n > 0 ? n : 0) + 1);
    if (n > 0 && fread(b, 1, (size_t)n, f) != (size_t)n)
        b[0] = '\0';
    fclose(f);
    return b;
}

/* $VIGIL_TEST_BUILD/bin/<name>, which must be built (4 results stay valid). */
static inline const char *pt_bin_path(const char *name)
{
    static char path[4][PATH_MAX];
    static int next;
    const char *build = getenv("VIGIL_TEST_BUILD");
    ck_assert_msg(build != NULL, "VIGIL_TEST_BUILD is not set (run through make test)");
    char *p = path[next++ % 4];
    snprintf(p, PATH_MAX, "%s/bin/%s", build, name);
    ck_assert_msg(access(p, X_OK) == 0, "not built: %s", p);
    return p;
}

static inline void pt_dump_log(const pt_proc *p)
{
    char *s = pt_slurp(p->log);
    size_t n = strlen(s);
    fprintf(stderr, "---- %s log (last 3000 bytes) ----\n%s\n", p->name,
            n > 3000 ? s + n - 3000 : s);
    free(s);
}

static inline int pt_wait_exit(pid_t pid)
{
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Starts `args` (args[0] a path) in `dir` with stdout and stderr appended to
 * <dir>/<name>.log. With `wait_listen`, waits (20 s at most) for the httpd
 * "listening" line and records the port. */
static inline void pt_start(pt_proc *p, const char *name, char *const *args, const char *dir,
                            int wait_listen)
{
    posix_spawn_file_actions_t fa;
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    snprintf(p->log, sizeof(p->log), "%s/%s.log", dir, name);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, p->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_addchdir_np(&fa, dir);
    ck_assert_int_eq(posix_spawn(&p->pid, args[0], &fa, NULL, args, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    if (!wait_listen)
        return;
    static const char needle[] = "msg=listening address=127.0.0.1:";
    for (int64_t end = pt_mono_ms() + 20000; !p->port && pt_mono_ms() < end;) {
        char *s = pt_slurp(p->log);
        const char *at = strstr(s, needle);
        if (at)
            p->port = atoi(at + strlen(needle));
        free(s);
        if (!p->port) {
            int st;
            if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
                pt_dump_log(p);
                ck_abort_msg("%s exited before listening", name);
            }
            usleep(10000);
        }
    }
    if (!p->port)
        pt_dump_log(p);
    ck_assert_msg(p->port > 0, "%s did not log its address", name);
    snprintf(p->base, sizeof(p->base), "http://127.0.0.1:%d", p->port);
}

/* SIGTERM, then the exit status (SIGKILL after 10 s: 137). */
static inline int pt_stop(pt_proc *p)
{
    int st = 0;
    if (p->pid <= 0)
        return 0;
    kill(p->pid, SIGTERM);
    for (int i = 0; i < 1000; i++) {
        if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
            p->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        usleep(10000);
    }
    kill(p->pid, SIGKILL);
    waitpid(p->pid, &st, 0);
    p->pid = 0;
    return 137;
}

#endif
