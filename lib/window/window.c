/*
 * Per-series in-memory history: a ring buffer of (ts, value) in time order,
 * bounded by age and count, with aggregates over a trailing duration.
 */
#include "internal/common.h"
#include "vigil/window.h"
#include "window/window_int.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#define MIN_CAP 8

static const char *const g_agg_names[] = {"last", "mean",   "min", "max", "sum", "count",
                                          "rate", "stddev", "p50", "p90", "p95", "p99"};

int vigil_window_agg_parse(vigil_window_agg *out, const char *name)
{
    if (!out || !name)
        return vigil__error_set(VIGIL_EINVAL, "window aggregate: NULL argument");
    for (size_t i = 0; i < VIGIL__ARRAY_LEN(g_agg_names); i++) {
        if (strcmp(name, g_agg_names[i]) == 0) {
            *out = (vigil_window_agg)i;
            return VIGIL_OK;
        }
    }
    if (strcmp(name, "avg") == 0) {
        *out = VIGIL_WINDOW_MEAN;
        return VIGIL_OK;
    }
    return vigil__error_set(VIGIL_EVALUE,
                            "window aggregate: unknown \"%.64s\" (expected last, mean, min, max, "
                            "sum, count, rate, stddev, p50, p90, p95 or p99)",
                            name);
}

const char *vigil_window_agg_name(vigil_window_agg agg)
{
    if ((unsigned)agg < VIGIL__ARRAY_LEN(g_agg_names))
        return g_agg_names[agg];
    return "unknown";
}

int vigil_window_options_init(vigil_window_options *opts, unsigned int version)
{
    if (!opts)
        return vigil__error_set(VIGIL_EINVAL, "window options: NULL");
    if (vigil__version_check("window options", version, VIGIL_WINDOW_OPTIONS_VERSION))
        return VIGIL_EVERSION;
    vigil_window_options d = VIGIL_WINDOW_OPTIONS_INIT;
    *opts = d;
    return VIGIL_OK;
}

int vigil__window_resolve(vigil_window_options *o, const vigil_window_options *in)
{
    vigil_window_options d = VIGIL_WINDOW_OPTIONS_INIT;
    if (in) {
        if (vigil__version_check("window options", in->version, VIGIL_WINDOW_OPTIONS_VERSION))
            return VIGIL_EVERSION;
        d = *in;
    }
    if (d.max_age_ms < 0)
        return vigil__error_set(VIGIL_EINVAL, "window options: max_age_ms must not be negative");
    if (d.max_age_ms == 0)
        d.max_age_ms = VIGIL_WINDOW_DEFAULT_MAX_AGE_MS;
    if (d.max_samples == 0)
        d.max_samples = VIGIL_WINDOW_DEFAULT_MAX_SAMPLES;
    if (d.max_samples > VIGIL_WINDOW_MAX_SAMPLES_LIMIT)
        return vigil__error_set(VIGIL_ELIMIT,
                                "window options: max_samples %zu is above the limit of %u",
                                d.max_samples, VIGIL_WINDOW_MAX_SAMPLES_LIMIT);
    *o = d;
    return VIGIL_OK;
}

void vigil__window_init(vigil_window *w, const vigil_window_options *o)
{
    memset(w, 0, sizeof(*w));
    w->max_age = o->max_age_ms;
    w->max_n = o->max_samples;
}

int vigil_window_new(vigil_window **out, const vigil_window_options *opts)
{
    if (!out)
        return vigil__error_set(VIGIL_EINVAL, "window: NULL argument");
    *out = NULL;
    vigil_window_options o;
    int rc = vigil__window_resolve(&o, opts);
    if (rc)
        return rc;
    vigil_window *w = vigil__malloc(sizeof(*w));
    if (!w)
        return vigil__error_oom();
    vigil__window_init(w, &o);
    *out = w;
    return VIGIL_OK;
}

void vigil__window_dispose(vigil_window *w)
{
    vigil__free(w->s);
    w->s = NULL;
    w->cap = w->n = w->head = 0;
}

void vigil_window_free(vigil_window *w)
{
    if (!w)
        return;
    vigil__window_dispose(w);
    vigil__free(w);
}

/* Sample i (0 = oldest). */
static inline const vigil__wsample *at(const vigil_window *w, size_t i)
{
    return &w->s[(w->head + i) & (w->cap - 1)];
}

