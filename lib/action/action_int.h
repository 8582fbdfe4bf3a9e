/*
 * Private helpers shared by the files of lib/action/: running programs
 * through the one runner (lib/proc, via spawn.c), signal names, path and argv
 * handling, and the built-in action types. Never installed.
 */
#ifndef VIGIL_ACTION_INT_H
#define VIGIL_ACTION_INT_H

#include <stdbool.h>
#include <sys/types.h>

#include "internal/common.h"
#include "proc/proc.h"
#include "vigil/action.h"
#include "vigil/config.h"
#include "vigil/signature.h"
#include "vigil/sys/action.h"

#define VIGIL__ARGV_MAX 256 /* elements of a configured argv */
#define VIGIL__ENV_MAX  64  /* names in env_passthrough */

/* ---- built-in types ---- */
extern const vigil_action_type vigil__action_exec_type;
extern const vigil_action_type vigil__action_process_type;
extern const vigil_action_type vigil__action_systemd_type;
extern const vigil_action_type vigil__action_signal_type;
extern const vigil_action_type vigil__action_webhook_type;
extern const vigil_action_type vigil__action_log_type;
extern const vigil_action_type vigil__action_restore_file_type;

/* ---- configuration helpers (spawn.c) ---- */
/* vigil_error_set_at() with a printf format. Returns `code`. */
int vigil__action_cfg_error(const vigil_config_node *node, int code, const char *fmt, ...)
    VIGIL__PRINTF(3, 4);
/* Makes `path` (from `node`) absolute against `base_dir`. *out is the
 * caller's. VIGIL_EVALUE (located) for an empty or a relative path without
 * a base directory. */
int vigil__action_path(char **out, const vigil_config_node *node, const char *path,
                       const char *base_dir);
/* Reads an optional path key of `map` (NULL when absent) made absolute. */
int vigil__action_get_path(char **out, const vigil_config_node *map, const char *key,
                           const char *base_dir);
/* Frees a NULL-terminated array of strings and the array. */
void vigil__action_strv_free(char **v);
/* Reads an optional list of strings (NULL-terminated copy; an absent key
 * gives an empty list). `max` bounds its length. */
int vigil__action_get_strv(char ***out, size_t *n, const vigil_config_node *map, const char *key,
                           size_t max);
/* Appends `s` to `b` as a double-quoted, escaped string clipped to about
 * `max` bytes (for messages and logs): control characters and bytes that are
 * not valid UTF-8 become \xNN, so the result is always valid UTF-8. */
int vigil__action_quote(vigil_buf *b, const char *s, size_t max);

/* Signal names: "HUP", "SIGHUP", "hup" -> SIGHUP. 0 when unknown. */
int vigil__action_signal_parse(const char *name);
const char *vigil__action_signal_name(int sig);
/* Reads an optional signal key (default `dflt`), located error when bad. */
int vigil__action_get_signal(int *out, const vigil_config_node *map, const char *key, int dflt);

/* Reads the optional `user` and `group` keys of `map` (the identity the
 * runner drops to in the child). Dropping needs root (VIGIL_EPERM) unless the
 * ids are the process's own (then a no-op). */
int vigil__ids_parse(vigil__proc_ids *ids, const vigil_config_node *map);
void vigil__ids_free(vigil__proc_ids *ids);

/* env_passthrough names, validated. */
int vigil__env_names_parse(char ***out, const vigil_config_node *map);
/* Reads the optional keys of an action that runs a program in a child:
 * env_passthrough, workdir (resolved against base_dir), user and group, in
 * that order. The outputs are the caller's even on failure. */
int vigil__action_child_parse(char ***env_names, char **workdir, vigil__proc_ids *ids,
                              const vigil_config_node *map, const char *base_dir);
/* Reads the optional max_output key: VIGIL_ACTION_OUTPUT_DEFAULT when absent,
 * at most VIGIL_ACTION_OUTPUT_MAX (a located VIGIL_ERANGE otherwise). */
int vigil__action_get_output_max(size_t *out, const vigil_config_node *map);
/* Sets a result's status and reason, and its output from `out` without
 * trailing newlines. */
int vigil__action_result_fill(vigil_action_result *r, vigil_action_status st, const char *reason,
                              const vigil_buf *out);
/* Builds the child environment: the fixed PATH (VIGIL__PROC_PATH) plus the
 * passthrough variables that
 * are set. *out is NULL-terminated; free with vigil__action_strv_free(). */
int vigil__env_build(char ***out, char *const *names, vigil_getenv_cb getenv_cb, void *payload);

/* ---- argv templates (spawn.c) ---- */
enum { VIGIL__ARG_LITERAL = 0, VIGIL__ARG_TARGET = 1, VIGIL__ARG_PARAM = 2 };
typedef struct vigil__argv_tpl {
    size_t n;
    char **text; /* literal text, or the parameter name for VIGIL__ARG_PARAM */
    int *kind;
} vigil__argv_tpl;
/* Parses the list `key` of `map`: argv[0] is a literal program made
 * absolute; with `allow_placeholders`, {{target}} and {{params.NAME}} may
 * fill whole elements (NAME must be listed in the action's `params`). */
int vigil__argv_parse(vigil__argv_tpl *tpl, const vigil_config_node *map, const char *key,
                      const char *base_dir, bool allow_placeholders);
void vigil__argv_free(vigil__argv_tpl *tpl);
/* VIGIL_EPERM when a parameter the template needs is missing. */
int vigil__argv_check(const vigil__argv_tpl *tpl, const vigil_action_request *req,
                      const char *action);
/* Fills argv (n + 1 slots, NULL-terminated) with pointers into the template
 * and the request. */
void vigil__argv_expand(const vigil__argv_tpl *tpl, const vigil_action_request *req,
                        const char **argv);
/* "would run /bin/echo \"a b\"" style description. */
int vigil__argv_describe(vigil_buf *out, const char *const *argv);

/* ---- child processes (spawn.c) ---- */
/* Runs argv to completion through vigil__proc_run() (capture of stdout and
 * stderr up to max_output, exec->deadline_ms, exec->cancel) and fills
 * `result`: status, reason (exit_code, signal, timeout, cancelled, lost,
 * spawn_failed: the program check or the exec failed, the output says why),
 * output, exit code, signal. Returns VIGIL_OK when the result is filled. */
int vigil__action_run(const char *const *argv, const char *const *envp, const char *workdir,
                      const vigil__proc_ids *ids, const vigil_action_exec *exec, size_t max_output,
                      vigil_action_result *result);

/* Sleeps until deadline, waking for cancel; true when cancelled. */
bool vigil__sleep_until(int64_t deadline_ms, vigil_action_cancel_cb cancel, void *payload);

/* The checks of vigil_signature_verify() that need no body or secret: the
 * X-Vigil-Signature header is present, well formed, and its timestamp within
 * max_skew_s (<= 0: VIGIL_SIGNATURE_MAX_SKEW_S) of now_s. VIGIL_OK, or
 * VIGIL_EAUTH with the same messages ("signature: missing", ...). A server
 * runs it before reading a signed body, then vigil_signature_verify(). */
int vigil__signature_check_head(const char *header_value, int64_t now_s, int64_t max_skew_s);

#endif
