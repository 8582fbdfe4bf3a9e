"""The policy engine (vigil_engine) on its own: ingest evaluates at once, on
the calling thread, which makes it the place to test policies."""

import collections
import ctypes
import json

from . import _lib
from . import errors
from ._handle import Buf, Handle, b, make_clock, make_logger, s
from .config import yaml_node
from .metrics import Batch
from .plugins import ActionRequest

lib = _lib.lib

#: A request the engine made: the ActionRequest (its id minted by the engine)
#: and the series key that triggered it.
EngineRequest = collections.namedtuple("EngineRequest", "request series")
EngineStats = collections.namedtuple(
    "EngineStats", [f[0] for f in _lib.vigil_engine_stats._fields_[1:]])


def stats_of(engine_ptr):
    st = _lib.vigil_engine_stats()
    st.version = 1
    errors.check(lib.vigil_engine_stats_get(engine_ptr, ctypes.byref(st)))
    return EngineStats(*[getattr(st, f) for f in EngineStats._fields])


def _json(fn, *args):
    with Buf() as buf:
        errors.check(fn(*args, buf.ref))
        return json.loads(buf.text())


class EngineOps:
    """What an engine offers, for an Engine and for a Hub's engine."""

    def _eng(self):
        raise NotImplementedError

    def load(self, policies, name="<policies>"):
        """Loads rules: YAML text of a list (or a document with `policies:`).
        All or nothing; errors are located in the text."""
        keep = []
        node = yaml_node(policies, name, keep, key="policies")
        try:
            errors.check(lib.vigil_engine_load(self._eng(), node))
        finally:
            for c in keep:
                c.close()

    def tick(self, now_ms=0):
        """Advances the timers (absent rules, verification, deferred
        requests) to now_ms (0: the engine's clock)."""
        errors.check(lib.vigil_engine_tick(self._eng(), int(now_ms)))

    def set_desired(self, target, desired):
        """Sets (None: removes) the desired state of a target (a dict)."""
        text = None if desired is None else json.dumps(desired)
        errors.check(lib.vigil_engine_set_desired(self._eng(), b(target), b(text)))

    def engine_stats(self):
        return stats_of(self._eng())

    def policies(self):
        """The loaded rules and their series' states (GET /v1/policies)."""
        return _json(lib.vigil_engine_policies_json, self._eng())["policies"]

    def decision_list(self, since_ms=0, limit=0):
        """Decisions as dicts (GET /v1/decisions), oldest first."""
        return _json(lib.vigil_engine_decisions_json, self._eng(), int(since_ms), int(limit))[
            "decisions"]


class Engine(EngineOps, Handle):
    """A policy engine on a Store. ``on_request(EngineRequest)`` and
    ``on_decision(Decision)`` receive what it does (from the thread that
    ingests or ticks). ``policy_types`` is a PolicyTypes it borrows."""

    _what = "engine"

    def __init__(self, store, policies=None, policy_types=None, clock=None, on_request=None,
                 on_decision=None, logger=None, log_level="info", act_within_ms=0):
        from .store import Decision

        o = _lib.vigil_engine_options()
        o.version = 1
        o.store = store._h
        self._keepalive = [store]
        self._clock = make_clock(clock)
        if self._clock:
            o.clock = self._clock
        o.logger, self._logfn = make_logger(logger, log_level)
        o.act_within_ms = int(act_within_ms)
        self._types = policy_types
        if policy_types is not None:
            o.policy_types = policy_types._h

        def req_tramp(_payload, req_p):
            try:
                r = req_p.contents
                on_request(EngineRequest(ActionRequest._from_c(r.request.contents), s(r.series)))
            except BaseException:
                pass

        def dec_tramp(_payload, d_p):
            try:
                d = d_p.contents
                on_decision(Decision(*[s(v) if isinstance(v, bytes) else v
                                       for v in (getattr(d, f) for f in Decision._fields)]))
            except BaseException:
                pass

        self._req_fn = _lib.engine_request_cb(req_tramp) if on_request else None
        self._dec_fn = _lib.engine_decision_cb(dec_tramp) if on_decision else None
        if self._req_fn:
            o.on_request = self._req_fn
        if self._dec_fn:
            o.on_decision = self._dec_fn
        p = ctypes.c_void_p()
        errors.check(lib.vigil_engine_new(ctypes.byref(p), ctypes.byref(o)))
        self._ptr = p.value
        if policy_types is not None:
            policy_types._use()
        self._track()
        if policies is not None:
            try:
                self.load(policies)
            except BaseException:
                self.close()
                raise

    def _eng(self):
        return self._h

    def _release(self, ptr):
        lib.vigil_engine_free(ptr)
        if self._types is not None:
            self._types._unuse()

    def ingest(self, batch):
        """Evaluates every metric of a Batch (or iterable of Metrics) now."""
        own = None
        if not isinstance(batch, Batch):
            batch = own = Batch(batch)
        try:
            errors.check(lib.vigil_engine_ingest(self._h, batch._h))
        finally:
            if own is not None:
                own.close()

    def stats(self):
        return self.engine_stats()

    def action_result(self, id, status, reason=None, output=None, retry_after_ms=0):
        """Feeds the result of a request the engine made (the closed loop)."""
        r = _lib.vigil_action_result()
        r.version = 2
        st = ctypes.c_int()
        errors.check(lib.vigil_action_status_parse(ctypes.byref(st), b(status)))
        try:
            errors.check(lib.vigil_action_result_set_id(ctypes.byref(r), b(id)))
            r.status = st.value
            if reason is not None:
                errors.check(lib.vigil_action_result_set_reason(ctypes.byref(r), b(reason)))
            if output is not None:
                raw = b(output)
                errors.check(lib.vigil_action_result_set_output(ctypes.byref(r), raw, len(raw)))
            r.retry_after_ms = int(retry_after_ms)
            errors.check(lib.vigil_engine_action_result(self._h, ctypes.byref(r)))
        finally:
            lib.vigil_action_result_clear(ctypes.byref(r))
