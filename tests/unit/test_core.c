/* Core: version, status codes, thread-local errors, allocator hook, buffers,
 * logging and the scalar grammars. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cond.h"
#include "core/hash.h"
#include "internal/common.h"
#include "testutil.h"

START_TEST(version_matches_headers)
{
    int ma = -1, mi = -1, pa = -1;
    ck_assert_str_eq(vigil_version(&ma, &mi, &pa), VIGIL_VERSION);
    ck_assert_int_eq(ma, VIGIL_VERSION_MAJOR);
    ck_assert_int_eq(mi, VIGIL_VERSION_MINOR);
    ck_assert_int_eq(pa, VIGIL_VERSION_PATCH);
    ck_assert_int_eq(VIGIL_VERSION_NUM, ma * 10000 + mi * 100 + pa);
    ck_assert_str_eq(vigil_version(NULL, NULL, NULL), VIGIL_VERSION);
}
END_TEST

START_TEST(strerror_known_and_unknown)
{
    ck_assert_str_eq(vigil_strerror(VIGIL_OK), "success");
    ck_assert_str_eq(vigil_strerror(VIGIL_ENOMEM), "out of memory");
    ck_assert_str_eq(vigil_strerror(VIGIL_EJSON), "malformed JSON");
    ck_assert_str_eq(vigil_strerror(VIGIL_EUNKNOWNKEY), "unknown key");
    ck_assert_str_eq(vigil_strerror(VIGIL_ECHILD), "child process failed");
    ck_assert_str_eq(vigil_strerror(-9999), "unknown error");
    ck_assert_str_eq(vigil_strerror(5), "unknown error");
}
END_TEST

START_TEST(error_last_never_null_and_located)
{
    vigil_error_clear();
    const vigil_error *e = vigil_error_last();
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->code, VIGIL_OK);
    ck_assert_str_eq(e->message, "");
    ck_assert_ptr_null(e->file);

    ck_assert_int_eq(vigil__error_set_at(VIGIL_EVALUE, "a.yaml", 12, 5, "x: bad %d", 7),
                     VIGIL_EVALUE);
    e = vigil_error_last();
    ck_assert_str_eq(e->message, "a.yaml:12:5: x: bad 7");
    ck_assert_str_eq(e->file, "a.yaml");
    ck_assert_uint_eq(e->line, 12);
    ck_assert_uint_eq(e->column, 5);

    vigil__error_set(VIGIL_EINVAL, "plain");
    e = vigil_error_last();
    ck_assert_ptr_null(e->file);
    ck_assert_uint_eq(e->line, 0);
    vigil__error_prefix("ctx %s", "here");
    ck_assert_str_eq(vigil_error_last()->message, "ctx here: plain");
    ck_assert_int_eq(vigil_error_last()->code, VIGIL_EINVAL);
    /* the last message as an argument of the next (it used to be read
     * while being overwritten: "wrapped (wrapped (wrappe) by outer") */
    vigil__error_set(VIGIL_EIO, "wrapped (%s) by %s", vigil_error_last()->message, "outer");
    ck_assert_str_eq(vigil_error_last()->message, "wrapped (ctx here: plain) by outer");
}
END_TEST

static void *thread_err(void *arg)
{
    (void)arg;
    vigil__error_set(VIGIL_EIO, "from thread");
    return (void *)(intptr_t)(strcmp(vigil_error_last()->message, "from thread") == 0);
}

START_TEST(error_is_thread_local)
{
    vigil__error_set(VIGIL_EJSON, "main thread");
    pthread_t t;
    void *ok = NULL;
    ck_assert_int_eq(pthread_create(&t, NULL, thread_err, NULL), 0);
    ck_assert_int_eq(pthread_join(t, &ok), 0);
    ck_assert_ptr_eq(ok, (void *)1);
    ck_assert_int_eq(vigil_error_last()->code, VIGIL_EJSON);
    ck_assert_str_eq(vigil_error_last()->message, "main thread");
}
END_TEST

