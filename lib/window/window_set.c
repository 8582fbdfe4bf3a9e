/*
 * Windows keyed by canonical series key: an open-addressing table (linear
 * probing, backward-shift deletion) of entries that each hold a window and its
 * key in one allocation, so a window's address never changes.
 */
#include "core/hash.h"
#include "internal/common.h"
#include "window/window_int.h"

#include <string.h>

#define KEY_MAX (64 * 1024)

typedef struct wentry {
    vigil_window w;
    uint64_t hash;
    size_t len;
    char key[];
} wentry;

struct vigil_window_set {
    wentry **slots; /* cap slots, a power of two, at most half full */
    size_t cap;
    size_t n;
    size_t max_series;
    vigil_window_options wopts;
    vigil_buf key; /* scratch for series keys */
};

int vigil_window_set_options_init(vigil_window_set_options *opts, unsigned int version)
{
    if (!opts)
        return vigil__error_set(VIGIL_EINVAL, "window set options: NULL");
    if (vigil__version_check("window set options", version, VIGIL_WINDOW_SET_OPTIONS_VERSION))
        return VIGIL_EVERSION;
    vigil_window_set_options d = VIGIL_WINDOW_SET_OPTIONS_INIT;
    *opts = d;
    return VIGIL_OK;
}

int vigil_window_set_new(vigil_window_set **out, const vigil_window_set_options *opts)
{
    if (!out)
        return vigil__error_set(VIGIL_EINVAL, "window set: NULL argument");
    *out = NULL;
    vigil_window_set_options o = VIGIL_WINDOW_SET_OPTIONS_INIT;
    if (opts) {
        if (vigil__version_check("window set options", opts->version,
                                 VIGIL_WINDOW_SET_OPTIONS_VERSION))
            return VIGIL_EVERSION;
        o = *opts;
    }
    if (o.window.version == 0) /* embedded: the layout of this options version */
        o.window.version = VIGIL_WINDOW_OPTIONS_VERSION;
    vigil_window_options wo;
    int rc = vigil__window_resolve(&wo, &o.window);
    if (rc)
        return rc;
    if (o.max_series == 0)
        o.max_series = VIGIL_WINDOW_DEFAULT_MAX_SERIES;
    if (o.max_series > ((size_t)1 << 30))
        return vigil__error_set(VIGIL_ELIMIT, "window set: max_series %zu is above 2^30",
                                o.max_series);
    vigil_window_set *set = vigil__calloc(1, sizeof(*set));
    if (!set)
        return vigil__error_oom();
    set->max_series = o.max_series;
    set->wopts = wo;
    *out = set;
    return VIGIL_OK;
}

void vigil_window_set_free(vigil_window_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->cap; i++) {
        if (set->slots[i]) {
            vigil__window_dispose(&set->slots[i]->w);
            vigil__free(set->slots[i]);
        }
    }
    vigil__free(set->slots);
    vigil_buf_dispose(&set->key);
    vigil__free(set);
}

/* Slot of `key`, or of the empty slot where it would go. */
static size_t find_slot(const vigil_window_set *set, const char *key, size_t len, uint64_t h)
{
    size_t mask = set->cap - 1;
    size_t i = (size_t)h & mask;
    for (;;) {
        const wentry *e = set->slots[i];
        if (!e || (e->hash == h && e->len == len && memcmp(e->key, key, len) == 0))
            return i;
        i = (i + 1) & mask;
    }
}

static int grow_table(vigil_window_set *set)
{
    size_t ncap = set->cap ? set->cap * 2 : 64;
    wentry **ns = vigil__calloc(ncap, sizeof(*ns));
    if (!ns)
        return vigil__error_oom();
    for (size_t i = 0; i < set->cap; i++) {
        wentry *e = set->slots[i];
        if (!e)
            continue;
        size_t j = (size_t)e->hash & (ncap - 1);
        while (ns[j])
            j = (j + 1) & (ncap - 1);
        ns[j] = e;
    }
    vigil__free(set->slots);
    set->slots = ns;
    set->cap = ncap;
    return VIGIL_OK;
}

