"""CLI: admin init and principals, `dev up` preparation (without serving), clean errors."""

from __future__ import annotations

import json
import os
import re
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select
from typer.testing import CliRunner

from exchange.api.auth import hash_token
from exchange.cli import app
from exchange.cli.dev import DEMO_PRINCIPALS, prepare
from exchange.db import models as m
from exchange.db.engine import make_engine, make_session_factory
from exchange.settings import Settings, get_settings

TOKEN_LINE = re.compile(r"^TOKEN (\w+) (exq_[A-Za-z0-9_-]{43})$")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in list(os.environ):
        if key.startswith("EXCHANGE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("EXCHANGE_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    yield tmp_path / "home"  # type: ignore[misc]
    get_settings.cache_clear()


def _count(settings: Settings, model: type) -> int:
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)
    finally:
        engine.dispose()


def _entries(settings: Settings) -> list[dict[str, object]]:
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            rows = session.execute(sa.text("SELECT entry FROM audit_entries ORDER BY idx"))
            return [json.loads(bytes(r.entry)) for r in rows]
    finally:
        engine.dispose()


def test_admin_init_and_principal_lifecycle(home: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(app, ["admin", "init"])
    assert first.exit_code == 0, first.output
    assert stat.S_IMODE((home / "keyring.json").stat().st_mode) == 0o600
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert "kept existing" in runner.invoke(app, ["admin", "init"]).output

    created = runner.invoke(app, ["admin", "principal", "create", "aud-1", "--role", "auditor"])
    assert created.exit_code == 0, created.output
    match = TOKEN_LINE.match(created.output.strip())
    assert match and match.group(1) == "auditor"
    token = match.group(2)

    rotated = runner.invoke(app, ["admin", "principal", "rotate", "aud-1"])
    new_token = TOKEN_LINE.match(rotated.output.strip()).group(2)  # type: ignore[union-attr]
    assert new_token != token
    listed = runner.invoke(app, ["admin", "principal", "list"]).output
    assert "aud-1\tauditor\tactive\t1\t" in listed and new_token not in listed

    revoked = runner.invoke(app, ["admin", "principal", "revoke", "aud-1"])
    assert revoked.exit_code == 0
    assert "revoked" in runner.invoke(app, ["admin", "principal", "list"]).output

    # every change is in the audit log, under the operator's system actor, never the token
    logged = _entries(get_settings())
    changes = [(e["action"], e["actor"]["id"], e["details"].get("token.id") is not None)
               for e in logged if e["action"].startswith(("principal.", "token."))]
    assert changes == [("principal.create", "exchange-cli", False),
                       ("token.issue", "exchange-cli", True),
                       ("token.issue", "exchange-cli", True),
                       ("principal.revoke", "exchange-cli", False)]
    raw = b"".join(json.dumps(e).encode() for e in logged)
    assert token.encode() not in raw and new_token.encode() not in raw


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "wizard"], "unknown role"),
        (["--role", "contractor"], "--contractor is required"),
        (["--role", "community_cadre"], "at least one --community"),
        (["--role", "community_cadre", "--community", "火星社区"], "unknown community"),
    ],
)
def test_principal_errors_are_one_line(home: Path, args: list[str], message: str) -> None:
    runner = CliRunner()
    runner.invoke(app, ["admin", "init"])
    result = runner.invoke(app, ["admin", "principal", "create", "p", *args])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert "Traceback" not in result.output


def test_dev_prepare_is_idempotent_and_reissues_tokens(home: Path) -> None:
    settings = Settings(home=home)
    said: list[str] = []
    first = prepare(settings, said.append)
    labels = [label for label, _ in first]
    assert labels == ["office_admin", "community_cadre", "contractor", "contractor_b", "auditor"]
    assert stat.S_IMODE(settings.keyring_file.stat().st_mode) == 0o600
    residents = _count(settings, m.Resident)
    assert residents > 0
    samples = sorted(p.name for p in (home / "samples").iterdir())
    assert samples == ["ledger-sample.csv", "ledger-template.xlsx"]

    second = prepare(settings, said.append)
    assert [label for label, _ in second] == labels
    assert all(a != b for (_, a), (_, b) in zip(first, second, strict=True))
    assert _count(settings, m.Resident) == residents
    assert _count(settings, m.Principal) >= len(DEMO_PRINCIPALS)
    # the newcomer's path: the sample `make run` wrote imports cleanly, today
    sample = str(home / "samples" / "ledger-sample.csv")
    imported = CliRunner().invoke(app, ["import", "residents", sample, "--as", "demo-office-admin"])
    assert imported.exit_code == 0, imported.output
    assert "written: 12 new, 0 updated" in imported.output

    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            # a second instance's fresh tokens never revoke the ones the first one printed
            from exchange.services.tokens import resolve

            now = datetime.now(UTC)
            assert [resolve(session, t, now)[1] for _, t in first + second] == ["ok"] * 10
            for label, token in second:
                row = session.scalars(
                    select(m.Principal).join(m.ApiToken)
                    .where(m.ApiToken.token_hash == hash_token(token))
                ).one()
                expected_role = "contractor" if label == "contractor_b" else label
                assert row.role == expected_role
            cadre = session.scalars(
                select(m.Principal).where(m.Principal.name == "demo-cadre")
            ).one()
            assert len(cadre.communities) == 2
            a, b = (
                session.scalars(select(m.Principal).where(m.Principal.name == n))
                .one()
                .contractor_id
                for n in ("demo-contractor", "demo-contractor-b")
            )
            assert a and b and a != b
    finally:
        engine.dispose()


def test_dev_up_refuses_production_and_busy_ports(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    runner = CliRunner()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(app, ["dev", "up", "--home", str(home), "--port", str(port)])
    assert result.exit_code == 1 and result.output.strip().startswith("error: port")
    monkeypatch.setenv("EXCHANGE_MODE", "production")
    result = runner.invoke(app, ["dev", "up", "--home", str(home), "--port", str(port)])
    assert result.exit_code == 1 and "error:" in result.output and "Traceback" not in result.output
