/*
 * vigil/common.h - the foundation every other libvigil header builds on:
 * export macro, version, status codes, the thread-local last error, the
 * process-wide allocator hook, growable buffers, logging and the scalar
 * grammars (durations, sizes, rates, percentages) of configuration files.
 *
 * Include <vigil/vigil.h> rather than this header directly.
 */
#ifndef VIGIL_COMMON_H
#define VIGIL_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Marks a declaration as part of the public, exported ABI. */
#if defined(__GNUC__) || defined(__clang__)
#define VIGIL_EXTERN(type) extern __attribute__((visibility("default"))) type
#else
#define VIGIL_EXTERN(type) extern type
#endif

/** @name Version
 * The version of the headers a program was compiled against. Compare with
 * vigil_version() to learn the version of the library it runs with.
 * @since 0.1.0
 */
/**@{*/
#define VIGIL_VERSION_MAJOR 0
#define VIGIL_VERSION_MINOR 1
#define VIGIL_VERSION_PATCH 0
#define VIGIL_VERSION       "0.1.0"
/** MAJOR * 10000 + MINOR * 100 + PATCH, for compile-time comparisons. */
#define VIGIL_VERSION_NUM \
    (VIGIL_VERSION_MAJOR * 10000 + VIGIL_VERSION_MINOR * 100 + VIGIL_VERSION_PATCH)
/**@}*/

/**
 * Returns the version of the library at run time as "MAJOR.MINOR.PATCH" and,
 * when the out-parameters are not NULL, its three parts. Thread-safe.
 * @since 0.1.0
 */
VIGIL_EXTERN(const char *) vigil_version(int *major, int *minor, int *patch);

/**
 * Status codes. Every fallible function returns VIGIL_OK (0) or one of these
 * negative codes. Codes are append-only: a code never changes its number or
 * meaning, and new codes are added at the end.
 * @since 0.1.0
 */
typedef enum vigil_status {
    VIGIL_OK = 0,
    VIGIL_ERROR = -1,         /**< unclassified failure */
    VIGIL_ENOMEM = -2,        /**< an allocation failed */
    VIGIL_EINVAL = -3,        /**< invalid argument from the calling program */
    VIGIL_ERANGE = -4,        /**< a number is outside its allowed range */
    VIGIL_ENOTFOUND = -5,     /**< the named thing does not exist */
    VIGIL_EEXISTS = -6,       /**< the named thing already exists */
    VIGIL_EIO = -7,           /**< an operating-system I/O call failed */
    VIGIL_ELIMIT = -8,        /**< a size, count or depth limit was exceeded */
    VIGIL_EJSON = -9,         /**< malformed JSON */
    VIGIL_ETYPE = -10,        /**< a value has the wrong type */
    VIGIL_EMISSING = -11,     /**< a required field is missing */
    VIGIL_ENAME = -12,        /**< an invalid metric, tag or key name */
    VIGIL_EVALUE = -13,       /**< an invalid value (non-finite number, bad scalar syntax) */
    VIGIL_EENCODING = -14,    /**< invalid UTF-8 or an embedded NUL in a string */
    VIGIL_EYAML = -15,        /**< malformed YAML */
    VIGIL_EUNKNOWNKEY = -16,  /**< a configuration key that is not recognised */
    VIGIL_EENV = -17,         /**< a referenced environment variable is not set */
    VIGIL_EALIAS = -18,       /**< a YAML alias that is refused (unknown anchor) */
    VIGIL_EUNSUPPORTED = -19, /**< a scheme, kind or feature that is not supported */
    VIGIL_EBUSY = -20,        /**< the resource is busy or locked; retry later */
    VIGIL_ETIMEOUT = -21,     /**< an operation ran past its deadline */
    VIGIL_EFULL = -22,        /**< storage is full */
    VIGIL_EREADONLY = -23,    /**< storage is read-only */
    VIGIL_ECORRUPT = -24,     /**< stored data is corrupt or not in the expected format */
    VIGIL_EVERSION = -25,     /**< data written by a newer, incompatible version */
    VIGIL_ECLOSED = -26,      /**< the object was closed or is shutting down */
    VIGIL_ENETWORK = -27,     /**< a network operation failed */
    VIGIL_EHTTP = -28,        /**< a peer answered with an HTTP error status */
    VIGIL_EAUTH = -29,        /**< authentication failed (bad or missing credential) */
    VIGIL_EPERM = -30,        /**< the operation is not permitted (scope, allowlist) */
    VIGIL_EOVERLOADED = -31,  /**< a queue is full; retry later */
    VIGIL_ECONFLICT = -32,    /**< the request conflicts with the current state */
    VIGIL_ECHILD = -33        /**< a child process could not be started or failed */
} vigil_status;

