/* Bearer tokens: loaded from environment variables or files, re-read on
 * reload, compared in constant time. A token is never logged nor quoted in a
 * message. */
#include "api/auth.h"
#include "vigil/metric.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_MAX      512
#define TOKENS_PER_SRC 16
#define TOKEN_FILE_MAX (64 * 1024)

typedef struct token_src {
    char *name;
    char *env;
    char *file;
    unsigned int scopes;
    char **agents; /* agent ids or globs this source may speak for; NULL: any */
    size_t nagents;
} token_src;

typedef struct loaded_token {
    char *tok;
    size_t len;
    size_t src;
} loaded_token;

struct vigil__api_auth {
    token_src *src;
    size_t nsrc;
    vigil_logger logger;
    pthread_rwlock_t lock;
    loaded_token *toks;
    size_t ntoks;
};

unsigned int vigil__api_scopes_expand(unsigned int scopes)
{
    if (scopes & VIGIL_API_SCOPE_ADMIN)
        scopes |= VIGIL_API_SCOPE_WRITE;
    if (scopes & VIGIL_API_SCOPE_WRITE)
        scopes |= VIGIL_API_SCOPE_READ;
    return scopes;
}

static void toks_free(loaded_token *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (t[i].tok) {
            /* Wipe secrets before giving the memory back. */
            volatile char *p = t[i].tok;
            for (size_t k = 0; k < t[i].len; k++)
                p[k] = 0;
        }
        vigil__free(t[i].tok);
    }
    vigil__free(t);
}

/* Splits `text` on commas and newlines into tokens of source `si`. */
static int parse_tokens(const char *text, size_t len, size_t si, const token_src *s,
                        loaded_token **toks, size_t *ntoks, size_t *cap)
{
    size_t found = 0;
    size_t i = 0;
    while (i <= len) {
        size_t start = i;
        while (i < len && text[i] != ',' && text[i] != '\n')
            i++;
        size_t a = start, b = i;
        while (a < b && (text[a] == ' ' || text[a] == '\t' || text[a] == '\r'))
            a++;
        while (b > a && (text[b - 1] == ' ' || text[b - 1] == '\t' || text[b - 1] == '\r'))
            b--;
        i++;
        if (a == b)
            continue;
        for (size_t k = a; k < b; k++) {
            unsigned char c = (unsigned char)text[k];
            if (c < 0x21 || c > 0x7e)
                return vigil__error_set(VIGIL_EVALUE,
                                        "token \"%s\": a token may hold only visible ASCII "
                                        "characters (token %zu of its source)",
                                        s->name, found + 1);
        }
        if (b - a > TOKEN_MAX)
            return vigil__error_set(VIGIL_ELIMIT, "token \"%s\": token %zu is longer than %d bytes",
                                    s->name, found + 1, TOKEN_MAX);
        if (++found > TOKENS_PER_SRC)
            return vigil__error_set(VIGIL_ELIMIT, "token \"%s\": more than %d tokens", s->name,
                                    TOKENS_PER_SRC);
        if (vigil__array_grow((void **)toks, cap, *ntoks + 1, sizeof(loaded_token)))
            return VIGIL_ENOMEM;
        char *t = vigil__strndup(text + a, b - a);
        if (!t)
            return vigil__error_oom();
        (*toks)[*ntoks].tok = t;
        (*toks)[*ntoks].len = b - a;
        (*toks)[*ntoks].src = si;
        (*ntoks)++;
    }
    if (!found)
        return vigil__error_set(VIGIL_EVALUE, "token \"%s\": %s %s holds no token", s->name,
                                s->env ? "environment variable" : "file",
                                s->env ? s->env : s->file);
    return VIGIL_OK;
}

