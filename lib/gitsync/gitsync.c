/* Git sources: the one file of the library that includes git2.h. A bare
 * repository under the work directory receives the fetches; each commit is
 * checked out into a directory of its own and "current" is switched to it
 * with rename(2), so a failure never touches the checkout in use. */
#include "internal/common.h"

#include "crypto/crypto.h"
#include "vigil/gitsync.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <git2.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define GS_HEX 40

struct vigil_gitsync {
    char *url; /* as libgit2 takes it: an absolute path for a local one */
    char *ref;
    char *workdir;
    char *token_env;
    char *username;
    char *ca_file;
    vigil_getenv_cb getenv;
    void *getenv_payload;
    vigil_logger logger;
    unsigned int keep;
    int https;
    int lock_fd;
    char *repo_path; /* <workdir>/repo.git */
    char *checkouts; /* <workdir>/checkouts */
    char *current;   /* <workdir>/current */
    char commit[GS_HEX + 1];
    char *path; /* <workdir>/checkouts/<commit>, or NULL */
};

/* State of one fetch, seen by the libgit2 callbacks. */
typedef struct gs_fetch {
    vigil_gitsync *gs;
    const char *token;
    unsigned int cred_calls;
    int auth_failed;
    char auth_msg[256];
    int cert_failed;
    char cert_msg[512];
} gs_fetch;

/* ---- helpers ------------------------------------------------------------------- */

static char *gs_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = vigil__malloc(la + lb + 2);
    if (!s)
        return NULL;
    memcpy(s, a, la);
    s[la] = '/';
    memcpy(s + la + 1, b, lb + 1);
    return s;
}

static int gs_is_hex40(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f') ||
              (s[n] >= 'A' && s[n] <= 'F')))
            return 0;
    return n == GS_HEX;
}

static int gs_check_string(const char *what, const char *s)
{
    size_t n = strlen(s);
    if (n > VIGIL_GITSYNC_MAX_STRING)
        return vigil__error_set(VIGIL_ELIMIT, "gitsync: %s is longer than %d bytes", what,
                                VIGIL_GITSYNC_MAX_STRING);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return vigil__error_set(VIGIL_EINVAL, "gitsync: %s has a control character", what);
    return VIGIL_OK;
}

static int gs_mkdir(const char *path)
{
    if (mkdir(path, 0755) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            return VIGIL_OK;
        return vigil__error_set(VIGIL_EIO, "gitsync: %s exists and is not a directory", path);
    }
    return vigil__error_set(VIGIL_EIO, "gitsync: cannot create %s: %s", path, strerror(errno));
}

/* mkdir -p: the parents too. */
static int gs_mkdir_p(const char *path)
{
    char buf[PATH_MAX];
    if (strlen(path) >= sizeof(buf))
        return vigil__error_set(VIGIL_ELIMIT, "gitsync: %s: path too long", path);
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
            int e = errno;
            *p = '/';
            return vigil__error_set(VIGIL_EIO, "gitsync: cannot create %s: %s", path, strerror(e));
        }
        *p = '/';
    }
    return gs_mkdir(path);
}

static int gs_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        return rmdir(path) == 0 || errno == ENOENT ? 0 : -1;
    return unlink(path) == 0 || errno == ENOENT ? 0 : -1;
}

/* rm -r of a path (never follows symbolic links); a missing path is fine. */
static int gs_rmtree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? VIGIL_OK
                               : vigil__error_set(VIGIL_EIO, "gitsync: cannot remove %s: %s", path,
                                                  strerror(errno));
    if (!S_ISDIR(st.st_mode)) {
        if (unlink(path) == 0)
            return VIGIL_OK;
    } else if (nftw(path, gs_rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0) {
        return VIGIL_OK;
    }
    return vigil__error_set(VIGIL_EIO, "gitsync: cannot remove %s: %s", path, strerror(errno));
}

