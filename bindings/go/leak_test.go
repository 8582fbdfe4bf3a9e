package vigil

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
)

// rssBytes is the resident set size from /proc/self/statm.
func rssBytes(t *testing.T) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(data))
	pages, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return pages * int64(os.Getpagesize())
}

func settle() {
	runtime.GC()
	debug.FreeOSMemory()
}

// TestNoLeakAcrossCreateFree runs 10,000 cycles creating and freeing a
// batch of 16 tagged metrics (encoded to JSON and back), a policy registry
// with a Go kind, an engine on a shared store loading a rule of that kind
// (a Go Policy created and destroyed through its handle) and evaluating a
// sample, and a refused metric (an *Error). The RSS may not grow by more
// than 8 MiB: a cycle leaking as little as ~840 bytes fails, and a cycle
// leaking its batch (several KiB of C memory) fails by far. The live
// handles must return to where they started.
func TestNoLeakAcrossCreateFree(t *testing.T) {
	st, err := OpenStore("sqlite://:memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sink := &logSink{}
	metrics := make([]Metric, 16)
	for i := range metrics {
		metrics[i] = Metric{Name: "leak_check", Value: float64(i), TimeMs: 1732650000000 + int64(i),
			Tags: map[string]string{"host": "h1", "idx": strconv.Itoa(i), "pad": strings.Repeat("x", 64)}}
	}
	handles := LiveHandles()
	cycle := func(i int) {
		b, err := NewBatchOf(metrics...)
		if err != nil {
			t.Fatal(err)
		}
		js, err := b.EncodeJSON()
		if err != nil {
			t.Fatal(err)
		}
		if err := b.DecodeJSON(js); err != nil {
			t.Fatal(err)
		}
		if err := b.Add(Metric{Name: "bad name", Value: 1, TimeMs: 1}); !errors.Is(err, ErrName) {
			t.Fatalf("cycle %d: %v", i, err)
		}
		reg, err := NewPolicyRegistry()
		if err != nil {
			t.Fatal(err)
		}
		if err := reg.Register("error_rate", []string{"limit", "over"}, newErrorRatePolicy); err != nil {
			t.Fatal(err)
		}
		eng, err := NewEngine(EngineOptions{Store: st, PolicyTypes: reg, Logger: sink.log,
			Policies: fmt.Sprintf("- {name: r%d, kind: error_rate, metric: error_rate, action: a, limit: 0.5}\n", i%4)})
		if err != nil {
			t.Fatal(err)
		}
		eb, _ := NewBatchOf(Metric{Name: "error_rate", Value: 0.1, TimeMs: nowMs()})
		if err := eng.Ingest(eb); err != nil {
			t.Fatal(err)
		}
		eb.Close()
		eng.Close()
		if err := reg.Close(); err != nil {
			t.Fatal(err)
		}
		b.Close()
	}
	for i := 0; i < 3000; i++ { // warm up: caches, pools, the Go heap
		cycle(i)
	}
	settle()
	before := rssBytes(t)
	for i := 0; i < 10000; i++ {
		cycle(i)
	}
	settle()
	after := rssBytes(t)
	const bound = 8 << 20
	t.Logf("RSS before %d KiB, after %d KiB, growth %d KiB over 10000 cycles", before>>10, after>>10,
		(after-before)>>10)
	if after-before > bound {
		t.Fatalf("RSS grew by %d KiB over 10,000 cycles (bound %d KiB)", (after-before)>>10, bound>>10)
	}
	if got := LiveHandles(); got != handles {
		t.Fatalf("live handles %d after the cycles, %d before", got, handles)
	}
}
