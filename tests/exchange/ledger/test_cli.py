import json
from pathlib import Path

import pytest
import typer
from sqlalchemy import func, select
from typer.testing import CliRunner

from exchange.cli.ledger import demo_data, import_app
from exchange.db.engine import make_engine
from exchange.db.migrate import upgrade
from exchange.db.models import Resident
from exchange.settings import get_settings
from keys.providers import FileKeyring

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
    refused = runner.invoke(app, ["import", "residents", str(out), "--json"])
    assert refused.exit_code == 1
    report = json.loads(refused.stdout)
    assert report["applied"] is False and report["rows_invalid"] == 3
    assert {c["header"] for c in report["refused_columns"]} >= {"婚姻状况", "避孕措施", "备注"}
    partial = runner.invoke(app, ["import", "residents", str(out), "--partial"])
    assert partial.exit_code == 1 and "written: 22 new, 0 updated" in partial.stdout
    engine = make_engine(database_url)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Resident)) == 22
    engine.dispose()
    missing = runner.invoke(app, ["import", "residents", str(tmp_path / "nope.txt")])
    assert missing.exit_code == 2 and "unsupported file type" in missing.output
    get_settings.cache_clear()
