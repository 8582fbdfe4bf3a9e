/* vigil validate, simulate and test: local checks through the library's
 * loaders and a private policy engine on an in-memory store. */
#include "cli.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PLACEHOLDER   "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
#define INPUT_MAX     (64 * 1024 * 1024)
#define TEST_START_MS 1767225600000LL /* 2026-01-01T00:00:00Z: t=0 of a policy test */
#define VALUES_MAX    100000
#define DECISIONS_MAX 10000
#define POLICY_FILES  64
#define SERIES_MAX    256
#define TAGS_MAX      32
#define FIELD_MAX     5

/* ---- errors --------------------------------------------------------------------- */

/* Prints the library's last error as "file:line:col: message". */
static void report(const char *file, const char *prefix)
{
    const vigil_error *e = vigil_error_last();
    const char *msg = e->message ? e->message : "error";
    const char *f = e->file ? e->file : file;
    size_t fl = strlen(f);
    if (strncmp(msg, f, fl) == 0 && msg[fl] == ':')
        fprintf(stderr, "%s%s\n", prefix, msg);
    else if (e->line)
        fprintf(stderr, "%s%s:%u:%u: %s\n", prefix, f, e->line, e->column ? e->column : 1, msg);
    else
        fprintf(stderr, "%s%s: %s\n", prefix, file, msg);
}

/* ---- kinds ------------------------------------------------------------------------- */

typedef enum kind {
    K_UNKNOWN,
    K_AGENT,
    K_COLLECTOR,
    K_REMEDIATOR,
    K_POLICIES,
    K_MANIFEST,
    K_POLICY_TEST,
    K_GITOPSD
} kind;

static const char *const kind_names[] = {"unknown",  "agent",    "collector",   "remediator",
                                         "policies", "manifest", "policy-test", "gitopsd"};

static kind kind_parse(const char *s)
{
    for (int k = K_AGENT; k <= K_GITOPSD; k++)
        if (strcmp(s, kind_names[k]) == 0)
            return (kind)k;
    if (strcmp(s, "hub") == 0)
        return K_COLLECTOR;
    return K_UNKNOWN;
}

static int has(const vigil_config_node *root, const char *key)
{
    return vigil_config_node_get(root, key) != NULL;
}

/* The kind told by a document's keys. */
static kind kind_of(const vigil_config_node *root)
{
    if (vigil_config_node_kind(root) != VIGIL_CONFIG_MAP)
        return K_UNKNOWN;
    if (has(root, "apiVersion") || (has(root, "kind") && has(root, "metadata")))
        return K_MANIFEST;
    if (has(root, "tests"))
        return K_POLICY_TEST;
    if (has(root, "collectors") || has(root, "agent") || has(root, "spool") ||
        has(root, "heartbeat"))
        return K_AGENT;
    if (has(root, "actions") || has(root, "guards") || has(root, "audit") ||
        has(root, "secret_env"))
        return K_REMEDIATOR;
    if (has(root, "repo") || has(root, "manifests") || has(root, "sync") || has(root, "observe") ||
        has(root, "webhook"))
        return K_GITOPSD;
    if (has(root, "store") || has(root, "retention") || has(root, "policies_dir") ||
        has(root, "remediator") || has(root, "ingest") || has(root, "listen"))
        return K_COLLECTOR;
    if (has(root, "policies") && vigil_config_node_len(root) == 1)
        return K_POLICIES;
    return K_UNKNOWN;
}

/* Sets every variable the document names under a key ending in "env"
 * (secret_env, token_env, env of a token, ...) that is not set, to a
 * placeholder, so that the loaders check the rest. Returns how many. */
static int placeholders(const vigil_config_node *n, const char *file)
{
    int count = 0;
    vigil_config_kind k = vigil_config_node_kind(n);
    if (k == VIGIL_CONFIG_LIST) {
        for (size_t i = 0; i < vigil_config_node_len(n); i++)
            count += placeholders(vigil_config_node_at(n, i), file);
    } else if (k == VIGIL_CONFIG_MAP) {
        for (size_t i = 0; i < vigil_config_node_len(n); i++) {
            const char *key = vigil_config_node_key_at(n, i);
            const vigil_config_node *v = vigil_config_node_at(n, i);
            size_t kl = key ? strlen(key) : 0;
            if (!key)
                continue;
            const char *s = vigil_config_node_kind(v) == VIGIL_CONFIG_SCALAR
                                ? vigil_config_node_scalar(v)
                                : NULL;
            int env_key = (kl > 4 && strcmp(key + kl - 4, "_env") == 0) ||
                          (strcmp(key, "env") == 0 && vigil_config_node_get(n, "scopes"));
            if (env_key && s && *s && !getenv(s)) {
                setenv(s, PLACEHOLDER, 0);
                fprintf(stderr, "%s:%u:%u: note: %s is not set; checked with a placeholder\n", file,
                        vigil_config_node_line(v), vigil_config_node_column(v), s);
                count++;
            } else {
                count += placeholders(v, file);
            }
        }
    }
    return count;
}

