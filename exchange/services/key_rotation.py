"""Key custody operations of the running system (docs/keys.md §Rotation, §Operating rotations).

The pure steps are keys.rotation's; this module drives them over the database adapters
(exchange.services.key_store) and hands every key event to the audit log
(exchange.services.key_events) in the same transaction as the change it records.

* `rotate_root`: add a root version (or resume an unfinished rotation), re-wrap the console
  accounts' few data keys (their TOTP secrets) in that first transaction, then every resident's
  data key in batches; each batch and its cursor commit together, so a crash loses at most the
  batch in flight and a second run continues after the last committed one.
* `retire_root`: drop an old root version once no data key (resident's or account's) is
  wrapped under it.
* `rotate_resident_data_key`: re-encrypt one resident's fields under a fresh data key, in the
  caller's transaction.
* `export_pseudonym_remap`: rotate the case-pseudonym key (once) and produce an agreement's
  old -> new case-reference map; the rotation stays open until every agreement with cases has
  had its export.
* `rotate_contractor`: register a contractor's new public key and retire the old one.
* `rotate_blind_index`: add a blind-index key version and re-index every stored ID number
  and phone under it, batch by batch; the marker row (exchange.db.blind_index) tells every
  writer which version to index under and which to look up under meanwhile. Crash-safe: the
  start and the finish are one transaction each, a batch re-indexes only rows still under the
  old version, and a second run resumes.
* `reindex_phones`: index the phones of residents stored before migration 0011 (under the
  version their ID number is indexed under), batch by batch, resumable; one audit entry.

Keyring changes (a new or retired version) are written to the key file before the transaction
commits: if the commit then fails, an unused version remains, which is harmless.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from audit.entry import Actor, AuditEntry, Subject
from exchange.db import models as m
from exchange.db.blind_index import blind_index_versions
from exchange.db.engine import unit_of_work
from exchange.services.auditing import SqlAuditSink
from exchange.services.auditing import append as audit_append
from exchange.services.errors import Conflict, NotFound
from exchange.services.key_events import CLI_ACTOR, AuditKeyEventSink
from exchange.services.key_store import (
    SqlAccountKeyStore,
    SqlContractorKeyStore,
    SqlCursorStore,
    SqlWrappedKeyStore,
    unbound_wraps,
)
from keys.contractor_keys import ContractorPublicKey
from keys.datakeys import WrappedKey
from keys.errors import KeysError
from keys.events import Clock, KeyEvent, KeyEventType
from keys.fields import EncryptedValue, FieldContext
from keys.keyring import Keyring
from keys.providers import LocalKeyProvider, Purpose
from keys.pseudonyms import BlindIndexField
from keys.rotation import (
    ROOT_JOB,
    ContractorKeyRecord,
    RemapRow,
    RotationProgress,
    case_reference_remap,
    retire_root_version,
    rewrap_all,
    rotate_contractor_key,
    rotate_data_key,
    rotate_pseudonym_key,
    start_root_rotation,
)

PSEUDONYM_JOB = "pseudonym-remap"
MAX_ACCOUNTS = 100_000  # console users: people at one office, read in one query
DEFAULT_BATCH = 500

RESIDENT_COLUMNS = ("name", "national_id", "phone", "birth_date", "address_compound",
                    "address_building", "address_unit", "address_room")  # fmt: skip
EPISODE_COLUMNS = ("due_date", "delivery_date", "parity", "risk_flags")
CHILD_COLUMNS = ("birth_date", "sex")


def local_provider(keyring: Keyring) -> LocalKeyProvider:
    """Rotation adds and retires versions, which only an in-process (file) keyring can do."""
    provider = keyring.provider
    if not isinstance(provider, LocalKeyProvider):
        raise Conflict("this key provider manages its own versions; rotate it in the HSM/KMS")
    return provider


# -- root key -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RootRotation:
    version: int  # the root version every data key is now wrapped under
    resumed: bool
    progress: RotationProgress


def root_rotation_pending(session: Session, keyring: Keyring) -> bool:
    """An unfinished rotation: a saved job, or data keys not yet under the current root, or
    still in format 1 (bound to no resident: the re-wrap binds them)."""
    if session.get(m.KeyJob, ROOT_JOB) is not None:
        return True
    root = keyring.current_root()
    stale = select(m.ResidentDataKey.resident_id).where(
        or_(m.ResidentDataKey.kek_id != root.key_id, m.ResidentDataKey.kek_version != root.version,
            unbound_wraps())
    )
    if session.scalar(select(exists(stale))):
        return True
    accounts = SqlAccountKeyStore(session).batch_after(None, MAX_ACCOUNTS)
    return any(keyring.needs_rewrap(wrapped) for _owner, wrapped in accounts)


def _rewrap_accounts(session: Session, keyring: Keyring) -> int:
    """Re-wrap every console account's data key under the current root (few rows, one go)."""
    store = SqlAccountKeyStore(session)
    done = 0
    for owner, wrapped in store.batch_after(None, MAX_ACCOUNTS):
        if keyring.needs_rewrap(wrapped) and store.replace(
                owner, wrapped, keyring.rewrap(wrapped, owner)):  # fmt: skip
            keyring.forget(wrapped)
            done += 1
    return done


