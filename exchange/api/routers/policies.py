"""Published policy versions, for auditors and office admins: what each version says, by hash.

`GET /v1/policies`            every published version: id, version, purpose, origin, hash,
                              when, and which agreements are on it
`GET /v1/policies/{sha256}`   one version's document exactly as published (the hash a feed
                              item and an audit entry cite); re-hash it with
                              `exchange policy check` to see it is that document

Policy documents hold no personal data, so these reads append nothing to the audit log.
Thin: `services.published_policies` does the work.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from exchange.api.context import Context, context_for
from exchange.api.problems import problems
from exchange.services import published_policies as store

router = APIRouter(prefix="/policies", tags=["policies"])

Reader = Annotated[Context, context_for("policies.read")]
Sha256 = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="lower-case hex SHA-256")]


@router.get("")
def list_policies(ctx: Reader) -> store.PublishedList:
    """Every published version, by id then version, with the agreements on it."""
    return store.list_view(ctx.session)


@router.get("/{sha256}", responses=problems(404))
def get_policy(ctx: Reader, sha256: Sha256) -> store.PublishedDocument:
    """One published version with its document (TOML) exactly as it was published."""
    return store.document_view(ctx.session, sha256)
