package vigil

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestStoreQueryMatchesIngested(t *testing.T) {
	dir := t.TempDir()
	st, err := OpenStore("sqlite://" + dir + "/metrics.db")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := os.Stat(dir + "/metrics.db"); err != nil {
		t.Fatalf("database file: %v", err)
	}
	t0 := int64(1732650000000)
	var ms []Metric
	for i := 0; i < 5; i++ {
		for _, h := range []string{"h1", "h2"} {
			ms = append(ms, Metric{Name: "cpu", Value: float64(i) + map[string]float64{"h1": 0, "h2": 0.5}[h],
				TimeMs: t0 + int64(i)*1000, Tags: map[string]string{"host": h}})
		}
	}
	b := mustBatch(t, ms...)
	defer b.Close()
	b.SetAgent("a1")
	b.SetID("b1")
	wr, err := st.Write(b)
	if err != nil || wr.Written != 10 || wr.NewSeries != 2 || wr.Duplicate {
		t.Fatalf("Write = %+v, %v", wr, err)
	}
	wr, err = st.Write(b)
	if err != nil || !wr.Duplicate || wr.Written != 0 {
		t.Fatalf("second Write = %+v, %v; want a duplicate", wr, err)
	}

	got, err := st.Query(Query{Name: "cpu", Matchers: []Matcher{{Key: "host", Op: MatchEq, Value: "h2"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Key != `cpu{host="h2"}` || got[0].Tags["host"] != "h2" || len(got[0].Points) != 5 {
		t.Fatalf("query = %+v", got)
	}
	for i, p := range got[0].Points {
		if p.TimeMs != t0+int64(i)*1000 || p.Value != float64(i)+0.5 {
			t.Fatalf("point %d = %+v", i, p)
		}
	}
	all, err := st.Query(Query{Name: "cpu", Matchers: []Matcher{{Key: "host", Op: MatchGlob, Value: "h*"}},
		StepMs: 60000, Agg: StoreSum})
	if err != nil || len(all) != 2 || len(all[0].Points) != 1 || all[0].Points[0].Value != 0+1+2+3+4 {
		t.Fatalf("downsampled query = %+v, %v", all, err)
	}
	none, err := st.Query(Query{Name: "nothing"})
	if err != nil || len(none) != 0 {
		t.Fatalf("empty query = %+v, %v", none, err)
	}
	_, err = st.Query(Query{Name: "cpu", FromMs: 10, ToMs: 5})
	if !errors.Is(err, ErrInval) {
		t.Fatalf("bad range = %v, want ErrInval", err)
	}

	// reopen: the data is on disk
	st.Close()
	st.Close()
	if _, err := st.Query(Query{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Query after Close = %v", err)
	}
	st2, err := OpenStore("sqlite://" + dir + "/metrics.db")
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	again, err := st2.Query(Query{Name: "cpu"})
	if err != nil || len(again) != 2 || len(again[0].Points)+len(again[1].Points) != 10 {
		t.Fatalf("after reopen = %+v, %v", again, err)
	}
}

func TestStoreOpenErrors(t *testing.T) {
	_, err := OpenStore("mysql://x")
	ve := asError(t, err)
	if ve.Code != ErrUnsupported || !strings.Contains(ve.Message, "mysql") {
		t.Fatalf("OpenStore(mysql) = %d %q", ve.Code, ve.Message)
	}
	f := t.TempDir() + "/junk.db"
	os.WriteFile(f, []byte(strings.Repeat("not a database ", 512)), 0o600)
	if _, err := OpenStore("sqlite://" + f); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("OpenStore(junk) = %v, want ErrCorrupt", err)
	}
}
