"""The import structure of lrlab: no import circle among its modules, and the torch-free core stays torch-free.

The graph is read from the source (``ast``), so it sees every import, those inside functions included: a
circle hidden in a function is still a circle. Imports under ``if TYPE_CHECKING:`` are left out (they never
run). ``from package import name`` is an edge to ``package.name`` when that is a module, else to
``package``; importing ``a.b.c`` also runs ``a/__init__`` and ``a/b/__init__``, which is not counted.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# Import circles allowed to exist (none: the test fails on any circle, and on an entry here that is gone).
KNOWN_CIRCLES: set[frozenset[str]] = set()

# Modules that must never import torch, directly or through another module (function-level imports count).
TORCH_FREE = ("lrlab.errors", "lrlab.controllers", "lrlab.schedules", "lrlab.spec", "lrlab.tune")


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {module_name(p): p for p in sorted((SRC / "lrlab").rglob("*.py"))}


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node of ``tree`` except those under ``if TYPE_CHECKING:``."""
    for node in ast.iter_child_nodes(tree):
        test = node.test if isinstance(node, ast.If) else None
        if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
                isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"):
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def imports_of(name: str) -> set[str]:
    """The modules ``name`` imports: lrlab modules by full name, anything else by its top-level package."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target not in MODULES and "." in target:  # `import lrlab.spec.parser as p`, `from torch.optim`
                target = target.rpartition(".")[0]
            if target != name:
                found.add(target)
            # importing a.b.c first runs the package a.b's __init__: an edge too, unless a.b contains this module
            parent = target.rpartition(".")[0]
            while parent in MODULES and not name.startswith(parent + "."):
                found.add(parent)
                parent = parent.rpartition(".")[0]
    return found


GRAPH: dict[str, set[str]] = {name: imports_of(name) for name in MODULES}


def circles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: set[frozenset[str]] = set()

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in graph:
                continue
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.add(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_the_package():
    assert {"lrlab", "lrlab.spec", "lrlab.spec.parser", "lrlab.schedules.base", "lrlab.cli"} <= set(MODULES)
    assert "lrlab.spec.language" in GRAPH["lrlab.spec.parser"]
    assert "torch" in GRAPH["lrlab.adapter"]


def test_circles_are_found():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == {frozenset("abc")}
    assert circles({"a": {"b"}, "b": set()}) == set()


def test_no_import_circle_among_lrlab_modules():
    found = circles(GRAPH)
    new = [sorted(c) for c in found - KNOWN_CIRCLES]
    gone = [sorted(c) for c in KNOWN_CIRCLES - found]
    assert not new, f"import circles: {new}"
    assert not gone, f"these circles are gone: remove them from KNOWN_CIRCLES: {gone}"


def reaches(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(GRAPH.get(node, ()))
    return seen


@pytest.mark.parametrize("name", [m for m in MODULES if any(m == p or m.startswith(f"{p}.") for p in TORCH_FREE)])
def test_the_core_never_imports_torch(name):
    path = [m for m in reaches(name) if m == "torch" or (m.startswith("lrlab.") and "torch" in GRAPH[m])]
    assert not path, f"{name} reaches torch through {sorted(path)}"
