/*
 * Private to the SQLite backend: the encoding of a chunk, the samples of one
 * series over a span of time, stored as one row (series, start_ts, end_ts, n,
 * data). No SQLite here, so that the codec is tested on its own.
 *
 * data is a sequence of samples in strictly increasing ts order, each:
 *
 *     varint((ts - previous ts) << 2 | kind)      first sample: delta 0 from start_ts
 *     kind 0: the value, 8 bytes, IEEE 754 binary64 little-endian
 *     kind 1: nothing: the same value (same bits) as the previous sample,
 *             which is a value, not an error
 *     kind 2: varint(length) and that many bytes of error text (a failed
 *             collection; its value is NULL)
 *
 * varints are little-endian base 128 (7 bits a byte, high bit: more follows),
 * at most 10 bytes. A delta of 2^62 or more cannot be encoded: such a sample
 * starts a new chunk. Decoding checks every byte and reports VIGIL_ECORRUPT.
 */
#ifndef VIGIL_STORE_CHUNK_H
#define VIGIL_STORE_CHUNK_H

#include "internal/common.h"

#include <stddef.h>
#include <stdint.h>

/* A chunk takes samples while its data stays within this many bytes, so that
 * a row (about 30 bytes besides data) fits in a leaf page of a 4 KiB page
 * B-tree without an overflow page (SQLite keeps at most 1,002 bytes of an
 * index-tree row in the leaf). A chunk holds at least one sample, whatever
 * its size (an error text of 1 KiB overflows). */
#define VIGIL__CHUNK_BYTES 768

/* One sample. error != NULL: a failed collection of error_len bytes (not
 * NUL-terminated when decoded: it points into the chunk's data). */
typedef struct vigil__sample {
    int64_t ts;
    double value;
    const char *error;
    size_t error_len;
} vigil__sample;

/* The state an encoder needs to append to a chunk: the last sample's ts and,
 * when it was a value, its bits. */
typedef struct vigil__chunk_tail {
    int64_t last_ts;
    uint64_t last_bits;
    int last_is_value;
    int empty; /* no sample yet */
} vigil__chunk_tail;

/* Bytes `s` takes after `t`; 0 when it cannot follow (ts not after the last
 * one, or too far after it). */
size_t vigil__chunk_size(const vigil__chunk_tail *t, const vigil__sample *s);
/* Appends `s` to `out` and advances `t`; the caller checked
 * vigil__chunk_size() != 0. VIGIL_ENOMEM. */
int vigil__chunk_put(vigil_buf *out, vigil__chunk_tail *t, const vigil__sample *s);

/* Reads a chunk sample by sample. */
typedef struct vigil__chunk_iter {
    const unsigned char *p, *end;
    vigil__chunk_tail tail;
} vigil__chunk_iter;

void vigil__chunk_iter_init(vigil__chunk_iter *it, int64_t start_ts, const void *data, size_t len);
/* 1: *s is the next sample; 0: the end; VIGIL_ECORRUPT (no message set:
 * the caller names the row) on a malformed chunk. */
int vigil__chunk_next(vigil__chunk_iter *it, vigil__sample *s);

#endif
