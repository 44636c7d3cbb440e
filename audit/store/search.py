"""The search projection: who, what and whom of each entry, indexed for auditors and the office.

Appends write only the log (`audit_entries`); `refresh_search` derives `audit_search` and
`audit_subjects` from the entries' own canonical bytes, in index order, and every search runs it
first. The projection therefore never lags behind a search, costs the append path nothing, and
can be checked (fsck) or rebuilt from the log alone.

Several brokers may refresh at once: rows go in with ON CONFLICT DO NOTHING, so a refresh that
lost the race to another simply finds its rows already there (PostgreSQL makes it wait for the
other transaction's outcome first). A refresh that meets a gap or an entry it cannot read stops
with IntegrityError naming the index: a search never silently skips an entry.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Insert, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from audit.errors import IntegrityError
from audit.store.tables import entries, head, search, subjects

REFRESH_CHUNK = 5000

SearchRow = dict[str, Any]
SubjectRow = dict[str, Any]


def projection(index: int, data: bytes) -> tuple[SearchRow, list[SubjectRow]]:
    """The search row and subject rows an entry's canonical bytes give."""
    try:
        doc = json.loads(data)
        row: SearchRow = {
            "idx": index,
            "time": doc["time"],
            "actor_id": doc["actor"]["id"],
            "actor_role": doc["actor"]["role"],
            "action": doc["action"],
            "agreement": doc["agreement"],
            "outcome": doc["outcome"]["result"],
        }
        pseudonyms = [s["pseudonym"] for s in doc["subjects"]]
    except (ValueError, TypeError, KeyError):
        raise IntegrityError(f"entry {index} cannot be read: run exchange audit fsck") from None
    if doc.get("index") != index:
        raise IntegrityError(f"entry {index} carries another index: run exchange audit fsck")
    return row, [{"entry_idx": index, "position": i, "pseudonym": p}
                 for i, p in enumerate(pseudonyms)]


def indexed_size(session: Session) -> int:
    """How many entries (a prefix of the log) the projection covers."""
    last = session.execute(select(func.max(search.c.idx))).scalar()
    return 0 if last is None else int(last) + 1


def refresh_search(session: Session, *, chunk: int = REFRESH_CHUNK) -> int:
    """Project every committed entry the projection lacks; returns how many were added.

    Runs in the caller's transaction (never commits).
    """
    after = indexed_size(session) - 1
    size = int(session.execute(select(head.c.size).where(head.c.id == 1)).scalar_one())
    added = 0
    while after + 1 < size:
        rows = session.execute(
            select(entries.c.idx, entries.c.entry)
            .where(entries.c.idx > after, entries.c.idx < size)
            .order_by(entries.c.idx).limit(chunk)
        ).all()
        if not rows:
            raise IntegrityError(f"entry {after + 1} is missing: run exchange audit fsck")
        search_rows: list[SearchRow] = []
        subject_rows: list[SubjectRow] = []
        for expected, r in enumerate(rows, after + 1):
            if r.idx != expected:
                raise IntegrityError(f"entry {expected} is missing: run exchange audit fsck")
            row, subject_list = projection(expected, bytes(r.entry))
            search_rows.append(row)
            subject_rows += subject_list
        session.execute(_insert_ignore(session, search), search_rows)
        if subject_rows:
            session.execute(_insert_ignore(session, subjects), subject_rows)
        after = rows[-1].idx
        added += len(rows)
    return added


def _insert_ignore(session: Session, table: Any) -> Insert:
    if session.get_bind().dialect.name == "postgresql":
        return pg_insert(table).on_conflict_do_nothing()
    return sqlite_insert(table).on_conflict_do_nothing()


def projection_problems(index: int, data: bytes, stored: Mapping[str, Any] | None,
                        pseudonyms: list[str]) -> str | None:
    """What is wrong with the projection of one entry (fsck), or None."""
    try:
        row, subject_list = projection(index, data)
    except IntegrityError:
        return None  # the entry itself is reported as undecodable
    if stored is None:
        return "the search projection lacks this entry"
    if any(stored[k] != v for k, v in row.items()):
        return "the search row disagrees with the entry"
    if pseudonyms != [s["pseudonym"] for s in subject_list]:
        return "subject rows disagree with the entry"
    return None