def rotate_root(
    factory: sessionmaker[Session],
    keyring: Keyring,
    clock: Clock,
    *,
    actor: Actor = CLI_ACTOR,
    batch_size: int = DEFAULT_BATCH,
    on_start: Callable[[int, bool, int], None] | None = None,
    progress: Callable[[RotationProgress], None] | None = None,
) -> RootRotation:
    """Start (or resume) a root rotation and re-wrap every data key online.

    `on_start(version, resumed, total)` is called once the rotation is recorded; `progress`
    after each committed batch. Any exception leaves the committed batches in place."""
    provider = local_provider(keyring)
    with unit_of_work(factory) as session:
        resumed = root_rotation_pending(session, keyring)
        previous = provider.current_version(Purpose.ROOT)
        if not resumed:
            start_root_rotation(provider, AuditKeyEventSink(session, actor), clock)
        _rewrap_accounts(session, keyring)
        version = provider.current_version(Purpose.ROOT)
        SqlCursorStore(session, clock).begin(
            ROOT_JOB, from_version=None if resumed else previous, to_version=version
        )
        total = SqlWrappedKeyStore(session).count()
    if on_start is not None:
        on_start(version, resumed, total)

    session = factory()
    try:

        def committed(state: RotationProgress) -> None:
            session.commit()  # this batch and its cursor, together
            if progress is not None:
                progress(state)

        result = rewrap_all(
            keyring,
            SqlWrappedKeyStore(session),
            SqlCursorStore(session, clock),
            AuditKeyEventSink(session, actor),
            clock,
            batch_size=batch_size,
            progress=committed,
        )
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
    return RootRotation(version, resumed, result)


def retire_root(
    session: Session, keyring: Keyring, version: int, clock: Clock, *, actor: Actor = CLI_ACTOR
) -> None:
    """Delete root `version` from the keyring; refused while any data key still names it."""
    provider = local_provider(keyring)
    if session.get(m.KeyJob, ROOT_JOB) is not None:
        raise Conflict("a root rotation is unfinished; run `exchange keys rotate-root` first")
    accounts = SqlAccountKeyStore(session).batch_after(None, MAX_ACCOUNTS)
    if any(wrapped.header.kek_version == version for _owner, wrapped in accounts):
        raise Conflict(f"console accounts' keys are still wrapped under root version {version}; "
                       "run `exchange keys rotate-root` first")
    retire_root_version(
        provider, version, keyring, SqlWrappedKeyStore(session),
        AuditKeyEventSink(session, actor), clock,
    )  # fmt: skip


# -- data key -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DataKeyRotated:
    resident_id: str
    data_key_version: int
    fields: int  # how many ciphertexts were re-encrypted


def _encrypted_fields(session: Session, resident: m.Resident) -> list[tuple[Any, str, str]]:
    """(row, column, table) of every ciphertext under the resident's data key."""
    out: list[tuple[Any, str, str]] = [(resident, c, "residents") for c in RESIDENT_COLUMNS]
    for episode in session.scalars(
        select(m.MaternalEpisode).where(m.MaternalEpisode.resident_id == resident.id)
    ):
        out += [(episode, c, "maternal_episodes") for c in EPISODE_COLUMNS]
    for child in session.scalars(select(m.Child).where(m.Child.resident_id == resident.id)):
        out += [(child, c, "children") for c in CHILD_COLUMNS]
    for record in session.scalars(
        select(m.ServiceRecord).join(m.Assignment, m.Assignment.id == m.ServiceRecord.assignment_id)
        .where(m.Assignment.resident_id == resident.id)
    ):  # fmt: skip
        out.append((record, "notes", "service_records"))
    return [(row, column, table) for row, column, table in out if getattr(row, column) is not None]


