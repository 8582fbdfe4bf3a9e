/* The GitOps runner in process, stepped with an injected monotonic clock,
 * against a real git repository (git CLI) in a temporary directory: the
 * desired state loaded from this host's sources (${HOSTNAME}), blobs
 * written, drift observed on its own interval, a new commit picked up, bad
 * commits (invalid YAML, unknown kind, duplicate name) reported with
 * file:line while the previous desired state stays, a failed fetch, the
 * adaptive interval, the routes (bearer token, webhook signature) and
 * gitopsd.yaml. */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/internal.h"
#include "crypto/crypto.h"
#include "gittest.h"
#include "testutil.h"
#include "vigil/vigil.h"

#define HOST "web-01"

static int64_t g_mono = 1000000;

static int64_t mono(void *p)
{
    (void)p;
    return g_mono;
}

static uint64_t half(void *p)
{
    (void)p;
    return UINT64_C(1) << 63; /* no jitter */
}

typedef struct fx {
    const char *dir;
    char repo[512];
    char managed[512];
    char wd[512];
    char head[41];
    vigil_gitsync *gs;
    vigil_gitops *ops;
    vigil_logger quiet;
} fx;

static void commit_all(fx *f, const char *msg)
{
    GIT(f->repo, "add", "-A");
    GIT(f->repo, "commit", "-q", "-m", msg);
    GIT_OUT(f->repo, f->head, "rev-parse", "HEAD");
}

static void write_in(const char *root, const char *rel, const char *text)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')); p++) {
        *p = '\0';
        mkdir(path, 0755);
        *p = '/';
    }
    FILE *fp = fopen(path, "w");
    ck_assert_ptr_nonnull(fp);
    fputs(text, fp);
    fclose(fp);
}

static void motd_manifest(fx *f, const char *content)
{
    char text[2048];
    snprintf(text, sizeof(text),
             "apiVersion: vigil/v1\n"
             "kind: File\n"
             "metadata:\n"
             "  name: motd\n"
             "  labels: {tier: web}\n"
             "spec:\n"
             "  path: %s/motd\n"
             "  content: \"%s\"\n"
             "  selfHeal: true\n",
             f->managed, content);
    write_in(f->repo, "common/motd.yaml", text);
}

static void setup(fx *f)
{
    memset(f, 0, sizeof(*f));
    f->dir = vt_tmpdir();
    snprintf(f->repo, sizeof(f->repo), "%s/repo", f->dir);
    snprintf(f->managed, sizeof(f->managed), "%s/managed", f->dir);
    snprintf(f->wd, sizeof(f->wd), "%s/wd", f->dir);
    ck_assert_int_eq(mkdir(f->repo, 0755), 0);
    ck_assert_int_eq(mkdir(f->managed, 0755), 0);
    GIT(f->repo, "init", "-q");
    motd_manifest(f, "hello\\n");
    char text[1024];
    snprintf(text, sizeof(text),
             "apiVersion: vigil/v1\nkind: File\nmetadata: {name: issue}\n"
             "spec: {path: %s/issue, content: \"x\\n\"}\n",
             f->managed);
    write_in(f->repo, "hosts/" HOST "/issue.yaml", text);
    /* another host's directory is not this host's */
    write_in(f->repo, "hosts/web-02/other.yaml",
             "apiVersion: vigil/v1\nkind: File\nmetadata: {name: other}\n"
             "spec: {path: /tmp/never, content: \"y\"}\n");
    commit_all(f, "first");

    f->quiet.min_level = VIGIL_LOG_ERROR;
    vigil_gitsync_options so = VIGIL_GITSYNC_OPTIONS_INIT;
    so.url = f->repo;
    so.ref = "main";
    so.workdir = f->wd;
    so.logger = &f->quiet;
    ck_assert_int_eq(vigil_gitsync_new(&f->gs, &so), VIGIL_OK);
}

static void open_ops(fx *f, const char *secret_env)
{
    static const char *const sources[] = {"common", "hosts/${HOSTNAME}", NULL};
    char blobs[PATH_MAX];
    snprintf(blobs, sizeof(blobs), "%s/blobs", f->wd);
    vigil_gitops_options o = VIGIL_GITOPS_OPTIONS_INIT;
    o.gitsync = f->gs;
    o.host = HOST;
    o.sources = sources;
    o.blobs_dir = blobs;
    o.sync_min_interval_ms = 10000;
    o.sync_max_interval_ms = 40000;
    o.sync_jitter = 0.2;
    o.observe_interval_ms = 1000;
    o.monotonic = mono;
    o.random = half;
    o.webhook_secret_env = secret_env;
    o.logger = f->quiet;
    int rc = vigil_gitops_new(&f->ops, &o);
    ck_assert_msg(rc == VIGIL_OK, "gitops: %s", vigil_error_last()->message);
}

static void teardown(fx *f)
{
    vigil_gitops_free(f->ops);
    vigil_gitsync_free(f->gs);
}

