"""A resident's requests through the office: the disclosure report ("who saw my data"),
erasure (crypto-shredding), and the audit-pseudonym lookup. Each is audited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Path
from typing_extensions import TypedDict

from exchange.api.context import Context, context_for
from exchange.api.problems import problems
from exchange.services import requests as resident_requests

router = APIRouter(prefix="/residents", tags=["resident requests"])

ResidentId = Annotated[str, Path(min_length=1, max_length=36)]


@router.get("/{resident_id}/disclosures", responses=problems(404))
def disclosures(
    ctx: Annotated[Context, context_for("disclosures.read")], resident_id: ResidentId
) -> resident_requests.DisclosureReport:
    """Every disclosure of the resident's data: to whom, when, which fields, why (个人信息查阅记录).
    A cadre gets her communities' residents only; another's answers as no resident."""
    return resident_requests.disclosures(ctx.session, ctx.keyring, ctx.acting, resident_id)


@router.post("/{resident_id}/erase", responses=problems(404, 409))
def erase(
    ctx: Annotated[Context, context_for("residents.erase")],
    background: BackgroundTasks,
    resident_id: ResidentId,
) -> resident_requests.Erasure:
    """Erase (PIPL Art. 47): destroy her data key, clear her fields, tombstone her case."""
    result = resident_requests.erase(ctx.session, ctx.keyring, ctx.acting, resident_id)
    # runs after the response, i.e. after the unit of work committed
    background.add_task(resident_requests.compact_storage, ctx.engine)
    return result


class AuditPseudonym(TypedDict):
    resident_id: str
    audit_pseudonym: str


@router.get("/{resident_id}/audit-pseudonym", responses=problems(404))
def audit_pseudonym(
    ctx: Annotated[Context, context_for("residents.pseudonym")], resident_id: ResidentId
) -> AuditPseudonym:
    """The resident's audit pseudonym, to search the audit log for her (office_admin only)."""
    value = resident_requests.audit_pseudonym(ctx.session, ctx.keyring, ctx.acting, resident_id)
    return {"resident_id": resident_id, "audit_pseudonym": value}
