/* Late results to the hub: POST <hub>/v1/actions/<id>/result with the
 * result JSON (and the audit checkpoint it carries), signed with the
 * hub<->remediator secret (X-Vigil-Signature over "<t>.<body>", as the hub
 * signs its requests) and a bearer token, from one background thread, retried with
 * exponential backoff on network errors and 5xx (a 4xx is final), through
 * lib/http. */
#include "core/cond.h"
#include "crypto/crypto.h"
#include "http/http.h"
#include "remediator/rem_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HUBPOST_QUEUE_MAX   4096
#define HUBPOST_BACKOFF_MAX 30000

typedef struct hp_item {
    char *id;
    char *body;
    size_t len;
    unsigned int attempts;
    int64_t due_ms; /* monotonic */
    struct hp_item *next;
} hp_item;

struct vigil__hubpost {
    char *url; /* base, without a trailing '/' */
    char *token;
    char *ca_file, *cert_file, *key_file; /* TLS of the link, or NULL */
    unsigned char *secret;                /* the HMAC key of X-Vigil-Signature */
    size_t secret_len;
    unsigned int max_attempts;
    int64_t backoff_ms;
    int64_t timeout_ms;
    vigil_logger logger;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    hp_item *items;
    size_t n;
    int started, stopping;
    pthread_t thread;
    vigil__http *http;
    vigil__http_response resp;
    uint64_t rng; /* jitter */
};

static void item_free(hp_item *it)
{
    if (!it)
        return;
    vigil__free(it->id);
    vigil__free(it->body);
    vigil__free(it);
}

void vigil__hubpost_free(vigil__hubpost *hp)
{
    if (!hp)
        return;
    vigil__hubpost_stop(hp);
    while (hp->items) {
        hp_item *it = hp->items;
        hp->items = it->next;
        item_free(it);
    }
    vigil__http_free(hp->http);
    vigil__http_response_dispose(&hp->resp);
    vigil__free_wiped(hp->token);
    if (hp->secret) {
        volatile unsigned char *p = hp->secret;
        for (size_t i = 0; i < hp->secret_len; i++)
            p[i] = 0;
        vigil__free(hp->secret);
    }
    vigil__free(hp->url);
    vigil__free(hp->ca_file);
    vigil__free(hp->cert_file);
    vigil__free(hp->key_file);
    pthread_cond_destroy(&hp->cv);
    pthread_mutex_destroy(&hp->mu);
    vigil__free(hp);
}

int vigil__hubpost_new(vigil__hubpost **out, const vigil_remediator_options *o, const void *secret,
                       size_t secret_len, const vigil_logger *logger)
{
    *out = NULL;
    const char *url = o->hub_url;
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return vigil__error_set(VIGIL_EUNSUPPORTED, "hub.url: expected http:// or https://");
    if (vigil__http_init() != VIGIL_OK)
        return vigil__error_set(VIGIL_EIO, "hub: libcurl could not be initialised");
    vigil__hubpost *hp = vigil__calloc(1, sizeof(*hp));
    if (!hp)
        return vigil__error_oom();
    pthread_mutex_init(&hp->mu, NULL);
    vigil__cond_init_monotonic(&hp->cv);
    hp->logger = *logger;
    hp->rng = vigil__crypto_seed();
    hp->max_attempts = o->hub_attempts ? o->hub_attempts : 8;
    hp->backoff_ms = o->hub_backoff_ms ? o->hub_backoff_ms : 500;
    hp->timeout_ms = o->hub_timeout_ms ? o->hub_timeout_ms : 10000;
    size_t n = strlen(url);
    while (n && url[n - 1] == '/')
        n--;
    int rc = (hp->url = vigil__strndup(url, n)) ? VIGIL_OK : vigil__error_oom();
    if (!rc && o->version >= 2) {
        rc = vigil__http_tls_check("hub", o->hub_ca_file, o->hub_cert, o->hub_key);
        if (!rc && ((o->hub_ca_file && !(hp->ca_file = vigil__strdup(o->hub_ca_file))) ||
                    (o->hub_cert && !(hp->cert_file = vigil__strdup(o->hub_cert))) ||
                    (o->hub_key && !(hp->key_file = vigil__strdup(o->hub_key)))))
            rc = vigil__error_oom();
    }
    if (!rc && (!secret || !secret_len))
        rc = vigil__error_set(VIGIL_EINVAL, "hub: results are signed: a secret is required");
    if (!rc && !(hp->secret = vigil__malloc(secret_len)))
        rc = vigil__error_oom();
    if (!rc) {
        memcpy(hp->secret, secret, secret_len);
        hp->secret_len = secret_len;
    }
    if (!rc && o->hub_token_env) {
        const char *t = getenv(o->hub_token_env);
        if (!t || !*t)
            rc = vigil__error_set(VIGIL_EENV,
                                  "hub.token_env: environment variable %.128s is not set",
                                  o->hub_token_env);
        else if (strchr(t, '\r') || strchr(t, '\n') || strlen(t) > 4096)
            rc = vigil__error_set(VIGIL_EVALUE, "hub.token_env: the token is malformed");
        else if (!(hp->token = vigil__strdup(t)))
            rc = vigil__error_oom();
    }
    if (!rc)
        rc = vigil__http_new(&hp->http);
    if (rc) {
        vigil__hubpost_free(hp);
        return rc;
    }
    *out = hp;
    return VIGIL_OK;
}

