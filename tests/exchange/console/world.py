"""A small console world: a migrated database, a community, and console users per role."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from exchange.db import models as m
from exchange.db.engine import unit_of_work
from exchange.services.accounts import ensure_account
from tests.exchange import factories as f

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
PASSWORDS = {
    "office_admin": "Admin-pass-2026",
    "community_cadre": "Cadre-pass-2026",
    "auditor": "Audit-pass-2026",
}
NAMES = {"office_admin": "admin-01", "community_cadre": "cadre-01", "auditor": "auditor-01"}


@dataclass
class World:
    ids: dict[str, str]  # role -> principal id
    community_id: str
    other_community_id: str


def populate(factory: sessionmaker[Session], now: datetime = START) -> World:
    ids = {}
    with unit_of_work(factory) as session:
        community = _community(session, "民城路社区")
        other = _community(session, "瑞阳路社区")
        for role, name in NAMES.items():
            row = f.principal(session, name, role)
            row.display_name = {"office_admin": "王主任", "community_cadre": "李干事",
                                "auditor": "赵审计"}[role]  # fmt: skip
            if role == "community_cadre":
                row.communities = [community]
            ensure_account(session, row, PASSWORDS[role], now)
            ids[role] = row.id
        contractor = f.contractor(session, "青岛安心母婴健康服务有限公司")
        f.principal(session, "machine-01", "contractor", contractor.id)
    return World(ids, community.id, other.id)


def _community(session: Session, name: str) -> m.Community:
    row = session.scalars(select(m.Community).where(m.Community.name == name)).first()
    return row if row is not None else f.community(session, name)


def account(session: Session, principal_id: str) -> m.ConsoleAccount:
    row = session.get(m.ConsoleAccount, principal_id)
    assert row is not None
    return row
