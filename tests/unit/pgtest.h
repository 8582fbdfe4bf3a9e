/* A private PostgreSQL server for a test program: initdb and postgres from
 * /usr/lib/postgresql/<version>/bin, data and unix socket under the build
 * tree ($VIGIL_TEST_BUILD/pg/NAME-PID), listening on a free loopback port
 * and on that socket, never touching a system instance. initdb refuses to
 * run as root: as root, the server runs as user "nobody" (the child drops
 * its group and user ids before exec). The server dies with the process
 * that started it (PR_SET_PDEATHSIG) and vt_pg_stop() stops it and removes
 * its files.
 *
 * Local (socket) connections are trusted; TCP connections need the
 * password VT_PG_PASSWORD of the superuser VT_PG_USER (scram-sha-256). */
#ifndef VIGIL_PGTEST_H
#define VIGIL_PGTEST_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <grp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define VT_PG_USER     "vigil"
#define VT_PG_PASSWORD "vt-pg-secret"
#define VT_PG_DB       "vigil"

typedef struct vt_pg {
    pid_t pid;   /* the postmaster; 0: not running */
    pid_t owner; /* the process that started it (only it stops it) */
    int port;
    int drop;  /* run the server as uid/gid */
    uid_t uid; /* "nobody" when run as root */
    gid_t gid;
    char bin[256];  /* .../bin */
    char dir[512];  /* everything of this server */
    char data[600]; /* its data directory */
    char sock[600]; /* its unix socket directory */
    char url[900];  /* postgresql:///vigil?host=SOCK&port=PORT&user=vigil */
    char err[1024]; /* why vt_pg_start failed */
} vt_pg;

static inline int64_t vt_pg_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The bin directory of the newest installed server; 0 when none is. */
static inline int vt_pg_find_bin(char *out, size_t len)
{
    glob_t g;
    int best = -1;
    if (glob("/usr/lib/postgresql/*/bin/postgres", 0, NULL, &g) != 0)
        return 0;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        int v = atoi(g.gl_pathv[i] + strlen("/usr/lib/postgresql/"));
        if (v > best && access(g.gl_pathv[i], X_OK) == 0) {
            best = v;
            snprintf(out, len, "%.*s", (int)(strlen(g.gl_pathv[i]) - strlen("/postgres")),
                     g.gl_pathv[i]);
        }
    }
    globfree(&g);
    return best >= 0;
}

static inline int vt_pg_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static inline void vt_pg_rm_rf(const char *dir)
{
    nftw(dir, vt_pg_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Forks and execs argv (as the server user), stdout and stderr to `log`;
 * `deathsig`: the child gets SIGQUIT when this process dies. */
static inline pid_t vt_pg_spawn(vt_pg *pg, char *const argv[], const char *log, int deathsig)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
    }
    int nul = open("/dev/null", O_RDONLY);
    if (nul >= 0)
        dup2(nul, 0);
    if (pg->drop) {
        if (setgroups(0, NULL) != 0 || setgid(pg->gid) != 0 || setuid(pg->uid) != 0)
            _exit(126);
    }
    if (deathsig)
        prctl(PR_SET_PDEATHSIG, SIGQUIT);
    execv(argv[0], argv);
    _exit(127);
}

/* The last lines of a log file, into pg->err after `what`. */
static inline void vt_pg_fail(vt_pg *pg, const char *what, const char *log)
{
    char tail[700] = "";
    FILE *f = fopen(log, "r");
    if (f) {
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        fseek(f, size > 600 ? size - 600 : 0, SEEK_SET);
        size_t n = fread(tail, 1, sizeof(tail) - 1, f);
        tail[n] = '\0';
        fclose(f);
    }
    snprintf(pg->err, sizeof(pg->err), "%s: %s", what, tail);
}

static inline int vt_pg_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    int port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* Starts the postmaster on pg->port and waits until it accepts connections
 * (deadline 60 s). 0 on success. */
