/* How the dashboard's files are opened (lib/hub/ui.c): beneath their
 * directory only, with openat2(RESOLVE_BENEATH) and with the real-path
 * check used where the kernel lacks it; both refuse every symbolic link that
 * leads out of the directory. (The daemon over HTTP: test_ui_static.) */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hub/hub_int.h"
#include "testutil.h"

typedef struct tree {
    char root[512]; /* holds secret.txt and www/ */
    char www[600];
    int dfd;
} tree;

static void link_at(const tree *t, const char *target, const char *name)
{
    char p[700];
    snprintf(p, sizeof(p), "%s/%s", t->www, name);
    ck_assert_int_eq(symlink(target, p), 0);
}

static void make_tree(tree *t)
{
    snprintf(t->root, sizeof(t->root), "%s", vt_tmpdir());
    snprintf(t->www, sizeof(t->www), "%s/www", t->root);
    ck_assert_int_eq(mkdir(t->www, 0755), 0);
    char p[700];
    snprintf(p, sizeof(p), "%s/sub", t->www);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    vt_write_file(t->root, "secret.txt", "secret", 6);
    vt_write_file(t->www, "app.js", "app", 3);
    vt_write_file(p, "deep.js", "deep", 4);
    link_at(t, "app.js", "inside.js");
    link_at(t, "../app.js", "sub/up.js");
    link_at(t, "../secret.txt", "out.txt");
    link_at(t, "../../secret.txt", "sub/out2.txt");
    link_at(t, "..", "parent");
    link_at(t, "loop", "loop");
    char abs[700];
    snprintf(abs, sizeof(abs), "%s/secret.txt", t->root);
    link_at(t, abs, "abs.txt");
    t->dfd = open(t->www, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_ge(t->dfd, 0);
}

/* Opens rel and returns its first bytes ("" when empty), or NULL with errno. */
static const char *read_rel(const tree *t, const char *rel, int no_openat2)
{
    static char buf[16];
    errno = 0;
    int fd = vigil__hub_ui_open(t->dfd, t->www, rel, no_openat2);
    if (fd < 0)
        return NULL;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static void expect_errno(const tree *t, const char *rel, int no_openat2, int want)
{
    const char *got = read_rel(t, rel, no_openat2);
    int err = errno;
    ck_assert_msg(got == NULL, "%s (no_openat2=%d): opened, read \"%s\"", rel, no_openat2, got);
    ck_assert_msg(err == want, "%s (no_openat2=%d): errno %d (%s), expected %d (%s)", rel,
                  no_openat2, err, strerror(err), want, strerror(want));
}

START_TEST(files_open_beneath_their_directory)
{
    tree t;
    make_tree(&t);
    for (int legacy = 0; legacy <= 1; legacy++) {
        ck_assert_str_eq(read_rel(&t, "app.js", legacy), "app");
        ck_assert_str_eq(read_rel(&t, "sub/deep.js", legacy), "deep");
        ck_assert_str_eq(read_rel(&t, "inside.js", legacy), "app");
        ck_assert_str_eq(read_rel(&t, "sub/up.js", legacy), "app"); /* out and back in */
        expect_errno(&t, "out.txt", legacy, EXDEV);
        expect_errno(&t, "sub/out2.txt", legacy, EXDEV);
        expect_errno(&t, "parent/secret.txt", legacy, EXDEV);
        expect_errno(&t, "nope.js", legacy, ENOENT);
        expect_errno(&t, "app.js/", legacy, ENOTDIR);
        expect_errno(&t, "loop", legacy, ELOOP);
        /* a directory opens; the caller refuses it after fstat() */
        int fd = vigil__hub_ui_open(t.dfd, t.www, "sub", legacy);
        ck_assert_int_ge(fd, 0);
        struct stat st;
        ck_assert_int_eq(fstat(fd, &st), 0);
        ck_assert(S_ISDIR(st.st_mode));
        close(fd);
    }
    /* an absolute link out: refused both ways */
    expect_errno(&t, "abs.txt", 0, EXDEV);
    expect_errno(&t, "abs.txt", 1, EXDEV);
    /* and with openat2, an absolute link even to a file inside */
    char abs_in[700];
    snprintf(abs_in, sizeof(abs_in), "%s/app.js", t.www);
    link_at(&t, abs_in, "abs_in.js");
    expect_errno(&t, "abs_in.js", 0, EXDEV);
    ck_assert_str_eq(read_rel(&t, "abs_in.js", 1), "app");
    close(t.dfd);
}
END_TEST

static Suite *hub_ui_suite(void)
{
    Suite *s = suite_create("hub_ui");
    TCase *tc = tcase_create("open");
    tcase_add_test(tc, files_open_beneath_their_directory);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(hub_ui_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
