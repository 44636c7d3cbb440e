"""The auditor's API: read-only. A search of entries is itself audited (after the page is read);
checkpoints, the verifier key and proofs, which show sizes and hashes only, append nothing
(`services.audit_access`, docs/audit.md).

`GET /v1/audit/checkpoint` the signed note (text/plain), issued on demand for the current size
`GET /v1/audit/vkey`       the log's verifier key (text/plain)
`GET /v1/audit/entries`    search (actor, action, pseudonym, agreement, outcome, time), paginated,
                           as of `tree_size` (a checkpoint's) or the head
`GET /v1/audit/proofs/inclusion?index=I&tree_size=N`, `.../consistency?first=M&second=N`
`POST /v1/audit/cosignatures` a witness's cosignature on a checkpoint
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from exchange.api.auth import Principal
from exchange.api.deps import AppKeyring, Clock, DbSession
from exchange.api.permissions import require
from exchange.api.routers._office import OFFICE_ERRORS, caller
from exchange.services import audit_access
from exchange.services.bounds import MAX_SQL_INT

router = APIRouter(prefix="/audit", tags=["audit"], dependencies=OFFICE_ERRORS)

Reader = Annotated[Principal, Depends(require("audit.read"))]
Ident = Annotated[str | None, Query(max_length=128, pattern=r"^[A-Za-z0-9._:/+=-]+$")]


@router.get("/checkpoint", response_class=PlainTextResponse)
def checkpoint(
    request: Request,
    principal: Annotated[Principal, Depends(require("audit.checkpoint"))],
    session: DbSession,
    keyring: AppKeyring,
    clock: Clock,
) -> PlainTextResponse:
    """The signed checkpoint of the log's head (C2SP signed note); fetching it appends nothing."""
    note = audit_access.checkpoint_note(session, keyring, caller(request, principal, clock))
    return PlainTextResponse(note)


@router.get("/vkey", response_class=PlainTextResponse)
def vkey(
    request: Request,
    principal: Annotated[Principal, Depends(require("audit.checkpoint"))],
    session: DbSession,
    keyring: AppKeyring,
    clock: Clock,
) -> PlainTextResponse:
    return PlainTextResponse(
        audit_access.vkey(session, keyring, caller(request, principal, clock)) + "\n"
    )


@router.get("/entries")
def entries(
    request: Request,
    principal: Reader,
    session: DbSession,
    keyring: AppKeyring,
    clock: Clock,
    actor: Ident = None,
    action: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z][a-z0-9_.]*$")] = None,
    pseudonym: Ident = None,
    agreement: Ident = None,
    outcome: Literal["ok", "denied", "error"] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: Annotated[int, Query(ge=-1, le=MAX_SQL_INT)] = -1,
    limit: Annotated[int, Query(ge=1, le=audit_access.MAX_PAGE)] = 100,
    tree_size: Annotated[int | None, Query(ge=0, le=MAX_SQL_INT)] = None,
) -> dict[str, Any]:
    """Entries matching every filter, in index order after `after`, below `tree_size` (default:
    the head); each with its index, the canonical bytes (base64) and leaf hash. Pass
    `next_after` back for the next page. The search is recorded after it is read."""
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            from exchange.services.errors import InvalidInput

            raise InvalidInput.field(name, "timezone_required", "give a UTC offset, e.g. Z")
    return audit_access.entries(session, keyring, caller(request, principal, clock),
                                audit_access.EntryQuery(actor, action, pseudonym, agreement,
                                                        outcome, since, until, after, limit,
                                                        tree_size))


@router.get("/proofs/inclusion")
def inclusion_proof(
    request: Request,
    principal: Reader,
    session: DbSession,
    keyring: AppKeyring,
    clock: Clock,
    index: Annotated[int, Query(ge=0, le=MAX_SQL_INT)],
    tree_size: Annotated[int, Query(ge=1, le=MAX_SQL_INT)],
) -> dict[str, Any]:
    return audit_access.inclusion(session, keyring, caller(request, principal, clock), index,
                                  tree_size)  # fmt: skip


@router.get("/proofs/consistency")
def consistency_proof(
    request: Request,
    principal: Reader,
    session: DbSession,
    keyring: AppKeyring,
    clock: Clock,
    first: Annotated[int, Query(ge=1, le=MAX_SQL_INT)],
    second: Annotated[int, Query(ge=1, le=MAX_SQL_INT)],
) -> dict[str, Any]:
    return audit_access.consistency(session, keyring, caller(request, principal, clock), first,
                                    second)  # fmt: skip


class CosignatureBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Annotated[str, Field(min_length=1, max_length=16384,
                               description="the checkpoint note with the witness line appended")]
    witness_vkey: Annotated[str, Field(min_length=1, max_length=512)]


@router.post("/cosignatures", status_code=201, response_class=PlainTextResponse)
def cosign(
    request: Request,
    principal: Annotated[Principal, Depends(require("audit.cosign"))],
    session: DbSession,
    keyring: AppKeyring,
    clock: Clock,
    body: CosignatureBody,
) -> PlainTextResponse:
    """Store a witness cosignature of a checkpoint this log issued; returns the cosigned note."""
    note = audit_access.add_cosignature(session, keyring, caller(request, principal, clock),
                                        body.note, body.witness_vkey)  # fmt: skip
    return PlainTextResponse(note, status_code=201)
