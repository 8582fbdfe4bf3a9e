// error_rate_policy is the seed guide's ErrorRatePolicy written in Go and
// plugged into a running hub: when the mean of `error_rate` over 5 minutes
// is above 0.05, ask `scale_up` for the series' `service` tag. The request
// goes through the C policy engine to a remediator running in the same
// process, whose `scale_up` action is a Go handler too.
//
//	PKG_CONFIG_PATH=build/shared/pkgconfig LD_LIBRARY_PATH=build/shared/lib \
//	    go run ./examples/error_rate_policy [DIR]
//
// DIR (default: a temporary directory, removed at exit) holds the hub's and
// the remediator's SQLite stores. Six minutes of samples are ingested: the
// error rate of service "checkout" climbs from 1% to 12%. The program
// prints the action it carried out and the hub's decisions, and exits 0
// once scale_up ran for "checkout".
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"vigil"
)

// ErrorRatePolicy is one rule of kind error_rate: `limit` (default 0.05)
// and `over` (default 5m) are its own keys.
type ErrorRatePolicy struct {
	Limit float64
	Over  time.Duration
}

// NewErrorRatePolicy reads a rule; bad values are located in the file.
func NewErrorRatePolicy(rule *vigil.ConfigNode) (vigil.Policy, error) {
	limit, err := rule.Float("limit", 0.05)
	if err != nil {
		return nil, err
	}
	if limit < 0 || limit > 1 {
		return nil, rule.Errorf(vigil.ErrRange, "limit", "expected a ratio between 0 and 1")
	}
	over, err := rule.Duration("over", 5*time.Minute)
	if err != nil {
		return nil, err
	}
	if over <= 0 {
		return nil, rule.Errorf(vigil.ErrRange, "over", "expected a duration above 0")
	}
	return &ErrorRatePolicy{Limit: limit, Over: over}, nil
}

// Evaluate is called by the engine for each error_rate sample of the rule.
func (p *ErrorRatePolicy) Evaluate(m vigil.Metric, ctx *vigil.PolicyContext) (vigil.Verdict, error) {
	if m.Value < 0 || m.Value > 1 {
		return vigil.Verdict{}, fmt.Errorf("error_rate %g is not a ratio between 0 and 1", m.Value)
	}
	mean, err := ctx.Aggregate("", vigil.AggMean, p.Over)
	if err != nil {
		return vigil.Verdict{}, err
	}
	v := vigil.Verdict{Value: mean, Active: mean > p.Limit}
	if v.Active {
		v.Action = "scale_up"
		v.Target = "{{tags.service}}" // the engine fills it from the series
		v.Reason = "error_rate_threshold"
	}
	return v, nil
}

// ScaleUp is the Go handler of the scale_up action: here it only reports
// what it would scale (a real one would call the orchestrator's API).
type ScaleUp struct {
	Replicas int64
	Done     chan vigil.ActionRequest
}

// Execute carries a request out; the remediator already applied its guards.
func (s *ScaleUp) Execute(ctx context.Context, req *vigil.ActionRequest) (vigil.ActionResult, error) {
	select {
	case s.Done <- *req:
	default:
	}
	return vigil.ActionResult{Status: vigil.ActionSucceeded,
		Output: fmt.Sprintf("%s scaled up by %d replicas", req.Target, s.Replicas)}, nil
}

const rules = `policies:
  - name: checkout_errors
    kind: error_rate
    metric: error_rate
    match: {service: "*"}
    action: scale_up
    limit: 0.05
    over: 5m
    cooldown: 5m
`

const actions = `actions:
  - name: scale_up
    type: scale
    targets: "[a-z][a-z0-9-]*"
    replicas: 2
`

func run(w io.Writer, dir string) error {
	policies, err := vigil.NewPolicyRegistry()
	if err != nil {
		return err
	}
	defer policies.Close()
	if err := policies.Register("error_rate", []string{"limit", "over"}, NewErrorRatePolicy); err != nil {
		return err
	}
	done := make(chan vigil.ActionRequest, 1)
	types, err := vigil.NewActionRegistry()
	if err != nil {
		return err
	}
	defer types.Close()
	err = types.Register("scale", []string{"replicas"}, func(cfg *vigil.ConfigNode, info vigil.ActionInfo) (vigil.Action, error) {
		n, err := cfg.Int("replicas", 1)
		if err != nil {
			return nil, err
		}
		return &ScaleUp{Replicas: n, Done: done}, nil
	})
	if err != nil {
		return err
	}
	var logMu sync.Mutex
	logger := func(r vigil.LogRecord) { // only warnings and errors
		logMu.Lock()
		defer logMu.Unlock()
		fmt.Fprintf(w, "log: %s %s %s\n", r.Component, r.Message, r.Fields)
	}
	hub, err := vigil.NewHub(vigil.HubOptions{StoreURL: "sqlite://" + dir + "/hub.db",
		Policies: rules, PolicyTypes: policies, Logger: logger, LogLevel: vigil.LogWarn})
	if err != nil {
		return err
	}
	defer hub.Close()
	if _, err := hub.AttachRemediator(vigil.RemediatorOptions{StoreURL: "sqlite://" + dir + "/remediator.db",
		Actions: actions, ActionTypes: types, Logger: logger, LogLevel: vigil.LogWarn}); err != nil {
		return err
	}
	if err := hub.Start(); err != nil {
		return err
	}

	batch, err := vigil.NewBatch()
	if err != nil {
		return err
	}
	defer batch.Close()
	now := time.Now().UnixMilli()
	for i, v := range []float64{0.01, 0.03, 0.05, 0.08, 0.10, 0.12} {
		err := batch.Add(vigil.Metric{Name: "error_rate", Value: v, TimeMs: now - int64(5-i)*60000,
			Tags: map[string]string{"service": "checkout"}})
		if err != nil {
			return err
		}
	}
	res, err := hub.Ingest(batch)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "ingested %d samples\n", res.Accepted)

	select {
	case req := <-done:
		fmt.Fprintf(w, "action: %s target=%s policy=%s reason=%s\n", req.Action, req.Target, req.Policy, req.Reason)
		if req.Action != "scale_up" || req.Target != "checkout" {
			return fmt.Errorf("unexpected request %+v", req)
		}
	case <-time.After(10 * time.Second):
		return fmt.Errorf("no action within 10s")
	}
	// the result reaches the hub's ledger and engine right after the action
	deadline := time.Now().Add(10 * time.Second)
	for {
		ds, err := hub.Decisions(0, 0)
		if err != nil {
			return err
		}
		if len(ds) > 0 {
			for _, d := range ds {
				fmt.Fprintf(w, "decision: %s policy=%s target=%s action=%s\n", d.Decision, d.Policy, d.Target, d.Action)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no decision within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func main() {
	dir, tmp := "", ""
	if len(os.Args) > 1 {
		dir = os.Args[1]
	} else {
		var err error
		if tmp, err = os.MkdirTemp("", "error_rate_policy"); err != nil {
			fmt.Fprintln(os.Stderr, "error_rate_policy:", err)
			os.Exit(1)
		}
		dir = tmp
	}
	err := run(os.Stdout, dir)
	if tmp != "" {
		os.RemoveAll(tmp)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "error_rate_policy:", err)
		os.Exit(1)
	}
}
