"""The remediator in process (guards, exactly-once ledger, audit chain) and
the audit chain's verification."""

import collections
import ctypes
import threading

from . import _lib
from . import errors
from ._handle import Handle, b, make_clock, make_logger, s
from .config import yaml_node
from .plugins import ActionRequest, result_from_c
from .store import Store

lib = _lib.lib

AuditReport = collections.namedtuple("AuditReport", "ok entries broken_at reason")

DISABLED = -1  #: turns a guard off (cooldown_ms, max_attempts, reset_after_ms, rate_per_s)


def _report(r):
    return AuditReport(bool(r.ok), r.entries, r.broken_at, s(r.reason))


class Audit(Handle):
    """The HMAC-chained audit log (vigil_audit) kept in a store. Open one on a
    Store with its key, or take a remediator's (``Remediator.audit``)."""

    _what = "audit"

    def __init__(self, store, key, _borrowed_ptr=None, _owner=None):
        self._owner = _owner
        if _borrowed_ptr is not None:
            self._ptr = _borrowed_ptr
            return
        o = _lib.vigil_audit_options()
        o.version = 1
        o.store = store._h
        key = b(key)
        o.key = ctypes.cast(ctypes.c_char_p(key), ctypes.c_void_p)
        o.key_len = len(key)
        p = ctypes.c_void_p()
        errors.check(lib.vigil_audit_open(ctypes.byref(p), ctypes.byref(o)))
        self._ptr = p.value
        self._store = store

    def _release(self, ptr):
        if self._owner is None:
            lib.vigil_audit_free(ptr)

    def append(self, kind, action_id=None, data_json=None):
        """Appends a row; returns (seq, mac)."""
        seq = ctypes.c_int64()
        mac = ctypes.create_string_buffer(65)
        errors.check(lib.vigil_audit_append(self._h, b(kind), b(action_id), b(data_json),
                                            ctypes.byref(seq), mac))
        return seq.value, mac.value.decode()

    def head(self):
        """(seq, mac) of the newest row; (0, "") when empty."""
        seq = ctypes.c_int64()
        mac = ctypes.create_string_buffer(65)
        errors.check(lib.vigil_audit_head(self._h, ctypes.byref(seq), mac))
        return seq.value, mac.value.decode()

    def verify(self, seq=None, mac=None):
        """Walks the chain (and checks the checkpoint (seq, mac) when given);
        returns an AuditReport (ok False with broken_at and reason when the
        chain is broken)."""
        r = _lib.vigil_audit_report()
        r.version = 1
        if seq is None:
            errors.check(lib.vigil_audit_verify(self._h, ctypes.byref(r)))
        else:
            errors.check(lib.vigil_audit_verify_checkpoint(self._h, int(seq), b(mac),
                                                           ctypes.byref(r)))
        return _report(r)


def remediator_options(store_url=None, audit_key=None, audit_key_env=None, actions=None,
                       action_types=None, base_dir=None, dry_run=False, cooldown_ms=0,
                       max_attempts=0, window_ms=0, reset_after_ms=0, rate_per_s=0.0,
                       rate_burst=0.0, max_concurrent=0, workers=0, queue_max=0,
                       tick_interval_ms=0, clock=None, logger=None, log_level="info",
                       state_dir=None):
    """A vigil_remediator_options and the objects it borrows."""
    keep = []
    o = _lib.vigil_remediator_options()
    o.version = 1
    o.store_url = b(store_url)
    if audit_key is not None:
        k = b(audit_key)
        keep.append(k)
        o.audit_key = ctypes.cast(ctypes.c_char_p(k), ctypes.c_void_p)
        o.audit_key_len = len(k)
    o.audit_key_env = b(audit_key_env)
    o.actions = yaml_node(actions, "<actions>", keep, key="actions")
    if action_types is not None:
        o.action_types = action_types._h
    o.base_dir = b(base_dir)
    o.dry_run = int(bool(dry_run))
    o.cooldown_ms = int(cooldown_ms)
    o.max_attempts = 0xFFFFFFFF if max_attempts == DISABLED else int(max_attempts)
    o.window_ms = int(window_ms)
    o.reset_after_ms = int(reset_after_ms)
    o.rate_per_s = float(rate_per_s)
    o.rate_burst = float(rate_burst)
    o.max_concurrent = int(max_concurrent)
    o.workers = int(workers)
    o.queue_max = int(queue_max)
    o.tick_interval_ms = int(tick_interval_ms)
    fn = make_clock(clock)
    if fn:
        o.clock = fn
        keep.append(fn)
    o.logger, logfn = make_logger(logger, log_level)
    keep.append(logfn)
    o.state_dir = b(state_dir)
    return o, keep


