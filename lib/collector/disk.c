/* Built-in collector disk: space and inodes of real mounts (statvfs over
 * /proc/self/mountinfo) and I/O rates of their devices (/proc/diskstats). */
#include "collector/coll_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>

#define MOUNTS_MAX 4096

static const char *const disk_keys[] = {"mounts", "exclude_fstypes", NULL};

/* File systems that hold no disk data of their own. */
static const char *const pseudo_fs[] = {
    "proc",        "sysfs",           "devtmpfs",     "devpts",   "tmpfs",    "ramfs",
    "cgroup",      "cgroup2",         "securityfs",   "pstore",   "debugfs",  "tracefs",
    "mqueue",      "hugetlbfs",       "configfs",     "fusectl",  "bpf",      "autofs",
    "binfmt_misc", "rpc_pipefs",      "nsfs",         "efivarfs", "squashfs", "selinuxfs",
    "fuse.lxcfs",  "fuse.gvfsd-fuse", "fuse.portal",  "iso9660",  "devfs",    "nfsd",
    "sockfs",      "pipefs",          "anon_inodefs", NULL};

typedef struct {
    unsigned int major, minor;
    char mount[PATH_MAX];
    char fstype[64];
    char source[256];
} mount_ent;

typedef struct {
    unsigned int major, minor;
    uint64_t rd_ios, rd_sectors, wr_ios, wr_sectors;
    int64_t at_ms;
    int seen; /* generation of the last collection that saw it */
} io_prev;

typedef struct {
    const vigil_collector_context *ctx;
    char **mounts;
    char **exclude;
    vigil_buf buf;
    vigil_buf stats;
    mount_ent *ents;
    size_t nents, capents;
    io_prev *prev;
    size_t nprev, capprev;
    int gen;
} disk_state;

static void disk_destroy(void *p)
{
    disk_state *s = p;
    vigil__coll_free_string_list(s->mounts);
    vigil__coll_free_string_list(s->exclude);
    vigil_buf_dispose(&s->buf);
    vigil_buf_dispose(&s->stats);
    vigil__free(s->ents);
    vigil__free(s->prev);
    vigil__free(s);
}

static int disk_create(void **state, const vigil_config_node *config,
                       const vigil_collector_context *ctx)
{
    disk_state *s = vigil__calloc(1, sizeof(*s));
    if (!s)
        return vigil__error_oom();
    s->ctx = ctx;
    int rc = vigil__coll_get_string_list(&s->mounts, config, "mounts", MOUNTS_MAX, PATH_MAX - 1);
    if (rc == VIGIL_OK)
        rc = vigil__coll_get_string_list(&s->exclude, config, "exclude_fstypes", 256, 63);
    if (rc == VIGIL_OK && s->mounts)
        for (char **m = s->mounts; *m && rc == VIGIL_OK; m++)
            if ((*m)[0] != '/')
                rc = vigil_error_set_at(VIGIL_EVALUE, vigil_config_node_get(config, "mounts"),
                                        "mount points must be absolute paths");
    if (rc != VIGIL_OK) {
        disk_destroy(s);
        return rc;
    }
    *state = s;
    return VIGIL_OK;
}

/* Copies one space-separated mountinfo field, decoding \ooo octal escapes. */
static const char *field(const char *p, char *dst, size_t size)
{
    size_t n = 0;
    while (*p == ' ')
        p++;
    while (*p && *p != ' ' && *p != '\n') {
        char c = *p++;
        if (c == '\\' && p[0] >= '0' && p[0] <= '3' && p[1] >= '0' && p[1] <= '7' && p[2] >= '0' &&
            p[2] <= '7') {
            c = (char)((p[0] - '0') * 64 + (p[1] - '0') * 8 + (p[2] - '0'));
            p += 3;
        }
        if (n + 1 < size)
            dst[n++] = c;
    }
    dst[n] = '\0';
    return p;
}

static bool is_pseudo(const disk_state *s, const char *fstype)
{
    for (const char *const *f = pseudo_fs; *f; f++)
        if (strcmp(*f, fstype) == 0)
            return true;
    return vigil__coll_list_has(s->exclude, fstype);
}

/* Mount points and sources become tag values: bounded, valid UTF-8. */
static bool usable_tag(const char *s)
{
    size_t n = strlen(s);
    return n <= VIGIL_METRIC_TAG_VALUE_MAX && vigil__utf8_valid(s, n);
}

