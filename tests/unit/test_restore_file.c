/* The restore_file action type (lib/action/restore_file.c): a blob written
 * byte for byte through a temporary file and a rename, the path allowlist
 * (prefixes, "..", symlinked parents), the blob checks and the parameters. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "action_testutil.h"
#include "crypto/crypto.h"

typedef struct fixture {
    char root[512];
    char blobs[600];
    char managed[600];
    vigil_action_registry *reg;
} fixture;

static void sha_hex(char out[65], const void *data, size_t len)
{
    unsigned char d[32];
    ck_assert_int_eq(vigil__crypto_sha256(d, data, len), VIGIL_OK);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* Writes a blob named by its sha256 (or by `name` when not NULL). */
static void put_blob(const fixture *f, const char *name, const void *data, size_t len, char sha[65])
{
    sha_hex(sha, data, len);
    vt_write_file(f->blobs, name ? name : sha, data, len);
}

static void fx_init(fixture *f, const char *extra)
{
    memset(f, 0, sizeof(*f));
    snprintf(f->root, sizeof(f->root), "%s", vt_tmpdir());
    snprintf(f->blobs, sizeof(f->blobs), "%s/blobs", f->root);
    snprintf(f->managed, sizeof(f->managed), "%s/managed", f->root);
    ck_assert_int_eq(mkdir(f->blobs, 0755), 0);
    ck_assert_int_eq(mkdir(f->managed, 0755), 0);
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "actions:\n"
             "  - name: restore_file\n"
             "    type: restore_file\n"
             "    targets: \"^[^/]+/File/.+$\"\n"
             "    blobs_dir: %s\n"
             "    paths: [\"%s/\"%s]\n"
             "    params: {path: \"^.+$\", sha256: \".*\", mode: \".*\", owner: \".*\"}\n",
             f->blobs, f->managed, extra ? extra : "");
    f->reg = at_configure(NULL, yaml);
}

static void fx_free(fixture *f)
{
    vigil_action_registry_free(f->reg);
}

/* Runs restore_file with the given params (NULL values are left out). */
static int run(fixture *f, const char *path, const char *sha, const char *mode, const char *owner,
               vigil_action_result *res)
{
    vigil_action_param p[4];
    size_t n = 0;
    if (path)
        p[n++] = (vigil_action_param){"path", path};
    if (sha)
        p[n++] = (vigil_action_param){"sha256", sha};
    if (mode)
        p[n++] = (vigil_action_param){"mode", mode};
    if (owner)
        p[n++] = (vigil_action_param){"owner", owner};
    vigil_action_request rq = at_req("restore_file", "web-01/File/motd");
    rq.params = p;
    rq.nparams = n;
    return vigil_action_registry_execute(f->reg, &rq, NULL, res);
}

static void assert_file(const char *path, const char *want, mode_t mode)
{
    struct stat st;
    ck_assert_int_eq(lstat(path, &st), 0);
    ck_assert_msg(S_ISREG(st.st_mode), "%s is not a regular file", path);
    ck_assert_int_eq((int)(st.st_mode & 07777), (int)mode);
    char *got = at_read_file(path);
    ck_assert_int_eq((int)st.st_size, (int)strlen(want));
    ck_assert_str_eq(got, want);
    free(got);
}

