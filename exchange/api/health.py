"""Liveness and readiness (no authentication, no personal data) and metrics (opt-in, behind
their own token)."""

from __future__ import annotations

import hmac
from typing import Literal, NotRequired

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text
from typing_extensions import TypedDict

from exchange.api.problems import Problem
from exchange.db.migrate import current_revision, head_revision
from exchange.logs import get_logger

router = APIRouter(tags=["health"])
_log = get_logger("exchange.health")

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class Health(TypedDict):
    status: Literal["ok"]


class Checks(TypedDict):
    database: str  # ok | unreachable
    migrations: str  # ok | not initialised | database at X, code at Y | unknown
    keyring: str  # ok | not loaded | unavailable
    audit: str  # ok | not checked | not writable


class Readiness(TypedDict):
    status: Literal["ready", "not ready"]
    checks: Checks
    failed: NotRequired[list[str]]  # the checks that are not ok, when not ready


@router.get("/healthz")
def healthz() -> Health:
    """Alive (says nothing about the database, keys or audit log: see /readyz)."""
    return {"status": "ok"}


def _check_database(request: Request) -> str:
    engine = request.app.state.session_factory.kw["bind"]
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return "ok"
    except Exception as exc:  # any driver error means "not ready"
        _log.warning("readiness_database_failed", error_type=type(exc).__name__)
        return "unreachable"


def _check_migrations(request: Request) -> str:
    engine = request.app.state.session_factory.kw["bind"]
    try:
        current = current_revision(engine)
    except Exception as exc:  # an unreachable database is the database check's answer
        _log.warning("readiness_migrations_failed", error_type=type(exc).__name__)
        return "unknown"
    head = head_revision()
    if current == head:
        return "ok"
    return "not initialised" if current is None else f"database at {current}, code at {head}"


def _check_keyring(request: Request) -> str:
    keyring = getattr(request.app.state, "keyring", None)
    if keyring is None:
        return "not loaded"
    try:
        keyring.current_root()
    except Exception as exc:  # a provider that cannot hand out its root key is not ready
        _log.warning("readiness_keyring_failed", error_type=type(exc).__name__)
        return "unavailable"
    return "ok"


def _check_audit(request: Request) -> str:
    probe = getattr(request.app.state, "audit_probe", None)
    if probe is None:
        return "not checked"
    try:
        return "ok" if probe() else "not writable"
    except Exception as exc:  # the probe failing is the answer
        _log.warning("readiness_audit_failed", error_type=type(exc).__name__)
        return "not writable"


@router.get("/readyz", response_class=JSONResponse, responses={
    200: {"model": Readiness, "description": "Ready"},
    503: {"model": Readiness, "description": "Not ready: a check says why"},
})  # fmt: skip
def readyz(request: Request) -> JSONResponse:
    checks: Checks = {
        "database": _check_database(request),
        "migrations": _check_migrations(request),
        "keyring": _check_keyring(request),
        "audit": _check_audit(request),
    }
    failed = [name for name, v in checks.items() if v not in {"ok", "not checked"}]
    body: Readiness = {"status": "not ready" if failed else "ready", "checks": checks}
    if failed:  # which check failed, first the one to fix first
        body["failed"] = failed
        _log.warning("not_ready", failed=failed)
    return JSONResponse(body, status_code=503 if failed else 200)


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus exposition, opt-in: off (404) unless EXCHANGE_METRICS_TOKEN is set, then
    only for `Authorization: Bearer <that token>` (401 otherwise)."""
    expected = request.app.state.settings.metrics_token
    if expected is None:
        raise Problem(404, "not-found", "not found")
    scheme, _, offered = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
            offered.strip().encode(), expected.get_secret_value().encode()):
        _log.warning("metrics_refused")
        raise Problem(401, "unauthenticated", "the metrics token is required",
                      headers={"WWW-Authenticate": 'Bearer realm="exchange-metrics"'})
    collector = request.app.state.metrics
    return Response(collector.render(), media_type=collector.content_type)
