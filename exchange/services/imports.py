"""Importing a ledger file as an office principal: scoped, and always in the audit log.

The CLI (`exchange import residents FILE --as NAME`) and the API (`POST /v1/residents/imports`)
both call `import_file`. A community cadre imports into her own communities only (other rows
are refused with `community_out_of_scope`); an office admin into any; nobody else at all.

Every import appends one `resident.import` entry in the caller's transaction, whatever its
outcome, naming the principal and, in `details`, the file's SHA-256 and format, the mode, the
row counts and which never-imported columns the file carried - never a value, a file name or a
header text (a file name can be a resident's name). A file that cannot be read at all is
recorded too (`file_unusable`); what it did write is rolled back first. If the entry cannot be
appended, `AuditUnavailable` propagates and the caller's unit of work rolls the import back.

    outcome                         when
    ok       imported               every row valid and written
    ok       imported_partially     --partial: the valid rows written, the others reported
    ok       nothing_to_import      the file has a header and no data rows
    denied   rows_invalid           all-or-nothing and some row invalid: nothing written
    error    file_unusable          unreadable file, encoding or header: nothing written
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import cast

from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from audit.entry import Actor, AuditEntry, DetailValue, Outcome
from exchange.identity import OFFICE_ADMIN, Acting
from exchange.ledger.errors import LedgerError, UndecodableFile
from exchange.ledger.headers import RefusalReason
from exchange.ledger.importer import Progress, import_ledger, known_communities
from exchange.ledger.reader import ENCODINGS, LedgerSource, open_source, text_source
from exchange.ledger.report import ImportReport
from exchange.permissions import allowed
from exchange.services.auditing import SqlAuditSink
from exchange.services.auditing import append as audit_append
from exchange.services.errors import AuditedDenial, FieldProblem, FlowError, InvalidInput
from keys.keyring import Keyring
from policies import office_date

ACTION = "resident.import"
IMPORT_OPERATION = "residents.import"  # who may: the one table (exchange.permissions)
_CHUNK = 1 << 16


class ImportForbidden(FlowError):
    status = 403
    slug = "forbidden"


class ImportRefused(InvalidInput, AuditedDenial):
    """Nothing was imported (invalid rows, or a file that cannot be read); the import's audit
    entry commits all the same. Each problem names the row and field, never a value."""


class RefusedColumnView(TypedDict):
    column: int
    header: str
    reason: str
    catalogue_field: str | None


class RowProblemView(TypedDict):
    row: int
    field: str
    header: str
    reason: str
    message: str


class ImportView(TypedDict):
    """The import report as the API answers it (`ImportReport.to_dict`) and its audit entry."""

    source: str
    mode: str
    applied: bool
    rows_read: int
    rows_valid: int
    rows_invalid: int
    inserted: int
    updated: int
    refused_columns: list[RefusedColumnView]
    error_count: int
    errors_truncated: bool
    errors: list[RowProblemView]
    audit_index: int


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    """The report (None when the file could not be read), the one-line reason a file was
    unusable, and the index of the audit entry recording the import."""

    report: ImportReport | None
    unusable: str | None
    audit_index: int

    @property
    def ok(self) -> bool:
        return self.report is not None and self.report.ok


@dataclass(frozen=True, slots=True)
class LedgerFile:
    """A ledger to import: how to open it (inside the audited attempt, so an unreadable file
    is recorded too), the SHA-256 of its bytes and its format (`csv`, `xlsx` or `other`)."""

    open: Callable[[], LedgerSource]
    sha256: str
    format: str

    @classmethod
    def from_path(cls, path: Path) -> LedgerFile:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        suffix = path.suffix.lower().lstrip(".")
        return cls(lambda: open_source(path), digest.hexdigest(),
                   suffix if suffix in ("csv", "xlsx") else "other")  # fmt: skip

    @classmethod
    def from_csv_bytes(cls, data: bytes, name: str = "upload.csv") -> LedgerFile:
        """An uploaded CSV, decoded in memory (never written to disk) by the same encoding
        cascade as a file."""
        def source() -> LedgerSource:
            for encoding in ENCODINGS:
                try:
                    return text_source(data.decode(encoding), name)
                except UnicodeDecodeError:
                    continue
            raise UndecodableFile(f"{name}: not valid UTF-8 or GB18030/GBK text")

        return cls(source, hashlib.sha256(data).hexdigest(), "csv")


def _quiet(_phase: str, _rows: int) -> None:
    return None


def _allowed_communities(session: Session, acting: Acting) -> frozenset[str] | None:
    if acting.identity.role == OFFICE_ADMIN:
        return None
    ids = acting.identity.community_ids
    return frozenset(name for name, cid in known_communities(session).items() if cid in ids)


def _outcome(report: ImportReport | None) -> Outcome:
    if report is None:
        return Outcome("error", "file_unusable")
    if report.rows_read == 0:
        return Outcome("ok", "nothing_to_import")
    if not report.applied:
        return Outcome("denied", "rows_invalid")
    return Outcome("ok", "imported" if report.ok else "imported_partially")


def _details(digest: str, file_format: str, partial: bool,
             report: ImportReport | None) -> dict[str, DetailValue]:  # fmt: skip
    details: dict[str, DetailValue] = {"file.sha256": digest, "file.format": file_format,
                                  "mode.partial": partial}  # fmt: skip
    if report is None:
        return details
    refused = report.refused_columns
    never = sorted({r.catalogue_field for r in refused if r.catalogue_field})
    details.update({
        "rows.read": report.rows_read, "rows.valid": report.rows_valid,
        "rows.invalid": report.invalid_rows, "rows.inserted": report.inserted,
        "rows.updated": report.updated, "errors": report.error_count,
        "columns.never_imported": tuple(never),
        "columns.unknown": sum(r.reason is RefusalReason.UNKNOWN for r in refused),
    })  # fmt: skip
    return details


def import_file(
    session: Session,
    keyring: Keyring,
    acting: Acting,
    ledger: LedgerFile,
    *,
    partial: bool = False,
    progress: Progress = _quiet,
    workers: int | None = None,
) -> ImportOutcome:
    """Import `ledger` as `acting` and audit it (see the module docstring).
    Never commits; the caller's unit of work does, with the audit entry."""
    if not allowed(acting.identity.role, IMPORT_OPERATION):
        raise ImportForbidden(f"role {acting.identity.role} may not import residents")
    report: ImportReport | None = None
    unusable: str | None = None
    attempt = session.begin_nested()  # a file failing half-way leaves nothing behind
    try:
        report = import_ledger(
            session, keyring, ledger.open(), today=office_date(acting.now), partial=partial,
            allowed_communities=_allowed_communities(session, acting), progress=progress,
            workers=workers,
        )  # fmt: skip
        attempt.commit()
    except LedgerError as exc:
        attempt.rollback()
        unusable = str(exc)
    entry = AuditEntry(
        time=acting.now, actor=acting.actor, action=ACTION, request_id=acting.request_id,
        outcome=_outcome(report),
        details={**acting.details, **_details(ledger.sha256, ledger.format, partial, report)},
    )  # fmt: skip
    index = audit_append(session, SqlAuditSink(), [entry])[0]
    return ImportOutcome(report, unusable, index)


