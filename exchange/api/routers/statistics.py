"""Statistics for the office: `GET /v1/statistics/{table}`, suppressed unless asked exactly.

JSON by default; a workbook with `Accept: application/vnd.openxmlformats-officedocument.
spreadsheetml.sheet` or `format=xlsx`. Scope, suppression, exact figures and the audit entry
all live in `exchange.services.statistics`; this module parses and renders.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Header, Path, Query
from fastapi.responses import Response

from exchange.api.context import Context, context_for
from exchange.api.models import IsoDate, QueryBool
from exchange.api.problems import problems
from exchange.services import statistics
from exchange.services.statistics_export import (
    XLSX_MEDIA_TYPE,
    StatisticsDocument,
    document,
    workbook,
)
from policies.statistics import Rule

router = APIRouter(prefix="/statistics", tags=["statistics"])

Reader = Annotated[Context, context_for("statistics.read")]


# served with orjson (no second validation of a table); the schema is still declared
_OK: dict[int | str, dict[str, Any]] = {200: {"model": StatisticsDocument,
             "content": {XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}}}


@router.get("/{table}", responses={**_OK, **problems(409)})
def release_table(
    ctx: Reader,
    table: Annotated[str, Path(max_length=32, description=", ".join(statistics.TABLES))],
    by: Annotated[str | None, Query(max_length=128,
                                    description="comma list of dimensions")] = None,
    start: Annotated[IsoDate | None, Query(alias="from", description="first day of a "
                                        "month, quarter or year")] = None,
    end: Annotated[IsoDate | None, Query(alias="to", description="its last day")] = None,
    measure: Annotated[str | None, Query(max_length=16,
                                         description="residents | events")] = None,
    exact: Annotated[QueryBool, Query(description="office admins: exact figures")] = False,
    reason: Annotated[str | None, Query(max_length=32, description="reason code for "
                                        "exact=true: " + ", ".join(statistics.REASONS))] = None,
    format: Annotated[Literal["json", "xlsx"] | None, Query()] = None,  # noqa: A002
    accept: Annotated[str | None, Header(max_length=512)] = None,
) -> Response:
    """One released table: suppressed (`<5`) for everyone, exact for an office admin with a
    reason; every release is one audit entry."""
    request = statistics.parse(table, by, start, end, measure=measure, exact=exact,
                               reason=reason)  # fmt: skip
    rule = Rule(ctx.settings.statistics_threshold)
    release = statistics.release(ctx.session, ctx.acting, request, rule, ctx.sink)
    if format == "xlsx" or (format is None and accept is not None and XLSX_MEDIA_TYPE in accept):
        name = f"statistics-{release.table}.xlsx"
        return Response(workbook(release), media_type=XLSX_MEDIA_TYPE,
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return Response(orjson.dumps(document(release)), media_type="application/json")