def rotate_resident_data_key(
    session: Session, keyring: Keyring, resident_id: str, clock: Clock, *,
    actor: Actor = CLI_ACTOR,
) -> DataKeyRotated:  # fmt: skip
    """Re-encrypt every field of one resident under a fresh data key, in this transaction."""
    resident = session.get(m.Resident, resident_id) if len(resident_id) <= 36 else None
    if resident is None:
        raise NotFound("no such resident")
    if resident.erased_at is not None:
        raise Conflict("the resident is erased; her data key was destroyed")
    key_row = session.get(m.ResidentDataKey, resident.id, with_for_update=True)
    if key_row is None:
        raise Conflict("the resident has no data key")
    targets = _encrypted_fields(session, resident)
    wrapped = WrappedKey.from_bytes(bytes(key_row.wrapped_key))
    values: list[tuple[FieldContext, EncryptedValue]] = [
        (FieldContext(table, column, row.id), getattr(row, column))
        for row, column, table in targets
    ]
    sink = AuditKeyEventSink(
        session, actor, subjects=[Subject(keyring.audit_pseudonym(resident.id))]
    )
    rotated = rotate_data_key(keyring, resident.id, wrapped, values, sink, clock)
    for (row, column, _table), value in zip(targets, rotated.values, strict=True):
        setattr(row, column, value)
    header = rotated.wrapped.header
    key_row.wrapped_key = rotated.wrapped.to_bytes()
    key_row.kek_id, key_row.kek_version = header.kek_id, header.kek_version
    session.flush()
    return DataKeyRotated(resident.id, header.data_key_version, len(targets))


# -- pseudonym key --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RemapExport:
    agreement_id: str
    from_version: int
    to_version: int
    started: bool  # this call added the new pseudonym version
    rows: tuple[RemapRow, ...]
    awaiting: tuple[str, ...]  # agreement ids still needing their export (empty: rotation done)


def _agreements_with_cases(session: Session) -> list[str]:
    active = select(m.Assignment.agreement_id).where(m.Assignment.status == "active")
    pending = select(m.Tombstone.agreement_id).where(m.Tombstone.acknowledged_at.is_(None))
    return sorted(set(session.scalars(active)) | set(session.scalars(pending)))


def awaiting_remap(session: Session, to_version: int) -> list[str]:
    done = set(session.scalars(
        select(m.PseudonymRemap.agreement_id).where(m.PseudonymRemap.to_version == to_version)
    ))  # fmt: skip
    return [a for a in _agreements_with_cases(session) if a not in done]


def _remap_residents(
    session: Session, keyring: Keyring, agreement_id: str, old_version: int
) -> list[str]:
    """Residents whose case the contractor holds: active assignments, and revoked ones whose
    tombstone (under the old reference) it has not acknowledged yet."""
    rows = session.execute(
        select(m.Assignment.resident_id, m.Assignment.status)
        .where(m.Assignment.agreement_id == agreement_id)
    ).all()  # fmt: skip
    active = {rid for rid, status in rows if status == "active"}
    pending = set(session.scalars(
        select(m.Tombstone.case_reference).where(m.Tombstone.agreement_id == agreement_id,
                                                 m.Tombstone.acknowledged_at.is_(None))
    ))  # fmt: skip
    if pending:
        for rid in {rid for rid, status in rows if status != "active"} - active:
            if keyring.case_reference(agreement_id, rid, old_version) in pending:
                active.add(rid)
    return sorted(active)


