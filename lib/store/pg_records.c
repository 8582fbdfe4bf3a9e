/*
 * PostgreSQL backend: the action ledger, decisions, audit rows, silences,
 * policy state, desired state and drift.
 *
 * A statement whose connection is lost while it runs is run again once on a
 * new connection only when that is safe: reads, and writes whose repetition
 * leaves the same rows and reports the same result (action_update,
 * silence_put, state_put, resource_put). Inserts whose outcome a repetition
 * would misreport (action_put's "created", decisions, audit rows) and
 * deletes (a repeated delete would report VIGIL_ENOTFOUND) fail with
 * VIGIL_EIO instead; the next call reconnects.
 */
#include "store/pg_int.h"

#include <stdlib.h>
#include <string.h>

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

/* A text column, NULL for SQL NULL. */
static const char *col(const PGresult *r, int row, int c)
{
    return PQgetisnull(r, row, c) ? NULL : PQgetvalue(r, row, c);
}

static int64_t col_i64(const PGresult *r, int row, int c)
{
    return PQgetisnull(r, row, c) ? 0 : strtoll(PQgetvalue(r, row, c), NULL, 10);
}

static int64_t changed(const PGresult *r)
{
    return strtoll(PQcmdTuples((PGresult *)r), NULL, 10);
}

/* Runs a statement for its effect. */
static int run(vigil__pg *s, pg_stmt_id id, int n, const char *const *params, pg_retry retry,
               int64_t *rows, const char *op)
{
    int rc = vigil__pg_enter(s);
    if (rc)
        return rc;
    PGresult *r = NULL;
    rc = vigil__pg_exec(s, id, n, params, NULL, NULL, 0, retry, &r, op);
    if (rc == VIGIL_OK && rows)
        *rows = changed(r);
    PQclear(r);
    return rc;
}

typedef int (*row_fn)(vigil__pg *s, const PGresult *r, int row, void *cb, void *payload);

/* Runs a query and calls fn for each row until it returns non-zero. */
static int each_row(vigil__pg *s, pg_stmt_id id, int n, const char *const *params, row_fn fn,
                    void *cb, void *payload, int *rows, const char *op)
{
    int rc = vigil__pg_enter(s);
    if (rc)
        return rc;
    PGresult *r = NULL;
    rc = vigil__pg_exec(s, id, n, params, NULL, NULL, 0, PG_RETRY, &r, op);
    int nt = rc ? 0 : PQntuples(r);
    for (int i = 0; i < nt && rc == VIGIL_OK; i++) {
        s->delivered = 1;
        rc = fn(s, r, i, cb, payload);
    }
    if (rows)
        *rows = nt;
    PQclear(r);
    return rc;
}

static const char *limit_of(char *buf, size_t limit)
{
    return limit ? vigil__pg_i64(buf, (int64_t)limit) : NULL;
}

static const char *since_of(char *buf, int64_t since)
{
    return vigil__pg_i64(buf, since ? since : INT64_MIN);
}

/* ---- actions ------------------------------------------------------------------------ */

int vigil__pg_action_put(void *h, const vigil_store_action *a, int *created)
{
    vigil__pg *s = h;
    int rc = vigil__pg_check_writable(s, "action put");
    if (rc)
        return rc;
    char req[24], dur[24], upd[24], seq[24];
    const char *p[16] = {a->id,
                         vigil__pg_i64(req, a->requested_ms),
                         a->action,
                         a->target,
                         a->params_json ? a->params_json : "{}",
                         or_empty(a->reason),
                         a->policy,
                         a->series,
                         a->dry_run ? "1" : "0",
                         a->status ? a->status : "pending",
                         a->result_reason,
                         a->output,
                         vigil__pg_i64(dur, a->duration_ms),
                         vigil__pg_i64(upd, a->updated_ms ? a->updated_ms : a->requested_ms),
                         vigil__pg_i64(seq, a->audit_seq),
                         a->audit_hash};
    int64_t rows = 0;
    if ((rc = run(s, PG_ACTION_INSERT, 16, p, PG_NO_RETRY, &rows, "action put")) != 0)
        return rc;
    *created = rows > 0;
    return VIGIL_OK;
}

