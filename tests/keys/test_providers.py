from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from keys import (
    DevelopmentKeyringError,
    EnvKeyProvider,
    FieldContext,
    FileKeyring,
    KeyNotFoundError,
    KeyProvider,
    KeyProviderError,
    Keyring,
    KeyringFormatError,
    KeyringPermissionError,
    MemoryKeyProvider,
    Purpose,
    Suite,
)

CTX = FieldContext("residents", "name", "1")


def _materials(document: dict[str, object]) -> list[str]:
    keys = document["keys"]
    assert isinstance(keys, dict)
    return [m for entry in keys.values() for m in entry["versions"].values()]


def test_create_writes_mode_0600_and_loads(tmp_path: Path) -> None:
    path = tmp_path / "home" / "keyring.json"
    created = FileKeyring.create(path, development=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["keyring.json"]  # no temp file left
    loaded = FileKeyring.load(path)
    assert loaded.is_development
    key, wrapped = Keyring(created).new_data_key("resident-1")
    value = Keyring(created).encrypt_field(key, "李秀英", CTX)
    ring = Keyring(loaded)
    assert ring.decrypt_field(ring.unwrap(wrapped, "resident-1"), value, CTX) == "李秀英"
    assert isinstance(loaded, KeyProvider)


def test_create_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    FileKeyring.create(path)
    before = path.read_bytes()
    with pytest.raises(KeyProviderError, match="already exists"):
        FileKeyring.create(path)
    assert path.read_bytes() == before


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o610])
def test_load_refuses_group_or_world_access(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "keyring.json"
    FileKeyring.create(path)
    os.chmod(path, mode)
    with pytest.raises(KeyringPermissionError) as info:
        FileKeyring.load(path)
    message = str(info.value)
    assert str(path) in message and f"{mode:04o}" in message
    for material in _materials(json.loads(path.read_text())):
        assert material not in message


def test_load_accepts_0400(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    FileKeyring.create(path)
    os.chmod(path, 0o400)
    assert FileKeyring.load(path).current_version(Purpose.ROOT) == 1


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KeyProviderError, match="does not exist"):
        FileKeyring.load(tmp_path / "nope.json")


def test_failed_write_leaves_file_and_provider_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "keyring.json"
    ring = FileKeyring.create(path)
    before = path.read_bytes()

    def disk_full(*_args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(OSError):
        ring.add_version(Purpose.ROOT)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert ring.versions(Purpose.ROOT) == [1]
    assert [p.name for p in tmp_path.iterdir()] == ["keyring.json"]  # temp file removed


def test_new_versions_persist_atomically(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    ring = FileKeyring.create(path)
    assert ring.add_version(Purpose.ROOT) == 2
    reloaded = FileKeyring.load(path)
    assert reloaded.versions(Purpose.ROOT) == [1, 2]
    assert reloaded.current_version(Purpose.ROOT) == 2
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_env_provider_json_and_base64() -> None:
    document = MemoryKeyProvider.generate(development=False).to_document()
    text = json.dumps(document)
    from_json = EnvKeyProvider.from_environ({"EXCHANGE_KEYRING_JSON": text})
    encoded = base64.b64encode(text.encode()).decode()
    from_b64 = EnvKeyProvider.from_environ({"EXCHANGE_KEYRING_B64": encoded})
    assert from_json.to_document() == from_b64.to_document() == document
    assert not from_json.is_development
    with pytest.raises(KeyProviderError):
        from_json.add_version(Purpose.ROOT)
    assert from_json.versions(Purpose.ROOT) == [1]  # a refused change leaves no trace


def test_env_provider_missing_or_bad() -> None:
    with pytest.raises(KeyProviderError, match="EXCHANGE_KEYRING_JSON"):
        EnvKeyProvider.from_environ({})
    with pytest.raises(KeyringFormatError, match="EXCHANGE_KEYRING_B64"):
        EnvKeyProvider.from_environ({"EXCHANGE_KEYRING_B64": "***"})


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: d.update(format="other"), "format"),
        (lambda d: d.update(development="yes"), "development"),
        (lambda d: d["keys"].pop("blind_index"), "keys.blind_index"),
        (lambda d: d["keys"]["root"].update(current=9), "keys.root.current"),
        (lambda d: d["keys"]["root"]["versions"].update({"1": "c2hvcnQ="}), "keys.root.versions.1"),
        (lambda d: d["keys"]["root"]["versions"].update({"x": "AA=="}), "non-numeric"),
        (lambda d: d.update(audit_key_name="has space"), "audit key name"),
    ],
)
def test_malformed_documents_name_the_entry_not_the_material(mutate, fragment) -> None:  # type: ignore[no-untyped-def]
    document = MemoryKeyProvider.generate().to_document()
    materials = _materials(document)
    mutate(document)
    with pytest.raises(KeyringFormatError) as info:
        MemoryKeyProvider.from_document(document)
    assert fragment in str(info.value)
    assert not any(m in str(info.value) for m in materials)


def test_production_refuses_a_development_keyring() -> None:
    with pytest.raises(DevelopmentKeyringError):
        Keyring(MemoryKeyProvider.generate(development=True), production=True)
    ring = Keyring(MemoryKeyProvider.generate(development=False), production=True)
    assert not ring.is_development


def test_unknown_versions_and_retirement(provider: MemoryKeyProvider) -> None:
    with pytest.raises(KeyNotFoundError):
        provider.secret(Purpose.BLIND_INDEX, 7)
    with pytest.raises(KeyNotFoundError):
        provider.root_key(Suite.INTL, "hsm-label")
    with pytest.raises(KeyProviderError, match="current"):
        provider.retire_version(Purpose.ROOT, 1)


def test_audit_key_name_is_settable(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    ring = FileKeyring.create(path, audit_key_name="chengyang.example/audit")
    assert Keyring(ring).audit_key_name == "chengyang.example/audit"
    ring.set_audit_key_name("office-2")
    assert FileKeyring.load(path).audit_key_name == "office-2"
    keyring = Keyring(ring)
    keyring.audit_key_name = "office-3"
    assert keyring.audit_key_name == "office-3"
    with pytest.raises(KeyringFormatError):
        keyring.audit_key_name = "bad name"


def test_audit_signing_key_is_stable_and_signs(keyring: Keyring) -> None:
    a, b = keyring.audit_signing_key(), keyring.audit_signing_key()
    signature = a.sign(b"checkpoint")
    b.public_key().verify(signature, b"checkpoint")
