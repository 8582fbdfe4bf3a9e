/* vigil - the command-line tool of Vigil: talks to the hub's HTTP API
 * (docs/http-api.md) and checks configs and policies locally.
 * Usage, commands and exit codes: docs/cli.md, or `vigil help`. */
#include "cli.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_URL      "http://127.0.0.1:7600"
#define ENV_FILE_DEFAULT "var/dev.env"
#define ENV_FILE_MAX     (64 * 1024)
#define ENV_LINE_MAX     4096
#define TOKEN_VAR        "VIGIL_CLI_TOKEN__"
#define PATH_MAX_LEN     8192
#define CHART_WIDTH      60

/* ---- small helpers ----------------------------------------------------------------- */

void cli_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("vigil: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "vigil %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nRun 'vigil help %s' for usage.\n", cmd);
    va_end(ap);
    return EXIT_USAGE;
}

int cli_duration(const char *text, int64_t *ms)
{
    return vigil_scalar_parse_duration(ms, text) != VIGIL_OK || *ms <= 0;
}

void cli_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

const char *cli_time(int64_t ms, char *buf, size_t size)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (ms <= 0 || !gmtime_r(&t, &tm) || !strftime(buf, size, "%Y-%m-%d %H:%M:%SZ", &tm))
        snprintf(buf, size, "-");
    return buf;
}

/* "12s ago", "3m ago" relative to now. */
static const char *ago(int64_t ms, int64_t now, char *buf, size_t size)
{
    if (ms <= 0) {
        snprintf(buf, size, "never");
        return buf;
    }
    int64_t d = (now - ms) / 1000;
    if (d < 0)
        d = 0;
    if (d < 120)
        snprintf(buf, size, "%llds ago", (long long)d);
    else if (d < 7200)
        snprintf(buf, size, "%lldm ago", (long long)(d / 60));
    else
        snprintf(buf, size, "%lldh ago", (long long)(d / 3600));
    return buf;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double jnum(const cJSON *o, const char *key, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static const char *or_dash(const char *s)
{
    return s && *s ? s : "-";
}

/* Appends `s` percent-encoded to `out` (a query value or a path segment). */
static int url_encode(char *out, size_t size, size_t *pos, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~';
        size_t need = plain ? 1 : 3;
        if (*pos + need >= size)
            return -1;
        if (plain) {
            out[(*pos)++] = (char)*p;
        } else {
            out[(*pos)++] = '%';
            out[(*pos)++] = hex[*p >> 4];
            out[(*pos)++] = hex[*p & 15];
        }
    }
    out[*pos] = '\0';
    return 0;
}

static int url_add(char *out, size_t size, size_t *pos, const char *lit)
{
    size_t n = strlen(lit);
    if (*pos + n >= size)
        return -1;
    memcpy(out + *pos, lit, n + 1);
    *pos += n;
    return 0;
}

/* ---- the environment file (var/dev.env) -------------------------------------------- */

/* Reads KEY=VALUE lines (an optional "export " prefix, optional quotes;
 * comments and blank lines skipped) without a shell, and sets each KEY not
 * already in the environment. A missing default file is not an error. */
static int read_env_file(const char *path, int required)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (!required && errno == ENOENT)
            return 0;
        cli_err("%s: %s", path, strerror(errno));
        return -1;
    }
    char line[ENV_LINE_MAX];
    unsigned int lineno = 0;
    size_t total = 0;
    int rc = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        size_t n = strlen(line);
        total += n;
        if (total > ENV_FILE_MAX) {
            cli_err("%s: larger than %d bytes", path, ENV_FILE_MAX);
            rc = -1;
            break;
        }
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p || *p == '#')
            continue;
        if (strncmp(p, "export ", 7) == 0)
            p += 7;
        char *eq = strchr(p, '=');
        if (!eq || eq == p) {
            cli_err("%s:%u:1: expected KEY=VALUE", path, lineno);
            rc = -1;
            break;
        }
        *eq = '\0';
        for (char *k = p; *k; k++)
            if (!((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') || *k == '_' ||
                  (k > p && *k >= '0' && *k <= '9'))) {
                cli_err("%s:%u:1: \"%s\" is not a variable name", path, lineno, p);
                fclose(f);
                return -1;
            }
        char *v = eq + 1;
        size_t vl = strlen(v);
        if (vl >= 2 && (v[0] == '"' || v[0] == '\'') && v[vl - 1] == v[0]) {
            v[vl - 1] = '\0';
            v++;
        }
        if (!getenv(p))
            setenv(p, v, 0);
    }
    fclose(f);
    return rc;
}

/* ---- talking to the hub ------------------------------------------------------------- */

