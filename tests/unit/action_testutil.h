/* Helpers shared by the action suites (test_action*.c). Header-only: the
 * Makefile links each suite with testutil.o alone. */
#ifndef VIGIL_ACTION_TESTUTIL_H
#define VIGIL_ACTION_TESTUTIL_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "vigil/action.h"
#include "vigil/sys/action.h"

/* Loads YAML text as "remediator.yaml". */
static inline vigil_config *at_load(const char *yaml)
{
    vigil_config *cfg = NULL;
    int rc = vigil_config_load_string(&cfg, yaml, strlen(yaml), "remediator.yaml", NULL);
    ck_assert_msg(rc == VIGIL_OK, "config: %s", vigil_error_last()->message);
    return cfg;
}

static inline const vigil_config_node *at_actions(const vigil_config *cfg)
{
    return vigil_config_node_get(vigil_config_root(cfg, 0), "actions");
}

/* A registry with the built-in types; logging off unless opts says otherwise. */
static inline vigil_action_registry *at_registry(const vigil_action_registry_options *opts)
{
    vigil_action_registry_options o = VIGIL_ACTION_REGISTRY_OPTIONS_INIT;
    if (opts)
        o = *opts;
    if (!o.logger.cb)
        o.logger.min_level = VIGIL_LOG_OFF;
    vigil_action_registry *r = NULL;
    ck_assert_int_eq(vigil_action_registry_new(&r, &o), VIGIL_OK);
    ck_assert_int_eq(vigil_action_registry_add_builtins(r), VIGIL_OK);
    return r;
}

/* A registry configured from YAML text (the config is freed at once: the
 * registry must keep copies of what it needs). */
static inline vigil_action_registry *at_configure(const vigil_action_registry_options *opts,
                                                  const char *yaml)
{
    vigil_config *cfg = at_load(yaml);
    vigil_action_registry *r = at_registry(opts);
    int rc = vigil_action_registry_configure(r, at_actions(cfg));
    ck_assert_msg(rc == VIGIL_OK, "configure: %s", vigil_error_last()->message);
    vigil_config_free(cfg);
    return r;
}

static inline vigil_action_request at_req(const char *action, const char *target)
{
    vigil_action_request rq = VIGIL_ACTION_REQUEST_INIT;
    rq.action = action;
    rq.target = target;
    return rq;
}

/* Reads a whole file (malloc'd, NUL-terminated). */
static inline char *at_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot read %s: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            buf = realloc(buf, cap);
        }
        size_t n = fread(buf + len, 1, 4096, f);
        len += n;
        if (n == 0)
            break;
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

/* Copies a file and makes the copy executable. */
static inline void at_copy_exe(const char *from, const char *to)
{
    int in = open(from, O_RDONLY);
    ck_assert_msg(in >= 0, "cannot open %s: %s", from, strerror(errno));
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0755);
    ck_assert_msg(out >= 0, "cannot create %s: %s", to, strerror(errno));
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof(buf))) > 0)
        ck_assert_int_eq(write(out, buf, (size_t)n), n);
    close(in);
    ck_assert_int_eq(close(out), 0);
}

/* Copies the test helper program `name` ($VIGIL_TEST_HELPERS/name) to `to`. */
static inline void at_copy_helper(const char *name, const char *to)
{
    const char *dir = getenv("VIGIL_TEST_HELPERS");
    ck_assert_msg(dir && *dir, "VIGIL_TEST_HELPERS is not set (run through make test)");
    char from[1024];
    snprintf(from, sizeof(from), "%s/%s", dir, name);
    at_copy_exe(from, to);
}

/* The state letter of /proc/PID/stat, or 0 when the process is gone. */
static inline char at_proc_state(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' ? p[2] : 0;
}

#endif
