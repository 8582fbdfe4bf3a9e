/* vigil-gitopsd: the GitOps daemon. Parses flags, loads gitopsd.yaml through
 * the library, runs a vigil_gitops (git source synced on its adaptive
 * schedule and on POST /v1/sync, manifests loaded, desired state, policies
 * and drift published to the hub, the host observed on its own interval)
 * behind the built-in HTTP server, and handles signals: SIGTERM/SIGINT stop
 * (a sync or observation in progress finishes) and exit 0; SIGHUP re-reads
 * the api tokens and asks for a sync. Readiness, reloads and the stop are
 * notified to the service manager ($NOTIFY_SOCKET, sd_notify protocol). */
#include <vigil/vigil.h>

#include <stdio.h>
#include <string.h>

#define DEFAULT_CONFIG "configs/gitopsd.yaml"

static void usage(FILE *f)
{
    fprintf(f, "usage: vigil-gitopsd [--config FILE] [--check-config] [--version]\n"
               "  --config FILE    gitopsd.yaml (default: " DEFAULT_CONFIG ")\n"
               "  --check-config   validate the configuration and the environment, then exit\n"
               "  --version        print the version and exit\n"
               "Credentials come from the environment only: repo.token_env (git over https),\n"
               "hub.token_env (the hub, scope write) and webhook.secret_env (POST /v1/sync).\n");
}

static void die(const char *what)
{
    const vigil_error *e = vigil_error_last();
    fprintf(stderr, "vigil-gitopsd: %s: %s\n", what,
            e->message[0] ? e->message : vigil_strerror(e->code));
}

static void stop_gitops(void *payload)
{
    vigil_gitops_stop(payload);
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
            printf("vigil-gitopsd %s\n", vigil_version(NULL, NULL, NULL));
            return 0;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "vigil-gitopsd: unknown argument \"%s\"\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }

    vigil_gitops_config *cfg = NULL;
    if (vigil_gitops_config_load(&cfg, config_path, NULL)) {
        die("configuration");
        return 1;
    }
    const vigil_gitops_daemon_options *dopts = vigil_gitops_config_daemon(cfg);
    vigil_logger logger = VIGIL_LOGGER_INIT;
    logger.min_level = dopts->log_level;
    vigil_gitops_options gopts = *vigil_gitops_config_options(cfg);
    vigil_gitsync_options sopts = *vigil_gitops_config_gitsync(cfg);
    vigil_api_options aopts = *vigil_gitops_config_api(cfg);
    vigil_httpd_options hopts = *vigil_gitops_config_httpd(cfg);
    gopts.logger = aopts.logger = hopts.logger = logger;
    sopts.logger = &logger;

    vigil_daemon_signals_block();

    vigil_api *api = NULL;
    vigil_httpd *httpd = NULL;
    vigil_gitsync *gs = NULL;
    vigil_gitops *ops = NULL;
    int status = 1;
    if (vigil_api_new(&api, &aopts)) {
        die("security");
        goto out;
    }
    if (vigil_httpd_new(&httpd, api, &hopts)) {
        die("http");
        goto out;
    }
    if (vigil_gitsync_new(&gs, &sopts)) {
        die("repo");
        goto out;
    }
    gopts.gitsync = gs;
    if (vigil_gitops_new(&ops, &gopts)) {
        die("gitops");
        goto out;
    }
    if (check) {
        printf("vigil-gitopsd: configuration %s is valid\n", config_path);
        status = 0;
        goto out;
    }
    if (vigil_gitops_mount(ops, api) || vigil_gitops_start(ops)) {
        die("gitops");
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
        vigil_gitops_request_sync(ops);
        vigil_daemon_notify(VIGIL_DAEMON_READY, NULL);
    }
    vigil_daemon_notify(VIGIL_DAEMON_STOPPING, NULL);
    vigil_httpd_shutdown(httpd, dopts->drain_timeout_ms, stop_gitops, ops);
    status = 0;
out:
    vigil_httpd_free(httpd);
    vigil_api_free(api);
    vigil_gitops_free(ops);
    vigil_gitsync_free(gs);
    vigil_gitops_config_free(cfg);
    return status;
}
