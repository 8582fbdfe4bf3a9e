/* Helpers shared by the collector suites (test_collector*.c). */
#ifndef VIGIL_COLLECTOR_TEST_H
#define VIGIL_COLLECTOR_TEST_H

#include "testutil.h"

#include "vigil/collector.h"
#include "vigil/sys/collector.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CT_UNUSED __attribute__((unused))

CT_UNUSED static vigil_collector_registry *g_reg;
static vigil_config *g_cfg;
static vigil_batch *g_batch;

CT_UNUSED static void coll_setup(void)
{
    ck_assert_int_eq(vigil_collector_registry_new(&g_reg), VIGIL_OK);
    ck_assert_int_eq(vigil_collector_registry_add_builtins(g_reg), VIGIL_OK);
    ck_assert_int_eq(vigil_batch_new(&g_batch), VIGIL_OK);
}

CT_UNUSED static void coll_teardown(void)
{
    vigil_config_free(g_cfg);
    g_cfg = NULL;
    vigil_batch_free(g_batch);
    g_batch = NULL;
    vigil_collector_registry_free(g_reg);
    g_reg = NULL;
}

/* A fresh directory; all of them live in one vt_tmpdir() of the process, so
 * suites run without fork (valgrind) stay within vt_tmpdir()'s limit. */
CT_UNUSED static const char *fresh_dir(void)
{
    static const char *base;
    static char paths[8][600];
    static int next;
    if (!base)
        base = vt_tmpdir();
    char *p = paths[next++ % 8];
    snprintf(p, sizeof(paths[0]), "%s/dXXXXXX", base);
    ck_assert_ptr_nonnull(mkdtemp(p));
    return p;
}

/* Default options with logging off. */
CT_UNUSED static vigil_collector_options quiet_opts(void)
{
    vigil_collector_options o = VIGIL_COLLECTOR_OPTIONS_INIT;
    o.logger.min_level = VIGIL_LOG_OFF;
    return o;
}

/* Loads "collectors:\n  - <flow map>\n" as t.yaml and returns collectors[0]:
 * errors then read "t.yaml:2:5: collectors[0].key: ...". */
CT_UNUSED static const vigil_config_node *entry(const char *flow)
{
    char yaml[8192];
    snprintf(yaml, sizeof(yaml), "collectors:\n  - %s\n", flow);
    vigil_config_free(g_cfg);
    g_cfg = NULL;
    int rc = vigil_config_load_string(&g_cfg, yaml, strlen(yaml), "t.yaml", NULL);
    ck_assert_msg(rc == VIGIL_OK, "yaml: %s", vigil_error_last()->message);
    const vigil_config_node *list =
        vigil_config_node_get(vigil_config_root(g_cfg, 0), "collectors");
    return vigil_config_node_at(list, 0);
}

/* Creates a collector from a flow map with options (NULL: defaults). */
CT_UNUSED static int make_opts(vigil_collector **out, const char *flow,
                               const vigil_collector_options *o)
{
    /* Quiet by default: failures under test would flood stderr. */
    vigil_collector_options quiet = VIGIL_COLLECTOR_OPTIONS_INIT;
    quiet.logger.min_level = VIGIL_LOG_OFF;
    return vigil_collector_new(out, g_reg, entry(flow), o ? o : &quiet);
}

CT_UNUSED static int make(vigil_collector **out, const char *flow)
{
    return make_opts(out, flow, NULL);
}

/* Creates a collector that must succeed. */
CT_UNUSED static vigil_collector *must(const char *flow, const vigil_collector_options *o)
{
    vigil_collector *c = NULL;
    int rc = make_opts(&c, flow, o);
    ck_assert_msg(rc == VIGIL_OK, "%s: %d %s", flow, rc, vigil_error_last()->message);
    return c;
}

CT_UNUSED static const char *tag_of(const vigil_metric *m, const char *key)
{
    for (size_t i = 0; i < m->ntags; i++)
        if (strcmp(m->tags[i].key, key) == 0)
            return m->tags[i].value;
    return NULL;
}

/* The first sample named `name` (with tag key=value when key is not NULL). */
CT_UNUSED static const vigil_metric *find(const vigil_batch *b, const char *name, const char *key,
                                          const char *value)
{
    for (size_t i = 0; i < vigil_batch_count(b); i++) {
        const vigil_metric *m = vigil_batch_get(b, i);
        if (strcmp(m->name, name) != 0)
            continue;
        if (!key)
            return m;
        const char *v = tag_of(m, key);
        if (v && strcmp(v, value) == 0)
            return m;
    }
    return NULL;
}

CT_UNUSED static size_t count_named(const vigil_batch *b, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < vigil_batch_count(b); i++)
        n += strcmp(vigil_batch_get(b, i)->name, name) == 0;
    return n;
}

/* The value of a sample that must exist and carry no error. */
CT_UNUSED static double value_of(const vigil_batch *b, const char *name, const char *key,
                                 const char *value)
{
    const vigil_metric *m = find(b, name, key, value);
    ck_assert_msg(m != NULL, "no sample %s{%s=%s} among %zu", name, key ? key : "",
                  value ? value : "", vigil_batch_count(b));
    ck_assert_msg(m->error == NULL, "%s has error %s", name, m->error);
    return m->value;
}

CT_UNUSED static void dump(const vigil_batch *b)
{
    vigil_buf out = VIGIL_BUF_INIT;
    if (vigil_batch_encode_json(&out, b) == VIGIL_OK)
        fprintf(stderr, "%s\n", out.ptr);
    vigil_buf_dispose(&out);
}

/* Collects once into the cleared global batch. */
CT_UNUSED static void collect(vigil_collector *c, int64_t now)
{
    vigil_batch_clear(g_batch);
    int rc = vigil_collector_collect(c, g_batch, now, NULL);
    ck_assert_msg(rc == VIGIL_OK, "collect: %d %s", rc, vigil_error_last()->message);
}

/* Asserts that creating `flow` fails with `code` and a message containing
 * `needle` and the location "t.yaml:2:". */
#define assert_bad(flow, code, needle)                                                         \
    do {                                                                                       \
        vigil_collector *c_ = NULL;                                                            \
        int rc_ = make(&c_, (flow));                                                           \
        ck_assert_msg(rc_ == (code), "%s: expected %d, got %d (%s)", (flow), (int)(code), rc_, \
                      vigil_error_last()->message);                                            \
        ck_assert_ptr_null(c_);                                                                \
        vt_assert_error((code), (needle));                                                     \
        vt_assert_error((code), "t.yaml:2:");                                                  \
    } while (0)

#endif
