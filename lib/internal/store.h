/*
 * Private entry points of lib/store used by other modules of the library.
 * Never installed.
 */
#ifndef VIGIL_INTERNAL_STORE_H
#define VIGIL_INTERNAL_STORE_H

#include "vigil/store.h"

#include <stdint.h>

/* A deep copy of `a` in one allocation, to free with vigil_store_action_free()
 * (NULL strings stay NULL): what vigil_store_action_get() hands out, for
 * callers that keep the records a vigil_store_action_list() callback sees.
 * Returns VIGIL_OK or VIGIL_ENOMEM (*out NULL). */
int vigil__store_action_dup(vigil_store_action **out, const vigil_store_action *a);

/* Folds of the SQLite write log between writes, for a writer that has idle
 * time (the hub's committer): with `on`, a write folds only when the idle
 * time did not suffice (a round overdue by one fold interval) or unfolded
 * memory is past log_memory; the caller runs vigil__store_tend() whenever
 * it has nothing to write. No-op for other backends. Any thread. */
void vigil__store_fold_idle(vigil_store *store, int on);
/* One slice of fold work when one is due (the store's mutex held for it;
 * when another thread holds it, nothing is done and the next try is due in
 * 2 ms, so an idle caller never blocks on the store): 1 when a slice ran
 * (call again while idle), else 0 and *next_ms, the monotonic ms
 * (vigil__monotonic_ms) when the next one falls due (INT64_MAX: none;
 * other backends always). Failures are logged by the store and retried
 * later; never returns an error. */
int vigil__store_tend(vigil_store *store, int64_t *next_ms);

#endif
