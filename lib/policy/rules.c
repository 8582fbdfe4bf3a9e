/*
 * Rules: parsing and validating the `policies:` list (every error located in
 * the file), templates ({{tags.x}}, {{target}}, {{metric}}) and tag globs.
 */
#include "internal/policy.h"
#include "policy/policy_int.h"

#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define MSG_MAX 512

static const char *const common_keys[] = {"name",   "kind",   "metric", "match",    "action",
                                          "target", "params", "for",    "cooldown", "repeat",
                                          "budget", "flap",   "verify", "escalate", "act_within"};

static const char *const threshold_keys[] = {"window",    "aggregate", "op",
                                             "threshold", "clear",     NULL};
static const char *const absent_keys[] = {NULL};
static const char *const change_keys[] = {"window", "op", "threshold", "clear", NULL};
static const char *const desired_keys[] = {"window", "aggregate", "op", "field", NULL};
static const char *const anomaly_keys[] = {"window", "sigma", "clear", NULL};

static const struct {
    const char *name;
    int kind;
    const char *const *keys;
} builtin_kinds[] = {{"threshold", POL_THRESHOLD, threshold_keys},
                     {"absent", POL_ABSENT, absent_keys},
                     {"change", POL_CHANGE, change_keys},
                     {"desired", POL_DESIRED, desired_keys},
                     {"anomaly", POL_ANOMALY, anomaly_keys}};

static int cfg_err(const vigil_config_node *n, int code, const char *fmt, ...) VIGIL__PRINTF(3, 4);