int vigil__pg_action_update(void *h, const vigil_store_action *a)
{
    vigil__pg *s = h;
    int rc = vigil__pg_check_writable(s, "action update");
    if (rc)
        return rc;
    char dur[24], upd[24], seq[24];
    const char *p[8] = {a->id,
                        a->status,
                        a->result_reason,
                        a->output,
                        vigil__pg_i64(dur, a->duration_ms),
                        vigil__pg_i64(upd, a->updated_ms),
                        vigil__pg_i64(seq, a->audit_seq),
                        a->audit_hash};
    int64_t rows = 0;
    if ((rc = run(s, PG_ACTION_UPDATE, 8, p, PG_RETRY, &rows, "action update")) != 0)
        return rc;
    if (rows == 0)
        return vigil__error_set(VIGIL_ENOTFOUND, "store: no action with id \"%s\"", a->id);
    return VIGIL_OK;
}

static int action_row(vigil__pg *s, const PGresult *r, int i, void *cb, void *payload)
{
    (void)s;
    vigil_store_action a;
    a.id = col(r, i, 0);
    a.requested_ms = col_i64(r, i, 1);
    a.action = col(r, i, 2);
    a.target = col(r, i, 3);
    a.params_json = col(r, i, 4);
    a.reason = col(r, i, 5);
    a.policy = col(r, i, 6);
    a.series = col(r, i, 7);
    a.dry_run = (int)col_i64(r, i, 8);
    a.status = col(r, i, 9);
    a.result_reason = col(r, i, 10);
    a.output = col(r, i, 11);
    a.duration_ms = col_i64(r, i, 12);
    a.updated_ms = col_i64(r, i, 13);
    a.audit_seq = col_i64(r, i, 14);
    a.audit_hash = col(r, i, 15);
    return ((vigil_store_action_cb)cb)(&a, payload);
}

int vigil__pg_action_get(void *h, const char *id, vigil_store_action_cb cb, void *payload)
{
    int rows = 0;
    const char *p[1] = {id};
    int rc = each_row(h, PG_ACTION_GET, 1, p, action_row, (void *)cb, payload, &rows, "action get");
    if (rc == VIGIL_OK && rows == 0)
        return vigil__error_set(VIGIL_ENOTFOUND, "store: no action with id \"%s\"", id);
    return rc;
}

int vigil__pg_action_list(void *h, const vigil_store_filter *f, vigil_store_action_cb cb,
                          void *payload)
{
    char since[24], lim[24];
    const char *p[5] = {since_of(since, f->since_ms), f->status, f->target, f->policy,
                        limit_of(lim, f->limit)};
    return each_row(h, PG_ACTION_LIST, 5, p, action_row, (void *)cb, payload, NULL, "action list");
}

/* ---- decisions ---------------------------------------------------------------------- */

int vigil__pg_decision_append(void *h, const vigil_store_decision *d, int64_t *id_out)
{
    vigil__pg *s = h;
    int rc = vigil__pg_check_writable(s, "decision append");
    if (rc || (rc = vigil__pg_enter(s)) != 0)
        return rc;
    char ts[24];
    const char *p[8] = {vigil__pg_i64(ts, d->ts_ms),
                        d->policy,
                        d->series,
                        d->target,
                        d->action,
                        d->action_id,
                        d->decision,
                        or_empty(d->reason)};
    PGresult *r = NULL;
    rc = vigil__pg_exec(s, PG_DECISION_INSERT, 8, p, NULL, NULL, 0, PG_NO_RETRY, &r,
                        "decision append");
    if (rc == VIGIL_OK)
        *id_out = col_i64(r, 0, 0);
    PQclear(r);
    return rc;
}

static int decision_row(vigil__pg *s, const PGresult *r, int i, void *cb, void *payload)
{
    (void)s;
    vigil_store_decision d;
    d.id = col_i64(r, i, 0);
    d.ts_ms = col_i64(r, i, 1);
    d.policy = col(r, i, 2);
    d.series = col(r, i, 3);
    d.target = col(r, i, 4);
    d.action = col(r, i, 5);
    d.action_id = col(r, i, 6);
    d.decision = col(r, i, 7);
    d.reason = col(r, i, 8);
    return ((vigil_store_decision_cb)cb)(&d, payload);
}

