/*
 * custom_resource - a resource type written outside libvigil with the public
 * plug-in interface <vigil/sys/resource.h>: "Directory" says that a directory
 * exists on the host with a given mode.
 *
 *   custom_resource          (works in a new temporary directory, removed at exit)
 *
 * The type is registered on a registry (never a global), handed to the
 * manifest loader, and a small repository is written with one manifest:
 *
 *   apiVersion: vigil/v1
 *   kind: Directory
 *   metadata: {name: spool}
 *   spec: {path: <tmp>/host/spool, mode: "0750", selfHeal: true}
 *
 * Then the host is observed three times: the directory is missing (status
 * missing, with the heal request the type proposes), created with the right
 * mode (in_sync), then chmod'ed (drifted, the mode in the diff). The POST
 * /v1/drift body of each observation is printed.
 *
 * The plug-in contract (docs/plugins.md) shown end to end: the payload (a
 * count of observations) belongs to the registry, which frees it; a type of
 * another version is refused with VIGIL_EVERSION and its payload freed at
 * once; a bad spec is reported located in the manifest through
 * vigil_error_set_at().
 *
 * Build against an installed libvigil:
 *   cc -o custom_resource custom_resource.c $(pkg-config --cflags --libs vigil)
 *
 * Exit status 0 when every result is as expected, 1 otherwise. Needs no root.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vigil/sys/resource.h>
#include <vigil/vigil.h>

/* ---- the resource type ----------------------------------------------------------------- */

typedef struct dir_payload {
    int observations; /* a manifest may be observed from several threads: keep it simple and
                         observe from one in this example */
    int freed;
} dir_payload;

typedef struct dir_spec {
    char path[512];
    unsigned int mode;
    char json[700];
} dir_spec;

typedef struct dir_observed {
    int exists;
    unsigned int mode;
} dir_observed;

static const char *const dir_keys[] = {"path", "mode", NULL};

static int dir_parse(void **state, const vigil_config_node *spec, const vigil_resource_context *ctx)
{
    (void)ctx;
    const char *path = NULL, *mode = "0755";
    int rc;
    if ((rc = vigil_config_require(spec, "path")) < 0 ||
        (rc = vigil_config_get_string(&path, spec, "path", NULL)) < 0 ||
        (rc = vigil_config_get_string(&mode, spec, "mode", "0755")) < 0)
        return rc;
    if (path[0] != '/' || strlen(path) >= 512)
        return vigil_error_set_at(VIGIL_EVALUE, vigil_config_node_get(spec, "path"),
                                  "expected an absolute path");
    char *end = NULL;
    unsigned long m = strtoul(mode, &end, 8);
    if (!*mode || *end || m > 07777)
        return vigil_error_set_at(VIGIL_EVALUE, vigil_config_node_get(spec, "mode"),
                                  "expected an octal mode such as \"0750\"");
    dir_spec *d = calloc(1, sizeof(*d));
    if (!d)
        return vigil_error_set(VIGIL_ENOMEM, NULL);
    snprintf(d->path, sizeof(d->path), "%s", path);
    d->mode = (unsigned int)m;
    /* the normalised spec, published as the desired state (paths here need no escaping) */
    snprintf(d->json, sizeof(d->json), "{\"path\":\"%s\",\"mode\":\"%04o\"}", d->path, d->mode);
    *state = d;
    return VIGIL_OK;
}

static const char *dir_to_json(const void *state)
{
    return ((const dir_spec *)state)->json;
}

static int dir_observe(void **observed, const void *state, const vigil_resource_context *ctx)
{
    const dir_spec *d = state;
    dir_payload *p = ctx->type_payload;
    p->observations++;
    dir_observed *o = calloc(1, sizeof(*o));
    if (!o)
        return vigil_error_set(VIGIL_ENOMEM, NULL);
    struct stat st;
    if (stat(d->path, &st) == 0) {
        o->exists = S_ISDIR(st.st_mode);
        o->mode = (unsigned int)(st.st_mode & 07777);
    } else if (errno != ENOENT) {
        char msg[600];
        snprintf(msg, sizeof(msg), "cannot stat %s: %s", d->path, strerror(errno));
        free(o);
        return vigil_error_set(VIGIL_EIO, msg);
    }
    *observed = o;
    return VIGIL_OK;
}

static int dir_diff(vigil_resource_diff *diff, const void *state, const void *observed,
                    const vigil_resource_context *ctx)
{
    (void)ctx;
    const dir_spec *d = state;
    const dir_observed *o = observed;
    char want[8], got[8];
    snprintf(want, sizeof(want), "%04o", d->mode);
    if (!o->exists) {
        int rc = vigil_resource_diff_add(diff, "mode", want, NULL);
        return rc < 0 ? rc : vigil_resource_diff_status(diff, VIGIL_RESOURCE_MISSING);
    }
    snprintf(got, sizeof(got), "%04o", o->mode);
    return d->mode == o->mode ? VIGIL_OK : vigil_resource_diff_add(diff, "mode", want, got);
}

static int dir_heal(vigil_resource_heal *heal, const void *state, const void *observed,
                    const vigil_resource_context *ctx)
{
    (void)observed;
    (void)ctx;
    const dir_spec *d = state;
    char mode[8];
    snprintf(mode, sizeof(mode), "%04o", d->mode);
    int rc = vigil_resource_heal_set(heal, "make_directory", NULL);
    if (rc == VIGIL_OK)
        rc = vigil_resource_heal_param(heal, "path", d->path);
    if (rc == VIGIL_OK)
        rc = vigil_resource_heal_param(heal, "mode", mode);
    return rc;
}

