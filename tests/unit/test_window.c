/* Windows: bounds, aggregates, quantiles, rate with counter resets, the
 * window set, and out-of-memory behaviour. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define EPS 1e-9

static vigil_window *mk(int64_t max_age_ms, size_t max_samples)
{
    vigil_window_options o = VIGIL_WINDOW_OPTIONS_INIT;
    o.max_age_ms = max_age_ms;
    o.max_samples = max_samples;
    vigil_window *w = NULL;
    ck_assert_int_eq(vigil_window_new(&w, &o), VIGIL_OK);
    return w;
}

static double agg(const vigil_window *w, vigil_window_agg a, int64_t dur, int64_t now)
{
    double out = -12345;
    int rc = vigil_window_aggregate(w, a, dur, now, &out);
    ck_assert_msg(rc == VIGIL_OK, "aggregate %s: %d %s", vigil_window_agg_name(a), rc,
                  vigil_error_last()->message);
    return out;
}

START_TEST(options_and_bad_arguments)
{
    vigil_window_options o;
    ck_assert_int_eq(vigil_window_options_init(&o, VIGIL_WINDOW_OPTIONS_VERSION), VIGIL_OK);
    ck_assert_int_eq(o.max_age_ms, 0);
    ck_assert_int_eq(vigil_window_options_init(&o, 99), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "window options: version 99 is not supported");
    ck_assert_int_eq(vigil_window_options_init(NULL, 1), VIGIL_EINVAL);

    vigil_window *w = NULL;
    ck_assert_int_eq(vigil_window_new(NULL, NULL), VIGIL_EINVAL);
    o.version = 0;
    ck_assert_int_eq(vigil_window_new(&w, &o), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "window options: version 0 is not supported");
    o.version = VIGIL_WINDOW_OPTIONS_VERSION;
    o.max_age_ms = -1;
    ck_assert_int_eq(vigil_window_new(&w, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "max_age_ms must not be negative");
    o.max_age_ms = 0;
    o.max_samples = VIGIL_WINDOW_MAX_SAMPLES_LIMIT + 1;
    ck_assert_int_eq(vigil_window_new(&w, &o), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "above the limit");
    ck_assert_ptr_null(w);

    ck_assert_int_eq(vigil_window_new(&w, NULL), VIGIL_OK);
    double out;
    ck_assert_int_eq(vigil_window_append(NULL, 1, 1), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_window_append(w, 1, NAN), VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE, "not finite");
    ck_assert_int_eq(vigil_window_append(w, 1, INFINITY), VIGIL_EVALUE);
    ck_assert_int_eq(vigil_window_aggregate(NULL, VIGIL_WINDOW_LAST, 0, 0, &out), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_window_aggregate(w, VIGIL_WINDOW_LAST, 0, 0, NULL), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_window_aggregate(w, (vigil_window_agg)42, 0, 0, &out), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "unknown aggregate 42");
    ck_assert_int_eq(vigil_window_aggregate(w, VIGIL_WINDOW_LAST, -5, 0, &out), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "duration must not be negative");
    ck_assert_int_eq(vigil_window_aggregate(w, VIGIL_WINDOW_LAST, 2 * 3600 * 1000, 0, &out),
                     VIGIL_ERANGE);
    vt_assert_error(VIGIL_ERANGE, "longer than the window's bound");
    ck_assert_int_eq(vigil_window_aggregate(w, VIGIL_WINDOW_MEAN, 300000, 1000, &out),
                     VIGIL_ENOTFOUND);
    vt_assert_error(VIGIL_ENOTFOUND, "no samples in the last 5m");
    ck_assert_int_eq(vigil_window_aggregate(w, VIGIL_WINDOW_LAST, 0, 1000, &out), VIGIL_ENOTFOUND);
    vt_assert_error(VIGIL_ENOTFOUND, "no samples");
    ck_assert_double_eq(agg(w, VIGIL_WINDOW_COUNT, 0, 1000), 0);
    ck_assert_int_eq(vigil_window_newest(w, NULL, NULL), VIGIL_ENOTFOUND);
    ck_assert_int_eq(vigil_window_newest(NULL, NULL, NULL), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_window_quantile(w, 1.5, 0, 0, &out), VIGIL_ERANGE);
    vt_assert_error(VIGIL_ERANGE, "outside [0, 1]");
    ck_assert_int_eq(vigil_window_quantile(w, NAN, 0, 0, &out), VIGIL_ERANGE);
    ck_assert_int_eq(vigil_window_quantile(NULL, 0.5, 0, 0, &out), VIGIL_EINVAL);
    ck_assert_uint_eq(vigil_window_count(NULL), 0);
    ck_assert_uint_eq(vigil_window_memory(NULL), 0);
    ck_assert_uint_eq(vigil_window_expire(NULL, 0), 0);
    vigil_window_free(w);
    vigil_window_free(NULL);
}
END_TEST

START_TEST(agg_names)
{
    vigil_window_agg a;
    static const char *const names[] = {"last", "mean",   "min", "max", "sum", "count",
                                        "rate", "stddev", "p50", "p90", "p95", "p99"};
    for (int i = 0; i < 12; i++) {
        ck_assert_int_eq(vigil_window_agg_parse(&a, names[i]), VIGIL_OK);
        ck_assert_int_eq(a, i);
        ck_assert_str_eq(vigil_window_agg_name(a), names[i]);
    }
    ck_assert_int_eq(vigil_window_agg_parse(&a, "avg"), VIGIL_OK);
    ck_assert_int_eq(a, VIGIL_WINDOW_MEAN);
    ck_assert_int_eq(vigil_window_agg_parse(&a, "median"), VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE, "unknown \"median\"");
    ck_assert_int_eq(vigil_window_agg_parse(NULL, "x"), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_window_agg_parse(&a, NULL), VIGIL_EINVAL);
    ck_assert_str_eq(vigil_window_agg_name((vigil_window_agg)77), "unknown");
}
END_TEST

START_TEST(basic_aggregates)
{
    vigil_window *w = mk(60000, 100);
    double vals[] = {4, 8, 6, 2, 10};
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(vigil_window_append(w, 1000 * (i + 1), vals[i]), VIGIL_OK);
    int64_t now = 5000;
    ck_assert_double_eq(agg(w, VIGIL_WINDOW_LAST, 0, now), 10);
    ck_assert_double_eq(agg(w, VIGIL_WINDOW_MEAN, 0, now), 6);
    ck_assert_double_eq(agg(w, VIGIL_WINDOW_MIN, 0, now), 2);
    ck_assert_double_eq(agg(w, VIGIL_WINDOW_MAX, 0, now), 10);
    ck_assert_double_eq(agg(w, VIGIL_WINDOW_SUM, 0, now), 30);
    ck_assert_double_eq(agg(w, VIGIL_WINDOW_COUNT, 0, now), 5);
    ck_assert_double_eq_tol(agg(w, VIGIL_WINDOW_STDDEV, 0, now), sqrt(8.0), EPS);
    ck_assert_double_eq(agg(w, VIGIL_WINDOW_P50, 0, now), 6);
    /* The last 2 s: samples at 4000 and 5000 (ts > now - 2000). */
    ck_assert_double_eq(agg(w, VIGIL_WINDOW_COUNT, 2000, now), 2);
    ck_assert_double_eq(agg(w, VIGIL_WINDOW_MEAN, 2000, now), 6);
    ck_assert_double_eq(agg(w, VIGIL_WINDOW_MIN, 2000, now), 2);
    /* An earlier end: samples at or before 3000. */
    ck_assert_double_eq(agg(w, VIGIL_WINDOW_LAST, 0, 3000), 6);
    ck_assert_double_eq(agg(w, VIGIL_WINDOW_MAX, 1500, 3000), 8);
    /* A window ending long after the last sample holds nothing. */
    double out;
    ck_assert_int_eq(vigil_window_aggregate(w, VIGIL_WINDOW_LAST, 10000, 100000, &out),
                     VIGIL_ENOTFOUND);
    vt_assert_error(VIGIL_ENOTFOUND, "no samples in the last 10s");

    int64_t ts;
    double v;
    ck_assert_int_eq(vigil_window_newest(w, &ts, &v), VIGIL_OK);
    ck_assert_int_eq(ts, 5000);
    ck_assert_double_eq(v, 10);
    vigil_window_free(w);
}
END_TEST

