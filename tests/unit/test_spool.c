/* The agent's on-disk spool: FIFO across reopen, torn and corrupt records,
 * bounds (oldest dropped and counted), locking, bad input. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/spool.h"
#include "testutil.h"

/* A new empty directory. All of them live in one vt_tmpdir() per process,
 * so that suites run without fork (valgrind) stay within its limit. */
static const char *fresh_dir(void)
{
    static char base[512], out[8][600];
    static int n;
    if (!base[0])
        snprintf(base, sizeof(base), "%s", vt_tmpdir());
    char *p = out[n % 8];
    snprintf(p, sizeof(out[0]), "%s/d%d", base, n);
    n++;
    ck_assert_msg(mkdir(p, 0700) == 0, "mkdir %s: %s", p, strerror(errno));
    return p;
}

static char g_log[16384];

static void log_cb(const vigil_log_record *r, void *payload)
{
    (void)payload;
    size_t len = strlen(g_log);
    snprintf(g_log + len, sizeof(g_log) - len, "%s %s\n", r->message, r->fields);
}

static const vigil_logger g_logger = {log_cb, NULL, VIGIL_LOG_DEBUG};

static vigil__spool *open_spool(const char *dir, uint64_t max)
{
    vigil__spool *sp = NULL;
    vigil__spool_options o = {dir, max, 1, &g_logger};
    int rc = vigil__spool_open(&sp, &o);
    ck_assert_msg(rc == VIGIL_OK, "open: %s", vigil_error_last()->message);
    return sp;
}

static void put(vigil__spool *sp, int i, size_t pad)
{
    char buf[4096];
    int n = snprintf(buf, sizeof(buf), "record-%05d:", i);
    ck_assert_uint_lt((size_t)n + pad, sizeof(buf));
    memset(buf + n, 'a' + i % 26, pad);
    ck_assert_int_eq(vigil__spool_append(sp, buf, (size_t)n + pad), VIGIL_OK);
}

/* Pops the head and returns its record number. */
static int take(vigil__spool *sp)
{
    vigil_buf b = VIGIL_BUF_INIT;
    int rc = vigil__spool_peek(sp, &b);
    ck_assert_msg(rc == VIGIL_OK, "peek: %s", vigil_error_last()->message);
    int i = -1;
    ck_assert_int_eq(sscanf(b.ptr, "record-%d:", &i), 1);
    /* the padding must be intact */
    const char *colon = strchr(b.ptr, ':');
    for (const char *p = colon + 1; p < b.ptr + b.size; p++)
        ck_assert_int_eq(*p, 'a' + i % 26);
    vigil_buf_dispose(&b);
    ck_assert_int_eq(vigil__spool_pop(sp), VIGIL_OK);
    return i;
}

static vigil__spool_stats stats(const vigil__spool *sp)
{
    vigil__spool_stats st;
    vigil__spool_stats_get(sp, &st);
    return st;
}

/* Path of the newest (or oldest) segment file in dir. */
static void seg_file(const char *dir, int newest, char *out, size_t n)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    char best[256] = "";
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strstr(de->d_name, ".seg"))
            continue;
        if (!best[0] || (newest ? strcmp(de->d_name, best) > 0 : strcmp(de->d_name, best) < 0))
            snprintf(best, sizeof(best), "%s", de->d_name);
    }
    closedir(d);
    ck_assert_msg(best[0], "no segment in %s", dir);
    snprintf(out, n, "%s/%s", dir, best);
}

static int count_segs(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += strstr(de->d_name, ".seg") != NULL;
    closedir(d);
    return n;
}

static off_t file_size(const char *path)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return st.st_size;
}

START_TEST(fifo_survives_reopen)
{
    const char *dir = fresh_dir();
    char sub[600];
    snprintf(sub, sizeof(sub), "%s/a/b/spool", dir); /* created with its parents */
    vigil__spool *sp = open_spool(sub, 0);
    for (int i = 0; i < 10; i++)
        put(sp, i, 10);
    ck_assert_uint_eq(stats(sp).records, 10);
    ck_assert_int_eq(take(sp), 0);
    ck_assert_int_eq(take(sp), 1);
    vigil__spool_close(sp);

    sp = open_spool(sub, 0);
    ck_assert_uint_eq(stats(sp).records, 8);
    ck_assert_uint_eq(stats(sp).corrupt, 0);
    put(sp, 10, 5);
    for (int i = 2; i <= 10; i++)
        ck_assert_int_eq(take(sp), i);
    vigil_buf b = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil__spool_peek(sp, &b), VIGIL_ENOTFOUND);
    vt_assert_error(VIGIL_ENOTFOUND, "spool is empty");
    ck_assert_int_eq(vigil__spool_pop(sp), VIGIL_ENOTFOUND);
    vigil_buf_dispose(&b);
    /* an emptied spool shrinks back to one segment header */
    ck_assert_uint_eq(stats(sp).bytes, VIGIL__SPOOL_SEG_HDR);
    vigil__spool_close(sp);

    struct stat st;
    ck_assert_int_eq(stat(sub, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0700);
}
END_TEST