/* No temporary file is left in dir. */
static void assert_no_tmp(const char *dir)
{
    char cmdless[700];
    snprintf(cmdless, sizeof(cmdless), "%s", dir);
    DIR *d = opendir(cmdless);
    ck_assert_ptr_nonnull(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        ck_assert_msg(strstr(de->d_name, ".vigil-") == NULL, "temporary file left: %s", de->d_name);
    closedir(d);
}

START_TEST(restores_bytes_and_mode)
{
    fixture f;
    fx_init(&f, NULL);
    const char body[] = "welcome\n\x01\xff binary too\n";
    char sha[65], path[700];
    put_blob(&f, NULL, body, sizeof(body) - 1, sha);
    snprintf(path, sizeof(path), "%s/motd", f.managed);
    vt_write_file(f.managed, "motd", "hand edit\n", 10);
    ck_assert_int_eq(chmod(path, 0600), 0);
    vigil_action_result res = VIGIL_ACTION_RESULT_INIT;
    ck_assert_int_eq(run(&f, path, sha, "0640", NULL, &res), VIGIL_OK);
    ck_assert_msg(res.status == VIGIL_ACTION_SUCCEEDED, "status %d: %s %s", res.status,
                  res.reason ? res.reason : "", res.output ? res.output : "");
    assert_file(path, body, 0640);
    char want[1024];
    snprintf(want, sizeof(want), "restored %s (%zu bytes, sha256 %.12s, mode 0640)", path,
             sizeof(body) - 1, sha);
    ck_assert_str_eq(res.output, want);
    assert_no_tmp(f.managed);

    /* no mode: the replaced file's mode is kept; a new file gets 0644 */
    ck_assert_int_eq(chmod(path, 0600), 0);
    vt_write_file(f.managed, "motd", "edited again", 12);
    ck_assert_int_eq(run(&f, path, sha, NULL, NULL, &res), VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_SUCCEEDED);
    assert_file(path, body, 0600);
    snprintf(path, sizeof(path), "%s/new.conf", f.managed);
    ck_assert_int_eq(run(&f, path, sha, NULL, NULL, &res), VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_SUCCEEDED);
    assert_file(path, body, 0644);

    /* a relative path is relative to the working directory; owner = ourselves works */
    char cwd[1024], uid[32];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
    ck_assert_int_eq(chdir(f.root), 0);
    /* the working directory is the one of the configuration's load */
    vigil_action_registry_free(f.reg);
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "actions:\n  - {name: restore_file, type: restore_file, targets: \".+\", blobs_dir: "
             "%s, paths: "
             "[%s/], params: {path: \".*\", sha256: \".*\", mode: \".*\", owner: "
             "\".*\"}}\n",
             f.blobs, f.managed);
    f.reg = at_configure(NULL, yaml);
    snprintf(uid, sizeof(uid), "%u", (unsigned)geteuid());
    int rrc = run(&f, "./managed/./rel.txt", sha, "600", uid, &res);
    ck_assert_msg(rrc == VIGIL_OK, "%s", res.output ? res.output : "");
    ck_assert_int_eq(chdir(cwd), 0);
    ck_assert_msg(res.status == VIGIL_ACTION_SUCCEEDED, "%s", res.output ? res.output : "");
    snprintf(path, sizeof(path), "%s/rel.txt", f.managed);
    assert_file(path, body, 0600);
    vigil_action_result_clear(&res);
    fx_free(&f);
}
END_TEST

START_TEST(blob_problems_fail_and_leave_the_file)
{
    fixture f;
    fx_init(&f, NULL);
    char sha[65], other[65], path[700];
    snprintf(path, sizeof(path), "%s/motd", f.managed);
    vt_write_file(f.managed, "motd", "current", 7);
    vigil_action_result res = VIGIL_ACTION_RESULT_INIT;

    /* missing blob */
    sha_hex(sha, "never stored", 12);
    ck_assert_int_eq(run(&f, path, sha, NULL, NULL, &res), VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_FAILED);
    ck_assert_str_eq(res.reason, "blob_missing");
    ck_assert_ptr_nonnull(strstr(res.output, "No such file or directory"));

    /* a blob whose bytes do not have its name's sha256 */
    sha_hex(other, "the real content", 16);
    put_blob(&f, other, "tampered content", 16, sha);
    ck_assert_int_eq(run(&f, path, other, NULL, NULL, &res), VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_FAILED);
    ck_assert_str_eq(res.reason, "blob_mismatch");
    char want[1024];
    snprintf(want, sizeof(want), "blob %s/%s: its bytes have sha256 %s", f.blobs, other, sha);
    ck_assert_str_eq(res.output, want);

    /* larger than 16 MiB */
    size_t big = (16u << 20) + 1;
    char *data = calloc(1, big);
    ck_assert_ptr_nonnull(data);
    put_blob(&f, NULL, data, big, sha);
    free(data);
    ck_assert_int_eq(run(&f, path, sha, NULL, NULL, &res), VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_FAILED);
    ck_assert_str_eq(res.reason, "blob_too_large");
    ck_assert_ptr_nonnull(strstr(res.output, "16777217 bytes, more than the limit of 16777216"));

    assert_file(path, "current", 0644);
    assert_no_tmp(f.managed);
    vigil_action_result_clear(&res);
    fx_free(&f);
}
END_TEST

