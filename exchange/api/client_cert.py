"""Client certificates forwarded by the TLS proxy (RFC 9440), and token binding (RFC 8705).

`ClientCertMiddleware` is the outermost layer: it sees the direct peer before any
`X-Forwarded-For` rewriting. A `Client-Cert` header is believed only from a trusted proxy
address; from anyone else it is removed (and logged) so nothing downstream can read it. The
parsed certificate's thumbprint goes into the request state; the proxy has already verified
the chain against the office's CA, the broker only compares thumbprints.

`binding_holds` is the check authentication runs for a token with `cnf.x5t#S256`.
"""

from __future__ import annotations

import hmac
from typing import cast

from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from exchange.clientcert import ClientCertError, TrustedProxies, parse_header, thumbprint_s256
from exchange.logs import get_logger

HEADER = b"client-cert"
STATE_KEY = "client_cert_s256"
_log = get_logger("exchange.client_cert")


class ClientCertMiddleware:
    """Accept `Client-Cert` from trusted proxies only; then apply their X-Forwarded-* headers."""

    def __init__(self, app: ASGIApp, trusted: TrustedProxies) -> None:
        self.trusted = trusted
        # the proxy's X-Forwarded-For/-Proto are believed from the same addresses, no others
        self.app: ASGIApp = app
        if trusted.networks:
            proxied = ProxyHeadersMiddleware(app, trusted_hosts=trusted.text())  # type: ignore[arg-type]
            self.app = cast(ASGIApp, proxied)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers", [])
        values = [bytes(v) for k, v in headers if k == HEADER]
        if values:
            peer = (scope.get("client") or ("",))[0]
            state = scope.setdefault("state", {})
            if peer not in self.trusted:
                _log.warning("client_cert_untrusted_peer", client=peer)
                scope["headers"] = [(k, v) for k, v in headers if k != HEADER]
            elif len(values) != 1:
                _log.warning("client_cert_refused", reason="repeated header")
            else:
                try:
                    der = parse_header(values[0].decode("latin-1"))
                except ClientCertError as exc:
                    _log.warning("client_cert_refused", reason=str(exc))
                else:
                    state[STATE_KEY] = thumbprint_s256(der)
        await self.app(scope, receive, send)


def presented_thumbprint(request: Request) -> str | None:
    """The `x5t#S256` of the certificate the trusted proxy forwarded, if any."""
    value = request.scope.get("state", {}).get(STATE_KEY)
    return value if isinstance(value, str) else None


def binding_holds(bound: str | None, presented: str | None) -> bool:
    """A token without binding holds with any certificate or none; a bound one only with its own."""
    if bound is None:
        return True
    return presented is not None and hmac.compare_digest(bound, presented)
