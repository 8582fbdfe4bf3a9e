/* The `restore_file` action type: puts a file back to its desired bytes,
 * taken from a content-addressed blob directory (GitOps self-healing).
 *
 *   blobs_dir: ./var/gitops/blobs   # required: <blobs_dir>/<sha256> holds the bytes
 *   paths: ["./var/managed/"]       # required, non-empty: the only places it may write
 *   params: {path: "^.+$", sha256: "^[0-9a-f]{64}$", mode: "^[0-7]{3,4}$", owner: ".+"}
 *
 * Request parameters: path (absolute, or relative to the daemon's working
 * directory), sha256 (64 lowercase hex digits), mode (octal string, at most
 * 0777; optional: the replaced file's mode, or 0644 for a new file) and owner
 * (user name or uid; optional). The action's `params` must list path and
 * sha256 (and mode and owner to let requests set them).
 *
 * The path is normalised (no `..` component is accepted) and must lie under
 * a prefix of `paths`: lexically when the request is validated, and again
 * when it runs, after resolving the symbolic links of its parent directory
 * and of the prefixes, so a symlinked directory cannot lead outside. A
 * prefix ending in '/' is a directory the path must lie strictly under;
 * otherwise the path may also equal it.
 *
 * Execution: the blob is read (at most 16 MiB) and its SHA-256 verified; the
 * bytes go to a temporary file in the target's directory, which gets its mode
 * and owner, is fsynced and renamed over the path (a symbolic link at the
 * path is replaced, never followed), then the directory is fsynced. Without
 * `owner`, the new file keeps the owner and group of the regular file it
 * replaces when the process may set them. Result reasons of a failure:
 * path_outside_prefixes, parent_missing, path_is_directory, blob_missing,
 * blob_too_large, blob_mismatch, owner_unknown, chown_failed, write_failed. */
#include "action/action_int.h"
#include "crypto/crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RF_BLOB_MAX    (16u << 20)
#define RF_PATHS_MAX   256
#define RF_OWNER_MAX   64
#define RF_DEFAULT_MOD 0644

typedef struct rf_prefix {
    char *path; /* normalised, absolute, no trailing '/' (but "/") */
    int dir;    /* configured with a trailing '/': strictly under it */
} rf_prefix;

typedef struct rf_state {
    char *blobs_dir;
    char *cwd; /* base of relative request paths */
    rf_prefix *prefixes;
    size_t nprefixes;
} rf_state;

static const char *const k_keys[] = {"blobs_dir", "paths", NULL};

static void rf_destroy(void *p)
{
    rf_state *s = p;
    if (!s)
        return;
    for (size_t i = 0; i < s->nprefixes; i++)
        vigil__free(s->prefixes[i].path);
    vigil__free(s->prefixes);
    vigil__free(s->blobs_dir);
    vigil__free(s->cwd);
    vigil__free(s);
}

/* Normalises an absolute path: repeated '/' and "." components go; a ".."
 * component is VIGIL_EVALUE. *out is the caller's. */
static int normalise(char **out, const char *abs)
{
    *out = NULL;
    if (abs[0] != '/')
        return vigil__error_set(VIGIL_EVALUE, "not an absolute path");
    vigil_buf b = VIGIL_BUF_INIT;
    int rc = VIGIL_OK;
    const char *p = abs;
    while (*p && !rc) {
        while (*p == '/')
            p++;
        const char *e = p;
        while (*e && *e != '/')
            e++;
        size_t n = (size_t)(e - p);
        if (n == 2 && p[0] == '.' && p[1] == '.')
            rc = vigil__error_set(VIGIL_EVALUE, "a \"..\" component is not allowed");
        else if (n && !(n == 1 && p[0] == '.')) {
            rc = vigil__buf_putc(&b, '/');
            if (!rc)
                rc = vigil_action_buf_append(&b, p, n);
        }
        p = e;
    }
    if (!rc && b.size == 0)
        rc = vigil__buf_putc(&b, '/');
    if (rc) {
        vigil_buf_dispose(&b);
        return rc;
    }
    *out = vigil__buf_detach(&b);
    return VIGIL_OK;
}

