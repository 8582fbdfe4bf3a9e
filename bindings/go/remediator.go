package vigil

/*
#include "glue.h"
*/
import "C"

import (
	"time"
	"unsafe"
)

// Disabled turns a remediator guard off (cooldown, budget, reset, rate) in
// RemediatorOptions; 0 means the documented default.
const Disabled = -1

// RemediatorOptions configure a Remediator. Zero fields are the defaults of
// include/vigil/remediator.h; Disabled turns a guard off.
type RemediatorOptions struct {
	StoreURL string // sqlite:// URL of the audit chain, ledger and guard state
	AuditKey []byte // at least 16 bytes; nil: "<database>.key" (created)
	// Actions is YAML text: an `actions:` list, or a map holding one
	// (remediator.yaml). "": no actions.
	Actions     string
	ActionTypes *ActionRegistry // types written in Go; nil: built-in types only
	BaseDir     string          // relative program paths resolve here

	DryRun        bool
	Cooldown      time.Duration // per (action, target); 0: 60 s; Disabled: none
	MaxAttempts   int           // executions per target within Window; 0: 3; Disabled: none
	Window        time.Duration // 0: 10 min
	ResetAfter    time.Duration // quiet time ending a quarantine; 0: 10 min
	RatePerSecond float64       // token bucket refill; 0: 0.5; Disabled: none
	RateBurst     float64
	MaxConcurrent int

	Logger   Logger
	LogLevel LogLevel
}

func (o *RemediatorOptions) toC(co *C.vigil_remediator_options, frees *[]unsafe.Pointer) {
	C.vigil_remediator_options_init(co, C.VIGIL_REMEDIATOR_OPTIONS_VERSION)
	str := func(s string) *C.char {
		if s == "" {
			return nil
		}
		p := C.CString(s)
		*frees = append(*frees, unsafe.Pointer(p))
		return p
	}
	co.store_url = str(o.StoreURL)
	if len(o.AuditKey) > 0 {
		k := C.CBytes(o.AuditKey)
		*frees = append(*frees, k)
		co.audit_key = k
		co.audit_key_len = C.size_t(len(o.AuditKey))
	}
	co.action_types = o.ActionTypes.ptr()
	co.base_dir = str(o.BaseDir)
	if o.DryRun {
		co.dry_run = 1
	}
	dur := func(d time.Duration) C.int64_t {
		if d < 0 {
			return C.VIGIL_REMEDIATOR_DISABLED
		}
		return C.int64_t(d / time.Millisecond)
	}
	co.cooldown_ms = dur(o.Cooldown)
	if o.MaxAttempts < 0 {
		co.max_attempts = C.uint(^uint32(0))
	} else {
		co.max_attempts = C.uint(o.MaxAttempts)
	}
	co.window_ms = C.int64_t(o.Window / time.Millisecond)
	co.reset_after_ms = dur(o.ResetAfter)
	if o.RatePerSecond < 0 {
		co.rate_per_s = C.VIGIL_REMEDIATOR_DISABLED
	} else {
		co.rate_per_s = C.double(o.RatePerSecond)
	}
	co.rate_burst = C.double(o.RateBurst)
	co.max_concurrent = C.uint(o.MaxConcurrent)
}

// Remediator runs actions behind guards, at most once per request id, and
// records everything in a hash-chained audit log (vigil_remediator). Safe
// for concurrent use.
type Remediator struct {
	guard
	r     *C.vigil_remediator
	log   *logHook
	types *ActionRegistry
	owned bool // freed by Close (false: attached to a hub, which frees it)
	hub   *Hub
}

func withActions(yaml string, f func(list *C.vigil_config_node) error) error {
	if yaml == "" {
		return f(nil)
	}
	doc, err := loadYAML(yaml, "actions")
	if err != nil {
		return err
	}
	defer doc.free()
	return f(doc.list("actions"))
}

// NewRemediator creates and starts a remediator.
func NewRemediator(opts RemediatorOptions) (*Remediator, error) {
	rem := &Remediator{types: opts.ActionTypes, owned: true}
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
		return call(func() C.int { return C.vigil_remediator_new(&r, &co) })
	})
	if err == nil {
		if err = call(func() C.int { return C.vigil_remediator_start(r) }); err != nil {
			C.vigil_remediator_free(r)
		}
	}
	if err != nil {
		rem.log.free()
		return nil, err
	}
	rem.r = r
	if opts.ActionTypes != nil {
		opts.ActionTypes.use()
	}
	setFinalizer(rem, func(r *Remediator) { r.Close() })
	return rem, nil
}

