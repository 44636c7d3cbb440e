"""`exchange office`: the office's actions on residents, from the command line.

Every command acts as a named office principal (`--as NAME`, an office_admin or community_cadre)
through the same services the API uses, in one transaction, so each action is scoped,
attributed and audited exactly as over HTTP. Output names ids, codes and field names only;
a failure is one `error:` line and exit code 1.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated

import typer

from exchange.cli.acting import acting_as
from exchange.cli.choose_principal import AS_HELP
from exchange.cli.errors import CliError, fail_cleanly
from exchange.cli.flags import App
from exchange.db.engine import make_engine
from exchange.db.models.codes import CONSENT_METHODS, CONSENT_SCOPES, SERVICES
from exchange.services import assignments, consent, requests
from exchange.settings import get_settings

app = App(help="Consent, assignments and residents' requests (office).", no_args_is_help=True)
consent_app = App(help="Record a resident's consent or its withdrawal.", no_args_is_help=True)
app.add_typer(consent_app, name="consent")

AsOption = Annotated[str, typer.Option("--as", help=AS_HELP)]
ResidentArg = Annotated[str, typer.Argument(help="The resident's id (not her ID number)")]
ScopeOption = Annotated[
    list[str], typer.Option("--scope", help=f"Repeatable; one of: {', '.join(CONSENT_SCOPES)}")
]
AgreementOption = Annotated[
    str | None, typer.Option("--agreement", help="Agreement id (or give --programme)")
]
ProgrammeOption = Annotated[
    str | None, typer.Option("--programme", help="Programme code: applies to every agreement")
]
_EVIDENCE_CHUNK = 1 << 16


def evidence_sha256(path: Path) -> str:
    """SHA-256 of the signed form, phone recording or chat export; the file is not kept."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(_EVIDENCE_CHUNK):
                digest.update(chunk)
    except IsADirectoryError:
        raise CliError(f"{path}: evidence must be a file") from None
    return digest.hexdigest()


@consent_app.command("grant")
@fail_cleanly
def consent_grant(
    resident_id: ResidentArg,
    scope: ScopeOption,
    method: Annotated[str, typer.Option("--method", help=" | ".join(CONSENT_METHODS))],
    notice_version: Annotated[str, typer.Option("--notice-version", help="Notice shown")],
    evidence: Annotated[Path, typer.Option("--evidence", help="Evidence file (hashed only)")],
    acting: AsOption,
    agreement: AgreementOption = None,
    programme: ProgrammeOption = None,
    separate: Annotated[
        bool, typer.Option("--separate", help="Sensitive scopes asked and agreed on their own")
    ] = False,
    guardian: Annotated[
        bool, typer.Option("--guardian", help="child_data given by the infant's guardian")
    ] = False,
) -> None:
    """Record a grant of consent (PIPL Art. 14, 29, 31)."""
    data = consent.ConsentInput(
        scopes=tuple(scope), method=method, notice_version=notice_version,
        evidence_sha256=evidence_sha256(evidence), agreement_id=agreement, programme=programme,
        separate=separate, guardian=guardian,
    )  # fmt: skip
    with acting_as(acting) as a:
        event = consent.grant(a.session, a.keyring, a.acting, resident_id, data)
        event_id, scopes = event.id, list(event.scopes)
    typer.echo(f"consent event {event_id}: granted {', '.join(scopes)}")


