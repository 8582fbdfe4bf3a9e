/* A real redis-server for the suites that need one (test_redis,
 * bench/ingest_http's VIGIL_BENCH_REDIS): started by the test as a child
 * process on a free loopback port, its data in a fresh directory under the
 * build tree, never persisted (--save '' --appendonly no), and stopped at
 * the end. Children started here get SIGKILL when the test process dies
 * (PR_SET_PDEATHSIG), so a failed assertion leaves no server behind.
 * Header-only. */
#ifndef VIGIL_TEST_REDISTEST_H
#define VIGIL_TEST_REDISTEST_H

#include <arpa/inet.h>
#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <hiredis/hiredis.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RT_REDIS_BIN "/usr/bin/redis-server"

extern char **environ;

typedef struct rt_redis {
    pid_t pid;
    int port;
    char dir[PATH_MAX];
    char log[PATH_MAX + 16];
    char pass[128];
} rt_redis;

static inline int64_t rt_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 1 when redis-server is installed; else prints why the caller skips. */
static inline int rt_have_redis(const char *test)
{
    if (access(RT_REDIS_BIN, X_OK) == 0)
        return 1;
    fprintf(stderr,
            "SKIP %s: %s is not installed (Debian package redis-server; scripts/deps.sh "
            "installs it)\n",
            test, RT_REDIS_BIN);
    return 0;
}

/* fork + execve of argv (argv[0] a path; no shell), output appended to
 * `log`, in `dir`; the child is killed when this process dies. */
static inline pid_t rt_spawn(char *const *argv, const char *dir, const char *log)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0 || chdir(dir) != 0)
            _exit(127);
        execve(argv[0], argv, environ);
        _exit(127);
    }
    return pid;
}

/* A connection to the test's Redis (authenticated when it has a password). */
static inline redisContext *rt_connect(const rt_redis *r)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
    if (!c || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    if (r->pass[0]) {
        redisReply *rep = redisCommand(c, "AUTH %s", r->pass);
        int ok = rep && rep->type != REDIS_REPLY_ERROR;
        if (rep)
            freeReplyObject(rep);
        if (!ok) {
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

/* One command on a fresh connection; the reply (freeReplyObject) or NULL. */
static inline redisReply *rt_cmd(const rt_redis *r, int argc, const char **argv)
{
    redisContext *c = rt_connect(r);
    if (!c)
        return NULL;
    redisReply *rep = redisCommandArgv(c, argc, argv, NULL);
    redisFree(c);
    return rep;
}

static inline long long rt_xlen(const rt_redis *r, const char *stream)
{
    const char *argv[] = {"XLEN", stream};
    redisReply *rep = rt_cmd(r, 2, argv);
    long long n = rep && rep->type == REDIS_REPLY_INTEGER ? rep->integer : -1;
    if (rep)
        freeReplyObject(rep);
    return n;
}

static inline int rt_rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Starts redis-server on r->port (0: a free one) with `pass` (NULL: none)
 * and waits (10 s at most) until it answers PING. r->dir is made under
 * $VIGIL_TEST_BUILD (or /tmp) on the first start and kept for a restart. */
static inline void rt_redis_start(rt_redis *r, const char *pass)
{
    if (!r->dir[0]) {
        const char *build = getenv("VIGIL_TEST_BUILD");
        char base[PATH_MAX - 64];
        snprintf(base, sizeof(base), "%s/redis-tests", build ? build : "/tmp");
        mkdir(base, 0700);
        snprintf(r->dir, sizeof(r->dir), "%s/redis-XXXXXX", base);
        ck_assert_ptr_nonnull(mkdtemp(r->dir));
        snprintf(r->log, sizeof(r->log), "%s/redis.log", r->dir);
    }
    snprintf(r->pass, sizeof(r->pass), "%s", pass ? pass : "");
    for (int attempt = 0; attempt < 5; attempt++) {
        if (!r->port || attempt)
            r->port = 0;
        if (!r->port) {
            int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            struct sockaddr_in sa;
            memset(&sa, 0, sizeof(sa));
            sa.sin_family = AF_INET;
            sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
            socklen_t sl = sizeof(sa);
            getsockname(fd, (struct sockaddr *)&sa, &sl);
            close(fd);
            r->port = ntohs(sa.sin_port);
        }
        char port[16];
        snprintf(port, sizeof(port), "%d", r->port);
        char *argv[] = {RT_REDIS_BIN, "--port",        port,    "--bind",
                        "127.0.0.1",  "--save",        "",      "--appendonly",
                        "no",         "--dir",         r->dir,  "--stream-node-max-entries",
                        "10",         "--requirepass", r->pass, NULL};
        if (!r->pass[0])
            argv[13] = NULL;
        r->pid = rt_spawn(argv, r->dir, r->log);
        for (int64_t end = rt_mono_ms() + 10000; rt_mono_ms() < end;) {
            redisContext *c = rt_connect(r);
            if (c) {
                redisReply *rep = redisCommand(c, "PING");
                int up = rep && rep->type == REDIS_REPLY_STATUS;
                if (rep)
                    freeReplyObject(rep);
                redisFree(c);
                if (up)
                    return;
            }
            int st;
            if (waitpid(r->pid, &st, WNOHANG) == r->pid) {
                r->pid = 0;
                break; /* the port was taken meanwhile: another one */
            }
            usleep(20000);
        }
        if (r->pid) {
            kill(r->pid, SIGKILL);
            waitpid(r->pid, NULL, 0);
            r->pid = 0;
        }
    }
    ck_abort_msg("redis-server did not start (log: %s)", r->log);
}

/* SIGKILL: an outage, as a crash (the port is kept for a restart). */
static inline void rt_redis_kill(rt_redis *r)
{
    if (r->pid > 0) {
        kill(r->pid, SIGKILL);
        waitpid(r->pid, NULL, 0);
        r->pid = 0;
    }
}

/* Stops it (SIGTERM, then SIGKILL after 5 s) and removes its directory. */
static inline void rt_redis_stop(rt_redis *r)
{
    if (r->pid > 0) {
        kill(r->pid, SIGTERM);
        int st;
        int64_t end = rt_mono_ms() + 5000;
        while (waitpid(r->pid, &st, WNOHANG) != r->pid) {
            if (rt_mono_ms() > end) {
                kill(r->pid, SIGKILL);
                waitpid(r->pid, &st, 0);
                break;
            }
            usleep(10000);
        }
        r->pid = 0;
    }
    if (r->dir[0])
        nftw(r->dir, rt_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    r->dir[0] = '\0';
}

#endif
