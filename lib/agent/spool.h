/*
 * The agent's on-disk spool (library-internal): a bounded FIFO of opaque
 * records kept in append-only segment files under one directory, so that
 * batches survive an agent restart while no hub accepts them.
 *
 * Layout: <dir>/LOCK (flock'ed while open) and <dir>/<16 hex seq>.seg files.
 * A segment starts with a 16-byte header ("VIGSPOOL", u32 format version,
 * u32 zero); each record is a 20-byte header (u32 magic "VSPR", u32 length,
 * u32 CRC-32 of the payload, u32 CRC-32 of the three words before it, u8 state
 * 'P' pending / 'D' delivered, 3 zero bytes) and the payload. Integers are
 * little-endian.
 *
 * Recovery: on open every record is checked (magic, header CRC, length within
 * the file, payload CRC). A bad record at the end of the newest segment is a
 * torn write (power loss during an append): the segment is truncated there and
 * the record skipped. A bad record elsewhere ends that segment (the rest of it
 * is skipped and counted as corrupt). Nothing unverified is ever returned.
 *
 * fsync policy: with `fsync` set (the default), every append is followed by
 * fdatasync(2) of its segment, and a new segment by fsync(2) of the file and
 * the directory, so an appended record survives power loss. Marking a record
 * delivered (pop) is a one-byte write that is never synced: after a crash at
 * worst a few delivered batches are replayed, and the hub drops them as
 * duplicates by their batch_id.
 *
 * Bounds: the segment files never exceed max_size in total. A segment is
 * closed at about max_size / 8 (at most 16 MiB); when an append would pass
 * max_size, the oldest segments are deleted and their pending records counted
 * as dropped.
 *
 * Threads: one spool is used by one thread at a time; a directory is used by
 * one spool at a time (others get VIGIL_EBUSY).
 */
#ifndef VIGIL_AGENT_SPOOL_H
#define VIGIL_AGENT_SPOOL_H

#include "internal/common.h"

#define VIGIL__SPOOL_RECORD_MAX  (64u * 1024 * 1024) /* bytes in one record */
#define VIGIL__SPOOL_SEG_HDR     16
#define VIGIL__SPOOL_REC_HDR     20
#define VIGIL__SPOOL_DEFAULT_MAX (64u * 1024 * 1024)

typedef struct vigil__spool vigil__spool;

typedef struct vigil__spool_options {
    const char *path;           /* directory, created (0700) when missing */
    uint64_t max_size;          /* bytes on disk; 0: 64 MiB; at least 4 KiB */
    int no_fsync;               /* non-zero: never fsync (tests, tmpfs) */
    const vigil_logger *logger; /* NULL: stderr defaults */
} vigil__spool_options;

typedef struct vigil__spool_stats {
    uint64_t bytes;   /* bytes of segment files on disk */
    uint64_t records; /* pending records */
    uint64_t dropped; /* pending records deleted because the spool was full */
    uint64_t corrupt; /* damaged records (or segment tails) skipped */
} vigil__spool_stats;

/* Opens (creating) the spool in opts->path and recovers what it holds.
 * Returns VIGIL_OK; VIGIL_EINVAL (bad options); VIGIL_EBUSY (in use by
 * another spool); VIGIL_EIO (cannot create or read); VIGIL_EVERSION (a segment
 * written by a newer format); VIGIL_ENOMEM. */
int vigil__spool_open(vigil__spool **out, const vigil__spool_options *opts);

/* Closes the files and frees the spool (the records stay on disk). */
void vigil__spool_close(vigil__spool *sp);

/* Appends a record (1 byte to min(VIGIL__SPOOL_RECORD_MAX, max_size - 36)).
 * Returns VIGIL_OK; VIGIL_ELIMIT (too large); VIGIL_EFULL (the disk is full);
 * VIGIL_EIO; VIGIL_ENOMEM. */
int vigil__spool_append(vigil__spool *sp, const void *data, size_t len);

/* Copies the oldest pending record into `out` (cleared first) without removing
 * it. Returns VIGIL_OK, VIGIL_ENOTFOUND when the spool is empty, VIGIL_EIO,
 * VIGIL_ENOMEM. */
int vigil__spool_peek(vigil__spool *sp, vigil_buf *out);

/* Removes the oldest pending record (the one peek returned). Returns VIGIL_OK,
 * VIGIL_ENOTFOUND when empty, VIGIL_EIO. */
int vigil__spool_pop(vigil__spool *sp);

/* Counters. */
void vigil__spool_stats_get(const vigil__spool *sp, vigil__spool_stats *out);

#endif
