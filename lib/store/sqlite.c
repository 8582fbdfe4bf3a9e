/*
 * The built-in SQLite store backend: URL parsing, opening, the schema and its
 * forward migrations, the statement cache and error mapping.
 */
#include "core/cond.h"
#include "store/sqlite_int.h"
#include "store/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- schema ------------------------------------------------------------------ */

/* migrations[v] upgrades a database from schema v to v + 1. Never edit one
 * that has shipped: add a new one and bump VIGIL__SQ_SCHEMA_VERSION.
 * chunks.series_id has no REFERENCES clause on purpose: the foreign-key
 * check costs insert rate, and the ids only ever come from the series table
 * in the same transaction (series are never deleted). Tags
 * live in the series row as canonical text, not in a table of their own: a
 * new series costs one insert and one index entry. */
static const char *const migrations[VIGIL__SQ_SCHEMA_VERSION] = {
    /* 0 -> 1: series, samples and ingest batch ids. A series is its name and
     * its canonical tags text ({k="v",...} as in the series key, "" for none). */
    "PRAGMA application_id = 1449748332;"
    "CREATE TABLE series(id INTEGER PRIMARY KEY, name TEXT NOT NULL, tags TEXT NOT NULL,"
    " UNIQUE(name, tags));"
    "CREATE TABLE samples(series_id INTEGER NOT NULL, ts INTEGER NOT NULL, value REAL,"
    " PRIMARY KEY(series_id, ts)) WITHOUT ROWID;"
    "CREATE TABLE ingest_batches(id INTEGER PRIMARY KEY, agent TEXT NOT NULL,"
    " batch_id TEXT NOT NULL, received_ms INTEGER NOT NULL, UNIQUE(agent, batch_id));",

    /* 1 -> 2: error text of failed collections, the action ledger, decisions,
     * audit rows, silences, policy state, desired state and drift */
    "ALTER TABLE samples ADD COLUMN error TEXT;"
    "CREATE INDEX ingest_batches_received ON ingest_batches(received_ms);"
    "CREATE TABLE actions(id TEXT PRIMARY KEY, requested_ms INTEGER NOT NULL,"
    " action TEXT NOT NULL, target TEXT NOT NULL, params TEXT NOT NULL,"
    " reason TEXT NOT NULL, policy TEXT, series TEXT, dry_run INTEGER NOT NULL,"
    " status TEXT NOT NULL, result_reason TEXT, output TEXT,"
    " duration_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
    " audit_seq INTEGER NOT NULL, audit_hash TEXT) WITHOUT ROWID;"
    "CREATE INDEX actions_time ON actions(requested_ms, id);"
    "CREATE TABLE decisions(id INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL,"
    " policy TEXT NOT NULL, series TEXT, target TEXT, action TEXT, action_id TEXT,"
    " decision TEXT NOT NULL, reason TEXT NOT NULL);"
    "CREATE INDEX decisions_ts ON decisions(ts);"
    "CREATE TRIGGER decisions_no_update BEFORE UPDATE ON decisions"
    " BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;"
    "CREATE TRIGGER decisions_no_delete BEFORE DELETE ON decisions"
    " BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;"
    "CREATE TABLE audit(seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, kind TEXT NOT NULL,"
    " action_id TEXT, data TEXT NOT NULL, prev_mac TEXT NOT NULL, mac TEXT NOT NULL);"
    "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
    " BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END;"
    "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
    " BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END;"
    "CREATE TABLE silences(id TEXT PRIMARY KEY, matchers TEXT NOT NULL,"
    " starts_ms INTEGER NOT NULL, ends_ms INTEGER NOT NULL, created_by TEXT NOT NULL,"
    " comment TEXT NOT NULL, created_ms INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE policy_state(key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE resources(set_id INTEGER NOT NULL, key TEXT NOT NULL, kind TEXT NOT NULL,"
    " name TEXT NOT NULL, source TEXT NOT NULL, revision TEXT NOT NULL, status TEXT,"
    " body TEXT NOT NULL, updated_ms INTEGER NOT NULL,"
    " PRIMARY KEY(set_id, key)) WITHOUT ROWID;"
    "CREATE INDEX resources_source ON resources(set_id, source);",

    /* 2 -> 3: samples move into chunks, one row per series and span of time
     * (chunk.h): a series' last chunk, the one new samples are appended to,
     * in heads, the full ones before it in chunks (sqlite_chunks.c). Written
     * by vigil__sq_chunks_migrate() after this SQL; the samples table is
     * dropped then. */
    "CREATE TABLE chunks(series_id INTEGER NOT NULL, start_ts INTEGER NOT NULL,"
    " end_ts INTEGER NOT NULL, n INTEGER NOT NULL, data BLOB NOT NULL,"
    " PRIMARY KEY(series_id, start_ts)) WITHOUT ROWID;"
    "CREATE TABLE heads(series_id INTEGER PRIMARY KEY, start_ts INTEGER NOT NULL,"
    " end_ts INTEGER NOT NULL, n INTEGER NOT NULL, data BLOB NOT NULL);",

    /* 3 -> 4: the write log (sqlite_log.c): one row per write, deleted once
     * folded into the chunks; AUTOINCREMENT: a number is never used twice,
     * so a connection that read the rows up to n reads on from n */
    "CREATE TABLE wlog(seq INTEGER PRIMARY KEY AUTOINCREMENT, data BLOB NOT NULL);",
};

#define SQ_CHUNK_COLS "start_ts, end_ts, n, data"
#define SQ_ACTION_COLS                                                                    \
    "id, requested_ms, action, target, params, reason, policy, series, dry_run, status, " \
    "result_reason, output, duration_ms, updated_ms, audit_seq, audit_hash"
#define SQ_RES_COLS "key, kind, name, source, revision, status, body, updated_ms"

