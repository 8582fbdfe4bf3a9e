"""Plug-ins written in Python: policy types (Policy), action types (Action)
and collector types (Collector), registered on the library's registries
(vigil_policy_register(), vigil_action_register(), vigil_collector_register())
and called by the C engine, remediator and agent.

The C library calls these objects from its own threads (a hub's evaluator, a
remediator's workers); ctypes takes the GIL for each call. An exception
raised inside a callback never crosses into C: it becomes that plug-in's
error (vigil_error_set() with the exception's text and a failure code, the
code of a VigilError or VIGIL_ERROR), which the library reports as it does
for C plug-ins (a policy error counted by the engine, a FAILED action with
reason "internal_error", an error sample of the collector), and it is
counted on the Registration (``errors``, ``last_error``).
"""

import collections
import ctypes
import itertools
import threading

from . import _lib
from . import errors
from ._handle import Handle, b, s
from .config import ConfigMap
from .metrics import Batch, Metric

lib = _lib.lib

# ---- data --------------------------------------------------------------------


class ActionRequest:
    """An action request: what a policy asks for, or what an action receives."""

    __slots__ = ("action", "target", "reason", "params", "id", "policy", "dry_run")

    def __init__(self, action=None, target=None, reason=None, params=None, id=None, policy=None,
                 dry_run=False):
        self.action = action
        self.target = target
        self.reason = reason
        self.params = dict(params or {})
        self.id = id
        self.policy = policy
        self.dry_run = bool(dry_run)

    def __repr__(self):
        return "ActionRequest(action=%r, target=%r, reason=%r, params=%r, id=%r, policy=%r)" % (
            self.action, self.target, self.reason, self.params, self.id, self.policy)

    @classmethod
    def _from_c(cls, r):
        params = {s(r.params[i].key): s(r.params[i].value) for i in range(r.nparams)}
        return cls(s(r.action), s(r.target), s(r.reason), params, s(r.id), s(r.policy),
                   bool(r.dry_run))

    def _fill(self, req, keep):
        """Fills a vigil_action_request; what it points at goes into ``keep``."""
        req.version = 1
        for f in ("id", "action", "target", "reason", "policy"):
            v = b(getattr(self, f))
            keep.append(v)
            setattr(req, f, v)
        items = [(b(k), b(v)) for k, v in self.params.items()]
        arr = (_lib.vigil_action_param * max(len(items), 1))()
        for i, (k, v) in enumerate(items):
            arr[i].key, arr[i].value = k, v
        keep += [items, arr]
        req.params = arr if items else None
        req.nparams = len(items)
        req.dry_run = int(self.dry_run)
        return req

    def _c(self):
        keep = []
        return self._fill(_lib.vigil_action_request(), keep), keep


class Verdict:
    """What a policy's evaluate may return for full control: whether the
    condition holds, the value judged (shown in listings) and the request to
    make when the engine acts (None: the rule's action and target)."""

    __slots__ = ("active", "value", "request")

    def __init__(self, active, value=None, request=None):
        self.active = bool(active)
        self.value = value
        self.request = request


STATUSES = ("succeeded", "failed", "timeout", "refused", "dry_run", "pending_approval")

#: What became of a request: status is one of STATUSES.
ActionResult = collections.namedtuple(
    "ActionResult",
    "id status reason output exit_code duration_ms retry_after_ms audit_seq audit_mac",
)


def result_from_c(r, audit_seq=0, audit_mac=None):
    out = ctypes.string_at(r.output, r.output_len).decode("utf-8", "replace") if r.output else None
    return ActionResult(s(r.id), s(lib.vigil_action_status_name(r.status)), s(r.reason), out,
                        r.exit_code, r.duration_ms, r.retry_after_ms if r.version >= 2 else 0,
                        audit_seq, s(audit_mac) or None)


class Outcome:
    """What an Action's execute may return: a status ("succeeded", "failed" or
    "timeout"), a short reason token, an output text and an exit code."""

    __slots__ = ("status", "reason", "output", "exit_code")

    def __init__(self, status="succeeded", reason=None, output=None, exit_code=-1):
        if status not in ("succeeded", "failed", "timeout"):
            raise ValueError("an action's outcome is succeeded, failed or timeout, not %r" % status)
        self.status = status
        self.reason = reason
        self.output = output
        self.exit_code = exit_code


# ---- registrations and instances ---------------------------------------------

_ids = itertools.count(1)
_regs = {}  # payload id -> Registration
_insts = {}  # state id -> (instance, Registration, keep)
_lock = threading.Lock()