START_TEST(order_and_last_write_wins)
{
    vigil_window *w = mk(60000, 100);
    ck_assert_int_eq(vigil_window_append(w, 1000, 1), VIGIL_OK);
    ck_assert_int_eq(vigil_window_append(w, 2000, 2), VIGIL_OK);
    ck_assert_int_eq(vigil_window_append(w, 2000, 5), VIGIL_OK); /* replaces */
    ck_assert_uint_eq(vigil_window_count(w), 2);
    ck_assert_double_eq(agg(w, VIGIL_WINDOW_LAST, 0, 2000), 5);
    ck_assert_int_eq(vigil_window_append(w, 1500, 9), VIGIL_ERANGE);
    vt_assert_error(VIGIL_ERANGE, "older than the newest");
    ck_assert_uint_eq(vigil_window_count(w), 2);
    ck_assert_double_eq(agg(w, VIGIL_WINDOW_SUM, 0, 2000), 6);
    vigil_window_free(w);
}
END_TEST

START_TEST(count_bound_and_ring_wrap)
{
    vigil_window *w = mk(3600000, 5);
    for (int i = 1; i <= 23; i++)
        ck_assert_int_eq(vigil_window_append(w, i * 1000, i), VIGIL_OK);
    ck_assert_uint_eq(vigil_window_count(w), 5);
    ck_assert_double_eq(agg(w, VIGIL_WINDOW_MIN, 0, 23000), 19);
    ck_assert_double_eq(agg(w, VIGIL_WINDOW_SUM, 0, 23000), 19 + 20 + 21 + 22 + 23);
    ck_assert_double_eq(agg(w, VIGIL_WINDOW_COUNT, 2500, 23000), 3);
    /* Capacity is bounded: 5 rounds up to 8. */
    ck_assert_uint_le(vigil_window_memory(w), 64 + 8 * 16);
    vigil_window_free(w);
}
END_TEST

