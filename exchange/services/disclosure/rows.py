"""Step 1a: the stored rows a disclosure needs, from set-based Core queries.

A page's cases come from one query: each assignment joined to its resident (district, street,
erasure), the community's name, the wrapped data key, the current episode and the current
child, with the stored bytes of the encrypted columns the plan reads. Three more queries
complete any page, whatever its size: the bookings, the agreements with their purposes, the
consent events. Rows stay the driver's tuples (Core `Row`s); no ORM object is built.

Ids are bound as ONE parameter (`among`): a JSON array read by `json_each` on SQLite, an array
compared with `= ANY` on PostgreSQL, so a statement is never re-rendered with one parameter per
id. Encrypted columns are selected as raw bytes (`type_coerce(..., LargeBinary)`) and JSON
columns as text where the driver leaves them text: `keys` gets the stored bytes as they are,
and the codes are parsed with orjson.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

import orjson
from sqlalchemy import (
    ARRAY,
    Boolean,
    ColumnElement,
    Connection,
    Integer,
    LargeBinary,
    Select,
    String,
    bindparam,
    literal_column,
    null,
    select,
    type_coerce,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeDecorator, TypeEngine

from exchange.db import models as m

RESIDENTS, EPISODES, CHILDREN = "residents", "maternal_episodes", "children"
# a result row as the driver returns it (a Core Row: a tuple by position, names by label)
StoredRow = Any
# table -> the encrypted columns read from it, as a hashable value
Columns = tuple[tuple[str, tuple[str, ...]], ...]

_assignments = m.Assignment.__table__
_agreements = m.Agreement.__table__
_purposes = m.AgreementPurpose.__table__
_bookings = m.Booking.__table__
_residents = m.Resident.__table__
_communities = m.Community.__table__
_data_keys = m.ResidentDataKey.__table__
_consents = m.ConsentEvent.__table__
_episodes = m.MaternalEpisode.__table__
_children = m.Child.__table__


# -- one bound parameter for a list of ids ---------------------------------------------------


class _IdList(TypeDecorator[Sequence[str]]):
    """A list of ids as one parameter: a JSON array (SQLite) or a text array (PostgreSQL)."""

    impl = String
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(ARRAY(String()))
        return dialect.type_descriptor(String())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        ids = list(value)
        return ids if dialect.name == "postgresql" else orjson.dumps(ids).decode()


class _Among(ColumnElement[bool]):
    """`column` is one of the ids bound to the parameter `name`."""

    inherit_cache = True
    type = Boolean()
    # a predicate as it stands: never rendered as "(...) = 1", which no index can serve
    _is_implicitly_boolean = True
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("ids", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: ColumnElement[Any], name: str) -> None:
        self.column = column
        self.ids = bindparam(name, type_=_IdList())


@compiles(_Among)
def _among_json(element: _Among, compiler: SQLCompiler, **kw: Any) -> str:
    column, ids = compiler.process(element.column, **kw), compiler.process(element.ids, **kw)
    # compiled SQL of our own elements, no value spliced in: the ids stay one bound parameter
    return f"{column} IN (SELECT value FROM json_each({ids}))"  # noqa: S608


@compiles(_Among, "postgresql")
def _among_array(element: _Among, compiler: SQLCompiler, **kw: Any) -> str:
    column, ids = compiler.process(element.column, **kw), compiler.process(element.ids, **kw)
    return f"{column} = ANY({ids})"


def among(column: ColumnElement[Any], name: str = "ids") -> ColumnElement[bool]:
    return _Among(column, name)


def json_list(value: Any) -> list[Any]:
    """A JSON column's value: text on SQLite, already parsed by psycopg on PostgreSQL."""
    return value if isinstance(value, list) else orjson.loads(value)


# -- the page's cases, one query -------------------------------------------------------------

# the leading columns of a case row, in this order; the stored bytes follow (CaseQueries)
CASE_COLUMNS = (
    "id", "resident_id", "agreement_id", "contractor_id", "status", "services", "seq",
    "district", "street", "erased_at", "community", "wrapped_key", "episode_id", "stage",
    "child_id",
)  # fmt: skip


def _current(table: Any) -> Any:
    """The id of the resident's current row of `table` (the newest by creation, then id: the
    one the importer treats as current)."""
    other = table.alias()
    return (
        select(other.c.id)
        .where(other.c.resident_id == _residents.c.id)
        .order_by(other.c.created_at.desc(), other.c.id.desc())
        .limit(literal_column("1"))
        .scalar_subquery()
    )


@dataclass(frozen=True, slots=True)
class CaseQueries:
    """The case statements for one set of planned columns, and where each table's stored
    bytes start in a row."""

    changed: Select[Any]
    by_id: Select[Any]
    stored_at: Mapping[str, int]


