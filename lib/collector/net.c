/* Built-in collector net: per-interface rates from /proc/net/dev. */
#include "collector/coll_int.h"

#include <stdio.h>
#include <string.h>

#define IFACES_MAX 4096
#define NCOUNTERS  8

static const char *const net_keys[] = {"interfaces", "exclude_interfaces", NULL};

/* Positions in a /proc/net/dev line of the counters we report. */
static const int positions[NCOUNTERS] = {0, 1, 2, 3, 8, 9, 10, 11};
static const char *const names[NCOUNTERS] = {
    "net_rx_bytes_per_second",  "net_rx_packets_per_second", "net_rx_errors_per_second",
    "net_rx_drops_per_second",  "net_tx_bytes_per_second",   "net_tx_packets_per_second",
    "net_tx_errors_per_second", "net_tx_drops_per_second"};

typedef struct {
    char name[32];
    uint64_t c[NCOUNTERS];
    int64_t at_ms;
    int seen;
} iface_prev;

typedef struct {
    const vigil_collector_context *ctx;
    char **only;
    char **exclude;
    vigil_buf buf;
    iface_prev *prev;
    size_t nprev, capprev;
    int gen;
} net_state;

static void net_destroy(void *p)
{
    net_state *s = p;
    vigil__coll_free_string_list(s->only);
    vigil__coll_free_string_list(s->exclude);
    vigil_buf_dispose(&s->buf);
    vigil__free(s->prev);
    vigil__free(s);
}

static int net_create(void **state, const vigil_config_node *config,
                      const vigil_collector_context *ctx)
{
    net_state *s = vigil__calloc(1, sizeof(*s));
    if (!s)
        return vigil__error_oom();
    s->ctx = ctx;
    int rc = vigil__coll_get_string_list(&s->only, config, "interfaces", IFACES_MAX, 31);
    if (rc == VIGIL_OK)
        rc = vigil__coll_get_string_list(&s->exclude, config, "exclude_interfaces", IFACES_MAX, 31);
    if (rc != VIGIL_OK) {
        net_destroy(s);
        return rc;
    }
    *state = s;
    return VIGIL_OK;
}

static int net_line(net_state *s, vigil_batch *out, const char *line, int64_t ts, int64_t mono)
{
    const char *colon = strchr(line, ':');
    const char *eol = strchr(line, '\n');
    if (!colon || (eol && colon > eol))
        return VIGIL_OK;
    const char *b = line;
    while (*b == ' ')
        b++;
    size_t len = (size_t)(colon - b);
    if (len == 0 || len >= sizeof(((iface_prev *)0)->name))
        return VIGIL_OK;
    char name[32];
    memcpy(name, b, len);
    name[len] = '\0';
    if ((s->only && !vigil__coll_list_has(s->only, name)) ||
        vigil__coll_list_has(s->exclude, name) || !vigil__utf8_valid(name, len))
        return VIGIL_OK;
    uint64_t all[16];
    const char *p = colon + 1;
    for (int i = 0; i < 16; i++)
        if (!vigil__coll_parse_u64(&p, &all[i]))
            return VIGIL_OK; /* not a counter line */
    iface_prev cur;
    memset(&cur, 0, sizeof(cur));
    memcpy(cur.name, name, len + 1);
    for (int i = 0; i < NCOUNTERS; i++)
        cur.c[i] = all[positions[i]];
    cur.at_ms = mono;
    cur.seen = s->gen;
    iface_prev *pv = NULL;
    for (size_t i = 0; i < s->nprev && !pv; i++)
        if (strcmp(s->prev[i].name, name) == 0)
            pv = &s->prev[i];
    if (!pv) {
        if (s->nprev >= IFACES_MAX)
            return VIGIL_OK;
        if (vigil__array_grow((void **)&s->prev, &s->capprev, s->nprev + 1, sizeof(iface_prev)) !=
            VIGIL_OK)
            return vigil__error_oom();
        s->prev[s->nprev++] = cur;
        return VIGIL_OK;
    }
    double dt = vigil__coll_elapsed_s(pv->at_ms, mono);
    for (int i = 0; i < NCOUNTERS && dt > 0; i++) {
        if (cur.c[i] < pv->c[i])
            continue; /* counter reset (interface re-created): no rate this time */
        int rc =
            vigil__coll_emit1(out, names[i], (double)(cur.c[i] - pv->c[i]) / dt, ts, "iface", name);
        if (rc != VIGIL_OK)
            return rc;
    }
    *pv = cur;
    return VIGIL_OK;
}

static int net_collect(void *p, vigil_batch *out, int64_t now_ms)
{
    net_state *s = p;
    char path[PATH_MAX];
    int rc = vigil__coll_read_proc(&s->buf, path, sizeof(path), s->ctx->proc_root, "net/dev");
    if (rc != VIGIL_OK)
        return rc;
    int64_t mono = vigil__monotonic_ms();
    s->gen++;
    for (const char *line = s->buf.ptr; line && *line;) {
        if ((rc = net_line(s, out, line, now_ms, mono)) != VIGIL_OK)
            return rc;
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    size_t k = 0;
    for (size_t i = 0; i < s->nprev; i++)
        if (s->prev[i].seen == s->gen)
            s->prev[k++] = s->prev[i];
    s->nprev = k;
    return VIGIL_OK;
}

const vigil_collector_type vigil__collector_net = {
    .version = VIGIL_COLLECTOR_TYPE_VERSION,
    .name = "net",
    .flags = VIGIL_COLLECTOR_RATES,
    .keys = net_keys,
    .create = net_create,
    .collect = net_collect,
    .destroy = net_destroy,
};
