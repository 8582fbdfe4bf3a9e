/*
 * The library's one string hash (private, never installed): for in-memory
 * hash tables only (window sets, the policy maps, the series-id cache, config
 * anchors, the hub's action index). Unkeyed and not stable across versions:
 * never persist a value, and cap tables that hold untrusted keys.
 *
 * Word-at-a-time (8 bytes per multiply and shift) with a final mix, so that
 * the low bits, which pick a slot, depend on every byte. Inline because it
 * sits on the ingest path (a window-set lookup per sample).
 */
#ifndef VIGIL_CORE_HASH_H
#define VIGIL_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Hashes `n` bytes at `s` (s may be NULL when n is 0). */
static inline uint64_t vigil__hash_bytes(const void *s, size_t n)
{
    const unsigned char *p = s;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n, w;
    for (; n >= 8; p += 8, n -= 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
    }
    w = 0;
    if (n)
        memcpy(&w, p, n);
    h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDull;
    return h ^ (h >> 33);
}

/* Hashes a NUL-terminated string (without its NUL). */
static inline uint64_t vigil__hash_str(const char *s)
{
    return vigil__hash_bytes(s, strlen(s));
}

#endif
