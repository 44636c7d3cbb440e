"""The statistics part of the world builder: a street of three communities, the office's
principals, one contractor and agreement, and residents, assignments, bookings, visits and
deletion notices in bulk, written through the world's session factory (tests/world.py).

Statistics count people; they need no personal value, so these rows carry none (no name, no
key): a resident here is her community and her episodes. Communities, the contractor and the
agreement are found by name or made, so a street can be laid over any world (the ORM `World`,
a console harness) without a second copy of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from exchange.db import models as m
from exchange.db.engine import unit_of_work
from exchange.identity import Acting, Identity

NOW = datetime(2026, 5, 10, 4, 0, tzinfo=UTC)
COMMUNITIES = ("向阳社区", "民城路社区", "瑞阳路社区")
CONTRACTOR = "青岛母婴服务中心"
SERVICES4 = ("mid_pregnancy", "late_pregnancy", "confinement", "parenting")


def _community(s: Session, name: str) -> m.Community:
    row = s.scalars(select(m.Community).where(m.Community.name == name)).first()
    if row is None:
        row = m.Community(name=name, district="城阳区", street="城阳街道")
        s.add(row)
        s.flush()
    return row


def _contractor(s: Session) -> tuple[str, str]:
    k = s.scalars(select(m.Contractor).where(m.Contractor.name == CONTRACTOR)).first()
    if k is None:
        k = m.Contractor(name=CONTRACTOR)
        s.add(k)
        s.flush()
    a = m.Agreement(contractor_id=k.id, reference=f"CY-STAT-{k.id[:8]}",
                    valid_from=date(2026, 1, 1), valid_to=date(2026, 12, 31), status="active",
                    retention_days=365, sub_processors=[])  # fmt: skip
    s.add(a)
    s.flush()
    return k.id, a.id


@dataclass
class Street:
    """Rows for the statistics tests; `principals` are the office's: admin, auditor, cadre
    (向阳社区) and cadre2 (向阳社区 and 民城路社区)."""

    factory: sessionmaker[Session]
    communities: dict[str, str] = field(default_factory=dict)
    principals: dict[str, Identity] = field(default_factory=dict)
    contractor_id: str = ""
    agreement_id: str = ""
    seq: int = 0

    def __post_init__(self) -> None:
        with unit_of_work(self.factory) as s:
            for name in COMMUNITIES:
                self.communities[name] = _community(s, name).id
            self.contractor_id, self.agreement_id = _contractor(s)
        self.principal("admin", "office_admin")
        self.principal("auditor", "auditor")
        self.principal("cadre", "community_cadre", ["向阳社区"])
        self.principal("cadre2", "community_cadre", ["向阳社区", "民城路社区"])

    def principal(self, name: str, role: str, communities: Sequence[str] = ()) -> Identity:
        with unit_of_work(self.factory) as s:
            rows = [s.get_one(m.Community, self.communities[c]) for c in communities]
            p = m.Principal(name=name, role=role, display_name=name, communities=rows)
            s.add(p)
            s.flush()
            identity = Identity.from_row(p)
        self.principals[name] = identity
        return identity

    def acting(self, name: str) -> Acting:
        return Acting(self.principals[name], NOW, "req-1")

    def resident(self, community: str, stage: str, due_month: str | None = None, *,
                 erased: bool = False, earlier: tuple[str, str | None] | None = None) -> str:
        """A resident in her latest episode (`stage`, `due_month`); `earlier`, an episode of
        2024 before it."""
        with unit_of_work(self.factory) as s:
            r = m.Resident(community_id=self.communities[community], district="城阳区",
                           street="城阳街道", erased_at=NOW if erased else None)  # fmt: skip
            s.add(r)
            s.flush()
            if earlier is not None:
                s.add(m.MaternalEpisode(resident_id=r.id, stage=earlier[0], due_month=earlier[1],
                                        created_at=datetime(2024, 1, 1, tzinfo=UTC)))
            s.add(m.MaternalEpisode(resident_id=r.id, stage=stage, due_month=due_month,
                                    created_at=datetime(2026, 1, 1, tzinfo=UTC)))  # fmt: skip
            return r.id

    def residents(self, n: int, community: str, stage: str,
                  due_month: str | None = None) -> list[str]:  # fmt: skip
        return [self.resident(community, stage, due_month) for _ in range(n)]

    def assignment(self, resident_id: str, services: Sequence[str] = SERVICES4, *,
                   at: datetime = NOW, status: str = "active") -> str:  # fmt: skip
        self.seq += 1
        with unit_of_work(self.factory) as s:
            a = m.Assignment(resident_id=resident_id, contractor_id=self.contractor_id,
                             agreement_id=self.agreement_id, services=list(services),
                             status=status, change_seq=self.seq, created_at=at,
                             created_by=self.principals["admin"].id,
                             revoked_at=at if status == "revoked" else None)  # fmt: skip
            s.add(a)
            s.flush()
            return a.id

    def booking(self, assignment_id: str, service: str, on: date) -> None:
        with unit_of_work(self.factory) as s:
            s.add(m.Booking(assignment_id=assignment_id, service_code=service, scheduled_on=on))

    def delivery(self, assignment_id: str, service: str, at: datetime) -> None:
        self.seq += 1
        with unit_of_work(self.factory) as s:
            s.add(m.ServiceRecord(assignment_id=assignment_id, contractor_id=self.contractor_id,
                                  service_code=service, idempotency_key=f"k{self.seq}",
                                  delivered_at=at))  # fmt: skip

    def tombstone(self, reference: str, at: datetime, acknowledged: bool) -> None:
        self.seq += 1
        with unit_of_work(self.factory) as s:
            s.add(m.Tombstone(contractor_id=self.contractor_id, agreement_id=self.agreement_id,
                              case_reference=reference, reason="consent_withdrawn",
                              seq=self.seq, created_at=at,
                              acknowledged_at=at if acknowledged else None))  # fmt: skip

    def populate(self) -> None:
        """202 residents by community and stage, with one small cell (向阳社区 preparing: 2):
        the release suppresses it (`<5`), a partner in its column and the two community totals
        (`*`), and keeps the street's total of 202."""
        self.residents(2, "向阳社区", "preparing")
        self.residents(30, "向阳社区", "pregnant", "2026-06")
        self.residents(20, "民城路社区", "preparing")
        self.residents(40, "民城路社区", "pregnant", "2026-06")
        self.residents(50, "瑞阳路社区", "preparing")
        self.residents(60, "瑞阳路社区", "pregnant", "2026-07")
