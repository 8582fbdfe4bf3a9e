/*
 * Daemon glue that every process hosting libvigil repeats, in the library:
 * readiness and stopping notifications for the service manager (the
 * sd_notify protocol, without libsystemd) and the signal set-up of a daemon
 * that takes its signals with sigwait() in its main thread.
 *
 * Stopping a server cleanly is vigil_httpd_shutdown() (<vigil/httpd.h>);
 * attaching an in-process remediator to a hub is vigil_hub_attach_remediator()
 * (<vigil/hub.h>).
 *
 * Threads: vigil_daemon_notify() may be called from any thread. The signal
 * functions act on the process's signal dispositions and the calling
 * thread's mask (process-wide state, by nature): call them from the main
 * thread.
 */
#ifndef VIGIL_DAEMON_H
#define VIGIL_DAEMON_H

#include "vigil/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * What a notification tells the service manager.
 * @since 0.2.0
 */
typedef enum vigil_daemon_state {
    /** Nothing but the status text. */
    VIGIL_DAEMON_STATUS = 0,
    /** "READY=1": start-up is finished (also after a reload). */
    VIGIL_DAEMON_READY = 1,
    /** "RELOADING=1" with "MONOTONIC_USEC=<CLOCK_MONOTONIC in µs>": a reload
     * began; send VIGIL_DAEMON_READY when it is done. */
    VIGIL_DAEMON_RELOADING = 2,
    /** "STOPPING=1": the daemon is stopping. */
    VIGIL_DAEMON_STOPPING = 3
} vigil_daemon_state;

/** Longest status text of vigil_daemon_notify(), in bytes. @since 0.2.0 */
#define VIGIL_DAEMON_STATUS_MAX 1024

/**
 * Notifies the service manager, as sd_notify(3) does: sends one datagram to
 * the AF_UNIX socket named by the environment variable NOTIFY_SOCKET (a path,
 * or an abstract socket written with a leading '@'). The datagram holds the
 * line of @p state, then "STATUS=<status>" when @p status is not NULL, each
 * line ended by '\n' (e.g. "READY=1\nSTATUS=listening on 127.0.0.1:7600\n").
 * Does nothing when NOTIFY_SOCKET is unset or empty, so a daemon calls it
 * unconditionally. The variable is read at each call and left set.
 * @param state one of vigil_daemon_state.
 * @param status one line of UTF-8 text, at most VIGIL_DAEMON_STATUS_MAX bytes,
 *        without '\n'; NULL: none.
 * @return VIGIL_OK (sent, or nothing to do); VIGIL_EINVAL (unknown state,
 *         VIGIL_DAEMON_STATUS without a status, a status with '\n',
 *         NOTIFY_SOCKET neither an absolute path nor '@' or too long for a
 *         socket address); VIGIL_ELIMIT (status too long); VIGIL_ENETWORK
 *         (the socket cannot be created or the datagram was not sent, e.g.
 *         nobody listens: the message has the system's reason).
 * Thread-safe. @since 0.2.0
 */
VIGIL_EXTERN(int) vigil_daemon_notify(vigil_daemon_state state, const char *status);

/**
 * A signal taken by vigil_daemon_signals_wait().
 * @since 0.2.0
 */
typedef enum vigil_daemon_signal {
    /** SIGTERM or SIGINT: stop. */
    VIGIL_DAEMON_SIGNAL_STOP = 1,
    /** SIGHUP: reload. */
    VIGIL_DAEMON_SIGNAL_RELOAD = 2
} vigil_daemon_signal;

/**
 * Prepares the signals of a daemon that waits for them in its main thread:
 * blocks SIGTERM, SIGINT and SIGHUP in the calling thread (threads started
 * afterwards, the library's included, inherit the mask, so the signals are
 * delivered only to vigil_daemon_signals_wait()) and ignores SIGPIPE. Call it
 * before creating any library object that starts threads.
 * @return VIGIL_OK; VIGIL_ERROR when the mask cannot be changed.
 * Main thread. @since 0.2.0
 */
VIGIL_EXTERN(int) vigil_daemon_signals_block(void);

/**
 * Waits for SIGTERM, SIGINT or SIGHUP, blocked before by
 * vigil_daemon_signals_block().
 * @param out receives the signal taken.
 * @return VIGIL_OK; VIGIL_EINVAL (NULL @p out).
 * Main thread. @since 0.2.0
 */
VIGIL_EXTERN(int) vigil_daemon_signals_wait(vigil_daemon_signal *out);

#ifdef __cplusplus
}
#endif

#endif
