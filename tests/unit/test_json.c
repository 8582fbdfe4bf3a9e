/* Unit tests of lib/json (lib/internal/json.h): the strict checker and its
 * exact problem offsets, the two parsers (cJSON tree and arena document) and
 * their messages, JSON paths, quoting for messages, and the writer. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal/json.h"
#include "testutil.h"

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    ck_assert_ptr_nonnull(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* ---- the strict checker ------------------------------------------------------------ */

typedef struct {
    const char *text;
    size_t len; /* 0: strlen(text) */
    int code;
    size_t offset;
    const char *reason;
} check_case;

/* Every class of problem, with the byte offset the checker must name. */
START_TEST(check_names_problem_and_offset)
{
    static const check_case cases[] = {
        {"", 0, VIGIL_EJSON, 0, "empty input"},
        {"   ", 0, VIGIL_EJSON, 3, "empty input"},
        {"{\"a\":", 0, VIGIL_EJSON, 5, "unexpected end of input"},
        {"[1,]", 0, VIGIL_EJSON, 3, "expected a value"},
        {"[1 2]", 0, VIGIL_EJSON, 3, "expected ',' or ']'"},
        {"{\"a\" 1}", 0, VIGIL_EJSON, 5, "expected ':'"},
        {"{1:2}", 0, VIGIL_EJSON, 1, "expected a string key or '}'"},
        {"{\"a\":1,}", 0, VIGIL_EJSON, 7, "expected a string key"},
        {"{\"a\":1]", 0, VIGIL_EJSON, 6, "expected ',' or '}'"},
        {"1 2", 0, VIGIL_EJSON, 2, "unexpected data after the JSON value"},
        {"\"abc", 0, VIGIL_EJSON, 0, "unterminated string"},
        {"\"a\\q\"", 0, VIGIL_EJSON, 2, "invalid escape in a string"},
        {"\"a\\u12\"", 0, VIGIL_EJSON, 2, "\\u escape without four hexadecimal digits"},
        {"\"a\\u0000\"", 0, VIGIL_EENCODING, 2, "\\u0000 is not allowed in a string"},
        {"\"\\udc00\"", 0, VIGIL_EENCODING, 1, "unpaired UTF-16 surrogate escape in a string"},
        {"\"\\ud800x\"", 0, VIGIL_EENCODING, 1, "unpaired UTF-16 surrogate escape in a string"},
        {"\"a\tb\"", 0, VIGIL_EJSON, 2, "raw control character in a string"},
        {"\"a\0b\"", 5, VIGIL_EENCODING, 2, "NUL byte in a string"},
        {"\"\xc0\xaf\"", 0, VIGIL_EENCODING, 1, "invalid UTF-8 in a string"},     /* overlong */
        {"\"\xed\xa0\x80\"", 0, VIGIL_EENCODING, 1, "invalid UTF-8 in a string"}, /* surrogate */
        {"\"\xf4\x90\x80\x80\"", 0, VIGIL_EENCODING, 1,
         "invalid UTF-8 in a string"}, /* > U+10FFFF */
        {"01", 0, VIGIL_EJSON, 0, "invalid number"},
        {"1.", 0, VIGIL_EJSON, 0, "invalid number"},
        {"+1", 0, VIGIL_EJSON, 0, "expected a value"},
        {"[tru]", 0, VIGIL_EJSON, 1, "invalid literal"},
        {"\xef\xbb\xbf{}", 0, VIGIL_EJSON, 0, "expected a value"}, /* a BOM is not whitespace */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const check_case *c = &cases[i];
        size_t len = c->len ? c->len : strlen(c->text);
        vigil__json_problem pb = {0, 0, NULL};
        int rc = vigil__json_check(c->text, len, 64, &pb);
        ck_assert_msg(rc == c->code, "case %zu: code %d, expected %d", i, rc, c->code);
        ck_assert_int_eq(pb.code, c->code);
        ck_assert_msg(pb.offset == c->offset, "case %zu: offset %zu, expected %zu", i, pb.offset,
                      c->offset);
        ck_assert_msg(strcmp(pb.reason, c->reason) == 0, "case %zu: reason \"%s\"", i, pb.reason);
    }
}
END_TEST

