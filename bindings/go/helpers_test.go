package vigil

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// logSink collects log records (and keeps the library quiet on stderr).
type logSink struct {
	mu   sync.Mutex
	recs []LogRecord
}

func (l *logSink) log(r LogRecord) {
	l.mu.Lock()
	l.recs = append(l.recs, r)
	l.mu.Unlock()
}

// find returns the first record whose message is msg and whose fields hold
// every part.
func (l *logSink) find(msg string, parts ...string) (LogRecord, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
next:
	for _, r := range l.recs {
		if r.Message != msg {
			continue
		}
		for _, p := range parts {
			if !strings.Contains(r.Fields, p) {
				continue next
			}
		}
		return r, true
	}
	return LogRecord{}, false
}

func storeURL(t *testing.T, name string) string {
	return "sqlite://" + t.TempDir() + "/" + name
}

func nowMs() int64 { return time.Now().UnixMilli() }

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func mustBatch(t testing.TB, ms ...Metric) *Batch {
	t.Helper()
	b, err := NewBatchOf(ms...)
	if err != nil {
		t.Fatalf("NewBatchOf: %v", err)
	}
	return b
}

func asError(t *testing.T, err error) *Error {
	t.Helper()
	ve, ok := err.(*Error)
	if !ok {
		t.Fatalf("error %v (%T) is not a *vigil.Error", err, err)
	}
	return ve
}

// errorRatePolicy is the seed guide's ErrorRatePolicy: the mean of
// error_rate over `over` above `limit` asks scale_up for the service.
type errorRatePolicy struct {
	limit float64
	over  time.Duration
}

func newErrorRatePolicy(rule *ConfigNode) (Policy, error) {
	limit, err := rule.Float("limit", 0.05)
	if err != nil {
		return nil, err
	}
	if limit < 0 || limit > 1 {
		return nil, rule.Errorf(ErrRange, "limit", "expected a ratio between 0 and 1, got %g", limit)
	}
	over, err := rule.Duration("over", 5*time.Minute)
	if err != nil {
		return nil, err
	}
	return &errorRatePolicy{limit: limit, over: over}, nil
}

func (p *errorRatePolicy) Evaluate(m Metric, ctx *PolicyContext) (Verdict, error) {
	mean, err := ctx.Aggregate("", AggMean, p.over)
	if err != nil {
		return Verdict{}, err
	}
	v := Verdict{Value: mean, Active: mean > p.limit}
	if v.Active {
		v.Action = "scale_up"
		v.Target = "{{tags.service}}"
		v.Reason = "error_rate_threshold"
	}
	return v, nil
}

const errorRateRules = `policies:
  - name: checkout_errors
    kind: error_rate
    metric: error_rate
    match: {service: "*"}
    action: scale_up
    limit: 0.05
    over: 5m
    cooldown: 5m
`

// errorRateSeries is six minutes of error_rate samples for checkout ending
// at t0, climbing from 1% to 12%.
func errorRateSeries(t0 int64) []Metric {
	vals := []float64{0.01, 0.03, 0.05, 0.08, 0.10, 0.12}
	out := make([]Metric, 0, len(vals))
	for i, v := range vals {
		out = append(out, Metric{Name: "error_rate", Value: v,
			TimeMs: t0 - int64(len(vals)-1-i)*60000, Tags: map[string]string{"service": "checkout"}})
	}
	return out
}

func newPolicyTypes(t *testing.T) *PolicyRegistry {
	t.Helper()
	reg, err := NewPolicyRegistry()
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Register("error_rate", []string{"limit", "over"}, newErrorRatePolicy); err != nil {
		t.Fatal(err)
	}
	return reg
}
