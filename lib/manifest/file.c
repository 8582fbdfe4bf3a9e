/* The built-in File resource type: a file on the host with desired bytes
 * (from a repository file, inline content, or only their sha256), mode and
 * owner. */
#include "crypto/crypto.h"
#include "manifest/manifest_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct file_spec {
    char *path;
    char sha256[65];
    char *source;     /* as written */
    char *source_abs; /* resolved inside the root */
    char *content;
    size_t content_len;
    int has_mode;
    unsigned int mode;
    char *owner;
    int owner_numeric;
    char *json;
} file_spec;

typedef struct file_obs {
    int exists;
    const char *type; /* NULL: a regular file; "symlink", "directory", "other" */
    char sha256[65];
    unsigned int mode;
    char owner[64];
} file_obs;

static const char *const file_keys[] = {"path", "source", "content", "sha256",
                                        "mode", "owner",  NULL};

static void file_destroy(void *state)
{
    file_spec *f = state;
    if (!f)
        return;
    vigil__free(f->path);
    vigil__free(f->source);
    vigil__free(f->source_abs);
    vigil__free(f->content);
    vigil__free(f->owner);
    vigil__free(f->json);
    vigil__free(f);
}

static bool owner_valid(const char *s, int *numeric)
{
    size_t n = strlen(s), digits = 0;
    if (n == 0 || n > 32)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] >= '0' && s[i] <= '9')
            digits++;
    if (digits == n) {
        *numeric = 1;
        return n <= 10 && strtoull(s, NULL, 10) < 4294967295ull;
    }
    *numeric = 0;
    if (!((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '.' || (c == '$' && i + 1 == n)))
            return false;
    }
    return true;
}

static int parse_mode(unsigned int *out, const char *s)
{
    size_t n = strlen(s);
    if (n < 3 || n > 4)
        return -1;
    unsigned int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '7')
            return -1;
        v = v * 8 + (unsigned int)(s[i] - '0');
    }
    *out = v;
    return 0;
}

