"""A small street for the statistics tests, written straight through the models (synthetic;
no personal value is needed to count people)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import pytest
from sqlalchemy.orm import Session, sessionmaker

from exchange.db import models as m
from exchange.db.engine import unit_of_work
from exchange.identity import Acting, Identity

NOW = datetime(2026, 5, 10, 4, 0, tzinfo=UTC)
SERVICES4 = ["mid_pregnancy", "late_pregnancy", "confinement", "parenting"]


@dataclass
class Street:
    factory: sessionmaker[Session]
    communities: dict[str, str] = field(default_factory=dict)
    principals: dict[str, Identity] = field(default_factory=dict)
    contractor_id: str = ""
    agreement_id: str = ""
    seq: int = 0

    def __post_init__(self) -> None:
        with unit_of_work(self.factory) as s:
            for name in ("向阳社区", "民城路社区", "瑞阳路社区"):
                row = m.Community(name=name, district="城阳区", street="城阳街道")
                s.add(row)
                s.flush()
                self.communities[name] = row.id
            k = m.Contractor(name="青岛母婴服务中心")
            s.add(k)
            s.flush()
            a = m.Agreement(contractor_id=k.id, reference="CY-2026-001",
                            valid_from=date(2026, 1, 1), valid_to=date(2026, 12, 31),
                            status="active", retention_days=365, sub_processors=[])  # fmt: skip
            s.add(a)
            s.flush()
            self.contractor_id, self.agreement_id = k.id, a.id
        self.principal("admin", "office_admin")
        self.principal("auditor", "auditor")
        self.principal("cadre", "community_cadre", ["向阳社区"])
        self.principal("cadre2", "community_cadre", ["向阳社区", "民城路社区"])

    def principal(self, name: str, role: str, communities: list[str] = ()) -> Identity:  # type: ignore[assignment]
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
                  due_month: str | None = None) -> list[str]:
        return [self.resident(community, stage, due_month) for _ in range(n)]

    def assignment(self, resident_id: str, services: list[str] = SERVICES4, *,
                   at: datetime = NOW, status: str = "active") -> str:
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


@pytest.fixture
def street(session_factory: sessionmaker[Session]) -> Street:
    return Street(session_factory)
