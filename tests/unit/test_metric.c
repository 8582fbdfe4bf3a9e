/* Metric model: validation, series keys, batches, the strict JSON codec of the
 * ingest body (the JSON helpers themselves: test_json.c). */
#include <cJSON.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal/json.h"
#include "metric/internal.h"
#include "testutil.h"

/* ---- helpers ------------------------------------------------------------------ */

static vigil_batch *new_batch(void)
{
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    ck_assert_ptr_nonnull(b);
    return b;
}

/* Decodes a copy of json that is NOT NUL-terminated (an exact-size heap block,
 * so ASan catches any read past the end). */
static int decode_exact(vigil_batch *b, const char *json, size_t len,
                        const vigil_batch_decode_options *o)
{
    char *copy = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, json, len);
    int rc = vigil_batch_decode_json(b, copy, len, o);
    free(copy);
    return rc;
}

static int decode(vigil_batch *b, const char *json)
{
    return decode_exact(b, json, strlen(json), NULL);
}

/* Decoding fails with `code`, a message containing `needle`, and an empty
 * batch (which held a metric before). */
#define expect_fail_len(json_, len_, code_, needle_)                                        \
    do {                                                                                    \
        vigil_batch *b_ = new_batch();                                                      \
        ck_assert_int_eq(decode(b_, "{\"agent\":\"a\",\"metrics\":[{\"name\":\"x\","        \
                                    "\"value\":1,\"ts\":1}]}"),                             \
                         VIGIL_OK);                                                         \
        ck_assert_uint_eq(vigil_batch_count(b_), 1);                                        \
        int rc_ = decode_exact(b_, (json_), (len_), NULL);                                  \
        ck_assert_msg(rc_ == (code_), "%s: expected %d, got %d (%s)", #json_, (code_), rc_, \
                      vigil_error_last()->message);                                         \
        vt_assert_error((code_), (needle_));                                                \
        ck_assert_uint_eq(vigil_batch_count(b_), 0);                                        \
        ck_assert_ptr_null(vigil_batch_agent(b_));                                          \
        vigil_batch_free(b_);                                                               \
    } while (0)

#define expect_fail(json_, code_, needle_) \
    expect_fail_len((json_), strlen(json_), (code_), (needle_))

/* A body with one metric whose fields are `fields`. */
static const char *one(const char *fields)
{
    static char buf[4096];
    snprintf(buf, sizeof(buf), "{\"metrics\":[%s]}", fields);
    return buf;
}

static void assert_metric_eq(const vigil_metric *a, const vigil_metric *b)
{
    ck_assert_str_eq(a->name, b->name);
    if (isnan(a->value))
        ck_assert(isnan(b->value));
    else
        ck_assert_msg(memcmp(&a->value, &b->value, sizeof(double)) == 0, "%.17g != %.17g", a->value,
                      b->value);
    ck_assert_int_eq(a->ts_ms, b->ts_ms);
    ck_assert_uint_eq(a->ntags, b->ntags);
    for (size_t i = 0; i < a->ntags; i++) {
        ck_assert_str_eq(a->tags[i].key, b->tags[i].key);
        ck_assert_str_eq(a->tags[i].value, b->tags[i].value);
    }
    if (a->error)
        ck_assert_str_eq(a->error, b->error);
    else
        ck_assert_ptr_null(b->error);
}

static void assert_batch_eq(const vigil_batch *a, const vigil_batch *b)
{
    ck_assert_uint_eq(vigil_batch_count(a), vigil_batch_count(b));
    for (size_t i = 0; i < vigil_batch_count(a); i++)
        assert_metric_eq(vigil_batch_get(a, i), vigil_batch_get(b, i));
    if (vigil_batch_agent(a))
        ck_assert_str_eq(vigil_batch_agent(a), vigil_batch_agent(b));
    else
        ck_assert_ptr_null(vigil_batch_agent(b));
    if (vigil_batch_id(a))
        ck_assert_str_eq(vigil_batch_id(a), vigil_batch_id(b));
    else
        ck_assert_ptr_null(vigil_batch_id(b));
}

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    ck_assert_ptr_nonnull(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* ---- model ---------------------------------------------------------------------- */

START_TEST(names)
{
    ck_assert(vigil_metric_name_valid("cpu_usage"));
    ck_assert(vigil_metric_name_valid("_x"));
    ck_assert(vigil_metric_name_valid(":a:b9"));
    ck_assert(vigil_metric_name_valid("A"));
    ck_assert(!vigil_metric_name_valid(""));
    ck_assert(!vigil_metric_name_valid(NULL));
    ck_assert(!vigil_metric_name_valid("9abc"));
    ck_assert(!vigil_metric_name_valid("a-b"));
    ck_assert(!vigil_metric_name_valid("a b"));
    ck_assert(!vigil_metric_name_valid("a.b"));
    ck_assert(!vigil_metric_name_valid("caf\xc3\xa9"));
    char *n = repeat('a', 200);
    ck_assert(vigil_metric_name_valid(n));
    free(n);
    n = repeat('a', 201);
    ck_assert(!vigil_metric_name_valid(n));
    free(n);
}
END_TEST

START_TEST(validate_classes)
{
    vigil_tag tags[2] = {{"host", "h1"}, {"cpu", "0"}};
    vigil_metric m = {"cpu_usage", 0.5, 1000, tags, 2, NULL};
    ck_assert_int_eq(vigil_metric_validate(&m), VIGIL_OK);

    ck_assert_int_eq(vigil_metric_validate(NULL), VIGIL_EINVAL);
    m.name = NULL;
    ck_assert_int_eq(vigil_metric_validate(&m), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "name: is NULL");
    m.name = "9x";
    ck_assert_int_eq(vigil_metric_validate(&m), VIGIL_ENAME);
    vt_assert_error(VIGIL_ENAME, "name: invalid metric name \"9x\"");
    char *longname = repeat('a', 201);
    m.name = longname;
    ck_assert_int_eq(vigil_metric_validate(&m), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "name: metric name longer than 200 bytes");
    free(longname);
    m.name = "cpu_usage";

    m.value = NAN;
    ck_assert_int_eq(vigil_metric_validate(&m), VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE, "value: expected a finite number, got NaN");
    m.value = INFINITY;
    ck_assert_int_eq(vigil_metric_validate(&m), VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE, "got an infinity");
    m.error = "collector failed";
    ck_assert_int_eq(vigil_metric_validate(&m), VIGIL_OK);
    m.error = "";
    ck_assert_int_eq(vigil_metric_validate(&m), VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE, "error: expected a non-empty text");
    m.error = "bad \xff";
    ck_assert_int_eq(vigil_metric_validate(&m), VIGIL_EENCODING);
    vt_assert_error(VIGIL_EENCODING, "error: error text is not valid UTF-8");
    char *longerr = repeat('e', 1025);
    m.error = longerr;
    ck_assert_int_eq(vigil_metric_validate(&m), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "error: error text longer than 1024 bytes");
    free(longerr);
    m.error = NULL;
    m.value = 1;

    m.ts_ms = -1;
    ck_assert_int_eq(vigil_metric_validate(&m), VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE, "ts: expected milliseconds from 0 to 9007199254740991");
    m.ts_ms = INT64_C(9007199254740992);
    ck_assert_int_eq(vigil_metric_validate(&m), VIGIL_EVALUE);
    m.ts_ms = 0;
    ck_assert_int_eq(vigil_metric_validate(&m), VIGIL_OK);

    tags[1].key = "bad key";
    ck_assert_int_eq(vigil_metric_validate(&m), VIGIL_ENAME);
    vt_assert_error(VIGIL_ENAME, "tags[\"bad key\"]: invalid tag key \"bad key\"");
    tags[1].key = "host";
    ck_assert_int_eq(vigil_metric_validate(&m), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "tags.host: duplicate tag key");
    tags[1].key = "cpu";
    tags[1].value = "\xc0\xaf";
    ck_assert_int_eq(vigil_metric_validate(&m), VIGIL_EENCODING);
    vt_assert_error(VIGIL_EENCODING, "tags.cpu: tag value is not valid UTF-8");
    char *longval = repeat('v', 1025);
    tags[1].value = longval;
    ck_assert_int_eq(vigil_metric_validate(&m), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "tags.cpu: tag value longer than 1024 bytes");
    longval[1024] = '\0';
    ck_assert_int_eq(vigil_metric_validate(&m), VIGIL_OK);
    free(longval);
    tags[1].value = NULL;
    ck_assert_int_eq(vigil_metric_validate(&m), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "tags[1]: value is NULL");
    tags[1].value = "";
    ck_assert_int_eq(vigil_metric_validate(&m), VIGIL_OK); /* empty values are allowed */

    vigil_tag many[65];
    char keys[65][16];
    for (int i = 0; i < 65; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%d", i);
        many[i].key = keys[i];
        many[i].value = "v";
    }
    m.tags = many;
    m.ntags = 65;
    ck_assert_int_eq(vigil_metric_validate(&m), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "tags: more than 64 tags");
    m.ntags = 64;
    ck_assert_int_eq(vigil_metric_validate(&m), VIGIL_OK);
    m.tags = NULL;
    ck_assert_int_eq(vigil_metric_validate(&m), VIGIL_EINVAL);
}
END_TEST

/* The messages of the checks that only build their JSON path when they fail
 * (and the checks that look at 8 bytes at a time: a bad byte anywhere). */
START_TEST(validate_error_paths)
{
    vigil_tag tags[2] = {{"host", "h1"}, {"cpu", "0"}};
    vigil_metric m = {"cpu_usage", 0.5, 1000, tags, 2, NULL};
    m.name = "";
    ck_assert_int_eq(vigil_metric_validate(&m), VIGIL_ENAME);
    vt_assert_error(VIGIL_ENAME,
                    "name: invalid metric name \"\" (expected [a-zA-Z_:][a-zA-Z0-9_:]*)");
    m.name = "cpu_usage_with_a-dash";
    ck_assert_int_eq(vigil_metric_validate(&m), VIGIL_ENAME);
    vt_assert_error(VIGIL_ENAME, "name: invalid metric name \"cpu_usage_with_a-dash\"");
    char *longname = repeat('a', 300);
    longname[250] = '-'; /* too long wins over the bad byte past the limit */
    m.name = longname;
    ck_assert_int_eq(vigil_metric_validate(&m), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "name: metric name longer than 200 bytes (201)");
    m.name = "cpu_usage";

    tags[1].key = "";
    ck_assert_int_eq(vigil_metric_validate(&m), VIGIL_ENAME);
    vt_assert_error(VIGIL_ENAME, "tags[\"\"]: invalid tag key \"\"");
    longname[250] = 'a';
    tags[1].key = longname;
    ck_assert_int_eq(vigil_metric_validate(&m), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "tag key longer than 200 bytes (201)");
    ck_assert_ptr_nonnull(strstr(vigil_error_last()->message, "tags[\"aaaa"));
    tags[1].key = "9cpu";
    ck_assert_int_eq(vigil_metric_validate(&m), VIGIL_ENAME);
    vt_assert_error(VIGIL_ENAME, "tags[\"9cpu\"]: invalid tag key \"9cpu\"");
    free(longname);
    tags[1].key = "cpu";

    /* A bad byte in the first, a later and the last word of 8 bytes. */
    static const char *const bad[] = {"\xff", "abcdefgh\xff", "abcdefghijklmnop\xc3",
                                      "abcdefghijklmnopqrstuvw\x80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tags[1].value = bad[i];
        ck_assert_int_eq(vigil_metric_validate(&m), VIGIL_EENCODING);
        vt_assert_error(VIGIL_EENCODING, "tags.cpu: tag value is not valid UTF-8");
        tags[1].value = "0";
        m.error = bad[i];
        ck_assert_int_eq(vigil_metric_validate(&m), VIGIL_EENCODING);
        vt_assert_error(VIGIL_EENCODING, "error: error text is not valid UTF-8");
        m.error = NULL;
    }
    tags[1].value = "caf\xc3\xa9 \xe2\x82\xac 0123456789";
    ck_assert_int_eq(vigil_metric_validate(&m), VIGIL_OK);
    m.error = "d\xc3\xa9j\xc3\xa0 vu, twice over";
    ck_assert_int_eq(vigil_metric_validate(&m), VIGIL_OK);
    char *err = repeat('e', 1024);
    m.error = err;
    ck_assert_int_eq(vigil_metric_validate(&m), VIGIL_OK);
    free(err);
    m.error = NULL;

    /* A duplicate found after an insertion into the sorted keys. */
    vigil_tag three[3] = {{"zone", "a"}, {"az", "b"}, {"zone", "c"}};
    m.tags = three;
    m.ntags = 3;
    ck_assert_int_eq(vigil_metric_validate(&m), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "tags.zone: duplicate tag key");
    vigil_tag weird[2] = {{"k", "v"}, {"k", "w"}};
    m.tags = weird;
    m.ntags = 2;
    ck_assert_int_eq(vigil_metric_validate(&m), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "tags.k: duplicate tag key");

    /* vigil_batch_add() refuses with the same messages and stays empty. */
    vigil_batch *b = new_batch();
    vt_assert_error(VIGIL_EINVAL, "tags.k: duplicate tag key");
    m.tags = tags;
    m.ntags = 2;
    tags[1].value = "abcdefgh\xff";
    ck_assert_int_eq(vigil_batch_add(b, &m), VIGIL_EENCODING);
    vt_assert_error(VIGIL_EENCODING, "tags.cpu: tag value is not valid UTF-8");
    ck_assert_uint_eq(vigil_batch_count(b), 0);
    vigil_batch_free(b);
}
END_TEST

/* The series key as its definition states it: name{k="v",...} with the tags
 * in key order and \ " and newline escaped in values. */
static void reference_key(char *out, const vigil_metric *m)
{
    const vigil_tag *sorted[VIGIL_METRIC_TAGS_MAX];
    for (size_t i = 0; i < m->ntags; i++) {
        size_t j = i;
        while (j > 0 && strcmp(sorted[j - 1]->key, m->tags[i].key) > 0) {
            sorted[j] = sorted[j - 1];
            j--;
        }
        sorted[j] = &m->tags[i];
    }
    char *p = out + sprintf(out, "%s", m->name);
    if (m->ntags)
        *p++ = '{';
    for (size_t i = 0; i < m->ntags; i++) {
        p += sprintf(p, "%s%s=\"", i ? "," : "", sorted[i]->key);
        for (const char *v = sorted[i]->value; *v; v++) {
            if (*v == '\\' || *v == '"' || *v == '\n')
                *p++ = '\\';
            *p++ = *v == '\n' ? 'n' : *v;
        }
        *p++ = '"';
    }
    if (m->ntags)
        *p++ = '}';
    *p = '\0';
}

START_TEST(series_keys_escape_anywhere)
{
    static const char alphabet[] = "ab\\\"\nz\xc3\xa9{}=,";
    unsigned long long seed = 0x9E3779B97F4A7C15ULL;
    vigil_buf k = VIGIL_BUF_INIT;
    char values[5][64], keys[5][8], want[1024];
    vigil_tag tags[5];
    for (int round = 0; round < 2000; round++) {
        size_t ntags = (size_t)(round % 6);
        for (size_t i = 0; i < ntags; i++) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            size_t len = (size_t)(seed % 40);
            /* Mostly plain letters, so that some words of 8 bytes need no
             * escape and others do. */
            for (size_t c = 0; c < len; c++) {
                seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
                unsigned r = (unsigned)(seed >> 33);
                values[i][c] = r % 4 ? (char)('a' + r % 26) : alphabet[r % (sizeof(alphabet) - 1)];
            }
            values[i][len] = '\0';
            /* Distinct keys, in an order that depends on the round. */
            snprintf(keys[i], sizeof(keys[i]), "k%zu", (i * 3 + (size_t)round) % 5);
            tags[i].key = keys[i];
            tags[i].value = values[i];
        }
        vigil_metric m = {"m:x_1", 1, 1, tags, ntags, NULL};
        ck_assert_int_eq(vigil_metric_series_key(&k, &m), VIGIL_OK);
        reference_key(want, &m);
        ck_assert_str_eq(k.ptr, want);
        ck_assert_uint_eq(k.size, strlen(want));
    }
    vigil_buf_dispose(&k);
}
END_TEST