@lru_cache(maxsize=64)
def case_queries(columns: Columns) -> CaseQueries:
    planned = dict(columns)
    a, r = _assignments, _residents
    episode = EPISODES in planned
    child = CHILDREN in planned
    e, ch = _episodes.alias("e"), _children.alias("ch")
    stored: list[Any] = []
    stored_at: dict[str, int] = {}
    for table, source in ((RESIDENTS, r), (EPISODES, e), (CHILDREN, ch)):
        stored_at[table] = len(CASE_COLUMNS) + len(stored)
        stored += [type_coerce(source.c[c], LargeBinary) for c in planned.get(table, ())]
    leading = (
        a.c.id, a.c.resident_id, a.c.agreement_id, a.c.contractor_id, a.c.status,
        type_coerce(a.c.services, String), a.c.change_seq, r.c.district, r.c.street,
        r.c.erased_at, _communities.c.name, _data_keys.c.wrapped_key,
        e.c.id if episode else null(), e.c.stage if episode else null(),
        ch.c.id if child else null(),
    )  # fmt: skip
    joined = (
        a.join(r, r.c.id == a.c.resident_id)
        .outerjoin(_communities, _communities.c.id == r.c.community_id)
        .outerjoin(_data_keys, _data_keys.c.resident_id == r.c.id)
    )
    if episode:
        joined = joined.outerjoin(e, e.c.id == _current(_episodes))
    if child:
        joined = joined.outerjoin(ch, ch.c.id == _current(_children))
    base = select(*(c.label(n) for c, n in zip(leading, CASE_COLUMNS, strict=True)), *stored)
    # The page's assignments first, as a CTE, then the rest joined to those few rows. As one
    # flat statement, PostgreSQL planned seven relations for 2.9 ms on every page, and once
    # psycopg had prepared it, its generic plan took 23 ms a page at 3,000 residents (3 ms
    # this way, planned once).
    page = (
        select(a.c.id)
        .join(_agreements, _agreements.c.id == a.c.agreement_id)
        .where(
            a.c.contractor_id == bindparam("contractor"),
            _agreements.c.contractor_id == bindparam("contractor"),
            a.c.status == "active",
            a.c.change_seq > bindparam("after"),
        )
        .order_by(a.c.change_seq)
        # the page size as a literal: PostgreSQL's prepared (generic) plan of a bound LIMIT
        # left the index-ordered scan; a page size takes a handful of values, so a handful of
        # statements
        .limit(bindparam("limit", type_=Integer, literal_execute=True))
        .cte("page")
        .prefix_with("MATERIALIZED")
    )
    changed = base.select_from(page.join(joined, a.c.id == page.c.id)).order_by(a.c.change_seq)
    by_id = base.select_from(joined).where(a.c.id == bindparam("id"))
    return CaseQueries(changed, by_id, stored_at)


def changed_cases(
    connection: Connection, columns: Columns, contractor_id: str, after: int, limit: int
) -> list[StoredRow]:
    """The contractor's active assignments with feed sequence > `after`, in feed order, each
    with its resident's stored columns `columns`."""
    query = case_queries(columns).changed
    params = {"contractor": contractor_id, "after": after, "limit": limit}
    return list(connection.execute(query, params).all())  # fetchall, not fetchone per row


def case_by_id(connection: Connection, columns: Columns, assignment_id: str) -> StoredRow | None:
    """One assignment (any status) with its resident's stored columns `columns`."""
    return connection.execute(case_queries(columns).by_id, {"id": assignment_id}).first()


# -- what every case of a page shares: bookings, agreements, consents --------------------------

_BOOKINGS = (
    select(_bookings.c.assignment_id, _bookings.c.service_code, _bookings.c.scheduled_on)
    .where(among(_bookings.c.assignment_id))
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
    .where(among(_agreements.c.id))
)
_CONSENTS = (
    select(
        _consents.c.resident_id,
        _consents.c.id,
        _consents.c.sequence,
        _consents.c.agreement_id,
        _consents.c.action,
        type_coerce(_consents.c.scopes, String).label("scopes"),
        _consents.c.guardian,
    )
    .where(among(_consents.c.resident_id))
    .order_by(_consents.c.resident_id, _consents.c.sequence)
)


class ConsentEventRow(NamedTuple):
    """A consent event as the fold reads it (`services.consent_state.fold`)."""

    resident_id: str
    id: str
    sequence: int
    agreement_id: str | None
    action: str
    scopes: list[str]
    guardian: bool


def _consent_events(rows: Iterable[StoredRow]) -> dict[str, list[ConsentEventRow]]:
    out: dict[str, list[ConsentEventRow]] = {}
    for r in rows:
        out.setdefault(r[0], []).append(
            ConsentEventRow(r[0], r[1], r[2], r[3], r[4], json_list(r[5]), r[6])
        )
    return out


@dataclass(frozen=True, slots=True)
class PageRows:
    """The rows every case of a page may share, grouped by the first column (assignment id,
    agreement id, resident id)."""

    bookings: Mapping[str, list[StoredRow]]
    agreements: Mapping[str, list[StoredRow]]
    consents: Mapping[str, list[ConsentEventRow]]


def _grouped(rows: Iterable[StoredRow]) -> dict[str, list[StoredRow]]:
    out: dict[str, list[StoredRow]] = {}
    for row in rows:
        group = out.get(row[0])
        if group is None:
            out[row[0]] = [row]
        else:
            group.append(row)
    return out


def page_rows(connection: Connection, cases: Sequence[StoredRow]) -> PageRows:
    run = connection.execute
    return PageRows(
        bookings=_grouped(run(_BOOKINGS, {"ids": [c[0] for c in cases]}).all()),
        agreements=_grouped(run(_AGREEMENTS, {"ids": sorted({c[2] for c in cases})}).all()),
        consents=_consent_events(run(_CONSENTS, {"ids": sorted({c[1] for c in cases})}).all()),
    )
