"""Consent events of a resident: record a grant, withdraw (immediate), read the history.

Sensitive scopes (pregnancy_health, birth_health) need `separate: true` (PIPL Art. 29) and
child_data needs `guardian: true` (Art. 31). A withdrawal reaches the contractor on its next
sync: as a tombstone when service_contact goes, otherwise as the reduced case view.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from exchange.api.auth import Principal
from exchange.api.deps import AppKeyring, Clock, DbSession
from exchange.api.permissions import require
from exchange.api.routers._office import OFFICE_ERRORS, caller
from exchange.services import consent

router = APIRouter(prefix="/residents", tags=["consent"], dependencies=OFFICE_ERRORS)

ResidentId = Annotated[str, Path(min_length=1, max_length=36)]
Scope = Literal["service_contact", "pregnancy_health", "birth_health", "child_data"]


class ConsentBody(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

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


@router.post("/{resident_id}/consents", status_code=201)
def record_consent(
    request: Request,
    principal: Annotated[Principal, Depends(require("consents.write"))],
    session: DbSession,
    keyring: AppKeyring,
    clock: Clock,
    resident_id: ResidentId,
    body: ConsentBody,
) -> dict[str, Any]:
    """Record a grant of consent."""
    event = consent.grant(session, keyring, caller(request, principal, clock), resident_id,
                          body.to_input())  # fmt: skip
    return consent.event_view(event)


@router.post("/{resident_id}/consents/withdraw", status_code=201)
def withdraw_consent(
    request: Request,
    principal: Annotated[Principal, Depends(require("consents.write"))],
    session: DbSession,
    keyring: AppKeyring,
    clock: Clock,
    resident_id: ResidentId,
    body: ConsentBody,
) -> dict[str, Any]:
    """Withdraw consent for the named scopes, effective at once."""
    event = consent.withdraw(session, keyring, caller(request, principal, clock), resident_id,
                             body.to_input())  # fmt: skip
    return consent.event_view(event)


@router.get("/{resident_id}/consents")
def consent_history(
    request: Request,
    principal: Annotated[Principal, Depends(require("consents.read"))],
    session: DbSession,
    clock: Clock,
    resident_id: ResidentId,
) -> dict[str, Any]:
    """Every consent event of the resident, and the current consent per agreement."""
    return consent.history(session, caller(request, principal, clock), resident_id)
