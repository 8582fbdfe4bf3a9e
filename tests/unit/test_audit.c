/* Audit: the HMAC-SHA256 chain on real SQLite files, tampering by an
 * attacker who drops the append-only triggers, checkpoints, key loading,
 * concurrency, JSON output and out-of-memory behaviour. */
#include <dirent.h>
#include <mbedtls/md.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal/common.h"
#include "testutil.h"

static const char KEY[] = "0123456789abcdef0123456789abcdef";
#define KEY_LEN (sizeof(KEY) - 1)

/* ---- fixtures ------------------------------------------------------------------ */

typedef struct fixture {
    char path[512];
    char url[600];
    vigil_store *store;
    vigil_audit *audit;
    int64_t now;
} fixture;

static int64_t fake_clock(void *payload)
{
    fixture *f = payload;
    return f->now++;
}

static void fx_open_store(fixture *f)
{
    vigil_store_options so = VIGIL_STORE_OPTIONS_INIT;
    so.synchronous = VIGIL_STORE_SYNC_FULL;
    ck_assert_int_eq(vigil_store_open(&f->store, f->url, &so), VIGIL_OK);
}

static int fx_open_audit(fixture *f, const void *key, size_t key_len)
{
    vigil_audit_options o = VIGIL_AUDIT_OPTIONS_INIT;
    o.store = f->store;
    o.key = key;
    o.key_len = key_len;
    o.clock = fake_clock;
    o.clock_payload = f;
    o.logger.min_level = VIGIL_LOG_OFF;
    return vigil_audit_open(&f->audit, &o);
}

static void fx_init(fixture *f)
{
    memset(f, 0, sizeof(*f));
    snprintf(f->path, sizeof(f->path), "%s/audit.db", vt_tmpdir());
    snprintf(f->url, sizeof(f->url), "sqlite://%s", f->path);
    f->now = 1700000000000;
    fx_open_store(f);
    ck_assert_int_eq(fx_open_audit(f, KEY, KEY_LEN), VIGIL_OK);
}

static void fx_close(fixture *f)
{
    vigil_audit_free(f->audit);
    f->audit = NULL;
    vigil_store_close(f->store);
    f->store = NULL;
}

static void fx_reopen(fixture *f)
{
    fx_open_store(f);
    ck_assert_int_eq(fx_open_audit(f, KEY, KEY_LEN), VIGIL_OK);
}

/* Appends rows 1..n with small JSON objects. */
static void fx_fill(fixture *f, int n)
{
    for (int i = 1; i <= n; i++) {
        char data[64];
        int64_t seq = 0;
        char mac[VIGIL_AUDIT_MAC_HEX];
        snprintf(data, sizeof(data), "{\"n\":%d}", i);
        ck_assert_int_eq(
            vigil_audit_append(f->audit, i % 2 ? "request" : "result", "act-1", data, &seq, mac),
            VIGIL_OK);
        ck_assert_int_eq(seq, i);
        ck_assert_uint_eq(strlen(mac), 64);
    }
}

/* The attacker: sqlite3 on the file, append-only triggers dropped. */
static void tamper(const fixture *f, const char *sql)
{
    sqlite3 *db = NULL;
    char *err = NULL;
    ck_assert_int_eq(sqlite3_open(f->path, &db), SQLITE_OK);
    int rc = sqlite3_exec(db,
                          "DROP TRIGGER IF EXISTS audit_no_update;"
                          "DROP TRIGGER IF EXISTS audit_no_delete;",
                          NULL, NULL, &err);
    ck_assert_msg(rc == SQLITE_OK, "drop triggers: %s", err ? err : "?");
    rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    ck_assert_msg(rc == SQLITE_OK, "%s: %s", sql, err ? err : "?");
    sqlite3_free(err);
    sqlite3_close(db);
}

static void expect_broken(vigil_audit *a, int64_t at, int64_t entries, const char *reason)
{
    vigil_audit_report r = VIGIL_AUDIT_REPORT_INIT;
    ck_assert_int_eq(vigil_audit_verify(a, &r), VIGIL_OK);
    ck_assert_int_eq(r.ok, 0);
    ck_assert_int_eq(r.broken_at, at);
    ck_assert_int_eq(r.entries, entries);
    ck_assert_str_eq(r.reason, reason);
}

static void expect_ok(vigil_audit *a, int64_t entries)
{
    vigil_audit_report r = VIGIL_AUDIT_REPORT_INIT;
    ck_assert_int_eq(vigil_audit_verify(a, &r), VIGIL_OK);
    ck_assert_msg(r.ok, "broken at %lld: %s", (long long)r.broken_at, r.reason);
    ck_assert_int_eq(r.entries, entries);
    ck_assert_int_eq(r.broken_at, 0);
    ck_assert_str_eq(r.reason, "");
}

/* ---- the chain ------------------------------------------------------------------ */

/* The mac as documented: HMAC-SHA256 over "vigil-audit-v1\0", seq and ts as
 * 8-byte big-endian, then length-prefixed kind, a presence byte-word and
 * action_id, data and prev_mac. */
static void put_u64(mbedtls_md_context_t *c, uint64_t v)
{
    unsigned char b[8];
    for (int i = 7; i >= 0; i--, v >>= 8)
        b[i] = (unsigned char)v;
    mbedtls_md_hmac_update(c, b, 8);
}

static void put_str(mbedtls_md_context_t *c, const char *s)
{
    put_u64(c, strlen(s));
    mbedtls_md_hmac_update(c, (const unsigned char *)s, strlen(s));
}

static void expected_mac(char out[65], int64_t seq, int64_t ts, const char *kind, const char *aid,
                         const char *data, const char *prev)
{
    mbedtls_md_context_t c;
    unsigned char mac[32];
    mbedtls_md_init(&c);
    ck_assert_int_eq(mbedtls_md_setup(&c, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), 1), 0);
    mbedtls_md_hmac_starts(&c, (const unsigned char *)KEY, KEY_LEN);
    mbedtls_md_hmac_update(&c, (const unsigned char *)"vigil-audit-v1", 15);
    put_u64(&c, (uint64_t)seq);
    put_u64(&c, (uint64_t)ts);
    put_str(&c, kind);
    put_u64(&c, aid ? 1 : 0);
    put_str(&c, aid ? aid : "");
    put_str(&c, data);
    put_str(&c, prev);
    mbedtls_md_hmac_finish(&c, mac);
    mbedtls_md_free(&c);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", mac[i]);
}

