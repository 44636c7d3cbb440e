from __future__ import annotations

import pytest

from keys import (
    DecryptionError,
    FieldContext,
    InMemoryKeyEventSink,
    KeyEventType,
    KeyNotFoundError,
    Keyring,
    MemoryKeyProvider,
    Purpose,
    RotationError,
    WrappedKey,
    generate_keypair,
)
from keys.rotation import (
    ROOT_JOB,
    InMemoryContractorKeyStore,
    InMemoryCursorStore,
    InMemoryWrappedKeyStore,
    RotationProgress,
    case_reference_remap,
    current_contractor_key,
    retire_root_version,
    rewrap_all,
    rotate_contractor_key,
    rotate_data_key,
    rotate_pseudonym_key,
    start_root_rotation,
)

from .conftest import fixed_clock

CTX = FieldContext("residents", "phone", "r")


def _population(ring: Keyring, n: int) -> tuple[InMemoryWrappedKeyStore, dict[str, object]]:
    store = InMemoryWrappedKeyStore()
    values = {}
    for i in range(n):
        owner = f"res-{i:04d}"
        key, wrapped = ring.new_data_key(owner)
        store.rows[owner] = wrapped
        values[owner] = ring.encrypt_field(key, f"138{i:08d}", CTX)
    return store, values


def _all_readable(ring: Keyring, store: InMemoryWrappedKeyStore, values: dict[str, object]) -> None:
    ring.clear_cache()
    for i, (owner, wrapped) in enumerate(sorted(store.rows.items())):
        key = ring.unwrap(wrapped, owner)
        assert ring.decrypt_field(key, values[owner], CTX) == f"138{i:08d}"  # type: ignore[arg-type]


def test_root_rotation_online_with_progress(
    provider: MemoryKeyProvider, sink: InMemoryKeyEventSink
) -> None:
    ring = Keyring(provider)
    store, values = _population(ring, 23)
    assert start_root_rotation(provider, sink, fixed_clock) == 2
    # during the rotation both old and new wraps are readable, and new keys use the new root
    _, fresh = ring.new_data_key("res-9999")
    assert fresh.header.kek_version == 2
    store.rows["res-9999"] = fresh
    assert ring.unwrap(fresh, "res-9999").version == 1
    _all_readable(
        ring,
        InMemoryWrappedKeyStore(base for base in store.rows.items() if base[0] != "res-9999"),
        values,
    )
    seen: list[RotationProgress] = []
    result = rewrap_all(
        ring, store, InMemoryCursorStore(), sink, fixed_clock, batch_size=5, progress=seen.append
    )
    assert result.rewrapped == 23 and result.skipped == 1 and result.examined == 24
    assert [p.examined for p in seen] == [5, 10, 15, 20, 24] and seen[-1].fraction == 1.0
    assert all(w.header.kek_version == 2 for w in store.rows.values())
    del store.rows["res-9999"]
    _all_readable(ring, store, values)
    retire_root_version(provider, 1, ring, store, sink, fixed_clock)
    _all_readable(ring, store, values)
    types = [e.event for e in sink.events]
    assert types == [
        KeyEventType.ROOT_ROTATION_STARTED,
        KeyEventType.ROOT_ROTATION_COMPLETED,
        KeyEventType.ROOT_KEY_RETIRED,
    ]
    assert sink.events[1].detail == "rewrapped=23 skipped=1"


class _CrashingStore(InMemoryWrappedKeyStore):
    def __init__(self, rows: dict[str, WrappedKey], crash_after: int) -> None:
        super().__init__(rows.items())
        self.crash_after = crash_after
        self.replacements = 0

    def replace(self, owner_id: str, old: WrappedKey, new: WrappedKey) -> bool:
        if self.replacements == self.crash_after:
            raise RuntimeError("power cut")
        self.replacements += 1
        return super().replace(owner_id, old, new)


def test_root_rotation_resumes_after_a_crash(
    provider: MemoryKeyProvider, sink: InMemoryKeyEventSink
) -> None:
    ring = Keyring(provider)
    base, values = _population(ring, 20)
    start_root_rotation(provider, sink, fixed_clock)
    store = _CrashingStore(base.rows, crash_after=12)
    cursors = InMemoryCursorStore()
    with pytest.raises(RuntimeError):
        rewrap_all(ring, store, cursors, sink, fixed_clock, batch_size=5)
    assert cursors.load(ROOT_JOB) == "res-0009"  # two whole batches committed
    _all_readable(ring, store, values)  # mixed old/new wraps stay readable mid-rotation
    store.crash_after = -1
    result = rewrap_all(ring, store, cursors, sink, fixed_clock, batch_size=5)
    assert result.examined == 10  # resumed after the cursor rather than starting again
    assert result.rewrapped == 8 and result.skipped == 2  # two were rewrapped before the crash
    assert cursors.load(ROOT_JOB) is None
    assert all(w.header.kek_version == 2 for w in store.rows.values())
    _all_readable(ring, store, values)


