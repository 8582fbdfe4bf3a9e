"""The hub: ingest -> store -> windows -> policy engine -> dispatch, with its
HTTP API on a loopback (or any) address."""

import collections
import ctypes
import time

from . import _lib
from . import errors
from ._handle import Buf, Handle, b, make_clock, make_logger
from .config import yaml_node
from .engine import EngineOps
from .metrics import Batch
from .plugins import ActionRequest
from .remediator import Remediator
from .store import Store

lib = _lib.lib

IngestResult = collections.namedtuple("IngestResult", "accepted duplicate")
HubStats = collections.namedtuple("HubStats", [f[0] for f in _lib.vigil_hub_stats._fields_[1:]])


class Hub(EngineOps, Handle):
    """A hub (vigil_hub). Build it from keyword options (store_url, policies
    as YAML text, policies_dir, policy_types, clock, act_within_ms,
    policy_interval_ms, remediator_url, remediator_secret, logger, ...) or
    from a collector.yaml with Hub.from_config(). Call start() before
    ingesting; close() stops and frees it (and its in-process remediator).

    The hub evaluates each committed batch on its evaluator thread, so a
    Python policy runs there; evaluate() ingests and waits for that."""

    _what = "hub"

    def __init__(self, store_url=None, policies=None, policies_dir=None, policy_types=None,
                 clock=None, logger=None, log_level="info", act_within_ms=0,
                 policy_interval_ms=0, max_future_ms=0, remediator_url=None,
                 remediator_secret=None, _options=None, _keep=()):
        self._keep = list(_keep)
        if _options is not None:
            o = _options
        else:
            o = _lib.vigil_hub_options()
            o.version = 1
            o.store_url = b(store_url)
            o.policies = yaml_node(policies, "<policies>", self._keep, key="policies")
            o.policies_dir = b(policies_dir)
            o.act_within_ms = int(act_within_ms)
            o.policy_interval_ms = int(policy_interval_ms)
            o.max_future_ms = int(max_future_ms)
            o.remediator_url = b(remediator_url)
            if remediator_secret is not None:
                sec = b(remediator_secret)
                self._keep.append(sec)
                o.remediator_secret = ctypes.cast(ctypes.c_char_p(sec), ctypes.c_void_p)
                o.remediator_secret_len = len(sec)
        if policy_types is not None:
            o.policy_types = policy_types._h
        self._types = policy_types
        self._clock = make_clock(clock)
        if self._clock:
            o.clock = self._clock
        if logger is not None or _options is None:
            o.logger, self._logfn = make_logger(logger, log_level)
        p = ctypes.c_void_p()
        try:
            errors.check(lib.vigil_hub_new(ctypes.byref(p), ctypes.byref(o)))
        finally:
            for c in self._keep:
                if hasattr(c, "close"):
                    c.close()
        self._ptr = p.value
        self._remediators = []
        self._orphans = []
        self._servers = []
        self._started = False
        if policy_types is not None:
            policy_types._use()
        self._track()

    @classmethod
    def from_config(cls, path=None, text=None, name="collector.yaml", policy_types=None,
                    action_types=None, logger=None, log_level="info", clock=None):
        """A hub from a collector.yaml (a file, or ``text``). The `kind:` of
        its policies resolves in policy_types too, the `type:` of an
        in-process remediator's actions in action_types. A remediator the
        configuration runs in process is attached (``hub.remediator``).
        Errors are located: ``collector.yaml:3:1: ...``."""
        co = _lib.vigil_config_options()
        co.version = 1
        if policy_types is not None:
            co.policy_types = policy_types._h
        if action_types is not None:
            co.action_types = action_types._h
        p = ctypes.c_void_p()
        if path is not None:
            errors.check(lib.vigil_hub_config_load(ctypes.byref(p), b(path), ctypes.byref(co)))
        else:
            raw = b(text)
            errors.check(lib.vigil_hub_config_load_string(ctypes.byref(p), raw, len(raw), b(name),
                                                          ctypes.byref(co)))
        cfg = p.value
        try:
            opts = _lib.vigil_hub_options()
            ctypes.pointer(opts)[0] = lib.vigil_hub_config_hub(cfg).contents
            hub = cls(policy_types=policy_types, logger=logger, log_level=log_level, clock=clock,
                      _options=opts)
            hub._config = cfg
            cfg = None
            rcfg = lib.vigil_hub_config_remediator(hub._config)
            if rcfg:
                ro = _lib.vigil_remediator_options()
                ctypes.pointer(ro)[0] = lib.vigil_remediator_config_options(rcfg).contents
                if logger is not None:
                    ro.logger, fn = make_logger(logger, log_level)
                    hub._keep.append(fn)
                hub._attach(ro, action_types)
            return hub
        finally:
            if cfg is not None:
                lib.vigil_hub_config_free(cfg)

    def _release(self, ptr):
        for srv in list(self._servers):
            srv.close()
        for r in self._remediators:
            if r._ptr:
                lib.vigil_remediator_stop(r._ptr)
        lib.vigil_hub_stop(ptr)
        lib.vigil_hub_free(ptr)
        for r in self._remediators:
            rp, r._ptr = r._ptr, None
            if rp:
                lib.vigil_remediator_free(rp)
            if r._types is not None:
                r._types._unuse()
        for rp, types in self._orphans:
            lib.vigil_remediator_free(rp)
            if types is not None:
                types._unuse()
        self._orphans = []
        cfg = getattr(self, "_config", None)
        if cfg:
            lib.vigil_hub_config_free(cfg)
            self._config = None
        if self._types is not None:
            self._types._unuse()

    def _eng(self):
        return lib.vigil_hub_engine(self._h)

    def _attach(self, opts, action_types):
        rem = Remediator.__new__(Remediator)
        p = ctypes.c_void_p()
        if action_types is not None:
            opts.action_types = action_types._h
        errors.check(lib.vigil_hub_attach_remediator(self._h, ctypes.byref(opts), ctypes.byref(p)))
        rem._ptr = p.value
        rem._hub = self
        rem._types = action_types
        rem._keep = []
        rem._init_common()
        self._remediators.append(rem)
        return rem

    def attach_remediator(self, **kw):
        """Runs a Remediator in this process as the hub's dispatcher (before
        start()); keyword arguments as Remediator's. Returns it; the hub stops
        and frees it when it closes."""
        from .remediator import remediator_options

        types = kw.get("action_types")
        o, keep = remediator_options(**kw)
        try:
            rem = self._attach(o, types)
        finally:
            for c in keep:
                if hasattr(c, "close"):
                    c.close()
        rem._keep = keep
        return rem

    @property
    def remediator(self):
        """The in-process remediator, or None."""
        return self._remediators[0] if self._remediators else None

    def start(self):
        errors.check(lib.vigil_hub_start(self._h))
        self._started = True

    def stop(self):
        for r in self._remediators:
            if r._ptr:
                lib.vigil_remediator_stop(r._ptr)
        lib.vigil_hub_stop(self._h)

    def ingest(self, batch):
        """Ingests a Batch (or iterable of Metrics); returns once committed."""
        own = None
        if not isinstance(batch, Batch):
            batch = own = Batch(batch)
        try:
            r = _lib.vigil_hub_ingest_result()
            r.version = 1
            errors.check(lib.vigil_hub_ingest(self._h, batch._h, ctypes.byref(r)))
            return IngestResult(r.accepted, bool(r.duplicate))
        finally:
            if own is not None:
                own.close()

    def wait_evaluated(self, timeout=10.0):
        """Waits until the engine has evaluated every sample stored so far."""
        deadline = time.monotonic() + timeout
        while True:
            if self.engine_stats().metrics >= self.stats().samples:
                return
            if time.monotonic() >= deadline:
                raise errors.DeadlineError("hub: samples not evaluated within %.1f s" % timeout,
                                           code=errors.ETIMEOUT)
            time.sleep(0.005)

    def evaluate(self, batch, timeout=10.0):
        """Ingests, then waits until the engine has evaluated it (no other
        ingest should run meanwhile for the wait to mean this batch)."""
        res = self.ingest(batch)
        self.wait_evaluated(timeout)
        return res

    def stats(self):
        st = _lib.vigil_hub_stats()
        st.version = 1
        errors.check(lib.vigil_hub_stats_get(self._h, ctypes.byref(st)))
        return HubStats(*[getattr(st, f) for f in HubStats._fields])

    @property
    def store(self):
        """The hub's store (borrowed: valid while the hub is open)."""
        return Store(None, _borrowed_ptr=lib.vigil_hub_store(self._h), _owner=self)

    def decisions(self, since_ms=0, target=None, policy=None, limit=0):
        """Policy decisions (Decision tuples), oldest first."""
        return self.store.decisions(since_ms, target, policy, limit)

    def actions(self, since_ms=0, status=None, target=None, policy=None, limit=0):
        """The actions ledger: every request (a policy's or a manual one) and
        its result (ActionRecord tuples)."""
        return self.store.actions(since_ms, status, target, policy, limit)

    def request_action(self, action, target, params=None, reason=None, dry_run=False):
        """Requests an action by hand (as POST /v1/actions); returns its id."""
        req = ActionRequest(action, target, reason, params, dry_run=dry_run)
        c, _keep = req._c()
        with Buf() as buf:
            errors.check(lib.vigil_hub_action_request(self._h, ctypes.byref(c), buf.ref))
            return buf.text()

    def serve(self, listen="127.0.0.1:0", threads=2, logger=None, log_level="warn"):
        """Serves the hub's HTTP API (open, no tokens: keep it on loopback)
        until close(); returns the HTTPServer (``.url``, ``.port``)."""
        srv = HTTPServer(self, listen, threads, logger, log_level)
        self._servers.append(srv)
        return srv