static int connect_hub(cli *c)
{
    if (c->client)
        return EXIT_OK;
    vigil_client_options o = VIGIL_CLIENT_OPTIONS_INIT;
    const char *urls[1] = {c->url};
    o.urls = urls;
    o.nurls = 1;
    if (c->token && *c->token) {
        setenv(TOKEN_VAR, c->token, 1);
        o.token_env = TOKEN_VAR;
    }
    o.connect_timeout_ms = 3000;
    o.request_timeout_ms = 60000;
    o.user_agent = "vigil-cli/" VIGIL_VERSION;
    vigil_logger quiet = VIGIL_LOGGER_INIT;
    quiet.min_level = VIGIL_LOG_OFF;
    o.logger = quiet;
    if (vigil_client_new(&c->client, &o) != VIGIL_OK) {
        cli_err("--url %s: %s", c->url, vigil_error_last()->message);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

/* One request; on success *out holds the parsed JSON answer (NULL when not
 * JSON) and *status its HTTP status. Returns an exit code: OK, UNREACHABLE,
 * FAILED (answer not JSON when JSON was needed). */
static int hub_call(cli *c, const char *method, const char *path, const char *body, int *status,
                    cJSON **out, vigil_buf *raw)
{
    *out = NULL;
    int rc = connect_hub(c);
    if (rc)
        return rc;
    vigil_buf b = VIGIL_BUF_INIT;
    rc = vigil_client_request(c->client, method, path, body, body ? strlen(body) : 0, status, &b);
    if (rc == VIGIL_ENETWORK || rc == VIGIL_ETIMEOUT) {
        vigil_buf_dispose(&b);
        cli_err("cannot reach the hub at %s: %s", c->url, vigil_error_last()->message);
        return EXIT_UNREACHABLE;
    }
    if (rc) {
        vigil_buf_dispose(&b);
        cli_err("%s %s: %s", method, path, vigil_error_last()->message);
        return EXIT_FAILED;
    }
    *out = cJSON_ParseWithLength(b.ptr ? b.ptr : "", b.size);
    if (raw)
        *raw = b;
    else
        vigil_buf_dispose(&b);
    return EXIT_OK;
}

/* Prints the hub's error answer and returns EXIT_FAILED. */
static int hub_refused(const char *what, int status, const cJSON *j)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    const char *code = jstr(e, "code"), *msg = jstr(e, "message");
    cli_err("%s: HTTP %d%s%s%s%s", what, status, code ? " " : "", code ? code : "", msg ? ": " : "",
            msg ? msg : "");
    if (status == 401)
        fprintf(stderr, "vigil: set a token with --token or VIGIL_TOKEN (var/dev.env is read "
                        "when present)\n");
    return EXIT_FAILED;
}

/* GET path and, with 2xx, gives the JSON to the caller; otherwise reports. */
static int hub_get(cli *c, const char *what, const char *path, cJSON **out)
{
    int status = 0;
    int rc = hub_call(c, "GET", path, NULL, &status, out, NULL);
    if (rc)
        return rc;
    if (status < 200 || status > 299 || !*out) {
        rc = hub_refused(what, status, *out);
        cJSON_Delete(*out);
        *out = NULL;
    }
    return rc;
}

static void print_json(const cJSON *j)
{
    char *s = cJSON_PrintUnformatted(j);
    if (s) {
        puts(s);
        cJSON_free(s);
    }
}

/* ---- option parsing for commands ------------------------------------------------------ */

/* Matches "--name value" or "--name=value" at argv[*i]; advances *i. Returns
 * 1 when matched (value set), 0 when not this option, -1 when the value is missing. */
static int opt_value(int argc, const char **argv, int *i, const char *name, const char **value)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *value = a + n + 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *value = argv[++*i];
    return 1;
}

/* "1h" -> "-1h" for the hub's relative times; an epoch ms stays as it is. */
static int since_param(const char *cmd, const char *since, char *buf, size_t size)
{
    int64_t ms;
    if (since[0] >= '0' && since[0] <= '9' && strspn(since, "0123456789") == strlen(since) &&
        strlen(since) >= 10) {
        snprintf(buf, size, "%s", since);
        return 0;
    }
    const char *d = since[0] == '-' ? since + 1 : since;
    if (cli_duration(d, &ms))
        return cli_usage(cmd, "--since: expected a duration such as 1h or 15m, got \"%s\"", since);
    snprintf(buf, size, "-%s", d);
    return 0;
}

/* ---- status ---------------------------------------------------------------------------- */

static int count_firing(const cJSON *policies, cJSON *names)
{
    int n = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(policies, "policies"))
    {
        const cJSON *s;
        cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(p, "series"))
        {
            const char *st = jstr(s, "state");
            if (st && strcmp(st, "firing") == 0) {
                n++;
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "policy", or_dash(jstr(p, "name")));
                cJSON_AddStringToObject(o, "series", or_dash(jstr(s, "series")));
                cJSON_AddNumberToObject(o, "since", jnum(s, "since", 0));
                cJSON_AddItemToArray(names, o);
            }
        }
    }
    return n;
}

/* GET <url>/healthz of another daemon: 1 when it answers 200. */
static int daemon_healthy(const char *url)
{
    vigil_client_options o = VIGIL_CLIENT_OPTIONS_INIT;
    const char *urls[1] = {url};
    o.urls = urls;
    o.nurls = 1;
    o.connect_timeout_ms = 3000;
    o.request_timeout_ms = 10000;
    vigil_logger quiet = VIGIL_LOGGER_INIT;
    quiet.min_level = VIGIL_LOG_OFF;
    o.logger = quiet;
    vigil_client *cl = NULL;
    if (vigil_client_new(&cl, &o) != VIGIL_OK)
        return 0;
    vigil_buf b = VIGIL_BUF_INIT;
    int st = 0;
    int ok = vigil_client_request(cl, "GET", "/healthz", NULL, 0, &st, &b) == VIGIL_OK && st == 200;
    vigil_buf_dispose(&b);
    vigil_client_free(cl);
    return ok;
}

