import hashlib
import json
from pathlib import Path

import pytest
import typer
from sqlalchemy import func, select
from typer.testing import CliRunner

from audit.store import tables as audit_tables
from exchange.cli.ledger import demo_data, import_app
from exchange.db.engine import make_engine, make_session_factory
from exchange.db.migrate import upgrade
from exchange.db.models import Resident
from exchange.services.log_origin import fix_origin
from exchange.settings import DEFAULT_AUDIT_ORIGIN, get_settings
from keys.providers import FileKeyring
from tests.exchange import factories as f

pytestmark = pytest.mark.db


def _app() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(import_app, name="import")
    app.command("demo-data")(demo_data)
    return app


def test_demo_data_then_import_via_cli(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    upgrade(database_url)
    engine = make_engine(database_url)
    with make_session_factory(engine).begin() as session:
        admin_id = f.principal(session, "admin-1", "office_admin").id
        fix_origin(session, DEFAULT_AUDIT_ORIGIN)  # what `exchange admin init` leaves
    FileKeyring.create(tmp_path / "keyring.json", development=True)
    monkeypatch.setenv("EXCHANGE_HOME", str(tmp_path))
    monkeypatch.setenv("EXCHANGE_DATABASE_URL", database_url)
    get_settings.cache_clear()
    runner = CliRunner()
    app = _app()
    out = tmp_path / "ledger.csv"
    made = runner.invoke(app, ["demo-data", "--residents", "25", "--seed", "4", "--bad-rows",
                               "3", "--out", str(out)])  # fmt: skip
    assert made.exit_code == 0, made.output
    unnamed = runner.invoke(app, ["import", "residents", str(out)])
    assert unnamed.exit_code == 2 and "--as" in unnamed.output  # an import names its principal
    refused = runner.invoke(app, ["import", "residents", str(out), "--json", "--as", "admin-1"])
    assert refused.exit_code == 1
    report = json.loads(refused.stdout)
    assert report["applied"] is False and report["rows_invalid"] == 3
    assert {c["header"] for c in report["refused_columns"]} >= {"婚姻状况", "避孕措施", "备注"}
    partial = runner.invoke(app, ["import", "residents", str(out), "--partial", "--as", "admin-1"])
    assert partial.exit_code == 1 and "written: 22 new, 0 updated" in partial.stdout
    assert "recorded in the audit log as entry 1" in partial.stdout
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Resident)) == 22
    missing = runner.invoke(app, ["import", "residents", str(tmp_path / "nope.csv"),
                                  "--as", "admin-1"])  # fmt: skip
    assert missing.exit_code == 2 and "no such file" in missing.output
    (tmp_path / "notes.txt").write_text("not a ledger")
    odd = runner.invoke(app, ["import", "residents", str(tmp_path / "notes.txt"), "--as",
                              "admin-1"])
    assert odd.exit_code == 2 and "unsupported file type" in odd.output

    with engine.connect() as conn:
        entries = [json.loads(bytes(e)) for e in conn.scalars(
            select(audit_tables.entries.c.entry).order_by(audit_tables.entries.c.idx))]  # fmt: skip
    engine.dispose()
    assert [e["action"] for e in entries] == ["resident.import"] * 3
    assert all(e["actor"] == {"id": admin_id, "role": "office_admin"} for e in entries)
    assert [(e["outcome"]["result"], e["outcome"]["reason"]) for e in entries] == [
        ("denied", "rows_invalid"), ("ok", "imported_partially"), ("error", "file_unusable")]
    sha = hashlib.sha256(out.read_bytes()).hexdigest()
    assert entries[1]["details"] == {
        "columns.never_imported": ["ledger.cadre_notes", "ledger.contraception",
                                   "ledger.husband", "ledger.marriage", "ledger.terminations"],
        "columns.unknown": 0, "errors": 3, "file.format": "csv", "file.sha256": sha,
        "mode.partial": True, "rows.inserted": 22, "rows.invalid": 3, "rows.read": 25,
        "rows.updated": 0, "rows.valid": 22,
    }  # fmt: skip
    assert entries[2]["details"] == {"file.format": "other", "mode.partial": False,
        "file.sha256": hashlib.sha256(b"not a ledger").hexdigest()}  # fmt: skip
    get_settings.cache_clear()
