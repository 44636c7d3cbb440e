"""`exchange keys`: the office's key custody operations (docs/keys.md §Operating rotations).

Every operation is audited in the transaction that makes it. Output names versions, counts and
ids only, never key material or personal data; a failure is one `error:` line and exit code 1.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy.orm import Session, sessionmaker

from audit.errors import AuditError
from exchange.bootstrap import load_keyring
from exchange.cli.errors import CliError, fail_cleanly
from exchange.cli.flags import App
from exchange.db.engine import make_engine, make_session_factory, unit_of_work
from exchange.db.migrate import is_up_to_date
from exchange.exports import csv_text
from exchange.services import key_rotation
from exchange.services.errors import FlowError
from exchange.settings import get_settings
from keys.contractor_keys import ContractorPublicKey
from keys.keyring import Keyring
from keys.rotation import RemapRow, RotationProgress

app = App(help="Rotate, retire and inspect keys (office admin).", no_args_is_help=True)

REMAP_HEADER = ("old_case_reference", "new_case_reference")


def _now() -> datetime:
    return datetime.now(UTC)


@contextlib.contextmanager
def _runtime() -> Iterator[tuple[sessionmaker[Session], Keyring]]:
    """The configured database (migrated) and keyring; flow and audit errors as one line."""
    settings = get_settings()
    keyring = load_keyring(settings)
    engine = make_engine(settings.database_url)
    try:
        if not is_up_to_date(engine):
            raise CliError("the database schema is not up to date; run `exchange admin init`")
        try:
            yield make_session_factory(engine), keyring
        except FlowError as exc:
            raise CliError(exc.detail) from None
        except AuditError as exc:
            raise CliError(f"audit log append failed, nothing recorded ({exc})") from None
    finally:
        engine.dispose()


class _Progress:
    """A progress bar opened once the total is known, moved to a running count."""

    def __init__(self, stack: contextlib.ExitStack, label: str) -> None:
        self._stack, self._label = stack, label
        self._bar: Any = None
        self._shown = 0

    def start(self, total: int) -> None:
        self._bar = self._stack.enter_context(typer.progressbar(length=total, label=self._label))

    def reached(self, done: int) -> None:
        if self._bar is not None:
            self._bar.update(done - self._shown)
        self._shown = done


@app.command("rotate-root")
@fail_cleanly
def rotate_root_command(
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, max=100_000, help="Keys per committed batch")
    ] = key_rotation.DEFAULT_BATCH,
) -> None:
    """Add a root key version and re-wrap every data key under it, online and resumable.

    Run it again after an interruption: it continues after the last committed batch instead of
    adding another version. Old and new versions both unwrap until `retire-root`."""
    with _runtime() as (factory, keyring), contextlib.ExitStack() as stack:
        bar = _Progress(stack, "re-wrapping")

        def on_start(version: int, resumed: bool, total: int) -> None:
            verb = "resuming re-wrap under" if resumed else "added"
            typer.echo(f"{verb} root version {version}; {total} data keys to examine")
            bar.start(total)

        def on_batch(state: RotationProgress) -> None:
            bar.reached(state.examined)

        result = key_rotation.rotate_root(
            factory, keyring, _now, batch_size=batch_size, on_start=on_start, progress=on_batch
        )
    p = result.progress
    typer.echo(
        f"root version {result.version}: {p.rewrapped} data keys re-wrapped, "
        f"{p.skipped} already current or changed meanwhile"
    )


@app.command("reindex-phones")
@fail_cleanly
def reindex_phones_command(
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, max=100_000, help="Residents per committed batch")
    ] = key_rotation.DEFAULT_BATCH,
) -> None:
    """Index the phones of residents stored before the phone index (migration 0011).

    Online and resumable: each batch commits on its own and a second run continues with the
    rows still without an index. Until then the phone lookup decrypts those rows."""
    with _runtime() as (factory, keyring), contextlib.ExitStack() as stack:
        bar = _Progress(stack, "indexing phones")

        def on_start(left: int) -> None:
            typer.echo(f"{left} residents' phones to index")
            bar.start(left)

        done = key_rotation.reindex_phones(factory, keyring, _now, batch_size=batch_size,
                                           on_start=on_start, progress=bar.reached)  # fmt: skip
    typer.echo(f"phone indexes: {done} residents indexed")


@app.command("rotate-blind-index")
@fail_cleanly
def rotate_blind_index_command(
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, max=100_000, help="Residents per committed batch")
    ] = key_rotation.DEFAULT_BATCH,
) -> None:
    """Add a blind-index key version and re-index every stored ID number and phone under it.

    Online and crash-safe: imports and registrations keep working (they index under the new
    version and look up under both meanwhile); after an interruption run it again and it
    resumes. The old version is retired when every index has moved."""
    with _runtime() as (factory, keyring), contextlib.ExitStack() as stack:
        bar = _Progress(stack, "re-indexing")

        def on_start(old: int, new: int, resumed: bool, left: int) -> None:
            verb = "resuming" if resumed else "started"
            typer.echo(f"{verb} blind-index rotation v{old} -> v{new}; {left} residents to "
                       "re-index")  # fmt: skip
            bar.start(left)

        result = key_rotation.rotate_blind_index(
            factory, keyring, _now, batch_size=batch_size, on_start=on_start, progress=bar.reached
        )
    typer.echo(
        f"blind index v{result.to_version}: {result.reindexed} residents re-indexed; "
        f"v{result.from_version} retired"
    )


@app.command("retire-root")
@fail_cleanly
def retire_root_command(
    version: Annotated[int, typer.Argument(min=1, help="The old root version to delete")],
) -> None:
    """Delete an old root version; refused while any data key is still wrapped under it."""
    with _runtime() as (factory, keyring), unit_of_work(factory) as session:
        key_rotation.retire_root(session, keyring, version, _now)
    typer.echo(f"retired root version {version}")


@app.command("rotate-data-key")
@fail_cleanly
def rotate_data_key_command(
    resident_id: Annotated[str, typer.Argument(help="The resident's id (not her ID number)")],
) -> None:
    """Re-encrypt one resident's fields under a fresh data key, atomically."""
    with _runtime() as (factory, keyring), unit_of_work(factory) as session:
        result = key_rotation.rotate_resident_data_key(session, keyring, resident_id, _now)
    typer.echo(
        f"data key rotated to version {result.data_key_version}; "
        f"{result.fields} fields re-encrypted"
    )