/* Percent-encodes an id for a path segment. */
static int put_escaped(vigil_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = VIGIL_OK;
    for (; *s && !rc; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~')
            rc = vigil__buf_putc(b, (char)c);
        else
            rc = vigil__buf_printf(b, "%%%c%c", hex[c >> 4], hex[c & 15]);
    }
    return rc;
}

/* 0: delivered or final; 1: retry. */
static int post_one(vigil__hubpost *hp, hp_item *it)
{
    vigil_buf url = VIGIL_BUF_INIT, auth = VIGIL_BUF_INIT, sig = VIGIL_BUF_INIT,
              shdr = VIGIL_BUF_INIT;
    int rc = vigil__buf_printf(&url, "%s/v1/actions/", hp->url);
    if (!rc)
        rc = put_escaped(&url, it->id);
    if (!rc)
        rc = vigil__buf_puts(&url, "/result");
    if (!rc && hp->token)
        rc = vigil__buf_printf(&auth, "Authorization: Bearer %s", hp->token);
    /* signed at each attempt: the timestamp must be fresh */
    if (!rc)
        rc = vigil_signature_make(&sig, hp->secret, hp->secret_len, vigil__now_ms() / 1000,
                                  it->body, it->len);
    if (!rc)
        rc = vigil__buf_printf(&shdr, "%s: %s", VIGIL_SIGNATURE_HEADER, sig.ptr);
    vigil_buf_dispose(&sig);
    if (rc) {
        vigil_buf_dispose(&url);
        vigil_buf_dispose(&auth);
        vigil_buf_dispose(&shdr);
        return 1;
    }
    const char *hs[4] = {"Content-Type: application/json", "Expect:", shdr.ptr, auth.ptr};
    vigil__http_request req = VIGIL__HTTP_REQUEST_INIT;
    req.url = url.ptr;
    req.ca_file = hp->ca_file;
    req.cert_file = hp->cert_file;
    req.key_file = hp->key_file;
    req.body = it->body;
    req.body_len = it->len;
    req.headers = hs;
    req.nheaders = auth.ptr ? 4 : 3;
    req.timeout_ms = hp->timeout_ms;
    req.max_response = 4096; /* the answer is not read: keep little of it */
    req.overflow = VIGIL__HTTP_OVERFLOW_CLIP;
    int hrc = vigil__http_perform(hp->http, &req, &hp->resp);
    long status = hp->resp.status;
    if (auth.ptr) {
        volatile char *p = auth.ptr;
        while (*p)
            *p++ = 0;
    }
    vigil_buf_dispose(&auth);
    vigil_buf_dispose(&shdr);
    vigil_buf_dispose(&url);
    it->attempts++;
    if (hrc == VIGIL_OK && status >= 200 && status < 300) {
        vigil__log(&hp->logger, VIGIL_LOG_INFO, "remediator", "late result delivered to the hub",
                   "status=%ld", status);
        return 0;
    }
    if (hrc == VIGIL_OK && status >= 400 && status < 500) {
        vigil__log(&hp->logger, VIGIL_LOG_WARN, "remediator", "the hub refused a late result",
                   "status=%ld", status);
        return 0;
    }
    vigil__log(&hp->logger, VIGIL_LOG_WARN, "remediator", "late result not delivered",
               "status=%ld error=\"%s\" attempt=%u", status,
               hrc == VIGIL_OK      ? "server error"
               : hp->resp.reason[0] ? hp->resp.reason
                                    : vigil_error_last()->message,
               it->attempts);
    return it->attempts < hp->max_attempts;
}

