/* Private state of the policy engine shared by the files of lib/policy:
 * map.c (string hash map), rules.c (rule parsing, templates), engine.c (the
 * state machine, ingest, tick, closed loop), persist.c (persisted state),
 * index.c (the rule index), reload.c (loading and replacing the rule set) and
 * api.c (silences, desired state, JSON listings, the evaluation context,
 * replay). */
#ifndef VIGIL_POLICY_INT_H
#define VIGIL_POLICY_INT_H

#include "internal/common.h"
#include "vigil/engine.h"
#include "vigil/policy.h"
#include "vigil/sys/policy.h"

#include <pthread.h>

/* ---- string hash map (map.c): keys borrowed from the values ---------------- */

typedef struct vigil__pmap_ent {
    const char *key;
    uint64_t hash;
    void *val;
} vigil__pmap_ent;

typedef struct vigil__pmap {
    vigil__pmap_ent *e; /* cap slots, a power of two, at most half full */
    size_t cap;
    size_t n;
} vigil__pmap;

void *vigil__pmap_get(const vigil__pmap *m, const char *key);
/* Inserts or replaces; the key must live as long as the entry. */
int vigil__pmap_put(vigil__pmap *m, const char *key, void *val);
/* Removes and returns the value, or NULL. */
void *vigil__pmap_del(vigil__pmap *m, const char *key);
void vigil__pmap_dispose(vigil__pmap *m);

/* ---- rules ------------------------------------------------------------------ */

enum { POL_THRESHOLD, POL_ABSENT, POL_CHANGE, POL_DESIRED, POL_ANOMALY, POL_CODE };
enum { OP_GT, OP_GE, OP_LT, OP_LE, OP_EQ, OP_NE };
enum { ST_OK, ST_PENDING, ST_FIRING, ST_RESOLVED };
/* phase of an action the engine requested */
enum { PH_OUTSTANDING, PH_APPROVAL, PH_VERIFY };

typedef struct pol_matcher {
    char *key;
    char *value;
    int glob; /* value holds * ? or [ */
} pol_matcher;

typedef struct pol_series pol_series;
typedef struct pol_target pol_target;
typedef struct pol_action pol_action;

typedef struct pol_rule {
    char *name;
    char *kind_name;
    int kind;
    char *metric;
    pol_matcher *match;
    size_t nmatch;
    int64_t window_ms;
    vigil_window_agg agg;
    int op;
    double threshold;
    double clear;
    int64_t for_ms;
    int64_t history_ms; /* code policies: the history evaluate queries (`history`) */
    char *field;
    double sigma;
    char *action; /* may be NULL for code policies */
    char *target; /* template, "" by default */
    char **param_keys;
    char **param_vals; /* templates */
    size_t nparams;
    int64_t cooldown_ms;
    int64_t repeat_ms;
    int64_t budget_max; /* 0: no budget */
    int64_t budget_window_ms;
    int64_t flap_transitions; /* 0: no flap damping */
    int64_t flap_window_ms;
    int64_t flap_settle_ms;
    int64_t verify_ms;
    char **escalate;
    size_t nescalate;
    int64_t act_within_ms;         /* 0: the engine's */
    const vigil_policy_type *type; /* code policies: borrowed from o.policy_types */
    void *state;                   /* code policy state */
    char *def; /* canonical text of the rule's YAML map: equal text, same definition */
    char *file;
    unsigned int line;
    size_t order;
    vigil__pmap series;    /* series key -> pol_series */
    vigil__pmap per_agent; /* agent -> series it added (uintptr_t), for series_per_agent */
    int64_t capped_noted;  /* clock of the last `capped` decision, 0: none */
    pol_series **slist;    /* in creation order */
    size_t nslist, capslist;
    vigil__pmap targets; /* target -> pol_target */
} pol_rule;

struct pol_series {
    pol_rule *rule;
    char *key;
    char **tag_keys;
    char **tag_vals;
    size_t ntags;
    char *agent;
    char *owner; /* the agent that added the series (counted in rule->per_agent), or NULL */
    int state;
    int64_t since;
    int64_t pending_since;
    double value;
    int has_value;
    int need_act;
    unsigned int noted; /* decisions already recorded in this episode (bits) */
    int64_t last_act;   /* clock of the last request, 0: none */
    char *reason;       /* reason of the current episode */
    /* a request held back (a cooldown, a quarantine): not made before this
     * clock, then made by the timers if the condition still holds; 0: none */
    int64_t defer_until;
    char *retry; /* why the next request is a retry ("the cooldown ended"), or NULL */
    /* flap damping */
    int64_t *flap_ts;
    size_t nflap;
    int flapping;
    int64_t last_transition;
    /* absent */
    int64_t last_seen;
    /* change: (ts, value) samples inside the window */
    int64_t *ring_ts;
    double *ring_v;
    size_t ring_head, ring_n, ring_cap;
    /* code policies: the request of the last active verdict */
    char *code_action;
    char *code_target;
    char *code_reason;
    char **code_pkeys;
    char **code_pvals;
    size_t code_nparams;
    /* actions of this series not yet settled */
    pol_action **acts;
    size_t nacts, capacts;
};

