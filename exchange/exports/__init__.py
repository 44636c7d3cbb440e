"""Every spreadsheet the broker writes (CSV and .xlsx) goes through here.

Write an export with `write_csv`, `csv_text`, `write_xlsx` or, for a formatted report,
`FormattedSheet`; build one by hand only from
`safe_row` / `safe_cell`. The rule they apply and why is in `exchange.exports.cells`;
tests/security/test_formula_injection.py fails if a module elsewhere opens its own CSV or
workbook writer.
"""

from exchange.exports.cells import (
    FORMULA_LEADS,
    CellValue,
    safe_cell,
    safe_row,
    starts_like_formula,
    unneutralise,
)
from exchange.exports.writers import FormattedSheet, csv_text, write_csv, write_xlsx

__all__ = [
    "FORMULA_LEADS", "CellValue", "FormattedSheet", "csv_text", "safe_cell", "safe_row",
    "starts_like_formula", "unneutralise", "write_csv", "write_xlsx",
]
