"""decrypt_stored_row (stored bytes in, no EncryptedValue) is decrypt_row, and stays closed."""

from __future__ import annotations

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from keys import DecryptionError, EncryptedValue, FieldContext, Keyring, MemoryKeyProvider, Suite
from keys.datakeys import DataKey
from keys.fields import HEADER_LENGTH, StoredColumns, stored_columns

COLUMNS = ("name", "phone", "room")
TEXTS = {"name": "李秀英", "phone": "13812345678", "room": "501"}


def _stored(keyring: Keyring, key: DataKey, row_id: str, table: str = "residents") -> list[bytes]:
    sealed = keyring.encrypt_row(key, table, row_id, TEXTS)
    return [sealed[column].to_bytes() for column in COLUMNS]


def _flip(data: bytes, index: int) -> bytes:
    changed = bytearray(data)
    changed[index] ^= 1
    return bytes(changed)


def _assert_opaque(
    keyring: Keyring, key: DataKey, plan: StoredColumns, row_id: str, stored: list[bytes | None]
) -> None:
    with pytest.raises(DecryptionError) as info:
        keyring.decrypt_stored_row(key, plan, row_id, stored)
    error = info.value
    assert str(error) == "decryption failed"
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__


@pytest.mark.parametrize("suite", list(Suite))
@pytest.mark.parametrize("warm", [False, True])
def test_stored_row_is_decrypt_row(suite: Suite, warm: bool) -> None:
    keyring = Keyring(MemoryKeyProvider.generate(), suite)
    key, _ = keyring.new_data_key("resident-1")
    plan = keyring.stored_columns("residents", COLUMNS)
    stored = _stored(keyring, key, "r-1")
    if warm:
        keyring.decrypt_stored_row(key, plan, "r-1", stored)
    assert keyring.decrypt_stored_row(key, plan, "r-1", stored) == TEXTS
    parsed = {c: EncryptedValue.from_bytes(raw) for c, raw in zip(COLUMNS, stored, strict=True)}
    assert keyring.decrypt_row(key, "residents", "r-1", parsed) == TEXTS


@settings(max_examples=80, deadline=None)
@given(
    values=st.lists(st.one_of(st.none(), st.text(max_size=30)), min_size=1, max_size=5),
    row_id=st.text(min_size=1, max_size=40),
    table=st.sampled_from(["residents", "children", "maternal_episodes"]),
)
def test_stored_row_agrees_with_decrypt_row_on_random_rows(
    values: list[str | None], row_id: str, table: str
) -> None:
    keyring = Keyring(MemoryKeyProvider.generate())
    key, _ = keyring.new_data_key("resident-1")
    columns = tuple(f"c{i}" for i in range(len(values)))
    present = {c: v for c, v in zip(columns, values, strict=True) if v is not None}
    sealed = keyring.encrypt_row(key, table, row_id, present)
    stored = [sealed[c].to_bytes() if c in sealed else None for c in columns]
    plan = keyring.stored_columns(table, columns)
    expected = keyring.decrypt_row(key, table, row_id, sealed)
    assert expected == present
    assert keyring.decrypt_stored_row(key, plan, row_id, stored) == expected
    # again, warm, and from buffers as a driver might hand them over
    buffers = [None if raw is None else memoryview(raw) for raw in stored]
    assert keyring.decrypt_stored_row(key, plan, row_id, buffers) == expected


