"""Fixtures for audit tests: sample entries, a signing key, a migrated store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session, sessionmaker

from audit.entry import Action, Actor, AuditEntry, Outcome, PolicyRef, Subject, Withheld
from audit.note import Signer
from audit.store import create_schema
from exchange.db.engine import make_engine, make_session_factory

ORIGIN = "chengyang.exchange/audit"
T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def disclosure(i: int, *, cases: int = 1, agreement: str = "agr-1") -> AuditEntry:
    return AuditEntry(
        time=T0 + timedelta(seconds=i),
        actor=Actor(f"contractor-{i % 3}", "contractor"),
        action=Action.DISCLOSE,
        subjects=tuple(
            Subject(f"ap_{i:06d}_{c}", f"cr_{i:06d}_{c}", ("address.room", "resident.name"),
                    (Withheld("episode.due_date", "no_consent"),), (f"ce-{i}",))
            for c in range(cases)
        ),
        agreement=agreement,
        purpose="home_visit",
        policy=PolicyRef("home_visit", "1", "sha256-3f2a"),
        request_id=f"req-{i}",
        outcome=Outcome(),
    )


@pytest.fixture
def signer() -> Signer:
    return Signer(ORIGIN, Ed25519PrivateKey.generate())


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    eng = make_engine(database_url)
    with eng.begin() as conn:
        create_schema(conn)
    yield eng
    eng.dispose()


@pytest.fixture
def sessions(engine: sa.Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)
