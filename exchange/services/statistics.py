"""Statistics for the office: one release = one table, suppressed, scoped and audited.

A release fetches the table's cube in one GROUP BY (`statistics_queries`), protects the whole
cube with the statistics core (primary and hypercube secondary suppression) and cuts the asked
view from it: `by` dimensions, a period that is a calendar month, quarter or year, and the
caller's scope. Because every view of a table is cut from the same protected cube, releases at
different levels (month vs quarter, one community vs the street) cannot be combined to undo it.

Who sees what: office admins and auditors the whole street; a cadre her communities, with sums
over several communities made only of cells that are shown. Exact figures only for an office
admin who asks for them with a reason code from `REASONS` (no free text: a note could carry a
name). Every release, suppressed or exact, is one audit entry in the request's transaction
naming the table, dimensions, period, measure, scope, rule and how many cells were suppressed;
never a count. Nothing here logs.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from audit.entry import AuditEntry
from exchange.db import models as m
from exchange.identity import AUDITOR, COMMUNITY_CADRE, OFFICE_ADMIN, Acting
from exchange.services.auditing import AuditSink, SqlAuditSink
from exchange.services.auditing import append as audit_append
from exchange.services.errors import Conflict, FieldErrors, NotPermitted
from exchange.services.statistics_queries import TABLES, TableSpec, backfill_pending, fetch_cube

__all__ = ["REASONS", "TABLES", "Release", "ReleaseRequest", "parse", "release"]
from policies.statistics import Rule, View, protect, view

ACTION: Final = "statistics.release"
ACTION_EXACT: Final = "statistics.release_exact"
MEASURES: Final = ("residents", "events")
MAX_BY: Final = 3
# Why an office admin needs exact figures; codes only, so no reason can carry personal data.
REASONS: Final[dict[str, tuple[str, str]]] = {
    "settlement": ("与服务机构结算", "settlement with the contractor"),
    "verification": ("核对台账与服务记录", "checking the ledger against service records"),
    "inspection": ("上级监督检查", "inspection by a supervising authority"),
}
READERS: Final = frozenset({OFFICE_ADMIN, AUDITOR, COMMUNITY_CADRE})


@dataclass(frozen=True, slots=True)
class ReleaseRequest:
    """A parsed, valid request (see `parse`)."""

    table: str
    by: tuple[str, ...]
    period: str | None = None  # a month "2025-03", quarter "2025-Q1" or year "2025"
    measure: str = "residents"
    exact: bool = False
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Release:
    table: str
    title: str
    request: ReleaseRequest
    rule: Rule
    view: View
    withheld: bool

    @property
    def threshold(self) -> int:
        return self.rule.threshold


def parse(
    table: str,
    by: str | Sequence[str] | None,
    start: date | None = None,
    end: date | None = None,
    *,
    measure: str | None = None,
    exact: bool = False,
    reason: str | None = None,
) -> ReleaseRequest:
    """Check every parameter at once; an InvalidInput names each wrong one."""
    errors = FieldErrors()
    spec = TABLES.get(table)
    if spec is None:
        errors.add("table", "unknown", "must be one of " + ", ".join(TABLES))
    names = [b.strip() for b in (by.split(",") if isinstance(by, str) else by or ())]
    if spec is not None:
        if not names or any(not n for n in names):
            errors.add("by", "missing", "a comma list of dimensions: " + ", ".join(spec.dims))
        elif any(n not in spec.dims for n in names):
            errors.add("by", "unknown", "dimensions of this table: " + ", ".join(spec.dims))
        elif len(set(names)) != len(names) or len(names) > MAX_BY:
            errors.add("by", "invalid", f"distinct dimensions, at most {MAX_BY}")
    period = _period(start, end, errors)
    chosen = measure or "residents"
    if chosen not in MEASURES or (chosen == "events" and spec and spec.companion is None):
        allowed = "residents, events" if spec and spec.companion else "residents"
        errors.add("measure", "unknown", f"one of: {allowed}")
    if exact and reason not in REASONS:
        errors.add("reason", "missing" if reason is None else "unknown",
                   "exact figures need a reason code: " + ", ".join(REASONS))  # fmt: skip
    if not exact and reason is not None:
        errors.add("reason", "unexpected", "a reason is given only with exact=true")
    errors.raise_any()
    return ReleaseRequest(table, tuple(names), period, chosen, exact, reason)


def _period(start: date | None, end: date | None, errors: FieldErrors) -> str | None:
    """A whole calendar month, quarter or year; anything else could be differenced."""
    if start is None and end is None:
        return None
    if start is None or end is None:
        errors.add("from" if start is None else "to", "missing", "give both from and to")
        return None
    last = date(end.year, end.month, calendar.monthrange(end.year, end.month)[1])
    if start.day != 1 or end != last or start.year != end.year:
        errors.add("from", "not_a_period", "from..to must be one whole month, quarter or year")
        return None
    months = end.month - start.month + 1
    if months == 1:
        return f"{start.year:04d}-{start.month:02d}"
    if months == 3 and start.month % 3 == 1:
        return f"{start.year:04d}-Q{start.month // 3 + 1}"
    if months == 12:
        return f"{start.year:04d}"
    errors.add("from", "not_a_period", "from..to must be one whole month, quarter or year")
    return None


def _scope(session: Session, acting: Acting, spec: TableSpec) -> tuple[str, ...] | None:
    """None for the whole street; a cadre's community names otherwise."""
    identity = acting.identity
    if identity.role not in READERS:
        raise NotPermitted(f"role {identity.role} may not read statistics")
    if identity.role != COMMUNITY_CADRE:
        return None
    if not spec.community:
        raise NotPermitted(f"table {spec.name} covers the whole street only")
    names = session.scalars(
        select(m.Community.name).where(m.Community.id.in_(identity.community_ids))
    ).all()
    return tuple(names)