static int cmd_status(cli *c, int argc, const char **argv)
{
    const char *durl[2] = {getenv("VIGIL_REMEDIATOR_URL"), getenv("VIGIL_GITOPSD_URL")};
    static const char *const dname[2] = {"remediator", "gitopsd"};
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int r;
        if ((r = opt_value(argc, argv, &i, "--remediator", &v)) != 0) {
            if (r < 0)
                return cli_usage("status", "--remediator needs a URL");
            durl[0] = v;
        } else if ((r = opt_value(argc, argv, &i, "--gitopsd", &v)) != 0) {
            if (r < 0)
                return cli_usage("status", "--gitopsd needs a URL");
            durl[1] = v;
        } else {
            return cli_usage("status", "unexpected argument \"%s\"", argv[i]);
        }
    }
    int dok[2] = {0, 0};
    for (int i = 0; i < 2; i++)
        if (durl[i] && *durl[i])
            dok[i] = daemon_healthy(durl[i]);
        else
            durl[i] = NULL;
    int status = 0;
    cJSON *ready = NULL;
    int rc = hub_call(c, "GET", "/readyz", NULL, &status, &ready, NULL);
    if (rc)
        return rc;
    const char *hub_state = status == 200 ? "ready" : "not ready";
    cJSON *agents = NULL, *policies = NULL, *actions = NULL, *drift = NULL;
    int arc = hub_get(c, "agents", "/v1/agents", &agents);
    int prc = hub_get(c, "policies", "/v1/policies", &policies);
    char path[128];
    snprintf(path, sizeof(path), "/v1/actions?since=-1h&limit=1000");
    int xrc = hub_get(c, "actions", path, &actions);
    int dstatus = 0;
    int drc = hub_call(c, "GET", "/v1/drift", NULL, &dstatus, &drift, NULL);
    if (arc == EXIT_UNREACHABLE || prc == EXIT_UNREACHABLE || xrc == EXIT_UNREACHABLE ||
        drc == EXIT_UNREACHABLE)
        rc = EXIT_UNREACHABLE;
    else if (arc || prc || xrc || status != 200 || (durl[0] && !dok[0]) || (durl[1] && !dok[1]))
        rc = EXIT_FAILED;
    long drift_count = -1;
    if (!drc && dstatus == 200 && drift) {
        const cJSON *cnt = cJSON_GetObjectItemCaseSensitive(drift, "drifted");
        drift_count = cJSON_IsNumber(cnt) ? (long)cnt->valuedouble : -1;
    }
    cJSON *firing = cJSON_CreateArray();
    int nfiring = policies ? count_firing(policies, firing) : 0;
    const cJSON *alist = cJSON_GetObjectItemCaseSensitive(actions, "actions");
    int nact = cJSON_GetArraySize(alist);
    int64_t now = now_ms();
    if (c->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "url", c->url);
        cJSON_AddStringToObject(o, "hub", hub_state);
        cJSON *ds = cJSON_AddObjectToObject(o, "daemons");
        for (int i = 0; i < 2; i++) {
            if (!durl[i])
                continue;
            cJSON *d = cJSON_AddObjectToObject(ds, dname[i]);
            cJSON_AddStringToObject(d, "url", durl[i]);
            cJSON_AddBoolToObject(d, "ok", dok[i]);
        }
        cJSON_AddItemToObject(
            o, "agents",
            agents ? cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(agents, "agents"), 1)
                   : cJSON_CreateNull());
        cJSON_AddNumberToObject(o, "firing_count", nfiring);
        cJSON_AddItemToObject(o, "firing", firing);
        firing = NULL;
        cJSON *recent = cJSON_CreateArray();
        for (int i = nact > 10 ? nact - 10 : 0; i < nact; i++)
            cJSON_AddItemToArray(recent, cJSON_Duplicate(cJSON_GetArrayItem(alist, i), 1));
        cJSON_AddItemToObject(o, "recent_actions", recent);
        if (drift_count >= 0)
            cJSON_AddNumberToObject(o, "drift_count", (double)drift_count);
        else
            cJSON_AddNullToObject(o, "drift_count");
        print_json(o);
        cJSON_Delete(o);
    } else {
        char t[64];
        printf("hub        %s  %s\n", c->url, hub_state);
        for (int i = 0; i < 2; i++)
            if (durl[i])
                printf("%-10s %s  %s\n", dname[i], durl[i], dok[i] ? "ok" : "UNREACHABLE");
        const cJSON *al = cJSON_GetObjectItemCaseSensitive(agents, "agents");
        printf("agents     %d\n", cJSON_GetArraySize(al));
        const cJSON *a;
        cJSON_ArrayForEach(a, al)
        {
            const cJSON *st = cJSON_GetObjectItemCaseSensitive(a, "stale");
            int64_t hb = (int64_t)jnum(a, "last_heartbeat", 0);
            printf("  %-24s last seen %-10s %s\n", or_dash(jstr(a, "id")),
                   ago(hb ? hb : (int64_t)jnum(a, "last_seen", 0), now, t, sizeof(t)),
                   cJSON_IsTrue(st) ? "STALE" : "ok");
        }
        printf("firing     %d\n", nfiring);
        const cJSON *f;
        cJSON_ArrayForEach(f, firing) printf("  %-24s %s\n", jstr(f, "policy"), jstr(f, "series"));
        printf("actions    %d in the last hour\n", nact);
        for (int i = nact > 10 ? nact - 10 : 0; i < nact; i++) {
            const cJSON *x = cJSON_GetArrayItem(alist, i);
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(x, "verdict");
            printf("  %-10s %-16s %-12s %-10s %s\n",
                   ago((int64_t)jnum(x, "requested", 0), now, t, sizeof(t)),
                   or_dash(jstr(x, "action")), or_dash(jstr(x, "target")),
                   or_dash(jstr(x, "status")), or_dash(jstr(v, "decision")));
        }
        if (drift_count >= 0)
            printf("drift      %ld\n", drift_count);
        else
            printf("drift      n/a (the hub serves no /v1/drift)\n");
    }
    cJSON_Delete(firing);
    cJSON_Delete(ready);
    cJSON_Delete(agents);
    cJSON_Delete(policies);
    cJSON_Delete(actions);
    cJSON_Delete(drift);
    return rc;
}

/* ---- query ------------------------------------------------------------------------------ */

static void chart(const cJSON *points)
{
    int n = cJSON_GetArraySize(points);
    double lo = INFINITY, hi = -INFINITY, last = NAN;
    const cJSON *p;
    cJSON_ArrayForEach(p, points)
    {
        const cJSON *v = cJSON_GetArrayItem(p, 1);
        if (cJSON_IsNumber(v)) {
            if (v->valuedouble < lo)
                lo = v->valuedouble;
            if (v->valuedouble > hi)
                hi = v->valuedouble;
            last = v->valuedouble;
        }
    }
    static const char *const bars[] = {"\u2581", "\u2582", "\u2583", "\u2584",
                                       "\u2585", "\u2586", "\u2587", "\u2588"};
    int start = n > CHART_WIDTH ? n - CHART_WIDTH : 0;
    fputs("  ", stdout);
    for (int i = start; i < n; i++) {
        const cJSON *v = cJSON_GetArrayItem(cJSON_GetArrayItem(points, i), 1);
        if (!cJSON_IsNumber(v)) {
            fputc(' ', stdout);
            continue;
        }
        int k = hi > lo ? (int)((v->valuedouble - lo) / (hi - lo) * 7.0 + 0.5) : 3;
        fputs(bars[k < 0 ? 0 : k > 7 ? 7 : k], stdout);
    }
    printf("\n  min %g  max %g  last %g  (%d points)\n", lo, hi, last, n);
}