START_TEST(age_bound_and_expire)
{
    vigil_window *w = mk(10000, 1000);
    for (int i = 0; i <= 30; i++)
        ck_assert_int_eq(vigil_window_append(w, i * 1000, i), VIGIL_OK);
    /* Kept: ts >= newest - max_age, i.e. 20000..30000. */
    ck_assert_uint_eq(vigil_window_count(w), 11);
    ck_assert_double_eq(agg(w, VIGIL_WINDOW_MIN, 0, 30000), 20);
    ck_assert_double_eq(agg(w, VIGIL_WINDOW_MIN, 10000, 30000), 21);
    ck_assert_uint_eq(vigil_window_expire(w, 35000), 6);
    ck_assert_uint_eq(vigil_window_expire(w, 100000), 0);
    ck_assert_uint_eq(vigil_window_count(w), 0);
    /* Usable again after emptying. */
    ck_assert_int_eq(vigil_window_append(w, 200000, 7), VIGIL_OK);
    ck_assert_double_eq(agg(w, VIGIL_WINDOW_LAST, 0, 200000), 7);
    vigil_window_free(w);
}
END_TEST

START_TEST(rate_with_counter_reset)
{
    vigil_window *w = mk(60000, 100);
    double out;
    ck_assert_int_eq(vigil_window_append(w, 1000, 0), VIGIL_OK);
    ck_assert_int_eq(vigil_window_aggregate(w, VIGIL_WINDOW_RATE, 0, 1000, &out), VIGIL_ENOTFOUND);
    vt_assert_error(VIGIL_ENOTFOUND, "rate needs two samples");
    double vals[] = {10, 20, 5, 15};
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(vigil_window_append(w, 2000 + 1000 * i, vals[i]), VIGIL_OK);
    /* increases 10 + 10 + 5 (reset) + 10 = 35 over 4 s */
    ck_assert_double_eq_tol(agg(w, VIGIL_WINDOW_RATE, 0, 5000), 8.75, EPS);
    /* without a reset: 20 -> ... the last two samples: 5 -> 15 over 1 s */
    ck_assert_double_eq_tol(agg(w, VIGIL_WINDOW_RATE, 2000, 5000), 10, EPS);
    vigil_window_free(w);
}
END_TEST

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double ref_quantile(const double *sorted, size_t n, double q)
{
    double pos = q * (double)(n - 1);
    size_t k = (size_t)pos;
    double frac = pos - (double)k;
    if (k + 1 >= n)
        return sorted[n - 1];
    return sorted[k] + (sorted[k + 1] - sorted[k]) * frac;
}

