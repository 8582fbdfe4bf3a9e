/* Config: YAML loading into a located node tree, typed getters, ${VAR}
 * expansion, unknown keys, limits (size, depth, nodes, alias bombs),
 * encodings, and an out-of-memory sweep of the loader. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "vigil/sys/errors.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers ----------------------------------------------------------------- */

typedef struct {
    const char *const *pairs; /* name, value, name, value, ..., NULL */
} env_table;

static const char *table_getenv(void *payload, const char *name)
{
    const env_table *t = payload;
    for (const char *const *p = t->pairs; *p; p += 2)
        if (strcmp(p[0], name) == 0)
            return p[1];
    return NULL;
}

static vigil_config *load_with(const char *yaml, const vigil_config_options *o)
{
    vigil_config *c = NULL;
    int rc = vigil_config_load_string(&c, yaml, strlen(yaml), "t.yaml", o);
    ck_assert_msg(rc == VIGIL_OK, "load failed: %d %s", rc, vigil_error_last()->message);
    ck_assert_ptr_nonnull(c);
    return c;
}

static vigil_config *load_ok(const char *yaml)
{
    return load_with(yaml, NULL);
}

/* Loads `len` bytes expecting `code` and a message containing `needle`. */
static void load_fail_n(const char *yaml, size_t len, const vigil_config_options *o, int code,
                        const char *needle)
{
    vigil_config *c = (vigil_config *)1;
    int rc = vigil_config_load_string(&c, yaml, len, "t.yaml", o);
    ck_assert_msg(rc == code, "expected %d, got %d (%s)", code, rc, vigil_error_last()->message);
    ck_assert_ptr_null(c);
    vt_assert_error(code, needle);
}

static void load_fail(const char *yaml, const vigil_config_options *o, int code, const char *needle)
{
    load_fail_n(yaml, strlen(yaml), o, code, needle);
}

/* Asserts the last error is exactly `msg` and carries the location. */
static void assert_located(int code, const char *msg, const char *file, unsigned line, unsigned col)
{
    const vigil_error *e = vigil_error_last();
    ck_assert_int_eq(e->code, code);
    ck_assert_str_eq(e->message, msg);
    ck_assert_ptr_nonnull(e->file);
    ck_assert_str_eq(e->file, file);
    ck_assert_uint_eq(e->line, line);
    ck_assert_uint_eq(e->column, col);
}

static const vigil_config_node *at_path(const vigil_config *c, const char *k1, const char *k2)
{
    const vigil_config_node *n = vigil_config_node_get(vigil_config_root(c, 0), k1);
    return k2 ? vigil_config_node_get(n, k2) : n;
}

static char *repeat(const char *unit, size_t times, const char *tail)
{
    size_t ul = strlen(unit), tl = strlen(tail);
    char *s = malloc(ul * times + tl + 1);
    ck_assert_ptr_nonnull(s);
    for (size_t i = 0; i < times; i++)
        memcpy(s + i * ul, unit, ul);
    memcpy(s + ul * times, tail, tl + 1);
    return s;
}

/* ---- options -------------------------------------------------------------------- */

START_TEST(options_init_and_versions)
{
    vigil_config_options o;
    ck_assert_int_eq(vigil_config_options_init(&o, VIGIL_CONFIG_OPTIONS_VERSION), VIGIL_OK);
    ck_assert_uint_eq(o.version, VIGIL_CONFIG_OPTIONS_VERSION);
    ck_assert_uint_eq(o.max_file_size, 0);
    ck_assert_ptr_null(o.getenv);
    ck_assert_int_eq(vigil_config_options_init(&o, 99), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION,
                    "config options: version 99 is not supported (this library reads version 1)");
    ck_assert_int_eq(vigil_config_options_init(NULL, 1), VIGIL_EINVAL);

    vigil_config_options init = VIGIL_CONFIG_OPTIONS_INIT;
    ck_assert_uint_eq(init.version, VIGIL_CONFIG_OPTIONS_VERSION);
    init.version = 7;
    load_fail("a: 1", &init, VIGIL_EVERSION, "config options: version 7 is not supported");

    vigil_config *c = (vigil_config *)1;
    ck_assert_int_eq(vigil_config_load_string(&c, NULL, 3, NULL, NULL), VIGIL_EINVAL);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(vigil_config_load_string(NULL, "a", 1, NULL, NULL), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_config_load_file(NULL, "x", NULL), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_config_load_file(&c, NULL, NULL), VIGIL_EINVAL);
    /* NULL text with length 0 is an empty file; NULL name is "<string>". */
    ck_assert_int_eq(vigil_config_load_string(&c, NULL, 0, NULL, NULL), VIGIL_OK);
    ck_assert_str_eq(vigil_config_file(c), "<string>");
    ck_assert_uint_eq(vigil_config_document_count(c), 0);
    vigil_config_free(c);
    vigil_config_free(NULL);
}
END_TEST

/* ---- the tree ------------------------------------------------------------------- */

static const char k_tree[] = "agent:\n"                                   /* 1 */
                             "  id: host-1\n"                             /* 2 */
                             "  tags: {env: dev, \"app.io/name\": web}\n" /* 3 */
                             "interval: 10s\n"                            /* 4 */
                             "collectors:\n"                              /* 5 */
                             "  - type: cpu\n"                            /* 6 */
                             "    interval: 5s\n"                         /* 7 */
                             "  - {type: http, url: \"http://x\"}\n"      /* 8 */
                             "empty:\n"                                   /* 9 */
                             "nothing: ~\n"                               /* 10 */
                             "quoted: \"null\"\n"                         /* 11 */
                             "nulls: [null, Null, NULL, '', !!null x]\n"; /* 12 */

static void assert_node(const vigil_config_node *n, vigil_config_kind kind, const char *path,
                        unsigned line, unsigned col)
{
    ck_assert_ptr_nonnull(n);
    ck_assert_int_eq(vigil_config_node_kind(n), kind);
    ck_assert_str_eq(vigil_config_node_path(n), path);
    ck_assert_str_eq(vigil_config_node_file(n), "t.yaml");
    ck_assert_uint_eq(vigil_config_node_line(n), line);
    ck_assert_uint_eq(vigil_config_node_column(n), col);
}

START_TEST(tree_nodes_paths_and_locations)
{
    vigil_config *c = load_ok(k_tree);
    ck_assert_str_eq(vigil_config_file(c), "t.yaml");
    ck_assert_uint_eq(vigil_config_document_count(c), 1);
    const vigil_config_node *root = vigil_config_root(c, 0);
    ck_assert_ptr_null(vigil_config_root(c, 1));
    assert_node(root, VIGIL_CONFIG_MAP, "", 1, 1);
    ck_assert_uint_eq(vigil_config_node_len(root), 7);
    const char *keys[] = {"agent", "interval", "collectors", "empty", "nothing", "quoted", "nulls"};
    for (size_t i = 0; i < 7; i++) {
        ck_assert_str_eq(vigil_config_node_key_at(root, i), keys[i]);
        ck_assert_ptr_eq(vigil_config_node_at(root, i), vigil_config_node_get(root, keys[i]));
    }
    ck_assert_ptr_null(vigil_config_node_key_at(root, 7));
    ck_assert_ptr_null(vigil_config_node_at(root, 7));
    ck_assert_ptr_null(vigil_config_node_get(root, "absent"));
    ck_assert_ptr_null(vigil_config_node_scalar(root));

    const vigil_config_node *agent = vigil_config_node_get(root, "agent");
    assert_node(agent, VIGIL_CONFIG_MAP, "agent", 2, 3);
    const vigil_config_node *id = vigil_config_node_get(agent, "id");
    assert_node(id, VIGIL_CONFIG_SCALAR, "agent.id", 2, 7);
    ck_assert_str_eq(vigil_config_node_scalar(id), "host-1");
    ck_assert_uint_eq(vigil_config_node_len(id), 0);
    ck_assert_ptr_null(vigil_config_node_at(id, 0));
    ck_assert_ptr_null(vigil_config_node_get(id, "x"));
    const vigil_config_node *tags = vigil_config_node_get(agent, "tags");
    assert_node(tags, VIGIL_CONFIG_MAP, "agent.tags", 3, 9);
    assert_node(vigil_config_node_get(tags, "env"), VIGIL_CONFIG_SCALAR, "agent.tags.env", 3, 15);
    assert_node(vigil_config_node_get(tags, "app.io/name"), VIGIL_CONFIG_SCALAR,
                "agent.tags[\"app.io/name\"]", 3, 35);

    assert_node(vigil_config_node_get(root, "interval"), VIGIL_CONFIG_SCALAR, "interval", 4, 11);
    const vigil_config_node *cols = vigil_config_node_get(root, "collectors");
    assert_node(cols, VIGIL_CONFIG_LIST, "collectors", 6, 3);
    ck_assert_uint_eq(vigil_config_node_len(cols), 2);
    ck_assert_ptr_null(vigil_config_node_key_at(cols, 0));
    ck_assert_ptr_null(vigil_config_node_get(cols, "type"));
    const vigil_config_node *c0 = vigil_config_node_at(cols, 0);
    assert_node(c0, VIGIL_CONFIG_MAP, "collectors[0]", 6, 5);
    assert_node(vigil_config_node_get(c0, "type"), VIGIL_CONFIG_SCALAR, "collectors[0].type", 6,
                11);
    assert_node(vigil_config_node_get(c0, "interval"), VIGIL_CONFIG_SCALAR,
                "collectors[0].interval", 7, 15);
    const vigil_config_node *c1 = vigil_config_node_at(cols, 1);
    assert_node(c1, VIGIL_CONFIG_MAP, "collectors[1]", 8, 5);
    assert_node(vigil_config_node_get(c1, "type"), VIGIL_CONFIG_SCALAR, "collectors[1].type", 8,
                12);
    assert_node(vigil_config_node_get(c1, "url"), VIGIL_CONFIG_SCALAR, "collectors[1].url", 8, 23);
    ck_assert_str_eq(vigil_config_node_scalar(vigil_config_node_get(c1, "url")), "http://x");
    ck_assert_ptr_null(vigil_config_node_at(cols, 2));

    /* null: empty value, ~, null spellings, !!null; quoted "null" is a string */
    assert_node(vigil_config_node_get(root, "empty"), VIGIL_CONFIG_NULL, "empty", 9, 7);
    assert_node(vigil_config_node_get(root, "nothing"), VIGIL_CONFIG_NULL, "nothing", 10, 10);
    ck_assert_ptr_null(vigil_config_node_scalar(vigil_config_node_get(root, "nothing")));
    assert_node(vigil_config_node_get(root, "quoted"), VIGIL_CONFIG_SCALAR, "quoted", 11, 9);
    ck_assert_str_eq(vigil_config_node_scalar(vigil_config_node_get(root, "quoted")), "null");
    const vigil_config_node *nulls = vigil_config_node_get(root, "nulls");
    ck_assert_uint_eq(vigil_config_node_len(nulls), 5);
    for (size_t i = 0; i < 3; i++)
        ck_assert_int_eq(vigil_config_node_kind(vigil_config_node_at(nulls, i)), VIGIL_CONFIG_NULL);
    assert_node(vigil_config_node_at(nulls, 3), VIGIL_CONFIG_SCALAR, "nulls[3]", 12, 27);
    ck_assert_str_eq(vigil_config_node_scalar(vigil_config_node_at(nulls, 3)), "");
    assert_node(vigil_config_node_at(nulls, 4), VIGIL_CONFIG_NULL, "nulls[4]", 12, 31);

    /* NULL handles */
    ck_assert_int_eq(vigil_config_node_kind(NULL), VIGIL_CONFIG_NULL);
    ck_assert_ptr_null(vigil_config_node_path(NULL));
    ck_assert_ptr_null(vigil_config_node_file(NULL));
    ck_assert_uint_eq(vigil_config_node_line(NULL), 0);
    ck_assert_uint_eq(vigil_config_node_column(NULL), 0);
    ck_assert_ptr_null(vigil_config_node_scalar(NULL));
    ck_assert_uint_eq(vigil_config_node_len(NULL), 0);
    ck_assert_ptr_null(vigil_config_node_at(NULL, 0));
    ck_assert_ptr_null(vigil_config_node_key_at(NULL, 0));
    ck_assert_ptr_null(vigil_config_node_get(NULL, "a"));
    ck_assert_ptr_null(vigil_config_node_get(root, NULL));
    ck_assert_ptr_null(vigil_config_root(NULL, 0));
    ck_assert_ptr_null(vigil_config_file(NULL));
    ck_assert_uint_eq(vigil_config_document_count(NULL), 0);
    vigil_config_free(c);
}
END_TEST

