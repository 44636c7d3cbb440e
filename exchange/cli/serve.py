"""`exchange serve` (run the broker for real) and `exchange db upgrade|status`.

`serve` starts nothing it has not checked: in production it refuses development keys, a keyring
readable by group or others or not a regular file, and SQLite unless allowed; it refuses a
database that is not initialised, behind the code or ahead of it. It never migrates: `exchange
admin init` creates a database, `exchange db upgrade` migrates one. No demo data, no tokens.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer
from alembic.script import ScriptDirectory

from exchange.bootstrap import load_keyring
from exchange.cli.dev import port_is_free
from exchange.cli.errors import CliError, fail_cleanly
from exchange.cli.flags import App
from exchange.clientcert import ClientCertError, TrustedProxies
from exchange.db.engine import make_engine
from exchange.db.migrate import alembic_config, current_revision, head_revision, upgrade
from exchange.settings import Settings, check_production, get_settings

db_app = App(help="Database schema: status and upgrade (never automatic).", no_args_is_help=True)


def database_revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        return current_revision(engine)
    finally:
        engine.dispose()


def schema_problem(url: str) -> str | None:
    """Why the database at `url` cannot be served by this code, or None."""
    current = database_revision(url)
    head = head_revision()
    if current == head:
        return None
    if current is None:
        return "the database is not initialised; run `exchange admin init`"
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    known = {rev.revision for rev in script.walk_revisions()}
    if current in known:
        return (f"the database schema ({current}) is behind the code ({head}); "
                "run `exchange db upgrade`")
    return (f"the database schema ({current}) is newer than this code ({head}); "
            "deploy the matching release")


def _overrides(host: str | None, port: int | None, workers: int | None,
               forwarded: str | None) -> dict[str, str]:
    """CLI options as EXCHANGE_* variables, so spawned workers build the same settings."""
    out = {}
    for name, value in (("HOST", host), ("PORT", port), ("WORKERS", workers),
                        ("FORWARDED_ALLOW_IPS", forwarded)):
        if value is not None:
            out[f"EXCHANGE_{name}"] = str(value)
    return out


def preflight(settings: Settings) -> None:
    """Every refusal, one line each, before any worker starts."""
    check_production(settings, development_keys=False)
    load_keyring(settings)  # production: keyring file checks, then development keys
    try:
        TrustedProxies.parse(settings.forwarded_allow_ips)
    except ClientCertError as exc:
        raise CliError(f"--forwarded-allow-ips: {exc}") from None
    problem = schema_problem(settings.database_url)
    if problem is not None:
        raise CliError(problem)
    if not port_is_free(settings.host, settings.port):
        raise CliError(f"port {settings.port} on {settings.host} is in use")


@fail_cleanly
def serve(
    host: Annotated[str | None, typer.Option(help="Default: $EXCHANGE_HOST or 127.0.0.1")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535,
                                             help="Default: $EXCHANGE_PORT or 8000")] = None,
    workers: Annotated[int | None, typer.Option(min=1, max=64,
                                                help="Processes (default: $EXCHANGE_WORKERS or 1)")
                       ] = None,
    forwarded_allow_ips: Annotated[str | None, typer.Option(
        "--forwarded-allow-ips",
        help="The TLS proxy's addresses (comma-separated IPs or networks); only their "
             "Client-Cert and X-Forwarded-* headers are believed")] = None,
    balance: Annotated[str, typer.Option(
        help="reuseport: one SO_REUSEPORT socket per worker (even spread of keep-alive "
             "connections); shared: one socket for all")] = "reuseport",
) -> None:
    """Serve the broker from the settings: no demo data, no tokens, no migrations."""
    from exchange.logs import configure_logging
    from exchange.serving import ServeSpec, Supervisor, serve_in_process

    if balance not in ("reuseport", "shared"):
        raise CliError("--balance is reuseport or shared")
    os.environ.update(_overrides(host, port, workers, forwarded_allow_ips))
    get_settings.cache_clear()
    settings = get_settings()
    preflight(settings)  # refusals are one line on stderr, before any logging is set up
    configure_logging(settings.effective_log_format, settings.log_level)
    spec = ServeSpec(settings.host, settings.port, settings.drain_seconds,
                     "reuseport" if balance == "reuseport" else "shared")
    if settings.workers == 1:
        code = serve_in_process(spec)
    else:
        code = Supervisor(spec, settings.workers).run()
    if code:
        raise typer.Exit(code)


@db_app.command("status")
@fail_cleanly
def db_status() -> None:
    """The database's schema revision and the code's."""
    settings = get_settings()
    current = database_revision(settings.database_url)
    problem = schema_problem(settings.database_url)
    typer.echo(f"database {current or '-'}, code {head_revision()}: {problem or 'up to date'}")


@db_app.command("upgrade")
@fail_cleanly
def db_upgrade() -> None:
    """Migrate the database to this code's schema (take a backup first: `exchange admin
    backup`). Stop or drain the servers of the old release before, start the new ones after."""
    settings = get_settings()
    before = database_revision(settings.database_url)
    if before is None:
        raise CliError("the database is not initialised; run `exchange admin init`")
    upgrade(settings.database_url)
    typer.echo(f"database upgraded from {before} to {head_revision()}")
