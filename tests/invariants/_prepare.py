"""Subprocess entry point: what `exchange dev up` does before serving, with DEBUG logging.

Run as `python -m tests.invariants._prepare` with EXCHANGE_HOME / EXCHANGE_DATABASE_URL set;
`INVARIANTS_RESIDENTS` sets the size of the synthetic ledger (the same generator and importer
the demo uses, only smaller so the suite stays fast). Prints one `TOKEN <label> <token>` line
per demo principal on stdout; logs go to stderr so the harness can capture and scan them.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, date, datetime

from exchange.bootstrap import load_keyring
from exchange.cli.admin import init_home
from exchange.cli.dev import issue_demo_tokens
from exchange.db.engine import make_engine, make_session_factory, unit_of_work
from exchange.ledger.demo import load_demo
from exchange.logs import configure_logging
from exchange.settings import Settings

SEED = 1000


def main() -> None:
    settings = Settings()
    configure_logging(settings.effective_log_format, settings.log_level)
    residents = int(os.environ.get("INVARIANTS_RESIDENTS", "80"))
    init_home(settings, development=True)
    keyring = load_keyring(settings)
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    with unit_of_work(factory) as session:
        report = load_demo(session, keyring, residents, SEED, today=date.today())
        if not report.ok:
            print(f"demo ledger did not load ({report.error_count} errors)", file=sys.stderr)
            sys.exit(1)
    with unit_of_work(factory) as session:
        tokens = issue_demo_tokens(session, datetime.now(UTC))
    engine.dispose()
    for label, token in tokens:
        print(f"TOKEN {label} {token}", flush=True)


if __name__ == "__main__":
    main()
