"""A case's inputs to the policy engine, loaded from the database in a few batched queries.

For a page of assignments: their agreements (+ purposes), residents, wrapped data keys,
latest episode, latest child and consent events are fetched with one `IN (...)` query each
(never one query per case). Only the columns the policy needs are decrypted; the plaintext
lives in the frozen `ResidentRecord` handed to `policies.evaluate` and nowhere else.

Storage text of non-string fields is decoded with `exchange.db.storage` (the format the
importer writes).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import LargeBinary, Select, select, type_coerce
from sqlalchemy.orm import Session, defer, selectinload
from sqlalchemy.orm.interfaces import LoaderOption

from exchange.db import models as m
from exchange.db import storage
from exchange.db.types import EncryptedField
from exchange.services.consent_state import fold as fold_consents
from keys.datakeys import DataKey, WrappedKey  # noqa: F401  (bench/pull.py reads it here)
from keys.fields import EncryptedValue, StoredColumns, stored_columns
from keys.keyring import Keyring
from policies.catalogue import ADDRESS_PARTS, RECORD_FIELDS, Service
from policies.document import Policy
from policies.inputs import (
    AgreementStatus,
    AgreementTerms,
    AssignmentStatus,
    AssignmentTerms,
    Booking,
    ConsentState,
    ResidentRecord,
)

RESIDENTS, EPISODES, CHILDREN = "residents", "maternal_episodes", "children"

# record field -> (table, column, decoder); the table decides which row the column lives in
_ENCRYPTED: Mapping[str, tuple[str, str, Callable[[str], object]]] = {
    "resident.name": (RESIDENTS, "name", str),
    "resident.national_id": (RESIDENTS, "national_id", str),
    "resident.birth_date": (RESIDENTS, "birth_date", storage.decode_date),
    "resident.phone": (RESIDENTS, "phone", str),
    "address.compound": (RESIDENTS, "address_compound", str),
    "address.building": (RESIDENTS, "address_building", str),
    "address.unit": (RESIDENTS, "address_unit", str),
    "address.room": (RESIDENTS, "address_room", str),
    "episode.due_date": (EPISODES, "due_date", storage.decode_date),
    "episode.delivery_date": (EPISODES, "delivery_date", storage.decode_date),
    "episode.parity": (EPISODES, "parity", storage.decode_int),
    "episode.risk_flags": (EPISODES, "risk_flags", storage.decode_flags),
    "child.birth_date": (CHILDREN, "birth_date", storage.decode_date),
    "child.sex": (CHILDREN, "sex", str),
}
# (table, column) -> (record field, decoder)
_FIELD_OF: Mapping[tuple[str, str], tuple[str, Callable[[str], object]]] = {
    (table, column): (name, decode) for name, (table, column, decode) in _ENCRYPTED.items()
}
_MODELS: Mapping[str, Any] = {RESIDENTS: m.Resident, EPISODES: m.MaternalEpisode, CHILDREN: m.Child}
# plain columns (scoping needs them unencrypted)
_PLAIN = frozenset({"address.district", "address.street", "address.community", "episode.stage"})

# what each derived field and composite source reads
_READS: Mapping[str, tuple[str, ...]] = {
    "address": ADDRESS_PARTS,
    "derived.resident_age_band": ("resident.birth_date",),
    "derived.gestation_weeks": ("episode.due_date", "episode.stage"),
    "derived.delivery_month": ("episode.delivery_date",),
    "derived.infant_age_months_band": ("child.birth_date",),
}


def fields_needed(policies: Iterable[Policy]) -> frozenset[str]:
    """The record fields the given policies read (rules that disclose, and their conditions)."""
    needed: set[str] = set()
    for policy in policies:
        for rule in policy.fields:
            if not rule.discloses:
                continue
            needed.update(_READS.get(rule.source, (rule.source,)))
            if any(c.name == "stage_in" for c in rule.conditions):
                needed.add("episode.stage")
    return frozenset(needed & RECORD_FIELDS)


@dataclass(frozen=True, slots=True, repr=False)
class CaseInputs:
    """Everything `policies.evaluate` needs for one assignment, plus the ids to audit it."""

    assignment_id: str
    resident_id: str
    contractor_id: str
    record: ResidentRecord
    consents: ConsentState
    agreement: AgreementTerms
    assignment: AssignmentTerms
    data_key: DataKey | None

    def __repr__(self) -> str:
        return f"CaseInputs(assignment_id={self.assignment_id!r})"


def agreement_terms(
    row: m.Agreement, policy_versions: Mapping[str, int] | None = None
) -> AgreementTerms:
    """AgreementTerms from a row; a purpose whose pinned policy version is not the loaded one
    is left out, so the engine answers `purpose_not_agreed` (deny by default)."""
    purposes = {
        p.purpose: p.policy_id
        for p in row.purposes
        if policy_versions is None or policy_versions.get(p.policy_id) == p.policy_version
    }
    return AgreementTerms(
        row.id, AgreementStatus(row.status), row.valid_from, row.valid_to, purposes
    )


def assignment_terms(row: m.Assignment) -> AssignmentTerms:
    bookings = tuple(
        Booking(Service(b.service_code), b.scheduled_on)
        for b in sorted(row.bookings, key=lambda b: (b.scheduled_on, b.id))
        if b.service_code in row.services
    )
    return AssignmentTerms(
        row.id,
        row.agreement_id,
        AssignmentStatus(row.status),
        tuple(Service(s) for s in row.services),
        bookings,
    )


def _latest(rows: Iterable[Any]) -> dict[str, Any]:
    """resident id -> its newest row (created_at, id), as the importer picks it."""
    out: dict[str, Any] = {}
    for row in sorted(rows, key=lambda r: (r.created_at, r.id)):
        out[row.resident_id] = row
    return out


# table -> row id -> the row's stored bytes of its table's StoredColumns, in that order
StoredValues = Mapping[str, Mapping[str, Sequence[bytes | None]]]


@lru_cache(maxsize=64)
def _plans(fields: frozenset[str]) -> dict[str, StoredColumns]:
    """table -> the encrypted columns of it that `fields` read (fields sorted by name)."""
    by_table: dict[str, list[str]] = {}
    for name in sorted(fields & _ENCRYPTED.keys()):
        table, column, _ = _ENCRYPTED[name]
        by_table.setdefault(table, []).append(column)
    return {table: stored_columns(table, tuple(cols)) for table, cols in by_table.items()}


def _stored_of(row: Any, plan: StoredColumns) -> tuple[bytes | None, ...]:
    """The stored bytes of an already loaded row (callers that pass no StoredValues)."""
    values = (getattr(row, column) for column in plan.columns)
    return tuple(None if v is None else EncryptedValue.to_bytes(v) for v in values)


def build_record(
    keyring: Keyring,
    key: DataKey | None,
    case_reference: str,
    resident: m.Resident,
    community_name: str | None,
    episode: m.MaternalEpisode | None,
    child: m.Child | None,
    fields: Collection[str],
    *,
    stored: StoredValues | None = None,
) -> ResidentRecord:
    """Decrypt only `fields` of one resident; an erased resident (no key) yields no values.

    `stored` (from `_load_rows`) holds the rows' stored bytes, decrypted without building an
    EncryptedValue per field; without it the rows' own (loaded) attributes are read.
    """
    values: dict[str, object] = {}
    if key is None or resident.erased_at is not None:
        return ResidentRecord({}, case_reference)
    plain = {
        "address.district": resident.district,
        "address.street": resident.street,
        "address.community": community_name,
        "episode.stage": episode.stage if episode is not None else None,
    }
    values.update({n: v for n, v in plain.items() if n in fields})
    decrypt = keyring.decrypt_stored_row
    for table, plan in _plans(frozenset(fields)).items():
        row = {RESIDENTS: resident, EPISODES: episode, CHILDREN: child}[table]
        if row is None:
            continue
        raw = stored.get(table, {}).get(row.id) if stored is not None else None
        texts = decrypt(key, plan, row.id, _stored_of(row, plan) if raw is None else raw)
        for column in plan.columns:
            name, decode = _FIELD_OF[(table, column)]
            text = texts.get(column)
            values[name] = None if text is None else decode(text)
    return ResidentRecord(values, case_reference)


@dataclass(frozen=True, slots=True)
class _Rows:
    agreements: dict[str, m.Agreement]
    residents: dict[str, m.Resident]
    communities: dict[str, str]
    keys: dict[str, bytes]
    episodes: dict[str, m.MaternalEpisode]
    children: dict[str, m.Child]
    consents: dict[str, list[m.ConsentEvent]]
    stored: dict[str, dict[str, tuple[bytes | None, ...]]] = field(default_factory=dict)


def _encrypted_deferred(model: Any) -> list[LoaderOption]:
    """Leave every encrypted column of `model` unloaded: the reads select the stored bytes
    of the columns they decrypt (`_with_stored`), so none is parsed into an EncryptedValue."""
    columns = [c.key for c in model.__table__.columns if isinstance(c.type, EncryptedField)]
    return [defer(getattr(model, key)) for key in columns]


def _with_stored(
    session: Session,
    query: Select[Any],
    table: str,
    plans: Mapping[str, StoredColumns],
    stored: dict[str, dict[str, tuple[bytes | None, ...]]],
) -> list[Any]:
    """Run `query` (one entity of `table`) with the stored bytes of the planned columns."""
    model = _MODELS[table]
    plan = plans.get(table)
    raw = [type_coerce(getattr(model, c), LargeBinary) for c in plan.columns] if plan else []
    by_id: dict[str, tuple[bytes | None, ...]] = {}
    stored[table] = by_id
    out = []
    for entity, *values in session.execute(
        query.add_columns(*raw).options(*_encrypted_deferred(model))
    ):
        by_id[entity.id] = tuple(values)
        out.append(entity)
    return out


def _load_rows(
    session: Session, assignments: Sequence[m.Assignment], fields: Collection[str]
) -> _Rows:
    resident_ids = sorted({a.resident_id for a in assignments})
    plans = _plans(frozenset(fields))
    stored: dict[str, dict[str, tuple[bytes | None, ...]]] = {}
    agreement_ids = sorted({a.agreement_id for a in assignments})
    agreements = {
        a.id: a
        for a in session.scalars(
            select(m.Agreement)
            .where(m.Agreement.id.in_(agreement_ids))
            .options(selectinload(m.Agreement.purposes))
        )
    }
    residents = {
        r.id: r
        for r in _with_stored(
            session,
            select(m.Resident).where(m.Resident.id.in_(resident_ids)),
            RESIDENTS,
            plans,
            stored,
        )
    }
    community_rows = session.execute(
        select(m.Community.id, m.Community.name).where(
            m.Community.id.in_(sorted({r.community_id for r in residents.values()}))
        )
    )
    communities: dict[str, str] = {row[0]: row[1] for row in community_rows}
    keys = {
        rid: bytes(wrapped)
        for rid, wrapped in session.execute(
            select(m.ResidentDataKey.resident_id, m.ResidentDataKey.wrapped_key).where(
                m.ResidentDataKey.resident_id.in_(resident_ids)
            )
        )
    }
    episodes: dict[str, m.MaternalEpisode] = {}
    if any(f.startswith("episode.") for f in fields):
        episodes = _latest(
            _with_stored(
                session,
                select(m.MaternalEpisode).where(m.MaternalEpisode.resident_id.in_(resident_ids)),
                EPISODES,
                plans,
                stored,
            )
        )
    children: dict[str, m.Child] = {}
    if any(f.startswith("child.") for f in fields):
        children = _latest(
            _with_stored(
                session,
                select(m.Child).where(m.Child.resident_id.in_(resident_ids)),
                CHILDREN,
                plans,
                stored,
            )
        )
    consents: dict[str, list[m.ConsentEvent]] = {}
    for event in session.scalars(
        select(m.ConsentEvent)
        .where(m.ConsentEvent.resident_id.in_(resident_ids))
        .order_by(m.ConsentEvent.resident_id, m.ConsentEvent.sequence)
    ):
        consents.setdefault(event.resident_id, []).append(event)
    return _Rows(agreements, residents, communities, keys, episodes, children, consents, stored)


def load_cases(
    session: Session,
    keyring: Keyring,
    assignments: Sequence[m.Assignment],
    fields: Collection[str],
    *,
    policy_versions: Mapping[str, int] | None = None,
) -> list[CaseInputs]:
    """Policy-engine inputs for each assignment (in the given order). Bookings must be loaded
    with the assignments (selectinload) to stay batched."""
    if not assignments:
        return []
    rows = _load_rows(session, assignments, fields)
    terms = {aid: agreement_terms(a, policy_versions) for aid, a in rows.agreements.items()}
    out: list[CaseInputs] = []
    for assignment in assignments:
        resident = rows.residents[assignment.resident_id]
        wrapped = rows.keys.get(resident.id)
        key = keyring.unwrap_stored(wrapped) if wrapped is not None else None
        reference = keyring.case_reference(assignment.agreement_id, resident.id)
        record = build_record(
            keyring,
            key,
            reference,
            resident,
            rows.communities.get(resident.community_id),
            rows.episodes.get(resident.id),
            rows.children.get(resident.id),
            fields,
            stored=rows.stored,
        )
        out.append(
            CaseInputs(
                assignment_id=assignment.id,
                resident_id=resident.id,
                contractor_id=assignment.contractor_id,
                record=record,
                consents=fold_consents(rows.consents.get(resident.id, ()), assignment.agreement_id),
                agreement=terms[assignment.agreement_id],
                assignment=assignment_terms(assignment),
                data_key=key,
            )
        )
    return out
