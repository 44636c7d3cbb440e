"""Which blind-index key version ID numbers and phones are indexed under, and looked up under.

The marker row (`models.BlindIndexMarker`) names the version of the stored indexes and, while
`exchange keys rotate-blind-index` moves them, the next one. A writer (the import, a
registration) reads it with `blind_index_versions(session)` in its own transaction: FOR SHARE on
PostgreSQL, so the rotation (FOR UPDATE) can neither start nor finish under it; SQLite's writer
lock does the same. It then indexes new rows under `write` and matches existing ones under
every version in `lookup`, so a resident indexed before or after the rotation reached her row
is found either way. One marker for both indexes of a row (`national_id_index` and
`phone_index`): they are computed under the same version (`national_id_index_version`), and a
rotation re-indexes both.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.db.models import BlindIndexMarker
from keys.keyring import Keyring
from keys.pseudonyms import BlindIndexField


@dataclass(frozen=True, slots=True)
class BlindIndexVersions:
    write: int  # new indexes are computed under this version
    lookup: tuple[int, ...]  # every version a stored index may be under, `write` first

    def index(self, keyring: Keyring, value: str,
              field: BlindIndexField = BlindIndexField.NATIONAL_ID) -> str:  # fmt: skip
        """The index to store for this ID number (or phone)."""
        return keyring.blind_index(value, version=self.write, field=field)

    def candidates(self, keyring: Keyring, value: str,
                   field: BlindIndexField = BlindIndexField.NATIONAL_ID,
                   ) -> tuple[str, ...]:  # fmt: skip
        """Every index a stored row of this ID number (or phone) may hold."""
        return tuple(keyring.blind_index(value, version=v, field=field) for v in self.lookup)


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