START_TEST(check_accepts_valid_documents)
{
    static const char *ok[] = {
        "0",
        "-0.5e-3",
        "true",
        "null",
        " { } ",
        "[]",
        "\"\\ud83d\\ude00 \\u00e9 \xc3\xa9 \xf0\x9f\x98\x80\"",
        "{\"a\":[1,{\"b\":[null,false]}],\"c\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        vigil__json_problem pb = {0, 0, NULL};
        ck_assert_msg(vigil__json_check(ok[i], strlen(ok[i]), 64, &pb) == VIGIL_OK, "%s: %s", ok[i],
                      pb.reason ? pb.reason : "");
    }
}
END_TEST

/* Numbers longer than cJSON's 63 characters and nesting past the caller's
 * limit are limits, not syntax. */
START_TEST(check_limits)
{
    vigil__json_problem pb = {0, 0, NULL};
    char *digits = repeat('7', 64);
    ck_assert_int_eq(vigil__json_check(digits, 64, 64, &pb), VIGIL_ELIMIT);
    ck_assert_uint_eq(pb.offset, 0);
    ck_assert_int_eq(vigil__json_check(digits, 63, 64, &pb), VIGIL_OK);
    free(digits);

    ck_assert_int_eq(vigil__json_check("[[[]]]", 6, 3, &pb), VIGIL_OK);
    ck_assert_int_eq(vigil__json_check("[[[[]]]]", 8, 3, &pb), VIGIL_ELIMIT);
    ck_assert_uint_eq(pb.offset, 3);
    ck_assert_str_eq(pb.reason, "nesting too deep");
    /* The cap of 1000 holds whatever the caller asks for. */
    char *deep = repeat('[', 1001);
    ck_assert_int_eq(vigil__json_check(deep, 1001, 100000, &pb), VIGIL_ELIMIT);
    ck_assert_uint_eq(pb.offset, 1000);
    free(deep);
}
END_TEST

/* ---- the parsers --------------------------------------------------------------- */

/* Messages name the JSON path, the reason, the line and the column; the
 * output is untouched on failure. */
START_TEST(parse_messages_name_path_and_position)
{
    cJSON *root = (cJSON *)0x1;
    const char *doc = "{\"metrics\":[{\"name\":\"a\"},\n {\"tags\":{\"host\":\"\xff\"}}]}";
    ck_assert_int_eq(vigil__json_parse(&root, doc, strlen(doc), 16), VIGIL_EENCODING);
    vt_assert_error(VIGIL_EENCODING,
                    "metrics[1].tags.host: invalid UTF-8 in a string (line 2, column 19)");
    ck_assert_ptr_null(root); /* set to NULL on failure, never left dangling */

    vigil__json_doc d;
    ck_assert_int_eq(vigil__json_parse_doc(&d, doc, strlen(doc), 16), VIGIL_EENCODING);
    vt_assert_error(VIGIL_EENCODING,
                    "metrics[1].tags.host: invalid UTF-8 in a string (line 2, column 19)");
    ck_assert_ptr_null(d.root);

    root = NULL;
    ck_assert_int_eq(vigil__json_parse(&root, "{\"a b\":[1,]}", 12, 16), VIGIL_EJSON);
    vt_assert_error(VIGIL_EJSON, "[\"a b\"][1]: expected a value (line 1, column 11)");
    ck_assert_int_eq(vigil__json_parse(&root, "", 0, 16), VIGIL_EJSON);
    vt_assert_error(VIGIL_EJSON, "top level: empty input");
    ck_assert_ptr_null(root);

    /* Text need not be NUL-terminated: the parsers read exactly len bytes. */
    char exact[3] = {'[', '1', ']'};
    ck_assert_int_eq(vigil__json_parse(&root, exact, sizeof(exact), 16), VIGIL_OK);
    ck_assert_int_eq(cJSON_GetArraySize(root), 1);
    cJSON_Delete(root);
}
END_TEST

