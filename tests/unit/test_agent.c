/* The agent in-process: its configuration (and configs/agent.yaml), the
 * embedder's collector types, options, collect_once, allocation failures.
 * Shipping to a hub, the spool, the run loop and the daemon are in
 * tests/integration/test_agent_http.c. */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent_testutil.h"
#include "testutil.h"
#include "vigil/agent.h"

/* ---- configuration ------------------------------------------------------------------------ */

/* A collector type whose payload (the value it reports) belongs to its registry. */
typedef struct plug_payload {
    double value;
    int freed;
} plug_payload;

static void plug_payload_free(void *p)
{
    ((plug_payload *)p)->freed++;
}

static int plug_create(void **state, const vigil_config_node *cfg,
                       const vigil_collector_context *ctx)
{
    (void)cfg;
    *state = ctx->type_payload;
    return VIGIL_OK;
}

static int plug_collect(void *state, vigil_batch *out, int64_t now)
{
    vigil_metric m = {"plug_value", ((plug_payload *)state)->value, now, NULL, 0, NULL};
    return vigil_batch_add(out, &m);
}

START_TEST(embedder_types_reach_the_agent)
{
    plug_payload pl = {7.5, 0};
    vigil_collector_registry *types = NULL;
    ck_assert_int_eq(vigil_collector_registry_new(&types), VIGIL_OK);
    vigil_collector_type t = {
        .version = VIGIL_COLLECTOR_TYPE_VERSION,
        .name = "plug",
        .payload = &pl,
        .payload_free = plug_payload_free,
        .create = plug_create,
        .collect = plug_collect,
        .destroy = nothing_destroy,
    };
    ck_assert_int_eq(vigil_collector_register(types, &t), VIGIL_OK);
    vigil_config *cfg = load_yaml("agent: {id: h1}\n"
                                  "collectors:\n  - {type: plug}\n  - {type: load}\n");
    vigil_agent_options o = test_opts();
    o.offline = 1;
    /* without the embedder's registry, `plug` is unknown */
    o.collector_types = NULL;
    vigil_agent *a = NULL;
    ck_assert_int_eq(vigil_agent_new(&a, cfg, &o), VIGIL_ENOTFOUND);
    vt_assert_error(VIGIL_ENOTFOUND, "agent.yaml:3:12: collectors[0].type: unknown collector type "
                                     "\"plug\"");
    /* with it, `plug` resolves there and `load` among the built-ins */
    o.collector_types = types;
    ck_assert_int_eq(vigil_agent_check_config(cfg, &o), VIGIL_OK);
    /* a name found nowhere still fails, located */
    vigil_config *bad = load_yaml("agent: {id: h1}\n"
                                  "collectors:\n  - {type: plugg}\n");
    ck_assert_int_eq(vigil_agent_check_config(bad, &o), VIGIL_ENOTFOUND);
    ck_assert_str_eq(vigil_error_last()->message,
                     "agent.yaml:3:12: collectors[0].type: unknown collector type \"plugg\"");
    vigil_config_free(bad);
    a = new_agent(cfg, &o);
    ck_assert_uint_eq(vigil_agent_collector_count(a), 2);
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    ck_assert_int_eq(vigil_agent_collect_once(a, b, 1), VIGIL_OK);
    ck_assert_int_eq(count_named(b, "plug_value"), 1);
    ck_assert_int_eq(count_named(b, "load1"), 1);
    for (size_t i = 0; i < vigil_batch_count(b); i++)
        if (strcmp(vigil_batch_get(b, i)->name, "plug_value") == 0)
            ck_assert_double_eq(vigil_batch_get(b, i)->value, 7.5);
    vigil_batch_free(b);
    vigil_agent_free(a);
    vigil_config_free(cfg);
    ck_assert_int_eq(pl.freed, 0); /* the registry keeps the payload */
    vigil_collector_registry_free(types);
    ck_assert_int_eq(pl.freed, 1);
}
END_TEST

START_TEST(shipped_config_is_valid)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/configs/agent.yaml", vt_srcdir());
    vigil_config *cfg = NULL;
    int rc = vigil_config_load_file(&cfg, path, NULL);
    ck_assert_msg(rc == VIGIL_OK, "%s", vigil_error_last()->message);
    vigil_agent_options o = test_opts();
    o.collector_types = NULL; /* the built-ins only, as the daemon does */
    rc = vigil_agent_check_config(cfg, &o);
    ck_assert_msg(rc == VIGIL_OK, "%s", vigil_error_last()->message);
    /* and an agent really runs from it (offline: no hub, no spool) */
    o.offline = 1;
    vigil_agent *a = new_agent(cfg, &o);
    ck_assert_uint_ge(vigil_agent_collector_count(a), 6);
    char host[256] = "";
    gethostname(host, sizeof(host));
    ck_assert_str_eq(vigil_agent_id(a), host);
    vigil_agent_free(a);
    vigil_config_free(cfg);
}
END_TEST

