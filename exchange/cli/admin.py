"""`exchange admin`: initialise a home (database + keyring) and manage principals' tokens.

Tokens are printed once, when issued; only their hash is stored.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from exchange.api.auth import issue_token, revoke
from exchange.cli.errors import CliError, fail_cleanly
from exchange.cli.flags import App
from exchange.db import models as m
from exchange.db.engine import make_engine, make_session_factory, unit_of_work
from exchange.db.migrate import upgrade
from exchange.db.models.codes import ROLES
from exchange.services.errors import FlowError
from exchange.services.log_origin import fix_origin
from exchange.services.published_policies import ensure_defaults
from exchange.settings import Settings, get_settings
from keys.errors import KeysError
from keys.providers import FileKeyring

app = App(help="Initialise the broker and manage principals.", no_args_is_help=True)
principal_app = App(help="API principals and their bearer tokens.", no_args_is_help=True)
app.add_typer(principal_app, name="principal")


@dataclass(frozen=True)
class InitResult:
    home: Path
    keyring_created: bool
    development_keys: bool
    origin_fixed_now: bool = False
    policies_published: int = 0


def init_home(settings: Settings, *, development: bool) -> InitResult:
    """Create the home directory (0700), a keyring (0600) if missing, migrate the database, fix
    the audit log's origin (refused if another one is fixed already) and publish the shipped
    policies that are not published yet (the office's defaults)."""
    if settings.is_production and "audit_origin" not in settings.model_fields_set:
        raise CliError("production mode: set EXCHANGE_AUDIT_ORIGIN to this office's log name, "
                       "e.g. chengyang.example.gov.cn/exchange/audit (fixed at init)")  # fmt: skip
    home = settings.home
    home.mkdir(parents=True, exist_ok=True)
    os.chmod(home, 0o700)
    created = False
    path = settings.keyring_file
    try:
        if path.exists():
            provider = FileKeyring.load(path)
        else:
            provider = FileKeyring.create(path, development=development)
            created = True
    except KeysError as exc:
        raise CliError(str(exc)) from None
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            fixed_now = fix_origin(session, settings.audit_origin)
            defaults = ensure_defaults(session, _utcnow())  # the shipped policies
    except FlowError as exc:
        raise CliError(exc.detail) from None
    finally:
        engine.dispose()
    return InitResult(home, created, provider.is_development, fixed_now, len(defaults))


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _communities(session: Session, names: Sequence[str]) -> list[m.Community]:
    rows = list(session.scalars(select(m.Community).where(m.Community.name.in_(names))))
    missing = sorted(set(names) - {r.name for r in rows})
    if missing:
        raise CliError(f"unknown community: {', '.join(missing)}")
    return rows


def create_principal(
    session: Session,
    name: str,
    role: str,
    *,
    display_name: str | None = None,
    communities: Sequence[str] = (),
    contractor: str | None = None,
) -> m.Principal:
    """A new principal without a token (call `issue_token`). Never commits."""
    if role not in ROLES:
        raise CliError(f"unknown role {role!r}; one of: {', '.join(ROLES)}")
    if session.scalars(select(m.Principal).where(m.Principal.name == name)).first():
        raise CliError(f"principal {name!r} already exists")
    if (role == "contractor") != (contractor is not None):
        raise CliError("--contractor is required for role contractor and allowed only for it")
    if communities and role != "community_cadre":
        raise CliError("--community applies only to role community_cadre")
    if role == "community_cadre" and not communities:
        raise CliError("a community_cadre needs at least one --community")
    contractor_id = None
    if contractor is not None:
        row = session.scalars(select(m.Contractor).where(m.Contractor.name == contractor)).first()
        if row is None:
            raise CliError(f"unknown contractor {contractor!r}")
        contractor_id = row.id
    principal = m.Principal(
        name=name, role=role, display_name=display_name or name, contractor_id=contractor_id
    )
    principal.communities = _communities(session, communities)
    session.add(principal)
    session.flush()
    return principal


def find_principal(session: Session, name: str) -> m.Principal:
    row = session.scalars(select(m.Principal).where(m.Principal.name == name)).first()
    if row is None:
        raise CliError(f"no principal named {name!r}")
    return row


def _factory(settings: Settings) -> sessionmaker[Session]:
    return make_session_factory(make_engine(settings.database_url))


@app.command("init")
@fail_cleanly
def init_command(
    home: Annotated[Path | None, typer.Option("--home", help="Default: $EXCHANGE_HOME")] = None,
) -> None:
    """Create the home directory, a keyring (mode 0600) and the database schema."""
    settings = Settings(home=home) if home else get_settings()
    result = init_home(settings, development=not settings.is_production)
    kind = "development" if result.development_keys else "production"
    action = "created" if result.keyring_created else "kept existing"
    origin = "fixed" if result.origin_fixed_now else "as fixed before"
    typer.echo(f"home {result.home}: {action} {kind} keyring, database migrated, "
               f"audit origin {settings.audit_origin} ({origin}), "
               f"{result.policies_published} shipped policies published")  # fmt: skip


@principal_app.command("create")
@fail_cleanly
def principal_create(
    name: Annotated[str, typer.Argument(help="Unique handle, e.g. cadre-mcl-01")],
    role: Annotated[str, typer.Option("--role", help=f"One of: {', '.join(ROLES)}")],
    display_name: Annotated[str | None, typer.Option("--display-name")] = None,
    community: Annotated[list[str] | None, typer.Option("--community", help="Repeatable")] = None,
    contractor: Annotated[str | None, typer.Option("--contractor", help="Contractor name")] = None,
    ttl_days: Annotated[int, typer.Option("--ttl-days", min=1, max=3650)] = 90,
) -> None:
    """Create a principal and print its token once."""
    settings = get_settings()
    with unit_of_work(_factory(settings)) as session:
        row = create_principal(
            session,
            name,
            role,
            display_name=display_name,
            communities=community or [],
            contractor=contractor,
        )
        token = issue_token(row, now=_utcnow(), ttl=timedelta(days=ttl_days))
    typer.echo(f"TOKEN {role} {token}")


@principal_app.command("rotate")
@fail_cleanly
def principal_rotate(
    name: str, ttl_days: Annotated[int, typer.Option("--ttl-days", min=1, max=3650)] = 90
) -> None:
    """Replace a principal's token (the old one stops working) and print the new one once."""
    with unit_of_work(_factory(get_settings())) as session:
        row = find_principal(session, name)
        if row.revoked_at is not None:
            raise CliError(f"principal {name!r} is revoked")
        token = issue_token(row, now=_utcnow(), ttl=timedelta(days=ttl_days))
        role = row.role
    typer.echo(f"TOKEN {role} {token}")


@principal_app.command("revoke")
@fail_cleanly
def principal_revoke(name: str) -> None:
    """Revoke a principal: its token stops working at once."""
    with unit_of_work(_factory(get_settings())) as session:
        revoke(find_principal(session, name), now=_utcnow())
    typer.echo(f"revoked {name}")


@principal_app.command("list")
@fail_cleanly
def principal_list() -> None:
    """Principals with role, scope and token state (never the token)."""
    with unit_of_work(_factory(get_settings())) as session:
        rows = session.scalars(select(m.Principal).order_by(m.Principal.name)).all()
        for row in rows:
            state = "revoked" if row.revoked_at else ("active" if row.token_hash else "no token")
            scope = ",".join(sorted(c.name for c in row.communities)) or "-"
            expires = row.token_expires_at.date().isoformat() if row.token_expires_at else "-"
            typer.echo(f"{row.name}\t{row.role}\t{state}\texpires {expires}\t{scope}")