static void assert_same_tree(const cJSON *a, const cJSON *b, const char *where)
{
    for (; a || b; a = a->next, b = b->next) {
        ck_assert_msg(a && b, "%s: one tree has more items", where);
        ck_assert_msg(a->type == b->type, "%s: type %d vs %d", where, a->type, b->type);
        ck_assert_msg((a->string == NULL) == (b->string == NULL), "%s: key presence", where);
        if (a->string)
            ck_assert_str_eq(a->string, b->string);
        if (cJSON_IsString(a))
            ck_assert_str_eq(a->valuestring, b->valuestring);
        if (cJSON_IsNumber(a)) {
            ck_assert_msg(memcmp(&a->valuedouble, &b->valuedouble, sizeof(double)) == 0,
                          "%s: %.17g vs %.17g", where, a->valuedouble, b->valuedouble);
            ck_assert_int_eq(a->valueint, b->valueint);
        }
        assert_same_tree(a->child, b->child, where);
    }
}

/* The arena document is exactly the tree cJSON builds from the same text. */
START_TEST(parse_doc_builds_cjsons_tree)
{
    static const char *docs[] = {
        "{\"metrics\":[{\"name\":\"cpu\",\"value\":0.25,\"ts\":1700000000123,"
        "\"tags\":{\"host\":\"web-01\",\"\\u00e9t\\u00e9\":\"\\ud83d\\ude00\"}}],\"agent\":\"a\"}",
        "[1e308,-0,0.1,123456789012345678,-2147483649,2147483647,3.5e-320,1E2,-1e-2]",
        "[true,false,null,\"\",[],{},[[{}]],{\"\":\"\"}]",
        "{\"dup\":1,\"dup\":2}",
        "\"only a string \\\" \\\\ \\/ \\b\\f\\n\\r\\t\"",
        "  42  ",
    };
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        cJSON *ref = cJSON_ParseWithLength(docs[i], strlen(docs[i]));
        ck_assert_ptr_nonnull(ref);
        vigil__json_doc d;
        ck_assert_int_eq(vigil__json_parse_doc(&d, docs[i], strlen(docs[i]), 16), VIGIL_OK);
        assert_same_tree(ref, d.root, docs[i]);
        cJSON *mine = NULL;
        ck_assert_int_eq(vigil__json_parse(&mine, docs[i], strlen(docs[i]), 16), VIGIL_OK);
        assert_same_tree(ref, mine, docs[i]);
        cJSON_Delete(mine);
        vigil__json_doc_free(&d);
        cJSON_Delete(ref);
    }
}
END_TEST

/* ---- paths and quoting for messages ------------------------------------------------ */

START_TEST(path_at_names_the_containing_value)
{
    vigil__json_path p;
    const char *doc = "{\"a\":[10,{\"b c\":[1,2,3]}],\"d\":4}";
    /* offsets of: '2' in [1,2,3]; '4'; the key "d"; the '1' of 10 */
    size_t at2 = (size_t)(strchr(doc, '2') - doc);
    vigil__json_path_at(&p, doc, strlen(doc), at2);
    ck_assert_str_eq(vigil__json_path_str(&p), "a[1][\"b c\"][1]");
    vigil__json_path_at(&p, doc, strlen(doc), strlen(doc) - 2);
    ck_assert_str_eq(vigil__json_path_str(&p), "d");
    vigil__json_path_at(&p, doc, strlen(doc), 6);
    ck_assert_str_eq(vigil__json_path_str(&p), "a[0]");
    vigil__json_path_at(&p, doc, strlen(doc), 0);
    ck_assert_str_eq(vigil__json_path_str(&p), "top level");
    /* An offset past the end is clamped, never read past. */
    vigil__json_path_at(&p, "[1", 2, 99);
    ck_assert_str_eq(vigil__json_path_str(&p), "[0]");
}
END_TEST

