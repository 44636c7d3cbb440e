"""`exchange import residents FILE`, `exchange import template` and `exchange demo-data`: the
ledger on the command line.

The lead registers `import_app` as the `import` group and `demo_data` as a command. Output
names rows, fields and headers, never a personal value. Exit codes: 0 imported, 1 row errors
(nothing written unless --partial), 2 the file, the configuration or `--as` is unusable.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

from exchange.cli.choose_principal import AS_HELP
from exchange.cli.flags import App
from exchange.ledger.importer import ensure_communities, known_communities
from exchange.ledger.synthetic import write_ledger
from exchange.ledger.template import write_template
from policies import office_date

EXIT_ROW_ERRORS = 1
EXIT_UNUSABLE = 2

import_app = App(help="Import data into the broker.", no_args_is_help=True)


@contextmanager
def _progress(enabled: bool) -> Iterator[Progress | None]:
    if not enabled:
        yield None
        return
    console = Console(stderr=True)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               MofNCompleteColumn())  # fmt: skip
    with Progress(*columns, console=console, transient=True) as bar:
        yield bar


@import_app.command("residents")
def import_residents(
    file: Annotated[Path, typer.Argument(help="Ledger .csv (UTF-8, UTF-8 BOM, GBK) or .xlsx")],
    acting: Annotated[str, typer.Option("--as", help=AS_HELP)],
    partial: Annotated[
        bool, typer.Option("--partial", help="Import the valid rows; report the rest.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Import a cadre's resident ledger as the principal --as names (a cadre: her communities
    only). All-or-nothing unless --partial. Every import is in the audit log."""
    from exchange.cli.acting import acting_as  # the database only for this command
    from exchange.cli.errors import describe
    from exchange.services.imports import LedgerFile, import_file

    if not file.is_file():
        typer.echo(f"error: {file}: no such file", err=True)
        raise typer.Exit(EXIT_UNUSABLE)
    show_progress = sys.stderr.isatty() and not as_json
    try:
        with _progress(show_progress) as bar, acting_as(acting) as a:
            tasks = {}
            if bar is not None:
                tasks = {"validate": bar.add_task("validating", total=None),
                         "write": bar.add_task("writing", total=None)}  # fmt: skip

            def advance(phase: str, rows: int) -> None:
                if bar is not None:
                    bar.advance(tasks[phase], rows)

            if not known_communities(a.session):
                ensure_communities(a.session)  # a fresh office: the 城阳街道 communities
            outcome = import_file(a.session, a.keyring, a.acting, LedgerFile.from_path(file),
                                  partial=partial, progress=advance)  # fmt: skip
    except Exception as exc:  # configuration, --as, database, audit: one line, exit 2
        typer.echo(f"error: {describe(exc)}", err=True)
        raise typer.Exit(EXIT_UNUSABLE) from None
    if outcome.report is None:
        typer.echo(f"error: {outcome.unusable} (recorded in the audit log, "
                   f"entry {outcome.audit_index})", err=True)  # fmt: skip
        raise typer.Exit(EXIT_UNUSABLE)
    report = outcome.report
    typer.echo(report.to_json() if as_json else report.to_text())
    if not as_json:
        typer.echo(f"  recorded in the audit log as entry {outcome.audit_index}")
    if not report.ok:
        raise typer.Exit(EXIT_ROW_ERRORS)


@import_app.command("template")
def import_template(
    out: Annotated[Path, typer.Option("--out", help="Output file, .xlsx (with notes) or .csv")],
) -> None:
    """Write the import template: the importable columns with hints, text-formatted ID and
    date columns, drop-down lists, and a sheet of rules with examples dated today."""
    if out.suffix.lower() not in (".csv", ".xlsx"):
        typer.echo("error: --out must end with .csv or .xlsx", err=True)
        raise typer.Exit(EXIT_UNUSABLE)
    write_template(out, office_date(datetime.now(UTC)))
    typer.echo(f"wrote the import template to {out}")


def demo_data(
    out: Annotated[Path, typer.Option("--out", help="Output file, .csv or .xlsx")],
    residents: Annotated[int, typer.Option("--residents", min=0, max=1_000_000)] = 200,
    seed: Annotated[int, typer.Option("--seed")] = 1000,
    bad_rows: Annotated[int, typer.Option("--bad-rows", min=0)] = 0,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Reference day YYYY-MM-DD (default today)")
    ] = None,
    gbk: Annotated[bool, typer.Option("--gbk", help="Write CSV in GB18030 (as old Excel)")] = False,
) -> None:
    """Write a wholly synthetic ledger (sensitive columns filled, to show they are refused)."""
    if out.suffix.lower() not in (".csv", ".xlsx"):
        typer.echo("error: --out must end with .csv or .xlsx", err=True)
        raise typer.Exit(EXIT_UNUSABLE)
    if bad_rows > residents:
        typer.echo("error: --bad-rows cannot exceed --residents", err=True)
        raise typer.Exit(EXIT_UNUSABLE)
    try:
        day = date.fromisoformat(as_of) if as_of else office_date(datetime.now(UTC))
    except ValueError:
        typer.echo("error: --as-of must be YYYY-MM-DD", err=True)
        raise typer.Exit(EXIT_UNUSABLE) from None
    count = write_ledger(out, residents, seed, bad_rows=bad_rows, as_of=day,
                         encoding="gb18030" if gbk else "utf-8-sig")  # fmt: skip
    typer.echo(f"wrote {count} synthetic rows ({bad_rows} invalid) to {out}")
