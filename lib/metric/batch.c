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
 * neighbours share one copy), else a fresh copy. */
static const char *copy_or_share(vigil_batch *b, const char *prev, const char *s, size_t len)
{
    if (prev && strcmp(prev, s) == 0)
        return prev;
    return vigil__batch_strcopy(b, s, len);
}

int vigil_batch_add(vigil_batch *b, const vigil_metric *m)
{
    if (!b)
        return vigil__error_set(VIGIL_EINVAL, "batch is NULL");
    int rc = vigil_metric_validate(m);
    if (rc)
        return rc;
    if (b->count >= b->max_metrics)
        return vigil__error_set(VIGIL_ELIMIT, "batch: more than %zu metrics", b->max_metrics);
    if ((rc = vigil__array_grow((void **)&b->metrics, &b->cap, b->count + 1,
                                sizeof(vigil_metric))) != VIGIL_OK)
        return rc;
    vigil_tag *old_tags = b->tags;
    if ((rc = vigil__batch_reserve_tags(b, m->ntags)) != VIGIL_OK)
        return rc;
    if (b->tags != old_tags)
        vigil__batch_fix_tags(b);

    /* Reserve the arena space of every string at once, so that a failure
     * leaves the batch unchanged. */
    size_t total = strlen(m->name) + 1 + (m->error ? strlen(m->error) + 1 : 0);
    for (size_t i = 0; i < m->ntags; i++)
        total += strlen(m->tags[i].key) + strlen(m->tags[i].value) + 2;
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
    vigil_tag *tags = b->tags + b->ntags;
    if (m->ntags)
        memcpy(tags, m->tags, m->ntags * sizeof(vigil_tag));
    vigil__metric_sort_tags(tags, m->ntags);
    dst->name = copy_or_share(b, prev ? prev->name : NULL, m->name, strlen(m->name));
    for (size_t i = 0; i < m->ntags; i++) {
        const vigil_tag *pt = prev && i < prev->ntags ? &prev->tags[i] : NULL;
        tags[i].key = copy_or_share(b, pt ? pt->key : NULL, tags[i].key, strlen(tags[i].key));
        tags[i].value =
            copy_or_share(b, pt ? pt->value : NULL, tags[i].value, strlen(tags[i].value));
    }
    dst->error = m->error ? vigil__batch_strcopy(b, m->error, strlen(m->error)) : NULL;
    dst->value = m->error ? NAN : m->value;
    dst->ts_ms = m->ts_ms;
    dst->ntags = m->ntags;
    dst->tags = m->ntags ? tags : NULL;
    b->ntags += m->ntags;
    b->count++;
    return VIGIL_OK;
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
