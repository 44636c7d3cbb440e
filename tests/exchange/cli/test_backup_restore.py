"""Backup, damage, restore, verify: the restored log passes fsck and an auditor's offline
verification from the checkpoint they kept; an older backup is refused while auditors may hold
a newer checkpoint; the keyring backup is sealed with a passphrase."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from audit.entry import Action, Actor, AuditEntry, Subject
from audit.store import append
from exchange.cli import app
from exchange.db.engine import make_engine, make_session_factory, unit_of_work
from exchange.settings import get_settings
from keys.backup import open_keyring_backup, seal_keyring_backup
from keys.errors import DecryptionError, FormatError

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for key in list(os.environ):
        if key.startswith("EXCHANGE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("EXCHANGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EXCHANGE_DATABASE_URL", database_url)
    get_settings.cache_clear()
    assert _ok("admin", "init")
    yield database_url
    get_settings.cache_clear()


def _run(*args: str) -> tuple[int, str]:
    get_settings.cache_clear()
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def _ok(*args: str) -> str:
    code, output = _run(*args)
    assert code == 0, output
    return output


def _refused(*args: str) -> str:
    code, output = _run(*args)
    lines = output.strip().splitlines()
    assert code == 1 and len(lines) == 1 and lines[0].startswith("error: "), output
    return lines[0]


def _grow(url: str, n: int) -> None:
    engine = make_engine(url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            for i in range(n):
                append(session, AuditEntry(time=datetime(2026, 3, 1, 9, tzinfo=UTC),
                                           actor=Actor("p-contractor", "contractor"),
                                           action=Action.DISCLOSE,
                                           subjects=(Subject(f"ap_{i}"),)))
    finally:
        engine.dispose()


def _checkpoint(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_text(_ok("audit", "checkpoint"), encoding="utf-8")
    return path


def _damage(url: str) -> None:
    """Lose the checkpoint records and the principals: nothing left says what auditors hold."""
    engine = make_engine(url)
    try:
        if engine.dialect.name == "sqlite":
            engine.dispose()
            Path(str(engine.url.database)).write_bytes(b"\x00garbage" * 512)
            for suffix in ("-wal", "-shm"):
                Path(f"{engine.url.database}{suffix}").unlink(missing_ok=True)
            return
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE audit_cosignatures, audit_checkpoints CASCADE"))
            conn.execute(sa.text("DELETE FROM principal_communities"))
    finally:
        engine.dispose()


@pytest.mark.db
@pytest.mark.slow
def test_backup_damage_restore_verify(env: str, tmp_path: Path) -> None:
    _grow(env, 5)
    kept = _checkpoint(tmp_path, "auditor-kept.note")  # an auditor keeps this one (size 5)
    _grow(env, 3)
    newest = _checkpoint(tmp_path, "newest.note")  # size 8
    backup_dir = tmp_path / "backup"
    said = _ok("admin", "backup", "--out", str(backup_dir))
    assert "audit log 8 entries" in said
    manifest = json.loads((backup_dir / "manifest.json").read_text())
    assert manifest["tree_size"] == 8 and "keyring" not in json.dumps(manifest)
    assert not any("keyring" in p.name for p in backup_dir.iterdir())
    assert all(oct(p.stat().st_mode)[-3:] == "600" for p in backup_dir.iterdir())
    assert "exists and is not empty" in _refused("admin", "backup", "--out", str(backup_dir))

    _damage(env)
    # the database no longer says which checkpoints were issued: the operator must
    assert "cannot tell which checkpoints" in _refused(
        "admin", "restore", "--from", str(backup_dir), "--replace")
    assert "not a checkpoint of this log" in _refused(
        "admin", "restore", "--from", str(backup_dir), "--replace",
        "--checkpoint", str(backup_dir / "manifest.json"))
    said = _ok("admin", "restore", "--from", str(backup_dir), "--replace",
               "--checkpoint", str(newest))
    assert "audit log 8 entries" in said

    fsck = _ok("audit", "fsck")
    assert fsck.startswith("OK: 9 entries")  # the 8 restored and the restore's own entry
    export = tmp_path / "restored.jsonl"
    _ok("audit", "export", "--out", str(export))
    vkey = _ok("audit", "vkey").strip()
    for since in (kept, newest):
        verified = _ok("audit", "verify", str(export), "--vkey", vkey, "--since", str(since),
                       "--workers", "1")
        assert verified.startswith("OK"), verified


@pytest.mark.db
@pytest.mark.slow
def test_an_older_backup_is_refused_while_auditors_may_hold_newer(env: str,
                                                                  tmp_path: Path) -> None:
    _grow(env, 4)
    _checkpoint(tmp_path, "first.note")
    old_backup = tmp_path / "old"
    _ok("admin", "backup", "--out", str(old_backup))
    _grow(env, 2)
    _checkpoint(tmp_path, "second.note")  # size 6, recorded in the database being replaced

    line = _refused("admin", "restore", "--from", str(old_backup), "--replace")
    assert "has 4 entries, but a checkpoint of size 6 (database being replaced)" in line
    assert "not empty; pass --replace" in _refused(
        "admin", "restore", "--from", str(old_backup), "--allow-older-log")
    said = _ok("admin", "restore", "--from", str(old_backup), "--replace", "--allow-older-log")
    assert "audit log 4 entries" in said
    assert _ok("audit", "fsck").startswith("OK: 5 entries")


def test_keyring_backup_is_sealed_with_the_passphrase() -> None:
    keyring = b'{"keys": "material"}'
    sealed = seal_keyring_backup(keyring, "correct horse battery", n=2**14)
    assert b"material" not in sealed
    assert open_keyring_backup(sealed, "correct horse battery") == keyring
    with pytest.raises(DecryptionError):
        open_keyring_backup(sealed, "correct horse batterx")
    document = json.loads(sealed)
    document["n"] = 2**15  # any header change fails the opening, not only the ciphertext's
    with pytest.raises(DecryptionError):
        open_keyring_backup(json.dumps(document).encode(), "correct horse battery")
    with pytest.raises(FormatError):
        seal_keyring_backup(keyring, "short")


def test_keyring_backup_and_restore_commands(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("EXCHANGE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("EXCHANGE_HOME", str(tmp_path / "home"))
    _ok("admin", "init")
    original = (tmp_path / "home" / "keyring.json").read_bytes()
    secret = tmp_path / "pass.txt"
    secret.write_text("a long operator passphrase\n")
    sealed = tmp_path / "keyring.sealed"
    _ok("admin", "keyring-backup", "--out", str(sealed), "--passphrase-file", str(secret))
    assert oct(sealed.stat().st_mode)[-3:] == "600" and original not in sealed.read_bytes()
    assert "exists; move it away" in _refused("admin", "keyring-restore", "--from", str(sealed),
                                              "--passphrase-file", str(secret))
    (tmp_path / "home" / "keyring.json").unlink()
    _ok("admin", "keyring-restore", "--from", str(sealed), "--passphrase-file", str(secret))
    restored = tmp_path / "home" / "keyring.json"
    assert restored.read_bytes() == original and oct(restored.stat().st_mode)[-3:] == "600"
    get_settings.cache_clear()
