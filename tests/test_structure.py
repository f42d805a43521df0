"""The packages' import structure: no import cycle between modules (imports inside functions counted), and
the arrows between packages point one way (losses ← encoders ← eval; data ← encoders, data ← eval)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {name: ROOT / "packages" / name / "src" / "contrasting" / name
            for name in ("losses", "data", "encoders", "eval")}
# which contrasting packages each package may import
ALLOWED = {"losses": set(), "data": set(), "encoders": {"losses", "data"}, "eval": {"losses", "data", "encoders"}}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT / "packages").parts  # name/src/contrasting/name/.../file.py
    parts = ["contrasting", *rel[3:]]
    parts[-1] = parts[-1].removesuffix(".py")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for root in PACKAGES.values() for p in root.rglob("*.py")}


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The contrasting modules that ``module`` imports anywhere in its file (a name imported from a package
    counts as its submodule when there is one)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names)
    return {m for m in found if m in known and m != module}


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {m: _imports(m, p, set(mods)) for m, p in mods.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def _without_package_inits(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """A package's ``__init__`` re-exports its modules; an import of ``contrasting.x.y`` runs it first, but the
    names flow one way (the ``__init__`` imports the module, not the reverse): its edges to its own modules
    are the only ones that may close a loop through it."""
    inits = {m for m in graph if m.count(".") == 1}
    return {m: {t for t in deps if t not in inits} for m, deps in graph.items()}


def test_no_import_cycle_between_modules():
    graph = _without_package_inits(_graph())
    assert len(graph) > 60
    assert _cycles(graph) == []


def test_cycle_finder_finds_a_planted_cycle():
    graph = _graph()
    a, b = "contrasting.eval.grid.cells", "contrasting.eval.grid.pool"
    assert b not in graph[a]
    graph[a] = graph[a] | {b}
    assert any(a in c and b in c for c in _cycles(_without_package_inits(graph)))


def test_packages_import_one_way():
    wrong = []
    for module, deps in _graph().items():
        own = module.split(".")[1]
        for dep in deps:
            other = dep.split(".")[1]
            if other != own and other not in ALLOWED[own]:
                wrong.append(f"{module} -> {dep}")
    assert wrong == []


# contrasting.eval's subpackages in layer order: each imports only those before it (the top-level modules, cli and
# demo, may import any).
EVAL_LAYERS = ("catalog", "cell", "grid", "analysis")


def test_eval_subpackages_are_layers():
    rank = {f"contrasting.eval.{name}": i for i, name in enumerate(EVAL_LAYERS)}

    def layer(module: str) -> int | None:
        parts = module.split(".")
        return rank.get(".".join(parts[:3])) if len(parts) >= 3 else None

    def above(dep: str, module: str) -> bool:
        return dep.startswith("contrasting.eval") and (layer(dep) is None or layer(dep) > layer(module))

    wrong = [f"{module} -> {dep}" for module, deps in _graph().items() if layer(module) is not None
             for dep in deps if above(dep, module)]
    assert set(rank) <= set(_modules())
    assert wrong == []


MAX_FUNCTION_LINES = 80


def _long_functions(root: Path, limit: int) -> list[str]:
    out = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= limit:
                out.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1})")
    return out


def test_no_function_over_80_lines_in_packages():
    assert [f for root in PACKAGES.values() for f in _long_functions(root, MAX_FUNCTION_LINES)] == []
    assert _long_functions(PACKAGES["eval"], 40)  # the check finds long functions where there are some


# subpackages of contrasting.encoders and contrasting.data: what each may not import (docs/architecture.md)
SUBPACKAGE_FORBIDDEN = {
    "encoders": {"methods": ("training", "weights", "cli"), "weights": ("training", "cli"), "training": ("cli",)},
    "data": {"kernels": ("executors",), "builtin": ("executors",)},
}


@pytest.mark.parametrize("package", sorted(SUBPACKAGE_FORBIDDEN))
def test_subpackages_point_one_way(package):
    forbidden = SUBPACKAGE_FORBIDDEN[package]

    def sub(module: str) -> str | None:
        parts = module.split(".")
        return parts[2] if len(parts) >= 3 and parts[:2] == ["contrasting", package] else None

    wrong = [f"{module} -> {dep}" for module, deps in _graph().items() if sub(module) in forbidden
             for dep in deps if sub(dep) in forbidden[sub(module)]]
    assert {f"contrasting.{package}.{s}" for s in forbidden} <= set(_modules())
    assert wrong == []
