/* Loading the audit key: from the environment, else from a private key file
 * created with random bytes when missing. Key bytes are never logged and
 * every temporary copy is wiped. */
#include "crypto/crypto.h"
#include "internal/common.h"
#include "vigil/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_FILE_PATH_MAX 4096

/* Replaces the content of `out` with key[0..n), wiping what it held. The
 * buffer is grown before copying so that no copy is left in freed memory. */
static int set_key(vigil_buf *out, const void *key, size_t n)
{
    if (out->ptr)
        explicit_bzero(out->ptr, out->asize);
    out->size = 0;
    if (out->asize < n + 1) {
        char *p = vigil__malloc(n + 1);
        if (!p)
            return vigil__error_oom();
        vigil__free(out->ptr);
        out->ptr = p;
        out->asize = n + 1;
    }
    memcpy(out->ptr, key, n);
    out->ptr[n] = '\0';
    out->size = n;
    return VIGIL_OK;
}

static int read_all(int fd, unsigned char *buf, size_t cap, size_t *len)
{
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        n += (size_t)r;
        if (n == cap)
            break;
    }
    *len = n;
    return 0;
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads an existing key file after checking its type, owner and mode. */
static int read_key_file(vigil_buf *out, int fd, const char *path)
{
    struct stat st;
    unsigned char buf[VIGIL_AUDIT_KEY_MAX + 1];
    size_t n = 0;
    int rc;

    if (fstat(fd, &st) != 0)
        return vigil__error_set(VIGIL_EIO, "audit: key file %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return vigil__error_set(VIGIL_EIO, "audit: key file %s is not a regular file", path);
    if (st.st_uid != geteuid())
        return vigil__error_set(VIGIL_EPERM, "audit: key file %s is owned by uid %u, not by %u",
                                path, (unsigned)st.st_uid, (unsigned)geteuid());
    if (st.st_mode & 077)
        return vigil__error_set(VIGIL_EPERM,
                                "audit: key file %s is accessible by group or others (mode %04o);"
                                " it must be 0600",
                                path, (unsigned)(st.st_mode & 07777));
    if (read_all(fd, buf, sizeof(buf), &n) != 0) {
        rc = vigil__error_set(VIGIL_EIO, "audit: reading key file %s: %s", path, strerror(errno));
    } else if (n < VIGIL_AUDIT_KEY_MIN) {
        rc = vigil__error_set(VIGIL_ELIMIT, "audit: key file %s holds %zu bytes, need at least %d",
                              path, n, VIGIL_AUDIT_KEY_MIN);
    } else if (n > VIGIL_AUDIT_KEY_MAX) {
        rc = vigil__error_set(VIGIL_ELIMIT, "audit: key file %s holds more than %d bytes", path,
                              VIGIL_AUDIT_KEY_MAX);
    } else {
        rc = set_key(out, buf, n);
    }
    explicit_bzero(buf, sizeof(buf));
    return rc;
}

static int fsync_dir_of(const char *path)
{
    char dir[KEY_FILE_PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash) {
        strcpy(dir, ".");
    } else if (slash == path) {
        strcpy(dir, "/");
    } else {
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

/* Creates the key file: random bytes into a private temporary file beside
 * it, then link(2) into place, which never replaces an existing file. On
 * EEXIST (created meanwhile by someone else) returns VIGIL_EEXISTS. */
static int create_key_file(vigil_buf *out, const char *path)
{
    unsigned char key[VIGIL_AUDIT_KEY_FILE_SIZE];
    char tmp[KEY_FILE_PATH_MAX + 16];
    int rc, fd;

    snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
    fd = mkostemp(tmp, O_CLOEXEC); /* O_EXCL, mode 0600 */
    if (fd < 0)
        return vigil__error_set(VIGIL_EIO, "audit: cannot create key file %s: %s", path,
                                strerror(errno));
    rc = vigil__crypto_random(key, sizeof(key));
    if (rc == VIGIL_OK &&
        (fchmod(fd, 0600) != 0 || write_all(fd, key, sizeof(key)) != 0 || fsync(fd) != 0))
        rc = vigil__error_set(VIGIL_EIO, "audit: cannot write key file %s: %s", path,
                              strerror(errno));
    close(fd);
    if (rc == VIGIL_OK && link(tmp, path) != 0)
        rc = errno == EEXIST ? VIGIL_EEXISTS
                             : vigil__error_set(VIGIL_EIO, "audit: cannot create key file %s: %s",
                                                path, strerror(errno));
    unlink(tmp);
    if (rc == VIGIL_OK) {
        (void)fsync_dir_of(path);
        rc = set_key(out, key, sizeof(key));
    }
    explicit_bzero(key, sizeof(key));
    return rc;
}

static int load_file(vigil_buf *out, const char *path)
{
    size_t plen = strlen(path);
    if (plen == 0)
        return vigil__error_set(VIGIL_EINVAL, "audit: empty key file path");
    if (plen >= KEY_FILE_PATH_MAX)
        return vigil__error_set(VIGIL_ELIMIT, "audit: key file path is %zu bytes, at most %d", plen,
                                KEY_FILE_PATH_MAX - 1);
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
        if (fd >= 0) {
            int rc = read_key_file(out, fd, path);
            close(fd);
            return rc;
        }
        if (errno == ELOOP)
            return vigil__error_set(VIGIL_EIO, "audit: key file %s is a symbolic link", path);
        if (errno != ENOENT)
            return vigil__error_set(VIGIL_EIO, "audit: cannot open key file %s: %s", path,
                                    strerror(errno));
        int rc = create_key_file(out, path);
        if (rc != VIGIL_EEXISTS)
            return rc;
        /* created meanwhile by another process: read theirs */
    }
    return vigil__error_set(VIGIL_EIO, "audit: key file %s keeps appearing and vanishing", path);
}

int vigil_audit_key_load(vigil_buf *key_out, const char *env_name, const char *key_file)
{
    if (!key_out)
        return vigil__error_set(VIGIL_EINVAL, "audit: NULL key_out");
    if (!env_name && !key_file)
        return vigil__error_set(VIGIL_EINVAL, "audit: no key source (environment or key file)");
    if (env_name) {
        const char *v = getenv(env_name);
        if (v) {
            size_t n = strlen(v);
            if (n < VIGIL_AUDIT_KEY_MIN || n > VIGIL_AUDIT_KEY_MAX)
                return vigil__error_set(VIGIL_ELIMIT,
                                        "audit: the key in environment variable %s is %zu bytes,"
                                        " need %d to %d",
                                        env_name, n, VIGIL_AUDIT_KEY_MIN, VIGIL_AUDIT_KEY_MAX);
            return set_key(key_out, v, n);
        }
        if (!key_file)
            return vigil__error_set(VIGIL_EENV,
                                    "audit: environment variable %s is not set and no key file "
                                    "is configured",
                                    env_name);
    }
    return load_file(key_out, key_file);
}
