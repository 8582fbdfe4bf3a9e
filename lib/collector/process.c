/* Built-in collector process: matches processes by pidfile, comm or command
 * line, reports their state, and watches each matched pid with a pidfd in an
 * epoll set so that an exit is reported as soon as it happens.
 *
 * Pidfiles hold a bare "PID" (written by the program) or Vigil's
 * "PID STARTTIME" (the start time must match). They are opened with
 * O_NOFOLLOW; missing, unreadable (a symbolic link included), garbage or a
 * dead pid all read as "not running" (process_up 0), an unreadable one with a
 * warning in the log. A pidfile in a directory that other users may write is
 * refused when the collector is created. With watch (the default), the
 * pidfile's directory is watched with inotify too (atomic renames are seen):
 * when the pidfile is rewritten to name a new running process, it is watched
 * at once and process_up 1 is emitted from the event path, without waiting for
 * the next collection. A pidfile rewritten to name a new pid that is already
 * gone is news too (the process did start): process_up 1 then process_up 0 are
 * emitted, 1 ms apart, so a policy sees the recovery and the new failure. */
#include "collector/coll_int.h"
#include "proc/proc.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <unistd.h>

#define MATCH_MAX   4096
#define CMDLINE_MAX 4096
#define PATTERN_MAX 1024
#define COMM_MAX    15
#define WATCH_MAX   256 /* pidfds per collector; more exits are seen by polling */

static const char *const process_keys[] = {"pidfile", "comm", "cmdline", "watch", NULL};

typedef enum { BY_PIDFILE, BY_COMM, BY_CMDLINE } match_mode;

typedef struct {
    int pid;
    char state;
    uint64_t utime, stime, start, threads, rss_pages;
} proc_info;

typedef struct {
    int pid;
    int fd;
    uint64_t start;
} watch_ent;

typedef struct {
    const vigil_collector_context *ctx;
    match_mode mode;
    char *pidfile;            /* resolved */
    const char *pidfile_base; /* its last component, within pidfile */
    int ino;                  /* inotify on the pidfile's directory (in epfd), or -1 */
    bool warned;              /* an unreadable pidfile was logged */
    bool pf_seen;             /* the pidfile was read once: pf_pid holds what it named */
    pid_t pf_pid;             /* the pid it named at the last read (0: none) */
    bool dead_start;          /* the last read named a new pid, already gone */
    char *comm;
    regex_t re;
    bool have_re;
    char *label;
    int epfd;
    watch_ent *w;
    size_t nw, capw;
    proc_info *cur;
    size_t ncur, capcur;
    proc_info *prev;
    size_t nprev, capprev;
    int64_t prev_mono;
    bool have_prev;
    uint64_t restarts;
    int main_pid;
    uint64_t main_start;
    bool had_main;
    double ticks;
    double page;
    char *cmdbuf; /* CMDLINE_MAX + 1 */
} proc_state;

static void process_destroy(void *p)
{
    proc_state *s = p;
    for (size_t i = 0; i < s->nw; i++)
        close(s->w[i].fd);
    if (s->epfd >= 0)
        close(s->epfd);
    if (s->ino >= 0)
        close(s->ino);
    if (s->have_re)
        regfree(&s->re);
    vigil__free(s->w);
    vigil__free(s->cur);
    vigil__free(s->prev);
    vigil__free(s->pidfile);
    vigil__free(s->comm);
    vigil__free(s->label);
    vigil__free(s->cmdbuf);
    vigil__free(s);
}

