"""Console tests hash passwords with argon2's cheapest parameters (the production parameters
are checked once, in test_accounts); everything else is the real thing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher, profiles

from exchange.services import accounts


@pytest.fixture(autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    real = accounts._HASHER
    accounts._HASHER = PasswordHasher.from_parameters(profiles.CHEAPEST)
    try:
        yield
    finally:
        accounts._HASHER = real


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from tests.exchange.console.browser import SKIPPED

    if SKIPPED:
        terminalreporter.write_sep("!", f"{len(SKIPPED)} browser tests SKIPPED: {SKIPPED[0]}",
                                   yellow=True, bold=True)  # fmt: skip