START_TEST(series_keys)
{
    vigil_buf k = VIGIL_BUF_INIT;
    vigil_tag tags[3] = {{"host", "h1"}, {"cpu", "0"}, {"env", "a\\b\"c\nd"}};
    vigil_metric m = {"cpu_usage", 0.5, 1000, tags, 2, NULL};
    ck_assert_int_eq(vigil_metric_series_key(&k, &m), VIGIL_OK);
    ck_assert_str_eq(k.ptr, "cpu_usage{cpu=\"0\",host=\"h1\"}");
    ck_assert_uint_eq(k.size, strlen(k.ptr));
    m.ntags = 3;
    ck_assert_int_eq(vigil_metric_series_key(&k, &m), VIGIL_OK);
    ck_assert_str_eq(k.ptr, "cpu_usage{cpu=\"0\",env=\"a\\\\b\\\"c\\nd\",host=\"h1\"}");
    m.ntags = 0;
    ck_assert_int_eq(vigil_metric_series_key(&k, &m), VIGIL_OK);
    ck_assert_str_eq(k.ptr, "cpu_usage");
    tags[0].value = "";
    m.ntags = 1;
    ck_assert_int_eq(vigil_metric_series_key(&k, &m), VIGIL_OK);
    ck_assert_str_eq(k.ptr, "cpu_usage{host=\"\"}");
    /* Tag order of the input does not matter. */
    vigil_buf k2 = VIGIL_BUF_INIT;
    vigil_tag t1[2] = {{"b", "2"}, {"a", "1"}}, t2[2] = {{"a", "1"}, {"b", "2"}};
    vigil_metric m1 = {"x", 1, 1, t1, 2, NULL}, m2 = {"x", 1, 1, t2, 2, NULL};
    ck_assert_int_eq(vigil_metric_series_key(&k, &m1), VIGIL_OK);
    ck_assert_int_eq(vigil_metric_series_key(&k2, &m2), VIGIL_OK);
    ck_assert_str_eq(k.ptr, k2.ptr);
    ck_assert_str_eq(k.ptr, "x{a=\"1\",b=\"2\"}");

    ck_assert_int_eq(vigil_metric_series_key(&k, NULL), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_metric_series_key(NULL, &m), VIGIL_EINVAL);
    m1.ntags = 65;
    ck_assert_int_eq(vigil_metric_series_key(&k, &m1), VIGIL_EINVAL);
    vigil_buf_dispose(&k);
    vigil_buf_dispose(&k2);
}
END_TEST

