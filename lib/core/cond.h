/*
 * Condition variables on the monotonic clock (private, never installed), so
 * that a timed wait is not stretched or cut short when the wall clock jumps.
 * Every timed wait of the library goes through here.
 */
#ifndef VIGIL_CORE_COND_H
#define VIGIL_CORE_COND_H

#include <pthread.h>
#include <stdint.h>

/* pthread_cond_init() with CLOCK_MONOTONIC. Returns 0 or the error number of
 * pthread_cond_init(). Destroy with pthread_cond_destroy(). */
int vigil__cond_init_monotonic(pthread_cond_t *cv);

/* Waits on `cv` (initialised by vigil__cond_init_monotonic(), `mu` held)
 * until it is signalled or the monotonic clock reaches `deadline_ms`
 * (vigil__monotonic_ms() scale). Returns 0, or ETIMEDOUT when the deadline
 * has passed; like any condition wait it may return early, so callers wait
 * in a loop that re-checks their predicate. */
int vigil__cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ms);

#endif
