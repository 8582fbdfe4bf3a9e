/* Observe and diff every resource into a drift report; the bodies gitopsd
 * publishes (PUT /v1/desired, PUT /v1/policies, POST /v1/drift); the blobs
 * of File resources. */
#include "crypto/crypto.h"
#include "internal/json.h"
#include "manifest/manifest_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct drift_item {
    char *target, *kind, *name;
    vigil_resource_status status;
    int self_heal;
    vigil__diff_ent *diff;
    size_t ndiff;
    char *error;
    char *heal_json;
    char *item_json;
} drift_item;

struct vigil_drift {
    char *host;
    int64_t observed_ms;
    drift_item *v;
    size_t n;
    size_t drifted, errors;
};

static int put_kv_str(vigil_buf *b, bool *first, const char *k, const char *v)
{
    int rc = vigil__manifest_json_key(b, first, k);
    return rc < 0 ? rc : vigil__manifest_json_str(b, v);
}

static int revision_check(const char *revision)
{
    if (!revision)
        return vigil__error_set(VIGIL_EINVAL, "revision is NULL");
    if (strlen(revision) > VIGIL__MANIFEST_REVISION_MAX)
        return vigil__error_set(VIGIL_ELIMIT, "a revision has at most %d bytes",
                                VIGIL__MANIFEST_REVISION_MAX);
    return VIGIL_OK;
}

/* ---- desired and policies bodies ------------------------------------------- */

static int body_head(vigil_buf *out, const char *host, const char *revision, const char *list)
{
    int rc;
    bool first = true;
    vigil__buf_clear(out);
    if ((rc = vigil__buf_putc(out, '{')) < 0 ||
        (rc = put_kv_str(out, &first, "source", host)) < 0 ||
        (rc = put_kv_str(out, &first, "revision", revision)) < 0 ||
        (rc = vigil__manifest_json_key(out, &first, list)) < 0)
        return rc;
    return vigil__buf_putc(out, '[');
}

static int body_args(const vigil_manifest *m, const char *host, const char *revision,
                     vigil_buf *out)
{
    if (!m || !out)
        return vigil__error_set(VIGIL_EINVAL, "NULL manifest or output buffer");
    int rc = vigil__manifest_host_check(host);
    return rc < 0 ? rc : revision_check(revision);
}

int vigil_manifest_desired_body(const vigil_manifest *m, const char *host, const char *revision,
                                vigil_buf *out)
{
    int rc = body_args(m, host, revision, out);
    if (rc < 0 || (rc = body_head(out, host, revision, "resources")) < 0)
        return rc;
    bool firstres = true;
    for (size_t i = 0; i < m->n; i++) {
        const vigil_resource *r = &m->res[i];
        if (r->type == &vigil__resource_policy)
            continue;
        bool first = true;
        if ((!firstres && (rc = vigil__buf_putc(out, ',')) < 0) ||
            (rc = vigil__buf_putc(out, '{')) < 0 ||
            (rc = vigil__manifest_json_key(out, &first, "target")) < 0 ||
            (rc = vigil__buf_putc(out, '"')) < 0)
            return rc;
        firstres = false;
        /* host is checked, kind is [A-Z][A-Za-z0-9]*, name [a-z0-9.-]: no escape needed
         * but for the host, which may hold any printable byte */
        vigil_buf t = VIGIL_BUF_INIT;
        if ((rc = vigil__buf_printf(&t, "%s/%s/%s", host, r->kind, r->name)) < 0) {
            vigil_buf_dispose(&t);
            return rc;
        }
        out->size--; /* drop the opening quote: put_string writes its own */
        rc = vigil__json_put_string(out, t.ptr, t.size);
        vigil_buf_dispose(&t);
        if (rc < 0 || (rc = put_kv_str(out, &first, "kind", r->kind)) < 0 ||
            (rc = put_kv_str(out, &first, "name", r->name)) < 0 ||
            (rc = vigil__manifest_json_key(out, &first, "labels")) < 0 ||
            (rc = vigil__buf_putc(out, '{')) < 0)
            return rc;
        bool fl = true;
        for (size_t j = 0; j < r->nlabels; j++)
            if ((rc = put_kv_str(out, &fl, r->label_keys[j], r->label_values[j])) < 0)
                return rc;
        if ((rc = vigil__buf_putc(out, '}')) < 0 ||
            (rc = vigil__manifest_json_key(out, &first, "selfHeal")) < 0 ||
            (rc = vigil__buf_puts(out, r->self_heal ? "true" : "false")) < 0 ||
            (rc = vigil__manifest_json_key(out, &first, "spec")) < 0 ||
            (rc = vigil__buf_puts(out, r->spec_json)) < 0 || (rc = vigil__buf_putc(out, '}')) < 0)
            return rc;
    }
    return vigil__buf_puts(out, "]}");
}