START_TEST(batch_add_sorts_and_owns)
{
    vigil_batch *b = new_batch();
    char name[16] = "cpu_usage", host[8] = "h1";
    vigil_tag tags[4] = {{"z", "1"}, {"host", host}, {"a", "2"}, {"cpu", "3"}};
    vigil_metric m = {name, 0.25, 5, tags, 4, NULL};
    ck_assert_int_eq(vigil_batch_add(b, &m), VIGIL_OK);
    strcpy(name, "changed");
    strcpy(host, "zz");
    const vigil_metric *g = vigil_batch_get(b, 0);
    ck_assert_str_eq(g->name, "cpu_usage");
    ck_assert_uint_eq(g->ntags, 4);
    ck_assert_str_eq(g->tags[0].key, "a");
    ck_assert_str_eq(g->tags[1].key, "cpu");
    ck_assert_str_eq(g->tags[2].key, "host");
    ck_assert_str_eq(g->tags[2].value, "h1");
    ck_assert_str_eq(g->tags[3].key, "z");
    /* The caller's array is not reordered. */
    ck_assert_str_eq(tags[0].key, "z");
    ck_assert_ptr_null(vigil_batch_get(b, 1));

    /* Error metrics keep NaN whatever value was given. */
    vigil_metric e = {"probe_up", 7, 6, NULL, 0, "timeout"};
    ck_assert_int_eq(vigil_batch_add(b, &e), VIGIL_OK);
    ck_assert(isnan(vigil_batch_get(b, 1)->value));
    ck_assert_str_eq(vigil_batch_get(b, 1)->error, "timeout");
    ck_assert_ptr_null(vigil_batch_get(b, 1)->tags);

    /* Many metrics: the tags array moves, earlier metrics stay intact. */
    for (int i = 0; i < 5000; i++) {
        char v[16];
        snprintf(v, sizeof(v), "%d", i);
        vigil_tag t[2] = {{"i", v}, {"host", "h1"}};
        vigil_metric x = {i % 2 ? "even_not" : "odd_not", i, i, t, 2, NULL};
        ck_assert_int_eq(vigil_batch_add(b, &x), VIGIL_OK);
    }
    ck_assert_uint_eq(vigil_batch_count(b), 5002);
    ck_assert_str_eq(vigil_batch_get(b, 0)->tags[3].key, "z");
    const vigil_metric *last = vigil_batch_get(b, 5001);
    ck_assert_str_eq(last->tags[0].key, "host");
    ck_assert_str_eq(last->tags[1].value, "4999");

    /* A refused metric leaves the batch unchanged. */
    vigil_metric bad = {"ok", NAN, 1, NULL, 0, NULL};
    ck_assert_int_eq(vigil_batch_add(b, &bad), VIGIL_EVALUE);
    ck_assert_uint_eq(vigil_batch_count(b), 5002);

    vigil_batch_clear(b);
    ck_assert_uint_eq(vigil_batch_count(b), 0);
    ck_assert_int_eq(vigil_batch_add(b, &m), VIGIL_OK);
    ck_assert_str_eq(vigil_batch_get(b, 0)->name, "changed");

    ck_assert_int_eq(vigil_batch_add(NULL, &m), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_batch_add(b, NULL), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_batch_new(NULL), VIGIL_EINVAL);
    ck_assert_uint_eq(vigil_batch_count(NULL), 0);
    vigil_batch_free(b);
    vigil_batch_free(NULL);
}
END_TEST

START_TEST(batch_limit_and_ids)
{
    vigil_batch *b = new_batch();
    vigil_metric m = {"x", 1, 1, NULL, 0, NULL};
    vigil_batch_set_max_metrics(b, 2);
    ck_assert_int_eq(vigil_batch_add(b, &m), VIGIL_OK);
    ck_assert_int_eq(vigil_batch_add(b, &m), VIGIL_OK);
    ck_assert_int_eq(vigil_batch_add(b, &m), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "batch: more than 2 metrics");
    vigil_batch_set_max_metrics(b, 0); /* back to the default */
    ck_assert_int_eq(vigil_batch_add(b, &m), VIGIL_OK);

    ck_assert_ptr_null(vigil_batch_agent(b));
    ck_assert_int_eq(vigil_batch_set_agent(b, "h1"), VIGIL_OK);
    ck_assert_int_eq(vigil_batch_set_id(b, "b-1"), VIGIL_OK);
    ck_assert_str_eq(vigil_batch_agent(b), "h1");
    ck_assert_str_eq(vigil_batch_id(b), "b-1");
    char *id = repeat('i', 129);
    ck_assert_int_eq(vigil_batch_set_id(b, id), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "batch_id: longer than 128 bytes");
    id[128] = '\0';
    ck_assert_int_eq(vigil_batch_set_id(b, id), VIGIL_OK);
    free(id);
    char *agent = repeat('a', 201);
    ck_assert_int_eq(vigil_batch_set_agent(b, agent), VIGIL_ELIMIT);
    free(agent);
    ck_assert_int_eq(vigil_batch_set_agent(b, "\xfe"), VIGIL_EENCODING);
    ck_assert_int_eq(vigil_batch_set_id(b, ""), VIGIL_EVALUE);
    ck_assert_str_eq(vigil_batch_agent(b), "h1");
    ck_assert_int_eq(vigil_batch_set_agent(b, NULL), VIGIL_OK);
    ck_assert_ptr_null(vigil_batch_agent(b));
    vigil_batch_clear(b);
    ck_assert_ptr_null(vigil_batch_id(b));
    vigil_batch_free(b);
}
END_TEST

/* ---- codec: happy paths --------------------------------------------------------- */

START_TEST(decode_design_example)
{
    vigil_batch *b = new_batch();
    const char *body =
        "{\"agent\":\"h1\",\"batch_id\":\"b-42\",\"metrics\":[{\"name\":\"cpu_usage\","
        "\"value\":0.93,\"ts\":1732650000000,\"tags\":{\"host\":\"h1\"}}]}";
    ck_assert_int_eq(decode(b, body), VIGIL_OK);
    ck_assert_uint_eq(vigil_batch_count(b), 1);
    ck_assert_str_eq(vigil_batch_agent(b), "h1");
    ck_assert_str_eq(vigil_batch_id(b), "b-42");
    const vigil_metric *m = vigil_batch_get(b, 0);
    ck_assert_str_eq(m->name, "cpu_usage");
    ck_assert(m->value == 0.93);
    ck_assert_int_eq(m->ts_ms, INT64_C(1732650000000));
    ck_assert_uint_eq(m->ntags, 1);
    ck_assert_str_eq(m->tags[0].key, "host");
    ck_assert_str_eq(m->tags[0].value, "h1");
    ck_assert_ptr_null(m->error);

    /* Whitespace everywhere, unsorted tags, an error metric, escapes, \\u0000
     * written as an escaped backslash followed by text, a surrogate pair. */
    const char *body2 = " \n{ \"metrics\" : [\r\n"
                        "{\"tags\":{\"z\":\"last\",\"a\":\"caf\\u00e9 \\ud83d\\ude00\","
                        "\"m\":\"back\\\\u0000slash\\n\\\"q\\\"\"},"
                        "\"ts\":0,\"value\":-1.5e-3,\"name\":\"x:y_z\"},\t"
                        "{\"name\":\"probe_up\",\"value\":null,\"ts\":2,\"error\":\"timed out\"}"
                        "] } \n";
    ck_assert_int_eq(decode(b, body2), VIGIL_OK);
    ck_assert_ptr_null(vigil_batch_agent(b));
    ck_assert_ptr_null(vigil_batch_id(b));
    ck_assert_uint_eq(vigil_batch_count(b), 2);
    m = vigil_batch_get(b, 0);
    ck_assert_str_eq(m->name, "x:y_z");
    ck_assert(m->value == -1.5e-3);
    ck_assert_int_eq(m->ts_ms, 0);
    ck_assert_str_eq(m->tags[0].key, "a");
    ck_assert_str_eq(m->tags[0].value, "caf\xc3\xa9 \xf0\x9f\x98\x80");
    ck_assert_str_eq(m->tags[1].key, "m");
    ck_assert_str_eq(m->tags[1].value, "back\\u0000slash\n\"q\"");
    ck_assert_str_eq(m->tags[2].key, "z");
    m = vigil_batch_get(b, 1);
    ck_assert(isnan(m->value));
    ck_assert_str_eq(m->error, "timed out");
    ck_assert_uint_eq(m->ntags, 0);

    /* An empty batch is fine. */
    ck_assert_int_eq(decode(b, "{\"metrics\":[]}"), VIGIL_OK);
    ck_assert_uint_eq(vigil_batch_count(b), 0);
    vigil_batch_free(b);
}
END_TEST

START_TEST(numbers_decode_as_strtod_reads_them)
{
    /* the decoder's own number reading must round exactly as strtod does */
    static const char *const lits[] = {"0.93",
                                       "1e-7",
                                       "123.456e5",
                                       "9007199254740993",
                                       "9007199254740992",
                                       "0.30000000000000004",
                                       "1.7976931348623157e308",
                                       "2.2250738585072014e-308",
                                       "12345678901234567890123",
                                       "4.9e-324",
                                       "-0.0",
                                       "1e23",
                                       "8.589973e9",
                                       "2.5e-22",
                                       "1E22",
                                       "0.1e-1",
                                       "179769313486231580793728971405301e276",
                                       "5e-324",
                                       "1732650000000",
                                       "-123456789.987654321"};
    vigil_batch *b = new_batch();
    for (size_t i = 0; i < sizeof(lits) / sizeof(lits[0]); i++) {
        char json[256];
        snprintf(json, sizeof(json), "{\"metrics\":[{\"name\":\"n\",\"value\":%s,\"ts\":1}]}",
                 lits[i]);
        ck_assert_int_eq(decode(b, json), VIGIL_OK);
        double want = strtod(lits[i], NULL), got = vigil_batch_get(b, 0)->value;
        ck_assert_msg(memcmp(&want, &got, sizeof(want)) == 0, "%s: decoded %.17g, strtod %.17g",
                      lits[i], got, want);
    }
    vigil_batch_free(b);
}
END_TEST