START_TEST(append_head_verify)
{
    fixture f;
    fx_init(&f);
    int64_t seq = -1;
    char mac[VIGIL_AUDIT_MAC_HEX] = "x";
    ck_assert_int_eq(vigil_audit_head(f.audit, &seq, mac), VIGIL_OK);
    ck_assert_int_eq(seq, 0);
    ck_assert_str_eq(mac, "");
    expect_ok(f.audit, 0);

    char m1[VIGIL_AUDIT_MAC_HEX], m2[VIGIL_AUDIT_MAC_HEX], want[65];
    ck_assert_int_eq(vigil_audit_append(f.audit, "request", "a1", "{\"x\":1}", &seq, m1), VIGIL_OK);
    ck_assert_int_eq(seq, 1);
    expected_mac(want, 1, 1700000000000, "request", "a1", "{\"x\":1}", "");
    ck_assert_str_eq(m1, want);
    ck_assert_int_eq(vigil_audit_append(f.audit, "guard", NULL, NULL, NULL, m2), VIGIL_OK);
    expected_mac(want, 2, 1700000000001, "guard", NULL, "{}", m1);
    ck_assert_str_eq(m2, want);
    /* NULL and "" action ids serialise differently: "" is refused anyway. */
    ck_assert_int_eq(vigil_audit_append(f.audit, "result", "a1", " { } ", NULL, NULL), VIGIL_OK);
    ck_assert_int_eq(vigil_audit_head(f.audit, &seq, mac), VIGIL_OK);
    ck_assert_int_eq(seq, 3);
    expected_mac(want, 3, 1700000000002, "result", "a1", " { } ", m2);
    ck_assert_str_eq(mac, want);
    ck_assert_int_eq(vigil_audit_head(f.audit, NULL, NULL), VIGIL_OK);
    expect_ok(f.audit, 3);

    /* The head is read back on open; appends continue the chain. */
    fx_close(&f);
    fx_reopen(&f);
    ck_assert_int_eq(vigil_audit_head(f.audit, &seq, m2), VIGIL_OK);
    ck_assert_int_eq(seq, 3);
    ck_assert_str_eq(m2, mac);
    ck_assert_int_eq(vigil_audit_append(f.audit, "result", NULL, "{}", &seq, NULL), VIGIL_OK);
    ck_assert_int_eq(seq, 4);
    expect_ok(f.audit, 4);

    /* A checkpoint that matches. */
    vigil_audit_report r = VIGIL_AUDIT_REPORT_INIT;
    ck_assert_int_eq(vigil_audit_verify_checkpoint(f.audit, 3, mac, &r), VIGIL_OK);
    ck_assert_int_eq(r.ok, 1);
    ck_assert_int_eq(r.entries, 4);
    for (char *p = mac; *p; p++) /* either case */
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    ck_assert_int_eq(vigil_audit_verify_checkpoint(f.audit, 3, mac, &r), VIGIL_OK);
    ck_assert_int_eq(r.ok, 1);
    fx_close(&f);
}
END_TEST

START_TEST(long_chain_is_paged)
{
    fixture f;
    fx_init(&f);
    /* more than one page of 256 rows */
    fx_fill(&f, 600);
    expect_ok(f.audit, 600);
    tamper(&f, "UPDATE audit SET data = '{\"n\":0}' WHERE seq = 513;");
    expect_broken(f.audit, 513, 512, "mac mismatch");
    fx_close(&f);
}
END_TEST

