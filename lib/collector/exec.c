/* Built-in collector exec: runs an allow-listed program through the one
 * runner (lib/proc: argv, never a shell; its own process group; a scrubbed
 * environment; a timeout that kills the group), and parses Prometheus text
 * exposition or `name value` lines from its stdout. */
#include "collector/coll_int.h"
#include "proc/proc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARGV_MAX    256
#define ARG_LEN_MAX 4096
#define ENV_MAX     64
#define LABELS_MAX  32
#define DEFAULT_LC  "LC_ALL=C"
#define OUTPUT_CAP  (64u << 20)

static const char *const exec_keys[] = {"argv",        "timeout", "max_output",
                                        "max_metrics", "env",     NULL};

typedef struct {
    const vigil_collector_context *ctx;
    char **argv; /* NULL-terminated, argv[0] absolute */
    char **envp; /* NULL-terminated "K=V" */
    char *label;
    int64_t timeout_ms;
    uint64_t max_output;
    int64_t max_metrics;
    vigil_buf out;
} exec_state;

static void exec_destroy(void *p)
{
    exec_state *s = p;
    vigil__coll_free_string_list(s->argv);
    vigil__coll_free_string_list(s->envp);
    vigil__free(s->label);
    vigil_buf_dispose(&s->out);
    vigil__free(s);
}

static bool allowed(const char *const *allow, const char *prog)
{
    if (!allow)
        return true;
    const char *slash = strrchr(prog, '/');
    size_t dirlen = (size_t)(slash - prog) + 1;
    for (; *allow; allow++) {
        size_t n = strlen(*allow);
        if (n > 0 && (*allow)[n - 1] == '/') {
            if (n == dirlen && strncmp(*allow, prog, n) == 0)
                return true;
        } else if (strcmp(*allow, prog) == 0) {
            return true;
        }
    }
    return false;
}

static bool has_dot_component(const char *path)
{
    for (const char *p = path; (p = strstr(p, "/.")) != NULL; p++) {
        const char *q = p + 2;
        if (*q == '.')
            q++;
        if (*q == '/' || *q == '\0')
            return true;
    }
    return false;
}

static int check_program(const vigil_config_node *node, const char *prog,
                         const vigil_collector_context *ctx)
{
    char msg[PATH_MAX + 128];
    if (prog[0] != '/')
        return vigil_error_set_at(VIGIL_EVALUE, node,
                                  "the program must be an absolute path (PATH is never searched)");
    if (has_dot_component(prog))
        return vigil_error_set_at(VIGIL_EVALUE, node,
                                  "the program path must not contain . or .. components");
    if (!allowed(ctx->exec_allow, prog)) {
        snprintf(msg, sizeof(msg), "program %.900s is not in the exec allow-list", prog);
        return vigil_error_set_at(VIGIL_EPERM, node, msg);
    }
    /* The runner checks again before every run; here the error is located. */
    char why[256];
    int rc = vigil__proc_check_program(prog, why, sizeof(why));
    if (rc != VIGIL_OK) {
        snprintf(msg, sizeof(msg), "program %.900s: %s", prog, why);
        return vigil_error_set_at(rc, node, msg);
    }
    return VIGIL_OK;
}