START_TEST(paths_quote_unusual_keys)
{
    vigil_config *c = load_ok("m:\n"
                              "  \"a.b\": 1\n"
                              "  'say \"hi\"\\': 2\n"
                              "  \"\": 3\n"
                              "  \"tab\\there\": 4\n"
                              "  under_score-dash9: 5\n"
                              "\"[0]\": [[x]]\n");
    const vigil_config_node *m = at_path(c, "m", NULL);
    ck_assert_str_eq(vigil_config_node_path(vigil_config_node_at(m, 0)), "m[\"a.b\"]");
    ck_assert_str_eq(vigil_config_node_path(vigil_config_node_at(m, 1)),
                     "m[\"say \\\"hi\\\"\\\\\"]");
    ck_assert_str_eq(vigil_config_node_path(vigil_config_node_at(m, 2)), "m[\"\"]");
    ck_assert_str_eq(vigil_config_node_path(vigil_config_node_at(m, 3)), "m[\"tab\\x09here\"]");
    ck_assert_str_eq(vigil_config_node_path(vigil_config_node_at(m, 4)), "m.under_score-dash9");
    const vigil_config_node *l = at_path(c, "[0]", NULL);
    ck_assert_str_eq(vigil_config_node_path(l), "[\"[0]\"]");
    ck_assert_str_eq(vigil_config_node_path(vigil_config_node_at(vigil_config_node_at(l, 0), 0)),
                     "[\"[0]\"][0][0]");
    vigil_config_free(c);

    /* a root list */
    c = load_ok("- a\n- [b, {c: d}]\n");
    const vigil_config_node *r = vigil_config_root(c, 0);
    ck_assert_str_eq(vigil_config_node_path(vigil_config_node_at(r, 0)), "[0]");
    const vigil_config_node *cd =
        vigil_config_node_get(vigil_config_node_at(vigil_config_node_at(r, 1), 1), "c");
    ck_assert_str_eq(vigil_config_node_path(cd), "[1][1].c");
    ck_assert_str_eq(vigil_config_node_scalar(cd), "d");
    vigil_config_free(c);

    /* a root scalar */
    c = load_ok("just text\n");
    assert_node(vigil_config_root(c, 0), VIGIL_CONFIG_SCALAR, "", 1, 1);
    ck_assert_str_eq(vigil_config_node_scalar(vigil_config_root(c, 0)), "just text");
    vigil_config_free(c);
}
END_TEST

START_TEST(large_map_lookup_uses_index)
{
    char yaml[4096];
    size_t n = 0;
    for (int i = 0; i < 200; i++)
        n += (size_t)snprintf(yaml + n, sizeof(yaml) - n, "k%03d: %d\n", (i * 37) % 200, i);
    vigil_config *c = load_ok(yaml);
    const vigil_config_node *root = vigil_config_root(c, 0);
    ck_assert_uint_eq(vigil_config_node_len(root), 200);
    for (int i = 0; i < 200; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%03d", (i * 37) % 200);
        int64_t v = -1;
        ck_assert_int_eq(vigil_config_get_int(&v, root, key, -2), VIGIL_OK);
        ck_assert_int_eq(v, i);
        ck_assert_uint_eq(vigil_config_node_line(vigil_config_node_get(root, key)),
                          (unsigned)i + 1);
        ck_assert_str_eq(vigil_config_node_key_at(root, (size_t)i), key);
    }
    ck_assert_ptr_null(vigil_config_node_get(root, "k200"));
    ck_assert_ptr_null(vigil_config_node_get(root, "a"));
    ck_assert_ptr_null(vigil_config_node_get(root, "z"));
    vigil_config_free(c);
}
END_TEST

START_TEST(multi_document_and_empty)
{
    vigil_config *c = load_ok("a: 1\n---\nb: 2\n---\n- x\n");
    ck_assert_uint_eq(vigil_config_document_count(c), 3);
    assert_node(vigil_config_root(c, 0), VIGIL_CONFIG_MAP, "", 1, 1);
    assert_node(vigil_config_root(c, 1), VIGIL_CONFIG_MAP, "", 3, 1);
    assert_node(vigil_config_node_get(vigil_config_root(c, 1), "b"), VIGIL_CONFIG_SCALAR, "b", 3,
                4);
    assert_node(vigil_config_root(c, 2), VIGIL_CONFIG_LIST, "", 5, 1);
    ck_assert_ptr_null(vigil_config_root(c, 3));
    vigil_config_free(c);

    /* "---" without content: a null document; "..." ends one */
    c = load_ok("---\n---\nx: 1\n...\n");
    ck_assert_uint_eq(vigil_config_document_count(c), 2);
    ck_assert_int_eq(vigil_config_node_kind(vigil_config_root(c, 0)), VIGIL_CONFIG_NULL);
    ck_assert_int_eq(vigil_config_node_kind(vigil_config_root(c, 1)), VIGIL_CONFIG_MAP);
    vigil_config_free(c);

    /* empty input, whitespace and comments: 0 documents */
    const char *empties[] = {"", "\n\n", "# only a comment\n", "   \n# x\n"};
    for (size_t i = 0; i < ARRAY_LEN(empties); i++) {
        c = load_ok(empties[i]);
        ck_assert_uint_eq(vigil_config_document_count(c), 0);
        ck_assert_ptr_null(vigil_config_root(c, 0));
        vigil_config_free(c);
    }

    /* anchors do not cross documents */
    load_fail("a: &x 1\n---\nb: *x\n", NULL, VIGIL_EALIAS,
              "t.yaml:3:4: b: alias *x refers to an undefined anchor");
}
END_TEST

START_TEST(load_file_reads_and_names_the_file)
{
    const char *dir = vt_tmpdir();
    const char *path = vt_write_file(dir, "agent.yaml", "a:\n  b: ten\n", 12);
    char pathbuf[1024];
    snprintf(pathbuf, sizeof(pathbuf), "%s", path);
    vigil_config *c = NULL;
    ck_assert_int_eq(vigil_config_load_file(&c, pathbuf, NULL), VIGIL_OK);
    ck_assert_str_eq(vigil_config_file(c), pathbuf);
    const vigil_config_node *b = at_path(c, "a", "b");
    ck_assert_str_eq(vigil_config_node_file(b), pathbuf);
    int64_t ms;
    ck_assert_int_eq(vigil_config_duration(&ms, b), VIGIL_EVALUE);
    char want[1200];
    snprintf(want, sizeof(want), "%s:2:6: a.b: expected a duration such as \"10s\", got \"ten\"",
             pathbuf);
    assert_located(VIGIL_EVALUE, want, pathbuf, 2, 6);
    vigil_config_free(c);

    /* empty file */
    path = vt_write_file(dir, "empty.yaml", "", 0);
    ck_assert_int_eq(vigil_config_load_file(&c, path, NULL), VIGIL_OK);
    ck_assert_uint_eq(vigil_config_document_count(c), 0);
    vigil_config_free(c);

    /* a file larger than a small initial guess still reads whole */
    char *big = repeat("- item\n", 3000, "");
    path = vt_write_file(dir, "big.yaml", big, strlen(big));
    ck_assert_int_eq(vigil_config_load_file(&c, path, NULL), VIGIL_OK);
    ck_assert_uint_eq(vigil_config_node_len(vigil_config_root(c, 0)), 3000);
    vigil_config_free(c);
    free(big);
}
END_TEST

