#include "internal/common.h"
#include "vigil/sys/errors.h"

#include <stdio.h>
#include <string.h>

#define MSG_MAX  1024
#define FILE_MAX 512

/* Messages are clipped to a fixed thread-local buffer on purpose. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

typedef struct {
    vigil_error err;
    char message[MSG_MAX];
    char file[FILE_MAX];
} error_slot;

/* Thread-local and fixed-size: recording an error never allocates, so an
 * out-of-memory condition can always be reported. */
static _Thread_local error_slot t_err;

static const char *const k_messages[] = {
    "success",                      /* 0 */
    "error",                        /* -1 */
    "out of memory",                /* -2 */
    "invalid argument",             /* -3 */
    "value out of range",           /* -4 */
    "not found",                    /* -5 */
    "already exists",               /* -6 */
    "I/O error",                    /* -7 */
    "limit exceeded",               /* -8 */
    "malformed JSON",               /* -9 */
    "wrong type",                   /* -10 */
    "missing field",                /* -11 */
    "invalid name",                 /* -12 */
    "invalid value",                /* -13 */
    "invalid encoding",             /* -14 */
    "malformed YAML",               /* -15 */
    "unknown key",                  /* -16 */
    "environment variable not set", /* -17 */
    "YAML alias refused",           /* -18 */
    "not supported",                /* -19 */
    "busy",                         /* -20 */
    "timed out",                    /* -21 */
    "storage full",                 /* -22 */
    "read-only storage",            /* -23 */
    "corrupt data",                 /* -24 */
    "written by a newer version",   /* -25 */
    "closed",                       /* -26 */
    "network error",                /* -27 */
    "HTTP error",                   /* -28 */
    "authentication failed",        /* -29 */
    "not permitted",                /* -30 */
    "overloaded",                   /* -31 */
    "conflict",                     /* -32 */
    "child process failed",         /* -33 */
};

const char *vigil_strerror(int code)
{
    if (code > 0 || (size_t)(-(long)code) >= VIGIL__ARRAY_LEN(k_messages))
        return "unknown error";
    return k_messages[-code];
}

const vigil_error *vigil_error_last(void)
{
    error_slot *s = &t_err;
    s->err.message = s->message;
    return &s->err;
}

void vigil_error_clear(void)
{
    error_slot *s = &t_err;
    memset(&s->err, 0, sizeof(s->err));
    s->message[0] = '\0';
    s->file[0] = '\0';
    s->err.message = s->message;
}

int vigil__error_setv(int code, const char *fmt, va_list ap)
{
    error_slot *s = &t_err;
    s->err.code = code;
    s->err.file = NULL;
    s->err.line = 0;
    s->err.column = 0;
    s->err.message = s->message;
    /* through a copy: the last message may be one of the arguments
     * (vigil__error_set(rc, "ctx: %s", vigil_error_last()->message)) */
    char tmp[MSG_MAX];
    vsnprintf(tmp, sizeof(tmp), fmt, ap);
    memcpy(s->message, tmp, strlen(tmp) + 1);
    return code;
}

int vigil__error_set(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vigil__error_setv(code, fmt, ap);
    va_end(ap);
    return code;
}

int vigil__version_check(const char *what, unsigned int version, unsigned int current)
{
    if (version >= 1 && version <= current)
        return VIGIL_OK;
    return vigil__error_set(VIGIL_EVERSION,
                            "%s: version %u is not supported (this library reads version %u)", what,
                            version, current);
}

int vigil__error_set_at(int code, const char *file, unsigned line, unsigned col, const char *fmt,
                        ...)
{
    error_slot *s = &t_err;
    char tmp[MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    s->err.code = code;
    s->err.message = s->message;
    if (file) {
        snprintf(s->file, sizeof(s->file), "%s", file);
        s->err.file = s->file;
    } else {
        s->err.file = NULL;
    }
    s->err.line = line;
    s->err.column = col;
    if (file && line)
        snprintf(s->message, sizeof(s->message), "%s:%u:%u: %s", file, line, col, tmp);
    else if (file)
        snprintf(s->message, sizeof(s->message), "%s: %s", file, tmp);
    else
        snprintf(s->message, sizeof(s->message), "%s", tmp);
    return code;
}

int vigil_error_set(int code, const char *message)
{
    if (code >= 0) /* a failure is never reported as success */
        code = VIGIL_ERROR;
    if (!message)
        message = vigil_strerror(code);
    size_t len = strlen(message);
    if (len >= MSG_MAX) {
        /* clip on a character boundary so the message stays valid UTF-8 */
        len = MSG_MAX - 1;
        while (len > 0 && ((unsigned char)message[len] & 0xC0) == 0x80)
            len--;
    }
    return vigil__error_set(code, "%.*s", (int)len, message);
}

int vigil__error_oom(void)
{
    error_slot *s = &t_err;
    s->err.code = VIGIL_ENOMEM;
    s->err.file = NULL;
    s->err.line = s->err.column = 0;
    s->err.message = s->message;
    memcpy(s->message, "out of memory", sizeof("out of memory"));
    return VIGIL_ENOMEM;
}

void vigil__error_prefix(const char *fmt, ...)
{
    error_slot *s = &t_err;
    char pre[MSG_MAX], tmp[MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof(pre), fmt, ap);
    va_end(ap);
    snprintf(tmp, sizeof(tmp), "%s: %s", pre, s->message);
    memcpy(s->message, tmp, sizeof(tmp));
}
