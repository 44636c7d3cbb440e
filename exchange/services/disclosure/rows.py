"""Step 1a: the stored rows a disclosure needs, from set-based Core queries.

For a page of assignments: their bookings, their agreements with purposes, the residents with
community name, wrapped data key and the stored bytes of the encrypted columns the plan reads,
the residents' latest episode and child (only when the plan reads them) and their consent
events. One query each, whatever the page size; rows come back as the driver's tuples (Core
`Row`s), never as ORM objects. The statements are built once per column set and reused.

Encrypted columns are selected as raw bytes (`type_coerce(..., LargeBinary)`): they are handed
to `keys` as stored, with no `EncryptedValue` per field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, LargeBinary, Select, bindparam, select, type_coerce

from exchange.db import models as m

RESIDENTS, EPISODES, CHILDREN = "residents", "maternal_episodes", "children"
# a result row as the driver returns it (a Core Row: a tuple by position)
StoredRow = Sequence[Any]

_assignments = m.Assignment.__table__
_agreements = m.Agreement.__table__
_purposes = m.AgreementPurpose.__table__
_bookings = m.Booking.__table__
_residents = m.Resident.__table__
_communities = m.Community.__table__
_data_keys = m.ResidentDataKey.__table__
_consents = m.ConsentEvent.__table__
_TABLES = {
    RESIDENTS: _residents,
    EPISODES: m.MaternalEpisode.__table__,
    CHILDREN: m.Child.__table__,
}


@dataclass(frozen=True, slots=True)
class AssignmentRow:
    """An assignment as the disclosure path reads it (`services` are the stored codes)."""

    id: str
    resident_id: str
    agreement_id: str
    contractor_id: str
    status: str
    services: Sequence[str]
    seq: int


_ASSIGNMENT_COLUMNS = (
    _assignments.c.id,
    _assignments.c.resident_id,
    _assignments.c.agreement_id,
    _assignments.c.contractor_id,
    _assignments.c.status,
    _assignments.c.services,
    _assignments.c.change_seq,
)
# a contractor's active assignments after a feed position, under its own agreements
_CHANGED = (
    select(*_ASSIGNMENT_COLUMNS)
    .join(_agreements, _agreements.c.id == _assignments.c.agreement_id)
    .where(
        _assignments.c.contractor_id == bindparam("contractor"),
        _agreements.c.contractor_id == bindparam("contractor"),
        _assignments.c.status == "active",
        _assignments.c.change_seq > bindparam("after"),
    )
    .order_by(_assignments.c.change_seq)
    .limit(bindparam("limit"))
)
_BY_ID = select(*_ASSIGNMENT_COLUMNS).where(_assignments.c.id == bindparam("id"))
_BOOKINGS = (
    select(_bookings.c.assignment_id, _bookings.c.service_code, _bookings.c.scheduled_on)
    .where(_bookings.c.assignment_id.in_(bindparam("ids", expanding=True)))
    .order_by(_bookings.c.scheduled_on, _bookings.c.id)
)
_AGREEMENTS = (
    select(
        _agreements.c.id,
        _agreements.c.status,
        _agreements.c.valid_from,
        _agreements.c.valid_to,
        _purposes.c.purpose,
        _purposes.c.policy_id,
        _purposes.c.policy_version,
    )
    .outerjoin(_purposes, _purposes.c.agreement_id == _agreements.c.id)
    .where(_agreements.c.id.in_(bindparam("ids", expanding=True)))
)
_CONSENTS = (
    select(
        _consents.c.resident_id,
        _consents.c.id,
        _consents.c.sequence,
        _consents.c.agreement_id,
        _consents.c.action,
        _consents.c.scopes,
        _consents.c.guardian,
    )
    .where(_consents.c.resident_id.in_(bindparam("ids", expanding=True)))
    .order_by(_consents.c.resident_id, _consents.c.sequence)
)


def changed_assignments(
    connection: Connection, contractor_id: str, after: int, limit: int
) -> list[AssignmentRow]:
    """The contractor's active assignments with feed sequence > `after`, in feed order."""
    rows = connection.execute(_CHANGED, {"contractor": contractor_id, "after": after,
                                         "limit": limit})  # fmt: skip
    return [AssignmentRow(*r) for r in rows]


