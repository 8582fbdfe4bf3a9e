/*
 * The built-in PostgreSQL store backend (libpq): URL and credentials, the
 * pool of connections, reconnection and retry, the schema and its version
 * table, prepared statements and error mapping.
 */
#include "store/pg_int.h"
#include "store/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- schema ------------------------------------------------------------------ */

/* migrations[v] upgrades a schema from version v to v + 1, in one
 * transaction under an advisory lock. Never edit one that has shipped. Text
 * columns that are ordered or compared use the "C" collation: byte order,
 * as the SQLite backend orders them. Samples are range-partitioned by day
 * (samples_dN for [N days, N+1 days) since the epoch, created on demand by
 * writes); the default partition takes the samples of days that have none. */
static const char *const migrations[VIGIL__PG_SCHEMA_VERSION] = {
    "CREATE TABLE series(id bigserial PRIMARY KEY, name text COLLATE \"C\" NOT NULL,"
    " tags text COLLATE \"C\" NOT NULL, UNIQUE(name, tags));"
    "CREATE TABLE samples(series_id bigint NOT NULL, ts bigint NOT NULL,"
    " value double precision, error text, PRIMARY KEY(series_id, ts)) PARTITION BY RANGE (ts);"
    "CREATE TABLE samples_default PARTITION OF samples DEFAULT;"
    "CREATE TABLE ingest_batches(id bigserial PRIMARY KEY, agent text COLLATE \"C\" NOT NULL,"
    " batch_id text COLLATE \"C\" NOT NULL, received_ms bigint NOT NULL,"
    " UNIQUE(agent, batch_id));"
    "CREATE INDEX ingest_batches_received ON ingest_batches(received_ms);"
    "CREATE TABLE actions(id text COLLATE \"C\" PRIMARY KEY, requested_ms bigint NOT NULL,"
    " action text NOT NULL, target text COLLATE \"C\" NOT NULL, params text NOT NULL,"
    " reason text NOT NULL, policy text COLLATE \"C\", series text, dry_run integer NOT NULL,"
    " status text COLLATE \"C\" NOT NULL, result_reason text, output text,"
    " duration_ms bigint NOT NULL, updated_ms bigint NOT NULL, audit_seq bigint NOT NULL,"
    " audit_hash text);"
    "CREATE INDEX actions_time ON actions(requested_ms, id);"
    "CREATE TABLE decisions(id bigserial PRIMARY KEY, ts bigint NOT NULL,"
    " policy text COLLATE \"C\" NOT NULL, series text, target text COLLATE \"C\", action text,"
    " action_id text, decision text NOT NULL, reason text NOT NULL);"
    "CREATE INDEX decisions_ts ON decisions(ts);"
    "CREATE FUNCTION vigil_append_only() RETURNS trigger LANGUAGE plpgsql AS"
    " $$BEGIN RAISE EXCEPTION '% rows are append-only', TG_TABLE_NAME; END$$;"
    "CREATE TRIGGER decisions_append_only BEFORE UPDATE OR DELETE ON decisions"
    " FOR EACH ROW EXECUTE FUNCTION vigil_append_only();"
    "CREATE TRIGGER decisions_no_truncate BEFORE TRUNCATE ON decisions"
    " FOR EACH STATEMENT EXECUTE FUNCTION vigil_append_only();"
    "CREATE TABLE audit(seq bigint PRIMARY KEY, ts bigint NOT NULL, kind text NOT NULL,"
    " action_id text, data text NOT NULL, prev_mac text NOT NULL, mac text NOT NULL);"
    "CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit"
    " FOR EACH ROW EXECUTE FUNCTION vigil_append_only();"
    "CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit"
    " FOR EACH STATEMENT EXECUTE FUNCTION vigil_append_only();"
    "CREATE TABLE silences(id text COLLATE \"C\" PRIMARY KEY, matchers text NOT NULL,"
    " starts_ms bigint NOT NULL, ends_ms bigint NOT NULL, created_by text NOT NULL,"
    " comment text NOT NULL, created_ms bigint NOT NULL);"
    "CREATE TABLE policy_state(key text COLLATE \"C\" PRIMARY KEY, value bytea NOT NULL);"
    "CREATE TABLE resources(set_id integer NOT NULL, key text COLLATE \"C\" NOT NULL,"
    " kind text NOT NULL, name text NOT NULL, source text COLLATE \"C\" NOT NULL,"
    " revision text NOT NULL, status text, body text NOT NULL, updated_ms bigint NOT NULL,"
    " PRIMARY KEY(set_id, key));"
    "CREATE INDEX resources_source ON resources(set_id, source);"
    /* leases (pg_lease.c): epoch 0 is a placeholder, never a holder's */
    "CREATE TABLE leases(name text COLLATE \"C\" PRIMARY KEY, holder text NOT NULL,"
    " epoch bigint NOT NULL, expires_ms bigint NOT NULL);"
    /* the tail (pg_lease.c): one row per statement of samples written, with
     * the id of the transaction that wrote it */
    "CREATE TABLE tail_log(xid xid8 NOT NULL DEFAULT pg_current_xact_id(), id bigserial,"
    " ms bigint NOT NULL, series bigint[] NOT NULL, ts bigint[] NOT NULL,"
    " value float8[] NOT NULL, error text[] NOT NULL, PRIMARY KEY(xid, id));"
    "CREATE INDEX tail_log_ms ON tail_log(ms);"
    /* kept an hour at most: stored as is, not compressed (cheaper to write) */
    "ALTER TABLE tail_log ALTER COLUMN series SET STORAGE EXTERNAL,"
    " ALTER COLUMN ts SET STORAGE EXTERNAL, ALTER COLUMN value SET STORAGE EXTERNAL,"
    " ALTER COLUMN error SET STORAGE EXTERNAL;",
};

#define PG_ACTION_COLS                                                                    \
    "id, requested_ms, action, target, params, reason, policy, series, dry_run, status, " \
    "result_reason, output, duration_ms, updated_ms, audit_seq, audit_hash"
#define PG_RES_COLS "key, kind, name, source, revision, status, body, updated_ms"

