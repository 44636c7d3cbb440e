"""`exchange serve` refuses, each with one line, what it must not serve; `exchange db upgrade`
is the only thing that migrates."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from exchange.cli import app
from exchange.db.engine import make_engine
from exchange.db.migrate import current_revision, head_revision, upgrade
from exchange.settings import get_settings
from keys.providers import FileKeyring
from tests.exchange.serving import cli, environment

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for key in list(os.environ):
        if key.startswith("EXCHANGE_"):
            monkeypatch.delenv(key)
    home = tmp_path / "home"
    monkeypatch.setenv("EXCHANGE_HOME", str(home))
    monkeypatch.setenv("EXCHANGE_MODE", "production")
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


def _refusal(*args: str) -> str:
    get_settings.cache_clear()
    result = runner.invoke(app, ["serve", *args])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


def _init(home: Path, *, development: bool = False) -> None:
    home.mkdir(parents=True, exist_ok=True)
    FileKeyring.create(home / "keyring.json", development=development)
    upgrade(f"sqlite:///{home / 'exchange.db'}")


def test_production_refuses_sqlite_unless_allowed(env: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _init(env)
    assert "refuses SQLite" in _refusal()
    monkeypatch.setenv("EXCHANGE_ALLOW_SQLITE_IN_PRODUCTION", "true")
    with socket.socket() as busy:  # everything else is fine: the last check refuses
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert f"port {port} on 127.0.0.1 is in use" in _refusal("--port", str(port))


@pytest.fixture
def sqlite_allowed(env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EXCHANGE_ALLOW_SQLITE_IN_PRODUCTION", "true")
    return env


def test_refuses_development_keys(sqlite_allowed: Path) -> None:
    _init(sqlite_allowed, development=True)
    assert "refuses development keys" in _refusal()


def test_refuses_a_keyring_others_can_read(sqlite_allowed: Path) -> None:
    _init(sqlite_allowed)
    (sqlite_allowed / "keyring.json").chmod(0o640)
    assert "readable by group or others (mode 0640)" in _refusal()


def test_refuses_a_keyring_path_that_is_not_a_file(sqlite_allowed: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _init(sqlite_allowed)
    directory = sqlite_allowed / "keys.d"
    directory.mkdir(mode=0o700)
    monkeypatch.setenv("EXCHANGE_KEYRING_PATH", str(directory))
    assert "not a regular file" in _refusal()


def test_refuses_a_database_behind_or_not_initialised(sqlite_allowed: Path) -> None:
    sqlite_allowed.mkdir(parents=True)
    FileKeyring.create(sqlite_allowed / "keyring.json", development=False)
    assert "not initialised; run `exchange admin init`" in _refusal()
    url = f"sqlite:///{sqlite_allowed / 'exchange.db'}"
    upgrade(url, "0003")
    line = _refusal()
    assert "behind the code" in line and "exchange db upgrade" in line
    engine = make_engine(url)
    try:
        assert current_revision(engine) == "0003"  # serve never migrates on its own
        get_settings.cache_clear()
        status = runner.invoke(app, ["db", "status"])
        assert "behind the code" in status.output
        upgraded = runner.invoke(app, ["db", "upgrade"])
        assert upgraded.exit_code == 0 and f"to {head_revision()}" in upgraded.output
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_refusals_reach_a_real_process_as_one_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _init(home)
    (home / "keyring.json").unlink()
    (home / "keyring.json").mkdir()
    env = environment(home, f"sqlite:///{home / 'exchange.db'}")
    result = cli(env, "serve")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"error: production mode refuses keyring {home / 'keyring.json'}: not a regular file; "
        "point EXCHANGE_KEYRING_PATH at the keyring file"]