static const char *const stmt_sql[SQ_STMT_COUNT] = {
    [SQ_BEGIN] = "BEGIN IMMEDIATE",
    [SQ_COMMIT] = "COMMIT",
    [SQ_ROLLBACK] = "ROLLBACK",
    [SQ_BATCH_INSERT] = "INSERT INTO ingest_batches(agent, batch_id, received_ms)"
                        " VALUES(?1, ?2, ?3) ON CONFLICT(agent, batch_id) DO NOTHING",
    [SQ_SERIES_FIND] = "SELECT id FROM series WHERE name = ?1 AND tags = ?2",
    [SQ_SERIES_INSERT] = "INSERT INTO series(name, tags) VALUES(?1, ?2)",
    [SQ_DATA_VERSION] = "PRAGMA data_version",
    [SQ_HEAD_GET] = "SELECT " SQ_CHUNK_COLS " FROM heads WHERE series_id = ?1",
    [SQ_HEAD_PUT] = "INSERT OR REPLACE INTO heads(series_id, " SQ_CHUNK_COLS ")"
                    " VALUES(?1, ?2, ?3, ?4, ?5)",
    /* data || ?5 is text with data's bytes and then ?5's; CAST makes it a blob again */
    [SQ_HEAD_APPEND] = "UPDATE heads SET end_ts = ?3, n = n + ?4, data = CAST(data || ?5 AS BLOB)"
                       " WHERE series_id = ?1 AND start_ts = ?2",
    [SQ_HEAD_CLOSE] = "INSERT INTO chunks SELECT series_id, " SQ_CHUNK_COLS " FROM heads"
                      " WHERE series_id = ?1",
    [SQ_HEAD_DELETE] = "DELETE FROM heads WHERE series_id = ?1",
    [SQ_CHUNK_AT] = "SELECT " SQ_CHUNK_COLS " FROM chunks WHERE series_id = ?1"
                    " AND start_ts <= ?2 ORDER BY start_ts DESC LIMIT 1",
    [SQ_CHUNK_NEXT] = "SELECT start_ts FROM chunks WHERE series_id = ?1 AND start_ts > ?2"
                      " ORDER BY start_ts LIMIT 1",
    [SQ_CHUNK_FIRST] = "SELECT " SQ_CHUNK_COLS " FROM chunks WHERE series_id = ?1"
                       " AND start_ts < ?2 ORDER BY start_ts LIMIT 1",
    [SQ_CHUNK_INSERT] =
        "INSERT INTO chunks(series_id, " SQ_CHUNK_COLS ") VALUES(?1, ?2, ?3, ?4, ?5)",
    [SQ_CHUNK_REPLACE] = "UPDATE chunks SET end_ts = ?3, n = ?4, data = ?5"
                         " WHERE series_id = ?1 AND start_ts = ?2",
    [SQ_CHUNK_DELETE] = "DELETE FROM chunks WHERE series_id = ?1 AND start_ts = ?2",
    /* the chunk holding ?2 (the last one that starts at or before it), and on */
    [SQ_CHUNK_RANGE] = "SELECT " SQ_CHUNK_COLS " FROM chunks WHERE series_id = ?1 AND start_ts >="
                       " coalesce((SELECT start_ts FROM chunks WHERE series_id = ?1 AND"
                       " start_ts <= ?2 ORDER BY start_ts DESC LIMIT 1), ?2) AND start_ts < ?3"
                       " ORDER BY start_ts",
    [SQ_CHUNK_BACK] = "SELECT " SQ_CHUNK_COLS " FROM chunks WHERE series_id = ?1 AND start_ts < ?2"
                      " ORDER BY start_ts DESC",
    [SQ_SERIES_ALL] = "SELECT id, name, tags FROM series ORDER BY name, tags",
    [SQ_SERIES_BY_NAME] = "SELECT id, name, tags FROM series WHERE name = ?1 ORDER BY tags",
    [SQ_SERIES_BY_GLOB] = "SELECT id, name, tags FROM series WHERE name GLOB ?1"
                          " ORDER BY name, tags",
    [SQ_RET_NEXT_SERIES] = "SELECT min(id) FROM series WHERE id > ?1",
    [SQ_RET_DELETE_BATCHES] = "DELETE FROM ingest_batches WHERE id IN (SELECT id FROM"
                              " ingest_batches WHERE received_ms < ?1 ORDER BY id LIMIT ?2)",
    [SQ_ACTION_INSERT] = "INSERT INTO actions(" SQ_ACTION_COLS ") VALUES(?1, ?2, ?3, ?4, ?5,"
                         " ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
                         " ON CONFLICT(id) DO NOTHING",
    [SQ_ACTION_UPDATE] = "UPDATE actions SET status = ?2, result_reason = ?3, output = ?4,"
                         " duration_ms = ?5, updated_ms = ?6, audit_seq = ?7, audit_hash = ?8"
                         " WHERE id = ?1",
    [SQ_ACTION_GET] = "SELECT " SQ_ACTION_COLS " FROM actions WHERE id = ?1",
    [SQ_ACTION_LIST] = "SELECT " SQ_ACTION_COLS " FROM actions WHERE requested_ms >= ?1"
                       " AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR target = ?3)"
                       " AND (?4 IS NULL OR policy = ?4) ORDER BY requested_ms, id LIMIT ?5",
    [SQ_DECISION_INSERT] = "INSERT INTO decisions(ts, policy, series, target, action, action_id,"
                           " decision, reason) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [SQ_DECISION_LIST] = "SELECT id, ts, policy, series, target, action, action_id, decision,"
                         " reason FROM decisions WHERE id > ?1 AND ts >= ?2"
                         " AND (?3 IS NULL OR target = ?3) AND (?4 IS NULL OR policy = ?4)"
                         " ORDER BY id LIMIT ?5",
    [SQ_AUDIT_INSERT] = "INSERT INTO audit(seq, ts, kind, action_id, data, prev_mac, mac)"
                        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [SQ_AUDIT_LIST] = "SELECT seq, ts, kind, action_id, data, prev_mac, mac FROM audit"
                      " WHERE seq > ?1 AND ts >= ?2 ORDER BY seq LIMIT ?3",
    [SQ_AUDIT_LAST] = "SELECT seq, ts, kind, action_id, data, prev_mac, mac FROM audit"
                      " ORDER BY seq DESC LIMIT 1",
    [SQ_SILENCE_PUT] = "INSERT OR REPLACE INTO silences(id, matchers, starts_ms, ends_ms,"
                       " created_by, comment, created_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [SQ_SILENCE_DELETE] = "DELETE FROM silences WHERE id = ?1",
    [SQ_SILENCE_LIST] = "SELECT id, matchers, starts_ms, ends_ms, created_by, comment,"
                        " created_ms FROM silences WHERE ?1 <= 0 OR (starts_ms <= ?1 AND"
                        " ?1 < ends_ms) ORDER BY starts_ms, id",
    [SQ_STATE_PUT] = "INSERT OR REPLACE INTO policy_state(key, value) VALUES(?1, ?2)",
    [SQ_STATE_GET] = "SELECT key, value FROM policy_state WHERE key = ?1",
    [SQ_STATE_DELETE] = "DELETE FROM policy_state WHERE key = ?1",
    [SQ_STATE_LIST] = "SELECT key, value FROM policy_state WHERE key >= ?1 ORDER BY key",
    [SQ_STATE_LIST_RANGE] = "SELECT key, value FROM policy_state WHERE key >= ?1 AND key < ?2"
                            " ORDER BY key",
    [SQ_RES_DELETE_SET] = "DELETE FROM resources WHERE set_id = ?1",
    [SQ_RES_DELETE_SOURCE] = "DELETE FROM resources WHERE set_id = ?1 AND source = ?2",
    [SQ_RES_PUT] = "INSERT OR REPLACE INTO resources(set_id, " SQ_RES_COLS ")"
                   " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [SQ_RES_DELETE] = "DELETE FROM resources WHERE set_id = ?1 AND key = ?2",
    [SQ_RES_GET] = "SELECT " SQ_RES_COLS " FROM resources WHERE set_id = ?1 AND key = ?2",
    [SQ_RES_LIST] = "SELECT " SQ_RES_COLS " FROM resources WHERE set_id = ?1 ORDER BY key",
    [SQ_LOG_INSERT] = "INSERT INTO wlog(data) VALUES(?1)",
    [SQ_LOG_ALL] = "SELECT seq, data FROM wlog WHERE seq > ?1 ORDER BY seq",
    [SQ_LOG_DELETE] = "DELETE FROM wlog WHERE seq <= ?1",
    [SQ_LOG_HEAD] = "SELECT seq, length(data) FROM wlog WHERE seq <= ?1 ORDER BY seq",
};