def export_pseudonym_remap(
    session: Session, keyring: Keyring, agreement_id: str, clock: Clock, *,
    actor: Actor = CLI_ACTOR,
) -> RemapExport:  # fmt: skip
    """The re-mapping of one agreement's case references to the new pseudonym version.

    The first call of a rotation adds the version; later calls (other agreements, or the same
    one again) reuse it. Unacknowledged tombstones of the agreement are re-keyed too, so a
    deletion instruction still reaches the contractor under the reference it will hold."""
    agreement = session.get(m.Agreement, agreement_id) if len(agreement_id) <= 36 else None
    if agreement is None:
        raise NotFound("no such agreement")
    provider = local_provider(keyring)
    cursors = SqlCursorStore(session, clock)
    job = cursors.job(PSEUDONYM_JOB)
    started = job is None
    if job is None:
        current = provider.current_version(Purpose.CASE_PSEUDONYM)
        added = rotate_pseudonym_key(provider, AuditKeyEventSink(session, actor), clock, keyring)
        job = cursors.begin(PSEUDONYM_JOB, from_version=current, to_version=added)
    old, new = job.from_version, job.to_version
    if old is None or new is None or provider.current_version(Purpose.CASE_PSEUDONYM) != new:
        raise Conflict("the keyring does not match the unfinished pseudonym rotation")
    residents = _remap_residents(session, keyring, agreement.id, old)
    sink = AuditKeyEventSink(session, actor, agreement=agreement.id)
    rows = case_reference_remap(keyring, agreement.id, residents, old, new, sink, clock)
    for row in rows:
        session.execute(
            update(m.Tombstone)
            .where(m.Tombstone.agreement_id == agreement.id,
                   m.Tombstone.case_reference == row.old_case_reference,
                   m.Tombstone.acknowledged_at.is_(None))
            .values(case_reference=row.new_case_reference)
            .execution_options(synchronize_session=False)
        )  # fmt: skip
    session.merge(m.PseudonymRemap(agreement_id=agreement.id, to_version=new, from_version=old,
                                   row_count=len(rows), exported_at=clock()))  # fmt: skip
    session.flush()
    awaiting = awaiting_remap(session, new)
    if not awaiting:
        cursors.finish(PSEUDONYM_JOB)
    return RemapExport(agreement.id, old, new, started, tuple(rows), tuple(awaiting))


# -- contractor key -------------------------------------------------------------------------
def rotate_contractor(
    session: Session, contractor_id: str, public_key: ContractorPublicKey, clock: Clock, *,
    actor: Actor = CLI_ACTOR,
) -> ContractorKeyRecord:  # fmt: skip
    contractor = session.get(m.Contractor, contractor_id) if len(contractor_id) <= 36 else None
    if contractor is None:
        raise NotFound("no such contractor")
    if session.scalar(select(m.ContractorKey.id).where(
            m.ContractorKey.key_id == public_key.fingerprint.hex())):  # fmt: skip
        raise Conflict("this public key is already registered")
    return rotate_contractor_key(SqlContractorKeyStore(session), contractor.id, public_key,
                                 AuditKeyEventSink(session, actor), clock)  # fmt: skip


# -- blind index ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BlindIndexRotation:
    from_version: int
    to_version: int
    resumed: bool
    reindexed: int  # rows this run moved to `to_version`


def _still_under(version: int) -> Any:
    """Residents whose stored index is still under `version`."""
    return (m.Resident.national_id_index_version == version) & (
        m.Resident.national_id_index.is_not(None))


def _count_under(session: Session, version: int) -> int:
    return int(session.scalar(select(func.count()).select_from(m.Resident)
                              .where(_still_under(version))) or 0)  # fmt: skip


def _begin_blind_index(session: Session, keyring: Keyring, clock: Clock,
                       actor: Actor) -> tuple[int, int, bool]:  # fmt: skip
    """(old, new, resumed), with the rotation recorded in the marker. FOR UPDATE: waits for
    every import or registration that holds the marker to commit."""
    provider = local_provider(keyring)
    marker = session.get_one(m.BlindIndexMarker, 1, with_for_update=True)
    if marker.next_version is not None:
        if marker.next_version not in provider.versions(Purpose.BLIND_INDEX):
            raise Conflict(f"the keyring lacks blind-index version {marker.next_version}, which "
                           "the unfinished rotation moves to; restore that keyring")
        return marker.version, marker.next_version, True
    new = provider.add_version(Purpose.BLIND_INDEX)  # in the key file before the commit
    marker.next_version = new
    AuditKeyEventSink(session, actor).record(KeyEvent(
        KeyEventType.BLIND_INDEX_ROTATION_STARTED, Purpose.BLIND_INDEX.value, new, clock()))
    session.flush()
    return marker.version, new, False


