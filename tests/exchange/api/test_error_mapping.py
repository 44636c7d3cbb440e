"""The one error mapping: what each error a handler can end in answers, and whether the
request's unit of work kept its writes (only an audited denial does)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Annotated

import pytest
from fastapi import APIRouter
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from audit.errors import AuditError
from exchange.api.context import Context, context_for
from exchange.db import models as m
from exchange.services.errors import (
    AuditUnavailable,
    CaseNotFound,
    Conflict,
    IdempotencyMismatch,
    TombstoneNotFound,
)
from keys.errors import DecryptionError, KeyNotFoundError
from policies.errors import PolicyLoadError
from tests.exchange.api.apptools import Harness, build

ROOT = Path(__file__).resolve().parents[3]

RAISED: dict[str, BaseException] = {
    "case": CaseNotFound(),
    "tombstone": TombstoneNotFound(),
    "conflict": Conflict("the agreement is terminated"),
    "idempotency": IdempotencyMismatch(),
    "audit": AuditUnavailable("OperationalError"),
    "audit-store": AuditError("head moved"),
    "keys-provider": KeyNotFoundError("root v9"),
    "keys": DecryptionError(),
    "policy": PolicyLoadError("cy1000.home_visit: bad"),
    "locked": OperationalError("INSERT ...", {}, Exception("database is locked")),
}

probe = APIRouter(prefix="/probe")


@probe.post("/{kind}")
def write_then_raise(ctx: Annotated[Context, context_for("session.read")], kind: str) -> None:
    ctx.session.add(m.Community(name=f"probe-{kind}", district="城阳区", street="城阳街道"))
    ctx.session.flush()
    raise RAISED[kind]


@pytest.fixture
def h(database_url: str, tmp_path: Path, migrated_sqlite_template: Path) -> Harness:
    return build(database_url, tmp_path, template=migrated_sqlite_template,
                 extra_routers=(probe,))  # fmt: skip


def _kept(h: Harness, kind: str) -> bool:
    with h.factory() as s:
        count = s.scalar(select(func.count()).where(m.Community.name == f"probe-{kind}"))
    return bool(count)


@pytest.mark.db
@pytest.mark.parametrize(
    ("kind", "status", "slug", "retry"),
    [
        ("case", 404, "not-found", False),
        ("tombstone", 404, "not-found", False),
        ("conflict", 409, "conflict", False),
        ("idempotency", 422, "validation-error", False),
        ("audit", 503, "audit-unavailable", True),
        ("audit-store", 503, "audit-unavailable", True),
        ("keys-provider", 503, "keys-unavailable", True),
        ("keys", 500, "key-error", False),
        ("policy", 500, "policy-error", False),
        ("locked", 503, "unavailable", True),
    ],
)
def test_each_error_answers_its_problem_and_only_a_denial_commits(
    h: Harness, kind: str, status: int, slug: str, retry: bool
) -> None:
    r = h.client.post(f"/v1/probe/{kind}", headers={"Authorization": f"Bearer "
                                                                      f"{h.tokens['auditor']}"})
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["type"].endswith("/" + slug) and body["status"] == status
    assert body["request_id"] == r.headers["x-request-id"]
    assert ("retry-after" in r.headers) is retry
    for secret in ("root v9", "head moved", "cy1000", "INSERT", "locked"):
        assert secret not in r.text  # foreign errors are opaque
    assert _kept(h, kind) is (kind == "case")  # CaseNotFound is an AuditedDenial


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


UPWARD = ("exchange.api", "exchange.cli", "fastapi", "starlette")


def _upward(package: str) -> dict[str, list[str]]:
    """Each module under `package` that imports the API, the CLI or a web framework."""
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names = sorted(n for n in _imports(path)
                       if any(n == up or n.startswith(up + ".") for up in UPWARD))  # fmt: skip
        if names:
            found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize("package", ["exchange/services", "exchange/db", "exchange/ledger"])
def test_no_lower_layer_imports_the_api(package: str) -> None:
    assert list((ROOT / package).rglob("*.py"))
    assert _upward(package) == {}


def test_the_import_walk_sees_an_upward_import() -> None:
    # exchange/cli/dev.py imports the app to serve it (the CLI sits above the API)
    assert "exchange.api.app" in _upward("exchange/cli")["exchange/cli/dev.py"]


def test_the_identity_module_imports_no_web_framework() -> None:
    names = _imports(ROOT / "exchange" / "identity.py")
    assert names and not {n for n in names if n.split(".")[0] in ("fastapi", "starlette")}
    assert not {n for n in names if n.startswith("exchange.api")}
