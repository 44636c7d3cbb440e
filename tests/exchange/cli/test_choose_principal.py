"""`--as`: a principal's name, or what a user would try (display name, a role held once)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session, sessionmaker

from exchange.cli.choose_principal import choose_acting
from exchange.cli.errors import CliError
from tests.exchange import factories as f


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Session:
    with session_factory() as s:
        f.principal(s, "admin-1", "office_admin").display_name = "王主任"
        f.principal(s, "cadre-1", "community_cadre")
        f.principal(s, "cadre-2", "community_cadre")
        f.principal(s, "aud-1", "auditor")
        gone = f.principal(s, "cadre-old", "community_cadre")
        gone.revoked_at = datetime(2026, 1, 1, tzinfo=UTC)
        s.flush()
        yield s  # type: ignore[misc]


def test_a_name_a_display_name_or_a_role_held_once(session: Session) -> None:
    assert choose_acting(session, "cadre-2").name == "cadre-2"
    assert choose_acting(session, " cadre-1 ").name == "cadre-1"
    assert choose_acting(session, "王主任").name == "admin-1"
    assert choose_acting(session, "office_admin").name == "admin-1"
    assert choose_acting(session, None).name == "admin-1"  # the only active office_admin


def _refusal(session: Session, given: str | None) -> str:
    with pytest.raises(CliError) as caught:
        choose_acting(session, given)
    return str(caught.value)


def test_refusals_list_the_choices(session: Session) -> None:
    assert _refusal(session, "nobody") == (
        "--as 'nobody' names no active office principal; choose one of: "
        "admin-1 (office_admin), cadre-1 (community_cadre), cadre-2 (community_cadre)"
    )
    assert _refusal(session, "community_cadre") == (
        "--as community_cadre: 2 active principals have that role; "
        "name one: cadre-1 (community_cadre), cadre-2 (community_cadre)"
    )
    assert "is revoked" in _refusal(session, "cadre-old")
    assert "has role auditor; office actions need office_admin or community_cadre" in _refusal(
        session, "aud-1"
    )
    assert "auditor" not in _refusal(session, "nobody")  # only principals who may act


def test_no_default_without_a_single_admin(session: Session) -> None:
    f.principal(session, "admin-2", "office_admin")
    assert _refusal(session, None).startswith("name the acting principal with --as; choose one")


def test_a_long_list_is_cut(session: Session) -> None:
    for i in range(20):
        f.principal(session, f"cadre-x{i:02d}", "community_cadre")
    message = _refusal(session, "nobody")
    assert message.endswith("and 11 more (exchange admin principal list)")
