package vigil

/*
#include "glue.h"
*/
import "C"

import (
	"runtime/cgo"
	"time"
	"unsafe"
)

// HubOptions configure a Hub. Zero fields are the defaults of
// include/vigil/hub.h.
type HubOptions struct {
	StoreURL string // "": sqlite://./var/vigil.db
	// Policies is YAML text: a list of rules, or a map with `policies:`.
	Policies       string
	PolicyTypes    *PolicyRegistry // kinds written in Go; nil: built-in kinds only
	Retention      time.Duration   // 0: 14 days
	MaxFuture      time.Duration   // samples further ahead are refused; 0: 5 min
	ActWithin      time.Duration   // 0: 5 min
	PolicyInterval time.Duration   // the engine's timers; 0: 1 s
	// RemediatorURL: the built-in HTTP dispatcher's remediator, with its
	// signing secret in the environment variable RemediatorSecretEnv. "":
	// none (AttachRemediator runs one in process).
	RemediatorURL       string
	RemediatorSecretEnv string
	Logger              Logger
	LogLevel            LogLevel
}

// HubConfigOptions are the Go plug-in types a collector.yaml may name (and
// its in-process remediator's remediator.yaml). They must stay open while
// the hub is.
type HubConfigOptions struct {
	PolicyTypes *PolicyRegistry
	ActionTypes *ActionRegistry
	Logger      Logger
	LogLevel    LogLevel
}

// Hub is the control-plane core (vigil_hub): ingest into its store and
// windows, policy evaluation, decisions, action requests and results. Safe
// for concurrent use; Start, Close and AttachRemediator are for one
// controlling goroutine.
type Hub struct {
	guard
	h      *C.vigil_hub
	log    *logHook
	cfg    *C.vigil_hub_config
	rem    *Remediator
	ptypes *PolicyRegistry
	atypes *ActionRegistry

	disp       *dispatcher // SetDispatcher
	dispHandle cgo.Handle
}

// NewHub creates a hub: opens its store and loads its policies. Call Start
// (after AttachRemediator, when used) before Ingest.
func NewHub(opts HubOptions) (*Hub, error) {
	var co C.vigil_hub_options
	C.vigil_hub_options_init(&co, C.VIGIL_HUB_OPTIONS_VERSION)
	var frees []unsafe.Pointer
	defer func() {
		for _, p := range frees {
			C.free(p)
		}
	}()
	str := func(s string) *C.char {
		if s == "" {
			return nil
		}
		p := C.CString(s)
		frees = append(frees, unsafe.Pointer(p))
		return p
	}
	co.store_url = str(opts.StoreURL)
	co.retention_ms = C.int64_t(opts.Retention / time.Millisecond)
	co.max_future_ms = C.int64_t(opts.MaxFuture / time.Millisecond)
	co.act_within_ms = C.int64_t(opts.ActWithin / time.Millisecond)
	co.policy_interval_ms = C.int64_t(opts.PolicyInterval / time.Millisecond)
	co.policy_types = opts.PolicyTypes.ptr()
	co.remediator_url = str(opts.RemediatorURL)
	co.remediator_secret_env = str(opts.RemediatorSecretEnv)
	hub := &Hub{ptypes: opts.PolicyTypes}
	hub.log, co.logger = newLogHook(opts.Logger, opts.LogLevel)
	var doc *yamlDoc
	if opts.Policies != "" {
		var err error
		if doc, err = loadYAML(opts.Policies, "policies"); err != nil {
			hub.log.free()
			return nil, err
		}
		defer doc.free()
		co.policies = doc.list("policies")
	}
	var h *C.vigil_hub
	if err := call(func() C.int { return C.vigil_hub_new(&h, &co) }); err != nil {
		hub.log.free()
		return nil, err
	}
	hub.h = h
	if opts.PolicyTypes != nil {
		opts.PolicyTypes.use()
	}
	setFinalizer(hub, func(h *Hub) { h.Close() })
	return hub, nil
}

