/* The manifest library (lib/manifest): loading multi-document manifests
 * from the source directories of a checkout, every validation error with its
 * file:line:col and code, duplicates, escapes from the root, limits and
 * alias bombs; the built-in types' parse, observe and diff (Service with a
 * real child process and pidfile, a systemd unit through a mocked systemctl,
 * File content/mode/missing drift, Sysctl against a fake proc tree); the
 * exact JSON of the three bodies; blobs; custom resource types and the
 * registration contract. */
#include "testutil.h"

#include "proc/proc.h"
#include "vigil/manifest.h"
#include "vigil/sys/resource.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ---- helpers ----------------------------------------------------------------- */

/* Writes root/rel (making its directories) and returns its full path. */
static const char *put(const char *root, const char *rel, const char *text)
{
    static char path[8][PATH_MAX];
    static int k;
    char *p = path[k++ % 8];
    snprintf(p, PATH_MAX, "%.2000s/%.1000s", root, rel);
    for (char *s = p + strlen(root) + 1; (s = strchr(s, '/')) != NULL; s++) {
        *s = '\0';
        mkdir(p, 0755);
        *s = '/';
    }
    FILE *f = fopen(p, "w");
    ck_assert_msg(f != NULL, "fopen %s: %s", p, strerror(errno));
    fputs(text, f);
    fclose(f);
    return p;
}

static int64_t fixed_clock(void *payload)
{
    (void)payload;
    return 1700000000123;
}

static vigil_manifest_options opts_for(const char *root)
{
    vigil_manifest_options o = VIGIL_MANIFEST_OPTIONS_INIT;
    o.root = root;
    o.clock = fixed_clock;
    return o;
}

static vigil_manifest *load_ok(const vigil_manifest_options *o)
{
    vigil_manifest *m = NULL;
    int rc = vigil_manifest_load(&m, o);
    ck_assert_msg(rc == VIGIL_OK, "load: %d %s", rc, vigil_error_last()->message);
    return m;
}

/* Loads one file "m.yaml" holding `text` from a fresh root and expects code
 * and a message containing `needle`. */
static void load_fails(const char *text, int code, const char *needle)
{
    const char *root = vt_tmpdir();
    put(root, "m.yaml", text);
    vigil_manifest_options o = opts_for(root);
    vigil_manifest *m = (vigil_manifest *)1;
    int rc = vigil_manifest_load(&m, &o);
    ck_assert_msg(rc == code, "expected %d, got %d (%s) for:\n%s", code, rc,
                  vigil_error_last()->message, text);
    ck_assert_ptr_null(m);
    vt_assert_error(code, needle);
}

static vigil_drift *observe_ok(const vigil_manifest *m)
{
    vigil_drift *d = NULL;
    int rc = vigil_manifest_observe(&d, m, "web-01");
    ck_assert_msg(rc == VIGIL_OK, "observe: %d %s", rc, vigil_error_last()->message);
    return d;
}

static vigil_drift_item item(const vigil_drift *d, size_t i)
{
    vigil_drift_item it = VIGIL_DRIFT_ITEM_INIT;
    ck_assert_int_eq(vigil_drift_item_at(d, i, &it), VIGIL_OK);
    return it;
}

static const char *sha_of(const char *text)
{
    /* sha256 of the few strings the tests use, computed once by the library */
    static char out[4][65];
    static int k;
    char *o = out[k++ % 4];
    const char *root = vt_tmpdir();
    char doc[512];
    snprintf(doc, sizeof(doc),
             "apiVersion: vigil/v1\nkind: File\nmetadata: {name: x}\nspec: {path: /x, content: "
             "\"%s\"}\n",
             text);
    put(root, "x.yaml", doc);
    vigil_manifest_options op = opts_for(root);
    vigil_manifest *m = load_ok(&op);
    const char *j = vigil_resource_spec_json(vigil_manifest_at(m, 0));
    const char *s = strstr(j, "\"sha256\":\"");
    ck_assert_ptr_nonnull(s);
    memcpy(o, s + 10, 64);
    o[64] = '\0';
    vigil_manifest_free(m);
    return o;
}

/* ---- loading ------------------------------------------------------------------ */

START_TEST(multi_document_files_load_in_sorted_order)
{
    const char *root = vt_tmpdir();
    put(root, "hosts/web/b.yml",
        "apiVersion: vigil/v1\n"
        "kind: Sysctl\n"
        "metadata: {name: somaxconn}\n"
        "spec: {key: net.core.somaxconn, value: \"4096\"}\n");
    put(root, "hosts/web/a.yaml",
        "apiVersion: vigil/v1\n"
        "kind: File\n"
        "metadata:\n"
        "  name: motd\n"
        "  labels: {tier: web, app.io/part: front}\n"
        "spec: {path: /etc/motd, content: \"hello\\n\", mode: \"0644\", owner: root, selfHeal: "
        "true}\n"
        "---\n"
        "apiVersion: vigil/v1\n"
        "kind: Service\n"
        "metadata: {name: api}\n"
        "spec:\n"
        "  process: {start: [/usr/local/bin/api, --port, \"8081\"], pidfile: /run/api.pid}\n"
        "  replicas: 2\n"
        "  health: {tcp: \"127.0.0.1:8081\", timeout: 500ms}\n"
        "  action: restart_api\n"
        "  selfHeal: true\n"
        "---\n");
    put(root, "hosts/web/sub/c.yaml",
        "apiVersion: vigil/v1\nkind: Sysctl\nmetadata: {name: forward}\n"
        "spec: {key: net.ipv4.ip_forward, value: 1}\n");
    put(root, "hosts/web/notes.txt", "not a manifest");
    put(root, "hosts/web/.hidden/x.yaml", "not: [valid");
    put(root, "hosts/db/d.yaml", "kind: nothing");
    const char *sources[] = {"hosts/web", NULL};
    vigil_manifest_options o = opts_for(root);
    o.sources = sources;
    vigil_manifest *m = load_ok(&o);
    ck_assert_uint_eq(vigil_manifest_file_count(m), 3);
    ck_assert_str_eq(vigil_manifest_file_at(m, 0), "hosts/web/a.yaml");
    ck_assert_str_eq(vigil_manifest_file_at(m, 1), "hosts/web/b.yml");
    ck_assert_str_eq(vigil_manifest_file_at(m, 2), "hosts/web/sub/c.yaml");
    ck_assert_uint_eq(vigil_manifest_count(m), 4);

    const vigil_resource *f = vigil_manifest_at(m, 0);
    ck_assert_str_eq(vigil_resource_kind(f), "File");
    ck_assert_str_eq(vigil_resource_name(f), "motd");
    ck_assert_int_eq(vigil_resource_self_heal(f), 1);
    ck_assert_str_eq(vigil_resource_file(f), "hosts/web/a.yaml");
    ck_assert_uint_eq(vigil_resource_line(f), 1);
    ck_assert_uint_eq(vigil_resource_label_count(f), 2);
    ck_assert_str_eq(vigil_resource_label_key_at(f, 1), "app.io/part");
    ck_assert_str_eq(vigil_resource_label_value_at(f, 1), "front");
    ck_assert_str_eq(vigil_resource_label(f, "tier"), "web");
    ck_assert_ptr_null(vigil_resource_label(f, "nope"));
    char want[512];
    snprintf(want, sizeof(want),
             "{\"path\":\"/etc/motd\",\"sha256\":\"%s\",\"mode\":\"0644\",\"owner\":\"root\"}",
             "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");
    ck_assert_str_eq(vigil_resource_spec_json(f), want);

    const vigil_resource *s = vigil_manifest_at(m, 1);
    ck_assert_str_eq(vigil_resource_kind(s), "Service");
    ck_assert_uint_eq(vigil_resource_line(s), 8);
    ck_assert_str_eq(vigil_resource_spec_json(s),
                     "{\"process\":{\"start\":[\"/usr/local/bin/api\",\"--port\",\"8081\"],"
                     "\"pidfile\":\"/run/api.pid\"},\"state\":\"running\",\"replicas\":2,"
                     "\"health\":{\"tcp\":\"127.0.0.1:8081\",\"timeout\":\"500ms\"},"
                     "\"action\":\"restart_api\"}");
    ck_assert_str_eq(vigil_resource_spec_json(vigil_manifest_at(m, 2)),
                     "{\"key\":\"net.core.somaxconn\",\"value\":\"4096\"}");
    ck_assert_ptr_eq(vigil_manifest_find(m, "Sysctl", "forward"), vigil_manifest_at(m, 3));
    ck_assert_ptr_null(vigil_manifest_find(m, "File", "forward"));

    char t[64];
    ck_assert_int_eq(vigil_resource_target(f, "web-01", t, sizeof(t)), VIGIL_OK);
    ck_assert_str_eq(t, "web-01/File/motd");
    ck_assert_int_eq(vigil_resource_target(f, "web-01", t, 10), VIGIL_ERANGE);
    ck_assert_str_eq(t, "");
    ck_assert_int_eq(vigil_resource_target(f, "a/b", t, sizeof(t)), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_resource_target(f, "", t, sizeof(t)), VIGIL_EINVAL);
    vigil_manifest_free(m);

    /* the root itself when no source is given; explicit files after sources */
    vigil_manifest_options o2 = opts_for(root);
    const char *files[] = {"hosts/web/b.yml", NULL};
    o2.files = files;
    m = load_ok(&o2);
    ck_assert_uint_eq(vigil_manifest_count(m), 1);
    vigil_manifest_free(m);
    vigil_manifest_options o3 = opts_for(root);
    const char *src3[] = {"hosts/web/sub", "./hosts/web/sub/", NULL};
    o3.sources = src3;
    m = load_ok(&o3);
    ck_assert_uint_eq(vigil_manifest_file_count(m), 1); /* listed twice, loaded once */
    ck_assert_str_eq(vigil_manifest_file_at(m, 0), "hosts/web/sub/c.yaml");
    vigil_manifest_free(m);
}
END_TEST