/* Makes `path` absolute against `base` and normalises it. */
static int absolute(char **out, const char *path, const char *base)
{
    *out = NULL;
    if (path[0] == '/')
        return normalise(out, path);
    vigil_buf b = VIGIL_BUF_INIT;
    int rc = vigil__buf_puts(&b, base);
    if (!rc)
        rc = vigil__buf_putc(&b, '/');
    if (!rc)
        rc = vigil__buf_puts(&b, path);
    if (!rc)
        rc = normalise(out, b.ptr);
    vigil_buf_dispose(&b);
    return rc;
}

static int under(const char *path, const char *prefix, int dir)
{
    size_t n = strlen(prefix);
    if (strcmp(prefix, "/") == 0)
        return path[0] == '/' && (!dir || path[1] != '\0');
    if (strncmp(path, prefix, n) != 0)
        return 0;
    if (path[n] == '\0')
        return !dir;
    return path[n] == '/';
}

static int rf_create(void **state, const vigil_config_node *config, const vigil_action_context *ctx)
{
    rf_state *s = vigil__calloc(1, sizeof(*s));
    if (!s)
        return vigil__error_oom();
    char **paths = NULL;
    size_t n = 0;
    int rc = vigil_config_require(config, "blobs_dir");
    if (!rc)
        rc = vigil__action_get_path(&s->blobs_dir, config, "blobs_dir", ctx->base_dir);
    if (!rc)
        rc = vigil_config_require(config, "paths");
    if (!rc)
        rc = vigil__action_get_strv(&paths, &n, config, "paths", RF_PATHS_MAX);
    const vigil_config_node *pl = vigil_config_node_get(config, "paths");
    if (!rc && n == 0)
        rc = vigil__action_cfg_error(pl, VIGIL_EVALUE,
                                     "expected at least one path prefix the action may write");
    if (!rc && !(s->prefixes = vigil__calloc(n, sizeof(*s->prefixes))))
        rc = vigil__error_oom();
    for (size_t i = 0; i < n && !rc; i++) {
        char *abs = NULL;
        rc = vigil__action_path(&abs, vigil_config_node_at(pl, i), paths[i], ctx->base_dir);
        if (!rc) {
            size_t len = strlen(paths[i]);
            s->prefixes[i].dir = len > 0 && paths[i][len - 1] == '/';
            rc = normalise(&s->prefixes[i].path, abs);
            if (rc && rc != VIGIL_ENOMEM) {
                char why[256];
                snprintf(why, sizeof(why), "%s", vigil_error_last()->message);
                rc = vigil__action_cfg_error(vigil_config_node_at(pl, i), VIGIL_EVALUE,
                                             "path prefix \"%.200s\": %s", paths[i], why);
            }
        }
        vigil__free(abs);
        if (!rc)
            s->nprefixes++;
    }
    vigil__action_strv_free(paths);
    /* the params the requests need must be allowed by the action's `params` */
    const vigil_config_node *params = vigil_config_node_get(config, "params");
    static const char *const need[] = {"path", "sha256"};
    for (size_t i = 0; i < VIGIL__ARRAY_LEN(need) && !rc; i++)
        if (!vigil_config_node_get(params, need[i]))
            rc = vigil__action_cfg_error(params ? params : config, VIGIL_EMISSING,
                                         "restore_file needs `params` to list \"%s\" (e.g. "
                                         "params: {path: \"^.+$\", sha256: \"^[0-9a-f]{64}$\"})",
                                         need[i]);
    if (!rc) {
        if (ctx->base_dir) {
            s->cwd = vigil__strdup(ctx->base_dir);
        } else {
            char buf[PATH_MAX];
            s->cwd = getcwd(buf, sizeof(buf)) ? vigil__strdup(buf) : vigil__strdup("/");
        }
        if (!s->cwd)
            rc = vigil__error_oom();
    }
    if (rc) {
        rf_destroy(s);
        return rc;
    }
    *state = s;
    return VIGIL_OK;
}