class Registration:
    """One type registered from Python. ``errors`` counts the exceptions its
    callbacks raised; ``last_error`` is the text of the last one."""

    def __init__(self, kind, name, factory, keys):
        self.kind = kind
        self.name = name
        self.factory = factory
        self.keys = tuple(keys or ())
        self.errors = 0
        self.last_error = None
        self.instances = 0
        self._lock = threading.Lock()
        kb = [b(k) for k in self.keys]
        self._keys_c = (ctypes.c_char_p * (len(kb) + 1))(*kb, None)
        self._keys_keep = kb
        self.id = next(_ids)

    def fail(self, exc, default_code=errors.ERROR):
        """Reports ``exc`` as this plug-in's error; returns the code."""
        if isinstance(exc, errors.VigilError) and exc.code < 0:
            code, msg = exc.code, exc.message
        elif isinstance(exc, PermissionError):
            code, msg = errors.EPERM, str(exc) or type(exc).__name__
        else:
            code = default_code
            msg = "%s %s: %s: %s" % (self.kind, self.name, type(exc).__name__, exc)
        with self._lock:
            self.errors += 1
            self.last_error = msg
        return lib.vigil_error_set(code, b(msg))

    def __repr__(self):
        return "<vigil %s type %r errors=%d>" % (self.kind, self.name, self.errors)


def _put(inst, reg):
    sid = next(_ids)
    _insts[sid] = [inst, reg, None]
    with reg._lock:
        reg.instances += 1
    return sid


def _drop(sid):
    entry = _insts.pop(sid, None)
    if entry is None:
        return
    inst, reg, _keep = entry
    with reg._lock:
        reg.instances -= 1
    close = getattr(inst, "close", None)
    if close is not None:
        try:
            close()
        except BaseException as e:
            reg.fail(e)


def _payload_free(payload):
    _regs.pop(payload, None)


_payload_free_c = _lib.vigil_free_cb(_payload_free)


# ---- policies ----------------------------------------------------------------

_AGG_CACHE = {}


def _agg_code(name):
    code = _AGG_CACHE.get(name)
    if code is None:
        out = ctypes.c_int()
        errors.check(lib.vigil_window_agg_parse(ctypes.byref(out), b(name)))
        code = _AGG_CACHE[name] = out.value
    return code


def _duration_ms(d):
    if isinstance(d, str):
        out = ctypes.c_int64()
        errors.check(lib.vigil_scalar_parse_duration(ctypes.byref(out), b(d)))
        return out.value
    return int(d)


class PolicyContext:
    """What evaluate gets besides the metric: window queries and desired state
    at the metric's event time. Valid only during the call."""

    __slots__ = ("_ctx",)

    def __init__(self, ptr):
        self._ctx = ptr

    def _p(self):
        if not self._ctx:
            raise errors.ClosedError("a policy context is valid only during evaluate",
                                     code=errors.ECLOSED)
        return self._ctx

    @property
    def series(self):
        """The series key of the metric evaluated."""
        return s(lib.vigil_policy_ctx_series(self._p()))

    @property
    def now_ms(self):
        """The event time: the metric's timestamp."""
        return lib.vigil_policy_ctx_now(self._p())

    @property
    def policy(self):
        """The name of the rule evaluated."""
        return s(lib.vigil_policy_ctx_policy(self._p()))

    def aggregate(self, agg, duration, series=None):
        """``agg`` (last mean min max sum count rate stddev p50 p90 p95 p99)
        over ``duration`` (ms, or "5m") before now, of ``series`` (None: the
        series evaluated). None when there is no sample."""
        out = ctypes.c_double()
        rc = lib.vigil_policy_ctx_aggregate(self._p(), b(series), _agg_code(agg),
                                            _duration_ms(duration), ctypes.byref(out))
        if rc == errors.ENOTFOUND:
            return None
        errors.check(rc)
        return out.value

    def mean(self, duration, series=None):
        return self.aggregate("mean", duration, series)

    def desired(self, target):
        """The desired state of ``target`` as JSON text, or None."""
        out = ctypes.c_char_p()
        rc = lib.vigil_policy_ctx_desired(self._p(), b(target), ctypes.byref(out))
        if rc == errors.ENOTFOUND:
            return None
        errors.check(rc)
        return s(out.value)

    def desired_number(self, target, field):
        out = ctypes.c_double()
        rc = lib.vigil_policy_ctx_desired_number(self._p(), b(target), b(field), ctypes.byref(out))
        if rc == errors.ENOTFOUND:
            return None
        errors.check(rc)
        return out.value