/* ${VAR} expansion while validating: a variable that is not set expands to
 * "" (so that the default of ${VAR:-default} applies), noted once per file. */
typedef struct env_notes {
    const char *file;
    char seen[32][128];
    int nseen;
} env_notes;

static const char *validate_getenv(void *payload, const char *name)
{
    const char *v = getenv(name);
    if (v)
        return v;
    env_notes *n = payload;
    for (int i = 0; i < n->nseen; i++)
        if (strcmp(n->seen[i], name) == 0)
            return "";
    if (n->nseen < 32)
        snprintf(n->seen[n->nseen++], sizeof(n->seen[0]), "%s", name);
    fprintf(stderr, "%s: note: ${%s} is not set; checked as empty (its default, if any)\n", n->file,
            name);
    return "";
}

static int open_memory_engine(vigil_store **store, vigil_engine **engine,
                              const vigil_engine_options *base)
{
    if (vigil_store_open(store, "sqlite::memory:", NULL) != VIGIL_OK)
        return -1;
    vigil_engine_options eo = *base;
    eo.store = *store;
    if (vigil_engine_new(engine, &eo) != VIGIL_OK) {
        vigil_store_close(*store);
        *store = NULL;
        return -1;
    }
    return 0;
}

/* Loads the `policies:` of a file into the engine (other keys ignored when
 * `only_policies` is 0). */
static int load_policy_file(vigil_engine *engine, const char *path, int only_policies)
{
    vigil_config *cfg = NULL;
    if (vigil_config_load_file(&cfg, path, NULL) != VIGIL_OK)
        return -1;
    const vigil_config_node *root = vigil_config_root(cfg, 0);
    int rc = 0;
    if (only_policies) {
        static const char *const keys[] = {"policies", NULL};
        rc = vigil_config_expect_keys(root, keys);
    }
    const vigil_config_node *p = root ? vigil_config_node_get(root, "policies") : NULL;
    if (!rc && !p)
        rc = vigil_config_require(root, "policies");
    if (!rc)
        rc = vigil_engine_load(engine, p);
    vigil_config_free(cfg);
    return rc ? -1 : 0;
}

static int parse_test_file(const char *path, int run, int json, int *failed);

static int validate_one(const char *path, kind forced, int json, int *nkind)
{
    vigil_config *cfg = NULL;
    env_notes notes;
    memset(&notes, 0, sizeof(notes));
    notes.file = path;
    vigil_config_options co = VIGIL_CONFIG_OPTIONS_INIT;
    co.getenv = validate_getenv;
    co.getenv_payload = &notes;
    if (vigil_config_load_file(&cfg, path, &co) != VIGIL_OK) {
        report(path, "");
        return 1;
    }
    const vigil_config_node *root = vigil_config_root(cfg, 0);
    kind k = forced != K_UNKNOWN ? forced : kind_of(root);
    *nkind = (int)k;
    int bad = 0;
    switch (k) {
    case K_UNKNOWN:
        fprintf(stderr,
                "%s:1:1: cannot tell the kind of this file from its keys; use --kind (agent, "
                "collector, remediator, gitopsd, policies, manifest, policy-test)\n",
                path);
        bad = 1;
        break;
    case K_GITOPSD: {
        placeholders(root, path);
        vigil_gitops_config *g = NULL;
        if (vigil_gitops_config_load(&g, path, &co) != VIGIL_OK) {
            report(path, "");
            bad = 1;
        }
        vigil_gitops_config_free(g);
        break;
    }
    case K_AGENT: {
        placeholders(root, path);
        vigil_agent_options ao;
        vigil_agent_options_init(&ao, VIGIL_AGENT_OPTIONS_VERSION);
        if (vigil_agent_check_config(cfg, &ao) != VIGIL_OK) {
            report(path, "");
            bad = 1;
        }
        break;
    }
    case K_COLLECTOR: {
        placeholders(root, path);
        vigil_hub_config *h = NULL;
        if (vigil_hub_config_load(&h, path, &co) != VIGIL_OK) {
            report(path, "");
            bad = 1;
        }
        vigil_hub_config_free(h);
        break;
    }
    case K_REMEDIATOR: {
        placeholders(root, path);
        /* without secret_env the remediator reads its default variable */
        if (!vigil_config_node_get(root, "secret_env") && !getenv("VIGIL_REMEDIATOR_SECRET")) {
            setenv("VIGIL_REMEDIATOR_SECRET", PLACEHOLDER, 0);
            fprintf(stderr,
                    "%s: note: VIGIL_REMEDIATOR_SECRET (secret_env's default) is not set; "
                    "checked with a placeholder\n",
                    path);
        }
        vigil_remediator_config *r = NULL;
        if (vigil_remediator_config_load(&r, path, &co) != VIGIL_OK) {
            report(path, "");
            bad = 1;
        }
        vigil_remediator_config_free(r);
        break;
    }
    case K_POLICIES: {
        vigil_store *st = NULL;
        vigil_engine *en = NULL;
        vigil_engine_options eo = VIGIL_ENGINE_OPTIONS_INIT;
        if (open_memory_engine(&st, &en, &eo) || load_policy_file(en, path, 1)) {
            report(path, "");
            bad = 1;
        }
        vigil_engine_free(en);
        vigil_store_close(st);
        break;
    }
    case K_MANIFEST: {
        char *d1 = strdup(path), *d2 = strdup(path);
        if (!d1 || !d2) {
            free(d1);
            free(d2);
            fprintf(stderr, "%s: out of memory\n", path);
            bad = 1;
            break;
        }
        const char *files[2] = {basename(d2), NULL};
        vigil_manifest_options mo = VIGIL_MANIFEST_OPTIONS_INIT;
        mo.root = dirname(d1);
        mo.files = files;
        vigil_logger quiet = VIGIL_LOGGER_INIT;
        quiet.min_level = VIGIL_LOG_OFF;
        mo.logger = quiet;
        vigil_manifest *m = NULL;
        if (vigil_manifest_load(&m, &mo) != VIGIL_OK) {
            report(path, "");
            bad = 1;
        }
        vigil_manifest_free(m);
        free(d1);
        free(d2);
        break;
    }
    case K_POLICY_TEST: {
        int failed = 0;
        bad = parse_test_file(path, 0, json, &failed) != 0;
        break;
    }
    }
    vigil_config_free(cfg);
    return bad;
}

