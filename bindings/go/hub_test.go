package vigil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func hubDecision(h *Hub, kind string) func() bool {
	return func() bool {
		ds, err := h.Decisions(0, 0)
		if err != nil {
			return false
		}
		for _, d := range ds {
			if d.Decision == kind {
				return true
			}
		}
		return false
	}
}

func TestHubGoPolicyToGoAction(t *testing.T) {
	ptypes := newPolicyTypes(t)
	defer ptypes.Close()
	at := newActionTypes(t)
	defer at.reg.Close()
	sink := &logSink{}
	hub, err := NewHub(HubOptions{StoreURL: storeURL(t, "hub.db"), Policies: errorRateRules,
		PolicyTypes: ptypes, Logger: sink.log})
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	rem, err := hub.AttachRemediator(RemediatorOptions{StoreURL: storeURL(t, "rem.db"), AuditKey: testKey(),
		Actions: scaleActions, ActionTypes: at.reg, Cooldown: Disabled, Logger: sink.log})
	if err != nil {
		t.Fatal(err)
	}
	if hub.Remediator() != rem {
		t.Fatal("Remediator() is not the attached one")
	}
	if err := hub.Start(); err != nil {
		t.Fatal(err)
	}
	t0 := nowMs()
	b := mustBatch(t, errorRateSeries(t0)...)
	defer b.Close()
	res, err := hub.Ingest(b)
	if err != nil || res.Accepted != 6 || res.Duplicate {
		t.Fatalf("Ingest = %+v, %v", res, err)
	}
	scale := at.get("scale_up")
	waitFor(t, "the Go action to run", 10*time.Second, func() bool { return scale.count() == 1 })
	run := scale.runs[0]
	if run.Action != "scale_up" || run.Target != "checkout" || run.Reason != "error_rate_threshold" ||
		run.Policy != "checkout_errors" || run.ID == "" {
		t.Fatalf("the action ran with %+v", run)
	}
	waitFor(t, "the fired decision", 10*time.Second, hubDecision(hub, "fired"))

	series, err := hub.Query(Query{Name: "error_rate"})
	if err != nil || len(series) != 1 || len(series[0].Points) != 6 || series[0].Points[5].Value != 0.12 ||
		series[0].Points[5].TimeMs != t0 {
		t.Fatalf("hub query = %+v, %v", series, err)
	}

	id, err := hub.RequestAction(ActionRequest{Action: "scale_up", Target: "payments",
		Params: map[string]string{"fail": "no"}, Reason: "by hand"})
	if err != nil || !strings.HasPrefix(id, "manual-") {
		t.Fatalf("RequestAction = %q, %v", id, err)
	}
	waitFor(t, "the manual action", 10*time.Second, func() bool { return scale.count() == 2 })
	scale.mu.Lock()
	manual := scale.runs[1]
	scale.mu.Unlock()
	if manual.ID != id || manual.Target != "payments" || manual.Reason != "by hand" {
		t.Fatalf("manual run = %+v", manual)
	}
	if _, err := hub.RequestAction(ActionRequest{Target: "x"}); !errors.Is(err, ErrInval) {
		t.Fatalf("request without action = %v", err)
	}
	// Evaluate runs the policies without storing; Tick runs the timers
	if err := hub.Evaluate(b); err != nil {
		t.Fatal(err)
	}
	if err := hub.Tick(0); err != nil {
		t.Fatal(err)
	}
	st, err := hub.EngineStats()
	if err != nil || st.Policies != 1 || st.Metrics != 12 || st.Evaluations+st.Stale != 12 || st.PolicyErrors != 0 {
		t.Fatalf("engine stats = %+v, %v", st, err)
	}
	if err := ptypes.Close(); !errors.Is(err, ErrBusy) {
		t.Fatalf("closing policy types in use = %v", err)
	}
	hub.Close()
	hub.Close()
	if _, err := hub.Ingest(b); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ingest after Close = %v", err)
	}
	if err := ptypes.Close(); err != nil {
		t.Fatalf("closing policy types after the hub = %v", err)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestHubFromConfigFile(t *testing.T) {
	dir := t.TempDir()
	ptypes := newPolicyTypes(t)
	defer ptypes.Close()
	at := newActionTypes(t)
	defer at.reg.Close()
	writeFile(t, filepath.Join(dir, "remediator.yaml"), fmt.Sprintf(`audit: sqlite://%s/rem.db
guards:
  cooldown: 0s
%s`, dir, scaleActions))
	writeFile(t, filepath.Join(dir, "collector.yaml"), fmt.Sprintf(`store: sqlite://%s/hub.db
%sremediator:
  inprocess: true
  config: %s/remediator.yaml
`, dir, errorRateRules, dir))
	sink := &logSink{}
	hub, err := NewHubFromConfig(filepath.Join(dir, "collector.yaml"),
		HubConfigOptions{PolicyTypes: ptypes, ActionTypes: at.reg, Logger: sink.log})
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	if hub.Remediator() == nil {
		t.Fatal("no in-process remediator")
	}
	if err := hub.Start(); err != nil {
		t.Fatal(err)
	}
	b := mustBatch(t, errorRateSeries(nowMs())...)
	defer b.Close()
	if _, err := hub.Ingest(b); err != nil {
		t.Fatal(err)
	}
	scale := at.get("scale_up")
	waitFor(t, "the Go action to run", 10*time.Second, func() bool { return scale != nil && scale.count() == 1 })
	waitFor(t, "the fired decision", 10*time.Second, hubDecision(hub, "fired"))
	rep, err := hub.Remediator().VerifyAudit()
	if err != nil || !rep.OK || rep.Entries == 0 {
		t.Fatalf("audit = %+v, %v", rep, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "hub.db")); err != nil {
		t.Fatal(err)
	}
}

func TestHubConfigErrorIsLocated(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "collector.yaml")
	writeFile(t, path, "store: \"sqlite::memory:\"\nretention: 14d\nstor: x\n")
	_, err := NewHubFromConfig(path, HubConfigOptions{})
	ve := asError(t, err)
	if ve.Code != ErrUnknownKey || !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("code = %d (%v), want ErrUnknownKey", ve.Code, err)
	}
	if !strings.HasPrefix(ve.Message, path+":3:1: stor: unknown key") || ve.File != path || ve.Line != 3 || ve.Column != 1 {
		t.Fatalf("error = %q at %s:%d:%d", ve.Message, ve.File, ve.Line, ve.Column)
	}
	// a Go policy kind the loader does not know
	writeFile(t, path, "store: \"sqlite::memory:\"\n"+errorRateRules)
	_, err = NewHubFromConfig(path, HubConfigOptions{})
	if ve := asError(t, err); ve.Code != ErrUnsupported || ve.File != path || ve.Line != 4 ||
		!strings.Contains(ve.Message, "error_rate") {
		t.Fatalf("unknown kind = %d %q at %s:%d", ve.Code, ve.Message, ve.File, ve.Line)
	}
	// malformed YAML
	writeFile(t, path, "store: [unclosed\n")
	_, err = NewHubFromConfig(path, HubConfigOptions{})
	if ve := asError(t, err); ve.Code != ErrYAML || !strings.HasPrefix(ve.Message, path+":") {
		t.Fatalf("bad YAML = %d %q", ve.Code, ve.Message)
	}
	_, err = NewHubFromConfig(filepath.Join(dir, "missing.yaml"), HubConfigOptions{})
	if !errors.Is(err, ErrIO) {
		t.Fatalf("missing file = %v", err)
	}
}

