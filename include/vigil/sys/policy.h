/*
 * vigil/sys/policy.h - the code policy interface. Include it on purpose to
 * write a policy in C; register the type on a vigil_policy_registry with
 * vigil_policy_register(), hand the registry to the engine
 * (vigil_engine_options.policy_types, or a hub's options) and use its name as
 * the kind of a rule:
 *
 *   - name: checkout_errors
 *     kind: error_rate          # the registered kind
 *     metric: error_rate        # the engine calls evaluate for this metric only
 *     match: {service: "*"}
 *     action: scale_up          # default action of the requests
 *     target: "{{tags.service}}"
 *     limit: 0.05               # a key of the type (listed in `keys`)
 *
 * The engine owns the common keys (name kind metric match action target params
 * for cooldown repeat budget flap verify escalate act_within, and history: how
 * far back evaluate's vigil_policy_ctx_aggregate() calls reach, 1 h when
 * absent; since 0.4.0 the hub keeps windows only that long, and only for the
 * series a rule's metric and match select) and runs the same
 * state machine as for declarative rules: evaluate says whether the condition
 * holds (the verdict), and the engine decides when to act (for, cooldown,
 * budget, flap damping, silences, verification and escalation).
 *
 * Callbacks run with the engine's lock held, from the thread that called
 * vigil_engine_load() (create), vigil_engine_ingest() (evaluate) or
 * vigil_engine_free() (destroy); they must not call the engine. One type may
 * serve several engines at once (on different threads): keep per-rule data
 * in the state, and make what the payload holds safe to share.
 */
#ifndef VIGIL_SYS_POLICY_H
#define VIGIL_SYS_POLICY_H

#include "vigil/policy.h"
#include "vigil/sys/errors.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * The version of vigil_policy_type this header describes. Version 2 (0.2.0)
 * put the fields every plug-in kind shares first, the name among them;
 * version 1 is refused with VIGIL_EVERSION.
 * @since 0.1.0
 */
#define VIGIL_POLICY_TYPE_VERSION 2

/** The version of vigil_policy_verdict this header describes. @since 0.1.0 */
#define VIGIL_POLICY_VERDICT_VERSION 1

/**
 * The evaluation context handed to evaluate: window queries on any series and
 * the desired state of targets, at the event time of the metric evaluated.
 * Valid only during the call. @since 0.1.0
 */
typedef struct vigil_policy_ctx vigil_policy_ctx;

/**
 * What evaluate concludes. The engine clears it (active 0, value NaN, every
 * pointer NULL) before each call. Strings and params may point into the
 * policy's state; they must stay valid until the next evaluate or destroy.
 * @since 0.1.0
 */
typedef struct vigil_policy_verdict {
    unsigned int version; /**< VIGIL_POLICY_VERDICT_VERSION, set by the engine */
    int active;           /**< non-zero: the condition holds */
    double value;         /**< the value judged, shown in listings; NaN: none */
    /** The request to make when the engine acts. @c action NULL: the rule's
     * `action`; @c target NULL: the rule's `target` template. @c target and
     * parameter values may hold templates ({{tags.x}}, {{metric}},
     * {{target}}); a tag the metric lacks makes the engine log and count an
     * error instead of acting. @c reason NULL: the engine writes one. @c id,
     * @c policy and @c dry_run are ignored. */
    vigil_action_request request;
} vigil_policy_verdict;

/**
 * A code policy type. vigil_policy_register() copies the struct and the
 * name. The first four fields are those of every plug-in kind
 * (docs/plugins.md) and never move; later fields are only ever added at the
 * end, with a new version.
 * @since 0.1.0
 */
struct vigil_policy_type {
    unsigned int version; /**< VIGIL_POLICY_TYPE_VERSION */
    /** The kind rules name it by: [a-z][a-z0-9_]*, at most 64 bytes, not a
     * built-in kind. */
    const char *name;
    /** Handed to create; owned by the registry once registered. */
    void *payload;
    /** Optional. Frees @c payload when the registry is freed, or at once when
     * registration fails. */
    vigil_free_cb payload_free;
    /** NULL-terminated list of the type's own keys in the rule map, or NULL. */
    const char *const *keys;

