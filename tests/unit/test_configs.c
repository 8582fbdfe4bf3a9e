/* The shipped configs agree (issue 13): configs/agent.yaml, collector.yaml,
 * remediator.yaml and every *.yaml file of configs/policies load together (the
 * policies of collector.yaml and of the directory as one set, as the hub loads
 * them with policies_dir: configs/policies), every action a policy names (its
 * `action` and its `escalate` list) is one the shipped remediator.yaml
 * defines, and the addresses and secrets the three daemons share match. */
#include <check.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "vigil/vigil.h"

#define NAMES_MAX 64

typedef struct names {
    const char *v[NAMES_MAX];
    size_t n;
} names;

static void set_env(void)
{
    setenv("VIGIL_INGEST_TOKEN", "cfgs-ingest-token-00000000", 1);
    setenv("VIGIL_READ_TOKEN", "cfgs-read-token-0000000000", 1);
    setenv("VIGIL_REMEDIATOR_HUB_TOKEN", "cfgs-write-token-000000000", 1);
    setenv("VIGIL_REMEDIATOR_SECRET", "cfgs-secret-0000000000000000000000", 1);
    setenv("VIGIL_ADMIN_TOKEN", "cfgs-admin-token-000000000", 1);
}

static int has_name(const names *n, const char *s)
{
    for (size_t i = 0; i < n->n; i++)
        if (strcmp(n->v[i], s) == 0)
            return 1;
    return 0;
}

/* Appends "file:line: policy P names action A, which remediator.yaml does not
 * define\n" to err for each unknown action of the `policies:` list; returns
 * how many. */
static size_t unknown_actions(const vigil_config_node *list, const names *defined, char *err,
                              size_t size)
{
    size_t bad = 0;
    for (size_t i = 0; i < vigil_config_node_len(list); i++) {
        const vigil_config_node *p = vigil_config_node_at(list, i);
        const char *pname = vigil_config_node_scalar(vigil_config_node_get(p, "name"));
        const vigil_config_node *esc = vigil_config_node_get(p, "escalate");
        size_t nesc = vigil_config_node_len(esc);
        for (size_t k = 0; k <= nesc; k++) {
            const vigil_config_node *a =
                k == 0 ? vigil_config_node_get(p, "action") : vigil_config_node_at(esc, k - 1);
            const char *name = vigil_config_node_scalar(a);
            if (!a || !name || has_name(defined, name))
                continue;
            bad++;
            size_t used = strlen(err);
            snprintf(err + used, size - used,
                     "%s:%u: policy %s names action %s, which remediator.yaml does not define\n",
                     vigil_config_node_file(a), vigil_config_node_line(a), pname ? pname : "?",
                     name);
        }
    }
    return bad;
}

/* The names of the actions of the shipped remediator.yaml (borrowed from c). */
static void remediator_actions(const vigil_remediator_config *c, names *out)
{
    const vigil_config_node *acts = vigil_remediator_config_options(c)->actions;
    out->n = 0;
    for (size_t i = 0; i < vigil_config_node_len(acts) && out->n < NAMES_MAX; i++) {
        const char *n =
            vigil_config_node_scalar(vigil_config_node_get(vigil_config_node_at(acts, i), "name"));
        ck_assert_ptr_nonnull(n);
        out->v[out->n++] = n;
    }
}

static vigil_remediator_config *load_remediator(void)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/configs/remediator.yaml", vt_srcdir());
    vigil_remediator_config *c = NULL;
    int rc = vigil_remediator_config_load(&c, path, NULL);
    ck_assert_msg(rc == VIGIL_OK, "remediator.yaml: %s", vigil_error_last()->message);
    return c;
}

static vigil_hub_config *load_hub(void)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/configs/collector.yaml", vt_srcdir());
    vigil_hub_config *c = NULL;
    int rc = vigil_hub_config_load(&c, path, NULL);
    ck_assert_msg(rc == VIGIL_OK, "collector.yaml: %s", vigil_error_last()->message);
    return c;
}

static int yaml_name(const char *n)
{
    size_t l = strlen(n);
    return n[0] != '.' && ((l > 5 && strcmp(n + l - 5, ".yaml") == 0) ||
                           (l > 4 && strcmp(n + l - 4, ".yml") == 0));
}