func TestHubConcurrentGoroutines(t *testing.T) {
	reg, _ := NewPolicyRegistry()
	defer reg.Close()
	var evals atomic.Int64
	reg.Register("count", nil, func(*ConfigNode) (Policy, error) {
		return PolicyFunc(func(m Metric, ctx *PolicyContext) (Verdict, error) {
			evals.Add(1)
			return Verdict{Value: m.Value}, nil
		}), nil
	})
	hub, err := NewHub(HubOptions{StoreURL: storeURL(t, "hub.db"), PolicyTypes: reg,
		Policies: "- {name: c, kind: count, metric: load, action: none}\n", Logger: (&logSink{}).log})
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	if err := hub.Start(); err != nil {
		t.Fatal(err)
	}
	const goroutines, batches, per = 8, 20, 10
	t0 := nowMs() - 60000
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*2)
	for g := 0; g < goroutines; g++ {
		wg.Add(2)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < batches; i++ {
				b, err := NewBatch()
				if err != nil {
					errs <- err
					return
				}
				for j := 0; j < per; j++ {
					b.Add(Metric{Name: "load", Value: float64(j), TimeMs: t0 + int64(i*per+j),
						Tags: map[string]string{"g": fmt.Sprint(g)}})
				}
				if _, err := hub.Ingest(b); err != nil {
					errs <- err
				}
				b.Close()
			}
		}(g)
		go func() { // readers beside the writers
			defer wg.Done()
			for i := 0; i < batches; i++ {
				if _, err := hub.Query(Query{Name: "load"}); err != nil {
					errs <- err
					return
				}
				if _, err := hub.Decisions(0, 10); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	series, err := hub.Query(Query{Name: "load"})
	if err != nil || len(series) != goroutines {
		t.Fatalf("series = %d, %v", len(series), err)
	}
	total := 0
	for _, s := range series {
		total += len(s.Points)
	}
	if total != goroutines*batches*per {
		t.Fatalf("%d points stored, want %d", total, goroutines*batches*per)
	}
	waitFor(t, "every sample to be evaluated", 10*time.Second, func() bool {
		return evals.Load() == goroutines*batches*per
	})
}
