"""`exchange stats TABLE --by …`: a released statistics table in the terminal.

The same release as `GET /v1/statistics/{table}` (same service, same suppression, same audit
entry), printed as a table with Chinese labels and English beside; `--xlsx FILE` writes the
workbook the API gives. `exchange stats backfill` fills the due months of episodes stored
before migration 0008 (it decrypts each due date once; releases never decrypt).
"""

# no `from __future__ import annotations`: Typer reads the per-table option help from the
# annotations, which refer to the closure's `name`
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from exchange.cli.acting import acting_as
from exchange.cli.choose_principal import AS_HELP
from exchange.cli.errors import fail_cleanly
from exchange.cli.flags import App
from exchange.services import statistics
from exchange.services.statistics_backfill import backfill_due_months
from exchange.services.statistics_export import note, rows, workbook
from exchange.settings import get_settings
from policies.statistics import Rule

app = App(help="Statistics with small numbers suppressed (统计分析).", no_args_is_help=True)

AsOption = Annotated[
    str | None, typer.Option("--as", help=AS_HELP + "; default: the only office_admin")
]


def _date(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise typer.BadParameter("a date YYYY-MM-DD", param_hint=name) from None


def _print(release: statistics.Release) -> None:
    console = Console()
    table = Table(title=f"{release.title}  {release.table}", title_justify="left")
    lines = rows(release)
    for i, heading in enumerate(lines[0]):
        table.add_column(str(heading), justify="right" if i == len(lines[0]) - 1 else "left")
    for line in lines[1:]:
        table.add_row(*(str(c) for c in line))
    console.print(table)
    zh, en = note(release)
    console.print(f"注：{zh}\nNote: {en}", highlight=False)


def _command(name: str) -> None:
    @app.command(name, help=statistics.TABLES[name].title)
    @fail_cleanly
    def run(
        by: Annotated[str, typer.Option(help="comma list: " + ", ".join(
            statistics.TABLES[name].dims))],
        start: Annotated[str | None, typer.Option("--from", help="YYYY-MM-DD, first day of "
                                                  "a month, quarter or year")] = None,
        end: Annotated[str | None, typer.Option("--to", help="YYYY-MM-DD, its last day")] = None,
        measure: Annotated[str | None, typer.Option(help="residents | events")] = None,
        exact: Annotated[bool, typer.Option(help="office admins: exact figures")] = False,
        reason: Annotated[str | None, typer.Option(
            help="reason code for --exact: " + ", ".join(statistics.REASONS))] = None,
        xlsx: Annotated[Path | None, typer.Option(help="also write the workbook here")] = None,
        acting: AsOption = None,
    ) -> None:
        first, last = _date(start, "--from"), _date(end, "--to")
        rule = Rule(get_settings().statistics_threshold)
        with acting_as(acting) as a:  # its error translation names a bad parameter too
            request = statistics.parse(name, by, first, last, measure=measure, exact=exact,
                                       reason=reason)  # fmt: skip
            release = statistics.release(a.session, a.acting, request, rule)
        _print(release)
        if xlsx is not None:
            xlsx.write_bytes(workbook(release))
            typer.echo(f"wrote {xlsx}")


for _name in statistics.TABLES:
    _command(_name)


@app.command("backfill")
@fail_cleanly
def backfill(acting: AsOption = None) -> None:
    """Fill episodes' due months stored before migration 0008 (decrypts each once)."""
    with acting_as(acting) as a:
        written = backfill_due_months(a.session, a.keyring, a.acting)
    typer.echo(f"due months filled in: {written} episodes")