static int read_file(const token_src *s, char **out, size_t *len)
{
    FILE *f = fopen(s->file, "rb");
    if (!f)
        return vigil__error_set(VIGIL_EIO, "token \"%s\": cannot read %s: %s", s->name, s->file,
                                strerror(errno));
    char *buf = vigil__malloc(TOKEN_FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        return vigil__error_oom();
    }
    size_t n = fread(buf, 1, TOKEN_FILE_MAX + 1, f);
    int err = ferror(f);
    fclose(f);
    if (err) {
        vigil__free(buf);
        return vigil__error_set(VIGIL_EIO, "token \"%s\": cannot read %s", s->name, s->file);
    }
    if (n > TOKEN_FILE_MAX) {
        vigil__free(buf);
        return vigil__error_set(VIGIL_ELIMIT, "token \"%s\": %s is larger than %d bytes", s->name,
                                s->file, TOKEN_FILE_MAX);
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return VIGIL_OK;
}

static int load_all(vigil__api_auth *a, loaded_token **out, size_t *nout)
{
    loaded_token *toks = NULL;
    size_t n = 0, cap = 0;
    int rc = VIGIL_OK;
    for (size_t i = 0; i < a->nsrc && !rc; i++) {
        const token_src *s = &a->src[i];
        if (s->env) {
            const char *v = getenv(s->env);
            if (!v)
                rc =
                    vigil__error_set(VIGIL_EENV, "token \"%s\": environment variable %s is not set",
                                     s->name, s->env);
            else
                rc = parse_tokens(v, strlen(v), i, s, &toks, &n, &cap);
        } else {
            char *text = NULL;
            size_t len = 0;
            rc = read_file(s, &text, &len);
            if (!rc)
                rc = parse_tokens(text, len, i, s, &toks, &n, &cap);
            if (text) {
                volatile char *p = text;
                for (size_t k = 0; k < len; k++)
                    p[k] = 0;
            }
            vigil__free(text);
        }
    }
    if (rc) {
        toks_free(toks, n);
        return rc;
    }
    for (size_t i = 0; i < n; i++)
        if (toks[i].len < VIGIL_API_TOKEN_MIN) {
            const token_src *s = &a->src[toks[i].src];
            size_t len = toks[i].len;
            toks_free(toks, n);
            return vigil__error_set(VIGIL_EVALUE,
                                    "token \"%s\": a token from %s %s is %zu bytes; at least %d "
                                    "are required",
                                    s->name, s->env ? "environment variable" : "file",
                                    s->env ? s->env : s->file, len, VIGIL_API_TOKEN_MIN);
        }
    *out = toks;
    *nout = n;
    return VIGIL_OK;
}

static void src_dispose(token_src *s)
{
    for (size_t i = 0; i < s->nagents; i++)
        vigil__free(s->agents[i]);
    vigil__free(s->agents);
    vigil__free(s->name);
    vigil__free(s->env);
    vigil__free(s->file);
}

void vigil__api_auth_free(vigil__api_auth *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->nsrc; i++)
        src_dispose(&a->src[i]);
    vigil__free(a->src);
    toks_free(a->toks, a->ntoks);
    pthread_rwlock_destroy(&a->lock);
    vigil__free(a);
}

/* Copies the agents of `b` into the source of the same name. */
static int bind_source(vigil__api_auth *a, const vigil_api_binding *b, size_t index)
{
    token_src *s = NULL;
    for (size_t i = 0; i < a->nsrc && !s; i++)
        if (b->token && strcmp(a->src[i].name, b->token) == 0)
            s = &a->src[i];
    if (!s)
        return vigil__error_set(VIGIL_EINVAL, "bindings[%zu]: no token named \"%.64s\"", index,
                                b->token ? b->token : "(null)");
    if (s->agents)
        return vigil__error_set(VIGIL_EINVAL, "token \"%s\": bound twice", s->name);
    if (!b->nagents || !b->agents || b->nagents > VIGIL__API_AGENTS_MAX)
        return vigil__error_set(VIGIL_EINVAL, "token \"%s\": agents: expected 1 to %d entries",
                                s->name, VIGIL__API_AGENTS_MAX);
    s->agents = vigil__calloc(b->nagents, sizeof(char *));
    if (!s->agents)
        return vigil__error_oom();
    for (size_t i = 0; i < b->nagents; i++) {
        const char *g = b->agents[i];
        if (!g || !*g || strlen(g) > VIGIL_AGENT_ID_MAX)
            return vigil__error_set(VIGIL_EINVAL,
                                    "token \"%s\": agents[%zu]: expected an agent id or glob of "
                                    "1 to %d bytes",
                                    s->name, i, VIGIL_AGENT_ID_MAX);
        if (!(s->agents[i] = vigil__strdup(g)))
            return vigil__error_oom();
        s->nagents++;
    }
    return VIGIL_OK;
}

