/* libFuzzer target: the SQLite backend's chunk codec (lib/store/chunk.h).
 * The input is a chunk's data, decoded sample by sample until the end or
 * VIGIL_ECORRUPT; the samples decoded are encoded again and must decode to
 * the same samples. */
#include "store/chunk.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_LEN 2048

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SAMPLES_MAX 2048

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static vigil__sample samples[SAMPLES_MAX];
    size_t n = 0;
    vigil__chunk_iter it;
    vigil__chunk_iter_init(&it, 1700000000000, data, size);
    vigil__sample s;
    int rc;
    while (n < SAMPLES_MAX && (rc = vigil__chunk_next(&it, &s)) == 1)
        samples[n++] = s;

    vigil_buf out = VIGIL_BUF_INIT;
    vigil__chunk_tail tail = {0, 0, 0, 1};
    size_t put = 0;
    for (; put < n; put++) {
        if (vigil__chunk_size(&tail, &samples[put]) == 0 ||
            vigil__chunk_put(&out, &tail, &samples[put]) != VIGIL_OK)
            break;
    }
    /* what was encoded decodes to the same samples */
    vigil__chunk_iter_init(&it, put ? samples[0].ts : 0, out.ptr, out.size);
    for (size_t i = 0; i < put; i++) {
        if (vigil__chunk_next(&it, &s) != 1 || s.ts != samples[i].ts ||
            (s.error == NULL) != (samples[i].error == NULL) ||
            (s.error && (s.error_len != samples[i].error_len ||
                         memcmp(s.error, samples[i].error, s.error_len) != 0)) ||
            (!s.error && memcmp(&s.value, &samples[i].value, sizeof(double)) != 0))
            abort();
    }
    if (put && vigil__chunk_next(&it, &s) != 0)
        abort();
    vigil_buf_dispose(&out);
    return 0;
}
