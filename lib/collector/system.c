/* Built-in collectors cpu (/proc/stat), memory (/proc/meminfo) and load
 * (/proc/loadavg). */
#include "collector/coll_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- cpu ------------------------------------------------------------------ */

enum { F_USER, F_NICE, F_SYSTEM, F_IDLE, F_IOWAIT, F_IRQ, F_SOFTIRQ, F_STEAL, F_COUNT };

typedef struct {
    long id; /* -1 for the "cpu" total line */
    uint64_t f[F_COUNT];
} cpu_reading;

typedef struct {
    const vigil_collector_context *ctx;
    int per_cpu;
    cpu_reading *prev;
    size_t nprev, capprev;
    cpu_reading *cur;
    size_t ncur, capcur;
    vigil_buf buf;
} cpu_state;

static const char *const cpu_keys[] = {"per_cpu", NULL};

static void cpu_destroy(void *p)
{
    cpu_state *s = p;
    vigil__free(s->prev);
    vigil__free(s->cur);
    vigil_buf_dispose(&s->buf);
    vigil__free(s);
}

static int cpu_create(void **state, const vigil_config_node *config,
                      const vigil_collector_context *ctx)
{
    int per_cpu = 1;
    int rc = vigil_config_get_bool(&per_cpu, config, "per_cpu", 1);
    if (rc != VIGIL_OK)
        return rc;
    cpu_state *s = vigil__calloc(1, sizeof(*s));
    if (!s)
        return vigil__error_oom();
    s->ctx = ctx;
    s->per_cpu = per_cpu;
    *state = s;
    return VIGIL_OK;
}

static int cpu_parse(cpu_state *s, const char *path)
{
    s->ncur = 0;
    for (const char *line = s->buf.ptr; line && *line;) {
        const char *eol = strchr(line, '\n');
        if (strncmp(line, "cpu", 3) == 0) {
            const char *p = line + 3;
            long id = -1;
            if (*p >= '0' && *p <= '9') {
                char *end;
                id = strtol(p, &end, 10);
                p = end;
            }
            if (*p == ' ' && (id < 0 || s->per_cpu)) {
                cpu_reading r = {id, {0}};
                int nf = 0;
                while (nf < F_COUNT && vigil__coll_parse_u64(&p, &r.f[nf]))
                    nf++;
                if (nf < 4)
                    return vigil__error_set(VIGIL_ECORRUPT, "%s: malformed line \"%.40s\"", path,
                                            line);
                if (vigil__array_grow((void **)&s->cur, &s->capcur, s->ncur + 1,
                                      sizeof(cpu_reading)) != VIGIL_OK)
                    return vigil__error_oom();
                s->cur[s->ncur++] = r;
            }
        }
        line = eol ? eol + 1 : NULL;
    }
    if (s->ncur == 0 || s->cur[0].id != -1)
        return vigil__error_set(VIGIL_ECORRUPT, "%s: no \"cpu\" line", path);
    return VIGIL_OK;
}

static uint64_t delta(uint64_t now, uint64_t before)
{
    return now > before ? now - before : 0;
}

static double clamp01(double v)
{
    return v < 0 ? 0 : v > 1 ? 1 : v;
}

static int cpu_emit(vigil_batch *out, const cpu_reading *a, const cpu_reading *b, int64_t ts)
{
    uint64_t d[F_COUNT];
    uint64_t total = 0;
    for (int i = 0; i < F_COUNT; i++) {
        d[i] = delta(b->f[i], a->f[i]);
        total += d[i];
    }
    if (total == 0)
        return VIGIL_OK;
    char id[24];
    if (b->id < 0)
        snprintf(id, sizeof(id), "total");
    else
        snprintf(id, sizeof(id), "%ld", b->id);
    double t = (double)total;
    struct {
        const char *name;
        double v;
    } m[] = {
        {"cpu_usage", 1.0 - (double)(d[F_IDLE] + d[F_IOWAIT]) / t},
        {"cpu_iowait_ratio", (double)d[F_IOWAIT] / t},
        {"cpu_steal_ratio", (double)d[F_STEAL] / t},
        {"cpu_user_ratio", (double)(d[F_USER] + d[F_NICE]) / t},
        {"cpu_system_ratio", (double)(d[F_SYSTEM] + d[F_IRQ] + d[F_SOFTIRQ]) / t},
    };
    for (size_t i = 0; i < VIGIL__ARRAY_LEN(m); i++) {
        int rc = vigil__coll_emit1(out, m[i].name, clamp01(m[i].v), ts, "cpu", id);
        if (rc != VIGIL_OK)
            return rc;
    }
    return VIGIL_OK;
}

static int cpu_collect(void *p, vigil_batch *out, int64_t now_ms)
{
    cpu_state *s = p;
    char path[PATH_MAX];
    int rc = vigil__coll_read_proc(&s->buf, path, sizeof(path), s->ctx->proc_root, "stat");
    if (rc == VIGIL_OK)
        rc = cpu_parse(s, path);
    if (rc != VIGIL_OK)
        return rc;
    for (size_t i = 0; i < s->ncur; i++) {
        const cpu_reading *before = NULL;
        for (size_t j = 0; j < s->nprev && !before; j++)
            if (s->prev[j].id == s->cur[i].id)
                before = &s->prev[j];
        if (before && (rc = cpu_emit(out, before, &s->cur[i], now_ms)) != VIGIL_OK)
            return rc;
    }
    cpu_reading *t = s->prev;
    size_t tc = s->capprev;
    s->prev = s->cur;
    s->capprev = s->capcur;
    s->nprev = s->ncur;
    s->cur = t;
    s->capcur = tc;
    s->ncur = 0;
    return VIGIL_OK;
}