START_TEST(load_file_errors)
{
    const char *dir = vt_tmpdir();
    char missing[1024];
    snprintf(missing, sizeof(missing), "%s/nope.yaml", dir);
    vigil_config *c = (vigil_config *)1;
    ck_assert_int_eq(vigil_config_load_file(&c, missing, NULL), VIGIL_EIO);
    ck_assert_ptr_null(c);
    char want[1200];
    snprintf(want, sizeof(want), "%s: cannot open: No such file or directory", missing);
    ck_assert_str_eq(vigil_error_last()->message, want);
    ck_assert_str_eq(vigil_error_last()->file, missing);

    ck_assert_int_eq(vigil_config_load_file(&c, dir, NULL), VIGIL_EIO);
    vt_assert_error(VIGIL_EIO, "Is a directory");
    vt_assert_error(VIGIL_EIO, dir);

    /* too large: refused from its size, before reading */
    vigil_config_options o = VIGIL_CONFIG_OPTIONS_INIT;
    o.max_file_size = 100;
    char *text = repeat("a", 101, "");
    const char *path = vt_write_file(dir, "large.yaml", text, 101);
    ck_assert_int_eq(vigil_config_load_file(&c, path, &o), VIGIL_ELIMIT);
    snprintf(want, sizeof(want), "%s: 101 bytes, above the limit of 100 (max_file_size)", path);
    ck_assert_str_eq(vigil_error_last()->message, want);
    /* exactly at the limit loads */
    path = vt_write_file(dir, "limit.yaml", text, 100);
    ck_assert_int_eq(vigil_config_load_file(&c, path, &o), VIGIL_OK);
    ck_assert_uint_eq(strlen(vigil_config_node_scalar(vigil_config_root(c, 0))), 100);
    vigil_config_free(c);
    /* the same from memory */
    load_fail_n(text, 101, &o, VIGIL_ELIMIT,
                "t.yaml: 101 bytes, above the limit of 100 (max_file_size)");
    free(text);

    /* a stream that is not a regular file is read at most to the limit */
    ck_assert_int_eq(vigil_config_load_file(&c, "/dev/zero", &o), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "/dev/zero: more than 100 bytes (max_file_size)");
    ck_assert_ptr_null(c);
}
END_TEST

/* ---- typed getters --------------------------------------------------------------- */

static const char k_values[] = "s: hello\n"
                               "i: -42\n"
                               "imin: -9223372036854775808\n"
                               "imax: 9223372036854775807\n"
                               "zero: 007\n"
                               "d: 2.5e3\n"
                               "dneg: -0.125\n"
                               "dint: 3\n"
                               "b: [true, false, yes, no, on, off]\n"
                               "dur: 1h30m\n"
                               "size: 8MiB\n"
                               "rate: 30/min\n"
                               "pct: 12.5%\n"
                               "l: [1]\n"
                               "m: {a: 1}\n"
                               "n: ~\n"
                               "e: {}\n";

START_TEST(node_getters_happy)
{
    vigil_config *c = load_ok(k_values);
    const vigil_config_node *r = vigil_config_root(c, 0);
    const char *s = NULL;
    int64_t i = 0;
    double d = 0;
    int b = -1;
    uint64_t u = 0;
    ck_assert_int_eq(vigil_config_string(&s, vigil_config_node_get(r, "s")), VIGIL_OK);
    ck_assert_str_eq(s, "hello");
    ck_assert_int_eq(vigil_config_string(&s, vigil_config_node_get(r, "i")), VIGIL_OK);
    ck_assert_str_eq(s, "-42");
    ck_assert_int_eq(vigil_config_int(&i, vigil_config_node_get(r, "i")), VIGIL_OK);
    ck_assert_int_eq(i, -42);
    ck_assert_int_eq(vigil_config_int(&i, vigil_config_node_get(r, "imin")), VIGIL_OK);
    ck_assert(i == INT64_MIN);
    ck_assert_int_eq(vigil_config_int(&i, vigil_config_node_get(r, "imax")), VIGIL_OK);
    ck_assert(i == INT64_MAX);
    ck_assert_int_eq(vigil_config_int(&i, vigil_config_node_get(r, "zero")), VIGIL_OK);
    ck_assert_int_eq(i, 7);
    ck_assert_int_eq(vigil_config_double(&d, vigil_config_node_get(r, "d")), VIGIL_OK);
    ck_assert_double_eq(d, 2500.0);
    ck_assert_int_eq(vigil_config_double(&d, vigil_config_node_get(r, "dneg")), VIGIL_OK);
    ck_assert_double_eq(d, -0.125);
    ck_assert_int_eq(vigil_config_double(&d, vigil_config_node_get(r, "dint")), VIGIL_OK);
    ck_assert_double_eq(d, 3.0);
    const vigil_config_node *bl = vigil_config_node_get(r, "b");
    int want[] = {1, 0, 1, 0, 1, 0};
    for (size_t k = 0; k < 6; k++) {
        ck_assert_int_eq(vigil_config_bool(&b, vigil_config_node_at(bl, k)), VIGIL_OK);
        ck_assert_int_eq(b, want[k]);
    }
    ck_assert_int_eq(vigil_config_duration(&i, vigil_config_node_get(r, "dur")), VIGIL_OK);
    ck_assert_int_eq(i, 5400000);
    ck_assert_int_eq(vigil_config_size(&u, vigil_config_node_get(r, "size")), VIGIL_OK);
    ck_assert_uint_eq(u, 8u << 20);
    ck_assert_int_eq(vigil_config_rate(&d, vigil_config_node_get(r, "rate")), VIGIL_OK);
    ck_assert_double_eq(d, 0.5);
    ck_assert_int_eq(vigil_config_percent(&d, vigil_config_node_get(r, "pct")), VIGIL_OK);
    ck_assert_double_eq(d, 0.125);
    ck_assert_int_eq(vigil_config_list(vigil_config_node_get(r, "l")), VIGIL_OK);
    ck_assert_int_eq(vigil_config_map(vigil_config_node_get(r, "m")), VIGIL_OK);
    ck_assert_int_eq(vigil_config_map(vigil_config_node_get(r, "e")), VIGIL_OK);
    ck_assert_uint_eq(vigil_config_node_len(vigil_config_node_get(r, "e")), 0);
    ck_assert_int_eq(vigil_config_map(r), VIGIL_OK);
    vigil_config_free(c);
}
END_TEST

START_TEST(map_getters_with_defaults)
{
    vigil_config *c = load_ok(k_values);
    const vigil_config_node *r = vigil_config_root(c, 0);
    const vigil_config_node *n = vigil_config_node_get(r, "n");
    const char *s = NULL;
    int64_t i = 0;
    double d = 0;
    int b = -1;
    uint64_t u = 0;

    /* present */
    ck_assert_int_eq(vigil_config_get_string(&s, r, "s", "dflt"), VIGIL_OK);
    ck_assert_str_eq(s, "hello");
    ck_assert_int_eq(vigil_config_get_int(&i, r, "i", 1), VIGIL_OK);
    ck_assert_int_eq(i, -42);
    ck_assert_int_eq(vigil_config_get_double(&d, r, "d", 1), VIGIL_OK);
    ck_assert_double_eq(d, 2500.0);
    ck_assert_int_eq(vigil_config_get_bool(&b, vigil_config_node_get(r, "m"), "a", 0),
                     VIGIL_EVALUE);
    ck_assert_int_eq(vigil_config_get_duration(&i, r, "dur", 1), VIGIL_OK);
    ck_assert_int_eq(i, 5400000);
    ck_assert_int_eq(vigil_config_get_size(&u, r, "size", 1), VIGIL_OK);
    ck_assert_uint_eq(u, 8u << 20);
    ck_assert_int_eq(vigil_config_get_rate(&d, r, "rate", 1), VIGIL_OK);
    ck_assert_double_eq(d, 0.5);
    ck_assert_int_eq(vigil_config_get_percent(&d, r, "pct", 1), VIGIL_OK);
    ck_assert_double_eq(d, 0.125);

    /* absent key, null value, NULL map, null-node map: the default */
    const vigil_config_node *maps[] = {r, r, NULL, n};
    const char *keys[] = {"absent", "n", "x", "x"};
    for (size_t k = 0; k < 4; k++) {
        const vigil_config_node *m = maps[k];
        const char *key = keys[k];
        ck_assert_int_eq(vigil_config_get_string(&s, m, key, "dflt"), VIGIL_OK);
        ck_assert_str_eq(s, "dflt");
        ck_assert_int_eq(vigil_config_get_string(&s, m, key, NULL), VIGIL_OK);
        ck_assert_ptr_null(s);
        ck_assert_int_eq(vigil_config_get_int(&i, m, key, 17), VIGIL_OK);
        ck_assert_int_eq(i, 17);
        ck_assert_int_eq(vigil_config_get_double(&d, m, key, 1.5), VIGIL_OK);
        ck_assert_double_eq(d, 1.5);
        ck_assert_int_eq(vigil_config_get_bool(&b, m, key, 1), VIGIL_OK);
        ck_assert_int_eq(b, 1);
        ck_assert_int_eq(vigil_config_get_duration(&i, m, key, 250), VIGIL_OK);
        ck_assert_int_eq(i, 250);
        ck_assert_int_eq(vigil_config_get_size(&u, m, key, 4096), VIGIL_OK);
        ck_assert_uint_eq(u, 4096);
        ck_assert_int_eq(vigil_config_get_rate(&d, m, key, 2.0), VIGIL_OK);
        ck_assert_double_eq(d, 2.0);
        ck_assert_int_eq(vigil_config_get_percent(&d, m, key, 0.25), VIGIL_OK);
        ck_assert_double_eq(d, 0.25);
    }

    /* the map argument must be a map */
    const vigil_config_node *l = vigil_config_node_get(r, "l");
    ck_assert_int_eq(vigil_config_get_int(&i, l, "x", 0), VIGIL_ETYPE);
    assert_located(VIGIL_ETYPE, "t.yaml:14:4: l: expected a map, got a list", "t.yaml", 14, 4);
    ck_assert_int_eq(vigil_config_get_string(&s, vigil_config_node_get(r, "s"), "x", NULL),
                     VIGIL_ETYPE);
    vt_assert_error(VIGIL_ETYPE, "t.yaml:1:4: s: expected a map, got \"hello\"");
    ck_assert_int_eq(vigil_config_get_int(NULL, r, "i", 0), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_config_get_int(&i, r, NULL, 0), VIGIL_EINVAL);
    vigil_config_free(c);
}
END_TEST