int vigil__pg_decision_list(void *h, const vigil_store_filter *f, vigil_store_decision_cb cb,
                            void *payload)
{
    char after[24], since[24], lim[24];
    const char *p[5] = {vigil__pg_i64(after, f->after_id), since_of(since, f->since_ms), f->target,
                        f->policy, limit_of(lim, f->limit)};
    return each_row(h, PG_DECISION_LIST, 5, p, decision_row, (void *)cb, payload, NULL,
                    "decision list");
}

/* ---- audit ------------------------------------------------------------------------------ */

int vigil__pg_audit_append(void *h, const vigil_store_audit *row)
{
    vigil__pg *s = h;
    int rc = vigil__pg_check_writable(s, "audit append");
    if (rc)
        return rc;
    char seq[24], ts[24];
    const char *p[7] = {vigil__pg_i64(seq, row->seq),
                        vigil__pg_i64(ts, row->ts_ms),
                        row->kind,
                        row->action_id,
                        row->data_json ? row->data_json : "{}",
                        or_empty(row->prev_mac),
                        row->mac};
    int64_t rows = 0;
    if ((rc = run(s, PG_AUDIT_INSERT, 7, p, PG_NO_RETRY, &rows, "audit append")) != 0)
        return rc;
    if (rows == 0)
        return vigil__error_set(VIGIL_EEXISTS, "store: audit row %lld already exists",
                                (long long)row->seq);
    return VIGIL_OK;
}

static int audit_row(vigil__pg *s, const PGresult *r, int i, void *cb, void *payload)
{
    (void)s;
    vigil_store_audit a;
    a.seq = col_i64(r, i, 0);
    a.ts_ms = col_i64(r, i, 1);
    a.kind = col(r, i, 2);
    a.action_id = col(r, i, 3);
    a.data_json = col(r, i, 4);
    a.prev_mac = col(r, i, 5);
    a.mac = col(r, i, 6);
    return ((vigil_store_audit_cb)cb)(&a, payload);
}

int vigil__pg_audit_list(void *h, const vigil_store_filter *f, vigil_store_audit_cb cb,
                         void *payload)
{
    char after[24], since[24], lim[24];
    const char *p[3] = {vigil__pg_i64(after, f->after_id), since_of(since, f->since_ms),
                        limit_of(lim, f->limit)};
    return each_row(h, PG_AUDIT_LIST, 3, p, audit_row, (void *)cb, payload, NULL, "audit list");
}

int vigil__pg_audit_last(void *h, vigil_store_audit_cb cb, void *payload)
{
    int rows = 0;
    int rc =
        each_row(h, PG_AUDIT_LAST, 0, NULL, audit_row, (void *)cb, payload, &rows, "audit last");
    if (rc == VIGIL_OK && rows == 0)
        return vigil__error_set(VIGIL_ENOTFOUND, "store: the audit log is empty");
    return rc;
}

/* ---- silences ------------------------------------------------------------------------------ */

int vigil__pg_silence_put(void *h, const vigil_store_silence *x)
{
    vigil__pg *s = h;
    int rc = vigil__pg_check_writable(s, "silence put");
    if (rc)
        return rc;
    char st[24], en[24], cr[24];
    const char *p[7] = {x->id,
                        x->matchers_json,
                        vigil__pg_i64(st, x->starts_ms),
                        vigil__pg_i64(en, x->ends_ms),
                        or_empty(x->created_by),
                        or_empty(x->comment),
                        vigil__pg_i64(cr, x->created_ms)};
    return run(s, PG_SILENCE_PUT, 7, p, PG_RETRY, NULL, "silence put");
}

int vigil__pg_silence_delete(void *h, const char *id)
{
    vigil__pg *s = h;
    int rc = vigil__pg_check_writable(s, "silence delete");
    if (rc)
        return rc;
    const char *p[1] = {id};
    int64_t rows = 0;
    if ((rc = run(s, PG_SILENCE_DELETE, 1, p, PG_NO_RETRY, &rows, "silence delete")) != 0)
        return rc;
    if (rows == 0)
        return vigil__error_set(VIGIL_ENOTFOUND, "store: no silence with id \"%s\"", id);
    return VIGIL_OK;
}

