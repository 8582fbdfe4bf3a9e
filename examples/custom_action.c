/*
 * custom_action - an action type written outside libvigil with the public
 * plug-in interface <vigil/sys/action.h>: "note_file" appends one line per
 * request to a file, after refusing targets its own rule forbids.
 *
 *   custom_action [FILE]      (default: notes.log in a new temporary directory,
 *                              removed at exit)
 *
 * The type is registered on a registry (never a global) next to the built-in
 * types, an action of that type is configured from a YAML snippet as the
 * remediator configures them from remediator.yaml, and three requests are
 * executed: one allowed, one refused by the action's target allowlist (a
 * regular expression the registry checks), and one refused by the type's own
 * validate(). Each result is printed.
 *
 * The plug-in contract (docs/plugins.md) shown end to end: the type's payload
 * (a count of the notes written) belongs to the registry, which frees it; a
 * type of another version is refused with VIGIL_EVERSION and its payload
 * freed at once; errors are reported through vigil_error_set() and, located
 * in the YAML, vigil_error_set_at().
 *
 * Build against an installed libvigil:
 *   cc -o custom_action custom_action.c $(pkg-config --cflags --libs vigil)
 *
 * Exit status 0 when every result is as expected, 1 otherwise.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vigil/action.h>
#include <vigil/sys/action.h>
#include <vigil/vigil.h>

/* ---- the action type ------------------------------------------------------------------ */

/* The type's payload: shared by every action of the type (execute may run on
 * several threads at once: a real type would guard it with a mutex). */
typedef struct note_stats {
    int notes;
    int freed;
} note_stats;

static void note_stats_free(void *payload)
{
    ((note_stats *)payload)->freed++;
}

typedef struct note_file {
    char *path;   /* where lines go */
    char *prefix; /* written before each line */
    note_stats *stats;
} note_file;

/* Config keys of this type besides the common ones (name, type, targets, ...). */
static const char *const note_keys[] = {"file", "prefix", NULL};

static void note_destroy(void *state)
{
    note_file *s = state;
    if (!s)
        return;
    free(s->path);
    free(s->prefix);
    free(s);
}

static int note_create(void **state, const vigil_config_node *config,
                       const vigil_action_context *ctx)
{
    const char *path, *prefix;
    int rc = vigil_config_require(config, "file");
    if (!rc)
        rc = vigil_config_get_string(&path, config, "file", NULL);
    if (!rc)
        rc = vigil_config_get_string(&prefix, config, "prefix", "note");
    if (rc)
        return rc; /* the message already names file:line:col */
    if (strchr(prefix, '\n'))
        return vigil_error_set_at(VIGIL_EVALUE, vigil_config_node_get(config, "prefix"),
                                  "the prefix must fit on one line");
    note_file *s = calloc(1, sizeof(*s));
    if (!s || !(s->path = strdup(path)) || !(s->prefix = strdup(prefix))) {
        note_destroy(s);
        return vigil_error_set(VIGIL_ENOMEM, "out of memory");
    }
    s->stats = ctx->type_payload; /* ctx->logger, ctx->base_dir... are there too */
    *state = s;
    return VIGIL_OK;
}

/* Our own rule on top of the registry's allowlists. */
static int note_validate(void *state, const vigil_action_request *request)
{
    (void)state;
    if (request->target && strcmp(request->target, "prod-db") == 0)
        return vigil_error_set(VIGIL_EPERM, "notes about prod-db go to the DBA team");
    return VIGIL_OK;
}

static int note_execute(void *state, const vigil_action_request *request,
                        const vigil_action_exec *exec, vigil_action_result *result)
{
    note_file *s = state;
    (void)exec; /* nothing here can outlive exec->deadline_ms */
    FILE *f = fopen(s->path, "a");
    char line[512];
    if (!f) {
        snprintf(line, sizeof(line), "cannot open %s", s->path);
        result->status = VIGIL_ACTION_FAILED;
        int rc = vigil_action_result_set_reason(result, "io");
        return rc ? rc : vigil_action_result_set_output(result, line, strlen(line));
    }
    const char *sev = vigil_action_request_param(request, "severity");
    snprintf(line, sizeof(line), "%s: %s (%s) severity=%s", s->prefix, request->target,
             request->reason ? request->reason : "no reason", sev ? sev : "-");
    fprintf(f, "%s\n", line);
    fclose(f);
    s->stats->notes++;
    result->status = VIGIL_ACTION_SUCCEEDED;
    return vigil_action_result_set_output(result, line, strlen(line));
}

/* The type, with @p stats as its payload. The registry copies the struct. */
static vigil_action_type note_type(note_stats *stats)
{
    vigil_action_type t;
    memset(&t, 0, sizeof(t));
    t.version = VIGIL_ACTION_TYPE_VERSION;
    t.name = "note_file";
    t.payload = stats;
    t.payload_free = note_stats_free;
    t.keys = note_keys;
    t.create = note_create;
    t.validate = note_validate;
    t.execute = note_execute;
    t.destroy = note_destroy;
    /* describe: the registry's generic dry-run text will do; reap: nothing to reap */
    return t;
}

