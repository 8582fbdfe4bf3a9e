/*
 * The policy engine's rule index: rules by metric name, then by the value of
 * their first exact tag matcher; rules without one are kept apart.
 */
#include "policy/policy_int.h"

#include <string.h>

int vigil__policy_vec_push(pol_vec *v, pol_rule *r)
{
    if (v->n == v->cap && vigil__array_grow((void **)&v->v, &v->cap, v->n + 1, sizeof(*v->v)) < 0)
        return VIGIL_ENOMEM;
    v->v[v->n++] = r;
    return VIGIL_OK;
}

static void vec_remove(pol_vec *v, const pol_rule *r)
{
    for (size_t i = 0; i < v->n; i++)
        if (v->v[i] == r) {
            memmove(&v->v[i], &v->v[i + 1], (v->n - i - 1) * sizeof(*v->v));
            v->n--;
            return;
        }
}

/* ---- index ----------------------------------------------------------------------- */

static pol_bucket *bucket_get(vigil_engine *e, const char *metric)
{
    pol_bucket *b = vigil__pmap_get(&e->by_metric, metric);
    if (b)
        return b;
    b = vigil__calloc(1, sizeof(*b));
    if (!b || !(b->metric = vigil__strdup(metric)) ||
        vigil__pmap_put(&e->by_metric, b->metric, b) < 0) {
        if (b)
            vigil__free(b->metric);
        vigil__free(b);
        vigil__error_oom();
        return NULL;
    }
    return b;
}

static const pol_matcher *exact_matcher(const pol_rule *r)
{
    for (size_t i = 0; i < r->nmatch; i++)
        if (!r->match[i].glob)
            return &r->match[i];
    return NULL;
}

int vigil__policy_index_add(vigil_engine *e, pol_rule *r)
{
    pol_bucket *b = bucket_get(e, r->metric);
    if (!b)
        return VIGIL_ENOMEM;
    const pol_matcher *pm = exact_matcher(r);
    if (!pm)
        return vigil__policy_vec_push(&b->rest, r) < 0 ? vigil__error_oom() : VIGIL_OK;
    pol_index *ix = NULL;
    for (size_t i = 0; i < b->nidx && !ix; i++)
        if (strcmp(b->idx[i].key, pm->key) == 0)
            ix = &b->idx[i];
    if (!ix) {
        pol_index *ni = vigil__realloc(b->idx, (b->nidx + 1) * sizeof(*ni));
        if (!ni)
            return vigil__error_oom();
        b->idx = ni;
        ix = &b->idx[b->nidx];
        memset(ix, 0, sizeof(*ix));
        if (!(ix->key = vigil__strdup(pm->key)))
            return vigil__error_oom();
        b->nidx++;
    }
    pol_vec *l = vigil__pmap_get(&ix->values, pm->value);
    if (!l) {
        l = vigil__calloc(1, sizeof(*l));
        if (!l)
            return vigil__error_oom();
        /* the key is the value string of the first rule; copy so it outlives rules */
        char *k = vigil__strdup(pm->value);
        if (!k || vigil__pmap_put(&ix->values, k, l) < 0) {
            vigil__free(k);
            vigil__free(l);
            return vigil__error_oom();
        }
    }
    return vigil__policy_vec_push(l, r) < 0 ? vigil__error_oom() : VIGIL_OK;
}

void vigil__policy_index_remove(vigil_engine *e, pol_rule *r)
{
    pol_bucket *b = vigil__pmap_get(&e->by_metric, r->metric);
    if (!b)
        return;
    const pol_matcher *pm = exact_matcher(r);
    if (!pm) {
        vec_remove(&b->rest, r);
        return;
    }
    for (size_t i = 0; i < b->nidx; i++)
        if (strcmp(b->idx[i].key, pm->key) == 0) {
            pol_vec *l = vigil__pmap_get(&b->idx[i].values, pm->value);
            if (l)
                vec_remove(l, r);
        }
}

static void bucket_free(pol_bucket *b)
{
    for (size_t i = 0; i < b->nidx; i++) {
        pol_index *ix = &b->idx[i];
        for (size_t j = 0; j < ix->values.cap; j++)
            if (ix->values.e[j].key) {
                pol_vec *l = ix->values.e[j].val;
                vigil__free((char *)ix->values.e[j].key);
                vigil__free(l->v);
                vigil__free(l);
            }
        vigil__pmap_dispose(&ix->values);
        vigil__free(ix->key);
    }
    vigil__free(b->idx);
    vigil__free(b->rest.v);
    vigil__free(b->metric);
    vigil__free(b);
}

void vigil__policy_buckets_free(vigil__pmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->e[i].key)
            bucket_free(m->e[i].val);
    vigil__pmap_dispose(m);
}