int cmd_validate(cli *c, int argc, const char **argv)
{
    kind forced = K_UNKNOWN;
    const char *files[CLI_ARGS_MAX];
    int nfiles = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--kind") == 0 || strncmp(argv[i], "--kind=", 7) == 0) {
            const char *v = argv[i][6] == '=' ? argv[i] + 7 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v || (forced = kind_parse(v)) == K_UNKNOWN)
                return cli_usage("validate", "--kind: expected agent, collector, remediator, "
                                             "gitopsd, policies, manifest or policy-test");
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage("validate", "unknown option \"%s\"", argv[i]);
        } else {
            files[nfiles++] = argv[i];
        }
    }
    if (!nfiles)
        return cli_usage("validate", "FILE is required");
    int nbad = 0;
    if (c->json)
        fputs("{\"files\":[", stdout);
    for (int i = 0; i < nfiles; i++) {
        int k = K_UNKNOWN;
        int bad = validate_one(files[i], forced, c->json, &k);
        nbad += bad;
        if (c->json) {
            printf("%s{\"file\":", i ? "," : "");
            cli_json_string(stdout, files[i]);
            printf(",\"kind\":\"%s\",\"ok\":%s", kind_names[k], bad ? "false" : "true");
            if (bad) {
                fputs(",\"error\":", stdout);
                cli_json_string(stdout, vigil_error_last()->message);
            }
            fputc('}', stdout);
        } else if (!bad) {
            printf("%s: ok (%s)\n", files[i], kind_names[k]);
        }
    }
    if (c->json)
        printf("],\"errors\":%d}\n", nbad);
    else if (nbad)
        fprintf(stderr, "%d of %d files have errors\n", nbad, nfiles);
    return nbad ? EXIT_FAILED : EXIT_OK;
}

/* ---- the replay engine shared by simulate and test ------------------------------------ */

typedef struct sim {
    vigil_store *store;
    vigil_engine *engine;
    int64_t now;
    int fail_actions; /* 1: requests fail; 0: succeed; -1: no result */
    int requests;
} sim;

static int64_t sim_clock(void *payload)
{
    return ((sim *)payload)->now;
}

static void sim_request(void *payload, const vigil_engine_request *req)
{
    sim *s = payload;
    s->requests++;
    if (s->fail_actions < 0)
        return;
    vigil_action_result r = VIGIL_ACTION_RESULT_INIT;
    if (vigil_action_result_set_id(&r, req->request->id) == VIGIL_OK) {
        r.status = s->fail_actions ? VIGIL_ACTION_FAILED : VIGIL_ACTION_SUCCEEDED;
        r.exit_code = s->fail_actions ? 1 : 0;
        vigil_engine_action_result(s->engine, &r);
    }
    vigil_action_result_clear(&r);
}

static int sim_open(sim *s, int fail_actions)
{
    memset(s, 0, sizeof(*s));
    s->fail_actions = fail_actions;
    vigil_engine_options eo = VIGIL_ENGINE_OPTIONS_INIT;
    eo.clock = sim_clock;
    eo.clock_payload = s;
    eo.on_request = sim_request;
    eo.request_payload = s;
    vigil_logger quiet = VIGIL_LOGGER_INIT;
    quiet.min_level = VIGIL_LOG_OFF;
    eo.logger = quiet;
    return open_memory_engine(&s->store, &s->engine, &eo);
}

