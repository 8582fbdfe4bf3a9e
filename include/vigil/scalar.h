/*
 * vigil/scalar.h - the scalar grammars of configuration files: durations,
 * sizes, rates and percentages, parsed (and, for durations, formatted back)
 * exactly as every configuration key of that kind reads them.
 *
 * Every function is thread-safe.
 * Include <vigil/vigil.h> rather than this header directly.
 */
#ifndef VIGIL_SCALAR_H
#define VIGIL_SCALAR_H

#include "vigil/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Parses a duration: one or more <integer><unit> groups with units ms, s, m,
 * h, d in decreasing order ("250ms", "10s", "1h30m", "14d"), or "0".
 * @param out_ms receives the duration in milliseconds.
 * @return VIGIL_OK; VIGIL_EVALUE for anything else (with a message quoting the
 *         input); VIGIL_ERANGE when it overflows 64 bits.
 * @since 0.2.0 (vigil_scalar_parse_duration in 0.1.0)
 */
VIGIL_EXTERN(int) vigil_scalar_parse_duration(int64_t *out_ms, const char *text);

/**
 * Parses a size: an integer with an optional unit B, KiB, MiB, GiB, TiB
 * (powers of 1024) or KB, MB, GB, TB (powers of 1000) ("512KiB", "8MiB", "4096").
 * @return VIGIL_OK, VIGIL_EVALUE or VIGIL_ERANGE.
 * @since 0.2.0 (vigil_scalar_parse_size in 0.1.0)
 */
VIGIL_EXTERN(int) vigil_scalar_parse_size(uint64_t *out_bytes, const char *text);

/**
 * Parses a rate "<number>/<unit>" with unit s, sec, min, m, h, hour, d or day
 * ("30/s", "30/min", "0.5/h").
 * @param out_per_second receives the rate in events per second (> 0).
 * @return VIGIL_OK, VIGIL_EVALUE or VIGIL_ERANGE.
 * @since 0.2.0 (vigil_scalar_parse_rate in 0.1.0)
 */
VIGIL_EXTERN(int) vigil_scalar_parse_rate(double *out_per_second, const char *text);

/**
 * Parses a percentage "<number>%" from 0% to 100% ("10%", "2.5%").
 * @param out_ratio receives the ratio, 0.0 to 1.0.
 * @return VIGIL_OK, VIGIL_EVALUE or VIGIL_ERANGE.
 * @since 0.2.0 (vigil_scalar_parse_percent in 0.1.0)
 */
VIGIL_EXTERN(int) vigil_scalar_parse_percent(double *out_ratio, const char *text);

/**
 * Formats a duration in ms the way vigil_scalar_parse_duration() reads it
 * ("1h30m", "250ms", "0"), into @p buf of @p size bytes (32 always suffice).
 * @return VIGIL_OK, or VIGIL_ERANGE when @p buf is too small or ms < 0.
 * @since 0.2.0 (vigil_scalar_format_duration in 0.1.0)
 */
VIGIL_EXTERN(int) vigil_scalar_format_duration(char *buf, size_t size, int64_t ms);

#ifdef __cplusplus
}
#endif

#endif