START_TEST(round_trip)
{
    vigil_batch *a = new_batch(), *b = new_batch();
    vigil_buf out = VIGIL_BUF_INIT, out2 = VIGIL_BUF_INIT;
    const double values[] = {0,
                             -0.0,
                             0.1,
                             1.0 / 3,
                             -2.5,
                             1e300,
                             -1e-300,
                             DBL_MAX,
                             DBL_MIN,
                             4.9e-324,
                             1e15,
                             123456789012345678.0,
                             0.93,
                             42,
                             -7,
                             1e21,
                             9007199254740993.0};
    ck_assert_int_eq(vigil_batch_set_agent(a, "agent \"one\"\n"), VIGIL_OK);
    ck_assert_int_eq(vigil_batch_set_id(a, "id-\xe2\x82\xac"), VIGIL_OK);
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        char v[32];
        snprintf(v, sizeof(v), "v%zu\t\x01\\/", i);
        vigil_tag t[3] = {{"host", "h1"}, {"idx", v}, {"env", "\xe6\x97\xa5\xe6\x9c\xac"}};
        vigil_metric m = {"m_"
                          "x",
                          values[i],
                          (int64_t)i * 1000 + 1732650000000,
                          t,
                          3,
                          NULL};
        ck_assert_int_eq(vigil_batch_add(a, &m), VIGIL_OK);
    }
    vigil_metric e = {"probe", 0, 9007199254740991,
                      NULL,    0, "it \"broke\"\n\ttab \xf0\x9f\x92\xa5"};
    ck_assert_int_eq(vigil_batch_add(a, &e), VIGIL_OK);

    ck_assert_int_eq(vigil_batch_encode_json(&out, a), VIGIL_OK);
    ck_assert_uint_eq(out.size, strlen(out.ptr));
    ck_assert_int_eq(decode_exact(b, out.ptr, out.size, NULL), VIGIL_OK);
    assert_batch_eq(a, b);
    /* Encoding is deterministic. */
    ck_assert_int_eq(vigil_batch_encode_json(&out2, b), VIGIL_OK);
    ck_assert_str_eq(out.ptr, out2.ptr);
    ck_assert_ptr_nonnull(strstr(out.ptr, "\"value\":null,\"ts\":9007199254740991,"
                                          "\"error\":\"it \\\"broke\\\"\\n\\ttab"));
    ck_assert_ptr_nonnull(strstr(out.ptr, "\"value\":0.1,"));
    ck_assert_ptr_nonnull(strstr(out.ptr, "\"value\":-0,"));
    ck_assert_ptr_nonnull(strstr(out.ptr, "\"value\":42,"));
    ck_assert_ptr_nonnull(strstr(out.ptr, "\\u0001"));
    ck_assert_ptr_null(strstr(out.ptr, "nan"));

    /* An empty batch. */
    vigil_batch_clear(a);
    ck_assert_int_eq(vigil_batch_encode_json(&out, a), VIGIL_OK);
    ck_assert_str_eq(out.ptr, "{\"metrics\":[]}");
    ck_assert_int_eq(vigil_batch_encode_json(NULL, a), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_batch_encode_json(&out, NULL), VIGIL_EINVAL);

    vigil_buf_dispose(&out);
    vigil_buf_dispose(&out2);
    vigil_batch_free(a);
    vigil_batch_free(b);
}
END_TEST

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

START_TEST(doubles_round_trip_bit_exact)
{
    vigil_batch *a = new_batch(), *b = new_batch();
    vigil_buf out = VIGIL_BUF_INIT;
    uint64_t seed = 0x9E3779B97F4A7C15u;
    for (int i = 0; i < 20000; i++) {
        uint64_t bits = xorshift(&seed);
        double v;
        if (i % 2) {
            memcpy(&v, &bits, sizeof(v));
            if (!isfinite(v))
                continue;
        } else {
            v = (double)(bits >> 11) / 9007199254740992.0 * (i % 7 ? 1 : 1e6);
        }
        vigil_metric m = {"v", v, i, NULL, 0, NULL};
        ck_assert_int_eq(vigil_batch_add(a, &m), VIGIL_OK);
    }
    ck_assert_int_eq(vigil_batch_encode_json(&out, a), VIGIL_OK);
    ck_assert_int_eq(decode_exact(b, out.ptr, out.size, NULL), VIGIL_OK);
    assert_batch_eq(a, b);
    vigil_buf_dispose(&out);
    vigil_batch_free(a);
    vigil_batch_free(b);
}
END_TEST

START_TEST(decode_options)
{
    vigil_batch *b = new_batch();
    vigil_batch_decode_options o;
    ck_assert_int_eq(vigil_batch_decode_options_init(&o, VIGIL_BATCH_DECODE_OPTIONS_VERSION),
                     VIGIL_OK);
    ck_assert_uint_eq(o.max_metrics, 0);
    ck_assert_int_eq(vigil_batch_decode_options_init(&o, 99), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "decode options: version 99 is not supported");
    ck_assert_int_eq(vigil_batch_decode_options_init(NULL, 1), VIGIL_EINVAL);

    vigil_batch_decode_options_init(&o, VIGIL_BATCH_DECODE_OPTIONS_VERSION);
    o.default_ts_ms = 777;
    const char *j = one("{\"name\":\"a\",\"value\":1},{\"name\":\"b\",\"value\":2,\"ts\":5}");
    ck_assert_int_eq(vigil_batch_decode_json(b, j, strlen(j), &o), VIGIL_OK);
    ck_assert_int_eq(vigil_batch_get(b, 0)->ts_ms, 777);
    ck_assert_int_eq(vigil_batch_get(b, 1)->ts_ms, 5);

    o.require_agent = 1;
    ck_assert_int_eq(vigil_batch_decode_json(b, j, strlen(j), &o), VIGIL_EMISSING);
    vt_assert_error(VIGIL_EMISSING, "agent: required field is missing");

    o.require_agent = 0;
    o.default_ts_ms = -5;
    ck_assert_int_eq(vigil_batch_decode_json(b, j, strlen(j), &o), VIGIL_EINVAL);
    o.default_ts_ms = 0;
    o.version = 2;
    ck_assert_int_eq(vigil_batch_decode_json(b, j, strlen(j), &o), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "decode options: version 2 is not supported");
    ck_assert_int_eq(vigil_batch_decode_json(NULL, j, strlen(j), NULL), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_batch_decode_json(b, NULL, 3, NULL), VIGIL_EINVAL);
    vigil_batch_free(b);
}
END_TEST

/* ---- codec: bad input, class by class -------------------------------------------- */

START_TEST(malformed_json)
{
    expect_fail("", VIGIL_EJSON, "empty input");
    expect_fail("  \n ", VIGIL_EJSON, "empty input");
    expect_fail("{\"metrics\":[}", VIGIL_EJSON,
                "metrics[0]: expected a value or ']' (line 1, column 13)");
    expect_fail("{\"metrics\":[{\"name\":\"a\"", VIGIL_EJSON,
                "metrics[0].name: unexpected end of input");
    expect_fail("{\"metrics\":[{\"name\":\"a\",\"value\":1,\"ts\":1}]", VIGIL_EJSON,
                "unexpected end of input");
    expect_fail("{\"metrics\":[{\"name\":\"a", VIGIL_EJSON, "metrics[0].name: unterminated string");
    expect_fail("{\"metrics\":[]} x", VIGIL_EJSON, "unexpected data after the JSON value");
    expect_fail("{\"metrics\":[]} {}", VIGIL_EJSON,
                "top level: unexpected data after the JSON value (line 1, column 16)");
    expect_fail("{\"metrics\":[],}", VIGIL_EJSON, "expected a string key");
    expect_fail("{'metrics':[]}", VIGIL_EJSON, "expected a string key or '}' (line 1, column 2)");
    expect_fail("{\"metrics\":[]}\n\n  @", VIGIL_EJSON, "(line 3, column 3)");
    /* cJSON's lenient numbers: leading zeros, "1.", "+1", hexadecimal. */
    expect_fail(one("{\"name\":\"a\",\"value\":01,\"ts\":1}"), VIGIL_EJSON,
                "metrics[0].value: invalid number");
    expect_fail(one("{\"name\":\"a\",\"value\":1.,\"ts\":1}"), VIGIL_EJSON,
                "metrics[0].value: invalid number");
    expect_fail(one("{\"name\":\"a\",\"value\":+1,\"ts\":1}"), VIGIL_EJSON,
                "metrics[0].value: expected a value");
    expect_fail(one("{\"name\":\"a\",\"value\":0x10,\"ts\":1}"), VIGIL_EJSON,
                "metrics[0].value: expected ',' or '}'");
    expect_fail(one("{\"name\":\"a\",\"value\":1e,\"ts\":1}"), VIGIL_EJSON, "invalid number");
    expect_fail(one("{\"name\":\"a\",\"value\":-,\"ts\":1}"), VIGIL_EJSON, "invalid number");
    expect_fail(one("{\"name\":\"a\",\"value\":NaN,\"ts\":1}"), VIGIL_EJSON,
                "metrics[0].value: expected a value");
    expect_fail(one("{\"name\":\"a\",\"value\":nul,\"ts\":1}"), VIGIL_EJSON,
                "metrics[0].value: invalid literal");
    expect_fail(one("{\"name\":\"a\" \"value\":1}"), VIGIL_EJSON,
                "metrics[0].name: expected ',' or '}'");
    expect_fail(one("{\"name\":\"a\",\"value\" 1}"), VIGIL_EJSON, "metrics[0].value: expected ':'");
    expect_fail("{\"metrics\":[1 2]}", VIGIL_EJSON, "metrics[0]: expected ',' or ']'");
    expect_fail("{\"metrics\":[1]]}", VIGIL_EJSON, "expected ',' or '}'");
    expect_fail("{\"metrics\":[1}}", VIGIL_EJSON, "expected ',' or ']'");
    expect_fail("]", VIGIL_EJSON, "top level: expected a value");
    /* Escapes cJSON turns into NUL or accepts. */
    expect_fail(one("{\"name\":\"a\",\"value\":1,\"ts\":1,\"tags\":{\"h\":\"\\u12G4\"}}"),
                VIGIL_EJSON, "metrics[0].tags.h: \\u escape without four hexadecimal digits");
    expect_fail(one("{\"name\":\"a\",\"value\":1,\"ts\":1,\"tags\":{\"h\":\"\\x41\"}}"),
                VIGIL_EJSON, "metrics[0].tags.h: invalid escape");
    expect_fail(one("{\"name\":\"a\",\"value\":1,\"ts\":1,\"tags\":{\"h\":\"a\tb\"}}"), VIGIL_EJSON,
                "metrics[0].tags.h: raw control character in a string");
    /* A byte order mark, which cJSON skips. */
    expect_fail("\xef\xbb\xbf{\"metrics\":[]}", VIGIL_EJSON, "top level: expected a value");
    /* A number longer than cJSON reads. */
    expect_fail(one("{\"name\":\"a\",\"value\":1.00000000000000000000000000000000000000000000000"
                    "000000000000000001,\"ts\":1}"),
                VIGIL_ELIMIT, "metrics[0].value: number longer than 63 characters");
    /* The first problem in the text wins: a syntax error before bad UTF-8. */
    expect_fail("{\"metrics\":[{\"name\" \"a\"},{\"name\":\"\xff\"}]}", VIGIL_EJSON,
                "metrics[0].name: expected ':'");
}
END_TEST

