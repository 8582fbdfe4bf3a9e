#!/usr/bin/env python3
"""bench_policy - what a policy written in Python costs per evaluation.

The same batches (10 batches of 1,000 `error_rate` samples over 100 services,
one engine on an in-memory store, the engine's own windows) go through
vigil_engine_ingest() twice:
  - with a rule of a Python policy type (the C engine calls evaluate through
    ctypes: metric conversion, the context, the verdict), and
  - with a C built-in threshold rule (mean over 5m > 0.05) doing the same
    judgement.
Prints ns per evaluation of each (engine time / evaluations, best of 3
rounds) and the difference: the Python callback's overhead. Never fails on
time.

    VIGIL_LIBRARY=build/shared/lib/libvigil.so.0 python3 bindings/python/bench_policy.py
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import vigil  # noqa: E402

T0 = 1732650000000
BATCHES, PER_BATCH, SERVICES, ROUNDS = 10, 1000, 100, 3


class PyErrorRate(vigil.Policy):
    name = "py_error_rate"

    def evaluate(self, metric, ctx):
        mean = ctx.mean(300000)
        return mean is not None and mean > 0.05


PY_RULE = """
- {name: py, kind: py_error_rate, metric: error_rate, match: {service: "*"}, action: scale_up,
   target: "{{tags.service}}", cooldown: 1h}
"""
C_RULE = """
- {name: c, kind: threshold, metric: error_rate, match: {service: "*"}, window: 5m,
   aggregate: mean, op: ">", threshold: 0.05, action: scale_up, target: "{{tags.service}}",
   cooldown: 1h}
"""


def batches():
    out = []
    for b in range(BATCHES):
        ms = []
        for i in range(PER_BATCH):
            n = b * PER_BATCH + i
            ms.append(vigil.Metric("error_rate", ((n * 7919) % 100) / 1000.0, T0 + n * 10,
                                   {"service": "svc-%d" % (n % SERVICES)}))
        out.append(vigil.Batch(ms))
    return out


def run(rules, types, data):
    best = None
    for _ in range(ROUNDS):
        with vigil.Store.open("sqlite::memory:") as store:
            with vigil.Engine(store, rules, policy_types=types,
                              clock=lambda: T0 + BATCHES * PER_BATCH * 10,
                              act_within_ms=86400000, log_level="error") as eng:
                t = time.perf_counter_ns()
                for b in data:
                    eng.ingest(b)
                elapsed = time.perf_counter_ns() - t
                evals = eng.stats().evaluations
        per = elapsed / evals
        best = per if best is None else min(best, per)
    return best, evals


def main():
    data = batches()
    with vigil.PolicyTypes() as types:
        types.register(PyErrorRate)
        py_ns, py_evals = run(PY_RULE, types, data)
        c_ns, c_evals = run(C_RULE, types, data)
    for b in data:
        b.close()
    print("bench_policy: %d evaluations per run, best of %d" % (py_evals, ROUNDS))
    print("  python policy      %8.0f ns/eval" % py_ns)
    print("  C threshold rule   %8.0f ns/eval" % c_ns)
    print("  python overhead    %8.0f ns/eval" % (py_ns - c_ns))
    assert py_evals == c_evals == BATCHES * PER_BATCH
    return 0


if __name__ == "__main__":
    sys.exit(main())