static int cmd_query(cli *c, int argc, const char **argv)
{
    const char *metric = NULL, *since = "1h", *step = NULL, *agg = NULL;
    const char *matches[32];
    int nm = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int r;
        if ((r = opt_value(argc, argv, &i, "--match", &v)) != 0) {
            if (r < 0)
                return cli_usage("query", "--match needs k=v");
            if (!strchr(v, '=') || v[0] == '=')
                return cli_usage("query", "--match: expected key=value, got \"%s\"", v);
            if (nm == 32)
                return cli_usage("query", "at most 32 --match");
            matches[nm++] = v;
        } else if ((r = opt_value(argc, argv, &i, "--since", &v)) != 0) {
            if (r < 0)
                return cli_usage("query", "--since needs a duration");
            since = v;
        } else if ((r = opt_value(argc, argv, &i, "--step", &v)) != 0) {
            int64_t ms;
            if (r < 0 || cli_duration(v, &ms))
                return cli_usage("query", "--step: expected a duration such as 1m");
            step = v;
        } else if ((r = opt_value(argc, argv, &i, "--agg", &v)) != 0) {
            vigil_store_agg a;
            if (r < 0 || vigil_store_agg_parse(&a, v))
                return cli_usage("query", "--agg: expected mean, min, max, sum, count or last");
            agg = v;
        } else if (argv[i][0] == '-') {
            return cli_usage("query", "unknown option \"%s\"", argv[i]);
        } else if (!metric) {
            metric = argv[i];
        } else {
            return cli_usage("query", "unexpected argument \"%s\"", argv[i]);
        }
    }
    if (!metric)
        return cli_usage("query", "METRIC is required");
    if (!vigil_metric_name_valid(metric))
        return cli_usage("query", "\"%s\" is not a metric name", metric);
    if (agg && !step)
        step = "1m";
    char from[64];
    int rc = since_param("query", since, from, sizeof(from));
    if (rc)
        return rc;
    char path[PATH_MAX_LEN];
    size_t pos = 0;
    int bad = url_add(path, sizeof(path), &pos, "/v1/query?name=") ||
              url_encode(path, sizeof(path), &pos, metric) ||
              url_add(path, sizeof(path), &pos, "&from=") ||
              url_encode(path, sizeof(path), &pos, from);
    for (int i = 0; i < nm && !bad; i++) {
        char kv[1024];
        snprintf(kv, sizeof(kv), "%s", matches[i]);
        char *eq = strchr(kv, '=');
        *eq = ':';
        bad = url_add(path, sizeof(path), &pos, "&match=") ||
              url_encode(path, sizeof(path), &pos, kv);
    }
    if (!bad && step)
        bad = url_add(path, sizeof(path), &pos, "&step=") ||
              url_encode(path, sizeof(path), &pos, step);
    if (!bad && step)
        bad = url_add(path, sizeof(path), &pos, "&agg=") ||
              url_encode(path, sizeof(path), &pos, agg ? agg : "mean");
    if (bad)
        return cli_usage("query", "the query is too long");
    cJSON *j = NULL;
    rc = hub_get(c, "query", path, &j);
    if (rc)
        return rc;
    const cJSON *series = cJSON_GetObjectItemCaseSensitive(j, "series");
    if (c->json) {
        print_json(j);
    } else if (!cJSON_GetArraySize(series)) {
        printf("no samples of %s in the last %s\n", metric, since);
    } else {
        const cJSON *s;
        cJSON_ArrayForEach(s, series)
        {
            printf("%s{", or_dash(jstr(s, "name")));
            const cJSON *t;
            int first = 1;
            cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(s, "tags"))
            {
                printf("%s%s=\"%s\"", first ? "" : ",", t->string,
                       cJSON_IsString(t) ? t->valuestring : "");
                first = 0;
            }
            printf("}\n");
            const cJSON *pts = cJSON_GetObjectItemCaseSensitive(s, "points");
            if (c->color) {
                chart(pts);
            } else {
                const cJSON *p;
                char tb[64];
                cJSON_ArrayForEach(p, pts)
                {
                    const cJSON *ts = cJSON_GetArrayItem(p, 0), *v = cJSON_GetArrayItem(p, 1);
                    printf("  %s  ", cli_time(cJSON_IsNumber(ts) ? (int64_t)ts->valuedouble : 0, tb,
                                              sizeof(tb)));
                    if (cJSON_IsNumber(v))
                        printf("%g\n", v->valuedouble);
                    else
                        printf("null\n");
                }
            }
        }
    }
    cJSON_Delete(j);
    return EXIT_OK;
}

/* ---- decisions, actions ------------------------------------------------------------------- */