struct pol_target {
    char *target;
    int64_t last_action;
    int64_t *budget_ts;
    size_t nbudget;
};

struct pol_action {
    char *id;
    pol_series *series;
    char *action;
    char *target;
    int esc; /* escalation level: 0 the rule's action, k: escalate[k-1] */
    int phase;
    int64_t deadline;
    int64_t requested; /* when it was requested (0: unknown, state of an older version) */
    int recovered;     /* the series recovered while the result was awaited */
    int64_t recovered_at;
};

/* The last success of an action on a target (engine.c, e->done). */
typedef struct pol_done {
    char *key; /* "action\x1ftarget" */
    int64_t at;
} pol_done;

/* noted bits */
#define NOTE_SILENCED  0x1u
#define NOTE_FLAPPING  0x2u
#define NOTE_COOLDOWN  0x4u
#define NOTE_EXHAUSTED 0x8u
#define NOTE_NOTARGET  0x10u
#define NOTE_NOACTION  0x20u

typedef struct pol_silence {
    char *id;
    char *matchers_json;
    char **keys;
    char **globs;
    size_t n;
    int64_t starts, ends;
    char *created_by;
    char *comment;
    int64_t created;
} pol_silence;

typedef struct pol_desired {
    char *target;
    char *json;
    void *doc; /* cJSON * */
} pol_desired;

typedef struct pol_agent {
    char *id;
    int64_t last;
} pol_agent;

typedef struct pol_vec {
    pol_rule **v;
    size_t n, cap;
} pol_vec;

typedef struct pol_index {
    char *key;
    vigil__pmap values; /* tag value -> pol_vec */
} pol_index;

typedef struct pol_bucket {
    char *metric;
    pol_index *idx;
    size_t nidx;
    pol_vec rest; /* rules without an exact matcher */
} pol_bucket;

/* a call-out queued under the lock, run after unlocking */
typedef struct pol_out {
    struct pol_out *next;
    int is_request;
    vigil_store_decision d;
    vigil_action_request r;
    vigil_action_param *params;
    char *series;
    char *strs[8];
} pol_out;

struct vigil_engine {
    pthread_mutex_t mu;
    vigil_engine_options o;
    vigil_logger logger;
    int64_t act_within_ms;
    int64_t series_idle_ms; /* < 0: never */
    size_t series_per_agent;
    pol_rule **rules;
    size_t nrules, caprules;
    vigil__pmap by_name;
    vigil__pmap by_metric; /* metric -> pol_bucket */
    vigil__pmap actions;   /* action id -> pol_action */
    vigil__pmap agents;    /* agent -> pol_agent */
    vigil__pmap desired;   /* target -> pol_desired */
    /* "action\x1ftarget" -> pol_done: when a request of that action on that
     * target last succeeded (engine clock), for every rule */
    vigil__pmap done;
    pol_silence **silences;
    size_t nsilences, capsilences;
    vigil_window_set *windows; /* own windows when o.aggregate is NULL */
    uint64_t generation;       /* bumped whenever the rule set changes */
    int64_t window_max_age;
    uint64_t seq;  /* action ids minted */
    uint64_t sseq; /* silence ids minted */
    vigil_engine_stats stats;
    pol_out *out_head, **out_tail;
    vigil_buf key;  /* scratch: series key */
    vigil_buf tmp;  /* scratch: templates */
    vigil_buf tmp2; /* scratch */
    int replaying;
    int64_t replay_now;
};

/* rules.c */
/* Parses a `policies:` list. With check_loaded, a name already loaded in the
 * engine is refused (VIGIL_EEXISTS) and the limit counts the loaded rules. */
int vigil__policy_parse_rules(vigil_engine *e, const vigil_config_node *list, int check_loaded,
                              pol_rule ***out, size_t *nout);
void vigil__policy_rule_free(pol_rule *r);
/* Whether @p kind is one of the built-in kinds (threshold, absent, ...). */
bool vigil__policy_kind_builtin(const char *kind);
/* The type registered under @p name, or NULL (also for a NULL registry). */
const vigil_policy_type *vigil__policy_registry_find(const vigil_policy_registry *registry,
                                                     const char *name);
