package vigil

/*
#include "glue.h"
*/
import "C"

import (
	"time"
	"unsafe"
)

// Collector is a collector type written in Go: one instance per
// `collectors:` entry whose type names it, made by its CollectorFactory.
// Collect returns the samples of one collection at nowMs (a sample with
// TimeMs 0 gets nowMs); the agent adds the entry's tags and the host tag.
// An error (or a panic) becomes a vigil_collector_error sample carrying its
// message, and the agent backs off. One instance is called from one thread
// at a time.
type Collector interface {
	Collect(nowMs int64) ([]Metric, error)
}

// CollectorFunc adapts a function to the Collector interface.
type CollectorFunc func(nowMs int64) ([]Metric, error)

// Collect calls f.
func (f CollectorFunc) Collect(nowMs int64) ([]Metric, error) { return f(nowMs) }

// CollectorInfo is what a factory learns of the configured entry.
type CollectorInfo struct {
	Name     string        // `name:` of the entry, "" when absent
	Interval time.Duration // the entry's interval
}

// CollectorFactory creates the Collector of one entry from its map (read the
// type's own keys, listed at registration).
type CollectorFactory func(config *ConfigNode, info CollectorInfo) (Collector, error)

type collectorType struct {
	name    string
	factory CollectorFactory
}

// CollectorRegistry holds collector types written in Go, for an Agent
// (AgentOptions.CollectorTypes). It must stay open while the agent is.
type CollectorRegistry struct {
	registry
	r *C.vigil_collector_registry
}

// NewCollectorRegistry creates an empty registry. Close releases it.
func NewCollectorRegistry() (*CollectorRegistry, error) {
	var r *C.vigil_collector_registry
	if err := call(func() C.int { return C.vigil_collector_registry_new(&r) }); err != nil {
		return nil, err
	}
	cr := &CollectorRegistry{r: r}
	setFinalizer(cr, func(c *CollectorRegistry) { c.Close() })
	return cr, nil
}

// Register adds the collector type name ([a-z][a-z0-9_]*, not built in);
// keys lists its own keys in an entry's map.
func (r *CollectorRegistry) Register(name string, keys []string, factory CollectorFactory) error {
	if factory == nil {
		return errorf(ErrInval, "collector type %s: nil factory", name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.r == nil {
		return errorf(ErrClosed, "collector registry is closed")
	}
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	cks := newCStrings(keys)
	defer cks.free()
	h := newHandle(&collectorType{name: name, factory: factory})
	return call(func() C.int {
		return C.gv_collector_register(r.r, cn, cks.ptr(), C.size_t(len(keys)), C.uintptr_t(h), 0)
	})
}

// Close frees the registry and its types; ErrBusy while an Agent using it
// is open. Idempotent.
func (r *CollectorRegistry) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.users > 0 {
		return errorf(ErrBusy, "collector registry is used by %d open object(s)", r.users)
	}
	if r.r != nil {
		C.vigil_collector_registry_free(r.r)
		r.r = nil
	}
	return nil
}

// AgentOptions configure an Agent.
type AgentOptions struct {
	// Config is the YAML text of an agent.yaml (configs/agent.yaml): at
	// least its `collectors:` list. "": no configuration.
	Config         string
	ConfigName     string // names Config in error messages; "": "agent.yaml"
	ID             string // agent id and host tag; "": the host name
	CollectorTypes *CollectorRegistry
	// HubURLs: where to ship; none: an offline agent (CollectOnce only, no
	// spool).
	HubURLs   []string
	SpoolPath string // with HubURLs; "": ./var/agent-spool
	Logger    Logger
	LogLevel  LogLevel
}

// Agent runs collectors (vigil_agent). Its methods are serialised.
type Agent struct {
	guard
	a     *C.vigil_agent
	log   *logHook
	types *CollectorRegistry
}

// NewAgent creates an agent and its collectors.
func NewAgent(opts AgentOptions) (*Agent, error) {
	var co C.vigil_agent_options
	C.vigil_agent_options_init(&co, C.VIGIL_AGENT_OPTIONS_VERSION)
	ag := &Agent{types: opts.CollectorTypes}
	ag.log, co.logger = newLogHook(opts.Logger, opts.LogLevel)
	var frees []unsafe.Pointer
	defer func() {
		for _, p := range frees {
			C.free(p)
		}
	}()
	if opts.ID != "" {
		p := C.CString(opts.ID)
		frees = append(frees, unsafe.Pointer(p))
		co.agent_id = p
	}
	if opts.CollectorTypes != nil {
		co.collector_types = opts.CollectorTypes.r
	}
	var urls *cstrings
	if len(opts.HubURLs) > 0 {
		urls = newCStrings(opts.HubURLs)
		defer urls.free()
		co.hub_urls = urls.ptr()
		co.nhub_urls = C.size_t(len(opts.HubURLs))
		if opts.SpoolPath != "" {
			p := C.CString(opts.SpoolPath)
			frees = append(frees, unsafe.Pointer(p))
			co.spool_path = p
		}
	} else {
		co.offline = 1
	}
	var doc *yamlDoc
	if opts.Config != "" {
		name := opts.ConfigName
		if name == "" {
			name = "agent.yaml"
		}
		var err error
		if doc, err = loadYAML(opts.Config, name); err != nil {
			ag.log.free()
			return nil, err
		}
		defer doc.free()
	}
	var cfg *C.vigil_config
	if doc != nil {
		cfg = doc.cfg
	}
	var a *C.vigil_agent
	if err := call(func() C.int { return C.vigil_agent_new(&a, cfg, &co) }); err != nil {
		ag.log.free()
		return nil, err
	}
	ag.a = a
	if opts.CollectorTypes != nil {
		opts.CollectorTypes.use()
	}
	setFinalizer(ag, func(a *Agent) { a.Close() })
	return ag, nil
}

// Close frees the agent. Idempotent.
func (a *Agent) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.closed {
		a.closed = true
		C.vigil_agent_free(a.a)
		a.a = nil
		a.log.free()
		if a.types != nil {
			a.types.release()
		}
	}
	return nil
}

// CollectOnce runs every collector once and returns the samples (host and
// global tags added, agent id set), without shipping. Rate-based
// collectors are read twice, gap apart (0: 1 s).
func (a *Agent) CollectOnce(gap time.Duration) (*Batch, error) {
	a.mu.Lock() // the agent is not thread-safe: serialise
	defer a.mu.Unlock()
	if a.closed {
		return nil, errorf(ErrClosed, "agent is closed")
	}
	b, err := NewBatch()
	if err != nil {
		return nil, err
	}
	if err := call(func() C.int {
		return C.vigil_agent_collect_once(a.a, b.b, C.int64_t(gap/time.Millisecond))
	}); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// Step does the work due at nowMs (collect, ship, heartbeat) and returns
// when it wants to be called again.
func (a *Agent) Step(nowMs int64) (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return 0, errorf(ErrClosed, "agent is closed")
	}
	var next C.int64_t
	err := call(func() C.int { return C.vigil_agent_step(a.a, C.int64_t(nowMs), &next) })
	return int64(next), err
}

// ID is the agent id.
func (a *Agent) ID() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return ""
	}
	return C.GoString(C.vigil_agent_id(a.a))
}