START_TEST(error_message_is_clipped_not_overflowed)
{
    char big[5000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    vigil__error_set_at(VIGIL_EVALUE, big, 1, 1, "%s", big);
    ck_assert_uint_lt(strlen(vigil_error_last()->message), 1024);
}
END_TEST

START_TEST(allocator_rejects_bad_hooks)
{
    vigil_allocator a = {99, NULL, NULL, NULL, NULL};
    ck_assert_int_eq(vigil_allocator_set(&a), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "allocator: version 99 is not supported");
    a.version = VIGIL_ALLOCATOR_VERSION;
    ck_assert_int_eq(vigil_allocator_set(&a), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "required");
    ck_assert_int_eq(vigil_allocator_set(NULL), VIGIL_OK);
}
END_TEST

START_TEST(allocator_hook_sees_allocations)
{
    vt_alloc_install();
    long live = vt_alloc_live();
    vt_alloc_fail_at(-1, 0);
    char *s = vigil__strdup("hello");
    ck_assert_str_eq(s, "hello");
    ck_assert_int_eq(vt_alloc_count(), 1);
    ck_assert_int_eq(vt_alloc_live(), live + 1);
    vigil_free(s);
    ck_assert_int_eq(vt_alloc_live(), live);
    vt_alloc_fail_at(0, 0);
    ck_assert_ptr_null(vigil__strdup("x"));
    vt_alloc_fail_at(-1, 0);
}
END_TEST

START_TEST(buf_grows_and_reports_oom)
{
    vigil_buf b = VIGIL_BUF_INIT;
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(vigil__buf_printf(&b, "%d,", i), VIGIL_OK);
    ck_assert_uint_eq(b.size, strlen(b.ptr));
    ck_assert(strncmp(b.ptr, "0,1,2,", 6) == 0);
    char longfmt[600];
    memset(longfmt, 'a', sizeof(longfmt) - 1);
    longfmt[599] = '\0';
    size_t before = b.size;
    ck_assert_int_eq(vigil__buf_printf(&b, "%s", longfmt), VIGIL_OK);
    ck_assert_uint_eq(b.size, before + 599);
    vigil_buf_dispose(&b);
    ck_assert_ptr_null(b.ptr);
    vigil_buf_dispose(NULL);

    vt_alloc_install();
    vt_alloc_fail_at(0, 1);
    vigil_buf c = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil__buf_puts(&c, "abc"), VIGIL_ENOMEM);
    vt_alloc_fail_at(-1, 0);
    vt_assert_error(VIGIL_ENOMEM, "out of memory");
    ck_assert_ptr_null(c.ptr);
}
END_TEST

typedef struct {
    int n;
    vigil_log_level level;
    char component[32];
    char message[128];
    char fields[128];
} log_capture;

static void capture_cb(const vigil_log_record *r, void *payload)
{
    log_capture *c = payload;
    c->n++;
    c->level = r->level;
    snprintf(c->component, sizeof(c->component), "%s", r->component);
    snprintf(c->message, sizeof(c->message), "%s", r->message);
    snprintf(c->fields, sizeof(c->fields), "%s", r->fields);
}

START_TEST(log_callback_levels_and_fields)
{
    log_capture cap = {0};
    vigil_logger lg = {capture_cb, &cap, VIGIL_LOG_WARN};
    vigil__log(&lg, VIGIL_LOG_INFO, "agent", "dropped", NULL);
    ck_assert_int_eq(cap.n, 0);
    vigil__log(&lg, VIGIL_LOG_ERROR, "agent", "ship failed", "url=%s code=%d", "http://h", 503);
    ck_assert_int_eq(cap.n, 1);
    ck_assert_int_eq(cap.level, VIGIL_LOG_ERROR);
    ck_assert_str_eq(cap.component, "agent");
    ck_assert_str_eq(cap.message, "ship failed");
    ck_assert_str_eq(cap.fields, "url=http://h code=503");
}
END_TEST

START_TEST(log_format_is_logfmt)
{
    vigil_buf b = VIGIL_BUF_INIT;
    vigil_log_record r = {VIGIL_LOG_WARN, 1732650000123LL, "hub", "said \"hi\"\nthere", "k=v"};
    ck_assert_int_eq(vigil_log_format(&b, &r), VIGIL_OK);
    ck_assert_str_eq(b.ptr, "ts=2024-11-26T19:40:00.123Z level=warn component=hub "
                            "msg=\"said \\\"hi\\\"\\nthere\" k=v");
    vigil_log_record r2 = {VIGIL_LOG_INFO, 0, NULL, "ready", ""};
    ck_assert_int_eq(vigil_log_format(&b, &r2), VIGIL_OK);
    ck_assert_str_eq(b.ptr, "ts=1970-01-01T00:00:00.000Z level=info msg=ready");
    vigil_buf_dispose(&b);
    ck_assert_int_eq(vigil_log_format(NULL, &r), VIGIL_EINVAL);
}
END_TEST