class Policy:
    """Base class of a policy type written in Python.

    ``name`` is the kind rules name (``kind: error_rate``); ``keys`` the
    type's own keys in the rule map. One instance is created per rule, with
    the rule's map (a ConfigMap, valid during __init__ only). The engine calls
    ``evaluate(metric, ctx)`` for each sample of the rule's metric whose tags
    match; it returns None or False (the condition does not hold), True (it
    holds: the rule's action and target), an ActionRequest (it holds: make
    this request; action None is the rule's, target may be a template such as
    "{{tags.service}}") or a Verdict. The engine runs the state machine
    (for, cooldown, budget, flap damping, verification) around it.

    evaluate runs with the engine's lock held, on the thread that ingests (a
    hub's evaluator thread): it must not call the engine or the hub.
    """

    name = None
    keys = ()

    def __init__(self, rule):
        self.rule = rule.to_dict()

    def evaluate(self, metric, ctx):
        raise NotImplementedError("%s.evaluate" % type(self).__name__)

    def close(self):
        """Called when the rule is dropped (engine freed, rule reloaded)."""


def _policy_create(state_pp, rule, payload):
    reg = _regs.get(payload)
    if reg is None:
        return lib.vigil_error_set(errors.ERROR, b"python policy type is gone")
    cm = ConfigMap(rule)
    try:
        inst = reg.factory(cm)
    except BaseException as e:
        return reg.fail(e, errors.EVALUE)
    finally:
        cm._node = None
    state_pp[0] = _put(inst, reg)
    return 0


def _policy_evaluate(state, metric_p, ctx, out_p):
    entry = _insts.get(state)
    if entry is None:
        return lib.vigil_error_set(errors.ERROR, b"python policy state is gone")
    inst, reg, _ = entry
    pctx = PolicyContext(ctx)
    try:
        r = inst.evaluate(Metric._from_c(metric_p.contents), pctx)
        out = out_p.contents
        keep = []
        value = None
        request = None
        if r is None or r is False:
            active = False
        elif r is True:
            active = True
        elif isinstance(r, ActionRequest):
            active, request = True, r
        elif isinstance(r, Verdict):
            active, value, request = r.active, r.value, r.request
        else:
            raise TypeError("evaluate returned %s; expected None, a bool, an ActionRequest or "
                            "a Verdict" % type(r).__name__)
        out.active = int(active)
        if value is not None:
            out.value = float(value)
        if request is not None:
            ver = out.request.version
            request._fill(out.request, keep)
            out.request.version = ver
            out.request.id = None
            out.request.policy = None
        entry[2] = keep  # valid until the next evaluate or destroy
        return 0
    except BaseException as e:
        return reg.fail(e)
    finally:
        pctx._ctx = None


def _state_destroy(state):
    _drop(state)


_policy_create_c = _lib.policy_create_cb(_policy_create)
_policy_evaluate_c = _lib.policy_evaluate_cb(_policy_evaluate)
_policy_destroy_c = _lib.policy_destroy_cb(_state_destroy)


class _Registry(Handle):
    _kind = None

    def __init__(self):
        p = ctypes.c_void_p()
        errors.check(self._new(ctypes.byref(p)))
        self._ptr = p.value
        self._regs = {}
        self._users = 0
        self._track()

    def __getitem__(self, name):
        return self._regs[name]

    def __contains__(self, name):
        return name in self._regs

    def _use(self):
        self._h
        self._users += 1

    def _unuse(self):
        self._users -= 1

    def close(self):
        if self._users > 0 and self._ptr:
            raise errors.StateError(
                "%s types: still used by %d object(s); close them first" % (self._kind, self._users),
                code=errors.EINVAL)
        super().close()

    def _add(self, cls, name, keys, fill):
        name = name or getattr(cls, "name", None)
        if not name:
            raise errors.InvalidError("%s type: a name is required" % self._kind,
                                      code=errors.EINVAL)
        if keys is None:
            keys = getattr(cls, "keys", ())
        reg = Registration(self._kind, name, cls, keys)
        t = fill(reg)
        t.version = 2
        t.name = b(name)
        t.payload = reg.id
        t.payload_free = _payload_free_c
        t.keys = reg._keys_c
        _regs[reg.id] = reg
        # On failure the registry has run payload_free already.
        errors.check(self._register(self._h, ctypes.byref(t)))
        self._regs[name] = reg
        return reg


