/* Built-in collector file: existence, size, age, mode and SHA-256 (lib/crypto). */
#include "collector/coll_int.h"
#include "crypto/crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK 65536

static const char *const file_keys[] = {"path", "sha256", "max_hash_size", NULL};

typedef struct {
    const vigil_collector_context *ctx;
    char *path; /* resolved */
    char *label;
    bool have_expected;
    unsigned char expected[32];
    uint64_t max_hash;
    unsigned char *chunk;
} file_state;

static void file_destroy(void *p)
{
    file_state *s = p;
    vigil__free(s->path);
    vigil__free(s->label);
    vigil__free(s->chunk);
    vigil__free(s);
}

static int file_config(file_state *s, const vigil_config_node *config,
                       const vigil_collector_context *ctx)
{
    const char *path = NULL, *sha = NULL;
    int rc = vigil__coll_require_string(&path, config, "path");
    if (rc != VIGIL_OK)
        return rc;
    if (strlen(path) >= PATH_MAX)
        return vigil_error_set_at(VIGIL_ELIMIT, vigil_config_node_get(config, "path"),
                                  "path too long");
    if ((rc = vigil_config_get_string(&sha, config, "sha256", NULL)) != VIGIL_OK ||
        (rc = vigil_config_get_size(&s->max_hash, config, "max_hash_size", 64u << 20)) != VIGIL_OK)
        return rc;
    if (sha) {
        if (strlen(sha) != 64)
            return vigil_error_set_at(VIGIL_EVALUE, vigil_config_node_get(config, "sha256"),
                                      "expected 64 hexadecimal digits");
        if (vigil__hex_decode(s->expected, sha, 32))
            return vigil_error_set_at(VIGIL_EVALUE, vigil_config_node_get(config, "sha256"),
                                      "expected 64 hexadecimal digits");
        s->have_expected = true;
    }
    const char *label = ctx->name ? ctx->name : path;
    if (strlen(label) > VIGIL_METRIC_TAG_VALUE_MAX)
        return vigil_error_set_at(VIGIL_ELIMIT, vigil_config_node_get(config, "path"),
                                  "too long to be a tag value; set name");
    if (!(s->label = vigil__strdup(label)))
        return vigil__error_oom();
    if (!(s->path = vigil__coll_resolve(ctx->base_dir, path)))
        return VIGIL_ENOMEM;
    if (s->have_expected && !(s->chunk = vigil__malloc(CHUNK)))
        return vigil__error_oom();
    return VIGIL_OK;
}

static int file_create(void **state, const vigil_config_node *config,
                       const vigil_collector_context *ctx)
{
    file_state *s = vigil__calloc(1, sizeof(*s));
    if (!s)
        return vigil__error_oom();
    s->ctx = ctx;
    int rc = file_config(s, config, ctx);
    if (rc != VIGIL_OK) {
        file_destroy(s);
        return rc;
    }
    *state = s;
    return VIGIL_OK;
}

/* Hashes the file; on failure writes a reason into err and returns false. */
static bool hash_file(file_state *s, unsigned char digest[32], char *err, size_t err_size)
{
    int fd = open(s->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        snprintf(err, err_size, "cannot open: %s", strerror(errno));
        return false;
    }
    struct stat st;
    bool ok = fstat(fd, &st) == 0;
    if (!ok)
        snprintf(err, err_size, "fstat: %s", strerror(errno));
    else if (!S_ISREG(st.st_mode)) {
        snprintf(err, err_size, "not a regular file");
        ok = false;
    } else if ((uint64_t)st.st_size > s->max_hash) {
        snprintf(err, err_size, "larger than max_hash_size (%llu bytes)",
                 (unsigned long long)s->max_hash);
        ok = false;
    }
    vigil__crypto_sha256_ctx sha;
    uint64_t total = 0;
    bool started = ok;
    if (ok && vigil__crypto_sha256_start(&sha) != VIGIL_OK) {
        snprintf(err, err_size, "sha256 init failed");
        ok = false;
    }
    while (ok) {
        ssize_t n = read(fd, s->chunk, CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, err_size, "read: %s", strerror(errno));
            ok = false;
            break;
        }
        if (n == 0)
            break;
        total += (uint64_t)n;
        if (total > s->max_hash) { /* grew while reading */
            snprintf(err, err_size, "larger than max_hash_size (%llu bytes)",
                     (unsigned long long)s->max_hash);
            ok = false;
            break;
        }
        if (vigil__crypto_sha256_update(&sha, s->chunk, (size_t)n) != VIGIL_OK) {
            snprintf(err, err_size, "sha256 update failed");
            ok = false;
        }
    }
    if (ok && vigil__crypto_sha256_finish(&sha, digest) != VIGIL_OK) {
        snprintf(err, err_size, "sha256 finish failed");
        ok = false;
    }
    if (started)
        vigil__crypto_sha256_free(&sha);
    close(fd);
    return ok;
}

static int file_collect(void *p, vigil_batch *out, int64_t now_ms)
{
    file_state *s = p;
    struct stat st;
    const char *L = s->label;
    int rc;
    if (stat(s->path, &st) != 0) {
        if (errno != ENOENT && errno != ENOTDIR)
            return vigil__error_set(VIGIL_EIO, "stat %s: %s", s->path, strerror(errno));
        if ((rc = vigil__coll_emit1(out, "file_exists", 0, now_ms, "file", L)) != VIGIL_OK)
            return rc;
        if (s->have_expected)
            return vigil__coll_emit1(out, "file_sha256_ok", 0, now_ms, "file", L);
        return VIGIL_OK;
    }
    double mtime_ms = (double)st.st_mtim.tv_sec * 1000.0 + (double)st.st_mtim.tv_nsec / 1e6;
    double age = ((double)now_ms - mtime_ms) / 1000.0;
    if ((rc = vigil__coll_emit1(out, "file_exists", 1, now_ms, "file", L)) ||
        (rc = vigil__coll_emit1(out, "file_size_bytes", (double)st.st_size, now_ms, "file", L)) ||
        (rc = vigil__coll_emit1(out, "file_age_seconds", age > 0 ? age : 0, now_ms, "file", L)) ||
        (rc = vigil__coll_emit1(out, "file_mode", (double)(st.st_mode & 07777), now_ms, "file", L)))
        return rc;
    if (!s->have_expected)
        return VIGIL_OK;
    unsigned char digest[32];
    char err[256];
    bool ok = hash_file(s, digest, err, sizeof(err));
    if (!ok) {
        vigil_tag t = {"file", L};
        vigil_metric m = {"file_sha256_ok", NAN, now_ms, &t, 1, err};
        return vigil_batch_add(out, &m);
    }
    return vigil__coll_emit1(out, "file_sha256_ok", memcmp(digest, s->expected, 32) == 0 ? 1 : 0,
                             now_ms, "file", L);
}

const vigil_collector_type vigil__collector_file = {
    .version = VIGIL_COLLECTOR_TYPE_VERSION,
    .name = "file",
    .keys = file_keys,
    .create = file_create,
    .collect = file_collect,
    .destroy = file_destroy,
};