START_TEST(quote_clip_escapes_and_clips)
{
    char msg[256] = "got ";
    vigil__json_quote_clip(msg, sizeof(msg), "a\"b\n\x01\xff", 6);
    ck_assert_str_eq(msg, "got \"a\\\"b\\n\\u0001\xef\xbf\xbd\"");

    char *big = repeat('x', 1000);
    strcpy(msg, "v=");
    vigil__json_quote_clip(msg, sizeof(msg), big, 1000);
    ck_assert_uint_lt(strlen(msg), 2 + 64 + 6);
    ck_assert_ptr_nonnull(strstr(msg, "xxx...\""));
    /* No room: the message is left as it was, still terminated. */
    char small[8] = "abc";
    vigil__json_quote_clip(small, sizeof(small), big, 1000);
    ck_assert_str_eq(small, "abc");
    free(big);
}
END_TEST

START_TEST(json_paths)
{
    vigil__json_path p;
    vigil__json_path_init(&p);
    ck_assert_str_eq(vigil__json_path_str(&p), "top level");
    vigil__json_path_key(&p, "metrics", 7);
    vigil__json_path_index(&p, 3);
    vigil__json_path_key(&p, "a b", 3);
    ck_assert_str_eq(vigil__json_path_str(&p), "metrics[3][\"a b\"]");
    char *longkey = repeat('k', 5000);
    for (int i = 0; i < 20; i++)
        vigil__json_path_key(&p, longkey, 5000);
    ck_assert_uint_lt(strlen(p.s), sizeof(p.s));
    ck_assert_ptr_nonnull(strstr(p.s, "..."));
    free(longkey);
}
END_TEST

/* ---- the writer --------------------------------------------------------------------- */

START_TEST(json_writer)
{
    vigil_buf b = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil__json_put_string(&b, "a\"b\\c\n\t\x01\x7f/\xc3\xa9", 12), VIGIL_OK);
    ck_assert_str_eq(b.ptr, "\"a\\\"b\\\\c\\n\\t\\u0001\x7f/\xc3\xa9\"");
    vigil__buf_clear(&b);
    ck_assert_int_eq(vigil__json_put_string(&b, "x\0y\xff", 4), VIGIL_OK);
    ck_assert_str_eq(b.ptr, "\"x\\u0000y\xef\xbf\xbd\"");
    vigil__buf_clear(&b);
    ck_assert_int_eq(vigil__json_put_string(&b, "\b\f\r", 3), VIGIL_OK);
    ck_assert_str_eq(b.ptr, "\"\\b\\f\\r\"");
    vigil__buf_clear(&b);
    ck_assert_int_eq(vigil__json_put_double(&b, NAN), VIGIL_EVALUE);
    ck_assert_int_eq(vigil__json_put_double(&b, INFINITY), VIGIL_EVALUE);
    ck_assert_int_eq(vigil__json_put_double(&b, -INFINITY), VIGIL_EVALUE);
    ck_assert_uint_eq(b.size, 0);
    ck_assert_int_eq(vigil__json_put_double(&b, 0.1), VIGIL_OK);
    ck_assert_str_eq(b.ptr, "0.1");
    vigil__buf_clear(&b);
    ck_assert_int_eq(vigil__json_put_double(&b, 1e300), VIGIL_OK);
    ck_assert_str_eq(b.ptr, "1e+300");
    vigil__buf_clear(&b);
    ck_assert_int_eq(vigil__json_put_double(&b, 3.0), VIGIL_OK);
    ck_assert_str_eq(b.ptr, "3");
    vigil__buf_clear(&b);
    ck_assert_int_eq(vigil__json_put_int64(&b, INT64_MIN), VIGIL_OK);
    ck_assert_str_eq(b.ptr, "-9223372036854775808");
    vigil__buf_clear(&b);
    ck_assert_int_eq(vigil__json_put_int64(&b, INT64_MAX), VIGIL_OK);
    ck_assert_str_eq(b.ptr, "9223372036854775807");
    vigil_buf_dispose(&b);
}
END_TEST

