/* The GitOps runner: sync (fetch, load, write blobs, publish the desired
 * state and policies) on the adaptive schedule or on demand, observe and
 * publish drift on its own interval, and the status. */
#include "gitops/gitops_int.h"

#include "crypto/crypto.h"
#include "internal/json.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_OBSERVE_MS     5000
#define DEFAULT_HUB_TIMEOUT_MS 10000
#define HOST_MAX               253
#define SOURCE_MAX             1024
#define HUB_ANSWER_MAX         65536
#define OBSERVE_GAP_MS         100 /* at most this often on file events */

/* ---- helpers ------------------------------------------------------------------- */

static int64_t wall_ms(const vigil_gitops *g)
{
    return g->clock ? g->clock(g->clock_payload) : vigil__now_ms();
}

int64_t vigil__gitops_mono_ms(const vigil_gitops *g)
{
    return g->monotonic ? g->monotonic(g->monotonic_payload) : vigil__monotonic_ms();
}

static const char *env_get(const vigil_gitops_options *o, const char *name)
{
    return o->getenv ? o->getenv(o->getenv_payload, name) : getenv(name);
}

static char *dup_or_null(const char *s, int *rc)
{
    if (!s || *rc)
        return NULL;
    char *d = vigil__strdup(s);
    if (!d)
        *rc = vigil__error_oom();
    return d;
}

/* `src` with every "${HOSTNAME}" replaced by `host`. */
static char *expand_host(const char *src, const char *host)
{
    static const char var[] = "${HOSTNAME}";
    vigil_buf b = VIGIL_BUF_INIT;
    int rc = VIGIL_OK;
    for (const char *p = src; *p && !rc;) {
        const char *at = strstr(p, var);
        if (!at) {
            rc = vigil__buf_puts(&b, p);
            break;
        }
        rc = vigil__buf_put(&b, p, (size_t)(at - p));
        if (!rc)
            rc = vigil__buf_puts(&b, host);
        p = at + sizeof(var) - 1;
    }
    if (rc) {
        vigil_buf_dispose(&b);
        return NULL;
    }
    return vigil__buf_detach(&b);
}

static int check_source(const char *s)
{
    size_t n = strlen(s);
    if (!n)
        return vigil__error_set(VIGIL_EINVAL, "gitops: a manifests source is empty");
    if (n > SOURCE_MAX)
        return vigil__error_set(VIGIL_ELIMIT, "gitops: a manifests source is longer than %d bytes",
                                SOURCE_MAX);
    if (s[0] == '/')
        return vigil__error_set(VIGIL_EINVAL,
                                "gitops: manifests source \"%s\" is absolute (it is relative to "
                                "the checkout)",
                                s);
    for (const char *p = s; *p;) {
        size_t seg = strcspn(p, "/");
        if (seg == 2 && p[0] == '.' && p[1] == '.')
            return vigil__error_set(
                VIGIL_EINVAL, "gitops: manifests source \"%s\" leaves the checkout (\"..\")", s);
        p += seg;
        while (*p == '/')
            p++;
    }
    return VIGIL_OK;
}

/* ---- life cycle ---------------------------------------------------------------- */

int vigil_gitops_options_init(vigil_gitops_options *opts, unsigned int version)
{
    if (!opts)
        return vigil__error_set(VIGIL_EINVAL, "gitops options: NULL");
    if (vigil__version_check("gitops options", version, VIGIL_GITOPS_OPTIONS_VERSION))
        return VIGIL_EVERSION;
    vigil_gitops_options d = VIGIL_GITOPS_OPTIONS_INIT;
    *opts = d;
    return VIGIL_OK;
}

static int read_secret(const vigil_gitops_options *o, const char *what, const char *name,
                       char **out)
{
    if (!name)
        return VIGIL_OK;
    const char *v = env_get(o, name);
    if (!v || !*v)
        return vigil__error_set(VIGIL_EENV, "gitops: %s: environment variable %.128s is not set",
                                what, name);
    *out = vigil__strdup(v);
    return *out ? VIGIL_OK : vigil__error_oom();
}

