/* GitOps end to end with the real daemons: vigil-gitopsd, vigil-collector
 * (the hub, with its built-in drift rule) and vigil-remediator (restore_file
 * and a process action) run as processes on ephemeral loopback ports, with a
 * git repository of manifests built with the git CLI in a temporary
 * directory. Nothing is mocked.
 *
 *   - the desired state is loaded and published (GET /v1/status of gitopsd,
 *     GET /v1/desired of the hub);
 *   - a File missing, then edited by hand, is reported as drift and, with
 *     selfHeal, restored byte for byte by restore_file;
 *   - a supervised Service not running, then killed, is reported and
 *     (re)started through the action its manifest names;
 *   - a new commit is picked up (POST /v1/sync) and applied;
 *   - bad commits (invalid YAML, unknown kind, duplicate name) are reported
 *     with file:line while the previous desired state stays in force. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gittest.h"
#include "httptest.h"
#include "proctest.h"
#include "testutil.h"

#define SECRET      "gitops-test-signing-secret-0123456789"
#define AUDIT_KEY   "gitops-test-audit-key-0123456789abcdef"
#define WRITE_TOKEN "gitops-test-write-token-0123456789"
#define READ_TOKEN  "gitops-test-read-token-0123456789"
#define HOST        "web-01"
#define DEADLINE_MS 30000

typedef struct env {
    const char *dir;
    char repo[512], managed[512], pidfile[512], motd[600];
    char head[41];
    int port;
    pt_proc rem, hub, ops;
} env;

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static pid_t live_pid(const char *pidfile)
{
    char *s = pt_slurp(pidfile);
    long pid = strtol(s, NULL, 10);
    free(s);
    if (pid <= 1)
        return 0;
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    const char *p = strrchr(buf, ')');
    int alive = p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
    return alive ? (pid_t)pid : 0;
}

static void write_in(const char *root, const char *rel, const char *text)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')); p++) {
        *p = '\0';
        mkdir(path, 0755);
        *p = '/';
    }
    FILE *fp = fopen(path, "w");
    ck_assert_ptr_nonnull(fp);
    fputs(text, fp);
    fclose(fp);
}

static void commit_all(env *e, const char *msg)
{
    GIT(e->repo, "add", "-A");
    GIT(e->repo, "commit", "-q", "-m", msg);
    GIT_OUT(e->repo, e->head, "rev-parse", "HEAD");
}

static void motd_manifest(env *e, const char *content)
{
    char text[2048];
    snprintf(text, sizeof(text),
             "apiVersion: vigil/v1\n"
             "kind: File\n"
             "metadata: {name: motd, labels: {tier: web}}\n"
             "spec:\n"
             "  path: %s\n"
             "  content: \"%s\"\n"
             "  mode: \"0644\"\n"
             "  selfHeal: true\n",
             e->motd, content);
    write_in(e->repo, "hosts/" HOST "/motd.yaml", text);
}

static void dump(const env *e)
{
    pt_dump_log(&e->ops);
    pt_dump_log(&e->hub);
    pt_dump_log(&e->rem);
}

/* GET url with a bearer token; the body (free it), or NULL unless 200. */
static char *get(const char *base, const char *path)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", base, path);
    http_opts o = {.token = READ_TOKEN};
    http_result r;
    http_do("GET", url, NULL, 0, &o, &r);
    char *body = r.status == 200 && r.body ? strdup(r.body) : NULL;
    http_result_free(&r);
    return body;
}

/* Waits until GET base+path holds every needle (NULL-terminated). */
static int wait_body(const env *e, const char *base, const char *path, const char *const *needles)
{
    for (int64_t end = pt_mono_ms() + DEADLINE_MS; pt_mono_ms() < end;) {
        char *b = get(base, path);
        int ok = b != NULL;
        for (size_t i = 0; ok && needles[i]; i++)
            ok = strstr(b, needles[i]) != NULL;
        if (ok) {
            free(b);
            return 1;
        }
        if (pt_mono_ms() + 50 >= end)
            fprintf(stderr, "last %s: %s\n", path, b ? b : "(none)");
        free(b);
        usleep(20000);
    }
    dump(e);
    return 0;
}