static int read_config(proc_state *s, const vigil_config_node *config,
                       const vigil_collector_context *ctx, int *watch)
{
    static const char *const modes[] = {"pidfile", "comm", "cmdline"};
    const vigil_config_node *which = NULL;
    int nmodes = 0;
    for (int i = 0; i < 3; i++) {
        const vigil_config_node *n = vigil_config_node_get(config, modes[i]);
        if (n) {
            nmodes++;
            if (!which) {
                which = n;
                s->mode = (match_mode)i;
            }
        }
    }
    if (nmodes == 0)
        return vigil_error_set_at(VIGIL_EMISSING, config,
                                  "a process collector needs one of pidfile, comm or cmdline");
    if (nmodes > 1)
        return vigil_error_set_at(VIGIL_EVALUE, config,
                                  "pidfile, comm and cmdline are exclusive: give only one");
    int rc = vigil_config_get_bool(watch, config, "watch", 1);
    if (rc != VIGIL_OK)
        return rc;
    const char *v = NULL;
    if ((rc = vigil__coll_require_string(&v, config, modes[s->mode])) != VIGIL_OK)
        return rc;
    const char *label = ctx->name ? ctx->name : v;
    if (!(s->label = vigil__strdup(label)))
        return vigil__error_oom();
    if (strlen(s->label) > VIGIL_METRIC_TAG_VALUE_MAX)
        return vigil_error_set_at(VIGIL_ELIMIT, which, "too long to be a tag value; set name");
    switch (s->mode) {
    case BY_PIDFILE: {
        s->pidfile = vigil__coll_resolve(ctx->base_dir, v);
        if (!s->pidfile)
            return VIGIL_ENOMEM;
        const char *slash = strrchr(s->pidfile, '/');
        s->pidfile_base = slash ? slash + 1 : s->pidfile;
        char why[PATH_MAX + 160], msg[PATH_MAX + 300];
        if (vigil__proc_dir_check(s->pidfile, why, sizeof(why)) != VIGIL_OK) {
            snprintf(msg, sizeof(msg), "%s: %s", s->pidfile, why);
            return vigil_error_set_at(VIGIL_EPERM, which, msg);
        }
        return VIGIL_OK;
    }
    case BY_COMM:
        if (strlen(v) > COMM_MAX)
            return vigil_error_set_at(VIGIL_EVALUE, which,
                                      "longer than 15 bytes: the kernel truncates process "
                                      "names to 15 bytes, so it would never match");
        s->comm = vigil__strdup(v);
        return s->comm ? VIGIL_OK : vigil__error_oom();
    case BY_CMDLINE:
        if (strlen(v) > PATTERN_MAX)
            return vigil_error_set_at(VIGIL_ELIMIT, which, "regular expression too long");
        rc = regcomp(&s->re, v, REG_EXTENDED | REG_NOSUB);
        if (rc != 0) {
            char err[128], msg[200];
            regerror(rc, &s->re, err, sizeof(err));
            snprintf(msg, sizeof(msg), "invalid regular expression: %s", err);
            return vigil_error_set_at(VIGIL_EVALUE, which, msg);
        }
        s->have_re = true;
        s->cmdbuf = vigil__malloc(CMDLINE_MAX + 1);
        return s->cmdbuf ? VIGIL_OK : vigil__error_oom();
    }
    return VIGIL_OK;
}

/* Watches the pidfile's directory with inotify (in the epoll set), so a
 * rewrite of the pidfile, atomic rename included, is an event. Without
 * inotify, or while the directory is missing, new processes are seen at the
 * next collection (this is retried then). */
static void watch_pidfile(proc_state *s)
{
    if (s->epfd < 0 || s->ino >= 0)
        return;
    char dir[PATH_MAX];
    size_t n = (size_t)(s->pidfile_base - s->pidfile);
    if (n == 0 || n >= sizeof(dir))
        return;
    memcpy(dir, s->pidfile, n);
    dir[n > 1 ? n - 1 : n] = '\0';
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0)
        return;
    if (inotify_add_watch(fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO) < 0) {
        close(fd);
        return;
    }
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close(fd);
        return;
    }
    s->ino = fd;
}

/* Reads every pending inotify event; true when one names the pidfile. */
static bool drain_inotify(proc_state *s)
{
    bool hit = false;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(s->ino, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)(void *)p;
            if ((ev->mask & IN_Q_OVERFLOW) || (ev->len && strcmp(ev->name, s->pidfile_base) == 0))
                hit = true;
            p += sizeof(struct inotify_event) + ev->len;
        }
    }
    return hit;
}

