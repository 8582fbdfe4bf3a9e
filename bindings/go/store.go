package vigil

/*
#include "glue.h"
*/
import "C"

import (
	"math"
	"runtime/cgo"
	"sync"
	"unsafe"
)

// LogLevel is a log level (vigil_log_level).
type LogLevel int

// Log levels.
const (
	LogDebug LogLevel = C.VIGIL_LOG_DEBUG
	LogInfo  LogLevel = C.VIGIL_LOG_INFO
	LogWarn  LogLevel = C.VIGIL_LOG_WARN
	LogError LogLevel = C.VIGIL_LOG_ERROR
	LogOff   LogLevel = C.VIGIL_LOG_OFF
)

// LogRecord is one log record of the library. Fields holds extra key=value
// pairs in logfmt.
type LogRecord struct {
	Level     LogLevel
	TimeMs    int64
	Component string
	Message   string
	Fields    string
}

// Logger receives the library's log records. It is called from the
// library's threads, possibly at once: it must be safe for concurrent use,
// and must not call back into the object that logs. nil: logfmt to stderr.
type Logger func(LogRecord)

// logHook holds the handle of a Logger for the life of one object.
type logHook struct{ h cgo.Handle }

func newLogHook(l Logger, min LogLevel) (*logHook, C.vigil_logger) {
	if l == nil {
		return &logHook{}, C.gv_logger(0, 0, C.vigil_log_level(min))
	}
	h := newHandle(func(r LogRecord) { l(r) })
	return &logHook{h: h}, C.gv_logger(C.uintptr_t(h), 1, C.vigil_log_level(min))
}

func (l *logHook) free() {
	if l != nil {
		deleteHandle(l.h)
		l.h = 0
	}
}

// guard makes Close wait for calls in progress on an object whose C side
// is thread-safe: every call holds the read lock, Close the write lock.
type guard struct {
	mu     sync.RWMutex
	closed bool
}

func (g *guard) enter() error {
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return errorf(ErrClosed, "object is closed")
	}
	return nil
}

func (g *guard) leave() { g.mu.RUnlock() }

// Store is an open store (vigil_store): metrics, decisions, the actions
// ledger. Safe for concurrent use (the C store serialises its calls).
type Store struct {
	guard
	s *C.vigil_store
}

// OpenStore opens the store at url, e.g. "sqlite:///var/lib/vigil/hub.db"
// or "sqlite://:memory:" (the SQLite file and its directories are created).
func OpenStore(url string) (*Store, error) {
	cu := C.CString(url)
	defer C.free(unsafe.Pointer(cu))
	var s *C.vigil_store
	if err := call(func() C.int { return C.vigil_store_open(&s, cu, nil) }); err != nil {
		return nil, err
	}
	st := &Store{s: s}
	setFinalizer(st, func(s *Store) { s.Close() })
	return st, nil
}

// Close closes the store. Idempotent; waits for calls in progress.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		C.vigil_store_close(s.s)
		s.s = nil
	}
	return nil
}

// WriteResult is what Store.Write did.
type WriteResult struct {
	Written   int  // samples inserted or replaced
	Duplicate bool // the batch id was stored before; nothing written
	NewSeries int  // series created
}

// Write stores every metric of b in one transaction (all or nothing).
func (s *Store) Write(b *Batch) (WriteResult, error) {
	if err := s.enter(); err != nil {
		return WriteResult{}, err
	}
	defer s.leave()
	b.mu.Lock()
	defer b.mu.Unlock()
	bp, err := b.ptr()
	if err != nil {
		return WriteResult{}, err
	}
	var r C.vigil_store_write_result
	r.version = C.VIGIL_STORE_WRITE_RESULT_VERSION
	if err := call(func() C.int { return C.vigil_store_write(s.s, bp, &r) }); err != nil {
		return WriteResult{}, err
	}
	return WriteResult{Written: int(r.written), Duplicate: r.duplicate != 0,
		NewSeries: int(r.new_series)}, nil
}

// MatchOp is how a Matcher compares (vigil_store_match_op).
type MatchOp int

// Match operators; the glob ones take * ? [...].
const (
	MatchEq      MatchOp = C.VIGIL_STORE_MATCH_EQ
	MatchNe      MatchOp = C.VIGIL_STORE_MATCH_NE
	MatchGlob    MatchOp = C.VIGIL_STORE_MATCH_GLOB
	MatchNotGlob MatchOp = C.VIGIL_STORE_MATCH_NOT_GLOB
)

// Matcher selects series by one tag.
type Matcher struct {
	Key   string
	Op    MatchOp
	Value string
}

// StoreAgg is the aggregate of a downsampled query (vigil_store_agg).
type StoreAgg int

// Store aggregates.
const (
	StoreMean  StoreAgg = C.VIGIL_STORE_AGG_MEAN
	StoreMin   StoreAgg = C.VIGIL_STORE_AGG_MIN
	StoreMax   StoreAgg = C.VIGIL_STORE_AGG_MAX
	StoreSum   StoreAgg = C.VIGIL_STORE_AGG_SUM
	StoreCount StoreAgg = C.VIGIL_STORE_AGG_COUNT
	StoreLast  StoreAgg = C.VIGIL_STORE_AGG_LAST
)

