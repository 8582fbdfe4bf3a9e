/* The dashboard's files served by vigil-collector (collector.yaml `ui:`), a
 * real process over loopback, from a directory this test makes under its
 * temporary directory: content types, the security and cache headers,
 * ETag and 304, HEAD, every traversal attempt (raw and percent-encoded,
 * symbolic links out of the directory, a directory, a FIFO, a hidden file,
 * a file over ui.max_file) refused with its own status and message and
 * without the secret beside the directory, the page a hub without a built
 * dashboard answers at "/", and the API routes still needing their token
 * while files need none. Requests go over raw sockets: an HTTP client would
 * normalise the ".." segments this test must send. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "httptest.h"
#include "proctest.h"
#include "testutil.h"

#define READ_TOKEN "ui-static-read-token-0123456789"
#define SECRET     "TOP-SECRET-beside-the-dashboard"
#define CSP                                                                           \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " \
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"

/* ---- raw HTTP/1.1 -------------------------------------------------------------------- */

typedef struct resp {
    int status;
    char raw[65536];
    size_t len;
    const char *body; /* into raw */
    size_t body_len;
} resp;

/* Sends "METHOD PATH HTTP/1.1" with `extra` header lines (each ending in
 * \r\n, or NULL) and reads the whole answer (the server closes). */
static void rq(int port, const char *method, const char *path, const char *extra, resp *r)
{
    memset(r, 0, sizeof(*r));
    int fd = raw_connect(NULL, port);
    ck_assert_int_ge(fd, 0);
    char req[4096];
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n%s\r\n", method,
                     path, port, extra ? extra : "");
    ck_assert_int_lt(n, (int)sizeof(req));
    raw_send(fd, req, (size_t)n);
    int closed = 0;
    r->len = raw_recv(fd, r->raw, sizeof(r->raw), 10000, &closed);
    close(fd);
    ck_assert_msg(closed, "%s %s: the server did not close the connection", method, path);
    ck_assert_msg(sscanf(r->raw, "HTTP/1.1 %d ", &r->status) == 1, "%s %s: no status line: %s",
                  method, path, r->raw);
    const char *end = strstr(r->raw, "\r\n\r\n");
    ck_assert_ptr_nonnull(end);
    r->body = end + 4;
    r->body_len = r->len - (size_t)(r->body - r->raw);
}

/* The value of header `name` (case-insensitive) copied into out, or NULL. */
static const char *hdr(const resp *r, const char *name, char *out, size_t size)
{
    size_t nl = strlen(name);
    const char *p = strstr(r->raw, "\r\n");
    while (p && p + 2 < r->body) {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t k = strcspn(v, "\r\n");
            if (k >= size)
                k = size - 1;
            memcpy(out, v, k);
            out[k] = '\0';
            return out;
        }
        p = strstr(p, "\r\n");
    }
    return NULL;
}

static void expect_header(const resp *r, const char *name, const char *want)
{
    char v[512];
    const char *got = hdr(r, name, v, sizeof(v));
    ck_assert_msg(got != NULL, "no %s header in:\n%s", name, r->raw);
    ck_assert_msg(strcmp(got, want) == 0, "%s: \"%s\", expected \"%s\"", name, got, want);
}

static void expect_no_header(const resp *r, const char *name)
{
    char v[512];
    ck_assert_msg(hdr(r, name, v, sizeof(v)) == NULL, "unexpected %s header in:\n%s", name, r->raw);
}

/* The headers every answer of the dashboard carries. */
static void expect_security_headers(const resp *r)
{
    expect_header(r, "Content-Security-Policy", CSP);
    expect_header(r, "X-Content-Type-Options", "nosniff");
    expect_header(r, "Referrer-Policy", "no-referrer");
    expect_header(r, "X-Frame-Options", "DENY");
}

/* A refusal: the status, the JSON error with `code` and a message holding
 * `msg`, the security headers (but for the few paths the api itself refuses
 * before any route: bad escapes, NUL, invalid UTF-8), and never the secret. */
