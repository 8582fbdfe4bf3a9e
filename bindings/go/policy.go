package vigil

/*
#include "glue.h"
*/
import "C"

import (
	"sync"
	"time"
	"unsafe"
)

// Policy is a code policy written in Go: one instance per configured rule,
// made by the PolicyFactory of its kind. The engine calls Evaluate for each
// sample of the rule's metric whose tags satisfy its match, with the engine
// lock held (from the goroutine or C thread that ingests): keep it short,
// and do not call the engine from it. Several engines may call instances of
// one kind at once.
//
// The verdict says whether the condition holds; the engine decides when to
// act (for, cooldown, budget, flap damping, silences, verification). An
// error (or a panic) is logged and counted by the engine
// (EngineStats.PolicyErrors) and leaves the series' state unchanged.
type Policy interface {
	Evaluate(m Metric, ctx *PolicyContext) (Verdict, error)
}

// PolicyFunc adapts a function to the Policy interface.
type PolicyFunc func(m Metric, ctx *PolicyContext) (Verdict, error)

// Evaluate calls f.
func (f PolicyFunc) Evaluate(m Metric, ctx *PolicyContext) (Verdict, error) { return f(m, ctx) }

// PolicyFactory creates the Policy of one rule from its map (the common keys
// name, kind, metric, match, action, target... are the engine's; read the
// kind's own keys, listed at registration). Return rule.Errorf(...) for a
// bad value so the error is located in the file.
type PolicyFactory func(rule *ConfigNode) (Policy, error)

// Verdict is what Evaluate concludes. Action, Target and Reason "" mean the
// rule's action, the rule's target template and a reason the engine writes.
// Target and Params values may hold templates ({{tags.x}}, {{metric}},
// {{target}}).
type Verdict struct {
	Active bool    // the condition holds
	Value  float64 // the value judged, shown in listings
	Action string
	Target string
	Reason string
	Params map[string]string
}

// PolicyContext gives Evaluate window queries and desired states, at the
// event time of the metric. Valid only during the call.
type PolicyContext struct {
	ctx *C.vigil_policy_ctx
}

// WindowAgg is a window aggregate (vigil_window_agg).
type WindowAgg int

// Window aggregates.
const (
	AggLast   WindowAgg = C.VIGIL_WINDOW_LAST
	AggMean   WindowAgg = C.VIGIL_WINDOW_MEAN
	AggMin    WindowAgg = C.VIGIL_WINDOW_MIN
	AggMax    WindowAgg = C.VIGIL_WINDOW_MAX
	AggSum    WindowAgg = C.VIGIL_WINDOW_SUM
	AggCount  WindowAgg = C.VIGIL_WINDOW_COUNT
	AggRate   WindowAgg = C.VIGIL_WINDOW_RATE
	AggStddev WindowAgg = C.VIGIL_WINDOW_STDDEV
)

func (c *PolicyContext) check() error {
	if c == nil || c.ctx == nil {
		return errorf(ErrInval, "policy context used outside Evaluate")
	}
	return nil
}

// Aggregate computes agg over the samples of seriesKey ("" for the series
// being evaluated) in the d before the event time. ErrNotFound when there
// is no sample.
func (c *PolicyContext) Aggregate(seriesKey string, agg WindowAgg, d time.Duration) (float64, error) {
	if err := c.check(); err != nil {
		return 0, err
	}
	var key *C.char
	if seriesKey != "" {
		key = C.CString(seriesKey)
		defer C.free(unsafe.Pointer(key))
	}
	var out C.double
	err := call(func() C.int {
		return C.vigil_policy_ctx_aggregate(c.ctx, key, C.vigil_window_agg(agg),
			C.int64_t(d/time.Millisecond), &out)
	})
	return float64(out), err
}

// DesiredNumber reads a number of the desired state of target at a dotted
// field path ("replicas", "spec.replicas").
func (c *PolicyContext) DesiredNumber(target, field string) (float64, error) {
	if err := c.check(); err != nil {
		return 0, err
	}
	ct, cf := C.CString(target), C.CString(field)
	defer C.free(unsafe.Pointer(ct))
	defer C.free(unsafe.Pointer(cf))
	var out C.double
	err := call(func() C.int { return C.vigil_policy_ctx_desired_number(c.ctx, ct, cf, &out) })
	return float64(out), err
}

// Series is the series key of the metric evaluated.
func (c *PolicyContext) Series() string {
	if c.check() != nil {
		return ""
	}
	return C.GoString(C.vigil_policy_ctx_series(c.ctx))
}

// NowMs is the event time (the metric's timestamp, ms).
func (c *PolicyContext) NowMs() int64 {
	if c.check() != nil {
		return 0
	}
	return int64(C.vigil_policy_ctx_now(c.ctx))
}

// Policy is the name of the rule evaluated.
func (c *PolicyContext) Policy() string {
	if c.check() != nil {
		return ""
	}
	return C.GoString(C.vigil_policy_ctx_policy(c.ctx))
}

type policyType struct {
	kind    string
	factory PolicyFactory
}

// registry is what the three registries share: a C object freed by Close,
// refused while an object that borrows it is open.
type registry struct {
	mu    sync.Mutex
	users int
}

func (r *registry) use() {
	r.mu.Lock()
	r.users++
	r.mu.Unlock()
}

// release is called through the owning registry, which must not be nil
// (a promoted method on a nil pointer would fault).
func (r *registry) release() {
	r.mu.Lock()
	r.users--
	r.mu.Unlock()
}

// PolicyRegistry holds code policy kinds written in Go, for an Engine or a
// Hub (EngineOptions.PolicyTypes, HubOptions.PolicyTypes). Register every
// kind before handing it over; it must stay open while they use it.
type PolicyRegistry struct {
	registry
	r *C.vigil_policy_registry
}

// NewPolicyRegistry creates an empty registry. Close releases it.
func NewPolicyRegistry() (*PolicyRegistry, error) {
	var r *C.vigil_policy_registry
	if err := call(func() C.int { return C.vigil_policy_registry_new(&r) }); err != nil {
		return nil, err
	}
	pr := &PolicyRegistry{r: r}
	setFinalizer(pr, func(p *PolicyRegistry) { p.Close() })
	return pr, nil
}

// Register adds the policy kind (rules name it in `kind:`): [a-z][a-z0-9_]*,
// not a built-in kind. keys lists the kind's own keys in the rule map.
func (r *PolicyRegistry) Register(kind string, keys []string, factory PolicyFactory) error {
	if factory == nil {
		return errorf(ErrInval, "policy kind %s: nil factory", kind)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.r == nil {
		return errorf(ErrClosed, "policy registry is closed")
	}
	ck := C.CString(kind)
	defer C.free(unsafe.Pointer(ck))
	cks := newCStrings(keys)
	defer cks.free()
	h := newHandle(&policyType{kind: kind, factory: factory})
	return call(func() C.int {
		return C.gv_policy_register(r.r, ck, cks.ptr(), C.size_t(len(keys)), C.uintptr_t(h))
	})
}

// Close frees the registry and its kinds. It fails with ErrBusy while an
// Engine or Hub using it is open. Idempotent.
func (r *PolicyRegistry) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.users > 0 {
		return errorf(ErrBusy, "policy registry is used by %d open object(s)", r.users)
	}
	if r.r != nil {
		C.vigil_policy_registry_free(r.r)
		r.r = nil
	}
	return nil
}

func (r *PolicyRegistry) ptr() *C.vigil_policy_registry {
	if r == nil {
		return nil
	}
	return r.r
}