static void drop_oldest(vigil_window *w, size_t k)
{
    w->head = (w->head + k) & (w->cap - 1);
    w->n -= k;
    if (w->n == 0)
        w->head = 0;
}

/* Index of the first sample with ts > bound (w->n when none). */
static size_t first_after(const vigil_window *w, int64_t bound)
{
    size_t lo = 0, hi = w->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (at(w, mid)->ts <= bound)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int grow(vigil_window *w)
{
    size_t ncap = w->cap ? w->cap * 2 : MIN_CAP;
    vigil__wsample *ns = vigil__malloc(ncap * sizeof(*ns));
    if (!ns)
        return vigil__error_oom();
    for (size_t i = 0; i < w->n; i++)
        ns[i] = *at(w, i);
    vigil__free(w->s);
    w->s = ns;
    w->cap = ncap;
    w->head = 0;
    return VIGIL_OK;
}

int vigil_window_append(vigil_window *w, int64_t ts_ms, double value)
{
    if (!w)
        return vigil__error_set(VIGIL_EINVAL, "window: NULL argument");
    if (!isfinite(value))
        return vigil__error_set(VIGIL_EVALUE, "window: value is not finite");
    if (w->n) {
        vigil__wsample *last = &w->s[(w->head + w->n - 1) & (w->cap - 1)];
        if (ts_ms < last->ts)
            return vigil__error_set(VIGIL_ERANGE,
                                    "window: sample at %lld is older than the newest (%lld); out "
                                    "of order samples are not kept",
                                    (long long)ts_ms, (long long)last->ts);
        if (ts_ms == last->ts) {
            last->v = value;
            return VIGIL_OK;
        }
        /* Age bound, relative to the new newest sample (nothing to drop,
         * the usual case, when the oldest sample is within it). */
        if (ts_ms > INT64_MIN + w->max_age && at(w, 0)->ts <= ts_ms - w->max_age - 1) {
            size_t k = first_after(w, ts_ms - w->max_age - 1);
            if (k)
                drop_oldest(w, k);
        }
    }
    if (w->n == w->max_n) {
        drop_oldest(w, 1);
    } else if (w->n == w->cap) {
        int rc = grow(w);
        if (rc)
            return rc;
    }
    if (w->cap == 0) { /* max_n == n == 0 cannot happen: max_n >= 1 */
        int rc = grow(w);
        if (rc)
            return rc;
    }
    vigil__wsample *slot = &w->s[(w->head + w->n) & (w->cap - 1)];
    slot->ts = ts_ms;
    slot->v = value;
    w->n++;
    return VIGIL_OK;
}

void vigil__window_set_age(vigil_window *w, int64_t max_age)
{
    w->max_age = max_age;
    if (!w->n)
        return;
    int64_t newest = at(w, w->n - 1)->ts;
    if (newest > INT64_MIN + max_age) {
        size_t k = first_after(w, newest - max_age - 1);
        if (k)
            drop_oldest(w, k);
    }
    /* give back a buffer at least four times larger than needed */
    size_t want = MIN_CAP;
    while (want < w->n)
        want *= 2;
    if (w->cap >= 4 * want) {
        vigil__wsample *ns = vigil__malloc(want * sizeof(*ns));
        if (!ns)
            return; /* keeps the larger buffer */
        for (size_t i = 0; i < w->n; i++)
            ns[i] = *at(w, i);
        vigil__free(w->s);
        w->s = ns;
        w->cap = want;
        w->head = 0;
    }
}

void vigil__window_swap(vigil_window *a, vigil_window *b)
{
    vigil_window t = *a;
    *a = *b;
    *b = t;
}

int vigil__window_merge_newer(vigil_window *dst, const vigil_window *src)
{
    int64_t newest = INT64_MIN;
    if (dst->n)
        newest = at(dst, dst->n - 1)->ts;
    size_t i = first_after(src, newest);
    for (; i < src->n; i++) {
        int rc = vigil_window_append(dst, at(src, i)->ts, at(src, i)->v);
        if (rc)
            return rc;
    }
    return VIGIL_OK;
}

size_t vigil_window_expire(vigil_window *w, int64_t now_ms)
{
    if (!w)
        return 0;
    if (w->n && now_ms > INT64_MIN + w->max_age) {
        size_t k = first_after(w, now_ms - w->max_age - 1);
        if (k)
            drop_oldest(w, k);
    }
    return w->n;
}

size_t vigil_window_count(const vigil_window *w)
{
    return w ? w->n : 0;
}

int vigil_window_newest(const vigil_window *w, int64_t *ts_ms, double *value)
{
    if (!w)
        return vigil__error_set(VIGIL_EINVAL, "window: NULL argument");
    if (!w->n)
        return vigil__error_set(VIGIL_ENOTFOUND, "window: no samples");
    const vigil__wsample *s = at(w, w->n - 1);
    if (ts_ms)
        *ts_ms = s->ts;
    if (value)
        *value = s->v;
    return VIGIL_OK;
}

size_t vigil_window_memory(const vigil_window *w)
{
    return w ? sizeof(*w) + w->cap * sizeof(vigil__wsample) : 0;
}

/* [*first, *end) of the samples in (now - duration, now]. */
static int range_of(const vigil_window *w, int64_t duration, int64_t now, size_t *first,
                    size_t *end)
{
    if (duration < 0)
        return vigil__error_set(VIGIL_EINVAL, "window: duration must not be negative");
    if (duration > w->max_age)
        return vigil__error_set(VIGIL_ERANGE,
                                "window: duration %lld ms is longer than the window's bound of "
                                "%lld ms",
                                (long long)duration, (long long)w->max_age);
    *end = first_after(w, now);
    if (duration == 0 || now < INT64_MIN + duration)
        *first = 0;
    else
        *first = first_after(w, now - duration);
    if (*first > *end)
        *first = *end;
    return VIGIL_OK;
}

/* Samples [first, end) as at most two contiguous runs of the ring. */
typedef struct seg {
    const vigil__wsample *p;
    size_t n;
} seg;

static void segments(const vigil_window *w, size_t first, size_t end, seg g[2])
{
    size_t start = (w->head + first) & (w->cap - 1);
    size_t n = end - first, tail = w->cap - start;
    g[0].p = w->s + start;
    g[0].n = n <= tail ? n : tail;
    g[1].p = w->s;
    g[1].n = n - g[0].n;
}

static double sum_of(const vigil_window *w, size_t first, size_t end)
{
    seg g[2];
    segments(w, first, end, g);
    double sum = 0;
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < g[k].n; i++)
            sum += g[k].p[i].v;
    return sum;
}