START_TEST(bad_values_are_located)
{
    vigil_config *c =
        load_ok("c:\n"                          /* 1 */
                "  dur: ten\n"                  /* 2 */
                "  size: big\n"                 /* 3 */
                "  rate: fast\n"                /* 4 */
                "  pct: 150%\n"                 /* 5 */
                "  pct2: ten%\n"                /* 6 */
                "  flag: True\n"                /* 7 */
                "  num: 12abc\n"                /* 8 */
                "  huge: 9223372036854775808\n" /* 9 */
                "  map: {a: 1}\n"               /* 10 */
                "  list: [1]\n"                 /* 11 */
                "  nul: ~\n"                    /* 12 */
                "  dbl: inf\n"                  /* 13 */
                "  dbl2: 1e999\n"               /* 14 */
                "  hex: 0x10\n"                 /* 15 */
                "  neg: -9223372036854775809\n" /* 16 */
                "  plus: +5\n"                  /* 17 */
                "  frac: 1.5\n"                 /* 18 */
                "  bigdur: 9999999999999999d\n" /* 19 */
                "  long: "
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n");
    const vigil_config_node *m = at_path(c, "c", NULL);
    int64_t i;
    uint64_t u;
    double d;
    int b;
    const char *s;

    ck_assert_int_eq(vigil_config_duration(&i, vigil_config_node_get(m, "dur")), VIGIL_EVALUE);
    assert_located(VIGIL_EVALUE,
                   "t.yaml:2:8: c.dur: expected a duration such as \"10s\", got \"ten\"", "t.yaml",
                   2, 8);
    ck_assert_int_eq(vigil_config_get_duration(&i, m, "dur", 0), VIGIL_EVALUE);
    assert_located(VIGIL_EVALUE,
                   "t.yaml:2:8: c.dur: expected a duration such as \"10s\", got \"ten\"", "t.yaml",
                   2, 8);
    ck_assert_int_eq(vigil_config_get_duration(&i, m, "bigdur", 0), VIGIL_ERANGE);
    vt_assert_error(VIGIL_ERANGE,
                    "t.yaml:19:11: c.bigdur: duration \"9999999999999999d\" is too large");

    ck_assert_int_eq(vigil_config_get_size(&u, m, "size", 0), VIGIL_EVALUE);
    assert_located(VIGIL_EVALUE,
                   "t.yaml:3:9: c.size: expected a size such as \"8MiB\", got \"big\"", "t.yaml", 3,
                   9);
    ck_assert_int_eq(vigil_config_get_rate(&d, m, "rate", 0), VIGIL_EVALUE);
    assert_located(VIGIL_EVALUE,
                   "t.yaml:4:9: c.rate: expected a rate such as \"30/min\", got \"fast\"", "t.yaml",
                   4, 9);
    ck_assert_int_eq(vigil_config_get_percent(&d, m, "pct", 0), VIGIL_ERANGE);
    assert_located(VIGIL_ERANGE, "t.yaml:5:8: c.pct: percentage \"150%\" is above 100%", "t.yaml",
                   5, 8);
    ck_assert_int_eq(vigil_config_get_percent(&d, m, "pct2", 0), VIGIL_EVALUE);
    assert_located(VIGIL_EVALUE,
                   "t.yaml:6:9: c.pct2: expected a percentage such as \"10%\", got \"ten%\"",
                   "t.yaml", 6, 9);
    ck_assert_int_eq(vigil_config_get_bool(&b, m, "flag", 0), VIGIL_EVALUE);
    assert_located(VIGIL_EVALUE,
                   "t.yaml:7:9: c.flag: expected a boolean (true/false, yes/no, on/off), got "
                   "\"True\"",
                   "t.yaml", 7, 9);
    ck_assert_int_eq(vigil_config_get_int(&i, m, "num", 0), VIGIL_EVALUE);
    assert_located(VIGIL_EVALUE, "t.yaml:8:8: c.num: expected an integer, got \"12abc\"", "t.yaml",
                   8, 8);
    ck_assert_int_eq(vigil_config_get_int(&i, m, "huge", 0), VIGIL_ERANGE);
    assert_located(VIGIL_ERANGE,
                   "t.yaml:9:9: c.huge: expected an integer from -9223372036854775808 to "
                   "9223372036854775807, got \"9223372036854775808\"",
                   "t.yaml", 9, 9);
    ck_assert_int_eq(vigil_config_get_int(&i, m, "neg", 0), VIGIL_ERANGE);
    vt_assert_error(VIGIL_ERANGE, "t.yaml:16:8: c.neg: expected an integer from");
    ck_assert_int_eq(vigil_config_get_int(&i, m, "hex", 0), VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE, "t.yaml:15:8: c.hex: expected an integer, got \"0x10\"");
    ck_assert_int_eq(vigil_config_get_int(&i, m, "plus", 0), VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE, "t.yaml:17:9: c.plus: expected an integer, got \"+5\"");
    ck_assert_int_eq(vigil_config_get_int(&i, m, "frac", 0), VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE, "t.yaml:18:9: c.frac: expected an integer, got \"1.5\"");

    ck_assert_int_eq(vigil_config_get_double(&d, m, "dbl", 0), VIGIL_EVALUE);
    assert_located(VIGIL_EVALUE, "t.yaml:13:8: c.dbl: expected a number, got \"inf\"", "t.yaml", 13,
                   8);
    ck_assert_int_eq(vigil_config_get_double(&d, m, "dbl2", 0), VIGIL_ERANGE);
    vt_assert_error(VIGIL_ERANGE, "t.yaml:14:9: c.dbl2: expected a finite number, got \"1e999\"");
    ck_assert_int_eq(vigil_config_get_double(&d, m, "hex", 0), VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE, "c.hex: expected a number, got \"0x10\"");
    ck_assert_int_eq(vigil_config_get_double(&d, m, "plus", 0), VIGIL_EVALUE);
    ck_assert_int_eq(vigil_config_get_double(&d, m, "num", 0), VIGIL_EVALUE);
    ck_assert_int_eq(vigil_config_get_double(&d, m, "dur", 0), VIGIL_EVALUE);

    /* long values are clipped in messages */
    ck_assert_int_eq(vigil_config_get_int(&i, m, "long", 0), VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE, "c.long: expected an integer, got \"aaaaaaaaaa");
    vt_assert_error(VIGIL_EVALUE, "aaa...\"");

    /* wrong kinds */
    ck_assert_int_eq(vigil_config_get_string(&s, m, "map", NULL), VIGIL_ETYPE);
    assert_located(VIGIL_ETYPE, "t.yaml:10:8: c.map: expected a string, got a map", "t.yaml", 10,
                   8);
    ck_assert_int_eq(vigil_config_get_int(&i, m, "list", 0), VIGIL_ETYPE);
    assert_located(VIGIL_ETYPE, "t.yaml:11:9: c.list: expected an integer, got a list", "t.yaml",
                   11, 9);
    ck_assert_int_eq(vigil_config_duration(&i, vigil_config_node_get(m, "map")), VIGIL_ETYPE);
    vt_assert_error(VIGIL_ETYPE, "c.map: expected a duration, got a map");
    ck_assert_int_eq(vigil_config_size(&u, vigil_config_node_get(m, "list")), VIGIL_ETYPE);
    vt_assert_error(VIGIL_ETYPE, "c.list: expected a size, got a list");
    ck_assert_int_eq(vigil_config_rate(&d, vigil_config_node_get(m, "list")), VIGIL_ETYPE);
    vt_assert_error(VIGIL_ETYPE, "c.list: expected a rate, got a list");
    ck_assert_int_eq(vigil_config_percent(&d, vigil_config_node_get(m, "list")), VIGIL_ETYPE);
    vt_assert_error(VIGIL_ETYPE, "c.list: expected a percentage, got a list");
    ck_assert_int_eq(vigil_config_bool(&b, vigil_config_node_get(m, "map")), VIGIL_ETYPE);
    vt_assert_error(VIGIL_ETYPE, "c.map: expected a boolean, got a map");
    ck_assert_int_eq(vigil_config_double(&d, vigil_config_node_get(m, "map")), VIGIL_ETYPE);
    vt_assert_error(VIGIL_ETYPE, "c.map: expected a number, got a map");
    ck_assert_int_eq(vigil_config_string(&s, vigil_config_node_get(m, "nul")), VIGIL_ETYPE);
    assert_located(VIGIL_ETYPE, "t.yaml:12:8: c.nul: expected a string, got null", "t.yaml", 12, 8);
    ck_assert_int_eq(vigil_config_list(vigil_config_node_get(m, "map")), VIGIL_ETYPE);
    vt_assert_error(VIGIL_ETYPE, "t.yaml:10:8: c.map: expected a list, got a map");
    ck_assert_int_eq(vigil_config_map(vigil_config_node_get(m, "flag")), VIGIL_ETYPE);
    vt_assert_error(VIGIL_ETYPE, "t.yaml:7:9: c.flag: expected a map, got \"True\"");
    ck_assert_int_eq(vigil_config_map(vigil_config_node_get(m, "nul")), VIGIL_ETYPE);
    vt_assert_error(VIGIL_ETYPE, "c.nul: expected a map, got null");
    /* a root has no path in the message */
    ck_assert_int_eq(vigil_config_list(vigil_config_root(c, 0)), VIGIL_ETYPE);
    assert_located(VIGIL_ETYPE, "t.yaml:1:1: expected a list, got a map", "t.yaml", 1, 1);

    /* NULL node and NULL out */
    ck_assert_int_eq(vigil_config_string(&s, NULL), VIGIL_EMISSING);
    vt_assert_error(VIGIL_EMISSING, "missing value (expected a string)");
    ck_assert_int_eq(vigil_config_int(&i, NULL), VIGIL_EMISSING);
    ck_assert_int_eq(vigil_config_list(NULL), VIGIL_EMISSING);
    ck_assert_int_eq(vigil_config_map(NULL), VIGIL_EMISSING);
    ck_assert_int_eq(vigil_config_string(NULL, m), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_config_int(NULL, m), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_config_double(NULL, m), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_config_bool(NULL, m), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_config_duration(NULL, m), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_config_size(NULL, m), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_config_rate(NULL, m), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_config_percent(NULL, m), VIGIL_EINVAL);
    vigil_config_free(c);
}
END_TEST

START_TEST(expect_keys_reports_unknown)
{
    vigil_config *c = load_ok("agent:\n"     /* 1 */
                              "  id: a\n"    /* 2 */
                              "  idd: b\n"   /* 3 */
                              "  zzzzz: c\n" /* 4 */
                              "list: [1]\n"  /* 5 */
                              "nul:\n");     /* 6 */
    const vigil_config_node *agent = at_path(c, "agent", NULL);
    const char *const all[] = {"id", "idd", "zzzzz", NULL};
    const char *const some[] = {"id", "tags", NULL};
    const char *const close_none[] = {"id", "idd", "tags", NULL};
    ck_assert_int_eq(vigil_config_expect_keys(agent, all), VIGIL_OK);
    ck_assert_int_eq(vigil_config_expect_keys(agent, some), VIGIL_EUNKNOWNKEY);
    assert_located(VIGIL_EUNKNOWNKEY, "t.yaml:3:3: agent.idd: unknown key (did you mean \"id\"?)",
                   "t.yaml", 3, 3);
    ck_assert_int_eq(vigil_config_expect_keys(agent, close_none), VIGIL_EUNKNOWNKEY);
    assert_located(VIGIL_EUNKNOWNKEY, "t.yaml:4:3: agent.zzzzz: unknown key", "t.yaml", 4, 3);

    const char *const root_keys[] = {"agent", "list", NULL};
    ck_assert_int_eq(vigil_config_expect_keys(vigil_config_root(c, 0), root_keys),
                     VIGIL_EUNKNOWNKEY);
    assert_located(VIGIL_EUNKNOWNKEY, "t.yaml:6:1: nul: unknown key", "t.yaml", 6, 1);

    ck_assert_int_eq(vigil_config_expect_keys(NULL, some), VIGIL_OK);
    ck_assert_int_eq(vigil_config_expect_keys(at_path(c, "nul", NULL), some), VIGIL_OK);
    ck_assert_int_eq(vigil_config_expect_keys(at_path(c, "list", NULL), some), VIGIL_ETYPE);
    vt_assert_error(VIGIL_ETYPE, "t.yaml:5:7: list: expected a map, got a list");
    ck_assert_int_eq(vigil_config_expect_keys(agent, NULL), VIGIL_EINVAL);
    vigil_config_free(c);
}
END_TEST

START_TEST(require_reports_missing)
{
    vigil_config *c = load_ok("actions:\n"                /* 1 */
                              "  - name: a\n"             /* 2 */
                              "    type: exec\n"          /* 3 */
                              "  - name: b\n"             /* 4 */
                              "  - {name: c, type: }\n"); /* 5 */
    const vigil_config_node *acts = at_path(c, "actions", NULL);
    ck_assert_int_eq(vigil_config_require(vigil_config_node_at(acts, 0), "type"), VIGIL_OK);
    ck_assert_int_eq(vigil_config_require(vigil_config_node_at(acts, 1), "type"), VIGIL_EMISSING);
    assert_located(VIGIL_EMISSING, "t.yaml:4:5: actions[1]: missing required key \"type\"",
                   "t.yaml", 4, 5);
    ck_assert_int_eq(vigil_config_require(vigil_config_node_at(acts, 2), "type"), VIGIL_EMISSING);
    vt_assert_error(VIGIL_EMISSING,
                    "t.yaml:5:21: actions[2].type: required key \"type\" has no value");
    ck_assert_int_eq(vigil_config_require(vigil_config_root(c, 0), "policies"), VIGIL_EMISSING);
    assert_located(VIGIL_EMISSING, "t.yaml:1:1: missing required key \"policies\"", "t.yaml", 1, 1);
    ck_assert_int_eq(vigil_config_require(acts, "x"), VIGIL_ETYPE);
    vt_assert_error(VIGIL_ETYPE, "t.yaml:2:3: actions: expected a map, got a list");
    ck_assert_int_eq(vigil_config_require(NULL, "type"), VIGIL_EMISSING);
    vt_assert_error(VIGIL_EMISSING, "missing required key \"type\"");
    ck_assert_int_eq(vigil_config_require(acts, NULL), VIGIL_EINVAL);
    vigil_config_free(c);
}
END_TEST

START_TEST(config_error_is_located)
{
    vigil_config *c = load_ok("hub:\n  url: ftp://x\n");
    const vigil_config_node *url = at_path(c, "hub", "url");
    ck_assert_int_eq(vigil_error_set_at(VIGIL_EUNSUPPORTED, url, "scheme \"ftp\" is not supported"),
                     VIGIL_EUNSUPPORTED);
    assert_located(VIGIL_EUNSUPPORTED, "t.yaml:2:8: hub.url: scheme \"ftp\" is not supported",
                   "t.yaml", 2, 8);
    ck_assert_int_eq(vigil_error_set_at(VIGIL_EVALUE, vigil_config_root(c, 0), "bad root"),
                     VIGIL_EVALUE);
    assert_located(VIGIL_EVALUE, "t.yaml:1:1: bad root", "t.yaml", 1, 1);
    ck_assert_int_eq(vigil_error_set_at(VIGIL_EVALUE, NULL, "plain"), VIGIL_EVALUE);
    ck_assert_str_eq(vigil_error_last()->message, "plain");
    ck_assert_ptr_null(vigil_error_last()->file);
    ck_assert_int_eq(vigil_error_set_at(VIGIL_EVALUE, url, NULL), VIGIL_EVALUE);
    ck_assert_str_eq(vigil_error_last()->message, "t.yaml:2:8: hub.url: invalid value");
    /* a located error with code 0 is no success either */
    ck_assert_int_eq(vigil_error_set_at(0, url, "scheme \"ftp\" is not supported"), VIGIL_ERROR);
    assert_located(VIGIL_ERROR, "t.yaml:2:8: hub.url: scheme \"ftp\" is not supported", "t.yaml", 2,
                   8);
    vigil_config_free(c);
}
END_TEST

START_TEST(plain_error_setter)
{
    ck_assert_int_eq(vigil_error_set(VIGIL_EIO, "the sensor is gone"), VIGIL_EIO);
    ck_assert_int_eq(vigil_error_last()->code, VIGIL_EIO);
    ck_assert_str_eq(vigil_error_last()->message, "the sensor is gone");
    ck_assert_ptr_null(vigil_error_last()->file);
    ck_assert_uint_eq(vigil_error_last()->line, 0);
    ck_assert_int_eq(vigil_error_set(VIGIL_ETIMEOUT, NULL), VIGIL_ETIMEOUT);
    ck_assert_str_eq(vigil_error_last()->message, "timed out");
    /* a long message is clipped on a character boundary: 1022 ASCII bytes, then
     * a 3-byte character that does not fit whole */
    char big[2048];
    memset(big, 'a', 1022);
    memcpy(big + 1022, "\xe2\x82\xac", 3);
    memset(big + 1025, 'b', 100);
    big[1125] = '\0';
    ck_assert_int_eq(vigil_error_set(VIGIL_EVALUE, big), VIGIL_EVALUE);
    ck_assert_uint_eq(strlen(vigil_error_last()->message), 1022);
    /* 0 or a positive code is no failure: VIGIL_ERROR is recorded and returned */
    ck_assert_int_eq(vigil_error_set(0, "the probe failed"), VIGIL_ERROR);
    ck_assert_int_eq(vigil_error_last()->code, VIGIL_ERROR);
    ck_assert_str_eq(vigil_error_last()->message, "the probe failed");
    ck_assert_int_eq(vigil_error_set(7, NULL), VIGIL_ERROR);
    ck_assert_int_eq(vigil_error_last()->code, VIGIL_ERROR);
    ck_assert_str_eq(vigil_error_last()->message, "error");
    ck_assert_int_eq(vigil_error_set_at(0, NULL, "bare"), VIGIL_ERROR);
    ck_assert_int_eq(vigil_error_last()->code, VIGIL_ERROR);
    ck_assert_str_eq(vigil_error_last()->message, "bare");
}
END_TEST

/* ---- environment ------------------------------------------------------------------ */

static const char *const k_env[] = {"HOST",   "h1",      "PORT",   "7600", "EMPTY", "",
                                    "NESTED", "${HOST}", "DOLLAR", "a$b",  NULL};

START_TEST(env_expansion)
{
    env_table t = {k_env};
    vigil_config_options o = VIGIL_CONFIG_OPTIONS_INIT;
    o.getenv = table_getenv;
    o.getenv_payload = &t;
    vigil_config *c = load_with("a: ${HOST}\n"
                                "b: \"http://${HOST}:${PORT}/x\"\n"
                                "c: ${MISSING:-fallback}\n"
                                "d: ${EMPTY:-used when empty}\n"
                                "e: ${EMPTY}\n"
                                "f: cost $$5 and $$$${HOST}\n"
                                "g: ${NESTED}\n"
                                "h: $HOST $ lone $\n"
                                "i: ${MISSING:-}\n"
                                "j: '${PORT}'\n"
                                "${HOST}: key not expanded\n"
                                "k: ${DOLLAR}\n"
                                "l: [\"${HOST}\", {m: \"${PORT}\"}]\n",
                                &o);
    const vigil_config_node *r = vigil_config_root(c, 0);
    struct {
        const char *key, *want;
    } cases[] = {{"a", "h1"},
                 {"b", "http://h1:7600/x"},
                 {"c", "fallback"},
                 {"d", "used when empty"},
                 {"e", ""},
                 {"f", "cost $5 and $${HOST}"},
                 {"g", "${HOST}"},
                 {"h", "$HOST $ lone $"},
                 {"i", ""},
                 {"j", "7600"},
                 {"${HOST}", "key not expanded"},
                 {"k", "a$b"}};
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        const vigil_config_node *n = vigil_config_node_get(r, cases[i].key);
        ck_assert_msg(n != NULL, "no key %s", cases[i].key);
        ck_assert_int_eq(vigil_config_node_kind(n), VIGIL_CONFIG_SCALAR);
        ck_assert_str_eq(vigil_config_node_scalar(n), cases[i].want);
    }
    const vigil_config_node *l = vigil_config_node_get(r, "l");
    ck_assert_str_eq(vigil_config_node_scalar(vigil_config_node_at(l, 0)), "h1");
    int64_t port;
    ck_assert_int_eq(vigil_config_get_int(&port, vigil_config_node_at(l, 1), "m", 0), VIGIL_OK);
    ck_assert_int_eq(port, 7600);
    vigil_config_free(c);

    /* no_env keeps the text */
    o.no_env = 1;
    c = load_with("a: ${HOST} $$\n", &o);
    ck_assert_str_eq(vigil_config_node_scalar(at_path(c, "a", NULL)), "${HOST} $$");
    vigil_config_free(c);

    /* the process environment when no callback is set */
    setenv("VIGIL_TEST_CONFIG_VAR", "from-env", 1);
    c = load_ok("a: x-${VIGIL_TEST_CONFIG_VAR}\n");
    ck_assert_str_eq(vigil_config_node_scalar(at_path(c, "a", NULL)), "x-from-env");
    vigil_config_free(c);
    unsetenv("VIGIL_TEST_CONFIG_VAR");
}
END_TEST

