package vigil

import (
	"fmt"
	"testing"
	"time"
)

// benchEngine is an engine on an in-memory store with one rule over
// `latency`: a Go policy (kind gocheck) or the C built-in threshold kind,
// neither of which ever fires, and a batch of 1,000 samples of 100 series.
func benchEngine(tb testing.TB, goPolicy bool) (*Engine, *Batch, func()) {
	reg, err := NewPolicyRegistry()
	if err != nil {
		tb.Fatal(err)
	}
	reg.Register("gocheck", nil, func(*ConfigNode) (Policy, error) {
		return PolicyFunc(func(m Metric, ctx *PolicyContext) (Verdict, error) {
			return Verdict{Value: m.Value, Active: m.Value > 1e9}, nil
		}), nil
	})
	st, err := OpenStore("sqlite://:memory:")
	if err != nil {
		tb.Fatal(err)
	}
	rule := "- {name: r, kind: threshold, metric: latency, action: a, threshold: 1e9, op: \">\"}\n"
	if goPolicy {
		rule = "- {name: r, kind: gocheck, metric: latency, action: a}\n"
	}
	eng, err := NewEngine(EngineOptions{Store: st, PolicyTypes: reg, Policies: rule})
	if err != nil {
		tb.Fatal(err)
	}
	b, _ := NewBatch()
	t0 := time.Now().UnixMilli()
	for i := 0; i < 1000; i++ {
		b.Add(Metric{Name: "latency", Value: float64(i % 97), TimeMs: t0 + int64(i/100),
			Tags: map[string]string{"service": fmt.Sprintf("svc%d", i%100)}})
	}
	return eng, b, func() { b.Close(); eng.Close(); reg.Close(); st.Close() }
}

// BenchmarkPolicyCallback measures one evaluation of a Go policy (through
// the cgo callback: the metric copied into Go, the verdict back) against
// the C threshold rule on the same batches; ns/eval is the figure.
func BenchmarkPolicyCallback(b *testing.B) {
	for _, c := range []struct {
		name string
		goP  bool
	}{{"go_policy", true}, {"c_threshold", false}} {
		b.Run(c.name, func(b *testing.B) {
			eng, batch, done := benchEngine(b, c.goP)
			defer done()
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if err := eng.Ingest(batch); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			elapsed := time.Since(start)
			st, _ := eng.Stats()
			if st.Evaluations != uint64(b.N)*1000 || st.PolicyErrors != 0 {
				b.Fatalf("stats %+v after %d ingests", st, b.N)
			}
			b.ReportMetric(float64(elapsed.Nanoseconds())/float64(st.Evaluations), "ns/eval")
		})
	}
}
