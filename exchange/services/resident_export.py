"""导出: the resident ledger's current query, masked exactly as on screen, audited.

The rows are the ledger query's own masked rows (`resident_ledger.walk`), in the acting's
scope; the caller writes them where it wants (the console into a streamed workbook). Every
`CHUNK` rows written append one `resident.export` entry naming their residents' pseudonyms,
with the export's id, part number, row count, format, the filters used and, for an identifying
lookup, the field and keyed reference (never the value). An export of nothing is recorded too.
The entries are in the caller's transaction: if one cannot be appended the export fails and
nothing is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from audit.entry import DetailValue
from exchange.db.ids import new_id
from exchange.identity import Acting
from exchange.services import resident_ledger
from exchange.services.audit_access import record, subject
from exchange.services.resident_ledger import LedgerQuery, MaskedResident
from keys.keyring import Keyring

ACTION = "resident.export"
CHUNK = 1000  # residents named per audit entry (an entry stays small; memory stays flat)


@dataclass(frozen=True, slots=True)
class ExportReceipt:
    export_id: str
    rows: int
    audit_entries: int


def _filters(q: LedgerQuery) -> tuple[str, ...]:
    used = (("community", q.community_id), ("stage", q.stage), ("due_month", q.due_month),
            ("assignment", q.assignment))  # fmt: skip
    return tuple(name for name, value in used if value is not None)


def export(
    session: Session,
    keyring: Keyring,
    acting: Acting,
    q: LedgerQuery,
    write: Callable[[MaskedResident], None],
    *,
    file_format: str = "xlsx",
) -> ExportReceipt:
    """Write every masked row of `q` through `write`, auditing as it goes."""
    export_id = new_id()
    base: dict[str, DetailValue] = {"export.id": export_id, "export.format": file_format,
                                    "view": "masked", "filters": _filters(q)}  # fmt: skip
    if q.lookup is not None:
        value = q.national_id if q.national_id is not None else q.phone
        assert value is not None
        base["lookup.field"] = q.lookup
        base["lookup.ref"] = resident_ledger.lookup_reference(keyring, q.lookup, value)
    pending: list[str] = []
    rows = parts = 0

    def flush() -> None:
        nonlocal parts
        record(session, acting, ACTION, subjects=[subject(keyring, i) for i in pending],
               details={**base, "export.part": parts, "export.rows": len(pending)})  # fmt: skip
        parts += 1
        pending.clear()

    for row in resident_ledger.walk(session, keyring, acting, q):
        write(row)
        pending.append(row["id"])
        rows += 1
        if len(pending) >= CHUNK:
            flush()
    if pending or parts == 0:
        flush()
    return ExportReceipt(export_id, rows, parts)
