import os
import subprocess
import sys
import time

import pytest

import vigil
from vigil import _lib, errors
from conftest import PKG, ROOT


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_bad_config_file_raises_its_class_with_file_and_line(tmp_path):
    path = write(tmp_path, "collector.yaml",
                 "listen: 127.0.0.1:0\nstore: sqlite://%s/h.db\nretention: 14 days\n" % tmp_path)
    with pytest.raises(vigil.BadValueError) as ei:
        vigil.Hub.from_config(path)
    e = ei.value
    assert e.code == errors.EVALUE
    assert isinstance(e, vigil.InvalidArgumentError) and isinstance(e, ValueError)
    assert e.message.startswith("%s:3:12: retention:" % path)
    assert (e.file, e.line, e.column) == (path, 3, 12)
    assert "(invalid value)" in str(e)


def test_unknown_key_and_bad_yaml_and_unknown_kind(tmp_path):
    path = write(tmp_path, "collector.yaml", "listen: 127.0.0.1:0\nretension: 14d\n")
    with pytest.raises(vigil.UnknownKeyError) as ei:
        vigil.Hub.from_config(path)
    assert isinstance(ei.value, vigil.ConfigError)
    assert ei.value.message.startswith("%s:2:1:" % path) and "retension" in ei.value.message

    path = write(tmp_path, "broken.yaml", "listen: [127.0.0.1\n")
    with pytest.raises(vigil.YAMLError) as ei:
        vigil.Hub.from_config(path)
    assert ei.value.code == errors.EYAML and ei.value.file == path and ei.value.line >= 1

    text = ("store: sqlite://%s/h.db\npolicies:\n  - {name: p, kind: py_nope, metric: m, "
            "action: a}\n" % tmp_path)
    with pytest.raises(vigil.UnsupportedError) as ei:
        vigil.Hub.from_config(text=text, name="collector.yaml")
    assert ei.value.message.startswith("collector.yaml:3:")
    assert 'unknown kind "py_nope"' in ei.value.message

    with pytest.raises(vigil.VigilIOError) as ei:
        vigil.Hub.from_config(str(tmp_path / "missing.yaml"))
    assert isinstance(ei.value, vigil.StorageError)
    assert ei.value.message.endswith("missing.yaml: cannot open: No such file or directory")


def test_hub_from_config_file_with_python_policy(tmp_path):
    class Always(vigil.Policy):
        name = "always"

        def evaluate(self, metric, ctx):
            return True

    path = write(tmp_path, "collector.yaml",
                 "listen: 127.0.0.1:0\nstore: sqlite://%s/h.db\nsecurity: {insecure: true}\n"
                 "policies:\n  - {name: p, kind: always, metric: m, action: a, target: t}\n"
                 % tmp_path)
    with vigil.PolicyTypes() as types:
        types.register(Always)
        with vigil.Hub.from_config(path, policy_types=types, log_level="error") as hub:
            assert hub.remediator is None
            hub.start()
            hub.evaluate([vigil.Metric("m", 1, int(time.time() * 1000))])
            # the ledger records the request just after the engine counts the metric
            deadline = time.monotonic() + 10
            while not hub.actions() and time.monotonic() < deadline:
                time.sleep(0.005)
            assert [(a.action, a.target) for a in hub.actions()] == [("a", "t")]


def test_every_code_has_a_class_in_its_family():
    assert len(errors.BY_CODE) == 33
    for code in range(-33, 0):
        cls = errors.error_class(code)
        assert cls.code == code and issubclass(cls, vigil.VigilError)
        assert errors.strerror(code) != "unknown error"
    assert issubclass(errors.error_class(errors.EPERM), PermissionError)
    assert issubclass(errors.error_class(errors.ENOTFOUND), LookupError)
    assert issubclass(errors.error_class(errors.ETIMEOUT), TimeoutError)
    assert issubclass(errors.error_class(errors.ENOMEM), MemoryError)
    assert errors.error_class(-99) is vigil.VigilError


def test_closed_objects_raise_closed_error(tmp_path):
    st = vigil.Store.open("sqlite::memory:")
    st.close()
    with pytest.raises(vigil.ClosedError) as ei:
        st.query("x")
    assert ei.value.code == errors.ECLOSED


def test_version_check_refuses_an_incompatible_major():
    _lib.check_version(0, 2, 0)
    _lib.check_version(0, 3, 1)
    with pytest.raises(ImportError) as ei:
        _lib.check_version(1, 0, 0, path="/x/libvigil.so.0")
    assert str(ei.value) == ("vigil: /x/libvigil.so.0 is version 1.0.0, this binding needs 0.x "
                             "with x >= 2")
    with pytest.raises(ImportError):
        _lib.check_version(0, 1, 9)
    assert vigil.library_version_info >= (0, 2, 0)


def run_import(env):
    code = "import vigil, sys; sys.stdout.write(vigil.library_path)"
    full = {k: v for k, v in os.environ.items() if k not in ("VIGIL_LIBRARY", "PKG_CONFIG_PATH")}
    full.update(env)
    full["PYTHONPATH"] = PKG
    return subprocess.run([sys.executable, "-c", code], env=full, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=60)


def test_library_lookup_order(tmp_path):
    r = run_import({"VIGIL_LIBRARY": str(tmp_path / "nope.so")})
    assert r.returncode != 0
    assert b"ImportError: vigil: cannot load libvigil from VIGIL_LIBRARY=" in r.stderr
    pc = os.path.join(ROOT, "build", "shared", "pkgconfig")
    if not os.path.exists(os.path.join(pc, "vigil.pc")):
        pytest.skip("no uninstalled vigil.pc")
    r = run_import({"PKG_CONFIG_PATH": pc})
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode() == os.path.join(ROOT, "build", "shared", "lib", "libvigil.so.0")