static int source_sum(file_spec *f, const vigil_config_node *at, size_t max)
{
    int fd = open(f->source_abs, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return vigil__manifest_err(at, VIGIL_EIO, "cannot open \"%.128s\": %s", f->source,
                                   strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return vigil__manifest_err(at, VIGIL_EVALUE, "\"%.128s\" is not a regular file", f->source);
    }
    int rc = vigil__manifest_sha256_fd(fd, max, f->sha256, NULL);
    close(fd);
    if (rc == VIGIL_ELIMIT)
        return vigil__manifest_err(at, VIGIL_ELIMIT, "\"%.128s\" is larger than %zu bytes",
                                   f->source, max);
    if (rc < 0)
        return vigil__manifest_err(at, VIGIL_EIO, "cannot read \"%.128s\"", f->source);
    return VIGIL_OK;
}

static int file_json(file_spec *f)
{
    vigil_buf b = VIGIL_BUF_INIT;
    bool first = true;
    char mode[8];
    int rc = vigil__buf_putc(&b, '{');
    if (rc >= 0 && (rc = vigil__manifest_json_key(&b, &first, "path")) >= 0)
        rc = vigil__manifest_json_str(&b, f->path);
    if (rc >= 0 && (rc = vigil__manifest_json_key(&b, &first, "sha256")) >= 0)
        rc = vigil__manifest_json_str(&b, f->sha256);
    if (rc >= 0 && f->source && (rc = vigil__manifest_json_key(&b, &first, "source")) >= 0)
        rc = vigil__manifest_json_str(&b, f->source);
    if (rc >= 0 && f->has_mode && (rc = vigil__manifest_json_key(&b, &first, "mode")) >= 0) {
        snprintf(mode, sizeof(mode), "%04o", f->mode);
        rc = vigil__manifest_json_str(&b, mode);
    }
    if (rc >= 0 && f->owner && (rc = vigil__manifest_json_key(&b, &first, "owner")) >= 0)
        rc = vigil__manifest_json_str(&b, f->owner);
    if (rc >= 0)
        rc = vigil__buf_putc(&b, '}');
    if (rc < 0) {
        vigil_buf_dispose(&b);
        return rc;
    }
    f->json = vigil__buf_detach(&b);
    return f->json ? VIGIL_OK : vigil__error_oom();
}

static int file_parse(void **state, const vigil_config_node *spec,
                      const vigil_resource_context *ctx)
{
    const vigil_manifest *m = ctx->type_payload;
    const char *path, *source, *content, *sha, *mode, *owner;
    int rc;
    if ((rc = vigil__manifest_string(&path, spec, "path", true)) < 0 ||
        (rc = vigil__manifest_host_path(vigil_config_node_get(spec, "path"), path)) < 0 ||
        (rc = vigil__manifest_string(&source, spec, "source", false)) < 0 ||
        (rc = vigil__manifest_string(&content, spec, "content", false)) < 0 ||
        (rc = vigil__manifest_string(&sha, spec, "sha256", false)) < 0 ||
        (rc = vigil__manifest_string(&mode, spec, "mode", false)) < 0 ||
        (rc = vigil__manifest_string(&owner, spec, "owner", false)) < 0)
        return rc;
    if (source && content)
        return vigil__manifest_err(vigil_config_node_get(spec, "content"), VIGIL_EVALUE,
                                   "source and content exclude each other");
    if (!source && !content && !sha)
        return vigil__manifest_err(spec, VIGIL_EMISSING,
                                   "one of source, content or sha256 is required");
    if (sha && !vigil__manifest_is_sha256(sha))
        return vigil__manifest_err(vigil_config_node_get(spec, "sha256"), VIGIL_EVALUE,
                                   "expected 64 lower-case hex digits, got \"%.80s\"", sha);
    file_spec *f = vigil__calloc(1, sizeof(*f));
    if (!f)
        return vigil__error_oom();
    if (mode && parse_mode(&f->mode, mode) < 0) {
        rc = vigil__manifest_err(vigil_config_node_get(spec, "mode"), VIGIL_EVALUE,
                                 "expected an octal mode such as \"0644\", got \"%.16s\"", mode);
        goto fail;
    }
    f->has_mode = mode != NULL;
    if (owner && !owner_valid(owner, &f->owner_numeric)) {
        rc = vigil__manifest_err(vigil_config_node_get(spec, "owner"), VIGIL_EVALUE,
                                 "expected a user name or a uid, got \"%.40s\"", owner);
        goto fail;
    }
    if (!(f->path = vigil__strdup(path)) || (owner && !(f->owner = vigil__strdup(owner)))) {
        rc = vigil__error_oom();
        goto fail;
    }
    if (source) {
        const vigil_config_node *at = vigil_config_node_get(spec, "source");
        char abs[PATH_MAX];
        if ((rc = vigil_resource_path(ctx, at, source, abs, sizeof(abs))) < 0)
            goto fail;
        if (!(f->source = vigil__strdup(source)) || !(f->source_abs = vigil__strdup(abs))) {
            rc = vigil__error_oom();
            goto fail;
        }
        if ((rc = source_sum(f, at, m->max_source_size)) < 0)
            goto fail;
    } else if (content) {
        f->content_len = strlen(content);
        if (f->content_len > m->max_source_size) {
            rc = vigil__manifest_err(vigil_config_node_get(spec, "content"), VIGIL_ELIMIT,
                                     "content has more than %zu bytes", m->max_source_size);
            goto fail;
        }
        unsigned char sum[32];
        if (!(f->content = vigil__strdup(content))) {
            rc = vigil__error_oom();
            goto fail;
        }
        if (vigil__crypto_sha256(sum, content, f->content_len) < 0) {
            rc = vigil__error_set(VIGIL_ERROR, "sha256 failed");
            goto fail;
        }
        vigil__manifest_hex(f->sha256, sum);
    }
    if (sha && (source || content) && strcmp(sha, f->sha256) != 0) {
        rc = vigil__manifest_err(vigil_config_node_get(spec, "sha256"), VIGIL_EVALUE,
                                 "does not match the sha256 of the %s (%s)",
                                 source ? "source" : "content", f->sha256);
        goto fail;
    }
    if (sha && !source && !content)
        memcpy(f->sha256, sha, 65);
    if ((rc = file_json(f)) < 0)
        goto fail;
    *state = f;
    return VIGIL_OK;
fail:
    file_destroy(f);
    return rc;
}

static const char *file_to_json(const void *state)
{
    return ((const file_spec *)state)->json;
}

static void owner_of(char *out, size_t size, uid_t uid, int numeric)
{
    if (!numeric) {
        struct passwd pw, *res = NULL;
        char buf[1024];
        if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res) {
            snprintf(out, size, "%s", pw.pw_name);
            return;
        }
    }
    snprintf(out, size, "%u", (unsigned)uid);
}

