"""Scheduled checkpoints: a running server signs the head when the log has grown, and only then."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from audit.entry import Action, Actor, AuditEntry, Subject
from audit.store import AuditLog, append
from audit.store.search import indexed_size
from audit.store.tables import checkpoints
from exchange.api.schedule import checkpoint_tick
from tests.exchange import factories as f
from tests.exchange.api.apptools import build

pytestmark = pytest.mark.db


def _grow(factory: sessionmaker[Session], n: int) -> None:
    from datetime import UTC, datetime

    with factory.begin() as s:
        for i in range(n):
            append(s, AuditEntry(time=datetime(2026, 3, 1, 9, tzinfo=UTC),
                                 actor=Actor("p-contractor", "contractor"),
                                 action=Action.DISCLOSE, subjects=(Subject(f"ap_{i}"),)))


def _count(factory: sessionmaker[Session]) -> int:
    with factory() as s:
        return int(s.scalar(select(func.count()).select_from(checkpoints)) or 0)


def test_tick_signs_only_a_grown_log_and_refreshes_search(
        database_url: str, tmp_path: Path, migrated_sqlite_template: Path) -> None:
    h = build(database_url, tmp_path, template=migrated_sqlite_template)
    keyring = f.keyring()
    _grow(h.factory, 3)
    assert checkpoint_tick(h.factory, keyring, h.clock) == 3
    assert checkpoint_tick(h.factory, keyring, h.clock) is None  # nothing new: nothing signed
    _grow(h.factory, 2)
    assert checkpoint_tick(h.factory, keyring, h.clock) == 5
    with h.factory() as s:
        assert _count(h.factory) == 2
        assert indexed_size(s) == 5
        latest = AuditLog(s).latest_checkpoint()
        assert latest is not None and latest.checkpoint.size == 5


def test_a_running_server_issues_checkpoints_on_its_schedule(
        database_url: str, tmp_path: Path, migrated_sqlite_template: Path) -> None:
    h = build(database_url, tmp_path, template=migrated_sqlite_template,
              checkpoint_interval=0.05)
    _grow(h.factory, 2)
    with TestClient(h.app):  # runs the lifespan, hence the schedule
        deadline = time.monotonic() + 10
        while _count(h.factory) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert _count(h.factory) == 1


def test_interval_zero_turns_the_schedule_off(
        database_url: str, tmp_path: Path, migrated_sqlite_template: Path) -> None:
    h = build(database_url, tmp_path, template=migrated_sqlite_template, checkpoint_interval=0)
    _grow(h.factory, 1)
    with TestClient(h.app):
        time.sleep(0.3)
    assert _count(h.factory) == 0