int vigil_gitops_new(vigil_gitops **out, const vigil_gitops_options *opts)
{
    if (!out)
        return vigil__error_set(VIGIL_EINVAL, "gitops: NULL out");
    *out = NULL;
    if (!opts)
        return vigil__error_set(VIGIL_EINVAL, "gitops: NULL options");
    if (vigil__version_check("gitops options", opts->version, VIGIL_GITOPS_OPTIONS_VERSION))
        return VIGIL_EVERSION;
    if (!opts->gitsync)
        return vigil__error_set(VIGIL_EINVAL, "gitops: a gitsync is required");
    char hostbuf[HOST_MAX + 2];
    const char *host = opts->host;
    if (!host) {
        if (gethostname(hostbuf, sizeof(hostbuf)) != 0 || !hostbuf[0])
            return vigil__error_set(VIGIL_EIO, "gitops: gethostname: %s", strerror(errno));
        hostbuf[sizeof(hostbuf) - 1] = '\0';
        host = hostbuf;
    }
    if (!host[0] || strchr(host, '/'))
        return vigil__error_set(VIGIL_EINVAL, "gitops: host \"%.64s\" is empty or holds '/'", host);
    if (strlen(host) > HOST_MAX)
        return vigil__error_set(VIGIL_ELIMIT, "gitops: host is longer than %d bytes", HOST_MAX);
    for (const char *p = host; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return vigil__error_set(VIGIL_EINVAL, "gitops: host has a blank or control character");
    size_t nsrc = 0;
    if (opts->sources)
        while (opts->sources[nsrc]) {
            if (++nsrc > VIGIL_GITOPS_MAX_SOURCES)
                return vigil__error_set(VIGIL_ELIMIT, "gitops: more than %d manifests sources",
                                        VIGIL_GITOPS_MAX_SOURCES);
        }
    if (opts->hub_url && strncmp(opts->hub_url, "http://", 7) != 0 &&
        strncmp(opts->hub_url, "https://", 8) != 0)
        return vigil__error_set(VIGIL_EUNSUPPORTED,
                                "gitops: hub_url: expected an http:// or https:// URL");
    if (opts->observe_interval_ms < 0 || opts->hub_timeout_ms < 0)
        return vigil__error_set(VIGIL_ERANGE, "gitops: a negative interval or timeout");
    if (opts->manifest && vigil__version_check("gitops manifest options", opts->manifest->version,
                                               VIGIL_MANIFEST_OPTIONS_VERSION))
        return VIGIL_EVERSION;

    vigil_gitops *g = vigil__calloc(1, sizeof(*g));
    if (!g)
        return vigil__error_oom();
    int rc = VIGIL_OK;
    if (pthread_mutex_init(&g->mu, NULL) != 0) {
        vigil__free(g);
        return vigil__error_set(VIGIL_EIO, "gitops: pthread_mutex_init failed");
    }
    g->sync_mu_ok = 1;
    g->wake[0] = g->wake[1] = -1;
    if (pipe2(g->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        int e = errno;
        vigil_gitops_free(g);
        return vigil__error_set(VIGIL_EIO, "gitops: pipe2: %s", strerror(e));
    }
    g->gs = opts->gitsync;
    g->logger = opts->logger;
    g->clock = opts->clock;
    g->clock_payload = opts->clock_payload;
    g->monotonic = opts->monotonic;
    g->monotonic_payload = opts->monotonic_payload;
    g->getenv = opts->getenv;
    g->getenv_payload = opts->getenv_payload;
    g->observe_ms = opts->observe_interval_ms ? opts->observe_interval_ms : DEFAULT_OBSERVE_MS;
    g->hub_timeout_ms = opts->hub_timeout_ms ? opts->hub_timeout_ms : DEFAULT_HUB_TIMEOUT_MS;
    g->host = dup_or_null(host, &rc);
    g->blobs_dir = dup_or_null(opts->blobs_dir, &rc);
    g->hub_url = dup_or_null(opts->hub_url, &rc);
    if (!rc && g->hub_url) {
        size_t n = strlen(g->hub_url);
        while (n > 0 && g->hub_url[n - 1] == '/')
            g->hub_url[--n] = '\0';
    }
    if (!rc) {
        vigil_manifest_options d = VIGIL_MANIFEST_OPTIONS_INIT;
        g->mopts = opts->manifest ? *opts->manifest : d;
        g->proc_root = dup_or_null(g->mopts.proc_root, &rc);
        g->sys_root = dup_or_null(g->mopts.sys_root, &rc);
        g->systemctl = dup_or_null(g->mopts.systemctl, &rc);
        g->mopts.proc_root = g->proc_root;
        g->mopts.sys_root = g->sys_root;
        g->mopts.systemctl = g->systemctl;
        g->mopts.root = NULL;
        g->mopts.files = NULL;
        g->mopts.logger = g->logger;
        g->mopts.clock = g->clock;
        g->mopts.clock_payload = g->clock_payload;
        g->mopts.getenv = g->getenv;
        g->mopts.getenv_payload = g->getenv_payload;
    }
    if (!rc && nsrc) {
        g->sources = vigil__calloc(nsrc + 1, sizeof(char *));
        if (!g->sources)
            rc = vigil__error_oom();
        for (size_t i = 0; i < nsrc && !rc; i++) {
            g->sources[i] = expand_host(opts->sources[i], g->host);
            if (!g->sources[i])
                rc = vigil__error_oom();
            else
                rc = check_source(g->sources[i]);
        }
        g->nsources = nsrc;
    }
    if (!rc)
        rc = read_secret(opts, "hub token", opts->hub_token_env, &g->hub_token);
    if (!rc) {
        char *secret = NULL;
        rc = read_secret(opts, "webhook secret", opts->webhook_secret_env, &secret);
        g->secret = secret;
        g->secret_len = secret ? strlen(secret) : 0;
    }
    if (!rc) {
        vigil_gitsync_schedule_options so = VIGIL_GITSYNC_SCHEDULE_OPTIONS_INIT;
        so.min_interval_ms = opts->sync_min_interval_ms;
        so.max_interval_ms = opts->sync_max_interval_ms;
        so.jitter = opts->sync_jitter;
        so.clock = opts->monotonic;
        so.clock_payload = opts->monotonic_payload;
        so.random = opts->random;
        so.random_payload = opts->random_payload;
        rc = vigil_gitsync_schedule_new(&g->sched, &so);
        if (rc)
            vigil__error_prefix("gitops");
    }
    if (!rc && g->hub_url)
        rc = vigil__http_new(&g->http);
    if (rc) {
        vigil_gitops_free(g);
        return rc;
    }
    snprintf(g->checkout, sizeof(g->checkout), "%s", vigil_gitsync_commit(g->gs));
    g->sync_result = "none";
    g->hub_result = g->hub_url ? "none" : "disabled";
    g->observe_due = vigil__gitops_mono_ms(g);
    g->interval = vigil_gitsync_schedule_interval(g->sched);
    *out = g;
    return VIGIL_OK;
}

void vigil_gitops_free(vigil_gitops *g)
{
    if (!g)
        return;
    vigil_gitops_stop(g);
    vigil_manifest_free(g->manifest);
    vigil_gitsync_schedule_free(g->sched);
    vigil__http_free(g->http);
    vigil__http_response_dispose(&g->resp);
    for (size_t i = 0; g->sources && i < g->nsources; i++)
        vigil__free(g->sources[i]);
    vigil__free(g->sources);
    vigil__free(g->host);
    vigil__free(g->blobs_dir);
    vigil__free(g->hub_url);
    vigil__free_wiped(g->hub_token);
    vigil__free_wiped(g->secret);
    vigil__free(g->proc_root);
    vigil__free(g->sys_root);
    vigil__free(g->systemctl);
    vigil__free(g->sync_error);
    vigil__free(g->err_file);
    vigil__free(g->err_msg);
    vigil__free(g->hub_error);
    vigil__gitops_watch_free(g->watch);
    if (g->wake[0] >= 0)
        close(g->wake[0]);
    if (g->wake[1] >= 0)
        close(g->wake[1]);
    if (g->sync_mu_ok)
        pthread_mutex_destroy(&g->mu);
    vigil__free(g);
}

/* ---- the hub ------------------------------------------------------------------- */

static void set_hub(vigil_gitops *g, int ok, const char *error)
{
    char *copy = error ? vigil__strdup(error) : NULL;
    pthread_mutex_lock(&g->mu);
    g->hub_last = wall_ms(g);
    g->hub_result = ok ? "ok" : "error";
    vigil__free(g->hub_error);
    g->hub_error = copy;
    pthread_mutex_unlock(&g->mu);
}

/* Sends one JSON body to <hub><path>. VIGIL_OK on a 2xx answer. */
static int hub_send(vigil_gitops *g, const char *method, const char *path, const vigil_buf *body)
{
    vigil_buf url = VIGIL_BUF_INIT, auth = VIGIL_BUF_INIT;
    int rc = vigil__buf_printf(&url, "%s%s", g->hub_url, path);
    if (!rc && g->hub_token)
        rc = vigil__buf_printf(&auth, "Authorization: Bearer %s", g->hub_token);
    if (rc) {
        vigil_buf_dispose(&url);
        vigil__free_wiped(vigil__buf_detach(&auth));
        return rc;
    }
    const char *hs[3] = {"Content-Type: application/json", "Expect:", auth.ptr};
    vigil__http_request req = VIGIL__HTTP_REQUEST_INIT;
    req.method = method;
    req.url = url.ptr;
    req.body = body->ptr ? body->ptr : "";
    req.body_len = body->size;
    req.headers = hs;
    req.nheaders = auth.ptr ? 3 : 2;
    req.timeout_ms = g->hub_timeout_ms;
    req.connect_timeout_ms = g->hub_timeout_ms;
    req.max_response = HUB_ANSWER_MAX;
    req.overflow = VIGIL__HTTP_OVERFLOW_CLIP;
    req.user_agent = "vigil-gitopsd/" VIGIL_VERSION;
    rc = vigil__http_perform(g->http, &req, &g->resp);
    vigil_buf_dispose(&url);
    vigil__free_wiped(vigil__buf_detach(&auth));
    if (rc) {
        vigil__error_prefix("hub %s %s", method, path);
    } else if (g->resp.status < 200 || g->resp.status > 299) {
        const char *b = g->resp.body.ptr ? g->resp.body.ptr : "";
        rc = vigil__error_set(g->resp.status == 401 || g->resp.status == 403 ? VIGIL_EAUTH
                                                                             : VIGIL_EHTTP,
                              "hub %s %s: HTTP %ld: %.300s", method, path, g->resp.status, b);
    }
    if (rc) {
        set_hub(g, 0, vigil_error_last()->message);
        vigil__log(&g->logger, VIGIL_LOG_WARN, "gitops", "publication failed", "path=%s code=%d",
                   path, rc);
    } else {
        set_hub(g, 1, NULL);
    }
    return rc;
}

/* PUT /v1/desired, then PUT /v1/policies when there are or were policies. */
static void publish_desired(vigil_gitops *g)
{
    if (!g->hub_url || !g->manifest)
        return;
    vigil_buf body = VIGIL_BUF_INIT;
    int rc = VIGIL_OK;
    if (g->desired_pending) {
        rc = vigil_manifest_desired_body(g->manifest, g->host, g->commit, &body);
        if (!rc)
            rc = hub_send(g, "PUT", "/v1/desired", &body);
        else
            set_hub(g, 0, vigil_error_last()->message);
        if (!rc)
            g->desired_pending = 0;
    }
    if (!rc && g->policies_pending) {
        rc = vigil_manifest_policies_body(g->manifest, g->host, g->commit, &body);
        if (!rc)
            rc = hub_send(g, "PUT", "/v1/policies", &body);
        else
            set_hub(g, 0, vigil_error_last()->message);
        if (!rc) {
            g->policies_pending = 0;
            g->policies_published = vigil_manifest_policy_count(g->manifest) > 0;
        }
    }
    vigil_buf_dispose(&body);
}

/* ---- sync ---------------------------------------------------------------------- */

/* Splits "file:line:col: message" of a manifest error. */
static void record_invalid(vigil_gitops *g, const char *commit, const char *msg)
{
    char *file = NULL, *text = NULL;
    unsigned long line = 0, col = 0;
    const char *c1 = strchr(msg, ':');
    if (c1) {
        char *end;
        line = strtoul(c1 + 1, &end, 10);
        if (end != c1 + 1 && *end == ':') {
            col = strtoul(end + 1, &end, 10);
            if (*end == ':') {
                file = vigil__strndup(msg, (size_t)(c1 - msg));
                text = vigil__strdup(end[1] == ' ' ? end + 2 : end + 1);
            } else {
                line = col = 0;
            }
        } else {
            line = 0;
        }
    }
    char *copy = vigil__strdup(msg);
    pthread_mutex_lock(&g->mu);
    g->sync_result = "invalid";
    snprintf(g->sync_commit, sizeof(g->sync_commit), "%s", commit);
    vigil__free(g->sync_error);
    g->sync_error = copy;
    vigil__free(g->err_file);
    vigil__free(g->err_msg);
    g->err_file = file;
    g->err_msg = text;
    g->err_line = (unsigned int)line;
    g->err_col = (unsigned int)col;
    pthread_mutex_unlock(&g->mu);
}

static void clear_error(vigil_gitops *g)
{
    vigil__free(g->sync_error);
    vigil__free(g->err_file);
    vigil__free(g->err_msg);
    g->sync_error = g->err_file = g->err_msg = NULL;
    g->err_line = g->err_col = 0;
}

/* Loads the manifests of the checkout at `path`. */
static int load(vigil_gitops *g, const char *path, vigil_manifest **out)
{
    vigil_manifest_options mo = g->mopts;
    mo.root = path;
    mo.sources = (const char *const *)g->sources;
    return vigil_manifest_load(out, &mo);
}

/* A new commit's policies go to the hub before its desired state, so that a commit
 * whose rules the hub refuses (HTTP 4xx: invalid, or a name another source or the
 * configuration holds) is refused as a whole. Returns 1 when the hub refused them (the
 * error set); 0 when they were accepted, are not needed, or could not be sent (network
 * errors, 5xx: then policies_unsent is set and the publication is retried). */
static int hub_refuses_policies(vigil_gitops *g, const vigil_manifest *m, const char *commit)
{
    g->policies_unsent = 0;
    if (!g->hub_url || (vigil_manifest_policy_count(m) == 0 && !g->policies_published))
        return 0;
    vigil_buf body = VIGIL_BUF_INIT;
    int rc = vigil_manifest_policies_body(m, g->host, commit, &body);
    if (!rc)
        rc = hub_send(g, "PUT", "/v1/policies", &body);
    vigil_buf_dispose(&body);
    if (!rc) {
        g->policies_published = vigil_manifest_policy_count(m) > 0;
        return 0;
    }
    if ((rc == VIGIL_EHTTP || rc == VIGIL_EAUTH) && g->resp.status >= 400 &&
        g->resp.status <= 499 && g->resp.status != 401 && g->resp.status != 403 &&
        g->resp.status != 408 && g->resp.status != 429)
        return 1;
    g->policies_unsent = 1;
    return 0;
}

static void set_interval(vigil_gitops *g)
{
    int64_t v = vigil_gitsync_schedule_interval(g->sched);
    pthread_mutex_lock(&g->mu);
    g->interval = v;
    pthread_mutex_unlock(&g->mu);
}

static void do_sync(vigil_gitops *g)
{
    vigil_gitsync_result r = VIGIL_GITSYNC_RESULT_INIT;
    int rc = vigil_gitsync_sync(g->gs, &r);
    int changed = 0;
    int64_t now = wall_ms(g);
    if (rc) {
        char *copy = vigil__strdup(vigil_error_last()->message);
        pthread_mutex_lock(&g->mu);
        g->sync_count++;
        g->sync_last = now;
        g->sync_result = "error";
        clear_error(g);
        g->sync_error = copy;
        pthread_mutex_unlock(&g->mu);
        vigil_gitsync_schedule_done(g->sched, 0);
        set_interval(g);
        return;
    }
    pthread_mutex_lock(&g->mu);
    g->sync_count++;
    g->sync_last = now;
    snprintf(g->checkout, sizeof(g->checkout), "%s", r.commit);
    pthread_mutex_unlock(&g->mu);
    if (strcmp(r.commit, g->commit) == 0 && g->manifest) {
        /* nothing new: the desired state in use stays */
        pthread_mutex_lock(&g->mu);
        g->sync_result = "ok";
        snprintf(g->sync_commit, sizeof(g->sync_commit), "%s", r.commit);
        clear_error(g);
        pthread_mutex_unlock(&g->mu);
    } else if (strcmp(r.commit, g->failed_commit) == 0) {
        /* the same invalid commit: its error stays in the status */
    } else {
        vigil_manifest *m = NULL;
        rc = load(g, r.path, &m);
        if (rc) {
            char msg[1024];
            snprintf(msg, sizeof(msg), "%s", vigil_error_last()->message);
            vigil_buf q = VIGIL_BUF_INIT;
            vigil__logfmt_value(&q, msg);
            vigil__log(&g->logger, VIGIL_LOG_WARN, "gitops",
                       "invalid commit, the previous desired state stays",
                       "commit=%s code=%d error=%s", r.commit, rc, q.ptr ? q.ptr : "\"\"");
            vigil_buf_dispose(&q);
            record_invalid(g, r.commit, msg);
            snprintf(g->failed_commit, sizeof(g->failed_commit), "%s", r.commit);
        } else if (hub_refuses_policies(g, m, r.commit)) {
            /* the hub refused the commit's rules (a bad or colliding Policy): the commit is
             * invalid as a whole, so neither its desired state nor its rules replace the
             * previous ones */
            char msg[1024];
            snprintf(msg, sizeof(msg), "%s", vigil_error_last()->message);
            vigil__log(&g->logger, VIGIL_LOG_WARN, "gitops",
                       "the hub refused the commit's policies, the previous desired state stays",
                       "commit=%s", r.commit);
            record_invalid(g, r.commit, msg);
            snprintf(g->failed_commit, sizeof(g->failed_commit), "%s", r.commit);
            vigil_manifest_free(m);
        } else {
            if (g->blobs_dir) {
                size_t written = 0;
                if (vigil_manifest_write_blobs(m, g->blobs_dir, &written) != VIGIL_OK)
                    vigil__log(&g->logger, VIGIL_LOG_WARN, "gitops", "cannot write blobs",
                               "dir=%s code=%d", g->blobs_dir, vigil_error_last()->code);
            }
            vigil_manifest *old;
            pthread_mutex_lock(&g->mu);
            old = g->manifest;
            g->manifest = m;
            snprintf(g->commit, sizeof(g->commit), "%s", r.commit);
            g->failed_commit[0] = '\0';
            g->resources = vigil_manifest_count(m);
            g->policies = vigil_manifest_policy_count(m);
            g->sync_result = "ok";
            snprintf(g->sync_commit, sizeof(g->sync_commit), "%s", r.commit);
            clear_error(g);
            pthread_mutex_unlock(&g->mu);
            vigil_manifest_free(old);
            vigil__gitops_watch_free(g->watch);
            g->watch = NULL;
            if (vigil__gitops_watch_build(&g->watch, m) != VIGIL_OK)
                vigil__log(&g->logger, VIGIL_LOG_WARN, "gitops",
                           "cannot watch the files; observing on the interval only", NULL);
            g->desired_pending = 1;
            /* hub_refuses_policies() published them unless the hub could not be reached */
            g->policies_pending = g->policies_unsent;
            changed = 1;
            vigil__log(&g->logger, VIGIL_LOG_INFO, "gitops", "desired state loaded",
                       "commit=%s resources=%zu", r.commit, g->resources);
        }
    }
    vigil_gitsync_schedule_done(g->sched, r.changed || changed);
    set_interval(g);
    if (changed) {
        publish_desired(g);
        g->observe_due = vigil__gitops_mono_ms(g); /* observe the new state at once */
    }
}

/* ---- observe ------------------------------------------------------------------- */

static void do_observe(vigil_gitops *g)
{
    if (!g->manifest)
        return;
    vigil_drift *d = NULL;
    int rc = vigil_manifest_observe(&d, g->manifest, g->host);
    if (rc) {
        vigil__log(&g->logger, VIGIL_LOG_WARN, "gitops", "observe failed", "code=%d", rc);
        return;
    }
    size_t drifted = vigil_drift_drifted(d);
    pthread_mutex_lock(&g->mu);
    size_t before = g->drift_drifted;
    g->drift_observed = vigil_drift_observed_ms(d);
    g->drift_items = vigil_drift_count(d);
    g->drift_drifted = drifted;
    g->drift_errors = vigil_drift_errors(d);
    pthread_mutex_unlock(&g->mu);
    if (drifted != before)
        vigil__log(&g->logger, drifted ? VIGIL_LOG_WARN : VIGIL_LOG_INFO, "gitops",
                   drifted ? "drift observed" : "in sync", "drifted=%zu items=%zu", drifted,
                   vigil_drift_count(d));
    if (g->hub_url) {
        vigil_buf body = VIGIL_BUF_INIT;
        rc = vigil_drift_body(d, g->commit, &body);
        if (!rc)
            hub_send(g, "POST", "/v1/drift", &body);
        vigil_buf_dispose(&body);
    }
    vigil_drift_free(d);
}

/* ---- step and thread ----------------------------------------------------------- */

static void step(vigil_gitops *g, int64_t *next)
{
    pthread_mutex_lock(&g->mu);
    int want = g->sync_requested;
    g->sync_requested = 0;
    pthread_mutex_unlock(&g->mu);
    int64_t now = vigil__gitops_mono_ms(g);
    if (want || now >= vigil_gitsync_schedule_deadline(g->sched))
        do_sync(g);
    now = vigil__gitops_mono_ms(g);
    if (vigil__gitops_watch_drain(g->watch)) {
        /* a managed file changed: observe now, at most every OBSERVE_GAP_MS */
        int64_t soon = g->observe_last + OBSERVE_GAP_MS;
        if (soon < now)
            soon = now;
        if (soon < g->observe_due)
            g->observe_due = soon;
    }
    if (now >= g->observe_due) {
        if (g->desired_pending || g->policies_pending)
            publish_desired(g); /* a retry */
        do_observe(g);
        g->observe_last = vigil__gitops_mono_ms(g);
        g->observe_due = g->observe_last + g->observe_ms;
    }
    int64_t a = vigil_gitsync_schedule_deadline(g->sched);
    *next = a < g->observe_due ? a : g->observe_due;
}

int vigil_gitops_step(vigil_gitops *g, int64_t *next_ms)
{
    if (!g)
        return vigil__error_set(VIGIL_EINVAL, "gitops: NULL runner");
    pthread_mutex_lock(&g->mu);
    int running = g->running;
    pthread_mutex_unlock(&g->mu);
    if (running)
        return vigil__error_set(VIGIL_EBUSY, "gitops: the runner's thread runs");
    int64_t next = 0;
    step(g, &next);
    if (next_ms)
        *next_ms = next;
    return VIGIL_OK;
}

/* Wakes the runner's thread (a full pipe is as good as a byte). */
static void wake(vigil_gitops *g)
{
    char c = 1;
    ssize_t n;
    do
        n = write(g->wake[1], &c, 1);
    while (n < 0 && errno == EINTR);
}

void vigil_gitops_request_sync(vigil_gitops *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->mu);
    g->sync_requested = 1;
    pthread_mutex_unlock(&g->mu);
    wake(g);
}

static void *run(void *p)
{
    vigil_gitops *g = p;
    for (;;) {
        int64_t next = 0;
        step(g, &next);
        /* the thread waits on the real monotonic clock; an injected one
         * only shifts what is due */
        int64_t wait_until = vigil__monotonic_ms() + (next - vigil__gitops_mono_ms(g));
        for (;;) {
            pthread_mutex_lock(&g->mu);
            int stop = g->stopping, requested = g->sync_requested;
            pthread_mutex_unlock(&g->mu);
            if (stop)
                return NULL;
            int64_t left = wait_until - vigil__monotonic_ms();
            if (requested || left <= 0)
                break;
            struct pollfd pf[2] = {{g->wake[0], POLLIN, 0},
                                   {vigil__gitops_watch_fd(g->watch), POLLIN, 0}};
            int n = poll(pf, pf[1].fd >= 0 ? 2 : 1, left > 60000 ? 60000 : (int)left);
            if (n > 0 && (pf[0].revents & POLLIN)) {
                char buf[64];
                while (read(g->wake[0], buf, sizeof(buf)) > 0)
                    ;
            }
            if (n > 0 && pf[1].fd >= 0 && (pf[1].revents & POLLIN))
                break; /* step() reads the events */
        }
    }
    return NULL;
}

int vigil_gitops_start(vigil_gitops *g)
{
    if (!g)
        return vigil__error_set(VIGIL_EINVAL, "gitops: NULL runner");
    pthread_mutex_lock(&g->mu);
    if (g->running) {
        pthread_mutex_unlock(&g->mu);
        return vigil__error_set(VIGIL_EBUSY, "gitops: already started");
    }
    g->running = 1;
    g->stopping = 0;
    int err = pthread_create(&g->thread, NULL, run, g);
    if (err)
        g->running = 0;
    pthread_mutex_unlock(&g->mu);
    if (err)
        return vigil__error_set(VIGIL_EIO, "gitops: pthread_create: %s", strerror(err));
    return VIGIL_OK;
}

void vigil_gitops_stop(vigil_gitops *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->mu);
    if (!g->running) {
        pthread_mutex_unlock(&g->mu);
        return;
    }
    g->stopping = 1;
    pthread_mutex_unlock(&g->mu);
    wake(g);
    pthread_join(g->thread, NULL);
    pthread_mutex_lock(&g->mu);
    g->running = 0;
    g->stopping = 0;
    pthread_mutex_unlock(&g->mu);
}

