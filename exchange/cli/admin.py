"""`exchange admin`: initialise a home (database + keyring) and manage principals' tokens.

Tokens are printed once, when issued; only their hash is stored (exchange.services.tokens).
A contractor's token can be bound to its client certificate (`--cert`, RFC 8705).
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

from exchange.cli.errors import CliError, fail_cleanly
from exchange.cli.flags import App
from exchange.clientcert import ClientCertError, is_thumbprint, load_certificate_file, summarise
from exchange.db import models as m
from exchange.db.engine import make_engine, make_session_factory, unit_of_work
from exchange.db.migrate import upgrade
from exchange.db.models.codes import ROLES
from exchange.services import system_tokens, tokens
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
    """A new principal without a token (call `tokens.issue_token`). Never commits."""
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


def _binding(cert: Path | None, thumbprint: str | None) -> str | None:
    """The RFC 8705 thumbprint from --cert (PEM or DER file) or --cert-thumbprint."""
    if cert is not None and thumbprint is not None:
        raise CliError("give --cert or --cert-thumbprint, not both")
    if thumbprint is not None:
        if not is_thumbprint(thumbprint):
            raise CliError("--cert-thumbprint must be a base64url SHA-256 (43 characters)")
        return thumbprint
    if cert is None:
        return None
    try:
        summary = summarise(load_certificate_file(cert))
    except ClientCertError as exc:
        raise CliError(str(exc)) from None
    typer.echo(f"bound to certificate {summary.subject} (issuer {summary.issuer}, "
               f"valid until {summary.not_after}, x5t#S256 {summary.thumbprint})", err=True)
    return summary.thumbprint


CertOption = Annotated[Path | None, typer.Option(
    "--cert", help="Bind the token to this client certificate (PEM or DER; RFC 8705)")]
ThumbprintOption = Annotated[str | None, typer.Option(
    "--cert-thumbprint", help="Bind the token to a certificate by its x5t#S256")]
TtlOption = Annotated[int, typer.Option("--ttl-days", min=1, max=3650, help="Token lifetime")]


@principal_app.command("create")
@fail_cleanly
def principal_create(
    name: Annotated[str, typer.Argument(help="Unique handle, e.g. cadre-mcl-01")],
    role: Annotated[str, typer.Option("--role", help=f"One of: {', '.join(ROLES)}")],
    display_name: Annotated[str | None, typer.Option("--display-name")] = None,
    community: Annotated[list[str] | None, typer.Option("--community", help="Repeatable")] = None,
    contractor: Annotated[str | None, typer.Option("--contractor", help="Contractor name")] = None,
    ttl_days: TtlOption = 90,
    cert: CertOption = None,
    cert_thumbprint: ThumbprintOption = None,
    unbound: Annotated[bool, typer.Option(
        "--unbound", help="Production: allow a contractor token without a certificate")] = False,
) -> None:
    """Create a principal and print its token once."""
    settings = get_settings()
    binding = _binding(cert, cert_thumbprint)
    if (settings.is_production and role == "contractor" and binding is None
            and not unbound):
        raise CliError("production contractor tokens are bound to a client certificate: "
                       "give --cert (or --unbound)")
    with unit_of_work(_factory(settings)) as session:
        row = create_principal(
            session,
            name,
            role,
            display_name=display_name,
            communities=community or [],
            contractor=contractor,
        )
        now = _utcnow()
        token = tokens.issue_token(row, now=now, ttl=timedelta(days=ttl_days),
                                   cnf_x5t_s256=binding)
        system_tokens.record_operator_change(session, "principal.create", row, now)
        system_tokens.record_operator_change(session, "token.issue", row, now, ttl_days=ttl_days)
    typer.echo(f"TOKEN {role} {token}")


@principal_app.command("rotate")
@fail_cleanly
def principal_rotate(
    name: str,
    ttl_days: TtlOption = 90,
    overlap_minutes: Annotated[int, typer.Option(
        "--overlap-minutes", min=0, max=7 * 24 * 60,
        help="Old tokens keep working this long (0: they stop now)")] = 0,
    cert: CertOption = None,
    cert_thumbprint: ThumbprintOption = None,
) -> None:
    """Issue a new token (printed once); the principal's old tokens stop, after the overlap.

    The new token keeps the old one's certificate binding unless --cert gives a new one."""
    binding = _binding(cert, cert_thumbprint)
    with unit_of_work(_factory(get_settings())) as session:
        row = find_principal(session, name)
        if row.revoked_at is not None:
            raise CliError(f"principal {name!r} is revoked")
        now = _utcnow()
        token = tokens.rotate(row, now=now, ttl=timedelta(days=ttl_days),
                              overlap=timedelta(minutes=overlap_minutes), cnf_x5t_s256=binding)
        system_tokens.record_operator_change(session, "token.issue", row, now, ttl_days=ttl_days)
        role = row.role
    typer.echo(f"TOKEN {role} {token}")


@principal_app.command("revoke")
@fail_cleanly
def principal_revoke(name: str) -> None:
    """Revoke a principal: every token it holds stops working at once."""
    with unit_of_work(_factory(get_settings())) as session:
        row, now = find_principal(session, name), _utcnow()
        tokens.revoke_principal(row, now=now)
        system_tokens.record_operator_change(session, "principal.revoke", row, now)
    typer.echo(f"revoked {name}")


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%dT%H:%MZ") if value else "-"


@principal_app.command("list")
@fail_cleanly
def principal_list() -> None:
    """Principals with role, token state, expiry, last use and scope (never a token).

    Last use is recorded at most once a minute per token, so it may lag by that much."""
    with unit_of_work(_factory(get_settings())) as session:
        rows = tokens.list_principals(session, _utcnow())
    typer.echo("name\trole\tstate\ttokens\texpires\tlast used\tcertificate\tscope")
    for row in rows:
        scope = ",".join(row.communities) or row.contractor or "-"
        bound = "bound" if row.cert_bound else "-"
        typer.echo(f"{row.name}\t{row.role}\t{row.state}\t{row.active_tokens}\t"
                   f"{_when(row.expires_at)}\t{_when(row.last_used_at)}\t{bound}\t{scope}")
