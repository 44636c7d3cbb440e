"""Contractors and their HPKE public keys (registering one rotates: the old key is retired)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import Field

from exchange.api.context import Context, context_for
from exchange.api.models import StrictModel
from exchange.api.pages import Items
from exchange.api.problems import problems
from exchange.services import contractors

router = APIRouter(prefix="/contractors", tags=["contractors"])

ContractorId = Annotated[str, Path(min_length=1, max_length=36)]
Reader = Annotated[Context, context_for("contractors.read")]


class ContractorList(Items[contractors.ContractorView]):
    pass


class KeyList(Items[contractors.KeyView]):
    pass


class ContractorBody(StrictModel):
    name: Annotated[str, Field(min_length=1, max_length=contractors.MAX_NAME)]


class KeyBody(StrictModel):
    public_key: Annotated[str, Field(min_length=1, max_length=8192,
                                     description="the key's text form (keys.ContractorPublicKey)")]


@router.post("", status_code=201, responses=problems(409))
def create_contractor(
    ctx: Annotated[Context, context_for("contractors.write")], body: ContractorBody
) -> contractors.ContractorView:
    return contractors.view(contractors.create(ctx.session, ctx.acting, body.name))


@router.get("")
def list_contractors(ctx: Reader) -> ContractorList:
    return {"items": contractors.list_contractors(ctx.session)}


@router.get("/{contractor_id}", responses=problems(404))
def get_contractor(ctx: Reader, contractor_id: ContractorId) -> contractors.ContractorView:
    return contractors.view(contractors.get_contractor(ctx.session, contractor_id))


@router.post("/{contractor_id}/keys", status_code=201, responses=problems(404, 409))
def register_key(
    ctx: Annotated[Context, context_for("contractor_keys.write")],
    contractor_id: ContractorId,
    body: KeyBody,
) -> contractors.KeyView:
    """Register a new public key: it becomes the active one, older keys are retired."""
    row = contractors.register_key(ctx.session, ctx.acting, contractor_id, body.public_key)
    return contractors.key_view(row)


@router.get("/{contractor_id}/keys", responses=problems(404))
def list_keys(ctx: Reader, contractor_id: ContractorId) -> KeyList:
    row = contractors.get_contractor(ctx.session, contractor_id)
    return {"items": contractors.view(row)["keys"]}