static int cfg_err(const vigil_config_node *n, int code, const char *fmt, ...)
{
    char msg[MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return vigil_error_set_at(code, n, msg);
}

int vigil__policy_glob(const char *pattern, const char *s)
{
    return fnmatch(pattern, s, 0) == 0;
}

const char *vigil__policy_series_tag(const pol_series *s, const char *key)
{
    for (size_t i = 0; i < s->ntags; i++)
        if (strcmp(s->tag_keys[i], key) == 0)
            return s->tag_vals[i];
    return NULL;
}

void vigil__policy_rule_free(pol_rule *r)
{
    if (!r)
        return;
    if (r->state && r->type)
        r->type->destroy(r->state);
    vigil__free(r->name);
    vigil__free(r->kind_name);
    vigil__free(r->metric);
    for (size_t i = 0; i < r->nmatch; i++) {
        vigil__free(r->match[i].key);
        vigil__free(r->match[i].value);
    }
    vigil__free(r->match);
    vigil__free(r->field);
    vigil__free(r->action);
    vigil__free(r->target);
    for (size_t i = 0; i < r->nparams; i++) {
        vigil__free(r->param_keys[i]);
        vigil__free(r->param_vals[i]);
    }
    vigil__free(r->param_keys);
    vigil__free(r->param_vals);
    for (size_t i = 0; i < r->nescalate; i++)
        vigil__free(r->escalate[i]);
    vigil__free(r->escalate);
    vigil__free(r->def);
    vigil__free(r->file);
    vigil__free(r);
}

/* ---- definitions ---------------------------------------------------------------- */

#define CANON_DEPTH 256

/* Appends a canonical text of a node: scalars with their length, lists in
 * order, maps with their keys sorted, so that two rules with the same
 * definition (whatever the key order, quoting or place in a file) give the
 * same text. */
static int canon(vigil_buf *b, const vigil_config_node *n, int depth)
{
    if (depth > CANON_DEPTH)
        return vigil__error_set(VIGIL_ELIMIT, "policy definition nested too deeply");
    int rc = VIGIL_OK;
    size_t len = n ? vigil_config_node_len(n) : 0;
    switch (n ? vigil_config_node_kind(n) : VIGIL_CONFIG_NULL) {
    case VIGIL_CONFIG_SCALAR: {
        const char *v = vigil_config_node_scalar(n);
        v = v ? v : "";
        rc = vigil__buf_printf(b, "s%zu:", strlen(v));
        if (rc >= 0)
            rc = vigil__buf_puts(b, v);
        return rc;
    }
    case VIGIL_CONFIG_LIST:
        rc = vigil__buf_putc(b, '[');
        for (size_t i = 0; i < len && rc >= 0; i++)
            rc = canon(b, vigil_config_node_at(n, i), depth + 1);
        return rc < 0 ? rc : vigil__buf_putc(b, ']');
    case VIGIL_CONFIG_MAP: {
        size_t *ix = len ? vigil__calloc(len, sizeof(*ix)) : NULL;
        if (len && !ix)
            return vigil__error_oom();
        for (size_t i = 0; i < len; i++) {
            size_t j = i;
            while (j > 0 && strcmp(vigil_config_node_key_at(n, ix[j - 1]),
                                   vigil_config_node_key_at(n, i)) > 0) {
                ix[j] = ix[j - 1];
                j--;
            }
            ix[j] = i;
        }
        rc = vigil__buf_putc(b, '{');
        for (size_t i = 0; i < len && rc >= 0; i++) {
            const char *k = vigil_config_node_key_at(n, ix[i]);
            rc = vigil__buf_printf(b, "k%zu:", strlen(k));
            if (rc >= 0)
                rc = vigil__buf_puts(b, k);
            if (rc >= 0)
                rc = canon(b, vigil_config_node_at(n, ix[i]), depth + 1);
        }
        vigil__free(ix);
        return rc < 0 ? rc : vigil__buf_putc(b, '}');
    }
    default: return vigil__buf_putc(b, '~');
    }
}

/* ---- templates ----------------------------------------------------------------- */

/* Finds the next placeholder in text: on success *start points at "{{",
 * [*name, *name + *nlen) is the trimmed inside and *end after "}}". Returns 0
 * when there is none, -1 for an unterminated one. */
static int next_placeholder(const char *text, const char **start, const char **name, size_t *nlen,
                            const char **end)
{
    const char *p = strstr(text, "{{");
    if (!p)
        return 0;
    const char *q = strstr(p + 2, "}}");
    if (!q)
        return -1;
    const char *a = p + 2, *b = q;
    while (a < b && *a == ' ')
        a++;
    while (b > a && b[-1] == ' ')
        b--;
    *start = p;
    *name = a;
    *nlen = (size_t)(b - a);
    *end = q + 2;
    return 1;
}

static int check_template(const vigil_config_node *n, const char *text, const pol_rule *r,
                          int allow_target)
{
    const char *p = text, *start, *name, *end;
    size_t nlen;
    int rc;
    while ((rc = next_placeholder(p, &start, &name, &nlen, &end)) == 1) {
        if (nlen == 6 && memcmp(name, "metric", 6) == 0) {
        } else if (nlen == 6 && memcmp(name, "target", 6) == 0) {
            if (!allow_target)
                return cfg_err(n, VIGIL_EVALUE,
                               "{{target}} may be used in params only, not in the target itself");
        } else if (nlen > 5 && memcmp(name, "tags.", 5) == 0) {
            char tag[VIGIL_METRIC_NAME_MAX + 1];
            size_t tl = nlen - 5;
            if (tl > VIGIL_METRIC_NAME_MAX)
                return cfg_err(n, VIGIL_EVALUE, "template tag name is too long");
            memcpy(tag, name + 5, tl);
            tag[tl] = '\0';
            if (!vigil_metric_name_valid(tag))
                return cfg_err(n, VIGIL_EVALUE, "template names an invalid tag \"%s\"", tag);
            if (r->kind != POL_CODE || r->nmatch > 0) {
                size_t i = 0;
                while (i < r->nmatch && strcmp(r->match[i].key, tag) != 0)
                    i++;
                if (i == r->nmatch)
                    return cfg_err(n, VIGIL_EVALUE,
                                   "template names tag \"%s\" that match does not guarantee "
                                   "(add %s: \"*\" to match)",
                                   tag, tag);
            }
        } else {
            return cfg_err(n, VIGIL_EVALUE,
                           "unknown placeholder \"{{%.*s}}\" (expected {{tags.NAME}}, "
                           "{{metric}} or {{target}})",
                           (int)(nlen > 64 ? 64 : nlen), name);
        }
        p = end;
    }
    if (rc < 0)
        return cfg_err(n, VIGIL_EVALUE, "unterminated placeholder \"{{\" in template");
    return VIGIL_OK;
}

int vigil__policy_expand(vigil_buf *out, const char *text, const pol_series *s, const char *target,
                         const char **missing, size_t *missing_len)
{
    vigil__buf_clear(out);
    const char *p = text, *start, *name, *end;
    size_t nlen;
    int rc;
    while ((rc = next_placeholder(p, &start, &name, &nlen, &end)) == 1) {
        if ((rc = vigil__buf_put(out, p, (size_t)(start - p))) < 0)
            return rc;
        const char *val = NULL;
        if (nlen == 6 && memcmp(name, "metric", 6) == 0) {
            val = s->rule->metric;
        } else if (nlen == 6 && memcmp(name, "target", 6) == 0) {
            val = target ? target : "";
        } else if (nlen > 5 && memcmp(name, "tags.", 5) == 0) {
            for (size_t i = 0; i < s->ntags && !val; i++)
                if (strlen(s->tag_keys[i]) == nlen - 5 &&
                    memcmp(s->tag_keys[i], name + 5, nlen - 5) == 0)
                    val = s->tag_vals[i];
            if (!val || !*val) {
                *missing = name + 5;
                *missing_len = nlen - 5;
                return VIGIL_ENOTFOUND;
            }
        } else {
            *missing = name;
            *missing_len = nlen;
            return VIGIL_ENOTFOUND;
        }
        if ((rc = vigil__buf_puts(out, val)) < 0)
            return rc;
        p = end;
    }
    if ((rc = vigil__buf_puts(out, p)) < 0)
        return rc;
    if (!out->ptr && (rc = vigil__buf_puts(out, "")) < 0)
        return rc;
    return VIGIL_OK;
}

/* ---- parsing -------------------------------------------------------------------- */

static int valid_policy_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > VIGIL_POLICY_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '-'))
            return 0;
    }
    return 1;
}

