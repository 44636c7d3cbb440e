"""The import report: what was read, written, refused and why. Never a personal value.

Rendered as text for a terminal, as JSON for tools and the API, and the errors as CSV (cells
neutralised against formula injection). Row errors beyond `MAX_ERRORS_KEPT` are counted but not
listed, so a report on a wholly wrong 100,000-row file stays small.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from exchange.exports import csv_text
from exchange.ledger.headers import RefusedColumn
from exchange.ledger.validate import RowError

MAX_ERRORS_KEPT = 10_000


@dataclass
class ImportReport:
    source: str  # file name and format, e.g. "ledger.csv (CSV, gb18030)"
    partial: bool
    rows_read: int = 0
    rows_valid: int = 0
    inserted: int = 0
    updated: int = 0
    applied: bool = False  # whether anything was written
    refused_columns: tuple[RefusedColumn, ...] = ()
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0  # all row errors, including those not kept
    invalid_rows: int = 0

    def add_errors(self, errors: list[RowError]) -> None:
        self.invalid_rows += 1
        self.error_count += len(errors)
        room = MAX_ERRORS_KEPT - len(self.errors)
        if room > 0:
            self.errors.extend(errors[:room])

    @property
    def ok(self) -> bool:
        """True when every row was valid (and so, unless dry, all were written)."""
        return self.invalid_rows == 0

    @property
    def errors_truncated(self) -> bool:
        return self.error_count > len(self.errors)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "mode": "partial" if self.partial else "all_or_nothing",
            "applied": self.applied,
            "rows_read": self.rows_read,
            "rows_valid": self.rows_valid,
            "rows_invalid": self.invalid_rows,
            "inserted": self.inserted,
            "updated": self.updated,
            "refused_columns": [
                {
                    "column": r.position,
                    "header": r.header,
                    "reason": r.reason.value,
                    "catalogue_field": r.catalogue_field,
                }
                for r in self.refused_columns
            ],
            "error_count": self.error_count,
            "errors_truncated": self.errors_truncated,
            "errors": [
                {"row": e.row, "field": e.field, "header": e.header, "reason": e.reason,
                 "message": e.message}
                for e in self.errors
            ],
        }  # fmt: skip

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)

    def to_text(self) -> str:
        lines = [f"Import of {self.source} ({'partial' if self.partial else 'all-or-nothing'})"]
        lines.append(
            f"  rows read {self.rows_read}, valid {self.rows_valid}, invalid {self.invalid_rows}"
        )
        if self.applied:
            lines.append(f"  written: {self.inserted} new, {self.updated} updated")
        else:
            lines.append("  nothing was written")
        if self.refused_columns:
            lines.append("  columns not imported (never stored):")
            for r in self.refused_columns:
                why = (
                    f"never imported ({r.catalogue_field})"
                    if r.catalogue_field
                    else "unknown column"
                )
                lines.append(f"    column {r.position} {r.header}: {why}")
        if self.errors:
            lines.append(f"  {self.error_count} problem(s) in {self.invalid_rows} row(s):")
            lines.extend(f"    row {e.row}, {e.field}: {e.message}" for e in self.errors)
            if self.errors_truncated:
                lines.append(f"    … {self.error_count - len(self.errors)} more not listed")
        return "\n".join(lines)

    def errors_csv(self) -> str:
        return csv_text(("row", "field", "header", "reason", "message"),
                        ((e.row, e.field, e.header, e.reason, e.message) for e in self.errors))