static void expect_refused_by(int port, const char *method, const char *path, int status,
                              const char *code, const char *msg, int by_api)
{
    resp r;
    rq(port, method, path, NULL, &r);
    ck_assert_msg(r.status == status, "%s %s: %d, expected %d:\n%s", method, path, r.status, status,
                  r.raw);
    char want[128];
    snprintf(want, sizeof(want), "{\"error\":{\"code\":\"%s\",\"message\":\"", code);
    ck_assert_msg(strncmp(r.body, want, strlen(want)) == 0, "%s %s: body %s", method, path, r.body);
    ck_assert_msg(strstr(r.body, msg) != NULL, "%s %s: body %s lacks \"%s\"", method, path, r.body,
                  msg);
    ck_assert_msg(strstr(r.raw, SECRET) == NULL, "%s %s: the secret leaked", method, path);
    expect_header(&r, "Content-Type", "application/json");
    if (by_api)
        expect_no_header(&r, "Content-Security-Policy");
    else
        expect_security_headers(&r);
}

static void expect_refused(int port, const char *method, const char *path, int status,
                           const char *code, const char *msg)
{
    expect_refused_by(port, method, path, status, code, msg, 0);
}

/* ---- the fixture: a directory and a hub serving it -------------------------------- */

static const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 0x0d,
                                    'I',  'H', 'D', 'R', 0,    0,    0,    1,    0, 0, 0, 1};

typedef struct fixture {
    char dir[512]; /* the hub's working directory */
    char www[600]; /* the dashboard's directory, <dir>/www */
    pt_proc hub;
} fixture;

static void put(const char *dir, const char *name, const void *data, size_t len)
{
    vt_write_file(dir, name, data, len);
}

static void make_www(fixture *f)
{
    snprintf(f->www, sizeof(f->www), "%s/www", f->dir);
    char p[PATH_MAX + 64];
    ck_assert_int_eq(mkdir(f->www, 0755), 0);
    snprintf(p, sizeof(p), "%s/sub", f->www);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/v1", f->www);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    put(f->dir, "secret.txt", SECRET, strlen(SECRET));
    put(f->www, "index.html", "<!doctype html><title>Vigil</title><p>dashboard", 47);
    put(f->www, "app.js", "export const answer = 42;\n", 26);
    put(f->www, "mod.mjs", "export default 1;\n", 18);
    put(f->www, "style.css", "body { margin: 0 }\n", 19);
    put(f->www, "logo.svg", "<svg xmlns=\"http://www.w3.org/2000/svg\"/>", 41);
    put(f->www, "logo.png", png, sizeof(png));
    put(f->www, "data.json", "{\"a\":1}", 7);
    put(f->www, "app.js.map", "{\"version\":3}", 13);
    put(f->www, "font.woff2", "wOF2\0\1\0\0", 8);
    put(f->www, "favicon.ico", "\0\0\1\0", 4);
    put(f->www, "blob.bin", "\1\2\3", 3);
    put(f->www, "LICENSE", "MIT", 3);
    put(f->www, "PAGE.HTML", "<p>upper", 8);
    put(f->www, ".env", "SECRET=" SECRET, 7 + strlen(SECRET));
    put(f->www, "metrics", "not the metrics", 15);
    put(f->www, "v1/query", "not the query route", 19);
    snprintf(p, sizeof(p), "%s/sub", f->www);
    put(p, "deep.js", "export const deep = true;\n", 26);
    char big[5000];
    memset(big, 'x', sizeof(big));
    put(f->www, "big.js", big, sizeof(big));
    /* links: one inside (served), two leading out (refused) */
    snprintf(p, sizeof(p), "%s/inside.js", f->www);
    ck_assert_int_eq(symlink("app.js", p), 0);
    snprintf(p, sizeof(p), "%s/out.txt", f->www);
    ck_assert_int_eq(symlink("../secret.txt", p), 0);
    char target[PATH_MAX + 32];
    snprintf(target, sizeof(target), "%s/secret.txt", f->dir);
    snprintf(p, sizeof(p), "%s/abs.txt", f->www);
    ck_assert_int_eq(symlink(target, p), 0);
    snprintf(p, sizeof(p), "%s/sub/up", f->www);
    ck_assert_int_eq(symlink("../..", p), 0);
    snprintf(p, sizeof(p), "%s/pipe", f->www);
    ck_assert_int_eq(mkfifo(p, 0644), 0);
}

