#!/usr/bin/env python3
"""error_rate_policy - the seed guide's ErrorRatePolicy, written in Python and
plugged into a running hub.

    python3 error_rate_policy.py            (VIGIL_LIBRARY or pkg-config finds libvigil)

The policy type is registered on a PolicyTypes registry handed to a hub that
runs in this process: its store is a SQLite file in a temporary directory, it
serves its HTTP API on a loopback port, and an in-process remediator carries
out its requests with a Python action type (`scale_up`, which only records
what it would scale) behind the remediator's guards and audit chain.

Six minutes of `error_rate` samples for service "checkout", climbing from 1%
to 13%, are POSTed to the hub's /v1/ingest over HTTP, as an agent would. The
hub commits them and its evaluator thread calls ErrorRatePolicy.evaluate (the
C engine calling Python); once the mean over 5 minutes passes 5% the policy
asks for `scale_up` of "checkout"; the engine's cooldown keeps it to one
request, the remediator runs the Python action. The decisions and the action
ledger are read back over HTTP.

Exit status 0 when exactly one scale_up for "checkout" succeeded and the
audit chain verifies, 1 otherwise.
"""

import json
import os
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import vigil  # noqa: E402


class ErrorRatePolicy(vigil.Policy):
    """The seed guide's policy: mean error_rate over 5 minutes above 0.05
    asks to scale the series' service up."""

    name = "high_error_rate"

    def evaluate(self, metric, ctx):
        if metric.name != "error_rate":
            return None
        window = ctx.mean("5m")  # the mean of the last 5 minutes of this series
        if window is not None and window > 0.05:
            return vigil.ActionRequest(
                target=metric.tags.get("service"),
                action="scale_up",
                reason="error_rate_threshold",
            )
        return None


class ScaleUp(vigil.Action):
    """Stands in for an orchestrator call: records what it scales."""

    name = "scale_service"
    scaled = []

    def execute(self, request, info):
        ScaleUp.scaled.append(request.target)
        return "scaled %s up by one replica" % request.target


RULES = """
policies:
  - name: checkout_errors
    kind: high_error_rate
    metric: error_rate
    match: {service: "*"}
    action: scale_up
    cooldown: 5m
"""

ACTIONS = """
actions:
  - name: scale_up
    type: scale_service
    targets: "[a-z][a-z0-9-]*"
"""


def http(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, json.loads(resp.read() or b"null")


def main():
    now = int(time.time() * 1000)
    start = now - 6 * 60000
    with tempfile.TemporaryDirectory(prefix="vigil-example-") as tmp, \
            vigil.PolicyTypes() as policy_types, vigil.ActionTypes() as action_types:
        policy_types.register(ErrorRatePolicy)
        action_types.register(ScaleUp)
        hub = vigil.Hub(store_url="sqlite://%s/hub.db" % tmp, policies=RULES,
                        policy_types=policy_types, clock=lambda: now, act_within_ms=10 * 60000,
                        log_level="warn")
        with hub:
            rem = hub.attach_remediator(store_url="sqlite://%s/remediator.db" % tmp,
                                        audit_key=os.urandom(32), actions=ACTIONS,
                                        action_types=action_types, clock=lambda: now,
                                        log_level="warn")
            hub.start()
            server = hub.serve("127.0.0.1:0")
            print("hub serving on %s" % server.url)

            metrics = [{"name": "error_rate", "value": round(0.01 + 0.02 * i, 4),
                        "ts": start + i * 60000, "tags": {"service": "checkout", "host": "web-1"}}
                       for i in range(7)]
            status, body = http("POST", server.url + "/v1/ingest",
                                {"agent": "web-1", "batch_id": "example-1", "metrics": metrics})
            print("POST /v1/ingest -> %d %s" % (status, json.dumps(body)))

            deadline = time.monotonic() + 20
            actions = []
            while time.monotonic() < deadline:
                _, body = http("GET", server.url + "/v1/actions")
                actions = body["actions"]
                if actions and all(a["status"] != "pending" for a in actions):
                    break
                time.sleep(0.02)
            _, body = http("GET", server.url + "/v1/decisions")
            for d in body["decisions"]:
                print("decision: %s policy=%s target=%s action=%s reason=%s"
                      % (d["decision"], d["policy"], d["target"], d["action"], d["reason"]))
            for a in actions:
                print("action: %s %s -> %s (%s)" % (a["action"], a["target"], a["status"],
                                                   a["output"]))
            report = rem.audit.verify()
            print("audit: ok=%s entries=%d" % (report.ok, report.entries))
            ok = (len(actions) == 1 and actions[0]["action"] == "scale_up"
                  and actions[0]["target"] == "checkout" and actions[0]["status"] == "succeeded"
                  and actions[0]["reason"] == "error_rate_threshold"
                  and ScaleUp.scaled == ["checkout"] and report.ok)
            print("ok" if ok else "FAILED")
            return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