START_TEST(quantiles)
{
    vigil_window *w = mk(3600000, 1000);
    for (int i = 1; i <= 100; i++)
        ck_assert_int_eq(vigil_window_append(w, i * 1000, 101 - i), VIGIL_OK);
    ck_assert_double_eq_tol(agg(w, VIGIL_WINDOW_P50, 0, 100000), 50.5, EPS);
    ck_assert_double_eq_tol(agg(w, VIGIL_WINDOW_P90, 0, 100000), 90.1, EPS);
    ck_assert_double_eq_tol(agg(w, VIGIL_WINDOW_P95, 0, 100000), 95.05, EPS);
    ck_assert_double_eq_tol(agg(w, VIGIL_WINDOW_P99, 0, 100000), 99.01, EPS);
    double out;
    ck_assert_int_eq(vigil_window_quantile(w, 0, 0, 100000, &out), VIGIL_OK);
    ck_assert_double_eq(out, 1);
    ck_assert_int_eq(vigil_window_quantile(w, 1, 0, 100000, &out), VIGIL_OK);
    ck_assert_double_eq(out, 100);
    vigil_window_free(w);

    /* Random data with duplicates against a sorted reference. */
    srand(7);
    for (int round = 0; round < 20; round++) {
        size_t n = 1 + (size_t)(rand() % 300);
        w = mk(3600000, 1000);
        double *ref = malloc(n * sizeof(double));
        for (size_t i = 0; i < n; i++) {
            ref[i] = (double)(rand() % 50);
            ck_assert_int_eq(vigil_window_append(w, (int64_t)(i + 1) * 10, ref[i]), VIGIL_OK);
        }
        qsort(ref, n, sizeof(double), cmp_d);
        double qs[] = {0, 0.1, 0.5, 0.9, 0.95, 0.99, 1};
        for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
            ck_assert_int_eq(vigil_window_quantile(w, qs[k], 0, (int64_t)n * 10, &out), VIGIL_OK);
            ck_assert_double_eq_tol(out, ref_quantile(ref, n, qs[k]), 1e-9);
        }
        free(ref);
        vigil_window_free(w);
    }
}
END_TEST

START_TEST(stddev_is_stable)
{
    vigil_window *w = mk(3600000, 1000);
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(vigil_window_append(w, i, 1e9 + (i % 2)), VIGIL_OK);
    ck_assert_double_eq_tol(agg(w, VIGIL_WINDOW_STDDEV, 0, 100), 0.5, 1e-6);
    vigil_window_free(w);
}
END_TEST