static int process_create(void **state, const vigil_config_node *config,
                          const vigil_collector_context *ctx)
{
    proc_state *s = vigil__calloc(1, sizeof(*s));
    if (!s)
        return vigil__error_oom();
    s->ctx = ctx;
    s->epfd = -1;
    s->ino = -1;
    long t = sysconf(_SC_CLK_TCK), pg = sysconf(_SC_PAGESIZE);
    s->ticks = t > 0 ? (double)t : 100.0;
    s->page = pg > 0 ? (double)pg : 4096.0;
    int watch = 1;
    int rc = read_config(s, config, ctx, &watch);
    if (rc != VIGIL_OK) {
        process_destroy(s);
        return rc;
    }
    if (watch) {
        int probe = vigil__proc_pidfd_open(getpid());
        if (probe >= 0) {
            close(probe);
            s->epfd = epoll_create1(EPOLL_CLOEXEC);
            if (s->epfd < 0) {
                rc = vigil__error_set(VIGIL_EIO, "epoll_create1: %s", strerror(errno));
                process_destroy(s);
                return rc;
            }
            if (s->mode == BY_PIDFILE)
                watch_pidfile(s);
        } else {
            vigil__log(ctx->logger, VIGIL_LOG_INFO, "collector",
                       "pidfd_open is unavailable: process exits are seen at the next collection",
                       "process=%s errno=%d", s->label, errno);
        }
    }
    *state = s;
    return VIGIL_OK;
}

/* Reads a small file into buf (NUL-terminated); returns bytes or -1 (errno). */
static ssize_t read_small(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t n = 0;
    bool failed = false;
    while (n + 1 < size) {
        ssize_t r = read(fd, buf + n, size - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            failed = true;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    int e = errno;
    close(fd);
    errno = e;
    buf[n] = '\0';
    return failed ? -1 : (ssize_t)n;
}

/* Reads /proc/PID/stat; false when the process is gone or unreadable. The
 * comm (between the first '(' and the last ')') goes to comm when not NULL. */
static bool read_stat(const proc_state *s, int pid, proc_info *info, char *comm, size_t comm_size)
{
    char path[PATH_MAX], buf[1024];
    snprintf(path, sizeof(path), "%s/%d/stat", s->ctx->proc_root, pid);
    if (read_small(path, buf, sizeof(buf)) <= 0)
        return false;
    char *open_paren = strchr(buf, '('), *close_paren = strrchr(buf, ')');
    if (!open_paren || !close_paren || close_paren < open_paren || close_paren[1] != ' ')
        return false;
    if (comm) {
        size_t n = (size_t)(close_paren - open_paren - 1);
        if (n >= comm_size)
            n = comm_size - 1;
        memcpy(comm, open_paren + 1, n);
        comm[n] = '\0';
    }
    const char *p = close_paren + 2;
    memset(info, 0, sizeof(*info));
    info->pid = pid;
    info->state = *p;
    if (*p)
        p++;
    /* Tokens after the state: field N of proc(5) is token N - 4 here; a few
     * (tpgid, priority, nice) may be negative and are not used. */
    uint64_t tok[21];
    for (int i = 0; i < 21; i++) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p)
            return false;
        tok[i] = v < 0 ? 0 : (uint64_t)v;
        p = end;
    }
    info->utime = tok[10];
    info->stime = tok[11];
    info->threads = tok[16];
    info->start = tok[18];
    info->rss_pages = tok[20];
    return true;
}

static bool running(const proc_info *i)
{
    return i->state != 'Z' && i->state != 'X' && i->state != 'x';
}

static int add_match(proc_state *s, const proc_info *info)
{
    if (s->ncur >= MATCH_MAX)
        return VIGIL_OK;
    if (vigil__array_grow((void **)&s->cur, &s->capcur, s->ncur + 1, sizeof(proc_info)) != VIGIL_OK)
        return vigil__error_oom();
    s->cur[s->ncur++] = *info;
    return VIGIL_OK;
}