START_TEST(config_errors_are_located)
{
    static const struct {
        const char *yaml;
        int code;
        const char *msg;
        unsigned line;
    } bad[] = {
        {"interval: 1s\nhub:\n  urll: [x]\n", VIGIL_EUNKNOWNKEY,
         "agent.yaml:3:3: hub.urll: unknown key", 3},
        {"intervall: 1s\n", VIGIL_EUNKNOWNKEY, "intervall: unknown key", 1},
        {"agent: {id: a, tagz: {}}\n", VIGIL_EUNKNOWNKEY, "agent.tagz: unknown key", 1},
        {"spool: {path: x, max_size: 1KiB}\n", VIGIL_ERANGE,
         "spool.max_size: must be at least 4KiB", 1},
        {"interval: ten\n", VIGIL_EVALUE, "interval: expected a duration", 1},
        {"interval: 1ms\n", VIGIL_ERANGE, "interval: must be at least 10ms", 1},
        {"\nhub: {retries: 11}\n", VIGIL_ERANGE, "hub.retries: must be at most 10", 2},
        {"hub: {urls: []}\n", VIGIL_EVALUE, "hub.urls: at least one hub URL", 1},
        {"hub: {urls: [\"ftp://h\"]}\n", VIGIL_EINVAL,
         "hub.urls: urls[0]: scheme \"ftp\" is not allowed", 1},
        {"agent: {tags: {host: x}}\n", VIGIL_EINVAL, "the host tag is the agent id", 1},
        {"agent: {tags: {\"bad-key\": x}}\n", VIGIL_ENAME, "invalid tag key \"bad-key\"", 1},
        {"batch: {max_metrics: 0}\n", VIGIL_ERANGE, "batch.max_metrics: must be at least 1", 1},
        {"log_level: loud\n", VIGIL_EVALUE, "log_level: expected a log level", 1},
        {"hub: [1]\n", VIGIL_ETYPE, "hub", 1},
        {"collectors: {type: cpu}\n", VIGIL_ETYPE, "collectors", 1},
        {"collectors:\n  - {type: nope}\n", VIGIL_ENOTFOUND, "nope", 2},
        {"collectors:\n  - {type: cpu, bogus: 1}\n", VIGIL_EUNKNOWNKEY,
         "collectors[0].bogus: unknown key", 2},
    };
    const char *spool = fresh_dir();
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        vigil_config *cfg = load_yaml(bad[i].yaml);
        vigil_agent_options o = test_opts();
        o.spool_path = spool;
        vigil_agent *a = NULL;
        int rc = vigil_agent_new(&a, cfg, &o);
        ck_assert_msg(rc == bad[i].code, "%s: got %d (%s)", bad[i].yaml, rc,
                      vigil_error_last()->message);
        vt_assert_error(bad[i].code, bad[i].msg);
        const vigil_error *e = vigil_error_last();
        ck_assert_msg(e->file && strcmp(e->file, "agent.yaml") == 0, "%s: no file in %s",
                      bad[i].yaml, e->message);
        ck_assert_uint_eq(e->line, bad[i].line);
        ck_assert_ptr_null(a);
        ck_assert_int_eq(vigil_agent_check_config(cfg, &o), bad[i].code);
        vigil_config_free(cfg);
    }
}
END_TEST