START_TEST(set_create_get_remove)
{
    vigil_window_set *set = NULL;
    vigil_window_set_options o;
    ck_assert_int_eq(vigil_window_set_options_init(&o, VIGIL_WINDOW_SET_OPTIONS_VERSION), VIGIL_OK);
    ck_assert_int_eq(vigil_window_set_options_init(&o, 5), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "window set options: version 5 is not supported");
    o.max_series = 3;
    o.window.max_samples = 10;
    ck_assert_int_eq(vigil_window_set_new(&set, &o), VIGIL_OK);
    vigil_window *w = NULL;
    ck_assert_int_eq(vigil_window_set_append(set, "a", 1000, 1, &w), VIGIL_OK);
    ck_assert_ptr_nonnull(w);
    ck_assert_ptr_eq(vigil_window_set_get(set, "a"), w);
    ck_assert_int_eq(vigil_window_set_append(set, "a", 2000, 3, NULL), VIGIL_OK);
    ck_assert_uint_eq(vigil_window_count(w), 2);
    ck_assert_int_eq(vigil_window_set_append(set, "b", 1000, 1, NULL), VIGIL_OK);
    ck_assert_int_eq(vigil_window_set_append(set, "c", 1000, 1, NULL), VIGIL_OK);
    ck_assert_int_eq(vigil_window_set_append(set, "d", 1000, 1, &w), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "limit of 3 series is reached; series d is not tracked");
    ck_assert_ptr_null(w);
    ck_assert_ptr_null(vigil_window_set_get(set, "d"));
    ck_assert_uint_eq(vigil_window_set_count(set), 3);
    /* A bad sample for a new series creates nothing. */
    ck_assert_int_eq(vigil_window_set_remove(set, "c"), VIGIL_OK);
    ck_assert_int_eq(vigil_window_set_append(set, "e", 1000, NAN, NULL), VIGIL_EVALUE);
    ck_assert_uint_eq(vigil_window_set_count(set), 2);
    ck_assert_int_eq(vigil_window_set_remove(set, "c"), VIGIL_ENOTFOUND);
    vt_assert_error(VIGIL_ENOTFOUND, "no window for series c");
    ck_assert_int_eq(vigil_window_set_append(set, "", 1, 1, NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "empty series key");
    ck_assert_int_eq(vigil_window_set_append(set, NULL, 1, 1, NULL), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_window_set_append(NULL, "x", 1, 1, NULL), VIGIL_EINVAL);
    char *big = malloc(70000);
    memset(big, 'k', 69999);
    big[69999] = '\0';
    ck_assert_int_eq(vigil_window_set_append(set, big, 1, 1, NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "longer than 65536");
    free(big);
    /* Out of order sample for an existing series. */
    ck_assert_int_eq(vigil_window_set_append(set, "a", 500, 1, NULL), VIGIL_ERANGE);
    ck_assert_uint_gt(vigil_window_set_memory(set), 0);
    ck_assert_uint_eq(vigil_window_set_memory(NULL), 0);
    ck_assert_uint_eq(vigil_window_set_count(NULL), 0);
    ck_assert_ptr_null(vigil_window_set_get(NULL, "a"));
    vigil_window_set_free(set);
    vigil_window_set_free(NULL);

    o.version = 0;
    ck_assert_int_eq(vigil_window_set_new(&set, &o), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "window set options: version 0 is not supported");
    ck_assert_int_eq(vigil_window_set_new(NULL, NULL), VIGIL_EINVAL);
}
END_TEST

static int count_cb(const char *key, vigil_window *w, void *payload)
{
    (void)w;
    ck_assert_ptr_nonnull(key);
    (*(int *)payload)++;
    return 0;
}

static int stop_cb(const char *key, vigil_window *w, void *payload)
{
    (void)key;
    (void)w;
    (void)payload;
    return 42;
}

START_TEST(set_many_series_and_expire)
{
    vigil_window_set_options o = VIGIL_WINDOW_SET_OPTIONS_INIT;
    o.window.max_age_ms = 10000;
    vigil_window_set *set = NULL;
    ck_assert_int_eq(vigil_window_set_new(&set, &o), VIGIL_OK);
    char key[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "s%d", i);
        ck_assert_int_eq(vigil_window_set_append(set, key, i % 2 ? 1000 : 50000, i, NULL),
                         VIGIL_OK);
    }
    ck_assert_uint_eq(vigil_window_set_count(set), 2000);
    for (int i = 0; i < 2000; i += 3) {
        snprintf(key, sizeof(key), "s%d", i);
        ck_assert_int_eq(vigil_window_set_remove(set, key), VIGIL_OK);
    }
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "s%d", i);
        vigil_window *w = vigil_window_set_get(set, key);
        if (i % 3 == 0) {
            ck_assert_ptr_null(w);
        } else {
            ck_assert_ptr_nonnull(w);
            ck_assert_double_eq(agg(w, VIGIL_WINDOW_LAST, 0, 60000), i);
        }
    }
    int n = 0;
    ck_assert_int_eq(vigil_window_set_foreach(set, count_cb, &n), VIGIL_OK);
    ck_assert_int_eq(n, (int)vigil_window_set_count(set));
    ck_assert_int_eq(vigil_window_set_foreach(set, stop_cb, NULL), 42);
    ck_assert_int_eq(vigil_window_set_foreach(set, NULL, NULL), VIGIL_EINVAL);
    /* At 30 s the series last seen at 1 s are expired and removed. */
    size_t before = vigil_window_set_count(set);
    size_t odd_left = 0;
    for (int i = 1; i < 2000; i += 2)
        odd_left += i % 3 != 0;
    ck_assert_uint_eq(vigil_window_set_expire(set, 30000), odd_left);
    ck_assert_uint_eq(vigil_window_set_count(set), before - odd_left);
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "s%d", i);
        int expect = i % 2 == 0 && i % 3 != 0;
        ck_assert_int_eq(vigil_window_set_get(set, key) != NULL, expect);
    }
    ck_assert_uint_eq(vigil_window_set_expire(NULL, 0), 0);
    vigil_window_set_free(set);
}
END_TEST

