"""Engines, session factories and the unit of work.

Services receive a `Session` and never commit; `unit_of_work` commits once when the whole
operation succeeded and rolls back otherwise, so an audit append and the read it records land
together or not at all. One kind of failure commits first: a `CommitThenRaise` (a refused read
whose denial was audited, e.g. an unknown case reference) keeps its audit entry, then
propagates so the caller still answers the refusal.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from audit.store import register_sqlite_functions

SQLITE_BUSY_TIMEOUT_MS = 5000
# Page cache for one bulk write (a ledger import), in KiB. SQLite's default of 2 MiB is far
# smaller than the indexes of random ids an import of 100,000 rows extends; beyond ~16 MiB the
# gain was small while the memory is held until the import ends.
SQLITE_BULK_CACHE_KIB = 16384


def _sqlite_pragmas(dbapi_connection: Any, record: Any) -> None:
    # Python's sqlite3 opens transactions lazily; let SQLAlchemy emit BEGIN itself so that
    # a read-then-write unit of work holds its locks from the start.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()
    # the hash functions the audit log's insert guard calls (audit.store.guard)
    register_sqlite_functions(dbapi_connection)
    record.info["audit.store.sqlite_functions"] = True


@contextmanager
def bulk_write_pragmas(connection: Connection) -> Iterator[None]:
    """A larger page cache on this connection for the duration of one bulk write, then the
    previous size again (the pooled connection keeps the small default otherwise). Only the
    cache: WAL, secure_delete, foreign keys and synchronous stay as they are."""
    if connection.dialect.name != "sqlite":
        yield
        return
    previous = int(connection.exec_driver_sql("PRAGMA cache_size").scalar_one())
    connection.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_BULK_CACHE_KIB}")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size={previous}")


class WriterQueue:
    """First come, first served: which transaction of this process may BEGIN IMMEDIATE next
    on one SQLite file.

    SQLite's own wait (busy_timeout) polls with sleeps of up to 100 ms, so while writers keep
    coming a newcomer can take the lock ahead of one that has waited for seconds: measured with
    4 concurrent contractor pullers, p99 of a page 1.5-5 s and now and then a 503 ("database is
    locked" after 5 s). Waiting here instead hands the lock to the next writer the moment it is
    free, in arrival order. Other processes on the file still meet at SQLite's lock and its
    busy timeout; a writer that waits here longer than that goes on to SQLite's wait too.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiting: deque[threading.Event] = deque()
        self._held = False

    def acquire(self, timeout: float) -> bool:
        with self._mutex:
            if not self._held and not self._waiting:
                self._held = True
                return True
            turn = threading.Event()
            self._waiting.append(turn)
        if turn.wait(timeout):
            return True  # handed over by release()
        with self._mutex:
            if turn.is_set():  # handed over just as the wait ended
                return True
            self._waiting.remove(turn)
            return False

    def release(self) -> None:
        with self._mutex:
            if self._waiting:
                self._waiting.popleft().set()  # ownership passes on; _held stays True
            else:
                self._held = False


_HOLDS_QUEUE = "exchange.writer_queue"
_QUEUES: dict[str, WriterQueue] = {}
_QUEUES_LOCK = threading.Lock()


def writer_queue_for(database: str) -> WriterQueue:
    with _QUEUES_LOCK:
        return _QUEUES.setdefault(database, WriterQueue())


def _sqlite_begin(queue: WriterQueue) -> Any:
    def begin(conn: Any) -> None:
        holds = conn.info.get(_HOLDS_QUEUE) or queue.acquire(SQLITE_BUSY_TIMEOUT_MS / 1000)
        conn.info[_HOLDS_QUEUE] = holds
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            _release(queue, conn.info)
            raise

    return begin


def _release(queue: WriterQueue, info: dict[Any, Any]) -> None:
    if info.pop(_HOLDS_QUEUE, False):
        queue.release()


def _sqlite_end(queue: WriterQueue) -> Any:
    """Release the queue when the transaction ends (a commit or a rollback)."""
    return lambda conn: _release(queue, conn.info)


def _sqlite_checkin(queue: WriterQueue) -> Any:
    """... or, failing both, when its connection goes back to the pool."""
    return lambda _dbapi_connection, record: _release(queue, record.info)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with the pragmas and driver our invariants depend on."""
    parsed = make_url(url)
    # a database error's message never carries the bound values (SQLAlchemy appends them by
    # default): they are ciphertexts, blind indexes and ids at best, and errors get logged
    kwargs.setdefault("hide_parameters", True)
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, **kwargs)
        queue = writer_queue_for(parsed.database or ":memory:")
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin(queue))
        event.listen(engine, "commit", _sqlite_end(queue))
        event.listen(engine, "rollback", _sqlite_end(queue))
        event.listen(engine.pool, "checkin", _sqlite_checkin(queue))
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(parsed, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


class CommitThenRaise(Exception):
    """Mixed into an error whose work so far must persist: the unit of work commits, then the
    error propagates (exchange.services.errors.AuditedDenial is the one kind today)."""


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit when the block succeeds, roll back when it raises (after
    committing when the error is a `CommitThenRaise`)."""
    session = factory()
    try:
        yield session
        session.commit()
    except CommitThenRaise:
        session.commit()  # a failing commit raises its own error, which wins
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
