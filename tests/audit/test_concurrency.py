"""Several brokers appending at once keep the log total and gap-free."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from audit.merkle import root_of
from audit.store import AuditLog, append, append_many
from tests.audit.conftest import disclosure

pytestmark = pytest.mark.db
WRITERS = 8
PER_WRITER = 15


def test_concurrent_writers_leave_no_gap_and_no_duplicate(
        engine: sa.Engine, sessions: sessionmaker[Session]) -> None:
    engine.pool.dispose()
    barrier = threading.Barrier(WRITERS)
    got: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def writer(w: int) -> None:
        try:
            barrier.wait()
            for k in range(PER_WRITER):
                with sessions.begin() as s:
                    if k % 5 == 4:
                        idx = append_many(s, [disclosure(w * 100 + k), disclosure(w * 100 + k)])
                    else:
                        idx = [append(s, disclosure(w * 100 + k))]
                with lock:
                    got.extend(idx)
                if k == 2:  # a rolled-back append must not leave a gap
                    with sessions() as s:
                        append(s, disclosure(0))
                        s.rollback()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    total = WRITERS * (PER_WRITER + PER_WRITER // 5)
    assert sorted(got) == list(range(total))
    with sessions() as s:
        rows = s.execute(sa.text("SELECT idx, entry FROM audit_entries ORDER BY idx")).all()
        assert [r.idx for r in rows] == list(range(total))
        log = AuditLog(s)
        assert log.size() == total
        assert log.head().root == root_of([bytes(r.entry) for r in rows])
        assert log.fsck().ok