START_TEST(wrong_types)
{
    expect_fail("[]", VIGIL_ETYPE, "top level: expected an object, got an array");
    expect_fail("42", VIGIL_ETYPE, "top level: expected an object, got a number");
    expect_fail("{\"metrics\":{}}", VIGIL_ETYPE, "metrics: expected an array, got an object");
    expect_fail("{\"metrics\":null}", VIGIL_ETYPE, "metrics: expected an array, got null");
    expect_fail("{\"agent\":5,\"metrics\":[]}", VIGIL_ETYPE,
                "agent: expected a string, got a number");
    expect_fail("{\"batch_id\":true,\"metrics\":[]}", VIGIL_ETYPE,
                "batch_id: expected a string, got a boolean");
    expect_fail(one("{\"name\":\"a\",\"value\":1,\"ts\":1},7"), VIGIL_ETYPE,
                "metrics[1]: expected an object, got a number");
    expect_fail(one("{\"name\":5,\"value\":1,\"ts\":1}"), VIGIL_ETYPE,
                "metrics[0].name: expected a string, got a number");
    expect_fail(one("{\"name\":\"a\",\"value\":\"0.5\",\"ts\":1}"), VIGIL_ETYPE,
                "metrics[0].value: expected a finite number, got a string");
    expect_fail(one("{\"name\":\"a\",\"value\":1,\"ts\":\"now\"}"), VIGIL_ETYPE,
                "metrics[0].ts: expected an integer number of milliseconds, got a string");
    expect_fail(one("{\"name\":\"a\",\"value\":1,\"ts\":1,\"tags\":[]}"), VIGIL_ETYPE,
                "metrics[0].tags: expected an object, got an array");
    expect_fail(one("{\"name\":\"a\",\"value\":1,\"ts\":1,\"error\":false}"), VIGIL_ETYPE,
                "metrics[0].error: expected a string, got a boolean");
    expect_fail("{\"metrics\":[{\"name\":\"a\",\"value\":1,\"ts\":1},{\"name\":\"a\",\"value\":1,"
                "\"ts\":1},{\"name\":\"a\",\"value\":1,\"ts\":1},{\"name\":\"a\",\"value\":1,"
                "\"ts\":1,\"tags\":{\"env\":\"p\",\"host\":1}}]}",
                VIGIL_ETYPE, "metrics[3].tags.host: expected a string, got a number");
    expect_fail(one("{\"name\":\"a\",\"value\":1,\"ts\":1,\"tags\":{\"host\":{\"x\":[1]}}}"),
                VIGIL_ETYPE, "metrics[0].tags.host: expected a string, got an object");
}
END_TEST

START_TEST(missing_fields)
{
    expect_fail("{}", VIGIL_EMISSING, "metrics: required field is missing");
    expect_fail("{\"agent\":\"h\"}", VIGIL_EMISSING, "metrics: required field is missing");
    expect_fail(one("{\"value\":1,\"ts\":1}"), VIGIL_EMISSING,
                "metrics[0].name: required field is missing");
    expect_fail(one("{\"name\":\"a\",\"ts\":1}"), VIGIL_EMISSING,
                "metrics[0].value: required field is missing");
    expect_fail(one("{\"name\":\"a\",\"ts\":1,\"error\":\"x\"}"), VIGIL_EMISSING,
                "metrics[0].value: required field is missing");
    expect_fail(one("{\"name\":\"a\",\"value\":1}"), VIGIL_EMISSING,
                "metrics[0].ts: required field is missing");
}
END_TEST

START_TEST(invalid_names)
{
    expect_fail(one("{\"name\":\"9abc\",\"value\":1,\"ts\":1}"), VIGIL_ENAME,
                "metrics[0].name: invalid metric name \"9abc\"");
    expect_fail(one("{\"name\":\"\",\"value\":1,\"ts\":1}"), VIGIL_ENAME,
                "metrics[0].name: invalid metric name \"\"");
    expect_fail(one("{\"name\":\"cpu-usage\",\"value\":1,\"ts\":1}"), VIGIL_ENAME,
                "invalid metric name \"cpu-usage\" (expected [a-zA-Z_:][a-zA-Z0-9_:]*)");
    expect_fail(one("{\"name\":\"caf\\u00e9\",\"value\":1,\"ts\":1}"), VIGIL_ENAME,
                "metrics[0].name: invalid metric name \"caf\xc3\xa9\"");
    expect_fail(one("{\"name\":\"a\",\"value\":1,\"ts\":1,\"tags\":{\"bad key\":\"v\"}}"),
                VIGIL_ENAME, "metrics[0].tags[\"bad key\"]: invalid tag key \"bad key\"");
    expect_fail(one("{\"name\":\"a\",\"value\":1,\"ts\":1,\"tags\":{\"\":\"v\"}}"), VIGIL_ENAME,
                "metrics[0].tags[\"\"]: invalid tag key");
    expect_fail(one("{\"name\":\"a\",\"value\":1,\"ts\":1,\"tags\":{\"q\\\"\\n\":\"v\"}}"),
                VIGIL_ENAME, "metrics[0].tags[\"q\\\"\\n\"]: invalid tag key");
}
END_TEST

START_TEST(invalid_values)
{
    expect_fail(one("{\"name\":\"a\",\"value\":null,\"ts\":1}"), VIGIL_EVALUE,
                "metrics[0].value: expected a finite number (null only with \"error\")");
    expect_fail(one("{\"name\":\"a\",\"value\":1e999,\"ts\":1}"), VIGIL_EVALUE,
                "metrics[0].value: expected a finite number");
    expect_fail(one("{\"name\":\"a\",\"value\":-1e400,\"ts\":1}"), VIGIL_EVALUE,
                "metrics[0].value: expected a finite number");
    expect_fail(one("{\"name\":\"a\",\"value\":1,\"ts\":1,\"error\":\"boom\"}"), VIGIL_EVALUE,
                "metrics[0].value: expected null when \"error\" is set");
    expect_fail(one("{\"name\":\"a\",\"value\":null,\"ts\":1,\"error\":\"\"}"), VIGIL_EVALUE,
                "metrics[0].error: expected a non-empty string");
    const char *ms = "expected an integer number of milliseconds from 0 to 9007199254740991";
    expect_fail(one("{\"name\":\"a\",\"value\":1,\"ts\":1.5}"), VIGIL_EVALUE, ms);
    expect_fail(one("{\"name\":\"a\",\"value\":1,\"ts\":-1}"), VIGIL_EVALUE, ms);
    expect_fail(one("{\"name\":\"a\",\"value\":1,\"ts\":1e19}"), VIGIL_EVALUE, ms);
    expect_fail(one("{\"name\":\"a\",\"value\":1,\"ts\":9223372036854775808}"), VIGIL_EVALUE,
                "metrics[0].ts: expected an integer");
    expect_fail(one("{\"name\":\"a\",\"value\":1,\"ts\":9007199254740992}"), VIGIL_EVALUE, ms);
    expect_fail("{\"agent\":\"\",\"metrics\":[]}", VIGIL_EVALUE,
                "agent: expected a non-empty string");
    expect_fail("{\"batch_id\":\"\",\"metrics\":[]}", VIGIL_EVALUE,
                "batch_id: expected a non-empty string");

    vigil_batch *b = new_batch();
    ck_assert_int_eq(decode(b, one("{\"name\":\"a\",\"value\":1,\"ts\":9007199254740991}")),
                     VIGIL_OK);
    ck_assert_int_eq(vigil_batch_get(b, 0)->ts_ms, INT64_C(9007199254740991));
    ck_assert_int_eq(decode(b, one("{\"name\":\"a\",\"value\":1,\"ts\":1.7e3}")), VIGIL_OK);
    ck_assert_int_eq(vigil_batch_get(b, 0)->ts_ms, 1700);
    vigil_batch_free(b);
}
END_TEST