START_TEST(torn_tail_is_skipped)
{
    const char *dir = fresh_dir();
    vigil__spool *sp = open_spool(dir, 0);
    for (int i = 0; i < 3; i++)
        put(sp, i, 100);
    vigil__spool_close(sp);

    /* power loss in the middle of the third append: cut 30 bytes off */
    char path[1024];
    seg_file(dir, 1, path, sizeof(path));
    off_t full = file_size(path);
    ck_assert_int_eq(truncate(path, full - 30), 0);

    g_log[0] = '\0';
    sp = open_spool(dir, 0);
    ck_assert_uint_eq(stats(sp).records, 2);
    ck_assert_uint_eq(stats(sp).corrupt, 1);
    ck_assert_ptr_nonnull(strstr(g_log, "torn record at the end of the spool skipped"));
    ck_assert_ptr_nonnull(strstr(g_log, "dropped_bytes=103"));
    /* the torn bytes are gone, so appending continues cleanly */
    put(sp, 3, 7);
    ck_assert_int_eq(take(sp), 0);
    ck_assert_int_eq(take(sp), 1);
    ck_assert_int_eq(take(sp), 3);
    ck_assert_uint_eq(stats(sp).records, 0);
    vigil__spool_close(sp);
}
END_TEST

START_TEST(torn_header_and_garbage_tail)
{
    const char *dir = fresh_dir();
    vigil__spool *sp = open_spool(dir, 0);
    put(sp, 0, 50);
    vigil__spool_close(sp);
    char path[1024];
    seg_file(dir, 1, path, sizeof(path));
    off_t one = file_size(path);

    /* only part of the next header reached the disk */
    int fd = open(path, O_WRONLY | O_APPEND);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "VSPR\x10\x00", 6), 6);
    close(fd);
    sp = open_spool(dir, 0);
    ck_assert_uint_eq(stats(sp).records, 1);
    ck_assert_uint_eq(stats(sp).corrupt, 1);
    vigil__spool_close(sp);
    ck_assert_int_eq(file_size(path), one);

    /* zero-filled blocks after a crash (the file grew, the data did not land) */
    fd = open(path, O_WRONLY | O_APPEND);
    char zeros[4096] = {0};
    ck_assert_int_eq(write(fd, zeros, sizeof(zeros)), (ssize_t)sizeof(zeros));
    close(fd);
    sp = open_spool(dir, 0);
    ck_assert_uint_eq(stats(sp).records, 1);
    ck_assert_int_eq(take(sp), 0);
    vigil__spool_close(sp);
}
END_TEST

START_TEST(corrupt_payload_is_never_replayed)
{
    const char *dir = fresh_dir();
    vigil__spool *sp = open_spool(dir, 0);
    for (int i = 0; i < 3; i++)
        put(sp, i, 100);
    vigil__spool_close(sp);
    char path[1024];
    seg_file(dir, 1, path, sizeof(path));
    /* flip a byte inside the last record's payload */
    off_t size = file_size(path);
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    char c;
    ck_assert_int_eq(pread(fd, &c, 1, size - 10), 1);
    c ^= 0x55;
    ck_assert_int_eq(pwrite(fd, &c, 1, size - 10), 1);
    close(fd);

    sp = open_spool(dir, 0);
    ck_assert_uint_eq(stats(sp).records, 2);
    ck_assert_uint_eq(stats(sp).corrupt, 1);
    ck_assert_int_eq(take(sp), 0);
    ck_assert_int_eq(take(sp), 1);
    vigil_buf b = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil__spool_peek(sp, &b), VIGIL_ENOTFOUND);
    vigil_buf_dispose(&b);
    vigil__spool_close(sp);
}
END_TEST