static int silence_row(vigil__pg *s, const PGresult *r, int i, void *cb, void *payload)
{
    (void)s;
    vigil_store_silence x;
    x.id = col(r, i, 0);
    x.matchers_json = col(r, i, 1);
    x.starts_ms = col_i64(r, i, 2);
    x.ends_ms = col_i64(r, i, 3);
    x.created_by = col(r, i, 4);
    x.comment = col(r, i, 5);
    x.created_ms = col_i64(r, i, 6);
    return ((vigil_store_silence_cb)cb)(&x, payload);
}

int vigil__pg_silence_list(void *h, int64_t active_at_ms, vigil_store_silence_cb cb, void *payload)
{
    char at[24];
    const char *p[1] = {vigil__pg_i64(at, active_at_ms)};
    return each_row(h, PG_SILENCE_LIST, 1, p, silence_row, (void *)cb, payload, NULL,
                    "silence list");
}

/* ---- policy state ------------------------------------------------------------------------ */

int vigil__pg_state_put(void *h, const char *key, const void *value, size_t len)
{
    vigil__pg *s = h;
    int rc = vigil__pg_check_writable(s, "state put");
    if (rc || (rc = vigil__pg_enter(s)) != 0)
        return rc;
    const char *p[2] = {key, value ? (const char *)value : ""};
    int lens[2] = {0, (int)len};
    int fmts[2] = {0, 1};
    PGresult *r = NULL;
    rc = vigil__pg_exec(s, PG_STATE_PUT, 2, p, lens, fmts, 0, PG_RETRY, &r, "state put");
    PQclear(r);
    return rc;
}

/* Rows of (key, value) read in binary: the text's bytes, the blob's bytes. */
static int state_rows(vigil__pg *s, pg_stmt_id id, const char *param, vigil_store_state_cb cb,
                      void *payload, int *rows, const char *op)
{
    int rc = vigil__pg_enter(s);
    if (rc)
        return rc;
    const char *p[1] = {param};
    PGresult *r = NULL;
    rc = vigil__pg_exec(s, id, 1, p, NULL, NULL, 1, PG_RETRY, &r, op);
    int nt = rc ? 0 : PQntuples(r);
    for (int i = 0; i < nt && rc == VIGIL_OK; i++) {
        s->delivered = 1;
        rc = cb(PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1), payload);
    }
    if (rows)
        *rows = nt;
    PQclear(r);
    return rc;
}

int vigil__pg_state_get(void *h, const char *key, vigil_store_state_cb cb, void *payload)
{
    int rows = 0;
    int rc = state_rows(h, PG_STATE_GET, key, cb, payload, &rows, "state get");
    if (rc == VIGIL_OK && rows == 0)
        return vigil__error_set(VIGIL_ENOTFOUND, "store: no policy state under \"%.200s\"", key);
    return rc;
}

int vigil__pg_state_delete(void *h, const char *key)
{
    vigil__pg *s = h;
    int rc = vigil__pg_check_writable(s, "state delete");
    if (rc)
        return rc;
    const char *p[1] = {key};
    int64_t rows = 0;
    if ((rc = run(s, PG_STATE_DELETE, 1, p, PG_NO_RETRY, &rows, "state delete")) != 0)
        return rc;
    if (rows == 0)
        return vigil__error_set(VIGIL_ENOTFOUND, "store: no policy state under \"%.200s\"", key);
    return VIGIL_OK;
}

int vigil__pg_state_list(void *h, const char *prefix, vigil_store_state_cb cb, void *payload)
{
    return state_rows(h, PG_STATE_LIST, prefix, cb, payload, NULL, "state list");
}

/* ---- desired state and drift ------------------------------------------------------------ */

