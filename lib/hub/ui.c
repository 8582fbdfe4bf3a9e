/* The dashboard: the files of one directory (vigil_hub_options.ui_dir),
 * served for GET and HEAD of the paths no route matches (vigil/hub.h,
 * "Dashboard"). The request path is checked before any file system call
 * (no "." or ".." segment, nothing encoded that could change its meaning);
 * then the file is opened beneath the directory only: openat2() with
 * RESOLVE_BENEATH, or where the kernel lacks it, the real path of the file
 * must lie inside the real path of the directory. Only a regular file is
 * read, opened non-blocking so that a FIFO cannot hold a server thread. */
#include "hub/hub_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Set by the Makefile to $(PREFIX)/share/vigil/ui. */
#ifndef VIGIL__UI_DIR
#define VIGIL__UI_DIR "/usr/local/share/vigil/ui"
#endif

#define UI_REL_MAX 1024 /* bytes of a file's path inside the directory */

static const char not_built_page[] =
    "<!doctype html>\n"
    "<html lang=\"en\">\n"
    "<head><meta charset=\"utf-8\"><title>Vigil: the dashboard is not built</title></head>\n"
    "<body>\n"
    "<h1>The Vigil dashboard is not built</h1>\n"
    "<p>This hub serves the dashboard from the directory of <code>ui: {dir}</code> in its "
    "collector.yaml, and that directory has no <code>index.html</code>.</p>\n"
    "<p>In the source tree, <code>make ui</code> builds it into <code>ui/dist</code> (it needs "
    "Node.js and npm; <code>scripts/deps.sh</code> installs them), and <code>make install</code> "
    "installs it. Then reload this page.</p>\n"
    "<p>The hub runs without it: its API answers under <code>/v1/</code> "
    "(docs/http-api.md) and the <code>vigil</code> command line talks to it.</p>\n"
    "</body>\n"
    "</html>\n";

int vigil__hub_ui_init(vigil_hub *hub, const vigil_hub_options *opts)
{
    const char *dir = opts->version >= 3 && opts->ui_dir ? opts->ui_dir : VIGIL__UI_DIR;
    hub->ui_max_file =
        opts->version >= 3 && opts->ui_max_file ? opts->ui_max_file : VIGIL_HUB_UI_MAX_FILE_DEFAULT;
    if (!*dir)
        return VIGIL_OK;
    hub->ui_dir = vigil__strdup(dir);
    return hub->ui_dir ? VIGIL_OK : vigil__error_oom();
}

/* The headers of every answer of the dashboard (the api adds
 * X-Content-Type-Options: nosniff to every answer). */
static void security_headers(vigil_api_response *resp)
{
    vigil__api_resp_header(resp, "Content-Security-Policy", VIGIL_HUB_UI_CSP);
    vigil__api_resp_header(resp, "Referrer-Policy", "no-referrer");
    vigil__api_resp_header(resp, "X-Frame-Options", "DENY");
}

static void refuse(vigil__api_call *call, int status, const char *message)
{
    vigil_api_response *resp = vigil__api_call_response(call);
    const char *code = status == 400   ? "invalid_request"
                       : status == 403 ? "forbidden"
                       : status == 404 ? "not_found"
                                       : "internal";
    vigil__api_resp_error(resp, status, code, message, NULL);
    security_headers(resp);
    vigil__api_finish(call);
}

static void not_built(vigil__api_call *call)
{
    vigil_api_response *resp = vigil__api_call_response(call);
    vigil_buf b = VIGIL_BUF_INIT;
    int rc = vigil__buf_put(&b, not_built_page, sizeof(not_built_page) - 1);
    if (!rc)
        rc = vigil__api_resp_text(resp, 404, "text/html; charset=utf-8", &b);
    vigil_buf_dispose(&b);
    if (rc) {
        refuse(call, 500, "out of memory");
        return;
    }
    vigil__api_resp_header(resp, "Cache-Control", "no-store");
    security_headers(resp);
    vigil__api_finish(call);
}

/* The raw request path as a path relative to the directory, in rel: 0, or
 * the status of the refusal (400, 403) with its reason in *why. "/" is
 * index.html; a trailing '/' is kept (the file system then refuses a file
 * named as a directory). */
