/* A small Prometheus registry: counters, gauges and histograms with labels,
 * rendered in the text exposition format 0.0.4. One mutex per registry: the
 * updates are a few per request, far below the cost of the request. */
#include "api/internal.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

enum { PROM_COUNTER, PROM_GAUGE, PROM_HISTOGRAM, PROM_GAUGE_FN };

typedef struct prom_child {
    char **values;
    double value;
    double sum;
    uint64_t count;
    uint64_t *buckets; /* cumulative counts are computed when rendering */
} prom_child;

struct vigil__prom_family {
    vigil__prom *prom;
    int type;
    char *name;
    char *help;
    char **labels;
    size_t nlabels;
    double *bounds;
    size_t nbounds;
    prom_child *children;
    size_t nchildren, cchildren;
    vigil__prom_gauge_fn fn;
    void *fn_payload;
    struct vigil__prom_family *next;
};

struct vigil__prom {
    pthread_mutex_t mu;
    vigil__prom_family *head, *tail;
};

const double vigil__prom_latency_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                              0.1,    0.25,  0.5,    1,     2.5,  5,     10};
const size_t vigil__prom_latency_nbuckets = VIGIL__ARRAY_LEN(vigil__prom_latency_buckets);

int vigil__prom_new(vigil__prom **out)
{
    vigil__prom *p = vigil__calloc(1, sizeof(*p));
    if (!p)
        return vigil__error_oom();
    pthread_mutex_init(&p->mu, NULL);
    *out = p;
    return VIGIL_OK;
}

static void child_dispose(vigil__prom_family *f, prom_child *c)
{
    for (size_t i = 0; c->values && i < f->nlabels; i++)
        vigil__free(c->values[i]);
    vigil__free(c->values);
    vigil__free(c->buckets);
}

static void family_free(vigil__prom_family *f)
{
    for (size_t i = 0; i < f->nchildren; i++)
        child_dispose(f, &f->children[i]);
    vigil__free(f->children);
    for (size_t i = 0; f->labels && i < f->nlabels; i++)
        vigil__free(f->labels[i]);
    vigil__free(f->labels);
    vigil__free(f->bounds);
    vigil__free(f->name);
    vigil__free(f->help);
    vigil__free(f);
}

void vigil__prom_free(vigil__prom *prom)
{
    if (!prom)
        return;
    vigil__prom_family *f = prom->head;
    while (f) {
        vigil__prom_family *n = f->next;
        family_free(f);
        f = n;
    }
    pthread_mutex_destroy(&prom->mu);
    vigil__free(prom);
}

static int family_add(vigil__prom *prom, vigil__prom_family **out, int type, const char *name,
                      const char *help, const char *const *labels, const double *bounds,
                      size_t nbounds)
{
    vigil__prom_family *f = vigil__calloc(1, sizeof(*f));
    if (!f)
        return vigil__error_oom();
    f->prom = prom;
    f->type = type;
    f->name = vigil__strdup(name);
    f->help = vigil__strdup(help);
    if (!f->name || !f->help)
        goto oom;
    while (labels && labels[f->nlabels])
        f->nlabels++;
    if (f->nlabels) {
        f->labels = vigil__calloc(f->nlabels, sizeof(char *));
        if (!f->labels)
            goto oom;
        for (size_t i = 0; i < f->nlabels; i++)
            if (!(f->labels[i] = vigil__strdup(labels[i])))
                goto oom;
    }
    if (nbounds) {
        f->bounds = vigil__calloc(nbounds, sizeof(double));
        if (!f->bounds)
            goto oom;
        memcpy(f->bounds, bounds, nbounds * sizeof(double));
        f->nbounds = nbounds;
    }
    pthread_mutex_lock(&prom->mu);
    if (prom->tail)
        prom->tail->next = f;
    else
        prom->head = f;
    prom->tail = f;
    pthread_mutex_unlock(&prom->mu);
    if (out)
        *out = f;
    return VIGIL_OK;
oom:
    family_free(f);
    return vigil__error_oom();
}

int vigil__prom_counter(vigil__prom *prom, vigil__prom_family **out, const char *name,
                        const char *help, const char *const *labels)
{
    return family_add(prom, out, PROM_COUNTER, name, help, labels, NULL, 0);
}

int vigil__prom_gauge(vigil__prom *prom, vigil__prom_family **out, const char *name,
                      const char *help, const char *const *labels)
{
    return family_add(prom, out, PROM_GAUGE, name, help, labels, NULL, 0);
}

int vigil__prom_histogram(vigil__prom *prom, vigil__prom_family **out, const char *name,
                          const char *help, const char *const *labels, const double *buckets,
                          size_t nbuckets)
{
    return family_add(prom, out, PROM_HISTOGRAM, name, help, labels, buckets, nbuckets);
}

