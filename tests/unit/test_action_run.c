/* Actions that manage real processes: the process and signal types (the
 * webhook type, which needs a server, is in tests/integration/test_action_http.c). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "action_testutil.h"

extern char **environ;

static pid_t spawn_prog(const char *prog, const char *arg)
{
    pid_t pid;
    char *argv[] = {(char *)prog, (char *)arg, NULL};
    ck_assert_int_eq(posix_spawn(&pid, prog, NULL, NULL, argv, environ), 0);
    return pid;
}

/* Waits until `pid` is in state `st` (e.g. 'S', 'T'). */
static void wait_state(pid_t pid, char st)
{
    for (int i = 0; i < 500 && at_proc_state(pid) != st; i++)
        usleep(2000);
    ck_assert_int_eq(at_proc_state(pid), st);
}

static unsigned long long proc_starttime(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    char *buf = at_read_file(path);
    char *p = strrchr(buf, ')') + 2;
    unsigned long long v = 0;
    for (int field = 3; field < 22; field++)
        p = strchr(p, ' ') + 1;
    v = strtoull(p, NULL, 10);
    free(buf);
    return v;
}

/* Reads the pidfile: pid and start time. */
static pid_t read_pidfile(const char *path, unsigned long long *start)
{
    char *s = at_read_file(path);
    long long pid = 0;
    unsigned long long st = 0;
    ck_assert_int_eq(sscanf(s, "%lld %llu", &pid, &st), 2);
    char want[64];
    snprintf(want, sizeof(want), "%lld %llu\n", pid, st);
    ck_assert_str_eq(s, want);
    free(s);
    if (start)
        *start = st;
    return (pid_t)pid;
}

static int is_sleep_1000(pid_t pid)
{
    char path[64], buf[64];
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    return n == 16 && memcmp(buf,
                             "/bin/sleep\0"
                             "1000\0",
                             16) == 0;
}

static vigil_action_result run(vigil_action_registry *r, const char *action, const char *target,
                               int want_rc)
{
    vigil_action_result res = VIGIL_ACTION_RESULT_INIT;
    vigil_action_request rq = at_req(action, target);
    int rc = vigil_action_registry_execute(r, &rq, NULL, &res);
    ck_assert_msg(rc == want_rc, "%s: rc %d (%s) output %s", action, rc,
                  vigil_error_last()->message, res.output ? res.output : "-");
    return res;
}

/* ---- process ------------------------------------------------------------------------- */

static vigil_action_registry *process_registry(const char *dir, char *pidfile, size_t size)
{
    snprintf(pidfile, size, "%s/demo.pid", dir);
    char yaml[4096];
    snprintf(yaml, sizeof(yaml),
             "actions:\n"
             "  - {name: restart_demo, type: process, start: [/bin/sleep, '1000'], pidfile: "
             "'%s', stop_timeout: 2s, start_timeout: 2s, settle: 20ms, targets: '^demo$'}\n"
             "  - {name: start_demo, type: process, op: start, start: [/bin/sleep, '1000'], "
             "pidfile: '%s', targets: '^demo$'}\n"
             "  - {name: stop_demo, type: process, op: stop, start: [/bin/sleep, '1000'], "
             "pidfile: '%s', stop_timeout: 2s, targets: '^demo$'}\n"
             "  - {name: restart_stubborn, type: process, start: [/bin/sleep, '1000'], pidfile: "
             "'%s', stop_signal: WINCH, stop_timeout: 150ms, targets: '^demo$'}\n",
             pidfile, pidfile, pidfile, pidfile);
    return at_configure(NULL, yaml);
}

