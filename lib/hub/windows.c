/*
 * The hub's windows, only where a policy looks: a series gets an in-memory
 * window when a loaded rule needs its history (vigil_engine_watch()), sized
 * to that history. The answerer caches the decision per series key, so a
 * sample of an unwatched series costs one hash lookup; a change of the rule
 * set (vigil_engine_generation()) is applied by a sync that frees the windows
 * no rule needs any more, resizes the others and rebuilds from the store the
 * windows of series a rule now needs more history of.
 */
#include "core/hash.h"
#include "hub/hub_int.h"
#include "window/window_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Decisions cached at most (about 100 bytes each with a 60-byte key): past
 * it the cache starts over, so that series that stopped reporting leave it. */
#define CACHE_MAX 1000000
/* A refused series is logged at most this often (with the count since). */
#define REFUSED_LOG_MS (60 * 1000)

/* One series' decision, or one series' need in a sync. */
typedef struct wc_ent {
    uint64_t gen; /* hub->watch_gen when decided */
    int64_t span; /* history needed, ms; 0: unwatched */
    int refused;  /* watched but past max_series: no window */
    size_t item;  /* sync: index of its rebuild item + 1, 0: none */
    uint64_t hash;
    size_t len;
    char key[];
} wc_ent;

struct vigil__hub_wcache {
    wc_ent **slots; /* cap slots, a power of two, at most half full */
    size_t cap;
    size_t n;
};

static size_t wc_slot(const vigil__hub_wcache *c, const char *key, size_t len, uint64_t h)
{
    size_t mask = c->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        const wc_ent *e = c->slots[i];
        if (!e || (e->hash == h && e->len == len && memcmp(e->key, key, len) == 0))
            return i;
    }
}

static wc_ent *wc_get(const vigil__hub_wcache *c, const char *key, size_t len, uint64_t h)
{
    return c->cap ? c->slots[wc_slot(c, key, len, h)] : NULL;
}

/* Adds a new entry (the key must not be in the table); NULL when out of memory. */
static wc_ent *wc_add(vigil__hub_wcache *c, const char *key, size_t len, uint64_t h)
{
    if ((c->n + 1) * 2 > c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 256;
        wc_ent **ns = vigil__calloc(ncap, sizeof(*ns));
        if (!ns)
            return NULL;
        for (size_t i = 0; i < c->cap; i++) {
            wc_ent *e = c->slots[i];
            if (!e)
                continue;
            size_t j = (size_t)e->hash & (ncap - 1);
            while (ns[j])
                j = (j + 1) & (ncap - 1);
            ns[j] = e;
        }
        vigil__free(c->slots);
        c->slots = ns;
        c->cap = ncap;
    }
    wc_ent *e = vigil__calloc(1, sizeof(*e) + len + 1);
    if (!e)
        return NULL;
    e->hash = h;
    e->len = len;
    memcpy(e->key, key, len);
    c->slots[wc_slot(c, key, len, h)] = e;
    c->n++;
    return e;
}

static void wc_clear(vigil__hub_wcache *c)
{
    for (size_t i = 0; i < c->cap; i++)
        vigil__free(c->slots[i]);
    vigil__free(c->slots);
    c->slots = NULL;
    c->cap = c->n = 0;
}

int vigil__hub_windows_init(vigil_hub *hub)
{
    hub->wcache = vigil__calloc(1, sizeof(*hub->wcache));
    return hub->wcache ? VIGIL_OK : vigil__error_oom();
}

void vigil__hub_windows_free(vigil_hub *hub)
{
    if (hub->wcache)
        wc_clear(hub->wcache);
    vigil__free(hub->wcache);
    hub->wcache = NULL;
    vigil_buf_dispose(&hub->wkey);
}

/* The history a window keeps for a need: at most windows.max_age. */
static int64_t clamp_span(const vigil_hub *hub, int64_t need)
{
    int64_t cap = vigil__window_set_max_age(hub->windows);
    return need > cap ? cap : need;
}

/* Counts and logs (at most once a minute, with the count since) a series
 * refused by the windows' max_series. Called with win_mu held. */
