package vigil

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestGoPolicyFiresActionRequest(t *testing.T) {
	reg := newPolicyTypes(t)
	defer reg.Close()
	st, err := OpenStore(storeURL(t, "engine.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var mu sync.Mutex
	var reqs []EngineRequest
	var decs []Decision
	sink := &logSink{}
	eng, err := NewEngine(EngineOptions{Store: st, Policies: errorRateRules, PolicyTypes: reg,
		OnRequest:  func(r EngineRequest) { mu.Lock(); reqs = append(reqs, r); mu.Unlock() },
		OnDecision: func(d Decision) { mu.Lock(); decs = append(decs, d); mu.Unlock() },
		Logger:     sink.log, ActWithin: 10 * time.Minute}) // the oldest sample is 5 min old
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if err := reg.Close(); !errors.Is(err, ErrBusy) {
		t.Fatalf("closing a registry in use = %v, want ErrBusy", err)
	}
	t0 := nowMs()
	b := mustBatch(t, errorRateSeries(t0)...)
	defer b.Close()
	if err := eng.Ingest(b); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1: %+v", len(reqs), reqs)
	}
	r := reqs[0]
	if r.Action != "scale_up" || r.Target != "checkout" || r.Reason != "error_rate_threshold" ||
		r.Policy != "checkout_errors" || r.Series != `error_rate{service="checkout"}` || r.ID == "" {
		t.Fatalf("request = %+v", r)
	}
	if len(decs) != 1 || decs[0].Decision != "fired" || decs[0].Target != "checkout" ||
		decs[0].ActionID != r.ID {
		t.Fatalf("decisions = %+v", decs)
	}
	stored, err := eng.Decisions(0, 0)
	if err != nil || len(stored) != 1 || stored[0].Decision != "fired" || stored[0].Action != "scale_up" {
		t.Fatalf("stored decisions = %+v, %v", stored, err)
	}
	stats, err := eng.Stats()
	if err != nil || stats.Policies != 1 || stats.Evaluations != 6 || stats.Requests != 1 || stats.PolicyErrors != 0 {
		t.Fatalf("stats = %+v, %v", stats, err)
	}
	// the closed loop: a success starts verification, no error
	if err := eng.ActionResult(ActionResult{ID: r.ID, Status: ActionSucceeded}); err != nil {
		t.Fatal(err)
	}
	if err := eng.ActionResult(ActionResult{ID: "nope", Status: ActionSucceeded}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown id = %v", err)
	}
}

func TestGoPolicyLocatedConfigError(t *testing.T) {
	reg := newPolicyTypes(t)
	defer reg.Close()
	st, _ := OpenStore("sqlite://:memory:")
	defer st.Close()
	bad := "policies:\n  - name: r\n    kind: error_rate\n    metric: error_rate\n    action: scale_up\n    limit: 7\n"
	_, err := NewEngine(EngineOptions{Store: st, PolicyTypes: reg, Policies: bad})
	ve := asError(t, err)
	if ve.Code != ErrRange || !strings.HasPrefix(ve.Message, "policies:6:12: policies[0].limit: expected a ratio between 0 and 1, got 7") {
		t.Fatalf("error = %d %q", ve.Code, ve.Message)
	}
	if ve.File != "policies" || ve.Line != 6 || ve.Column != 12 {
		t.Fatalf("location = %s:%d:%d", ve.File, ve.Line, ve.Column)
	}
	// a getter's own located error passes through too
	bad = strings.Replace(bad, "limit: 7", "over: soon", 1)
	_, err = NewEngine(EngineOptions{Store: st, PolicyTypes: reg, Policies: bad})
	if ve := asError(t, err); ve.Code != ErrValue || !strings.Contains(ve.Message, "policies:6:11: policies[0].over:") {
		t.Fatalf("bad duration = %d %q", ve.Code, ve.Message)
	}
	// an unknown kind, and a key the kind does not list
	_, err = NewEngine(EngineOptions{Store: st, PolicyTypes: reg,
		Policies: strings.Replace(bad, "over: soon", "speed: 3", 1)})
	if ve := asError(t, err); ve.Code != ErrUnknownKey || !strings.Contains(ve.Message, "policies[0].speed") {
		t.Fatalf("unknown key = %d %q", ve.Code, ve.Message)
	}
	if err := reg.Register("error_rate", nil, newErrorRatePolicy); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate kind = %v", err)
	}
	if err := reg.Register("threshold", nil, newErrorRatePolicy); !errors.Is(err, ErrExists) {
		t.Fatalf("built-in kind = %v", err)
	}
	if err := reg.Register("Bad-Name", nil, newErrorRatePolicy); !errors.Is(err, ErrName) {
		t.Fatalf("bad name = %v", err)
	}
}

