/* Collector module: registry, instances (shared keys, tags, error samples,
 * backoff), configuration errors, and the cpu, memory, load, disk, net, tcp,
 * file and process collectors against the real /proc (and a fake procfs for
 * exact rate arithmetic). exec and http have their own suites. */
#include "collector_test.h"
#include "internal/plugin.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void mkdir_p(const char *dir, const char *sub)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s", dir, sub);
    ck_assert_int_eq(mkdir(p, 0755), 0);
}

static void write_str(const char *dir, const char *name, const char *text)
{
    vt_write_file(dir, name, text, strlen(text));
}

/* ---- a test-only collector type ----------------------------------------------- */

typedef struct {
    int fail;         /* next collect fails with this code (0: succeeds) */
    int fds[2];       /* pipe: readable = an event is pending */
    int destroyed;    /* set by destroy through the payload */
    int payload_free; /* set by the payload destructor */
} fake_ctl;

typedef struct {
    fake_ctl *ctl;
    const vigil_collector_context *ctx;
} fake_state;

static const char *const fake_keys[] = {"knob", NULL};

static int fake_create(void **state, const vigil_config_node *config,
                       const vigil_collector_context *ctx)
{
    int64_t knob = 0;
    int rc = vigil_config_get_int(&knob, config, "knob", 0);
    if (rc != VIGIL_OK)
        return rc;
    if (knob < 0)
        return vigil_error_set_at(VIGIL_ERANGE, vigil_config_node_get(config, "knob"),
                                  "knob must not be negative");
    fake_state *s = calloc(1, sizeof(*s));
    s->ctl = ctx->type_payload;
    s->ctx = ctx;
    *state = s;
    return VIGIL_OK;
}

static int fake_collect(void *p, vigil_batch *out, int64_t now)
{
    fake_state *s = p;
    vigil_tag tags[2] = {{"kind", "fake"}, {"role", "own"}};
    vigil_metric m = {"fake_value", 42, now, tags, 2, NULL};
    int rc = vigil_batch_add(out, &m);
    if (rc != VIGIL_OK)
        return rc;
    if (s->ctl->fail)
        return vigil_error_set(s->ctl->fail, "the fake \xff failed on purpose");
    return VIGIL_OK;
}

static int fake_poll_fd(void *p)
{
    return ((fake_state *)p)->ctl->fds[0];
}

static int fake_on_event(void *p, vigil_batch *out, int64_t now)
{
    fake_state *s = p;
    char c;
    int n = 0;
    while (read(s->ctl->fds[0], &c, 1) == 1)
        n++;
    if (n == 0)
        return VIGIL_OK;
    if (c == 'f')
        return vigil_error_set(VIGIL_EIO, NULL);
    vigil_metric m = {"fake_event", n, now, NULL, 0, NULL};
    return vigil_batch_add(out, &m);
}

static void fake_destroy(void *p)
{
    fake_state *s = p;
    s->ctl->destroyed++;
    free(s);
}

static void fake_payload_free(void *p)
{
    ((fake_ctl *)p)->payload_free++;
}

/* The fake type, its payload @p ctl (freed through fake_payload_free). */
static vigil_collector_type fake_type(fake_ctl *ctl)
{
    vigil_collector_type t = {
        .version = VIGIL_COLLECTOR_TYPE_VERSION,
        .name = "fake",
        .payload = ctl,
        .payload_free = fake_payload_free,
        .flags = VIGIL_COLLECTOR_EVENTS,
        .keys = fake_keys,
        .create = fake_create,
        .collect = fake_collect,
        .poll_fd = fake_poll_fd,
        .on_event = fake_on_event,
        .destroy = fake_destroy,
    };
    return t;
}

static fake_ctl g_ctl;

static void register_fake(void)
{
    memset(&g_ctl, 0, sizeof(g_ctl));
    ck_assert_int_eq(pipe2(g_ctl.fds, O_NONBLOCK | O_CLOEXEC), 0);
    vigil_collector_type t = fake_type(&g_ctl);
    ck_assert_int_eq(vigil_collector_register(g_reg, &t), VIGIL_OK);
}

static void close_fake(void)
{
    close(g_ctl.fds[0]);
    close(g_ctl.fds[1]);
}

/* ---- registry ------------------------------------------------------------------ */

START_TEST(registry_builtins_and_lookup)
{
    static const char *const names[] = {"cpu",     "memory", "load", "disk", "net",
                                        "process", "http",   "tcp",  "file", "exec"};
    ck_assert_uint_eq(vigil_collector_registry_count(g_reg), 10);
    for (size_t i = 0; i < 10; i++) {
        ck_assert_str_eq(vigil_collector_registry_name_at(g_reg, i), names[i]);
        const vigil_collector_type *t = vigil_collector_registry_lookup(g_reg, names[i]);
        ck_assert_ptr_nonnull(t);
        ck_assert_str_eq(t->name, names[i]);
        ck_assert_uint_eq(t->version, VIGIL_COLLECTOR_TYPE_VERSION);
    }
    ck_assert_ptr_null(vigil_collector_registry_name_at(g_reg, 10));
    ck_assert_ptr_null(vigil_collector_registry_lookup(g_reg, "nope"));
    ck_assert_ptr_null(vigil_collector_registry_lookup(NULL, "cpu"));
    ck_assert(vigil_collector_registry_lookup(g_reg, "cpu")->flags & VIGIL_COLLECTOR_RATES);
    ck_assert(vigil_collector_registry_lookup(g_reg, "process")->flags & VIGIL_COLLECTOR_EVENTS);
    ck_assert_int_eq(vigil_collector_registry_add_builtins(g_reg), VIGIL_EEXISTS);
    vt_assert_error(VIGIL_EEXISTS, "collector type \"cpu\" is already registered");
    ck_assert_int_eq(vigil_collector_registry_new(NULL), VIGIL_EINVAL);
    vigil_collector_registry_free(NULL);
}
END_TEST

