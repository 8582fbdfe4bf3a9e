/* The agent's on-disk spool: see spool.h for the format and the policies. */
#include "agent/spool.h"
#include "gzip/gzip.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEG_MAGIC      "VIGSPOOL"
#define SEG_VERSION    1u
#define REC_MAGIC      0x52505356u /* "VSPR" little-endian */
#define STATE_PENDING  'P'
#define STATE_DONE     'D'
#define SEG_TARGET_MAX (16u * 1024 * 1024)
#define MIN_MAX_SIZE   4096u
#define PATH_MAX_LEN   3800
#define COMPONENT      "spool"

typedef struct seg {
    uint64_t seq;
    uint64_t size;    /* bytes of the file that hold valid data */
    uint64_t head;    /* offset of the first pending record (== size when none) */
    uint64_t pending; /* pending records */
    int fd;           /* -1 when not open */
} seg;

struct vigil__spool {
    char *dir;
    int lock_fd;
    uint64_t max_size, seg_target;
    int fsync;
    vigil_logger logger;
    seg *segs; /* oldest first; the last one is appended to */
    size_t nsegs, cap;
    uint64_t next_seq; /* of the next segment created */
    uint64_t bytes, records, dropped, corrupt;
};

/* ---- little helpers ----------------------------------------------------------- */

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t crc(const void *data, size_t len)
{
    return vigil__gzip_crc32(0, data, len);
}

static int io_error(const char *what, const char *path)
{
    int e = errno;
    return vigil__error_set(e == ENOSPC || e == EDQUOT ? VIGIL_EFULL : VIGIL_EIO,
                            "spool: %s %s: %s", what, path, strerror(e));
}

