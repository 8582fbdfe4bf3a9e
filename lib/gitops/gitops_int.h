/* Private to lib/gitops: the runner's state, shared by gitops.c (sync,
 * observe, publication, status), routes.c and config.c. */
#ifndef VIGIL_GITOPS_INT_H
#define VIGIL_GITOPS_INT_H

#include "http/http.h"
#include "internal/common.h"
#include "vigil/gitops.h"

#include <pthread.h>

/* inotify on the File resources' directories (lib/gitops/watch.c). */
typedef struct vigil__gitops_watch vigil__gitops_watch;
/* Watches the directory of every File of `m`; *out is NULL when inotify is
 * not available. VIGIL_OK or VIGIL_ENOMEM. */
int vigil__gitops_watch_build(vigil__gitops_watch **out, const vigil_manifest *m);
void vigil__gitops_watch_free(vigil__gitops_watch *w);
/* The descriptor to poll for reading, or -1. */
int vigil__gitops_watch_fd(const vigil__gitops_watch *w);
/* Reads every pending event; 1 when one concerns a watched file. */
int vigil__gitops_watch_drain(vigil__gitops_watch *w);

struct vigil_gitops {
    vigil_gitsync *gs; /* borrowed */
    char *host;
    char **sources; /* expanded, NULL-terminated, or NULL */
    size_t nsources;
    vigil_manifest_options mopts; /* template: root and sources set per load */
    char *proc_root, *sys_root, *systemctl;
    char *blobs_dir;
    char *hub_url; /* without a trailing '/' */
    char *hub_token;
    int64_t hub_timeout_ms;
    char *secret; /* webhook secret, or NULL */
    size_t secret_len;
    int64_t observe_ms;
    vigil_logger logger;
    vigil_clock_cb clock, monotonic;
    void *clock_payload, *monotonic_payload;
    vigil_getenv_cb getenv;
    void *getenv_payload;
    vigil_gitsync_schedule *sched;
    vigil__http *http;
    vigil__http_response resp;

    /* the step thread's own */
    int64_t observe_due;  /* monotonic */
    int64_t observe_last; /* monotonic, of the last observation */
    vigil__gitops_watch *watch;
    int wake[2]; /* a pipe: a byte wakes the runner's thread */
    char failed_commit[41];
    int desired_pending, policies_pending, policies_published, policies_unsent;

    pthread_mutex_t mu; /* guards what follows, read by the routes */
    int sync_mu_ok;
    int sync_requested;
    int running, stopping;
    pthread_t thread;
    vigil_manifest *manifest; /* the last valid desired state */
    char commit[41];          /* its commit */
    char checkout[41];        /* the commit checked out */
    size_t resources, policies;
    unsigned long long sync_count;
    int64_t interval; /* the schedule's, copied after each sync */
    int64_t sync_last;
    const char *sync_result; /* static: none, ok, error, invalid */
    char sync_commit[41];
    char *sync_error;
    char *err_file, *err_msg;
    unsigned int err_line, err_col;
    int64_t drift_observed;
    size_t drift_items, drift_drifted, drift_errors;
    int64_t hub_last;
    const char *hub_result; /* static: disabled, none, ok, error */
    char *hub_error;
};

int64_t vigil__gitops_mono_ms(const vigil_gitops *g);

#endif
