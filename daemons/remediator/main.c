/* vigil-remediator: the remediator daemon. Parses flags, loads
 * remediator.yaml through the library, runs a vigil_remediator behind the
 * built-in HTTP server and handles signals: SIGTERM/SIGINT stop accepting,
 * drain requests in progress (running actions finish and are answered) and
 * exit 0; SIGHUP re-reads the tokens. Readiness, reloads and the stop are
 * notified to the service manager ($NOTIFY_SOCKET, sd_notify protocol). */
#include <vigil/vigil.h>

#include <stdio.h>
#include <string.h>

#define DEFAULT_CONFIG "configs/remediator.yaml"

static void usage(FILE *f)
{
    fprintf(f, "usage: vigil-remediator [--config FILE] [--check-config] [--version]\n"
               "  --config FILE    remediator.yaml (default: " DEFAULT_CONFIG ")\n"
               "  --check-config   validate the configuration, actions, secret and tokens, then "
               "exit\n"
               "  --version        print the version and exit\n"
               "The request signing secret is read from the variable named by secret_env\n"
               "(default VIGIL_REMEDIATOR_SECRET); the daemon refuses to start without it.\n");
}

static void die(const char *what)
{
    const vigil_error *e = vigil_error_last();
    fprintf(stderr, "vigil-remediator: %s: %s\n", what,
            e->message[0] ? e->message : vigil_strerror(e->code));
}

/* Called by vigil_httpd_shutdown() between the drain and the close: running
 * actions finish and are answered. */
static void stop_remediator(void *payload)
{
    vigil_remediator_stop(payload);
}

int main(int argc, char **argv)
{
    const char *config_path = DEFAULT_CONFIG;
    int check = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config_path = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            config_path = argv[i] + 9;
        } else if (strcmp(argv[i], "--check-config") == 0) {
            check = 1;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("vigil-remediator %s\n", vigil_version(NULL, NULL, NULL));
            return 0;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "vigil-remediator: unknown argument \"%s\"\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }

    vigil_remediator_config *cfg = NULL;
    if (vigil_remediator_config_load(&cfg, config_path, NULL)) {
        die("configuration");
        return 1;
    }
    const vigil_remediator_daemon_options *dopts = vigil_remediator_config_daemon(cfg);
    vigil_logger logger = VIGIL_LOGGER_INIT;
    logger.min_level = dopts->log_level;
    vigil_remediator_options ropts = *vigil_remediator_config_options(cfg);
    vigil_api_options aopts = *vigil_remediator_config_api(cfg);
    vigil_httpd_options sopts = *vigil_remediator_config_httpd(cfg);
    ropts.logger = aopts.logger = sopts.logger = logger;

    /* Signals are taken in this thread only: block them before the library
     * starts its threads, which inherit the mask. */
    vigil_daemon_signals_block();

    vigil_api *api = NULL;
    vigil_httpd *httpd = NULL;
    vigil_remediator *rem = NULL;
    int status = 1;
    if (vigil_api_new(&api, &aopts)) {
        die("security");
        goto out;
    }
    if (vigil_httpd_new(&httpd, api, &sopts)) {
        die("http");
        goto out;
    }
    if (check) {
        printf("vigil-remediator: configuration %s is valid\n", config_path);
        status = 0;
        goto out;
    }
    if (vigil_remediator_new(&rem, &ropts)) {
        die("remediator");
        goto out;
    }
    if (vigil_remediator_mount(rem, api) || vigil_remediator_start(rem)) {
        die("remediator");
        goto out;
    }
    if (vigil_httpd_start(httpd)) {
        die("listen");
        goto out;
    }
    vigil_daemon_notify(VIGIL_DAEMON_READY, NULL);
    vigil_daemon_signal sig;
    while (vigil_daemon_signals_wait(&sig) == VIGIL_OK && sig == VIGIL_DAEMON_SIGNAL_RELOAD) {
        vigil_daemon_notify(VIGIL_DAEMON_RELOADING, NULL);
        vigil_api_reload(api); /* logs its outcome */
        vigil_daemon_notify(VIGIL_DAEMON_READY, NULL);
    }
    vigil_daemon_notify(VIGIL_DAEMON_STOPPING, NULL);
    vigil_httpd_shutdown(httpd, dopts->drain_timeout_ms, stop_remediator, rem); /* logs a timeout */
    status = 0;
out:
    vigil_httpd_free(httpd);
    vigil_api_free(api);
    vigil_remediator_free(rem);
    vigil_remediator_config_free(cfg);
    return status;
}