static int scan_pidfile(proc_state *s)
{
    vigil__pidfile pf;
    char why[PATH_MAX + 160];
    int r = vigil__proc_pidfile_read(s->pidfile, &pf, why, sizeof(why));
    if (r == VIGIL__PIDFILE_UNREADABLE || r == VIGIL__PIDFILE_SYMLINK) {
        if (!s->warned)
            vigil__log(s->ctx->logger, VIGIL_LOG_WARN, "collector",
                       "pidfile unreadable: taken as not running", "process=%s why=\"%s\"",
                       s->label, why);
        s->warned = true;
        return VIGIL_OK;
    }
    s->warned = false;
    if (r == VIGIL__PIDFILE_GARBAGE)
        vigil__log(s->ctx->logger, VIGIL_LOG_DEBUG, "collector", "pidfile holds no pid",
                   "process=%s", s->label);
    if (r != VIGIL__PIDFILE_OK) {
        s->pf_seen = true;
        s->pf_pid = 0;
        return VIGIL_OK; /* missing or garbage: not running */
    }
    bool news = s->pf_seen && pf.pid != s->pf_pid;
    s->pf_seen = true;
    s->pf_pid = pf.pid;
    /* With a start time (the process action's "PID STARTTIME"), it tells a
     * reused pid from the program. */
    proc_info info;
    if (read_stat(s, (int)pf.pid, &info, NULL, 0) && running(&info) &&
        (!pf.has_start || info.start == (uint64_t)pf.start))
        return add_match(s, &info);
    if (news) {
        /* A new pid, already gone: it started and died between two looks. */
        if (s->had_main && pf.pid != s->main_pid)
            s->restarts++;
        s->had_main = true;
        s->main_pid = pf.pid;
        s->main_start = pf.has_start ? pf.start : 0;
        s->dead_start = true;
    }
    return VIGIL_OK;
}

static bool cmdline_matches(proc_state *s, int pid)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%d/cmdline", s->ctx->proc_root, pid);
    ssize_t n = read_small(path, s->cmdbuf, CMDLINE_MAX + 1);
    if (n <= 0)
        return false; /* kernel threads have no command line */
    while (n > 0 && s->cmdbuf[n - 1] == '\0')
        n--;
    for (ssize_t i = 0; i < n; i++)
        if (s->cmdbuf[i] == '\0')
            s->cmdbuf[i] = ' ';
    s->cmdbuf[n] = '\0';
    return regexec(&s->re, s->cmdbuf, 0, NULL, 0) == 0;
}

static int scan_proc(proc_state *s)
{
    DIR *d = opendir(s->ctx->proc_root);
    if (!d)
        return vigil__error_set(VIGIL_EIO, "cannot list %s: %s", s->ctx->proc_root,
                                strerror(errno));
    int rc = VIGIL_OK;
    struct dirent *de;
    while (rc == VIGIL_OK && (de = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || pid <= 0 || pid > INT_MAX || !isdigit((unsigned char)de->d_name[0]))
            continue;
        proc_info info;
        char comm[64];
        if (!read_stat(s, (int)pid, &info, comm, sizeof(comm)) || !running(&info))
            continue;
        bool match = s->mode == BY_COMM ? strcmp(comm, s->comm) == 0 : cmdline_matches(s, (int)pid);
        if (match)
            rc = add_match(s, &info);
    }
    closedir(d);
    return rc;
}

static int scan(proc_state *s)
{
    s->ncur = 0;
    s->dead_start = false;
    int rc = s->mode == BY_PIDFILE ? scan_pidfile(s) : scan_proc(s);
    if (rc != VIGIL_OK)
        return rc;
    /* The main process: the pidfile's, else the oldest match. */
    const proc_info *main = NULL;
    for (size_t i = 0; i < s->ncur; i++)
        if (!main || s->cur[i].start < main->start ||
            (s->cur[i].start == main->start && s->cur[i].pid < main->pid))
            main = &s->cur[i];
    if (main) {
        if (s->had_main && (main->pid != s->main_pid || main->start != s->main_start))
            s->restarts++;
        s->had_main = true;
        s->main_pid = main->pid;
        s->main_start = main->start;
    }
    return VIGIL_OK;
}

static void unwatch(proc_state *s, size_t i)
{
    close(s->w[i].fd); /* also leaves the epoll set */
    s->w[i] = s->w[--s->nw];
}

