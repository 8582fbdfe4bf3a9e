/* Git sources against real repositories built with the git CLI (argv, no
 * shell) in temporary directories: clone, a new commit picked up, branch,
 * tag, commit and default refs, a missing ref, bad URLs, a corrupt
 * repository, a failed fetch that keeps the checkout in use, pruning, the
 * work directory lock, and the adaptive schedule with an injected clock and
 * random source. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gittest.h"
#include "testutil.h"
#include "vigil/gitsync.h"

extern char **environ;

/* One temporary directory per test (each test runs in a process of its own). */
static const char *g_base;
static const char *tmp(void)
{
    if (!g_base)
        g_base = vt_tmpdir();
    return g_base;
}

/* A repository <tmp>/src with one commit holding a.txt = `content`. */
static const char *make_repo(const char *content, char head[41])
{
    static char dir[PATH_MAX];
    git_env();
    snprintf(dir, sizeof(dir), "%s/src", tmp());
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    GIT(dir, "init", "-q");
    vt_write_file(dir, "a.txt", content, strlen(content));
    GIT(dir, "add", "a.txt");
    GIT(dir, "commit", "-q", "-m", "first");
    char buf[64];
    GIT_OUT(dir, buf, "rev-parse", "HEAD");
    ck_assert_uint_eq(strlen(buf), 40);
    memcpy(head, buf, 41);
    return dir;
}

static void commit_file(const char *dir, const char *name, const char *content, char head[41])
{
    vt_write_file(dir, name, content, strlen(content));
    GIT(dir, "add", name);
    GIT(dir, "commit", "-q", "-m", name);
    char buf[64];
    GIT_OUT(dir, buf, "rev-parse", "HEAD");
    ck_assert_uint_eq(strlen(buf), 40);
    memcpy(head, buf, 41);
}

static char *slurp(const char *dir, const char *name)
{
    static char buf[4][4096];
    static int k;
    char *b = buf[k++ % 4];
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t n = fread(b, 1, sizeof(buf[0]) - 1, f);
    fclose(f);
    b[n] = '\0';
    return b;
}

static vigil_gitsync *open_gs(const char *url, const char *ref, const char *workdir)
{
    vigil_gitsync_options o = VIGIL_GITSYNC_OPTIONS_INIT;
    o.url = url;
    o.ref = ref;
    o.workdir = workdir;
    vigil_logger quiet = VIGIL_LOGGER_INIT;
    quiet.min_level = VIGIL_LOG_ERROR;
    o.logger = &quiet;
    vigil_gitsync *gs = NULL;
    int rc = vigil_gitsync_new(&gs, &o);
    ck_assert_msg(rc == VIGIL_OK, "new: %d %s", rc, vigil_error_last()->message);
    return gs;
}

static void sync_ok(vigil_gitsync *gs, vigil_gitsync_result *r)
{
    vigil_gitsync_result init = VIGIL_GITSYNC_RESULT_INIT;
    *r = init;
    int rc = vigil_gitsync_sync(gs, r);
    ck_assert_msg(rc == VIGIL_OK, "sync: %d %s", rc, vigil_error_last()->message);
}

static const char *workdir(const char *name)
{
    static char p[4][PATH_MAX];
    static int k;
    char *b = p[k++ % 4];
    snprintf(b, PATH_MAX, "%s/%s", tmp(), name);
    return b;
}

static void sync_fails(vigil_gitsync *gs, vigil_gitsync_result *r, int code)
{
    int rc = vigil_gitsync_sync(gs, r);
    ck_assert_msg(rc == code, "sync: expected %d, got %d (%s)", code, rc,
                  vigil_error_last()->message);
}

/* ---- tests ------------------------------------------------------------------------- */

