/* Loading manifests: the walk of the source directories, the checks that
 * keep every path inside the root, the documents and their common fields,
 * and the accessors of the loaded resources. */
#include "internal/json.h"
#include "manifest/manifest_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_MAX_FILE_SIZE   (4u * 1024u * 1024u)
#define DEFAULT_MAX_DOCUMENTS   1000u
#define DEFAULT_MAX_RESOURCES   20000u
#define DEFAULT_MAX_FILES       10000u
#define DEFAULT_MAX_DEPTH       32u
#define DEFAULT_MAX_NODES       200000u
#define DEFAULT_MAX_SOURCE_SIZE (16u * 1024u * 1024u)
#define MAX_DIR_DEPTH           32
#define MAX_DIRS                100000u
#define NAME_MAX_LEN            253

int vigil_manifest_options_init(vigil_manifest_options *opts, unsigned int version)
{
    if (!opts)
        return vigil__error_set(VIGIL_EINVAL, "vigil_manifest_options_init: opts is NULL");
    int rc = vigil__version_check("manifest options", version, VIGIL_MANIFEST_OPTIONS_VERSION);
    if (rc < 0)
        return rc;
    vigil_manifest_options d = VIGIL_MANIFEST_OPTIONS_INIT;
    d.version = version;
    *opts = d;
    return VIGIL_OK;
}

static const char *default_getenv(void *payload, const char *name)
{
    (void)payload;
    return getenv(name);
}

static int64_t default_clock(void *payload)
{
    (void)payload;
    return vigil__now_ms();
}

void vigil__manifest_context(const vigil_manifest *m, const vigil_resource_type *t,
                             const char *kind, const char *name, const char *file,
                             vigil_resource_context *ctx)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->version = VIGIL_RESOURCE_CONTEXT_VERSION;
    ctx->root = m->root;
    ctx->proc_root = m->proc_root;
    ctx->sys_root = m->sys_root;
    ctx->systemctl = m->systemctl;
    ctx->logger = &m->logger;
    ctx->clock = m->clock;
    ctx->clock_payload = m->clock_payload;
    ctx->getenv = m->getenv;
    ctx->getenv_payload = m->getenv_payload;
    /* the built-in types read the manifest's limits through their payload */
    ctx->type_payload = vigil__resource_builtin(t->name) == t ? (void *)m : t->payload;
    ctx->kind = kind;
    ctx->name = name;
    ctx->file = file;
}

/* ---- paths inside the root --------------------------------------------------- */

/* True when `path` (resolved) is `root` or below it. */
static bool inside(const char *root, const char *path)
{
    size_t n = strlen(root);
    if (strcmp(root, "/") == 0)
        return true;
    return strncmp(path, root, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* Why a repository-relative path is refused before resolving it, or NULL. */
static const char *rel_problem(const char *rel)
{
    if (!rel[0])
        return "an empty path";
    if (rel[0] == '/')
        return "an absolute path (paths are relative to the repository root)";
    for (const char *p = rel; *p;) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.')
            return "a \"..\" component (paths stay inside the repository)";
        p += len;
        while (*p == '/')
            p++;
    }
    if (strlen(rel) >= PATH_MAX / 2)
        return "a path that is too long";
    return NULL;
}

/* Resolves rel under root into out (PATH_MAX): VIGIL_EPERM, VIGIL_ENOTFOUND
 * with a message "<what> \"rel\": ..." unless `at` is set (located). */
static int resolve(const char *root, const char *rel, const char *what, const vigil_config_node *at,
                   char *out)
{
    char quoted[160];
    snprintf(quoted, sizeof(quoted), "\"%.128s\"", rel);
    const char *why = rel_problem(rel);
    if (why)
        return at ? vigil__manifest_err(at, VIGIL_EPERM, "%s escapes the repository root: %s",
                                        quoted, why)
                  : vigil__error_set(VIGIL_EPERM, "%s %s escapes the repository root: %s", what,
                                     quoted, why);
    char joined[PATH_MAX];
    if ((size_t)snprintf(joined, sizeof(joined), "%s/%s", root, rel) >= sizeof(joined))
        return vigil__error_set(VIGIL_ELIMIT, "%s %s: path too long", what, quoted);
    if (!realpath(joined, out)) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR)
            return at ? vigil__manifest_err(at, VIGIL_ENOTFOUND,
                                            "%s: no such file in the "
                                            "repository",
                                            quoted)
                      : vigil__error_set(VIGIL_ENOTFOUND,
                                         "%s %s: no such file or directory in "
                                         "the repository",
                                         what, quoted);
        return at ? vigil__manifest_err(at, VIGIL_EIO, "%s: %s", quoted, strerror(e))
                  : vigil__error_set(VIGIL_EIO, "%s %s: %s", what, quoted, strerror(e));
    }
    if (!inside(root, out))
        return at ? vigil__manifest_err(at, VIGIL_EPERM,
                                        "%s escapes the repository root: a symbolic link "
                                        "resolves outside it",
                                        quoted)
                  : vigil__error_set(VIGIL_EPERM,
                                     "%s %s escapes the repository root: a symbolic link "
                                     "resolves outside it",
                                     what, quoted);
    return VIGIL_OK;
}

