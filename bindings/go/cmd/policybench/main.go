// policybench prints the cost of one evaluation of a Go policy, called by
// the C engine through the binding's cgo callback, next to the C built-in
// threshold rule on the same batches (1,000 samples of 100 series, rules
// that never fire, an in-memory store). `make bench` runs it.
//
//	PKG_CONFIG_PATH=build/shared/pkgconfig LD_LIBRARY_PATH=build/shared/lib \
//	    go run ./cmd/policybench [-batches N]
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"vigil"
)

func measure(goPolicy bool, batches int) (float64, error) {
	reg, err := vigil.NewPolicyRegistry()
	if err != nil {
		return 0, err
	}
	defer reg.Close()
	err = reg.Register("gocheck", nil, func(*vigil.ConfigNode) (vigil.Policy, error) {
		return vigil.PolicyFunc(func(m vigil.Metric, ctx *vigil.PolicyContext) (vigil.Verdict, error) {
			return vigil.Verdict{Value: m.Value, Active: m.Value > 1e9}, nil
		}), nil
	})
	if err != nil {
		return 0, err
	}
	st, err := vigil.OpenStore("sqlite://:memory:")
	if err != nil {
		return 0, err
	}
	defer st.Close()
	rule := "- {name: r, kind: threshold, metric: latency, action: a, threshold: 1e9, op: \">\"}\n"
	if goPolicy {
		rule = "- {name: r, kind: gocheck, metric: latency, action: a}\n"
	}
	eng, err := vigil.NewEngine(vigil.EngineOptions{Store: st, PolicyTypes: reg, Policies: rule})
	if err != nil {
		return 0, err
	}
	defer eng.Close()
	b, err := vigil.NewBatch()
	if err != nil {
		return 0, err
	}
	defer b.Close()
	t0 := time.Now().UnixMilli()
	for i := 0; i < 1000; i++ {
		if err := b.Add(vigil.Metric{Name: "latency", Value: float64(i % 97), TimeMs: t0 + int64(i/100),
			Tags: map[string]string{"service": fmt.Sprintf("svc%d", i%100)}}); err != nil {
			return 0, err
		}
	}
	for i := 0; i < batches/10+1; i++ { // warm up
		if err := eng.Ingest(b); err != nil {
			return 0, err
		}
	}
	before, _ := eng.Stats()
	start := time.Now()
	for i := 0; i < batches; i++ {
		if err := eng.Ingest(b); err != nil {
			return 0, err
		}
	}
	elapsed := time.Since(start)
	after, err := eng.Stats()
	if err != nil {
		return 0, err
	}
	evals := after.Evaluations - before.Evaluations
	if evals != uint64(batches)*1000 || after.PolicyErrors != 0 {
		return 0, fmt.Errorf("%d evaluations and %d policy errors, want %d and 0", evals,
			after.PolicyErrors, batches*1000)
	}
	return float64(elapsed.Nanoseconds()) / float64(evals), nil
}

func main() {
	batches := flag.Int("batches", 200, "batches of 1,000 samples to evaluate per rule")
	flag.Parse()
	goNs, err := measure(true, *batches)
	if err == nil {
		var cNs float64
		if cNs, err = measure(false, *batches); err == nil {
			fmt.Printf("policy evaluation, %d x 1000 samples: go policy %.0f ns/eval, "+
				"c threshold %.0f ns/eval, callback overhead %.0f ns/eval\n",
				*batches, goNs, cNs, goNs-cNs)
			return
		}
	}
	fmt.Fprintln(os.Stderr, "policybench:", err)
	os.Exit(1)
}
