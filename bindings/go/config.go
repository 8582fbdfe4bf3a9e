package vigil

/*
#include "glue.h"
*/
import "C"

import (
	"fmt"
	"time"
	"unsafe"
)

// ConfigNode is the configuration map of one configured plug-in (a rule, an
// action, a collector entry), handed to a factory. It is valid only during
// the factory call: read what you need there. Its getters return located
// errors ("file:line:col: path: ..."), which a factory returns as they are.
type ConfigNode struct {
	n *C.vigil_config_node
}

// invalidate ends the node's validity when its factory returns.
func (c *ConfigNode) invalidate() { c.n = nil }

func (c *ConfigNode) check() error {
	if c == nil || c.n == nil {
		return errorf(ErrInval, "configuration node used after its factory returned")
	}
	return nil
}

// Path is the node's path from the document root, e.g. "policies[0]".
func (c *ConfigNode) Path() string {
	if c.check() != nil {
		return ""
	}
	return C.GoString(C.vigil_config_node_path(c.n))
}

// Has reports whether the map has key.
func (c *ConfigNode) Has(key string) bool {
	if c.check() != nil {
		return false
	}
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	return C.vigil_config_node_get(c.n, ck) != nil
}

func (c *ConfigNode) get(key string, f func(ck *C.char) C.int) error {
	if err := c.check(); err != nil {
		return err
	}
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	return call(func() C.int { return f(ck) })
}

// String reads key as a string, dflt when absent.
func (c *ConfigNode) String(key, dflt string) (string, error) {
	cd := C.CString(dflt)
	defer C.free(unsafe.Pointer(cd))
	var out *C.char
	err := c.get(key, func(ck *C.char) C.int { return C.vigil_config_get_string(&out, c.n, ck, cd) })
	if err != nil {
		return "", err
	}
	return C.GoString(out), nil
}

// Float reads key as a finite number, dflt when absent.
func (c *ConfigNode) Float(key string, dflt float64) (float64, error) {
	var out C.double
	err := c.get(key, func(ck *C.char) C.int {
		return C.vigil_config_get_double(&out, c.n, ck, C.double(dflt))
	})
	return float64(out), err
}

// Int reads key as a decimal integer, dflt when absent.
func (c *ConfigNode) Int(key string, dflt int64) (int64, error) {
	var out C.int64_t
	err := c.get(key, func(ck *C.char) C.int {
		return C.vigil_config_get_int(&out, c.n, ck, C.int64_t(dflt))
	})
	return int64(out), err
}

// Bool reads key as a boolean (true/false/yes/no/on/off), dflt when absent.
func (c *ConfigNode) Bool(key string, dflt bool) (bool, error) {
	var out C.int
	d := C.int(0)
	if dflt {
		d = 1
	}
	err := c.get(key, func(ck *C.char) C.int { return C.vigil_config_get_bool(&out, c.n, ck, d) })
	return out != 0, err
}

// Duration reads key as a duration ("10s", "5m"), dflt when absent.
func (c *ConfigNode) Duration(key string, dflt time.Duration) (time.Duration, error) {
	var out C.int64_t
	err := c.get(key, func(ck *C.char) C.int {
		return C.vigil_config_get_duration(&out, c.n, ck, C.int64_t(dflt/time.Millisecond))
	})
	return time.Duration(out) * time.Millisecond, err
}

// Errorf returns an error located at key's value (at the map when key is
// absent or ""), formatted as every configuration error of the library:
// "file:line:col: path: message". Return it from a factory.
func (c *ConfigNode) Errorf(code Code, key string, format string, args ...interface{}) error {
	if err := c.check(); err != nil {
		return err
	}
	node := c.n
	if key != "" {
		ck := C.CString(key)
		if v := C.vigil_config_node_get(c.n, ck); v != nil {
			node = v
		}
		C.free(unsafe.Pointer(ck))
	}
	cm := C.CString(fmt.Sprintf(format, args...))
	defer C.free(unsafe.Pointer(cm))
	if code >= 0 {
		code = ErrError
	}
	return call(func() C.int { return C.vigil_error_set_at(C.int(code), node, cm) })
}

// yamlDoc is a YAML text loaded with vigil_config_load_string().
type yamlDoc struct {
	cfg *C.vigil_config
}

func loadYAML(text, name string) (*yamlDoc, error) {
	ct := C.CString(text)
	defer C.free(unsafe.Pointer(ct))
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	var cfg *C.vigil_config
	err := call(func() C.int {
		return C.vigil_config_load_string(&cfg, ct, C.size_t(len(text)), cn, nil)
	})
	if err != nil {
		return nil, err
	}
	return &yamlDoc{cfg: cfg}, nil
}

func (d *yamlDoc) free() {
	if d != nil && d.cfg != nil {
		C.vigil_config_free(d.cfg)
		d.cfg = nil
	}
}

func (d *yamlDoc) root() *C.vigil_config_node {
	if d == nil {
		return nil
	}
	return C.vigil_config_root(d.cfg, 0)
}

// list returns the document's root when it is a list, else the value of key
// in the root map (so both "- ..." and "key:\n  - ..." are accepted).
func (d *yamlDoc) list(key string) *C.vigil_config_node {
	r := d.root()
	if r == nil || C.vigil_config_node_kind(r) != C.VIGIL_CONFIG_MAP {
		return r
	}
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	return C.vigil_config_node_get(r, ck)
}

// cstrings is a NULL-terminated C array of C strings, freed by free().
type cstrings struct {
	p unsafe.Pointer
	n int
}

func newCStrings(ss []string) *cstrings {
	cs := &cstrings{n: len(ss)}
	cs.p = C.calloc(C.size_t(len(ss)+1), C.size_t(unsafe.Sizeof(uintptr(0))))
	arr := unsafe.Slice((**C.char)(cs.p), len(ss)+1)
	for i, s := range ss {
		arr[i] = C.CString(s)
	}
	return cs
}

func (cs *cstrings) ptr() **C.char { return (**C.char)(cs.p) }

func (cs *cstrings) free() {
	arr := unsafe.Slice((**C.char)(cs.p), cs.n+1)
	for i := 0; i < cs.n; i++ {
		C.free(unsafe.Pointer(arr[i]))
	}
	C.free(cs.p)
}