static int parse_op(const vigil_config_node *n, int *op)
{
    static const char *const names[] = {">", ">=", "<", "<=", "==", "!="};
    const char *s;
    int rc = vigil_config_string(&s, n);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < VIGIL__ARRAY_LEN(names); i++)
        if (strcmp(s, names[i]) == 0) {
            *op = (int)i;
            return VIGIL_OK;
        }
    return cfg_err(n, VIGIL_EVALUE, "unknown op \"%.32s\" (expected >, >=, <, <=, == or !=)", s);
}

/* A positive or non-negative duration; a negative one gets its own message. */
static int get_duration(int64_t *out, const vigil_config_node *map, const char *key, int64_t dflt,
                        int positive)
{
    const vigil_config_node *n = vigil_config_node_get(map, key);
    if (!n || vigil_config_node_kind(n) == VIGIL_CONFIG_NULL) {
        *out = dflt;
        return VIGIL_OK;
    }
    const char *s = vigil_config_node_scalar(n);
    if (s && s[0] == '-')
        return cfg_err(n, VIGIL_ERANGE, "expected a duration, got the negative \"%.32s\"", s);
    int rc = vigil_config_duration(out, n);
    if (rc < 0)
        return rc;
    if (positive && *out <= 0)
        return cfg_err(n, VIGIL_ERANGE, "expected a duration above 0");
    return VIGIL_OK;
}

static int dup_str(char **out, const char *s)
{
    *out = vigil__strdup(s);
    return *out ? VIGIL_OK : vigil__error_oom();
}

/* The number of entries of an optional map (`map` non-zero) or list: 0 when
 * absent or null; more than `max` is VIGIL_ELIMIT "at most <max> <what>". */
static int optional_len(size_t *n, const vigil_config_node *node, int map, size_t max,
                        const char *what)
{
    int rc;
    *n = 0;
    if (!node || vigil_config_node_kind(node) == VIGIL_CONFIG_NULL)
        return VIGIL_OK;
    if ((rc = map ? vigil_config_map(node) : vigil_config_list(node)) < 0)
        return rc;
    *n = vigil_config_node_len(node);
    if (*n > max)
        return cfg_err(node, VIGIL_ELIMIT, "at most %zu %s", max, what);
    return VIGIL_OK;
}

