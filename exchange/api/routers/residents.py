"""Residents for the office: register one; the 居民台账 list, one resident and the exact lookup,
masked exactly as the console shows them; 查看明文 of one value with a reason.

The same services as the console's pages (`resident_ledger.search` / `detail`, `reveal.reveal`),
so no door shows more than another (invariant 12): names, phones, ID numbers and addresses are
masked (贾**, 178****6078, 370214********1234, down to the building), and a value in full takes
a reveal, audited with its reason and limited per user across both doors. A cadre asking for a
resident outside her communities gets the same answer as for one that does not exist.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from exchange.api.context import Context, context_for
from exchange.api.models import IsoDate, StrictModel
from exchange.api.pages import Page
from exchange.api.problems import problems
from exchange.services import resident_ledger, residents, reveal
from exchange.services.bounds import MAX_SQL_INT
from exchange.services.resident_ledger import MaskedDetail, MaskedResident

router = APIRouter(prefix="/residents", tags=["residents"])

ResidentId = Annotated[str, Path(min_length=1, max_length=36)]
Text = Annotated[str, Field(min_length=1, max_length=64)]
OptText = Annotated[str | None, Field(default=None, max_length=64)]


class ResidentBody(StrictModel):
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
    due_date: IsoDate | None = None
    delivery_date: IsoDate | None = None
    parity: Annotated[int | None, Field(default=None, ge=1, le=20)] = None
    risk_flags: Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=20)] = []
    child_birth_date: IsoDate | None = None
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


class ResidentPage(Page[MaskedResident]):
    pass


Month = Annotated[str | None, Query(max_length=7, pattern=r"^\d{4}-\d{2}$",
                                    description="due month, YYYY-MM")]


@router.get("", responses=problems(500))
def list_residents(
    ctx: Reader,
    community: Annotated[str | None, Query(max_length=64, description="its name or id")] = None,
    stage: Annotated[Literal["preparing", "pregnant", "postpartum"] | None, Query()] = None,
    due_month: Month = None,
    assignment: Annotated[Literal["assigned", "unassigned"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=resident_ledger.MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_SQL_INT)] = 0,
) -> ResidentPage:
    """居民台账: residents in the caller's scope (a cadre: her communities) in ledger order,
    masked as the console shows them, with the console's filters; audited as a list."""
    q = resident_ledger.parse_query(ctx.session, community=community or "", stage=stage or "",
                                    due_month=due_month or "", assignment=assignment or "")
    total, page = resident_ledger.search(ctx.session, ctx.keyring, ctx.acting, q,
                                         offset=offset, limit=limit)  # fmt: skip
    return {"total": total, "limit": limit, "offset": offset, "items": page}


class LookupBody(StrictModel):
    """One exact value: an ID number or a mobile number (in the body, never in an address)."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    national_id: Annotated[str, Field(max_length=32)] = ""
    phone: Annotated[str, Field(max_length=32)] = ""


@router.post("/lookup", responses=problems(500))
def lookup_residents(ctx: Reader, body: LookupBody) -> ResidentPage:
    """Exact lookup by ID number (the keyed blind index) or phone, within the caller's scope:
    a resident elsewhere answers as nobody. Audited as `resident.lookup` with a keyed
    reference of the value, never the value."""
    q = resident_ledger.parse_lookup(ctx.session, national_id=body.national_id,
                                     phone=body.phone)  # fmt: skip
    total, page = resident_ledger.search(ctx.session, ctx.keyring, ctx.acting, q,
                                         limit=resident_ledger.MAX_PAGE)  # fmt: skip
    return {"total": total, "limit": resident_ledger.MAX_PAGE, "offset": 0, "items": page}


@router.get("/{resident_id}", responses=problems(404, 500))
def get_resident(ctx: Reader, resident_id: ResidentId) -> MaskedDetail:
    """One resident, masked, with her latest episode and children; audited as a read."""
    return resident_ledger.detail(ctx.session, ctx.keyring, ctx.acting, resident_id)


class RevealBody(StrictModel):
    """查看明文: which value, why (the reason code) and a note (2-200 characters)."""

    field: Literal["name", "national_id", "phone", "address"]
    reason: Literal["home_service_contact", "identity_check", "resident_request", "other"]
    note: Annotated[str, Field(max_length=1000)]


@router.post("/{resident_id}/reveal", responses=problems(404, 409, 429, 500))
def reveal_value(
    ctx: Annotated[Context, context_for("residents.reveal")], resident_id: ResidentId,
    body: RevealBody,
) -> reveal.RevealedView:
    """One value in full, audited as `case.reveal` with the field and the reason (the note is
    kept encrypted, never in the log); at most N an hour per user across the console and the
    API, then 429 with Retry-After (the refusal is audited too)."""
    return reveal.reveal(ctx.session, ctx.keyring, ctx.acting, resident_id, body.field,
                         body.reason, body.note, reveal.policy_for(ctx.settings)).view()