/* Starts vigil-collector in a fresh directory with `ui` as its `ui:` block
 * (NULL: none) and the read token. */
static void start(fixture *f, const char *ui, int with_www)
{
    memset(f, 0, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "%s", vt_tmpdir());
    if (with_www)
        make_www(f);
    char cfg[2048];
    snprintf(cfg, sizeof(cfg),
             "listen: 127.0.0.1:0\n"
             "store: sqlite://./var/hub.db\n"
             "security: {tokens: [{name: dash, env: VT_UI_READ, scopes: [read]}]}\n"
             "%s%s\n",
             ui ? "ui: " : "", ui ? ui : "");
    put(f->dir, "collector.yaml", cfg, strlen(cfg));
    setenv("VT_UI_READ", READ_TOKEN, 1);
    char *args[] = {(char *)pt_bin_path("vigil-collector"), "--config", "collector.yaml", NULL};
    pt_start(&f->hub, "collector", args, f->dir, 1);
}

static void stop(fixture *f)
{
    ck_assert_int_eq(pt_stop(&f->hub), 0);
}

/* ---- the tests ---------------------------------------------------------------------- */

START_TEST(content_types_and_headers)
{
    fixture f;
    start(&f, "{dir: ./www, max_file: 4KiB}", 1);
    char *log = pt_slurp(f.hub.log);
    ck_assert_ptr_nonnull(strstr(log, "msg=\"dashboard served at /\" dir=./www"));
    free(log);
    static const struct {
        const char *path, *type, *body;
        size_t len;
    } files[] = {
        {"/", "text/html; charset=utf-8", "<!doctype html><title>Vigil</title><p>dashboard", 47},
        {"/index.html", "text/html; charset=utf-8",
         "<!doctype html><title>Vigil</title><p>dashboard", 47},
        {"/PAGE.HTML", "text/html; charset=utf-8", "<p>upper", 8},
        {"/app.js", "text/javascript; charset=utf-8", "export const answer = 42;\n", 26},
        {"/mod.mjs", "text/javascript; charset=utf-8", "export default 1;\n", 18},
        {"/style.css", "text/css; charset=utf-8", "body { margin: 0 }\n", 19},
        {"/logo.svg", "image/svg+xml", "<svg xmlns=\"http://www.w3.org/2000/svg\"/>", 41},
        {"/logo.png", "image/png", (const char *)png, sizeof(png)},
        {"/data.json", "application/json", "{\"a\":1}", 7},
        {"/app.js.map", "application/json", "{\"version\":3}", 13},
        {"/font.woff2", "font/woff2", "wOF2\0\1\0\0", 8},
        {"/favicon.ico", "image/x-icon", "\0\0\1\0", 4},
        {"/blob.bin", "application/octet-stream", "\1\2\3", 3},
        {"/LICENSE", "application/octet-stream", "MIT", 3},
        {"/sub/deep.js", "text/javascript; charset=utf-8", "export const deep = true;\n", 26},
        {"/inside.js", "text/javascript; charset=utf-8", "export const answer = 42;\n", 26},
        {"/app.js?v=123", "text/javascript; charset=utf-8", "export const answer = 42;\n", 26},
        {"/%61pp.js", "text/javascript; charset=utf-8", "export const answer = 42;\n", 26},
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        resp r;
        rq(f.hub.port, "GET", files[i].path, NULL, &r);
        ck_assert_msg(r.status == 200, "GET %s: %d\n%s", files[i].path, r.status, r.raw);
        expect_header(&r, "Content-Type", files[i].type);
        ck_assert_uint_eq(r.body_len, files[i].len);
        ck_assert_msg(memcmp(r.body, files[i].body, files[i].len) == 0, "GET %s: body %s",
                      files[i].path, r.body);
        char len[32];
        snprintf(len, sizeof(len), "%zu", files[i].len);
        expect_header(&r, "Content-Length", len);
        expect_security_headers(&r);
        char etag[128];
        ck_assert_ptr_nonnull(hdr(&r, "ETag", etag, sizeof(etag)));
        ck_assert_msg(etag[0] == '"' && etag[strlen(etag) - 1] == '"' && strlen(etag) > 8,
                      "ETag %s", etag);
        expect_header(&r, "Cache-Control",
                      strncmp(files[i].type, "text/html", 9) == 0 ? "no-cache"
                                                                  : "public, max-age=600");
    }
    stop(&f);
}
END_TEST