static int no_samples(int64_t duration)
{
    char d[32];
    if (duration == 0 || vigil_scalar_format_duration(d, sizeof(d), duration) != VIGIL_OK)
        return vigil__error_set(VIGIL_ENOTFOUND, "window: no samples");
    return vigil__error_set(VIGIL_ENOTFOUND, "window: no samples in the last %s", d);
}

/* Swaps for the selection. */
static void swap_d(double *a, double *b)
{
    double t = *a;
    *a = *b;
    *b = t;
}

/* k-th smallest of v[0..n) (Wirth's selection); leaves v partitioned around
 * k: nothing before k is larger, nothing after k is smaller. */
static double select_kth(double *v, size_t n, size_t k)
{
    ptrdiff_t l = 0, m = (ptrdiff_t)n - 1, kk = (ptrdiff_t)k;
    while (l < m) {
        double x = v[kk];
        ptrdiff_t i = l, j = m;
        do {
            while (v[i] < x)
                i++;
            while (x < v[j])
                j--;
            if (i <= j) {
                swap_d(&v[i], &v[j]);
                i++;
                j--;
            }
        } while (i <= j);
        if (j < kk)
            l = i;
        if (kk < i)
            m = j;
    }
    return v[k];
}

static double min_of(const double *v, size_t n)
{
    double m = v[0];
    for (size_t i = 1; i < n; i++)
        if (v[i] < m)
            m = v[i];
    return m;
}

static int quantile_range(const vigil_window *w, double q, size_t first, size_t end, double *out)
{
    size_t n = end - first;
    double *v = vigil__malloc(n * sizeof(double));
    if (!v)
        return vigil__error_oom();
    seg g[2];
    segments(w, first, end, g);
    for (size_t i = 0; i < g[0].n; i++)
        v[i] = g[0].p[i].v;
    for (size_t i = 0; i < g[1].n; i++)
        v[g[0].n + i] = g[1].p[i].v;
    double pos = q * (double)(n - 1);
    size_t k = (size_t)pos;
    double frac = pos - (double)k;
    double a = select_kth(v, n, k);
    double r = a;
    if (frac > 0 && k + 1 < n) {
        /* After the selection every element above k is >= a: the next rank
         * is the smallest of them. */
        double b = min_of(v + k + 1, n - k - 1);
        r = a + (b - a) * frac;
    }
    vigil__free(v);
    *out = r;
    return VIGIL_OK;
}

