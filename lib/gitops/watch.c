/* inotify on the directories of the File resources of the desired state: a
 * change to one of those files (a hand edit, a restore) makes the next
 * observation due at once instead of at the next observe tick. Directories
 * that cannot be watched (missing, no inotify, limits) are simply left to
 * the observe interval. */
#include "gitops/gitops_int.h"

#include "internal/json.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#define WATCH_DIRS_MAX 1024
#define WATCH_MASK                                                                      \
    (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB | \
     IN_DELETE_SELF | IN_MOVE_SELF)

typedef struct gw_dir {
    int wd;
    char *path;
    char **names;
    size_t n, cap;
} gw_dir;

struct vigil__gitops_watch {
    int fd;
    gw_dir *dirs;
    size_t n, cap;
};

void vigil__gitops_watch_free(vigil__gitops_watch *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    for (size_t i = 0; i < w->n; i++) {
        for (size_t j = 0; j < w->dirs[i].n; j++)
            vigil__free(w->dirs[i].names[j]);
        vigil__free(w->dirs[i].names);
        vigil__free(w->dirs[i].path);
    }
    vigil__free(w->dirs);
    vigil__free(w);
}

int vigil__gitops_watch_fd(const vigil__gitops_watch *w)
{
    return w ? w->fd : -1;
}

/* Adds the file at `path` (its directory watched, its name matched). */
static int add_file(vigil__gitops_watch *w, const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[PATH_MAX];
    const char *name;
    if (!slash) {
        snprintf(dir, sizeof(dir), ".");
        name = path;
    } else {
        size_t dl = slash == path ? 1 : (size_t)(slash - path);
        if (dl >= sizeof(dir))
            return VIGIL_OK;
        memcpy(dir, path, dl);
        dir[dl] = '\0';
        name = slash + 1;
    }
    if (!*name)
        return VIGIL_OK;
    gw_dir *d = NULL;
    for (size_t i = 0; i < w->n && !d; i++)
        if (strcmp(w->dirs[i].path, dir) == 0)
            d = &w->dirs[i];
    if (!d) {
        if (w->n >= WATCH_DIRS_MAX)
            return VIGIL_OK;
        int wd = inotify_add_watch(w->fd, dir, WATCH_MASK);
        if (wd < 0)
            return VIGIL_OK; /* left to the observe interval */
        if (vigil__array_grow((void **)&w->dirs, &w->cap, w->n + 1, sizeof(*w->dirs)))
            return VIGIL_ENOMEM;
        d = &w->dirs[w->n];
        memset(d, 0, sizeof(*d));
        d->wd = wd;
        d->path = vigil__strdup(dir);
        if (!d->path)
            return vigil__error_oom();
        w->n++;
    }
    for (size_t j = 0; j < d->n; j++)
        if (strcmp(d->names[j], name) == 0)
            return VIGIL_OK;
    if (vigil__array_grow((void **)&d->names, &d->cap, d->n + 1, sizeof(char *)))
        return VIGIL_ENOMEM;
    d->names[d->n] = vigil__strdup(name);
    if (!d->names[d->n])
        return vigil__error_oom();
    d->n++;
    return VIGIL_OK;
}

int vigil__gitops_watch_build(vigil__gitops_watch **out, const vigil_manifest *m)
{
    *out = NULL;
    vigil__gitops_watch *w = vigil__calloc(1, sizeof(*w));
    if (!w)
        return vigil__error_oom();
    w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->fd < 0) {
        vigil__free(w);
        return VIGIL_OK; /* no inotify: the observe interval only */
    }
    int rc = VIGIL_OK;
    for (size_t i = 0; i < vigil_manifest_count(m) && !rc; i++) {
        const vigil_resource *r = vigil_manifest_at(m, i);
        if (strcmp(vigil_resource_kind(r), "File") != 0)
            continue;
        const char *spec = vigil_resource_spec_json(r);
        cJSON *j = NULL;
        if (!spec || vigil__json_parse(&j, spec, strlen(spec), VIGIL__JSON_MAX_DEPTH) != VIGIL_OK)
            continue;
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "path");
        if (cJSON_IsString(p) && p->valuestring)
            rc = add_file(w, p->valuestring);
        cJSON_Delete(j);
    }
    if (rc) {
        vigil__gitops_watch_free(w);
        return rc;
    }
    *out = w;
    return VIGIL_OK;
}

int vigil__gitops_watch_drain(vigil__gitops_watch *w)
{
    if (!w || w->fd < 0)
        return 0;
    int hit = 0;
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(w->fd, buf, sizeof(buf));
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            break;
        }
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            p += sizeof(*ev) + ev->len;
            if (ev->mask & (IN_Q_OVERFLOW | IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
                hit = 1;
                continue;
            }
            for (size_t i = 0; i < w->n && !hit; i++) {
                if (w->dirs[i].wd != ev->wd)
                    continue;
                for (size_t j = 0; j < w->dirs[i].n && ev->len; j++)
                    if (strcmp(w->dirs[i].names[j], ev->name) == 0)
                        hit = 1;
            }
        }
    }
    return hit;
}
