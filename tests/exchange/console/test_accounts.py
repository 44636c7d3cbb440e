"""Console accounts and sessions in the services, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from audit.store import AuditLog
from exchange.db import models as m
from exchange.db.engine import unit_of_work
from exchange.identity import Acting, Identity
from exchange.services import accounts, web_sessions
from exchange.services.errors import InvalidInput, NotPermitted
from tests.exchange import factories as f
from tests.exchange.console.world import NAMES, PASSWORDS, START, World, account, populate

POLICY = accounts.LoginPolicy(max_failures=5)
SESSIONS = web_sessions.SessionPolicy(idle=timedelta(minutes=30), absolute=timedelta(hours=12))
pytestmark = pytest.mark.db


@pytest.fixture
def world(session_factory: sessionmaker[Session]) -> World:
    return populate(session_factory)


def _login(factory: sessionmaker[Session], role: str, password: str | None = None, *,
           code: str = "", now=START, ring=None) -> accounts.LoginResult:  # fmt: skip
    with unit_of_work(factory) as session:
        return accounts.login(session, ring or f.keyring(), NAMES[role],
                              PASSWORDS[role] if password is None else password, code,
                              address="127.0.0.1", user_agent="test", now=now,
                              policy=POLICY)  # fmt: skip


def _acting(session: Session, principal_id: str) -> Acting:
    row = session.get(m.Principal, principal_id)
    assert row is not None
    return Acting(Identity.from_row(row), START)


def test_login_opens_a_new_session_each_time(session_factory, world) -> None:
    first = _login(session_factory, "community_cadre")
    second = _login(session_factory, "community_cadre")
    assert first.ok and second.ok and first.token != second.token
    with unit_of_work(session_factory) as session:
        hashes = session.scalars(select(m.ConsoleSession.token_hash)).all()
        assert len(hashes) == 2
        # only hashes are stored, never the cookie value
        assert first.token not in hashes and second.token not in hashes


def test_five_failures_lock_until_an_admin_unlocks(session_factory, world) -> None:
    outcomes = [_login(session_factory, "community_cadre", "Wrong-pass-1").outcome
                for _ in range(5)]  # fmt: skip
    assert outcomes == ["bad_password"] * 4 + ["locked"]
    assert _login(session_factory, "community_cadre").outcome == "locked"  # right password too
    with unit_of_work(session_factory) as session:
        accounts.unlock(session, _acting(session, world.ids["office_admin"]),
                        world.ids["community_cadre"])  # fmt: skip
    assert _login(session_factory, "community_cadre").ok
    with unit_of_work(session_factory) as session:
        assert _actions(session) == [("console_user.unlock", world.ids["office_admin"],
                                      world.ids["community_cadre"])]  # fmt: skip


def test_login_log_records_attempts_never_the_password(session_factory, world) -> None:
    _login(session_factory, "auditor", "Secret-typo-99")
    _login(session_factory, "auditor")
    with unit_of_work(session_factory) as session:
        # a password typed into the user name field is not kept
        accounts.login(session, f.keyring(), "My Password 1!", "x", "", address="10.0.0.9",
                       user_agent="", now=START, policy=POLICY)  # fmt: skip
    with unit_of_work(session_factory) as session:
        rows = session.scalars(select(m.LoginEvent).order_by(m.LoginEvent.time)).all()
        assert [r.outcome for r in rows] == ["bad_password", "success", "unknown_user"]
        assert rows[0].username == "auditor-01" and rows[0].address == "127.0.0.1"
        assert rows[2].username is None and rows[2].principal_id is None
        dump = repr([(r.username, r.address, r.outcome) for r in rows])
        assert "Secret-typo-99" not in dump and "My Password" not in dump


def test_unknown_user_and_wrong_password_answer_alike(session_factory, world) -> None:
    unknown = _login(session_factory, "office_admin", None)
    assert unknown.ok
    with unit_of_work(session_factory) as session:
        nobody = accounts.login(session, f.keyring(), "nobody-here", "Whatever-123", "",
                                address="127.0.0.1", user_agent="", now=START, policy=POLICY)
    assert nobody.outcome == "unknown_user" and nobody.token is None


def test_contractor_principals_cannot_get_a_console_account(session_factory, world) -> None:
    with unit_of_work(session_factory) as session:
        machine = session.scalars(select(m.Principal).where(m.Principal.role == "contractor")).one()
        with pytest.raises(InvalidInput):
            accounts.ensure_account(session, machine, "Machine-pass-1", START)


def test_idle_and_absolute_timeouts_end_the_session(session_factory, world) -> None:
    token = _login(session_factory, "community_cadre").token
    assert token
    with unit_of_work(session_factory) as session:
        active, _ = web_sessions.resolve(session, token, START + timedelta(minutes=29), SESSIONS)
        assert active is not None
    with unit_of_work(session_factory) as session:
        at = START + timedelta(minutes=29 + 30)
        active, reason = web_sessions.resolve(session, token, at, SESSIONS)
        assert active is None and reason == "idle"
    with unit_of_work(session_factory) as session:  # ended stays ended
        active, reason = web_sessions.resolve(session, token, START, SESSIONS)
        assert active is None and reason == "idle"
    # kept busy, a session still ends at 12 hours
    token = _login(session_factory, "community_cadre").token
    assert token
    now = START
    while now < START + timedelta(hours=12):
        with unit_of_work(session_factory) as session:
            active, reason = web_sessions.resolve(session, token, now, SESSIONS)
        assert active is not None, now
        now += timedelta(minutes=20)
    with unit_of_work(session_factory) as session:
        active, reason = web_sessions.resolve(session, token, now, SESSIONS)
        assert active is None and reason == "absolute"


def test_an_admin_ends_a_session_and_it_is_audited(session_factory, world) -> None:
    token = _login(session_factory, "community_cadre").token
    assert token
    with unit_of_work(session_factory) as session:
        caller = _acting(session, world.ids["office_admin"])
        live = web_sessions.online(session, caller, START, SESSIONS)
        assert [s.principal_id for s in live] == [world.ids["community_cadre"]]
        web_sessions.end_by_admin(session, caller, live[0].id)
    with unit_of_work(session_factory) as session:
        active, reason = web_sessions.resolve(session, token, START, SESSIONS)
        assert active is None and reason == "ended_by_admin"
        assert _actions(session) == [("console_session.end", world.ids["office_admin"],
                                      world.ids["community_cadre"])]  # fmt: skip


def _actions(session: Session) -> list[tuple[str, str, str]]:
    """(action, the admin acting, the user the change touched) of every entry."""
    items = AuditLog(session).entries().items
    return [(e["action"], e["actor"]["id"], e.get("details", {}).get("console_user.id"))  # type: ignore
            for e in (i["entry"] for i in items)]


def test_only_an_office_admin_manages_users(session_factory, world) -> None:
    with unit_of_work(session_factory) as session:
        cadre = _acting(session, world.ids["community_cadre"])
        with pytest.raises(NotPermitted):
            accounts.unlock(session, cadre, world.ids["auditor"])
        with pytest.raises(NotPermitted):
            web_sessions.online(session, cadre, START, SESSIONS)
        with pytest.raises(NotPermitted):
            accounts.create_user(session, cadre, accounts.NewUser(
                "new-user", "新用户", "auditor", (), "Good-pass-123"))  # fmt: skip


def test_create_user_refuses_bad_input_naming_fields(session_factory, world) -> None:
    with unit_of_work(session_factory) as session:
        admin = _acting(session, world.ids["office_admin"])
        with pytest.raises(InvalidInput) as caught:
            accounts.create_user(session, admin, accounts.NewUser(
                "Bad Name", "", "contractor", (), "short"))  # fmt: skip
        fields = {(p.field, p.reason) for p in caught.value.errors}
        assert fields >= {("name", "format"), ("display_name", "format"), ("role", "unknown"),
                          ("password", "length"), ("password", "too_simple")}
        with pytest.raises(InvalidInput) as caught:
            accounts.create_user(session, admin, accounts.NewUser(
                "cadre-02", "张干事", "community_cadre", (), "Good-pass-123"))  # fmt: skip
        assert caught.value.errors[0].field == "communities"
        assert _actions(session) == []  # nothing created, nothing audited


def test_a_created_user_is_named_in_the_audit_entry_with_role_and_scope(session_factory,
                                                                        world) -> None:  # fmt: skip
    with unit_of_work(session_factory) as session:
        admin = _acting(session, world.ids["office_admin"])
        made = accounts.create_user(session, admin, accounts.NewUser(
            "cadre-02", "张干事", "community_cadre", (world.community_id,), "Good-pass-123"))
        new_id = made.principal_id
    with unit_of_work(session_factory) as session:
        entry = AuditLog(session).entries().items[-1]["entry"]
    assert entry["action"] == "console_user.create"  # type: ignore[index]
    assert entry["details"] == {  # type: ignore[index]
        "console_user.id": new_id, "console_user.role": "community_cadre",
        "console_user.community_count": 1, "console_user.communities": [world.community_id]}
    assert "张干事" not in repr(entry) and "cadre-02" not in repr(entry)


def test_reset_password_forces_a_change_and_ends_sessions(session_factory, world) -> None:
    token = _login(session_factory, "community_cadre").token
    assert token
    with unit_of_work(session_factory) as session:
        accounts.reset_password(session, _acting(session, world.ids["office_admin"]),
                                world.ids["community_cadre"], "Fresh-pass-456")  # fmt: skip
    with unit_of_work(session_factory) as session:
        assert web_sessions.resolve(session, token, START, SESSIONS)[0] is None
        assert account(session, world.ids["community_cadre"]).must_change_password
        assert _actions(session) == [("console_user.password_reset", world.ids["office_admin"],
                                      world.ids["community_cadre"])]  # fmt: skip
    assert _login(session_factory, "community_cadre", "Fresh-pass-456").ok


def test_totp_is_required_once_enabled_and_a_code_works_once(session_factory, world) -> None:
    ring = f.keyring()
    with unit_of_work(session_factory) as session:
        row = account(session, world.ids["office_admin"])
        uri = accounts.begin_totp(session, ring, row)
        secret = pyotp.parse_uri(uri).secret
        accounts.confirm_totp(ring, row, pyotp.TOTP(secret).at(START), START)
        stored = row.totp_secret
        assert stored is not None and secret.encode() not in stored.to_bytes()
    later = START + timedelta(minutes=5)
    assert _login(session_factory, "office_admin", ring=ring, now=later).outcome == "totp_required"
    code = pyotp.TOTP(secret).at(later)
    assert _login(session_factory, "office_admin", code=code, ring=ring, now=later).ok
    replay = _login(session_factory, "office_admin", code=code, ring=ring, now=later)
    assert replay.outcome == "bad_totp"


def test_admin_must_enrol_totp_in_production(session_factory, world) -> None:
    production = accounts.LoginPolicy(totp_required_for_admins=True)
    with unit_of_work(session_factory) as session:
        admin = account(session, world.ids["office_admin"])
        cadre = account(session, world.ids["community_cadre"])
        assert accounts.needs_totp_enrolment(admin, "office_admin", production)
        assert not accounts.needs_totp_enrolment(cadre, "community_cadre", production)
        assert not accounts.needs_totp_enrolment(admin, "office_admin", POLICY)


def test_password_rules() -> None:
    assert accounts.password_problems("Good-pass-123", "cadre-01") == []
    reasons = {p.reason for p in accounts.password_problems("alllowercase", "x")}
    assert reasons == {"too_simple"}
    reasons = {p.reason for p in accounts.password_problems("Cadre-01-Pass", "cadre-01")}
    assert reasons == {"contains_username"}


def test_production_hashing_is_argon2id_with_rfc9106_parameters() -> None:
    from argon2 import PasswordHasher, extract_parameters, profiles

    # the parameters of the module-level hasher (the fixture swaps in a cheap one)
    assert profiles.RFC_9106_LOW_MEMORY == accounts._HASHER_PARAMETERS
    stored = PasswordHasher.from_parameters(accounts._HASHER_PARAMETERS).hash("Some-pass-123")
    assert stored.startswith("$argon2id$")
    params = extract_parameters(stored)
    assert params.memory_cost == 65536 and params.time_cost == 3
