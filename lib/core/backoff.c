#include "internal/common.h"

uint64_t vigil__rand_next(uint64_t *rng)
{
    uint64_t x = *rng ? *rng : 0x9e3779b97f4a7c15ULL;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *rng = x;
    return x * 2685821657736338717ULL;
}

int64_t vigil__backoff_ceiling(int64_t base, int64_t max, unsigned int attempt)
{
    int64_t ceiling = base;
    for (unsigned int i = 1; i < attempt && ceiling < max; i++)
        ceiling *= 2;
    return ceiling > max ? max : ceiling;
}

int64_t vigil__backoff_jitter(int64_t ceiling, uint64_t *rng)
{
    int64_t half = ceiling / 2;
    return half + (int64_t)(vigil__rand_next(rng) % (uint64_t)(ceiling - half + 1));
}