class PolicyTypes(_Registry):
    """A registry of policy types (vigil_policy_registry). Register every type
    before handing it to a Hub or an Engine, which borrow it: close it after
    them."""

    _what = "policy types"
    _kind = "policy"
    _new = staticmethod(lib.vigil_policy_registry_new)
    _register = staticmethod(lib.vigil_policy_register)

    def _release(self, ptr):
        lib.vigil_policy_registry_free(ptr)

    def register(self, cls, name=None, keys=None):
        """Registers a Policy subclass (or any callable taking the rule's
        ConfigMap and returning an object with evaluate). Returns its
        Registration. Raises ExistsError for a taken or built-in kind,
        BadNameError for a malformed name."""

        def fill(_reg):
            t = _lib.vigil_policy_type()
            t.create = _policy_create_c
            t.evaluate = _policy_evaluate_c
            t.destroy = _policy_destroy_c
            return t

        return self._add(cls, name, keys, fill)


# ---- actions -----------------------------------------------------------------

ActionContext = collections.namedtuple("ActionContext", "action_name timeout_ms host base_dir state_dir")
ExecInfo = collections.namedtuple("ExecInfo", "deadline_ms timeout_ms")


class Action:
    """Base class of an action type written in Python.

    ``name`` is the type configured actions name (``type: scale``); ``keys``
    its own keys in the action's map. One instance per configured action,
    created with the action's map (ConfigMap, valid during __init__ only) and
    an ActionContext. The remediator checks the allowlists (targets, params)
    and its guards (cooldown, budget, rate, concurrency, approval) before
    ``execute(request, info)`` runs; ``validate(request)`` may refuse more
    (return False or raise PermissionError). execute returns None or True
    (succeeded), False (failed), a str (succeeded, that output) or an Outcome;
    ``info.deadline_ms`` is on CLOCK_MONOTONIC (time.monotonic() * 1000).

    validate and execute may run on several remediator threads at once.
    """

    name = None
    keys = ()

    def __init__(self, config, ctx):
        self.config = config.to_dict()
        self.ctx = ctx

    def validate(self, request):
        return True

    def execute(self, request, info):
        raise NotImplementedError("%s.execute" % type(self).__name__)

    def close(self):
        """Called when the configured action is dropped."""


def _action_create(state_pp, config, ctx_p):
    ctx = ctx_p.contents
    reg = _regs.get(ctx.type_payload)
    if reg is None:
        return lib.vigil_error_set(errors.ERROR, b"python action type is gone")
    cm = ConfigMap(config)
    try:
        actx = ActionContext(s(ctx.action_name), ctx.timeout_ms, s(ctx.host), s(ctx.base_dir),
                             s(ctx.state_dir))
        inst = reg.factory(cm, actx)
    except BaseException as e:
        return reg.fail(e, errors.EVALUE)
    finally:
        cm._node = None
    state_pp[0] = _put(inst, reg)
    return 0


def _action_validate(state, req_p):
    entry = _insts.get(state)
    if entry is None:
        return lib.vigil_error_set(errors.ERROR, b"python action state is gone")
    inst, reg, _ = entry
    try:
        ok = inst.validate(ActionRequest._from_c(req_p.contents))
        if ok is None or ok is True:
            return 0
        msg = ok if isinstance(ok, str) else "%s: refused by action type %s" % (
            s(req_p.contents.action), reg.name)
        return lib.vigil_error_set(errors.EPERM, b(msg))
    except BaseException as e:
        return reg.fail(e, errors.EPERM)


def _action_execute(state, req_p, exec_p, res_p):
    entry = _insts.get(state)
    if entry is None:
        return lib.vigil_error_set(errors.ERROR, b"python action state is gone")
    inst, reg, _ = entry
    try:
        ex = exec_p.contents
        r = inst.execute(ActionRequest._from_c(req_p.contents),
                         ExecInfo(ex.deadline_ms, ex.timeout_ms))
        res = res_p.contents
        if r is None or r is True:
            r = Outcome("succeeded")
        elif r is False:
            r = Outcome("failed", "failed")
        elif isinstance(r, str):
            r = Outcome("succeeded", output=r)
        elif not isinstance(r, Outcome):
            raise TypeError("execute returned %s; expected None, a bool, a str or an Outcome"
                            % type(r).__name__)
        res.status = STATUSES.index(r.status)
        res.exit_code = int(r.exit_code)
        if r.reason is not None:
            errors.check(lib.vigil_action_result_set_reason(res_p, b(r.reason)))
        if r.output is not None:
            raw = b(r.output)
            errors.check(lib.vigil_action_result_set_output(res_p, raw, len(raw)))
        return 0
    except BaseException as e:
        return reg.fail(e)


def _action_describe(state, req_p, buf):
    entry = _insts.get(state)
    if entry is None:
        return lib.vigil_error_set(errors.ERROR, b"python action state is gone")
    inst, reg, _ = entry
    try:
        raw = b(inst.describe(ActionRequest._from_c(req_p.contents)))
        return lib.vigil_action_buf_append(buf, raw, len(raw))
    except BaseException as e:
        return reg.fail(e)


