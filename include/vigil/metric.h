/*
 * vigil/metric.h - the metric model: a sample, its validation and the
 * canonical series key. Batches of samples and their JSON codec are in
 * vigil/batch.h.
 *
 * Threads: every function is thread-safe.
 * Include <vigil/vigil.h> rather than this header directly.
 */
#ifndef VIGIL_METRIC_H
#define VIGIL_METRIC_H

#include "vigil/buf.h"
#include "vigil/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @name Limits of the metric model @since 0.1.0 */
/**@{*/
#define VIGIL_METRIC_NAME_MAX           200  /**< bytes in a metric name or tag key */
#define VIGIL_METRIC_TAG_VALUE_MAX      1024 /**< bytes in a tag value */
#define VIGIL_METRIC_TAGS_MAX           64   /**< tags on one metric */
#define VIGIL_METRIC_ERROR_MAX          1024 /**< bytes in a metric's error text */
#define VIGIL_BATCH_ID_MAX              128  /**< bytes in a batch id */
#define VIGIL_AGENT_ID_MAX              200  /**< bytes in an agent id */
#define VIGIL_BATCH_DEFAULT_MAX_METRICS 100000
/**@}*/

/** A tag: key and value, both NUL-terminated. @since 0.1.0 */
typedef struct vigil_tag {
    const char *key;
    const char *value;
} vigil_tag;

/**
 * One sample. A metric with @c error set records a collector that failed: its
 * value is NaN and ignored. Otherwise the value must be finite. Tags are kept
 * sorted by key (byte order) inside a batch; keys are unique. @c ts_ms is from
 * 0 to 2^53 - 1 (9007199254740991), the integers a JSON number carries exactly.
 * @since 0.1.0
 */
typedef struct vigil_metric {
    const char *name;
    double value;
    int64_t ts_ms; /**< milliseconds since the Unix epoch */
    const vigil_tag *tags;
    size_t ntags;
    const char *error; /**< NULL unless the collector failed */
} vigil_metric;

/**
 * Checks a metric against the model: name and tag keys match
 * [a-zA-Z_:][a-zA-Z0-9_:]* and are at most VIGIL_METRIC_NAME_MAX bytes; tag
 * values are valid UTF-8 without NUL, at most VIGIL_METRIC_TAG_VALUE_MAX
 * bytes (empty is allowed); at most VIGIL_METRIC_TAGS_MAX tags with unique
 * keys; ts_ms from 0 to 2^53 - 1; the value is finite unless @c error is set;
 * the error text is non-empty valid UTF-8 of at most VIGIL_METRIC_ERROR_MAX
 * bytes. The message names the field, e.g. "tags.host: duplicate tag key".
 * @return VIGIL_OK; VIGIL_ENAME (invalid name or key); VIGIL_ELIMIT (too long,
 *         too many tags); VIGIL_EENCODING (invalid UTF-8); VIGIL_EVALUE
 *         (non-finite value, ts out of range, empty error text); VIGIL_EINVAL
 *         (NULL metric, name, key or value, or a duplicate tag key).
 *         Thread-safe.
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_metric_validate(const vigil_metric *metric);

/**
 * True when @p name is a valid metric name or tag key (NULL is not).
 * Thread-safe. @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_metric_name_valid(const char *name);

/**
 * Writes the canonical series key of a metric into @p out (cleared first):
 * the name, then the tags sorted by key as {k="v",...} with \\, " and newline
 * escaped, e.g. cpu_usage{cpu="0",host="h1"}; a metric without tags is just its
 * name. Two metrics are the same series exactly when their keys are equal.
 * Tags need not be sorted on input. The metric is not validated beyond that.
 * @return VIGIL_OK, VIGIL_ENOMEM, or VIGIL_EINVAL (NULL argument, name, key or
 *         value, or more than VIGIL_METRIC_TAGS_MAX tags). Thread-safe.
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_metric_series_key(vigil_buf *out, const vigil_metric *metric);

#ifdef __cplusplus
}
#endif

#endif