START_TEST(bad_arguments_and_options)
{
    vigil_manifest *m = NULL;
    vigil_manifest_options o = VIGIL_MANIFEST_OPTIONS_INIT;
    ck_assert_int_eq(vigil_manifest_load(NULL, &o), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_manifest_load(&m, NULL), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_manifest_load(&m, &o), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "manifest options: root is required");
    o.version = 2;
    o.root = "/";
    ck_assert_int_eq(vigil_manifest_load(&m, &o), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION, "manifest options: version 2 is not supported");
    ck_assert_int_eq(vigil_manifest_options_init(&o, 0), VIGIL_EVERSION);
    ck_assert_int_eq(vigil_manifest_options_init(&o, 1), VIGIL_OK);
    o.root = "/nonexistent/vigil-root";
    ck_assert_int_eq(vigil_manifest_load(&m, &o), VIGIL_ENOTFOUND);
    const char *root = vt_tmpdir();
    o = opts_for(root);
    const char *missing[] = {"hosts/none", NULL};
    o.sources = missing;
    ck_assert_int_eq(vigil_manifest_load(&m, &o), VIGIL_ENOTFOUND);
    vt_assert_error(VIGIL_ENOTFOUND, "source \"hosts/none\"");
    /* an empty root loads nothing */
    o = opts_for(root);
    m = load_ok(&o);
    ck_assert_uint_eq(vigil_manifest_count(m), 0);
    ck_assert_ptr_null(vigil_manifest_at(m, 0));
    vigil_manifest_free(m);
    vigil_manifest_free(NULL);
    ck_assert_str_eq(vigil_resource_status_name(VIGIL_RESOURCE_MISSING), "missing");
    ck_assert_str_eq(vigil_resource_status_name((vigil_resource_status)9), "unknown");
}
END_TEST

#define DOC(kind, name, spec) \
    "apiVersion: vigil/v1\nkind: " kind "\nmetadata: {name: " name "}\nspec: " spec "\n"

START_TEST(every_validation_error_is_located)
{
    /* common fields */
    load_fails("apiVersion: vigil/v2\nkind: File\nmetadata: {name: a}\nspec: {}\n", VIGIL_EVALUE,
               "m.yaml:1:13: apiVersion: expected \"vigil/v1\", got \"vigil/v2\"");
    load_fails("kind: File\nmetadata: {name: a}\nspec: {}\n", VIGIL_EMISSING,
               "m.yaml:1:1: missing required key \"apiVersion\"");
    load_fails(DOC("File", "a", "{path: /a, content: x}") "status: {}\n", VIGIL_EUNKNOWNKEY,
               "m.yaml:5:1: status: unknown key");
    load_fails(DOC("Filez", "a", "{}"), VIGIL_EUNSUPPORTED,
               "m.yaml:2:7: kind: unknown kind \"Filez\" (expected Service, File, Sysctl, Policy "
               "or a registered resource type)");
    load_fails("apiVersion: vigil/v1\nkind: File\nmetadata: {labels: {}}\nspec: {}\n",
               VIGIL_EMISSING, "m.yaml:3:11: metadata: missing required key \"name\"");
    load_fails(DOC("File", "Web_1", "{path: /a, content: x}"), VIGIL_EVALUE,
               "m.yaml:3:18: metadata.name: invalid name \"Web_1\" (expected "
               "[a-z0-9]([-a-z0-9.]*[a-z0-9])?, at most 253 bytes)");
    load_fails(DOC("File", "-a", "{path: /a, content: x}"), VIGIL_EVALUE, "invalid name \"-a\"");
    load_fails("apiVersion: vigil/v1\nkind: File\nmetadata: {name: a, owner: me}\nspec: {}\n",
               VIGIL_EUNKNOWNKEY, "m.yaml:3:21: metadata.owner: unknown key");
    load_fails("apiVersion: vigil/v1\nkind: File\nmetadata: {name: a}\n", VIGIL_EMISSING,
               "m.yaml:1:1: missing required key \"spec\"");
    load_fails("apiVersion: vigil/v1\nkind: File\nmetadata: {name: a, labels: {\"a b\": x}}\n"
               "spec: {path: /a, content: x}\n",
               VIGIL_ENAME, "invalid label key \"a b\"");
    load_fails(DOC("File", "a", "{path: /a, content: x, selfHeal: maybe}"), VIGIL_EVALUE,
               "m.yaml:4:40: spec.selfHeal:");
    load_fails(DOC("File", "a", "{path: /a, content: x, color: red}"), VIGIL_EUNKNOWNKEY,
               "m.yaml:4:30: spec.color: unknown key");
    load_fails("- a\n- b\n", VIGIL_ETYPE, "m.yaml:1:1:");
    load_fails("apiVersion: vigil/v1\nkind: [File\n", VIGIL_EYAML, "m.yaml:");

    /* File */
    load_fails(DOC("File", "a", "{content: x}"), VIGIL_EMISSING,
               "m.yaml:4:7: spec: missing required key \"path\"");
    load_fails(DOC("File", "a", "{path: /a}"), VIGIL_EMISSING,
               "m.yaml:4:7: spec: one of source, content or sha256 is required");
    load_fails(DOC("File", "a", "{path: /a, content: x, source: f}"), VIGIL_EVALUE,
               "m.yaml:4:27: spec.content: source and content exclude each other");
    load_fails(DOC("File", "a", "{path: /a, content: x, mode: rw-r--r--}"), VIGIL_EVALUE,
               "m.yaml:4:36: spec.mode: expected an octal mode such as \"0644\", got "
               "\"rw-r--r--\"");
    load_fails(DOC("File", "a", "{path: /a, content: x, mode: \"0988\"}"), VIGIL_EVALUE,
               "spec.mode: expected an octal mode");
    load_fails(DOC("File", "a", "{path: /a, content: x, owner: \"Bad User\"}"), VIGIL_EVALUE,
               "spec.owner: expected a user name or a uid, got \"Bad User\"");
    load_fails(DOC("File", "a", "{path: /a, sha256: ABC}"), VIGIL_EVALUE,
               "m.yaml:4:26: spec.sha256: expected 64 lower-case hex digits, got \"ABC\"");
    load_fails(DOC("File", "a",
                   "{path: /a, content: x, sha256: "
                   "0000000000000000000000000000000000000000000000000000000000000000}"),
               VIGIL_EVALUE, "spec.sha256: does not match the sha256 of the content (2d711642b7");
    load_fails(DOC("File", "a", "{path: /etc/../shadow, content: x}"), VIGIL_EPERM,
               "m.yaml:4:14: spec.path: \"/etc/../shadow\": a path may not hold a \"..\" "
               "component");
    load_fails(DOC("File", "a", "{path: /a, source: missing.txt}"), VIGIL_ENOTFOUND,
               "m.yaml:4:26: spec.source: \"missing.txt\": no such file in the repository");

    /* Service */
    load_fails(DOC("Service", "a", "{state: running}"), VIGIL_EMISSING,
               "m.yaml:4:7: spec: expected one of process or unit");
    load_fails(DOC("Service", "a", "{unit: a.service, process: {start: [/bin/a]}}"), VIGIL_EVALUE,
               "spec: expected one of process or unit");
    load_fails(DOC("Service", "a", "{process: {start: [bin/a]}}"), VIGIL_EVALUE,
               "m.yaml:4:26: spec.process.start[0]: expected the absolute path of the program, "
               "got \"bin/a\" (no PATH search)");
    load_fails(DOC("Service", "a", "{process: {start: []}}"), VIGIL_EVALUE,
               "spec.process.start: expected 1 to 64 arguments, got 0");
    load_fails(DOC("Service", "a", "{process: {start: [/bin/a], pid: /run/a.pid}}"),
               VIGIL_EUNKNOWNKEY, "spec.process.pid: unknown key");
    load_fails(DOC("Service", "a", "{process: {start: [/bin/a], user: no-such-user-x}}"),
               VIGIL_EVALUE, "spec.process.user: no user named \"no-such-user-x\"");
    load_fails(DOC("Service", "a", "{unit: \"-a\"}"), VIGIL_EVALUE,
               "spec.unit: expected a systemd unit name such as api.service, got \"-a\"");
    load_fails(DOC("Service", "a", "{unit: a.service, state: up}"), VIGIL_EVALUE,
               "m.yaml:4:32: spec.state: expected running or stopped, got \"up\"");
    load_fails(DOC("Service", "a", "{unit: a.service, replicas: 2}"), VIGIL_EVALUE,
               "spec.replicas: replicas needs process (not unit)");
    load_fails(DOC("Service", "a", "{process: {start: [/bin/a]}, replicas: -1}"), VIGIL_ERANGE,
               "spec.replicas: expected 0 to 10000");
    load_fails(DOC("Service", "a", "{unit: a, health: {http: \"http://x\", tcp: \"x:1\"}}"),
               VIGIL_EVALUE, "spec.health: expected one of http or tcp");
    load_fails(DOC("Service", "a", "{unit: a, health: {http: \"ftp://x\"}}"), VIGIL_EVALUE,
               "spec.health.http: expected an http:// or https:// URL, got \"ftp://x\"");
    load_fails(DOC("Service", "a", "{unit: a, health: {tcp: \"x:99999\"}}"), VIGIL_EVALUE,
               "spec.health.tcp: expected host:port such as 127.0.0.1:8080, got \"x:99999\"");
    load_fails(DOC("Service", "a", "{unit: a, health: {tcp: \"x:1\", timeout: 2m}}"), VIGIL_ERANGE,
               "spec.health.timeout: expected a timeout from 1ms to 60s");
    load_fails(DOC("Service", "a", "{unit: a, selfHeal: true}"), VIGIL_EMISSING,
               "m.yaml:4:7: spec: missing required key \"action\" (selfHeal needs the action "
               "that restores the service)");
    load_fails(DOC("Service", "a", "{unit: a, action: \"rm -rf\"}"), VIGIL_EVALUE,
               "spec.action: invalid action name \"rm -rf\"");

    /* Sysctl */
    load_fails(DOC("Sysctl", "a", "{key: \"../../etc/passwd\", value: x}"), VIGIL_EVALUE,
               "m.yaml:4:13: spec.key: expected a kernel parameter such as net.core.somaxconn, "
               "got \"../../etc/passwd\"");
    load_fails(DOC("Sysctl", "a", "{key: net.core.somaxconn}"), VIGIL_EMISSING,
               "spec: missing required key \"value\"");

    /* Policy: the policy library's own messages */
    load_fails(DOC("Policy", "cpu-hot",
                   "{kind: threshold, metric: cpu_usage, op: \"~\", threshold: 1, action: a}"),
               VIGIL_EVALUE,
               "m.yaml:4:48: spec.op: unknown op \"~\" (expected >, >=, <, <=, == or !=)");
    load_fails(DOC("Policy", "cpu-hot", "{name: x, kind: threshold, metric: m, action: a}"),
               VIGIL_EUNKNOWNKEY,
               "m.yaml:4:14: spec.name: unknown key (the rule's name is metadata.name)");
    load_fails(DOC("Policy", "cpu-hot", "{kind: downn, metric: m, action: a}"), VIGIL_EUNSUPPORTED,
               "spec.kind: unknown kind \"downn\"");
    load_fails(DOC("Policy", "cpu-hot", "{kind: threshold, metric: m}"), VIGIL_EMISSING,
               "spec: missing required key \"action\"");
    load_fails(DOC("Policy", "cpu-hot", "{kind: absent, metric: m, action: a, selfHeal: true}"),
               VIGIL_EUNKNOWNKEY, "spec.selfHeal: unknown key");
}
END_TEST

