"""`exchange policy`: lint policy documents, show what a change would newly disclose, preview
what one case would disclose to its contractor, and publish versions (`policy_publish`).

`check` and `diff` need no database; `preview` reads the case as an office principal and is
audited. One line per problem on stderr, non-zero exit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from exchange.cli import policy_publish
from exchange.cli.choose_principal import AS_HELP
from exchange.cli.errors import fail_cleanly
from exchange.cli.flags import App
from exchange.cli.policy_publish import load_or_report
from policies import render_preview
from policies.diff import diff_policies

app = App(
    help="Check, compare, publish and apply policy documents; preview a case's disclosure.",
    no_args_is_help=True,
)

EXIT_INVALID = 1
EXIT_WIDENS = 3


@app.command()
def check(
    files: Annotated[list[Path], typer.Argument(help="Policy TOML files to validate.")],
) -> None:
    """Validate policy files; print each one's identity, or every problem found."""
    failed = False
    seen: dict[str, Path] = {}
    for path in files:
        policy = load_or_report(path)
        if policy is None:
            failed = True
            continue
        if policy.id in seen:
            typer.echo(
                f"error: {path}: policy id {policy.id!r} also in {seen[policy.id]}", err=True
            )
            failed = True
            continue
        seen[policy.id] = path
        ident = policy.identity
        typer.echo(
            f"ok {path}: {ident.id} v{ident.version} ({policy.purpose}) sha256:{ident.sha256}"
        )
    if failed:
        raise typer.Exit(EXIT_INVALID)


@app.command()
def diff(
    old: Annotated[Path, typer.Argument(help="The policy in force.")],
    new: Annotated[Path, typer.Argument(help="The proposed policy.")],
    fail_on_widen: Annotated[
        bool, typer.Option(help=f"Exit {EXIT_WIDENS} if the change newly discloses anything.")
    ] = False,
) -> None:
    """Show, field by field, what NEW would disclose that OLD did not ('+') and the reverse."""
    before, after = load_or_report(old), load_or_report(new)
    if before is None or after is None:
        raise typer.Exit(EXIT_INVALID)
    changes = diff_policies(before, after)
    typer.echo(f"{before.identity} -> {after.identity}")
    if not changes:
        typer.echo("no change in what is disclosed")
    for change in changes:
        typer.echo(str(change))
    if fail_on_widen and any(c.widens for c in changes):
        raise typer.Exit(EXIT_WIDENS)


@app.command()
@fail_cleanly
def preview(
    resident: Annotated[str, typer.Option("--resident", help="The resident's id")],
    agreement: Annotated[str, typer.Option("--agreement", help="Agreement id")],
    purpose: Annotated[str, typer.Option("--purpose", help="e.g. home_visit")],
    acting: Annotated[
        str | None,
        typer.Option("--as", help=AS_HELP + "; default: the only office_admin"),
    ] = None,
) -> None:
    """Show what the contractor would receive for the resident's case under the agreement:
    sealed fields as sealed, withheld fields with their reasons. Shows values: audited."""
    from exchange.cli.acting import acting_as  # the database only for this command
    from exchange.cli.preview import preview_case

    with acting_as(acting) as a:
        evaluation = preview_case(a.session, a.keyring, a.acting, resident, agreement, purpose)
    typer.echo(render_preview(evaluation), nl=False)


app.command("publish")(policy_publish.publish)
app.command("move")(policy_publish.move)
app.command("list")(policy_publish.list_published)
app.command("show")(policy_publish.show)