START_TEST(log_fields_are_logfmt)
{
    vigil_buf b = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil_log_field(&b, "key", "retention"), VIGIL_OK);
    ck_assert_int_eq(vigil_log_field(&b, "error", "b.yaml:2:47: bad \"op\"\n\x01"), VIGIL_OK);
    ck_assert_int_eq(vigil_log_field(&b, "empty", ""), VIGIL_OK);
    ck_assert_int_eq(vigil_log_field(&b, "none", NULL), VIGIL_OK);
    ck_assert_str_eq(b.ptr, " key=retention error=\"b.yaml:2:47: bad \\\"op\\\"\\n\\x01\""
                            " empty=\"\" none=\"\"");
    /* A refused key leaves the buffer as it was. */
    size_t size = b.size;
    const char *bad[] = {"", "a b", "a=b", "a\"b", "a\\b", "a\nb"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(vigil_log_field(&b, bad[i], "v"), VIGIL_EINVAL);
        vt_assert_error(VIGIL_EINVAL, "is empty or needs quotes");
        ck_assert_uint_eq(b.size, size);
    }
    ck_assert_int_eq(vigil_log_field(&b, NULL, "v"), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "log field: NULL argument");
    ck_assert_int_eq(vigil_log_field(NULL, "k", "v"), VIGIL_EINVAL);
    ck_assert_uint_eq(b.size, size);
    vigil_buf_dispose(&b);
}
END_TEST

typedef struct {
    int calls;
    vigil_log_level level;
    int64_t ts;
    char line[512];
} emit_capture;

static void capture_record(const vigil_log_record *r, void *payload)
{
    emit_capture *c = payload;
    c->calls++;
    c->level = r->level;
    c->ts = r->ts_ms;
    snprintf(c->line, sizeof(c->line), "%s|%s|%s", r->component, r->message, r->fields);
}

/* vigil_log_emit: the logger's level filter, the callback, NULLs as "". */
START_TEST(log_emit_through_a_logger)
{
    emit_capture c = {0, VIGIL_LOG_OFF, 0, ""};
    vigil_logger lg = VIGIL_LOGGER_INIT;
    lg.cb = capture_record;
    lg.payload = &c;
    lg.min_level = VIGIL_LOG_WARN;
    struct timespec t0;
    clock_gettime(CLOCK_REALTIME, &t0);
    int64_t before = (int64_t)t0.tv_sec * 1000 + t0.tv_nsec / 1000000;
    vigil_log_emit(&lg, VIGIL_LOG_INFO, "app", "dropped", NULL);
    ck_assert_int_eq(c.calls, 0);
    vigil_log_emit(&lg, VIGIL_LOG_ERROR, "app", "disk full", "mount=/var free=0");
    ck_assert_int_eq(c.calls, 1);
    ck_assert_int_eq(c.level, VIGIL_LOG_ERROR);
    ck_assert_str_eq(c.line, "app|disk full|mount=/var free=0");
    ck_assert_int_ge(c.ts, before);
    ck_assert_int_le(c.ts, before + 60000);
    vigil_log_emit(&lg, VIGIL_LOG_WARN, NULL, NULL, NULL);
    ck_assert_int_eq(c.calls, 2);
    ck_assert_str_eq(c.line, "||");
    vigil_log_emit(&lg, VIGIL_LOG_OFF, "app", "never", NULL);
    ck_assert_int_eq(c.calls, 2);
    lg.min_level = VIGIL_LOG_OFF;
    vigil_log_emit(&lg, VIGIL_LOG_ERROR, "app", "muted", NULL);
    ck_assert_int_eq(c.calls, 2);
}
END_TEST

START_TEST(log_level_names)
{
    vigil_log_level l;
    ck_assert_int_eq(vigil_log_level_parse(&l, "warn"), VIGIL_OK);
    ck_assert_int_eq(l, VIGIL_LOG_WARN);
    ck_assert_str_eq(vigil_log_level_name(VIGIL_LOG_DEBUG), "debug");
    ck_assert_int_eq(vigil_log_level_parse(&l, "loud"), VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE, "got \"loud\"");
}
END_TEST