static const char *const stmt_sql[PG_STMT_COUNT] = {
    [PG_BATCH_INSERT] = "INSERT INTO ingest_batches(agent, batch_id, received_ms)"
                        " VALUES($1, $2, $3) ON CONFLICT(agent, batch_id) DO NOTHING",
    /* $1, $2: text arrays of names and tags */
    [PG_SERIES_FIND] = "SELECT s.id, k.i FROM unnest($1::text[], $2::text[]) WITH ORDINALITY"
                       " AS k(name, tags, i) JOIN series s ON s.name = k.name AND s.tags = k.tags",
    /* the created ones, with their ordinality in the arrays; in key order,
     * so that sessions creating the same series lock them in one order */
    [PG_SERIES_INSERT] = "WITH k AS (SELECT * FROM unnest($1::text[], $2::text[]) WITH ORDINALITY"
                         " AS k(name, tags, i)), ins AS (INSERT INTO series(name, tags)"
                         " SELECT name, tags FROM k ORDER BY name COLLATE \"C\", tags COLLATE \"C\""
                         " ON CONFLICT(name, tags) DO NOTHING RETURNING id, name, tags)"
                         " SELECT ins.id, k.i FROM ins JOIN k ON k.name = ins.name"
                         " AND k.tags = ins.tags",
    /* the samples, and the same arrays as one row of the tail */
    [PG_SAMPLES_UPSERT] = "WITH t AS (INSERT INTO tail_log(ms, series, ts, value, error)"
                          " VALUES($5, $1::bigint[], $2::bigint[], $3::float8[], $4::text[]))"
                          " INSERT INTO samples(series_id, ts, value, error) SELECT * FROM"
                          " unnest($1::bigint[], $2::bigint[], $3::float8[], $4::text[])"
                          " ON CONFLICT(series_id, ts) DO UPDATE SET value = EXCLUDED.value,"
                          " error = EXCLUDED.error",
    [PG_SAMPLES_UPSERT_NO_TAIL] = "INSERT INTO samples(series_id, ts, value, error) SELECT * FROM"
                                  " unnest($1::bigint[], $2::bigint[], $3::float8[], $4::text[])"
                                  " ON CONFLICT(series_id, ts) DO UPDATE SET value ="
                                  " EXCLUDED.value, error = EXCLUDED.error",
    [PG_SERIES_ALL] = "SELECT id, name, tags FROM series ORDER BY name, tags",
    [PG_SERIES_BY_NAME] = "SELECT id, name, tags FROM series WHERE name = $1 ORDER BY tags",
    [PG_RAW] = "SELECT ts, value, error FROM samples WHERE series_id = $1 AND ts >= $2"
               " AND ts < $3 ORDER BY ts LIMIT $4",
    /* $4 step, $5 aggregate (vigil_store_agg), $6 limit; failed collections skipped */
    [PG_AGG] = "SELECT b, CASE $5::int WHEN 0 THEN avg(value) WHEN 1 THEN min(value)"
               " WHEN 2 THEN max(value) WHEN 3 THEN sum(value) WHEN 4 THEN count(*)::float8"
               " ELSE (array_agg(value ORDER BY ts DESC))[1] END FROM (SELECT"
               " ts - ((ts % $4::bigint) + $4::bigint) % $4::bigint AS b, ts, value FROM samples"
               " WHERE series_id = $1 AND ts >= $2 AND ts < $3 AND error IS NULL) x"
               " GROUP BY b ORDER BY b LIMIT $6",
    [PG_LATEST] = "SELECT ts, value, error FROM samples WHERE series_id = $1 AND ts >= $2"
                  " AND ts < $3 ORDER BY ts DESC LIMIT 1",
    /* the day partitions: relname samples_d<day> */
    [PG_PART_LIST] =
        "SELECT substr(c.relname, 10)::bigint FROM pg_inherits i"
        " JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'samples'::regclass AND c.relname ~ '^samples_d-?[0-9]+$'"
        " ORDER BY 1",
    [PG_PART_COUNT_OLD] = "SELECT count(*) FROM samples WHERE ts < $1",
    [PG_RET_DELETE_BATCHES] = "DELETE FROM ingest_batches WHERE id IN (SELECT id FROM"
                              " ingest_batches WHERE received_ms < $1 ORDER BY id LIMIT $2)",
    [PG_RET_DELETE_SAMPLES] = "DELETE FROM samples WHERE (series_id, ts) IN (SELECT series_id,"
                              " ts FROM samples WHERE ts < $1 LIMIT $2)",
    [PG_ACTION_INSERT] = "INSERT INTO actions(" PG_ACTION_COLS ") VALUES($1, $2, $3, $4, $5,"
                         " $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
                         " ON CONFLICT(id) DO NOTHING",
    [PG_ACTION_UPDATE] = "UPDATE actions SET status = $2, result_reason = $3, output = $4,"
                         " duration_ms = $5, updated_ms = $6, audit_seq = $7, audit_hash = $8"
                         " WHERE id = $1",
    [PG_ACTION_GET] = "SELECT " PG_ACTION_COLS " FROM actions WHERE id = $1",
    [PG_ACTION_LIST] = "SELECT " PG_ACTION_COLS " FROM actions WHERE requested_ms >= $1"
                       " AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR"
                       " target = $3) AND ($4::text IS NULL OR policy = $4)"
                       " ORDER BY requested_ms, id LIMIT $5",
    [PG_DECISION_INSERT] = "INSERT INTO decisions(ts, policy, series, target, action, action_id,"
                           " decision, reason) VALUES($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    [PG_DECISION_LIST] = "SELECT id, ts, policy, series, target, action, action_id, decision,"
                         " reason FROM decisions WHERE id > $1 AND ts >= $2"
                         " AND ($3::text IS NULL OR target = $3) AND ($4::text IS NULL OR"
                         " policy = $4) ORDER BY id LIMIT $5",
    [PG_AUDIT_INSERT] = "INSERT INTO audit(seq, ts, kind, action_id, data, prev_mac, mac)"
                        " VALUES($1, $2, $3, $4, $5, $6, $7) ON CONFLICT(seq) DO NOTHING",
    [PG_AUDIT_LIST] = "SELECT seq, ts, kind, action_id, data, prev_mac, mac FROM audit"
                      " WHERE seq > $1 AND ts >= $2 ORDER BY seq LIMIT $3",
    [PG_AUDIT_LAST] = "SELECT seq, ts, kind, action_id, data, prev_mac, mac FROM audit"
                      " ORDER BY seq DESC LIMIT 1",
    [PG_SILENCE_PUT] = "INSERT INTO silences(id, matchers, starts_ms, ends_ms, created_by,"
                       " comment, created_ms) VALUES($1, $2, $3, $4, $5, $6, $7)"
                       " ON CONFLICT(id) DO UPDATE SET matchers = EXCLUDED.matchers,"
                       " starts_ms = EXCLUDED.starts_ms, ends_ms = EXCLUDED.ends_ms,"
                       " created_by = EXCLUDED.created_by, comment = EXCLUDED.comment,"
                       " created_ms = EXCLUDED.created_ms",
    [PG_SILENCE_DELETE] = "DELETE FROM silences WHERE id = $1",
    [PG_SILENCE_LIST] = "SELECT id, matchers, starts_ms, ends_ms, created_by, comment,"
                        " created_ms FROM silences WHERE $1::bigint <= 0 OR (starts_ms <= $1"
                        " AND $1 < ends_ms) ORDER BY starts_ms, id",
    [PG_STATE_PUT] = "INSERT INTO policy_state(key, value) VALUES($1, $2)"
                     " ON CONFLICT(key) DO UPDATE SET value = EXCLUDED.value",
    [PG_STATE_GET] = "SELECT key, value FROM policy_state WHERE key = $1",
    [PG_STATE_DELETE] = "DELETE FROM policy_state WHERE key = $1",
    /* keys starting with $1: the byte comparison of the "C" collation */
    [PG_STATE_LIST] = "SELECT key, value FROM policy_state WHERE key >= $1 AND"
                      " left(key, length($1)) = $1 ORDER BY key",
    [PG_RES_DELETE_SET] = "DELETE FROM resources WHERE set_id = $1",
    [PG_RES_DELETE_SOURCE] = "DELETE FROM resources WHERE set_id = $1 AND source = $2",
    [PG_RES_PUT] = "INSERT INTO resources(set_id, " PG_RES_COLS ")"
                   " VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT(set_id, key) DO UPDATE"
                   " SET kind = EXCLUDED.kind, name = EXCLUDED.name, source = EXCLUDED.source,"
                   " revision = EXCLUDED.revision, status = EXCLUDED.status, body = EXCLUDED.body,"
                   " updated_ms = EXCLUDED.updated_ms",
    [PG_RES_DELETE] = "DELETE FROM resources WHERE set_id = $1 AND key = $2",
    [PG_RES_GET] = "SELECT " PG_RES_COLS " FROM resources WHERE set_id = $1 AND key = $2",
    [PG_RES_LIST] = "SELECT " PG_RES_COLS " FROM resources WHERE set_id = $1 ORDER BY key",
#define PG_NOW_MS "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
    [PG_LEASE_SEED] = "INSERT INTO leases(name, holder, epoch, expires_ms) VALUES($1, '', 0, 0)"
                      " ON CONFLICT(name) DO NOTHING",
    [PG_LEASE_LOCK] = "SELECT holder, epoch, expires_ms, " PG_NOW_MS " FROM leases"
                      " WHERE name = $1 FOR UPDATE",
    [PG_LEASE_SET] = "UPDATE leases SET holder = $2, epoch = $3, expires_ms = $4 WHERE name = $1",
    [PG_LEASE_RELEASE] = "UPDATE leases SET expires_ms = 0 WHERE name = $1 AND"
                         " holder = $2 AND expires_ms > " PG_NOW_MS,
    [PG_LEASE_GET] = "SELECT holder, epoch, expires_ms, " PG_NOW_MS " FROM leases"
                     " WHERE name = $1 AND epoch > 0",
    [PG_TAIL_NOW] = "SELECT pg_snapshot_xmin(pg_current_snapshot())",
    /* the samples of the rows after cursor ($1, $2, $3 samples of row ($1,
     * $2) returned already) of transactions that ended before any still
     * running began: no transaction that commits later has a smaller id */
    [PG_TAIL_READ] = "SELECT l.xid, l.id, u.ord, s.name, s.tags, u.ts, u.value, u.error"
                     " FROM tail_log l CROSS JOIN LATERAL unnest(l.series, l.ts, l.value, l.error)"
                     " WITH ORDINALITY AS u(series_id, ts, value, error, ord)"
                     " JOIN series s ON s.id = u.series_id"
                     " WHERE l.xid < pg_snapshot_xmin(pg_current_snapshot())"
                     " AND (l.xid, l.id) >= ($1::xid8, $2::bigint)"
                     " AND NOT (l.xid = $1::xid8 AND l.id = $2::bigint AND u.ord <= $3::bigint)"
                     " ORDER BY l.xid, l.id, u.ord LIMIT $4",
    [PG_TAIL_TRIM] = "DELETE FROM tail_log WHERE ms < $1",
};