def record_system_import(session: Session, actor: Actor, now: datetime, source: str,
                         report: ImportReport) -> int:  # fmt: skip
    """The entry of an import no principal made (the demo seed `exchange dev` loads), under
    a system actor: the same `resident.import` entry as `import_file`'s, the source named by
    the SHA-256 of its description (`file.format` synthetic). Returns its index."""
    digest = hashlib.sha256(source.encode("utf-8")).hexdigest()
    entry = AuditEntry(time=now, actor=actor, action=ACTION, outcome=_outcome(report),
                       details=_details(digest, "synthetic", False, report))  # fmt: skip
    return audit_append(session, SqlAuditSink(), [entry])[0]


def accepted(outcome: ImportOutcome) -> ImportView:
    """The report of an import that was applied (or had no rows); `ImportRefused` when nothing
    was imported: every row problem as a field `rows.<row>.<field>`, or the file's one."""
    report = outcome.report
    recorded = f"nothing imported (audit entry {outcome.audit_index})"
    if report is None:
        raise ImportRefused(f"{outcome.unusable}; {recorded}",
                            (FieldProblem("body", "file_unusable", str(outcome.unusable)),))
    if report.rows_read and not report.applied:
        raise ImportRefused(
            f"{report.invalid_rows} invalid row(s); {recorded}",
            tuple(FieldProblem(f"rows.{e.row}.{e.field}", e.reason, e.message)
                  for e in report.errors),
        )  # fmt: skip
    return cast(ImportView, {**report.to_dict(), "audit_index": outcome.audit_index})
