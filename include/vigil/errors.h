/*
 * vigil/errors.h - the thread-local last error. Every fallible function
 * returns VIGIL_OK or a negative vigil_status (vigil/common.h) and records
 * the details here; callers branch on the code, never on the message.
 *
 * Plug-ins set errors through <vigil/sys/errors.h>.
 * Include <vigil/vigil.h> rather than this header directly.
 */
#ifndef VIGIL_ERRORS_H
#define VIGIL_ERRORS_H

#include "vigil/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * The last error of the calling thread. @c file, @c line and @c column are set
 * for errors located in a configuration or manifest file (line and column are
 * 1-based), and are NULL / 0 otherwise.
 * @since 0.1.0
 */
typedef struct vigil_error {
    int code;            /**< the vigil_status that was returned */
    const char *message; /**< human-readable, includes the location when known */
    const char *file;    /**< file name, or NULL */
    unsigned int line;   /**< 1-based line, or 0 */
    unsigned int column; /**< 1-based column, or 0 */
} vigil_error;

/**
 * Returns the last error recorded on the calling thread by a failing libvigil
 * call. Never NULL: with no error recorded, code is VIGIL_OK and message "".
 * The pointer and its strings stay valid until the next libvigil call on the
 * same thread. Thread-safe (the record is thread-local).
 * @since 0.1.0
 */
VIGIL_EXTERN(const vigil_error *) vigil_error_last(void);

/** Clears the calling thread's last error. @since 0.1.0 */
VIGIL_EXTERN(void) vigil_error_clear(void);

#ifdef __cplusplus
}
#endif

#endif