size_t vigil_manifest_policy_count(const vigil_manifest *m)
{
    size_t n = 0;
    for (size_t i = 0; m && i < m->n; i++)
        n += m->res[i].type == &vigil__resource_policy;
    return n;
}

int vigil_manifest_policies_body(const vigil_manifest *m, const char *host, const char *revision,
                                 vigil_buf *out)
{
    int rc = body_args(m, host, revision, out);
    if (rc < 0 || (rc = body_head(out, host, revision, "policies")) < 0)
        return rc;
    bool first = true;
    for (size_t i = 0; i < m->n; i++) {
        if (m->res[i].type != &vigil__resource_policy)
            continue;
        if ((!first && (rc = vigil__buf_putc(out, ',')) < 0) ||
            (rc = vigil__buf_puts(out, m->res[i].spec_json)) < 0)
            return rc;
        first = false;
    }
    return vigil__buf_puts(out, "]}");
}

/* ---- observe ----------------------------------------------------------------- */

static void item_dispose(drift_item *it)
{
    for (size_t i = 0; i < it->ndiff; i++) {
        vigil__free(it->diff[i].field);
        vigil__free(it->diff[i].desired);
        vigil__free(it->diff[i].observed);
    }
    vigil__free(it->diff);
    vigil__free(it->target);
    vigil__free(it->kind);
    vigil__free(it->name);
    vigil__free(it->error);
    vigil__free(it->heal_json);
    vigil__free(it->item_json);
}

void vigil_drift_free(vigil_drift *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++)
        item_dispose(&d->v[i]);
    vigil__free(d->v);
    vigil__free(d->host);
    vigil__free(d);
}

static int heal_json(char **out, const vigil_resource_heal *h, const char *target)
{
    vigil_buf b = VIGIL_BUF_INIT;
    bool first = true, fp = true;
    int rc = vigil__buf_putc(&b, '{');
    if (rc >= 0)
        rc = put_kv_str(&b, &first, "action", h->action);
    if (rc >= 0)
        rc = put_kv_str(&b, &first, "target", h->target ? h->target : target);
    if (rc >= 0 && (rc = vigil__manifest_json_key(&b, &first, "params")) >= 0)
        rc = vigil__buf_putc(&b, '{');
    for (size_t i = 0; rc >= 0 && i < h->n; i++)
        rc = put_kv_str(&b, &fp, h->keys[i], h->values[i]);
    if (rc >= 0)
        rc = vigil__buf_puts(&b, "}}");
    if (rc < 0) {
        vigil_buf_dispose(&b);
        return rc;
    }
    *out = vigil__buf_detach(&b);
    return *out ? VIGIL_OK : vigil__error_oom();
}

