"""Importing a ledger in two steps, as a person at a screen does: upload and read the report,
then confirm (or cancel).

    stage(...)    the uploaded bytes are kept encrypted under a fresh data key of their own
                  (`console_staged_imports`, wrapped by the root key) and checked by a full
                  dry run of the import (written in a savepoint, then rolled back), so the
                  report is exactly what confirming will do; audited `resident.import_check`.
    confirm(...)  the same bytes imported for real, all or nothing, audited `resident.import`
                  (the import report's counts in `details`, never a value, a file name or a
                  header text); the staged row is deleted (its key with it).
    cancel(...)   the staged row is deleted; audited `resident.import_cancel`.

Only the uploader reaches her staged file, and only for `MAX_AGE`; the scope is hers (a cadre
imports into her own communities; other rows are refused `community_out_of_scope`). A file
that cannot be read at all is refused at `stage` with the reason, and nothing is kept.

The import itself is the ledger importer's (exchange.ledger.importer); when the audited import
service of issue 19 (`services.imports.import_file`) is on main, `confirm` should call it.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from audit.entry import DetailValue, Outcome
from exchange.db import models as m
from exchange.db.ids import new_id
from exchange.identity import OFFICE_ADMIN, Acting
from exchange.ledger.errors import LedgerError, UndecodableFile
from exchange.ledger.importer import import_ledger, known_communities
from exchange.ledger.reader import ENCODINGS, LedgerSource, MemorySource, XlsxSource
from exchange.ledger.report import ImportReport
from exchange.permissions import allowed
from exchange.services.audit_access import record
from exchange.services.errors import FlowError, InvalidInput, NotFound, NotPermitted
from keys.datakeys import WrappedKey
from keys.fields import FieldContext
from keys.keyring import Keyring
from policies import office_date

MAX_AGE: Final = timedelta(hours=1)
MAX_BYTES: Final = 8 * 1024 * 1024
IMPORT_OPERATION = "residents.import"  # who may: the one table (exchange.permissions)
_TABLE = "console_staged_imports"


class FileUnusable(FlowError):
    """The file cannot be read as a ledger at all (type, encoding, workbook, header)."""

    status = 422
    slug = "validation-error"


@dataclass(frozen=True, slots=True)
class Checked:
    staged_id: str
    report: ImportReport


class _XlsxBytes(XlsxSource):
    """A workbook read from memory (an upload is never written to disk in the clear)."""

    def __init__(self, data: bytes, name: str) -> None:
        self._data = data
        super().__init__(Path(name))

    def _open(self):  # type: ignore[no-untyped-def]
        from exchange.ledger.reader import _Workbook

        stream = io.BytesIO(self._data)
        stream.name = self._path.name  # messages name the file
        return _Workbook(stream)  # type: ignore[arg-type]  # openpyxl reads a stream as well


def _csv_source(data: bytes, name: str) -> LedgerSource:
    for encoding in ENCODINGS:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        rows = list(csv.reader(io.StringIO(text)))
        if not rows:
            break
        head, body = tuple(rows[0]), [tuple(r) for r in rows[1:]]
        return MemorySource(head, body.__iter__, f"{name} (CSV, {encoding})")
    raise UndecodableFile(f"{name}: not valid UTF-8 or GB18030/GBK text, or empty")


def _source(data: bytes, file_format: str) -> LedgerSource:
    # never the uploaded file's own name: a file name can be a resident's name
    name = f"上传文件.{file_format}"
    return _XlsxBytes(data, name) if file_format == "xlsx" else _csv_source(data, name)


def file_format_of(filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise InvalidInput.field("file", "file_type", "upload a .xlsx or .csv file")
    return suffix[1:]


def _allowed(session: Session, acting: Acting) -> frozenset[str] | None:
    if acting.identity.role == OFFICE_ADMIN:
        return None
    ids = acting.identity.community_ids
    return frozenset(name for name, cid in known_communities(session).items() if cid in ids)


def _run(session: Session, keyring: Keyring, acting: Acting, data: bytes, file_format: str,
         *, dry: bool) -> ImportReport:  # fmt: skip
    attempt = session.begin_nested()
    try:
        report = import_ledger(session, keyring, _source(data, file_format),
                               today=office_date(acting.now),
                               allowed_communities=_allowed(session, acting))  # fmt: skip
    except LedgerError as exc:
        attempt.rollback()
        raise FileUnusable(str(exc)) from None
    if dry:
        attempt.rollback()
    else:
        attempt.commit()
    return report


def _details(sha256: str, file_format: str, report: ImportReport) -> dict[str, DetailValue]:
    never = sorted({r.catalogue_field for r in report.refused_columns if r.catalogue_field})
    return {
        "file.sha256": sha256, "file.format": file_format, "rows.read": report.rows_read,
        "rows.valid": report.rows_valid, "rows.invalid": report.invalid_rows,
        "rows.inserted": report.inserted, "rows.updated": report.updated,
        "errors": report.error_count, "columns.never_imported": tuple(never),
    }  # fmt: skip


def _check_role(acting: Acting) -> None:
    if not allowed(acting.identity.role, IMPORT_OPERATION):
        raise NotPermitted(f"role {acting.identity.role} may not import residents")


def stage(session: Session, keyring: Keyring, acting: Acting, data: bytes,
          file_format: str) -> Checked:  # fmt: skip
    """Keep the upload (encrypted) and check it by a dry run; see the module docstring."""
    _check_role(acting)
    if not data:
        raise InvalidInput.field("file", "required", "choose a file")
    if len(data) > MAX_BYTES:
        raise InvalidInput.field("file", "too_large", f"at most {MAX_BYTES // (1024 * 1024)} MB")
    purge_expired(session, acting.now)
    sha256 = hashlib.sha256(data).hexdigest()
    report = _run(session, keyring, acting, data, file_format, dry=True)
    row_id = new_id()
    key, wrapped = keyring.new_data_key(row_id)  # bound to this staged upload
    sealed = keyring.encrypt_field(key, base64.b64encode(data).decode("ascii"),
                                   FieldContext(_TABLE, "content", row_id))  # fmt: skip
    session.add(m.StagedImport(
        id=row_id, principal_id=acting.identity.id, created_at=acting.now,
        file_format=file_format, sha256=sha256, size=len(data), data_key=wrapped.to_bytes(),
        content=sealed, rows_read=report.rows_read, rows_invalid=report.invalid_rows,
    ))  # fmt: skip
    record(session, acting, "resident.import_check", details=_details(sha256, file_format, report),
           outcome=Outcome("ok" if report.ok else "denied",
                           "rows_valid" if report.ok else "rows_invalid"))  # fmt: skip
    session.flush()
    return Checked(row_id, report)


def _staged(session: Session, acting: Acting, staged_id: str) -> m.StagedImport:
    row = session.get(m.StagedImport, staged_id) if len(staged_id) <= 36 else None
    if row is None or row.principal_id != acting.identity.id or \
            row.created_at <= acting.now - MAX_AGE:  # fmt: skip
        raise NotFound("no such staged import")
    return row


def confirm(session: Session, keyring: Keyring, acting: Acting, staged_id: str) -> ImportReport:
    """Import the staged file for real (all or nothing) and forget it."""
    _check_role(acting)
    row = _staged(session, acting, staged_id)
    key = keyring.unwrap(WrappedKey.from_bytes(bytes(row.data_key)), row.id)
    data = base64.b64decode(keyring.decrypt_field(key, row.content,
                                                  FieldContext(_TABLE, "content", row.id)))
    sha256, file_format = row.sha256, row.file_format
    session.execute(delete(m.StagedImport).where(m.StagedImport.id == row.id))
    report = _run(session, keyring, acting, data, file_format, dry=False)
    outcome = Outcome("ok", "imported") if report.applied else Outcome("denied", "rows_invalid")
    record(session, acting, "resident.import", details=_details(sha256, file_format, report),
           outcome=outcome)  # fmt: skip
    return report


def cancel(session: Session, acting: Acting, staged_id: str) -> None:
    _check_role(acting)
    row = _staged(session, acting, staged_id)
    session.execute(delete(m.StagedImport).where(m.StagedImport.id == row.id))
    record(session, acting, "resident.import_cancel",
           details={"file.sha256": row.sha256, "file.format": row.file_format})  # fmt: skip


def purge_expired(session: Session, now: datetime) -> int:
    """Delete every staged file older than MAX_AGE (anyone's): uploads do not linger."""
    stale = list(session.scalars(select(m.StagedImport.id)
                                 .where(m.StagedImport.created_at <= now - MAX_AGE)))  # fmt: skip
    if stale:
        session.execute(delete(m.StagedImport).where(m.StagedImport.id.in_(stale)))
    return len(stale)
