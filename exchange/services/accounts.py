"""Console accounts: passwords (argon2id), login with lockout and the login log, TOTP, and the
office admin's user management (create, roles and scope, reset password, unlock).

A console user is an existing principal with a `ConsoleAccount`. `login` never raises for a
wrong password: it records the attempt and returns a `LoginResult` so the caller commits the
failure count and the log entry. Messages and reason codes name fields, never values; the
password is never logged, stored or echoed.
Admin operations raise `services.errors.NotPermitted` for any role but office_admin.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import pyotp
from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from audit.entry import MAX_DETAILS, DetailValue
from exchange.db import models as m
from exchange.db.models.codes import ROLES
from exchange.db.models.console import LOGIN_OUTCOMES
from exchange.identity import Acting
from exchange.services.audit_access import record
from exchange.services.errors import (
    Conflict,
    FieldProblem,
    InvalidInput,
    NotFound,
    NotPermitted,
)
from exchange.services.web_sessions import end_all_for, open_session
from keys.datakeys import WrappedKey
from keys.fields import FieldContext
from keys.keyring import Keyring

OFFICE_ADMIN: Final = "office_admin"
# Roles that may sign in to the console; contractors are machines and use the API only.
CONSOLE_ROLES: Final = frozenset({"office_admin", "community_cadre", "auditor"})
MIN_PASSWORD = 10
MAX_PASSWORD = 128
# RFC 9106's second recommended option (argon2id, 64 MiB, 3 passes, 4 lanes)
_HASHER_PARAMETERS = profiles.RFC_9106_LOW_MEMORY
_HASHER = PasswordHasher.from_parameters(_HASHER_PARAMETERS)
# verified against when the user does not exist, so both answers take the same time
_DUMMY_HASH = _HASHER.hash("exchange/console/no-such-user")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}\Z")
_TOTP_CONTEXT = ("console_accounts", "totp_secret")
TOTP_ISSUER = "城阳街道 生命之初1000天"


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    max_failures: int = 5
    # in production an office admin must have a second factor before doing anything
    totp_required_for_admins: bool = False


@dataclass(frozen=True, slots=True)
class LoginResult:
    """`outcome` is a login-log code; `token` (the cookie value) only on success."""

    outcome: str
    token: str | None = None
    principal_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "success"


# -- passwords -------------------------------------------------------------------------------


def password_problems(password: str, username: str, field: str = "password") -> list[FieldProblem]:
    """What is wrong with a new password (reason codes; the console words them)."""
    problems = []
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        problems.append(FieldProblem(field, "length", f"{MIN_PASSWORD}-{MAX_PASSWORD} characters"))
    classes = sum(
        1
        for test in (str.islower, str.isupper, str.isdigit, lambda c: not c.isalnum())
        if any(test(c) for c in password)
    )
    if classes < 3:
        problems.append(
            FieldProblem(field, "too_simple", "needs three of: lower, upper, digit, symbol")
        )
    if username and username.lower() in password.lower():
        problems.append(FieldProblem(field, "contains_username", "must not contain the user name"))
    return problems


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _check_new_password(password: str, username: str, field: str = "password") -> None:
    problems = password_problems(password, username, field)
    if problems:
        raise InvalidInput(f"invalid request: {field}", tuple(problems))


# -- login -----------------------------------------------------------------------------------


def _log(session: Session, now: datetime, address: str, outcome: str,
         principal_id: str | None, username: str | None) -> None:  # fmt: skip
    # the typed name is kept only in the shape of a principal name: a password typed into
    # the user name field must not end up in the log
    kept = username if username is not None and _NAME.match(username) else None
    session.add(m.LoginEvent(time=now, principal_id=principal_id, username=kept,
                             address=address[:64], outcome=outcome))  # fmt: skip


def _account_by_name(session: Session, username: str) -> m.ConsoleAccount | None:
    if not _NAME.match(username):
        return None
    return session.scalars(
        select(m.ConsoleAccount)
        .join(m.Principal, m.Principal.id == m.ConsoleAccount.principal_id)
        .where(m.Principal.name == username)
        .options(selectinload(m.ConsoleAccount.principal))
    ).one_or_none()


def login(
    session: Session,
    keyring: Keyring,
    username: str,
    password: str,
    totp_code: str,
    *,
    address: str,
    user_agent: str,
    now: datetime,
    policy: LoginPolicy,
) -> LoginResult:
    """Check the credentials; on success open a new session (a new id: rotation on login)."""
    username = username.strip().lower()
    account = _account_by_name(session, username)
    if account is None:
        _verify(_DUMMY_HASH, password)
        _log(session, now, address, "unknown_user", None, username)
        return LoginResult("unknown_user")
    pid = account.principal_id
    principal = account.principal
    if account.locked_at is not None:
        _log(session, now, address, "locked", pid, username)
        return LoginResult("locked", principal_id=pid)
    if not _verify(account.password_hash, password):
        return _failure(session, account, now, address, "bad_password", policy)
    if principal.revoked_at is not None or principal.role not in CONSOLE_ROLES:
        _log(session, now, address, "revoked", pid, username)
        return LoginResult("revoked", principal_id=pid)
    if account.totp_enabled_at is not None:
        if not totp_code.strip():
            _log(session, now, address, "totp_required", pid, username)
            return LoginResult("totp_required", principal_id=pid)
        if not _accept_totp(keyring, account, totp_code, now):
            return _failure(session, account, now, address, "bad_totp", policy)
    if _HASHER.check_needs_rehash(account.password_hash):
        account.password_hash = hash_password(password)
    account.failed_attempts = 0
    token, _row = open_session(session, pid, address=address, user_agent=user_agent, now=now)
    _log(session, now, address, "success", pid, username)
    return LoginResult("success", token=token, principal_id=pid)


def _failure(session: Session, account: m.ConsoleAccount, now: datetime, address: str,
             outcome: str, policy: LoginPolicy) -> LoginResult:  # fmt: skip
    account.failed_attempts += 1
    if account.failed_attempts >= policy.max_failures:
        account.locked_at = now
        outcome = "locked"
    _log(session, now, address, outcome, account.principal_id, account.principal.name)
    return LoginResult(outcome, principal_id=account.principal_id)


def needs_totp_enrolment(account: m.ConsoleAccount, role: str, policy: LoginPolicy) -> bool:
    return policy.totp_required_for_admins and role == OFFICE_ADMIN and (
        account.totp_enabled_at is None
    )


def change_password(
    session: Session, account: m.ConsoleAccount, current: str, new: str, *, now: datetime,
    keep_session: str | None,
) -> None:  # fmt: skip
    """The user's own change; every other session of hers ends."""
    if not _verify(account.password_hash, current):
        raise InvalidInput.field("current_password", "mismatch", "the current password is wrong")
    if current == new:
        raise InvalidInput.field("new_password", "unchanged", "must differ from the current one")
    _check_new_password(new, account.principal.name, "new_password")
    account.password_hash = hash_password(new)
    account.password_changed_at = now
    account.must_change_password = False
    end_all_for(session, account.principal_id, "password_changed", now, keep=keep_session)