START_TEST(paths_outside_the_prefixes_are_refused)
{
    fixture f;
    fx_init(&f, NULL);
    char sha[65], path[1024], outside[700];
    put_blob(&f, NULL, "x", 1, sha);
    vigil_action_result res = VIGIL_ACTION_RESULT_INIT;

    /* outside every prefix */
    snprintf(path, sizeof(path), "%s/elsewhere", f.root);
    ck_assert_int_eq(run(&f, path, sha, NULL, NULL, &res), VIGIL_EPERM);
    ck_assert_int_eq(res.status, VIGIL_ACTION_REFUSED);
    ck_assert_str_eq(res.reason, "not_allowed");
    ck_assert_ptr_nonnull(strstr(res.output, "is not under a prefix of the action's paths"));
    ck_assert_int_ne(access(path, F_OK), 0);

    /* the prefix directory itself (a prefix ending in '/' is strictly a directory) */
    ck_assert_int_eq(run(&f, f.managed, sha, NULL, NULL, &res), VIGIL_EPERM);

    /* a sibling that shares the prefix's text */
    snprintf(path, sizeof(path), "%s/managed-evil/x", f.root);
    ck_assert_int_eq(run(&f, path, sha, NULL, NULL, &res), VIGIL_EPERM);

    /* ".." is refused even when it would stay inside */
    snprintf(path, sizeof(path), "%s/sub/../motd", f.managed);
    ck_assert_int_eq(run(&f, path, sha, NULL, NULL, &res), VIGIL_EPERM);
    ck_assert_ptr_nonnull(strstr(res.output, "a \"..\" component is not allowed"));
    snprintf(path, sizeof(path), "%s/../escape", f.managed);
    ck_assert_int_eq(run(&f, path, sha, NULL, NULL, &res), VIGIL_EPERM);
    snprintf(path, sizeof(path), "%s/escape", f.root);
    ck_assert_int_ne(access(path, F_OK), 0);

    /* a symlinked parent directory that leads outside */
    snprintf(outside, sizeof(outside), "%s/outside", f.root);
    ck_assert_int_eq(mkdir(outside, 0755), 0);
    snprintf(path, sizeof(path), "%s/link", f.managed);
    ck_assert_int_eq(symlink(outside, path), 0);
    snprintf(path, sizeof(path), "%s/link/motd", f.managed);
    ck_assert_int_eq(run(&f, path, sha, NULL, NULL, &res), VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_FAILED);
    ck_assert_str_eq(res.reason, "path_outside_prefixes");
    char want[2048];
    snprintf(want, sizeof(want),
             "%s resolves to %s/motd, which is not under a prefix of the action's paths "
             "(symbolic links are resolved)",
             path, outside);
    ck_assert_str_eq(res.output, want);
    snprintf(path, sizeof(path), "%s/motd", outside);
    ck_assert_int_ne(access(path, F_OK), 0);
    assert_no_tmp(outside);

    /* a parent that does not exist */
    snprintf(path, sizeof(path), "%s/nodir/motd", f.managed);
    ck_assert_int_eq(run(&f, path, sha, NULL, NULL, &res), VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_FAILED);
    ck_assert_str_eq(res.reason, "parent_missing");

    /* a directory at the path */
    snprintf(path, sizeof(path), "%s/adir", f.managed);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    ck_assert_int_eq(run(&f, path, sha, NULL, NULL, &res), VIGIL_OK);
    ck_assert_str_eq(res.reason, "path_is_directory");
    vigil_action_result_clear(&res);
    fx_free(&f);
}
END_TEST

