"""Contractor API: the case feed, one case, and service records.

`GET /v1/cases?purpose=P&cursor=C&limit=N`   changes since the cursor (cases and tombstones)
`GET /v1/cases/{ref}?purpose=P`              one case, or the uniform 404
`POST /v1/cases/{ref}/service-records`       report a delivered service (Idempotency-Key)

Every read is audited in the request's transaction; if the audit append fails the answer is
503 and nothing is returned (the unit of work rolls back).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from audit.errors import AuditError
from exchange.api.auth import Principal
from exchange.api.deps import AppKeyring, AppSettings, Clock, DbSession
from exchange.api.permissions import require
from exchange.api.routers._contractor import (
    Policies,
    Sink,
    acting,
    audit_unavailable,
    contractor_of,
    flow_problem,
    json_bytes,
    not_found,
)
from exchange.services import cases, feed, service_records
from exchange.services.auditing import AuditUnavailable
from exchange.services.errors import FlowError, InvalidInput

router = APIRouter(prefix="/cases", tags=["contractor"])

Reference = Annotated[str, Path(min_length=1, max_length=128)]
PurposeParam = Annotated[str, Query(description="home_visit | online_guidance | class_invitation")]


@router.get("")
def list_cases(
    request: Request,
    principal: Annotated[Principal, Depends(require("cases.read"))],
    session: DbSession,
    keyring: AppKeyring,
    settings: AppSettings,
    clock: Clock,
    sink: Sink,
    policies: Policies,
    purpose: PurposeParam,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """Changes since `cursor` for the calling contractor, at most `limit` (capped) items."""
    size = min(limit or feed.DEFAULT_LIMIT, settings.max_page_size)
    try:
        page = feed.pull(
            session, keyring, sink, acting(request, principal, clock),
            contractor_of(principal), purpose, cursor, size, policies,
        )  # fmt: skip
    except FlowError as exc:
        raise flow_problem(exc) from None
    except (AuditUnavailable, AuditError):
        raise audit_unavailable() from None
    return json_bytes(page.to_json())


@router.get("/{reference}")
def get_case(
    request: Request,
    principal: Annotated[Principal, Depends(require("cases.read"))],
    session: DbSession,
    keyring: AppKeyring,
    clock: Clock,
    sink: Sink,
    policies: Policies,
    reference: Reference,
    purpose: PurposeParam,
) -> Response:
    try:
        view, envelopes = cases.read_case(
            session, keyring, sink, acting(request, principal, clock),
            contractor_of(principal), purpose, reference, policies,
        )  # fmt: skip
    except cases.CaseNotFound:
        return not_found(request, "case")  # returned, not raised: the audited denial commits
    except FlowError as exc:
        raise flow_problem(exc) from None
    except (AuditUnavailable, AuditError):
        raise audit_unavailable() from None
    return json_bytes({"purpose": view["purpose"], "envelopes": envelopes, "case": view})


class ServiceRecordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service: str = Field(description="one of the services chosen for the case")
    delivered_at: datetime
    notes: str | None = Field(default=None, description="free text; stored encrypted")


@router.post("/{reference}/service-records")
def post_service_record(
    request: Request,
    principal: Annotated[Principal, Depends(require("service_records.write"))],
    session: DbSession,
    keyring: AppKeyring,
    clock: Clock,
    sink: Sink,
    reference: Reference,
    body: ServiceRecordIn,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    report = service_records.ServiceReport(body.service, body.delivered_at, body.notes)
    try:
        result = service_records.record_service(
            session, keyring, sink, acting(request, principal, clock),
            contractor_of(principal), reference, idempotency_key, report,
        )  # fmt: skip
    except cases.CaseNotFound:
        return not_found(request, "case")
    except service_records.IdempotencyMismatch:
        raise flow_problem(
            InvalidInput.field(
                "Idempotency-Key", "reused", "this key was used for a different request"
            )
        ) from None
    except FlowError as exc:
        raise flow_problem(exc) from None
    except (AuditUnavailable, AuditError):
        raise audit_unavailable() from None
    return json_bytes(result.record, 201 if result.created else 200)
