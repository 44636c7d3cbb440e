"""`GET /v1/session`: who the caller is (role, scope); the simplest authenticated route."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from exchange.api.auth import Principal
from exchange.api.permissions import require

router = APIRouter(prefix="/session", tags=["session"])


class SessionView(BaseModel):
    principal_id: str
    name: str
    role: str
    contractor_id: str | None
    community_ids: list[str]


@router.get("", response_model=SessionView)
def whoami(principal: Annotated[Principal, Depends(require("session.read"))]) -> SessionView:
    return SessionView(
        principal_id=principal.id,
        name=principal.name,
        role=principal.role,
        contractor_id=principal.contractor_id,
        community_ids=sorted(principal.community_ids),
    )