START_TEST(symlink_at_the_path_is_replaced_not_followed)
{
    fixture f;
    fx_init(&f, NULL);
    char sha[65], path[700], victim[700];
    put_blob(&f, NULL, "desired\n", 8, sha);
    snprintf(victim, sizeof(victim), "%s/victim", f.root);
    vt_write_file(f.root, "victim", "untouched", 9);
    snprintf(path, sizeof(path), "%s/motd", f.managed);
    ck_assert_int_eq(symlink(victim, path), 0);
    vigil_action_result res = VIGIL_ACTION_RESULT_INIT;
    ck_assert_int_eq(run(&f, path, sha, NULL, NULL, &res), VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_SUCCEEDED);
    assert_file(path, "desired\n", 0644);
    assert_file(victim, "untouched", 0644);
    vigil_action_result_clear(&res);
    fx_free(&f);
}
END_TEST

START_TEST(bad_params_are_refused)
{
    fixture f;
    fx_init(&f, NULL);
    char sha[65], path[700];
    put_blob(&f, NULL, "x", 1, sha);
    snprintf(path, sizeof(path), "%s/motd", f.managed);
    vigil_action_result res = VIGIL_ACTION_RESULT_INIT;
    ck_assert_int_eq(run(&f, NULL, sha, NULL, NULL, &res), VIGIL_EPERM);
    ck_assert_ptr_nonnull(strstr(res.output, "param path is required"));
    ck_assert_int_eq(run(&f, path, NULL, NULL, NULL, &res), VIGIL_EPERM);
    ck_assert_ptr_nonnull(strstr(res.output, "param sha256 is required"));
    char upper[65];
    for (int i = 0; i < 64; i++)
        upper[i] = (char)(sha[i] >= 'a' ? sha[i] - 32 : sha[i]);
    upper[64] = '\0';
    ck_assert_int_eq(run(&f, path, "abc", NULL, NULL, &res), VIGIL_EPERM);
    ck_assert_ptr_nonnull(strstr(res.output, "param sha256 must be 64 lowercase hex digits"));
    if (strcmp(upper, sha) != 0)
        ck_assert_int_eq(run(&f, path, upper, NULL, NULL, &res), VIGIL_EPERM);
    ck_assert_int_eq(run(&f, path, sha, "0888", NULL, &res), VIGIL_EPERM);
    ck_assert_ptr_nonnull(strstr(res.output, "param mode must be an octal mode from 0 to 0777"));
    ck_assert_int_eq(run(&f, path, sha, "4755", NULL, &res), VIGIL_EPERM);
    ck_assert_int_eq(run(&f, path, sha, "rw", NULL, &res), VIGIL_EPERM);
    ck_assert_int_eq(run(&f, path, sha, NULL, "root;x", &res), VIGIL_EPERM);
    ck_assert_ptr_nonnull(strstr(res.output, "param owner must be a user name or a uid"));
    ck_assert_int_ne(access(path, F_OK), 0);

    /* an unknown user fails; a chown without privilege fails and replaces nothing */
    ck_assert_int_eq(run(&f, path, sha, NULL, "no_such_user_vigil", &res), VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_FAILED);
    ck_assert_str_eq(res.reason, "owner_unknown");
    if (geteuid() != 0) {
        ck_assert_int_eq(run(&f, path, sha, NULL, "0", &res), VIGIL_OK);
        ck_assert_int_eq(res.status, VIGIL_ACTION_FAILED);
        ck_assert_str_eq(res.reason, "chown_failed");
        ck_assert_ptr_nonnull(strstr(res.output, "(changing the owner of a file needs privilege)"));
        ck_assert_int_ne(access(path, F_OK), 0);
        assert_no_tmp(f.managed);
    }

    /* dry run says what it would do */
    vigil_action_param p[2] = {{"path", path}, {"sha256", sha}};
    vigil_action_request rq = at_req("restore_file", "web-01/File/motd");
    rq.params = p;
    rq.nparams = 2;
    rq.dry_run = 1;
    ck_assert_int_eq(vigil_action_registry_execute(f.reg, &rq, NULL, &res), VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_DRY_RUN);
    char want[2048];
    snprintf(want, sizeof(want),
             "dry run: restore_file (restore_file): would restore \"%s\" from %s/%s", path, f.blobs,
             sha);
    ck_assert_str_eq(res.output, want);
    vigil_action_result_clear(&res);
    fx_free(&f);
}
END_TEST

