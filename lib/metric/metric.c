/* The metric model: validation and the canonical series key. */
#include "metric/metric_int.h"

#include <math.h>
#include <stdio.h>

int vigil__metric_check_name(const char *s, size_t len, const vigil__json_path *path,
                             const char *what)
{
    char shown[512] = "";
    if (len > VIGIL_METRIC_NAME_MAX)
        return vigil__error_set(VIGIL_ELIMIT, "%s: %s longer than %d bytes (%zu)",
                                vigil__json_path_str(path), what, VIGIL_METRIC_NAME_MAX, len);
    if (vigil__metric_name_chars(s, len))
        return VIGIL_OK;
    vigil__json_quote_clip(shown, sizeof(shown), s, len);
    return vigil__error_set(VIGIL_ENAME, "%s: invalid %s %s (expected [a-zA-Z_:][a-zA-Z0-9_:]*)",
                            vigil__json_path_str(path), what, shown);
}

int vigil_metric_name_valid(const char *name)
{
    if (!name)
        return 0;
    size_t len = strnlen(name, VIGIL_METRIC_NAME_MAX + 1);
    return len <= VIGIL_METRIC_NAME_MAX && vigil__metric_name_chars(name, len);
}

void vigil__metric_sort_tags(vigil_tag *tags, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        vigil_tag t = tags[i];
        size_t j = i;
        while (j > 0 && strcmp(tags[j - 1].key, t.key) > 0) {
            tags[j] = tags[j - 1];
            j--;
        }
        tags[j] = t;
    }
}

/* Checks a text (tag value, error) of len bytes: at most max bytes, UTF-8. */
static int check_text(const char *s, size_t max, const vigil__json_path *path, const char *what)
{
    size_t len = strnlen(s, max + 1);
    if (len > max)
        return vigil__error_set(VIGIL_ELIMIT, "%s: %s longer than %zu bytes",
                                vigil__json_path_str(path), what, max);
    if (!vigil__utf8_valid(s, len))
        return vigil__error_set(VIGIL_EENCODING, "%s: %s is not valid UTF-8",
                                vigil__json_path_str(path), what);
    return VIGIL_OK;
}

int vigil_metric_validate(const vigil_metric *m)
{
    vigil__json_path path;
    int rc;
    if (!m)
        return vigil__error_set(VIGIL_EINVAL, "metric is NULL");
    vigil__json_path_init(&path);
    vigil__json_path_key(&path, "name", 4);
    if (!m->name)
        return vigil__error_set(VIGIL_EINVAL, "name: is NULL");
    size_t nlen = strnlen(m->name, VIGIL_METRIC_NAME_MAX + 1);
    if ((rc = vigil__metric_check_name(m->name, nlen, &path, "metric name")) != VIGIL_OK)
        return rc;
    if (m->ts_ms < 0 || m->ts_ms > VIGIL__METRIC_TS_MAX)
        return vigil__error_set(VIGIL_EVALUE, "ts: expected milliseconds from 0 to %lld, got %lld",
                                (long long)VIGIL__METRIC_TS_MAX, (long long)m->ts_ms);
    if (m->error) {
        vigil__json_path_init(&path);
        vigil__json_path_key(&path, "error", 5);
        if (!m->error[0])
            return vigil__error_set(VIGIL_EVALUE, "error: expected a non-empty text");
        if ((rc = check_text(m->error, VIGIL_METRIC_ERROR_MAX, &path, "error text")) != VIGIL_OK)
            return rc;
    } else if (!isfinite(m->value)) {
        return vigil__error_set(VIGIL_EVALUE, "value: expected a finite number, got %s",
                                isnan(m->value) ? "NaN" : "an infinity");
    }
    if (m->ntags > VIGIL_METRIC_TAGS_MAX)
        return vigil__error_set(VIGIL_ELIMIT, "tags: more than %d tags (%zu)",
                                VIGIL_METRIC_TAGS_MAX, m->ntags);
    if (m->ntags && !m->tags)
        return vigil__error_set(VIGIL_EINVAL, "tags: NULL with ntags %zu", m->ntags);
    const char *keys[VIGIL_METRIC_TAGS_MAX];
    for (size_t i = 0; i < m->ntags; i++) {
        const vigil_tag *t = &m->tags[i];
        if (!t->key || !t->value)
            return vigil__error_set(VIGIL_EINVAL, "tags[%zu]: %s is NULL", i,
                                    t->key ? "value" : "key");
        size_t klen = strnlen(t->key, VIGIL_METRIC_NAME_MAX + 1);
        vigil__json_path_init(&path);
        vigil__json_path_key(&path, "tags", 4);
        vigil__json_path_key(&path, t->key, klen);
        if ((rc = vigil__metric_check_name(t->key, klen, &path, "tag key")) != VIGIL_OK)
            return rc;
        if ((rc = check_text(t->value, VIGIL_METRIC_TAG_VALUE_MAX, &path, "tag value")) != VIGIL_OK)
            return rc;
        /* Insertion into a sorted list of keys finds duplicates. */
        size_t j = i;
        while (j > 0 && strcmp(keys[j - 1], t->key) > 0) {
            keys[j] = keys[j - 1];
            j--;
        }
        if (j > 0 && strcmp(keys[j - 1], t->key) == 0)
            return vigil__error_set(VIGIL_EINVAL, "%s: duplicate tag key",
                                    vigil__json_path_str(&path));
        keys[j] = t->key;
    }
    return VIGIL_OK;
}

