package vigil

/*
#include "glue.h"
#include <time.h>

static int64_t gv_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
*/
import "C"

import (
	"context"
	"runtime"
	"sort"
	"time"
	"unsafe"
)

// ActionStatus is what became of a request (vigil_action_status).
type ActionStatus int

// Action statuses; String gives the wire names ("succeeded", ...).
const (
	ActionSucceeded       ActionStatus = C.VIGIL_ACTION_SUCCEEDED
	ActionFailed          ActionStatus = C.VIGIL_ACTION_FAILED
	ActionTimeout         ActionStatus = C.VIGIL_ACTION_TIMEOUT
	ActionRefused         ActionStatus = C.VIGIL_ACTION_REFUSED
	ActionDryRun          ActionStatus = C.VIGIL_ACTION_DRY_RUN
	ActionPendingApproval ActionStatus = C.VIGIL_ACTION_PENDING_APPROVAL
)

// ActionRequest is an action request (vigil_action_request): the configured
// action's name, the target and parameters, why, and the policy that made it.
type ActionRequest struct {
	ID     string
	Action string
	Target string
	Params map[string]string
	Reason string
	Policy string
	DryRun bool
}

// ActionResult is the result of a request. Reason is a short token
// ("not_allowed", "cooldown", "exit_code", ...). AuditSeq and AuditMAC are
// the audit checkpoint of the result when a remediator produced it.
type ActionResult struct {
	ID           string
	Status       ActionStatus
	Reason       string
	Output       string
	ExitCode     int
	Duration     time.Duration
	RetryAfterMs int64
	AuditSeq     int64
	AuditMAC     string
}

// Action is an action type written in Go: one instance per configured action
// (an entry of remediator.yaml's `actions:` whose type names it), made by
// its ActionFactory. The remediator checks the target and parameter
// allowlists and every guard before Execute is called. Execute runs on a
// remediator worker thread, possibly for several requests at once: make it
// safe for concurrent use. ctx ends at the action's timeout.
//
// Return a result with status ActionSucceeded, ActionFailed or
// ActionTimeout; a non-nil error (or a panic) means the type itself failed,
// reported as FAILED with reason "internal_error" and the error as output.
type Action interface {
	Execute(ctx context.Context, req *ActionRequest) (ActionResult, error)
}

// ActionValidator is implemented by an Action that refuses some requests
// before they run (a parameter missing, a value it must not act on): a
// non-nil error refuses the request (ErrPerm unless it is an *Error).
type ActionValidator interface {
	Validate(req *ActionRequest) error
}

// ActionInfo is what a factory learns of the configured action.
type ActionInfo struct {
	Name    string        // the configured name
	Host    string        // the host name
	Timeout time.Duration // the action's timeout
}

// ActionFactory creates the Action of one configured action from its map
// (read the type's own keys, listed at registration).
type ActionFactory func(config *ConfigNode, info ActionInfo) (Action, error)

type actionType struct {
	name    string
	factory ActionFactory
}

// ActionRegistry holds action types written in Go, for a Remediator
// (RemediatorOptions.ActionTypes). Register every type before handing it
// over; it must stay open while the remediator uses it.
type ActionRegistry struct {
	registry
	r *C.vigil_action_registry
}

// NewActionRegistry creates a registry without types. Close releases it.
func NewActionRegistry() (*ActionRegistry, error) {
	var r *C.vigil_action_registry
	if err := call(func() C.int { return C.vigil_action_registry_new(&r, nil) }); err != nil {
		return nil, err
	}
	ar := &ActionRegistry{r: r}
	setFinalizer(ar, func(a *ActionRegistry) { a.Close() })
	return ar, nil
}

