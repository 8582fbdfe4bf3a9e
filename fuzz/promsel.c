/* libFuzzer target: the match[] selectors of GET /v1/export/prometheus
 * (vigil__promsel_parse(), lib/hub/export.h), each parsed selector matched
 * against a fixed series, and the label-name and value escapes of the
 * export over the same bytes. */
#include "hub/export.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FUZZ_MAX_LEN 1100

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char text[FUZZ_MAX_LEN + 1];
    if (size > FUZZ_MAX_LEN)
        size = FUZZ_MAX_LEN;
    memcpy(text, data, size);
    text[size] = '\0';
    vigil__promsel *sel = NULL;
    if (vigil__promsel_parse(&sel, text) == VIGIL_OK) {
        const char *names[] = {"host", "a_b", "env"};
        const char *values[] = {"web-01", text, ""};
        (void)vigil__promsel_match(sel, "cpu_usage", names, values, 3);
        (void)vigil__promsel_name(sel);
        vigil__promsel_free(sel);
    }
    char label[VIGIL__EXPORT_LABEL_NAME_SIZE];
    vigil__export_label_name(label, sizeof(label), text);
    vigil_buf b = VIGIL_BUF_INIT;
    (void)vigil__export_escape(&b, text);
    vigil_buf_dispose(&b);
    return 0;
}
