/* libFuzzer target: the ingest decoder, vigil_batch_decode_json(), with the
 * hub's options (default ts, agent optional) and strict ones (ts and agent
 * required, a small metric limit); a decoded batch is encoded back and must
 * decode again to the same number of metrics. */
#include <vigil/vigil.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define FUZZ_MAX_LEN 16384

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vigil_batch *b = NULL, *again = NULL;
    if (vigil_batch_new(&b) != VIGIL_OK || vigil_batch_new(&again) != VIGIL_OK) {
        vigil_batch_free(b);
        return 0;
    }
    vigil_batch_decode_options lax = VIGIL_BATCH_DECODE_OPTIONS_INIT;
    lax.default_ts_ms = 1700000000000;
    vigil_batch_decode_options strict = VIGIL_BATCH_DECODE_OPTIONS_INIT;
    strict.require_agent = 1;
    strict.max_metrics = 8;
    (void)vigil_batch_decode_json(b, (const char *)data, size, &strict);
    if (vigil_batch_decode_json(b, (const char *)data, size, &lax) == VIGIL_OK) {
        vigil_buf out = VIGIL_BUF_INIT;
        if (vigil_batch_encode_json(&out, b) == VIGIL_OK) {
            int rc = vigil_batch_decode_json(again, out.ptr, out.size, &lax);
            if (rc != VIGIL_OK && rc != VIGIL_ENOMEM)
                abort(); /* an encoded batch must decode */
            if (rc == VIGIL_OK && vigil_batch_count(again) != vigil_batch_count(b))
                abort();
        }
        vigil_buf_dispose(&out);
    }
    vigil_batch_free(again);
    vigil_batch_free(b);
    return 0;
}
