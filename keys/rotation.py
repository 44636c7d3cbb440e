"""Key rotation as pure logic over small ports, each with an in-memory twin.

* Root key: add a new root version (old stays readable), then `rewrap_all` re-wraps every data
  key online in batches, saving a cursor after each batch so a crash resumes where it stopped;
  re-wrapping is idempotent (keys already under the current root and bound to their owner are
  skipped; a format-1 key, bound to nothing, is re-wrapped as format 2 even under the current
  root).
* Data key: `rotate_data_key` re-encrypts one resident's fields under a fresh data key.
* Pseudonym key: `rotate_pseudonym_key` then `case_reference_remap` for the contractor.
* Contractor key: `rotate_contractor_key` registers a new public key and retires the old one.
Every step hands a KeyEvent (no secrets) to the KeyEventSink.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from keys.contractor_keys import ContractorPublicKey
from keys.datakeys import WrappedKey
from keys.errors import RotationError
from keys.events import Clock, KeyEvent, KeyEventSink, KeyEventType
from keys.fields import EncryptedValue, FieldContext
from keys.keyring import Keyring
from keys.providers import LocalKeyProvider, Purpose
from keys.pseudonyms import case_reference

ROOT_JOB = "root-rewrap"


# -- ports ----------------------------------------------------------------------------------
class WrappedKeyStore(Protocol):
    """Wrapped data keys by owner (resident) id, read in owner-id order."""

    def batch_after(self, cursor: str | None, limit: int) -> Sequence[tuple[str, WrappedKey]]:
        """Up to `limit` (owner id, key) pairs with owner id > cursor, ascending."""
        ...

    def replace(self, owner_id: str, old: WrappedKey, new: WrappedKey) -> bool:
        """Compare-and-swap; False if the row changed or vanished (e.g. erased) meanwhile."""
        ...

    def count(self) -> int: ...


class CursorStore(Protocol):
    def load(self, job: str) -> str | None: ...

    def save(self, job: str, cursor: str | None) -> None: ...


class InMemoryWrappedKeyStore:
    def __init__(self, rows: Iterable[tuple[str, WrappedKey]] = ()) -> None:
        self.rows: dict[str, WrappedKey] = dict(rows)

    def batch_after(self, cursor: str | None, limit: int) -> Sequence[tuple[str, WrappedKey]]:
        owners = sorted(o for o in self.rows if cursor is None or o > cursor)[:limit]
        return [(o, self.rows[o]) for o in owners]

    def replace(self, owner_id: str, old: WrappedKey, new: WrappedKey) -> bool:
        if self.rows.get(owner_id) != old:
            return False
        self.rows[owner_id] = new
        return True

    def count(self) -> int:
        return len(self.rows)


class InMemoryCursorStore:
    def __init__(self) -> None:
        self.cursors: dict[str, str | None] = {}

    def load(self, job: str) -> str | None:
        return self.cursors.get(job)

    def save(self, job: str, cursor: str | None) -> None:
        self.cursors[job] = cursor


# -- root key ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RotationProgress:
    examined: int
    rewrapped: int
    skipped: int  # already under the current root, or changed meanwhile
    total: int
    cursor: str | None

    @property
    def fraction(self) -> float:
        return 1.0 if self.total == 0 else min(1.0, self.examined / self.total)


def start_root_rotation(provider: LocalKeyProvider, sink: KeyEventSink, clock: Clock) -> int:
    """Add a new root version; wraps now use it, unwraps accept both until rewrap finishes."""
    version = provider.add_version(Purpose.ROOT)
    sink.record(KeyEvent(KeyEventType.ROOT_ROTATION_STARTED, Purpose.ROOT.value, version, clock()))
    return version


def rewrap_all(
    keyring: Keyring,
    store: WrappedKeyStore,
    cursors: CursorStore,
    sink: KeyEventSink,
    clock: Clock,
    *,
    batch_size: int = 500,
    progress: Callable[[RotationProgress], None] | None = None,
) -> RotationProgress:
    """Re-wrap every data key under the current root key; resumable from the saved cursor."""
    if batch_size < 1:
        raise RotationError("batch size must be positive")
    root = keyring.current_root()
    state = RotationProgress(0, 0, 0, store.count(), cursors.load(ROOT_JOB))
    while True:
        batch = store.batch_after(state.cursor, batch_size)
        if not batch:
            break
        rewrapped = skipped = 0
        for owner_id, wrapped in batch:
            if keyring.needs_rewrap(wrapped) and store.replace(
                owner_id, wrapped, keyring.rewrap(wrapped, owner_id)
            ):
                keyring.forget(wrapped)
                rewrapped += 1
            else:
                skipped += 1
        state = replace(
            state,
            examined=state.examined + len(batch),
            rewrapped=state.rewrapped + rewrapped,
            skipped=state.skipped + skipped,
            cursor=batch[-1][0],
        )
        cursors.save(ROOT_JOB, state.cursor)
        if progress is not None:
            progress(state)
    cursors.save(ROOT_JOB, None)
    detail = f"rewrapped={state.rewrapped} skipped={state.skipped}"
    sink.record(
        KeyEvent(KeyEventType.ROOT_ROTATION_COMPLETED, root.key_id, root.version, clock(), detail)
    )
    return state


def retire_root_version(
    provider: LocalKeyProvider,
    version: int,
    keyring: Keyring,
    store: WrappedKeyStore,
    sink: KeyEventSink,
    clock: Clock,
) -> None:
    """Delete an old root version, refusing while any data key is still wrapped under it."""
    cursor: str | None = None
    while batch := store.batch_after(cursor, 1000):
        for _owner, wrapped in batch:
            if wrapped.header.kek_version == version:
                raise RotationError(f"data keys are still wrapped under root version {version}")
        cursor = batch[-1][0]
    provider.retire_version(Purpose.ROOT, version)
    keyring.clear_cache()
    sink.record(KeyEvent(KeyEventType.ROOT_KEY_RETIRED, Purpose.ROOT.value, version, clock()))


# -- data key -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DataKeyRotation:
    wrapped: WrappedKey
    values: tuple[EncryptedValue, ...]


def rotate_data_key(
    keyring: Keyring,
    owner: str,
    wrapped: WrappedKey,
    fields: Sequence[tuple[FieldContext, EncryptedValue]],
    sink: KeyEventSink,
    clock: Clock,
) -> DataKeyRotation:
    """Re-encrypt one resident's (`owner`'s) fields under a fresh data key (next version,
    current suite, bound to her)."""
    old = keyring.unwrap(wrapped, owner)
    new, new_wrapped = keyring.new_data_key(owner, version=old.version + 1)
    values = tuple(
        keyring.encrypt_field(new, keyring.decrypt_field(old, value, ctx), ctx)
        for ctx, value in fields
    )
    keyring.forget(wrapped)
    sink.record(KeyEvent(KeyEventType.DATA_KEY_ROTATED, new.id_hex, new.version, clock()))
    return DataKeyRotation(new_wrapped, values)


# -- pseudonym key --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RemapRow:
    old_case_reference: str
    new_case_reference: str


def rotate_pseudonym_key(
    provider: LocalKeyProvider, sink: KeyEventSink, clock: Clock, keyring: Keyring | None = None
) -> int:
    """New case-pseudonym version. Do this only together with a remap export per agreement.

    `keyring`, if given, is refreshed so it uses the new version at once."""
    version = provider.add_version(Purpose.CASE_PSEUDONYM)
    if keyring is not None:
        keyring.refresh()
    sink.record(
        KeyEvent(KeyEventType.PSEUDONYM_KEY_ROTATED, Purpose.CASE_PSEUDONYM.value, version, clock())
    )
    return version


def case_reference_remap(
    keyring: Keyring,
    agreement_id: str,
    resident_ids: Iterable[str],
    old_version: int,
    new_version: int,
    sink: KeyEventSink,
    clock: Clock,
) -> list[RemapRow]:
    """Old → new case reference for every resident of one agreement, sorted by old reference
    so the file reveals nothing of the office's resident order."""
    old_key = keyring.case_key(agreement_id, old_version)
    new_key = keyring.case_key(agreement_id, new_version)
    rows = sorted(
        (
            RemapRow(case_reference(old_key, rid), case_reference(new_key, rid))
            for rid in resident_ids
        ),
        key=lambda row: row.old_case_reference,
    )
    sink.record(
        KeyEvent(
            KeyEventType.PSEUDONYM_REMAP_EXPORTED,
            Purpose.CASE_PSEUDONYM.value,
            new_version,
            clock(),
            f"agreement={agreement_id} rows={len(rows)}",
        )
    )
    return rows


