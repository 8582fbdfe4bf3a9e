/*
 * SQLite backend: the action ledger, decisions, audit rows, silences, policy
 * state, desired state and drift.
 */
#include "store/sqlite_int.h"

#include <string.h>

#define TEXT(st, i) ((const char *)sqlite3_column_text((st), (i)))

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

/* Runs a write statement in autocommit mode (one implicit transaction). */
static int exec_write(vigil__sq *s, sqlite3_stmt *st, const char *op)
{
    return vigil__sq_exec_stmt(s, st, op);
}

/* The caller's callback, one member set. */
typedef struct row_ctx {
    vigil_store_action_cb action;
    vigil_store_decision_cb decision;
    vigil_store_audit_cb audit;
    vigil_store_silence_cb silence;
    vigil_store_state_cb state;
    vigil_store_resource_cb resource;
    void *payload;
} row_ctx;

/* Steps a query and calls row_fn for each row until it returns non-zero. */
typedef int (*row_fn)(sqlite3_stmt *st, const row_ctx *c);

static int each_row(vigil__sq *s, sqlite3_stmt *st, row_fn fn, const row_ctx *c, const char *op,
                    int *rows)
{
    int r, rc = VIGIL_OK, n = 0;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        n++;
        if ((rc = fn(st, c)) != 0)
            break;
    }
    if (rc == VIGIL_OK && r != SQLITE_DONE)
        rc = vigil__sq_error(s, r, op);
    sqlite3_reset(st);
    if (rows)
        *rows = n;
    return rc;
}

static int64_t limit_of(size_t limit)
{
    return limit ? (int64_t)limit : -1;
}

/* ---- actions ------------------------------------------------------------------------ */

int vigil__sq_action_put(void *h, const vigil_store_action *a, int *created)
{
    vigil__sq *s = h;
    int rc = vigil__sq_check_writable(s, "action put");
    if (rc)
        return rc;
    sqlite3_stmt *st = vigil__sq_stmt(s, SQ_ACTION_INSERT, &rc);
    if (!st)
        return rc;
    vigil__sq_bind_text(st, 1, a->id);
    sqlite3_bind_int64(st, 2, a->requested_ms);
    vigil__sq_bind_text(st, 3, a->action);
    vigil__sq_bind_text(st, 4, a->target);
    vigil__sq_bind_text(st, 5, a->params_json ? a->params_json : "{}");
    vigil__sq_bind_text(st, 6, or_empty(a->reason));
    vigil__sq_bind_text(st, 7, a->policy);
    vigil__sq_bind_text(st, 8, a->series);
    sqlite3_bind_int(st, 9, a->dry_run ? 1 : 0);
    vigil__sq_bind_text(st, 10, a->status ? a->status : "pending");
    vigil__sq_bind_text(st, 11, a->result_reason);
    vigil__sq_bind_text(st, 12, a->output);
    sqlite3_bind_int64(st, 13, a->duration_ms);
    sqlite3_bind_int64(st, 14, a->updated_ms ? a->updated_ms : a->requested_ms);
    sqlite3_bind_int64(st, 15, a->audit_seq);
    vigil__sq_bind_text(st, 16, a->audit_hash);
    if ((rc = exec_write(s, st, "action put")) != 0)
        return rc;
    *created = sqlite3_changes(s->db) > 0;
    return VIGIL_OK;
}

int vigil__sq_action_update(void *h, const vigil_store_action *a)
{
    vigil__sq *s = h;
    int rc = vigil__sq_check_writable(s, "action update");
    if (rc)
        return rc;
    sqlite3_stmt *st = vigil__sq_stmt(s, SQ_ACTION_UPDATE, &rc);
    if (!st)
        return rc;
    vigil__sq_bind_text(st, 1, a->id);
    vigil__sq_bind_text(st, 2, a->status);
    vigil__sq_bind_text(st, 3, a->result_reason);
    vigil__sq_bind_text(st, 4, a->output);
    sqlite3_bind_int64(st, 5, a->duration_ms);
    sqlite3_bind_int64(st, 6, a->updated_ms);
    sqlite3_bind_int64(st, 7, a->audit_seq);
    vigil__sq_bind_text(st, 8, a->audit_hash);
    if ((rc = exec_write(s, st, "action update")) != 0)
        return rc;
    if (sqlite3_changes(s->db) == 0)
        return vigil__error_set(VIGIL_ENOTFOUND, "store: no action with id \"%s\"", a->id);
    return VIGIL_OK;
}