/* Parses one mountinfo line; returns false when it is malformed. */
static bool parse_mountinfo_line(const char *line, mount_ent *e)
{
    char tmp[PATH_MAX];
    const char *p = field(line, tmp, sizeof(tmp)); /* mount id */
    p = field(p, tmp, sizeof(tmp));                /* parent id */
    p = field(p, tmp, sizeof(tmp));                /* major:minor */
    if (sscanf(tmp, "%u:%u", &e->major, &e->minor) != 2)
        return false;
    p = field(p, tmp, sizeof(tmp)); /* root */
    p = field(p, e->mount, sizeof(e->mount));
    p = field(p, tmp, sizeof(tmp)); /* options */
    for (;;) {                      /* optional fields up to "-" */
        p = field(p, tmp, sizeof(tmp));
        if (!tmp[0])
            return false;
        if (strcmp(tmp, "-") == 0)
            break;
    }
    p = field(p, e->fstype, sizeof(e->fstype));
    field(p, e->source, sizeof(e->source));
    return e->mount[0] == '/' && e->fstype[0];
}

static int read_mounts(disk_state *s)
{
    char path[PATH_MAX];
    int rc =
        vigil__coll_read_proc(&s->buf, path, sizeof(path), s->ctx->proc_root, "self/mountinfo");
    if (rc != VIGIL_OK)
        return rc;
    s->nents = 0;
    for (const char *line = s->buf.ptr; line && *line;) {
        const char *eol = strchr(line, '\n');
        mount_ent e;
        if (parse_mountinfo_line(line, &e) && usable_tag(e.mount) && usable_tag(e.source) &&
            !is_pseudo(s, e.fstype) && (!s->mounts || vigil__coll_list_has(s->mounts, e.mount))) {
            /* A later mount over the same point hides the earlier one; the
             * same device mounted again (bind mounts) is reported once. */
            bool dup = false;
            for (size_t i = 0; i < s->nents; i++) {
                if (strcmp(s->ents[i].mount, e.mount) == 0) {
                    s->ents[i] = e;
                    dup = true;
                    break;
                }
                if (s->ents[i].major == e.major && s->ents[i].minor == e.minor) {
                    dup = true;
                    break;
                }
            }
            if (!dup && s->nents < MOUNTS_MAX) {
                if (vigil__array_grow((void **)&s->ents, &s->capents, s->nents + 1,
                                      sizeof(mount_ent)) != VIGIL_OK)
                    return vigil__error_oom();
                s->ents[s->nents++] = e;
            }
        }
        line = eol ? eol + 1 : NULL;
    }
    return VIGIL_OK;
}

