package vigil

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// scaleAction is a Go action handler: it records what it was asked.
type scaleAction struct {
	name string
	step int64
	mu   sync.Mutex
	runs []ActionRequest
}

func (a *scaleAction) Execute(ctx context.Context, req *ActionRequest) (ActionResult, error) {
	if _, ok := ctx.Deadline(); !ok {
		return ActionResult{}, errors.New("no deadline")
	}
	a.mu.Lock()
	a.runs = append(a.runs, *req)
	a.mu.Unlock()
	if req.Target == "payments" && req.Params["fail"] == "yes" {
		return ActionResult{Status: ActionFailed, Reason: "exit_code", ExitCode: 3, Output: "no capacity"}, nil
	}
	return ActionResult{Status: ActionSucceeded,
		Output: fmt.Sprintf("scaled %s by %d", req.Target, a.step)}, nil
}

func (a *scaleAction) Validate(req *ActionRequest) error {
	if req.Target == "payments" && req.Params["fail"] == "" {
		return errors.New("payments needs the fail parameter")
	}
	return nil
}

func (a *scaleAction) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.runs)
}

type actionTypes struct {
	reg     *ActionRegistry
	mu      sync.Mutex
	actions map[string]*scaleAction
}

func (at *actionTypes) get(name string) *scaleAction {
	at.mu.Lock()
	defer at.mu.Unlock()
	return at.actions[name]
}