/* ---- request parameters ------------------------------------------------------------- */

typedef struct rf_req {
    char *path; /* absolute, normalised */
    const char *sha256;
    int has_mode;
    mode_t mode;
    const char *owner; /* NULL: keep */
} rf_req;

static int is_hex64(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
            return 0;
    return n == 64;
}

static int parse_mode(mode_t *out, const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 4)
        return 0;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '7')
            return 0;
        v = v * 8 + (unsigned)(s[i] - '0');
    }
    if (v > 0777)
        return 0;
    *out = (mode_t)v;
    return 1;
}

static int owner_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 32)
        return 0;
    int digits = 1;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            digits = 0;
    if (digits)
        return n <= 10;
    if (!((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '.' || (c == '$' && i == n - 1)))
            return 0;
    }
    return 1;
}

static const rf_prefix *lexical_prefix(const rf_state *s, const char *path)
{
    for (size_t i = 0; i < s->nprefixes; i++)
        if (under(path, s->prefixes[i].path, s->prefixes[i].dir))
            return &s->prefixes[i];
    return NULL;
}

/* Reads and checks the parameters: VIGIL_EPERM with a message when bad. */
static int rf_parse(const rf_state *s, const vigil_action_request *req, rf_req *out)
{
    memset(out, 0, sizeof(*out));
    const char *path = vigil_action_request_param(req, "path");
    const char *sha = vigil_action_request_param(req, "sha256");
    const char *mode = vigil_action_request_param(req, "mode");
    const char *owner = vigil_action_request_param(req, "owner");
    if (!path || !*path)
        return vigil__error_set(VIGIL_EPERM, "%s: param path is required", req->action);
    if (!sha)
        return vigil__error_set(VIGIL_EPERM, "%s: param sha256 is required", req->action);
    if (!is_hex64(sha))
        return vigil__error_set(VIGIL_EPERM,
                                "%s: param sha256 must be 64 lowercase hex digits, got \"%.80s\"",
                                req->action, sha);
    if (mode && *mode && !parse_mode(&out->mode, mode))
        return vigil__error_set(VIGIL_EPERM,
                                "%s: param mode must be an octal mode from 0 to 0777 such as "
                                "\"0644\", got \"%.40s\"",
                                req->action, mode);
    out->has_mode = mode && *mode;
    if (owner && *owner && !owner_valid(owner))
        return vigil__error_set(VIGIL_EPERM,
                                "%s: param owner must be a user name or a uid, got \"%.40s\"",
                                req->action, owner);
    out->owner = owner && *owner ? owner : NULL;
    out->sha256 = sha;
    int rc = absolute(&out->path, path, s->cwd);
    if (rc == VIGIL_ENOMEM)
        return rc;
    if (rc)
        return vigil__error_set(VIGIL_EPERM, "%s: param path \"%.200s\": %s", req->action, path,
                                "a \"..\" component is not allowed");
    if (strcmp(out->path, "/") == 0 || !lexical_prefix(s, out->path)) {
        rc = vigil__error_set(VIGIL_EPERM,
                              "%s: param path \"%.200s\" is not under a prefix of the action's "
                              "paths",
                              req->action, out->path);
        vigil__free(out->path);
        out->path = NULL;
        return rc;
    }
    return VIGIL_OK;
}

static int rf_validate(void *p, const vigil_action_request *req)
{
    rf_req r;
    int rc = rf_parse(p, req, &r);
    vigil__free(r.path);
    return rc;
}

static int rf_describe(void *p, const vigil_action_request *req, vigil_buf *out)
{
    const rf_state *s = p;
    rf_req r;
    int rc = rf_parse(s, req, &r);
    if (rc == VIGIL_ENOMEM)
        return rc;
    if (rc)
        return vigil__buf_puts(out, "would refuse the request");
    rc = vigil__buf_puts(out, "would restore ");
    if (!rc)
        rc = vigil__action_quote(out, r.path, 512);
    if (!rc)
        rc = vigil__buf_printf(out, " from %s/%s", s->blobs_dir, r.sha256);
    if (!rc && r.has_mode)
        rc = vigil__buf_printf(out, " mode %04o", (unsigned)r.mode);
    if (!rc && r.owner)
        rc = vigil__buf_printf(out, " owner %s", r.owner);
    vigil__free(r.path);
    return rc;
}