static int check_key(const char *key, size_t *len)
{
    if (!key)
        return vigil__error_set(VIGIL_EINVAL, "window set: NULL series key");
    *len = strlen(key);
    if (*len == 0)
        return vigil__error_set(VIGIL_EINVAL, "window set: empty series key");
    if (*len > KEY_MAX)
        return vigil__error_set(VIGIL_EINVAL, "window set: series key is %zu bytes, longer than %d",
                                *len, KEY_MAX);
    return VIGIL_OK;
}

static int append_key(vigil_window_set *set, const char *key, size_t len, int64_t ts, double value,
                      vigil_window **window_out)
{
    uint64_t h = vigil__hash_bytes(key, len);
    size_t i = set->cap ? find_slot(set, key, len, h) : 0;
    wentry *e = set->cap ? set->slots[i] : NULL;
    if (e) {
        int rc = vigil_window_append(&e->w, ts, value);
        if (rc == VIGIL_OK && window_out)
            *window_out = &e->w;
        return rc;
    }
    if (set->n >= set->max_series)
        return vigil__error_set(VIGIL_ELIMIT,
                                "window set: the limit of %zu series is reached; series "
                                "%.200s is not tracked",
                                set->max_series, key);
    e = vigil__malloc(sizeof(*e) + len + 1);
    if (!e)
        return vigil__error_oom();
    vigil__window_init(&e->w, &set->wopts);
    int rc = vigil_window_append(&e->w, ts, value);
    if (rc) {
        vigil__window_dispose(&e->w);
        vigil__free(e);
        return rc;
    }
    if ((set->n + 1) * 2 > set->cap) {
        if ((rc = grow_table(set)) != 0) {
            vigil__window_dispose(&e->w);
            vigil__free(e);
            return rc;
        }
    }
    e->hash = h;
    e->len = len;
    memcpy(e->key, key, len + 1);
    set->slots[find_slot(set, key, len, h)] = e;
    set->n++;
    if (window_out)
        *window_out = &e->w;
    return VIGIL_OK;
}

int vigil_window_set_append(vigil_window_set *set, const char *series_key, int64_t ts_ms,
                            double value, vigil_window **window_out)
{
    if (window_out)
        *window_out = NULL;
    if (!set)
        return vigil__error_set(VIGIL_EINVAL, "window set: NULL argument");
    size_t len = 0;
    int rc = check_key(series_key, &len);
    if (rc)
        return rc;
    return append_key(set, series_key, len, ts_ms, value, window_out);
}

int vigil_window_set_append_metric(vigil_window_set *set, const vigil_metric *metric,
                                   vigil_window **window_out)
{
    if (window_out)
        *window_out = NULL;
    if (!set || !metric)
        return vigil__error_set(VIGIL_EINVAL, "window set: NULL argument");
    if (metric->error)
        return VIGIL_OK;
    int rc = vigil_metric_series_key(&set->key, metric);
    if (rc)
        return rc;
    if (set->key.size == 0 || set->key.size > KEY_MAX)
        return vigil__error_set(VIGIL_EINVAL, "window set: series key of %zu bytes", set->key.size);
    return append_key(set, set->key.ptr, set->key.size, metric->ts_ms, metric->value, window_out);
}

vigil_window *vigil_window_set_get(const vigil_window_set *set, const char *series_key)
{
    if (!set || !series_key || !set->n)
        return NULL;
    size_t len = strlen(series_key);
    wentry *e = set->slots[find_slot(set, series_key, len, vigil__hash_bytes(series_key, len))];
    return e ? &e->w : NULL;
}

/* Removes the entry in slot i, shifting later entries of its probe run back. */
static void remove_slot(vigil_window_set *set, size_t i)
{
    wentry *e = set->slots[i];
    vigil__window_dispose(&e->w);
    vigil__free(e);
    set->slots[i] = NULL;
    set->n--;
    size_t mask = set->cap - 1;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        wentry *x = set->slots[j];
        if (!x)
            return;
        size_t home = (size_t)x->hash & mask;
        /* x may move to i when i lies cyclically in [home, j). */
        int movable = (j > i) ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            set->slots[i] = x;
            set->slots[j] = NULL;
            i = j;
        }
    }
}

