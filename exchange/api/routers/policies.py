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

from typing import Annotated, Any

from fastapi import APIRouter, Path

from exchange.api.context import Context, context_for
from exchange.api.problems import problems
from exchange.db import models as m
from exchange.services import published_policies as store

router = APIRouter(prefix="/policies", tags=["policies"])

Reader = Annotated[Context, context_for("policies.read")]
Sha256 = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="lower-case hex SHA-256")]


def _summary(row: m.PublishedPolicy, users: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "id": row.policy_id, "version": row.version, "purpose": row.purpose,
        "sha256": row.sha256, "origin": row.origin,
        "published_at": row.published_at.isoformat(), "published_by": row.published_by,
        "agreements": [{"reference": ref, "purpose": purpose} for ref, purpose in users],
    }  # fmt: skip


@router.get("")
def list_policies(ctx: Reader) -> dict[str, Any]:
    """Every published version, by id then version."""
    used = store.usage(ctx.session)
    return {"items": [_summary(row, used.get((row.policy_id, row.version), []))
                      for row in store.listing(ctx.session)]}  # fmt: skip


@router.get("/{sha256}", responses=problems(404))
def get_policy(ctx: Reader, sha256: Sha256) -> dict[str, Any]:
    """One published version with its document (TOML) as it was published."""
    row = store.by_hash(ctx.session, sha256)
    used = store.usage(ctx.session).get((row.policy_id, row.version), [])
    return {**_summary(row, used), "document": row.document}
