package vigil

/*
#include "glue.h"
*/
import "C"

import (
	"runtime"
	"sort"
	"sync"
	"unsafe"
)

// Metric is one sample (vigil_metric): a name, a finite value, a timestamp
// in milliseconds since the Unix epoch and tags. A metric with Err set
// records a failed collection; its Value is ignored (NaN when read back).
type Metric struct {
	Name   string
	Value  float64
	TimeMs int64
	Tags   map[string]string
	Err    string
}

// cMetric is a vigil_metric in C memory: one allocation holds the tag
// array and every string, freed by free().
type cMetric struct {
	m   C.vigil_metric
	mem unsafe.Pointer
}

func (cm *cMetric) free() {
	C.free(cm.mem)
	cm.mem = nil
}

// toC copies m into C memory (keys sorted, so the result is deterministic).
func (m *Metric) toC() *cMetric {
	keys := make([]string, 0, len(m.Tags))
	size := len(m.Name) + 1 + len(m.Err) + 1
	for k, v := range m.Tags {
		keys = append(keys, k)
		size += len(k) + len(v) + 2
	}
	sort.Strings(keys)
	tagBytes := len(keys) * int(unsafe.Sizeof(C.vigil_tag{}))
	mem := C.malloc(C.size_t(tagBytes + size))
	if mem == nil {
		panic("vigil: out of memory")
	}
	buf := unsafe.Slice((*byte)(mem), tagBytes+size)
	off := tagBytes
	put := func(s string) *C.char {
		p := (*C.char)(unsafe.Pointer(&buf[off]))
		copy(buf[off:], s)
		buf[off+len(s)] = 0
		off += len(s) + 1
		return p
	}
	cm := &cMetric{mem: mem}
	cm.m.name = put(m.Name)
	cm.m.value = C.double(m.Value)
	cm.m.ts_ms = C.int64_t(m.TimeMs)
	if len(keys) > 0 {
		tags := unsafe.Slice((*C.vigil_tag)(mem), len(keys))
		for i, k := range keys {
			tags[i].key = put(k)
			tags[i].value = put(m.Tags[k])
		}
		cm.m.tags = (*C.vigil_tag)(mem)
		cm.m.ntags = C.size_t(len(keys))
	}
	if m.Err != "" {
		cm.m.error = put(m.Err)
	}
	return cm
}

// metricFromC copies a C metric into Go memory.
func metricFromC(cm *C.vigil_metric) Metric {
	m := Metric{
		Name:   C.GoString(cm.name),
		Value:  float64(cm.value),
		TimeMs: int64(cm.ts_ms),
	}
	if cm.ntags > 0 {
		m.Tags = tagsFromC(cm.tags, cm.ntags)
	}
	if cm.error != nil {
		m.Err = C.GoString(cm.error)
	}
	return m
}

func tagsFromC(p *C.vigil_tag, n C.size_t) map[string]string {
	tags := make(map[string]string, int(n))
	for _, t := range unsafe.Slice(p, int(n)) {
		tags[C.GoString(t.key)] = C.GoString(t.value)
	}
	return tags
}

// Validate checks m against the metric model (vigil_metric_validate()).
func (m *Metric) Validate() error {
	cm := m.toC()
	defer cm.free()
	return call(func() C.int { return C.vigil_metric_validate(&cm.m) })
}

// SeriesKey returns the canonical series key of m, e.g.
// cpu_usage{cpu="0",host="h1"}.
func (m *Metric) SeriesKey() (string, error) {
	cm := m.toC()
	defer cm.free()
	var buf C.vigil_buf
	defer C.vigil_buf_dispose(&buf)
	if err := call(func() C.int { return C.vigil_metric_series_key(&buf, &cm.m) }); err != nil {
		return "", err
	}
	return C.GoStringN(buf.ptr, C.int(buf.size)), nil
}

// Batch is a batch of metrics owned by the C library (vigil_batch). It is
// not synchronised: use it from one goroutine at a time (the methods lock
// only to make Close safe).
type Batch struct {
	mu sync.Mutex
	b  *C.vigil_batch
}

