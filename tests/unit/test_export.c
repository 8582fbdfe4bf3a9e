/* The Prometheus exporter's pieces (lib/hub/export.c): match[] selector
 * parsing with every bad input's message, matching, label names made valid,
 * value escaping and sample values; then GET /v1/export/prometheus on an
 * in-memory hub through vigil_api_handle(): output, ordering, union and
 * dedup of selectors, limits and errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/export.h"
#include "testutil.h"
#include "vigil/vigil.h"

static void parse_fails(const char *text, const char *needle)
{
    vigil__promsel *s = NULL;
    int rc = vigil__promsel_parse(&s, text);
    ck_assert_msg(rc == VIGIL_EINVAL, "expected EINVAL, got %d for %s", rc, text);
    ck_assert_ptr_null(s);
    vt_assert_error(VIGIL_EINVAL, needle);
}

static int matches(const char *sel, const char *name, const char *const *ln, const char *const *lv,
                   size_t n)
{
    vigil__promsel *s = NULL;
    int rc = vigil__promsel_parse(&s, sel);
    ck_assert_msg(rc == VIGIL_OK, "%s: %s", sel, vigil_error_last()->message);
    int m = vigil__promsel_match(s, name, ln, lv, n);
    vigil__promsel_free(s);
    return m;
}

START_TEST(selectors_parse)
{
    vigil__promsel *s = NULL;
    ck_assert_int_eq(vigil__promsel_parse(&s, "cpu_usage"), VIGIL_OK);
    ck_assert_str_eq(vigil__promsel_name(s), "cpu_usage");
    vigil__promsel_free(s);
    ck_assert_int_eq(vigil__promsel_parse(&s, " ns:cpu_usage { host = \"h1\" , } "), VIGIL_OK);
    ck_assert_str_eq(vigil__promsel_name(s), "ns:cpu_usage");
    vigil__promsel_free(s);
    ck_assert_int_eq(vigil__promsel_parse(&s, "{__name__=\"x\",a!~'b.*'}"), VIGIL_OK);
    ck_assert_str_eq(vigil__promsel_name(s), "x");
    vigil__promsel_free(s);
    ck_assert_int_eq(vigil__promsel_parse(&s, "{__name__=~\"vt_.+\"}"), VIGIL_OK);
    ck_assert_ptr_null(vigil__promsel_name(s));
    vigil__promsel_free(s);

    parse_fails("", "match[]: empty selector");
    parse_fails("{}", "match[]: \"{}\" has no matcher");
    parse_fails("{a=\"\"}", "matches every series: at least one matcher must not match the "
                            "empty string");
    parse_fails("{a=~\".*\"}", "matches every series");
    parse_fails("{a!=\"x\"}", "matches every series");
    parse_fails("9abc", "match[]: expected a metric name or '{' at byte 1 of \"9abc\"");
    parse_fails("cpu{", "expected a label name ([a-zA-Z_][a-zA-Z0-9_]*) at byte 5");
    parse_fails("cpu{a}", "expected one of = != =~ !~ after the label name at byte 6");
    parse_fails("cpu{a=b}", "expected a quoted value at byte 7");
    parse_fails("cpu{a=\"b}", "unterminated string");
    parse_fails("cpu{a=\"b\\q\"}", "unknown escape in a string");
    parse_fails("cpu{a=\"b\" b=\"c\"}", "expected ',' or '}' at byte 11");
    parse_fails("cpu{a=\"b\"} x", "unexpected text after the selector at byte 12");
    parse_fails("cpu{a:b=\"x\"}", "expected one of = != =~ !~");
    parse_fails("cpu{a=~\"(\"}", "match[]: bad regular expression \"(\" for \"a\"");
    parse_fails("cpu{a=~\"(x)\\\\1\"}", "back-references (\\1) are not supported");
    /* glibc's regcomp() copies repeated parts: the growth is capped */
    parse_fails("x{a=~\"vt_++\"}", "two repetition operators in a row in the regular expression "
                                   "of \"a\"");
    parse_fails("x{a=~\"b*?\"}", "two repetition operators in a row");
    parse_fails("x{a=~\"((a{99}){99})\"}", "the regular expression of \"a\" repeats too much "
                                           "('+' and {n,m} multiply its size; at most 256)");
    parse_fails("x{a=~\"(((((((((a+)+)+)+)+)+)+)+)+)\"}", "repeats too much");
    parse_fails("x{a=~\"a{1000}\"}", "a bound {n,m} of the regular expression of \"a\" is "
                                     "malformed or above 100");
    parse_fails("x{a=~\"a{2,x}\"}", "is malformed");
    ck_assert(matches("x{a=~\"(b+)+c{2,3}[+*]{0,2}\\\\+\"}", "x", (const char *[]){"a"},
                      (const char *[]){"bbbcc+*+"}, 1));
    ck_assert(matches("x{a=~\"b{2,}\"}", "x", (const char *[]){"a"}, (const char *[]){"bbbb"}, 1));
    char big[VIGIL__EXPORT_SELECTOR_LEN + 8];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    parse_fails(big, "match[]: a selector is longer than 1024 bytes");
    char re[400];
    snprintf(re, sizeof(re), "x{a=~\"%0300d\"}", 0);
    parse_fails(re, "the regular expression of \"a\" is longer than 256 bytes");
    char many[2048] = "x{";
    for (int i = 0; i < VIGIL__EXPORT_MATCHERS_MAX + 1; i++) {
        char m[32];
        snprintf(m, sizeof(m), "l%d=\"v\",", i);
        strcat(many, m);
    }
    strcat(many, "}");
    parse_fails(many, "match[]: more than 32 matchers in a selector");
}
END_TEST

