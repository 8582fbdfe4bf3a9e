/* Helpers shared by the unit suites: a counting allocator that can fail the
 * Nth allocation, an out-of-memory sweep, temporary directories. */
#ifndef VIGIL_TESTUTIL_H
#define VIGIL_TESTUTIL_H

#include <check.h>
#include <stddef.h>

#include "vigil/vigil.h"

/* Installs the counting allocator (idempotent). */
void vt_alloc_install(void);
/* Makes the allocation with index `n` (0-based, counted from now) fail, and
 * every one after it while `sticky`; n < 0 disables failures. */
void vt_alloc_fail_at(long n, int sticky);
/* Allocations made since vt_alloc_fail_at() was last called. */
long vt_alloc_count(void);
/* Blocks currently allocated through the library's allocator. */
long vt_alloc_live(void);

/* Runs `op` with allocation n failing, for n = 0, 1, 2, ... until it returns
 * VIGIL_OK. Every failing run must return VIGIL_ENOMEM (or `alt_code` when
 * not 0, e.g. for an operation that reports OOM through another code), and
 * after `cleanup` no block may be left allocated. Returns the number of
 * failing runs. Uses ck_assert, so call it inside a test. */
typedef int (*vt_op)(void *ctx);
typedef void (*vt_cleanup)(void *ctx);
long vt_oom_sweep(vt_op op, vt_cleanup cleanup, void *ctx, int alt_code);

/* Creates a fresh temporary directory (removed at exit) and returns its path. */
const char *vt_tmpdir(void);
/* Writes `len` bytes to `dir/name` and returns the full path (static buffer rotated 8 deep). */
const char *vt_write_file(const char *dir, const char *name, const char *data, size_t len);
/* The source tree's root ($VIGIL_TEST_SRCDIR or "."). */
const char *vt_srcdir(void);

/* Asserts the last error's code and that its message contains `needle`. */
#define vt_assert_error(code_, needle_)                                                      \
    do {                                                                                     \
        const vigil_error *e_ = vigil_error_last();                                          \
        ck_assert_msg(e_->code == (code_), "expected code %d, got %d (%s)", (int)(code_),    \
                      e_->code, e_->message);                                                \
        ck_assert_msg(strstr(e_->message, (needle_)) != NULL, "message \"%s\" lacks \"%s\"", \
                      e_->message, (needle_));                                               \
    } while (0)

#endif