static int action_row(sqlite3_stmt *st, const row_ctx *c)
{
    vigil_store_action a;
    a.id = TEXT(st, 0);
    a.requested_ms = sqlite3_column_int64(st, 1);
    a.action = TEXT(st, 2);
    a.target = TEXT(st, 3);
    a.params_json = TEXT(st, 4);
    a.reason = TEXT(st, 5);
    a.policy = TEXT(st, 6);
    a.series = TEXT(st, 7);
    a.dry_run = sqlite3_column_int(st, 8);
    a.status = TEXT(st, 9);
    a.result_reason = TEXT(st, 10);
    a.output = TEXT(st, 11);
    a.duration_ms = sqlite3_column_int64(st, 12);
    a.updated_ms = sqlite3_column_int64(st, 13);
    a.audit_seq = sqlite3_column_int64(st, 14);
    a.audit_hash = TEXT(st, 15);
    return c->action(&a, c->payload);
}

int vigil__sq_action_get(void *h, const char *id, vigil_store_action_cb cb, void *payload)
{
    vigil__sq *s = h;
    int rc, rows = 0;
    sqlite3_stmt *st = vigil__sq_stmt(s, SQ_ACTION_GET, &rc);
    if (!st)
        return rc;
    vigil__sq_bind_text(st, 1, id);
    rc = each_row(s, st, action_row, &(row_ctx){.action = cb, .payload = payload}, "action get",
                  &rows);
    if (rc == VIGIL_OK && rows == 0)
        return vigil__error_set(VIGIL_ENOTFOUND, "store: no action with id \"%s\"", id);
    return rc;
}

int vigil__sq_action_list(void *h, const vigil_store_filter *f, vigil_store_action_cb cb,
                          void *payload)
{
    vigil__sq *s = h;
    int rc;
    sqlite3_stmt *st = vigil__sq_stmt(s, SQ_ACTION_LIST, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, f->since_ms ? f->since_ms : INT64_MIN);
    vigil__sq_bind_text(st, 2, f->status);
    vigil__sq_bind_text(st, 3, f->target);
    vigil__sq_bind_text(st, 4, f->policy);
    sqlite3_bind_int64(st, 5, limit_of(f->limit));
    return each_row(s, st, action_row, &(row_ctx){.action = cb, .payload = payload}, "action list",
                    NULL);
}

/* ---- decisions ---------------------------------------------------------------------- */

int vigil__sq_decision_append(void *h, const vigil_store_decision *d, int64_t *id_out)
{
    vigil__sq *s = h;
    int rc = vigil__sq_check_writable(s, "decision append");
    if (rc)
        return rc;
    sqlite3_stmt *st = vigil__sq_stmt(s, SQ_DECISION_INSERT, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, d->ts_ms);
    vigil__sq_bind_text(st, 2, d->policy);
    vigil__sq_bind_text(st, 3, d->series);
    vigil__sq_bind_text(st, 4, d->target);
    vigil__sq_bind_text(st, 5, d->action);
    vigil__sq_bind_text(st, 6, d->action_id);
    vigil__sq_bind_text(st, 7, d->decision);
    vigil__sq_bind_text(st, 8, or_empty(d->reason));
    if ((rc = exec_write(s, st, "decision append")) != 0)
        return rc;
    *id_out = sqlite3_last_insert_rowid(s->db);
    return VIGIL_OK;
}

static int decision_row(sqlite3_stmt *st, const row_ctx *c)
{
    vigil_store_decision d;
    d.id = sqlite3_column_int64(st, 0);
    d.ts_ms = sqlite3_column_int64(st, 1);
    d.policy = TEXT(st, 2);
    d.series = TEXT(st, 3);
    d.target = TEXT(st, 4);
    d.action = TEXT(st, 5);
    d.action_id = TEXT(st, 6);
    d.decision = TEXT(st, 7);
    d.reason = TEXT(st, 8);
    return c->decision(&d, c->payload);
}

int vigil__sq_decision_list(void *h, const vigil_store_filter *f, vigil_store_decision_cb cb,
                            void *payload)
{
    vigil__sq *s = h;
    int rc;
    sqlite3_stmt *st = vigil__sq_stmt(s, SQ_DECISION_LIST, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, f->after_id);
    sqlite3_bind_int64(st, 2, f->since_ms ? f->since_ms : INT64_MIN);
    vigil__sq_bind_text(st, 3, f->target);
    vigil__sq_bind_text(st, 4, f->policy);
    sqlite3_bind_int64(st, 5, limit_of(f->limit));
    return each_row(s, st, decision_row, &(row_ctx){.decision = cb, .payload = payload},
                    "decision list", NULL);
}

/* ---- audit ------------------------------------------------------------------------------ */

