"""Work the service does on its own while it serves: today, signing checkpoints on a schedule.

Runs in the app's lifespan, so only a running server (uvicorn, or a TestClient used as a
context manager) has it. Each tick is one unit of work in a worker thread; a failed tick is
logged (its error type only) and the next one tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

import structlog
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from exchange.services.checkpoints import issue_if_grown
from keys.keyring import Keyring

log = structlog.get_logger("exchange.schedule")


def checkpoint_tick(session_factory: sessionmaker[Session], keyring: Keyring,
                    clock: Callable[[], datetime]) -> int | None:
    """Issue a checkpoint if the log grew; returns its tree size, or None if none was due."""
    with session_factory.begin() as session:
        stored = issue_if_grown(session, keyring, clock())
    if stored is None:
        return None
    log.info("audit.checkpoint_issued", tree_size=stored.checkpoint.size)
    return stored.checkpoint.size


async def _every(interval: float, tick: Callable[[], object]) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(tick)
        except Exception as exc:  # noqa: BLE001 - a scheduled job must outlive one bad tick
            log.warning("audit.checkpoint_failed", error=type(exc).__name__)


def lifespan_with_checkpoints(
    interval: float, session_factory: sessionmaker[Session], keyring: Keyring | None,
    clock: Callable[[], datetime],
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        task = None
        if interval > 0 and keyring is not None:
            task = asyncio.create_task(
                _every(interval, lambda: checkpoint_tick(session_factory, keyring, clock)))
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    return lifespan