/**
 * Returns a short, static, English description of a status code, or
 * "unknown error" for a code this version does not know. Never NULL.
 * Thread-safe. @since 0.1.0
 */
VIGIL_EXTERN(const char *) vigil_strerror(int code);

/**
 * The last error of the calling thread. @c file, @c line and @c column are set
 * for errors located in a configuration or manifest file (line and column are
 * 1-based), and are NULL / 0 otherwise.
 * @since 0.1.0
 */
typedef struct vigil_error {
    int code;            /**< the vigil_status that was returned */
    const char *message; /**< human-readable, includes the location when known */
    const char *file;    /**< file name, or NULL */
    unsigned int line;   /**< 1-based line, or 0 */
    unsigned int column; /**< 1-based column, or 0 */
} vigil_error;

/**
 * Returns the last error recorded on the calling thread by a failing libvigil
 * call. Never NULL: with no error recorded, code is VIGIL_OK and message "".
 * The pointer and its strings stay valid until the next libvigil call on the
 * same thread. Thread-safe (the record is thread-local).
 * @since 0.1.0
 */
VIGIL_EXTERN(const vigil_error *) vigil_error_last(void);

/** Clears the calling thread's last error. @since 0.1.0 */
VIGIL_EXTERN(void) vigil_error_clear(void);

/**
 * A replacement for the library's memory allocator. @c realloc_fn must behave
 * as realloc(3) (including a NULL ptr); @c free_fn must accept NULL.
 * @since 0.1.0
 */
typedef struct vigil_allocator {
    unsigned int version; /**< VIGIL_ALLOCATOR_VERSION */
    void *(*malloc_fn)(size_t size, void *payload);
    void *(*realloc_fn)(void *ptr, size_t size, void *payload);
    void (*free_fn)(void *ptr, void *payload);
    void *payload;
} vigil_allocator;

#define VIGIL_ALLOCATOR_VERSION 1

/**
 * Replaces the allocator used for every allocation libvigil makes (and, through
 * cJSON's hooks, every allocation of its JSON parser). NULL restores malloc(3).
 * Process-wide: call it before any other libvigil call, when no libvigil
 * object exists, and from one thread only; memory allocated by one allocator
 * must never be freed after switching to another.
 * @return VIGIL_OK, or VIGIL_EINVAL for a wrong version or a missing function.
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_allocator_set(const vigil_allocator *allocator);

/**
 * Frees memory that libvigil returned to the caller (documented per function),
 * with the library's allocator. NULL is a no-op. @since 0.1.0
 */
VIGIL_EXTERN(void) vigil_free(void *ptr);

/**
 * A growable byte buffer filled by the library (encoders). @c ptr is always
 * NUL-terminated when not NULL; @c size excludes the terminator. Initialise
 * with VIGIL_BUF_INIT and release with vigil_buf_dispose().
 * @since 0.1.0
 */
typedef struct vigil_buf {
    char *ptr;
    size_t size;
    size_t asize;
} vigil_buf;

#define VIGIL_BUF_INIT \
    {                  \
        NULL, 0, 0     \
    }

/** Releases a buffer's memory and resets it to VIGIL_BUF_INIT. @since 0.1.0 */
VIGIL_EXTERN(void) vigil_buf_dispose(vigil_buf *buf);

/** Log levels, in increasing severity. @since 0.1.0 */
typedef enum vigil_log_level {
    VIGIL_LOG_DEBUG = 0,
    VIGIL_LOG_INFO = 1,
    VIGIL_LOG_WARN = 2,
    VIGIL_LOG_ERROR = 3,
    VIGIL_LOG_OFF = 4 /**< as a minimum level: log nothing */
} vigil_log_level;

/**
 * One log record. @c fields holds extra key=value pairs already encoded as
 * logfmt (possibly ""). Strings are valid only during the callback.
 * @since 0.1.0
 */
