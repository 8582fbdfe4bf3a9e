/* GET /v1/export/prometheus: the latest sample of every stored series that
 * one of the match[] selectors selects, in the Prometheus text format 0.0.4
 * with timestamps, as Prometheus' own /federate answers. Names and label
 * values are those of the store, label names made valid for Prometheus
 * (vigil__export_label_name()). Samples of a failed collection (no value)
 * are left out. */
#include "hub/export.h"

#include "hub/hub_int.h"
#include "internal/json.h"

#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { OP_EQ, OP_NE, OP_RE, OP_NRE } mop;

typedef struct matcher {
    char *label;
    char *value;
    mop op;
    int compiled;
    regex_t re;
} matcher;

struct vigil__promsel {
    matcher m[VIGIL__EXPORT_MATCHERS_MAX];
    size_t n;
    const char *name; /* borrowed from an OP_EQ matcher of __name__ */
};

/* ---- selectors --------------------------------------------------------------- */

void vigil__promsel_free(vigil__promsel *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        vigil__free(s->m[i].label);
        vigil__free(s->m[i].value);
        if (s->m[i].compiled)
            regfree(&s->m[i].re);
    }
    vigil__free(s);
}

const char *vigil__promsel_name(const vigil__promsel *s)
{
    return s ? s->name : NULL;
}

typedef struct parser {
    const char *text;
    size_t pos;
} parser;

static int perr(const parser *p, const char *what)
{
    return vigil__error_set(VIGIL_EINVAL, "match[]: %s at byte %zu of \"%.120s\"", what, p->pos + 1,
                            p->text);
}

static void skip_ws(parser *p)
{
    while (p->text[p->pos] == ' ' || p->text[p->pos] == '\t' || p->text[p->pos] == '\n' ||
           p->text[p->pos] == '\r')
        p->pos++;
}

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* An identifier: [a-zA-Z_][a-zA-Z0-9_]*, with ':' too when `colon`. */
static char *ident(parser *p, int colon)
{
    size_t start = p->pos;
    const char *t = p->text;
    if (!(is_alpha(t[p->pos]) || (colon && t[p->pos] == ':')))
        return NULL;
    while (is_alpha(t[p->pos]) || is_digit(t[p->pos]) || (colon && t[p->pos] == ':'))
        p->pos++;
    return vigil__strndup(t + start, p->pos - start);
}

/* A quoted string ("..." or '...' with escapes, `...` raw) into *out. */
static int quoted(parser *p, char **out)
{
    char q = p->text[p->pos];
    if (q != '"' && q != '\'' && q != '`')
        return perr(p, "expected a quoted value");
    p->pos++;
    vigil_buf b = VIGIL_BUF_INIT;
    int rc = VIGIL_OK;
    for (;;) {
        char c = p->text[p->pos];
        if (!c) {
            rc = perr(p, "unterminated string");
            break;
        }
        p->pos++;
        if (c == q)
            break;
        if (c == '\\' && q != '`') {
            char e = p->text[p->pos];
            const char *from = "\\\"'ntr", *to = "\\\"'\n\t\r";
            const char *at = e ? strchr(from, e) : NULL;
            if (!at) {
                rc = perr(p, "unknown escape in a string (\\\\ \\\" \\' \\n \\t \\r)");
                break;
            }
            c = to[at - from];
            p->pos++;
        } else if (c == '\n' && q != '`') {
            rc = perr(p, "newline in a string");
            break;
        }
        if ((rc = vigil__buf_putc(&b, c)))
            break;
    }
    if (!rc && (rc = vigil__buf_putc(&b, '\0')) == VIGIL_OK) {
        *out = vigil__buf_detach(&b);
        return *out ? VIGIL_OK : vigil__error_oom();
    }
    vigil_buf_dispose(&b);
    return rc;
}

/* glibc's regcomp() copies a repeated part for each '+' and each bound
 * {n,m} (nested ones multiply): a short pattern such as "a++++..." or
 * "((a{99}){99}){99}" would take gigabytes. The product of the factors (2
 * for '+', the larger bound + 1 for {n,m}) is capped at REGEX_GROWTH_MAX,
 * bounds at REGEX_BOUND_MAX, a quantifier directly after another is refused
 * (undefined in POSIX EREs), and so are back-references (\1: exponential
 * matching). Brackets [...] hold literal characters. */