static void note_refused(vigil_hub *hub, const char *key)
{
    hub->win_refused_total++;
    vigil__prom_add(hub->m_win_refused_series, NULL, 1);
    int64_t now = vigil__monotonic_ns() / 1000000;
    hub->win_refused_unlogged++;
    if (hub->win_refused_logged && now - hub->win_refused_logged < REFUSED_LOG_MS)
        return;
    vigil_buf v = VIGIL_BUF_INIT;
    if (vigil__logfmt_value(&v, key) == VIGIL_OK)
        vigil__log(&hub->logger, VIGIL_LOG_WARN, "hub",
                   "series watched by a policy get no window: windows.max_series reached",
                   "max_series=%zu refused=%zu series=%s",
                   vigil__window_set_max_series(hub->windows), hub->win_refused_unlogged, v.ptr);
    vigil_buf_dispose(&v);
    hub->win_refused_logged = now;
    hub->win_refused_unlogged = 0;
}

/* Applies a decision to a series' window (win_mu held): opens, resizes or
 * frees it. Returns its window, or NULL (unwatched or refused). */
static vigil_window *apply(vigil_hub *hub, wc_ent *e)
{
    if (e->span <= 0) {
        if (vigil_window_set_get(hub->windows, e->key))
            vigil_window_set_remove(hub->windows, e->key);
        return NULL;
    }
    vigil_window *w = NULL;
    int created = 0;
    int rc = vigil__window_set_open(hub->windows, e->key, e->len, e->span, &w, &created);
    if (rc) {
        if (!e->refused) {
            e->refused = 1;
            hub->win_refused++;
            note_refused(hub, e->key);
        }
        return NULL;
    }
    if (e->refused) {
        e->refused = 0;
        hub->win_refused--;
    }
    if (!created && w->max_age != e->span)
        vigil__window_set_age(w, e->span);
    return w;
}

/* The decision for the series of m (key in hub->wkey), asking the engine
 * when none is cached for this generation. Called with win_mu held, which it
 * releases while the engine answers. NULL when it cannot decide (counted by
 * the caller as a sample no window took). */
static wc_ent *decide(vigil_hub *hub, const vigil_metric *m, uint64_t h, int *fresh)
{
    vigil__hub_wcache *c = hub->wcache;
    wc_ent *e = wc_get(c, hub->wkey.ptr, hub->wkey.size, h);
    *fresh = 0;
    if (e && e->gen == hub->watch_gen)
        return e;
    *fresh = 1;
    uint64_t gen = hub->watch_gen;
    int64_t need = 0;
    pthread_mutex_unlock(&hub->win_mu);
    int rc = vigil_engine_watch(hub->engine, m, &need);
    pthread_mutex_lock(&hub->win_mu);
    if (rc)
        return NULL;
    if (!e) {
        if (c->n >= CACHE_MAX) {
            wc_clear(c); /* the windows stay; their series decide again */
            hub->win_unwatched = hub->win_refused = 0;
        }
        if (!(e = wc_add(c, hub->wkey.ptr, hub->wkey.size, h)))
            return NULL;
        e->span = -1; /* not counted yet */
    }
    int64_t span = need > 0 ? clamp_span(hub, need) : 0;
    if (e->span == 0)
        hub->win_unwatched--;
    if (span == 0) {
        hub->win_unwatched++;
        if (e->refused) {
            e->refused = 0;
            hub->win_refused--;
        }
    }
    e->span = span;
    e->gen = gen;
    return e;
}

