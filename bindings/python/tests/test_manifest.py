import pytest

import vigil
from vigil import manifest



def test_the_manifest_api_is_there():
    assert manifest.available()

DOCS = """apiVersion: vigil/v1
kind: File
metadata: {name: motd, labels: {tier: web}}
spec: {path: %(path)s, content: "hello\\n", selfHeal: true}
---
apiVersion: vigil/v1
kind: Policy
metadata: {name: cpu-high}
spec: {kind: threshold, metric: cpu, op: ">", threshold: 0.9, action: restart}
"""


def test_load_and_diff(tmp_path):
    repo = tmp_path / "repo"
    (repo / "hosts").mkdir(parents=True)
    target = tmp_path / "motd"
    (repo / "hosts" / "web.yaml").write_text(DOCS % {"path": target})
    with vigil.Manifest.load(str(repo)) as m:
        assert m.files == ["hosts/web.yaml"]
        assert len(m) == 2
        motd = m.find("File", "motd")
        assert (motd.kind, motd.name, motd.labels, motd.self_heal) == ("File", "motd",
                                                                      {"tier": "web"}, True)
        assert (motd.file, motd.line) == ("hosts/web.yaml", 1)
        assert m.find("File", "nope") is None
        assert [p["name"] for p in m.policies_body("web-1")["policies"]] == ["cpu-high"]

        with m.diff("web-1") as drift:
            (item,) = drift.items
            assert (item.target, item.status) == ("web-1/File/motd", "missing")
            assert drift.drifted == 1 and drift.errors == 0
        target.write_text("hello\n")
        with m.diff("web-1") as drift:
            assert [i.status for i in drift] == ["in_sync"]
        target.write_text("tampered\n")
        with m.diff("web-1") as drift:
            (item,) = drift.items
            assert item.status == "drifted"
            assert item.diff and all(isinstance(d, manifest.DiffEntry) for d in item.diff)
            assert drift.body("abc123")["items"][0]["status"] == "drifted"


def test_manifest_errors_are_located(tmp_path):
    (tmp_path / "m.yaml").write_text("apiVersion: vigil/v2\nkind: File\nmetadata: {name: a}\n"
                                     "spec: {}\n")
    with pytest.raises(vigil.BadValueError) as ei:
        vigil.Manifest.load(str(tmp_path))
    assert ei.value.message.startswith("m.yaml:1:13: apiVersion:")
    with pytest.raises(vigil.NotFoundError):
        vigil.Manifest.load(str(tmp_path / "missing"))
