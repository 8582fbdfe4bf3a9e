/*
 * vigil/allocator.h - the process-wide allocator hook: every allocation of
 * libvigil (and of its JSON parser) goes through it. Memory the library
 * hands to the caller is released with vigil_free() (vigil/common.h).
 *
 * Include <vigil/vigil.h> rather than this header directly.
 */
#ifndef VIGIL_ALLOCATOR_H
#define VIGIL_ALLOCATOR_H

#include "vigil/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A replacement for the library's memory allocator. @c realloc_fn must behave
 * as realloc(3) (including a NULL ptr); @c free_fn must accept NULL.
 * @since 0.1.0
 */
typedef struct vigil_allocator {
    unsigned int version; /**< VIGIL_ALLOCATOR_VERSION */
    void *(*malloc_fn)(size_t size, void *payload);
    void *(*realloc_fn)(void *ptr, size_t size, void *payload);
    void (*free_fn)(void *ptr, void *payload);
    void *payload;
} vigil_allocator;

#define VIGIL_ALLOCATOR_VERSION 1

/**
 * Replaces the allocator used for every allocation libvigil makes (and, through
 * cJSON's hooks, every allocation of its JSON parser). NULL restores malloc(3).
 * Process-wide: call it before any other libvigil call, when no libvigil
 * object exists, and from one thread only; memory allocated by one allocator
 * must never be freed after switching to another.
 * @return VIGIL_OK, VIGIL_EVERSION for an unknown version, or VIGIL_EINVAL for
 *         a missing function.
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_allocator_set(const vigil_allocator *allocator);

#ifdef __cplusplus
}
#endif

#endif