int vigil__prom_gauge_func(vigil__prom *prom, const char *name, const char *help,
                           vigil__prom_gauge_fn fn, void *payload)
{
    vigil__prom_family *f = NULL;
    int rc = family_add(prom, &f, PROM_GAUGE_FN, name, help, NULL, NULL, 0);
    if (rc)
        return rc;
    pthread_mutex_lock(&prom->mu);
    f->fn = fn;
    f->fn_payload = payload;
    pthread_mutex_unlock(&prom->mu);
    return VIGIL_OK;
}

/* Finds or creates the child for `values`; called with the mutex held. */
static prom_child *child_get(vigil__prom_family *f, const char *const *values)
{
    for (size_t i = 0; i < f->nchildren; i++) {
        prom_child *c = &f->children[i];
        size_t k = 0;
        while (k < f->nlabels && strcmp(c->values[k], values[k]) == 0)
            k++;
        if (k == f->nlabels)
            return c;
    }
    if (vigil__array_grow((void **)&f->children, &f->cchildren, f->nchildren + 1,
                          sizeof(prom_child)))
        return NULL;
    prom_child c;
    memset(&c, 0, sizeof(c));
    if (f->nlabels) {
        c.values = vigil__calloc(f->nlabels, sizeof(char *));
        if (!c.values)
            return NULL;
        for (size_t k = 0; k < f->nlabels; k++) {
            c.values[k] = vigil__strdup(values[k] ? values[k] : "");
            if (!c.values[k]) {
                child_dispose(f, &c);
                return NULL;
            }
        }
    }
    if (f->type == PROM_HISTOGRAM) {
        c.buckets = vigil__calloc(f->nbounds + 1, sizeof(uint64_t));
        if (!c.buckets) {
            child_dispose(f, &c);
            return NULL;
        }
    }
    f->children[f->nchildren] = c;
    return &f->children[f->nchildren++];
}

void vigil__prom_add(vigil__prom_family *f, const char *const *values, double delta)
{
    if (!f)
        return;
    pthread_mutex_lock(&f->prom->mu);
    prom_child *c = child_get(f, values);
    if (c)
        c->value += delta;
    pthread_mutex_unlock(&f->prom->mu);
}

void vigil__prom_set(vigil__prom_family *f, const char *const *values, double value)
{
    if (!f)
        return;
    pthread_mutex_lock(&f->prom->mu);
    prom_child *c = child_get(f, values);
    if (c)
        c->value = value;
    pthread_mutex_unlock(&f->prom->mu);
}

void vigil__prom_observe(vigil__prom_family *f, const char *const *values, double value)
{
    if (!f)
        return;
    pthread_mutex_lock(&f->prom->mu);
    prom_child *c = child_get(f, values);
    if (c) {
        size_t i = 0;
        while (i < f->nbounds && value > f->bounds[i])
            i++;
        c->buckets[i]++;
        c->sum += value;
        c->count++;
    }
    pthread_mutex_unlock(&f->prom->mu);
}

double vigil__prom_value(vigil__prom_family *f, const char *const *values)
{
    double v = 0;
    if (!f)
        return 0;
    pthread_mutex_lock(&f->prom->mu);
    for (size_t i = 0; i < f->nchildren; i++) {
        prom_child *c = &f->children[i];
        size_t k = 0;
        while (k < f->nlabels && strcmp(c->values[k], values[k]) == 0)
            k++;
        if (k == f->nlabels) {
            v = f->type == PROM_HISTOGRAM ? (double)c->count : c->value;
            break;
        }
    }
    pthread_mutex_unlock(&f->prom->mu);
    return v;
}

static int put_double(vigil_buf *b, double v)
{
    if (isnan(v))
        return vigil__buf_puts(b, "NaN");
    if (isinf(v))
        return vigil__buf_puts(b, v > 0 ? "+Inf" : "-Inf");
    if (v == floor(v) && fabs(v) < 1e15)
        return vigil__buf_printf(b, "%.0f", v);
    return vigil__buf_printf(b, "%.17g", v);
}

static int put_label_value(vigil_buf *b, const char *v)
{
    int rc = VIGIL_OK;
    for (const char *p = v; *p && !rc; p++) {
        if (*p == '\\')
            rc = vigil__buf_puts(b, "\\\\");
        else if (*p == '"')
            rc = vigil__buf_puts(b, "\\\"");
        else if (*p == '\n')
            rc = vigil__buf_puts(b, "\\n");
        else
            rc = vigil__buf_putc(b, *p);
    }
    return rc;
}