/* ---- helpers -------------------------------------------------------------------- */

int vigil__sq_error(vigil__sq *s, int sqlite_rc, const char *op)
{
    int code;
    const char *hint = "";
    switch (sqlite_rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        code = VIGIL_EBUSY;
        hint = " (locked by another connection past the busy timeout)";
        break;
    case SQLITE_FULL: code = VIGIL_EFULL; break;
    case SQLITE_READONLY: code = VIGIL_EREADONLY; break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: code = VIGIL_ECORRUPT; break;
    case SQLITE_NOMEM: return vigil__error_oom();
    case SQLITE_TOOBIG: code = VIGIL_ELIMIT; break;
    case SQLITE_CONSTRAINT: code = VIGIL_ECONFLICT; break;
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_PERM:
    case SQLITE_AUTH: code = VIGIL_EIO; break;
    default: code = VIGIL_ERROR; break;
    }
    const char *msg = s && s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(sqlite_rc);
    if (!msg || (s && s->db && sqlite3_errcode(s->db) != sqlite_rc))
        msg = sqlite3_errstr(sqlite_rc);
    return vigil__error_set(code, "sqlite: %s: %s%s (%s)", op, msg, hint,
                            s && s->path ? s->path : "?");
}

sqlite3_stmt *vigil__sq_stmt(vigil__sq *s, sq_stmt_id id, int *rc)
{
    sqlite3_stmt *st = s->stmt[id];
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        *rc = VIGIL_OK;
        return st;
    }
    int r = sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (r != SQLITE_OK) {
        *rc = vigil__sq_error(s, r, "prepare");
        sqlite3_finalize(st);
        return NULL;
    }
    s->stmt[id] = st;
    *rc = VIGIL_OK;
    return st;
}

int vigil__sq_exec_stmt(vigil__sq *s, sqlite3_stmt *st, const char *op)
{
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW)
        ;
    int rc = r == SQLITE_DONE ? VIGIL_OK : vigil__sq_error(s, r, op);
    sqlite3_reset(st);
    return rc;
}

int vigil__sq_bind_text(sqlite3_stmt *st, int i, const char *text)
{
    if (!text)
        return sqlite3_bind_null(st, i);
    return sqlite3_bind_text(st, i, text, -1, SQLITE_STATIC);
}

static void tend_wal(vigil__sq *s);

int vigil__sq_begin(vigil__sq *s, const char *op)
{
    if (s->ckpt)
        tend_wal(s);
    int rc;
    sqlite3_stmt *st = vigil__sq_stmt(s, SQ_BEGIN, &rc);
    if (!st)
        return rc;
    return vigil__sq_exec_stmt(s, st, op);
}

int vigil__sq_commit(vigil__sq *s, const char *op)
{
    int rc;
    sqlite3_stmt *st = vigil__sq_stmt(s, SQ_COMMIT, &rc);
    if (!st)
        return rc;
    return vigil__sq_exec_stmt(s, st, op);
}

void vigil__sq_rollback(vigil__sq *s)
{
    if (sqlite3_get_autocommit(s->db))
        return; /* SQLite already rolled back (e.g. after SQLITE_FULL) */
    int rc;
    sqlite3_stmt *st = vigil__sq_stmt(s, SQ_ROLLBACK, &rc);
    if (st) {
        sqlite3_step(st);
        sqlite3_reset(st);
    } else {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    }
}

int vigil__sq_check_writable(vigil__sq *s, const char *op)
{
    if (s->read_only)
        return vigil__error_set(VIGIL_EREADONLY, "sqlite: %s: the store is open read-only (%s)", op,
                                s->path);
    return VIGIL_OK;
}

/* Runs a one-row integer query ("PRAGMA user_version"). */
static int query_int(vigil__sq *s, const char *sql, int64_t *out, const char *op)
{
    sqlite3_stmt *st = NULL;
    int r = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (r == SQLITE_OK) {
        r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            *out = sqlite3_column_int64(st, 0);
            r = SQLITE_OK;
        } else if (r == SQLITE_DONE) {
            *out = 0;
            r = SQLITE_OK;
        }
    }
    int rc = r == SQLITE_OK ? VIGIL_OK : vigil__sq_error(s, r, op);
    sqlite3_finalize(st);
    return rc;
}