/* Waits until the file holds exactly `text`. */
static int wait_file(const env *e, const char *path, const char *text)
{
    for (int64_t end = pt_mono_ms() + DEADLINE_MS; pt_mono_ms() < end; usleep(10000)) {
        char *s = pt_slurp(path);
        int ok = strcmp(s, text) == 0;
        free(s);
        if (ok)
            return 1;
    }
    dump(e);
    return 0;
}

static pid_t wait_new_pid(const env *e, pid_t not )
{
    for (int64_t end = pt_mono_ms() + DEADLINE_MS; pt_mono_ms() < end; usleep(5000)) {
        pid_t p = live_pid(e->pidfile);
        if (p && p != not )
            return p;
    }
    return 0;
}

static int post_sync(const env *e)
{
    char url[256];
    snprintf(url, sizeof(url), "%s/v1/sync", e->ops.base);
    http_opts o = {.token = WRITE_TOKEN};
    http_result r;
    http_do("POST", url, "{}", 2, &o, &r);
    int st = (int)r.status;
    http_result_free(&r);
    return st;
}

static void start(env *e)
{
    memset(e, 0, sizeof(*e));
    e->dir = vt_tmpdir();
    e->port = free_port();
    snprintf(e->repo, sizeof(e->repo), "%s/repo", e->dir);
    snprintf(e->managed, sizeof(e->managed), "%s/managed", e->dir);
    snprintf(e->pidfile, sizeof(e->pidfile), "%s/demo.pid", e->dir);
    snprintf(e->motd, sizeof(e->motd), "%s/motd", e->managed);
    ck_assert_int_eq(mkdir(e->repo, 0755), 0);
    ck_assert_int_eq(mkdir(e->managed, 0755), 0);
    setenv("VIGIL_REMEDIATOR_SECRET", SECRET, 1);
    setenv("VIGIL_AUDIT_KEY", AUDIT_KEY, 1);
    setenv("GITOPS_WRITE_TOKEN", WRITE_TOKEN, 1);
    setenv("GITOPS_READ_TOKEN", READ_TOKEN, 1);

    /* the manifests: a File and a supervised Service, both self-healing */
    GIT(e->repo, "init", "-q");
    motd_manifest(e, "hello\\n");
    char text[4096];
    const char *demo = pt_bin_path("vigil-demo-service");
    snprintf(text, sizeof(text),
             "apiVersion: vigil/v1\n"
             "kind: Service\n"
             "metadata: {name: demo}\n"
             "spec:\n"
             "  process:\n"
             "    start: [\"%s\", \"--port\", \"%d\", \"--pidfile\", \"%s\"]\n"
             "    pidfile: %s\n"
             "  state: running\n"
             "  action: restart_demo\n"
             "  selfHeal: true\n",
             demo, e->port, e->pidfile, e->pidfile);
    write_in(e->repo, "common/demo.yaml", text);
    commit_all(e, "first");

    char cfg[8192];
    snprintf(cfg, sizeof(cfg),
             "listen: 127.0.0.1:0\n"
             "secret_env: VIGIL_REMEDIATOR_SECRET\n"
             "audit: sqlite://%s/remediator.db\n"
             "audit_key_env: VIGIL_AUDIT_KEY\n"
             "guards: {dry_run: false, cooldown: 0, max_attempts: 0, rate_limit: 0,"
             " max_concurrent: 2}\n"
             "actions:\n"
             "  - name: restart_demo\n"
             "    type: process\n"
             "    op: restart\n"
             "    start: [\"%s\", \"--port\", \"%d\", \"--pidfile\", \"%s\"]\n"
             "    pidfile: %s\n"
             "    writes_pidfile: true\n"
             "    stop_signal: TERM\n"
             "    stop_timeout: 2s\n"
             "    start_timeout: 5s\n"
             "    log_file: %s/demo.log\n"
             "    targets: \"^demo$\"\n"
             "  - name: restore_file\n"
             "    type: restore_file\n"
             "    targets: \"^[^/]+/File/.+$\"\n"
             "    blobs_dir: %s/wd/blobs\n"
             "    paths: [\"%s/\"]\n"
             "    params: {path: \"^.+$\", sha256: \"^[0-9a-f]{64}$\", mode: \"^[0-7]{3,4}$\"}\n",
             e->dir, demo, e->port, e->pidfile, e->pidfile, e->dir, e->dir, e->managed);
    vt_write_file(e->dir, "remediator.yaml", cfg, strlen(cfg));
    char *rargs[] = {(char *)pt_bin_path("vigil-remediator"), "--config", "remediator.yaml", NULL};
    pt_start(&e->rem, "remediator", rargs, e->dir, 1);

    snprintf(cfg, sizeof(cfg),
             "listen: 127.0.0.1:0\n"
             "store: sqlite://%s/hub.db\n"
             "remediator: {url: \"%s\", secret_env: VIGIL_REMEDIATOR_SECRET}\n"
             "security:\n"
             "  tokens:\n"
             "    - {name: gitopsd, env: GITOPS_WRITE_TOKEN, scopes: [write]}\n"
             "    - {name: test, env: GITOPS_READ_TOKEN, scopes: [read]}\n"
             "drift: {cooldown: 1s}\n"
             "policies:\n"
             "  - {name: cfg-rule, kind: threshold, metric: never_sent, op: \">\", threshold: 1,\n"
             "     action: restart_demo, target: demo}\n",
             e->dir, e->rem.base);
    vt_write_file(e->dir, "collector.yaml", cfg, strlen(cfg));
    char *hargs[] = {(char *)pt_bin_path("vigil-collector"), "--config", "collector.yaml", NULL};
    pt_start(&e->hub, "collector", hargs, e->dir, 1);

    snprintf(cfg, sizeof(cfg),
             "listen: 127.0.0.1:0\n"
             "host: " HOST "\n"
             "security:\n"
             "  tokens:\n"
             "    - {name: ci, env: GITOPS_WRITE_TOKEN, scopes: [write]}\n"
             "    - {name: test, env: GITOPS_READ_TOKEN, scopes: [read]}\n"
             "repo: {url: \"%s\", ref: main, workdir: \"%s/wd\"}\n"
             "manifests: {sources: [common, \"hosts/${HOSTNAME}\"]}\n"
             "sync: {min_interval: 30s, max_interval: 60s}\n"
             "observe: {interval: 200ms}\n"
             "hub: {url: \"%s\", token_env: GITOPS_WRITE_TOKEN, timeout: 5s}\n",
             e->repo, e->dir, e->hub.base);
    vt_write_file(e->dir, "gitopsd.yaml", cfg, strlen(cfg));
    char *gargs[] = {(char *)pt_bin_path("vigil-gitopsd"), "--config", "gitopsd.yaml", NULL};
    pt_start(&e->ops, "gitopsd", gargs, e->dir, 1);
}