def release(
    session: Session,
    acting: Acting,
    request: ReleaseRequest,
    rule: Rule | None = None,
    sink: AuditSink | None = None,
) -> Release:
    """The released table, audited in the caller's transaction (fails closed)."""
    rule = rule or Rule()
    spec = TABLES[request.table]
    if request.exact and acting.identity.role != OFFICE_ADMIN:
        raise NotPermitted("exact figures are for office admins only")
    scope = _scope(session, acting, spec)
    if spec.name == "residents" and backfill_pending(session):
        raise Conflict("due months are not filled in yet: run `exchange stats backfill`")
    protected = protect(fetch_cube(session, spec, request.period), rule)
    at = {spec.time: request.period} if request.period else {}
    measure = spec.companion if request.measure == "events" else None
    scoped = {"community": scope} if scope is not None else {}
    result = view(protected, request.by, at=at, scope=scoped, measure=measure,
                  exact=request.exact)  # fmt: skip
    _audit(session, acting, request, rule, result, scope, protected.withheld, sink)
    return Release(spec.name, spec.title, request, rule, result, protected.withheld)


def _audit(
    session: Session,
    acting: Acting,
    request: ReleaseRequest,
    rule: Rule,
    result: View,
    scope: tuple[str, ...] | None,
    withheld: bool,
    sink: AuditSink | None,
) -> None:
    details: dict[str, object] = {
        "table": request.table,
        "by": request.by,
        "period": request.period or "all",
        "measure": request.measure,
        "scope": "street" if scope is None else "communities",
        "rule.threshold": rule.threshold,
        "rule.secondary": "hypercube",
        "rule.zeros_suppressed": rule.zeros_disclosive,
        "cells.released": len(result.cells) + sum(map(len, result.margins.values())) + 1,
        "cells.suppressed": result.suppressed,
        "withheld": withheld,
        "exact": request.exact,
    }
    if scope is not None:
        details["scope.communities"] = len(scope)
    if request.reason is not None:
        details["reason"] = request.reason
    entry = AuditEntry(
        time=acting.now,
        actor=acting.actor,
        action=ACTION_EXACT if request.exact else ACTION,
        request_id=acting.request_id,
        details={**acting.details, **details},  # type: ignore[dict-item]
    )
    audit_append(session, sink or SqlAuditSink(), [entry])
