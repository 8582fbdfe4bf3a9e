/* vigil-collector: the hub daemon. Parses flags, loads collector.yaml
 * through the library, runs a vigil_hub behind the built-in HTTP server and
 * handles signals: SIGTERM/SIGINT stop accepting, drain requests in progress,
 * commit what is queued and exit. SIGHUP re-reads the token files and (with
 * --config) the configuration file: it replaces the policies (`policies:`
 * and the files of `policies_dir`; unchanged rules keep their state) and
 * adds new `silences:`; a bad file keeps the previous policies. Other keys
 * cannot change while running: when they differ, a warning names each one
 * ("needs a restart") and the running values stay.
 * With `remediator: {inprocess: true, config: PATH}` it also runs the
 * remediator of that remediator.yaml in this process: the hub dispatches to
 * it with library calls and its late results go straight to the hub (its own
 * HTTP routes are not served). */
#include <vigil/vigil.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: vigil-collector [--config FILE] [--check-config] [--version]\n"
               "  --config FILE    collector.yaml (default: built-in defaults:\n"
               "                   listen 127.0.0.1:7600, store sqlite://./var/vigil.db)\n"
               "  --check-config   validate the configuration, tokens and TLS files, then exit\n"
               "  --version        print the version and exit\n");
}

static void die(const char *what)
{
    const vigil_error *e = vigil_error_last();
    fprintf(stderr, "vigil-collector: %s: %s\n", what,
            e->message[0] ? e->message : vigil_strerror(e->code));
}

/* Logs one record of the daemon's own, with one field key=value, through
 * the daemon's logger. */
static void dlog(const vigil_logger *lg, vigil_log_level level, const char *msg, const char *key,
                 const char *value)
{
    vigil_buf fields = VIGIL_BUF_INIT;
    if (vigil_log_field(&fields, key, value) != VIGIL_OK)
        vigil_buf_dispose(&fields);
    vigil_log_emit(lg, level, "collector", msg, fields.ptr ? fields.ptr + 1 : NULL);
    vigil_buf_dispose(&fields);
}

/* SIGHUP: re-reads the configuration file and replaces the policies; keys
 * that cannot change while running are named, not applied. */
static void reload_config(const vigil_hub_config *running, const char *path, vigil_hub *hub,
                          const vigil_logger *lg)
{
    vigil_hub_config *fresh = NULL;
    if (vigil_hub_config_load(&fresh, path, NULL)) {
        dlog(lg, VIGIL_LOG_ERROR, "configuration reload failed; previous policies kept", "error",
             vigil_error_last()->message);
        return;
    }
    vigil_buf keys = VIGIL_BUF_INIT;
    if (vigil_hub_config_restart_keys(running, fresh, &keys) == VIGIL_OK && keys.size) {
        char *save = NULL;
        for (char *k = strtok_r(keys.ptr, ",", &save); k; k = strtok_r(NULL, ",", &save))
            dlog(lg, VIGIL_LOG_WARN, "configuration change needs a restart; running value kept",
                 "key", k);
    }
    vigil_buf_dispose(&keys);
    /* logs its outcome */
    (void)vigil_hub_reload_policies(hub, vigil_hub_config_hub(fresh), NULL);
    vigil_hub_config_free(fresh);
}

/* Called by vigil_httpd_shutdown() between the drain and the close. */
typedef struct stopping {
    vigil_remediator *rem;
    vigil_hub *hub;
} stopping;

static void stop_owners(void *payload)
{
    stopping *st = payload;
    vigil_remediator_stop(st->rem);
    vigil_hub_stop(st->hub);
}

int main(int argc, char **argv)
{
    const char *config_path = NULL;
    int check = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config_path = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            config_path = argv[i] + 9;
        } else if (strcmp(argv[i], "--check-config") == 0) {
            check = 1;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("vigil-collector %s\n", vigil_version(NULL, NULL, NULL));
            return 0;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "vigil-collector: unknown argument \"%s\"\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }

    vigil_hub_config *cfg = NULL;
    int rc = config_path ? vigil_hub_config_load(&cfg, config_path, NULL)
                         : vigil_hub_config_load_string(&cfg, "", 0, "<defaults>", NULL);
    if (rc) {
        die("configuration");
        return 1;
    }
    const vigil_hub_daemon_options *dopts = vigil_hub_config_daemon(cfg);
    vigil_logger logger = VIGIL_LOGGER_INIT;
    logger.min_level = dopts->log_level;
    vigil_hub_options hopts = *vigil_hub_config_hub(cfg);
    vigil_api_options aopts = *vigil_hub_config_api(cfg);
    vigil_httpd_options sopts = *vigil_hub_config_httpd(cfg);
    hopts.logger = aopts.logger = sopts.logger = logger;

    /* Signals are taken in this thread only: block them before the library
     * starts its threads, which inherit the mask. */
    vigil_daemon_signals_block();

    vigil_api *api = NULL;
    vigil_httpd *httpd = NULL;
    vigil_hub *hub = NULL;
    vigil_remediator *rem = NULL;
    const vigil_remediator_config *rcfg = vigil_hub_config_remediator(cfg);
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
        printf("vigil-collector: configuration %s is valid\n",
               config_path ? config_path : "<defaults>");
        status = 0;
        goto out;
    }
    if (vigil_hub_new(&hub, &hopts)) {
        die("store");
        goto out;
    }
    vigil_hub_cluster_options copts = *vigil_hub_config_cluster(cfg);
    char holder[200];
    if (copts.enabled && !copts.holder) {
        /* "<hostname>:<port>:<pid>": unique among the hubs of a store */
        char host[128] = "localhost";
        if (gethostname(host, sizeof(host)) != 0 || !host[0])
            snprintf(host, sizeof(host), "localhost");
        host[sizeof(host) - 1] = '\0';
        const char *listen = sopts.listen ? sopts.listen : "127.0.0.1:7600";
        const char *colon = strrchr(listen, ':');
        snprintf(holder, sizeof(holder), "%.64s:%.8s:%ld", host, colon ? colon + 1 : "0",
                 (long)getpid());
        copts.holder = holder;
    }
    if (vigil_hub_set_cluster(hub, &copts)) {
        die("cluster");
        goto out;
    }
    if (rcfg) {
        vigil_remediator_options ropts = *vigil_remediator_config_options(rcfg);
        ropts.logger = logger;
        if (vigil_hub_attach_remediator(hub, &ropts, &rem)) {
            die("remediator");
            goto out;
        }
    }
    if (vigil_hub_mount(hub, api) || vigil_hub_start(hub)) {
        die("hub");
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
        if (config_path)
            reload_config(cfg, config_path, hub, &logger);
        vigil_daemon_notify(VIGIL_DAEMON_READY, NULL);
    }
    vigil_daemon_notify(VIGIL_DAEMON_STOPPING, NULL);
    /* stop accepting, drain; then the remediator finishes what runs (results
     * reach the hub) and the hub commits what is queued; then close */
    stopping st = {rem, hub};
    vigil_httpd_shutdown(httpd, dopts->drain_timeout_ms, stop_owners, &st); /* logs a timeout */
    status = 0;
out:
    vigil_httpd_free(httpd);
    vigil_api_free(api);
    vigil_remediator_stop(rem);
    vigil_hub_free(hub);
    vigil_remediator_free(rem);
    vigil_hub_config_free(cfg);
    return status;
}