/* What the writer writes, the strict parser reads back to the same value. */
START_TEST(writer_output_reads_back)
{
    static const double values[] = {
        0.1,  1.0 / 3.0, -2.5e-308,         4.9e-324, 1.7976931348623157e308, 123456789.123456789,
        -0.0, 1e21,      9007199254740993.0};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        vigil_buf b = VIGIL_BUF_INIT;
        ck_assert_int_eq(vigil__json_put_double(&b, values[i]), VIGIL_OK);
        vigil__json_doc d;
        ck_assert_int_eq(vigil__json_parse_doc(&d, b.ptr, b.size, 4), VIGIL_OK);
        ck_assert_msg(cJSON_IsNumber(d.root) && d.root->valuedouble == values[i], "%.17g wrote %s",
                      values[i], b.ptr);
        vigil__json_doc_free(&d);
        vigil_buf_dispose(&b);
    }
    vigil_buf b = VIGIL_BUF_INIT;
    const char raw[] = "tab\there \"q\" \\ \x1f \xe2\x82\xac";
    ck_assert_int_eq(vigil__json_put_string(&b, raw, sizeof(raw) - 1), VIGIL_OK);
    cJSON *s = NULL;
    ck_assert_int_eq(vigil__json_parse(&s, b.ptr, b.size, 4), VIGIL_OK);
    ck_assert_str_eq(s->valuestring, raw);
    cJSON_Delete(s);
    vigil_buf_dispose(&b);
}
END_TEST

/* ---- allocation ------------------------------------------------------------------ */

/* Every cJSON allocation goes through the library's allocator. */
START_TEST(cjson_uses_library_allocator)
{
    const char *doc = "{\"a\":[1,2,{\"b\":\"c\"}],\"d\":null}";
    vt_alloc_install();
    long live = vt_alloc_live();
    cJSON *root = NULL;
    vt_alloc_fail_at(-1, 0);
    ck_assert_int_eq(vigil__json_parse(&root, doc, strlen(doc), 8), VIGIL_OK);
    ck_assert_int_ge(vt_alloc_count(), 9); /* a block per node and string */
    ck_assert_int_gt(vt_alloc_live(), live + 8);
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(root, "a"), 2), "b")
                         ->valuestring,
                     "c");
    cJSON_Delete(root);
    ck_assert_int_eq(vt_alloc_live(), live);

    /* The arena document: one block from the same allocator, freed at once. */
    vigil__json_doc d;
    vt_alloc_fail_at(-1, 0);
    ck_assert_int_eq(vigil__json_parse_doc(&d, doc, strlen(doc), 8), VIGIL_OK);
    ck_assert_int_eq(vt_alloc_count(), 1);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(d.root, "d")));
    vigil__json_doc_free(&d);
    ck_assert_ptr_null(d.root);
    ck_assert_int_eq(vt_alloc_live(), live);
    /* A failed parse leaves nothing to free, and freeing is idempotent. */
    ck_assert_int_eq(vigil__json_parse_doc(&d, "{\"a\":", 5, 8), VIGIL_EJSON);
    vt_assert_error(VIGIL_EJSON, "a: unexpected end of input");
    vigil__json_doc_free(&d);
    ck_assert_int_eq(vt_alloc_live(), live);
    /* Depth limits are the caller's. */
    ck_assert_int_eq(vigil__json_parse(&root, "[[[1]]]", 7, 2), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "[0][0]: nesting too deep (line 1, column 3)");
    ck_assert_ptr_null(root);
}
END_TEST

typedef struct {
    cJSON *root;
    vigil__json_doc doc;
    const char *text;
} parse_ctx;

