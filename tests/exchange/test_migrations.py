"""The migrations build exactly the schema the models describe, on every backend."""

from __future__ import annotations

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
