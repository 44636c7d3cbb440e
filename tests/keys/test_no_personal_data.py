"""Decryption failures are opaque and logged without values (invariant 7)."""

from __future__ import annotations

import pytest
import structlog

from keys import (
    DecryptionError,
    EncryptedValue,
    FieldContext,
    Keyring,
    generate_keypair,
    open_field,
)


def test_failure_messages_and_logs_carry_no_values(keyring: Keyring) -> None:
    key, _ = keyring.new_data_key("resident-1")
    other, _ = keyring.new_data_key("resident-1")
    ctx = FieldContext("residents", "name", "r-1")
    value = keyring.encrypt_field(key, "李秀英", ctx)
    tampered = bytearray(value.to_bytes())
    tampered[-1] ^= 1
    errors = []
    with structlog.testing.capture_logs() as logs:
        for attempt in (
            lambda: keyring.decrypt_field(other, value, ctx),  # wrong key
            lambda: keyring.decrypt_field(key, value, FieldContext("residents", "name", "r-2")),
            lambda: keyring.decrypt_field(key, EncryptedValue.from_bytes(bytes(tampered)), ctx),
        ):
            with pytest.raises(DecryptionError) as info:
                attempt()
            errors.append(info.value)
    # no oracle: every failure looks the same, with no chained cause
    assert {str(e) for e in errors} == {"decryption failed"}
    assert all(
        e.__cause__ is None and (e.__context__ is None or e.__suppress_context__) for e in errors
    )
    assert len(logs) == 3 and all(entry["event"] == "field_decrypt_failed" for entry in logs)
    dumped = repr(logs)
    assert "李秀英" not in dumped and value.to_bytes().hex() not in dumped
    assert key.material().hex() not in dumped


def test_open_failures_are_opaque() -> None:
    private, public = generate_keypair()
    with pytest.raises(DecryptionError) as info:
        open_field(private, "a", "c", "f", "s1.AAAA")
    assert str(info.value) == "decryption failed" and info.value.__cause__ is None
    del public
