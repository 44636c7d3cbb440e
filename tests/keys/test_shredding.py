"""Crypto-shredding: with the wrapped key gone, nothing decrypts, not even with the root key."""

from __future__ import annotations

import itertools

import pytest

from keys import (
    DecryptionError,
    FieldContext,
    InMemoryKeyEventSink,
    KeyEventType,
    Keyring,
    MemoryKeyProvider,
    Purpose,
    shred_data_key,
)
from keys.datakeys import DataKey
from keys.fields import decrypt

from .conftest import fixed_clock

CONTEXTS = [FieldContext("residents", c, "r-7") for c in ("name", "phone", "address_room")]


def test_shredded_resident_is_unreadable_with_every_key_we_hold(
    provider: MemoryKeyProvider, sink: InMemoryKeyEventSink
) -> None:
    ring = Keyring(provider)
    victim_key, victim_wrapped = ring.new_data_key("r-7")
    values = [ring.encrypt_field(victim_key, "李秀英 13812345678", ctx) for ctx in CONTEXTS]
    survivors = [ring.new_data_key(f"r-{i}") for i in range(5)]

    table = {"r-7": victim_wrapped} | {f"r-{i}": w for i, (_, w) in enumerate(survivors)}
    del table["r-7"]  # the exchange deletes the wrapped-key row
    event = shred_data_key(ring, victim_wrapped, sink, fixed_clock)
    victim_id, victim_version = victim_key.key_id, victim_key.version
    del victim_key, victim_wrapped

    assert event.event is KeyEventType.DATA_KEY_DESTROYED and event.key_id == victim_id.hex()
    assert sink.events == [event]
    # Every remaining wrapped key unwraps, and none of them opens the victim's fields.
    for owner, wrapped in table.items():
        key = ring.unwrap(wrapped, owner)
        for value, ctx in zip(values, CONTEXTS, strict=True):
            with pytest.raises(DecryptionError):
                ring.decrypt_field(key, value, ctx)
    # Nor does any key material the provider holds, used directly as the data key under the
    # victim's id and version (the best an attacker with the root key could try).
    materials = [
        provider.secret(purpose, version).material
        for purpose in Purpose
        for version in provider.versions(purpose)
    ]
    for material, (value, ctx) in itertools.product(materials, zip(values, CONTEXTS, strict=True)):
        forged = DataKey(victim_id, victim_version, ring.suite, material)
        with pytest.raises(DecryptionError):
            decrypt(forged, value, ctx)


def test_forget_drops_the_cached_key(keyring: Keyring, sink: InMemoryKeyEventSink) -> None:
    key, wrapped = keyring.new_data_key("resident-1")
    assert keyring.unwrap(wrapped, "resident-1") is keyring.unwrap(wrapped, "resident-1")  # cached
    cached = keyring.unwrap(wrapped, "resident-1")
    shred_data_key(keyring, wrapped, sink, fixed_clock)
    # a later unwrap had to use the wrapped bytes
    assert keyring.unwrap(wrapped, "resident-1") is not cached
    assert key.key_id == cached.key_id
