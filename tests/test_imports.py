"""The import graph of ``core/`` has no cycle: every module can be read from the bottom up.

The graph is read from the source with :mod:`ast`, so it sees every import a module can make,
including those inside functions (made late to keep ``import hookline`` cheap: they still
make one module depend on another). Imports under ``if TYPE_CHECKING:`` are left out: they
are for the type checker only and never run.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "core"
PACKAGE = "hookline"


def _module_name(path: Path) -> str:
    """``core/x.py`` → ``hookline.x``; ``core/x/__init__.py`` → ``hookline.x``."""
    parts = [PACKAGE, *path.relative_to(CORE).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    files = sorted(CORE.glob("*.py")) + sorted(CORE.glob("*/*.py"))
    return {_module_name(path): path for path in files}


def _type_checking(test: ast.expr) -> bool:
    """``TYPE_CHECKING`` or ``typing.TYPE_CHECKING``."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement of a module, at any depth, except under ``if TYPE_CHECKING:``."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and _type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom,
             known: Mapping[str, Path]) -> Iterator[str]:
    """The modules of ``hookline`` that one import statement loads."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                yield alias.name
        return
    if node.level:
        # The package a relative import starts from: the module itself for a package's
        # __init__, else the module's package; one level up per extra dot.
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[:len(base) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
        if not (source == PACKAGE or source.startswith(PACKAGE + ".")):
            return
    for alias in node.names:
        submodule = f"{source}.{alias.name}"
        yield submodule if submodule in known else source


def import_graph() -> dict[str, set[str]]:
    """``{module: the hookline modules it imports}`` for every module of ``core/``."""
    known = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        edges = graph.setdefault(name, set())
        for node in _imports(tree):
            edges.update(target for target in _targets(name, path.name == "__init__.py", node,
                                                      known)
                         if target in known and target != name)
    return graph


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """One cycle, as a path ``[a, b, …, a]``, for each group of modules that import each
    other."""
    return [_path_within(group, graph) for group in knots(graph)]


def knots(graph: Mapping[str, set[str]]) -> list[set[str]]:
    """The groups of modules that import each other, directly or not (the strongly connected
    components of more than one module)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def _path_within(group: set[str], graph: Mapping[str, set[str]]) -> list[str]:
    """A shortest cycle through the group's first module (breadth-first, inside the group)."""
    start = min(group)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & group):
                if target == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if target not in came_from:
                    came_from[target] = node
                    following.append(target)
        frontier = following
    raise AssertionError(f"no cycle within {sorted(group)}")  # pragma: no cover


def test_the_graph_sees_every_kind_of_import() -> None:
    graph = import_graph()
    assert len(graph) > 20, sorted(graph)
    # `from .x import y` at the top of a module
    assert "hookline._pipeline" in graph["hookline._runner"]
    # `from ..x import y` in a subpackage
    assert "hookline.errors" in graph["hookline._executors.process"]
    # `from .x import y` inside a function (cli imports its commands' modules late)
    assert "hookline._runner" in graph["hookline.cli"]
    # `from . import x` in a package's __init__: the submodule x
    assert "hookline.fields" in graph["hookline"]


def test_type_checking_imports_are_left_out() -> None:
    source = ("from typing import TYPE_CHECKING\n"
              "if TYPE_CHECKING:\n    from ._runner import run\nelse:\n    from . import _state\n"
              "def late():\n    from ._sinks import sqlite\n")
    found = {target for node in _imports(ast.parse(source))
             for target in _targets("hookline.x", False, node, _modules())}
    assert found == {"hookline._state", "hookline._sinks.sqlite"}


def test_cycles_are_found_and_shown_as_a_path() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"d"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_core() -> None:
    graph = import_graph()
    found = knots(graph)
    assert not found, "import cycles in core/ (a cycle of each group, then the group):\n" + (
        "\n".join(f"  {' -> '.join(_path_within(group, graph))}\n"
                  f"      group: {', '.join(sorted(group))}" for group in found))