static bool env_name_valid(const char *k)
{
    if (!((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') || *k == '_'))
        return false;
    for (k++; *k; k++)
        if (!((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') || *k == '_' ||
              (*k >= '0' && *k <= '9')))
            return false;
    return true;
}

static int read_env(exec_state *s, const vigil_config_node *config)
{
    const vigil_config_node *env = vigil_config_node_get(config, "env");
    size_t n = 0;
    if (env && vigil_config_node_kind(env) != VIGIL_CONFIG_NULL) {
        int rc = vigil_config_map(env);
        if (rc != VIGIL_OK)
            return rc;
        n = vigil_config_node_len(env);
        if (n > ENV_MAX)
            return vigil_error_set_at(VIGIL_ELIMIT, env, "more than 64 variables");
    }
    s->envp = vigil__calloc(n + 3, sizeof(char *));
    if (!s->envp)
        return vigil__error_oom();
    size_t k = 0;
    bool have_path = false, have_lc = false;
    for (size_t i = 0; i < n; i++) {
        const char *key = vigil_config_node_key_at(env, i);
        const vigil_config_node *v = vigil_config_node_at(env, i);
        const char *value = NULL;
        if (!env_name_valid(key) || strlen(key) > 128)
            return vigil_error_set_at(VIGIL_ENAME, v,
                                      "invalid environment variable name (expected "
                                      "[A-Za-z_][A-Za-z0-9_]*)");
        int rc = vigil_config_string(&value, v);
        if (rc != VIGIL_OK)
            return rc;
        if (strlen(value) > ARG_LEN_MAX)
            return vigil_error_set_at(VIGIL_ELIMIT, v, "value longer than 4096 bytes");
        vigil_buf b = VIGIL_BUF_INIT;
        if (vigil__buf_printf(&b, "%s=%s", key, value) != VIGIL_OK) {
            vigil_buf_dispose(&b);
            return vigil__error_oom();
        }
        s->envp[k++] = vigil__buf_detach(&b);
        have_path |= strcmp(key, "PATH") == 0;
        have_lc |= strcmp(key, "LC_ALL") == 0;
    }
    if (!have_path && !(s->envp[k++] = vigil__strdup(VIGIL__PROC_PATH)))
        return vigil__error_oom();
    if (!have_lc && !(s->envp[k++] = vigil__strdup(DEFAULT_LC)))
        return vigil__error_oom();
    return VIGIL_OK;
}

static int exec_config(exec_state *s, const vigil_config_node *config,
                       const vigil_collector_context *ctx)
{
    int rc = vigil_config_require(config, "argv");
    if (rc != VIGIL_OK)
        return rc;
    const vigil_config_node *argv = vigil_config_node_get(config, "argv");
    if ((rc = vigil_config_list(argv)) != VIGIL_OK)
        return rc;
    if (vigil_config_node_len(argv) == 0)
        return vigil_error_set_at(VIGIL_EVALUE, argv, "argv needs at least the program path");
    if ((rc = vigil__coll_get_string_list(&s->argv, config, "argv", ARGV_MAX, ARG_LEN_MAX)) !=
        VIGIL_OK)
        return rc;
    if ((rc = check_program(vigil_config_node_at(argv, 0), s->argv[0], ctx)) != VIGIL_OK)
        return rc;
    if ((rc = vigil_config_get_duration(&s->timeout_ms, config, "timeout", 10000)) ||
        (rc = vigil_config_get_size(&s->max_output, config, "max_output", 64u << 10)) ||
        (rc = vigil_config_get_int(&s->max_metrics, config, "max_metrics", 1000)))
        return rc;
    if (s->timeout_ms <= 0)
        return vigil_error_set_at(VIGIL_ERANGE, vigil_config_node_get(config, "timeout"),
                                  "timeout must be positive");
    if (s->max_output == 0 || s->max_output > OUTPUT_CAP)
        return vigil_error_set_at(VIGIL_ERANGE, vigil_config_node_get(config, "max_output"),
                                  "max_output must be between 1 byte and 64MiB");
    if (s->max_metrics < 0 || s->max_metrics > 100000)
        return vigil_error_set_at(VIGIL_ERANGE, vigil_config_node_get(config, "max_metrics"),
                                  "max_metrics must be between 0 and 100000");
    if ((rc = read_env(s, config)) != VIGIL_OK)
        return rc;
    const char *label = ctx->name ? ctx->name : s->argv[0];
    if (strlen(label) > VIGIL_METRIC_TAG_VALUE_MAX)
        return vigil_error_set_at(VIGIL_ELIMIT, argv, "too long to be a tag value; set name");
    if (!(s->label = vigil__strdup(label)))
        return vigil__error_oom();
    return VIGIL_OK;
}

static int exec_create(void **state, const vigil_config_node *config,
                       const vigil_collector_context *ctx)
{
    exec_state *s = vigil__calloc(1, sizeof(*s));
    if (!s)
        return vigil__error_oom();
    s->ctx = ctx;
    int rc = exec_config(s, config, ctx);
    if (rc != VIGIL_OK) {
        exec_destroy(s);
        return rc;
    }
    *state = s;
    return VIGIL_OK;
}

/* ---- running the program ---------------------------------------------------- */

/* Runs the program to completion or its timeout: until it has exited and
 * closed its output; the whole process group is killed on timeout, and any
 * process it left behind when it exits. */
static int run(exec_state *s, vigil__proc_result *r)
{
    vigil__proc_spec sp = {(const char *const *)s->argv,
                           (const char *const *)s->envp,
                           NULL,
                           NULL,
                           -1,
                           true,
                           true,
                           (size_t)s->max_output,
                           vigil__monotonic_ms() + s->timeout_ms,
                           NULL,
                           NULL};
    vigil__buf_clear(&s->out);
    r->output = s->out; /* reuse the buffer's memory */
    s->out = (vigil_buf)VIGIL_BUF_INIT;
    int rc = vigil__proc_run(&sp, r);
    s->out = r->output;
    return rc;
}

/* ---- parsing the output ----------------------------------------------------- */

static const char *skip_blank(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

static bool name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           (!first && c >= '0' && c <= '9');
}

/* Reads a name into dst; returns the end or NULL. */
static const char *read_name(const char *p, const char *end, char *dst, size_t size)
{
    size_t n = 0;
    if (p >= end || !name_char(*p, true))
        return NULL;
    while (p < end && name_char(*p, n == 0)) {
        if (n + 1 >= size)
            return NULL;
        dst[n++] = *p++;
    }
    dst[n] = '\0';
    return p;
}

typedef struct {
    char key[VIGIL_METRIC_NAME_MAX + 1];
    char *value;
} label;

/* Parses one line into a sample; false for a line that does not parse. */
static bool parse_line(const char *p, const char *end, char *name, label *labels, size_t *nlabels,
                       vigil_buf *values, double *value)
{
    *nlabels = 0;
    vigil__buf_clear(values);
    size_t offsets[LABELS_MAX];
    p = read_name(p, end, name, VIGIL_METRIC_NAME_MAX + 1);
    if (!p)
        return false;
    const char *after_name = p;
    p = skip_blank(p, end);
    if (p >= end || *p != '{')
        p = after_name;
    else {
        p = skip_blank(p + 1, end);
        while (p < end && *p != '}') {
            if (*nlabels >= LABELS_MAX)
                return false;
            label *l = &labels[*nlabels];
            p = read_name(p, end, l->key, sizeof(l->key));
            if (!p)
                return false;
            p = skip_blank(p, end);
            if (p >= end || *p != '=')
                return false;
            p = skip_blank(p + 1, end);
            if (p >= end || *p != '"')
                return false;
            p++;
            offsets[*nlabels] = values->size;
            for (;;) {
                if (p >= end)
                    return false;
                char c = *p++;
                if (c == '"')
                    break;
                if (c == '\\') {
                    if (p >= end)
                        return false;
                    c = *p++;
                    if (c == 'n')
                        c = '\n';
                    else if (c != '\\' && c != '"')
                        return false;
                }
                if (vigil__buf_putc(values, c) != VIGIL_OK)
                    return false;
            }
            if (vigil__buf_putc(values, '\0') != VIGIL_OK)
                return false;
            (*nlabels)++;
            p = skip_blank(p, end);
            if (p < end && *p == ',')
                p = skip_blank(p + 1, end);
            else if (p < end && *p != '}')
                return false;
        }
        if (p >= end)
            return false;
        p++;
    }
    const char *vstart = skip_blank(p, end);
    if (vstart == p && vstart < end)
        return false; /* no blank between the name and the value */
    char num[64];
    size_t n = 0;
    while (vstart + n < end && vstart[n] != ' ' && vstart[n] != '\t' && n + 1 < sizeof(num)) {
        num[n] = vstart[n];
        n++;
    }
    num[n] = '\0';
    if (n == 0)
        return false;
    char *e;
    double v = strtod(num, &e);
    if (*e || !isfinite(v))
        return false;
    p = skip_blank(vstart + n, end);
    if (p < end) { /* an optional integer timestamp, which we do not use */
        if (*p == '-')
            p++;
        const char *d = p;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        if (p == d || skip_blank(p, end) != end)
            return false;
    }
    for (size_t i = 0; i < *nlabels; i++)
        labels[i].value = values->ptr + offsets[i];
    *value = v;
    return true;
}

int vigil__coll_exec_parse(const char *text, size_t len, int cut, size_t max_metrics,
                           vigil_batch *out, int64_t ts, size_t *errors)
{
    char name[VIGIL_METRIC_NAME_MAX + 1];
    label labels[LABELS_MAX];
    vigil_tag tags[LABELS_MAX];
    vigil_buf values = VIGIL_BUF_INIT;
    size_t nlabels, emitted = 0;
    const char *p = text ? text : "";
    const char *end = p + len;
    int rc = VIGIL_OK;
    while (p < end && rc == VIGIL_OK) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol && cut)
            break; /* the cut-off last line */
        const char *le = eol ? eol : end;
        const char *q = skip_blank(p, le);
        if (le > q && le[-1] == '\r')
            le--;
        double v;
        if (q == le || *q == '#') {
            /* blank or comment */
        } else if (emitted >= max_metrics ||
                   !parse_line(q, le, name, labels, &nlabels, &values, &v)) {
            (*errors)++;
        } else {
            for (size_t i = 0; i < nlabels; i++) {
                tags[i].key = labels[i].key;
                tags[i].value = labels[i].value;
            }
            vigil_metric m = {name, v, ts, tags, nlabels, NULL};
            int a = vigil_batch_add(out, &m);
            if (a == VIGIL_OK)
                emitted++;
            else if (a == VIGIL_ENOMEM)
                rc = a;
            else
                (*errors)++; /* e.g. a duplicate label or invalid UTF-8 */
        }
        p = eol ? eol + 1 : end;
    }
    vigil_buf_dispose(&values);
    return rc;
}

static int exec_collect(void *p, vigil_batch *out, int64_t now_ms)
{
    exec_state *s = p;
    vigil__proc_result r;
    memset(&r, 0, sizeof(r));
    double t0 = vigil__coll_mono_ms();
    int rc = run(s, &r);
    double duration_ms = vigil__coll_mono_ms() - t0;
    if (rc == VIGIL_OK && r.how == VIGIL__PROC_TIMEOUT)
        rc = vigil__error_set(VIGIL_ETIMEOUT,
                              "%.900s ran longer than its timeout of %lld ms and was killed",
                              s->argv[0], (long long)s->timeout_ms);
    if (rc != VIGIL_OK)
        return rc;
    /* LOST (SIGCHLD ignored: the kernel reaped it) reads as exit code 0. */
    int code = r.how == VIGIL__PROC_EXITED     ? r.exit_code
               : r.how == VIGIL__PROC_SIGNALED ? 128 + r.term_signal
               : r.how == VIGIL__PROC_LOST     ? 0
                                               : 255;
    size_t errors = 0;
    if ((rc = vigil__coll_exec_parse(s->out.ptr, s->out.size, s->out.size >= s->max_output,
                                     (size_t)s->max_metrics, out, now_ms, &errors)) != VIGIL_OK)
        return rc;
    if (errors)
        vigil__log(s->ctx->logger, VIGIL_LOG_DEBUG, "collector", "exec output lines ignored",
                   "check=%s lines=%zu", s->label, errors);
    const char *L = s->label;
    if ((rc = vigil__coll_emit1(out, "exec_up", code == 0 ? 1 : 0, now_ms, "check", L)) ||
        (rc = vigil__coll_emit1(out, "exec_exit_code", code, now_ms, "check", L)) ||
        (rc = vigil__coll_emit1(out, "exec_duration_ms", duration_ms, now_ms, "check", L)) ||
        (rc = vigil__coll_emit1(out, "exec_parse_errors", (double)errors, now_ms, "check", L)))
        return rc;
    return VIGIL_OK;
}

const vigil_collector_type vigil__collector_exec = {
    .version = VIGIL_COLLECTOR_TYPE_VERSION,
    .name = "exec",
    .keys = exec_keys,
    .create = exec_create,
    .collect = exec_collect,
    .destroy = exec_destroy,
};