START_TEST(bad_arguments)
{
    fixture f;
    fx_init(&f);
    vigil_audit *a = NULL;
    vigil_audit_options o = VIGIL_AUDIT_OPTIONS_INIT;

    ck_assert_int_eq(vigil_audit_options_init(&o, 99), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "audit options: version 99 is not supported");
    ck_assert_int_eq(vigil_audit_options_init(NULL, VIGIL_AUDIT_OPTIONS_VERSION), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_audit_options_init(&o, VIGIL_AUDIT_OPTIONS_VERSION), VIGIL_OK);
    ck_assert_ptr_null(o.store);
    ck_assert_int_eq(vigil_audit_open(NULL, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "NULL out");
    ck_assert_int_eq(vigil_audit_open(&a, NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "options are required");
    ck_assert_int_eq(vigil_audit_open(&a, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "no store");
    o.store = f.store;
    ck_assert_int_eq(vigil_audit_open(&a, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "no key");
    o.key = KEY;
    o.key_len = 15;
    ck_assert_int_eq(vigil_audit_open(&a, &o), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "key is 15 bytes, need 16 to 4096");
    o.key_len = 4097;
    ck_assert_int_eq(vigil_audit_open(&a, &o), VIGIL_ELIMIT);
    o.key_len = 16;
    o.version = 7;
    ck_assert_int_eq(vigil_audit_open(&a, &o), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "audit options: version 7 is not supported");
    ck_assert_ptr_null(a);

    vigil_audit *au = f.audit;
    ck_assert_int_eq(vigil_audit_append(NULL, "x", NULL, NULL, NULL, NULL), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_audit_append(au, NULL, NULL, NULL, NULL, NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "NULL audit or kind");
    ck_assert_int_eq(vigil_audit_append(au, "", NULL, NULL, NULL, NULL), VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE, "kind is empty");
    ck_assert_int_eq(vigil_audit_append(au, "Request", NULL, NULL, NULL, NULL), VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE, "kind must start with a letter");
    ck_assert_int_eq(vigil_audit_append(au, "re quest", NULL, NULL, NULL, NULL), VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE, "outside [a-z0-9_.-] at byte 2");
    char big[VIGIL_AUDIT_DATA_MAX + 64];
    memset(big, 'k', VIGIL_AUDIT_KIND_MAX + 1);
    big[VIGIL_AUDIT_KIND_MAX + 1] = '\0';
    ck_assert_int_eq(vigil_audit_append(au, big, NULL, NULL, NULL, NULL), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "kind is 65 bytes, at most 64");
    big[VIGIL_AUDIT_KIND_MAX] = '\0';
    ck_assert_int_eq(vigil_audit_append(au, big, NULL, NULL, NULL, NULL), VIGIL_OK);

    ck_assert_int_eq(vigil_audit_append(au, "x", "", NULL, NULL, NULL), VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE, "action_id is empty");
    memset(big, 'i', VIGIL_AUDIT_ACTION_ID_MAX + 1);
    big[VIGIL_AUDIT_ACTION_ID_MAX + 1] = '\0';
    ck_assert_int_eq(vigil_audit_append(au, "x", big, NULL, NULL, NULL), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "action_id is 129 bytes, at most 128");
    ck_assert_int_eq(vigil_audit_append(au, "x", "a\xff", NULL, NULL, NULL), VIGIL_EENCODING);
    vt_assert_error(VIGIL_EENCODING, "action_id is not valid UTF-8");

    ck_assert_int_eq(vigil_audit_append(au, "x", NULL, "[1]", NULL, NULL), VIGIL_ETYPE);
    vt_assert_error(VIGIL_ETYPE, "data_json must be a JSON object");
    ck_assert_int_eq(vigil_audit_append(au, "x", NULL, "\"s\"", NULL, NULL), VIGIL_ETYPE);
    ck_assert_int_eq(vigil_audit_append(au, "x", NULL, "", NULL, NULL), VIGIL_EJSON);
    vt_assert_error(VIGIL_EJSON, "audit: data_json: ");
    ck_assert_int_eq(vigil_audit_append(au, "x", NULL, "{\"a\":1,}", NULL, NULL), VIGIL_EJSON);
    vt_assert_error(VIGIL_EJSON, "(byte 7)");
    ck_assert_int_eq(vigil_audit_append(au, "x", NULL, "{\"a\":\"\\u0000\"}", NULL, NULL),
                     VIGIL_EENCODING);
    vt_assert_error(VIGIL_EENCODING, "data_json: a: ");
    ck_assert_int_eq(vigil_audit_append(au, "x", NULL, "{\"a\":\"\xc0\xaf\"}", NULL, NULL),
                     VIGIL_EENCODING);
    ck_assert_int_eq(vigil_audit_append(au, "x", NULL, "{} {}", NULL, NULL), VIGIL_EJSON);
    char deep[200] = "{\"a\":";
    for (int i = 0; i < 40; i++)
        strcat(deep, "[");
    ck_assert_int_eq(vigil_audit_append(au, "x", NULL, deep, NULL, NULL), VIGIL_ELIMIT);
    big[0] = '{';
    big[1] = '"';
    memset(big + 2, 'v', VIGIL_AUDIT_DATA_MAX);
    strcpy(big + VIGIL_AUDIT_DATA_MAX - 4, "\":1}");
    ck_assert_uint_eq(strlen(big), VIGIL_AUDIT_DATA_MAX);
    ck_assert_int_eq(vigil_audit_append(au, "x", NULL, big, NULL, NULL), VIGIL_OK);
    strcpy(big + VIGIL_AUDIT_DATA_MAX - 4, "v\":1}");
    ck_assert_int_eq(vigil_audit_append(au, "x", NULL, big, NULL, NULL), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "data_json is 262145 bytes, at most 262144");
    /* Nothing refused was appended. */
    expect_ok(au, 2);

    vigil_audit_report r = VIGIL_AUDIT_REPORT_INIT;
    vigil_audit_report bad = VIGIL_AUDIT_REPORT_INIT;
    bad.version = 0;
    ck_assert_int_eq(vigil_audit_verify(au, &bad), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "audit report: version 0 is not supported");
    bad.version = VIGIL_AUDIT_REPORT_VERSION + 1;
    char hex[VIGIL_AUDIT_MAC_HEX];
    memset(hex, 'a', sizeof(hex) - 1);
    hex[sizeof(hex) - 1] = '\0';
    ck_assert_int_eq(vigil_audit_verify_checkpoint(au, 1, hex, &bad), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "audit report: version 2 is not supported");
    ck_assert_int_eq(vigil_audit_head(NULL, NULL, NULL), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_audit_verify(NULL, &r), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_audit_verify(au, NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "NULL argument");
    ck_assert_int_eq(vigil_audit_verify_checkpoint(au, 1, NULL, &r), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_audit_verify_checkpoint(au, 0, "ab", &r), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "checkpoint seq must be at least 1, got 0");
    ck_assert_int_eq(vigil_audit_verify_checkpoint(au, 1, "ab", &r), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "checkpoint mac must be 64 hex digits");
    char notHex[65];
    memset(notHex, 'g', 64);
    notHex[64] = '\0';
    ck_assert_int_eq(vigil_audit_verify_checkpoint(au, 1, notHex, &r), VIGIL_EINVAL);
    vigil_buf b = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil_audit_report_json(NULL, &b), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_audit_report_json(&r, NULL), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_audit_list_json(NULL, 0, 0, &b), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_audit_list_json(au, 0, 0, NULL), VIGIL_EINVAL);
    vigil_audit_free(NULL);
    fx_close(&f);
}
END_TEST

START_TEST(read_only_store_fails_cleanly)
{
    fixture f;
    fx_init(&f);
    fx_fill(&f, 2);
    fx_close(&f);
    vigil_store_options so = VIGIL_STORE_OPTIONS_INIT;
    so.read_only = 1;
    ck_assert_int_eq(vigil_store_open(&f.store, f.url, &so), VIGIL_OK);
    ck_assert_int_eq(fx_open_audit(&f, KEY, KEY_LEN), VIGIL_OK);
    ck_assert_int_eq(vigil_audit_append(f.audit, "x", NULL, NULL, NULL, NULL), VIGIL_EREADONLY);
    /* head re-read from the store, unchanged; verify still works */
    int64_t seq;
    ck_assert_int_eq(vigil_audit_append(f.audit, "x", NULL, NULL, NULL, NULL), VIGIL_EREADONLY);
    ck_assert_int_eq(vigil_audit_head(f.audit, &seq, NULL), VIGIL_OK);
    ck_assert_int_eq(seq, 2);
    expect_ok(f.audit, 2);
    fx_close(&f);
}
END_TEST

/* ---- tampering --------------------------------------------------------------- */

START_TEST(tamper_edit_row)
{
    fixture f;
    fx_init(&f);
    fx_fill(&f, 6);
    fx_close(&f);
    tamper(&f, "UPDATE audit SET data = '{\"n\":40}' WHERE seq = 4;");
    fx_reopen(&f);
    expect_broken(f.audit, 4, 3, "mac mismatch");
    fx_close(&f);

    /* editing kind, ts, action_id or mac is caught the same way */
    static const char *edits[] = {
        "UPDATE audit SET data = '{\"n\":4}', kind = 'guard' WHERE seq = 4;",
        "UPDATE audit SET kind = 'result', ts = ts + 1 WHERE seq = 4;",
        "UPDATE audit SET ts = ts - 1, action_id = NULL WHERE seq = 4;",
        "UPDATE audit SET action_id = 'act-1', mac = replace(mac, substr(mac, 1, 1), 'f') "
        "WHERE seq = 4;",
    };
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        tamper(&f, edits[i]);
        fx_reopen(&f);
        expect_broken(f.audit, 4, 3, "mac mismatch");
        fx_close(&f);
    }
}
END_TEST

START_TEST(tamper_delete_middle_row)
{
    fixture f;
    fx_init(&f);
    fx_fill(&f, 6);
    tamper(&f, "DELETE FROM audit WHERE seq = 3;");
    expect_broken(f.audit, 3, 2, "sequence gap: expected 3, found 4");
    /* the first row deleted */
    tamper(&f, "DELETE FROM audit WHERE seq = 1;");
    expect_broken(f.audit, 1, 0, "sequence gap: expected 1, found 2");
    /* a row slipped in below the first seq */
    tamper(&f, "INSERT INTO audit SELECT -5, ts, kind, action_id, data, prev_mac, mac FROM audit"
               " WHERE seq = 2;");
    expect_broken(f.audit, 1, 0, "sequence gap: expected 1, found -5");
    fx_close(&f);
}
END_TEST

START_TEST(tamper_reorder_rows)
{
    fixture f;
    fx_init(&f);
    fx_fill(&f, 6);
    /* swap the contents of rows 3 and 5 */
    tamper(&f, "UPDATE audit SET seq = -seq WHERE seq IN (3, 5);"
               "UPDATE audit SET seq = 5 WHERE seq = -3;"
               "UPDATE audit SET seq = 3 WHERE seq = -5;");
    expect_broken(f.audit, 3, 2, "prev_mac does not match row 2");
    fx_close(&f);
}
END_TEST

START_TEST(tamper_splice_prev_mac)
{
    fixture f;
    fx_init(&f);
    fx_fill(&f, 4);
    tamper(&f, "UPDATE audit SET prev_mac = (SELECT mac FROM audit WHERE seq = 1) WHERE seq = 3;");
    expect_broken(f.audit, 3, 2, "prev_mac does not match row 2");
    tamper(&f, "UPDATE audit SET prev_mac = (SELECT mac FROM audit WHERE seq = 2) WHERE seq = 3;"
               "UPDATE audit SET mac = 'zz' WHERE seq = 2;");
    expect_broken(f.audit, 2, 1, "mac mismatch");
    fx_close(&f);
}
END_TEST

START_TEST(tamper_truncated_tail_and_checkpoint)
{
    fixture f;
    fx_init(&f);
    fx_fill(&f, 6);
    int64_t cp_seq;
    char cp_mac[VIGIL_AUDIT_MAC_HEX];
    ck_assert_int_eq(vigil_audit_head(f.audit, &cp_seq, cp_mac), VIGIL_OK);
    ck_assert_int_eq(cp_seq, 6);

    tamper(&f, "DELETE FROM audit WHERE seq >= 5;");
    /* while it runs, the chain's own head is a checkpoint */
    expect_broken(f.audit, 5, 4, "chain ends at 4 before checkpoint 6");
    fx_close(&f);
    fx_reopen(&f);
    /* after a restart the chain alone looks fine ... */
    expect_ok(f.audit, 4);
    /* ... the hub's checkpoint reveals the truncation */
    vigil_audit_report r = VIGIL_AUDIT_REPORT_INIT;
    ck_assert_int_eq(vigil_audit_verify_checkpoint(f.audit, cp_seq, cp_mac, &r), VIGIL_OK);
    ck_assert_int_eq(r.ok, 0);
    ck_assert_int_eq(r.broken_at, 5);
    ck_assert_int_eq(r.entries, 4);
    ck_assert_str_eq(r.reason, "chain ends at 4 before checkpoint 6");
    vigil_buf b = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil_audit_report_json(&r, &b), VIGIL_OK);
    ck_assert_str_eq(b.ptr, "{\"ok\":false,\"entries\":4,\"broken_at\":5,"
                            "\"reason\":\"chain ends at 4 before checkpoint 6\"}");

    /* the tail re-appended: the rows exist again but the checkpoint differs */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(vigil_audit_append(f.audit, "request", NULL, NULL, NULL, NULL), VIGIL_OK);
    expect_ok(f.audit, 7);
    ck_assert_int_eq(vigil_audit_verify_checkpoint(f.audit, cp_seq, cp_mac, &r), VIGIL_OK);
    ck_assert_int_eq(r.ok, 0);
    ck_assert_int_eq(r.broken_at, 6);
    ck_assert_int_eq(r.entries, 5);
    ck_assert_str_eq(r.reason, "checkpoint mac differs at row 6");

    /* a break before the checkpoint is reported first */
    tamper(&f, "UPDATE audit SET data = '{\"n\":9}' WHERE seq = 2;");
    ck_assert_int_eq(vigil_audit_verify_checkpoint(f.audit, cp_seq, cp_mac, &r), VIGIL_OK);
    ck_assert_int_eq(r.broken_at, 2);
    ck_assert_str_eq(r.reason, "mac mismatch");
    vigil_buf_dispose(&b);
    fx_close(&f);
}
END_TEST

START_TEST(wrong_key_breaks_at_first_row)
{
    fixture f;
    fx_init(&f);
    fx_fill(&f, 3);
    vigil_audit_free(f.audit);
    static const char other[] = "another key of 32 bytes........!";
    ck_assert_int_eq(fx_open_audit(&f, other, sizeof(other) - 1), VIGIL_OK);
    expect_broken(f.audit, 1, 0, "mac mismatch");
    vigil_audit_free(f.audit);
    ck_assert_int_eq(fx_open_audit(&f, KEY, KEY_LEN - 1), VIGIL_OK); /* a prefix of the key */
    expect_broken(f.audit, 1, 0, "mac mismatch");
    fx_close(&f);
}
END_TEST

START_TEST(malformed_rows)
{
    fixture f;
    fx_init(&f);
    fx_fill(&f, 3);
    fx_close(&f);
    /* the newest row's mac is garbage: open refuses with ECORRUPT */
    tamper(&f, "UPDATE audit SET mac = 'not hex' WHERE seq = 3;");
    fx_open_store(&f);
    ck_assert_int_eq(fx_open_audit(&f, KEY, KEY_LEN), VIGIL_ECORRUPT);
    vt_assert_error(VIGIL_ECORRUPT, "newest row (seq 3) has a malformed mac");
    ck_assert_ptr_null(f.audit);
    vigil_store_close(f.store);
    /* a text field NULL after the attacker rebuilt the table without NOT NULL */
    tamper(&f, "UPDATE audit SET mac = 'x' WHERE seq = 3;"
               "CREATE TABLE a2(seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, kind TEXT,"
               " action_id TEXT, data TEXT, prev_mac TEXT, mac TEXT);"
               "INSERT INTO a2 SELECT * FROM audit; DROP TABLE audit;"
               "ALTER TABLE a2 RENAME TO audit;"
               "UPDATE audit SET data = NULL WHERE seq = 2;"
               "DELETE FROM audit WHERE seq = 3;");
    fx_reopen(&f);
    expect_broken(f.audit, 2, 1, "malformed row");
    vigil_buf b = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil_audit_list_json(f.audit, 0, 0, &b), VIGIL_OK);
    ck_assert_ptr_nonnull(strstr(b.ptr, "\"seq\":2,"));
    ck_assert_ptr_nonnull(strstr(b.ptr, "\"data\":null,"));
    vigil_buf_dispose(&b);
    fx_close(&f);

    /* only rows below seq 1: the head is refused */
    tamper(&f, "UPDATE audit SET seq = seq - 10;");
    fx_open_store(&f);
    ck_assert_int_eq(fx_open_audit(&f, KEY, KEY_LEN), VIGIL_ECORRUPT);
    vt_assert_error(VIGIL_ECORRUPT, "the newest row has seq -8");
    vigil_store_close(f.store);
}
END_TEST

/* ---- JSON -------------------------------------------------------------------- */

START_TEST(report_json_exact)
{
    vigil_audit_report r = VIGIL_AUDIT_REPORT_INIT;
    memset(&r, 0, sizeof(r));
    r.ok = 1;
    r.entries = 42;
    vigil_buf b = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil__buf_puts(&b, "old"), VIGIL_OK);
    ck_assert_int_eq(vigil_audit_report_json(&r, &b), VIGIL_OK);
    ck_assert_str_eq(b.ptr, "{\"ok\":true,\"entries\":42}");
    r.ok = 0;
    r.entries = 6;
    r.broken_at = 7;
    strcpy(r.reason, "sequence gap: expected 7, found 9 \"q\"");
    ck_assert_int_eq(vigil_audit_report_json(&r, &b), VIGIL_OK);
    ck_assert_str_eq(b.ptr, "{\"ok\":false,\"entries\":6,\"broken_at\":7,"
                            "\"reason\":\"sequence gap: expected 7, found 9 \\\"q\\\"\"}");
    vigil_buf_dispose(&b);
}
END_TEST

START_TEST(list_json_exact)
{
    fixture f;
    fx_init(&f);
    char m1[VIGIL_AUDIT_MAC_HEX], m2[VIGIL_AUDIT_MAC_HEX], m3[VIGIL_AUDIT_MAC_HEX];
    ck_assert_int_eq(vigil_audit_append(f.audit, "request", "a-1", "{\"target\":\"db\"}", NULL, m1),
                     VIGIL_OK);
    ck_assert_int_eq(
        vigil_audit_append(f.audit, "auth", NULL, "{\"why\":\"bad \\\"sig\\\"\"}", NULL, m2),
        VIGIL_OK);
    ck_assert_int_eq(vigil_audit_append(f.audit, "result", "a-1", NULL, NULL, m3), VIGIL_OK);

    vigil_buf b = VIGIL_BUF_INIT, want = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil_audit_list_json(f.audit, 0, 0, &b), VIGIL_OK);
    ck_assert_int_eq(vigil__buf_printf(&want,
                                       "{\"entries\":["
                                       "{\"seq\":1,\"ts\":1700000000000,\"kind\":\"request\","
                                       "\"action_id\":\"a-1\",\"data\":{\"target\":\"db\"},"
                                       "\"mac\":\"%s\"},"
                                       "{\"seq\":2,\"ts\":1700000000001,\"kind\":\"auth\","
                                       "\"action_id\":null,\"data\":{\"why\":\"bad \\\"sig\\\"\"},"
                                       "\"mac\":\"%s\"},"
                                       "{\"seq\":3,\"ts\":1700000000002,\"kind\":\"result\","
                                       "\"action_id\":\"a-1\",\"data\":{},\"mac\":\"%s\"}]}",
                                       m1, m2, m3),
                     VIGIL_OK);
    ck_assert_str_eq(b.ptr, want.ptr);

    /* since and limit */
    ck_assert_int_eq(vigil_audit_list_json(f.audit, 1700000000001, 1, &b), VIGIL_OK);
    vigil__buf_clear(&want);
    ck_assert_int_eq(vigil__buf_printf(&want,
                                       "{\"entries\":[{\"seq\":2,\"ts\":1700000000001,\"kind\":"
                                       "\"auth\",\"action_id\":null,\"data\":{\"why\":\"bad "
                                       "\\\"sig\\\"\"},\"mac\":\"%s\"}]}",
                                       m2),
                     VIGIL_OK);
    ck_assert_str_eq(b.ptr, want.ptr);
    ck_assert_int_eq(vigil_audit_list_json(f.audit, 1800000000000, 5, &b), VIGIL_OK);
    ck_assert_str_eq(b.ptr, "{\"entries\":[]}");

    /* an edited row whose data is no longer a JSON object is shown as a string */
    tamper(&f, "UPDATE audit SET data = '[1,' WHERE seq = 3;");
    ck_assert_int_eq(vigil_audit_list_json(f.audit, 1700000000002, 0, &b), VIGIL_OK);
    ck_assert_ptr_nonnull(strstr(b.ptr, "\"data\":\"[1,\","));
    vigil_buf_dispose(&b);
    vigil_buf_dispose(&want);
    fx_close(&f);
}
END_TEST

