package vigil

// The functions the C library calls (through glue.c). Each finds its Go
// object by the runtime/cgo Handle it was given, and never lets a panic
// cross into C: a panic is recovered and recorded as the plug-in's error
// with vigil_error_set() ("panic: ..."), and the call returns VIGIL_ERROR.

/*
#include "glue.h"
*/
import "C"

import (
	"errors"
	"runtime/cgo"
	"strings"
	"unsafe"
)

// reportError records err as the calling thread's last error and returns
// its code. An *Error that is already the thread's last error (a located
// error of a ConfigNode getter or Errorf) is kept as it is, with its file
// and line.
func reportError(err error) C.int {
	var ve *Error
	if errors.As(err, &ve) {
		code := ve.Code
		if code >= 0 {
			code = ErrError
		}
		msg := ve.Message
		if direct, ok := err.(*Error); !ok || direct != ve {
			msg = err.Error() // wrapped: keep the caller's context
		}
		le := C.vigil_error_last()
		if le != nil && Code(le.code) == code && C.GoString(le.message) == msg {
			return C.int(code)
		}
		cm := C.CString(msg)
		defer C.free(unsafe.Pointer(cm))
		return C.vigil_error_set(C.int(code), cm)
	}
	cm := C.CString(err.Error())
	defer C.free(unsafe.Pointer(cm))
	return C.vigil_error_set(C.int(ErrError), cm)
}

// recoverTo turns a panic into the plug-in's error: *rc receives
// VIGIL_ERROR and the last error says "panic: <value>".
func recoverTo(rc *C.int) {
	if v := recover(); v != nil {
		*rc = reportError(errorf(ErrError, "panic: %v", v))
	}
}

// recoverQuiet swallows a panic of a callback that has no error to report
// (a logger, an observer): the library must go on.
func recoverQuiet() { _ = recover() }

//export goVigilHandleDelete
func goVigilHandleDelete(h C.uintptr_t) {
	deleteHandle(cgo.Handle(h))
}

// ---- policies ----------------------------------------------------------------

//export goVigilPolicyCreate
func goVigilPolicyCreate(h C.uintptr_t, rule *C.vigil_config_node, out *C.uintptr_t) (rc C.int) {
	defer recoverTo(&rc)
	pt := cgo.Handle(h).Value().(*policyType)
	cn := &ConfigNode{n: rule}
	defer cn.invalidate()
	p, err := pt.factory(cn)
	if err != nil {
		return reportError(err)
	}
	if p == nil {
		return reportError(errorf(ErrError, "policy kind %s: factory returned no policy", pt.kind))
	}
	*out = C.uintptr_t(newHandle(p))
	return C.VIGIL_OK
}

//export goVigilPolicyEvaluate
func goVigilPolicyEvaluate(s *C.gv_policy_state, m *C.vigil_metric, ctx *C.vigil_policy_ctx,
	out *C.vigil_policy_verdict) (rc C.int) {
	defer recoverTo(&rc)
	p := cgo.Handle(s.handle).Value().(Policy)
	pc := PolicyContext{ctx: ctx}
	v, err := p.Evaluate(metricFromC(m), &pc)
	pc.ctx = nil
	if err != nil {
		return reportError(err)
	}
	out.value = C.double(v.Value)
	if !v.Active {
		return C.VIGIL_OK
	}
	// C strings end at a NUL: "checkout\x00payments" would request an
	// action on "checkout". Refused as the policy's error instead.
	if field := verdictNUL(&v); field != "" {
		return reportError(&Error{Code: ErrValue, Message: "verdict " + field +
			": a NUL byte cannot be passed as a C string"})
	}
	out.active = 1
	var params *C.vigil_action_param
	if len(v.Params) > 0 {
		params = (*C.vigil_action_param)(C.calloc(C.size_t(len(v.Params)),
			C.size_t(unsafe.Sizeof(C.vigil_action_param{}))))
		arr := unsafe.Slice(params, len(v.Params))
		i := 0
		for k, val := range v.Params {
			arr[i].key = C.CString(k)
			arr[i].value = C.CString(val)
			i++
		}
	}
	C.gv_policy_state_set(s, optCString(v.Action), optCString(v.Target), optCString(v.Reason),
		params, C.size_t(len(v.Params)))
	C.gv_policy_verdict_fill(s, out)
	return C.VIGIL_OK
}