START_TEST(process_restarts_real_child)
{
    const char *dir = vt_tmpdir();
    char pidfile[600];
    vigil_action_registry *r = process_registry(dir, pidfile, sizeof(pidfile));

    /* nothing runs yet: a missing pidfile means not running */
    vigil_action_result res = run(r, "restart_demo", "demo", VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_SUCCEEDED);
    unsigned long long st1;
    pid_t p1 = read_pidfile(pidfile, &st1);
    char want[256];
    snprintf(want, sizeof(want), "not running\nstarted pid %d", (int)p1);
    ck_assert_str_eq(res.output, want);
    ck_assert(is_sleep_1000(p1));
    ck_assert_int_eq(proc_starttime(p1), st1);
    vigil_action_result_clear(&res);

    /* restart: the old one is stopped (and reaped), a new one runs */
    res = run(r, "restart_demo", "demo", VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_SUCCEEDED);
    pid_t p2 = read_pidfile(pidfile, NULL);
    ck_assert_int_ne(p1, p2);
    snprintf(want, sizeof(want), "stopped pid %d with TERM\nstarted pid %d", (int)p1, (int)p2);
    ck_assert_str_eq(res.output, want);
    ck_assert_int_eq(at_proc_state(p1), 0);
    ck_assert(is_sleep_1000(p2));
    vigil_action_result_clear(&res);

    /* frozen with SIGSTOP: TERM + CONT still ends it */
    ck_assert_int_eq(kill(p2, SIGSTOP), 0);
    wait_state(p2, 'T');
    res = run(r, "restart_demo", "demo", VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_SUCCEEDED);
    pid_t p3 = read_pidfile(pidfile, NULL);
    ck_assert_int_ne(p3, p2);
    ck_assert_int_eq(at_proc_state(p2), 0);
    ck_assert(is_sleep_1000(p3));
    vigil_action_result_clear(&res);

    /* a program that ignores the stop signal (sleep ignores WINCH), frozen
     * too: KILL after stop_timeout */
    ck_assert_int_eq(kill(p3, SIGSTOP), 0);
    wait_state(p3, 'T');
    res = run(r, "restart_stubborn", "demo", VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_SUCCEEDED);
    pid_t p4 = read_pidfile(pidfile, NULL);
    snprintf(want, sizeof(want),
             "stopped pid %d with KILL (WINCH had no effect within the stop timeout)\nstarted "
             "pid %d",
             (int)p3, (int)p4);
    ck_assert_str_eq(res.output, want);
    ck_assert_int_eq(at_proc_state(p3), 0);
    vigil_action_result_clear(&res);

    /* op start while running: nothing to do */
    res = run(r, "start_demo", "demo", VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_SUCCEEDED);
    snprintf(want, sizeof(want), "already running (pid %d)", (int)p4);
    ck_assert_str_eq(res.output, want);
    ck_assert_int_eq(read_pidfile(pidfile, NULL), p4);
    vigil_action_result_clear(&res);

    /* the target allowlist applies */
    res = run(r, "restart_demo", "demo;x", VIGIL_EPERM);
    ck_assert_int_eq(res.status, VIGIL_ACTION_REFUSED);
    vigil_action_result_clear(&res);

    /* stop, then stop again */
    res = run(r, "stop_demo", "demo", VIGIL_OK);
    snprintf(want, sizeof(want), "stopped pid %d with TERM", (int)p4);
    ck_assert_str_eq(res.output, want);
    ck_assert_int_ne(access(pidfile, F_OK), 0);
    ck_assert_int_eq(at_proc_state(p4), 0);
    vigil_action_result_clear(&res);
    res = run(r, "stop_demo", "demo", VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_SUCCEEDED);
    ck_assert_str_eq(res.output, "not running");
    vigil_action_result_clear(&res);
    vigil_action_registry_free(r);
}
END_TEST