/* The error of a libgit2 call as a Vigil code, with libgit2's message. */
static int gs_git_error(const vigil_gitsync *gs, const gs_fetch *f, int rc, const char *what)
{
    const git_error *e = git_error_last();
    const char *msg = e && e->message && e->message[0] ? e->message : "unknown libgit2 error";
    int klass = e ? e->klass : GIT_ERROR_NONE;
    int code;
    if (f && f->auth_failed)
        return vigil__error_set(VIGIL_EAUTH, "gitsync: %s %s: %s", what, gs->url, f->auth_msg);
    if (f && f->cert_failed)
        return vigil__error_set(VIGIL_ENETWORK, "gitsync: %s %s: %s", what, gs->url, f->cert_msg);
    if (rc == GIT_EAUTH || strstr(msg, "status code: 401") || strstr(msg, "status code: 403") ||
        strstr(msg, "authentication"))
        code = VIGIL_EAUTH;
    else if (rc == GIT_ENOTFOUND)
        code = VIGIL_ENOTFOUND;
    else if (rc == GIT_ECERTIFICATE)
        code = VIGIL_ENETWORK;
    else if (klass == GIT_ERROR_NOMEMORY)
        code = VIGIL_ENOMEM;
    else if (rc == GIT_EMISMATCH || klass == GIT_ERROR_ODB || klass == GIT_ERROR_ZLIB ||
             klass == GIT_ERROR_OBJECT || klass == GIT_ERROR_INDEX || klass == GIT_ERROR_TREE ||
             klass == GIT_ERROR_CONFIG)
        code = VIGIL_ECORRUPT;
    else if (klass == GIT_ERROR_NET || klass == GIT_ERROR_HTTP || klass == GIT_ERROR_SSL ||
             klass == GIT_ERROR_SSH)
        code = VIGIL_ENETWORK;
    else if ((klass == GIT_ERROR_OS || klass == GIT_ERROR_FILESYSTEM) && gs->https && f)
        code = VIGIL_ENETWORK; /* a socket of the fetch */
    else if (klass == GIT_ERROR_OS || klass == GIT_ERROR_FILESYSTEM)
        code = VIGIL_EIO;
    else
        code = VIGIL_ERROR;
    /* a local source that is not a repository at all */
    if (code == VIGIL_ERROR && klass == GIT_ERROR_REPOSITORY && strstr(msg, "could not find"))
        code = VIGIL_ENOTFOUND;
    return vigil__error_set(code, "gitsync: %s %s: %s", what, gs->url, msg);
}

/* ---- options and life cycle ------------------------------------------------------ */

int vigil_gitsync_options_init(vigil_gitsync_options *opts, unsigned int version)
{
    if (!opts)
        return vigil__error_set(VIGIL_EINVAL, "gitsync options: NULL");
    if (vigil__version_check("gitsync options", version, VIGIL_GITSYNC_OPTIONS_VERSION))
        return VIGIL_EVERSION;
    vigil_gitsync_options d = VIGIL_GITSYNC_OPTIONS_INIT;
    *opts = d;
    return VIGIL_OK;
}

