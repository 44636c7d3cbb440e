"""`exchange policy`: lint policy documents, show what a change would newly disclose, and
preview what one case would disclose to its contractor.

`check` and `diff` need no database; `preview` reads the case as an office principal and is
audited. One line per problem on stderr, non-zero exit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from exchange.cli.errors import fail_cleanly
from policies import render_preview
from policies.diff import diff_policies
from policies.document import Policy, load_policy
from policies.errors import PolicyLoadError

app = typer.Typer(
    help="Check and compare policy documents; preview a case's disclosure.",
    no_args_is_help=True,
)

EXIT_INVALID = 1
EXIT_WIDENS = 3


def _load(path: Path) -> Policy | None:
    try:
        return load_policy(path)
    except PolicyLoadError as exc:
        for problem in exc.problems:
            typer.echo(f"error: {problem}", err=True)
        return None


@app.command()
def check(
    files: Annotated[list[Path], typer.Argument(help="Policy TOML files to validate.")],
) -> None:
    """Validate policy files; print each one's identity, or every problem found."""
    failed = False
    seen: dict[str, Path] = {}
    for path in files:
        policy = _load(path)
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
    before, after = _load(old), _load(new)
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
        typer.Option("--as", help="Acting office principal; default: the only office_admin"),
    ] = None,
) -> None:
    """Show what the contractor would receive for the resident's case under the agreement:
    sealed fields as sealed, withheld fields with their reasons. Shows values: audited."""
    from exchange.cli.acting import acting_as  # the database only for this command
    from exchange.cli.preview import preview_case

    with acting_as(acting) as a:
        evaluation = preview_case(a.session, a.keyring, a.acting, resident, agreement, purpose)
    typer.echo(render_preview(evaluation), nl=False)