START_TEST(policies_name_only_defined_actions)
{
    set_env();
    vigil_remediator_config *rc_cfg = load_remediator();
    vigil_hub_config *hc = load_hub();
    names defined;
    remediator_actions(rc_cfg, &defined);
    ck_assert_uint_ge(defined.n, 1);
    char err[8192] = "";
    size_t bad = unknown_actions(vigil_hub_config_hub(hc)->policies, &defined, err, sizeof(err));
    ck_assert_uint_ge(vigil_config_node_len(vigil_hub_config_hub(hc)->policies), 1);

    /* every policy file of configs/policies */
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/configs/policies", vt_srcdir());
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    size_t files = 0, listed = 0;
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL) {
        if (!yaml_name(ent->d_name))
            continue;
        char path[PATH_MAX + 256];
        snprintf(path, sizeof(path), "%s/%s", dir, ent->d_name);
        vigil_config *c = NULL;
        int rc = vigil_config_load_file(&c, path, NULL);
        ck_assert_msg(rc == VIGIL_OK, "%s: %s", path, vigil_error_last()->message);
        const vigil_config_node *list = vigil_config_node_get(vigil_config_root(c, 0), "policies");
        listed += vigil_config_node_len(list);
        bad += unknown_actions(list, &defined, err, sizeof(err));
        vigil_config_free(c);
        files++;
    }
    closedir(d);
    ck_assert_uint_ge(files, 1);
    ck_assert_msg(bad == 0, "%s", err);

    /* the inline policies and the directory load together, as one set */
    char url[PATH_MAX + 32];
    snprintf(url, sizeof(url), "sqlite://%s/configs.db", vt_tmpdir());
    vigil_store *st = NULL;
    ck_assert_int_eq(vigil_store_open(&st, url, NULL), VIGIL_OK);
    vigil_engine_options eo = VIGIL_ENGINE_OPTIONS_INIT;
    eo.store = st;
    eo.logger.min_level = VIGIL_LOG_OFF;
    vigil_engine *e = NULL;
    ck_assert_int_eq(vigil_engine_new(&e, &eo), VIGIL_OK);
    vigil_engine_reload_result r = VIGIL_ENGINE_RELOAD_RESULT_INIT;
    int rc = vigil_engine_replace(e, vigil_hub_config_hub(hc)->policies, dir, NULL, &r);
    ck_assert_msg(rc == VIGIL_OK, "policies together: %s", vigil_error_last()->message);
    ck_assert_uint_eq(r.added, vigil_config_node_len(vigil_hub_config_hub(hc)->policies) + listed);
    vigil_engine_free(e);
    vigil_store_close(st);
    vigil_hub_config_free(hc);
    vigil_remediator_config_free(rc_cfg);
}
END_TEST

/* The check itself: a policy naming an action the remediator lacks fails it,
 * with the file, line, policy and action. */
START_TEST(unknown_action_is_reported)
{
    set_env();
    vigil_remediator_config *rc_cfg = load_remediator();
    names defined;
    remediator_actions(rc_cfg, &defined);
    const char *yaml = "policies:\n"
                       "  - {name: ok, kind: absent, metric: m, for: 1m, action: restart_demo,\n"
                       "     escalate: [page_oncall]}\n"
                       "  - {name: typo, kind: absent, metric: m, for: 1m, action: scale_down}\n"
                       "  - {name: esc, kind: absent, metric: m, for: 1m, action: note,\n"
                       "     escalate: [page_oncall, call_cto]}\n";
    vigil_config *c = NULL;
    ck_assert_int_eq(vigil_config_load_string(&c, yaml, strlen(yaml), "p.yaml", NULL), VIGIL_OK);
    char err[1024] = "";
    size_t bad = unknown_actions(vigil_config_node_get(vigil_config_root(c, 0), "policies"),
                                 &defined, err, sizeof(err));
    ck_assert_uint_eq(bad, 2);
    ck_assert_str_eq(err, "p.yaml:4: policy typo names action scale_down, which remediator.yaml "
                          "does not define\n"
                          "p.yaml:6: policy esc names action call_cto, which remediator.yaml does "
                          "not define\n");
    vigil_config_free(c);
    vigil_remediator_config_free(rc_cfg);
}
END_TEST

/* The addresses, tokens and the secret the daemons share match. */
START_TEST(daemons_point_at_each_other)
{
    set_env();
    vigil_remediator_config *rc_cfg = load_remediator();
    vigil_hub_config *hc = load_hub();
    const vigil_remediator_options *ro = vigil_remediator_config_options(rc_cfg);
    const vigil_hub_options *ho = vigil_hub_config_hub(hc);
    char url[300];
    snprintf(url, sizeof(url), "http://%s", vigil_remediator_config_httpd(rc_cfg)->listen);
    ck_assert_str_eq(ho->remediator_url, url);
    ck_assert_str_eq(ho->remediator_secret_env, ro->secret_env);
    snprintf(url, sizeof(url), "http://%s", vigil_hub_config_httpd(hc)->listen);
    ck_assert_str_eq(ro->hub_url, url);

    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/configs/agent.yaml", vt_srcdir());
    vigil_config *ac = NULL;
    ck_assert_int_eq(vigil_config_load_file(&ac, path, NULL), VIGIL_OK);
    const vigil_config_node *hub = vigil_config_node_get(vigil_config_root(ac, 0), "hub");
    const vigil_config_node *urls = vigil_config_node_get(hub, "urls");
    ck_assert_uint_eq(vigil_config_node_len(urls), 1);
    ck_assert_str_eq(vigil_config_node_scalar(vigil_config_node_at(urls, 0)), url);
    ck_assert_str_eq(vigil_config_node_scalar(vigil_config_node_get(hub, "token_env")),
                     "VIGIL_INGEST_TOKEN");
    int rc = vigil_agent_check_config(ac, NULL);
    ck_assert_msg(rc == VIGIL_OK, "agent.yaml: %s", vigil_error_last()->message);
    vigil_config_free(ac);
    vigil_hub_config_free(hc);
    vigil_remediator_config_free(rc_cfg);
}
END_TEST

static Suite *configs_suite(void)
{
    Suite *s = suite_create("configs");
    TCase *tc = tcase_create("shipped");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, policies_name_only_defined_actions);
    tcase_add_test(tc, unknown_action_is_reported);
    tcase_add_test(tc, daemons_point_at_each_other);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(configs_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
