/* Pidfiles, the directories that hold them, and the identity of the process
 * a pidfile names: shared by the process and signal actions and the process
 * collector (see proc.h). */
#include "proc/proc.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int vigil__proc_pidfile_parse(const char *text, vigil__pidfile *out)
{
    const char *p = text;
    memset(out, 0, sizeof(*out));
    while (*p == ' ' || *p == '\t')
        p++;
    if (!isdigit((unsigned char)*p))
        return -1;
    char *end;
    errno = 0;
    unsigned long long pid = strtoull(p, &end, 10);
    if (errno || pid <= 1 || pid > INT_MAX)
        return -1;
    p = end;
    while (*p == ' ' || *p == '\t')
        p++;
    if (isdigit((unsigned char)*p)) {
        errno = 0;
        out->start = strtoull(p, &end, 10);
        if (errno)
            return -1;
        out->has_start = 1;
        p = end;
        while (*p == ' ' || *p == '\t')
            p++;
    }
    if (*p == '\r')
        p++;
    if (*p == '\n')
        p++;
    if (*p)
        return -1;
    out->pid = (pid_t)pid;
    return 0;
}

int vigil__proc_pidfile_read(const char *path, vigil__pidfile *out, char *why, size_t whylen)
{
    memset(out, 0, sizeof(*out));
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return VIGIL__PIDFILE_MISSING;
        if (errno == ELOOP) {
            snprintf(why, whylen,
                     "pidfile %s is a symbolic link, refused (pidfiles are opened with "
                     "O_NOFOLLOW)",
                     path);
            return VIGIL__PIDFILE_SYMLINK;
        }
        snprintf(why, whylen, "cannot read pidfile %s: %s", path, strerror(errno));
        return VIGIL__PIDFILE_UNREADABLE;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        snprintf(why, whylen, "pidfile %s is not a regular file", path);
        return VIGIL__PIDFILE_UNREADABLE;
    }
    char buf[128];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf) - 1)) < 0 && errno == EINTR)
        ;
    int err = errno;
    close(fd);
    if (n < 0) {
        snprintf(why, whylen, "cannot read pidfile %s: %s", path, strerror(err));
        return VIGIL__PIDFILE_UNREADABLE;
    }
    buf[n] = '\0';
    if (memchr(buf, '\0', (size_t)n) || vigil__proc_pidfile_parse(buf, out) != 0) {
        memset(out, 0, sizeof(*out));
        snprintf(why, whylen, "pidfile %s does not hold a pid", path);
        return VIGIL__PIDFILE_GARBAGE;
    }
    return VIGIL__PIDFILE_OK;
}

int vigil__proc_pidfile_write(const char *path, pid_t pid, unsigned long long start)
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

void vigil__proc_pidfile_remove(const char *path, pid_t pid)
{
    vigil__pidfile pf;
    char why[8];
    if (vigil__proc_pidfile_read(path, &pf, why, sizeof(why)) == VIGIL__PIDFILE_OK && pf.pid == pid)
        unlink(path);
}

int vigil__proc_dir_check(const char *path, char *why, size_t whylen)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(dir, sizeof(dir), ".");
    } else {
        size_t n = slash == path ? 1 : (size_t)(slash - path);
        if (n >= sizeof(dir)) {
            snprintf(why, whylen, "path too long");
            return VIGIL_ELIMIT;
        }
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    struct stat st;
    if (stat(dir, &st) != 0)
        return VIGIL_OK; /* created later, or the open fails with its own message */
    if (st.st_mode & S_IWOTH) {
        snprintf(why, whylen,
                 "directory %s is writable by other users (mode %04o): any user could plant or "
                 "replace the file there",
                 dir, (unsigned)(st.st_mode & 07777));
        return VIGIL_EPERM;
    }
    return VIGIL_OK;
}

/* The effective uid of `pid` (second number of the Uid: line), or -1. */
static long long proc_euid(pid_t pid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf) - 1)) < 0 && errno == EINTR)
        ;
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    const char *p = strstr(buf, "\nUid:");
    unsigned long long real, eff;
    if (!p || sscanf(p + 5, "%llu %llu", &real, &eff) != 2)
        return -1;
    return (long long)eff;
}

static int check_user(pid_t pid, uid_t uid, char *why, size_t whylen)
{
    long long euid = proc_euid(pid);
    if (euid < 0) {
        snprintf(why, whylen, "pid %d ended", (int)pid);
        return VIGIL__ID_GONE;
    }
    if ((uid_t)euid != uid) {
        snprintf(why, whylen, "pid %d runs as uid %lld, not the expected uid %u", (int)pid, euid,
                 (unsigned)uid);
        return VIGIL__ID_USER;
    }
    return VIGIL__ID_OK;
}

int vigil__proc_identity(pid_t pid, const char *program, uid_t uid, char *why, size_t whylen)
{
    if (!program)
        return check_user(pid, uid, why, whylen);
    char exe[64];
    snprintf(exe, sizeof(exe), "/proc/%d/exe", (int)pid);
    struct stat want, got;
    if (stat(program, &want) != 0) {
        snprintf(why, whylen, "cannot stat the configured program %s: %s", program,
                 strerror(errno));
        return VIGIL__ID_PROGRAM;
    }
    if (stat(exe, &got) != 0) {
        int e = errno;
        if (e == ENOENT || e == ESRCH) {
            snprintf(why, whylen, "pid %d ended", (int)pid);
            return VIGIL__ID_GONE;
        }
        snprintf(why, whylen, "cannot read %s: %s, so it is not provably %s", exe, strerror(e),
                 program);
        return VIGIL__ID_PROGRAM;
    }
    if (got.st_dev != want.st_dev || got.st_ino != want.st_ino) {
        char target[PATH_MAX];
        ssize_t n = readlink(exe, target, sizeof(target) - 1);
        if (n < 0)
            snprintf(target, sizeof(target), "another file");
        else
            target[n] = '\0';
        snprintf(why, whylen, "%s is %s, not the configured program %s", exe, target, program);
        return VIGIL__ID_PROGRAM;
    }
    return check_user(pid, uid, why, whylen);
}