static int exec_sql(vigil__sq *s, const char *sql, const char *op)
{
    int r = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    return r == SQLITE_OK ? VIGIL_OK : vigil__sq_error(s, r, op);
}

/* ---- URL ------------------------------------------------------------------------ */

typedef struct sq_url {
    char *path; /* owned; NULL for memory */
    int memory;
    int mode;                                /* 0 rwc, 1 rw, 2 ro */
    int sync;                                /* -1 unset, else vigil_store_sync */
    int64_t busy;                            /* -1 unset */
    int ckpt;                                /* -1 unset, else vigil_store_checkpoint */
    int log;                                 /* -1 unset, 0 off, 1 on */
    int64_t fold_interval_ms, fold_slice_ms; /* 0 unset; fold_slice -1: whole rounds */
    uint64_t log_memory, log_memory_max;     /* 0 unset */
    int64_t fold_batch;                      /* 0 unset */
} sq_url;

static int url_option(sq_url *u, const char *kv, size_t len)
{
    const char *eq = memchr(kv, '=', len);
    if (!eq)
        return vigil__error_set(VIGIL_EINVAL, "sqlite: URL option \"%.*s\" has no value", (int)len,
                                kv);
    size_t kl = (size_t)(eq - kv), vl = len - kl - 1;
    char val[64];
    if (vl >= sizeof(val))
        return vigil__error_set(VIGIL_EINVAL, "sqlite: URL option \"%.*s\": value too long",
                                (int)kl, kv);
    memcpy(val, eq + 1, vl);
    val[vl] = '\0';
    if (kl == 4 && memcmp(kv, "mode", 4) == 0) {
        if (strcmp(val, "rwc") == 0)
            u->mode = 0;
        else if (strcmp(val, "rw") == 0)
            u->mode = 1;
        else if (strcmp(val, "ro") == 0)
            u->mode = 2;
        else
            return vigil__error_set(VIGIL_EINVAL,
                                    "sqlite: URL option mode=%s: expected ro, rw or rwc", val);
    } else if (kl == 11 && memcmp(kv, "synchronous", 11) == 0) {
        if (strcmp(val, "normal") == 0)
            u->sync = VIGIL_STORE_SYNC_NORMAL;
        else if (strcmp(val, "full") == 0)
            u->sync = VIGIL_STORE_SYNC_FULL;
        else
            return vigil__error_set(
                VIGIL_EINVAL, "sqlite: URL option synchronous=%s: expected normal or full", val);
    } else if (kl == 12 && memcmp(kv, "busy_timeout", 12) == 0) {
        int64_t ms;
        if (vigil_scalar_parse_duration(&ms, val) != VIGIL_OK || ms > INT32_MAX)
            return vigil__error_set(VIGIL_EINVAL,
                                    "sqlite: URL option busy_timeout=%s: expected a duration "
                                    "such as 250ms or 5s",
                                    val);
        u->busy = ms == 0 ? 1 : ms;
    } else if (kl == 10 && memcmp(kv, "checkpoint", 10) == 0) {
        if (strcmp(val, "background") == 0)
            u->ckpt = VIGIL_STORE_CHECKPOINT_BACKGROUND;
        else if (strcmp(val, "inline") == 0)
            u->ckpt = VIGIL_STORE_CHECKPOINT_INLINE;
        else
            return vigil__error_set(
                VIGIL_EINVAL, "sqlite: URL option checkpoint=%s: expected background or inline",
                val);
    } else if (kl == 3 && memcmp(kv, "log", 3) == 0) {
        if (strcmp(val, "on") == 0)
            u->log = 1;
        else if (strcmp(val, "off") == 0)
            u->log = 0;
        else
            return vigil__error_set(VIGIL_EINVAL, "sqlite: URL option log=%s: expected on or off",
                                    val);
    } else if ((kl == 13 && memcmp(kv, "fold_interval", 13) == 0) ||
               (kl == 10 && memcmp(kv, "fold_slice", 10) == 0)) {
        int64_t ms;
        int slice = kl == 10;
        if (vigil_scalar_parse_duration(&ms, val) != VIGIL_OK || ms > 3600000 ||
            (!slice && ms == 0))
            return vigil__error_set(VIGIL_EINVAL,
                                    "sqlite: URL option %.*s=%s: expected a duration from %s "
                                    "to 1h such as 2s",
                                    (int)kl, kv, val, slice ? "0" : "1ms");
        if (slice)
            u->fold_slice_ms = ms ? ms : -1;
        else
            u->fold_interval_ms = ms;
    } else if (kl == 10 && memcmp(kv, "fold_batch", 10) == 0) {
        char *end = NULL;
        errno = 0;
        long long n = strtoll(val, &end, 10);
        if (!*val || *end || errno || n < 1 || n > 1000000)
            return vigil__error_set(VIGIL_EINVAL,
                                    "sqlite: URL option fold_batch=%s: expected a number of "
                                    "series from 1 to 1000000",
                                    val);
        u->fold_batch = n;
    } else if ((kl == 10 && memcmp(kv, "log_memory", 10) == 0) ||
               (kl == 14 && memcmp(kv, "log_memory_max", 14) == 0)) {
        uint64_t bytes;
        if (vigil_scalar_parse_size(&bytes, val) != VIGIL_OK || bytes < 4096 ||
            bytes > ((uint64_t)1 << 40))
            return vigil__error_set(VIGIL_EINVAL,
                                    "sqlite: URL option %.*s=%s: expected a size from 4KiB to "
                                    "1TiB such as 256MiB",
                                    (int)kl, kv, val);
        *(kl == 10 ? &u->log_memory : &u->log_memory_max) = bytes;
    } else {
        return vigil__error_set(VIGIL_EINVAL,
                                "sqlite: unknown URL option \"%.*s\" (known: mode, synchronous, "
                                "busy_timeout, checkpoint, log, fold_interval, fold_slice, "
                                "fold_batch, log_memory, log_memory_max)",
                                (int)kl, kv);
    }
    return VIGIL_OK;
}

