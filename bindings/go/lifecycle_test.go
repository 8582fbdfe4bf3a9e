package vigil

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Objects dropped without Close are freed by their finalizers, handles
// included.
func TestFinalizersAreASafetyNet(t *testing.T) {
	before := LiveHandles()
	func() {
		for i := 0; i < 50; i++ {
			reg, err := NewPolicyRegistry()
			if err != nil {
				t.Fatal(err)
			}
			reg.Register("error_rate", []string{"limit", "over"}, newErrorRatePolicy)
			b := mustBatch(t, Metric{Name: "x", Value: 1, TimeMs: 1})
			_ = b
		}
	}()
	if LiveHandles() != before+50 {
		t.Fatalf("live handles %d, want %d", LiveHandles(), before+50)
	}
	waitFor(t, "the finalizers", 10*time.Second, func() bool {
		runtime.GC()
		return LiveHandles() == before
	})
}

func TestStoreConcurrentGoroutines(t *testing.T) {
	st, err := OpenStore(storeURL(t, "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const writers, batches = 6, 25
	var wg sync.WaitGroup
	var failures atomic.Int64
	for g := 0; g < writers; g++ {
		wg.Add(2)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < batches; i++ {
				b := mustBatch(t, Metric{Name: "w", Value: float64(i), TimeMs: int64(1000 + i),
					Tags: map[string]string{"g": fmt.Sprint(g)}})
				if _, err := st.Write(b); err != nil {
					failures.Add(1)
				}
				b.Close()
			}
		}(g)
		go func() {
			defer wg.Done()
			for i := 0; i < batches; i++ {
				if _, err := st.Query(Query{Name: "w"}); err != nil {
					failures.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	series, err := st.Query(Query{Name: "w"})
	if err != nil || failures.Load() != 0 || len(series) != writers {
		t.Fatalf("%d series, %d failures, %v", len(series), failures.Load(), err)
	}
	for _, s := range series {
		if len(s.Points) != batches {
			t.Fatalf("%s has %d points, want %d", s.Key, len(s.Points), batches)
		}
	}
	// Close waits for the calls in progress; later calls fail cleanly
	done := make(chan struct{})
	go func() {
		for i := 0; i < 100; i++ {
			if _, err := st.Query(Query{Name: "w"}); err != nil && !errors.Is(err, ErrClosed) {
				t.Errorf("query during Close: %v", err)
			}
		}
		close(done)
	}()
	st.Close()
	<-done
}

// A policy panicking on the hub's evaluator thread (a C thread) is that
// policy's error; the hub goes on.
func TestPanicOnHubThread(t *testing.T) {
	reg, _ := NewPolicyRegistry()
	defer reg.Close()
	var calls atomic.Int64
	reg.Register("boom", nil, func(*ConfigNode) (Policy, error) {
		return PolicyFunc(func(m Metric, ctx *PolicyContext) (Verdict, error) {
			calls.Add(1)
			if m.Value > 1 {
				panic(fmt.Sprintf("value %g too big", m.Value))
			}
			return Verdict{Value: m.Value}, nil
		}), nil
	})
	sink := &logSink{}
	hub, err := NewHub(HubOptions{StoreURL: storeURL(t, "hub.db"), PolicyTypes: reg, Logger: sink.log,
		Policies: "- {name: p, kind: boom, metric: m, action: a}\n"})
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	if err := hub.Start(); err != nil {
		t.Fatal(err)
	}
	t0 := nowMs()
	b := mustBatch(t, Metric{Name: "m", Value: 5, TimeMs: t0 - 1}, Metric{Name: "m", Value: 0.5, TimeMs: t0})
	defer b.Close()
	if _, err := hub.Ingest(b); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both evaluations", 10*time.Second, func() bool { return calls.Load() == 2 })
	waitFor(t, "the policy error to be counted", 10*time.Second, func() bool {
		st, err := hub.EngineStats()
		return err == nil && st.PolicyErrors == 1
	})
	if _, ok := sink.find("code policy failed", `error="panic: value 5 too big"`); !ok {
		t.Fatalf("no log of the panic")
	}
}

// Every object closes cleanly without plug-in registries, twice.
func TestCloseWithoutRegistries(t *testing.T) {
	st, err := OpenStore("sqlite://:memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	eng, err := NewEngine(EngineOptions{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	rem, err := NewRemediator(RemediatorOptions{StoreURL: storeURL(t, "rem.db"), AuditKey: testKey(),
		Logger: (&logSink{}).log})
	if err != nil {
		t.Fatal(err)
	}
	agent, err := NewAgent(AgentOptions{Logger: (&logSink{}).log})
	if err != nil {
		t.Fatal(err)
	}
	hub, err := NewHub(HubOptions{StoreURL: storeURL(t, "hub.db"), Logger: (&logSink{}).log})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		for _, c := range []interface{ Close() error }{eng, rem, agent, hub} {
			if err := c.Close(); err != nil {
				t.Fatalf("%T.Close: %v", c, err)
			}
		}
	}
	if _, err := agent.CollectOnce(0); !errors.Is(err, ErrClosed) {
		t.Fatalf("CollectOnce after Close = %v", err)
	}
	if err := eng.Tick(0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Tick after Close = %v", err)
	}
}
