"""RFC 9457 problem details for every error the API returns.

Each kind of problem has a stable type URI under PROBLEM_BASE. Bodies name fields, never the
values that were sent (which may be personal data).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from exchange.logs import get_logger, scrub_text

PROBLEM_BASE = "https://exchange.example/problems/"
MEDIA_TYPE = "application/problem+json"

_log = get_logger("exchange.api")

_SLUG_BY_STATUS = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-error",
    429: "too-many-requests",
    500: "internal-error",
    503: "unavailable",
}


def problem_type(slug: str) -> str:
    return PROBLEM_BASE + slug


class Problem(Exception):
    """Raise from anywhere in a request to answer with this problem.

    `extensions` are extra members of the body; they must not contain personal data.
    """

    def __init__(
        self,
        status: int,
        slug: str,
        detail: str | None = None,
        *,
        title: str | None = None,
        extensions: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(slug)
        self.status = status
        self.slug = slug
        self.title = title or HTTPStatus(status).phrase
        self.detail = detail
        self.extensions = dict(extensions or {})
        self.headers = dict(headers or {})


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; never carries personal data.",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "format": "uri", "example": PROBLEM_BASE + "not-found"},
        "title": {"type": "string", "example": "Not Found"},
        "status": {"type": "integer", "example": 404},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "Which field was wrong and why; the offending value is never echoed.",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "type": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
        },
    },
    "additionalProperties": True,
}

_ERROR_STATUSES = {
    400: "Malformed request",
    401: "Missing, unknown, expired or revoked token",
    403: "The role may not perform this operation",
    404: "Not found (also what a foreign or unassigned reference answers)",
    409: "Conflicts with the current state",
    413: "Body too large",
    422: "Invalid input; `errors` names each field",
    429: "Too many failed authentications",
    503: "Database or audit log unavailable; nothing was disclosed",
}

# Declared on every operation so the OpenAPI document describes the error bodies clients get.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "description": description,
        "content": {MEDIA_TYPE: {"schema": PROBLEM_SCHEMA}},
    }
    for status, description in _ERROR_STATUSES.items()
}


def problem_body(
    status: int,
    slug: str,
    *,
    title: str | None = None,
    detail: str | None = None,
    instance: str | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": problem_type(slug),
        "title": title or HTTPStatus(status).phrase,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extensions or {})
    return body


def problem_response(
    status: int,
    slug: str,
    *,
    title: str | None = None,
    detail: str | None = None,
    request_id: str | None = None,
    extensions: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    ext = dict(extensions or {})
    if request_id:
        ext["request_id"] = request_id
    return JSONResponse(
        problem_body(status, slug, title=title, detail=detail, extensions=ext),
        status_code=status,
        media_type=MEDIA_TYPE,
        headers=dict(headers or {}),
    )


def _request_id(request: Request) -> str | None:
    value = getattr(request.state, "request_id", None)
    return value if isinstance(value, str) else None


def field_errors(errors: Sequence[Any]) -> list[dict[str, str]]:
    """Pydantic errors reduced to location + message; the offending input is never included."""
    out = []
    for error in errors:
        loc = error.get("loc", ()) if isinstance(error, Mapping) else ()
        field = ".".join(str(part) for part in loc) or "request"
        kind = str(error.get("type", "invalid")) if isinstance(error, Mapping) else "invalid"
        message = str(error.get("msg", "invalid value")) if isinstance(error, Mapping) else ""
        out.append({"field": field, "type": kind, "message": scrub_text(message)})
    return out


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(
        exc.status,
        exc.slug,
        title=exc.title,
        detail=exc.detail,
        request_id=_request_id(request),
        extensions=exc.extensions,
        headers=exc.headers,
    )


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    detail: str | None = exc.detail if isinstance(exc.detail, str) else None
    if detail == HTTPStatus(status).phrase:
        detail = None
    return problem_response(
        status,
        _SLUG_BY_STATUS.get(status, f"http-{status}"),
        detail=detail,
        request_id=_request_id(request),
        headers=exc.headers,
    )


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = field_errors(exc.errors())
    fields = ", ".join(e["field"] for e in errors[:5])
    return problem_response(
        422,
        "validation-error",
        detail=f"invalid request: {fields}",
        request_id=_request_id(request),
        extensions={"errors": errors},
    )


async def _on_integrity_error(request: Request, exc: Exception) -> JSONResponse:
    # a constraint refused the write: the request conflicts with stored state
    _log.info("integrity_conflict", error_type=type(exc).__name__)
    return problem_response(
        409,
        "conflict",
        detail="the request conflicts with the current state",
        request_id=_request_id(request),
    )


DATABASE_UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeoutError)
RETRY_AFTER_SECONDS = 5


def database_unavailable_response(request_id: str | None) -> JSONResponse:
    return problem_response(
        503,
        "unavailable",
        detail="the database is unavailable; nothing was read or changed",
        request_id=request_id,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def _on_database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # connection refused, missing file, lost connection, pool exhausted: fail closed, retryable
    _log.warning("database_unavailable", error_type=type(exc).__name__)
    return database_unavailable_response(_request_id(request))


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(IntegrityError, _on_integrity_error)
    for kind in DATABASE_UNAVAILABLE:
        app.add_exception_handler(kind, _on_database_unavailable)
