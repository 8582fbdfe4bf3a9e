/*
 * Loading and replacing the policy engine's rule set: policies from a config
 * node or a directory of files, committed to the index with their persisted
 * state, and the all-or-nothing swap of a reload.
 */
#include "policy/policy_int.h"
#include "policy/replace.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int vigil__policy_commit_rules(vigil_engine *e, pol_rule **rules, size_t n)
{
    int rc = VIGIL_OK;
    size_t done = 0;
    int64_t now = e->replaying ? e->replay_now : vigil__policy_now(e);
    if (e->nrules + n > e->caprules &&
        vigil__array_grow((void **)&e->rules, &e->caprules, e->nrules + n, sizeof(*e->rules)) < 0)
        return VIGIL_ENOMEM;
    for (; done < n; done++) {
        pol_rule *r = rules[done];
        r->order = e->nrules + done;
        if ((rc = vigil__pmap_put(&e->by_name, r->name, r)) < 0)
            break;
        if ((rc = vigil__policy_index_add(e, r)) < 0) {
            vigil__policy_index_remove(e, r);
            vigil__pmap_del(&e->by_name, r->name);
            break;
        }
        if ((rc = vigil__policy_restore_rule(e, r, now)) < 0) {
            vigil__policy_index_remove(e, r);
            vigil__pmap_del(&e->by_name, r->name);
            vigil__policy_rule_state_free(e, r);
            break;
        }
    }
    if (rc < 0) {
        while (done > 0) {
            pol_rule *r = rules[--done];
            vigil__policy_index_remove(e, r);
            vigil__pmap_del(&e->by_name, r->name);
            vigil__policy_rule_state_free(e, r);
        }
        return rc;
    }
    for (size_t i = 0; i < n; i++)
        e->rules[e->nrules++] = rules[i];
    e->stats.policies = e->nrules;
    if (n)
        e->generation++;
    return VIGIL_OK;
}

