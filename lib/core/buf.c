#include "internal/common.h"

#include <stdio.h>
#include <string.h>

int vigil__buf_grow(vigil_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->size - 1)
        return vigil__error_oom();
    size_t need = b->size + extra + 1;
    if (need <= b->asize)
        return VIGIL_OK;
    size_t n = b->asize ? b->asize : 64;
    while (n < need)
        n = n > SIZE_MAX / 2 ? need : n * 2;
    char *p = vigil__realloc(b->ptr, n);
    if (!p)
        return vigil__error_oom();
    b->ptr = p;
    b->asize = n;
    return VIGIL_OK;
}

int vigil__buf_put(vigil_buf *b, const char *data, size_t len)
{
    int rc = vigil__buf_grow(b, len);
    if (rc)
        return rc;
    if (len)
        memcpy(b->ptr + b->size, data, len);
    b->size += len;
    b->ptr[b->size] = '\0';
    return VIGIL_OK;
}

int vigil__buf_puts(vigil_buf *b, const char *s)
{
    return vigil__buf_put(b, s, strlen(s));
}

int vigil__buf_putc(vigil_buf *b, char c)
{
    return vigil__buf_put(b, &c, 1);
}

int vigil__buf_printf(vigil_buf *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return vigil__error_set(VIGIL_EINVAL, "format error");
    if ((size_t)n < sizeof(small))
        return vigil__buf_put(b, small, (size_t)n);
    int rc = vigil__buf_grow(b, (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->ptr + b->size, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->size += (size_t)n;
    return VIGIL_OK;
}

void vigil__buf_clear(vigil_buf *b)
{
    b->size = 0;
    if (b->ptr)
        b->ptr[0] = '\0';
}

char *vigil__buf_detach(vigil_buf *b)
{
    char *p = b->ptr;
    if (!p) {
        p = vigil__malloc(1);
        if (p)
            p[0] = '\0';
    }
    b->ptr = NULL;
    b->size = b->asize = 0;
    return p;
}

void vigil_buf_dispose(vigil_buf *buf)
{
    if (!buf)
        return;
    vigil__free(buf->ptr);
    buf->ptr = NULL;
    buf->size = buf->asize = 0;
}
