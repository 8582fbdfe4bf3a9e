/* The exec collector with real programs (/bin/cat, /usr/bin/printf,
 * /bin/sleep, /usr/bin/timeout, /usr/bin/env): parsing, timeouts that kill
 * the whole process group, a scrubbed environment, bounded output. */
#include "collector_test.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Counts live (non-zombie) processes whose command line contains `needle`. */
static int live_with_arg(const char *needle)
{
    DIR *d = opendir("/proc");
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        char path[300], buf[4096];
        snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[len] = '\0';
        char *rp = strrchr(buf, ')');
        if (!rp || rp[2] == 'Z' || rp[2] == 'X')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
        f = fopen(path, "r");
        if (!f)
            continue;
        len = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        for (size_t i = 0; i < len; i++)
            if (buf[i] == '\0')
                buf[i] = ' ';
        buf[len] = '\0';
        n += strstr(buf, needle) != NULL;
    }
    closedir(d);
    return n;
}

START_TEST(exec_parses_prometheus_and_plain_lines)
{
    const char *dir = fresh_dir();
    const char *text = "# HELP queue_depth Items waiting.\n"
                       "# TYPE queue_depth gauge\n"
                       "queue_depth{queue=\"mail\",prio=\"high\"} 12 1700000000000\n"
                       "queue_depth{queue=\"a \\\"quoted\\\" \\\\ name\\n\",} 3.5\n"
                       "plain_value 42\n"
                       "  indented_value\t-1e3  \r\n"
                       "\n"
                       "spaced { k = \"v\" } 7\n"
                       "empty_labels{} 1\n"
                       "this is garbage\n"
                       "bad-name 1\n"
                       "no_value\n"
                       "not_a_number abc\n"
                       "infinite +Inf\n"
                       "nan_value NaN\n"
                       "unclosed{a=\"b\" 1\n"
                       "bad_escape{a=\"\\q\"} 1\n"
                       "dup_label{a=\"1\",a=\"2\"} 1\n"
                       "trailing 1 2 3\n"
                       "bad_ts 1 12x\n"
                       "last_line_without_newline 9";
    const char *file = vt_write_file(dir, "out.prom", text, strlen(text));
    char flow[512];
    snprintf(flow, sizeof(flow), "{type: exec, name: job, argv: [/bin/cat, \"%s\"], timeout: 5s}",
             file);
    vigil_collector *c = must(flow, NULL);
    collect(c, 77);
    const vigil_metric *m = find(g_batch, "queue_depth", "queue", "mail");
    ck_assert_ptr_nonnull(m);
    ck_assert_double_eq(m->value, 12);
    ck_assert_str_eq(tag_of(m, "prio"), "high");
    ck_assert_int_eq(m->ts_ms, 77); /* the program's timestamp is not used */
    ck_assert_double_eq(value_of(g_batch, "queue_depth", "queue", "a \"quoted\" \\ name\n"), 3.5);
    ck_assert_double_eq(value_of(g_batch, "plain_value", NULL, NULL), 42);
    ck_assert_double_eq(value_of(g_batch, "indented_value", NULL, NULL), -1000);
    ck_assert_double_eq(value_of(g_batch, "spaced", "k", "v"), 7);
    ck_assert_double_eq(value_of(g_batch, "empty_labels", NULL, NULL), 1);
    ck_assert_double_eq(value_of(g_batch, "last_line_without_newline", NULL, NULL), 9);
    ck_assert_double_eq(value_of(g_batch, "exec_up", "check", "job"), 1);
    ck_assert_double_eq(value_of(g_batch, "exec_exit_code", "check", "job"), 0);
    ck_assert(value_of(g_batch, "exec_duration_ms", "check", "job") >= 0);
    /* garbage, bad-name, no_value, not_a_number, +Inf, NaN, unclosed,
     * bad_escape, dup_label, trailing, bad_ts */
    ck_assert_double_eq(value_of(g_batch, "exec_parse_errors", "check", "job"), 11);
    ck_assert_uint_eq(vigil_batch_count(g_batch), 7 + 4);
    vigil_collector_free(c);

    /* max_metrics: the rest is counted as errors. */
    snprintf(flow, sizeof(flow), "{type: exec, argv: [/bin/cat, \"%s\"], max_metrics: 2}", file);
    c = must(flow, NULL);
    collect(c, 1);
    ck_assert_double_eq(value_of(g_batch, "exec_parse_errors", "check", "/bin/cat"), 11 + 5);
    ck_assert_uint_eq(vigil_batch_count(g_batch), 2 + 4);
    vigil_collector_free(c);
}
END_TEST

