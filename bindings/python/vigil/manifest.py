"""Host manifests (GitOps, <vigil/manifest.h>): load a checkout's YAML
manifests, observe the host and diff desired against observed state.

The manifest API arrived in libvigil 0.3.0; with an older library every
call here raises UnsupportedError."""

import collections
import ctypes
import json
from ctypes import POINTER, Structure, c_char_p, c_int, c_int64, c_size_t, c_uint, c_void_p

from . import _lib
from . import errors
from ._handle import Buf, Handle, b, make_clock, make_logger, s

lib = _lib.lib


class vigil_manifest_options(Structure):
    _c_name_ = "vigil_manifest_options"
    _fields_ = [
        ("version", c_uint),
        ("root", c_char_p),
        ("sources", POINTER(c_char_p)),
        ("files", POINTER(c_char_p)),
        ("resource_types", c_void_p),
        ("max_file_size", c_size_t),
        ("max_documents", c_size_t),
        ("max_resources", c_size_t),
        ("max_files", c_size_t),
        ("max_depth", c_uint),
        ("max_nodes", c_size_t),
        ("max_source_size", c_size_t),
        ("proc_root", c_char_p),
        ("sys_root", c_char_p),
        ("systemctl", c_char_p),
        ("logger", _lib.vigil_logger),
        ("clock", _lib.vigil_clock_cb),
        ("clock_payload", c_void_p),
        ("getenv", _lib.vigil_getenv_cb),
        ("getenv_payload", c_void_p),
        ("policy_types", c_void_p),
    ]


class vigil_drift_item(Structure):
    _c_name_ = "vigil_drift_item"
    _fields_ = [
        ("version", c_uint),
        ("target", c_char_p),
        ("kind", c_char_p),
        ("name", c_char_p),
        ("status", c_int),
        ("self_heal", c_int),
        ("diff_count", c_size_t),
        ("error", c_char_p),
        ("heal_json", c_char_p),
        ("item_json", c_char_p),
    ]


STRUCTS = [vigil_manifest_options, vigil_drift_item]
P = c_void_p
_PROTOS = {
    "vigil_manifest_load": (c_int, [POINTER(P), POINTER(vigil_manifest_options)]),
    "vigil_manifest_free": (None, [P]),
    "vigil_manifest_root": (c_char_p, [P]),
    "vigil_manifest_file_count": (c_size_t, [P]),
    "vigil_manifest_file_at": (c_char_p, [P, c_size_t]),
    "vigil_manifest_count": (c_size_t, [P]),
    "vigil_manifest_at": (P, [P, c_size_t]),
    "vigil_manifest_find": (P, [P, c_char_p, c_char_p]),
    "vigil_resource_kind": (c_char_p, [P]),
    "vigil_resource_name": (c_char_p, [P]),
    "vigil_resource_self_heal": (c_int, [P]),
    "vigil_resource_file": (c_char_p, [P]),
    "vigil_resource_line": (c_uint, [P]),
    "vigil_resource_column": (c_uint, [P]),
    "vigil_resource_label_count": (c_size_t, [P]),
    "vigil_resource_label_key_at": (c_char_p, [P, c_size_t]),
    "vigil_resource_label_value_at": (c_char_p, [P, c_size_t]),
    "vigil_resource_spec_json": (c_char_p, [P]),
    "vigil_manifest_desired_body": (c_int, [P, c_char_p, c_char_p, POINTER(_lib.vigil_buf)]),
    "vigil_manifest_policies_body": (c_int, [P, c_char_p, c_char_p, POINTER(_lib.vigil_buf)]),
    "vigil_manifest_observe": (c_int, [POINTER(P), P, c_char_p]),
    "vigil_drift_free": (None, [P]),
    "vigil_drift_count": (c_size_t, [P]),
    "vigil_drift_drifted": (c_size_t, [P]),
    "vigil_drift_errors": (c_size_t, [P]),
    "vigil_drift_observed_ms": (c_int64, [P]),
    "vigil_drift_item_at": (c_int, [P, c_size_t, POINTER(vigil_drift_item)]),
    "vigil_drift_diff_at": (c_int, [P, c_size_t, c_size_t, POINTER(c_char_p), POINTER(c_char_p),
                                    POINTER(c_char_p)]),
    "vigil_drift_body": (c_int, [P, c_char_p, POINTER(_lib.vigil_buf)]),
    "vigil_resource_status_name": (c_char_p, [c_int]),
}


class _Api:
    fns = None


def _api():
    """The manifest functions, resolved at first use."""
    if _Api.fns is None:
        fns = {}
        for name, (res, args) in _PROTOS.items():
            fn = getattr(lib, name, None)
            if fn is None:
                raise errors.UnsupportedError(
                    "manifests: %s (version %s) has no %s; manifests need libvigil 0.3.0"
                    % (_lib.path, _lib.version, name), code=errors.EUNSUPPORTED)
            fn.restype, fn.argtypes = res, args
            fns[name] = fn
        _Api.fns = fns
    return _Api.fns


def available():
    """True when the loaded library has the manifest API."""
    try:
        _api()
        return True
    except errors.UnsupportedError:
        return False


#: A resource of a manifest.
Resource = collections.namedtuple("Resource", "kind name labels spec self_heal file line column")
#: One entry of an item's diff: the field and the desired and observed values.
DiffEntry = collections.namedtuple("DiffEntry", "field desired observed")
#: One observed resource: status is in_sync, drifted, missing or error.
DriftItem = collections.namedtuple(
    "DriftItem", "target kind name status self_heal diff error heal")


