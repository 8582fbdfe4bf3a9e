/*
 * Private entry points of lib/store used by other modules of the library.
 * Never installed.
 */
#ifndef VIGIL_INTERNAL_STORE_H
#define VIGIL_INTERNAL_STORE_H

#include "vigil/store.h"

/* A deep copy of `a` in one allocation, to free with vigil_store_action_free()
 * (NULL strings stay NULL): what vigil_store_action_get() hands out, for
 * callers that keep the records a vigil_store_action_list() callback sees.
 * Returns VIGIL_OK or VIGIL_ENOMEM (*out NULL). */
int vigil__store_action_dup(vigil_store_action **out, const vigil_store_action *a);

#endif
