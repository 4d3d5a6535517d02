"""The import structure: every module imports on its own, and the data modules, the run-directory
code and the leaf helpers import each other without a cycle."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from collections import deque
from pathlib import Path

import pytest

import dau

PACKAGE = Path(dau.__file__).resolve().parent

# The modules whose imports must not form a cycle (a cycle through any other module counts).
ACYCLIC = ("dau.data", "dau.checkpoint", "dau._atomic", "dau.runfiles", "dau.errors", "dau._registry")
# Modules that may import only these modules of dau (anywhere in the file, not only at the top).
LEAVES = {
    "dau._atomic": set(),
    "dau.runfiles": set(),
    "dau.errors": set(),
    "dau.data.types": {"dau.errors"},
}


def _modules() -> dict[str, Path]:
    """Every Python module of the package by dotted name."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imported(node: ast.Import | ast.ImportFrom, package: str) -> set[str]:
    """The modules an import statement may run, parent packages included (``import a.b`` runs
    ``a`` and ``a.b``); ``from a import b`` also names ``a.b``, which counts if it is a module."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            base = f"{anchor}.{base}" if base else anchor
        names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
    out = set()
    for name in names:
        parts = name.split(".")
        out.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_statements(tree: ast.Module, *, top_level: bool) -> list[ast.Import | ast.ImportFrom]:
    """The import statements of a module; with ``top_level``, only those that run when it is
    imported (not inside functions, not under ``if TYPE_CHECKING:``)."""
    found = []
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif top_level and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        elif top_level and isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
        else:
            stack.extend(ast.iter_child_nodes(node))
    return found


def _imports_of(name: str, path: Path, modules: dict[str, Path], *, top_level: bool) -> set[str]:
    """The package's modules that module ``name`` imports, less itself and the packages that
    contain it (those are always imported before it)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    containing = {name.rsplit(".", i)[0] for i in range(1, name.count(".") + 1)}
    targets: set[str] = set()
    for node in _import_statements(ast.parse(path.read_text(encoding="utf-8")), top_level=top_level):
        targets |= _imported(node, package)
    return {t for t in targets if t in modules and t != name and t not in containing}


def _cycle_through(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """A shortest import cycle through ``start`` (as a list of modules), or None."""
    previous: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for target in sorted(graph[node]):
            if target == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if target not in previous:
                previous[target] = node
                queue.append(target)
    return None


def test_no_import_cycle_among_the_data_and_run_modules():
    modules = _modules()
    graph = {name: _imports_of(name, path, modules, top_level=True) for name, path in modules.items()}
    checked = [m for m in modules if m in ACYCLIC or m.startswith("dau.data.")]
    assert {"dau.data.splits", "dau.data.requests", "dau.checkpoint", "dau.runfiles"} <= set(checked)
    for name in checked:
        cycle = _cycle_through(graph, name)
        assert cycle is None, "import cycle at module top level: " + " -> ".join(cycle)


@pytest.mark.parametrize("leaf", sorted(LEAVES))
def test_leaf_modules_import_nothing_else_of_dau(leaf):
    tree = ast.parse(_modules()[leaf].read_text(encoding="utf-8"))
    imported = set()
    for node in _import_statements(tree, top_level=False):
        if isinstance(node, ast.ImportFrom):
            imported.add("." * node.level + (node.module or ""))
        else:
            imported.update(alias.name for alias in node.names)
    of_dau = {m for m in imported if m.startswith(".") or m.split(".")[0] == "dau"} - LEAVES[leaf]
    assert not of_dau, f"{leaf} is a leaf but imports {sorted(of_dau)}"


# Imported once before the forks: importing torch is most of the time of each import below.
_FORK_EACH = textwrap.dedent("""
    import importlib, os, signal, sys, traceback
    import numpy, torch
    assert not [m for m in sys.modules if m.split(".")[0] == "dau"]
    failed = []
    for name in sys.argv[1:]:
        pid = os.fork()
        if pid == 0:
            signal.alarm(120)
            try:
                importlib.import_module(name)
            except BaseException:
                print(f"--- import {name} failed:", file=sys.stderr)
                traceback.print_exc()
                sys.stderr.flush()
                os._exit(1)
            os._exit(0)
        if os.waitpid(pid, 0)[1] != 0:
            failed.append(name)
    sys.exit(f"these modules do not import on their own: {failed}" if failed else 0)
""")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_every_module_imports_on_its_own():
    """Each module is imported in a process with no module of dau loaded yet (a fork of one
    fresh interpreter), so an import that works only after another module fails here."""
    names = [m for m in _modules() if m != "dau.__main__"]  # importing __main__ runs the CLI
    proc = subprocess.run([sys.executable, "-c", _FORK_EACH, *names], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-8000:]


_TRAIN_IS_THE_FUNCTION = """
import dau
assert callable(dau.train) and dau.train.__module__ == "dau.training", dau.train
"""


@pytest.mark.parametrize("order", [("dau.training", "dau.cli"), ("dau.cli", "dau.training")])
def test_dau_train_is_the_function_whatever_was_imported_first(order):
    """``dau.train`` is the lazily exported function, never a submodule of that name."""
    script = "".join(f"import {module}\n{_TRAIN_IS_THE_FUNCTION}" for module in order)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
