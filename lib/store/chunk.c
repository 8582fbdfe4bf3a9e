/*
 * The chunk codec of the SQLite backend (see chunk.h for the format).
 */
#include "store/chunk.h"

#include <string.h>

#define KIND_VALUE  0u
#define KIND_REPEAT 1u
#define KIND_ERROR  2u
#define DELTA_MAX   (UINT64_C(1) << 62)

static uint64_t value_bits(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof(b));
    return b;
}

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static size_t varint_put(unsigned char *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (unsigned char)v;
    return n;
}

/* The delta of s after t, or DELTA_MAX when s cannot follow. */
static uint64_t delta_of(const vigil__chunk_tail *t, const vigil__sample *s)
{
    if (t->empty)
        return 0;
    if (s->ts <= t->last_ts)
        return DELTA_MAX;
    uint64_t d = (uint64_t)s->ts - (uint64_t)t->last_ts;
    return d < DELTA_MAX ? d : DELTA_MAX;
}

static unsigned kind_of(const vigil__chunk_tail *t, const vigil__sample *s)
{
    if (s->error)
        return KIND_ERROR;
    if (t->last_is_value && !t->empty && value_bits(s->value) == t->last_bits)
        return KIND_REPEAT;
    return KIND_VALUE;
}

size_t vigil__chunk_size(const vigil__chunk_tail *t, const vigil__sample *s)
{
    uint64_t d = delta_of(t, s);
    if (d == DELTA_MAX)
        return 0;
    unsigned k = kind_of(t, s);
    size_t n = varint_len(d << 2 | k);
    if (k == KIND_VALUE)
        n += 8;
    else if (k == KIND_ERROR)
        n += varint_len(s->error_len) + s->error_len;
    return n;
}

int vigil__chunk_put(vigil_buf *out, vigil__chunk_tail *t, const vigil__sample *s)
{
    uint64_t d = delta_of(t, s);
    unsigned k = kind_of(t, s);
    size_t need = 10 + (k == KIND_ERROR ? 10 + s->error_len : 8);
    if (vigil__buf_grow(out, need) != 0)
        return vigil__error_oom();
    unsigned char *p = (unsigned char *)out->ptr + out->size;
    size_t n = varint_put(p, d << 2 | k);
    if (k == KIND_VALUE) {
        uint64_t b = value_bits(s->value);
        for (int i = 0; i < 8; i++)
            p[n++] = (unsigned char)(b >> (8 * i));
        t->last_bits = b;
        t->last_is_value = 1;
    } else if (k == KIND_ERROR) {
        n += varint_put(p + n, s->error_len);
        memcpy(p + n, s->error, s->error_len);
        n += s->error_len;
        t->last_is_value = 0;
    }
    out->size += n;
    t->last_ts = s->ts;
    t->empty = 0;
    return VIGIL_OK;
}

void vigil__chunk_iter_init(vigil__chunk_iter *it, int64_t start_ts, const void *data, size_t len)
{
    it->p = data;
    it->end = len ? it->p + len : it->p; /* SQLite gives NULL for an empty blob */
    it->tail.last_ts = start_ts;
    it->tail.last_bits = 0;
    it->tail.last_is_value = 0;
    it->tail.empty = 1;
}

static int varint_get(vigil__chunk_iter *it, uint64_t *v)
{
    uint64_t r = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (it->p == it->end)
            return VIGIL_ECORRUPT;
        unsigned char c = *it->p++;
        if (shift == 63 && c > 1)
            return VIGIL_ECORRUPT; /* past 64 bits */
        r |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = r;
            return VIGIL_OK;
        }
    }
    return VIGIL_ECORRUPT;
}

int vigil__chunk_next(vigil__chunk_iter *it, vigil__sample *s)
{
    if (it->p == it->end)
        return 0;
    uint64_t head;
    if (varint_get(it, &head) != VIGIL_OK)
        return VIGIL_ECORRUPT;
    uint64_t d = head >> 2;
    unsigned k = (unsigned)(head & 3);
    vigil__chunk_tail *t = &it->tail;
    /* the first sample is at start_ts; every later one strictly after */
    if (t->empty ? d != 0 : (d == 0 || d > (uint64_t)INT64_MAX - (uint64_t)t->last_ts))
        return VIGIL_ECORRUPT;
    s->ts = t->empty ? t->last_ts : (int64_t)((uint64_t)t->last_ts + d);
    s->error = NULL;
    s->error_len = 0;
    switch (k) {
    case KIND_VALUE: {
        if (it->end - it->p < 8)
            return VIGIL_ECORRUPT;
        uint64_t b = 0;
        for (int i = 0; i < 8; i++)
            b |= (uint64_t)it->p[i] << (8 * i);
        it->p += 8;
        memcpy(&s->value, &b, sizeof(b));
        t->last_bits = b;
        t->last_is_value = 1;
        break;
    }
    case KIND_REPEAT:
        if (t->empty || !t->last_is_value)
            return VIGIL_ECORRUPT;
        memcpy(&s->value, &t->last_bits, sizeof(s->value));
        break;
    case KIND_ERROR: {
        uint64_t len;
        if (varint_get(it, &len) != VIGIL_OK || len == 0 || len > (uint64_t)(it->end - it->p))
            return VIGIL_ECORRUPT;
        s->error = (const char *)it->p;
        s->error_len = (size_t)len;
        s->value = 0;
        it->p += len;
        t->last_is_value = 0;
        break;
    }
    default: return VIGIL_ECORRUPT;
    }
    t->last_ts = s->ts;
    t->empty = 0;
    return 1;
}