/* Watches every matched pid and forgets pids that no longer match. */
static int sync_watch(proc_state *s)
{
    if (s->epfd < 0)
        return VIGIL_OK;
    for (size_t i = 0; i < s->nw;) {
        bool keep = false;
        for (size_t j = 0; j < s->ncur && !keep; j++)
            keep = s->cur[j].pid == s->w[i].pid && s->cur[j].start == s->w[i].start;
        if (keep)
            i++;
        else
            unwatch(s, i);
    }
    for (size_t j = 0; j < s->ncur; j++) {
        bool have = false;
        for (size_t i = 0; i < s->nw && !have; i++)
            have = s->w[i].pid == s->cur[j].pid;
        if (have || s->nw >= WATCH_MAX)
            continue;
        int fd = vigil__proc_pidfd_open(s->cur[j].pid);
        if (fd < 0)
            continue; /* already gone: the next scan sees it */
        /* The pid may have been reused between the scan and pidfd_open. */
        proc_info again;
        if (!read_stat(s, s->cur[j].pid, &again, NULL, 0) || again.start != s->cur[j].start) {
            close(fd);
            continue;
        }
        if (vigil__array_grow((void **)&s->w, &s->capw, s->nw + 1, sizeof(watch_ent)) != VIGIL_OK) {
            close(fd);
            return vigil__error_oom();
        }
        struct epoll_event ev;
        memset(&ev, 0, sizeof(ev));
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            int e = errno;
            close(fd);
            return vigil__error_set(VIGIL_EIO, "epoll_ctl: %s", strerror(e));
        }
        s->w[s->nw].pid = s->cur[j].pid;
        s->w[s->nw].fd = fd;
        s->w[s->nw].start = s->cur[j].start;
        s->nw++;
    }
    return VIGIL_OK;
}

static int emit_state(proc_state *s, vigil_batch *out, int64_t ts)
{
    int rc;
    if ((rc = vigil__coll_emit1(out, "process_up", s->ncur > 0 ? 1 : 0, ts, "process", s->label)) ||
        (rc = vigil__coll_emit1(out, "process_count", (double)s->ncur, ts, "process", s->label)) ||
        (rc = vigil__coll_emit1(out, "process_restarts_total", (double)s->restarts, ts, "process",
                                s->label)))
        return rc;
    return VIGIL_OK;
}

/* Emits the state; after a pidfile that named a new pid already gone, first
 * the short life of that process at ts (process_up 1), then the state at
 * ts + 1 ms. */
static int emit_observed(proc_state *s, vigil_batch *out, int64_t ts)
{
    if (s->dead_start) {
        s->dead_start = false;
        int rc;
        if ((rc = vigil__coll_emit1(out, "process_up", 1, ts, "process", s->label)) ||
            (rc = vigil__coll_emit1(out, "process_count", 1, ts, "process", s->label)))
            return rc;
        ts++;
    }
    return emit_state(s, out, ts);
}

static bool count_fds(const proc_state *s, int pid, double *out)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%d/fd", s->ctx->proc_root, pid);
    DIR *d = opendir(path);
    if (!d)
        return false;
    struct dirent *de;
    double n = 0;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    *out += n;
    return true;
}

static int emit_details(proc_state *s, vigil_batch *out, int64_t ts, int64_t mono)
{
    double rss = 0, threads = 0, fds = 0, oldest = -1;
    bool fds_ok = true;
    for (size_t i = 0; i < s->ncur; i++) {
        const proc_info *p = &s->cur[i];
        rss += (double)p->rss_pages * s->page;
        threads += (double)p->threads;
        if (fds_ok)
            fds_ok = count_fds(s, p->pid, &fds);
        if (oldest < 0 || (double)p->start < oldest)
            oldest = (double)p->start;
    }
    int rc;
    const char *L = s->label;
    if ((rc = vigil__coll_emit1(out, "process_rss_bytes", rss, ts, "process", L)) ||
        (rc = vigil__coll_emit1(out, "process_threads", threads, ts, "process", L)))
        return rc;
    if (fds_ok && (rc = vigil__coll_emit1(out, "process_open_fds", fds, ts, "process", L)))
        return rc;
    char path[PATH_MAX], buf[128];
    double up;
    snprintf(path, sizeof(path), "%s/uptime", s->ctx->proc_root);
    if (read_small(path, buf, sizeof(buf)) > 0 && sscanf(buf, "%lf", &up) == 1) {
        double age = up - oldest / s->ticks;
        if ((rc = vigil__coll_emit1(out, "process_uptime_seconds", age > 0 ? age : 0, ts, "process",
                                    L)))
            return rc;
    }
    double dt = s->have_prev ? vigil__coll_elapsed_s(s->prev_mono, mono) : 0;
    if (dt > 0) {
        double ticks = 0;
        bool any = false;
        for (size_t i = 0; i < s->ncur; i++)
            for (size_t j = 0; j < s->nprev; j++)
                if (s->prev[j].pid == s->cur[i].pid && s->prev[j].start == s->cur[i].start) {
                    uint64_t a = s->prev[j].utime + s->prev[j].stime;
                    uint64_t b = s->cur[i].utime + s->cur[i].stime;
                    ticks += b > a ? (double)(b - a) : 0;
                    any = true;
                    break;
                }
        if (any && (rc = vigil__coll_emit1(out, "process_cpu_ratio", ticks / s->ticks / dt, ts,
                                           "process", L)))
            return rc;
    }
    return VIGIL_OK;
}

