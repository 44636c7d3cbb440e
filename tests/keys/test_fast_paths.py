"""The batch and cached paths give exactly what the one-at-a-time paths give, and stay closed."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keys import DecryptionError, EncryptedValue, FieldContext, FormatError, Keyring, WrappedKey
from keys.pseudonyms import case_reference


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(["name", "phone", "room"]), st.text(max_size=40)))
def test_encrypt_row_values_decrypt_per_field(values: dict[str, str]) -> None:
    from keys import MemoryKeyProvider

    ring = Keyring(MemoryKeyProvider.generate())
    key, _ = ring.new_data_key()
    sealed = ring.encrypt_row(key, "residents", "r-1", values)
    assert set(sealed) == set(values)
    for column, value in sealed.items():
        stored = EncryptedValue.from_bytes(value.to_bytes())
        ctx = FieldContext("residents", column, "r-1")
        assert ring.decrypt_field(key, stored, ctx) == values[column]
    assert ring.decrypt_row(key, "residents", "r-1", sealed) == values


def test_encrypt_row_binds_row_column_and_table(keyring: Keyring) -> None:
    key, _ = keyring.new_data_key()
    sealed = keyring.encrypt_row(key, "residents", "r-1", {"name": "李秀英", "phone": "139"})
    for moved in (
        FieldContext("residents", "name", "r-2"),
        FieldContext("residents", "phone", "r-1"),
        FieldContext("children", "name", "r-1"),
    ):
        with pytest.raises(DecryptionError):
            keyring.decrypt_field(key, sealed["name"], moved)
    # nonces are fresh per value, headers name the key
    again = keyring.encrypt_row(key, "residents", "r-1", {"name": "李秀英"})
    assert again["name"] != sealed["name"]
    assert again["name"].key_id == key.key_id


def test_encrypt_row_refuses_non_text(keyring: Keyring) -> None:
    key, _ = keyring.new_data_key()
    with pytest.raises(FormatError):
        keyring.encrypt_row(key, "residents", "r-1", {"name": b"bytes"})  # type: ignore[dict-item]


def test_per_key_prefix_cache_keeps_tables_and_columns_apart(keyring: Keyring) -> None:
    key, _ = keyring.new_data_key()
    a = keyring.encrypt_field(key, "x", FieldContext("residents", "name", "1"))
    b = keyring.encrypt_field(key, "y", FieldContext("children", "name", "1"))
    # warm the per-key cache for both tables, then swap the values across them
    assert keyring.decrypt_row(key, "residents", "1", {"name": a}) == {"name": "x"}
    assert keyring.decrypt_row(key, "children", "1", {"name": b}) == {"name": "y"}
    with pytest.raises(DecryptionError):
        keyring.decrypt_row(key, "residents", "1", {"name": b})
    with pytest.raises(DecryptionError):
        keyring.decrypt_row(key, "children", "1", {"name": a})


def test_another_keys_value_is_refused_even_with_a_warm_cache(keyring: Keyring) -> None:
    key_a, _ = keyring.new_data_key()
    key_b, _ = keyring.new_data_key()
    ctx = FieldContext("residents", "name", "1")
    keyring.decrypt_field(key_b, keyring.encrypt_field(key_b, "warm", ctx), ctx)
    with pytest.raises(DecryptionError):
        keyring.decrypt_field(key_b, keyring.encrypt_field(key_a, "x", ctx), ctx)


@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_from_bytes_accepts_buffers_and_still_validates(keyring: Keyring, kind: type) -> None:
    key, _ = keyring.new_data_key()
    ctx = FieldContext("residents", "name", "1")
    raw = keyring.encrypt_field(key, "李", ctx).to_bytes()
    value = EncryptedValue.from_bytes(kind(raw))
    assert type(value.to_bytes()) is bytes and keyring.decrypt_field(key, value, ctx) == "李"
    with pytest.raises(FormatError):
        EncryptedValue.from_bytes(kind(b"EV\x01\x07" + raw[4:]))
    with pytest.raises(AttributeError):
        value._data = b""  # type: ignore[misc]


def test_wrap_builds_the_same_wrapped_key_as_parsing_it(keyring: Keyring) -> None:
    key, wrapped = keyring.new_data_key()
    parsed = WrappedKey.from_bytes(wrapped.to_bytes())
    assert parsed == wrapped
    assert (parsed.header, parsed.header_length, parsed.blob) == (
        wrapped.header, wrapped.header_length, wrapped.blob)  # fmt: skip
    assert keyring.unwrap(parsed).material() == key.material()


def test_case_reference_paths_agree(keyring: Keyring) -> None:
    by_api = keyring.case_reference("agr-1", "res-1")
    assert by_api == case_reference(keyring.case_key("agr-1"), "res-1")
    assert by_api == keyring.case_reference("agr-1", "res-1", version=1)
    assert by_api != keyring.case_reference("agr-2", "res-1")
    assert len(by_api) == 20
