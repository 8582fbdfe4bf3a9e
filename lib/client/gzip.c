/* gzip bodies for the ingest client (zlib). */
#include "client/client_int.h"

#include <limits.h>
#include <string.h>
#include <zlib.h>

/* zlib allocates through the library's allocator, so an out-of-memory sweep
 * reaches it too. */
static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    return vigil__calloc(items, size);
}

static void z_free(voidpf opaque, voidpf ptr)
{
    (void)opaque;
    vigil__free(ptr);
}

int vigil__gzip(vigil_buf *out, const void *in, size_t len)
{
    if (len > UINT_MAX / 2)
        return vigil__error_set(VIGIL_ELIMIT, "gzip: body of %zu bytes is too large", len);
    vigil__buf_clear(out);
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    zs.zalloc = z_alloc;
    zs.zfree = z_free;
    /* zlib's defaults (windowBits 15, memLevel 8) cost 256 KiB per stream.
     * Ingest JSON repeats itself within a few hundred bytes, so a window of at
     * most 8 KiB (and no larger than the input) with memLevel 5 compresses it
     * as well for 48 KiB at most: deflate needs 2 << (wbits + 1) bytes for the
     * window, and 3 << (memLevel + 8) for the hash and pending buffers.
     * +16: a gzip header and trailer. */
    int wbits = 9;
    while (wbits < 13 && ((size_t)1 << wbits) < len)
        wbits++;
    int zrc = deflateInit2(&zs, 6, Z_DEFLATED, wbits + 16, 5, Z_DEFAULT_STRATEGY);
    if (zrc == Z_MEM_ERROR)
        return vigil__error_oom();
    if (zrc != Z_OK)
        return vigil__error_set(VIGIL_ERROR, "gzip: deflateInit2 failed (%d)", zrc);
    uLong bound = deflateBound(&zs, (uLong)len);
    int rc = vigil__buf_grow(out, (size_t)bound);
    if (rc) {
        deflateEnd(&zs);
        return rc;
    }
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)len;
    zs.next_out = (Bytef *)out->ptr;
    zs.avail_out = (uInt)bound;
    zrc = deflate(&zs, Z_FINISH);
    if (zrc != Z_STREAM_END) {
        deflateEnd(&zs);
        vigil__buf_clear(out);
        return zrc == Z_MEM_ERROR ? vigil__error_oom()
                                  : vigil__error_set(VIGIL_ERROR, "gzip: deflate failed (%d)", zrc);
    }
    out->size = (size_t)zs.total_out;
    out->ptr[out->size] = '\0';
    deflateEnd(&zs);
    return VIGIL_OK;
}

int vigil__gunzip(vigil_buf *out, const void *in, size_t len, size_t max_out)
{
    if (len > UINT_MAX)
        return vigil__error_set(VIGIL_ELIMIT, "gunzip: input of %zu bytes is too large", len);
    vigil__buf_clear(out);
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    zs.zalloc = z_alloc;
    zs.zfree = z_free;
    int zrc = inflateInit2(&zs, 15 + 16);
    if (zrc == Z_MEM_ERROR)
        return vigil__error_oom();
    if (zrc != Z_OK)
        return vigil__error_set(VIGIL_ERROR, "gunzip: inflateInit2 failed (%d)", zrc);
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)len;
    int rc = VIGIL_OK;
    for (;;) {
        rc = vigil__buf_grow(out, 16384);
        if (rc)
            break;
        size_t room = out->asize - out->size - 1;
        zs.next_out = (Bytef *)out->ptr + out->size;
        zs.avail_out = room > UINT_MAX ? UINT_MAX : (uInt)room;
        uInt before = zs.avail_out;
        zrc = inflate(&zs, Z_NO_FLUSH);
        out->size += before - zs.avail_out;
        out->ptr[out->size] = '\0';
        if (out->size > max_out) {
            rc = vigil__error_set(VIGIL_ELIMIT, "gunzip: output exceeds %zu bytes", max_out);
            break;
        }
        if (zrc == Z_STREAM_END)
            break;
        if (zrc == Z_MEM_ERROR) {
            rc = vigil__error_oom();
            break;
        }
        if (zrc != Z_OK && zrc != Z_BUF_ERROR) {
            rc = vigil__error_set(VIGIL_ECORRUPT, "gunzip: invalid gzip data (%s)",
                                  zs.msg ? zs.msg : "error");
            break;
        }
        if (zrc == Z_BUF_ERROR && zs.avail_in == 0) {
            rc = vigil__error_set(VIGIL_ECORRUPT, "gunzip: truncated gzip data");
            break;
        }
    }
    inflateEnd(&zs);
    if (rc)
        vigil__buf_clear(out);
    return rc;
}
