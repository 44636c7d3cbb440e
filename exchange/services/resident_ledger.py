"""居民台账: the office's query over residents, masked, within the acting's scope.

One query for every door: the console's list page, its `.xlsx` export, `GET /v1/residents`
and `GET /v1/residents/{id}`, and the exact lookup of both (`POST .../lookup`). Scope is the
first condition of every statement: a community cadre's query never reaches a resident of
another community, whatever the filters say, so a lookup answers "exists elsewhere" exactly as
"does not exist".

Filters: community, stage (of the latest episode), due month, assignment status (an active
assignment or none), and the two identifying lookups: an exact ID number or an exact mobile
number, each through its keyed blind index (separate hash domains, every key version a stored
index may be under). The phone lookup then decrypts only the rows in scope its index matches
(to confirm: a blind index is a filter, the plaintext decides), plus any row stored before the
phone had an index (`phone_index` NULL until `exchange keys reindex-phones`). The due month is
only stored encrypted, so that filter decrypts the candidates in scope (no plaintext or
unkeyed hash of a date is stored).

Audit: a page of rows is `resident.list` with the pseudonyms shown (details `view=masked`);
a page asked for by an ID number or phone is `resident.lookup` instead, with the field looked
up and a keyed reference of the value (`lookup.ref`, the audit pseudonym key over a
domain-separated text: recomputable by the office, never the value), and how many rows it
found in scope.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, or_, select
from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from audit.entry import DetailValue
from exchange.db import models as m
from exchange.db import storage
from exchange.db.blind_index import blind_index_versions
from exchange.db.models.codes import STAGES
from exchange.identity import COMMUNITY_CADRE, OFFICE_ADMIN, Acting
from exchange.ledger.importer import known_communities
from exchange.services import masking
from exchange.services.audit_access import lookup_reference as lookup_reference
from exchange.services.audit_access import record, subject
from exchange.services.errors import FieldErrors, InvalidInput, NotPermitted, check_page
from exchange.services.residents import data_key, visible_resident
from keys.errors import InvalidIdentifierError, KeysError
from keys.fields import EncryptedValue
from keys.idnumbers import normalise_national_id
from keys.keyring import Keyring
from keys.phones import normalise_mobile
from keys.pseudonyms import BlindIndexField

MAX_PAGE = 200
BATCH = 500  # rows decrypted per round trip when a filter or an export walks the scope
ASSIGNMENT_FILTERS = ("assigned", "unassigned")
_MONTH = re.compile(r"(\d{4})-(\d{2})\Z")
_RESIDENT_COLUMNS = ("name", "national_id", "phone", "address_compound", "address_building")


@dataclass(frozen=True, slots=True, repr=False)
class LedgerQuery:
    """A checked query (see `parse_query`). repr hides the lookups: they are personal."""

    community_id: str | None = None
    stage: str | None = None
    due_month: tuple[int, int] | None = None
    assignment: str | None = None
    national_id: str | None = None  # normalised 18 characters
    phone: str | None = None  # 11 digits

    @property
    def lookup(self) -> str | None:
        """The identifying field this query looks up, if any (catalogue name)."""
        if self.national_id is not None:
            return "resident.national_id"
        if self.phone is not None:
            return "resident.phone"
        return None

    def __repr__(self) -> str:
        return f"LedgerQuery(stage={self.stage!r}, lookup={self.lookup!r})"


def parse_query(
    session: Session,
    *,
    community: str = "",
    stage: str = "",
    due_month: str = "",
    assignment: str = "",
    national_id: str = "",
    phone: str = "",
) -> LedgerQuery:
    """The query from a form's text; every field problem raised at once, never the value."""
    errors = FieldErrors()
    community_id = None
    if community:  # its id (the console's choice) or its name (the API's readers know it by)
        known = known_communities(session)
        community_id = known.get(community, community)
        if community_id not in set(known.values()):
            errors.add("community", "unknown", "no such community")
    if stage and stage not in STAGES:
        errors.add("stage", "unknown", f"must be one of {', '.join(STAGES)}")
    month = None
    if due_month:
        found = _MONTH.match(due_month.strip())
        if found is None or not 1 <= int(found.group(2)) <= 12:
            errors.add("due_month", "format", "must be YYYY-MM")
        else:
            month = (int(found.group(1)), int(found.group(2)))
    if assignment and assignment not in ASSIGNMENT_FILTERS:
        errors.add("assignment", "unknown", "must be assigned or unassigned")
    nid = None
    if national_id.strip():
        try:
            nid = normalise_national_id(national_id)
        except (KeysError, ValueError):
            errors.add("national_id", "format", "must be an 18-digit (or 15-digit) ID number")
    number = None
    if phone.strip():
        try:  # as the import stored it, and as its blind index is computed
            number = normalise_mobile(phone)
        except InvalidIdentifierError:
            errors.add("phone", "format", "must be an 11-digit mobile number")
    errors.raise_any()
    return LedgerQuery(community_id, stage or None, month, assignment or None, nid, number)


