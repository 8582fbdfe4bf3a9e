/* Actions: requests and results, the registry and its configuration, the
 * allowlists, and the exec, systemd and log types run for real. The process,
 * signal and webhook types are in test_action_run.c. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "action_testutil.h"
#include "internal/json.h"

/* ---- statuses, results -------------------------------------------------------- */

START_TEST(status_names_round_trip)
{
    static const char *const names[] = {"succeeded", "failed",  "timeout",
                                        "refused",   "dry_run", "pending_approval"};
    for (int i = 0; i < 6; i++) {
        ck_assert_str_eq(vigil_action_status_name((vigil_action_status)i), names[i]);
        vigil_action_status st;
        ck_assert_int_eq(vigil_action_status_parse(&st, names[i]), VIGIL_OK);
        ck_assert_int_eq(st, i);
    }
    ck_assert_int_eq(VIGIL_ACTION_PENDING_APPROVAL, 5);
    ck_assert_str_eq(vigil_action_status_name((vigil_action_status)6), "unknown");
    vigil_action_status st;
    ck_assert_int_eq(vigil_action_status_parse(&st, "done"), VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE, "unknown action status \"done\"");
    ck_assert_int_eq(vigil_action_status_parse(NULL, "failed"), VIGIL_EINVAL);
}
END_TEST

START_TEST(result_strings_are_owned_and_sanitised)
{
    vigil_action_result r = VIGIL_ACTION_RESULT_INIT, c = VIGIL_ACTION_RESULT_INIT;
    ck_assert_uint_eq(r.version, VIGIL_ACTION_RESULT_VERSION); /* all zero but the version */
    ck_assert_int_eq(r.exit_code, 0);
    ck_assert_int_eq(vigil_action_result_set_id(&r, "id-1"), VIGIL_OK);
    ck_assert_int_eq(vigil_action_result_set_reason(&r, "cooldown"), VIGIL_OK);
    /* NUL bytes and invalid UTF-8 become U+FFFD, valid UTF-8 stays */
    ck_assert_int_eq(vigil_action_result_set_output(&r, "a\0b\xff\xc3\xa9", 6), VIGIL_OK);
    ck_assert_str_eq(r.output, "a\xef\xbf\xbd"
                               "b\xef\xbf\xbd\xc3\xa9");
    ck_assert_uint_eq(r.output_len, strlen(r.output));
    /* an empty output (a program that printed nothing) is an empty string */
    vigil_action_result e = VIGIL_ACTION_RESULT_INIT;
    ck_assert_int_eq(vigil_action_result_set_output(&e, "xyz", 0), VIGIL_OK);
    ck_assert_ptr_nonnull(e.output);
    ck_assert_str_eq(e.output, "");
    ck_assert_uint_eq(e.output_len, 0);
    vigil_action_result_clear(&e);
    r.status = VIGIL_ACTION_REFUSED;
    r.duration_ms = 7;
    ck_assert_int_eq(vigil_action_result_copy(&c, &r), VIGIL_OK);
    ck_assert_str_eq(c.id, "id-1");
    ck_assert_str_eq(c.reason, "cooldown");
    ck_assert_str_eq(c.output, r.output);
    ck_assert_ptr_ne(c.output, r.output);
    ck_assert_int_eq(c.status, VIGIL_ACTION_REFUSED);
    ck_assert_int_eq(c.duration_ms, 7);
    ck_assert_int_eq(vigil_action_result_set_reason(&c, NULL), VIGIL_OK);
    ck_assert_ptr_null(c.reason);
    ck_assert_int_eq(vigil_action_result_copy(&c, &c), VIGIL_EINVAL);
    vigil_action_result_clear(&r);
    vigil_action_result_clear(&c);
    /* cleared: the empty result, the version kept */
    ck_assert_uint_eq(r.version, VIGIL_ACTION_RESULT_VERSION);
    ck_assert_int_eq(r.status, VIGIL_ACTION_FAILED);
    ck_assert_int_eq(r.exit_code, -1);
    vigil_action_result_clear(NULL);
    /* version 2 carries retry_after_ms; a version 1 result is never written
     * past its end (duration_ms), and copies none into a version 2 one */
    struct {
        vigil_action_result r;
    } v2 = {VIGIL_ACTION_RESULT_INIT};
    v2.r.retry_after_ms = 7000;
    v2.r.status = VIGIL_ACTION_REFUSED;
    unsigned char raw[sizeof(vigil_action_result)];
    memset(raw, 0xAB, sizeof(raw));
    vigil_action_result *v1 = (vigil_action_result *)(void *)raw;
    v1->version = 1;
    v1->id = v1->reason = v1->output = NULL;
    ck_assert_int_eq(vigil_action_result_copy(v1, &v2.r), VIGIL_OK);
    ck_assert_int_eq(v1->status, VIGIL_ACTION_REFUSED);
    size_t end = offsetof(vigil_action_result, retry_after_ms);
    for (size_t i = end; i < sizeof(raw); i++)
        ck_assert_uint_eq(raw[i], 0xAB);
    vigil_action_result_clear(v1);
    for (size_t i = end; i < sizeof(raw); i++)
        ck_assert_uint_eq(raw[i], 0xAB);
    ck_assert_uint_eq(v1->version, 1);
    ck_assert_int_eq(vigil_action_result_copy(&v2.r, v1), VIGIL_OK);
    ck_assert_int_eq(v2.r.retry_after_ms, 0);
    vigil_action_result_clear(&v2.r);
    ck_assert_ptr_null(r.id);
    ck_assert_int_eq(r.status, VIGIL_ACTION_FAILED);
    ck_assert_int_eq(vigil_action_result_set_id(NULL, "x"), VIGIL_EINVAL);
}
END_TEST

START_TEST(request_param_lookup)
{
    vigil_action_param ps[] = {{"a", "1"}, {"b", "2"}};
    vigil_action_request rq = VIGIL_ACTION_REQUEST_INIT;
    rq.params = ps;
    rq.nparams = 2;
    ck_assert_str_eq(vigil_action_request_param(&rq, "b"), "2");
    ck_assert_ptr_null(vigil_action_request_param(&rq, "c"));
    ck_assert_ptr_null(vigil_action_request_param(NULL, "a"));
}
END_TEST

/* ---- registry ------------------------------------------------------------------ */