START_TEST(process_never_kills_a_reused_pid)
{
    const char *dir = vt_tmpdir();
    char pidfile[600];
    vigil_action_registry *r = process_registry(dir, pidfile, sizeof(pidfile));
    /* an unrelated process holds the pid the pidfile names, with another start time */
    pid_t other = spawn_prog("/bin/sleep", "1000");
    wait_state(other, 'S');
    char line[64];
    snprintf(line, sizeof(line), "%d %llu\n", (int)other, proc_starttime(other) + 1);
    vt_write_file(dir, "demo.pid", line, strlen(line));
    vigil_action_result res = run(r, "restart_demo", "demo", VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_SUCCEEDED);
    char want[1024];
    snprintf(want, sizeof(want), "pidfile named pid %d, which is another process now", (int)other);
    ck_assert_msg(strstr(res.output, want) && strstr(res.output, "not signalled"), "%s",
                  res.output);
    ck_assert_int_eq(at_proc_state(other), 'S'); /* untouched */
    pid_t started = read_pidfile(pidfile, NULL);
    ck_assert_int_ne(started, other);
    vigil_action_result_clear(&res);

    /* a bare pid of our own child: proven by the pidfd the registry keeps */
    snprintf(line, sizeof(line), "%d\n", (int)started);
    vt_write_file(dir, "demo.pid", line, strlen(line));
    res = run(r, "restart_demo", "demo", VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_SUCCEEDED);
    snprintf(want, sizeof(want), "stopped pid %d with TERM\nstarted pid ", (int)started);
    ck_assert_msg(strncmp(res.output, want, strlen(want)) == 0, "%s", res.output);
    ck_assert_int_eq(at_proc_state(started), 0);
    started = read_pidfile(pidfile, NULL);
    vigil_action_result_clear(&res);

    /* garbage: not running; the pid it cannot name is left alone */
    vt_write_file(dir, "demo.pid", "garbage\n", 8);
    res = run(r, "stop_demo", "demo", VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_SUCCEEDED);
    snprintf(want, sizeof(want), "pidfile %s does not hold a pid: taken as not running", pidfile);
    ck_assert_str_eq(res.output, want);
    ck_assert(is_sleep_1000(started));
    vigil_action_result_clear(&res);
    kill(started, SIGKILL); /* restart_demo's child: reaped here, forgotten there */
    waitpid(started, NULL, 0);
    /* garbage: not running, so start */
    res = run(r, "start_demo", "demo", VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_SUCCEEDED);
    snprintf(want, sizeof(want),
             "pidfile %s does not hold a pid: taken as not running\nstarted pid", pidfile);
    ck_assert_msg(strncmp(res.output, want, strlen(want)) == 0, "%s", res.output);
    started = read_pidfile(pidfile, NULL);
    vigil_action_result_clear(&res);
    /* Vigil's pidfile of another action's child: the configured program, by
     * the expected user, so it is stopped */
    res = run(r, "stop_demo", "demo", VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_SUCCEEDED);
    snprintf(want, sizeof(want), "stopped pid %d with TERM", (int)started);
    ck_assert_str_eq(res.output, want);
    vigil_action_result_clear(&res);

    /* a pid that is gone: stale pidfile, nothing signalled */
    kill(other, SIGKILL);
    waitpid(other, NULL, 0);
    snprintf(line, sizeof(line), "%d 12345\n", (int)other);
    vt_write_file(dir, "demo.pid", line, strlen(line));
    res = run(r, "stop_demo", "demo", VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_SUCCEEDED);
    snprintf(want, sizeof(want), "pidfile named pid %d, which is no longer running", (int)other);
    ck_assert_str_eq(res.output, want);
    ck_assert_int_ne(access(pidfile, F_OK), 0);
    vigil_action_result_clear(&res);

    vigil_action_registry_free(r);
}
END_TEST

/* A program started before Vigil, writing its own bare-pid pidfile. */
static vigil_action_registry *own_pidfile_registry(const char *dir, const char *prog,
                                                   const char *state_dir)
{
    char yaml[4096];
    snprintf(yaml, sizeof(yaml),
             "actions:\n"
             "  - {name: restart_app, type: process, start: ['%s', '1000'], pidfile: "
             "'%s/app.pid', writes_pidfile: true, stop_timeout: 2s, targets: '^app$'}\n"
             "  - {name: start_app, type: process, op: start, start: ['%s', '1000'], pidfile: "
             "'%s/app.pid', writes_pidfile: true, targets: '^app$'}\n",
             prog, dir, prog, dir);
    vigil_action_registry_options o = VIGIL_ACTION_REGISTRY_OPTIONS_INIT;
    o.state_dir = state_dir;
    return at_configure(&o, yaml);
}

