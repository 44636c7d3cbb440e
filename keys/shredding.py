"""Crypto-shredding: erasing a resident destroys their data key.

The exchange deletes the wrapped-key row (SQLite with secure_delete) in the erasure
transaction; without those bytes the root key opens nothing, and every field ciphertext was
encrypted under that data key alone. Here we also drop the unwrapped key from memory and hand
the event to the audit log.
"""

from __future__ import annotations

from keys.datakeys import WrappedKey
from keys.events import Clock, KeyEvent, KeyEventSink, KeyEventType
from keys.keyring import Keyring


def shred_data_key(
    keyring: Keyring, wrapped: WrappedKey, sink: KeyEventSink, clock: Clock
) -> KeyEvent:
    header = wrapped.header
    keyring.forget(wrapped)
    event = KeyEvent(
        KeyEventType.DATA_KEY_DESTROYED, header.data_key_id.hex(), header.data_key_version, clock()
    )
    sink.record(event)
    return event