def parse_lookup(session: Session, *, national_id: str = "", phone: str = "") -> LedgerQuery:
    """An exact lookup: one ID number or one phone (never both, never neither); the values
    come from a request's body, never its address."""
    if not national_id.strip() and not phone.strip():
        raise InvalidInput.field("national_id", "required", "give an ID number or a phone")
    if national_id.strip() and phone.strip():
        raise InvalidInput.field("phone", "one_of", "give an ID number or a phone, not both")
    return parse_query(session, national_id=national_id, phone=phone)


class _Masked(TypedDict):
    id: str
    community: str
    name: str | None
    national_id: str | None
    phone: str | None
    address: str
    stage: str | None
    due_date: str | None
    delivery_date: str | None


class MaskedResident(_Masked):
    assigned: bool


def _scope(acting: Acting) -> list[ColumnElement[bool]]:
    """The acting's scope as the first condition of every statement."""
    role = acting.identity.role
    if role == OFFICE_ADMIN:
        return []
    if role == COMMUNITY_CADRE:
        return [m.Resident.community_id.in_(sorted(acting.identity.community_ids))]
    raise NotPermitted(f"role {role} may not read the resident ledger")


def _latest_stage() -> ColumnElement[str | None]:
    ep = m.MaternalEpisode
    return (
        select(ep.stage).where(ep.resident_id == m.Resident.id)
        .order_by(ep.created_at.desc(), ep.id.desc()).limit(1)
        .correlate(m.Resident).scalar_subquery()
    )  # fmt: skip


def _active_assignment() -> ColumnElement[bool]:
    return exists().where(m.Assignment.resident_id == m.Resident.id,
                          m.Assignment.status == "active")  # fmt: skip


def _conditions(session: Session, keyring: Keyring, acting: Acting,
                q: LedgerQuery) -> list[ColumnElement[bool]]:  # fmt: skip
    conds = _scope(acting) + [m.Resident.erased_at.is_(None)]
    if q.community_id is not None:
        conds.append(m.Resident.community_id == q.community_id)
    if q.stage is not None:
        conds.append(_latest_stage() == q.stage)
    if q.assignment == "assigned":
        conds.append(_active_assignment())
    elif q.assignment == "unassigned":
        conds.append(~_active_assignment())
    if q.national_id is not None or q.phone is not None:
        # every version a stored index may be under (during a blind-index rotation, both);
        # read without holding the marker: a lookup never holds up a rotation
        versions = blind_index_versions(session, hold=False)
    if q.national_id is not None:
        conds.append(m.Resident.national_id_index.in_(
            versions.candidates(keyring, q.national_id)))  # fmt: skip
    if q.phone is not None:
        # the rows whose phone index matches, and those stored before the phone had an index
        # (until `exchange keys reindex-phones` ran): only these are decrypted, to confirm
        phones = versions.candidates(keyring, q.phone, BlindIndexField.PHONE)
        conds.append(or_(m.Resident.phone_index.in_(phones),
                         m.Resident.phone_index.is_(None) & m.Resident.phone.is_not(None)))
    return conds


def _decrypting(q: LedgerQuery) -> bool:
    """Whether a filter needs the decrypted values (so SQL cannot count or page alone)."""
    return q.due_month is not None or q.phone is not None


# ledger order: by id, which is a version 7 UUID (time-ordered: registration order); one
# column, so the export's keyset paging is exact on every backend
_ORDER = (m.Resident.id,)
# plain rows (no ORM identity map): an export of the whole scope stays flat in memory
_COLUMNS = (m.Resident.id, m.Resident.community_id, m.ResidentDataKey.wrapped_key,
            *(getattr(m.Resident, c) for c in _RESIDENT_COLUMNS))  # fmt: skip


@dataclass(frozen=True, slots=True, repr=False)
class _Row:
    id: str
    community_id: str
    wrapped_key: bytes | None
    sealed: dict[str, EncryptedValue]


@dataclass(frozen=True, slots=True, repr=False)
class _Episode:
    id: str
    stage: str
    sealed: dict[str, EncryptedValue]


