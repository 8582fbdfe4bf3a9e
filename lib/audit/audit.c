/* The remediator's audit log: rows in the store, chained with HMAC-SHA256
 * (lib/crypto). The mac of a row covers, length-prefixed, its seq, ts, kind,
 * action_id, data and the mac of the previous row, so no two different rows
 * serialise the same and a row cannot move without breaking the chain. */
#include "crypto/crypto.h"
#include "internal/common.h"
#include "internal/json.h"
#include "vigil/audit.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define MAC_LEN      32
#define HEX_LEN      (2 * MAC_LEN)
#define PAGE_ROWS    256
#define APPEND_TRIES 8
#define DATA_DEPTH   VIGIL_AUDIT_DATA_DEPTH
#define DOMAIN       "vigil-audit-v1"

struct vigil_audit {
    vigil_store *store;
    unsigned char *key;
    size_t key_len;
    int64_t (*clock)(void *payload);
    void *clock_payload;
    vigil_logger logger;
    pthread_mutex_t lock;
    /* under lock */
    int64_t head_seq;
    char head_mac[VIGIL_AUDIT_MAC_HEX];
    int head_stale; /* a store call failed mid-append: re-read the head first */
};

/* ---- small helpers ---------------------------------------------------------- */

static void wipe(void *p, size_t n)
{
    if (p && n)
        explicit_bzero(p, n);
}

static int is_hex_mac(const char *s)
{
    if (!s)
        return 0;
    size_t i = 0;
    for (; s[i]; i++) {
        char c = s[i];
        if (i >= HEX_LEN ||
            !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return 0;
    }
    return i == HEX_LEN;
}

/* Compares two hex macs case-insensitively in constant time (for equal lengths). */
static int mac_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb)
        return 0;
    unsigned char diff = 0;
    for (size_t i = 0; i < la; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'F')
            x = (unsigned char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'F')
            y = (unsigned char)(y - 'A' + 'a');
        diff |= (unsigned char)(x ^ y);
    }
    return diff == 0;
}

static int64_t now_ms(const vigil_audit *a)
{
    return a->clock ? a->clock(a->clock_payload) : vigil__now_ms();
}

/* ---- the mac ------------------------------------------------------------------ */

typedef struct hmac {
    vigil__crypto_hmac_ctx ctx;
    int ready;
} hmac;

static int hmac_init(hmac *h, const unsigned char *key, size_t key_len)
{
    h->ready = 0;
    if (vigil__crypto_hmac_start(&h->ctx, key, key_len) != VIGIL_OK) {
        vigil__crypto_hmac_free(&h->ctx);
        return vigil__error_set(VIGIL_ERROR, "audit: HMAC-SHA256 setup failed");
    }
    h->ready = 1;
    return VIGIL_OK;
}

static void hmac_free(hmac *h)
{
    vigil__crypto_hmac_free(&h->ctx); /* zeroises the key pads */
    h->ready = 0;
}

