"""`POST /v1/residents/imports`: a cadre's ledger as CSV, imported and audited like the CLI's.

The body is the CSV itself (`Content-Type: text/csv`; UTF-8, UTF-8 with BOM or GBK), decoded
in memory and never written to disk; `?partial=true` imports the valid rows only. The answer
is the import report (row numbers, fields and reason codes, never a value) with the index of
the audit entry that records the import. A refused import (invalid rows, an unreadable file)
answers 422 naming each row and field, and is recorded all the same (an audited refusal).
Thin: `services.imports` does the work.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from exchange.api.context import Context, context_for
from exchange.api.models import QueryBool
from exchange.api.problems import Problem, problems
from exchange.services import imports

router = APIRouter(prefix="/residents/imports", tags=["residents"])

CSV_TYPES = frozenset({"text/csv", "application/csv"})


async def csv_body(request: Request) -> bytes:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in CSV_TYPES:
        raise Problem(415, "unsupported-media-type",
                      "send the ledger as text/csv (UTF-8 or GBK); save a workbook as CSV or "
                      "import it with `exchange import residents`")  # fmt: skip
    return await request.body()


@router.post(
    "",
    status_code=201,
    responses=problems(415),
    openapi_extra={"requestBody": {"required": True,
                                   "content": {"text/csv": {"schema": {"type": "string"}}}}},
)  # fmt: skip
def import_residents(
    ctx: Annotated[Context, context_for("residents.import")],
    body: Annotated[bytes, Depends(csv_body)],
    partial: Annotated[QueryBool,
                       Query(description="Import the valid rows; report the rest")] = False,
) -> imports.ImportView:
    """Import a ledger (CSV); all-or-nothing unless `partial`. Every import is audited."""
    outcome = imports.import_file(
        ctx.session, ctx.keyring, ctx.acting, imports.LedgerFile.from_csv_bytes(body),
        partial=partial, workers=0,  # never fork a serving process
    )  # fmt: skip
    return imports.accepted(outcome)
