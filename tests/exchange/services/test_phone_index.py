"""The phone's keyed blind index (`residents.phone_index`): every writer stores it, the 居民台账
phone lookup goes through it (decrypting only the rows it matches), rows stored before it
existed are still found and get it from `exchange keys reindex-phones` or a rotation, and an
erased resident holds none."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from exchange.db import models as m
from exchange.db.engine import unit_of_work
from exchange.identity import Acting, Identity
from exchange.ledger.importer import known_communities
from exchange.services import key_rotation, resident_ledger
from exchange.services.requests import erase
from exchange.services.residents import ResidentInput, register
from keys import BlindIndexField, Keyring, MemoryKeyProvider
from keys.datakeys import DataKey
from keys.fields import EncryptedValue
from tests.exchange.ledger.helpers import import_rows, person, with_communities
from tests.world import audit_entries

pytestmark = pytest.mark.db
NOW = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
PHONE = BlindIndexField.PHONE
HOME, ELSEWHERE = "民城路社区", "瑞阳路社区"


def clock() -> datetime:
    return NOW


class CountingKeyring(Keyring):
    """A keyring that counts the resident rows it decrypts (a fake, not a mock)."""

    def __init__(self) -> None:
        super().__init__(MemoryKeyProvider.generate())
        self.residents_decrypted: list[str] = []

    def decrypt_row(self, key: DataKey, table: str, row_id: str,  # type: ignore[override]
                    sealed: dict[str, EncryptedValue]) -> dict[str, str]:  # fmt: skip
        if table == "residents":
            self.residents_decrypted.append(row_id)
        return Keyring.decrypt_row(key, table, row_id, sealed)


@pytest.fixture
def keyring() -> CountingKeyring:
    return CountingKeyring()


@pytest.fixture
def factory(session_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    return with_communities(session_factory)


def _admin() -> Acting:
    return Acting(Identity("p-admin", "admin", "office_admin", "管理员"), NOW)


def _cadre(factory: sessionmaker[Session], community: str = HOME) -> Acting:
    with factory() as s:
        cid = known_communities(s)[community]
    return Acting(Identity("p-cadre", "cadre", "community_cadre", "社区干部",
                           community_ids=frozenset({cid})), NOW)  # fmt: skip


def _lookup(factory: sessionmaker[Session], keyring: Keyring, acting: Acting,
            phone: str) -> list[dict[str, Any]]:  # fmt: skip
    with unit_of_work(factory) as s:
        q = resident_ledger.parse_lookup(s, phone=phone)
        total, page = resident_ledger.search(s, keyring, acting, q)
    assert total == len(page)
    return [dict(r) for r in page]


def _indexes(factory: sessionmaker[Session]) -> dict[str, tuple[str | None, int]]:
    """resident id -> (phone_index, version)"""
    with factory() as s:
        rows = s.execute(select(m.Resident.id, m.Resident.phone_index,
                                m.Resident.national_id_index_version)).all()  # fmt: skip
    return {rid: (index, version) for rid, index, version in rows}


def _id_of(factory: sessionmaker[Session], keyring: Keyring, p: dict[str, str]) -> str:
    with factory() as s:
        rid = s.scalar(select(m.Resident.id).where(
            m.Resident.national_id_index == keyring.blind_index(p["身份证号"])))  # fmt: skip
    assert rid is not None
    return rid


def _forget_phone_indexes(factory: sessionmaker[Session]) -> None:
    """As rows stored before migration 0011 are."""
    with unit_of_work(factory) as s:
        s.execute(update(m.Resident).values(phone_index=None))


def test_the_import_stores_the_phone_index_in_its_own_domain(
        factory: sessionmaker[Session], keyring: Keyring, tmp_path: Path) -> None:
    people = [person(i) for i in range(3)]
    assert import_rows(factory, keyring, tmp_path, people).inserted == 3
    stored = _indexes(factory)
    for p in people:
        index, version = stored[_id_of(factory, keyring, p)]
        assert version == 1 and index == keyring.blind_index(p["联系电话"], field=PHONE)
        assert index != keyring.blind_index(p["身份证号"])
    # a re-import with a new phone rewrites it
    moved = dict(people[0], 联系电话="+86 137-0000-1111")
    assert import_rows(factory, keyring, tmp_path, [moved]).updated == 1
    assert _indexes(factory)[_id_of(factory, keyring, moved)][0] == keyring.blind_index(
        "13700001111", field=PHONE)


def test_registration_stores_the_phone_index(factory: sessionmaker[Session],
                                             keyring: Keyring) -> None:  # fmt: skip
    p = person(7)
    data = ResidentInput(name=p["姓名"], national_id=p["身份证号"], phone="139 1234 5678",
                         community=HOME, stage="pregnant",
                         due_date=date(2026, 8, 1))  # fmt: skip
    with unit_of_work(factory) as s:
        rid = register(s, keyring, _admin(), data)
    assert _indexes(factory)[rid][0] == keyring.blind_index("13912345678", field=PHONE)


def test_the_lookup_decrypts_only_the_rows_its_index_matches(
        factory: sessionmaker[Session], keyring: CountingKeyring, tmp_path: Path) -> None:
    family = "13811112222"
    people = [person(i) for i in range(6)]
    people[1]["联系电话"] = people[4]["联系电话"] = family  # a family shares a phone
    import_rows(factory, keyring, tmp_path, people)
    ids = [_id_of(factory, keyring, p) for p in people]
    # a non-matching row whose ciphertexts no longer decrypt: a scan would stop on it
    with unit_of_work(factory) as s:
        broken = s.get_one(m.Resident, ids[2])
        broken.phone, broken.name = s.get_one(m.Resident, ids[3]).phone, broken.phone

    keyring.residents_decrypted.clear()
    found = _lookup(factory, keyring, _admin(), "138-1111-2222")
    assert sorted(r["id"] for r in found) == sorted([ids[1], ids[4]])
    assert sorted(keyring.residents_decrypted) == sorted([ids[1], ids[4]])
    assert all(r["phone"] == "138****2222" for r in found)

    keyring.residents_decrypted.clear()
    assert [r["id"] for r in _lookup(factory, keyring, _admin(), people[0]["联系电话"])] == [ids[0]]
    assert keyring.residents_decrypted == [ids[0]]
    assert _lookup(factory, keyring, _admin(), "13999999999") == []
    # the audit of the lookup is unchanged: a keyed reference, never the number
    entries = [e for e in audit_entries(factory) if e["action"] == "resident.lookup"]
    assert entries and all(family not in str(e) for e in entries)


def test_the_lookup_stays_in_scope(factory: sessionmaker[Session], keyring: Keyring,
                                   tmp_path: Path) -> None:  # fmt: skip
    home, away = person(0), dict(person(1), 社区=ELSEWHERE, 联系电话=person(0)["联系电话"])
    import_rows(factory, keyring, tmp_path, [home, away])
    found = _lookup(factory, keyring, _cadre(factory), home["联系电话"])
    assert [r["id"] for r in found] == [_id_of(factory, keyring, home)]
    assert len(_lookup(factory, keyring, _admin(), home["联系电话"])) == 2


def test_rows_without_an_index_are_still_found_then_indexed(
        factory: sessionmaker[Session], keyring: CountingKeyring, tmp_path: Path) -> None:
    people = [person(i) for i in range(5)]
    import_rows(factory, keyring, tmp_path, people)
    _forget_phone_indexes(factory)
    with factory() as s:
        assert key_rotation.status(s, keyring).unindexed_phones == 5

    # before the backfill the lookup falls back to decrypting the unindexed rows in scope
    target = _id_of(factory, keyring, people[3])
    assert [r["id"] for r in _lookup(factory, keyring, _admin(), people[3]["联系电话"])] == [target]

    class Stop(Exception):
        pass

    def stop(done: int) -> None:
        raise Stop(done)

    with pytest.raises(Stop):  # interrupted after its first committed batch
        key_rotation.reindex_phones(factory, keyring, clock, batch_size=2, progress=stop)
    assert sum(index is not None for index, _ in _indexes(factory).values()) == 2
    assert key_rotation.reindex_phones(factory, keyring, clock, batch_size=2) == 3  # resumes
    assert key_rotation.reindex_phones(factory, keyring, clock, batch_size=2) == 0
    for p in people:
        assert _indexes(factory)[_id_of(factory, keyring, p)][0] == keyring.blind_index(
            p["联系电话"], field=PHONE)
    with factory() as s:
        assert key_rotation.status(s, keyring).unindexed_phones == 0
    runs = [e for e in audit_entries(factory) if e["action"] == "key.reindex_phones"]
    assert [e["details"] for e in runs] == [{"residents": 3}, {"residents": 0}]

    keyring.residents_decrypted.clear()
    assert [r["id"] for r in _lookup(factory, keyring, _admin(), people[3]["联系电话"])] == [target]
    assert keyring.residents_decrypted == [target]


def test_a_rotation_reindexes_phones(factory: sessionmaker[Session], keyring: Keyring,
                                     tmp_path: Path) -> None:  # fmt: skip
    people = [person(i) for i in range(4)]
    import_rows(factory, keyring, tmp_path, people)
    ids = [_id_of(factory, keyring, p) for p in people]
    with unit_of_work(factory) as s:  # one row stored before the phone index
        s.execute(update(m.Resident).where(m.Resident.id == ids[0]).values(phone_index=None))
    before = _indexes(factory)
    result = key_rotation.rotate_blind_index(factory, keyring, clock, batch_size=3)
    assert (result.to_version, result.reindexed) == (2, 4)
    after = _indexes(factory)
    for rid, p in zip(ids, people, strict=True):
        assert after[rid] == (keyring.blind_index(p["联系电话"], version=2, field=PHONE), 2)
    assert {i for i, _ in after.values()}.isdisjoint({i for i, _ in before.values()})
    found = _lookup(factory, keyring, _admin(), people[2]["联系电话"])
    assert [r["id"] for r in found] == [ids[2]]


def test_an_erased_resident_holds_no_phone_index(
        factory: sessionmaker[Session], keyring: Keyring, tmp_path: Path) -> None:
    import_rows(factory, keyring, tmp_path, [person(0), person(1)])
    rid = _id_of(factory, keyring, person(0))
    with unit_of_work(factory) as s:
        erase(s, keyring, _admin(), rid)
    assert _indexes(factory)[rid][0] is None
    assert _lookup(factory, keyring, _admin(), person(0)["联系电话"]) == []
