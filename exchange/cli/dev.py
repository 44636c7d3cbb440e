"""`exchange dev up`: what `make run` calls — initialise, load the demo, print tokens, serve.

A first run creates $EXCHANGE_HOME, a development keyring, the schema, the synthetic demo
ledger, two demo contractors and the demo principals. Later runs reuse all of it and only issue
fresh tokens (only hashes are stored, so re-issuing is the way to print them again). Every run
rewrites a sample ledger and the import template, dated that day, in $EXCHANGE_HOME/samples/.
fresh tokens (only hashes are stored, so re-issuing is the way to print them again). A fresh
token is one more token: the tokens another instance on the same database printed keep
working until they expire.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exchange.bootstrap import audit_probe, load_keyring
from exchange.cli.admin import create_principal, init_home
from exchange.cli.errors import CliError, fail_cleanly
from exchange.cli.flags import App
from exchange.db import models as m
from exchange.db.engine import make_engine, make_session_factory, unit_of_work
from exchange.ledger.synthetic import write_ledger
from exchange.ledger.template import write_template
from exchange.services.accounts import ensure_account
from exchange.services.log_origin import check_origin_when_reachable
from exchange.services.tokens import issue_token, prune_expired
from exchange.services.web_sessions import end_all_for
from exchange.settings import Settings
from keys.keyring import Keyring
from policies import office_date

app = App(help="Developer conveniences.", no_args_is_help=True)

DEMO_COMMUNITIES = ("民城路社区", "瑞阳路社区")
DEMO_CONTRACTORS = ("青岛安心母婴健康服务有限公司", "青岛启航家庭健康服务中心")
DEMO_TOKEN_TTL = timedelta(days=7)
SAMPLE_ROWS, SAMPLE_SEED = 12, 2025
# the demo principals who sign in to the console (contractors are machines: API only)
CONSOLE_LOGINS = ("office_admin", "community_cadre", "auditor")


@dataclass(frozen=True)
class DemoPrincipal:
    label: str  # printed role label (contractor_b is a second contractor)
    name: str
    role: str
    communities: tuple[str, ...] = ()
    contractor: str | None = None


DEMO_PRINCIPALS = (
    DemoPrincipal("office_admin", "demo-office-admin", "office_admin"),
    DemoPrincipal("community_cadre", "demo-cadre", "community_cadre", DEMO_COMMUNITIES),
    DemoPrincipal("contractor", "demo-contractor", "contractor", contractor=DEMO_CONTRACTORS[0]),
    DemoPrincipal(
        "contractor_b", "demo-contractor-b", "contractor", contractor=DEMO_CONTRACTORS[1]
    ),
    DemoPrincipal("auditor", "demo-auditor", "auditor"),
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def load_demo_if_empty(session: Session, keyring: Keyring, say: Callable[[str], None]) -> None:
    if session.scalar(select(func.count()).select_from(m.Resident)):
        return
    try:
        from exchange.ledger.demo import load_demo
    except ImportError:
        say("demo ledger: exchange.ledger.demo not available, skipped")
        _ensure_demo_communities(session)
        return
    report = load_demo(session, keyring)
    if not report.ok:
        raise CliError(f"demo ledger did not load cleanly ({report.error_count} row errors)")
    # an import like any other: audited, under the CLI's system actor (no principal loads it)
    from exchange.services.imports import record_system_import
    from exchange.services.key_events import CLI_ACTOR

    record_system_import(session, CLI_ACTOR, _utcnow(), "demo ledger: exchange.ledger.demo "
                         "load_demo (default seed and size)", report)  # fmt: skip
    say(f"demo ledger: {report.inserted} synthetic residents loaded")


def _ensure_demo_communities(session: Session) -> None:
    for name in DEMO_COMMUNITIES:
        if not session.scalars(select(m.Community).where(m.Community.name == name)).first():
            session.add(m.Community(name=name, district="城阳区", street="城阳街道"))
    session.flush()


def ensure_demo_contractors(session: Session) -> None:
    for name in DEMO_CONTRACTORS:
        if session.scalars(select(m.Contractor).where(m.Contractor.name == name)).first():
            continue
        contractor = m.Contractor(name=name)
        session.add(contractor)
        session.flush()
        session.add(m.FeedCounter(contractor_id=contractor.id, last_seq=0))
    session.flush()


def issue_demo_tokens(session: Session, now: datetime) -> list[tuple[str, str]]:
    """Create missing demo principals; give every one a fresh token (their earlier tokens stay
    valid until they expire). Returns (label, token)."""
    _ensure_demo_communities(session)
    prune_expired(session, now)
    ensure_demo_contractors(session)
    out = []
    for demo in DEMO_PRINCIPALS:
        row = session.scalars(select(m.Principal).where(m.Principal.name == demo.name)).first()
        if row is None:
            row = create_principal(
                session,
                demo.name,
                demo.role,
                display_name=demo.name,
                communities=demo.communities,
                contractor=demo.contractor,
            )
        row.revoked_at = None
        out.append((demo.label, issue_token(row, now=now, ttl=DEMO_TOKEN_TTL)))
    return out


def write_samples(home: Path, today: date) -> tuple[Path, Path]:
    """A sample ledger and the import template, dated `today` (rewritten on every run, so they
    are always valid to import): $EXCHANGE_HOME/samples/."""
    folder = home / "samples"
    folder.mkdir(parents=True, exist_ok=True)
    sample, template = folder / "ledger-sample.csv", folder / "ledger-template.xlsx"
    write_ledger(sample, SAMPLE_ROWS, SAMPLE_SEED, as_of=today)
    write_template(template, today)
    return sample, template


def demo_password() -> str:
    """A fresh random password that meets the console's rules (printed once, like tokens)."""
    return f"Cy-{secrets.token_urlsafe(9)}-{secrets.randbelow(900) + 100}"