START_TEST(registry_refuses_bad_types_and_frees_payload)
{
    fake_ctl ctl;
    memset(&ctl, 0, sizeof(ctl));
    vigil_collector_type t = fake_type(&ctl);
    t.version = VIGIL_COLLECTOR_TYPE_VERSION + 1;
    ck_assert_int_eq(vigil_collector_register(g_reg, &t), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION,
                    "collector type: version 3 is not supported (this library reads version 2)");
    ck_assert_int_eq(ctl.payload_free, 1);
    t = fake_type(&ctl);
    t.version = 1; /* the 0.1 layout */
    ck_assert_int_eq(vigil_collector_register(g_reg, &t), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "collector type: version 1 is not supported");
    ck_assert_int_eq(ctl.payload_free, 2);
    t = fake_type(&ctl);
    t.version = 0;
    ck_assert_int_eq(vigil_collector_register(g_reg, &t), VIGIL_EVERSION);
    ck_assert_int_eq(ctl.payload_free, 3);
    t = fake_type(&ctl);
    t.name = "Bad-Name";
    ck_assert_int_eq(vigil_collector_register(g_reg, &t), VIGIL_ENAME);
    vt_assert_error(VIGIL_ENAME, "collector type: name \"Bad-Name\" is invalid (expected "
                                 "[a-z][a-z0-9_]*, at most 64 bytes)");
    ck_assert_int_eq(ctl.payload_free, 4);
    t.name = NULL;
    ck_assert_int_eq(vigil_collector_register(g_reg, &t), VIGIL_ENAME);
    ck_assert_int_eq(ctl.payload_free, 5);
    t = fake_type(&ctl);
    t.collect = NULL;
    ck_assert_int_eq(vigil_collector_register(g_reg, &t), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "collector type \"fake\": create, collect and destroy are "
                                  "required");
    ck_assert_int_eq(ctl.payload_free, 6);
    t = fake_type(&ctl);
    t.on_event = NULL;
    ck_assert_int_eq(vigil_collector_register(g_reg, &t), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "collector type \"fake\": on_event is required with poll_fd");
    ck_assert_int_eq(ctl.payload_free, 7);
    ck_assert_int_eq(vigil_collector_register(g_reg, NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "collector type: the type is NULL");
    t = fake_type(&ctl);
    ck_assert_int_eq(vigil_collector_register(NULL, &t), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "collector type: the registry is NULL");
    ck_assert_int_eq(ctl.payload_free, 8);
    t.name = "cpu";
    ck_assert_int_eq(vigil_collector_register(g_reg, &t), VIGIL_EEXISTS);
    vt_assert_error(VIGIL_EEXISTS, "collector type \"cpu\" is built in");
    ck_assert_int_eq(ctl.payload_free, 9);
    /* refused in a registry without the built-ins too: they would shadow it */
    vigil_collector_registry *empty;
    ck_assert_int_eq(vigil_collector_registry_new(&empty), VIGIL_OK);
    t = fake_type(&ctl);
    t.name = "exec";
    ck_assert_int_eq(vigil_collector_register(empty, &t), VIGIL_EEXISTS);
    vt_assert_error(VIGIL_EEXISTS, "collector type \"exec\" is built in");
    ck_assert_int_eq(ctl.payload_free, 10);
    ck_assert_uint_eq(vigil_collector_registry_count(empty), 0);
    ck_assert_int_eq(vigil_collector_registry_add_builtins(NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "vigil_collector_registry_add_builtins: NULL registry");
    vigil_collector_registry_free(empty);
    /* A good one is copied, name included: its payload is freed with the registry. */
    char name[8] = "fake";
    t = fake_type(&ctl);
    t.name = name;
    ck_assert_int_eq(vigil_collector_register(g_reg, &t), VIGIL_OK);
    memset(name, 'x', sizeof(name) - 1);
    memset(&t, 0, sizeof(t));
    const vigil_collector_type *got = vigil_collector_registry_lookup(g_reg, "fake");
    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got->name, "fake");
    ck_assert_ptr_eq(got->payload, &ctl);
    ck_assert_ptr_eq(got->collect, fake_collect);
    ck_assert_int_eq(ctl.payload_free, 10);
    vigil_collector_registry_free(g_reg);
    g_reg = NULL;
    ck_assert_int_eq(ctl.payload_free, 11);
}
END_TEST

START_TEST(two_registries_are_independent)
{
    vigil_collector_registry *other = NULL;
    ck_assert_int_eq(vigil_collector_registry_new(&other), VIGIL_OK);
    ck_assert_uint_eq(vigil_collector_registry_count(other), 0);
    ck_assert_ptr_null(vigil_collector_registry_lookup(other, "cpu"));
    vigil_collector *c = NULL;
    ck_assert_int_eq(vigil_collector_new(&c, other, entry("{type: cpu}"), NULL), VIGIL_ENOTFOUND);
    vt_assert_error(VIGIL_ENOTFOUND, "unknown collector type \"cpu\"");
    vigil_collector_registry_free(other);
}
END_TEST

/* A registry chained to an embedder's (as the agent's own registry is):
 * listing names exactly what lookup resolves, own types first, then the
 * fallback's that no own type shadows. */
START_TEST(listing_follows_the_fallback_as_lookup_does)
{
    fake_ctl mine = {0}, theirs = {0};
    vigil_collector_registry *own = NULL, *embedder = NULL;
    ck_assert_int_eq(vigil_collector_registry_new(&own), VIGIL_OK);
    ck_assert_int_eq(vigil_collector_registry_new(&embedder), VIGIL_OK);
    ck_assert_int_eq(vigil_collector_registry_add_builtins(own), VIGIL_OK);
    vigil_collector_type t = fake_type(&theirs);
    ck_assert_int_eq(vigil_collector_register(embedder, &t), VIGIL_OK);
    t.name = "cpu"; /* refused: the built-in would shadow it */
    ck_assert_int_eq(vigil_collector_register(embedder, &t), VIGIL_EEXISTS);
    vt_assert_error(VIGIL_EEXISTS, "collector type \"cpu\" is built in");
    ck_assert_int_eq(theirs.payload_free, 1);
    t = fake_type(&theirs);
    t.name = "extra";
    ck_assert_int_eq(vigil_collector_register(embedder, &t), VIGIL_OK);
    vigil__collector_registry_set_fallback(own, embedder);

    static const char *const names[] = {"cpu",  "memory", "load", "disk", "net",  "process",
                                        "http", "tcp",    "file", "exec", "fake", "extra"};
    ck_assert_uint_eq(vigil_collector_registry_count(own), 12);
    for (size_t i = 0; i < 12; i++) {
        const char *n = vigil_collector_registry_name_at(own, i);
        ck_assert_str_eq(n, names[i]);
        ck_assert_ptr_nonnull(vigil_collector_registry_lookup(own, n));
    }
    ck_assert_ptr_null(vigil_collector_registry_name_at(own, 12));
    /* `cpu` resolves to the built-in, listed once */
    ck_assert_ptr_ne(vigil_collector_registry_lookup(own, "cpu")->payload, &theirs);
    ck_assert_ptr_eq(vigil_collector_registry_lookup(own, "extra")->payload, &theirs);
    /* the fallback lists its own types only */
    ck_assert_uint_eq(vigil_collector_registry_count(embedder), 2);
    ck_assert_str_eq(vigil_collector_registry_name_at(embedder, 1), "extra");
    /* registration sees the registry's own types: `fake` may be added here too */
    t = fake_type(&mine);
    ck_assert_int_eq(vigil_collector_register(own, &t), VIGIL_OK);
    ck_assert_uint_eq(vigil_collector_registry_count(own), 12);
    ck_assert_str_eq(vigil_collector_registry_name_at(own, 10), "fake");
    ck_assert_str_eq(vigil_collector_registry_name_at(own, 11), "extra");
    ck_assert_ptr_eq(vigil_collector_registry_lookup(own, "fake")->payload, &mine);
    vigil_collector_registry_free(own);
    ck_assert_int_eq(mine.payload_free, 1);
    ck_assert_int_eq(theirs.payload_free, 1);
    vigil_collector_registry_free(embedder);
    ck_assert_int_eq(theirs.payload_free, 3);
}
END_TEST

/* ---- instances ----------------------------------------------------------------- */

START_TEST(instance_tags_schedule_and_accessors)
{
    register_fake();
    vigil_collector *c = must("{type: fake, name: f1, interval: 2s, knob: 3, "
                              "tags: {env: prod, role: configured}}",
                              NULL);
    ck_assert_str_eq(vigil_collector_name(c), "f1");
    ck_assert_str_eq(vigil_collector_type_name(c), "fake");
    ck_assert_int_eq(vigil_collector_interval(c), 2000);
    ck_assert_uint_eq(vigil_collector_flags(c), VIGIL_COLLECTOR_EVENTS);
    ck_assert_int_eq(vigil_collector_next_due(c), 0);
    int64_t due = 0;
    vigil_batch_clear(g_batch);
    ck_assert_int_eq(vigil_collector_collect(c, g_batch, 100000, &due), VIGIL_OK);
    ck_assert_int_eq(due, 102000);
    ck_assert_int_eq(vigil_collector_next_due(c), 102000);
    ck_assert_uint_eq(vigil_batch_count(g_batch), 1);
    const vigil_metric *m = vigil_batch_get(g_batch, 0);
    ck_assert_str_eq(m->name, "fake_value");
    ck_assert_int_eq(m->ts_ms, 100000);
    ck_assert_uint_eq(m->ntags, 3);
    ck_assert_str_eq(tag_of(m, "env"), "prod");
    ck_assert_str_eq(tag_of(m, "kind"), "fake");
    ck_assert_str_eq(tag_of(m, "role"), "own"); /* the collector's own tag wins */
    /* On time: the schedule does not drift by the collection's lateness. */
    ck_assert_int_eq(vigil_collector_collect(c, g_batch, 102300, &due), VIGIL_OK);
    ck_assert_int_eq(due, 104000);
    /* Far behind: restart from now. */
    ck_assert_int_eq(vigil_collector_collect(c, g_batch, 200000, &due), VIGIL_OK);
    ck_assert_int_eq(due, 202000);
    ck_assert_int_eq(vigil_collector_last_status(c), VIGIL_OK);
    vigil_collector_free(c);
    ck_assert_int_eq(g_ctl.destroyed, 1);

    /* Without name and interval: the type name and the options' default. */
    vigil_collector_options o;
    ck_assert_int_eq(vigil_collector_options_init(&o, VIGIL_COLLECTOR_OPTIONS_VERSION), VIGIL_OK);
    o.default_interval_ms = 750;
    c = must("{type: fake}", &o);
    ck_assert_str_eq(vigil_collector_name(c), "fake");
    ck_assert_int_eq(vigil_collector_interval(c), 750);
    vigil_collector_free(c);
    c = must("{type: fake}", NULL);
    ck_assert_int_eq(vigil_collector_interval(c), 10000);
    vigil_collector_free(c);
    vigil_collector_free(NULL);
    ck_assert_int_eq(vigil_collector_options_init(&o, 99), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "collector options: version 99 is not supported (this library "
                                    "reads version 1)");
    ck_assert_int_eq(vigil_collector_options_init(&o, 0), VIGIL_EVERSION);
    ck_assert_int_eq(vigil_collector_options_init(NULL, 1), VIGIL_EINVAL);
    close_fake();
}
END_TEST

typedef struct {
    int n;
    vigil_log_level level;
    char msg[128];
    char fields[512];
} log_capture;

static log_capture g_logs;

static void count_log(const vigil_log_record *r, void *payload)
{
    log_capture *c = payload;
    c->n++;
    c->level = r->level;
    snprintf(c->msg, sizeof(c->msg), "%s", r->message);
    snprintf(c->fields, sizeof(c->fields), "%s", r->fields);
}

START_TEST(failures_become_error_samples_and_back_off)
{
    register_fake();
    vigil_collector_options o = quiet_opts();
    o.backoff_max_ms = 10000;
    o.logger.cb = count_log;
    o.logger.payload = &g_logs;
    o.logger.min_level = VIGIL_LOG_INFO;
    vigil_collector *c = must("{type: fake, name: flaky, interval: 1s, tags: {env: prod}}", &o);
    g_ctl.fail = VIGIL_EIO;
    int64_t now = 1000000, due = 0;
    const int64_t expect[] = {2000, 4000, 8000, 10000, 10000};
    for (int i = 0; i < 5; i++) {
        vigil_batch_clear(g_batch);
        ck_assert_int_eq(vigil_collector_collect(c, g_batch, now, &due), VIGIL_OK);
        ck_assert_int_eq(due - now, expect[i]);
        ck_assert_uint_eq(vigil_collector_failures(c), (unsigned)i + 1);
        ck_assert_int_eq(vigil_collector_last_status(c), VIGIL_EIO);
        /* The samples of the failed collection are dropped; one error sample. */
        ck_assert_uint_eq(vigil_batch_count(g_batch), 1);
        const vigil_metric *m = vigil_batch_get(g_batch, 0);
        ck_assert_str_eq(m->name, VIGIL_COLLECTOR_ERROR_METRIC);
        ck_assert(isnan(m->value));
        ck_assert_str_eq(m->error, "the fake ? failed on purpose"); /* made valid UTF-8 */
        ck_assert_str_eq(tag_of(m, "collector"), "flaky");
        ck_assert_str_eq(tag_of(m, "type"), "fake");
        ck_assert_str_eq(tag_of(m, "env"), "prod");
        now = due;
    }
    /* Each failure was logged once, at warn, naming the collector. */
    ck_assert_int_eq(g_logs.n, 5);
    ck_assert_int_eq(g_logs.level, VIGIL_LOG_WARN);
    ck_assert_str_eq(g_logs.msg, "collection failed");
    ck_assert_ptr_nonnull(strstr(g_logs.fields, "collector=flaky type=fake code=-7 failures=5"));
    g_ctl.fail = 0;
    collect(c, now);
    ck_assert_uint_eq(vigil_collector_failures(c), 0);
    ck_assert_int_eq(vigil_collector_next_due(c), now + 1000);
    ck_assert_ptr_nonnull(find(g_batch, "fake_value", NULL, NULL));
    /* A failure without a message of its own gets the code's description. */
    g_ctl.fail = VIGIL_ETIMEOUT;
    vigil_error_clear();
    collect(c, now + 1000);
    ck_assert_str_eq(vigil_batch_get(g_batch, 0)->error, "the fake ? failed on purpose");
    /* Out of memory is reported to the caller, not as a collector failure. */
    g_ctl.fail = VIGIL_ENOMEM;
    vigil_batch_clear(g_batch);
    ck_assert_int_eq(vigil_collector_collect(c, g_batch, now + 5000, &due), VIGIL_ENOMEM);
    ck_assert_uint_eq(vigil_batch_count(g_batch), 0);
    ck_assert_int_eq(due, now + 6000);
    ck_assert_int_eq(vigil_collector_collect(NULL, g_batch, 0, NULL), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_collector_collect(c, NULL, 0, NULL), VIGIL_EINVAL);
    vigil_collector_free(c);
    close_fake();
}
END_TEST

START_TEST(backoff_never_below_interval)
{
    register_fake();
    vigil_collector_options o = quiet_opts();
    o.backoff_max_ms = 100; /* smaller than the interval: the interval wins */
    vigil_collector *c = must("{type: fake, interval: 1s}", &o);
    g_ctl.fail = VIGIL_EIO;
    int64_t due;
    ck_assert_int_eq(vigil_collector_collect(c, g_batch, 0, &due), VIGIL_OK);
    ck_assert_int_eq(due, 1000);
    ck_assert_int_eq(vigil_collector_collect(c, g_batch, 1000, &due), VIGIL_OK);
    ck_assert_int_eq(due, 2000);
    vigil_collector_free(c);
    close_fake();
}
END_TEST

START_TEST(events_pass_through_the_instance)
{
    register_fake();
    vigil_collector *c = must("{type: fake, tags: {env: prod}}", NULL);
    ck_assert_int_eq(vigil_collector_poll_fd(c), g_ctl.fds[0]);
    vigil_batch_clear(g_batch);
    ck_assert_int_eq(vigil_collector_on_event(c, g_batch, 5), VIGIL_OK);
    ck_assert_uint_eq(vigil_batch_count(g_batch), 0);
    ck_assert_int_eq(write(g_ctl.fds[1], "ee", 2), 2);
    ck_assert_int_eq(vigil_collector_on_event(c, g_batch, 5), VIGIL_OK);
    ck_assert_double_eq(value_of(g_batch, "fake_event", "env", "prod"), 2);
    ck_assert_int_eq(write(g_ctl.fds[1], "f", 1), 1);
    vigil_batch_clear(g_batch);
    ck_assert_int_eq(vigil_collector_on_event(c, g_batch, 6), VIGIL_OK);
    const vigil_metric *m = find(g_batch, VIGIL_COLLECTOR_ERROR_METRIC, NULL, NULL);
    ck_assert_ptr_nonnull(m);
    ck_assert_str_eq(m->error, "I/O error");
    ck_assert_int_eq(vigil_collector_last_status(c), VIGIL_EIO);
    ck_assert_uint_eq(vigil_collector_failures(c), 0); /* events do not back off */
    vigil_collector_free(c);
    /* A collector without events. */
    c = must("{type: load}", NULL);
    ck_assert_int_eq(vigil_collector_poll_fd(c), -1);
    vigil_batch_clear(g_batch);
    ck_assert_int_eq(vigil_collector_on_event(c, g_batch, 1), VIGIL_OK);
    ck_assert_uint_eq(vigil_batch_count(g_batch), 0);
    ck_assert_int_eq(vigil_collector_on_event(NULL, g_batch, 1), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_collector_poll_fd(NULL), -1);
    vigil_collector_free(c);
    close_fake();
}
END_TEST

START_TEST(batch_full_is_reported)
{
    vigil_collector *c = must("{type: load}", NULL);
    vigil_batch_set_max_metrics(g_batch, 2);
    vigil_batch_clear(g_batch);
    ck_assert_int_eq(vigil_collector_collect(c, g_batch, 1, NULL), VIGIL_ELIMIT);
    ck_assert_uint_eq(vigil_batch_count(g_batch), 2);
    vigil_collector_free(c);
}
END_TEST

/* ---- configuration errors -------------------------------------------------------- */

START_TEST(config_errors_shared_keys)
{
    assert_bad("{name: x}", VIGIL_EMISSING, "collectors[0]: missing required key \"type\"");
    assert_bad("{type: nope}", VIGIL_ENOTFOUND,
               "collectors[0].type: unknown collector type \"nope\"");
    assert_bad("{type: [cpu]}", VIGIL_ETYPE, "collectors[0].type");
    assert_bad("{type: cpu, per_cpuu: true}", VIGIL_EUNKNOWNKEY,
               "collectors[0].per_cpuu: unknown key");
    assert_bad("{type: memory, per_cpu: true}", VIGIL_EUNKNOWNKEY,
               "collectors[0].per_cpu: unknown key");
    assert_bad("{type: cpu, interval: ten}", VIGIL_EVALUE, "collectors[0].interval");
    assert_bad("{type: cpu, interval: 5ms}", VIGIL_ERANGE,
               "collectors[0].interval: interval must be at least 10ms");
    assert_bad("{type: cpu, interval: 0}", VIGIL_ERANGE, "interval must be at least 10ms");
    assert_bad("{type: cpu, name: \"\"}", VIGIL_EVALUE,
               "collectors[0].name: expected a non-empty name");
    assert_bad("{type: cpu, tags: [a]}", VIGIL_ETYPE, "collectors[0].tags");
    assert_bad("{type: cpu, tags: {\"bad key\": x}}", VIGIL_ENAME, "invalid tag key");
    assert_bad("{type: cpu, tags: {k: [x]}}", VIGIL_ETYPE, "collectors[0].tags.k");
    assert_bad("{type: cpu, per_cpu: maybe}", VIGIL_EVALUE, "collectors[0].per_cpu");

    vigil_collector *c = NULL;
    ck_assert_int_eq(vigil_collector_new(&c, g_reg, NULL, NULL), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_collector_new(NULL, g_reg, entry("{type: cpu}"), NULL), VIGIL_EINVAL);
    vigil_collector_options o = quiet_opts();
    o.version = 7;
    ck_assert_int_eq(vigil_collector_new(&c, g_reg, entry("{type: cpu}"), &o), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "collector options: version 7 is not supported");
    /* A scalar where a map is expected. */
    ck_assert_int_eq(vigil_collector_new(&c, g_reg, entry("cpu"), NULL), VIGIL_ETYPE);
    /* A type's own create error is passed through, located. */
    register_fake();
    assert_bad("{type: fake, knob: -1}", VIGIL_ERANGE,
               "collectors[0].knob: knob must not be negative");
    close_fake();
}
END_TEST

START_TEST(config_errors_of_types)
{
    assert_bad("{type: http}", VIGIL_EMISSING, "collectors[0]: missing required key \"url\"");
    assert_bad("{type: http, url: \"ftp://127.0.0.1/x\"}", VIGIL_EUNSUPPORTED,
               "collectors[0].url: scheme \"ftp\" is not supported: only http and https");
    assert_bad("{type: http, url: \"file:///etc/passwd\"}", VIGIL_EUNSUPPORTED,
               "scheme \"file\" is not supported");
    assert_bad("{type: http, url: \"127.0.0.1:80/x\"}", VIGIL_EVALUE, "expected an absolute URL");
    assert_bad("{type: http, url: \"http://exa mple.com/\"}", VIGIL_EVALUE,
               "collectors[0].url: invalid URL");
    assert_bad("{type: http, url: \"http://h/\", timeout: soon}", VIGIL_EVALUE,
               "collectors[0].timeout");
    assert_bad("{type: http, url: \"http://h/\", expect_status: 42}", VIGIL_ERANGE,
               "expect_status must be between 100 and 599");
    assert_bad("{type: http, url: \"http://h/\", max_redirects: 99}", VIGIL_ERANGE,
               "max_redirects must be between 0 and 50");
    assert_bad("{type: http, url: \"http://h/\", expect_body: abcdef, max_body: 4}", VIGIL_ERANGE,
               "max_body is smaller than expect_body");
    assert_bad("{type: http, url: \"http://h/\", method: POST}", VIGIL_EUNKNOWNKEY,
               "collectors[0].method: unknown key");

    assert_bad("{type: tcp, port: 22}", VIGIL_EMISSING, "missing required key \"host\"");
    assert_bad("{type: tcp, host: 127.0.0.1}", VIGIL_EMISSING, "missing required key \"port\"");
    assert_bad("{type: tcp, host: 127.0.0.1, port: 70000}", VIGIL_ERANGE,
               "collectors[0].port: port must be between 1 and 65535");
    assert_bad("{type: tcp, host: 127.0.0.1, port: http}", VIGIL_EVALUE, "collectors[0].port");
    assert_bad("{type: tcp, host: 127.0.0.1, port: 1, timeout: 0}", VIGIL_ERANGE,
               "timeout must be positive");

    assert_bad("{type: file}", VIGIL_EMISSING, "missing required key \"path\"");
    assert_bad("{type: file, path: /etc/hostname, sha256: abc}", VIGIL_EVALUE,
               "collectors[0].sha256: expected 64 hexadecimal digits");
    assert_bad("{type: file, path: /etc/hostname, sha256: "
               "zz91b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03}",
               VIGIL_EVALUE, "expected 64 hexadecimal digits");
    assert_bad("{type: file, path: /x, max_hash_size: lots}", VIGIL_EVALUE,
               "collectors[0].max_hash_size");

    assert_bad("{type: process}", VIGIL_EMISSING,
               "collectors[0]: a process collector needs one of pidfile, comm or cmdline");
    assert_bad("{type: process, comm: a, pidfile: /run/a.pid}", VIGIL_EVALUE,
               "pidfile, comm and cmdline are exclusive");
    assert_bad("{type: process, cmdline: \"a((\"}", VIGIL_EVALUE,
               "collectors[0].cmdline: invalid regular expression");
    assert_bad("{type: process, comm: a_name_longer_than_15}", VIGIL_EVALUE,
               "collectors[0].comm: longer than 15 bytes");
    assert_bad("{type: process, comm: \"\"}", VIGIL_EVALUE, "expected a non-empty string");
    assert_bad("{type: process, pidfile: /tmp/vigil-any.pid}", VIGIL_EPERM,
               "collectors[0].pidfile: /tmp/vigil-any.pid: directory /tmp is writable by other "
               "users (mode 1777)");
    assert_bad("{type: process, comm: x, watch: sometimes}", VIGIL_EVALUE, "collectors[0].watch");

    assert_bad("{type: disk, mounts: [relative]}", VIGIL_EVALUE,
               "collectors[0].mounts: mount points must be absolute paths");
    assert_bad("{type: disk, mounts: /}", VIGIL_ETYPE, "collectors[0].mounts");
    assert_bad("{type: net, interfaces: [\"\"]}", VIGIL_EVALUE,
               "collectors[0].interfaces[0]: expected a non-empty string");
    assert_bad("{type: net, interfaces: [an_interface_name_far_too_long_for_linux]}", VIGIL_EVALUE,
               "string is too long");
}
END_TEST

/* ---- cpu -------------------------------------------------------------------------- */

static void burn(double ms)
{
    double end = mono_ms() + ms;
    volatile double x = 0;
    while (mono_ms() < end)
        x += 1;
}

START_TEST(cpu_real_proc)
{
    vigil_collector *c = must("{type: cpu}", NULL);
    collect(c, 1000);
    ck_assert_uint_eq(vigil_batch_count(g_batch), 0); /* the first reading yields no rate */
    /* Rates need at least one clock tick between readings. */
    const vigil_metric *total = NULL;
    for (int i = 0; i < 100 && !total; i++) {
        burn(30);
        collect(c, 2000 + i);
        total = find(g_batch, "cpu_usage", "cpu", "total");
    }
    ck_assert_ptr_nonnull(total);
    for (size_t i = 0; i < vigil_batch_count(g_batch); i++) {
        const vigil_metric *m = vigil_batch_get(g_batch, i);
        ck_assert_msg(m->value >= 0 && m->value <= 1, "%s{cpu=%s} = %g", m->name, tag_of(m, "cpu"),
                      m->value);
    }
    ck_assert_ptr_nonnull(find(g_batch, "cpu_iowait_ratio", "cpu", "total"));
    ck_assert_ptr_nonnull(find(g_batch, "cpu_steal_ratio", "cpu", "total"));
    ck_assert_ptr_nonnull(find(g_batch, "cpu_user_ratio", "cpu", "total"));
    ck_assert_ptr_nonnull(find(g_batch, "cpu_system_ratio", "cpu", "total"));
    printf("cpu: usage %.3f over %zu cpu_usage series\n", total->value,
           count_named(g_batch, "cpu_usage"));
    vigil_collector_free(c);
}
END_TEST

START_TEST(cpu_exact_rates_from_fake_proc)
{
    const char *root = fresh_dir();
    vigil_collector_options o = quiet_opts();
    o.proc_root = root;
    write_str(root, "stat",
              "cpu  100 0 100 700 100 0 0 0 0 0\n"
              "cpu0 50 0 50 350 50 0 0 0 0 0\n"
              "cpu1 50 0 50 350 50 0 0 0 0 0\n"
              "intr 12345 1 2 3\nctxt 999\nbtime 1700000000\n");
    vigil_collector *c = must("{type: cpu}", &o);
    vigil_collector *tot = must("{type: cpu, per_cpu: false}", &o);
    collect(c, 1);
    ck_assert_uint_eq(vigil_batch_count(g_batch), 0);
    collect(tot, 1);
    write_str(root, "stat",
              "cpu  200 0 200 1300 200 0 0 100 0 0\n"
              "cpu0 100 0 100 650 100 0 0 50 0 0\n"
              "cpu1 50 0 50 350 50 0 0 0 0 0\n");
    collect(c, 2);
    ck_assert_double_eq_tol(value_of(g_batch, "cpu_usage", "cpu", "total"), 0.3, 1e-12);
    ck_assert_double_eq_tol(value_of(g_batch, "cpu_iowait_ratio", "cpu", "total"), 0.1, 1e-12);
    ck_assert_double_eq_tol(value_of(g_batch, "cpu_steal_ratio", "cpu", "total"), 0.1, 1e-12);
    ck_assert_double_eq_tol(value_of(g_batch, "cpu_user_ratio", "cpu", "total"), 0.1, 1e-12);
    ck_assert_double_eq_tol(value_of(g_batch, "cpu_system_ratio", "cpu", "total"), 0.1, 1e-12);
    ck_assert_double_eq_tol(value_of(g_batch, "cpu_usage", "cpu", "0"), 0.3, 1e-12);
    /* cpu1 did not move: no tick, no sample rather than a made-up zero. */
    ck_assert_ptr_null(find(g_batch, "cpu_usage", "cpu", "1"));
    ck_assert_uint_eq(vigil_batch_count(g_batch), 10);
    collect(tot, 2);
    ck_assert_uint_eq(vigil_batch_count(g_batch), 5);
    /* A counter going backwards (iowait can) is clamped, not negative. */
    write_str(root, "stat", "cpu  300 0 300 1400 100 0 0 100 0 0\n");
    collect(tot, 3);
    ck_assert_double_eq_tol(value_of(g_batch, "cpu_iowait_ratio", "cpu", "total"), 0, 1e-12);
    ck_assert_double_eq_tol(value_of(g_batch, "cpu_usage", "cpu", "total"), 2.0 / 3.0, 1e-12);
    /* Malformed and missing files fail the collection. */
    write_str(root, "stat", "intr 1 2 3\n");
    collect(tot, 4);
    ck_assert_str_eq(vigil_batch_get(g_batch, 0)->name, VIGIL_COLLECTOR_ERROR_METRIC);
    ck_assert_ptr_nonnull(strstr(vigil_batch_get(g_batch, 0)->error, "no \"cpu\" line"));
    ck_assert_int_eq(vigil_collector_last_status(tot), VIGIL_ECORRUPT);
    write_str(root, "stat", "cpu  1 2\n");
    collect(tot, 5);
    ck_assert_ptr_nonnull(strstr(vigil_batch_get(g_batch, 0)->error, "malformed line"));
    char p[1024];
    snprintf(p, sizeof(p), "%s/stat", root);
    unlink(p);
    collect(tot, 6);
    ck_assert_ptr_nonnull(strstr(vigil_batch_get(g_batch, 0)->error, "cannot open"));
    ck_assert_int_eq(vigil_collector_last_status(tot), VIGIL_EIO);
    vigil_collector_free(c);
    vigil_collector_free(tot);
}
END_TEST

/* ---- memory and load ----------------------------------------------------------------- */

START_TEST(memory_real_proc)
{
    vigil_collector *c = must("{type: memory}", NULL);
    collect(c, 1);
    double total = value_of(g_batch, "memory_total_bytes", NULL, NULL);
    double avail = value_of(g_batch, "memory_available_bytes", NULL, NULL);
    double ratio = value_of(g_batch, "memory_used_ratio", NULL, NULL);
    ck_assert(total > 16.0 * 1024 * 1024);
    ck_assert(avail >= 0 && avail <= total);
    ck_assert(ratio >= 0 && ratio <= 1);
    ck_assert_double_eq_tol(value_of(g_batch, "memory_used_bytes", NULL, NULL), total - avail, 1);
    ck_assert(value_of(g_batch, "swap_total_bytes", NULL, NULL) >= 0);
    printf("memory: %.0f MiB total, used ratio %.3f\n", total / 1048576.0, ratio);
    vigil_collector_free(c);
}
END_TEST

START_TEST(memory_fake_proc)
{
    const char *root = fresh_dir();
    vigil_collector_options o = quiet_opts();
    o.proc_root = root;
    write_str(root, "meminfo",
              "MemTotal:        1000 kB\nMemFree:          100 kB\nMemAvailable:     250 kB\n"
              "SwapTotal:        400 kB\nSwapFree:         300 kB\n");
    vigil_collector *c = must("{type: memory}", &o);
    collect(c, 1);
    ck_assert_double_eq(value_of(g_batch, "memory_total_bytes", NULL, NULL), 1024000);
    ck_assert_double_eq(value_of(g_batch, "memory_available_bytes", NULL, NULL), 256000);
    ck_assert_double_eq_tol(value_of(g_batch, "memory_used_ratio", NULL, NULL), 0.75, 1e-12);
    ck_assert_double_eq_tol(value_of(g_batch, "swap_used_ratio", NULL, NULL), 0.25, 1e-12);
    ck_assert_double_eq(value_of(g_batch, "swap_free_bytes", NULL, NULL), 300 * 1024);
    /* No swap: no ratio of zero by zero. Old kernels: no MemAvailable. */
    write_str(root, "meminfo",
              "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 100 kB\nCached: 300 kB\n"
              "SwapTotal: 0 kB\nSwapFree: 0 kB\n");
    collect(c, 2);
    ck_assert_double_eq_tol(value_of(g_batch, "memory_used_ratio", NULL, NULL), 0.5, 1e-12);
    ck_assert_ptr_null(find(g_batch, "swap_used_ratio", NULL, NULL));
    write_str(root, "meminfo", "MemFree: 1 kB\n");
    collect(c, 3);
    ck_assert_uint_eq(vigil_batch_count(g_batch), 1);
    ck_assert_ptr_nonnull(strstr(vigil_batch_get(g_batch, 0)->error, "no MemTotal"));
    vigil_collector_free(c);
}
END_TEST

START_TEST(load_real_and_fake)
{
    vigil_collector *c = must("{type: load}", NULL);
    collect(c, 1);
    ck_assert(value_of(g_batch, "load1", NULL, NULL) >= 0);
    ck_assert(value_of(g_batch, "load5", NULL, NULL) >= 0);
    ck_assert(value_of(g_batch, "load15", NULL, NULL) >= 0);
    ck_assert(value_of(g_batch, "load_runnable", NULL, NULL) >= 1); /* this test runs */
    ck_assert(value_of(g_batch, "load_tasks", NULL, NULL) >= 1);
    vigil_collector_free(c);

    const char *root = fresh_dir();
    vigil_collector_options o = quiet_opts();
    o.proc_root = root;
    write_str(root, "loadavg", "0.50 1.25 2.00 3/456 7890\n");
    c = must("{type: load}", &o);
    collect(c, 1);
    ck_assert_double_eq(value_of(g_batch, "load5", NULL, NULL), 1.25);
    ck_assert_double_eq(value_of(g_batch, "load_runnable", NULL, NULL), 3);
    ck_assert_double_eq(value_of(g_batch, "load_tasks", NULL, NULL), 456);
    write_str(root, "loadavg", "garbage\n");
    collect(c, 2);
    ck_assert_ptr_nonnull(strstr(vigil_batch_get(g_batch, 0)->error, "malformed"));
    vigil_collector_free(c);
}
END_TEST

/* ---- disk and net ------------------------------------------------------------------------ */

START_TEST(disk_real_proc)
{
    vigil_collector *c = must("{type: disk}", NULL);
    collect(c, 1);
    size_t n = count_named(g_batch, "disk_used_ratio");
    ck_assert_msg(n >= 1, "no real mount found");
    for (size_t i = 0; i < vigil_batch_count(g_batch); i++) {
        const vigil_metric *m = vigil_batch_get(g_batch, i);
        if (m->error)
            continue;
        const char *fstype = tag_of(m, "fstype");
        ck_assert_ptr_nonnull(tag_of(m, "mount"));
        ck_assert_ptr_nonnull(tag_of(m, "device"));
        ck_assert_msg(strcmp(fstype, "proc") && strcmp(fstype, "sysfs") &&
                          strcmp(fstype, "tmpfs") && strcmp(fstype, "cgroup2"),
                      "pseudo fs %s reported", fstype);
        if (strcmp(m->name, "disk_used_ratio") == 0 ||
            strcmp(m->name, "disk_inodes_used_ratio") == 0)
            ck_assert(m->value >= 0 && m->value <= 1);
        if (strcmp(m->name, "disk_free_bytes") == 0)
            ck_assert(m->value >= 0);
    }
    /* Only the root: with mounts set. */
    vigil_collector *root = must("{type: disk, mounts: [/]}", NULL);
    collect(root, 1);
    ck_assert_ptr_nonnull(find(g_batch, "disk_used_ratio", "mount", "/"));
    ck_assert_uint_eq(count_named(g_batch, "disk_used_ratio"), 1);
    vigil_collector_free(root);
    vigil_collector_free(c);
}
END_TEST

START_TEST(disk_fake_mountinfo_and_diskstats)
{
    const char *root = fresh_dir();
    vigil_collector_options o = quiet_opts();
    o.proc_root = root;
    mkdir_p(root, "self");
    char mi[2048];
    snprintf(mi, sizeof(mi),
             "21 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
             "22 21 0:5 / /proc rw shared:2 - proc proc rw\n"
             "23 21 0:6 / /dev/shm rw - tmpfs tmpfs rw\n"
             "24 21 8:1 /srv /srv\\040data rw - ext4 /dev/sda1 rw\n"
             "25 21 8:2 / %s rw master:3 - xfs /dev/sda2 rw\n"
             "26 21 0:44 / /snap/core/1 ro - squashfs /dev/loop0 ro\n"
             "garbage line\n",
             root);
    write_str(root, "self/mountinfo", mi);
    write_str(root, "diskstats",
              "   8       0 sda 10 0 100 0 20 0 200 0 0 0 0\n"
              "   8       1 sda1 1000 0 8000 5 2000 0 16000 7 0 9 12\n"
              "   8       2 sda2 5 0 50 0 5 0 50 0 0 0 0\n");
    vigil_collector *c = must("{type: disk, exclude_fstypes: [xfs]}", &o);
    collect(c, 1);
    /* / only: proc, tmpfs, squashfs, the excluded xfs and the bind mount of sda1 are not. */
    ck_assert_uint_eq(count_named(g_batch, "disk_used_ratio"), 1);
    const vigil_metric *m = find(g_batch, "disk_used_ratio", "mount", "/");
    ck_assert_ptr_nonnull(m);
    ck_assert_str_eq(tag_of(m, "device"), "sda1");
    ck_assert_str_eq(tag_of(m, "fstype"), "ext4");
    ck_assert_uint_eq(count_named(g_batch, "disk_read_bytes_per_second"), 0);
    sleep_ms(20);
    write_str(root, "diskstats", "   8       1 sda1 1100 0 9000 5 2300 0 17000 7 0 9 12\n");
    collect(c, 2);
    double rbytes = value_of(g_batch, "disk_read_bytes_per_second", "device", "sda1");
    double reads = value_of(g_batch, "disk_reads_per_second", "device", "sda1");
    double wbytes = value_of(g_batch, "disk_write_bytes_per_second", "device", "sda1");
    double writes = value_of(g_batch, "disk_writes_per_second", "device", "sda1");
    ck_assert(rbytes > 0 && reads > 0 && wbytes > 0 && writes > 0);
    /* Same elapsed time for all four: the ratios are exact. */
    ck_assert_double_eq_tol(rbytes / reads, 1000.0 * 512 / 100, 1e-6);
    ck_assert_double_eq_tol(wbytes / writes, 1000.0 * 512 / 300, 1e-6);
    /* Counters that went back (device re-attached): no rate this time. */
    write_str(root, "diskstats", "   8       1 sda1 1 0 1 0 1 0 1 0 0 0 0\n");
    collect(c, 3);
    ck_assert_uint_eq(count_named(g_batch, "disk_read_bytes_per_second"), 0);
    vigil_collector_free(c);

    /* The other mount when xfs is not excluded; the octal escape decoded; a
     * configured mount point that is not mounted is an error sample. */
    c = must("{type: disk, mounts: [/, /srv data, /nowhere]}", &o);
    collect(c, 1);
    ck_assert_ptr_nonnull(find(g_batch, "disk_used_ratio", "mount", "/"));
    m = find(g_batch, "disk_used_ratio", "mount", "/nowhere");
    ck_assert_ptr_nonnull(m);
    ck_assert_str_eq(m->error, "not a mounted real file system");
    /* /srv data shares sda1 with / and is reported once, at /. */
    ck_assert_ptr_nonnull(find(g_batch, "disk_used_ratio", "mount", "/srv data"));
    vigil_collector_free(c);
    c = must("{type: disk}", &o);
    collect(c, 1);
    m = find(g_batch, "disk_used_ratio", "mount", root);
    ck_assert_ptr_nonnull(m);
    ck_assert_str_eq(tag_of(m, "fstype"), "xfs");
    vigil_collector_free(c);
}
END_TEST

START_TEST(net_real_proc)
{
    vigil_collector *c = must("{type: net, interfaces: [lo]}", NULL);
    collect(c, 1);
    ck_assert_uint_eq(vigil_batch_count(g_batch), 0);
    /* Some loopback traffic between the readings. */
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(9)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < 10; i++)
        sendto(s, "ping", 4, 0, (struct sockaddr *)&a, sizeof(a));
    close(s);
    sleep_ms(20);
    collect(c, 2);
    ck_assert_uint_eq(vigil_batch_count(g_batch), 8);
    ck_assert(value_of(g_batch, "net_rx_bytes_per_second", "iface", "lo") > 0);
    ck_assert(value_of(g_batch, "net_tx_packets_per_second", "iface", "lo") > 0);
    ck_assert(value_of(g_batch, "net_rx_errors_per_second", "iface", "lo") >= 0);
    ck_assert(value_of(g_batch, "net_tx_drops_per_second", "iface", "lo") >= 0);
    vigil_collector_free(c);
    c = must("{type: net, exclude_interfaces: [lo]}", NULL);
    collect(c, 1);
    sleep_ms(20);
    collect(c, 2);
    ck_assert_ptr_null(find(g_batch, "net_rx_bytes_per_second", "iface", "lo"));
    vigil_collector_free(c);
}
END_TEST