int vigil_engine_load(vigil_engine *e, const vigil_config_node *policies)
{
    if (!e)
        return vigil__error_set(VIGIL_EINVAL, "engine_load: NULL engine");
    pol_rule **rules = NULL;
    size_t n = 0;
    pthread_mutex_lock(&e->mu);
    int rc = vigil__policy_parse_rules(e, policies, 1, &rules, &n);
    if (rc >= 0 && n)
        rc = vigil__policy_commit_rules(e, rules, n);
    if (rc < 0)
        for (size_t i = 0; i < n; i++)
            vigil__policy_rule_free(rules[i]);
    pthread_mutex_unlock(&e->mu);
    vigil__free(rules);
    return rc;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int yaml_name(const char *n)
{
    size_t l = strlen(n);
    if (n[0] == '.')
        return 0;
    return (l > 5 && strcmp(n + l - 5, ".yaml") == 0) || (l > 4 && strcmp(n + l - 4, ".yml") == 0);
}

/* Parsed rules not yet committed, and their names (a duplicate is found in
 * constant time: a reload may hold many thousands of rules). */
typedef struct rule_list {
    pol_rule **v;
    size_t n, cap;
    vigil__pmap names;
} rule_list;

static void rule_list_dispose(rule_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        vigil__policy_rule_free(l->v[i]);
    vigil__free(l->v);
    vigil__pmap_dispose(&l->names);
    memset(l, 0, sizeof(*l));
}

/* Moves the n rules of @p rules (an array it frees) to the end of @p all,
 * refusing a name already in @p all at the rule's file:line. On failure the
 * rules not moved are freed. */
static int rule_list_take(rule_list *all, pol_rule **rules, size_t n)
{
    int rc = VIGIL_OK;
    for (size_t j = 0; j < n; j++) {
        if (vigil__pmap_get(&all->names, rules[j]->name))
            rc = vigil__error_set_at(VIGIL_EEXISTS, rules[j]->file, rules[j]->line, 1,
                                     "a policy named \"%s\" already exists", rules[j]->name);
        if (rc >= 0 && all->n + 1 > VIGIL_POLICY_MAX_RULES)
            rc = vigil__error_set_at(VIGIL_ELIMIT, rules[j]->file, rules[j]->line, 1,
                                     "more than %d policies", VIGIL_POLICY_MAX_RULES);
        if (rc >= 0 && all->n == all->cap &&
            vigil__array_grow((void **)&all->v, &all->cap, all->n + 1, sizeof(*all->v)) < 0)
            rc = VIGIL_ENOMEM;
        if (rc < 0) {
            for (size_t k = j; k < n; k++)
                vigil__policy_rule_free(rules[k]);
            break;
        }
        if (vigil__pmap_put(&all->names, rules[j]->name, rules[j]) < 0) {
            rc = VIGIL_ENOMEM;
            for (size_t k = j; k < n; k++)
                vigil__policy_rule_free(rules[k]);
            break;
        }
        all->v[all->n++] = rules[j];
    }
    vigil__free(rules);
    return rc;
}

/* Parses every policy file of @p dir, in name order, appending to @p all.
 * Called with the lock held. */
static int collect_dir(vigil_engine *e, const char *dir, const vigil_config_options *copts,
                       int check_loaded, rule_list *all)
{
    DIR *d = opendir(dir);
    if (!d)
        return vigil__error_set(VIGIL_EIO, "%s: cannot open policies directory: %s", dir,
                                strerror(errno));
    char **names = NULL;
    size_t nn = 0, cap = 0;
    int rc = VIGIL_OK;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!yaml_name(de->d_name))
            continue;
        if (nn >= 10000) {
            rc = vigil__error_set(VIGIL_ELIMIT, "%s: more than 10000 policy files", dir);
            break;
        }
        if (nn == cap && vigil__array_grow((void **)&names, &cap, nn + 1, sizeof(char *)) < 0) {
            rc = VIGIL_ENOMEM;
            break;
        }
        if (!(names[nn] = vigil__strdup(de->d_name))) {
            rc = vigil__error_oom();
            break;
        }
        nn++;
    }
    closedir(d);
    if (nn > 1)
        qsort(names, nn, sizeof(char *), name_cmp);
    vigil_config **cfgs = nn ? vigil__calloc(nn, sizeof(*cfgs)) : NULL;
    if (nn && !cfgs && rc >= 0)
        rc = vigil__error_oom();
    vigil_buf path = VIGIL_BUF_INIT;
    static const char *const top_keys[] = {"policies", NULL};
    for (size_t i = 0; i < nn && rc >= 0; i++) {
        vigil__buf_clear(&path);
        if ((rc = vigil__buf_printf(&path, "%s/%s", dir, names[i])) < 0)
            break;
        if ((rc = vigil_config_load_file(&cfgs[i], path.ptr, copts)) < 0)
            break;
        for (size_t doc = 0; doc < vigil_config_document_count(cfgs[i]) && rc >= 0; doc++) {
            const vigil_config_node *root = vigil_config_root(cfgs[i], doc);
            if (vigil_config_node_kind(root) == VIGIL_CONFIG_NULL)
                continue;
            if ((rc = vigil_config_map(root)) < 0 ||
                (rc = vigil_config_expect_keys(root, top_keys)) < 0)
                break;
            pol_rule **rules = NULL;
            size_t n = 0;
            if ((rc = vigil__policy_parse_rules(e, vigil_config_node_get(root, "policies"),
                                                check_loaded, &rules, &n)) < 0)
                break;
            rc = rule_list_take(all, rules, n);
        }
    }
    for (size_t i = 0; i < nn; i++) {
        if (cfgs)
            vigil_config_free(cfgs[i]);
        vigil__free(names[i]);
    }
    vigil__free(cfgs);
    vigil__free(names);
    vigil_buf_dispose(&path);
    return rc;
}

int vigil_engine_load_dir(vigil_engine *e, const char *dir, const vigil_config_options *copts)
{
    if (!e || !dir)
        return vigil__error_set(VIGIL_EINVAL, "engine_load_dir: NULL argument");
    rule_list all = {NULL, 0, 0, {NULL, 0, 0}};
    pthread_mutex_lock(&e->mu);
    int rc = collect_dir(e, dir, copts, 1, &all);
    if (rc >= 0 && all.n)
        rc = vigil__policy_commit_rules(e, all.v, all.n);
    if (rc < 0)
        rule_list_dispose(&all);
    pthread_mutex_unlock(&e->mu);
    vigil__free(all.v);
    vigil__pmap_dispose(&all.names);
    return rc;
}

/* ---- replacing the rule set ------------------------------------------------------- */

/* Swaps the engine's rules for the parsed @p nr (all of them, or on failure
 * none: the engine is left as it was and nr stays the caller's). Called with
 * the lock held. */
