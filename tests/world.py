"""The one world builder of the tests: a small, valid state of the programme, built either
straight through the models (`World`, the ORM driver: rows as the office flows leave them) or
through the HTTP API of a running broker (`HttpWorld`, the HTTP driver). `build_programme`
builds the same programme with either: two contractors with keys and active agreements,
consenting residents assigned to each, and some consenting residents assigned to nobody.

Every personal value is synthetic.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

import httpx
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from exchange.api.auth import issue_token
from exchange.db import models as m
from exchange.db.engine import unit_of_work
from exchange.db.feed import next_feed_seq
from keys import (
    BlindIndexField,
    ContractorPrivateKey,
    FieldContext,
    InvalidIdentifierError,
    Keyring,
    MemoryKeyProvider,
    generate_keypair,
)
from keys.datakeys import WrappedKey
from policies import shipped_policy

# 2026-03-10 10:00 in Qingdao (CST = UTC+8)
NOW = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
TODAY = date(2026, 3, 10)
HOME_VISIT = "home_visit"
SERVICES = ("mid_pregnancy", "late_pregnancy", "confinement", "parenting")
ALL_SCOPES = ("service_contact", "pregnancy_health", "birth_health", "child_data")
EVIDENCE = "ab" * 32


def national_id(i: int) -> str:
    """A synthetic 18-digit ID number with a valid GB 11643 check digit."""
    body = f"37021419900101{i % 1000:03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]
    return body + check


def plain_values(i: int) -> dict[str, str]:
    """The synthetic personal values of the i-th resident `World.add_residents` makes."""
    return {
        "name": f"李秀英{i}",
        "national_id": national_id(i),
        "phone": f"139{i:08d}",
        "address_building": f"{i % 30 + 1}号楼",
        "due_date": "2026-08-01",
        "child_sex": "F",
        "notes": f"第{i}次入户指导，情况良好",
    }


def clock() -> datetime:
    return NOW


def consent_body(scopes: list[str] | tuple[str, ...], agreement_id: str) -> dict[str, Any]:
    return {
        "scopes": list(scopes), "method": "paper", "notice_version": "2026-01",
        "evidence_sha256": EVIDENCE, "agreement_id": agreement_id,
        "separate": True, "guardian": "child_data" in scopes,
    }  # fmt: skip


def phone_index(keyring: Keyring, phone: str | None) -> str | None:
    """The phone's blind index as the import stores it (None: no phone, or not a mobile)."""
    if phone is None:
        return None
    try:
        return keyring.blind_index(phone, field=BlindIndexField.PHONE)
    except InvalidIdentifierError:
        return None