int vigil_metric_series_key(vigil_buf *out, const vigil_metric *m)
{
    const vigil_tag *sorted[VIGIL_METRIC_TAGS_MAX];
    if (!out)
        return vigil__error_set(VIGIL_EINVAL, "series key: output buffer is NULL");
    vigil__buf_clear(out);
    if (!m || !m->name)
        return vigil__error_set(VIGIL_EINVAL, "series key: metric or name is NULL");
    if (m->ntags > VIGIL_METRIC_TAGS_MAX || (m->ntags && !m->tags))
        return vigil__error_set(VIGIL_EINVAL, "series key: tags: expected at most %d tags",
                                VIGIL_METRIC_TAGS_MAX);
    size_t nlen = strlen(m->name), need = nlen + 2;
    for (size_t i = 0; i < m->ntags; i++) {
        const vigil_tag *t = &m->tags[i];
        if (!t->key || !t->value)
            return vigil__error_set(VIGIL_EINVAL, "series key: tags[%zu]: %s is NULL", i,
                                    t->key ? "value" : "key");
        size_t j = i;
        while (j > 0 && strcmp(sorted[j - 1]->key, t->key) > 0) {
            sorted[j] = sorted[j - 1];
            j--;
        }
        sorted[j] = t;
        need += strlen(t->key) + 2 * strlen(t->value) + 4;
    }
    int rc = vigil__buf_grow(out, need);
    if (rc)
        return rc;
    char *p = out->ptr;
    memcpy(p, m->name, nlen);
    p += nlen;
    if (m->ntags) {
        *p++ = '{';
        for (size_t i = 0; i < m->ntags; i++) {
            if (i)
                *p++ = ',';
            size_t kl = strlen(sorted[i]->key);
            memcpy(p, sorted[i]->key, kl);
            p += kl;
            *p++ = '=';
            *p++ = '"';
            for (const char *v = sorted[i]->value; *v; v++) {
                switch (*v) {
                case '\\':
                    *p++ = '\\';
                    *p++ = '\\';
                    break;
                case '"':
                    *p++ = '\\';
                    *p++ = '"';
                    break;
                case '\n':
                    *p++ = '\\';
                    *p++ = 'n';
                    break;
                default: *p++ = *v;
                }
            }
            *p++ = '"';
        }
        *p++ = '}';
    }
    *p = '\0';
    out->size = (size_t)(p - out->ptr);
    return VIGIL_OK;
}