START_TEST(env_errors)
{
    env_table t = {k_env};
    vigil_config_options o = VIGIL_CONFIG_OPTIONS_INIT;
    o.getenv = table_getenv;
    o.getenv_payload = &t;
    load_fail("hub:\n  token: \"Bearer ${VIGIL_NOPE}\"\n", &o, VIGIL_EENV,
              "t.yaml:2:10: hub.token: environment variable \"VIGIL_NOPE\" is not set");
    assert_located(VIGIL_EENV,
                   "t.yaml:2:10: hub.token: environment variable \"VIGIL_NOPE\" is not set "
                   "(write ${VIGIL_NOPE:-default} to give a default)",
                   "t.yaml", 2, 10);
    load_fail("a: [x, \"${HOST}\", \"${ALSO_NOPE}\"]\n", &o, VIGIL_EENV,
              "t.yaml:1:19: a[2]: environment variable \"ALSO_NOPE\" is not set");
    /* malformed references */
    load_fail("a: ${HOST\n", &o, VIGIL_EVALUE,
              "t.yaml:1:4: a: malformed variable reference \"${HOST\": no closing '}'");
    load_fail("a: x${}\n", &o, VIGIL_EVALUE,
              "t.yaml:1:4: a: malformed variable reference \"${}\": a name starts with");
    load_fail("a: ${1X}\n", &o, VIGIL_EVALUE, "a: malformed variable reference \"${1X}\"");
    load_fail("a: ${HO-ST}\n", &o, VIGIL_EVALUE,
              "a: malformed variable reference \"${HO-ST}\": a name has only letters");
    load_fail("a: ${HOST:default}\n", &o, VIGIL_EVALUE, "malformed variable reference");
    load_fail("a: ${", &o, VIGIL_EVALUE, "t.yaml:1:4: a: malformed variable reference \"${\"");
    char *longname = repeat("N", 300, "}");
    char yaml[400];
    snprintf(yaml, sizeof(yaml), "a: ${%s\n", longname);
    free(longname);
    load_fail(yaml, &o, VIGIL_EVALUE, "the name is too long");

    /* oversized values */
    char *huge = repeat("v", 1024 * 1024 + 1, "");
    const char *const big_env[] = {"BIG", huge, "BAD", "\xff", NULL};
    env_table bt = {big_env};
    o.getenv_payload = &bt;
    load_fail("a: ${BIG}\n", &o, VIGIL_ELIMIT,
              "t.yaml:1:4: a: environment variable \"BIG\" is longer than 1048576 bytes");
    load_fail("a: ${BAD}\n", &o, VIGIL_EENCODING,
              "t.yaml:1:4: a: environment variable \"BAD\" is not valid UTF-8");
    huge[1000] = '\0';
    o.max_file_size = 500;
    load_fail("a: ${BIG}\n", &o, VIGIL_ELIMIT,
              "t.yaml:1:4: a: the value after ${...} expansion is longer than 500 bytes");
    free(huge);
}
END_TEST

