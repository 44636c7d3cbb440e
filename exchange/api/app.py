"""The FastAPI application factory: everything the service needs is passed in."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

import exchange
from exchange.api import health
from exchange.api.auth import FailureLimiter
from exchange.api.client_cert import ClientCertMiddleware
from exchange.api.docs import install_docs
from exchange.api.headers import ResponseHeadersMiddleware
from exchange.api.log_metrics import AuditLogCollector
from exchange.api.metrics import HttpMetrics
from exchange.api.middleware import BodyLimitMiddleware, RequestContextMiddleware
from exchange.api.problems import declare_problem_responses, install_problem_handlers
from exchange.api.routers import API_PREFIX, domain_routers
from exchange.api.schedule import lifespan_with_checkpoints
from exchange.clientcert import TrustedProxies
from exchange.console import install_console
from exchange.services.tokens import LastUseRecorder
from exchange.settings import Settings
from keys.keyring import Keyring


def _utcnow() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: Settings,
    *,
    session_factory: sessionmaker[Session],
    keyring: Keyring | None,
    clock: Callable[[], datetime] = _utcnow,
    audit_probe: Callable[[], bool] | None = None,
    extra_routers: tuple[object, ...] = (),
) -> FastAPI:
    """Build the app. `audit_probe` answers whether the audit log is writable (for /readyz);
    `extra_routers` lets tests mount routers beside the domain ones."""
    app = FastAPI(
        title="Resident data exchange broker",
        version=exchange.__version__,
        openapi_url="/openapi.json",
        docs_url=None,  # FastAPI's load from a CDN: exchange.api.docs serves vendored ones
        redoc_url=None,
        # operation ids are the handlers' names, so a generated client reads `list_cases`
        generate_unique_id_function=lambda route: route.name,
        lifespan=lifespan_with_checkpoints(settings.checkpoint_interval, session_factory,
                                           keyring, clock),
    )
    metrics = HttpMetrics()
    metrics.add(AuditLogCollector(session_factory, clock))
    app.state.settings = settings
    app.state.session_factory = session_factory
    app.state.keyring = keyring
    app.state.clock = clock
    app.state.audit_probe = audit_probe
    app.state.metrics = metrics
    app.state.failure_limiter = FailureLimiter(settings.auth_failures_per_minute)  # in the DB
    app.state.last_use = LastUseRecorder()

    install_problem_handlers(app)
    app.include_router(health.router)
    for router in (*domain_routers(), *extra_routers):
        app.include_router(router, prefix=API_PREFIX)  # type: ignore[arg-type]
    declare_problem_responses(app, API_PREFIX + "/")
    install_console(app)  # /console: the same services behind pages (exchange/console)
    install_docs(app)  # /docs and /redoc from assets in the package, under a CSP

    # added last = outermost: the request context wraps the body limit
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    app.add_middleware(ResponseHeadersMiddleware)  # nosniff everywhere; no-store but assets
    # outermost: sees the direct peer before X-Forwarded-For replaces it (issue 17)
    app.add_middleware(ClientCertMiddleware,
                       trusted=TrustedProxies.parse(settings.forwarded_allow_ips))
    return app