static int rel_path(const char *raw, char *rel, size_t size, const char **why)
{
    if (raw[0] != '/') {
        *why = "path: expected an absolute path";
        return 400;
    }
    raw++;
    if (!*raw) {
        snprintf(rel, size, "index.html");
        return 0;
    }
    size_t n = 0, seg = 0; /* seg: where the current segment starts in rel */
    for (const char *p = raw;; p++) {
        int c = (unsigned char)*p;
        if (c == '/' || c == '\0') {
            size_t len = n - seg;
            if (len == 0 && (c == '/' || seg == 0)) {
                *why = "path: an empty segment";
                return 400;
            }
            if (len && rel[seg] == '.') {
                if (len == 1 || (len == 2 && rel[seg + 1] == '.')) {
                    *why = "path: a \".\" or \"..\" segment";
                    return 400;
                }
                *why = "hidden files (a name starting with '.') are not served";
                return 403;
            }
            if (c == '\0')
                break;
            if (n + 2 > size) {
                *why = "path: too long";
                return 400;
            }
            rel[n++] = '/';
            seg = n;
            continue;
        }
        if (c == '%') {
            int a = vigil__hex_value((unsigned char)p[1]);
            int b = a < 0 ? -1 : vigil__hex_value((unsigned char)p[2]);
            if (a < 0 || b < 0) {
                *why = "path: a bad percent-escape";
                return 400;
            }
            c = a * 16 + b;
            p += 2;
            if (c == '.' || c == '/' || c == '\\') {
                *why = "path: an encoded '.', '/' or '\\'";
                return 400;
            }
        }
        if (c == '\\') {
            *why = "path: a backslash";
            return 400;
        }
        if (c < 0x20 || c == 0x7f) {
            *why = "path: a control character";
            return 400;
        }
        if (n + 2 > size) {
            *why = "path: too long";
            return 400;
        }
        rel[n++] = (char)c;
    }
    rel[n] = '\0';
    return 0;
}

int vigil__hub_ui_open(int dfd, const char *dir, const char *rel, int no_openat2)
{
    const int flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
    if (!no_openat2) {
        struct open_how how;
        memset(&how, 0, sizeof(how));
        how.flags = (uint64_t)flags;
        how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
        long fd = syscall(SYS_openat2, dfd, rel, &how, sizeof(how));
        if (fd >= 0 || (errno != ENOSYS && errno != EPERM))
            return (int)fd;
    }
    /* no openat2 (before Linux 5.6, or a seccomp filter): both real paths */
    char rdir[PATH_MAX], full[PATH_MAX + UI_REL_MAX + 2], real[PATH_MAX];
    if (!realpath(dir, rdir))
        return -1;
    snprintf(full, sizeof(full), "%s/%s", rdir, rel);
    if (!realpath(full, real))
        return -1;
    size_t dl = strcmp(rdir, "/") == 0 ? 0 : strlen(rdir);
    if (strncmp(real, rdir, dl) != 0 || (real[dl] != '/' && real[dl] != '\0')) {
        errno = EXDEV;
        return -1;
    }
    return open(real, flags | O_NOFOLLOW);
}