/* Writes `name{labels[,le="x"]}` for a child; `le` may be NULL. */
static int put_series(vigil_buf *b, const vigil__prom_family *f, const char *suffix,
                      const prom_child *c, const char *le)
{
    int rc = vigil__buf_puts(b, f->name);
    if (!rc && suffix)
        rc = vigil__buf_puts(b, suffix);
    if (rc)
        return rc;
    if (f->nlabels == 0 && !le)
        return vigil__buf_putc(b, ' ');
    rc = vigil__buf_putc(b, '{');
    for (size_t k = 0; k < f->nlabels && !rc; k++) {
        rc = vigil__buf_printf(b, "%s%s=\"", k ? "," : "", f->labels[k]);
        if (!rc)
            rc = put_label_value(b, c->values[k]);
        if (!rc)
            rc = vigil__buf_putc(b, '"');
    }
    if (!rc && le)
        rc = vigil__buf_printf(b, "%sle=\"%s\"", f->nlabels ? "," : "", le);
    if (!rc)
        rc = vigil__buf_puts(b, "} ");
    return rc;
}

static int render_child(vigil_buf *b, const vigil__prom_family *f, const prom_child *c)
{
    int rc;
    if (f->type != PROM_HISTOGRAM) {
        rc = put_series(b, f, NULL, c, NULL);
        if (!rc)
            rc = put_double(b, c->value);
        return rc ? rc : vigil__buf_putc(b, '\n');
    }
    uint64_t cum = 0;
    for (size_t i = 0; i <= f->nbounds; i++) {
        char le[64];
        cum += c->buckets[i];
        if (i == f->nbounds) {
            memcpy(le, "+Inf", 5);
        } else {
            vigil_buf t = VIGIL_BUF_INIT;
            if (put_double(&t, f->bounds[i]))
                return vigil__error_oom();
            snprintf(le, sizeof(le), "%s", t.ptr);
            vigil_buf_dispose(&t);
        }
        rc = put_series(b, f, "_bucket", c, le);
        if (!rc)
            rc = vigil__buf_printf(b, "%llu\n", (unsigned long long)cum);
        if (rc)
            return rc;
    }
    rc = put_series(b, f, "_sum", c, NULL);
    if (!rc)
        rc = put_double(b, c->sum);
    if (!rc)
        rc = vigil__buf_putc(b, '\n');
    if (!rc)
        rc = put_series(b, f, "_count", c, NULL);
    if (!rc)
        rc = vigil__buf_printf(b, "%llu\n", (unsigned long long)c->count);
    return rc;
}

static const char *type_name(int type)
{
    switch (type) {
    case PROM_COUNTER: return "counter";
    case PROM_HISTOGRAM: return "histogram";
    default: return "gauge";
    }
}

int vigil__prom_render(vigil__prom *prom, vigil_buf *out)
{
    int rc = VIGIL_OK;
    /* Gauge functions may take other locks (the hub's); call them first,
     * outside the registry mutex. */
    size_t nfn = 0;
    pthread_mutex_lock(&prom->mu);
    for (vigil__prom_family *f = prom->head; f; f = f->next)
        nfn += f->type == PROM_GAUGE_FN;
    vigil__prom_family *head = prom->head;
    pthread_mutex_unlock(&prom->mu);
    double *fnv = NULL;
    if (nfn) {
        fnv = vigil__calloc(nfn, sizeof(double));
        if (!fnv)
            return vigil__error_oom();
        size_t i = 0;
        for (vigil__prom_family *f = head; f && i < nfn; f = f->next)
            if (f->type == PROM_GAUGE_FN)
                fnv[i++] = f->fn(f->fn_payload);
    }
    size_t ifn = 0;
    pthread_mutex_lock(&prom->mu);
    for (vigil__prom_family *f = prom->head; f && !rc; f = f->next) {
        rc = vigil__buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
                               type_name(f->type));
        if (rc)
            break;
        if (f->type == PROM_GAUGE_FN) {
            prom_child c;
            memset(&c, 0, sizeof(c));
            c.value = ifn < nfn ? fnv[ifn] : 0;
            ifn++;
            rc = render_child(out, f, &c);
            continue;
        }
        if (f->nchildren == 0 && f->nlabels == 0) {
            uint64_t zero[64] = {0};
            prom_child c;
            memset(&c, 0, sizeof(c));
            c.buckets = zero;
            if (f->nbounds < VIGIL__ARRAY_LEN(zero))
                rc = render_child(out, f, &c);
            continue;
        }
        for (size_t i = 0; i < f->nchildren && !rc; i++)
            rc = render_child(out, f, &f->children[i]);
    }
    pthread_mutex_unlock(&prom->mu);
    vigil__free(fnv);
    return rc;
}