static inline int vt_pg_launch(vt_pg *pg)
{
    char port[16], log[700], sockopt[700];
    snprintf(port, sizeof(port), "%d", pg->port);
    snprintf(log, sizeof(log), "%s/postgres.log", pg->dir);
    snprintf(sockopt, sizeof(sockopt), "%s", pg->sock);
    char postgres[300];
    snprintf(postgres, sizeof(postgres), "%s/postgres", pg->bin);
    char *argv[] = {postgres,
                    "-D",
                    pg->data,
                    "-p",
                    port,
                    "-k",
                    sockopt,
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "fsync=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "max_connections=200",
                    "-c",
                    "unix_socket_permissions=0777",
                    NULL};
    pg->pid = vt_pg_spawn(pg, argv, log, 1);
    if (pg->pid < 0) {
        snprintf(pg->err, sizeof(pg->err), "fork: %s", strerror(errno));
        pg->pid = 0;
        return -1;
    }
    char conninfo[800];
    snprintf(conninfo, sizeof(conninfo),
             "host=%s port=%d user=%s dbname=postgres connect_timeout=5", pg->sock, pg->port,
             VT_PG_USER);
    int64_t deadline = vt_pg_now_ms() + 60000;
    while (PQping(conninfo) != PQPING_OK) {
        int st;
        if (waitpid(pg->pid, &st, WNOHANG) == pg->pid) {
            pg->pid = 0;
            vt_pg_fail(pg, "postgres exited at start", log);
            return -1;
        }
        if (vt_pg_now_ms() > deadline) {
            vt_pg_fail(pg, "postgres did not accept connections within 60 s", log);
            return -1;
        }
        poll(NULL, 0, 20);
    }
    return 0;
}

/* Runs SQL on the server as the superuser over its socket; 0 on success. */
static inline int vt_pg_exec(const vt_pg *pg, const char *db, const char *sql, char *err,
                             size_t errlen)
{
    char conninfo[800];
    snprintf(conninfo, sizeof(conninfo), "host=%s port=%d user=%s dbname=%s", pg->sock, pg->port,
             VT_PG_USER, db);
    PGconn *c = PQconnectdb(conninfo);
    int rc = -1;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, sql);
        ExecStatusType st = PQresultStatus(r);
        rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -1;
        if (rc && err)
            snprintf(err, errlen, "%s", PQresultErrorMessage(r));
        PQclear(r);
    } else if (err) {
        snprintf(err, errlen, "%s", PQerrorMessage(c));
    }
    PQfinish(c);
    return rc;
}

/* Starts a server named `name`. Returns 1 when it runs; 0 when the server
 * binaries are not installed (pg->err says so: skip); -1 on failure
 * (pg->err says why). */