@pytest.mark.parametrize("position", [0, 1, 2])
def test_stored_row_failures_are_opaque_and_name_the_column(
    keyring: Keyring, position: int
) -> None:
    key, _ = keyring.new_data_key("resident-1")
    other, _ = keyring.new_data_key("resident-1")
    plan = keyring.stored_columns("residents", COLUMNS)
    stored = _stored(keyring, key, "r-1")
    assert keyring.decrypt_stored_row(key, plan, "r-1", stored) == TEXTS  # warm
    raw = stored[position]
    header_changes = [_flip(raw, index) for index in range(HEADER_LENGTH)]
    replacements: list[bytes] = [
        *(_flip(raw, index) for index in (HEADER_LENGTH, HEADER_LENGTH + 12, len(raw) - 1)),
        *header_changes,  # magic, format, suite, key id, version: each byte
        _stored(keyring, other, "r-1")[position],  # another key's value, its own header
        _stored(keyring, key, "r-2")[position],  # moved from another row
        _stored(keyring, key, "r-1", "children")[position],  # moved from another table
        stored[(position + 1) % len(COLUMNS)],  # moved from another column
        raw[: HEADER_LENGTH + 12 + 15],  # truncated below a tag
        raw[: HEADER_LENGTH + 8],  # a short nonce and no ciphertext
        raw[:HEADER_LENGTH],
        b"",
    ]
    with structlog.testing.capture_logs() as logs:
        for bad in replacements:
            row: list[bytes | None] = list(stored)
            row[position] = bad
            _assert_opaque(keyring, key, plan, "r-1", row)
        _assert_opaque(keyring, key, plan, "r-2", list(stored))  # the whole row moved
    failed_columns = [entry["column"] for entry in logs]
    assert failed_columns == [COLUMNS[position]] * len(replacements) + [COLUMNS[0]]
    assert "李秀英" not in repr(logs) and key.material().hex() not in repr(logs)


def test_stored_row_refuses_what_is_not_bytes(keyring: Keyring) -> None:
    key, _ = keyring.new_data_key("resident-1")
    plan = keyring.stored_columns("residents", COLUMNS)
    stored = _stored(keyring, key, "r-1")
    for bad in ("李秀英", 42, stored[0].decode("latin-1")):
        _assert_opaque(keyring, key, plan, "r-1", [bad, *stored[1:]])  # type: ignore[list-item]


def test_stored_row_takes_nulls_and_checks_the_row_shape(keyring: Keyring) -> None:
    key, _ = keyring.new_data_key("resident-1")
    plan = keyring.stored_columns("residents", COLUMNS)
    name, phone, room = _stored(keyring, key, "r-1")
    assert keyring.decrypt_stored_row(key, plan, "r-1", [None, phone, None]) == {
        "phone": TEXTS["phone"]
    }
    assert keyring.decrypt_stored_row(key, plan, "r-1", [None, None, None]) == {}
    for wrong_shape in ([name, phone], [name, phone, room, room]):
        with pytest.raises(ValueError):
            keyring.decrypt_stored_row(key, plan, "r-1", wrong_shape)


def test_stored_columns_are_shared_and_kept_apart_per_key(keyring: Keyring) -> None:
    assert stored_columns("residents", COLUMNS) is stored_columns("residents", COLUMNS)
    with pytest.raises(ValueError):
        stored_columns("residents", ("name", "name"))
    key, _ = keyring.new_data_key("resident-1")
    other, _ = keyring.new_data_key("resident-1")
    plan = stored_columns("residents", COLUMNS)
    keyring.decrypt_stored_row(key, plan, "r-1", _stored(keyring, key, "r-1"))
    keyring.decrypt_stored_row(other, plan, "r-1", _stored(keyring, other, "r-1"))
    # each key's plan holds its own header: a warm key still refuses the other's values
    _assert_opaque(keyring, key, plan, "r-1", list(_stored(keyring, other, "r-1")))
    assert "李秀英" not in repr(plan) and key.material().hex() not in repr(plan)


def test_stored_row_matches_per_field_decrypt(keyring: Keyring) -> None:
    key, _ = keyring.new_data_key("resident-1")
    stored = _stored(keyring, key, "r-7", "children")
    plan = keyring.stored_columns("children", COLUMNS)
    per_field = {
        column: keyring.decrypt_field(
            key, EncryptedValue.from_bytes(raw), FieldContext("children", column, "r-7")
        )
        for column, raw in zip(COLUMNS, stored, strict=True)
    }
    assert keyring.decrypt_stored_row(key, plan, "r-7", stored) == per_field == TEXTS