// Close stops the remediator (running actions finish) and frees it.
// Idempotent; waits for calls in progress. A remediator attached to a hub
// is stopped here and freed by the hub's Close.
func (r *Remediator) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		r.closed = true
		C.vigil_remediator_stop(r.r)
		if r.owned {
			r.free()
		}
	}
	return nil
}

func (r *Remediator) free() {
	if r.r != nil {
		C.vigil_remediator_free(r.r)
		r.r = nil
		r.log.free()
		if r.types != nil {
			r.types.release()
		}
	}
}

// Execute submits req and waits for its result (guards, ledger, execution
// and audit run on a remediator worker). A request answered
// PENDING_APPROVAL returns that status; its final result comes later.
func (r *Remediator) Execute(req ActionRequest) (ActionResult, error) {
	if err := r.enter(); err != nil {
		return ActionResult{}, err
	}
	defer r.leave()
	cr := req.toC()
	defer cr.free()
	ch := make(chan ActionResult, 1)
	h := newHandle(ch)
	defer deleteHandle(h)
	err := call(func() C.int {
		return C.vigil_remediator_submit_audited(r.r, &cr.r,
			(C.vigil_remediator_result_cb)(C.gv_done_cb), C.gv_ptr(C.uintptr_t(h)))
	})
	if err != nil {
		return ActionResult{}, err
	}
	return <-ch, nil
}

// Release ends the quarantine of target; it reports whether it was
// quarantined.
func (r *Remediator) Release(target, who string) (bool, error) {
	if err := r.enter(); err != nil {
		return false, err
	}
	defer r.leave()
	ct, cw := C.CString(target), C.CString(who)
	defer C.free(unsafe.Pointer(ct))
	defer C.free(unsafe.Pointer(cw))
	var released C.int
	err := call(func() C.int { return C.vigil_remediator_release(r.r, ct, cw, &released) })
	return released != 0, err
}

// AuditReport is the outcome of an audit verification.
type AuditReport struct {
	OK       bool
	Entries  int64  // rows that verified (before the break)
	BrokenAt int64  // first broken seq; 0 when OK
	Reason   string // why it is broken; "" when OK
}

// VerifyAudit walks the remediator's audit chain, recomputing every MAC,
// and reports the first broken row. An error means the walk could not
// complete; a broken chain is a report with OK false.
func (r *Remediator) VerifyAudit() (AuditReport, error) {
	if err := r.enter(); err != nil {
		return AuditReport{}, err
	}
	defer r.leave()
	var rep C.vigil_audit_report
	rep.version = C.VIGIL_AUDIT_REPORT_VERSION
	audit := C.vigil_remediator_audit(r.r)
	if err := call(func() C.int { return C.vigil_audit_verify(audit, &rep) }); err != nil {
		return AuditReport{}, err
	}
	return AuditReport{OK: rep.ok != 0, Entries: int64(rep.entries),
		BrokenAt: int64(rep.broken_at), Reason: C.GoString(&rep.reason[0])}, nil
}

// VerifyAuditCheckpoint is VerifyAudit, and also checks a checkpoint taken
// earlier (AuditHead, or an ActionResult's AuditSeq and AuditMAC): row seq
// must exist and carry exactly mac, which reveals a deleted or rewritten
// tail.
func (r *Remediator) VerifyAuditCheckpoint(seq int64, mac string) (AuditReport, error) {
	if err := r.enter(); err != nil {
		return AuditReport{}, err
	}
	defer r.leave()
	var rep C.vigil_audit_report
	rep.version = C.VIGIL_AUDIT_REPORT_VERSION
	cm := C.CString(mac)
	defer C.free(unsafe.Pointer(cm))
	audit := C.vigil_remediator_audit(r.r)
	err := call(func() C.int {
		return C.vigil_audit_verify_checkpoint(audit, C.int64_t(seq), cm, &rep)
	})
	if err != nil {
		return AuditReport{}, err
	}
	return AuditReport{OK: rep.ok != 0, Entries: int64(rep.entries),
		BrokenAt: int64(rep.broken_at), Reason: C.GoString(&rep.reason[0])}, nil
}

// AuditHead returns the seq and MAC of the newest audit row (0 and "" when
// the chain is empty).
func (r *Remediator) AuditHead() (int64, string, error) {
	if err := r.enter(); err != nil {
		return 0, "", err
	}
	defer r.leave()
	var seq C.int64_t
	var mac [C.VIGIL_AUDIT_MAC_HEX]C.char
	audit := C.vigil_remediator_audit(r.r)
	if err := call(func() C.int { return C.vigil_audit_head(audit, &seq, &mac[0]) }); err != nil {
		return 0, "", err
	}
	return int64(seq), C.GoString(&mac[0]), nil
}