static void stop(env *e)
{
    ck_assert_int_eq(pt_stop(&e->ops), 0);
    ck_assert_int_eq(pt_stop(&e->hub), 0);
    ck_assert_int_eq(pt_stop(&e->rem), 0);
    pid_t last = live_pid(e->pidfile);
    if (last > 0) {
        kill(last, SIGKILL);
        usleep(100000);
    }
}

/* Commits a bad manifest and checks it is reported at `where` while the
 * desired state of `good` stays (gitopsd and hub), then resets to good. */
static void bad_commit(env *e, const char *good, const char *rel, const char *text,
                       const char *where)
{
    write_in(e->repo, rel, text);
    commit_all(e, "bad");
    ck_assert_int_eq(post_sync(e), 202);
    char result[128], commit[128];
    snprintf(result, sizeof(result), "\"result\":\"invalid\",\"commit\":\"%s\"", e->head);
    snprintf(commit, sizeof(commit), "\"commit\":\"%s\",\"checkout\"", good);
    const char *const want[] = {result, where, commit, "\"resources\":3,", NULL};
    ck_assert(wait_body(e, e->ops.base, "/v1/status", want));
    /* the hub keeps the previous revision */
    char *d = get(e->hub.base, "/v1/desired");
    ck_assert_ptr_nonnull(d);
    ck_assert_ptr_nonnull(strstr(d, good));
    ck_assert_ptr_null(strstr(d, e->head));
    free(d);
    GIT(e->repo, "reset", "-q", "--hard", good);
}

