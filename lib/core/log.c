#include "internal/common.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Indexed by level - VIGIL_LOG_DEBUG. */
static const char *const k_levels[] = {"debug", "info", "warn", "error", "off"};

const char *vigil_log_level_name(vigil_log_level level)
{
    int i = (int)level - (int)VIGIL_LOG_DEBUG;
    if (i < 0 || (size_t)i >= VIGIL__ARRAY_LEN(k_levels))
        return "unknown";
    return k_levels[i];
}

int vigil_log_level_parse(vigil_log_level *out, const char *name)
{
    if (!out || !name)
        return vigil__error_set(VIGIL_EINVAL, "log level: NULL argument");
    for (size_t i = 0; i < VIGIL__ARRAY_LEN(k_levels); i++) {
        if (strcmp(name, k_levels[i]) == 0) {
            *out = (vigil_log_level)((int)i + (int)VIGIL_LOG_DEBUG);
            return VIGIL_OK;
        }
    }
    return vigil__error_set(
        VIGIL_EVALUE, "expected a log level (debug, info, warn, error, off), got \"%s\"", name);
}

static bool needs_quotes(const char *v)
{
    if (!*v)
        return true;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p <= ' ' || *p == '=' || *p == '"' || *p == '\\' || *p == 0x7f)
            return true;
    return false;
}

int vigil__logfmt_value(vigil_buf *b, const char *value)
{
    if (!value)
        value = "";
    if (!needs_quotes(value))
        return vigil__buf_puts(b, value);
    int rc = vigil__buf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)value; !rc && *p; p++) {
        switch (*p) {
        case '"': rc = vigil__buf_puts(b, "\\\""); break;
        case '\\': rc = vigil__buf_puts(b, "\\\\"); break;
        case '\n': rc = vigil__buf_puts(b, "\\n"); break;
        case '\r': rc = vigil__buf_puts(b, "\\r"); break;
        case '\t': rc = vigil__buf_puts(b, "\\t"); break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                rc = vigil__buf_printf(b, "\\x%02x", *p);
            else
                rc = vigil__buf_putc(b, (char)*p);
        }
    }
    return rc ? rc : vigil__buf_putc(b, '"');
}

int vigil_log_field(vigil_buf *out, const char *key, const char *value)
{
    if (!out || !key)
        return vigil__error_set(VIGIL_EINVAL, "log field: NULL argument");
    if (!*key || needs_quotes(key))
        return vigil__error_set(VIGIL_EINVAL,
                                "log field: the key \"%.64s\" is empty or needs quotes", key);
    size_t size = out->size;
    int rc = vigil__buf_putc(out, ' ');
    if (!rc)
        rc = vigil__buf_puts(out, key);
    if (!rc)
        rc = vigil__buf_putc(out, '=');
    if (!rc)
        rc = vigil__logfmt_value(out, value);
    if (rc) {
        out->size = size;
        if (out->ptr)
            out->ptr[size] = '\0';
    }
    return rc;
}

int vigil_log_format(vigil_buf *out, const vigil_log_record *r)
{
    if (!out || !r)
        return vigil__error_set(VIGIL_EINVAL, "log format: NULL argument");
    vigil__buf_clear(out);
    time_t secs = (time_t)(r->ts_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char ts[96];
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(r->ts_ms % 1000));
    int rc = vigil__buf_printf(out, "ts=%s level=%s", ts, vigil_log_level_name(r->level));
    if (!rc && r->component && *r->component) {
        rc = vigil__buf_puts(out, " component=");
        if (!rc)
            rc = vigil__logfmt_value(out, r->component);
    }
    if (!rc) {
        rc = vigil__buf_puts(out, " msg=");
        if (!rc)
            rc = vigil__logfmt_value(out, r->message);
    }
    if (!rc && r->fields && *r->fields) {
        rc = vigil__buf_putc(out, ' ');
        if (!rc)
            rc = vigil__buf_puts(out, r->fields);
    }
    return rc;
}

void vigil_log_stderr(const vigil_log_record *record, void *payload)
{
    (void)payload;
    vigil_buf b = VIGIL_BUF_INIT;
    if (vigil_log_format(&b, record) == VIGIL_OK && vigil__buf_putc(&b, '\n') == VIGIL_OK) {
        /* one write(2) per line, so concurrent lines never interleave */
        ssize_t w = write(STDERR_FILENO, b.ptr, b.size);
        (void)w;
    }
    vigil_buf_dispose(&b);
}

void vigil__log(const vigil_logger *lg, vigil_log_level level, const char *component,
                const char *msg, const char *fields, ...)
{
    vigil_log_level min = lg ? lg->min_level : VIGIL_LOG_INFO;
    if (level < min || level >= VIGIL_LOG_OFF)
        return;
    vigil_buf fb = VIGIL_BUF_INIT;
    if (fields && *fields) {
        va_list ap;
        char small[512];
        va_start(ap, fields);
        int n = vsnprintf(small, sizeof(small), fields, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < sizeof(small)) {
            vigil__buf_put(&fb, small, (size_t)n);
        } else if (n > 0 && vigil__buf_grow(&fb, (size_t)n) == VIGIL_OK) {
            va_start(ap, fields);
            vsnprintf(fb.ptr, (size_t)n + 1, fields, ap);
            va_end(ap);
            fb.size = (size_t)n;
        }
    }
    vigil_log_record rec = {level, vigil__now_ms(), component, msg ? msg : "",
                            fb.ptr ? fb.ptr : ""};
    if (lg && lg->cb)
        lg->cb(&rec, lg->payload);
    else
        vigil_log_stderr(&rec, NULL);
    vigil_buf_dispose(&fb);
}

void vigil_log_emit(const vigil_logger *lg, vigil_log_level level, const char *component,
                    const char *message, const char *fields)
{
    vigil_log_level min = lg ? lg->min_level : VIGIL_LOG_INFO;
    if (level < min || level >= VIGIL_LOG_OFF)
        return;
    vigil_log_record rec = {level, vigil__now_ms(), component ? component : "",
                            message ? message : "", fields ? fields : ""};
    if (lg && lg->cb)
        lg->cb(&rec, lg->payload);
    else
        vigil_log_stderr(&rec, NULL);
}
