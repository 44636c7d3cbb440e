"""Residents coming in: 新增居民 (one, by a form) and 导入台账 (a .xlsx or .csv file: upload, read
the validation report row by row, then confirm or cancel), and the import template.

The report names rows and columns and says what is wrong, never a value from the file. The
checks are the ledger importer's own (services.residents.register, services.staged_imports),
so the form, the file, the API and the CLI accept and refuse alike.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData, UploadFile

from exchange.console.context import OfficePage, Page, PageError
from exchange.console.csrf import require_token
from exchange.console.forms import REASONS, field_errors
from exchange.console.i18n import N_
from exchange.console.pages.residents import STAGE_LABELS, communities_in_scope
from exchange.console.templating import render
from exchange.db.engine import CommitThenRaise
from exchange.ledger.template import template_bytes
from exchange.ledger.vocabulary import STAGES as STAGE_WORDS
from exchange.services import residents, staged_imports
from exchange.services.errors import Conflict, FieldErrors, FlowError, InvalidInput, NotFound
from policies import office_date

router = APIRouter()
T = TypeVar("T")

_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_STAGE_WORD = {code: word for word, code in STAGE_WORDS.items() if len(word) == 2}
_TEXT_FIELDS = ("name", "national_id", "phone", "community", "compound", "building", "unit",
                "room", "stage", "due_date", "delivery_date", "parity", "risk_flags",
                "child_birth_date", "child_sex")  # fmt: skip


# -- 新增居民 ---------------------------------------------------------------------------------


def _register_form(page: Page, status: int = 200, *, values: dict[str, str] | None = None,
                   errors: dict[str, list[str]] | None = None) -> Response:  # fmt: skip
    return render(page, "residents/new.html", status, values=values or {},
                  errors=errors or {}, communities=communities_in_scope(page),
                  stage_labels=STAGE_LABELS, personal=True)  # fmt: skip


@router.get("/residents/new")
def register_page(page: OfficePage) -> Response:
    page.require("residents.write")
    return _register_form(page)


def _date(errors: FieldErrors, name: str, text: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors.add(name, "date_format", "must be YYYY-MM-DD")
        return None


def _resident_input(values: dict[str, str], community_names: dict[str, str],
                    errors: FieldErrors) -> residents.ResidentInput:  # fmt: skip
    """The service's input; a date or number that does not parse is left out and noted in
    `errors`, so the service still checks everything else (every problem shown at once)."""
    dates = {n: _date(errors, n, values[n]) for n in ("due_date", "delivery_date",
                                                      "child_birth_date")}  # fmt: skip
    parity = None
    if values["parity"]:
        if values["parity"].isdigit() and len(values["parity"]) < 4:
            parity = int(values["parity"])
        else:
            errors.add("parity", "parity_format", "a whole number")
    flags = tuple(f for f in values["risk_flags"].replace("，", "、").replace(",", "、")
                  .split("、") if f.strip())  # fmt: skip
    return residents.ResidentInput(
        name=values["name"], national_id=values["national_id"], phone=values["phone"],
        community=community_names.get(values["community"], ""),
        stage=_STAGE_WORD.get(values["stage"], values["stage"]),
        compound=values["compound"] or None, building=values["building"] or None,
        unit=values["unit"] or None, room=values["room"] or None,
        due_date=dates["due_date"], delivery_date=dates["delivery_date"], parity=parity,
        risk_flags=flags, child_birth_date=dates["child_birth_date"],
        child_sex=values["child_sex"] or None,
    )  # fmt: skip


def _merge(parsed: FieldErrors, exc: FlowError) -> FlowError:
    """The form's own problems, then the service's for the other fields."""
    try:
        parsed.raise_any()
    except InvalidInput as own:
        fields = {p.field for p in own.errors}
        return InvalidInput(own.detail,
                            own.errors + tuple(p for p in exc.errors if p.field not in fields))
    return exc


@router.post("/residents/new")
async def register_submit(page: OfficePage, request: Request) -> Response:
    page.require("residents.write")
    form = await require_token(page, request)
    values = {n: str(form.get(n, "")).strip()[:64] for n in _TEXT_FIELDS}
    names = {c.id: c.name for c in communities_in_scope(page)}
    parsed = FieldErrors()
    data = _resident_input(values, names, parsed)
    savepoint = page.db.begin_nested()
    try:
        resident_id = residents.register(page.db, page.keyring, page.acting, data)
        parsed.raise_any()  # the form's own problems undo the registration
    except FlowError as exc:
        # an audited refusal keeps its audit entry (nothing else was written); any other
        # error undoes the attempt
        (savepoint.commit if isinstance(exc, CommitThenRaise) else savepoint.rollback)()
        status = 409 if isinstance(exc, Conflict) and not parsed else 422
        return _register_form(page, status, values=values,
                              errors=field_errors(_merge(parsed, exc), page._))  # fmt: skip
    savepoint.commit()
    return RedirectResponse(f"/console/residents/{resident_id}?done=registered", 303)


# -- 导入台账 ---------------------------------------------------------------------------------


@router.get("/imports")
def import_page(page: OfficePage) -> Response:
    page.require("residents.import")
    return render(page, "imports/upload.html", errors={})


async def _upload(form: FormData) -> tuple[bytes, str]:
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise InvalidInput.field("file", "required", "choose a file")
    file_format = staged_imports.file_format_of(upload.filename)
    data = await upload.read(staged_imports.MAX_BYTES + 1)
    return data, file_format


@router.post("/imports")
async def import_upload(page: OfficePage, request: Request) -> Response:
    page.require("residents.import")
    form = await require_token(page, request)
    try:
        data, file_format = await _upload(form)
        checked = staged_imports.stage(page.db, page.keyring, page.acting, data, file_format)
    except staged_imports.FileUnusable:
        return render(page, "imports/upload.html", 422, errors={"file": [page._(
            "The file could not be read as a ledger: check that it is the template's .xlsx or a "
            "UTF-8 or GBK .csv with the header row")]})  # fmt: skip
    except FlowError as exc:
        return render(page, "imports/upload.html", 422, errors=field_errors(exc, page._))
    return render(page, "imports/report.html", 200 if checked.report.ok else 422,
                  staged_id=checked.staged_id, report=checked.report,
                  reason_labels=REASONS, done=False)  # fmt: skip


def _staged_or_404(call: Callable[[], T]) -> T:
    try:
        return call()
    except NotFound:
        raise PageError(404, N_("This upload has expired or was already used")) from None


@router.post("/imports/{staged_id}/confirm")
async def import_confirm(page: OfficePage, request: Request, staged_id: str) -> Response:
    page.require("residents.import")
    await require_token(page, request)
    try:
        report = _staged_or_404(lambda: staged_imports.confirm(page.db, page.keyring,
                                                               page.acting, staged_id))
    except staged_imports.FileUnusable:
        raise PageError(422, N_("The file could not be read as a ledger")) from None
    return render(page, "imports/report.html", 200 if report.applied else 422,
                  staged_id="", report=report, reason_labels=REASONS,
                  done=report.applied)  # fmt: skip


@router.post("/imports/{staged_id}/cancel")
async def import_cancel(page: OfficePage, request: Request, staged_id: str) -> Response:
    page.require("residents.import")
    await require_token(page, request)
    _staged_or_404(lambda: staged_imports.cancel(page.db, page.acting, staged_id))
    return RedirectResponse("/console/imports?cancelled=1", 303)


def _template(page: Page, file_format: str, media_type: str) -> Response:
    """The import template of `exchange import template` (issue 19's generator): the
    importable columns with their hints, text-formatted ID, phone and date columns, drop-down
    lists (the community list is the user's scope) and a notes sheet whose example rows are
    valid today. The console and the CLI hand out the same file."""
    page.require("residents.import")
    body = template_bytes(file_format, office_date(page.now),
                          [c.name for c in communities_in_scope(page)])  # fmt: skip
    disposition = f'attachment; filename="import-template.{file_format}"'
    return Response(body, media_type=media_type, headers={"Content-Disposition": disposition})


@router.get("/imports/template.xlsx")
def template_xlsx(page: OfficePage) -> Response:
    return _template(page, "xlsx", _XLSX)


@router.get("/imports/template.csv")
def template_csv(page: OfficePage) -> Response:
    return _template(page, "csv", "text/csv; charset=utf-8")
