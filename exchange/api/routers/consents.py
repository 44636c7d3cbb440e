"""Consent events of a resident: record a grant, withdraw (immediate), read the history.

Sensitive scopes (pregnancy_health, birth_health) need `separate: true` (PIPL Art. 29) and
child_data needs `guardian: true` (Art. 31). A withdrawal reaches the contractor on its next
sync: as a tombstone when service_contact goes, otherwise as the reduced case view.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path
from pydantic import Field

from exchange.api.context import Context, context_for
from exchange.api.models import StrictModel
from exchange.api.problems import problems
from exchange.services import consent

router = APIRouter(prefix="/residents", tags=["consent"])

ResidentId = Annotated[str, Path(min_length=1, max_length=36)]
Scope = Literal["service_contact", "pregnancy_health", "birth_health", "child_data"]


class ConsentBody(StrictModel):
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=4)]
    method: Literal["paper", "phone", "wechat"]
    notice_version: Annotated[str, Field(min_length=1, max_length=32)]
    evidence_sha256: Annotated[str, Field(min_length=64, max_length=64,
                                          description="SHA-256 (hex) of the signed form, "
                                                      "recording or screenshot")]
    agreement_id: Annotated[str | None, Field(max_length=36)] = None
    programme: Annotated[str | None, Field(max_length=64)] = None
    separate: bool = Field(False, description="sensitive scopes were consented to separately")
    guardian: bool = Field(False, description="child_data given by the infant's guardian")

    def to_input(self) -> consent.ConsentInput:
        return consent.ConsentInput(
            scopes=tuple(self.scopes), method=self.method, notice_version=self.notice_version,
            evidence_sha256=self.evidence_sha256.lower(), agreement_id=self.agreement_id,
            programme=self.programme, separate=self.separate, guardian=self.guardian,
        )  # fmt: skip


Writer = Annotated[Context, context_for("consents.write")]


@router.post("/{resident_id}/consents", status_code=201, responses=problems(404, 409))
def record_consent(
    ctx: Writer, resident_id: ResidentId, body: ConsentBody
) -> consent.ConsentEventView:
    """Record a grant of consent."""
    event = consent.grant(ctx.session, ctx.keyring, ctx.acting, resident_id, body.to_input())
    return consent.event_view(event)


@router.post("/{resident_id}/consents/withdraw", status_code=201, responses=problems(404, 409))
def withdraw_consent(
    ctx: Writer, resident_id: ResidentId, body: ConsentBody
) -> consent.ConsentEventView:
    """Withdraw consent for the named scopes, effective at once."""
    event = consent.withdraw(ctx.session, ctx.keyring, ctx.acting, resident_id, body.to_input())
    return consent.event_view(event)


@router.get("/{resident_id}/consents", responses=problems(404))
def consent_history(
    ctx: Annotated[Context, context_for("consents.read")], resident_id: ResidentId
) -> consent.ConsentHistory:
    """Every consent event of the resident, and the current consent per agreement."""
    return consent.history(ctx.session, ctx.acting, resident_id)