def _reindex_batch(session: Session, keyring: Keyring, old: int, new: int, limit: int) -> int:
    """Re-index up to `limit` residents still under `old` (both blind indexes: the ID
    number's and the phone's); how many it did."""
    rows = session.execute(
        select(m.Resident.id, m.Resident.national_id, m.Resident.phone,
               m.ResidentDataKey.wrapped_key)
        .join(m.ResidentDataKey, m.ResidentDataKey.resident_id == m.Resident.id)
        .where(_still_under(old)).order_by(m.Resident.id).limit(limit)
    ).all()  # fmt: skip
    for rid, stored, stored_phone, wrapped in rows:
        national_id, phone = _identifiers(keyring, rid, stored, stored_phone, bytes(wrapped))
        session.execute(
            update(m.Resident)
            .where(m.Resident.id == rid, m.Resident.national_id_index_version == old)
            .values(national_id_index=keyring.blind_index(national_id, version=new),
                    phone_index=_phone_index(keyring, phone, new),
                    national_id_index_version=new)
            .execution_options(synchronize_session=False)
        )  # fmt: skip
    return len(rows)


def _phone_index(keyring: Keyring, phone: str | None, version: int) -> str | None:
    if phone is None:
        return None
    return keyring.blind_index(phone, version=version, field=BlindIndexField.PHONE)


def _identifiers(keyring: Keyring, rid: str, stored: EncryptedValue | None,
                 stored_phone: EncryptedValue | None,
                 wrapped: bytes) -> tuple[str, str | None]:  # fmt: skip
    """Her ID number and phone (None: none stored), decrypted to be indexed."""
    try:
        if stored is None:
            raise KeysError("no ID number")
        key = keyring.unwrap_stored(wrapped, rid)
        sealed = {"national_id": stored}
        if stored_phone is not None:
            sealed["phone"] = stored_phone
        values = keyring.decrypt_row(key, "residents", rid, sealed)
        return values["national_id"], values.get("phone")
    except KeysError:
        raise Conflict(f"resident {rid}: her ID number or phone does not decrypt, so it "
                       "cannot be re-indexed; the rotation stopped here with nothing lost "
                       "(erase or repair her record, then run it again)") from None