# -- TOTP (RFC 6238 through pyotp) ---------------------------------------------------------


def _totp_context(account: m.ConsoleAccount) -> FieldContext:
    return FieldContext(*_TOTP_CONTEXT, account.principal_id)


def _secret(keyring: Keyring, account: m.ConsoleAccount) -> str | None:
    if account.totp_secret is None or account.data_key is None:
        return None
    key = keyring.unwrap(WrappedKey.from_bytes(account.data_key), account.principal_id)
    return keyring.decrypt_field(key, account.totp_secret, _totp_context(account))


def _accept_totp(keyring: Keyring, account: m.ConsoleAccount, code: str, now: datetime) -> bool:
    """One step either side for clock drift; a step once accepted is never accepted again."""
    secret = _secret(keyring, account)
    code = code.strip()
    if secret is None or not code.isdigit() or len(code) != 6:
        return False
    totp = pyotp.TOTP(secret)
    step = totp.timecode(now)
    for candidate in (step, step - 1, step + 1):
        last = account.totp_last_step
        if (last is None or candidate > last) and pyotp.utils.strings_equal(
            totp.generate_otp(candidate), code
        ):
            account.totp_last_step = candidate
            return True
    return False


def begin_totp(session: Session, keyring: Keyring, account: m.ConsoleAccount) -> str:
    """A new secret, stored encrypted but not yet enabled; returns the otpauth URI to show."""
    if account.data_key is None:
        _key, wrapped = keyring.new_data_key(account.principal_id)
        account.data_key = wrapped.to_bytes()
    key = keyring.unwrap(WrappedKey.from_bytes(account.data_key), account.principal_id)
    secret = pyotp.random_base32()
    account.totp_secret = keyring.encrypt_field(key, secret, _totp_context(account))
    account.totp_enabled_at = None
    account.totp_last_step = None
    session.flush()
    return pyotp.TOTP(secret).provisioning_uri(name=account.principal.name, issuer_name=TOTP_ISSUER)


