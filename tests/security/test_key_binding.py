"""A wrapped data key swapped between residents (issue 14, finding 11, first half).

Before: a wrapped key was bound to nothing but its own header, so a key copied from one
resident's row to another's unwrapped there without complaint. Reads failed later, at the
first field; a write went through and put the second resident's new data under the first
one's key (erasing the second resident would then not shred it). Now a wrapped key is bound to
its owner (format 2: the owner id is associated data) and does not unwrap in any other row;
rows written before keep reading (format 1) until the root re-wrap binds them.

Trust boundary: the database. Whoever can write `resident_data_keys` (a DBA, a backup restore, a
SQL injection) can move bytes between rows; the keyring, outside the database, refuses them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from exchange.db import models as m
from exchange.db.engine import unit_of_work
from exchange.services import key_rotation
from exchange.services.residents import data_key
from keys import DecryptionError, FieldContext, Keyring, MemoryKeyProvider, WrappedKey
from keys.datakeys import WrappedHeader
from tests.exchange.ledger.helpers import import_rows, person, with_communities

pytestmark = pytest.mark.db
NOW = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)


@pytest.fixture
def keyring() -> Keyring:
    return Keyring(MemoryKeyProvider.generate())


@pytest.fixture
def factory(session_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    return with_communities(session_factory)


def _import(factory: sessionmaker[Session], keyring: Keyring, tmp_path: Path,
            rows: list[dict[str, str]]) -> None:  # fmt: skip
    report = import_rows(factory, keyring, tmp_path, rows)
    assert report.applied, report.to_text()


def _two_residents(factory: sessionmaker[Session], keyring: Keyring,
                   tmp_path: Path) -> tuple[str, str]:  # fmt: skip
    _import(factory, keyring, tmp_path, [person(0), person(1)])
    with factory() as s:
        a, b = sorted(s.scalars(select(m.Resident.id)))
    return a, b


def _wrapped(s: Session, rid: str) -> bytes:
    return bytes(s.get_one(m.ResidentDataKey, rid).wrapped_key)


def _swap(factory: sessionmaker[Session], a: str, b: str) -> None:
    """The attack: exchange the two residents' wrapped keys behind the broker's back."""
    with unit_of_work(factory) as s:
        wa, wb = _wrapped(s, a), _wrapped(s, b)
        for rid, data in ((a, wb), (b, wa)):
            s.execute(update(m.ResidentDataKey).where(m.ResidentDataKey.resident_id == rid)
                      .values(wrapped_key=data))  # fmt: skip


def _read_name(factory: sessionmaker[Session], keyring: Keyring, rid: str) -> str:
    keyring.clear_cache()
    with factory() as s:
        row = s.get_one(m.Resident, rid)
        key = data_key(keyring, row)
        assert key is not None and row.name is not None
        return keyring.decrypt_field(key, row.name, FieldContext("residents", "name", rid))


def test_a_swapped_key_is_refused_when_unwrapped(
        factory: sessionmaker[Session], keyring: Keyring, tmp_path: Path) -> None:
    a, b = _two_residents(factory, keyring, tmp_path)
    assert _read_name(factory, keyring, a)
    _swap(factory, a, b)
    keyring.clear_cache()
    with factory() as s, pytest.raises(DecryptionError):
        data_key(keyring, s.get_one(m.Resident, a))  # before any field is touched


def test_no_write_goes_under_a_swapped_key(
        factory: sessionmaker[Session], keyring: Keyring, tmp_path: Path) -> None:
    """Re-importing resident a after the swap would, before, have encrypted her new values
    under b's key; now the import stops and changes nothing."""
    a, b = _two_residents(factory, keyring, tmp_path)
    _swap(factory, a, b)
    with factory() as s:
        before = bytes(s.get_one(m.Resident, a).phone.to_bytes())  # type: ignore[union-attr]
    keyring.clear_cache()
    with pytest.raises(DecryptionError):
        _import(factory, keyring, tmp_path, [person(0) | {"联系电话": "13700000000"}])
    with factory() as s:
        assert bytes(s.get_one(m.Resident, a).phone.to_bytes()) == before  # type: ignore[union-attr]


def _legacy(keyring: Keyring, wrapped: WrappedKey, owner: str) -> bytes:
    """The same data key as a row written before the binding holds it: format 1."""
    key = keyring.unwrap(wrapped, owner)
    root = keyring.current_root()
    header = WrappedHeader.of(root.suite, root.key_id, root.version, key.suite, key.key_id,
                              key.version, format=1)  # fmt: skip
    return WrappedKey.build(header, root.wrap(key.material(), header.to_bytes())).to_bytes()


def test_old_rows_still_read_and_the_rotation_job_binds_them(
        factory: sessionmaker[Session], keyring: Keyring, tmp_path: Path) -> None:
    a, b = _two_residents(factory, keyring, tmp_path)
    names = {rid: _read_name(factory, keyring, rid) for rid in (a, b)}
    with unit_of_work(factory) as s:
        for rid in (a, b):
            old = _legacy(keyring, WrappedKey.from_bytes(_wrapped(s, rid)), rid)
            s.execute(update(m.ResidentDataKey).where(m.ResidentDataKey.resident_id == rid)
                      .values(wrapped_key=old))  # fmt: skip
    assert {rid: _read_name(factory, keyring, rid) for rid in (a, b)} == names
    with factory() as s:
        assert key_rotation.status(s, keyring).unbound_data_keys == 2
        assert key_rotation.root_rotation_pending(s, keyring)
    result = key_rotation.rotate_root(factory, keyring, lambda: NOW)
    assert result.resumed and result.version == 1  # bound under the same root, no new version
    assert result.progress.rewrapped == 2
    with factory() as s:
        assert key_rotation.status(s, keyring).unbound_data_keys == 0
        assert all(WrappedKey.from_bytes(_wrapped(s, rid)).bound for rid in (a, b))
    assert {rid: _read_name(factory, keyring, rid) for rid in (a, b)} == names
    _swap(factory, a, b)  # and from now on a swap is caught
    with pytest.raises(DecryptionError):
        _read_name(factory, keyring, a)