START_TEST(net_fake_proc)
{
    const char *root = fresh_dir();
    vigil_collector_options o = quiet_opts();
    o.proc_root = root;
    mkdir_p(root, "net");
    const char *head =
        "Inter-|   Receive                                                |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes    "
        "packets errs drop fifo colls carrier compressed\n";
    char text[2048];
    snprintf(text, sizeof(text),
             "%s    lo: 1000 10 0 0 0 0 0 0 1000 10 0 0 0 0 0 0\n"
             "  eth0:5000 50 1 2 0 0 0 0 7000 70 3 4 0 0 0 0\n",
             head);
    write_str(root, "net/dev", text);
    vigil_collector *c = must("{type: net}", &o);
    collect(c, 1);
    ck_assert_uint_eq(vigil_batch_count(g_batch), 0);
    sleep_ms(20);
    snprintf(text, sizeof(text),
             "%s    lo: 1000 10 0 0 0 0 0 0 1000 10 0 0 0 0 0 0\n"
             "  eth0:6000 60 1 2 0 0 0 0 9000 90 3 4 0 0 0 0\n"
             "  new0: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0\n",
             head);
    write_str(root, "net/dev", text);
    collect(c, 2);
    ck_assert_uint_eq(vigil_batch_count(g_batch), 16); /* lo and eth0; new0 has no rate yet */
    ck_assert_double_eq(value_of(g_batch, "net_rx_bytes_per_second", "iface", "lo"), 0);
    double rx = value_of(g_batch, "net_rx_bytes_per_second", "iface", "eth0");
    double tx = value_of(g_batch, "net_tx_bytes_per_second", "iface", "eth0");
    ck_assert(rx > 0);
    ck_assert_double_eq_tol(tx / rx, 2.0, 1e-9);
    ck_assert_double_eq(value_of(g_batch, "net_rx_errors_per_second", "iface", "eth0"), 0);
    ck_assert_ptr_null(find(g_batch, "net_rx_bytes_per_second", "iface", "new0"));
    vigil_collector_free(c);
}
END_TEST