typedef struct vigil_log_record {
    vigil_log_level level;
    int64_t ts_ms;         /**< wall-clock time, ms since the epoch */
    const char *component; /**< "agent", "hub", "store", ... */
    const char *message;
    const char *fields;
} vigil_log_record;

/**
 * A log callback. It is called from whichever thread logs and must be
 * thread-safe; it must not call back into the object that logs.
 * @since 0.1.0
 */
typedef void (*vigil_log_cb)(const vigil_log_record *record, void *payload);

/**
 * Where an object sends its log records. Embedded by value in the options of
 * every object that logs. A NULL callback means vigil_log_stderr().
 * @since 0.1.0
 */
typedef struct vigil_logger {
    vigil_log_cb cb;
    void *payload;
    vigil_log_level min_level; /**< records below this level are dropped */
} vigil_logger;

/** A logger with the defaults: logfmt to stderr, level info and above. */
#define VIGIL_LOGGER_INIT          \
    {                              \
        NULL, NULL, VIGIL_LOG_INFO \
    }

/**
 * The default log callback: writes the record as one logfmt line
 * (ts=... level=... component=... msg="..." fields) to stderr. Thread-safe.
 * @since 0.1.0
 */
VIGIL_EXTERN(void) vigil_log_stderr(const vigil_log_record *record, void *payload);

/**
 * Formats a record as one logfmt line, without a trailing newline, into
 * @p out (cleared first). @return VIGIL_OK or VIGIL_ENOMEM. @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_log_format(vigil_buf *out, const vigil_log_record *record);

/**
 * Appends " key=value" to @p out, for the @c fields of a vigil_log_record:
 * the value quoted and escaped as vigil_log_format() writes msg (quoted when
 * empty or holding a space, '=', '"', '\\' or a control character).
 * @param value NULL is written as "".
 * @return VIGIL_OK; VIGIL_EINVAL (NULL @p out or @p key, or a key that would
 *         need quotes: empty, or holding a space, '=', '"', '\\' or a control
 *         character);
 *         VIGIL_ENOMEM (@p out is left as it was).
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_log_field(vigil_buf *out, const char *key, const char *value);

/**
 * Returns the name of a level ("debug", "info", "warn", "error", "off").
 * @since 0.1.0
 */
VIGIL_EXTERN(const char *) vigil_log_level_name(vigil_log_level level);

/**
 * Parses a level name as vigil_log_level_name() writes it.
 * @return VIGIL_OK or VIGIL_EVALUE. @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_log_level_parse(vigil_log_level *out, const char *name);

/**
 * Parses a duration: one or more <integer><unit> groups with units ms, s, m,
 * h, d in decreasing order ("250ms", "10s", "1h30m", "14d"), or "0".
 * @param out_ms receives the duration in milliseconds.
 * @return VIGIL_OK; VIGIL_EVALUE for anything else (with a message quoting the
 *         input); VIGIL_ERANGE when it overflows 64 bits.
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_parse_duration(int64_t *out_ms, const char *text);

/**
 * Parses a size: an integer with an optional unit B, KiB, MiB, GiB, TiB
 * (powers of 1024) or KB, MB, GB, TB (powers of 1000) ("512KiB", "8MiB", "4096").
 * @return VIGIL_OK, VIGIL_EVALUE or VIGIL_ERANGE. @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_parse_size(uint64_t *out_bytes, const char *text);

/**
 * Parses a rate "<number>/<unit>" with unit s, sec, min, m, h, hour, d or day
 * ("30/s", "30/min", "0.5/h").
 * @param out_per_second receives the rate in events per second (> 0).
 * @return VIGIL_OK, VIGIL_EVALUE or VIGIL_ERANGE. @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_parse_rate(double *out_per_second, const char *text);

/**
 * Parses a percentage "<number>%" from 0% to 100% ("10%", "2.5%").
 * @param out_ratio receives the ratio, 0.0 to 1.0.
 * @return VIGIL_OK, VIGIL_EVALUE or VIGIL_ERANGE. @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_parse_percent(double *out_ratio, const char *text);

/**
 * Formats a duration in ms the way vigil_parse_duration() reads it
 * ("1h30m", "250ms", "0"), into @p buf of @p size bytes (32 always suffice).
 * @return VIGIL_OK, or VIGIL_ERANGE when @p buf is too small or ms < 0.
 * @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_format_duration(char *buf, size_t size, int64_t ms);

#ifdef __cplusplus
}
#endif

#endif