static void sim_close(sim *s)
{
    vigil_engine_free(s->engine);
    vigil_store_close(s->store);
}

static int cmp_metric_ts(const void *a, const void *b)
{
    const vigil_metric *x = *(const vigil_metric *const *)a, *y = *(const vigil_metric *const *)b;
    return x->ts_ms < y->ts_ms ? -1 : x->ts_ms > y->ts_ms;
}

/* Splits `all` into one batch per timestamp, in time order. */
static int split_by_time(const vigil_batch *all, vigil_batch ***out, size_t *nout)
{
    size_t n = vigil_batch_count(all);
    const vigil_metric **ms = calloc(n ? n : 1, sizeof(*ms));
    vigil_batch **bs = calloc(n ? n : 1, sizeof(*bs));
    if (!ms || !bs) {
        free(ms);
        free(bs);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        ms[i] = vigil_batch_get(all, i);
    qsort(ms, n, sizeof(*ms), cmp_metric_ts);
    size_t nb = 0;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        if (!nb || ms[i]->ts_ms != ms[i - 1]->ts_ms) {
            rc = vigil_batch_new(&bs[nb]);
            if (rc)
                break;
            nb++;
        }
        rc = vigil_batch_add(bs[nb - 1], ms[i]);
    }
    free(ms);
    if (rc) {
        for (size_t i = 0; i < nb; i++)
            vigil_batch_free(bs[i]);
        free(bs);
        return -1;
    }
    *out = bs;
    *nout = nb;
    return 0;
}

static void free_batches(vigil_batch **bs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        vigil_batch_free(bs[i]);
    free(bs);
}

static cJSON *decisions_of(sim *s)
{
    vigil_buf b = VIGIL_BUF_INIT;
    cJSON *j = NULL;
    if (vigil_engine_decisions_json(s->engine, 0, DECISIONS_MAX, &b) == VIGIL_OK)
        j = cJSON_ParseWithLength(b.ptr, b.size);
    vigil_buf_dispose(&b);
    return j;
}

/* ---- simulate ------------------------------------------------------------------------ */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 65536 + 1 > cap) {
            cap = cap ? cap * 2 : 131072;
            char *nb = cap > INPUT_MAX + 65536 ? NULL : realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                errno = EFBIG;
                return NULL;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, 65536, f);
        n += r;
        if (r < 65536)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

int cmd_simulate(cli *c, int argc, const char **argv)
{
    const char *policies = NULL, *input = NULL;
    int64_t tick = 1000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--policies") == 0 && v) {
            policies = v;
            i++;
        } else if (strcmp(a, "--input") == 0 && v) {
            input = v;
            i++;
        } else if (strcmp(a, "--tick") == 0 && v) {
            if (cli_duration(v, &tick))
                return cli_usage("simulate", "--tick: expected a duration such as 1s");
            i++;
        } else {
            return cli_usage("simulate", "unexpected argument \"%s\"", a);
        }
    }
    if (!policies || !input)
        return cli_usage("simulate", "--policies FILE and --input METRICS.json are required");
    size_t len = 0;
    char *text = read_file(input, &len);
    if (!text) {
        cli_err("%s: %s", input, strerror(errno));
        return EXIT_FAILED;
    }
    vigil_batch *all = NULL;
    int rc = vigil_batch_new(&all);
    cJSON *doc = rc ? NULL : cJSON_ParseWithLength(text, len);
    if (!doc) {
        fprintf(stderr, "%s: not valid JSON\n", input);
        free(text);
        vigil_batch_free(all);
        return EXIT_FAILED;
    }
    /* one ingest document, or a list of them */
    int ndocs = cJSON_IsArray(doc) ? cJSON_GetArraySize(doc) : 1;
    for (int i = 0; i < ndocs && !rc; i++) {
        const cJSON *d = cJSON_IsArray(doc) ? cJSON_GetArrayItem(doc, i) : doc;
        char *one = cJSON_PrintUnformatted(d);
        vigil_batch *b = NULL;
        rc = one ? vigil_batch_new(&b) : VIGIL_ENOMEM;
        vigil_batch_decode_options o = VIGIL_BATCH_DECODE_OPTIONS_INIT;
        o.max_metrics = 1000000;
        if (!rc)
            rc = vigil_batch_decode_json(b, one, strlen(one), &o);
        if (rc)
            fprintf(stderr, "%s: document %d: %s\n", input, i, vigil_error_last()->message);
        for (size_t k = 0; !rc && k < vigil_batch_count(b); k++)
            rc = vigil_batch_add(all, vigil_batch_get(b, k));
        vigil_batch_free(b);
        cJSON_free(one);
    }
    cJSON_Delete(doc);
    free(text);
    if (rc) {
        vigil_batch_free(all);
        return EXIT_FAILED;
    }
    sim s;
    vigil_batch **bs = NULL;
    size_t nb = 0;
    if (sim_open(&s, 0) || load_policy_file(s.engine, policies, 0)) {
        report(policies, "");
        vigil_batch_free(all);
        sim_close(&s);
        return EXIT_FAILED;
    }
    if (split_by_time(all, &bs, &nb) ||
        vigil_engine_replay(s.engine, (const vigil_batch *const *)bs, nb, tick) != VIGIL_OK) {
        cli_err("replay: %s", vigil_error_last()->message);
        free_batches(bs, nb);
        vigil_batch_free(all);
        sim_close(&s);
        return EXIT_FAILED;
    }
    cJSON *d = decisions_of(&s);
    if (c->json) {
        char *out = cJSON_PrintUnformatted(d);
        puts(out ? out : "{\"decisions\":[]}");
        cJSON_free(out);
    } else {
        char t[64];
        printf("%zu samples in %zu steps, %d actions requested\n", vigil_batch_count(all), nb,
               s.requests);
        const cJSON *x;
        cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(d, "decisions"))
        {
            const cJSON *ts = cJSON_GetObjectItemCaseSensitive(x, "ts");
            const cJSON *p = cJSON_GetObjectItemCaseSensitive(x, "policy");
            const cJSON *dd = cJSON_GetObjectItemCaseSensitive(x, "decision");
            const cJSON *tg = cJSON_GetObjectItemCaseSensitive(x, "target");
            const cJSON *r = cJSON_GetObjectItemCaseSensitive(x, "reason");
            printf("%-20s  %-18s %-14s %-16s %s\n",
                   cli_time(cJSON_IsNumber(ts) ? (int64_t)ts->valuedouble : 0, t, sizeof(t)),
                   cJSON_IsString(p) ? p->valuestring : "-",
                   cJSON_IsString(dd) ? dd->valuestring : "-",
                   cJSON_IsString(tg) ? tg->valuestring : "-",
                   cJSON_IsString(r) ? r->valuestring : "-");
        }
    }
    cJSON_Delete(d);
    free_batches(bs, nb);
    vigil_batch_free(all);
    sim_close(&s);
    return EXIT_OK;
}