def remap_csv_text(rows: tuple[RemapRow, ...]) -> str:
    """`old_case_reference,new_case_reference`, sorted by old reference; a cell a spreadsheet
    would read as a formula (base64url may begin with '-') gets a leading apostrophe."""
    return csv_text(REMAP_HEADER, ((r.old_case_reference, r.new_case_reference) for r in rows),
                    lineterminator="\n")


def _write_new_file(path: Path, text: str) -> None:
    """Atomically, mode 0600, never over an existing file (an earlier export may be needed)."""
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=".remap-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)  # fails if `path` appeared meanwhile
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


@app.command("rotate-pseudonym")
@fail_cleanly
def rotate_pseudonym_command(
    agreement: Annotated[str, typer.Option("--agreement", help="Agreement id")],
    remap_out: Annotated[Path, typer.Option("--remap-out", help="CSV to write (must not exist)")],
) -> None:
    """Rotate the case-pseudonym key and export one agreement's old -> new reference map.

    The first run adds the version; run it once per agreement with cases (the rotation stays
    open until each has its export), hand each file to that agreement's contractor, then
    restart the broker processes so they use the new version."""
    if remap_out.exists():
        raise CliError(f"{remap_out} exists; choose a new file for the re-mapping export")
    if not remap_out.parent.is_dir():
        raise CliError(f"{remap_out.parent} is not a directory")
    with _runtime() as (factory, keyring), unit_of_work(factory) as session:
        result = key_rotation.export_pseudonym_remap(session, keyring, agreement, _now)
        _write_new_file(remap_out, remap_csv_text(result.rows))  # before the commit
    action = "added" if result.started else "using"
    typer.echo(
        f"{action} case-pseudonym version {result.to_version}; wrote {len(result.rows)} "
        f"re-mappings (v{result.from_version} -> v{result.to_version}) to {remap_out}"
    )
    if result.awaiting:
        typer.echo(
            f"{len(result.awaiting)} agreements still need their export: "
            + ", ".join(result.awaiting)
        )
    else:
        typer.echo("every agreement is re-mapped; restart the broker processes")


@app.command("rotate-contractor")
@fail_cleanly
def rotate_contractor_command(
    contractor_id: Annotated[str, typer.Argument(help="Contractor id")],
    public_key: Annotated[Path, typer.Option("--public-key", help="The new public key file")],
) -> None:
    """Register a contractor's new HPKE public key; sealing uses it at once, older keys retire."""
    try:
        text = public_key.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CliError(f"{public_key} is not a UTF-8 public key file") from None
    key = ContractorPublicKey.from_text(text)
    with _runtime() as (factory, _keyring), unit_of_work(factory) as session:
        key_rotation.rotate_contractor(session, contractor_id, key, _now)
    typer.echo(f"contractor key {key.fingerprint.hex()} ({key.kem.value}) is now active")


@app.command("status")
@fail_cleanly
def status_command() -> None:
    """Key versions in use and how many data keys each root version wraps (no secrets)."""
    with _runtime() as (factory, keyring), unit_of_work(factory) as session:
        state = key_rotation.status(session, keyring)
        for purpose, (current, held) in state.purposes.items():
            typer.echo(f"{purpose}: current v{current}; held {', '.join(f'v{v}' for v in held)}")
        total = sum(state.data_keys_by_root.values())
        typer.echo(f"data keys: {total}")
        for (kek_id, version), count in state.data_keys_by_root.items():
            typer.echo(f"  under {kek_id} v{version}: {count}")
        if state.unbound_data_keys:
            typer.echo(
                f"  not bound to their resident (wrapped-key format 1): {state.unbound_data_keys};"
                " run `exchange keys rotate-root` to re-wrap them"
            )
        if state.root_job is not None:
            typer.echo(
                f"root re-wrap: unfinished (to v{state.root_job.to_version}); "
                "run `exchange keys rotate-root` to continue"
            )
        if state.pseudonym_job is not None:
            job = state.pseudonym_job
            typer.echo(
                f"pseudonym rotation: v{job.from_version} -> v{job.to_version}, "
                f"{len(state.awaiting_remap)} agreements awaiting export"
            )
        typer.echo(f"active contractor keys: {state.active_contractor_keys}")
        stored, rotating, left = state.blind_index
        if rotating is None:
            typer.echo(f"blind indexes: under v{stored}")
        else:
            typer.echo(f"blind indexes: rotation v{stored} -> v{rotating} unfinished, {left} "
                       "residents left; run `exchange keys rotate-blind-index` to continue")
        if state.unindexed_phones:
            typer.echo(f"phone indexes: {state.unindexed_phones} residents without one (the "
                       "phone lookup decrypts them); run `exchange keys reindex-phones`")