static int full_pread(int fd, void *buf, size_t len, uint64_t off)
{
    unsigned char *p = buf;
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, p + got, len - got, (off_t)(off + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (int)(got == len);
}

static int full_pwrite(int fd, const void *buf, size_t len, uint64_t off)
{
    const unsigned char *p = buf;
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(fd, p + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        done += (size_t)n;
    }
    return 0;
}

static void seg_path(const vigil__spool *sp, uint64_t seq, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%016llx.seg", sp->dir, (unsigned long long)seq);
}

static int seg_fd(vigil__spool *sp, seg *s)
{
    if (s->fd >= 0)
        return VIGIL_OK;
    char path[4096];
    seg_path(sp, s->seq, path, sizeof(path));
    s->fd = open(path, O_RDWR | O_CLOEXEC);
    if (s->fd < 0)
        return io_error("cannot open", path);
    return VIGIL_OK;
}

static void seg_close(seg *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

static void sync_dir(vigil__spool *sp)
{
    if (!sp->fsync)
        return;
    int fd = open(sp->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Removes segs[i] from the array and deletes its file. */
static void seg_remove(vigil__spool *sp, size_t i)
{
    char path[4096];
    seg *s = &sp->segs[i];
    seg_close(s);
    seg_path(sp, s->seq, path, sizeof(path));
    if (unlink(path) != 0 && errno != ENOENT)
        vigil__log(&sp->logger, VIGIL_LOG_WARN, COMPONENT, "cannot delete segment",
                   "path=%s error=\"%s\"", path, strerror(errno));
    sp->bytes -= s->size;
    sp->records -= s->pending;
    memmove(&sp->segs[i], &sp->segs[i + 1], (sp->nsegs - i - 1) * sizeof(seg));
    sp->nsegs--;
}

static int mkdirs(const char *path)
{
    char tmp[4096];
    size_t len = strlen(path);
    if (len >= sizeof(tmp))
        return vigil__error_set(VIGIL_EINVAL, "spool: path is too long");
    memcpy(tmp, path, len + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
            return io_error("cannot create directory", tmp);
        *p = '/';
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
        return io_error("cannot create directory", tmp);
    struct stat st;
    if (stat(tmp, &st) != 0)
        return io_error("cannot stat", tmp);
    if (!S_ISDIR(st.st_mode))
        return vigil__error_set(VIGIL_EIO, "spool: %s is not a directory", tmp);
    return VIGIL_OK;
}

/* ---- records --------------------------------------------------------------------- */

typedef struct rec {
    uint32_t len;
    uint32_t crc;
    unsigned char state;
} rec;

/* Reads and checks the record header at `off`. Returns 1 when valid, 0 when
 * not (torn or corrupt), -1 on an I/O error. */
static int read_header(int fd, uint64_t off, uint64_t end, rec *r)
{
    unsigned char h[VIGIL__SPOOL_REC_HDR];
    if (off + VIGIL__SPOOL_REC_HDR > end)
        return 0;
    int n = full_pread(fd, h, sizeof(h), off);
    if (n <= 0)
        return n;
    if (get32(h) != REC_MAGIC || get32(h + 12) != crc(h, 12))
        return 0;
    r->len = get32(h + 4);
    r->crc = get32(h + 8);
    r->state = h[16];
    if (r->len == 0 || r->len > VIGIL__SPOOL_RECORD_MAX ||
        off + VIGIL__SPOOL_REC_HDR + r->len > end)
        return 0;
    return 1;
}

/* Reads the payload of a checked header and verifies its CRC into `out`.
 * Returns 1, 0 (bad CRC) or -1 (I/O). ENOMEM is reported as -2. */
static int read_payload(int fd, uint64_t off, const rec *r, vigil_buf *out)
{
    vigil__buf_clear(out);
    if (vigil__buf_grow(out, r->len) != VIGIL_OK)
        return -2;
    int n = full_pread(fd, out->ptr, r->len, off + VIGIL__SPOOL_REC_HDR);
    if (n <= 0)
        return n;
    out->size = r->len;
    out->ptr[out->size] = '\0';
    return crc(out->ptr, r->len) == r->crc ? 1 : 0;
}

/* Scans one segment, filling size/head/pending. A bad record ends the
 * segment there; in the newest segment (a torn append) the file is truncated. */
static int scan_segment(vigil__spool *sp, seg *s, int newest, vigil_buf *tmp)
{
    char path[4096];
    seg_path(sp, s->seq, path, sizeof(path));
    int rc = seg_fd(sp, s);
    if (rc)
        return rc;
    struct stat st;
    if (fstat(s->fd, &st) != 0)
        return io_error("cannot stat", path);
    uint64_t end = (uint64_t)st.st_size;
    unsigned char h[VIGIL__SPOOL_SEG_HDR];
    int n = end >= sizeof(h) ? full_pread(s->fd, h, sizeof(h), 0) : 0;
    if (n < 0)
        return io_error("cannot read", path);
    if (n == 0 || memcmp(h, SEG_MAGIC, 8) != 0) {
        /* a segment whose header never reached the disk, or not ours */
        vigil__log(&sp->logger, VIGIL_LOG_WARN, COMPONENT, "segment without a valid header",
                   "path=%s", path);
        sp->corrupt++;
        s->size = 0;
        s->head = 0;
        s->pending = 0;
        return VIGIL_OK;
    }
    if (get32(h + 8) > SEG_VERSION)
        return vigil__error_set(VIGIL_EVERSION,
                                "spool: %s was written by a newer version (format %u)", path,
                                get32(h + 8));
    uint64_t off = VIGIL__SPOOL_SEG_HDR;
    s->head = 0;
    s->pending = 0;
    while (off < end) {
        rec r;
        int ok = read_header(s->fd, off, end, &r);
        if (ok > 0) {
            ok = read_payload(s->fd, off, &r, tmp);
            if (ok == -2)
                return vigil__error_oom();
        }
        if (ok < 0)
            return io_error("cannot read", path);
        if (ok == 0) {
            sp->corrupt++;
            if (newest) {
                vigil__log(&sp->logger, VIGIL_LOG_WARN, COMPONENT,
                           "torn record at the end of the spool skipped",
                           "path=%s offset=%llu dropped_bytes=%llu", path, (unsigned long long)off,
                           (unsigned long long)(end - off));
                if (ftruncate(s->fd, (off_t)off) != 0)
                    return io_error("cannot truncate", path);
            } else {
                vigil__log(&sp->logger, VIGIL_LOG_WARN, COMPONENT,
                           "corrupt record; the rest of the segment is skipped",
                           "path=%s offset=%llu skipped_bytes=%llu", path, (unsigned long long)off,
                           (unsigned long long)(end - off));
            }
            break;
        }
        if (r.state != STATE_DONE) {
            if (!s->pending)
                s->head = off;
            s->pending++;
        }
        off += VIGIL__SPOOL_REC_HDR + r.len;
    }
    s->size = off;
    if (!s->pending)
        s->head = s->size;
    return VIGIL_OK;
}

static int cmp_seq(const void *a, const void *b)
{
    uint64_t x = ((const seg *)a)->seq, y = ((const seg *)b)->seq;
    return x < y ? -1 : x > y;
}

static int parse_seq(const char *name, uint64_t *seq)
{
    size_t len = strlen(name);
    if (len != 20 || strcmp(name + 16, ".seg") != 0)
        return 0;
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = name[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return 0;
        v = v << 4 | (uint64_t)d;
    }
    *seq = v;
    return 1;
}

static int load(vigil__spool *sp)
{
    DIR *d = opendir(sp->dir);
    if (!d)
        return io_error("cannot open directory", sp->dir);
    int rc = VIGIL_OK;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint64_t seq;
        if (!parse_seq(de->d_name, &seq))
            continue;
        rc = vigil__array_grow((void **)&sp->segs, &sp->cap, sp->nsegs + 1, sizeof(seg));
        if (rc)
            break;
        seg s = {seq, 0, 0, 0, -1};
        sp->segs[sp->nsegs++] = s;
    }
    closedir(d);
    if (rc)
        return rc;
    if (sp->nsegs > 1)
        qsort(sp->segs, sp->nsegs, sizeof(seg), cmp_seq);
    vigil_buf tmp = VIGIL_BUF_INIT;
    for (size_t i = 0; !rc && i < sp->nsegs; i++) {
        rc = scan_segment(sp, &sp->segs[i], i + 1 == sp->nsegs, &tmp);
        if (i + 1 < sp->nsegs)
            seg_close(&sp->segs[i]);
    }
    vigil_buf_dispose(&tmp);
    if (rc)
        return rc;
    sp->next_seq = sp->nsegs ? sp->segs[sp->nsegs - 1].seq + 1 : 1;
    for (size_t i = 0; i < sp->nsegs; i++) {
        sp->bytes += sp->segs[i].size;
        sp->records += sp->segs[i].pending;
    }
    /* Delivered or empty segments go, except the newest (appended to) when
     * it has a valid header. */
    for (size_t i = 0; i < sp->nsegs;) {
        seg *s = &sp->segs[i];
        int newest = i + 1 == sp->nsegs;
        if (s->pending == 0 && (!newest || s->size < VIGIL__SPOOL_SEG_HDR))
            seg_remove(sp, i);
        else
            i++;
    }
    return VIGIL_OK;
}

/* ---- open / close ---------------------------------------------------------------- */

int vigil__spool_open(vigil__spool **out, const vigil__spool_options *opts)
{
    if (!out || !opts || !opts->path || !*opts->path)
        return vigil__error_set(VIGIL_EINVAL, "spool: a directory path is required");
    *out = NULL;
    if (strlen(opts->path) > PATH_MAX_LEN)
        return vigil__error_set(VIGIL_EINVAL, "spool: path is longer than %d bytes", PATH_MAX_LEN);
    uint64_t max = opts->max_size ? opts->max_size : VIGIL__SPOOL_DEFAULT_MAX;
    if (max < MIN_MAX_SIZE)
        return vigil__error_set(VIGIL_EINVAL, "spool: max_size must be at least %u bytes, got %llu",
                                MIN_MAX_SIZE, (unsigned long long)max);
    int rc = mkdirs(opts->path);
    if (rc)
        return rc;
    vigil__spool *sp = vigil__calloc(1, sizeof(*sp));
    if (!sp)
        return vigil__error_oom();
    sp->lock_fd = -1;
    sp->max_size = max;
    sp->seg_target = max / 8 < SEG_TARGET_MAX ? max / 8 : SEG_TARGET_MAX;
    sp->fsync = !opts->no_fsync;
    if (opts->logger)
        sp->logger = *opts->logger;
    else {
        vigil_logger d = VIGIL_LOGGER_INIT;
        sp->logger = d;
    }
    sp->dir = vigil__strdup(opts->path);
    if (!sp->dir) {
        vigil__free(sp);
        return vigil__error_oom();
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/LOCK", sp->dir);
    sp->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (sp->lock_fd < 0)
        rc = io_error("cannot open", path);
    else if (flock(sp->lock_fd, LOCK_EX | LOCK_NB) != 0)
        rc = errno == EWOULDBLOCK
                 ? vigil__error_set(VIGIL_EBUSY, "spool: %s is in use by another process", sp->dir)
                 : io_error("cannot lock", path);
    if (!rc)
        rc = load(sp);
    if (rc) {
        vigil__spool_close(sp);
        return rc;
    }
    if (sp->records)
        vigil__log(&sp->logger, VIGIL_LOG_INFO, COMPONENT, "spool recovered",
                   "path=%s records=%llu bytes=%llu", sp->dir, (unsigned long long)sp->records,
                   (unsigned long long)sp->bytes);
    *out = sp;
    return VIGIL_OK;
}

void vigil__spool_close(vigil__spool *sp)
{
    if (!sp)
        return;
    for (size_t i = 0; i < sp->nsegs; i++)
        seg_close(&sp->segs[i]);
    vigil__free(sp->segs);
    if (sp->lock_fd >= 0)
        close(sp->lock_fd); /* releases the flock */
    vigil__free(sp->dir);
    vigil__free(sp);
}

/* ---- append -------------------------------------------------------------------------- */

static int new_segment(vigil__spool *sp)
{
    int rc = vigil__array_grow((void **)&sp->segs, &sp->cap, sp->nsegs + 1, sizeof(seg));
    if (rc)
        return rc;
    uint64_t seq = sp->next_seq++;
    if (sp->nsegs)
        seg_close(&sp->segs[sp->nsegs - 1]);
    char path[4096];
    seg_path(sp, seq, path, sizeof(path));
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return io_error("cannot create", path);
    unsigned char h[VIGIL__SPOOL_SEG_HDR] = {0};
    memcpy(h, SEG_MAGIC, 8);
    put32(h + 8, SEG_VERSION);
    if (full_pwrite(fd, h, sizeof(h), 0) != 0 || (sp->fsync && fsync(fd) != 0)) {
        rc = io_error("cannot write", path);
        close(fd);
        unlink(path);
        return rc;
    }
    sync_dir(sp);
    seg s = {seq, VIGIL__SPOOL_SEG_HDR, VIGIL__SPOOL_SEG_HDR, 0, fd};
    sp->segs[sp->nsegs++] = s;
    sp->bytes += VIGIL__SPOOL_SEG_HDR;
    return VIGIL_OK;
}

int vigil__spool_append(vigil__spool *sp, const void *data, size_t len)
{
    if (!sp || (!data && len))
        return vigil__error_set(VIGIL_EINVAL, "spool append: NULL argument");
    if (len == 0)
        return vigil__error_set(VIGIL_EINVAL, "spool append: empty record");
    uint64_t need = (uint64_t)VIGIL__SPOOL_REC_HDR + len;
    if (len > VIGIL__SPOOL_RECORD_MAX || need + VIGIL__SPOOL_SEG_HDR > sp->max_size)
        return vigil__error_set(VIGIL_ELIMIT,
                                "spool append: a record of %zu bytes does not fit a spool of "
                                "%llu bytes",
                                len, (unsigned long long)sp->max_size);
    int rc;
    seg *act = sp->nsegs ? &sp->segs[sp->nsegs - 1] : NULL;
    int rotate = !act || (act->size > VIGIL__SPOOL_SEG_HDR && act->size + need > sp->seg_target);
    uint64_t extra = need + (rotate ? VIGIL__SPOOL_SEG_HDR : 0);
    /* Full: the oldest segments go (never the one appended to, unless a new
     * one is about to replace it). */
    while (sp->nsegs > (rotate ? 0u : 1u) && sp->bytes + extra > sp->max_size) {
        seg *old = &sp->segs[0];
        sp->dropped += old->pending;
        vigil__log(&sp->logger, VIGIL_LOG_WARN, COMPONENT, "spool full; oldest records dropped",
                   "records=%llu bytes=%llu", (unsigned long long)old->pending,
                   (unsigned long long)old->size);
        seg_remove(sp, 0);
    }
    if (rotate && (rc = new_segment(sp)) != VIGIL_OK)
        return rc;
    act = &sp->segs[sp->nsegs - 1];
    if ((rc = seg_fd(sp, act)) != VIGIL_OK)
        return rc;

    unsigned char h[VIGIL__SPOOL_REC_HDR] = {0};
    put32(h, REC_MAGIC);
    put32(h + 4, (uint32_t)len);
    put32(h + 8, crc(data, len));
    put32(h + 12, crc(h, 12));
    h[16] = STATE_PENDING;
    char path[4096];
    seg_path(sp, act->seq, path, sizeof(path));
    uint64_t off = act->size;
    if (full_pwrite(act->fd, h, sizeof(h), off) != 0 ||
        full_pwrite(act->fd, data, len, off + sizeof(h)) != 0 ||
        (sp->fsync && fdatasync(act->fd) != 0)) {
        rc = io_error("cannot append to", path);
        if (ftruncate(act->fd, (off_t)off) != 0) /* do not leave a partial record */
            vigil__log(&sp->logger, VIGIL_LOG_WARN, COMPONENT, "cannot truncate", "path=%s", path);
        return rc;
    }
    if (!act->pending)
        act->head = off;
    act->size += need;
    act->pending++;
    sp->bytes += need;
    sp->records++;
    return VIGIL_OK;
}

/* ---- peek / pop ----------------------------------------------------------------------- */

/* Gives up on the rest of the head segment after a record turned bad. */
static void skip_rest(vigil__spool *sp, seg *s, const char *why)
{
    char path[4096];
    seg_path(sp, s->seq, path, sizeof(path));
    vigil__log(&sp->logger, VIGIL_LOG_WARN, COMPONENT, why, "path=%s offset=%llu records=%llu",
               path, (unsigned long long)s->head, (unsigned long long)s->pending);
    sp->corrupt++;
    sp->records -= s->pending;
    s->pending = 0;
    s->head = s->size;
}

/* Removes fully delivered segments from the front; the newest is emptied
 * instead, so that appends continue in it. */
static int settle(vigil__spool *sp)
{
    while (sp->nsegs > 0 && sp->segs[0].pending == 0) {
        if (sp->nsegs > 1) {
            seg_remove(sp, 0);
            continue;
        }
        seg *s = &sp->segs[0];
        if (s->size > VIGIL__SPOOL_SEG_HDR) {
            int rc = seg_fd(sp, s);
            if (rc)
                return rc;
            if (ftruncate(s->fd, VIGIL__SPOOL_SEG_HDR) != 0) {
                char path[4096];
                seg_path(sp, s->seq, path, sizeof(path));
                return io_error("cannot truncate", path);
            }
            sp->bytes -= s->size - VIGIL__SPOOL_SEG_HDR;
            s->size = s->head = VIGIL__SPOOL_SEG_HDR;
        }
        break;
    }
    return VIGIL_OK;
}

/* Settles the spool, then reads the header of the oldest pending record into
 * *r (its segment in *out, read_header()'s result in *ok). Returns VIGIL_OK,
 * VIGIL_ENOTFOUND ("spool is empty") or the error of settling or opening. */
static int head_record(vigil__spool *sp, seg **out, rec *r, int *ok)
{
    int rc = settle(sp);
    if (rc)
        return rc;
    if (!sp->nsegs || !sp->segs[0].pending)
        return vigil__error_set(VIGIL_ENOTFOUND, "spool is empty");
    seg *s = *out = &sp->segs[0];
    if ((rc = seg_fd(sp, s)) != VIGIL_OK)
        return rc;
    *ok = read_header(s->fd, s->head, s->size, r);
    return VIGIL_OK;
}

int vigil__spool_peek(vigil__spool *sp, vigil_buf *out)
{
    if (!sp || !out)
        return vigil__error_set(VIGIL_EINVAL, "spool peek: NULL argument");
    for (;;) {
        seg *s = NULL;
        rec r;
        int ok = 0;
        int rc = head_record(sp, &s, &r, &ok);
        if (rc)
            return rc;
        if (ok > 0)
            ok = read_payload(s->fd, s->head, &r, out);
        if (ok == -2)
            return vigil__error_oom();
        if (ok < 0) {
            char path[4096];
            seg_path(sp, s->seq, path, sizeof(path));
            return io_error("cannot read", path);
        }
        if (ok == 0) {
            vigil__buf_clear(out);
            skip_rest(sp, s, "spool record damaged since it was written; rest of segment skipped");
            continue;
        }
        if (r.state == STATE_DONE) { /* delivered but not counted: skip it */
            s->head += VIGIL__SPOOL_REC_HDR + r.len;
            if (s->head >= s->size)
                skip_rest(sp, s, "spool segment count mismatch");
            continue;
        }
        return VIGIL_OK;
    }
}

int vigil__spool_pop(vigil__spool *sp)
{
    if (!sp)
        return vigil__error_set(VIGIL_EINVAL, "spool pop: NULL argument");
    seg *s = NULL;
    rec r;
    int ok = 0;
    int rc = head_record(sp, &s, &r, &ok);
    if (rc)
        return rc;
    char path[4096];
    seg_path(sp, s->seq, path, sizeof(path));
    if (ok < 0)
        return io_error("cannot read", path);
    if (ok == 0) {
        skip_rest(sp, s, "spool record damaged since it was written; rest of segment skipped");
        return settle(sp);
    }
    unsigned char st = STATE_DONE;
    /* not synced on purpose: see the fsync policy in spool.h */
    if (full_pwrite(s->fd, &st, 1, s->head + 16) != 0)
        return io_error("cannot write", path);
    s->head += VIGIL__SPOOL_REC_HDR + r.len;
    s->pending--;
    sp->records--;
    if (!s->pending)
        s->head = s->size;
    return settle(sp);
}

void vigil__spool_stats_get(const vigil__spool *sp, vigil__spool_stats *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof(*out));
    if (!sp)
        return;
    out->bytes = sp->bytes;
    out->records = sp->records;
    out->dropped = sp->dropped;
    out->corrupt = sp->corrupt;
}