func newActionTypes(t *testing.T) *actionTypes {
	t.Helper()
	reg, err := NewActionRegistry()
	if err != nil {
		t.Fatal(err)
	}
	at := &actionTypes{reg: reg, actions: map[string]*scaleAction{}}
	err = reg.Register("goscale", []string{"step"}, func(cfg *ConfigNode, info ActionInfo) (Action, error) {
		step, err := cfg.Int("step", 1)
		if err != nil {
			return nil, err
		}
		if step <= 0 {
			return nil, cfg.Errorf(ErrRange, "step", "expected a step above 0")
		}
		a := &scaleAction{name: info.Name, step: step}
		at.mu.Lock()
		at.actions[info.Name] = a
		at.mu.Unlock()
		return a, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = reg.Register("gopanic", nil, func(cfg *ConfigNode, info ActionInfo) (Action, error) {
		return actionFunc(func(ctx context.Context, req *ActionRequest) (ActionResult, error) {
			panic("action exploded")
		}), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return at
}

type actionFunc func(ctx context.Context, req *ActionRequest) (ActionResult, error)

func (f actionFunc) Execute(ctx context.Context, req *ActionRequest) (ActionResult, error) {
	return f(ctx, req)
}

const scaleActions = `actions:
  - name: scale_up
    type: goscale
    targets: "checkout|payments"
    params: {fail: "yes|no"}
    step: 2
  - name: explode
    type: gopanic
`

func testKey() []byte { return []byte("0123456789abcdef0123456789abcdef") }

func TestGoActionThroughRemediatorGuards(t *testing.T) {
	at := newActionTypes(t)
	defer at.reg.Close()
	sink := &logSink{}
	rem, err := NewRemediator(RemediatorOptions{StoreURL: storeURL(t, "rem.db"), AuditKey: testKey(),
		Actions: scaleActions, ActionTypes: at.reg, Cooldown: time.Hour, MaxAttempts: Disabled,
		RatePerSecond: Disabled, Logger: sink.log})
	if err != nil {
		t.Fatal(err)
	}
	defer rem.Close()
	scale := at.get("scale_up")
	if scale == nil || scale.step != 2 {
		t.Fatalf("factory not called with the config: %+v", scale)
	}

	res, err := rem.Execute(ActionRequest{ID: "r1", Action: "scale_up", Target: "checkout", Reason: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if res.ID != "r1" || res.Status != ActionSucceeded || res.Output != "scaled checkout by 2" ||
		res.AuditSeq <= 0 || len(res.AuditMAC) != 64 {
		t.Fatalf("first result = %+v", res)
	}
	if scale.count() != 1 || scale.runs[0].Target != "checkout" || scale.runs[0].Reason != "test" {
		t.Fatalf("handler runs = %+v", scale.runs)
	}

	// outside the allowlist: refused before the handler
	res, err = rem.Execute(ActionRequest{ID: "r2", Action: "scale_up", Target: "evil;rm"})
	if err != nil || res.Status != ActionRefused || res.Reason != "not_allowed" ||
		!strings.Contains(res.Output, `target "evil;rm"`) {
		t.Fatalf("outside allowlist = %+v, %v", res, err)
	}
	// the type's own validation refuses too
	res, err = rem.Execute(ActionRequest{ID: "r3", Action: "scale_up", Target: "payments"})
	if err != nil || res.Status != ActionRefused || res.Reason != "not_allowed" ||
		!strings.Contains(res.Output, "payments needs the fail parameter") {
		t.Fatalf("validate refusal = %+v, %v", res, err)
	}
	// a repeat within the cooldown
	res, err = rem.Execute(ActionRequest{ID: "r4", Action: "scale_up", Target: "checkout"})
	if err != nil || res.Status != ActionRefused || res.Reason != "cooldown" || res.RetryAfterMs <= 0 ||
		res.RetryAfterMs > 3600000 {
		t.Fatalf("repeat = %+v, %v", res, err)
	}
	// exactly once: a known id is answered with its recorded result
	res, err = rem.Execute(ActionRequest{ID: "r1", Action: "scale_up", Target: "checkout"})
	if err != nil || res.Status != ActionSucceeded || res.Output != "scaled checkout by 2" {
		t.Fatalf("same id again = %+v, %v", res, err)
	}
	// a failure reported by the handler
	res, err = rem.Execute(ActionRequest{ID: "r5", Action: "scale_up", Target: "payments",
		Params: map[string]string{"fail": "yes"}})
	if err != nil || res.Status != ActionFailed || res.Reason != "exit_code" || res.ExitCode != 3 ||
		res.Output != "no capacity" {
		t.Fatalf("failing handler = %+v, %v", res, err)
	}
	if scale.count() != 2 {
		t.Fatalf("handler ran %d times, want 2", scale.count())
	}
	// a panic is the action's error, not a crash
	res, err = rem.Execute(ActionRequest{ID: "r6", Action: "explode", Target: "checkout"})
	if err != nil || res.Status != ActionFailed || res.Reason != "internal_error" ||
		res.Output != "panic: action exploded" {
		t.Fatalf("panicking handler = %+v, %v", res, err)
	}

	rep, err := rem.VerifyAudit()
	if err != nil || !rep.OK || rep.Entries < 10 || rep.BrokenAt != 0 || rep.Reason != "" {
		t.Fatalf("audit = %+v, %v", rep, err)
	}
	seq, mac, err := rem.AuditHead()
	if err != nil || seq != rep.Entries || len(mac) != 64 {
		t.Fatalf("head = %d %q %v (report %+v)", seq, mac, err, rep)
	}
	first, err := rem.VerifyAuditCheckpoint(1, "")
	if !errors.Is(err, ErrInval) {
		t.Fatalf("malformed checkpoint = %+v, %v", first, err)
	}
	rep, err = rem.VerifyAuditCheckpoint(seq, mac)
	if err != nil || !rep.OK {
		t.Fatalf("checkpoint at the head = %+v, %v", rep, err)
	}
	rep, err = rem.VerifyAuditCheckpoint(seq+5, mac)
	if err != nil || rep.OK || rep.BrokenAt != seq+1 ||
		rep.Reason != fmt.Sprintf("chain ends at %d before checkpoint %d", seq, seq+5) {
		t.Fatalf("checkpoint past the head = %+v, %v", rep, err)
	}
	wrong := strings.Repeat("0", 64)
	rep, err = rem.VerifyAuditCheckpoint(seq, wrong)
	if err != nil || rep.OK || rep.Reason != fmt.Sprintf("checkpoint mac differs at row %d", seq) {
		t.Fatalf("checkpoint with another mac = %+v, %v", rep, err)
	}
	if err := at.reg.Close(); !errors.Is(err, ErrBusy) {
		t.Fatalf("closing a registry in use = %v", err)
	}
	rem.Close()
	rem.Close()
	if _, err := rem.Execute(ActionRequest{Action: "scale_up", Target: "checkout"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Execute after Close = %v", err)
	}
}

func TestGoActionConfigErrors(t *testing.T) {
	at := newActionTypes(t)
	defer at.reg.Close()
	_, err := NewRemediator(RemediatorOptions{StoreURL: storeURL(t, "rem.db"), AuditKey: testKey(),
		ActionTypes: at.reg, Actions: "actions:\n  - name: s\n    type: goscale\n    step: 0\n",
		Logger: (&logSink{}).log})
	ve := asError(t, err)
	if ve.Code != ErrRange || !strings.Contains(ve.Message, "actions:4:11: actions[0].step: expected a step above 0") {
		t.Fatalf("bad step = %d %q", ve.Code, ve.Message)
	}
	_, err = NewRemediator(RemediatorOptions{StoreURL: storeURL(t, "rem.db"), AuditKey: testKey(),
		Actions: "actions:\n  - name: s\n    type: goscale\n", Logger: (&logSink{}).log})
	if ve := asError(t, err); ve.Code != ErrUnsupported || !strings.Contains(ve.Message, "goscale") {
		t.Fatalf("type without its registry = %d %q", ve.Code, ve.Message)
	}
	if err := at.reg.Register("exec", nil, nil); !errors.Is(err, ErrInval) {
		t.Fatalf("nil factory = %v", err)
	}
	if err := at.reg.Register("exec", nil, func(*ConfigNode, ActionInfo) (Action, error) { return nil, nil }); !errors.Is(err, ErrExists) {
		t.Fatalf("built-in type = %v", err)
	}
}

func TestRemediatorConcurrentGoroutines(t *testing.T) {
	at := newActionTypes(t)
	defer at.reg.Close()
	rem, err := NewRemediator(RemediatorOptions{StoreURL: storeURL(t, "rem.db"), AuditKey: testKey(),
		Actions: strings.Replace(scaleActions, `"checkout|payments"`, `"t[0-9]+"`, 1), ActionTypes: at.reg,
		Cooldown: Disabled, MaxAttempts: Disabled, RatePerSecond: Disabled, MaxConcurrent: 8,
		Logger: (&logSink{}).log})
	if err != nil {
		t.Fatal(err)
	}
	defer rem.Close()
	var ok atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				res, err := rem.Execute(ActionRequest{Action: "scale_up", Target: fmt.Sprintf("t%d", g*10+i)})
				if err == nil && res.Status == ActionSucceeded {
					ok.Add(1)
				}
			}
		}(g)
	}
	wg.Wait()
	if ok.Load() != 80 || at.get("scale_up").count() != 80 {
		t.Fatalf("%d succeeded, handler ran %d times; want 80", ok.Load(), at.get("scale_up").count())
	}
	rep, err := rem.VerifyAudit()
	if err != nil || !rep.OK {
		t.Fatalf("audit = %+v, %v", rep, err)
	}
}