static int put_u64(vigil__crypto_hmac_ctx *ctx, uint64_t v)
{
    unsigned char b[8];
    for (int i = 7; i >= 0; i--) {
        b[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
    return vigil__crypto_hmac_update(ctx, b, sizeof(b));
}

static int put_field(vigil__crypto_hmac_ctx *ctx, const char *s)
{
    size_t n = strlen(s);
    if (put_u64(ctx, (uint64_t)n) != 0)
        return -1;
    return vigil__crypto_hmac_update(ctx, s, n);
}

/* The mac of one row, as 64 lowercase hex digits. */
static int row_mac(hmac *h, int64_t seq, int64_t ts, const char *kind, const char *action_id,
                   const char *data, const char *prev_mac, char out[VIGIL_AUDIT_MAC_HEX])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char mac[MAC_LEN];
    vigil__crypto_hmac_ctx *c = &h->ctx;

    if (vigil__crypto_hmac_reset(c) != 0 ||
        vigil__crypto_hmac_update(c, DOMAIN, sizeof(DOMAIN)) != 0 ||
        put_u64(c, (uint64_t)seq) != 0 || put_u64(c, (uint64_t)ts) != 0 ||
        put_field(c, kind) != 0 || put_u64(c, action_id ? 1 : 0) != 0 ||
        put_field(c, action_id ? action_id : "") != 0 || put_field(c, data) != 0 ||
        put_field(c, prev_mac) != 0 || vigil__crypto_hmac_finish(c, mac) != 0)
        return vigil__error_set(VIGIL_ERROR, "audit: HMAC-SHA256 failed");
    for (size_t i = 0; i < MAC_LEN; i++) {
        out[2 * i] = digits[mac[i] >> 4];
        out[2 * i + 1] = digits[mac[i] & 0xf];
    }
    out[HEX_LEN] = '\0';
    wipe(mac, sizeof(mac));
    return VIGIL_OK;
}

/* ---- options, open, free ----------------------------------------------------- */

int vigil_audit_options_init(vigil_audit_options *opts, unsigned int version)
{
    if (!opts)
        return vigil__error_set(VIGIL_EINVAL, "audit options: NULL");
    if (vigil__version_check("audit options", version, VIGIL_AUDIT_OPTIONS_VERSION))
        return VIGIL_EVERSION;
    vigil_audit_options d = VIGIL_AUDIT_OPTIONS_INIT;
    *opts = d;
    return VIGIL_OK;
}

typedef struct head_ctx {
    int64_t seq;
    char mac[VIGIL_AUDIT_MAC_HEX];
    int bad;
} head_ctx;

static int head_cb(const vigil_store_audit *row, void *payload)
{
    head_ctx *h = payload;
    h->seq = row->seq;
    if (!is_hex_mac(row->mac)) {
        h->bad = 1;
        return 0;
    }
    for (size_t i = 0; i <= HEX_LEN; i++) {
        char c = row->mac[i];
        h->mac[i] = (c >= 'A' && c <= 'F') ? (char)(c - 'A' + 'a') : c;
    }
    return 0;
}

/* Reads the newest row into the head. Caller holds the lock (or owns `a`). */
static int load_head(vigil_audit *a)
{
    head_ctx h = {0, "", 0};
    int rc = vigil_store_audit_last(a->store, head_cb, &h);
    if (rc == VIGIL_ENOTFOUND) {
        vigil_error_clear();
        a->head_seq = 0;
        a->head_mac[0] = '\0';
        a->head_stale = 0;
        return VIGIL_OK;
    }
    if (rc != VIGIL_OK) {
        vigil__error_prefix("audit: reading the head");
        return rc;
    }
    if (h.bad)
        return vigil__error_set(
            VIGIL_ECORRUPT, "audit: the newest row (seq %" PRId64 ") has a malformed mac", h.seq);
    if (h.seq < 1 || h.seq == INT64_MAX)
        return vigil__error_set(VIGIL_ECORRUPT, "audit: the newest row has seq %" PRId64, h.seq);
    a->head_seq = h.seq;
    memcpy(a->head_mac, h.mac, sizeof(a->head_mac));
    a->head_stale = 0;
    return VIGIL_OK;
}

int vigil_audit_open(vigil_audit **out, const vigil_audit_options *opts)
{
    if (!out)
        return vigil__error_set(VIGIL_EINVAL, "audit: NULL out");
    *out = NULL;
    if (!opts)
        return vigil__error_set(VIGIL_EINVAL, "audit: options are required (store and key)");
    if (vigil__version_check("audit options", opts->version, VIGIL_AUDIT_OPTIONS_VERSION))
        return VIGIL_EVERSION;
    if (!opts->store)
        return vigil__error_set(VIGIL_EINVAL, "audit: no store");
    if (!opts->key)
        return vigil__error_set(VIGIL_EINVAL, "audit: no key");
    if (opts->key_len < VIGIL_AUDIT_KEY_MIN || opts->key_len > VIGIL_AUDIT_KEY_MAX)
        return vigil__error_set(VIGIL_ELIMIT, "audit: key is %zu bytes, need %d to %d",
                                opts->key_len, VIGIL_AUDIT_KEY_MIN, VIGIL_AUDIT_KEY_MAX);

    vigil_audit *a = vigil__calloc(1, sizeof(*a));
    if (!a)
        return vigil__error_oom();
    a->key = vigil__malloc(opts->key_len);
    if (!a->key) {
        vigil__free(a);
        return vigil__error_oom();
    }
    memcpy(a->key, opts->key, opts->key_len);
    a->key_len = opts->key_len;
    a->store = opts->store;
    a->clock = opts->clock;
    a->clock_payload = opts->clock_payload;
    a->logger = opts->logger;
    if (pthread_mutex_init(&a->lock, NULL) != 0) {
        wipe(a->key, a->key_len);
        vigil__free(a->key);
        vigil__free(a);
        return vigil__error_set(VIGIL_ERROR, "audit: cannot create a mutex");
    }
    int rc = load_head(a);
    if (rc != VIGIL_OK) {
        vigil_audit_free(a);
        return rc;
    }
    vigil__log(&a->logger, VIGIL_LOG_DEBUG, "audit", "opened", "head_seq=%" PRId64, a->head_seq);
    *out = a;
    return VIGIL_OK;
}

void vigil_audit_free(vigil_audit *audit)
{
    if (!audit)
        return;
    pthread_mutex_destroy(&audit->lock);
    wipe(audit->key, audit->key_len);
    vigil__free(audit->key);
    wipe(audit->head_mac, sizeof(audit->head_mac));
    vigil__free(audit);
}

/* ---- append ------------------------------------------------------------------ */

static int check_kind(const char *kind)
{
    size_t n = strlen(kind);
    if (n == 0)
        return vigil__error_set(VIGIL_EVALUE, "audit: kind is empty");
    if (n > VIGIL_AUDIT_KIND_MAX)
        return vigil__error_set(VIGIL_ELIMIT, "audit: kind is %zu bytes, at most %d", n,
                                VIGIL_AUDIT_KIND_MAX);
    if (!(kind[0] >= 'a' && kind[0] <= 'z'))
        return vigil__error_set(VIGIL_EVALUE, "audit: kind must start with a letter a-z");
    for (size_t i = 0; i < n; i++) {
        char c = kind[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
            return vigil__error_set(
                VIGIL_EVALUE, "audit: kind has a character outside [a-z0-9_.-] at byte %zu", i);
    }
    return VIGIL_OK;
}

static int check_action_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0)
        return vigil__error_set(VIGIL_EVALUE, "audit: action_id is empty (use NULL for none)");
    if (n > VIGIL_AUDIT_ACTION_ID_MAX)
        return vigil__error_set(VIGIL_ELIMIT, "audit: action_id is %zu bytes, at most %d", n,
                                VIGIL_AUDIT_ACTION_ID_MAX);
    if (!vigil__utf8_valid(id, n))
        return vigil__error_set(VIGIL_EENCODING, "audit: action_id is not valid UTF-8");
    return VIGIL_OK;
}