START_TEST(durations_valid)
{
    static const struct {
        const char *in;
        int64_t ms;
    } ok[] = {{"0", 0},       {"0s", 0},          {"250ms", 250},      {"10s", 10000},
              {"5m", 300000}, {"1h30m", 5400000}, {"14d", 1209600000}, {"1d2h3m4s5ms", 93784005},
              {"90s", 90000}, {"1h", 3600000}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int64_t v = -1;
        ck_assert_msg(vigil_scalar_parse_duration(&v, ok[i].in) == VIGIL_OK, "%s: %s", ok[i].in,
                      vigil_error_last()->message);
        ck_assert_int_eq(v, ok[i].ms);
    }
}
END_TEST

START_TEST(durations_invalid)
{
    static const char *bad[] = {"",  "ten", "10",  "10 s", "-5s",  "1.5s",  "5m1h", "1s1s",
                                "s", "10x", "1h ", " 1h",  "1e3s", "0x10s", "5mss", "10sm"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t v = 42;
        ck_assert_msg(vigil_scalar_parse_duration(&v, bad[i]) == VIGIL_EVALUE, "accepted \"%s\"",
                      bad[i]);
        ck_assert_int_eq(v, 42);
        vt_assert_error(VIGIL_EVALUE, "expected a duration such as \"10s\"");
    }
    int64_t v;
    ck_assert_int_eq(vigil_scalar_parse_duration(&v, "99999999999999999999d"), VIGIL_ERANGE);
    vt_assert_error(VIGIL_ERANGE, "too large");
    ck_assert_int_eq(vigil_scalar_parse_duration(&v, "9999999999999999d"), VIGIL_ERANGE);
    ck_assert_int_eq(vigil_scalar_parse_duration(NULL, "1s"), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_scalar_parse_duration(&v, "ten"), VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE, "got \"ten\"");
}
END_TEST

START_TEST(duration_format_round_trips)
{
    char buf[32];
    ck_assert_int_eq(vigil_scalar_format_duration(buf, sizeof(buf), 5400000), VIGIL_OK);
    ck_assert_str_eq(buf, "1h30m");
    ck_assert_int_eq(vigil_scalar_format_duration(buf, sizeof(buf), 0), VIGIL_OK);
    ck_assert_str_eq(buf, "0");
    ck_assert_int_eq(vigil_scalar_format_duration(buf, sizeof(buf), 93784005), VIGIL_OK);
    ck_assert_str_eq(buf, "1d2h3m4s5ms");
    int64_t back;
    ck_assert_int_eq(vigil_scalar_parse_duration(&back, buf), VIGIL_OK);
    ck_assert_int_eq(back, 93784005);
    ck_assert_int_eq(vigil_scalar_format_duration(buf, 3, 93784005), VIGIL_ERANGE);
    ck_assert_int_eq(vigil_scalar_format_duration(buf, sizeof(buf), -1), VIGIL_ERANGE);
}
END_TEST

START_TEST(sizes)
{
    uint64_t v;
    ck_assert_int_eq(vigil_scalar_parse_size(&v, "512KiB"), VIGIL_OK);
    ck_assert_uint_eq(v, 524288);
    ck_assert_int_eq(vigil_scalar_parse_size(&v, "8MiB"), VIGIL_OK);
    ck_assert_uint_eq(v, 8388608);
    ck_assert_int_eq(vigil_scalar_parse_size(&v, "1GiB"), VIGIL_OK);
    ck_assert_uint_eq(v, 1073741824ULL);
    ck_assert_int_eq(vigil_scalar_parse_size(&v, "4096"), VIGIL_OK);
    ck_assert_uint_eq(v, 4096);
    ck_assert_int_eq(vigil_scalar_parse_size(&v, "10MB"), VIGIL_OK);
    ck_assert_uint_eq(v, 10000000);
    ck_assert_int_eq(vigil_scalar_parse_size(&v, "12B"), VIGIL_OK);
    ck_assert_uint_eq(v, 12);
    static const char *bad[] = {"", "big", "8 MiB", "8mib", "-1", "1.5MiB", "8MiBs", "MiB"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(vigil_scalar_parse_size(&v, bad[i]) == VIGIL_EVALUE, "accepted \"%s\"",
                      bad[i]);
        vt_assert_error(VIGIL_EVALUE, "expected a size such as \"8MiB\"");
    }
    ck_assert_int_eq(vigil_scalar_parse_size(&v, "99999999999TiB"), VIGIL_ERANGE);
    ck_assert_int_eq(vigil_scalar_parse_size(&v, "999999999999999999999"), VIGIL_ERANGE);
}
END_TEST