// Query selects series (Name exactly, "" for every name; all Matchers must
// hold) and their points in [FromMs, ToMs) (both 0: everything; ToMs 0: no
// upper bound), raw (StepMs 0) or one point per step aggregated by Agg,
// at most Limit points per series (0: all).
type Query struct {
	Name     string
	Matchers []Matcher
	FromMs   int64
	ToMs     int64
	StepMs   int64
	Agg      StoreAgg
	Limit    int
}

// Point is one sample of a query result; Err is set (and Value NaN) for a
// failed collection.
type Point struct {
	TimeMs int64
	Value  float64
	Err    string
}

// Series is one series of a query result and its points, oldest first.
type Series struct {
	Key    string
	Name   string
	Tags   map[string]string
	Points []Point
}

type queryCollector struct {
	out []Series
}

func (q *queryCollector) add(s *C.vigil_store_series, p *C.vigil_store_point) {
	n := len(q.out)
	if n == 0 || q.out[n-1].Key != C.GoString(s.key) {
		ser := Series{Key: C.GoString(s.key), Name: C.GoString(s.name)}
		ser.Tags = map[string]string{}
		if s.ntags > 0 {
			ser.Tags = tagsFromC(s.tags, s.ntags)
		}
		q.out = append(q.out, ser)
		n++
	}
	pt := Point{TimeMs: int64(p.ts_ms), Value: float64(p.value)}
	if p.error != nil {
		pt.Err = C.GoString(p.error)
		pt.Value = math.NaN()
	}
	q.out[n-1].Points = append(q.out[n-1].Points, pt)
}

// Query runs q and returns the matching series (ordered by name, then tags)
// with their points.
func (s *Store) Query(q Query) ([]Series, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	return queryStore(s.s, q)
}

func queryStore(st *C.vigil_store, q Query) ([]Series, error) {
	var cq C.vigil_store_query
	cq.version = C.VIGIL_STORE_QUERY_VERSION
	var frees []unsafe.Pointer
	defer func() {
		for _, p := range frees {
			C.free(p)
		}
	}()
	cstr := func(v string) *C.char {
		p := C.CString(v)
		frees = append(frees, unsafe.Pointer(p))
		return p
	}
	if q.Name != "" {
		cq.name = cstr(q.Name)
	}
	if len(q.Matchers) > 0 {
		m := (*C.vigil_store_matcher)(C.calloc(C.size_t(len(q.Matchers)),
			C.size_t(unsafe.Sizeof(C.vigil_store_matcher{}))))
		frees = append(frees, unsafe.Pointer(m))
		arr := unsafe.Slice(m, len(q.Matchers))
		for i, mt := range q.Matchers {
			arr[i].key = cstr(mt.Key)
			arr[i].op = C.vigil_store_match_op(mt.Op)
			arr[i].value = cstr(mt.Value)
		}
		cq.matchers = m
		cq.nmatchers = C.size_t(len(q.Matchers))
	}
	cq.from_ms = C.int64_t(q.FromMs)
	cq.to_ms = C.int64_t(q.ToMs)
	cq.step_ms = C.int64_t(q.StepMs)
	cq.aggregate = C.vigil_store_agg(q.Agg)
	if q.Limit > 0 {
		cq.limit = C.size_t(q.Limit)
	}
	qc := &queryCollector{}
	h := newHandle(qc)
	defer deleteHandle(h)
	err := call(func() C.int {
		return C.vigil_store_query_run(st, &cq, (C.vigil_store_point_cb)(C.gv_store_point_cb),
			C.gv_ptr(C.uintptr_t(h)))
	})
	if err != nil {
		return nil, err
	}
	return qc.out, nil
}

// LedgerEntry is an action request in a store's actions ledger and, once
// known, its result (GET /v1/actions). Status is "pending", "running",
// "succeeded", "failed", "refused", ...; ResultReason the result's reason.
type LedgerEntry struct {
	ID           string
	RequestedMs  int64
	Action       string
	Target       string
	ParamsJSON   string
	Reason       string
	Policy       string
	Series       string
	DryRun       bool
	Status       string
	ResultReason string
	Output       string
	DurationMs   int64 // -1: unknown
	UpdatedMs    int64
	AuditSeq     int64
	AuditMAC     string
}

// Action reads the ledger entry of request id (ErrNotFound when unknown).
func (s *Store) Action(id string) (LedgerEntry, error) {
	if err := s.enter(); err != nil {
		return LedgerEntry{}, err
	}
	defer s.leave()
	return ledgerEntry(s.s, id)
}

func ledgerEntry(st *C.vigil_store, id string) (LedgerEntry, error) {
	cid := C.CString(id)
	defer C.free(unsafe.Pointer(cid))
	var a *C.vigil_store_action
	if err := call(func() C.int { return C.vigil_store_action_get(st, cid, &a) }); err != nil {
		return LedgerEntry{}, err
	}
	defer C.vigil_store_action_free(a)
	return LedgerEntry{ID: goStr(a.id), RequestedMs: int64(a.requested_ms), Action: goStr(a.action),
		Target: goStr(a.target), ParamsJSON: goStr(a.params_json), Reason: goStr(a.reason),
		Policy: goStr(a.policy), Series: goStr(a.series), DryRun: a.dry_run != 0,
		Status: goStr(a.status), ResultReason: goStr(a.result_reason), Output: goStr(a.output),
		DurationMs: int64(a.duration_ms), UpdatedMs: int64(a.updated_ms),
		AuditSeq: int64(a.audit_seq), AuditMAC: goStr(a.audit_hash)}, nil
}