void vigil__hub_windows_append(vigil_hub *hub, const vigil_batch *batch, size_t first, size_t count,
                               size_t *refused, int *first_rc, char *first_msg, size_t msg_size)
{
    size_t n = vigil_batch_count(batch);
    for (size_t i = first; i < first + count && i < n; i++) {
        const vigil_metric *m = vigil_batch_get(batch, i);
        if (m->error)
            continue;
        int rc = vigil_metric_series_key(&hub->wkey, m);
        wc_ent *e = NULL;
        vigil_window *w = NULL;
        int fresh = 0;
        if (!rc && hub->wkey.size) {
            e = decide(hub, m, vigil__hash_bytes(hub->wkey.ptr, hub->wkey.size), &fresh);
            if (!e)
                rc = vigil_error_last()->code ? vigil_error_last()->code : VIGIL_ENOMEM;
        }
        /* a watched series opens its window (it may have expired); a new
         * decision also frees the window of a series no rule needs now */
        if (e && (e->span > 0 || fresh)) {
            w = apply(hub, e);
            if (!w && e->span > 0)
                rc = VIGIL_ELIMIT;
        }
        if (w)
            rc = vigil_window_append(w, m->ts_ms, m->value);
        /* Out-of-order samples (a spool replay) are stored but do not
         * rewrite a window's history. */
        if (rc && rc != VIGIL_ERANGE && !(*refused)++) {
            *first_rc = rc;
            snprintf(first_msg, msg_size, "%s",
                     rc == VIGIL_ELIMIT && e ? "series past windows.max_series"
                                             : vigil_error_last()->message);
        }
    }
}

/* ---- sync and rebuild ---------------------------------------------------------- */

typedef struct rb_item {
    char *key; /* owned */
    char *name;
    int64_t span;
    vigil_window *w; /* the history read from the store, or NULL */
} rb_item;

typedef struct sync_ctx {
    vigil_hub *hub;
    vigil__hub_wcache needs; /* key -> span (> 0) of every watched stored series */
    vigil__hub_wcache *only; /* the keys asked for, or NULL: every series */
    rb_item *items;
    size_t nitems, capitems;
    int copy; /* list_cb copies the series (the query connection is the store) */
    struct copied **copied;
    size_t ncopied, capcopied;
    int rc;
} sync_ctx;

/* The need of one stored series (no store call of the hub in progress on
 * the engine's store: see list_cb). */
static int note_need(sync_ctx *x, const char *key, const char *name, const vigil_tag *tags,
                     size_t ntags)
{
    size_t len = strlen(key);
    uint64_t h = vigil__hash_bytes(key, len);
    if (x->only && !wc_get(x->only, key, len, h))
        return 0;
    vigil_metric m;
    memset(&m, 0, sizeof(m));
    m.name = name;
    m.tags = tags;
    m.ntags = ntags;
    int64_t need = 0;
    int rc = vigil_engine_watch(x->hub->engine, &m, &need);
    if (rc)
        return x->rc = rc;
    if (need <= 0)
        return 0;
    wc_ent *e = wc_get(&x->needs, key, len, h);
    if (!e && !(e = wc_add(&x->needs, key, len, h)))
        return x->rc = vigil__error_oom();
    e->span = clamp_span(x->hub, need);
    return 0;
}

/* A stored series copied out of a listing: key, name, tags in one block. */
typedef struct copied {
    char *key;
    char *name;
    vigil_tag *tags;
    size_t ntags;
} copied;

static int list_cb(const vigil_store_series *s, void *payload)
{
    sync_ctx *x = payload;
    /* The engine writes its state to the hub's store with its lock held:
     * when the query connection is that store (":memory:"), asking the
     * engine inside this callback could deadlock, so the series are copied
     * and asked after the listing. */
    if (!x->copy)
        return note_need(x, s->key, s->name, s->tags, s->ntags);
    size_t sz =
        sizeof(copied) + s->ntags * sizeof(vigil_tag) + strlen(s->key) + 1 + strlen(s->name) + 1;
    for (size_t i = 0; i < s->ntags; i++)
        sz += strlen(s->tags[i].key) + strlen(s->tags[i].value) + 2;
    copied *c = vigil__malloc(sz);
    if (!c)
        return x->rc = vigil__error_oom();
    c->tags = (vigil_tag *)(void *)(c + 1);
    c->ntags = s->ntags;
    char *p = (char *)(c->tags + s->ntags);
    c->key = p;
    p = stpcpy(p, s->key) + 1;
    c->name = p;
    p = stpcpy(p, s->name) + 1;
    for (size_t i = 0; i < s->ntags; i++) {
        c->tags[i].key = p;
        p = stpcpy(p, s->tags[i].key) + 1;
        c->tags[i].value = p;
        p = stpcpy(p, s->tags[i].value) + 1;
    }
    if (x->ncopied == x->capcopied && vigil__array_grow((void **)&x->copied, &x->capcopied,
                                                        x->ncopied + 1, sizeof(*x->copied)) < 0) {
        vigil__free(c);
        return x->rc = VIGIL_ENOMEM;
    }
    x->copied[x->ncopied++] = c;
    return 0;
}

