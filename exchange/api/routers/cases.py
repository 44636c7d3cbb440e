"""Contractor API: the case feed, one case, and service records.

`GET /v1/cases?purpose=P&cursor=C&limit=N`   changes since the cursor (cases and tombstones)
`GET /v1/cases/{ref}?purpose=P`              one case, or the uniform 404
`POST /v1/cases/{ref}/service-records`       report a delivered service (Idempotency-Key)

Every read is audited in the request's transaction; if the audit append fails the answer is
503 and nothing is returned (the unit of work rolls back). An unknown reference is an audited
denial: its entry commits, then the 404 is answered. Bodies are serialised with orjson.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from exchange.api.context import Context, context_for
from exchange.api.problems import problems
from exchange.services import cases, feed, service_records

router = APIRouter(prefix="/cases", tags=["contractor"])

Reader = Annotated[Context, context_for("cases.read")]
Reference = Annotated[str, Path(min_length=1, max_length=128)]
PurposeParam = Annotated[str, Query(description="home_visit | online_guidance | class_invitation")]


def json_bytes(body: object, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


@router.get("", responses=problems(409, 500))
def list_cases(
    ctx: Reader,
    purpose: PurposeParam,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """Changes since `cursor` for the calling contractor, at most `limit` (capped) items."""
    size = min(limit or feed.DEFAULT_LIMIT, ctx.settings.max_page_size)
    page = feed.pull(ctx.session, ctx.keyring, ctx.sink, ctx.acting, ctx.contractor_id, purpose,
                     cursor, size, ctx.policies)  # fmt: skip
    return json_bytes(page.to_json())


@router.get("/{reference}", responses=problems(404, 409, 500))
def get_case(ctx: Reader, reference: Reference, purpose: PurposeParam) -> Response:
    view, envelopes = cases.read_case(
        ctx.session, ctx.keyring, ctx.sink, ctx.acting, ctx.contractor_id, purpose, reference,
        ctx.policies,
    )
    return json_bytes({"purpose": view["purpose"], "envelopes": envelopes, "case": view})


class ServiceRecordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service: str = Field(description="one of the services chosen for the case")
    delivered_at: datetime
    notes: str | None = Field(default=None, description="free text; stored encrypted")


@router.post("/{reference}/service-records", responses=problems(404, 500))
def post_service_record(
    ctx: Annotated[Context, context_for("service_records.write")],
    reference: Reference,
    body: ServiceRecordIn,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    report = service_records.ServiceReport(body.service, body.delivered_at, body.notes)
    result = service_records.record_service(ctx.session, ctx.keyring, ctx.sink, ctx.acting,
                                            ctx.contractor_id, reference, idempotency_key,
                                            report)  # fmt: skip
    return json_bytes(result.record, 201 if result.created else 200)
