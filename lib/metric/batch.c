/* vigil_batch: a growable array of metrics owning its strings in an arena. */
#include "metric/metric_int.h"

#include <math.h>

#define CHUNK_FIRST 4096
#define CHUNK_MAX   (1024 * 1024)

int vigil_batch_new(vigil_batch **out)
{
    if (!out)
        return vigil__error_set(VIGIL_EINVAL, "batch: out is NULL");
    *out = NULL;
    vigil_batch *b = vigil__calloc(1, sizeof(*b));
    if (!b)
        return vigil__error_oom();
    b->max_metrics = VIGIL_BATCH_DEFAULT_MAX_METRICS;
    b->next_chunk = CHUNK_FIRST;
    *out = b;
    return VIGIL_OK;
}

void vigil_batch_free(vigil_batch *b)
{
    if (!b)
        return;
    vigil__chunk *c = b->chunks;
    while (c) {
        vigil__chunk *next = c->next;
        vigil__free(c);
        c = next;
    }
    vigil__free(b->metrics);
    vigil__free(b->tags);
    vigil__free(b->agent);
    vigil__free(b->id);
    vigil__free(b);
}

void vigil_batch_clear(vigil_batch *b)
{
    if (!b)
        return;
    b->count = 0;
    b->ntags = 0;
    for (vigil__chunk *c = b->chunks; c; c = c->next)
        c->used = 0;
    b->cur = b->chunks;
    vigil__free(b->agent);
    vigil__free(b->id);
    b->agent = b->id = NULL;
}

char *vigil__batch_alloc_slow(vigil_batch *b, size_t n)
{
    vigil__chunk *c = b->cur;
    /* After a clear, the chunks after cur are empty: reuse the next one. */
    if (c && c->next && c->next->cap >= n) {
        b->cur = c->next;
        b->cur->used = n;
        return b->cur->data;
    }
    size_t cap = b->next_chunk;
    if (cap < n)
        cap = n;
    if (cap > SIZE_MAX - sizeof(vigil__chunk)) {
        vigil__error_oom();
        return NULL;
    }
    vigil__chunk *nc = vigil__malloc(sizeof(vigil__chunk) + cap);
    if (!nc) {
        vigil__error_oom();
        return NULL;
    }
    nc->cap = cap;
    nc->used = n;
    if (c) {
        nc->next = c->next;
        c->next = nc;
    } else {
        nc->next = b->chunks;
        b->chunks = nc;
    }
    b->cur = nc;
    if (b->next_chunk < CHUNK_MAX)
        b->next_chunk *= 2;
    return nc->data;
}

void vigil__batch_fix_tags(vigil_batch *b)
{
    size_t off = 0;
    for (size_t i = 0; i < b->count; i++) {
        vigil_metric *m = &b->metrics[i];
        m->tags = m->ntags ? b->tags + off : NULL;
        off += m->ntags;
    }
}

int vigil__batch_reserve_tags(vigil_batch *b, size_t more)
{
    if (more > SIZE_MAX - b->ntags)
        return vigil__error_oom();
    return vigil__array_grow((void **)&b->tags, &b->tags_cap, b->ntags + more, sizeof(vigil_tag));
}

/* Returns prev when it equals s (strings in a batch are immutable, so equal
 * neighbours share one copy), else a fresh copy of s[0..len). */
static const char *copy_or_share(vigil_batch *b, const char *prev, const char *s, size_t len)
{
    if (prev && strcmp(prev, s) == 0)
        return prev;
    return vigil__batch_strcopy(b, s, len);
}

/* Makes room for `more` metrics and `more_tags` tags; the tags array may
 * move (the metrics' tags are pointed into it again). */
static int reserve(vigil_batch *b, size_t more, size_t more_tags)
{
    int rc;
    if (b->cap - b->count < more &&
        (rc = vigil__array_grow((void **)&b->metrics, &b->cap, b->count + more,
                                sizeof(vigil_metric))) != VIGIL_OK)
        return rc;
    if (b->tags_cap - b->ntags < more_tags) {
        vigil_tag *old_tags = b->tags;
        if ((rc = vigil__batch_reserve_tags(b, more_tags)) != VIGIL_OK)
            return rc;
        if (b->tags != old_tags)
            vigil__batch_fix_tags(b);
    }
    return VIGIL_OK;
}

