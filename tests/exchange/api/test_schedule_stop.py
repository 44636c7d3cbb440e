"""The checkpoint schedule stops cleanly: a tick in progress finishes, no new one starts, and a
tick that overruns the grace is abandoned (reported) rather than holding shutdown forever."""

from __future__ import annotations

import asyncio
import time

from exchange.api.schedule import _every, stop_schedule


def _run(tick_seconds: float, grace: float) -> tuple[bool, int, int, bool]:
    async def main() -> tuple[bool, int, int, bool]:
        started: list[float] = []
        finished: list[float] = []

        def tick() -> None:
            started.append(time.monotonic())
            time.sleep(tick_seconds)
            finished.append(time.monotonic())

        stop = asyncio.Event()
        task = asyncio.create_task(_every(0.01, tick, stop))
        while not started:
            await asyncio.sleep(0.005)
        stopped = await stop_schedule(task, stop, grace=grace)
        await asyncio.sleep(0)
        return stopped, len(started), len(finished), task.done()

    return asyncio.run(main())


def test_stop_lets_the_tick_in_progress_finish_and_starts_no_other() -> None:
    assert _run(0.3, grace=5) == (True, 1, 1, True)


def test_a_tick_overrunning_the_grace_is_abandoned() -> None:
    stopped, started, finished, _ = _run(1.0, grace=0.1)
    assert (stopped, started) == (False, 1) and finished in (0, 1)


def test_stop_between_ticks_is_immediate() -> None:
    async def main() -> float:
        stop = asyncio.Event()
        task = asyncio.create_task(_every(3600, lambda: None, stop))
        await asyncio.sleep(0.01)
        begin = time.monotonic()
        assert await stop_schedule(task, stop)
        return time.monotonic() - begin

    assert asyncio.run(main()) < 1.0
