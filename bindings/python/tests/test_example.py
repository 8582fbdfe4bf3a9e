import os
import subprocess
import sys

from conftest import PKG


def test_error_rate_policy_example_runs_to_completion():
    env = dict(os.environ)
    r = subprocess.run([sys.executable, os.path.join(PKG, "examples", "error_rate_policy.py")],
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    out = r.stdout.decode()
    assert r.returncode == 0, out + r.stderr.decode()
    assert "POST /v1/ingest -> 202" in out
    assert ("decision: fired policy=checkout_errors target=checkout action=scale_up "
            "reason=error_rate_threshold") in out
    assert "action: scale_up checkout -> succeeded (scaled checkout up by one replica)" in out
    assert out.rstrip().endswith("ok")