/* ---- status -------------------------------------------------------------------- */

static int put_str(vigil_buf *b, const char *s)
{
    if (!s)
        return vigil__buf_puts(b, "null");
    return vigil__json_put_string(b, s, strlen(s));
}

int vigil_gitops_status_json(vigil_gitops *g, vigil_buf *out)
{
    if (!g || !out)
        return vigil__error_set(VIGIL_EINVAL, "gitops status: NULL argument");
    pthread_mutex_lock(&g->mu);
    int64_t interval = g->interval;
    int rc = vigil__buf_puts(out, "{\"host\":");
    if (!rc)
        rc = put_str(out, g->host);
    if (!rc)
        rc = vigil__buf_puts(out, ",\"commit\":");
    if (!rc)
        rc = put_str(out, g->commit);
    if (!rc)
        rc = vigil__buf_puts(out, ",\"checkout\":");
    if (!rc)
        rc = put_str(out, g->checkout);
    if (!rc)
        rc = vigil__buf_printf(out,
                               ",\"resources\":%zu,\"policies\":%zu,\"sync\":{\"count\":%llu,"
                               "\"last\":%lld,\"result\":",
                               g->resources, g->policies, (unsigned long long)g->sync_count,
                               (long long)g->sync_last);
    if (!rc)
        rc = put_str(out, g->sync_result);
    if (!rc)
        rc = vigil__buf_puts(out, ",\"commit\":");
    if (!rc)
        rc = put_str(out, g->sync_commit);
    if (!rc)
        rc = vigil__buf_puts(out, ",\"error\":");
    if (!rc)
        rc = put_str(out, g->sync_error);
    if (!rc)
        rc = vigil__buf_puts(out, ",\"errors\":[");
    if (!rc && g->sync_error && !strcmp(g->sync_result, "invalid")) {
        rc = vigil__buf_puts(out, "{\"file\":");
        if (!rc)
            rc = put_str(out, g->err_file ? g->err_file : "");
        if (!rc)
            rc = vigil__buf_printf(out, ",\"line\":%u,\"column\":%u,\"message\":", g->err_line,
                                   g->err_col);
        if (!rc)
            rc = put_str(out, g->err_msg ? g->err_msg : g->sync_error);
        if (!rc)
            rc = vigil__buf_puts(out, "}");
    }
    if (!rc)
        rc = vigil__buf_printf(out,
                               "],\"interval\":%lld},\"drift\":{\"observed\":%lld,\"items\":%zu,"
                               "\"drifted\":%zu,\"errors\":%zu},\"hub\":{\"url\":",
                               (long long)interval, (long long)g->drift_observed, g->drift_items,
                               g->drift_drifted, g->drift_errors);
    if (!rc)
        rc = put_str(out, g->hub_url);
    if (!rc)
        rc = vigil__buf_printf(out, ",\"last\":%lld,\"result\":", (long long)g->hub_last);
    if (!rc)
        rc = put_str(out, g->hub_result);
    if (!rc)
        rc = vigil__buf_puts(out, ",\"error\":");
    if (!rc)
        rc = put_str(out, g->hub_error);
    if (!rc)
        rc = vigil__buf_puts(out, "}}");
    pthread_mutex_unlock(&g->mu);
    return rc;
}