/* ---- helpers -------------------------------------------------------------------- */

const char *vigil__pg_i64(char *buf, int64_t v)
{
    snprintf(buf, 24, "%lld", (long long)v);
    return buf;
}

int vigil__pg_array_text(vigil_buf *b, const char *text, size_t len)
{
    if (!text)
        return vigil__buf_puts(b, "NULL");
    if (vigil__buf_grow(b, len * 2 + 2) != 0)
        return vigil__error_oom();
    char *p = b->ptr + b->size;
    *p++ = '"';
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '"' || text[i] == '\\')
            *p++ = '\\';
        *p++ = text[i];
    }
    *p++ = '"';
    b->size = (size_t)(p - b->ptr);
    b->ptr[b->size] = '\0';
    return VIGIL_OK;
}

static PGconn *cur_conn(vigil__pg *s)
{
    return s->pool[s->cur].c;
}

/* The SQLSTATE class of a result, or "" */
static const char *sqlstate(const PGresult *res)
{
    const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return st ? st : "";
}

int vigil__pg_conn_lost(vigil__pg *s)
{
    PGconn *c = cur_conn(s);
    return !c || PQstatus(c) != CONNECTION_OK;
}

int vigil__pg_error(vigil__pg *s, const PGresult *res, const char *op)
{
    PGconn *c = s->pool ? cur_conn(s) : NULL;
    const char *state = sqlstate(res);
    int code = VIGIL_ERROR;
    const char *hint = "";
    if (!c || PQstatus(c) != CONNECTION_OK || strncmp(state, "08", 2) == 0 ||
        strncmp(state, "57P", 3) == 0) {
        code = VIGIL_EIO;
        hint = " (the connection to the server was lost)";
    } else if (strcmp(state, "53100") == 0) {
        code = VIGIL_EFULL;
    } else if (strcmp(state, "53200") == 0) {
        return vigil__error_oom();
    } else if (strcmp(state, "25006") == 0) {
        code = VIGIL_EREADONLY;
    } else if (strncmp(state, "23", 2) == 0) {
        code = VIGIL_ECONFLICT;
    } else if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
               strcmp(state, "55P03") == 0 || strcmp(state, "57014") == 0) {
        code = VIGIL_EBUSY;
        hint = " (locked by another session past the busy timeout)";
    } else if (strncmp(state, "XX", 2) == 0) {
        code = VIGIL_ECORRUPT;
    } else if (strcmp(state, "54000") == 0) {
        code = VIGIL_ELIMIT;
    } else if (strncmp(state, "53", 2) == 0 || strncmp(state, "58", 2) == 0) {
        code = VIGIL_EIO;
    }
    /* the primary message: one line, without the statement's position */
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if ((!msg || !*msg) && res)
        msg = PQresultErrorMessage(res);
    if ((!msg || !*msg) && c)
        msg = PQerrorMessage(c);
    if (!msg || !*msg)
        msg = "unknown error";
    size_t len = strlen(msg);
    while (len && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
        len--;
    return vigil__error_set(code, "postgresql: %s: %.*s%s (%s)", op, (int)(len > 400 ? 400 : len),
                            msg, hint, s->display);
}

int vigil__pg_check_writable(vigil__pg *s, const char *op)
{
    if (s->read_only)
        return vigil__error_set(VIGIL_EREADONLY, "postgresql: %s: the store is open read-only (%s)",
                                op, s->display);
    return VIGIL_OK;
}

/* ---- the deadline of a statement ------------------------------------------------ */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Closes the call's connection after a statement ran past its deadline: it
 * is in an unknown state (a statement may still run on the server, which
 * notices the closed socket when it next writes to it). No cancel request:
 * libpq's PQcancel() before version 17 waits for the server without a time
 * limit, the hang this avoids. The next call reconnects. */