START_TEST(test_clone_and_fetch)
{
    char c1[41], c2[41], c3[41];
    const char *src = make_repo("one\n", c1);
    const char *wd = workdir("wd");
    vigil_gitsync *gs = open_gs(src, "main", wd);
    ck_assert_str_eq(vigil_gitsync_commit(gs), "");
    ck_assert_ptr_null(vigil_gitsync_path(gs));

    vigil_gitsync_result r;
    sync_ok(gs, &r);
    ck_assert_str_eq(r.commit, c1);
    ck_assert_int_eq(r.changed, 1);
    ck_assert_str_eq(slurp(r.path, "a.txt"), "one\n");
    ck_assert_str_eq(vigil_gitsync_commit(gs), c1);
    char link[PATH_MAX], want[64];
    snprintf(want, sizeof(want), "checkouts/%s", c1);
    ssize_t n = readlink(workdir("wd/current"), link, sizeof(link) - 1);
    ck_assert_int_gt(n, 0);
    link[n] = '\0';
    ck_assert_str_eq(link, want);
    ck_assert_str_eq(slurp(workdir("wd/current"), "a.txt"), "one\n");
    ck_assert_ptr_null(slurp(r.path, ".git")); /* a plain tree, no repository */

    /* nothing new */
    sync_ok(gs, &r);
    ck_assert_str_eq(r.commit, c1);
    ck_assert_int_eq(r.changed, 0);

    /* a new commit is picked up; the previous checkout is kept (keep = 2) */
    commit_file(src, "a.txt", "two\n", c2);
    sync_ok(gs, &r);
    ck_assert_str_eq(r.commit, c2);
    ck_assert_int_eq(r.changed, 1);
    ck_assert_str_eq(slurp(r.path, "a.txt"), "two\n");
    ck_assert_str_eq(slurp(workdir("wd/current"), "a.txt"), "two\n");
    char old[PATH_MAX];
    snprintf(old, sizeof(old), "%s/checkouts/%s", wd, c1);
    ck_assert_int_eq(access(old, F_OK), 0);

    /* a third one prunes the first; a leftover temporary directory goes too */
    char junk[PATH_MAX];
    snprintf(junk, sizeof(junk), "%s/checkouts/.tmp-deadbeef-1", wd);
    ck_assert_int_eq(mkdir(junk, 0755), 0);
    commit_file(src, "b.txt", "bee\n", c3);
    sync_ok(gs, &r);
    ck_assert_str_eq(r.commit, c3);
    ck_assert_str_eq(slurp(r.path, "b.txt"), "bee\n");
    ck_assert_int_eq(access(old, F_OK), -1);
    ck_assert_int_eq(access(junk, F_OK), -1);
    snprintf(old, sizeof(old), "%s/checkouts/%s", wd, c2);
    ck_assert_int_eq(access(old, F_OK), 0);
    vigil_gitsync_free(gs);

    /* a new gitsync on the same directory starts from the checkout in use */
    gs = open_gs(src, "main", wd);
    ck_assert_str_eq(vigil_gitsync_commit(gs), c3);
    ck_assert_ptr_nonnull(vigil_gitsync_path(gs));
    sync_ok(gs, &r);
    ck_assert_int_eq(r.changed, 0);
    vigil_gitsync_free(gs);
}
END_TEST