START_TEST(test_gitops_end_to_end)
{
    env e;
    start(&e);

    /* desired state loaded and published */
    char commit[128];
    snprintf(commit, sizeof(commit), "\"commit\":\"%s\",\"checkout\"", e.head);
    const char *const loaded[] = {commit, "\"resources\":2,", "\"result\":\"ok\"", NULL};
    ck_assert(wait_body(&e, e.ops.base, "/v1/status", loaded));
    const char *const desired[] = {"\"" HOST "/File/motd\"", "\"" HOST "/Service/demo\"", e.head,
                                   NULL};
    ck_assert(wait_body(&e, e.hub.base, "/v1/desired", desired));

    /* the missing file is created, the service started, both self-healed */
    ck_assert_msg(wait_file(&e, e.motd, "hello\n"), "motd not restored");
    struct stat st;
    ck_assert_int_eq(stat(e.motd, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0644);
    pid_t first = wait_new_pid(&e, 0);
    if (!first)
        dump(&e);
    ck_assert_int_gt(first, 0);
    const char *const in_sync[] = {"\"drifted\":0,", NULL};
    ck_assert(wait_body(&e, e.ops.base, "/v1/status", in_sync));

    /* a hand edit is reported and restored byte for byte */
    vt_write_file(e.managed, "motd", "hand edit\n", 10);
    ck_assert_msg(wait_file(&e, e.motd, "hello\n"), "motd not restored after a hand edit");
    const char *const fired[] = {"\"policy\":\"drift\"", "restore_file", NULL};
    ck_assert(wait_body(&e, e.hub.base, "/v1/decisions", fired));

    /* the supervised process killed: reported and restarted */
    ck_assert_int_eq(kill(first, SIGKILL), 0);
    pid_t second = wait_new_pid(&e, first);
    if (!second)
        dump(&e);
    ck_assert_int_gt(second, 0);

    /* a new commit, with a git-managed policy */
    char good[41];
    motd_manifest(&e, "second version\\n");
    write_in(e.repo, "common/policy.yaml",
             "apiVersion: vigil/v1\n"
             "kind: Policy\n"
             "metadata: {name: git-demo-cpu}\n"
             "spec:\n"
             "  kind: threshold\n"
             "  metric: cpu_usage\n"
             "  match: {process: demo}\n"
             "  window: 1m\n"
             "  aggregate: avg\n"
             "  op: \">\"\n"
             "  threshold: 95\n"
             "  action: restart_demo\n"
             "  target: demo\n");
    commit_all(&e, "second");
    memcpy(good, e.head, sizeof(good));
    ck_assert_int_eq(post_sync(&e), 202);
    snprintf(commit, sizeof(commit), "\"commit\":\"%s\",\"checkout\"", e.head);
    const char *const second_loaded[] = {commit, NULL};
    ck_assert(wait_body(&e, e.ops.base, "/v1/status", second_loaded));
    ck_assert_msg(wait_file(&e, e.motd, "second version\n"), "the new content was not applied");
    const char *const policy[] = {"git-demo-cpu", NULL};
    ck_assert(wait_body(&e, e.hub.base, "/v1/policies", policy));
    const char *const counted[] = {"\"resources\":3,\"policies\":1,", NULL};
    ck_assert(wait_body(&e, e.ops.base, "/v1/status", counted));

    /* bad commits: reported with file:line, the previous desired state stays */
    bad_commit(&e, good, "common/broken.yaml",
               "apiVersion: vigil/v1\nkind: File\nmetadata: {name: [\n",
               "\"file\":\"common/broken.yaml\",\"line\":");
    bad_commit(&e, good, "common/bogus.yaml",
               "apiVersion: vigil/v1\nkind: Bogus\nmetadata: {name: b}\nspec: {}\n",
               "\"file\":\"common/bogus.yaml\",\"line\":2,");
    char dup[1024];
    snprintf(dup, sizeof(dup),
             "apiVersion: vigil/v1\nkind: File\nmetadata: {name: motd}\n"
             "spec: {path: %s/other, content: \"x\"}\n",
             e.managed);
    /* common/ loads first: the second definition is the one reported */
    bad_commit(
        &e, good, "common/dup.yaml", dup,
        "\"file\":\"hosts/" HOST "/motd.yaml\",\"line\":3,\"column\":18,\"message\":"
        "\"metadata.name: File \\\"motd\\\" is defined twice (first at common/dup.yaml:1:1)");
    /* a Policy the hub refuses (its name is a rule of collector.yaml: 409): the whole
     * commit is invalid, neither its desired state nor its rules replace the previous */
    bad_commit(&e, good, "common/taken.yaml",
               "apiVersion: vigil/v1\nkind: Policy\nmetadata: {name: cfg-rule}\n"
               "spec: {kind: threshold, metric: m, op: \">\", threshold: 1, action: restart_demo,"
               " target: demo}\n",
               "HTTP 409");
    char *pol = get(e.hub.base, "/v1/policies");
    ck_assert_ptr_nonnull(pol);
    ck_assert_ptr_nonnull(strstr(pol, "git-demo-cpu"));
    free(pol);
    /* the managed file still follows the last valid commit */
    vt_write_file(e.managed, "motd", "edit during a bad commit\n", 25);
    ck_assert_msg(wait_file(&e, e.motd, "second version\n"), "not restored while a commit is bad");

    /* the policy leaves git: the hub drops it (PUT /v1/policies with none) */
    GIT(e.repo, "rm", "-q", "common/policy.yaml");
    commit_all(&e, "no policy");
    ck_assert_int_eq(post_sync(&e), 202);
    snprintf(commit, sizeof(commit), "\"commit\":\"%s\",\"checkout\"", e.head);
    const char *const dropped[] = {commit, "\"resources\":2,\"policies\":0,", NULL};
    ck_assert(wait_body(&e, e.ops.base, "/v1/status", dropped));
    int gone = 0;
    for (int64_t end = pt_mono_ms() + DEADLINE_MS; !gone && pt_mono_ms() < end; usleep(20000)) {
        char *b = get(e.hub.base, "/v1/policies");
        gone = b && !strstr(b, "git-demo-cpu");
        free(b);
    }
    ck_assert_msg(gone, "the hub kept the policy removed from git");
    stop(&e);
}
END_TEST

/* Runs `args` to its end with output in <dir>/<name>.log; the exit status. */
static int run_to_end(const char *dir, const char *name, char *const *args)
{
    pt_proc p;
    pt_start(&p, name, args, dir, 0);
    return pt_wait_exit(p.pid);
}

START_TEST(test_gitopsd_process)
{
    env e;
    memset(&e, 0, sizeof(e));
    e.dir = vt_tmpdir();
    snprintf(e.repo, sizeof(e.repo), "%s/repo", e.dir);
    snprintf(e.managed, sizeof(e.managed), "%s/managed", e.dir);
    snprintf(e.motd, sizeof(e.motd), "%s/motd", e.managed);
    ck_assert_int_eq(mkdir(e.repo, 0755), 0);
    GIT(e.repo, "init", "-q");
    motd_manifest(&e, "hello\\n");
    commit_all(&e, "first");
    setenv("GITOPS_READ_TOKEN", READ_TOKEN, 1);
    char cfg[2048];
    snprintf(cfg, sizeof(cfg),
             "listen: 127.0.0.1:0\n"
             "host: " HOST "\n"
             "security: {tokens: [{name: test, env: GITOPS_READ_TOKEN, scopes: [read]}]}\n"
             "repo: {url: \"%s\", workdir: \"%s/wd\"}\n"
             "manifests: {sources: [\"hosts/${HOSTNAME}\"]}\n"
             "sync: {min_interval: 10m, max_interval: 20m}\n",
             e.repo, e.dir);
    vt_write_file(e.dir, "gitopsd.yaml", cfg, strlen(cfg));
    const char *bin = pt_bin_path("vigil-gitopsd");

    /* --check-config: valid, then a bad file with its location */
    char *check[] = {(char *)bin, "--config", "gitopsd.yaml", "--check-config", NULL};
    ck_assert_int_eq(run_to_end(e.dir, "check", check), 0);
    const char *bad = "repo: {url: \"ssh://h/r.git\"}\n";
    vt_write_file(e.dir, "bad.yaml", bad, strlen(bad));
    char *check_bad[] = {(char *)bin, "--config", "bad.yaml", "--check-config", NULL};
    ck_assert_int_eq(run_to_end(e.dir, "checkbad", check_bad), 1);
    char log[PATH_MAX];
    snprintf(log, sizeof(log), "%s/checkbad.log", e.dir);
    char *text = pt_slurp(log);
    ck_assert_msg(strstr(text, "vigil-gitopsd: configuration: bad.yaml:1:13: repo.url:"), "%s",
                  text);
    free(text);
    char *unknown[] = {(char *)bin, "--bogus", NULL};
    ck_assert_int_eq(run_to_end(e.dir, "unknown", unknown), 2);

    /* started: one sync at once (the next poll is 10 minutes away) */
    char *args[] = {(char *)bin, "--config", "gitopsd.yaml", NULL};
    pt_start(&e.ops, "gitopsd", args, e.dir, 1);
    char commit[128];
    snprintf(commit, sizeof(commit), "\"commit\":\"%s\",\"checkout\"", e.head);
    const char *const first[] = {commit, "\"resources\":1,", "\"sync\":{\"count\":1,", NULL};
    ck_assert(wait_body(&e, e.ops.base, "/v1/status", first));
    /* SIGHUP reloads the tokens and syncs */
    motd_manifest(&e, "after hup\\n");
    commit_all(&e, "second");
    ck_assert_int_eq(kill(e.ops.pid, SIGHUP), 0);
    snprintf(commit, sizeof(commit), "\"commit\":\"%s\",\"checkout\"", e.head);
    const char *const second[] = {commit, "\"sync\":{\"count\":2,", NULL};
    ck_assert(wait_body(&e, e.ops.base, "/v1/status", second));
    /* without a hub: observed and reported only; nothing writes the file */
    const char *const observed[] = {"\"drifted\":1,", "\"result\":\"disabled\"", NULL};
    ck_assert(wait_body(&e, e.ops.base, "/v1/status", observed));
    ck_assert_int_eq(access(e.motd, F_OK), -1);
    ck_assert_int_eq(pt_stop(&e.ops), 0);
}
END_TEST

static Suite *gitops_suite(void)
{
    Suite *s = suite_create("gitops_e2e");
    TCase *tc = tcase_create("e2e");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, test_gitops_end_to_end);
    tcase_add_test(tc, test_gitopsd_process);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(gitops_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