// verdictNUL names the first string field of v holding a NUL byte, or "".
func verdictNUL(v *Verdict) string {
	switch {
	case strings.IndexByte(v.Action, 0) >= 0:
		return "Action"
	case strings.IndexByte(v.Target, 0) >= 0:
		return "Target"
	case strings.IndexByte(v.Reason, 0) >= 0:
		return "Reason"
	}
	for k, val := range v.Params {
		if strings.IndexByte(k, 0) >= 0 || strings.IndexByte(val, 0) >= 0 {
			return "Params"
		}
	}
	return ""
}

// optCString is NULL for "" (the engine then uses the rule's default).
func optCString(s string) *C.char {
	if s == "" {
		return nil
	}
	return C.CString(s)
}

// ---- actions -----------------------------------------------------------------

//export goVigilActionCreate
func goVigilActionCreate(h C.uintptr_t, config *C.vigil_config_node, ctx *C.vigil_action_context,
	out *C.uintptr_t) (rc C.int) {
	defer recoverTo(&rc)
	at := cgo.Handle(h).Value().(*actionType)
	info := ActionInfo{Name: C.GoString(ctx.action_name), Host: C.GoString(ctx.host),
		Timeout: msDuration(int64(ctx.timeout_ms))}
	cn := &ConfigNode{n: config}
	defer cn.invalidate()
	a, err := at.factory(cn, info)
	if err != nil {
		return reportError(err)
	}
	if a == nil {
		return reportError(errorf(ErrError, "action type %s: factory returned no action", at.name))
	}
	*out = C.uintptr_t(newHandle(a))
	return C.VIGIL_OK
}

//export goVigilActionValidate
func goVigilActionValidate(h C.uintptr_t, req *C.vigil_action_request) (rc C.int) {
	defer recoverTo(&rc)
	v, ok := cgo.Handle(h).Value().(ActionValidator)
	if !ok {
		return C.VIGIL_OK
	}
	r := requestFromC(req)
	if err := v.Validate(&r); err != nil {
		var ve *Error
		if errors.As(err, &ve) {
			return reportError(err)
		}
		return reportError(errorf(ErrPerm, "%v", err))
	}
	return C.VIGIL_OK
}

//export goVigilActionExecute
func goVigilActionExecute(h C.uintptr_t, req *C.vigil_action_request, exec *C.vigil_action_exec,
	result *C.vigil_action_result) (rc C.int) {
	defer recoverTo(&rc)
	a := cgo.Handle(h).Value().(Action)
	r := requestFromC(req)
	ctx, cancel := execContext(int64(exec.deadline_ms))
	defer cancel()
	res, err := a.Execute(ctx, &r)
	if err != nil {
		return reportError(err)
	}
	switch res.Status {
	case ActionSucceeded, ActionFailed, ActionTimeout:
	default:
		return reportError(errorf(ErrError, "action returned status %s", res.Status))
	}
	result.status = C.vigil_action_status(res.Status)
	result.exit_code = C.int(res.ExitCode)
	if res.Reason != "" {
		cs := C.CString(res.Reason)
		C.vigil_action_result_set_reason(result, cs)
		C.free(unsafe.Pointer(cs))
	}
	if res.Output != "" {
		cs := C.CString(res.Output)
		C.vigil_action_result_set_output(result, cs, C.size_t(len(res.Output)))
		C.free(unsafe.Pointer(cs))
	}
	return C.VIGIL_OK
}

// ---- collectors --------------------------------------------------------------