func TestPanicInPolicyIsItsError(t *testing.T) {
	reg, _ := NewPolicyRegistry()
	defer reg.Close()
	reg.Register("boom", nil, func(rule *ConfigNode) (Policy, error) {
		return PolicyFunc(func(m Metric, ctx *PolicyContext) (Verdict, error) {
			if m.Value > 1 {
				panic("policy exploded")
			}
			return Verdict{Value: m.Value}, nil
		}), nil
	})
	reg.Register("boom_create", nil, func(rule *ConfigNode) (Policy, error) {
		var m map[string]int
		m["x"] = 1 // a runtime error panic
		return nil, nil
	})
	st, _ := OpenStore("sqlite://:memory:")
	defer st.Close()
	sink := &logSink{}
	eng, err := NewEngine(EngineOptions{Store: st, PolicyTypes: reg, Logger: sink.log,
		Policies: "- {name: p, kind: boom, metric: m, action: a}\n"})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	t0 := nowMs()
	b := mustBatch(t, Metric{Name: "m", Value: 0.5, TimeMs: t0 - 1}, Metric{Name: "m", Value: 5, TimeMs: t0})
	defer b.Close()
	if err := eng.Ingest(b); err != nil {
		t.Fatal(err)
	}
	st2, _ := eng.Stats()
	if st2.PolicyErrors != 1 || st2.Evaluations != 2 {
		t.Fatalf("stats = %+v, want one policy error", st2)
	}
	if _, ok := sink.find("code policy failed", "policy=p", "code=-1", `error="panic: policy exploded"`); !ok {
		t.Fatalf("no log of the panic: %+v", sink.recs)
	}
	err = eng.Load("- {name: q, kind: boom_create, metric: m, action: a}\n", "more.yaml")
	if ve := asError(t, err); ve.Code != ErrError || !strings.Contains(ve.Message, "panic: assignment to entry in nil map") {
		t.Fatalf("panicking factory = %d %q", ve.Code, ve.Message)
	}
}

// A ConfigNode kept past its factory refuses to be read instead of
// touching freed memory.
func TestConfigNodeKeptPastFactory(t *testing.T) {
	reg, _ := NewPolicyRegistry()
	defer reg.Close()
	var kept *ConfigNode
	reg.Register("keeper", []string{"limit"}, func(rule *ConfigNode) (Policy, error) {
		kept = rule
		if !rule.Has("limit") || rule.Path() != "[0]" {
			return nil, rule.Errorf(ErrMissing, "", "limit and path expected, path %q", rule.Path())
		}
		return PolicyFunc(func(Metric, *PolicyContext) (Verdict, error) { return Verdict{}, nil }), nil
	})
	st, _ := OpenStore("sqlite://:memory:")
	defer st.Close()
	eng, err := NewEngine(EngineOptions{Store: st, PolicyTypes: reg,
		Policies: "- {name: k, kind: keeper, metric: m, action: a, limit: 3}\n"})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if _, err := kept.Float("limit", 0); !errors.Is(err, ErrInval) {
		t.Fatalf("reading a kept node = %v, want ErrInval", err)
	}
	if kept.Has("limit") || kept.Path() != "" {
		t.Fatal("a kept node still answers")
	}
}

