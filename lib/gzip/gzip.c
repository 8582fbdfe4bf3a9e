/* gzip with zlib: the only file of the library that includes zlib.h. */
#include "gzip/gzip.h"

#include <limits.h>
#include <string.h>
#include <zlib.h>

#define INFLATE_FIRST 65536 /* first reservation; inputs compress about 4-10x */

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

int vigil__gzip_compress(vigil_buf *out, const void *in, size_t len)
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

int vigil__gzip_inflate(vigil_buf *out, const void *in, size_t len, size_t max_out)
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
    /* One byte beyond the cap is produced at most: enough to know it is exceeded. */
    size_t limit = max_out < SIZE_MAX - 1 ? max_out + 1 : SIZE_MAX - 1;
    size_t first = len < INFLATE_FIRST / 4 ? INFLATE_FIRST : len * 4;
    int rc = vigil__buf_grow(out, first < limit ? first : limit);
    while (!rc) {
        if (out->asize - out->size < 2 && (rc = vigil__buf_grow(out, out->asize)) != VIGIL_OK)
            break;
        size_t room = out->asize - out->size - 1;
        if (room > limit - out->size)
            room = limit - out->size;
        if (room > UINT_MAX)
            room = UINT_MAX;
        zs.next_out = (Bytef *)out->ptr + out->size;
        zs.avail_out = (uInt)room;
        zrc = inflate(&zs, Z_NO_FLUSH);
        out->size += room - zs.avail_out;
        out->ptr[out->size] = '\0';
        if (out->size > max_out) {
            rc = vigil__error_set(VIGIL_ELIMIT, "gunzip: output exceeds %zu bytes", max_out);
            break;
        }
        if (zrc == Z_STREAM_END) {
            if (zs.avail_in == 0)
                break;
            if (inflateReset(&zs) != Z_OK) /* another member follows */
                rc = vigil__error_set(VIGIL_ECORRUPT, "gunzip: invalid gzip data");
            continue;
        }
        if (zrc == Z_MEM_ERROR) {
            rc = vigil__error_oom();
        } else if (zrc == Z_BUF_ERROR && zs.avail_in == 0) {
            rc = vigil__error_set(VIGIL_ECORRUPT, "gunzip: truncated gzip data");
        } else if (zrc != Z_OK && zrc != Z_BUF_ERROR) {
            rc = vigil__error_set(VIGIL_ECORRUPT, "gunzip: invalid gzip data (%s)",
                                  zs.msg ? zs.msg : "error");
        } else if (out->size == limit) {
            /* cannot happen (limit is max_out + 1, caught above); no busy loop either way */
            rc = vigil__error_set(VIGIL_ELIMIT, "gunzip: output exceeds %zu bytes", max_out);
        }
    }
    inflateEnd(&zs);
    if (rc)
        vigil__buf_clear(out);
    return rc;
}

uint32_t vigil__gzip_crc32(uint32_t crc, const void *data, size_t len)
{
    uLong c = crc;
    const Bytef *p = data;
    while (len > 0) { /* crc32() takes a uInt length */
        uInt n = len > 0x40000000u ? 0x40000000u : (uInt)len;
        c = crc32(c, p, n);
        p += n;
        len -= n;
    }
    return (uint32_t)c;
}