START_TEST(duplicate_kind_and_name_names_both_places)
{
    const char *root = vt_tmpdir();
    put(root, "a.yaml", DOC("File", "motd", "{path: /etc/motd, content: x}"));
    put(root, "b.yaml",
        DOC("Sysctl", "motd", "{key: a.b, value: x}") "---\n" DOC("File", "motd",
                                                                  "{path: /x, content: y}"));
    vigil_manifest_options o = opts_for(root);
    vigil_manifest *m = NULL;
    ck_assert_int_eq(vigil_manifest_load(&m, &o), VIGIL_EEXISTS);
    ck_assert_ptr_null(m);
    vt_assert_error(VIGIL_EEXISTS, "b.yaml:8:18: metadata.name: File \"motd\" is defined twice "
                                   "(first at a.yaml:1:1)");
    ck_assert_str_eq(vigil_error_last()->file, "b.yaml");
    ck_assert_uint_eq(vigil_error_last()->line, 8);
}
END_TEST

/* ---- escapes -------------------------------------------------------------------- */

START_TEST(paths_never_leave_the_root)
{
    const char *outside = vt_tmpdir();
    put(outside, "secret.txt", "top secret");
    put(outside, "evil.yaml", DOC("File", "evil", "{path: /x, content: x}"));
    const char *root = vt_tmpdir();
    put(root, "hosts/web/ok.yaml", DOC("File", "ok", "{path: /x, content: x}"));
    vigil_manifest *m = NULL;

    const char *up[] = {"../etc", NULL}, *abs[] = {"/etc", NULL}, *mid[] = {"hosts/../..", NULL};
    vigil_manifest_options o = opts_for(root);
    o.sources = up;
    ck_assert_int_eq(vigil_manifest_load(&m, &o), VIGIL_EPERM);
    vt_assert_error(VIGIL_EPERM, "source \"../etc\" escapes the repository root: a \"..\" "
                                 "component");
    o.sources = abs;
    ck_assert_int_eq(vigil_manifest_load(&m, &o), VIGIL_EPERM);
    vt_assert_error(VIGIL_EPERM, "source \"/etc\" escapes the repository root: an absolute path");
    o.sources = mid;
    ck_assert_int_eq(vigil_manifest_load(&m, &o), VIGIL_EPERM);
    const char *files[] = {"../x.yaml", NULL};
    o.sources = NULL;
    o.files = files;
    ck_assert_int_eq(vigil_manifest_load(&m, &o), VIGIL_EPERM);
    vt_assert_error(VIGIL_EPERM, "file \"../x.yaml\" escapes the repository root");

    /* a source directory that is a symbolic link to the outside */
    char link[512];
    snprintf(link, sizeof(link), "%s/hosts/db", root);
    ck_assert_int_eq(symlink(outside, link), 0);
    const char *db[] = {"hosts/db", NULL};
    o = opts_for(root);
    o.sources = db;
    ck_assert_int_eq(vigil_manifest_load(&m, &o), VIGIL_EPERM);
    vt_assert_error(VIGIL_EPERM, "source \"hosts/db\" escapes the repository root: a symbolic "
                                 "link resolves outside it");
    /* ... found while walking a parent */
    const char *hosts[] = {"hosts", NULL};
    o.sources = hosts;
    ck_assert_int_eq(vigil_manifest_load(&m, &o), VIGIL_EPERM);
    vt_assert_error(VIGIL_EPERM, "hosts/db: symbolic link resolves outside the repository root");
    unlink(link);

    /* a manifest that is a link to a file outside */
    char evil[512], target[512];
    snprintf(evil, sizeof(evil), "%s/hosts/web/evil.yaml", root);
    snprintf(target, sizeof(target), "%s/evil.yaml", outside);
    ck_assert_int_eq(symlink(target, evil), 0);
    const char *web[] = {"hosts/web", NULL};
    o.sources = web;
    ck_assert_int_eq(vigil_manifest_load(&m, &o), VIGIL_EPERM);
    vt_assert_error(VIGIL_EPERM,
                    "hosts/web/evil.yaml: symbolic link resolves outside the repository root");
    unlink(evil);
    /* a link inside the root is followed */
    ck_assert_int_eq(symlink("ok.yaml", evil), 0);
    o.sources = NULL;
    const char *ev[] = {"hosts/web/evil.yaml", NULL};
    o.files = ev;
    m = load_ok(&o);
    ck_assert_uint_eq(vigil_manifest_count(m), 1);
    vigil_manifest_free(m);
    unlink(evil);

    /* a File whose source escapes: "..", absolute, a link pointing outside */
    load_fails(DOC("File", "a", "{path: /x, source: ../secret.txt}"), VIGIL_EPERM,
               "m.yaml:4:26: spec.source: \"../secret.txt\" escapes the repository root: a \"..\" "
               "component");
    load_fails(DOC("File", "a", "{path: /x, source: /etc/passwd}"), VIGIL_EPERM,
               "spec.source: \"/etc/passwd\" escapes the repository root: an absolute path");
    const char *r2 = vt_tmpdir();
    char lk[512], sec[512];
    snprintf(lk, sizeof(lk), "%s/files", r2);
    mkdir(lk, 0755);
    snprintf(lk, sizeof(lk), "%s/files/motd", r2);
    snprintf(sec, sizeof(sec), "%s/secret.txt", outside);
    ck_assert_int_eq(symlink(sec, lk), 0);
    put(r2, "m.yaml", DOC("File", "a", "{path: /x, source: files/motd}"));
    o = opts_for(r2);
    ck_assert_int_eq(vigil_manifest_load(&m, &o), VIGIL_EPERM);
    vt_assert_error(VIGIL_EPERM, "m.yaml:4:26: spec.source: \"files/motd\" escapes the "
                                 "repository root: a symbolic link resolves outside it");
}
END_TEST

