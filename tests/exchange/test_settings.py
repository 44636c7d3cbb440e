"""Settings from EXCHANGE_* variables and the production refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from exchange.bootstrap import load_keyring
from exchange.settings import ConfigurationError, Settings, check_production
from keys.providers import FileKeyring


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("EXCHANGE_"):
            monkeypatch.delenv(key)


def test_defaults_follow_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXCHANGE_HOME", str(tmp_path))
    s = Settings()
    assert s.database_url == f"sqlite:///{tmp_path / 'exchange.db'}"
    assert s.keyring_file == tmp_path / "keyring.json"
    assert (s.port, s.host, s.mode, s.effective_log_format) == (
        8000,
        "127.0.0.1",
        "development",
        "console",
    )


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXCHANGE_DATABASE_URL", "postgresql+psycopg://u@db/x")
    monkeypatch.setenv("EXCHANGE_MODE", "production")
    monkeypatch.setenv("EXCHANGE_PORT", "9001")
    s = Settings()
    assert s.database_url == "postgresql+psycopg://u@db/x" and s.port == 9001
    assert s.effective_log_format == "json" and not s.is_sqlite


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXCHANGE_MODE", "staging")
    with pytest.raises(ValueError, match="mode"):
        Settings()


def _production(tmp_path: Path, **kw: object) -> Settings:
    return Settings(home=tmp_path, mode="production", **kw)  # type: ignore[arg-type]


def test_production_refuses_sqlite_unless_allowed(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="SQLite") as caught:
        check_production(_production(tmp_path), development_keys=False)
    assert "\n" not in str(caught.value)
    check_production(_production(tmp_path, allow_sqlite_in_production=True), development_keys=False)
    check_production(
        _production(tmp_path, database_url="postgresql+psycopg://x@y/z"), development_keys=False
    )


def test_production_refuses_development_keys(tmp_path: Path) -> None:
    FileKeyring.create(tmp_path / "keyring.json", development=True)
    settings = _production(tmp_path, allow_sqlite_in_production=True)
    with pytest.raises(ConfigurationError, match="development keys"):
        load_keyring(settings)
    development = Settings(home=tmp_path)
    assert load_keyring(development).is_development


def test_production_refuses_a_readable_keyring(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    FileKeyring.create(path, development=False)
    settings = _production(tmp_path, allow_sqlite_in_production=True)
    assert not load_keyring(settings).is_development
    path.chmod(0o640)
    with pytest.raises(ConfigurationError, match="group or others"):
        check_production(settings, development_keys=False)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        load_keyring(settings)


def test_missing_keyring_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist") as caught:
        load_keyring(Settings(home=tmp_path))
    assert "\n" not in str(caught.value)
