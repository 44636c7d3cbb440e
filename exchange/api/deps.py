"""Request-scoped dependencies the routers use: the unit of work, keyring, settings, clock.

`DbSession` is the request's unit of work: it commits when the endpoint returned normally and
rolls back when it raised, before the response is sent (scope="function"), so a response is
never sent for work that failed to commit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from exchange.db.engine import unit_of_work
from exchange.settings import Settings
from keys.keyring import Keyring


def _session(request: Request) -> Iterator[Session]:
    with unit_of_work(request.app.state.session_factory) as session:
        yield session


def _keyring(request: Request) -> Keyring:
    keyring: Keyring = request.app.state.keyring
    return keyring


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _clock(request: Request) -> Callable[[], datetime]:
    clock: Callable[[], datetime] = request.app.state.clock
    return clock


DbSession = Annotated[Session, Depends(_session, scope="function")]
AppKeyring = Annotated[Keyring, Depends(_keyring)]
AppSettings = Annotated[Settings, Depends(_settings)]
Clock = Annotated[Callable[[], datetime], Depends(_clock)]