@dataclass
class ContractorHandle:
    """A contractor as its system sees itself: id, bearer token, HPKE private key; in a
    programme also its label, agreement and assigned residents (resident id -> assignment)."""

    id: str
    token: str
    private_key: ContractorPrivateKey
    principal_id: str = ""
    label: str = ""
    agreement_id: str = ""
    assigned: dict[str, str] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class World:
    """The ORM driver: builds rows in committed transactions, the way the office flows leave
    them; every personal value is synthetic."""

    factory: sessionmaker[Session]
    keyring: Keyring
    now: datetime = NOW
    office_id: str = ""
    community_id: str = ""
    residents: list[str] = field(default_factory=list)  # those made by add_residents
    _counter: int = field(default=0)
    _default: ContractorHandle | None = None

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
            return ContractorHandle(c.id, token, private, principal_id=p.id, label=name or "")

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
                reference=f"CY-W-{n:03d}",
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
            r.address_room = enc("residents", "address_room", r.id, "501室")
            r.national_id_index = f"bi-{n}-{r.id}"
            r.phone_index = phone_index(self.keyring, phone)
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

    def revoke(self, assignment_id: str, reason: str = "assignment_revoked", *,
               acknowledged: bool = False) -> str:  # fmt: skip
        """What the office flows do: revoke, bump the feed, write the tombstone (`acknowledged`:
        as the contractor leaves it after deleting the case)."""
        with unit_of_work(self.factory) as s:
            a = s.get_one(m.Assignment, assignment_id)
            a.status = "revoked"
            a.revoked_at = self.now
            a.change_seq = next_feed_seq(s, a.contractor_id)
            return self._tombstone(s, a, reason, acknowledged)

    def withdraw(self, resident_id: str, assignment_id: str, scopes: tuple[str, ...]) -> str:
        """Consent withdrawal as the office flows record it: event + tombstone."""
        self.consent(resident_id, scopes, action="withdraw")
        with unit_of_work(self.factory) as s:
            return self._tombstone(s, s.get_one(m.Assignment, assignment_id), "consent_withdrawn")

    def _tombstone(self, s: Session, a: m.Assignment, reason: str,
                   acknowledged: bool = False) -> str:  # fmt: skip
        ref = self.keyring.case_reference(a.agreement_id, a.resident_id)
        s.add(m.Tombstone(contractor_id=a.contractor_id, agreement_id=a.agreement_id,
                          case_reference=ref, reason=reason,
                          seq=next_feed_seq(s, a.contractor_id),
                          acknowledged_at=self.now if acknowledged else None))  # fmt: skip
        return ref

    # -- the programme's verbs (see build_programme) ----------------------------------------

    def new_residents(self, n: int) -> list[str]:
        """`n` residents, and three more that nobody will ask for consent."""
        return [self.resident(name=f"李秀英{i}", phone=f"139{i:08d}") for i in range(n + 3)]

    def assign_booked(self, resident_id: str, contractor: ContractorHandle) -> str:
        return self.assign(resident_id, contractor, contractor.agreement_id, booking_in_days=3)

    # -- one default contractor and agreement, and residents in bulk (key custody tests) ----

    @property
    def contractor_id(self) -> str:
        return self._default_contractor().id

    @property
    def agreement_id(self) -> str:
        return self._default_contractor().agreement_id

    def _default_contractor(self) -> ContractorHandle:
        if self._default is None:
            self._default = self.contractor(with_key=False)
            self._default.agreement_id = self.agreement(self._default)
        return self._default

    def add_residents(self, n: int, *, full: bool = False) -> list[str]:
        """`n` residents with `plain_values(i)` (name, ID number, phone, building), each under
        her own data key; `full` adds an episode (due date), a child (sex), an active
        assignment under the default agreement and a service record with notes."""
        ids: list[str] = []
        for _ in range(n):
            i = len(self.residents)
            rid = self._bulk_resident(plain_values(i), full)
            if full:
                handle = self._default_contractor()
                aid = self.assign(rid, handle, handle.agreement_id)
                self.service_record(aid, f"k-{i}", plain_values(i)["notes"])
            self.residents.append(rid)
            ids.append(rid)
        return ids

    def _bulk_resident(self, v: dict[str, str], full: bool) -> str:
        ring = self.keyring
        with unit_of_work(self.factory) as s:
            row = m.Resident(community_id=self.community_id, district="城阳区", street="城阳街道")
            s.add(row)
            s.flush()
            key, wrapped = ring.new_data_key(row.id)

            def enc(table: str, column: str, row_id: str, value: str) -> Any:
                return ring.encrypt_field(key, value, FieldContext(table, column, row_id))

            for column in ("name", "national_id", "phone", "address_building"):
                setattr(row, column, enc("residents", column, row.id, v[column]))
            row.national_id_index = ring.blind_index(v["national_id"])
            row.phone_index = phone_index(ring, v["phone"])
            header = wrapped.header
            s.add(m.ResidentDataKey(resident_id=row.id, wrapped_key=wrapped.to_bytes(),
                                    kek_id=header.kek_id, kek_version=header.kek_version))
            if full:
                episode = m.MaternalEpisode(resident_id=row.id, stage="pregnant")
                child = m.Child(resident_id=row.id)
                s.add_all([episode, child])
                s.flush()
                episode.due_date = enc("maternal_episodes", "due_date", episode.id, v["due_date"])
                child.sex = enc("children", "sex", child.id, v["child_sex"])
            s.flush()
            return row.id

    def service_record(self, assignment_id: str, idempotency_key: str, notes: str) -> str:
        with unit_of_work(self.factory) as s:
            a = s.get_one(m.Assignment, assignment_id)
            wrapped = s.get_one(m.ResidentDataKey, a.resident_id)
            key = self.keyring.unwrap(WrappedKey.from_bytes(bytes(wrapped.wrapped_key)),
                                      a.resident_id)
            row = m.ServiceRecord(assignment_id=a.id, contractor_id=a.contractor_id,
                                  service_code=a.services[0], idempotency_key=idempotency_key,
                                  delivered_at=self.now)  # fmt: skip
            s.add(row)
            s.flush()
            row.notes = self.keyring.encrypt_field(
                key, notes, FieldContext("service_records", "notes", row.id))
            return row.id


def bearer(handle: ContractorHandle) -> dict[str, str]:
    return handle.headers


@dataclass
class Office:
    """Bearer headers of the office roles: an admin, a cadre of the world's community, a cadre
    of another community, an auditor; and that other community's id."""

    admin: dict[str, str]
    cadre: dict[str, str]
    other_cadre: dict[str, str]
    auditor: dict[str, str]
    other_community_id: str


def office_principals(world: World) -> Office:
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
        headers = {k: {"Authorization": f"Bearer {issue_token(p, now=world.now)}"}
                   for k, p in rows.items()}  # fmt: skip
        return Office(**headers, other_community_id=other.id)


def audit_entries(factory: sessionmaker[Session]) -> list[dict[str, object]]:
    """Every audit entry as JSON, in index order."""
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


# -- the HTTP driver --------------------------------------------------------------------------