//export goVigilCollectorCreate
func goVigilCollectorCreate(h C.uintptr_t, config *C.vigil_config_node,
	ctx *C.vigil_collector_context, out *C.uintptr_t) (rc C.int) {
	defer recoverTo(&rc)
	ct := cgo.Handle(h).Value().(*collectorType)
	info := CollectorInfo{Interval: msDuration(int64(ctx.interval_ms))}
	if ctx.name != nil {
		info.Name = C.GoString(ctx.name)
	}
	cn := &ConfigNode{n: config}
	defer cn.invalidate()
	c, err := ct.factory(cn, info)
	if err != nil {
		return reportError(err)
	}
	if c == nil {
		return reportError(errorf(ErrError, "collector type %s: factory returned no collector", ct.name))
	}
	*out = C.uintptr_t(newHandle(c))
	return C.VIGIL_OK
}

//export goVigilCollectorCollect
func goVigilCollectorCollect(h C.uintptr_t, out *C.vigil_batch, now C.int64_t) (rc C.int) {
	defer recoverTo(&rc)
	c := cgo.Handle(h).Value().(Collector)
	ms, err := c.Collect(int64(now))
	if err != nil {
		return reportError(err)
	}
	for i := range ms {
		if ms[i].TimeMs == 0 {
			ms[i].TimeMs = int64(now)
		}
		cm := ms[i].toC()
		rc = C.vigil_batch_add(out, &cm.m)
		cm.free()
		if rc < 0 {
			return rc
		}
	}
	return C.VIGIL_OK
}

// ---- observers ---------------------------------------------------------------

//export goVigilLog
func goVigilLog(h C.uintptr_t, rec *C.vigil_log_record) {
	defer recoverQuiet()
	f := cgo.Handle(h).Value().(func(LogRecord))
	f(LogRecord{Level: LogLevel(rec.level), TimeMs: int64(rec.ts_ms),
		Component: C.GoString(rec.component), Message: C.GoString(rec.message),
		Fields: C.GoString(rec.fields)})
}

//export goVigilEngineRequest
func goVigilEngineRequest(h C.uintptr_t, req *C.vigil_engine_request) {
	defer recoverQuiet()
	f := cgo.Handle(h).Value().(*engineHooks).onRequest
	if f == nil {
		return
	}
	er := EngineRequest{ActionRequest: requestFromC(req.request)}
	if req.series != nil {
		er.Series = C.GoString(req.series)
	}
	f(er)
}

//export goVigilEngineDecision
func goVigilEngineDecision(h C.uintptr_t, d *C.vigil_store_decision) {
	defer recoverQuiet()
	f := cgo.Handle(h).Value().(*engineHooks).onDecision
	if f == nil {
		return
	}
	f(Decision{ID: int64(d.id), TimeMs: int64(d.ts_ms), Policy: goStr(d.policy),
		Series: goStr(d.series), Target: goStr(d.target), Action: goStr(d.action),
		ActionID: goStr(d.action_id), Decision: goStr(d.decision), Reason: goStr(d.reason)})
}

//export goVigilStorePoint
func goVigilStorePoint(h C.uintptr_t, s *C.vigil_store_series, p *C.vigil_store_point) C.int {
	q := cgo.Handle(h).Value().(*queryCollector)
	q.add(s, p)
	return 0
}

//export goVigilDone
func goVigilDone(h C.uintptr_t, r *C.vigil_action_result, seq C.int64_t, mac *C.char) {
	ch := cgo.Handle(h).Value().(chan ActionResult)
	res := resultFromC(r)
	res.AuditSeq = int64(seq)
	res.AuditMAC = goStr(mac)
	ch <- res
}

func goStr(s *C.char) string {
	if s == nil {
		return ""
	}
	return C.GoString(s)
}

func (s ActionStatus) String() string {
	return C.GoString(C.vigil_action_status_name(C.vigil_action_status(s)))
}
