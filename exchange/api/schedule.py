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


# shutdown waits this long for a tick in progress (one signing transaction) to commit
STOP_GRACE_SECONDS = 10.0


async def _every(interval: float, tick: Callable[[], object], stop: asyncio.Event) -> None:
    while True:
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
            return  # asked to stop between ticks
        except TimeoutError:
            pass
        try:
            await asyncio.to_thread(tick)
        except Exception as exc:  # noqa: BLE001 - a scheduled job must outlive one bad tick
            log.warning("audit.checkpoint_failed", error=type(exc).__name__)


async def stop_schedule(task: asyncio.Task[None], stop: asyncio.Event,
                        grace: float = STOP_GRACE_SECONDS) -> bool:
    """Stop the schedule cleanly: no new tick starts; a tick in progress finishes (its
    transaction commits or rolls back whole) within `grace`. True when it stopped in time."""
    stop.set()
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout=grace)
    except TimeoutError:
        task.cancel()
        log.warning("audit.checkpoint_schedule_abandoned", grace_seconds=grace)
        return False
    log.info("audit.checkpoint_schedule_stopped")
    return True


def lifespan_with_checkpoints(
    interval: float, session_factory: sessionmaker[Session], keyring: Keyring | None,
    clock: Callable[[], datetime],
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        task = None
        stop = asyncio.Event()
        if interval > 0 and keyring is not None:
            task = asyncio.create_task(_every(
                interval, lambda: checkpoint_tick(session_factory, keyring, clock), stop))
        try:
            yield
        finally:
            if task is not None:
                await stop_schedule(task, stop)

    return lifespan