static int put_resource(vigil__pg *s, vigil_store_resource_set set, const vigil_store_resource *x,
                        pg_retry retry, const char *op)
{
    char sid[24], upd[24];
    const char *p[9] = {vigil__pg_i64(sid, (int64_t)set),
                        x->key,
                        x->kind,
                        x->name,
                        or_empty(x->source),
                        or_empty(x->revision),
                        x->status,
                        x->body_json ? x->body_json : "{}",
                        vigil__pg_i64(upd, x->updated_ms)};
    PGresult *r = NULL;
    int rc = vigil__pg_exec(s, PG_RES_PUT, 9, p, NULL, NULL, 0, retry, &r, op);
    PQclear(r);
    return rc;
}

int vigil__pg_resource_replace(void *h, vigil_store_resource_set set, const char *source,
                               const vigil_store_resource *records, size_t n)
{
    vigil__pg *s = h;
    int rc = vigil__pg_check_writable(s, "resource replace");
    if (rc || (rc = vigil__pg_enter(s)) != 0)
        return rc;
    if ((rc = vigil__pg_begin(s, "resource replace: starting a transaction")) != 0)
        return rc;
    char sid[24];
    const char *p[2] = {vigil__pg_i64(sid, (int64_t)set), source};
    PGresult *r = NULL;
    rc = vigil__pg_exec(s, source ? PG_RES_DELETE_SOURCE : PG_RES_DELETE_SET, source ? 2 : 1, p,
                        NULL, NULL, 0, PG_NO_RETRY, &r, "resource replace");
    PQclear(r);
    for (size_t i = 0; rc == VIGIL_OK && i < n; i++)
        rc = put_resource(s, set, &records[i], PG_NO_RETRY, "resource replace");
    if (rc == VIGIL_OK)
        rc = vigil__pg_commit(s, "resource replace: committing");
    if (rc != VIGIL_OK)
        vigil__pg_rollback(s);
    return rc;
}

int vigil__pg_resource_put(void *h, vigil_store_resource_set set,
                           const vigil_store_resource *record)
{
    vigil__pg *s = h;
    int rc = vigil__pg_check_writable(s, "resource put");
    if (rc || (rc = vigil__pg_enter(s)) != 0)
        return rc;
    return put_resource(s, set, record, PG_RETRY, "resource put");
}

int vigil__pg_resource_delete(void *h, vigil_store_resource_set set, const char *key)
{
    vigil__pg *s = h;
    int rc = vigil__pg_check_writable(s, "resource delete");
    if (rc)
        return rc;
    char sid[24];
    const char *p[2] = {vigil__pg_i64(sid, (int64_t)set), key};
    int64_t rows = 0;
    if ((rc = run(s, PG_RES_DELETE, 2, p, PG_NO_RETRY, &rows, "resource delete")) != 0)
        return rc;
    if (rows == 0)
        return vigil__error_set(VIGIL_ENOTFOUND, "store: no %s record \"%.200s\"",
                                set == VIGIL_STORE_DRIFT ? "drift" : "desired", key);
    return VIGIL_OK;
}

static int resource_row(vigil__pg *s, const PGresult *r, int i, void *cb, void *payload)
{
    (void)s;
    vigil_store_resource x;
    x.key = col(r, i, 0);
    x.kind = col(r, i, 1);
    x.name = col(r, i, 2);
    x.source = col(r, i, 3);
    x.revision = col(r, i, 4);
    x.status = col(r, i, 5);
    x.body_json = col(r, i, 6);
    x.updated_ms = col_i64(r, i, 7);
    return ((vigil_store_resource_cb)cb)(&x, payload);
}

int vigil__pg_resource_list(void *h, vigil_store_resource_set set, const char *key,
                            vigil_store_resource_cb cb, void *payload)
{
    int rows = 0;
    char sid[24];
    const char *p[2] = {vigil__pg_i64(sid, (int64_t)set), key};
    int rc = each_row(h, key ? PG_RES_GET : PG_RES_LIST, key ? 2 : 1, p, resource_row, (void *)cb,
                      payload, &rows, "resource list");
    if (rc == VIGIL_OK && key && rows == 0)
        return vigil__error_set(VIGIL_ENOTFOUND, "store: no %s record \"%.200s\"",
                                set == VIGIL_STORE_DRIFT ? "drift" : "desired", key);
    return rc;
}