static int parse_url(sq_url *u, const char *url, const char *rest)
{
    memset(u, 0, sizeof(*u));
    u->sync = -1;
    u->busy = -1;
    u->ckpt = -1;
    u->log = -1;
    if (strcmp(rest, ":memory:") == 0) {
        u->memory = 1;
        return VIGIL_OK;
    }
    if (strncmp(rest, "//", 2) != 0)
        return vigil__error_set(VIGIL_EINVAL,
                                "sqlite: \"%.200s\" is not a SQLite URL (expected sqlite://PATH, "
                                "sqlite:///ABSOLUTE/PATH or sqlite::memory:)",
                                url);
    const char *p = rest + 2;
    const char *q = strchr(p, '?');
    size_t plen = q ? (size_t)(q - p) : strlen(p);
    if (plen == 0)
        return vigil__error_set(VIGIL_EINVAL, "sqlite: \"%.200s\" names no database file", url);
    if (plen == 8 && memcmp(p, ":memory:", 8) == 0) {
        u->memory = 1;
    } else {
        u->path = vigil__strndup(p, plen);
        if (!u->path)
            return vigil__error_oom();
    }
    while (q) {
        const char *kv = q + 1;
        q = strchr(kv, '&');
        size_t len = q ? (size_t)(q - kv) : strlen(kv);
        if (len == 0)
            continue;
        int rc = url_option(u, kv, len);
        if (rc) {
            vigil__free(u->path);
            u->path = NULL;
            return rc;
        }
    }
    return VIGIL_OK;
}

/* mkdir -p of the directory part of `path`; the directories it creates are
 * 0700 (the store holds tokens' names, targets, outputs: the operator's
 * only). */
static int make_parent_dirs(const char *path)
{
    char *dir = vigil__strdup(path);
    if (!dir)
        return vigil__error_oom();
    char *slash = strrchr(dir, '/');
    int rc = VIGIL_OK;
    if (slash && slash != dir) {
        *slash = '\0';
        for (char *p = dir + 1;; p++) {
            if (*p == '/' || *p == '\0') {
                char c = *p;
                *p = '\0';
                if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
                    rc = vigil__error_set(VIGIL_EIO, "sqlite: cannot create directory %s: %s", dir,
                                          strerror(errno));
                    break;
                }
                *p = c;
                if (c == '\0')
                    break;
            }
        }
    }
    vigil__free(dir);
    return rc;
}

/* ---- checkpoints ------------------------------------------------------------------ */

/* Called by SQLite on the writer's thread after each commit, with the frames
 * now in the log. Wakes the checkpointer once `pages` frames are waiting. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)db;
    (void)name;
    vigil__sq *s = arg;
    sq_ckpt *ck = s->ckpt;
    if (frames < s->wal_frames)
        s->wal_retry_at = 0; /* the log started over */
    s->wal_frames = frames;
    pthread_mutex_lock(&ck->mu);
    if (frames < ck->backfilled)
        ck->backfilled = 0; /* the log started over */
    ck->wal_frames = frames;
    /* Past `pages`, the log is kept copied to within `slack` frames, so
     * that the writer can finish the job and start the log over. */
    int behind = frames - ck->backfilled;
    if ((behind >= ck->pages || (frames >= ck->pages && behind > ck->slack && !ck->running)) &&
        !ck->wake) {
        ck->wake = 1;
        pthread_cond_signal(&ck->cv);
    }
    pthread_mutex_unlock(&ck->mu);
    return SQLITE_OK;
}

static void ckpt_log_failure(sq_ckpt *ck, int r, const char *what)
{
    if (ck->failing++)
        return; /* once per streak */
    vigil__log(&ck->logger, VIGIL_LOG_WARN, "store", "checkpoint failed",
               "path=%s mode=%s error=%s", ck->path, what, sqlite3_errstr(r));
}

static void *ckpt_main(void *arg)
{
    sq_ckpt *ck = arg;
    pthread_mutex_lock(&ck->mu);
    for (;;) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t deadline = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + ck->interval_ms;
        while (!ck->stop && (!ck->wake || ck->held)) {
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
            if (now >= deadline && !ck->held)
                break;
            int64_t until = ck->held ? now + ck->interval_ms : deadline;
            vigil__cond_wait_until(&ck->cv, &ck->mu, until);
        }
        if (ck->stop)
            break;
        int due = ck->wake || ck->wal_frames > ck->backfilled;
        ck->wake = 0;
        if (!due)
            continue;
        ck->running = 1;
        pthread_mutex_unlock(&ck->mu);
        int nlog = 0, ncopied = 0;
        int r =
            sqlite3_wal_checkpoint_v2(ck->db, "main", SQLITE_CHECKPOINT_PASSIVE, &nlog, &ncopied);
        (void)nlog;
        pthread_mutex_lock(&ck->mu);
        ck->running = 0;
        pthread_cond_broadcast(&ck->idle_cv);
        if (r == SQLITE_OK) {
            ck->failing = 0;
            /* More than the writer reported: the log started over since
             * (or its hook has yet to run); the next hook sets it right. */
            ck->backfilled = ncopied <= ck->wal_frames ? ncopied : 0;
        } else if ((r & 0xff) != SQLITE_BUSY) { /* BUSY: another checkpoint ran */
            ckpt_log_failure(ck, r, "passive");
        }
    }
    pthread_mutex_unlock(&ck->mu);
    return NULL;
}

/* The writer, outside a transaction, finds the log past its hard bound: it
 * waits for a running background checkpoint, then copies back what is left
 * and truncates the log (waiting, through the busy handler, for readers that
 * still use it). On failure (a reader kept its snapshot past the busy
 * timeout) the write goes on, and the next try waits until the log has
 * doubled, so a pinned log costs a few waits, not one per write. */
