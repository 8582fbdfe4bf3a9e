/* scripts/chaos against a make-run-like set-up: vigil-remediator,
 * vigil-collector, vigil-agent and vigil-gitopsd from the shipped configs
 * (copied into a temporary working directory with their ports 7600, 7601,
 * 7680 and 7602 replaced by free ones, as test_demo does; the manifests
 * repository made as scripts/run.sh makes it), the demo service started by
 * the loop. The script kills the demo (SIGKILL), then freezes it (SIGSTOP),
 * and must report each healed, naming the decision and the action that healed
 * it; without gitopsd the edit step is skipped and says so. Then, with
 * gitopsd, it overwrites the managed file and must see it put back by the
 * drift rule's restore_file. Bad arguments exit 2, an unreachable hub 3. */
#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "httptest.h"
#include "proctest.h"
#include "testutil.h"

#define READ_TOKEN "chaos-test-read-token-0000000000"

/* The pid in var/demo.pid, or 0. */
static pid_t read_pidfile(const char *path)
{
    char *s = pt_slurp(path);
    long pid = strtol(s, NULL, 10);
    free(s);
    return pid > 0 ? (pid_t)pid : 0;
}

/* Waits for a live pid in the pidfile other than `old`; 0 after `ms`. */
static pid_t wait_new_pid(const char *pidfile, pid_t old, int64_t ms)
{
    for (int64_t end = pt_mono_ms() + ms; pt_mono_ms() < end;) {
        pid_t p = read_pidfile(pidfile);
        if (p && p != old && kill(p, 0) == 0)
            return p;
        usleep(1000);
    }
    return 0;
}

/* Copies src to dst with mode 0755 (the remediator refuses a program others
 * may write). */
static void copy_program(const char *src, const char *dst)
{
    FILE *in = fopen(src, "rb");
    ck_assert_ptr_nonnull(in);
    FILE *out = fopen(dst, "wb");
    ck_assert_ptr_nonnull(out);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
    fclose(in);
    ck_assert_int_eq(fclose(out), 0);
    ck_assert_int_eq(chmod(dst, 0755), 0);
}

/* Copies configs/<name> of the tree to dir/<name> with the shipped ports
 * replaced by the test's; every other byte is the shipped file's. */
static void copy_config(const char *src, const char *dir, const char *name, const int ports[4])
{
    static const char *const shipped[4] = {"7600", "7601", "7680", "7602"};
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/configs/%s", src, name);
    char *text = NULL;
    size_t len = 0;
    FILE *in = fopen(path, "rb");
    ck_assert_msg(in != NULL, "%s: %s", path, strerror(errno));
    FILE *mem = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(mem);
    int c;
    while ((c = fgetc(in)) != EOF)
        fputc(c, mem);
    fclose(in);
    fclose(mem);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *out = fopen(path, "wb");
    ck_assert_msg(out != NULL, "%s: %s", path, strerror(errno));
    for (size_t i = 0; i < len;) {
        int k = 0;
        while (k < 4 && strncmp(text + i, shipped[k], 4) != 0)
            k++;
        /* a whole number only: not a digit before or after */
        if (k < 4 && (i == 0 || text[i - 1] < '0' || text[i - 1] > '9') &&
            (i + 4 >= len || text[i + 4] < '0' || text[i + 4] > '9')) {
            fprintf(out, "%d", ports[k]);
            i += 4;
        } else {
            fputc(text[i++], out);
        }
    }
    fclose(out);
    free(text);
}

#define MOTD "managed by the chaos test"

/* git ARGS in `dir` (argv, no shell), with an identity of its own. */
static void git(const char *dir, const char *a1, const char *a2, const char *a3, const char *a4)
{
    char *argv[] = {"git",
                    "-C",
                    (char *)dir,
                    "-c",
                    "user.name=vigil-test",
                    "-c",
                    "user.email=vigil-test@localhost",
                    "-c",
                    "commit.gpgsign=false",
                    "-c",
                    "init.defaultBranch=main",
                    (char *)a1,
                    (char *)a2,
                    (char *)a3,
                    (char *)a4,
                    NULL};
    pid_t pid;
    ck_assert_int_eq(posix_spawnp(&pid, "git", NULL, NULL, argv, environ), 0);
    ck_assert_int_eq(pt_wait_exit(pid), 0);
}

/* var/manifests as scripts/run.sh makes it: a git repository with a File
 * ./var/managed/motd for this host (gitopsd's default host, its name). */
