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

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse
from pydantic import Field

from exchange.api.context import Context, context_for
from exchange.api.models import IsoDateTime, StrictModel
from exchange.api.problems import problems
from exchange.services import audit_access
from exchange.services.bounds import MAX_SQL_INT

router = APIRouter(prefix="/audit", tags=["audit"])

Reader = Annotated[Context, context_for("audit.read")]
CheckpointReader = Annotated[Context, context_for("audit.checkpoint")]
Ident = Annotated[str | None, Query(max_length=128, pattern=r"^[A-Za-z0-9._:/+=-]+$")]


@router.get("/checkpoint", response_class=PlainTextResponse)
def checkpoint(ctx: CheckpointReader) -> PlainTextResponse:
    """The signed checkpoint of the log's head (C2SP signed note); fetching it appends nothing."""
    return PlainTextResponse(audit_access.checkpoint_note(ctx.session, ctx.keyring, ctx.acting))


@router.get("/vkey", response_class=PlainTextResponse)
def vkey(ctx: CheckpointReader) -> PlainTextResponse:
    return PlainTextResponse(audit_access.vkey(ctx.session, ctx.keyring, ctx.acting) + "\n")


@router.get("/entries")
def entries(
    ctx: Reader,
    actor: Ident = None,
    action: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z][a-z0-9_.]*$")] = None,
    pseudonym: Ident = None,
    agreement: Ident = None,
    outcome: Literal["ok", "denied", "error"] | None = None,
    since: Annotated[IsoDateTime | None, Query(description="with a UTC offset, e.g. Z")] = None,
    until: Annotated[IsoDateTime | None, Query(description="with a UTC offset, e.g. Z")] = None,
    after: Annotated[int, Query(ge=-1, le=MAX_SQL_INT)] = -1,
    limit: Annotated[int, Query(ge=1, le=audit_access.MAX_PAGE)] = 100,
    tree_size: Annotated[int | None, Query(ge=0, le=MAX_SQL_INT)] = None,
) -> audit_access.EntriesPage:
    """Entries matching every filter, in index order after `after`, below `tree_size` (default:
    the head); each with its index, the canonical bytes (base64) and leaf hash. Pass
    `next_after` back for the next page. The search is recorded after it is read."""
    query = audit_access.EntryQuery(actor, action, pseudonym, agreement, outcome, since, until,
                                    after, limit, tree_size)  # fmt: skip
    return audit_access.entries(ctx.session, ctx.keyring, ctx.acting, query)


@router.get("/proofs/inclusion", responses=problems(404))
def inclusion_proof(
    ctx: Reader,
    index: Annotated[int, Query(ge=0, le=MAX_SQL_INT)],
    tree_size: Annotated[int, Query(ge=1, le=MAX_SQL_INT)],
) -> audit_access.InclusionProof:
    return audit_access.inclusion(ctx.session, ctx.keyring, ctx.acting, index, tree_size)


@router.get("/proofs/consistency", responses=problems(404))
def consistency_proof(
    ctx: Reader,
    first: Annotated[int, Query(ge=1, le=MAX_SQL_INT)],
    second: Annotated[int, Query(ge=1, le=MAX_SQL_INT)],
) -> audit_access.ConsistencyProof:
    return audit_access.consistency(ctx.session, ctx.keyring, ctx.acting, first, second)


class CosignatureBody(StrictModel):
    note: Annotated[str, Field(min_length=1, max_length=16384,
                               description="the checkpoint note with the witness line appended")]
    witness_vkey: Annotated[str, Field(min_length=1, max_length=512)]


@router.post("/cosignatures", status_code=201, response_class=PlainTextResponse)
def cosign(
    ctx: Annotated[Context, context_for("audit.cosign")], body: CosignatureBody
) -> PlainTextResponse:
    """Store a witness cosignature of a checkpoint this log issued; returns the cosigned note."""
    note = audit_access.add_cosignature(ctx.session, ctx.keyring, ctx.acting, body.note,
                                        body.witness_vkey)  # fmt: skip
    return PlainTextResponse(note, status_code=201)