static int parse_match(pol_rule *r, const vigil_config_node *m)
{
    size_t n;
    int rc = optional_len(&n, m, 1, VIGIL_METRIC_TAGS_MAX, "tags");
    if (rc < 0 || n == 0)
        return rc;
    r->match = vigil__calloc(n, sizeof(*r->match));
    if (!r->match)
        return vigil__error_oom();
    for (size_t i = 0; i < n; i++) {
        const char *key = vigil_config_node_key_at(m, i);
        const vigil_config_node *v = vigil_config_node_at(m, i);
        const char *val;
        if (!vigil_metric_name_valid(key))
            return cfg_err(v, VIGIL_ENAME, "invalid tag name \"%.64s\"", key);
        if ((rc = vigil_config_string(&val, v)) < 0)
            return rc;
        if (strlen(val) > VIGIL_METRIC_TAG_VALUE_MAX)
            return cfg_err(v, VIGIL_ELIMIT, "tag value longer than %d bytes",
                           VIGIL_METRIC_TAG_VALUE_MAX);
        pol_matcher *pm = &r->match[r->nmatch++];
        if ((rc = dup_str(&pm->key, key)) < 0 || (rc = dup_str(&pm->value, val)) < 0)
            return rc;
        pm->glob = strpbrk(val, "*?[") != NULL;
    }
    /* sorted by key, so the first exact matcher is chosen the same way every time */
    for (size_t i = 1; i < r->nmatch; i++)
        for (size_t j = i; j > 0 && strcmp(r->match[j - 1].key, r->match[j].key) > 0; j--) {
            pol_matcher t = r->match[j];
            r->match[j] = r->match[j - 1];
            r->match[j - 1] = t;
        }
    return VIGIL_OK;
}

static int parse_params(pol_rule *r, const vigil_config_node *m)
{
    size_t n;
    int rc = optional_len(&n, m, 1, VIGIL_ACTION_PARAMS_MAX, "params");
    if (rc < 0 || n == 0)
        return rc;
    r->param_keys = vigil__calloc(n, sizeof(char *));
    r->param_vals = vigil__calloc(n, sizeof(char *));
    if (!r->param_keys || !r->param_vals)
        return vigil__error_oom();
    for (size_t i = 0; i < n; i++) {
        const vigil_config_node *v = vigil_config_node_at(m, i);
        const char *val;
        if ((rc = vigil_config_string(&val, v)) < 0)
            return rc;
        if ((rc = check_template(v, val, r, 1)) < 0)
            return rc;
        if ((rc = dup_str(&r->param_keys[r->nparams], vigil_config_node_key_at(m, i))) < 0)
            return rc;
        r->nparams++;
        if ((rc = dup_str(&r->param_vals[r->nparams - 1], val)) < 0)
            return rc;
    }
    return VIGIL_OK;
}

static int parse_escalate(pol_rule *r, const vigil_config_node *l)
{
    size_t n;
    int rc = optional_len(&n, l, 0, 16, "escalation actions");
    if (rc < 0 || n == 0)
        return rc;
    r->escalate = vigil__calloc(n, sizeof(char *));
    if (!r->escalate)
        return vigil__error_oom();
    for (size_t i = 0; i < n; i++) {
        const char *s;
        const vigil_config_node *v = vigil_config_node_at(l, i);
        if ((rc = vigil_config_string(&s, v)) < 0)
            return rc;
        if (!*s || strlen(s) > VIGIL_ACTION_NAME_MAX)
            return cfg_err(v, VIGIL_EVALUE, "expected an action name");
        if ((rc = dup_str(&r->escalate[r->nescalate], s)) < 0)
            return rc;
        r->nescalate++;
    }
    return VIGIL_OK;
}

