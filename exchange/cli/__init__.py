"""The `exchange` command line, grouped by who uses it.

office      import residents; consent, assignments, requests; stats (the office)
admin       init, principals, policies, backup/restore; serve; db upgrade
audit       search, checkpoints, offline verification
contractor  the contractor-side sync client (when installed)
developer   dev up (what `make run` calls), synthetic data
"""

from __future__ import annotations

from exchange.cli import (
    admin,
    audit,
    backup,
    contractor,
    dev,
    keys,
    ledger,
    office,
    policy,
    serve,
    stats,
)
from exchange.cli.flags import App

OFFICE = "office"
ADMIN = "admin"
AUDIT = "audit"
CONTRACTOR = "contractor"
DEVELOPER = "developer"

app = App(
    name="exchange",
    help="Resident data exchange broker (生命之初1000天).",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,  # a traceback could show values; commands print one line
)

app.add_typer(ledger.import_app, name="import", rich_help_panel=OFFICE)
app.add_typer(office.app, name="office", rich_help_panel=OFFICE)
app.add_typer(stats.app, name="stats", rich_help_panel=OFFICE)
backup.register(admin.app)
app.add_typer(admin.app, name="admin", rich_help_panel=ADMIN)
app.add_typer(policy.app, name="policy", rich_help_panel=ADMIN)
app.add_typer(keys.app, name="keys", rich_help_panel=ADMIN)
app.command("serve", rich_help_panel=ADMIN)(serve.serve)
app.add_typer(serve.db_app, name="db", rich_help_panel=ADMIN)
app.add_typer(audit.app, name="audit", rich_help_panel=AUDIT)
app.add_typer(contractor.app, name="contractor", rich_help_panel=CONTRACTOR)
app.add_typer(dev.app, name="dev", rich_help_panel=DEVELOPER)
app.command("demo-data", rich_help_panel=DEVELOPER)(ledger.demo_data)


def main() -> None:
    app()