START_TEST(registry_options_checked)
{
    vigil_action_registry *r = (void *)1;
    vigil_action_registry_options o;
    ck_assert_int_eq(vigil_action_registry_options_init(&o, 99), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "action registry options: version 99 is not supported");
    ck_assert_int_eq(vigil_action_registry_options_init(&o, VIGIL_ACTION_REGISTRY_OPTIONS_VERSION),
                     VIGIL_OK);
    o.base_dir = "relative/dir";
    ck_assert_int_eq(vigil_action_registry_new(&r, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "base_dir \"relative/dir\" is not absolute");
    ck_assert_ptr_null(r);
    o.base_dir = NULL;
    o.version = 2;
    ck_assert_int_eq(vigil_action_registry_new(&r, &o), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "action registry options: version 2 is not supported");
    ck_assert_int_eq(vigil_action_registry_new(&r, NULL), VIGIL_OK);
    ck_assert_uint_eq(vigil_action_registry_count(r), 0);
    ck_assert_int_eq(vigil_action_registry_add_builtins(r), VIGIL_OK);
    ck_assert_int_eq(vigil_action_registry_add_builtins(r), VIGIL_EEXISTS);
    vt_assert_error(VIGIL_EEXISTS, "action type \"exec\" is already registered");
    vigil_action_registry_free(r);
    vigil_action_registry_free(NULL);
    vigil_action_exec_options eo;
    ck_assert_int_eq(vigil_action_exec_options_init(&eo, VIGIL_ACTION_EXEC_OPTIONS_VERSION),
                     VIGIL_OK);
    ck_assert_int_eq(vigil_action_exec_options_init(&eo, 0), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "action exec options: version 0 is not supported");
    ck_assert_int_eq(vigil_action_exec_options_init(NULL, 1), VIGIL_EINVAL);
}
END_TEST

/* A third-party type, through <vigil/sys/action.h>. */
typedef struct greet {
    char *greeting;
} greet;

static int g_payload_freed;

static void greet_payload_free(void *p)
{
    (*(int *)p)++;
}

static int greet_create(void **state, const vigil_config_node *cfg, const vigil_action_context *ctx)
{
    const char *g;
    int rc = vigil_config_get_string(&g, cfg, "greeting", "hello");
    if (rc)
        return rc;
    if (strcmp(g, "boom") == 0)
        return vigil_error_set_at(VIGIL_EVALUE, vigil_config_node_get(cfg, "greeting"), "no booms");
    ck_assert_ptr_eq(ctx->type_payload, &g_payload_freed);
    ck_assert(strncmp(ctx->action_name, "hi", 2) == 0);
    greet *s = calloc(1, sizeof(*s));
    s->greeting = strdup(g);
    *state = s;
    return VIGIL_OK;
}

static int greet_validate(void *state, const vigil_action_request *req)
{
    (void)state;
    if (req->target && strcmp(req->target, "nobody") == 0)
        return vigil_error_set(VIGIL_EPERM, "will not greet nobody");
    return VIGIL_OK;
}

static int greet_execute(void *state, const vigil_action_request *req,
                         const vigil_action_exec *exec, vigil_action_result *result)
{
    greet *s = state;
    ck_assert_int_gt(exec->deadline_ms, 0);
    ck_assert_int_eq(exec->timeout_ms, 2000);
    char buf[256];
    snprintf(buf, sizeof(buf), "%s, %s", s->greeting, req->target);
    result->status = VIGIL_ACTION_SUCCEEDED;
    return vigil_action_result_set_output(result, buf, strlen(buf));
}

static void greet_destroy(void *state)
{
    greet *s = state;
    free(s->greeting);
    free(s);
}

static const char *const greet_keys[] = {"greeting", NULL};

START_TEST(custom_type_registered_from_outside)
{
    g_payload_freed = 0;
    vigil_action_registry *r;
    ck_assert_int_eq(vigil_action_registry_new(&r, NULL), VIGIL_OK);
    vigil_action_type t = {
        .version = VIGIL_ACTION_TYPE_VERSION,
        .name = "greet",
        .payload = &g_payload_freed,
        .payload_free = greet_payload_free,
        .keys = greet_keys,
        .create = greet_create,
        .validate = greet_validate,
        .execute = greet_execute,
        .destroy = greet_destroy,
    };
    ck_assert_int_eq(vigil_action_register(r, &t), VIGIL_OK);
    /* a second registration fails, and its payload is freed at once */
    ck_assert_int_eq(vigil_action_register(r, &t), VIGIL_EEXISTS);
    vt_assert_error(VIGIL_EEXISTS, "action type \"greet\" is already registered");
    ck_assert_int_eq(g_payload_freed, 1);
    vigil_action_type bad = t;
    bad.name = "Bad Name";
    ck_assert_int_eq(vigil_action_register(r, &bad), VIGIL_ENAME);
    vt_assert_error(VIGIL_ENAME, "action type: name \"Bad Name\" is invalid (expected "
                                 "[a-z][a-z0-9_]*, at most 64 bytes)");
    bad = t;
    bad.name = "other";
    bad.version = VIGIL_ACTION_TYPE_VERSION + 1;
    ck_assert_int_eq(vigil_action_register(r, &bad), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION,
                    "action type: version 3 is not supported (this library reads version 2)");
    bad.version = 1;
    ck_assert_int_eq(vigil_action_register(r, &bad), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "action type: version 1 is not supported");
    bad.version = VIGIL_ACTION_TYPE_VERSION;
    bad.execute = NULL;
    ck_assert_int_eq(vigil_action_register(r, &bad), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "action type \"other\": create and execute are required");
    ck_assert_int_eq(vigil_action_register(NULL, &t), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "action type: the registry is NULL");
    ck_assert_int_eq(g_payload_freed, 6);
    ck_assert_int_eq(vigil_action_register(r, NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "action type: the type is NULL");
    /* a built-in name is refused, in a registry without the built-ins too */
    bad = t;
    bad.name = "exec";
    ck_assert_int_eq(vigil_action_register(r, &bad), VIGIL_EEXISTS);
    vt_assert_error(VIGIL_EEXISTS, "action type \"exec\" is built in");
    ck_assert_int_eq(g_payload_freed, 7);

    vigil_config *cfg =
        at_load("actions:\n  - {name: hi, type: greet, greeting: salut, timeout: 2s}\n");
    ck_assert_int_eq(vigil_action_registry_configure(r, at_actions(cfg)), VIGIL_OK);
    vigil_action_result res = VIGIL_ACTION_RESULT_INIT;
    vigil_action_request rq = at_req("hi", "world");
    rq.id = "r1";
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_SUCCEEDED);
    ck_assert_str_eq(res.output, "salut, world");
    ck_assert_str_eq(res.id, "r1");
    rq.target = "nobody";
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_EPERM);
    vt_assert_error(VIGIL_EPERM, "hi: will not greet nobody");
    ck_assert_int_eq(res.status, VIGIL_ACTION_REFUSED);
    ck_assert_str_eq(res.reason, "not_allowed");
    ck_assert_str_eq(res.output, "hi: will not greet nobody");
    vigil_action_result_clear(&res);
    vigil_config_free(cfg);

    /* create's located error comes through; nothing is added */
    cfg = at_load("actions:\n  - {name: hi2, type: greet}\n  - {name: hi3, type: greet, "
                  "greeting: boom}\n");
    ck_assert_int_eq(vigil_action_registry_configure(r, at_actions(cfg)), VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE, "actions[1].greeting: no booms");
    ck_assert_uint_eq(vigil_action_registry_count(r), 1);
    vigil_config_free(cfg);
    vigil_action_registry_free(r);
    ck_assert_int_eq(g_payload_freed, 8);
}
END_TEST