/* Skips JSON whitespace. */
static size_t skip_ws(const char *s, size_t i, size_t n)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* True when text is strictly valid JSON whose top-level value is an object. */
static int is_json_object(const char *text, size_t n, vigil__json_problem *pb)
{
    if (vigil__json_check(text, n, DATA_DEPTH, pb) != VIGIL_OK)
        return 0;
    size_t i = skip_ws(text, 0, n);
    return i < n && text[i] == '{';
}

static int check_data(const char *data)
{
    size_t n = strlen(data);
    if (n > VIGIL_AUDIT_DATA_MAX)
        return vigil__error_set(VIGIL_ELIMIT, "audit: data_json is %zu bytes, at most %d", n,
                                VIGIL_AUDIT_DATA_MAX);
    vigil__json_problem pb;
    int rc = vigil__json_check(data, n, DATA_DEPTH, &pb);
    if (rc != VIGIL_OK) {
        vigil__json_path path;
        size_t off = pb.offset > n ? n : pb.offset;
        vigil__json_path_at(&path, data, n, off);
        return vigil__error_set(rc, "audit: data_json: %s: %s (byte %zu)",
                                vigil__json_path_str(&path), pb.reason, off);
    }
    size_t i = skip_ws(data, 0, n);
    if (data[i] != '{')
        return vigil__error_set(VIGIL_ETYPE, "audit: data_json must be a JSON object");
    return VIGIL_OK;
}

