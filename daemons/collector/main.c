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

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
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

/* systemd readiness (sd_notify protocol) without libsystemd. */
static void notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || (path[0] != '/' && path[0] != '@') || strlen(path) >= 108)
        return;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path));
    if (path[0] == '@')
        sa.sun_path[0] = '\0';
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
    (void)sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
    close(fd);
}

/* Late results of the in-process remediator (approvals, requests a previous
 * process left unfinished) go to the hub's entry point for results. */
static void late_result(const vigil_action_result *result, int64_t audit_seq, const char *audit_mac,
                        void *payload)
{
    vigil_hub *hub = payload;
    if (vigil_hub_action_result(hub, result, audit_seq, audit_mac) != VIGIL_OK)
        fprintf(stderr, "vigil-collector: late result %s: %s\n", result->id ? result->id : "",
                vigil_error_last()->message);
}

/* Logs one record of the daemon's own, with one field key=value, through
 * the daemon's logger. */
static void dlog(const vigil_logger *lg, vigil_log_level level, const char *msg, const char *key,
                 const char *value)
{
    if (level < lg->min_level)
        return;
    vigil_buf fields = VIGIL_BUF_INIT;
    if (vigil_log_field(&fields, key, value) != VIGIL_OK)
        vigil_buf_dispose(&fields);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    vigil_log_record r = {level, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, "collector", msg,
                          fields.ptr ? fields.ptr + 1 : ""};
    if (lg->cb)
        lg->cb(&r, lg->payload);
    else
        vigil_log_stderr(&r, NULL);
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

    /* Signals are taken by sigwait() in this thread only: block them before
     * the library starts its threads, which inherit the mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

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
    if (rcfg) {
        vigil_remediator_options ropts = *vigil_remediator_config_options(rcfg);
        ropts.logger = logger;
        ropts.late_result = late_result;
        ropts.late_result_payload = hub;
        vigil_action_dispatcher disp = VIGIL_ACTION_DISPATCHER_INIT;
        if (vigil_remediator_new(&rem, &ropts) || vigil_remediator_dispatcher(rem, &disp) ||
            vigil_hub_set_dispatcher(hub, &disp) || vigil_remediator_start(rem)) {
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
    notify("READY=1");
    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            notify("RELOADING=1");
            vigil_api_reload(api); /* logs its outcome */
            if (config_path)
                reload_config(cfg, config_path, hub, &logger);
            notify("READY=1");
            continue;
        }
        break;
    }
    notify("STOPPING=1");
    vigil_httpd_quiesce(httpd);
    if (vigil_httpd_drain(httpd, dopts->drain_timeout_ms))
        fprintf(stderr, "vigil-collector: %s; stopping anyway\n", vigil_error_last()->message);
    /* intake stopped: the remediator finishes what runs (results reach the
     * hub), then the hub commits what is queued */
    vigil_remediator_stop(rem);
    vigil_hub_stop(hub);
    vigil_httpd_stop(httpd);
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