/* The status as text (static buffer). */
static const char *status(fx *f)
{
    static char text[8192];
    vigil_buf b = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil_gitops_status_json(f->ops, &b), VIGIL_OK);
    snprintf(text, sizeof(text), "%s", b.ptr);
    vigil_buf_dispose(&b);
    return text;
}

#define assert_has(hay, needle) \
    ck_assert_msg(strstr((hay), (needle)) != NULL, "\"%s\" lacks \"%s\"", (hay), (needle))

static int64_t step(fx *f)
{
    int64_t next = 0;
    ck_assert_int_eq(vigil_gitops_step(f->ops, &next), VIGIL_OK);
    return next;
}

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

START_TEST(test_sync_load_observe)
{
    fx f;
    setup(&f);
    open_ops(&f, NULL);
    assert_has(status(&f), "\"commit\":\"\",\"checkout\":\"\"");
    assert_has(status(&f), "\"sync\":{\"count\":0,\"last\":0,\"result\":\"none\"");

    /* the first step syncs at once, loads and observes */
    int64_t next = step(&f);
    char want[256];
    snprintf(want, sizeof(want), "\"host\":\"" HOST "\",\"commit\":\"%s\",\"checkout\":\"%s\"",
             f.head, f.head);
    assert_has(status(&f), want);
    assert_has(status(&f), "\"resources\":2,\"policies\":0");
    assert_has(status(&f), "\"count\":1,");
    assert_has(status(&f), "\"result\":\"ok\"");
    assert_has(status(&f), "\"errors\":[]");
    /* both files are missing: drift */
    assert_has(status(&f), "\"drift\":{\"observed\":");
    assert_has(status(&f), "\"items\":2,\"drifted\":2,\"errors\":0");
    assert_has(status(&f), "\"hub\":{\"url\":null,\"last\":0,\"result\":\"disabled\"");
    /* the next deadline is the observe tick (1 s), before the sync (10 s) */
    ck_assert_int_eq(next, g_mono + 1000);
    /* the blobs of both files */
    char blobs[PATH_MAX];
    snprintf(blobs, sizeof(blobs), "%s/blobs", f.wd);
    ck_assert_int_eq(count_files(blobs), 2);

    /* the file appears with the desired bytes: one drift left */
    vt_write_file(f.managed, "motd", "hello\n", 6);
    g_mono += 1000;
    next = step(&f);
    assert_has(status(&f), "\"items\":2,\"drifted\":1,\"errors\":0");
    ck_assert_int_eq(next, g_mono + 1000);
    assert_has(status(&f), "\"count\":1,"); /* no sync yet */

    /* a hand edit is seen at the next observe tick */
    vt_write_file(f.managed, "motd", "edited\n", 7);
    vt_write_file(f.managed, "issue", "x\n", 2);
    g_mono += 999;
    step(&f);
    assert_has(status(&f), "\"drifted\":1,"); /* not due yet */
    g_mono += 1;
    step(&f);
    assert_has(status(&f), "\"drifted\":1,");
    vt_write_file(f.managed, "motd", "hello\n", 6);
    g_mono += 1000;
    step(&f);
    assert_has(status(&f), "\"items\":2,\"drifted\":0,\"errors\":0");

    /* the sync deadline: nothing new, the interval doubles (10 s -> 20 s) */
    assert_has(status(&f), "\"interval\":10000");
    g_mono += 7000;
    step(&f);
    assert_has(status(&f), "\"count\":2,");
    assert_has(status(&f), "\"interval\":20000");

    /* a new commit, on demand */
    motd_manifest(&f, "hello again\\n");
    commit_all(&f, "second");
    vigil_gitops_request_sync(f.ops);
    step(&f);
    snprintf(want, sizeof(want), "\"commit\":\"%s\"", f.head);
    assert_has(status(&f), want);
    assert_has(status(&f), "\"count\":3,");
    assert_has(status(&f), "\"interval\":10000"); /* back to the minimum */
    assert_has(status(&f), "\"drifted\":1,");     /* observed at once */
    ck_assert_int_eq(count_files(blobs), 3);
    teardown(&f);
}
END_TEST

/* Commits `text` as common/motd.yaml, syncs, and checks the status reports
 * it invalid at `where` ("file\",\"line\":N") while `good` stays. */
static void bad_commit(fx *f, const char *rel, const char *text, const char *where, const char *msg,
                       const char *good)
{
    write_in(f->repo, rel, text);
    commit_all(f, "bad");
    vigil_gitops_request_sync(f->ops);
    step(f);
    const char *s = status(f);
    char want[256];
    snprintf(want, sizeof(want), "\"commit\":\"%s\",\"checkout\":\"%s\"", good, f->head);
    assert_has(s, want);
    snprintf(want, sizeof(want), "\"result\":\"invalid\",\"commit\":\"%s\"", f->head);
    assert_has(s, want);
    assert_has(s, where);
    assert_has(s, msg);
    assert_has(s, "\"resources\":2,");
    /* the same commit again: still invalid, nothing loaded */
    vigil_gitops_request_sync(f->ops);
    step(f);
    assert_has(status(f), "\"result\":\"invalid\"");
}

