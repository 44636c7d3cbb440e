"""Residents for the console tests: the synthetic ledger imported through the real importer
(all eight 城阳 communities), and the plaintext rows it was made from, so a test knows what a
page must mask and which community each resident is in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from audit.store import AuditLog
from exchange.db import models as m
from exchange.db.engine import unit_of_work
from exchange.ledger.demo import load_demo
from exchange.ledger.importer import ensure_communities
from exchange.ledger.synthetic import generate_rows
from policies import office_date
from tests.exchange.api.apptools import Harness

CADRE_COMMUNITY = "民城路社区"  # the console world's cadre is scoped to it


@dataclass(frozen=True)
class Person:
    name: str
    national_id: str
    phone: str
    community: str
    compound: str
    building: str
    room: str
    stage: str
    due_date: str


@dataclass
class Ledger:
    people: list[Person]
    ids: dict[str, str]  # national ID -> resident id
    today: date

    def of(self, community: str) -> list[Person]:
        return [p for p in self.people if p.community == community]

    def elsewhere(self) -> list[Person]:
        return [p for p in self.people if p.community != CADRE_COMMUNITY]


def with_residents(harness: Harness, residents: int = 60, seed: int = 7) -> Ledger:
    today = office_date(harness.clock())
    keyring = harness.app.state.keyring
    with unit_of_work(harness.factory) as session:
        ensure_communities(session)
        report = load_demo(session, keyring, residents=residents, seed=seed, today=today)
        assert report.applied and report.ok, report.errors[:3]
    people = [Person(r[0], r[1], r[2], r[3], r[4], r[5], r[7], r[8], r[9])
              for r in generate_rows(residents, seed, as_of=today)]  # fmt: skip
    with unit_of_work(harness.factory) as session:
        by_index = dict(session.execute(select(m.Resident.national_id_index, m.Resident.id)).all())
    ids = {p.national_id: by_index[keyring.blind_index(p.national_id)] for p in people}
    return Ledger(people, ids, today)


def entries(session: Session, action: str | None = None) -> list[dict[str, object]]:
    items = AuditLog(session).entries(limit=1000).items
    out = [i["entry"] for i in items]
    return [e for e in out if action is None or e["action"] == action]  # type: ignore[index]