START_TEST(list_json_limits)
{
    fixture f;
    fx_init(&f);
    fx_fill(&f, VIGIL_AUDIT_LIST_MAX + 5);
    vigil_buf b = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil_audit_list_json(f.audit, 0, 0, &b), VIGIL_OK);
    size_t n = 0;
    for (const char *p = b.ptr; (p = strstr(p, "\"seq\":")) != NULL; p++)
        n++;
    ck_assert_uint_eq(n, VIGIL_AUDIT_LIST_DEFAULT);
    ck_assert_int_eq(vigil_audit_list_json(f.audit, 0, 100000, &b), VIGIL_OK);
    n = 0;
    for (const char *p = b.ptr; (p = strstr(p, "\"seq\":")) != NULL; p++)
        n++;
    ck_assert_uint_eq(n, VIGIL_AUDIT_LIST_MAX);
    ck_assert_ptr_nonnull(strstr(b.ptr, "{\"seq\":1000,"));
    ck_assert_ptr_null(strstr(b.ptr, "{\"seq\":1001,"));
    vigil_buf_dispose(&b);
    fx_close(&f);
}
END_TEST

/* ---- concurrency ------------------------------------------------------------- */

typedef struct worker {
    vigil_audit *audit;
    int id;
    int failures;
    int64_t seqs[200];
} worker;