static inline int vt_pg_start(vt_pg *pg, const char *name)
{
    memset(pg, 0, sizeof(*pg));
    pg->owner = getpid();
    if (!vt_pg_find_bin(pg->bin, sizeof(pg->bin))) {
        snprintf(pg->err, sizeof(pg->err),
                 "the PostgreSQL server is not installed (no /usr/lib/postgresql/*/bin/postgres; "
                 "scripts/deps.sh installs it)");
        return 0;
    }
    const char *build = getenv("VIGIL_TEST_BUILD");
    char base[400];
    snprintf(base, sizeof(base), "%s/pg", build && *build ? build : "build");
    mkdir(base, 0755);
    snprintf(pg->dir, sizeof(pg->dir), "%s/%s-%d", base, name, (int)getpid());
    vt_pg_rm_rf(pg->dir);
    snprintf(pg->data, sizeof(pg->data), "%s/data", pg->dir);
    snprintf(pg->sock, sizeof(pg->sock), "%s/sock", pg->dir);
    /* a socket path holds at most 107 bytes: a deep build tree gets its
     * socket directory under /tmp */
    int sock_tmp = strlen(pg->sock) + sizeof("/.s.PGSQL.65535") > 107;
    if (sock_tmp)
        snprintf(pg->sock, sizeof(pg->sock), "/tmp/vigil-pg-%d", (int)getpid());
    if (mkdir(pg->dir, 0700) != 0 || mkdir(pg->sock, 0700) != 0) {
        snprintf(pg->err, sizeof(pg->err), "mkdir %s: %s", pg->dir, strerror(errno));
        return -1;
    }
    char pwfile[700], log[700];
    snprintf(pwfile, sizeof(pwfile), "%s/pw", pg->dir);
    snprintf(log, sizeof(log), "%s/initdb.log", pg->dir);
    FILE *f = fopen(pwfile, "w");
    if (!f || fputs(VT_PG_PASSWORD "\n", f) < 0 || fclose(f) != 0) {
        snprintf(pg->err, sizeof(pg->err), "writing %s failed", pwfile);
        return -1;
    }
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("nobody");
        if (!pw) {
            snprintf(pg->err, sizeof(pg->err), "running as root and there is no user nobody");
            return -1;
        }
        pg->drop = 1;
        pg->uid = pw->pw_uid;
        pg->gid = pw->pw_gid;
        if (chown(pg->dir, pg->uid, pg->gid) != 0 || chown(pg->sock, pg->uid, pg->gid) != 0 ||
            chown(pwfile, pg->uid, pg->gid) != 0) {
            snprintf(pg->err, sizeof(pg->err), "chown %s: %s", pg->dir, strerror(errno));
            return -1;
        }
    }
    char initdb[300], pwopt[720];
    snprintf(initdb, sizeof(initdb), "%s/initdb", pg->bin);
    snprintf(pwopt, sizeof(pwopt), "--pwfile=%s", pwfile);
    char *argv[] = {initdb,
                    "-D",
                    pg->data,
                    "-U",
                    VT_PG_USER,
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    pwopt,
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                    NULL};
    pid_t pid = vt_pg_spawn(pg, argv, log, 1);
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        vt_pg_fail(pg, "initdb failed", log);
        return -1;
    }
    for (int tries = 0; tries < 5; tries++) {
        pg->port = vt_pg_free_port();
        if (vt_pg_launch(pg) == 0)
            break;
        if (tries == 4)
            return -1;
    }
    char err[512];
    if (vt_pg_exec(pg, "postgres", "CREATE DATABASE " VT_PG_DB, err, sizeof(err)) != 0) {
        snprintf(pg->err, sizeof(pg->err), "CREATE DATABASE: %s", err);
        return -1;
    }
    snprintf(pg->url, sizeof(pg->url), "postgresql:///%s?host=%s&port=%d&user=%s", VT_PG_DB,
             pg->sock, pg->port, VT_PG_USER);
    return 1;
}

/* Stops the postmaster (fast shutdown, then SIGKILL after 30 s). */
static inline void vt_pg_halt(vt_pg *pg)
{
    if (!pg->pid || getpid() != pg->owner)
        return;
    kill(pg->pid, SIGINT);
    int64_t deadline = vt_pg_now_ms() + 30000;
    int st;
    while (waitpid(pg->pid, &st, WNOHANG) == 0) {
        if (vt_pg_now_ms() > deadline) {
            kill(pg->pid, SIGKILL);
            waitpid(pg->pid, &st, 0);
            break;
        }
        poll(NULL, 0, 10);
    }
    pg->pid = 0;
}

/* Restarts the server on the same port and data (connections break). 0 on
 * success. Only the process that started it may. */
static inline int vt_pg_restart(vt_pg *pg)
{
    vt_pg_halt(pg);
    return vt_pg_launch(pg);
}

/* Stops the server and removes its files. NULL-safe, idempotent. */
static inline void vt_pg_stop(vt_pg *pg)
{
    if (!pg || getpid() != pg->owner || !pg->dir[0])
        return;
    vt_pg_halt(pg);
    vt_pg_rm_rf(pg->dir);
    if (strncmp(pg->sock, "/tmp/vigil-pg-", 14) == 0)
        vt_pg_rm_rf(pg->sock);
    pg->dir[0] = '\0';
}

#endif
