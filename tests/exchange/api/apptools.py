"""Build a real app over a migrated database for API tests (no mocks of our own parts)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from exchange.api.app import create_app
from exchange.api.auth import issue_token
from exchange.db.engine import make_engine, make_session_factory, unit_of_work
from exchange.db.migrate import upgrade
from exchange.settings import Settings
from tests.exchange import factories as f
from tests.exchange.conftest import migrate


@dataclass
class Harness:
    app: FastAPI
    client: TestClient
    factory: sessionmaker[Session]
    tokens: dict[str, str]
    clock: Callable[[], datetime]


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def build(
    database_url: str,
    home: Path,
    *,
    template: Path | None = None,
    extra_routers: tuple[object, ...] = (),
    **settings: object,
) -> Harness:
    """`template`: a migrated SQLite file to copy instead of migrating (see conftest)."""
    if template is not None:
        migrate(database_url, template)
    else:
        upgrade(database_url)
    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    clock = FakeClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
    tokens: dict[str, str] = {}
    with unit_of_work(factory) as session:
        community = f.community(session)
        contractor = f.contractor(session)
        for role in ("office_admin", "community_cadre", "contractor", "auditor"):
            row = f.principal(
                session, f"p-{role}", role, contractor.id if role == "contractor" else None
            )
            if role == "community_cadre":
                row.communities = [community]
            tokens[role] = issue_token(row, now=clock(), ttl=timedelta(days=1))
    config = Settings(home=home, database_url=database_url, **settings)  # type: ignore[arg-type]
    app = create_app(
        config,
        session_factory=factory,
        keyring=f.keyring(),
        clock=clock,
        audit_probe=lambda: True,
        extra_routers=extra_routers,
    )
    return Harness(app, TestClient(app, raise_server_exceptions=False), factory, tokens, clock)