static void *append_worker(void *p)
{
    worker *w = p;
    for (int i = 0; i < 200; i++) {
        char data[64];
        snprintf(data, sizeof(data), "{\"thread\":%d,\"i\":%d}", w->id, i);
        if (vigil_audit_append(w->audit, "execute", NULL, data, &w->seqs[i], NULL) != VIGIL_OK)
            w->failures++;
    }
    return NULL;
}

START_TEST(concurrent_appends_are_contiguous)
{
    fixture f;
    fx_init(&f);
    vigil_audit_free(f.audit);
    /* real time clock here: the mutex, not the clock, orders the rows */
    vigil_audit_options o = VIGIL_AUDIT_OPTIONS_INIT;
    o.store = f.store;
    o.key = KEY;
    o.key_len = KEY_LEN;
    o.logger.min_level = VIGIL_LOG_OFF;
    ck_assert_int_eq(vigil_audit_open(&f.audit, &o), VIGIL_OK);
    worker w[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        memset(&w[i], 0, sizeof(w[i]));
        w[i].audit = f.audit;
        w[i].id = i;
        ck_assert_int_eq(pthread_create(&t[i], NULL, append_worker, &w[i]), 0);
    }
    static char seen[801];
    memset(seen, 0, sizeof(seen));
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(w[i].failures, 0);
        for (int k = 0; k < 200; k++) {
            ck_assert(w[i].seqs[k] >= 1 && w[i].seqs[k] <= 800);
            ck_assert_int_eq(seen[w[i].seqs[k]], 0);
            seen[w[i].seqs[k]] = 1;
            if (k)
                ck_assert_int_gt(w[i].seqs[k], w[i].seqs[k - 1]);
        }
    }
    int64_t seq;
    ck_assert_int_eq(vigil_audit_head(f.audit, &seq, NULL), VIGIL_OK);
    ck_assert_int_eq(seq, 800);
    expect_ok(f.audit, 800);
    fx_close(&f);
}
END_TEST

