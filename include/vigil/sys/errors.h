/*
 * vigil/sys/errors.h - how a plug-in (a collector, action, policy or store
 * type, see docs/plugins.md) explains a failure. Include it on purpose, with
 * the vtable header of the kind you write.
 *
 * A callback that fails returns a negative vigil_status and records a message
 * as the calling thread's last error (vigil_error_last()) with one of these
 * two functions; the library reports that message (an error sample, a
 * located configuration error, a failed action, a store error). Both return
 * the code they record (VIGIL_ERROR in place of a code of 0 or more, which is
 * no failure), so a plug-in writes
 *
 *   return vigil_error_set(VIGIL_EIO, "cannot read the sensor");
 *   return vigil_error_set_at(VIGIL_EVALUE, vigil_config_node_get(config, "url"),
 *                             "expected an http:// URL");
 *
 * Neither is variadic (bindings cannot call variadic functions): format the
 * message first (snprintf) when it needs values.
 *
 * Threads: the last error is thread-local; both may be called from any
 * thread, also concurrently.
 */
#ifndef VIGIL_SYS_ERRORS_H
#define VIGIL_SYS_ERRORS_H

#include "vigil/common.h"
#include "vigil/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Records @p code and @p message as the calling thread's last error. The
 * error carries no location (file NULL, line and column 0).
 * @param code a negative vigil_status (VIGIL_EIO, VIGIL_EPERM, ...). A code
 *        of 0 or more is no failure code: VIGIL_ERROR is recorded and
 *        returned in its place, so that `return vigil_error_set(...)` never
 *        reports success.
 * @param message copied, clipped to 1 KiB on a character boundary of the
 *        copy; NULL: vigil_strerror() of the recorded code.
 * @return @p code, or VIGIL_ERROR when @p code is 0 or more.
 * Thread-safe. @since 0.2.0
 */
VIGIL_EXTERN(int) vigil_error_set(int code, const char *message);

/**
 * Records @p code and a message located at @p node as the calling thread's
 * last error, formatted as every configuration error of the library is:
 * "file:line:col: path: message" (the path is left out for a document root,
 * a long path keeps its end), with the file, line and column also set in
 * vigil_error_last(). Use it while a type reads its configuration (create).
 * @param code a negative vigil_status; 0 or more becomes VIGIL_ERROR, as in
 *        vigil_error_set().
 * @param node where the bad value is (borrowed for the call); NULL records
 *        the bare message, as vigil_error_set() does.
 * @param message copied; NULL: vigil_strerror() of the recorded code.
 * @return @p code, or VIGIL_ERROR when @p code is 0 or more.
 * Thread-safe. @since 0.2.0
 */
VIGIL_EXTERN(int) vigil_error_set_at(int code, const vigil_config_node *node, const char *message);

#ifdef __cplusplus
}
#endif

#endif