def _select(conds: Sequence[ColumnElement[bool]]) -> Select[Any]:
    return (select(*_COLUMNS).outerjoin(m.ResidentDataKey,
                                        m.ResidentDataKey.resident_id == m.Resident.id)
            .where(*conds))  # fmt: skip


def _rows(session: Session, stmt: Select[Any]) -> list[_Row]:
    out = []
    for rid, community_id, wrapped, *values in session.execute(stmt):
        sealed = {c: v for c, v in zip(_RESIDENT_COLUMNS, values, strict=True) if v is not None}
        out.append(_Row(rid, community_id, wrapped, sealed))
    return out


def _episodes(session: Session, ids: Sequence[str]) -> dict[str, _Episode]:
    """The latest episode of each resident (by creation, then id)."""
    ep = m.MaternalEpisode
    latest: dict[str, tuple[tuple[object, str], _Episode]] = {}
    for rid, eid, stage, created_at, due, delivered in session.execute(
        select(ep.resident_id, ep.id, ep.stage, ep.created_at, ep.due_date, ep.delivery_date)
        .where(ep.resident_id.in_(ids))
    ):  # fmt: skip
        order = (created_at, eid)
        if rid not in latest or latest[rid][0] < order:
            sealed = {c: v for c, v in (("due_date", due), ("delivery_date", delivered))
                      if v is not None}  # fmt: skip
            latest[rid] = (order, _Episode(eid, stage, sealed))
    return {rid: episode for rid, (_, episode) in latest.items()}


def _assigned(session: Session, ids: Sequence[str]) -> set[str]:
    if not ids:
        return set()
    return set(session.scalars(
        select(m.Assignment.resident_id).where(m.Assignment.resident_id.in_(ids),
                                               m.Assignment.status == "active")
    ))  # fmt: skip


class _Masker:
    """Decrypts what a masked row needs, and masks it (the plaintext lives only in here)."""

    def __init__(self, session: Session, keyring: Keyring, q: LedgerQuery) -> None:
        self.session = session
        self.keyring = keyring
        self.q = q
        self.names = {i: n for n, i in known_communities(session).items()}

    def batch(self, rows: list[_Row]) -> list[MaskedResident]:
        """The masked rows, less those a decrypting filter rules out."""
        ids = [r.id for r in rows]
        episodes = _episodes(self.session, ids)
        assigned = _assigned(self.session, ids)
        out = []
        for row in rows:
            masked = self.row(row, episodes.get(row.id), row.id in assigned)
            if masked is not None:
                out.append(masked)
        return out

    def row(self, row: _Row, latest: _Episode | None, assigned: bool) -> MaskedResident | None:
        q, keyring = self.q, self.keyring
        values: dict[str, str] = {}
        episode: dict[str, str] = {}
        if row.wrapped_key is not None:
            key = keyring.unwrap_stored(bytes(row.wrapped_key), row.id)
            if row.sealed:
                values = keyring.decrypt_row(key, "residents", row.id, row.sealed)
            if latest is not None and latest.sealed:
                episode = keyring.decrypt_row(key, "maternal_episodes", latest.id, latest.sealed)
        if q.phone is not None and values.get("phone") != q.phone:
            return None
        if q.due_month is not None and not _in_month(episode.get("due_date"), q.due_month):
            return None
        return {
            "id": row.id,
            "community": self.names.get(row.community_id, ""),
            "name": masking.mask_name(values.get("name")),
            "national_id": masking.mask_national_id(values.get("national_id")),
            "phone": masking.mask_phone(values.get("phone")),
            "address": masking.mask_address(values.get("address_compound"),
                                            values.get("address_building")),
            "stage": latest.stage if latest else None,
            "due_date": episode.get("due_date"),
            "delivery_date": episode.get("delivery_date"),
            "assigned": assigned,
        }  # fmt: skip


def _in_month(text: str | None, month: tuple[int, int]) -> bool:
    if not text:
        return False
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return False
    return (day.year, day.month) == month


def _walk(session: Session, keyring: Keyring, conds: list[ColumnElement[bool]],
          q: LedgerQuery) -> Iterator[MaskedResident]:  # fmt: skip
    """Every matching row in ledger order, decrypted a batch at a time (keyset paging over
    plain rows, so memory does not grow with the scope)."""
    masker = _Masker(session, keyring, q)
    after: str | None = None
    while True:
        stmt = _select(conds)
        if after is not None:
            stmt = stmt.where(m.Resident.id > after)
        rows = _rows(session, stmt.order_by(*_ORDER).limit(BATCH))
        if not rows:
            return
        yield from masker.batch(rows)
        after = rows[-1].id


