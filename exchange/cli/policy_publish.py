"""`exchange policy publish | move | list | show`: policy versions the office publishes itself.

`publish FILE` checks the file as `policy check` does, shows the `policy diff` against the
version in force and which agreements are on which version, refuses a change that newly
discloses anything unless `--yes`, then stores and audits it. Agreements keep their version
until `move` puts one purpose of one agreement on another version (shown and confirmed the
same way, audited, and the agreement's cases sent again). Both act as an office admin (`--as`;
default: the only active one). `list` and `show` read the published versions.
Exit codes: 0 done (or nothing to do), 1 refused, 3 a widening not confirmed (nothing written).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from exchange.cli.choose_principal import AS_HELP
from exchange.cli.errors import CliError, fail_cleanly
from policies.diff import Change
from policies.document import Policy, load_policy
from policies.errors import PolicyLoadError

EXIT_WIDENS = 3
AsAdmin = Annotated[
    str | None, typer.Option("--as", help=AS_HELP + "; default: the only office_admin")
]
Yes = Annotated[
    bool, typer.Option("--yes", help="Confirm a change that newly discloses something")
]


def load_or_report(path: Path) -> Policy | None:
    """The policy in `path`, or None after printing each problem as `policy check` does."""
    try:
        return load_policy(path)
    except PolicyLoadError as exc:
        for problem in exc.problems:
            typer.echo(f"error: {problem}", err=True)
        return None


def _show_changes(changes: tuple[Change, ...]) -> None:
    if not changes:
        typer.echo("  no change in what is disclosed")
    for change in changes:
        typer.echo(f"  {change}")


def _refuse_widening(what: str) -> typer.Exit:
    typer.echo(f"refused: {what} newly discloses what is marked +; nothing was written. "
               "Repeat with --yes to confirm.", err=True)  # fmt: skip
    return typer.Exit(EXIT_WIDENS)


@fail_cleanly
def publish(
    file: Annotated[Path, typer.Argument(help="The policy document (TOML).")],
    yes: Yes = False,
    acting: AsAdmin = None,
) -> None:
    """Publish a new policy, or a new version of one, from FILE: checked as `policy check`
    does, compared with the version in force, stored with its hash, audited."""
    from exchange.cli.acting import acting_as  # the database only for the commands that need it
    from exchange.services import published_policies as store

    if load_or_report(file) is None:
        raise typer.Exit(1)
    text = file.read_text(encoding="utf-8")
    with acting_as(acting) as a:
        proposal = store.propose(a.session, text, str(file))
        ident = proposal.policy.identity
        typer.echo(f"ok {file}: {ident.id} v{ident.version} ({proposal.policy.purpose}) "
                   f"sha256:{ident.sha256}")  # fmt: skip
        if proposal.already_published:
            typer.echo("already published; nothing to do")
            return
        in_force = proposal.in_force
        typer.echo(f"against {in_force.identity} (in force):" if in_force else "a new policy:")
        _show_changes(proposal.changes)
        for (pid, version), users in sorted(store.usage(a.session).items()):
            if pid == ident.id:
                names = ", ".join(f"{ref} ({purpose})" for ref, purpose in users)
                typer.echo(f"  on v{version}, until moved: {names}")
        if proposal.widens and not yes:
            raise _refuse_widening("the document")
        index = store.publish(a.session, a.acting, proposal, confirm_widening=yes)
    typer.echo(f"published {ident.reference} (audit entry {index}); agreements stay on their "
               f"version until moved: exchange policy move AGREEMENT --purpose "
               f"{proposal.policy.purpose}")  # fmt: skip


@fail_cleanly
def move(
    agreement: Annotated[str, typer.Argument(help="Agreement reference (contract number) or id")],
    purpose: Annotated[str, typer.Option("--purpose", help="e.g. home_visit")],
    to: Annotated[
        str | None, typer.Option("--to", help="id@version; default: the latest version")
    ] = None,
    yes: Yes = False,
    acting: AsAdmin = None,
) -> None:
    """Move one purpose of an agreement to a published policy version (audited); the
    contractor receives the agreement's cases again as the new version discloses them."""
    from exchange.cli.acting import acting_as
    from exchange.services import agreement_policies

    with acting_as(acting) as a:
        proposal = agreement_policies.propose_move(a.session, agreement, purpose, to)
        before = proposal.current.identity if proposal.current else "an unpublished version"
        typer.echo(f"{proposal.agreement.reference} {purpose}: {before} -> "
                   f"{proposal.target.identity}")  # fmt: skip
        _show_changes(proposal.changes)
        if proposal.widens and not yes:
            raise _refuse_widening("the new version")
        index = agreement_policies.move(a.session, a.acting, proposal, confirm_widening=yes)
        reference = proposal.agreement.reference
    typer.echo(f"moved {reference} {purpose} to {proposal.target.identity.reference} "
               f"(audit entry {index}); its contractor receives the cases again")  # fmt: skip


@contextlib.contextmanager
def _reading() -> Iterator[Session]:
    """A read of the published versions (not personal data: no principal, not audited)."""
    from exchange.db.engine import make_engine, make_session_factory, unit_of_work
    from exchange.services.errors import FlowError
    from exchange.settings import get_settings

    engine = make_engine(get_settings().database_url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            yield session
    except FlowError as exc:
        raise CliError(exc.detail) from None
    finally:
        engine.dispose()


@fail_cleanly
def list_published() -> None:
    """The published policy versions: id@version, purpose, origin, date, hash, agreements."""
    from exchange.services import published_policies as store

    with _reading() as session:
        used = store.usage(session)
        for row in store.listing(session):
            users = used.get((row.policy_id, row.version), [])
            names = ", ".join(f"{ref} ({purpose})" for ref, purpose in users) or "-"
            typer.echo(f"{row.policy_id}@{row.version}\t{row.purpose}\t{row.origin}\t"
                       f"{row.published_at.date().isoformat()}\tsha256:{row.sha256}\t{names}")


@fail_cleanly
def show(sha256: Annotated[str, typer.Argument(help="The published version's SHA-256")]) -> None:
    """Print a published version's document exactly as it was published."""
    from exchange.services import published_policies as store

    with _reading() as session:
        typer.echo(store.by_hash(session, sha256.removeprefix("sha256:")).document, nl=False)