static int configure_error(const char *yaml)
{
    vigil_config *cfg = at_load(yaml);
    vigil_action_registry *r = at_registry(NULL);
    int rc = vigil_action_registry_configure(r, at_actions(cfg));
    vigil_action_registry_free(r);
    vigil_config_free(cfg);
    return rc;
}

START_TEST(config_is_checked)
{
    ck_assert_int_eq(configure_error("actions:\n  - {name: r, type: restore_file, paths: [/a/],"
                                     " params: {path: x, sha256: x}}\n"),
                     VIGIL_EMISSING);
    vt_assert_error(VIGIL_EMISSING, "missing required key \"blobs_dir\"");
    ck_assert_int_eq(configure_error("actions:\n  - {name: r, type: restore_file, blobs_dir: /b,"
                                     " params: {path: x, sha256: x}}\n"),
                     VIGIL_EMISSING);
    vt_assert_error(VIGIL_EMISSING, "missing required key \"paths\"");
    ck_assert_int_eq(configure_error("actions:\n  - {name: r, type: restore_file, blobs_dir: /b,"
                                     " paths: [], params: {path: x, sha256: x}}\n"),
                     VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE, "expected at least one path prefix the action may write");
    ck_assert_int_eq(configure_error("actions:\n  - {name: r, type: restore_file, blobs_dir: /b,"
                                     " paths: [/a/../b/], params: {path: x, sha256: x}}\n"),
                     VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE, "a \"..\" component is not allowed");
    ck_assert_int_eq(configure_error("actions:\n  - {name: r, type: restore_file, blobs_dir: /b,"
                                     " paths: [/a/], params: {path: x}}\n"),
                     VIGIL_EMISSING);
    vt_assert_error(VIGIL_EMISSING, "restore_file needs `params` to list \"sha256\"");
    ck_assert_int_eq(configure_error("actions:\n  - {name: r, type: restore_file, blobs_dir: /b,"
                                     " paths: [/a/], params: {path: x, sha256: x}, mode: 1}\n"),
                     VIGIL_EUNKNOWNKEY);
}
END_TEST

typedef struct oom_ctx {
    fixture *f;
    char path[700];
    char sha[65];
    vigil_action_result res;
} oom_ctx;

static int oom_op(void *p)
{
    oom_ctx *c = p;
    int rc = run(c->f, c->path, c->sha, "0600", NULL, &c->res);
    if (rc)
        return rc;
    ck_assert_msg(c->res.status == VIGIL_ACTION_SUCCEEDED, "status %d: %s %s", c->res.status,
                  c->res.reason ? c->res.reason : "", c->res.output ? c->res.output : "");
    return VIGIL_OK;
}

static void oom_cleanup(void *p)
{
    oom_ctx *c = p;
    vigil_action_result_clear(&c->res);
}

START_TEST(allocation_failures_leak_nothing)
{
    vt_alloc_install();
    fixture f;
    fx_init(&f, NULL);
    oom_ctx c;
    memset(&c, 0, sizeof(c));
    vigil_action_result init = VIGIL_ACTION_RESULT_INIT;
    c.res = init;
    c.f = &f;
    put_blob(&f, NULL, "swept\n", 6, c.sha);
    snprintf(c.path, sizeof(c.path), "%s/swept", f.managed);
    ck_assert_int_gt(vt_oom_sweep(oom_op, oom_cleanup, &c, 0), 3);
    assert_file(c.path, "swept\n", 0600);
    assert_no_tmp(f.managed);
    fx_free(&f);
}
END_TEST

static Suite *restore_file_suite(void)
{
    Suite *s = suite_create("restore_file");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, restores_bytes_and_mode);
    tcase_add_test(tc, blob_problems_fail_and_leave_the_file);
    tcase_add_test(tc, paths_outside_the_prefixes_are_refused);
    tcase_add_test(tc, symlink_at_the_path_is_replaced_not_followed);
    tcase_add_test(tc, bad_params_are_refused);
    tcase_add_test(tc, config_is_checked);
    tcase_add_test(tc, allocation_failures_leak_nothing);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(restore_file_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