int vigil_resource_path(const vigil_resource_context *ctx, const vigil_config_node *at,
                        const char *rel, char *out, size_t size)
{
    if (!ctx || !rel || !out || !ctx->root)
        return vigil__error_set(VIGIL_EINVAL, "vigil_resource_path: NULL argument");
    char buf[PATH_MAX];
    int rc = resolve(ctx->root, rel, "path", at, buf);
    if (rc < 0)
        return rc;
    if (strlen(buf) >= size) {
        if (size)
            out[0] = '\0';
        return vigil__error_set(VIGIL_ERANGE, "vigil_resource_path: %zu bytes are too few", size);
    }
    memcpy(out, buf, strlen(buf) + 1);
    return VIGIL_OK;
}

/* ---- the walk ------------------------------------------------------------------ */

typedef struct mfile {
    char *rel; /* relative to the root, for messages and the resources */
    char *abs; /* resolved */
} mfile;

typedef struct dir_id {
    dev_t dev;
    ino_t ino;
    int used;
} dir_id;

typedef struct walk {
    const char *root;
    mfile *v;
    size_t n, cap;
    size_t max_files;
    dir_id *dirs; /* the directories walked: an open-addressing set */
    size_t ndirs, dcap;
} walk;

static size_t dir_slot(const dir_id *t, size_t cap, dev_t dev, ino_t ino)
{
    uint64_t h = ((uint64_t)ino * 0x9E3779B97F4A7C15ull) ^ (uint64_t)dev;
    size_t i = (size_t)(h ^ (h >> 29)) & (cap - 1);
    while (t[i].used && (t[i].dev != dev || t[i].ino != ino))
        i = (i + 1) & (cap - 1);
    return i;
}

/* Records the directory `st` as walked: 1 when it was new, 0 when it was
 * walked already (reached again through a symbolic link), or an error. A
 * directory is walked once, so links cannot multiply the walk. */
static int walk_dir_new(walk *w, const char *rel, const struct stat *st)
{
    if (w->dcap && w->dirs[dir_slot(w->dirs, w->dcap, st->st_dev, st->st_ino)].used)
        return 0;
    if (w->ndirs >= MAX_DIRS)
        return vigil__error_set(VIGIL_ELIMIT, "%.200s: more than %u directories", rel, MAX_DIRS);
    if (2 * (w->ndirs + 1) > w->dcap) {
        size_t ncap = w->dcap ? 2 * w->dcap : 64;
        dir_id *t = vigil__calloc(ncap, sizeof(*t));
        if (!t)
            return vigil__error_oom();
        for (size_t i = 0; i < w->dcap; i++)
            if (w->dirs[i].used)
                t[dir_slot(t, ncap, w->dirs[i].dev, w->dirs[i].ino)] = w->dirs[i];
        vigil__free(w->dirs);
        w->dirs = t;
        w->dcap = ncap;
    }
    dir_id *d = &w->dirs[dir_slot(w->dirs, w->dcap, st->st_dev, st->st_ino)];
    d->dev = st->st_dev;
    d->ino = st->st_ino;
    d->used = 1;
    w->ndirs++;
    return 1;
}

static bool yaml_name(const char *name)
{
    size_t n = strlen(name);
    return (n > 5 && strcmp(name + n - 5, ".yaml") == 0) ||
           (n > 4 && strcmp(name + n - 4, ".yml") == 0);
}

static int walk_add(walk *w, const char *rel, const char *abs)
{
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->v[i].abs, abs) == 0)
            return VIGIL_OK; /* listed twice (a source inside another, a link) */
    if (w->n >= w->max_files)
        return vigil__error_set(VIGIL_ELIMIT, "more than %zu manifest files (max_files)",
                                w->max_files);
    if (vigil__array_grow((void **)&w->v, &w->cap, w->n + 1, sizeof(*w->v)) < 0)
        return vigil__error_oom();
    mfile *f = &w->v[w->n];
    f->rel = vigil__strdup(rel);
    f->abs = vigil__strdup(abs);
    if (!f->rel || !f->abs) {
        vigil__free(f->rel);
        vigil__free(f->abs);
        return vigil__error_oom();
    }
    w->n++;
    return VIGIL_OK;
}

