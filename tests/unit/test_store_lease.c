/* Store leases and the tail: acquire, renew, takeover after expiry, epochs,
 * release, several connections racing for one lease, every bad argument,
 * read-only stores, version-2 backends; each lease test on a SQLite file and
 * on a private PostgreSQL server (tests/unit/pgtest.h; skipped with a
 * message when PostgreSQL is not installed), and the PostgreSQL tail:
 * samples committed by several connections, each returned once. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pgtest.h"
#include "testutil.h"
#include "vigil/sys/store.h"

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *tmp(void)
{
    static const char *dir;
    if (!dir)
        dir = vt_tmpdir();
    return dir;
}

static vt_pg g_server;
static int g_pg; /* the running test's backend: 1 PostgreSQL, 0 SQLite */

/* The URL under test: the PostgreSQL server's, else a SQLite file of `name`
 * in the temporary directory. */
static const char *store_url(const char *name)
{
    static char buf[4][1100];
    static int next;
    if (g_pg)
        return g_server.url;
    char *p = buf[next++ % 4];
    snprintf(p, 1100, "sqlite://%s/%s", tmp(), name);
    return p;
}

static vigil_store *open_store(const char *url)
{
    vigil_store *st = NULL;
    int rc = vigil_store_open(&st, url, NULL);
    ck_assert_msg(rc == VIGIL_OK, "open %s: %d %s", url, rc, vigil_error_last()->message);
    return st;
}

/* A lease name unique to this run, so that a shared database (a server
 * store) starts every test from a lease never taken. */
static const char *fresh(const char *base)
{
    static char buf[8][96];
    static int next;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char *p = buf[next++ % 8];
    snprintf(p, 96, "%s-%ld-%ld-%d", base, (long)getpid(), (long)ts.tv_nsec, next);
    return p;
}

static vigil_store_lease acquire(vigil_store *st, const char *name, const char *holder, int64_t ttl)
{
    vigil_store_lease l = VIGIL_STORE_LEASE_INIT;
    int rc = vigil_store_lease_acquire(st, name, holder, ttl, &l);
    ck_assert_msg(rc == VIGIL_OK, "acquire %s by %s: %d %s", name, holder, rc,
                  vigil_error_last()->message);
    ck_assert_uint_eq(l.version, VIGIL_STORE_LEASE_VERSION);
    return l;
}

/* Waits (deadline 10 s) until lease `name` has expired. */
static void wait_expired(vigil_store *st, const char *name)
{
    int64_t deadline = clock_ms(CLOCK_MONOTONIC) + 10000;
    for (;;) {
        vigil_store_lease l = VIGIL_STORE_LEASE_INIT;
        ck_assert_int_eq(vigil_store_lease_get(st, name, &l), VIGIL_OK);
        if (!l.held)
            return;
        ck_assert_msg(clock_ms(CLOCK_MONOTONIC) < deadline, "lease %s still held after 10 s", name);
        struct timespec d = {0, 5 * 1000 * 1000};
        nanosleep(&d, NULL);
    }
}