/* Checks the URL and sets gs->url (an absolute path for a local one). */
static int gs_set_url(vigil_gitsync *gs, const char *url)
{
    int rc = gs_check_string("url", url);
    if (rc)
        return rc;
    if (!url[0])
        return vigil__error_set(VIGIL_EINVAL, "gitsync: url is empty");
    const char *sep = strstr(url, "://");
    if (sep) {
        size_t sl = (size_t)(sep - url);
        const char *auth = sep + 3;
        if (sl == 5 && strncasecmp(url, "https", 5) == 0) {
            size_t al = strcspn(auth, "/?#");
            if (memchr(auth, '@', al))
                return vigil__error_set(VIGIL_EINVAL,
                                        "gitsync: url: credentials in the URL are refused; "
                                        "give the token through token_env");
            if (al == 0)
                return vigil__error_set(VIGIL_EINVAL, "gitsync: url %s has no host", url);
            gs->https = 1;
        } else if (sl == 4 && strncasecmp(url, "file", 4) == 0) {
            if (auth[0] != '/')
                return vigil__error_set(
                    VIGIL_EINVAL, "gitsync: url %s: a file:// URL needs an absolute path", url);
        } else {
            return vigil__error_set(VIGIL_EUNSUPPORTED,
                                    "gitsync: url %s: scheme '%.*s' is not supported (a local "
                                    "path, file:// or https://)",
                                    url, (int)(sl > 32 ? 32 : sl), url);
        }
        gs->url = vigil__strdup(url);
        return gs->url ? VIGIL_OK : vigil__error_oom();
    }
    size_t colon = strcspn(url, ":/");
    if (url[colon] == ':')
        return vigil__error_set(VIGIL_EUNSUPPORTED,
                                "gitsync: url %s looks like an ssh address (host:path), which is "
                                "not supported (a local path, file:// or https://)",
                                url);
    if (url[0] == '/') {
        gs->url = vigil__strdup(url);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof(cwd)))
            return vigil__error_set(VIGIL_EIO, "gitsync: getcwd: %s", strerror(errno));
        gs->url = gs_join(cwd, url);
    }
    return gs->url ? VIGIL_OK : vigil__error_oom();
}

static int gs_check_ref(const char *ref)
{
    int rc = gs_check_string("ref", ref);
    if (rc)
        return rc;
    if (!ref[0])
        return vigil__error_set(VIGIL_EINVAL, "gitsync: ref is empty");
    if (gs_is_hex40(ref))
        return VIGIL_OK;
    char full[VIGIL_GITSYNC_MAX_STRING + 16];
    if (strncmp(ref, "refs/", 5) == 0)
        snprintf(full, sizeof(full), "%s", ref);
    else
        snprintf(full, sizeof(full), "refs/heads/%s", ref);
    int valid = 0;
    if (git_reference_name_is_valid(&valid, full) < 0 || !valid)
        return vigil__error_set(VIGIL_EINVAL,
                                "gitsync: ref '%s' is neither a valid branch, tag or reference "
                                "name nor a 40-hex commit id",
                                ref);
    return VIGIL_OK;
}

/* Picks up the checkout "current" points to, if any. */
static int gs_load_current(vigil_gitsync *gs)
{
    char target[PATH_MAX];
    ssize_t n = readlink(gs->current, target, sizeof(target) - 1);
    if (n < 0)
        return VIGIL_OK;
    target[n] = '\0';
    const char *base = strrchr(target, '/');
    base = base ? base + 1 : target;
    if (!gs_is_hex40(base))
        return VIGIL_OK;
    char *path = gs_join(gs->checkouts, base);
    if (!path)
        return vigil__error_oom();
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        vigil__free(path);
        return VIGIL_OK;
    }
    memcpy(gs->commit, base, GS_HEX + 1);
    gs->path = path;
    return VIGIL_OK;
}

static char *gs_dup_opt(const char *s, int *rc)
{
    if (!s || *rc)
        return NULL;
    char *d = vigil__strdup(s);
    if (!d)
        *rc = vigil__error_oom();
    return d;
}

