"""Residents for the office: register one (the ledger import's validation and storage), and
read one decrypted (`get`: the office's own tools, such as the demo loader; every door shows
the masked 居民台账 instead, `resident_ledger`).

Scope: a community cadre sees only the residents of her communities; anything else answers
exactly like a resident that does not exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from audit.entry import Outcome
from exchange.db import models as m
from exchange.db import storage
from exchange.db.blind_index import blind_index_versions
from exchange.identity import OFFICE_ROLES, Acting
from exchange.ledger.errors import LedgerError
from exchange.ledger.headers import CANONICAL_HEADERS, Column
from exchange.ledger.importer import import_ledger, known_communities
from exchange.ledger.reader import MemorySource
from exchange.services.audit_access import lookup_reference, record, subject
from exchange.services.errors import AlreadyRegistered, FieldProblem, InvalidInput, NotFound
from keys.datakeys import DataKey, WrappedKey
from keys.errors import KeysError
from keys.fields import EncryptedValue
from keys.idnumbers import normalise_national_id
from keys.keyring import Keyring
from policies import office_date

# API field name -> ledger column (the import's validation names errors by column)
_API_FIELDS: dict[str, Column] = {
    "name": Column.NAME,
    "national_id": Column.NATIONAL_ID,
    "phone": Column.PHONE,
    "community": Column.COMMUNITY,
    "compound": Column.COMPOUND,
    "building": Column.BUILDING,
    "unit": Column.UNIT,
    "room": Column.ROOM,
    "stage": Column.STAGE,
    "due_date": Column.DUE_DATE,
    "delivery_date": Column.DELIVERY_DATE,
    "parity": Column.PARITY,
    "risk_flags": Column.RISK_FLAGS,
    "child_birth_date": Column.CHILD_BIRTH_DATE,
    "child_sex": Column.CHILD_SEX,
}
_FIELD_BY_CATALOGUE = {column.value: name for name, column in _API_FIELDS.items()}


@dataclass(frozen=True, slots=True, repr=False)
class ResidentInput:
    """One resident as the office registers her; values are checked by the ledger rules."""

    name: str
    national_id: str
    phone: str
    community: str
    stage: str
    compound: str | None = None
    building: str | None = None
    unit: str | None = None
    room: str | None = None
    due_date: date | None = None
    delivery_date: date | None = None
    parity: int | None = None
    risk_flags: tuple[str, ...] = ()
    child_birth_date: date | None = None
    child_sex: str | None = None

    def cells(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(header, row) in the ledger's format."""
        values: dict[str, Any] = {name: getattr(self, name) for name in _API_FIELDS}
        values["risk_flags"] = ",".join(self.risk_flags)
        header = tuple(CANONICAL_HEADERS[c] for c in _API_FIELDS.values())
        row = tuple("" if values[n] is None else str(values[n]) for n in _API_FIELDS)
        return header, row

    def __repr__(self) -> str:
        return "ResidentInput(<redacted>)"


def visible_resident(session: Session, acting: Acting, resident_id: str) -> m.Resident:
    """The resident if the acting may see her; NotFound otherwise (same answer either way)."""
    row = session.get(m.Resident, resident_id) if len(resident_id) <= 36 else None
    if row is None or not acting.identity.sees_community(row.community_id):
        raise NotFound("no such resident")
    return row


def _scope_names(session: Session, acting: Acting) -> frozenset[str] | None:
    if acting.identity.role == "office_admin":
        return None
    ids = acting.identity.community_ids
    return frozenset(n for n, i in known_communities(session).items() if i in ids)


def register(session: Session, keyring: Keyring, acting: Acting, data: ResidentInput) -> str:
    """Register one resident; returns her id. Same validation and storage as the import.

    Scope and every field are checked before the ID number is looked up (issue 14), so an
    invalid registration answers the same whether the ID is registered anywhere or not; a
    valid one whose ID is registered answers `AlreadyRegistered` whichever community holds
    her (an audited refusal with the ID's keyed reference) and changes nothing."""
    try:  # the version new rows are indexed under
        index: str | None = blind_index_versions(session).index(keyring, data.national_id)
        normalised = normalise_national_id(data.national_id)
    except (KeysError, ValueError):
        index = normalised = None  # the validation below names the problem
    header, row = data.cells()
    source = MemorySource(header, lambda: iter([row]), "registration")
    try:
        report = import_ledger(
            session, keyring, source, today=office_date(acting.now),
            allowed_communities=_scope_names(session, acting), insert_only=True,
        )  # fmt: skip
    except LedgerError as exc:
        raise InvalidInput(str(exc)) from None
    if [e.reason for e in report.errors] == ["already_registered"] and normalised:
        record(session, acting, "resident.register",
               outcome=Outcome("denied", "already_registered"),
               details={"lookup.field": "resident.national_id",
                        "lookup.ref": lookup_reference(keyring, "resident.national_id",
                                                       normalised)})  # fmt: skip
        raise AlreadyRegistered
    if not report.ok or not report.applied or index is None:
        problems = tuple(
            FieldProblem(_FIELD_BY_CATALOGUE.get(e.field, e.field), e.reason, e.message)
            for e in report.errors
        )
        raise InvalidInput(
            "invalid resident: " + ", ".join(p.field for p in problems), problems
        )
    resident_id = session.scalar(select(m.Resident.id).where(m.Resident.national_id_index == index))
    assert resident_id is not None
    record(session, acting, "resident.register", subjects=[subject(keyring, resident_id)])
    return resident_id


