"""Step 1b: each case's policy inputs, typed once, from the page's stored rows.

Only the record fields the purpose's plans read (`PolicySet.reads`) are decrypted: per
resident the wrapped data key is unwrapped once (the keyring caches it) and each table's
planned columns are decrypted in one `decrypt_stored_row` call, then decoded with the storage
codecs (`exchange.db.storage`). Codes become the engine's enum members by dict lookup here, so
the engine neither validates nor builds them again. The plaintext lives in the frozen
`ResidentRecord` and nowhere else.

A case whose stored data no longer decrypts, or decodes to something the engine refuses, is
not an error of the page: it becomes an `Unreadable` with a reason code and the other cases go
on. A key provider failure (a root key not held) is the keyring's, not the row's: it raises.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy.orm import Session

from exchange.db import storage
from exchange.services.consent_state import fold
from exchange.services.disclosure.rows import (
    CHILDREN,
    EPISODES,
    RESIDENTS,
    AssignmentRow,
    PageRows,
    StoredRow,
    page_rows,
)
from keys.errors import DecryptionError, FormatError
from keys.fields import StoredColumns, stored_columns
from keys.keyring import Keyring
from policies.catalogue import Service
from policies.errors import EngineInputError
from policies.inputs import (
    AgreementStatus,
    AgreementTerms,
    AssignmentStatus,
    AssignmentTerms,
    Booking,
    ConsentState,
    ResidentRecord,
)

# Why a case could not be read (audit reason codes and the metric's label).
UNDECRYPTABLE = "stored_data_undecryptable"
INVALID = "stored_data_invalid"

Decoder = Callable[[str], object]
# record field -> (table, column, decoder); the table decides which row the column lives in
ENCRYPTED: Mapping[str, tuple[str, str, Decoder]] = {
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
# plain columns (scoping needs them unencrypted): record field -> where it is in the rows
_PLAIN = ("address.district", "address.street", "address.community", "episode.stage")
# where a table's stored bytes start in its row (rows.page_rows documents the layout)
_STORED_AT = {RESIDENTS: 6, EPISODES: 3, CHILDREN: 2}

_SERVICES = {s.value: s for s in Service}
_ASSIGNMENT_STATUS = {s.value: s for s in AssignmentStatus}
_AGREEMENT_STATUS = {s.value: s for s in AgreementStatus}


@dataclass(frozen=True, slots=True)
class ReadPlan:
    """What to read for a set of record fields: per table the encrypted columns (sorted by
    record field), their `keys` plan and their decoders; which plain fields."""

    columns: Mapping[str, tuple[str, ...]]
    stored: Mapping[str, StoredColumns]
    decoders: Mapping[str, tuple[tuple[str, str, Decoder], ...]]
    plain: frozenset[str]


@lru_cache(maxsize=64)
def read_plan(fields: frozenset[str]) -> ReadPlan:
    by_table: dict[str, list[tuple[str, str, Decoder]]] = {}
    for name in sorted(fields & ENCRYPTED.keys()):
        table, column, decode = ENCRYPTED[name]
        by_table.setdefault(table, []).append((column, name, decode))
    columns = {t: tuple(c for c, _, _ in cols) for t, cols in by_table.items()}
    if any(f.startswith("episode.") for f in fields):
        columns.setdefault(EPISODES, ())  # the stage is plain, but lives in the episode row
    return ReadPlan(
        columns=columns,
        stored={t: stored_columns(t, cols) for t, cols in columns.items() if cols},
        decoders={t: tuple(cols) for t, cols in by_table.items()},
        plain=frozenset(fields) & frozenset(_PLAIN),
    )


@dataclass(frozen=True, slots=True, repr=False)
class CaseInputs:
    """Everything the engine needs for one assignment, plus the ids to audit it."""

    assignment_id: str
    resident_id: str
    agreement_id: str
    seq: int
    record: ResidentRecord
    consents: ConsentState
    agreement: AgreementTerms
    assignment: AssignmentTerms

    def __repr__(self) -> str:
        return f"CaseInputs(assignment_id={self.assignment_id!r})"


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A case withheld because its stored data cannot be read; `reason` is a code."""

    assignment_id: str
    resident_id: str
    agreement_id: str
    seq: int
    reason: str


