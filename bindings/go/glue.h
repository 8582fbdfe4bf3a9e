/*
 * glue.h - the C side of the Go binding: the vtables of the plug-in types
 * written in Go (policy, action, collector), whose entries forward to the
 * functions exported by callbacks.go, and small helpers cgo cannot express
 * (calling a C function pointer, building NULL-terminated key lists).
 *
 * No Go pointer is ever kept by C: a payload or state holds a runtime/cgo
 * Handle (a uintptr_t), deleted by the payload_free or destroy entry.
 */
#ifndef VIGIL_GO_GLUE_H
#define VIGIL_GO_GLUE_H

#include <stdint.h>
#include <stdlib.h>
#include <vigil/vigil.h>
#include <vigil/sys/action.h>
#include <vigil/sys/collector.h>
#include <vigil/sys/policy.h>

/* The payload of a type registered from Go: the handle of the Go factory and
 * the type's own keys (the registries copy the struct and the name, not the
 * key list, so it lives here until payload_free). */
typedef struct gv_payload {
    uintptr_t handle;
    char **keys;
} gv_payload;

/* The state of one rule of a Go policy: the handle of the Go Policy and the
 * strings of its last verdict (they must stay valid until the next evaluate). */
typedef struct gv_policy_state {
    uintptr_t handle;
    char *action;
    char *target;
    char *reason;
    vigil_action_param *params;
    size_t nparams;
} gv_policy_state;

/* Registration: @p keys (nkeys entries) are copied; @p handle belongs to the
 * registry from this call on (deleted by payload_free, also on failure). */
int gv_policy_register(vigil_policy_registry *reg, const char *name, char **keys, size_t nkeys,
                       uintptr_t handle);
int gv_action_register(vigil_action_registry *reg, const char *name, char **keys, size_t nkeys,
                       uintptr_t handle);
int gv_collector_register(vigil_collector_registry *reg, const char *name, char **keys,
                          size_t nkeys, uintptr_t handle, unsigned int flags);

/* Replaces the strings of a policy's verdict (each owned by the state from now on). */
void gv_policy_state_set(gv_policy_state *s, char *action, char *target, char *reason,
                         vigil_action_param *params, size_t nparams);
void gv_policy_verdict_fill(gv_policy_state *s, vigil_policy_verdict *out);

/* Callback trampolines handed to the library; the payload is a handle. */
void gv_log_cb(const vigil_log_record *record, void *payload);
void gv_engine_on_request(void *payload, const vigil_engine_request *req);
void gv_engine_on_decision(void *payload, const vigil_store_decision *d);
int gv_store_point_cb(const vigil_store_series *series, const vigil_store_point *point,
                      void *payload);
void gv_done_cb(const vigil_action_result *result, int64_t audit_seq, const char *audit_mac,
                void *payload);

/* A dispatcher whose submit forwards to the Go function of @p handle, and
 * how Go calls the done callback it was handed. */
vigil_action_dispatcher gv_dispatcher(uintptr_t handle);
void gv_call_done(vigil_action_done_cb done, const vigil_action_result *result, void *payload);

/* A vigil_logger whose callback is gv_log_cb with @p handle. */
vigil_logger gv_logger(uintptr_t handle, int enabled, vigil_log_level min_level);

/* The handle as a payload pointer. */
void *gv_ptr(uintptr_t handle);

#endif
