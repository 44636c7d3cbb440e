"""Contractors and their HPKE public keys (registering one rotates: the old key is retired)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from exchange.api.auth import Principal
from exchange.api.deps import Clock, DbSession
from exchange.api.permissions import require
from exchange.api.routers._office import OFFICE_ERRORS, caller
from exchange.services import contractors

router = APIRouter(prefix="/contractors", tags=["contractors"], dependencies=OFFICE_ERRORS)

ContractorId = Annotated[str, Path(min_length=1, max_length=36)]


class ContractorBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=contractors.MAX_NAME)]


class KeyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    public_key: Annotated[str, Field(min_length=1, max_length=8192,
                                     description="the key's text form (keys.ContractorPublicKey)")]


@router.post("", status_code=201)
def create_contractor(
    request: Request,
    principal: Annotated[Principal, Depends(require("contractors.write"))],
    session: DbSession,
    clock: Clock,
    body: ContractorBody,
) -> dict[str, Any]:
    row = contractors.create(session, caller(request, principal, clock), body.name)
    return contractors.view(row)


@router.get("")
def list_contractors(
    principal: Annotated[Principal, Depends(require("contractors.read"))], session: DbSession
) -> dict[str, Any]:
    return {"items": contractors.list_contractors(session)}


@router.get("/{contractor_id}")
def get_contractor(
    principal: Annotated[Principal, Depends(require("contractors.read"))],
    session: DbSession,
    contractor_id: ContractorId,
) -> dict[str, Any]:
    return contractors.view(contractors.get_contractor(session, contractor_id))


@router.post("/{contractor_id}/keys", status_code=201)
def register_key(
    request: Request,
    principal: Annotated[Principal, Depends(require("contractor_keys.write"))],
    session: DbSession,
    clock: Clock,
    contractor_id: ContractorId,
    body: KeyBody,
) -> dict[str, Any]:
    """Register a new public key: it becomes the active one, older keys are retired."""
    row = contractors.register_key(session, caller(request, principal, clock), contractor_id,
                                   body.public_key)  # fmt: skip
    return contractors.key_view(row)


@router.get("/{contractor_id}/keys")
def list_keys(
    principal: Annotated[Principal, Depends(require("contractors.read"))],
    session: DbSession,
    contractor_id: ContractorId,
) -> dict[str, Any]:
    return {"items": contractors.view(contractors.get_contractor(session, contractor_id))["keys"]}