static void *hp_main(void *arg)
{
    vigil__hubpost *hp = arg;
    pthread_mutex_lock(&hp->mu);
    while (!hp->stopping) {
        int64_t now = vigil__monotonic_ms();
        hp_item **best = NULL;
        for (hp_item **p = &hp->items; *p; p = &(*p)->next)
            if (!best || (*p)->due_ms < (*best)->due_ms)
                best = p;
        if (!best || (*best)->due_ms > now) {
            if (!best) {
                pthread_cond_wait(&hp->cv, &hp->mu);
            } else {
                vigil__cond_wait_until(&hp->cv, &hp->mu, (*best)->due_ms);
            }
            continue;
        }
        hp_item *it = *best;
        *best = it->next;
        hp->n--;
        pthread_mutex_unlock(&hp->mu);
        int retry = post_one(hp, it);
        pthread_mutex_lock(&hp->mu);
        if (retry) {
            int64_t d = vigil__backoff_ceiling(hp->backoff_ms, HUBPOST_BACKOFF_MAX, it->attempts);
            it->due_ms = vigil__monotonic_ms() + vigil__backoff_jitter(d, &hp->rng);
            it->next = hp->items;
            hp->items = it;
            hp->n++;
        } else {
            item_free(it);
        }
    }
    pthread_mutex_unlock(&hp->mu);
    return NULL;
}

int vigil__hubpost_start(vigil__hubpost *hp)
{
    if (pthread_create(&hp->thread, NULL, hp_main, hp))
        return vigil__error_set(VIGIL_ERROR, "remediator: cannot start the hub poster");
    hp->started = 1;
    return VIGIL_OK;
}

void vigil__hubpost_stop(vigil__hubpost *hp)
{
    if (!hp)
        return;
    pthread_mutex_lock(&hp->mu);
    hp->stopping = 1;
    pthread_cond_broadcast(&hp->cv);
    pthread_mutex_unlock(&hp->mu);
    if (hp->started) {
        pthread_join(hp->thread, NULL);
        hp->started = 0;
    }
    /* one last attempt for what is still queued */
    pthread_mutex_lock(&hp->mu);
    hp_item *items = hp->items;
    hp->items = NULL;
    hp->n = 0;
    pthread_mutex_unlock(&hp->mu);
    while (items) {
        hp_item *it = items;
        items = it->next;
        if (post_one(hp, it))
            vigil__log(&hp->logger, VIGIL_LOG_ERROR, "remediator",
                       "late result dropped at shutdown (kept in the ledger)", NULL);
        item_free(it);
    }
}

int vigil__hubpost_enqueue(vigil__hubpost *hp, const char *id, const char *body, size_t len)
{
    hp_item *it = vigil__calloc(1, sizeof(*it));
    if (!it)
        return vigil__error_oom();
    it->id = vigil__strdup(id ? id : "");
    it->body = vigil__strndup(body ? body : "", len);
    it->len = len;
    if (!it->id || !it->body) {
        item_free(it);
        return vigil__error_oom();
    }
    it->due_ms = vigil__monotonic_ms();
    pthread_mutex_lock(&hp->mu);
    if (hp->n >= HUBPOST_QUEUE_MAX) {
        pthread_mutex_unlock(&hp->mu);
        item_free(it);
        return vigil__error_set(VIGIL_EOVERLOADED, "hub: %d late results are queued",
                                HUBPOST_QUEUE_MAX);
    }
    hp_item **tail = &hp->items;
    while (*tail)
        tail = &(*tail)->next;
    *tail = it;
    hp->n++;
    pthread_cond_signal(&hp->cv);
    pthread_mutex_unlock(&hp->mu);
    return VIGIL_OK;
}