static int file_observe(void **observed, const void *state, const vigil_resource_context *ctx)
{
    const file_spec *f = state;
    const vigil_manifest *m = ctx->type_payload;
    file_obs *o = vigil__calloc(1, sizeof(*o));
    if (!o)
        return vigil__error_oom();
    int fd = open(f->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR) {
            *observed = o;
            return VIGIL_OK;
        }
        if (e == ELOOP) {
            o->exists = 1;
            o->type = "symlink";
            *observed = o;
            return VIGIL_OK;
        }
        vigil__free(o);
        return vigil__error_set(VIGIL_EIO, "cannot open %.200s: %s", f->path, strerror(e));
    }
    o->exists = 1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        vigil__free(o);
        return vigil__error_set(VIGIL_EIO, "cannot stat %.200s: %s", f->path, strerror(e));
    }
    o->mode = (unsigned int)(st.st_mode & 07777);
    owner_of(o->owner, sizeof(o->owner), st.st_uid, f->owner_numeric);
    if (!S_ISREG(st.st_mode)) {
        o->type = S_ISDIR(st.st_mode) ? "directory" : "other";
        close(fd);
        *observed = o;
        return VIGIL_OK;
    }
    int rc = vigil__manifest_sha256_fd(fd, m->max_source_size, o->sha256, NULL);
    close(fd);
    if (rc < 0) {
        vigil__free(o);
        if (rc == VIGIL_ELIMIT)
            return vigil__error_set(VIGIL_ELIMIT, "%.200s is larger than %zu bytes", f->path,
                                    m->max_source_size);
        return vigil__error_set(VIGIL_EIO, "cannot read %.200s", f->path);
    }
    *observed = o;
    return VIGIL_OK;
}

static int file_diff(vigil_resource_diff *d, const void *state, const void *observed,
                     const vigil_resource_context *ctx)
{
    const file_spec *f = state;
    const file_obs *o = observed;
    (void)ctx;
    int rc;
    if (!o->exists) {
        if ((rc = vigil_resource_diff_add(d, "sha256", f->sha256, NULL)) < 0)
            return rc;
        return vigil_resource_diff_status(d, VIGIL_RESOURCE_MISSING);
    }
    if (o->type)
        return vigil_resource_diff_add(d, "type", "file", o->type);
    if (strcmp(f->sha256, o->sha256) != 0 &&
        (rc = vigil_resource_diff_add(d, "sha256", f->sha256, o->sha256)) < 0)
        return rc;
    if (f->has_mode && f->mode != o->mode) {
        char a[8], b[8];
        snprintf(a, sizeof(a), "%04o", f->mode);
        snprintf(b, sizeof(b), "%04o", o->mode);
        if ((rc = vigil_resource_diff_add(d, "mode", a, b)) < 0)
            return rc;
    }
    if (f->owner && strcmp(f->owner, o->owner) != 0 &&
        (rc = vigil_resource_diff_add(d, "owner", f->owner, o->owner)) < 0)
        return rc;
    return VIGIL_OK;
}

static void file_observed_free(void *observed)
{
    vigil__free(observed);
}

static int file_heal(vigil_resource_heal *h, const void *state, const void *observed,
                     const vigil_resource_context *ctx)
{
    const file_spec *f = state;
    (void)observed;
    (void)ctx;
    int rc;
    char mode[8];
    snprintf(mode, sizeof(mode), "%04o", f->mode);
    if ((rc = vigil_resource_heal_set(h, "restore_file", NULL)) < 0 ||
        (rc = vigil_resource_heal_param(h, "path", f->path)) < 0 ||
        (rc = vigil_resource_heal_param(h, "sha256", f->sha256)) < 0 ||
        (f->has_mode && (rc = vigil_resource_heal_param(h, "mode", mode)) < 0) ||
        (f->owner && (rc = vigil_resource_heal_param(h, "owner", f->owner)) < 0))
        return rc;
    return VIGIL_OK;
}

bool vigil__resource_file_blob(const void *state, const char **sha256, const char **source,
                               const char **content, size_t *content_len)
{
    const file_spec *f = state;
    *sha256 = f->sha256;
    *source = f->source_abs;
    *content = f->content;
    *content_len = f->content_len;
    return f->source_abs || f->content;
}

const vigil_resource_type vigil__resource_file = {
    .version = VIGIL_RESOURCE_TYPE_VERSION,
    .name = "File",
    .keys = file_keys,
    .parse = file_parse,
    .to_json = file_to_json,
    .observe = file_observe,
    .diff = file_diff,
    .observed_free = file_observed_free,
    .heal = file_heal,
    .destroy = file_destroy,
};
