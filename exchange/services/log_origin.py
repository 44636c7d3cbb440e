"""The audit log's origin: this office's log name, fixed once at `exchange admin init`.

C2SP tlog-checkpoint puts the origin on a checkpoint's first line and signed-note makes it the
signing key's name, from which the verifier key's id is derived. An auditor therefore pins the
origin with every checkpoint and verifier key she keeps; if it changed, nothing she kept would
verify again. So it is a setting (`EXCHANGE_AUDIT_ORIGIN`), written to the database by
`admin init` (`fixed_settings`, write-once), and every process that signs or appends refuses to
start under another value, with one line saying which value is fixed. A server that starts
while its database is unreachable (alive, not ready) checks before it signs its first
checkpoint instead (`require_origin`).
"""

from __future__ import annotations

import threading

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from exchange.db.engine import make_session_factory, unit_of_work
from exchange.db.models import FixedSetting
from exchange.settings import ConfigurationError

ORIGIN = "audit.origin"


class OriginChanged(ConfigurationError):
    """EXCHANGE_AUDIT_ORIGIN differs from the origin the log was initialised with."""


class OriginNotFixed(ConfigurationError):
    """The database has no fixed origin yet: `exchange admin init` has not run on it."""


def stored_origin(session: Session) -> str | None:
    row = session.get(FixedSetting, ORIGIN)
    return None if row is None else row.value


def _refusal(wanted: str, fixed: str) -> OriginChanged:
    return OriginChanged(
        f"EXCHANGE_AUDIT_ORIGIN is {wanted!r} but this office's audit log was fixed as "
        f"{fixed!r} at `exchange admin init`; the origin never changes (every checkpoint and "
        f"verifier key names it): set EXCHANGE_AUDIT_ORIGIN={fixed}"
    )


def fix_origin(session: Session, wanted: str) -> bool:
    """Store `wanted` as the origin if none is fixed yet (returns True), accept it if it is the
    fixed one (False), refuse it otherwise. Never commits."""
    fixed = stored_origin(session)
    if fixed is None:
        session.add(FixedSetting(name=ORIGIN, value=wanted))
        session.flush()
        return True
    if fixed != wanted:
        raise _refusal(wanted, fixed)
    return False


def check_origin(engine: Engine, wanted: str) -> None:
    """At start-up: the configured origin must be the fixed one (and one must be fixed)."""
    with unit_of_work(make_session_factory(engine)) as session:
        fixed = stored_origin(session)
    if fixed is None:
        raise OriginNotFixed("the audit log's origin is not fixed yet; run `exchange admin init`")
    if fixed != wanted:
        raise _refusal(wanted, fixed)


def check_origin_when_reachable(engine: Engine, wanted: str) -> None:
    """`check_origin` at a server's start, unless the database cannot be reached yet: the
    server then starts alive but not ready, and `require_origin` checks before signing."""
    try:
        check_origin(engine, wanted)
    except SQLAlchemyError:
        return


_VERIFIED: set[tuple[str, str]] = set()
_VERIFIED_LOCK = threading.Lock()


def require_origin(session: Session, wanted: str) -> None:
    """Before signing under `wanted`: if an origin is fixed, it must be `wanted` (read once
    per process and database, then remembered). A database no `admin init` ran on has none
    to compare with; the server refused to start on one it could reach (`check_origin`)."""
    database = session.get_bind().engine.url.render_as_string(hide_password=True)
    with _VERIFIED_LOCK:
        if (database, wanted) in _VERIFIED:
            return
    fixed = stored_origin(session)
    if fixed is None:
        return
    if fixed != wanted:
        raise _refusal(wanted, fixed)
    with _VERIFIED_LOCK:
        _VERIFIED.add((database, wanted))