START_TEST(test_bad_commits)
{
    fx f;
    setup(&f);
    open_ops(&f, NULL);
    step(&f);
    char good[41];
    memcpy(good, f.head, sizeof(good));
    assert_has(status(&f), "\"result\":\"ok\"");

    bad_commit(&f, "common/motd.yaml", "apiVersion: vigil/v1\nkind: File\nmetadata: {name: [\n",
               "\"errors\":[{\"file\":\"common/motd.yaml\",\"line\":", "", good);
    GIT(f.repo, "reset", "-q", "--hard", good);

    bad_commit(&f, "common/bogus.yaml",
               "apiVersion: vigil/v1\nkind: Bogus\nmetadata: {name: b}\nspec: {}\n",
               "\"errors\":[{\"file\":\"common/bogus.yaml\",\"line\":2,", "Bogus", good);
    GIT(f.repo, "reset", "-q", "--hard", good);

    char dup[1024];
    snprintf(dup, sizeof(dup),
             "apiVersion: vigil/v1\nkind: File\nmetadata: {name: motd}\n"
             "spec: {path: %s/x, content: \"x\"}\n",
             f.managed);
    bad_commit(&f, "hosts/" HOST "/dup.yaml", dup,
               "\"errors\":[{\"file\":\"hosts/" HOST "/dup.yaml\",\"line\":", "motd", good);
    GIT(f.repo, "reset", "-q", "--hard", good);

    /* back to a valid commit (the first one again) */
    vigil_gitops_request_sync(f.ops);
    step(&f);
    char want[128];
    snprintf(want, sizeof(want), "\"commit\":\"%s\",\"checkout\":\"%s\"", good, good);
    assert_has(status(&f), want);
    assert_has(status(&f), "\"result\":\"ok\"");
    assert_has(status(&f), "\"errors\":[]");

    /* the source goes away: an error, the desired state stays */
    char moved[PATH_MAX];
    snprintf(moved, sizeof(moved), "%s/moved", f.dir);
    ck_assert_int_eq(rename(f.repo, moved), 0);
    vigil_gitops_request_sync(f.ops);
    step(&f);
    assert_has(status(&f), "\"result\":\"error\"");
    assert_has(status(&f), "no repository there");
    assert_has(status(&f), want);
    assert_has(status(&f), "\"resources\":2,");
    teardown(&f);
}
END_TEST

static int route_typed(vigil_api *api, const char *method, const char *path,
                       const char *content_type, const char *auth_name, const char *auth_value,
                       const char *body, char *out, size_t out_len)
{
    vigil_http_header hs[2] = {{"Content-Type", content_type}, {auth_name, auth_value}};
    vigil_api_request req = VIGIL_API_REQUEST_INIT;
    req.method = method;
    req.path = path;
    req.headers = hs;
    req.nheaders = auth_name ? 2 : 1;
    req.body = body;
    req.body_len = body ? strlen(body) : 0;
    vigil_api_response *resp = NULL;
    ck_assert_int_eq(vigil_api_response_new(&resp), VIGIL_OK);
    ck_assert_int_eq(vigil_api_handle(api, &req, resp), VIGIL_OK);
    int st = vigil_api_response_status(resp);
    size_t n = 0;
    const char *b = vigil_api_response_body(resp, &n);
    snprintf(out, out_len, "%.*s", (int)n, b ? b : "");
    vigil_api_response_free(resp);
    return st;
}

static int route(vigil_api *api, const char *method, const char *path, const char *auth_name,
                 const char *auth_value, const char *body, char *out, size_t out_len)
{
    return route_typed(api, method, path, "application/json", auth_name, auth_value, body, out,
                       out_len);
}

/* What a server's check of the headers alone (before reading the body)
 * decides: 0 when the body may be read, else the status of the answer. */
static int precheck_typed(vigil_api *api, const char *type, const char *name, const char *value)
{
    vigil_http_header hs[2] = {{"Content-Type", type}, {name, value}};
    vigil_api_request req = VIGIL_API_REQUEST_INIT;
    req.method = "POST";
    req.path = "/v1/sync";
    req.headers = hs;
    req.nheaders = name ? 2 : 1;
    req.remote_addr = "127.0.0.1";
    vigil_api_response *resp = NULL;
    ck_assert_int_eq(vigil_api_response_new(&resp), VIGIL_OK);
    int st = vigil__api_precheck(api, &req, resp) ? vigil_api_response_status(resp) : 0;
    vigil_api_response_free(resp);
    return st;
}

static int precheck(vigil_api *api, const char *name, const char *value)
{
    return precheck_typed(api, "application/json", name, value);
}

