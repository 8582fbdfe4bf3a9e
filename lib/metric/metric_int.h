/* Private to lib/metric: the batch layout, its string arena and the checks
 * shared by vigil_metric_validate(), vigil_batch_add() and the JSON decoder. */
#ifndef VIGIL_METRIC_INT_H
#define VIGIL_METRIC_INT_H

#include "internal/json.h"
#include "metric/internal.h"
#include "vigil/metric.h"

#include <string.h>

/* Timestamps are integral milliseconds from 0 to 2^53 - 1, the range a JSON
 * number (a double) carries exactly. */
#define VIGIL__METRIC_TS_MAX INT64_C(9007199254740991)

/* Nesting limit of an ingest body: {"metrics":[{"tags":{}}]} needs 3; deeper
 * values are refused by type, but no deeper than this is even parsed. */
#define VIGIL__METRIC_JSON_DEPTH 16
/* JSON values a decoded batch may hold per metric on average (the metric
 * object, its name, value, ts and error, a tags object and 18 tags): the
 * tree of one body is at most 64 + (max_metrics + 1) x 24 values. */
#define VIGIL__METRIC_NODES_PER_METRIC 24

/* Strings are copied into chunks that never move, so a metric costs no
 * allocation per string. */
typedef struct vigil__chunk {
    struct vigil__chunk *next;
    size_t cap, used;
    char data[];
} vigil__chunk;

struct vigil_batch {
    vigil_metric *metrics;
    size_t count, cap;
    /* Every metric's tags, contiguous and in metric order: the tags of metric
     * i start at the sum of ntags of the metrics before it. */
    vigil_tag *tags;
    size_t ntags, tags_cap;
    vigil__chunk *chunks, *cur;
    size_t next_chunk;
    char *agent, *id;
    size_t max_metrics;
};

/* Slow path of vigil__batch_alloc(): moves to (or allocates) a chunk. */
char *vigil__batch_alloc_slow(vigil_batch *b, size_t n);

/* n bytes from the batch's arena; NULL when out of memory (recorded). */
static inline char *vigil__batch_alloc(vigil_batch *b, size_t n)
{
    vigil__chunk *c = b->cur;
    if (c && c->cap - c->used >= n) {
        char *p = c->data + c->used;
        c->used += n;
        return p;
    }
    return vigil__batch_alloc_slow(b, n);
}

/* Copies s[0..len) plus a NUL into the batch's arena. */
static inline char *vigil__batch_strcopy(vigil_batch *b, const char *s, size_t len)
{
    char *p = vigil__batch_alloc(b, len + 1);
    if (p) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

/* Points each metric's tags into b->tags again (after b->tags moved). */
void vigil__batch_fix_tags(vigil_batch *b);

/* Makes room for `more` tags (b->tags may move: call vigil__batch_fix_tags). */
int vigil__batch_reserve_tags(vigil_batch *b, size_t more);

/* Checks a metric name or tag key of len bytes; on failure records
 * "<path>: <what> ..." and returns VIGIL_ENAME or VIGIL_ELIMIT. */
int vigil__metric_check_name(const char *s, size_t len, const vigil__json_path *path,
                             const char *what);

/* Classes of the bytes of names: VIGIL__NAME_REST for [a-zA-Z0-9_:], plus
 * VIGIL__NAME_FIRST for those that may start one ([a-zA-Z_:]). */
#define VIGIL__NAME_REST  1
#define VIGIL__NAME_FIRST 2
extern const unsigned char vigil__metric_name_class[256];

/* True when s[0..len) matches [a-zA-Z_:][a-zA-Z0-9_:]* (any length >= 1). */
static inline int vigil__metric_name_chars(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    if (len == 0 || !(vigil__metric_name_class[u[0]] & VIGIL__NAME_FIRST))
        return 0;
    for (size_t i = 1; i < len; i++)
        if (!vigil__metric_name_class[u[i]])
            return 0;
    return 1;
}

/* The length of the NUL-terminated s when it is a valid name (matches the
 * pattern and is at most VIGIL_METRIC_NAME_MAX bytes), else 0: one pass that
 * replaces strlen() + vigil__metric_name_chars() on the hot paths. */
static inline size_t vigil__metric_name_len(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    if (!(vigil__metric_name_class[u[0]] & VIGIL__NAME_FIRST))
        return 0;
    size_t i = 1;
    while (vigil__metric_name_class[u[i]])
        i++;
    return i <= VIGIL_METRIC_NAME_MAX && u[i] == '\0' ? i : 0;
}

/* The lengths of a valid metric's strings, found while validating it. */
typedef struct vigil__metric_lens {
    size_t name, error; /* error: 0 without an error text */
    size_t key[VIGIL_METRIC_TAGS_MAX], value[VIGIL_METRIC_TAGS_MAX];
} vigil__metric_lens;

/* vigil_metric_validate(), filling *lens on success. */
int vigil__metric_validate_lens(const vigil_metric *m, vigil__metric_lens *lens);

/* Sorts tags by key (insertion sort: n <= VIGIL_METRIC_TAGS_MAX, and input is
 * usually sorted already). */
void vigil__metric_sort_tags(vigil_tag *tags, size_t n);

#endif