/* ---- execution ----------------------------------------------------------------------- */

/* A FAILED result with `reason` and a formatted output. Returns VIGIL_OK. */
static int fail(vigil_action_result *res, const char *reason, const char *fmt, ...)
    VIGIL__PRINTF(3, 4);

static int fail(vigil_action_result *res, const char *reason, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    res->status = VIGIL_ACTION_FAILED;
    int rc = vigil_action_result_set_reason(res, reason);
    if (!rc)
        rc = vigil_action_result_set_output(res, msg, strlen(msg));
    return rc;
}

/* Reads the blob named `sha` into *data (the caller's). Returns VIGIL_OK
 * when *data is set, else fills `res` and returns 1 (a negative code when
 * the library failed). */
static int read_blob(const rf_state *s, const char *sha, unsigned char **data, size_t *len,
                     vigil_action_result *res)
{
    *data = NULL;
    *len = 0;
    vigil_buf name = VIGIL_BUF_INIT;
    int rc = vigil__buf_printf(&name, "%s/%s", s->blobs_dir, sha);
    if (rc)
        return rc;
    int fd = open(name.ptr, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int e = fd < 0 ? errno : EINVAL;
        if (fd >= 0)
            close(fd);
        rc = fail(res, "blob_missing", "blob %s: %s", name.ptr,
                  e == EINVAL ? "not a regular file" : strerror(e));
        vigil_buf_dispose(&name);
        return rc ? rc : 1;
    }
    if ((uint64_t)st.st_size > RF_BLOB_MAX) {
        close(fd);
        rc = fail(res, "blob_too_large", "blob %s: %lld bytes, more than the limit of %u bytes",
                  name.ptr, (long long)st.st_size, RF_BLOB_MAX);
        vigil_buf_dispose(&name);
        return rc ? rc : 1;
    }
    size_t cap = (size_t)st.st_size + 1, n = 0;
    unsigned char *buf = vigil__malloc(cap);
    if (!buf) {
        close(fd);
        vigil_buf_dispose(&name);
        return vigil__error_oom();
    }
    int err = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err = errno;
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n == cap)
            break; /* grew since fstat: refused below */
    }
    close(fd);
    if (err || n == cap) {
        vigil__free(buf);
        rc = err ? fail(res, "blob_missing", "blob %s: %s", name.ptr, strerror(err))
                 : fail(res, "blob_too_large", "blob %s: it grew while being read", name.ptr);
        vigil_buf_dispose(&name);
        return rc ? rc : 1;
    }
    unsigned char digest[VIGIL__CRYPTO_SHA256_LEN];
    char hex[2 * VIGIL__CRYPTO_SHA256_LEN + 1];
    rc = vigil__crypto_sha256(digest, buf, n);
    if (rc) {
        vigil__free(buf);
        vigil_buf_dispose(&name);
        return rc;
    }
    for (size_t i = 0; i < sizeof(digest); i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    if (strcmp(hex, sha) != 0) {
        vigil__free(buf);
        rc = fail(res, "blob_mismatch", "blob %s: its bytes have sha256 %s", name.ptr, hex);
        vigil_buf_dispose(&name);
        return rc ? rc : 1;
    }
    vigil_buf_dispose(&name);
    *data = buf;
    *len = n;
    return VIGIL_OK;
}

/* Splits the normalised path into its parent directory and last component. */
static int split(const char *path, char **parent, const char **base)
{
    const char *slash = strrchr(path, '/');
    *base = slash + 1;
    *parent = slash == path ? vigil__strdup("/") : vigil__strndup(path, (size_t)(slash - path));
    return *parent ? VIGIL_OK : vigil__error_oom();
}

