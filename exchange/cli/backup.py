"""`exchange admin backup|restore` (the database) and `keyring-backup|keyring-restore` (the
keyring, sealed with a passphrase, kept apart from database backups)."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from audit.entry import AuditEntry, Outcome
from audit.store import AuditLog, append
from exchange.backup import (
    BackupError,
    KnownCheckpoint,
    backup,
    checkpoints_in_database,
    known_checkpoint,
    plan_restore,
    restore,
)
from exchange.bootstrap import load_keyring
from exchange.cli.errors import CliError, fail_cleanly
from exchange.db.engine import make_engine, make_session_factory, unit_of_work
from exchange.services.audit_access import log_signer
from exchange.services.key_events import CLI_ACTOR
from exchange.settings import get_settings
from keys.backup import open_keyring_backup, seal_keyring_backup

RESTORED = "backup.restore"


def _now() -> datetime:
    return datetime.now(UTC)


@fail_cleanly
def backup_command(
    out: Annotated[Path, typer.Option("--out", help="A new directory for the backup")],
) -> None:
    """Consistent online backup of the database (never the keyring: see keyring-backup)."""
    settings = get_settings()
    signer = log_signer(load_keyring(settings))  # names the log's origin in the export
    try:
        manifest = backup(settings.database_url, out, now=_now(), signer=signer)
    except BackupError as exc:
        raise CliError(str(exc)) from None
    typer.echo(f"backup {out}: {manifest.dialect}, schema {manifest.revision}, audit log "
               f"{manifest.tree_size} entries (latest checkpoint {manifest.latest_checkpoint})")


@fail_cleanly
def restore_command(
    source: Annotated[Path, typer.Option("--from", help="A directory made by `admin backup`")],
    checkpoint: Annotated[list[Path] | None, typer.Option(
        "--checkpoint", help="A checkpoint note an auditor holds (repeatable)")] = None,
    replace: Annotated[bool, typer.Option(
        "--replace", help="Replace a database that is not empty (e.g. a damaged one)")] = False,
    allow_older_log: Annotated[bool, typer.Option(
        "--allow-older-log",
        help="Restore even if auditors may hold a newer checkpoint (they will see the "
             "rollback; tell them)")] = False,
) -> None:
    """Restore a backup, refusing one whose audit log is older than a checkpoint auditors hold."""
    settings = get_settings()
    key = log_signer(load_keyring(settings)).verifier
    try:
        known: list[KnownCheckpoint] = list(checkpoints_in_database(settings.database_url, key))
        for path in checkpoint or []:
            try:
                note = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise CliError(f"cannot read {path}: {exc}") from None
            known.append(known_checkpoint(str(path), note, key))
        plan = plan_restore(source, known, key, allow_older_log=allow_older_log)
        restore(settings.database_url, source, plan, replace=replace, now=_now())
    except BackupError as exc:
        raise CliError(str(exc)) from None
    _record_restore(settings.database_url, plan.manifest.tree_size,
                    plan.newest.checkpoint.size if plan.newest else None, allow_older_log)
    typer.echo(f"restored {source}: audit log {plan.manifest.tree_size} entries; run "
               "`exchange audit fsck`, then `exchange db upgrade` if the code is newer")


def _record_restore(url: str, size: int, known: int | None, older_allowed: bool) -> None:
    """The restore itself goes into the restored log, after fsck found it sound."""
    engine = make_engine(url)
    try:
        factory = make_session_factory(engine)
        with factory() as session:
            report = AuditLog(session).fsck()
        if not report.ok:
            raise CliError(f"the restored audit log fails fsck: {report.problems[0]}")
        details: dict[str, int | bool] = {"backup.tree_size": size,
                                          "older_log_allowed": older_allowed}
        if known is not None:
            details["known_checkpoint.size"] = known
        with unit_of_work(factory) as session:
            append(session, AuditEntry(time=_now(), actor=CLI_ACTOR, action=RESTORED,
                                       outcome=Outcome("ok"), details=details))
    finally:
        engine.dispose()


def _passphrase(passphrase_file: Path | None, *, confirm: bool) -> str:
    if passphrase_file is not None:
        return passphrase_file.read_text(encoding="utf-8").rstrip("\n")
    if not sys.stdin.isatty():
        raise CliError("give --passphrase-file (no terminal to ask for a passphrase)")
    return str(typer.prompt("backup passphrase", hide_input=True,
                            confirmation_prompt=confirm))


PassphraseFile = Annotated[Path | None, typer.Option(
    "--passphrase-file", help="Read the passphrase from this file (else prompt)")]


@fail_cleanly
def keyring_backup_command(
    out: Annotated[Path, typer.Option("--out", help="File to write the sealed keyring to")],
    passphrase_file: PassphraseFile = None,
) -> None:
    """Seal the keyring with a passphrase (scrypt + AES-256-GCM); store it apart from the
    database backups, and the passphrase apart from both."""
    settings = get_settings()
    load_keyring(settings)  # the same checks as serving: never back up a file we would refuse
    if out.exists():
        raise CliError(f"{out} exists; give a new file")
    sealed = seal_keyring_backup(settings.keyring_file.read_bytes(),
                                 _passphrase(passphrase_file, confirm=True))
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(sealed)
    typer.echo(f"sealed keyring backup {out}")


@fail_cleanly
def keyring_restore_command(
    source: Annotated[Path, typer.Option("--from", help="A sealed keyring backup")],
    passphrase_file: PassphraseFile = None,
) -> None:
    """Open a sealed keyring backup into EXCHANGE_KEYRING_PATH (mode 0600; never overwrites)."""
    settings = get_settings()
    target = settings.keyring_file
    if target.exists():
        raise CliError(f"{target} exists; move it away first")
    data = open_keyring_backup(source.read_bytes(), _passphrase(passphrase_file, confirm=False))
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    load_keyring(settings)  # it must load as it did before
    typer.echo(f"keyring restored to {target}")


def register(app: typer.Typer) -> None:
    app.command("backup")(backup_command)
    app.command("restore")(restore_command)
    app.command("keyring-backup")(keyring_backup_command)
    app.command("keyring-restore")(keyring_restore_command)
