"""EncryptedField stores only EncryptedValue, and UTCDateTime only aware timestamps."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Column, LargeBinary, MetaData, String, Table, insert, select, type_coerce
from sqlalchemy.exc import StatementError

from exchange.db.engine import make_engine
from exchange.db.types import EncryptedField, UTCDateTime
from keys.errors import DecryptionError, FormatError
from keys.fields import EncryptedValue, FieldContext
from tests.exchange.factories import keyring

SECRET = "李秀英"


def _table() -> Table:
    return Table(
        "t",
        MetaData(),
        Column("id", String(36), primary_key=True),
        Column("value", EncryptedField()),
        Column("at", UTCDateTime()),
    )


@pytest.mark.db
def test_round_trip_and_refusals(database_url: str) -> None:
    table = _table()
    engine = make_engine(database_url)
    table.metadata.create_all(engine)
    ring = keyring()
    key, _ = ring.new_data_key("row-1")
    context = FieldContext("t", "value", "row-1")
    value = ring.encrypt_field(key, SECRET, context)
    at = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
    try:
        with engine.begin() as conn:
            conn.execute(insert(table).values(id="row-1", value=value, at=at))
            loaded = conn.execute(select(table.c.value, table.c.at)).one()
        assert isinstance(loaded.value, EncryptedValue)
        assert loaded.value == value
        assert ring.decrypt_field(key, loaded.value, context) == SECRET
        assert loaded.at == at and loaded.at.tzinfo is not None

        for plaintext in (SECRET, SECRET.encode(), 13912345678, value.to_bytes()):
            with pytest.raises(StatementError) as caught, engine.begin() as conn:
                conn.execute(insert(table).values(id="row-2", value=plaintext))
            assert isinstance(caught.value.orig, TypeError)
            assert SECRET not in str(caught.value)
            assert "13912345678" not in str(caught.value)
        with pytest.raises(StatementError), engine.begin() as conn:
            conn.execute(insert(table).values(id="row-3", at=datetime(2026, 3, 1)))
        with engine.connect() as conn:
            assert conn.execute(select(table.c.id)).scalars().all() == ["row-1"]
    finally:
        engine.dispose()


def test_loading_garbage_is_refused_by_the_header_check() -> None:
    column_type = EncryptedField()
    with pytest.raises(FormatError):
        column_type.process_result_value(
            b"plain text, not a ciphertext", make_engine("sqlite://").dialect
        )
    assert column_type.process_result_value(None, make_engine("sqlite://").dialect) is None


@pytest.mark.db
def test_stored_bytes_read_raw_decrypt_as_the_column_type_reads_them(database_url: str) -> None:
    """A pull selects the column's stored bytes (type_coerce to LargeBinary, no EncryptedValue
    per field): they are the bytes EncryptedField wrote, on every backend and driver."""
    table = _table()
    engine = make_engine(database_url)
    table.metadata.create_all(engine)
    ring = keyring()
    key, _ = ring.new_data_key("row-1")
    value = ring.encrypt_field(key, SECRET, FieldContext("t", "value", "row-1"))
    plan = ring.stored_columns("t", ("value",))
    try:
        with engine.begin() as conn:
            conn.execute(insert(table).values(id="row-1", value=value))
            conn.execute(insert(table).values(id="row-2", value=None))
            query = select(table.c.id, type_coerce(table.c.value, LargeBinary))
            raw = dict(conn.execute(query).all())  # a Result itself has .keys()
        assert raw["row-1"] == value.to_bytes()
        assert ring.decrypt_stored_row(key, plan, "row-1", [raw["row-1"]]) == {"value": SECRET}
        assert ring.decrypt_stored_row(key, plan, "row-2", [raw["row-2"]]) == {}
        with pytest.raises(DecryptionError):  # bound to its row
            ring.decrypt_stored_row(key, plan, "row-2", [raw["row-1"]])
    finally:
        engine.dispose()