static int cmp_rel(const void *a, const void *b)
{
    return strcmp(((const mfile *)a)->rel, ((const mfile *)b)->rel);
}

static int walk_dir(walk *w, const char *rel, const char *abs, int depth)
{
    if (depth > MAX_DIR_DEPTH)
        return vigil__error_set(VIGIL_ELIMIT, "%s: directories nested more than %d deep", rel,
                                MAX_DIR_DEPTH);
    DIR *d = opendir(abs);
    if (!d)
        return vigil__error_set(VIGIL_EIO, "%s: cannot open directory: %s", rel, strerror(errno));
    struct stat self;
    int rc =
        fstat(dirfd(d), &self) != 0
            ? vigil__error_set(VIGIL_EIO, "%s: cannot stat directory: %s", rel, strerror(errno))
            : walk_dir_new(w, rel, &self);
    if (rc <= 0) {
        closedir(d);
        return rc;
    }
    rc = VIGIL_OK;
    struct dirent *de;
    while (rc == VIGIL_OK && (errno = 0, de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue; /* ., .., .git and other hidden entries */
        char crel[PATH_MAX], cabs[PATH_MAX], real[PATH_MAX];
        if ((size_t)snprintf(crel, sizeof(crel), "%s/%s", rel, de->d_name) >= sizeof(crel) / 2 ||
            (size_t)snprintf(cabs, sizeof(cabs), "%s/%s", abs, de->d_name) >= sizeof(cabs)) {
            rc = vigil__error_set(VIGIL_ELIMIT, "%.200s...: path too long", crel);
            break;
        }
        struct stat st;
        if (lstat(cabs, &st) != 0) {
            if (errno == ENOENT)
                continue; /* removed meanwhile */
            rc = vigil__error_set(VIGIL_EIO, "%s: %s", crel, strerror(errno));
            break;
        }
        if (S_ISLNK(st.st_mode)) {
            if (!realpath(cabs, real)) {
                if (!yaml_name(de->d_name))
                    continue; /* a dangling link that is not a manifest */
                rc = vigil__error_set(VIGIL_ENOTFOUND, "%s: symbolic link to nothing", crel);
                break;
            }
            if (!inside(w->root, real)) {
                struct stat ts;
                if (!yaml_name(de->d_name) && (stat(real, &ts) != 0 || !S_ISDIR(ts.st_mode)))
                    continue; /* neither a manifest nor a directory: a File's source is
                                 checked where a manifest names it */
                rc = vigil__error_set(
                    VIGIL_EPERM, "%s: symbolic link resolves outside the repository root", crel);
                break;
            }
            if (stat(real, &st) != 0)
                continue;
        } else {
            memcpy(real, cabs, strlen(cabs) + 1);
        }
        if (S_ISDIR(st.st_mode))
            rc = walk_dir(w, crel, real, depth + 1);
        else if (S_ISREG(st.st_mode) && yaml_name(de->d_name))
            rc = walk_add(w, crel, real);
    }
    if (rc == VIGIL_OK && errno != 0 && !de)
        rc = vigil__error_set(VIGIL_EIO, "%s: cannot read directory: %s", rel, strerror(errno));
    closedir(d);
    return rc;
}

static void walk_dispose(walk *w)
{
    for (size_t i = 0; i < w->n; i++) {
        vigil__free(w->v[i].rel);
        vigil__free(w->v[i].abs);
    }
    vigil__free(w->v);
    vigil__free(w->dirs);
}

/* Normalises a relative path for messages: no "./" prefix, no trailing '/',
 * no repeated '/'. */
static void norm_rel(char *out, size_t size, const char *rel)
{
    size_t o = 0;
    const char *p = rel;
    while (p[0] == '.' && p[1] == '/')
        p += 2;
    for (; *p && o + 1 < size; p++) {
        if (*p == '/' && (o == 0 || out[o - 1] == '/'))
            continue;
        out[o++] = *p;
    }
    while (o > 0 && out[o - 1] == '/')
        o--;
    out[o] = '\0';
    if (o == 0 || strcmp(out, ".") == 0)
        snprintf(out, size, ".");
}

static int collect(walk *w, const vigil_manifest_options *o)
{
    int rc;
    static const char *const dot[] = {".", NULL};
    const char *const *sources = o->sources ? o->sources : (o->files ? NULL : dot);
    for (size_t i = 0; sources && sources[i]; i++) {
        char abs[PATH_MAX], rel[PATH_MAX / 2];
        if ((rc = resolve(w->root, sources[i], "source", NULL, abs)) < 0)
            return rc;
        struct stat st;
        if (stat(abs, &st) != 0 || !S_ISDIR(st.st_mode))
            return vigil__error_set(VIGIL_ENOTFOUND, "source \"%.128s\": not a directory",
                                    sources[i]);
        norm_rel(rel, sizeof(rel), sources[i]);
        size_t from = w->n;
        if ((rc = walk_dir(w, rel, abs, 0)) < 0)
            return rc;
        if (w->n > from)
            qsort(w->v + from, w->n - from, sizeof(*w->v), cmp_rel);
    }
    for (size_t i = 0; o->files && o->files[i]; i++) {
        char abs[PATH_MAX], rel[PATH_MAX / 2];
        if ((rc = resolve(w->root, o->files[i], "file", NULL, abs)) < 0)
            return rc;
        norm_rel(rel, sizeof(rel), o->files[i]);
        if ((rc = walk_add(w, rel, abs)) < 0)
            return rc;
    }
    /* "./x.yaml" reads better as "x.yaml" */
    for (size_t i = 0; i < w->n; i++)
        if (strncmp(w->v[i].rel, "./", 2) == 0)
            memmove(w->v[i].rel, w->v[i].rel + 2, strlen(w->v[i].rel + 2) + 1);
    return VIGIL_OK;
}

/* ---- the resources ------------------------------------------------------------ */

static uint64_t key_hash(const char *kind, const char *name)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = kind; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h;
}

