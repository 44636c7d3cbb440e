"""Entrustment agreements: create (purposes -> shipped policy ids), activate, suspend, terminate.

Suspending tombstones the agreement's cases at its contractor; terminating revokes every
assignment under it, each with a tombstone.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from exchange.api.auth import Principal
from exchange.api.deps import AppKeyring, Clock, DbSession
from exchange.api.permissions import require
from exchange.api.routers._office import OFFICE_ERRORS, caller
from exchange.services import agreements

router = APIRouter(prefix="/agreements", tags=["agreements"], dependencies=OFFICE_ERRORS)

AgreementId = Annotated[str, Path(min_length=1, max_length=36)]
Write = Annotated[Principal, Depends(require("agreements.write"))]


class AgreementBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contractor_id: Annotated[str, Field(min_length=1, max_length=36)]
    reference: Annotated[str, Field(min_length=1, max_length=64, description="contract number")]
    valid_from: date
    valid_to: date
    retention_days: Annotated[int, Field(ge=1, le=agreements.MAX_RETENTION_DAYS)]
    purposes: Annotated[dict[str, str], Field(min_length=1, max_length=3,
                                              description="purpose -> shipped policy id")]
    sub_processors: Annotated[list[Annotated[str, Field(max_length=128)]],
                              Field(max_length=20)] = []


@router.post("", status_code=201)
def create_agreement(
    request: Request, principal: Write, session: DbSession, clock: Clock, body: AgreementBody
) -> dict[str, Any]:
    """Create a draft agreement; activate it before assigning cases under it."""
    row = agreements.create(session, caller(request, principal, clock), agreements.AgreementInput(
        contractor_id=body.contractor_id, reference=body.reference, valid_from=body.valid_from,
        valid_to=body.valid_to, retention_days=body.retention_days, purposes=body.purposes,
        sub_processors=tuple(body.sub_processors),
    ))  # fmt: skip
    return agreements.view(row)


@router.get("")
def list_agreements(
    principal: Annotated[Principal, Depends(require("agreements.read"))],
    session: DbSession,
    contractor_id: Annotated[str | None, Query(max_length=36)] = None,
    status: Literal["draft", "active", "suspended", "terminated"] | None = None,
) -> dict[str, Any]:
    return {"items": agreements.list_agreements(session, contractor_id, status)}


@router.get("/{agreement_id}")
def get_agreement(
    principal: Annotated[Principal, Depends(require("agreements.read"))],
    session: DbSession,
    agreement_id: AgreementId,
) -> dict[str, Any]:
    return agreements.view(agreements.get_agreement(session, agreement_id))


@router.post("/{agreement_id}/activate")
def activate(
    request: Request, principal: Write, session: DbSession, clock: Clock,
    agreement_id: AgreementId,
) -> dict[str, Any]:  # fmt: skip
    row = agreements.activate(session, caller(request, principal, clock), agreement_id)
    return agreements.view(row)


@router.post("/{agreement_id}/suspend")
def suspend(
    request: Request, principal: Write, session: DbSession, keyring: AppKeyring, clock: Clock,
    agreement_id: AgreementId,
) -> dict[str, Any]:  # fmt: skip
    row = agreements.suspend(session, keyring, caller(request, principal, clock), agreement_id)
    return agreements.view(row)


@router.post("/{agreement_id}/terminate")
def terminate(
    request: Request, principal: Write, session: DbSession, keyring: AppKeyring, clock: Clock,
    agreement_id: AgreementId,
) -> dict[str, Any]:  # fmt: skip
    row = agreements.terminate(session, keyring, caller(request, principal, clock), agreement_id)
    return agreements.view(row)