/* The inputs cJSON accepts silently; the test first shows that it does. */
START_TEST(encoding_cjson_accepts_silently)
{
    struct {
        const char *json;
        const char *needle;
    } cases[] = {
        {"{\"metrics\":[{\"name\":\"a\",\"value\":1,\"ts\":1,\"tags\":{\"h\":\"x\\u0000y\"}}]}",
         "metrics[0].tags.h: \\u0000 is not allowed in a string (line 1, column 56)"},
        {"{\"metrics\":[{\"name\":\"a\",\"value\":1,\"ts\":1,\"tags\":{\"h\":\"x\xff\"}}]}",
         "metrics[0].tags.h: invalid UTF-8 in a string"},
        {"{\"metrics\":[{\"name\":\"a\",\"value\":1,\"ts\":1,\"tags\":{\"h\":\"\xc0\xaf\"}}]}",
         "metrics[0].tags.h: invalid UTF-8"},
        {"{\"metrics\":[{\"name\":\"a\",\"value\":1,\"ts\":1,\"tags\":{\"h\":\"\xe0\x80\xaf\"}}]}",
         "metrics[0].tags.h: invalid UTF-8"},
        {"{\"metrics\":[{\"name\":\"a\",\"value\":1,\"ts\":1,\"tags\":{\"h\":\"\xf0\x80\x80\xaf\"}}"
         "]"
         "}",
         "invalid UTF-8"},
        {"{\"metrics\":[{\"name\":\"a\",\"value\":1,\"ts\":1,\"tags\":{\"h\":\"\xed\xa0\x80\"}}]}",
         "invalid UTF-8"},
        {"{\"metrics\":[{\"name\":\"a\",\"value\":1,\"ts\":1,\"tags\":{\"h\":\"\xf4\x90\x80\x80\"}}"
         "]"
         "}",
         "invalid UTF-8"},
        {"{\"metrics\":[{\"name\":\"a\",\"value\":1,\"ts\":1,\"tags\":{\"h\":\"\xe2\x82\"}}]}",
         "invalid UTF-8"},
        {"{\"metrics\":[{\"name\":\"a\",\"value\":1,\"ts\":1,\"tags\":{\"h\xff\":\"v\"}}]}",
         "metrics[0].tags[\"h\xef\xbf\xbd\"]: invalid UTF-8"},
        {"{\"agent\":\"\\u0000\",\"metrics\":[]}", "agent: \\u0000 is not allowed"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *raw = cJSON_Parse(cases[i].json);
        ck_assert_msg(raw != NULL, "cJSON refused case %zu itself", i);
        cJSON_Delete(raw);
        expect_fail(cases[i].json, VIGIL_EENCODING, cases[i].needle);
    }
    /* Surrogate escapes: cJSON refuses these itself, reported as encoding. */
    expect_fail(one("{\"name\":\"a\",\"value\":1,\"ts\":1,\"tags\":{\"h\":\"\\ud800\"}}"),
                VIGIL_EENCODING, "metrics[0].tags.h: unpaired UTF-16 surrogate escape");
    expect_fail(one("{\"name\":\"a\",\"value\":1,\"ts\":1,\"tags\":{\"h\":\"\\udc00x\"}}"),
                VIGIL_EENCODING, "unpaired UTF-16 surrogate escape");
    expect_fail(one("{\"name\":\"a\",\"value\":1,\"ts\":1,\"tags\":{\"h\":\"\\ud800\\u0041\"}}"),
                VIGIL_EENCODING, "unpaired UTF-16 surrogate escape");
    expect_fail(one("{\"name\":\"a\",\"value\":1,\"ts\":1,\"error\":\"\\ud800\"}"), VIGIL_EENCODING,
                "metrics[0].error: unpaired");
    /* A raw NUL byte inside a string (the input has a length, not a NUL). */
    const char nul[] = "{\"metrics\":[{\"name\":\"a\",\"value\":1,\"ts\":1,\"error\":\"x\0y\"}]}";
    expect_fail_len(nul, sizeof(nul) - 1, VIGIL_EENCODING,
                    "metrics[0].error: NUL byte in a string");
    const char nul2[] = "{\"metrics\":[]}\0";
    expect_fail_len(nul2, sizeof(nul2) - 1, VIGIL_EJSON, "NUL byte outside a string");
}
END_TEST

START_TEST(limits)
{
    /* max_metrics: a small configured limit. */
    vigil_batch *b = new_batch();
    vigil_batch_decode_options o = VIGIL_BATCH_DECODE_OPTIONS_INIT;
    o.max_metrics = 2;
    const char *three = one("{\"name\":\"a\",\"value\":1,\"ts\":1},{\"name\":\"a\",\"value\":1,"
                            "\"ts\":1},{\"name\":\"a\",\"value\":1,\"ts\":1}");
    ck_assert_int_eq(vigil_batch_decode_json(b, three, strlen(three), &o), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "metrics: more than 2 metrics");
    o.max_metrics = 3;
    ck_assert_int_eq(vigil_batch_decode_json(b, three, strlen(three), &o), VIGIL_OK);
    vigil_batch_set_max_metrics(b, 1); /* the batch's own limit applies too */
    ck_assert_int_eq(vigil_batch_decode_json(b, three, strlen(three), &o), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "metrics: more than 1 metrics");
    vigil_batch_free(b);

    /* Tags, strings, ids. */
    char buf[8192];
    size_t n = (size_t)snprintf(buf, sizeof(buf),
                                "{\"metrics\":[{\"name\":\"a\",\"value\":1,"
                                "\"ts\":1,\"tags\":{");
    for (int i = 0; i < 65; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s\"k%d\":\"v\"", i ? "," : "", i);
    snprintf(buf + n, sizeof(buf) - n, "}}]}");
    expect_fail(buf, VIGIL_ELIMIT, "metrics[0].tags: more than 64 tags");

    char *big = repeat('v', 1025), *body = malloc(4096);
    snprintf(body, 4096,
             "{\"metrics\":[{\"name\":\"a\",\"value\":1,\"ts\":1,\"tags\":{\"h\":\"%s\"}}]}", big);
    expect_fail(body, VIGIL_ELIMIT, "metrics[0].tags.h: tag value longer than 1024 bytes");
    snprintf(body, 4096,
             "{\"metrics\":[{\"name\":\"a\",\"value\":null,\"ts\":1,\"error\":\"%s\"}]}", big);
    expect_fail(body, VIGIL_ELIMIT, "metrics[0].error: error text longer than 1024 bytes");
    big[201] = '\0';
    snprintf(body, 4096, "{\"metrics\":[{\"name\":\"%s\",\"value\":1,\"ts\":1}]}", big);
    expect_fail(body, VIGIL_ELIMIT, "metrics[0].name: metric name longer than 200 bytes");
    snprintf(body, 4096,
             "{\"metrics\":[{\"name\":\"a\",\"value\":1,\"ts\":1,\"tags\":{\"%s\":\"v\"}}]}", big);
    expect_fail(body, VIGIL_ELIMIT, "tag key longer than 200 bytes");
    snprintf(body, 4096, "{\"agent\":\"%s\",\"metrics\":[]}", big);
    expect_fail(body, VIGIL_ELIMIT, "agent: longer than 200 bytes");
    big[129] = '\0';
    snprintf(body, 4096, "{\"batch_id\":\"%s\",\"metrics\":[]}", big);
    expect_fail(body, VIGIL_ELIMIT, "batch_id: longer than 128 bytes");
    big[128] = '\0';
    snprintf(body, 4096, "{\"batch_id\":\"%s\",\"metrics\":[]}", big);
    b = new_batch();
    ck_assert_int_eq(decode(b, body), VIGIL_OK);
    ck_assert_uint_eq(strlen(vigil_batch_id(b)), 128);
    vigil_batch_free(b);
    free(big);
    free(body);
}
END_TEST

START_TEST(limit_default_max_metrics)
{
    /* 100,001 metrics against the default limit of 100,000. */
    const char *m = "{\"name\":\"a\",\"value\":1,\"ts\":1},";
    size_t ml = strlen(m), n = VIGIL_BATCH_DEFAULT_MAX_METRICS + 1;
    vigil_buf body = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil__buf_puts(&body, "{\"metrics\":["), VIGIL_OK);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(vigil__buf_put(&body, m, i + 1 < n ? ml : ml - 1), VIGIL_OK);
    ck_assert_int_eq(vigil__buf_puts(&body, "]}"), VIGIL_OK);
    vigil_batch *b = new_batch();
    ck_assert_int_eq(vigil_batch_decode_json(b, body.ptr, body.size, NULL), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "metrics: more than 100000 metrics");
    ck_assert_uint_eq(vigil_batch_count(b), 0);
    /* One fewer passes. */
    body.size -= ml + 2;
    ck_assert_int_eq(vigil__buf_puts(&body, "]}"), VIGIL_OK);
    ck_assert_int_eq(vigil_batch_decode_json(b, body.ptr, body.size, NULL), VIGIL_OK);
    ck_assert_uint_eq(vigil_batch_count(b), VIGIL_BATCH_DEFAULT_MAX_METRICS);
    vigil_batch_free(b);
    vigil_buf_dispose(&body);
}
END_TEST

START_TEST(huge_strings)
{
    /* 8 MiB strings are refused by size, not by crashing. */
    size_t big = 8u << 20;
    char *v = repeat('x', big);
    vigil_buf body = VIGIL_BUF_INIT;
    vigil__buf_printf(&body,
                      "{\"metrics\":[{\"name\":\"a\",\"value\":1,\"ts\":1,\"tags\":{\"h\":\"");
    vigil__buf_put(&body, v, big);
    vigil__buf_puts(&body, "\"}}]}");
    expect_fail_len(body.ptr, body.size, VIGIL_ELIMIT, "metrics[0].tags.h: tag value longer");
    vigil__buf_clear(&body);
    vigil__buf_puts(&body, "{\"metrics\":[{\"name\":\"");
    vigil__buf_put(&body, v, big);
    vigil__buf_puts(&body, "\",\"value\":1,\"ts\":1}]}");
    expect_fail_len(body.ptr, body.size, VIGIL_ELIMIT, "metrics[0].name: metric name longer");
    /* An unterminated huge string. */
    body.size -= 25;
    expect_fail_len(body.ptr, body.size, VIGIL_EJSON, "metrics[0].name: unterminated string");
    free(v);
    vigil_buf_dispose(&body);
}
END_TEST