class HTTPServer(Handle):
    """The hub's routes on vigil_httpd. Closed before its hub."""

    _what = "http server"

    def __init__(self, hub, listen, threads, logger, log_level):
        self._hub = hub
        ao = _lib.vigil_api_options()
        ao.version = 1
        ao.logger, self._logfn = make_logger(logger, log_level)
        p = ctypes.c_void_p()
        errors.check(lib.vigil_api_new(ctypes.byref(p), ctypes.byref(ao)))
        self._api = p.value
        try:
            errors.check(lib.vigil_hub_mount(hub._h, self._api))
            ho = _lib.vigil_httpd_options()
            ho.version = 1
            ho.listen = b(listen)
            ho.threads = int(threads)
            ho.logger = ao.logger
            q = ctypes.c_void_p()
            errors.check(lib.vigil_httpd_new(ctypes.byref(q), self._api, ctypes.byref(ho)))
            self._ptr = q.value
            errors.check(lib.vigil_httpd_start(self._ptr))
        except BaseException:
            if self._ptr:
                lib.vigil_httpd_free(self._ptr)
                self._ptr = None
            lib.vigil_api_free(self._api)
            raise

    @property
    def port(self):
        return lib.vigil_httpd_port(self._h)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def _release(self, ptr):
        lib.vigil_httpd_stop(ptr)
        lib.vigil_httpd_free(ptr)
        lib.vigil_api_free(self._api)
        if self in self._hub._servers:
            self._hub._servers.remove(self)