static int replace_locked(vigil_engine *e, pol_rule **nr, size_t n, vigil_engine_reload_result *res)
{
    int64_t now = e->replaying ? e->replay_now : vigil__policy_now(e);
    pol_rule **next = vigil__calloc(n ? n : 1, sizeof(*next));
    unsigned char *kept = vigil__calloc(n ? n : 1, 1);
    vigil__pmap names = {NULL, 0, 0};
    vigil__pmap old_metric = e->by_metric;
    size_t added = 0, changed = 0;
    int rc = next && kept ? VIGIL_OK : vigil__error_oom();
    memset(&e->by_metric, 0, sizeof(e->by_metric));
    for (size_t i = 0; i < n && rc >= 0; i++) {
        pol_rule *old = vigil__pmap_get(&e->by_name, nr[i]->name);
        kept[i] = old && strcmp(old->def, nr[i]->def) == 0;
        next[i] = kept[i] ? old : nr[i];
        if (!kept[i]) {
            if (old)
                changed++;
            else
                added++;
        }
        if ((rc = vigil__pmap_put(&names, next[i]->name, next[i])) < 0)
            break;
        rc = vigil__policy_index_add(e, next[i]);
    }
    /* rules new by name restore what a previous run persisted; a changed
     * rule starts fresh (its old state is deleted below) */
    for (size_t i = 0; i < n && rc >= 0; i++)
        if (!kept[i] && !vigil__pmap_get(&e->by_name, nr[i]->name))
            rc = vigil__policy_restore_rule(e, nr[i], now);
    if (rc < 0) {
        for (size_t i = 0; i < n && kept; i++)
            if (!kept[i])
                vigil__policy_rule_state_free(e, nr[i]);
        vigil__policy_buckets_free(&e->by_metric);
        e->by_metric = old_metric;
        vigil__pmap_dispose(&names);
        vigil__free(next);
        vigil__free(kept);
        return rc;
    }
    /* committed from here on: nothing below fails */
    size_t removed = 0;
    for (size_t i = 0; i < e->nrules; i++) {
        pol_rule *old = e->rules[i];
        if (vigil__pmap_get(&names, old->name) == old)
            continue;
        if (!vigil__pmap_get(&names, old->name))
            removed++;
        vigil__policy_unpersist_rule(e, old->name);
        vigil__policy_rule_state_free(e, old);
        vigil__policy_rule_free(old);
    }
    for (size_t i = 0; i < n; i++) {
        if (kept[i]) {
            /* the rule may have moved: keep its state, take its new place */
            pol_rule *old = next[i];
            char *f = old->file;
            old->file = nr[i]->file;
            nr[i]->file = f;
            old->line = nr[i]->line;
            vigil__policy_rule_free(nr[i]);
        }
        next[i]->order = i;
    }
    vigil__policy_buckets_free(&old_metric);
    vigil__pmap_dispose(&e->by_name);
    e->by_name = names;
    vigil__free(e->rules);
    e->rules = next;
    e->nrules = e->caprules = n;
    if (!n) {
        vigil__free(e->rules);
        e->rules = NULL;
        e->caprules = 0;
    }
    e->stats.policies = n;
    e->generation++;
    vigil__free(kept);
    if (res) {
        res->added = added;
        res->changed = changed;
        res->removed = removed;
        res->kept = n - added - changed;
    }
    return VIGIL_OK;
}

int vigil__policy_replace_lists(vigil_engine *e, const vigil_config_node *const *lists,
                                size_t nlists, const char *dir, const vigil_config_options *copts,
                                vigil_engine_reload_result *result)
{
    if (!e || (nlists && !lists))
        return vigil__error_set(VIGIL_EINVAL, "engine_replace: NULL argument");
    if (result && vigil__version_check("engine replace result", result->version,
                                       VIGIL_ENGINE_RELOAD_RESULT_VERSION))
        return VIGIL_EVERSION;
    rule_list all = {NULL, 0, 0, {NULL, 0, 0}};
    int rc = VIGIL_OK;
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < nlists && rc >= 0; i++) {
        pol_rule **rules = NULL;
        size_t n = 0;
        rc = vigil__policy_parse_rules(e, lists[i], 0, &rules, &n);
        if (rc >= 0)
            rc = rule_list_take(&all, rules, n);
        /* the directory's files come right after the first list */
        if (rc >= 0 && i == 0 && dir && *dir)
            rc = collect_dir(e, dir, copts, 0, &all);
    }
    if (rc >= 0 && nlists == 0 && dir && *dir)
        rc = collect_dir(e, dir, copts, 0, &all);
    if (rc >= 0)
        rc = replace_locked(e, all.v, all.n, result);
    if (rc < 0)
        rule_list_dispose(&all);
    pthread_mutex_unlock(&e->mu);
    vigil__free(all.v);
    vigil__pmap_dispose(&all.names);
    return rc;
}

int vigil_engine_replace(vigil_engine *e, const vigil_config_node *policies, const char *dir,
                         const vigil_config_options *copts, vigil_engine_reload_result *result)
{
    if (!e)
        return vigil__error_set(VIGIL_EINVAL, "engine_replace: NULL engine");
    const vigil_config_node *lists[1] = {policies};
    return vigil__policy_replace_lists(e, lists, 1, dir, copts, result);
}