static int parse_blocks(pol_rule *r, const vigil_config_node *rule)
{
    static const char *const budget_keys[] = {"max_actions", "window", NULL};
    static const char *const flap_keys[] = {"transitions", "window", "settle", NULL};
    static const char *const verify_keys[] = {"within", NULL};
    int rc;
    const vigil_config_node *b = vigil_config_node_get(rule, "budget");
    if (b && vigil_config_node_kind(b) != VIGIL_CONFIG_NULL) {
        if ((rc = vigil_config_map(b)) < 0 || (rc = vigil_config_expect_keys(b, budget_keys)) < 0 ||
            (rc = vigil_config_require(b, "max_actions")) < 0 ||
            (rc = vigil_config_get_int(&r->budget_max, b, "max_actions", 0)) < 0 ||
            (rc = get_duration(&r->budget_window_ms, b, "window", 3600000, 1)) < 0)
            return rc;
        if (r->budget_max < 1 || r->budget_max > 100000)
            return cfg_err(vigil_config_node_get(b, "max_actions"), VIGIL_ERANGE,
                           "expected an integer from 1 to 100000");
    }
    const vigil_config_node *f = vigil_config_node_get(rule, "flap");
    if (f && vigil_config_node_kind(f) != VIGIL_CONFIG_NULL) {
        if ((rc = vigil_config_map(f)) < 0 || (rc = vigil_config_expect_keys(f, flap_keys)) < 0 ||
            (rc = vigil_config_require(f, "transitions")) < 0 ||
            (rc = vigil_config_get_int(&r->flap_transitions, f, "transitions", 0)) < 0 ||
            (rc = get_duration(&r->flap_window_ms, f, "window", 600000, 1)) < 0 ||
            (rc = get_duration(&r->flap_settle_ms, f, "settle", 300000, 1)) < 0)
            return rc;
        if (r->flap_transitions < 1 || r->flap_transitions > 1000)
            return cfg_err(vigil_config_node_get(f, "transitions"), VIGIL_ERANGE,
                           "expected an integer from 1 to 1000");
    }
    const vigil_config_node *v = vigil_config_node_get(rule, "verify");
    r->verify_ms = VIGIL_POLICY_VERIFY_DEFAULT;
    if (v && vigil_config_node_kind(v) != VIGIL_CONFIG_NULL) {
        if ((rc = vigil_config_map(v)) < 0 || (rc = vigil_config_expect_keys(v, verify_keys)) < 0 ||
            (rc = get_duration(&r->verify_ms, v, "within", VIGIL_POLICY_VERIFY_DEFAULT, 1)) < 0)
            return rc;
    }
    return VIGIL_OK;
}

bool vigil__policy_kind_builtin(const char *kind)
{
    for (size_t i = 0; i < VIGIL__ARRAY_LEN(builtin_kinds); i++)
        if (strcmp(kind, builtin_kinds[i].name) == 0)
            return true;
    return false;
}

/* `name_of`: the rule's name when it is given outside the map (a Policy
 * resource's metadata.name); the map may then hold no `name`. */