/* ---- policy tests ----------------------------------------------------------------------- */

/* A located error in a test file: prints file:line:col: message. */
static int node_err(const char *file, const vigil_config_node *n, const char *msg, const char *arg)
{
    fprintf(stderr, "%s:%u:%u: %s%s%s\n", file, n ? vigil_config_node_line(n) : 1,
            n ? vigil_config_node_column(n) : 1, msg, arg ? arg : "", arg ? "\"" : "");
    return -1;
}

static const char *const expect_fields[FIELD_MAX] = {"policy", "decision", "target", "action",
                                                     "reason"};

/* One expected or actual decision: at (ms from t=0) and the fields. */
typedef struct dec {
    int64_t at;
    int has_at;
    const char *f[FIELD_MAX];
    unsigned int line;
} dec;

static void dec_line(char *buf, size_t size, const dec *d, int all)
{
    size_t pos = 0;
    char at[32];
    vigil_scalar_format_duration(at, sizeof(at), d->at);
    if (d->has_at || all)
        pos += (size_t)snprintf(buf + pos, size - pos, "at=%s", d->at == 0 ? "0s" : at);
    for (int i = 0; i < FIELD_MAX && pos < size; i++)
        if (d->f[i] && (all || d->f[i]))
            pos += (size_t)snprintf(buf + pos, size - pos, "%s%s=%s", pos ? " " : "",
                                    expect_fields[i], d->f[i]);
}

static int dec_match(const dec *want, const dec *got)
{
    if (want->has_at && want->at != got->at)
        return 0;
    for (int i = 0; i < FIELD_MAX; i++)
        if (want->f[i] && (!got->f[i] || strcmp(want->f[i], got->f[i]) != 0))
            return 0;
    return 1;
}

static int get_str(const char *file, const vigil_config_node *map, const char *key,
                   const char **out)
{
    const vigil_config_node *n = vigil_config_node_get(map, key);
    *out = NULL;
    if (!n || vigil_config_node_kind(n) == VIGIL_CONFIG_NULL)
        return 0;
    if (vigil_config_node_kind(n) != VIGIL_CONFIG_SCALAR)
        return node_err(file, n, key, ": expected a string");
    *out = vigil_config_node_scalar(n);
    return 0;
}