def assignment_by_id(connection: Connection, assignment_id: str) -> AssignmentRow | None:
    row = connection.execute(_BY_ID, {"id": assignment_id}).first()
    return None if row is None else AssignmentRow(*row)


@lru_cache(maxsize=64)
def _resident_query(columns: tuple[str, ...]) -> Select[Any]:
    """Residents with community name, wrapped key and the stored bytes of `columns`."""
    r = _residents
    return (
        select(
            r.c.id,
            r.c.district,
            r.c.street,
            r.c.erased_at,
            _communities.c.name,
            _data_keys.c.wrapped_key,
            *(type_coerce(r.c[c], LargeBinary) for c in columns),
        )
        .outerjoin(_communities, _communities.c.id == r.c.community_id)
        .outerjoin(_data_keys, _data_keys.c.resident_id == r.c.id)
        .where(r.c.id.in_(bindparam("ids", expanding=True)))
    )


@lru_cache(maxsize=64)
def _dependent_query(table: str, columns: tuple[str, ...]) -> Select[Any]:
    """Episodes or children of the residents, oldest first (the last one per resident is the
    current one, as the importer picks it), with the stored bytes of `columns`."""
    t = _TABLES[table]
    extra = (t.c.stage,) if table == EPISODES else ()
    return (
        select(
            t.c.resident_id,
            t.c.id,
            *extra,
            *(type_coerce(t.c[c], LargeBinary) for c in columns),
        )
        .where(t.c.resident_id.in_(bindparam("ids", expanding=True)))
        .order_by(t.c.resident_id, t.c.created_at, t.c.id)
    )


@dataclass(frozen=True, slots=True)
class PageRows:
    """Everything stored that the cases of one page read, keyed for the per-case step.

    residents: id -> (id, district, street, erased_at, community name, wrapped key, *stored)
    episodes:  resident id -> (resident id, id, stage, *stored) of the current episode
    children:  resident id -> (resident id, id, *stored) of the current child
    """

    bookings: Mapping[str, list[StoredRow]]
    agreements: Mapping[str, list[StoredRow]]
    residents: Mapping[str, StoredRow]
    episodes: Mapping[str, StoredRow]
    children: Mapping[str, StoredRow]
    consents: Mapping[str, list[StoredRow]]


def _grouped(rows: Any) -> dict[str, list[StoredRow]]:
    out: dict[str, list[StoredRow]] = {}
    for row in rows:
        out.setdefault(row[0], []).append(row)
    return out


def page_rows(
    connection: Connection,
    assignments: Sequence[AssignmentRow],
    columns: Mapping[str, tuple[str, ...]],
) -> PageRows:
    """The stored rows of a page; `columns` maps each table to the encrypted columns read
    (a table without an entry is not queried, except residents)."""
    assignment_ids = [a.id for a in assignments]
    resident_ids = sorted({a.resident_id for a in assignments})
    agreement_ids = sorted({a.agreement_id for a in assignments})
    run = connection.execute
    dependents: dict[str, dict[str, StoredRow]] = {EPISODES: {}, CHILDREN: {}}
    for table, latest in dependents.items():
        if table in columns:
            for row in run(_dependent_query(table, columns[table]), {"ids": resident_ids}):
                latest[row[0]] = row  # ordered oldest first: the last one stays
    return PageRows(
        bookings=_grouped(run(_BOOKINGS, {"ids": assignment_ids})),
        agreements=_grouped(run(_AGREEMENTS, {"ids": agreement_ids})),
        residents={
            row[0]: row
            for row in run(_resident_query(columns.get(RESIDENTS, ())), {"ids": resident_ids})
        },
        episodes=dependents[EPISODES],
        children=dependents[CHILDREN],
        consents=_grouped(run(_CONSENTS, {"ids": resident_ids})),
    )