/* ---- YAML errors --------------------------------------------------------------------- */

START_TEST(yaml_syntax_errors_are_located)
{
    load_fail("a: [1, 2\n", NULL, VIGIL_EYAML,
              "t.yaml:2:1: did not find expected ',' or ']' (while parsing a flow sequence at "
              "line 1, column 4)");
    assert_located(VIGIL_EYAML,
                   "t.yaml:2:1: did not find expected ',' or ']' (while parsing a flow sequence "
                   "at line 1, column 4)",
                   "t.yaml", 2, 1);
    load_fail("a: b: c\n", NULL, VIGIL_EYAML,
              "t.yaml:1:5: mapping values are not allowed in this context");
    load_fail("a:\n\tb: 1\n", NULL, VIGIL_EYAML,
              "t.yaml:2:1: found character that cannot start any token");
    load_fail("a: \"open\n", NULL, VIGIL_EYAML, "t.yaml:2:1: found unexpected end of stream");
    load_fail("- a\nb: 1\n", NULL, VIGIL_EYAML, "t.yaml:2:1: did not find expected '-' indicator");
    load_fail("key: - x\n", NULL, VIGIL_EYAML,
              "t.yaml:1:6: block sequence entries are not allowed in this context");
    load_fail("%YAML 2.0\n--- a\n", NULL, VIGIL_EYAML,
              "t.yaml:1:1: found incompatible YAML document");
}
END_TEST

START_TEST(keys_must_be_scalars_and_unique)
{
    load_fail("{[a]: b}\n", NULL, VIGIL_EYAML,
              "t.yaml:1:2: a map key must be a scalar, not a list");
    load_fail("m:\n  ? {a: 1}\n  : b\n", NULL, VIGIL_EYAML,
              "t.yaml:2:5: m: a map key must be a scalar, not a map");
    load_fail("x: &a 1\n*a : 2\n", NULL, VIGIL_EYAML,
              "t.yaml:2:1: a map key must be a scalar, not an alias (*a)");

    load_fail("a: 1\nb: 2\na: 3\n", NULL, VIGIL_EYAML,
              "t.yaml:3:1: a: duplicate key \"a\" (first at line 1, column 1)");
    assert_located(VIGIL_EYAML, "t.yaml:3:1: a: duplicate key \"a\" (first at line 1, column 1)",
                   "t.yaml", 3, 1);
    load_fail("m: {x: 1, 'x': 2}\n", NULL, VIGIL_EYAML,
              "t.yaml:1:11: m.x: duplicate key \"x\" (first at line 1, column 5)");
    /* a large map (indexed): the first duplicate in file order is reported */
    char yaml[2048];
    size_t n = 0;
    for (int i = 0; i < 30; i++)
        n += (size_t)snprintf(yaml + n, sizeof(yaml) - n, "k%02d: %d\n", i, i);
    n += (size_t)snprintf(yaml + n, sizeof(yaml) - n, "k20: dup\nk05: dup\nk05: again\n");
    load_fail(yaml, NULL, VIGIL_EYAML,
              "t.yaml:31:1: k20: duplicate key \"k20\" (first at line 21, column 1)");
    /* the same key in different maps is fine */
    vigil_config *c = load_ok("a: {x: 1}\nb: {x: 2}\n");
    vigil_config_free(c);
}
END_TEST

START_TEST(encoding_errors)
{
    load_fail("a: ok\nb: caf\xc3\n", NULL, VIGIL_EENCODING,
              "t.yaml:2:7: invalid UTF-8 (byte 0xC3)");
    assert_located(VIGIL_EENCODING, "t.yaml:2:7: invalid UTF-8 (byte 0xC3)", "t.yaml", 2, 7);
    load_fail("a: \xc3\xa9\xff\n", NULL, VIGIL_EENCODING, "t.yaml:1:5: invalid UTF-8 (byte 0xFF)");
    load_fail("a: \xed\xa0\x80\n", NULL, VIGIL_EENCODING, "t.yaml:1:4: invalid UTF-8");
    load_fail("a: \xc0\xaf\n", NULL, VIGIL_EENCODING, "t.yaml:1:4: invalid UTF-8");
    /* UTF-16 is refused, not guessed from the byte-order mark */
    load_fail_n("\xff\xfe"
                "a\0:\0 \0"
                "1\0",
                10, NULL, VIGIL_EENCODING, "t.yaml:1:1: invalid UTF-8 (byte 0xFF)");
    /* NUL bytes in the file, and escaped NUL in strings */
    load_fail_n("a: 1\nb: x\0y\n", 12, NULL, VIGIL_EENCODING, "t.yaml:2:5: NUL byte in the file");
    load_fail_n("a: 1\0", 5, NULL, VIGIL_EENCODING, "t.yaml:1:5: NUL byte in the file");
    load_fail("k: \"a\\0b\"\n", NULL, VIGIL_EENCODING, "t.yaml:1:4: k: NUL character in a string");
    load_fail("\"a\\x00\": 1\n", NULL, VIGIL_EENCODING, "t.yaml:1:1: NUL character in a key");
    /* other control characters (libyaml's reader) */
    load_fail("a: b\x01"
              "c\n",
              NULL, VIGIL_EENCODING, "t.yaml:1:5: control characters are not allowed (U+0001)");
    /* a UTF-8 byte-order mark and multi-byte text are fine; columns count characters */
    vigil_config *c = load_ok("\xef\xbb\xbf"
                              "caf\xc3\xa9: cr\xc3\xa8me\nb: \xe2\x82\xac\n");
    const vigil_config_node *r = vigil_config_root(c, 0);
    ck_assert_str_eq(vigil_config_node_key_at(r, 0), "caf\xc3\xa9");
    ck_assert_str_eq(vigil_config_node_scalar(vigil_config_node_at(r, 0)), "cr\xc3\xa8me");
    assert_node(vigil_config_node_get(r, "b"), VIGIL_CONFIG_SCALAR, "b", 2, 4);
    vigil_config_free(c);
}
END_TEST

