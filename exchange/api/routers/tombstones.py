"""Contractor API: `POST /v1/tombstones/{ref}/ack` records that the contractor deleted a case."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from exchange.api.context import Context, context_for
from exchange.api.problems import problems
from exchange.services import tombstones

router = APIRouter(prefix="/tombstones", tags=["contractor"])


@router.post("/{reference}/ack", responses=problems(404))
def acknowledge(
    ctx: Annotated[Context, context_for("cases.acknowledge")],
    reference: Annotated[str, Path(min_length=1, max_length=128)],
) -> tombstones.Acknowledgement:
    """Record that the case was deleted (again: harmless, answers the first time)."""
    return tombstones.acknowledge(ctx.session, ctx.keyring, ctx.sink, ctx.acting,
                                  ctx.contractor_id, reference)  # fmt: skip