START_TEST(etag_and_304)
{
    fixture f;
    start(&f, "{dir: ./www}", 1);
    resp r;
    char etag[128], etag2[128], cond[512];
    rq(f.hub.port, "GET", "/app.js", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(hdr(&r, "ETag", etag, sizeof(etag)));
    /* the same file, the same tag; another file, another tag */
    rq(f.hub.port, "GET", "/app.js", NULL, &r);
    expect_header(&r, "ETag", etag);
    rq(f.hub.port, "GET", "/mod.mjs", NULL, &r);
    ck_assert_ptr_nonnull(hdr(&r, "ETag", etag2, sizeof(etag2)));
    ck_assert_str_ne(etag, etag2);
    /* a matching If-None-Match: 304, no body, the tag and the headers again */
    const char *forms[] = {"%s", "W/%s", "\"nope\", %s", "\"a\" ,W/%s , \"b\"", "*"};
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        char v[300];
        snprintf(v, sizeof(v), forms[i], etag);
        snprintf(cond, sizeof(cond), "If-None-Match: %s\r\n", v);
        rq(f.hub.port, "GET", "/app.js", cond, &r);
        ck_assert_msg(r.status == 304, "If-None-Match: %s gave %d", v, r.status);
        ck_assert_uint_eq(r.body_len, 0);
        expect_header(&r, "ETag", etag);
        expect_header(&r, "Cache-Control", "public, max-age=600");
        expect_no_header(&r, "Content-Type");
        expect_security_headers(&r);
    }
    snprintf(cond, sizeof(cond), "If-None-Match: %s\r\n", etag);
    rq(f.hub.port, "HEAD", "/app.js", cond, &r);
    ck_assert_int_eq(r.status, 304);
    /* another tag: the file */
    rq(f.hub.port, "GET", "/app.js", "If-None-Match: \"0-0-0\", W/\"x\"\r\n", &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(r.body_len, 26);
    /* index.html revalidates too */
    rq(f.hub.port, "GET", "/", NULL, &r);
    ck_assert_ptr_nonnull(hdr(&r, "ETag", etag2, sizeof(etag2)));
    snprintf(cond, sizeof(cond), "If-None-Match: %s\r\n", etag2);
    rq(f.hub.port, "GET", "/", cond, &r);
    ck_assert_int_eq(r.status, 304);
    expect_header(&r, "Cache-Control", "no-cache");
    /* a changed file has a new tag: the old one gets the new content */
    put(f.www, "app.js", "export const answer = 43; // new\n", 33);
    snprintf(cond, sizeof(cond), "If-None-Match: %s\r\n", etag);
    rq(f.hub.port, "GET", "/app.js", cond, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(r.body_len, 33);
    ck_assert(memcmp(r.body, "export const answer = 43; // new\n", 33) == 0);
    ck_assert_ptr_nonnull(hdr(&r, "ETag", etag2, sizeof(etag2)));
    ck_assert_str_ne(etag, etag2);
    stop(&f);
}
END_TEST

START_TEST(head_answers_without_a_body)
{
    fixture f;
    start(&f, "{dir: ./www}", 1);
    resp g, h;
    rq(f.hub.port, "GET", "/style.css", NULL, &g);
    rq(f.hub.port, "HEAD", "/style.css", NULL, &h);
    ck_assert_int_eq(h.status, 200);
    ck_assert_uint_eq(h.body_len, 0);
    expect_header(&h, "Content-Length", "19");
    expect_header(&h, "Content-Type", "text/css; charset=utf-8");
    char a[128], b[128];
    ck_assert_str_eq(hdr(&g, "ETag", a, sizeof(a)), hdr(&h, "ETag", b, sizeof(b)));
    expect_security_headers(&h);
    rq(f.hub.port, "HEAD", "/", NULL, &h);
    ck_assert_int_eq(h.status, 200);
    ck_assert_uint_eq(h.body_len, 0);
    expect_header(&h, "Content-Length", "47");
    rq(f.hub.port, "HEAD", "/nope.js", NULL, &h);
    ck_assert_int_eq(h.status, 404);
    ck_assert_uint_eq(h.body_len, 0);
    /* other methods on a file's path */
    rq(f.hub.port, "POST", "/index.html", "Content-Length: 0\r\n", &h);
    ck_assert_int_eq(h.status, 405);
    expect_header(&h, "Allow", "GET, HEAD");
    rq(f.hub.port, "DELETE", "/app.js", NULL, &h);
    ck_assert_int_eq(h.status, 405);
    ck_assert_ptr_nonnull(strstr(h.body, "method DELETE is not allowed on this route"));
    stop(&f);
}
END_TEST

START_TEST(traversal_is_refused)
{
    fixture f;
    start(&f, "{dir: ./www, max_file: 4KiB}", 1);
    int port = f.hub.port;
    /* raw and encoded escapes: refused before any file system call */
    static const char *const bad_400[][2] = {
        {"/../secret.txt", "a \\\".\\\" or \\\"..\\\" segment"},
        {"/sub/../../secret.txt", "a \\\".\\\" or \\\"..\\\" segment"},
        {"/sub/..", "a \\\".\\\" or \\\"..\\\" segment"},
        {"/./index.html", "a \\\".\\\" or \\\"..\\\" segment"},
        {"/%2e%2e/secret.txt", "an encoded '.', '/' or '\\\\'"},
        {"/%2E%2E/secret.txt", "an encoded '.', '/' or '\\\\'"},
        {"/.%2e/secret.txt", "an encoded '.', '/' or '\\\\'"},
        {"/..%2fsecret.txt", "an encoded '.', '/' or '\\\\'"},
        {"/sub%2f..%2f..%2fsecret.txt", "an encoded '.', '/' or '\\\\'"},
        {"/%5c..%5csecret.txt", "an encoded '.', '/' or '\\\\'"},
        {"/app%2ejs", "an encoded '.', '/' or '\\\\'"},
        {"/sub\\..\\..\\secret.txt", "path: a backslash"},
        {"//secret.txt", "path: an empty segment"},
        {"/sub//deep.js", "path: an empty segment"},
        {"/%01app.js", "path: a control character"},
        {"/app.js%7f", "path: a control character"},
    };
    for (size_t i = 0; i < sizeof(bad_400) / sizeof(bad_400[0]); i++)
        expect_refused(port, "GET", bad_400[i][0], 400, "invalid_request", bad_400[i][1]);
    /* what the api refuses for every path, before any route */
    static const char *const api_400[] = {"/app.js%zz", "/%00", "/..%00/secret.txt", "/%ff.js"};
    for (size_t i = 0; i < sizeof(api_400) / sizeof(api_400[0]); i++)
        expect_refused_by(port, "GET", api_400[i], 400, "invalid_request",
                          "path: bad percent-escape, NUL or invalid UTF-8", 1);
    resp r;
    rq(port, "HEAD", "/../secret.txt", NULL, &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_uint_eq(r.body_len, 0);
    expect_security_headers(&r);
    /* what the file system holds: links out, a directory, a FIFO, hidden, too big */
    expect_refused(port, "GET", "/out.txt", 403, "forbidden",
                   "the path leads out of the dashboard directory");
    expect_refused(port, "GET", "/abs.txt", 403, "forbidden",
                   "the path leads out of the dashboard directory");
    expect_refused(port, "GET", "/sub/up/secret.txt", 403, "forbidden",
                   "the path leads out of the dashboard directory");
    expect_refused(port, "GET", "/sub", 403, "forbidden", "a directory");
    expect_refused(port, "GET", "/sub/", 403, "forbidden", "a directory");
    expect_refused(port, "GET", "/pipe", 403, "forbidden", "not a regular file");
    expect_refused(port, "GET", "/.env", 403, "forbidden", "hidden files");
    expect_refused(port, "GET", "/sub/.x", 403, "forbidden", "hidden files");
    expect_refused(port, "GET", "/big.js", 403, "forbidden", "larger than ui.max_file");
    expect_refused(port, "GET", "/nope.js", 404, "not_found", "no such file");
    expect_refused(port, "GET", "/sub/nope/deeper.js", 404, "not_found", "no such file");
    expect_refused(port, "GET", "/app.js/", 404, "not_found", "no such file");
    expect_refused(port, "GET", "/app.js/x", 404, "not_found", "no such file");
    /* the hub is still well */
    rq(port, "GET", "/healthz", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    stop(&f);
}
END_TEST

START_TEST(api_routes_keep_their_token)
{
    fixture f;
    start(&f, "{dir: ./www}", 1);
    int port = f.hub.port;
    char auth[128];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", READ_TOKEN);
    resp r;
    /* files: no token */
    rq(port, "GET", "/", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    rq(port, "GET", "/app.js", "Authorization: Bearer wrong-token-wrong-token\r\n", &r);
    ck_assert_int_eq(r.status, 200);
    /* routes: their token, whatever file shares their path */
    static const char *const guarded[] = {"/metrics",       "/v1/query",   "/%76%31/query",
                                          "/v1/%71uery",    "/v1/series",  "/v1/decisions",
                                          "/v1/policies",   "/v1/actions", "/v1/agents",
                                          "/v1/query?x=..", NULL};
    for (size_t i = 0; guarded[i]; i++) {
        rq(port, "GET", guarded[i], NULL, &r);
        ck_assert_msg(r.status == 401, "GET %s without a token: %d", guarded[i], r.status);
        ck_assert_ptr_null(strstr(r.body, "not the"));
        expect_header(&r, "WWW-Authenticate", "Bearer realm=\"vigil\"");
        expect_no_header(&r, "Content-Security-Policy");
    }
    rq(port, "GET", "/metrics", auth, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(
        strstr(r.body, "vigil_http_requests_total{route=\"static\",code=\"200\"}"));
    rq(port, "GET", "/v1/query?name=cpu_usage", auth, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "{\"series\":["));
    /* nothing under /v1 is a file: an unknown route stays the api's 404, even encoded */
    static const char *const api_404[] = {
        "/v1", "/v1/", "/v1/index.html", "/v1/../index.html", "/%76%31/nope", NULL};
    for (size_t i = 0; api_404[i]; i++) {
        rq(port, "GET", api_404[i], NULL, &r);
        ck_assert_msg(r.status == 404, "GET %s: %d", api_404[i], r.status);
        ck_assert_msg(strstr(r.body, "\"no such route\"") != NULL, "GET %s: %s", api_404[i],
                      r.body);
    }
    rq(port, "GET", "/v1/nope", NULL, &r);
    ck_assert_str_eq(
        r.body, "{\"error\":{\"code\":\"not_found\",\"message\":\"no such route\",\"path\":\"\"}}");
    /* the unauthenticated routes stay theirs */
    rq(port, "GET", "/healthz", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"status\":\"ok\"}");
    rq(port, "POST", "/v1/ingest", "Content-Type: application/json\r\nContent-Length: 2\r\n", &r);
    ck_assert_int_eq(r.status, 401);
    stop(&f);
}
END_TEST

START_TEST(missing_dashboard_explains_itself)
{
    /* no directory at all */
    fixture f;
    start(&f, "{dir: ./ui/dist}", 0);
    char *log = pt_slurp(f.hub.log);
    ck_assert_ptr_nonnull(
        strstr(log, "level=warn component=hub msg=\"dashboard not built (make ui); / says so\" "
                    "dir=./ui/dist"));
    free(log);
    resp r;
    rq(f.hub.port, "GET", "/", NULL, &r);
    ck_assert_int_eq(r.status, 404);
    expect_header(&r, "Content-Type", "text/html; charset=utf-8");
    expect_header(&r, "Cache-Control", "no-store");
    expect_security_headers(&r);
    ck_assert_ptr_nonnull(strstr(r.body, "<h1>The Vigil dashboard is not built</h1>"));
    ck_assert_ptr_nonnull(strstr(r.body, "<code>make ui</code> builds it"));
    ck_assert_ptr_null(strstr(r.body, "<script"));
    ck_assert_ptr_null(strstr(r.body, "style="));
    rq(f.hub.port, "HEAD", "/", NULL, &r);
    ck_assert_int_eq(r.status, 404);
    ck_assert_uint_eq(r.body_len, 0);
    expect_header(&r, "Content-Type", "text/html; charset=utf-8");
    expect_refused(f.hub.port, "GET", "/app.js", 404, "not_found", "no such file");
    /* the hub runs: its routes answer */
    rq(f.hub.port, "GET", "/readyz", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    /* the directory appears (make ui while the hub runs): served at once */
    char p[PATH_MAX + 16];
    snprintf(p, sizeof(p), "%s/ui", f.dir);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/ui/dist", f.dir);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    /* a directory without index.html: still the page */
    put(p, "app.js", "1", 1);
    rq(f.hub.port, "GET", "/", NULL, &r);
    ck_assert_int_eq(r.status, 404);
    ck_assert_ptr_nonnull(strstr(r.body, "The Vigil dashboard is not built"));
    rq(f.hub.port, "GET", "/app.js", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    put(p, "index.html", "<p>built", 8);
    rq(f.hub.port, "GET", "/", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "<p>built");
    stop(&f);

    /* ui: {dir: ""}: no dashboard, the api's own 404 */
    start(&f, "{dir: \"\"}", 1);
    rq(f.hub.port, "GET", "/", NULL, &r);
    ck_assert_int_eq(r.status, 404);
    ck_assert_str_eq(
        r.body, "{\"error\":{\"code\":\"not_found\",\"message\":\"no such route\",\"path\":\"\"}}");
    expect_no_header(&r, "Content-Security-Policy");
    log = pt_slurp(f.hub.log);
    ck_assert_ptr_null(strstr(log, "dashboard"));
    free(log);
    stop(&f);
}
END_TEST

START_TEST(check_config_reports_a_bad_ui_block)
{
    char dir[512];
    snprintf(dir, sizeof(dir), "%s", vt_tmpdir());
    const char *cfg = "listen: 127.0.0.1:0\nui: {dir: ./www, max_file: 0}\n";
    put(dir, "bad.yaml", cfg, strlen(cfg));
    char *args[] = {(char *)pt_bin_path("vigil-collector"), "--config", "bad.yaml",
                    "--check-config", NULL};
    pt_proc p;
    pt_start(&p, "check", args, dir, 0);
    int st = pt_wait_exit(p.pid);
    char *log = pt_slurp(p.log);
    ck_assert_msg(st != 0, "exit %d: %s", st, log);
    ck_assert_msg(strstr(log, "bad.yaml:2:28: ui.max_file: expected a size from 1 byte to 1GiB"),
                  "%s", log);
    free(log);
}
END_TEST

static Suite *ui_static_suite(void)
{
    Suite *s = suite_create("ui_static");
    TCase *tc = tcase_create("daemon");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, content_types_and_headers);
    tcase_add_test(tc, etag_and_304);
    tcase_add_test(tc, head_answers_without_a_body);
    tcase_add_test(tc, traversal_is_refused);
    tcase_add_test(tc, api_routes_keep_their_token);
    tcase_add_test(tc, missing_dashboard_explains_itself);
    tcase_add_test(tc, check_config_reports_a_bad_ui_block);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ui_static_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