/* Parses "1 1 0 _ 1x3" into values (NAN for "_"). */
static int parse_values(const char *file, const vigil_config_node *n, double *vals, size_t *nvals)
{
    const char *s = vigil_config_node_scalar(n);
    if (!s)
        return node_err(file, n, "values: expected a string such as \"1 1 0 0 1\"", NULL);
    char buf[65536];
    if (strlen(s) >= sizeof(buf))
        return node_err(file, n, "values: longer than 64 KiB", NULL);
    snprintf(buf, sizeof(buf), "%s", s);
    size_t k = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save)) {
        long rep = 1;
        char *x = strchr(tok, 'x');
        if (x) {
            char *end = NULL;
            rep = strtol(x + 1, &end, 10);
            if (!end || *end || rep < 1 || rep > VALUES_MAX)
                return node_err(file, n, "values: bad repeat in \"", tok);
            *x = '\0';
        }
        double v;
        if (strcmp(tok, "_") == 0) {
            v = NAN;
        } else {
            char *end = NULL;
            v = strtod(tok, &end);
            if (!end || *end || !*tok || !isfinite(v))
                return node_err(file, n, "values: not a number: \"", tok);
        }
        for (long r = 0; r < rep; r++) {
            if (k >= VALUES_MAX)
                return node_err(file, n, "values: more than 100000", NULL);
            vals[k++] = v;
        }
    }
    *nvals = k;
    return 0;
}

static int parse_duration_node(const char *file, const vigil_config_node *map, const char *key,
                               int64_t *out, int64_t dflt, int *present)
{
    const vigil_config_node *n = vigil_config_node_get(map, key);
    *out = dflt;
    if (present)
        *present = n != NULL;
    if (!n)
        return 0;
    const char *s = vigil_config_node_scalar(n);
    if (!s || vigil_scalar_parse_duration(out, s) != VIGIL_OK || *out < 0)
        return node_err(file, n, key, ": expected a duration such as 10s");
    return 0;
}

