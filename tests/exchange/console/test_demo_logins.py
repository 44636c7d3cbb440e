"""`make run` (`exchange dev up`) gives each demo console user a fresh password that works."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from exchange.bootstrap import load_keyring
from exchange.cli.dev import prepare_with_logins
from exchange.db.engine import make_engine, make_session_factory, unit_of_work
from exchange.services import accounts
from exchange.settings import Settings


@pytest.mark.slow
def test_demo_logins_sign_in_and_a_second_run_replaces_them(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "var")
    _tokens, first = prepare_with_logins(settings, lambda _line: None)
    assert [role for role, _name, _pw in first] == ["office_admin", "community_cadre", "auditor"]
    _tokens, second = prepare_with_logins(settings, lambda _line: None)
    engine = make_engine(settings.database_url)
    try:
        factory = make_session_factory(engine)
        keyring = load_keyring(settings)
        for (role, name, old), (_r, _n, new) in zip(first, second, strict=True):
            assert old != new
            with unit_of_work(factory) as session:
                result = accounts.login(session, keyring, name, new, "", address="127.0.0.1",
                                        user_agent="", now=datetime.now(UTC),
                                        policy=accounts.LoginPolicy())  # fmt: skip
            assert result.ok, role
            with unit_of_work(factory) as session:
                stale = accounts.login(session, keyring, name, old, "", address="127.0.0.1",
                                       user_agent="", now=datetime.now(UTC),
                                       policy=accounts.LoginPolicy())  # fmt: skip
            assert stale.outcome == "bad_password"
    finally:
        engine.dispose()