int vigil_gitsync_new(vigil_gitsync **out, const vigil_gitsync_options *opts)
{
    if (!out)
        return vigil__error_set(VIGIL_EINVAL, "gitsync: NULL out");
    *out = NULL;
    if (!opts)
        return vigil__error_set(VIGIL_EINVAL, "gitsync: NULL options");
    if (vigil__version_check("gitsync options", opts->version, VIGIL_GITSYNC_OPTIONS_VERSION))
        return VIGIL_EVERSION;
    if (!opts->url)
        return vigil__error_set(VIGIL_EINVAL, "gitsync: url is required");
    if (!opts->workdir || !opts->workdir[0])
        return vigil__error_set(VIGIL_EINVAL, "gitsync: workdir is required");
    const char *strs[][2] = {{"workdir", opts->workdir},
                             {"token_env", opts->token_env},
                             {"username", opts->username},
                             {"ca_file", opts->ca_file}};
    for (size_t i = 0; i < VIGIL__ARRAY_LEN(strs); i++) {
        int rc = strs[i][1] ? gs_check_string(strs[i][0], strs[i][1]) : VIGIL_OK;
        if (rc)
            return rc;
    }
    if (opts->username && strchr(opts->username, ':'))
        return vigil__error_set(VIGIL_EINVAL, "gitsync: username has a ':'");
    if (git_libgit2_init() < 0)
        return vigil__error_set(VIGIL_ERROR, "gitsync: libgit2 cannot be initialised");
    vigil_gitsync *gs = vigil__calloc(1, sizeof(*gs));
    if (!gs) {
        git_libgit2_shutdown();
        return vigil__error_oom();
    }
    gs->lock_fd = -1;
    int rc = gs_set_url(gs, opts->url);
    if (!rc && opts->ref)
        rc = gs_check_ref(opts->ref);
    gs->ref = gs_dup_opt(opts->ref, &rc);
    if (!rc && opts->workdir[0] != '/') {
        /* absolute, so that libgit2 checks out where we mean whatever it resolves against */
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof(cwd)))
            rc = vigil__error_set(VIGIL_EIO, "gitsync: getcwd: %s", strerror(errno));
        else if (!(gs->workdir = gs_join(cwd, opts->workdir)))
            rc = vigil__error_oom();
    } else {
        gs->workdir = gs_dup_opt(opts->workdir, &rc);
    }
    gs->token_env = gs_dup_opt(opts->token_env, &rc);
    gs->username =
        gs_dup_opt(opts->username ? opts->username : VIGIL_GITSYNC_DEFAULT_USERNAME, &rc);
    gs->ca_file = gs_dup_opt(opts->ca_file, &rc);
    gs->getenv = opts->getenv;
    gs->getenv_payload = opts->getenv_payload;
    if (opts->logger)
        gs->logger = *opts->logger;
    gs->keep = opts->keep ? opts->keep : 2;
    if (!rc) {
        gs->repo_path = gs_join(gs->workdir, "repo.git");
        gs->checkouts = gs_join(gs->workdir, "checkouts");
        gs->current = gs_join(gs->workdir, "current");
        if (!gs->repo_path || !gs->checkouts || !gs->current)
            rc = vigil__error_oom();
    }
    if (!rc)
        rc = gs_mkdir_p(gs->workdir);
    if (!rc)
        rc = gs_mkdir(gs->checkouts);
    if (!rc) {
        char *lock = gs_join(gs->workdir, ".lock");
        if (!lock) {
            rc = vigil__error_oom();
        } else {
            gs->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
            if (gs->lock_fd < 0)
                rc = vigil__error_set(VIGIL_EIO, "gitsync: cannot open %s: %s", lock,
                                      strerror(errno));
            else if (flock(gs->lock_fd, LOCK_EX | LOCK_NB) != 0)
                rc = vigil__error_set(
                    VIGIL_EBUSY, "gitsync: workdir %s is in use by another gitsync", gs->workdir);
            vigil__free(lock);
        }
    }
    if (!rc)
        rc = gs_load_current(gs);
    if (rc) {
        vigil_gitsync_free(gs);
        return rc;
    }
    *out = gs;
    return VIGIL_OK;
}

void vigil_gitsync_free(vigil_gitsync *gs)
{
    if (!gs)
        return;
    if (gs->lock_fd >= 0)
        close(gs->lock_fd);
    vigil__free(gs->url);
    vigil__free(gs->ref);
    vigil__free(gs->workdir);
    vigil__free(gs->token_env);
    vigil__free(gs->username);
    vigil__free(gs->ca_file);
    vigil__free(gs->repo_path);
    vigil__free(gs->checkouts);
    vigil__free(gs->current);
    vigil__free(gs->path);
    vigil__free(gs);
    git_libgit2_shutdown();
}

