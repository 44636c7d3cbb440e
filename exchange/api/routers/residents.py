"""Residents for the office: register one, list and read within the caller's scope.

Personal fields are decrypted for office roles only (the permission table admits no other
role here); a cadre asking for a resident outside her communities gets the same 404 as for a
resident that does not exist.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, NotRequired

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict

from exchange.api.context import Context, context_for
from exchange.api.pages import Page
from exchange.api.problems import problems
from exchange.services import residents
from exchange.services.bounds import MAX_SQL_INT

router = APIRouter(prefix="/residents", tags=["residents"])

ResidentId = Annotated[str, Path(min_length=1, max_length=36)]
Text = Annotated[str, Field(min_length=1, max_length=64)]
OptText = Annotated[str | None, Field(default=None, max_length=64)]


class ResidentBody(BaseModel):
    """One resident, as on the ledger; values are checked by the import's rules."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    name: Text
    national_id: Annotated[str, Field(min_length=1, max_length=32)]
    phone: Annotated[str, Field(min_length=1, max_length=32)]
    community: Text
    stage: Annotated[str, Field(min_length=1, max_length=16,
                                description="preparing | pregnant | postpartum (备孕/孕期/产后)")]
    compound: OptText = None
    building: OptText = None
    unit: OptText = None
    room: OptText = None
    due_date: date | None = None
    delivery_date: date | None = None
    parity: Annotated[int | None, Field(default=None, ge=1, le=20)] = None
    risk_flags: Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=20)] = []
    child_birth_date: date | None = None
    child_sex: Annotated[str | None, Field(default=None, pattern="^(F|M)$")] = None


class Created(BaseModel):
    id: str


Reader = Annotated[Context, context_for("residents.read")]


@router.post("", status_code=201, response_model=Created, responses=problems(409))
def register_resident(
    ctx: Annotated[Context, context_for("residents.write")], body: ResidentBody
) -> Created:
    """Register one resident (validated like a ledger row; errors name the field only)."""
    data = residents.ResidentInput(**{**body.model_dump(), "risk_flags": tuple(body.risk_flags)})
    return Created(id=residents.register(ctx.session, ctx.keyring, ctx.acting, data))


class ResidentOut(TypedDict):
    """A resident; the personal parts only for office roles (never for an erased one)."""

    id: str
    district: str
    street: str
    community: str
    stage: str | None
    erased: bool
    personal: NotRequired[residents.PersonalView]
    episode: NotRequired[residents.EpisodeView]
    children: NotRequired[list[residents.ChildView]]


class ResidentPage(Page[ResidentOut]):
    pass


def _view(v: residents.ResidentView) -> ResidentOut:
    out: ResidentOut = {"id": v.id, "district": v.district, "street": v.street,
                        "community": v.community, "stage": v.stage, "erased": v.erased}
    if v.personal is not None:
        out["personal"], out["episode"], out["children"] = v.personal, v.episode, v.children
    return out


@router.get("", responses=problems(500))
def list_residents(
    ctx: Reader,
    community: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=residents.MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_SQL_INT)] = 0,
) -> ResidentPage:
    """Residents in the caller's scope (a cadre: her communities), oldest first."""
    total, page = residents.list_residents(
        ctx.session, ctx.keyring, ctx.acting, community=community, limit=limit, offset=offset
    )
    return {"total": total, "limit": limit, "offset": offset, "items": [_view(v) for v in page]}


@router.get("/{resident_id}", responses=problems(404, 500))
def get_resident(ctx: Reader, resident_id: ResidentId) -> ResidentOut:
    return _view(residents.get(ctx.session, ctx.keyring, ctx.acting, resident_id))