class Remediator(Handle):
    """A remediator in this process (vigil_remediator): requests pass its
    guards (allowlists, dry run, busy, cooldown, budget/quarantine, rate,
    concurrency, approval), run at most once, and are audited.

    Keyword arguments are the fields of vigil_remediator_options: store_url,
    audit_key (bytes), actions (YAML text of the `actions:` list),
    action_types (ActionTypes, borrowed), cooldown_ms, max_attempts,
    window_ms, reset_after_ms, rate_per_s (DISABLED turns a guard off), ...
    """

    _what = "remediator"

    _hub = None  # the hub a remediator runs in (Hub.attach_remediator()), or None

    def __init__(self, **kw):
        o, keep = remediator_options(**kw)
        self._keep = keep
        self._types = kw.get("action_types")
        p = ctypes.c_void_p()
        try:
            errors.check(lib.vigil_remediator_new(ctypes.byref(p), ctypes.byref(o)))
        finally:
            for c in keep:
                if hasattr(c, "close"):
                    c.close()
        self._ptr = p.value
        self._init_common()
        self._track()

    def _init_common(self):
        self._pending = {}
        self._pending_lock = threading.Lock()
        if self._types is not None:
            self._types._use()

    def _release(self, ptr):
        if self._hub is not None and not self._hub.closed:
            # attached: the hub frees it after itself (vigil_hub_attach_remediator())
            lib.vigil_remediator_stop(ptr)
            self._hub._orphans.append((ptr, self._types))
            return
        lib.vigil_remediator_free(ptr)
        if self._types is not None:
            self._types._unuse()

    def start(self):
        errors.check(lib.vigil_remediator_start(self._h))

    def stop(self):
        lib.vigil_remediator_stop(self._h)

    def _done_fn(self):
        """A vigil_remediator_result_cb and the event/slot it fills."""
        ev = threading.Event()
        slot = []

        def tramp(res_p, seq, mac, _payload):
            try:
                slot.append(result_from_c(res_p.contents, seq, mac))
            finally:
                ev.set()

        return _lib.vigil_remediator_result_cb(tramp), ev, slot

    def submit(self, action, target=None, params=None, reason=None, id=None, dry_run=False,
               callback=None):
        """Queues a request; ``callback(ActionResult)`` is called exactly once,
        from a remediator thread. Returns a handle whose ``wait(timeout)``
        returns the ActionResult."""
        req = action if isinstance(action, ActionRequest) else ActionRequest(
            action, target, reason, params, id, None, dry_run)
        fn, ev, slot = self._done_fn()
        token = object()
        with self._pending_lock:
            self._pending[id_of(token)] = fn  # alive until called

        def finish():
            with self._pending_lock:
                self._pending.pop(id_of(token), None)

        c, keepreq = req._c()
        rc = lib.vigil_remediator_submit_audited(self._h, ctypes.byref(c), fn, None)
        if rc < 0:
            finish()
            errors.check(rc)
        return _Pending(ev, slot, finish, callback)

    def execute(self, action, target=None, params=None, reason=None, id=None, dry_run=False,
                timeout=60.0):
        """Submits a request and waits for its result (an ActionResult)."""
        return self.submit(action, target, params, reason, id, dry_run).wait(timeout)

    def release(self, target, who="python"):
        """Ends the quarantine of a target; True when it was quarantined."""
        out = ctypes.c_int()
        errors.check(lib.vigil_remediator_release(self._h, b(target), b(who), ctypes.byref(out)))
        return bool(out.value)

    @property
    def audit(self):
        """The remediator's audit chain (borrowed)."""
        return Audit(None, None, _borrowed_ptr=lib.vigil_remediator_audit(self._h), _owner=self)

    @property
    def store(self):
        """The remediator's store (borrowed)."""
        return Store(None, _borrowed_ptr=lib.vigil_remediator_store(self._h), _owner=self)


def id_of(obj):
    return id(obj)


class _Pending:
    def __init__(self, ev, slot, finish, callback):
        self._ev, self._slot, self._finish, self._cb = ev, slot, finish, callback
        if callback is not None:
            t = threading.Thread(target=self._deliver, daemon=True)
            t.start()

    def _deliver(self):
        self._ev.wait()
        self._finish()
        self._cb(self._slot[0])

    def wait(self, timeout=60.0):
        if not self._ev.wait(timeout):
            raise errors.DeadlineError("no result within %.1f s" % timeout, code=errors.ETIMEOUT)
        self._finish()
        return self._slot[0]