static int item_json(drift_item *it)
{
    vigil_buf b = VIGIL_BUF_INIT;
    bool first = true;
    int rc = vigil__buf_putc(&b, '{');
    if (rc >= 0)
        rc = put_kv_str(&b, &first, "target", it->target);
    if (rc >= 0)
        rc = put_kv_str(&b, &first, "kind", it->kind);
    if (rc >= 0)
        rc = put_kv_str(&b, &first, "name", it->name);
    if (rc >= 0)
        rc = put_kv_str(&b, &first, "status", vigil_resource_status_name(it->status));
    if (rc >= 0 && (rc = vigil__manifest_json_key(&b, &first, "selfHeal")) >= 0)
        rc = vigil__buf_puts(&b, it->self_heal ? "true" : "false");
    if (rc >= 0 && (rc = vigil__manifest_json_key(&b, &first, "diff")) >= 0)
        rc = vigil__buf_putc(&b, '[');
    for (size_t i = 0; rc >= 0 && i < it->ndiff; i++) {
        bool f = true;
        if ((i && (rc = vigil__buf_putc(&b, ',')) < 0) || (rc = vigil__buf_putc(&b, '{')) < 0 ||
            (rc = put_kv_str(&b, &f, "field", it->diff[i].field)) < 0 ||
            (rc = vigil__manifest_json_key(&b, &f, "desired")) < 0 ||
            (rc = vigil__buf_puts(&b, it->diff[i].desired)) < 0 ||
            (rc = vigil__manifest_json_key(&b, &f, "observed")) < 0 ||
            (rc = vigil__buf_puts(&b, it->diff[i].observed)) < 0)
            break;
        rc = vigil__buf_putc(&b, '}');
    }
    if (rc >= 0)
        rc = vigil__buf_putc(&b, ']');
    if (rc >= 0 && it->error)
        rc = put_kv_str(&b, &first, "error", it->error);
    if (rc >= 0 && it->heal_json && (rc = vigil__manifest_json_key(&b, &first, "heal")) >= 0)
        rc = vigil__buf_puts(&b, it->heal_json);
    if (rc >= 0)
        rc = vigil__buf_putc(&b, '}');
    if (rc < 0) {
        vigil_buf_dispose(&b);
        return rc;
    }
    it->item_json = vigil__buf_detach(&b);
    return it->item_json ? VIGIL_OK : vigil__error_oom();
}

/* A message for an error item: the callback's, or the code's. */
static char *error_text(int rc)
{
    const vigil_error *e = vigil_error_last();
    const char *msg = e->code == rc && e->message[0] ? e->message : vigil_strerror(rc);
    return vigil__strdup(msg);
}

static int observe_one(const vigil_manifest *m, const vigil_resource *r, const char *host,
                       drift_item *it)
{
    const vigil_resource_type *t = r->type;
    vigil_buf tb = VIGIL_BUF_INIT;
    int rc = vigil__buf_printf(&tb, "%s/%s/%s", host, r->kind, r->name);
    if (rc < 0) {
        vigil_buf_dispose(&tb);
        return rc;
    }
    it->target = vigil__buf_detach(&tb);
    if (!it->target || !(it->kind = vigil__strdup(r->kind)) || !(it->name = vigil__strdup(r->name)))
        return vigil__error_oom();
    it->self_heal = r->self_heal;
    vigil_resource_context ctx;
    vigil__manifest_context(m, t, r->kind, r->name, r->file, &ctx);
    void *obs = NULL;
    vigil_resource_diff d;
    memset(&d, 0, sizeof(d));
    d.status = -1;
    rc = t->observe(&obs, r->state, &ctx);
    if (rc >= 0)
        rc = t->diff(&d, r->state, obs, &ctx);
    if (rc < 0) {
        if (rc == VIGIL_ENOMEM) {
            if (obs && t->observed_free)
                t->observed_free(obs);
            vigil__resource_diff_dispose(&d);
            return rc;
        }
        it->status = VIGIL_RESOURCE_ERROR;
        if (!(it->error = error_text(rc))) {
            if (obs && t->observed_free)
                t->observed_free(obs);
            vigil__resource_diff_dispose(&d);
            return vigil__error_oom();
        }
        vigil__resource_diff_dispose(&d); /* a failed diff reports no fields */
    } else {
        it->status = d.status >= 0 ? (vigil_resource_status)d.status
                                   : (d.n ? VIGIL_RESOURCE_DRIFTED : VIGIL_RESOURCE_IN_SYNC);
        it->diff = d.v;
        it->ndiff = d.n;
        d.v = NULL;
        d.n = 0;
    }
    if (it->self_heal && t->heal &&
        (it->status == VIGIL_RESOURCE_DRIFTED || it->status == VIGIL_RESOURCE_MISSING)) {
        vigil_resource_heal h;
        memset(&h, 0, sizeof(h));
        rc = t->heal(&h, r->state, obs, &ctx);
        if (rc < 0)
            vigil__log(&m->logger, VIGIL_LOG_WARN, "manifest", "cannot tell how to heal",
                       "target=%s error=\"%s\"", it->target, vigil_error_last()->message);
        else if (h.action && (rc = heal_json(&it->heal_json, &h, it->target)) < 0) {
            vigil__resource_heal_dispose(&h);
            if (obs && t->observed_free)
                t->observed_free(obs);
            return rc;
        }
        vigil__resource_heal_dispose(&h);
    }
    if (obs && t->observed_free)
        t->observed_free(obs);
    return item_json(it);
}