static int op_parse(void *arg)
{
    parse_ctx *c = arg;
    return vigil__json_parse(&c->root, c->text, strlen(c->text), 16);
}

static void cleanup_parse(void *arg)
{
    parse_ctx *c = arg;
    cJSON_Delete(c->root);
    c->root = NULL;
}

static int op_parse_doc(void *arg)
{
    parse_ctx *c = arg;
    return vigil__json_parse_doc(&c->doc, c->text, strlen(c->text), 16);
}

static void cleanup_parse_doc(void *arg)
{
    parse_ctx *c = arg;
    vigil__json_doc_free(&c->doc);
}

/* cJSON's own failure paths (a NULL from the hooks in the middle of a tree)
 * end in VIGIL_ENOMEM, never in VIGIL_EJSON. */
START_TEST(oom_json_parse)
{
    vigil_buf big = VIGIL_BUF_INIT;
    vigil__buf_puts(&big, "{\"k\":[");
    for (int i = 0; i < 3000; i++)
        vigil__buf_printf(&big, "%s{\"s\":\"v%d\",\"n\":%d,\"t\":true}", i ? "," : "", i, i);
    vigil__buf_puts(&big, "]}");
    parse_ctx c = {
        NULL, {NULL, NULL, 0}, "{\"a\":[1,\"x\",{\"b\":[null,false,\"\\u00e9\"]}],\"c\":{}}"};
    ck_assert_int_gt(vt_oom_sweep(op_parse, cleanup_parse, &c, 0), 8);
    ck_assert_int_eq(vt_oom_sweep(op_parse_doc, cleanup_parse_doc, &c, 0), 1);
    /* A document larger than the first arena block needs several. */
    c.text = big.ptr;
    ck_assert_int_gt(vt_oom_sweep(op_parse_doc, cleanup_parse_doc, &c, 0), 1);
    vigil_buf_dispose(&big);
}
END_TEST

static int op_put_string(void *arg)
{
    vigil_buf *b = arg;
    return vigil__json_put_string(b, "a\x01\xff", 3);
}

static void cleanup_buf(void *arg)
{
    vigil_buf_dispose(arg);
}

START_TEST(oom_writer)
{
    vigil_buf b = VIGIL_BUF_INIT;
    ck_assert_int_ge(vt_oom_sweep(op_put_string, cleanup_buf, &b, 0), 1);
}
END_TEST

static void install_allocator(void)
{
    vt_alloc_install();
    vigil__json_init(); /* cJSON_Parse in the tests allocates through the same hooks */
    vt_alloc_fail_at(-1, 0);
}

static TCase *new_tcase(const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, install_allocator, NULL);
    return tc;
}

static Suite *json_suite(void)
{
    Suite *s = suite_create("json");
    TCase *tc = new_tcase("check");
    tcase_add_test(tc, check_names_problem_and_offset);
    tcase_add_test(tc, check_accepts_valid_documents);
    tcase_add_test(tc, check_limits);
    suite_add_tcase(s, tc);
    tc = new_tcase("parse");
    tcase_add_test(tc, parse_messages_name_path_and_position);
    tcase_add_test(tc, parse_doc_builds_cjsons_tree);
    suite_add_tcase(s, tc);
    tc = new_tcase("paths");
    tcase_add_test(tc, path_at_names_the_containing_value);
    tcase_add_test(tc, quote_clip_escapes_and_clips);
    tcase_add_test(tc, json_paths);
    suite_add_tcase(s, tc);
    tc = new_tcase("writer");
    tcase_add_test(tc, json_writer);
    tcase_add_test(tc, writer_output_reads_back);
    suite_add_tcase(s, tc);
    tc = new_tcase("alloc");
    tcase_add_test(tc, cjson_uses_library_allocator);
    tcase_add_test(tc, oom_json_parse);
    tcase_add_test(tc, oom_writer);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(json_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
