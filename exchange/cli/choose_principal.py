"""Who `--as` names: the principal an office command acts as.

`--as` takes a principal's name (`exchange admin principal list`), and also what a user would
try: the principal's display name, or a role name (`office_admin`, `community_cadre`) when
exactly one active principal has that role. Anything else is refused with the choices listed:
the names and roles of the active office principals (never a token).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.cli.errors import CliError
from exchange.db import models as m

OFFICE_ROLES = ("office_admin", "community_cadre")
AS_HELP = (
    "Acting principal's name, e.g. demo-cadre (see `exchange admin principal list`); "
    "a role name works when exactly one active principal has it"
)
_LISTED = 12


def _active_office(session: Session) -> list[m.Principal]:
    return list(session.scalars(
        select(m.Principal)
        .where(m.Principal.role.in_(OFFICE_ROLES), m.Principal.revoked_at.is_(None))
        .order_by(m.Principal.name)
    ))  # fmt: skip


def _listed(rows: Sequence[m.Principal]) -> str:
    listed = ", ".join(f"{r.name} ({r.role})" for r in rows[:_LISTED])
    more = f", and {len(rows) - _LISTED} more (exchange admin principal list)"
    return listed + (more if len(rows) > _LISTED else "")


def _choices(rows: Sequence[m.Principal]) -> str:
    if not rows:
        return "no office principal is active; add one with `exchange admin principal create`"
    return "choose one of: " + _listed(rows)


def _checked(row: m.Principal, given: str) -> m.Principal:
    if row.revoked_at is not None:
        raise CliError(f"--as {given!r}: principal {row.name!r} is revoked")
    if row.role not in OFFICE_ROLES:
        raise CliError(f"--as {given!r}: principal {row.name!r} has role {row.role}; office "
                       f"actions need {' or '.join(OFFICE_ROLES)}")  # fmt: skip
    return row


def choose_acting(session: Session, given: str | None) -> m.Principal:
    """The active office principal `given` names (None: the only active office_admin).
    Refused with one line listing the choices when it names none, or several."""
    if given is not None:
        given = given.strip()
        by_name = session.scalars(select(m.Principal).where(m.Principal.name == given)).first()
        if by_name is not None:
            return _checked(by_name, given)
    active = _active_office(session)
    if given is not None:
        by_display = [r for r in active if r.display_name == given]
        if len(by_display) == 1:
            return by_display[0]
        if len(by_display) > 1:
            raise CliError(f"--as {given!r}: {len(by_display)} principals have that display "
                           f"name; {_choices(by_display)}")  # fmt: skip
    role = "office_admin" if given is None else given
    holders = [r for r in active if r.role == role]
    if len(holders) == 1:
        return holders[0]
    if given is None:
        raise CliError(f"name the acting principal with --as; {_choices(active)}")
    if holders:
        raise CliError(f"--as {given}: {len(holders)} active principals have that role; "
                       f"name one: {_listed(holders)}")  # fmt: skip
    raise CliError(f"--as {given!r} names no active office principal; {_choices(active)}")