static void capture_log(const vigil_log_record *rec, void *payload)
{
    char *buf = payload;
    size_t len = strlen(buf);
    snprintf(buf + len, 512 - len, "%s %s;", rec->message, rec->fields);
}

START_TEST(second_writer_on_same_file)
{
    fixture f;
    fx_init(&f);
    fx_fill(&f, 2);
    /* another process-like writer: its own store and audit on the file */
    vigil_store *st2 = NULL;
    vigil_audit *a2 = NULL;
    ck_assert_int_eq(vigil_store_open(&st2, f.url, NULL), VIGIL_OK);
    vigil_audit_options o = VIGIL_AUDIT_OPTIONS_INIT;
    o.store = st2;
    o.key = KEY;
    o.key_len = KEY_LEN;
    o.logger.min_level = VIGIL_LOG_OFF;
    ck_assert_int_eq(vigil_audit_open(&a2, &o), VIGIL_OK);
    int64_t seq;
    ck_assert_int_eq(vigil_audit_append(a2, "request", NULL, NULL, &seq, NULL), VIGIL_OK);
    ck_assert_int_eq(seq, 3);
    static char logged[512];
    logged[0] = '\0';
    vigil_audit_free(f.audit);
    o.store = f.store;
    o.logger.cb = capture_log;
    o.logger.payload = logged;
    o.logger.min_level = VIGIL_LOG_DEBUG;
    int64_t seq_before;
    ck_assert_int_eq(vigil_audit_open(&f.audit, &o), VIGIL_OK);
    ck_assert_int_eq(vigil_audit_head(f.audit, &seq_before, NULL), VIGIL_OK);
    ck_assert_int_eq(seq_before, 3);
    ck_assert_int_eq(vigil_audit_append(a2, "request", NULL, NULL, &seq, NULL), VIGIL_OK);
    ck_assert_int_eq(seq, 4);
    /* the first writer finds seq 4 taken and continues after it */
    ck_assert_int_eq(vigil_audit_append(f.audit, "request", NULL, NULL, &seq, NULL), VIGIL_OK);
    ck_assert_int_eq(seq, 5);
    ck_assert_str_eq(logged, "opened head_seq=3;seq taken by another writer seq=4;");
    expect_ok(f.audit, 5);
    vigil_audit_free(a2);
    vigil_store_close(st2);
    fx_close(&f);
}
END_TEST

