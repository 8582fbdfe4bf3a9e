// Package vigil is the Go binding of libvigil, the embeddable core of the
// Vigil self-healing control plane. It wraps the public C API
// (include/vigil/*.h) with cgo and the standard library only.
//
// # Objects
//
// Batch (metrics), Store (a SQLite store: write, query), Engine (the policy
// engine on a store), Hub (ingest, evaluation, decisions, action requests),
// Remediator (guards, exactly-once ledger, audit chain, Go or built-in
// actions), Agent (collectors), Manifest (GitOps manifests: load, diff).
// Each is created by a New/Open/Load function that returns (T, error) and
// released by Close, which is idempotent; a finalizer
// calls Close as a safety net, but programs should call it themselves.
//
// # Plug-ins written in Go
//
// A Policy, an Action or a Collector written in Go is registered on a
// registry (PolicyRegistry, ActionRegistry, CollectorRegistry) under a type
// name, and configured like a built-in type of that kind. The C library
// calls it through exported callbacks; what it keeps is a runtime/cgo
// Handle, never a Go pointer, deleted when the registry frees the type. A
// panic inside a plug-in is recovered and reported as that plug-in's error
// (the message starts with "panic: "); it never crashes the process.
//
// # Goroutines
//
// Store, Engine, Hub and Remediator may be used from several goroutines at
// once (the C objects are thread-safe; Close waits for calls in progress).
// Batch and the registries are not synchronised: use one from one goroutine
// at a time, and fill a registry before handing it to an object. Plug-ins
// are called from C threads of the library, possibly several at once: make
// them safe for concurrent use.
//
// # Errors
//
// Every failure is an *Error carrying the library's status Code and the
// message of vigil_error_last() (with "file:line:col:" for configuration
// errors). Compare codes with errors.Is(err, vigil.ErrEUnknownKey) and so on.
package vigil

/*
#cgo pkg-config: vigil
#include "glue.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"runtime/cgo"
	"sync/atomic"
)

// Code is a libvigil status code (enum vigil_status): 0 or negative.
type Code int

// Status codes (include/vigil/common.h). An *Error compares equal, under
// errors.Is, to the Code it carries.
const (
	OK             Code = 0
	ErrError       Code = -1
	ErrNoMem       Code = -2
	ErrInval       Code = -3
	ErrRange       Code = -4
	ErrNotFound    Code = -5
	ErrExists      Code = -6
	ErrIO          Code = -7
	ErrLimit       Code = -8
	ErrJSON        Code = -9
	ErrType        Code = -10
	ErrMissing     Code = -11
	ErrName        Code = -12
	ErrValue       Code = -13
	ErrEncoding    Code = -14
	ErrYAML        Code = -15
	ErrUnknownKey  Code = -16
	ErrEnv         Code = -17
	ErrAlias       Code = -18
	ErrUnsupported Code = -19
	ErrBusy        Code = -20
	ErrTimeout     Code = -21
	ErrFull        Code = -22
	ErrReadOnly    Code = -23
	ErrCorrupt     Code = -24
	ErrVersion     Code = -25
	ErrClosed      Code = -26
	ErrNetwork     Code = -27
	ErrHTTP        Code = -28
	ErrAuth        Code = -29
	ErrPerm        Code = -30
	ErrOverloaded  Code = -31
	ErrConflict    Code = -32
	ErrChild       Code = -33
)

// Error makes a Code usable as an error (a sentinel for errors.Is).
func (c Code) Error() string { return C.GoString(C.vigil_strerror(C.int(c))) }

// String is the library's short description of the code.
func (c Code) String() string { return c.Error() }

// Error is a failure reported by libvigil: the status code and the message
// recorded by vigil_error_last() on the failing call's thread. File, Line
// and Column locate configuration errors (empty and 0 otherwise).
type Error struct {
	Code    Code
	Message string
	File    string
	Line    int
	Column  int
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "vigil: " + e.Code.Error()
	}
	return "vigil: " + e.Message
}

// Is reports whether target is the same Code, or an *Error with the same Code.
func (e *Error) Is(target error) bool {
	switch t := target.(type) {
	case Code:
		return e.Code == t
	case *Error:
		return e.Code == t.Code
	}
	return false
}

// lastError builds an *Error from rc and the calling thread's last error.
// It must run on the OS thread of the failing call: use call(), which locks
// the goroutine to its thread around the call and the read.
func lastError(rc C.int) error {
	if rc >= 0 {
		return nil
	}
	le := C.vigil_error_last()
	e := &Error{Code: Code(rc)}
	if le != nil && Code(le.code) == Code(rc) {
		e.Message = C.GoString(le.message)
		if le.file != nil {
			e.File = C.GoString(le.file)
		}
		e.Line = int(le.line)
		e.Column = int(le.column)
	}
	if e.Message == "" {
		e.Message = Code(rc).Error()
	}
	return e
}

// call runs f (a cgo call returning a status) and turns a failure into an
// *Error read from the same OS thread (the last error is thread-local).
func call(f func() C.int) error {
	runtime.LockOSThread()
	rc := f()
	err := lastError(rc)
	runtime.UnlockOSThread()
	return err
}

// Version returns the version of the libvigil the program runs with.
func Version() string { return C.GoString(C.vigil_version(nil, nil, nil)) }

// HeaderVersion is the version of the headers the binding was compiled against.
const HeaderVersion = C.VIGIL_VERSION

// liveHandles counts the cgo.Handles the binding holds for the C library
// (plug-in factories and instances, callbacks, loggers); LiveHandles reports
// it so that tests can check nothing is leaked.
var liveHandles atomic.Int64

func newHandle(v interface{}) cgo.Handle {
	liveHandles.Add(1)
	return cgo.NewHandle(v)
}

func deleteHandle(h cgo.Handle) {
	if h == 0 {
		return
	}
	h.Delete()
	liveHandles.Add(-1)
}

// LiveHandles returns how many runtime/cgo handles the binding currently
// holds for the C library: every registry, plug-in instance and callback
// that is alive. It returns to its previous value once the objects are
// closed.
func LiveHandles() int64 { return liveHandles.Load() }

func errorf(code Code, format string, args ...interface{}) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}