START_TEST(test_routes)
{
    setenv("GITOPS_TEST_WRITE", "write-token-0123456789", 1);
    setenv("GITOPS_TEST_READ", "read-token-0123456789", 1);
    setenv("GITOPS_TEST_HOOK", "hook-secret", 1);
    fx f;
    setup(&f);
    open_ops(&f, "GITOPS_TEST_HOOK");
    vigil_api_token toks[] = {{"writer", "GITOPS_TEST_WRITE", NULL, VIGIL_API_SCOPE_WRITE},
                              {"reader", "GITOPS_TEST_READ", NULL, VIGIL_API_SCOPE_READ}};
    vigil_api_options ao = VIGIL_API_OPTIONS_INIT;
    ao.tokens = toks;
    ao.ntokens = 2;
    ao.logger = f.quiet;
    vigil_api *api = NULL;
    ck_assert_int_eq(vigil_api_new(&api, &ao), VIGIL_OK);
    ck_assert_int_eq(vigil_gitops_mount(f.ops, api), VIGIL_OK);
    ck_assert_int_eq(vigil_gitops_mount(f.ops, api), VIGIL_EEXISTS);
    step(&f);

    char body[8192];
    ck_assert_int_eq(route(api, "GET", "/v1/status", "Authorization",
                           "Bearer read-token-0123456789", NULL, body, sizeof(body)),
                     200);
    char want[128];
    snprintf(want, sizeof(want), "\"commit\":\"%s\"", f.head);
    assert_has(body, want);
    ck_assert_int_eq(route(api, "GET", "/v1/status", NULL, NULL, NULL, body, sizeof(body)), 401);

    /* POST /v1/sync: write scope */
    ck_assert_int_eq(route(api, "POST", "/v1/sync", "Authorization", "Bearer read-token-0123456789",
                           "{}", body, sizeof(body)),
                     403);
    ck_assert_int_eq(route(api, "POST", "/v1/sync", NULL, NULL, "{}", body, sizeof(body)), 401);
    ck_assert_int_eq(route(api, "POST", "/v1/sync", "Authorization",
                           "Bearer write-token-0123456789", "{}", body, sizeof(body)),
                     202);
    ck_assert_str_eq(body, "{\"requested\":true}");
    /* requested: the next step syncs although its deadline is 10 s away */
    assert_has(status(&f), "\"count\":1,");
    step(&f);
    assert_has(status(&f), "\"count\":2,");

    /* a webhook signature over the raw body */
    const char *push = "{\"ref\":\"refs/heads/main\"}";
    unsigned char mac[32];
    ck_assert_int_eq(vigil__crypto_hmac_sha256(mac, "hook-secret", 11, push, strlen(push)),
                     VIGIL_OK);
    char sig[80] = "sha256=";
    for (int i = 0; i < 32; i++)
        snprintf(sig + 7 + 2 * i, 3, "%02x", mac[i]);
    ck_assert_int_eq(
        route(api, "POST", "/v1/sync", "X-Hub-Signature-256", sig, push, body, sizeof(body)), 202);
    step(&f);
    assert_has(status(&f), "\"count\":3,");
    /* GitHub's default webhook Content-Type: the signature is the defence, not the type */
    const char *form = "payload=%7B%22ref%22%3A%22refs%2Fheads%2Fmain%22%7D";
    ck_assert_int_eq(vigil__crypto_hmac_sha256(mac, "hook-secret", 11, form, strlen(form)),
                     VIGIL_OK);
    char fsig[80] = "sha256=";
    for (int i = 0; i < 32; i++)
        snprintf(fsig + 7 + 2 * i, 3, "%02x", mac[i]);
    ck_assert_int_eq(route_typed(api, "POST", "/v1/sync", "application/x-www-form-urlencoded",
                                 "X-Hub-Signature-256", fsig, form, body, sizeof(body)),
                     202);
    step(&f);
    assert_has(status(&f), "\"count\":4,");
    /* ... but a token alone with that type is still refused (cross-site defence) */
    ck_assert_int_eq(route_typed(api, "POST", "/v1/sync", "application/x-www-form-urlencoded",
                                 "Authorization", "Bearer write-token-0123456789", form, body,
                                 sizeof(body)),
                     415);
    /* a server checks the headers before the body: a well-formed signature
     * lets the body be read (it is verified with it, above); none, or a
     * malformed one, leaves the token check, 401 before the upload */
    ck_assert_int_eq(precheck(api, "X-Hub-Signature-256", sig), 0);
    ck_assert_int_eq(precheck(api, NULL, NULL), 401);
    ck_assert_int_eq(precheck(api, "X-Hub-Signature-256", "sha256=zz"), 401);
    ck_assert_int_eq(precheck(api, "Authorization", "Bearer write-token-0123456789"), 0);
    /* a signed push with GitHub's default type passes the header check too (the
     * signature, verified with the body, is the defence) */
    ck_assert_int_eq(
        precheck_typed(api, "application/x-www-form-urlencoded", "X-Hub-Signature-256", fsig), 0);
    /* the same signature over another body, a malformed one, a wrong prefix */
    ck_assert_int_eq(
        route(api, "POST", "/v1/sync", "X-Hub-Signature-256", sig, "{\"x\":1}", body, sizeof(body)),
        401);
    sig[20] = sig[20] == 'a' ? 'b' : 'a';
    ck_assert_int_eq(
        route(api, "POST", "/v1/sync", "X-Hub-Signature-256", sig, push, body, sizeof(body)), 401);
    ck_assert_int_eq(route(api, "POST", "/v1/sync", "X-Hub-Signature-256", "sha256=zz", push, body,
                           sizeof(body)),
                     401);
    ck_assert_int_eq(
        route(api, "POST", "/v1/sync", "X-Hub-Signature-256", sig + 7, push, body, sizeof(body)),
        401);
    step(&f);
    assert_has(status(&f), "\"count\":4,");
    vigil_api_free(api);
    teardown(&f);
}
END_TEST

