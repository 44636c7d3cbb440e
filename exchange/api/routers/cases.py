"""Contractor API: the case feed, one case, and service records.

`GET /v1/cases?purpose=P&cursor=C&limit=N`   changes since the cursor (cases and tombstones)
`GET /v1/cases/{ref}?purpose=P`              one case, or the uniform 404
`POST /v1/cases/{ref}/service-records`       report a delivered service (Idempotency-Key)

Every read is audited in the request's transaction; if the audit append fails the answer is
503 and nothing is returned (the unit of work rolls back). An unknown reference is an audited
denial: its entry commits, then the 404 is answered. Bodies are serialised with orjson.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Header, Path, Query
from fastapi.responses import Response
from pydantic import Field
from typing_extensions import TypedDict

from exchange.api.context import Context, context_for
from exchange.api.models import IsoDateTime, StrictModel
from exchange.api.problems import problems
from exchange.services import cases, feed, service_records

router = APIRouter(prefix="/cases", tags=["contractor"])

Reader = Annotated[Context, context_for("cases.read")]
Reference = Annotated[str, Path(min_length=1, max_length=128)]
PurposeParam = Annotated[str, Query(description="home_visit | online_guidance | class_invitation")]


# -- the documents (their schema; the feed is serialised with orjson, never validated) -------


class PolicyIdentity(TypedDict):
    id: str
    version: int
    sha256: str


class Booking(TypedDict):
    service: str
    on: str


class CaseItem(TypedDict):
    """One case as the contractor may see it: plain fields, and sealed fields (one token each,
    opened with the response's envelope for the case's agreement)."""

    type: Literal["case"]
    seq: int
    case_reference: str
    agreement: str
    purpose: str
    policy: PolicyIdentity | None
    services: list[str] | None
    bookings: list[Booking]
    fields: dict[str, Any]
    sealed: dict[str, str]


class TombstoneItem(TypedDict):
    """Delete this case, then acknowledge (`POST /v1/tombstones/{case_reference}/ack`)."""

    type: Literal["tombstone"]
    seq: int
    case_reference: str
    agreement: str
    reason: str


class FeedPage(TypedDict):
    purpose: str
    envelopes: dict[str, str]  # agreement -> the HPKE envelope its sealed fields open with
    items: list[Annotated[CaseItem | TombstoneItem, Field(discriminator="type")]]
    next_cursor: str
    has_more: bool


class CaseDocument(TypedDict):
    purpose: str
    envelopes: dict[str, str]
    case: CaseItem


def json_bytes(body: object, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _document(model: object, description: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"model": model, "description": description}}


@router.get("", response_class=Response,
            responses={**_document(FeedPage, "Changes since the cursor"), **problems(409, 500)})
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


@router.get("/{reference}", response_class=Response,
            responses={**_document(CaseDocument, "The case"), **problems(404, 409, 500)})
def get_case(ctx: Reader, reference: Reference, purpose: PurposeParam) -> Response:
    view, envelopes = cases.read_case(
        ctx.session, ctx.keyring, ctx.sink, ctx.acting, ctx.contractor_id, purpose, reference,
        ctx.policies,
    )
    return json_bytes({"purpose": view["purpose"], "envelopes": envelopes, "case": view})


class ServiceRecordIn(StrictModel):
    service: str = Field(description="one of the services chosen for the case")
    delivered_at: IsoDateTime
    notes: str | None = Field(default=None, description="free text; stored encrypted")


IdempotencyKey = Annotated[str, Header(
    alias="Idempotency-Key", min_length=8, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$",
    description="the same key with the same record answers the stored one (200)",
)]  # fmt: skip


@router.post("/{reference}/service-records", status_code=201,
             responses={200: {"model": service_records.ServiceRecordReceipt,
                              "description": "Already recorded under this Idempotency-Key"},
                        **problems(404, 500)})  # fmt: skip
def post_service_record(
    ctx: Annotated[Context, context_for("service_records.write")],
    response: Response,
    reference: Reference,
    body: ServiceRecordIn,
    idempotency_key: IdempotencyKey,
) -> service_records.ServiceRecordReceipt:
    """Report a delivered service; the notes are stored encrypted and never echoed."""
    report = service_records.ServiceReport(body.service, body.delivered_at, body.notes)
    result = service_records.record_service(ctx.session, ctx.keyring, ctx.sink, ctx.acting,
                                            ctx.contractor_id, reference, idempotency_key,
                                            report)  # fmt: skip
    if not result.created:
        response.status_code = 200
    return result.record