static int add_item(sync_ctx *x, wc_ent *e, const char *name)
{
    if (x->nitems == x->capitems &&
        vigil__array_grow((void **)&x->items, &x->capitems, x->nitems + 1, sizeof(*x->items)) < 0)
        return VIGIL_ENOMEM;
    rb_item *it = &x->items[x->nitems];
    memset(it, 0, sizeof(*it));
    it->key = vigil__strdup(e->key);
    if (!it->key)
        return vigil__error_oom();
    it->span = e->span;
    /* the metric name: the key starts with it, up to '{' or its end */
    size_t nl = strcspn(e->key, "{");
    it->name = vigil__malloc(nl + 1);
    if (!it->name) {
        vigil__free(it->key);
        return vigil__error_oom();
    }
    memcpy(it->name, name ? name : e->key, nl);
    it->name[nl] = '\0';
    e->item = ++x->nitems;
    return VIGIL_OK;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const rb_item *)a)->name, ((const rb_item *)b)->name);
}

typedef struct window_scan {
    sync_ctx *x;
    int force;
    char **drop;
    size_t ndrop, capdrop;
    int rc;
} window_scan;

/* For each window: freed when no rule needs it, resized, or marked for a
 * rebuild when a rule needs more history than it kept. */
static int scan_cb(const char *key, vigil_window *w, void *payload)
{
    window_scan *s = payload;
    sync_ctx *x = s->x;
    size_t len = strlen(key);
    uint64_t h = vigil__hash_bytes(key, len);
    if (x->only && !wc_get(x->only, key, len, h))
        return 0;
    wc_ent *e = wc_get(&x->needs, key, len, h);
    if (!e) {
        if (x->only)
            return 0; /* asked for but not watched: left to the answerer */
        if (s->ndrop == s->capdrop &&
            vigil__array_grow((void **)&s->drop, &s->capdrop, s->ndrop + 1, sizeof(*s->drop)) < 0)
            return s->rc = VIGIL_ENOMEM;
        if (!(s->drop[s->ndrop] = vigil__strdup(key)))
            return s->rc = vigil__error_oom();
        s->ndrop++;
        return 0;
    }
    e->gen = 1; /* has a window */
    if (s->force || e->span > w->max_age) {
        if (add_item(x, e, NULL))
            return s->rc = VIGIL_ENOMEM;
    } else if (e->span < w->max_age) {
        vigil__window_set_age(w, e->span);
    }
    return 0;
}

static int point_cb(const vigil_store_series *s, const vigil_store_point *p, void *payload)
{
    sync_ctx *x = payload;
    if (p->error)
        return 0;
    size_t len = strlen(s->key);
    wc_ent *e = wc_get(&x->needs, s->key, len, vigil__hash_bytes(s->key, len));
    if (!e || !e->item)
        return 0;
    rb_item *it = &x->items[e->item - 1];
    if (!it->w) {
        vigil_window_options o = VIGIL_WINDOW_OPTIONS_INIT;
        o.max_age_ms = it->span;
        o.max_samples = vigil__window_set_max_samples(x->hub->windows);
        int rc = vigil_window_new(&it->w, &o);
        if (rc)
            return x->rc = rc;
    }
    int rc = vigil_window_append(it->w, p->ts_ms, p->value);
    return rc && rc != VIGIL_ERANGE ? (x->rc = rc) : 0;
}