static int cmd_decisions(cli *c, int argc, const char **argv)
{
    const char *since = "1h", *limit = NULL;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int r;
        if ((r = opt_value(argc, argv, &i, "--since", &v)) != 0) {
            if (r < 0)
                return cli_usage("decisions", "--since needs a duration");
            since = v;
        } else if ((r = opt_value(argc, argv, &i, "--limit", &v)) != 0) {
            if (r < 0 || !*v || strspn(v, "0123456789") != strlen(v))
                return cli_usage("decisions", "--limit: expected a number");
            limit = v;
        } else {
            return cli_usage("decisions", "unexpected argument \"%s\"", argv[i]);
        }
    }
    char s[64], path[256];
    int rc = since_param("decisions", since, s, sizeof(s));
    if (rc)
        return rc;
    snprintf(path, sizeof(path), "/v1/decisions?since=%s%s%s", s, limit ? "&limit=" : "",
             limit ? limit : "");
    cJSON *j = NULL;
    if ((rc = hub_get(c, "decisions", path, &j)) != 0)
        return rc;
    if (c->json) {
        print_json(j);
    } else {
        const cJSON *d;
        char t[64];
        printf("%-20s  %-18s %-14s %-16s %-14s %s\n", "TIME", "POLICY", "DECISION", "TARGET",
               "ACTION", "REASON");
        cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(j, "decisions"))
            printf("%-20s  %-18s %-14s %-16s %-14s %s\n",
                   cli_time((int64_t)jnum(d, "ts", 0), t, sizeof(t)), or_dash(jstr(d, "policy")),
                   or_dash(jstr(d, "decision")), or_dash(jstr(d, "target")),
                   or_dash(jstr(d, "action")), or_dash(jstr(d, "reason")));
    }
    cJSON_Delete(j);
    return EXIT_OK;
}

static int cmd_actions(cli *c, int argc, const char **argv)
{
    const char *since = "1h", *st = NULL;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int r;
        if ((r = opt_value(argc, argv, &i, "--since", &v)) != 0) {
            if (r < 0)
                return cli_usage("actions", "--since needs a duration");
            since = v;
        } else if ((r = opt_value(argc, argv, &i, "--status", &v)) != 0) {
            static const char *const statuses[] = {"pending", "pending_approval", "succeeded",
                                                   "failed",  "timeout",          "refused",
                                                   "dry_run"};
            int known = 0;
            for (size_t k = 0; r > 0 && k < sizeof(statuses) / sizeof(statuses[0]); k++)
                known |= strcmp(v, statuses[k]) == 0;
            if (!known)
                return cli_usage("actions", "--status: expected pending, pending_approval, "
                                            "succeeded, failed, timeout, refused or dry_run");
            st = v;
        } else {
            return cli_usage("actions", "unexpected argument \"%s\"", argv[i]);
        }
    }
    char s[64], path[256];
    int rc = since_param("actions", since, s, sizeof(s));
    if (rc)
        return rc;
    snprintf(path, sizeof(path), "/v1/actions?since=%s&limit=1000%s%s", s, st ? "&status=" : "",
             st ? st : "");
    cJSON *j = NULL;
    if ((rc = hub_get(c, "actions", path, &j)) != 0)
        return rc;
    if (c->json) {
        print_json(j);
    } else {
        const cJSON *x;
        char t[64];
        printf("%-20s  %-34s %-16s %-14s %-16s %-12s %s\n", "REQUESTED", "ID", "ACTION", "TARGET",
               "STATUS", "VERDICT", "REASON");
        cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(j, "actions"))
        {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(x, "verdict");
            printf("%-20s  %-34s %-16s %-14s %-16s %-12s %s\n",
                   cli_time((int64_t)jnum(x, "requested", 0), t, sizeof(t)), or_dash(jstr(x, "id")),
                   or_dash(jstr(x, "action")), or_dash(jstr(x, "target")),
                   or_dash(jstr(x, "status")), or_dash(jstr(v, "decision")),
                   or_dash(jstr(x, "result_reason")));
        }
    }
    cJSON_Delete(j);
    return EXIT_OK;
}

/* ---- approve, deny, release ------------------------------------------------------------ */

static int post_path(cli *c, const char *what, const char *prefix, const char *arg,
                     const char *suffix, const char *body, cJSON **out)
{
    char path[PATH_MAX_LEN];
    size_t pos = 0;
    if (url_add(path, sizeof(path), &pos, prefix) || url_encode(path, sizeof(path), &pos, arg) ||
        url_add(path, sizeof(path), &pos, suffix))
        return cli_usage(what, "argument too long");
    int status = 0;
    const char *method = strcmp(what, "silence rm") == 0 ? "DELETE" : "POST";
    int rc = hub_call(c, method, path, body, &status, out, NULL);
    if (rc)
        return rc;
    if (status < 200 || status > 299) {
        rc = hub_refused(what, status, *out);
        cJSON_Delete(*out);
        *out = NULL;
    }
    return rc;
}

static int one_arg(const char *cmd, int argc, const char **argv, const char *name)
{
    if (argc < 2)
        return cli_usage(cmd, "%s is required", name);
    if (argc > 2)
        return cli_usage(cmd, "unexpected argument \"%s\"", argv[2]);
    if (argv[1][0] == '-' || !argv[1][0])
        return cli_usage(cmd, "unknown option \"%s\"", argv[1]);
    return 0;
}

static int decide(cli *c, int argc, const char **argv, int approve)
{
    const char *cmd = approve ? "approve" : "deny";
    int rc = one_arg(cmd, argc, argv, "ID");
    if (rc)
        return rc;
    cJSON *j = NULL;
    rc = post_path(c, cmd, "/v1/actions/", argv[1], approve ? "/approve" : "/deny", NULL, &j);
    if (rc)
        return rc;
    if (c->json)
        print_json(j);
    else
        printf("%s %s\n", argv[1], approve ? "approved" : "denied");
    cJSON_Delete(j);
    return EXIT_OK;
}

static int cmd_approve(cli *c, int argc, const char **argv)
{
    return decide(c, argc, argv, 1);
}

static int cmd_deny(cli *c, int argc, const char **argv)
{
    return decide(c, argc, argv, 0);
}

static int cmd_release(cli *c, int argc, const char **argv)
{
    int rc = one_arg("release", argc, argv, "TARGET");
    if (rc)
        return rc;
    cJSON *j = NULL;
    rc = post_path(c, "release", "/v1/targets/", argv[1], "/release", NULL, &j);
    if (rc)
        return rc;
    if (c->json)
        print_json(j);
    else
        printf("%s %s\n", argv[1],
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "released"))
                   ? "released"
                   : "was not quarantined");
    cJSON_Delete(j);
    return EXIT_OK;
}

/* ---- silences ---------------------------------------------------------------------------- */