/* ---- tcp ---------------------------------------------------------------------------- */

static int listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(fd, 8), 0);
    socklen_t len = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    *port = ntohs(a.sin_port);
    return fd;
}

START_TEST(tcp_listener_and_closed_port)
{
    int port;
    int fd = listener(&port);
    char flow[256];
    snprintf(flow, sizeof(flow), "{type: tcp, host: 127.0.0.1, port: %d, timeout: 2s}", port);
    vigil_collector *c = must(flow, NULL);
    collect(c, 1);
    char label[64];
    snprintf(label, sizeof(label), "127.0.0.1:%d", port);
    ck_assert_double_eq(value_of(g_batch, "tcp_up", "check", label), 1);
    double lat = value_of(g_batch, "tcp_connect_latency_ms", "check", label);
    ck_assert(lat >= 0 && lat < 2000);
    printf("tcp: loopback connect %.3f ms\n", lat);
    vigil_collector_free(c);
    close(fd); /* now nothing listens there */
    snprintf(flow, sizeof(flow), "{type: tcp, name: db, host: 127.0.0.1, port: %d, timeout: 2s}",
             port);
    c = must(flow, NULL);
    collect(c, 1);
    ck_assert_double_eq(value_of(g_batch, "tcp_up", "check", "db"), 0);
    ck_assert_ptr_null(find(g_batch, "tcp_connect_latency_ms", NULL, NULL));
    vigil_collector_free(c);
}
END_TEST

