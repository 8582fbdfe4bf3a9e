import threading
import time

import pytest

import vigil
from conftest import T0

KEY = b"0123456789abcdef0123456789abcdef"


class Scale(vigil.Action):
    name = "py_scale"
    keys = ("step",)
    calls = []
    lock = threading.Lock()

    def __init__(self, config, ctx):
        super().__init__(config, ctx)
        self.step = config.get_int("step", 1)

    def validate(self, request):
        if request.params.get("count") == "0":
            raise PermissionError("py_scale: count 0 would stop the service")
        return True

    def execute(self, request, info):
        with Scale.lock:
            Scale.calls.append((request.action, request.target, dict(request.params),
                                request.reason, threading.get_ident()))
        if request.target == "explode":
            raise RuntimeError("the orchestrator is on fire")
        if request.target == "slowpoke":
            return vigil.Outcome("failed", reason="exit_code", output="scaler said no",
                                 exit_code=3)
        return "scaled %s by %d" % (request.target, self.step)

    def describe(self, request):
        return "would scale %s by %d" % (request.target, self.step)


ACTIONS = """
actions:
  - name: scale_up
    type: py_scale
    targets: "checkout|payments|explode|slowpoke"
    params: {count: "[0-9]+"}
    step: 2
"""


@pytest.fixture
def types():
    Scale.calls = []
    with vigil.ActionTypes() as t:
        t.register(Scale)
        yield t


def remediator(tmp_path, types, **kw):
    opts = dict(store_url="sqlite://%s" % (tmp_path / "rem.db"), audit_key=KEY, actions=ACTIONS,
                action_types=types, cooldown_ms=60000, max_attempts=2, window_ms=600000,
                rate_per_s=vigil.DISABLED, log_level="error")
    opts.update(kw)
    return vigil.Remediator(**opts)


def test_python_action_runs_with_the_guards_applied(tmp_path, types):
    with remediator(tmp_path, types) as rem:
        rem.start()
        ok = rem.execute("scale_up", "checkout", {"count": "3"}, reason="errors high")
        assert ok.status == "succeeded"
        assert ok.output == "scaled checkout by 2"
        assert ok.audit_seq > 0 and len(ok.audit_mac) == 64
        assert len(Scale.calls) == 1
        action, target, params, reason, tid = Scale.calls[0]
        assert (action, target, params, reason) == ("scale_up", "checkout", {"count": "3"},
                                                    "errors high")
        assert tid != threading.get_ident()  # a remediator worker thread called it

        # allowlist: a target the pattern does not match never reaches Python
        refused = rem.execute("scale_up", "billing", {"count": "3"})
        assert (refused.status, refused.reason) == ("refused", "not_allowed")
        assert 'target "billing"' in refused.output
        bad_param = rem.execute("scale_up", "checkout", {"count": "3; rm -rf /"})
        assert (bad_param.status, bad_param.reason) == ("refused", "not_allowed")
        # the type's own validate
        v = rem.execute("scale_up", "payments", {"count": "0"})
        assert (v.status, v.reason) == ("refused", "not_allowed")
        assert "count 0 would stop the service" in v.output
        assert len(Scale.calls) == 1

        # cooldown: the same (action, target) again at once
        again = rem.execute("scale_up", "checkout", {"count": "3"})
        assert (again.status, again.reason) == ("refused", "cooldown")
        assert again.retry_after_ms > 0
        assert len(Scale.calls) == 1

        # exactly once: the same id is answered with its recorded result
        first = rem.execute("scale_up", "payments", {"count": "1"}, id="req-1")
        second = rem.execute("scale_up", "payments", {"count": "1"}, id="req-1")
        assert first.status == "succeeded" and second.status == "succeeded"
        assert len(Scale.calls) == 2

        report = rem.audit.verify()
        assert report.ok and report.entries >= 10 and report.broken_at == 0
        seq, mac = rem.audit.head()
        assert rem.audit.verify(seq, mac).ok
        bad = rem.audit.verify(seq, "0" * 64)
        assert not bad.ok and bad.reason == "checkpoint mac differs at row %d" % seq


def test_budget_quarantines_a_repeating_target(tmp_path, types):
    now = [T0]
    with remediator(tmp_path, types, cooldown_ms=vigil.DISABLED, max_attempts=2,
                    clock=lambda: now[0]) as rem:
        rem.start()
        for i in range(2):
            now[0] += 1000
            assert rem.execute("scale_up", "checkout", {"count": "1"}).status == "succeeded"
        now[0] += 1000
        q = rem.execute("scale_up", "checkout", {"count": "1"})
        assert (q.status, q.reason) == ("refused", "quarantined")
        assert len(Scale.calls) == 2
        assert rem.release("checkout") is True
        assert rem.execute("scale_up", "checkout", {"count": "1"}).status == "succeeded"


def test_exception_in_execute_is_the_action_error(tmp_path, types):
    with remediator(tmp_path, types) as rem:
        rem.start()
        r = rem.execute("scale_up", "explode", {"count": "1"})
        assert (r.status, r.reason) == ("failed", "internal_error")
        assert r.output == "action py_scale: RuntimeError: the orchestrator is on fire"
        assert types["py_scale"].errors == 1
        f = rem.execute("scale_up", "slowpoke", {"count": "1"})
        assert (f.status, f.reason, f.output, f.exit_code) == ("failed", "exit_code",
                                                              "scaler said no", 3)
        # the process is alive and the remediator still works
        assert rem.execute("scale_up", "payments", {"count": "1"}).status == "succeeded"
        dry = rem.execute("scale_up", "payments", {"count": "2"}, dry_run=True)
        assert dry.status == "dry_run" and "would scale payments by 2" in dry.output
        assert rem.audit.verify().ok