START_TEST(exec_garbage_and_exit_codes)
{
    vigil_collector *c = must("{type: exec, name: g, argv: [/usr/bin/printf, "
                              "\"ok_metric 1\\nthis line is garbage\\n%s\\n\", \"\\x01\\x02\"]}",
                              NULL);
    collect(c, 1);
    ck_assert_double_eq(value_of(g_batch, "ok_metric", NULL, NULL), 1);
    ck_assert_double_eq(value_of(g_batch, "exec_parse_errors", "check", "g"), 2);
    ck_assert_double_eq(value_of(g_batch, "exec_up", "check", "g"), 1);
    vigil_collector_free(c);
    c = must("{type: exec, name: f, argv: [/bin/false]}", NULL);
    collect(c, 1);
    ck_assert_double_eq(value_of(g_batch, "exec_up", "check", "f"), 0);
    ck_assert_double_eq(value_of(g_batch, "exec_exit_code", "check", "f"), 1);
    ck_assert_int_eq(vigil_collector_failures(c), 0); /* a check that says "down" is no failure */
    vigil_collector_free(c);
    /* Killed by a signal: 128 + N. timeout(1) with --signal=KILL kills its
     * child and then itself with the same signal. */
    c = must("{type: exec, name: k, argv: [/usr/bin/timeout, --signal=KILL, 0.05, /bin/sleep, 5]}",
             NULL);
    collect(c, 1);
    ck_assert_double_eq(value_of(g_batch, "exec_exit_code", "check", "k"), 128 + 9);
    vigil_collector_free(c);
}
END_TEST

START_TEST(exec_timeout_kills_the_program)
{
    vigil_collector *c =
        must("{type: exec, name: slow, argv: [/bin/sleep, 100], timeout: 200ms}", NULL);
    collect(c, 1);
    ck_assert_uint_eq(vigil_batch_count(g_batch), 1);
    const vigil_metric *m = vigil_batch_get(g_batch, 0);
    ck_assert_str_eq(m->name, VIGIL_COLLECTOR_ERROR_METRIC);
    ck_assert_str_eq(m->error, "/bin/sleep ran longer than its timeout of 200 ms and was killed");
    ck_assert_int_eq(vigil_collector_last_status(c), VIGIL_ETIMEOUT);
    /* The child was killed and reaped: this process has no child left. */
    errno = 0;
    ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1);
    ck_assert_int_eq(errno, ECHILD);
    vigil_collector_free(c);
}
END_TEST

START_TEST(exec_timeout_kills_the_whole_group)
{
    /* timeout(1) runs sleep as its child: killing timeout alone would leave
     * the sleep behind; the collector kills the process group. */
    char arg[32], flow[256];
    snprintf(arg, sizeof(arg), "99%d.25", (int)getpid() % 100000);
    snprintf(flow, sizeof(flow),
             "{type: exec, argv: [/usr/bin/timeout, 100, /bin/sleep, \"%s\"], timeout: 300ms}",
             arg);
    vigil_collector *c = must(flow, NULL);
    collect(c, 1);
    ck_assert_int_eq(vigil_collector_last_status(c), VIGIL_ETIMEOUT);
    /* SIGKILL is delivered at once; the orphaned grandchild is reaped by init. */
    int n = 1;
    for (int i = 0; i < 200 && n > 0; i++) {
        n = live_with_arg(arg);
        if (n)
            sleep_ms(5);
    }
    ck_assert_int_eq(n, 0);
    vigil_collector_free(c);
}
END_TEST