_action_create_c = _lib.action_create_cb(_action_create)
_action_validate_c = _lib.action_validate_cb(_action_validate)
_action_execute_c = _lib.action_execute_cb(_action_execute)
_action_destroy_c = _lib.action_destroy_cb(_state_destroy)
_action_describe_c = _lib.action_describe_cb(_action_describe)


class ActionTypes(_Registry):
    """A registry of action types (vigil_action_registry, types only). Hand it
    to a Remediator (action_types=), which borrows it: close it after."""

    _what = "action types"
    _kind = "action"
    _register = staticmethod(lib.vigil_action_register)

    @staticmethod
    def _new(out):
        return lib.vigil_action_registry_new(out, None)

    def _release(self, ptr):
        lib.vigil_action_registry_free(ptr)

    def register(self, cls, name=None, keys=None):
        """Registers an Action subclass (or a callable taking (ConfigMap,
        ActionContext)). Returns its Registration."""

        def fill(_reg):
            t = _lib.vigil_action_type()
            t.create = _action_create_c
            t.validate = _action_validate_c
            t.execute = _action_execute_c
            t.destroy = _action_destroy_c
            if callable(getattr(cls, "describe", None)):
                t.describe = _action_describe_c
            return t

        return self._add(cls, name, keys, fill)


# ---- collectors --------------------------------------------------------------

CollectorContext = collections.namedtuple("CollectorContext", "name interval_ms base_dir")


class Collector:
    """Base class of a collector type written in Python.

    ``name`` is the type `collectors:` entries name (``type: queue_depth``);
    ``keys`` its own keys. One instance per entry, created with the entry's
    map (ConfigMap, valid during __init__ only) and a CollectorContext.
    ``collect(now_ms)`` returns an iterable of samples: Metric objects, or
    tuples (name, value) / (name, value, tags); a tuple's timestamp is now_ms.
    The agent adds its host and global tags. An exception fails the
    collection: the agent records a vigil_collector_error sample carrying
    its text and backs off.
    """

    name = None
    keys = ()

    def __init__(self, config, ctx):
        self.config = config.to_dict()
        self.ctx = ctx

    def collect(self, now_ms):
        raise NotImplementedError("%s.collect" % type(self).__name__)

    def close(self):
        """Called when the collector is freed."""


def _collector_create(state_pp, config, ctx_p):
    ctx = ctx_p.contents
    reg = _regs.get(ctx.type_payload)
    if reg is None:
        return lib.vigil_error_set(errors.ERROR, b"python collector type is gone")
    cm = ConfigMap(config)
    try:
        inst = reg.factory(cm, CollectorContext(s(ctx.name), ctx.interval_ms, s(ctx.base_dir)))
    except BaseException as e:
        return reg.fail(e, errors.EVALUE)
    finally:
        cm._node = None
    state_pp[0] = _put(inst, reg)
    return 0


def _collector_collect(state, batch_p, now_ms):
    entry = _insts.get(state)
    if entry is None:
        return lib.vigil_error_set(errors.ERROR, b"python collector state is gone")
    inst, reg, _ = entry
    batch = Batch._borrow(batch_p)
    try:
        for item in inst.collect(now_ms) or ():
            if not isinstance(item, Metric):
                name, value = item[0], item[1]
                tags = item[2] if len(item) > 2 else None
                item = Metric(name, value, now_ms, tags)
            batch.add(item)
        return 0
    except BaseException as e:
        return reg.fail(e)
    finally:
        batch._ptr = None


_collector_create_c = _lib.collector_create_cb(_collector_create)
_collector_collect_c = _lib.collector_collect_cb(_collector_collect)
_collector_destroy_c = _lib.collector_destroy_cb(_state_destroy)


class CollectorTypes(_Registry):
    """A registry of collector types (vigil_collector_registry). Hand it to an
    Agent (collector_types=), which borrows it: close it after."""

    _what = "collector types"
    _kind = "collector"
    _new = staticmethod(lib.vigil_collector_registry_new)
    _register = staticmethod(lib.vigil_collector_register)

    def _release(self, ptr):
        lib.vigil_collector_registry_free(ptr)

    def register(self, cls, name=None, keys=None):
        """Registers a Collector subclass (or a callable taking (ConfigMap,
        CollectorContext)). Returns its Registration."""

        def fill(_reg):
            t = _lib.vigil_collector_type()
            t.create = _collector_create_c
            t.collect = _collector_collect_c
            t.destroy = _collector_destroy_c
            return t

        return self._add(cls, name, keys, fill)
