"""House rules that hold the structure: fmn_core stays headless, and no import circle returns."""

from __future__ import annotations

import subprocess
import sys

import grimp

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


def _circles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), imports inside functions included."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        order[module] = low[module] = len(order)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in order:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], order[imported])
        if low[module] == order[module]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in order:
            visit(module)
    return found


def test_no_import_circles() -> None:
    # Every import counts, even one inside a function: a circle hidden that way still ties two
    # modules into one idea. Shared helpers belong below the modules that use them.
    graph = grimp.build_graph("fmn_core", "app")
    assert len(graph.modules) > 50  # the graph really holds the packages
    assert _circles(graph) == []


def test_a_circle_is_found() -> None:
    graph = grimp.ImportGraph()
    for module in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        graph.add_module(module)
    graph.add_import(importer="pkg.a", imported="pkg.b")
    graph.add_import(importer="pkg.b", imported="pkg.a")
    graph.add_import(importer="pkg.c", imported="pkg.a")
    assert _circles(graph) == [["pkg.a", "pkg.b"]]