// The policy context: series, rule, event time and desired state; and an
// engine used from several goroutines at once.
func TestPolicyContextAndConcurrentEngine(t *testing.T) {
	reg, _ := NewPolicyRegistry()
	defer reg.Close()
	type seen struct {
		series, policy string
		now            int64
		replicas       float64
		err            error
	}
	var mu sync.Mutex
	var last seen
	var evals int
	var kept *PolicyContext
	reg.Register("replicas", nil, func(*ConfigNode) (Policy, error) {
		return PolicyFunc(func(m Metric, ctx *PolicyContext) (Verdict, error) {
			want, err := ctx.DesiredNumber(m.Tags["app"], "spec.replicas")
			mu.Lock()
			last = seen{ctx.Series(), ctx.Policy(), ctx.NowMs(), want, err}
			evals++
			kept = ctx
			mu.Unlock()
			if err != nil {
				return Verdict{}, nil // no desired state yet: nothing to judge
			}
			return Verdict{Value: m.Value, Active: m.Value < want, Params: map[string]string{"want": "{{tags.app}}"}}, nil
		}), nil
	})
	st, _ := OpenStore("sqlite://:memory:")
	defer st.Close()
	var reqs []EngineRequest
	eng, err := NewEngine(EngineOptions{Store: st, PolicyTypes: reg, Logger: (&logSink{}).log,
		OnRequest: func(r EngineRequest) { mu.Lock(); reqs = append(reqs, r); mu.Unlock() },
		Policies:  "- {name: rep, kind: replicas, metric: running, match: {app: \"*\"}, action: scale, target: \"{{tags.app}}\"}\n"})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	t0 := nowMs()
	b := mustBatch(t, Metric{Name: "running", Value: 2, TimeMs: t0, Tags: map[string]string{"app": "api"}})
	defer b.Close()
	if err := eng.Ingest(b); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if !errors.Is(last.err, ErrNotFound) || last.series != `running{app="api"}` || last.policy != "rep" || last.now != t0 {
		t.Fatalf("without a desired state: %+v", last)
	}
	mu.Unlock()
	if err := eng.SetDesired("api", `{"spec":{"replicas":3}}`); err != nil {
		t.Fatal(err)
	}
	if err := eng.SetDesired("api", `[1]`); !errors.Is(err, ErrType) {
		t.Fatalf("desired state not an object = %v", err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				gb, _ := NewBatchOf(Metric{Name: "running", Value: 2, TimeMs: t0 + int64(1+g*100+i),
					Tags: map[string]string{"app": "api"}})
				if err := eng.Ingest(gb); err != nil {
					t.Error(err)
				}
				gb.Close()
				eng.Tick(0)
				eng.Decisions(0, 5)
			}
		}(g)
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if evals != 101 || last.err != nil || last.replicas != 3 {
		t.Fatalf("%d evaluations, last %+v", evals, last)
	}
	if len(reqs) != 1 || reqs[0].Target != "api" || reqs[0].Params["want"] != "api" {
		t.Fatalf("requests = %+v", reqs)
	}
	if _, err := kept.Aggregate("", AggLast, time.Minute); !errors.Is(err, ErrInval) || kept.Series() != "" {
		t.Fatalf("a context kept past Evaluate = %v", err)
	}
}

// A NUL byte in a verdict's strings is the policy's error, never a request
// for the truncated target ("checkout" for "checkout\x00payments").
func TestNULInVerdictIsThePolicyError(t *testing.T) {
	reg, _ := NewPolicyRegistry()
	defer reg.Close()
	reg.Register("nul_target", nil, func(rule *ConfigNode) (Policy, error) {
		return PolicyFunc(func(m Metric, ctx *PolicyContext) (Verdict, error) {
			return Verdict{Active: true, Action: "scale_up", Target: "checkout\x00payments"}, nil
		}), nil
	})
	st, _ := OpenStore("sqlite://:memory:")
	defer st.Close()
	sink := &logSink{}
	var requests []EngineRequest
	eng, err := NewEngine(EngineOptions{Store: st, PolicyTypes: reg, Logger: sink.log,
		OnRequest: func(r EngineRequest) { requests = append(requests, r) },
		Policies:  "- {name: p, kind: nul_target, metric: m, action: a}\n"})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	b := mustBatch(t, Metric{Name: "m", Value: 1, TimeMs: nowMs()})
	defer b.Close()
	if err := eng.Ingest(b); err != nil {
		t.Fatal(err)
	}
	st2, _ := eng.Stats()
	if st2.PolicyErrors != 1 || len(requests) != 0 {
		t.Fatalf("stats = %+v, requests = %+v; want one policy error and no request", st2, requests)
	}
	if _, ok := sink.find("code policy failed", "policy=p", "code=-13",
		`error="verdict Target: a NUL byte cannot be passed as a C string"`); !ok {
		t.Fatalf("no log of the refusal: %+v", sink.recs)
	}
}
