/*
 * vigil/buf.h - the growable byte buffer the library's encoders fill.
 *
 * Include <vigil/vigil.h> rather than this header directly.
 */
#ifndef VIGIL_BUF_H
#define VIGIL_BUF_H

#include "vigil/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A growable byte buffer filled by the library (encoders). @c ptr is always
 * NUL-terminated when not NULL; @c size excludes the terminator. Initialise
 * with VIGIL_BUF_INIT (all zero) and release with vigil_buf_dispose().
 * Not synchronised: use one buffer from one thread at a time.
 * @since 0.1.0
 */
typedef struct vigil_buf {
    char *ptr;
    size_t size;
    size_t asize;
} vigil_buf;

/** An empty buffer. @since 0.1.0 */
#define VIGIL_BUF_INIT \
    {                  \
        NULL, 0, 0     \
    }

/** Releases a buffer's memory and resets it to VIGIL_BUF_INIT. @since 0.1.0 */
VIGIL_EXTERN(void) vigil_buf_dispose(vigil_buf *buf);

#ifdef __cplusplus
}
#endif

#endif