/* ---- aliases ------------------------------------------------------------------------ */

START_TEST(aliases_expand_as_copies)
{
    vigil_config *c = load_ok("defaults: &d\n"            /* 1 */
                              "  interval: 5s\n"          /* 2 */
                              "  tags: {env: dev}\n"      /* 3 */
                              "name: &n demo\n"           /* 4 */
                              "collectors:\n"             /* 5 */
                              "  - *d\n"                  /* 6 */
                              "  - {type: x, tags: *d}\n" /* 7 */
                              "who: *n\n");               /* 8 */
    const vigil_config_node *cols = at_path(c, "collectors", NULL);
    const vigil_config_node *c0 = vigil_config_node_at(cols, 0);
    /* the copy takes the path of the alias and keeps the original's location */
    assert_node(c0, VIGIL_CONFIG_MAP, "collectors[0]", 1, 11); /* at "&d" */
    assert_node(vigil_config_node_get(c0, "interval"), VIGIL_CONFIG_SCALAR,
                "collectors[0].interval", 2, 13);
    assert_node(vigil_config_node_get(vigil_config_node_get(c0, "tags"), "env"),
                VIGIL_CONFIG_SCALAR, "collectors[0].tags.env", 3, 15);
    const vigil_config_node *deep =
        vigil_config_node_get(vigil_config_node_get(vigil_config_node_at(cols, 1), "tags"), "tags");
    assert_node(vigil_config_node_get(deep, "env"), VIGIL_CONFIG_SCALAR,
                "collectors[1].tags.tags.env", 3, 15);
    ck_assert_str_eq(vigil_config_node_scalar(vigil_config_node_get(deep, "env")), "dev");
    assert_node(at_path(c, "who", NULL), VIGIL_CONFIG_SCALAR, "who", 4, 7);
    ck_assert_str_eq(vigil_config_node_scalar(at_path(c, "who", NULL)), "demo");
    /* the original is untouched */
    assert_node(at_path(c, "defaults", "interval"), VIGIL_CONFIG_SCALAR, "defaults.interval", 2,
                13);
    /* getters on a copy report the copy's path */
    int64_t ms;
    ck_assert_int_eq(vigil_config_get_duration(&ms, c0, "interval", 0), VIGIL_OK);
    ck_assert_int_eq(ms, 5000);
    ck_assert_int_eq(vigil_config_get_int(&ms, c0, "interval", 0), VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE, "t.yaml:2:13: collectors[0].interval: expected an integer");
    vigil_config_free(c);

    /* a redefined anchor: the latest definition wins */
    c = load_ok("a: &x 1\nb: &x 2\nc: *x\n");
    ck_assert_str_eq(vigil_config_node_scalar(at_path(c, "c", NULL)), "2");
    vigil_config_free(c);
}
END_TEST

START_TEST(alias_errors)
{
    load_fail("a: *nope\n", NULL, VIGIL_EALIAS,
              "t.yaml:1:4: a: alias *nope refers to an undefined anchor");
    assert_located(VIGIL_EALIAS, "t.yaml:1:4: a: alias *nope refers to an undefined anchor",
                   "t.yaml", 1, 4);
    /* an alias used before its anchor is undefined too */
    load_fail("a: *x\nb: &x 1\n", NULL, VIGIL_EALIAS, "t.yaml:1:4: a: alias *x");
    load_fail("a: &x [1, *x]\n", NULL, VIGIL_EALIAS,
              "t.yaml:1:11: a[1]: alias *x refers to a list or map that contains it");
    load_fail("a: &x {b: {c: *x}}\n", NULL, VIGIL_EALIAS, "t.yaml:1:15: a.b.c: alias *x refers to");
}
END_TEST

START_TEST(alias_bomb_is_capped)
{
    /* "billion laughs": 9 levels of 9 aliases, 9^9 nodes if expanded */
    const char *bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n"
                       "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                       "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                       "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                       "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                       "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                       "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
                       "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
                       "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
    vt_alloc_install();
    long live = vt_alloc_live();
    load_fail(bomb, NULL, VIGIL_ELIMIT, "more than 100000 nodes (max_nodes");
    const vigil_error *e = vigil_error_last();
    ck_assert_str_eq(e->file, "t.yaml");
    ck_assert_uint_ge(e->line, 6);
    ck_assert_ptr_nonnull(strstr(e->message, "t.yaml:"));
    ck_assert_int_eq(vt_alloc_live(), live);

    /* a smaller cap fails sooner, counting copies */
    vigil_config_options o = VIGIL_CONFIG_OPTIONS_INIT;
    o.max_nodes = 50;
    load_fail(bomb, &o, VIGIL_ELIMIT, "t.yaml:2:20: b[3][7]: more than 50 nodes");
    /* exactly at the cap loads: root + a + 9 x's = 11 nodes, b's copy adds 10 */
    o.max_nodes = 21;
    vigil_config *c = load_with("a: &a [x, x, x, x, x, x, x, x, x]\nb: *a\n", &o);
    ck_assert_uint_eq(vigil_config_node_len(at_path(c, "b", NULL)), 9);
    ck_assert_str_eq(vigil_config_node_path(vigil_config_node_at(at_path(c, "b", NULL), 8)),
                     "b[8]");
    vigil_config_free(c);
    o.max_nodes = 20;
    load_fail("a: &a [x, x, x, x, x, x, x, x, x]\nb: *a\n", &o, VIGIL_ELIMIT,
              "t.yaml:2:4: b[8]: more than 20 nodes");
}
END_TEST

START_TEST(node_limit_without_aliases)
{
    vigil_config_options o = VIGIL_CONFIG_OPTIONS_INIT;
    o.max_nodes = 3;
    vigil_config *c = load_with("[1, 2]", &o);
    vigil_config_free(c);
    load_fail("[1, 2, 3]", &o, VIGIL_ELIMIT, "t.yaml:1:8: [2]: more than 3 nodes (max_nodes");
    /* counted across documents */
    load_fail("a\n---\nb\n---\nc\n---\nd\n", &o, VIGIL_ELIMIT, "t.yaml:7:1: more than 3 nodes");
}
END_TEST

START_TEST(anchor_limit_per_document)
{
    size_t cap = 400000, n = 0;
    char *yaml = malloc(cap);
    ck_assert_ptr_nonnull(yaml);
    /* 6,000 anchors in each of two documents: fine, anchors are per document */
    for (int d = 0; d < 2; d++) {
        n += (size_t)snprintf(yaml + n, cap - n, "---\n");
        for (int i = 0; i < 6000; i++)
            n += (size_t)snprintf(yaml + n, cap - n, "- &a%d x%d\n", i, i);
        n += (size_t)snprintf(yaml + n, cap - n, "- *a5999\n");
    }
    vigil_config *c = load_with(yaml, NULL);
    ck_assert_uint_eq(vigil_config_document_count(c), 2);
    ck_assert_str_eq(vigil_config_node_scalar(vigil_config_node_at(vigil_config_root(c, 1), 6000)),
                     "x5999");
    vigil_config_free(c);
    /* 10,001 in one document: refused; redefining one is not a new anchor */
    n = 0;
    for (int i = 0; i < 10000; i++)
        n += (size_t)snprintf(yaml + n, cap - n, "- &a%d x\n", i);
    n += (size_t)snprintf(yaml + n, cap - n, "- &a0 again\n");
    c = load_with(yaml, NULL);
    vigil_config_free(c);
    snprintf(yaml + n, cap - n, "- &new y\n");
    load_fail(yaml, NULL, VIGIL_ELIMIT, "t.yaml:10002:3: [10001]: more than 10000 anchors");
    free(yaml);
}
END_TEST

