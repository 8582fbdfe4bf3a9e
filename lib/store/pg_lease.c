/*
 * PostgreSQL backend: leases (one row per lease, taken under a row lock on
 * the server's clock) and the tail (the samples as transactions committed
 * them, in transaction id order, read only below the oldest transaction
 * still running: nothing that commits later can sort before what was read).
 */
#include "store/pg_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- leases ---------------------------------------------------------------------- */

static void fill(vigil_store_lease *out, const char *holder, int64_t epoch, int64_t expires,
                 int64_t now, int held)
{
    snprintf(out->holder, sizeof(out->holder), "%s", holder);
    out->epoch = (uint64_t)epoch;
    out->expires_ms = expires;
    out->now_ms = now;
    out->held = held;
}

int vigil__pg_lease_acquire(void *h, const char *name, const char *holder, int64_t ttl_ms,
                            vigil_store_lease *out)
{
    static const char op[] = "lease acquire";
    vigil__pg *s = h;
    int rc = vigil__pg_check_writable(s, op);
    if (rc || (rc = vigil__pg_enter(s)) != 0)
        return rc;
    if ((rc = vigil__pg_begin(s, op)) != 0)
        return rc;
    /* a placeholder row (epoch 0, expired) so that the row lock below
     * serialises the first holders too */
    const char *p[4] = {name, holder, NULL, NULL};
    PGresult *r = NULL;
    rc = vigil__pg_exec(s, PG_LEASE_SEED, 1, p, NULL, NULL, 0, PG_NO_RETRY, &r, op);
    PQclear(r);
    r = NULL;
    if (rc == VIGIL_OK)
        rc = vigil__pg_exec(s, PG_LEASE_LOCK, 1, p, NULL, NULL, 0, PG_NO_RETRY, &r, op);
    if (rc == VIGIL_OK && PQntuples(r) != 1)
        rc = vigil__error_set(VIGIL_ERROR, "postgresql: %s: lease \"%.128s\" vanished (%s)", op,
                              name, s->display);
    if (rc) {
        PQclear(r);
        vigil__pg_rollback(s);
        return rc;
    }
    char cur[VIGIL_STORE_LEASE_HOLDER_MAX + 1];
    snprintf(cur, sizeof(cur), "%s", PQgetvalue(r, 0, 0));
    int64_t epoch = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    int64_t expires = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    int64_t now = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
    PQclear(r);
    r = NULL;
    if (strcmp(cur, holder) != 0 && expires > now && epoch > 0) {
        vigil__pg_rollback(s); /* held by another: nothing changes */
        fill(out, cur, epoch, expires, now, 0);
        return VIGIL_OK;
    }
    /* a new holder, or the same after it gave the lease up (expires_ms 0):
     * a new term */
    if (strcmp(cur, holder) != 0 || expires == 0)
        epoch++;
    int64_t until = ttl_ms > INT64_MAX - now ? INT64_MAX : now + ttl_ms;
    char e[24], u[24];
    p[2] = vigil__pg_i64(e, epoch);
    p[3] = vigil__pg_i64(u, until);
    rc = vigil__pg_exec(s, PG_LEASE_SET, 4, p, NULL, NULL, 0, PG_NO_RETRY, &r, op);
    PQclear(r);
    if (rc == VIGIL_OK)
        rc = vigil__pg_commit(s, op);
    if (rc) {
        vigil__pg_rollback(s);
        return rc;
    }
    fill(out, holder, epoch, until, now, 1);
    return VIGIL_OK;
}

int vigil__pg_lease_release(void *h, const char *name, const char *holder)
{
    static const char op[] = "lease release";
    vigil__pg *s = h;
    int rc = vigil__pg_check_writable(s, op);
    if (rc || (rc = vigil__pg_enter(s)) != 0)
        return rc;
    const char *p[2] = {name, holder};
    PGresult *r = NULL;
    /* safe to repeat: a second run finds it expired and changes nothing */
    rc = vigil__pg_exec(s, PG_LEASE_RELEASE, 2, p, NULL, NULL, 0, PG_RETRY, &r, op);
    PQclear(r);
    return rc;
}

int vigil__pg_lease_get(void *h, const char *name, vigil_store_lease *out)
{
    static const char op[] = "lease get";
    vigil__pg *s = h;
    int rc = vigil__pg_enter(s);
    if (rc)
        return rc;
    const char *p[1] = {name};
    PGresult *r = NULL;
    rc = vigil__pg_exec(s, PG_LEASE_GET, 1, p, NULL, NULL, 0, PG_RETRY, &r, op);
    if (rc == VIGIL_OK && PQntuples(r) == 0)
        rc = vigil__error_set(VIGIL_ENOTFOUND, "store: no lease \"%.128s\" was ever taken", name);
    if (rc == VIGIL_OK) {
        int64_t expires = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
        int64_t now = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
        fill(out, PQgetvalue(r, 0, 0), strtoll(PQgetvalue(r, 0, 1), NULL, 10), expires, now,
             expires > now);
    }
    PQclear(r);
    return rc;
}