def agreement_terms(
    rows: Sequence[StoredRow], policy_versions: Mapping[str, int] | None
) -> AgreementTerms:
    """AgreementTerms from the agreement's rows (one per purpose). A purpose whose pinned
    policy version is not the loaded one is left out, so the engine answers
    `purpose_not_agreed` (deny by default)."""
    agreement_id, status, valid_from, valid_to = rows[0][:4]
    purposes = {
        purpose: policy_id
        for *_, purpose, policy_id, version in rows
        if purpose is not None
        and (policy_versions is None or policy_versions.get(policy_id) == version)
    }
    # an unknown status stays a string: AgreementTerms refuses it (EngineInputError)
    known = _AGREEMENT_STATUS.get(status, status)
    return AgreementTerms(agreement_id, known, valid_from, valid_to, purposes)  # type: ignore[arg-type]


def assignment_terms(row: AssignmentRow, bookings: Sequence[StoredRow]) -> AssignmentTerms:
    """Bookings (already in date order) of services the assignment still has."""
    chosen = row.services
    return AssignmentTerms(
        row.id,
        row.agreement_id,
        _ASSIGNMENT_STATUS.get(row.status, row.status),  # type: ignore[arg-type]
        tuple(_SERVICES.get(s, s) for s in chosen),  # type: ignore[arg-type]
        tuple(
            Booking(_SERVICES.get(code, code), on)  # type: ignore[arg-type]
            for _, code, on in bookings
            if code in chosen
        ),
    )


def _record(
    keyring: Keyring, plan: ReadPlan, rows: PageRows, resident_id: str, reference: str
) -> ResidentRecord:
    """Decrypt and decode the planned fields of one resident; an erased resident (no key)
    yields no values."""
    resident = rows.residents[resident_id]
    _, district, street, erased_at, community, wrapped = resident[:6]
    if wrapped is None or erased_at is not None:
        return ResidentRecord({}, reference)
    key = keyring.unwrap_stored(wrapped)
    episode = rows.episodes.get(resident_id)
    values: dict[str, object] = {}
    if plan.plain:
        plain = {
            "address.district": district,
            "address.street": street,
            "address.community": community,
            "episode.stage": None if episode is None else episode[2],
        }
        for name in plan.plain:
            values[name] = plain[name]
    decrypt = keyring.decrypt_stored_row
    for table, columns in plan.stored.items():
        row = {RESIDENTS: resident, EPISODES: episode, CHILDREN: rows.children.get(resident_id)}[
            table
        ]
        if row is None:
            continue
        texts = decrypt(key, columns, row[1] if table != RESIDENTS else row[0],
                        row[_STORED_AT[table]:])  # fmt: skip
        for column, name, decode in plan.decoders[table]:
            text = texts.get(column)
            values[name] = None if text is None else decode(text)
    return ResidentRecord(values, reference)


def load(
    session: Session,
    keyring: Keyring,
    assignments: Sequence[AssignmentRow],
    fields: Collection[str],
    *,
    policy_versions: Mapping[str, int] | None = None,
) -> list[CaseInputs | Unreadable]:
    """Policy inputs for each assignment, in the given order, from a fixed number of queries
    (`rows.page_rows`); a case whose stored data cannot be read is an `Unreadable`."""
    if not assignments:
        return []
    plan = read_plan(frozenset(fields))
    rows = page_rows(session.connection(), assignments, plan.columns)
    terms: dict[str, AgreementTerms] = {}
    out: list[CaseInputs | Unreadable] = []
    for a in assignments:
        try:
            agreement = terms.get(a.agreement_id)
            if agreement is None:
                agreement = terms[a.agreement_id] = agreement_terms(
                    rows.agreements[a.agreement_id], policy_versions
                )
            reference = keyring.case_reference(a.agreement_id, a.resident_id)
            out.append(
                CaseInputs(
                    a.id,
                    a.resident_id,
                    a.agreement_id,
                    a.seq,
                    _record(keyring, plan, rows, a.resident_id, reference),
                    fold(rows.consents.get(a.resident_id, ()), a.agreement_id),  # type: ignore[arg-type]
                    agreement,
                    assignment_terms(a, rows.bookings.get(a.id, ())),
                )
            )
        except (DecryptionError, FormatError):
            out.append(Unreadable(a.id, a.resident_id, a.agreement_id, a.seq, UNDECRYPTABLE))
        except (ValueError, EngineInputError):  # a stored text the codecs or engine refuse
            out.append(Unreadable(a.id, a.resident_id, a.agreement_id, a.seq, INVALID))
    return out