/* ---- file ------------------------------------------------------------------------------ */

#define HELLO_SHA "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"

START_TEST(file_checks)
{
    const char *dir = fresh_dir();
    const char *path = vt_write_file(dir, "conf", "hello\n", 6);
    ck_assert_int_eq(chmod(path, 0640), 0);
    char flow[512];
    snprintf(flow, sizeof(flow), "{type: file, name: conf, path: %s, sha256: %s}", path, HELLO_SHA);
    vigil_collector *ok = must(flow, NULL);
    /* Upper-case digits are accepted; the path relative to base_dir. */
    char upper[65];
    for (int i = 0; i < 64; i++)
        upper[i] = (char)toupper((unsigned char)HELLO_SHA[i]);
    upper[64] = '\0';
    vigil_collector_options o = quiet_opts();
    o.base_dir = dir;
    snprintf(flow, sizeof(flow), "{type: file, path: conf, sha256: %s}", upper);
    vigil_collector *rel = must(flow, &o);
    snprintf(flow, sizeof(flow), "{type: file, path: %s, sha256: %064d}", path, 0);
    vigil_collector *bad = must(flow, NULL);
    snprintf(flow, sizeof(flow), "{type: file, path: %s/missing, sha256: %s}", dir, HELLO_SHA);
    vigil_collector *missing = must(flow, NULL);
    snprintf(flow, sizeof(flow), "{type: file, path: %s, sha256: %s, max_hash_size: 4}", path,
             HELLO_SHA);
    vigil_collector *big = must(flow, NULL);
    snprintf(flow, sizeof(flow), "{type: file, path: %s}", path);
    vigil_collector *plain = must(flow, NULL);

    int64_t now = (int64_t)time(NULL) * 1000 + 5000;
    collect(ok, now);
    ck_assert_double_eq(value_of(g_batch, "file_exists", "file", "conf"), 1);
    ck_assert_double_eq(value_of(g_batch, "file_size_bytes", "file", "conf"), 6);
    ck_assert_double_eq(value_of(g_batch, "file_mode", "file", "conf"), 0640);
    double age = value_of(g_batch, "file_age_seconds", "file", "conf");
    ck_assert(age >= 4 && age < 60);
    ck_assert_double_eq(value_of(g_batch, "file_sha256_ok", "file", "conf"), 1);
    collect(rel, now);
    ck_assert_double_eq(value_of(g_batch, "file_sha256_ok", "file", "conf"), 1);
    collect(bad, now);
    ck_assert_double_eq(value_of(g_batch, "file_sha256_ok", "file", path), 0);
    collect(missing, now);
    ck_assert_uint_eq(vigil_batch_count(g_batch), 2);
    ck_assert_double_eq(vigil_batch_get(g_batch, 0)->value, 0);
    ck_assert_double_eq(find(g_batch, "file_sha256_ok", NULL, NULL)->value, 0);
    ck_assert_double_eq(find(g_batch, "file_exists", NULL, NULL)->value, 0);
    collect(big, now);
    const vigil_metric *m = find(g_batch, "file_sha256_ok", NULL, NULL);
    ck_assert_ptr_nonnull(m);
    ck_assert(isnan(m->value));
    ck_assert_str_eq(m->error, "larger than max_hash_size (4 bytes)");
    collect(plain, now);
    ck_assert_uint_eq(vigil_batch_count(g_batch), 4);
    ck_assert_ptr_null(find(g_batch, "file_sha256_ok", NULL, NULL));
    /* Content changed: the digest no longer matches. */
    vt_write_file(dir, "conf", "hellO\n", 6);
    collect(ok, now);
    ck_assert_double_eq(value_of(g_batch, "file_sha256_ok", "file", "conf"), 0);
    /* A directory: exists, but no digest. */
    snprintf(flow, sizeof(flow), "{type: file, path: %s, sha256: %s}", dir, HELLO_SHA);
    vigil_collector *d = must(flow, NULL);
    collect(d, now);
    ck_assert_str_eq(find(g_batch, "file_sha256_ok", NULL, NULL)->error, "not a regular file");
    vigil_collector_free(d);
    vigil_collector_free(ok);
    vigil_collector_free(rel);
    vigil_collector_free(bad);
    vigil_collector_free(missing);
    vigil_collector_free(big);
    vigil_collector_free(plain);
}
END_TEST