/* Symbolic links to directories inside the root are followed, but a
 * directory is walked once: a chain of directories each holding two links
 * to the next would otherwise be walked 2^levels times (a repository that
 * keeps gitopsd busy for hours), and a link to itself is not a loop. */
static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

START_TEST(directory_links_are_walked_once)
{
    enum { LEVELS = 24 };
    const char *root = vt_tmpdir();
    char dir[1024], lk[1100], to[64];
    for (int i = 0; i <= LEVELS; i++) {
        snprintf(dir, sizeof(dir), "%.900s/d%02d", root, i);
        ck_assert_int_eq(mkdir(dir, 0755), 0);
        if (i == LEVELS)
            break;
        snprintf(to, sizeof(to), "../d%02d", i + 1);
        for (int k = 0; k < 2; k++) {
            snprintf(lk, sizeof(lk), "%s/%c", dir, k ? 'q' : 'p');
            ck_assert_int_eq(symlink(to, lk), 0);
        }
    }
    snprintf(lk, sizeof(lk), "%.900s/d00/self", root);
    ck_assert_int_eq(symlink(".", lk), 0);
    char rel[32];
    snprintf(rel, sizeof(rel), "d%02d/m.yaml", LEVELS);
    put(root, rel, DOC("Sysctl", "a", "{key: net.core.somaxconn, value: \"1\"}"));
    vigil_manifest_options o = opts_for(root);
    int64_t t0 = mono_ms();
    vigil_manifest *m = load_ok(&o);
    int64_t took = mono_ms() - t0;
    ck_assert_msg(took < 5000, "the walk took %lld ms", (long long)took);
    ck_assert_uint_eq(vigil_manifest_count(m), 1);
    vigil_manifest_free(m);
}
END_TEST

/* ---- limits ----------------------------------------------------------------------- */

START_TEST(limits_and_alias_bombs)
{
    const char *root = vt_tmpdir();
    vigil_manifest *m = NULL;
    char big[4096];
    memset(big, '#', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    put(root, "big.yaml", big);
    vigil_manifest_options o = opts_for(root);
    o.max_file_size = 1024;
    ck_assert_int_eq(vigil_manifest_load(&m, &o), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "big.yaml: 4095 bytes, more than the 1024 of max_file_size");

    const char *r2 = vt_tmpdir();
    put(r2, "m.yaml",
        DOC("Sysctl", "a", "{key: a.b, value: x}") "---\n" DOC(
            "Sysctl", "b", "{key: a.b, value: x}") "---\n" DOC("Sysctl", "c",
                                                               "{key: a.b, value: x}"));
    o = opts_for(r2);
    o.max_documents = 2;
    ck_assert_int_eq(vigil_manifest_load(&m, &o), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "m.yaml:11:1: more than 2 documents in one file");
    o = opts_for(r2);
    o.max_resources = 2;
    ck_assert_int_eq(vigil_manifest_load(&m, &o), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "m.yaml:11:1: more than 2 resources (max_resources)");
    put(r2, "n.yaml", DOC("Sysctl", "d", "{key: a.b, value: x}"));
    o = opts_for(r2);
    o.max_files = 1;
    ck_assert_int_eq(vigil_manifest_load(&m, &o), VIGIL_ELIMIT);
    vt_assert_error(VIGIL_ELIMIT, "more than 1 manifest files (max_files)");

    load_fails(DOC("Service", "a", "{process: {start: [/bin/a, [[[[[[[[x]]]]]]]]]}}"), VIGIL_ETYPE,
               "spec.process.start[1]: expected a string");
    const char *r3 = vt_tmpdir();
    put(r3, "m.yaml", DOC("Sysctl", "a", "{key: a.b, value: [[[[[[[[x]]]]]]]]}"));
    o = opts_for(r3);
    o.max_depth = 4;
    ck_assert_int_eq(vigil_manifest_load(&m, &o), VIGIL_ELIMIT);

    /* the billion laughs: nine levels of nine aliases */
    load_fails("a: &a [x, x, x, x, x, x, x, x, x]\n"
               "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
               "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
               "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
               "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
               "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
               "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
               "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
               "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n",
               VIGIL_ELIMIT, "m.yaml:");
    /* ${VAR} is never expanded in a manifest */
    setenv("VIGIL_TEST_SECRET", "hunter2", 1);
    const char *r4 = vt_tmpdir();
    put(r4, "m.yaml", DOC("File", "a", "{path: /x, content: \"${VIGIL_TEST_SECRET}\"}"));
    o = opts_for(r4);
    m = load_ok(&o);
    {
        char dir[600], blob[700], buf[64] = "";
        snprintf(dir, sizeof(dir), "%s/blobs", r4);
        ck_assert_int_eq(vigil_manifest_write_blobs(m, dir, NULL), VIGIL_OK);
        const char *j = vigil_resource_spec_json(vigil_manifest_at(m, 0));
        snprintf(blob, sizeof(blob), "%s/%.64s", dir, strstr(j, "\"sha256\":\"") + 10);
        FILE *fp = fopen(blob, "r");
        ck_assert_ptr_nonnull(fp);
        ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), fp));
        fclose(fp);
        ck_assert_str_eq(buf, "${VIGIL_TEST_SECRET}");
    }
    vigil_manifest_free(m);
}
END_TEST

/* ---- File ------------------------------------------------------------------------- */

