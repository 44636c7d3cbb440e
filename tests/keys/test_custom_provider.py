"""A provider written from the Protocol alone (as an HSM/KMS one would be) works with Keyring."""

from __future__ import annotations

import os
from datetime import datetime

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keys import DecryptionError, FieldContext, KeyNotFoundError, KeyProvider, Keyring, Purpose
from keys.events import KeyEvent, KeyEventType
from keys.providers import RootKey, Secret
from keys.suites import Suite


class _DeviceKey:
    """Stands in for a non-extractable key inside a device: wrap/unwrap only."""

    def __init__(self, label: str, version: int) -> None:
        self.key_id, self.version, self.suite = label, version, Suite.INTL
        self._device = AESGCM(os.urandom(32))

    def wrap(self, plaintext: bytes, associated_data: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._device.encrypt(nonce, plaintext, associated_data)

    def unwrap(self, blob: bytes, associated_data: bytes) -> bytes:
        try:
            return self._device.decrypt(blob[:12], blob[12:], associated_data)
        except InvalidTag:
            raise DecryptionError() from None


class _FakeHsm:
    is_development = False
    audit_key_name = "office/audit"

    def __init__(self) -> None:
        self.keys = {1: _DeviceKey("hsm:office-kek", 1)}
        self.secrets = {p: os.urandom(32) for p in Purpose}

    def root_key(
        self, suite: Suite, key_id: str | None = None, version: int | None = None
    ) -> RootKey:
        if key_id not in (None, "hsm:office-kek"):
            raise KeyNotFoundError(f"no root key {key_id!r}")
        chosen = self.keys.get(max(self.keys) if version is None else version)
        if chosen is None:
            raise KeyNotFoundError(f"no root key version {version}")
        return chosen

    def secret(self, purpose: Purpose, version: int | None = None) -> Secret:
        return Secret(purpose, 1, self.secrets[purpose])


def test_keyring_over_a_device_provider() -> None:
    hsm = _FakeHsm()
    assert isinstance(hsm, KeyProvider)
    ring = Keyring(hsm, production=True)
    key, wrapped = ring.new_data_key("resident-1")
    assert wrapped.header.kek_id == "hsm:office-kek"
    ctx = FieldContext("residents", "name", "1")
    value = ring.encrypt_field(key, "李秀英", ctx)
    ring.clear_cache()
    assert ring.decrypt_field(ring.unwrap(wrapped, "resident-1"), value, ctx) == "李秀英"
    hsm.keys[2] = _DeviceKey("hsm:office-kek", 2)
    assert ring.needs_rewrap(wrapped)
    rewrapped = ring.rewrap(wrapped, "resident-1")
    assert rewrapped.header.kek_version == 2
    assert ring.unwrap(rewrapped, "resident-1").key_id == key.key_id


def test_key_events_need_aware_times() -> None:
    with pytest.raises(ValueError):
        KeyEvent(KeyEventType.DATA_KEY_DESTROYED, "00", 1, datetime(2026, 1, 1))