static void conn_abandon(vigil__pg *s)
{
    pg_conn *pc = &s->pool[s->cur];
    if (pc->c)
        PQfinish(pc->c);
    pc->c = NULL;
    memset(pc->prepared, 0, sizeof(pc->prepared));
}

int vigil__pg_await(vigil__pg *s, int sent, PGresult **out, const char *op)
{
    *out = NULL;
    s->timed_out = 0;
    PGconn *c = s->pool[s->cur].c;
    if (!c || !sent)
        return VIGIL_OK;
    int64_t deadline = mono_ms() + s->timeout_ms;
    PGresult *last = NULL, *err = NULL;
    for (;;) {
        int flushing = PQflush(c);
        if (flushing < 0)
            break;
        if (!flushing) {
            if (!PQconsumeInput(c))
                break;
            while (!PQisBusy(c)) {
                PGresult *r = PQgetResult(c);
                if (!r) {
                    *out = err ? err : last;
                    if (err)
                        PQclear(last);
                    return VIGIL_OK;
                }
                ExecStatusType st = PQresultStatus(r);
                if ((st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE) && !err) {
                    err = r;
                } else {
                    PQclear(last);
                    last = r;
                }
            }
        }
        int64_t left = deadline - mono_ms();
        if (left <= 0) {
            PQclear(last);
            PQclear(err);
            conn_abandon(s);
            s->timed_out = 1;
            return vigil__error_set(VIGIL_ETIMEOUT,
                                    "postgresql: %s: no answer from the server within %lld ms "
                                    "(timeout=); the connection was closed (%s)",
                                    op, (long long)s->timeout_ms, s->display);
        }
        struct pollfd pfd = {PQsocket(c), (short)(POLLIN | (flushing ? POLLOUT : 0)), 0};
        if (pfd.fd < 0)
            break;
        int n = poll(&pfd, 1, (int)left);
        if (n < 0 && errno != EINTR)
            break;
        if (n > 0 && flushing && (pfd.revents & (POLLIN | POLLERR | POLLHUP)) && !PQconsumeInput(c))
            break;
    }
    /* the connection failed: its error result (libpq does not wait on a
     * broken connection) */
    PQclear(last);
    PQclear(err);
    PGresult *r = PQgetResult(c);
    *out = r;
    while (r && (r = PQgetResult(c)) != NULL)
        PQclear(r);
    return VIGIL_OK;
}

/* ---- connections ----------------------------------------------------------------- */

/* The server's notices (NOTICE, WARNING) go to the store's logger at debug
 * level; libpq would print them. */
static void on_notice(void *arg, const char *message)
{
    vigil__pg *s = arg;
    size_t len = strlen(message);
    while (len && message[len - 1] == '\n')
        len--;
    vigil__log(&s->logger, VIGIL_LOG_DEBUG, "store", "server notice", "server=%s notice=\"%.*s\"",
               s->display, (int)(len > 300 ? 300 : len), message);
}