START_TEST(exec_environment_is_scrubbed)
{
    setenv("VIGIL_TEST_SECRET", "s3cret", 1);
    vigil_collector *c =
        must("{type: exec, name: e, argv: [/usr/bin/printenv, VIGIL_TEST_SECRET]}", NULL);
    collect(c, 1);
    ck_assert_double_eq(value_of(g_batch, "exec_exit_code", "check", "e"), 1); /* not set */
    vigil_collector_free(c);
    c = must("{type: exec, name: e, argv: [/usr/bin/printenv, HOME]}", NULL);
    collect(c, 1);
    ck_assert_double_eq(value_of(g_batch, "exec_exit_code", "check", "e"), 1);
    vigil_collector_free(c);
    /* Only PATH, LC_ALL and the configured variables: three unparsable lines. */
    c = must("{type: exec, name: e, argv: [/usr/bin/env], env: {FOO: bar}}", NULL);
    collect(c, 1);
    ck_assert_double_eq(value_of(g_batch, "exec_parse_errors", "check", "e"), 3);
    vigil_collector_free(c);
    c = must("{type: exec, name: e, argv: [/usr/bin/printenv, FOO], env: {FOO: \"x 1\"}}", NULL);
    collect(c, 1);
    ck_assert_double_eq(value_of(g_batch, "x", NULL, NULL), 1); /* its output, parsed */
    vigil_collector_free(c);
    c = must("{type: exec, name: e, argv: [/usr/bin/printenv, PATH], env: {PATH: /opt/x}}", NULL);
    collect(c, 1);
    ck_assert_double_eq(value_of(g_batch, "exec_parse_errors", "check", "e"), 1); /* "/opt/x" */
    vigil_collector_free(c);
}
END_TEST

START_TEST(exec_output_is_bounded)
{
    const char *dir = fresh_dir();
    size_t lines = 50000;
    char *big = malloc(lines * 4);
    for (size_t i = 0; i < lines; i++)
        memcpy(big + 4 * i, "m 1\n", 4);
    const char *file = vt_write_file(dir, "big", big, lines * 4);
    free(big);
    char flow[512];
    snprintf(flow, sizeof(flow),
             "{type: exec, name: b, argv: [/bin/cat, \"%s\"], max_output: 4KiB, "
             "max_metrics: 100000}",
             file);
    vigil_collector *c = must(flow, NULL);
    collect(c, 1);
    /* 4096 bytes kept = 1024 whole lines; the program was not blocked. */
    ck_assert_uint_eq(count_named(g_batch, "m"), 1024);
    ck_assert_double_eq(value_of(g_batch, "exec_up", "check", "b"), 1);
    vigil_collector_free(c);
    /* A cut in the middle of a line drops that line, not the program. */
    snprintf(flow, sizeof(flow),
             "{type: exec, argv: [/bin/cat, \"%s\"], max_output: 4094, max_metrics: 5000}", file);
    c = must(flow, NULL);
    collect(c, 1);
    ck_assert_uint_eq(count_named(g_batch, "m"), 1023);
    ck_assert_double_eq(value_of(g_batch, "exec_parse_errors", NULL, NULL), 0);
    vigil_collector_free(c);
}
END_TEST

START_TEST(exec_config_errors)
{
    assert_bad("{type: exec}", VIGIL_EMISSING, "collectors[0]: missing required key \"argv\"");
    assert_bad("{type: exec, argv: []}", VIGIL_EVALUE,
               "collectors[0].argv: argv needs at least the program path");
    assert_bad("{type: exec, argv: /bin/true}", VIGIL_ETYPE, "collectors[0].argv");
    assert_bad("{type: exec, argv: [bin/true]}", VIGIL_EVALUE,
               "collectors[0].argv[0]: the program must be an absolute path");
    assert_bad("{type: exec, argv: [true]}", VIGIL_EVALUE, "PATH is never searched");
    assert_bad("{type: exec, argv: [/bin/../bin/true]}", VIGIL_EVALUE,
               "must not contain . or .. components");
    assert_bad("{type: exec, argv: [/nonexistent/prog]}", VIGIL_ENOTFOUND,
               "collectors[0].argv[0]: program /nonexistent/prog: No such file or directory");
    const char *dir = fresh_dir();
    const char *data = vt_write_file(dir, "data", "x\n", 2);
    ck_assert_int_eq(chmod(data, 0644), 0);
    char flow[700];
    snprintf(flow, sizeof(flow), "{type: exec, argv: [\"%s\"]}", data);
    assert_bad(flow, VIGIL_EPERM, "is not an executable regular file");
    ck_assert_int_eq(chmod(data, 0777), 0);
    assert_bad(flow, VIGIL_EPERM, "is writable by group or others");
    assert_bad("{type: exec, argv: [/bin]}", VIGIL_EPERM, "is not an executable regular file");
    assert_bad("{type: exec, argv: [/bin/true, [x]]}", VIGIL_ETYPE, "collectors[0].argv[1]");
    assert_bad("{type: exec, argv: [/bin/true], timeout: 0}", VIGIL_ERANGE,
               "timeout must be positive");
    assert_bad("{type: exec, argv: [/bin/true], timeout: forever}", VIGIL_EVALUE,
               "collectors[0].timeout");
    assert_bad("{type: exec, argv: [/bin/true], max_output: 0}", VIGIL_ERANGE,
               "max_output must be between 1 byte and 64MiB");
    assert_bad("{type: exec, argv: [/bin/true], max_metrics: -1}", VIGIL_ERANGE,
               "max_metrics must be between 0 and 100000");
    assert_bad("{type: exec, argv: [/bin/true], env: {\"BAD-NAME\": x}}", VIGIL_ENAME,
               "invalid environment variable name");
    assert_bad("{type: exec, argv: [/bin/true], env: [A]}", VIGIL_ETYPE, "collectors[0].env");
    assert_bad("{type: exec, argv: [/bin/true], shell: true}", VIGIL_EUNKNOWNKEY,
               "collectors[0].shell: unknown key");

    /* The allow-list of the options: exact paths and directories. */
    const char *const allow[] = {"/usr/bin/", "/bin/true", NULL};
    vigil_collector_options o = quiet_opts();
    o.exec_allow = allow;
    vigil_collector *c = NULL;
    ck_assert_int_eq(make_opts(&c, "{type: exec, argv: [/bin/false]}", &o), VIGIL_EPERM);
    vt_assert_error(VIGIL_EPERM, "t.yaml:2:");
    vt_assert_error(VIGIL_EPERM, "collectors[0].argv[0]: program /bin/false is not in the exec "
                                 "allow-list");
    c = must("{type: exec, argv: [/bin/true]}", &o);
    vigil_collector_free(c);
    c = must("{type: exec, argv: [/usr/bin/env]}", &o);
    vigil_collector_free(c);
}
END_TEST