static int remember(proc_state *s, int64_t mono)
{
    if (vigil__array_grow((void **)&s->prev, &s->capprev, s->ncur ? s->ncur : 1,
                          sizeof(proc_info)) != VIGIL_OK)
        return vigil__error_oom();
    if (s->ncur)
        memcpy(s->prev, s->cur, s->ncur * sizeof(proc_info));
    s->nprev = s->ncur;
    s->prev_mono = mono;
    s->have_prev = true;
    return VIGIL_OK;
}

static int process_collect(void *p, vigil_batch *out, int64_t now_ms)
{
    proc_state *s = p;
    int64_t mono = vigil__monotonic_ms();
    if (s->mode == BY_PIDFILE) {
        watch_pidfile(s); /* the directory may exist by now */
        if (s->ino >= 0)
            drain_inotify(s); /* this collection reads the pidfile anyway */
    }
    int rc = scan(s);
    if (rc == VIGIL_OK)
        rc = sync_watch(s);
    if (rc == VIGIL_OK)
        rc = emit_observed(s, out, now_ms);
    if (rc == VIGIL_OK && s->ncur > 0)
        rc = emit_details(s, out, now_ms, mono);
    if (rc == VIGIL_OK)
        rc = remember(s, mono);
    return rc;
}

static int process_poll_fd(void *p)
{
    return ((proc_state *)p)->epfd;
}

static int process_on_event(void *p, vigil_batch *out, int64_t now_ms)
{
    proc_state *s = p;
    if (s->epfd < 0)
        return VIGIL_OK;
    struct epoll_event evs[64];
    bool any = false, changed = false;
    for (;;) {
        int n = epoll_wait(s->epfd, evs, (int)VIGIL__ARRAY_LEN(evs), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return vigil__error_set(VIGIL_EIO, "epoll_wait: %s", strerror(errno));
        for (int k = 0; k < n; k++) {
            if (s->ino >= 0 && evs[k].data.fd == s->ino) {
                changed |= drain_inotify(s);
                continue;
            }
            for (size_t i = 0; i < s->nw; i++)
                if (s->w[i].fd == evs[k].data.fd) {
                    unwatch(s, i);
                    any = true;
                    break;
                }
        }
        if (n < (int)VIGIL__ARRAY_LEN(evs))
            break;
    }
    if (!any && changed) {
        /* The pidfile was rewritten. A new process is news here, running
         * or already gone: a pidfile caught half-written, or removed, is
         * left to the exit events and the next collection. */
        int rc = scan(s);
        bool fresh = s->dead_start;
        for (size_t j = 0; rc == VIGIL_OK && j < s->ncur && !fresh; j++) {
            fresh = true;
            for (size_t i = 0; i < s->nw && fresh; i++)
                fresh = !(s->w[i].pid == s->cur[j].pid && s->w[i].start == s->cur[j].start);
        }
        if (rc != VIGIL_OK || !fresh)
            return rc;
        rc = sync_watch(s);
        return rc == VIGIL_OK ? emit_observed(s, out, now_ms) : rc;
    }
    if (!any)
        return VIGIL_OK;
    int rc = scan(s);
    if (rc == VIGIL_OK)
        rc = sync_watch(s);
    if (rc == VIGIL_OK)
        rc = emit_observed(s, out, now_ms);
    return rc;
}

const vigil_collector_type vigil__collector_process = {
    .version = VIGIL_COLLECTOR_TYPE_VERSION,
    .name = "process",
    .flags = VIGIL_COLLECTOR_RATES | VIGIL_COLLECTOR_EVENTS,
    .keys = process_keys,
    .create = process_create,
    .collect = process_collect,
    .poll_fd = process_poll_fd,
    .on_event = process_on_event,
    .destroy = process_destroy,
};