/* Reads the history of the items from the store, one query per metric name. */
static int read_history(sync_ctx *x, int64_t now)
{
    if (!x->nitems)
        return VIGIL_OK;
    qsort(x->items, x->nitems, sizeof(*x->items), by_name);
    /* the sort moved the items: index them again */
    for (size_t i = 0; i < x->nitems; i++) {
        size_t len = strlen(x->items[i].key);
        wc_ent *e =
            wc_get(&x->needs, x->items[i].key, len, vigil__hash_bytes(x->items[i].key, len));
        if (e)
            e->item = i + 1;
    }
    for (size_t i = 0; i < x->nitems;) {
        size_t j = i;
        int64_t span = 0;
        for (; j < x->nitems && strcmp(x->items[j].name, x->items[i].name) == 0; j++)
            if (x->items[j].span > span)
                span = x->items[j].span;
        vigil_store_query q = VIGIL_STORE_QUERY_INIT;
        q.name = x->items[i].name;
        q.from_ms = now - span > 0 ? now - span : 1;
        int rc = vigil_store_query_run(x->hub->reader, &q, point_cb, x);
        if (rc)
            return x->rc ? x->rc : rc;
        i = j;
    }
    return VIGIL_OK;
}

/* Installs the rebuilt windows: what the store held, then what the window
 * received since (win_mu held). Returns the series refused by max_series. */
static size_t install(sync_ctx *x)
{
    vigil_hub *hub = x->hub;
    size_t refused = 0;
    for (size_t i = 0; i < x->nitems; i++) {
        rb_item *it = &x->items[i];
        vigil_window *w = NULL;
        int created = 0;
        if (vigil__window_set_open(hub->windows, it->key, strlen(it->key), it->span, &w,
                                   &created)) {
            refused++;
            note_refused(hub, it->key);
            continue;
        }
        if (!it->w)
            continue; /* nothing stored in range: the window fills from now */
        if (!created && vigil__window_merge_newer(it->w, w) != VIGIL_OK)
            continue; /* out of memory: keeps what it had */
        vigil__window_swap(w, it->w);
        vigil__window_set_age(w, it->span);
    }
    return refused;
}

static void sync_dispose(sync_ctx *x)
{
    wc_clear(&x->needs);
    if (x->only)
        wc_clear(x->only);
    for (size_t i = 0; i < x->nitems; i++) {
        vigil__free(x->items[i].key);
        vigil__free(x->items[i].name);
        vigil_window_free(x->items[i].w);
    }
    vigil__free(x->items);
}

/* The decisions cached by the answerer, made again from the needs of the
 * new rule set (win_mu held), under a new generation. */
static void redecide(vigil_hub *hub, const sync_ctx *x)
{
    vigil__hub_wcache *c = hub->wcache;
    hub->watch_gen++;
    hub->win_unwatched = hub->win_refused = 0;
    for (size_t i = 0; i < c->cap; i++) {
        wc_ent *e = c->slots[i];
        if (!e)
            continue;
        const wc_ent *n = wc_get(&x->needs, e->key, e->len, e->hash);
        e->span = n ? n->span : 0;
        e->gen = hub->watch_gen;
        if (!e->span) {
            e->refused = 0;
            hub->win_unwatched++;
        } else if (e->refused) {
            hub->win_refused++;
        }
    }
}

/* The sync of vigil__hub_windows_sync() (only NULL, force 0) and of
 * vigil_hub_windows_rebuild() (force 1). Called with sync_mu held. */
