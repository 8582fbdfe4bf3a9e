import time
import threading

import pytest

import vigil
from conftest import T0


def wait_until(predicate, timeout=10.0):
    """Polls @predicate until it returns a true value (returned) or @timeout
    seconds pass (then its last value is returned, for the assertion to show)."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(0.005)
        value = predicate()
    return value


class ErrorRate(vigil.Policy):
    name = "py_error_rate"
    keys = ("limit", "over")

    def __init__(self, rule):
        super().__init__(rule)
        self.limit = rule.get_float("limit", 0.05)
        self.over_ms = rule.get_duration_ms("over", 5 * 60 * 1000)
        if self.over_ms <= 0:
            rule.fail("over", "expected a duration above 0", vigil.errors.ERANGE)
        self.threads = set()

    def evaluate(self, metric, ctx):
        self.threads.add(threading.get_ident())
        mean = ctx.mean(self.over_ms)
        if mean is not None and mean > self.limit:
            return vigil.ActionRequest(action="scale_up", target="{{tags.service}}",
                                       reason="error_rate %.3f above %.2f" % (mean, self.limit))
        return None


RULES = """
policies:
  - name: checkout_errors
    kind: py_error_rate
    metric: error_rate
    match: {service: "*"}
    action: restart
    limit: 0.05
    over: 5m
    cooldown: 5m