/* Finds the kernel name of a device in /proc/diskstats and its counters. */
static bool diskstat_find(const char *text, unsigned int major, unsigned int minor, char *name,
                          size_t name_size, uint64_t c[7])
{
    for (const char *line = text; line && *line;) {
        unsigned int ma, mi;
        char nm[64];
        int off = 0;
        if (sscanf(line, " %u %u %63s%n", &ma, &mi, nm, &off) == 3 && ma == major && mi == minor) {
            const char *p = line + off;
            for (int i = 0; i < 7; i++)
                if (!vigil__coll_parse_u64(&p, &c[i]))
                    return false;
            snprintf(name, name_size, "%s", nm);
            return true;
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return false;
}

static int emit_space(vigil_batch *out, const mount_ent *e, const char *device, int64_t ts)
{
    struct statvfs v;
    vigil_tag tags[3] = {{"device", device}, {"fstype", e->fstype}, {"mount", e->mount}};
    if (statvfs(e->mount, &v) != 0) {
        char msg[VIGIL_METRIC_ERROR_MAX];
        snprintf(msg, sizeof(msg), "statvfs %.900s: %s", e->mount, strerror(errno));
        vigil_metric m = {"disk_used_ratio", NAN, ts, tags, 3, msg};
        return vigil_batch_add(out, &m);
    }
    if (v.f_blocks == 0)
        return VIGIL_OK;
    double frsize = v.f_frsize ? (double)v.f_frsize : (double)v.f_bsize;
    double used = (double)(v.f_blocks - v.f_bfree);
    double denom = used + (double)v.f_bavail;
    int rc;
    if ((rc =
             vigil__coll_emit(out, "disk_used_ratio", denom > 0 ? used / denom : 0, ts, tags, 3)) ||
        (rc = vigil__coll_emit(out, "disk_free_bytes", (double)v.f_bavail * frsize, ts, tags, 3)) ||
        (rc = vigil__coll_emit(out, "disk_total_bytes", (double)v.f_blocks * frsize, ts, tags, 3)))
        return rc;
    if (v.f_files > 0) {
        double iu = (double)(v.f_files - v.f_ffree) / (double)v.f_files;
        if ((rc = vigil__coll_emit(out, "disk_inodes_used_ratio", iu, ts, tags, 3)) != VIGIL_OK)
            return rc;
    }
    return VIGIL_OK;
}

static int emit_io(disk_state *s, vigil_batch *out, const mount_ent *e, const char *device,
                   const uint64_t c[7], int64_t ts, int64_t mono)
{
    io_prev *pv = NULL;
    for (size_t i = 0; i < s->nprev && !pv; i++)
        if (s->prev[i].major == e->major && s->prev[i].minor == e->minor)
            pv = &s->prev[i];
    io_prev cur = {e->major, e->minor, c[0], c[2], c[4], c[6], mono, s->gen};
    int rc = VIGIL_OK;
    if (pv) {
        double dt = vigil__coll_elapsed_s(pv->at_ms, mono);
        if (dt > 0 && c[0] >= pv->rd_ios && c[2] >= pv->rd_sectors && c[4] >= pv->wr_ios &&
            c[6] >= pv->wr_sectors) {
            vigil_tag tags[2] = {{"device", device}, {"mount", e->mount}};
            if ((rc =
                     vigil__coll_emit(out, "disk_read_bytes_per_second",
                                      (double)(c[2] - pv->rd_sectors) * 512.0 / dt, ts, tags, 2)) ||
                (rc =
                     vigil__coll_emit(out, "disk_write_bytes_per_second",
                                      (double)(c[6] - pv->wr_sectors) * 512.0 / dt, ts, tags, 2)) ||
                (rc = vigil__coll_emit(out, "disk_reads_per_second",
                                       (double)(c[0] - pv->rd_ios) / dt, ts, tags, 2)) ||
                (rc = vigil__coll_emit(out, "disk_writes_per_second",
                                       (double)(c[4] - pv->wr_ios) / dt, ts, tags, 2)))
                return rc;
        }
        *pv = cur;
        return VIGIL_OK;
    }
    if (vigil__array_grow((void **)&s->prev, &s->capprev, s->nprev + 1, sizeof(io_prev)) !=
        VIGIL_OK)
        return vigil__error_oom();
    s->prev[s->nprev++] = cur;
    return VIGIL_OK;
}

static int disk_collect(void *p, vigil_batch *out, int64_t now_ms)
{
    disk_state *s = p;
    int rc = read_mounts(s);
    if (rc != VIGIL_OK)
        return rc;
    char path[PATH_MAX];
    bool have_stats = vigil__coll_read_proc(&s->stats, path, sizeof(path), s->ctx->proc_root,
                                            "diskstats") == VIGIL_OK;
    int64_t mono = vigil__monotonic_ms();
    s->gen++;
    for (size_t i = 0; i < s->nents; i++) {
        const mount_ent *e = &s->ents[i];
        char device[256];
        uint64_t c[7];
        bool io = have_stats &&
                  diskstat_find(s->stats.ptr, e->major, e->minor, device, sizeof(device), c);
        if (!io)
            snprintf(device, sizeof(device), "%s", e->source);
        if ((rc = emit_space(out, e, device, now_ms)) != VIGIL_OK)
            return rc;
        if (io && (rc = emit_io(s, out, e, device, c, now_ms, mono)) != VIGIL_OK)
            return rc;
    }
    /* Forget devices that went away. */
    size_t k = 0;
    for (size_t i = 0; i < s->nprev; i++)
        if (s->prev[i].seen == s->gen)
            s->prev[k++] = s->prev[i];
    s->nprev = k;
    /* Configured mount points that are not mounted are reported, not dropped. */
    for (char **m = s->mounts; m && *m; m++) {
        bool found = false;
        for (size_t i = 0; i < s->nents && !found; i++)
            found = strcmp(s->ents[i].mount, *m) == 0;
        if (!found) {
            vigil_tag t = {"mount", *m};
            vigil_metric em = {
                "disk_used_ratio", NAN, now_ms, &t, 1, "not a mounted real file system"};
            if ((rc = vigil_batch_add(out, &em)) != VIGIL_OK)
                return rc;
        }
    }
    return VIGIL_OK;
}

const vigil_collector_type vigil__collector_disk = {
    .version = VIGIL_COLLECTOR_TYPE_VERSION,
    .name = "disk",
    .flags = VIGIL_COLLECTOR_RATES,
    .keys = disk_keys,
    .create = disk_create,
    .collect = disk_collect,
    .destroy = disk_destroy,
};
