"""Counts per minute shared by every process through the database (`minute_counts`).

    bump(session, counter, key, window)    one more; the count so far (atomic across processes)
    recent(session, counter, key, window)  (this minute's count, the previous minute's)
    forget_before(session, counter, window)  drop the counter's minutes before `window`

Keys are keyed references (HMAC under the audit pseudonym key), never raw values. Never commits.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from exchange.db.models import MinuteCount


def bump(session: Session, counter: str, key: str, window: int) -> int:
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(MinuteCount)
        .values(counter=counter, key=key, window=window, count=1)
        .on_conflict_do_update(index_elements=["counter", "key", "window"],
                               set_={"count": MinuteCount.count + 1})
        .returning(MinuteCount.count)
    )  # fmt: skip
    return int(session.execute(statement).scalar_one())


def recent(session: Session, counter: str, key: str, window: int) -> tuple[int, int]:
    found = session.execute(
        select(MinuteCount.window, MinuteCount.count)
        .where(MinuteCount.counter == counter, MinuteCount.key == key,
               MinuteCount.window >= window - 1)
    ).all()  # fmt: skip
    rows = {int(w): int(n) for w, n in found}
    return rows.get(window, 0), rows.get(window - 1, 0)


def forget_before(session: Session, counter: str, window: int) -> None:
    session.execute(delete(MinuteCount).where(MinuteCount.counter == counter,
                                              MinuteCount.window < window))  # fmt: skip