int vigil_window_quantile(const vigil_window *w, double q, int64_t duration_ms, int64_t now_ms,
                          double *out)
{
    if (!w || !out)
        return vigil__error_set(VIGIL_EINVAL, "window: NULL argument");
    if (!(q >= 0.0 && q <= 1.0))
        return vigil__error_set(VIGIL_ERANGE, "window: quantile %g is outside [0, 1]", q);
    size_t first, end;
    int rc = range_of(w, duration_ms, now_ms, &first, &end);
    if (rc)
        return rc;
    if (first == end)
        return no_samples(duration_ms);
    return quantile_range(w, q, first, end, out);
}

int vigil_window_aggregate(const vigil_window *w, vigil_window_agg agg, int64_t duration_ms,
                           int64_t now_ms, double *out)
{
    if (!w || !out)
        return vigil__error_set(VIGIL_EINVAL, "window: NULL argument");
    if ((unsigned)agg > VIGIL_WINDOW_P99)
        return vigil__error_set(VIGIL_EINVAL, "window: unknown aggregate %d", (int)agg);
    size_t first, end;
    int rc = range_of(w, duration_ms, now_ms, &first, &end);
    if (rc)
        return rc;
    size_t n = end - first;
    if (agg == VIGIL_WINDOW_COUNT) {
        *out = (double)n;
        return VIGIL_OK;
    }
    if (n == 0)
        return no_samples(duration_ms);
    switch (agg) {
    case VIGIL_WINDOW_LAST: *out = at(w, end - 1)->v; return VIGIL_OK;
    case VIGIL_WINDOW_MIN: {
        seg g[2];
        segments(w, first, end, g);
        double m = g[0].p[0].v;
        for (int k = 0; k < 2; k++)
            for (size_t i = 0; i < g[k].n; i++)
                m = g[k].p[i].v < m ? g[k].p[i].v : m;
        *out = m;
        return VIGIL_OK;
    }
    case VIGIL_WINDOW_MAX: {
        seg g[2];
        segments(w, first, end, g);
        double m = g[0].p[0].v;
        for (int k = 0; k < 2; k++)
            for (size_t i = 0; i < g[k].n; i++)
                m = g[k].p[i].v > m ? g[k].p[i].v : m;
        *out = m;
        return VIGIL_OK;
    }
    case VIGIL_WINDOW_SUM: *out = sum_of(w, first, end); return VIGIL_OK;
    case VIGIL_WINDOW_MEAN: *out = sum_of(w, first, end) / (double)n; return VIGIL_OK;
    case VIGIL_WINDOW_STDDEV: {
        /* Two passes (mean, then squared deviations): stable and cheap. */
        double mean = sum_of(w, first, end) / (double)n, m2 = 0;
        seg g[2];
        segments(w, first, end, g);
        for (int k = 0; k < 2; k++)
            for (size_t i = 0; i < g[k].n; i++) {
                double d = g[k].p[i].v - mean;
                m2 += d * d;
            }
        *out = sqrt(m2 / (double)n);
        return VIGIL_OK;
    }
    case VIGIL_WINDOW_RATE: {
        const vigil__wsample *a = at(w, first), *b = at(w, end - 1);
        if (n < 2 || b->ts == a->ts)
            return vigil__error_set(VIGIL_ENOTFOUND,
                                    "window: rate needs two samples at different times, the "
                                    "range holds %zu",
                                    n);
        double inc = 0, prev = a->v;
        seg g[2];
        segments(w, first, end, g);
        for (int k = 0; k < 2; k++)
            for (size_t i = 0; i < g[k].n; i++) {
                double v = g[k].p[i].v;
                inc += v >= prev ? v - prev : v; /* a decrease is a counter reset */
                prev = v;
            }
        *out = inc * 1000.0 / (double)(b->ts - a->ts);
        return VIGIL_OK;
    }
    case VIGIL_WINDOW_P50: return quantile_range(w, 0.50, first, end, out);
    case VIGIL_WINDOW_P90: return quantile_range(w, 0.90, first, end, out);
    case VIGIL_WINDOW_P95: return quantile_range(w, 0.95, first, end, out);
    case VIGIL_WINDOW_P99: return quantile_range(w, 0.99, first, end, out);
    default: return vigil__error_set(VIGIL_EINVAL, "window: unknown aggregate %d", (int)agg);
    }
}