# -- reading ------------------------------------------------------------------------------

_RESIDENT_COLUMNS = ("name", "national_id", "phone", "address_compound", "address_building",
                     "address_unit", "address_room")  # fmt: skip


def data_key(keyring: Keyring, row: m.Resident) -> DataKey | None:
    if row.data_key is None:
        return None
    return keyring.unwrap(WrappedKey.from_bytes(row.data_key.wrapped_key), row.id)


def _decrypt(
    keyring: Keyring, key: DataKey, table: str, row_id: str,
    values: Mapping[str, EncryptedValue | None],
) -> dict[str, str]:
    present = {c: v for c, v in values.items() if v is not None}
    return dict(keyring.decrypt_row(key, table, row_id, present)) if present else {}


def mask_national_id(value: str) -> str:
    return value[:6] + "*" * (len(value) - 10) + value[-4:] if len(value) > 10 else "*" * len(value)


class AddressView(TypedDict):
    compound: str | None
    building: str | None
    unit: str | None
    room: str | None


class PersonalView(TypedDict):
    name: str | None
    phone: str | None
    national_id_masked: str | None
    address: AddressView


class EpisodeView(TypedDict, total=False):  # empty when she has no episode
    stage: str
    due_date: str | None
    delivery_date: str | None
    parity: int | None
    risk_flags: list[str]


class ChildView(TypedDict):
    birth_date: str | None
    sex: str | None


@dataclass(frozen=True, slots=True, repr=False)
class ResidentView:
    id: str
    community: str
    district: str
    street: str
    erased: bool
    personal: PersonalView | None = None  # only for office roles
    stage: str | None = None
    episode: EpisodeView = field(default_factory=lambda: EpisodeView())
    children: list[ChildView] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"ResidentView(id={self.id!r})"


def _view(
    keyring: Keyring, acting: Acting, row: m.Resident, community_names: Mapping[str, str]
) -> ResidentView:
    latest = max(row.episodes, key=lambda e: (e.created_at, e.id), default=None)
    base = ResidentView(
        id=row.id, community=community_names.get(row.community_id, ""), district=row.district,
        street=row.street, erased=row.erased_at is not None,
        stage=latest.stage if latest else None,
    )  # fmt: skip
    if base.erased or acting.identity.role not in OFFICE_ROLES:
        return base
    key = data_key(keyring, row)
    if key is None:
        return base
    values = _decrypt(keyring, key, "residents", row.id,
                      {c: getattr(row, c) for c in _RESIDENT_COLUMNS})  # fmt: skip
    nid = values.pop("national_id", None)
    personal: PersonalView = {
        "name": values.get("name"),
        "phone": values.get("phone"),
        "national_id_masked": mask_national_id(nid) if nid else None,
        "address": {
            "compound": values.get("address_compound"),
            "building": values.get("address_building"),
            "unit": values.get("address_unit"),
            "room": values.get("address_room"),
        },
    }
    episode: EpisodeView = {}
    if latest is not None:
        ev = _decrypt(keyring, key, "maternal_episodes", latest.id, {
            "due_date": latest.due_date, "delivery_date": latest.delivery_date,
            "parity": latest.parity, "risk_flags": latest.risk_flags})  # fmt: skip
        episode = {
            "stage": latest.stage,
            "due_date": ev.get("due_date"),
            "delivery_date": ev.get("delivery_date"),
            "parity": storage.decode_int(ev["parity"]) if "parity" in ev else None,
            "risk_flags": list(storage.decode_flags(ev.get("risk_flags", ""))),
        }
    children: list[ChildView] = []
    for child in sorted(row.children, key=lambda c: (c.created_at, c.id)):
        cv = _decrypt(keyring, key, "children", child.id,
                      {"birth_date": child.birth_date, "sex": child.sex})  # fmt: skip
        children.append({"birth_date": cv.get("birth_date"), "sex": cv.get("sex")})
    return ResidentView(base.id, base.community, base.district, base.street, False, personal,
                        base.stage, episode, children)  # fmt: skip


def _community_names(session: Session) -> dict[str, str]:
    return {i: n for n, i in known_communities(session).items()}


def get(session: Session, keyring: Keyring, acting: Acting, resident_id: str) -> ResidentView:
    row = visible_resident(session, acting, resident_id)
    view = _view(keyring, acting, row, _community_names(session))
    record(session, acting, "resident.read", subjects=[subject(keyring, row.id)])
    return view
