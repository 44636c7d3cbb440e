"""`exchange audit export | verify | fsck` end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from audit.note import Signer
from audit.store import AuditLog, append_many
from exchange.cli.audit import app
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