def test_unknown_key_of_an_action_is_located(tmp_path, types):
    with pytest.raises(vigil.UnknownKeyError) as ei:
        remediator(tmp_path, types, actions="actions:\n  - {name: a, type: py_scale, stepp: 1}\n")
    assert ei.value.message.startswith("<actions>:2:")
    assert "stepp" in ei.value.message
    with pytest.raises(vigil.BadValueError) as ei:
        remediator(tmp_path, types, actions="- {name: a, type: py_scale, step: many}\n")
    assert ei.value.message.startswith("<actions>:1:")


POLICY = """
policies:
  - name: too_many_errors
    kind: threshold
    metric: error_rate
    match: {service: "*"}
    op: ">"
    threshold: 0.05
    action: scale_up
    target: "{{tags.service}}"
    params: {count: "2"}
"""


def test_hub_policy_to_python_action_in_process(tmp_path, types):
    with vigil.Hub(store_url="sqlite://%s" % (tmp_path / "hub.db"), policies=POLICY,
                   log_level="error") as hub:
        rem = hub.attach_remediator(store_url="sqlite://%s" % (tmp_path / "rem.db"),
                                    audit_key=KEY, actions=ACTIONS, action_types=types,
                                    rate_per_s=vigil.DISABLED, log_level="error")
        hub.start()
        ts = int(time.time() * 1000)
        hub.evaluate([vigil.Metric("error_rate", 0.2, ts, {"service": "checkout"})])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            acts = hub.actions()
            if acts and acts[0].status != "pending":
                break
            time.sleep(0.01)
        assert len(acts) == 1
        assert (acts[0].action, acts[0].target, acts[0].status, acts[0].output) == (
            "scale_up", "checkout", "succeeded", "scaled checkout by 2")
        assert Scale.calls[0][:3] == ("scale_up", "checkout", {"count": "2"})
        assert rem.audit.verify().ok


def test_audit_chain_on_a_store(tmp_path):
    url = "sqlite://%s?synchronous=full" % (tmp_path / "audit.db")
    with vigil.Store.open(url) as store:
        with vigil.Audit(store, KEY) as audit:
            assert audit.head() == (0, "")
            seq, mac = audit.append("request", "a-1", '{"target":"checkout"}')
            assert seq == 1 and len(mac) == 64
            audit.append("result", "a-1", '{"status":"succeeded"}')
            assert audit.verify() == vigil.AuditReport(True, 2, 0, "")
            assert audit.verify(seq, mac).ok
            with pytest.raises(vigil.JSONError):
                audit.append("request", None, "{not json")
            with pytest.raises(vigil.InvalidError):
                audit.verify(1, "zz")
        with vigil.Audit(store, b"another key, 16+ bytes") as wrong:
            r = wrong.verify()
            assert (r.ok, r.broken_at, r.reason) == (False, 1, "mac mismatch")
        with pytest.raises(vigil.LimitError):
            vigil.Audit(store, b"short")


def test_actions_run_concurrently_on_remediator_threads(tmp_path):
    seen = []
    lock = threading.Lock()
    gate = threading.Barrier(3, timeout=20)

    class Slow(vigil.Action):
        name = "py_slow"

        def execute(self, request, info):
            gate.wait()  # three workers inside Python at once, or this times out
            with lock:
                seen.append((request.target, threading.get_ident()))
            return "ok"

    with vigil.ActionTypes() as types:
        types.register(Slow)
        with vigil.Remediator(store_url="sqlite://%s" % (tmp_path / "r.db"), audit_key=KEY,
                              actions="- {name: slow, type: py_slow, targets: 't[0-9]+'}\n",
                              action_types=types, max_concurrent=3, rate_per_s=vigil.DISABLED,
                              log_level="error") as rem:
            rem.start()
            results = []
            pend = [rem.submit("slow", "t%d" % i, callback=results.append) for i in range(3)]
            got = [p.wait(30) for p in pend]
            assert sorted(r.status for r in got) == ["succeeded"] * 3
            assert sorted(t for t, _ in seen) == ["t0", "t1", "t2"]
            assert len({tid for _, tid in seen}) == 3
            assert threading.get_ident() not in {tid for _, tid in seen}


def test_manual_request_through_the_hub(tmp_path, types):
    with vigil.Hub(store_url="sqlite://%s" % (tmp_path / "hub.db"), log_level="error") as hub:
        hub.attach_remediator(store_url="sqlite://%s" % (tmp_path / "rem.db"), audit_key=KEY,
                              actions=ACTIONS, action_types=types, rate_per_s=vigil.DISABLED,
                              log_level="error")
        hub.start()
        rid = hub.request_action("scale_up", "payments", {"count": "4"}, reason="by hand")
        assert rid.startswith("manual-")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            acts = hub.actions()
            if acts and acts[0].status != "pending":
                break
            time.sleep(0.01)
        assert [(a.id, a.action, a.target, a.reason, a.status) for a in acts] == [
            (rid, "scale_up", "payments", "by hand", "succeeded")]
        with pytest.raises(vigil.InvalidError):
            hub.request_action("", "payments")


def test_binary_audit_key_with_nul_bytes(tmp_path):
    # an audit key is binary (os.urandom): NUL bytes are key material, passed
    # with its length, never refused as a C string would be
    key = bytes(range(32))
    with vigil.Store.open("sqlite://%s" % (tmp_path / "nul.db")) as store:
        with vigil.Audit(store, key) as audit:
            audit.append("request", "a-1", '{"target":"checkout"}')
            assert audit.verify() == vigil.AuditReport(True, 1, 0, "")
    rem = vigil.Remediator(store_url="sqlite://%s" % (tmp_path / "rem.db"), audit_key=key,
                           actions="actions: []\n")
    rem.close()
