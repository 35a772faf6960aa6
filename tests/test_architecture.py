"""Floors that hold (issue 10): no import cycles — deferred and ``TYPE_CHECKING`` imports
counted —, no module of the package imports ``truepar`` itself, one version, tools without the
engine, and no backend named outside ``backends/``. (The floor order itself is import-linter's
contract in pyproject.toml, run by ``make lint``.)"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import truepar

SRC = Path(truepar.__file__).resolve().parent
ROOT = SRC.parents[1]


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in SRC.rglob("*.py")}


def _imports(name: str) -> set[str]:
    """Every truepar module ``name`` imports, wherever the import statement is."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*pkg, base] if base else pkg)
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names
            ]
        for imported in targets:
            target = imported
            while target not in MODULES and "." in target:
                target = target.rpartition(".")[0]
            if target in MODULES and target != name:
                found.add(target)
    return found


GRAPH = {name: _imports(name) for name in MODULES}


def test_no_import_cycles() -> None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles: " + "; ".join(" → ".join(c) for c in cycles[:5])


def test_no_module_imports_the_package_itself() -> None:
    offenders = sorted(n for n, targets in GRAPH.items() if n != "truepar" and "truepar" in targets)
    assert not offenders, offenders


def test_the_version_is_written_once() -> None:
    assert truepar.__version__ == truepar._version.__version__
    defined = [n for n, p in MODULES.items() if re.search(r"^__version__ = ", p.read_text(), re.M)]
    assert defined == ["truepar._version"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project and "version" in project["dynamic"]


def test_tools_load_without_the_engine() -> None:
    code = "import truepar.tools, sys; print('truepar.engine.run' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_prove_kernels_load_without_numpy() -> None:
    """A worker running ``prove``'s ops imports :mod:`truepar.measure.kernels`, not the whole
    measure floor (numpy, the bench): a fork server's workers would pay for it on every run."""
    code = "import truepar.measure.kernels, sys; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_measure_names_functions_after_their_submodules_load() -> None:
    """``bench`` and ``prove`` are functions of :mod:`truepar.measure`, whichever loads first."""
    code = (
        "import truepar.measure.bench, truepar.measure.prove\n"
        "from truepar.measure import bench, prove, fit_usl\n"
        "print(bench.__module__, prove.__module__, callable(fit_usl))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["truepar.measure.bench", "truepar.measure.prove", "True"]


def test_no_backend_is_named_outside_backends() -> None:
    """What a backend is comes from its capabilities: no ``== "fake"`` (or any other name)."""
    names = "|".join(truepar.BACKENDS)
    test = re.compile(
        rf"""(==|!=)\s*["']({names})["']|["']({names})["']\s*(==|!=)|in\s*\(["']({names})["']"""
    )
    found = [
        f"{n}:{i}"
        for n, p in MODULES.items()
        if not n.startswith("truepar.backends")
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if test.search(line)
    ]
    assert not found, found