int vigil_batch_add(vigil_batch *b, const vigil_metric *m)
{
    vigil__metric_lens len;
    if (!b)
        return vigil__error_set(VIGIL_EINVAL, "batch is NULL");
    int rc = vigil__metric_validate_lens(m, &len);
    if (rc)
        return rc;
    if (b->count >= b->max_metrics)
        return vigil__error_set(VIGIL_ELIMIT, "batch: more than %zu metrics", b->max_metrics);
    if ((rc = reserve(b, 1, m->ntags)) != VIGIL_OK)
        return rc;

    /* Reserve the arena space of every string at once, so that a failure
     * leaves the batch unchanged. */
    size_t total = len.name + 1 + (m->error ? len.error + 1 : 0);
    for (size_t i = 0; i < m->ntags; i++)
        total += len.key[i] + len.value[i] + 2;
    vigil__chunk *cur = b->cur;
    size_t mark = cur ? cur->used : 0;
    if (!vigil__batch_alloc(b, total))
        return VIGIL_ENOMEM;
    /* Give the space back and copy string by string: it now fits in cur. */
    if (b->cur == cur) {
        if (cur)
            cur->used = mark;
    } else {
        b->cur->used = 0;
    }

    const vigil_metric *prev = b->count ? &b->metrics[b->count - 1] : NULL;
    vigil_metric *dst = &b->metrics[b->count];
    vigil_tag *tags = b->tags ? b->tags + b->ntags : NULL; /* NULL: no tags yet */
    /* The tags in key order, each with its lengths. */
    struct {
        vigil_tag t;
        size_t klen, vlen;
    } sorted[VIGIL_METRIC_TAGS_MAX];
    for (size_t i = 0; i < m->ntags; i++) {
        size_t j = i;
        while (j > 0 && strcmp(sorted[j - 1].t.key, m->tags[i].key) > 0) {
            sorted[j] = sorted[j - 1];
            j--;
        }
        sorted[j].t = m->tags[i];
        sorted[j].klen = len.key[i];
        sorted[j].vlen = len.value[i];
    }
    dst->name = copy_or_share(b, prev ? prev->name : NULL, m->name, len.name);
    for (size_t i = 0; i < m->ntags; i++) {
        const vigil_tag *pt = prev && i < prev->ntags ? &prev->tags[i] : NULL;
        tags[i].key = copy_or_share(b, pt ? pt->key : NULL, sorted[i].t.key, sorted[i].klen);
        tags[i].value = copy_or_share(b, pt ? pt->value : NULL, sorted[i].t.value, sorted[i].vlen);
    }
    dst->error = m->error ? vigil__batch_strcopy(b, m->error, len.error) : NULL;
    dst->value = m->error ? NAN : m->value;
    dst->ts_ms = m->ts_ms;
    dst->ntags = m->ntags;
    dst->tags = m->ntags ? tags : NULL;
    b->ntags += m->ntags;
    b->count++;
    return VIGIL_OK;
}

/* A copy of s (a string of another batch) in b, or share when s is the same
 * string as the previous metric's in the source, whose copy is dprev. */
static const char *copy_shared(vigil_batch *b, const char *s, const char *sprev, const char *dprev)
{
    if (s == sprev && dprev)
        return dprev;
    return vigil__batch_strcopy(b, s, strlen(s));
}