START_TEST(test_refs)
{
    char c1[41], c2[41], c3[41];
    const char *src = make_repo("one\n", c1);
    GIT(src, "tag", "-a", "v1", "-m", "release one");
    GIT(src, "tag", "light", c1);
    commit_file(src, "a.txt", "two\n", c2);
    GIT(src, "checkout", "-q", "-b", "feature");
    commit_file(src, "a.txt", "feature\n", c3);
    GIT(src, "checkout", "-q", "main");

    vigil_gitsync_result r;
    vigil_gitsync *gs = open_gs(src, "v1", workdir("tag"));
    sync_ok(gs, &r);
    ck_assert_str_eq(r.commit, c1);
    ck_assert_str_eq(slurp(r.path, "a.txt"), "one\n");
    vigil_gitsync_free(gs);

    gs = open_gs(src, "light", workdir("light"));
    sync_ok(gs, &r);
    ck_assert_str_eq(r.commit, c1);
    vigil_gitsync_free(gs);

    gs = open_gs(src, c1, workdir("commit"));
    sync_ok(gs, &r);
    ck_assert_str_eq(r.commit, c1);
    ck_assert_str_eq(slurp(r.path, "a.txt"), "one\n");
    vigil_gitsync_free(gs);

    gs = open_gs(src, "feature", workdir("branch"));
    sync_ok(gs, &r);
    ck_assert_str_eq(r.commit, c3);
    ck_assert_str_eq(slurp(r.path, "a.txt"), "feature\n");
    vigil_gitsync_free(gs);

    /* a relative work directory (made absolute against the working directory) */
    ck_assert_int_eq(chdir(tmp()), 0);
    gs = open_gs("src", "main", "rel/wd");
    sync_ok(gs, &r);
    ck_assert_str_eq(r.commit, c2);
    ck_assert_str_eq(slurp("rel/wd/current", "a.txt"), "two\n");
    ck_assert_ptr_nonnull(strstr(r.path, tmp()));
    ck_assert_int_eq(r.path[0], '/');
    vigil_gitsync_free(gs);

    gs = open_gs(src, "refs/heads/main", workdir("full"));
    sync_ok(gs, &r);
    ck_assert_str_eq(r.commit, c2);
    vigil_gitsync_free(gs);

    /* the remote's default branch, through a file:// URL */
    char url[PATH_MAX + 8];
    snprintf(url, sizeof(url), "file://%s", src);
    gs = open_gs(url, NULL, workdir("default"));
    sync_ok(gs, &r);
    ck_assert_str_eq(r.commit, c2);
    ck_assert_str_eq(slurp(r.path, "a.txt"), "two\n");
    vigil_gitsync_free(gs);
}
END_TEST

START_TEST(test_missing_ref)
{
    char c1[41];
    const char *src = make_repo("one\n", c1);
    vigil_gitsync *gs = open_gs(src, "nope", workdir("wd"));
    vigil_gitsync_result r = VIGIL_GITSYNC_RESULT_INIT;
    sync_fails(gs, &r, VIGIL_ENOTFOUND);
    vt_assert_error(VIGIL_ENOTFOUND, "ref 'nope' not found in");
    ck_assert_str_eq(vigil_gitsync_commit(gs), "");
    vigil_gitsync_free(gs);

    gs = open_gs(src, "0123456789abcdef0123456789abcdef01234567", workdir("wd2"));
    sync_fails(gs, &r, VIGIL_ENOTFOUND);
    vt_assert_error(VIGIL_ENOTFOUND, "commit 0123456789abcdef0123456789abcdef01234567 not found");
    vigil_gitsync_free(gs);
}
END_TEST

