"""Headers on every response (issue 14, finding 6): `X-Content-Type-Options: nosniff`, and
`Cache-Control: no-store` unless the response set its own, so no /v1 answer, problem, console
page or metrics scrape (they carry personal data, or tell about it) is kept by a browser or a
proxy. Static assets (the console's, the documentation's) may be cached: a day."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from exchange.api.docs import STATIC_PREFIX as DOCS_STATIC

STATIC_PREFIXES = ("/console/static/", DOCS_STATIC + "/")
STATIC_CACHE = b"public, max-age=86400"


class ResponseHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith(STATIC_PREFIXES)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {bytes(k).lower() for k, _ in headers}
                if b"x-content-type-options" not in names:
                    headers.append((b"x-content-type-options", b"nosniff"))
                if static and int(message["status"]) < 400:
                    headers = [(k, v) for k, v in headers if bytes(k).lower() != b"cache-control"]
                    headers.append((b"cache-control", STATIC_CACHE))
                elif b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