class HttpWorld:
    """The HTTP driver: the same verbs through a running broker's API, as the office's staff
    and the contractors' systems would call it. `tokens` are the demo principals' (by role)."""

    def __init__(self, api: httpx.Client, tokens: Mapping[str, str], today: date) -> None:
        self.api = api
        self.tokens = tokens
        self.today = today
        self.admin = {"Authorization": f"Bearer {tokens['office_admin']}"}
        self.cadre = {"Authorization": f"Bearer {tokens['community_cadre']}"}
        self._agreements = 0

    def _ok(self, response: httpx.Response) -> dict[str, Any]:
        assert response.status_code in (200, 201), (response.status_code, response.text[:500])
        body: dict[str, Any] = response.json()
        return body

    def contractor(self, label: str) -> ContractorHandle:
        """The demo contractor principal `label`, with a fresh key pair registered."""
        token = self.tokens[label]
        me = self._ok(self.api.get("/v1/session", headers={"Authorization": f"Bearer {token}"}))
        private, public = generate_keypair()
        self._ok(self.api.post(f"/v1/contractors/{me['contractor_id']}/keys", headers=self.admin,
                               json={"public_key": public.to_text()}))  # fmt: skip
        return ContractorHandle(me["contractor_id"], token, private,
                                principal_id=me["principal_id"], label=label)  # fmt: skip

    def agreement(self, contractor: ContractorHandle,
                  purposes: tuple[str, ...] = (HOME_VISIT, "online_guidance")) -> str:  # fmt: skip
        self._agreements += 1
        port = self.api.base_url.port
        body = self._ok(self.api.post("/v1/agreements", headers=self.admin, json={
            "contractor_id": contractor.id, "reference": f"CY-W-{self._agreements}-{port}",
            "valid_from": (self.today - timedelta(days=30)).isoformat(),
            "valid_to": (self.today + timedelta(days=300)).isoformat(), "retention_days": 365,
            "purposes": {p: shipped_policy(p).id for p in purposes},
        }))  # fmt: skip
        self._ok(self.api.post(f"/v1/agreements/{body['id']}/activate", headers=self.admin))
        return str(body["id"])

    def new_residents(self, n: int) -> list[str]:
        """Every resident of the demo ledger in the cadre's scope (registered by the import),
        at least `n`."""
        found = self.residents_in_scope()
        assert len(found) >= n, f"the demo has {len(found)} residents in scope"
        return found

    def residents_in_scope(self) -> list[str]:
        ids: list[str] = []
        while True:
            page = self._ok(self.api.get("/v1/residents", headers=self.cadre,
                                         params={"limit": 50, "offset": len(ids)}))  # fmt: skip
            ids += [item["id"] for item in page["items"]]
            if not page["items"] or len(ids) >= page["total"]:
                return ids

    def consent(self, resident_id: str, scopes: tuple[str, ...], *, agreement_id: str) -> str:
        body = self._ok(self.api.post(f"/v1/residents/{resident_id}/consents", headers=self.cadre,
                                      json=consent_body(scopes, agreement_id)))  # fmt: skip
        return str(body["id"])

    def assign_booked(self, resident_id: str, contractor: ContractorHandle) -> str:
        body = self._ok(self.api.post("/v1/assignments", headers=self.cadre, json={
            "resident_id": resident_id, "contractor_id": contractor.id,
            "agreement_id": contractor.agreement_id, "services": list(SERVICES),
            "bookings": [{"service": SERVICES[0],
                          "on": (self.today + timedelta(days=3)).isoformat()}],
        }))  # fmt: skip
        return str(body["id"])


# -- one programme, either driver -------------------------------------------------------------


class Driver(Protocol):
    def contractor(self, label: str) -> ContractorHandle: ...
    def agreement(self, contractor: ContractorHandle) -> str: ...
    def new_residents(self, n: int) -> list[str]: ...  # at least n; the rest stay unasked
    def consent(self, resident_id: str, scopes: tuple[str, ...], *, agreement_id: str) -> str: ...
    def assign_booked(self, resident_id: str, contractor: ContractorHandle) -> str: ...


@dataclass
class Programme:
    contractors: dict[str, ContractorHandle]
    unassigned: list[str]  # resident ids with consent but no assignment
    residents: list[str]  # every resident the driver made or found, asked for consent or not

    def side(self, label: str) -> ContractorHandle:
        return self.contractors[label]


def build_programme(driver: Driver, *, per_contractor: int = 6, unassigned: int = 3,
                    labels: tuple[str, ...] = ("contractor", "contractor_b")) -> Programme:
    """Contractors with keys and active agreements; `per_contractor` residents consenting to
    every scope and assigned (a visit booked in 3 days) to each; `unassigned` consenting
    residents assigned to nobody."""
    sides = {}
    for label in labels:
        side = driver.contractor(label)
        side.agreement_id = driver.agreement(side)
        sides[label] = side
    need = len(labels) * per_contractor + unassigned
    residents = driver.new_residents(need)
    pool = iter(residents[:need])
    for side in sides.values():
        for _ in range(per_contractor):
            rid = next(pool)
            driver.consent(rid, ALL_SCOPES, agreement_id=side.agreement_id)
            side.assigned[rid] = driver.assign_booked(rid, side)
    spare = []
    for rid in pool:
        driver.consent(rid, ALL_SCOPES, agreement_id=sides[labels[0]].agreement_id)
        spare.append(rid)
    return Programme(sides, spare, residents)
