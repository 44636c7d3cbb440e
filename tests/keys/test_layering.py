"""keys/ has no import circle: every module, including its TYPE_CHECKING imports.

A data key carries the caches its users derive from it, but it knows nothing of them:
keys/datakeys.py sits below keys/fields.py, never beside it.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "keys"


def _imports(path: Path) -> set[str]:
    """Modules of keys/ this file imports, anywhere in it (TYPE_CHECKING blocks included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "keys":
                found.update(f"keys.{a.name}" for a in node.names)
            elif node.module.startswith("keys."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("keys."))
    return found


def _graph() -> dict[str, set[str]]:
    modules = {f"keys.{p.stem}": p for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    return {name: _imports(path) & modules.keys() - {name} for name, path in modules.items()}


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    circles: list[list[str]] = []

    def walk(node: str, path: list[str]) -> None:
        for nxt in sorted(graph[node]):
            if nxt in path:
                circles.append(path[path.index(nxt):] + [nxt])
            elif nxt > path[0]:  # each circle once, from its smallest module
                walk(nxt, [*path, nxt])

    for start in sorted(graph):
        walk(start, [start])
    return circles


def test_the_finder_sees_a_circle() -> None:
    assert _circles({"keys.a": {"keys.b"}, "keys.b": {"keys.a"}}) == [
        ["keys.a", "keys.b", "keys.a"]]


def test_keys_has_no_import_circle() -> None:
    graph = _graph()
    assert "keys.datakeys" in graph["keys.fields"]  # the finder reads the real imports
    assert _circles(graph) == []


def test_datakeys_knows_nothing_of_its_users() -> None:
    assert _imports(PACKAGE / "datakeys.py") <= {"keys.errors", "keys.suites"}