int vigil_audit_append(vigil_audit *audit, const char *kind, const char *action_id,
                       const char *data_json, int64_t *seq_out, char mac_out[VIGIL_AUDIT_MAC_HEX])
{
    int rc;
    if (!audit || !kind)
        return vigil__error_set(VIGIL_EINVAL, "audit: NULL audit or kind");
    if (!data_json)
        data_json = "{}";
    if ((rc = check_kind(kind)) != 0 || (action_id && (rc = check_action_id(action_id)) != 0) ||
        (rc = check_data(data_json)) != 0)
        return rc;

    hmac h;
    if ((rc = hmac_init(&h, audit->key, audit->key_len)) != 0)
        return rc;
    pthread_mutex_lock(&audit->lock);
    if (audit->head_stale)
        rc = load_head(audit);
    char mac[VIGIL_AUDIT_MAC_HEX];
    int64_t seq = 0;
    for (int attempt = 0; rc == VIGIL_OK; attempt++) {
        seq = audit->head_seq + 1;
        int64_t ts = now_ms(audit);
        if ((rc = row_mac(&h, seq, ts, kind, action_id, data_json, audit->head_mac, mac)) != 0)
            break;
        vigil_store_audit row = {seq, ts, kind, action_id, data_json, audit->head_mac, mac};
        rc = vigil_store_audit_append(audit->store, &row);
        if (rc != VIGIL_EEXISTS || attempt + 1 == APPEND_TRIES)
            break;
        /* Another writer took this seq: continue after its rows. */
        vigil__log(&audit->logger, VIGIL_LOG_WARN, "audit", "seq taken by another writer",
                   "seq=%" PRId64, seq);
        rc = load_head(audit);
    }
    if (rc == VIGIL_OK) {
        audit->head_seq = seq;
        memcpy(audit->head_mac, mac, sizeof(mac));
    } else if (rc != VIGIL_EEXISTS) {
        /* The store may or may not hold the row (e.g. an I/O error after the
         * commit): learn the head again before the next append. */
        audit->head_stale = 1;
    }
    pthread_mutex_unlock(&audit->lock);
    hmac_free(&h);
    if (rc != VIGIL_OK) {
        vigil__log(&audit->logger, VIGIL_LOG_ERROR, "audit", "append failed", "code=%d kind=%s", rc,
                   kind);
        return rc;
    }
    if (seq_out)
        *seq_out = seq;
    if (mac_out)
        memcpy(mac_out, mac, VIGIL_AUDIT_MAC_HEX);
    return VIGIL_OK;
}

int vigil_audit_head(vigil_audit *audit, int64_t *seq, char mac[VIGIL_AUDIT_MAC_HEX])
{
    if (!audit)
        return vigil__error_set(VIGIL_EINVAL, "audit: NULL audit");
    pthread_mutex_lock(&audit->lock);
    if (seq)
        *seq = audit->head_seq;
    if (mac)
        memcpy(mac, audit->head_mac, VIGIL_AUDIT_MAC_HEX);
    pthread_mutex_unlock(&audit->lock);
    return VIGIL_OK;
}

/* ---- verify ------------------------------------------------------------------ */

typedef struct walk {
    hmac h;
    vigil_audit_report *r;
    int64_t expect; /* next seq expected */
    char prev[VIGIL_AUDIT_MAC_HEX];
    size_t page_rows;
    /* checkpoints: the caller's and this chain's own head (seq 0: none) */
    int64_t cp_seq[2];
    char cp_mac[2][VIGIL_AUDIT_MAC_HEX];
    int cp_seen[2];
    int err; /* a library error while walking */
} walk;

#define WALK_STOP 1

static int broken(walk *w, int64_t seq, const char *reason)
{
    w->r->ok = 0;
    w->r->broken_at = seq;
    snprintf(w->r->reason, sizeof(w->r->reason), "%s", reason);
    return WALK_STOP;
}

static int walk_cb(const vigil_store_audit *row, void *payload)
{
    walk *w = payload;
    char mac[VIGIL_AUDIT_MAC_HEX], why[96];

    w->page_rows++;
    if (row->seq != w->expect) {
        snprintf(why, sizeof(why), "sequence gap: expected %" PRId64 ", found %" PRId64, w->expect,
                 row->seq);
        return broken(w, w->expect, why);
    }
    if (!row->kind || !row->data_json || !row->prev_mac || !row->mac)
        return broken(w, row->seq, "malformed row");
    if (!mac_equal(row->prev_mac, w->prev)) {
        snprintf(why, sizeof(why), "prev_mac does not match row %" PRId64, row->seq - 1);
        return broken(w, row->seq, why);
    }
    int rc = row_mac(&w->h, row->seq, row->ts_ms, row->kind, row->action_id, row->data_json,
                     w->prev, mac);
    if (rc != VIGIL_OK) {
        w->err = rc;
        return WALK_STOP;
    }
    if (!mac_equal(row->mac, mac))
        return broken(w, row->seq, "mac mismatch");
    for (int i = 0; i < 2; i++) {
        if (row->seq != w->cp_seq[i])
            continue;
        w->cp_seen[i] = 1;
        if (!mac_equal(row->mac, w->cp_mac[i])) {
            snprintf(why, sizeof(why), "checkpoint mac differs at row %" PRId64, row->seq);
            return broken(w, row->seq, why);
        }
    }
    memcpy(w->prev, mac, sizeof(mac));
    w->r->entries++;
    w->expect++;
    return 0;
}