def pending_totp_uri(keyring: Keyring, account: m.ConsoleAccount) -> str | None:
    secret = _secret(keyring, account)
    if secret is None or account.totp_enabled_at is not None:
        return None
    return pyotp.TOTP(secret).provisioning_uri(name=account.principal.name, issuer_name=TOTP_ISSUER)


def confirm_totp(keyring: Keyring, account: m.ConsoleAccount, code: str, now: datetime) -> None:
    if account.totp_secret is None or account.totp_enabled_at is not None:
        raise Conflict("no second factor is waiting for confirmation")
    if not _accept_totp(keyring, account, code, now):
        raise InvalidInput.field("code", "mismatch", "the code does not match")
    account.totp_enabled_at = now


# -- the office admin's user management ------------------------------------------------------


def _require_admin(acting: Acting) -> None:
    if acting.identity.role != OFFICE_ADMIN:
        raise NotPermitted("only an office admin manages console users")


def account_of(session: Session, principal_id: str) -> m.ConsoleAccount:
    account = session.get(m.ConsoleAccount, principal_id) if len(principal_id) <= 36 else None
    if account is None:
        raise NotFound("no such console user")
    return account


def _communities(session: Session, role: str, community_ids: Sequence[str]) -> list[m.Community]:
    if role != "community_cadre":
        if community_ids:
            raise InvalidInput.field("communities", "not_allowed", "only a cadre has communities")
        return []
    if not community_ids:
        raise InvalidInput.field("communities", "required", "a cadre needs at least one")
    rows = list(session.scalars(select(m.Community).where(m.Community.id.in_(community_ids))))
    if len(rows) != len(set(community_ids)):
        raise InvalidInput.field("communities", "unknown", "unknown community")
    return rows


def _audited(principal: m.Principal, *, scope: bool = False) -> dict[str, DetailValue]:
    """The audit `details` of an admin change: the user it touched (her principal id, never
    her name), and for a create or a role change the role and community scope given."""
    out: dict[str, DetailValue] = {"console_user.id": principal.id}
    if scope:
        ids = tuple(sorted(c.id for c in principal.communities))
        out["console_user.role"] = principal.role
        out["console_user.community_count"] = len(ids)
        if len(ids) <= MAX_DETAILS:
            out["console_user.communities"] = ids
    return out


@dataclass(frozen=True, slots=True)
class NewUser:
    name: str
    display_name: str
    role: str
    community_ids: tuple[str, ...]
    password: str


def create_user(session: Session, acting: Acting, new: NewUser) -> m.ConsoleAccount:
    """A new principal (no API token) with a console password she must change at first login."""
    _require_admin(acting)
    name = new.name.strip().lower()
    problems: list[FieldProblem] = []
    if not _NAME.match(name):
        problems.append(FieldProblem("name", "format", "3-64 of a-z 0-9 . _ -"))
    display = new.display_name.strip()
    if not 1 <= len(display) <= 64 or not display.isprintable():
        problems.append(FieldProblem("display_name", "format", "1-64 printable characters"))
    if new.role not in CONSOLE_ROLES:
        problems.append(FieldProblem("role", "unknown", f"one of {sorted(CONSOLE_ROLES)}"))
    problems += password_problems(new.password, name)
    if problems:
        raise InvalidInput("invalid request", tuple(problems))
    if session.scalar(select(m.Principal.id).where(m.Principal.name == name)):
        raise InvalidInput.field("name", "taken", "a user with this name exists")
    communities = _communities(session, new.role, new.community_ids)
    principal = m.Principal(name=name, role=new.role, display_name=display, created_at=acting.now)
    principal.communities = communities
    session.add(principal)
    session.flush()
    account = m.ConsoleAccount(
        principal_id=principal.id, password_hash=hash_password(new.password),
        password_changed_at=acting.now, must_change_password=True, failed_attempts=0,
        created_at=acting.now,
    )  # fmt: skip
    session.add(account)
    session.flush()
    record(session, acting, "console_user.create", details=_audited(principal, scope=True))
    return account


