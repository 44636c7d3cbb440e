"""居民台账: the query form, the masked table with “共 N 条” and 10/20/50 per page, the exact
lookup by ID number or phone, and 导出 of what the query shows.

Ordinary filters travel in the query string (links read well in logs); an ID number or a
phone never does: the lookup form is a POST, so neither value reaches an access log, a Referer
or the browser history (a lookup's result is not exported: it is one or a few rows).

Scope, masking and audit are the services' (resident_ledger, resident_export); this module
picks the page.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from typing import IO
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import select
from starlette.background import BackgroundTask

from exchange.console.context import OfficePage, Page
from exchange.console.csrf import require_token
from exchange.console.forms import field_errors
from exchange.console.i18n import N_
from exchange.console.paging import paging, with_total
from exchange.console.templating import BEIJING, beijing, render
from exchange.db import models as m
from exchange.exports.workbook import StreamingSheet
from exchange.services import resident_export, resident_ledger
from exchange.services.errors import FlowError
from exchange.services.resident_ledger import LedgerQuery, MaskedResident

router = APIRouter(prefix="/residents")

FILTERS = ("community", "stage", "due_month", "assignment")
LOOKUPS = ("national_id", "phone")
STAGE_LABELS = {"preparing": N_("Preparing"), "pregnant": N_("Pregnant"),
                "postpartum": N_("Postpartum")}  # fmt: skip
ASSIGNMENT_LABELS = {"assigned": N_("Assigned"), "unassigned": N_("Not assigned")}
_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def communities_in_scope(page: Page) -> list[m.Community]:
    """The communities a form offers: all for an office admin, hers for a cadre (the services
    enforce scope whatever is chosen; this only keeps the choices honest)."""
    rows = list(page.db.scalars(select(m.Community).order_by(m.Community.name)))
    identity = page.acting.identity
    return [c for c in rows if identity.sees_community(c.id)]


def _values(source: Mapping[str, object], names: tuple[str, ...]) -> dict[str, str]:
    return {n: str(source.get(n, "") or "")[:64] for n in names}


def _query(page: Page, values: Mapping[str, str]) -> LedgerQuery:
    return resident_ledger.parse_query(page.db, **values)


def _list_page(page: Page, request: Request, *, filters: dict[str, str], q: LedgerQuery | None,
               errors: dict[str, list[str]], lookup: str = "",
               status: int = 200) -> Response:  # fmt: skip
    p = paging(request, *FILTERS)
    total, rows = 0, list[MaskedResident]()
    if q is not None:
        total, rows = resident_ledger.search(page.db, page.keyring, page.acting, q,
                                             offset=p.offset, limit=p.size)  # fmt: skip
    export_query = urlencode({k: v for k, v in filters.items() if v})
    return render(page, "residents/list.html", status, rows=rows, paging=with_total(p, total),
                  filters=filters, errors=errors, lookup=lookup, lookup_found=total,
                  communities=communities_in_scope(page), stage_labels=STAGE_LABELS,
                  assignment_labels=ASSIGNMENT_LABELS, export_query=export_query,
                  personal=True)  # fmt: skip


def _filtered(page: Page, request: Request) -> tuple[dict[str, str], LedgerQuery | Response]:
    """The list's filters from the query string, checked; a bad one answers the list page
    with the field named."""
    filters = _values(request.query_params, FILTERS)
    try:
        return filters, _query(page, filters)
    except FlowError as exc:
        return filters, _list_page(page, request, filters=filters, q=None,
                                   errors=field_errors(exc, page._), status=422)  # fmt: skip


@router.get("")
def resident_list(page: OfficePage, request: Request) -> Response:
    filters, q = _filtered(page, request)
    if isinstance(q, Response):
        return q
    return _list_page(page, request, filters=filters, q=q, errors={})


@router.post("/lookup")
async def resident_lookup(page: OfficePage, request: Request) -> Response:
    """Exact lookup by ID number or phone, in the body (never in a URL); scope first, so a
    resident elsewhere and no resident answer alike."""
    form = await require_token(page, request)
    values = _values(form, LOOKUPS)
    empty = dict.fromkeys(FILTERS, "")
    try:
        q = resident_ledger.parse_lookup(page.db, **values)
    except FlowError as exc:
        return _list_page(page, request, filters=empty, q=None,
                          errors=field_errors(exc, page._), status=422)  # fmt: skip
    field = "national_id" if values["national_id"] else "phone"
    return _list_page(page, request, filters=empty, q=q, errors={}, lookup=field)


def _sheet(page: Page, q: LedgerQuery, filters: Mapping[str, str],
           names: Mapping[str, str]) -> StreamingSheet:  # fmt: skip
    _ = page._
    user = page.acting.identity
    used = []
    for name in FILTERS:
        value = filters.get(name, "")
        if value:
            labels = {"community": names.get(value, value),
                      "stage": _(STAGE_LABELS.get(value, value)),
                      "assignment": _(ASSIGNMENT_LABELS.get(value, value))}  # fmt: skip
            label = labels.get(name, value)
            used.append(f"{_(FIELD_TITLES[name])}={label}")
    if q.lookup is not None:
        field = "national_id" if q.national_id else "phone"
        used.append(_(FIELD_TITLES[field]) + "=" + _("(exact)"))
    preamble = [
        [_("Resident ledger (masked)")],
        [_("Exported by"), f"{user.display_name} ({user.name})"],
        [_("Exported at"), beijing(page.now) + " " + _("(Beijing time)")],
        [_("Filters"), "; ".join(used) if used else _("None")],
    ]
    header = [_(t) for t in COLUMN_TITLES]
    return StreamingSheet(_("Resident ledger"), preamble, header)


FIELD_TITLES = {"community": N_("Community"), "stage": N_("Stage"), "due_month": N_("Due month"),
                "assignment": N_("Assignment"), "national_id": N_("ID number"),
                "phone": N_("Phone")}  # fmt: skip
COLUMN_TITLES = (N_("Name"), N_("ID number"), N_("Phone"), N_("Community"),
                 N_("Address (to the building)"), N_("Stage"), N_("Due date"),
                 N_("Delivery date"), N_("Assignment"))  # fmt: skip


def _cells(page: Page, row: MaskedResident) -> list[str | None]:
    _ = page._
    stage = STAGE_LABELS.get(row["stage"] or "", "")
    assignment = ASSIGNMENT_LABELS["assigned" if row["assigned"] else "unassigned"]
    return [row["name"], row["national_id"], row["phone"], row["community"], row["address"],
            _(stage) if stage else "", row["due_date"], row["delivery_date"],
            _(assignment)]  # fmt: skip


def _export(page: Page, q: LedgerQuery, filters: Mapping[str, str]) -> Response:
    names = {c.id: c.name for c in communities_in_scope(page)}
    sheet = _sheet(page, q, filters, names)
    receipt = resident_export.export(page.db, page.keyring, page.acting, q,
                                     lambda row: sheet.append(_cells(page, row)))  # fmt: skip
    # the finished file waits in an anonymous temporary file (no name on disk, gone when
    # closed) and leaves only after the unit of work has committed the audit entries
    spool = tempfile.TemporaryFile()  # noqa: SIM115  (closed by the response's background task)
    try:
        sheet.close(spool, footer=[page._("Total %(n)s") % {"n": receipt.rows}])
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    stamp = page.now.astimezone(BEIJING).strftime("%Y%m%d-%H%M%S")
    disposition = f'attachment; filename="residents-{stamp}.xlsx"'
    return StreamingResponse(_chunks(spool), media_type=_XLSX,
                             headers={"Content-Disposition": disposition},
                             background=BackgroundTask(spool.close))  # fmt: skip


def _chunks(spool: IO[bytes]) -> Iterator[bytes]:
    while chunk := spool.read(1 << 16):
        yield chunk


@router.get("/export.xlsx")
def resident_export_get(page: OfficePage, request: Request) -> Response:
    filters, q = _filtered(page, request)
    if isinstance(q, Response):
        return q
    return _export(page, q, filters)
