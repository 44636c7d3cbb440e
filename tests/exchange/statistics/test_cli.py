# ruff: noqa: F811 - the demo home fixtures are imported from tests.exchange.cli.test_office
"""`exchange stats TABLE --by …` on a prepared demo home (SQLite): the same release as the API,
printed with Chinese labels, audited; bad parameters are one line naming the parameter."""

from __future__ import annotations

import json
from pathlib import Path

from openpyxl import load_workbook
from sqlalchemy import select
from typer.testing import CliRunner

from audit.store import tables as audit_tables
from exchange.cli import app
from exchange.db.engine import make_engine, make_session_factory
from exchange.settings import Settings
from tests.exchange.cli.test_office import home, template  # noqa: F401 - the demo home fixtures


def _entries(home: Path) -> list[dict]:
    engine = make_engine(Settings(home=home).database_url)
    try:
        with make_session_factory(engine)() as s:
            stored = s.scalars(select(audit_tables.entries.c.entry))
            return [json.loads(e) for e in stored]
    finally:
        engine.dispose()


def test_stats_prints_the_release_and_audits_it(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "residents.xlsx"
    result = CliRunner().invoke(app, ["stats", "residents", "--by", "community,stage",
                                      "--as", "demo-office-admin", "--xlsx", str(out)])
    assert result.exit_code == 0, result.output
    assert "社区 community" in result.stdout and "孕产状态 stage" in result.stdout
    assert "合计 total" in result.stdout and "数据已做小数抑制处理" in result.stdout
    assert load_workbook(out).active["A1"].value.startswith("居民")
    cadre = CliRunner().invoke(app, ["stats", "residents", "--by", "stage", "--as",
                                     "demo-cadre"])  # fmt: skip
    assert cadre.exit_code == 0, cadre.output
    releases = [e for e in _entries(home) if e["action"] == "statistics.release"]
    assert [e["details"]["scope"] for e in releases] == ["street", "communities"]


def test_bad_parameters_are_one_line_naming_them(home: Path) -> None:
    result = CliRunner().invoke(app, ["stats", "residents", "--by", "colour",
                                      "--as", "demo-office-admin"])  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.startswith("error: invalid request: by")
    exact = CliRunner().invoke(app, ["stats", "bookings", "--by", "service", "--exact",
                                     "--as", "demo-cadre"])  # fmt: skip
    assert exact.exit_code == 1 and "reason" in exact.stderr
