"""Per-request plumbing as plain ASGI middleware: request id (the server's own UUIDv7; a
caller's X-Request-ID is kept beside it as `client_request_id`), logging context, metrics, body
size limit, and the last-resort conversion of unexpected exceptions into a 500 problem (so no
traceback with values ever reaches the server's own error log)."""

from __future__ import annotations

import re
import time
from typing import Any

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from exchange.api.metrics import HttpMetrics
from exchange.api.problems import problem_response
from exchange.db.ids import new_ids
from exchange.logs import bind_request_id, clear_request_context, get_logger, scrub_text
from exchange.routes import route_template

REQUEST_ID_HEADER = "x-request-id"
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}\Z")
_log = get_logger("exchange.api")


def client_request_id(value: str | None) -> str | None:
    """A caller's X-Request-ID worth keeping beside ours: 1-64 characters of [A-Za-z0-9._:-]
    that hold no ID or mobile number (it goes into logs and audit entries); else None."""
    if value is None or not _SAFE_REQUEST_ID.match(value) or scrub_text(value) != value:
        return None
    return value


class PayloadTooLarge(HTTPException):
    """The request body exceeded the configured limit.

    An HTTPException so that FastAPI's body parsing re-raises it (instead of answering 400)
    and the problem handlers turn it into 413.
    """

    def __init__(self) -> None:
        super().__init__(status_code=413, detail="request body too large")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # the server's own id, always; the caller's X-Request-ID only beside it (issue 14)
        request_id = new_ids(1)[0]
        client_id = client_request_id(_header(scope, REQUEST_ID_HEADER.encode()))
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["client_request_id"] = client_id
        clear_request_context()
        bind_request_id(request_id, client_id)
        status = 500
        started = False
        begin = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = int(message["status"])
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except PayloadTooLarge:
            if not started:
                await _send_problem(send_with_id, 413, "payload-too-large", request_id)
        except Exception as exc:  # last resort: answer 500 without values, never re-raise
            _log.error(
                "unhandled_exception",
                error_type=type(exc).__name__,
                where=_where(exc),
                route=route_template(scope),
            )
            if not started:
                await _send_problem(send_with_id, 500, "internal-error", request_id)
        finally:
            route = route_template(scope)
            elapsed = time.perf_counter() - begin
            method = scope.get("method", "?")
            self.metrics.observe(method, route, status, elapsed)
            # our access log: the route template only, never the raw path or query string
            _log.info(
                "request",
                method=method,
                route=route,
                status=status,
                duration_ms=round(elapsed * 1000, 1),
                client=(scope.get("client") or ("-",))[0],
            )
            clear_request_context()


def _where(exc: BaseException) -> str:
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return "?"
    return f"{tb.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno}"


async def _send_problem(send: Send, status: int, slug: str, request_id: str) -> None:
    response = problem_response(status, slug, request_id=request_id)
    await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


class BodyLimitMiddleware:
    """Refuse bodies over `max_bytes`: early by Content-Length, otherwise while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                too_big = False
            if too_big:
                raise PayloadTooLarge()
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message: dict[str, Any] = dict(await receive())
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise PayloadTooLarge()
            return message

        await self.app(scope, counting_receive, send)