# -- contractor key -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ContractorKeyRecord:
    public_key: ContractorPublicKey
    registered_at: datetime
    retired_at: datetime | None = None


class ContractorKeyStore(Protocol):
    def keys(self, contractor_id: str) -> Sequence[ContractorKeyRecord]: ...

    def put(self, contractor_id: str, keys: Sequence[ContractorKeyRecord]) -> None: ...


class InMemoryContractorKeyStore:
    def __init__(self) -> None:
        self.by_contractor: dict[str, list[ContractorKeyRecord]] = {}

    def keys(self, contractor_id: str) -> Sequence[ContractorKeyRecord]:
        return tuple(self.by_contractor.get(contractor_id, ()))

    def put(self, contractor_id: str, keys: Sequence[ContractorKeyRecord]) -> None:
        self.by_contractor[contractor_id] = list(keys)


def current_contractor_key(store: ContractorKeyStore, contractor_id: str) -> ContractorPublicKey:
    active = [r for r in store.keys(contractor_id) if r.retired_at is None]
    if not active:
        raise RotationError(f"contractor {contractor_id} has no active public key")
    return active[-1].public_key


def rotate_contractor_key(
    store: ContractorKeyStore,
    contractor_id: str,
    new_key: ContractorPublicKey,
    sink: KeyEventSink,
    clock: Clock,
) -> ContractorKeyRecord:
    """Register `new_key`; sealing uses it from now on and every older key is retired.

    The contractor keeps its old private keys until it has opened what was sealed to them."""
    now = clock()
    records = list(store.keys(contractor_id))
    if any(r.public_key.fingerprint == new_key.fingerprint for r in records):
        raise RotationError("this public key was already registered for the contractor")
    updated = []
    for record in records:
        if record.retired_at is None:
            record = replace(record, retired_at=now)
            fp = record.public_key.fingerprint.hex()
            sink.record(KeyEvent(KeyEventType.CONTRACTOR_KEY_RETIRED, fp, 1, now, contractor_id))
        updated.append(record)
    new_record = ContractorKeyRecord(new_key, now)
    store.put(contractor_id, [*updated, new_record])
    sink.record(
        KeyEvent(
            KeyEventType.CONTRACTOR_KEY_REGISTERED, new_key.fingerprint.hex(), 1, now, contractor_id
        )
    )
    return new_record