def test_retiring_a_root_still_in_use_is_refused(
    provider: MemoryKeyProvider, sink: InMemoryKeyEventSink
) -> None:
    ring = Keyring(provider)
    store, _ = _population(ring, 3)
    start_root_rotation(provider, sink, fixed_clock)
    with pytest.raises(RotationError, match="root version 1"):
        retire_root_version(provider, 1, ring, store, sink, fixed_clock)
    assert provider.versions(Purpose.ROOT) == [1, 2]


def test_retired_root_no_longer_unwraps(
    provider: MemoryKeyProvider, sink: InMemoryKeyEventSink
) -> None:
    ring = Keyring(provider)
    _, wrapped = ring.new_data_key("resident-1")
    start_root_rotation(provider, sink, fixed_clock)
    retire_root_version(provider, 1, ring, InMemoryWrappedKeyStore(), sink, fixed_clock)
    with pytest.raises(KeyNotFoundError):
        ring.unwrap(wrapped, "resident-1")


def test_data_key_rotation_reencrypts_fields(keyring: Keyring, sink: InMemoryKeyEventSink) -> None:
    key, wrapped = keyring.new_data_key("resident-1")
    contexts = [FieldContext("residents", c, "r1") for c in ("name", "phone", "room")]
    values = [(ctx, keyring.encrypt_field(key, f"v-{ctx.column}", ctx)) for ctx in contexts]
    result = rotate_data_key(keyring, "resident-1", wrapped, values, sink, fixed_clock)
    new_key = keyring.unwrap(result.wrapped, "resident-1")
    assert new_key.version == 2 and new_key.key_id != key.key_id
    for (ctx, _), value in zip(values, result.values, strict=True):
        assert keyring.decrypt_field(new_key, value, ctx) == f"v-{ctx.column}"
        with pytest.raises(DecryptionError):
            keyring.decrypt_field(key, value, ctx)
    assert sink.events[-1].event is KeyEventType.DATA_KEY_ROTATED
    assert sink.events[-1].key_id == new_key.id_hex


def test_pseudonym_rotation_with_remap_export(
    provider: MemoryKeyProvider, sink: InMemoryKeyEventSink
) -> None:
    ring = Keyring(provider)
    residents = [f"res-{i}" for i in range(10)]
    old_refs = {ring.case_reference("agr-1", r) for r in residents}
    new_version = rotate_pseudonym_key(provider, sink, fixed_clock, keyring=ring)
    new_refs = {ring.case_reference("agr-1", r) for r in residents}
    assert old_refs.isdisjoint(new_refs)
    rows = case_reference_remap(ring, "agr-1", residents, 1, new_version, sink, fixed_clock)
    assert {r.old_case_reference for r in rows} == old_refs
    assert {r.new_case_reference for r in rows} == new_refs
    assert [r.old_case_reference for r in rows] == sorted(old_refs)
    assert not any(r in {row.old_case_reference, row.new_case_reference}
                   for row in rows for r in residents)
    assert [e.event for e in sink.events] == [
        KeyEventType.PSEUDONYM_KEY_ROTATED,
        KeyEventType.PSEUDONYM_REMAP_EXPORTED,
    ]


def test_contractor_key_rotation(sink: InMemoryKeyEventSink) -> None:
    store = InMemoryContractorKeyStore()
    _, first = generate_keypair()
    _, second = generate_keypair()
    with pytest.raises(RotationError):
        current_contractor_key(store, "c1")
    rotate_contractor_key(store, "c1", first, sink, fixed_clock)
    assert current_contractor_key(store, "c1") == first
    rotate_contractor_key(store, "c1", second, sink, fixed_clock)
    assert current_contractor_key(store, "c1") == second
    records = store.keys("c1")
    assert records[0].retired_at is not None and records[1].retired_at is None
    with pytest.raises(RotationError):
        rotate_contractor_key(store, "c1", first, sink, fixed_clock)
    assert [e.event for e in sink.events] == [
        KeyEventType.CONTRACTOR_KEY_REGISTERED,
        KeyEventType.CONTRACTOR_KEY_RETIRED,
        KeyEventType.CONTRACTOR_KEY_REGISTERED,
    ]
