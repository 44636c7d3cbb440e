"""RFC 9457 problem details for every error the API returns, and the one mapping to them.

`install_problem_handlers` registers, once on the app, what every error a request can end in
answers: a service error (`exchange.services.errors.FlowError` tree) its own status and field
problems; audit unavailability, an unreachable key store, an unavailable or locked database
503 with Retry-After; any other key or policy error an opaque 500 of its own type; a refused
constraint 409. Handlers never catch errors to translate them.

Each kind of problem has a stable type URI under PROBLEM_BASE. Bodies name fields, never the
values that were sent (which may be personal data).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from audit.errors import AuditError
from exchange.api.denials import audit_forbidden
from exchange.logs import get_logger, scrub_text
from exchange.services.errors import AuditedDenial, AuditUnavailable, FlowError
from keys.errors import KeyProviderError, KeysError
from policies.errors import PolicyError

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
    415: "Unsupported media type; the problem's detail names the one to send",
    422: "Invalid input; `errors` names every wrong field at once",
    429: "Too many requests (failed authentications, or a per-user limit such as reveals); "
         "see Retry-After",
    500: "A key or policy could not be applied; nothing was disclosed",
    503: "Database, keys or audit log unavailable; nothing was disclosed (see Retry-After)",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route: the problem statuses it can answer beyond the ones every
    route of its kind gives (see `declare_problem_responses`)."""
    return {
        status: {
            "description": _ERROR_STATUSES[status],
            "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
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


_LOCATIONS = frozenset({"body", "query", "path", "header", "cookie"})


def field_name(loc: Sequence[object]) -> str:
    """A field named the one way the services name it too: a body field by its path in the
    body (`bookings.0.service`), a parameter by its name (`limit`, `Idempotency-Key`)."""
    parts = [str(part) for part in loc]
    if len(parts) > 1 and parts[0] in _LOCATIONS:
        parts = parts[1:]
    return ".".join(parts) or "request"


def field_errors(errors: Sequence[Any]) -> list[dict[str, str]]:
    """Pydantic errors reduced to field + type + message; the offending input never included."""
    out = []
    for error in errors:
        loc = error.get("loc", ()) if isinstance(error, Mapping) else ()
        kind = str(error.get("type", "invalid")) if isinstance(error, Mapping) else "invalid"
        message = str(error.get("msg", "invalid value")) if isinstance(error, Mapping) else ""
        out.append({"field": field_name(loc), "type": kind, "message": scrub_text(message)})
    return out


def _answer(request: Request, problem: Problem) -> JSONResponse:
    return problem_response(
        problem.status,
        problem.slug,
        title=problem.title,
        detail=problem.detail,
        request_id=_request_id(request),
        extensions=problem.extensions,
        headers=problem.headers,
    )


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return _answer(request, exc)


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


def _invalid(errors: list[dict[str, str]]) -> Problem:
    fields = ", ".join(dict.fromkeys(e["field"] for e in errors[:5]))
    return Problem(422, "validation-error", f"invalid request: {fields}",
                   extensions={"errors": errors})  # fmt: skip


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return _answer(request, _invalid(field_errors(exc.errors())))


async def _on_flow_error(request: Request, exc: Exception) -> JSONResponse:
    # every service error: its status, slug and detail; field problems listed all at once
    assert isinstance(exc, FlowError)
    if exc.status == 403 and not isinstance(exc, AuditedDenial):
        # a flow's refusal of an authenticated principal: audited here, in its own unit of
        # work (the request's rolled back); no entry, no answer but 503
        try:
            await run_in_threadpool(audit_forbidden, request, _reason_code(exc))
        except AuditUnavailable as failed:
            exc = failed
        except AuditError as failed:
            exc = AuditUnavailable(type(failed).__name__)
    errors = [{"field": e.field, "type": e.reason, "message": e.message} for e in exc.errors]
    if isinstance(exc, AuditUnavailable):
        _log.warning("audit_unavailable", error_type=exc.cause)
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
    return _answer(request, Problem(exc.status, exc.slug, exc.detail, headers=headers,
                                    extensions={"errors": errors} if errors else None))


def _reason_code(exc: FlowError) -> str:
    """NotPermitted -> not_permitted: the refusal's class as an audit reason code."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()


async def _on_audit_error(request: Request, exc: Exception) -> JSONResponse:
    # an audit store error that no flow wrapped: the entry was not appended, so fail closed
    return await _on_flow_error(request, AuditUnavailable(type(exc).__name__))


async def _on_keys_error(request: Request, exc: Exception) -> JSONResponse:
    # opaque: which key or why never reaches a client
    _log.warning("keys_error", error_type=type(exc).__name__)
    if isinstance(exc, KeyProviderError):  # the key store is unreachable: worth retrying
        return _answer(request, Problem(
            503, "keys-unavailable", "the keys could not be reached; nothing was disclosed",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)}))  # fmt: skip
    return _answer(request, Problem(500, "key-error", "a key operation failed; nothing was "
                                    "disclosed"))  # fmt: skip


async def _on_policy_error(request: Request, exc: Exception) -> JSONResponse:
    _log.warning("policy_error", error_type=type(exc).__name__)
    return _answer(request, Problem(500, "policy-error", "the policy in force could not be "
                                    "applied; nothing was disclosed"))  # fmt: skip


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
    # connection refused, missing file, lost connection, pool exhausted, SQLite "database is
    # locked" past the busy timeout: fail closed, retryable
    _log.warning("database_unavailable", error_type=type(exc).__name__)
    return database_unavailable_response(_request_id(request))


def install_problem_handlers(app: FastAPI) -> None:
    """The one error mapping: every error a request can end in, to its RFC 9457 problem."""
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(FlowError, _on_flow_error)
    app.add_exception_handler(AuditError, _on_audit_error)
    app.add_exception_handler(KeysError, _on_keys_error)
    app.add_exception_handler(PolicyError, _on_policy_error)
    app.add_exception_handler(IntegrityError, _on_integrity_error)
    for kind in DATABASE_UNAVAILABLE:
        app.add_exception_handler(kind, _on_database_unavailable)


# -- the problems each operation declares in /openapi.json ------------------------------------

_EVERY_GUARDED_OPERATION = (401, 403, 429, 503)


def _common_statuses(operation: Mapping[str, Any]) -> list[int]:
    found = set(_EVERY_GUARDED_OPERATION)
    if operation.get("parameters") or operation.get("requestBody"):
        found.add(422)
    if operation.get("requestBody"):
        found.add(413)
    return sorted(found)


def declare_problem_responses(app: FastAPI, prefix: str) -> None:
    """In /openapi.json, give every operation under `prefix` the problems any such operation
    can answer (authentication, permission, rate limit, unavailability; 422 when it takes
    input, 413 with a body) beside those its route declared with `problems(...)`, and the
    Problem schema in the components (replacing FastAPI's own 422 body, which we never send)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for path, operations in schema.get("paths", {}).items():
                if not path.startswith(prefix):
                    continue
                for operation in operations.values():
                    responses = operation.setdefault("responses", {})
                    responses.update({str(k): v for k, v in
                                      problems(*_common_statuses(operation)).items()})  # fmt: skip
                    operation["responses"] = dict(sorted(responses.items()))
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components["Problem"] = PROBLEM_SCHEMA
            for unused in ("HTTPValidationError", "ValidationError"):
                if unused not in json.dumps(schema["paths"]):
                    components.pop(unused, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
