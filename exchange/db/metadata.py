"""Every table the migrations manage: the exchange's `Base.metadata` and the audit store's."""

from __future__ import annotations

from sqlalchemy import MetaData

from exchange.db.base import Base


def exchange_metadata() -> MetaData:
    import exchange.db.models  # noqa: F401  (registers the tables)

    return Base.metadata


def audit_metadata() -> MetaData | None:
    """The audit store's tables, or None while `audit.store` does not exist yet."""
    try:
        from audit.store import metadata
    except ImportError:
        return None
    return metadata


def target_metadata() -> list[MetaData]:
    audit = audit_metadata()
    return [exchange_metadata()] + ([audit] if audit is not None else [])
