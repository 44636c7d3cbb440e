"""The database side of keys.rotation's ports (docs/keys.md §Rotation).

* `SqlWrappedKeyStore`: resident data keys (`resident_data_keys`) in resident-id order;
  `replace` is a compare-and-swap on the wrapped bytes, so a row erased or rotated meanwhile is
  skipped rather than overwritten.
* `SqlAccountKeyStore`: console accounts' data keys (`console_accounts.data_key`, which guard
  their TOTP secrets), owner = the principal id; a handful of rows, re-wrapped with the root.
* `SqlCursorStore`: the saved position of a resumable job (`key_jobs`); saving `None` ends it.
* `SqlContractorKeyStore`: contractors' HPKE public keys (`contractor_keys`).

All of them work inside the caller's Session and never commit: whoever drives the job decides
where a transaction ends (see exchange.services.key_rotation).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, and_, func, select, update
from sqlalchemy.orm import Session

from exchange.db import models as m
from keys.contractor_keys import ContractorPublicKey
from keys.datakeys import UNBOUND_FORMAT, WrappedKey
from keys.events import Clock
from keys.rotation import ContractorKeyRecord


class SqlWrappedKeyStore:
    """keys.rotation.WrappedKeyStore over `resident_data_keys`."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def batch_after(self, cursor: str | None, limit: int) -> Sequence[tuple[str, WrappedKey]]:
        query = select(m.ResidentDataKey.resident_id, m.ResidentDataKey.wrapped_key)
        if cursor is not None:
            query = query.where(m.ResidentDataKey.resident_id > cursor)
        rows = self._session.execute(query.order_by(m.ResidentDataKey.resident_id).limit(limit))
        return [(owner, WrappedKey.from_bytes(bytes(data))) for owner, data in rows]

    def replace(self, owner_id: str, old: WrappedKey, new: WrappedKey) -> bool:
        header = new.header
        result = self._session.execute(
            update(m.ResidentDataKey)
            .where(
                and_(
                    m.ResidentDataKey.resident_id == owner_id,
                    m.ResidentDataKey.wrapped_key == old.to_bytes(),
                )
            )
            .values(
                wrapped_key=new.to_bytes(), kek_id=header.kek_id, kek_version=header.kek_version
            )
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def count(self) -> int:
        return int(self._session.scalar(select(func.count()).select_from(m.ResidentDataKey)) or 0)

    def get(self, owner_id: str) -> WrappedKey | None:
        data = self._session.scalar(
            select(m.ResidentDataKey.wrapped_key).where(m.ResidentDataKey.resident_id == owner_id)
        )
        return None if data is None else WrappedKey.from_bytes(bytes(data))

    def unbound_count(self) -> int:
        """How many data keys are still wrapped in format 1, bound to no resident."""
        return int(self._session.scalar(
            select(func.count()).select_from(m.ResidentDataKey).where(unbound_wraps())) or 0)

    def counts_by_root(self) -> dict[tuple[str, int], int]:
        """How many data keys each root key version wraps (from the indexed header columns)."""
        rows = self._session.execute(
            select(m.ResidentDataKey.kek_id, m.ResidentDataKey.kek_version, func.count())
            .group_by(m.ResidentDataKey.kek_id, m.ResidentDataKey.kek_version)
            .order_by(m.ResidentDataKey.kek_id, m.ResidentDataKey.kek_version)
        )
        return {(kek_id, int(version)): int(n) for kek_id, version, n in rows}


class SqlAccountKeyStore:
    """keys.rotation.WrappedKeyStore over `console_accounts.data_key` (owner: principal id).

    Kept apart from residents' keys, whose job has a resumable cursor: there is one row per
    console user, so the root rotation re-wraps them all in its first transaction."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def batch_after(self, cursor: str | None, limit: int) -> Sequence[tuple[str, WrappedKey]]:
        query = select(m.ConsoleAccount.principal_id, m.ConsoleAccount.data_key).where(
            m.ConsoleAccount.data_key.is_not(None))
        if cursor is not None:
            query = query.where(m.ConsoleAccount.principal_id > cursor)
        rows = self._session.execute(query.order_by(m.ConsoleAccount.principal_id).limit(limit))
        return [(owner, WrappedKey.from_bytes(bytes(data))) for owner, data in rows
                if data is not None]

    def replace(self, owner_id: str, old: WrappedKey, new: WrappedKey) -> bool:
        result = self._session.execute(
            update(m.ConsoleAccount)
            .where(m.ConsoleAccount.principal_id == owner_id,
                   m.ConsoleAccount.data_key == old.to_bytes())
            .values(data_key=new.to_bytes())
            .execution_options(synchronize_session=False)
        )  # fmt: skip
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def count(self) -> int:
        return int(self._session.scalar(select(func.count()).select_from(m.ConsoleAccount)
                                        .where(m.ConsoleAccount.data_key.is_not(None))) or 0)


def unbound_wraps() -> ColumnElement[bool]:
    """Rows whose wrapped key is format 1 (its third byte), which the root re-wrap binds."""
    return func.substr(m.ResidentDataKey.wrapped_key, 3, 1) == bytes([UNBOUND_FORMAT])


class SqlCursorStore:
    """keys.rotation.CursorStore over `key_jobs`: a row exists while its job is unfinished."""

    def __init__(self, session: Session, clock: Clock) -> None:
        self._session = session
        self._clock = clock

    def job(self, job: str) -> m.KeyJob | None:
        return self._session.get(m.KeyJob, job)

    def begin(
        self, job: str, *, from_version: int | None = None, to_version: int | None = None
    ) -> m.KeyJob:
        """Mark `job` as started (idempotent); its cursor starts at the beginning."""
        row = self.job(job)
        if row is None:
            now = self._clock()
            row = m.KeyJob(job=job, cursor=None, from_version=from_version,
                           to_version=to_version, started_at=now, updated_at=now)  # fmt: skip
            self._session.add(row)
            self._session.flush()
        return row

    def load(self, job: str) -> str | None:
        row = self.job(job)
        return None if row is None else row.cursor

    def save(self, job: str, cursor: str | None) -> None:
        row = self.job(job)
        if cursor is None:  # the job is done
            if row is not None:
                self._session.delete(row)
                self._session.flush()
            return
        if row is None:
            row = self.begin(job)
        row.cursor = cursor
        row.updated_at = self._clock()
        self._session.flush()

    def finish(self, job: str) -> None:
        self.save(job, None)


class SqlContractorKeyStore:
    """keys.rotation.ContractorKeyStore over `contractor_keys` (at most one active per
    contractor, enforced by a partial unique index: retirements are flushed first)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def _rows(self, contractor_id: str) -> list[m.ContractorKey]:
        return list(
            self._session.scalars(
                select(m.ContractorKey)
                .where(m.ContractorKey.contractor_id == contractor_id)
                .order_by(m.ContractorKey.created_at, m.ContractorKey.id)
            )
        )

    def keys(self, contractor_id: str) -> Sequence[ContractorKeyRecord]:
        return tuple(
            ContractorKeyRecord(
                ContractorPublicKey.from_text(row.public_key), row.created_at, row.retired_at
            )
            for row in self._rows(contractor_id)
        )

    def put(self, contractor_id: str, keys: Sequence[ContractorKeyRecord]) -> None:
        rows = {row.key_id: row for row in self._rows(contractor_id)}
        for record in keys:
            row = rows.get(record.public_key.fingerprint.hex())
            if row is not None and record.retired_at is not None and row.status == "active":
                row.status, row.retired_at = "retired", record.retired_at
        self._session.flush()
        for record in keys:
            key_id = record.public_key.fingerprint.hex()
            if key_id in rows:
                continue
            self._session.add(
                m.ContractorKey(
                    contractor_id=contractor_id,
                    key_id=key_id,
                    kem_id=record.public_key.kem.wire_id,
                    public_key=record.public_key.to_text(),
                    status="retired" if record.retired_at is not None else "active",
                    created_at=record.registered_at,
                    retired_at=record.retired_at,
                )
            )
        self._session.flush()

    def active_count(self) -> int:
        return int(
            self._session.scalar(
                select(func.count())
                .select_from(m.ContractorKey)
                .where(m.ContractorKey.status == "active")
            )
            or 0
        )
