/*
 * Private helpers shared by every file of the library. Never installed.
 * Functions named vigil__<module>_<verb> are library-internal: they are not
 * exported from the shared library (hidden visibility) and are not API.
 */
#ifndef VIGIL_INTERNAL_COMMON_H
#define VIGIL_INTERNAL_COMMON_H

#include "vigil/allocator.h"
#include "vigil/buf.h"
#include "vigil/common.h"
#include "vigil/errors.h"
#include "vigil/log.h"
#include "vigil/scalar.h"
#include "vigil/sys/errors.h"
#include "vigil/types.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define VIGIL__PRINTF(f, a) __attribute__((format(printf, f, a)))
#define VIGIL__UNUSED       __attribute__((unused))
#else
#define VIGIL__PRINTF(f, a)
#define VIGIL__UNUSED
#endif

#define VIGIL__ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The empty vigil_action_result (vigil/action.h) the library starts from:
 * versioned, status FAILED, exit_code -1 ("no program ran"), the rest zero.
 * The public VIGIL_ACTION_RESULT_INIT is all zero but the version, as every INIT. */
#define VIGIL__ACTION_RESULT_EMPTY                                                            \
    {                                                                                         \
        VIGIL_ACTION_RESULT_VERSION, NULL, VIGIL_ACTION_FAILED, NULL, NULL, 0, 0, -1, 0, 0, 0 \
    }

/* ---- allocation (lib/core/alloc.c): every allocation goes through here ---- */
void *vigil__malloc(size_t size);
void *vigil__calloc(size_t n, size_t size);
void *vigil__realloc(void *ptr, size_t size);
/* Grows an array to hold at least `need` elements of `elem` bytes; doubles. */
int vigil__array_grow(void **ptr, size_t *cap, size_t need, size_t elem);
void vigil__free(void *ptr);
char *vigil__strdup(const char *s);
char *vigil__strndup(const char *s, size_t n);
/* Overwrites a secret NUL-terminated string with zeros, then frees it (NULL
 * is a no-op). */
void vigil__free_wiped(char *s);

/* ---- errors (lib/core/error.c) ---- */
/* Records the thread's last error and returns `code`, so callers can write
 * `return vigil__error_set(VIGIL_EINVAL, "...")`. */
int vigil__error_set(int code, const char *fmt, ...) VIGIL__PRINTF(2, 3);
int vigil__error_setv(int code, const char *fmt, va_list ap) VIGIL__PRINTF(2, 0);
/* As vigil__error_set, with a file location; the message is prefixed with
 * "file:line:col: ". */
int vigil__error_set_at(int code, const char *file, unsigned line, unsigned col, const char *fmt,
                        ...) VIGIL__PRINTF(5, 6);
/* The one rule for the version of an options, request or output struct
 * (docs/architecture.md, "Options structs"): 1..current is accepted; 0 or a
 * version newer than `current` records VIGIL_EVERSION "<what>: version N is
 * not supported (this library reads version C)" and returns it. */
int vigil__version_check(const char *what, unsigned int version, unsigned int current);
/* Records VIGIL_ENOMEM with a fixed message (never allocates). */
int vigil__error_oom(void);
/* Prefixes the current message with "prefix: " (keeps code and location). */
void vigil__error_prefix(const char *fmt, ...) VIGIL__PRINTF(1, 2);

/* ---- buffers (lib/core/buf.c) ---- */
int vigil__buf_grow(vigil_buf *b, size_t extra);
int vigil__buf_put(vigil_buf *b, const char *data, size_t len);
int vigil__buf_puts(vigil_buf *b, const char *s);
int vigil__buf_putc(vigil_buf *b, char c);
int vigil__buf_printf(vigil_buf *b, const char *fmt, ...) VIGIL__PRINTF(2, 3);
void vigil__buf_clear(vigil_buf *b);
/* Takes ownership of the buffer's memory (NUL-terminated, never NULL on
 * success: an empty buffer yields ""); the buffer is reset. */
char *vigil__buf_detach(vigil_buf *b);

/* ---- logging (lib/core/log.c) ---- */
/* Logs through `lg` (NULL: stderr defaults). `fields` is a printf format for
 * extra logfmt pairs, e.g. "path=%s code=%d"; use vigil__logfmt_value() for
 * values that may need quoting. */
void vigil__log(const vigil_logger *lg, vigil_log_level level, const char *component,
                const char *msg, const char *fields, ...) VIGIL__PRINTF(5, 6);
/* Appends `value` to `b` as a logfmt value, quoted and escaped when needed. */
int vigil__logfmt_value(vigil_buf *b, const char *value);

/* ---- UTF-8 (lib/core/utf8.c) ---- */
/* True when s[0..len) is valid UTF-8 with no NUL byte, no overlong forms and
 * no surrogates. */
bool vigil__utf8_valid(const char *s, size_t len);

/* ---- time (lib/core/time.c) ---- */
int64_t vigil__now_ms(void);       /* CLOCK_REALTIME in ms */
int64_t vigil__monotonic_ms(void); /* CLOCK_MONOTONIC in ms */
int64_t vigil__monotonic_ns(void); /* CLOCK_MONOTONIC in ns */

/* ---- retries (lib/core/backoff.c) ---- */
/* The next number of a xorshift64* generator whose state is *rng (a zero
 * state is replaced by a fixed non-zero one). For jitter only, never for ids
 * or secrets; seed it with vigil__crypto_seed(). Not thread-safe per state. */
uint64_t vigil__rand_next(uint64_t *rng);
/* The longest wait before retry `attempt` (1 for the first retry):
 * base * 2^(attempt - 1), capped at max. */
int64_t vigil__backoff_ceiling(int64_t base, int64_t max, unsigned int attempt);
/* A wait drawn from [ceiling / 2, ceiling] (jitter over the upper half). */
int64_t vigil__backoff_jitter(int64_t ceiling, uint64_t *rng);

/* ---- hexadecimal (lib/core/hex.c) ---- */
/* The value of one hex digit (either case), or -1. */
int vigil__hex_value(int c);
/* Decodes exactly 2 * n hex digits at `hex` into out[0..n). Returns 0, or -1
 * at the first character that is not a hex digit (out is then partly
 * written). */
int vigil__hex_decode(unsigned char *out, const char *hex, size_t n);

#endif