/* The slot of (kind, name): its index + 1 when found, else 0 and *slot is
 * where to insert. */
static size_t hash_find(const vigil_manifest *m, const char *kind, const char *name, size_t *slot)
{
    if (!m->hash_cap)
        return 0;
    size_t i = (size_t)key_hash(kind, name) & (m->hash_cap - 1);
    for (;; i = (i + 1) & (m->hash_cap - 1)) {
        size_t v = m->hash[i];
        if (!v) {
            if (slot)
                *slot = i;
            return 0;
        }
        const vigil_resource *r = &m->res[v - 1];
        if (strcmp(r->kind, kind) == 0 && strcmp(r->name, name) == 0)
            return v;
    }
}

static int hash_insert(vigil_manifest *m, size_t index)
{
    if ((m->n + 1) * 2 > m->hash_cap) {
        size_t cap = m->hash_cap ? m->hash_cap * 2 : 64;
        size_t *h = vigil__calloc(cap, sizeof(*h));
        if (!h)
            return vigil__error_oom();
        size_t *old = m->hash, oldcap = m->hash_cap;
        m->hash = h;
        m->hash_cap = cap;
        for (size_t i = 0; i < oldcap; i++)
            if (old[i]) {
                size_t slot = 0;
                const vigil_resource *r = &m->res[old[i] - 1];
                hash_find(m, r->kind, r->name, &slot);
                m->hash[slot] = old[i];
            }
        vigil__free(old);
    }
    size_t slot = 0;
    const vigil_resource *r = &m->res[index];
    hash_find(m, r->kind, r->name, &slot);
    m->hash[slot] = index + 1;
    return VIGIL_OK;
}

static bool name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > NAME_MAX_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && !((c == '-' || c == '.') && i > 0 && i + 1 < n))
            return false;
    }
    return true;
}

static bool label_key_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > VIGIL__RESOURCE_LABEL_KEY)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_' || c == '/'))
            return false;
    }
    return true;
}

static void resource_dispose(vigil_resource *r)
{
    if (r->state && r->type)
        r->type->destroy(r->state);
    for (size_t i = 0; i < r->nlabels; i++) {
        vigil__free(r->label_keys[i]);
        vigil__free(r->label_values[i]);
    }
    vigil__free(r->label_keys);
    vigil__free(r->label_values);
    vigil__free(r->kind);
    vigil__free(r->name);
    vigil__free(r->file);
    vigil__free(r->spec_json);
}