int vigil_manifest_observe(vigil_drift **out, const vigil_manifest *m, const char *host)
{
    if (out)
        *out = NULL;
    if (!out || !m)
        return vigil__error_set(VIGIL_EINVAL, "vigil_manifest_observe: NULL argument");
    int rc = vigil__manifest_host_check(host);
    if (rc < 0)
        return rc;
    vigil_drift *d = vigil__calloc(1, sizeof(*d));
    if (!d || !(d->host = vigil__strdup(host)) ||
        (m->n && !(d->v = vigil__calloc(m->n, sizeof(*d->v))))) {
        vigil_drift_free(d);
        return vigil__error_oom();
    }
    d->observed_ms = m->clock(m->clock_payload);
    for (size_t i = 0; i < m->n; i++) {
        const vigil_resource *r = &m->res[i];
        if (!r->type->observe)
            continue;
        drift_item *it = &d->v[d->n++];
        if ((rc = observe_one(m, r, host, it)) < 0) {
            vigil_drift_free(d);
            return rc;
        }
        d->drifted += it->status == VIGIL_RESOURCE_DRIFTED || it->status == VIGIL_RESOURCE_MISSING;
        d->errors += it->status == VIGIL_RESOURCE_ERROR;
    }
    *out = d;
    return VIGIL_OK;
}

size_t vigil_drift_count(const vigil_drift *d)
{
    return d ? d->n : 0;
}

size_t vigil_drift_drifted(const vigil_drift *d)
{
    return d ? d->drifted : 0;
}

size_t vigil_drift_errors(const vigil_drift *d)
{
    return d ? d->errors : 0;
}

int64_t vigil_drift_observed_ms(const vigil_drift *d)
{
    return d ? d->observed_ms : 0;
}

int vigil_drift_item_at(const vigil_drift *d, size_t index, vigil_drift_item *out)
{
    if (!d || !out)
        return vigil__error_set(VIGIL_EINVAL, "vigil_drift_item_at: NULL argument");
    int rc = vigil__version_check("drift item", out->version, VIGIL_DRIFT_ITEM_VERSION);
    if (rc < 0)
        return rc;
    if (index >= d->n)
        return vigil__error_set(VIGIL_ENOTFOUND, "no drift item %zu (the report has %zu)", index,
                                d->n);
    const drift_item *it = &d->v[index];
    out->target = it->target;
    out->kind = it->kind;
    out->name = it->name;
    out->status = it->status;
    out->self_heal = it->self_heal;
    out->diff_count = it->ndiff;
    out->error = it->error;
    out->heal_json = it->heal_json;
    out->item_json = it->item_json;
    return VIGIL_OK;
}

int vigil_drift_diff_at(const vigil_drift *d, size_t item, size_t index, const char **field,
                        const char **desired_json, const char **observed_json)
{
    if (!d || !field || !desired_json || !observed_json)
        return vigil__error_set(VIGIL_EINVAL, "vigil_drift_diff_at: NULL argument");
    if (item >= d->n || index >= d->v[item].ndiff)
        return vigil__error_set(VIGIL_ENOTFOUND, "no diff entry %zu of item %zu", index, item);
    const vigil__diff_ent *e = &d->v[item].diff[index];
    *field = e->field;
    *desired_json = e->desired;
    *observed_json = e->observed;
    return VIGIL_OK;
}

