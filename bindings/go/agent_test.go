package vigil

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func newCollectorTypes(t *testing.T) *CollectorRegistry {
	t.Helper()
	reg, err := NewCollectorRegistry()
	if err != nil {
		t.Fatal(err)
	}
	err = reg.Register("queue_depth", []string{"queue", "depth"}, func(cfg *ConfigNode, info CollectorInfo) (Collector, error) {
		queue, err := cfg.String("queue", "")
		if err != nil {
			return nil, err
		}
		if queue == "" {
			return nil, cfg.Errorf(ErrMissing, "", "missing required key \"queue\"")
		}
		depth, err := cfg.Float("depth", 0)
		if err != nil {
			return nil, err
		}
		name := info.Name
		return CollectorFunc(func(now int64) ([]Metric, error) {
			return []Metric{
				{Name: "queue_depth", Value: depth, Tags: map[string]string{"queue": queue, "collector": name}},
				{Name: "queue_age_seconds", Value: 1.5, TimeMs: now - 1000, Tags: map[string]string{"queue": queue}},
			}, nil
		}), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = reg.Register("flaky", nil, func(cfg *ConfigNode, info CollectorInfo) (Collector, error) {
		return CollectorFunc(func(now int64) ([]Metric, error) {
			panic("collector exploded")
		}), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func TestGoCollectorSamplesReachBatch(t *testing.T) {
	reg := newCollectorTypes(t)
	defer reg.Close()
	agent, err := NewAgent(AgentOptions{ID: "node-7", CollectorTypes: reg, Logger: (&logSink{}).log,
		Config: "agent:\n  tags: {env: test}\ncollectors:\n" +
			"  - {type: queue_depth, name: jobs, interval: 1s, queue: jobs, depth: 42}\n" +
			"  - {type: flaky, name: broken, interval: 1s}\n"})
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Close()
	if agent.ID() != "node-7" {
		t.Fatalf("ID = %q", agent.ID())
	}
	before := nowMs()
	b, err := agent.CollectOnce(10 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Agent() != "node-7" {
		t.Fatalf("batch agent = %q", b.Agent())
	}
	var depth, age, failure *Metric
	ms := b.Metrics()
	for i := range ms {
		switch ms[i].Name {
		case "queue_depth":
			depth = &ms[i]
		case "queue_age_seconds":
			age = &ms[i]
		case "vigil_collector_error":
			failure = &ms[i]
		}
	}
	if depth == nil || depth.Value != 42 || depth.TimeMs < before || depth.Tags["queue"] != "jobs" ||
		depth.Tags["collector"] != "jobs" || depth.Tags["host"] != "node-7" || depth.Tags["env"] != "test" {
		t.Fatalf("queue_depth = %+v in %+v", depth, ms)
	}
	if age == nil || age.TimeMs != depth.TimeMs-1000 {
		t.Fatalf("queue_age_seconds = %+v", age)
	}
	// the panic became the collector's error sample
	if failure == nil || !strings.Contains(failure.Err, "panic: collector exploded") {
		t.Fatalf("error sample = %+v in %+v", failure, ms)
	}
}

func TestGoCollectorConfigErrors(t *testing.T) {
	reg := newCollectorTypes(t)
	defer reg.Close()
	_, err := NewAgent(AgentOptions{CollectorTypes: reg, Logger: (&logSink{}).log, ConfigName: "a.yaml",
		Config: "collectors:\n  - {type: queue_depth, name: q, depth: 3}\n"})
	ve := asError(t, err)
	if ve.Code != ErrMissing || !strings.Contains(ve.Message, "a.yaml:2:5: collectors[0]: missing required key \"queue\"") {
		t.Fatalf("missing queue = %d %q", ve.Code, ve.Message)
	}
	_, err = NewAgent(AgentOptions{CollectorTypes: reg, Logger: (&logSink{}).log,
		Config: "collectors:\n  - {type: queue_depth, queue: q, depth: deep}\n"})
	if ve := asError(t, err); ve.Code != ErrValue || !strings.Contains(ve.Message, "collectors[0].depth") {
		t.Fatalf("bad depth = %d %q", ve.Code, ve.Message)
	}
	_, err = NewAgent(AgentOptions{Logger: (&logSink{}).log,
		Config: "collectors:\n  - {type: queue_depth, queue: q}\n"})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("type without its registry = %v", err)
	}
	if err := reg.Register("cpu", nil, func(*ConfigNode, CollectorInfo) (Collector, error) { return nil, nil }); !errors.Is(err, ErrExists) {
		t.Fatalf("built-in type = %v", err)
	}
}
