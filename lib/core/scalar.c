#include "internal/common.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Input is quoted in messages; clip it so a huge value cannot flood a log. */
#define QUOTE_MAX 64

static const char *clip(const char *s, char *buf, size_t n)
{
    size_t len = strlen(s);
    if (len < n)
        return s;
    snprintf(buf, n, "%.*s...", (int)(n - 4), s);
    return buf;
}

static int bad_duration(const char *text)
{
    char c[QUOTE_MAX];
    return vigil__error_set(VIGIL_EVALUE, "expected a duration such as \"10s\", got \"%s\"",
                            clip(text, c, sizeof(c)));
}

int vigil_scalar_parse_duration(int64_t *out_ms, const char *text)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    if (!out_ms || !text)
        return vigil__error_set(VIGIL_EINVAL, "duration: NULL argument");
    if (strcmp(text, "0") == 0) {
        *out_ms = 0;
        return VIGIL_OK;
    }
    const char *p = text;
    int64_t total = 0;
    int last_rank = (int)VIGIL__ARRAY_LEN(units);
    if (!*p)
        return bad_duration(text);
    while (*p) {
        if (!isdigit((unsigned char)*p))
            return bad_duration(text);
        int64_t n = 0;
        while (isdigit((unsigned char)*p)) {
            if (n > (INT64_MAX - 9) / 10) {
                char c[QUOTE_MAX];
                return vigil__error_set(VIGIL_ERANGE, "duration \"%s\" is too large",
                                        clip(text, c, sizeof(c)));
            }
            n = n * 10 + (*p++ - '0');
        }
        int rank = -1;
        /* longest unit first so that "ms" is not read as "m" */
        if (p[0] == 'm' && p[1] == 's')
            rank = 0;
        else if (*p == 's')
            rank = 1;
        else if (*p == 'm')
            rank = 2;
        else if (*p == 'h')
            rank = 3;
        else if (*p == 'd')
            rank = 4;
        if (rank < 0 || rank >= last_rank)
            return bad_duration(text);
        p += strlen(units[rank].unit);
        last_rank = rank;
        if (n > (INT64_MAX - total) / units[rank].ms) {
            char c[QUOTE_MAX];
            return vigil__error_set(VIGIL_ERANGE, "duration \"%s\" is too large",
                                    clip(text, c, sizeof(c)));
        }
        total += n * units[rank].ms;
    }
    *out_ms = total;
    return VIGIL_OK;
}

int vigil_scalar_format_duration(char *buf, size_t size, int64_t ms)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
    if (!buf || ms < 0)
        return vigil__error_set(VIGIL_ERANGE, "duration: negative value or NULL buffer");
    char tmp[64];
    size_t len = 0;
    if (ms == 0) {
        len = (size_t)snprintf(tmp, sizeof(tmp), "0");
    } else {
        for (size_t i = 0; i < VIGIL__ARRAY_LEN(units); i++) {
            if (ms >= units[i].ms) {
                len += (size_t)snprintf(tmp + len, sizeof(tmp) - len, "%lld%s",
                                        (long long)(ms / units[i].ms), units[i].unit);
                ms %= units[i].ms;
            }
        }
    }
    if (len + 1 > size)
        return vigil__error_set(VIGIL_ERANGE, "duration: buffer too small");
    memcpy(buf, tmp, len + 1);
    return VIGIL_OK;
}

static int bad_size(const char *text)
{
    char c[QUOTE_MAX];
    return vigil__error_set(VIGIL_EVALUE, "expected a size such as \"8MiB\", got \"%s\"",
                            clip(text, c, sizeof(c)));
}