START_TEST(exec_program_removed_after_load)
{
    const char *dir = fresh_dir();
    char prog[600], flow[700];
    snprintf(prog, sizeof(prog), "%s/true", dir);
    FILE *in = fopen("/bin/true", "rb");
    FILE *out = fopen(prog, "wb");
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
    fclose(in);
    fclose(out);
    ck_assert_int_eq(chmod(prog, 0755), 0);
    snprintf(flow, sizeof(flow), "{type: exec, argv: [\"%s\"]}", prog);
    vigil_collector *c = must(flow, NULL);
    collect(c, 1);
    ck_assert_double_eq(value_of(g_batch, "exec_up", NULL, NULL), 1);
    unlink(prog);
    collect(c, 2);
    const vigil_metric *m = find(g_batch, VIGIL_COLLECTOR_ERROR_METRIC, NULL, NULL);
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_nonnull(strstr(m->error, "cannot execute"));
    ck_assert_ptr_nonnull(strstr(m->error, "No such file or directory"));
    ck_assert_int_eq(vigil_collector_last_status(c), VIGIL_ECHILD);
    vigil_collector_free(c);
}
END_TEST

START_TEST(exec_with_sigchld_ignored)
{
    /* With SIGCHLD ignored the kernel reaps children itself; the collector
     * must still finish without running into its timeout. */
    signal(SIGCHLD, SIG_IGN);
    vigil_collector *c =
        must("{type: exec, argv: [/usr/bin/printf, \"v 5\\n\"], timeout: 20s}", NULL);
    collect(c, 1);
    ck_assert_double_eq(value_of(g_batch, "v", NULL, NULL), 5);
    ck_assert(value_of(g_batch, "exec_duration_ms", NULL, NULL) < 20000);
    vigil_collector_free(c);
    signal(SIGCHLD, SIG_DFL);
}
END_TEST

static Suite *exec_suite(void)
{
    Suite *s = suite_create("collector_exec");
    TCase *tc = tcase_create("exec");
    tcase_add_checked_fixture(tc, coll_setup, coll_teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, exec_parses_prometheus_and_plain_lines);
    tcase_add_test(tc, exec_garbage_and_exit_codes);
    tcase_add_test(tc, exec_timeout_kills_the_program);
    tcase_add_test(tc, exec_timeout_kills_the_whole_group);
    tcase_add_test(tc, exec_environment_is_scrubbed);
    tcase_add_test(tc, exec_output_is_bounded);
    tcase_add_test(tc, exec_config_errors);
    tcase_add_test(tc, exec_program_removed_after_load);
    tcase_add_test(tc, exec_with_sigchld_ignored);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(exec_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
