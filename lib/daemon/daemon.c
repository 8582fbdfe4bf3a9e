/* Daemon glue: the sd_notify protocol without libsystemd, and the signal
 * set-up of a daemon taking its signals with sigwait(). */
#include "internal/common.h"
#include "vigil/daemon.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int socket_address(struct sockaddr_un *sa, socklen_t *len, const char *path)
{
    size_t n = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || n < 2)
        return vigil__error_set(VIGIL_EINVAL,
                                "NOTIFY_SOCKET: expected an absolute path or '@name'");
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    /* a path needs its terminating NUL inside sun_path; an abstract name does not */
    if (n > sizeof(sa->sun_path) - (path[0] == '/'))
        return vigil__error_set(VIGIL_EINVAL, "NOTIFY_SOCKET: longer than %zu bytes",
                                sizeof(sa->sun_path) - 1);
    memcpy(sa->sun_path, path, n);
    if (path[0] == '@')
        sa->sun_path[0] = '\0';
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '/'));
    return VIGIL_OK;
}

int vigil_daemon_notify(vigil_daemon_state state, const char *status)
{
    if (state < VIGIL_DAEMON_STATUS || state > VIGIL_DAEMON_STOPPING)
        return vigil__error_set(VIGIL_EINVAL, "daemon notify: unknown state %d", (int)state);
    if (state == VIGIL_DAEMON_STATUS && !status)
        return vigil__error_set(VIGIL_EINVAL, "daemon notify: a status is required");
    size_t slen = status ? strlen(status) : 0;
    if (slen > VIGIL_DAEMON_STATUS_MAX)
        return vigil__error_set(VIGIL_ELIMIT, "daemon notify: status longer than %d bytes",
                                VIGIL_DAEMON_STATUS_MAX);
    if (status && memchr(status, '\n', slen))
        return vigil__error_set(VIGIL_EINVAL, "daemon notify: the status must be one line");
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return VIGIL_OK;
    struct sockaddr_un sa;
    socklen_t salen = 0;
    int rc = socket_address(&sa, &salen, path);
    if (rc)
        return rc;

    char msg[VIGIL_DAEMON_STATUS_MAX + 96];
    int n = 0;
    switch (state) {
    case VIGIL_DAEMON_READY: n = snprintf(msg, sizeof(msg), "READY=1\n"); break;
    case VIGIL_DAEMON_RELOADING:
        n = snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu\n",
                     (unsigned long long)vigil__monotonic_ns() / 1000ull);
        break;
    case VIGIL_DAEMON_STOPPING: n = snprintf(msg, sizeof(msg), "STOPPING=1\n"); break;
    case VIGIL_DAEMON_STATUS: break;
    }
    if (status)
        n += snprintf(msg + n, sizeof(msg) - (size_t)n, "STATUS=%s\n", status);

    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return vigil__error_set(VIGIL_ENETWORK, "NOTIFY_SOCKET: cannot create a socket: %s",
                                strerror(errno));
    ssize_t sent;
    do
        sent = sendto(fd, msg, (size_t)n, MSG_NOSIGNAL, (const struct sockaddr *)&sa, salen);
    while (sent < 0 && errno == EINTR);
    int err = errno;
    close(fd);
    if (sent != (ssize_t)n)
        return vigil__error_set(VIGIL_ENETWORK, "NOTIFY_SOCKET %.128s: cannot send: %s", path,
                                sent < 0 ? strerror(err) : "short write");
    return VIGIL_OK;
}

static void daemon_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
}

int vigil_daemon_signals_block(void)
{
    sigset_t set;
    daemon_signals(&set);
    int e = pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (e)
        return vigil__error_set(VIGIL_ERROR, "cannot block signals: %s", strerror(e));
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGPIPE, &sa, NULL) != 0)
        return vigil__error_set(VIGIL_ERROR, "cannot ignore SIGPIPE: %s", strerror(errno));
    return VIGIL_OK;
}

int vigil_daemon_signals_wait(vigil_daemon_signal *out)
{
    if (!out)
        return vigil__error_set(VIGIL_EINVAL, "daemon signals wait: NULL argument");
    sigset_t set;
    daemon_signals(&set);
    int sig = 0;
    while (sigwait(&set, &sig) != 0)
        ;
    *out = sig == SIGHUP ? VIGIL_DAEMON_SIGNAL_RELOAD : VIGIL_DAEMON_SIGNAL_STOP;
    return VIGIL_OK;
}
