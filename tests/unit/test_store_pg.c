/* The PostgreSQL store backend on a server this program starts (pgtest.h):
 * URLs and credentials (a password in the URL refused, password_env,
 * password_file, PGPASSWORD), the pool's connections, reconnection after
 * the server restarts or ends a session, day partitions created by writes
 * and dropped by retention, two handles writing at once, the tail's
 * exactly-once order behind an older open transaction, leases, the
 * append-only triggers, the schema version table, read-only stores, the
 * client-side timeout when the server stops answering. The
 * tests that both backends run are in test_store. Skipped (with a message)
 * when the server binaries are not installed. */
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pgtest.h"
#include "testutil.h"
#include "vigil/sys/store.h"

static vt_pg g_server;

#define DAY_MS 86400000LL

/* A schema of its own for each test (each runs in a process of its own). */
static const char *schema_of(const char *name)
{
    static char buf[4][96];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, 96, "%s_%d", name, (int)getpid());
    return p;
}

static const char *url_of(const char *schema, const char *extra)
{
    static char buf[4][1400];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, 1400, "%s&schema=%s%s", g_server.url, schema, extra ? extra : "");
    return p;
}

static vigil_store *open_ok(const char *url)
{
    vigil_store *st = NULL;
    int rc = vigil_store_open(&st, url, NULL);
    ck_assert_msg(rc == VIGIL_OK, "open %s: %d %s", url, rc, vigil_error_last()->message);
    return st;
}

/* A superuser connection of the test's own, with `schema` first in the path. */
static PGconn *raw(const vt_pg *pg, const char *schema)
{
    char conninfo[1200];
    snprintf(conninfo, sizeof(conninfo),
             "host=%s port=%d user=%s dbname=%s options='-c search_path=%s'", pg->sock, pg->port,
             VT_PG_USER, VT_PG_DB, schema ? schema : "public");
    PGconn *c = PQconnectdb(conninfo);
    ck_assert_msg(PQstatus(c) == CONNECTION_OK, "connect: %s", PQerrorMessage(c));
    return c;
}

/* One integer of a query; -1 on error (err receives the message). */
static long long raw_int(PGconn *c, const char *sql, char *err, size_t errlen)
{
    PGresult *r = PQexec(c, sql);
    long long v = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
        v = atoll(PQgetvalue(r, 0, 0));
    else if (PQresultStatus(r) == PGRES_COMMAND_OK)
        v = atoll(PQcmdTuples(r));
    else if (err)
        snprintf(err, errlen, "%s", PQresultErrorMessage(r));
    PQclear(r);
    return v;
}

static void raw_ok(PGconn *c, const char *sql)
{
    char err[512] = "";
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        snprintf(err, sizeof(err), "%s", PQresultErrorMessage(r));
    PQclear(r);
    ck_assert_msg(!err[0], "%s: %s", sql, err);
}

static void add(vigil_batch *b, const char *name, double v, int64_t ts, const char *k,
                const char *val)
{
    vigil_tag t = {k, val};
    vigil_metric m = {name, v, ts, k ? &t : NULL, k ? 1 : 0, NULL};
    ck_assert_int_eq(vigil_batch_add(b, &m), VIGIL_OK);
}

static void write_ok(vigil_store *st, vigil_batch *b)
{
    int rc = vigil_store_write(st, b, NULL);
    ck_assert_msg(rc == VIGIL_OK, "write: %d %s", rc, vigil_error_last()->message);
}

static int count_cb(const vigil_store_series *s, const vigil_store_point *p, void *payload)
{
    (void)s;
    (void)p;
    (*(int *)payload)++;
    return 0;
}

static int count_samples(vigil_store *st)
{
    int n = 0;
    vigil_store_query q = VIGIL_STORE_QUERY_INIT;
    int rc = vigil_store_query_run(st, &q, count_cb, &n);
    ck_assert_msg(rc == VIGIL_OK, "query: %d %s", rc, vigil_error_last()->message);
    return n;
}

/* ---- URLs and credentials ---------------------------------------------------------- */