static int read_labels(vigil_resource *r, const vigil_config_node *labels)
{
    int rc;
    if (!labels || vigil_config_node_kind(labels) == VIGIL_CONFIG_NULL)
        return VIGIL_OK;
    if ((rc = vigil_config_map(labels)) < 0)
        return rc;
    size_t n = vigil_config_node_len(labels);
    if (n > VIGIL__RESOURCE_LABELS_MAX)
        return vigil__manifest_err(labels, VIGIL_ELIMIT, "more than %d labels",
                                   VIGIL__RESOURCE_LABELS_MAX);
    if (!n)
        return VIGIL_OK;
    r->label_keys = vigil__calloc(n, sizeof(char *));
    r->label_values = vigil__calloc(n, sizeof(char *));
    if (!r->label_keys || !r->label_values)
        return vigil__error_oom();
    for (size_t i = 0; i < n; i++) {
        const char *k = vigil_config_node_key_at(labels, i), *v;
        const vigil_config_node *vn = vigil_config_node_at(labels, i);
        if (!label_key_valid(k))
            return vigil__manifest_err(vn, VIGIL_ENAME,
                                       "invalid label key \"%.64s\" (1 to %d of A-Z a-z 0-9 - . "
                                       "_ /)",
                                       k, VIGIL__RESOURCE_LABEL_KEY);
        if ((rc = vigil_config_string(&v, vn)) < 0)
            return rc;
        if (strlen(v) > VIGIL__RESOURCE_LABEL_VAL)
            return vigil__manifest_err(vn, VIGIL_ELIMIT, "a label value has at most %d bytes",
                                       VIGIL__RESOURCE_LABEL_VAL);
        r->nlabels = i + 1; /* both freed by resource_dispose, even when NULL */
        if (!(r->label_keys[i] = vigil__strdup(k)) || !(r->label_values[i] = vigil__strdup(v)))
            return vigil__error_oom();
    }
    return VIGIL_OK;
}

/* The spec as written, without selfHeal: the normalised JSON of a type that
 * has no to_json. */
static int default_json(vigil_buf *b, const vigil_config_node *spec)
{
    int rc;
    bool first = true;
    if ((rc = vigil__buf_putc(b, '{')) < 0)
        return rc;
    for (size_t i = 0; i < vigil_config_node_len(spec); i++) {
        const char *k = vigil_config_node_key_at(spec, i);
        if (strcmp(k, "selfHeal") == 0)
            continue;
        if ((rc = vigil__manifest_json_key(b, &first, k)) < 0 ||
            (rc = vigil__manifest_node_json(b, vigil_config_node_at(spec, i))) < 0)
            return rc;
    }
    return vigil__buf_putc(b, '}');
}

static int spec_json(vigil_resource *r, const vigil_config_node *spec)
{
    const char *j = r->type->to_json ? r->type->to_json(r->state) : NULL;
    if (j) {
        vigil__json_problem p;
        size_t len = strlen(j), i = 0;
        while (i < len && (j[i] == ' ' || j[i] == '\t' || j[i] == '\n' || j[i] == '\r'))
            i++;
        if (i == len || j[i] != '{' || vigil__json_check(j, len, 64, &p) != VIGIL_OK)
            return vigil__manifest_err(spec, VIGIL_EVALUE,
                                       "resource type %s: to_json returned no JSON object",
                                       r->type->name);
        r->spec_json = vigil__strdup(j);
        return r->spec_json ? VIGIL_OK : vigil__error_oom();
    }
    vigil_buf b = VIGIL_BUF_INIT;
    int rc = default_json(&b, spec);
    if (rc < 0) {
        vigil_buf_dispose(&b);
        return rc;
    }
    r->spec_json = vigil__buf_detach(&b);
    return r->spec_json ? VIGIL_OK : vigil__error_oom();
}

