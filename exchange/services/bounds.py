"""Upper bounds for client-supplied integers that reach SQL.

A Python int beyond what the column or clause holds makes the driver raise (`OverflowError`
on SQLite, `DataError` "out of range" on PostgreSQL) — a 500 where bad input deserves a 4xx.
Every offset, cursor position or index a client sends is checked against the bound of where
it lands, at the boundary, so it is refused with a problem naming the field.
"""

from __future__ import annotations

# OFFSET and BIGINT columns (audit indexes): signed 64-bit on both databases.
MAX_SQL_INT = 2**63 - 1
# INTEGER columns (the feed sequences): signed 32-bit on PostgreSQL.
MAX_SQL_INT32 = 2**31 - 1
