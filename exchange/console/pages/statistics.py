"""统计分析: the query form (table, dimensions, period; 查询 / 重置), the released table with
its charts, 导出 (the API's workbook), and, for office admins, exact figures with a reason.

Every release goes through `exchange.services.statistics.release`, the same call as
`GET /v1/statistics/{table}` and `exchange stats`: scope (a cadre's communities), suppression,
exact figures (office admins, a reason code) and the one audit entry per release live there.
This module reads the form and picks the page.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Final
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import FormData, QueryParams

from exchange.console.context import Page, SignedIn, refuse
from exchange.console.csrf import require_token
from exchange.console.i18n import N_
from exchange.console.statistics_view import DIMENSIONS, MEASURES, layout
from exchange.console.templating import BEIJING, render
from exchange.services import statistics
from exchange.services.auditing import AuditSink
from exchange.services.errors import Conflict, FlowError, InvalidInput, NotPermitted
from exchange.services.statistics_export import XLSX_MEDIA_TYPE, workbook
from policies.statistics import Rule

router = APIRouter(prefix="/statistics")

TABLES: Final = {
    "residents": N_("Resident counts"),
    "assignments": N_("Service assignments"),
    "bookings": N_("Bookings"),
    "deliveries": N_("Home visits"),
    "deletions": N_("Deletion notices"),
}
TITLES: Final = {
    "residents": N_("Residents by community, stage and due month"),
    "assignments": N_("Service assignments by community, service and month assigned"),
    "bookings": N_("Bookings by community, service and month booked for"),
    "deliveries": N_("Home visits by community, service and month of the visit"),
    "deletions": N_("Deletion notices by contractor, status and month notified"),
}
DEFAULT_BY: Final = {
    "residents": ("community", "stage"),
    "assignments": ("community", "service"),
    "bookings": ("community", "service"),
    "deliveries": ("community", "service"),
    "deletions": ("contractor", "status"),
}
REASONS: Final = {
    "settlement": N_("Settlement with the contractor"),
    "verification": N_("Checking the ledger against service records"),
    "inspection": N_("Inspection by a supervising authority"),
}
FIELDS: Final = {
    "table": N_("Statistics table"),
    "by": N_("Dimensions"),
    "from": N_("Reporting period"),
    "to": N_("Reporting period"),
    "measure": N_("Count"),
    "reason": N_("Reason for exact figures"),
}
PROBLEMS: Final = {
    "missing": N_("is required"),
    "unknown": N_("is not a known value"),
    "invalid": N_("choose at most three different dimensions"),
    "not_a_period": N_("must be a whole month, quarter or year"),
    "format": N_("the format is not valid"),
}
ANY_FIELD: Final = N_("The request")
NOT_VALID: Final = N_("is not valid")
_PERIOD = re.compile(r"^(\d{4})(?:-(?:Q([1-4])|(0[1-9]|1[0-2])))?$")


@dataclass(frozen=True, slots=True)
class Query:
    """What the form asks for (its values, before the service checks them)."""

    table: str
    by: tuple[str, ...]
    period: str = ""  # "" (all), "2026", "2026-Q2" or "2026-05"
    measure: str = "residents"

    def params(self) -> str:
        pairs = [("table", self.table), *(("by", b) for b in self.by)]
        if self.period:
            pairs.append(("period", self.period))
        if self.measure != "residents":
            pairs.append(("measure", self.measure))
        return urlencode(pairs)


def _query(source: QueryParams | FormData) -> Query:
    """The form's values. Dimensions of another table (the reader changed the table and kept
    the boxes ticked) are dropped, and none left means the table's usual two."""
    table = str(source.get("table") or "residents")[:32]
    spec = statistics.TABLES.get(table)
    by = tuple(str(b)[:32] for b in source.getlist("by"))[:8]
    if spec is not None:
        by = tuple(b for b in spec.dims if b in by) or DEFAULT_BY[table]
    measure = str(source.get("measure") or "residents")[:16]
    if spec is not None and spec.companion is None:
        measure = "residents"
    return Query(table, by, str(source.get("period") or "")[:16], measure)


def _dates(period: str) -> tuple[date | None, date | None]:
    """The first and last day of a year, quarter or month; the service checks the rest."""
    if not period:
        return None, None
    match = _PERIOD.match(period)
    if match is None:
        raise InvalidInput.field("from", "format", "a year, quarter or month")
    year, quarter, month = int(match[1]), match[2], match[3]
    if quarter:
        first, last = int(quarter) * 3 - 2, int(quarter) * 3
    elif month:
        first = last = int(month)
    else:
        first, last = 1, 12
    return date(year, first, 1), date(year, last, calendar.monthrange(year, last)[1])


