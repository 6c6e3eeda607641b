"""fmn_core stays headless: importing every module of it never loads Qt."""

from __future__ import annotations

import subprocess
import sys

_SCRIPT = """
import importlib, pkgutil, sys
import fmn_core
names = [m.name for m in pkgutil.walk_packages(fmn_core.__path__, "fmn_core.")]
for name in names:
    importlib.import_module(name)
qt = sorted(m for m in sys.modules if m.split(".")[0] in ("PySide6", "PyQt5", "PyQt6", "shiboken6"))
print(len(names), qt)
"""


def test_fmn_core_never_imports_qt() -> None:
    out = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, check=True).stdout
    count, qt = out.strip().split(" ", 1)
    assert int(count) >= 5  # the walk really found the package's modules
    assert qt == "[]", f"fmn_core imported Qt: {qt}"