START_TEST(config_errors_are_located)
{
    static const struct {
        const char *yaml;
        int code;
        const char *needle;
    } cases[] = {
        {"  - {name: a, type: exec, argv: [/bin/echo], colour: red}\n", VIGIL_EUNKNOWNKEY,
         "actions[0].colour: unknown key"},
        {"  - {type: exec, argv: [/bin/echo]}\n", VIGIL_EMISSING, "missing required key \"name\""},
        {"  - {name: a, argv: [/bin/echo]}\n", VIGIL_EMISSING, "missing required key \"type\""},
        {"  - {name: a, type: nope}\n", VIGIL_EUNSUPPORTED,
         "actions[0].type: unknown action type \"nope\" (known: exec, process, systemd, "
         "signal, webhook, log, restore_file)"},
        {"  - {name: 'a b', type: log}\n", VIGIL_ENAME, "action name \"a b\" must match"},
        {"  - {name: a, type: exec, argv: [bin/x]}\n", VIGIL_EVALUE,
         "actions[0].argv[0]: relative path \"bin/x\" needs a base directory"},
        {"  - {name: a, type: exec, argv: [/bin/echo, '--x={{target}}']}\n", VIGIL_EVALUE,
         "actions[0].argv[1]: placeholders must fill a whole argv element, got "
         "\"--x={{target}}\""},
        {"  - {name: a, type: exec, argv: ['{{target}}']}\n", VIGIL_EVALUE,
         "argv[0]: the program must be a literal path"},
        {"  - {name: a, type: exec, argv: [/bin/echo, '{{host}}']}\n", VIGIL_EVALUE,
         "unknown placeholder {{host}}"},
        {"  - {name: a, type: exec, argv: [/bin/echo, '{{params.x}}']}\n", VIGIL_EVALUE,
         "argv[1]: {{params.x}} needs an entry \"x\" in params"},
        {"  - {name: a, type: exec, argv: []}\n", VIGIL_EVALUE, "expected at least the program"},
        {"  - {name: a, type: exec}\n", VIGIL_EMISSING, "missing required key \"argv\""},
        {"  - {name: a, type: exec, argv: [/bin/echo], targets: '([a-z'}\n", VIGIL_EVALUE,
         "actions[0].targets: bad regular expression \"([a-z\""},
        {"  - {name: a, type: log, params: {p: '*x'}}\n", VIGIL_EVALUE,
         "actions[0].params.p: bad regular expression"},
        {"  - {name: a, type: log, timeout: 0s}\n", VIGIL_EVALUE,
         "actions[0].timeout: the timeout must be more than 0"},
        {"  - {name: a, type: log, timeout: ten}\n", VIGIL_EVALUE, "actions[0].timeout"},
        {"  - {name: a, type: log, approval: {required: true, after: 1m}}\n", VIGIL_EUNKNOWNKEY,
         "actions[0].approval.after: unknown key"},
        {"  - {name: a, type: log, level: loud}\n", VIGIL_EVALUE,
         "expected debug, info, warn or error"},
        {"  - {name: a, type: signal, signal: FOO, process: nginx}\n", VIGIL_EVALUE,
         "actions[0].signal: unknown signal \"FOO\""},
        {"  - {name: a, type: signal}\n", VIGIL_EMISSING, "needs \"pidfile\" or \"process\""},
        {"  - {name: a, type: signal, process: a-very-long-process-name}\n", VIGIL_EVALUE,
         "a process name is 1 to 15 bytes"},
        {"  - {name: a, type: systemd, units: ['api service']}\n", VIGIL_EVALUE,
         "actions[0].units[0]: \"api service\" is not a unit glob: it may only hold"},
        {"  - {name: a, type: systemd, units: ['-api.service']}\n", VIGIL_EVALUE,
         "is not a unit glob: it starts with '-'"},
        {"  - {name: a, type: systemd, units: ['api.serv*']}\n", VIGIL_EVALUE,
         "must end in .service, .socket, .timer, .target, .mount or .path"},
        {"  - {name: a, type: systemd, units: [api.service], op: kill}\n", VIGIL_EVALUE,
         "expected start, stop, restart or reload, got \"kill\""},
        {"  - {name: a, type: systemd}\n", VIGIL_EMISSING, "missing required key \"units\""},
        {"  - {name: a, type: systemd, units: [a.service], systemctl: systemctl}\n", VIGIL_EVALUE,
         "actions[0].systemctl: relative path \"systemctl\" needs a base directory"},
        {"  - {name: a, type: webhook, url: 'ftp://example.com/x'}\n", VIGIL_EUNSUPPORTED,
         "actions[0].url: URL scheme \"ftp\" is not supported (use http or https)"},
        {"  - {name: a, type: webhook, url: 'file:///etc/passwd'}\n", VIGIL_EUNSUPPORTED,
         "URL scheme \"file\" is not supported"},
        {"  - {name: a, type: webhook, url: 'http//broken'}\n", VIGIL_EVALUE,
         "\"http//broken\" is not a valid URL"},
        {"  - {name: a, type: webhook, url: 'http://127.0.0.1:9/', token_env: "
         "VIGIL_T_NOT_SET_ANYWHERE}\n",
         VIGIL_EENV,
         "actions[0].token_env: environment variable VIGIL_T_NOT_SET_ANYWHERE is not "
         "set"},
        {"  - {name: a, type: webhook, url: 'http://127.0.0.1:9/', retries: 11}\n", VIGIL_ERANGE,
         "actions[0].retries: expected 0 to 10"},
        {"  - {name: a, type: process, start: [/bin/sleep, '1']}\n", VIGIL_EMISSING,
         "missing required key \"pidfile\""},
        {"  - {name: a, type: process, start: [/bin/sleep, '{{target}}'], pidfile: /tmp/x}\n",
         VIGIL_EVALUE, "actions[0].start[1]: placeholders are not allowed here"},
        {"  - {name: a, type: process, start: [/bin/sleep], pidfile: /tmp/x, op: reload}\n",
         VIGIL_EVALUE, "expected start, stop or restart, got \"reload\""},
        {"  - {name: a, type: process, start: [/bin/sleep], pidfile: /tmp/x, stop_signal: NOPE}\n",
         VIGIL_EVALUE, "actions[0].stop_signal: unknown signal \"NOPE\""},
        {"  - {name: a, type: process, start: [/bin/sleep], pidfile: /tmp/x.pid}\n", VIGIL_EPERM,
         "actions[0].pidfile: /tmp/x.pid: directory /tmp is writable by other users (mode 1777)"},
        {"  - {name: a, type: process, start: [/bin/sleep], pidfile: /run/x.pid, log_file: "
         "/tmp/x.log}\n",
         VIGIL_EPERM, "actions[0].log_file: /tmp/x.log: directory /tmp is writable by other users"},
        {"  - {name: a, type: process, start: [/bin/sleep], pidfile: /run/x.pid, writes_pidfile: "
         "maybe}\n",
         VIGIL_EVALUE, "actions[0].writes_pidfile: expected a boolean"},
        {"  - {name: a, type: signal, pidfile: /run/x.pid}\n", VIGIL_EMISSING,
         "actions[0]: a signal action with a pidfile needs \"program\""},
        {"  - {name: a, type: signal, pidfile: /tmp/x.pid, program: /bin/sleep}\n", VIGIL_EPERM,
         "actions[0].pidfile: /tmp/x.pid: directory /tmp is writable by other users"},
        {"  - {name: a, type: signal, process: x, user: no-such-user-vigil}\n", VIGIL_ENOTFOUND,
         "actions[0].user: unknown user \"no-such-user-vigil\""},
        {"  - {name: a, type: process, start: [/bin/sleep], pidfile: run/x.pid}\n", VIGIL_EVALUE,
         "actions[0].pidfile: relative path \"run/x.pid\" needs a base directory"},
        {"  - {name: a, type: exec, argv: [/bin/echo], env_passthrough: [PATH]}\n", VIGIL_EVALUE,
         "actions[0].env_passthrough[0]: PATH is fixed"},
        {"  - {name: a, type: exec, argv: [/bin/echo], env_passthrough: ['A=B']}\n", VIGIL_EVALUE,
         "\"A=B\" is not an environment variable name"},
        {"  - {name: a, type: exec, argv: [/bin/echo], user: no-such-user-vigil}\n",
         VIGIL_ENOTFOUND, "actions[0].user: unknown user \"no-such-user-vigil\""},
        {"  - {name: a, type: exec, argv: [/bin/echo], group: no-such-group-vigil}\n",
         VIGIL_ENOTFOUND, "actions[0].group: unknown group \"no-such-group-vigil\""},
        {"  - {name: a, type: exec, argv: [/bin/echo], max_output: 1GiB}\n", VIGIL_ERANGE,
         "actions[0].max_output: at most 16MiB"},
        {"  - {name: a, type: log}\n  - {name: a, type: log}\n", VIGIL_EEXISTS,
         "actions[1].name: an action named \"a\" is already configured"},
        {"  - not-a-map\n", VIGIL_ETYPE, "actions[0]: expected a map"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[1024];
        snprintf(yaml, sizeof(yaml), "actions:\n%s", cases[i].yaml);
        vigil_config *cfg = at_load(yaml);
        vigil_action_registry *r = at_registry(NULL);
        int rc = vigil_action_registry_configure(r, at_actions(cfg));
        ck_assert_msg(rc == cases[i].code, "case %zu: expected %d, got %d (%s)", i, cases[i].code,
                      rc, vigil_error_last()->message);
        vt_assert_error(cases[i].code, cases[i].needle);
        const vigil_error *e = vigil_error_last();
        ck_assert_msg(e->file && strcmp(e->file, "remediator.yaml") == 0 && e->line >= 2,
                      "case %zu: not located: %s", i, e->message);
        ck_assert_msg(strncmp(e->message, "remediator.yaml:", 16) == 0, "case %zu: %s", i,
                      e->message);
        /* all or nothing */
        ck_assert_uint_eq(vigil_action_registry_count(r), 0);
        vigil_action_registry_free(r);
        vigil_config_free(cfg);
    }
}
END_TEST

START_TEST(user_group_need_root)
{
    vigil_config *cfg = at_load("actions:\n  - {name: a, type: exec, argv: [/usr/bin/id], "
                                "user: nobody}\n");
    vigil_action_registry *r = at_registry(NULL);
    int rc = vigil_action_registry_configure(r, at_actions(cfg));
    if (geteuid() == 0) {
        ck_assert_int_eq(rc, VIGIL_OK);
    } else {
        ck_assert_int_eq(rc, VIGIL_EPERM);
        vt_assert_error(VIGIL_EPERM, "actions[0].user: changing to another user or group needs "
                                     "root");
    }
    vigil_action_registry_free(r);
    vigil_config_free(cfg);
}
END_TEST

START_TEST(info_and_find_describe_actions)
{
    vigil_config *cfg = at_load("actions:\n"
                                "  - name: rotate_logs\n"
                                "    type: exec\n"
                                "    argv: [/usr/sbin/logrotate, --force, '{{params.config}}']\n"
                                "    targets: '^[a-z0-9-]+$'\n"
                                "    params: {config: '^/etc/logrotate\\.d/[a-z0-9-]+$'}\n"
                                "    timeout: 90s\n"
                                "    approval: {required: true, expires: 5m}\n"
                                "  - {name: note, type: log, dry_run: true}\n");
    vigil_action_registry_options o = VIGIL_ACTION_REGISTRY_OPTIONS_INIT;
    o.max_timeout_ms = 60000;
    vigil_action_registry *r = at_registry(&o);
    ck_assert_int_eq(vigil_action_registry_configure(r, at_actions(cfg)), VIGIL_OK);
    vigil_config_free(cfg); /* the registry keeps copies */
    ck_assert_uint_eq(vigil_action_registry_count(r), 2);
    vigil_action_info info = VIGIL_ACTION_INFO_INIT;
    ck_assert_int_eq(vigil_action_registry_info(r, 0, &info), VIGIL_OK);
    ck_assert_str_eq(info.name, "rotate_logs");
    ck_assert_str_eq(info.type, "exec");
    ck_assert_str_eq(info.targets, "^[a-z0-9-]+$");
    ck_assert_int_eq(info.timeout_ms, 60000); /* capped by max_timeout_ms */
    ck_assert_int_eq(info.approval_required, 1);
    ck_assert_int_eq(info.approval_expires_ms, 300000);
    ck_assert_int_eq(info.dry_run, 0);
    ck_assert_uint_eq(info.nparams, 1);
    ck_assert_str_eq(info.param_names[0], "config");
    ck_assert_str_eq(info.param_patterns[0], "^/etc/logrotate\\.d/[a-z0-9-]+$");
    ck_assert_str_eq(info.file, "remediator.yaml");
    ck_assert_uint_eq(info.line, 3 - 1); /* the "- name:" line */
    ck_assert_int_eq(vigil_action_registry_find(r, "note", &info), VIGIL_OK);
    ck_assert_str_eq(info.type, "log");
    ck_assert_str_eq(info.targets, VIGIL_ACTION_DEFAULT_TARGETS);
    ck_assert_int_eq(info.dry_run, 1);
    ck_assert_int_eq(info.approval_required, 0);
    ck_assert_int_eq(info.approval_expires_ms, 15 * 60 * 1000);
    ck_assert_int_eq(info.timeout_ms, 30000);
    ck_assert_int_eq(vigil_action_registry_find(r, "nope", &info), VIGIL_ENOTFOUND);
    vt_assert_error(VIGIL_ENOTFOUND, "no action named \"nope\"");
    ck_assert_int_eq(vigil_action_registry_info(r, 2, &info), VIGIL_ENOTFOUND);
    info.version = 0;
    ck_assert_int_eq(vigil_action_registry_info(r, 0, &info), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "action info: version 0 is not supported");
    info.version = VIGIL_ACTION_INFO_VERSION + 1;
    ck_assert_int_eq(vigil_action_registry_find(r, "note", &info), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "action info: version 2 is not supported");
    vigil_action_registry_free(r);
}
END_TEST

static const char *design_getenv(void *payload, const char *name)
{
    (void)payload;
    if (strcmp(name, "PAGER_TOKEN") == 0 || strcmp(name, "PAGER_HMAC_SECRET") == 0)
        return "value";
    return NULL;
}

/* The actions block of the design's remediator.yaml (the shape documented in
 * configs/remediator.yaml), verbatim: the key names are a contract with users. */
START_TEST(design_example_configures)
{
    static const char yaml[] =
        "actions:\n"
        "  - name: restart_demo\n"
        "    type: process                     # exec | process | systemd | signal | webhook | "
        "log\n"
        "    op: restart                       # start | stop | restart (default restart)\n"
        "    start: [\"./build/bin/vigil-demo-service\", \"--port\", \"7680\"]\n"
        "    pidfile: ./var/demo.pid\n"
        "    stop_signal: TERM                 # then KILL after stop_timeout\n"
        "    stop_timeout: 10s\n"
        "    start_timeout: 5s\n"
        "    targets: \"^demo$\"\n"
        "  - name: rotate_logs\n"
        "    type: exec\n"
        "    argv: [\"/usr/sbin/logrotate\", \"--force\", \"{{params.config}}\"]\n"
        "    targets: \"^[a-z0-9-]+$\"\n"
        "    params: {config: \"^/etc/logrotate\\\\.d/[a-z0-9-]+$\"}\n"
        "    timeout: 30s\n"
        "  - name: restart_api\n"
        "    type: systemd\n"
        "    op: restart                       # start | stop | restart | reload\n"
        "    units: [\"api.service\", \"api-*.service\"]\n"
        "    systemctl: /usr/bin/systemctl\n"
        "  - name: hup_nginx\n"
        "    type: signal\n"
        "    signal: HUP\n"
        "    pidfile: /run/nginx.pid\n"
        "    program: /usr/sbin/nginx\n"
        "    targets: \"^nginx$\"\n"
        "  - name: page_oncall\n"
        "    type: webhook\n"
        "    url: http://127.0.0.1:9099/page\n"
        "    token_env: PAGER_TOKEN\n"
        "    secret_env: PAGER_HMAC_SECRET\n"
        "    retries: 3\n";
    vigil_action_registry_options o = VIGIL_ACTION_REGISTRY_OPTIONS_INIT;
    o.base_dir = "/srv/vigil";
    o.getenv = design_getenv;
    vigil_action_registry *r = at_configure(&o, yaml);
    ck_assert_uint_eq(vigil_action_registry_count(r), 5);
    vigil_action_result res = VIGIL_ACTION_RESULT_INIT;
    vigil_action_param p = {"config", "/etc/logrotate.d/app"};
    vigil_action_request rq = at_req("rotate_logs", "web-1");
    rq.params = &p;
    rq.nparams = 1;
    rq.dry_run = 1;
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_OK);
    ck_assert_str_eq(res.output, "dry run: rotate_logs (exec): would run /usr/sbin/logrotate "
                                 "--force /etc/logrotate.d/app");
    p.value = "/etc/logrotate.d/../shadow";
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_EPERM);
    rq = at_req("restart_demo", "demo");
    rq.dry_run = 1;
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_OK);
    ck_assert_str_eq(res.output, "dry run: restart_demo (process): would restart the program of "
                                 "pidfile /srv/vigil/var/demo.pid (would run "
                                 "/srv/vigil/build/bin/vigil-demo-service --port 7680)");
    rq = at_req("restart_api", "api-3.service");
    rq.dry_run = 1;
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_OK);
    ck_assert_str_eq(res.output, "dry run: restart_api (systemd): would run /usr/bin/systemctl "
                                 "restart -- api-3.service");
    rq = at_req("hup_nginx", "nginx");
    rq.dry_run = 1;
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_OK);
    ck_assert_str_eq(res.output,
                     "dry run: hup_nginx (signal): would send HUP to the pid in /run/nginx.pid");
    rq = at_req("page_oncall", "h1");
    rq.dry_run = 1;
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_OK);
    ck_assert_str_eq(res.output, "dry run: page_oncall (webhook): would POST the request to "
                                 "http://127.0.0.1:9099 with a bearer token, signed");
    vigil_action_result_clear(&res);
    vigil_action_registry_free(r);
}
END_TEST