// NewBatch creates an empty batch. Close releases it.
func NewBatch() (*Batch, error) {
	var b *C.vigil_batch
	if err := call(func() C.int { return C.vigil_batch_new(&b) }); err != nil {
		return nil, err
	}
	batch := &Batch{b: b}
	runtime.SetFinalizer(batch, (*Batch).Close)
	return batch, nil
}

// NewBatchOf creates a batch holding metrics (each validated).
func NewBatchOf(metrics ...Metric) (*Batch, error) {
	b, err := NewBatch()
	if err != nil {
		return nil, err
	}
	for i := range metrics {
		if err := b.Add(metrics[i]); err != nil {
			b.Close()
			return nil, err
		}
	}
	return b, nil
}

// Close frees the batch. Idempotent.
func (b *Batch) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.b != nil {
		C.vigil_batch_free(b.b)
		b.b = nil
		runtime.SetFinalizer(b, nil)
	}
	return nil
}

func (b *Batch) ptr() (*C.vigil_batch, error) {
	if b == nil || b.b == nil {
		return nil, errorf(ErrClosed, "batch is closed")
	}
	return b.b, nil
}

// Add validates m and appends a copy.
func (b *Batch) Add(m Metric) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, err := b.ptr()
	if err != nil {
		return err
	}
	cm := m.toC()
	defer cm.free()
	return call(func() C.int { return C.vigil_batch_add(p, &cm.m) })
}

// Len is the number of metrics in the batch (0 once closed).
func (b *Batch) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.b == nil {
		return 0
	}
	return int(C.vigil_batch_count(b.b))
}

// Metrics returns a copy of every metric, in order (tags as stored).
func (b *Batch) Metrics() []Metric {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.b == nil {
		return nil
	}
	n := int(C.vigil_batch_count(b.b))
	out := make([]Metric, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, metricFromC(C.vigil_batch_get(b.b, C.size_t(i))))
	}
	return out
}

// Clear removes every metric and the ids.
func (b *Batch) Clear() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.b != nil {
		C.vigil_batch_clear(b.b)
	}
}

// SetAgent sets the agent id ("" clears it).
func (b *Batch) SetAgent(agent string) error { return b.setID(agent, true) }

// SetID sets the batch id, which makes the batch idempotent in a store
// ("" clears it).
func (b *Batch) SetID(id string) error { return b.setID(id, false) }

func (b *Batch) setID(v string, agent bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, err := b.ptr()
	if err != nil {
		return err
	}
	var cs *C.char
	if v != "" {
		cs = C.CString(v)
		defer C.free(unsafe.Pointer(cs))
	}
	return call(func() C.int {
		if agent {
			return C.vigil_batch_set_agent(p, cs)
		}
		return C.vigil_batch_set_id(p, cs)
	})
}

// Agent returns the agent id ("" when unset).
func (b *Batch) Agent() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.b == nil {
		return ""
	}
	return C.GoString(C.vigil_batch_agent(b.b))
}

// ID returns the batch id ("" when unset).
func (b *Batch) ID() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.b == nil {
		return ""
	}
	return C.GoString(C.vigil_batch_id(b.b))
}

// EncodeJSON encodes the batch as an ingest body (POST /v1/ingest).
func (b *Batch) EncodeJSON() ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, err := b.ptr()
	if err != nil {
		return nil, err
	}
	var buf C.vigil_buf
	defer C.vigil_buf_dispose(&buf)
	if err := call(func() C.int { return C.vigil_batch_encode_json(&buf, p) }); err != nil {
		return nil, err
	}
	return C.GoBytes(unsafe.Pointer(buf.ptr), C.int(buf.size)), nil
}

// DecodeJSON replaces the batch's content by the ingest body data (strict:
// unknown fields, bad names and non-finite values are refused, and the
// message names the JSON path).
func (b *Batch) DecodeJSON(data []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, err := b.ptr()
	if err != nil {
		return err
	}
	cs := C.CBytes(data)
	defer C.free(cs)
	return call(func() C.int {
		return C.vigil_batch_decode_json(p, (*C.char)(cs), C.size_t(len(data)), nil)
	})
}