int vigil__api_auth_new(vigil__api_auth **out, const vigil_api_token *tokens, size_t ntokens,
                        const vigil_api_binding *bindings, size_t nbindings,
                        const vigil_logger *logger)
{
    for (size_t i = 0; i < ntokens; i++) {
        const vigil_api_token *t = &tokens[i];
        if (!t->name || !*t->name)
            return vigil__error_set(VIGIL_EINVAL, "tokens[%zu]: a name is required", i);
        if ((t->env && t->file) || (!t->env && !t->file) || (t->env && !*t->env) ||
            (t->file && !*t->file))
            return vigil__error_set(VIGIL_EINVAL, "token \"%s\": set exactly one of env and file",
                                    t->name);
        if (!t->scopes || (t->scopes & ~0xfu))
            return vigil__error_set(
                VIGIL_EINVAL, "token \"%s\": scopes must be ingest, read, write or admin", t->name);
    }
    vigil__api_auth *a = vigil__calloc(1, sizeof(*a));
    if (!a)
        return vigil__error_oom();
    pthread_rwlock_init(&a->lock, NULL);
    if (logger)
        a->logger = *logger;
    if (ntokens) {
        a->src = vigil__calloc(ntokens, sizeof(token_src));
        if (!a->src) {
            vigil__api_auth_free(a);
            return vigil__error_oom();
        }
    }
    for (size_t i = 0; i < ntokens; i++) {
        token_src *s = &a->src[a->nsrc++];
        s->name = vigil__strdup(tokens[i].name);
        s->env = tokens[i].env ? vigil__strdup(tokens[i].env) : NULL;
        s->file = tokens[i].file ? vigil__strdup(tokens[i].file) : NULL;
        s->scopes = vigil__api_scopes_expand(tokens[i].scopes);
        if (!s->name || (tokens[i].env && !s->env) || (tokens[i].file && !s->file)) {
            vigil__api_auth_free(a);
            return vigil__error_oom();
        }
    }
    int rc = VIGIL_OK;
    for (size_t i = 0; i < nbindings && !rc; i++)
        rc = bind_source(a, &bindings[i], i);
    if (!rc)
        rc = load_all(a, &a->toks, &a->ntoks);
    if (rc) {
        vigil__api_auth_free(a);
        return rc;
    }
    *out = a;
    return VIGIL_OK;
}

int vigil__api_auth_reload(vigil__api_auth *a)
{
    loaded_token *toks = NULL;
    size_t n = 0;
    int rc = load_all(a, &toks, &n);
    if (rc)
        return rc;
    pthread_rwlock_wrlock(&a->lock);
    loaded_token *old = a->toks;
    size_t nold = a->ntoks;
    a->toks = toks;
    a->ntoks = n;
    pthread_rwlock_unlock(&a->lock);
    toks_free(old, nold);
    return VIGIL_OK;
}

size_t vigil__api_auth_sources(const vigil__api_auth *a)
{
    return a ? a->nsrc : 0;
}

/* Equal when the lengths and every byte match; the time depends only on the
 * lengths, never on where the first difference is. */
static unsigned ct_diff(const char *a, size_t al, const char *b, size_t bl)
{
    size_t n = al > bl ? al : bl;
    unsigned d = (unsigned)(al != bl);
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)(i < al ? a[i] : 0);
        unsigned char y = (unsigned char)(i < bl ? b[i] : 0);
        d |= (unsigned)(x ^ y);
    }
    return d;
}

size_t vigil__api_auth_agents(const vigil__api_auth *a, const char *name,
                              const char *const **agents)
{
    *agents = NULL;
    for (size_t i = 0; a && name && i < a->nsrc; i++)
        if (strcmp(a->src[i].name, name) == 0) {
            *agents = (const char *const *)a->src[i].agents;
            return a->src[i].nagents;
        }
    return 0;
}

int vigil__api_auth_check(vigil__api_auth *a, const char *token, size_t len, unsigned int scope,
                          char *name, size_t name_size)
{
    if (name && name_size)
        name[0] = '\0';
    pthread_rwlock_rdlock(&a->lock);
    size_t match = SIZE_MAX;
    for (size_t i = 0; i < a->ntoks; i++) {
        unsigned d = ct_diff(token, len, a->toks[i].tok, a->toks[i].len);
        /* Branch-free select of the first scoped match, else any match. */
        size_t is = (size_t)0 - (size_t)(d == 0);
        unsigned ok = (a->src[a->toks[i].src].scopes & scope) != 0;
        size_t better = is & ((size_t)0 - (size_t)(match == SIZE_MAX || ok));
        match = (better & i) | (~better & match);
    }
    int rc = VIGIL_EAUTH;
    if (match != SIZE_MAX) {
        const token_src *s = &a->src[a->toks[match].src];
        if (name && name_size)
            snprintf(name, name_size, "%s", s->name);
        rc = (s->scopes & scope) ? VIGIL_OK : VIGIL_EPERM;
    }
    pthread_rwlock_unlock(&a->lock);
    return rc;
}