START_TEST(test_thread)
{
    fx f;
    setup(&f);
    g_mono = 0;
    static const char *const sources[] = {"common", NULL};
    vigil_gitops_options o = VIGIL_GITOPS_OPTIONS_INIT;
    o.gitsync = f.gs;
    o.host = HOST;
    o.sources = sources;
    o.observe_interval_ms = 100;
    o.logger = f.quiet;
    ck_assert_int_eq(vigil_gitops_new(&f.ops, &o), VIGIL_OK);
    ck_assert_int_eq(vigil_gitops_start(f.ops), VIGIL_OK);
    ck_assert_int_eq(vigil_gitops_start(f.ops), VIGIL_EBUSY);
    ck_assert_int_eq(vigil_gitops_step(f.ops, NULL), VIGIL_EBUSY);
    /* the thread syncs at once and observes every 100 ms */
    int ok = 0;
    for (int i = 0; i < 500 && !ok; i++) {
        ok = strstr(status(&f), "\"resources\":1,") && strstr(status(&f), "\"drifted\":1,");
        if (!ok)
            usleep(10000);
    }
    ck_assert_msg(ok, "status: %s", status(&f));
    vt_write_file(f.managed, "motd", "hello\n", 6);
    ok = 0;
    for (int i = 0; i < 500 && !ok; i++) {
        ok = strstr(status(&f), "\"drifted\":0,") != NULL;
        if (!ok)
            usleep(10000);
    }
    ck_assert_msg(ok, "status: %s", status(&f));
    /* a requested sync wakes it */
    motd_manifest(&f, "v2\\n");
    commit_all(&f, "v2");
    vigil_gitops_request_sync(f.ops);
    char want[64];
    snprintf(want, sizeof(want), "\"commit\":\"%s\"", f.head);
    ok = 0;
    for (int i = 0; i < 500 && !ok; i++) {
        ok = strstr(status(&f), want) != NULL;
        if (!ok)
            usleep(10000);
    }
    ck_assert_msg(ok, "status: %s", status(&f));
    vigil_gitops_stop(f.ops);
    vigil_gitops_stop(f.ops);
    ck_assert_int_eq(vigil_gitops_step(f.ops, NULL), VIGIL_OK);
    teardown(&f);
}
END_TEST

START_TEST(test_inotify)
{
    fx f;
    setup(&f);
    open_ops(&f, NULL); /* observe every 1 s of the injected clock */
    step(&f);
    assert_has(status(&f), "\"items\":2,\"drifted\":2,");
    /* a managed file changes: observed 100 ms after the last observation,
     * not at the next tick */
    vt_write_file(f.managed, "motd", "hello\n", 6);
    g_mono += 99;
    step(&f);
    assert_has(status(&f), "\"drifted\":2,");
    g_mono += 1;
    int64_t next = step(&f);
    assert_has(status(&f), "\"items\":2,\"drifted\":1,");
    ck_assert_int_eq(next, g_mono + 1000);
    /* another file of that directory is no managed file: no early observation */
    int64_t due = next;
    vt_write_file(f.managed, "unrelated", "x", 1);
    g_mono += 100;
    ck_assert_int_eq(step(&f), due);
    /* a hand edit of a managed one is */
    vt_write_file(f.managed, "motd", "edited\n", 7);
    g_mono += 100;
    ck_assert_int_eq(step(&f), g_mono + 1000);
    assert_has(status(&f), "\"drifted\":2,");
    teardown(&f);

    /* the thread: a long interval, yet a change is seen at once */
    setup(&f);
    vigil_gitops_options o = VIGIL_GITOPS_OPTIONS_INIT;
    static const char *const sources[] = {"common", NULL};
    o.gitsync = f.gs;
    o.host = HOST;
    o.sources = sources;
    o.observe_interval_ms = 3600000;
    o.logger = f.quiet;
    ck_assert_int_eq(vigil_gitops_new(&f.ops, &o), VIGIL_OK);
    ck_assert_int_eq(vigil_gitops_start(f.ops), VIGIL_OK);
    int ok = 0;
    for (int i = 0; i < 1000 && !ok; i++) {
        ok = strstr(status(&f), "\"items\":1,\"drifted\":1,") != NULL;
        if (!ok)
            usleep(10000);
    }
    ck_assert_msg(ok, "status: %s", status(&f));
    vt_write_file(f.managed, "motd", "hello\n", 6);
    ok = 0;
    for (int i = 0; i < 1000 && !ok; i++) {
        ok = strstr(status(&f), "\"items\":1,\"drifted\":0,") != NULL;
        if (!ok)
            usleep(10000);
    }
    ck_assert_msg(ok, "status: %s", status(&f));
    vigil_gitops_stop(f.ops);
    teardown(&f);
}
END_TEST