static void payload_free(void *payload)
{
    ((dir_payload *)payload)->freed++;
}

static vigil_resource_type directory_type(dir_payload *p)
{
    vigil_resource_type t;
    memset(&t, 0, sizeof(t));
    t.version = VIGIL_RESOURCE_TYPE_VERSION;
    t.name = "Directory";
    t.payload = p;
    t.payload_free = payload_free;
    t.keys = dir_keys;
    t.parse = dir_parse;
    t.to_json = dir_to_json;
    t.observe = dir_observe;
    t.diff = dir_diff;
    t.observed_free = free;
    t.heal = dir_heal;
    t.destroy = free;
    return t;
}

/* ---- the program ----------------------------------------------------------------------- */

static int failures;

static void expect(int ok, const char *what)
{
    printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    if (!ok)
        failures++;
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

/* Observes, prints the drift body and returns the status of the one item. */
static int observe(const vigil_manifest *m)
{
    vigil_drift *d = NULL;
    vigil_buf body = VIGIL_BUF_INIT;
    vigil_drift_item it = VIGIL_DRIFT_ITEM_INIT;
    if (vigil_manifest_observe(&d, m, "web-01") != VIGIL_OK ||
        vigil_drift_item_at(d, 0, &it) != VIGIL_OK ||
        vigil_drift_body(d, "0123456789abcdef0123456789abcdef01234567", &body) != VIGIL_OK) {
        fprintf(stderr, "observe: %s\n", vigil_error_last()->message);
        vigil_drift_free(d);
        return -1;
    }
    printf("%s\n", body.ptr);
    int status = (int)it.status;
    vigil_buf_dispose(&body);
    vigil_drift_free(d);
    return status;
}

int main(void)
{
    char tmpl[] = "/tmp/custom_resource.XXXXXX";
    char *tmp = mkdtemp(tmpl);
    if (!tmp) {
        perror("mkdtemp");
        return 1;
    }
    char repo[600], host[600], spool[700], manifest[700], yaml[1600];
    snprintf(repo, sizeof(repo), "%s/repo", tmp);
    snprintf(host, sizeof(host), "%s/host", tmp);
    snprintf(spool, sizeof(spool), "%s/spool", host);
    snprintf(manifest, sizeof(manifest), "%s/dirs.yaml", repo);
    mkdir(repo, 0755);
    mkdir(host, 0755);
    snprintf(yaml, sizeof(yaml),
             "apiVersion: vigil/v1\nkind: Directory\nmetadata: {name: spool, labels: {tier: "
             "web}}\nspec: {path: \"%s\", mode: \"0750\", selfHeal: true}\n",
             spool);
    if (write_file(manifest, yaml) != 0) {
        perror(manifest);
        return 1;
    }

    dir_payload payload = {0, 0}, other = {0, 0};
    vigil_resource_registry *registry = NULL;
    if (vigil_resource_registry_new(&registry) != VIGIL_OK)
        return 1;
    vigil_resource_type t = directory_type(&other);
    t.version = VIGIL_RESOURCE_TYPE_VERSION + 1;
    expect(vigil_resource_register(registry, &t) == VIGIL_EVERSION && other.freed == 1,
           "a type of another version is refused and its payload freed");
    t = directory_type(&payload);
    expect(vigil_resource_register(registry, &t) == VIGIL_OK, "Directory registered");

    vigil_manifest_options opts = VIGIL_MANIFEST_OPTIONS_INIT;
    opts.root = repo;
    opts.resource_types = registry;
    vigil_manifest *m = NULL;
    int rc = vigil_manifest_load(&m, &opts);
    expect(rc == VIGIL_OK && vigil_manifest_count(m) == 1, "manifest loaded");
    if (rc != VIGIL_OK) {
        fprintf(stderr, "%s\n", vigil_error_last()->message);
        vigil_resource_registry_free(registry);
        return 1;
    }
    const vigil_resource *r = vigil_manifest_at(m, 0);
    printf("%s/%s from %s:%u: %s\n", vigil_resource_kind(r), vigil_resource_name(r),
           vigil_resource_file(r), vigil_resource_line(r), vigil_resource_spec_json(r));

    expect(observe(m) == VIGIL_RESOURCE_MISSING, "missing before it is made");
    mkdir(spool, 0750);
    chmod(spool, 0750);
    expect(observe(m) == VIGIL_RESOURCE_IN_SYNC, "in sync once made");
    chmod(spool, 0700);
    expect(observe(m) == VIGIL_RESOURCE_DRIFTED, "drifted after a chmod");
    expect(payload.observations == 3, "observed three times");
    vigil_manifest_free(m);

    /* a bad spec is located in the manifest */
    write_file(manifest, "apiVersion: vigil/v1\nkind: Directory\nmetadata: {name: spool}\n"
                         "spec: {path: relative/dir}\n");
    rc = vigil_manifest_load(&m, &opts);
    printf("%s\n", vigil_error_last()->message);
    expect(rc == VIGIL_EVALUE && strstr(vigil_error_last()->message,
                                        "dirs.yaml:4:14: spec.path: expected an absolute path"),
           "a bad spec is refused with its location");

    vigil_resource_registry_free(registry);
    expect(payload.freed == 1, "the registry freed the payload");
    rmdir(spool);
    rmdir(host);
    unlink(manifest);
    rmdir(repo);
    rmdir(tmp);
    return failures ? 1 : 0;
}
