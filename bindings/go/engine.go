package vigil

/*
#include "glue.h"
*/
import "C"

import (
	"encoding/json"
	"runtime/cgo"
	"time"
	"unsafe"
)

// Decision is one policy decision as stored (GET /v1/decisions): fired,
// resolved, deferred, silenced, exhausted, remediated, ...
type Decision struct {
	ID       int64  `json:"id"`
	TimeMs   int64  `json:"ts"`
	Policy   string `json:"policy"`
	Series   string `json:"series"`
	Target   string `json:"target"`
	Action   string `json:"action"`
	ActionID string `json:"action_id"`
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
}

// EngineRequest is an action request made by the engine, with the series
// that triggered it.
type EngineRequest struct {
	ActionRequest
	Series string
}

type engineHooks struct {
	onRequest  func(EngineRequest)
	onDecision func(Decision)
}

// EngineOptions configure an Engine. Store is required (state, decisions
// and silences persist there) and must stay open while the engine is.
type EngineOptions struct {
	Store *Store
	// Policies is YAML text: a list of rules, or a map with a `policies:`
	// list (configs/policies/*.yaml). "": none.
	Policies    string
	PolicyTypes *PolicyRegistry // kinds written in Go; nil: built-in kinds only
	// OnRequest is called for every request the engine makes and OnDecision
	// for every decision, from the goroutine or thread that called Ingest or
	// Tick, without the engine lock: they may not block for long.
	OnRequest  func(EngineRequest)
	OnDecision func(Decision)
	ActWithin  time.Duration // samples older than this are never acted on; 0: 5 min
	Logger     Logger
	LogLevel   LogLevel
}

// Engine is a policy engine (vigil_engine) on a store: it turns metrics into
// action requests through declarative rules and Go (or C) code policies.
// Safe for concurrent use.
type Engine struct {
	guard
	e      *C.vigil_engine
	hooks  cgo.Handle
	log    *logHook
	store  *Store
	policy *PolicyRegistry
}

// NewEngine creates an engine and loads opts.Policies.
func NewEngine(opts EngineOptions) (*Engine, error) {
	if opts.Store == nil {
		return nil, errorf(ErrInval, "EngineOptions.Store is required")
	}
	if err := opts.Store.enter(); err != nil {
		return nil, err
	}
	defer opts.Store.leave()
	var co C.vigil_engine_options
	C.vigil_engine_options_init(&co, C.VIGIL_ENGINE_OPTIONS_VERSION)
	co.store = opts.Store.s
	eng := &Engine{store: opts.Store, policy: opts.PolicyTypes}
	eng.hooks = newHandle(&engineHooks{onRequest: opts.OnRequest, onDecision: opts.OnDecision})
	if opts.OnRequest != nil {
		co.on_request = (*[0]byte)(C.gv_engine_on_request)
		co.request_payload = C.gv_ptr(C.uintptr_t(eng.hooks))
	}
	if opts.OnDecision != nil {
		co.on_decision = (*[0]byte)(C.gv_engine_on_decision)
		co.decision_payload = C.gv_ptr(C.uintptr_t(eng.hooks))
	}
	co.act_within_ms = C.int64_t(opts.ActWithin / time.Millisecond)
	eng.log, co.logger = newLogHook(opts.Logger, opts.LogLevel)
	co.policy_types = opts.PolicyTypes.ptr()
	var e *C.vigil_engine
	if err := call(func() C.int { return C.vigil_engine_new(&e, &co) }); err != nil {
		deleteHandle(eng.hooks)
		eng.log.free()
		return nil, err
	}
	eng.e = e
	if opts.PolicyTypes != nil {
		opts.PolicyTypes.use()
	}
	setFinalizer(eng, func(e *Engine) { e.Close() })
	if opts.Policies != "" {
		if err := eng.Load(opts.Policies, "policies"); err != nil {
			eng.Close()
			return nil, err
		}
	}
	return eng, nil
}

// Close frees the engine (its persisted state stays in the store).
// Idempotent; waits for calls in progress.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.closed {
		e.closed = true
		C.vigil_engine_free(e.e)
		e.e = nil
		deleteHandle(e.hooks)
		e.log.free()
		if e.policy != nil {
			e.policy.release()
		}
	}
	return nil
}

// Load adds the rules of the YAML text (a list, or a map with `policies:`);
// name names it in error messages. All or nothing.
func (e *Engine) Load(yaml, name string) error {
	if err := e.enter(); err != nil {
		return err
	}
	defer e.leave()
	doc, err := loadYAML(yaml, name)
	if err != nil {
		return err
	}
	defer doc.free()
	list := doc.list("policies")
	return call(func() C.int { return C.vigil_engine_load(e.e, list) })
}

// Ingest evaluates every metric of b (in order, event time). Go policies
// run on the calling goroutine.
func (e *Engine) Ingest(b *Batch) error {
	if err := e.enter(); err != nil {
		return err
	}
	defer e.leave()
	b.mu.Lock()
	defer b.mu.Unlock()
	bp, err := b.ptr()
	if err != nil {
		return err
	}
	return call(func() C.int { return C.vigil_engine_ingest(e.e, bp) })
}