int vigil_drift_body(const vigil_drift *d, const char *revision, vigil_buf *out)
{
    if (!d || !out)
        return vigil__error_set(VIGIL_EINVAL, "vigil_drift_body: NULL argument");
    int rc = revision_check(revision);
    bool first = true;
    if (rc < 0)
        return rc;
    vigil__buf_clear(out);
    if ((rc = vigil__buf_putc(out, '{')) < 0 ||
        (rc = put_kv_str(out, &first, "source", d->host)) < 0 ||
        (rc = put_kv_str(out, &first, "revision", revision)) < 0 ||
        (rc = vigil__manifest_json_key(out, &first, "observed")) < 0 ||
        (rc = vigil__json_put_int64(out, d->observed_ms)) < 0 ||
        (rc = vigil__manifest_json_key(out, &first, "items")) < 0 ||
        (rc = vigil__buf_putc(out, '[')) < 0)
        return rc;
    for (size_t i = 0; i < d->n; i++)
        if ((i && (rc = vigil__buf_putc(out, ',')) < 0) ||
            (rc = vigil__buf_puts(out, d->v[i].item_json)) < 0)
            return rc;
    return vigil__buf_puts(out, "]}");
}

/* ---- blobs ------------------------------------------------------------------- */

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Copies the source (or content) into a temporary file of dir (its name in
 * tmp, PATH_MAX bytes), checking the sha256 of what was written. The caller
 * makes the data durable and renames it to dir/sha256. */
static int write_blob(const vigil_manifest *m, const char *dir, const char *sha, const char *source,
                      const char *content, size_t content_len, char *tmp)
{
    if ((size_t)snprintf(tmp, PATH_MAX, "%s/.%s.XXXXXX", dir, sha) >= PATH_MAX)
        return vigil__error_set(VIGIL_EINVAL, "blob directory path too long");
    int in = -1;
    if (source && (in = open(source, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)) < 0)
        return vigil__error_set(VIGIL_EIO, "cannot open %.200s: %s", source, strerror(errno));
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        if (in >= 0)
            close(in);
        return vigil__error_set(VIGIL_EIO, "cannot create a file in %.200s: %s", dir, strerror(e));
    }
    int rc = VIGIL_OK;
    vigil__crypto_sha256_ctx c;
    unsigned char sum[32];
    char hex[65];
    char buf[65536];
    size_t total = 0;
    vigil__crypto_sha256_start(&c);
    if (in < 0) {
        if (write_all(fd, content, content_len) < 0)
            rc = vigil__error_set(VIGIL_EIO, "cannot write %.200s: %s", tmp, strerror(errno));
        vigil__crypto_sha256_update(&c, content, content_len);
    } else {
        for (;;) {
            ssize_t n = read(in, buf, sizeof(buf));
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                rc = vigil__error_set(VIGIL_EIO, "cannot read %.200s: %s", source, strerror(errno));
                break;
            }
            if (n == 0)
                break;
            total += (size_t)n;
            if (total > m->max_source_size) {
                rc = vigil__error_set(VIGIL_ECORRUPT,
                                      "%.200s grew beyond %zu bytes since the "
                                      "load",
                                      source, m->max_source_size);
                break;
            }
            vigil__crypto_sha256_update(&c, buf, (size_t)n);
            if (write_all(fd, buf, (size_t)n) < 0) {
                rc = vigil__error_set(VIGIL_EIO, "cannot write %.200s: %s", tmp, strerror(errno));
                break;
            }
        }
        close(in);
    }
    vigil__crypto_sha256_finish(&c, sum);
    vigil__crypto_sha256_free(&c);
    vigil__manifest_hex(hex, sum);
    if (rc == VIGIL_OK && strcmp(hex, sha) != 0)
        rc = vigil__error_set(VIGIL_ECORRUPT,
                              "%.200s changed since the load (sha256 %s, expected %s)",
                              source ? source : "content", hex, sha);
    if (rc == VIGIL_OK && fchmod(fd, 0644) != 0)
        rc = vigil__error_set(VIGIL_EIO, "cannot chmod %.200s: %s", tmp, strerror(errno));
    if (close(fd) != 0 && rc == VIGIL_OK)
        rc = vigil__error_set(VIGIL_EIO, "cannot close %.200s: %s", tmp, strerror(errno));
    if (rc != VIGIL_OK)
        unlink(tmp);
    return rc;
}

/* The temporary files of one vigil_manifest_write_blobs() call and the
 * names they get. */
typedef struct pending {
    char **tmp, **dst;
    size_t n, cap;
} pending;

