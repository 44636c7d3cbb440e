"""`GET /v1/session`: who the caller is (role, scope); the simplest authenticated route."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel

from exchange.api.context import Context, context_for

router = APIRouter(prefix="/session", tags=["session"])


class SessionView(BaseModel):
    principal_id: str
    name: str
    role: str
    contractor_id: str | None
    community_ids: list[str]


@router.get("", response_model=SessionView)
def whoami(ctx: Annotated[Context, context_for("session.read")]) -> SessionView:
    who = ctx.identity
    return SessionView(principal_id=who.id, name=who.name, role=who.role,
                       contractor_id=who.contractor_id, community_ids=sorted(who.community_ids))