int vigil_window_set_remove(vigil_window_set *set, const char *series_key)
{
    if (!set || !series_key)
        return vigil__error_set(VIGIL_EINVAL, "window set: NULL argument");
    if (set->n) {
        size_t len = strlen(series_key);
        size_t i = find_slot(set, series_key, len, vigil__hash_bytes(series_key, len));
        if (set->slots[i]) {
            remove_slot(set, i);
            return VIGIL_OK;
        }
    }
    return vigil__error_set(VIGIL_ENOTFOUND, "window set: no window for series %.200s", series_key);
}

size_t vigil_window_set_count(const vigil_window_set *set)
{
    return set ? set->n : 0;
}

size_t vigil_window_set_expire(vigil_window_set *set, int64_t now_ms)
{
    if (!set)
        return 0;
    size_t removed = 0;
    for (size_t i = 0; i < set->cap;) {
        wentry *e = set->slots[i];
        if (e && vigil_window_expire(&e->w, now_ms) == 0) {
            remove_slot(set, i);
            removed++;
            continue; /* slot i may now hold a shifted entry */
        }
        i++;
    }
    return removed;
}

int vigil_window_set_foreach(const vigil_window_set *set, vigil_window_set_cb cb, void *payload)
{
    if (!set || !cb)
        return vigil__error_set(VIGIL_EINVAL, "window set: NULL argument");
    for (size_t i = 0; i < set->cap; i++) {
        wentry *e = set->slots[i];
        if (!e)
            continue;
        int rc = cb(e->key, &e->w, payload);
        if (rc)
            return rc;
    }
    return VIGIL_OK;
}

size_t vigil_window_set_memory(const vigil_window_set *set)
{
    if (!set)
        return 0;
    size_t total = sizeof(*set) + set->cap * sizeof(wentry *) + set->key.asize;
    for (size_t i = 0; i < set->cap; i++) {
        const wentry *e = set->slots[i];
        if (e)
            total += sizeof(*e) + e->len + 1 + e->w.cap * sizeof(vigil__wsample);
    }
    return total;
}

int vigil__window_set_open(vigil_window_set *set, const char *key, size_t len, int64_t max_age,
                           vigil_window **out, int *created)
{
    *out = NULL;
    *created = 0;
    uint64_t h = vigil__hash_bytes(key, len);
    if (set->cap) {
        wentry *e = set->slots[find_slot(set, key, len, h)];
        if (e) {
            *out = &e->w;
            return VIGIL_OK;
        }
    }
    if (set->n >= set->max_series)
        return vigil__error_set(VIGIL_ELIMIT,
                                "window set: the limit of %zu series is reached; series "
                                "%.200s gets no window",
                                set->max_series, key);
    if ((set->n + 1) * 2 > set->cap) {
        int rc = grow_table(set);
        if (rc)
            return rc;
    }
    wentry *e = vigil__malloc(sizeof(*e) + len + 1);
    if (!e)
        return vigil__error_oom();
    vigil_window_options o = set->wopts;
    o.max_age_ms = max_age;
    vigil__window_init(&e->w, &o);
    e->hash = h;
    e->len = len;
    memcpy(e->key, key, len);
    e->key[len] = '\0';
    set->slots[find_slot(set, key, len, h)] = e;
    set->n++;
    *out = &e->w;
    *created = 1;
    return VIGIL_OK;
}

size_t vigil__window_set_max_series(const vigil_window_set *set)
{
    return set->max_series;
}

size_t vigil__window_set_max_samples(const vigil_window_set *set)
{
    return set->wopts.max_samples;
}

int64_t vigil__window_set_max_age(const vigil_window_set *set)
{
    return set->wopts.max_age_ms;
}