    /**
     * Creates the state of one rule from its map (borrowed during the call;
     * the common keys are already checked). On failure return a negative code
     * with a located message (vigil_error_set_at()) and leave *state unset;
     * destroy is not called. Required.
     */
    int (*create)(void **state, const vigil_config_node *rule, void *payload);

    /**
     * Judges @p metric (a sample of the rule's metric whose tags satisfy its
     * match) and fills @p out. Return VIGIL_OK, or a negative code with a
     * message (vigil_error_set()): the engine logs it, counts it in
     * vigil_engine_stats.policy_errors, leaves this series' state unchanged
     * and goes on with the other policies. Required.
     */
    int (*evaluate)(void *state, const vigil_metric *metric, vigil_policy_ctx *ctx,
                    vigil_policy_verdict *out);

    /** Releases the state. Required. */
    void (*destroy)(void *state);
};

/**
 * Registers @p type under its name. The struct and the name are copied; the
 * payload belongs to the registry from this call on: payload_free (when set)
 * runs when the registry is freed, or before this function returns when
 * registration fails, whatever the reason.
 * @return VIGIL_OK; VIGIL_EINVAL (NULL registry or type, missing create,
 *         evaluate or destroy); VIGIL_EVERSION (a version other than
 *         VIGIL_POLICY_TYPE_VERSION); VIGIL_ENAME (bad name); VIGIL_EEXISTS
 *         (the name is registered, or a built-in kind); VIGIL_ENOMEM.
 * Not thread-safe against other calls on the same registry; an engine using
 * the registry only reads it.
 * @since 0.2.0
 */
VIGIL_EXTERN(int)
vigil_policy_register(vigil_policy_registry *registry, const vigil_policy_type *type);

/**
 * Computes @p agg over the samples of @p series_key (NULL: the series being
 * evaluated) in the @p duration_ms before the event time (now - duration <
 * ts <= now), through the engine's aggregate callback or its own windows.
 * @return VIGIL_OK; VIGIL_ENOTFOUND (no sample; fewer than two for rate);
 *         VIGIL_EINVAL (NULL ctx or out, duration <= 0); VIGIL_ERANGE
 *         (duration beyond the windows kept); VIGIL_ENOMEM.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_policy_ctx_aggregate(vigil_policy_ctx *ctx, const char *series_key, vigil_window_agg agg,
                           int64_t duration_ms, double *out);

/**
 * The desired state of @p target as JSON text (borrowed, valid during the
 * evaluate call). @return VIGIL_OK, VIGIL_ENOTFOUND (none set), VIGIL_EINVAL.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_policy_ctx_desired(vigil_policy_ctx *ctx, const char *target, const char **json_out);

/**
 * A number of the desired state of @p target at a dotted @p field path
 * ("replicas", "spec.replicas").
 * @return VIGIL_OK; VIGIL_ENOTFOUND (no desired state or no such field);
 *         VIGIL_ETYPE (the field is not a number); VIGIL_EINVAL.
 * @since 0.1.0
 */
VIGIL_EXTERN(int)
vigil_policy_ctx_desired_number(vigil_policy_ctx *ctx, const char *target, const char *field,
                                double *out);

/** The series key of the metric being evaluated (borrowed). @since 0.1.0 */
VIGIL_EXTERN(const char *) vigil_policy_ctx_series(const vigil_policy_ctx *ctx);

/** The event time (the metric's timestamp, ms). @since 0.1.0 */
VIGIL_EXTERN(int64_t) vigil_policy_ctx_now(const vigil_policy_ctx *ctx);

/** The name of the rule being evaluated (borrowed). @since 0.1.0 */
VIGIL_EXTERN(const char *) vigil_policy_ctx_policy(const vigil_policy_ctx *ctx);

/** The engine's logger, component "policy" (never NULL). @since 0.1.0 */
VIGIL_EXTERN(const vigil_logger *) vigil_policy_ctx_logger(const vigil_policy_ctx *ctx);

#ifdef __cplusplus
}
#endif

#endif
