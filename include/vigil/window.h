/*
 * vigil/window.h - in-memory history of one series, bounded by age and by
 * count, with the aggregates the policy engine evaluates: last, mean, min,
 * max, sum, count, rate, stddev and quantiles over any duration up to the
 * bound. Aggregates read only memory, never the store.
 *
 * A window is a ring buffer of (ts, value) samples in time order. Appending is
 * O(1) amortised: the buffer grows geometrically up to max_samples, and the
 * oldest samples fall out once the window is full or older than max_age_ms
 * (measured from the newest sample). Aggregates over a duration find its start
 * by binary search (O(log n)) and read the k samples inside (O(k)); quantiles
 * use a selection on a copy (O(k) average, one temporary allocation).
 *
 * Memory: a window takes 48 bytes plus 16 bytes (ts and value) per sample of
 * buffer capacity; the capacity is the next power of two of the most samples
 * it has held (at least 8), never more than max_samples rounded up to a power
 * of two. A series sampled every 10 s with a 1 h bound holds 360 samples:
 * 48 + 16 * 512 = 8,240 bytes; every second over 1 h with max_samples 4096:
 * 65,584 bytes. In a vigil_window_set each series adds its key (strlen + 1
 * bytes) and about 32 bytes of table entry (hash, length, two slots at most
 * half full). bench/store prints the measured figures (8,310 bytes per series
 * for the first case with a 27-byte key).
 *
 * Threads: neither a window nor a window set is synchronised; use each from
 * one thread at a time (aggregates on a const window may run concurrently with
 * each other, not with an append).
 */
#ifndef VIGIL_WINDOW_H
#define VIGIL_WINDOW_H

#include "vigil/common.h"
#include "vigil/metric.h"
#include "vigil/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @name Limits @since 0.1.0 */
/**@{*/
#define VIGIL_WINDOW_MAX_SAMPLES_LIMIT   (1u << 24) /**< largest max_samples accepted */
#define VIGIL_WINDOW_DEFAULT_MAX_SAMPLES 4096
#define VIGIL_WINDOW_DEFAULT_MAX_AGE_MS  (60 * 60 * 1000) /**< 1 h */
#define VIGIL_WINDOW_DEFAULT_MAX_SERIES  100000
/**@}*/

/** Aggregates of a window. @since 0.1.0 */
typedef enum vigil_window_agg {
    VIGIL_WINDOW_LAST = 0, /**< value of the newest sample */
    VIGIL_WINDOW_MEAN = 1, /**< arithmetic mean */
    VIGIL_WINDOW_MIN = 2,
    VIGIL_WINDOW_MAX = 3,
    VIGIL_WINDOW_SUM = 4,
    VIGIL_WINDOW_COUNT = 5, /**< number of samples (0 is a valid result) */
    /** per-second increase of a counter: the sum of the increases between
     * consecutive samples, where a decrease counts as a reset to 0 (the new
     * value is the increase), divided by the seconds between the first and
     * last sample. Needs two samples with different timestamps. */
    VIGIL_WINDOW_RATE = 6,
    VIGIL_WINDOW_STDDEV = 7, /**< population standard deviation */
    VIGIL_WINDOW_P50 = 8,    /**< quantiles: linear interpolation between closest ranks */
    VIGIL_WINDOW_P90 = 9,
    VIGIL_WINDOW_P95 = 10,
    VIGIL_WINDOW_P99 = 11
} vigil_window_agg;

/**
 * Parses an aggregate name: "last", "mean" (or "avg"), "min", "max", "sum",
 * "count", "rate", "stddev", "p50", "p90", "p95", "p99".
 * @return VIGIL_OK, VIGIL_EINVAL (NULL) or VIGIL_EVALUE (unknown; the message
 *         lists the known names).
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_window_agg_parse(vigil_window_agg *out, const char *name);

/** The name of an aggregate ("mean", ...) or "unknown". Never NULL. @since 0.1.0 */
VIGIL_EXTERN(const char *) vigil_window_agg_name(vigil_window_agg agg);

