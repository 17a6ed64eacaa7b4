"""The house's rules, read from the source: no import circles, data flowing one way."""

from __future__ import annotations

import ast
from pathlib import Path

import syncline

SRC = Path(syncline.__file__).resolve().parent
DATA_PLANE = ("syncline.sources", "syncline.destinations")
ABOVE_DATA_PLANE = ("syncline.engine", "syncline.store", "syncline.cli", "syncline.orchestration",
                    "syncline.demo", "syncline.testkit", "syncline.alerting", "syncline.monitoring")


def module_name(path: Path) -> str:
    parts = ["syncline", *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module → the syncline modules it names in an import (functions' imports included)."""
    modules = {module_name(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name in modules}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for a in node.names:
                    sub = f"{node.module}.{a.name}"
                    edges.add(sub if sub in modules else node.module)
        graph[name] = {e for e in edges if e in modules and e != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_module_of_syncline_imports_another_back() -> None:
    assert circles(import_graph()) == []


def test_sources_and_destinations_import_nothing_above_them() -> None:
    upward = sorted(
        f"{module} imports {target}"
        for module, targets in import_graph().items() if module.startswith(DATA_PLANE)
        for target in targets if target.startswith(ABOVE_DATA_PLANE)
    )
    assert upward == []


def test_the_circle_finder_sees_a_pair_and_a_ring() -> None:
    graph = {"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": {"c"}, "f": {"a"}}
    assert sorted(circles(graph)) == [["a", "b"], ["c", "d", "e"]]