static int silence_add(cli *c, int argc, const char **argv)
{
    const char *dur = NULL, *comment = NULL, *matchers = NULL;
    for (int i = 2; i < argc; i++) {
        const char *v = NULL;
        int r;
        if ((r = opt_value(argc, argv, &i, "--for", &v)) != 0) {
            int64_t ms;
            if (r < 0 || cli_duration(v, &ms))
                return cli_usage("silence", "--for: expected a duration such as 1h");
            dur = v;
        } else if ((r = opt_value(argc, argv, &i, "--comment", &v)) != 0) {
            if (r < 0)
                return cli_usage("silence", "--comment needs a text");
            comment = v;
        } else if (argv[i][0] == '-') {
            return cli_usage("silence", "unknown option \"%s\"", argv[i]);
        } else if (!matchers) {
            matchers = argv[i];
        } else {
            return cli_usage("silence", "unexpected argument \"%s\"", argv[i]);
        }
    }
    if (!matchers)
        return cli_usage("silence", "MATCHERS is required (e.g. policy=demo_down,target=demo)");
    if (!dur)
        return cli_usage("silence", "--for is required (e.g. --for 1h)");
    cJSON *body = cJSON_CreateObject(), *m = cJSON_AddObjectToObject(body, "matchers");
    char buf[2048];
    if (strlen(matchers) >= sizeof(buf)) {
        cJSON_Delete(body);
        return cli_usage("silence", "MATCHERS too long");
    }
    snprintf(buf, sizeof(buf), "%s", matchers);
    char *save = NULL;
    for (char *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq || eq == kv) {
            cJSON_Delete(body);
            return cli_usage("silence", "MATCHERS: expected key=glob[,key=glob...], got \"%s\"",
                             kv);
        }
        *eq = '\0';
        cJSON_AddStringToObject(m, kv, eq + 1);
    }
    cJSON_AddStringToObject(body, "duration", dur);
    if (comment)
        cJSON_AddStringToObject(body, "comment", comment);
    const char *user = getenv("USER");
    char by[128];
    snprintf(by, sizeof(by), "vigil-cli%s%s", user ? " " : "", user ? user : "");
    cJSON_AddStringToObject(body, "created_by", by);
    char *text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    int status = 0;
    cJSON *j = NULL;
    int rc = hub_call(c, "POST", "/v1/silences", text, &status, &j, NULL);
    cJSON_free(text);
    if (!rc && (status < 200 || status > 299))
        rc = hub_refused("silence add", status, j);
    else if (!rc && c->json)
        print_json(j);
    else if (!rc)
        printf("silence %s added\n", or_dash(jstr(j, "id")));
    cJSON_Delete(j);
    return rc;
}

static int silence_list(cli *c)
{
    cJSON *j = NULL;
    int rc = hub_get(c, "silence list", "/v1/silences", &j);
    if (rc)
        return rc;
    if (c->json) {
        print_json(j);
    } else {
        char t1[64], t2[64];
        int64_t now = now_ms();
        printf("%-34s %-20s  %-20s  %-8s %-30s %s\n", "ID", "STARTS", "ENDS", "STATE", "MATCHERS",
               "COMMENT");
        const cJSON *s;
        cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(j, "silences"))
        {
            char m[256] = "";
            size_t pos = 0;
            const cJSON *kv;
            cJSON_ArrayForEach(kv, cJSON_GetObjectItemCaseSensitive(s, "matchers"))
            {
                int n = snprintf(m + pos, sizeof(m) - pos, "%s%s=%s", pos ? "," : "", kv->string,
                                 cJSON_IsString(kv) ? kv->valuestring : "");
                if (n < 0 || (size_t)n >= sizeof(m) - pos)
                    break;
                pos += (size_t)n;
            }
            int64_t st = (int64_t)jnum(s, "starts", 0), en = (int64_t)jnum(s, "ends", 0);
            printf("%-34s %-20s  %-20s  %-8s %-30s %s\n", or_dash(jstr(s, "id")),
                   cli_time(st, t1, sizeof(t1)), cli_time(en, t2, sizeof(t2)),
                   now >= en  ? "expired"
                   : now < st ? "pending"
                              : "active",
                   m, or_dash(jstr(s, "comment")));
        }
    }
    cJSON_Delete(j);
    return EXIT_OK;
}

static int cmd_silence(cli *c, int argc, const char **argv)
{
    if (argc < 2)
        return cli_usage("silence", "expected add, list or rm");
    if (strcmp(argv[1], "add") == 0)
        return silence_add(c, argc, argv);
    if (strcmp(argv[1], "list") == 0 || strcmp(argv[1], "ls") == 0) {
        if (argc > 2)
            return cli_usage("silence", "unexpected argument \"%s\"", argv[2]);
        return silence_list(c);
    }
    if (strcmp(argv[1], "rm") == 0) {
        int rc = one_arg("silence", argc - 1, argv + 1, "ID");
        if (rc)
            return rc;
        cJSON *j = NULL;
        rc = post_path(c, "silence rm", "/v1/silences/", argv[2], "", NULL, &j);
        if (rc)
            return rc;
        if (c->json)
            print_json(j);
        else
            printf("silence %s removed\n", argv[2]);
        cJSON_Delete(j);
        return EXIT_OK;
    }
    return cli_usage("silence", "unknown subcommand \"%s\" (add, list or rm)", argv[1]);
}

/* ---- agents, drift, audit ----------------------------------------------------------------- */

