"""Every struct the binding mirrors has the C layout: size and the offset of
each field, compared with the compiler's on the public headers."""

import ctypes
import os
import shutil
import subprocess

import pytest

from conftest import ROOT
from vigil import _lib, manifest


def test_struct_layouts_match_the_headers(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    lines = [
        "#include <stdio.h>",
        "#include <stddef.h>",
        "#include <vigil/vigil.h>",
        "#include <vigil/sys/policy.h>",
        "#include <vigil/sys/action.h>",
        "#include <vigil/sys/collector.h>",
    ]
    lines.append("#include <vigil/manifest.h>")
    structs = list(_lib.STRUCTS) + manifest.STRUCTS
    lines.append("int main(void) {")
    expected = []
    for st in structs:
        c = st._c_name_
        tn = c if c in ("vigil_policy_type", "vigil_collector_type", "vigil_log_record") else c
        lines.append('printf("%%s %%zu\\n", "%s", sizeof(%s));' % (c, "struct " + tn
                     if c in ("vigil_policy_type", "vigil_collector_type", "vigil_log_record") else tn))
        expected.append("%s %d" % (c, ctypes.sizeof(st)))
        for f in st._fields_:
            name = f[0]
            tname = ("struct " + tn) if c in ("vigil_policy_type", "vigil_collector_type",
                                              "vigil_log_record") else tn
            lines.append('printf("%%s.%%s %%zu\\n", "%s", "%s", offsetof(%s, %s));'
                         % (c, name, tname, name))
            expected.append("%s.%s %d" % (c, name, getattr(st, name).offset))
    lines += ["return 0;", "}"]
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "layout"
    subprocess.run([cc, "-std=c99", "-I", os.path.join(ROOT, "include"), "-o", str(exe), str(src)],
                   check=True)
    got = subprocess.run([str(exe)], check=True, stdout=subprocess.PIPE).stdout.decode().split("\n")
    got = [g for g in got if g]
    assert got == expected
    assert len(_lib.STRUCTS) >= 30
