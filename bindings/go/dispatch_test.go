package vigil

import (
	"errors"
	"sync"
	"testing"
	"time"
)

func TestHubGoDispatcher(t *testing.T) {
	hub, err := NewHub(HubOptions{StoreURL: storeURL(t, "hub.db"), Logger: (&logSink{}).log,
		Policies: "- {name: hot, kind: threshold, metric: temp, threshold: 80, op: \">\", action: cool_down, " +
			"match: {room: \"*\"}, " +
			"target: \"{{tags.room}}\", params: {level: \"2\"}}\n"})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []ActionRequest
	release := make(chan struct{})
	err = hub.SetDispatcher(func(req ActionRequest) ActionResult {
		mu.Lock()
		got = append(got, req)
		mu.Unlock()
		if req.Target == "boom" {
			panic("dispatcher exploded")
		}
		<-release // blocking is fine: each request has its goroutine
		return ActionResult{Status: ActionSucceeded, Output: "cooled " + req.Target}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := hub.SetDispatcher(func(ActionRequest) ActionResult { return ActionResult{} }); !errors.Is(err, ErrExists) {
		t.Fatalf("second dispatcher = %v", err)
	}
	if _, err := hub.AttachRemediator(RemediatorOptions{}); !errors.Is(err, ErrExists) {
		t.Fatalf("remediator beside a dispatcher = %v", err)
	}
	if err := hub.Start(); err != nil {
		t.Fatal(err)
	}
	b := mustBatch(t, Metric{Name: "temp", Value: 91, TimeMs: nowMs(), Tags: map[string]string{"room": "lab"}})
	defer b.Close()
	if _, err := hub.Ingest(b); err != nil {
		t.Fatal(err)
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(got) }
	waitFor(t, "the policy's request", 10*time.Second, func() bool { return count() == 1 })
	mu.Lock()
	r := got[0]
	mu.Unlock()
	if r.Action != "cool_down" || r.Target != "lab" || r.Policy != "hot" || r.Params["level"] != "2" || r.ID == "" {
		t.Fatalf("dispatched request = %+v", r)
	}
	boom, err := hub.RequestAction(ActionRequest{Action: "cool_down", Target: "boom"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the manual request", 10*time.Second, func() bool { return count() == 2 })
	close(release)
	final := func(id string) func() bool {
		return func() bool {
			e, err := hub.Action(id)
			return err == nil && e.Status != "pending"
		}
	}
	waitFor(t, "the dispatcher's result", 10*time.Second, final(r.ID))
	e, err := hub.Action(r.ID)
	if err != nil || e.Status != "succeeded" || e.Output != "cooled lab" || e.Action != "cool_down" ||
		e.Target != "lab" || e.Policy != "hot" || e.ParamsJSON != `{"level":"2"}` {
		t.Fatalf("ledger entry = %+v, %v", e, err)
	}
	waitFor(t, "the panicking dispatcher's result", 10*time.Second, final(boom))
	e, err = hub.Action(boom)
	if err != nil || e.Status != "failed" || e.ResultReason != "internal_error" ||
		e.Output != "panic: dispatcher exploded" {
		t.Fatalf("ledger entry of the panic = %+v, %v", e, err)
	}
	if err := hub.ActionResult(ActionResult{ID: r.ID, Status: ActionSucceeded}); !errors.Is(err, ErrConflict) {
		t.Fatalf("a second result for %s = %v, want ErrConflict", r.ID, err)
	}
	if _, err := hub.Action("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown id = %v", err)
	}
	waitFor(t, "the fired decision", 10*time.Second, hubDecision(hub, "fired"))
	hub.Close() // waits for the requests in flight
	if LiveHandles() < 0 {
		t.Fatal("negative handle count")
	}
}
