#include "collector/coll_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int vigil__coll_read_file(vigil_buf *out, const char *path, size_t max)
{
    vigil__buf_clear(out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        vigil__error_set(VIGIL_EIO, "cannot open %s: %s", path, strerror(e));
        errno = e;
        return VIGIL_EIO;
    }
    int rc = VIGIL_OK;
    for (;;) {
        if (vigil__buf_grow(out, 4096) != VIGIL_OK) {
            rc = VIGIL_ENOMEM;
            break;
        }
        size_t room = out->asize - out->size - 1;
        ssize_t n = read(fd, out->ptr + out->size, room);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            rc = vigil__error_set(VIGIL_EIO, "cannot read %s: %s", path, strerror(e));
            errno = e;
            break;
        }
        if (n == 0)
            break;
        out->size += (size_t)n;
        out->ptr[out->size] = '\0';
        if (out->size > max) {
            rc = vigil__error_set(VIGIL_ELIMIT, "%s is larger than %zu bytes", path, max);
            break;
        }
    }
    close(fd);
    return rc;
}

int vigil__coll_path(char *buf, size_t size, const char *root, const char *rel)
{
    int n = snprintf(buf, size, "%s/%s", root, rel);
    if (n < 0 || (size_t)n >= size)
        return vigil__error_set(VIGIL_ELIMIT, "path %s/%s is too long", root, rel);
    return VIGIL_OK;
}

int vigil__coll_read_proc(vigil_buf *out, char *path, size_t size, const char *root,
                          const char *rel)
{
    int rc = vigil__coll_path(path, size, root, rel);
    return rc ? rc : vigil__coll_read_file(out, path, VIGIL__COLL_PROC_MAX);
}

char *vigil__coll_resolve(const char *base_dir, const char *path)
{
    if (path[0] == '/') {
        char *s = vigil__strdup(path);
        if (!s)
            vigil__error_oom();
        return s;
    }
    vigil_buf b = VIGIL_BUF_INIT;
    if (vigil__buf_printf(&b, "%s/%s", base_dir, path) != VIGIL_OK) {
        vigil_buf_dispose(&b);
        vigil__error_oom();
        return NULL;
    }
    return vigil__buf_detach(&b);
}

int vigil__coll_emit(vigil_batch *out, const char *name, double value, int64_t ts,
                     const vigil_tag *tags, size_t ntags)
{
    vigil_metric m = {name, value, ts, tags, ntags, NULL};
    return vigil_batch_add(out, &m);
}

int vigil__coll_emit1(vigil_batch *out, const char *name, double value, int64_t ts, const char *key,
                      const char *tag_value)
{
    vigil_tag t = {key, tag_value};
    return vigil__coll_emit(out, name, value, ts, &t, 1);
}

int vigil__coll_parse_u64(const char **p, uint64_t *out)
{
    const char *s = *p;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s < '0' || *s > '9')
        return 0;
    uint64_t v = 0;
    while (*s >= '0' && *s <= '9') {
        uint64_t d = (uint64_t)(*s - '0');
        v = (v > (UINT64_MAX - d) / 10) ? UINT64_MAX : v * 10 + d;
        s++;
    }
    *out = v;
    *p = s;
    return 1;
}

void vigil__coll_free_string_list(char **list)
{
    if (!list)
        return;
    for (char **p = list; *p; p++)
        vigil__free(*p);
    vigil__free(list);
}

int vigil__coll_get_string_list(char ***out, const vigil_config_node *map, const char *key,
                                size_t max_items, size_t max_len)
{
    *out = NULL;
    const vigil_config_node *n = vigil_config_node_get(map, key);
    if (!n || vigil_config_node_kind(n) == VIGIL_CONFIG_NULL)
        return VIGIL_OK;
    int rc = vigil_config_list(n);
    if (rc != VIGIL_OK)
        return rc;
    size_t len = vigil_config_node_len(n);
    if (len > max_items)
        return vigil_error_set_at(VIGIL_ELIMIT, n, "too many items");
    char **list = vigil__calloc(len + 1, sizeof(char *));
    if (!list)
        return vigil__error_oom();
    for (size_t i = 0; i < len; i++) {
        const vigil_config_node *item = vigil_config_node_at(n, i);
        const char *s = NULL;
        rc = vigil_config_string(&s, item);
        if (rc == VIGIL_OK && (s[0] == '\0' || strlen(s) > max_len))
            rc = vigil_error_set_at(VIGIL_EVALUE, item,
                                    s[0] ? "string is too long" : "expected a non-empty string");
        if (rc == VIGIL_OK && !(list[i] = vigil__strdup(s)))
            rc = vigil__error_oom();
        if (rc != VIGIL_OK) {
            vigil__coll_free_string_list(list);
            return rc;
        }
    }
    *out = list;
    return VIGIL_OK;
}

bool vigil__coll_list_has(char *const *list, const char *s)
{
    if (!list)
        return false;
    for (; *list; list++)
        if (strcmp(*list, s) == 0)
            return true;
    return false;
}

int vigil__coll_require_string(const char **out, const vigil_config_node *map, const char *key)
{
    int rc = vigil_config_require(map, key);
    if (rc != VIGIL_OK)
        return rc;
    const vigil_config_node *n = vigil_config_node_get(map, key);
    rc = vigil_config_string(out, n);
    if (rc != VIGIL_OK)
        return rc;
    if ((*out)[0] == '\0')
        return vigil_error_set_at(VIGIL_EVALUE, n, "expected a non-empty string");
    return VIGIL_OK;
}

double vigil__coll_elapsed_s(int64_t prev_ms, int64_t now_ms)
{
    if (now_ms <= prev_ms)
        return 0.0;
    return (double)(now_ms - prev_ms) / 1000.0;
}

double vigil__coll_mono_ms(void)
{
    return (double)vigil__monotonic_ns() / 1e6;
}