START_TEST(selectors_match)
{
    const char *ln[] = {"env", "host"};
    const char *lv[] = {"prod", "web-01"};
    ck_assert(matches("cpu", "cpu", ln, lv, 2));
    ck_assert(!matches("cpu", "cpu2", ln, lv, 2));
    ck_assert(matches("cpu{host=\"web-01\"}", "cpu", ln, lv, 2));
    ck_assert(!matches("cpu{host!=\"web-01\"}", "cpu", ln, lv, 2));
    ck_assert(matches("cpu{host=~\"web-.*\"}", "cpu", ln, lv, 2));
    /* anchored at both ends, as Prometheus' are */
    ck_assert(!matches("cpu{host=~\"web\"}", "cpu", ln, lv, 2));
    ck_assert(!matches("cpu{host=~\"eb-01\"}", "cpu", ln, lv, 2));
    ck_assert(matches("cpu{host!~\"db-.*\"}", "cpu", ln, lv, 2));
    ck_assert(!matches("cpu{host!~\"web-.*\"}", "cpu", ln, lv, 2));
    /* an absent label is "" */
    ck_assert(matches("cpu{dc=\"\"}", "cpu", ln, lv, 2));
    ck_assert(!matches("cpu{dc=\"x\"}", "cpu", ln, lv, 2));
    ck_assert(matches("cpu{dc!=\"x\"}", "cpu", ln, lv, 2));
    ck_assert(matches("{__name__=~\"c.u\",env=\"prod\"}", "cpu", ln, lv, 2));
    ck_assert(!matches("{__name__=~\"c.u\",env=\"dev\"}", "cpu", ln, lv, 2));
    ck_assert(matches("{env='prod'}", "anything", ln, lv, 2));
    const char *qn[] = {"msg"};
    const char *qv[] = {"a\"b\\c\nd"};
    ck_assert(matches("m{msg=\"a\\\"b\\\\c\\nd\"}", "m", qn, qv, 1));
    ck_assert(matches("m{msg=`a\"b\\c\nd`}", "m", qn, qv, 1));
}
END_TEST

START_TEST(label_names_and_values)
{
    char out[VIGIL__EXPORT_LABEL_NAME_SIZE];
    vigil__export_label_name(out, sizeof(out), "host");
    ck_assert_str_eq(out, "host");
    vigil__export_label_name(out, sizeof(out), "a:b");
    ck_assert_str_eq(out, "a_b");
    vigil__export_label_name(out, sizeof(out), "__meta");
    ck_assert_str_eq(out, "tag__meta");
    vigil__export_label_name(out, sizeof(out), "_x");
    ck_assert_str_eq(out, "_x");
    vigil__export_label_name(out, sizeof(out), ":x:");
    ck_assert_str_eq(out, "_x_");
    char tiny[4];
    vigil__export_label_name(tiny, sizeof(tiny), "abcdef");
    ck_assert_str_eq(tiny, "abc");

    vigil_buf b = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil__export_escape(&b, "plain é ü"), VIGIL_OK);
    ck_assert_int_eq(vigil__export_escape(&b, "|a\\b\"c\nd\te"), VIGIL_OK);
    vigil__buf_putc(&b, '\0');
    ck_assert_str_eq(b.ptr, "plain é ü|a\\\\b\\\"c\\nd\te");
    vigil_buf_dispose(&b);

    struct {
        double v;
        const char *text;
    } values[] = {{0, "0"},
                  {1, "1"},
                  {-2.5, "-2.5"},
                  {0.1, "0.1"},
                  {1e300, "1e+300"},
                  {NAN, "NaN"},
                  {INFINITY, "+Inf"},
                  {-INFINITY, "-Inf"},
                  {123456789012.0, "123456789012"}};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        vigil_buf v = VIGIL_BUF_INIT;
        ck_assert_int_eq(vigil__export_value(&v, values[i].v), VIGIL_OK);
        vigil__buf_putc(&v, '\0');
        ck_assert_str_eq(v.ptr, values[i].text);
        vigil_buf_dispose(&v);
    }
}
END_TEST