/* ---- exec -------------------------------------------------------------------------- */

START_TEST(exec_runs_program_and_captures_output)
{
    vigil_action_registry *r = at_configure(
        NULL, "actions:\n"
              "  - {name: hello, type: exec, argv: [/bin/echo, hello, '{{target}}'], "
              "targets: '[a-z]+'}\n"
              "  - {name: fmt, type: exec, argv: [/usr/bin/printf, '%s|%s\\n', '{{params.a}}', "
              "'{{params.b}}'], params: {a: '.*', b: '[0-9]+'}}\n"
              "  - {name: fails, type: exec, argv: [/bin/ls, /nonexistent-vigil-path]}\n");
    vigil_action_result res = VIGIL_ACTION_RESULT_INIT;
    vigil_action_request rq = at_req("hello", "world");
    rq.id = "req-1";
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_SUCCEEDED);
    ck_assert_str_eq(res.output, "hello world\n");
    ck_assert_uint_eq(res.output_len, 12);
    ck_assert_int_eq(res.exit_code, 0);
    ck_assert_int_eq(res.term_signal, 0);
    ck_assert_ptr_null(res.reason);
    ck_assert_str_eq(res.id, "req-1");
    ck_assert_int_ge(res.duration_ms, 0);

    vigil_action_param ps[] = {{"a", "x y"}, {"b", "42"}};
    rq = at_req("fmt", "t");
    rq.params = ps;
    rq.nparams = 2;
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_OK);
    ck_assert_str_eq(res.output, "x y|42\n");

    /* stderr is captured too; a non-zero exit is a failure */
    rq = at_req("fails", "t");
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_FAILED);
    ck_assert_str_eq(res.reason, "exit_code");
    ck_assert_int_eq(res.exit_code, 2);
    ck_assert_ptr_nonnull(strstr(res.output, "nonexistent-vigil-path"));
    vigil_action_result_clear(&res);
    vigil_action_registry_free(r);
}
END_TEST

static const char *fake_getenv(void *payload, const char *name)
{
    (void)payload;
    if (strcmp(name, "VIGIL_T_PASS") == 0)
        return "yes please";
    if (strcmp(name, "HOME") == 0)
        return "/root";
    return NULL;
}

START_TEST(exec_environment_is_scrubbed)
{
    setenv("VIGIL_T_LEAK", "secret", 1);
    vigil_action_registry_options o = VIGIL_ACTION_REGISTRY_OPTIONS_INIT;
    o.getenv = fake_getenv;
    vigil_action_registry *r =
        at_configure(&o, "actions:\n  - {name: env, type: exec, argv: [/usr/bin/env], "
                         "env_passthrough: [VIGIL_T_PASS, VIGIL_T_UNSET]}\n");
    vigil_action_result res = VIGIL_ACTION_RESULT_INIT;
    vigil_action_request rq = at_req("env", "x");
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_SUCCEEDED);
    ck_assert_str_eq(res.output, "PATH=/usr/sbin:/usr/bin:/sbin:/bin\nVIGIL_T_PASS=yes please\n");
    vigil_action_result_clear(&res);
    vigil_action_registry_free(r);
    unsetenv("VIGIL_T_LEAK");
}
END_TEST