/* Opens pool[i] (closing what it held). */
static int conn_open(vigil__pg *s, size_t i)
{
    pg_conn *pc = &s->pool[i];
    if (pc->c)
        PQfinish(pc->c);
    memset(pc->prepared, 0, sizeof(pc->prepared));
    /* Defaults before the URL (its parameters override them), vigil's
     * settings after it (they override the URL's). */
    char timeout[24];
    const char *keys[16], *vals[16];
    int n = 0;
    keys[n] = "application_name", vals[n++] = "vigil";
    keys[n] = "connect_timeout", vals[n++] = vigil__pg_i64(timeout, s->connect_timeout_s);
    /* a dead peer or a partition is noticed within about 10 s on an idle
     * or a sending connection (TCP only) */
    keys[n] = "keepalives", vals[n++] = "1";
    keys[n] = "keepalives_idle", vals[n++] = "5";
    keys[n] = "keepalives_interval", vals[n++] = "2";
    keys[n] = "keepalives_count", vals[n++] = "3";
    keys[n] = "tcp_user_timeout", vals[n++] = "10000";
    keys[n] = "dbname", vals[n++] = s->conninfo;
    keys[n] = "client_encoding", vals[n++] = "UTF8";
    keys[n] = "options", vals[n++] = s->opts_line;
    if (s->password)
        keys[n] = "password", vals[n++] = s->password;
    keys[n] = NULL, vals[n] = NULL;
    /* connecting waits at most the shorter of timeout= and connect_timeout=
     * (libpq applies the latter only to a blocking connect) */
    int64_t budget = s->timeout_ms;
    if (s->connect_timeout_s > 0 && s->connect_timeout_s * 1000 < budget)
        budget = s->connect_timeout_s * 1000;
    int64_t deadline = mono_ms() + budget;
    pc->c = PQconnectStartParams(keys, vals, 1);
    if (!pc->c)
        return vigil__error_oom();
    PostgresPollingStatusType ps = PGRES_POLLING_WRITING;
    while (PQstatus(pc->c) != CONNECTION_BAD && ps != PGRES_POLLING_OK &&
           ps != PGRES_POLLING_FAILED) {
        int64_t left = deadline - mono_ms();
        if (left <= 0) {
            PQfinish(pc->c);
            pc->c = NULL;
            return vigil__error_set(VIGIL_ETIMEOUT,
                                    "postgresql: cannot connect to %s: no answer from the server "
                                    "within %lld ms (connect_timeout=, timeout=)",
                                    s->display, (long long)budget);
        }
        struct pollfd pfd = {PQsocket(pc->c),
                             (short)(ps == PGRES_POLLING_READING ? POLLIN : POLLOUT), 0};
        if (pfd.fd < 0)
            break;
        int ready = poll(&pfd, 1, (int)left);
        if (ready < 0 && errno != EINTR)
            break;
        if (ready > 0)
            ps = PQconnectPoll(pc->c);
    }
    if (PQstatus(pc->c) != CONNECTION_OK) {
        const char *msg = PQerrorMessage(pc->c);
        size_t len = strlen(msg);
        while (len && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
            len--;
        int code = strstr(msg, "does not exist") ? VIGIL_ENOTFOUND : VIGIL_EIO;
        int rc = vigil__error_set(code, "postgresql: cannot connect to %s: %.*s", s->display,
                                  (int)(len > 400 ? 400 : len), msg);
        PQfinish(pc->c);
        pc->c = NULL;
        return rc;
    }
    PQsetNoticeProcessor(pc->c, on_notice, s);
    /* statements are sent without blocking and waited for until their
     * deadline (vigil__pg_await) */
    if (PQsetnonblocking(pc->c, 1) != 0) {
        int rc = vigil__error_set(VIGIL_EIO, "postgresql: cannot connect to %s: %s", s->display,
                                  "cannot make the connection non-blocking");
        PQfinish(pc->c);
        pc->c = NULL;
        return rc;
    }
    return VIGIL_OK;
}

/* Whether a connection is usable: open, and the server has not closed it
 * while it was idle (a restart or a terminated backend: the socket reads
 * EOF; reading it here costs one non-blocking read). */
static int conn_healthy(PGconn *c)
{
    if (!c || PQstatus(c) != CONNECTION_OK)
        return 0;
    if (PQtransactionStatus(c) != PQTRANS_IDLE)
        return 0;
    if (!PQconsumeInput(c))
        return 0;
    PGnotify *n;
    while ((n = PQnotifies(c)) != NULL)
        PQfreemem(n);
    return PQstatus(c) == CONNECTION_OK;
}

static int reconnect(vigil__pg *s, size_t i)
{
    int rc = conn_open(s, i);
    if (rc == VIGIL_OK) {
        s->reconnects++;
        vigil__log(&s->logger, VIGIL_LOG_INFO, "store", "reconnected", "server=%s connection=%zu",
                   s->display, i);
    }
    return rc;
}

int vigil__pg_enter(vigil__pg *s)
{
    s->in_txn = 0;
    s->delivered = 0;
    s->timed_out = 0;
    /* The first healthy connection, starting after the last one used. */
    for (size_t k = 0; k < s->npool; k++) {
        size_t i = (s->cur + k) % s->npool;
        if (conn_healthy(s->pool[i].c)) {
            s->cur = i;
            return VIGIL_OK;
        }
    }
    /* None: the server restarted or failed over. Reconnect the current one;
     * the others are re-established when a call finds them broken. */
    return reconnect(s, s->cur);
}

/* Prepares statement id on the call's connection, once per connection. */
static int prepare(vigil__pg *s, pg_stmt_id id)
{
    pg_conn *pc = &s->pool[s->cur];
    if (pc->prepared[id])
        return VIGIL_OK;
    char name[16];
    snprintf(name, sizeof(name), "v%d", (int)id);
    PGresult *res = NULL;
    int rc = vigil__pg_await(s, pc->c && PQsendPrepare(pc->c, name, stmt_sql[id], 0, NULL), &res,
                             "preparing a statement");
    if (rc)
        return rc;
    if (!res || PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = vigil__pg_error(s, res, "preparing a statement");
    else
        pc->prepared[id] = 1;
    PQclear(res);
    return rc;
}

/* A lost connection and a retry it allows: reconnects; returns 1 to retry. */
static int may_retry(vigil__pg *s, pg_retry retry, int attempt)
{
    if (attempt > 0 || retry != PG_RETRY || s->in_txn || s->delivered || s->timed_out ||
        !vigil__pg_conn_lost(s))
        return 0;
    if (reconnect(s, s->cur) != VIGIL_OK)
        return 0;
    vigil__log(&s->logger, VIGIL_LOG_DEBUG, "store", "retrying a statement on a new connection",
               "server=%s", s->display);
    return 1;
}

int vigil__pg_exec(vigil__pg *s, pg_stmt_id id, int nparams, const char *const *values,
                   const int *lengths, const int *formats, int binary, pg_retry retry,
                   PGresult **out, const char *op)
{
    *out = NULL;
    for (int attempt = 0;; attempt++) {
        int rc = prepare(s, id);
        if (rc) {
            if (may_retry(s, retry, attempt))
                continue;
            return rc;
        }
        char name[16];
        snprintf(name, sizeof(name), "v%d", (int)id);
        PGconn *c = cur_conn(s);
        PGresult *res = NULL;
        rc = vigil__pg_await(
            s, c && PQsendQueryPrepared(c, name, nparams, values, lengths, formats, binary ? 1 : 0),
            &res, op);
        if (rc)
            return rc;
        ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
            *out = res;
            return VIGIL_OK;
        }
        rc = vigil__pg_error(s, res, op);
        PQclear(res);
        if (may_retry(s, retry, attempt))
            continue;
        return rc;
    }
}

int vigil__pg_sql(vigil__pg *s, const char *sql, pg_retry retry, PGresult **out, const char *op)
{
    if (out)
        *out = NULL;
    for (int attempt = 0;; attempt++) {
        PGconn *c = cur_conn(s);
        PGresult *res = NULL;
        int rc = vigil__pg_await(s, c && PQsendQuery(c, sql), &res, op);
        if (rc)
            return rc;
        ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
            if (out)
                *out = res;
            else
                PQclear(res);
            return VIGIL_OK;
        }
        rc = vigil__pg_error(s, res, op);
        PQclear(res);
        if (may_retry(s, retry, attempt))
            continue;
        return rc;
    }
}

int vigil__pg_begin(vigil__pg *s, const char *op)
{
    /* Nothing ran yet in this transaction: a lost connection is retried. */
    int rc = vigil__pg_sql(s, "BEGIN", PG_RETRY, NULL, op);
    if (rc == VIGIL_OK)
        s->in_txn = 1;
    return rc;
}

int vigil__pg_commit(vigil__pg *s, const char *op)
{
    int rc = vigil__pg_sql(s, "COMMIT", PG_NO_RETRY, NULL, op);
    if (rc == VIGIL_OK) {
        s->in_txn = 0;
        return rc;
    }
    if (vigil__pg_conn_lost(s))
        vigil__error_prefix("the outcome of the commit is unknown");
    return rc;
}

void vigil__pg_rollback(vigil__pg *s)
{
    s->in_txn = 0;
    PGconn *c = cur_conn(s);
    if (!c || PQstatus(c) != CONNECTION_OK || PQtransactionStatus(c) == PQTRANS_IDLE)
        return;
    /* a failure leaves the connection broken or closed: the next call
     * reconnects; the error of the call that rolls back stays the thread's */
    int code = vigil_error_last()->code;
    char msg[1024];
    snprintf(msg, sizeof(msg), "%s", vigil_error_last()->message);
    PGresult *res = NULL;
    if (vigil__pg_await(s, PQsendQuery(c, "ROLLBACK"), &res, "rolling back") != VIGIL_OK)
        vigil__error_set(code, "%s", msg);
    PQclear(res);
}

/* ---- URL and credentials ------------------------------------------------------- */

/* Reads a password file: its first line, at most 1 KiB; the file must not
 * be readable by group or others (as libpq requires of ~/.pgpass). */
static int read_password_file(const char *path, char **out)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return vigil__error_set(VIGIL_EIO, "postgresql: cannot open password_file %s: %s", path,
                                strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return vigil__error_set(VIGIL_EINVAL, "postgresql: password_file %s is not a regular file",
                                path);
    }
    if (sb.st_mode & 077) {
        close(fd);
        return vigil__error_set(VIGIL_EINVAL,
                                "postgresql: password_file %s is readable by group or others "
                                "(mode %03o); chmod 600 it",
                                path, (unsigned)(sb.st_mode & 0777));
    }
    char buf[1025];
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    if (n < 0)
        return vigil__error_set(VIGIL_EIO, "postgresql: cannot read password_file %s: %s", path,
                                strerror(errno));
    if (n == (ssize_t)sizeof(buf))
        return vigil__error_set(VIGIL_ELIMIT,
                                "postgresql: password_file %s is larger than 1024 bytes", path);
    size_t len = strcspn(buf, "\r\n");
    if ((size_t)n < len)
        len = (size_t)n;
    buf[len] = '\0';
    if (len == 0) {
        vigil__free_wiped(vigil__strdup(buf));
        return vigil__error_set(VIGIL_EINVAL, "postgresql: password_file %s is empty", path);
    }
    *out = vigil__strdup(buf);
    memset(buf, 0, sizeof(buf));
    return *out ? VIGIL_OK : vigil__error_oom();
}

