/* Times in queries and bodies: epoch milliseconds, "now", relative ("-15m")
 * and RFC 3339 ("2025-01-31T22:00:00Z"). */
#include "hub/hub_int.h"

#include <string.h>

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int rfc3339(int64_t *out, const char *s)
{
    int y, mo, d, h, mi, sec;
    size_t len = strlen(s);
    if (len < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
        !digits(s + 17, 2, &sec))
        return 0;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
        (mo == 2 && d == 29 && !leap) || h > 23 || mi > 59 || sec > 60)
        return 0;
    const char *p = s + 19;
    int64_t ms = 0;
    if (*p == '.') {
        p++;
        int n = 0;
        while (*p >= '0' && *p <= '9') {
            if (n < 3)
                ms = ms * 10 + (*p - '0');
            n++;
            p++;
        }
        if (n == 0 || n > 9)
            return 0;
        for (; n < 3; n++)
            ms *= 10;
    }
    int64_t offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return 0;
        offset_min = (int64_t)oh * 60 + om;
        if (*p == '-')
            offset_min = -offset_min;
        p += 6;
    } else {
        return 0;
    }
    if (*p)
        return 0;
    int64_t secs = days_from_civil(y, mo, d) * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60 +
                   (sec > 59 ? 59 : sec) - offset_min * 60;
    *out = secs * 1000 + ms;
    return 1;
}

int vigil__hub_parse_time(int64_t *out, const char *key, const char *text, int64_t now,
                          int allow_rfc3339)
{
    if (strcmp(text, "now") == 0) {
        *out = now;
        return VIGIL_OK;
    }
    if (text[0] == '-') {
        int64_t d;
        if (vigil_scalar_parse_duration(&d, text + 1) == VIGIL_OK) {
            *out = now - d;
            return VIGIL_OK;
        }
    } else if (text[0] >= '0' && text[0] <= '9' && strspn(text, "0123456789") == strlen(text) &&
               strlen(text) <= 15) {
        int64_t v = 0;
        for (const char *p = text; *p; p++)
            v = v * 10 + (*p - '0');
        *out = v;
        return VIGIL_OK;
    } else if (allow_rfc3339 && rfc3339(out, text)) {
        return VIGIL_OK;
    }
    return vigil__error_set(VIGIL_EINVAL,
                            "%s: expected epoch milliseconds, \"now\"%s or a relative time such "
                            "as \"-1h\", got \"%.40s\"",
                            key, allow_rfc3339 ? ", an RFC 3339 time" : "", text);
}
