"""Entrustment agreements: create (purposes -> shipped policy ids), activate, suspend, terminate.

Suspending tombstones the agreement's cases at its contractor; terminating revokes every
assignment under it, each with a tombstone.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import Field

from exchange.api.context import Context, context_for
from exchange.api.models import IsoDate, StrictModel
from exchange.api.pages import Items
from exchange.api.problems import problems
from exchange.services import agreements

router = APIRouter(prefix="/agreements", tags=["agreements"])

AgreementId = Annotated[str, Path(min_length=1, max_length=36)]
Reader = Annotated[Context, context_for("agreements.read")]
Writer = Annotated[Context, context_for("agreements.write")]


class AgreementList(Items[agreements.AgreementView]):
    pass


class AgreementBody(StrictModel):
    contractor_id: Annotated[str, Field(min_length=1, max_length=36)]
    reference: Annotated[str, Field(min_length=1, max_length=64, description="contract number")]
    valid_from: IsoDate
    valid_to: IsoDate
    retention_days: Annotated[int, Field(ge=1, le=agreements.MAX_RETENTION_DAYS)]
    purposes: Annotated[dict[str, str], Field(min_length=1, max_length=3,
                                              description="purpose -> shipped policy id")]
    sub_processors: Annotated[list[Annotated[str, Field(max_length=128)]],
                              Field(max_length=20)] = []


@router.post("", status_code=201, responses=problems(409))
def create_agreement(ctx: Writer, body: AgreementBody) -> agreements.AgreementView:
    """Create a draft agreement; activate it before assigning cases under it."""
    row = agreements.create(ctx.session, ctx.acting, agreements.AgreementInput(
        contractor_id=body.contractor_id, reference=body.reference, valid_from=body.valid_from,
        valid_to=body.valid_to, retention_days=body.retention_days, purposes=body.purposes,
        sub_processors=tuple(body.sub_processors),
    ))  # fmt: skip
    return agreements.view(row)


@router.get("")
def list_agreements(
    ctx: Reader,
    contractor_id: Annotated[str | None, Query(max_length=36)] = None,
    status: Literal["draft", "active", "suspended", "terminated"] | None = None,
) -> AgreementList:
    return {"items": agreements.list_agreements(ctx.session, contractor_id, status)}


@router.get("/{agreement_id}", responses=problems(404))
def get_agreement(ctx: Reader, agreement_id: AgreementId) -> agreements.AgreementView:
    return agreements.view(agreements.get_agreement(ctx.session, agreement_id))


@router.post("/{agreement_id}/activate", responses=problems(404, 409))
def activate(ctx: Writer, agreement_id: AgreementId) -> agreements.AgreementView:
    return agreements.view(agreements.activate(ctx.session, ctx.acting, agreement_id))


@router.post("/{agreement_id}/suspend", responses=problems(404, 409))
def suspend(ctx: Writer, agreement_id: AgreementId) -> agreements.AgreementView:
    """Suspend: the contractor is told to delete every case until re-activation."""
    return agreements.view(agreements.suspend(ctx.session, ctx.keyring, ctx.acting, agreement_id))


@router.post("/{agreement_id}/terminate", responses=problems(404, 409))
def terminate(ctx: Writer, agreement_id: AgreementId) -> agreements.AgreementView:
    """Terminate (final): every assignment is revoked and its case tombstoned."""
    row = agreements.terminate(ctx.session, ctx.keyring, ctx.acting, agreement_id)
    return agreements.view(row)