/* Keys of every length from 1 to 80 bytes that differ in one byte only, at
 * every position: each finds its own window. */
START_TEST(set_keys_differing_anywhere)
{
    vigil_window_set *set = NULL;
    ck_assert_int_eq(vigil_window_set_new(&set, NULL), VIGIL_OK);
    char key[96];
    int n = 0;
    for (int len = 1; len <= 80; len++) {
        for (int pos = 0; pos < len; pos++) {
            memset(key, 'k', (size_t)len);
            key[len] = '\0';
            key[pos] = 'x';
            ck_assert_int_eq(vigil_window_set_append(set, key, 1000, len * 100 + pos, NULL),
                             VIGIL_OK);
            n++;
        }
        memset(key, 'k', (size_t)len);
        key[len] = '\0';
        ck_assert_int_eq(vigil_window_set_append(set, key, 1000, -len, NULL), VIGIL_OK);
        n++;
    }
    ck_assert_uint_eq(vigil_window_set_count(set), (size_t)n);
    for (int len = 1; len <= 80; len++) {
        for (int pos = 0; pos < len; pos++) {
            memset(key, 'k', (size_t)len);
            key[len] = '\0';
            key[pos] = 'x';
            vigil_window *w = vigil_window_set_get(set, key);
            ck_assert_ptr_nonnull(w);
            ck_assert_double_eq(agg(w, VIGIL_WINDOW_LAST, 0, 1000), len * 100 + pos);
        }
        memset(key, 'k', (size_t)len);
        key[len] = '\0';
        ck_assert_double_eq(agg(vigil_window_set_get(set, key), VIGIL_WINDOW_LAST, 0, 1000), -len);
        ck_assert_int_eq(vigil_window_set_remove(set, key), VIGIL_OK);
        ck_assert_ptr_null(vigil_window_set_get(set, key));
    }
    ck_assert_uint_eq(vigil_window_set_count(set), (size_t)n - 80);
    vigil_window_set_free(set);
}
END_TEST

