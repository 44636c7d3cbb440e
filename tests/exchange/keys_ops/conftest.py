"""Fixtures for key-custody operations over a migrated database (synthetic data only)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from exchange.db import models as m
from exchange.db.engine import unit_of_work
from exchange.db.feed import next_feed_seq
from keys import FieldContext, Keyring, MemoryKeyProvider
from tests.exchange import factories

NOW = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
SERVICES = ["mid_pregnancy", "late_pregnancy", "confinement", "parenting"]


def clock() -> datetime:
    return NOW


def national_id(i: int) -> str:
    """A synthetic 18-digit ID number with a valid GB 11643 check digit."""
    body = f"37021419900101{i % 1000:03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]
    return body + check


def plain_values(i: int) -> dict[str, str]:
    return {
        "name": f"李秀英{i}",
        "national_id": national_id(i),
        "phone": f"139{i:08d}",
        "address_building": f"{i % 30 + 1}号楼",
        "due_date": "2026-08-01",
        "child_sex": "F",
        "notes": f"第{i}次入户指导，情况良好",
    }


@dataclass
class World:
    factory: sessionmaker[Session]
    keyring: Keyring
    community_id: str = ""
    contractor_id: str = ""
    agreement_id: str = ""
    office_id: str = ""
    residents: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        with unit_of_work(self.factory) as s:
            self.community_id = factories.community(s).id
            contractor = factories.contractor(s)
            s.add(m.FeedCounter(contractor_id=contractor.id, last_seq=0))
            self.contractor_id = contractor.id
            self.agreement_id = factories.agreement(s, contractor).id
            self.office_id = factories.principal(s, "office").id

    def add_residents(self, n: int, *, full: bool = False) -> list[str]:
        """`n` residents each under her own data key; `full` adds an episode, a child, an
        active assignment and a service record with notes."""
        ids: list[str] = []
        with unit_of_work(self.factory) as s:
            for _ in range(n):
                ids.append(self._resident(s, len(self.residents) + len(ids), full))
        self.residents += ids
        return ids

    def _resident(self, s: Session, i: int, full: bool) -> str:
        ring, v = self.keyring, plain_values(i)
        row = m.Resident(community_id=self.community_id, district="城阳区", street="城阳街道")
        s.add(row)
        s.flush()
        key, wrapped = ring.new_data_key(row.id)

        def enc(table: str, column: str, row_id: str, value: str) -> object:
            return ring.encrypt_field(key, value, FieldContext(table, column, row_id))

        row.name = enc("residents", "name", row.id, v["name"])  # type: ignore[assignment]
        row.national_id = enc("residents", "national_id", row.id, v["national_id"])  # type: ignore[assignment]
        row.phone = enc("residents", "phone", row.id, v["phone"])  # type: ignore[assignment]
        row.address_building = enc("residents", "address_building", row.id, v["address_building"])  # type: ignore[assignment]
        row.national_id_index = ring.blind_index(v["national_id"])
        header = wrapped.header
        s.add(
            m.ResidentDataKey(
                resident_id=row.id,
                wrapped_key=wrapped.to_bytes(),
                kek_id=header.kek_id,
                kek_version=header.kek_version,
            )
        )
        if full:
            episode = m.MaternalEpisode(resident_id=row.id, stage="pregnant")
            child = m.Child(resident_id=row.id)
            s.add_all([episode, child])
            s.flush()
            episode.due_date = enc("maternal_episodes", "due_date", episode.id, v["due_date"])  # type: ignore[assignment]
            child.sex = enc("children", "sex", child.id, v["child_sex"])  # type: ignore[assignment]
            assignment = m.Assignment(
                resident_id=row.id,
                contractor_id=self.contractor_id,
                agreement_id=self.agreement_id,
                services=SERVICES,
                status="active",
                change_seq=next_feed_seq(s, self.contractor_id),
                created_by=self.office_id,
            )
            s.add(assignment)
            s.flush()
            record = m.ServiceRecord(
                assignment_id=assignment.id,
                contractor_id=self.contractor_id,
                service_code="mid_pregnancy",
                idempotency_key=f"k-{i}",
                delivered_at=NOW,
            )
            s.add(record)
            s.flush()
            record.notes = enc("service_records", "notes", record.id, v["notes"])  # type: ignore[assignment]
        s.flush()
        return row.id


@pytest.fixture
def keyring() -> Keyring:
    return Keyring(MemoryKeyProvider.generate())


@pytest.fixture
def world(session_factory: sessionmaker[Session], keyring: Keyring) -> World:
    return World(session_factory, keyring)


def audit_entries(factory: sessionmaker[Session]) -> list[dict[str, object]]:
    with factory() as s:
        rows = s.execute(text("SELECT entry FROM audit_entries ORDER BY idx")).scalars().all()
    return [json.loads(bytes(r)) for r in rows]


def assert_no_secret(entries: list[dict[str, object]], keyring: Keyring, world: World) -> None:
    """No plaintext value, resident id, or key material appears in any audit entry."""
    blob = json.dumps(entries, ensure_ascii=False)
    forbidden = list(world.residents)
    for i in range(len(world.residents)):
        forbidden += list(plain_values(i).values())
    provider = keyring.provider
    assert isinstance(provider, MemoryKeyProvider)
    for purpose in provider.to_document()["keys"].values():
        forbidden += list(purpose["versions"].values())
    with world.factory() as s:
        for (wrapped,) in s.execute(text("SELECT wrapped_key FROM resident_data_keys")):
            forbidden += [bytes(wrapped).hex(), bytes(wrapped)[-16:].hex()]
    leaked = [f for f in forbidden if len(f) >= 6 and f in blob]
    assert leaked == []