@consent_app.command("withdraw")
@fail_cleanly
def consent_withdraw(
    resident_id: ResidentArg,
    scope: ScopeOption,
    acting: AsOption,
    agreement: AgreementOption = None,
    programme: ProgrammeOption = None,
    method: Annotated[str, typer.Option("--method", help=" | ".join(CONSENT_METHODS))] = "paper",
    notice_version: Annotated[str, typer.Option("--notice-version")] = "withdrawal",
    evidence: Annotated[
        Path | None, typer.Option("--evidence", help="Evidence file (hashed only)")
    ] = None,
) -> None:
    """Record a withdrawal, effective at once (PIPL Art. 15).

    Withdrawing service_contact revokes the assignments; their contractors delete the case."""
    # a withdrawal needs no proof beyond the request; without a file the hash marks "none given"
    digest = evidence_sha256(evidence) if evidence else hashlib.sha256(b"").hexdigest()
    data = consent.ConsentInput(
        scopes=tuple(scope), method=method, notice_version=notice_version,
        evidence_sha256=digest, agreement_id=agreement, programme=programme,
    )  # fmt: skip
    with acting_as(acting) as a:
        event = consent.withdraw(a.session, a.keyring, a.acting, resident_id, data)
        event_id, scopes = event.id, list(event.scopes)
    typer.echo(f"consent event {event_id}: withdrew {', '.join(scopes)}")


@app.command("assign")
@fail_cleanly
def assign(
    resident_id: ResidentArg,
    contractor: Annotated[str, typer.Option("--contractor", help="Contractor id")],
    agreement: Annotated[str, typer.Option("--agreement", help="Agreement id")],
    service: Annotated[
        list[str], typer.Option("--service", help=f"Exactly 4 of: {', '.join(SERVICES)}")
    ],
    acting: AsOption,
) -> None:
    """Assign a consenting resident to a contractor under an active agreement."""
    data = assignments.AssignmentInput(resident_id, contractor, agreement, tuple(service))
    with acting_as(acting) as a:
        assignment_id = assignments.create(a.session, a.keyring, a.acting, data)
    typer.echo(f"assignment {assignment_id} created")


@app.command("revoke")
@fail_cleanly
def revoke(
    assignment_id: Annotated[str, typer.Argument(help="Assignment id")], acting: AsOption
) -> None:
    """Revoke an assignment; the contractor is told to delete the case."""
    with acting_as(acting) as a:
        assignments.revoke(a.session, a.keyring, a.acting, assignment_id)
    typer.echo(f"assignment {assignment_id} revoked")


def _disclosure_rows(report: requests.DisclosureReport) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for d in report["disclosures"]:
        who = d["recipient"]["contractor"] or d["recipient"]["principal"] or "-"
        rows.append((str(d["audit_index"]), d["time"], who, d["agreement_reference"] or "-",
                     d["purpose"] or "-", ", ".join(d["fields"])))  # fmt: skip
    return rows


@app.command("disclosures")
@fail_cleanly
def disclosures(
    resident_id: ResidentArg,
    acting: AsOption,
    as_json: Annotated[bool, typer.Option("--json", help="The full report as JSON")] = False,
) -> None:
    """Who saw the resident's data: every disclosure (field names, never values) and deletion."""
    with acting_as(acting) as a:
        report = requests.disclosures(a.session, a.keyring, a.acting, resident_id)
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False, indent=2))
        return
    header = ("#", "time", "recipient", "agreement", "purpose", "fields")
    rows = _disclosure_rows(report)
    if not rows:
        typer.echo("no disclosures")
    else:
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
        for row in [header, *rows]:
            cells = [c.ljust(w) for c, w in zip(row, widths, strict=False)]
            typer.echo("  ".join([*cells, row[-1]]))
    for d in report["deletions"]:
        typer.echo(f"deletion #{d['audit_index']} {d['time']} {d['action']} ({d['reason']})")


@app.command("erase")
@fail_cleanly
def erase(
    resident_id: ResidentArg,
    acting: AsOption,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: this cannot be undone")] = False,
) -> None:
    """Erase a resident (PIPL Art. 47): shred her data key; her contractors delete the case."""
    if not yes:
        raise CliError("erasure cannot be undone; repeat with --yes")
    with acting_as(acting) as a:
        result = requests.erase(a.session, a.keyring, a.acting, resident_id)
    engine = make_engine(get_settings().database_url)
    try:
        requests.compact_storage(engine)  # after the commit: no old page keeps the key
    finally:
        engine.dispose()
    key = "destroyed" if result["data_key_destroyed"] else "already absent"
    typer.echo(
        f"resident {result['resident_id']} erased; data key {key}; "
        f"{result['contractors_notified']} contractors told to delete"
    )