static int parse_doc(vigil_manifest *m, const vigil_manifest_options *o, const char *rel,
                     const vigil_config_node *doc)
{
    static const char *const top_keys[] = {"apiVersion", "kind", "metadata", "spec", NULL};
    static const char *const meta_keys[] = {"name", "labels", NULL};
    int rc;
    const char *api, *kind, *name;
    if ((rc = vigil_config_map(doc)) < 0 || (rc = vigil_config_expect_keys(doc, top_keys)) < 0 ||
        (rc = vigil__manifest_string(&api, doc, "apiVersion", true)) < 0)
        return rc;
    if (strcmp(api, "vigil/v1") != 0)
        return vigil__manifest_err(vigil_config_node_get(doc, "apiVersion"), VIGIL_EVALUE,
                                   "expected \"vigil/v1\", got \"%.64s\"", api);
    if ((rc = vigil__manifest_string(&kind, doc, "kind", true)) < 0)
        return rc;
    const vigil_resource_type *t = vigil__resource_find(o->resource_types, kind);
    if (!t)
        return vigil__manifest_err(vigil_config_node_get(doc, "kind"), VIGIL_EUNSUPPORTED,
                                   "unknown kind \"%.64s\" (expected Service, File, Sysctl, "
                                   "Policy or a registered resource type)",
                                   kind);
    if ((rc = vigil_config_require(doc, "metadata")) < 0)
        return rc;
    const vigil_config_node *meta = vigil_config_node_get(doc, "metadata");
    if ((rc = vigil_config_map(meta)) < 0 || (rc = vigil_config_expect_keys(meta, meta_keys)) < 0 ||
        (rc = vigil__manifest_string(&name, meta, "name", true)) < 0)
        return rc;
    const vigil_config_node *nn = vigil_config_node_get(meta, "name");
    if (!name_valid(name))
        return vigil__manifest_err(
            nn, VIGIL_EVALUE,
            "invalid name \"%.64s\" (expected [a-z0-9]([-a-z0-9.]*[a-z0-9])?, "
            "at most %d bytes)",
            name, NAME_MAX_LEN);
    if ((rc = vigil_config_require(doc, "spec")) < 0)
        return rc;
    const vigil_config_node *spec = vigil_config_node_get(doc, "spec");
    if ((rc = vigil_config_map(spec)) < 0)
        return rc;
    size_t prev = hash_find(m, t->name, name, NULL);
    if (prev) {
        const vigil_resource *p = &m->res[prev - 1];
        return vigil__manifest_err(nn, VIGIL_EEXISTS,
                                   "%s \"%s\" is defined twice (first at %s:%u:%u)", t->name, name,
                                   p->file, p->line, p->column);
    }
    if (m->n >= (o->max_resources ? o->max_resources : DEFAULT_MAX_RESOURCES))
        return vigil__manifest_err(doc, VIGIL_ELIMIT, "more than %zu resources (max_resources)",
                                   o->max_resources ? o->max_resources : DEFAULT_MAX_RESOURCES);
    int self_heal = 0;
    if ((rc = vigil_config_get_bool(&self_heal, spec, "selfHeal", 0)) < 0)
        return rc;
    if (t->keys) {
        const char *allowed[66];
        size_t na = 0;
        for (; na < 64 && t->keys[na]; na++)
            allowed[na] = t->keys[na];
        allowed[na++] = "selfHeal";
        allowed[na] = NULL;
        if ((rc = vigil_config_expect_keys(spec, allowed)) < 0)
            return rc;
    }

    vigil_resource r;
    memset(&r, 0, sizeof(r));
    r.type = t;
    r.manifest = m;
    r.self_heal = self_heal;
    r.line = vigil_config_node_line(doc);
    r.column = vigil_config_node_column(doc);
    if (!(r.kind = vigil__strdup(t->name)) || !(r.name = vigil__strdup(name)) ||
        !(r.file = vigil__strdup(rel))) {
        resource_dispose(&r);
        return vigil__error_oom();
    }
    if ((rc = read_labels(&r, vigil_config_node_get(meta, "labels"))) < 0) {
        resource_dispose(&r);
        return rc;
    }
    vigil_resource_context ctx;
    vigil__manifest_context(m, t, r.kind, r.name, r.file, &ctx);
    void *state = NULL;
    rc = t->parse(&state, spec, &ctx);
    if (rc < 0) {
        if (vigil_error_last()->code != rc)
            vigil__manifest_err(spec, rc, "resource type %s: parse failed", t->name);
        resource_dispose(&r);
        return rc;
    }
    if (rc > 0)
        rc = VIGIL_OK;
    r.state = state;
    if ((rc = spec_json(&r, spec)) < 0) {
        resource_dispose(&r);
        return rc;
    }
    if (vigil__array_grow((void **)&m->res, &m->res_cap, m->n + 1, sizeof(*m->res)) < 0) {
        resource_dispose(&r);
        return vigil__error_oom();
    }
    m->res[m->n] = r;
    if ((rc = hash_insert(m, m->n)) < 0) {
        resource_dispose(&m->res[m->n]);
        return rc;
    }
    m->n++;
    return VIGIL_OK;
}