static int sync_locked(vigil_hub *hub, vigil__hub_wcache *only, int force)
{
    int64_t t0 = vigil__monotonic_ns();
    uint64_t gen = vigil_engine_generation(hub->engine);
    sync_ctx x;
    memset(&x, 0, sizeof(x));
    x.hub = hub;
    x.only = only;
    x.copy = hub->reader == hub->store;
    int rc = vigil_store_series_list(hub->reader, NULL, list_cb, &x);
    if (rc && x.rc)
        rc = x.rc;
    for (size_t i = 0; i < x.ncopied; i++) {
        copied *c = x.copied[i];
        if (!rc)
            rc = note_need(&x, c->key, c->name, c->tags, c->ntags);
        vigil__free(c);
    }
    vigil__free(x.copied);
    x.copied = NULL;
    window_scan s;
    memset(&s, 0, sizeof(s));
    s.x = &x;
    s.force = force;
    size_t dropped = 0;
    if (!rc) {
        pthread_mutex_lock(&hub->win_mu);
        vigil_window_set_foreach(hub->windows, scan_cb, &s);
        rc = s.rc;
        for (size_t i = 0; i < s.ndrop; i++)
            if (vigil_window_set_remove(hub->windows, s.drop[i]) == VIGIL_OK)
                dropped++;
        if (!only)
            redecide(hub, &x);
        pthread_mutex_unlock(&hub->win_mu);
    }
    for (size_t i = 0; i < s.ndrop; i++)
        vigil__free(s.drop[i]);
    vigil__free(s.drop);
    /* watched series without a window get one, with their history */
    for (size_t i = 0; !rc && i < x.needs.cap; i++) {
        wc_ent *e = x.needs.slots[i];
        if (e && !e->gen && !e->item && add_item(&x, e, NULL))
            rc = VIGIL_ENOMEM;
    }
    int64_t now = vigil__hub_now(hub);
    if (!rc)
        rc = read_history(&x, now);
    size_t refused = 0;
    if (!rc) {
        pthread_mutex_lock(&hub->win_mu);
        refused = install(&x);
        pthread_mutex_unlock(&hub->win_mu);
        if (!only)
            hub->synced_gen = gen;
    }
    if (rc) {
        vigil_buf v = VIGIL_BUF_INIT;
        if (vigil__logfmt_value(&v, vigil_error_last()->message) == VIGIL_OK)
            vigil__log(&hub->logger, VIGIL_LOG_ERROR, "hub", "windows not rebuilt",
                       "code=%d error=%s", rc, v.ptr);
        vigil_buf_dispose(&v);
    } else {
        vigil__log(&hub->logger, VIGIL_LOG_INFO, "hub", "windows synced with the policies",
                   "watched=%zu rebuilt=%zu dropped=%zu refused=%zu ms=%lld", x.needs.n, x.nitems,
                   dropped, refused, (long long)((vigil__monotonic_ns() - t0) / 1000000));
    }
    sync_dispose(&x);
    return rc;
}

int vigil__hub_windows_sync(vigil_hub *hub)
{
    pthread_mutex_lock(&hub->sync_mu);
    int rc = VIGIL_OK;
    if (vigil_engine_generation(hub->engine) != hub->synced_gen)
        rc = sync_locked(hub, NULL, 0);
    pthread_mutex_unlock(&hub->sync_mu);
    return rc;
}

int vigil_hub_windows_rebuild(vigil_hub *hub, const char *const *series_keys, size_t n)
{
    if (!hub || (n && !series_keys))
        return vigil__error_set(VIGIL_EINVAL, "hub windows rebuild: NULL argument");
    if (n > VIGIL_HUB_REBUILD_KEYS_MAX)
        return vigil__error_set(VIGIL_ELIMIT, "hub windows rebuild: more than %d series keys",
                                VIGIL_HUB_REBUILD_KEYS_MAX);
    vigil__hub_wcache only = {NULL, 0, 0};
    for (size_t i = 0; i < n; i++) {
        if (!series_keys[i] || !*series_keys[i]) {
            wc_clear(&only);
            return vigil__error_set(VIGIL_EINVAL, "hub windows rebuild: series_keys[%zu] is %s", i,
                                    series_keys[i] ? "empty" : "NULL");
        }
        size_t len = strlen(series_keys[i]);
        uint64_t h = vigil__hash_bytes(series_keys[i], len);
        if (!wc_get(&only, series_keys[i], len, h) && !wc_add(&only, series_keys[i], len, h)) {
            wc_clear(&only);
            return vigil__error_oom();
        }
    }
    pthread_mutex_lock(&hub->sync_mu);
    int rc = sync_locked(hub, n ? &only : NULL, 1);
    pthread_mutex_unlock(&hub->sync_mu);
    wc_clear(&only);
    if (rc)
        vigil__error_prefix("hub windows rebuild");
    return rc;
}

size_t vigil__hub_windows_unwatched(vigil_hub *hub)
{
    pthread_mutex_lock(&hub->win_mu);
    size_t v = hub->win_unwatched;
    pthread_mutex_unlock(&hub->win_mu);
    return v;
}

size_t vigil__hub_windows_refused(vigil_hub *hub)
{
    pthread_mutex_lock(&hub->win_mu);
    size_t v = hub->win_refused;
    pthread_mutex_unlock(&hub->win_mu);
    return v;
}