int vigil__sq_audit_append(void *h, const vigil_store_audit *row)
{
    vigil__sq *s = h;
    int rc = vigil__sq_check_writable(s, "audit append");
    if (rc)
        return rc;
    sqlite3_stmt *st = vigil__sq_stmt(s, SQ_AUDIT_INSERT, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, row->seq);
    sqlite3_bind_int64(st, 2, row->ts_ms);
    vigil__sq_bind_text(st, 3, row->kind);
    vigil__sq_bind_text(st, 4, row->action_id);
    vigil__sq_bind_text(st, 5, row->data_json ? row->data_json : "{}");
    vigil__sq_bind_text(st, 6, or_empty(row->prev_mac));
    vigil__sq_bind_text(st, 7, row->mac);
    int r = sqlite3_step(st);
    sqlite3_reset(st);
    if (r == SQLITE_DONE)
        return VIGIL_OK;
    if ((r & 0xff) == SQLITE_CONSTRAINT)
        return vigil__error_set(VIGIL_EEXISTS, "store: audit row %lld already exists",
                                (long long)row->seq);
    return vigil__sq_error(s, r, "audit append");
}

static int audit_row(sqlite3_stmt *st, const row_ctx *c)
{
    vigil_store_audit a;
    a.seq = sqlite3_column_int64(st, 0);
    a.ts_ms = sqlite3_column_int64(st, 1);
    a.kind = TEXT(st, 2);
    a.action_id = TEXT(st, 3);
    a.data_json = TEXT(st, 4);
    a.prev_mac = TEXT(st, 5);
    a.mac = TEXT(st, 6);
    return c->audit(&a, c->payload);
}

int vigil__sq_audit_list(void *h, const vigil_store_filter *f, vigil_store_audit_cb cb,
                         void *payload)
{
    vigil__sq *s = h;
    int rc;
    sqlite3_stmt *st = vigil__sq_stmt(s, SQ_AUDIT_LIST, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, f->after_id);
    sqlite3_bind_int64(st, 2, f->since_ms ? f->since_ms : INT64_MIN);
    sqlite3_bind_int64(st, 3, limit_of(f->limit));
    return each_row(s, st, audit_row, &(row_ctx){.audit = cb, .payload = payload}, "audit list",
                    NULL);
}

int vigil__sq_audit_last(void *h, vigil_store_audit_cb cb, void *payload)
{
    vigil__sq *s = h;
    int rc, rows = 0;
    sqlite3_stmt *st = vigil__sq_stmt(s, SQ_AUDIT_LAST, &rc);
    if (!st)
        return rc;
    rc = each_row(s, st, audit_row, &(row_ctx){.audit = cb, .payload = payload}, "audit last",
                  &rows);
    if (rc == VIGIL_OK && rows == 0)
        return vigil__error_set(VIGIL_ENOTFOUND, "store: the audit log is empty");
    return rc;
}

/* ---- silences ------------------------------------------------------------------------------ */

int vigil__sq_silence_put(void *h, const vigil_store_silence *x)
{
    vigil__sq *s = h;
    int rc = vigil__sq_check_writable(s, "silence put");
    if (rc)
        return rc;
    sqlite3_stmt *st = vigil__sq_stmt(s, SQ_SILENCE_PUT, &rc);
    if (!st)
        return rc;
    vigil__sq_bind_text(st, 1, x->id);
    vigil__sq_bind_text(st, 2, x->matchers_json);
    sqlite3_bind_int64(st, 3, x->starts_ms);
    sqlite3_bind_int64(st, 4, x->ends_ms);
    vigil__sq_bind_text(st, 5, or_empty(x->created_by));
    vigil__sq_bind_text(st, 6, or_empty(x->comment));
    sqlite3_bind_int64(st, 7, x->created_ms);
    return exec_write(s, st, "silence put");
}

int vigil__sq_silence_delete(void *h, const char *id)
{
    vigil__sq *s = h;
    int rc = vigil__sq_check_writable(s, "silence delete");
    if (rc)
        return rc;
    sqlite3_stmt *st = vigil__sq_stmt(s, SQ_SILENCE_DELETE, &rc);
    if (!st)
        return rc;
    vigil__sq_bind_text(st, 1, id);
    if ((rc = exec_write(s, st, "silence delete")) != 0)
        return rc;
    if (sqlite3_changes(s->db) == 0)
        return vigil__error_set(VIGIL_ENOTFOUND, "store: no silence with id \"%s\"", id);
    return VIGIL_OK;
}