static int load_file(vigil_manifest *m, const vigil_manifest_options *o, const mfile *f)
{
    size_t max = o->max_file_size ? o->max_file_size : DEFAULT_MAX_FILE_SIZE;
    int fd = open(f->abs, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return vigil__error_set(errno == ENOENT ? VIGIL_ENOTFOUND : VIGIL_EIO, "%s: %s", f->rel,
                                strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return vigil__error_set(VIGIL_EIO, "%s: not a regular file", f->rel);
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return vigil__error_set(VIGIL_ELIMIT, "%s: %lld bytes, more than the %zu of max_file_size",
                                f->rel, (long long)st.st_size, max);
    }
    size_t len = (size_t)st.st_size;
    char *text = vigil__malloc(len + 1);
    if (!text) {
        close(fd);
        return vigil__error_oom();
    }
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, text + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (got != len) {
        vigil__free(text);
        return vigil__error_set(VIGIL_EIO, "%s: short read", f->rel);
    }
    vigil_config_options co = VIGIL_CONFIG_OPTIONS_INIT;
    co.max_file_size = max;
    co.max_depth = o->max_depth ? o->max_depth : DEFAULT_MAX_DEPTH;
    co.max_nodes = o->max_nodes ? o->max_nodes : DEFAULT_MAX_NODES;
    co.no_env = 1; /* a repository never reads the daemon's environment */
    vigil_config *cfg = NULL;
    int rc = vigil_config_load_string(&cfg, text, len, f->rel, &co);
    vigil__free(text);
    if (rc < 0)
        return rc;
    size_t ndocs = vigil_config_document_count(cfg);
    size_t maxdocs = o->max_documents ? o->max_documents : DEFAULT_MAX_DOCUMENTS;
    if (ndocs > maxdocs)
        rc = vigil__manifest_err(vigil_config_root(cfg, maxdocs), VIGIL_ELIMIT,
                                 "more than %zu documents in one file (max_documents)", maxdocs);
    for (size_t i = 0; rc == VIGIL_OK && i < ndocs; i++) {
        const vigil_config_node *doc = vigil_config_root(cfg, i);
        if (vigil_config_node_kind(doc) == VIGIL_CONFIG_NULL)
            continue; /* an empty document ("---" at the end) */
        rc = parse_doc(m, o, f->rel, doc);
    }
    vigil_config_free(cfg);
    return rc;
}

static int dup_opt(char **out, const char *s, const char *dflt)
{
    *out = vigil__strdup(s ? s : dflt);
    return *out ? VIGIL_OK : vigil__error_oom();
}

static const char *default_systemctl(void)
{
    return access("/usr/bin/systemctl", X_OK) == 0 ? "/usr/bin/systemctl" : "/bin/systemctl";
}

int vigil_manifest_load(vigil_manifest **out, const vigil_manifest_options *opts)
{
    if (out)
        *out = NULL;
    if (!out || !opts)
        return vigil__error_set(VIGIL_EINVAL, "vigil_manifest_load: NULL argument");
    int rc =
        vigil__version_check("manifest options", opts->version, VIGIL_MANIFEST_OPTIONS_VERSION);
    if (rc < 0)
        return rc;
    if (!opts->root || !opts->root[0])
        return vigil__error_set(VIGIL_EINVAL, "manifest options: root is required");
    char root[PATH_MAX];
    if (!realpath(opts->root, root))
        return vigil__error_set(errno == ENOENT ? VIGIL_ENOTFOUND : VIGIL_EIO,
                                "manifest root %.200s: %s", opts->root, strerror(errno));
    struct stat st;
    if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode))
        return vigil__error_set(VIGIL_ENOTFOUND, "manifest root %.200s: not a directory",
                                opts->root);
    vigil_manifest *m = vigil__calloc(1, sizeof(*m));
    if (!m)
        return vigil__error_oom();
    m->logger = opts->logger;
    m->clock = opts->clock ? opts->clock : default_clock;
    m->clock_payload = opts->clock ? opts->clock_payload : NULL;
    m->getenv = opts->getenv ? opts->getenv : default_getenv;
    m->getenv_payload = opts->getenv ? opts->getenv_payload : NULL;
    m->max_source_size = opts->max_source_size ? opts->max_source_size : DEFAULT_MAX_SOURCE_SIZE;
    m->policy_types = opts->policy_types;
    walk w = {root, NULL, 0, 0, opts->max_files ? opts->max_files : DEFAULT_MAX_FILES, NULL, 0, 0};
    if ((rc = dup_opt(&m->root, root, NULL)) < 0 ||
        (rc = dup_opt(&m->proc_root, opts->proc_root, "/proc")) < 0 ||
        (rc = dup_opt(&m->sys_root, opts->sys_root, "/sys")) < 0 ||
        (rc = dup_opt(&m->systemctl, opts->systemctl, default_systemctl())) < 0 ||
        (rc = collect(&w, opts)) < 0)
        goto fail;
    m->files = vigil__calloc(w.n ? w.n : 1, sizeof(char *));
    if (!m->files) {
        rc = vigil__error_oom();
        goto fail;
    }
    for (size_t i = 0; i < w.n; i++) {
        if ((rc = load_file(m, opts, &w.v[i])) < 0)
            goto fail;
        m->files[m->nfiles++] = w.v[i].rel;
        w.v[i].rel = NULL;
    }
    walk_dispose(&w);
    m->policy_types = NULL;
    *out = m;
    return VIGIL_OK;