static void bound_wal(vigil__sq *s)
{
    sq_ckpt *ck = s->ckpt;
    pthread_mutex_lock(&ck->mu);
    ck->held = 1;
    while (ck->running)
        pthread_cond_wait(&ck->idle_cv, &ck->mu);
    pthread_mutex_unlock(&ck->mu);
    int nlog = 0, ncopied = 0;
    int frames = s->wal_frames;
    int r = sqlite3_wal_checkpoint_v2(s->db, "main", SQLITE_CHECKPOINT_TRUNCATE, &nlog, &ncopied);
    pthread_mutex_lock(&ck->mu);
    ck->held = 0;
    if (r == SQLITE_OK) {
        ck->backfilled = 0;
        ck->wal_frames = 0;
    }
    pthread_cond_signal(&ck->cv);
    pthread_mutex_unlock(&ck->mu);
    if (r == SQLITE_OK) {
        s->wal_frames = 0;
        s->wal_retry_at = 0;
        vigil__log(&s->logger, VIGIL_LOG_DEBUG, "store", "log truncated at its bound",
                   "path=%s frames=%d", s->path, frames);
    } else {
        s->wal_retry_at = frames > INT32_MAX / 2 ? INT32_MAX : frames * 2;
        vigil__log(&s->logger, VIGIL_LOG_WARN, "store",
                   "the write-ahead log is past its bound and could not be truncated",
                   "path=%s frames=%d bound=%d error=%s", s->path, frames, s->wal_max,
                   sqlite3_errmsg(s->db));
    }
}

/* The writer, outside a transaction: once the log holds checkpoint_pages
 * frames and the thread has copied all but `slack` of them, copies the rest
 * itself (a PASSIVE checkpoint of at most `slack` frames), so that its next
 * transaction starts the log over; past the hard bound, bound_wal(). A
 * writer that is never idle would otherwise never find the log fully
 * copied, and the log would only grow. */
static void tend_wal(vigil__sq *s)
{
    sq_ckpt *ck = s->ckpt;
    if (s->wal_frames > s->wal_max && s->wal_frames >= s->wal_retry_at) {
        bound_wal(s);
        return;
    }
    if (s->wal_frames < ck->pages)
        return;
    pthread_mutex_lock(&ck->mu);
    int go = !ck->running && !ck->held && s->wal_frames - ck->backfilled <= ck->slack;
    if (go)
        ck->held = 1;
    pthread_mutex_unlock(&ck->mu);
    if (!go)
        return;
    int nlog = 0, ncopied = 0;
    int r = sqlite3_wal_checkpoint_v2(s->db, "main", SQLITE_CHECKPOINT_PASSIVE, &nlog, &ncopied);
    pthread_mutex_lock(&ck->mu);
    ck->held = 0;
    if (r == SQLITE_OK && ncopied <= ck->wal_frames)
        ck->backfilled = ncopied;
    pthread_cond_signal(&ck->cv);
    pthread_mutex_unlock(&ck->mu);
}

/* Joins the checkpoint thread and closes its connection. */
static void ckpt_stop(vigil__sq *s)
{
    sq_ckpt *ck = s->ckpt;
    if (!ck)
        return;
    sqlite3_wal_hook(s->db, NULL, NULL);
    pthread_mutex_lock(&ck->mu);
    ck->stop = 1;
    pthread_cond_signal(&ck->cv);
    pthread_mutex_unlock(&ck->mu);
    pthread_join(ck->thread, NULL);
    sqlite3_close_v2(ck->db);
    pthread_cond_destroy(&ck->idle_cv);
    pthread_cond_destroy(&ck->cv);
    pthread_mutex_destroy(&ck->mu);
    vigil__free(ck);
    s->ckpt = NULL;
}