static int silence_row(sqlite3_stmt *st, const row_ctx *c)
{
    vigil_store_silence x;
    x.id = TEXT(st, 0);
    x.matchers_json = TEXT(st, 1);
    x.starts_ms = sqlite3_column_int64(st, 2);
    x.ends_ms = sqlite3_column_int64(st, 3);
    x.created_by = TEXT(st, 4);
    x.comment = TEXT(st, 5);
    x.created_ms = sqlite3_column_int64(st, 6);
    return c->silence(&x, c->payload);
}

int vigil__sq_silence_list(void *h, int64_t active_at_ms, vigil_store_silence_cb cb, void *payload)
{
    vigil__sq *s = h;
    int rc;
    sqlite3_stmt *st = vigil__sq_stmt(s, SQ_SILENCE_LIST, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int64(st, 1, active_at_ms);
    return each_row(s, st, silence_row, &(row_ctx){.silence = cb, .payload = payload},
                    "silence list", NULL);
}

/* ---- policy state ------------------------------------------------------------------------ */

int vigil__sq_state_put(void *h, const char *key, const void *value, size_t len)
{
    vigil__sq *s = h;
    int rc = vigil__sq_check_writable(s, "state put");
    if (rc)
        return rc;
    sqlite3_stmt *st = vigil__sq_stmt(s, SQ_STATE_PUT, &rc);
    if (!st)
        return rc;
    vigil__sq_bind_text(st, 1, key);
    sqlite3_bind_blob64(st, 2, value, len, SQLITE_STATIC);
    return exec_write(s, st, "state put");
}

static int state_row(sqlite3_stmt *st, const row_ctx *c)
{
    const void *v = sqlite3_column_blob(st, 1);
    int len = sqlite3_column_bytes(st, 1);
    return c->state(TEXT(st, 0), v ? v : "", (size_t)len, c->payload);
}

int vigil__sq_state_get(void *h, const char *key, vigil_store_state_cb cb, void *payload)
{
    vigil__sq *s = h;
    int rc, rows = 0;
    sqlite3_stmt *st = vigil__sq_stmt(s, SQ_STATE_GET, &rc);
    if (!st)
        return rc;
    vigil__sq_bind_text(st, 1, key);
    rc =
        each_row(s, st, state_row, &(row_ctx){.state = cb, .payload = payload}, "state get", &rows);
    if (rc == VIGIL_OK && rows == 0)
        return vigil__error_set(VIGIL_ENOTFOUND, "store: no policy state under \"%.200s\"", key);
    return rc;
}

int vigil__sq_state_delete(void *h, const char *key)
{
    vigil__sq *s = h;
    int rc = vigil__sq_check_writable(s, "state delete");
    if (rc)
        return rc;
    sqlite3_stmt *st = vigil__sq_stmt(s, SQ_STATE_DELETE, &rc);
    if (!st)
        return rc;
    vigil__sq_bind_text(st, 1, key);
    if ((rc = exec_write(s, st, "state delete")) != 0)
        return rc;
    if (sqlite3_changes(s->db) == 0)
        return vigil__error_set(VIGIL_ENOTFOUND, "store: no policy state under \"%.200s\"", key);
    return VIGIL_OK;
}

int vigil__sq_state_list(void *h, const char *prefix, vigil_store_state_cb cb, void *payload)
{
    vigil__sq *s = h;
    int rc;
    /* Keys with the prefix are those in [prefix, prefix with its last byte
     * below 0xff incremented) in byte order. */
    size_t n = strlen(prefix);
    char *upper = NULL;
    if (n) {
        upper = vigil__strndup(prefix, n);
        if (!upper)
            return vigil__error_oom();
        while (n > 0 && (unsigned char)upper[n - 1] == 0xff)
            n--;
        if (n > 0) {
            upper[n - 1] = (char)((unsigned char)upper[n - 1] + 1);
            upper[n] = '\0';
        } else {
            vigil__free(upper);
            upper = NULL;
        }
    }
    sqlite3_stmt *st = vigil__sq_stmt(s, upper ? SQ_STATE_LIST_RANGE : SQ_STATE_LIST, &rc);
    if (st) {
        vigil__sq_bind_text(st, 1, prefix);
        if (upper)
            sqlite3_bind_text(st, 2, upper, (int)n, SQLITE_STATIC);
        rc = each_row(s, st, state_row, &(row_ctx){.state = cb, .payload = payload}, "state list",
                      NULL);
    }
    vigil__free(upper);
    return rc;
}

/* ---- desired state and drift ------------------------------------------------------------ */

static int bind_resource(vigil__sq *s, vigil_store_resource_set set, const vigil_store_resource *r,
                         sqlite3_stmt **out)
{
    int rc;
    sqlite3_stmt *st = vigil__sq_stmt(s, SQ_RES_PUT, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int(st, 1, (int)set);
    vigil__sq_bind_text(st, 2, r->key);
    vigil__sq_bind_text(st, 3, r->kind);
    vigil__sq_bind_text(st, 4, r->name);
    vigil__sq_bind_text(st, 5, or_empty(r->source));
    vigil__sq_bind_text(st, 6, or_empty(r->revision));
    vigil__sq_bind_text(st, 7, r->status);
    vigil__sq_bind_text(st, 8, r->body_json ? r->body_json : "{}");
    sqlite3_bind_int64(st, 9, r->updated_ms);
    *out = st;
    return VIGIL_OK;
}

int vigil__sq_resource_replace(void *h, vigil_store_resource_set set, const char *source,
                               const vigil_store_resource *records, size_t n)
{
    vigil__sq *s = h;
    int rc = vigil__sq_check_writable(s, "resource replace");
    if (rc)
        return rc;
    if ((rc = vigil__sq_begin(s, "resource replace: starting a transaction")) != 0)
        return rc;
    sqlite3_stmt *st = vigil__sq_stmt(s, source ? SQ_RES_DELETE_SOURCE : SQ_RES_DELETE_SET, &rc);
    if (st) {
        sqlite3_bind_int(st, 1, (int)set);
        if (source)
            vigil__sq_bind_text(st, 2, source);
        rc = vigil__sq_exec_stmt(s, st, "resource replace");
    }
    for (size_t i = 0; rc == VIGIL_OK && i < n; i++) {
        if ((rc = bind_resource(s, set, &records[i], &st)) == VIGIL_OK)
            rc = vigil__sq_exec_stmt(s, st, "resource replace");
    }
    if (rc == VIGIL_OK)
        rc = vigil__sq_commit(s, "resource replace: committing");
    if (rc != VIGIL_OK)
        vigil__sq_rollback(s);
    return rc;
}

int vigil__sq_resource_put(void *h, vigil_store_resource_set set,
                           const vigil_store_resource *record)
{
    vigil__sq *s = h;
    int rc = vigil__sq_check_writable(s, "resource put");
    if (rc)
        return rc;
    sqlite3_stmt *st;
    if ((rc = bind_resource(s, set, record, &st)) != 0)
        return rc;
    return exec_write(s, st, "resource put");
}

int vigil__sq_resource_delete(void *h, vigil_store_resource_set set, const char *key)
{
    vigil__sq *s = h;
    int rc = vigil__sq_check_writable(s, "resource delete");
    if (rc)
        return rc;
    sqlite3_stmt *st = vigil__sq_stmt(s, SQ_RES_DELETE, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int(st, 1, (int)set);
    vigil__sq_bind_text(st, 2, key);
    if ((rc = exec_write(s, st, "resource delete")) != 0)
        return rc;
    if (sqlite3_changes(s->db) == 0)
        return vigil__error_set(VIGIL_ENOTFOUND, "store: no %s record \"%.200s\"",
                                set == VIGIL_STORE_DRIFT ? "drift" : "desired", key);
    return VIGIL_OK;
}

static int resource_row(sqlite3_stmt *st, const row_ctx *c)
{
    vigil_store_resource r;
    r.key = TEXT(st, 0);
    r.kind = TEXT(st, 1);
    r.name = TEXT(st, 2);
    r.source = TEXT(st, 3);
    r.revision = TEXT(st, 4);
    r.status = TEXT(st, 5);
    r.body_json = TEXT(st, 6);
    r.updated_ms = sqlite3_column_int64(st, 7);
    return c->resource(&r, c->payload);
}

int vigil__sq_resource_list(void *h, vigil_store_resource_set set, const char *key,
                            vigil_store_resource_cb cb, void *payload)
{
    vigil__sq *s = h;
    int rc, rows = 0;
    sqlite3_stmt *st = vigil__sq_stmt(s, key ? SQ_RES_GET : SQ_RES_LIST, &rc);
    if (!st)
        return rc;
    sqlite3_bind_int(st, 1, (int)set);
    if (key)
        vigil__sq_bind_text(st, 2, key);
    rc = each_row(s, st, resource_row, &(row_ctx){.resource = cb, .payload = payload},
                  "resource list", &rows);
    if (rc == VIGIL_OK && key && rows == 0)
        return vigil__error_set(VIGIL_ENOTFOUND, "store: no %s record \"%.200s\"",
                                set == VIGIL_STORE_DRIFT ? "drift" : "desired", key);
    return rc;
}