fail:
    walk_dispose(&w);
    vigil_manifest_free(m);
    return rc;
}

void vigil_manifest_free(vigil_manifest *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++)
        resource_dispose(&m->res[i]);
    for (size_t i = 0; i < m->nfiles; i++)
        vigil__free(m->files[i]);
    vigil__free(m->files);
    vigil__free(m->res);
    vigil__free(m->hash);
    vigil__free(m->root);
    vigil__free(m->proc_root);
    vigil__free(m->sys_root);
    vigil__free(m->systemctl);
    vigil__free(m);
}

const char *vigil_manifest_root(const vigil_manifest *m)
{
    return m ? m->root : NULL;
}

size_t vigil_manifest_file_count(const vigil_manifest *m)
{
    return m ? m->nfiles : 0;
}

const char *vigil_manifest_file_at(const vigil_manifest *m, size_t index)
{
    return m && index < m->nfiles ? m->files[index] : NULL;
}

size_t vigil_manifest_count(const vigil_manifest *m)
{
    return m ? m->n : 0;
}

const vigil_resource *vigil_manifest_at(const vigil_manifest *m, size_t index)
{
    return m && index < m->n ? &m->res[index] : NULL;
}

const vigil_resource *vigil_manifest_find(const vigil_manifest *m, const char *kind,
                                          const char *name)
{
    if (!m || !kind || !name)
        return NULL;
    size_t v = hash_find(m, kind, name, NULL);
    return v ? &m->res[v - 1] : NULL;
}

const char *vigil_resource_kind(const vigil_resource *r)
{
    return r ? r->kind : NULL;
}

const char *vigil_resource_name(const vigil_resource *r)
{
    return r ? r->name : NULL;
}

int vigil_resource_self_heal(const vigil_resource *r)
{
    return r ? r->self_heal : 0;
}

const char *vigil_resource_file(const vigil_resource *r)
{
    return r ? r->file : NULL;
}

unsigned int vigil_resource_line(const vigil_resource *r)
{
    return r ? r->line : 0;
}

unsigned int vigil_resource_column(const vigil_resource *r)
{
    return r ? r->column : 0;
}

size_t vigil_resource_label_count(const vigil_resource *r)
{
    return r ? r->nlabels : 0;
}

const char *vigil_resource_label_key_at(const vigil_resource *r, size_t index)
{
    return r && index < r->nlabels ? r->label_keys[index] : NULL;
}

const char *vigil_resource_label_value_at(const vigil_resource *r, size_t index)
{
    return r && index < r->nlabels ? r->label_values[index] : NULL;
}

const char *vigil_resource_label(const vigil_resource *r, const char *key)
{
    if (!r || !key)
        return NULL;
    for (size_t i = 0; i < r->nlabels; i++)
        if (strcmp(r->label_keys[i], key) == 0)
            return r->label_values[i];
    return NULL;
}

const char *vigil_resource_spec_json(const vigil_resource *r)
{
    return r ? r->spec_json : NULL;
}

const void *vigil_resource_spec(const vigil_resource *r)
{
    return r ? r->state : NULL;
}

/* A host as targets use it: 1 to 253 bytes, no '/', no control character. */
static bool host_valid(const char *host)
{
    size_t n = strlen(host);
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++)
        if (host[i] == '/' || (unsigned char)host[i] < 0x20 || host[i] == 0x7f)
            return false;
    return true;
}

int vigil__manifest_host_check(const char *host)
{
    if (!host || !host_valid(host))
        return vigil__error_set(VIGIL_EINVAL,
                                "host \"%.64s\" is invalid (1 to 253 bytes, no '/' or control "
                                "character)",
                                host ? host : "");
    return VIGIL_OK;
}

int vigil_resource_target(const vigil_resource *r, const char *host, char *buf, size_t size)
{
    if (!r || !buf)
        return vigil__error_set(VIGIL_EINVAL, "vigil_resource_target: NULL argument");
    int rc = vigil__manifest_host_check(host);
    if (rc < 0)
        return rc;
    int n = snprintf(buf, size, "%s/%s/%s", host, r->kind, r->name);
    if (n < 0 || (size_t)n >= size) {
        if (size)
            buf[0] = '\0';
        return vigil__error_set(VIGIL_ERANGE, "vigil_resource_target: %zu bytes are too few", size);
    }
    return VIGIL_OK;
}