START_TEST(url_with_password_refused)
{
    vigil_store *st = (vigil_store *)1;
    char url[512];
    snprintf(url, sizeof(url), "postgresql://vigil:%s@127.0.0.1:%d/vigil", VT_PG_PASSWORD,
             g_server.port);
    ck_assert_int_eq(vigil_store_open(&st, url, NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "postgresql: the store URL holds a password; keep credentials "
                                  "out of configuration: use PGPASSWORD, PGPASSFILE, "
                                  "password_env=VAR or password_file=PATH");
    ck_assert_ptr_null(st);
    /* the password never reaches the message */
    ck_assert_ptr_null(strstr(vigil_error_last()->message, VT_PG_PASSWORD));
    snprintf(url, sizeof(url), "postgres://127.0.0.1:%d/vigil?user=vigil&password=%s",
             g_server.port, VT_PG_PASSWORD);
    ck_assert_int_eq(vigil_store_open(&st, url, NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "the store URL holds a password");
    ck_assert_ptr_null(strstr(vigil_error_last()->message, VT_PG_PASSWORD));
    /* the passphrase of a client key is one too */
    ck_assert_int_eq(vigil_store_open(&st, "postgresql://h/db?sslpassword=x", NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "the store URL holds a password");
    /* libpq decodes %-escapes in keys: a password spelt so is refused too
     * (it used to reach the server and log in) */
    snprintf(url, sizeof(url), "postgresql://vigil@127.0.0.1:%d/vigil?passw%%6Frd=%s",
             g_server.port, VT_PG_PASSWORD);
    ck_assert_int_eq(vigil_store_open(&st, url, NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "postgresql: the store URL holds a password; keep credentials "
                                  "out of configuration: use PGPASSWORD, PGPASSFILE, "
                                  "password_env=VAR or password_file=PATH");
    ck_assert_ptr_null(strstr(vigil_error_last()->message, VT_PG_PASSWORD));
    ck_assert_ptr_null(st);
    ck_assert_int_eq(vigil_store_open(&st, "postgresql://h/db?%73slpassword=x", NULL),
                     VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "the store URL holds a password");
    /* a connection string in dbname= is not expanded by libpq: it would go
     * to the server (and its log) as a database name */
    snprintf(url, sizeof(url), "postgresql://127.0.0.1:%d/x?dbname=postgresql://vigil:%s@h/vigil",
             g_server.port, VT_PG_PASSWORD);
    ck_assert_int_eq(vigil_store_open(&st, url, NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "postgresql: URL option dbname: expected a database name, not a "
                                  "connection string (name the database in the URL's path)");
    ck_assert_ptr_null(strstr(vigil_error_last()->message, VT_PG_PASSWORD));
    ck_assert_int_eq(vigil_store_open(&st, "postgresql://h/x?dbname=user%3Dvigil", NULL),
                     VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "URL option dbname: expected a database name");
}
END_TEST

START_TEST(bad_urls_and_options)
{
    vigil_store *st = NULL;
    static const struct {
        const char *url;
        int code;
        const char *msg;
    } cases[] = {
        {"postgresql:vigil", VIGIL_EINVAL, "is not a PostgreSQL URL (expected postgresql://"},
        {"postgresql://h/db?pool=0", VIGIL_EINVAL,
         "URL option pool=0: expected a number of connections from 1 to 64"},
        {"postgresql://h/db?pool=65", VIGIL_EINVAL, "pool=65: expected a number of connections"},
        {"postgresql://h/db?pool=4x", VIGIL_EINVAL, "pool=4x: expected a number"},
        {"postgresql://h/db?schema=Bad-Name", VIGIL_EINVAL,
         "URL option schema=Bad-Name: expected [a-z_][a-z0-9_]*"},
        {"postgresql://h/db?pool", VIGIL_EINVAL, "URL option \"pool\" has no value"},
        {"postgresql://h/db?password_env=", VIGIL_EINVAL,
         "password_env=: expected the name of an environment variable"},
        {"postgresql://h/db?password_env=VT_PG_NOT_SET_ANYWHERE", VIGIL_EINVAL,
         "password_env=VT_PG_NOT_SET_ANYWHERE: the environment variable is not set"},
        {"postgresql://h/db?password_file=/nonexistent/pw", VIGIL_EIO,
         "cannot open password_file /nonexistent/pw"},
        {"postgresql://h/db?no_such_option=1", VIGIL_EINVAL,
         "bad URL: invalid URI query parameter: \"no_such_option\""},
        {"postgresql://h/db?connect_timeout=forever", VIGIL_EINVAL,
         "connect_timeout=forever: expected seconds"},
        {"postgresql://h/db?tail=maybe", VIGIL_EINVAL, "URL option tail=maybe: expected on or off"},
        {"postgresql://h/db?timeout=0", VIGIL_EINVAL,
         "URL option timeout=0: expected the time a statement may wait for the server, from "
         "100ms to 3600s (N or Nms: milliseconds, Ns: seconds)"},
        {"postgresql://h/db?timeout=99ms", VIGIL_EINVAL, "URL option timeout=99ms: expected"},
        {"postgresql://h/db?timeout=3601s", VIGIL_EINVAL, "URL option timeout=3601s: expected"},
        {"postgresql://h/db?timeout=3600001", VIGIL_EINVAL, "URL option timeout=3600001: expected"},
        {"postgresql://h/db?timeout=1.5s", VIGIL_EINVAL, "URL option timeout=1.5s: expected"},
        {"postgresql://h/db?timeout=-500", VIGIL_EINVAL, "URL option timeout=-500: expected"},
        {"postgresql://h/db?timeout=5m", VIGIL_EINVAL, "URL option timeout=5m: expected"},
        {"postgresql://h/db?timeout=", VIGIL_EINVAL, "URL option timeout=: expected"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_msg(vigil_store_open(&st, cases[i].url, NULL) == cases[i].code, "%s: %s",
                      cases[i].url, vigil_error_last()->message);
        vt_assert_error(cases[i].code, cases[i].msg);
        ck_assert_ptr_null(st);
    }
    /* A password file others may read is refused. */
    const char *dir = vt_tmpdir();
    const char *pw = vt_write_file(dir, "pw", VT_PG_PASSWORD "\n", strlen(VT_PG_PASSWORD) + 1);
    ck_assert_int_eq(chmod(pw, 0644), 0);
    char url[1200];
    snprintf(url, sizeof(url), "postgresql://vigil@127.0.0.1:%d/vigil?password_file=%s",
             g_server.port, pw);
    ck_assert_int_eq(vigil_store_open(&st, url, NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "is readable by group or others (mode 644); chmod 600 it");
    /* max_size_bytes is SQLite's */
    vigil_store_options o = VIGIL_STORE_OPTIONS_INIT;
    o.max_size_bytes = 1 << 20;
    ck_assert_int_eq(vigil_store_open(&st, url_of(schema_of("opts"), NULL), &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "postgresql: max_size_bytes is not supported");
    /* No server there: a clear I/O error, not a hang. */
    int port = vt_pg_free_port();
    snprintf(url, sizeof(url), "postgresql://vigil@127.0.0.1:%d/vigil?connect_timeout=2", port);
    ck_assert_int_eq(vigil_store_open(&st, url, NULL), VIGIL_EIO);
    vt_assert_error(VIGIL_EIO, "postgresql: cannot connect to 127.0.0.1:");
}
END_TEST

START_TEST(password_from_env_or_file)
{
    unsetenv("PGPASSWORD");
    setenv("PGPASSFILE", "/nonexistent/pgpass", 1);
    char url[1200];
    vigil_store *st = NULL;
    /* TCP needs the password (scram-sha-256); without one: refused */
    snprintf(url, sizeof(url), "postgresql://vigil@127.0.0.1:%d/vigil?schema=%s", g_server.port,
             schema_of("pw"));
    ck_assert_int_eq(vigil_store_open(&st, url, NULL), VIGIL_EIO);
    vt_assert_error(VIGIL_EIO, "password");
    /* a named variable */
    setenv("VT_PG_STORE_PASSWORD", VT_PG_PASSWORD, 1);
    snprintf(url, sizeof(url),
             "postgresql://vigil@127.0.0.1:%d/vigil?schema=%s&password_env=VT_PG_STORE_PASSWORD",
             g_server.port, schema_of("pw"));
    st = open_ok(url);
    vigil_store_close(st);
    /* a wrong one: the server's answer, without the password */
    setenv("VT_PG_STORE_PASSWORD", "wrong-one", 1);
    ck_assert_int_eq(vigil_store_open(&st, url, NULL), VIGIL_EIO);
    vt_assert_error(VIGIL_EIO, "password authentication failed");
    ck_assert_ptr_null(strstr(vigil_error_last()->message, "wrong-one"));
    /* a file (0600) */
    const char *pw =
        vt_write_file(vt_tmpdir(), "pw", VT_PG_PASSWORD "\n", strlen(VT_PG_PASSWORD) + 1);
    ck_assert_int_eq(chmod(pw, 0600), 0);
    snprintf(url, sizeof(url), "postgresql://vigil@127.0.0.1:%d/vigil?schema=%s&password_file=%s",
             g_server.port, schema_of("pw"), pw);
    st = open_ok(url);
    vigil_store_close(st);
    /* libpq's own PGPASSWORD */
    setenv("PGPASSWORD", VT_PG_PASSWORD, 1);
    snprintf(url, sizeof(url), "postgres://vigil@127.0.0.1:%d/vigil?schema=%s", g_server.port,
             schema_of("pw"));
    st = open_ok(url);
    ck_assert_str_eq(vigil_store_scheme(st), "postgres");
    vigil_store_close(st);
    unsetenv("PGPASSWORD");
}
END_TEST

/* ---- the pool --------------------------------------------------------------------------- */

static long long sessions(PGconn *c, const char *app)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s'", app);
    return raw_int(c, sql, NULL, 0);
}

START_TEST(pool_size)
{
    PGconn *c = raw(&g_server, NULL);
    const char *schema = schema_of("pool");
    vigil_store *st = open_ok(url_of(schema, "&pool=3&application_name=vt_pool3"));
    ck_assert_int_eq(sessions(c, "vt_pool3"), 3);
    vigil_store *st2 = open_ok(url_of(schema, "&application_name=vt_pool_default"));
    ck_assert_int_eq(sessions(c, "vt_pool_default"), 2);
    /* the calls use the connections; all stay open */
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    for (int i = 0; i < 10; i++) {
        vigil_batch_clear(b);
        add(b, "m", i, 1000 + i, "h", "a");
        write_ok(st, b);
        ck_assert_int_eq(count_samples(st2), i + 1);
    }
    ck_assert_int_eq(sessions(c, "vt_pool3"), 3);
    vigil_store_close(st);
    vigil_store_close(st2);
    /* closed: the server ends those sessions (asynchronously) */
    int64_t deadline = vt_pg_now_ms() + 10000;
    while (sessions(c, "vt_pool3") != 0 && vt_pg_now_ms() < deadline)
        poll(NULL, 0, 10);
    ck_assert_int_eq(sessions(c, "vt_pool3"), 0);
    vigil_batch_free(b);
    PQfinish(c);
}
END_TEST

/* ---- failover ------------------------------------------------------------------------------ */

START_TEST(reconnect_after_restart)
{
    /* a server of this test's own, to restart */
    vt_pg own;
    int up = vt_pg_start(&own, "restart");
    ck_assert_msg(up == 1, "%s", own.err);
    char url[1200];
    snprintf(url, sizeof(url), "%s&schema=r&pool=2&application_name=vt_restart", own.url);
    vigil_store *st = open_ok(url);
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    add(b, "m", 1, 1000, "h", "a");
    write_ok(st, b);
    ck_assert_int_eq(vt_pg_restart(&own), 0);
    /* every connection broke; the next calls reconnect */
    ck_assert_int_eq(count_samples(st), 1);
    vigil_batch_clear(b);
    add(b, "m", 2, 2000, "h", "a");
    write_ok(st, b);
    ck_assert_int_eq(count_samples(st), 2);
    vigil_store_action a = {0};
    a.id = "after-restart";
    a.action = "x";
    a.target = "t";
    a.duration_ms = -1;
    int created = 0;
    ck_assert_int_eq(vigil_store_action_put(st, &a, &created), VIGIL_OK);
    ck_assert_int_eq(created, 1);

    /* the server ends the sessions (an administrator, a failover proxy) */
    PGconn *c = raw(&own, NULL);
    ck_assert_int_ge(raw_int(c,
                             "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                             " WHERE application_name = 'vt_restart'",
                             NULL, 0),
                     1);
    PQfinish(c);
    ck_assert_int_eq(count_samples(st), 2);
    ck_assert_int_eq(vigil_store_action_put(st, &a, &created), VIGIL_OK);
    ck_assert_int_eq(created, 0);

    /* the server down: a clear error, and the store works again once it is back */
    vt_pg_halt(&own);
    vigil_batch_clear(b);
    add(b, "m", 3, 3000, "h", "a");
    ck_assert_int_eq(vigil_store_write(st, b, NULL), VIGIL_EIO);
    vt_assert_error(VIGIL_EIO, "postgresql: cannot connect to local");
    vigil_store_query q = VIGIL_STORE_QUERY_INIT;
    int n = 0;
    ck_assert_int_eq(vigil_store_query_run(st, &q, count_cb, &n), VIGIL_EIO);
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(vt_pg_restart(&own), 0);
    write_ok(st, b);
    ck_assert_int_eq(count_samples(st), 3);
    vigil_store_close(st);
    vigil_batch_free(b);
    vt_pg_stop(&own);
}
END_TEST

/* ---- partitions and retention --------------------------------------------------------------- */

static long long partitions(PGconn *c, const char *schema)
{
    char sql[400];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
             " WHERE i.inhparent = '%s.samples'::regclass AND c.relname ~ '^samples_d[0-9]+$'",
             schema);
    return raw_int(c, sql, NULL, 0);
}

START_TEST(partitions_created_and_dropped)
{
    const char *schema = schema_of("parts");
    vigil_store *st = open_ok(url_of(schema, NULL));
    PGconn *c = raw(&g_server, schema);
    ck_assert_int_eq(partitions(c, schema), 0);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t today = (int64_t)now.tv_sec / 86400 * DAY_MS; /* start of today, UTC */
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    /* 10 samples on each of 6 days, two series; one ancient sample (the
     * default partition takes it) */
    for (int d = 0; d < 6; d++)
        for (int i = 0; i < 5; i++) {
            add(b, "m", i, today - d * DAY_MS + i * 1000, "h", "a");
            add(b, "m", i, today - d * DAY_MS + i * 1000, "h", "b");
        }
    add(b, "m", 1, 1000, "h", "a");
    write_ok(st, b);
    ck_assert_int_eq(partitions(c, schema), 6);
    ck_assert_int_eq(raw_int(c, "SELECT count(*) FROM samples_default", NULL, 0), 1);
    char sql[200];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM samples_d%lld",
             (long long)(today / DAY_MS - 5));
    ck_assert_int_eq(raw_int(c, sql, NULL, 0), 10);
    ck_assert_int_eq(count_samples(st), 61);
    /* a second handle finds the partitions (it creates none twice) */
    vigil_store *st2 = open_ok(url_of(schema, NULL));
    write_ok(st2, b);
    ck_assert_int_eq(partitions(c, schema), 6);

    /* Keep the last 2 days and half of the third: days -5..-3 are dropped
     * whole (3 partitions, 30 samples), day -2 loses its first 3 seconds
     * (6 samples), the ancient sample goes. */
    vigil_store_retention_result r = VIGIL_STORE_RETENTION_RESULT_INIT;
    ck_assert_int_eq(vigil_store_retain(st, today - 2 * DAY_MS + 3000, NULL, &r), VIGIL_OK);
    ck_assert_int_eq(r.done, 1);
    ck_assert_uint_eq(r.samples_deleted, 30 + 6 + 1);
    ck_assert_int_eq(partitions(c, schema), 3);
    ck_assert_int_eq(count_samples(st), 61 - 37);
    ck_assert_int_eq(count_samples(st2), 61 - 37);
    /* nothing older left: another pass deletes nothing */
    ck_assert_int_eq(vigil_store_retain(st, today - 2 * DAY_MS + 3000, NULL, &r), VIGIL_OK);
    ck_assert_uint_eq(r.samples_deleted, 0);
    ck_assert_int_eq(r.done, 1);
    /* a write to a dropped day (from the handle that still knew it) lands,
     * in a partition created again */
    vigil_batch_clear(b);
    add(b, "m", 9, today - 4 * DAY_MS, "h", "a");
    write_ok(st2, b);
    write_ok(st, b);
    ck_assert_int_eq(count_samples(st), 61 - 37 + 1);
    /* Retention in chunks of 4 rows: whole partitions still go at once. */
    vigil_store_retention_options o = VIGIL_STORE_RETENTION_OPTIONS_INIT;
    o.chunk_rows = 4;
    ck_assert_int_eq(vigil_store_retain(st, INT64_MAX, &o, &r), VIGIL_OK);
    ck_assert_int_eq(r.done, 1);
    ck_assert_uint_eq(r.samples_deleted, 25);
    ck_assert_int_eq(count_samples(st), 0);
    ck_assert_int_eq(partitions(c, schema), 0);
    vigil_store_close(st2);
    vigil_store_close(st);
    vigil_batch_free(b);
    PQfinish(c);
}
END_TEST

/* ---- concurrency and the tail ------------------------------------------------------------------
 */

#define WRITERS 2
#define BATCHES 150
#define PER     8

typedef struct writer {
    const char *url;
    int id;
    int failed;
    char err[256];
} writer;

static void *writer_main(void *arg)
{
    writer *w = arg;
    vigil_store *st = NULL;
    if (vigil_store_open(&st, w->url, NULL) != VIGIL_OK) {
        w->failed = 1;
        snprintf(w->err, sizeof(w->err), "open: %s", vigil_error_last()->message);
        return NULL;
    }
    vigil_batch *b = NULL;
    vigil_batch_new(&b);
    char agent[16], bid[32], v[16];
    snprintf(agent, sizeof(agent), "w%d", w->id);
    for (int i = 0; i < BATCHES && !w->failed; i++) {
        vigil_batch_clear(b);
        vigil_batch_set_agent(b, agent);
        snprintf(bid, sizeof(bid), "b%d", i);
        vigil_batch_set_id(b, bid);
        for (int k = 0; k < PER; k++) {
            /* a series of its own, and one both writers create and write */
            snprintf(v, sizeof(v), "%d", k);
            vigil_tag tags[2] = {{"k", v}, {"w", agent}};
            vigil_metric m = {
                "own", (double)(w->id * 100000 + i * PER + k), i * PER + k + 1, tags, 2, NULL};
            vigil_batch_add(b, &m);
        }
        vigil_tag shared = {"i", bid};
        vigil_metric m = {"shared", (double)w->id, w->id + 1, &shared, 1, NULL};
        vigil_batch_add(b, &m);
        if (vigil_store_write(st, b, NULL) != VIGIL_OK) {
            w->failed = 1;
            snprintf(w->err, sizeof(w->err), "write: %s", vigil_error_last()->message);
        }
    }
    vigil_batch_free(b);
    vigil_store_close(st);
    return NULL;
}

typedef struct seen {
    unsigned char own[WRITERS][BATCHES * PER];
    int shared[WRITERS];
    int dups, bad, n;
} seen;

static int tail_cb(const vigil_store_series *s, const vigil_store_point *p, void *payload)
{
    seen *x = payload;
    x->n++;
    if (strcmp(s->name, "shared") == 0) {
        int w = (int)p->value;
        if (w < 0 || w >= WRITERS)
            x->bad++;
        else
            x->shared[w]++;
        return 0;
    }
    long long v = (long long)p->value;
    int w = (int)(v / 100000), i = (int)(v % 100000);
    if (strcmp(s->name, "own") != 0 || s->ntags != 2 || w < 0 || w >= WRITERS || i < 0 ||
        i >= BATCHES * PER || p->ts_ms != i + 1) {
        x->bad++;
        return 0;
    }
    if (x->own[w][i]++)
        x->dups++;
    return 0;
}

START_TEST(two_handles_write_at_once_and_the_tail_sees_each_sample_once)
{
    const char *schema = schema_of("conc");
    const char *url = url_of(schema, NULL);
    vigil_store *reader = open_ok(url);
    char cursor[VIGIL_STORE_TAIL_CURSOR_MAX + 1], next[VIGIL_STORE_TAIL_CURSOR_MAX + 1];
    seen *x = calloc(1, sizeof(*x));
    ck_assert_int_eq(vigil_store_tail(reader, NULL, 10, tail_cb, x, cursor, sizeof(cursor)),
                     VIGIL_OK);
    ck_assert_int_eq(strncmp(cursor, "t1:", 3), 0);
    ck_assert_int_eq(x->n, 0);
    writer w[WRITERS];
    pthread_t t[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        w[i] = (writer){url, i, 0, ""};
        ck_assert_int_eq(pthread_create(&t[i], NULL, writer_main, &w[i]), 0);
    }
    /* tail while they write, in small steps */
    const int want = WRITERS * BATCHES * (PER + 1);
    int64_t deadline = vt_pg_now_ms() + 60000;
    while (x->n < want && vt_pg_now_ms() < deadline) {
        int rc = vigil_store_tail(reader, cursor, 37, tail_cb, x, next, sizeof(next));
        ck_assert_msg(rc == VIGIL_OK, "tail: %s", vigil_error_last()->message);
        memcpy(cursor, next, sizeof(next));
    }
    for (int i = 0; i < WRITERS; i++) {
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
        ck_assert_msg(!w[i].failed, "writer %d: %s", i, w[i].err);
    }
    ck_assert_int_eq(x->bad, 0);
    ck_assert_int_eq(x->dups, 0);
    ck_assert_int_eq(x->n, want);
    for (int i = 0; i < WRITERS; i++) {
        ck_assert_int_eq(x->shared[i], BATCHES);
        for (int k = 0; k < BATCHES * PER; k++)
            ck_assert_msg(x->own[i][k] == 1, "writer %d sample %d seen %d times", i, k,
                          x->own[i][k]);
    }
    /* nothing more */
    ck_assert_int_eq(vigil_store_tail(reader, cursor, 100, tail_cb, x, next, sizeof(next)),
                     VIGIL_OK);
    ck_assert_int_eq(x->n, want);
    ck_assert_str_eq(next, cursor);
    /* the store holds every sample once: own ones and the shared series */
    vigil_store_query q = VIGIL_STORE_QUERY_INIT;
    q.name = "own";
    int n = 0;
    ck_assert_int_eq(vigil_store_query_run(reader, &q, count_cb, &n), VIGIL_OK);
    ck_assert_int_eq(n, WRITERS * BATCHES * PER);
    q.name = "shared";
    n = 0;
    ck_assert_int_eq(vigil_store_query_run(reader, &q, count_cb, &n), VIGIL_OK);
    ck_assert_int_eq(n, BATCHES * WRITERS);
    /* a cursor it did not make */
    ck_assert_int_eq(vigil_store_tail(reader, "t1:x:1:2", 10, tail_cb, x, next, sizeof(next)),
                     VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "the tail cursor \"t1:x:1:2\" is not one this backend made");
    vigil_store_close(reader);
    free(x);
}
END_TEST

typedef struct order {
    char out[512];
    int n;
} order;

static int order_cb(const vigil_store_series *s, const vigil_store_point *p, void *payload)
{
    order *o = payload;
    size_t len = strlen(o->out);
    snprintf(o->out + len, sizeof(o->out) - len, "%s@%lld=%g;", s->key, (long long)p->ts_ms,
             p->value);
    o->n++;
    return 0;
}

START_TEST(tail_waits_for_an_older_open_transaction)
{
    const char *schema = schema_of("order");
    vigil_store *st = open_ok(url_of(schema, NULL));
    char cursor[VIGIL_STORE_TAIL_CURSOR_MAX + 1], next[VIGIL_STORE_TAIL_CURSOR_MAX + 1];
    order o;
    memset(&o, 0, sizeof(o));
    ck_assert_int_eq(vigil_store_tail(st, "", 10, order_cb, &o, cursor, sizeof(cursor)), VIGIL_OK);
    /* another hub's transaction starts writing first (it has the older
     * transaction id) and commits last */
    PGconn *c = raw(&g_server, schema);
    raw_ok(c, "BEGIN");
    raw_ok(c, "INSERT INTO series(name, tags) VALUES('slow', '')");
    raw_ok(c, "INSERT INTO tail_log(ms, series, ts, value, error) SELECT 0, ARRAY[id],"
              " ARRAY[5::bigint], ARRAY[1.5::float8], ARRAY[NULL::text] FROM series"
              " WHERE name = 'slow'");
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    add(b, "fast", 2, 7, NULL, NULL);
    write_ok(st, b);
    /* committed, but behind a transaction still open: not yet readable */
    ck_assert_int_eq(vigil_store_tail(st, cursor, 10, order_cb, &o, next, sizeof(next)), VIGIL_OK);
    ck_assert_int_eq(o.n, 0);
    ck_assert_str_eq(next, cursor);
    raw_ok(c, "COMMIT");
    /* now both, the older transaction's first */
    ck_assert_int_eq(vigil_store_tail(st, cursor, 10, order_cb, &o, next, sizeof(next)), VIGIL_OK);
    ck_assert_str_eq(o.out, "slow@5=1.5;fast@7=2;");
    /* one at a time gives the same, each once */
    memset(&o, 0, sizeof(o));
    char c1[VIGIL_STORE_TAIL_CURSOR_MAX + 1];
    ck_assert_int_eq(vigil_store_tail(st, cursor, 1, order_cb, &o, c1, sizeof(c1)), VIGIL_OK);
    ck_assert_int_eq(vigil_store_tail(st, c1, 1, order_cb, &o, next, sizeof(next)), VIGIL_OK);
    ck_assert_int_eq(vigil_store_tail(st, next, 1, order_cb, &o, c1, sizeof(c1)), VIGIL_OK);
    ck_assert_str_eq(o.out, "slow@5=1.5;fast@7=2;");
    ck_assert_str_eq(c1, next);
    PQfinish(c);
    vigil_batch_free(b);
    vigil_store_close(st);
}
END_TEST

/* ---- leases ------------------------------------------------------------------------------------
 */

START_TEST(leases_on_the_server)
{
    const char *schema = schema_of("lease");
    vigil_store *a = open_ok(url_of(schema, NULL));
    vigil_store *b = open_ok(url_of(schema, NULL));
    vigil_store_lease l = VIGIL_STORE_LEASE_INIT;
    ck_assert_int_eq(vigil_store_lease_get(a, "leader", &l), VIGIL_ENOTFOUND);
    ck_assert_int_eq(vigil_store_lease_acquire(a, "leader", "hub-a", 60000, &l), VIGIL_OK);
    ck_assert_int_eq(l.held, 1);
    ck_assert_uint_eq(l.epoch, 1);
    ck_assert_str_eq(l.holder, "hub-a");
    ck_assert_int_ge(l.expires_ms - l.now_ms, 59000);
    ck_assert_int_eq(vigil_store_lease_acquire(b, "leader", "hub-b", 60000, &l), VIGIL_OK);
    ck_assert_int_eq(l.held, 0);
    ck_assert_str_eq(l.holder, "hub-a");
    ck_assert_uint_eq(l.epoch, 1);
    ck_assert_int_eq(vigil_store_lease_acquire(a, "leader", "hub-a", 60000, &l), VIGIL_OK);
    ck_assert_int_eq(l.held, 1);
    ck_assert_uint_eq(l.epoch, 1);
    ck_assert_int_eq(vigil_store_lease_release(b, "leader", "hub-b"), VIGIL_OK); /* not b's */
    ck_assert_int_eq(vigil_store_lease_get(b, "leader", &l), VIGIL_OK);
    ck_assert_int_eq(l.held, 1);
    ck_assert_int_eq(vigil_store_lease_release(a, "leader", "hub-a"), VIGIL_OK);
    ck_assert_int_eq(vigil_store_lease_acquire(b, "leader", "hub-b", 50, &l), VIGIL_OK);
    ck_assert_int_eq(l.held, 1);
    ck_assert_uint_eq(l.epoch, 2);
    /* b lets it expire (on the server's clock); a takes it over: epoch 3 */
    int64_t deadline = vt_pg_now_ms() + 10000;
    do {
        ck_assert_int_eq(vigil_store_lease_acquire(a, "leader", "hub-a", 60000, &l), VIGIL_OK);
    } while (!l.held && vt_pg_now_ms() < deadline);
    ck_assert_int_eq(l.held, 1);
    ck_assert_uint_eq(l.epoch, 3);
    ck_assert_int_eq(vigil_store_lease_get(b, "leader", &l), VIGIL_OK);
    ck_assert_str_eq(l.holder, "hub-a");
    ck_assert_uint_eq(l.epoch, 3);
    vigil_store_close(a);
    vigil_store_close(b);
}
END_TEST

/* ---- the database's own guards
 * -------------------------------------------------------------------- */

static int decision_cb(const vigil_store_decision *d, void *payload)
{
    (void)d;
    (*(int *)payload)++;
    return 0;
}

START_TEST(append_only_schema_version_and_read_only)
{
    const char *schema = schema_of("guards");
    vigil_store *st = open_ok(url_of(schema, NULL));
    vigil_store_decision d = {0, 1000, "p", NULL, NULL, NULL, NULL, "fired", NULL};
    ck_assert_int_eq(vigil_store_decision_append(st, &d, NULL), VIGIL_OK);
    vigil_store_audit a = {1, 1000, "result", NULL, NULL, NULL, "m1"};
    ck_assert_int_eq(vigil_store_audit_append(st, &a), VIGIL_OK);
    vigil_store_close(st);
    PGconn *c = raw(&g_server, schema);
    char err[512] = "";
    ck_assert_int_eq(raw_int(c, "DELETE FROM decisions", err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "decisions rows are append-only"));
    ck_assert_int_eq(raw_int(c, "UPDATE audit SET kind = 'x'", err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "audit rows are append-only"));
    ck_assert_int_eq(raw_int(c, "TRUNCATE audit", err, sizeof(err)), -1);
    ck_assert_int_eq(raw_int(c, "SELECT max(version) FROM vigil_schema", NULL, 0), 1);

    /* read-only: reads work, writes are refused before the server sees them */
    vigil_store_options o = VIGIL_STORE_OPTIONS_INIT;
    o.read_only = 1;
    ck_assert_int_eq(vigil_store_open(&st, url_of(schema, NULL), &o), VIGIL_OK);
    int decisions = 0;
    ck_assert_int_eq(vigil_store_decision_list(st, NULL, decision_cb, &decisions), VIGIL_OK);
    ck_assert_int_eq(decisions, 1);
    ck_assert_int_eq(vigil_store_decision_append(st, &d, NULL), VIGIL_EREADONLY);
    vt_assert_error(VIGIL_EREADONLY, "postgresql: decision append: the store is open read-only");
    vigil_store_close(st);
    ck_assert_int_eq(vigil_store_open(&st, url_of(schema_of("nothing"), NULL), &o),
                     VIGIL_EREADONLY);
    vt_assert_error(VIGIL_EREADONLY, "has no vigil schema and the store is open read-only");

    /* a schema written by a newer vigil is refused, untouched */
    raw_ok(c, "UPDATE vigil_schema SET version = 99");
    ck_assert_int_eq(vigil_store_open(&st, url_of(schema, NULL), NULL), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "has schema version 99, newer than the version 1");
    ck_assert_int_eq(raw_int(c, "SELECT max(version) FROM vigil_schema", NULL, 0), 99);

    raw_ok(c, "UPDATE vigil_schema SET version = 1");
    /* tail=off: writes keep no tail, and the tail is refused */
    st = open_ok(url_of(schema, "&tail=off"));
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    add(b, "m", 1, 1000, NULL, NULL);
    write_ok(st, b);
    vigil_batch_free(b);
    char cur[VIGIL_STORE_TAIL_CURSOR_MAX + 1];
    ck_assert_int_eq(vigil_store_tail(st, NULL, 10, count_cb, &decisions, cur, sizeof(cur)),
                     VIGIL_EUNSUPPORTED);
    vt_assert_error(VIGIL_EUNSUPPORTED, "postgresql: tail: the store was opened with tail=off");
    vigil_store_close(st);
    ck_assert_int_eq(raw_int(c, "SELECT count(*) FROM tail_log", NULL, 0), 0);

    /* stats are SQLite's write log figures */
    st = open_ok(url_of(schema, NULL));
    vigil_store_stats stats = VIGIL_STORE_STATS_INIT;
    ck_assert_int_eq(vigil_store_stats_get(st, &stats), VIGIL_EUNSUPPORTED);
    vigil_store_close(st);
    /* the built-in names are taken */
    vigil_store_registry *reg = NULL;
    ck_assert_int_eq(vigil_store_registry_new(&reg), VIGIL_OK);
    vigil_store_type t = *vigil_store_postgresql_type();
    ck_assert_int_eq(vigil_store_register(reg, &t), VIGIL_EEXISTS);
    t.name = "postgres";
    ck_assert_int_eq(vigil_store_register(reg, &t), VIGIL_EEXISTS);
    vigil_store_registry_free(reg);
    PQfinish(c);
}
END_TEST

/* ---- a server that stops answering --------------------------------------------------- */

/* Sends sig to the postmaster and its children (the backends): SIGSTOP
 * freezes the whole server as a hung host would. */
static void signal_server(const vt_pg *pg, int sig)
{
    ck_assert_int_eq(kill(pg->pid, sig), 0);
    DIR *d = opendir("/proc");
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char path[300], buf[512];
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        /* pid (comm) state ppid ...: comm may hold spaces, the last ')' ends it */
        const char *rp = strrchr(buf, ')');
        char state;
        int ppid;
        if (rp && sscanf(rp + 1, " %c %d", &state, &ppid) == 2 && ppid == pg->pid)
            kill((pid_t)atoi(e->d_name), sig);
    }
    closedir(d);
}

/* A call that times out: its code, its message (the operation, the timeout,
 * the server, never the password) and how long it took. */
static void assert_timed_out(int rc, int64_t t0, const char *what)
{
    int64_t took = vt_pg_now_ms() - t0;
    const char *msg = vigil_error_last()->message;
    ck_assert_msg(rc == VIGIL_ETIMEOUT, "%s: %d %s", what, rc, msg);
    ck_assert_msg(took >= 450 && took <= 3000, "%s took %lld ms", what, (long long)took);
    ck_assert_msg(strstr(msg, "postgresql: "), "%s: %s", what, msg);
    ck_assert_msg(strstr(msg, ": no answer from the server within 500 ms"), "%s: %s", what, msg);
    ck_assert_msg(strstr(msg, "127.0.0.1:"), "%s: %s", what, msg);
    ck_assert_ptr_null(strstr(msg, VT_PG_PASSWORD));
}

START_TEST(timeout_when_the_server_stops_answering)
{
    unsetenv("PGPASSWORD");
    setenv("PGPASSFILE", "/nonexistent/pgpass", 1);
    setenv("VT_PG_STORE_PASSWORD", VT_PG_PASSWORD, 1);
    /* a server of this test's own, to freeze */
    vt_pg own;
    int up = vt_pg_start(&own, "freeze");
    ck_assert_msg(up == 1, "%s", own.err);
    char url[1200];
    /* TCP (the keepalive defaults apply), one connection */
    snprintf(url, sizeof(url),
             "postgresql://vigil@127.0.0.1:%d/vigil?schema=f&pool=1&timeout=500ms"
             "&password_env=VT_PG_STORE_PASSWORD",
             own.port);
    vigil_store *st = open_ok(url);
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    add(b, "m", 1, 1000, "h", "a");
    write_ok(st, b);
    ck_assert_int_eq(count_samples(st), 1);

    signal_server(&own, SIGSTOP);
    /* a write: its statement waits 500 ms, then the connection is closed */
    vigil_batch_clear(b);
    add(b, "m", 2, 2000, "h", "a");
    int64_t t0 = vt_pg_now_ms();
    int rc = vigil_store_write(st, b, NULL);
    assert_timed_out(rc, t0, "write");
    ck_assert_ptr_nonnull(
        strstr(vigil_error_last()->message,
               "postgresql: starting a transaction: no answer from the server "
               "within 500 ms (timeout=); the connection was closed (127.0.0.1:"));
    /* a query: reconnecting waits 500 ms too */
    int n = 0;
    vigil_store_query q = VIGIL_STORE_QUERY_INIT;
    t0 = vt_pg_now_ms();
    rc = vigil_store_query_run(st, &q, count_cb, &n);
    assert_timed_out(rc, t0, "query");
    ck_assert_int_eq(n, 0);
    ck_assert_ptr_nonnull(strstr(vigil_error_last()->message, "cannot connect to 127.0.0.1:"));

    /* the server answers again: the next calls reconnect */
    signal_server(&own, SIGCONT);
    ck_assert_int_eq(count_samples(st), 1);
    write_ok(st, b);
    ck_assert_int_eq(count_samples(st), 2);

    /* a query on an open connection: its statement times out */
    signal_server(&own, SIGSTOP);
    n = 0;
    t0 = vt_pg_now_ms();
    rc = vigil_store_query_run(st, &q, count_cb, &n);
    assert_timed_out(rc, t0, "query on an open connection");
    ck_assert_int_eq(n, 0);
    ck_assert_ptr_null(strstr(vigil_error_last()->message, "cannot connect"));
    ck_assert_ptr_nonnull(strstr(vigil_error_last()->message, "; the connection was closed ("));
    signal_server(&own, SIGCONT);
    ck_assert_int_eq(count_samples(st), 2);

    vigil_batch_free(b);
    vigil_store_close(st);
    vt_pg_stop(&own);
}
END_TEST

static Suite *pg_suite(void)
{
    Suite *s = suite_create("store_pg");
    TCase *tc = tcase_create("postgresql");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, url_with_password_refused);
    tcase_add_test(tc, bad_urls_and_options);
    tcase_add_test(tc, password_from_env_or_file);
    tcase_add_test(tc, pool_size);
    tcase_add_test(tc, reconnect_after_restart);
    tcase_add_test(tc, partitions_created_and_dropped);
    tcase_add_test(tc, two_handles_write_at_once_and_the_tail_sees_each_sample_once);
    tcase_add_test(tc, tail_waits_for_an_older_open_transaction);
    tcase_add_test(tc, leases_on_the_server);
    tcase_add_test(tc, append_only_schema_version_and_read_only);
    tcase_add_test(tc, timeout_when_the_server_stops_answering);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    int up = vt_pg_start(&g_server, "test_store_pg");
    if (up == 0) {
        printf("test_store_pg: SKIP: %s\n", g_server.err);
        return EXIT_SUCCESS;
    }
    if (up < 0) {
        fprintf(stderr, "test_store_pg: cannot start PostgreSQL: %s\n", g_server.err);
        vt_pg_stop(&g_server);
        return EXIT_FAILURE;
    }
    SRunner *sr = srunner_create(pg_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    vt_pg_stop(&g_server);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
