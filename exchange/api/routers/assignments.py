"""Assignments: a resident's case to a contractor under an agreement with 4 of the 6 services;
revoke; bookings; progress and the service records the contractor sent back."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import Field

from exchange.api.context import Context, context_for
from exchange.api.models import IsoDate, StrictModel
from exchange.api.pages import Items, Page
from exchange.api.problems import problems
from exchange.services import assignments
from exchange.services.bounds import MAX_SQL_INT

router = APIRouter(prefix="/assignments", tags=["assignments"])

AssignmentId = Annotated[str, Path(min_length=1, max_length=36)]
Service = Literal["mid_pregnancy", "late_pregnancy", "confinement", "early_education",
                  "postpartum_recovery", "parenting"]  # fmt: skip
Reader = Annotated[Context, context_for("assignments.read")]
Writer = Annotated[Context, context_for("assignments.write")]


class AssignmentPage(Page[assignments.AssignmentView]):
    pass


class ServiceRecordList(Items[assignments.ServiceRecordView]):
    pass


class BookingBody(StrictModel):
    service: Service
    on: IsoDate

    def to_input(self) -> assignments.BookingInput:
        return assignments.BookingInput(self.service, self.on)


class AssignmentBody(StrictModel):
    resident_id: Annotated[str, Field(min_length=1, max_length=36)]
    contractor_id: Annotated[str, Field(min_length=1, max_length=36)]
    agreement_id: Annotated[str, Field(min_length=1, max_length=36)]
    services: Annotated[list[Service], Field(description="exactly 4 distinct of the 6")]
    bookings: Annotated[list[BookingBody], Field(max_length=50)] = []


@router.post("", status_code=201, responses=problems(404, 409))
def create_assignment(ctx: Writer, body: AssignmentBody) -> assignments.AssignmentView:
    """Assign a consenting resident's case to a contractor under an active agreement."""
    aid = assignments.create(ctx.session, ctx.keyring, ctx.acting, assignments.AssignmentInput(
        body.resident_id, body.contractor_id, body.agreement_id, tuple(body.services),
        tuple(b.to_input() for b in body.bookings)))  # fmt: skip
    return assignments.get(ctx.session, ctx.acting, aid)


@router.get("")
def list_assignments(
    ctx: Reader,
    resident_id: Annotated[str | None, Query(max_length=36)] = None,
    contractor_id: Annotated[str | None, Query(max_length=36)] = None,
    agreement_id: Annotated[str | None, Query(max_length=36)] = None,
    status: Literal["active", "revoked"] | None = None,
    limit: Annotated[int, Query(ge=1, le=assignments.MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_SQL_INT)] = 0,
) -> AssignmentPage:
    """Assignments in the caller's scope, each with its progress (services delivered)."""
    total, items = assignments.list_assignments(
        ctx.session, ctx.acting, resident_id=resident_id, contractor_id=contractor_id,
        agreement_id=agreement_id, status=status, limit=limit, offset=offset,
    )  # fmt: skip
    return {"total": total, "limit": limit, "offset": offset, "items": items}


@router.get("/{assignment_id}", responses=problems(404))
def get_assignment(ctx: Reader, assignment_id: AssignmentId) -> assignments.AssignmentView:
    return assignments.get(ctx.session, ctx.acting, assignment_id)


@router.post("/{assignment_id}/revoke", responses=problems(404, 409))
def revoke_assignment(ctx: Writer, assignment_id: AssignmentId) -> assignments.AssignmentView:
    """Revoke: the contractor's next sync receives a tombstone for the case."""
    assignments.revoke(ctx.session, ctx.keyring, ctx.acting, assignment_id)
    return assignments.get(ctx.session, ctx.acting, assignment_id)


@router.post("/{assignment_id}/bookings", status_code=201, responses=problems(404, 409))
def add_booking(
    ctx: Writer, assignment_id: AssignmentId, body: BookingBody
) -> assignments.AssignmentView:
    assignments.add_booking(ctx.session, ctx.keyring, ctx.acting, assignment_id, body.to_input())
    return assignments.get(ctx.session, ctx.acting, assignment_id)


@router.get("/{assignment_id}/service-records", responses=problems(404, 500))
def service_records(
    ctx: Annotated[Context, context_for("progress.read")], assignment_id: AssignmentId
) -> ServiceRecordList:
    """What the contractor reported back; notes decrypted (office roles only)."""
    items = assignments.service_records(ctx.session, ctx.keyring, ctx.acting, assignment_id)
    return {"items": items}