START_TEST(file_drift_content_mode_missing_and_heal)
{
    const char *root = vt_tmpdir(), *host = vt_tmpdir();
    char target[512], yaml[8192];
    snprintf(target, sizeof(target), "%s/motd", host);
    put(root, "files/motd", "welcome\n");
    snprintf(
        yaml, sizeof(yaml),
        DOC("File", "motd",
            "{path: \"%s\", source: files/motd, mode: \"0640\", selfHeal: true}") "---\n" DOC("Fil"
                                                                                              "e",
                                                                                              "plai"
                                                                                              "n",
                                                                                              "{pat"
                                                                                              "h: "
                                                                                              "\"%"
                                                                                              "s\","
                                                                                              " con"
                                                                                              "tent"
                                                                                              ": "
                                                                                              "\"we"
                                                                                              "lcom"
                                                                                              "e\\n"
                                                                                              "\""
                                                                                              "}"),
        target, target);
    put(root, "hosts/m.yaml", yaml);
    vigil_manifest_options o = opts_for(root);
    vigil_manifest *m = load_ok(&o);
    const char *sha = "d8c1ac4b3fd1e0ce5d26cfa1c79cb5781f8ec1a0e7d82f5bcd2cabc1b4fe0b3b";
    (void)sha;
    char want_sha[65];
    {
        const char *j = vigil_resource_spec_json(vigil_manifest_at(m, 0));
        memcpy(want_sha, strstr(j, "\"sha256\":\"") + 10, 64);
        want_sha[64] = '\0';
        ck_assert_str_eq(want_sha, sha_of("welcome\\n"));
    }

    /* missing */
    vigil_drift *d = observe_ok(m);
    ck_assert_uint_eq(vigil_drift_count(d), 2);
    ck_assert_uint_eq(vigil_drift_drifted(d), 2);
    vigil_drift_item it = item(d, 0);
    ck_assert_str_eq(it.target, "web-01/File/motd");
    ck_assert_int_eq(it.status, VIGIL_RESOURCE_MISSING);
    ck_assert_uint_eq(it.diff_count, 1);
    const char *f, *de, *ob;
    ck_assert_int_eq(vigil_drift_diff_at(d, 0, 0, &f, &de, &ob), VIGIL_OK);
    ck_assert_str_eq(f, "sha256");
    ck_assert_str_eq(ob, "null");
    char want[4096];
    snprintf(want, sizeof(want),
             "{\"action\":\"restore_file\",\"target\":\"web-01/File/motd\",\"params\":{\"path\":"
             "\"%s\",\"sha256\":\"%s\",\"mode\":\"0640\"}}",
             target, want_sha);
    ck_assert_str_eq(it.heal_json, want);
    it = item(d, 1);
    ck_assert_ptr_null(it.heal_json); /* no selfHeal: detect only */
    ck_assert_int_eq(vigil_drift_diff_at(d, 0, 1, &f, &de, &ob), VIGIL_ENOTFOUND);
    vigil_drift_free(d);

    /* in sync */
    put(host, "motd", "welcome\n");
    chmod(target, 0640);
    d = observe_ok(m);
    ck_assert_uint_eq(vigil_drift_drifted(d), 0);
    it = item(d, 0);
    ck_assert_int_eq(it.status, VIGIL_RESOURCE_IN_SYNC);
    ck_assert_ptr_null(it.heal_json);
    ck_assert_str_eq(it.item_json,
                     "{\"target\":\"web-01/File/motd\",\"kind\":\"File\",\"name\":\"motd\","
                     "\"status\":\"in_sync\",\"selfHeal\":true,\"diff\":[]}");
    vigil_drift_free(d);

    /* content and mode */
    put(host, "motd", "hacked\n");
    chmod(target, 0666);
    d = observe_ok(m);
    it = item(d, 0);
    ck_assert_int_eq(it.status, VIGIL_RESOURCE_DRIFTED);
    ck_assert_uint_eq(it.diff_count, 2);
    ck_assert_int_eq(vigil_drift_diff_at(d, 0, 1, &f, &de, &ob), VIGIL_OK);
    ck_assert_str_eq(f, "mode");
    ck_assert_str_eq(de, "\"0640\"");
    ck_assert_str_eq(ob, "\"0666\"");
    snprintf(want, sizeof(want),
             "\"diff\":[{\"field\":\"sha256\",\"desired\":\"%s\",\"observed\":\"%s\"},", want_sha,
             sha_of("hacked\\n"));
    ck_assert_msg(strstr(it.item_json, want), "%s", it.item_json);
    it = item(d, 1);
    ck_assert_int_eq(it.status, VIGIL_RESOURCE_DRIFTED);
    ck_assert_uint_eq(it.diff_count, 1); /* no mode in its spec */
    vigil_drift_free(d);

    /* a symbolic link where the file should be */
    unlink(target);
    ck_assert_int_eq(symlink("/etc/hostname", target), 0);
    d = observe_ok(m);
    ck_assert_int_eq(vigil_drift_diff_at(d, 0, 0, &f, &de, &ob), VIGIL_OK);
    ck_assert_str_eq(f, "type");
    ck_assert_str_eq(de, "\"file\"");
    ck_assert_str_eq(ob, "\"symlink\"");
    vigil_drift_free(d);
    unlink(target);

    /* an owner that differs (the file is ours; desired is uid 0 unless we are root) */
    const char *r2 = vt_tmpdir();
    char y2[4096];
    put(host, "motd", "welcome\n");
    unsigned want_uid = geteuid() == 0 ? 1 : 0;
    snprintf(y2, sizeof(y2),
             DOC("File", "motd", "{path: \"%s\", content: \"welcome\\n\", owner: \"%u\"}"), target,
             want_uid);
    put(r2, "m.yaml", y2);
    vigil_manifest_options o2 = opts_for(r2);
    vigil_manifest *m2 = load_ok(&o2);
    d = observe_ok(m2);
    ck_assert_int_eq(vigil_drift_diff_at(d, 0, 0, &f, &de, &ob), VIGIL_OK);
    ck_assert_str_eq(f, "owner");
    char uo[32];
    snprintf(uo, sizeof(uo), "\"%u\"", (unsigned)geteuid());
    ck_assert_str_eq(ob, uo);
    vigil_drift_free(d);
    vigil_manifest_free(m2);
    vigil_manifest_free(m);
}
END_TEST

START_TEST(blobs_are_written_once_and_verified)
{
    const char *root = vt_tmpdir(), *work = vt_tmpdir();
    put(root, "files/a.conf", "alpha\n");
    put(root, "m.yaml",
        DOC("File", "a", "{path: /etc/a.conf, source: files/a.conf}") "---\n" DOC(
            "File", "b",
            "{path: /etc/b.conf, content: \"beta\\n\"}") "---\n" DOC("File", "c",
                                                                     "{path: /etc/c.conf, sha256: "
                                                                     "11111111111111111111111111111"
                                                                     "11111111111111111111111111111"
                                                                     "111111}"));
    vigil_manifest_options o = opts_for(root);
    vigil_manifest *m = load_ok(&o);
    char dir[512], p[700];
    snprintf(dir, sizeof(dir), "%s/blobs", work);
    size_t n = 99;
    ck_assert_int_eq(vigil_manifest_write_blobs(m, dir, &n), VIGIL_OK);
    ck_assert_uint_eq(n, 2);
    snprintf(p, sizeof(p), "%s/%s", dir, sha_of("alpha\\n"));
    char buf[64] = "";
    FILE *fp = fopen(p, "r");
    ck_assert_ptr_nonnull(fp);
    ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), fp));
    fclose(fp);
    ck_assert_str_eq(buf, "alpha\n");
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0644);
    snprintf(p, sizeof(p), "%s/%s", dir, sha_of("beta\\n"));
    ck_assert_int_eq(access(p, F_OK), 0);
    ck_assert_int_eq(vigil_manifest_write_blobs(m, dir, &n), VIGIL_OK);
    ck_assert_uint_eq(n, 0); /* present already */
    /* a source changed after the load is refused, nothing left behind */
    snprintf(p, sizeof(p), "%s/%s", dir, sha_of("alpha\\n"));
    unlink(p);
    put(root, "files/a.conf", "tampered\n");
    ck_assert_int_eq(vigil_manifest_write_blobs(m, dir, &n), VIGIL_ECORRUPT);
    vt_assert_error(VIGIL_ECORRUPT, "changed since the load");
    ck_assert_int_eq(access(p, F_OK), -1);
    ck_assert_int_eq(vigil_manifest_write_blobs(NULL, dir, &n), VIGIL_EINVAL);
    vigil_manifest_free(m);
}
END_TEST

/* ---- Sysctl ------------------------------------------------------------------------- */

START_TEST(sysctl_against_a_fake_proc_root)
{
    const char *root = vt_tmpdir(), *fake = vt_tmpdir();
    put(fake, "sys/net/core/somaxconn", "4096\n");
    put(fake, "sys/net/ipv4/tcp_rmem", "4096\t131072\t6291456\n");
    put(root, "m.yaml",
        DOC("Sysctl", "somaxconn", "{key: net.core.somaxconn, value: 4096}") "---\n" DOC(
            "Sysctl", "rmem",
            "{key: net.ipv4.tcp_rmem, value: \"4096 131072  6291456\"}") "---\n" DOC("Sysctl",
                                                                                     "gone",
                                                                                     "{key: "
                                                                                     "net.core."
                                                                                     "nothing, "
                                                                                     "value: "
                                                                                     "\"1\", "
                                                                                     "selfHeal: "
                                                                                     "true}"));
    vigil_manifest_options o = opts_for(root);
    o.proc_root = fake;
    vigil_manifest *m = load_ok(&o);
    ck_assert_str_eq(vigil_resource_spec_json(vigil_manifest_at(m, 1)),
                     "{\"key\":\"net.ipv4.tcp_rmem\",\"value\":\"4096 131072 6291456\"}");
    vigil_drift *d = observe_ok(m);
    ck_assert_int_eq(item(d, 0).status, VIGIL_RESOURCE_IN_SYNC);
    ck_assert_int_eq(item(d, 1).status, VIGIL_RESOURCE_IN_SYNC);
    vigil_drift_item it = item(d, 2);
    ck_assert_int_eq(it.status, VIGIL_RESOURCE_MISSING);
    ck_assert_ptr_null(it.heal_json); /* no built-in action writes kernel parameters */
    vigil_drift_free(d);
    put(fake, "sys/net/core/somaxconn", "128\n");
    d = observe_ok(m);
    ck_assert_str_eq(item(d, 0).item_json,
                     "{\"target\":\"web-01/Sysctl/somaxconn\",\"kind\":\"Sysctl\",\"name\":"
                     "\"somaxconn\",\"status\":\"drifted\",\"selfHeal\":false,\"diff\":[{"
                     "\"field\":\"value\",\"desired\":\"4096\",\"observed\":\"128\"}]}");
    vigil_drift_free(d);
    vigil_manifest_free(m);
}
END_TEST

/* ---- Service -------------------------------------------------------------------------- */

/* "600.<pid>": a duration GNU sleep accepts, unique to this run */
static char sleep_arg[32];

static pid_t spawn_sleep(const char *prog)
{
    pid_t pid;
    snprintf(sleep_arg, sizeof(sleep_arg), "600.%d", (int)getpid());
    char *argv[] = {(char *)prog, sleep_arg, NULL};
    ck_assert_int_eq(posix_spawn(&pid, prog, NULL, NULL, argv, environ), 0);
    return pid;
}

static const char *sleep_path(void)
{
    return access("/usr/bin/sleep", X_OK) == 0 ? "/usr/bin/sleep" : "/bin/sleep";
}

