"""A resident's requests through the office: the disclosure report ("who saw my data"),
erasure (crypto-shredding), and the audit-pseudonym lookup. Each is audited."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Path, Request

from exchange.api.auth import Principal
from exchange.api.deps import AppKeyring, Clock, DbSession
from exchange.api.permissions import require
from exchange.api.routers._office import OFFICE_ERRORS, caller
from exchange.services import requests as resident_requests

router = APIRouter(prefix="/residents", tags=["resident requests"], dependencies=OFFICE_ERRORS)

ResidentId = Annotated[str, Path(min_length=1, max_length=36)]


@router.get("/{resident_id}/disclosures")
def disclosures(
    request: Request,
    principal: Annotated[Principal, Depends(require("residents.report"))],
    session: DbSession,
    keyring: AppKeyring,
    clock: Clock,
    resident_id: ResidentId,
) -> dict[str, Any]:
    """Every disclosure of the resident's data: to whom, when, which fields, why."""
    return resident_requests.disclosures(session, keyring, caller(request, principal, clock),
                                         resident_id)  # fmt: skip


@router.post("/{resident_id}/erase")
def erase(
    request: Request,
    principal: Annotated[Principal, Depends(require("residents.erase"))],
    session: DbSession,
    keyring: AppKeyring,
    clock: Clock,
    background: BackgroundTasks,
    resident_id: ResidentId,
) -> dict[str, Any]:
    """Erase (PIPL Art. 47): destroy her data key, clear her fields, tombstone her case."""
    result = resident_requests.erase(session, keyring, caller(request, principal, clock),
                                     resident_id)  # fmt: skip
    # runs after the response, i.e. after the unit of work committed
    background.add_task(resident_requests.compact_storage,
                        request.app.state.session_factory.kw["bind"])  # fmt: skip
    return result


@router.get("/{resident_id}/audit-pseudonym")
def audit_pseudonym(
    request: Request,
    principal: Annotated[Principal, Depends(require("residents.pseudonym"))],
    session: DbSession,
    keyring: AppKeyring,
    clock: Clock,
    resident_id: ResidentId,
) -> dict[str, str]:
    """The resident's audit pseudonym, to search the audit log for her (office_admin only)."""
    value = resident_requests.audit_pseudonym(session, keyring, caller(request, principal, clock),
                                              resident_id)  # fmt: skip
    return {"resident_id": resident_id, "audit_pseudonym": value}
