/* The one child-process runner (lib/proc) with real child processes: argv is
 * never interpreted, the environment and PATH are fixed, the parent's
 * descriptors are closed, the whole process group goes at the deadline and
 * after the exit, output is capped and marked, no zombie is left, and the
 * program check refuses a group-writable program for every user of the
 * runner (the runner itself, the exec collector, the exec, process and
 * systemd actions). */
#include "action_testutil.h"
#include "testutil.h"

#include "proc/proc.h"
#include "vigil/collector.h"

#include <signal.h>
#include <sys/wait.h>
#include <time.h>

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* A spec that captures stdout and stderr with a generous deadline. */
static vigil__proc_spec spec_of(const char *const *argv)
{
    vigil__proc_spec sp = {
        argv, NULL, NULL, NULL, -1, false, false, 1 << 20, vigil__monotonic_ms() + 20000,
        NULL, NULL};
    return sp;
}

/* Runs argv and returns the result; the run itself must succeed. */
static vigil__proc_result run_ok(const vigil__proc_spec *sp)
{
    vigil__proc_result r;
    memset(&r, 0, sizeof(r));
    int rc = vigil__proc_run(sp, &r);
    ck_assert_msg(rc == VIGIL_OK, "run %s: %d %s", sp->argv[0], rc, vigil_error_last()->message);
    return r;
}

static const char *out_of(const vigil__proc_result *r)
{
    return r->output.ptr ? r->output.ptr : "";
}

/* This process has no child left, running or zombie. */
static void assert_no_child(void)
{
    errno = 0;
    ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1);
    ck_assert_int_eq(errno, ECHILD);
}

/* True once `pid` is gone or a zombie (killed; its reaper is init). */
static bool gone(pid_t pid)
{
    for (int i = 0; i < 400; i++) {
        char st = at_proc_state(pid);
        if (st == 0 || st == 'Z' || st == 'X')
            return true;
        sleep_ms(5);
    }
    return false;
}

/* The helper leave_child copied into a fresh directory. */
static const char *leave_child(void)
{
    static char path[700];
    snprintf(path, sizeof(path), "%s/leave_child", vt_tmpdir());
    at_copy_helper("leave_child", path);
    return path;
}

/* /bin/true copied into a fresh directory with `mode`. */
static const char *program_with_mode(mode_t mode)
{
    static char path[700];
    snprintf(path, sizeof(path), "%s/prog", vt_tmpdir());
    at_copy_exe("/bin/true", path);
    ck_assert_int_eq(chmod(path, mode), 0);
    return path;
}

START_TEST(argv_is_never_interpreted)
{
    const char *dir = vt_tmpdir();
    char touch[800], redirect[800], marker[700];
    snprintf(marker, sizeof(marker), "%s/pwned", dir);
    snprintf(touch, sizeof(touch), "; touch %s", marker);
    snprintf(redirect, sizeof(redirect), "> %s", marker);
    const char *argv[] = {"/bin/echo", "a  b", "$(id)",  "`id`",  touch,
                          "|",         "*",    redirect, "$HOME", NULL};
    vigil__proc_spec sp = spec_of(argv);
    vigil__proc_result r = run_ok(&sp);
    char want[2048];
    snprintf(want, sizeof(want), "a  b $(id) `id` %s | * %s $HOME\n", touch, redirect);
    ck_assert_str_eq(out_of(&r), want);
    ck_assert_int_eq(r.how, VIGIL__PROC_EXITED);
    ck_assert_int_eq(r.exit_code, 0);
    ck_assert_int_ne(access(marker, F_OK), 0);
    vigil_buf_dispose(&r.output);
    assert_no_child();
}
END_TEST