static int do_verify(vigil_audit *audit, int64_t cp_seq, const char *cp_mac,
                     vigil_audit_report *out)
{
    walk w;
    int rc;

    if (vigil__version_check("audit report", out->version, VIGIL_AUDIT_REPORT_VERSION))
        return VIGIL_EVERSION;
    unsigned int version = out->version;
    memset(out, 0, sizeof(*out));
    out->version = version;
    out->ok = 1;
    memset(&w, 0, sizeof(w));
    w.r = out;
    w.expect = 1;
    if (cp_seq > 0) {
        w.cp_seq[0] = cp_seq;
        memcpy(w.cp_mac[0], cp_mac, VIGIL_AUDIT_MAC_HEX);
    }
    /* The head this chain appended or read is a checkpoint too: it reveals
     * a tail deleted while the process runs. */
    pthread_mutex_lock(&audit->lock);
    if (!audit->head_stale && audit->head_seq > 0) {
        w.cp_seq[1] = audit->head_seq;
        memcpy(w.cp_mac[1], audit->head_mac, VIGIL_AUDIT_MAC_HEX);
    }
    pthread_mutex_unlock(&audit->lock);
    if ((rc = hmac_init(&w.h, audit->key, audit->key_len)) != 0)
        return rc;
    for (;;) {
        vigil_store_filter f = VIGIL_STORE_FILTER_INIT;
        /* The first page also shows rows an attacker put below seq 1. */
        f.after_id = w.expect == 1 ? INT64_MIN : w.expect - 1;
        f.limit = PAGE_ROWS;
        w.page_rows = 0;
        rc = vigil_store_audit_list(audit->store, &f, walk_cb, &w);
        if (rc == WALK_STOP)
            rc = w.err;
        if (rc != VIGIL_OK || !out->ok || w.page_rows < PAGE_ROWS)
            break;
    }
    hmac_free(&w.h);
    if (rc != VIGIL_OK) {
        memset(out, 0, sizeof(*out));
        out->version = version;
        return rc;
    }
    for (int i = 0; i < 2 && out->ok; i++) {
        /* the walk stopped before a checkpoint: the tail is gone */
        int64_t missing = w.cp_seq[i] > 0 && !w.cp_seen[i] ? w.cp_seq[i] : 0;
        if (!missing)
            continue;
        if (i == 0 && w.cp_seq[1] > 0 && !w.cp_seen[1] && w.cp_seq[1] < missing)
            missing = w.cp_seq[1];
        out->ok = 0;
        out->broken_at = w.expect;
        snprintf(out->reason, sizeof(out->reason),
                 "chain ends at %" PRId64 " before checkpoint %" PRId64, w.expect - 1, missing);
    }
    wipe(w.prev, sizeof(w.prev));
    if (!out->ok)
        vigil__log(&audit->logger, VIGIL_LOG_WARN, "audit", "chain broken",
                   "broken_at=%" PRId64 " entries=%" PRId64, out->broken_at, out->entries);
    return VIGIL_OK;
}

int vigil_audit_verify(vigil_audit *audit, vigil_audit_report *out)
{
    if (!audit || !out)
        return vigil__error_set(VIGIL_EINVAL, "audit: NULL argument");
    return do_verify(audit, 0, NULL, out);
}

int vigil_audit_verify_checkpoint(vigil_audit *audit, int64_t seq, const char *mac,
                                  vigil_audit_report *out)
{
    if (!audit || !out || !mac)
        return vigil__error_set(VIGIL_EINVAL, "audit: NULL argument");
    if (seq < 1)
        return vigil__error_set(VIGIL_EINVAL,
                                "audit: checkpoint seq must be at least 1, got %" PRId64, seq);
    if (!is_hex_mac(mac))
        return vigil__error_set(VIGIL_EINVAL, "audit: checkpoint mac must be 64 hex digits");
    return do_verify(audit, seq, mac, out);
}

