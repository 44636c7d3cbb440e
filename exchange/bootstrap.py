"""Wiring in one place: settings -> keyring, engine, session factory -> the FastAPI app.

Every failure here is a `ConfigurationError` with one line that says what to fix.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from audit.entry import Actor, AuditEntry
from audit.store import append
from exchange.api.app import create_app
from exchange.db.engine import make_engine, make_session_factory
from exchange.logs import configure_logging
from exchange.services.log_origin import check_origin_when_reachable
from exchange.settings import (
    ConfigurationError,
    Settings,
    check_keyring_path,
    check_production,
    get_settings,
)
from keys.errors import KeysError
from keys.keyring import Keyring
from keys.providers import FileKeyring


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    keyring: Keyring


def load_keyring(settings: Settings) -> Keyring:
    """The file keyring named by the settings, with the production refusals applied."""
    if settings.is_production:
        check_keyring_path(settings.keyring_file)  # before reading it
    try:
        provider = FileKeyring.load(settings.keyring_file)
    except KeysError as exc:
        raise ConfigurationError(str(exc)) from None
    except OSError as exc:  # e.g. the path is a directory
        reason = exc.strerror or type(exc).__name__
        message = f"keyring {settings.keyring_file} cannot be read: {reason}"
        raise ConfigurationError(message) from None
    check_production(settings, development_keys=provider.is_development)
    try:
        keyring = Keyring(provider, production=settings.is_production)
    except KeysError as exc:
        raise ConfigurationError(str(exc)) from None
    # checkpoints are signed under the log's origin (C2SP: the key name is the origin); the
    # processes that sign check it against the origin fixed at `admin init` (`check_origin`)
    keyring.audit_key_name = settings.audit_origin
    return keyring


def build_runtime(settings: Settings | None = None) -> Runtime:
    settings = settings or get_settings()
    check_production(settings, development_keys=False)
    keyring = load_keyring(settings)
    engine = make_engine(settings.database_url)
    try:
        check_origin_when_reachable(engine, settings.audit_origin)
    except Exception:
        engine.dispose()
        raise
    return Runtime(settings, engine, make_session_factory(engine), keyring)


def audit_probe(engine: Engine) -> Callable[[], bool]:
    """Readiness of the audit log: a real append, rolled back. It takes the head lock, passes
    the privileges and triggers a disclosure's entry would, and leaves nothing behind."""
    factory = make_session_factory(engine)

    def probe() -> bool:
        entry = AuditEntry(time=datetime.now(UTC), actor=Actor("readiness-probe", "system"),
                           action="health.audit_probe")
        with factory() as session:
            try:
                append(session, entry)
            finally:
                session.rollback()
        return True

    return probe


def build_app(settings: Settings | None = None) -> FastAPI:
    runtime = build_runtime(settings)
    configure_logging(runtime.settings.effective_log_format, runtime.settings.log_level)
    return create_app(
        runtime.settings,
        session_factory=runtime.session_factory,
        keyring=runtime.keyring,
        audit_probe=audit_probe(runtime.engine),
    )


# objects allocated, less those freed, before the youngest generation is collected: a page of
# 100 cases builds some thousands of containers that die with the response; at CPython's 700
# they were collected (and promoted) several times over while still alive
YOUNG_THRESHOLD = 20_000


def settle_heap() -> None:
    """After start-up, for a serving process: what start-up built (modules, the app, its
    routes, models and compiled statements; some hundred thousand objects that live as long as
    the process) is collected once and then frozen out of the cyclic collector, and the
    youngest generation collected less often.

    Without it, the objects a pull keeps for a while (data keys in the keyring's cache,
    evicted in turn) reached the oldest generation and every few thousand cases set off a
    full collection that walked all of start-up's objects: 130 ms in one request, 65 µs per
    case on average over the bench's pulls (measured in the bench server: issue 18). Reference
    counting still frees everything at once; only cycles wait for the collector."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


def app_factory() -> FastAPI:
    """For `uvicorn --factory exchange.bootstrap:app_factory` in deployments."""
    app = build_app()
    settle_heap()
    return app
