"""The pure audit core imports no web or database code; only audit/store/ may use SQLAlchemy."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

AUDIT = Path(__file__).resolve().parents[2] / "audit"
FORBIDDEN = {"sqlalchemy", "fastapi", "starlette", "uvicorn", "exchange", "psycopg"}
PURE = [p for p in AUDIT.rglob("*.py") if "store" not in p.relative_to(AUDIT).parts]


@pytest.mark.parametrize("path", PURE, ids=lambda p: str(p.relative_to(AUDIT)))
def test_pure_module_imports(path: Path) -> None:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    assert not names & FORBIDDEN, f"{path.name} imports {names & FORBIDDEN}"


def test_there_are_pure_modules() -> None:
    assert {p.name for p in PURE} >= {"entry.py", "merkle.py", "note.py", "verifier.py"}
