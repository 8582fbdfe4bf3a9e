/* Git over https with a token: a smart-HTTP git server on loopback
 * (tests/helpers/git_https_server.py bridging to `git http-backend` over TLS
 * with the test certificates, checking HTTP Basic credentials) as a real
 * child process. The right token clones and picks up a new commit; a wrong
 * or missing token is an authentication error that never shows the token;
 * a server certificate not trusted is a network error. No internet. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gittest.h"
#include "proctest.h"
#include "testutil.h"
#include "tls_fixtures.h"
#include "vigil/gitsync.h"

#define TOKEN "s3cr3t-t0ken-for-tests"
#define USER  "vigil-bot"

static const char *g_token; /* what the fake environment answers for GIT_TOKEN */

static const char *fake_getenv(void *payload, const char *name)
{
    (void)payload;
    return strcmp(name, "GIT_TOKEN") == 0 ? g_token : NULL;
}

/* python3 from PATH, as an absolute path (posix_spawn does not search). */
static const char *python3(void)
{
    static char path[PATH_MAX];
    const char *env = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof(dirs), "%s", env ? env : "/usr/bin:/bin");
    for (char *d = strtok(dirs, ":"); d; d = strtok(NULL, ":")) {
        snprintf(path, sizeof(path), "%s/python3", d);
        if (access(path, X_OK) == 0)
            return path;
    }
    ck_abort_msg("python3 not found in PATH");
    return NULL;
}

typedef struct fixture {
    const char *dir;
    char work[PATH_MAX];
    char ca[PATH_MAX];
    char url[256];
    char head[41];
    pt_proc server;
} fixture;

static void start(fixture *f)
{
    f->dir = vt_tmpdir();
    char root[PATH_MAX], cert[PATH_MAX], key[PATH_MAX], script[PATH_MAX], bare[PATH_MAX];
    snprintf(f->work, sizeof(f->work), "%s/work", f->dir);
    snprintf(root, sizeof(root), "%s/root", f->dir);
    snprintf(bare, sizeof(bare), "%s/root/repo.git", f->dir);
    ck_assert_int_eq(mkdir(f->work, 0755), 0);
    ck_assert_int_eq(mkdir(root, 0755), 0);
    GIT(f->work, "init", "-q");
    vt_write_file(f->work, "motd", "hello over https\n", 17);
    GIT(f->work, "add", "motd");
    GIT(f->work, "commit", "-q", "-m", "first");
    GIT_OUT(f->work, f->head, "rev-parse", "HEAD");
    GIT(f->dir, "clone", "-q", "--bare", f->work, bare);
    snprintf(cert, sizeof(cert), "%s",
             vt_write_file(f->dir, "server.pem", TLS_SERVER_PEM, strlen(TLS_SERVER_PEM)));
    snprintf(key, sizeof(key), "%s",
             vt_write_file(f->dir, "server.key", TLS_SERVER_KEY, strlen(TLS_SERVER_KEY)));
    snprintf(f->ca, sizeof(f->ca), "%s",
             vt_write_file(f->dir, "ca.pem", TLS_CA_PEM, strlen(TLS_CA_PEM)));
    snprintf(script, sizeof(script), "%s/tests/helpers/git_https_server.py", vt_srcdir());
    char *args[] = {(char *)python3(), script, root, cert, key, USER, TOKEN, NULL};
    pt_start(&f->server, "githttps", args, f->dir, 1);
    /* the certificate names "localhost" as a DNS name (mbedTLS 2.28 does not match IP SANs) */
    snprintf(f->url, sizeof(f->url), "https://localhost:%d/repo.git", f->server.port);
}

static void stop(fixture *f)
{
    pt_stop(&f->server);
}

static vigil_gitsync *open_gs(fixture *f, const char *wd, int with_ca)
{
    vigil_gitsync_options o = VIGIL_GITSYNC_OPTIONS_INIT;
    o.url = f->url;
    o.ref = "main";
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", f->dir, wd);
    o.workdir = path;
    o.token_env = "GIT_TOKEN";
    o.username = USER;
    o.ca_file = with_ca ? f->ca : NULL;
    o.getenv = fake_getenv;
    vigil_logger quiet = VIGIL_LOGGER_INIT;
    quiet.min_level = VIGIL_LOG_ERROR;
    o.logger = &quiet;
    vigil_gitsync *gs = NULL;
    int rc = vigil_gitsync_new(&gs, &o);
    ck_assert_msg(rc == VIGIL_OK, "new: %s", vigil_error_last()->message);
    return gs;
}

static char *slurp_in(const char *dir, const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return pt_slurp(path);
}