def _release(page: Page, q: Query, reason: str | None = None) -> statistics.Release:
    start, end = _dates(q.period)
    request = statistics.parse(q.table, q.by, start, end, measure=q.measure,
                               exact=reason is not None, reason=reason)  # fmt: skip
    sink: AuditSink | None = getattr(page.request.app.state, "audit_sink", None)
    try:
        return statistics.release(page.db, page.acting, request,
                                  Rule(page.settings.statistics_threshold), sink)  # fmt: skip
    except NotPermitted:
        raise refuse(page, N_("You may not open this page"), "not_permitted") from None


def _errors(error: FlowError, page: Page) -> dict[str, list[str]]:
    _ = page._
    if isinstance(error, Conflict):
        message = N_("Due months are not filled in yet: ask the operator to run "
                     "`exchange stats backfill`.")  # fmt: skip
        return {"": [_(message)]}
    out: dict[str, list[str]] = {}
    for problem in error.errors:
        name = "period" if problem.field in ("from", "to") else problem.field
        label = _(FIELDS.get(problem.field, ANY_FIELD))
        reason = _(PROBLEMS.get(problem.reason, NOT_VALID))
        out.setdefault(name, []).append(f"{label}{_(': ')}{reason}")
    return out or {"": [_("The request could not be completed")]}


def _periods(page: Page, chosen: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """The choices of the period select: whole years, quarters and months around today."""
    _ = page._
    year = page.now.astimezone(BEIJING).year
    years = range(year - 1, year + 2)
    groups = [
        ("", [("", _("All periods"))]),
        (_("Years"), [(str(y), _("%(y)s (whole year)") % {"y": y}) for y in years]),
        (_("Quarters"), [(f"{y}-Q{q}", _("%(y)s Q%(q)s") % {"y": y, "q": q})
                         for y in years for q in range(1, 5)]),
        (_("Months"), [(f"{y}-{mo:02d}", f"{y}-{mo:02d}") for y in years for mo in range(1, 13)]),
    ]  # fmt: skip
    if chosen and all(chosen != value for _g, options in groups for value, _l in options):
        groups.append((_("Chosen"), [(chosen, chosen)]))
    return groups


def _tables(page: Page) -> list[tuple[str, str]]:
    """The tables the form offers: a cadre's have a community (the service refuses the
    others whatever is asked; this keeps the choices honest)."""
    cadre = page.role == "community_cadre"
    return [(name, page._(TABLES[name])) for name, spec in statistics.TABLES.items()
            if spec.community or not cadre]  # fmt: skip


def _page(page: Page, q: Query, *, release: statistics.Release | None,
          errors: Mapping[str, list[str]], status: int = 200,
          reason: str = "") -> Response:  # fmt: skip
    spec = statistics.TABLES.get(q.table) or statistics.TABLES["residents"]
    figures = layout(release, page._, page.language.code) if release is not None else None
    return render(page, "statistics.html", status, q=q, spec=spec, tables=_tables(page),
                  dims=[(d, DIMENSIONS[d]) for d in spec.dims], dim_labels=DIMENSIONS,
                  periods=_periods(page, q.period),
                  measures=MEASURES, reasons=REASONS, release=release, layout=figures,
                  title=TITLES.get(q.table, ""), errors=errors, reason=reason,
                  exact=bool(release and release.request.exact), params=q.params())  # fmt: skip


def _answer(page: Page, q: Query, *, reason: str | None = None,
            download: bool = False) -> Response:  # fmt: skip
    """The release as the page or as the workbook. `reason` asks for exact figures ("" is a
    missing reason). A refused request is the form again with the fields named, and nothing
    is released."""
    page.require("statistics.read")  # the API's permission table; the service checks again
    try:
        if reason == "":
            raise InvalidInput.field("reason", "missing", "exact figures need a reason code")
        release = _release(page, q, reason)
    except FlowError as exc:
        status = 409 if isinstance(exc, Conflict) else 422
        return _page(page, q, release=None, errors=_errors(exc, page), status=status,
                     reason=reason or "")  # fmt: skip
    if download:
        return _download(release)
    return _page(page, q, release=release, errors={}, reason=reason or "")


def _download(release: statistics.Release) -> Response:
    """The API's workbook (format=xlsx): the same `workbook()` of the same release."""
    name = f"statistics-{release.table}{'-exact' if release.request.exact else ''}.xlsx"
    return Response(workbook(release), media_type=XLSX_MEDIA_TYPE,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip


@router.get("")
def statistics_page(page: SignedIn, request: Request) -> Response:
    return _answer(page, _query(request.query_params))


@router.get("/export")
def statistics_export(page: SignedIn, request: Request) -> Response:
    return _answer(page, _query(request.query_params), download=True)


@router.post("/exact")
async def statistics_exact(page: SignedIn, request: Request) -> Response:
    """Exact figures: an office admin, a reason code from the service's list; a POST (with
    the CSRF token), so that a link can never ask for them. Audited as release_exact."""
    form = await require_token(page, request)
    reason = str(form.get("reason") or "")[:32]
    return _answer(page, _query(form), reason=reason, download=form.get("action") == "export")
