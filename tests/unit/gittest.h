/* The git CLI for the suites that build real repositories (argv through
 * posix_spawnp, no shell), isolated from the user's and the system's git
 * configuration. Header-only; needs testutil.h's check.h. */
#ifndef VIGIL_GITTEST_H
#define VIGIL_GITTEST_H

#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static inline void git_env(void)
{
    setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
    setenv("GIT_CONFIG_GLOBAL", "/dev/null", 1);
    setenv("GIT_TERMINAL_PROMPT", "0", 1);
}

/* Runs git -C dir <args...> (NULL-terminated) with its stdout in `out` (may
 * be NULL) and returns its exit status. */
static inline int git_run(const char *dir, char *out, size_t out_len, ...)
{
    char *argv[40];
    int n = 0;
    git_env();
    argv[n++] = "git";
    argv[n++] = "-C";
    argv[n++] = (char *)dir;
    argv[n++] = "-c";
    argv[n++] = "user.name=Vigil Test";
    argv[n++] = "-c";
    argv[n++] = "user.email=test@vigil.invalid";
    argv[n++] = "-c";
    argv[n++] = "init.defaultBranch=main";
    argv[n++] = "-c";
    argv[n++] = "commit.gpgsign=false";
    argv[n++] = "-c";
    argv[n++] = "tag.gpgsign=false";
    va_list ap;
    va_start(ap, out_len);
    for (const char *a; (a = va_arg(ap, const char *)) && n < 39;)
        argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    char outpath[PATH_MAX];
    snprintf(outpath, sizeof(outpath), "%s/.git-out-%ld", P_tmpdir, (long)getpid());
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, outpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    ck_assert_int_eq(posix_spawnp(&pid, "git", &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    if (out) {
        FILE *f = fopen(outpath, "r");
        ck_assert_ptr_nonnull(f);
        size_t got = fread(out, 1, out_len - 1, f);
        fclose(f);
        out[got] = '\0';
        while (got > 0 && (out[got - 1] == '\n' || out[got - 1] == '\r'))
            out[--got] = '\0';
    }
    unlink(outpath);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

#define GIT(dir, ...) ck_assert_int_eq(git_run((dir), NULL, 0, __VA_ARGS__, (char *)NULL), 0)
#define GIT_OUT(dir, buf, ...) \
    ck_assert_int_eq(git_run((dir), (buf), sizeof(buf), __VA_ARGS__, (char *)NULL), 0)

#endif