/* Expands a template. Returns VIGIL_OK, or VIGIL_ENOTFOUND with *missing set
 * to the name of the tag that is absent or empty (a pointer into text). */
int vigil__policy_expand(vigil_buf *out, const char *text, const pol_series *s, const char *target,
                         const char **missing, size_t *missing_len);
int vigil__policy_glob(const char *pattern, const char *s);
const char *vigil__policy_series_tag(const pol_series *s, const char *key);

/* engine.c */
/* The history (ms) rule r needs in a series' window: window + for of the
 * kinds that read windows (threshold, desired, anomaly), `history` of code
 * policies, 0 for the others (change keeps its own samples, absent none). */
int64_t vigil__policy_rule_history(const pol_rule *r);
int64_t vigil__policy_now(vigil_engine *e);
void vigil__policy_flush(vigil_engine *e);
int vigil__policy_aggregate(vigil_engine *e, const char *series_key, vigil_window_agg agg,
                            int64_t duration_ms, int64_t now_ms, double *out);
int vigil__policy_ingest_locked(vigil_engine *e, const vigil_batch *batch, int64_t now);
int vigil__policy_tick_locked(vigil_engine *e, int64_t now);
const char *vigil__policy_state_name(const pol_series *s);
/* strdup of s, NULL for NULL; sets *fail when out of memory */
char *vigil__policy_dup_or_null(const char *s, int *fail);
/* Finds or creates the series of r for key; NULL with the error set on failure. */
/* `agent`: the agent whose sample adds the series (NULL: none, not counted
 * against series_per_agent). NULL with the error set when a cap refuses it
 * (counted, logged, a `capped` decision at most once a minute per rule). */
pol_series *vigil__policy_series_new(vigil_engine *e, pol_rule *r, const char *agent,
                                     const char *key, const vigil_tag *tags, size_t ntags);
/* Finds or creates the target of r; NULL when out of memory. */
pol_target *vigil__policy_target_get(pol_rule *r, const char *target);
int vigil__policy_act_attach(vigil_engine *e, pol_series *s, pol_action *a);
void vigil__policy_action_free(pol_action *a);
/* Frees the series, targets and actions of r (not the rule). */
void vigil__policy_rule_state_free(vigil_engine *e, pol_rule *r);

/* persist.c: the state format's writer and reader */
void vigil__policy_persist_fail(vigil_engine *e, const char *what, const char *key);
void vigil__policy_persist_series(vigil_engine *e, pol_series *s);
void vigil__policy_persist_target(vigil_engine *e, pol_rule *r, pol_target *t);
void vigil__policy_persist_action(vigil_engine *e, pol_action *a);
void vigil__policy_unpersist_action(vigil_engine *e, pol_action *a);
int vigil__policy_persist_seq(vigil_engine *e);
/* Restores the persisted series, targets and actions of r. */
int vigil__policy_restore_rule(vigil_engine *e, pol_rule *r, int64_t now);
/* Reads the engine's sequences ("policy/_engine"); absent is not an error. */
int vigil__policy_load_seq(vigil_engine *e);
/* Deletes the persisted state of a rule (every key under "policy/<name>/"). */
void vigil__policy_unpersist_rule(vigil_engine *e, const char *name);

/* index.c: rules by metric name */
int vigil__policy_vec_push(pol_vec *v, pol_rule *r);
int vigil__policy_index_add(vigil_engine *e, pol_rule *r);
void vigil__policy_index_remove(vigil_engine *e, pol_rule *r);
/* Frees every bucket of a by_metric map and the map. */
void vigil__policy_buckets_free(vigil__pmap *m);

/* reload.c */
/* Indexes the n parsed rules and restores their state: all of them or, on
 * failure, none. Called with the lock held. */
int vigil__policy_commit_rules(vigil_engine *e, pol_rule **rules, size_t n);

/* api.c */
int vigil__policy_silences_load(vigil_engine *e);
void vigil__policy_silences_free(vigil_engine *e);
const pol_silence *vigil__policy_silenced(vigil_engine *e, const pol_rule *r, const pol_series *s,
                                          const char *target, int64_t now);
void vigil__policy_desired_free(vigil_engine *e);
int vigil__policy_desired_number(vigil_engine *e, const char *target, const char *field,
                                 double *out);

struct vigil_policy_ctx {
    vigil_engine *engine;
    const pol_rule *rule;
    const char *series;
    int64_t now;
};

#endif
