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
