package vigil

/*
#include "glue.h"
#include <vigil/manifest.h>
*/
import "C"

import (
	"unsafe"
)

// ManifestOptions say which manifests to load (include/vigil/manifest.h,
// docs/manifests.md). Root is required: every path is relative to it and
// must stay inside it.
type ManifestOptions struct {
	Root    string
	Sources []string // directories under Root loaded recursively; none (and no Files): Root
	Files   []string // single files under Root, loaded after Sources
	// PolicyTypes are the code policy kinds a Policy resource may name.
	PolicyTypes *PolicyRegistry
	ProcRoot    string // where /proc is (tests use a fake tree); "": /proc
	SysRoot     string // where /sys is; "": /sys
	Logger      Logger
	LogLevel    LogLevel
}

// Resource is one loaded resource: its kind and name, where it was defined,
// its labels and its normalised spec as JSON.
type Resource struct {
	Kind     string
	Name     string
	SelfHeal bool
	File     string // relative to the root
	Line     int
	Column   int
	Labels   map[string]string
	SpecJSON string
}

// Manifest is a loaded, validated, immutable set of resources
// (vigil_manifest). Safe for concurrent use.
type Manifest struct {
	guard
	m   *C.vigil_manifest
	log *logHook
}

// LoadManifest loads and validates every manifest of opts, all or nothing;
// errors are located ("hosts/web/app.yaml:7:11: spec.mode: ...").
func LoadManifest(opts ManifestOptions) (*Manifest, error) {
	var co C.vigil_manifest_options
	C.vigil_manifest_options_init(&co, C.VIGIL_MANIFEST_OPTIONS_VERSION)
	var frees []unsafe.Pointer
	defer func() {
		for _, p := range frees {
			C.free(p)
		}
	}()
	str := func(s string) *C.char {
		if s == "" {
			return nil
		}
		p := C.CString(s)
		frees = append(frees, unsafe.Pointer(p))
		return p
	}
	co.root = str(opts.Root)
	if len(opts.Sources) > 0 {
		cs := newCStrings(opts.Sources)
		defer cs.free()
		co.sources = cs.ptr()
	}
	if len(opts.Files) > 0 {
		cs := newCStrings(opts.Files)
		defer cs.free()
		co.files = cs.ptr()
	}
	co.policy_types = opts.PolicyTypes.ptr()
	co.proc_root = str(opts.ProcRoot)
	co.sys_root = str(opts.SysRoot)
	mf := &Manifest{}
	mf.log, co.logger = newLogHook(opts.Logger, opts.LogLevel)
	var m *C.vigil_manifest
	if err := call(func() C.int { return C.vigil_manifest_load(&m, &co) }); err != nil {
		mf.log.free()
		return nil, err
	}
	mf.m = m
	setFinalizer(mf, func(m *Manifest) { m.Close() })
	return mf, nil
}

// Close frees the manifest. Idempotent; waits for calls in progress.
func (m *Manifest) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.closed {
		m.closed = true
		C.vigil_manifest_free(m.m)
		m.m = nil
		m.log.free()
	}
	return nil
}

// Resources returns every resource in load order.
func (m *Manifest) Resources() []Resource {
	if m.enter() != nil {
		return nil
	}
	defer m.leave()
	n := int(C.vigil_manifest_count(m.m))
	out := make([]Resource, 0, n)
	for i := 0; i < n; i++ {
		r := C.vigil_manifest_at(m.m, C.size_t(i))
		res := Resource{Kind: goStr(C.vigil_resource_kind(r)), Name: goStr(C.vigil_resource_name(r)),
			SelfHeal: C.vigil_resource_self_heal(r) != 0, File: goStr(C.vigil_resource_file(r)),
			Line: int(C.vigil_resource_line(r)), Column: int(C.vigil_resource_column(r)),
			SpecJSON: goStr(C.vigil_resource_spec_json(r)), Labels: map[string]string{}}
		for j := 0; j < int(C.vigil_resource_label_count(r)); j++ {
			res.Labels[goStr(C.vigil_resource_label_key_at(r, C.size_t(j)))] =
				goStr(C.vigil_resource_label_value_at(r, C.size_t(j)))
		}
		out = append(out, res)
	}
	return out
}

// DesiredBody is the body of PUT /v1/desired for host at revision.
func (m *Manifest) DesiredBody(host, revision string) ([]byte, error) {
	return m.body(host, revision, true)
}