/** Bounds of a window. Zero fields mean the defaults. @since 0.1.0 */
typedef struct vigil_window_options {
    unsigned int version; /**< VIGIL_WINDOW_OPTIONS_VERSION */
    int64_t max_age_ms;   /**< samples older than newest - max_age_ms fall out; 0: 1 h */
    size_t max_samples;   /**< at most this many samples; 0: 4096 */
} vigil_window_options;

#define VIGIL_WINDOW_OPTIONS_VERSION 1
#define VIGIL_WINDOW_OPTIONS_INIT          \
    {                                      \
        VIGIL_WINDOW_OPTIONS_VERSION, 0, 0 \
    }

/**
 * Fills @p opts with defaults. @return VIGIL_OK, VIGIL_EINVAL (NULL @p opts) or
 * VIGIL_EVERSION (@p version 0 or newer than this library's). @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_window_options_init(vigil_window_options *opts, unsigned int version);

/**
 * Creates an empty window. @param opts NULL for defaults.
 * @param out receives the window, the caller's; free with vigil_window_free().
 * @return VIGIL_OK; VIGIL_EINVAL (NULL @p out, negative age); VIGIL_EVERSION
 *         (unknown options version);
 *         VIGIL_ELIMIT (max_samples above VIGIL_WINDOW_MAX_SAMPLES_LIMIT);
 *         VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_window_new(vigil_window **out, const vigil_window_options *opts);

/** Frees a window. NULL is a no-op. @since 0.1.0 */
VIGIL_EXTERN(void) vigil_window_free(vigil_window *window);

/**
 * Appends a sample. A sample with the newest timestamp replaces the newest
 * value (last write wins); an older one is refused.
 * @return VIGIL_OK; VIGIL_EINVAL (NULL); VIGIL_EVALUE (value not finite);
 *         VIGIL_ERANGE (ts older than the newest sample: out of order; the
 *         window is unchanged); VIGIL_ENOMEM (growing the buffer failed; the
 *         window is unchanged).
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_window_append(vigil_window *window, int64_t ts_ms, double value);

/**
 * Drops samples older than @p now_ms - max_age_ms (for series that stopped
 * reporting). @return the number of samples remaining. NULL: 0. @since 0.1.0
 */
VIGIL_EXTERN(size_t) vigil_window_expire(vigil_window *window, int64_t now_ms);

/** Number of samples held. NULL: 0. @since 0.1.0 */
VIGIL_EXTERN(size_t) vigil_window_count(const vigil_window *window);

/**
 * The newest sample. @return VIGIL_OK, VIGIL_EINVAL (NULL) or
 * VIGIL_ENOTFOUND (empty). Either out-parameter may be NULL. @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_window_newest(const vigil_window *window, int64_t *ts_ms, double *value);

/**
 * Bytes of memory the window uses now (its struct and buffer). NULL: 0.
 * @since 0.1.0
 */
VIGIL_EXTERN(size_t) vigil_window_memory(const vigil_window *window);

/**
 * Computes @p agg over the samples with now_ms - duration_ms < ts <= now_ms.
 * @param duration_ms > 0 and at most max_age_ms; 0 means every sample held
 *        with ts <= now_ms.
 * @param now_ms the end of the window (usually the current time).
 * @param out receives the result.
 * @return VIGIL_OK; VIGIL_EINVAL (NULL, unknown aggregate, negative
 *         duration); VIGIL_ERANGE (duration above the window's max_age_ms);
 *         VIGIL_ENOTFOUND (no sample in the range, or fewer than two for
 *         rate; COUNT gives 0 instead); VIGIL_ENOMEM (quantiles only).
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_window_aggregate(const vigil_window *window, vigil_window_agg agg, int64_t duration_ms,
                       int64_t now_ms, double *out);

/**
 * Computes the @p q quantile (0 <= q <= 1) over the same range as
 * vigil_window_aggregate(), with linear interpolation between closest ranks.
 * @return as vigil_window_aggregate(), and VIGIL_ERANGE for q outside [0, 1].
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_window_quantile(const vigil_window *window, double q, int64_t duration_ms, int64_t now_ms,
                      double *out);

/* ---- a set of windows keyed by series -------------------------------------- */