// NewHubFromConfig loads a collector.yaml (configs/collector.yaml) and
// creates its hub, with its in-process remediator attached when the file
// says `remediator: {inprocess: true, ...}`. Errors of the file are located
// ("file:line:col: path: ..."). Call Start before Ingest.
func NewHubFromConfig(path string, opts HubConfigOptions) (*Hub, error) {
	var copts C.vigil_config_options
	C.vigil_config_options_init(&copts, C.VIGIL_CONFIG_OPTIONS_VERSION)
	copts.policy_types = opts.PolicyTypes.ptr()
	copts.action_types = opts.ActionTypes.ptr()
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	var cfg *C.vigil_hub_config
	if err := call(func() C.int { return C.vigil_hub_config_load(&cfg, cp, &copts) }); err != nil {
		return nil, err
	}
	hub := &Hub{cfg: cfg, ptypes: opts.PolicyTypes, atypes: opts.ActionTypes}
	co := *C.vigil_hub_config_hub(cfg)
	hub.log, co.logger = newLogHook(opts.Logger, opts.LogLevel)
	var h *C.vigil_hub
	if err := call(func() C.int { return C.vigil_hub_new(&h, &co) }); err != nil {
		hub.log.free()
		C.vigil_hub_config_free(cfg)
		return nil, err
	}
	hub.h = h
	if rc := C.vigil_hub_config_remediator(cfg); rc != nil {
		ro := *C.vigil_remediator_config_options(rc)
		ro.logger = co.logger
		rem := &Remediator{types: opts.ActionTypes}
		var r *C.vigil_remediator
		if err := call(func() C.int { return C.vigil_hub_attach_remediator(h, &ro, &r) }); err != nil {
			C.vigil_hub_free(h)
			hub.log.free()
			C.vigil_hub_config_free(cfg)
			return nil, err
		}
		rem.r = r
		rem.hub = hub
		hub.rem = rem
		if opts.ActionTypes != nil {
			opts.ActionTypes.use()
		}
	}
	if opts.PolicyTypes != nil {
		opts.PolicyTypes.use()
	}
	setFinalizer(hub, func(h *Hub) { h.Close() })
	return hub, nil
}

// AttachRemediator runs a remediator in the hub's process as its
// dispatcher: policy and manual requests go to it, its results come back
// to the hub. Call it before Start. The remediator is closed with the hub
// (its Close only stops it).
func (h *Hub) AttachRemediator(opts RemediatorOptions) (*Remediator, error) {
	if err := h.enter(); err != nil {
		return nil, err
	}
	defer h.leave()
	if h.rem != nil || h.disp != nil {
		return nil, errorf(ErrExists, "the hub has a dispatcher already")
	}
	rem := &Remediator{types: opts.ActionTypes, hub: h}
	var co C.vigil_remediator_options
	var frees []unsafe.Pointer
	defer func() {
		for _, p := range frees {
			C.free(p)
		}
	}()
	opts.toC(&co, &frees)
	rem.log, co.logger = newLogHook(opts.Logger, opts.LogLevel)
	var r *C.vigil_remediator
	err := withActions(opts.Actions, func(list *C.vigil_config_node) error {
		co.actions = list
		return call(func() C.int { return C.vigil_hub_attach_remediator(h.h, &co, &r) })
	})
	if err != nil {
		rem.log.free()
		return nil, err
	}
	rem.r = r
	if opts.ActionTypes != nil {
		opts.ActionTypes.use()
	}
	h.rem = rem
	return rem, nil
}

// Remediator is the remediator running in the hub's process, or nil.
func (h *Hub) Remediator() *Remediator { return h.rem }

// Start starts the hub's threads (committer, answerer, evaluator, ticker).
func (h *Hub) Start() error {
	if err := h.enter(); err != nil {
		return err
	}
	defer h.leave()
	return call(func() C.int { return C.vigil_hub_start(h.h) })
}

// Close stops the hub (queued ingests are committed and answered) and
// frees it, with its in-process remediator. Idempotent; waits for calls in
// progress.
func (h *Hub) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	h.closed = true
	if h.rem != nil {
		h.rem.Close() // stops it: no request runs any more
	}
	if h.disp != nil {
		C.vigil_hub_stop(h.h) // no new request: then every result arrives
		h.disp.drain()
	}
	C.vigil_hub_free(h.h)
	deleteHandle(h.dispHandle)
	h.h = nil
	if h.rem != nil {
		h.rem.mu.Lock()
		h.rem.free()
		h.rem.mu.Unlock()
	}
	if h.cfg != nil {
		C.vigil_hub_config_free(h.cfg)
		h.cfg = nil
	}
	h.log.free()
	if h.ptypes != nil {
		h.ptypes.release()
	}
	return nil
}

// IngestResult is what an ingest did.
type IngestResult struct {
	Accepted  int  // samples stored
	Duplicate bool // the batch id was stored before; nothing stored
}

