"""`exchange keys rotate-blind-index`: every stored ID-number index moves to a new key version,
online and crash-safe, while imports and registrations keep finding residents."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from exchange.db import models as m
from exchange.db.blind_index import blind_index_versions
from exchange.db.engine import unit_of_work
from exchange.services import key_rotation
from exchange.services.errors import Conflict
from keys import BlindIndexField, Keyring, MemoryKeyProvider, Purpose
from tests.exchange.ledger.helpers import import_rows, person, with_communities
from tests.world import audit_entries

pytestmark = pytest.mark.db
NOW = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)


def clock() -> datetime:
    return NOW


class Stop(Exception):
    """A crash in the middle of a rotation."""


@pytest.fixture
def keyring() -> Keyring:
    return Keyring(MemoryKeyProvider.generate())


@pytest.fixture
def factory(session_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    return with_communities(session_factory)


_import = import_rows


def _versions(factory: sessionmaker[Session]) -> dict[int, int]:
    with factory() as s:
        rows = s.execute(select(m.Resident.national_id_index_version, func.count())
                         .group_by(m.Resident.national_id_index_version)).all()  # fmt: skip
    return {int(v): int(n) for v, n in rows}


def _residents(factory: sessionmaker[Session]) -> int:
    with factory() as s:
        return int(s.scalar(select(func.count()).select_from(m.Resident)) or 0)


def _crash_after_first_batch(factory: sessionmaker[Session], keyring: Keyring) -> None:
    def stop(done: int) -> None:
        raise Stop(done)

    with pytest.raises(Stop):
        key_rotation.rotate_blind_index(factory, keyring, clock, batch_size=2, progress=stop)


def test_rotation_moves_every_index_and_retires_the_old_key(
        factory: sessionmaker[Session], keyring: Keyring, tmp_path: Path) -> None:
    assert _import(factory, keyring, tmp_path, [person(i) for i in range(5)]).inserted == 5
    with factory() as s:
        before = set(s.scalars(select(m.Resident.national_id_index)))
    result = key_rotation.rotate_blind_index(factory, keyring, clock, batch_size=2)
    assert (result.from_version, result.to_version, result.reindexed) == (1, 2, 5)
    assert not result.resumed and _versions(factory) == {2: 5}
    with factory() as s:
        after = set(s.scalars(select(m.Resident.national_id_index)))
        assert blind_index_versions(s, hold=False).lookup == (2,)
    assert after.isdisjoint(before) and len(after) == 5
    assert after == {keyring.blind_index(p["身份证号"], version=2)
                     for p in (person(i) for i in range(5))}  # fmt: skip
    provider = keyring.provider
    assert isinstance(provider, MemoryKeyProvider)
    assert provider.versions(Purpose.BLIND_INDEX) == [2]  # nothing is indexed under v1
    # the import still recognises everyone: an update, not five new residents
    report = _import(factory, keyring, tmp_path, [person(i) for i in range(5)])
    assert (report.inserted, report.updated) == (0, 5) and _residents(factory) == 5
    actions = [e["action"] for e in audit_entries(factory)]
    assert actions == ["key.rotate_blind_index", "key.reindex"]


def test_an_interrupted_rotation_resumes_and_writers_keep_matching(
        factory: sessionmaker[Session], keyring: Keyring, tmp_path: Path) -> None:
    _import(factory, keyring, tmp_path, [person(i) for i in range(5)])
    _crash_after_first_batch(factory, keyring)
    assert _versions(factory) == {1: 3, 2: 2}
    with factory() as s:
        status = key_rotation.status(s, keyring)
        assert status.blind_index == (1, 2, 3)
        assert blind_index_versions(s, hold=False).lookup == (2, 1)

    # meanwhile: residents under either version are found, new ones go under the new version,
    # and an updated resident moves to it with both her indexes (ID number and phone)
    with factory() as s:
        under_v1 = set(s.scalars(select(m.Resident.national_id_index)
                                 .where(m.Resident.national_id_index_version == 1)))  # fmt: skip
    old = [i for i in range(5) if keyring.blind_index(person(i)["身份证号"], 1) in under_v1]
    moved = [i for i in range(5) if i not in old]
    report = _import(factory, keyring, tmp_path, [person(old[0]), person(moved[0]), person(5)])
    assert (report.inserted, report.updated) == (1, 2) and _residents(factory) == 6
    assert _versions(factory) == {1: 2, 2: 4}
    with factory() as s:
        under_v2 = s.execute(select(m.Resident.national_id_index, m.Resident.phone_index)
                             .where(m.Resident.national_id_index_version == 2)).all()  # fmt: skip
    p = person(old[0])
    assert (keyring.blind_index(p["身份证号"], version=2),
            keyring.blind_index(p["联系电话"], version=2, field=BlindIndexField.PHONE)) in {
                tuple(r) for r in under_v2}  # fmt: skip

    result = key_rotation.rotate_blind_index(factory, keyring, clock, batch_size=2)
    assert result.resumed and (result.from_version, result.to_version) == (1, 2)
    assert result.reindexed == 2 and _versions(factory) == {2: 6}
    provider = keyring.provider
    assert isinstance(provider, MemoryKeyProvider)
    assert provider.versions(Purpose.BLIND_INDEX) == [2]  # one version added, not one per run
    with factory() as s:
        assert key_rotation.status(s, keyring).blind_index == (2, None, 0)
    assert [e["action"] for e in audit_entries(factory)].count("key.rotate_blind_index") == 1


def test_a_registration_during_the_rotation_is_still_a_duplicate(
        factory: sessionmaker[Session], keyring: Keyring, tmp_path: Path) -> None:
    from exchange.identity import Acting, Identity
    from exchange.services.residents import ResidentInput, register

    admin = Acting(Identity("p-admin", "admin", "office_admin", "管理员"), NOW)

    _import(factory, keyring, tmp_path, [person(i) for i in range(3)])
    _crash_after_first_batch(factory, keyring)
    with factory() as s:
        unmoved = s.scalars(select(m.Resident.national_id_index_version)).all()
    assert sorted(unmoved) == [1, 2, 2]
    for i in range(3):  # moved and not yet moved alike
        p = person(i)
        # valid in every field (a registration is checked before its ID is looked up)
        data = ResidentInput(name=p["姓名"], national_id=p["身份证号"], phone=p["联系电话"],
                             community=p["社区"], stage="孕期",
                             due_date=NOW.date() + timedelta(days=60))  # fmt: skip
        with unit_of_work(factory) as s, pytest.raises(Conflict):
            register(s, keyring, admin, data)


def test_a_rotation_waits_for_an_import_that_holds_the_marker(
        factory: sessionmaker[Session], keyring: Keyring) -> None:
    """What keeps a running import from writing under a version the rotation moved away from:
    the rotation cannot record its start while a writer's transaction holds the marker."""
    started = threading.Event()
    errors: list[BaseException] = []

    def rotate() -> None:
        try:
            key_rotation.rotate_blind_index(factory, keyring, clock,
                                            on_start=lambda *_: started.set())  # fmt: skip
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    writer = factory()
    try:
        assert blind_index_versions(writer).write == 1  # the import's first read, held
        thread = threading.Thread(target=rotate)
        thread.start()
        time.sleep(1.0)
        assert not started.is_set()  # waiting for the writer
        writer.commit()
    finally:
        writer.close()
    thread.join(30)
    assert errors == [] and started.is_set()
