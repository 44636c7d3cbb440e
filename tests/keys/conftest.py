from __future__ import annotations

from datetime import UTC, datetime

import pytest

from keys import InMemoryKeyEventSink, Keyring, MemoryKeyProvider, Suite


@pytest.fixture
def provider() -> MemoryKeyProvider:
    return MemoryKeyProvider.generate()


@pytest.fixture
def keyring(provider: MemoryKeyProvider) -> Keyring:
    return Keyring(provider)


@pytest.fixture
def gm_keyring(provider: MemoryKeyProvider) -> Keyring:
    return Keyring(provider, Suite.GM)


@pytest.fixture
def sink() -> InMemoryKeyEventSink:
    return InMemoryKeyEventSink()


def fixed_clock() -> datetime:
    return datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