const vigil_collector_type vigil__collector_cpu = {
    .version = VIGIL_COLLECTOR_TYPE_VERSION,
    .name = "cpu",
    .flags = VIGIL_COLLECTOR_RATES,
    .keys = cpu_keys,
    .create = cpu_create,
    .collect = cpu_collect,
    .destroy = cpu_destroy,
};

/* ---- memory and load: stateless but for the read buffer ---------------------- */

typedef struct {
    const vigil_collector_context *ctx;
    vigil_buf buf;
} simple_state;

static int simple_create(void **state, const vigil_config_node *config,
                         const vigil_collector_context *ctx)
{
    (void)config;
    simple_state *s = vigil__calloc(1, sizeof(*s));
    if (!s)
        return vigil__error_oom();
    s->ctx = ctx;
    *state = s;
    return VIGIL_OK;
}

static void simple_destroy(void *p)
{
    simple_state *s = p;
    vigil_buf_dispose(&s->buf);
    vigil__free(s);
}

/* Finds "Key:" at the start of a line and reads its value in kB as bytes. */
static bool meminfo_get(const char *text, const char *key, double *out)
{
    size_t klen = strlen(key);
    for (const char *line = text; line && *line;) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            const char *p = line + klen + 1;
            uint64_t v;
            if (!vigil__coll_parse_u64(&p, &v))
                return false;
            while (*p == ' ')
                p++;
            *out = strncmp(p, "kB", 2) == 0 ? (double)v * 1024.0 : (double)v;
            return true;
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return false;
}

static int memory_collect(void *p, vigil_batch *out, int64_t now_ms)
{
    simple_state *s = p;
    char path[PATH_MAX];
    int rc = vigil__coll_read_proc(&s->buf, path, sizeof(path), s->ctx->proc_root, "meminfo");
    if (rc != VIGIL_OK)
        return rc;
    const char *t = s->buf.ptr;
    double total, avail, v1, v2, v3, stotal, sfree;
    if (!meminfo_get(t, "MemTotal", &total) || total <= 0)
        return vigil__error_set(VIGIL_ECORRUPT, "%s: no MemTotal", path);
    if (!meminfo_get(t, "MemAvailable", &avail)) {
        /* Kernels before 3.14: approximate as free + buffers + cached. */
        if (!meminfo_get(t, "MemFree", &v1) || !meminfo_get(t, "Buffers", &v2) ||
            !meminfo_get(t, "Cached", &v3))
            return vigil__error_set(VIGIL_ECORRUPT, "%s: no MemAvailable nor MemFree", path);
        avail = v1 + v2 + v3;
    }
    if (avail > total)
        avail = total;
    struct {
        const char *name;
        double v;
    } m[] = {
        {"memory_total_bytes", total},
        {"memory_available_bytes", avail},
        {"memory_used_bytes", total - avail},
        {"memory_used_ratio", (total - avail) / total},
    };
    for (size_t i = 0; i < VIGIL__ARRAY_LEN(m); i++)
        if ((rc = vigil__coll_emit(out, m[i].name, m[i].v, now_ms, NULL, 0)) != VIGIL_OK)
            return rc;
    if (meminfo_get(t, "SwapTotal", &stotal) && meminfo_get(t, "SwapFree", &sfree)) {
        if (sfree > stotal)
            sfree = stotal;
        if ((rc = vigil__coll_emit(out, "swap_total_bytes", stotal, now_ms, NULL, 0)) ||
            (rc = vigil__coll_emit(out, "swap_free_bytes", sfree, now_ms, NULL, 0)))
            return rc;
        if (stotal > 0 && (rc = vigil__coll_emit(out, "swap_used_ratio", (stotal - sfree) / stotal,
                                                 now_ms, NULL, 0)) != VIGIL_OK)
            return rc;
    }
    return VIGIL_OK;
}

const vigil_collector_type vigil__collector_memory = {
    .version = VIGIL_COLLECTOR_TYPE_VERSION,
    .name = "memory",
    .create = simple_create,
    .collect = memory_collect,
    .destroy = simple_destroy,
};

static int load_collect(void *p, vigil_batch *out, int64_t now_ms)
{
    simple_state *s = p;
    char path[PATH_MAX];
    int rc = vigil__coll_read_proc(&s->buf, path, sizeof(path), s->ctx->proc_root, "loadavg");
    if (rc != VIGIL_OK)
        return rc;
    double l1, l5, l15;
    unsigned long running, total;
    if (sscanf(s->buf.ptr, "%lf %lf %lf %lu/%lu", &l1, &l5, &l15, &running, &total) != 5)
        return vigil__error_set(VIGIL_ECORRUPT, "%s: malformed \"%.60s\"", path, s->buf.ptr);
    struct {
        const char *name;
        double v;
    } m[] = {
        {"load1", l1},
        {"load5", l5},
        {"load15", l15},
        {"load_runnable", (double)running},
        {"load_tasks", (double)total},
    };
    for (size_t i = 0; i < VIGIL__ARRAY_LEN(m); i++)
        if ((rc = vigil__coll_emit(out, m[i].name, m[i].v, now_ms, NULL, 0)) != VIGIL_OK)
            return rc;
    return VIGIL_OK;
}

const vigil_collector_type vigil__collector_load = {
    .version = VIGIL_COLLECTOR_TYPE_VERSION,
    .name = "load",
    .create = simple_create,
    .collect = load_collect,
    .destroy = simple_destroy,
};