static int run_case(const char *file, const char *dir, const vigil_config_node *pf,
                    const vigil_config_node *tc, size_t index, int run, int json, int *failed)
{
    static const char *const keys[] = {"name",   "interval", "actions", "input",
                                       "expect", "until",    "tick",    NULL};
    if (vigil_config_node_kind(tc) != VIGIL_CONFIG_MAP)
        return node_err(file, tc, "tests: each test is a map", NULL);
    if (vigil_config_expect_keys(tc, keys) != VIGIL_OK) {
        report(file, "");
        return -1;
    }
    const char *name = NULL, *actions = NULL;
    int64_t interval, until, tick;
    int has_until = 0;
    if (get_str(file, tc, "name", &name) || get_str(file, tc, "actions", &actions) ||
        parse_duration_node(file, tc, "interval", &interval, 1000, NULL) ||
        parse_duration_node(file, tc, "until", &until, 0, &has_until) ||
        parse_duration_node(file, tc, "tick", &tick, 1000, NULL))
        return -1;
    if (interval <= 0 || tick <= 0)
        return node_err(file, tc, "interval and tick must be positive", NULL);
    int fail_actions = 0;
    if (actions && strcmp(actions, "succeed") == 0)
        fail_actions = 0;
    else if (actions && strcmp(actions, "fail") == 0)
        fail_actions = 1;
    else if (actions && strcmp(actions, "none") == 0)
        fail_actions = -1;
    else if (actions)
        return node_err(file, vigil_config_node_get(tc, "actions"),
                        "actions: expected succeed, fail or none, got \"", actions);
    char label[256];
    snprintf(label, sizeof(label), "%s", name ? name : "");
    if (!name)
        snprintf(label, sizeof(label), "test %zu", index + 1);

    sim s;
    if (sim_open(&s, fail_actions)) {
        report(file, "");
        return -1;
    }
    int rc = 0;
    /* policies */
    for (size_t i = 0; pf && i < vigil_config_node_len(pf) && !rc; i++) {
        const char *rel = vigil_config_node_scalar(vigil_config_node_at(pf, i));
        char path[4096];
        if (!rel) {
            rc = node_err(file, vigil_config_node_at(pf, i), "policy_files: expected a path", NULL);
            break;
        }
        snprintf(path, sizeof(path), "%s%s%s", rel[0] == '/' ? "" : dir, rel[0] == '/' ? "" : "/",
                 rel);
        if (load_policy_file(s.engine, path, 0)) {
            report(path, "");
            rc = -1;
        }
    }
    /* input */
    vigil_batch *all = NULL;
    if (!rc && vigil_batch_new(&all))
        rc = -1;
    const vigil_config_node *input = vigil_config_node_get(tc, "input");
    if (!rc && (!input || vigil_config_node_kind(input) != VIGIL_CONFIG_LIST))
        rc = node_err(file, input ? input : tc, "input: a list of series is required", NULL);
    int64_t last_ts = TEST_START_MS;
    double *vals = rc ? NULL : malloc(VALUES_MAX * sizeof(double));
    if (!rc && !vals)
        rc = -1;
    for (size_t i = 0; !rc && i < vigil_config_node_len(input); i++) {
        static const char *const ikeys[] = {"metric", "tags", "values", "interval", "start", NULL};
        const vigil_config_node *in = vigil_config_node_at(input, i);
        if (vigil_config_node_kind(in) != VIGIL_CONFIG_MAP ||
            vigil_config_expect_keys(in, ikeys) != VIGIL_OK) {
            rc = vigil_config_node_kind(in) == VIGIL_CONFIG_MAP
                     ? (report(file, ""), -1)
                     : node_err(file, in, "input: each series is a map", NULL);
            break;
        }
        const char *metric = NULL;
        int64_t iv, start;
        if (get_str(file, in, "metric", &metric) ||
            parse_duration_node(file, in, "interval", &iv, interval, NULL) ||
            parse_duration_node(file, in, "start", &start, 0, NULL)) {
            rc = -1;
            break;
        }
        if (!metric || !vigil_metric_name_valid(metric)) {
            rc = node_err(file, in, "input: metric: a metric name is required", NULL);
            break;
        }
        vigil_tag tags[TAGS_MAX];
        size_t ntags = 0;
        const vigil_config_node *tn = vigil_config_node_get(in, "tags");
        if (tn && vigil_config_node_kind(tn) != VIGIL_CONFIG_MAP) {
            rc = node_err(file, tn, "tags: expected a map", NULL);
            break;
        }
        for (size_t t = 0; tn && t < vigil_config_node_len(tn) && t < TAGS_MAX; t++) {
            tags[ntags].key = vigil_config_node_key_at(tn, t);
            tags[ntags].value = vigil_config_node_scalar(vigil_config_node_at(tn, t));
            if (!tags[ntags].value) {
                rc = node_err(file, vigil_config_node_at(tn, t), "tags: values are strings", NULL);
                break;
            }
            ntags++;
        }
        const vigil_config_node *vn = vigil_config_node_get(in, "values");
        size_t nv = 0;
        if (rc || !vn || parse_values(file, vn, vals, &nv)) {
            if (!rc && !vn)
                node_err(file, in, "input: values is required", NULL);
            rc = -1;
            break;
        }
        for (size_t k = 0; k < nv && !rc; k++) {
            if (isnan(vals[k]))
                continue;
            vigil_metric m = {metric, vals[k], TEST_START_MS + start + (int64_t)k * iv,
                              tags,   ntags,   NULL};
            if (vigil_batch_add(all, &m) != VIGIL_OK) {
                rc = node_err(file, vn, "values: ", vigil_error_last()->message);
                break;
            }
            if (m.ts_ms > last_ts)
                last_ts = m.ts_ms;
        }
    }
    free(vals);
    /* expectations */
    const vigil_config_node *ex = vigil_config_node_get(tc, "expect");
    size_t nwant = ex ? vigil_config_node_len(ex) : 0;
    dec *want = calloc(nwant ? nwant : 1, sizeof(*want));
    if (!want)
        rc = -1;
    if (!rc && ex && vigil_config_node_kind(ex) != VIGIL_CONFIG_LIST &&
        vigil_config_node_kind(ex) != VIGIL_CONFIG_NULL)
        rc = node_err(file, ex, "expect: a list of decisions is required", NULL);
    for (size_t i = 0; !rc && i < nwant; i++) {
        static const char *const ekeys[] = {"at",     "policy", "decision", "target",
                                            "action", "reason", NULL};
        const vigil_config_node *e = vigil_config_node_at(ex, i);
        if (vigil_config_node_kind(e) != VIGIL_CONFIG_MAP) {
            rc = node_err(file, e, "expect: each decision is a map", NULL);
            break;
        }
        if (vigil_config_expect_keys(e, ekeys) != VIGIL_OK) {
            report(file, "");
            rc = -1;
            break;
        }
        want[i].line = vigil_config_node_line(e);
        if (parse_duration_node(file, e, "at", &want[i].at, 0, &want[i].has_at)) {
            rc = -1;
            break;
        }
        for (int f = 0; f < FIELD_MAX && !rc; f++)
            rc = get_str(file, e, expect_fields[f], &want[i].f[f]);
        if (!rc && !want[i].f[1])
            rc = node_err(file, e, "expect: decision is required", NULL);
    }
    if (rc || !run) {
        free(want);
        vigil_batch_free(all);
        sim_close(&s);
        return rc;
    }
    /* run */
    vigil_batch **bs = NULL;
    size_t nb = 0;
    if (split_by_time(all, &bs, &nb) ||
        vigil_engine_replay(s.engine, (const vigil_batch *const *)bs, nb, tick) != VIGIL_OK) {
        fprintf(stderr, "%s: %s: replay: %s\n", file, label, vigil_error_last()->message);
        free_batches(bs, nb);
        free(want);
        vigil_batch_free(all);
        sim_close(&s);
        return -1;
    }
    int64_t end = TEST_START_MS + (has_until ? until : last_ts - TEST_START_MS + interval);
    s.now = last_ts;
    while (s.now < end) {
        s.now += tick;
        if (s.now > end)
            s.now = end;
        vigil_engine_tick(s.engine, s.now);
    }
    cJSON *dj = decisions_of(&s);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(dj, "decisions");
    size_t ngot = (size_t)cJSON_GetArraySize(arr);
    dec *got = calloc(ngot ? ngot : 1, sizeof(*got));
    size_t k = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, arr)
    {
        if (!got)
            break;
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(x, "ts");
        got[k].at = cJSON_IsNumber(ts) ? (int64_t)ts->valuedouble - TEST_START_MS : 0;
        got[k].has_at = 1;
        for (int f = 0; f < FIELD_MAX; f++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(x, expect_fields[f]);
            got[k].f[f] = cJSON_IsString(v) ? v->valuestring : NULL;
        }
        k++;
    }
    size_t n = nwant > ngot ? nwant : ngot;
    int ok = got != NULL && nwant == ngot;
    for (size_t i = 0; ok && i < n; i++)
        ok = dec_match(&want[i], &got[i]);
    if (!ok)
        (*failed)++;
    if (json) {
        printf("{\"file\":");
        cli_json_string(stdout, file);
        printf(",\"test\":");
        cli_json_string(stdout, label);
        printf(",\"ok\":%s,\"decisions\":%zu}\n", ok ? "true" : "false", ngot);
    } else if (ok) {
        printf("PASS  %s: %s (%zu decisions)\n", file, label, ngot);
    } else {
        printf("FAIL  %s: %s\n", file, label);
        printf("      - expected   + got\n");
        for (size_t i = 0; got && i < n; i++) {
            char a[1024], b[1024];
            if (i < nwant)
                dec_line(a, sizeof(a), &want[i], 0);
            if (i < ngot)
                dec_line(b, sizeof(b), &got[i], 1);
            if (i < nwant && i < ngot && dec_match(&want[i], &got[i])) {
                printf("        %s\n", b);
                continue;
            }
            if (i < nwant)
                printf("      - %s   (%s:%u)\n", a, file, want[i].line);
            if (i < ngot)
                printf("      + %s\n", b);
        }
    }
    free(got);
    cJSON_Delete(dj);
    free_batches(bs, nb);
    free(want);
    vigil_batch_free(all);
    sim_close(&s);
    return 0;
}