START_TEST(rates)
{
    double r;
    ck_assert_int_eq(vigil_scalar_parse_rate(&r, "30/s"), VIGIL_OK);
    ck_assert_double_eq(r, 30.0);
    ck_assert_int_eq(vigil_scalar_parse_rate(&r, "30/min"), VIGIL_OK);
    ck_assert_double_eq_tol(r, 0.5, 1e-12);
    ck_assert_int_eq(vigil_scalar_parse_rate(&r, "36/h"), VIGIL_OK);
    ck_assert_double_eq_tol(r, 0.01, 1e-12);
    ck_assert_int_eq(vigil_scalar_parse_rate(&r, "1.5/s"), VIGIL_OK);
    ck_assert_double_eq(r, 1.5);
    static const char *bad[] = {"",      "30",   "30/",   "/s",    "30/week", "thirty/s",
                                "30 /s", "-1/s", "inf/s", "nan/s", "1e3/s"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(vigil_scalar_parse_rate(&r, bad[i]) == VIGIL_EVALUE, "accepted \"%s\"",
                      bad[i]);
        vt_assert_error(VIGIL_EVALUE, "expected a rate such as \"30/min\"");
    }
    ck_assert_int_eq(vigil_scalar_parse_rate(&r, "0/s"), VIGIL_ERANGE);
    vt_assert_error(VIGIL_ERANGE, "above zero");
}
END_TEST

START_TEST(percentages)
{
    double p;
    ck_assert_int_eq(vigil_scalar_parse_percent(&p, "10%"), VIGIL_OK);
    ck_assert_double_eq_tol(p, 0.10, 1e-12);
    ck_assert_int_eq(vigil_scalar_parse_percent(&p, "2.5%"), VIGIL_OK);
    ck_assert_double_eq_tol(p, 0.025, 1e-12);
    ck_assert_int_eq(vigil_scalar_parse_percent(&p, "0%"), VIGIL_OK);
    ck_assert_double_eq(p, 0.0);
    ck_assert_int_eq(vigil_scalar_parse_percent(&p, "100%"), VIGIL_OK);
    ck_assert_double_eq(p, 1.0);
    static const char *bad[] = {"", "10", "%", "ten%", "-5%", "10 %", "10%%", "nan%"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(vigil_scalar_parse_percent(&p, bad[i]) == VIGIL_EVALUE, "accepted \"%s\"",
                      bad[i]);
        vt_assert_error(VIGIL_EVALUE, "expected a percentage such as \"10%\"");
    }
    ck_assert_int_eq(vigil_scalar_parse_percent(&p, "101%"), VIGIL_ERANGE);
    vt_assert_error(VIGIL_ERANGE, "above 100%");
}
END_TEST

START_TEST(long_bad_input_is_clipped_in_message)
{
    char big[4096];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    int64_t v;
    ck_assert_int_eq(vigil_scalar_parse_duration(&v, big), VIGIL_EVALUE);
    ck_assert_uint_lt(strlen(vigil_error_last()->message), 200);
    vt_assert_error(VIGIL_EVALUE, "...");
}
END_TEST