/* ---- process ------------------------------------------------------------------------------ */

static pid_t spawn_sleep(const char *seconds)
{
    pid_t pid;
    char *argv[] = {"/bin/sleep", (char *)seconds, NULL};
    ck_assert_int_eq(posix_spawn(&pid, "/bin/sleep", NULL, NULL, argv, environ), 0);
    return pid;
}

/* Field 22 of /proc/PID/stat: the start time in clock ticks since boot. */
static unsigned long long start_time_of(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    ck_assert_ptr_nonnull(p);
    unsigned long long v = 0;
    /* after ") " come fields 3..; field 22 is the 20th of them */
    p += 2;
    for (int field = 3; field < 22; field++) {
        p = strchr(p, ' ');
        ck_assert_ptr_nonnull(p);
        p++;
    }
    v = strtoull(p, NULL, 10);
    return v;
}

static const char *write_pidfile(const char *dir, pid_t pid)
{
    char text[32];
    snprintf(text, sizeof(text), "%d\n", (int)pid);
    return vt_write_file(dir, "demo.pid", text, strlen(text));
}

static void reap(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

START_TEST(process_by_comm_is_this_test)
{
    char comm[64] = {0};
    FILE *f = fopen("/proc/self/comm", "r");
    ck_assert_ptr_nonnull(fgets(comm, sizeof(comm), f));
    fclose(f);
    comm[strcspn(comm, "\n")] = '\0';
    char flow[256];
    snprintf(flow, sizeof(flow), "{type: process, name: me, comm: %s, watch: false}", comm);
    vigil_collector *c = must(flow, NULL);
    ck_assert_int_eq(vigil_collector_poll_fd(c), -1);
    collect(c, 1);
    ck_assert_double_eq(value_of(g_batch, "process_up", "process", "me"), 1);
    ck_assert(value_of(g_batch, "process_count", "process", "me") >= 1);
    ck_assert(value_of(g_batch, "process_rss_bytes", "process", "me") > 1024 * 1024);
    ck_assert(value_of(g_batch, "process_threads", "process", "me") >= 1);
    ck_assert(value_of(g_batch, "process_open_fds", "process", "me") >= 3);
    double up = value_of(g_batch, "process_uptime_seconds", "process", "me");
    ck_assert(up >= 0 && up < 3600);
    ck_assert_double_eq(value_of(g_batch, "process_restarts_total", "process", "me"), 0);
    ck_assert_ptr_null(find(g_batch, "process_cpu_ratio", NULL, NULL)); /* a rate */
    const vigil_metric *ratio = NULL;
    for (int i = 0; i < 100 && !ratio; i++) {
        burn(30);
        collect(c, 2);
        ratio = find(g_batch, "process_cpu_ratio", "process", "me");
    }
    ck_assert_ptr_nonnull(ratio);
    ck_assert(ratio->value >= 0 && ratio->value <= 64);
    printf("process: cpu ratio of this test while burning %.3f\n", ratio->value);
    vigil_collector_free(c);
}
END_TEST

START_TEST(process_by_cmdline_and_restarts)
{
    char arg[32], flow[256];
    snprintf(arg, sizeof(arg), "77%d.5", (int)getpid() % 100000);
    pid_t a = spawn_sleep(arg);
    pid_t b = spawn_sleep(arg);
    snprintf(flow, sizeof(flow), "{type: process, name: sl, cmdline: '^/bin/sleep %s$'}", arg);
    vigil_collector *c = must(flow, NULL);
    /* The process may not have exec'd yet: wait for its command line. */
    double n = 0;
    for (int i = 0; i < 200 && n < 2; i++) {
        collect(c, 1);
        n = value_of(g_batch, "process_count", "process", "sl");
        if (n < 2)
            sleep_ms(5);
    }
    ck_assert_double_eq(n, 2);
    ck_assert_double_eq(value_of(g_batch, "process_up", "process", "sl"), 1);
    reap(a);
    reap(b);
    collect(c, 2);
    ck_assert_double_eq(value_of(g_batch, "process_up", "process", "sl"), 0);
    ck_assert_double_eq(value_of(g_batch, "process_count", "process", "sl"), 0);
    ck_assert_ptr_null(find(g_batch, "process_rss_bytes", NULL, NULL));
    vigil_collector_free(c);

    /* Restarts: the pidfile names a new process. */
    const char *dir = fresh_dir();
    pid_t p1 = spawn_sleep("30");
    const char *pidfile = write_pidfile(dir, p1);
    snprintf(flow, sizeof(flow), "{type: process, name: demo, pidfile: %s}", pidfile);
    c = must(flow, NULL);
    collect(c, 1);
    ck_assert_double_eq(value_of(g_batch, "process_up", "process", "demo"), 1);
    ck_assert_double_eq(value_of(g_batch, "process_restarts_total", "process", "demo"), 0);
    reap(p1);
    collect(c, 2);
    ck_assert_double_eq(value_of(g_batch, "process_up", "process", "demo"), 0);
    pid_t p2 = spawn_sleep("30");
    write_pidfile(dir, p2);
    collect(c, 3);
    ck_assert_double_eq(value_of(g_batch, "process_up", "process", "demo"), 1);
    ck_assert_double_eq(value_of(g_batch, "process_restarts_total", "process", "demo"), 1);
    collect(c, 4);
    ck_assert_double_eq(value_of(g_batch, "process_restarts_total", "process", "demo"), 1);
    /* "PID STARTTIME" (the process action's pidfile): the start time must match, so a
     * reused pid is not taken for the program. */
    char text[64];
    snprintf(text, sizeof(text), "%d %llu\n", (int)p2, start_time_of(p2));
    vt_write_file(dir, "demo.pid", text, strlen(text));
    collect(c, 5);
    ck_assert_double_eq(value_of(g_batch, "process_up", "process", "demo"), 1);
    snprintf(text, sizeof(text), "%d %llu\n", (int)p2, start_time_of(p2) + 1);
    vt_write_file(dir, "demo.pid", text, strlen(text));
    collect(c, 6);
    ck_assert_double_eq(value_of(g_batch, "process_up", "process", "demo"), 0);
    reap(p2);
    /* Garbage or a missing pidfile: not running. */
    vt_write_file(dir, "demo.pid", "not a pid\n", 10);
    collect(c, 7);
    ck_assert_double_eq(value_of(g_batch, "process_up", "process", "demo"), 0);
    char p[1024];
    snprintf(p, sizeof(p), "%s/demo.pid", dir);
    unlink(p);
    collect(c, 8);
    ck_assert_double_eq(value_of(g_batch, "process_up", "process", "demo"), 0);
    vigil_collector_free(c);
    /* A relative pidfile resolves against base_dir; the label is the path as given. */
    vigil_collector_options o = quiet_opts();
    o.base_dir = dir;
    pid_t p3 = spawn_sleep("30");
    write_pidfile(dir, p3);
    c = must("{type: process, pidfile: demo.pid}", &o);
    collect(c, 1);
    ck_assert_double_eq(value_of(g_batch, "process_up", "process", "demo.pid"), 1);
    vigil_collector_free(c);
    reap(p3);
}
END_TEST

START_TEST(process_exit_is_reported_by_the_event_path)
{
    const char *dir = fresh_dir();
    pid_t child = spawn_sleep("30");
    const char *pidfile = write_pidfile(dir, child);
    char flow[512];
    /* An interval of an hour: only the event path can report the exit. */
    snprintf(flow, sizeof(flow), "{type: process, name: demo, pidfile: %s, interval: 1h}", pidfile);
    vigil_collector *c = must(flow, NULL);
    collect(c, 1000);
    ck_assert_double_eq(value_of(g_batch, "process_up", "process", "demo"), 1);
    int fd = vigil_collector_poll_fd(c);
    int probe = (int)syscall(SYS_pidfd_open, (int)getpid(), 0);
    if (probe < 0) {
        /* No pidfd here (an old kernel, or valgrind): the polling fallback. */
        ck_assert_int_eq(fd, -1);
        printf("process watch: pidfd_open unavailable (errno %d); fallback to polling\n", errno);
        vigil_collector_free(c);
        reap(child);
        return;
    }
    close(probe);
    ck_assert_int_ge(fd, 0);
    struct pollfd pfd = {fd, POLLIN, 0};
    ck_assert_int_eq(poll(&pfd, 1, 0), 0); /* nothing pending while it runs */
    vigil_batch_clear(g_batch);
    ck_assert_int_eq(vigil_collector_on_event(c, g_batch, 1500), VIGIL_OK);
    ck_assert_uint_eq(vigil_batch_count(g_batch), 0);

    double t0 = mono_ms();
    ck_assert_int_eq(kill(child, SIGKILL), 0);
    ck_assert_int_eq(poll(&pfd, 1, 10000), 1);
    ck_assert(pfd.revents & POLLIN);
    vigil_batch_clear(g_batch);
    ck_assert_int_eq(vigil_collector_on_event(c, g_batch, 2000), VIGIL_OK);
    double t1 = mono_ms();
    ck_assert_double_eq(value_of(g_batch, "process_up", "process", "demo"), 0);
    ck_assert_double_eq(value_of(g_batch, "process_count", "process", "demo"), 0);
    ck_assert_int_eq(find(g_batch, "process_up", NULL, NULL)->ts_ms, 2000);
    ck_assert_uint_eq(vigil_batch_count(g_batch), 3);
    /* The schedule was not touched: the event path alone reported it. */
    ck_assert_int_eq(vigil_collector_next_due(c), 1000 + 3600 * 1000);
    printf("process watch: exit reported %.3f ms after SIGKILL, by the pidfd event path "
           "(the zombie is not reaped yet)\n",
           t1 - t0);
    /* Handled: the descriptor is quiet again. */
    ck_assert_int_eq(poll(&pfd, 1, 0), 0);
    waitpid(child, NULL, 0);

    /* A restarted process is watched again. */
    pid_t again = spawn_sleep("30");
    write_pidfile(dir, again);
    collect(c, 3000);
    ck_assert_double_eq(value_of(g_batch, "process_up", "process", "demo"), 1);
    ck_assert_double_eq(value_of(g_batch, "process_restarts_total", "process", "demo"), 1);
    ck_assert_int_eq(kill(again, SIGKILL), 0);
    ck_assert_int_eq(poll(&pfd, 1, 10000), 1);
    vigil_batch_clear(g_batch);
    ck_assert_int_eq(vigil_collector_on_event(c, g_batch, 4000), VIGIL_OK);
    ck_assert_double_eq(value_of(g_batch, "process_up", "process", "demo"), 0);
    waitpid(again, NULL, 0);
    vigil_collector_free(c);
}
END_TEST

START_TEST(process_polling_fallback)
{
    const char *dir = fresh_dir();
    pid_t child = spawn_sleep("30");
    const char *pidfile = write_pidfile(dir, child);
    char flow[512];
    snprintf(flow, sizeof(flow), "{type: process, name: demo, pidfile: %s, watch: false}", pidfile);
    vigil_collector *c = must(flow, NULL);
    ck_assert_int_eq(vigil_collector_poll_fd(c), -1);
    collect(c, 1);
    ck_assert_double_eq(value_of(g_batch, "process_up", "process", "demo"), 1);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    collect(c, 2);
    ck_assert_double_eq(value_of(g_batch, "process_up", "process", "demo"), 0);
    vigil_collector_free(c);
}
END_TEST

START_TEST(process_unreadable_pidfile_is_not_running)
{
    const char *dir = fresh_dir();
    char flow[2048];
    /* A directory where the pidfile should be: unreadable, so not running. */
    snprintf(flow, sizeof(flow), "{type: process, name: d, pidfile: %s}", dir);
    vigil_collector *c = must(flow, NULL);
    collect(c, 1);
    ck_assert_ptr_null(find(g_batch, VIGIL_COLLECTOR_ERROR_METRIC, NULL, NULL));
    ck_assert_double_eq(value_of(g_batch, "process_up", "process", "d"), 0);
    ck_assert_int_eq(vigil_collector_last_status(c), VIGIL_OK);
    vigil_collector_free(c);

    /* A symlinked pidfile is not followed (O_NOFOLLOW): not running, though
     * the file it leads to names this live process. */
    pid_t child = spawn_sleep("30");
    const char *real = write_pidfile(dir, child);
    char link[1024];
    snprintf(link, sizeof(link), "%s/link.pid", dir);
    ck_assert_int_eq(symlink(real, link), 0);
    snprintf(flow, sizeof(flow), "{type: process, name: l, pidfile: %s}", link);
    c = must(flow, NULL);
    collect(c, 1);
    ck_assert_double_eq(value_of(g_batch, "process_up", "process", "l"), 0);
    vigil_collector_free(c);
    /* ... and a bare pid, "PID STARTTIME", surrounding blanks: running */
    snprintf(flow, sizeof(flow), "{type: process, name: r, pidfile: %s}", real);
    c = must(flow, NULL);
    collect(c, 1);
    ck_assert_double_eq(value_of(g_batch, "process_up", "process", "r"), 1);
    char text[64];
    snprintf(text, sizeof(text), "  %d  %llu \n", (int)child, start_time_of(child));
    vt_write_file(dir, "demo.pid", text, strlen(text));
    collect(c, 2);
    ck_assert_double_eq(value_of(g_batch, "process_up", "process", "r"), 1);
    /* trailing junk, a pid of 1 or 0, a negative pid: garbage, not running */
    static const char *const bad[] = {"12x\n", "1\n", "0\n", "-5\n", "5 6 7\n", "\n", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        vt_write_file(dir, "demo.pid", bad[i], strlen(bad[i]));
        collect(c, 3 + (int64_t)i);
        ck_assert_msg(value_of(g_batch, "process_up", "process", "r") == 0, "\"%s\"", bad[i]);
    }
    vigil_collector_free(c);
    reap(child);
}
END_TEST

/* Starts are events too: a rewritten pidfile (atomic rename included) is
 * seen by the event path at once, and the new process is watched. */
START_TEST(process_new_pidfile_is_an_event)
{
    const char *dir = fresh_dir();
    pid_t first = spawn_sleep("30");
    const char *pidfile = write_pidfile(dir, first);
    char flow[2048];
    snprintf(flow, sizeof(flow), "{type: process, name: demo, pidfile: %s, interval: 1h}", pidfile);
    vigil_collector *c = must(flow, NULL);
    collect(c, 1000);
    int fd = vigil_collector_poll_fd(c);
    if (fd < 0) {
        printf("process watch: no pidfd here; the event path is off\n");
        vigil_collector_free(c);
        reap(first);
        return;
    }
    struct pollfd pfd = {fd, POLLIN, 0};
    reap(first);
    ck_assert_int_eq(poll(&pfd, 1, 10000), 1);
    vigil_batch_clear(g_batch);
    ck_assert_int_eq(vigil_collector_on_event(c, g_batch, 1100), VIGIL_OK);
    ck_assert_double_eq(value_of(g_batch, "process_up", "process", "demo"), 0);

    /* the pidfile is replaced by rename, as the process action writes it */
    pid_t second = spawn_sleep("30");
    char tmp[1024], text[64];
    snprintf(tmp, sizeof(tmp), "%s.tmp", pidfile);
    snprintf(text, sizeof(text), "%d %llu\n", (int)second, start_time_of(second));
    vt_write_file(dir, "demo.pid.tmp", text, strlen(text));
    double t0 = mono_ms();
    ck_assert_int_eq(rename(tmp, pidfile), 0);
    ck_assert_int_eq(poll(&pfd, 1, 10000), 1);
    vigil_batch_clear(g_batch);
    ck_assert_int_eq(vigil_collector_on_event(c, g_batch, 1200), VIGIL_OK);
    double t1 = mono_ms();
    ck_assert_double_eq(value_of(g_batch, "process_up", "process", "demo"), 1);
    ck_assert_double_eq(value_of(g_batch, "process_restarts_total", "process", "demo"), 1);
    ck_assert_int_eq(vigil_collector_next_due(c), 1000 + 3600 * 1000); /* no collection */
    printf("process watch: new pidfile reported %.3f ms after the rename\n", t1 - t0);

    /* the new process is watched: its exit is an event too */
    reap(second);
    ck_assert_int_eq(poll(&pfd, 1, 10000), 1);
    vigil_batch_clear(g_batch);
    ck_assert_int_eq(vigil_collector_on_event(c, g_batch, 1300), VIGIL_OK);
    ck_assert_double_eq(value_of(g_batch, "process_up", "process", "demo"), 0);

    /* a program writing its own bare pid in place; a half-written or garbage
     * pidfile emits nothing (it is not news of a start) */
    vt_write_file(dir, "demo.pid", "", 0);
    if (poll(&pfd, 1, 200) == 1) {
        vigil_batch_clear(g_batch);
        ck_assert_int_eq(vigil_collector_on_event(c, g_batch, 1400), VIGIL_OK);
        ck_assert_uint_eq(vigil_batch_count(g_batch), 0);
    }
    pid_t third = spawn_sleep("30");
    write_pidfile(dir, third);
    ck_assert_int_eq(poll(&pfd, 1, 10000), 1);
    vigil_batch_clear(g_batch);
    ck_assert_int_eq(vigil_collector_on_event(c, g_batch, 1500), VIGIL_OK);
    ck_assert_double_eq(value_of(g_batch, "process_up", "process", "demo"), 1);
    /* another file of the directory is not news */
    vt_write_file(dir, "other.txt", "x", 1);
    if (poll(&pfd, 1, 200) == 1) {
        vigil_batch_clear(g_batch);
        ck_assert_int_eq(vigil_collector_on_event(c, g_batch, 1600), VIGIL_OK);
        ck_assert_uint_eq(vigil_batch_count(g_batch), 0);
    }

    /* a pidfile renamed in naming a new pid that is already gone: the process
     * did start, so process_up 1 and then process_up 0, 1 ms apart */
    pid_t fourth = spawn_sleep("30");
    reap(fourth);
    snprintf(text, sizeof(text), "%d\n", (int)fourth);
    vt_write_file(dir, "demo.pid.tmp", text, strlen(text));
    ck_assert_int_eq(rename(tmp, pidfile), 0);
    ck_assert_int_eq(poll(&pfd, 1, 10000), 1);
    vigil_batch_clear(g_batch);
    ck_assert_int_eq(vigil_collector_on_event(c, g_batch, 1700), VIGIL_OK);
    double ups[4];
    int64_t ts[4];
    size_t nup = 0;
    for (size_t i = 0; i < vigil_batch_count(g_batch); i++) {
        const vigil_metric *m = vigil_batch_get(g_batch, i);
        if (strcmp(m->name, "process_up") == 0 && nup < 4) {
            ups[nup] = m->value;
            ts[nup++] = m->ts_ms;
        }
    }
    ck_assert_uint_eq(nup, 2);
    ck_assert_double_eq(ups[0], 1);
    ck_assert_int_eq(ts[0], 1700);
    ck_assert_double_eq(ups[1], 0);
    ck_assert_int_eq(ts[1], 1701);
    ck_assert_double_eq(value_of(g_batch, "process_restarts_total", "process", "demo"), 3);
    /* the same pidfile read again is not news: one process_up 0 */
    collect(c, 1800);
    ck_assert_double_eq(value_of(g_batch, "process_up", "process", "demo"), 0);
    ck_assert_double_eq(value_of(g_batch, "process_count", "process", "demo"), 0);
    vigil_collector_free(c);
    reap(third);
}
END_TEST

/* ---- out of memory ----------------------------------------------------------------------- */

typedef struct {
    const vigil_config_node *node;
    vigil_collector *c;
    vigil_batch *b;
} oom_ctx;

static int oom_op(void *p)
{
    oom_ctx *x = p;
    int rc = vigil_batch_new(&x->b);
    if (rc == VIGIL_OK)
        rc = vigil_collector_new(&x->c, g_reg, x->node, NULL);
    for (int i = 0; rc == VIGIL_OK && i < 2; i++)
        rc = vigil_collector_collect(x->c, x->b, 1 + i, NULL);
    return rc;
}

static void oom_cleanup(void *p)
{
    oom_ctx *x = p;
    vigil_collector_free(x->c);
    vigil_batch_free(x->b);
    x->c = NULL;
    x->b = NULL;
}

/* The counting allocator must be installed before anything is allocated. */
static void oom_setup(void)
{
    vt_alloc_install();
    coll_setup();
}

START_TEST(out_of_memory_sweep)
{
    static const char *const flows[] = {
        "{type: cpu, tags: {a: b}}",
        "{type: memory}",
        "{type: load}",
        "{type: disk}",
        "{type: net}",
        "{type: process, comm: init, name: x}",
        "{type: tcp, host: 127.0.0.1, port: 1, timeout: 1s}",
        "{type: file, path: /etc/hostname, sha256: " HELLO_SHA "}",
        "{type: exec, argv: [/bin/echo, \"m 1\"], env: {A: b}}",
        "{type: http, url: \"http://127.0.0.1:1/\", timeout: 1s}",
    };
    vt_alloc_install();
    for (size_t i = 0; i < sizeof(flows) / sizeof(flows[0]); i++) {
        /* The config is loaded outside the sweep: only the collector allocates. */
        oom_ctx x = {entry(flows[i]), NULL, NULL};
        long runs = vt_oom_sweep(oom_op, oom_cleanup, &x, 0);
        ck_assert_msg(runs > 0, "%s", flows[i]);
    }
}
END_TEST

static Suite *collector_suite(void)
{
    Suite *s = suite_create("collector");
    TCase *tc = tcase_create("registry");
    tcase_add_checked_fixture(tc, coll_setup, coll_teardown);
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, registry_builtins_and_lookup);
    tcase_add_test(tc, registry_refuses_bad_types_and_frees_payload);
    tcase_add_test(tc, two_registries_are_independent);
    tcase_add_test(tc, listing_follows_the_fallback_as_lookup_does);
    tcase_add_test(tc, instance_tags_schedule_and_accessors);
    tcase_add_test(tc, failures_become_error_samples_and_back_off);
    tcase_add_test(tc, backoff_never_below_interval);
    tcase_add_test(tc, events_pass_through_the_instance);
    tcase_add_test(tc, batch_full_is_reported);
    tcase_add_test(tc, config_errors_shared_keys);
    tcase_add_test(tc, config_errors_of_types);
    suite_add_tcase(s, tc);

    tc = tcase_create("system");
    tcase_add_checked_fixture(tc, coll_setup, coll_teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, cpu_real_proc);
    tcase_add_test(tc, cpu_exact_rates_from_fake_proc);
    tcase_add_test(tc, memory_real_proc);
    tcase_add_test(tc, memory_fake_proc);
    tcase_add_test(tc, load_real_and_fake);
    tcase_add_test(tc, disk_real_proc);
    tcase_add_test(tc, disk_fake_mountinfo_and_diskstats);
    tcase_add_test(tc, net_real_proc);
    tcase_add_test(tc, net_fake_proc);
    tcase_add_test(tc, tcp_listener_and_closed_port);
    tcase_add_test(tc, file_checks);
    suite_add_tcase(s, tc);

    tc = tcase_create("process");
    tcase_add_checked_fixture(tc, coll_setup, coll_teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, process_by_comm_is_this_test);
    tcase_add_test(tc, process_by_cmdline_and_restarts);
    tcase_add_test(tc, process_exit_is_reported_by_the_event_path);
    tcase_add_test(tc, process_polling_fallback);
    tcase_add_test(tc, process_unreadable_pidfile_is_not_running);
    tcase_add_test(tc, process_new_pidfile_is_an_event);
    suite_add_tcase(s, tc);

    tc = tcase_create("oom");
    tcase_add_checked_fixture(tc, oom_setup, coll_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, out_of_memory_sweep);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(collector_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