START_TEST(service_process_killed_is_drifted)
{
    const char *root = vt_tmpdir(), *run = vt_tmpdir();
    const char *prog = sleep_path();
    pid_t pid = spawn_sleep(prog);
    /* wait until the exec happened: the command line is the one spawned */
    char cl[512], buf[256];
    snprintf(cl, sizeof(cl), "/proc/%d/cmdline", (int)pid);
    int64_t deadline = vigil__monotonic_ms() + 10000;
    for (;;) {
        int fd = open(cl, O_RDONLY);
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
        if (fd >= 0)
            close(fd);
        if (n > 0 && strcmp(buf, prog) == 0)
            break;
        ck_assert_msg(vigil__monotonic_ms() < deadline, "the child did not exec");
        usleep(2000);
    }
    vigil__proc_statinfo si;
    ck_assert_int_eq(vigil__proc_stat(pid, &si), VIGIL_OK);
    char pidfile[512], text[64], yaml[8192];
    snprintf(pidfile, sizeof(pidfile), "%s/api.pid", run);
    snprintf(text, sizeof(text), "%d %llu\n", (int)pid, si.starttime);
    put(run, "api.pid", text);
    snprintf(yaml, sizeof(yaml),
             DOC("Service", "api",
                 "{process: {start: [\"%s\", \"%s\"], pidfile: \"%s\"}, replicas: 1, action: "
                 "restart_api, selfHeal: true}") "---\n" DOC("Service", "other",
                                                             "{process: {start: [\"%s\", \"61\"]}, "
                                                             "state: stopped}"),
             prog, sleep_arg, pidfile, prog);
    put(root, "m.yaml", yaml);
    vigil_manifest_options o = opts_for(root);
    vigil_manifest *m = load_ok(&o);
    vigil_drift *d = observe_ok(m);
    vigil_drift_item it = item(d, 0);
    ck_assert_msg(it.status == VIGIL_RESOURCE_IN_SYNC, "%s", it.item_json);
    ck_assert_int_eq(item(d, 1).status, VIGIL_RESOURCE_IN_SYNC);
    vigil_drift_free(d);

    /* a pidfile naming another start time (a reused pid) is not this service */
    snprintf(text, sizeof(text), "%d %llu\n", (int)pid, si.starttime + 1);
    put(run, "api.pid", text);
    d = observe_ok(m);
    ck_assert_int_eq(item(d, 0).status, VIGIL_RESOURCE_DRIFTED);
    vigil_drift_free(d);
    snprintf(text, sizeof(text), "%d\n", (int)pid);
    put(run, "api.pid", text);

    kill(pid, SIGKILL);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    d = observe_ok(m);
    it = item(d, 0);
    ck_assert_int_eq(it.status, VIGIL_RESOURCE_DRIFTED);
    ck_assert_str_eq(it.item_json,
                     "{\"target\":\"web-01/Service/api\",\"kind\":\"Service\",\"name\":\"api\","
                     "\"status\":\"drifted\",\"selfHeal\":true,\"diff\":[{\"field\":\"state\","
                     "\"desired\":\"running\",\"observed\":\"stopped\"},{\"field\":\"replicas\","
                     "\"desired\":1,\"observed\":0}],\"heal\":{\"action\":\"restart_api\","
                     "\"target\":\"api\",\"params\":{}}}");
    vigil_drift_free(d);
    vigil_manifest_free(m);
}
END_TEST

/* systemd is mocked: a script stands in for systemctl, answering with the
 * state a file holds and recording its arguments. */
START_TEST(service_unit_through_a_mocked_systemctl)
{
    const char *root = vt_tmpdir(), *bin = vt_tmpdir();
    char script[512], state[512], args[512], text[2048];
    snprintf(state, sizeof(state), "%s/state", bin);
    snprintf(args, sizeof(args), "%s/args", bin);
    snprintf(text, sizeof(text),
             "#!/bin/sh\nprintf '%%s\\n' \"$@\" > '%s'\nprintf 'ActiveState='\ncat '%s'\n", args,
             state);
    put(bin, "systemctl", text);
    snprintf(script, sizeof(script), "%s/systemctl", bin);
    chmod(script, 0755);
    put(bin, "state", "active\n");
    put(root, "m.yaml",
        DOC("Service", "nginx", "{unit: nginx.service, action: restart_nginx, selfHeal: true}"));
    vigil_manifest_options o = opts_for(root);
    o.systemctl = script;
    vigil_manifest *m = load_ok(&o);
    vigil_drift *d = observe_ok(m);
    ck_assert_msg(item(d, 0).status == VIGIL_RESOURCE_IN_SYNC, "%s", item(d, 0).item_json);
    vigil_drift_free(d);
    FILE *fp = fopen(args, "r");
    ck_assert_ptr_nonnull(fp);
    char got[256] = "";
    size_t n = fread(got, 1, sizeof(got) - 1, fp);
    got[n] = '\0';
    fclose(fp);
    ck_assert_str_eq(got, "show\n--property=ActiveState\n--\nnginx.service\n");

    put(bin, "state", "failed\n");
    d = observe_ok(m);
    vigil_drift_item it = item(d, 0);
    ck_assert_int_eq(it.status, VIGIL_RESOURCE_DRIFTED);
    ck_assert_str_eq(it.heal_json,
                     "{\"action\":\"restart_nginx\",\"target\":\"nginx\",\"params\":{}}");
    vigil_drift_free(d);

    /* a systemctl that fails makes an error item, not a failed observe */
    put(bin, "systemctl", "#!/bin/sh\necho 'Failed to connect to bus' >&2\nexit 1\n");
    chmod(script, 0755);
    d = observe_ok(m);
    it = item(d, 0);
    ck_assert_int_eq(it.status, VIGIL_RESOURCE_ERROR);
    ck_assert_uint_eq(vigil_drift_errors(d), 1);
    ck_assert_msg(strstr(it.error, "show nginx.service failed (exit 1): Failed to connect to bus"),
                  "%s", it.error);
    ck_assert_ptr_null(it.heal_json);
    vigil_drift_free(d);
    vigil_manifest_free(m);
}
END_TEST

START_TEST(service_health_tcp_and_http)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(ls, 8), 0);
    socklen_t al = sizeof(a);
    getsockname(ls, (struct sockaddr *)&a, &al);
    int port = ntohs(a.sin_port);

    const char *root = vt_tmpdir(), *fake = vt_tmpdir();
    /* a fake proc tree where one process runs the argv */
    put(fake, "4242/cmdline", "/usr/sbin/db\0--fast\0");
    {
        char p[512];
        snprintf(p, sizeof(p), "%s/4242/cmdline", fake);
        FILE *f = fopen(p, "w");
        fwrite("/usr/sbin/db\0--fast\0", 1, 20, f);
        fclose(f);
    }
    char yaml[8192];
    snprintf(yaml, sizeof(yaml),
             DOC("Service", "db",
                 "{process: {start: [/usr/sbin/db, --fast]}, health: {tcp: \"127.0.0.1:%d\", "
                 "timeout: 2s}}") "---\n" DOC("Service", "web",
                                              "{process: {start: [/usr/sbin/db, --fast]}, health: "
                                              "{http: "
                                              "\"http://127.0.0.1:%d/healthz\", timeout: 2s}}"),
             port, port);
    put(root, "m.yaml", yaml);
    vigil_manifest_options o = opts_for(root);
    o.proc_root = fake;
    vigil_manifest *m = load_ok(&o);
    vigil_drift *d = observe_ok(m);
    ck_assert_msg(item(d, 0).status == VIGIL_RESOURCE_IN_SYNC, "%s", item(d, 0).item_json);
    vigil_drift_free(d);
    close(ls); /* nothing listens any more: refused */
    d = observe_ok(m);
    const char *f, *de, *ob;
    vigil_drift_item it = item(d, 0);
    ck_assert_int_eq(it.status, VIGIL_RESOURCE_DRIFTED);
    ck_assert_int_eq(vigil_drift_diff_at(d, 0, 0, &f, &de, &ob), VIGIL_OK);
    ck_assert_str_eq(f, "health");
    ck_assert_str_eq(de, "\"ok\"");
    ck_assert_msg(strstr(ob, "Connection refused"), "%s", ob);
    it = item(d, 1);
    ck_assert_int_eq(it.status, VIGIL_RESOURCE_DRIFTED);
    ck_assert_int_eq(vigil_drift_diff_at(d, 1, 0, &f, &de, &ob), VIGIL_OK);
    ck_assert_str_eq(f, "health");
    ck_assert_msg(strstr(ob, "GET http://127.0.0.1:"), "%s", ob);
    vigil_drift_free(d);
    /* the process is gone: stopped, and health is not checked */
    char p[512];
    snprintf(p, sizeof(p), "%s/4242/cmdline", fake);
    unlink(p);
    d = observe_ok(m);
    ck_assert_uint_eq(item(d, 0).diff_count, 1);
    ck_assert_int_eq(vigil_drift_diff_at(d, 0, 0, &f, &de, &ob), VIGIL_OK);
    ck_assert_str_eq(f, "state");
    vigil_drift_free(d);
    vigil_manifest_free(m);
}
END_TEST

/* ---- bodies ------------------------------------------------------------------------------ */