START_TEST(damage_after_open_is_detected_on_read)
{
    const char *dir = fresh_dir();
    vigil__spool *sp = open_spool(dir, 0);
    put(sp, 0, 100);
    put(sp, 1, 100);
    char path[1024];
    seg_file(dir, 1, path, sizeof(path));
    /* damage the first record's payload behind the spool's back */
    int fd = open(path, O_RDWR);
    char c = 'X';
    ck_assert_int_eq(pwrite(fd, &c, 1, VIGIL__SPOOL_SEG_HDR + VIGIL__SPOOL_REC_HDR + 20), 1);
    close(fd);
    vigil_buf b = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil__spool_peek(sp, &b), VIGIL_ENOTFOUND);
    ck_assert_uint_eq(stats(sp).corrupt, 1);
    ck_assert_uint_eq(stats(sp).records, 0);
    vigil_buf_dispose(&b);
    /* the spool keeps working */
    put(sp, 2, 10);
    ck_assert_int_eq(take(sp), 2);
    vigil__spool_close(sp);
}
END_TEST

START_TEST(corrupt_older_segment_skips_only_its_rest)
{
    const char *dir = fresh_dir();
    /* 8 KiB spool: segments of 1 KiB, so records of ~420 bytes make several */
    vigil__spool *sp = open_spool(dir, 8192);
    for (int i = 0; i < 6; i++)
        put(sp, i, 400);
    int nseg = count_segs(dir);
    ck_assert_int_ge(nseg, 3);
    vigil__spool_close(sp);
    char oldest[1024];
    seg_file(dir, 0, oldest, sizeof(oldest));
    /* break the magic of the first record of the oldest segment */
    int fd = open(oldest, O_RDWR);
    ck_assert_int_eq(pwrite(fd, "XXXX", 4, VIGIL__SPOOL_SEG_HDR), 4);
    close(fd);
    sp = open_spool(dir, 8192);
    ck_assert_uint_eq(stats(sp).corrupt, 1);
    vigil__spool_stats st = stats(sp);
    ck_assert_uint_lt(st.records, 6);
    ck_assert_uint_ge(st.records, 4);
    /* what remains comes out in order */
    int prev = take(sp);
    while (stats(sp).records > 0) {
        int next = take(sp);
        ck_assert_int_eq(next, prev + 1);
        prev = next;
    }
    ck_assert_int_eq(prev, 5);
    vigil__spool_close(sp);
}
END_TEST

START_TEST(full_spool_drops_oldest_and_counts)
{
    const char *dir = fresh_dir();
    const uint64_t max = 8192;
    vigil__spool *sp = open_spool(dir, max);
    for (int i = 0; i < 100; i++) {
        put(sp, i, 200);
        ck_assert_uint_le(stats(sp).bytes, max);
    }
    vigil__spool_stats st = stats(sp);
    ck_assert_uint_gt(st.dropped, 0);
    ck_assert_ptr_nonnull(strstr(g_log, "spool full; oldest records dropped"));
    ck_assert_uint_eq(st.dropped + st.records, 100);
    /* the newest survive, in order, ending with the last one written */
    int first = take(sp), prev = first;
    ck_assert_int_eq(first, (int)st.dropped);
    while (stats(sp).records > 0) {
        int next = take(sp);
        ck_assert_int_eq(next, prev + 1);
        prev = next;
    }
    ck_assert_int_eq(prev, 99);
    vigil__spool_close(sp);

    /* the files on disk respect the bound too */
    DIR *d = opendir(dir);
    struct dirent *de;
    off_t total = 0;
    while ((de = readdir(d)) != NULL) {
        if (!strstr(de->d_name, ".seg"))
            continue;
        char p[1024];
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        total += file_size(p);
    }
    closedir(d);
    ck_assert_int_le(total, (off_t)max);
}
END_TEST

START_TEST(reopen_with_smaller_bound)
{
    const char *dir = fresh_dir();
    vigil__spool *sp = open_spool(dir, 65536);
    for (int i = 0; i < 100; i++)
        put(sp, i, 200);
    vigil__spool_close(sp);
    sp = open_spool(dir, 8192);
    ck_assert_uint_eq(stats(sp).records, 100);
    put(sp, 100, 10); /* makes room: oldest segments go */
    vigil__spool_stats st = stats(sp);
    ck_assert_uint_le(st.bytes, 8192);
    ck_assert_uint_eq(st.records + st.dropped, 101);
    vigil__spool_close(sp);
}
END_TEST