START_TEST(deep_nesting)
{
    size_t n = 100000;
    char *deep = repeat('[', n);
    expect_fail_len(deep, n, VIGIL_ELIMIT, "nesting too deep");
    free(deep);
    vigil_buf objs = VIGIL_BUF_INIT;
    for (size_t i = 0; i < n; i++)
        vigil__buf_puts(&objs, "{\"a\":");
    expect_fail_len(objs.ptr, objs.size, VIGIL_ELIMIT,
                    "a.a.a.a.a.a.a.a.a.a.a.a.a.a.a: nesting too deep");
    vigil_buf_dispose(&objs);
    /* Deep inside a metric: named by its path. */
    vigil_buf body = VIGIL_BUF_INIT;
    vigil__buf_puts(&body, "{\"metrics\":[{\"name\":\"a\",\"value\":1,\"ts\":1,\"tags\":{\"h\":");
    for (size_t i = 0; i < n; i++)
        vigil__buf_putc(&body, '[');
    for (size_t i = 0; i < n; i++)
        vigil__buf_putc(&body, ']');
    vigil__buf_puts(&body, "}}]}");
    expect_fail_len(body.ptr, body.size, VIGIL_ELIMIT, "metrics[0].tags.h[0][0][0]");
    vigil_buf_dispose(&body);
    /* Moderate nesting is parsed and refused by type. */
    expect_fail(one("{\"name\":\"a\",\"value\":1,\"ts\":1,\"tags\":{\"h\":[[[[[[1]]]]]]}}"),
                VIGIL_ETYPE, "metrics[0].tags.h: expected a string, got an array");
    /* cJSON's own limit is 1000; ours stops far earlier. */
    deep = repeat('[', 1001);
    expect_fail_len(
        deep, 1001, VIGIL_ELIMIT,
        "[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]: nesting too deep (line 1, column 17)");
    free(deep);
}
END_TEST

START_TEST(unknown_and_duplicate_fields)
{
    expect_fail("{\"metrics\":[{\"name\":\"a\",\"value\":1,\"ts\":1},{\"name\":\"a\",\"value\":1,"
                "\"ts\":1},{\"name\":\"a\",\"value\":1,\"ts\":1,\"colour\":\"red\"}]}",
                VIGIL_EINVAL, "metrics[2].colour: unknown field");
    expect_fail("{\"metrics\":[],\"extra\":1}", VIGIL_EINVAL, "extra: unknown field");
    expect_fail("{\"metrics\":[],\"metrics\":[]}", VIGIL_EINVAL, "metrics: duplicate field");
    expect_fail(one("{\"name\":\"a\",\"value\":1,\"ts\":1,\"name\":\"b\"}"), VIGIL_EINVAL,
                "metrics[0].name: duplicate field");
    expect_fail(one("{\"name\":\"a\",\"value\":1,\"ts\":1,\"t\":1}"), VIGIL_EINVAL,
                "metrics[0].t: unknown field");
    expect_fail(one("{\"name\":\"a\",\"value\":1,\"ts\":1,\"tags\":{\"b\":\"1\",\"a\":\"2\","
                    "\"b\":\"3\"}}"),
                VIGIL_EINVAL, "metrics[0].tags.b: duplicate tag key");
    expect_fail(one("{\"name\":\"a\",\"value\":1,\"ts\":1,\"weird key\\n\":1}"), VIGIL_EINVAL,
                "metrics[0][\"weird key\\n\"]: unknown field");
}
END_TEST

START_TEST(truncated_everywhere)
{
    /* Every proper prefix of a valid body is refused cleanly. */
    const char *body = "{\"agent\":\"h1\",\"batch_id\":\"b\",\"metrics\":[{\"name\":\"cpu\","
                       "\"value\":-1.25e-2,\"ts\":17,\"tags\":{\"host\":\"h\\u00e9\\n\"}},"
                       "{\"name\":\"e\",\"value\":null,\"ts\":1,\"error\":\"x\"}]}";
    size_t len = strlen(body);
    vigil_batch *b = new_batch();
    for (size_t i = 0; i < len; i++) {
        int rc = decode_exact(b, body, i, NULL);
        ck_assert_msg(rc == VIGIL_EJSON, "prefix %zu: %d (%s)", i, rc, vigil_error_last()->message);
        ck_assert_uint_eq(vigil_batch_count(b), 0);
    }
    ck_assert_int_eq(decode_exact(b, body, len, NULL), VIGIL_OK);
    ck_assert_uint_eq(vigil_batch_count(b), 2);
    vigil_batch_free(b);
}
END_TEST

/* ---- out of memory ------------------------------------------------------------------ */

static const char *k_oom_body =
    "{\"agent\":\"h1\",\"batch_id\":\"b-1\",\"metrics\":["
    "{\"name\":\"cpu_usage\",\"value\":0.5,\"ts\":1,\"tags\":{\"host\":\"h1\",\"cpu\":\"0\"}},"
    "{\"name\":\"cpu_usage\",\"value\":0.25,\"ts\":2,\"tags\":{\"host\":\"h1\",\"cpu\":\"1\","
    "\"env\":\"prod\",\"zone\":\"a\",\"rack\":\"r1\",\"row\":\"7\",\"dc\":\"x\",\"pod\":\"p\","
    "\"svc\":\"s\"}},"
    "{\"name\":\"probe_up\",\"value\":null,\"ts\":3,\"error\":\"timed out\"},"
    "{\"name\":\"mem\",\"value\":1e9,\"ts\":4}]}";

typedef struct {
    vigil_batch *b;
    vigil_buf buf;
    const vigil_batch *src;
} oom_ctx;

static int op_decode(void *arg)
{
    oom_ctx *c = arg;
    int rc = vigil_batch_new(&c->b);
    if (rc)
        return rc;
    rc = vigil_batch_decode_json(c->b, k_oom_body, strlen(k_oom_body), NULL);
    if (rc)
        ck_assert_uint_eq(vigil_batch_count(c->b), 0);
    return rc;
}

static void cleanup_batch(void *arg)
{
    oom_ctx *c = arg;
    vigil_batch_free(c->b);
    c->b = NULL;
    vigil_buf_dispose(&c->buf);
}

static int op_encode(void *arg)
{
    oom_ctx *c = arg;
    return vigil_batch_encode_json(&c->buf, c->src);
}

static int op_add(void *arg)
{
    oom_ctx *c = arg;
    int rc = vigil_batch_new(&c->b);
    if (rc)
        return rc;
    char big[3000];
    memset(big, 'e', 1000);
    big[1000] = '\0';
    for (int i = 0; i < 300; i++) {
        char v[16];
        snprintf(v, sizeof(v), "%d", i);
        vigil_tag t[3] = {{"host", "h1"}, {"i", v}, {"a", "x"}};
        vigil_metric m = {i % 3 ? "cpu" : "mem", i, i, t, 3, i % 50 ? NULL : big};
        size_t before = vigil_batch_count(c->b);
        if ((rc = vigil_batch_add(c->b, &m)) != VIGIL_OK) {
            ck_assert_uint_eq(vigil_batch_count(c->b), before);
            return rc;
        }
    }
    return vigil_batch_set_agent(c->b, "agent");
}

/* vigil__batch_append (lib/metric/internal.h): what the hub uses to merge
 * the batches of a commit group. */
static void expect_same_metric(const vigil_metric *a, const vigil_metric *b)
{
    ck_assert_str_eq(a->name, b->name);
    ck_assert_int_eq(a->ts_ms, b->ts_ms);
    ck_assert_uint_eq(a->ntags, b->ntags);
    if (a->error) {
        ck_assert_ptr_nonnull(b->error);
        ck_assert_str_eq(a->error, b->error);
        ck_assert(isnan(b->value));
    } else {
        ck_assert_ptr_null(b->error);
        ck_assert(memcmp(&a->value, &b->value, sizeof(double)) == 0);
    }
    for (size_t i = 0; i < a->ntags; i++) {
        ck_assert_str_eq(a->tags[i].key, b->tags[i].key);
        ck_assert_str_eq(a->tags[i].value, b->tags[i].value);
    }
}

/* Found by fuzz/batch.c, fuzz/prom.c and fuzz/api.c (corpus: batch/no_ts,
 * prom/cut, api/ingest_gzip): a batch whose metrics have no tags had no tag
 * array yet, and the decoder, vigil_batch_add() and vigil__batch_append()
 * computed NULL + 0 (undefined behaviour, reported by clang's UBSan). */
START_TEST(tagless_metrics_before_any_tag)
{
    vigil_batch *b = new_batch(), *dst = new_batch(), *empty = new_batch();
    vigil_batch_decode_options o = VIGIL_BATCH_DECODE_OPTIONS_INIT;
    o.default_ts_ms = 5;
    const char *body = "{\"metrics\":[{\"name\":\"a\",\"value\":1},{\"name\":\"b\",\"value\":-2e10,"
                       "\"tags\":{\"k\":\"v\"}}]}";
    ck_assert_int_eq(decode_exact(b, body, strlen(body), &o), VIGIL_OK);
    ck_assert_uint_eq(vigil_batch_count(b), 2);
    ck_assert_ptr_null(vigil_batch_get(b, 0)->tags);
    ck_assert_uint_eq(vigil_batch_get(b, 0)->ntags, 0);
    ck_assert_str_eq(vigil_batch_get(b, 1)->tags[0].value, "v");
    /* appending nothing from a batch that never held a metric */
    ck_assert_int_eq(vigil__batch_append(dst, empty, 0, 0), VIGIL_OK);
    /* a tagless metric appended first, then one with tags */
    ck_assert_int_eq(vigil__batch_append(dst, b, 0, 2), VIGIL_OK);
    ck_assert_uint_eq(vigil_batch_count(dst), 2);
    ck_assert_ptr_null(vigil_batch_get(dst, 0)->tags);
    ck_assert_str_eq(vigil_batch_get(dst, 1)->tags[0].key, "k");
    /* vigil_batch_add() of a tagless metric to an empty batch */
    vigil_batch_clear(b);
    vigil_metric m = {"partial", 5, 1, NULL, 0, NULL};
    ck_assert_int_eq(vigil_batch_add(b, &m), VIGIL_OK);
    ck_assert_uint_eq(vigil_batch_count(b), 1);
    ck_assert_ptr_null(vigil_batch_get(b, 0)->tags);
    vigil_batch_free(empty);
    vigil_batch_free(dst);
    vigil_batch_free(b);
}
END_TEST

