/* libFuzzer target: the exec collector's parser of Prometheus text exposition
 * and `name value` lines (vigil__coll_exec_parse(), lib/collector/coll_int.h),
 * as a complete output and as one cut at its cap. */
#include "collector/coll_int.h"

#include <stddef.h>
#include <stdint.h>

#define FUZZ_MAX_LEN 8192

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vigil_batch *b = NULL;
    if (vigil_batch_new(&b) != VIGIL_OK)
        return 0;
    size_t errors = 0;
    (void)vigil__coll_exec_parse((const char *)data, size, 0, 1000, b, 1700000000000, &errors);
    vigil_batch_clear(b);
    errors = 0;
    (void)vigil__coll_exec_parse((const char *)data, size, 1, 3, b, 1700000000000, &errors);
    vigil_batch_free(b);
    return 0;
}