int vigil__batch_append(vigil_batch *dst, const vigil_batch *src, size_t first, size_t count)
{
    if (!dst || !src || first > src->count || count > src->count - first)
        return vigil__error_set(VIGIL_EINVAL, "batch append: NULL batch or range out of bounds");
    if (count && (dst->count >= dst->max_metrics || count > dst->max_metrics - dst->count))
        return vigil__error_set(VIGIL_ELIMIT, "batch: more than %zu metrics", dst->max_metrics);
    const vigil_metric *sm = src->metrics ? src->metrics + first : NULL;
    size_t ntags = 0;
    for (size_t i = 0; i < count; i++)
        ntags += sm[i].ntags;
    int rc = reserve(dst, count, ntags);
    if (rc)
        return rc;
    size_t count0 = dst->count, ntags0 = dst->ntags;
    for (size_t i = 0; i < count; i++) {
        const vigil_metric *m = &sm[i];
        /* The previous metric, in the source and as copied (NULL for the
         * first: the previous metric of dst is another batch's). */
        const vigil_metric *sp = i ? &sm[i - 1] : NULL;
        const vigil_metric *dp = i ? &dst->metrics[dst->count - 1] : NULL;
        vigil_metric *d = &dst->metrics[dst->count];
        vigil_tag *tags = dst->tags ? dst->tags + dst->ntags : NULL;
        size_t same = sp ? (sp->ntags < m->ntags ? sp->ntags : m->ntags) : 0;
        if (!(d->name = copy_shared(dst, m->name, sp ? sp->name : NULL, dp ? dp->name : NULL)))
            goto oom;
        for (size_t k = 0; k < m->ntags; k++) {
            const vigil_tag *st = k < same ? &sp->tags[k] : NULL;
            const vigil_tag *dt = k < same ? &dp->tags[k] : NULL;
            if (!(tags[k].key =
                      copy_shared(dst, m->tags[k].key, st ? st->key : NULL, dt ? dt->key : NULL)) ||
                !(tags[k].value = copy_shared(dst, m->tags[k].value, st ? st->value : NULL,
                                              dt ? dt->value : NULL)))
                goto oom;
        }
        d->error = NULL;
        if (m->error && !(d->error = vigil__batch_strcopy(dst, m->error, strlen(m->error))))
            goto oom;
        d->value = m->value;
        d->ts_ms = m->ts_ms;
        d->ntags = m->ntags;
        d->tags = m->ntags ? tags : NULL;
        dst->ntags += m->ntags;
        dst->count++;
    }
    return VIGIL_OK;
oom:
    /* The metrics copied so far are dropped (their strings stay in the
     * arena until the batch is cleared). */
    dst->count = count0;
    dst->ntags = ntags0;
    return VIGIL_ENOMEM;
}

size_t vigil_batch_count(const vigil_batch *b)
{
    return b ? b->count : 0;
}

const vigil_metric *vigil_batch_get(const vigil_batch *b, size_t index)
{
    return b && index < b->count ? &b->metrics[index] : NULL;
}

static int set_text(char **slot, const char *s, size_t max, const char *what)
{
    if (!s) {
        vigil__free(*slot);
        *slot = NULL;
        return VIGIL_OK;
    }
    size_t len = strnlen(s, max + 1);
    if (len > max)
        return vigil__error_set(VIGIL_ELIMIT, "%s: longer than %zu bytes", what, max);
    if (len == 0)
        return vigil__error_set(VIGIL_EVALUE, "%s: expected a non-empty string", what);
    if (!vigil__utf8_valid(s, len))
        return vigil__error_set(VIGIL_EENCODING, "%s: not valid UTF-8", what);
    char *copy = vigil__strndup(s, len);
    if (!copy)
        return vigil__error_oom();
    vigil__free(*slot);
    *slot = copy;
    return VIGIL_OK;
}

int vigil_batch_set_agent(vigil_batch *b, const char *agent)
{
    if (!b)
        return vigil__error_set(VIGIL_EINVAL, "batch is NULL");
    return set_text(&b->agent, agent, VIGIL_AGENT_ID_MAX, "agent");
}

int vigil_batch_set_id(vigil_batch *b, const char *batch_id)
{
    if (!b)
        return vigil__error_set(VIGIL_EINVAL, "batch is NULL");
    return set_text(&b->id, batch_id, VIGIL_BATCH_ID_MAX, "batch_id");
}

const char *vigil_batch_agent(const vigil_batch *b)
{
    return b ? b->agent : NULL;
}

const char *vigil_batch_id(const vigil_batch *b)
{
    return b ? b->id : NULL;
}

void vigil_batch_set_max_metrics(vigil_batch *b, size_t max_metrics)
{
    if (b)
        b->max_metrics = max_metrics ? max_metrics : VIGIL_BATCH_DEFAULT_MAX_METRICS;
}
