/*
 * vigil/log.h - logging: levels, records, the logger every object that logs
 * takes in its options, and the logfmt encoder of the default logger.
 *
 * Include <vigil/vigil.h> rather than this header directly.
 */
#ifndef VIGIL_LOG_H
#define VIGIL_LOG_H

#include "vigil/buf.h"
#include "vigil/common.h"
#include "vigil/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Log levels, in increasing severity. VIGIL_LOG_INFO is 0, so that a zeroed
 * vigil_logger has the default minimum level.
 * @since 0.1.0 (values since 0.2.0: info became 0)
 */
typedef enum vigil_log_level {
    VIGIL_LOG_DEBUG = -1,
    VIGIL_LOG_INFO = 0,
    VIGIL_LOG_WARN = 1,
    VIGIL_LOG_ERROR = 2,
    VIGIL_LOG_OFF = 3 /**< as a minimum level: log nothing */
} vigil_log_level;

/**
 * One log record. @c fields holds extra key=value pairs already encoded as
 * logfmt (possibly ""). Strings are valid only during the callback.
 * (vigil_log_record is declared in vigil/types.h.)
 * @since 0.1.0
 */
struct vigil_log_record {
    vigil_log_level level;
    int64_t ts_ms;         /**< wall-clock time, ms since the epoch */
    const char *component; /**< "agent", "hub", "store", ... */
    const char *message;
    const char *fields;
};

/**
 * Where an object sends its log records. Embedded by value in the options of
 * every object that logs. All zero is the default: vigil_log_stderr(), level
 * info and above.
 * @since 0.1.0
 */
typedef struct vigil_logger {
    vigil_log_cb cb; /**< NULL: vigil_log_stderr() */
    void *payload;
    vigil_log_level min_level; /**< records below this level are dropped; 0: info */
} vigil_logger;

/**
 * A logger with the defaults, all zero (VIGIL_LOG_INFO is 0; named so that
 * C++ accepts it): logfmt to stderr, level info and above.
 */
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
 * Sends one record through @p logger, as the library's own objects log: the
 * record is dropped when @p level is below the logger's min_level (or is
 * VIGIL_LOG_OFF); ts is the wall clock now; the logger's callback receives it,
 * or vigil_log_stderr() when the logger has none. For a program that embeds
 * libvigil and wants its own lines in the same stream and format.
 * @param logger NULL: the defaults (VIGIL_LOGGER_INIT).
 * @param component e.g. "collector"; NULL is written as "".
 * @param message NULL is written as "".
 * @param fields logfmt fields without the leading space (see vigil_log_field());
 *        NULL or "": none.
 * Thread-safe when the callback is. @since 0.2.0
 */
VIGIL_EXTERN(void)
vigil_log_emit(const vigil_logger *logger, vigil_log_level level, const char *component,
               const char *message, const char *fields);

/**
 * Returns the name of a level ("debug", "info", "warn", "error", "off"), or
 * "unknown". Never NULL. Thread-safe.
 * @since 0.1.0
 */
VIGIL_EXTERN(const char *) vigil_log_level_name(vigil_log_level level);

/**
 * Parses a level name as vigil_log_level_name() writes it.
 * @return VIGIL_OK or VIGIL_EVALUE. @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_log_level_parse(vigil_log_level *out, const char *name);

#ifdef __cplusplus
}
#endif

#endif
