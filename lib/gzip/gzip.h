/*
 * gzip bodies (RFC 1952), the one owner of zlib in the library: the ingest
 * client compresses with it, the api inflates request bodies with it, and the
 * agent's spool frames its segments with its CRC-32. Never installed; not API.
 *
 * zlib allocates through the library's allocator (vigil__malloc), so an
 * out-of-memory sweep reaches it too. Every function is thread-safe: no state
 * is shared between calls.
 */
#ifndef VIGIL_GZIP_H
#define VIGIL_GZIP_H

#include "internal/common.h"

#include <stdint.h>

/* Compresses in[0..len) as one gzip member into `out` (cleared first; its
 * bytes are NUL-terminated like every vigil_buf). The window is sized for
 * ingest JSON: at most 8 KiB, no larger than the input (48 KiB of zlib state
 * at most). Returns VIGIL_OK, VIGIL_ELIMIT (more than UINT_MAX / 2 bytes),
 * VIGIL_ENOMEM or VIGIL_ERROR (zlib refused). */
int vigil__gzip_compress(vigil_buf *out, const void *in, size_t len);

/* Inflates gzip data into `out` (cleared first): one member or several
 * concatenated (RFC 1952 allows it; `gzip -c a b` makes them). At most
 * `max_out` bytes of output are ever produced: more is VIGIL_ELIMIT, with
 * `out` emptied, so a small bomb cannot exhaust memory. Returns VIGIL_OK,
 * VIGIL_ECORRUPT (not gzip, a bad checksum, or truncated), VIGIL_ELIMIT or
 * VIGIL_ENOMEM. */
int vigil__gzip_inflate(vigil_buf *out, const void *in, size_t len, size_t max_out);

/* The CRC-32 of data[0..len) (the gzip/zlib polynomial), continuing from
 * `crc` (0 to start). Any length. */
uint32_t vigil__gzip_crc32(uint32_t crc, const void *data, size_t len);

#endif