START_TEST(bad_options)
{
    vigil_agent *a = NULL;
    vigil_agent_options o;
    ck_assert_int_eq(vigil_agent_options_init(&o, 42), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "agent options: version 42 is not supported");
    o = test_opts();
    o.version = 5;
    ck_assert_int_eq(vigil_agent_new(&a, NULL, &o), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "agent options: version 5 is not supported");
    o = test_opts();
    o.offline = 1;
    ck_assert_int_eq(vigil_agent_new(NULL, NULL, &o), VIGIL_EINVAL);
    vigil_tag t[1] = {{"host", "x"}};
    o.tags = t;
    o.ntags = 1;
    ck_assert_int_eq(vigil_agent_new(&a, NULL, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "host tag is the agent id");
    o.ntags = 0;
    o.interval_ms = 5;
    ck_assert_int_eq(vigil_agent_new(&a, NULL, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "out of range");
    o.interval_ms = 0;
    char longid[300];
    memset(longid, 'x', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    o.agent_id = longid;
    ck_assert_int_eq(vigil_agent_new(&a, NULL, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "id is longer than 200 bytes");
    ck_assert_int_eq(vigil_agent_step(NULL, 0, NULL), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_agent_run(NULL), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_agent_flush(NULL, 0), VIGIL_EINVAL);
    vigil_agent_stats s = VIGIL_AGENT_STATS_INIT;
    ck_assert_int_eq(vigil_agent_stats_get(NULL, &s), VIGIL_EINVAL);
    vigil_agent_stop(NULL);
    vigil_agent_free(NULL);

    /* a spool in use by another agent */
    const char *dir = fresh_dir();
    vigil_config *cfg = std_config(free_port(), dir, NULL);
    o = test_opts();
    vigil_agent *first = new_agent(cfg, &o);
    ck_assert_int_eq(vigil_agent_new(&a, cfg, &o), VIGIL_EBUSY);
    vt_assert_error(VIGIL_EBUSY, "in use by another process");
    vigil_agent_free(first);
    vigil_config_free(cfg);
}
END_TEST

START_TEST(collect_once_reads_rates_twice)
{
    vigil_config *cfg = load_yaml("agent: {id: once, tags: {env: t}}\n"
                                  "collectors: [{type: counter}, {type: memory}, {type: load}]\n");
    vigil_agent_options o = test_opts();
    o.offline = 1;
    vigil_agent *a = new_agent(cfg, &o);
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    ck_assert_int_eq(vigil_agent_collect_once(a, b, 10), VIGIL_OK);
    ck_assert_str_eq(vigil_batch_agent(b), "once");
    const vigil_metric *c = find(b, "test_counter");
    ck_assert_ptr_nonnull(c);
    ck_assert_double_eq(c->value, 2); /* the rate-based type was read twice */
    ck_assert_int_eq(count_named(b, "test_counter"), 1);
    const vigil_metric *mem = find(b, "memory_used_ratio");
    ck_assert_ptr_nonnull(mem);
    ck_assert(mem->value >= 0 && mem->value <= 1);
    ck_assert_str_eq(tag(mem, "host"), "once");
    ck_assert_str_eq(tag(mem, "env"), "t");
    ck_assert_ptr_nonnull(find(b, "load1"));
    ck_assert_int_eq(vigil_agent_collect_once(a, NULL, 0), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_agent_collect_once(a, b, -1), VIGIL_EINVAL);
    vigil_batch_free(b);
    vigil_agent_free(a);
    vigil_config_free(cfg);
}
END_TEST

typedef struct {
    vigil_config *cfg;
    vigil_agent *a;
    vigil_batch *b;
} oom_ctx;

static int oom_once(void *p)
{
    oom_ctx *x = p;
    vigil_agent_options o = test_opts();
    o.offline = 1;
    o.logger.min_level = VIGIL_LOG_OFF;
    int rc = vigil_agent_new(&x->a, x->cfg, &o);
    if (!rc)
        rc = vigil_batch_new(&x->b);
    if (!rc)
        rc = vigil_agent_collect_once(x->a, x->b, 1);
    return rc;
}

static void oom_free(void *p)
{
    oom_ctx *x = p;
    vigil_agent_free(x->a);
    vigil_batch_free(x->b);
    x->a = NULL;
    x->b = NULL;
}

START_TEST(oom_sweep_new_and_collect)
{
    oom_ctx x = {load_yaml("agent: {id: o, tags: {a: b}}\ncollectors: [{type: counter}, "
                           "{type: load}]\n"),
                 NULL, NULL};
    ck_assert_int_gt(vt_oom_sweep(oom_once, oom_free, &x, 0), 0);
    vigil_config_free(x.cfg);
}
END_TEST

static Suite *agent_suite(void)
{
    Suite *s = suite_create("agent");
    TCase *tc = tcase_create("agent");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, shipped_config_is_valid);
    tcase_add_test(tc, embedder_types_reach_the_agent);
    tcase_add_test(tc, config_errors_are_located);
    tcase_add_test(tc, bad_options);
    tcase_add_test(tc, collect_once_reads_rates_twice);
    tcase_add_test(tc, oom_sweep_new_and_collect);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(agent_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
