"""The migrations build exactly the schema the models describe, on every backend."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from exchange.db.engine import make_engine
from exchange.db.metadata import target_metadata
from exchange.db.migrate import current_revision, head_revision, is_up_to_date, upgrade


@pytest.mark.db
def test_models_and_migrations_do_not_drift(database_url: str) -> None:
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, target_metadata())
        assert diff == [], f"models and migrations differ: {diff}"
        assert is_up_to_date(engine)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


@pytest.mark.db
def test_upgrade_is_idempotent(database_url: str) -> None:
    upgrade(database_url)
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        assert "residents" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


@pytest.mark.db
def test_downgrade_removes_everything(database_url: str) -> None:
    from alembic import command

    from exchange.db.migrate import alembic_config

    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        config = alembic_config(database_url)
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        upgrade(database_url)  # and back up again, cleanly
        assert is_up_to_date(engine)
    finally:
        engine.dispose()


def test_a_detected_drift_is_reported() -> None:
    # the comparison must be able to fail: an empty database differs from the models
    engine = make_engine("sqlite://")
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), target_metadata())
    assert any(op[0] == "add_table" for op in diff)


@pytest.mark.db
def test_0003_moves_logged_entries_into_the_search_projection(database_url: str) -> None:
    """Entries written under 0002's layout stay searchable and fsck-clean after 0003, and a
    downgrade puts their search columns back."""
    from datetime import UTC, datetime

    from alembic import command
    from sqlalchemy import text

    from audit.entry import Action, Actor, AuditEntry, Subject, encode
    from audit.merkle import CompactRange, leaf_hash
    from audit.store import AuditLog, EntryFilter
    from exchange.db.engine import make_session_factory
    from exchange.db.migrate import alembic_config

    upgrade(database_url, "0002")
    engine = make_engine(database_url)
    tree = CompactRange()
    try:
        with engine.begin() as conn:  # what 0002's append wrote, column for column
            for i in range(3):
                item = AuditEntry(time=datetime(2026, 1, 1, 8, i, tzinfo=UTC),
                                  actor=Actor(f"c-{i}", "contractor"), action=Action.DISCLOSE,
                                  subjects=(Subject(f"ap_{i}"),), agreement="agr-1")
                data = encode(i, item)
                leaf = leaf_hash(data)
                conn.execute(text(
                    "INSERT INTO audit_entries (idx, time, actor_id, actor_role, action, "
                    "agreement, outcome, entry, leaf_hash, nodes) VALUES (:i, :t, :a, "
                    "'contractor', :act, 'agr-1', 'ok', :e, :l, :n)"),
                    {"i": i, "t": f"2026-01-01T08:0{i}:00.000000Z", "a": f"c-{i}",
                     "act": str(Action.DISCLOSE), "e": data, "l": leaf,
                     "n": b"".join(tree.append(leaf))})
                conn.execute(text("INSERT INTO audit_subjects (entry_idx, position, pseudonym) "
                                  "VALUES (:i, 0, :p)"), {"i": i, "p": f"ap_{i}"})
            conn.execute(text("UPDATE audit_head SET size = 3, frontier = :f WHERE id = 1"),
                         {"f": b"".join(tree.frontier())})
        upgrade(database_url)
        with make_session_factory(engine)() as s:
            log = AuditLog(s)
            assert [i["index"] for i in log.entries(EntryFilter(actor="c-1")).items] == [1]
            assert [i["index"] for i in log.entries(EntryFilter(pseudonym="ap_2")).items] == [2]
            assert log.fsck().ok
        config = alembic_config(database_url)
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0002")
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT idx, actor_id, agreement FROM audit_entries "
                                     "ORDER BY idx")).all()
        assert [tuple(r) for r in rows] == [(0, "c-0", "agr-1"), (1, "c-1", "agr-1"),
                                            (2, "c-2", "agr-1")]
    finally:
        engine.dispose()


@pytest.mark.db
def test_0011_adds_the_phone_index_which_reindex_phones_fills(
        database_url: str, tmp_path: Path) -> None:  # fmt: skip
    """Rows that lived through 0011 have no phone index until `reindex-phones`; a downgrade
    and an upgrade keep every row; afterwards an erased row may not hold a phone index."""
    from datetime import UTC, datetime

    from alembic import command
    from sqlalchemy import select, update
    from sqlalchemy.exc import IntegrityError

    from exchange.db import models as m
    from exchange.db.engine import make_session_factory, unit_of_work
    from exchange.db.migrate import _sqlite_foreign_keys_deferred, alembic_config
    from exchange.services import key_rotation
    from keys import BlindIndexField, Keyring, MemoryKeyProvider
    from tests.exchange.ledger.helpers import import_rows, person, with_communities

    upgrade(database_url)
    engine = make_engine(database_url)
    keyring = Keyring(MemoryKeyProvider.generate())
    try:
        factory = with_communities(make_session_factory(engine))
        people = [person(i) for i in range(3)]
        assert import_rows(factory, keyring, tmp_path, people).inserted == 3
        config = alembic_config(database_url)
        with engine.connect() as connection, _sqlite_foreign_keys_deferred(connection), \
                connection.begin():  # SQLite rebuilds residents, which others reference
            config.attributes["connection"] = connection
            command.downgrade(config, "0010")
        assert "phone_index" not in {c["name"] for c in inspect(engine).get_columns("residents")}
        upgrade(database_url)
        with factory() as s:
            assert s.scalars(select(m.Resident.phone_index)).all() == [None] * 3
        now = datetime(2026, 3, 10, tzinfo=UTC)
        assert key_rotation.reindex_phones(factory, keyring, lambda: now) == 3
        with factory() as s:
            stored = set(s.scalars(select(m.Resident.phone_index)))
        assert stored == {keyring.blind_index(p["联系电话"], field=BlindIndexField.PHONE)
                          for p in people}  # fmt: skip
        with pytest.raises(IntegrityError), unit_of_work(factory) as s:
            s.execute(update(m.Resident).values(
                erased_at=now, name=None, national_id=None, phone=None, birth_date=None,
                address_compound=None, address_building=None, address_unit=None,
                address_room=None, national_id_index=None))  # the phone index left behind
    finally:
        engine.dispose()