START_TEST(bad_input)
{
    vigil__spool *sp = NULL;
    vigil__spool_options o = {NULL, 0, 1, &g_logger};
    ck_assert_int_eq(vigil__spool_open(&sp, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "directory path is required");
    const char *dir = fresh_dir();
    o.path = dir;
    o.max_size = 100;
    ck_assert_int_eq(vigil__spool_open(&sp, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "max_size must be at least 4096 bytes, got 100");

    /* a file where the directory should be */
    const char *file = vt_write_file(dir, "plain", "x", 1);
    o.path = file;
    o.max_size = 0;
    ck_assert_int_eq(vigil__spool_open(&sp, &o), VIGIL_EIO);
    vt_assert_error(VIGIL_EIO, "not a directory");
    ck_assert_ptr_null(sp);

    sp = open_spool(dir, 4096);
    ck_assert_int_eq(vigil__spool_append(sp, "", 0), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "empty record");
    ck_assert_int_eq(vigil__spool_append(sp, NULL, 3), VIGIL_EINVAL);
    static char big[5000];
    ck_assert_int_eq(vigil__spool_append(sp, big, sizeof(big)), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "does not fit a spool of 4096 bytes");
    ck_assert_int_eq(vigil__spool_peek(sp, NULL), VIGIL_EINVAL);
    ck_assert_int_eq(vigil__spool_pop(NULL), VIGIL_EINVAL);
    vigil__spool_close(sp);
    vigil__spool_close(NULL);
}
END_TEST

START_TEST(one_spool_per_directory)
{
    const char *dir = fresh_dir();
    vigil__spool *a = open_spool(dir, 0), *b = NULL;
    vigil__spool_options o = {dir, 0, 1, &g_logger};
    ck_assert_int_eq(vigil__spool_open(&b, &o), VIGIL_EBUSY);
    vt_assert_error(VIGIL_EBUSY, "in use by another process");
    vigil__spool_close(a);
    ck_assert_int_eq(vigil__spool_open(&b, &o), VIGIL_OK);
    vigil__spool_close(b);
}
END_TEST

START_TEST(newer_format_is_refused)
{
    const char *dir = fresh_dir();
    char hdr[16] = "VIGSPOOL\x07\x00\x00\x00";
    vt_write_file(dir, "0000000000000001.seg", hdr, sizeof(hdr));
    vigil__spool *sp = NULL;
    vigil__spool_options o = {dir, 0, 1, &g_logger};
    ck_assert_int_eq(vigil__spool_open(&sp, &o), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "newer version (format 7)");
    /* files that are not segments are left alone */
    vt_write_file(dir, "0000000000000001.seg", "junk", 4);
    vt_write_file(dir, "notes.txt", "hello", 5);
    sp = open_spool(dir, 0);
    ck_assert_uint_eq(stats(sp).records, 0);
    put(sp, 1, 1);
    ck_assert_int_eq(take(sp), 1);
    vigil__spool_close(sp);
    char p[1024];
    snprintf(p, sizeof(p), "%s/notes.txt", dir);
    ck_assert_int_eq(access(p, F_OK), 0);
}
END_TEST

typedef struct {
    const char *dir;
    vigil__spool *sp;
} oom_ctx;

static int oom_open(void *p)
{
    oom_ctx *c = p;
    vigil__spool_options o = {c->dir, 8192, 1, &g_logger};
    int rc = vigil__spool_open(&c->sp, &o);
    if (rc)
        return rc;
    vigil_buf b = VIGIL_BUF_INIT;
    rc = vigil__spool_peek(c->sp, &b);
    vigil_buf_dispose(&b);
    if (!rc)
        rc = vigil__spool_append(c->sp, "more", 4);
    return rc;
}

static void oom_close(void *p)
{
    oom_ctx *c = p;
    vigil__spool_close(c->sp);
    c->sp = NULL;
}

START_TEST(oom_sweep_open_and_append)
{
    const char *dir = fresh_dir();
    vigil__spool *sp = open_spool(dir, 8192);
    for (int i = 0; i < 20; i++)
        put(sp, i, 200);
    vigil__spool_close(sp);
    oom_ctx c = {dir, NULL};
    ck_assert_int_gt(vt_oom_sweep(oom_open, oom_close, &c, 0), 0);
}
END_TEST

static Suite *spool_suite(void)
{
    Suite *s = suite_create("spool");
    TCase *tc = tcase_create("spool");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, fifo_survives_reopen);
    tcase_add_test(tc, torn_tail_is_skipped);
    tcase_add_test(tc, torn_header_and_garbage_tail);
    tcase_add_test(tc, corrupt_payload_is_never_replayed);
    tcase_add_test(tc, damage_after_open_is_detected_on_read);
    tcase_add_test(tc, corrupt_older_segment_skips_only_its_rest);
    tcase_add_test(tc, full_spool_drops_oldest_and_counts);
    tcase_add_test(tc, reopen_with_smaller_bound);
    tcase_add_test(tc, bad_input);
    tcase_add_test(tc, one_spool_per_directory);
    tcase_add_test(tc, newer_format_is_refused);
    tcase_add_test(tc, oom_sweep_open_and_append);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(spool_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
