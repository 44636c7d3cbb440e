"""SQLite writers of one process take the write lock in arrival order (exchange.db.engine).

The queue is released however a transaction ends (commit, rollback, an error inside the unit of
work, a session closed without either), so no writer is left waiting behind a finished one.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from exchange.db.engine import (
    WriterQueue,
    make_engine,
    make_session_factory,
    unit_of_work,
    writer_queue_for,
)


def test_waiters_are_served_in_arrival_order() -> None:
    queue = WriterQueue()
    assert queue.acquire(1)
    order: list[int] = []
    arrived = [threading.Event() for _ in range(3)]

    def writer(n: int) -> None:
        arrived[n].set()
        assert queue.acquire(5)
        order.append(n)
        queue.release()

    threads = []
    for n in range(3):  # each arrives only after the previous one queued
        t = threading.Thread(target=writer, args=(n,))
        t.start()
        arrived[n].wait(5)
        while len(queue._waiting) < n + 1:
            threading.Event().wait(0.001)
        threads.append(t)
    queue.release()
    for t in threads:
        t.join(5)
    assert order == [0, 1, 2]


def test_a_waiter_gives_up_after_its_timeout_and_the_queue_still_works() -> None:
    queue = WriterQueue()
    assert queue.acquire(1)
    assert queue.acquire(0.05) is False
    queue.release()
    assert queue.acquire(0.05) is True
    queue.release()


@pytest.mark.parametrize("ending", ["commit", "rollback", "error", "close"])
def test_every_way_a_transaction_ends_lets_the_waiting_writer_in(
    tmp_path: Path, ending: str
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'q.db'}")
    factory = make_session_factory(engine)
    with unit_of_work(factory) as s:
        s.execute(text("CREATE TABLE t (n INTEGER)"))
    queue = writer_queue_for(str(tmp_path / "q.db"))
    done = threading.Event()

    def second_writer() -> None:
        with unit_of_work(factory) as s:
            s.execute(text("INSERT INTO t VALUES (2)"))
        done.set()

    def start_second_and_wait_until_it_queues() -> threading.Thread:
        t = threading.Thread(target=second_writer)
        t.start()
        while not queue._waiting:
            threading.Event().wait(0.001)
        return t

    if ending == "error":
        with pytest.raises(RuntimeError), unit_of_work(factory) as first:
            first.execute(text("INSERT INTO t VALUES (1)"))
            second = start_second_and_wait_until_it_queues()
            raise RuntimeError("boom")
    else:
        first = factory()
        first.execute(text("INSERT INTO t VALUES (1)"))
        second = start_second_and_wait_until_it_queues()
        if ending == "commit":
            first.commit()
        elif ending == "rollback":
            first.rollback()
        first.close()  # "close": neither, the connection just goes back to the pool
    second.join(3)  # well inside the 5 s a waiter would give up after
    assert done.is_set(), "the waiting writer was not let in when the first one ended"
    engine.dispose()
