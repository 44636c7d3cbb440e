"""Which blind-index key version ID numbers are indexed under, and looked up under.

The marker row (`models.BlindIndexMarker`) names the version of the stored indexes and, while
`exchange keys rotate-blind-index` moves them, the next one. A writer (the import, a
registration) reads it with `blind_index_versions(session)` in its own transaction: FOR SHARE on
PostgreSQL, so the rotation (FOR UPDATE) can neither start nor finish under it; SQLite's writer
lock does the same. It then indexes new rows under `write` and matches existing ones under
every version in `lookup`, so a resident indexed before or after the rotation reached her row
is found either way.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.db.models import BlindIndexMarker
from keys.keyring import Keyring


@dataclass(frozen=True, slots=True)
class BlindIndexVersions:
    write: int  # new indexes are computed under this version
    lookup: tuple[int, ...]  # every version a stored index may be under, `write` first

    def index(self, keyring: Keyring, national_id: str) -> str:
        """The index to store for this ID number."""
        return keyring.blind_index(national_id, version=self.write)

    def candidates(self, keyring: Keyring, national_id: str) -> tuple[str, ...]:
        """Every index a stored row of this ID number may hold."""
        return tuple(keyring.blind_index(national_id, version=v) for v in self.lookup)


def blind_index_versions(session: Session, *, hold: bool = True) -> BlindIndexVersions:
    """The marker as this transaction sees it; `hold` keeps it from changing until the
    transaction ends (PostgreSQL FOR SHARE; SQLite's writer holds the database already)."""
    query = select(BlindIndexMarker.version, BlindIndexMarker.next_version).where(
        BlindIndexMarker.id == 1)
    if hold:
        query = query.with_for_update(read=True)
    row = session.execute(query).one()
    if row.next_version is None:
        return BlindIndexVersions(row.version, (row.version,))
    return BlindIndexVersions(row.next_version, (row.next_version, row.version))
