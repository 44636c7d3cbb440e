"""Load the synthetic demo ledger into a database (`exchange dev up`, used by `make run`)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy.orm import Session

from exchange.ledger.importer import ensure_communities, import_ledger
from exchange.ledger.reader import MemorySource
from exchange.ledger.report import ImportReport
from exchange.ledger.synthetic import HEADER, generate_rows
from keys.keyring import Keyring
from policies import office_date


def load_demo(
    session: Session,
    keyring: Keyring,
    residents: int = 200,
    seed: int = 1000,
    *,
    today: date | None = None,
) -> ImportReport:
    """Register the 城阳街道 communities and import `residents` synthetic rows. Never commits.
    Re-running with the same seed and day updates the same residents (matched on blind index)."""
    as_of = today or office_date(datetime.now(UTC))
    ensure_communities(session)
    source = MemorySource(
        HEADER,
        lambda: generate_rows(residents, seed, as_of=as_of),
        f"synthetic demo ledger (seed {seed}, {residents} residents)",
    )
    return import_ledger(session, keyring, source, today=as_of)