/* ---- the route on an in-memory hub ------------------------------------------------- */

typedef struct fx {
    vigil_hub *hub;
    vigil_api *api;
} fx;

static void fx_open(fx *f)
{
    vigil_hub_options o = VIGIL_HUB_OPTIONS_INIT;
    o.store_url = "sqlite://:memory:";
    ck_assert_int_eq(vigil_hub_new(&f->hub, &o), VIGIL_OK);
    ck_assert_int_eq(vigil_hub_start(f->hub), VIGIL_OK);
    ck_assert_int_eq(vigil_api_new(&f->api, NULL), VIGIL_OK);
    ck_assert_int_eq(vigil_hub_mount(f->hub, f->api), VIGIL_OK);
}

static void fx_close(fx *f)
{
    vigil_api_free(f->api);
    vigil_hub_free(f->hub);
}

static void add(fx *f, const char *name, double v, int64_t ts, const char *k1, const char *v1,
                const char *k2, const char *v2)
{
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    vigil_tag tags[2] = {{k1, v1}, {k2, v2}};
    vigil_metric m = {name, v, ts, tags, k2 ? 2 : (k1 ? 1 : 0), NULL};
    ck_assert_int_eq(vigil_batch_add(b, &m), VIGIL_OK);
    ck_assert_int_eq(vigil_hub_ingest(f->hub, b, NULL), VIGIL_OK);
    vigil_batch_free(b);
}

/* GET path; the status, the body in *body (free()). */
static int get(fx *f, const char *path, char **body)
{
    vigil_api_request req = VIGIL_API_REQUEST_INIT;
    char p[2048];
    snprintf(p, sizeof(p), "%s", path);
    char *q = strchr(p, '?');
    if (q)
        *q++ = '\0';
    req.method = "GET";
    req.path = p;
    req.query = q;
    vigil_api_response *resp = NULL;
    ck_assert_int_eq(vigil_api_response_new(&resp), VIGIL_OK);
    ck_assert_int_eq(vigil_api_handle(f->api, &req, resp), VIGIL_OK);
    size_t len = 0;
    const char *b = vigil_api_response_body(resp, &len);
    *body = strndup(b ? b : "", len);
    int st = vigil_api_response_status(resp);
    if (st == 200)
        ck_assert_str_eq(vigil_api_response_header(resp, "Content-Type"),
                         "text/plain; version=0.0.4; charset=utf-8");
    vigil_api_response_free(resp);
    return st;
}