def rotate_blind_index(
    factory: sessionmaker[Session],
    keyring: Keyring,
    clock: Clock,
    *,
    actor: Actor = CLI_ACTOR,
    batch_size: int = DEFAULT_BATCH,
    on_start: Callable[[int, int, bool, int], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> BlindIndexRotation:
    """Start (or resume) a blind-index rotation and re-index every stored ID number.

    `on_start(old, new, resumed, left)` once the rotation is recorded; `progress(done)` after
    each committed batch. Any exception leaves the committed batches in place; run it again."""
    with unit_of_work(factory) as session:
        old, new, resumed = _begin_blind_index(session, keyring, clock, actor)
        left = _count_under(session, old)
    if on_start is not None:
        on_start(old, new, resumed, left)
    done = 0
    while True:
        with unit_of_work(factory) as session:  # each batch commits on its own
            count = _reindex_batch(session, keyring, old, new, batch_size)
        if not count:
            break
        done += count
        if progress is not None:
            progress(done)
    with unit_of_work(factory) as session:
        marker = session.get_one(m.BlindIndexMarker, 1, with_for_update=True)
        stale = _count_under(session, old)
        if marker.next_version != new or stale:  # cannot happen while writers hold the marker
            raise Conflict(f"{stale} residents are still indexed under blind-index version "
                           f"{old}; run `exchange keys rotate-blind-index` again")
        marker.version, marker.next_version = new, None
        AuditKeyEventSink(session, actor).record(KeyEvent(
            KeyEventType.BLIND_INDEX_ROTATION_COMPLETED, Purpose.BLIND_INDEX.value, new, clock()))
    provider = local_provider(keyring)
    if old in provider.versions(Purpose.BLIND_INDEX):  # nothing is indexed under it any more
        provider.retire_version(Purpose.BLIND_INDEX, old)
    return BlindIndexRotation(old, new, resumed, done)


# -- phones stored before the phone index -------------------------------------------------
PHONES_ACTION = "key.reindex_phones"


def _unindexed_phone() -> Any:
    """Residents with a phone and no phone index (stored before migration 0011)."""
    return m.Resident.phone.is_not(None) & m.Resident.phone_index.is_(None)


def unindexed_phones(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(m.Resident)
                              .where(_unindexed_phone())) or 0)  # fmt: skip


def _index_phones_batch(session: Session, keyring: Keyring, limit: int) -> int:
    """Index up to `limit` phones (each under the version her ID number is indexed under, so
    the row's one version marker stays true); how many it did. Holds the blind-index marker
    (FOR SHARE), so a rotation can neither start nor finish under the batch."""
    blind_index_versions(session)
    rows = session.execute(
        select(m.Resident.id, m.Resident.phone, m.Resident.national_id_index_version,
               m.ResidentDataKey.wrapped_key)
        .join(m.ResidentDataKey, m.ResidentDataKey.resident_id == m.Resident.id)
        .where(_unindexed_phone()).order_by(m.Resident.id).limit(limit)
    ).all()  # fmt: skip
    for rid, stored, version, wrapped in rows:
        assert stored is not None  # selected for it
        try:
            key = keyring.unwrap_stored(bytes(wrapped), rid)
            phone = keyring.decrypt_row(key, "residents", rid, {"phone": stored})["phone"]
        except KeysError:
            raise Conflict(f"resident {rid}: her phone does not decrypt, so it cannot be "
                           "indexed; stopped here with nothing lost (erase or repair her "
                           "record, then run it again)") from None
        session.execute(
            update(m.Resident)
            .where(m.Resident.id == rid, m.Resident.phone_index.is_(None),
                   m.Resident.national_id_index_version == version)
            .values(phone_index=_phone_index(keyring, phone, version))
            .execution_options(synchronize_session=False)
        )  # fmt: skip
    return len(rows)


def reindex_phones(
    factory: sessionmaker[Session],
    keyring: Keyring,
    clock: Clock,
    *,
    actor: Actor = CLI_ACTOR,
    batch_size: int = DEFAULT_BATCH,
    on_start: Callable[[int], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Index the phone of every resident stored before the phone index existed; how many
    this run indexed. Each batch commits on its own, so an interruption loses at most the
    batch in flight and a second run continues (it only touches rows still without an
    index). Until a row is indexed, the phone lookup decrypts it (`resident_ledger`).
    `on_start(left)` once counted, `progress(done)` after each committed batch."""
    with factory() as session:
        left = unindexed_phones(session)
    if on_start is not None:
        on_start(left)
    done = 0
    while True:
        with unit_of_work(factory) as session:
            count = _index_phones_batch(session, keyring, batch_size)
        if not count:
            break
        done += count
        if progress is not None:
            progress(done)
    with unit_of_work(factory) as session:
        audit_append(session, SqlAuditSink(), [AuditEntry(
            time=clock(), actor=actor, action=PHONES_ACTION, details={"residents": done})])
    return done


# -- status ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class KeyStatus:
    purposes: dict[str, tuple[int, tuple[int, ...]]]  # purpose -> (current, versions held)
    data_keys_by_root: dict[tuple[str, int], int]
    unbound_data_keys: int  # format 1: not bound to their resident until re-wrapped
    root_job: m.KeyJob | None
    pseudonym_job: m.KeyJob | None
    awaiting_remap: tuple[str, ...]
    active_contractor_keys: int
    blind_index: tuple[int, int | None, int]  # (stored under, rotating to, residents left)
    unindexed_phones: int = 0  # residents with a phone and no phone index yet


def status(session: Session, keyring: Keyring) -> KeyStatus:
    provider = local_provider(keyring)
    purposes = {p.value: (provider.current_version(p), tuple(provider.versions(p)))
                for p in Purpose}  # fmt: skip
    pseudonym_job = session.get(m.KeyJob, PSEUDONYM_JOB)
    awaiting: Sequence[str] = ()
    if pseudonym_job is not None and pseudonym_job.to_version is not None:
        awaiting = awaiting_remap(session, pseudonym_job.to_version)
    return KeyStatus(
        purposes,
        SqlWrappedKeyStore(session).counts_by_root(),
        SqlWrappedKeyStore(session).unbound_count(),
        session.get(m.KeyJob, ROOT_JOB),
        pseudonym_job,
        tuple(awaiting),
        SqlContractorKeyStore(session).active_count(),
        _blind_index_state(session),
        unindexed_phones(session),
    )


def _blind_index_state(session: Session) -> tuple[int, int | None, int]:
    marker = session.get_one(m.BlindIndexMarker, 1)
    left = 0 if marker.next_version is None else _count_under(session, marker.version)
    return marker.version, marker.next_version, left