START_TEST(test_bad_options)
{
    fx f;
    setup(&f);
    vigil_gitops_options o = VIGIL_GITOPS_OPTIONS_INIT;
    vigil_gitops *ops = NULL;
    ck_assert_int_eq(vigil_gitops_new(NULL, &o), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_gitops_new(&ops, NULL), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_gitops_new(&ops, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "a gitsync is required");
    o.gitsync = f.gs;
    o.host = "a/b";
    ck_assert_int_eq(vigil_gitops_new(&ops, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "host \"a/b\" is empty or holds '/'");
    o.host = HOST;
    const char *abs[] = {"/etc", NULL};
    o.sources = abs;
    ck_assert_int_eq(vigil_gitops_new(&ops, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "manifests source \"/etc\" is absolute");
    const char *up[] = {"hosts/../../x", NULL};
    o.sources = up;
    ck_assert_int_eq(vigil_gitops_new(&ops, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "leaves the checkout");
    const char *empty[] = {"${HOSTNAME}/..", NULL};
    o.sources = empty;
    ck_assert_int_eq(vigil_gitops_new(&ops, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "\"web-01/..\" leaves the checkout");
    o.sources = NULL;
    o.hub_url = "ftp://x";
    ck_assert_int_eq(vigil_gitops_new(&ops, &o), VIGIL_EUNSUPPORTED);
    o.hub_url = "http://127.0.0.1:1";
    o.hub_token_env = "GITOPS_TEST_UNSET_VARIABLE";
    unsetenv("GITOPS_TEST_UNSET_VARIABLE");
    ck_assert_int_eq(vigil_gitops_new(&ops, &o), VIGIL_EENV);
    vt_assert_error(VIGIL_EENV, "GITOPS_TEST_UNSET_VARIABLE is not set");
    o.hub_token_env = NULL;
    o.sync_min_interval_ms = 5000;
    o.sync_max_interval_ms = 1000;
    ck_assert_int_eq(vigil_gitops_new(&ops, &o), VIGIL_ERANGE);
    vt_assert_error(VIGIL_ERANGE, "gitops: gitsync schedule: max_interval");
    o.sync_max_interval_ms = 0;
    o.sync_min_interval_ms = 0;
    o.version = 9;
    ck_assert_int_eq(vigil_gitops_new(&ops, &o), VIGIL_EVERSION);
    ck_assert_ptr_null(ops);
    ck_assert_int_eq(vigil_gitops_options_init(&o, 1), VIGIL_OK);
    ck_assert_int_eq(vigil_gitops_options_init(NULL, 1), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_gitops_step(NULL, NULL), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_gitops_start(NULL), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_gitops_mount(NULL, NULL), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_gitops_status_json(NULL, NULL), VIGIL_EINVAL);
    vigil_gitops_request_sync(NULL);
    vigil_gitops_stop(NULL);
    vigil_gitops_free(NULL);
    teardown(&f);
}
END_TEST

/* A closed loopback port (bound then released): connections are refused. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

START_TEST(test_hub_unreachable)
{
    setenv("GITOPS_TEST_HUB", "hub-token-never-logged", 1);
    fx f;
    setup(&f);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", closed_port());
    vigil_gitops_options o = VIGIL_GITOPS_OPTIONS_INIT;
    o.gitsync = f.gs;
    o.host = HOST;
    o.hub_url = url;
    o.hub_token_env = "GITOPS_TEST_HUB";
    o.hub_timeout_ms = 2000;
    o.observe_interval_ms = 1000;
    o.monotonic = mono;
    o.logger = f.quiet;
    ck_assert_int_eq(vigil_gitops_new(&f.ops, &o), VIGIL_OK);
    step(&f);
    /* loaded and observed although nothing could be published */
    char want[128];
    snprintf(want, sizeof(want), "\"commit\":\"%s\",\"checkout\"", f.head);
    const char *s = status(&f);
    assert_has(s, want);
    assert_has(s, "\"result\":\"ok\"");
    assert_has(s, "\"hub\":{\"url\":\"http://127.0.0.1:");
    assert_has(s, "\"result\":\"error\",\"error\":\"hub ");
    ck_assert_ptr_null(strstr(s, "hub-token-never-logged"));
    /* the drift is counted locally; the publication is retried at each observe tick */
    assert_has(s, "\"items\":3,\"drifted\":3,"); /* no sources: the whole checkout */
    int64_t last = 0;
    const char *at = strstr(s, "\"hub\":{");
    ck_assert_ptr_nonnull(at);
    at = strstr(at, "\"last\":");
    last = atoll(at + 7);
    ck_assert_int_gt(last, 0);
    g_mono += 1000;
    usleep(2000); /* the wall clock of "last" moves */
    step(&f);
    at = strstr(strstr(status(&f), "\"hub\":{"), "\"last\":");
    ck_assert_int_gt(atoll(at + 7), last);
    teardown(&f);
}
END_TEST

typedef struct oom_ctx {
    vigil_gitsync *gs;
    vigil_gitops *ops;
} oom_ctx;

static int oom_new(void *p)
{
    oom_ctx *c = p;
    static const char *const sources[] = {"common", "hosts/${HOSTNAME}", NULL};
    vigil_gitops_options o = VIGIL_GITOPS_OPTIONS_INIT;
    o.gitsync = c->gs;
    o.host = HOST;
    o.sources = sources;
    o.blobs_dir = "/tmp/blobs";
    o.webhook_secret_env = "GITOPS_TEST_HOOK";
    return vigil_gitops_new(&c->ops, &o);
}

static void oom_free(void *p)
{
    oom_ctx *c = p;
    vigil_gitops_free(c->ops);
    c->ops = NULL;
}

START_TEST(test_new_oom)
{
    setenv("GITOPS_TEST_HOOK", "hook-secret", 1);
    vt_alloc_install(); /* before anything is allocated */
    fx f;
    setup(&f);
    oom_ctx c = {f.gs, NULL};
    ck_assert_int_gt(vt_oom_sweep(oom_new, oom_free, &c, 0), 5);
    teardown(&f);
}
END_TEST

/* ---- gitopsd.yaml ------------------------------------------------------------------ */

static int load_cfg(vigil_gitops_config **c, const char *text)
{
    return vigil_gitops_config_load_string(c, text, strlen(text), "gitopsd.yaml", NULL);
}

START_TEST(test_config)
{
    setenv("GITOPS_TEST_HUB", "hub-token", 1);
    setenv("GITOPS_TEST_HOOK", "hook-secret", 1);
    vigil_gitops_config *c = NULL;
    const char *full = "listen: 127.0.0.1:0\n"
                       "host: web-01\n"
                       "repo: {url: https://git.example.com/ops.git, ref: v1, username: bot,\n"
                       "       workdir: /var/lib/gitops, keep: 3}\n"
                       "manifests:\n"
                       "  sources: [common, \"hosts/${HOSTNAME}\"]\n"
                       "  limits: {max_file_size: 1MiB, max_resources: 500, max_depth: 8}\n"
                       "sync: {min_interval: 10s, max_interval: 2m, jitter: 0.2}\n"
                       "observe: {interval: 2s}\n"
                       "hub: {url: http://127.0.0.1:7600, token_env: GITOPS_TEST_HUB, "
                       "timeout: 3s}\n"
                       "webhook: {secret_env: GITOPS_TEST_HOOK}\n"
                       "log: {level: warn}\n";
    int rc = load_cfg(&c, full);
    ck_assert_msg(rc == VIGIL_OK, "%s", vigil_error_last()->message);
    const vigil_gitops_options *o = vigil_gitops_config_options(c);
    ck_assert_str_eq(o->host, "web-01");
    ck_assert_str_eq(o->sources[0], "common");
    ck_assert_str_eq(o->sources[1], "hosts/${HOSTNAME}");
    ck_assert_ptr_null(o->sources[2]);
    ck_assert_str_eq(o->blobs_dir, "/var/lib/gitops/blobs");
    ck_assert_int_eq(o->sync_min_interval_ms, 10000);
    ck_assert_int_eq(o->sync_max_interval_ms, 120000);
    ck_assert(o->sync_jitter > 0.19 && o->sync_jitter < 0.21);
    ck_assert_int_eq(o->observe_interval_ms, 2000);
    ck_assert_str_eq(o->hub_url, "http://127.0.0.1:7600");
    ck_assert_str_eq(o->hub_token_env, "GITOPS_TEST_HUB");
    ck_assert_int_eq(o->hub_timeout_ms, 3000);
    ck_assert_str_eq(o->webhook_secret_env, "GITOPS_TEST_HOOK");
    ck_assert_uint_eq(o->manifest->max_file_size, 1024 * 1024);
    ck_assert_uint_eq(o->manifest->max_resources, 500);
    ck_assert_uint_eq(o->manifest->max_depth, 8);
    const vigil_gitsync_options *g = vigil_gitops_config_gitsync(c);
    ck_assert_str_eq(g->url, "https://git.example.com/ops.git");
    ck_assert_str_eq(g->ref, "v1");
    ck_assert_str_eq(g->username, "bot");
    ck_assert_str_eq(g->workdir, "/var/lib/gitops");
    ck_assert_uint_eq(g->keep, 3);
    ck_assert_str_eq(vigil_gitops_config_httpd(c)->listen, "127.0.0.1:0");
    ck_assert_int_eq(vigil_gitops_config_daemon(c)->log_level, VIGIL_LOG_WARN);
    ck_assert_ptr_nonnull(vigil_gitops_config_api(c));
    vigil_gitops_config_free(c);

    /* defaults */
    ck_assert_int_eq(load_cfg(&c, "repo: {url: ./manifests}\n"), VIGIL_OK);
    o = vigil_gitops_config_options(c);
    ck_assert_ptr_null(o->host);
    ck_assert_ptr_null(o->sources);
    ck_assert_ptr_null(o->hub_url);
    ck_assert_str_eq(o->blobs_dir, "./var/gitops/blobs");
    ck_assert_str_eq(vigil_gitops_config_gitsync(c)->workdir, "./var/gitops");
    ck_assert_ptr_null(vigil_gitops_config_gitsync(c)->ref);
    ck_assert_str_eq(vigil_gitops_config_httpd(c)->listen, "127.0.0.1:7602");
    vigil_gitops_config_free(c);

    /* the shipped file */
    setenv("VIGIL_REMEDIATOR_HUB_TOKEN", "shipped-hub-token", 1);
    setenv("VIGIL_ADMIN_TOKEN", "shipped-admin-token", 1);
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/configs/gitopsd.yaml", vt_srcdir());
    rc = vigil_gitops_config_load(&c, path, NULL);
    ck_assert_msg(rc == VIGIL_OK, "%s", vigil_error_last()->message);
    o = vigil_gitops_config_options(c);
    ck_assert_str_eq(o->sources[1], "hosts/${HOSTNAME}");
    ck_assert_str_eq(vigil_gitops_config_httpd(c)->listen, "127.0.0.1:7602");
    ck_assert_str_eq(o->hub_url, "http://127.0.0.1:7600");
    ck_assert_ptr_null(o->webhook_secret_env);
    vigil_gitops_config_free(c);

    const struct {
        const char *text;
        int code;
        const char *msg;
    } bad[] = {
        {"listen: 127.0.0.1:0\n", VIGIL_EMISSING, "missing required key \"repo\""},
        {"repo: {ref: main}\n", VIGIL_EMISSING, "\"url\""},
        {"repo: {url: x, bogus: 1}\n", VIGIL_EUNKNOWNKEY, "bogus"},
        {"repo: {url: \"ssh://h/r.git\"}\n", VIGIL_EUNSUPPORTED, "gitopsd.yaml:1:13:"},
        {"repo: {url: \"https://u:p@h/r.git\"}\n", VIGIL_EVALUE, "credentials in the URL"},
        {"repo: {url: x, token_env: GITOPS_TEST_UNSET_VARIABLE}\n", VIGIL_EENV,
         "GITOPS_TEST_UNSET_VARIABLE is not set"},
        {"repo: {url: x}\nmanifests: {sources: [\"/etc\"]}\n", VIGIL_EVALUE,
         "gitopsd.yaml:2:23: manifests.sources[0]: expected a directory relative"},
        {"repo: {url: x}\nmanifests: {sources: [\"../x\"]}\n", VIGIL_EVALUE, "without \"..\""},
        {"repo: {url: x}\nsync: {min_interval: 20s, max_interval: 10s}\n", VIGIL_ERANGE,
         "max_interval must not be below min_interval"},
        {"repo: {url: x}\nsync: {jitter: 0.9}\n", VIGIL_ERANGE, "from 0 to 0.5"},
        {"repo: {url: x}\nobserve: {interval: 10ms}\n", VIGIL_ERANGE, "at least 100ms"},
        {"repo: {url: x}\nhub: {url: \"ftp://x\"}\n", VIGIL_EUNSUPPORTED, "http:// or https://"},
        {"repo: {url: x}\nhost: \"${HOSTNAME}\"\n", VIGIL_EVALUE, "stands for the host itself"},
        {"repo: {url: x}\nwebhook: {secret_env: GITOPS_TEST_UNSET_VARIABLE}\n", VIGIL_EENV,
         "is not set"},
        {"repo: {url: x}\nbogus: 1\n", VIGIL_EUNKNOWNKEY, "bogus"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        c = NULL;
        rc = load_cfg(&c, bad[i].text);
        ck_assert_msg(rc == bad[i].code, "[%zu] expected %d, got %d (%s)", i, bad[i].code, rc,
                      vigil_error_last()->message);
        vt_assert_error(bad[i].code, bad[i].msg);
        ck_assert_ptr_null(c);
    }
}
END_TEST

static Suite *gitops_suite(void)
{
    Suite *s = suite_create("gitops_runner");
    TCase *tc = tcase_create("gitops");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_sync_load_observe);
    tcase_add_test(tc, test_bad_commits);
    tcase_add_test(tc, test_routes);
    tcase_add_test(tc, test_thread);
    tcase_add_test(tc, test_inotify);
    tcase_add_test(tc, test_bad_options);
    tcase_add_test(tc, test_new_oom);
    tcase_add_test(tc, test_hub_unreachable);
    tcase_add_test(tc, test_config);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(gitops_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
