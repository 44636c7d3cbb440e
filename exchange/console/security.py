"""Safe defaults for every console response, and the cookie rules.

Headers: a CSP that allows no inline script or style and no framing, nosniff, no referrer
to other sites (`same-origin`: with `no-referrer` Chromium sends `Origin: null` on a form post,
which the origin check must refuse),
and `Cache-Control: no-store` on every page (they show personal data: residents', and the
staff's own names and addresses); only the versioned static assets may be cached.

Cookies: `__Host-` names with `Secure` when the console is served over TLS (always in
production); over plain HTTP on 127.0.0.1 in development (`make run`) a browser drops a
`Secure` cookie, so the plain names are used there, still HttpOnly, SameSite=Strict, Path=/.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from exchange.settings import Settings

CONSOLE_PREFIX = "/console"
STATIC_PREFIX = "/console/static/"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"

CSP = "; ".join((
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "object-src 'none'",
))  # fmt: skip

_PAGE_HEADERS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)


class SecurityHeadersMiddleware:
    """Adds the headers to responses under /console (and the / redirect)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == "/" or path.startswith(CONSOLE_PREFIX)):
            await self.app(scope, receive, send)
            return
        static = path.startswith(STATIC_PREFIX)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() != b"cache-control"]  # fmt: skip
                headers.extend(_PAGE_HEADERS)
                cache = b"public, max-age=86400" if static else b"no-store"
                headers.append((b"cache-control", cache))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def secure_cookies(settings: Settings, request: Request) -> bool:
    if settings.console_secure_cookie is not None:
        return settings.console_secure_cookie
    return settings.is_production or request.url.scheme == "https"


def cookie_name(base: str, secure: bool) -> str:
    return f"__Host-{base}" if secure else base


def same_origin(request: Request) -> bool:
    """A browser names the page a POST comes from; a foreign one is refused outright."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    own = f"{request.url.scheme}://{request.url.netloc}"
    return origin == own