static void acquire_renew_takeover_release(void)
{
    vigil_store *st = open_store(store_url("lease.db"));
    const char *name = fresh("leader");
    vigil_store_lease l = VIGIL_STORE_LEASE_INIT;
    ck_assert_int_eq(vigil_store_lease_get(st, name, &l), VIGIL_ENOTFOUND);
    vt_assert_error(VIGIL_ENOTFOUND, "was ever taken");
    ck_assert_uint_eq(l.version, VIGIL_STORE_LEASE_VERSION);

    /* first holder: epoch 1, until now + ttl on the backend's clock */
    l = acquire(st, name, "hub-a", 60000);
    ck_assert_int_eq(l.held, 1);
    ck_assert_str_eq(l.holder, "hub-a");
    ck_assert_uint_eq(l.epoch, 1);
    ck_assert_int_eq(l.expires_ms - l.now_ms, 60000);
    ck_assert_int_ge(l.now_ms, clock_ms(CLOCK_REALTIME) - 60000);
    int64_t first_expiry = l.expires_ms;

    /* another holder while it runs: nothing changes */
    l = acquire(st, name, "hub-b", 60000);
    ck_assert_int_eq(l.held, 0);
    ck_assert_str_eq(l.holder, "hub-a");
    ck_assert_uint_eq(l.epoch, 1);
    ck_assert_int_eq(l.expires_ms, first_expiry);

    /* get */
    vigil_store_lease g = VIGIL_STORE_LEASE_INIT;
    ck_assert_int_eq(vigil_store_lease_get(st, name, &g), VIGIL_OK);
    ck_assert_int_eq(g.held, 1);
    ck_assert_str_eq(g.holder, "hub-a");
    ck_assert_uint_eq(g.epoch, 1);
    ck_assert_int_eq(g.expires_ms, first_expiry);

    /* renewal by the holder keeps the epoch, moves the expiry (here nearer) */
    l = acquire(st, name, "hub-a", 30);
    ck_assert_int_eq(l.held, 1);
    ck_assert_uint_eq(l.epoch, 1);
    ck_assert_int_eq(l.expires_ms - l.now_ms, 30);

    /* takeover after expiry: epoch 2 */
    wait_expired(st, name);
    ck_assert_int_eq(vigil_store_lease_get(st, name, &g), VIGIL_OK);
    ck_assert_int_eq(g.held, 0);
    ck_assert_str_eq(g.holder, "hub-a");
    l = acquire(st, name, "hub-b", 60000);
    ck_assert_int_eq(l.held, 1);
    ck_assert_str_eq(l.holder, "hub-b");
    ck_assert_uint_eq(l.epoch, 2);

    /* the old holder is refused now */
    l = acquire(st, name, "hub-a", 60000);
    ck_assert_int_eq(l.held, 0);
    ck_assert_str_eq(l.holder, "hub-b");
    ck_assert_uint_eq(l.epoch, 2);

    /* release by another than the holder: nothing changes */
    ck_assert_int_eq(vigil_store_lease_release(st, name, "hub-a"), VIGIL_OK);
    ck_assert_int_eq(vigil_store_lease_get(st, name, &g), VIGIL_OK);
    ck_assert_int_eq(g.held, 1);
    ck_assert_str_eq(g.holder, "hub-b");

    /* release by the holder: expired at once, epoch kept */
    ck_assert_int_eq(vigil_store_lease_release(st, name, "hub-b"), VIGIL_OK);
    ck_assert_int_eq(vigil_store_lease_get(st, name, &g), VIGIL_OK);
    ck_assert_int_eq(g.held, 0);
    ck_assert_uint_eq(g.epoch, 2);
    ck_assert_int_le(g.expires_ms, g.now_ms);
    /* a second release changes nothing */
    ck_assert_int_eq(vigil_store_lease_release(st, name, "hub-b"), VIGIL_OK);

    /* the next holder: epoch 3, at once (no waiting for the ttl) */
    l = acquire(st, name, "hub-a", 60000);
    ck_assert_int_eq(l.held, 1);
    ck_assert_uint_eq(l.epoch, 3);

    /* a lease never taken: release is a no-op, get ENOTFOUND */
    const char *other = fresh("other");
    ck_assert_int_eq(vigil_store_lease_release(st, other, "hub-a"), VIGIL_OK);
    ck_assert_int_eq(vigil_store_lease_get(st, other, &g), VIGIL_ENOTFOUND);
    /* leases are independent */
    l = acquire(st, other, "hub-b", 60000);
    ck_assert_uint_eq(l.epoch, 1);
    ck_assert_int_eq(l.held, 1);
    vigil_store_close(st);
}