static int parse_rule(vigil_engine *e, const vigil_config_node *rule, const char *name_of,
                      pol_rule **out)
{
    int rc;
    const char *s;
    *out = NULL;
    if ((rc = vigil_config_map(rule)) < 0)
        return rc;
    if (name_of && vigil_config_node_get(rule, "name"))
        return cfg_err(vigil_config_node_get(rule, "name"), VIGIL_EUNKNOWNKEY,
                       "unknown key (the rule's name is metadata.name)");
    if ((!name_of && (rc = vigil_config_require(rule, "name")) < 0) ||
        (rc = vigil_config_require(rule, "kind")) < 0)
        return rc;
    /* the kind decides which keys are allowed */
    const vigil_config_node *kn = vigil_config_node_get(rule, "kind");
    if ((rc = vigil_config_string(&s, kn)) < 0)
        return rc;
    int kind = -1;
    const char *const *extra = NULL;
    const vigil_policy_type *type = NULL;
    for (size_t i = 0; i < VIGIL__ARRAY_LEN(builtin_kinds); i++)
        if (strcmp(s, builtin_kinds[i].name) == 0) {
            kind = builtin_kinds[i].kind;
            extra = builtin_kinds[i].keys;
        }
    if (kind < 0) {
        type = vigil__policy_registry_find(e->o.policy_types, s);
        if (!type)
            return cfg_err(kn, VIGIL_EUNSUPPORTED,
                           "unknown kind \"%.64s\" (expected threshold, absent, change, desired, "
                           "anomaly or a registered code policy)",
                           s);
        kind = POL_CODE;
        extra = type->keys;
    }
    const char *allowed[VIGIL__ARRAY_LEN(common_keys) + 65];
    size_t na = 0;
    for (size_t i = 0; i < VIGIL__ARRAY_LEN(common_keys); i++)
        allowed[na++] = common_keys[i];
    if (kind == POL_CODE)
        allowed[na++] = "history";
    for (size_t i = 0; extra && extra[i] && na < VIGIL__ARRAY_LEN(allowed) - 1; i++)
        allowed[na++] = extra[i];
    allowed[na] = NULL;
    if ((rc = vigil_config_expect_keys(rule, allowed)) < 0)
        return rc;

    pol_rule *r = vigil__calloc(1, sizeof(*r));
    if (!r)
        return vigil__error_oom();
    r->kind = kind;
    r->type = type;
    r->line = vigil_config_node_line(rule);
    if ((rc = dup_str(&r->kind_name, s)) < 0)
        goto fail;
    if (vigil_config_node_file(rule) && (rc = dup_str(&r->file, vigil_config_node_file(rule))) < 0)
        goto fail;

    const vigil_config_node *nn = name_of ? rule : vigil_config_node_get(rule, "name");
    if (name_of)
        s = name_of;
    else if ((rc = vigil_config_string(&s, nn)) < 0)
        goto fail;
    if (!valid_policy_name(s)) {
        rc = cfg_err(nn, VIGIL_EVALUE,
                     "invalid policy name \"%.64s\" (1 to %d of A-Z a-z 0-9 _ . : -)", s,
                     VIGIL_POLICY_NAME_MAX);
        goto fail;
    }
    if ((rc = dup_str(&r->name, s)) < 0)
        goto fail;

    if ((rc = vigil_config_require(rule, "metric")) < 0)
        goto fail;
    const vigil_config_node *mn = vigil_config_node_get(rule, "metric");
    if ((rc = vigil_config_string(&s, mn)) < 0)
        goto fail;
    if (!vigil_metric_name_valid(s)) {
        rc = cfg_err(mn, VIGIL_ENAME, "invalid metric name \"%.64s\"", s);
        goto fail;
    }
    if ((rc = dup_str(&r->metric, s)) < 0)
        goto fail;

    if (kind != POL_CODE && (rc = vigil_config_require(rule, "action")) < 0)
        goto fail;
    const vigil_config_node *an = vigil_config_node_get(rule, "action");
    if (an && vigil_config_node_kind(an) != VIGIL_CONFIG_NULL) {
        if ((rc = vigil_config_string(&s, an)) < 0)
            goto fail;
        if (!*s || strlen(s) > VIGIL_ACTION_NAME_MAX) {
            rc = cfg_err(an, VIGIL_EVALUE, "expected an action name");
            goto fail;
        }
        if ((rc = dup_str(&r->action, s)) < 0)
            goto fail;
    }

    if ((rc = parse_match(r, vigil_config_node_get(rule, "match"))) < 0)
        goto fail;

    const vigil_config_node *tn = vigil_config_node_get(rule, "target");
    if ((rc = vigil_config_get_string(&s, rule, "target", "")) < 0)
        goto fail;
    if (strlen(s) > VIGIL_ACTION_VALUE_MAX) {
        rc = cfg_err(tn, VIGIL_ELIMIT, "target longer than %d bytes", VIGIL_ACTION_VALUE_MAX);
        goto fail;
    }
    if (tn && (rc = check_template(tn, s, r, 0)) < 0)
        goto fail;
    if ((rc = dup_str(&r->target, s)) < 0)
        goto fail;
    if ((rc = parse_params(r, vigil_config_node_get(rule, "params"))) < 0 ||
        (rc = parse_escalate(r, vigil_config_node_get(rule, "escalate"))) < 0)
        goto fail;

    /* kind-specific keys */
    r->op = OP_GT;
    r->agg = VIGIL_WINDOW_LAST;
    if (kind == POL_THRESHOLD || kind == POL_CHANGE || kind == POL_DESIRED || kind == POL_ANOMALY) {
        if ((rc = get_duration(&r->window_ms, rule, "window", VIGIL_POLICY_WINDOW_DEFAULT, 1)) < 0)
            goto fail;
        if (!e->o.aggregate && r->window_ms > e->window_max_age) {
            char b1[32], b2[32];
            vigil_scalar_format_duration(b1, sizeof(b1), r->window_ms);
            vigil_scalar_format_duration(b2, sizeof(b2), e->window_max_age);
            rc = cfg_err(vigil_config_node_get(rule, "window"), VIGIL_ERANGE,
                         "window %s is longer than the history kept (%s)", b1, b2);
            goto fail;
        }
    }
    if (kind == POL_THRESHOLD || kind == POL_DESIRED) {
        const vigil_config_node *g = vigil_config_node_get(rule, "aggregate");
        if (g && vigil_config_node_kind(g) != VIGIL_CONFIG_NULL) {
            if ((rc = vigil_config_string(&s, g)) < 0)
                goto fail;
            if (vigil_window_agg_parse(&r->agg, s) < 0) {
                rc = cfg_err(g, VIGIL_EVALUE,
                             "unknown aggregate \"%.32s\" (expected last, mean, min, max, sum, "
                             "count, rate, stddev, p50, p90, p95 or p99)",
                             s);
                goto fail;
            }
        }
    }
    if (kind == POL_THRESHOLD || kind == POL_DESIRED || kind == POL_CHANGE) {
        if (kind != POL_CHANGE && (rc = vigil_config_require(rule, "op")) < 0)
            goto fail;
        const vigil_config_node *on = vigil_config_node_get(rule, "op");
        if (on && vigil_config_node_kind(on) != VIGIL_CONFIG_NULL &&
            (rc = parse_op(on, &r->op)) < 0)
            goto fail;
    }
    if (kind == POL_THRESHOLD || kind == POL_CHANGE) {
        if ((rc = vigil_config_require(rule, "threshold")) < 0 ||
            (rc = vigil_config_double(&r->threshold, vigil_config_node_get(rule, "threshold"))) <
                0 ||
            (rc = vigil_config_get_double(&r->clear, rule, "clear", r->threshold)) < 0)
            goto fail;
        const vigil_config_node *cn = vigil_config_node_get(rule, "clear");
        if (cn && ((r->op == OP_GT || r->op == OP_GE) && r->clear > r->threshold)) {
            rc = cfg_err(cn, VIGIL_ERANGE, "clear must not be above threshold with op > or >=");
            goto fail;
        }
        if (cn && ((r->op == OP_LT || r->op == OP_LE) && r->clear < r->threshold)) {
            rc = cfg_err(cn, VIGIL_ERANGE, "clear must not be below threshold with op < or <=");
            goto fail;
        }
        if (cn && (r->op == OP_EQ || r->op == OP_NE)) {
            rc = cfg_err(cn, VIGIL_EVALUE, "clear does not apply to op == or !=");
            goto fail;
        }
    }
    if (kind == POL_DESIRED) {
        if ((rc = vigil_config_require(rule, "field")) < 0)
            goto fail;
        const vigil_config_node *fn = vigil_config_node_get(rule, "field");
        if ((rc = vigil_config_string(&s, fn)) < 0)
            goto fail;
        if (!*s || strlen(s) > 256 || s[0] == '.' || s[strlen(s) - 1] == '.' || strstr(s, "..")) {
            rc = cfg_err(fn, VIGIL_EVALUE, "expected a dotted field path such as \"replicas\"");
            goto fail;
        }
        if ((rc = dup_str(&r->field, s)) < 0)
            goto fail;
        if (!*r->target) {
            rc = cfg_err(rule, VIGIL_EMISSING,
                         "a desired rule needs a target (whose desired state it reads)");
            goto fail;
        }
    }
    if (kind == POL_ANOMALY) {
        if ((rc = vigil_config_require(rule, "sigma")) < 0 ||
            (rc = vigil_config_double(&r->sigma, vigil_config_node_get(rule, "sigma"))) < 0)
            goto fail;
        if (!(r->sigma > 0)) {
            rc = cfg_err(vigil_config_node_get(rule, "sigma"), VIGIL_ERANGE,
                         "expected a sigma above 0");
            goto fail;
        }
        if ((rc = vigil_config_get_double(&r->clear, rule, "clear", r->sigma)) < 0)
            goto fail;
        if (r->clear < 0 || r->clear > r->sigma) {
            rc = cfg_err(vigil_config_node_get(rule, "clear"), VIGIL_ERANGE,
                         "clear must be from 0 to sigma");
            goto fail;
        }
    }
    if (kind == POL_ABSENT) {
        if ((rc = vigil_config_require(rule, "for")) < 0)
            goto fail;
        if ((rc = get_duration(&r->for_ms, rule, "for", 0, 1)) < 0)
            goto fail;
    } else if ((rc = get_duration(&r->for_ms, rule, "for", 0, 0)) < 0) {
        goto fail;
    }
    if ((rc = get_duration(&r->cooldown_ms, rule, "cooldown", 0, 0)) < 0 ||
        (rc = get_duration(&r->repeat_ms, rule, "repeat", 0, 0)) < 0 ||
        (rc = get_duration(&r->act_within_ms, rule, "act_within", 0, 0)) < 0 ||
        (rc = parse_blocks(r, rule)) < 0)
        goto fail;
    if (kind == POL_CODE && (rc = get_duration(&r->history_ms, rule, "history",
                                               VIGIL_WINDOW_DEFAULT_MAX_AGE_MS, 1)) < 0)
        goto fail;
    if (kind == POL_CODE) {
        void *st = NULL;
        rc = type->create(&st, rule, type->payload);
        if (rc < 0) {
            if (rc > 0 || vigil_error_last()->code != rc)
                vigil__error_set(rc, "%s: create failed", r->name);
            goto fail;
        }
        r->state = st;
    }
    {
        vigil_buf d = VIGIL_BUF_INIT;
        rc = canon(&d, rule, 0);
        if (rc >= 0 && !(r->def = vigil__strdup(d.ptr ? d.ptr : "")))
            rc = vigil__error_oom();
        vigil_buf_dispose(&d);
        if (rc < 0)
            goto fail;
    }
    *out = r;
    return VIGIL_OK;
fail:
    vigil__policy_rule_free(r);
    return rc;
}

