/*
 * A string-keyed hash map for the policy engine: open addressing, linear
 * probing, backward-shift deletion, at most half full. Keys are borrowed from
 * the values they index.
 */
#include "core/hash.h"
#include "policy/policy_int.h"

#include <string.h>

void *vigil__pmap_get(const vigil__pmap *m, const char *key)
{
    if (!m->cap)
        return NULL;
    uint64_t h = vigil__hash_str(key);
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        const vigil__pmap_ent *e = &m->e[i];
        if (!e->key)
            return NULL;
        if (e->hash == h && strcmp(e->key, key) == 0)
            return e->val;
    }
}

static void place(vigil__pmap_ent *slots, size_t cap, const vigil__pmap_ent *ent)
{
    size_t mask = cap - 1;
    size_t i = (size_t)ent->hash & mask;
    while (slots[i].key)
        i = (i + 1) & mask;
    slots[i] = *ent;
}

int vigil__pmap_put(vigil__pmap *m, const char *key, void *val)
{
    uint64_t h = vigil__hash_str(key);
    if (m->cap) {
        size_t mask = m->cap - 1;
        for (size_t i = (size_t)h & mask; m->e[i].key; i = (i + 1) & mask) {
            if (m->e[i].hash == h && strcmp(m->e[i].key, key) == 0) {
                m->e[i].key = key;
                m->e[i].val = val;
                return VIGIL_OK;
            }
        }
    }
    if ((m->n + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 16;
        vigil__pmap_ent *ns = vigil__calloc(ncap, sizeof(*ns));
        if (!ns)
            return vigil__error_oom();
        for (size_t i = 0; i < m->cap; i++)
            if (m->e[i].key)
                place(ns, ncap, &m->e[i]);
        vigil__free(m->e);
        m->e = ns;
        m->cap = ncap;
    }
    vigil__pmap_ent ent = {key, h, val};
    place(m->e, m->cap, &ent);
    m->n++;
    return VIGIL_OK;
}

void *vigil__pmap_del(vigil__pmap *m, const char *key)
{
    if (!m->cap)
        return NULL;
    uint64_t h = vigil__hash_str(key);
    size_t mask = m->cap - 1;
    size_t i = (size_t)h & mask;
    for (;; i = (i + 1) & mask) {
        if (!m->e[i].key)
            return NULL;
        if (m->e[i].hash == h && strcmp(m->e[i].key, key) == 0)
            break;
    }
    void *val = m->e[i].val;
    m->e[i].key = NULL;
    m->n--;
    for (size_t j = (i + 1) & mask; m->e[j].key; j = (j + 1) & mask) {
        size_t k = (size_t)m->e[j].hash & mask;
        /* move entry j back to the hole at i unless its home lies in (i, j] */
        int stay = (i <= j) ? (i < k && k <= j) : (i < k || k <= j);
        if (!stay) {
            m->e[i] = m->e[j];
            m->e[j].key = NULL;
            i = j;
        }
    }
    return val;
}

void vigil__pmap_dispose(vigil__pmap *m)
{
    vigil__free(m->e);
    m->e = NULL;
    m->cap = m->n = 0;
}