START_TEST(test_token_clone_and_fetch)
{
    fixture f;
    start(&f);
    g_token = TOKEN;
    vigil_gitsync *gs = open_gs(&f, "wd", 1);
    vigil_gitsync_result r = VIGIL_GITSYNC_RESULT_INIT;
    int rc = vigil_gitsync_sync(gs, &r);
    if (rc)
        pt_dump_log(&f.server);
    ck_assert_msg(rc == VIGIL_OK, "sync: %d %s", rc, vigil_error_last()->message);
    ck_assert_str_eq(r.commit, f.head);
    ck_assert_int_eq(r.changed, 1);
    char *s = slurp_in(r.path, "motd");
    ck_assert_str_eq(s, "hello over https\n");
    free(s);

    /* a new commit pushed to the server */
    char bare[PATH_MAX], c2[64];
    snprintf(bare, sizeof(bare), "%s/root/repo.git", f.dir);
    vt_write_file(f.work, "motd", "second\n", 7);
    GIT(f.work, "commit", "-q", "-a", "-m", "second");
    GIT_OUT(f.work, c2, "rev-parse", "HEAD");
    GIT(f.work, "push", "-q", bare, "main");
    rc = vigil_gitsync_sync(gs, &r);
    ck_assert_msg(rc == VIGIL_OK, "sync: %d %s", rc, vigil_error_last()->message);
    ck_assert_str_eq(r.commit, c2);
    ck_assert_int_eq(r.changed, 1);
    s = slurp_in(r.path, "motd");
    ck_assert_str_eq(s, "second\n");
    free(s);

    /* the token was sent, and never written to the server's log line */
    s = pt_slurp(f.server.log);
    ck_assert_ptr_nonnull(strstr(s, "status=200"));
    ck_assert_ptr_null(strstr(s, TOKEN));
    free(s);
    vigil_gitsync_free(gs);
    stop(&f);
}
END_TEST

START_TEST(test_wrong_token)
{
    fixture f;
    start(&f);
    g_token = "not-the-token";
    vigil_gitsync *gs = open_gs(&f, "wd", 1);
    vigil_gitsync_result r = VIGIL_GITSYNC_RESULT_INIT;
    ck_assert_int_eq(vigil_gitsync_sync(gs, &r), VIGIL_EAUTH);
    vt_assert_error(VIGIL_EAUTH, "the server refused the token of $GIT_TOKEN (username vigil-bot)");
    ck_assert_ptr_null(strstr(vigil_error_last()->message, "not-the-token"));
    ck_assert_str_eq(vigil_gitsync_commit(gs), "");

    /* no token at all */
    g_token = NULL;
    ck_assert_int_eq(vigil_gitsync_sync(gs, &r), VIGIL_EAUTH);
    vt_assert_error(VIGIL_EAUTH, "there is no token ($GIT_TOKEN is not set or empty)");
    g_token = "";
    ck_assert_int_eq(vigil_gitsync_sync(gs, &r), VIGIL_EAUTH);

    /* then the right one */
    g_token = TOKEN;
    int rc = vigil_gitsync_sync(gs, &r);
    ck_assert_msg(rc == VIGIL_OK, "sync: %d %s", rc, vigil_error_last()->message);
    ck_assert_str_eq(r.commit, f.head);

    /* a wrong token later: an error, and the checkout stays */
    g_token = "expired";
    ck_assert_int_eq(vigil_gitsync_sync(gs, &r), VIGIL_EAUTH);
    ck_assert_str_eq(vigil_gitsync_commit(gs), f.head);
    char *s = slurp_in(vigil_gitsync_path(gs), "motd");
    ck_assert_str_eq(s, "hello over https\n");
    free(s);
    vigil_gitsync_free(gs);
    stop(&f);
}
END_TEST

START_TEST(test_untrusted_certificate)
{
    fixture f;
    start(&f);
    g_token = TOKEN;
    vigil_gitsync *gs = open_gs(&f, "wd", 0);
    vigil_gitsync_result r = VIGIL_GITSYNC_RESULT_INIT;
    ck_assert_int_eq(vigil_gitsync_sync(gs, &r), VIGIL_ENETWORK);
    vt_assert_error(VIGIL_ENETWORK, "gitsync: fetch https://localhost:");
    vigil_gitsync_free(gs);

    /* a CA file that did not sign the server's certificate */
    char url[256];
    snprintf(url, sizeof(url), "%s", f.url);
    const char *rogue = vt_write_file(f.dir, "rogue.pem", TLS_ROGUE_PEM, strlen(TLS_ROGUE_PEM));
    vigil_gitsync_options o = VIGIL_GITSYNC_OPTIONS_INIT;
    o.url = url;
    char wd[PATH_MAX];
    snprintf(wd, sizeof(wd), "%s/wd2", f.dir);
    o.workdir = wd;
    o.ca_file = rogue;
    o.token_env = "GIT_TOKEN";
    o.getenv = fake_getenv;
    vigil_logger quiet = VIGIL_LOGGER_INIT;
    quiet.min_level = VIGIL_LOG_ERROR;
    o.logger = &quiet;
    ck_assert_int_eq(vigil_gitsync_new(&gs, &o), VIGIL_OK);
    ck_assert_int_eq(vigil_gitsync_sync(gs, &r), VIGIL_ENETWORK);
    vt_assert_error(VIGIL_ENETWORK, "certificate not trusted by");
    vigil_gitsync_free(gs);
    stop(&f);
}
END_TEST

static Suite *https_suite(void)
{
    Suite *s = suite_create("gitsync_https");
    TCase *tc = tcase_create("https");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_token_clone_and_fetch);
    tcase_add_test(tc, test_wrong_token);
    tcase_add_test(tc, test_untrusted_certificate);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(https_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
