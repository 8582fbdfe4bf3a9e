/* The parts of lib/metric that other modules of the library use (never
 * installed). */
#ifndef VIGIL_METRIC_INTERNAL_H
#define VIGIL_METRIC_INTERNAL_H

#include "internal/common.h"
#include "vigil/batch.h"
#include "vigil/metric.h"

/* Appends metrics [first, first + count) of src to dst, as vigil_batch_add()
 * would one by one, without validating them again: every metric of a batch
 * was validated when it entered it, and its tags are sorted. Strings that
 * src shares between neighbouring metrics are shared in dst too.
 * Returns VIGIL_OK, VIGIL_EINVAL (NULL batch, range out of bounds),
 * VIGIL_ELIMIT (dst would hold more than its max_metrics: nothing copied,
 * same message as vigil_batch_add()) or VIGIL_ENOMEM (nothing appended). */
int vigil__batch_append(vigil_batch *dst, const vigil_batch *src, size_t first, size_t count);

#endif