static void pending_drop(pending *p)
{
    for (size_t i = 0; i < p->n; i++) {
        if (p->tmp[i])
            unlink(p->tmp[i]);
        vigil__free(p->tmp[i]);
        vigil__free(p->dst[i]);
    }
    vigil__free(p->tmp);
    vigil__free(p->dst);
    memset(p, 0, sizeof(*p));
}

static int pending_add(pending *p, const char *tmp, const char *dst)
{
    size_t cap = p->cap;
    char *t = vigil__strdup(tmp), *d = vigil__strdup(dst);
    if (!t || !d || vigil__array_grow((void **)&p->tmp, &cap, p->n + 1, sizeof(char *)) < 0 ||
        vigil__array_grow((void **)&p->dst, &p->cap, p->n + 1, sizeof(char *)) < 0) {
        if (t)
            unlink(t);
        vigil__free(t);
        vigil__free(d);
        return vigil__error_oom();
    }
    p->tmp[p->n] = t;
    p->dst[p->n] = d;
    p->n++;
    return VIGIL_OK;
}

/* Makes every pending file durable at once (one syncfs of the file system
 * instead of an fsync per blob), renames them into place and syncs the
 * directory: a blob is never visible under its name before its bytes are on
 * disk. */
static int pending_commit(pending *p, const char *dir, size_t *written)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return vigil__error_set(VIGIL_EIO, "cannot open %.200s: %s", dir, strerror(errno));
    int rc = VIGIL_OK;
    if (p->n && syncfs(dfd) != 0)
        rc = vigil__error_set(VIGIL_EIO, "cannot sync %.200s: %s", dir, strerror(errno));
    for (size_t i = 0; rc == VIGIL_OK && i < p->n; i++) {
        if (rename(p->tmp[i], p->dst[i]) != 0) {
            rc = vigil__error_set(VIGIL_EIO, "cannot rename %.200s to %.200s: %s", p->tmp[i],
                                  p->dst[i], strerror(errno));
            break;
        }
        vigil__free(p->tmp[i]);
        p->tmp[i] = NULL;
        if (written)
            (*written)++;
    }
    if (rc == VIGIL_OK && p->n && fsync(dfd) != 0)
        rc = vigil__error_set(VIGIL_EIO, "cannot sync %.200s: %s", dir, strerror(errno));
    close(dfd);
    return rc;
}

int vigil_manifest_write_blobs(const vigil_manifest *m, const char *dir, size_t *written)
{
    if (written)
        *written = 0;
    if (!m || !dir || !dir[0])
        return vigil__error_set(VIGIL_EINVAL, "vigil_manifest_write_blobs: NULL argument");
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return vigil__error_set(VIGIL_EIO, "cannot create %.200s: %s", dir, strerror(errno));
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return vigil__error_set(VIGIL_EIO, "%.200s is not a directory", dir);
    pending p;
    memset(&p, 0, sizeof(p));
    int rc = VIGIL_OK;
    for (size_t i = 0; rc == VIGIL_OK && i < m->n; i++) {
        const vigil_resource *r = &m->res[i];
        const char *sha, *source, *content;
        size_t clen;
        if (r->type != &vigil__resource_file ||
            !vigil__resource_file_blob(r->state, &sha, &source, &content, &clen))
            continue;
        char dst[PATH_MAX], tmp[PATH_MAX];
        if ((size_t)snprintf(dst, sizeof(dst), "%s/%s", dir, sha) >= sizeof(dst)) {
            rc = vigil__error_set(VIGIL_EINVAL, "blob directory path too long");
            break;
        }
        if (access(dst, F_OK) == 0)
            continue;
        bool dup = false; /* two File resources with the same bytes */
        for (size_t j = 0; j < p.n && !dup; j++)
            dup = strcmp(p.dst[j], dst) == 0;
        if (dup)
            continue;
        if ((rc = write_blob(m, dir, sha, source, content, clen, tmp)) == VIGIL_OK)
            rc = pending_add(&p, tmp, dst);
    }
    if (rc == VIGIL_OK)
        rc = pending_commit(&p, dir, written);
    pending_drop(&p);
    return rc;
}