#define REGEX_GROWTH_MAX 256
#define REGEX_BOUND_MAX  100

static int regex_shape(const char *re, const char *label)
{
    unsigned long growth = 1;
    int after_quantifier = 0;
    for (size_t i = 0; re[i]; i++) {
        char c = re[i];
        if (c == '\\') {
            if (is_digit(re[i + 1]))
                return vigil__error_set(VIGIL_EINVAL,
                                        "match[]: back-references (\\%c) are not supported in "
                                        "the regular expression of \"%.64s\"",
                                        re[i + 1], label);
            if (re[i + 1])
                i++;
            after_quantifier = 0;
            continue;
        }
        if (c == '[') {
            size_t j = i + 1;
            if (re[j] == '^')
                j++;
            if (re[j] == ']')
                j++;
            while (re[j] && re[j] != ']')
                j++;
            i = re[j] ? j : j - 1;
            after_quantifier = 0;
            continue;
        }
        unsigned long factor = 0;
        if (c == '*' || c == '?' || c == '+') {
            factor = c == '+' ? 2 : 1;
        } else if (c == '{' && is_digit(re[i + 1])) {
            char *end = NULL;
            unsigned long lo = strtoul(re + i + 1, &end, 10), hi = lo;
            if (*end == ',')
                hi = is_digit(end[1]) ? strtoul(end + 1, &end, 10) : (end++, lo);
            if (*end != '}' || lo > REGEX_BOUND_MAX || hi > REGEX_BOUND_MAX)
                return vigil__error_set(VIGIL_EINVAL,
                                        "match[]: a bound {n,m} of the regular expression of "
                                        "\"%.64s\" is malformed or above %d",
                                        label, REGEX_BOUND_MAX);
            factor = (hi > lo ? hi : lo) + 1;
            i = (size_t)(end - re);
        } else {
            after_quantifier = 0;
            continue;
        }
        if (after_quantifier)
            return vigil__error_set(VIGIL_EINVAL,
                                    "match[]: two repetition operators in a row in the regular "
                                    "expression of \"%.64s\"",
                                    label);
        after_quantifier = 1;
        growth *= factor;
        if (growth > REGEX_GROWTH_MAX)
            return vigil__error_set(VIGIL_EINVAL,
                                    "match[]: the regular expression of \"%.64s\" repeats too "
                                    "much ('+' and {n,m} multiply its size; at most %d)",
                                    label, REGEX_GROWTH_MAX);
    }
    return VIGIL_OK;
}

static int compile(matcher *m)
{
    size_t len = strlen(m->value);
    if (len > VIGIL__EXPORT_REGEX_LEN)
        return vigil__error_set(VIGIL_EINVAL,
                                "match[]: the regular expression of \"%.64s\" is longer than %d "
                                "bytes",
                                m->label, VIGIL__EXPORT_REGEX_LEN);
    int rc = regex_shape(m->value, m->label);
    if (rc)
        return rc;
    vigil_buf b = VIGIL_BUF_INIT;
    rc = vigil__buf_printf(&b, "^(%s)$", m->value);
    if (rc)
        return rc;
    int e = regcomp(&m->re, b.ptr, REG_EXTENDED | REG_NOSUB);
    vigil_buf_dispose(&b);
    if (e) {
        char msg[160];
        regerror(e, &m->re, msg, sizeof(msg));
        regfree(&m->re);
        return vigil__error_set(VIGIL_EINVAL,
                                "match[]: bad regular expression \"%.100s\" for \"%.64s\": %s "
                                "(POSIX extended syntax)",
                                m->value, m->label, msg);
    }
    m->compiled = 1;
    return VIGIL_OK;
}

static int matcher_matches(const matcher *m, const char *v)
{
    switch (m->op) {
    case OP_EQ: return strcmp(v, m->value) == 0;
    case OP_NE: return strcmp(v, m->value) != 0;
    case OP_RE: return regexec(&m->re, v, 0, NULL, 0) == 0;
    default: return regexec(&m->re, v, 0, NULL, 0) != 0;
    }
}