def _audit_page(session: Session, keyring: Keyring, acting: Acting, q: LedgerQuery,
                ids: Sequence[str], found: int) -> None:  # fmt: skip
    details: dict[str, DetailValue] = {"view": "masked"}
    if q.lookup is not None:
        value = q.national_id if q.national_id is not None else q.phone
        assert value is not None
        details.update({
            "lookup.field": q.lookup,
            "lookup.ref": lookup_reference(keyring, q.lookup, value),
            "lookup.found": found,
        })  # fmt: skip
    elif not ids:
        return  # an empty page of an ordinary list shows nobody: nothing to record
    record(session, acting, "resident.lookup" if q.lookup else "resident.list",
           subjects=[subject(keyring, i) for i in ids], details=details)  # fmt: skip


def search(
    session: Session,
    keyring: Keyring,
    acting: Acting,
    q: LedgerQuery,
    *,
    offset: int = 0,
    limit: int = 20,
) -> tuple[int, list[MaskedResident]]:
    """(total in scope matching, one page of masked rows), audited."""
    check_page(limit, offset, MAX_PAGE)
    conds = _conditions(session, keyring, acting, q)
    if _decrypting(q):
        total = 0
        page: list[MaskedResident] = []
        for total, masked in enumerate(_walk(session, keyring, conds, q), start=1):
            if offset < total <= offset + limit:
                page.append(masked)
    else:
        total = session.scalar(select(func.count()).select_from(m.Resident).where(*conds)) or 0
        rows = _rows(session, _select(conds).order_by(*_ORDER).limit(limit).offset(offset))
        page = _Masker(session, keyring, q).batch(rows)
    _audit_page(session, keyring, acting, q, [r["id"] for r in page], int(total))
    return int(total), page


def walk(session: Session, keyring: Keyring, acting: Acting,
         q: LedgerQuery) -> Iterator[MaskedResident]:  # fmt: skip
    """Every masked row of the query in ledger order, for an export (which audits what it
    wrote: `resident_export`)."""
    return _walk(session, keyring, _conditions(session, keyring, acting, q), q)


# -- one resident, masked -----------------------------------------------------------------


class ChildMasked(TypedDict):
    birth_date: str | None
    sex: str | None


class MaskedDetail(_Masked):
    parity: int | None
    risk_flags: list[str]
    children: list[ChildMasked]
    erased: bool


def detail(session: Session, keyring: Keyring, acting: Acting, resident_id: str) -> MaskedDetail:
    """One resident in the ledger's masked shapes, with her latest episode and children;
    audited as `resident.read` (view masked). Out of scope answers like no resident."""
    _scope(acting)  # roles without a ledger are refused before anything is looked up
    resident = visible_resident(session, acting, resident_id)
    rows = _rows(session, _select([m.Resident.id == resident.id]))
    masked = _Masker(session, keyring, LedgerQuery()).batch(rows)
    out: MaskedDetail = {
        "id": resident.id, "community": masked[0]["community"] if masked else "",
        "name": None, "national_id": None, "phone": None, "address": "", "stage": None,
        "due_date": None, "delivery_date": None, "parity": None, "risk_flags": [],
        "children": [], "erased": resident.erased_at is not None,
    }  # fmt: skip
    if masked:
        for name in ("name", "national_id", "phone", "address", "stage", "due_date",
                     "delivery_date"):  # fmt: skip
            out[name] = masked[0][name]
    key = data_key(keyring, resident)
    latest = max(resident.episodes, key=lambda e: (e.created_at, e.id), default=None)
    if key is not None and latest is not None:
        sealed = {c: getattr(latest, c) for c in ("parity", "risk_flags")
                  if getattr(latest, c) is not None}  # fmt: skip
        values = keyring.decrypt_row(key, "maternal_episodes", latest.id, sealed)
        out["parity"] = storage.decode_int(values["parity"]) if "parity" in values else None
        out["risk_flags"] = list(storage.decode_flags(values.get("risk_flags", "")))
    if key is not None:
        for child in sorted(resident.children, key=lambda c: (c.created_at, c.id)):
            sealed = {c: getattr(child, c) for c in ("birth_date", "sex")
                      if getattr(child, c) is not None}  # fmt: skip
            values = keyring.decrypt_row(key, "children", child.id, sealed)
            out["children"].append({"birth_date": values.get("birth_date"),
                                    "sex": values.get("sex")})  # fmt: skip
    record(session, acting, "resident.read", subjects=[subject(keyring, resident.id)],
           details={"view": "masked"})  # fmt: skip
    return out
