/*
 * vigil/common.h - the foundation every other libvigil header builds on:
 * the export macro, the version, the status codes and the functions of the
 * library itself (vigil_version(), vigil_strerror(), vigil_free()).
 *
 * The rest of what every module shares has a header of its own: the opaque
 * handles and shared callback types (vigil/types.h), the thread-local last
 * error (vigil/errors.h), the allocator hook (vigil/allocator.h), growable
 * buffers (vigil/buf.h), logging (vigil/log.h) and the scalar grammars of
 * configuration files (vigil/scalar.h).
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
#define VIGIL_VERSION_MINOR 4
#define VIGIL_VERSION_PATCH 0
#define VIGIL_VERSION       "0.4.0"
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
 * Frees memory that libvigil returned to the caller (documented per function),
 * with the library's allocator (vigil/allocator.h). NULL is a no-op.
 * @since 0.1.0
 */
VIGIL_EXTERN(void) vigil_free(void *ptr);

#ifdef __cplusplus
}
#endif

#endif