"""


def rising(service="checkout", n=7, start=0.01, step=0.02):
    return [vigil.Metric("error_rate", start + i * step, T0 + i * 60000,
                         {"service": service, "host": "h1"}) for i in range(n)]


def test_python_policy_fires_an_action_request_through_the_engine():
    now = [T0 + 6 * 60000]
    requests, decisions = [], []
    with vigil.PolicyTypes() as types:
        reg = types.register(ErrorRate)
        store = vigil.Store.open("sqlite::memory:")
        eng = vigil.Engine(store, RULES, policy_types=types, clock=lambda: now[0],
                           on_request=requests.append, on_decision=decisions.append,
                           act_within_ms=600000, log_level="warn")
        eng.ingest(rising())
        assert len(requests) == 1
        req = requests[0].request
        assert req.action == "scale_up"
        assert req.target == "checkout"
        assert req.reason.startswith("error_rate 0.0") and req.reason.endswith("above 0.05")
        assert req.policy == "checkout_errors"
        assert req.id
        assert requests[0].series == 'error_rate{host="h1",service="checkout"}'
        fired = [d for d in decisions if d.decision == "fired"]
        assert len(fired) == 1 and fired[0].target == "checkout" and fired[0].action == "scale_up"
        st = eng.stats()
        assert st.evaluations == 7 and st.requests == 1 and st.policy_errors == 0
        assert reg.instances == 1 and reg.errors == 0
        with pytest.raises(vigil.StateError):
            types.close()  # the engine still uses it
        eng.close()
        assert reg.instances == 0
        store.close()


def test_policy_in_a_hub_runs_on_the_evaluator_thread(tmp_path):
    with vigil.PolicyTypes() as types:
        types.register(ErrorRate)
        hub = vigil.Hub(store_url="sqlite://%s" % (tmp_path / "hub.db"), policies=RULES,
                        policy_types=types, clock=lambda: T0 + 6 * 60000, log_level="error")
        with hub:
            hub.start()
            hub.evaluate(vigil.Batch(rising(), agent="h1", batch_id="b1"))
            # the request is recorded, then failed (no remediator), after the engine has
            # counted the batch's metrics: wait for that final state, not for the count
            acts = wait_until(lambda: [a for a in hub.actions() if a.status != "pending"])
            assert len(acts) == 1
            a = acts[0]
            assert (a.action, a.target, a.policy, a.status) == ("scale_up", "checkout",
                                                              "checkout_errors", "failed")
            assert a.reason.endswith("above 0.05")
            assert a.result_reason == "no_remediator"
            assert [d.decision for d in hub.decisions() if d.policy == "checkout_errors"][:1] == [
                "fired"]
            assert hub.policies()[0]["kind"] == "py_error_rate"
            stored = hub.store.query("error_rate")
            assert [p.value for p in stored] == [m.value for m in rising()]


def test_bad_rule_is_located_in_the_yaml():
    with vigil.PolicyTypes() as types:
        types.register(ErrorRate)
        with vigil.Store.open("sqlite::memory:") as store:
            with pytest.raises(vigil.RangeError) as ei:
                vigil.Engine(store, "policies:\n  - {name: b, kind: py_error_rate, "
                             "metric: error_rate,\n     action: x, over: 0s}\n",
                             policy_types=types)
            assert ei.value.code == vigil.errors.ERANGE
            assert "<policies>:3:" in ei.value.message
            assert "expected a duration above 0" in ei.value.message
            with pytest.raises(vigil.UnknownKeyError) as ei:
                vigil.Engine(store, "- {name: b, kind: py_error_rate, metric: m, action: x, "
                             "limt: 1}\n", policy_types=types)
            assert "<policies>:1:" in ei.value.message and "limt" in ei.value.message
            assert types["py_error_rate"].instances == 0


class Exploding(vigil.Policy):
    name = "exploding"

    def evaluate(self, metric, ctx):
        if metric.value > 1:
            raise ZeroDivisionError("division by zero in my policy")
        return metric.value > 0.5


def test_exception_in_evaluate_is_the_policy_error():
    logs = []
    requests = []
    with vigil.PolicyTypes() as types:
        reg = types.register(Exploding)
        with vigil.Store.open("sqlite::memory:") as store:
            with vigil.Engine(store, "- {name: boom, kind: exploding, metric: m, action: a, "
                              "target: t}\n", policy_types=types, logger=logs.append,
                              clock=lambda: T0, on_request=requests.append) as eng:
                eng.ingest([vigil.Metric("m", 5, T0), vigil.Metric("m", 0.9, T0 + 1)])
                st = eng.stats()
                assert st.policy_errors == 1
                assert st.evaluations == 2
                assert len(requests) == 1  # the second sample still fired
        assert reg.errors == 1
        assert reg.last_error == ("policy exploding: ZeroDivisionError: division by zero in my "
                                  "policy")
        assert any("division by zero in my policy" in (r.message + " " + (r.fields or ""))
                   for r in logs)


def test_register_errors():
    with vigil.PolicyTypes() as types:
        types.register(ErrorRate)
        with pytest.raises(vigil.ExistsError) as ei:
            types.register(ErrorRate)
        assert ei.value.message == 'policy type "py_error_rate" is already registered'
        with pytest.raises(vigil.ExistsError) as ei:
            types.register(ErrorRate, name="threshold")
        assert "built in" in ei.value.message
        with pytest.raises(vigil.BadNameError):
            types.register(ErrorRate, name="Bad-Name")


def test_verdict_and_desired_state():
    seen = []

    class Desired(vigil.Policy):
        name = "replicas_low"

        def evaluate(self, metric, ctx):
            want = ctx.desired_number("api", "replicas")
            seen.append((ctx.policy, ctx.now_ms, ctx.series, want, ctx.desired("nope")))
            return vigil.Verdict(metric.value < want, value=metric.value,
                                 request=vigil.ActionRequest(params={"count": "%d" % want}))

    requests = []
    with vigil.PolicyTypes() as types:
        types.register(Desired)
        with vigil.Store.open("sqlite::memory:") as store:
            with vigil.Engine(store, "- {name: r, kind: replicas_low, metric: replicas, "
                              "action: scale, target: api, params: {count: x}}\n",
                              policy_types=types, clock=lambda: T0,
                              on_request=requests.append) as eng:
                eng.set_desired("api", {"replicas": 3})
                eng.ingest([vigil.Metric("replicas", 2, T0)])
    assert seen == [("r", T0, "replicas", 3.0, None)]
    assert len(requests) == 1
    assert requests[0].request.action == "scale" and requests[0].request.target == "api"


def test_exception_on_the_hub_evaluator_thread_keeps_the_hub_running(tmp_path):
    with vigil.PolicyTypes() as types:
        reg = types.register(Exploding)
        with vigil.Hub(store_url="sqlite://%s" % (tmp_path / "h.db"),
                       policies="- {name: boom, kind: exploding, metric: m, action: a, "
                       "target: t}\n", policy_types=types, clock=lambda: T0,
                       log_level="off") as hub:
            hub.start()
            hub.evaluate([vigil.Metric("m", 5, T0)])
            assert hub.engine_stats().policy_errors == 1
            assert reg.errors == 1 and "ZeroDivisionError" in reg.last_error
            hub.evaluate([vigil.Metric("m", 0.9, T0 + 1)])
            wait_until(lambda: hub.actions())
            assert [(a.action, a.target) for a in hub.actions()] == [("a", "t")]
            assert hub.stats().samples == 2


def test_results_close_the_loop():
    requests = []
    decisions = []
    with vigil.Store.open("sqlite::memory:") as store:
        with vigil.Engine(store, "- {name: hot, kind: threshold, metric: temp, op: '>', "
                          "threshold: 80, action: cool, target: rack1}\n", clock=lambda: T0,
                          on_request=requests.append, on_decision=decisions.append,
                          log_level="off") as eng:
            eng.ingest([vigil.Metric("temp", 90, T0)])
            rid = requests[0].request.id
            eng.action_result(rid, "failed", reason="exit_code", output="fan stuck")
            assert [d.decision for d in decisions] == ["fired", "action_failed"]
            with pytest.raises(vigil.NotFoundError):
                eng.action_result(rid, "succeeded")
            with pytest.raises(vigil.BadValueError):
                eng.action_result(rid, "great")


class NulTarget(vigil.Policy):
    name = "nul_target"

    def evaluate(self, metric, ctx):
        return vigil.ActionRequest(action="scale_up", target="checkout\0payments", reason="r")


def test_nul_byte_in_a_request_is_the_policy_error_not_a_truncated_target():
    # ctypes would pass "checkout\0payments" as "checkout": a request for
    # another target than the one the policy named
    requests = []
    with vigil.PolicyTypes() as types:
        reg = types.register(NulTarget)
        with vigil.Store.open("sqlite::memory:") as store:
            with vigil.Engine(store, "- {name: nul, kind: nul_target, metric: m, action: a, "
                              "target: t}\n", policy_types=types, logger=lambda r: None,
                              clock=lambda: T0, on_request=requests.append) as eng:
                eng.ingest([vigil.Metric("m", 1, T0)])
                assert eng.stats().policy_errors == 1
                assert requests == []
        assert reg.errors == 1
        assert reg.last_error.startswith("policy nul_target: ValueError: a NUL byte cannot be "
                                         "passed as a C string")
    with pytest.raises(ValueError):
        vigil.Metric("cpu\0x", 1.0, T0).series_key()
