"""The audit origin: a setting, fixed at `admin init`, refused if changed, on every checkpoint."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from audit.checkpoint import open_checkpoint
from audit.note import Verifier
from exchange.bootstrap import build_app
from exchange.cli import app
from exchange.db.engine import make_engine
from exchange.services.log_origin import OriginChanged, OriginNotFixed, check_origin
from exchange.settings import DEFAULT_AUDIT_ORIGIN, Settings, get_settings

runner = CliRunner()
ORIGIN = "chengyang.example.gov.cn/exchange/audit"


@pytest.fixture
def env(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[pytest.MonkeyPatch]:
    for key in list(os.environ):
        if key.startswith("EXCHANGE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("EXCHANGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EXCHANGE_DATABASE_URL", database_url)
    monkeypatch.setenv("EXCHANGE_AUDIT_ORIGIN", ORIGIN)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def _run(*args: str) -> tuple[int, str]:
    get_settings.cache_clear()
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize(
    "value",
    ["https://chengyang.example/audit", "chengyang example/audit", "audit", "Chengyang.Example/a",
     "chengyang.example/a+b", "chengyang.example/audit/", ""],
)  # fmt: skip
def test_an_origin_is_a_schema_less_url(value: str) -> None:
    with pytest.raises(ValueError, match="schema-less URL"):
        Settings(audit_origin=value)
    assert Settings(audit_origin="log.example.org:8443/a/b-1").audit_origin.endswith("b-1")


def test_init_fixes_it_and_checkpoints_carry_it(env: pytest.MonkeyPatch, database_url: str) -> None:
    code, out = _run("admin", "init")
    assert code == 0 and f"audit origin {ORIGIN} (fixed), 3 shipped policies" in out, out
    code, out = _run("admin", "init")
    assert code == 0 and "(as fixed before)" in out

    code, vkey = _run("audit", "vkey")
    assert code == 0 and vkey.startswith(ORIGIN + "+"), vkey
    code, note = _run("audit", "checkpoint")
    assert code == 0, note
    assert note.startswith(ORIGIN + "\n3\n")  # the shipped policies init published
    checkpoint, _ = open_checkpoint(note, Verifier.parse(vkey.strip()))
    assert checkpoint.origin == ORIGIN


def test_a_changed_origin_is_refused_everywhere(env: pytest.MonkeyPatch, database_url: str) -> None:
    assert _run("admin", "init")[0] == 0
    env.setenv("EXCHANGE_AUDIT_ORIGIN", "other.example.gov.cn/audit")
    expected = (f"error: EXCHANGE_AUDIT_ORIGIN is 'other.example.gov.cn/audit' but this office's "
                f"audit log was fixed as '{ORIGIN}' at `exchange admin init`")  # fmt: skip
    for args in (["admin", "init"], ["audit", "checkpoint"], ["audit", "vkey"]):
        code, out = _run(*args)
        assert code == 1 and out.startswith(expected) and out.count("\n") == 1, (args, out)
    with pytest.raises(OriginChanged, match=f"set EXCHANGE_AUDIT_ORIGIN={ORIGIN}"):
        build_app(get_settings())


def test_the_stored_origin_is_write_once(env: pytest.MonkeyPatch, database_url: str) -> None:
    assert _run("admin", "init")[0] == 0
    engine = make_engine(database_url)
    try:
        for statement in ("UPDATE fixed_settings SET value = 'x.example/a'",
                          "DELETE FROM fixed_settings"):  # fmt: skip
            with pytest.raises(DBAPIError, match="write-once"), engine.begin() as conn:
                conn.execute(text(statement))
        check_origin(engine, ORIGIN)  # unchanged
    finally:
        engine.dispose()


def test_a_database_never_initialised_is_refused(database_url: str) -> None:
    from exchange.db.migrate import upgrade

    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with pytest.raises(OriginNotFixed, match="run `exchange admin init`"):
            check_origin(engine, DEFAULT_AUDIT_ORIGIN)
    finally:
        engine.dispose()


def test_production_init_wants_it_named(env: pytest.MonkeyPatch) -> None:
    env.delenv("EXCHANGE_AUDIT_ORIGIN")
    env.setenv("EXCHANGE_MODE", "production")
    env.setenv("EXCHANGE_ALLOW_SQLITE_IN_PRODUCTION", "true")
    code, out = _run("admin", "init")
    assert code == 1 and "production mode: set EXCHANGE_AUDIT_ORIGIN" in out, out


def test_a_server_started_before_its_database_checks_before_signing(
    env: pytest.MonkeyPatch, database_url: str
) -> None:
    """Alive but not ready at start (the database was unreachable): the first checkpoint it
    signs is still refused under another origin."""
    from datetime import UTC, datetime

    from exchange.bootstrap import load_keyring
    from exchange.db.engine import make_session_factory, unit_of_work
    from exchange.services.checkpoints import issue_if_grown

    assert _run("admin", "init")[0] == 0
    env.setenv("EXCHANGE_AUDIT_ORIGIN", "other.example.gov.cn/audit")
    keyring = load_keyring(Settings())
    engine = make_engine(database_url)
    try:
        factory = make_session_factory(engine)
        with pytest.raises(OriginChanged), unit_of_work(factory) as session:
            issue_if_grown(session, keyring, datetime.now(UTC))
        keyring.audit_key_name = ORIGIN
        with unit_of_work(factory) as session:
            stored = issue_if_grown(session, keyring, datetime.now(UTC))
        assert stored is not None and stored.checkpoint.origin == ORIGIN
    finally:
        engine.dispose()
