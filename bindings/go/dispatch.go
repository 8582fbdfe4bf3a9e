package vigil

/*
#include "glue.h"
*/
import "C"

import (
	"fmt"
	"runtime/cgo"
	"sync"
	"unsafe"
)

// Dispatcher carries the hub's action requests in Go, in place of the
// built-in HTTP dispatcher or an in-process remediator (for example to
// forward them to a remediator of your own). It is called on a goroutine of
// its own for each request, so it may block until the action is done, and
// several run at once. Its result is recorded in the hub's actions ledger
// and fed to the policy engine (closed loop); its ID is the request's. A
// panic is recovered and recorded as FAILED, reason "internal_error", with
// the panic as output.
type Dispatcher func(req ActionRequest) ActionResult

// dispatcher tracks the requests in flight, so that the hub is freed only
// once every result has arrived.
type dispatcher struct {
	f       Dispatcher
	mu      sync.Mutex
	cond    *sync.Cond
	pending int
	closed  bool
}

func (d *dispatcher) begin() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false
	}
	d.pending++
	return true
}

func (d *dispatcher) end() {
	d.mu.Lock()
	d.pending--
	d.cond.Broadcast()
	d.mu.Unlock()
}

// drain refuses new requests and waits for those in flight.
func (d *dispatcher) drain() {
	d.mu.Lock()
	d.closed = true
	for d.pending > 0 {
		d.cond.Wait()
	}
	d.mu.Unlock()
}

func (d *dispatcher) run(req ActionRequest) (res ActionResult) {
	defer func() {
		if v := recover(); v != nil {
			res = ActionResult{Status: ActionFailed, Reason: "internal_error",
				Output: "panic: " + sprint(v)}
		}
	}()
	return d.f(req)
}

//export goVigilDispatch
func goVigilDispatch(h C.uintptr_t, req *C.vigil_action_request, done C.vigil_action_done_cb,
	payload unsafe.Pointer) (rc C.int) {
	defer recoverTo(&rc)
	d := cgo.Handle(h).Value().(*dispatcher)
	r := requestFromC(req)
	if !d.begin() {
		return reportError(errorf(ErrClosed, "the hub's Go dispatcher is closed"))
	}
	go func() {
		defer d.end()
		res := d.run(r)
		res.ID = r.ID
		cr := res.toC()
		C.gv_call_done(done, &cr.r, payload)
		cr.free()
	}()
	return C.VIGIL_OK
}

// SetDispatcher makes f carry the hub's action requests (policy and manual
// ones). Call it before Start, and not with a remediator attached. Close
// waits for the requests in flight.
func (h *Hub) SetDispatcher(f Dispatcher) error {
	if f == nil {
		return errorf(ErrInval, "nil dispatcher")
	}
	if err := h.enter(); err != nil {
		return err
	}
	defer h.leave()
	if h.rem != nil || h.disp != nil {
		return errorf(ErrExists, "the hub has a dispatcher already")
	}
	d := &dispatcher{f: f}
	d.cond = sync.NewCond(&d.mu)
	hd := newHandle(d)
	cd := C.gv_dispatcher(C.uintptr_t(hd))
	if err := call(func() C.int { return C.vigil_hub_set_dispatcher(h.h, &cd) }); err != nil {
		deleteHandle(hd)
		return err
	}
	h.disp, h.dispHandle = d, hd
	return nil
}

func sprint(v interface{}) string {
	if err, ok := v.(error); ok {
		return err.Error()
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}