START_TEST(test_bad_url)
{
    git_env();
    vigil_gitsync_options o = VIGIL_GITSYNC_OPTIONS_INIT;
    vigil_gitsync *gs = NULL;
    o.workdir = workdir("wd");
    const struct {
        const char *url;
        int code;
        const char *msg;
    } bad[] = {
        {"ssh://git@example.com/repo.git", VIGIL_EUNSUPPORTED, "scheme 'ssh' is not supported"},
        {"http://example.com/repo.git", VIGIL_EUNSUPPORTED, "scheme 'http' is not supported"},
        {"git@example.com:repo.git", VIGIL_EUNSUPPORTED, "looks like an ssh address"},
        {"https://user:secret@example.com/r.git", VIGIL_EINVAL, "credentials in the URL"},
        {"https:///r.git", VIGIL_EINVAL, "has no host"},
        {"file://relative/r.git", VIGIL_EINVAL, "needs an absolute path"},
        {"", VIGIL_EINVAL, "url is empty"},
        {"/tmp/a\nb", VIGIL_EINVAL, "url has a control character"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        o.url = bad[i].url;
        ck_assert_int_eq(vigil_gitsync_new(&gs, &o), bad[i].code);
        vt_assert_error(bad[i].code, bad[i].msg);
        ck_assert_ptr_null(gs);
    }
    /* the token never shows in the message */
    o.url = "https://user:secret@example.com/r.git";
    vigil_gitsync_new(&gs, &o);
    ck_assert_ptr_null(strstr(vigil_error_last()->message, "secret"));

    /* a path that is no repository */
    gs = open_gs(workdir("missing"), "main", workdir("wd"));
    vigil_gitsync_result r = VIGIL_GITSYNC_RESULT_INIT;
    sync_fails(gs, &r, VIGIL_ENOTFOUND);
    vt_assert_error(VIGIL_ENOTFOUND, "gitsync: fetch ");
    vigil_gitsync_free(gs);

    /* nothing listens there */
    gs = open_gs("https://127.0.0.1:1/repo.git", "main", workdir("wd3"));
    sync_fails(gs, &r, VIGIL_ENETWORK);
    vt_assert_error(VIGIL_ENETWORK, "gitsync: fetch https://127.0.0.1:1/repo.git: ");
    vigil_gitsync_free(gs);
}
END_TEST

START_TEST(test_bad_options)
{
    vigil_gitsync_options o = VIGIL_GITSYNC_OPTIONS_INIT;
    vigil_gitsync *gs = NULL;
    ck_assert_int_eq(vigil_gitsync_new(NULL, &o), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_gitsync_new(&gs, NULL), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_gitsync_new(&gs, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "url is required");
    o.url = "/tmp/x";
    ck_assert_int_eq(vigil_gitsync_new(&gs, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "workdir is required");
    o.workdir = workdir("wd");
    o.ref = "bad..ref";
    ck_assert_int_eq(vigil_gitsync_new(&gs, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "ref 'bad..ref' is neither");
    o.ref = "";
    ck_assert_int_eq(vigil_gitsync_new(&gs, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "ref is empty");
    o.ref = "main";
    o.username = "a:b";
    ck_assert_int_eq(vigil_gitsync_new(&gs, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "username has a ':'");
    o.username = NULL;
    static char big[VIGIL_GITSYNC_MAX_STRING + 2];
    memset(big, 'a', sizeof(big) - 1);
    o.url = big;
    ck_assert_int_eq(vigil_gitsync_new(&gs, &o), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "url is longer than 4096 bytes");
    o.url = "/tmp/x";
    o.version = 99;
    ck_assert_int_eq(vigil_gitsync_new(&gs, &o), VIGIL_EVERSION);
    o.version = VIGIL_GITSYNC_OPTIONS_VERSION;
    /* the work directory is a file */
    o.workdir = vt_write_file(tmp(), "afile", "x", 1);
    ck_assert_int_eq(vigil_gitsync_new(&gs, &o), VIGIL_EIO);
    vt_assert_error(VIGIL_EIO, "is not a directory");

    /* one gitsync per work directory */
    o.workdir = workdir("locked");
    ck_assert_int_eq(vigil_gitsync_new(&gs, &o), VIGIL_OK);
    vigil_gitsync *other = NULL;
    ck_assert_int_eq(vigil_gitsync_new(&other, &o), VIGIL_EBUSY);
    vt_assert_error(VIGIL_EBUSY, "is in use by another gitsync");
    vigil_gitsync_free(gs);
    ck_assert_int_eq(vigil_gitsync_new(&other, &o), VIGIL_OK);
    vigil_gitsync_free(other);

    vigil_gitsync_options init;
    ck_assert_int_eq(vigil_gitsync_options_init(&init, VIGIL_GITSYNC_OPTIONS_VERSION), VIGIL_OK);
    ck_assert_ptr_null(init.url);
    ck_assert_int_eq(vigil_gitsync_options_init(&init, 0), VIGIL_EVERSION);
    ck_assert_int_eq(vigil_gitsync_options_init(NULL, 1), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_gitsync_sync(NULL, NULL), VIGIL_EINVAL);
    vigil_gitsync_result r = VIGIL_GITSYNC_RESULT_INIT;
    r.version = 7;
    gs = open_gs("/tmp/x", "main", workdir("wd5"));
    sync_fails(gs, &r, VIGIL_EVERSION);
    vigil_gitsync_free(gs);
    vigil_gitsync_free(NULL);
    ck_assert_str_eq(vigil_gitsync_commit(NULL), "");
}
END_TEST

/* Replaces every loose object file of `src` with bytes that do not inflate. */
static void corrupt_objects(const char *src)
{
    char dir[PATH_MAX], list[8192];
    GIT_OUT(src, list, "rev-parse", "HEAD", "HEAD^{tree}");
    for (char *line = strtok(list, "\n"); line; line = strtok(NULL, "\n")) {
        snprintf(dir, sizeof(dir), "%s/.git/objects/%.2s/%s", src, line, line + 2);
        ck_assert_int_eq(chmod(dir, 0644), 0);
        FILE *f = fopen(dir, "w");
        ck_assert_ptr_nonnull(f);
        fputs("this is not a zlib stream", f);
        fclose(f);
    }
}

START_TEST(test_corrupt_repository)
{
    char c1[41];
    const char *src = make_repo("one\n", c1);
    corrupt_objects(src);
    vigil_gitsync *gs = open_gs(src, "main", workdir("wd"));
    vigil_gitsync_result r = VIGIL_GITSYNC_RESULT_INIT;
    sync_fails(gs, &r, VIGIL_ECORRUPT);
    vt_assert_error(VIGIL_ECORRUPT, "gitsync: fetch ");
    ck_assert_str_eq(vigil_gitsync_commit(gs), "");
    vigil_gitsync_free(gs);

    /* the local repository of the work directory itself is corrupt */
    char c2[41];
    char src2[PATH_MAX];
    snprintf(src2, sizeof(src2), "%s/src2", tmp());
    ck_assert_int_eq(mkdir(src2, 0755), 0);
    GIT(src2, "init", "-q");
    commit_file(src2, "a.txt", "x\n", c2);
    gs = open_gs(src2, "main", workdir("wd2"));
    sync_ok(gs, &r);
    vt_write_file(workdir("wd2/repo.git"), "HEAD", "garbage", 7);
    vt_write_file(workdir("wd2/repo.git"), "config", "[[[not a config", 15);
    /* repo.git is a cache: it is cloned again, the checkout stays */
    sync_ok(gs, &r);
    ck_assert_int_eq(r.changed, 0);
    ck_assert_str_eq(r.commit, c2);
    ck_assert_str_eq(vigil_gitsync_commit(gs), c2);
    ck_assert_ptr_null(strstr(slurp(workdir("wd2/repo.git"), "config"), "[[["));
    ck_assert_str_eq(slurp(workdir("wd2/current"), "a.txt"), "x\n");
    vigil_gitsync_free(gs);
}
END_TEST

START_TEST(test_failed_fetch_keeps_checkout)
{
    char c1[41], c2[41];
    const char *src = make_repo("one\n", c1);
    const char *wd = workdir("wd");
    vigil_gitsync *gs = open_gs(src, "main", wd);
    vigil_gitsync_result r;
    sync_ok(gs, &r);
    ck_assert_str_eq(r.commit, c1);

    /* the source goes away: an error, the checkout stays in use */
    char moved[PATH_MAX];
    snprintf(moved, sizeof(moved), "%s/src-moved", tmp());
    ck_assert_int_eq(rename(src, moved), 0);
    vigil_gitsync_result r2 = VIGIL_GITSYNC_RESULT_INIT;
    sync_fails(gs, &r2, VIGIL_ENOTFOUND);
    ck_assert_str_eq(r2.commit, ""); /* untouched on error */
    ck_assert_str_eq(vigil_gitsync_commit(gs), c1);
    ck_assert_str_eq(slurp(workdir("wd/current"), "a.txt"), "one\n");
    ck_assert_str_eq(slurp(vigil_gitsync_path(gs), "a.txt"), "one\n");

    /* back, with a new commit whose objects are corrupt: still the old one */
    ck_assert_int_eq(rename(moved, src), 0);
    commit_file(src, "a.txt", "two\n", c2);
    corrupt_objects(src);
    sync_fails(gs, &r2, VIGIL_ECORRUPT);
    ck_assert_str_eq(vigil_gitsync_commit(gs), c1);
    ck_assert_str_eq(slurp(workdir("wd/current"), "a.txt"), "one\n");
    vigil_gitsync_free(gs);
}
END_TEST

static int oom_new(void *ctx)
{
    vigil_gitsync **gs = ctx;
    vigil_gitsync_options o = VIGIL_GITSYNC_OPTIONS_INIT;
    o.url = "relative/repo";
    o.ref = "main";
    o.workdir = workdir("oom");
    o.token_env = "TOKEN";
    o.ca_file = "/etc/ca.pem";
    return vigil_gitsync_new(gs, &o);
}

static void oom_free(void *ctx)
{
    vigil_gitsync **gs = ctx;
    vigil_gitsync_free(*gs);
    *gs = NULL;
}

START_TEST(test_new_oom)
{
    vigil_gitsync *gs = NULL;
    ck_assert_int_gt(vt_oom_sweep(oom_new, oom_free, &gs, 0), 5);
}
END_TEST

/* ---- the schedule ------------------------------------------------------------------ */

static int64_t g_now;
static uint64_t g_rand;

static int64_t fake_clock(void *p)
{
    (void)p;
    return g_now;
}

static uint64_t fake_random(void *p)
{
    (void)p;
    return g_rand;
}

START_TEST(test_schedule)
{
    g_now = 1000;
    vigil_gitsync_schedule_options o = VIGIL_GITSYNC_SCHEDULE_OPTIONS_INIT;
    o.min_interval_ms = 10000;
    o.max_interval_ms = 60000;
    o.jitter = -1; /* none */
    o.clock = fake_clock;
    o.random = fake_random;
    vigil_gitsync_schedule *s = NULL;
    ck_assert_int_eq(vigil_gitsync_schedule_new(&s, &o), VIGIL_OK);
    ck_assert_int_eq(vigil_gitsync_schedule_deadline(s), 1000); /* at once */
    ck_assert_int_eq(vigil_gitsync_schedule_interval(s), 10000);

    /* first sync changed: min; then doubling while nothing changes, capped */
    ck_assert_int_eq(vigil_gitsync_schedule_done(s, 1), 10000);
    ck_assert_int_eq(vigil_gitsync_schedule_deadline(s), 11000);
    g_now = 11000;
    ck_assert_int_eq(vigil_gitsync_schedule_done(s, 0), 20000);
    ck_assert_int_eq(vigil_gitsync_schedule_deadline(s), 31000);
    g_now = 31000;
    ck_assert_int_eq(vigil_gitsync_schedule_done(s, 0), 40000);
    ck_assert_int_eq(vigil_gitsync_schedule_done(s, 0), 60000);
    ck_assert_int_eq(vigil_gitsync_schedule_done(s, 0), 60000);
    ck_assert_int_eq(vigil_gitsync_schedule_deadline(s), 91000);
    /* a change: back to the minimum */
    ck_assert_int_eq(vigil_gitsync_schedule_done(s, 1), 10000);
    ck_assert_int_eq(vigil_gitsync_schedule_interval(s), 10000);
    /* on demand */
    g_now = 35000;
    vigil_gitsync_schedule_now(s);
    ck_assert_int_eq(vigil_gitsync_schedule_deadline(s), 35000);
    ck_assert_int_eq(vigil_gitsync_schedule_interval(s), 10000);
    vigil_gitsync_schedule_free(s);

    /* jitter 0.2 on 10 s: r = 0 -> -2 s, r = 2^63 -> 0, r = 3 * 2^62 -> +1 s */
    o.jitter = 0.2;
    ck_assert_int_eq(vigil_gitsync_schedule_new(&s, &o), VIGIL_OK);
    g_rand = 0;
    ck_assert_int_eq(vigil_gitsync_schedule_done(s, 1), 8000);
    ck_assert_int_eq(vigil_gitsync_schedule_deadline(s), 43000);
    g_rand = UINT64_C(1) << 63;
    ck_assert_int_eq(vigil_gitsync_schedule_done(s, 1), 10000);
    g_rand = UINT64_C(3) << 62;
    ck_assert_int_eq(vigil_gitsync_schedule_done(s, 1), 11000);
    g_rand = UINT64_MAX;
    ck_assert_int_eq(vigil_gitsync_schedule_done(s, 0), 23999); /* 20 s + 4 s, exclusive */
    vigil_gitsync_schedule_free(s);

    /* defaults: 30 s .. 5 min, jitter 0.1 */
    vigil_gitsync_schedule_options d;
    ck_assert_int_eq(vigil_gitsync_schedule_options_init(&d, 1), VIGIL_OK);
    d.clock = fake_clock;
    d.random = fake_random;
    ck_assert_int_eq(vigil_gitsync_schedule_new(&s, &d), VIGIL_OK);
    ck_assert_int_eq(vigil_gitsync_schedule_interval(s), 30000);
    g_rand = 0;
    ck_assert_int_eq(vigil_gitsync_schedule_done(s, 1), 27000);
    for (int i = 0; i < 10; i++)
        vigil_gitsync_schedule_done(s, 0);
    ck_assert_int_eq(vigil_gitsync_schedule_interval(s), 300000);
    vigil_gitsync_schedule_free(s);

    /* the real clock and random source stay within the bounds */
    ck_assert_int_eq(vigil_gitsync_schedule_new(&s, NULL), VIGIL_OK);
    for (int i = 0; i < 100; i++) {
        int64_t v = vigil_gitsync_schedule_done(s, 1);
        ck_assert_int_ge(v, 27000);
        ck_assert_int_lt(v, 33000);
    }
    vigil_gitsync_schedule_free(s);
}
END_TEST

START_TEST(test_schedule_bad_options)
{
    vigil_gitsync_schedule_options o = VIGIL_GITSYNC_SCHEDULE_OPTIONS_INIT;
    vigil_gitsync_schedule *s = NULL;
    ck_assert_int_eq(vigil_gitsync_schedule_new(NULL, &o), VIGIL_EINVAL);
    o.min_interval_ms = -1;
    ck_assert_int_eq(vigil_gitsync_schedule_new(&s, &o), VIGIL_ERANGE);
    vt_assert_error(VIGIL_ERANGE, "a negative interval");
    o.min_interval_ms = 20000;
    o.max_interval_ms = 10000;
    ck_assert_int_eq(vigil_gitsync_schedule_new(&s, &o), VIGIL_ERANGE);
    vt_assert_error(VIGIL_ERANGE, "max_interval (10000 ms) is below min_interval (20000 ms)");
    o.max_interval_ms = 0;
    o.min_interval_ms = 0;
    o.jitter = 0.6;
    ck_assert_int_eq(vigil_gitsync_schedule_new(&s, &o), VIGIL_ERANGE);
    vt_assert_error(VIGIL_ERANGE, "jitter must be within 0..0.5");
    o.jitter = 0;
    o.max_interval_ms = INT64_MAX;
    ck_assert_int_eq(vigil_gitsync_schedule_new(&s, &o), VIGIL_ERANGE);
    vt_assert_error(VIGIL_ERANGE, "above 366 days");
    o.max_interval_ms = 0;
    o.version = 0;
    ck_assert_int_eq(vigil_gitsync_schedule_new(&s, &o), VIGIL_EVERSION);
    ck_assert_ptr_null(s);
    ck_assert_int_eq(vigil_gitsync_schedule_options_init(NULL, 1), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_gitsync_schedule_options_init(&o, 2), VIGIL_EVERSION);
    ck_assert_int_eq(vigil_gitsync_schedule_done(NULL, 1), 0);
    ck_assert_int_eq(vigil_gitsync_schedule_deadline(NULL), 0);
    ck_assert_int_eq(vigil_gitsync_schedule_interval(NULL), 0);
    vigil_gitsync_schedule_now(NULL);
    vigil_gitsync_schedule_free(NULL);
}
END_TEST

static Suite *gitsync_suite(void)
{
    Suite *s = suite_create("gitsync");
    TCase *tc = tcase_create("gitsync");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_clone_and_fetch);
    tcase_add_test(tc, test_refs);
    tcase_add_test(tc, test_missing_ref);
    tcase_add_test(tc, test_bad_url);
    tcase_add_test(tc, test_bad_options);
    tcase_add_test(tc, test_corrupt_repository);
    tcase_add_test(tc, test_failed_fetch_keeps_checkout);
    tcase_add_test(tc, test_new_oom);
    tcase_add_test(tc, test_schedule);
    tcase_add_test(tc, test_schedule_bad_options);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(gitsync_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