/* ---- keys -------------------------------------------------------------------- */

START_TEST(key_from_environment)
{
    vigil_buf k = VIGIL_BUF_INIT;
    const char *dir = vt_tmpdir();
    char file[512];
    snprintf(file, sizeof(file), "%s/audit.key", dir);

    unsetenv("VT_AUDIT_KEY");
    ck_assert_int_eq(vigil_audit_key_load(&k, "VT_AUDIT_KEY", NULL), VIGIL_EENV);
    vt_assert_error(VIGIL_EENV, "environment variable VT_AUDIT_KEY is not set");
    ck_assert_int_eq(vigil_audit_key_load(&k, NULL, NULL), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "no key source");
    ck_assert_int_eq(vigil_audit_key_load(NULL, "VT_AUDIT_KEY", file), VIGIL_EINVAL);

    setenv("VT_AUDIT_KEY", "sixteen bytes!!!", 1);
    ck_assert_int_eq(vigil_audit_key_load(&k, "VT_AUDIT_KEY", file), VIGIL_OK);
    ck_assert_uint_eq(k.size, 16);
    ck_assert_int_eq(memcmp(k.ptr, "sixteen bytes!!!", 16), 0);
    /* the environment wins: no key file was created */
    ck_assert_int_eq(access(file, F_OK), -1);

    setenv("VT_AUDIT_KEY", "fifteen bytes!!", 1);
    ck_assert_int_eq(vigil_audit_key_load(&k, "VT_AUDIT_KEY", file), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "VT_AUDIT_KEY is 15 bytes, need 16 to 4096");
    /* the message never holds the key */
    ck_assert_ptr_null(strstr(vigil_error_last()->message, "fifteen"));
    setenv("VT_AUDIT_KEY", "", 1);
    ck_assert_int_eq(vigil_audit_key_load(&k, "VT_AUDIT_KEY", file), VIGIL_ELIMIT);
    unsetenv("VT_AUDIT_KEY");
    vigil_buf_dispose(&k);
}
END_TEST

START_TEST(key_file_created_and_reused)
{
    vigil_buf k = VIGIL_BUF_INIT, k2 = VIGIL_BUF_INIT;
    const char *dir = vt_tmpdir();
    char file[512];
    snprintf(file, sizeof(file), "%s/audit.key", dir);
    unsetenv("VT_AUDIT_KEY");
    mode_t old = umask(0);
    int rc = vigil_audit_key_load(&k, "VT_AUDIT_KEY", file);
    umask(old);
    ck_assert_int_eq(rc, VIGIL_OK);
    ck_assert_uint_eq(k.size, VIGIL_AUDIT_KEY_FILE_SIZE);
    struct stat st;
    ck_assert_int_eq(stat(file, &st), 0);
    ck_assert_int_eq(st.st_mode & 07777, 0600);
    ck_assert_int_eq(st.st_size, VIGIL_AUDIT_KEY_FILE_SIZE);
    /* no temporary file left behind */
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int entries = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (e->d_name[0] != '.')
            entries++;
    closedir(d);
    ck_assert_int_eq(entries, 1);
    ck_assert_int_eq(vigil_audit_key_load(&k2, NULL, file), VIGIL_OK);
    ck_assert_uint_eq(k2.size, k.size);
    ck_assert_int_eq(memcmp(k.ptr, k2.ptr, k.size), 0);
    /* a second file gets another random key */
    char file2[512];
    snprintf(file2, sizeof(file2), "%s/other.key", dir);
    ck_assert_int_eq(vigil_audit_key_load(&k2, NULL, file2), VIGIL_OK);
    ck_assert_int_ne(memcmp(k.ptr, k2.ptr, k.size), 0);

    /* it works as an audit key */
    fixture f;
    fx_init(&f);
    vigil_audit_free(f.audit);
    ck_assert_int_eq(fx_open_audit(&f, k.ptr, k.size), VIGIL_OK);
    fx_fill(&f, 2);
    expect_ok(f.audit, 2);
    fx_close(&f);
    vigil_buf_dispose(&k);
    vigil_buf_dispose(&k2);
}
END_TEST