def ensure_account(session: Session, principal: m.Principal, password: str, now: datetime,
                   *, must_change: bool = False) -> m.ConsoleAccount:  # fmt: skip
    """Give an existing principal a console password (the demo, the CLI); replaces any
    previous one and unlocks. Never commits."""
    if principal.role not in CONSOLE_ROLES:
        raise InvalidInput.field("role", "not_console", "contractors have no console account")
    account = session.get(m.ConsoleAccount, principal.id)
    if account is None:
        account = m.ConsoleAccount(principal_id=principal.id, created_at=now)
        session.add(account)
    account.password_hash = hash_password(password)
    account.password_changed_at = now
    account.must_change_password = must_change
    account.failed_attempts = 0
    account.locked_at = None
    session.flush()
    return account


def set_role(session: Session, acting: Acting, principal_id: str, role: str,
             community_ids: Sequence[str], display_name: str) -> None:  # fmt: skip
    _require_admin(acting)
    account = account_of(session, principal_id)
    if role not in CONSOLE_ROLES:
        raise InvalidInput.field("role", "unknown", f"one of {sorted(CONSOLE_ROLES)}")
    display = display_name.strip()
    if not 1 <= len(display) <= 64 or not display.isprintable():
        raise InvalidInput.field("display_name", "format", "1-64 printable characters")
    if account.principal_id == acting.identity.id and role != OFFICE_ADMIN:
        raise Conflict("an office admin cannot take away her own admin role")
    principal = account.principal
    principal.communities = _communities(session, role, community_ids)
    principal.role = role
    principal.display_name = display
    # a new role or scope applies from the next sign-in: end the user's sessions now
    end_all_for(session, principal_id, "ended_by_admin", acting.now)
    record(session, acting, "console_user.update", details=_audited(principal, scope=True))


def reset_password(session: Session, acting: Acting, principal_id: str, password: str) -> None:
    _require_admin(acting)
    account = account_of(session, principal_id)
    _check_new_password(password, account.principal.name)
    account.password_hash = hash_password(password)
    account.password_changed_at = acting.now
    account.must_change_password = True
    account.failed_attempts = 0
    account.locked_at = None
    end_all_for(session, principal_id, "password_changed", acting.now)
    record(session, acting, "console_user.password_reset", details=_audited(account.principal))


def unlock(session: Session, acting: Acting, principal_id: str) -> None:
    _require_admin(acting)
    account = account_of(session, principal_id)
    if account.locked_at is None and account.failed_attempts == 0:
        raise Conflict("the user is not locked")
    account.locked_at = None
    account.failed_attempts = 0
    record(session, acting, "console_user.unlock", details=_audited(account.principal))


def reset_totp(session: Session, acting: Acting, principal_id: str) -> None:
    """The user lost her authenticator: she enrols again at her next sign-in."""
    _require_admin(acting)
    account = account_of(session, principal_id)
    account.totp_secret = None
    account.totp_enabled_at = None
    account.totp_last_step = None
    end_all_for(session, principal_id, "ended_by_admin", acting.now)
    record(session, acting, "console_user.totp_reset", details=_audited(account.principal))


def list_users(session: Session, acting: Acting, *, name: str = "", role: str = "",
               offset: int = 0, limit: int = 20) -> tuple[int, list[m.ConsoleAccount]]:  # fmt: skip
    _require_admin(acting)
    query = (
        select(m.ConsoleAccount)
        .join(m.Principal, m.Principal.id == m.ConsoleAccount.principal_id)
        .options(selectinload(m.ConsoleAccount.principal).selectinload(m.Principal.communities))
    )
    if name.strip():
        query = query.where(m.Principal.name.contains(name.strip().lower(), autoescape=True))
    if role in ROLES:
        query = query.where(m.Principal.role == role)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(m.Principal.name).offset(offset).limit(limit)).all()
    return total, list(rows)


def login_log(session: Session, acting: Acting, *, username: str = "", outcome: str = "",
              offset: int = 0, limit: int = 20) -> tuple[int, list[m.LoginEvent]]:  # fmt: skip
    _require_admin(acting)
    query = select(m.LoginEvent)
    if username.strip():
        query = query.where(m.LoginEvent.username == username.strip().lower())
    if outcome in LOGIN_OUTCOMES:
        query = query.where(m.LoginEvent.outcome == outcome)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(m.LoginEvent.time.desc(), m.LoginEvent.id.desc()).offset(offset).limit(limit)
    ).all()
    return total, list(rows)