/* The matchers inside { }, p->pos after the '{'. */
static int matchers(parser *p, vigil__promsel *s)
{
    for (;;) {
        skip_ws(p);
        if (p->text[p->pos] == '}') {
            p->pos++;
            return VIGIL_OK;
        }
        if (s->n >= VIGIL__EXPORT_MATCHERS_MAX)
            return vigil__error_set(VIGIL_EINVAL, "match[]: more than %d matchers in a selector",
                                    VIGIL__EXPORT_MATCHERS_MAX);
        matcher *m = &s->m[s->n];
        if (!(m->label = ident(p, 0)))
            return is_alpha(p->text[p->pos])
                       ? vigil__error_oom()
                       : perr(p, "expected a label name ([a-zA-Z_][a-zA-Z0-9_]*)");
        s->n++;
        skip_ws(p);
        const char *t = p->text + p->pos;
        if (t[0] == '=' && t[1] == '~')
            m->op = OP_RE, p->pos += 2;
        else if (t[0] == '!' && t[1] == '~')
            m->op = OP_NRE, p->pos += 2;
        else if (t[0] == '!' && t[1] == '=')
            m->op = OP_NE, p->pos += 2;
        else if (t[0] == '=')
            m->op = OP_EQ, p->pos += 1;
        else
            return perr(p, "expected one of = != =~ !~ after the label name");
        skip_ws(p);
        int rc = quoted(p, &m->value);
        if (!rc && (m->op == OP_RE || m->op == OP_NRE))
            rc = compile(m);
        if (rc)
            return rc;
        skip_ws(p);
        if (p->text[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->text[p->pos] != '}')
            return perr(p, "expected ',' or '}'");
    }
}

int vigil__promsel_parse(vigil__promsel **out, const char *text)
{
    *out = NULL;
    if (!text || !*text)
        return vigil__error_set(VIGIL_EINVAL, "match[]: empty selector");
    if (strlen(text) > VIGIL__EXPORT_SELECTOR_LEN)
        return vigil__error_set(VIGIL_EINVAL, "match[]: a selector is longer than %d bytes",
                                VIGIL__EXPORT_SELECTOR_LEN);
    vigil__promsel *s = vigil__calloc(1, sizeof(*s));
    if (!s)
        return vigil__error_oom();
    parser p = {text, 0};
    int rc = VIGIL_OK;
    skip_ws(&p);
    if (is_alpha(text[p.pos]) || text[p.pos] == ':') {
        matcher *m = &s->m[s->n];
        if (!(m->label = vigil__strdup("__name__")) || !(m->value = ident(&p, 1)))
            rc = vigil__error_oom();
        else
            s->n++;
        skip_ws(&p);
    }
    if (!rc && text[p.pos] == '{') {
        p.pos++;
        rc = matchers(&p, s);
        skip_ws(&p);
    }
    if (!rc && text[p.pos])
        rc =
            perr(&p, s->n ? "unexpected text after the selector" : "expected a metric name or '{'");
    if (!rc && !s->n)
        rc = vigil__error_set(VIGIL_EINVAL, "match[]: \"%.120s\" has no matcher", text);
    if (!rc) {
        int nonempty = 0;
        for (size_t i = 0; i < s->n; i++) {
            nonempty |= !matcher_matches(&s->m[i], "");
            if (s->m[i].op == OP_EQ && strcmp(s->m[i].label, "__name__") == 0)
                s->name = s->m[i].value;
        }
        if (!nonempty)
            rc = vigil__error_set(VIGIL_EINVAL,
                                  "match[]: \"%.120s\" matches every series: at least one "
                                  "matcher must not match the empty string (e.g. "
                                  "{__name__=~\".+\"})",
                                  text);
    }
    if (rc) {
        vigil__promsel_free(s);
        return rc;
    }
    *out = s;
    return VIGIL_OK;
}

int vigil__promsel_match(const vigil__promsel *s, const char *name, const char *const *lnames,
                         const char *const *lvalues, size_t n)
{
    for (size_t i = 0; i < s->n; i++) {
        const matcher *m = &s->m[i];
        const char *v = "";
        if (strcmp(m->label, "__name__") == 0) {
            v = name;
        } else {
            for (size_t j = 0; j < n; j++)
                if (strcmp(lnames[j], m->label) == 0) {
                    v = lvalues[j];
                    break;
                }
        }
        if (!matcher_matches(m, v))
            return 0;
    }
    return 1;
}

/* ---- names and values --------------------------------------------------------- */

void vigil__export_label_name(char *out, size_t size, const char *key)
{
    size_t o = 0;
    if (size == 0)
        return;
    if (key[0] == '_' && key[1] == '_')
        o = (size_t)snprintf(out, size, "tag");
    else if (is_digit(key[0]))
        o = (size_t)snprintf(out, size, "_");
    if (o >= size)
        o = size - 1;
    for (const char *c = key; *c && o + 1 < size; c++)
        out[o++] = is_alpha(*c) || is_digit(*c) ? *c : '_';
    out[o] = '\0';
}

int vigil__export_escape(vigil_buf *b, const char *v)
{
    int rc = VIGIL_OK;
    for (const char *c = v; *c && !rc; c++) {
        if (*c == '\\')
            rc = vigil__buf_put(b, "\\\\", 2);
        else if (*c == '"')
            rc = vigil__buf_put(b, "\\\"", 2);
        else if (*c == '\n')
            rc = vigil__buf_put(b, "\\n", 2);
        else
            rc = vigil__buf_putc(b, *c);
    }
    return rc;
}

int vigil__export_value(vigil_buf *b, double v)
{
    if (isnan(v))
        return vigil__buf_puts(b, "NaN");
    if (isinf(v))
        return vigil__buf_puts(b, v > 0 ? "+Inf" : "-Inf");
    return vigil__json_put_double(b, v);
}

/* ---- the route ------------------------------------------------------------------- */

typedef struct record {
    char *line;       /* "name{...} value ts\n" */
    const char *name; /* within line */
    size_t name_len;
} record;

typedef struct export_ctx {
    vigil__promsel *sel;
    record *recs;
    size_t nrecs, cap;
} export_ctx;

#define STOP_OVER 1
#define STOP_OOM  2

static int on_latest(const vigil_store_series *s, const vigil_store_point *pt, void *payload)
{
    export_ctx *x = payload;
    if (pt->error || s->ntags > VIGIL_METRIC_TAGS_MAX)
        return 0;
    /* exported label names (sorted; on a clash the first tag wins) */
    char names[VIGIL_METRIC_TAGS_MAX][VIGIL__EXPORT_LABEL_NAME_SIZE];
    const char *pn[VIGIL_METRIC_TAGS_MAX], *pv[VIGIL_METRIC_TAGS_MAX];
    size_t order[VIGIL_METRIC_TAGS_MAX];
    size_t n = 0;
    for (size_t i = 0; i < s->ntags; i++) {
        vigil__export_label_name(names[n], sizeof(names[n]), s->tags[i].key);
        int dup = 0;
        for (size_t j = 0; j < n && !dup; j++)
            dup = strcmp(pn[j], names[n]) == 0;
        if (dup)
            continue;
        pn[n] = names[n];
        pv[n] = s->tags[i].value;
        n++;
    }
    if (!vigil__promsel_match(x->sel, s->name, pn, pv, n))
        return 0;
    if (x->nrecs >= VIGIL__EXPORT_SERIES_MAX) {
        return STOP_OVER;
    }
    /* label order: by exported name (insertion sort; at most 64 labels) */
    for (size_t i = 0; i < n; i++) {
        size_t k = i;
        while (k > 0 && strcmp(pn[order[k - 1]], pn[i]) > 0) {
            order[k] = order[k - 1];
            k--;
        }
        order[k] = i;
    }
    vigil_buf b = VIGIL_BUF_INIT;
    int rc = vigil__buf_puts(&b, s->name);
    if (!rc && n)
        rc = vigil__buf_putc(&b, '{');
    for (size_t i = 0; i < n && !rc; i++) {
        if (i)
            rc = vigil__buf_putc(&b, ',');
        if (!rc)
            rc = vigil__buf_puts(&b, pn[order[i]]);
        if (!rc)
            rc = vigil__buf_puts(&b, "=\"");
        if (!rc)
            rc = vigil__export_escape(&b, pv[order[i]]);
        if (!rc)
            rc = vigil__buf_putc(&b, '"');
    }
    if (!rc && n)
        rc = vigil__buf_putc(&b, '}');
    if (!rc)
        rc = vigil__buf_putc(&b, ' ');
    if (!rc)
        rc = vigil__export_value(&b, pt->value);
    if (!rc)
        rc = vigil__buf_printf(&b, " %lld\n", (long long)pt->ts_ms);
    if (!rc && vigil__array_grow((void **)&x->recs, &x->cap, x->nrecs + 1, sizeof(record)))
        rc = VIGIL_ENOMEM;
    if (rc) {
        vigil_buf_dispose(&b);
        return STOP_OOM;
    }
    record *r = &x->recs[x->nrecs++];
    r->name_len = strlen(s->name);
    r->line = vigil__buf_detach(&b);
    r->name = r->line;
    return r->line ? 0 : STOP_OOM;
}

/* By name, then by line: the lines of one name are together. */
static int rec_cmp(const void *a, const void *b)
{
    const record *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    if (c || x->name_len != y->name_len)
        return c ? c : (x->name_len < y->name_len ? -1 : 1);
    return strcmp(x->line, y->line);
}

static void route_export(vigil__api_call *call, void *payload)
{
    vigil_hub *hub = payload;
    vigil_api_response *resp = vigil__api_call_response(call);
    size_t np = 0, nsel = 0;
    const vigil__api_param *ps = vigil__api_call_params(call, &np);
    export_ctx x = {0};
    int rc = VIGIL_OK;
    for (size_t i = 0; i < np && !rc; i++) {
        if (strcmp(ps[i].key, "match[]") != 0)
            continue;
        if (++nsel > VIGIL__EXPORT_SELECTORS_MAX) {
            rc = vigil__error_set(VIGIL_EINVAL, "match[]: more than %d selectors",
                                  VIGIL__EXPORT_SELECTORS_MAX);
            break;
        }
        rc = vigil__promsel_parse(&x.sel, ps[i].value);
        if (rc)
            break;
        vigil_store_query q = VIGIL_STORE_QUERY_INIT;
        q.name = vigil__promsel_name(x.sel);
        int src = vigil_store_latest(hub->reader, &q, on_latest, &x);
        vigil__promsel_free(x.sel);
        x.sel = NULL;
        if (src == STOP_OVER)
            rc = vigil__error_set(VIGIL_EINVAL, "more than %d series match: narrow the selectors",
                                  VIGIL__EXPORT_SERIES_MAX);
        else if (src == STOP_OOM)
            rc = vigil__error_oom();
        else
            rc = src;
    }
    if (!rc && nsel == 0)
        rc = vigil__error_set(VIGIL_EINVAL, "match[]: at least one selector is required, e.g. "
                                            "match[]={__name__=~\".+\"}");
    vigil_buf body = VIGIL_BUF_INIT;
    if (!rc) {
        if (x.nrecs)
            qsort(x.recs, x.nrecs, sizeof(record), rec_cmp);
        for (size_t i = 0; i < x.nrecs && !rc; i++) {
            const record *r = &x.recs[i];
            if (i && strcmp(x.recs[i - 1].line, r->line) == 0)
                continue; /* selected by two selectors, or two series with one exported form */
            if (i == 0 || x.recs[i - 1].name_len != r->name_len ||
                memcmp(x.recs[i - 1].name, r->name, r->name_len) != 0) {
                rc = vigil__buf_puts(&body, "# TYPE ");
                if (!rc)
                    rc = vigil__buf_put(&body, r->name, r->name_len);
                if (!rc)
                    rc = vigil__buf_puts(&body, " untyped\n");
            }
            if (!rc)
                rc = vigil__buf_puts(&body, r->line);
        }
    }
    for (size_t i = 0; i < x.nrecs; i++)
        vigil__free(x.recs[i].line);
    vigil__free(x.recs);
    if (rc) {
        vigil_buf_dispose(&body);
        vigil__api_resp_from_code(resp, rc, vigil_error_last()->message);
    } else {
        vigil__api_resp_text(resp, 200, "text/plain; version=0.0.4; charset=utf-8", &body);
        vigil_buf_dispose(&body);
    }
    vigil__api_finish(call);
}

int vigil__hub_mount_export_routes(vigil_hub *hub, vigil_api *api)
{
    static const vigil__api_route_def routes[] = {
        {"GET", "/v1/export/prometheus", VIGIL_API_SCOPE_READ, 0, route_export},
    };
    return vigil__api_routes(api, routes, VIGIL__ARRAY_LEN(routes), hub);
}