START_TEST(environment_is_exactly_the_given_one_with_the_fixed_path)
{
    setenv("VIGIL_T_LEAK", "secret", 1);
    const char *argv[] = {"/usr/bin/env", NULL};
    vigil__proc_spec sp = spec_of(argv);
    vigil__proc_result r = run_ok(&sp);
    ck_assert_str_eq(out_of(&r), "PATH=/usr/sbin:/usr/bin:/sbin:/bin\n");
    vigil__buf_clear(&r.output);

    const char *env[] = {"FOO=bar", NULL};
    sp.envp = env;
    vigil_buf_dispose(&r.output);
    r = run_ok(&sp);
    ck_assert_str_eq(out_of(&r), "PATH=/usr/sbin:/usr/bin:/sbin:/bin\nFOO=bar\n");
    vigil_buf_dispose(&r.output);

    /* a PATH the caller sets explicitly is kept (the exec collector's env) */
    const char *env2[] = {"PATH=/opt/x", NULL};
    sp.envp = env2;
    r = run_ok(&sp);
    ck_assert_str_eq(out_of(&r), "PATH=/opt/x\n");
    vigil_buf_dispose(&r.output);
    unsetenv("VIGIL_T_LEAK");
}
END_TEST

START_TEST(parent_descriptors_are_not_inherited)
{
    int fd = open("/dev/null", O_RDONLY); /* no O_CLOEXEC, on purpose */
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(dup2(fd, 77), 77);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    const char *argv[] = {"/bin/ls", "/proc/self/fd", NULL};
    vigil__proc_spec sp = spec_of(argv);
    vigil__proc_result r = run_ok(&sp);
    /* stdin, stdout, stderr and the directory ls reads: nothing else */
    ck_assert_str_eq(out_of(&r), "0\n1\n2\n3\n");
    vigil_buf_dispose(&r.output);

    const char *argv2[] = {"/usr/bin/readlink", "/proc/self/fd/0", NULL};
    sp = spec_of(argv2);
    r = run_ok(&sp);
    ck_assert_str_eq(out_of(&r), "/dev/null\n");
    vigil_buf_dispose(&r.output);
    close(fd);
    close(77);
    close(p[0]);
    close(p[1]);
}
END_TEST

