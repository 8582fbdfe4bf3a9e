/* The built-in Sysctl resource type: a kernel parameter under <proc>/sys and
 * its value. Observed by reading the file; never healed (no built-in action
 * writes kernel parameters). */
#include "manifest/manifest_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define SYSCTL_KEY_MAX   256
#define SYSCTL_VALUE_MAX 4096

typedef struct sysctl_spec {
    char *key;
    char *value; /* normalised: blanks collapsed to one space, trimmed */
    char *json;
} sysctl_spec;

typedef struct sysctl_obs {
    int exists;
    char value[SYSCTL_VALUE_MAX + 1];
} sysctl_obs;

static const char *const sysctl_keys[] = {"key", "value", NULL};

static void sysctl_destroy(void *state)
{
    sysctl_spec *s = state;
    if (!s)
        return;
    vigil__free(s->key);
    vigil__free(s->value);
    vigil__free(s->json);
    vigil__free(s);
}

static bool key_valid(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n > SYSCTL_KEY_MAX || k[0] == '.' || k[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = k[i];
        if (c == '.' && k[i + 1] == '.')
            return false;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return strchr(k, '.') != NULL;
}

/* Collapses runs of blanks (space, tab, newline) to one space and trims. */
static void normalise(char *s)
{
    size_t o = 0;
    bool blank = false;
    for (size_t i = 0; s[i]; i++) {
        bool b = s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r';
        if (b) {
            blank = o > 0;
            continue;
        }
        if (blank)
            s[o++] = ' ';
        blank = false;
        s[o++] = s[i];
    }
    s[o] = '\0';
}

static int sysctl_parse(void **state, const vigil_config_node *spec,
                        const vigil_resource_context *ctx)
{
    (void)ctx;
    const char *key, *value;
    int rc;
    if ((rc = vigil__manifest_string(&key, spec, "key", true)) < 0)
        return rc;
    if (!key_valid(key))
        return vigil__manifest_err(vigil_config_node_get(spec, "key"), VIGIL_EVALUE,
                                   "expected a kernel parameter such as net.core.somaxconn, got "
                                   "\"%.64s\"",
                                   key);
    if ((rc = vigil__manifest_string(&value, spec, "value", true)) < 0)
        return rc;
    if (strlen(value) > SYSCTL_VALUE_MAX)
        return vigil__manifest_err(vigil_config_node_get(spec, "value"), VIGIL_ELIMIT,
                                   "a value has at most %d bytes", SYSCTL_VALUE_MAX);
    sysctl_spec *s = vigil__calloc(1, sizeof(*s));
    if (!s || !(s->key = vigil__strdup(key)) || !(s->value = vigil__strdup(value))) {
        sysctl_destroy(s);
        return vigil__error_oom();
    }
    normalise(s->value);
    vigil_buf b = VIGIL_BUF_INIT;
    bool first = true;
    if (vigil__buf_putc(&b, '{') < 0 || vigil__manifest_json_key(&b, &first, "key") < 0 ||
        vigil__manifest_json_str(&b, s->key) < 0 ||
        vigil__manifest_json_key(&b, &first, "value") < 0 ||
        vigil__manifest_json_str(&b, s->value) < 0 || vigil__buf_putc(&b, '}') < 0 ||
        !(s->json = vigil__buf_detach(&b))) {
        vigil_buf_dispose(&b);
        sysctl_destroy(s);
        return vigil__error_oom();
    }
    *state = s;
    return VIGIL_OK;
}

static const char *sysctl_to_json(const void *state)
{
    return ((const sysctl_spec *)state)->json;
}

static int sysctl_observe(void **observed, const void *state, const vigil_resource_context *ctx)
{
    const sysctl_spec *s = state;
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/sys/%s", ctx->proc_root, s->key);
    if (n < 0 || (size_t)n >= sizeof(path))
        return vigil__error_set(VIGIL_ELIMIT, "sysctl path too long");
    for (char *p = path + strlen(ctx->proc_root) + 5; *p; p++)
        if (*p == '.')
            *p = '/';
    sysctl_obs *o = vigil__calloc(1, sizeof(*o));
    if (!o)
        return vigil__error_oom();
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR) {
            *observed = o;
            return VIGIL_OK;
        }
        vigil__free(o);
        return vigil__error_set(VIGIL_EIO, "cannot read %.200s: %s", path, strerror(e));
    }
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fd, o->value + got, SYSCTL_VALUE_MAX - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            vigil__free(o);
            return vigil__error_set(VIGIL_EIO, "cannot read %.200s: %s", path, strerror(e));
        }
        if (r == 0 || (got += (size_t)r) >= SYSCTL_VALUE_MAX)
            break;
    }
    close(fd);
    o->value[got] = '\0';
    o->exists = 1;
    normalise(o->value);
    *observed = o;
    return VIGIL_OK;
}

static int sysctl_diff(vigil_resource_diff *d, const void *state, const void *observed,
                       const vigil_resource_context *ctx)
{
    const sysctl_spec *s = state;
    const sysctl_obs *o = observed;
    (void)ctx;
    int rc;
    if (!o->exists) {
        if ((rc = vigil_resource_diff_add(d, "value", s->value, NULL)) < 0)
            return rc;
        return vigil_resource_diff_status(d, VIGIL_RESOURCE_MISSING);
    }
    if (strcmp(s->value, o->value) != 0)
        return vigil_resource_diff_add(d, "value", s->value, o->value);
    return VIGIL_OK;
}

static void sysctl_observed_free(void *observed)
{
    vigil__free(observed);
}

const vigil_resource_type vigil__resource_sysctl = {
    .version = VIGIL_RESOURCE_TYPE_VERSION,
    .name = "Sysctl",
    .keys = sysctl_keys,
    .parse = sysctl_parse,
    .to_json = sysctl_to_json,
    .observe = sysctl_observe,
    .diff = sysctl_diff,
    .observed_free = sysctl_observed_free,
    .destroy = sysctl_destroy,
};