// Tick advances the engine's timers to nowMs (0: its clock).
func (e *Engine) Tick(nowMs int64) error {
	if err := e.enter(); err != nil {
		return err
	}
	defer e.leave()
	return call(func() C.int { return C.vigil_engine_tick(e.e, C.int64_t(nowMs)) })
}

// ActionResult feeds the result of a request the engine made (closed loop).
func (e *Engine) ActionResult(r ActionResult) error {
	if err := e.enter(); err != nil {
		return err
	}
	defer e.leave()
	cr := r.toC()
	defer cr.free()
	return call(func() C.int { return C.vigil_engine_action_result(e.e, &cr.r) })
}

// SetDesired sets the desired state of target (a JSON object; "" removes it).
func (e *Engine) SetDesired(target, jsonObject string) error {
	if err := e.enter(); err != nil {
		return err
	}
	defer e.leave()
	return setDesired(e.e, target, jsonObject)
}

func setDesired(e *C.vigil_engine, target, jsonObject string) error {
	ct := C.CString(target)
	defer C.free(unsafe.Pointer(ct))
	var cj *C.char
	if jsonObject != "" {
		cj = C.CString(jsonObject)
		defer C.free(unsafe.Pointer(cj))
	}
	return call(func() C.int { return C.vigil_engine_set_desired(e, ct, cj) })
}

// Decisions returns the stored decisions with ts >= sinceMs, oldest first,
// at most limit (0: 1000).
func (e *Engine) Decisions(sinceMs int64, limit int) ([]Decision, error) {
	if err := e.enter(); err != nil {
		return nil, err
	}
	defer e.leave()
	return decisions(e.e, sinceMs, limit)
}

func decisions(e *C.vigil_engine, sinceMs int64, limit int) ([]Decision, error) {
	var buf C.vigil_buf
	defer C.vigil_buf_dispose(&buf)
	err := call(func() C.int {
		return C.vigil_engine_decisions_json(e, C.int64_t(sinceMs), C.size_t(limit), &buf)
	})
	if err != nil {
		return nil, err
	}
	var doc struct {
		Decisions []Decision `json:"decisions"`
	}
	if err := json.Unmarshal(C.GoBytes(unsafe.Pointer(buf.ptr), C.int(buf.size)), &doc); err != nil {
		return nil, errorf(ErrJSON, "decisions: %v", err)
	}
	return doc.Decisions, nil
}

// EngineStats are the counters of an engine.
type EngineStats struct {
	Policies       int
	Metrics        uint64
	Evaluations    uint64
	Stale          uint64
	PolicyErrors   uint64
	TemplateErrors uint64
	EvalErrors     uint64
	Decisions      uint64
	Requests       uint64
}

// Stats reads the engine's counters.
func (e *Engine) Stats() (EngineStats, error) {
	if err := e.enter(); err != nil {
		return EngineStats{}, err
	}
	defer e.leave()
	return engineStats(e.e)
}

func engineStats(e *C.vigil_engine) (EngineStats, error) {
	var st C.vigil_engine_stats
	st.version = C.VIGIL_ENGINE_STATS_VERSION
	if err := call(func() C.int { return C.vigil_engine_stats_get(e, &st) }); err != nil {
		return EngineStats{}, err
	}
	return EngineStats{Policies: int(st.policies), Metrics: uint64(st.metrics),
		Evaluations: uint64(st.evaluations), Stale: uint64(st.stale),
		PolicyErrors: uint64(st.policy_errors), TemplateErrors: uint64(st.template_errors),
		EvalErrors: uint64(st.eval_errors), Decisions: uint64(st.decisions),
		Requests: uint64(st.requests)}, nil
}

// cResult is a vigil_action_result built from Go (for results fed back).
type cResult struct {
	r C.vigil_action_result
}

func (r *ActionResult) toC() *cResult {
	cr := &cResult{}
	cr.r.version = C.VIGIL_ACTION_RESULT_VERSION
	set := func(f func(*C.char) C.int, s string) {
		if s != "" {
			cs := C.CString(s)
			f(cs)
			C.free(unsafe.Pointer(cs))
		}
	}
	set(func(p *C.char) C.int { return C.vigil_action_result_set_id(&cr.r, p) }, r.ID)
	set(func(p *C.char) C.int { return C.vigil_action_result_set_reason(&cr.r, p) }, r.Reason)
	set(func(p *C.char) C.int {
		return C.vigil_action_result_set_output(&cr.r, p, C.size_t(len(r.Output)))
	}, r.Output)
	cr.r.status = C.vigil_action_status(r.Status)
	cr.r.exit_code = C.int(r.ExitCode)
	cr.r.duration_ms = C.int64_t(r.Duration / time.Millisecond)
	cr.r.retry_after_ms = C.int64_t(r.RetryAfterMs)
	return cr
}

func (cr *cResult) free() { C.vigil_action_result_clear(&cr.r) }