typedef struct pg_url {
    vigil_buf libpq; /* the URL without vigil's options */
    long pool;       /* 0: unset */
    char password_env[128];
    char password_file[1024];
    char schema[64];
    int no_tail; /* tail=off */
    int64_t connect_timeout_s;
    int64_t timeout_ms;
    char display[300];
} pg_url;

static int valid_ident(const char *s)
{
    if (!*s || strlen(s) > 63 || !((*s >= 'a' && *s <= 'z') || *s == '_'))
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

#define PG_PASSWORD_REFUSED                                                                   \
    "postgresql: the store URL holds a password; keep credentials out of configuration: use " \
    "PGPASSWORD, PGPASSFILE, password_env=VAR or password_file=PATH"

/* Splits vigil's options (pool, password_env, password_file, schema) off the
 * URL; refuses a password in it. */
static int parse_url(pg_url *u, const char *url)
{
    const char *rest = strchr(url, ':') + 1;
    if (strncmp(rest, "//", 2) != 0)
        return vigil__error_set(VIGIL_EINVAL,
                                "postgresql: \"%.200s\" is not a PostgreSQL URL (expected "
                                "postgresql://[USER@]HOST[:PORT]/DATABASE[?OPTIONS])",
                                url);
    const char *auth = rest + 2;
    const char *q = strchr(auth, '?');
    size_t alen = q ? (size_t)(q - auth) : strlen(auth);
    const char *slash = memchr(auth, '/', alen);
    size_t hlen = slash ? (size_t)(slash - auth) : alen;
    const char *at = NULL;
    for (size_t i = 0; i < hlen; i++)
        if (auth[i] == '@')
            at = auth + i;
    if (at && memchr(auth, ':', (size_t)(at - auth)))
        return vigil__error_set(VIGIL_EINVAL, PG_PASSWORD_REFUSED);
    const char *host = at ? at + 1 : auth;
    size_t dlen = alen - (size_t)(host - auth);
    snprintf(u->display, sizeof(u->display), "%.*s", (int)(dlen > 200 ? 200 : dlen), host);
    if (!*u->display || u->display[0] == '/')
        snprintf(u->display, sizeof(u->display), "local%.*s", (int)(dlen > 200 ? 200 : dlen), host);
    if (vigil__buf_put(&u->libpq, url, (size_t)(auth - url) + alen) != 0)
        return vigil__error_oom();
    int first = 1;
    while (q) {
        const char *kv = q + 1;
        q = strchr(kv, '&');
        size_t len = q ? (size_t)(q - kv) : strlen(kv);
        if (len == 0)
            continue;
        const char *eq = memchr(kv, '=', len);
        if (!eq)
            return vigil__error_set(VIGIL_EINVAL, "postgresql: URL option \"%.*s\" has no value",
                                    (int)(len > 100 ? 100 : len), kv);
        size_t kl = (size_t)(eq - kv), vl = len - kl - 1;
        char val[1024];
        if (vl >= sizeof(val))
            return vigil__error_set(VIGIL_EINVAL, "postgresql: URL option \"%.*s\": value too long",
                                    (int)(kl > 100 ? 100 : kl), kv);
        memcpy(val, eq + 1, vl);
        val[vl] = '\0';
#define KEY_IS(k) (kl == sizeof(k) - 1 && memcmp(kv, k, kl) == 0)
        if (KEY_IS("password") || KEY_IS("sslpassword"))
            return vigil__error_set(VIGIL_EINVAL, PG_PASSWORD_REFUSED);
        if (KEY_IS("pool")) {
            char *end = NULL;
            errno = 0;
            long n = strtol(val, &end, 10);
            if (!*val || *end || errno || n < 1 || n > VIGIL__PG_POOL_MAX)
                return vigil__error_set(VIGIL_EINVAL,
                                        "postgresql: URL option pool=%s: expected a number of "
                                        "connections from 1 to %d",
                                        val, VIGIL__PG_POOL_MAX);
            u->pool = n;
        } else if (KEY_IS("password_env")) {
            if (!*val || vl >= sizeof(u->password_env))
                return vigil__error_set(VIGIL_EINVAL,
                                        "postgresql: URL option password_env=%s: expected the "
                                        "name of an environment variable",
                                        val);
            memcpy(u->password_env, val, vl + 1);
        } else if (KEY_IS("password_file")) {
            if (!*val)
                return vigil__error_set(VIGIL_EINVAL,
                                        "postgresql: URL option password_file needs a path");
            memcpy(u->password_file, val, vl + 1);
        } else if (KEY_IS("tail")) {
            if (strcmp(val, "on") == 0)
                u->no_tail = 0;
            else if (strcmp(val, "off") == 0)
                u->no_tail = 1;
            else
                return vigil__error_set(VIGIL_EINVAL,
                                        "postgresql: URL option tail=%s: expected on or off", val);
        } else if (KEY_IS("timeout")) {
            /* milliseconds: N, Nms or Ns */
            char *end = NULL;
            errno = 0;
            long long n = strtoll(val, &end, 10);
            long long scale = 1;
            if (end && strcmp(end, "s") == 0)
                scale = 1000;
            else if (end && (strcmp(end, "ms") == 0 || *end == '\0'))
                scale = 1;
            else
                n = -1;
            if (!*val || val[0] < '0' || val[0] > '9' || errno || n < 0 ||
                n > VIGIL__PG_TIMEOUT_MAX_MS || n * scale < VIGIL__PG_TIMEOUT_MIN_MS ||
                n * scale > VIGIL__PG_TIMEOUT_MAX_MS)
                return vigil__error_set(VIGIL_EINVAL,
                                        "postgresql: URL option timeout=%.100s: expected the "
                                        "time a statement may wait for the server, from %dms to "
                                        "%ds (N or Nms: milliseconds, Ns: seconds)",
                                        val, VIGIL__PG_TIMEOUT_MIN_MS,
                                        VIGIL__PG_TIMEOUT_MAX_MS / 1000);
            u->timeout_ms = n * scale;
        } else if (KEY_IS("schema")) {
            if (!valid_ident(val))
                return vigil__error_set(
                    VIGIL_EINVAL,
                    "postgresql: URL option schema=%s: expected [a-z_][a-z0-9_]* "
                    "of at most 63 bytes",
                    val);
            memcpy(u->schema, val, vl + 1);
        } else {
            if (KEY_IS("connect_timeout")) {
                char *end = NULL;
                long n = strtol(val, &end, 10);
                if (!*val || *end || n < 0 || n > 3600)
                    return vigil__error_set(VIGIL_EINVAL,
                                            "postgresql: URL option connect_timeout=%s: expected "
                                            "seconds from 0 to 3600",
                                            val);
                u->connect_timeout_s = n;
            }
            /* libpq's own parameters pass through; it refuses unknown ones */
            if (vigil__buf_putc(&u->libpq, first ? '?' : '&') != 0 ||
                vigil__buf_put(&u->libpq, kv, len) != 0)
                return vigil__error_oom();
            first = 0;
        }
#undef KEY_IS
    }
    return VIGIL_OK;
}

/* parse_url(), then libpq's own parameters, before any connection; u->libpq
 * is the caller's to dispose of, whatever the result. */
static int parse_and_check(pg_url *u, const char *url)
{
    memset(u, 0, sizeof(*u));
    u->connect_timeout_s = 5;
    u->timeout_ms = VIGIL__PG_TIMEOUT_DEFAULT_MS;
    int rc = parse_url(u, url);
    if (rc)
        return rc;
    char *perr = NULL;
    PQconninfoOption *parsed = PQconninfoParse(u->libpq.ptr, &perr);
    if (!parsed) {
        size_t len = perr ? strlen(perr) : 0;
        while (len && perr[len - 1] == '\n')
            len--;
        rc = perr ? vigil__error_set(VIGIL_EINVAL, "postgresql: bad URL: %.*s", (int)len, perr)
                  : vigil__error_oom();
        PQfreemem(perr);
        return rc;
    }
    /* what libpq decoded: a password spelt with escapes (passw%6Frd=) is
     * one too */
    for (const PQconninfoOption *opt = parsed; opt->keyword; opt++)
        if (opt->val && *opt->val &&
            (strcmp(opt->keyword, "password") == 0 || strcmp(opt->keyword, "sslpassword") == 0))
            rc = vigil__error_set(VIGIL_EINVAL, PG_PASSWORD_REFUSED);
        else if (!rc && opt->val && strcmp(opt->keyword, "dbname") == 0 &&
                 (strchr(opt->val, '=') || strstr(opt->val, "://")))
            /* libpq does not expand a connection string in dbname= here: it
             * would be sent (and logged) as a database name, with whatever
             * password it holds */
            rc = vigil__error_set(VIGIL_EINVAL,
                                  "postgresql: URL option dbname: expected a database name, not "
                                  "a connection string (name the database in the URL's path)");
    PQconninfoFree(parsed);
    return rc;
}

int vigil__pg_url_check(const char *url)
{
    pg_url u;
    int rc = parse_and_check(&u, url);
    vigil_buf_dispose(&u.libpq);
    return rc;
}

/* ---- schema ----------------------------------------------------------------------- */

/* Creates or migrates the schema, under an advisory lock so that hubs
 * starting together do it once. */
static int migrate(vigil__pg *s)
{
    int rc = vigil__pg_begin(s, "migrating the schema");
    if (rc)
        return rc;
    PGresult *res = NULL;
    rc = vigil__pg_sql(s, "SELECT pg_advisory_xact_lock(95010706685953)", PG_NO_RETRY, NULL,
                       "migrating the schema");
    if (rc == VIGIL_OK && s->schema && !s->read_only) {
        vigil_buf sql = VIGIL_BUF_INIT;
        if (vigil__buf_printf(&sql, "CREATE SCHEMA IF NOT EXISTS %s", s->schema) != 0)
            rc = vigil__error_oom();
        else
            rc = vigil__pg_sql(s, sql.ptr, PG_NO_RETRY, NULL, "creating the schema");
        vigil_buf_dispose(&sql);
    }
    int64_t v = 0;
    if (rc == VIGIL_OK)
        rc = vigil__pg_sql(s, "SELECT to_regclass('vigil_schema') IS NOT NULL", PG_NO_RETRY, &res,
                           "reading the schema version");
    int exists = rc == VIGIL_OK && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    res = NULL;
    if (rc == VIGIL_OK && exists) {
        rc = vigil__pg_sql(s, "SELECT coalesce(max(version), 0) FROM vigil_schema", PG_NO_RETRY,
                           &res, "reading the schema version");
        if (rc == VIGIL_OK)
            v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        res = NULL;
    }
    if (rc == VIGIL_OK && v > VIGIL__PG_SCHEMA_VERSION)
        rc = vigil__error_set(VIGIL_EVERSION,
                              "postgresql: %s has schema version %lld, newer than the version %d "
                              "this library knows; use a newer vigil (nothing was changed)",
                              s->display, (long long)v, VIGIL__PG_SCHEMA_VERSION);
    if (rc == VIGIL_OK && v < VIGIL__PG_SCHEMA_VERSION && s->read_only)
        rc = vigil__error_set(VIGIL_EREADONLY,
                              "postgresql: %s has %s and the store is open read-only", s->display,
                              v == 0 ? "no vigil schema" : "a schema that needs a migration");
    if (rc == VIGIL_OK && !exists)
        rc = vigil__pg_sql(s, "CREATE TABLE vigil_schema(version integer NOT NULL)", PG_NO_RETRY,
                           NULL, "creating the schema");
    for (int64_t i = v; rc == VIGIL_OK && i < VIGIL__PG_SCHEMA_VERSION; i++)
        rc = vigil__pg_sql(s, migrations[i], PG_NO_RETRY, NULL, "migrating the schema");
    if (rc == VIGIL_OK && v < VIGIL__PG_SCHEMA_VERSION) {
        char sql[96];
        snprintf(sql, sizeof(sql), "DELETE FROM vigil_schema; INSERT INTO vigil_schema VALUES(%d)",
                 VIGIL__PG_SCHEMA_VERSION);
        rc = vigil__pg_sql(s, sql, PG_NO_RETRY, NULL, "migrating the schema");
    }
    if (rc == VIGIL_OK)
        rc = vigil__pg_commit(s, "migrating the schema");
    if (rc != VIGIL_OK) {
        vigil__pg_rollback(s);
        return rc;
    }
    if (v < VIGIL__PG_SCHEMA_VERSION)
        vigil__log(&s->logger, v == 0 ? VIGIL_LOG_DEBUG : VIGIL_LOG_INFO, "store",
                   v == 0 ? "created the schema" : "migrated the schema",
                   "server=%s from=%lld to=%d", s->display, (long long)v, VIGIL__PG_SCHEMA_VERSION);
    return VIGIL_OK;
}

/* ---- open / close ----------------------------------------------------------------- */

static void pg_close(void *h)
{
    vigil__pg *s = h;
    if (!s)
        return;
    for (size_t i = 0; s->pool && i < s->npool; i++)
        if (s->pool[i].c)
            PQfinish(s->pool[i].c);
    vigil__free(s->pool);
    vigil__pg_cache_clear(&s->cache);
    vigil__free(s->cache.slots);
    vigil__free(s->days.day);
    vigil_buf_dispose(&s->a1);
    vigil_buf_dispose(&s->a2);
    vigil_buf_dispose(&s->a3);
    vigil_buf_dispose(&s->a4);
    vigil_buf_dispose(&s->key);
    vigil_buf_dispose(&s->qkey);
    vigil_buf_dispose(&s->tagbuf);
    vigil_buf_dispose(&s->errtext);
    vigil__free(s->tags);
    vigil__free(s->rows);
    vigil__free(s->conninfo);
    vigil__free_wiped(s->password);
    vigil__free(s->schema);
    vigil__free(s->display);
    vigil__free(s->opts_line);
    vigil__free(s);
}

static int pg_open(void **out, const char *url, const char *rest, const vigil_store_options *o,
                   void *payload)
{
    (void)payload;
    (void)rest;
    *out = NULL;
    if (o->max_size_bytes)
        return vigil__error_set(VIGIL_EINVAL,
                                "postgresql: max_size_bytes is not supported (the database "
                                "server's quotas and tablespaces bound its size)");
    pg_url u;
    int rc = parse_and_check(&u, url);
    if (rc) {
        vigil_buf_dispose(&u.libpq);
        return rc;
    }
    vigil__pg *s = vigil__calloc(1, sizeof(*s));
    if (!s) {
        vigil_buf_dispose(&u.libpq);
        return vigil__error_oom();
    }
    s->conninfo = vigil__buf_detach(&u.libpq);
    s->display = vigil__strdup(u.display);
    s->schema = u.schema[0] ? vigil__strdup(u.schema) : NULL;
    s->read_only = o->read_only;
    s->no_tail = u.no_tail;
    s->logger = o->logger;
    s->cache.max = o->series_cache_max;
    s->connect_timeout_s = u.connect_timeout_s;
    s->timeout_ms = u.timeout_ms;
    s->npool = u.pool ? (size_t)u.pool : VIGIL__PG_POOL_DEFAULT;
    s->pool = vigil__calloc(s->npool, sizeof(*s->pool));
    vigil_buf opts = VIGIL_BUF_INIT;
    if (!s->conninfo || !s->display || (u.schema[0] && !s->schema) || !s->pool ||
        vigil__buf_printf(&opts, "-c lock_timeout=%lld -c statement_timeout=0",
                          (long long)o->busy_timeout_ms) != 0 ||
        (s->schema && vigil__buf_printf(&opts, " -c search_path=%s", s->schema) != 0) ||
        (o->synchronous == VIGIL_STORE_SYNC_FULL &&
         vigil__buf_puts(&opts, " -c synchronous_commit=on") != 0) ||
        (s->read_only && vigil__buf_puts(&opts, " -c default_transaction_read_only=on") != 0)) {
        vigil_buf_dispose(&opts);
        pg_close(s);
        return vigil__error_oom();
    }
    s->opts_line = vigil__buf_detach(&opts);
    if (!s->opts_line) {
        pg_close(s);
        return vigil__error_oom();
    }
    if (u.password_env[0]) {
        const char *pw = getenv(u.password_env);
        if (!pw || !*pw) {
            rc = vigil__error_set(VIGIL_EINVAL,
                                  "postgresql: password_env=%s: the environment variable is not "
                                  "set",
                                  u.password_env);
        } else if (!(s->password = vigil__strdup(pw))) {
            rc = vigil__error_oom();
        }
    } else if (u.password_file[0]) {
        rc = read_password_file(u.password_file, &s->password);
    }
    for (size_t i = 0; rc == VIGIL_OK && i < s->npool; i++)
        rc = conn_open(s, i);
    if (rc == VIGIL_OK && PQserverVersion(s->pool[0].c) < 130000)
        rc = vigil__error_set(VIGIL_EUNSUPPORTED,
                              "postgresql: %s runs server version %d; vigil needs 13 or newer",
                              s->display, PQserverVersion(s->pool[0].c));
    if (rc == VIGIL_OK)
        rc = migrate(s);
    if (rc) {
        pg_close(s);
        return rc;
    }
    vigil__log(&s->logger, VIGIL_LOG_DEBUG, "store", "opened", "server=%s pool=%zu read_only=%d",
               s->display, s->npool, s->read_only);
    *out = s;
    return VIGIL_OK;
}

static const vigil_store_type g_pg_type = {
    VIGIL_STORE_TYPE_VERSION,
    "postgresql",
    NULL,
    NULL,
    pg_open,
    pg_close,
    vigil__pg_write,
    vigil__pg_query,
    vigil__pg_series_list,
    vigil__pg_latest,
    vigil__pg_action_put,
    vigil__pg_action_update,
    vigil__pg_action_get,
    vigil__pg_action_list,
    vigil__pg_decision_append,
    vigil__pg_decision_list,
    vigil__pg_audit_append,
    vigil__pg_audit_list,
    vigil__pg_audit_last,
    vigil__pg_silence_put,
    vigil__pg_silence_delete,
    vigil__pg_silence_list,
    vigil__pg_state_put,
    vigil__pg_state_get,
    vigil__pg_state_delete,
    vigil__pg_state_list,
    vigil__pg_resource_replace,
    vigil__pg_resource_put,
    vigil__pg_resource_delete,
    vigil__pg_resource_list,
    vigil__pg_retain,
    vigil__pg_write_group,
    vigil__pg_lease_acquire,
    vigil__pg_lease_release,
    vigil__pg_lease_get,
    vigil__pg_tail,
};

static const vigil_store_type g_postgres_type = {
    VIGIL_STORE_TYPE_VERSION,
    "postgres",
    NULL,
    NULL,
    pg_open,
    pg_close,
    vigil__pg_write,
    vigil__pg_query,
    vigil__pg_series_list,
    vigil__pg_latest,
    vigil__pg_action_put,
    vigil__pg_action_update,
    vigil__pg_action_get,
    vigil__pg_action_list,
    vigil__pg_decision_append,
    vigil__pg_decision_list,
    vigil__pg_audit_append,
    vigil__pg_audit_list,
    vigil__pg_audit_last,
    vigil__pg_silence_put,
    vigil__pg_silence_delete,
    vigil__pg_silence_list,
    vigil__pg_state_put,
    vigil__pg_state_get,
    vigil__pg_state_delete,
    vigil__pg_state_list,
    vigil__pg_resource_replace,
    vigil__pg_resource_put,
    vigil__pg_resource_delete,
    vigil__pg_resource_list,
    vigil__pg_retain,
    vigil__pg_write_group,
    vigil__pg_lease_acquire,
    vigil__pg_lease_release,
    vigil__pg_lease_get,
    vigil__pg_tail,
};

const vigil_store_type *vigil_store_postgresql_type(void)
{
    return &g_pg_type;
}

const vigil_store_type *vigil__store_postgres_alias(void)
{
    return &g_postgres_type;
}
