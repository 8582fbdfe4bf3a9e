/* libFuzzer target: the X-Vigil-Signature header, vigil_signature_verify().
 * The input is "<header value>\n<body>"; the header is checked against the
 * body at a fixed time, and a header made for the body must verify. */
#include <vigil/vigil.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_LEN 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char secret[] = "fuzz-secret-0123456789abcdef0123";
#define NOW_S 1700000000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t hlen = nl ? (size_t)(nl - data) : size;
    const uint8_t *body = nl ? nl + 1 : data + size;
    size_t blen = size - (size_t)(body - data);
    char *header = malloc(hlen + 1);
    if (!header)
        return 0;
    memcpy(header, data, hlen);
    header[hlen] = '\0';
    (void)vigil_signature_verify(header, secret, sizeof(secret) - 1, body, blen, NOW_S, 0);
    (void)vigil_signature_verify(header, secret, sizeof(secret) - 1, body, blen, NOW_S, 1);
    free(header);

    vigil_buf made = VIGIL_BUF_INIT;
    if (vigil_signature_make(&made, secret, sizeof(secret) - 1, NOW_S - 10, body, blen) ==
            VIGIL_OK &&
        vigil_signature_verify(made.ptr, secret, sizeof(secret) - 1, body, blen, NOW_S, 0) !=
            VIGIL_OK)
        abort(); /* a header made for the body must verify */
    vigil_buf_dispose(&made);
    return 0;
}