static int cmd_agents(cli *c, int argc, const char **argv)
{
    if (argc > 1)
        return cli_usage("agents", "unexpected argument \"%s\"", argv[1]);
    cJSON *j = NULL;
    int rc = hub_get(c, "agents", "/v1/agents", &j);
    if (rc)
        return rc;
    if (c->json) {
        print_json(j);
    } else {
        int64_t now = (int64_t)jnum(j, "now", (double)now_ms());
        char t1[64], t2[64];
        printf("%-24s %-14s %-14s %-8s %-10s %s\n", "AGENT", "HEARTBEAT", "LAST SAMPLE", "SERIES",
               "INTERVAL", "STATE");
        const cJSON *a;
        cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(j, "agents"))
        {
            char iv[32];
            vigil_scalar_format_duration(iv, sizeof(iv), (int64_t)jnum(a, "interval_ms", 0));
            printf("%-24s %-14s %-14s %-8.0f %-10s %s\n", or_dash(jstr(a, "id")),
                   ago((int64_t)jnum(a, "last_heartbeat", 0), now, t1, sizeof(t1)),
                   ago((int64_t)jnum(a, "last_seen", 0), now, t2, sizeof(t2)), jnum(a, "series", 0),
                   iv, cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "stale")) ? "STALE" : "ok");
        }
    }
    cJSON_Delete(j);
    return EXIT_OK;
}

static void print_scalar(const cJSON *v)
{
    if (cJSON_IsString(v))
        fputs(v->valuestring, stdout);
    else if (cJSON_IsNumber(v))
        printf("%g", v->valuedouble);
    else if (cJSON_IsBool(v))
        fputs(cJSON_IsTrue(v) ? "true" : "false", stdout);
    else
        fputs("null", stdout);
}

static int cmd_drift(cli *c, int argc, const char **argv)
{
    int all = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--all") == 0)
            all = 1;
        else
            return cli_usage("drift", "unexpected argument \"%s\"", argv[i]);
    }
    cJSON *j = NULL;
    int rc = hub_get(c, "drift", "/v1/drift", &j);
    if (rc)
        return rc;
    if (c->json) {
        print_json(j);
        cJSON_Delete(j);
        return EXIT_OK;
    }
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "drift");
    printf("%.0f drifted of %d resources\n", jnum(j, "drifted", 0), cJSON_GetArraySize(arr));
    const cJSON *d;
    cJSON_ArrayForEach(d, arr)
    {
        const char *st = or_dash(jstr(d, "status"));
        if (!all && strcmp(st, "in_sync") == 0)
            continue;
        printf("  %-40s %-9s", or_dash(jstr(d, "target")), st);
        const cJSON *f;
        cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(d, "diff"))
        {
            printf(" %s: ", or_dash(jstr(f, "field")));
            print_scalar(cJSON_GetObjectItemCaseSensitive(f, "desired"));
            fputs(" -> ", stdout);
            print_scalar(cJSON_GetObjectItemCaseSensitive(f, "observed"));
        }
        if (jstr(d, "error"))
            printf(" %s", jstr(d, "error"));
        putchar('\n');
    }
    cJSON_Delete(j);
    return EXIT_OK;
}

static int cmd_audit(cli *c, int argc, const char **argv)
{
    if (argc < 2 || strcmp(argv[1], "verify") != 0)
        return cli_usage("audit", "expected \"verify\"");
    if (argc > 2)
        return cli_usage("audit", "unexpected argument \"%s\"", argv[2]);
    cJSON *j = NULL;
    int rc = hub_get(c, "audit verify", "/v1/audit/verify", &j);
    if (rc)
        return rc;
    int ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "ok"));
    if (c->json) {
        print_json(j);
    } else if (ok) {
        printf("audit chain ok: %.0f entries verified\n", jnum(j, "entries", 0));
    } else {
        printf("audit chain BROKEN at seq %.0f (%.0f entries): %s\n", jnum(j, "broken_at", 0),
               jnum(j, "entries", 0), or_dash(jstr(j, "reason")));
    }
    cJSON_Delete(j);
    return ok ? EXIT_OK : EXIT_FAILED;
}

/* ---- the command table and help ------------------------------------------------------ */

static int cmd_help(cli *c, int argc, const char **argv);