START_TEST(exec_workdir_user_and_relative_program)
{
    const char *dir = vt_tmpdir();
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "actions:\n"
             "  - {name: pwd, type: exec, argv: [/bin/pwd], workdir: '%s'}\n"
             "  - {name: rel, type: exec, argv: [bin/tool, x], workdir: sub}\n"
             "  - {name: relwd, type: exec, argv: [/bin/pwd], workdir: sub}\n"
             "  - {name: missing_dir, type: exec, argv: [/bin/pwd], workdir: /nonexistent-vigil}\n"
             "  - {name: missing_prog, type: exec, argv: [/nonexistent-vigil/prog]}\n",
             dir);
    vigil_action_registry_options o = VIGIL_ACTION_REGISTRY_OPTIONS_INIT;
    o.base_dir = "/opt/vigil-base";
    vigil_action_registry *r = at_configure(&o, yaml);
    vigil_action_result res = VIGIL_ACTION_RESULT_INIT;
    vigil_action_request rq = at_req("pwd", "x");
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_OK);
    char want[600];
    snprintf(want, sizeof(want), "%s\n", dir);
    ck_assert_str_eq(res.output, want);

    /* a relative program and workdir were made absolute against base_dir */
    rq = at_req("rel", "x");
    rq.dry_run = 1;
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_DRY_RUN);
    ck_assert_str_eq(res.output, "dry run: rel (exec): would run /opt/vigil-base/bin/tool x");
    rq.dry_run = 0;
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_FAILED);
    ck_assert_str_eq(res.reason, "spawn_failed");
    /* the program is checked before anything else happens */
    ck_assert_str_eq(res.output, "cannot execute /opt/vigil-base/bin/tool: No such file or "
                                 "directory");
    rq = at_req("relwd", "x");
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_OK);
    ck_assert_str_eq(res.reason, "spawn_failed");
    ck_assert_str_eq(res.output, "cannot execute /bin/pwd: changing directory to "
                                 "/opt/vigil-base/sub: No such file or directory");

    rq = at_req("missing_dir", "x");
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_OK);
    ck_assert_str_eq(res.reason, "spawn_failed");
    ck_assert_ptr_nonnull(strstr(res.output, "changing directory to /nonexistent-vigil"));

    rq = at_req("missing_prog", "x");
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_FAILED);
    ck_assert_str_eq(res.reason, "spawn_failed");
    ck_assert_str_eq(res.output,
                     "cannot execute /nonexistent-vigil/prog: No such file or directory");
    vigil_action_result_clear(&res);
    vigil_action_registry_free(r);

    if (geteuid() == 0) { /* dropping privileges, for real */
        r = at_configure(NULL, "actions:\n"
                               "  - {name: id, type: exec, argv: [/usr/bin/id], user: nobody}\n"
                               "  - {name: idg, type: exec, argv: [/usr/bin/id, -g], group: "
                               "'65534'}\n");
        rq = at_req("id", "x");
        ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_OK);
        ck_assert_int_eq(res.status, VIGIL_ACTION_SUCCEEDED);
        ck_assert_msg(strncmp(res.output, "uid=65534(nobody) gid=65534", 27) == 0, "%s",
                      res.output);
        ck_assert_ptr_null(strstr(res.output, "groups=0"));
        rq = at_req("idg", "x");
        ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_OK);
        ck_assert_str_eq(res.output, "65534\n");
        vigil_action_result_clear(&res);
        vigil_action_registry_free(r);
    }
}
END_TEST

START_TEST(exec_refuses_a_group_writable_program)
{
    /* Every action runs its program through the runner's check (before 0.2.0
     * only the exec collector refused such a program). */
    char prog[600], yaml[1024];
    snprintf(prog, sizeof(prog), "%s/tool", vt_tmpdir());
    at_copy_exe("/bin/true", prog);
    ck_assert_int_eq(chmod(prog, 0775), 0);
    snprintf(yaml, sizeof(yaml), "actions:\n  - {name: tool, type: exec, argv: ['%s']}\n", prog);
    vigil_action_registry *r = at_configure(NULL, yaml);
    vigil_action_result res = VIGIL_ACTION_RESULT_INIT;
    vigil_action_request rq = at_req("tool", "x");
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_FAILED);
    ck_assert_str_eq(res.reason, "spawn_failed");
    char want[800];
    snprintf(want, sizeof(want), "cannot execute %s: it is writable by group or others (mode 0775)",
             prog);
    ck_assert_str_eq(res.output, want);
    ck_assert_int_eq(chmod(prog, 0755), 0);
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_SUCCEEDED);
    vigil_action_result_clear(&res);
    vigil_action_registry_free(r);
}
END_TEST

START_TEST(exec_output_is_bounded)
{
    vigil_action_registry *r = at_configure(
        NULL, "actions:\n  - {name: seq, type: exec, argv: [/usr/bin/seq, '1', '200000'], "
              "max_output: 1KiB}\n");
    vigil_action_result res = VIGIL_ACTION_RESULT_INIT;
    vigil_action_request rq = at_req("seq", "x");
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_OK);
    /* the rest was drained, so seq was not blocked and exited normally */
    ck_assert_int_eq(res.status, VIGIL_ACTION_SUCCEEDED);
    ck_assert_uint_eq(res.output_len, 1024);
    ck_assert_int_eq(res.output_truncated, 1);
    ck_assert(strncmp(res.output, "1\n2\n3\n", 6) == 0);
    vigil_action_result_clear(&res);
    vigil_action_registry_free(r);
}
END_TEST

/* Finds processes whose command line is exactly "/bin/sleep <arg>". */
static int find_sleepers(const char *const *args, size_t n, pid_t *pids)
{
    int found = 0;
    DIR *d = opendir("/proc");
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int pid = atoi(e->d_name);
        if (pid <= 1)
            continue;
        char path[300], buf[256];
        snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        ssize_t len = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (len <= 0)
            continue;
        buf[len] = '\0';
        if (strcmp(buf, "/bin/sleep") != 0)
            continue;
        const char *arg = buf + strlen(buf) + 1;
        for (size_t i = 0; i < n; i++)
            if (arg < buf + len && strcmp(arg, args[i]) == 0 && pids[i] == 0) {
                pids[i] = pid;
                found++;
            }
    }
    closedir(d);
    return found;
}

typedef struct run_ctx {
    vigil_action_registry *r;
    vigil_action_request rq;
    vigil_action_result res;
    int rc;
} run_ctx;

static void *run_thread(void *p)
{
    run_ctx *c = p;
    c->rc = vigil_action_registry_execute(c->r, &c->rq, NULL, &c->res);
    return NULL;
}

START_TEST(exec_timeout_kills_grandchildren)
{
    /* We become the reaper of orphans, so the killed grandchildren end as our
     * zombies (or vanish) and can be checked and collected. */
    ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    const char *dir = vt_tmpdir();
    char uniq[3][32];
    const char *args[3];
    for (int i = 0; i < 3; i++) {
        snprintf(uniq[i], sizeof(uniq[i]), "%d.%d", 900 + i, (int)getpid());
        args[i] = uniq[i];
    }
    char list[128];
    snprintf(list, sizeof(list), "%s\n%s\n%s\n", uniq[0], uniq[1], uniq[2]);
    const char *argfile = vt_write_file(dir, "args", list, strlen(list));
    char yaml[1024];
    /* xargs (the child) runs three /bin/sleep grandchildren at once, no shell */
    snprintf(yaml, sizeof(yaml),
             "actions:\n  - {name: slow, type: exec, argv: [/usr/bin/xargs, -a, '%s', -P, '3', "
             "-n, '1', /bin/sleep], timeout: 1500ms}\n",
             argfile);
    run_ctx c = {at_configure(NULL, yaml), at_req("slow", "x"), VIGIL_ACTION_RESULT_INIT, 0};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, run_thread, &c), 0);
    pid_t pids[3] = {0, 0, 0};
    for (int tries = 0; tries < 100 && find_sleepers(args, 3, pids) < 3; tries++)
        usleep(10000);
    ck_assert_msg(pids[0] && pids[1] && pids[2], "grandchildren not found");
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(c.rc, VIGIL_OK);
    ck_assert_int_eq(c.res.status, VIGIL_ACTION_TIMEOUT);
    ck_assert_str_eq(c.res.reason, "timeout");
    for (int i = 0; i < 3; i++) {
        char st = at_proc_state(pids[i]);
        ck_assert_msg(st == 0 || st == 'Z', "grandchild %d still alive (state %c)", (int)pids[i],
                      st);
        waitpid(pids[i], NULL, 0); /* our zombie now: collect it */
    }
    vigil_action_result_clear(&c.res);
    vigil_action_registry_free(c.r);
}
END_TEST

static int g_cancel_calls;

static int cancel_soon(void *payload)
{
    (void)payload;
    return ++g_cancel_calls >= 3;
}

START_TEST(exec_cancel_stops_program)
{
    vigil_action_registry *r = at_configure(
        NULL, "actions:\n  - {name: sleep, type: exec, argv: [/bin/sleep, '100'], timeout: 60s}\n");
    vigil_action_exec_options eo = VIGIL_ACTION_EXEC_OPTIONS_INIT;
    eo.cancel = cancel_soon;
    g_cancel_calls = 0;
    vigil_action_result res = VIGIL_ACTION_RESULT_INIT;
    vigil_action_request rq = at_req("sleep", "x");
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, &eo, &res), VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_FAILED);
    ck_assert_str_eq(res.reason, "cancelled");
    ck_assert_int_lt(res.duration_ms, 30000);
    /* a shorter timeout from the caller wins */
    eo.cancel = NULL;
    eo.timeout_ms = 100;
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, &eo, &res), VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_TIMEOUT);
    ck_assert_int_eq(res.term_signal, 0);
    vigil_action_result_clear(&res);
    vigil_action_registry_free(r);
}
END_TEST

/* ---- injection ---------------------------------------------------------------------- */

static char g_warn[8192];

static void warn_capture(const vigil_log_record *r, void *payload)
{
    (void)payload;
    size_t n = strlen(g_warn);
    snprintf(g_warn + n, sizeof(g_warn) - n, "%s %s\n", r->message, r->fields);
}

