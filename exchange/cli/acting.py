"""Run an office flow from the command line as a named principal, in one unit of work.

The principal is the one `--as` names (`choose_principal`); only office roles may act, so every
CLI action is attributed and audited by the same services the API uses, with the same
`exchange.identity` values. Flow and audit failures become one `CliError` line (no personal
values: the flows' messages name fields and codes only).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from audit.errors import AuditError
from exchange.bootstrap import load_keyring
from exchange.cli.choose_principal import choose_acting
from exchange.cli.errors import CliError
from exchange.db.engine import make_engine, make_session_factory, unit_of_work
from exchange.db.migrate import is_up_to_date
from exchange.identity import Acting, Identity
from exchange.services.errors import AuditUnavailable, FlowError
from exchange.services.log_origin import check_origin
from exchange.settings import get_settings
from keys.keyring import Keyring


@dataclass(frozen=True, slots=True)
class OfficeWork:
    """What a CLI command works with: the unit of work, the keyring and who is acting."""

    session: Session
    keyring: Keyring
    acting: Acting


def office_acting(session: Session, name: str | None, now: datetime) -> Acting:
    """The principal `--as` names (default: the only active office_admin) at work; refused
    unless active and of an office role (see `choose_principal`)."""
    return Acting(Identity.from_row(choose_acting(session, name)), now)


@contextlib.contextmanager
def acting_as(name: str | None) -> Iterator[OfficeWork]:
    """One transaction acting as `name`: commits when the block succeeds, else rolls back."""
    settings = get_settings()
    keyring = load_keyring(settings)
    engine = make_engine(settings.database_url)
    try:
        if not is_up_to_date(engine):
            raise CliError("the database schema is not up to date; run `exchange admin init`")
        check_origin(engine, settings.audit_origin)
        try:
            with unit_of_work(make_session_factory(engine)) as session:
                acting = office_acting(session, name, datetime.now(UTC))
                yield OfficeWork(session, keyring, acting)
        except AuditUnavailable as exc:
            raise CliError(f"audit log append failed, nothing recorded ({exc.cause})") from None
        except AuditError as exc:
            raise CliError(f"audit log append failed, nothing recorded ({exc})") from None
        except FlowError as exc:
            problems = "; ".join(f"{p.field}: {p.message}" for p in exc.errors)
            raise CliError(f"{exc.detail} ({problems})" if problems else exc.detail) from None
    finally:
        engine.dispose()