const char *vigil_gitsync_commit(const vigil_gitsync *gs)
{
    return gs ? gs->commit : "";
}

const char *vigil_gitsync_path(const vigil_gitsync *gs)
{
    return gs ? gs->path : NULL;
}

/* ---- fetch -------------------------------------------------------------------- */

static int gs_cred_cb(git_credential **out, const char *url, const char *username_from_url,
                      unsigned int allowed, void *payload)
{
    gs_fetch *f = payload;
    (void)url;
    (void)username_from_url;
    f->cred_calls++;
    f->auth_failed = 1;
    if (!(allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT)) {
        snprintf(f->auth_msg, sizeof(f->auth_msg),
                 "the server asks for a kind of credentials gitsync does not have");
    } else if (!f->token) {
        snprintf(f->auth_msg, sizeof(f->auth_msg),
                 "the server asks for credentials and there is no token (%s%s%s)",
                 f->gs->token_env ? "$" : "", f->gs->token_env ? f->gs->token_env : "no token_env",
                 f->gs->token_env ? " is not set or empty" : "");
    } else if (f->cred_calls > 1) {
        snprintf(f->auth_msg, sizeof(f->auth_msg),
                 "authentication failed: the server refused the token of $%s (username %.64s)",
                 f->gs->token_env, f->gs->username);
    } else {
        f->auth_failed = 0;
        return git_credential_userpass_plaintext_new(out, f->gs->username, f->token);
    }
    git_error_set_str(GIT_ERROR_HTTP, f->auth_msg);
    return GIT_EAUTH;
}

static int gs_cert_cb(git_cert *cert, int valid, const char *host, void *payload)
{
    gs_fetch *f = payload;
    if (valid)
        return 0;
    if (!f->gs->ca_file || cert->cert_type != GIT_CERT_X509)
        return GIT_PASSTHROUGH;
    const git_cert_x509 *x = (const git_cert_x509 *)cert;
    if (vigil__crypto_x509_verify(x->data, x->len, f->gs->ca_file, host) == VIGIL_OK)
        return 0;
    f->cert_failed = 1;
    snprintf(f->cert_msg, sizeof(f->cert_msg), "TLS: %s", vigil_error_last()->message);
    git_error_set_str(GIT_ERROR_SSL, f->cert_msg);
    return GIT_ECERTIFICATE;
}

static int gs_open_repo(vigil_gitsync *gs, git_repository **repo)
{
    int rc = git_repository_open_bare(repo, gs->repo_path);
    if (rc == GIT_ENOTFOUND) {
        struct stat st;
        if (lstat(gs->repo_path, &st) == 0) {
            /* something that is not a repository: a half-made init */
            int r = gs_rmtree(gs->repo_path);
            if (r)
                return r;
        }
        rc = git_repository_init(repo, gs->repo_path, 1);
        if (rc < 0)
            return gs_git_error(gs, NULL, rc, "init repository for");
        return VIGIL_OK;
    }
    if (rc < 0) {
        int code = gs_git_error(gs, NULL, rc, "open the local repository of");
        return code == VIGIL_ERROR ? VIGIL_ECORRUPT : code;
    }
    return VIGIL_OK;
}