// PoliciesBody is the body of PUT /v1/policies for host at revision.
func (m *Manifest) PoliciesBody(host, revision string) ([]byte, error) {
	return m.body(host, revision, false)
}

func (m *Manifest) body(host, revision string, desired bool) ([]byte, error) {
	if err := m.enter(); err != nil {
		return nil, err
	}
	defer m.leave()
	ch, cr := C.CString(host), C.CString(revision)
	defer C.free(unsafe.Pointer(ch))
	defer C.free(unsafe.Pointer(cr))
	var buf C.vigil_buf
	defer C.vigil_buf_dispose(&buf)
	err := call(func() C.int {
		if desired {
			return C.vigil_manifest_desired_body(m.m, ch, cr, &buf)
		}
		return C.vigil_manifest_policies_body(m.m, ch, cr, &buf)
	})
	if err != nil {
		return nil, err
	}
	return C.GoBytes(unsafe.Pointer(buf.ptr), C.int(buf.size)), nil
}

// DriftDiff is one differing field of a resource: the desired and observed
// values as JSON scalar text ("\"0644\"", "3", "null").
type DriftDiff struct {
	Field    string
	Desired  string
	Observed string
}

// DriftItem is the state of one observed resource.
type DriftItem struct {
	Target   string // "<host>/<Kind>/<name>"
	Kind     string
	Name     string
	Status   string // "in_sync", "drifted", "missing", "error"
	SelfHeal bool
	Diff     []DriftDiff
	Error    string // with status "error": why
	HealJSON string // {"action","target","params"} when it should be healed, else ""
	ItemJSON string // the item as in the POST /v1/drift body
}

// Drift is the result of observing the host and diffing it against the
// manifest.
type Drift struct {
	ObservedMs int64
	Drifted    int // items drifted or missing
	Errors     int // items that could not be observed
	Items      []DriftItem
	Body       []byte // the POST /v1/drift body (with the revision given)
}

// Diff observes the host for every resource (as agent host), diffs each
// against its desired state, and returns the report with its POST
// /v1/drift body at revision.
func (m *Manifest) Diff(host, revision string) (Drift, error) {
	if err := m.enter(); err != nil {
		return Drift{}, err
	}
	defer m.leave()
	ch, cr := C.CString(host), C.CString(revision)
	defer C.free(unsafe.Pointer(ch))
	defer C.free(unsafe.Pointer(cr))
	var d *C.vigil_drift
	if err := call(func() C.int { return C.vigil_manifest_observe(&d, m.m, ch) }); err != nil {
		return Drift{}, err
	}
	defer C.vigil_drift_free(d)
	out := Drift{ObservedMs: int64(C.vigil_drift_observed_ms(d)),
		Drifted: int(C.vigil_drift_drifted(d)), Errors: int(C.vigil_drift_errors(d))}
	n := int(C.vigil_drift_count(d))
	for i := 0; i < n; i++ {
		var it C.vigil_drift_item
		it.version = C.VIGIL_DRIFT_ITEM_VERSION
		if err := call(func() C.int { return C.vigil_drift_item_at(d, C.size_t(i), &it) }); err != nil {
			return Drift{}, err
		}
		item := DriftItem{Target: goStr(it.target), Kind: goStr(it.kind), Name: goStr(it.name),
			Status: goStr(C.vigil_resource_status_name(it.status)), SelfHeal: it.self_heal != 0,
			Error: goStr(it.error), HealJSON: goStr(it.heal_json), ItemJSON: goStr(it.item_json)}
		for j := 0; j < int(it.diff_count); j++ {
			var f, des, obs *C.char
			if err := call(func() C.int {
				return C.vigil_drift_diff_at(d, C.size_t(i), C.size_t(j), &f, &des, &obs)
			}); err != nil {
				return Drift{}, err
			}
			item.Diff = append(item.Diff, DriftDiff{Field: goStr(f), Desired: goStr(des), Observed: goStr(obs)})
		}
		out.Items = append(out.Items, item)
	}
	var buf C.vigil_buf
	defer C.vigil_buf_dispose(&buf)
	if err := call(func() C.int { return C.vigil_drift_body(d, cr, &buf) }); err != nil {
		return Drift{}, err
	}
	out.Body = C.GoBytes(unsafe.Pointer(buf.ptr), C.int(buf.size))
	return out, nil
}
