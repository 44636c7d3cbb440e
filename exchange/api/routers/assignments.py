"""Assignments: a resident's case to a contractor under an agreement with 4 of the 6 services;
revoke; bookings; progress and the service records the contractor sent back."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from exchange.api.auth import Principal
from exchange.api.deps import AppKeyring, Clock, DbSession
from exchange.api.permissions import require
from exchange.api.routers._office import OFFICE_ERRORS, caller
from exchange.services import assignments
from exchange.services.bounds import MAX_SQL_INT

router = APIRouter(prefix="/assignments", tags=["assignments"], dependencies=OFFICE_ERRORS)

AssignmentId = Annotated[str, Path(min_length=1, max_length=36)]
Service = Literal["mid_pregnancy", "late_pregnancy", "confinement", "early_education",
                  "postpartum_recovery", "parenting"]  # fmt: skip
Write = Annotated[Principal, Depends(require("assignments.write"))]


class BookingBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    service: Service
    on: date

    def to_input(self) -> assignments.BookingInput:
        return assignments.BookingInput(self.service, self.on)


class AssignmentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resident_id: Annotated[str, Field(min_length=1, max_length=36)]
    contractor_id: Annotated[str, Field(min_length=1, max_length=36)]
    agreement_id: Annotated[str, Field(min_length=1, max_length=36)]
    services: Annotated[list[Service], Field(description="exactly 4 distinct of the 6")]
    bookings: Annotated[list[BookingBody], Field(max_length=50)] = []


@router.post("", status_code=201)
def create_assignment(
    request: Request, principal: Write, session: DbSession, keyring: AppKeyring, clock: Clock,
    body: AssignmentBody,
) -> dict[str, Any]:  # fmt: skip
    """Assign a consenting resident's case to a contractor under an active agreement."""
    who = caller(request, principal, clock)
    aid = assignments.create(session, keyring, who, assignments.AssignmentInput(
        body.resident_id, body.contractor_id, body.agreement_id, tuple(body.services),
        tuple(b.to_input() for b in body.bookings)))  # fmt: skip
    return assignments.get(session, who, aid)


@router.get("")
def list_assignments(
    request: Request,
    principal: Annotated[Principal, Depends(require("assignments.read"))],
    session: DbSession,
    clock: Clock,
    resident_id: Annotated[str | None, Query(max_length=36)] = None,
    contractor_id: Annotated[str | None, Query(max_length=36)] = None,
    agreement_id: Annotated[str | None, Query(max_length=36)] = None,
    status: Literal["active", "revoked"] | None = None,
    limit: Annotated[int, Query(ge=1, le=assignments.MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_SQL_INT)] = 0,
) -> dict[str, Any]:
    """Assignments in the caller's scope, each with its progress (services delivered)."""
    total, items = assignments.list_assignments(
        session, caller(request, principal, clock), resident_id=resident_id,
        contractor_id=contractor_id, agreement_id=agreement_id, status=status, limit=limit,
        offset=offset,
    )  # fmt: skip
    return {"total": total, "limit": limit, "offset": offset, "items": items}


@router.get("/{assignment_id}")
def get_assignment(
    request: Request,
    principal: Annotated[Principal, Depends(require("assignments.read"))],
    session: DbSession,
    clock: Clock,
    assignment_id: AssignmentId,
) -> dict[str, Any]:
    return assignments.get(session, caller(request, principal, clock), assignment_id)


@router.post("/{assignment_id}/revoke")
def revoke_assignment(
    request: Request, principal: Write, session: DbSession, keyring: AppKeyring, clock: Clock,
    assignment_id: AssignmentId,
) -> dict[str, Any]:  # fmt: skip
    """Revoke: the contractor's next sync receives a tombstone for the case."""
    who = caller(request, principal, clock)
    assignments.revoke(session, keyring, who, assignment_id)
    return assignments.get(session, who, assignment_id)


@router.post("/{assignment_id}/bookings", status_code=201)
def add_booking(
    request: Request, principal: Write, session: DbSession, keyring: AppKeyring, clock: Clock,
    assignment_id: AssignmentId, body: BookingBody,
) -> dict[str, Any]:  # fmt: skip
    who = caller(request, principal, clock)
    assignments.add_booking(session, keyring, who, assignment_id, body.to_input())
    return assignments.get(session, who, assignment_id)


@router.get("/{assignment_id}/service-records")
def service_records(
    request: Request,
    principal: Annotated[Principal, Depends(require("progress.read"))],
    session: DbSession,
    keyring: AppKeyring,
    clock: Clock,
    assignment_id: AssignmentId,
) -> dict[str, Any]:
    """What the contractor reported back; notes decrypted (office roles only)."""
    items = assignments.service_records(session, keyring, caller(request, principal, clock),
                                        assignment_id)  # fmt: skip
    return {"items": items}