START_TEST(batch_append_copies_valid_metrics)
{
    vigil_batch *src = new_batch(), *dst = new_batch(), *ref = new_batch();
    ck_assert_int_eq(decode(src, k_oom_body), VIGIL_OK);
    size_t n = vigil_batch_count(src);
    ck_assert_uint_ge(n, 4);
    /* What vigil_batch_add() one by one gives. */
    vigil_tag t[2] = {{"zz", "last"}, {"aa", "first"}};
    vigil_metric first = {"pre", 2, 2, t, 2, NULL};
    ck_assert_int_eq(vigil_batch_add(dst, &first), VIGIL_OK);
    ck_assert_int_eq(vigil_batch_add(ref, &first), VIGIL_OK);
    ck_assert_int_eq(vigil__batch_append(dst, src, 1, n - 1), VIGIL_OK);
    for (size_t i = 1; i < n; i++)
        ck_assert_int_eq(vigil_batch_add(ref, vigil_batch_get(src, i)), VIGIL_OK);
    ck_assert_uint_eq(vigil_batch_count(dst), n);
    for (size_t i = 0; i < n; i++)
        expect_same_metric(vigil_batch_get(ref, i), vigil_batch_get(dst, i));
    vigil_buf a = VIGIL_BUF_INIT, b = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil_batch_encode_json(&a, ref), VIGIL_OK);
    ck_assert_int_eq(vigil_batch_encode_json(&b, dst), VIGIL_OK);
    ck_assert_str_eq(a.ptr, b.ptr);

    /* dst owns its copies: src may go. Nothing of the first metric moved
     * although the tags array grew. */
    vigil_batch_free(src);
    src = new_batch();
    ck_assert_str_eq(vigil_batch_get(dst, 0)->tags[0].key, "aa");
    ck_assert_str_eq(vigil_batch_get(dst, 0)->tags[1].value, "last");
    ck_assert_int_eq(vigil_batch_encode_json(&b, dst), VIGIL_OK);
    ck_assert_str_eq(a.ptr, b.ptr);

    /* Strings the source shares between neighbours are shared in the copy. */
    vigil_batch_clear(src);
    vigil_tag h[1] = {{"host", "web-001.example.net"}};
    for (int i = 0; i < 3; i++) {
        vigil_metric m = {"cpu_usage_ratio", i, i + 1, h, 1, NULL};
        ck_assert_int_eq(vigil_batch_add(src, &m), VIGIL_OK);
    }
    vigil_batch_clear(dst);
    ck_assert_int_eq(vigil__batch_append(dst, src, 0, 3), VIGIL_OK);
    ck_assert_ptr_eq(vigil_batch_get(dst, 0)->name, vigil_batch_get(dst, 2)->name);
    ck_assert_ptr_eq(vigil_batch_get(dst, 1)->tags[0].value,
                     vigil_batch_get(dst, 2)->tags[0].value);
    ck_assert_ptr_ne(vigil_batch_get(dst, 0)->name, vigil_batch_get(src, 0)->name);
    /* An empty range is a no-op, even on a full batch. */
    vigil_batch_set_max_metrics(dst, 3);
    ck_assert_int_eq(vigil__batch_append(dst, src, 3, 0), VIGIL_OK);
    ck_assert_uint_eq(vigil_batch_count(dst), 3);

    /* Limits and bad arguments: nothing appended. */
    ck_assert_int_eq(vigil__batch_append(dst, src, 0, 1), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "batch: more than 3 metrics");
    vigil_batch_set_max_metrics(dst, 4);
    ck_assert_int_eq(vigil__batch_append(dst, src, 0, 2), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "batch: more than 4 metrics");
    ck_assert_uint_eq(vigil_batch_count(dst), 3);
    ck_assert_int_eq(vigil__batch_append(dst, src, 2, 2), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "batch append: NULL batch or range out of bounds");
    ck_assert_int_eq(vigil__batch_append(dst, src, 4, 0), VIGIL_EINVAL);
    ck_assert_int_eq(vigil__batch_append(NULL, src, 0, 0), VIGIL_EINVAL);
    ck_assert_int_eq(vigil__batch_append(dst, NULL, 0, 0), VIGIL_EINVAL);
    ck_assert_uint_eq(vigil_batch_count(dst), 3);
    ck_assert_int_eq(vigil__batch_append(dst, src, 2, 1), VIGIL_OK);
    ck_assert_uint_eq(vigil_batch_count(dst), 4);
    ck_assert_int_eq(vigil_batch_get(dst, 3)->ts_ms, 3);

    vigil_buf_dispose(&a);
    vigil_buf_dispose(&b);
    vigil_batch_free(src);
    vigil_batch_free(dst);
    vigil_batch_free(ref);
}
END_TEST

static int op_append(void *arg)
{
    oom_ctx *c = arg;
    int rc = vigil_batch_new(&c->b);
    if (rc)
        return rc;
    /* Two appends, so the second one finds the arrays and the arena in use. */
    for (int round = 0; round < 2; round++) {
        size_t before = vigil_batch_count(c->b);
        if ((rc = vigil__batch_append(c->b, c->src, 0, vigil_batch_count(c->src))) != VIGIL_OK) {
            ck_assert_uint_eq(vigil_batch_count(c->b), before);
            return rc;
        }
    }
    ck_assert_uint_eq(vigil_batch_count(c->b), 2 * vigil_batch_count(c->src));
    return VIGIL_OK;
}

START_TEST(oom_append)
{
    vigil_batch *src = new_batch();
    ck_assert_int_eq(decode(src, k_oom_body), VIGIL_OK);
    char big[1100];
    memset(big, 'e', 1000);
    big[1000] = '\0';
    for (int i = 0; i < 500; i++) {
        char v[16];
        snprintf(v, sizeof(v), "%d", i);
        vigil_tag t[3] = {{"host", "h1"}, {"i", v}, {"a", "x"}};
        vigil_metric m = {i % 3 ? "cpu" : "mem", i, i, t, 3, i % 50 ? NULL : big};
        ck_assert_int_eq(vigil_batch_add(src, &m), VIGIL_OK);
    }
    oom_ctx c = {NULL, VIGIL_BUF_INIT, src};
    long n = vt_oom_sweep(op_append, cleanup_batch, &c, 0);
    ck_assert_int_gt(n, 5);
    vigil_batch_free(src);
}
END_TEST

START_TEST(oom_decode)
{
    oom_ctx c = {NULL, VIGIL_BUF_INIT, NULL};
    long n = vt_oom_sweep(op_decode, cleanup_batch, &c, 0);
    ck_assert_int_gt(n, 5);
}
END_TEST

START_TEST(oom_encode)
{
    oom_ctx c = {NULL, VIGIL_BUF_INIT, NULL};
    vigil_batch *src = new_batch();
    vigil_buf tmp = VIGIL_BUF_INIT;
    ck_assert_int_eq(decode(src, k_oom_body), VIGIL_OK);
    /* A big batch, so the output buffer grows several times. */
    for (int i = 0; i < 2000; i++) {
        vigil_tag t[2] = {{"host", "h\"1\""}, {"i", "x\ny"}};
        vigil_metric m = {"cpu", i * 0.1, i, t, 2, NULL};
        ck_assert_int_eq(vigil_batch_add(src, &m), VIGIL_OK);
    }
    c.src = src;
    long n = vt_oom_sweep(op_encode, cleanup_batch, &c, 0);
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(vigil_batch_encode_json(&tmp, src), VIGIL_OK);
    vigil_buf_dispose(&tmp);
    vigil_batch_free(src);
}
END_TEST

START_TEST(oom_add)
{
    oom_ctx c = {NULL, VIGIL_BUF_INIT, NULL};
    long n = vt_oom_sweep(op_add, cleanup_batch, &c, 0);
    ck_assert_int_gt(n, 5);
}
END_TEST

/* Every allocation of every test goes through the counting allocator, so a
 * block is never freed by another allocator than the one that made it (which
 * matters when CK_FORK=no runs all tests in one process). */
static void install_allocator(void)
{
    vt_alloc_install();
}

static TCase *new_tcase(const char *name, double timeout)
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, timeout);
    tcase_add_checked_fixture(tc, install_allocator, NULL);
    return tc;
}

static Suite *metric_suite(void)
{
    Suite *s = suite_create("metric");
    TCase *tc = new_tcase("model", 10);
    tcase_add_test(tc, names);
    tcase_add_test(tc, validate_classes);
    tcase_add_test(tc, series_keys);
    tcase_add_test(tc, validate_error_paths);
    tcase_add_test(tc, series_keys_escape_anywhere);
    tcase_add_test(tc, batch_add_sorts_and_owns);
    tcase_add_test(tc, batch_limit_and_ids);
    tcase_add_test(tc, batch_append_copies_valid_metrics);
    tcase_add_test(tc, tagless_metrics_before_any_tag);
    suite_add_tcase(s, tc);

    tc = new_tcase("codec", 20);
    tcase_add_test(tc, decode_design_example);
    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, numbers_decode_as_strtod_reads_them);
    tcase_add_test(tc, doubles_round_trip_bit_exact);
    tcase_add_test(tc, decode_options);
    suite_add_tcase(s, tc);

    tc = new_tcase("bad_input", 30);
    tcase_add_test(tc, malformed_json);
    tcase_add_test(tc, wrong_types);
    tcase_add_test(tc, missing_fields);
    tcase_add_test(tc, invalid_names);
    tcase_add_test(tc, invalid_values);
    tcase_add_test(tc, encoding_cjson_accepts_silently);
    tcase_add_test(tc, limits);
    tcase_add_test(tc, unknown_and_duplicate_fields);
    tcase_add_test(tc, truncated_everywhere);
    suite_add_tcase(s, tc);

    /* Large inputs: generous timeouts for sanitizer and valgrind builds. */
    tc = new_tcase("large", 120);
    tcase_add_test(tc, limit_default_max_metrics);
    tcase_add_test(tc, huge_strings);
    tcase_add_test(tc, deep_nesting);
    suite_add_tcase(s, tc);

    tc = new_tcase("oom", 120);
    tcase_add_test(tc, oom_decode);
    tcase_add_test(tc, oom_encode);
    tcase_add_test(tc, oom_add);
    tcase_add_test(tc, oom_append);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(metric_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
