#include "internal/common.h"

#include <stdlib.h>
#include <string.h>

static void *default_malloc(size_t size, void *payload)
{
    (void)payload;
    return malloc(size);
}

static void *default_realloc(void *ptr, size_t size, void *payload)
{
    (void)payload;
    return realloc(ptr, size);
}

static void default_free(void *ptr, void *payload)
{
    (void)payload;
    free(ptr);
}

/* Process-wide by design (see vigil_allocator_set): like curl's and SQLite's
 * memory hooks, it is set once before any other call. */
static vigil_allocator g_alloc = {VIGIL_ALLOCATOR_VERSION, default_malloc, default_realloc,
                                  default_free, NULL};

int vigil_allocator_set(const vigil_allocator *allocator)
{
    if (!allocator) {
        g_alloc.malloc_fn = default_malloc;
        g_alloc.realloc_fn = default_realloc;
        g_alloc.free_fn = default_free;
        g_alloc.payload = NULL;
        return VIGIL_OK;
    }
    if (vigil__version_check("allocator", allocator->version, VIGIL_ALLOCATOR_VERSION))
        return VIGIL_EVERSION;
    if (!allocator->malloc_fn || !allocator->realloc_fn || !allocator->free_fn)
        return vigil__error_set(VIGIL_EINVAL,
                                "allocator: malloc_fn, realloc_fn and free_fn are required");
    g_alloc = *allocator;
    return VIGIL_OK;
}

void *vigil__malloc(size_t size)
{
    return g_alloc.malloc_fn(size ? size : 1, g_alloc.payload);
}

void *vigil__calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    size_t total = n * size;
    void *p = vigil__malloc(total);
    if (p && total)
        memset(p, 0, total);
    return p;
}

void *vigil__realloc(void *ptr, size_t size)
{
    return g_alloc.realloc_fn(ptr, size ? size : 1, g_alloc.payload);
}

void vigil__free(void *ptr)
{
    if (ptr)
        g_alloc.free_fn(ptr, g_alloc.payload);
}

void vigil_free(void *ptr)
{
    vigil__free(ptr);
}

int vigil__array_grow(void **ptr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return VIGIL_OK;
    size_t ncap = *cap ? *cap : 8;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2)
            return vigil__error_oom();
        ncap *= 2;
    }
    if (elem && ncap > SIZE_MAX / elem)
        return vigil__error_oom();
    void *p = vigil__realloc(*ptr, ncap * elem);
    if (!p)
        return vigil__error_oom();
    *ptr = p;
    *cap = ncap;
    return VIGIL_OK;
}

char *vigil__strndup(const char *s, size_t n)
{
    char *p = vigil__malloc(n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *vigil__strdup(const char *s)
{
    return vigil__strndup(s, strlen(s));
}

void vigil__free_wiped(char *s)
{
    if (!s)
        return;
    volatile char *p = s;
    while (*p)
        *p++ = 0;
    vigil__free(s);
}
