/* The systemd units of configs/systemd/: each is Type=notify, hardened
 * (NoNewPrivileges, ProtectSystem=strict with its state directory, PrivateTmp),
 * takes its tokens from an EnvironmentFile, and a daemon that needs no root
 * runs as a dedicated (dynamic) user; the units pass `systemd-analyze verify`
 * with no message at all (an unknown or misspelt key is only a message), their
 * ExecStart paths pointed at this build's binaries and /etc/vigil at a
 * temporary directory. Without systemd-analyze the verify step is skipped
 * with a message; the checks of the unit files still run. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proctest.h"
#include "testutil.h"

static const char *const k_units[] = {"vigil-agent", "vigil-collector", "vigil-remediator",
                                      "vigil-gitopsd"};
#define NUNITS (sizeof(k_units) / sizeof(k_units[0]))

static char *unit_text(const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/configs/systemd/%s.service", vt_srcdir(), name);
    ck_assert_msg(access(path, R_OK) == 0, "%s: %s", path, strerror(errno));
    return pt_slurp(path);
}

/* True when `text` has the line `line` (whole line). */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p += n)
        if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
            return 1;
    return 0;
}

START_TEST(units_are_notify_and_hardened)
{
    for (size_t i = 0; i < NUNITS; i++) {
        char *t = unit_text(k_units[i]);
        char line[256];
        static const char *const required[] = {
            "Type=notify",          "NotifyAccess=main", "NoNewPrivileges=yes",
            "ProtectSystem=strict", "PrivateTmp=yes",    "ExecReload=/bin/kill -HUP $MAINPID"};
        for (size_t k = 0; k < sizeof(required) / sizeof(required[0]); k++)
            ck_assert_msg(has_line(t, required[k]), "%s.service lacks %s", k_units[i], required[k]);
        const char *d = k_units[i] + strlen("vigil-");
        snprintf(line, sizeof(line), "StateDirectory=%s", k_units[i]);
        ck_assert_msg(has_line(t, line), "%s.service lacks %s", k_units[i], line);
        snprintf(line, sizeof(line), "WorkingDirectory=/var/lib/%s", k_units[i]);
        ck_assert_msg(has_line(t, line), "%s.service lacks %s", k_units[i], line);
        snprintf(line, sizeof(line), "EnvironmentFile=/etc/vigil/%s.env", d);
        ck_assert_msg(has_line(t, line), "%s.service lacks %s", k_units[i], line);
        snprintf(line, sizeof(line), "ExecStart=/usr/local/bin/%s --config /etc/vigil/%s.yaml",
                 k_units[i], d);
        ck_assert_msg(has_line(t, line), "%s.service lacks %s", k_units[i], line);
        /* the hub and gitopsd need no root: a dedicated user, no capability */
        int unprivileged = !strcmp(d, "collector") || !strcmp(d, "gitopsd");
        ck_assert_int_eq(has_line(t, "DynamicUser=yes"), unprivileged);
        ck_assert_int_eq(has_line(t, "CapabilityBoundingSet="), unprivileged);
        /* the others say why they run as root */
        if (!unprivileged)
            ck_assert_msg(strstr(t, "# Root") != NULL, "%s.service: no comment on root",
                          k_units[i]);
        free(t);
    }
}
END_TEST

/* The directory of PATH holding `prog`, or NULL. */
static const char *which(const char *prog, char *out, size_t size)
{
    const char *path = getenv("PATH");
    while (path && *path) {
        size_t n = strcspn(path, ":");
        snprintf(out, size, "%.*s/%s", (int)(n < 1024 ? n : 1024), path, prog);
        if (n && access(out, X_OK) == 0)
            return out;
        path += n + (path[n] == ':');
    }
    return NULL;
}

/* Writes the unit with /usr/local/bin/vigil-X replaced by `bin` and
 * /etc/vigil/ by dir/. */
static void rewrite_unit(const char *name, const char *dir, const char *bin)
{
    char *t = unit_text(name), path[PATH_MAX], prog[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s.service", dir, name);
    snprintf(prog, sizeof(prog), "/usr/local/bin/%s", name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    for (const char *p = t; *p;) {
        if (!strncmp(p, prog, strlen(prog))) {
            fputs(bin, f);
            p += strlen(prog);
        } else if (!strncmp(p, "/etc/vigil/", 11)) {
            fprintf(f, "%s/", dir);
            p += 11;
        } else {
            fputc(*p++, f);
        }
    }
    ck_assert_int_eq(fclose(f), 0);
    free(t);
    const char *d = name + strlen("vigil-");
    char env[64];
    snprintf(env, sizeof(env), "%s.env", d);
    vt_write_file(dir, env, "", 0);
}

START_TEST(units_pass_systemd_analyze_verify)
{
    char tool[PATH_MAX];
    if (!which("systemd-analyze", tool, sizeof(tool))) {
        printf("test_systemd: systemd-analyze not found: `systemd-analyze verify` of "
               "configs/systemd/*.service skipped\n");
        return;
    }
    const char *dir = vt_tmpdir();
    char *argv[4 + NUNITS] = {tool, "verify", "--man=no"};
    char paths[NUNITS][PATH_MAX];
    for (size_t i = 0; i < NUNITS; i++) {
        char bin[PATH_MAX];
        snprintf(bin, sizeof(bin), "%s/bin/%s", getenv("VIGIL_TEST_BUILD"), k_units[i]);
        if (access(bin, X_OK) != 0) {
            /* not built in this tree yet: the unit is checked with a stand-in */
            printf("test_systemd: %s is not built; %s.service verified with /bin/true\n", bin,
                   k_units[i]);
            snprintf(bin, sizeof(bin), "/bin/true");
        }
        rewrite_unit(k_units[i], dir, bin);
        snprintf(paths[i], sizeof(paths[i]), "%s/%s.service", dir, k_units[i]);
        argv[3 + i] = paths[i];
    }
    argv[3 + NUNITS] = NULL;
    char log[PATH_MAX];
    snprintf(log, sizeof(log), "%s/verify.out", dir);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    ck_assert_int_eq(posix_spawn(&pid, tool, &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    int rc = pt_wait_exit(pid);
    char *out = pt_slurp(log);
    ck_assert_msg(rc == 0 && out[0] == '\0', "systemd-analyze verify exited %d:\n%s", rc, out);
    printf("test_systemd: systemd-analyze verify: %zu units, no message\n", NUNITS);
    free(out);

    /* and it does catch a misspelt key */
    char *t = unit_text("vigil-collector");
    char *at = strstr(t, "\nNoNewPrivileges=yes");
    ck_assert_ptr_nonnull(at);
    memcpy(at + 1, "NoNewPrivilegex", 15);
    vt_write_file(dir, "vigil-typo.service", t, strlen(t));
    free(t);
    snprintf(paths[0], sizeof(paths[0]), "%s/vigil-typo.service", dir);
    char *argv2[] = {tool, "verify", "--man=no", paths[0], NULL};
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    ck_assert_int_eq(posix_spawn(&pid, tool, &fa, NULL, argv2, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    pt_wait_exit(pid);
    out = pt_slurp(log);
    ck_assert_msg(strstr(out, "Unknown key name 'NoNewPrivilegex'") ||
                      strstr(out, "Unknown key 'NoNewPrivilegex'"),
                  "%s", out);
    free(out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("systemd");
    TCase *tc = tcase_create("units");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, units_are_notify_and_hardened);
    tcase_add_test(tc, units_pass_systemd_analyze_verify);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
