/* ${VAR} / ${VAR:-default} / $$ expansion in configuration scalars. */
#include "config/config_int.h"

#include <stdlib.h>
#include <string.h>

/* Quoted references are clipped in messages. */
#define REF_QUOTE_MAX 64

static int is_name_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int is_name_char(char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

static int malformed(const char *ref, size_t len, const char *why)
{
    size_t n = len > REF_QUOTE_MAX ? REF_QUOTE_MAX : len;
    return vigil__error_set(VIGIL_EVALUE,
                            "malformed variable reference \"%.*s%s\": %s (expected ${NAME} or "
                            "${NAME:-default}; write $$ for a literal $)",
                            (int)n, ref, n < len ? "..." : "", why);
}

static int append(vigil_buf *out, const char *s, size_t n, size_t max_len)
{
    if (n > max_len || out->size > max_len - n)
        return vigil__error_set(
            VIGIL_ELIMIT, "the value after ${...} expansion is longer than %zu bytes", max_len);
    return vigil__buf_put(out, s, n);
}

int vigil__config_expand(vigil_buf *out, const char *s, size_t len, size_t max_len,
                         vigil_getenv_cb getenv_cb, void *payload)
{
    char name[256];
    size_t i = 0;
    int rc;
    vigil__buf_clear(out);
    /* Make sure the buffer exists even when the result is empty. */
    if ((rc = vigil__buf_grow(out, 0)) != VIGIL_OK)
        return rc;
    while (i < len) {
        const char *dollar = memchr(s + i, '$', len - i);
        size_t run = dollar ? (size_t)(dollar - (s + i)) : len - i;
        if ((rc = append(out, s + i, run, max_len)) != VIGIL_OK)
            return rc;
        i += run;
        if (i >= len)
            break;
        /* s[i] == '$' */
        if (i + 1 < len && s[i + 1] == '$') {
            if ((rc = append(out, "$", 1, max_len)) != VIGIL_OK)
                return rc;
            i += 2;
            continue;
        }
        if (i + 1 >= len || s[i + 1] != '{') {
            /* A lone '$' is literal. */
            if ((rc = append(out, "$", 1, max_len)) != VIGIL_OK)
                return rc;
            i++;
            continue;
        }
        const char *ref = s + i;
        size_t j = i + 2, start = j;
        const char *close = memchr(s + j, '}', len - j);
        size_t reflen = close ? (size_t)(close - ref) + 1 : len - i;
        if (!close)
            return malformed(ref, reflen, "no closing '}'");
        if (j >= len || !is_name_start(s[j]))
            return malformed(ref, reflen, "a name starts with a letter or '_'");
        while (j < len && is_name_char(s[j]))
            j++;
        size_t nlen = j - start;
        if (nlen >= sizeof(name))
            return malformed(ref, reflen, "the name is too long");
        memcpy(name, s + start, nlen);
        name[nlen] = '\0';
        const char *dflt = NULL;
        size_t dlen = 0;
        if (s + j == close) {
            /* ${NAME} */
        } else if (j + 1 < len && s[j] == ':' && s[j + 1] == '-') {
            dflt = s + j + 2;
            dlen = (size_t)(close - dflt);
        } else {
            return malformed(ref, reflen, "a name has only letters, digits and '_'");
        }
        const char *val = getenv_cb ? getenv_cb(payload, name) : getenv(name);
        /* As in the shell, ":-" also replaces a variable that is set but empty. */
        if (val && !*val && dflt)
            val = NULL;
        if (!val && !dflt)
            return vigil__error_set(VIGIL_EENV,
                                    "environment variable \"%s\" is not set (write "
                                    "${%s:-default} to give a default)",
                                    name, name);
        if (val) {
            size_t vlen = strnlen(val, VIGIL__CONFIG_MAX_VAR + 1);
            if (vlen > VIGIL__CONFIG_MAX_VAR)
                return vigil__error_set(VIGIL_ELIMIT,
                                        "environment variable \"%s\" is longer than %u bytes", name,
                                        VIGIL__CONFIG_MAX_VAR);
            if (!vigil__utf8_valid(val, vlen))
                return vigil__error_set(VIGIL_EENCODING,
                                        "environment variable \"%s\" is not valid UTF-8", name);
            rc = append(out, val, vlen, max_len);
        } else {
            rc = append(out, dflt, dlen, max_len);
        }
        if (rc != VIGIL_OK)
            return rc;
        i = (size_t)(close - s) + 1;
    }
    return VIGIL_OK;
}