/* ---- JSON -------------------------------------------------------------------- */

int vigil_audit_report_json(const vigil_audit_report *r, vigil_buf *out)
{
    if (!r || !out)
        return vigil__error_set(VIGIL_EINVAL, "audit: NULL argument");
    vigil__buf_clear(out);
    int rc =
        vigil__buf_puts(out, r->ok ? "{\"ok\":true,\"entries\":" : "{\"ok\":false,\"entries\":");
    if (!rc)
        rc = vigil__json_put_int64(out, r->entries);
    if (!rc && !r->ok) {
        rc = vigil__buf_puts(out, ",\"broken_at\":");
        if (!rc)
            rc = vigil__json_put_int64(out, r->broken_at);
        if (!rc)
            rc = vigil__buf_puts(out, ",\"reason\":");
        if (!rc)
            rc = vigil__json_put_string(out, r->reason, strnlen(r->reason, sizeof(r->reason)));
    }
    if (!rc)
        rc = vigil__buf_putc(out, '}');
    if (rc)
        vigil__buf_clear(out);
    return rc;
}

typedef struct list_ctx {
    vigil_buf *out;
    size_t rows;
    int err;
} list_ctx;

static int put_nullable(vigil_buf *b, const char *s)
{
    return s ? vigil__json_put_string(b, s, strlen(s)) : vigil__buf_puts(b, "null");
}

static int list_cb(const vigil_store_audit *row, void *payload)
{
    list_ctx *c = payload;
    vigil_buf *b = c->out;
    vigil__json_problem pb;
    int rc = vigil__buf_puts(b, c->rows ? ",{\"seq\":" : "{\"seq\":");
    if (!rc)
        rc = vigil__json_put_int64(b, row->seq);
    if (!rc)
        rc = vigil__buf_puts(b, ",\"ts\":");
    if (!rc)
        rc = vigil__json_put_int64(b, row->ts_ms);
    if (!rc)
        rc = vigil__buf_puts(b, ",\"kind\":");
    if (!rc)
        rc = put_nullable(b, row->kind);
    if (!rc)
        rc = vigil__buf_puts(b, ",\"action_id\":");
    if (!rc)
        rc = put_nullable(b, row->action_id);
    if (!rc)
        rc = vigil__buf_puts(b, ",\"data\":");
    if (!rc) {
        size_t n = row->data_json ? strlen(row->data_json) : 0;
        if (row->data_json && is_json_object(row->data_json, n, &pb))
            rc = vigil__buf_put(b, row->data_json, n);
        else
            rc = put_nullable(b, row->data_json);
    }
    if (!rc)
        rc = vigil__buf_puts(b, ",\"mac\":");
    if (!rc)
        rc = put_nullable(b, row->mac);
    if (!rc)
        rc = vigil__buf_putc(b, '}');
    if (rc) {
        c->err = rc;
        return WALK_STOP;
    }
    c->rows++;
    return b->size > VIGIL_AUDIT_LIST_BYTES ? WALK_STOP : 0;
}

int vigil_audit_list_json(vigil_audit *audit, int64_t since_ms, size_t limit, vigil_buf *out)
{
    if (!audit || !out)
        return vigil__error_set(VIGIL_EINVAL, "audit: NULL argument");
    if (limit == 0)
        limit = VIGIL_AUDIT_LIST_DEFAULT;
    if (limit > VIGIL_AUDIT_LIST_MAX)
        limit = VIGIL_AUDIT_LIST_MAX;
    vigil__buf_clear(out);
    list_ctx c = {out, 0, 0};
    int rc = vigil__buf_puts(out, "{\"entries\":[");
    if (!rc) {
        vigil_store_filter f = VIGIL_STORE_FILTER_INIT;
        f.since_ms = since_ms;
        f.limit = limit;
        rc = vigil_store_audit_list(audit->store, &f, list_cb, &c);
        if (rc == WALK_STOP)
            rc = c.err;
    }
    if (!rc)
        rc = vigil__buf_puts(out, "]}");
    if (rc)
        vigil__buf_clear(out);
    return rc;
}