START_TEST(deep_nesting_is_refused)
{
    /* 100,000 '[' fail at depth 65, without recursing */
    char *deep = repeat("[", 100000, "");
    load_fail(deep, NULL, VIGIL_ELIMIT, "nesting deeper than 64 lists and maps (max_depth)");
    vt_assert_error(VIGIL_ELIMIT, "t.yaml:1:65: ");
    free(deep);
    deep = repeat("{a: ", 100000, "");
    load_fail(deep, NULL, VIGIL_ELIMIT, "nesting deeper than 64 lists and maps (max_depth)");
    free(deep);
    /* deep block maps */
    char block[20000];
    size_t n = 0;
    for (int i = 0; i < 70; i++)
        n += (size_t)snprintf(block + n, sizeof(block) - n, "%*sk:\n", i, "");
    load_fail(block, NULL, VIGIL_ELIMIT, "t.yaml:65:65: ");
    vt_assert_error(VIGIL_ELIMIT, "nesting deeper than 64");

    /* exactly max_depth loads */
    vigil_config_options o = VIGIL_CONFIG_OPTIONS_INIT;
    o.max_depth = 10;
    char *ok = repeat("[", 10, "]]]]]]]]]]");
    vigil_config *c = load_with(ok, &o);
    vigil_config_free(c);
    free(ok);
    char *bad = repeat("[", 11, "]]]]]]]]]]]");
    load_fail(bad, &o, VIGIL_ELIMIT, "t.yaml:1:11: [0][0][0][0][0][0][0][0][0][0]: nesting deeper");
    free(bad);

    /* aliases cannot exceed the depth either */
    o.max_depth = 4;
    load_fail("a: &a [[[x]]]\nb: [*a]\n", &o, VIGIL_ELIMIT,
              "t.yaml:2:5: b[0][0][0]: nesting deeper than 4 lists and maps (max_depth), "
              "through an alias");

    /* a very deep document within a raised limit loads: nothing recurses */
    o.max_depth = 100000;
    o.max_nodes = 200000;
    char *open = repeat("[", 5000, "");
    char *close = repeat("]", 5000, "");
    size_t len = strlen(open) + strlen(close) + 1;
    char *both = malloc(len);
    snprintf(both, len, "%s%s", open, close);
    c = load_with(both, &o);
    const vigil_config_node *node = vigil_config_root(c, 0);
    for (int i = 1; i < 5000; i++)
        node = vigil_config_node_at(node, 0);
    ck_assert_int_eq(vigil_config_node_kind(node), VIGIL_CONFIG_LIST);
    ck_assert_uint_eq(vigil_config_node_len(node), 0);
    ck_assert_uint_eq(strlen(vigil_config_node_path(node)), 3 * 4999);
    ck_assert_uint_eq(vigil_config_node_column(node), 5000);
    vigil_config_free(c);
    free(open);
    free(close);
    free(both);
}
END_TEST

START_TEST(text_budget_is_enforced)
{
    /* paths repeat a long key for every element: 16 x max_file_size caps them */
    vigil_config_options o = VIGIL_CONFIG_OPTIONS_INIT;
    o.max_file_size = 4096;
    char key[1001];
    memset(key, 'k', 1000);
    key[1000] = '\0';
    char yaml[4096];
    size_t n = (size_t)snprintf(yaml, sizeof(yaml), "%s: [", key);
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(yaml + n, sizeof(yaml) - n, "%s1", i ? "," : "");
    snprintf(yaml + n, sizeof(yaml) - n, "]\n");
    load_fail(yaml, &o, VIGIL_ELIMIT, "bytes of keys, values and paths (16 x max_file_size)");
    vt_assert_error(VIGIL_ELIMIT, "needs more than 65536 bytes");
    o.max_file_size = 0;
    vigil_config *c = load_with(yaml, &o);
    vigil_config_free(c);
}
END_TEST

/* ---- out of memory -------------------------------------------------------------------- */

static const char k_realistic[] =
    "agent: {id: \"${HOST:-h1}\", tags: {env: dev, team: \"${TEAM}\"}}\n"
    "hub:\n"
    "  urls: [\"http://${ADDR}:7600\"]\n"
    "  token_env: VIGIL_INGEST_TOKEN\n"
    "interval: 10s\n"
    "defaults: &d {interval: 5s, timeout: 2s, tags: {tier: web}}\n"
    "collectors:\n"
    "  - {type: cpu}\n"
    "  - {type: http, name: demo, url: \"http://${ADDR}/healthz\", timeout: 2s}\n"
    "  - *d\n"
    "big: {k01: 1, k02: 2, k03: 3, k04: 4, k05: 5, k06: 6, k07: 7, k08: 8, k09: 9, k10: 10}\n"
    "---\n"
    "second: [a, b, c]\n";

typedef struct {
    vigil_config *cfg;
    vigil_config_options opts;
    env_table env;
} oom_ctx;

static int oom_load(void *p)
{
    oom_ctx *x = p;
    return vigil_config_load_string(&x->cfg, k_realistic, strlen(k_realistic), "agent.yaml",
                                    &x->opts);
}

static void oom_cleanup(void *p)
{
    oom_ctx *x = p;
    vigil_config_free(x->cfg);
    x->cfg = NULL;
}

START_TEST(oom_sweep_load_string)
{
    static const char *const pairs[] = {"TEAM", "core", "ADDR", "127.0.0.1", NULL};
    oom_ctx x;
    memset(&x, 0, sizeof(x));
    vigil_config_options_init(&x.opts, VIGIL_CONFIG_OPTIONS_VERSION);
    x.env.pairs = pairs;
    x.opts.getenv = table_getenv;
    x.opts.getenv_payload = &x.env;
    long fails = vt_oom_sweep(oom_load, oom_cleanup, &x, 0);
    ck_assert_int_gt(fails, 5);
    if (getenv("VIGIL_TEST_VERBOSE"))
        printf("config OOM sweep: %ld failing allocations tested\n", fails);
    /* what the sweep loaded in the end: everything */
    ck_assert_int_eq(oom_load(&x), VIGIL_OK);
    ck_assert_uint_eq(vigil_config_document_count(x.cfg), 2);
    const vigil_config_node *r = vigil_config_root(x.cfg, 0);
    const char *s;
    ck_assert_int_eq(vigil_config_get_string(&s, vigil_config_node_get(r, "agent"), "id", NULL),
                     VIGIL_OK);
    ck_assert_str_eq(s, "h1");
    const vigil_config_node *c2 = vigil_config_node_at(vigil_config_node_get(r, "collectors"), 2);
    ck_assert_str_eq(vigil_config_node_path(vigil_config_node_get(c2, "timeout")),
                     "collectors[2].timeout");
    int64_t v;
    ck_assert_int_eq(vigil_config_get_int(&v, vigil_config_node_get(r, "big"), "k07", 0), VIGIL_OK);
    ck_assert_int_eq(v, 7);
    oom_cleanup(&x);
}
END_TEST

/* A larger document: several arena chunks, a block of its own for a long
 * value, a large indexed map, deep alias copies, read from a file. */
typedef struct {
    vigil_config *cfg;
    const char *path;
} oom_file_ctx;

static int oom_load_file(void *p)
{
    oom_file_ctx *x = p;
    return vigil_config_load_file(&x->cfg, x->path, NULL);
}

static void oom_file_cleanup(void *p)
{
    oom_file_ctx *x = p;
    vigil_config_free(x->cfg);
    x->cfg = NULL;
}

START_TEST(oom_sweep_load_file_large)
{
    size_t cap = 200000, n = 0;
    char *yaml = malloc(cap);
    ck_assert_ptr_nonnull(yaml);
    n += (size_t)snprintf(yaml + n, cap - n, "long: ");
    memset(yaml + n, 'v', 40000);
    n += 40000;
    n += (size_t)snprintf(yaml + n, cap - n, "\nbase: &b {a: [1, 2, {c: d}], e: f}\nmap:\n");
    for (int i = 0; i < 1500; i++)
        n += (size_t)snprintf(yaml + n, cap - n, "  key%04d: [%d, *b]\n", i, i);
    oom_file_ctx x = {NULL, vt_write_file(vt_tmpdir(), "large.yaml", yaml, n)};
    free(yaml);
    long fails = vt_oom_sweep(oom_load_file, oom_file_cleanup, &x, 0);
    ck_assert_int_gt(fails, 20);
    ck_assert_int_eq(oom_load_file(&x), VIGIL_OK);
    const vigil_config_node *m = at_path(x.cfg, "map", NULL);
    ck_assert_uint_eq(vigil_config_node_len(m), 1500);
    const vigil_config_node *c = vigil_config_node_get(
        vigil_config_node_at(vigil_config_node_get(
                                 vigil_config_node_at(vigil_config_node_get(m, "key1234"), 1), "a"),
                             2),
        "c");
    ck_assert_str_eq(vigil_config_node_path(c), "map.key1234[1].a[2].c");
    ck_assert_str_eq(vigil_config_node_scalar(c), "d");
    ck_assert_uint_eq(strlen(vigil_config_node_scalar(at_path(x.cfg, "long", NULL))), 40000);
    oom_file_cleanup(&x);
}
END_TEST

/* ---- suite ------------------------------------------------------------------------------ */

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("tree");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, options_init_and_versions);
    tcase_add_test(tc, tree_nodes_paths_and_locations);
    tcase_add_test(tc, paths_quote_unusual_keys);
    tcase_add_test(tc, large_map_lookup_uses_index);
    tcase_add_test(tc, multi_document_and_empty);
    tcase_add_test(tc, load_file_reads_and_names_the_file);
    tcase_add_test(tc, load_file_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("getters");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, node_getters_happy);
    tcase_add_test(tc, map_getters_with_defaults);
    tcase_add_test(tc, bad_values_are_located);
    tcase_add_test(tc, expect_keys_reports_unknown);
    tcase_add_test(tc, require_reports_missing);
    tcase_add_test(tc, config_error_is_located);
    tcase_add_test(tc, plain_error_setter);
    suite_add_tcase(s, tc);

    tc = tcase_create("env");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, env_expansion);
    tcase_add_test(tc, env_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, yaml_syntax_errors_are_located);
    tcase_add_test(tc, keys_must_be_scalars_and_unique);
    tcase_add_test(tc, encoding_errors);
    tcase_add_test(tc, aliases_expand_as_copies);
    tcase_add_test(tc, alias_errors);
    suite_add_tcase(s, tc);

    /* Limits parse large inputs: generous for valgrind and sanitizers. */
    tc = tcase_create("limits");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, alias_bomb_is_capped);
    tcase_add_test(tc, node_limit_without_aliases);
    tcase_add_test(tc, anchor_limit_per_document);
    tcase_add_test(tc, deep_nesting_is_refused);
    tcase_add_test(tc, text_budget_is_enforced);
    tcase_add_test(tc, oom_sweep_load_string);
    tcase_add_test(tc, oom_sweep_load_file_large);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