static int gs_fetch_remote(vigil_gitsync *gs, git_repository *repo, git_remote **remote, int *local)
{
    gs_fetch f;
    memset(&f, 0, sizeof(f));
    f.gs = gs;
    if (gs->token_env) {
        const char *t =
            gs->getenv ? gs->getenv(gs->getenv_payload, gs->token_env) : getenv(gs->token_env);
        f.token = t && t[0] ? t : NULL;
    }
    git_remote_create_options ro;
    git_remote_create_options_init(&ro, GIT_REMOTE_CREATE_OPTIONS_VERSION);
    ro.repository = repo;
    /* the user's url.*.insteadOf rewrites do not apply to a configured source */
    ro.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
    if (!gs->https) {
        const char *lpath = strncasecmp(gs->url, "file://", 7) == 0 ? gs->url + 7 : gs->url;
        struct stat st;
        if (stat(lpath, &st) != 0)
            return vigil__error_set(errno == ENOENT ? VIGIL_ENOTFOUND : VIGIL_EIO,
                                    "gitsync: fetch %s: no repository there: %s", gs->url,
                                    strerror(errno));
    }
    int rc = git_remote_create_with_opts(remote, gs->url, &ro);
    if (rc < 0) {
        *local = 1;
        return gs_git_error(gs, NULL, rc, "open remote");
    }
    git_fetch_options fo;
    git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
    fo.callbacks.credentials = gs_cred_cb;
    fo.callbacks.certificate_check = gs_cert_cb;
    fo.callbacks.payload = &f;
    fo.prune = GIT_FETCH_PRUNE;
    fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
    fo.update_fetchhead = 0;
    char *specs[] = {"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"};
    git_strarray refspecs = {specs, 2};
    rc = git_remote_fetch(*remote, &refspecs, &fo, NULL);
    if (rc < 0)
        return gs_git_error(gs, &f, rc, "fetch");
    return VIGIL_OK;
}

/* Resolves the configured ref to a commit id. */
static int gs_resolve(vigil_gitsync *gs, git_repository *repo, git_remote *remote, git_oid *oid)
{
    int rc;
    if (gs->ref && gs_is_hex40(gs->ref)) {
        git_commit *c = NULL;
        if (git_oid_fromstr(oid, gs->ref) < 0 || git_commit_lookup(&c, repo, oid) < 0)
            return vigil__error_set(VIGIL_ENOTFOUND,
                                    "gitsync: commit %s not found in %s (it must be reachable "
                                    "from a branch or tag): %s",
                                    gs->ref, gs->url, git_error_last()->message);
        git_commit_free(c);
        return VIGIL_OK;
    }
    char names[2][VIGIL_GITSYNC_MAX_STRING + 16];
    size_t n = 0;
    if (!gs->ref) {
        git_buf def = {NULL, 0, 0};
        rc = git_remote_default_branch(&def, remote);
        if (rc < 0)
            return vigil__error_set(VIGIL_ENOTFOUND,
                                    "gitsync: %s has no default branch (set ref): %s", gs->url,
                                    git_error_last()->message);
        snprintf(names[n++], sizeof(names[0]), "%s", def.ptr);
        git_buf_dispose(&def);
    } else if (strncmp(gs->ref, "refs/", 5) == 0) {
        snprintf(names[n++], sizeof(names[0]), "%s", gs->ref);
    } else {
        snprintf(names[n++], sizeof(names[0]), "refs/heads/%s", gs->ref);
        snprintf(names[n++], sizeof(names[0]), "refs/tags/%s", gs->ref);
    }
    for (size_t i = 0; i < n; i++) {
        git_reference *r = NULL;
        rc = git_reference_lookup(&r, repo, names[i]);
        if (rc == GIT_ENOTFOUND)
            continue;
        if (rc < 0)
            return gs_git_error(gs, NULL, rc, "look up the ref of");
        git_object *obj = NULL;
        rc = git_reference_peel(&obj, r, GIT_OBJECT_COMMIT);
        git_reference_free(r);
        if (rc < 0)
            return gs_git_error(gs, NULL, rc, "peel the ref to a commit in");
        git_oid_cpy(oid, git_object_id(obj));
        git_object_free(obj);
        return VIGIL_OK;
    }
    return vigil__error_set(VIGIL_ENOTFOUND, "gitsync: ref '%s' not found in %s (no branch or tag)",
                            gs->ref ? gs->ref : names[0], gs->url);
}

