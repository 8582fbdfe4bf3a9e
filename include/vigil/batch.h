/*
 * vigil/batch.h - a batch of samples (vigil/metric.h) and the JSON codec of
 * the ingest body (POST /v1/ingest).
 *
 * Threads: a vigil_batch is not synchronised; use one from one thread at a
 * time.
 * Include <vigil/vigil.h> rather than this header directly.
 */
#ifndef VIGIL_BATCH_H
#define VIGIL_BATCH_H

#include "vigil/buf.h"
#include "vigil/common.h"
#include "vigil/metric.h"
#include "vigil/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Creates an empty batch. @return VIGIL_OK or VIGIL_ENOMEM. The batch is the
 * caller's; release it with vigil_batch_free(). @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_batch_new(vigil_batch **out);

/** Frees a batch and every string it owns. NULL is a no-op. @since 0.1.0 */
VIGIL_EXTERN(void) vigil_batch_free(vigil_batch *batch);

/** Removes every metric and the ids, keeping allocated memory. @since 0.1.0 */
VIGIL_EXTERN(void) vigil_batch_clear(vigil_batch *batch);

/**
 * Validates @p metric (as vigil_metric_validate()) and appends a copy: the
 * batch copies every string and stores the tags sorted by key.
 * @return VIGIL_OK or a validation code (the batch is unchanged), VIGIL_ELIMIT
 *         past the batch's metric limit, VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_batch_add(vigil_batch *batch, const vigil_metric *metric);

/** Number of metrics in the batch. @since 0.1.0 */
VIGIL_EXTERN(size_t) vigil_batch_count(const vigil_batch *batch);

/**
 * The metric at @p index (borrowed from the batch, valid until the batch is
 * changed or freed), or NULL when out of range. Its tags are sorted by key.
 * @since 0.1.0
 */
VIGIL_EXTERN(const vigil_metric *) vigil_batch_get(const vigil_batch *batch, size_t index);

/**
 * Sets the agent id or batch id (copied; NULL clears). Ids must be non-empty,
 * valid UTF-8 without NUL; a batch id is at most VIGIL_BATCH_ID_MAX bytes, an
 * agent id at most VIGIL_AGENT_ID_MAX. On failure the id is unchanged.
 * @return VIGIL_OK, VIGIL_EVALUE (empty), VIGIL_EENCODING, VIGIL_ELIMIT,
 *         VIGIL_ENOMEM, or VIGIL_EINVAL for a NULL batch.
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_batch_set_agent(vigil_batch *batch, const char *agent);
VIGIL_EXTERN(int) vigil_batch_set_id(vigil_batch *batch, const char *batch_id);

/** The agent id or batch id (borrowed), or NULL when unset. @since 0.1.0 */
VIGIL_EXTERN(const char *) vigil_batch_agent(const vigil_batch *batch);
VIGIL_EXTERN(const char *) vigil_batch_id(const vigil_batch *batch);

/**
 * Sets the most metrics the batch accepts (vigil_batch_add() and the decoder
 * refuse more with VIGIL_ELIMIT). 0 restores VIGIL_BATCH_DEFAULT_MAX_METRICS.
 * @since 0.1.0
 */
VIGIL_EXTERN(void) vigil_batch_set_max_metrics(vigil_batch *batch, size_t max_metrics);

/**
 * Options of vigil_batch_decode_json(). All zero but the version means the
 * defaults.
 * @since 0.2.0 (vigil_batch_decode_options in 0.1.0)
 */
typedef struct vigil_batch_decode_options {
    unsigned int version;  /**< VIGIL_BATCH_DECODE_OPTIONS_VERSION */
    size_t max_metrics;    /**< 0: VIGIL_BATCH_DEFAULT_MAX_METRICS */
    int require_agent;     /**< non-zero: "agent" must be present */
    int64_t default_ts_ms; /**< used for metrics without "ts"; 0: "ts" is required */
} vigil_batch_decode_options;

#define VIGIL_BATCH_DECODE_OPTIONS_VERSION 1
#define VIGIL_BATCH_DECODE_OPTIONS_INIT             \
    {                                               \
        VIGIL_BATCH_DECODE_OPTIONS_VERSION, 0, 0, 0 \
    }

/**
 * Fills @p opts with defaults. @return VIGIL_OK, VIGIL_EINVAL (NULL @p opts) or
 * VIGIL_EVERSION (@p version 0 or newer than this library's).
 * @since 0.2.0 (vigil_batch_decode_options_init in 0.1.0)
 */
VIGIL_EXTERN(int)
vigil_batch_decode_options_init(vigil_batch_decode_options *opts, unsigned int version);

/**
 * Decodes an ingest body
 * {"agent":"h1","batch_id":"...","metrics":[{"name","value","ts","tags","error"}]}
 * into @p batch (cleared first). "metrics" is required; each metric needs
 * "name", "value" and "ts" (unless opts->default_ts_ms is not 0); "tags" is an
 * object of strings; "error" is a non-empty string and then "value" must be
 * null. "ts" is an integer number of milliseconds from 0 to 2^53 - 1.
 *
 * Strict and bounded: @p json need not be NUL-terminated; it must be exactly
 * one RFC 8259 JSON value (no leading zeros, no raw control characters in
 * strings, no byte order mark, nothing after the value); strings with \\u0000,
 * unpaired surrogate escapes or invalid UTF-8 are refused (cJSON accepts them
 * silently); nesting deeper than 16 levels is refused before parsing; unknown
 * and duplicate fields are refused. The most metrics accepted is the smaller
 * of opts->max_metrics and the batch's own limit (vigil_batch_set_max_metrics).
 *
 * On failure the batch is left empty and the message names the JSON path, e.g.
 * "metrics[3].tags.host: expected a string, got a number", and for syntax and
 * encoding errors also the position, e.g.
 * "metrics[0].value: invalid number (line 1, column 34)".
 * @return VIGIL_OK; VIGIL_EJSON (malformed); VIGIL_ETYPE (wrong type);
 *         VIGIL_EMISSING (required field absent); VIGIL_ENAME (invalid name or
 *         tag key); VIGIL_EVALUE (non-finite value, null value without error, a
 *         number value with error, fractional, negative or too large ts, empty
 *         agent, batch_id or error); VIGIL_EENCODING (invalid UTF-8, \\u0000,
 *         NUL byte, unpaired surrogate); VIGIL_ELIMIT (too many metrics or
 *         tags, string too long, nesting too deep, a number of more than 63
 *         characters); VIGIL_EINVAL (unknown field, duplicate field or tag key,
 *         NULL argument, bad options); VIGIL_ENOMEM.
 * @param opts NULL for defaults.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_batch_decode_json(vigil_batch *batch, const char *json, size_t len,
                        const vigil_batch_decode_options *opts);

/**
 * Encodes @p batch as an ingest body into @p out (cleared first), compact, in
 * the order agent, batch_id, metrics; each metric as name, value, ts, tags
 * (sorted, omitted when empty), error. The agent and batch_id members are
 * written when set; "error" only when set (with "value":null). Numbers
 * round-trip exactly (shortest form of up to 17 significant digits, whatever
 * the locale); the output decodes back to an equal batch.
 * @return VIGIL_OK, VIGIL_ENOMEM, or VIGIL_EINVAL for a NULL argument.
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_batch_encode_json(vigil_buf *out, const vigil_batch *batch);

#ifdef __cplusplus
}
#endif

#endif
