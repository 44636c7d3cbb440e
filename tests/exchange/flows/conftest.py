"""Fixtures for the flow tests (shared by the office-flow and contractor-side tests).

Contractor side: `world` builds a small, valid state straight through the models (the way the
office flows leave it): communities, a contractor with a bearer token and an HPKE key pair,
agreements naming the shipped policies, residents encrypted under their own data keys,
consent events, assignments with feed sequences and bookings, tombstones. `api` is a
TestClient over `create_app` with an injected clock and an in-memory-twin-capable audit sink.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from exchange.api.app import create_app
from exchange.api.auth import issue_token
from exchange.db import models as m
from exchange.db.engine import unit_of_work
from exchange.db.feed import next_feed_seq
from exchange.settings import Settings
from keys import ContractorPrivateKey, FieldContext, Keyring, MemoryKeyProvider, generate_keypair
from policies import shipped_policy

# 2026-03-10 10:00 in Qingdao (CST = UTC+8)
NOW = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
TODAY = date(2026, 3, 10)
HOME_VISIT = "home_visit"


@dataclass
class ContractorHandle:
    id: str
    principal_id: str
    token: str
    private_key: ContractorPrivateKey


@dataclass
class World:
    """Builds rows in committed transactions; every personal value is synthetic."""

    factory: sessionmaker[Session]
    keyring: Keyring
    now: datetime = NOW
    office_id: str = ""
    community_id: str = ""
    _counter: int = field(default=0)

    def __post_init__(self) -> None:
        with unit_of_work(self.factory) as s:
            community = m.Community(name="民城路社区", district="城阳区", street="城阳街道")
            office = m.Principal(name="office", role="office_admin", display_name="office")
            s.add_all([community, office])
            s.flush()
            self.community_id, self.office_id = community.id, office.id

    def _next(self) -> int:
        self._counter += 1
        return self._counter

    def contractor(
        self,
        name: str | None = None,
        *,
        with_key: bool = True,
        private_key: ContractorPrivateKey | None = None,
    ) -> ContractorHandle:
        n = self._next()
        private, public = generate_keypair()
        if private_key is not None:
            private, public = private_key, private_key.public_key()
        with unit_of_work(self.factory) as s:
            c = m.Contractor(name=name or f"青岛母婴服务中心{n}")
            s.add(c)
            s.flush()
            s.add(m.FeedCounter(contractor_id=c.id, last_seq=0))
            p = m.Principal(
                name=f"contractor-{n}", role="contractor", display_name="c", contractor_id=c.id
            )
            s.add(p)
            if with_key:
                s.add(
                    m.ContractorKey(
                        contractor_id=c.id,
                        key_id=public.fingerprint.hex(),
                        kem_id=public.kem.wire_id,
                        public_key=public.to_text(),
                    )
                )
            s.flush()
            token = issue_token(p, now=self.now)
            return ContractorHandle(c.id, p.id, token, private)

    def agreement(
        self,
        contractor: ContractorHandle,
        *,
        status: str = "active",
        valid_from: date = date(2026, 1, 1),
        valid_to: date = date(2026, 12, 31),
        purposes: tuple[str, ...] = (HOME_VISIT,),
    ) -> str:
        n = self._next()
        with unit_of_work(self.factory) as s:
            a = m.Agreement(
                contractor_id=contractor.id,
                reference=f"CY-2026-{n:03d}",
                valid_from=valid_from,
                valid_to=valid_to,
                status=status,
                retention_days=365,
                sub_processors=[],
                terminated_at=self.now if status == "terminated" else None,
            )
            for purpose in purposes:
                policy = shipped_policy(purpose)
                a.purposes.append(
                    m.AgreementPurpose(
                        purpose=purpose, policy_id=policy.id, policy_version=policy.version
                    )
                )
            s.add(a)
            s.flush()
            return a.id

    def resident(
        self,
        *,
        name: str = "李秀英",
        phone: str = "13912345678",
        stage: str = "pregnant",
        due_date: date | None = date(2026, 6, 20),
        child_sex: str | None = None,
        child_birth: date | None = None,
    ) -> str:
        n = self._next()
        national_id = "370214199001011232"
        with unit_of_work(self.factory) as s:
            r = m.Resident(community_id=self.community_id, district="城阳区", street="城阳街道")
            s.add(r)
            s.flush()
            key, wrapped = self.keyring.new_data_key(r.id)

            def enc(table: str, column: str, row_id: str, text: str | None) -> object:
                if text is None:
                    return None
                return self.keyring.encrypt_field(key, text, FieldContext(table, column, row_id))

            r.name = enc("residents", "name", r.id, name)
            r.national_id = enc("residents", "national_id", r.id, national_id)
            r.phone = enc("residents", "phone", r.id, phone)
            r.birth_date = enc("residents", "birth_date", r.id, "1990-01-01")
            r.address_compound = enc("residents", "address_compound", r.id, "春阳花园")
            r.address_building = enc("residents", "address_building", r.id, f"{n}号楼")
            r.address_unit = enc("residents", "address_unit", r.id, "2单元")
            r.address_room = enc("residents", "address_room", r.id, "501")
            r.national_id_index = f"bi-{n}-{r.id}"
            h = wrapped.header
            r.data_key = m.ResidentDataKey(
                wrapped_key=wrapped.to_bytes(), kek_id=h.kek_id, kek_version=h.kek_version
            )
            e = m.MaternalEpisode(resident_id=r.id, stage=stage)
            s.add(e)
            s.flush()
            e.due_date = enc(
                "maternal_episodes", "due_date", e.id, due_date and due_date.isoformat()
            )
            e.parity = enc("maternal_episodes", "parity", e.id, "1")
            e.risk_flags = enc("maternal_episodes", "risk_flags", e.id, "advanced_maternal_age")
            if child_sex or child_birth:
                c = m.Child(resident_id=r.id)
                s.add(c)
                s.flush()
                c.sex = enc("children", "sex", c.id, child_sex)
                c.birth_date = enc(
                    "children", "birth_date", c.id, child_birth and child_birth.isoformat()
                )
            s.flush()
            return r.id

    def consent(
        self,
        resident_id: str,
        scopes: tuple[str, ...],
        *,
        agreement_id: str | None = None,
        action: str = "grant",
        guardian: bool = False,
    ) -> str:
        with unit_of_work(self.factory) as s:
            seq = 1 + len(
                s.query(m.ConsentEvent).filter(m.ConsentEvent.resident_id == resident_id).all()
            )
            event = m.ConsentEvent(
                resident_id=resident_id,
                sequence=seq,
                agreement_id=agreement_id,
                programme=None if agreement_id else "cy1000",
                action=action,
                scopes=list(scopes),
                method="paper",
                notice_version="2026-01",
                evidence_sha256="ab" * 32,
                guardian=guardian,
                recorded_by=self.office_id,
            )
            s.add(event)
            s.flush()
            return event.id

    def assign(
        self,
        resident_id: str,
        contractor: ContractorHandle,
        agreement_id: str,
        *,
        services: tuple[str, ...] = ("mid_pregnancy", "late_pregnancy", "confinement", "parenting"),
        booking_in_days: int | None = None,
    ) -> str:
        with unit_of_work(self.factory) as s:
            a = m.Assignment(
                resident_id=resident_id,
                contractor_id=contractor.id,
                agreement_id=agreement_id,
                services=list(services),
                change_seq=next_feed_seq(s, contractor.id),
                created_by=self.office_id,
            )
            if booking_in_days is not None:
                a.bookings.append(
                    m.Booking(
                        service_code=services[0],
                        scheduled_on=TODAY + timedelta(days=booking_in_days),
                    )
                )
            s.add(a)
            s.flush()
            return a.id

    def case_reference(self, agreement_id: str, resident_id: str) -> str:
        return self.keyring.case_reference(agreement_id, resident_id)

    def revoke(self, assignment_id: str, reason: str = "assignment_revoked") -> str:
        """What the office flows do: revoke, bump the feed, write the tombstone."""
        with unit_of_work(self.factory) as s:
            a = s.get_one(m.Assignment, assignment_id)
            a.status = "revoked"
            a.revoked_at = self.now
            a.change_seq = next_feed_seq(s, a.contractor_id)
            ref = self.keyring.case_reference(a.agreement_id, a.resident_id)
            s.add(
                m.Tombstone(
                    contractor_id=a.contractor_id,
                    agreement_id=a.agreement_id,
                    case_reference=ref,
                    reason=reason,
                    seq=next_feed_seq(s, a.contractor_id),
                )
            )
            return ref

    def withdraw(self, resident_id: str, assignment_id: str, scopes: tuple[str, ...]) -> str:
        """Consent withdrawal as the office flows record it: event + tombstone."""
        self.consent(resident_id, scopes, action="withdraw")
        with unit_of_work(self.factory) as s:
            a = s.get_one(m.Assignment, assignment_id)
            ref = self.keyring.case_reference(a.agreement_id, a.resident_id)
            s.add(
                m.Tombstone(
                    contractor_id=a.contractor_id,
                    agreement_id=a.agreement_id,
                    case_reference=ref,
                    reason="consent_withdrawn",
                    seq=next_feed_seq(s, a.contractor_id),
                )
            )
            return ref


@pytest.fixture
def flow_keyring() -> Keyring:
    return Keyring(MemoryKeyProvider.generate())


@pytest.fixture
def world(session_factory: sessionmaker[Session], flow_keyring: Keyring) -> World:
    return World(session_factory, flow_keyring)


@pytest.fixture
def api(
    session_factory: sessionmaker[Session], flow_keyring: Keyring, tmp_path: Path
) -> Iterator[TestClient]:
    settings = Settings(home=tmp_path, max_page_size=50)
    app = create_app(
        settings, session_factory=session_factory, keyring=flow_keyring, clock=lambda: NOW
    )
    with TestClient(app) as client:
        yield client


def bearer(handle: ContractorHandle) -> dict[str, str]:
    return {"Authorization": f"Bearer {handle.token}"}


# -- office and auditor side (test_office_*.py, test_auditor_*.py) -------------------------


@dataclass
class Office:
    """Bearer headers of the office roles: an admin, a cadre of the world's community, a cadre
    of another community, an auditor; and that other community's id."""

    admin: dict[str, str]
    cadre: dict[str, str]
    other_cadre: dict[str, str]
    auditor: dict[str, str]
    other_community_id: str


@pytest.fixture
def office(world: World) -> Office:
    with unit_of_work(world.factory) as s:
        mine = s.get_one(m.Community, world.community_id)
        other = m.Community(name="瑞阳路社区", district="城阳区", street="城阳街道")
        s.add(other)
        s.flush()
        rows = {
            "admin": m.Principal(name="t-admin", role="office_admin", display_name="a"),
            "cadre": m.Principal(name="t-cadre", role="community_cadre", display_name="c",
                                 communities=[mine]),
            "other_cadre": m.Principal(name="t-cadre-2", role="community_cadre",
                                       display_name="c2", communities=[other]),
            "auditor": m.Principal(name="t-auditor", role="auditor", display_name="au"),
        }  # fmt: skip
        s.add_all(rows.values())
        s.flush()
        headers = {k: {"Authorization": f"Bearer {issue_token(p, now=NOW)}"}
                   for k, p in rows.items()}  # fmt: skip
        return Office(**headers, other_community_id=other.id)