/* Checks the commit out into checkouts/<hex> through a temporary directory. */
static int gs_checkout(vigil_gitsync *gs, git_repository *repo, const git_oid *oid, const char *hex,
                       char **final_out)
{
    char name[64];
    snprintf(name, sizeof(name), ".tmp-%s-%ld", hex, (long)getpid());
    char *tmp = gs_join(gs->checkouts, name);
    char *final = gs_join(gs->checkouts, hex);
    int rc = tmp && final ? VIGIL_OK : vigil__error_oom();
    git_commit *commit = NULL;
    git_tree *tree = NULL;
    if (!rc)
        rc = gs_rmtree(tmp);
    if (!rc && mkdir(tmp, 0755) != 0)
        rc = vigil__error_set(VIGIL_EIO, "gitsync: cannot create %s: %s", tmp, strerror(errno));
    if (!rc) {
        int g = git_commit_lookup(&commit, repo, oid);
        if (g >= 0)
            g = git_commit_tree(&tree, commit);
        if (g < 0)
            rc = gs_git_error(gs, NULL, g, "read the commit tree of");
    }
    if (!rc) {
        git_checkout_options co;
        git_checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION);
        co.checkout_strategy = GIT_CHECKOUT_FORCE | GIT_CHECKOUT_DONT_UPDATE_INDEX;
        co.target_directory = tmp;
        int g = git_checkout_tree(repo, (const git_object *)tree, &co);
        if (g < 0)
            rc = gs_git_error(gs, NULL, g, "check out");
    }
    git_tree_free(tree);
    git_commit_free(commit);
    if (!rc)
        rc = gs_rmtree(final); /* an older checkout of the same commit, not in use */
    if (!rc && rename(tmp, final) != 0)
        rc = vigil__error_set(VIGIL_EIO, "gitsync: cannot rename %s to %s: %s", tmp, final,
                              strerror(errno));
    if (rc && tmp) {
        int keep = rc;
        gs_rmtree(tmp);
        rc = keep;
    }
    vigil__free(tmp);
    if (rc) {
        vigil__free(final);
        return rc;
    }
    *final_out = final;
    return VIGIL_OK;
}

/* Points "current" at checkouts/<hex>, atomically. */
static int gs_switch(vigil_gitsync *gs, const char *hex)
{
    char target[64];
    snprintf(target, sizeof(target), "checkouts/%s", hex);
    char *tmp = gs_join(gs->workdir, ".current.tmp");
    if (!tmp)
        return vigil__error_oom();
    int rc = VIGIL_OK;
    unlink(tmp);
    if (symlink(target, tmp) != 0)
        rc = vigil__error_set(VIGIL_EIO, "gitsync: cannot create %s: %s", tmp, strerror(errno));
    else if (rename(tmp, gs->current) != 0)
        rc = vigil__error_set(VIGIL_EIO, "gitsync: cannot replace %s: %s", gs->current,
                              strerror(errno));
    if (rc)
        unlink(tmp);
    vigil__free(tmp);
    return rc;
}

typedef struct gs_old {
    char name[GS_HEX + 1];
    int64_t mtime;
} gs_old;

static int gs_old_cmp(const void *a, const void *b)
{
    const gs_old *x = a, *y = b;
    return x->mtime < y->mtime ? 1 : x->mtime > y->mtime ? -1 : 0;
}

/* Removes leftover temporary directories and the checkouts past `keep`
 * (newest first, the one in use always kept). Failures are only logged. */