START_TEST(set_append_metric)
{
    vigil_window_set *set = NULL;
    ck_assert_int_eq(vigil_window_set_new(&set, NULL), VIGIL_OK);
    vigil_tag tags[] = {{"host", "h1"}, {"cpu", "0"}};
    vigil_metric m = {"cpu_usage", 0.5, 1000, tags, 2, NULL};
    vigil_window *w = NULL;
    ck_assert_int_eq(vigil_window_set_append_metric(set, &m, &w), VIGIL_OK);
    ck_assert_ptr_nonnull(w);
    ck_assert_ptr_eq(vigil_window_set_get(set, "cpu_usage{cpu=\"0\",host=\"h1\"}"), w);
    m.error = "collector failed";
    m.value = NAN;
    m.ts_ms = 2000;
    ck_assert_int_eq(vigil_window_set_append_metric(set, &m, &w), VIGIL_OK);
    ck_assert_ptr_null(w);
    ck_assert_uint_eq(vigil_window_set_count(set), 1);
    ck_assert_int_eq(vigil_window_set_append_metric(set, NULL, NULL), VIGIL_EINVAL);
    vigil_window_set_free(set);
}
END_TEST

typedef struct oom_ctx {
    vigil_window_set *set;
    vigil_window *w;
} oom_ctx;

static int oom_window_op(void *p)
{
    oom_ctx *c = p;
    int rc = vigil_window_new(&c->w, NULL);
    for (int i = 0; rc == VIGIL_OK && i < 40; i++)
        rc = vigil_window_append(c->w, i * 1000, i);
    double out;
    if (rc == VIGIL_OK)
        rc = vigil_window_aggregate(c->w, VIGIL_WINDOW_P90, 0, 40000, &out);
    return rc;
}

static int oom_set_op(void *p)
{
    oom_ctx *c = p;
    int rc = vigil_window_set_new(&c->set, NULL);
    char key[16];
    for (int i = 0; rc == VIGIL_OK && i < 100; i++) {
        snprintf(key, sizeof(key), "k%d", i % 70);
        rc = vigil_window_set_append(c->set, key, i * 1000, i, NULL);
    }
    vigil_tag tags[] = {{"a", "b"}};
    vigil_metric m = {"m", 1, 1, tags, 1, NULL};
    if (rc == VIGIL_OK)
        rc = vigil_window_set_append_metric(c->set, &m, NULL);
    return rc;
}

static void oom_cleanup(void *p)
{
    oom_ctx *c = p;
    vigil_window_free(c->w);
    vigil_window_set_free(c->set);
    c->w = NULL;
    c->set = NULL;
}

START_TEST(out_of_memory_sweep)
{
    oom_ctx c = {NULL, NULL};
    ck_assert_int_gt(vt_oom_sweep(oom_window_op, oom_cleanup, &c, 0), 3);
    ck_assert_int_gt(vt_oom_sweep(oom_set_op, oom_cleanup, &c, 0), 70);
}
END_TEST

static Suite *window_suite(void)
{
    Suite *s = suite_create("window");
    TCase *tc = tcase_create("window");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, options_and_bad_arguments);
    tcase_add_test(tc, agg_names);
    tcase_add_test(tc, basic_aggregates);
    tcase_add_test(tc, order_and_last_write_wins);
    tcase_add_test(tc, count_bound_and_ring_wrap);
    tcase_add_test(tc, age_bound_and_expire);
    tcase_add_test(tc, rate_with_counter_reset);
    tcase_add_test(tc, quantiles);
    tcase_add_test(tc, stddev_is_stable);
    tcase_add_test(tc, set_create_get_remove);
    tcase_add_test(tc, set_many_series_and_expire);
    tcase_add_test(tc, set_keys_differing_anywhere);
    tcase_add_test(tc, set_append_metric);
    suite_add_tcase(s, tc);
    TCase *oom = tcase_create("oom");
    tcase_set_timeout(oom, 60);
    tcase_add_test(oom, out_of_memory_sweep);
    suite_add_tcase(s, oom);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(window_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