START_TEST(process_any_pidfile_identity_checked)
{
    const char *dir = vt_tmpdir();
    char prog[600], state[600], pidfile[600], record[700], line[64], want[2048];
    snprintf(prog, sizeof(prog), "%s/app-sleep", dir);
    at_copy_exe("/bin/sleep", prog);
    snprintf(state, sizeof(state), "%s/state", dir);
    snprintf(pidfile, sizeof(pidfile), "%s/app.pid", dir);
    snprintf(record, sizeof(record), "%s/", state);
    for (const char *q = pidfile; *q; q++)
        snprintf(record + strlen(record), sizeof(record) - strlen(record),
                 *q == '/' ? "%%2F" : "%c", *q);
    strcat(record, ".started");
    vigil_action_registry *r = own_pidfile_registry(dir, prog, state);

    /* started before Vigil (not its child), bare pid: the configured program
     * run by the expected user, so it is stopped and replaced */
    pid_t before = spawn_prog(prog, "1000");
    wait_state(before, 'S');
    snprintf(line, sizeof(line), "%d\n", (int)before);
    vt_write_file(dir, "app.pid", line, strlen(line));
    vigil_action_result res = run(r, "restart_app", "app", VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_SUCCEEDED);
    snprintf(want, sizeof(want), "stopped pid %d with TERM\nstarted pid ", (int)before);
    ck_assert_msg(strncmp(res.output, want, strlen(want)) == 0, "%s", res.output);
    ck_assert_int_eq(at_proc_state(before), 0); /* stopped (and reaped: the test's child) */
    pid_t started = (pid_t)atoi(res.output + strlen(want));
    vigil_action_result_clear(&res);
    /* the program's pidfile is its own: Vigil neither rewrote nor removed it */
    char *text = at_read_file(pidfile);
    ck_assert_str_eq(text, line);
    free(text);
    /* Vigil's own record names what it started */
    unsigned long long st;
    ck_assert_int_eq(read_pidfile(record, &st), started);
    ck_assert_int_eq(st, proc_starttime(started));
    struct stat sb;
    ck_assert_int_eq(stat(state, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0700);

    /* the pidfile names a dead pid, but Vigil's record (shared by the actions
     * of that pidfile) names the program it started */
    res = run(r, "start_app", "app", VIGIL_OK);
    snprintf(want, sizeof(want),
             "pidfile named pid %d, which is no longer running\nVigil's record names running pid "
             "%d\nalready running (pid %d)",
             (int)before, (int)started, (int)started);
    ck_assert_str_eq(res.output, want);
    vigil_action_result_clear(&res);

    /* an unrelated live process (another program): refused, not signalled */
    pid_t other = spawn_prog("/bin/sleep", "1000");
    wait_state(other, 'S');
    snprintf(line, sizeof(line), "%d\n", (int)other);
    vt_write_file(dir, "app.pid", line, strlen(line));
    vigil_action_registry_free(r); /* a new registry: `started` is not its child... */
    kill(started, SIGKILL);        /* ...and gone */
    waitpid(started, NULL, 0);
    r = own_pidfile_registry(dir, prog, state);
    res = run(r, "restart_app", "app", VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_FAILED);
    ck_assert_str_eq(res.reason, "wrong_program");
    snprintf(want, sizeof(want),
             "pidfile names running pid %d, which is not provably %s: /proc/%d/exe is ", (int)other,
             prog, (int)other);
    ck_assert_msg(strncmp(res.output, want, strlen(want)) == 0, "%s", res.output);
    ck_assert_msg(strstr(res.output, "not the configured program") &&
                      strstr(res.output, "not signalled"),
                  "%s", res.output);
    usleep(50000);
    ck_assert_int_eq(at_proc_state(other), 'S'); /* lives on */
    vigil_action_result_clear(&res);

    /* Vigil itself */
    snprintf(line, sizeof(line), "%d\n", (int)getpid());
    vt_write_file(dir, "app.pid", line, strlen(line));
    res = run(r, "restart_app", "app", VIGIL_OK);
    ck_assert_str_eq(res.reason, "wrong_program");
    ck_assert_ptr_nonnull(strstr(res.output, "Vigil itself; not signalled"));
    vigil_action_result_clear(&res);

    /* a symlinked pidfile is refused (O_NOFOLLOW): the process it leads to
     * is not signalled, and nothing starts */
    char target[700];
    snprintf(target, sizeof(target), "%s/elsewhere.pid", dir);
    snprintf(line, sizeof(line), "%d\n", (int)other);
    vt_write_file(dir, "elsewhere.pid", line, strlen(line));
    unlink(pidfile);
    ck_assert_int_eq(symlink(target, pidfile), 0);
    res = run(r, "restart_app", "app", VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_FAILED);
    ck_assert_str_eq(res.reason, "bad_pidfile");
    snprintf(want, sizeof(want),
             "pidfile %s is a symbolic link, refused (pidfiles are opened with O_NOFOLLOW)",
             pidfile);
    ck_assert_str_eq(res.output, want);
    ck_assert_int_eq(at_proc_state(other), 'S');
    vigil_action_result_clear(&res);
    kill(other, SIGKILL);
    waitpid(other, NULL, 0);

    /* a dead pid: not running, so start */
    unlink(pidfile);
    snprintf(line, sizeof(line), "%d\n", (int)other);
    vt_write_file(dir, "app.pid", line, strlen(line));
    res = run(r, "restart_app", "app", VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_SUCCEEDED);
    snprintf(want, sizeof(want), "pidfile named pid %d, which is no longer running\nstarted pid",
             (int)other);
    ck_assert_msg(strncmp(res.output, want, strlen(want)) == 0, "%s", res.output);
    vigil_action_result_clear(&res);
    /* an unreadable pidfile (a directory here): not running either; our
     * child is restarted as usual */
    unlink(pidfile);
    ck_assert_int_eq(mkdir(pidfile, 0700), 0);
    res = run(r, "restart_app", "app", VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_SUCCEEDED);
    vigil_action_result_clear(&res);
    rmdir(pidfile);
    vigil_action_registry_free(r);
    /* a registry built later adopts the child through Vigil's record */
    pid_t last = read_pidfile(record, NULL);
    r = own_pidfile_registry(dir, prog, state);
    kill(last, SIGKILL);
    for (int i = 0; i < 200 && at_proc_state(last) != 'Z'; i++)
        usleep(5000);
    ck_assert_int_eq(vigil_action_registry_reap(r), VIGIL_OK);
    ck_assert_int_eq(at_proc_state(last), 0);
    ck_assert_int_ne(access(record, F_OK), 0);
    vigil_action_registry_free(r);
}
END_TEST

START_TEST(process_log_file_symlink_and_open_dirs_refused)
{
    const char *dir = vt_tmpdir();
    char yaml[4096], path[1024];
    snprintf(path, sizeof(path), "%s/real.log", dir);
    vt_write_file(dir, "real.log", "", 0);
    char link[700];
    snprintf(link, sizeof(link), "%s/l.log", dir);
    ck_assert_int_eq(symlink(path, link), 0);
    snprintf(yaml, sizeof(yaml),
             "actions:\n  - {name: s, type: process, op: start, start: [/bin/sleep, '1000'], "
             "pidfile: '%s/s.pid', log_file: '%s'}\n",
             dir, link);
    vigil_action_registry *r = at_configure(NULL, yaml);
    vigil_action_result res = run(r, "s", "x", VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_FAILED);
    ck_assert_str_eq(res.reason, "spawn_failed");
    ck_assert_msg(strstr(res.output, "(a symbolic link: log files are opened with O_NOFOLLOW)"),
                  "%s", res.output);
    vigil_action_result_clear(&res);
    vigil_action_registry_free(r);

    /* a world-writable pidfile directory is refused at load, with path and reason */
    char open_dir[800];
    snprintf(open_dir, sizeof(open_dir), "%s/open", dir);
    ck_assert_int_eq(mkdir(open_dir, 0700), 0);
    ck_assert_int_eq(chmod(open_dir, 0777), 0);
    snprintf(yaml, sizeof(yaml),
             "actions:\n  - {name: s, type: process, start: [/bin/sleep, '1000'], pidfile: "
             "'%s/s.pid'}\n",
             open_dir);
    vigil_config *cfg = at_load(yaml);
    r = at_registry(NULL);
    ck_assert_int_eq(vigil_action_registry_configure(r, at_actions(cfg)), VIGIL_EPERM);
    char want[4096];
    snprintf(want, sizeof(want),
             "actions[0].pidfile: %s/s.pid: directory %s is writable by other users (mode 0777)",
             open_dir, open_dir);
    ck_assert_msg(strstr(vigil_error_last()->message, want), "%s", vigil_error_last()->message);
    /* the state directory too */
    vigil_action_registry_free(r);
    snprintf(yaml, sizeof(yaml),
             "actions:\n  - {name: s, type: process, start: [/bin/sleep, '1000'], pidfile: "
             "'%s/s.pid'}\n",
             dir);
    vigil_config_free(cfg);
    cfg = at_load(yaml);
    vigil_action_registry_options o = VIGIL_ACTION_REGISTRY_OPTIONS_INIT;
    snprintf(path, sizeof(path), "%s/state", open_dir);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    ck_assert_int_eq(chmod(path, 01777), 0);
    o.state_dir = path;
    r = at_registry(&o);
    ck_assert_int_eq(vigil_action_registry_configure(r, at_actions(cfg)), VIGIL_EPERM);
    snprintf(want, sizeof(want), "state_dir: directory %s is writable by other users (mode 1777)",
             path);
    ck_assert_msg(strstr(vigil_error_last()->message, want), "%s", vigil_error_last()->message);
    vigil_action_registry_free(r);
    vigil_config_free(cfg);
}
END_TEST

START_TEST(process_start_failures_and_reaping)
{
    const char *dir = vt_tmpdir();
    char yaml[4096];
    snprintf(
        yaml, sizeof(yaml),
        "actions:\n"
        "  - {name: quits, type: process, op: start, start: [/bin/false], pidfile: '%s/q.pid', "
        "settle: 500ms, start_timeout: 2s}\n"
        "  - {name: short, type: process, op: start, start: [/bin/sleep, '0.1'], pidfile: "
        "'%s/s.pid'}\n"
        "  - {name: nope, type: process, start: [/nonexistent-vigil/prog], pidfile: "
        "'%s/n.pid'}\n"
        "  - {name: logged, type: process, op: start, start: [/bin/ls, /nonexistent-vigil], "
        "pidfile: '%s/l.pid', log_file: '%s/l.log'}\n",
        dir, dir, dir, dir, dir);
    vigil_action_registry *r = at_configure(NULL, yaml);
    vigil_action_result res = run(r, "quits", "x", VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_FAILED);
    ck_assert_str_eq(res.reason, "exited");
    ck_assert_int_eq(res.exit_code, 1);
    ck_assert_ptr_nonnull(strstr(res.output, "exited with code 1 right after starting"));
    char path[700];
    snprintf(path, sizeof(path), "%s/q.pid", dir);
    ck_assert_int_ne(access(path, F_OK), 0);
    vigil_action_result_clear(&res);

    res = run(r, "nope", "x", VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_FAILED);
    ck_assert_str_eq(res.reason, "spawn_failed");
    ck_assert_str_eq(res.output, "not running\ncannot execute /nonexistent-vigil/prog: No such "
                                 "file or directory");
    vigil_action_result_clear(&res);

    /* a program that exits by itself is reaped by vigil_action_registry_reap(),
     * which also removes its pidfile */
    res = run(r, "short", "x", VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_SUCCEEDED);
    snprintf(path, sizeof(path), "%s/s.pid", dir);
    pid_t pid = read_pidfile(path, NULL);
    vigil_action_result_clear(&res);
    for (int i = 0; i < 200 && at_proc_state(pid) != 'Z'; i++)
        usleep(5000);
    ck_assert_int_eq(at_proc_state(pid), 'Z');
    ck_assert_int_eq(vigil_action_registry_reap(r), VIGIL_OK);
    ck_assert_int_eq(at_proc_state(pid), 0);
    ck_assert_int_ne(access(path, F_OK), 0);
    ck_assert_int_eq(vigil_action_registry_reap(NULL), VIGIL_EINVAL);

    /* output goes to log_file */
    res = run(r, "logged", "x", VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_SUCCEEDED);
    vigil_action_result_clear(&res);
    snprintf(path, sizeof(path), "%s/l.log", dir);
    for (int i = 0; i < 200; i++) {
        struct stat sb;
        if (stat(path, &sb) == 0 && sb.st_size > 0)
            break;
        usleep(5000);
    }
    char *log = at_read_file(path);
    ck_assert_ptr_nonnull(strstr(log, "nonexistent-vigil"));
    free(log);
    vigil_action_registry_free(r);
    while (waitpid(-1, NULL, WNOHANG) > 0) /* ls, exited by now */
        ;
}
END_TEST

START_TEST(process_adopts_child_after_reload)
{
    const char *dir = vt_tmpdir();
    char pidfile[600];
    vigil_action_registry *r = process_registry(dir, pidfile, sizeof(pidfile));
    vigil_action_result res = run(r, "start_demo", "demo", VIGIL_OK);
    pid_t pid = read_pidfile(pidfile, NULL);
    vigil_action_result_clear(&res);
    vigil_action_registry_free(r); /* the program keeps running */
    ck_assert(is_sleep_1000(pid));
    r = process_registry(dir, pidfile, sizeof(pidfile));
    kill(pid, SIGKILL);
    for (int i = 0; i < 200 && at_proc_state(pid) != 'Z'; i++)
        usleep(5000);
    /* the new registry knows the pid is its child and reaps it */
    ck_assert_int_eq(vigil_action_registry_reap(r), VIGIL_OK);
    ck_assert_int_eq(at_proc_state(pid), 0);
    ck_assert_int_ne(access(pidfile, F_OK), 0);
    vigil_action_registry_free(r);
}
END_TEST

/* ---- signal ------------------------------------------------------------------------------ */

START_TEST(signal_reaches_real_child)
{
    const char *dir = vt_tmpdir();
    pid_t child = spawn_prog("/bin/sleep", "1000");
    wait_state(child, 'S');
    char line[64];
    snprintf(line, sizeof(line), "%d\n", (int)child);
    vt_write_file(dir, "app.pid", line, strlen(line));
    char name[16];
    snprintf(name, sizeof(name), "vgs%d", (int)getpid() % 1000000);
    char copy[600];
    snprintf(copy, sizeof(copy), "%s/%s", dir, name);
    at_copy_exe("/bin/sleep", copy);
    char yaml[4096];
    snprintf(yaml, sizeof(yaml),
             "actions:\n"
             "  - {name: usr1_app, type: signal, signal: USR1, pidfile: '%s/app.pid', program: "
             "/bin/sleep, targets: '^app$'}\n"
             "  - {name: usr2_all, type: signal, signal: SIGUSR2, process: %s}\n"
             "  - {name: hup_checked, type: signal, pidfile: '%s/app.pid', program: /bin/sleep, "
             "process: nginx}\n"
             "  - {name: hup_wrong_prog, type: signal, pidfile: '%s/app.pid', program: '%s'}\n"
             "  - {name: hup_wrong_user, type: signal, pidfile: '%s/app.pid', program: /bin/sleep, "
             "user: '%u'}\n"
             "  - {name: usr2_others, type: signal, signal: USR2, process: %s, user: '%u'}\n",
             dir, name, dir, dir, copy, dir, (unsigned)geteuid() + 1, name,
             (unsigned)geteuid() + 1);
    vigil_action_registry *r = at_configure(NULL, yaml);

    /* a pid that is not the named process is not signalled */
    vigil_action_result res = run(r, "hup_checked", "x", VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_FAILED);
    ck_assert_str_eq(res.reason, "not_running");
    ck_assert_ptr_nonnull(strstr(res.output, "is not the expected process; not signalled"));
    ck_assert_int_eq(at_proc_state(child), 'S');
    vigil_action_result_clear(&res);

    /* the same identity checks as the process action: program, then user */
    res = run(r, "hup_wrong_prog", "x", VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_FAILED);
    ck_assert_str_eq(res.reason, "wrong_program");
    char want[1024];
    snprintf(want, sizeof(want), "pid %d from %s/app.pid is not provably %s: /proc/%d/exe is ",
             (int)child, dir, copy, (int)child);
    ck_assert_msg(strncmp(res.output, want, strlen(want)) == 0, "%s", res.output);
    ck_assert_int_eq(at_proc_state(child), 'S');
    vigil_action_result_clear(&res);
    res = run(r, "hup_wrong_user", "x", VIGIL_OK);
    ck_assert_str_eq(res.reason, "wrong_user");
    snprintf(want, sizeof(want), "runs as uid %u, not the expected uid %u; not signalled",
             (unsigned)geteuid(), (unsigned)geteuid() + 1);
    ck_assert_msg(strstr(res.output, want), "%s", res.output);
    ck_assert_int_eq(at_proc_state(child), 'S');
    vigil_action_result_clear(&res);

    res = run(r, "usr1_app", "app", VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_SUCCEEDED);
    snprintf(want, sizeof(want), "sent USR1 to pid %d", (int)child);
    ck_assert_str_eq(res.output, want);
    int status;
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    ck_assert(WIFSIGNALED(status));
    ck_assert_int_eq(WTERMSIG(status), SIGUSR1);
    vigil_action_result_clear(&res);
    /* now the pid is gone; a symlinked pidfile is refused */
    res = run(r, "usr1_app", "app", VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_FAILED);
    ck_assert_str_eq(res.reason, "not_running");
    vigil_action_result_clear(&res);
    res = run(r, "usr1_app", "other", VIGIL_EPERM);
    vigil_action_result_clear(&res);
    char pf[700], link_to[700];
    snprintf(pf, sizeof(pf), "%s/app.pid", dir);
    snprintf(link_to, sizeof(link_to), "%s/real.pid", dir);
    unlink(pf);
    ck_assert_int_eq(symlink(link_to, pf), 0);
    res = run(r, "usr1_app", "app", VIGIL_OK);
    ck_assert_str_eq(res.reason, "bad_pidfile");
    ck_assert_ptr_nonnull(strstr(res.output, "is a symbolic link, refused"));
    vigil_action_result_clear(&res);

    /* by exact name: both copies get it, unless run by another user */
    pid_t a = spawn_prog(copy, "1000"), b = spawn_prog(copy, "1001");
    wait_state(a, 'S');
    wait_state(b, 'S');
    res = run(r, "usr2_others", "x", VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_FAILED);
    ck_assert_ptr_nonnull(strstr(res.output, "(2 others skipped)"));
    ck_assert_int_eq(at_proc_state(a), 'S');
    vigil_action_result_clear(&res);
    res = run(r, "usr2_all", "x", VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_SUCCEEDED);
    snprintf(want, sizeof(want), "sent USR2 to 2 processes named \"%s\"", name);
    ck_assert_str_eq(res.output, want);
    ck_assert_int_eq(waitpid(a, &status, 0), a);
    ck_assert_int_eq(WTERMSIG(status), SIGUSR2);
    ck_assert_int_eq(waitpid(b, &status, 0), b);
    ck_assert_int_eq(WTERMSIG(status), SIGUSR2);
    vigil_action_result_clear(&res);
    res = run(r, "usr2_all", "x", VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_FAILED);
    snprintf(want, sizeof(want), "no running process named \"%s\"", name);
    ck_assert_str_eq(res.output, want);
    vigil_action_result_clear(&res);
    vigil_action_registry_free(r);
}
END_TEST

START_TEST(signal_checks_start_time)
{
    const char *dir = vt_tmpdir();
    pid_t child = spawn_prog("/bin/sleep", "1000");
    wait_state(child, 'S');
    char line[64];
    snprintf(line, sizeof(line), "%d %llu\n", (int)child, proc_starttime(child) + 7);
    vt_write_file(dir, "app.pid", line, strlen(line));
    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             "actions:\n  - {name: term_app, type: signal, signal: TERM, pidfile: '%s/app.pid', "
             "program: /bin/sleep}\n",
             dir);
    vigil_action_registry *r = at_configure(NULL, yaml);
    vigil_action_result res = run(r, "term_app", "app", VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_FAILED);
    ck_assert_ptr_nonnull(strstr(res.output, "is another process now"));
    ck_assert_int_eq(at_proc_state(child), 'S');
    vigil_action_result_clear(&res);
    snprintf(line, sizeof(line), "%d %llu\n", (int)child, proc_starttime(child));
    vt_write_file(dir, "app.pid", line, strlen(line));
    res = run(r, "term_app", "app", VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_SUCCEEDED);
    int status;
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    ck_assert_int_eq(WTERMSIG(status), SIGTERM);
    vigil_action_result_clear(&res);
    vigil_action_registry_free(r);
}
END_TEST

static Suite *action_run_suite(void)
{
    Suite *s = suite_create("action_run");
    TCase *tc = tcase_create("process");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, process_restarts_real_child);
    tcase_add_test(tc, process_never_kills_a_reused_pid);
    tcase_add_test(tc, process_start_failures_and_reaping);
    tcase_add_test(tc, process_adopts_child_after_reload);
    tcase_add_test(tc, process_any_pidfile_identity_checked);
    tcase_add_test(tc, process_log_file_symlink_and_open_dirs_refused);
    suite_add_tcase(s, tc);

    tc = tcase_create("signal");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, signal_reaches_real_child);
    tcase_add_test(tc, signal_checks_start_time);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(action_run_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
