/* Helpers shared by the manifest loader and the built-in resource types. */
#include "crypto/crypto.h"
#include "internal/json.h"
#include "manifest/manifest_int.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int vigil__manifest_err(const vigil_config_node *n, int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return vigil_error_set_at(code, n, msg);
}

int vigil__manifest_string(const char **out, const vigil_config_node *map, const char *key,
                           bool required)
{
    int rc;
    *out = NULL;
    if (required && (rc = vigil_config_require(map, key)) < 0)
        return rc;
    const vigil_config_node *n = vigil_config_node_get(map, key);
    if (!n || vigil_config_node_kind(n) == VIGIL_CONFIG_NULL)
        return VIGIL_OK;
    return vigil_config_string(out, n);
}

int vigil__manifest_host_path(const vigil_config_node *at, const char *path)
{
    size_t n = strlen(path);
    if (n == 0)
        return vigil__manifest_err(at, VIGIL_EVALUE, "expected a path, got \"\"");
    if (n >= PATH_MAX)
        return vigil__manifest_err(at, VIGIL_ELIMIT, "a path has at most %d bytes", PATH_MAX - 1);
    for (const char *p = path; *p;) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.')
            return vigil__manifest_err(at, VIGIL_EPERM,
                                       "\"%.200s\": a path may not hold a \"..\" component", path);
        p += len;
        while (*p == '/')
            p++;
    }
    return VIGIL_OK;
}

void vigil__manifest_hex(char out[65], const unsigned char sum[32])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[sum[i] >> 4];
        out[2 * i + 1] = hex[sum[i] & 15];
    }
    out[64] = '\0';
}

int vigil__manifest_sha256_fd(int fd, size_t max, char out[65], uint64_t *size)
{
    vigil__crypto_sha256_ctx c;
    unsigned char buf[65536], sum[32];
    uint64_t total = 0;
    int rc = vigil__crypto_sha256_start(&c) < 0 ? VIGIL_ERROR : VIGIL_OK;
    while (rc == VIGIL_OK) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = VIGIL_EIO;
            break;
        }
        if (n == 0)
            break;
        total += (uint64_t)n;
        if (total > max) {
            rc = VIGIL_ELIMIT;
            break;
        }
        if (vigil__crypto_sha256_update(&c, buf, (size_t)n) < 0)
            rc = VIGIL_ERROR;
    }
    if (rc == VIGIL_OK && vigil__crypto_sha256_finish(&c, sum) < 0)
        rc = VIGIL_ERROR;
    vigil__crypto_sha256_free(&c);
    if (rc == VIGIL_OK) {
        vigil__manifest_hex(out, sum);
        if (size)
            *size = total;
    }
    return rc;
}

bool vigil__manifest_is_sha256(const char *s)
{
    size_t i = 0;
    for (; s[i]; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return i == 64;
}

int vigil__manifest_json_key(vigil_buf *b, bool *first, const char *key)
{
    int rc;
    if (!*first && (rc = vigil__buf_putc(b, ',')) < 0)
        return rc;
    *first = false;
    if ((rc = vigil__json_put_string(b, key, strlen(key))) < 0)
        return rc;
    return vigil__buf_putc(b, ':');
}

int vigil__manifest_json_str(vigil_buf *b, const char *s)
{
    return s ? vigil__json_put_string(b, s, strlen(s)) : vigil__buf_puts(b, "null");
}

/* True when s is a number in the JSON grammar (and short enough for cJSON). */
static bool json_number(const char *s)
{
    const char *p = s;
    if (strlen(s) > 63)
        return false;
    if (*p == '-')
        p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (*p >= '0' && *p <= '9')
            p++;
    else
        return false;
    if (*p == '.') {
        p++;
        if (!(*p >= '0' && *p <= '9'))
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return *p == '\0';
}

static int node_json(vigil_buf *b, const vigil_config_node *node, bool typed)
{
    int rc;
    switch (vigil_config_node_kind(node)) {
    case VIGIL_CONFIG_SCALAR: {
        const char *s = vigil_config_node_scalar(node);
        if (typed && (json_number(s) || strcmp(s, "true") == 0 || strcmp(s, "false") == 0))
            return vigil__buf_puts(b, s);
        return vigil__json_put_string(b, s, strlen(s));
    }
    case VIGIL_CONFIG_LIST:
        if ((rc = vigil__buf_putc(b, '[')) < 0)
            return rc;
        for (size_t i = 0; i < vigil_config_node_len(node); i++)
            if ((i && (rc = vigil__buf_putc(b, ',')) < 0) ||
                (rc = node_json(b, vigil_config_node_at(node, i), typed)) < 0)
                return rc;
        return vigil__buf_putc(b, ']');
    case VIGIL_CONFIG_MAP: {
        bool first = true;
        if ((rc = vigil__buf_putc(b, '{')) < 0)
            return rc;
        for (size_t i = 0; i < vigil_config_node_len(node); i++)
            if ((rc = vigil__manifest_json_key(b, &first, vigil_config_node_key_at(node, i))) < 0 ||
                (rc = node_json(b, vigil_config_node_at(node, i), typed)) < 0)
                return rc;
        return vigil__buf_putc(b, '}');
    }
    default: return vigil__buf_puts(b, "null");
    }
}

int vigil__manifest_node_json(vigil_buf *b, const vigil_config_node *node)
{
    return node_json(b, node, false);
}

int vigil__manifest_node_json_typed(vigil_buf *b, const vigil_config_node *node)
{
    return node_json(b, node, true);
}