START_TEST(key_file_refused)
{
    vigil_buf k = VIGIL_BUF_INIT;
    const char *dir = vt_tmpdir();
    char path[600];

    const char *p = vt_write_file(dir, "open.key", "0123456789abcdef0123", 20);
    ck_assert_int_eq(chmod(p, 0644), 0);
    ck_assert_int_eq(vigil_audit_key_load(&k, NULL, p), VIGIL_EPERM);
    vt_assert_error(VIGIL_EPERM, "is accessible by group or others (mode 0644)");
    ck_assert_int_eq(chmod(p, 0640), 0);
    ck_assert_int_eq(vigil_audit_key_load(&k, NULL, p), VIGIL_EPERM);
    ck_assert_int_eq(chmod(p, 0604), 0);
    ck_assert_int_eq(vigil_audit_key_load(&k, NULL, p), VIGIL_EPERM);
    ck_assert_int_eq(chmod(p, 0600), 0);
    ck_assert_int_eq(vigil_audit_key_load(&k, NULL, p), VIGIL_OK);
    ck_assert_uint_eq(k.size, 20);
    ck_assert_int_eq(memcmp(k.ptr, "0123456789abcdef0123", 20), 0);
    ck_assert_int_eq(chmod(p, 0400), 0);
    ck_assert_int_eq(vigil_audit_key_load(&k, NULL, p), VIGIL_OK);

    p = vt_write_file(dir, "short.key", "0123456789abcde", 15);
    ck_assert_int_eq(chmod(p, 0600), 0);
    ck_assert_int_eq(vigil_audit_key_load(&k, NULL, p), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "holds 15 bytes, need at least 16");
    p = vt_write_file(dir, "empty.key", "", 0);
    ck_assert_int_eq(chmod(p, 0600), 0);
    ck_assert_int_eq(vigil_audit_key_load(&k, NULL, p), VIGIL_ELIMIT);

    static char big[VIGIL_AUDIT_KEY_MAX + 1];
    memset(big, 'k', sizeof(big));
    p = vt_write_file(dir, "big.key", big, sizeof(big));
    ck_assert_int_eq(chmod(p, 0600), 0);
    ck_assert_int_eq(vigil_audit_key_load(&k, NULL, p), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "holds more than 4096 bytes");

    /* a symbolic link, a directory, a missing directory */
    snprintf(path, sizeof(path), "%s/link.key", dir);
    ck_assert_int_eq(symlink("short.key", path), 0);
    ck_assert_int_eq(vigil_audit_key_load(&k, NULL, path), VIGIL_EIO);
    vt_assert_error(VIGIL_EIO, "is a symbolic link");
    ck_assert_int_eq(vigil_audit_key_load(&k, NULL, dir), VIGIL_EIO);
    vt_assert_error(VIGIL_EIO, "is not a regular file");
    snprintf(path, sizeof(path), "%s/missing/audit.key", dir);
    ck_assert_int_eq(vigil_audit_key_load(&k, NULL, path), VIGIL_EIO);
    vt_assert_error(VIGIL_EIO, "cannot create key file");
    ck_assert_int_eq(vigil_audit_key_load(&k, NULL, ""), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "empty key file path");
    vigil_buf_dispose(&k);
}
END_TEST

/* ---- out of memory ----------------------------------------------------------- */

typedef struct oom_ctx {
    const char *dir;
    int run;
    vigil_store *store;
    vigil_audit *audit;
    vigil_buf out;
} oom_ctx;

static int oom_op(void *p)
{
    oom_ctx *c = p;
    char url[600];
    int rc;
    snprintf(url, sizeof(url), "sqlite://%s/oom-%d.db", c->dir, c->run++);
    if ((rc = vigil_store_open(&c->store, url, NULL)) != 0)
        return rc;
    vigil_audit_options o = VIGIL_AUDIT_OPTIONS_INIT;
    o.store = c->store;
    o.key = KEY;
    o.key_len = KEY_LEN;
    o.logger.min_level = VIGIL_LOG_OFF;
    if ((rc = vigil_audit_open(&c->audit, &o)) != 0)
        return rc;
    for (int i = 0; i < 3; i++)
        if ((rc = vigil_audit_append(c->audit, "request", "a", "{\"k\":[1,2]}", NULL, NULL)) != 0)
            return rc;
    vigil_audit_report r = VIGIL_AUDIT_REPORT_INIT;
    if ((rc = vigil_audit_verify(c->audit, &r)) != 0)
        return rc;
    ck_assert_int_eq(r.ok, 1);
    ck_assert_int_eq(r.entries, 3);
    if ((rc = vigil_audit_list_json(c->audit, 0, 0, &c->out)) != 0 ||
        (rc = vigil_audit_report_json(&r, &c->out)) != 0)
        return rc;
    return VIGIL_OK;
}

static void oom_cleanup(void *p)
{
    oom_ctx *c = p;
    vigil_audit_free(c->audit);
    c->audit = NULL;
    vigil_store_close(c->store);
    c->store = NULL;
    vigil_buf_dispose(&c->out);
}

START_TEST(out_of_memory_sweep)
{
    vt_alloc_install();
    oom_ctx c;
    memset(&c, 0, sizeof(c));
    c.dir = vt_tmpdir();
    ck_assert_int_gt(vt_oom_sweep(oom_op, oom_cleanup, &c, 0), 5);
}
END_TEST

static Suite *audit_suite(void)
{
    Suite *s = suite_create("audit");
    TCase *tc = tcase_create("chain");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, append_head_verify);
    tcase_add_test(tc, long_chain_is_paged);
    tcase_add_test(tc, bad_arguments);
    tcase_add_test(tc, read_only_store_fails_cleanly);
    tcase_add_test(tc, report_json_exact);
    tcase_add_test(tc, list_json_exact);
    tcase_add_test(tc, list_json_limits);
    tcase_add_test(tc, second_writer_on_same_file);
    suite_add_tcase(s, tc);
    TCase *tamp = tcase_create("tamper");
    tcase_set_timeout(tamp, 30);
    tcase_add_test(tamp, tamper_edit_row);
    tcase_add_test(tamp, tamper_delete_middle_row);
    tcase_add_test(tamp, tamper_reorder_rows);
    tcase_add_test(tamp, tamper_splice_prev_mac);
    tcase_add_test(tamp, tamper_truncated_tail_and_checkpoint);
    tcase_add_test(tamp, wrong_key_breaks_at_first_row);
    tcase_add_test(tamp, malformed_rows);
    suite_add_tcase(s, tamp);
    TCase *conc = tcase_create("concurrency");
    tcase_set_timeout(conc, 60);
    tcase_add_test(conc, concurrent_appends_are_contiguous);
    suite_add_tcase(s, conc);
    TCase *keys = tcase_create("keys");
    tcase_set_timeout(keys, 10);
    tcase_add_test(keys, key_from_environment);
    tcase_add_test(keys, key_file_created_and_reused);
    tcase_add_test(keys, key_file_refused);
    suite_add_tcase(s, keys);
    TCase *oom = tcase_create("oom");
    tcase_set_timeout(oom, 120);
    tcase_add_test(oom, out_of_memory_sweep);
    suite_add_tcase(s, oom);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(audit_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