/* Two connections (two hubs) on one database see the same lease. */
static void two_connections_share_a_lease(void)
{
    const char *url = store_url("shared.db");
    vigil_store *a = open_store(url);
    vigil_store *b = open_store(url);
    const char *name = fresh("leader");
    vigil_store_lease l = acquire(a, name, "hub-a", 40);
    ck_assert_int_eq(l.held, 1);
    l = acquire(b, name, "hub-b", 60000);
    ck_assert_int_eq(l.held, 0);
    ck_assert_str_eq(l.holder, "hub-a");
    wait_expired(b, name);
    l = acquire(b, name, "hub-b", 60000);
    ck_assert_int_eq(l.held, 1);
    ck_assert_uint_eq(l.epoch, 2);
    l = acquire(a, name, "hub-a", 60000);
    ck_assert_int_eq(l.held, 0);
    ck_assert_str_eq(l.holder, "hub-b");
    ck_assert_uint_eq(l.epoch, 2);
    vigil_store_close(a);
    /* a store reopened on the same database still sees it */
    a = open_store(url);
    vigil_store_lease g = VIGIL_STORE_LEASE_INIT;
    ck_assert_int_eq(vigil_store_lease_get(a, name, &g), VIGIL_OK);
    ck_assert_str_eq(g.holder, "hub-b");
    ck_assert_uint_eq(g.epoch, 2);
    vigil_store_close(a);
    vigil_store_close(b);
}

/* Racers with a connection each: at every round exactly one holds it, and
 * the epochs of the winners grow by one per change of holder. */
typedef struct racer {
    const char *url, *name;
    char holder[32];
    pthread_barrier_t *start;
    int won;
    uint64_t epoch;
    int rc;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    vigil_store *st = NULL;
    r->rc = vigil_store_open(&st, r->url, NULL);
    pthread_barrier_wait(r->start);
    if (r->rc == VIGIL_OK) {
        vigil_store_lease l = VIGIL_STORE_LEASE_INIT;
        r->rc = vigil_store_lease_acquire(st, r->name, r->holder, 60000, &l);
        r->won = l.held;
        r->epoch = l.epoch;
    }
    vigil_store_close(st);
    return NULL;
}

static void racing_connections_one_winner(void)
{
    enum { N = 6, ROUNDS = 4 };
    const char *url = store_url("race.db");
    vigil_store *admin = open_store(url);
    const char *name = fresh("race");
    uint64_t last_epoch = 0;
    char last_holder[VIGIL_STORE_LEASE_HOLDER_MAX + 1] = "";
    for (int round = 0; round < ROUNDS; round++) {
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, N);
        racer r[N];
        pthread_t t[N];
        for (int i = 0; i < N; i++) {
            memset(&r[i], 0, sizeof(r[i]));
            r[i].url = url;
            r[i].name = name;
            r[i].start = &start;
            snprintf(r[i].holder, sizeof(r[i].holder), "hub-%d-%d", round, i);
            ck_assert_int_eq(pthread_create(&t[i], NULL, race, &r[i]), 0);
        }
        int winners = 0;
        for (int i = 0; i < N; i++) {
            pthread_join(t[i], NULL);
            ck_assert_msg(r[i].rc == VIGIL_OK, "racer %d: %d", i, r[i].rc);
            winners += r[i].won;
        }
        pthread_barrier_destroy(&start);
        ck_assert_int_eq(winners, 1);
        vigil_store_lease g = VIGIL_STORE_LEASE_INIT;
        ck_assert_int_eq(vigil_store_lease_get(admin, name, &g), VIGIL_OK);
        ck_assert_uint_eq(g.epoch, last_epoch + 1);
        ck_assert_str_ne(g.holder, last_holder);
        for (int i = 0; i < N; i++)
            ck_assert_uint_eq(r[i].epoch, g.epoch);
        last_epoch = g.epoch;
        snprintf(last_holder, sizeof(last_holder), "%s", g.holder);
        /* free it for the next round */
        ck_assert_int_eq(vigil_store_lease_release(admin, name, g.holder), VIGIL_OK);
    }
    vigil_store_close(admin);
}

