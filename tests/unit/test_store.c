/* Store: URLs and backends, samples and every query form, idempotent batch
 * ids, the action ledger, decisions, audit, silences, policy state,
 * resources, retention, migrations, and faults with real files (read-only,
 * full, corrupt, locked, newer schema). */
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal/store.h"
#include "pgtest.h"
#include "store/chunk.h"
#include "testutil.h"
#include "vigil/sys/store.h"

/* The backend of the tests that run on both: SQLite, then the PostgreSQL
 * server this program starts (main()); the "postgresql" test case sets
 * g_pg in each test's process. */
static int g_pg;
static vt_pg g_server;

static const char *tmp(void)
{
    static const char *dir;
    if (!dir)
        dir = vt_tmpdir();
    return dir;
}

/* A fresh database path in the temporary directory. */
static const char *db_path(const char *name)
{
    static char buf[4][1024];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, 1024, "%s/%s", tmp(), name);
    return p;
}

/* A schema name for `name` in this test's process (each test runs in a
 * process of its own): the same name gives the same store. */
static void pg_schema(char *out, size_t len, const char *name)
{
    int n = snprintf(out, len, "t%d_", (int)getpid());
    for (const char *p = name; *p && (size_t)n + 1 < len && n < 60; p++)
        out[n++] = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ? *p : '_';
    out[n] = '\0';
}

/* The URL of the store `name`: a file, or a schema of the server. */
static const char *db_url(const char *name)
{
    static char buf[4][1100];
    static int next;
    char *p = buf[next++ % 4];
    if (g_pg) {
        char schema[80];
        pg_schema(schema, sizeof(schema), name);
        snprintf(p, 1100, "%s&schema=%s", g_server.url, schema);
    } else {
        snprintf(p, 1100, "sqlite://%s", db_path(name));
    }
    return p;
}

/* The URL of a fresh store: in memory, or a new schema of the server. */
static const char *mem_url(void)
{
    static int n;
    if (!g_pg)
        return "sqlite::memory:";
    char name[32];
    snprintf(name, sizeof(name), "mem%d", n++);
    return db_url(name);
}

static void use_pg(void)
{
    g_pg = 1;
}

static vigil_store *open_url(const char *url)
{
    vigil_store *st = NULL;
    int rc = vigil_store_open(&st, url, NULL);
    ck_assert_msg(rc == VIGIL_OK, "open %s: %d %s", url, rc, vigil_error_last()->message);
    return st;
}

static vigil_store *open_mem(void)
{
    return open_url(mem_url());
}

/* Adds a metric with up to two tags ("k=v" pairs, NULL to skip). */
static void add(vigil_batch *b, const char *name, double v, int64_t ts, const char *k1,
                const char *v1, const char *k2, const char *v2)
{
    vigil_tag tags[2];
    size_t n = 0;
    if (k1)
        tags[n++] = (vigil_tag){k1, v1};
    if (k2)
        tags[n++] = (vigil_tag){k2, v2};
    vigil_metric m = {name, v, ts, tags, n, NULL};
    ck_assert_int_eq(vigil_batch_add(b, &m), VIGIL_OK);
}

static void write_ok(vigil_store *st, vigil_batch *b, vigil_store_write_result *res)
{
    int rc = vigil_store_write(st, b, res);
    ck_assert_msg(rc == VIGIL_OK, "write: %d %s", rc, vigil_error_last()->message);
}

/* Collects query output as text lines "key@ts=value". */
typedef struct collect {
    char out[16384];
    int points;
    int series;
    int stop_after;
} collect;

static int point_cb(const vigil_store_series *s, const vigil_store_point *p, void *payload)
{
    collect *c = payload;
    size_t len = strlen(c->out);
    if (p->error)
        snprintf(c->out + len, sizeof(c->out) - len, "%s@%lld=!%s\n", s->key, (long long)p->ts_ms,
                 p->error);
    else
        snprintf(c->out + len, sizeof(c->out) - len, "%s@%lld=%g\n", s->key, (long long)p->ts_ms,
                 p->value);
    c->points++;
    if (c->stop_after && c->points >= c->stop_after)
        return 7;
    return 0;
}

static int series_cb(const vigil_store_series *s, void *payload)
{
    collect *c = payload;
    size_t len = strlen(c->out);
    len += (size_t)snprintf(c->out + len, sizeof(c->out) - len, "%s|%s|", s->key, s->name);
    for (size_t i = 0; i < s->ntags; i++)
        len += (size_t)snprintf(c->out + len, sizeof(c->out) - len, "%s=%s;", s->tags[i].key,
                                s->tags[i].value);
    snprintf(c->out + len, sizeof(c->out) - len, "\n");
    c->series++;
    return 0;
}

static const char *run(vigil_store *st, const vigil_store_query *q, collect *c)
{
    memset(c, 0, sizeof(*c));
    int rc = vigil_store_query_run(st, q, point_cb, c);
    ck_assert_msg(rc == VIGIL_OK, "query: %d %s", rc, vigil_error_last()->message);
    return c->out;
}

static int count_samples(vigil_store *st)
{
    collect c;
    vigil_store_query q = VIGIL_STORE_QUERY_INIT;
    run(st, &q, &c);
    return c.points;
}

/* ---- opening ------------------------------------------------------------------------------ */

START_TEST(open_urls)
{
    vigil_store *st = open_mem();
    ck_assert_str_eq(vigil_store_scheme(st), "sqlite");
    vigil_store_close(st);
    st = open_url("sqlite://:memory:");
    vigil_store_close(st);

    /* Absolute path, with parent directories created: the directories 0700,
     * the database and its WAL 0600, whatever the umask. */
    mode_t old_mask = umask(022);
    char url[1200];
    snprintf(url, sizeof(url), "sqlite://%s/sub/dir/a.db", tmp());
    st = open_url(url);
    vigil_metric m = {"cpu", 1.0, 1000, NULL, 0, NULL};
    vigil_batch *wb = NULL;
    ck_assert_int_eq(vigil_batch_new(&wb), VIGIL_OK);
    ck_assert_int_eq(vigil_batch_add(wb, &m), VIGIL_OK);
    ck_assert_int_eq(vigil_store_write(st, wb, NULL), VIGIL_OK);
    vigil_batch_free(wb);
    char path[1200];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/sub/dir/a.db-wal", tmp());
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_uint_eq(sb.st_mode & 0777, 0600);
    vigil_store_close(st);
    umask(old_mask);
    snprintf(path, sizeof(path), "%s/sub/dir/a.db", tmp());
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_uint_eq(sb.st_mode & 0777, 0600);
    snprintf(path, sizeof(path), "%s/sub/dir", tmp());
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_uint_eq(sb.st_mode & 0777, 0700);
    snprintf(path, sizeof(path), "%s/sub", tmp());
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_uint_eq(sb.st_mode & 0777, 0700);

    /* Relative path, against the working directory. */
    char cwd[1024];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
    ck_assert_int_eq(chdir(tmp()), 0);
    st = open_url("sqlite://./rel/r.db");
    vigil_store_close(st);
    st = open_url("sqlite://plain.db?mode=rwc&synchronous=full&busy_timeout=250ms");
    vigil_store_close(st);
    ck_assert_int_eq(chdir(cwd), 0);
    snprintf(path, sizeof(path), "%s/rel/r.db", tmp());
    ck_assert_int_eq(stat(path, &sb), 0);
    snprintf(path, sizeof(path), "%s/plain.db", tmp());
    ck_assert_int_eq(stat(path, &sb), 0);

    vigil_store_options o;
    ck_assert_int_eq(vigil_store_options_init(&o, VIGIL_STORE_OPTIONS_VERSION), VIGIL_OK);
    o.synchronous = VIGIL_STORE_SYNC_FULL;
    o.busy_timeout_ms = 100;
    ck_assert_int_eq(vigil_store_open(&st, db_url("opts.db"), &o), VIGIL_OK);
    vigil_store_close(st);
    o.no_create_dirs = 1;
    snprintf(url, sizeof(url), "sqlite://%s/nodir/x.db", tmp());
    ck_assert_int_eq(vigil_store_open(&st, url, &o), VIGIL_EIO);
    vt_assert_error(VIGIL_EIO, "unable to open");
    vigil_store_close(NULL);
}
END_TEST

