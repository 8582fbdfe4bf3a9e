/* Aggregated audit rows for refused signatures on POST /v1/execute: one row
 * per REM_AUTH_AUDIT_MS at most, carrying how many failures it stands for,
 * the last reason and the last remote address. */
#include "internal/json.h"
#include "remediator/rem_int.h"

#include <stdio.h>
#include <string.h>

/* Writes the pending row; called without rem->authmu held. */
static void write_row(vigil_remediator *rem, uint64_t failures, const char *why, const char *remote)
{
    vigil_buf d = VIGIL_BUF_INIT;
    int rc = vigil__buf_puts(&d, "{\"route\":\"/v1/execute\",\"reason\":");
    if (!rc)
        rc = vigil__json_put_string(&d, why, strlen(why));
    if (!rc)
        rc = vigil__buf_puts(&d, ",\"remote\":");
    if (!rc)
        rc = *remote ? vigil__json_put_string(&d, remote, strlen(remote))
                     : vigil__buf_puts(&d, "null");
    if (!rc)
        rc = vigil__buf_printf(&d, ",\"failures\":%llu}", (unsigned long long)failures);
    if (!rc)
        vigil__rem_audit_row(rem, "auth", NULL, &d, NULL, NULL);
    vigil_buf_dispose(&d);
}

/* Takes the pending failures when `force` or the period has passed since
 * the last row: their count (0: nothing to write now) and the last reason
 * and remote. Called with rem->authmu held. */
static uint64_t take(vigil_remediator *rem, int64_t now, int force, char *why, char *remote)
{
    if (!rem->auth_pending || (!force && now - rem->auth_last_ms < REM_AUTH_AUDIT_MS))
        return 0;
    uint64_t n = rem->auth_pending;
    rem->auth_pending = 0;
    rem->auth_last_ms = now;
    memcpy(why, rem->auth_why, sizeof(rem->auth_why));
    memcpy(remote, rem->auth_remote, sizeof(rem->auth_remote));
    return n;
}

void vigil__rem_auth_failure(vigil_remediator *rem, const char *why, const char *remote)
{
    char w[sizeof(rem->auth_why)], r[sizeof(rem->auth_remote)];
    int64_t now = vigil__monotonic_ms();
    pthread_mutex_lock(&rem->authmu);
    rem->auth_pending++;
    rem->auth_total++;
    snprintf(rem->auth_why, sizeof(rem->auth_why), "%s", why ? why : "");
    snprintf(rem->auth_remote, sizeof(rem->auth_remote), "%s", remote ? remote : "");
    uint64_t n = take(rem, now, 0, w, r);
    pthread_mutex_unlock(&rem->authmu);
    if (n)
        write_row(rem, n, w, r);
}

void vigil__rem_auth_flush(vigil_remediator *rem, int force)
{
    char w[sizeof(rem->auth_why)], r[sizeof(rem->auth_remote)];
    pthread_mutex_lock(&rem->authmu);
    uint64_t n = take(rem, vigil__monotonic_ms(), force, w, r);
    pthread_mutex_unlock(&rem->authmu);
    if (n)
        write_row(rem, n, w, r);
}