def issue_demo_logins(session: Session, now: datetime) -> list[tuple[str, str, str]]:
    """A fresh console password for each demo console user: (role, user name, password)."""
    out = []
    for demo in DEMO_PRINCIPALS:
        if demo.label not in CONSOLE_LOGINS:
            continue
        row = session.scalars(select(m.Principal).where(m.Principal.name == demo.name)).one()
        password = demo_password()
        ensure_account(session, row, password, now)
        end_all_for(session, row.id, "password_changed", now)
        out.append((demo.label, demo.name, password))
    return out


def prepare(settings: Settings, say: Callable[[str], None]) -> list[tuple[str, str]]:
    """Everything `dev up` does before serving; returns the (label, token) pairs."""
    tokens, _logins = prepare_with_logins(settings, say)
    return tokens


def prepare_with_logins(
    settings: Settings, say: Callable[[str], None]
) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
    """`prepare`, plus the demo console logins (role, user name, password)."""
    if settings.is_production:
        raise CliError("dev up runs in development mode only; unset EXCHANGE_MODE")
    result = init_home(settings, development=True)
    if result.keyring_created:
        say(f"created development keyring {settings.keyring_file}")
    keyring = load_keyring(settings)
    engine = make_engine(settings.database_url)
    try:
        factory = make_session_factory(engine)
        with unit_of_work(factory) as session:
            load_demo_if_empty(session, keyring, say)
        with unit_of_work(factory) as session:
            tokens = issue_demo_tokens(session, _utcnow())
        with unit_of_work(factory) as session:
            logins = issue_demo_logins(session, _utcnow())
        with unit_of_work(factory) as session:
            load_demo_scenario(session, keyring, settings, say)
        sample, template = write_samples(settings.home, office_date(_utcnow()))
        say(f"samples dated today: {sample} (import it: exchange import residents {sample} "
            f"--as demo-office-admin), template: {template}")  # fmt: skip
        return tokens, logins
    finally:
        engine.dispose()


def load_demo_scenario(
    session: Session, keyring: Keyring, settings: Settings, say: Callable[[str], None]
) -> None:
    """Agreements, contractor keys, consents and assignments (exchange.demo); idempotent."""
    from exchange.demo import load_scenario

    labels = {DEMO_CONTRACTORS[0]: "contractor", DEMO_CONTRACTORS[1]: "contractor_b"}
    load_scenario(session, keyring, home=settings.home, now=_utcnow(), contractor_labels=labels,
                  say=say)  # fmt: skip


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def curl_examples(base: str, tokens: dict[str, str]) -> list[str]:
    def auth(label: str) -> str:
        return f'-H "Authorization: Bearer {tokens.get(label, "<token>")}"'

    return [
        f"curl -s {base}/healthz",
        f"curl -s {base}/readyz",
        f"curl -s {auth('community_cadre')} '{base}/v1/residents?limit=5'",
        f"curl -s {auth('community_cadre')} '{base}/v1/assignments?limit=5'",
        f"curl -s {auth('office_admin')} {base}/v1/agreements",
        f"curl -s {auth('office_admin')} {base}/v1/contractors",
        f"curl -s {auth('contractor')} '{base}/v1/cases?purpose=home_visit&limit=5'",
        f"curl -s {auth('contractor_b')} '{base}/v1/cases?purpose=online_guidance&limit=5'",
        f"curl -s {auth('auditor')} {base}/v1/audit/checkpoint",
        f"curl -s {auth('auditor')} '{base}/v1/audit/entries?action=case.disclose&limit=3'",
        f"curl -s {base}/openapi.json | head -c 300",
    ]


@app.command("up")
@fail_cleanly
def up(
    home: Annotated[
        Path | None, typer.Option("--home", help="Default: $EXCHANGE_HOME or var/")
    ] = None,
    port: Annotated[int | None, typer.Option("--port", min=1, max=65535)] = None,
) -> None:
    """Initialise $EXCHANGE_HOME, load the demo, print one TOKEN line per principal, serve."""
    overrides: dict[str, object] = {}
    if home is not None:
        overrides["home"] = home
    if port is not None:
        overrides["port"] = port
    settings = Settings(**overrides)  # type: ignore[arg-type]
    if not port_is_free(settings.host, settings.port):
        raise CliError(f"port {settings.port} on {settings.host} is in use; set EXCHANGE_PORT")
    tokens, logins = prepare_with_logins(settings, lambda line: typer.echo(line, err=True))
    for label, token in tokens:
        typer.echo(f"TOKEN {label} {token}")
    for role, name, password in logins:
        typer.echo(f"LOGIN {role} {name} {password}")
    base = f"http://{settings.host}:{settings.port}"
    typer.echo(f"CONSOLE {base}/console/")
    for line in curl_examples(base, dict(tokens)):
        typer.echo(line)
    serve(settings)


def serve(settings: Settings) -> None:
    import uvicorn

    from exchange.api.app import create_app
    from exchange.logs import configure_logging

    configure_logging(settings.effective_log_format, settings.log_level)
    keyring = load_keyring(settings)
    engine = make_engine(settings.database_url)
    check_origin_when_reachable(engine, settings.audit_origin)
    application = create_app(
        settings,
        session_factory=make_session_factory(engine),
        keyring=keyring,
        audit_probe=audit_probe(engine),
    )
    uvicorn.run(
        application, host=settings.host, port=settings.port, log_config=None, access_log=False,
        proxy_headers=False,  # exchange.api.client_cert applies trusted proxies' headers
    )
