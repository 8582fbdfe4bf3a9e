package vigil

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestMetricRoundTrip(t *testing.T) {
	in := []Metric{
		{Name: "cpu_usage", Value: 0.25, TimeMs: 1732650000000,
			Tags: map[string]string{"host": "h1", "cpu": "0"}},
		{Name: "mem_used", Value: 1e12 + 0.5, TimeMs: 1732650001000},
		{Name: "disk_free", TimeMs: 1732650002000, Err: "statvfs: permission denied",
			Tags: map[string]string{"mount": "/data"}},
	}
	b := mustBatch(t, in...)
	defer b.Close()
	if err := b.SetAgent("h1"); err != nil {
		t.Fatal(err)
	}
	if err := b.SetID("batch-1"); err != nil {
		t.Fatal(err)
	}
	if b.Len() != 3 {
		t.Fatalf("Len = %d, want 3", b.Len())
	}
	check := func(what string, got []Metric) {
		t.Helper()
		if len(got) != len(in) {
			t.Fatalf("%s: %d metrics, want %d", what, len(got), len(in))
		}
		for i := range in {
			w, g := in[i], got[i]
			if w.Err != "" {
				if !math.IsNaN(g.Value) || g.Err != w.Err {
					t.Errorf("%s[%d]: value %v err %q, want NaN and %q", what, i, g.Value, g.Err, w.Err)
				}
				g.Value, w.Value = 0, 0
			}
			if g.Name != w.Name || g.Value != w.Value || g.TimeMs != w.TimeMs || g.Err != w.Err ||
				(len(w.Tags) > 0 || len(g.Tags) > 0) && !reflect.DeepEqual(g.Tags, w.Tags) {
				t.Errorf("%s[%d] = %+v, want %+v", what, i, got[i], in[i])
			}
		}
	}
	check("batch", b.Metrics())

	js, err := b.EncodeJSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"agent":"h1","batch_id":"batch-1","metrics":[{"name":"cpu_usage","value":0.25,` +
		`"ts":1732650000000,"tags":{"cpu":"0","host":"h1"}},`
	if !strings.HasPrefix(string(js), want) {
		t.Fatalf("json = %s\nwant prefix %s", js, want)
	}
	b2, _ := NewBatch()
	defer b2.Close()
	if err := b2.DecodeJSON(js); err != nil {
		t.Fatal(err)
	}
	check("decoded", b2.Metrics())
	if b2.Agent() != "h1" || b2.ID() != "batch-1" {
		t.Fatalf("decoded ids %q %q", b2.Agent(), b2.ID())
	}

	key, err := in[0].SeriesKey()
	if err != nil || key != `cpu_usage{cpu="0",host="h1"}` {
		t.Fatalf("SeriesKey = %q, %v", key, err)
	}
}

func TestMetricErrors(t *testing.T) {
	b := mustBatch(t)
	defer b.Close()
	cases := []struct {
		m    Metric
		code Code
		msg  string
	}{
		{Metric{Name: "1bad", Value: 1, TimeMs: 1}, ErrName, "name"},
		{Metric{Name: "ok", Value: math.Inf(1), TimeMs: 1}, ErrValue, "value"},
		{Metric{Name: "ok", Value: 1, TimeMs: 1, Tags: map[string]string{"bad-key": "x"}}, ErrName, "tags"},
		{Metric{Name: "ok", Value: 1, TimeMs: 1, Tags: map[string]string{"k": "\xff"}}, ErrEncoding, "tags.k"},
	}
	for _, c := range cases {
		err := b.Add(c.m)
		if err == nil {
			t.Fatalf("Add(%+v) succeeded", c.m)
		}
		ve := asError(t, err)
		if ve.Code != c.code || !errors.Is(err, c.code) || !strings.Contains(ve.Message, c.msg) {
			t.Errorf("Add(%+v) = code %d %q, want code %d containing %q", c.m, ve.Code, ve.Message,
				c.code, c.msg)
		}
		if errors.Is(err, ErrIO) {
			t.Errorf("errors.Is matched another code")
		}
	}
	if b.Len() != 0 {
		t.Fatalf("batch has %d metrics after refusals", b.Len())
	}
	err := b.DecodeJSON([]byte(`{"metrics":[{"name":"x","value":1,"ts":1,"extra":2}]}`))
	if ve := asError(t, err); ve.Code != ErrInval || !strings.Contains(ve.Message, "metrics[0].extra") {
		t.Fatalf("DecodeJSON unknown field = %v", err)
	}
	b.Close()
	b.Close() // idempotent
	if err := b.Add(Metric{Name: "x", Value: 1, TimeMs: 1}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after Close = %v, want ErrClosed", err)
	}
}

func TestVersion(t *testing.T) {
	if Version() != HeaderVersion {
		t.Fatalf("library %s, headers %s", Version(), HeaderVersion)
	}
	if ErrUnknownKey.Error() == "" || ErrUnknownKey.String() != ErrUnknownKey.Error() {
		t.Fatalf("Code strings %q", ErrUnknownKey.Error())
	}
	e := &Error{Code: ErrPerm}
	if e.Error() != "vigil: "+ErrPerm.Error() || !errors.Is(e, ErrPerm) || !errors.Is(e, &Error{Code: ErrPerm}) ||
		errors.Is(e, ErrIO) {
		t.Fatalf("Error %q", e.Error())
	}
}