/* Parses (and with `run`, runs) a policy test file. Returns -1 on a file
 * error; mismatches count in *failed. */
static int parse_test_file(const char *path, int run, int json, int *failed)
{
    vigil_config *cfg = NULL;
    if (vigil_config_load_file(&cfg, path, NULL) != VIGIL_OK) {
        report(path, "");
        return -1;
    }
    static const char *const keys[] = {"policy_files", "tests", NULL};
    const vigil_config_node *root = vigil_config_root(cfg, 0);
    int rc = 0;
    if (vigil_config_node_kind(root) != VIGIL_CONFIG_MAP)
        rc = node_err(path, root, "a policy test file is a map with policy_files and tests", NULL);
    else if (vigil_config_expect_keys(root, keys) != VIGIL_OK)
        rc = (report(path, ""), -1);
    const vigil_config_node *pf = rc ? NULL : vigil_config_node_get(root, "policy_files");
    const vigil_config_node *tests = rc ? NULL : vigil_config_node_get(root, "tests");
    if (!rc && (!pf || vigil_config_node_kind(pf) != VIGIL_CONFIG_LIST ||
                vigil_config_node_len(pf) == 0 || vigil_config_node_len(pf) > POLICY_FILES))
        rc = node_err(path, pf ? pf : root, "policy_files: a list of 1 to 64 files is required",
                      NULL);
    if (!rc && (!tests || vigil_config_node_kind(tests) != VIGIL_CONFIG_LIST ||
                vigil_config_node_len(tests) == 0))
        rc = node_err(path, tests ? tests : root, "tests: a non-empty list is required", NULL);
    char *d = rc ? NULL : strdup(path);
    const char *dir = d ? dirname(d) : ".";
    for (size_t i = 0; !rc && i < vigil_config_node_len(tests); i++)
        rc = run_case(path, dir, pf, vigil_config_node_at(tests, i), i, run, json, failed);
    free(d);
    vigil_config_free(cfg);
    return rc;
}

int cmd_test(cli *c, int argc, const char **argv)
{
    int nfiles = 0, failed = 0, broken = 0;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1])
            return cli_usage("test", "unknown option \"%s\"", argv[i]);
        nfiles++;
        if (parse_test_file(argv[i], 1, c->json, &failed))
            broken++;
    }
    if (!nfiles)
        return cli_usage("test", "FILE is required");
    if (!c->json) {
        if (failed || broken)
            printf("%d failed, %d files with errors\n", failed, broken);
        else
            printf("all policy tests passed\n");
    }
    return failed || broken ? EXIT_FAILED : EXIT_OK;
}
