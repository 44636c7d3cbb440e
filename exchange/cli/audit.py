"""`exchange audit ...`: offline verification for auditors; export, fsck, checkpoints and the
verifier key for operators."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
import typer
from sqlalchemy.orm import Session, sessionmaker

from audit.errors import AuditError
from audit.note import Signer, Verifier
from audit.verifier import verify_export
from exchange.cli.errors import CliError, fail_cleanly
from exchange.cli.flags import App

app = App(help="Audit log: verify an export offline, export, fsck, checkpoint, vkey.",
          no_args_is_help=True)

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

DatabaseUrl = Annotated[
    str | None, typer.Option("--database-url", help="Defaults to EXCHANGE_DATABASE_URL.")
]


def _text_or_file(value: str) -> str:
    path = Path(value)
    if path.is_file():
        return path.read_text(encoding="utf-8")
    return value


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _signer(database_url: str | None = None) -> Signer:
    """The log's signing key from the keyring named by the settings (production rules apply),
    under the origin fixed for this database at `admin init` (refused if the setting differs)."""
    from exchange.bootstrap import load_keyring
    from exchange.db.engine import make_engine
    from exchange.services.audit_access import log_signer
    from exchange.services.log_origin import check_origin
    from exchange.settings import get_settings

    settings = get_settings()
    engine = make_engine(database_url or settings.database_url)
    try:
        check_origin(engine, settings.audit_origin)
    finally:
        engine.dispose()
    return log_signer(load_keyring(settings))


def _session_factory(database_url: str | None) -> sessionmaker[Session]:
    from exchange.db.engine import make_engine, make_session_factory
    from exchange.settings import get_settings

    url = database_url or get_settings().database_url
    return make_session_factory(make_engine(url))


@app.command()
def verify(
    export: Annotated[Path, typer.Argument(help="Export file (JSON lines).")],
    vkey: Annotated[str, typer.Option(help="The log's verifier key, or a file holding it.")],
    checkpoint: Annotated[
        Path | None, typer.Option(help="Signed checkpoint to verify up to (default: newest "
                                       "in the export).")] = None,
    since: Annotated[
        Path | None, typer.Option(help="An earlier checkpoint you kept; the log must extend it.")
    ] = None,
    deep: Annotated[bool, typer.Option(help="Also validate every entry's schema.")] = False,
    workers: Annotated[int, typer.Option(min=1, help="Processes hashing entries (default: "
                                                     "one per CPU).")] = os.cpu_count() or 1,
) -> None:
    """Recompute the tree from EXPORT and check it against signed checkpoints. No database."""
    try:
        key = Verifier.parse(_text_or_file(vkey).strip())
        cp = checkpoint.read_text(encoding="utf-8") if checkpoint else None
        old = since.read_text(encoding="utf-8") if since else None
    except (AuditError, OSError, UnicodeDecodeError) as exc:
        raise _fail(f"error: {exc}", EXIT_BAD_INPUT) from None
    try:
        with export.open("rb") as lines:
            verdict = verify_export(lines, key, checkpoint=cp, since=old, deep=deep,
                                    workers=workers)
    except OSError as exc:
        raise _fail(f"error: cannot read {export}: {exc.strerror}", EXIT_BAD_INPUT) from None
    if not verdict.ok:
        raise _fail(verdict.summary(), EXIT_FAILED)
    typer.echo(verdict.summary())


@app.command("export")
def export_(
    out: Annotated[Path, typer.Option(help="File to write the JSON-lines export to.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Write every entry and checkpoint as JSON lines, for `exchange audit verify`."""
    from audit.store import AuditLog
    from exchange.services.log_origin import stored_origin

    factory = _session_factory(database_url)
    tmp = out.with_name(out.name + ".partial")
    count = 0
    with factory() as session, tmp.open("w", encoding="utf-8") as fh:
        origin = stored_origin(session) if _has_fixed_settings(session) else None
        for line in AuditLog(session).export(origin):
            fh.write(line)
            count += 1
    tmp.replace(out)
    typer.echo(f"wrote {out} ({count} lines)")


def _has_fixed_settings(session: Session) -> bool:
    """A database from before the origin was fixed at `admin init` has no such table."""
    return sa.inspect(session.connection()).has_table("fixed_settings")


@app.command()
def fsck(
    vkey: Annotated[
        str | None, typer.Option(help="Also verify stored checkpoint signatures.")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Recompute every stored hash, index and checkpoint in the database."""
    from audit.store import AuditLog

    key = Verifier.parse(_text_or_file(vkey).strip()) if vkey else None
    with _session_factory(database_url)() as session:
        report = AuditLog(session).fsck(key)
    for problem in report.problems:
        typer.echo(f"PROBLEM {problem}", err=True)
    if report.recovery is not None:
        typer.echo("\n" + report.recovery, err=True)
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)
    typer.echo(f"OK: {report.entries} entries, head {report.head_size}, "
               f"{report.checkpoints} checkpoints recomputed")


@app.command()
@fail_cleanly
def checkpoint(database_url: DatabaseUrl = None) -> None:
    """Sign the current tree head, store it, and print the signed checkpoint note.

    Idempotent per tree size: with no new entries it prints the stored checkpoint again.
    """
    from audit.store import AuditLog
    from exchange.db.engine import unit_of_work

    signer = _signer(database_url)
    try:
        with unit_of_work(_session_factory(database_url)) as session:
            stored = AuditLog(session, signer=signer).issue_checkpoint()
    except AuditError as exc:
        raise CliError(str(exc)) from None
    typer.echo(stored.note, nl=False)


@app.command()
@fail_cleanly
def vkey(database_url: DatabaseUrl = None) -> None:
    """Print the log's verifier key (publish it; auditors pass it to `verify --vkey`)."""
    typer.echo(_signer(database_url).verifier.text())