START_TEST(child_leads_its_own_group_and_starts_in_root)
{
    const char *argv[] = {"/bin/pwd", NULL};
    vigil__proc_spec sp = spec_of(argv);
    vigil__proc_result r = run_ok(&sp);
    ck_assert_str_eq(out_of(&r), "/\n");
    vigil_buf_dispose(&r.output);

    /* start-long-running: output to the caller's descriptor, own group */
    char log[700];
    snprintf(log, sizeof(log), "%s/log", vt_tmpdir());
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    ck_assert_int_ge(fd, 3);
    const char *argv2[] = {"/bin/sleep", "1000", NULL};
    sp = spec_of(argv2);
    sp.out_fd = fd;
    pid_t pid = -1;
    int rd = 5;
    ck_assert_int_eq(vigil__proc_start(&sp, &pid, &rd), VIGIL_OK);
    ck_assert_int_eq(rd, -1);
    ck_assert_int_gt(pid, 0);
    ck_assert_int_eq(getpgid(pid), pid);
    ck_assert_int_ne(getpgid(pid), getpgid(0));
    vigil__proc_statinfo st;
    ck_assert_int_eq(vigil__proc_stat(pid, &st), VIGIL_OK);
    ck_assert_int_eq(st.pgrp, pid);
    ck_assert(vigil__proc_alive(pid));
    int pidfd = vigil__proc_pidfd_open(pid);
    ck_assert_int_eq(vigil__proc_pidfd_signal(pidfd, pid, SIGTERM), 0);
    int status;
    ck_assert(vigil__proc_wait_gone(pid, pidfd, vigil__monotonic_ms() + 20000, &status));
    ck_assert(WIFSIGNALED(status));
    ck_assert_int_eq(WTERMSIG(status), SIGTERM);
    if (pidfd >= 0)
        close(pidfd);

    const char *argv3[] = {"/bin/echo", "to the log", NULL};
    sp = spec_of(argv3);
    sp.out_fd = fd;
    ck_assert_int_eq(vigil__proc_start(&sp, &pid, NULL), VIGIL_OK);
    ck_assert(vigil__proc_wait_gone(pid, -1, vigil__monotonic_ms() + 20000, &status));
    ck_assert(WIFEXITED(status));
    close(fd);
    char *text = at_read_file(log);
    ck_assert_str_eq(text, "to the log\n");
    free(text);

    sp.out_fd = 2;
    ck_assert_int_eq(vigil__proc_start(&sp, &pid, NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "output descriptor 2 is reserved");
    assert_no_child();
}
END_TEST

START_TEST(deadline_kills_the_whole_group)
{
    const char *argv[] = {leave_child(), "stay", NULL};
    vigil__proc_spec sp = spec_of(argv);
    sp.deadline_ms = vigil__monotonic_ms() + 300;
    vigil__proc_result r = run_ok(&sp);
    ck_assert_int_eq(r.how, VIGIL__PROC_TIMEOUT);
    ck_assert_int_eq(r.exit_code, -1);
    int grandchild = atoi(out_of(&r));
    ck_assert_int_gt(grandchild, 1);
    ck_assert_msg(gone(grandchild), "grandchild %d survived the deadline", grandchild);
    vigil_buf_dispose(&r.output);
    assert_no_child();
}
END_TEST

START_TEST(exit_kills_what_the_program_left_behind)
{
    const char *argv[] = {leave_child(), "exit", NULL};
    vigil__proc_spec sp = spec_of(argv);
    vigil__proc_result r = run_ok(&sp);
    ck_assert_int_eq(r.how, VIGIL__PROC_EXITED);
    ck_assert_int_eq(r.exit_code, 0);
    int grandchild = atoi(out_of(&r));
    ck_assert_int_gt(grandchild, 1);
    ck_assert_msg(gone(grandchild), "grandchild %d survived its parent's exit", grandchild);
    vigil_buf_dispose(&r.output);

    /* until_eof (the exec collector): the output is still open, so the run
     * lasts until the deadline, and then the group goes */
    sp.until_eof = true;
    sp.deadline_ms = vigil__monotonic_ms() + 300;
    r = run_ok(&sp);
    ck_assert_int_eq(r.how, VIGIL__PROC_TIMEOUT);
    grandchild = atoi(out_of(&r));
    ck_assert_msg(gone(grandchild), "grandchild %d survived the deadline", grandchild);
    vigil_buf_dispose(&r.output);
    assert_no_child();
}
END_TEST

START_TEST(output_over_the_cap_is_truncated_and_marked)
{
    const char *argv[] = {"/usr/bin/seq", "1", "200000", NULL};
    vigil__proc_spec sp = spec_of(argv);
    sp.max_output = 10;
    vigil__proc_result r = run_ok(&sp);
    /* the rest was drained: seq was not blocked and exited normally */
    ck_assert_int_eq(r.how, VIGIL__PROC_EXITED);
    ck_assert_int_eq(r.exit_code, 0);
    ck_assert_uint_eq(r.output.size, 10);
    ck_assert_int_eq(memcmp(r.output.ptr, "1\n2\n3\n4\n5\n", 10), 0);
    ck_assert_int_eq(r.truncated, 1);
    vigil_buf_dispose(&r.output);

    sp.max_output = 1 << 20;
    const char *small[] = {"/usr/bin/seq", "1", "3", NULL};
    sp.argv = small;
    r = run_ok(&sp);
    ck_assert_str_eq(out_of(&r), "1\n2\n3\n");
    ck_assert_int_eq(r.truncated, 0);
    vigil_buf_dispose(&r.output);

    /* stderr is captured with stdout, or sent to /dev/null */
    const char *ls[] = {"/bin/ls", "/nonexistent-vigil", NULL};
    sp.argv = ls;
    r = run_ok(&sp);
    ck_assert_ptr_nonnull(strstr(out_of(&r), "nonexistent-vigil"));
    ck_assert_int_eq(r.exit_code, 2);
    vigil_buf_dispose(&r.output);
    sp.stderr_to_null = true;
    r = run_ok(&sp);
    ck_assert_str_eq(out_of(&r), "");
    ck_assert_int_eq(r.exit_code, 2);
    vigil_buf_dispose(&r.output);
    assert_no_child();
}
END_TEST

START_TEST(failures_are_reported_and_reaped)
{
    const char *argv[] = {"/bin/pwd", NULL};
    vigil__proc_spec sp = spec_of(argv);
    sp.workdir = "/nonexistent-vigil";
    vigil__proc_result r;
    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(vigil__proc_run(&sp, &r), VIGIL_ECHILD);
    vt_assert_error(VIGIL_ECHILD, "cannot execute /bin/pwd: changing directory to "
                                  "/nonexistent-vigil: No such file or directory");
    assert_no_child();

    const char *missing[] = {"/nonexistent-vigil/prog", NULL};
    sp = spec_of(missing);
    ck_assert_int_eq(vigil__proc_run(&sp, &r), VIGIL_ECHILD);
    vt_assert_error(VIGIL_ECHILD,
                    "cannot execute /nonexistent-vigil/prog: No such file or directory");
    const char *relative[] = {"bin/true", NULL};
    sp = spec_of(relative);
    ck_assert_int_eq(vigil__proc_run(&sp, &r), VIGIL_ECHILD);
    vt_assert_error(VIGIL_ECHILD,
                    "cannot execute bin/true: it is not an absolute path (PATH is never searched)");
    const char *dir[] = {"/bin", NULL};
    sp = spec_of(dir);
    ck_assert_int_eq(vigil__proc_run(&sp, &r), VIGIL_ECHILD);
    vt_assert_error(VIGIL_ECHILD, "cannot execute /bin: it is not an executable regular file");
    ck_assert_int_eq(vigil__proc_run(NULL, &r), VIGIL_EINVAL);
    ck_assert_ptr_null(r.output.ptr);

    /* exit codes and signals */
    const char *f[] = {"/bin/false", NULL};
    sp = spec_of(f);
    r = run_ok(&sp);
    ck_assert_int_eq(r.how, VIGIL__PROC_EXITED);
    ck_assert_int_eq(r.exit_code, 1);
    const char *k[] = {"/usr/bin/timeout", "--signal=KILL", "0.05", "/bin/sleep", "5", NULL};
    sp = spec_of(k);
    r = run_ok(&sp);
    ck_assert_int_eq(r.how, VIGIL__PROC_SIGNALED);
    ck_assert_int_eq(r.term_signal, SIGKILL);
    ck_assert_int_eq(r.exit_code, -1);
    vigil_buf_dispose(&r.output);
    assert_no_child();
}
END_TEST

static int cancel_at_once(void *payload)
{
    return ++*(int *)payload > 1;
}

START_TEST(cancel_and_sigchld_ignored)
{
    int calls = 0;
    const char *argv[] = {"/bin/sleep", "1000", NULL};
    vigil__proc_spec sp = spec_of(argv);
    sp.cancel = cancel_at_once;
    sp.cancel_payload = &calls;
    vigil__proc_result r = run_ok(&sp);
    ck_assert_int_eq(r.how, VIGIL__PROC_CANCELLED);
    ck_assert_int_ge(calls, 2);
    assert_no_child();

    /* With SIGCHLD ignored the kernel reaps the child: the status is lost,
     * and the run still ends when the program does. */
    signal(SIGCHLD, SIG_IGN);
    const char *t[] = {"/bin/echo", "x", NULL};
    sp = spec_of(t);
    r = run_ok(&sp);
    signal(SIGCHLD, SIG_DFL);
    ck_assert_int_eq(r.how, VIGIL__PROC_LOST);
    ck_assert_str_eq(out_of(&r), "x\n");
    vigil_buf_dispose(&r.output);
    assert_no_child();
}
END_TEST

START_TEST(program_check_rules)
{
    char why[256];
    ck_assert_int_eq(vigil__proc_check_program("/bin/true", why, sizeof(why)), VIGIL_OK);
    const char *p = program_with_mode(0755);
    ck_assert_int_eq(vigil__proc_check_program(p, why, sizeof(why)), VIGIL_OK);
    p = program_with_mode(0775);
    ck_assert_int_eq(vigil__proc_check_program(p, why, sizeof(why)), VIGIL_EPERM);
    ck_assert_str_eq(why, "it is writable by group or others (mode 0775)");
    p = program_with_mode(0757);
    ck_assert_int_eq(vigil__proc_check_program(p, why, sizeof(why)), VIGIL_EPERM);
    ck_assert_str_eq(why, "it is writable by group or others (mode 0757)");
    p = program_with_mode(0644);
    ck_assert_int_eq(vigil__proc_check_program(p, why, sizeof(why)), VIGIL_EPERM);
    ck_assert_str_eq(why, "it is not an executable regular file");
    ck_assert_int_eq(vigil__proc_check_program("/nonexistent-vigil", why, sizeof(why)),
                     VIGIL_ENOTFOUND);
    ck_assert_str_eq(why, "No such file or directory");
    ck_assert_int_eq(vigil__proc_check_program("true", why, sizeof(why)), VIGIL_EVALUE);
    ck_assert_str_eq(why, "it is not an absolute path (PATH is never searched)");
    if (geteuid() == 0) { /* a program owned by someone else */
        p = program_with_mode(0755);
        ck_assert_int_eq(chown(p, 65534, 65534), 0);
        ck_assert_int_eq(vigil__proc_check_program(p, why, sizeof(why)), VIGIL_EPERM);
        ck_assert_str_eq(why, "it is owned by uid 65534, neither root nor the user this process "
                              "runs as (uid 0)");
    }
}
END_TEST

/* One refusal message for every user of the runner. */
static const char *refusal(const char *prog)
{
    static char msg[1024];
    snprintf(msg, sizeof(msg), "cannot execute %s: it is writable by group or others (mode 0775)",
             prog);
    return msg;
}

START_TEST(group_writable_program_is_refused_by_the_runner)
{
    const char *prog = program_with_mode(0775);
    const char *argv[] = {prog, NULL};
    vigil__proc_spec sp = spec_of(argv);
    vigil__proc_result r;
    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(vigil__proc_run(&sp, &r), VIGIL_ECHILD);
    vt_assert_error(VIGIL_ECHILD, refusal(prog));
    pid_t pid = -1;
    ck_assert_int_eq(vigil__proc_start(&sp, &pid, NULL), VIGIL_ECHILD);
    ck_assert_int_eq(pid, -1);
    assert_no_child();
}
END_TEST

START_TEST(group_writable_program_is_refused_by_the_collector)
{
    const char *prog = program_with_mode(0755);
    char yaml[1024];
    snprintf(yaml, sizeof(yaml), "collectors:\n  - {type: exec, argv: ['%s']}\n", prog);
    vigil_config *cfg = NULL;
    ck_assert_int_eq(vigil_config_load_string(&cfg, yaml, strlen(yaml), "t.yaml", NULL), VIGIL_OK);
    const vigil_config_node *node =
        vigil_config_node_at(vigil_config_node_get(vigil_config_root(cfg, 0), "collectors"), 0);
    vigil_collector_registry *reg = NULL;
    ck_assert_int_eq(vigil_collector_registry_new(&reg), VIGIL_OK);
    ck_assert_int_eq(vigil_collector_registry_add_builtins(reg), VIGIL_OK);
    vigil_collector_options o = VIGIL_COLLECTOR_OPTIONS_INIT;
    o.logger.min_level = VIGIL_LOG_OFF;
    vigil_collector *c = NULL;
    ck_assert_int_eq(vigil_collector_new(&c, reg, node, &o), VIGIL_OK);

    /* made group-writable after the load: refused at the next run */
    ck_assert_int_eq(chmod(prog, 0775), 0);
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    ck_assert_int_eq(vigil_collector_collect(c, b, 1, NULL), VIGIL_OK);
    ck_assert_int_eq(vigil_collector_last_status(c), VIGIL_ECHILD);
    const vigil_metric *m = NULL;
    for (size_t i = 0; i < vigil_batch_count(b) && !m; i++)
        if (strcmp(vigil_batch_get(b, i)->name, VIGIL_COLLECTOR_ERROR_METRIC) == 0)
            m = vigil_batch_get(b, i);
    ck_assert_ptr_nonnull(m);
    ck_assert_str_eq(m->error, refusal(prog));
    vigil_collector_free(c);

    /* and at load */
    c = NULL;
    ck_assert_int_eq(vigil_collector_new(&c, reg, node, &o), VIGIL_EPERM);
    ck_assert_ptr_null(c);
    char want[1024];
    snprintf(want, sizeof(want),
             "t.yaml:2:25: collectors[0].argv[0]: program %s: it is writable by group or "
             "others (mode 0775)",
             prog);
    ck_assert_str_eq(vigil_error_last()->message, want);
    vigil_batch_free(b);
    vigil_collector_registry_free(reg);
    vigil_config_free(cfg);
    assert_no_child();
}
END_TEST

START_TEST(group_writable_program_is_refused_by_the_actions)
{
    const char *prog = program_with_mode(0775);
    const char *dir = vt_tmpdir();
    char yaml[4096];
    snprintf(yaml, sizeof(yaml),
             "actions:\n"
             "  - {name: run, type: exec, argv: ['%s']}\n"
             "  - {name: svc, type: process, start: ['%s'], pidfile: '%s/p.pid'}\n"
             "  - {name: unit, type: systemd, systemctl: '%s', units: ['*.service']}\n",
             prog, prog, dir, prog);
    vigil_action_registry *r = at_configure(NULL, yaml);
    vigil_action_result res = VIGIL_ACTION_RESULT_INIT;

    vigil_action_request rq = at_req("run", "x");
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_FAILED);
    ck_assert_str_eq(res.reason, "spawn_failed");
    ck_assert_str_eq(res.output, refusal(prog));

    rq = at_req("svc", "x");
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_FAILED);
    ck_assert_str_eq(res.reason, "spawn_failed");
    char want[1200];
    snprintf(want, sizeof(want), "not running\n%s", refusal(prog));
    ck_assert_str_eq(res.output, want);
    snprintf(want, sizeof(want), "%s/p.pid", dir);
    ck_assert_int_ne(access(want, F_OK), 0);

    rq = at_req("unit", "api.service");
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_FAILED);
    ck_assert_str_eq(res.reason, "spawn_failed");
    ck_assert_str_eq(res.output, refusal(prog));

    /* the same program, made safe, runs */
    ck_assert_int_eq(chmod(prog, 0755), 0);
    rq = at_req("run", "x");
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_SUCCEEDED);
    vigil_action_result_clear(&res);
    vigil_action_registry_free(r);
    assert_no_child();
}
END_TEST

static Suite *proc_suite(void)
{
    Suite *s = suite_create("proc");
    TCase *tc = tcase_create("runner");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, argv_is_never_interpreted);
    tcase_add_test(tc, environment_is_exactly_the_given_one_with_the_fixed_path);
    tcase_add_test(tc, parent_descriptors_are_not_inherited);
    tcase_add_test(tc, child_leads_its_own_group_and_starts_in_root);
    tcase_add_test(tc, deadline_kills_the_whole_group);
    tcase_add_test(tc, exit_kills_what_the_program_left_behind);
    tcase_add_test(tc, output_over_the_cap_is_truncated_and_marked);
    tcase_add_test(tc, failures_are_reported_and_reaped);
    tcase_add_test(tc, cancel_and_sigchld_ignored);
    tcase_add_test(tc, program_check_rules);
    tcase_add_test(tc, group_writable_program_is_refused_by_the_runner);
    tcase_add_test(tc, group_writable_program_is_refused_by_the_collector);
    tcase_add_test(tc, group_writable_program_is_refused_by_the_actions);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(proc_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