START_TEST(injection_is_literal_or_refused)
{
    const char *dir = vt_tmpdir();
    char marker[600];
    snprintf(marker, sizeof(marker), "%s/MARKER", dir);
    char payloads[9][700];
    snprintf(payloads[0], 700, "; touch %s", marker);
    snprintf(payloads[1], 700, "$(touch %s)", marker);
    snprintf(payloads[2], 700, "`touch %s`", marker);
    snprintf(payloads[3], 700, "x && touch %s", marker);
    snprintf(payloads[4], 700, "x\ntouch %s", marker);
    snprintf(payloads[5], 700, "../../../../etc/passwd");
    snprintf(payloads[6], 700, "x | touch %s", marker);
    snprintf(payloads[7], 700, "x > %s", marker);
    snprintf(payloads[8], 700, "--help");
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "actions:\n"
             "  - {name: loose, type: exec, argv: [/bin/echo, '{{target}}', '{{params.p}}'], "
             "targets: '.*', params: {p: '.*'}, workdir: '%s'}\n"
             "  - {name: strict, type: exec, argv: [/bin/echo, '{{target}}', '{{params.p}}'], "
             "params: {p: '[a-z0-9]+'}, workdir: '%s'}\n",
             dir, dir);
    vigil_action_registry_options ro = VIGIL_ACTION_REGISTRY_OPTIONS_INIT;
    ro.logger.cb = warn_capture;
    ro.logger.min_level = VIGIL_LOG_WARN;
    g_warn[0] = '\0';
    vigil_action_registry *r = at_configure(&ro, yaml);
    /* the loose patterns accept option-like values: a warning at load */
    ck_assert_msg(strstr(g_warn, "a pattern accepts values starting with '-'") != NULL, "%s",
                  g_warn);
    ck_assert_ptr_nonnull(strstr(g_warn, "action=loose what=targets pattern=.* accepts=-"));
    ck_assert_ptr_nonnull(strstr(g_warn, "action=loose what=params.p pattern=.* accepts=-"));
    ck_assert_ptr_null(strstr(g_warn, "action=strict"));
    vigil_action_result res = VIGIL_ACTION_RESULT_INIT;
    for (int i = 0; i < 9; i++) {
        /* an action whose patterns allow anything: one literal argv element each */
        vigil_action_param p = {"p", payloads[i]};
        vigil_action_request rq = at_req("loose", payloads[i]);
        rq.params = &p;
        rq.nparams = 1;
        if (strchr(payloads[i], '\n')) {
            /* control characters are refused whatever the pattern */
            ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_EPERM);
            vt_assert_error(VIGIL_EPERM, "loose: target \"x\\ntouch ");
            vt_assert_error(VIGIL_EPERM, "contains a control character");
            rq.target = "x";
            ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_EPERM);
            vt_assert_error(VIGIL_EPERM, "loose: param p \"x\\ntouch ");
            vt_assert_error(VIGIL_EPERM, "contains a control character");
            continue;
        }
        ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_OK);
        ck_assert_int_eq(res.status, VIGIL_ACTION_SUCCEEDED);
        char want[1500];
        snprintf(want, sizeof(want), "%s %s\n", payloads[i], payloads[i]);
        ck_assert_str_eq(res.output, want);
        /* the default target pattern refuses every one of them */
        rq.action = "strict";
        p.value = "ok";
        ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_EPERM);
        ck_assert_int_eq(res.status, VIGIL_ACTION_REFUSED);
        ck_assert_str_eq(res.reason, "not_allowed");
        const char *why =
            strchr(payloads[i], '\n') ? "contains a control character" : "does not match";
        vt_assert_error(VIGIL_EPERM, why);
        ck_assert_ptr_nonnull(strstr(res.output, "strict: target \""));
        /* and the param pattern refuses them as param values */
        rq.target = "ok";
        p.value = payloads[i];
        ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_EPERM);
        vt_assert_error(VIGIL_EPERM, "strict: param p \"");
        vt_assert_error(VIGIL_EPERM, "does not match \"[a-z0-9]+\"");
    }
    ck_assert_int_ne(access(marker, F_OK), 0);

    /* 1 MiB: refused by length, whatever the pattern */
    size_t big = 1 << 20;
    char *huge = malloc(big + 1);
    memset(huge, 'a', big);
    huge[big] = '\0';
    vigil_action_param p = {"p", "x"};
    vigil_action_request rq = at_req("loose", huge);
    rq.params = &p;
    rq.nparams = 1;
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_EPERM);
    vt_assert_error(VIGIL_EPERM, "loose: target \"aaaa");
    vt_assert_error(VIGIL_EPERM, "...\" is longer than 4096 bytes");
    ck_assert_uint_lt(strlen(vigil_error_last()->message), 300); /* clipped */
    rq.target = "x";
    p.value = huge;
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_EPERM);
    vt_assert_error(VIGIL_EPERM, "loose: param p \"aaaa");
    free(huge);

    /* invalid UTF-8, a param not listed, a param twice, a param missing */
    rq.target = "\xff\xfe";
    p.value = "x";
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_EPERM);
    vt_assert_error(VIGIL_EPERM, "loose: target \"\\xff\\xfe\" is not valid UTF-8");
    vigil_action_param two[] = {{"p", "a"}, {"q", "b"}};
    rq.target = "x";
    rq.params = two;
    rq.nparams = 2;
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_EPERM);
    vt_assert_error(VIGIL_EPERM, "loose: param \"q\" is not allowed (not listed in the action's "
                                 "params)");
    two[1].key = "p";
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_EPERM);
    vt_assert_error(VIGIL_EPERM, "loose: param \"p\" is given twice");
    rq.nparams = 0;
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_EPERM);
    vt_assert_error(VIGIL_EPERM, "loose: missing param \"p\" (argv needs it)");
    ck_assert_int_ne(access(marker, F_OK), 0);

    /* NUL bytes: a C string cannot carry one past the allowlist (it ends
     * there); over HTTP the strict JSON layer refuses \u0000 before any
     * request is built */
    static const char body[] = "{\"action\":\"loose\",\"target\":\"a\\u0000; touch M\"}";
    vigil__json_problem prob;
    ck_assert_int_eq(vigil__json_check(body, sizeof(body) - 1, 8, &prob), VIGIL_EENCODING);

    /* a request id with a control character, an unknown action */
    rq = at_req("loose", "x");
    rq.id = "id\n1";
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_EPERM);
    vt_assert_error(VIGIL_EPERM, "request id contains a control character");
    rq = at_req("rm_rf\nlevel=error msg=forged", "x");
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_ENOTFOUND);
    vt_assert_error(VIGIL_ENOTFOUND, "no action named \"rm_rf\\nlevel=error msg=forged\"");
    ck_assert_int_eq(res.status, VIGIL_ACTION_REFUSED);
    ck_assert_str_eq(res.reason, "not_allowed");
    vigil_action_result_clear(&res);
    vigil_action_registry_free(r);
}
END_TEST

START_TEST(validate_is_the_allowlist_guard)
{
    vigil_action_registry *r =
        at_configure(NULL, "actions:\n  - {name: demo, type: log, targets: '^demo$'}\n");
    vigil_action_result res = VIGIL_ACTION_RESULT_INIT;
    vigil_action_request rq = at_req("demo", "demo");
    rq.id = "v1";
    ck_assert_int_eq(vigil_action_registry_validate(r, &rq, &res), VIGIL_OK);
    ck_assert_str_eq(res.id, "v1");
    ck_assert_ptr_null(res.reason);
    rq.target = "demo2";
    ck_assert_int_eq(vigil_action_registry_validate(r, &rq, &res), VIGIL_EPERM);
    vt_assert_error(VIGIL_EPERM, "demo: target \"demo2\" does not match \"^demo$\"");
    ck_assert_int_eq(res.status, VIGIL_ACTION_REFUSED);
    ck_assert_str_eq(res.reason, "not_allowed");
    ck_assert_int_eq(vigil_action_registry_validate(r, &rq, NULL), VIGIL_EPERM);
    rq.version = 0;
    ck_assert_int_eq(vigil_action_registry_validate(r, &rq, &res), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "action request: version 0 is not supported");
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "action request: version 0 is not supported");
    vigil_action_result_clear(&res);
    vigil_action_registry_free(r);
}
END_TEST

START_TEST(result_version_is_checked)
{
    vigil_action_registry *r =
        at_configure(NULL, "actions:\n  - {name: demo, type: log, targets: '^demo$'}\n");
    vigil_action_request rq = at_req("demo", "demo");
    vigil_action_result good = VIGIL_ACTION_RESULT_INIT;
    ck_assert_int_eq(vigil_action_result_set_id(&good, "g"), VIGIL_OK);
    const unsigned int bad_versions[] = {0, VIGIL_ACTION_RESULT_VERSION + 1};
    for (size_t i = 0; i < sizeof(bad_versions) / sizeof(bad_versions[0]); i++) {
        vigil_action_result bad;
        memset(&bad, 0, sizeof(bad));
        bad.version = bad_versions[i];
        char msg[128];
        ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &bad), VIGIL_EVERSION);
        snprintf(msg, sizeof(msg),
                 "vigil_action_registry_execute: result version %u is not supported",
                 bad_versions[i]);
        vt_assert_error(VIGIL_EVERSION, msg);
        ck_assert_int_eq(vigil_action_registry_validate(r, &rq, &bad), VIGIL_EVERSION);
        vt_assert_error(VIGIL_EVERSION, "vigil_action_registry_validate: result version");
        ck_assert_int_eq(vigil_action_result_copy(&bad, &good), VIGIL_EVERSION);
        vt_assert_error(VIGIL_EVERSION, "vigil_action_result_copy: result version");
        ck_assert_int_eq(vigil_action_result_set_id(&bad, "x"), VIGIL_EVERSION);
        vt_assert_error(VIGIL_EVERSION, "vigil_action_result_set_id: result version");
        ck_assert_int_eq(vigil_action_result_set_reason(&bad, "x"), VIGIL_EVERSION);
        vt_assert_error(VIGIL_EVERSION, "vigil_action_result_set_reason: result version");
        ck_assert_int_eq(vigil_action_result_set_output(&bad, "x", 1), VIGIL_EVERSION);
        vt_assert_error(VIGIL_EVERSION, "vigil_action_result_set_output: result version");
        /* nothing was written into the refused struct */
        ck_assert_ptr_null(bad.id);
        ck_assert_ptr_null(bad.output);
    }
    vigil_action_result_clear(&good);
    vigil_action_registry_free(r);
}
END_TEST

