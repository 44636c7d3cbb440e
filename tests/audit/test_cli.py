"""`exchange audit export | verify | fsck` end to end."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from audit.checkpoint import open_checkpoint
from audit.errors import NoteError
from audit.note import Signer, Verifier
from audit.store import AuditLog, append_many
from exchange.cli.audit import app
from exchange.db.models import FixedSetting
from exchange.settings import DEFAULT_AUDIT_ORIGIN, get_settings
from keys.providers import FileKeyring
from tests.audit.conftest import disclosure

pytestmark = pytest.mark.db
runner = CliRunner()


def test_export_then_verify_offline(database_url: str, sessions: sessionmaker[Session],
                                    signer: Signer, tmp_path: Path) -> None:
    with sessions.begin() as s:
        log = AuditLog(s, signer=signer)
        append_many(s, [disclosure(i) for i in range(12)])
        old = log.issue_checkpoint().note
        append_many(s, [disclosure(i) for i in range(12, 30)])
        new = log.issue_checkpoint().note
    (tmp_path / "vkey").write_text(signer.verifier.text() + "\n")
    (tmp_path / "old.cp").write_text(old)
    (tmp_path / "new.cp").write_text(new)
    out = tmp_path / "audit.jsonl"
    result = runner.invoke(app, ["export", "--out", str(out), "--database-url", database_url])
    assert result.exit_code == 0, result.output
    args = ["verify", str(out), "--vkey", str(tmp_path / "vkey"),
            "--checkpoint", str(tmp_path / "new.cp"), "--since", str(tmp_path / "old.cp")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "OK: 30 entries" in result.output

    lines = out.read_bytes().split(b"\n")
    del lines[10]  # drop the entry at index 7 (after the header and two checkpoint lines)
    out.write_bytes(b"\n".join(lines))
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "entry 7:" in result.output

    result = runner.invoke(app, ["fsck", "--vkey", signer.verifier.text(),
                                 "--database-url", database_url])
    assert result.exit_code == 0, result.output


def test_verify_rejects_a_bad_key_cleanly(tmp_path: Path) -> None:
    export = tmp_path / "e.jsonl"
    export.write_text("")
    result = runner.invoke(app, ["verify", str(export), "--vkey", "not-a-key"])
    assert result.exit_code == 2
    assert "verifier key" in result.output


@pytest.fixture
def keyring_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for key in list(os.environ):
        if key.startswith("EXCHANGE_"):
            monkeypatch.delenv(key)
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    monkeypatch.setenv("EXCHANGE_HOME", str(home))
    get_settings.cache_clear()
    FileKeyring.create(home / "keyring.json", development=True)
    yield home
    get_settings.cache_clear()


def _fix_origin(sessions: sessionmaker[Session], origin: str) -> None:
    """What `exchange admin init` leaves in a full database: the log's origin, fixed."""
    with sessions.begin() as s:
        FixedSetting.__table__.create(s.connection())  # type: ignore[attr-defined]
        s.add(FixedSetting(name="audit.origin", value=origin))


def test_checkpoint_is_signed_by_the_keyring_key_that_vkey_prints(
        keyring_home: Path, database_url: str, sessions: sessionmaker[Session]) -> None:
    _fix_origin(sessions, DEFAULT_AUDIT_ORIGIN)
    with sessions.begin() as s:
        append_many(s, [disclosure(i) for i in range(7)])
    printed = runner.invoke(app, ["vkey", "--database-url", database_url])
    assert printed.exit_code == 0, printed.output
    verifier = Verifier.parse(printed.output.strip())

    first = runner.invoke(app, ["checkpoint", "--database-url", database_url])
    assert first.exit_code == 0, first.output
    cp, _ = open_checkpoint(first.output, verifier)
    assert cp.size == 7 and cp.origin == verifier.name == DEFAULT_AUDIT_ORIGIN
    with sessions() as s:
        assert cp.root == AuditLog(s).root(7)
        assert AuditLog(s).latest_checkpoint() is not None  # stored, not only printed
    again = runner.invoke(app, ["checkpoint", "--database-url", database_url])
    assert again.output == first.output  # idempotent per tree size

    other = Signer(verifier.name, Ed25519PrivateKey.generate())
    with pytest.raises(NoteError):
        open_checkpoint(first.output, other.verifier)


def test_checkpoint_without_a_keyring_fails_cleanly(
        keyring_home: Path, database_url: str, sessions: sessionmaker[Session]) -> None:
    (keyring_home / "keyring.json").unlink()
    result = runner.invoke(app, ["checkpoint", "--database-url", database_url])
    assert result.exit_code == 1
    assert result.output.startswith("error:") and "Traceback" not in result.output
    assert runner.invoke(app, ["vkey"]).exit_code == 1


def test_export_before_any_checkpoint_names_the_fixed_origin(
        database_url: str, sessions: sessionmaker[Session], tmp_path: Path) -> None:
    _fix_origin(sessions, "street.example/audit")
    with sessions.begin() as s:
        append_many(s, [disclosure(i) for i in range(3)])
    out = tmp_path / "audit.jsonl"
    result = runner.invoke(app, ["export", "--out", str(out), "--database-url", database_url])
    assert result.exit_code == 0, result.output
    header = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert header["origin"] == "street.example/audit" and header["tree_size"] == 3