START_TEST(bodies_have_the_contract_shapes)
{
    const char *root = vt_tmpdir(), *fake = vt_tmpdir();
    put(fake, "sys/net/core/somaxconn", "128\n");
    put(root, "m.yaml",
        "apiVersion: vigil/v1\nkind: Sysctl\nmetadata: {name: somaxconn, labels: {tier: "
        "web}}\nspec: {key: net.core.somaxconn, value: \"4096\", selfHeal: true}\n---\n" DOC(
            "Policy", "cpu-hot",
            "{kind: threshold, metric: cpu_usage, op: \">\", threshold: 0.9, window: 1m, action: "
            "scale, match: {host: \"*\"}, target: \"{{tags.host}}\"}"));
    vigil_manifest_options o = opts_for(root);
    o.proc_root = fake;
    vigil_manifest *m = load_ok(&o);
    const char *rev = "0123456789abcdef0123456789abcdef01234567";
    vigil_buf b = VIGIL_BUF_INIT;
    ck_assert_int_eq(vigil_manifest_desired_body(m, "web-01", rev, &b), VIGIL_OK);
    ck_assert_str_eq(b.ptr, "{\"source\":\"web-01\",\"revision\":"
                            "\"0123456789abcdef0123456789abcdef01234567\",\"resources\":[{"
                            "\"target\":\"web-01/Sysctl/somaxconn\",\"kind\":\"Sysctl\",\"name\":"
                            "\"somaxconn\",\"labels\":{\"tier\":\"web\"},\"selfHeal\":true,"
                            "\"spec\":{\"key\":\"net.core.somaxconn\",\"value\":\"4096\"}}]}");
    ck_assert_uint_eq(vigil_manifest_policy_count(m), 1);
    ck_assert_int_eq(vigil_manifest_policies_body(m, "web-01", rev, &b), VIGIL_OK);
    ck_assert_str_eq(b.ptr, "{\"source\":\"web-01\",\"revision\":"
                            "\"0123456789abcdef0123456789abcdef01234567\",\"policies\":[{"
                            "\"name\":\"cpu-hot\",\"kind\":\"threshold\",\"metric\":\"cpu_usage\","
                            "\"op\":\">\",\"threshold\":0.9,\"window\":\"1m\",\"action\":\"scale\","
                            "\"match\":{\"host\":\"*\"},\"target\":\"{{tags.host}}\"}]}");
    vigil_drift *d = observe_ok(m);
    ck_assert_uint_eq(vigil_drift_count(d), 1); /* a Policy has no observed state */
    ck_assert_int_eq(vigil_drift_observed_ms(d), 1700000000123);
    ck_assert_int_eq(vigil_drift_body(d, rev, &b), VIGIL_OK);
    ck_assert_str_eq(b.ptr, "{\"source\":\"web-01\",\"revision\":"
                            "\"0123456789abcdef0123456789abcdef01234567\",\"observed\":"
                            "1700000000123,\"items\":[{\"target\":\"web-01/Sysctl/somaxconn\","
                            "\"kind\":\"Sysctl\",\"name\":\"somaxconn\",\"status\":\"drifted\","
                            "\"selfHeal\":true,\"diff\":[{\"field\":\"value\",\"desired\":"
                            "\"4096\",\"observed\":\"128\"}]}]}");
    char longrev[200];
    memset(longrev, 'a', sizeof(longrev) - 1);
    longrev[sizeof(longrev) - 1] = '\0';
    ck_assert_int_eq(vigil_drift_body(d, longrev, &b), VIGIL_ELIMIT);
    ck_assert_int_eq(vigil_manifest_desired_body(m, "a/b", rev, &b), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_manifest_policies_body(m, "h", NULL, &b), VIGIL_EINVAL);
    vigil_drift_item bad = VIGIL_DRIFT_ITEM_INIT;
    bad.version = 7;
    ck_assert_int_eq(vigil_drift_item_at(d, 0, &bad), VIGIL_EVERSION);
    bad.version = VIGIL_DRIFT_ITEM_VERSION;
    ck_assert_int_eq(vigil_drift_item_at(d, 1, &bad), VIGIL_ENOTFOUND);
    vigil_drift_free(d);
    ck_assert_int_eq(vigil_manifest_observe(&d, m, "a/b"), VIGIL_EINVAL);
    ck_assert_ptr_null(d);
    vigil_buf_dispose(&b);
    vigil_manifest_free(m);
}
END_TEST

/* ---- custom types ----------------------------------------------------------------------- */

static int frees;
static void count_free(void *p)
{
    (void)p;
    frees++;
}

typedef struct mount_spec {
    char path[256];
} mount_spec;

static int mount_parse(void **state, const vigil_config_node *spec,
                       const vigil_resource_context *ctx)
{
    const char *p = NULL;
    ck_assert_str_eq((const char *)ctx->type_payload, "mount-payload");
    ck_assert_str_eq(ctx->kind, "Mount");
    if (vigil_config_get_string(&p, spec, "path", NULL) < 0)
        return vigil_error_last()->code;
    if (!p || p[0] != '/')
        return vigil_error_set_at(VIGIL_EVALUE, vigil_config_node_get(spec, "path"),
                                  "expected an absolute path");
    mount_spec *s = calloc(1, sizeof(*s));
    snprintf(s->path, sizeof(s->path), "%s", p);
    *state = s;
    return VIGIL_OK;
}

static int mount_observe(void **obs, const void *state, const vigil_resource_context *ctx)
{
    (void)ctx;
    const mount_spec *s = state;
    if (strcmp(s->path, "/broken") == 0)
        return vigil_error_set(VIGIL_EIO, "mount table unreadable");
    *obs = NULL;
    return VIGIL_OK;
}

static int mount_diff(vigil_resource_diff *d, const void *state, const void *obs,
                      const vigil_resource_context *ctx)
{
    (void)state;
    (void)obs;
    (void)ctx;
    int rc = vigil_resource_diff_add(d, "mounted", "yes", NULL);
    return rc < 0 ? rc : vigil_resource_diff_status(d, VIGIL_RESOURCE_MISSING);
}

static int mount_heal(vigil_resource_heal *h, const void *state, const void *obs,
                      const vigil_resource_context *ctx)
{
    (void)obs;
    (void)ctx;
    const mount_spec *s = state;
    int rc = vigil_resource_heal_set(h, "mount_it", NULL);
    return rc < 0 ? rc : vigil_resource_heal_param(h, "path", s->path);
}

static const char *const mount_keys[] = {"path", NULL};

static vigil_resource_type mount_type(void)
{
    vigil_resource_type t;
    memset(&t, 0, sizeof(t));
    t.version = VIGIL_RESOURCE_TYPE_VERSION;
    t.name = "Mount";
    t.payload = (void *)"mount-payload";
    t.payload_free = count_free;
    t.keys = mount_keys;
    t.parse = mount_parse;
    t.observe = mount_observe;
    t.diff = mount_diff;
    t.heal = mount_heal;
    t.destroy = free;
    return t;
}

START_TEST(custom_type_is_loaded_observed_and_healed)
{
    vigil_resource_registry *reg = NULL;
    ck_assert_int_eq(vigil_resource_registry_new(&reg), VIGIL_OK);
    frees = 0;
    vigil_resource_type t = mount_type();
    ck_assert_int_eq(vigil_resource_register(reg, &t), VIGIL_OK);
    ck_assert_uint_eq(vigil_resource_registry_count(reg), 1);
    ck_assert_str_eq(vigil_resource_registry_name_at(reg, 0), "Mount");
    const char *root = vt_tmpdir();
    put(root, "m.yaml",
        DOC("Mount", "data", "{path: /srv/data, selfHeal: true}") "---\n" DOC("Mount", "broken",
                                                                              "{path: /broken}"));
    vigil_manifest_options o = opts_for(root);
    vigil_manifest *m = NULL;
    ck_assert_int_eq(vigil_manifest_load(&m, &o), VIGIL_EUNSUPPORTED); /* not given */
    o.resource_types = reg;
    m = load_ok(&o);
    ck_assert_str_eq(vigil_resource_spec_json(vigil_manifest_at(m, 0)), "{\"path\":\"/srv/data\"}");
    ck_assert_str_eq(((const mount_spec *)vigil_resource_spec(vigil_manifest_at(m, 0)))->path,
                     "/srv/data");
    vigil_drift *d = observe_ok(m);
    ck_assert_str_eq(item(d, 0).item_json,
                     "{\"target\":\"web-01/Mount/data\",\"kind\":\"Mount\",\"name\":\"data\","
                     "\"status\":\"missing\",\"selfHeal\":true,\"diff\":[{\"field\":\"mounted\","
                     "\"desired\":\"yes\",\"observed\":null}],\"heal\":{\"action\":\"mount_it\","
                     "\"target\":\"web-01/Mount/data\",\"params\":{\"path\":\"/srv/data\"}}}");
    vigil_drift_item it = item(d, 1);
    ck_assert_int_eq(it.status, VIGIL_RESOURCE_ERROR);
    ck_assert_str_eq(it.error, "mount table unreadable");
    ck_assert_str_eq(it.item_json,
                     "{\"target\":\"web-01/Mount/broken\",\"kind\":\"Mount\",\"name\":\"broken\","
                     "\"status\":\"error\",\"selfHeal\":false,\"diff\":[],\"error\":\"mount "
                     "table unreadable\"}");
    vigil_drift_free(d);
    vigil_manifest_free(m);
    /* a located error from the type's parse */
    put(root, "m.yaml", DOC("Mount", "data", "{path: relative}"));
    ck_assert_int_eq(vigil_manifest_load(&m, &o), VIGIL_EVALUE);
    vt_assert_error(VIGIL_EVALUE, "m.yaml:4:14: spec.path: expected an absolute path");
    put(root, "m.yaml", DOC("Mount", "data", "{path: /a, size: 1}"));
    ck_assert_int_eq(vigil_manifest_load(&m, &o), VIGIL_EUNKNOWNKEY);
    vt_assert_error(VIGIL_EUNKNOWNKEY, "spec.size: unknown key");
    ck_assert_int_eq(frees, 0);
    vigil_resource_registry_free(reg);
    ck_assert_int_eq(frees, 1);
    vigil_resource_registry_free(NULL);
}
END_TEST