START_TEST(open_bad_urls_and_options)
{
    vigil_store *st = (vigil_store *)1;
    ck_assert_int_eq(vigil_store_open(&st, "mysql://db/vigil", NULL), VIGIL_EUNSUPPORTED);
    vt_assert_error(VIGIL_EUNSUPPORTED,
                    "unsupported URL scheme \"mysql\" (known: sqlite, postgresql, postgres)");
    ck_assert_ptr_null(st);
    ck_assert_int_eq(vigil_store_open(&st, "vigil.db", NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "is not a store URL");
    ck_assert_int_eq(vigil_store_open(&st, "sqlite:vigil.db", NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "expected sqlite://PATH");
    ck_assert_int_eq(vigil_store_open(&st, "sqlite://", NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "names no database file");
    ck_assert_int_eq(vigil_store_open(&st, "sqlite://x.db?cache=shared", NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "unknown URL option \"cache\"");
    ck_assert_int_eq(vigil_store_open(&st, "sqlite://x.db?mode=rx", NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "expected ro, rw or rwc");
    ck_assert_int_eq(vigil_store_open(&st, "sqlite://x.db?synchronous=off", NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "expected normal or full");
    ck_assert_int_eq(vigil_store_open(&st, "sqlite://x.db?busy_timeout=soon", NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "expected a duration");
    /* the write log's options */
    static const struct {
        const char *url, *msg;
    } bad[] = {
        {"sqlite://x.db?log=maybe", "URL option log=maybe: expected on or off"},
        {"sqlite://x.db?fold_interval=0", "fold_interval=0: expected a duration from 1ms to 1h"},
        {"sqlite://x.db?fold_interval=2h", "fold_interval=2h: expected a duration from 1ms to 1h"},
        {"sqlite://x.db?fold_slice=fast", "fold_slice=fast: expected a duration from 0 to 1h"},
        {"sqlite://x.db?fold_batch=0", "fold_batch=0: expected a number of series from 1 to"},
        {"sqlite://x.db?fold_batch=12x", "fold_batch=12x: expected a number of series"},
        {"sqlite://x.db?log_memory=1KiB", "log_memory=1KiB: expected a size from 4KiB to 1TiB"},
        {"sqlite://x.db?log_memory_max=lots", "log_memory_max=lots: expected a size"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(vigil_store_open(&st, bad[i].url, NULL), VIGIL_EINVAL);
        vt_assert_error(VIGIL_EINVAL, bad[i].msg);
        ck_assert_ptr_null(st);
    }
    ck_assert_int_eq(vigil_store_open(&st, "sqlite://x.db?mode", NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "has no value");
    ck_assert_int_eq(vigil_store_open(&st, "sqlite::memory:?mode=ro", NULL), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_store_open(&st, "sqlite://:memory:?mode=ro", NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "in-memory store cannot be read-only");
    ck_assert_int_eq(vigil_store_open(NULL, "sqlite::memory:", NULL), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_store_open(&st, NULL, NULL), VIGIL_EINVAL);
    char *big = malloc(VIGIL_STORE_URL_MAX + 20);
    memset(big, 'a', VIGIL_STORE_URL_MAX + 19);
    memcpy(big, "sqlite://", 9);
    big[VIGIL_STORE_URL_MAX + 19] = '\0';
    ck_assert_int_eq(vigil_store_open(&st, big, NULL), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "URL is");
    free(big);
    ck_assert_int_eq(vigil_store_open(&st, "sqlite://\xff.db", NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "not valid UTF-8");

    vigil_store_options o = VIGIL_STORE_OPTIONS_INIT;
    o.version = 9;
    ck_assert_int_eq(vigil_store_open(&st, "sqlite::memory:", &o), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION,
                    "store options: version 9 is not supported (this library reads version 2)");
    o.version = VIGIL_STORE_OPTIONS_VERSION;
    o.busy_timeout_ms = -1;
    ck_assert_int_eq(vigil_store_open(&st, "sqlite::memory:", &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "busy_timeout_ms must not be negative");
    o.busy_timeout_ms = 0;
    o.synchronous = (vigil_store_sync)5;
    ck_assert_int_eq(vigil_store_open(&st, "sqlite::memory:", &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "unknown synchronous mode 5");
    ck_assert_int_eq(vigil_store_options_init(&o, VIGIL_STORE_OPTIONS_VERSION + 1), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION,
                    "store options: version 3 is not supported (this library reads version 2)");
    ck_assert_int_eq(vigil_store_options_init(&o, 0), VIGIL_EVERSION);
    /* an older version is accepted: 1..current */
    ck_assert_int_eq(vigil_store_options_init(&o, 1), VIGIL_OK);
    ck_assert_int_eq(vigil_store_options_init(NULL, 1), VIGIL_EINVAL);

    /* A directory is not a database. */
    char url[1100];
    snprintf(url, sizeof(url), "sqlite://%s", tmp());
    ck_assert_int_eq(vigil_store_open(&st, url, NULL), VIGIL_EIO);
    vt_assert_error(VIGIL_EIO, "is a directory");
    /* mode=rw needs an existing file. */
    snprintf(url, sizeof(url), "sqlite://%s/missing.db?mode=rw", tmp());
    ck_assert_int_eq(vigil_store_open(&st, url, NULL), VIGIL_ENOTFOUND);
    vt_assert_error(VIGIL_ENOTFOUND, "does not exist");
}
END_TEST

/* ---- a backend registered by the program ------------------------------------------ */

typedef struct mock {
    int opened;
    int writes;
    int freed;
    char rest[64];
} mock;

static int mock_open(void **out, const char *url, const char *rest, const vigil_store_options *opts,
                     void *payload)
{
    (void)url;
    ck_assert_ptr_nonnull(opts);
    mock *m = payload;
    if (strcmp(rest, "//fail") == 0)
        return vigil_error_set(VIGIL_EIO, "mock: cannot reach the server");
    if (strcmp(rest, "//silent") == 0)
        return VIGIL_ENETWORK; /* no message recorded */
    snprintf(m->rest, sizeof(m->rest), "%s", rest);
    m->opened++;
    *out = m;
    return VIGIL_OK;
}

static void mock_close(void *h)
{
    ((mock *)h)->opened--;
}

static int mock_write(void *h, const vigil_batch *b, vigil_store_write_result *r)
{
    /* the front hands a backend this library's layout, whatever the caller's */
    ck_assert_uint_eq(r->version, VIGIL_STORE_WRITE_RESULT_VERSION);
    ((mock *)h)->writes++;
    r->written = vigil_batch_count(b);
    return VIGIL_OK;
}

static int mock_query(void *h, const vigil_store_query *q, vigil_store_point_cb cb, void *p)
{
    (void)h;
    (void)q;
    vigil_store_series s = {1, "m", "m", NULL, 0};
    vigil_store_point pt = {5, 1.5, NULL};
    return cb(&s, &pt, p);
}

static int mock_series(void *h, const vigil_store_query *q, vigil_store_series_cb cb, void *p)
{
    (void)h;
    (void)q;
    (void)cb;
    (void)p;
    return VIGIL_OK;
}

static void mock_free(void *payload)
{
    ((mock *)payload)->freed++;
}

/* The mock type, its payload @p m (freed through mock_free). */
static vigil_store_type mock_backend(mock *m)
{
    vigil_store_type b;
    memset(&b, 0, sizeof(b));
    b.version = VIGIL_STORE_TYPE_VERSION;
    b.name = "mock";
    b.payload = m;
    b.payload_free = mock_free;
    b.open = mock_open;
    b.close = mock_close;
    b.write = mock_write;
    b.query = mock_query;
    b.series_list = mock_series;
    b.latest = mock_query;
    return b;
}

START_TEST(registry_and_custom_backend)
{
    vigil_store_registry *reg = NULL;
    ck_assert_int_eq(vigil_store_registry_new(&reg), VIGIL_OK);
    mock m;
    memset(&m, 0, sizeof(m));
    vigil_store_type b = mock_backend(&m);
    ck_assert_int_eq(vigil_store_register(reg, &b), VIGIL_OK);

    /* Rejected registrations still run payload_free. */
    mock other;
    memset(&other, 0, sizeof(other));
    b = mock_backend(&other);
    ck_assert_int_eq(vigil_store_register(reg, &b), VIGIL_EEXISTS);
    vt_assert_error(VIGIL_EEXISTS, "store type \"mock\" is already registered");
    ck_assert_int_eq(other.freed, 1);
    vigil_store_type bad = mock_backend(&other);
    bad.name = "other";
    bad.version = VIGIL_STORE_TYPE_VERSION + 1;
    ck_assert_int_eq(vigil_store_register(reg, &bad), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION,
                    "store type: version 4 is not supported (this library reads version 3)");
    ck_assert_int_eq(other.freed, 2);
    bad.version = 1;
    ck_assert_int_eq(vigil_store_register(reg, &bad), VIGIL_EVERSION);
    ck_assert_int_eq(other.freed, 3);
    bad.version = VIGIL_STORE_TYPE_VERSION;
    bad.name = "Bad_Scheme";
    ck_assert_int_eq(vigil_store_register(reg, &bad), VIGIL_ENAME);
    vt_assert_error(VIGIL_ENAME, "store type: name \"Bad_Scheme\" is invalid (expected "
                                 "[a-z][a-z0-9+.-]*, at most 32 bytes)");
    bad.name = "other";
    bad.query = NULL;
    ck_assert_int_eq(vigil_store_register(reg, &bad), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "store type \"other\": open, close, write, query, series_list "
                                  "and latest are required");
    ck_assert_int_eq(other.freed, 5);
    bad = mock_backend(&other);
    bad.name = "sqlite";
    ck_assert_int_eq(vigil_store_register(reg, &bad), VIGIL_EEXISTS);
    vt_assert_error(VIGIL_EEXISTS, "store type \"sqlite\" is built in");
    ck_assert_int_eq(other.freed, 6);
    ck_assert_int_eq(vigil_store_register(NULL, &bad), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "store type: the registry is NULL");
    ck_assert_int_eq(other.freed, 7);
    ck_assert_int_eq(vigil_store_register(reg, NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "store type: the type is NULL");
    ck_assert_int_eq(vigil_store_registry_new(NULL), VIGIL_EINVAL);

    /* The registry is per object: without it the scheme is unknown. */
    vigil_store *st = NULL;
    ck_assert_int_eq(vigil_store_open(&st, "mock://x", NULL), VIGIL_EUNSUPPORTED);
    vt_assert_error(VIGIL_EUNSUPPORTED, "\"mock\" (known: sqlite, postgresql, postgres)");
    vigil_store_options o = VIGIL_STORE_OPTIONS_INIT;
    o.registry = reg;
    ck_assert_int_eq(vigil_store_open(&st, "nope://x", &o), VIGIL_EUNSUPPORTED);
    vt_assert_error(VIGIL_EUNSUPPORTED, "(known: sqlite, postgresql, postgres, mock)");
    ck_assert_int_eq(vigil_store_open(&st, "mock://fail", &o), VIGIL_EIO);
    vt_assert_error(VIGIL_EIO, "mock: cannot reach the server");
    vigil_error_clear();
    ck_assert_int_eq(vigil_store_open(&st, "mock://silent", &o), VIGIL_ENETWORK);
    vt_assert_error(VIGIL_ENETWORK, "mock: open failed");

    ck_assert_int_eq(vigil_store_open(&st, "mock://somewhere", &o), VIGIL_OK);
    ck_assert_str_eq(vigil_store_scheme(st), "mock");
    ck_assert_str_eq(m.rest, "//somewhere");
    ck_assert_int_eq(m.opened, 1);
    vigil_batch *batch = NULL;
    ck_assert_int_eq(vigil_batch_new(&batch), VIGIL_OK);
    add(batch, "m", 1, 1, NULL, NULL, NULL, NULL);
    vigil_store_write_result res = VIGIL_STORE_WRITE_RESULT_INIT;
    /* an output struct of an unknown version never reaches the backend */
    res.version = 0;
    ck_assert_int_eq(vigil_store_write(st, batch, &res), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "store write: result version 0 is not supported");
    res.version = VIGIL_STORE_WRITE_RESULT_VERSION + 1;
    ck_assert_int_eq(vigil_store_write(st, batch, &res), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "store write: result version 2 is not supported");
    ck_assert_int_eq(m.writes, 0);
    res.version = VIGIL_STORE_WRITE_RESULT_VERSION;
    ck_assert_int_eq(vigil_store_write(st, batch, &res), VIGIL_OK);
    ck_assert_int_eq(m.writes, 1);
    ck_assert_uint_eq(res.version, VIGIL_STORE_WRITE_RESULT_VERSION);
    ck_assert_uint_eq(res.written, 1);
    collect c;
    vigil_store_query q = VIGIL_STORE_QUERY_INIT;
    ck_assert_str_eq(run(st, &q, &c), "m@5=1.5\n");
    vigil_store_stats sst = VIGIL_STORE_STATS_INIT;
    ck_assert_int_eq(vigil_store_stats_get(st, &sst), VIGIL_EUNSUPPORTED);
    vt_assert_error(VIGIL_EUNSUPPORTED, "mock: the backend does not support stats");
    /* Optional members left NULL are reported, not called. */
    vigil_store_action a = {0};
    a.id = "a1";
    a.action = "x";
    a.target = "t";
    ck_assert_int_eq(vigil_store_action_put(st, &a, NULL), VIGIL_EUNSUPPORTED);
    vt_assert_error(VIGIL_EUNSUPPORTED, "mock: the backend does not support action put");
    ck_assert_int_eq(vigil_store_retain(st, 0, NULL, NULL), VIGIL_EUNSUPPORTED);
    void *v;
    size_t len;
    ck_assert_int_eq(vigil_store_state_get(st, "k", &v, &len), VIGIL_EUNSUPPORTED);
    vigil_store_close(st);
    ck_assert_int_eq(m.opened, 0);
    vigil_batch_free(batch);

    ck_assert_int_eq(m.freed, 0);
    vigil_store_registry_free(reg);
    ck_assert_int_eq(m.freed, 1);
    vigil_store_registry_free(NULL);

    /* The built-in vtable can be wrapped and registered under another scheme;
     * the name is copied. */
    ck_assert_int_eq(vigil_store_registry_new(&reg), VIGIL_OK);
    vigil_store_type lite = *vigil_store_sqlite_type();
    char lname[8] = "lite";
    lite.name = lname;
    ck_assert_int_eq(vigil_store_register(reg, &lite), VIGIL_OK);
    strcpy(lname, "gone");
    o.registry = reg;
    ck_assert_int_eq(vigil_store_open(&st, "lite::memory:", &o), VIGIL_OK);
    ck_assert_str_eq(vigil_store_scheme(st), "lite");
    vigil_store_close(st);
    vigil_store_registry_free(reg);
}
END_TEST

/* ---- samples and queries ---------------------------------------------------------------- */

static vigil_store *fixture(void)
{
    vigil_store *st = open_mem();
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    for (int i = 0; i < 6; i++) {
        int64_t ts = 1000 * (i + 1);
        add(b, "cpu", i, ts, "host", "h1", "cpu", "0");
        add(b, "cpu", 10 + i, ts, "host", "h2", "cpu", "0");
        add(b, "cpu", 20 + i, ts, "host", "web-1", NULL, NULL);
        add(b, "mem", 100 + i, ts, "host", "h1", NULL, NULL);
    }
    add(b, "load1", 0.5, 500, NULL, NULL, NULL, NULL);
    vigil_store_write_result res = VIGIL_STORE_WRITE_RESULT_INIT;
    write_ok(st, b, &res);
    ck_assert_uint_eq(res.written, 25);
    ck_assert_uint_eq(res.new_series, 5);
    ck_assert_int_eq(res.duplicate, 0);
    vigil_batch_free(b);
    return st;
}

START_TEST(write_and_raw_queries)
{
    vigil_store *st = fixture();
    collect c;
    vigil_store_query q = VIGIL_STORE_QUERY_INIT;
    q.name = "cpu";
    q.from_ms = 2000;
    q.to_ms = 4000;
    ck_assert_str_eq(run(st, &q, &c), "cpu{cpu=\"0\",host=\"h1\"}@2000=1\n"
                                      "cpu{cpu=\"0\",host=\"h1\"}@3000=2\n"
                                      "cpu{cpu=\"0\",host=\"h2\"}@2000=11\n"
                                      "cpu{cpu=\"0\",host=\"h2\"}@3000=12\n"
                                      "cpu{host=\"web-1\"}@2000=21\n"
                                      "cpu{host=\"web-1\"}@3000=22\n");
    /* No name: every series; no range: everything. */
    q = (vigil_store_query)VIGIL_STORE_QUERY_INIT;
    run(st, &q, &c);
    ck_assert_int_eq(c.points, 25);
    /* Only to_ms: everything before it (from_ms 0 is a bound then). */
    q.to_ms = 1001;
    run(st, &q, &c);
    ck_assert_int_eq(c.points, 5);
    /* limit per series */
    q = (vigil_store_query)VIGIL_STORE_QUERY_INIT;
    q.name = "mem";
    q.limit = 2;
    ck_assert_str_eq(run(st, &q, &c), "mem{host=\"h1\"}@1000=100\nmem{host=\"h1\"}@2000=101\n");
    /* unknown name: nothing, OK */
    q.name = "nothing";
    ck_assert_str_eq(run(st, &q, &c), "");
    /* A callback's non-zero value stops and is returned. */
    q = (vigil_store_query)VIGIL_STORE_QUERY_INIT;
    memset(&c, 0, sizeof(c));
    c.stop_after = 3;
    ck_assert_int_eq(vigil_store_query_run(st, &q, point_cb, &c), 7);
    ck_assert_int_eq(c.points, 3);
    /* Still usable after a stopped query. */
    ck_assert_int_eq(count_samples(st), 25);
    vigil_store_close(st);
}
END_TEST

START_TEST(tag_matchers)
{
    vigil_store *st = fixture();
    collect c;
    vigil_store_query q = VIGIL_STORE_QUERY_INIT;
    q.name = "cpu";
    q.from_ms = 1000;
    q.to_ms = 1001;
    vigil_store_matcher m[2];
    q.matchers = m;
    q.nmatchers = 1;

    m[0] = (vigil_store_matcher){"host", VIGIL_STORE_MATCH_EQ, "h2"};
    ck_assert_str_eq(run(st, &q, &c), "cpu{cpu=\"0\",host=\"h2\"}@1000=10\n");
    m[0] = (vigil_store_matcher){"host", VIGIL_STORE_MATCH_NE, "h2"};
    ck_assert_str_eq(run(st, &q, &c),
                     "cpu{cpu=\"0\",host=\"h1\"}@1000=0\ncpu{host=\"web-1\"}@1000=20\n");
    m[0] = (vigil_store_matcher){"host", VIGIL_STORE_MATCH_GLOB, "h?"};
    run(st, &q, &c);
    ck_assert_int_eq(c.points, 2);
    m[0] = (vigil_store_matcher){"host", VIGIL_STORE_MATCH_GLOB, "[a-z]*-[0-9]"};
    ck_assert_str_eq(run(st, &q, &c), "cpu{host=\"web-1\"}@1000=20\n");
    m[0] = (vigil_store_matcher){"host", VIGIL_STORE_MATCH_NOT_GLOB, "h*"};
    ck_assert_str_eq(run(st, &q, &c), "cpu{host=\"web-1\"}@1000=20\n");
    /* Absent tags: EQ and GLOB need the tag, NE and NOT_GLOB accept its absence. */
    m[0] = (vigil_store_matcher){"cpu", VIGIL_STORE_MATCH_GLOB, "*"};
    run(st, &q, &c);
    ck_assert_int_eq(c.points, 2);
    m[0] = (vigil_store_matcher){"cpu", VIGIL_STORE_MATCH_NE, "0"};
    ck_assert_str_eq(run(st, &q, &c), "cpu{host=\"web-1\"}@1000=20\n");
    m[0] = (vigil_store_matcher){"cpu", VIGIL_STORE_MATCH_NOT_GLOB, "*"};
    ck_assert_str_eq(run(st, &q, &c), "cpu{host=\"web-1\"}@1000=20\n");
    /* Matchers combine with AND. */
    m[0] = (vigil_store_matcher){"host", VIGIL_STORE_MATCH_GLOB, "h*"};
    m[1] = (vigil_store_matcher){"host", VIGIL_STORE_MATCH_NE, "h1"};
    q.nmatchers = 2;
    ck_assert_str_eq(run(st, &q, &c), "cpu{cpu=\"0\",host=\"h2\"}@1000=10\n");
    /* Name glob across metrics. */
    q.nmatchers = 1;
    m[0] = (vigil_store_matcher){"host", VIGIL_STORE_MATCH_EQ, "h1"};
    q.name = "*m*";
    q.name_op = VIGIL_STORE_MATCH_GLOB;
    ck_assert_str_eq(run(st, &q, &c), "mem{host=\"h1\"}@1000=100\n");
    q.name = NULL;
    run(st, &q, &c);
    ck_assert_int_eq(c.points, 2);
    vigil_store_close(st);
}
END_TEST

START_TEST(downsampled_queries)
{
    vigil_store *st = open_mem();
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    /* 0..9 at 1 s steps from ts 0; buckets of 4 s: [0..3], [4..7], [8..9]. */
    for (int i = 0; i < 10; i++)
        add(b, "g", i, i * 1000, NULL, NULL, NULL, NULL);
    write_ok(st, b, NULL);
    vigil_batch_free(b);
    collect c;
    vigil_store_query q = VIGIL_STORE_QUERY_INIT;
    q.name = "g";
    q.from_ms = 0;
    q.to_ms = 100000;
    q.step_ms = 4000;
    static const struct {
        vigil_store_agg agg;
        const char *want;
    } cases[] = {
        {VIGIL_STORE_AGG_MEAN, "g@0=1.5\ng@4000=5.5\ng@8000=8.5\n"},
        {VIGIL_STORE_AGG_MIN, "g@0=0\ng@4000=4\ng@8000=8\n"},
        {VIGIL_STORE_AGG_MAX, "g@0=3\ng@4000=7\ng@8000=9\n"},
        {VIGIL_STORE_AGG_SUM, "g@0=6\ng@4000=22\ng@8000=17\n"},
        {VIGIL_STORE_AGG_COUNT, "g@0=4\ng@4000=4\ng@8000=2\n"},
        {VIGIL_STORE_AGG_LAST, "g@0=3\ng@4000=7\ng@8000=9\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        q.aggregate = cases[i].agg;
        ck_assert_str_eq(run(st, &q, &c), cases[i].want);
    }
    /* Buckets align to the epoch, not to from_ms; the range still cuts. */
    q.aggregate = VIGIL_STORE_AGG_COUNT;
    q.from_ms = 2000;
    q.to_ms = 9000;
    ck_assert_str_eq(run(st, &q, &c), "g@0=2\ng@4000=4\ng@8000=1\n");
    q.limit = 2;
    ck_assert_str_eq(run(st, &q, &c), "g@0=2\ng@4000=4\n");
    vigil_store_close(st);
}
END_TEST

START_TEST(query_validation)
{
    vigil_store *st = open_mem();
    collect c;
    vigil_store_query q = VIGIL_STORE_QUERY_INIT;
    q.from_ms = 10;
    q.to_ms = 10;
    ck_assert_int_eq(vigil_store_query_run(st, &q, point_cb, &c), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "to_ms (10) must be after from_ms (10)");
    q.to_ms = 0;
    q.step_ms = -1;
    ck_assert_int_eq(vigil_store_query_run(st, &q, point_cb, &c), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "step_ms must not be negative");
    q.step_ms = 10;
    q.aggregate = (vigil_store_agg)17;
    ck_assert_int_eq(vigil_store_query_run(st, &q, point_cb, &c), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "unknown aggregate 17");
    q = (vigil_store_query)VIGIL_STORE_QUERY_INIT;
    q.version = 5;
    ck_assert_int_eq(vigil_store_query_run(st, &q, point_cb, &c), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "store query: version 5 is not supported");
    q.version = VIGIL_STORE_QUERY_VERSION;
    vigil_store_matcher m[VIGIL_STORE_MATCHERS_MAX + 1];
    for (int i = 0; i <= VIGIL_STORE_MATCHERS_MAX; i++)
        m[i] = (vigil_store_matcher){"k", VIGIL_STORE_MATCH_EQ, "v"};
    q.matchers = m;
    q.nmatchers = VIGIL_STORE_MATCHERS_MAX + 1;
    ck_assert_int_eq(vigil_store_query_run(st, &q, point_cb, &c), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "65 matchers");
    q.nmatchers = 1;
    m[0].op = (vigil_store_match_op)9;
    ck_assert_int_eq(vigil_store_query_run(st, &q, point_cb, &c), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "matchers[0]: unknown match operator 9");
    m[0] = (vigil_store_matcher){"", VIGIL_STORE_MATCH_EQ, "v"};
    ck_assert_int_eq(vigil_store_query_run(st, &q, point_cb, &c), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "matchers[0].key must not be empty");
    m[0] = (vigil_store_matcher){"k", VIGIL_STORE_MATCH_EQ, NULL};
    ck_assert_int_eq(vigil_store_query_run(st, &q, point_cb, &c), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "matchers[0].value is required");
    m[0] = (vigil_store_matcher){"k", VIGIL_STORE_MATCH_EQ, "\xc3"};
    ck_assert_int_eq(vigil_store_query_run(st, &q, point_cb, &c), VIGIL_EENCODING);
    vt_assert_error(VIGIL_EENCODING, "matchers[0].value is not valid UTF-8");
    q.matchers = NULL;
    ck_assert_int_eq(vigil_store_query_run(st, &q, point_cb, &c), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "matchers is NULL");
    q.nmatchers = 0;
    q.name = "x";
    q.name_op = VIGIL_STORE_MATCH_NE;
    ck_assert_int_eq(vigil_store_query_run(st, &q, point_cb, &c), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "name matches with EQ or GLOB only");
    ck_assert_int_eq(vigil_store_query_run(NULL, &q, point_cb, &c), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_store_query_run(st, NULL, point_cb, &c), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_store_query_run(st, &q, NULL, &c), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_store_series_list(st, NULL, NULL, NULL), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_store_latest(NULL, NULL, point_cb, NULL), VIGIL_EINVAL);

    vigil_store_agg a;
    ck_assert_int_eq(vigil_store_agg_parse(&a, "last"), VIGIL_OK);
    ck_assert_int_eq(a, VIGIL_STORE_AGG_LAST);
    ck_assert_str_eq(vigil_store_agg_name(VIGIL_STORE_AGG_COUNT), "count");
    ck_assert_str_eq(vigil_store_agg_name((vigil_store_agg)99), "unknown");
    ck_assert_int_eq(vigil_store_agg_parse(&a, "p99"), VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE, "unknown \"p99\"");
    ck_assert_int_eq(vigil_store_agg_parse(NULL, "x"), VIGIL_EINVAL);
    vigil_store_close(st);
}
END_TEST

START_TEST(series_list_and_latest)
{
    vigil_store *st = fixture();
    collect c;
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(vigil_store_series_list(st, NULL, series_cb, &c), VIGIL_OK);
    ck_assert_str_eq(c.out, "cpu{cpu=\"0\",host=\"h1\"}|cpu|cpu=0;host=h1;\n"
                            "cpu{cpu=\"0\",host=\"h2\"}|cpu|cpu=0;host=h2;\n"
                            "cpu{host=\"web-1\"}|cpu|host=web-1;\n"
                            "load1|load1|\n"
                            "mem{host=\"h1\"}|mem|host=h1;\n");
    vigil_store_query q = VIGIL_STORE_QUERY_INIT;
    vigil_store_matcher m = {"host", VIGIL_STORE_MATCH_EQ, "h1"};
    q.matchers = &m;
    q.nmatchers = 1;
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(vigil_store_series_list(st, &q, series_cb, &c), VIGIL_OK);
    ck_assert_int_eq(c.series, 2);

    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(vigil_store_latest(st, &q, point_cb, &c), VIGIL_OK);
    ck_assert_str_eq(c.out, "cpu{cpu=\"0\",host=\"h1\"}@6000=5\nmem{host=\"h1\"}@6000=105\n");
    q.to_ms = 3500;
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(vigil_store_latest(st, &q, point_cb, &c), VIGIL_OK);
    ck_assert_str_eq(c.out, "cpu{cpu=\"0\",host=\"h1\"}@3000=2\nmem{host=\"h1\"}@3000=102\n");
    /* Series without a sample in range are skipped. */
    q.nmatchers = 0;
    q.from_ms = 800;
    q.to_ms = 0;
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(vigil_store_latest(st, &q, point_cb, &c), VIGIL_OK);
    ck_assert_int_eq(c.points, 4);
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(vigil_store_latest(st, NULL, point_cb, &c), VIGIL_OK);
    ck_assert_int_eq(c.points, 5);
    vigil_store_close(st);
}
END_TEST

START_TEST(last_write_wins_and_error_samples)
{
    vigil_store *st = open_mem();
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    add(b, "x", 1, 1000, "a", "1", NULL, NULL);
    add(b, "x", 2, 1000, "a", "1", NULL, NULL); /* same (series, ts) in one batch */
    write_ok(st, b, NULL);
    vigil_batch_clear(b);
    add(b, "x", 3, 2000, "a", "1", NULL, NULL);
    vigil_metric failed = {"x", NAN, 3000, NULL, 0, "collector timed out"};
    vigil_tag t = {"a", "1"};
    failed.tags = &t;
    failed.ntags = 1;
    ck_assert_int_eq(vigil_batch_add(b, &failed), VIGIL_OK);
    vigil_store_write_result res = VIGIL_STORE_WRITE_RESULT_INIT;
    write_ok(st, b, &res);
    ck_assert_uint_eq(res.new_series, 0);
    ck_assert_uint_eq(res.written, 2);
    collect c;
    vigil_store_query q = VIGIL_STORE_QUERY_INIT;
    ck_assert_str_eq(run(st, &q, &c), "x{a=\"1\"}@1000=2\nx{a=\"1\"}@2000=3\n"
                                      "x{a=\"1\"}@3000=!collector timed out\n");
    /* Aggregates skip failed collections. */
    q.step_ms = 10000;
    q.aggregate = VIGIL_STORE_AGG_COUNT;
    ck_assert_str_eq(run(st, &q, &c), "x{a=\"1\"}@0=2\n");
    q.aggregate = VIGIL_STORE_AGG_LAST;
    ck_assert_str_eq(run(st, &q, &c), "x{a=\"1\"}@0=3\n");
    vigil_batch_free(b);
    ck_assert_int_eq(vigil_store_write(st, NULL, NULL), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_store_write(NULL, b, NULL), VIGIL_EINVAL);
    vigil_store_close(st);
}
END_TEST

START_TEST(escaped_tags_round_trip)
{
    const char *path = db_path("escaped.db");
    char url[1100];
    snprintf(url, sizeof(url), "%s", db_url("escaped.db"));
    vigil_store *st = open_url(url);
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    add(b, "x", 1, 1000, "path", "C:\\dir \"q\"\nline,{}=", "a", "");
    write_ok(st, b, NULL);
    vigil_batch_free(b);
    collect c;
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(vigil_store_series_list(st, NULL, series_cb, &c), VIGIL_OK);
    ck_assert_str_eq(c.out, "x{a=\"\",path=\"C:\\\\dir \\\"q\\\"\\nline,{}=\"}|x|a=;"
                            "path=C:\\dir \"q\"\nline,{}=;\n");
    vigil_store_matcher m = {"path", VIGIL_STORE_MATCH_EQ, "C:\\dir \"q\"\nline,{}="};
    vigil_store_query q = VIGIL_STORE_QUERY_INIT;
    q.matchers = &m;
    q.nmatchers = 1;
    run(st, &q, &c);
    ck_assert_int_eq(c.points, 1);
    vigil_store_close(st);
    if (g_pg)
        return; /* the damage below is SQLite's; test_store_pg damages a server's */

    /* Tags damaged behind the store's back are reported, not misread. */
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "UPDATE series SET tags = '{a=\"x'", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    st = open_url(url);
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(vigil_store_series_list(st, NULL, series_cb, &c), VIGIL_ECORRUPT);
    vt_assert_error(VIGIL_ECORRUPT, "series tags \"{a=\"x\" are malformed");
    vigil_store_close(st);
}
END_TEST

START_TEST(batch_ids_are_idempotent)
{
    vigil_store *st = open_url(db_url("idem.db"));
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    ck_assert_int_eq(vigil_batch_set_agent(b, "h1"), VIGIL_OK);
    ck_assert_int_eq(vigil_batch_set_id(b, "batch-1"), VIGIL_OK);
    add(b, "x", 1, 1000, NULL, NULL, NULL, NULL);
    vigil_store_write_result res = VIGIL_STORE_WRITE_RESULT_INIT;
    write_ok(st, b, &res);
    ck_assert_int_eq(res.duplicate, 0);
    ck_assert_uint_eq(res.written, 1);
    /* A retry with changed content writes nothing. */
    vigil_batch_clear(b);
    ck_assert_int_eq(vigil_batch_set_agent(b, "h1"), VIGIL_OK);
    ck_assert_int_eq(vigil_batch_set_id(b, "batch-1"), VIGIL_OK);
    add(b, "x", 99, 1000, NULL, NULL, NULL, NULL);
    add(b, "y", 5, 1000, NULL, NULL, NULL, NULL);
    write_ok(st, b, &res);
    ck_assert_int_eq(res.duplicate, 1);
    ck_assert_uint_eq(res.written, 0);
    ck_assert_uint_eq(res.new_series, 0);
    ck_assert_int_eq(count_samples(st), 1);
    /* The same id from another agent is another batch. */
    ck_assert_int_eq(vigil_batch_set_agent(b, "h2"), VIGIL_OK);
    write_ok(st, b, &res);
    ck_assert_int_eq(res.duplicate, 0);
    ck_assert_uint_eq(res.written, 2);
    vigil_store_close(st);
    /* Duplicates are detected across restarts. */
    st = open_url(db_url("idem.db"));
    write_ok(st, b, &res);
    ck_assert_int_eq(res.duplicate, 1);
    /* Without an id every write is applied. */
    ck_assert_int_eq(vigil_batch_set_id(b, NULL), VIGIL_OK);
    write_ok(st, b, &res);
    ck_assert_int_eq(res.duplicate, 0);
    vigil_store_close(st);
    vigil_batch_free(b);
}
END_TEST

START_TEST(many_series_use_the_cache)
{
    vigil_store_options o = VIGIL_STORE_OPTIONS_INIT;
    o.series_cache_max = 50; /* smaller than the series count: lookups fall back to SQL */
    vigil_store *st = NULL;
    ck_assert_int_eq(vigil_store_open(&st, mem_url(), &o), VIGIL_OK);
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    char v[16];
    for (int round = 0; round < 3; round++) {
        vigil_batch_clear(b);
        for (int i = 0; i < 200; i++) {
            snprintf(v, sizeof(v), "%d", i);
            add(b, "m", i, 1000 * (round + 1), "i", v, NULL, NULL);
        }
        vigil_store_write_result res = VIGIL_STORE_WRITE_RESULT_INIT;
        write_ok(st, b, &res);
        ck_assert_uint_eq(res.new_series, round == 0 ? 200 : 0);
    }
    collect c;
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(vigil_store_series_list(st, NULL, series_cb, &c), VIGIL_OK);
    ck_assert_int_eq(c.series, 200);
    ck_assert_int_eq(count_samples(st), 600);
    vigil_batch_free(b);
    vigil_store_close(st);
}
END_TEST

/* ---- records -------------------------------------------------------------------------------- */

typedef struct rec_collect {
    int n;
    char out[4096];
} rec_collect;

static int action_cb(const vigil_store_action *a, void *payload)
{
    rec_collect *c = payload;
    size_t len = strlen(c->out);
    snprintf(c->out + len, sizeof(c->out) - len, "%s:%s:%s;", a->id, a->target, a->status);
    c->n++;
    return 0;
}

START_TEST(action_ledger)
{
    vigil_store *st = open_mem();
    vigil_store_action a = {0};
    a.id = "act-1";
    a.requested_ms = 1000;
    a.action = "restart_demo";
    a.target = "demo";
    a.params_json = "{\"x\":1}";
    a.reason = "process_up < 1";
    a.policy = "demo_down";
    a.series = "process_up{process=\"demo\"}";
    a.duration_ms = -1;
    int created = -1;
    ck_assert_int_eq(vigil_store_action_put(st, &a, &created), VIGIL_OK);
    ck_assert_int_eq(created, 1);
    /* The same id again: not created, nothing changed. */
    a.target = "other";
    ck_assert_int_eq(vigil_store_action_put(st, &a, &created), VIGIL_OK);
    ck_assert_int_eq(created, 0);
    vigil_store_action *got = NULL;
    ck_assert_int_eq(vigil_store_action_get(st, "act-1", &got), VIGIL_OK);
    ck_assert_str_eq(got->target, "demo");
    ck_assert_str_eq(got->status, "pending");
    ck_assert_str_eq(got->params_json, "{\"x\":1}");
    ck_assert_str_eq(got->policy, "demo_down");
    ck_assert_str_eq(got->series, "process_up{process=\"demo\"}");
    ck_assert_ptr_null(got->output);
    ck_assert_int_eq(got->duration_ms, -1);
    ck_assert_int_eq(got->updated_ms, 1000);
    vigil_store_action_free(got);

    vigil_store_action u = {0};
    u.id = "act-1";
    u.status = "succeeded";
    u.output = "restarted";
    u.duration_ms = 12;
    u.updated_ms = 1500;
    u.audit_seq = 7;
    u.audit_hash = "abcd";
    ck_assert_int_eq(vigil_store_action_update(st, &u), VIGIL_OK);
    ck_assert_int_eq(vigil_store_action_get(st, "act-1", &got), VIGIL_OK);
    ck_assert_str_eq(got->status, "succeeded");
    ck_assert_str_eq(got->output, "restarted");
    ck_assert_int_eq(got->duration_ms, 12);
    ck_assert_int_eq(got->audit_seq, 7);
    ck_assert_str_eq(got->audit_hash, "abcd");
    ck_assert_str_eq(got->reason, "process_up < 1");
    vigil_store_action_free(got);
    vigil_store_action_free(NULL);

    u.id = "missing";
    ck_assert_int_eq(vigil_store_action_update(st, &u), VIGIL_ENOTFOUND);
    vt_assert_error(VIGIL_ENOTFOUND, "no action with id \"missing\"");
    ck_assert_int_eq(vigil_store_action_get(st, "missing", &got), VIGIL_ENOTFOUND);
    ck_assert_ptr_null(got);
    u.id = "act-1";
    u.status = NULL;
    ck_assert_int_eq(vigil_store_action_update(st, &u), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "action status is required");

    /* More actions for the list filters. */
    a.id = "act-2";
    a.target = "web";
    a.requested_ms = 2000;
    a.policy = NULL;
    ck_assert_int_eq(vigil_store_action_put(st, &a, NULL), VIGIL_OK);
    a.id = "act-3";
    a.requested_ms = 3000;
    a.status = "pending_approval";
    ck_assert_int_eq(vigil_store_action_put(st, &a, NULL), VIGIL_OK);
    rec_collect c;
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(vigil_store_action_list(st, NULL, action_cb, &c), VIGIL_OK);
    ck_assert_str_eq(c.out, "act-1:demo:succeeded;act-2:web:pending;act-3:web:pending_approval;");
    vigil_store_filter f = VIGIL_STORE_FILTER_INIT;
    f.target = "web";
    f.since_ms = 2500;
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(vigil_store_action_list(st, &f, action_cb, &c), VIGIL_OK);
    ck_assert_str_eq(c.out, "act-3:web:pending_approval;");
    f = (vigil_store_filter)VIGIL_STORE_FILTER_INIT;
    f.status = "pending";
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(vigil_store_action_list(st, &f, action_cb, &c), VIGIL_OK);
    ck_assert_str_eq(c.out, "act-2:web:pending;");
    f = (vigil_store_filter)VIGIL_STORE_FILTER_INIT;
    f.policy = "demo_down";
    f.limit = 1;
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(vigil_store_action_list(st, &f, action_cb, &c), VIGIL_OK);
    ck_assert_str_eq(c.out, "act-1:demo:succeeded;");
    f.version = 0;
    ck_assert_int_eq(vigil_store_action_list(st, &f, action_cb, &c), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "store filter: version 0 is not supported");

    /* Bad input. */
    vigil_store_action bad = {0};
    bad.action = "x";
    bad.target = "t";
    ck_assert_int_eq(vigil_store_action_put(st, &bad, NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "action id is required");
    bad.id = "i";
    bad.target = NULL;
    ck_assert_int_eq(vigil_store_action_put(st, &bad, NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "action target is required");
    char longid[200];
    memset(longid, 'i', sizeof(longid) - 1);
    longid[199] = '\0';
    bad.id = longid;
    bad.target = "t";
    ck_assert_int_eq(vigil_store_action_put(st, &bad, NULL), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "action id is 199 bytes, more than the limit of 128");
    bad.id = "i";
    bad.output = "\xff";
    ck_assert_int_eq(vigil_store_action_put(st, &bad, NULL), VIGIL_EENCODING);
    vt_assert_error(VIGIL_EENCODING, "action output is not valid UTF-8");
    ck_assert_int_eq(vigil_store_action_put(NULL, &bad, NULL), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_store_action_get(st, NULL, &got), VIGIL_EINVAL);
    vigil_store_close(st);
}
END_TEST

static int decision_cb(const vigil_store_decision *d, void *payload)
{
    rec_collect *c = payload;
    size_t len = strlen(c->out);
    snprintf(c->out + len, sizeof(c->out) - len, "%lld:%s:%s:%s;", (long long)d->id, d->policy,
             d->decision, d->action_id ? d->action_id : "-");
    c->n++;
    return 0;
}

START_TEST(decisions_append_only)
{
    const char *path = db_path("decisions.db");
    vigil_store *st = open_url(db_url("decisions.db"));
    vigil_store_decision d = {0};
    d.ts_ms = 1000;
    d.policy = "demo_down";
    d.series = "process_up{process=\"demo\"}";
    d.target = "demo";
    d.action = "restart_demo";
    d.action_id = "a1";
    d.decision = "fired";
    d.reason = "last < 1";
    int64_t id1 = 0, id2 = 0, id3 = 0;
    ck_assert_int_eq(vigil_store_decision_append(st, &d, &id1), VIGIL_OK);
    d.ts_ms = 2000;
    d.decision = "remediated";
    ck_assert_int_eq(vigil_store_decision_append(st, &d, &id2), VIGIL_OK);
    d.ts_ms = 3000;
    d.policy = "other";
    d.decision = "suppressed";
    d.action_id = NULL;
    d.reason = NULL;
    ck_assert_int_eq(vigil_store_decision_append(st, &d, &id3), VIGIL_OK);
    ck_assert_int_gt(id2, id1);
    ck_assert_int_gt(id3, id2);
    rec_collect c;
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(vigil_store_decision_list(st, NULL, decision_cb, &c), VIGIL_OK);
    ck_assert_int_eq(c.n, 3);
    vigil_store_filter f = VIGIL_STORE_FILTER_INIT;
    f.since_ms = 2000;
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(vigil_store_decision_list(st, &f, decision_cb, &c), VIGIL_OK);
    ck_assert_int_eq(c.n, 2);
    f = (vigil_store_filter)VIGIL_STORE_FILTER_INIT;
    f.after_id = id1;
    f.policy = "demo_down";
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(vigil_store_decision_list(st, &f, decision_cb, &c), VIGIL_OK);
    char want[128];
    snprintf(want, sizeof(want), "%lld:demo_down:remediated:a1;", (long long)id2);
    ck_assert_str_eq(c.out, want);
    d.policy = NULL;
    ck_assert_int_eq(vigil_store_decision_append(st, &d, NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "decision policy is required");
    d.policy = "p";
    d.decision = "";
    ck_assert_int_eq(vigil_store_decision_append(st, &d, NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "decision kind must not be empty");
    vigil_store_close(st);
    if (g_pg)
        return; /* test_store_pg checks the server's triggers */

    /* The database itself refuses to change or delete a decision. */
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    char *err = NULL;
    ck_assert_int_ne(sqlite3_exec(db, "DELETE FROM decisions", NULL, NULL, &err), SQLITE_OK);
    ck_assert_ptr_nonnull(strstr(err, "append-only"));
    sqlite3_free(err);
    ck_assert_int_ne(sqlite3_exec(db, "UPDATE decisions SET reason = 'x'", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
}
END_TEST

static int audit_cb(const vigil_store_audit *a, void *payload)
{
    rec_collect *c = payload;
    size_t len = strlen(c->out);
    snprintf(c->out + len, sizeof(c->out) - len, "%lld:%s:%s:%s:%s;", (long long)a->seq, a->kind,
             a->prev_mac, a->mac, a->data_json);
    c->n++;
    return 0;
}

static void append_audit(vigil_store *st, int64_t seq, int64_t ts)
{
    char mac[32], prev[32];
    snprintf(mac, sizeof(mac), "m%lld", (long long)seq);
    snprintf(prev, sizeof(prev), "m%lld", (long long)(seq - 1));
    vigil_store_audit a = {seq, ts, "result", "a1", NULL, seq == 1 ? NULL : prev, mac};
    ck_assert_int_eq(vigil_store_audit_append(st, &a), VIGIL_OK);
}

START_TEST(audit_rows)
{
    vigil_store *st = open_mem();
    rec_collect c;
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(vigil_store_audit_last(st, audit_cb, &c), VIGIL_ENOTFOUND);
    vt_assert_error(VIGIL_ENOTFOUND, "audit log is empty");
    for (int i = 1; i <= 4; i++)
        append_audit(st, i, 1000 * i);
    vigil_store_audit dup = {2, 1, "x", NULL, NULL, NULL, "m"};
    ck_assert_int_eq(vigil_store_audit_append(st, &dup), VIGIL_EEXISTS);
    vt_assert_error(VIGIL_EEXISTS, "audit row 2 already exists");
    dup.seq = 0;
    ck_assert_int_eq(vigil_store_audit_append(st, &dup), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "seq must be at least 1");
    dup.seq = 9;
    dup.mac = NULL;
    ck_assert_int_eq(vigil_store_audit_append(st, &dup), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "audit mac is required");

    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(vigil_store_audit_list(st, NULL, audit_cb, &c), VIGIL_OK);
    ck_assert_str_eq(c.out, "1:result::m1:{};2:result:m1:m2:{};3:result:m2:m3:{};"
                            "4:result:m3:m4:{};");
    vigil_store_filter f = VIGIL_STORE_FILTER_INIT;
    f.after_id = 2;
    f.limit = 1;
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(vigil_store_audit_list(st, &f, audit_cb, &c), VIGIL_OK);
    ck_assert_str_eq(c.out, "3:result:m2:m3:{};");
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(vigil_store_audit_last(st, audit_cb, &c), VIGIL_OK);
    ck_assert_str_eq(c.out, "4:result:m3:m4:{};");

    /* Retention never deletes audit rows, however old. */
    vigil_store_retention_result r = VIGIL_STORE_RETENTION_RESULT_INIT;
    r.version = 0;
    ck_assert_int_eq(vigil_store_retain(st, INT64_MAX, NULL, &r), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "store retention: result version 0 is not supported");
    r.version = VIGIL_STORE_RETENTION_RESULT_VERSION;
    ck_assert_int_eq(vigil_store_retain(st, INT64_MAX, NULL, &r), VIGIL_OK);
    ck_assert_uint_eq(r.version, VIGIL_STORE_RETENTION_RESULT_VERSION);
    ck_assert_int_eq(r.done, 1);
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(vigil_store_audit_list(st, NULL, audit_cb, &c), VIGIL_OK);
    ck_assert_int_eq(c.n, 4);
    ck_assert_int_eq(vigil_store_audit_last(NULL, audit_cb, &c), VIGIL_EINVAL);
    vigil_store_close(st);
}
END_TEST

static int silence_cb(const vigil_store_silence *s, void *payload)
{
    rec_collect *c = payload;
    size_t len = strlen(c->out);
    snprintf(c->out + len, sizeof(c->out) - len, "%s:%s:%s;", s->id, s->matchers_json, s->comment);
    c->n++;
    return 0;
}

START_TEST(silences)
{
    vigil_store *st = open_mem();
    vigil_store_silence s = {"s1", "{\"host\":\"h1\"}", 1000, 5000, "ops", "maintenance", 900};
    ck_assert_int_eq(vigil_store_silence_put(st, &s), VIGIL_OK);
    s.id = "s2";
    s.starts_ms = 4000;
    s.ends_ms = 9000;
    s.comment = NULL;
    ck_assert_int_eq(vigil_store_silence_put(st, &s), VIGIL_OK);
    rec_collect c;
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(vigil_store_silence_list(st, 0, silence_cb, &c), VIGIL_OK);
    ck_assert_str_eq(c.out, "s1:{\"host\":\"h1\"}:maintenance;s2:{\"host\":\"h1\"}:;");
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(vigil_store_silence_list(st, 4500, silence_cb, &c), VIGIL_OK);
    ck_assert_int_eq(c.n, 2);
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(vigil_store_silence_list(st, 5000, silence_cb, &c), VIGIL_OK);
    ck_assert_str_eq(c.out, "s2:{\"host\":\"h1\"}:;");
    /* Replacing by id. */
    s.matchers_json = "{\"host\":\"h2\"}";
    ck_assert_int_eq(vigil_store_silence_put(st, &s), VIGIL_OK);
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(vigil_store_silence_list(st, 6000, silence_cb, &c), VIGIL_OK);
    ck_assert_str_eq(c.out, "s2:{\"host\":\"h2\"}:;");
    ck_assert_int_eq(vigil_store_silence_delete(st, "s1"), VIGIL_OK);
    ck_assert_int_eq(vigil_store_silence_delete(st, "s1"), VIGIL_ENOTFOUND);
    vt_assert_error(VIGIL_ENOTFOUND, "no silence with id \"s1\"");
    s.ends_ms = s.starts_ms;
    ck_assert_int_eq(vigil_store_silence_put(st, &s), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "ends_ms must be after starts_ms");
    s.ends_ms = s.starts_ms + 1;
    s.matchers_json = NULL;
    ck_assert_int_eq(vigil_store_silence_put(st, &s), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "silence matchers_json is required");
    ck_assert_int_eq(vigil_store_silence_delete(st, NULL), VIGIL_EINVAL);
    vigil_store_close(st);
}
END_TEST

static int state_cb(const char *key, const void *value, size_t len, void *payload)
{
    rec_collect *c = payload;
    size_t l = strlen(c->out);
    snprintf(c->out + l, sizeof(c->out) - l, "%s=%.*s;", key, (int)len, (const char *)value);
    c->n++;
    return 0;
}

START_TEST(policy_state)
{
    vigil_store *st = open_mem();
    const char blob[] = {'a', 0, 'b', (char)0xff};
    ck_assert_int_eq(vigil_store_state_put(st, "p1/cooldown/demo", blob, sizeof(blob)), VIGIL_OK);
    ck_assert_int_eq(vigil_store_state_put(st, "p1/budget", "3", 1), VIGIL_OK);
    ck_assert_int_eq(vigil_store_state_put(st, "p10/x", "y", 1), VIGIL_OK);
    ck_assert_int_eq(vigil_store_state_put(st, "p2/x", "z", 1), VIGIL_OK);
    ck_assert_int_eq(vigil_store_state_put(st, "empty", NULL, 0), VIGIL_OK);
    void *v = NULL;
    size_t len = 0;
    ck_assert_int_eq(vigil_store_state_get(st, "p1/cooldown/demo", &v, &len), VIGIL_OK);
    ck_assert_uint_eq(len, 4);
    ck_assert_int_eq(memcmp(v, blob, 4), 0);
    vigil_free(v);
    ck_assert_int_eq(vigil_store_state_get(st, "empty", &v, &len), VIGIL_OK);
    ck_assert_uint_eq(len, 0);
    ck_assert_str_eq((char *)v, "");
    vigil_free(v);
    /* Replace. */
    ck_assert_int_eq(vigil_store_state_put(st, "p1/budget", "2", 1), VIGIL_OK);
    rec_collect c;
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(vigil_store_state_list(st, "p1/", state_cb, &c), VIGIL_OK);
    ck_assert_int_eq(c.n, 2);
    ck_assert_ptr_nonnull(strstr(c.out, "p1/budget=2;"));
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(vigil_store_state_list(st, "p1", state_cb, &c), VIGIL_OK);
    ck_assert_int_eq(c.n, 3);
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(vigil_store_state_list(st, NULL, state_cb, &c), VIGIL_OK);
    ck_assert_int_eq(c.n, 5);
    ck_assert_int_eq(vigil_store_state_delete(st, "p2/x"), VIGIL_OK);
    ck_assert_int_eq(vigil_store_state_delete(st, "p2/x"), VIGIL_ENOTFOUND);
    vt_assert_error(VIGIL_ENOTFOUND, "no policy state under \"p2/x\"");
    ck_assert_int_eq(vigil_store_state_get(st, "p2/x", &v, &len), VIGIL_ENOTFOUND);
    ck_assert_ptr_null(v);
    ck_assert_int_eq(vigil_store_state_put(st, "", "x", 1), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "state key must not be empty");
    ck_assert_int_eq(vigil_store_state_put(st, "k", NULL, 3), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_store_state_put(st, "k", "x", (size_t)VIGIL_STORE_BLOB_MAX + 1),
                     VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "more than the limit");
    ck_assert_int_eq(vigil_store_state_get(st, "k", NULL, &len), VIGIL_EINVAL);
    vigil_store_close(st);
}
END_TEST

static int resource_cb(const vigil_store_resource *r, void *payload)
{
    rec_collect *c = payload;
    size_t len = strlen(c->out);
    snprintf(c->out + len, sizeof(c->out) - len, "%s:%s:%s:%s;", r->key, r->source,
             r->status ? r->status : "-", r->body_json);
    c->n++;
    return 0;
}

START_TEST(desired_and_drift)
{
    vigil_store *st = open_mem();
    vigil_store_resource recs[] = {
        {"Service/api", "Service", "api", "repo", "c1", NULL, "{\"state\":\"running\"}", 10},
        {"File/nginx", "File", "nginx", "repo", "c1", NULL, NULL, 10},
    };
    ck_assert_int_eq(vigil_store_resource_replace(st, VIGIL_STORE_DESIRED, "repo", recs, 2),
                     VIGIL_OK);
    vigil_store_resource other = {"Sysctl/x", "Sysctl", "x", "local", "", NULL, "{}", 5};
    ck_assert_int_eq(vigil_store_resource_put(st, VIGIL_STORE_DESIRED, &other), VIGIL_OK);
    rec_collect c;
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(vigil_store_resource_list(st, VIGIL_STORE_DESIRED, NULL, resource_cb, &c),
                     VIGIL_OK);
    ck_assert_str_eq(c.out, "File/nginx:repo:-:{};Service/api:repo:-:{\"state\":\"running\"};"
                            "Sysctl/x:local:-:{};");
    /* A new sync of "repo" replaces its records only. */
    recs[0].revision = "c2";
    ck_assert_int_eq(vigil_store_resource_replace(st, VIGIL_STORE_DESIRED, "repo", recs, 1),
                     VIGIL_OK);
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(vigil_store_resource_list(st, VIGIL_STORE_DESIRED, NULL, resource_cb, &c),
                     VIGIL_OK);
    ck_assert_str_eq(c.out, "Service/api:repo:-:{\"state\":\"running\"};Sysctl/x:local:-:{};");
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(
        vigil_store_resource_list(st, VIGIL_STORE_DESIRED, "Sysctl/x", resource_cb, &c), VIGIL_OK);
    ck_assert_int_eq(c.n, 1);
    ck_assert_int_eq(vigil_store_resource_list(st, VIGIL_STORE_DESIRED, "nope", resource_cb, &c),
                     VIGIL_ENOTFOUND);
    vt_assert_error(VIGIL_ENOTFOUND, "no desired record \"nope\"");

    /* Drift is a separate set. */
    vigil_store_resource drift = {"Service/api",
                                  "Service",
                                  "api",
                                  "repo",
                                  "c2",
                                  "drifted",
                                  "{\"state\":[\"running\",\"stopped\"]}",
                                  20};
    ck_assert_int_eq(vigil_store_resource_replace(st, VIGIL_STORE_DRIFT, NULL, &drift, 1),
                     VIGIL_OK);
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(vigil_store_resource_list(st, VIGIL_STORE_DRIFT, NULL, resource_cb, &c),
                     VIGIL_OK);
    ck_assert_str_eq(c.out, "Service/api:repo:drifted:{\"state\":[\"running\",\"stopped\"]};");
    ck_assert_int_eq(vigil_store_resource_delete(st, VIGIL_STORE_DRIFT, "Service/api"), VIGIL_OK);
    ck_assert_int_eq(vigil_store_resource_delete(st, VIGIL_STORE_DRIFT, "Service/api"),
                     VIGIL_ENOTFOUND);
    vt_assert_error(VIGIL_ENOTFOUND, "no drift record");
    /* Clearing a whole set. */
    ck_assert_int_eq(vigil_store_resource_replace(st, VIGIL_STORE_DESIRED, NULL, NULL, 0),
                     VIGIL_OK);
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(vigil_store_resource_list(st, VIGIL_STORE_DESIRED, NULL, resource_cb, &c),
                     VIGIL_OK);
    ck_assert_int_eq(c.n, 0);

    /* Bad input. */
    vigil_store_resource dup[] = {recs[0], recs[0]};
    ck_assert_int_eq(vigil_store_resource_replace(st, VIGIL_STORE_DESIRED, "repo", dup, 2),
                     VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "duplicate key \"Service/api\"");
    ck_assert_int_eq(vigil_store_resource_replace(st, VIGIL_STORE_DESIRED, "git", recs, 1),
                     VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "has another source than \"git\"");
    vigil_store_resource nokind = recs[0];
    nokind.kind = NULL;
    ck_assert_int_eq(vigil_store_resource_put(st, VIGIL_STORE_DESIRED, &nokind), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "resource[0].kind is required");
    ck_assert_int_eq(vigil_store_resource_put(st, (vigil_store_resource_set)3, &recs[0]),
                     VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "unknown set 3");
    ck_assert_int_eq(vigil_store_resource_replace(st, VIGIL_STORE_DESIRED, NULL, NULL, 2),
                     VIGIL_EINVAL);
    vigil_store_close(st);
}
END_TEST

/* ---- retention --------------------------------------------------------------------------------
 */

START_TEST(retention_in_chunks)
{
    vigil_store *st = open_url(db_url("retention.db"));
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    ck_assert_int_eq(vigil_batch_set_id(b, "old-batch"), VIGIL_OK);
    char v[16];
    /* 20 series x 50 samples at ts 1..50 s */
    for (int s = 0; s < 20; s++) {
        snprintf(v, sizeof(v), "%d", s);
        for (int i = 1; i <= 50; i++)
            add(b, "m", i, i * 1000, "s", v, NULL, NULL);
    }
    write_ok(st, b, NULL);
    append_audit(st, 1, 1);

    vigil_store_retention_options o = VIGIL_STORE_RETENTION_OPTIONS_INIT;
    o.chunk_rows = 64;
    o.max_chunks = 3;
    vigil_store_retention_result r = VIGIL_STORE_RETENTION_RESULT_INIT;
    /* Cut at 31 s: 30 samples per series go (600 in all), plus the batch id
     * (recorded "now", which is far after 31 s... so only with a later cutoff). */
    ck_assert_int_eq(vigil_store_retain(st, 31000, &o, &r), VIGIL_OK);
    ck_assert_uint_eq(r.chunks, 3);
    ck_assert_int_eq(r.done, 0);
    uint64_t deleted = r.samples_deleted;
    ck_assert_uint_gt(deleted, 0);
    ck_assert_uint_le(deleted, 3 * 64);
    o.max_chunks = 0;
    ck_assert_int_eq(vigil_store_retain(st, 31000, &o, &r), VIGIL_OK);
    ck_assert_int_eq(r.done, 1);
    deleted += r.samples_deleted;
    ck_assert_uint_eq(deleted, 600);
    ck_assert_uint_eq(r.batch_ids_deleted, 0);
    ck_assert_int_eq(count_samples(st), 400);
    collect c;
    vigil_store_query q = VIGIL_STORE_QUERY_INIT;
    q.to_ms = 31000;
    run(st, &q, &c);
    ck_assert_int_eq(c.points, 0);
    /* Again: nothing left to do. */
    ck_assert_int_eq(vigil_store_retain(st, 31000, NULL, &r), VIGIL_OK);
    ck_assert_uint_eq(r.samples_deleted, 0);
    ck_assert_int_eq(r.done, 1);

    /* A cutoff in the future also forgets batch ids; the audit row stays. */
    ck_assert_int_eq(vigil_store_retain(st, INT64_MAX, NULL, &r), VIGIL_OK);
    ck_assert_uint_eq(r.samples_deleted, 400);
    ck_assert_uint_eq(r.batch_ids_deleted, 1);
    ck_assert_int_eq(count_samples(st), 0);
    rec_collect rc;
    memset(&rc, 0, sizeof(rc));
    ck_assert_int_eq(vigil_store_audit_list(st, NULL, audit_cb, &rc), VIGIL_OK);
    ck_assert_int_eq(rc.n, 1);
    vigil_store_write_result res = VIGIL_STORE_WRITE_RESULT_INIT;
    write_ok(st, b, &res);
    ck_assert_int_eq(res.duplicate, 0);

    /* chunk_rows of 1 still progresses. */
    o.chunk_rows = 1;
    ck_assert_int_eq(vigil_store_retain(st, INT64_MAX, &o, &r), VIGIL_OK);
    ck_assert_int_eq(r.done, 1);
    ck_assert_uint_eq(r.samples_deleted, 1000);

    o.version = 0;
    ck_assert_int_eq(vigil_store_retain(st, 0, &o, &r), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "store retention options: version 0 is not supported");
    ck_assert_int_eq(vigil_store_retain(NULL, 0, NULL, NULL), VIGIL_EINVAL);
    vigil_batch_free(b);
    vigil_store_close(st);
}
END_TEST

/* ---- faults with real files ---------------------------------------------------------------------
 */

static vigil_batch *small_batch(int64_t ts)
{
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    add(b, "x", 1, ts, "h", "a", NULL, NULL);
    return b;
}

START_TEST(fault_read_only)
{
    vigil_store *st = open_url(db_url("ro.db"));
    vigil_batch *b = small_batch(1000);
    write_ok(st, b, NULL);
    vigil_store_close(st);

    vigil_store_options o = VIGIL_STORE_OPTIONS_INIT;
    o.read_only = 1;
    ck_assert_int_eq(vigil_store_open(&st, db_url("ro.db"), &o), VIGIL_OK);
    ck_assert_int_eq(count_samples(st), 1);
    ck_assert_int_eq(vigil_store_write(st, b, NULL), VIGIL_EREADONLY);
    vt_assert_error(VIGIL_EREADONLY, "open read-only");
    ck_assert_int_eq(vigil_store_state_put(st, "k", "v", 1), VIGIL_EREADONLY);
    ck_assert_int_eq(vigil_store_retain(st, 0, NULL, NULL), VIGIL_EREADONLY);
    ck_assert_int_eq(count_samples(st), 1);
    vigil_store_close(st);

    char url[1200];
    snprintf(url, sizeof(url), "%s?mode=ro", db_url("ro.db"));
    st = open_url(url);
    ck_assert_int_eq(vigil_store_write(st, b, NULL), VIGIL_EREADONLY);
    vigil_store_close(st);

    /* A read-only store of a missing file is refused, not created. */
    snprintf(url, sizeof(url), "%s?mode=ro", db_url("absent.db"));
    ck_assert_int_eq(vigil_store_open(&st, url, NULL), VIGIL_ENOTFOUND);
    vt_assert_error(VIGIL_ENOTFOUND, "does not exist");
    /* An empty file has no schema, and a read-only store cannot create it. */
    vt_write_file(tmp(), "empty.db", "", 0);
    ck_assert_int_eq(vigil_store_open(&st, db_url("empty.db"), &o), VIGIL_EREADONLY);
    vt_assert_error(VIGIL_EREADONLY, "has no vigil schema");
    vigil_batch_free(b);
}
END_TEST

START_TEST(fault_full_disk)
{
    vigil_store_options o = VIGIL_STORE_OPTIONS_INIT;
    o.max_size_bytes = 200 * 1024;
    vigil_store *st = NULL;
    ck_assert_int_eq(vigil_store_open(&st, db_url("full.db"), &o), VIGIL_OK);
    vigil_batch *b = small_batch(1000);
    write_ok(st, b, NULL);
    vigil_batch_free(b);
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    char v[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(v, sizeof(v), "series-%d", i);
        add(b, "big_metric_name_for_space", i, 5000, "h", v, NULL, NULL);
    }
    vigil_store_write_result res = VIGIL_STORE_WRITE_RESULT_INIT;
    ck_assert_int_eq(vigil_store_write(st, b, &res), VIGIL_EFULL);
    vt_assert_error(VIGIL_EFULL, "full");
    vt_assert_error(VIGIL_EFULL, "batch of 20000 metrics not stored");
    ck_assert_uint_eq(res.written, 0);
    /* Nothing of the failed batch is visible; the store still works. */
    ck_assert_int_eq(count_samples(st), 1);
    collect c;
    memset(&c, 0, sizeof(c));
    ck_assert_int_eq(vigil_store_series_list(st, NULL, series_cb, &c), VIGIL_OK);
    ck_assert_int_eq(c.series, 1);
    vigil_batch_free(b);
    b = small_batch(2000);
    write_ok(st, b, NULL);
    ck_assert_int_eq(count_samples(st), 2);
    /* The series id cache was invalidated: a series of the failed batch is
     * created again, not referenced by a stale id. */
    vigil_batch_clear(b);
    add(b, "big_metric_name_for_space", 1, 6000, "h", "series-0", NULL, NULL);
    ck_assert_int_eq(vigil_store_write(st, b, &res), VIGIL_OK);
    ck_assert_uint_eq(res.new_series, 1);
    vigil_batch_free(b);
    vigil_store_close(st);
}
END_TEST

START_TEST(fault_corrupt_file)
{
    char garbage[8192];
    for (size_t i = 0; i < sizeof(garbage); i++)
        garbage[i] = (char)(i * 7 + 3);
    vt_write_file(tmp(), "garbage.db", garbage, sizeof(garbage));
    vigil_store *st = NULL;
    ck_assert_int_eq(vigil_store_open(&st, db_url("garbage.db"), NULL), VIGIL_ECORRUPT);
    vt_assert_error(VIGIL_ECORRUPT, "not a database");
    ck_assert_ptr_null(st);

    /* A SQLite database of another program is refused, not adopted. */
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(db_path("foreign.db"), &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    ck_assert_int_eq(vigil_store_open(&st, db_url("foreign.db"), NULL), VIGIL_ECORRUPT);
    vt_assert_error(VIGIL_ECORRUPT, "no vigil schema");
    ck_assert_int_eq(sqlite3_open(db_path("foreign2.db"), &db), SQLITE_OK);
    ck_assert_int_eq(
        sqlite3_exec(db, "CREATE TABLE t(x); PRAGMA user_version = 1", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    ck_assert_int_eq(vigil_store_open(&st, db_url("foreign2.db"), NULL), VIGIL_ECORRUPT);
    vt_assert_error(VIGIL_ECORRUPT, "of another application");
}
END_TEST

static int file_bytes(const char *path, char *buf, size_t cap, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    *len = fread(buf, 1, cap, f);
    fclose(f);
    return 0;
}

START_TEST(fault_newer_schema)
{
    vigil_store *st = open_url(db_url("newer.db"));
    vigil_store_close(st);
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(db_path("newer.db"), &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "PRAGMA journal_mode = DELETE; PRAGMA user_version = 99",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    static char before[1 << 16], after[1 << 16];
    size_t lb = 0, la = 0;
    ck_assert_int_eq(file_bytes(db_path("newer.db"), before, sizeof(before), &lb), 0);
    ck_assert_int_eq(vigil_store_open(&st, db_url("newer.db"), NULL), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "has schema version 99, newer than the version 4");
    ck_assert_int_eq(file_bytes(db_path("newer.db"), after, sizeof(after), &la), 0);
    ck_assert_uint_eq(la, lb);
    ck_assert_int_eq(memcmp(before, after, lb), 0);
}
END_TEST

START_TEST(fault_locked)
{
    vigil_store_options o = VIGIL_STORE_OPTIONS_INIT;
    o.busy_timeout_ms = 50;
    vigil_store *st = NULL;
    ck_assert_int_eq(vigil_store_open(&st, db_url("locked.db"), &o), VIGIL_OK);
    vigil_batch *b = small_batch(1000);
    write_ok(st, b, NULL);

    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(db_path("locked.db"), &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    vigil_batch_free(b);
    b = small_batch(2000);
    ck_assert_int_eq(vigil_store_write(st, b, NULL), VIGIL_EBUSY);
    vt_assert_error(VIGIL_EBUSY, "locked");
    vigil_store_action a = {0};
    a.id = "a";
    a.action = "x";
    a.target = "t";
    ck_assert_int_eq(vigil_store_action_put(st, &a, NULL), VIGIL_EBUSY);
    /* Readers are not blocked (WAL). */
    ck_assert_int_eq(count_samples(st), 1);
    ck_assert_int_eq(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    write_ok(st, b, NULL);
    ck_assert_int_eq(count_samples(st), 2);
    vigil_batch_free(b);
    vigil_store_close(st);
}
END_TEST

/* The schema of version 1, as that version of the code created it. */
static const char *const v1_schema =
    "PRAGMA application_id = 1449748332;"
    "CREATE TABLE series(id INTEGER PRIMARY KEY, name TEXT NOT NULL, tags TEXT NOT NULL,"
    " UNIQUE(name, tags));"
    "CREATE TABLE samples(series_id INTEGER NOT NULL, ts INTEGER NOT NULL, value REAL,"
    " PRIMARY KEY(series_id, ts)) WITHOUT ROWID;"
    "CREATE TABLE ingest_batches(id INTEGER PRIMARY KEY, agent TEXT NOT NULL,"
    " batch_id TEXT NOT NULL, received_ms INTEGER NOT NULL, UNIQUE(agent, batch_id));"
    "INSERT INTO series VALUES(1, 'up', '{job=\"a\"}');"
    "INSERT INTO samples VALUES(1, 1000, 1.0), (1, 2000, 0.0);"
    "INSERT INTO ingest_batches VALUES(1, 'h1', 'b1', 5);"
    "PRAGMA user_version = 1;";

/* The integer that `sql` selects in the database at `path`. */
static int64_t sql_count(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *s = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

static int64_t user_version(const char *path)
{
    return sql_count(path, "PRAGMA user_version");
}

START_TEST(migration_from_v1)
{
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(db_path("v1.db"), &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, v1_schema, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    ck_assert_int_eq(user_version(db_path("v1.db")), 1);

    /* A read-only store cannot migrate. */
    vigil_store_options o = VIGIL_STORE_OPTIONS_INIT;
    o.read_only = 1;
    vigil_store *st = NULL;
    ck_assert_int_eq(vigil_store_open(&st, db_url("v1.db"), &o), VIGIL_EREADONLY);
    vt_assert_error(VIGIL_EREADONLY, "schema version 1, which needs a migration");
    ck_assert_int_eq(user_version(db_path("v1.db")), 1);

    o.read_only = 0;
    o.logger.min_level = VIGIL_LOG_WARN; /* the migration is logged at info */
    ck_assert_int_eq(vigil_store_open(&st, db_url("v1.db"), &o), VIGIL_OK);
    ck_assert_int_eq(user_version(db_path("v1.db")), 4);
    /* Old data is there, and the new columns and tables work. */
    collect c;
    vigil_store_query q = VIGIL_STORE_QUERY_INIT;
    ck_assert_str_eq(run(st, &q, &c), "up{job=\"a\"}@1000=1\nup{job=\"a\"}@2000=0\n");
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    vigil_tag t = {"job", "a"};
    vigil_metric m = {"up", NAN, 3000, &t, 1, "scrape failed"};
    ck_assert_int_eq(vigil_batch_add(b, &m), VIGIL_OK);
    ck_assert_int_eq(vigil_batch_set_agent(b, "h1"), VIGIL_OK);
    ck_assert_int_eq(vigil_batch_set_id(b, "b1"), VIGIL_OK);
    vigil_store_write_result res = VIGIL_STORE_WRITE_RESULT_INIT;
    write_ok(st, b, &res);
    ck_assert_int_eq(res.duplicate, 1); /* the v1 batch id is still known */
    ck_assert_int_eq(vigil_batch_set_id(b, "b2"), VIGIL_OK);
    write_ok(st, b, &res);
    ck_assert_uint_eq(res.new_series, 0);
    ck_assert_str_eq(run(st, &q, &c), "up{job=\"a\"}@1000=1\nup{job=\"a\"}@2000=0\n"
                                      "up{job=\"a\"}@3000=!scrape failed\n");
    vigil_store_action a = {0};
    a.id = "x";
    a.action = "y";
    a.target = "z";
    ck_assert_int_eq(vigil_store_action_put(st, &a, NULL), VIGIL_OK);
    vigil_batch_free(b);
    vigil_store_close(st);
    /* Reopening a current file migrates nothing. */
    st = open_url(db_url("v1.db"));
    vigil_store_close(st);
    ck_assert_int_eq(user_version(db_path("v1.db")), 4);
}
END_TEST

/* Migration 3 moves the rows of table samples into chunks. What it reads of
 * a version 2 file: the samples table with its error column (the other
 * tables of version 2 are left out here). 1,000 samples of series 1 (more
 * than one chunk holds), an error sample, and series 2. */
START_TEST(migration_to_chunks)
{
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(db_path("v2.db"), &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, v1_schema, NULL, NULL, NULL), SQLITE_OK);
    ck_assert_int_eq(
        sqlite3_exec(
            db,
            "ALTER TABLE samples ADD COLUMN error TEXT;"
            "DELETE FROM samples;"
            "INSERT INTO series VALUES(2, 'load', '');"
            "WITH RECURSIVE i(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM i WHERE k < 1000)"
            " INSERT INTO samples SELECT 1, k * 1000, k * 0.5, NULL FROM i;"
            "INSERT INTO samples VALUES(1, 1000500, NULL, 'timed out'),"
            " (2, -5, 1e300, NULL), (2, 7, 1e300, NULL);"
            "PRAGMA user_version = 2;",
            NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    vigil_store_options o = VIGIL_STORE_OPTIONS_INIT;
    o.logger.min_level = VIGIL_LOG_WARN;
    vigil_store *st = NULL;
    ck_assert_int_eq(vigil_store_open(&st, db_url("v2.db"), &o), VIGIL_OK);
    ck_assert_int_eq(user_version(db_path("v2.db")), 4);
    ck_assert_int_eq(count_samples(st), 1003);
    collect c;
    vigil_store_query q = VIGIL_STORE_QUERY_INIT;
    q.from_ms = 999000;
    q.to_ms = 2000000;
    ck_assert_str_eq(run(st, &q, &c), "up{job=\"a\"}@999000=499.5\nup{job=\"a\"}@1000000=500\n"
                                      "up{job=\"a\"}@1000500=!timed out\n");
    q.name = "load";
    q.from_ms = -10;
    ck_assert_str_eq(run(st, &q, &c), "load@-5=1e+300\nload@7=1e+300\n");
    q.name = "up";
    q.from_ms = 0;
    q.step_ms = 100000;
    q.aggregate = VIGIL_STORE_AGG_SUM;
    q.limit = 2;
    /* steps [0, 100 s): 1..99 s, and [100 s, 200 s): 100..199 s */
    ck_assert_str_eq(run(st, &q, &c), "up{job=\"a\"}@0=2475\nup{job=\"a\"}@100000=7475\n");
    vigil_store_close(st);
    ck_assert_int_eq(
        sql_count(db_path("v2.db"), "SELECT count(*) FROM sqlite_schema WHERE name = 'samples'"),
        0);
    ck_assert_int_gt(sql_count(db_path("v2.db"), "SELECT count(*) FROM chunks WHERE series_id = 1"),
                     1);
    ck_assert_int_eq(sql_count(db_path("v2.db"), "SELECT (SELECT sum(n) FROM chunks) +"
                                                 " (SELECT sum(n) FROM heads)"),
                     1003);
    ck_assert_int_eq(sql_count(db_path("v2.db"), "SELECT count(*) FROM heads"), 2);
}
END_TEST

/* ---- chunks: the codec and the store against a model ------------------------------------ */

static size_t put_all(vigil_buf *out, const vigil__sample *x, size_t n)
{
    vigil__chunk_tail t = {0, 0, 0, 1};
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t sz = vigil__chunk_size(&t, &x[i]);
        ck_assert_uint_gt(sz, 0);
        ck_assert_int_eq(vigil__chunk_put(out, &t, &x[i]), VIGIL_OK);
        total += sz;
        ck_assert_uint_eq(out->size, total);
    }
    return total;
}

START_TEST(chunk_codec_round_trip)
{
    vigil__sample x[] = {
        {1000, 0.5, NULL, 0},
        {1001, 0.5, NULL, 0}, /* a repeat: one byte */
        {2000, -0.0, NULL, 0},
        {2500, 0, "timed out", 9},
        {2600, 0, "x", 1}, /* after an error no repeat: a value follows in full */
        {(int64_t)1 << 40, 1e300, NULL, 0},
        {((int64_t)1 << 40) + 1, 1e300, NULL, 0},
    };
    size_t n = sizeof(x) / sizeof(x[0]);
    vigil_buf b = VIGIL_BUF_INIT;
    size_t total = put_all(&b, x, n);
    /* 1+8, 1, 2+8, 2+1+9, 2+1+1, varint((2^40 - 2600) << 2) = 6 bytes, +8, 1 */
    ck_assert_uint_eq(total, 9 + 1 + 10 + 12 + 4 + 14 + 1);
    vigil__chunk_iter it;
    vigil__chunk_iter_init(&it, 1000, b.ptr, b.size);
    vigil__sample y;
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(vigil__chunk_next(&it, &y), 1);
        ck_assert_int_eq(y.ts, x[i].ts);
        if (x[i].error) {
            ck_assert_uint_eq(y.error_len, x[i].error_len);
            ck_assert_int_eq(memcmp(y.error, x[i].error, y.error_len), 0);
        } else {
            ck_assert_ptr_null(y.error);
            ck_assert_int_eq(memcmp(&y.value, &x[i].value, sizeof(double)), 0); /* -0.0 too */
        }
    }
    ck_assert_int_eq(vigil__chunk_next(&it, &y), 0);
    /* What cannot follow: the same ts, an earlier one, a delta of 2^62. */
    vigil__chunk_tail t = {1000, 0, 0, 0};
    vigil__sample same = {1000, 1, NULL, 0}, before = {999, 1, NULL, 0};
    vigil__sample far = {1000 + ((int64_t)1 << 62), 1, NULL, 0};
    ck_assert_uint_eq(vigil__chunk_size(&t, &same), 0);
    ck_assert_uint_eq(vigil__chunk_size(&t, &before), 0);
    ck_assert_uint_eq(vigil__chunk_size(&t, &far), 0);
    far.ts--;
    ck_assert_uint_eq(vigil__chunk_size(&t, &far), 10 + 8); /* a 64-bit varint */
    vigil_buf_dispose(&b);
}
END_TEST

static int decode_rc(int64_t start, const char *bytes, size_t len)
{
    vigil__chunk_iter it;
    vigil__chunk_iter_init(&it, start, bytes, len);
    vigil__sample y;
    int r;
    while ((r = vigil__chunk_next(&it, &y)) == 1)
        ;
    return r;
}

START_TEST(chunk_codec_refuses_malformed_data)
{
    ck_assert_int_eq(decode_rc(0, "", 0), 0);
    /* found by fuzz/chunk.c (corpus: empty): SQLite reads an empty blob as
     * NULL, and NULL + 0 is undefined behaviour */
    ck_assert_int_eq(decode_rc(0, NULL, 0), 0);
    /* a value cut short */
    ck_assert_int_eq(decode_rc(0, "\x00\x01\x02\x03", 4), VIGIL_ECORRUPT);
    /* kind 3 */
    ck_assert_int_eq(decode_rc(0, "\x03", 1), VIGIL_ECORRUPT);
    /* a repeat first, and a repeat after an error */
    ck_assert_int_eq(decode_rc(0, "\x01", 1), VIGIL_ECORRUPT);
    ck_assert_int_eq(decode_rc(0, "\x02\x01x\x05", 4), VIGIL_ECORRUPT);
    /* the first sample not at start_ts; a second one at the same ts */
    ck_assert_int_eq(decode_rc(0, "\x04\0\0\0\0\0\0\0\0", 9), VIGIL_ECORRUPT);
    ck_assert_int_eq(decode_rc(0, "\x00\0\0\0\0\0\0\0\0\x01", 10), VIGIL_ECORRUPT);
    /* an empty error text; one longer than the data */
    ck_assert_int_eq(decode_rc(0, "\x02\x00", 2), VIGIL_ECORRUPT);
    ck_assert_int_eq(decode_rc(0, "\x02\x05xy", 4), VIGIL_ECORRUPT);
    /* a varint past 64 bits, and one cut short */
    ck_assert_int_eq(
        decode_rc(0, "\x00\0\0\0\0\0\0\0\0\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 19),
        VIGIL_ECORRUPT);
    ck_assert_int_eq(decode_rc(0, "\x00\0\0\0\0\0\0\0\0\x85", 10), VIGIL_ECORRUPT);
    /* a delta that would pass INT64_MAX */
    ck_assert_int_eq(decode_rc(INT64_MAX - 1, "\x00\0\0\0\0\0\0\0\0\x09", 10), VIGIL_ECORRUPT);
    ck_assert_int_eq(decode_rc(INT64_MAX - 1, "\x00\0\0\0\0\0\0\0\0\x05", 10), 0);
}
END_TEST

/* The model: per series, slot k is the sample at ts k * 1000 (or none). */
#define M_SERIES 3
#define M_SLOTS  2400

typedef struct model {
    unsigned char kind[M_SERIES][M_SLOTS]; /* 0 none, 1 value, 2 error */
    double value[M_SERIES][M_SLOTS];
    unsigned rng;
} model;

static unsigned m_rand(model *m)
{
    m->rng = m->rng * 1103515245u + 12345u;
    return (m->rng >> 8) & 0xffffff;
}

static void m_error_text(char *buf, size_t cap, int s, int k)
{
    snprintf(buf, cap, "failed %d/%d", s, k);
}

/* Checks the points of a query against the model, in order. */
typedef struct m_check {
    const model *m;
    int series;         /* of the point being checked, from the key */
    int next[M_SERIES]; /* raw: next slot expected */
    int64_t from, to;
    int points;
} m_check;

static int series_of(const char *key)
{
    const char *p = strstr(key, "s=\"");
    ck_assert_ptr_nonnull(p);
    return p[3] - '0';
}

static int m_raw_cb(const vigil_store_series *ser, const vigil_store_point *p, void *payload)
{
    m_check *c = payload;
    int s = series_of(ser->key);
    int k = c->next[s];
    while (k < M_SLOTS && (!c->m->kind[s][k] || (int64_t)k * 1000 < c->from))
        k++;
    ck_assert_msg(k < M_SLOTS, "series %d: extra point at %lld", s, (long long)p->ts_ms);
    ck_assert_msg(p->ts_ms == (int64_t)k * 1000, "series %d: point at %lld, expected %d", s,
                  (long long)p->ts_ms, k * 1000);
    if (c->m->kind[s][k] == 2) {
        char e[64];
        m_error_text(e, sizeof(e), s, k);
        ck_assert_ptr_nonnull(p->error);
        ck_assert_str_eq(p->error, e);
        ck_assert(isnan(p->value));
    } else {
        ck_assert_ptr_null(p->error);
        ck_assert_msg(p->value == c->m->value[s][k], "series %d at %d: %g, expected %g", s,
                      k * 1000, p->value, c->m->value[s][k]);
    }
    c->next[s] = k + 1;
    c->points++;
    return 0;
}

static void m_check_raw(vigil_store *st, const model *m, int64_t from, int64_t to)
{
    m_check c;
    memset(&c, 0, sizeof(c));
    c.m = m;
    c.from = from;
    c.to = to;
    vigil_store_query q = VIGIL_STORE_QUERY_INIT;
    q.name = "mm";
    q.from_ms = from;
    q.to_ms = to;
    ck_assert_int_eq(vigil_store_query_run(st, &q, m_raw_cb, &c), VIGIL_OK);
    int expected = 0;
    for (int s = 0; s < M_SERIES; s++)
        for (int k = 0; k < M_SLOTS; k++)
            if (m->kind[s][k] && (int64_t)k * 1000 >= from && (int64_t)k * 1000 < to)
                expected++;
    ck_assert_int_eq(c.points, expected);
}

typedef struct m_agg {
    int64_t ts[M_SERIES][M_SLOTS];
    double v[M_SERIES][M_SLOTS];
    int n[M_SERIES];
} m_agg;

static int m_agg_cb(const vigil_store_series *ser, const vigil_store_point *p, void *payload)
{
    m_agg *a = payload;
    int s = series_of(ser->key);
    ck_assert_ptr_null(p->error);
    a->ts[s][a->n[s]] = p->ts_ms;
    a->v[s][a->n[s]++] = p->value;
    return 0;
}

static void m_check_agg(vigil_store *st, const model *m, int64_t from, int64_t to, int64_t step,
                        vigil_store_agg agg)
{
    static m_agg got;
    memset(&got, 0, sizeof(got));
    vigil_store_query q = VIGIL_STORE_QUERY_INIT;
    q.name = "mm";
    q.from_ms = from;
    q.to_ms = to;
    q.step_ms = step;
    q.aggregate = agg;
    ck_assert_int_eq(vigil_store_query_run(st, &q, m_agg_cb, &got), VIGIL_OK);
    for (int s = 0; s < M_SERIES; s++) {
        int n = 0;
        int64_t cur = 0;
        double sum = 0, mn = 0, mx = 0, last = 0;
        long count = 0;
        for (int k = 0; k <= M_SLOTS; k++) {
            int64_t ts = (int64_t)k * 1000;
            int in = k < M_SLOTS && m->kind[s][k] == 1 && ts >= from && ts < to;
            int64_t bucket = in ? ts - ts % step : 0;
            if (count && (!in ? k == M_SLOTS : bucket != cur)) {
                double v = agg == VIGIL_STORE_AGG_MEAN    ? sum / (double)count
                           : agg == VIGIL_STORE_AGG_MIN   ? mn
                           : agg == VIGIL_STORE_AGG_MAX   ? mx
                           : agg == VIGIL_STORE_AGG_SUM   ? sum
                           : agg == VIGIL_STORE_AGG_COUNT ? (double)count
                                                          : last;
                ck_assert_int_lt(n, got.n[s]);
                ck_assert_int_eq(got.ts[s][n], cur);
                ck_assert_msg(got.v[s][n] == v, "series %d step %lld: %.17g, expected %.17g", s,
                              (long long)cur, got.v[s][n], v);
                n++;
                count = 0;
            }
            if (!in)
                continue;
            double v = m->value[s][k];
            if (!count) {
                cur = bucket;
                sum = 0;
                mn = mx = v;
            }
            sum += v;
            count++;
            mn = v < mn ? v : mn;
            mx = v > mx ? v : mx;
            last = v;
        }
        ck_assert_int_eq(got.n[s], n);
    }
}

static int m_latest_cb(const vigil_store_series *ser, const vigil_store_point *p, void *payload)
{
    int64_t *got = payload;
    got[series_of(ser->key)] = p->ts_ms;
    return 0;
}

static void m_check_latest(vigil_store *st, const model *m, int64_t from, int64_t to)
{
    int64_t got[M_SERIES] = {-1, -1, -1};
    vigil_store_query q = VIGIL_STORE_QUERY_INIT;
    q.name = "mm";
    q.from_ms = from;
    q.to_ms = to;
    ck_assert_int_eq(vigil_store_latest(st, &q, m_latest_cb, got), VIGIL_OK);
    for (int s = 0; s < M_SERIES; s++) {
        int64_t want = -1;
        for (int k = 0; k < M_SLOTS; k++)
            if (m->kind[s][k] && (int64_t)k * 1000 >= from && (int64_t)k * 1000 < to)
                want = (int64_t)k * 1000;
        ck_assert_msg(got[s] == want, "latest of series %d in [%lld, %lld): %lld, expected %lld", s,
                      (long long)from, (long long)to, (long long)got[s], (long long)want);
    }
}

/* A batch of random samples: mostly after the newest so far (appends), some
 * late, some replacing stored ones, some repeated values, some errors. */
static void m_batch(model *m, vigil_batch *b, int *front)
{
    vigil_batch_clear(b);
    int n = 1 + (int)(m_rand(m) % 200);
    char sv[4], e[64];
    for (int i = 0; i < n; i++) {
        int s = (int)(m_rand(m) % M_SERIES);
        int k;
        if (m_rand(m) % 5 == 0 || front[s] >= M_SLOTS - 4)
            k = (int)(m_rand(m) % (unsigned)(front[s] + 1)); /* late or replacing */
        else
            k = front[s] = front[s] + 1 + (int)(m_rand(m) % 3);
        snprintf(sv, sizeof(sv), "%d", s);
        vigil_tag t = {"s", sv};
        vigil_metric mt = {"mm", 0, (int64_t)k * 1000, &t, 1, NULL};
        unsigned r = m_rand(m) % 20;
        if (r == 0) {
            m_error_text(e, sizeof(e), s, k);
            mt.value = NAN;
            mt.error = e;
            m->kind[s][k] = 2;
        } else {
            mt.value = r < 10 ? 1.5 : (double)(m_rand(m) % 1000) / 8.0; /* runs of repeats */
            m->kind[s][k] = 1;
            m->value[s][k] = mt.value;
        }
        ck_assert_int_eq(vigil_batch_add(b, &mt), VIGIL_OK);
    }
}

static void m_check_all(vigil_store *st, model *m)
{
    m_check_raw(st, m, INT64_MIN / 2, INT64_MAX / 2);
    int64_t a = (int64_t)(m_rand(m) % M_SLOTS) * 1000 + (int64_t)(m_rand(m) % 3) * 500;
    int64_t len = 1 + (int64_t)(m_rand(m) % (M_SLOTS * 1000));
    m_check_raw(st, m, a, a + len);
    m_check_latest(st, m, a, a + len);
    m_check_latest(st, m, 0, INT64_MAX / 2);
    static const vigil_store_agg aggs[] = {VIGIL_STORE_AGG_MEAN,  VIGIL_STORE_AGG_MIN,
                                           VIGIL_STORE_AGG_MAX,   VIGIL_STORE_AGG_SUM,
                                           VIGIL_STORE_AGG_COUNT, VIGIL_STORE_AGG_LAST};
    int64_t step = 1000 * (1 + (int64_t)(m_rand(m) % 97));
    m_check_agg(st, m, a, a + len, step, aggs[m_rand(m) % 6]);
}

START_TEST(chunks_match_a_model)
{
    static model m;
    memset(&m, 0, sizeof(m));
    m.rng = 12345;
    int front[M_SERIES] = {0, 0, 0};
    vigil_store *st = open_url(db_url("model.db"));
    vigil_store *other = NULL;
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    for (int round = 0; round < 120; round++) {
        m_batch(&m, b, front);
        /* now and then another connection writes (the first one's cached
         * heads are stale then), or the store is opened again (no cache) */
        vigil_store *w = st;
        if (round % 7 == 3) {
            if (!other)
                other = open_url(db_url("model.db"));
            w = other;
        }
        write_ok(w, b, NULL);
        if (round % 25 == 24) {
            vigil_store_close(st);
            st = open_url(db_url("model.db"));
        }
        if (round % 10 == 9)
            m_check_all(st, &m);
    }
    m_check_all(st, &m);
    /* Retention at a cutoff inside chunks, in passes of a few samples, then
     * writes again (late ones too) and everything still matches. */
    vigil_store_retention_options o = VIGIL_STORE_RETENTION_OPTIONS_INIT;
    o.chunk_rows = 40;
    vigil_store_retention_result r = VIGIL_STORE_RETENTION_RESULT_INIT;
    int64_t cutoff = 700500;
    uint64_t expected = 0;
    for (int s = 0; s < M_SERIES; s++)
        for (int k = 0; k < M_SLOTS && (int64_t)k * 1000 < cutoff; k++)
            if (m.kind[s][k]) {
                m.kind[s][k] = 0;
                expected++;
            }
    ck_assert_int_eq(vigil_store_retain(st, cutoff, &o, &r), VIGIL_OK);
    ck_assert_int_eq(r.done, 1);
    ck_assert_uint_eq(r.samples_deleted, expected);
    ck_assert_uint_gt(r.chunks, 1);
    m_check_all(st, &m);
    for (int round = 0; round < 30; round++) {
        m_batch(&m, b, front);
        write_ok(round % 2 ? other : st, b, NULL);
    }
    m_check_all(st, &m);
    m_check_raw(st, &m, INT64_MIN / 2, INT64_MAX / 2);
    vigil_batch_free(b);
    vigil_store_close(other);
    vigil_store_close(st);
}
END_TEST

/* The write path figures: a dense write on an empty log goes straight into
 * the chunks; a sparse one (one sample for each of 30 series) is pending,
 * then folded by retention (which folds everything first when a pending
 * sample is older than its cutoff); bad arguments. */
START_TEST(write_log_stats)
{
    vigil_store *st = open_url(db_url("stats.db"));
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    for (int i = 0; i < 40; i++)
        add(b, "dense", i, 1000 + i, "k", "v", NULL, NULL);
    write_ok(st, b, NULL);
    vigil_store_stats s = VIGIL_STORE_STATS_INIT;
    ck_assert_int_eq(vigil_store_stats_get(st, &s), VIGIL_OK);
    ck_assert_uint_eq(s.log_rows, 0);
    ck_assert_uint_eq(s.unfolded_samples, 0);
    ck_assert_int_eq(count_samples(st), 40);
    vigil_batch_clear(b);
    char kv[16];
    for (int i = 0; i < 30; i++) {
        snprintf(kv, sizeof(kv), "s%d", i);
        add(b, "st", i, 1000 + i, "k", kv, NULL, NULL);
    }
    write_ok(st, b, NULL);
    write_ok(st, b, NULL); /* the same samples again: replaced, not added */
    ck_assert_int_eq(vigil_store_stats_get(st, &s), VIGIL_OK);
    ck_assert_uint_eq(s.version, VIGIL_STORE_STATS_VERSION);
    ck_assert_uint_eq(s.log_rows, 2);
    ck_assert_uint_gt(s.log_bytes, 2 * 30 * 9);
    ck_assert_uint_eq(s.unfolded_samples, 30);
    ck_assert_uint_ge(s.unfolded_bytes, 30 * sizeof(double));
    ck_assert_uint_eq(s.folds, 0);
    vigil_store_retention_options ro = VIGIL_STORE_RETENTION_OPTIONS_INIT;
    vigil_store_retention_result rr = VIGIL_STORE_RETENTION_RESULT_INIT;
    /* a pending sample older than the cutoff: retention folds everything first */
    ck_assert_int_eq(vigil_store_retain(st, 1001, &ro, &rr), VIGIL_OK);
    ck_assert_uint_eq(rr.samples_deleted, 2); /* ts 1000 of "dense" and of "st" */
    ck_assert_int_eq(vigil_store_stats_get(st, &s), VIGIL_OK);
    ck_assert_uint_eq(s.log_rows, 0);
    ck_assert_uint_eq(s.log_bytes, 0);
    ck_assert_uint_eq(s.unfolded_samples, 0);
    ck_assert_uint_eq(s.unfolded_bytes, 0);
    ck_assert_uint_eq(s.folds, 1);
    ck_assert_uint_eq(s.folded_samples, 30);
    ck_assert(s.last_fold_seconds > 0);
    ck_assert_int_eq(count_samples(st), 39 + 29);
    /* none older than the cutoff: no fold */
    write_ok(st, b, NULL);
    vigil_store_retention_result rr2 = VIGIL_STORE_RETENTION_RESULT_INIT;
    ck_assert_int_eq(vigil_store_retain(st, 500, &ro, &rr2), VIGIL_OK);
    ck_assert_int_eq(vigil_store_stats_get(st, &s), VIGIL_OK);
    ck_assert_uint_eq(s.folds, 1);
    ck_assert_uint_eq(s.log_rows, 1);
    ck_assert_uint_eq(s.unfolded_samples, 30);
    /* bad arguments */
    ck_assert_int_eq(vigil_store_stats_get(NULL, &s), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "store stats: NULL argument");
    ck_assert_int_eq(vigil_store_stats_get(st, NULL), VIGIL_EINVAL);
    s.version = 0;
    ck_assert_int_eq(vigil_store_stats_get(st, &s), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "store stats: version 0 is not supported");
    s.version = VIGIL_STORE_STATS_VERSION + 1;
    ck_assert_int_eq(vigil_store_stats_get(st, &s), VIGIL_EVERSION);
    vigil_store_close(st);
    vigil_batch_free(b);
}
END_TEST

/* Copies a file (or removes dst when src does not exist). */
static void copy_file(const char *src, const char *dst)
{
    unlink(dst);
    FILE *in = fopen(src, "rb");
    if (!in)
        return;
    FILE *out = fopen(dst, "wb");
    ck_assert_ptr_nonnull(out);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
    fclose(in);
    ck_assert_int_eq(fclose(out), 0);
}

static int64_t wlog_rows(const char *path)
{
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM wlog", -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* The write log against the model: random writes (late, replacing, errors),
 * folds of one series per transaction between them (so a round spans
 * writes), and crashes at random points: the database and its WAL copied
 * as the process would leave them (inline checkpoints, so nothing moves
 * between calls), opened as the restarted store, which replays the log and
 * must answer every query as the model does; writing goes on there, and an
 * acknowledged batch sent again is a duplicate. */
START_TEST(write_log_matches_a_model_across_crashes)
{
    static model m;
    memset(&m, 0, sizeof(m));
    m.rng = 777;
    int front[M_SERIES] = {0, 0, 0};
    const char *opts = "?checkpoint=inline&fold_interval=1ms&fold_batch=1";
    char url[1200], name[64], wal[1200], img[1200];
    int gen = 0;
    snprintf(name, sizeof(name), "crash-%d.db", gen);
    snprintf(url, sizeof(url), "%s%s", db_url(name), opts);
    vigil_store *st = open_url(url);
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    int crashes = 0, replayed = 0, idle_slices = 0;
    char bid[32];
    for (int round = 0; round < 160; round++) {
        m_batch(&m, b, front);
        snprintf(bid, sizeof(bid), "batch-%d", round);
        ck_assert_int_eq(vigil_batch_set_id(b, bid), VIGIL_OK);
        write_ok(st, b, NULL);
        /* every other generation folds as the hub does, between writes
         * (a slice of one series or one log row at a time) */
        if (gen % 2) {
            int64_t next = 0;
            for (unsigned k = m_rand(&m) % 4; k > 0; k--)
                idle_slices += vigil__store_tend(st, &next);
        }
        if (round % 10 == 9)
            m_check_all(st, &m);
        if (m_rand(&m) % 9 != 0)
            continue;
        /* crash: the files as they are now become the next generation */
        char from[1100], to[1100];
        snprintf(from, sizeof(from), "%s", db_path(name));
        snprintf(name, sizeof(name), "crash-%d.db", ++gen);
        snprintf(to, sizeof(to), "%s", db_path(name));
        copy_file(from, to);
        snprintf(wal, sizeof(wal), "%s-wal", from);
        snprintf(img, sizeof(img), "%s-wal", to);
        copy_file(wal, img);
        crashes++;
        replayed += wlog_rows(to) > 0;
        vigil_store_close(st);
        snprintf(url, sizeof(url), "%s%s", db_url(name), opts);
        st = open_url(url);
        vigil__store_fold_idle(st, gen % 2);
        m_check_all(st, &m);
        vigil_store_write_result res = VIGIL_STORE_WRITE_RESULT_INIT;
        write_ok(st, b, &res); /* the last acknowledged batch, sent again */
        ck_assert_int_eq(res.duplicate, 1);
        ck_assert_uint_eq(res.written, 0);
    }
    m_check_all(st, &m);
    m_check_raw(st, &m, INT64_MIN / 2, INT64_MAX / 2);
    ck_assert_int_ge(crashes, 10);
    ck_assert_int_ge(replayed, 5); /* most crashes left rows to replay */
    ck_assert_int_ge(idle_slices, 20);
    /* A clean close folds everything: the log is empty, the chunks hold it all. */
    vigil_store_close(st);
    ck_assert_int_eq(wlog_rows(db_path(name)), 0);
    snprintf(url, sizeof(url), "%s?log=off", db_url(name));
    st = open_url(url);
    m_check_all(st, &m);
    vigil_store_close(st);
    vigil_batch_free(b);
}
END_TEST

/* A chunk whose bytes were damaged is reported, with its series and start,
 * by queries and by writes that need to decode it (without the write log,
 * by the write; with it, by the fold: the write is in the log). */
START_TEST(corrupt_chunk_is_reported)
{
    vigil_store *st = open_url(db_url("damaged.db?log=off"));
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    for (int i = 0; i < 10; i++)
        add(b, "d", i, 1000 + i, "k", "v", NULL, NULL);
    write_ok(st, b, NULL);
    vigil_store_close(st);
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(db_path("damaged.db"), &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "UPDATE heads SET data = X'03'", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    st = open_url(db_url("damaged.db?log=off"));
    collect c;
    memset(&c, 0, sizeof(c));
    vigil_store_query q = VIGIL_STORE_QUERY_INIT;
    ck_assert_int_eq(vigil_store_query_run(st, &q, point_cb, &c), VIGIL_ECORRUPT);
    vt_assert_error(VIGIL_ECORRUPT, "the chunk of series 1 at ts 1000 is malformed");
    ck_assert_int_eq(vigil_store_write(st, b, NULL), VIGIL_ECORRUPT);
    vt_assert_error(VIGIL_ECORRUPT, "the chunk of series 1 at ts 1000 is malformed");
    /* Other series are unaffected. */
    vigil_batch_clear(b);
    add(b, "d", 1, 1000, "k", "w", NULL, NULL);
    write_ok(st, b, NULL);
    q.name = "d";
    vigil_store_matcher mt = {"k", VIGIL_STORE_MATCH_EQ, "w"};
    q.matchers = &mt;
    q.nmatchers = 1;
    ck_assert_str_eq(run(st, &q, &c), "d{k=\"w\"}@1000=1\n");
    vigil_store_close(st);

    /* With the write log the write is accepted (and kept in the log); the
     * fold that merges it into the damaged chunk reports the chunk, here
     * through retention, which folds everything first when a pending sample
     * is older than its cutoff. */
    st = open_url(db_url("damaged.db"));
    vigil_batch_clear(b);
    add(b, "d", 7, 1005, "k", "v", NULL, NULL);
    write_ok(st, b, NULL);
    vigil_store_retention_options ro = VIGIL_STORE_RETENTION_OPTIONS_INIT;
    vigil_store_retention_result rr = VIGIL_STORE_RETENTION_RESULT_INIT;
    ck_assert_int_eq(vigil_store_retain(st, 1006, &ro, &rr), VIGIL_ECORRUPT);
    vt_assert_error(VIGIL_ECORRUPT, "the chunk of series 1 at ts 1000 is malformed");
    vigil_store_close(st);
    /* the sample is still in the log, read back at the next open */
    ck_assert_int_eq(sqlite3_open(db_path("damaged.db"), &db), SQLITE_OK);
    sqlite3_stmt *qs = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM wlog", -1, &qs, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(qs), SQLITE_ROW);
    ck_assert_int_eq(sqlite3_column_int(qs, 0), 1);
    sqlite3_finalize(qs);
    sqlite3_close(db);
    /* While folds fail, unfolded samples pile up in memory: past the hard
     * cap writes are refused (the hub answers 503), and nothing is lost. */
    char url[1200];
    snprintf(url, sizeof(url), "%s?log_memory=4KiB&log_memory_max=8KiB&fold_interval=1ms",
             db_url("damaged.db"));
    st = open_url(url);
    int rc = VIGIL_OK, writes = 0;
    for (int i = 0; i < 50 && rc == VIGIL_OK; i++) {
        vigil_batch_clear(b);
        for (int k = 0; k < 50; k++)
            add(b, "d", k, 100000 + i * 100 + k, "k", "v", NULL, NULL);
        rc = vigil_store_write(st, b, NULL);
        writes += rc == VIGIL_OK;
    }
    ck_assert_int_eq(rc, VIGIL_EFULL);
    vt_assert_error(VIGIL_EFULL, "past the hard cap of 8192 (log_memory_max)");
    ck_assert_int_ge(writes, 2);
    ck_assert_int_le(writes, 10);
    vigil_store_close(st);
    ck_assert_int_eq(wlog_rows(db_path("damaged.db")), 1 + writes);
    vigil_batch_free(b);
}
END_TEST

/* ---- threads
 * ------------------------------------------------------------------------------------- */

static void *writer_thread(void *arg)
{
    vigil_store *st = arg;
    vigil_batch *b = NULL;
    if (vigil_batch_new(&b) != VIGIL_OK)
        return (void *)1;
    uintptr_t bad = 0;
    for (int i = 0; i < 50; i++) {
        vigil_batch_clear(b);
        vigil_metric m = {"t", i, (int64_t)(uintptr_t)pthread_self() % 1000000 + i, NULL, 0, NULL};
        vigil_batch_add(b, &m);
        if (vigil_store_write(st, b, NULL) != VIGIL_OK)
            bad++;
    }
    vigil_batch_free(b);
    return (void *)bad;
}

START_TEST(shared_between_threads)
{
    vigil_store *st = open_url(db_url("threads.db"));
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, writer_thread, st), 0);
    for (int i = 0; i < 4; i++) {
        void *r = NULL;
        ck_assert_int_eq(pthread_join(t[i], &r), 0);
        ck_assert_ptr_null(r);
    }
    ck_assert_int_le(count_samples(st), 200);
    ck_assert_int_gt(count_samples(st), 50);
    vigil_store_close(st);
}
END_TEST

/* ---- group writes ------------------------------------------------------------------------ */

START_TEST(write_group_parts)
{
    vigil_store *st = open_url(db_url("group.db"));
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    /* The batch's own agent and id are ignored. */
    ck_assert_int_eq(vigil_batch_set_id(b, "ignored"), VIGIL_OK);
    add(b, "x", 1, 1000, "h", "a", NULL, NULL); /* part 0: h1/b1 */
    add(b, "x", 2, 2000, "h", "a", NULL, NULL);
    add(b, "y", 3, 1000, NULL, NULL, NULL, NULL); /* part 1: no id */
    add(b, "x", 9, 1000, "h", "a", NULL, NULL);   /* part 2: h1/b1 again */
    vigil_store_batch_part parts[4] = {
        {"h1", "b1", 2}, {NULL, NULL, 1}, {"h1", "b1", 1}, {"h2", "b1", 0}};
    vigil_store_write_result res[4] = {VIGIL_STORE_WRITE_RESULT_INIT, VIGIL_STORE_WRITE_RESULT_INIT,
                                       VIGIL_STORE_WRITE_RESULT_INIT,
                                       VIGIL_STORE_WRITE_RESULT_INIT};
    /* every element's version is checked before anything is written */
    res[2].version = 7;
    ck_assert_int_eq(vigil_store_write_group(st, b, parts, 4, res), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "store write group: results[2] version 7 is not supported");
    res[2].version = VIGIL_STORE_WRITE_RESULT_VERSION;
    ck_assert_int_eq(vigil_store_write_group(st, b, parts, 4, res), VIGIL_OK);
    ck_assert_uint_eq(res[3].version, VIGIL_STORE_WRITE_RESULT_VERSION);
    ck_assert_uint_eq(res[0].written, 2);
    ck_assert_uint_eq(res[0].new_series, 1);
    ck_assert_int_eq(res[0].duplicate, 0);
    ck_assert_uint_eq(res[1].written, 1);
    ck_assert_uint_eq(res[1].new_series, 1);
    /* A batch id seen earlier in the same group is a duplicate: not written. */
    ck_assert_int_eq(res[2].duplicate, 1);
    ck_assert_uint_eq(res[2].written, 0);
    /* The same id from another agent is another batch, even an empty one. */
    ck_assert_int_eq(res[3].duplicate, 0);
    ck_assert_uint_eq(res[3].written, 0);
    collect c;
    vigil_store_query q = VIGIL_STORE_QUERY_INIT;
    ck_assert_str_eq(run(st, &q, &c), "x{h=\"a\"}@1000=1\nx{h=\"a\"}@2000=2\ny@1000=3\n");
    /* The ids were recorded with the samples: a single write sees them. */
    vigil_batch *one = small_batch(5000);
    ck_assert_int_eq(vigil_batch_set_agent(one, "h2"), VIGIL_OK);
    ck_assert_int_eq(vigil_batch_set_id(one, "b1"), VIGIL_OK);
    vigil_store_write_result r1 = VIGIL_STORE_WRITE_RESULT_INIT;
    write_ok(st, one, &r1);
    ck_assert_int_eq(r1.duplicate, 1);
    vigil_batch_free(one);
    /* Again across a reopen, and without a results array. */
    vigil_store_close(st);
    st = open_url(db_url("group.db"));
    ck_assert_int_eq(vigil_store_write_group(st, b, parts, 4, res), VIGIL_OK);
    ck_assert_int_eq(res[0].duplicate, 1);
    ck_assert_uint_eq(res[1].written, 1); /* no id: written again (replaces) */
    ck_assert_int_eq(res[2].duplicate, 1);
    ck_assert_int_eq(res[3].duplicate, 1);
    ck_assert_int_eq(vigil_store_write_group(st, b, parts, 4, NULL), VIGIL_OK);
    ck_assert_int_eq(count_samples(st), 3);
    /* An empty group is a no-op. */
    vigil_batch *empty = NULL;
    ck_assert_int_eq(vigil_batch_new(&empty), VIGIL_OK);
    ck_assert_int_eq(vigil_store_write_group(st, empty, NULL, 0, NULL), VIGIL_OK);
    ck_assert_int_eq(vigil_store_write_group(st, empty, parts + 3, 1, NULL), VIGIL_OK);

    /* Bad input: nothing written, results zeroed but for their version. */
    for (size_t i = 0; i < 4; i++) {
        memset(&res[i], 0xff, sizeof(res[i]));
        res[i].version = VIGIL_STORE_WRITE_RESULT_VERSION;
    }
    ck_assert_int_eq(vigil_store_write_group(NULL, b, parts, 4, res), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "store write group: NULL argument");
    ck_assert_uint_eq(res[3].written, 0);
    ck_assert_int_eq(res[3].duplicate, 0);
    ck_assert_uint_eq(res[3].version, VIGIL_STORE_WRITE_RESULT_VERSION);
    ck_assert_int_eq(vigil_store_write_group(st, NULL, parts, 4, res), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_store_write_group(st, b, NULL, 4, res), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "NULL argument");
    ck_assert_int_eq(vigil_store_write_group(st, b, parts, 2, res), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "the parts hold 3 metrics, the batch 4");
    vigil_store_batch_part bad[2] = {{"h1", "z1", 3}, {"h1", "z2", 2}};
    ck_assert_int_eq(vigil_store_write_group(st, b, bad, 2, res), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "parts[1] runs past the 4 metrics of the batch");
    bad[1].count = 0;
    ck_assert_int_eq(vigil_store_write_group(st, b, bad, 2, res), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "the parts hold 3 metrics, the batch 4");
    bad[0].count = 4;
    bad[1].batch_id = "";
    ck_assert_int_eq(vigil_store_write_group(st, b, bad, 2, res), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "parts[1].batch_id is empty");
    bad[1].batch_id = "id\xff";
    ck_assert_int_eq(vigil_store_write_group(st, b, bad, 2, res), VIGIL_EENCODING);
    vt_assert_error(VIGIL_EENCODING, "parts[1].batch_id is not valid UTF-8");
    char longid[VIGIL_AGENT_ID_MAX + 2];
    memset(longid, 'a', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    bad[1].batch_id = "z2";
    bad[1].agent = longid;
    ck_assert_int_eq(vigil_store_write_group(st, b, bad, 2, res), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "parts[1].agent is 201 bytes, more than the limit of 200");
    bad[1].agent = NULL;
    longid[VIGIL_BATCH_ID_MAX + 1] = '\0';
    bad[1].batch_id = longid;
    ck_assert_int_eq(vigil_store_write_group(st, b, bad, 2, res), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "parts[1].batch_id is 129 bytes");
    ck_assert_int_eq(vigil_store_write_group(st, empty, bad, VIGIL_STORE_PARTS_MAX + 1, NULL),
                     VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "more than the limit of 1048576");
    ck_assert_int_eq(count_samples(st), 3);
    vigil_store_close(st);

    /* A read-only store refuses the group. */
    vigil_store_options o = VIGIL_STORE_OPTIONS_INIT;
    o.read_only = 1;
    ck_assert_int_eq(vigil_store_open(&st, db_url("group.db"), &o), VIGIL_OK);
    ck_assert_int_eq(vigil_store_write_group(st, b, parts, 4, res), VIGIL_EREADONLY);
    vt_assert_error(VIGIL_EREADONLY, "write group: the store is open read-only");
    vigil_store_close(st);
    vigil_batch_free(empty);
    vigil_batch_free(b);
}
END_TEST

START_TEST(write_group_all_or_nothing)
{
    vigil_store_options o = VIGIL_STORE_OPTIONS_INIT;
    o.max_size_bytes = 200 * 1024;
    vigil_store *st = NULL;
    ck_assert_int_eq(vigil_store_open(&st, db_url("group-full.db"), &o), VIGIL_OK);
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    add(b, "small", 1, 1000, NULL, NULL, NULL, NULL);
    char v[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(v, sizeof(v), "series-%d", i);
        add(b, "big_metric_name_for_space", i, 5000, "h", v, NULL, NULL);
    }
    vigil_store_batch_part parts[2] = {{"h1", "g1", 1}, {"h1", "g2", 20000}};
    vigil_store_write_result res[2] = {VIGIL_STORE_WRITE_RESULT_INIT,
                                       VIGIL_STORE_WRITE_RESULT_INIT};
    ck_assert_int_eq(vigil_store_write_group(st, b, parts, 2, res), VIGIL_EFULL);
    vt_assert_error(VIGIL_EFULL, "2 batches (20001 metrics) not stored");
    ck_assert_uint_eq(res[0].written, 0);
    ck_assert_int_eq(res[0].duplicate, 0);
    ck_assert_int_eq(count_samples(st), 0);
    /* Neither id was kept: the first part alone is stored as new. */
    vigil_batch *first = small_batch(1000);
    vigil_store_batch_part p = {"h1", "g1", 1};
    ck_assert_int_eq(vigil_store_write_group(st, first, &p, 1, res), VIGIL_OK);
    ck_assert_int_eq(res[0].duplicate, 0);
    ck_assert_uint_eq(res[0].written, 1);
    ck_assert_uint_eq(res[0].new_series, 1);
    ck_assert_int_eq(count_samples(st), 1);
    vigil_batch_free(first);
    vigil_batch_free(b);
    vigil_store_close(st);
}
END_TEST

static int mock_write_group(void *h, const vigil_batch *merged, const vigil_store_batch_part *parts,
                            size_t nparts, vigil_store_write_result *results)
{
    (void)merged;
    ((mock *)h)->writes++;
    for (size_t i = 0; i < nparts; i++)
        results[i].written = parts[i].count;
    return VIGIL_OK;
}

START_TEST(write_group_backends)
{
    vigil_store_registry *reg = NULL;
    ck_assert_int_eq(vigil_store_registry_new(&reg), VIGIL_OK);
    mock m;
    memset(&m, 0, sizeof(m));
    vigil_store_type none = mock_backend(NULL); /* no write_group */
    none.name = "none";
    none.payload = &m;
    none.payload_free = NULL;
    vigil_store_type full = none;
    full.name = "full";
    full.write_group = mock_write_group;
    ck_assert_int_eq(vigil_store_register(reg, &none), VIGIL_OK);
    ck_assert_int_eq(vigil_store_register(reg, &full), VIGIL_OK);
    vigil_store_options o = VIGIL_STORE_OPTIONS_INIT;
    o.registry = reg;
    vigil_batch *b = small_batch(1000);
    vigil_store_batch_part p = {"a", "id", 1};
    vigil_store_write_result res = VIGIL_STORE_WRITE_RESULT_INIT;
    static const char *const schemes[] = {"none://x"};
    for (size_t i = 0; i < 1; i++) {
        vigil_store *st = NULL;
        ck_assert_int_eq(vigil_store_open(&st, schemes[i], &o), VIGIL_OK);
        ck_assert_int_eq(vigil_store_write_group(st, b, &p, 1, &res), VIGIL_EUNSUPPORTED);
        vt_assert_error(VIGIL_EUNSUPPORTED, "the backend does not support write_group");
        vigil_store_close(st);
    }
    ck_assert_int_eq(m.writes, 0);
    vigil_store *st = NULL;
    ck_assert_int_eq(vigil_store_open(&st, "full://x", &o), VIGIL_OK);
    ck_assert_int_eq(vigil_store_write_group(st, b, &p, 1, &res), VIGIL_OK);
    ck_assert_uint_eq(res.written, 1);
    vigil_store_close(st);
    vigil_batch_free(b);
    vigil_store_registry_free(reg);
}
END_TEST

/* ---- checkpoints -------------------------------------------------------------------------- */

static long long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

/* Threads of this process named `name` (Check runs each test in a child). */
static int threads_named(const char *name)
{
    int n = 0;
    DIR *d = opendir("/proc/self/task");
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], comm[64] = "";
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        if (fgets(comm, sizeof(comm), f))
            comm[strcspn(comm, "\n")] = '\0';
        fclose(f);
        n += strcmp(comm, name) == 0;
    }
    closedir(d);
    return n;
}

/* Writes `rounds` batches of `nseries` metrics, one timestamp per round. */
static void write_rounds(vigil_store *st, int first, int rounds, int nseries, const char *wal,
                         long long *max_wal)
{
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    char v[16];
    for (int r = first; r < first + rounds; r++) {
        vigil_batch_clear(b);
        for (int i = 0; i < nseries; i++) {
            snprintf(v, sizeof(v), "s%d", i);
            add(b, "wal_metric", r, 1000LL * (r + 1), "series", v, NULL, NULL);
        }
        write_ok(st, b, NULL);
        long long size = wal ? file_size(wal) : 0;
        if (max_wal && size > *max_wal)
            *max_wal = size;
    }
    vigil_batch_free(b);
}

/* Captures log records of the store. */
typedef struct log_capture {
    pthread_mutex_t mu;
    int warnings;
    char first[512];
} log_capture;

static void capture_log(const vigil_log_record *r, void *payload)
{
    log_capture *c = payload;
    pthread_mutex_lock(&c->mu);
    if (r->level >= VIGIL_LOG_WARN && !c->warnings++)
        snprintf(c->first, sizeof(c->first), "%s %s", r->message, r->fields);
    pthread_mutex_unlock(&c->mu);
}

START_TEST(checkpoint_options)
{
    vigil_store *st = NULL;
    char url[1200];
    snprintf(url, sizeof(url), "%s?checkpoint=inline", db_url("ck-opts.db"));
    st = open_url(url);
    ck_assert_int_eq(threads_named("vigil-ckpt"), 0);
    vigil_store_close(st);
    snprintf(url, sizeof(url), "%s?checkpoint=background&mode=rw", db_url("ck-opts.db"));
    st = open_url(url);
    ck_assert_int_eq(threads_named("vigil-ckpt"), 1);
    vigil_store_close(st);
    ck_assert_int_eq(threads_named("vigil-ckpt"), 0);
    snprintf(url, sizeof(url), "%s?checkpoint=never", db_url("ck-opts.db"));
    ck_assert_int_eq(vigil_store_open(&st, url, NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "checkpoint=never: expected background or inline");

    vigil_store_options o = VIGIL_STORE_OPTIONS_INIT;
    o.checkpoint = (vigil_store_checkpoint)5;
    ck_assert_int_eq(vigil_store_open(&st, "sqlite::memory:", &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "unknown checkpoint mode 5");
    o.checkpoint = VIGIL_STORE_CHECKPOINT_BACKGROUND;
    o.checkpoint_interval_ms = -1;
    ck_assert_int_eq(vigil_store_open(&st, "sqlite::memory:", &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "checkpoint_interval_ms must not be negative");
    o.checkpoint_interval_ms = (int64_t)INT32_MAX + 1;
    ck_assert_int_eq(vigil_store_open(&st, "sqlite::memory:", &o), VIGIL_ERANGE);
    vt_assert_error(VIGIL_ERANGE, "checkpoint_interval_ms is too large");
    o.checkpoint_interval_ms = 0;
    o.checkpoint_pages = 100;
    o.wal_max_pages = 50;
    ck_assert_int_eq(vigil_store_open(&st, "sqlite::memory:", &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "wal_max_pages (50) must not be below checkpoint_pages (100)");
    o.wal_max_pages = (size_t)INT32_MAX + 1;
    ck_assert_int_eq(vigil_store_open(&st, "sqlite::memory:", &o), VIGIL_ERANGE);
    vt_assert_error(VIGIL_ERANGE, "must be at most 2147483647");
    /* checkpoint_pages above the default bound raises the default bound. */
    o.checkpoint_pages = 100000;
    o.wal_max_pages = 0;
    ck_assert_int_eq(vigil_store_open(&st, "sqlite::memory:", &o), VIGIL_OK);
    ck_assert_int_eq(threads_named("vigil-ckpt"), 0); /* none for memory */
    vigil_store_close(st);

    /* A version-1 caller passes the smaller struct: the fields after it
     * are neither read nor written. */
    vigil_store_options v1;
    memset(&v1, 0xab, sizeof(v1));
    ck_assert_int_eq(vigil_store_options_init(&v1, 1), VIGIL_OK);
    ck_assert_uint_eq(v1.version, 1);
    ck_assert_int_eq(v1.busy_timeout_ms, 0);
    ck_assert_uint_eq(v1.wal_max_pages, (size_t)0xababababababababULL);
    ck_assert_int_eq(vigil_store_open(&st, db_url("ck-opts.db"), &v1), VIGIL_OK);
    ck_assert_int_eq(threads_named("vigil-ckpt"), 1); /* the default: background */
    vigil_store_close(st);
    ck_assert_int_eq(vigil_store_options_init(&o, VIGIL_STORE_OPTIONS_VERSION), VIGIL_OK);
    ck_assert_int_eq(o.checkpoint, VIGIL_STORE_CHECKPOINT_BACKGROUND);
    ck_assert_uint_eq(o.wal_max_pages, 0);

    /* A read-only store has no checkpoint thread. */
    o.read_only = 1;
    ck_assert_int_eq(vigil_store_open(&st, db_url("ck-opts.db"), &o), VIGIL_OK);
    ck_assert_int_eq(threads_named("vigil-ckpt"), 0);
    vigil_store_close(st);
}
END_TEST

START_TEST(checkpoint_in_background)
{
    /* No bound in reach: only the checkpoint thread copies pages back into
     * the database file, so the file growing shows that it runs. */
    vigil_store_options o = VIGIL_STORE_OPTIONS_INIT;
    o.checkpoint_pages = 8;
    o.checkpoint_interval_ms = 5;
    o.wal_max_pages = 1 << 20;
    vigil_store *st = NULL;
    ck_assert_int_eq(vigil_store_open(&st, db_url("ck-bg.db"), &o), VIGIL_OK);
    long long before = file_size(db_path("ck-bg.db"));
    write_rounds(st, 0, 50, 50, NULL, NULL);
    long long after = before;
    for (int i = 0; i < 500 && after <= before; i++) {
        usleep(10000);
        after = file_size(db_path("ck-bg.db"));
    }
    ck_assert_int_gt(after, before);
    /* The same writes with inline checkpoints past the writes' size leave the
     * database file as it was until close. */
    vigil_store_close(st);
    char url[1200];
    snprintf(url, sizeof(url), "%s?checkpoint=inline", db_url("ck-inline.db"));
    o.checkpoint_pages = 1 << 20;
    ck_assert_int_eq(vigil_store_open(&st, url, &o), VIGIL_OK);
    before = file_size(db_path("ck-inline.db"));
    write_rounds(st, 0, 50, 50, NULL, NULL);
    usleep(50000);
    ck_assert_int_eq(file_size(db_path("ck-inline.db")), before);
    vigil_store_close(st);
    /* Closing the last connection checkpoints everything: all samples are there. */
    st = open_url(db_url("ck-inline.db"));
    ck_assert_int_eq(count_samples(st), 2500);
    vigil_store_close(st);
}
END_TEST

START_TEST(wal_stays_bounded)
{
    /* The thread wakes only at 16 pages (no timer); the log must never
     * exceed its bound by more than the pages of one commit. One round of
     * this test writes about 10 pages, but the round in which all 40 heads
     * fill at once moves 40 chunks into as many leaves: about 70 pages, so
     * the allowance for one commit is 128 pages. */
    vigil_store_options o = VIGIL_STORE_OPTIONS_INIT;
    o.checkpoint_pages = 16;
    o.checkpoint_interval_ms = 3600 * 1000;
    o.wal_max_pages = 64;
    vigil_store *st = NULL;
    /* without the write log: its rows take fewer pages than this test needs */
    ck_assert_int_eq(vigil_store_open(&st, db_url("ck-bound.db?log=off"), &o), VIGIL_OK);
    char wal[1100];
    snprintf(wal, sizeof(wal), "%s-wal", db_path("ck-bound.db"));
    long long max_wal = 0;
    write_rounds(st, 0, 400, 40, wal, &max_wal);
    const long long frame = 4096 + 24;
    ck_assert_msg(max_wal <= 32 + (64 + 128) * frame, "the log reached %lld bytes", max_wal);
    ck_assert_int_gt(max_wal, 0);
    ck_assert_int_eq(count_samples(st), 400 * 40);
    vigil_store_close(st);

    /* A reader that holds a snapshot pins the log: the TRUNCATE fails after
     * the busy timeout, is logged, and the writes go on; once the reader is
     * gone the log is bounded again. */
    log_capture cap;
    memset(&cap, 0, sizeof(cap));
    pthread_mutex_init(&cap.mu, NULL);
    o.logger.cb = capture_log;
    o.logger.payload = &cap;
    o.busy_timeout_ms = 20;
    ck_assert_int_eq(vigil_store_open(&st, db_url("ck-bound.db?log=off"), &o), VIGIL_OK);
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(db_path("ck-bound.db"), &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "BEGIN; SELECT count(*) FROM chunks", NULL, NULL, NULL),
                     SQLITE_OK);
    max_wal = 0;
    write_rounds(st, 400, 40, 40, wal, &max_wal);
    ck_assert_int_gt(max_wal, 32 + (64 + 128) * frame);
    pthread_mutex_lock(&cap.mu);
    ck_assert_int_ge(cap.warnings, 1);
    ck_assert_msg(strstr(cap.first, "past its bound and could not be truncated") != NULL, "%s",
                  cap.first);
    pthread_mutex_unlock(&cap.mu);
    ck_assert_int_eq(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    /* Failed tries back off until the log doubled; enough writes for the
     * next one. */
    write_rounds(st, 440, 80, 40, NULL, NULL);
    max_wal = 0;
    write_rounds(st, 520, 100, 40, wal, &max_wal);
    ck_assert_msg(max_wal <= 32 + (64 + 128) * frame, "the log reached %lld bytes", max_wal);
    ck_assert_int_eq(count_samples(st), 620 * 40);
    vigil_store_close(st);
    pthread_mutex_destroy(&cap.mu);
}
END_TEST

START_TEST(close_joins_checkpointer)
{
    /* A busy thread (a checkpoint every page and every millisecond) is
     * joined by every close, whatever it is doing. */
    vigil_store_options o = VIGIL_STORE_OPTIONS_INIT;
    o.checkpoint_pages = 1;
    o.checkpoint_interval_ms = 1;
    o.wal_max_pages = 1;
    for (int i = 0; i < 20; i++) {
        vigil_store *st = NULL;
        ck_assert_int_eq(vigil_store_open(&st, db_url("ck-close.db"), &o), VIGIL_OK);
        ck_assert_int_eq(threads_named("vigil-ckpt"), 1);
        write_rounds(st, i * 5, 5, 20, NULL, NULL);
        vigil_store_close(st);
        ck_assert_int_eq(threads_named("vigil-ckpt"), 0);
    }
    vigil_store *st = open_url(db_url("ck-close.db"));
    ck_assert_int_eq(count_samples(st), 20 * 5 * 20);
    vigil_store_close(st);
}
END_TEST

/* ---- out of memory (the library's own allocations; SQLite's are its own) ------------------ */

typedef struct oom_store {
    vigil_store *st;
    vigil_batch *batch;
} oom_store;

static int oom_store_op(void *p)
{
    oom_store *c = p;
    int rc = vigil_store_open(&c->st, "sqlite::memory:", NULL);
    if (rc)
        return rc;
    if ((rc = vigil_store_write(c->st, c->batch, NULL)) != 0)
        return rc;
    vigil_store_batch_part parts[2] = {{"a", "g1", 1}, {NULL, NULL, 2}};
    if ((rc = vigil_store_write_group(c->st, c->batch, parts, 2, NULL)) != 0)
        return rc;
    collect col;
    memset(&col, 0, sizeof(col));
    vigil_store_query q = VIGIL_STORE_QUERY_INIT;
    if ((rc = vigil_store_query_run(c->st, &q, point_cb, &col)) != 0)
        return rc;
    ck_assert_int_eq(col.points, 3);
    vigil_store_action a = {0};
    a.id = "a";
    a.action = "x";
    a.target = "t";
    if ((rc = vigil_store_action_put(c->st, &a, NULL)) != 0)
        return rc;
    vigil_store_action *got = NULL;
    if ((rc = vigil_store_action_get(c->st, "a", &got)) != 0)
        return rc;
    vigil_store_action_free(got);
    void *v = NULL;
    size_t len;
    if ((rc = vigil_store_state_put(c->st, "k", "v", 1)) != 0 ||
        (rc = vigil_store_state_get(c->st, "k", &v, &len)) != 0)
        return rc;
    vigil_free(v);
    vigil_store_resource r = {"k", "File", "f", "s", "", NULL, NULL, 0};
    vigil_store_resource rs[2] = {r, r};
    rs[1].key = "k2";
    if ((rc = vigil_store_resource_replace(c->st, VIGIL_STORE_DESIRED, "s", rs, 2)) != 0)
        return rc;
    /* retention trims one head (a: ts 1 goes, ts 2 stays) and deletes another (b) */
    vigil_store_retention_result rr = VIGIL_STORE_RETENTION_RESULT_INIT;
    if ((rc = vigil_store_retain(c->st, 2, NULL, &rr)) != 0)
        return rc;
    ck_assert_uint_eq(rr.samples_deleted, 2);
    memset(&col, 0, sizeof(col));
    if ((rc = vigil_store_latest(c->st, &q, point_cb, &col)) != 0)
        return rc;
    ck_assert_str_eq(col.out, "a{h=\"1\"}@2=3\n");
    return VIGIL_OK;
}

static void oom_store_cleanup(void *p)
{
    oom_store *c = p;
    vigil_store_close(c->st);
    c->st = NULL;
}

START_TEST(out_of_memory_sweep)
{
    vt_alloc_install();
    oom_store c = {NULL, NULL};
    ck_assert_int_eq(vigil_batch_new(&c.batch), VIGIL_OK);
    add(c.batch, "a", 1, 1, "h", "1", NULL, NULL);
    add(c.batch, "b", 2, 1, "h", "2", "z", "\"");
    add(c.batch, "a", 3, 2, "h", "1", NULL, NULL);
    ck_assert_int_gt(vt_oom_sweep(oom_store_op, oom_store_cleanup, &c, 0), 5);
    vigil_batch_free(c.batch);
}
END_TEST

static Suite *store_suite(void)
{
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("store");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, open_urls);
    tcase_add_test(tc, open_bad_urls_and_options);
    tcase_add_test(tc, registry_and_custom_backend);
    tcase_add_test(tc, write_and_raw_queries);
    tcase_add_test(tc, tag_matchers);
    tcase_add_test(tc, downsampled_queries);
    tcase_add_test(tc, query_validation);
    tcase_add_test(tc, series_list_and_latest);
    tcase_add_test(tc, last_write_wins_and_error_samples);
    tcase_add_test(tc, escaped_tags_round_trip);
    tcase_add_test(tc, batch_ids_are_idempotent);
    tcase_add_test(tc, many_series_use_the_cache);
    tcase_add_test(tc, action_ledger);
    tcase_add_test(tc, decisions_append_only);
    tcase_add_test(tc, audit_rows);
    tcase_add_test(tc, silences);
    tcase_add_test(tc, policy_state);
    tcase_add_test(tc, desired_and_drift);
    tcase_add_test(tc, retention_in_chunks);
    tcase_add_test(tc, migration_from_v1);
    tcase_add_test(tc, migration_to_chunks);
    tcase_add_test(tc, chunk_codec_round_trip);
    tcase_add_test(tc, chunk_codec_refuses_malformed_data);
    tcase_add_test(tc, chunks_match_a_model);
    tcase_add_test(tc, write_log_matches_a_model_across_crashes);
    tcase_add_test(tc, write_log_stats);
    tcase_add_test(tc, corrupt_chunk_is_reported);
    tcase_add_test(tc, shared_between_threads);
    tcase_add_test(tc, write_group_parts);
    tcase_add_test(tc, write_group_all_or_nothing);
    tcase_add_test(tc, write_group_backends);
    tcase_add_test(tc, checkpoint_options);
    tcase_add_test(tc, checkpoint_in_background);
    tcase_add_test(tc, wal_stays_bounded);
    tcase_add_test(tc, close_joins_checkpointer);
    suite_add_tcase(s, tc);
    TCase *faults = tcase_create("faults");
    tcase_set_timeout(faults, 30);
    tcase_add_test(faults, fault_read_only);
    tcase_add_test(faults, fault_full_disk);
    tcase_add_test(faults, fault_corrupt_file);
    tcase_add_test(faults, fault_newer_schema);
    tcase_add_test(faults, fault_locked);
    suite_add_tcase(s, faults);
    TCase *oom = tcase_create("oom");
    tcase_set_timeout(oom, 60);
    tcase_add_test(oom, out_of_memory_sweep);
    suite_add_tcase(s, oom);
    if (g_server.pid) {
        /* The same tests on the PostgreSQL backend: those of the store's
         * contract; SQLite's files, write log, chunks, checkpoints and
         * faults stay SQLite's (test_store_pg has the server's own). */
        TCase *pg = tcase_create("postgresql");
        tcase_set_timeout(pg, 60);
        tcase_add_checked_fixture(pg, use_pg, NULL);
        tcase_add_test(pg, write_and_raw_queries);
        tcase_add_test(pg, tag_matchers);
        tcase_add_test(pg, downsampled_queries);
        tcase_add_test(pg, query_validation);
        tcase_add_test(pg, series_list_and_latest);
        tcase_add_test(pg, last_write_wins_and_error_samples);
        tcase_add_test(pg, escaped_tags_round_trip);
        tcase_add_test(pg, batch_ids_are_idempotent);
        tcase_add_test(pg, many_series_use_the_cache);
        tcase_add_test(pg, action_ledger);
        tcase_add_test(pg, decisions_append_only);
        tcase_add_test(pg, audit_rows);
        tcase_add_test(pg, silences);
        tcase_add_test(pg, policy_state);
        tcase_add_test(pg, desired_and_drift);
        tcase_add_test(pg, retention_in_chunks);
        tcase_add_test(pg, shared_between_threads);
        tcase_add_test(pg, write_group_parts);
        suite_add_tcase(s, pg);
    }
    return s;
}

int main(void)
{
    int up = vt_pg_start(&g_server, "test_store");
    if (up == 0)
        printf("test_store: SKIP the PostgreSQL runs: %s\n", g_server.err);
    else if (up < 0)
        fprintf(stderr, "test_store: cannot start PostgreSQL: %s\n", g_server.err);
    SRunner *sr = srunner_create(store_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    vt_pg_stop(&g_server);
    return failed || up < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
