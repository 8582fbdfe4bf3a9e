/*
 * vigil/sys/policy.h - the code policy interface. Include it on purpose to
 * write a policy in C; register the type on an engine with
 * vigil_engine_register_type() and use its kind in a rule:
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
 * for cooldown repeat budget flap verify escalate act_within) and runs the same
 * state machine as for declarative rules: evaluate says whether the condition
 * holds (the verdict), and the engine decides when to act (for, cooldown,
 * budget, flap damping, silences, verification and escalation).
 *
 * Callbacks run with the engine's lock held, from the thread that called
 * vigil_engine_load() (create), vigil_engine_ingest() (evaluate) or
 * vigil_engine_free() (destroy); they must not call the engine.
 */
#ifndef VIGIL_SYS_POLICY_H
#define VIGIL_SYS_POLICY_H

#include "vigil/policy.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The version of vigil_policy_type this header describes. @since 0.1.0 */
#define VIGIL_POLICY_TYPE_VERSION 1

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
 * A code policy type. Register a pointer to it; the struct (usually static)
 * must outlive the engine. Fields are only ever added at the end, with a new
 * version.
 * @since 0.1.0
 */
struct vigil_policy_type {
    unsigned int version; /**< VIGIL_POLICY_TYPE_VERSION */
    /** NULL-terminated list of the type's own keys in the rule map, or NULL. */
    const char *const *keys;

    /**
     * Creates the state of one rule from its map (borrowed during the call;
     * the common keys are already checked). On failure return a negative code
     * with a located message (vigil_config_error()) and leave *state unset;
     * destroy is not called. Required.
     */
    int (*create)(void **state, const vigil_config_node *rule, void *payload);

    /**
     * Judges @p metric (a sample of the rule's metric whose tags satisfy its
     * match) and fills @p out. Return VIGIL_OK, or a negative code with a
     * message (vigil_policy_error_set()): the engine logs it, counts it in
     * vigil_engine_stats.policy_errors, leaves this series' state unchanged
     * and goes on with the other policies. Required.
     */
    int (*evaluate)(void *state, const vigil_metric *metric, vigil_policy_ctx *ctx,
                    vigil_policy_verdict *out);

    /** Releases the state. Required. */
    void (*destroy)(void *state);

    /** Releases the registration payload when the engine is freed (or when
     * registration fails). Optional. */
    void (*payload_free)(void *payload);
};

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

/**
 * Records @p code and @p message (copied, clipped to 1 KiB; NULL: the code's
 * vigil_strerror()) as the calling thread's last error, for evaluate to
 * explain a failure.
 * @return @p code. @since 0.1.0
 */
VIGIL_EXTERN(int) vigil_policy_error_set(int code, const char *message);

#ifdef __cplusplus
}
#endif

#endif