START_TEST(route_exports_latest_samples)
{
    fx f;
    fx_open(&f);
    int64_t t = 1700000000000;
    add(&f, "vt_temp", 1, t, "host", "h1", "a:b", "x\"y\\z\nw");
    add(&f, "vt_temp", 2.5, t + 1000, "host", "h1", "a:b", "x\"y\\z\nw");
    add(&f, "vt_temp", 7, t + 500, "host", "h2", NULL, NULL);
    add(&f, "vt_other", -1, t, "__x", "1", NULL, NULL);
    add(&f, "nope", 3, t, NULL, NULL, NULL, NULL);
    char *body = NULL;
    ck_assert_int_eq(
        get(&f, "/v1/export/prometheus?match[]=%7B__name__%3D~%22vt_.%2A%22%7D", &body), 200);
    ck_assert_str_eq(body, "# TYPE vt_other untyped\n"
                           "vt_other{tag__x=\"1\"} -1 1700000000000\n"
                           "# TYPE vt_temp untyped\n"
                           "vt_temp{a_b=\"x\\\"y\\\\z\\nw\",host=\"h1\"} 2.5 1700000001000\n"
                           "vt_temp{host=\"h2\"} 7 1700000000500\n");
    free(body);
    /* two selectors: their union, each series once */
    ck_assert_int_eq(get(&f,
                         "/v1/export/prometheus?match[]=vt_temp%7Bhost%3D%22h2%22%7D"
                         "&match[]=vt_temp&match[]=nope",
                         &body),
                     200);
    ck_assert_str_eq(body, "# TYPE nope untyped\n"
                           "nope 3 1700000000000\n"
                           "# TYPE vt_temp untyped\n"
                           "vt_temp{a_b=\"x\\\"y\\\\z\\nw\",host=\"h1\"} 2.5 1700000001000\n"
                           "vt_temp{host=\"h2\"} 7 1700000000500\n");
    free(body);
    /* matchers see the exported label names */
    ck_assert_int_eq(
        get(&f, "/v1/export/prometheus?match[]=vt_temp%7Ba_b%3D~%22x.%2A%22%7D", &body), 200);
    ck_assert_ptr_nonnull(strstr(body, "host=\"h1\""));
    ck_assert_ptr_null(strstr(body, "h2"));
    free(body);
    ck_assert_int_eq(get(&f, "/v1/export/prometheus?match[]=absent_metric", &body), 200);
    ck_assert_str_eq(body, "");
    free(body);

    ck_assert_int_eq(get(&f, "/v1/export/prometheus", &body), 400);
    ck_assert_ptr_nonnull(strstr(body, "match[]: at least one selector is required"));
    free(body);
    ck_assert_int_eq(get(&f, "/v1/export/prometheus?match[]=%7Bx%3D%22%22%7D", &body), 400);
    ck_assert_ptr_nonnull(strstr(body, "\"code\":\"invalid_request\""));
    ck_assert_ptr_nonnull(strstr(body, "matches every series"));
    free(body);
    ck_assert_int_eq(get(&f, "/v1/export/prometheus?match[]=vt%7Ba%3D~%22(%22%7D", &body), 400);
    ck_assert_ptr_nonnull(strstr(body, "bad regular expression"));
    free(body);
    char path[1024] = "/v1/export/prometheus?";
    for (int i = 0; i < VIGIL__EXPORT_SELECTORS_MAX + 1; i++)
        strcat(path, "match[]=vt_temp&");
    ck_assert_int_eq(get(&f, path, &body), 400);
    ck_assert_ptr_nonnull(strstr(body, "match[]: more than 16 selectors"));
    free(body);
    fx_close(&f);
}
END_TEST

START_TEST(route_limits_series)
{
    fx f;
    fx_open(&f);
    vigil_batch *b = NULL;
    ck_assert_int_eq(vigil_batch_new(&b), VIGIL_OK);
    vigil_batch_set_max_metrics(b, VIGIL__EXPORT_SERIES_MAX + 1);
    char v[32];
    for (int i = 0; i <= VIGIL__EXPORT_SERIES_MAX; i++) {
        snprintf(v, sizeof(v), "%d", i);
        vigil_tag tag = {"i", v};
        vigil_metric m = {"many", 1, 1700000000000, &tag, 1, NULL};
        ck_assert_int_eq(vigil_batch_add(b, &m), VIGIL_OK);
    }
    int rc = vigil_hub_ingest(f.hub, b, NULL);
    vigil_batch_free(b);
    ck_assert_int_eq(rc, VIGIL_OK);
    char *body = NULL;
    ck_assert_int_eq(get(&f, "/v1/export/prometheus?match[]=many", &body), 400);
    ck_assert_ptr_nonnull(strstr(body, "more than 20000 series match: narrow the selectors"));
    free(body);
    ck_assert_int_eq(get(&f, "/v1/export/prometheus?match[]=many%7Bi%3D~%221.%2A%22%7D", &body),
                     200);
    ck_assert_ptr_nonnull(strstr(body, "many{i=\"19999\"} 1 1700000000000\n"));
    free(body);
    fx_close(&f);
}
END_TEST

static Suite *export_suite(void)
{
    Suite *s = suite_create("export");
    TCase *tc = tcase_create("export");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, selectors_parse);
    tcase_add_test(tc, selectors_match);
    tcase_add_test(tc, label_names_and_values);
    tcase_add_test(tc, route_exports_latest_samples);
    tcase_add_test(tc, route_limits_series);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(export_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
