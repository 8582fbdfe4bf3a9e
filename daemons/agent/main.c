/* vigil-agent: collects host metrics and ships them to a hub.
 *
 *   vigil-agent [--config FILE] [--once | --check-config]
 *
 * SIGTERM/SIGINT flush and exit; SIGHUP reloads the configuration (a bad new
 * configuration is logged and the old one kept). Readiness, reloads and the
 * stop are notified to the service manager ($NOTIFY_SOCKET, sd_notify
 * protocol). Logs are logfmt on stderr.
 * Everything but flags and signals lives in libvigil (<vigil/agent.h>). */
#include <vigil/agent.h>
#include <vigil/vigil.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CONFIG "configs/agent.yaml"

static vigil_agent *volatile g_agent;
static volatile sig_atomic_t g_term, g_reload;

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        g_reload = 1;
    else
        g_term = 1;
    vigil_agent *a = g_agent;
    if (a)
        vigil_agent_stop(a); /* async-signal-safe */
}

static void usage(FILE *f)
{
    fprintf(f, "usage: vigil-agent [--config FILE] [--once | --check-config]\n"
               "  --config FILE    configuration (default " DEFAULT_CONFIG ")\n"
               "  --once           collect once, print the batch as ingest JSON, exit\n"
               "  --check-config   validate the configuration and exit\n"
               "  --version        print the version\n");
}

/* One logfmt error line with the library's last error. */
static void log_error(const char *msg)
{
    const vigil_error *e = vigil_error_last();
    char full[1400], fields[64];
    snprintf(full, sizeof(full), "%s: %s", msg, e->message);
    snprintf(fields, sizeof(fields), "code=%d", e->code);
    vigil_log_emit(NULL, VIGIL_LOG_ERROR, "agent", full, fields);
}

static int load(vigil_config **cfg, const char *path)
{
    int rc = vigil_config_load_file(cfg, path, NULL);
    if (rc)
        log_error("cannot load configuration");
    return rc;
}

static void set_signal_mask(int how)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGTERM);
    sigaddset(&s, SIGINT);
    sigaddset(&s, SIGHUP);
    sigprocmask(how, &s, NULL);
}

static int once(const vigil_config *cfg)
{
    vigil_agent_options o = VIGIL_AGENT_OPTIONS_INIT;
    o.offline = 1;
    vigil_agent *a = NULL;
    vigil_batch *b = NULL;
    vigil_buf out = VIGIL_BUF_INIT;
    int rc = vigil_agent_new(&a, cfg, &o);
    if (!rc)
        rc = vigil_batch_new(&b);
    if (!rc)
        rc = vigil_agent_collect_once(a, b, 0);
    if (!rc)
        rc = vigil_batch_encode_json(&out, b);
    if (rc)
        log_error("collection failed");
    else
        printf("%s\n", out.ptr);
    vigil_buf_dispose(&out);
    vigil_batch_free(b);
    vigil_agent_free(a);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    const char *path = DEFAULT_CONFIG;
    int do_once = 0, do_check = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            path = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            path = argv[i] + 9;
        } else if (strcmp(argv[i], "--once") == 0) {
            do_once = 1;
        } else if (strcmp(argv[i], "--check-config") == 0) {
            do_check = 1;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("vigil-agent %s\n", vigil_version(NULL, NULL, NULL));
            return 0;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "vigil-agent: unknown argument \"%s\"\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (do_once && do_check) {
        usage(stderr);
        return 2;
    }

    vigil_config *cfg = NULL;
    if (load(&cfg, path))
        return 1;
    if (do_check) {
        int rc = vigil_agent_check_config(cfg, NULL);
        if (rc)
            log_error("invalid configuration");
        else
            printf("%s: configuration OK\n", path);
        vigil_config_free(cfg);
        return rc ? 1 : 0;
    }
    if (do_once) {
        int rc = once(cfg);
        vigil_config_free(cfg);
        return rc;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    vigil_agent *agent = NULL;
    if (vigil_agent_new(&agent, cfg, NULL)) {
        log_error("cannot start the agent");
        vigil_config_free(cfg);
        return 1;
    }
    int status = 0;
    vigil_daemon_notify(VIGIL_DAEMON_READY, NULL);
    for (;;) {
        set_signal_mask(SIG_BLOCK);
        g_agent = agent;
        int early = g_term || g_reload; /* a signal that came while swapping */
        set_signal_mask(SIG_UNBLOCK);
        if (early)
            vigil_agent_stop(agent);
        if (vigil_agent_run(agent) != VIGIL_OK) {
            log_error("agent stopped on an error");
            status = 1;
            break;
        }
        if (g_term)
            break;
        if (!g_reload)
            continue;
        g_reload = 0;
        /* SIGHUP: swap in the new configuration only when it is valid */
        vigil_daemon_notify(VIGIL_DAEMON_RELOADING, NULL);
        vigil_config *next = NULL;
        if (load(&next, path)) {
            vigil_daemon_notify(VIGIL_DAEMON_READY, NULL);
            continue;
        }
        if (vigil_agent_check_config(next, NULL)) {
            log_error("reload refused; keeping the running configuration");
            vigil_config_free(next);
            vigil_daemon_notify(VIGIL_DAEMON_READY, NULL);
            continue;
        }
        set_signal_mask(SIG_BLOCK);
        g_agent = NULL;
        set_signal_mask(SIG_UNBLOCK);
        vigil_agent_free(agent); /* what it still holds goes to the spool */
        agent = NULL;
        if (vigil_agent_new(&agent, next, NULL) == VIGIL_OK) {
            vigil_config_free(cfg);
            cfg = next;
            vigil_daemon_notify(VIGIL_DAEMON_READY, NULL);
            continue;
        }
        log_error("cannot start the reloaded agent; restarting the previous configuration");
        vigil_config_free(next);
        if (vigil_agent_new(&agent, cfg, NULL) != VIGIL_OK) {
            log_error("cannot restart the agent");
            status = 1;
            break;
        }
        vigil_daemon_notify(VIGIL_DAEMON_READY, NULL);
    }
    vigil_daemon_notify(VIGIL_DAEMON_STOPPING, NULL);
    set_signal_mask(SIG_BLOCK);
    g_agent = NULL;
    set_signal_mask(SIG_UNBLOCK);
    vigil_agent_free(agent);
    vigil_config_free(cfg);
    return status;
}
