"""Bearer authentication, deny-by-default authorisation, and the route walk."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from structlog.testing import capture_logs

from exchange.api.auth import hash_token
from exchange.api.context import Context, context_for
from exchange.api.permissions import PERMISSIONS, Requirement, allowed
from exchange.db import models as m
from exchange.db.engine import unit_of_work
from exchange.services.auth_failures import record_failure
from exchange.services.tokens import revoke_principal
from tests.exchange.api.apptools import Harness, build

PUBLIC = {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/redoc", "/docs/static"}


def _requirements(dependant: Any) -> list[str]:
    found = []
    for dep in dependant.dependencies:
        if isinstance(dep.call, Requirement):
            found.append(dep.call.operation)
        found.extend(_requirements(dep))
    return found


def unguarded_routes(app: FastAPI) -> list[str]:
    """Routes (other than the public ones) without exactly one known `require(...)`."""
    bad = []
    for route in iter_route_contexts(app.routes):
        if route.path in PUBLIC or route.path == "/" or route.path.startswith("/console"):
            continue  # the console's routes have their own gate (tests/exchange/console)
        if not isinstance(route.original_route, APIRoute):
            bad.append(f"{route.path} (not an API route)")
            continue
        ops = _requirements(route.dependant)
        if len(ops) != 1 or ops[0] not in PERMISSIONS:
            bad.append(f"{sorted(route.methods or ())} {route.path}: {ops}")
    return bad


@pytest.fixture
def h(database_url: str, tmp_path: Path, migrated_sqlite_template: Path) -> Harness:
    return build(
        database_url, tmp_path, template=migrated_sqlite_template, auth_failures_per_minute=5
    )


def test_every_route_of_the_real_app_is_in_the_permission_table(tmp_path: Path) -> None:
    h = build(f"sqlite:///{tmp_path / 'x.db'}", tmp_path)
    assert unguarded_routes(h.app) == []
    paths = [r.path for r in iter_route_contexts(h.app.routes)]
    assert "/v1/session" in paths


def test_the_route_walk_catches_an_unguarded_route(tmp_path: Path) -> None:
    rogue = APIRouter()

    @rogue.get("/rogue")
    def rogue_route() -> dict[str, str]:
        return {}

    h = build(f"sqlite:///{tmp_path / 'x.db'}", tmp_path, extra_routers=(rogue,))
    assert unguarded_routes(h.app) == ["['GET'] /v1/rogue: []"]


def test_table_is_deny_by_default() -> None:
    assert not allowed("contractor", "audit.read")
    assert not allowed("auditor", "residents.write")
    assert not allowed("office_admin", "no.such.operation")
    assert allowed("contractor", "cases.read")
    assert all(
        roles <= {"office_admin", "community_cadre", "contractor", "auditor"}
        for roles in PERMISSIONS.values()
    )
    with pytest.raises(ValueError):
        context_for("cases.raed")


@pytest.mark.db
def test_roles_are_enforced(h: Harness) -> None:
    for role in ("office_admin", "community_cadre", "contractor", "auditor"):
        response = h.client.get(
            "/v1/session", headers={"Authorization": f"Bearer {h.tokens[role]}"}
        )
        assert response.status_code == 200 and response.json()["role"] == role
    cadre = h.client.get(
        "/v1/session", headers={"Authorization": f"Bearer {h.tokens['community_cadre']}"}
    ).json()
    assert len(cadre["community_ids"]) == 1

    guarded = APIRouter()

    @guarded.get("/audit-only")
    def audit_only(ctx: Annotated[Context, context_for("audit.read")]) -> dict[str, str]:
        return {"role": ctx.identity.role}

    h.app.include_router(guarded, prefix="/v1")
    ok = h.client.get("/v1/audit-only", headers={"Authorization": f"Bearer {h.tokens['auditor']}"})
    assert ok.status_code == 200
    denied = h.client.get(
        "/v1/audit-only", headers={"Authorization": f"Bearer {h.tokens['contractor']}"}
    )
    assert denied.status_code == 403
    assert denied.json()["type"].endswith("/forbidden")


@pytest.mark.db
def test_expired_revoked_unknown_and_malformed_tokens_are_refused(h: Harness) -> None:
    token = h.tokens["auditor"]
    header = {"Authorization": f"Bearer {token}"}
    assert h.client.get("/v1/session", headers=header).status_code == 200
    with capture_logs() as logs:
        for bad in ("Bearer exq_nonsense", "Basic dXNlcjpwYXNz", "Bearer", token):
            response = h.client.get("/v1/session", headers={"Authorization": bad})
            assert response.status_code == 401
            assert response.headers["www-authenticate"].startswith("Bearer")
        assert h.client.get("/v1/session").status_code == 401
    denials = [e for e in logs if e["event"] == "auth_denied"]
    assert [d["reason"] for d in denials] == [
        "unknown",
        "malformed",
        "malformed",
        "malformed",
        "missing",
    ]
    assert token not in repr(logs) and "exq_nonsense" not in repr(logs)


@pytest.mark.db
def test_expiry_and_revocation(database_url: str, tmp_path: Path) -> None:
    h = build(database_url, tmp_path)
    header = {"Authorization": f"Bearer {h.tokens['auditor']}"}
    h.clock.advance(timedelta(days=2))  # type: ignore[attr-defined]
    with capture_logs() as logs:
        assert h.client.get("/v1/session", headers=header).status_code == 401
    assert [e["reason"] for e in logs if e["event"] == "auth_denied"] == ["expired"]

    office = {"Authorization": f"Bearer {h.tokens['office_admin']}"}
    h.clock.advance(timedelta(days=-2))  # type: ignore[attr-defined]
    with unit_of_work(h.factory) as session:
        row = (
            session.query(m.Principal).join(m.ApiToken)
            .filter(m.ApiToken.token_hash == hash_token(h.tokens["office_admin"]))
            .one()
        )
        revoke_principal(row, now=h.clock())
    assert h.client.get("/v1/session", headers=office).status_code == 401


@pytest.mark.db
def test_failed_authentications_are_rate_limited_per_client(h: Harness) -> None:
    for _ in range(5):
        assert (
            h.client.get("/v1/session", headers={"Authorization": "Bearer exq_x"}).status_code
            == 401
        )
    limited = h.client.get("/v1/session", headers={"Authorization": "Bearer exq_x"})
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert limited.json()["type"].endswith("/too-many-requests")
    # only failures are limited: a token that authenticates still works from that address
    valid = h.client.get("/v1/session", headers={"Authorization": f"Bearer {h.tokens['auditor']}"})
    assert valid.status_code == 200


@pytest.mark.db
def test_failure_limit_is_a_sliding_minute(session_factory: sessionmaker[Session]) -> None:
    start = datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)
    with unit_of_work(session_factory) as session:
        verdicts = [record_failure(session, "192.0.2.1", start + timedelta(seconds=i), 2)
                    for i in range(3)]  # fmt: skip
        other = record_failure(session, "192.0.2.2", start, 2)
    assert [v.limited for v in verdicts] == [False, False, True] and not other.limited
    assert 1 <= verdicts[2].retry_after <= 60
    with unit_of_work(session_factory) as session:
        # the refused third was not counted; half a minute into the next minute the first
        # minute's two weigh one: one more failure is allowed, the next is over the limit
        half = start + timedelta(seconds=90)
        assert not record_failure(session, "192.0.2.1", half, 2).limited
        assert record_failure(session, "192.0.2.1", half, 2).limited
        later = start + timedelta(seconds=185)  # two minutes on, nothing weighs
        assert not record_failure(session, "192.0.2.1", later, 2).limited
        assert session.scalar(select(func.min(m.MinuteCount.window))) >= (
            int(later.timestamp()) // 60 - 1)  # minutes gone by are deleted