static const cli_command commands[] = {
    {"status", "health of the hub, agents, firing policies, recent actions, drift",
     "vigil status [--remediator URL] [--gitopsd URL] [--json]\n"
     "  The hub's readiness (and the health of the remediator and gitopsd at\n"
     "  those URLs, or VIGIL_REMEDIATOR_URL and VIGIL_GITOPSD_URL, when given),\n"
     "  each agent and when it was last seen (STALE when its\n"
     "  heartbeats stopped), the policies firing now, the actions of the last hour\n"
     "  with their verdicts, and the number of drifted resources.\n",
     cmd_status},
    {"query", "a metric's samples, charted on a terminal",
     "vigil query METRIC [--match key=value]... [--since 1h] [--step 1m] [--agg mean] [--json]\n"
     "  Samples of METRIC over the last --since (default 1h). --match may repeat; a\n"
     "  value with * ? [ is a glob. --step downsamples with --agg (mean, min, max,\n"
     "  sum, count, last). A terminal gets a small chart per series, a pipe the\n"
     "  points as \"time value\" lines, --json the hub's answer.\n",
     cmd_query},
    {"decisions", "the policy engine's decisions",
     "vigil decisions [--since 1h] [--limit N] [--json]\n"
     "  Every decision (fired, remediated, suppressed, ...) since then, oldest first.\n",
     cmd_decisions},
    {"actions", "the actions ledger with results and verdicts",
     "vigil actions [--since 1h] [--status STATUS] [--json]\n"
     "  Actions requested since then, with status (succeeded, failed, pending,\n"
     "  pending_approval, ...) and verdict (the latest decision about each).\n",
     cmd_actions},
    {"approve", "approve an action that waits for approval",
     "vigil approve ID [--json]\n"
     "  Forwarded by the hub to the remediator that owns the action (admin token).\n",
     cmd_approve},
    {"deny", "deny an action that waits for approval",
     "vigil deny ID [--json]\n"
     "  Forwarded by the hub to the remediator that owns the action (admin token).\n",
     cmd_deny},
    {"silence", "add, list or remove maintenance silences",
     "vigil silence add MATCHERS --for 1h [--comment TEXT] [--json]\n"
     "vigil silence list [--json]\n"
     "vigil silence rm ID [--json]\n"
     "  MATCHERS: key=glob pairs separated by commas, keys policy, target, action,\n"
     "  series or a tag (e.g. policy=demo_down,target=demo). Needs a write token.\n",
     cmd_silence},
    {"release", "release a target the remediator quarantined",
     "vigil release TARGET [--json]\n"
     "  Forwarded by the hub to the remediator (admin token).\n",
     cmd_release},
    {"agents", "every agent, its last heartbeat and whether it is stale",
     "vigil agents [--json]\n"
     "  An agent is stale when its last heartbeat is older than 3 times its usual\n"
     "  interval (the median gap of its heartbeats over the last hour; 10s when\n"
     "  unknown).\n",
     cmd_agents},
    {"drift", "resources whose observed state differs from their manifests",
     "vigil drift [--all] [--json]\n"
     "  The hosts' latest drift reports (vigil-gitopsd): each resource drifted,\n"
     "  missing or in error, with the fields that differ (desired -> observed).\n"
     "  --all also lists the resources in sync.\n",
     cmd_drift},
    {"audit", "verify the remediator's hash-chained audit log",
     "vigil audit verify [--json]\n"
     "  Exit 1 when the chain is broken (the first broken row is printed).\n",
     cmd_audit},
    {"validate", "check config, policy, manifest and policy-test files",
     "vigil validate [--kind KIND] FILE... [--json]\n"
     "  KIND: agent, collector, remediator, gitopsd, policies, manifest,\n"
     "  policy-test; by default told by the file's keys. Errors as\n"
     "  file:line:col: message; exit 1 when any file has an error. Variables a\n"
     "  config names (secret_env, token env, ${VAR}) need not be set: each is\n"
     "  reported as a note.\n",
     cmd_validate},
    {"simulate", "replay metrics through policies and print the decisions",
     "vigil simulate --policies FILE --input METRICS.json [--tick 1s] [--json]\n"
     "  METRICS.json: an ingest document ({\"metrics\":[...]}) or a list of them.\n"
     "  Samples are replayed in time order through a private engine (in memory):\n"
     "  nothing is sent anywhere. Requested actions are taken to succeed.\n",
     cmd_simulate},
    {"test", "run policy unit tests",
     "vigil test FILE... [--json]\n"
     "  Runs policy tests (docs/policy-tests.md): input series and the decisions\n"
     "  expected at given times. Exit 1 on a mismatch, with a diff.\n",
     cmd_test},
    {"help", "help on a command", "vigil help [COMMAND]\n", cmd_help},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const cli_command *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void usage_all(FILE *f)
{
    fprintf(f, "usage: vigil [--url URL] [--token TOKEN] [--env-file FILE] [--json] COMMAND "
               "[ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f,
            "\nThe hub: --url, else VIGIL_URL, else %s. The token: --token, else\n"
            "VIGIL_TOKEN, else VIGIL_ADMIN_TOKEN or VIGIL_READ_TOKEN. Variables not set are\n"
            "read from --env-file or ./var/dev.env (written by make run) when present.\n"
            "Exit codes: 0 ok, 1 failed check or refused request, 2 usage, 3 hub unreachable.\n"
            "'vigil help COMMAND' for a command's usage; docs/cli.md for more.\n",
            DEFAULT_URL);
}

static int cmd_help(cli *c, int argc, const char **argv)
{
    (void)c;
    if (argc < 2) {
        usage_all(stdout);
        return EXIT_OK;
    }
    const cli_command *cmd = find_command(argv[1]);
    if (!cmd)
        return cli_usage("help", "unknown command \"%s\"", argv[1]);
    printf("vigil %s - %s\n\nusage: %s", cmd->name, cmd->summary, cmd->usage);
    return EXIT_OK;
}

/* ---- main --------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    cli c;
    memset(&c, 0, sizeof(c));
    const char *url = NULL, *token = NULL;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int r;
        const char **av = (const char **)argv;
        if (strcmp(argv[i], "--json") == 0) {
            c.json = 1;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            c.help = 1;
        } else if ((r = opt_value(argc, av, &i, "--url", &v)) != 0) {
            if (r < 0)
                return cli_err("--url needs a value"), EXIT_USAGE;
            url = v;
        } else if ((r = opt_value(argc, av, &i, "--token", &v)) != 0) {
            if (r < 0)
                return cli_err("--token needs a value"), EXIT_USAGE;
            token = v;
        } else if ((r = opt_value(argc, av, &i, "--env-file", &v)) != 0) {
            if (r < 0)
                return cli_err("--env-file needs a value"), EXIT_USAGE;
            c.env_file = v;
        } else if (c.argc < CLI_ARGS_MAX) {
            c.argv[c.argc++] = argv[i];
        } else {
            cli_err("too many arguments");
            return EXIT_USAGE;
        }
    }
    if (c.argc == 0) {
        if (c.help) {
            usage_all(stdout);
            return EXIT_OK;
        }
        usage_all(stderr);
        return EXIT_USAGE;
    }
    const cli_command *cmd = find_command(c.argv[0]);
    if (!cmd) {
        cli_err("unknown command \"%s\"", c.argv[0]);
        usage_all(stderr);
        return EXIT_USAGE;
    }
    if (c.help) {
        const char *hv[2] = {"help", cmd->name};
        return cmd_help(&c, 2, hv);
    }
    if (read_env_file(c.env_file ? c.env_file : ENV_FILE_DEFAULT, c.env_file != NULL))
        return EXIT_USAGE;
    c.url = url ? url : getenv("VIGIL_URL");
    if (!c.url || !*c.url)
        c.url = DEFAULT_URL;
    c.token = token;
    if (!c.token)
        c.token = getenv("VIGIL_TOKEN");
    if (!c.token || !*c.token)
        c.token = getenv("VIGIL_ADMIN_TOKEN");
    if (!c.token || !*c.token)
        c.token = getenv("VIGIL_READ_TOKEN");
    c.color = isatty(STDOUT_FILENO);
    int rc = cmd->run(&c, c.argc, c.argv);
    vigil_client_free(c.client);
    fflush(stdout);
    return rc;
}
