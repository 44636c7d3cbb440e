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
    Columns,
    StoredRow,
    case_queries,
    json_list,
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
from policies.results import policy_reference

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
# plain fields (scoping needs them unencrypted) and where they are in a case row
_PLAIN = {"address.district": 7, "address.street": 8, "address.community": 10,
          "episode.stage": 13}  # fmt: skip
# where a table's row id is in a case row
_ROW_ID = {RESIDENTS: 1, EPISODES: 12, CHILDREN: 14}

_SERVICES = {s.value: s for s in Service}
_ASSIGNMENT_STATUS = {s.value: s for s in AssignmentStatus}
_AGREEMENT_STATUS = {s.value: s for s in AgreementStatus}


@dataclass(frozen=True, slots=True)
class TableRead:
    """One table's part of a read: its `keys` plan, where its row id and stored bytes are in a
    case row, and each column's record field and decoder (in the stored order)."""

    stored: StoredColumns
    row_id_at: int
    start: int
    end: int
    fields: tuple[tuple[str, str, Decoder], ...]


@dataclass(frozen=True, slots=True)
class ReadPlan:
    """What to read for a set of record fields: per table the encrypted columns (sorted by
    record field), and which plain fields, where."""

    columns: Columns
    tables: tuple[TableRead, ...]
    plain: tuple[tuple[str, int], ...]


@lru_cache(maxsize=64)
def read_plan(fields: frozenset[str]) -> ReadPlan:
    by_table: dict[str, list[tuple[str, str, Decoder]]] = {}
    for name in sorted(fields & ENCRYPTED.keys()):
        table, column, decode = ENCRYPTED[name]
        by_table.setdefault(table, []).append((column, name, decode))
    columns = {t: tuple(c for c, _, _ in cols) for t, cols in by_table.items()}
    if any(f.startswith("episode.") for f in fields):
        columns.setdefault(EPISODES, ())  # the stage is plain, but lives in the episode row
    planned: Columns = tuple(sorted(columns.items()))
    stored_at = case_queries(planned).stored_at
    tables = tuple(
        TableRead(
            stored_columns(table, columns[table]),
            _ROW_ID[table],
            stored_at[table],
            stored_at[table] + len(cols),
            tuple(cols),
        )
        for table, cols in sorted(by_table.items())
    )
    plain = tuple((name, at) for name, at in _PLAIN.items() if name in fields)
    return ReadPlan(planned, tables, plain)


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
    rows: Sequence[StoredRow], policy_versions: Collection[str] | None
) -> AgreementTerms:
    """AgreementTerms from the agreement's rows (one per purpose), each purpose pinned to its
    policy version (`id@version`). A purpose whose version is not among the loaded ones is
    left out, so the engine answers `purpose_not_agreed` (deny by default)."""
    agreement_id, status, valid_from, valid_to = rows[0][:4]
    pinned = (
        (purpose, policy_reference(policy_id, version))
        for *_, purpose, policy_id, version in rows
        if purpose is not None
    )
    purposes = {
        purpose: ref for purpose, ref in pinned if policy_versions is None or ref in policy_versions
    }
    # an unknown status stays a string: AgreementTerms refuses it (EngineInputError)
    known = _AGREEMENT_STATUS.get(status, status)
    return AgreementTerms(agreement_id, known, valid_from, valid_to, purposes)


def assignment_terms(row: StoredRow, bookings: Sequence[StoredRow]) -> AssignmentTerms:
    """Bookings (already in date order) of services the assignment still has."""
    chosen = json_list(row[5])
    return AssignmentTerms(
        row[0],
        row[2],
        # an unknown code stays a string: the engine's inputs refuse it (EngineInputError)
        _ASSIGNMENT_STATUS.get(row[4], row[4]),
        tuple(_SERVICES.get(s, s) for s in chosen),
        tuple(Booking(_SERVICES.get(code, code), on) for _, code, on in bookings if code in chosen),
    )


def _record(keyring: Keyring, plan: ReadPlan, row: StoredRow, reference: str) -> ResidentRecord:
    """Decrypt and decode the planned fields of one resident; an erased resident (no key)
    yields no values."""
    wrapped = row[11]
    if wrapped is None or row[9] is not None:
        return ResidentRecord({}, reference)
    key = keyring.unwrap_stored(wrapped, row[1])  # bound to its owner, the resident
    values: dict[str, object] = {name: row[at] for name, at in plan.plain}
    decrypt = keyring.decrypt_stored_row
    for table in plan.tables:
        row_id = row[table.row_id_at]
        if row_id is None:  # no episode or child
            continue
        texts = decrypt(key, table.stored, row_id, row[table.start : table.end])
        for column, name, decode in table.fields:
            text = texts.get(column)
            values[name] = None if text is None else decode(text)
    return ResidentRecord(values, reference)


def load(
    session: Session,
    keyring: Keyring,
    cases: Sequence[StoredRow],
    fields: Collection[str],
    *,
    policy_versions: Collection[str] | None = None,
) -> list[CaseInputs | Unreadable]:
    """Policy inputs for each case row (`rows.changed_cases` or `rows.case_by_id` with this
    plan's columns), in the given order, from three more queries (`rows.page_rows`); a case
    whose stored data cannot be read is an `Unreadable`."""
    if not cases:
        return []
    plan = read_plan(frozenset(fields))
    rows = page_rows(session.connection(), cases)
    terms: dict[str, AgreementTerms] = {}
    out: list[CaseInputs | Unreadable] = []
    reference = keyring.case_reference
    for row in cases:
        assignment_id, resident_id, agreement_id, seq = row[0], row[1], row[2], row[6]
        try:
            agreement = terms.get(agreement_id)
            if agreement is None:
                agreement = terms[agreement_id] = agreement_terms(
                    rows.agreements[agreement_id], policy_versions
                )
            out.append(
                CaseInputs(
                    assignment_id,
                    resident_id,
                    agreement_id,
                    seq,
                    _record(keyring, plan, row, reference(agreement_id, resident_id)),
                    fold(rows.consents.get(resident_id, ()), agreement_id),
                    agreement,
                    assignment_terms(row, rows.bookings.get(assignment_id, ())),
                )
            )
        except (DecryptionError, FormatError):
            out.append(Unreadable(assignment_id, resident_id, agreement_id, seq, UNDECRYPTABLE))
        except (ValueError, EngineInputError):  # a stored text the codecs or engine refuse
            out.append(Unreadable(assignment_id, resident_id, agreement_id, seq, INVALID))
    return out
