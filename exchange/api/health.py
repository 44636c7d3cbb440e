"""Liveness, readiness and metrics endpoints (no authentication, no personal data)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text
from typing_extensions import TypedDict

from exchange.db.migrate import is_up_to_date
from exchange.logs import get_logger

router = APIRouter(tags=["health"])
_log = get_logger("exchange.health")

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class Health(TypedDict):
    status: Literal["ok"]


class Checks(TypedDict):
    database: str  # ok | migrations pending | unreachable
    keyring: str  # ok | not loaded | unavailable
    audit: str  # ok | not checked | not writable


class Readiness(TypedDict):
    status: Literal["ready", "not ready"]
    checks: Checks


@router.get("/healthz")
def healthz() -> Health:
    """Alive (says nothing about the database, keys or audit log: see /readyz)."""
    return {"status": "ok"}


def _check_database(request: Request) -> str:
    engine = request.app.state.session_factory.kw["bind"]
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return "ok" if is_up_to_date(engine) else "migrations pending"
    except Exception as exc:  # any driver error means "not ready"
        _log.warning("readiness_database_failed", error_type=type(exc).__name__)
        return "unreachable"


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
        "keyring": _check_keyring(request),
        "audit": _check_audit(request),
    }
    ready = all(v in {"ok", "not checked"} for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    collector = request.app.state.metrics
    return Response(collector.render(), media_type=collector.content_type)
