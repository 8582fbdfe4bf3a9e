/*
 * vigil/policy.h - policies: declarative rules (threshold, absent, change,
 * desired, anomaly) and code policies (policy types, <vigil/sys/policy.h>,
 * registered on a vigil_policy_registry) that the policy engine
 * (<vigil/engine.h>) runs to turn metrics into action requests, through a
 * state machine per (policy, series):
 *
 *   ok -> pending (condition true, waiting `for`) -> firing (one request)
 *      -> resolved (condition false past `clear`) -> ok
 *
 * with hysteresis (`clear`), a per-target `cooldown` (a request it holds back
 * is `deferred` and made by the timers when it ends, if the condition still
 * holds), `repeat` while firing, a per-target `budget` (then `exhausted`),
 * flap damping (`flapping`), silences (`silenced`), `act_within` (samples
 * older than that, relative to the engine's clock, are never acted on) and a
 * closed loop: a succeeded action is verified (`remediated` at the first
 * recovery within `verify.within`, else `ineffective` and the next `escalate`
 * action is requested: `escalated`; with no escalation left the rule's
 * action is requested again: `fired` with a reason starting "retry: ");
 * failed or timed-out actions are `action_failed` and escalate at once. A
 * remediator's refusal by its cooldown with a retry_after_ms is `deferred`
 * and sent again then; by its quarantine, `quarantined` (sent again after
 * retry_after_ms when given).
 *
 * Rules (a YAML list, each a map; unknown keys are refused, every error is
 * located "file:line:col: policies[2].op: ..."):
 *
 *   name        required, unique: [A-Za-z0-9_.:-]{1,128}
 *   kind        required: threshold | absent | change | desired | anomaly, or
 *               the kind of a registered code policy
 *   metric      required: the metric name the policy watches
 *   match       {tag: value}: exact, or a glob (* ? [...]) when it holds one;
 *               "*" only requires the tag. Every tag named by a template
 *               ({{tags.x}}) must be a key of match.
 *   window      duration over which `aggregate` is computed (default 1m;
 *               threshold, change, desired, anomaly)
 *   aggregate   last mean min max sum count rate stddev p50 p90 p95 p99
 *               (default last; threshold, desired)
 *   op          > >= < <= == != (threshold, change, desired; default ">" for
 *               change)
 *   threshold   number (threshold, change)
 *   clear       number: while firing, the condition holds until the value
 *               is past clear (hysteresis; default: threshold; for anomaly
 *               a sigma)
 *   for         duration the condition must hold before firing (default 0s);
 *               for absent: how long without a sample (required)
 *   field       desired: dotted path of a number in the target's desired
 *               state (vigil_engine_set_desired()), compared with `op`
 *   sigma       anomaly: |last - mean| / stddev over `window` above sigma
 *   action      required (for code policies: default of their requests)
 *   target      template of the target, e.g. "{{tags.service}}" (default "")
 *   params      {name: template} ({{tags.x}}, {{target}}, {{metric}})
 *   cooldown    minimum time between two requests for one target (default 0)
 *   repeat      ask again while still firing, this long after the previous
 *               request, once its result has arrived (default 0: never)
 *   budget      {max_actions: N, window: duration}: per target
 *   flap        {transitions: N, window: duration, settle: duration}
 *   verify      {within: duration} (default 60s)
 *   escalate    [action, ...] requested in turn when verification fails
 *   act_within  this policy's act_within (default: the engine's)
 *
 * Time. Conditions are evaluated in event time (each sample's timestamp), so a
 * recorded stream gives the same decisions every time (vigil_engine_replay());
 * `for` runs on sample timestamps. Cooldowns, budgets, absent timers, flap
 * settle and verification deadlines use the engine's clock (injectable).
 *
 * The engine itself (persistence, threads, its functions) is in <vigil/engine.h>.
 */
#ifndef VIGIL_POLICY_H
#define VIGIL_POLICY_H

#include "vigil/action.h"
#include "vigil/batch.h"
#include "vigil/buf.h"
#include "vigil/common.h"
#include "vigil/config.h"
#include "vigil/log.h"
#include "vigil/metric.h"
#include "vigil/store.h"
#include "vigil/types.h"
#include "vigil/window.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @name Limits and defaults @since 0.1.0 */
/**@{*/
#define VIGIL_POLICY_NAME_MAX           128     /**< bytes in a policy name */
#define VIGIL_POLICY_MAX_RULES          100000  /**< policies in one engine */
#define VIGIL_POLICY_ACT_WITHIN_DEFAULT 300000  /**< ms (5 min) */
#define VIGIL_POLICY_VERIFY_DEFAULT     60000   /**< ms (60 s) */
#define VIGIL_POLICY_WINDOW_DEFAULT     60000   /**< ms (1 min) */
#define VIGIL_POLICY_DESIRED_MAX        1048576 /**< bytes of one target's desired state */
#define VIGIL_POLICY_ACTION_ID_MAX      64      /**< bytes in an action id the engine mints */
/**@}*/

/** A code policy type (vtable in <vigil/sys/policy.h>). @since 0.1.0 */
typedef struct vigil_policy_type vigil_policy_type;

/**
 * Creates an empty registry of policy types (the built-in kinds threshold,
 * absent, change, desired and anomaly are not types: every engine knows them).
 * @param out receives the registry, the caller's; free with vigil_policy_registry_free().
 * @return VIGIL_OK, VIGIL_EINVAL (NULL @p out) or VIGIL_ENOMEM.
 * @since 0.2.0
 */
VIGIL_EXTERN(int) vigil_policy_registry_new(vigil_policy_registry **out);

/**
 * Frees a registry and runs the payload_free of every type registered on it.
 * Every engine that uses it must have been freed first. NULL is a no-op.
 * @since 0.2.0
 */
VIGIL_EXTERN(void) vigil_policy_registry_free(vigil_policy_registry *registry);

#ifdef __cplusplus
}
#endif

#endif
