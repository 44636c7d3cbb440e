"""Subprocess entry point: serve exactly as `make run` does (`exchange.cli.dev.serve`).

Configuration comes from EXCHANGE_* variables; start-up refusals print one line and exit 2.
"""

from __future__ import annotations

import sys

from exchange.cli.dev import serve
from exchange.settings import ConfigurationError, Settings


def main() -> None:
    try:
        serve(Settings())
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