int vigil__policy_parse_rules(vigil_engine *e, const vigil_config_node *list, int check_loaded,
                              pol_rule ***out, size_t *nout)
{
    int rc;
    *out = NULL;
    *nout = 0;
    if (!list || vigil_config_node_kind(list) == VIGIL_CONFIG_NULL)
        return VIGIL_OK;
    if ((rc = vigil_config_list(list)) < 0)
        return rc;
    size_t n = vigil_config_node_len(list);
    if (n == 0)
        return VIGIL_OK;
    if (n + (check_loaded ? e->nrules : 0) > VIGIL_POLICY_MAX_RULES)
        return cfg_err(list, VIGIL_ELIMIT, "more than %d policies", VIGIL_POLICY_MAX_RULES);
    pol_rule **rules = vigil__calloc(n, sizeof(*rules));
    if (!rules)
        return vigil__error_oom();
    size_t got = 0;
    vigil__pmap names = {NULL, 0, 0}; /* of this list: a duplicate in constant time */
    for (size_t i = 0; i < n; i++) {
        const vigil_config_node *item = vigil_config_node_at(list, i);
        if ((rc = parse_rule(e, item, NULL, &rules[got])) < 0)
            goto fail;
        got++;
        const char *name = rules[got - 1]->name;
        int dup = (check_loaded && vigil__pmap_get(&e->by_name, name) != NULL) ||
                  vigil__pmap_get(&names, name) != NULL;
        if (dup) {
            rc = cfg_err(vigil_config_node_get(item, "name"), VIGIL_EEXISTS,
                         "a policy named \"%s\" already exists", name);
            goto fail;
        }
        if ((rc = vigil__pmap_put(&names, name, rules[got - 1])) < 0)
            goto fail;
    }
    vigil__pmap_dispose(&names);
    *out = rules;
    *nout = got;
    return VIGIL_OK;
fail:
    vigil__pmap_dispose(&names);
    for (size_t i = 0; i < got; i++)
        vigil__policy_rule_free(rules[i]);
    vigil__free(rules);
    return rc;
}

int vigil__policy_rule_check(const vigil_config_node *rule, const char *name,
                             const vigil_policy_registry *types)
{
    /* parse_rule reads only these members of the engine */
    vigil_engine *e = vigil__calloc(1, sizeof(*e));
    if (!e)
        return vigil__error_oom();
    e->o.policy_types = types;
    e->window_max_age = INT64_MAX;
    pol_rule *r = NULL;
    int rc = parse_rule(e, rule, name, &r);
    if (r)
        vigil__policy_rule_free(r);
    vigil__free(e);
    return rc;
}