/* ---- using it ---------------------------------------------------------------------- */

static void print_result(const char *target, int rc, const vigil_action_result *r)
{
    printf("%-10s rc=%d status=%s reason=%s output=%s\n", target, rc,
           vigil_action_status_name(r->status), r->reason ? r->reason : "-",
           r->output ? r->output : "");
}

/* The default note file: in a directory of its own under $TMPDIR (or /tmp),
 * so running the example leaves nothing behind in the working directory. */
static char g_tmpdir[512], g_tmpfile[600];

static void remove_tmp(void)
{
    if (g_tmpfile[0])
        remove(g_tmpfile);
    if (g_tmpdir[0])
        rmdir(g_tmpdir);
}

int main(int argc, char **argv)
{
    const char *file = argc > 1 ? argv[1] : NULL;
    if (!file) {
        const char *t = getenv("TMPDIR");
        snprintf(g_tmpdir, sizeof(g_tmpdir), "%s/custom_action.XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(g_tmpdir)) {
            perror("custom_action: mkdtemp");
            return 1;
        }
        snprintf(g_tmpfile, sizeof(g_tmpfile), "%s/notes.log", g_tmpdir);
        atexit(remove_tmp);
        file = g_tmpfile;
    }
    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             "actions:\n"
             "  - name: note_incident\n"
             "    type: note_file\n"
             "    file: \"%s\"\n"
             "    prefix: incident\n"
             "    targets: \"^(web|api|prod)-[a-z0-9]+$\"\n"
             "    params: {severity: \"^(low|high)$\"}\n"
             "    timeout: 2s\n",
             file);

    vigil_action_registry *reg = NULL;
    vigil_config *config = NULL;
    note_stats stats = {0, 0}, stale = {0, 0};
    int rc = vigil_action_registry_new(&reg, NULL);
    if (!rc)
        rc = vigil_action_registry_add_builtins(reg); /* exec, process, ... alongside ours */
    if (!rc) {
        /* a type of another version is refused, and its payload freed at once */
        vigil_action_type old = note_type(&stale);
        old.version = VIGIL_ACTION_TYPE_VERSION + 1;
        rc = vigil_action_register(reg, &old);
        printf("refused: %s\n", vigil_error_last()->message);
        if (rc != VIGIL_EVERSION || stale.freed != 1) {
            fprintf(stderr, "custom_action: a bad version gave %s, payload freed %d times\n",
                    vigil_strerror(rc), stale.freed);
            vigil_action_registry_free(reg);
            return 1;
        }
        vigil_action_type t = note_type(&stats);
        rc = vigil_action_register(reg, &t);
    }
    if (!rc) {
        /* the type's own located error */
        const char *bad =
            "actions:\n  - {name: bad, type: note_file, file: x, prefix: \"a\\nb\"}\n";
        rc = vigil_config_load_string(&config, bad, strlen(bad), "bad.yaml", NULL);
        if (!rc) {
            rc = vigil_action_registry_configure(
                reg, vigil_config_node_get(vigil_config_root(config, 0), "actions"));
            printf("refused: %s\n", vigil_error_last()->message);
            rc = rc == VIGIL_EVALUE && vigil_error_last()->line == 2 ? VIGIL_OK : VIGIL_ERROR;
        }
        vigil_config_free(config);
        config = NULL;
    }
    if (!rc)
        rc = vigil_config_load_string(&config, yaml, strlen(yaml), "example.yaml", NULL);
    if (!rc)
        rc = vigil_action_registry_configure(
            reg, vigil_config_node_get(vigil_config_root(config, 0), "actions"));
    vigil_config_free(config); /* the registry copied what it needs */
    if (rc) {
        fprintf(stderr, "custom_action: %s\n", vigil_error_last()->message);
        vigil_action_registry_free(reg);
        return 1;
    }

    static const char *const targets[] = {"web-7", "mail-1", "prod-db"};
    static const vigil_action_status expect[] = {VIGIL_ACTION_SUCCEEDED, VIGIL_ACTION_REFUSED,
                                                 VIGIL_ACTION_REFUSED};
    vigil_action_param severity = {"severity", "high"};
    int ok = 1;
    for (int i = 0; i < 3; i++) {
        vigil_action_request req = VIGIL_ACTION_REQUEST_INIT;
        req.id = "example-1";
        req.action = "note_incident";
        req.target = targets[i];
        req.params = &severity;
        req.nparams = 1;
        req.reason = "error_rate > 5%";
        req.policy = "high_error_rate";
        vigil_action_result res = VIGIL_ACTION_RESULT_INIT;
        rc = vigil_action_registry_execute(reg, &req, NULL, &res);
        print_result(targets[i], rc, &res);
        if (res.status != expect[i])
            ok = 0;
        vigil_action_result_clear(&res);
    }
    if (stats.notes != 1)
        ok = 0;
    vigil_action_registry_free(reg);
    if (stats.freed != 1)
        ok = 0;
    return ok ? 0 : 1;
}
