"""Contractor API: `POST /v1/tombstones/{ref}/ack` records that the contractor deleted a case."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response

from audit.errors import AuditError
from exchange.api.auth import Principal
from exchange.api.deps import AppKeyring, Clock, DbSession
from exchange.api.permissions import require
from exchange.api.routers._contractor import (
    Sink,
    acting,
    audit_unavailable,
    contractor_of,
    json_bytes,
    not_found,
)
from exchange.services import tombstones
from exchange.services.auditing import AuditUnavailable

router = APIRouter(prefix="/tombstones", tags=["contractor"])


@router.post("/{reference}/ack")
def acknowledge(
    request: Request,
    principal: Annotated[Principal, Depends(require("cases.acknowledge"))],
    session: DbSession,
    keyring: AppKeyring,
    clock: Clock,
    sink: Sink,
    reference: Annotated[str, Path(min_length=1, max_length=128)],
) -> Response:
    try:
        result = tombstones.acknowledge(
            session, keyring, sink, acting(request, principal, clock),
            contractor_of(principal), reference,
        )  # fmt: skip
    except tombstones.TombstoneNotFound:
        return not_found(request, "tombstone")
    except (AuditUnavailable, AuditError):
        raise audit_unavailable() from None
    return json_bytes(result)