// Register adds the action type name ([a-z][a-z0-9_]*, not a built-in
// type); keys lists its own keys in an action's map.
func (r *ActionRegistry) Register(name string, keys []string, factory ActionFactory) error {
	if factory == nil {
		return errorf(ErrInval, "action type %s: nil factory", name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.r == nil {
		return errorf(ErrClosed, "action registry is closed")
	}
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	cks := newCStrings(keys)
	defer cks.free()
	h := newHandle(&actionType{name: name, factory: factory})
	return call(func() C.int {
		return C.gv_action_register(r.r, cn, cks.ptr(), C.size_t(len(keys)), C.uintptr_t(h))
	})
}

// Close frees the registry and its types; ErrBusy while a Remediator using
// it is open. Idempotent.
func (r *ActionRegistry) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.users > 0 {
		return errorf(ErrBusy, "action registry is used by %d open object(s)", r.users)
	}
	if r.r != nil {
		C.vigil_action_registry_free(r.r)
		r.r = nil
	}
	return nil
}

func (r *ActionRegistry) ptr() *C.vigil_action_registry {
	if r == nil {
		return nil
	}
	return r.r
}

func msDuration(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }

// execContext is a context that ends at a CLOCK_MONOTONIC deadline in ms.
func execContext(deadlineMs int64) (context.Context, context.CancelFunc) {
	if deadlineMs <= 0 {
		return context.WithCancel(context.Background())
	}
	left := msDuration(deadlineMs - int64(C.gv_monotonic_ms()))
	return context.WithTimeout(context.Background(), left)
}

func requestFromC(r *C.vigil_action_request) ActionRequest {
	req := ActionRequest{ID: goStr(r.id), Action: goStr(r.action), Target: goStr(r.target),
		Reason: goStr(r.reason), Policy: goStr(r.policy), DryRun: r.dry_run != 0}
	if r.nparams > 0 {
		req.Params = make(map[string]string, int(r.nparams))
		for _, p := range unsafe.Slice(r.params, int(r.nparams)) {
			req.Params[C.GoString(p.key)] = C.GoString(p.value)
		}
	}
	return req
}

func resultFromC(r *C.vigil_action_result) ActionResult {
	res := ActionResult{ID: goStr(r.id), Status: ActionStatus(r.status), Reason: goStr(r.reason),
		ExitCode: int(r.exit_code), Duration: msDuration(int64(r.duration_ms))}
	if r.output != nil {
		res.Output = C.GoStringN(r.output, C.int(r.output_len))
	}
	if r.version >= 2 {
		res.RetryAfterMs = int64(r.retry_after_ms)
	}
	return res
}

// cRequest is a vigil_action_request in C memory.
type cRequest struct {
	r    C.vigil_action_request
	strs []*C.char
	par  *C.vigil_action_param
}

func (req *ActionRequest) toC() *cRequest {
	cr := &cRequest{}
	always := func(s string) *C.char {
		p := C.CString(s)
		cr.strs = append(cr.strs, p)
		return p
	}
	str := func(s string) *C.char {
		if s == "" {
			return nil
		}
		return always(s)
	}
	cr.r.version = C.VIGIL_ACTION_REQUEST_VERSION
	cr.r.id = str(req.ID)
	cr.r.action = str(req.Action)
	cr.r.target = str(req.Target)
	cr.r.reason = str(req.Reason)
	cr.r.policy = str(req.Policy)
	if req.DryRun {
		cr.r.dry_run = 1
	}
	if len(req.Params) > 0 {
		keys := make([]string, 0, len(req.Params))
		for k := range req.Params {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		cr.par = (*C.vigil_action_param)(C.calloc(C.size_t(len(keys)),
			C.size_t(unsafe.Sizeof(C.vigil_action_param{}))))
		arr := unsafe.Slice(cr.par, len(keys))
		for i, k := range keys {
			arr[i].key = always(k)
			arr[i].value = always(req.Params[k])
		}
		cr.r.params = cr.par
		cr.r.nparams = C.size_t(len(keys))
	}
	return cr
}

func (cr *cRequest) free() {
	for _, p := range cr.strs {
		C.free(unsafe.Pointer(p))
	}
	C.free(unsafe.Pointer(cr.par))
}

// setFinalizer sets f as obj's finalizer (a safety net for a missing Close).
func setFinalizer[T any](obj *T, f func(*T)) { runtime.SetFinalizer(obj, f) }