/* The resolved path is under a prefix (itself resolved when it exists). */
static int resolved_allowed(const rf_state *s, const char *rpath)
{
    for (size_t i = 0; i < s->nprefixes; i++) {
        char buf[PATH_MAX];
        const char *rp = realpath(s->prefixes[i].path, buf) ? buf : s->prefixes[i].path;
        if (under(rpath, rp, s->prefixes[i].dir))
            return 1;
    }
    return 0;
}

static int resolve_owner(const char *owner, uid_t *uid, gid_t *gid, int *found)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    *found = 0;
    *gid = (gid_t)-1;
    int digits = owner[0] >= '0' && owner[0] <= '9';
    if (digits) {
        unsigned long v = strtoul(owner, NULL, 10);
        if (v >= (unsigned long)(uid_t)-1)
            return VIGIL_OK;
        *uid = (uid_t)v;
        *found = 1;
        if (getpwuid_r(*uid, &pw, buf, sizeof(buf), &res) == 0 && res)
            *gid = res->pw_gid;
        return VIGIL_OK;
    }
    if (getpwnam_r(owner, &pw, buf, sizeof(buf), &res) == 0 && res) {
        *uid = res->pw_uid;
        *gid = res->pw_gid;
        *found = 1;
    }
    return VIGIL_OK;
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int rf_execute(void *p, const vigil_action_request *req, const vigil_action_exec *exec,
                      vigil_action_result *res)
{
    (void)exec;
    const rf_state *s = p;
    rf_req r;
    int rc = rf_parse(s, req, &r);
    if (rc == VIGIL_ENOMEM)
        return rc;
    if (rc) {
        char msg[1024];
        snprintf(msg, sizeof(msg), "%s", vigil_error_last()->message);
        return fail(res, "path_outside_prefixes", "%s", msg);
    }
    char *parent = NULL;
    const char *base = NULL;
    unsigned char *data = NULL;
    size_t len = 0;
    int dirfd = -1, fd = -1;
    char tmp[NAME_MAX + 1] = "";
    vigil_buf rpath = VIGIL_BUF_INIT;
    char rparent[PATH_MAX];
    if ((rc = split(r.path, &parent, &base)) != 0)
        goto out;
    if (!realpath(parent, rparent)) {
        rc = fail(res, "parent_missing", "cannot resolve the directory %s of %s: %s", parent,
                  r.path, strerror(errno));
        goto out;
    }
    rc = vigil__buf_printf(&rpath, "%s%s%s", rparent, strcmp(rparent, "/") == 0 ? "" : "/", base);
    if (rc)
        goto out;
    if (!resolved_allowed(s, rpath.ptr)) {
        rc = fail(res, "path_outside_prefixes",
                  "%s resolves to %s, which is not under a prefix of the action's paths "
                  "(symbolic links are resolved)",
                  r.path, rpath.ptr);
        goto out;
    }
    uid_t uid = (uid_t)-1;
    gid_t gid = (gid_t)-1;
    if (r.owner) {
        int found = 0;
        resolve_owner(r.owner, &uid, &gid, &found);
        if (!found) {
            rc = fail(res, "owner_unknown", "owner \"%s\": no such user", r.owner);
            goto out;
        }
    }
    if ((rc = read_blob(s, r.sha256, &data, &len, res)) != 0) {
        if (rc > 0)
            rc = VIGIL_OK;
        goto out;
    }
    dirfd = open(rparent, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (dirfd < 0) {
        rc = fail(res, "parent_missing", "cannot open the directory %s: %s", rparent,
                  strerror(errno));
        goto out;
    }
    /* the directory opened is the one checked: a directory swapped for a
     * symbolic link since realpath() is seen here */
    char fdpath[64], opened[PATH_MAX];
    snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", dirfd);
    ssize_t ol = readlink(fdpath, opened, sizeof(opened) - 1);
    if (ol > 0) {
        opened[ol] = '\0';
        if (strcmp(opened, rparent) != 0) {
            rc = fail(res, "path_outside_prefixes",
                      "the directory %s changed to %s while it was opened", rparent, opened);
            goto out;
        }
    }
    struct stat cur;
    int exists = fstatat(dirfd, base, &cur, AT_SYMLINK_NOFOLLOW) == 0;
    if (exists && S_ISDIR(cur.st_mode)) {
        rc = fail(res, "path_is_directory", "%s is a directory", rpath.ptr);
        goto out;
    }
    int regular = exists && S_ISREG(cur.st_mode);
    mode_t mode = r.has_mode ? r.mode : regular ? (cur.st_mode & 0777) : RF_DEFAULT_MOD;
    unsigned char rnd[6] = {0};
    if (vigil__crypto_random(rnd, sizeof(rnd)) != VIGIL_OK) {
        uint64_t x = (uint64_t)vigil__monotonic_ns();
        memcpy(rnd, &x, sizeof(rnd));
    }
    snprintf(tmp, sizeof(tmp), ".%.200s.vigil-%02x%02x%02x%02x%02x%02x", base, rnd[0], rnd[1],
             rnd[2], rnd[3], rnd[4], rnd[5]);
    fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        tmp[0] = '\0';
        rc = fail(res, "write_failed", "cannot create a temporary file in %s: %s", rparent,
                  strerror(errno));
        goto out;
    }
    if (write_all(fd, data, len) != 0) {
        rc = fail(res, "write_failed", "cannot write %s/%s: %s", rparent, tmp, strerror(errno));
        goto out;
    }
    if (r.owner) {
        if (fchown(fd, uid, gid) != 0 && (errno != EPERM || fchown(fd, uid, (gid_t)-1) != 0)) {
            rc = fail(res, "chown_failed",
                      "cannot make %s owned by %s (uid %lu): %s (changing the owner of a file "
                      "needs privilege); the file was not replaced",
                      rpath.ptr, r.owner, (unsigned long)uid, strerror(errno));
            goto out;
        }
    } else if (regular && (cur.st_uid != geteuid() || cur.st_gid != getegid())) {
        /* keep the replaced file's owner when allowed; not an error otherwise */
        if (fchown(fd, cur.st_uid, cur.st_gid) != 0)
            (void)fchown(fd, (uid_t)-1, cur.st_gid);
    }
    if (fchmod(fd, mode) != 0 || fsync(fd) != 0) {
        rc = fail(res, "write_failed", "cannot set the mode of or sync %s/%s: %s", rparent, tmp,
                  strerror(errno));
        goto out;
    }
    int cfd = fd;
    fd = -1;
    if (close(cfd) != 0) {
        rc = fail(res, "write_failed", "cannot write %s/%s: %s", rparent, tmp, strerror(errno));
        goto out;
    }
    if (renameat(dirfd, tmp, dirfd, base) != 0) {
        rc = fail(res, "write_failed", "cannot rename %s/%s to %s: %s", rparent, tmp, rpath.ptr,
                  strerror(errno));
        goto out;
    }
    tmp[0] = '\0';
    (void)fsync(dirfd);
    res->status = VIGIL_ACTION_SUCCEEDED;
    char msg[PATH_MAX + 160];
    snprintf(msg, sizeof(msg), "restored %s (%zu bytes, sha256 %.12s, mode %04o)", rpath.ptr, len,
             r.sha256, (unsigned)mode);
    rc = vigil_action_result_set_output(res, msg, strlen(msg));
out:
    if (fd >= 0)
        close(fd);
    if (tmp[0] && dirfd >= 0)
        (void)unlinkat(dirfd, tmp, 0);
    if (dirfd >= 0)
        close(dirfd);
    vigil__free(data);
    vigil__free(parent);
    vigil__free(r.path);
    vigil_buf_dispose(&rpath);
    return rc;
}

const vigil_action_type vigil__action_restore_file_type = {
    .version = VIGIL_ACTION_TYPE_VERSION,
    .name = "restore_file",
    .keys = k_keys,
    .create = rf_create,
    .validate = rf_validate,
    .execute = rf_execute,
    .destroy = rf_destroy,
    .describe = rf_describe,
};