static void gs_prune(vigil_gitsync *gs)
{
    DIR *d = opendir(gs->checkouts);
    if (!d)
        return;
    gs_old *old = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *p = gs_join(gs->checkouts, e->d_name);
        if (!p)
            break;
        if (strncmp(e->d_name, ".tmp-", 5) == 0) {
            gs_rmtree(p);
        } else if (gs_is_hex40(e->d_name) && strcmp(e->d_name, gs->commit) != 0) {
            struct stat st;
            if (lstat(p, &st) == 0 &&
                vigil__array_grow((void **)&old, &cap, n + 1, sizeof(*old)) == 0) {
                memcpy(old[n].name, e->d_name, GS_HEX + 1);
                old[n].mtime = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
                n++;
            }
        }
        vigil__free(p);
    }
    closedir(d);
    if (n)
        qsort(old, n, sizeof(*old), gs_old_cmp);
    for (size_t i = gs->keep > 0 ? gs->keep - 1 : 0; i < n; i++) {
        char *p = gs_join(gs->checkouts, old[i].name);
        if (p && gs_rmtree(p) != VIGIL_OK)
            vigil__log(&gs->logger, VIGIL_LOG_WARN, "gitsync", "cannot prune a checkout",
                       "error=\"%s\"", vigil_error_last()->message);
        vigil__free(p);
    }
    vigil__free(old);
}

int vigil_gitsync_sync(vigil_gitsync *gs, vigil_gitsync_result *result)
{
    if (!gs)
        return vigil__error_set(VIGIL_EINVAL, "gitsync: NULL gitsync");
    if (result &&
        vigil__version_check("gitsync result", result->version, VIGIL_GITSYNC_RESULT_VERSION))
        return VIGIL_EVERSION;
    git_repository *repo = NULL;
    git_remote *remote = NULL;
    git_oid oid;
    char hex[GS_HEX + 1];
    int changed = 0;
    int rc = gs_mkdir(gs->workdir);
    if (!rc)
        rc = gs_mkdir(gs->checkouts);
    int local = 0;
    if (!rc) {
        rc = gs_open_repo(gs, &repo);
        local = rc != VIGIL_OK;
    }
    if (!rc)
        rc = gs_fetch_remote(gs, repo, &remote, &local);
    if (rc == VIGIL_ECORRUPT && local) {
        /* repo.git is only a cache of the source: start it again */
        vigil__log(&gs->logger, VIGIL_LOG_WARN, "gitsync",
                   "local repository corrupt, cloning again", "path=%s", gs->repo_path);
        git_remote_free(remote);
        remote = NULL;
        git_repository_free(repo);
        repo = NULL;
        local = 0;
        rc = gs_rmtree(gs->repo_path);
        if (!rc)
            rc = gs_open_repo(gs, &repo);
        if (!rc)
            rc = gs_fetch_remote(gs, repo, &remote, &local);
    }
    if (!rc)
        rc = gs_resolve(gs, repo, remote, &oid);
    if (!rc) {
        git_oid_tostr(hex, sizeof(hex), &oid);
        if (strcmp(hex, gs->commit) != 0 || !gs->path) {
            char *path = NULL;
            rc = gs_checkout(gs, repo, &oid, hex, &path);
            if (!rc)
                rc = gs_switch(gs, hex);
            if (!rc) {
                vigil__free(gs->path);
                gs->path = path;
                memcpy(gs->commit, hex, sizeof(hex));
                changed = 1;
            } else {
                vigil__free(path);
            }
        }
    }
    git_remote_free(remote);
    git_repository_free(repo);
    if (rc) {
        vigil_buf msg = VIGIL_BUF_INIT;
        vigil__logfmt_value(&msg, vigil_error_last()->message);
        vigil__log(&gs->logger, VIGIL_LOG_WARN, "gitsync", "sync failed", "code=%d error=%s%s%s",
                   rc, msg.ptr ? msg.ptr : "\"\"", gs->commit[0] ? " keep=" : "", gs->commit);
        vigil_buf_dispose(&msg);
        return rc;
    }
    if (changed) {
        vigil__log(&gs->logger, VIGIL_LOG_INFO, "gitsync", "checked out", "commit=%s", hex);
        gs_prune(gs);
    }
    if (result) {
        memcpy(result->commit, gs->commit, sizeof(result->commit));
        result->changed = changed;
        result->path = gs->path;
    }
    return VIGIL_OK;
}