static int ckpt_start(vigil__sq *s, const vigil_store_options *o)
{
    sq_ckpt *ck = vigil__calloc(1, sizeof(*ck));
    if (!ck)
        return vigil__error_oom();
    int r = sqlite3_open_v2(s->path, &ck->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (r != SQLITE_OK) {
        int rc = ck->db ? vigil__error_set(VIGIL_EIO,
                                           "sqlite: opening the checkpoint connection: %s (%s)",
                                           sqlite3_errmsg(ck->db), s->path)
                        : vigil__error_oom();
        sqlite3_close_v2(ck->db);
        vigil__free(ck);
        return rc;
    }
    sqlite3_busy_timeout(ck->db, (int)s->busy_ms);
    /* A connection opens its log on its first read; a checkpoint before
     * that would do nothing. */
    r = sqlite3_exec(ck->db, "SELECT count(*) FROM sqlite_schema", NULL, NULL, NULL);
    if (r != SQLITE_OK) {
        int rc = vigil__error_set(VIGIL_EIO, "sqlite: opening the checkpoint connection: %s (%s)",
                                  sqlite3_errmsg(ck->db), s->path);
        sqlite3_close_v2(ck->db);
        vigil__free(ck);
        return rc;
    }
    ck->path = s->path;
    ck->logger = s->logger;
    ck->interval_ms = o->checkpoint_interval_ms;
    ck->pages = (int)o->checkpoint_pages;
    ck->slack = ck->pages / 4 > 0 ? ck->pages / 4 : 1;
    pthread_mutex_init(&ck->mu, NULL);
    vigil__cond_init_monotonic(&ck->cv);
    pthread_cond_init(&ck->idle_cv, NULL);
    if (pthread_create(&ck->thread, NULL, ckpt_main, ck) != 0) {
        sqlite3_close_v2(ck->db);
        pthread_cond_destroy(&ck->idle_cv);
        pthread_cond_destroy(&ck->cv);
        pthread_mutex_destroy(&ck->mu);
        vigil__free(ck);
        return vigil__error_set(VIGIL_ERROR, "sqlite: cannot start the checkpoint thread (%s)",
                                s->path);
    }
    pthread_setname_np(ck->thread, "vigil-ckpt"); /* named before open returns */
    s->ckpt = ck;
    s->wal_max = (int)o->wal_max_pages;
    sqlite3_wal_hook(s->db, wal_hook, s);
    return VIGIL_OK;
}

/* ---- open / close ----------------------------------------------------------------- */

static void sq_close(void *h)
{
    vigil__sq *s = h;
    if (!s)
        return;
    /* A clean close leaves an empty log; a failed fold leaves it to be
     * read at the next open. */
    if (s->db && s->log.on && !s->read_only && s->log.loaded && s->log.rows &&
        vigil__sq_log_fold_all(s) != VIGIL_OK)
        vigil__log(&s->logger, VIGIL_LOG_WARN, "store", "write log: not folded at close",
                   "path=%s error=\"%s\"", s->path, vigil_error_last()->message);
    ckpt_stop(s);
    for (size_t i = 0; i < SQ_STMT_COUNT; i++)
        sqlite3_finalize(s->stmt[i]);
    if (s->db)
        sqlite3_close_v2(s->db);
    vigil__sq_cache_free(&s->cache);
    vigil_buf_dispose(&s->key);
    vigil__free(s->rows);
    vigil__sq_tails_free(s);
    vigil__sq_log_free(s);
    vigil__free(s->samples);
    vigil__free(s->merged);
    vigil_buf_dispose(&s->chunk);
    vigil_buf_dispose(&s->chunk2);
    vigil_buf_dispose(&s->errtext);
    vigil_buf_dispose(&s->qkey);
    vigil_buf_dispose(&s->tagbuf);
    vigil__free(s->tags);
    vigil__free(s->path);
    vigil__free(s);
}

static int check_schema(vigil__sq *s, int64_t *version)
{
    int rc = query_int(s, "PRAGMA user_version", version, "reading the schema version");
    if (rc)
        return rc;
    if (*version > VIGIL__SQ_SCHEMA_VERSION)
        return vigil__error_set(VIGIL_EVERSION,
                                "sqlite: %s has schema version %lld, newer than the version %d "
                                "this library knows; use a newer vigil (the file was not changed)",
                                s->path, (long long)*version, VIGIL__SQ_SCHEMA_VERSION);
    int64_t app = 0, tables = 0;
    if ((rc = query_int(s, "PRAGMA application_id", &app, "reading the application id")) != 0)
        return rc;
    if (*version > 0 && app != VIGIL__SQ_APPLICATION_ID)
        return vigil__error_set(VIGIL_ECORRUPT,
                                "sqlite: %s is a SQLite database of another application "
                                "(application_id %lld), not a vigil store",
                                s->path, (long long)app);
    if (*version == 0) {
        rc = query_int(s, "SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'",
                       &tables, "reading the schema");
        if (rc)
            return rc;
        if (tables > 0)
            return vigil__error_set(VIGIL_ECORRUPT,
                                    "sqlite: %s holds %lld tables but no vigil schema; refusing "
                                    "to use it as a store",
                                    s->path, (long long)tables);
    }
    return VIGIL_OK;
}

static int migrate(vigil__sq *s, int64_t from)
{
    int rc = exec_sql(s, "BEGIN IMMEDIATE", "migrating the schema");
    if (rc)
        return rc;
    int64_t v = 0;
    rc = query_int(s, "PRAGMA user_version", &v, "migrating the schema");
    for (int64_t i = v; rc == VIGIL_OK && i < VIGIL__SQ_SCHEMA_VERSION; i++) {
        rc = exec_sql(s, migrations[i], "migrating the schema");
        if (rc == VIGIL_OK && i == 2 && (rc = vigil__sq_chunks_migrate(s)) == VIGIL_OK)
            rc = exec_sql(s, "DROP TABLE samples", "migrating the schema");
    }
    if (rc == VIGIL_OK) {
        char sql[64];
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", VIGIL__SQ_SCHEMA_VERSION);
        rc = exec_sql(s, sql, "migrating the schema");
    }
    if (rc == VIGIL_OK)
        rc = exec_sql(s, "COMMIT", "migrating the schema");
    if (rc != VIGIL_OK) {
        vigil__sq_rollback(s);
        return rc;
    }
    if (v < VIGIL__SQ_SCHEMA_VERSION)
        vigil__log(&s->logger, v == 0 ? VIGIL_LOG_DEBUG : VIGIL_LOG_INFO, "store",
                   v == 0 ? "created the schema" : "migrated the schema", "path=%s from=%lld to=%d",
                   s->path, (long long)(from > v ? from : v), VIGIL__SQ_SCHEMA_VERSION);
    return VIGIL_OK;
}

static int configure(vigil__sq *s, const vigil_store_options *o, int sync, int ckpt)
{
    int rc;
    if (!s->read_only) {
        if ((rc = exec_sql(s, "PRAGMA journal_mode = WAL", "enabling WAL")) != 0)
            return rc;
        if ((rc = exec_sql(s,
                           sync == VIGIL_STORE_SYNC_FULL ? "PRAGMA synchronous = FULL"
                                                         : "PRAGMA synchronous = NORMAL",
                           "setting synchronous")) != 0)
            return rc;
        /* Inline: SQLite checkpoints inside the commit that takes the log
         * past checkpoint_pages (each checkpoint costs two fsyncs, so more
         * than SQLite's 1,000). Background: never inside a commit; the
         * checkpoint thread and bound_wal() do it. A log that started over
         * is truncated back to 64 MiB. */
        char sql[128];
        snprintf(sql, sizeof(sql),
                 "PRAGMA wal_autocheckpoint = %d; PRAGMA journal_size_limit = 67108864",
                 ckpt == VIGIL_STORE_CHECKPOINT_INLINE ? (int)o->checkpoint_pages : 0);
        if ((rc = exec_sql(s, sql, "configuring the WAL")) != 0)
            return rc;
    } else if ((rc = exec_sql(s, "PRAGMA query_only = 1", "setting query_only")) != 0) {
        return rc;
    }
    if ((rc = exec_sql(s,
                       "PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;"
                       " PRAGMA cache_size = -16384",
                       "configuring the connection")) != 0)
        return rc;
    if (o->max_size_bytes) {
        int64_t page = 4096;
        if ((rc = query_int(s, "PRAGMA page_size", &page, "reading the page size")) != 0)
            return rc;
        uint64_t pages = o->max_size_bytes / (uint64_t)(page > 0 ? page : 4096);
        if (pages < 1)
            pages = 1;
        if (pages > 4294967294u)
            pages = 4294967294u;
        char sql[64];
        snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %llu", (unsigned long long)pages);
        int64_t got = 0;
        if ((rc = query_int(s, sql, &got, "setting the size limit")) != 0)
            return rc;
    }
    return VIGIL_OK;
}

static int sq_open(void **out, const char *url, const char *rest, const vigil_store_options *o,
                   void *payload)
{
    (void)payload;
    *out = NULL;
    sq_url u;
    int rc = parse_url(&u, url, rest);
    if (rc)
        return rc;
    int read_only = o->read_only || u.mode == 2;
    int sync = u.sync >= 0 ? u.sync : (int)o->synchronous;
    int ckpt = u.ckpt >= 0 ? u.ckpt : (int)o->checkpoint;
    int64_t busy = u.busy > 0 ? u.busy : o->busy_timeout_ms;
    if (u.memory && read_only)
        return vigil__error_set(VIGIL_EINVAL, "sqlite: an in-memory store cannot be read-only");

    vigil__sq *s = vigil__calloc(1, sizeof(*s));
    if (!s) {
        vigil__free(u.path);
        return vigil__error_oom();
    }
    s->path = u.memory ? vigil__strdup(":memory:") : u.path;
    s->read_only = read_only;
    s->busy_ms = busy;
    s->logger = o->logger;
    s->cache.max = o->series_cache_max;
    s->tails.max = o->series_cache_max;
    s->log.on = u.log != 0;
    s->log.fold_interval_ms = u.fold_interval_ms;
    s->log.fold_slice_ms = u.fold_slice_ms;
    s->log.fold_batch = (size_t)u.fold_batch;
    s->log.memory_soft = (size_t)u.log_memory;
    s->log.memory_hard = (size_t)u.log_memory_max;
    vigil__sq_log_defaults(&s->log);
    if (!s->path) {
        sq_close(s);
        return vigil__error_oom();
    }
    if (!u.memory) {
        struct stat sb;
        if (stat(s->path, &sb) != 0) {
            if (errno == ENOENT && (read_only || u.mode == 1)) {
                rc = vigil__error_set(VIGIL_ENOTFOUND, "sqlite: database file %s does not exist",
                                      s->path);
            } else if (errno == ENOENT) {
                rc = o->no_create_dirs ? VIGIL_OK : make_parent_dirs(s->path);
                /* Created here 0600 whatever the umask: SQLite would create it
                 * 0644, and its -wal, -shm and journal files take the mode of
                 * the database file. An empty file is an empty database.
                 * (A failure is left to SQLite's open, which reports it.) */
                int fd = rc ? -1 : open(s->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                if (fd >= 0)
                    close(fd);
            } else {
                rc = vigil__error_set(VIGIL_EIO, "sqlite: cannot access %s: %s", s->path,
                                      strerror(errno));
            }
        } else if (S_ISDIR(sb.st_mode)) {
            rc = vigil__error_set(VIGIL_EIO, "sqlite: %s is a directory, not a database file",
                                  s->path);
        }
        if (rc) {
            sq_close(s);
            return rc;
        }
    }
    int flags = SQLITE_OPEN_NOMUTEX;
    if (read_only)
        flags |= SQLITE_OPEN_READONLY;
    else
        flags |= SQLITE_OPEN_READWRITE | (u.mode == 1 ? 0 : SQLITE_OPEN_CREATE);
    if (u.memory)
        flags |= SQLITE_OPEN_MEMORY;
    int r = sqlite3_open_v2(s->path, &s->db, flags, NULL);
    if (r != SQLITE_OK) {
        rc = s->db ? vigil__sq_error(s, r, "opening the database")
                   : vigil__error_set(VIGIL_ENOMEM, "sqlite: out of memory opening %s", s->path);
        sq_close(s);
        return rc;
    }
    sqlite3_busy_timeout(s->db, (int)busy);

    int64_t version = 0;
    rc = check_schema(s, &version);
    if (rc == VIGIL_OK)
        rc = configure(s, o, sync, ckpt);
    if (rc == VIGIL_OK && version < VIGIL__SQ_SCHEMA_VERSION) {
        if (read_only && version == 0)
            rc = vigil__error_set(VIGIL_EREADONLY,
                                  "sqlite: %s has no vigil schema and the store is open read-only",
                                  s->path);
        else if (read_only)
            rc = vigil__error_set(VIGIL_EREADONLY,
                                  "sqlite: %s has schema version %lld, which needs a migration, "
                                  "and the store is open read-only",
                                  s->path, (long long)version);
        else
            rc = migrate(s, version);
    }
    if (rc == VIGIL_OK && !u.memory && !read_only && ckpt == VIGIL_STORE_CHECKPOINT_BACKGROUND)
        rc = ckpt_start(s, o);
    if (rc == VIGIL_OK && s->log.on) {
        /* what the log holds past the last fold becomes pending again */
        int64_t t0 = vigil__monotonic_ms();
        rc = vigil__sq_log_sync(s);
        if (rc == VIGIL_OK && s->log.rows)
            vigil__log(&s->logger, VIGIL_LOG_INFO, "store", "replayed the write log",
                       "path=%s rows=%llu bytes=%llu samples=%llu ms=%lld", s->path,
                       (unsigned long long)s->log.rows, (unsigned long long)s->log.row_bytes,
                       (unsigned long long)s->log.samples, (long long)(vigil__monotonic_ms() - t0));
    }
    if (rc) {
        sq_close(s);
        return rc;
    }
    vigil__log(&s->logger, VIGIL_LOG_DEBUG, "store", "opened", "path=%s read_only=%d", s->path,
               read_only);
    *out = s;
    return VIGIL_OK;
}

static const vigil_store_type g_sqlite_backend = {
    VIGIL_STORE_TYPE_VERSION,
    "sqlite",
    NULL,
    NULL,
    sq_open,
    sq_close,
    vigil__sq_write,
    vigil__sq_query,
    vigil__sq_series_list,
    vigil__sq_latest,
    vigil__sq_action_put,
    vigil__sq_action_update,
    vigil__sq_action_get,
    vigil__sq_action_list,
    vigil__sq_decision_append,
    vigil__sq_decision_list,
    vigil__sq_audit_append,
    vigil__sq_audit_list,
    vigil__sq_audit_last,
    vigil__sq_silence_put,
    vigil__sq_silence_delete,
    vigil__sq_silence_list,
    vigil__sq_state_put,
    vigil__sq_state_get,
    vigil__sq_state_delete,
    vigil__sq_state_list,
    vigil__sq_resource_replace,
    vigil__sq_resource_put,
    vigil__sq_resource_delete,
    vigil__sq_resource_list,
    vigil__sq_retain,
    vigil__sq_write_group,
    vigil__sq_lease_acquire,
    vigil__sq_lease_release,
    vigil__sq_lease_get,
    NULL, /* tail: one hub per file; a leader feeds its engine directly */
};

const vigil_store_type *vigil_store_sqlite_type(void)
{
    return &g_sqlite_backend;
}