/* ---- tail ------------------------------------------------------------------------ */

#define CURSOR_PREFIX "t1:"
/* Rows read per statement of one tail call. */
#define TAIL_BATCH 4096

/* "t1:XID:ID:K": the K first samples of tail row (XID, ID) and every row
 * before it were returned. */
static int parse_cursor(vigil__pg *s, const char *cursor, uint64_t *xid, int64_t *id, int64_t *k)
{
    const char *p = cursor + strlen(CURSOR_PREFIX);
    char *end = NULL;
    if (strncmp(cursor, CURSOR_PREFIX, strlen(CURSOR_PREFIX)) != 0 || *p < '0' || *p > '9')
        goto bad;
    errno = 0;
    *xid = strtoull(p, &end, 10);
    if (errno || *end != ':' || end[1] < '0' || end[1] > '9')
        goto bad;
    *id = strtoll(end + 1, &end, 10);
    if (errno || *end != ':' || end[1] < '0' || end[1] > '9' || *id < 0)
        goto bad;
    *k = strtoll(end + 1, &end, 10);
    if (errno || *end || *k < 0)
        goto bad;
    return VIGIL_OK;
bad:
    return vigil__error_set(VIGIL_EINVAL,
                            "postgresql: the tail cursor \"%.64s\" is not one this backend made "
                            "(%s)",
                            cursor, s->display);
}

int vigil__pg_tail(void *h, const char *cursor, size_t max_samples, vigil_store_point_cb cb,
                   void *payload, char *next_cursor, size_t next_cursor_len)
{
    static const char op[] = "tail";
    vigil__pg *s = h;
    if (s->no_tail)
        return vigil__error_set(VIGIL_EUNSUPPORTED,
                                "postgresql: tail: the store was opened with tail=off (%s)",
                                s->display);
    int rc = vigil__pg_enter(s);
    if (rc)
        return rc;
    uint64_t xid = 0;
    int64_t id = 0, k = 0;
    PGresult *r = NULL;
    if (!*cursor) {
        /* from now on: every row of a transaction not ended yet */
        rc = vigil__pg_exec(s, PG_TAIL_NOW, 0, NULL, NULL, NULL, 0, PG_RETRY, &r, op);
        if (rc == VIGIL_OK)
            xid = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        if (rc == VIGIL_OK)
            snprintf(next_cursor, next_cursor_len, CURSOR_PREFIX "%llu:0:0",
                     (unsigned long long)xid);
        return rc;
    }
    if ((rc = parse_cursor(s, cursor, &xid, &id, &k)) != 0)
        return rc;
    size_t left = max_samples;
    while (left > 0) {
        char xs[24], is[24], ks[24], ls[24];
        snprintf(xs, sizeof(xs), "%llu", (unsigned long long)xid);
        const char *p[4] = {xs, vigil__pg_i64(is, id), vigil__pg_i64(ks, k),
                            vigil__pg_i64(ls, (int64_t)(left < TAIL_BATCH ? left : TAIL_BATCH))};
        rc = vigil__pg_exec(s, PG_TAIL_READ, 4, p, NULL, NULL, 0, PG_RETRY, &r, op);
        if (rc)
            return rc;
        int n = PQntuples(r);
        for (int i = 0; i < n && rc == VIGIL_OK; i++) {
            vigil_store_series ser;
            ser.id = 0;
            ser.name = PQgetvalue(r, i, 3);
            const char *tags = PQgetvalue(r, i, 4);
            if ((rc = vigil__pg_parse_tags(s, tags, &ser.ntags)) != 0)
                break;
            ser.tags = s->tags;
            vigil__buf_clear(&s->qkey);
            if (vigil__buf_puts(&s->qkey, ser.name) || vigil__buf_puts(&s->qkey, tags)) {
                rc = vigil__error_oom();
                break;
            }
            ser.key = s->qkey.ptr;
            vigil_store_point pt;
            pt.ts_ms = strtoll(PQgetvalue(r, i, 5), NULL, 10);
            pt.error = PQgetisnull(r, i, 7) ? NULL : PQgetvalue(r, i, 7);
            pt.value = pt.error || PQgetisnull(r, i, 6) ? NAN : strtod(PQgetvalue(r, i, 6), NULL);
            s->delivered = 1;
            if ((rc = cb(&ser, &pt, payload)) != 0)
                break;
            xid = strtoull(PQgetvalue(r, i, 0), NULL, 10);
            id = strtoll(PQgetvalue(r, i, 1), NULL, 10);
            k = strtoll(PQgetvalue(r, i, 2), NULL, 10);
            left--;
        }
        PQclear(r);
        if (rc)
            return rc;
        if (n < TAIL_BATCH)
            break; /* nothing more readable yet */
    }
    snprintf(next_cursor, next_cursor_len, CURSOR_PREFIX "%llu:%lld:%lld", (unsigned long long)xid,
             (long long)id, (long long)k);
    return VIGIL_OK;
}