/** Options of a window set. Zero fields mean the defaults. @since 0.1.0 */
typedef struct vigil_window_set_options {
    unsigned int version; /**< VIGIL_WINDOW_SET_OPTIONS_VERSION */
    /** Bounds of every window of the set. Its version may be left 0 (as
     * VIGIL_WINDOW_SET_OPTIONS_INIT leaves it): an embedded options struct
     * has the layout of the version of the struct that holds it. */
    vigil_window_options window;
    size_t max_series; /**< windows at most; 0: 100,000 */
} vigil_window_set_options;

#define VIGIL_WINDOW_SET_OPTIONS_VERSION 1
#define VIGIL_WINDOW_SET_OPTIONS_INIT                  \
    {                                                  \
        VIGIL_WINDOW_SET_OPTIONS_VERSION, {0, 0, 0}, 0 \
    }

/**
 * Fills @p opts with defaults. @return VIGIL_OK, VIGIL_EINVAL (NULL @p opts) or
 * VIGIL_EVERSION (@p version 0 or newer than this library's). @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_window_set_options_init(vigil_window_set_options *opts, unsigned int version);

/**
 * Creates an empty set. @param opts NULL for defaults.
 * @param out receives the set, the caller's; free with vigil_window_set_free().
 * @return VIGIL_OK, VIGIL_EINVAL, VIGIL_ELIMIT, VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_window_set_new(vigil_window_set **out, const vigil_window_set_options *opts);

/** Frees a set and all its windows. NULL is a no-op. @since 0.1.0 */
VIGIL_EXTERN(void) vigil_window_set_free(vigil_window_set *set);

/**
 * Appends a sample to the window of @p series_key, creating the window on the
 * series' first sample.
 * @param window_out receives the series' window (borrowed from the set, valid
 *        until it is removed or the set freed); may be NULL.
 * @return as vigil_window_append(), plus VIGIL_ELIMIT (a new series while the
 *         set holds max_series windows: the message names the limit and the
 *         series, nothing is created) and VIGIL_EINVAL (empty key, or longer
 *         than 64 KiB).
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_window_set_append(vigil_window_set *set, const char *series_key, int64_t ts_ms, double value,
                        vigil_window **window_out);

/**
 * Appends a metric under its canonical series key (vigil_metric_series_key()).
 * A metric with @c error set is skipped (VIGIL_OK, nothing appended).
 * @return as vigil_window_set_append().
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_window_set_append_metric(vigil_window_set *set, const vigil_metric *metric,
                               vigil_window **window_out);

/**
 * The window of @p series_key (borrowed from the set), or NULL when the set
 * has none. @since 0.1.0
 */
VIGIL_EXTERN(vigil_window *)
vigil_window_set_get(const vigil_window_set *set, const char *series_key);

/**
 * Removes and frees the window of @p series_key.
 * @return VIGIL_OK, VIGIL_EINVAL (NULL) or VIGIL_ENOTFOUND.
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_window_set_remove(vigil_window_set *set, const char *series_key);

/** Number of windows. NULL: 0. @since 0.1.0 */
VIGIL_EXTERN(size_t) vigil_window_set_count(const vigil_window_set *set);

/**
 * Expires old samples in every window (vigil_window_expire()) and removes the
 * windows left empty. @return the number of windows removed. @since 0.1.0
 */
VIGIL_EXTERN(size_t) vigil_window_set_expire(vigil_window_set *set, int64_t now_ms);

/** Receives each window of a set; non-zero stops. @since 0.1.0 */
typedef int (*vigil_window_set_cb)(const char *series_key, vigil_window *window, void *payload);

/**
 * Calls @p cb for every window, in no particular order. The callback must not
 * add or remove windows.
 * @return VIGIL_OK, VIGIL_EINVAL (NULL) or the non-zero value @p cb returned.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_window_set_foreach(const vigil_window_set *set, vigil_window_set_cb cb, void *payload);

/**
 * Bytes of memory the set uses now (windows, keys and table). NULL: 0.
 * @since 0.1.0
 */
VIGIL_EXTERN(size_t) vigil_window_set_memory(const vigil_window_set *set);

#ifdef __cplusplus
}
#endif

#endif