START_TEST(registration_refusals_free_the_payload)
{
    vigil_resource_registry *reg = NULL;
    ck_assert_int_eq(vigil_resource_registry_new(&reg), VIGIL_OK);
    ck_assert_int_eq(vigil_resource_registry_new(NULL), VIGIL_EINVAL);
    frees = 0;
    vigil_resource_type t = mount_type();
    t.version = 1;
    ck_assert_int_eq(vigil_resource_register(reg, &t), VIGIL_EVERSION);
    vt_assert_error(VIGIL_EVERSION,
                    "resource type: version 1 is not supported (this library reads version 2)");
    ck_assert_int_eq(frees, 1);
    t.version = 3;
    ck_assert_int_eq(vigil_resource_register(reg, &t), VIGIL_EVERSION);
    ck_assert_int_eq(frees, 2);
    t = mount_type();
    t.name = "mount";
    ck_assert_int_eq(vigil_resource_register(reg, &t), VIGIL_ENAME);
    vt_assert_error(VIGIL_ENAME, "resource type: name \"mount\" is invalid (expected "
                                 "[A-Z][A-Za-z0-9]*, at most 64 bytes)");
    ck_assert_int_eq(frees, 3);
    t = mount_type();
    t.name = "File";
    ck_assert_int_eq(vigil_resource_register(reg, &t), VIGIL_EEXISTS);
    vt_assert_error(VIGIL_EEXISTS, "resource type \"File\" is built in");
    ck_assert_int_eq(frees, 4);
    t = mount_type();
    t.parse = NULL;
    ck_assert_int_eq(vigil_resource_register(reg, &t), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "resource type \"Mount\": parse and destroy are required");
    ck_assert_int_eq(frees, 5);
    t = mount_type();
    t.diff = NULL;
    ck_assert_int_eq(vigil_resource_register(reg, &t), VIGIL_EINVAL);
    vt_assert_error(VIGIL_EINVAL, "observe and diff go together");
    ck_assert_int_eq(frees, 6);
    t = mount_type();
    ck_assert_int_eq(vigil_resource_register(NULL, &t), VIGIL_EINVAL);
    ck_assert_int_eq(frees, 7);
    ck_assert_int_eq(vigil_resource_register(reg, NULL), VIGIL_EINVAL);
    t = mount_type();
    ck_assert_int_eq(vigil_resource_register(reg, &t), VIGIL_OK);
    t = mount_type();
    ck_assert_int_eq(vigil_resource_register(reg, &t), VIGIL_EEXISTS);
    vt_assert_error(VIGIL_EEXISTS, "resource type \"Mount\" is already registered");
    ck_assert_int_eq(frees, 8);
    vigil_resource_registry_free(reg);
    ck_assert_int_eq(frees, 9);

    /* vigil_resource_path() applies the escape rules for a type of its own */
    {
        const char *root = vt_tmpdir();
        char real[PATH_MAX], out[PATH_MAX];
        put(root, "files/a", "a");
        ck_assert_ptr_nonnull(realpath(root, real));
        vigil_resource_context ctx;
        memset(&ctx, 0, sizeof(ctx));
        ctx.version = VIGIL_RESOURCE_CONTEXT_VERSION;
        ctx.root = real;
        ck_assert_int_eq(vigil_resource_path(&ctx, NULL, "files/a", out, sizeof(out)), VIGIL_OK);
        ck_assert_str_eq(out + strlen(real), "/files/a");
        ck_assert_int_eq(vigil_resource_path(&ctx, NULL, "files/a", out, 4), VIGIL_ERANGE);
        ck_assert_str_eq(out, "");
        ck_assert_int_eq(vigil_resource_path(&ctx, NULL, "files/../files/a", out, sizeof(out)),
                         VIGIL_EPERM);
        ck_assert_int_eq(vigil_resource_path(&ctx, NULL, "/etc/passwd", out, sizeof(out)),
                         VIGIL_EPERM);
        ck_assert_int_eq(vigil_resource_path(&ctx, NULL, "", out, sizeof(out)), VIGIL_EPERM);
        ck_assert_int_eq(vigil_resource_path(&ctx, NULL, "files/b", out, sizeof(out)),
                         VIGIL_ENOTFOUND);
        ck_assert_int_eq(vigil_resource_path(NULL, NULL, "files/a", out, sizeof(out)),
                         VIGIL_EINVAL);
    }

    /* the builders refuse bad input */
    ck_assert_int_eq(vigil_resource_diff_add(NULL, "f", "a", "b"), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_resource_diff_status(NULL, VIGIL_RESOURCE_ERROR), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_resource_heal_set(NULL, "a", NULL), VIGIL_EINVAL);
    ck_assert_int_eq(vigil_resource_heal_param(NULL, "a", "b"), VIGIL_EINVAL);
}
END_TEST

/* ---- allocation failures ---------------------------------------------------------------- */

typedef struct oom_ctx {
    const char *root;
    vigil_manifest *m;
    vigil_drift *d;
    vigil_buf b;
} oom_ctx;

static int oom_op(void *p)
{
    oom_ctx *c = p;
    vigil_manifest_options o = opts_for(c->root);
    int rc = vigil_manifest_load(&c->m, &o);
    if (rc < 0)
        return rc;
    if ((rc = vigil_manifest_observe(&c->d, c->m, "h")) < 0)
        return rc;
    if ((rc = vigil_manifest_desired_body(c->m, "h", "r", &c->b)) < 0)
        return rc;
    return vigil_drift_body(c->d, "r", &c->b);
}

static void oom_cleanup(void *p)
{
    oom_ctx *c = p;
    vigil_drift_free(c->d);
    vigil_manifest_free(c->m);
    vigil_buf_dispose(&c->b);
    c->d = NULL;
    c->m = NULL;
}

START_TEST(allocation_failures_leak_nothing)
{
    oom_ctx c;
    memset(&c, 0, sizeof(c));
    c.root = vt_tmpdir();
    put(c.root, "files/a", "a\n");
    put(c.root, "m.yaml",
        "apiVersion: vigil/v1\nkind: File\nmetadata: {name: a, labels: {x: y}}\n"
        "spec: {path: /nonexistent/a, source: files/a, selfHeal: true}\n---\n" DOC(
            "Sysctl", "s", "{key: a.b, value: x}") "---\n" DOC("Policy", "p",
                                                               "{kind: absent, metric: m, for: "
                                                               "1m, action: a}"));
    vt_alloc_install();
    ck_assert_int_gt(vt_oom_sweep(oom_op, oom_cleanup, &c, 0), 10);
}
END_TEST

static Suite *manifest_suite(void)
{
    Suite *s = suite_create("manifest");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, multi_document_files_load_in_sorted_order);
    tcase_add_test(tc, bad_arguments_and_options);
    tcase_add_test(tc, every_validation_error_is_located);
    tcase_add_test(tc, duplicate_kind_and_name_names_both_places);
    tcase_add_test(tc, paths_never_leave_the_root);
    tcase_add_test(tc, directory_links_are_walked_once);
    tcase_add_test(tc, limits_and_alias_bombs);
    tcase_add_test(tc, file_drift_content_mode_missing_and_heal);
    tcase_add_test(tc, blobs_are_written_once_and_verified);
    tcase_add_test(tc, sysctl_against_a_fake_proc_root);
    tcase_add_test(tc, service_process_killed_is_drifted);
    tcase_add_test(tc, service_unit_through_a_mocked_systemctl);
    tcase_add_test(tc, service_health_tcp_and_http);
    tcase_add_test(tc, bodies_have_the_contract_shapes);
    tcase_add_test(tc, custom_type_is_loaded_observed_and_healed);
    tcase_add_test(tc, registration_refusals_free_the_payload);
    tcase_add_test(tc, allocation_failures_leak_nothing);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(manifest_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
