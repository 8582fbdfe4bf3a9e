/*
 * SQLite backend: leases (vigil_store_lease_*). One row per lease in a table
 * created by the first vigil_store_lease_acquire() of a database (a store
 * that never takes a lease has none; older schemas need no migration). The
 * clock is this process's wall clock: the hubs sharing a SQLite file share
 * a host. Leases are taken rarely (a few times a second at most), so their
 * statements are prepared per call rather than cached.
 */
#include "store/sqlite_int.h"

#include <string.h>

static const char k_create[] = "CREATE TABLE IF NOT EXISTS leases(name TEXT PRIMARY KEY,"
                               " holder TEXT NOT NULL, epoch INTEGER NOT NULL,"
                               " expires_ms INTEGER NOT NULL) WITHOUT ROWID";

/* Prepares `sql` or records why not. */
static sqlite3_stmt *prepare(vigil__sq *s, const char *sql, const char *op, int *rc)
{
    sqlite3_stmt *st = NULL;
    int r = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (r != SQLITE_OK) {
        *rc = vigil__sq_error(s, r, op);
        sqlite3_finalize(st);
        return NULL;
    }
    *rc = VIGIL_OK;
    return st;
}

/* Whether the leases table exists (*exists 0 or 1). */
static int table_exists(vigil__sq *s, const char *op, int *exists)
{
    int rc;
    sqlite3_stmt *st = prepare(
        s, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'leases'", op, &rc);
    if (!st)
        return rc;
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        *exists = sqlite3_column_int(st, 0) > 0;
    else
        rc = vigil__sq_error(s, r, op);
    sqlite3_finalize(st);
    return rc;
}

/* Reads lease `name` into *out (held left to the caller); *found 0 when
 * there is no row. */
static int lease_read(vigil__sq *s, const char *name, vigil_store_lease *out, int *found,
                      const char *op)
{
    int rc;
    *found = 0;
    sqlite3_stmt *st =
        prepare(s, "SELECT holder, epoch, expires_ms FROM leases WHERE name = ?1", op, &rc);
    if (!st)
        return rc;
    vigil__sq_bind_text(st, 1, name);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        const char *h = (const char *)sqlite3_column_text(st, 0);
        size_t len = h ? strlen(h) : 0;
        if (len > VIGIL_STORE_LEASE_HOLDER_MAX)
            len = VIGIL_STORE_LEASE_HOLDER_MAX;
        if (len)
            memcpy(out->holder, h, len);
        out->holder[len] = '\0';
        out->epoch = (uint64_t)sqlite3_column_int64(st, 1);
        out->expires_ms = sqlite3_column_int64(st, 2);
        *found = 1;
    } else if (r != SQLITE_DONE) {
        rc = vigil__sq_error(s, r, op);
    }
    sqlite3_finalize(st);
    return rc;
}

/* Runs a write statement with (name, holder, epoch, expires) bound. */
static int lease_write(vigil__sq *s, const char *sql, const char *name, const char *holder,
                       int64_t epoch, int64_t expires, const char *op)
{
    int rc;
    sqlite3_stmt *st = prepare(s, sql, op, &rc);
    if (!st)
        return rc;
    vigil__sq_bind_text(st, 1, name);
    vigil__sq_bind_text(st, 2, holder);
    sqlite3_bind_int64(st, 3, epoch);
    sqlite3_bind_int64(st, 4, expires);
    int r = sqlite3_step(st);
    if (r != SQLITE_DONE)
        rc = vigil__sq_error(s, r, op);
    sqlite3_finalize(st);
    return rc;
}

int vigil__sq_lease_acquire(void *h, const char *name, const char *holder, int64_t ttl_ms,
                            vigil_store_lease *out)
{
    static const char op[] = "lease acquire";
    vigil__sq *s = h;
    int rc = vigil__sq_check_writable(s, op);
    if (rc)
        return rc;
    /* BEGIN IMMEDIATE: the read and the write below are one step for every
     * other connection to the file */
    if ((rc = vigil__sq_begin(s, op)))
        return rc;
    char *err = NULL;
    int r = sqlite3_exec(s->db, k_create, NULL, NULL, &err);
    sqlite3_free(err);
    if (r != SQLITE_OK)
        rc = vigil__sq_error(s, r, op);
    int found = 0;
    vigil_store_lease cur = VIGIL_STORE_LEASE_INIT;
    if (rc == VIGIL_OK)
        rc = lease_read(s, name, &cur, &found, op);
    int64_t now = vigil__now_ms();
    int64_t until = now + ttl_ms;
    if (rc == VIGIL_OK) {
        if (!found) {
            rc = lease_write(s,
                             "INSERT INTO leases(name, holder, epoch, expires_ms)"
                             " VALUES(?1, ?2, ?3, ?4)",
                             name, holder, 1, until, op);
            cur.epoch = 1;
        } else if (strcmp(cur.holder, holder) == 0 && cur.expires_ms != 0) {
            rc = lease_write(s,
                             "UPDATE leases SET holder = ?2, epoch = ?3, expires_ms = ?4"
                             " WHERE name = ?1",
                             name, holder, (int64_t)cur.epoch, until, op);
        } else if (cur.expires_ms <= now) {
            cur.epoch++;
            rc = lease_write(s,
                             "UPDATE leases SET holder = ?2, epoch = ?3, expires_ms = ?4"
                             " WHERE name = ?1",
                             name, holder, (int64_t)cur.epoch, until, op);
        } else {
            /* held by another: nothing changes */
            out->epoch = cur.epoch;
            out->expires_ms = cur.expires_ms;
            memcpy(out->holder, cur.holder, sizeof(out->holder));
            out->now_ms = now;
            out->held = 0;
            vigil__sq_rollback(s);
            return VIGIL_OK;
        }
    }
    if (rc == VIGIL_OK)
        rc = vigil__sq_commit(s, op);
    if (rc) {
        vigil__sq_rollback(s);
        return rc;
    }
    size_t len = strlen(holder);
    memcpy(out->holder, holder, len + 1);
    out->epoch = cur.epoch;
    out->expires_ms = until;
    out->now_ms = now;
    out->held = 1;
    return VIGIL_OK;
}

int vigil__sq_lease_release(void *h, const char *name, const char *holder)
{
    static const char op[] = "lease release";
    vigil__sq *s = h;
    int rc = vigil__sq_check_writable(s, op);
    int exists = 0;
    if (rc == VIGIL_OK)
        rc = table_exists(s, op, &exists);
    if (rc || !exists)
        return rc;
    /* epoch kept; expires_ms 0 marks it given up: the next holder's epoch,
     * this holder's included, is one more */
    return lease_write(s,
                       "UPDATE leases SET expires_ms = 0 WHERE name = ?1 AND holder = ?2"
                       " AND expires_ms > ?4",
                       name, holder, 0, vigil__now_ms(), op);
}

int vigil__sq_lease_get(void *h, const char *name, vigil_store_lease *out)
{
    static const char op[] = "lease get";
    vigil__sq *s = h;
    int exists = 0, found = 0;
    int rc = table_exists(s, op, &exists);
    if (rc == VIGIL_OK && exists)
        rc = lease_read(s, name, out, &found, op);
    if (rc)
        return rc;
    if (!found)
        return vigil__error_set(VIGIL_ENOTFOUND, "store: no lease \"%.128s\" was ever taken", name);
    out->now_ms = vigil__now_ms();
    out->held = out->expires_ms > out->now_ms;
    return VIGIL_OK;
}