static void manifests(const char *dir)
{
    char path[PATH_MAX + 64], host[256] = "";
    ck_assert_int_eq(gethostname(host, sizeof(host) - 1), 0);
    snprintf(path, sizeof(path), "%s/var/managed", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/var/manifests", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    git(path, "init", "-q", NULL, NULL);
    snprintf(path, sizeof(path), "%s/var/manifests/common", dir); /* a source, empty here */
    ck_assert_int_eq(mkdir(path, 0755), 0);
    vt_write_file(path, ".keep", "", 0);
    snprintf(path, sizeof(path), "%s/var/manifests/hosts", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/var/manifests/hosts/%s", dir, host);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    static const char text[] = "apiVersion: vigil/v1\n"
                               "kind: File\n"
                               "metadata: {name: motd}\n"
                               "spec:\n"
                               "  path: ./var/managed/motd\n"
                               "  content: \"" MOTD "\\n\"\n"
                               "  mode: \"0644\"\n"
                               "  selfHeal: true\n";
    vt_write_file(path, "motd.yaml", text, sizeof(text) - 1);
    snprintf(path, sizeof(path), "%s/var/manifests", dir);
    git(path, "add", "-A", NULL, NULL);
    git(path, "commit", "-q", "-m", "manifests");
}

/* Runs `bash scripts/chaos ARGS` in `dir` with the environment set; returns
 * its exit status and its stdout+stderr in *out (free() it). */
static int run_chaos(const char *dir, char *const *args, char **out)
{
    char script[PATH_MAX], log[PATH_MAX];
    snprintf(script, sizeof(script), "%s/scripts/chaos", vt_srcdir());
    snprintf(log, sizeof(log), "%s/chaos.out", dir);
    char *argv[8] = {"/bin/bash", script};
    size_t n = 2;
    for (; args[n - 2] && n < 7; n++)
        argv[n] = args[n - 2];
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_addchdir_np(&fa, dir);
    pid_t pid;
    ck_assert_int_eq(posix_spawn(&pid, argv[0], &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    int rc = pt_wait_exit(pid);
    *out = pt_slurp(log);
    printf("---- scripts/chaos exited %d ----\n%s", rc, *out);
    fflush(stdout);
    return rc;
}

START_TEST(chaos_kill_freeze_healed)
{
    const char *dir = vt_tmpdir();
    const char *src = vt_srcdir();
    char path[PATH_MAX], pidfile[PATH_MAX + 32], cfg[4][PATH_MAX], env[64];
    char motd[PATH_MAX + 32];
    pt_proc rem, hub, agent, gitops;

    setenv("VIGIL_INGEST_TOKEN", "chaos-test-ingest-token-00000000", 1);
    setenv("VIGIL_READ_TOKEN", READ_TOKEN, 1);
    setenv("VIGIL_REMEDIATOR_SECRET", "chaos-test-signing-secret-0123456789ab", 1);
    setenv("VIGIL_REMEDIATOR_HUB_TOKEN", "chaos-test-hub-token-000000000000", 1);
    setenv("VIGIL_ADMIN_TOKEN", "chaos-test-admin-token-0000000000", 1);
    snprintf(path, sizeof(path), "%s/var", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/build", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/build/bin", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/build/bin/vigil-demo-service", dir);
    copy_program(pt_bin_path("vigil-demo-service"), path);
    snprintf(pidfile, sizeof(pidfile), "%s/var/demo.pid", dir);
    int ports[4] = {ht_closed_port(), ht_closed_port(), ht_closed_port(), ht_closed_port()};
    for (int i = 0; i < 4; i++)
        for (int k = i + 1; k < 4; k++)
            ck_assert_int_ne(ports[i], ports[k]);
    copy_config(src, dir, "remediator.yaml", ports);
    copy_config(src, dir, "collector.yaml", ports);
    copy_config(src, dir, "agent.yaml", ports);
    copy_config(src, dir, "gitopsd.yaml", ports);
    manifests(dir);
    /* the one change beyond the ports: the drift cooldown, 10 s, made 1 s,
     * so the edit right after gitopsd's first heal is not held back by it */
    snprintf(path, sizeof(path), "%s/collector.yaml", dir);
    char *hubcfg = pt_slurp(path);
    char *at = strstr(hubcfg, "\n  cooldown: 10s ");
    ck_assert_ptr_nonnull(at);
    memcpy(at + 13, "1s ", 3);
    vt_write_file(dir, "collector.yaml", hubcfg, strlen(hubcfg));
    free(hubcfg);
    snprintf(cfg[0], sizeof(cfg[0]), "%s/remediator.yaml", dir);
    snprintf(cfg[1], sizeof(cfg[1]), "%s/collector.yaml", dir);
    snprintf(cfg[2], sizeof(cfg[2]), "%s/agent.yaml", dir);
    snprintf(cfg[3], sizeof(cfg[3]), "%s/gitopsd.yaml", dir);

    /* an unreachable hub: 3, before anything is broken */
    char *out = NULL;
    snprintf(env, sizeof(env), "http://127.0.0.1:%d", ports[0]);
    setenv("VIGIL_URL", env, 1);
    setenv("VIGIL_DEMO_PIDFILE", pidfile, 1);
    snprintf(env, sizeof(env), "127.0.0.1:%d", ports[2]);
    setenv("VIGIL_DEMO_ADDR", env, 1);
    setenv("VIGIL_GITOPS_URL", "http://127.0.0.1:1", 1);
    snprintf(motd, sizeof(motd), "%s/var/managed/motd", dir);
    setenv("VIGIL_MANAGED_FILE", motd, 1);
    setenv("CHAOS_TIMEOUT", "60", 1);
    char *none[] = {NULL};
    ck_assert_int_eq(run_chaos(dir, none, &out), 3);
    ck_assert_ptr_nonnull(strstr(out, "chaos: cannot reach the hub at http://127.0.0.1:"));
    free(out);
    char *bad[] = {"explode", NULL};
    ck_assert_int_eq(run_chaos(dir, bad, &out), 2);
    ck_assert_ptr_nonnull(strstr(out, "chaos: unknown step \"explode\""));
    free(out);

    char *rargs[] = {(char *)pt_bin_path("vigil-remediator"), "--config", cfg[0], NULL};
    pt_start(&rem, "remediator", rargs, dir, 1);
    char *hargs[] = {(char *)pt_bin_path("vigil-collector"), "--config", cfg[1], NULL};
    pt_start(&hub, "collector", hargs, dir, 1);
    char *aargs[] = {(char *)pt_bin_path("vigil-agent"), "--config", cfg[2], NULL};
    pt_start(&agent, "agent", aargs, dir, 0);
    pid_t pid = wait_new_pid(pidfile, 0, 30000);
    if (!pid) {
        pt_dump_log(&agent);
        pt_dump_log(&hub);
        pt_dump_log(&rem);
    }
    ck_assert_msg(pid > 0, "the loop did not start vigil-demo-service within 30 s");

    /* kill and freeze, no gitopsd yet: the edit step is skipped */
    char *all[] = {NULL};
    int rc = run_chaos(dir, all, &out);
    if (rc != 0) {
        pt_dump_log(&hub);
        pt_dump_log(&rem);
    }
    ck_assert_int_eq(rc, 0);
    char want[128];
    snprintf(want, sizeof(want), "chaos: kill: SIGKILL to vigil-demo-service pid %ld", (long)pid);
    ck_assert_ptr_nonnull(strstr(out, want));
    ck_assert_ptr_nonnull(strstr(out, "chaos: kill healed: new pid "));
    ck_assert_ptr_nonnull(strstr(out, "decision fired: policy demo_down process_up{"));
    ck_assert_ptr_nonnull(strstr(out, "chaos: freeze healed: new pid "));
    ck_assert_ptr_nonnull(strstr(out, "decision fired: policy demo_hung http_up{"));
    ck_assert_ptr_nonnull(strstr(out, ": restart_demo demo succeeded"));
    ck_assert_ptr_nonnull(
        strstr(out, "chaos: edit: skipped (no gitopsd answers at http://127.0.0.1:1)"));
    /* the frozen process is gone, a new one runs */
    pid_t now = wait_new_pid(pidfile, 0, 1000);
    ck_assert_int_gt(now, 0);
    ck_assert_int_ne(now, pid);
    free(out);

    /* gitopsd, which writes the managed file: the edit step puts it back */
    char *gargs[] = {(char *)pt_bin_path("vigil-gitopsd"), "--config", cfg[3], NULL};
    pt_start(&gitops, "gitopsd", gargs, dir, 1);
    char *motd_text = NULL;
    for (int64_t end = pt_mono_ms() + 30000; pt_mono_ms() < end; usleep(20000)) {
        free(motd_text);
        motd_text = pt_slurp(motd);
        if (!strcmp(motd_text, MOTD "\n"))
            break;
    }
    if (strcmp(motd_text, MOTD "\n")) {
        pt_dump_log(&gitops);
        pt_dump_log(&hub);
        pt_dump_log(&rem);
    }
    ck_assert_str_eq(motd_text, MOTD "\n");
    free(motd_text);
    snprintf(env, sizeof(env), "http://127.0.0.1:%d", gitops.port);
    setenv("VIGIL_GITOPS_URL", env, 1);
    char *edit[] = {"edit", NULL};
    rc = run_chaos(dir, edit, &out);
    if (rc != 0) {
        pt_dump_log(&gitops);
        pt_dump_log(&hub);
        pt_dump_log(&rem);
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_ptr_nonnull(strstr(out, "chaos: edit: overwriting "));
    ck_assert_ptr_nonnull(strstr(out, "chaos: edit healed: "));
    ck_assert_ptr_nonnull(strstr(out, ": restore_file "));
    ck_assert_ptr_nonnull(strstr(out, "/File/motd succeeded (policy drift)"));
    ck_assert_ptr_null(strstr(out, "kill:"));
    motd_text = pt_slurp(motd);
    ck_assert_str_eq(motd_text, MOTD "\n");
    free(motd_text);
    free(out);

    ck_assert_int_eq(pt_stop(&gitops), 0);
    ck_assert_int_eq(pt_stop(&agent), 0);
    ck_assert_int_eq(pt_stop(&hub), 0);
    ck_assert_int_eq(pt_stop(&rem), 0);
    pid_t last = read_pidfile(pidfile);
    if (last > 0 && kill(last, 0) == 0) {
        kill(last, SIGKILL);
        usleep(100000);
    }
}
END_TEST

static Suite *chaos_suite(void)
{
    Suite *s = suite_create("chaos");
    TCase *tc = tcase_create("chaos");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, chaos_kill_freeze_healed);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(chaos_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
