"""What each statistics table counts, as one `GROUP BY … COUNT(DISTINCT …)` on the live data.

Every table is computed in SQL, on SQLite and PostgreSQL alike, from plain columns only
(community, stage, the episode's due month, service codes, dates, statuses): no resident is
loaded into Python and nothing is decrypted. The answer is the leaf level of a cube (every
dimension of the table, every category); margins and totals are summed by the statistics core,
so that a release for any `by=` is a view of one protected cube.

| table       | counts distinct            | dimensions                            | also   |
| ----------- | -------------------------- | ------------------------------------- | ------ |
| residents   | residents (latest episode) | community, stage, due_month           |        |
| assignments | residents, active          | community, service, month (assigned)  |        |
| bookings    | residents with a booking   | community, service, month (scheduled) | events |
| deliveries  | residents visited          | community, service, month (delivered) | events |
| deletions   | cases (agreement, ref.)    | contractor, status, month (notified)  |        |

Months are the office's (China Standard Time, UTC+8). A deletion notice names a case by its
pseudonymous reference only, which cannot be joined to a community without the office's keys:
that table has no community, so it is the whole street's only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from exchange.db import models as m
from exchange.db.models.codes import SERVICES, STAGES
from policies.statistics import Cube, Dimension

Query: TypeAlias = sa.Select[*tuple[Any, ...]]

NO_DUE_MONTH: Final = "none"
DELETION_STATUSES: Final = ("acknowledged", "outstanding")


class office_month(FunctionElement[str]):  # noqa: N801 - reads as the SQL function it renders
    """'YYYY-MM' of a UTC timestamp in China Standard Time (fixed UTC+8, no summer time)."""

    type = sa.String()
    inherit_cache = True


@compiles(office_month, "sqlite")
def _office_month_sqlite(element: office_month, compiler: SQLCompiler, **kw: Any) -> str:
    return f"strftime('%Y-%m', {compiler.process(element.clauses, **kw)}, '+8 hours')"


@compiles(office_month, "postgresql")
def _office_month_pg(element: office_month, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"to_char(({column} AT TIME ZONE 'UTC') + interval '8 hours', 'YYYY-MM')"


class date_month(FunctionElement[str]):  # noqa: N801
    """'YYYY-MM' of a DATE column."""

    type = sa.String()
    inherit_cache = True


@compiles(date_month, "sqlite")
def _date_month_sqlite(element: date_month, compiler: SQLCompiler, **kw: Any) -> str:
    return f"substr({compiler.process(element.clauses, **kw)}, 1, 7)"


@compiles(date_month, "postgresql")
def _date_month_pg(element: date_month, compiler: SQLCompiler, **kw: Any) -> str:
    return f"to_char({compiler.process(element.clauses, **kw)}, 'YYYY-MM')"


@dataclass(frozen=True, slots=True)
class TableSpec:
    name: str
    title: str  # 中文 for the workbook and the terminal
    dims: tuple[str, ...]
    time: str  # the dimension that is a month
    query: Callable[[Session], Query]
    companion: str | None = None  # "events": visits or bookings behind the residents

    @property
    def community(self) -> bool:
        return "community" in self.dims


def _residents(session: Session) -> Query:
    e, r, c = m.MaternalEpisode, m.Resident, m.Community
    # a resident is counted once, in the stage of her latest episode
    latest = sa.select(
        e.resident_id, e.stage, e.due_month,
        sa.func.row_number().over(partition_by=e.resident_id,
                                  order_by=(e.created_at.desc(), e.id.desc())).label("rn"),
    ).subquery()  # fmt: skip
    month = sa.func.coalesce(latest.c.due_month, NO_DUE_MONTH)
    return (
        sa.select(c.name, latest.c.stage, month, sa.func.count(sa.distinct(r.id)))
        .select_from(r)
        .join(c, c.id == r.community_id)
        .join(latest, sa.and_(latest.c.resident_id == r.id, latest.c.rn == 1))
        .where(r.erased_at.is_(None))
        .group_by(c.name, latest.c.stage, month)
    )


def _services(session: Session) -> Any:
    services = m.Assignment.services
    if session.get_bind().dialect.name == "postgresql":
        return sa.func.json_array_elements_text(services).table_valued("value")
    return sa.func.json_each(services).table_valued("value")


def _assignments(session: Session) -> Query:
    a, r, c = m.Assignment, m.Resident, m.Community
    service = _services(session)
    month = office_month(a.created_at)
    return (
        sa.select(c.name, service.c.value, month, sa.func.count(sa.distinct(a.resident_id)))
        .select_from(a)
        .join(r, r.id == a.resident_id)
        .join(c, c.id == r.community_id)
        .join(service, sa.true())
        .where(a.status == "active")
        .group_by(c.name, service.c.value, month)
    )


def _events(event: Any, assignment_id: Any, service: Any, month: Any) -> Query:
    """Residents behind events of one kind (bookings, visits), and the events themselves."""
    a, r, c = m.Assignment, m.Resident, m.Community
    return (
        sa.select(c.name, service, month, sa.func.count(sa.distinct(a.resident_id)),
                  sa.func.count(event.id))
        .select_from(event)
        .join(a, a.id == assignment_id)
        .join(r, r.id == a.resident_id)
        .join(c, c.id == r.community_id)
        .group_by(c.name, service, month)
    )  # fmt: skip


def _bookings(session: Session) -> Query:
    b = m.Booking
    return _events(b, b.assignment_id, b.service_code, date_month(b.scheduled_on))


def _deliveries(session: Session) -> Query:
    s = m.ServiceRecord
    return _events(s, s.assignment_id, s.service_code, office_month(s.delivered_at))


def _deletions(session: Session) -> Query:
    t, k = m.Tombstone, m.Contractor
    status = sa.case((t.acknowledged_at.is_(None), "outstanding"), else_="acknowledged")
    month = office_month(t.created_at)
    case = t.agreement_id + sa.literal(":") + t.case_reference
    return (
        sa.select(k.name, status, month, sa.func.count(sa.distinct(case)))
        .select_from(t)
        .join(k, k.id == t.contractor_id)
        .group_by(k.name, status, month)
    )


TABLES: Final[dict[str, TableSpec]] = {
    spec.name: spec
    for spec in (
        TableSpec("residents", "居民（按社区、孕产状态、预产月）",
                  ("community", "stage", "due_month"), "due_month", _residents),
        TableSpec("assignments", "服务分配（按社区、服务项目、派单月）",
                  ("community", "service", "month"), "month", _assignments),
        TableSpec("bookings", "预约（按社区、服务项目、预约月）",
                  ("community", "service", "month"), "month", _bookings, "events"),
        TableSpec("deliveries", "上门服务（按社区、服务项目、服务月）",
                  ("community", "service", "month"), "month", _deliveries, "events"),
        TableSpec("deletions", "删除通知（按服务机构、确认状态、通知月）",
                  ("contractor", "status", "month"), "month", _deletions),
    )
}  # fmt: skip


def month_dimension(name: str, months: set[str]) -> Dimension:
    """Every month from the first to the last seen (so a gap shows as 0), under its quarter
    and year; "none" (no due date) directly under the total."""
    seen = sorted(mo for mo in months if mo != NO_DUE_MONTH)
    leaves: list[str] = []
    if seen:
        year, month = int(seen[0][:4]), int(seen[0][5:])
        while f"{year:04d}-{month:02d}" <= seen[-1]:
            leaves.append(f"{year:04d}-{month:02d}")
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    parents: dict[str, str] = {}
    for leaf in leaves:
        quarter = f"{leaf[:4]}-Q{(int(leaf[5:]) - 1) // 3 + 1}"
        parents[leaf], parents[quarter] = quarter, leaf[:4]
    if NO_DUE_MONTH in months or not leaves:
        leaves.append(NO_DUE_MONTH)
    return Dimension(name, tuple(leaves), parents)


def categories(session: Session, spec: TableSpec, dim: str) -> tuple[str, ...]:
    """The fixed categories of a non-time dimension: every one, counted or not."""
    if dim == "community":
        return tuple(session.scalars(sa.select(m.Community.name).order_by(m.Community.name)))
    if dim == "contractor":
        return tuple(session.scalars(sa.select(m.Contractor.name).order_by(m.Contractor.name)))
    return {"stage": STAGES, "service": SERVICES, "status": DELETION_STATUSES}[dim]


def period_months(period: str) -> set[str]:
    """The months of a period node: "2025-03", "2025-Q1" or "2025"."""
    year = period[:4]
    if len(period) == 7 and period[5] == "Q":
        first = (int(period[6]) - 1) * 3 + 1
        return {f"{year}-{mo:02d}" for mo in range(first, first + 3)}
    if len(period) == 4:
        return {f"{year}-{mo:02d}" for mo in range(1, 13)}
    return {period}


def fetch_cube(session: Session, spec: TableSpec, period: str | None = None) -> Cube:
    """The table's leaf counts from one GROUP BY; every other cell is summed by the core.
    The month dimension spans the data and the asked period (a quiet period shows zeros; a
    zero leaf never changes how the rest is protected)."""
    rows = session.execute(spec.query(session)).all()
    width = len(spec.dims)
    time_at = spec.dims.index(spec.time)
    dims = []
    for i, name in enumerate(spec.dims):
        if i == time_at:
            months = {row[i] for row in rows} | (period_months(period) if period else set())
            dims.append(month_dimension(name, months))
            continue
        known = categories(session, spec, name)
        extra = sorted({row[i] for row in rows} - set(known))  # e.g. a community made meanwhile
        dims.append(Dimension(name, (*known, *extra)))
    counts = {tuple(row[:width]): int(row[width]) for row in rows}
    companions = {}
    if spec.companion is not None:
        companions[spec.companion] = {tuple(row[:width]): int(row[width + 1]) for row in rows}
    return Cube(tuple(dims), counts, companions)


def backfill_pending(session: Session) -> bool:
    """Episodes with a due date whose month was never written (stored before migration 0008)."""
    e = m.MaternalEpisode
    pending = sa.select(e.id).where(e.due_date.is_not(None), e.due_month.is_(None)).limit(1)
    return session.scalar(pending) is not None