/* ---- dry run and log ------------------------------------------------------------------ */

typedef struct log_capture {
    char lines[8][512];
    int n;
} log_capture;

static void capture_log(const vigil_log_record *rec, void *payload)
{
    log_capture *c = payload;
    if (c->n < 8)
        snprintf(c->lines[c->n++], 512, "%s|%s|%s", vigil_log_level_name(rec->level), rec->message,
                 rec->fields);
}

START_TEST(dry_run_and_log_actions)
{
    const char *dir = vt_tmpdir();
    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             "actions:\n"
             "  - {name: touch, type: exec, argv: [/usr/bin/touch, '%s/made'], dry_run: true}\n"
             "  - {name: touch2, type: exec, argv: [/usr/bin/touch, '%s/made2', '{{params.n}}'], "
             "params: {n: '[a-z ]+'}}\n"
             "  - {name: note, type: log, level: warn, params: {why: '.*'}}\n",
             dir, dir);
    log_capture cap;
    memset(&cap, 0, sizeof(cap));
    vigil_action_registry_options o = VIGIL_ACTION_REGISTRY_OPTIONS_INIT;
    o.logger.cb = capture_log;
    o.logger.payload = &cap;
    vigil_action_registry *r = at_configure(&o, yaml);
    vigil_action_result res = VIGIL_ACTION_RESULT_INIT;
    vigil_action_request rq = at_req("touch", "x");
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_DRY_RUN);
    ck_assert_str_eq(res.reason, "dry_run");
    char want[1024];
    snprintf(want, sizeof(want), "dry run: touch (exec): would run /usr/bin/touch %s/made", dir);
    ck_assert_str_eq(res.output, want);

    vigil_action_param p = {"n", "a b"};
    rq = at_req("touch2", "x");
    rq.params = &p;
    rq.nparams = 1;
    rq.dry_run = 1;
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_DRY_RUN);
    snprintf(want, sizeof(want),
             "dry run: touch2 (exec): would run /usr/bin/touch %s/made2 \"a b\"", dir);
    ck_assert_str_eq(res.output, want);
    /* the allowlist comes before the dry run */
    p.value = "A;B";
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_EPERM);
    ck_assert_int_eq(res.status, VIGIL_ACTION_REFUSED);
    char path[700];
    snprintf(path, sizeof(path), "%s/made", dir);
    ck_assert_int_ne(access(path, F_OK), 0);
    snprintf(path, sizeof(path), "%s/made2", dir);
    ck_assert_int_ne(access(path, F_OK), 0);

    vigil_action_param why = {"why", "cpu \"hot\""};
    rq = at_req("note", "web-1");
    rq.params = &why;
    rq.nparams = 1;
    rq.policy = "cpu_high";
    rq.reason = "cpu_usage > 0.9";
    cap.n = 0;
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_SUCCEEDED);
    ck_assert_str_eq(res.output, "logged note target=\"web-1\" policy=\"cpu_high\" "
                                 "params={why=\"cpu \\\"hot\\\"\"} reason=\"cpu_usage > 0.9\"");
    ck_assert_int_eq(cap.n, 2);
    ck_assert_str_eq(cap.lines[0], "warn|action request logged (log action)|action=note "
                                   "target=\"web-1\" policy=\"cpu_high\" params={why=\"cpu "
                                   "\\\"hot\\\"\"} reason=\"cpu_usage > 0.9\"");
    const char *fin = "info|action finished|action=\"note\" id=- target=\"web-1\" "
                      "status=succeeded reason=- duration_ms=";
    ck_assert_msg(strncmp(cap.lines[1], fin, strlen(fin)) == 0, "%s", cap.lines[1]);
    vigil_action_result_clear(&res);
    vigil_action_registry_free(r);
}
END_TEST

/* ---- systemd -------------------------------------------------------------------------- */

START_TEST(systemd_runs_systemctl_with_checked_unit)
{
    const char *dir = vt_tmpdir();
    char systemctl[600], argvfile[700];
    snprintf(systemctl, sizeof(systemctl), "%s/systemctl", dir);
    snprintf(argvfile, sizeof(argvfile), "%s.argv", systemctl);
    at_copy_helper("record_argv", systemctl);
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "actions:\n"
             "  - {name: restart_api, type: systemd, op: restart, units: [api.service, "
             "'api-*.service'], systemctl: '%s'}\n"
             "  - {name: reload_any, type: systemd, op: reload, units: ['*.service'], targets: "
             "'.*', systemctl: '%s'}\n",
             systemctl, systemctl);
    vigil_action_registry *r = at_configure(NULL, yaml);
    vigil_action_result res = VIGIL_ACTION_RESULT_INIT;
    vigil_action_request rq = at_req("restart_api", "api-2.service");
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_SUCCEEDED);
    ck_assert_str_eq(res.output, "recorded 4 args\n");
    char want[1024];
    snprintf(want, sizeof(want), "%s\nrestart\n--\napi-2.service\n", systemctl);
    char *got = at_read_file(argvfile);
    ck_assert_str_eq(got, want);
    free(got);
    unlink(argvfile);

    /* not one of the globs */
    rq.target = "db.service";
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_EPERM);
    vt_assert_error(VIGIL_EPERM,
                    "restart_api: unit \"db.service\" matches none of the action's units");
    ck_assert_str_eq(res.reason, "not_allowed");
    /* unit names are validated even when the target pattern lets anything in */
    static const struct {
        const char *unit, *why;
    } bad[] = {
        {"--force.service", "reload_any: unit \"--force.service\" starts with '-'"},
        {"a;b.service", "may only hold A-Z a-z 0-9 : _ . @ -"},
        {"a b.service", "may only hold"},
        {"../x.service", "may only hold"},
        {"api.socketx", "must end in .service"},
        {"", "reload_any: unit \"\" is empty"},
    };
    rq.action = "reload_any";
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rq.target = bad[i].unit;
        ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_EPERM);
        vt_assert_error(VIGIL_EPERM, bad[i].why);
    }
    ck_assert_int_ne(access(argvfile, F_OK), 0); /* never ran */
    /* a failing systemctl */
    vt_write_file(dir, "systemctl.exit", "5\n", 2);
    rq.target = "web@1.service";
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_FAILED);
    ck_assert_int_eq(res.exit_code, 5);
    ck_assert_str_eq(res.reason, "exit_code");
    got = at_read_file(argvfile);
    snprintf(want, sizeof(want), "%s\nreload\n--\nweb@1.service\n", systemctl);
    ck_assert_str_eq(got, want);
    free(got);
    vigil_action_result_clear(&res);
    vigil_action_registry_free(r);
}
END_TEST

/* ---- threads, lost children ---------------------------------------------------------- */

typedef struct par_ctx {
    vigil_action_registry *r;
    int idx;
    int ok;
} par_ctx;

static void *par_thread(void *p)
{
    par_ctx *c = p;
    char target[32], want[64];
    for (int i = 0; i < 10; i++) {
        snprintf(target, sizeof(target), "t%d-%d", c->idx, i);
        snprintf(want, sizeof(want), "%s\n", target);
        vigil_action_request rq = at_req("echo", target);
        vigil_action_result res = VIGIL_ACTION_RESULT_INIT;
        if (vigil_action_registry_execute(c->r, &rq, NULL, &res) == VIGIL_OK &&
            res.status == VIGIL_ACTION_SUCCEEDED && strcmp(res.output, want) == 0)
            c->ok++;
        vigil_action_result_clear(&res);
    }
    return NULL;
}