static void bad_arguments(void)
{
    vigil_store *st = open_store(store_url("bad.db"));
    vigil_store_lease l = VIGIL_STORE_LEASE_INIT;
    char longer[VIGIL_STORE_LEASE_NAME_MAX + 2];
    memset(longer, 'x', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    char exact[VIGIL_STORE_LEASE_NAME_MAX + 1];
    memset(exact, 'y', sizeof(exact) - 1);
    exact[sizeof(exact) - 1] = '\0';

    ck_assert_int_eq(vigil_store_lease_acquire(NULL, "n", "h", 1000, &l), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "store lease acquire: NULL argument");
    ck_assert_int_eq(vigil_store_lease_acquire(st, "n", "h", 1000, NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "store lease acquire: NULL argument");
    ck_assert_int_eq(vigil_store_lease_acquire(st, NULL, "h", 1000, &l), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "store lease acquire: the name must not be NULL");
    ck_assert_int_eq(vigil_store_lease_acquire(st, "", "h", 1000, &l), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "store lease acquire: the name must not be empty");
    ck_assert_int_eq(vigil_store_lease_acquire(st, "n", "", 1000, &l), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "store lease acquire: the holder must not be empty");
    ck_assert_int_eq(vigil_store_lease_acquire(st, "n", NULL, 1000, &l), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "the holder must not be NULL");
    ck_assert_int_eq(vigil_store_lease_acquire(st, longer, "h", 1000, &l), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT,
                    "store lease acquire: the name is 129 bytes, more than the limit of 128");
    ck_assert_int_eq(vigil_store_lease_acquire(st, "n", longer, 1000, &l), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "the holder is 129 bytes, more than the limit of 128");
    ck_assert_int_eq(vigil_store_lease_acquire(st, "n\xff", "h", 1000, &l), VIGIL_EENCODING);
    vt_assert_error(VIGIL_EENCODING, "store lease acquire: the name is not valid UTF-8");
    ck_assert_int_eq(vigil_store_lease_acquire(st, "n", "h\xc3", 1000, &l), VIGIL_EENCODING);
    vt_assert_error(VIGIL_EENCODING, "the holder is not valid UTF-8");
    ck_assert_int_eq(vigil_store_lease_acquire(st, "n", "h", 0, &l), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "store lease acquire: ttl_ms 0 is out of range (1 to 86400000)");
    ck_assert_int_eq(vigil_store_lease_acquire(st, "n", "h", -5, &l), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "ttl_ms -5 is out of range");
    ck_assert_int_eq(vigil_store_lease_acquire(st, "n", "h", VIGIL_STORE_LEASE_TTL_MAX + 1, &l),
                     VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "ttl_ms 86400001 is out of range");
    l.version = 0;
    ck_assert_int_eq(vigil_store_lease_acquire(st, "n", "h", 1000, &l), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "store lease acquire: lease version 0 is not supported");
    l.version = VIGIL_STORE_LEASE_VERSION + 1;
    ck_assert_int_eq(vigil_store_lease_get(st, "n", &l), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "store lease get: lease version 2 is not supported");

    /* limits are inclusive; a failed call zeroes out but for its version */
    vigil_store_lease ok = VIGIL_STORE_LEASE_INIT;
    const char *name = fresh("edge");
    vigil_store_lease got = acquire(st, name, exact, VIGIL_STORE_LEASE_TTL_MAX);
    ck_assert_str_eq(got.holder, exact);
    ck_assert_int_eq(got.expires_ms - got.now_ms, VIGIL_STORE_LEASE_TTL_MAX);
    ok = got;
    ck_assert_int_eq(vigil_store_lease_acquire(st, name, "", 1, &ok), VIGIL_EINVAL);
    ck_assert_uint_eq(ok.version, VIGIL_STORE_LEASE_VERSION);
    ck_assert_uint_eq(ok.epoch, 0);
    ck_assert_str_eq(ok.holder, "");

    ck_assert_int_eq(vigil_store_lease_release(NULL, "n", "h"), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "store lease release: NULL argument");
    ck_assert_int_eq(vigil_store_lease_release(st, "", "h"), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "store lease release: the name must not be empty");
    ck_assert_int_eq(vigil_store_lease_release(st, "n", longer), VIGIL_ELIMIT);
    l.version = VIGIL_STORE_LEASE_VERSION;
    ck_assert_int_eq(vigil_store_lease_get(NULL, "n", &l), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_store_lease_get(st, longer, &l), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "store lease get: the name is 129 bytes");
    ck_assert_int_eq(vigil_store_lease_get(st, NULL, &l), VIGIL_EINVAL);
    vigil_store_close(st);
}

static int stop_cb(const vigil_store_series *series, const vigil_store_point *p, void *payload)
{
    (void)series;
    (void)p;
    (void)payload;
    return 42;
}

static int count_cb(const vigil_store_series *series, const vigil_store_point *p, void *payload)
{
    (void)series;
    (void)p;
    (*(int *)payload)++;
    return 0;
}

#define BOTH(name)            \
    START_TEST(name##_sqlite) \
    {                         \
        g_pg = 0;             \
        name();               \
    }                         \
    END_TEST                  \
    START_TEST(name##_pg)     \
    {                         \
        g_pg = 1;             \
        name();               \
    }                         \
    END_TEST

BOTH(acquire_renew_takeover_release)
BOTH(two_connections_share_a_lease)
BOTH(racing_connections_one_winner)
BOTH(bad_arguments)

/* ---- the PostgreSQL tail -------------------------------------------------------- */

typedef struct seen {
    int count[3][200]; /* per writer, per sample index */
    int n;
    int other;
} seen;

static int seen_cb(const vigil_store_series *series, const vigil_store_point *p, void *payload)
{
    seen *s = payload;
    int w = -1;
    for (size_t i = 0; i < series->ntags; i++)
        if (strcmp(series->tags[i].key, "writer") == 0)
            w = atoi(series->tags[i].value);
    if (w < 0 || w > 2 || strcmp(series->name, "tail_test") != 0 || p->value < 0 ||
        p->value >= 200) {
        s->other++;
        return 0;
    }
    s->count[w][(int)p->value]++;
    s->n++;
    return 0;
}

/* One sample of writer w with index i (value i). */
static void write_one(vigil_store *st, int w, int i, int64_t base_ts)
{
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    char wv[8];
    snprintf(wv, sizeof(wv), "%d", w);
    vigil_tag tags[1] = {{"writer", wv}};
    vigil_metric m = {"tail_test", (double)i, base_ts + i, tags, 1, NULL};
    ck_assert_int_eq(vigil_batch_add(b, &m), VIGIL_OK);
    ck_assert_int_eq(vigil_store_write(st, b, NULL), VIGIL_OK);
    vigil_batch_free(b);
}

/* Three connections commit interleaved (one holding a transaction open while
 * the others commit is the backend's business: its tail reads only below
 * the oldest running transaction); successive reads of 7 samples at most
 * return each sample exactly once, none skipped. */
START_TEST(pg_tail_exactly_once)
{
    g_pg = 1;
    vigil_store *w[3];
    for (int i = 0; i < 3; i++)
        w[i] = open_store(store_url(""));
    vigil_store *reader = open_store(store_url(""));
    char cursor[VIGIL_STORE_TAIL_CURSOR_MAX + 1] = "";
    char next[VIGIL_STORE_TAIL_CURSOR_MAX + 1];
    seen s;
    memset(&s, 0, sizeof(s));
    /* from now on: nothing yet */
    ck_assert_int_eq(vigil_store_tail(reader, NULL, 7, seen_cb, &s, next, sizeof(next)), VIGIL_OK);
    ck_assert_int_eq(s.n, 0);
    ck_assert_int_gt((int)strlen(next), 0);
    memcpy(cursor, next, sizeof(next));
    int64_t base = clock_ms(CLOCK_REALTIME) - 60000;
    for (int i = 0; i < 200; i++)
        write_one(w[i % 3], i % 3, i, base + (i % 3) * 1000);
    int64_t deadline = clock_ms(CLOCK_MONOTONIC) + 20000;
    while (s.n < 200) {
        ck_assert_msg(clock_ms(CLOCK_MONOTONIC) < deadline, "tail returned %d of 200 samples", s.n);
        int before = s.n;
        ck_assert_int_eq(vigil_store_tail(reader, cursor, 7, seen_cb, &s, next, sizeof(next)),
                         VIGIL_OK);
        ck_assert_int_le(s.n - before, 7);
        memcpy(cursor, next, sizeof(next));
    }
    for (int i = 0; i < 200; i++)
        ck_assert_msg(s.count[i % 3][i] == 1, "sample %d of writer %d returned %d times", i, i % 3,
                      s.count[i % 3][i]);
    ck_assert_int_eq(s.other, 0);
    /* nothing more */
    ck_assert_int_eq(vigil_store_tail(reader, cursor, 7, seen_cb, &s, next, sizeof(next)),
                     VIGIL_OK);
    ck_assert_int_eq(s.n, 200);
    /* a stop from the callback leaves next_cursor unchanged */
    write_one(w[0], 0, 0, base + 5000);
    char keep[VIGIL_STORE_TAIL_CURSOR_MAX + 1];
    memcpy(keep, cursor, sizeof(keep));
    memcpy(next, "unchanged", 10);
    int stop_rc = 0;
    for (int64_t end = clock_ms(CLOCK_MONOTONIC) + 10000; stop_rc == 0;) {
        ck_assert(clock_ms(CLOCK_MONOTONIC) < end);
        stop_rc = vigil_store_tail(reader, cursor, 7, stop_cb, NULL, next, sizeof(next));
        if (stop_rc == VIGIL_OK)
            memcpy(next, "unchanged", 10);
    }
    ck_assert_int_eq(stop_rc, 42);
    ck_assert_str_eq(next, "unchanged");
    ck_assert_str_eq(cursor, keep);
    /* a cursor this backend did not make */
    ck_assert_int_eq(vigil_store_tail(reader, "garbage", 7, seen_cb, &s, next, sizeof(next)),
                     VIGIL_EINVAL);
    for (int i = 0; i < 3; i++)
        vigil_store_close(w[i]);
    vigil_store_close(reader);
}
END_TEST

START_TEST(read_only_store)
{
    const char *url = store_url("ro.db");
    vigil_store *rw = open_store(url);
    acquire(rw, "leader", "hub-a", 60000);
    vigil_store_close(rw);
    char ro_url[1200];
    snprintf(ro_url, sizeof(ro_url), "%s?mode=ro", url);
    vigil_store *ro = open_store(ro_url);
    vigil_store_lease l = VIGIL_STORE_LEASE_INIT;
    ck_assert_int_eq(vigil_store_lease_acquire(ro, "leader", "hub-b", 1000, &l), VIGIL_EREADONLY);
    vt_assert_error(VIGIL_EREADONLY, "lease acquire: the store is open read-only");
    ck_assert_int_eq(vigil_store_lease_release(ro, "leader", "hub-a"), VIGIL_EREADONLY);
    /* reading works */
    ck_assert_int_eq(vigil_store_lease_get(ro, "leader", &l), VIGIL_OK);
    ck_assert_str_eq(l.holder, "hub-a");
    ck_assert_int_eq(l.held, 1);
    vigil_store_close(ro);

    /* a database that never had a lease: get ENOTFOUND, release OK */
    vigil_store *mem = open_store("sqlite::memory:");
    ck_assert_int_eq(vigil_store_lease_get(mem, "leader", &l), VIGIL_ENOTFOUND);
    ck_assert_int_eq(vigil_store_lease_release(mem, "leader", "hub-a"), VIGIL_OK);
    vigil_store_close(mem);
}
END_TEST

START_TEST(tail_arguments)
{
    vigil_store *st = open_store("sqlite::memory:");
    char next[VIGIL_STORE_TAIL_CURSOR_MAX + 1] = "unchanged";
    int n = 0;
    ck_assert_int_eq(vigil_store_tail(NULL, NULL, 10, count_cb, &n, next, sizeof(next)),
                     VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "store tail: NULL argument");
    ck_assert_int_eq(vigil_store_tail(st, NULL, 10, NULL, &n, next, sizeof(next)), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_store_tail(st, NULL, 10, count_cb, &n, NULL, sizeof(next)),
                     VIGIL_EINVAL);
    ck_assert_int_eq(vigil_store_tail(st, NULL, 10, count_cb, &n, next, 64), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "store tail: next_cursor_len 64 is less than 65 bytes");
    ck_assert_int_eq(vigil_store_tail(st, NULL, 0, count_cb, &n, next, sizeof(next)), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "store tail: max_samples 0 is out of range (1 to 65536)");
    ck_assert_int_eq(
        vigil_store_tail(st, NULL, VIGIL_STORE_TAIL_MAX + 1, count_cb, &n, next, sizeof(next)),
        VIGIL_EINVAL);
    char longc[VIGIL_STORE_TAIL_CURSOR_MAX + 2];
    memset(longc, '1', sizeof(longc) - 1);
    longc[sizeof(longc) - 1] = '\0';
    ck_assert_int_eq(vigil_store_tail(st, longc, 10, count_cb, &n, next, sizeof(next)),
                     VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "store tail: the cursor is 65 bytes, more than the limit of 64");
    ck_assert_int_eq(vigil_store_tail(st, "a b", 10, count_cb, &n, next, sizeof(next)),
                     VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "store tail: the cursor is not one the store made (byte 1)");
    ck_assert_int_eq(vigil_store_tail(st, "\xc3\xa9", 10, count_cb, &n, next, sizeof(next)),
                     VIGIL_EINVAL);
    /* SQLite: one hub per file, no tail */
    ck_assert_int_eq(vigil_store_tail(st, NULL, 10, count_cb, &n, next, sizeof(next)),
                     VIGIL_EUNSUPPORTED);
    vt_assert_error(VIGIL_EUNSUPPORTED, "sqlite: the backend does not support tail");
    ck_assert_str_eq(next, "unchanged");
    ck_assert_int_eq(n, 0);
    vigil_store_close(st);
}
END_TEST

/* A version-2 type (0.2.0, before leases): still registered; its lease and
 * tail calls fail VIGIL_EUNSUPPORTED, whatever lies past its struct. */
static int v2_open(void **out, const char *url, const char *rest, const vigil_store_options *opts,
                   void *payload)
{
    (void)payload;
    return vigil_store_sqlite_type()->open(out, url, rest, opts, NULL);
}

START_TEST(version_2_types)
{
    vigil_store_registry *reg = NULL;
    ck_assert_int_eq(vigil_store_registry_new(&reg), VIGIL_OK);
    /* the old struct, followed by bytes a version-3 reader must not use */
    struct {
        vigil_store_type t;
        char garbage[64];
    } old;
    memset(&old, 0xab, sizeof(old));
    memcpy(&old.t, vigil_store_sqlite_type(), offsetof(vigil_store_type, lease_acquire));
    old.t.version = 2;
    old.t.name = "old";
    old.t.payload = NULL;
    old.t.payload_free = NULL;
    old.t.open = v2_open;
    ck_assert_int_eq(vigil_store_register(reg, &old.t), VIGIL_OK);
    vigil_store_type v4 = *vigil_store_sqlite_type();
    v4.name = "future";
    v4.version = 4;
    ck_assert_int_eq(vigil_store_register(reg, &v4), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION,
                    "store type: version 4 is not supported (this library reads version 3)");
    v4.version = 1;
    ck_assert_int_eq(vigil_store_register(reg, &v4), VIGIL_EVERSION);
    /* a version-3 type without leases */
    vigil_store_type v3 = *vigil_store_sqlite_type();
    v3.name = "nolease";
    v3.open = v2_open;
    v3.lease_acquire = NULL;
    v3.lease_release = NULL;
    v3.lease_get = NULL;
    ck_assert_int_eq(vigil_store_register(reg, &v3), VIGIL_OK);

    vigil_store_options o = VIGIL_STORE_OPTIONS_INIT;
    o.registry = reg;
    static const char *const urls[] = {"old::memory:", "nolease::memory:"};
    for (size_t i = 0; i < 2; i++) {
        vigil_store *st = NULL;
        ck_assert_int_eq(vigil_store_open(&st, urls[i], &o), VIGIL_OK);
        vigil_store_lease l = VIGIL_STORE_LEASE_INIT;
        ck_assert_int_eq(vigil_store_lease_acquire(st, "leader", "h", 1000, &l),
                         VIGIL_EUNSUPPORTED);
        vt_assert_error(VIGIL_EUNSUPPORTED, "the backend does not support lease acquire");
        ck_assert_int_eq(vigil_store_lease_release(st, "leader", "h"), VIGIL_EUNSUPPORTED);
        vt_assert_error(VIGIL_EUNSUPPORTED, "the backend does not support lease release");
        ck_assert_int_eq(vigil_store_lease_get(st, "leader", &l), VIGIL_EUNSUPPORTED);
        vt_assert_error(VIGIL_EUNSUPPORTED, "the backend does not support lease get");
        char next[VIGIL_STORE_TAIL_CURSOR_MAX + 1];
        int n = 0;
        ck_assert_int_eq(vigil_store_tail(st, NULL, 1, count_cb, &n, next, sizeof(next)),
                         VIGIL_EUNSUPPORTED);
        /* the rest works */
        ck_assert_int_eq(vigil_store_state_put(st, "k", "v", 1), VIGIL_OK);
        vigil_store_close(st);
    }
    vigil_store_registry_free(reg);
}
END_TEST

static Suite *lease_suite(void)
{
    Suite *s = suite_create("store_lease");
    TCase *tc = tcase_create("lease");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, acquire_renew_takeover_release_sqlite);
    tcase_add_test(tc, two_connections_share_a_lease_sqlite);
    tcase_add_test(tc, racing_connections_one_winner_sqlite);
    tcase_add_test(tc, bad_arguments_sqlite);
    tcase_add_test(tc, read_only_store);
    tcase_add_test(tc, tail_arguments);
    tcase_add_test(tc, version_2_types);
    suite_add_tcase(s, tc);
    if (g_server.pid) {
        TCase *pg = tcase_create("postgresql");
        tcase_set_timeout(pg, 90);
        tcase_add_test(pg, acquire_renew_takeover_release_pg);
        tcase_add_test(pg, two_connections_share_a_lease_pg);
        tcase_add_test(pg, racing_connections_one_winner_pg);
        tcase_add_test(pg, bad_arguments_pg);
        tcase_add_test(pg, pg_tail_exactly_once);
        suite_add_tcase(s, pg);
    }
    return s;
}

int main(void)
{
    int up = vt_pg_start(&g_server, "test_store_lease");
    if (up == 0)
        printf("test_store_lease: SKIP the PostgreSQL runs: %s\n", g_server.err);
    else if (up < 0)
        fprintf(stderr, "test_store_lease: cannot start PostgreSQL: %s\n", g_server.err);
    SRunner *sr = srunner_create(lease_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    vt_pg_stop(&g_server);
    return failed || up < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
