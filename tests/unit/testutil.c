#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Each block carries a header with its size, so realloc can be counted. */
typedef struct {
    size_t size;
    size_t pad;
} hdr;

static long g_count;
static long g_fail_at = -1;
static int g_sticky;
static long g_live;
static int g_installed;

static int should_fail(void)
{
    long idx = g_count++;
    if (g_fail_at < 0)
        return 0;
    return g_sticky ? idx >= g_fail_at : idx == g_fail_at;
}

static void *t_malloc(size_t size, void *payload)
{
    (void)payload;
    if (should_fail())
        return NULL;
    hdr *h = malloc(sizeof(hdr) + size);
    if (!h)
        return NULL;
    h->size = size;
    __atomic_add_fetch(&g_live, 1, __ATOMIC_RELAXED);
    return h + 1;
}

static void *t_realloc(void *ptr, size_t size, void *payload)
{
    (void)payload;
    if (!ptr)
        return t_malloc(size, NULL);
    if (should_fail())
        return NULL;
    hdr *h = (hdr *)ptr - 1;
    hdr *n = realloc(h, sizeof(hdr) + size);
    if (!n)
        return NULL;
    n->size = size;
    return n + 1;
}

static void t_free(void *ptr, void *payload)
{
    (void)payload;
    if (!ptr)
        return;
    __atomic_sub_fetch(&g_live, 1, __ATOMIC_RELAXED);
    free((hdr *)ptr - 1);
}

void vt_alloc_install(void)
{
    if (g_installed)
        return;
    vigil_allocator a = {VIGIL_ALLOCATOR_VERSION, t_malloc, t_realloc, t_free, NULL};
    ck_assert_int_eq(vigil_allocator_set(&a), VIGIL_OK);
    g_installed = 1;
}

void vt_alloc_fail_at(long n, int sticky)
{
    g_count = 0;
    g_fail_at = n;
    g_sticky = sticky;
}

long vt_alloc_count(void)
{
    return g_count;
}

long vt_alloc_live(void)
{
    return __atomic_load_n(&g_live, __ATOMIC_RELAXED);
}

long vt_oom_sweep(vt_op op, vt_cleanup cleanup, void *ctx, int alt_code)
{
    vt_alloc_install();
    long base = vt_alloc_live();
    for (long n = 0; n < 1000000; n++) {
        vt_alloc_fail_at(n, 0);
        int rc = op(ctx);
        vt_alloc_fail_at(-1, 0);
        if (cleanup)
            cleanup(ctx);
        ck_assert_msg(vt_alloc_live() == base, "allocation %ld failing leaked %ld blocks", n,
                      vt_alloc_live() - base);
        if (rc == VIGIL_OK)
            return n;
        ck_assert_msg(rc == VIGIL_ENOMEM || (alt_code && rc == alt_code),
                      "allocation %ld failing gave %d (%s), expected VIGIL_ENOMEM", n, rc,
                      vigil_error_last()->message);
    }
    ck_abort_msg("operation never succeeded");
    return -1;
}

/* Every directory made, removed at exit. Grows: with CK_FORK=no (as under
 * valgrind) all the tests of a suite share one process. */
static char **g_tmp;
static int g_ntmp, g_captmp, g_atexit;

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_tmpdirs(void)
{
    const char *keep = getenv("VIGIL_TEST_KEEP");
    for (int i = 0; i < g_ntmp; i++) {
        if (!keep)
            nftw(g_tmp[i], rm_cb, 16, FTW_DEPTH | FTW_PHYS);
        free(g_tmp[i]);
    }
    free(g_tmp);
    g_tmp = NULL;
    g_ntmp = g_captmp = 0;
}

const char *vt_tmpdir(void)
{
    if (g_ntmp == g_captmp) {
        int cap = g_captmp ? g_captmp * 2 : 8;
        char **n = realloc(g_tmp, (size_t)cap * sizeof(*n));
        ck_assert_ptr_nonnull(n);
        g_tmp = n;
        g_captmp = cap;
    }
    const char *base = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof(path), "%s/vigil-test-XXXXXX", base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(path));
    ck_assert_ptr_nonnull(g_tmp[g_ntmp] = strdup(path));
    if (!g_atexit++)
        atexit(rm_tmpdirs);
    return g_tmp[g_ntmp++];
}

const char *vt_write_file(const char *dir, const char *name, const char *data, size_t len)
{
    static char paths[8][1024];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, 1024, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    ck_assert_msg(f != NULL, "cannot write %s: %s", p, strerror(errno));
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
    return p;
}

const char *vt_srcdir(void)
{
    const char *s = getenv("VIGIL_TEST_SRCDIR");
    return s && *s ? s : ".";
}