START_TEST(utf8_validation)
{
    ck_assert(vigil__utf8_valid("plain", 5));
    ck_assert(vigil__utf8_valid("h\xc3\xa9", 3));         /* é */
    ck_assert(vigil__utf8_valid("\xe2\x82\xac", 3));      /* € */
    ck_assert(vigil__utf8_valid("\xf0\x9f\x98\x80", 4));  /* emoji */
    ck_assert(!vigil__utf8_valid("a\0b", 3));             /* NUL */
    ck_assert(!vigil__utf8_valid("\xc3", 1));             /* truncated */
    ck_assert(!vigil__utf8_valid("\xc0\xaf", 2));         /* overlong */
    ck_assert(!vigil__utf8_valid("\xe0\x80\xaf", 3));     /* overlong */
    ck_assert(!vigil__utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    ck_assert(!vigil__utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    ck_assert(!vigil__utf8_valid("\xff", 1));
    ck_assert(!vigil__utf8_valid("\x80", 1)); /* lone continuation */
}
END_TEST

START_TEST(string_hash)
{
    /* Equal input, equal hash; the string form hashes its bytes. */
    ck_assert(vigil__hash_str("cpu_usage{host=a}") ==
              vigil__hash_bytes("cpu_usage{host=a}", strlen("cpu_usage{host=a}")));
    ck_assert(vigil__hash_str("") == vigil__hash_bytes(NULL, 0));
    /* Every byte counts, in the 8-byte words and in the tail; so does the
     * length (a string and the same string with a NUL byte appended). */
    char a[40], b[40];
    memset(a, 'x', sizeof(a));
    for (size_t len = 1; len <= sizeof(a); len++) {
        for (size_t i = 0; i < len; i++) {
            memcpy(b, a, len);
            b[i] ^= 1;
            ck_assert_msg(vigil__hash_bytes(a, len) != vigil__hash_bytes(b, len),
                          "len %zu, byte %zu", len, i);
        }
        ck_assert(vigil__hash_bytes(a, len) != vigil__hash_bytes(a, len - 1));
    }
    ck_assert(vigil__hash_bytes("ab\0", 3) != vigil__hash_bytes("ab", 2));
    /* The low bits, which pick a slot, spread: 4096 keys that differ only
     * in their last digits fill most of 64 slots. */
    int used[64] = {0}, n = 0;
    for (int i = 0; i < 4096; i++) {
        char key[64];
        snprintf(key, sizeof(key), "disk_used_bytes{host=web-%04d}", i);
        used[vigil__hash_str(key) & 63] = 1;
    }
    for (int i = 0; i < 64; i++)
        n += used[i];
    ck_assert_int_eq(n, 64);
}
END_TEST

START_TEST(monotonic_condition_variable)
{
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv;
    ck_assert_int_eq(vigil__cond_init_monotonic(&cv), 0);
    pthread_mutex_lock(&mu);
    /* a deadline in the past (and a nonsensical one) returns at once */
    ck_assert_int_eq(vigil__cond_wait_until(&cv, &mu, vigil__monotonic_ms() - 1), ETIMEDOUT);
    ck_assert_int_eq(vigil__cond_wait_until(&cv, &mu, -5), ETIMEDOUT);
    /* a short deadline on the monotonic clock passes */
    int64_t deadline = vigil__monotonic_ms() + 20;
    int rc = 0;
    while (rc == 0)
        rc = vigil__cond_wait_until(&cv, &mu, deadline);
    ck_assert_int_eq(rc, ETIMEDOUT);
    ck_assert(vigil__monotonic_ms() >= deadline);
    pthread_mutex_unlock(&mu);
    pthread_cond_destroy(&cv);
}
END_TEST

static Suite *core_suite(void)
{
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, version_matches_headers);
    tcase_add_test(tc, strerror_known_and_unknown);
    tcase_add_test(tc, error_last_never_null_and_located);
    tcase_add_test(tc, error_is_thread_local);
    tcase_add_test(tc, error_message_is_clipped_not_overflowed);
    tcase_add_test(tc, allocator_rejects_bad_hooks);
    tcase_add_test(tc, allocator_hook_sees_allocations);
    tcase_add_test(tc, buf_grows_and_reports_oom);
    tcase_add_test(tc, log_callback_levels_and_fields);
    tcase_add_test(tc, log_format_is_logfmt);
    tcase_add_test(tc, log_fields_are_logfmt);
    tcase_add_test(tc, log_level_names);
    tcase_add_test(tc, log_emit_through_a_logger);
    tcase_add_test(tc, durations_valid);
    tcase_add_test(tc, durations_invalid);
    tcase_add_test(tc, duration_format_round_trips);
    tcase_add_test(tc, sizes);
    tcase_add_test(tc, rates);
    tcase_add_test(tc, percentages);
    tcase_add_test(tc, long_bad_input_is_clipped_in_message);
    tcase_add_test(tc, utf8_validation);
    tcase_add_test(tc, string_hash);
    tcase_add_test(tc, monotonic_condition_variable);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(core_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