// Ingest stores b (acknowledged once committed) and queues it for policy
// evaluation, which runs on the hub's evaluator thread.
func (h *Hub) Ingest(b *Batch) (IngestResult, error) {
	if err := h.enter(); err != nil {
		return IngestResult{}, err
	}
	defer h.leave()
	b.mu.Lock()
	defer b.mu.Unlock()
	bp, err := b.ptr()
	if err != nil {
		return IngestResult{}, err
	}
	var r C.vigil_hub_ingest_result
	r.version = C.VIGIL_HUB_INGEST_RESULT_VERSION
	if err := call(func() C.int { return C.vigil_hub_ingest(h.h, bp, &r) }); err != nil {
		return IngestResult{}, err
	}
	return IngestResult{Accepted: int(r.accepted), Duplicate: r.duplicate != 0}, nil
}

// Evaluate runs the hub's policies over b now, on the calling goroutine,
// without storing it.
func (h *Hub) Evaluate(b *Batch) error {
	if err := h.enter(); err != nil {
		return err
	}
	defer h.leave()
	b.mu.Lock()
	defer b.mu.Unlock()
	bp, err := b.ptr()
	if err != nil {
		return err
	}
	return call(func() C.int { return C.vigil_engine_ingest(C.vigil_hub_engine(h.h), bp) })
}

// Tick runs the engine's timers now (nowMs 0: the hub's clock); the hub's
// ticker also does it every PolicyInterval.
func (h *Hub) Tick(nowMs int64) error {
	if err := h.enter(); err != nil {
		return err
	}
	defer h.leave()
	return call(func() C.int { return C.vigil_engine_tick(C.vigil_hub_engine(h.h), C.int64_t(nowMs)) })
}

// Decisions returns the stored decisions with ts >= sinceMs, oldest
// first, at most limit (0: 1000).
func (h *Hub) Decisions(sinceMs int64, limit int) ([]Decision, error) {
	if err := h.enter(); err != nil {
		return nil, err
	}
	defer h.leave()
	return decisions(C.vigil_hub_engine(h.h), sinceMs, limit)
}

// EngineStats reads the counters of the hub's policy engine.
func (h *Hub) EngineStats() (EngineStats, error) {
	if err := h.enter(); err != nil {
		return EngineStats{}, err
	}
	defer h.leave()
	return engineStats(C.vigil_hub_engine(h.h))
}

// SetDesired sets the desired state of target (a JSON object; "" removes it).
func (h *Hub) SetDesired(target, jsonObject string) error {
	if err := h.enter(); err != nil {
		return err
	}
	defer h.leave()
	return setDesired(C.vigil_hub_engine(h.h), target, jsonObject)
}

// RequestAction requests an action by hand (as POST /v1/actions does): it
// is recorded in the actions ledger and dispatched; the id is returned.
func (h *Hub) RequestAction(req ActionRequest) (string, error) {
	if err := h.enter(); err != nil {
		return "", err
	}
	defer h.leave()
	cr := req.toC()
	defer cr.free()
	var buf C.vigil_buf
	defer C.vigil_buf_dispose(&buf)
	if err := call(func() C.int { return C.vigil_hub_action_request(h.h, &cr.r, &buf) }); err != nil {
		return "", err
	}
	return C.GoStringN(buf.ptr, C.int(buf.size)), nil
}

// ActionResult records the result of a request (from a dispatcher of the
// embedder): ledger, closed loop, "action" event.
func (h *Hub) ActionResult(r ActionResult) error {
	if err := h.enter(); err != nil {
		return err
	}
	defer h.leave()
	cr := r.toC()
	defer cr.free()
	var mac *C.char
	if r.AuditMAC != "" {
		mac = C.CString(r.AuditMAC)
		defer C.free(unsafe.Pointer(mac))
	}
	return call(func() C.int {
		return C.vigil_hub_action_result(h.h, &cr.r, C.int64_t(r.AuditSeq), mac)
	})
}

// Query runs q on the hub's store.
func (h *Hub) Query(q Query) ([]Series, error) {
	if err := h.enter(); err != nil {
		return nil, err
	}
	defer h.leave()
	return queryStore(C.vigil_hub_store(h.h), q)
}

// Action reads the hub's ledger entry of request id: what was asked and,
// once it arrived, the result (ErrNotFound when unknown).
func (h *Hub) Action(id string) (LedgerEntry, error) {
	if err := h.enter(); err != nil {
		return LedgerEntry{}, err
	}
	defer h.leave()
	return ledgerEntry(C.vigil_hub_store(h.h), id)
}