def _strv(items, keep):
    if not items:
        return None
    raw = [b(x) for x in items]
    keep.append(raw)
    arr = (c_char_p * (len(raw) + 1))(*raw, None)
    keep.append(arr)
    return arr


class Manifest(Handle):
    """The manifests of a checkout (vigil_manifest), loaded and validated all
    or nothing; errors are located ("hosts/web/app.yaml:7:11: spec.mode: ...").
    Immutable: its accessors may be used from several threads."""

    _what = "manifest"

    def __init__(self, root, sources=None, files=None, proc_root=None, sys_root=None,
                 systemctl=None, policy_types=None, clock=None, logger=None, log_level="warn"):
        api = _api()
        keep = []
        o = vigil_manifest_options()
        o.version = 1
        o.root = b(root)
        o.sources = _strv(sources, keep)
        o.files = _strv(files, keep)
        o.proc_root, o.sys_root, o.systemctl = b(proc_root), b(sys_root), b(systemctl)
        o.logger, self._logfn = make_logger(logger, log_level)
        self._clock = make_clock(clock)
        if self._clock:
            o.clock = self._clock
        if policy_types is not None:
            o.policy_types = policy_types._h
        p = c_void_p()
        errors.check(api["vigil_manifest_load"](ctypes.byref(p), ctypes.byref(o)))
        self._ptr = p.value

    @classmethod
    def load(cls, root, **kw):
        return cls(root, **kw)

    def _release(self, ptr):
        _api()["vigil_manifest_free"](ptr)

    @property
    def root(self):
        return s(_api()["vigil_manifest_root"](self._h))

    @property
    def files(self):
        api = _api()
        return [s(api["vigil_manifest_file_at"](self._h, i))
                for i in range(api["vigil_manifest_file_count"](self._h))]

    def __len__(self):
        return _api()["vigil_manifest_count"](self._h)

    @staticmethod
    def _resource(r):
        api = _api()
        labels = {s(api["vigil_resource_label_key_at"](r, i)):
                  s(api["vigil_resource_label_value_at"](r, i))
                  for i in range(api["vigil_resource_label_count"](r))}
        return Resource(s(api["vigil_resource_kind"](r)), s(api["vigil_resource_name"](r)), labels,
                        json.loads(s(api["vigil_resource_spec_json"](r))),
                        bool(api["vigil_resource_self_heal"](r)), s(api["vigil_resource_file"](r)),
                        api["vigil_resource_line"](r), api["vigil_resource_column"](r))

    def resources(self):
        """Every resource, in load order."""
        api = _api()
        return [self._resource(api["vigil_manifest_at"](self._h, i)) for i in range(len(self))]

    def find(self, kind, name):
        """The resource of kind and name, or None."""
        r = _api()["vigil_manifest_find"](self._h, b(kind), b(name))
        return self._resource(r) if r else None

    def desired_body(self, host, revision=""):
        """The body of PUT /v1/desired, as a dict."""
        with Buf() as buf:
            errors.check(_api()["vigil_manifest_desired_body"](self._h, b(host), b(revision),
                                                               buf.ref))
            return json.loads(buf.text())

    def policies_body(self, host, revision=""):
        """The body of PUT /v1/policies, as a dict."""
        with Buf() as buf:
            errors.check(_api()["vigil_manifest_policies_body"](self._h, b(host), b(revision),
                                                                buf.ref))
            return json.loads(buf.text())

    def diff(self, host):
        """Observes the host for every resource and diffs it against the
        manifest: a Drift report (its items: DriftItem tuples)."""
        p = c_void_p()
        errors.check(_api()["vigil_manifest_observe"](ctypes.byref(p), self._h, b(host)))
        return Drift(p.value)


class Drift(Handle):
    """A drift report (vigil_drift), immutable."""

    _what = "drift report"

    def __init__(self, ptr):
        self._ptr = ptr
        api = _api()
        self.observed_ms = api["vigil_drift_observed_ms"](ptr)
        self.drifted = api["vigil_drift_drifted"](ptr)
        self.errors = api["vigil_drift_errors"](ptr)
        self.items = [self._item(i) for i in range(api["vigil_drift_count"](ptr))]

    def _release(self, ptr):
        _api()["vigil_drift_free"](ptr)

    def _item(self, i):
        api = _api()
        it = vigil_drift_item()
        it.version = 1
        errors.check(api["vigil_drift_item_at"](self._h, i, ctypes.byref(it)))
        diff = []
        for k in range(it.diff_count):
            f, d, o = c_char_p(), c_char_p(), c_char_p()
            errors.check(api["vigil_drift_diff_at"](self._h, i, k, ctypes.byref(f), ctypes.byref(d),
                                                    ctypes.byref(o)))
            diff.append(DiffEntry(s(f.value), json.loads(s(d.value)), json.loads(s(o.value))))
        return DriftItem(s(it.target), s(it.kind), s(it.name),
                         s(api["vigil_resource_status_name"](it.status)), bool(it.self_heal), diff,
                         s(it.error), json.loads(s(it.heal_json)) if it.heal_json else None)

    def body(self, revision=""):
        """The body of POST /v1/drift, as a dict."""
        with Buf() as buf:
            errors.check(_api()["vigil_drift_body"](self._h, b(revision), buf.ref))
            return json.loads(buf.text())

    def __iter__(self):
        return iter(self.items)

    def __len__(self):
        return len(self.items)