static const char *content_type(const char *rel)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {"html", "text/html; charset=utf-8"},
        {"htm", "text/html; charset=utf-8"},
        {"js", "text/javascript; charset=utf-8"},
        {"mjs", "text/javascript; charset=utf-8"},
        {"css", "text/css; charset=utf-8"},
        {"svg", "image/svg+xml"},
        {"png", "image/png"},
        {"json", "application/json"},
        {"map", "application/json"},
        {"woff2", "font/woff2"},
        {"ico", "image/x-icon"},
    };
    const char *base = strrchr(rel, '/');
    const char *dot = strrchr(base ? base : rel, '.');
    for (size_t i = 0; dot && i < VIGIL__ARRAY_LEN(types); i++)
        if (strcasecmp(dot + 1, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

static int is_html(const char *type)
{
    return strncmp(type, "text/html", 9) == 0;
}

/* True when the If-None-Match value `inm` (entity tags separated by
 * commas, or "*") names `etag`; weak tags compare equal (RFC 9110 13.1.2). */
static int etag_matches(const char *inm, const char *etag)
{
    size_t el = strlen(etag);
    const char *p = inm;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        size_t n = strcspn(p, ",");
        size_t k = n;
        while (k && (p[k - 1] == ' ' || p[k - 1] == '\t'))
            k--;
        if (k == 1 && p[0] == '*')
            return 1;
        const char *t = p;
        if (k >= 2 && t[0] == 'W' && t[1] == '/') {
            t += 2;
            k -= 2;
        }
        if (k == el && memcmp(t, etag, el) == 0)
            return 1;
        p += n;
    }
    return 0;
}

/* Reads the regular file `fd` of `size` bytes into b: VIGIL_OK, VIGIL_EIO
 * (errno kept), VIGIL_ENOMEM. A file that shrank meanwhile gives what is left. */
static int read_file(int fd, size_t size, vigil_buf *b)
{
    if (vigil__buf_grow(b, size + 1))
        return VIGIL_ENOMEM;
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, b->ptr + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return VIGIL_EIO;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    b->size = got;
    b->ptr[got] = '\0';
    return VIGIL_OK;
}

static void serve(vigil__api_call *call, void *payload)
{
    vigil_hub *hub = payload;
    const vigil_api_request *req = vigil__api_call_request(call);
    vigil_api_response *resp = vigil__api_call_response(call);
    char rel[UI_REL_MAX];
    const char *why = "";
    int status = rel_path(vigil__api_call_path(call), rel, sizeof(rel), &why);
    if (status) {
        refuse(call, status, why);
        return;
    }
    int index = strcmp(rel, "index.html") == 0;
    int dfd = open(hub->ui_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        if (index)
            not_built(call);
        else
            refuse(call, 404, "no such file");
        return;
    }
    int fd = vigil__hub_ui_open(dfd, hub->ui_dir, rel, 0);
    int err = errno;
    close(dfd);
    if (fd < 0) {
        if ((err == ENOENT || err == ENOTDIR) && index)
            not_built(call);
        else if (err == ENOENT || err == ENOTDIR)
            refuse(call, 404, "no such file");
        else if (err == EXDEV || err == ELOOP)
            refuse(call, 403, "the path leads out of the dashboard directory");
        else if (err == EACCES || err == EPERM)
            refuse(call, 403, "permission denied");
        else if (err == ENAMETOOLONG)
            refuse(call, 400, "path: too long");
        else
            refuse(call, 500, "the file cannot be opened");
        return;
    }
    struct stat st;
    vigil_buf body = VIGIL_BUF_INIT;
    const char *type = content_type(rel);
    char etag[80];
    int rc = fstat(fd, &st);
    if (rc != 0) {
        status = 500;
        why = "the file cannot be read";
    } else if (S_ISDIR(st.st_mode)) {
        status = 403;
        why = "a directory (directories are not listed)";
    } else if (!S_ISREG(st.st_mode)) {
        status = 403;
        why = "not a regular file";
    } else if ((uint64_t)st.st_size > hub->ui_max_file) {
        status = 403;
        why = "the file is larger than ui.max_file";
    }
    if (status) {
        close(fd);
        refuse(call, status, why);
        return;
    }
    snprintf(etag, sizeof(etag), "\"%llx-%llx-%llx\"", (unsigned long long)st.st_ino,
             (unsigned long long)st.st_size,
             (unsigned long long)st.st_mtim.tv_sec * 1000000000ull +
                 (unsigned long long)st.st_mtim.tv_nsec);
    const char *inm = vigil__api_request_header(req, "If-None-Match");
    int fresh = inm && etag_matches(inm, etag);
    rc = fresh ? VIGIL_OK : read_file(fd, (size_t)st.st_size, &body);
    close(fd);
    if (rc) {
        vigil_buf_dispose(&body);
        refuse(call, 500, rc == VIGIL_ENOMEM ? "out of memory" : "the file cannot be read");
        return;
    }
    if (fresh)
        rc = vigil__api_resp_status(resp, 304);
    else
        rc = vigil__api_resp_text(resp, 200, type, &body);
    vigil_buf_dispose(&body);
    if (!rc)
        rc = vigil__api_resp_header(resp, "ETag", etag);
    if (!rc)
        rc = vigil__api_resp_header(resp, "Cache-Control",
                                    is_html(type) ? "no-cache" : "public, max-age=600");
    if (rc) {
        refuse(call, 500, "out of memory");
        return;
    }
    security_headers(resp);
    vigil__api_finish(call);
}

int vigil__hub_mount_ui(vigil_hub *hub, vigil_api *api)
{
    if (!hub->ui_dir)
        return VIGIL_OK;
    int rc = vigil__api_fallback(api, serve, hub);
    if (rc)
        return rc;
    char index[PATH_MAX];
    snprintf(index, sizeof(index), "%s/index.html", hub->ui_dir);
    int built = access(index, R_OK) == 0;
    const char *const kv[] = {"dir", hub->ui_dir, NULL};
    vigil__hub_log_fields(
        hub, built ? VIGIL_LOG_INFO : VIGIL_LOG_WARN,
        built ? "dashboard served at /" : "dashboard not built (make ui); / says so", kv);
    return VIGIL_OK;
}