int vigil_scalar_parse_size(uint64_t *out_bytes, const char *text)
{
    static const struct {
        const char *unit;
        uint64_t mult;
    } units[] = {{"", 1},
                 {"B", 1},
                 {"KiB", 1ULL << 10},
                 {"MiB", 1ULL << 20},
                 {"GiB", 1ULL << 30},
                 {"TiB", 1ULL << 40},
                 {"KB", 1000ULL},
                 {"MB", 1000000ULL},
                 {"GB", 1000000000ULL},
                 {"TB", 1000000000000ULL}};
    if (!out_bytes || !text)
        return vigil__error_set(VIGIL_EINVAL, "size: NULL argument");
    const char *p = text;
    if (!isdigit((unsigned char)*p))
        return bad_size(text);
    uint64_t n = 0;
    while (isdigit((unsigned char)*p)) {
        if (n > (UINT64_MAX - 9) / 10)
            return vigil__error_set(VIGIL_ERANGE, "size \"%s\" is too large", text);
        n = n * 10 + (uint64_t)(*p++ - '0');
    }
    for (size_t i = 0; i < VIGIL__ARRAY_LEN(units); i++) {
        if (strcmp(p, units[i].unit) == 0) {
            if (n > UINT64_MAX / units[i].mult) {
                char c[QUOTE_MAX];
                return vigil__error_set(VIGIL_ERANGE, "size \"%s\" is too large",
                                        clip(text, c, sizeof(c)));
            }
            *out_bytes = n * units[i].mult;
            return VIGIL_OK;
        }
    }
    return bad_size(text);
}

/* Reads a plain decimal number (digits, optional fraction) and returns the
 * position after it, or NULL. No sign, exponent, hex, inf or nan. */
static const char *read_decimal(const char *p, double *out)
{
    const char *start = p;
    while (isdigit((unsigned char)*p))
        p++;
    if (p == start)
        return NULL;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return NULL;
        while (isdigit((unsigned char)*p))
            p++;
    }
    char tmp[64];
    size_t len = (size_t)(p - start);
    if (len >= sizeof(tmp))
        return NULL;
    memcpy(tmp, start, len);
    tmp[len] = '\0';
    errno = 0;
    double v = strtod(tmp, NULL);
    if (errno || !isfinite(v))
        return NULL;
    *out = v;
    return p;
}

int vigil_scalar_parse_rate(double *out_per_second, const char *text)
{
    static const struct {
        const char *unit;
        double secs;
    } units[] = {{"s", 1},    {"sec", 1},     {"m", 60},    {"min", 60},
                 {"h", 3600}, {"hour", 3600}, {"d", 86400}, {"day", 86400}};
    if (!out_per_second || !text)
        return vigil__error_set(VIGIL_EINVAL, "rate: NULL argument");
    double n;
    const char *p = read_decimal(text, &n);
    char c[QUOTE_MAX];
    if (!p || *p != '/')
        return vigil__error_set(VIGIL_EVALUE, "expected a rate such as \"30/min\", got \"%s\"",
                                clip(text, c, sizeof(c)));
    p++;
    for (size_t i = 0; i < VIGIL__ARRAY_LEN(units); i++) {
        if (strcmp(p, units[i].unit) == 0) {
            if (n <= 0)
                return vigil__error_set(VIGIL_ERANGE, "rate \"%s\" must be above zero",
                                        clip(text, c, sizeof(c)));
            *out_per_second = n / units[i].secs;
            return VIGIL_OK;
        }
    }
    return vigil__error_set(VIGIL_EVALUE, "expected a rate such as \"30/min\", got \"%s\"",
                            clip(text, c, sizeof(c)));
}

int vigil_scalar_parse_percent(double *out_ratio, const char *text)
{
    if (!out_ratio || !text)
        return vigil__error_set(VIGIL_EINVAL, "percentage: NULL argument");
    double n;
    const char *p = read_decimal(text, &n);
    char c[QUOTE_MAX];
    if (!p || strcmp(p, "%") != 0)
        return vigil__error_set(VIGIL_EVALUE, "expected a percentage such as \"10%%\", got \"%s\"",
                                clip(text, c, sizeof(c)));
    if (n > 100)
        return vigil__error_set(VIGIL_ERANGE, "percentage \"%s\" is above 100%%",
                                clip(text, c, sizeof(c)));
    *out_ratio = n / 100.0;
    return VIGIL_OK;
}