START_TEST(execute_from_many_threads)
{
    vigil_action_registry *r = at_configure(
        NULL, "actions:\n  - {name: echo, type: exec, argv: [/bin/echo, '{{target}}']}\n");
    par_ctx c[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        c[i] = (par_ctx){r, i, 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, par_thread, &c[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
        ck_assert_int_eq(c[i].ok, 10);
    }
    vigil_action_registry_free(r);
}
END_TEST

START_TEST(ignored_sigchld_is_reported)
{
    signal(SIGCHLD, SIG_IGN); /* children are reaped by the kernel: statuses are lost */
    vigil_action_registry *r =
        at_configure(NULL, "actions:\n  - {name: t, type: exec, argv: [/bin/true]}\n");
    vigil_action_result res = VIGIL_ACTION_RESULT_INIT;
    vigil_action_request rq = at_req("t", "x");
    ck_assert_int_eq(vigil_action_registry_execute(r, &rq, NULL, &res), VIGIL_OK);
    ck_assert_int_eq(res.status, VIGIL_ACTION_FAILED);
    ck_assert_str_eq(res.reason, "lost");
    ck_assert_ptr_nonnull(strstr(res.output, "is SIGCHLD ignored"));
    vigil_action_result_clear(&res);
    vigil_action_registry_free(r);
    signal(SIGCHLD, SIG_DFL);
}
END_TEST

/* ---- out of memory ------------------------------------------------------------------- */

typedef struct oom_ctx {
    vigil_config *cfg;
    vigil_action_registry *r;
    vigil_action_result res;
} oom_ctx;

static int oom_configure(void *p)
{
    oom_ctx *c = p;
    vigil_action_registry_options o = VIGIL_ACTION_REGISTRY_OPTIONS_INIT;
    o.logger.min_level = VIGIL_LOG_OFF;
    int rc = vigil_action_registry_new(&c->r, &o);
    if (!rc)
        rc = vigil_action_registry_add_builtins(c->r);
    if (!rc)
        rc = vigil_action_registry_configure(c->r, at_actions(c->cfg));
    return rc;
}

static void oom_free(void *p)
{
    oom_ctx *c = p;
    vigil_action_registry_free(c->r);
    c->r = NULL;
    vigil_action_result_clear(&c->res);
}

static int oom_execute(void *p)
{
    oom_ctx *c = p;
    int rc = oom_configure(c);
    if (rc)
        return rc;
    vigil_action_param ps = {"n", "x"};
    vigil_action_request rq = at_req("echo", "t1");
    rq.id = "oom";
    rq.params = &ps;
    rq.nparams = 1;
    if ((rc = vigil_action_registry_execute(c->r, &rq, NULL, &c->res)))
        return rc;
    rq.action = "note";
    if ((rc = vigil_action_registry_execute(c->r, &rq, NULL, &c->res)))
        return rc;
    rq.action = "echo";
    rq.dry_run = 1;
    return vigil_action_registry_execute(c->r, &rq, NULL, &c->res);
}

START_TEST(out_of_memory_is_clean)
{
    vt_alloc_install(); /* before anything is allocated */
    oom_ctx c;
    memset(&c, 0, sizeof(c));
    c.res.version = VIGIL_ACTION_RESULT_VERSION;
    c.cfg = at_load("actions:\n"
                    "  - {name: echo, type: exec, argv: [/bin/echo, '{{target}}', "
                    "'{{params.n}}'], params: {n: '[a-z]+'}, env_passthrough: [HOME]}\n"
                    "  - {name: note, type: log, level: debug, params: {n: '.*'}}\n"
                    "  - {name: p, type: process, start: [/bin/sleep, '1'], pidfile: "
                    "/nonexistent-vigil/p.pid}\n"
                    "  - {name: s, type: systemd, units: [a.service]}\n"
                    "  - {name: sig, type: signal, process: nothing}\n"
                    "  - {name: w, type: webhook, url: 'http://127.0.0.1:9/x'}\n");
    long n = vt_oom_sweep(oom_configure, oom_free, &c, 0);
    ck_assert_int_gt(n, 10);
    n = vt_oom_sweep(oom_execute, oom_free, &c, 0);
    ck_assert_int_gt(n, 10);
    vigil_config_free(c.cfg);
}
END_TEST

START_TEST(signature_make_and_verify)
{
    static const char body[] = "{\"id\":\"a\"}";
    static const char want[] =
        "t=1700000000,v1=7985eb088c592ea717eee4e738aa0899c1b894c63584e3b6766456e0ce5ea0f1";
    vigil_buf b = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil_signature_make(&b, "sekret", 6, 1700000000, body, strlen(body)),
                     VIGIL_OK);
    ck_assert_str_eq(b.ptr, want);
    /* good, inside the skew on either side */
    ck_assert_int_eq(
        vigil_signature_verify(want, "sekret", 6, body, strlen(body), 1700000000 + 300, 0),
        VIGIL_OK);
    ck_assert_int_eq(
        vigil_signature_verify(want, "sekret", 6, body, strlen(body), 1700000000 - 300, 0),
        VIGIL_OK);
    /* another scheme and a second v1 (key rotation) are accepted */
    ck_assert_int_eq(vigil_signature_verify(
                         "t=1700000000,v2=zz,v1=00000000000000000000000000000000"
                         "00000000000000000000000000000000,"
                         "v1=7985eb088c592ea717eee4e738aa0899c1b894c63584e3b6766456e0ce5ea0f1",
                         "sekret", 6, body, strlen(body), 1700000000, 0),
                     VIGIL_OK);
    /* stale and future */
    ck_assert_int_eq(vigil_signature_verify(want, "sekret", 6, body, strlen(body), 1700000301, 0),
                     VIGIL_EAUTH);
    vt_assert_error(VIGIL_EAUTH, "timestamp is 301 s away from now (limit 300 s)");
    ck_assert_int_eq(vigil_signature_verify(want, "sekret", 6, body, strlen(body), 1699999000, 60),
                     VIGIL_EAUTH);
    vt_assert_error(VIGIL_EAUTH, "1000 s away from now (limit 60 s)");
    /* wrong secret, changed body */
    ck_assert_int_eq(vigil_signature_verify(want, "sekreT", 6, body, strlen(body), 1700000000, 0),
                     VIGIL_EAUTH);
    vt_assert_error(VIGIL_EAUTH, "signature: mismatch");
    ck_assert_int_eq(vigil_signature_verify(want, "sekret", 6, "{\"id\":\"b\"}", 10, 1700000000, 0),
                     VIGIL_EAUTH);
    vt_assert_error(VIGIL_EAUTH, "signature: mismatch");
    /* malformed */
    static const char *bad[] = {
        "t=1700000000",
        "v1=7985eb088c592ea717eee4e738aa0899c1b894c63584e3b6766456e0ce5ea0f1",
        "t=abc,v1=7985eb088c592ea717eee4e738aa0899c1b894c63584e3b6766456e0ce5ea0f1",
        "t=-5,v1=7985eb088c592ea717eee4e738aa0899c1b894c63584e3b6766456e0ce5ea0f1",
        "t=1700000000,v1=7985",
        "t=1700000000,v1=zz85eb088c592ea717eee4e738aa0899c1b894c63584e3b6766456e0ce5ea0f1",
        "t=1700000000,,v1=7985eb088c592ea717eee4e738aa0899c1b894c63584e3b6766456e0ce5ea0f1",
        "garbage"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(
            vigil_signature_verify(bad[i], "sekret", 6, body, strlen(body), 1700000000, 0),
            VIGIL_EAUTH);
        vt_assert_error(VIGIL_EAUTH, "signature: malformed header");
    }
    ck_assert_int_eq(vigil_signature_verify(NULL, "sekret", 6, body, strlen(body), 1700000000, 0),
                     VIGIL_EAUTH);
    vt_assert_error(VIGIL_EAUTH, "signature: missing");
    ck_assert_int_eq(vigil_signature_verify(want, "", 0, body, strlen(body), 1700000000, 0),
                     VIGIL_EINVAL);
    ck_assert_int_eq(vigil_signature_make(&b, NULL, 0, 1, body, 1), VIGIL_EINVAL);
    vigil_buf_dispose(&b);
}
END_TEST

static Suite *action_suite(void)
{
    Suite *s = suite_create("action");
    TCase *tc = tcase_create("model");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, status_names_round_trip);
    tcase_add_test(tc, result_strings_are_owned_and_sanitised);
    tcase_add_test(tc, result_version_is_checked);
    tcase_add_test(tc, request_param_lookup);
    tcase_add_test(tc, signature_make_and_verify);
    tcase_add_test(tc, registry_options_checked);
    tcase_add_test(tc, custom_type_registered_from_outside);
    tcase_add_test(tc, config_errors_are_located);
    tcase_add_test(tc, user_group_need_root);
    tcase_add_test(tc, info_and_find_describe_actions);
    tcase_add_test(tc, design_example_configures);
    tcase_add_test(tc, validate_is_the_allowlist_guard);
    suite_add_tcase(s, tc);

    tc = tcase_create("exec");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, exec_runs_program_and_captures_output);
    tcase_add_test(tc, exec_environment_is_scrubbed);
    tcase_add_test(tc, exec_workdir_user_and_relative_program);
    tcase_add_test(tc, exec_output_is_bounded);
    tcase_add_test(tc, exec_refuses_a_group_writable_program);
    tcase_add_test(tc, exec_timeout_kills_grandchildren);
    tcase_add_test(tc, exec_cancel_stops_program);
    tcase_add_test(tc, injection_is_literal_or_refused);
    tcase_add_test(tc, dry_run_and_log_actions);
    tcase_add_test(tc, systemd_runs_systemctl_with_checked_unit);
    tcase_add_test(tc, execute_from_many_threads);
    tcase_add_test(tc, ignored_sigchld_is_reported);
    suite_add_tcase(s, tc);

    tc = tcase_create("oom");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, out_of_memory_is_clean);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(action_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
