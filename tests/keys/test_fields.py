from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keys import (
    DecryptionError,
    EncryptedValue,
    FieldContext,
    FormatError,
    Keyring,
    MemoryKeyProvider,
    Suite,
    WrappedKey,
)

CTX = FieldContext("residents", "name", "r-0001")


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200), st.sampled_from([Suite.INTL, Suite.GM]))
def test_round_trip_any_text(text: str, suite: Suite) -> None:
    ring = Keyring(MemoryKeyProvider.generate(), suite)
    key, wrapped = ring.new_data_key("resident-1")
    value = ring.encrypt_field(key, text, CTX)
    again = EncryptedValue.from_bytes(value.to_bytes())
    assert (
        ring.decrypt_field(
            ring.unwrap(WrappedKey.from_bytes(wrapped.to_bytes()), "resident-1"), again, CTX)
        == text
    )


@pytest.mark.parametrize("suite", [Suite.INTL, Suite.GM])
def test_flipping_any_byte_fails(suite: Suite) -> None:
    ring = Keyring(MemoryKeyProvider.generate(), suite)
    key, _ = ring.new_data_key("resident-1")
    data = ring.encrypt_field(key, "13812345678", CTX).to_bytes()
    for index in range(len(data)):
        for bit in (0x01, 0x80):
            tampered = bytearray(data)
            tampered[index] ^= bit
            with pytest.raises((DecryptionError, FormatError)):
                ring.decrypt_field(key, EncryptedValue.from_bytes(bytes(tampered)), CTX)


def test_truncation_and_extension_fail(keyring: Keyring) -> None:
    key, _ = keyring.new_data_key("resident-1")
    data = keyring.encrypt_field(key, "春阳花园", CTX).to_bytes()
    for cut in range(1, len(data)):
        with pytest.raises((DecryptionError, FormatError)):
            keyring.decrypt_field(key, EncryptedValue.from_bytes(data[:cut]), CTX)
    with pytest.raises(DecryptionError):
        keyring.decrypt_field(key, EncryptedValue.from_bytes(data + b"\x00"), CTX)


@pytest.mark.parametrize(
    "moved",
    [
        FieldContext("residents", "name", "r-0002"),
        FieldContext("residents", "phone", "r-0001"),
        FieldContext("households", "name", "r-0001"),
        # framing keeps ("residents","name") apart from ("residentsn","ame")
        FieldContext("residentsn", "ame", "r-0001"),
    ],
)
def test_moving_to_another_row_column_or_table_fails(keyring: Keyring, moved: FieldContext) -> None:
    key, _ = keyring.new_data_key("resident-1")
    value = keyring.encrypt_field(key, "李秀英", CTX)
    assert keyring.decrypt_field(key, value, CTX) == "李秀英"
    with pytest.raises(DecryptionError):
        keyring.decrypt_field(key, value, moved)


def test_another_residents_key_fails(keyring: Keyring) -> None:
    key_a, _ = keyring.new_data_key("resident-1")
    key_b, _ = keyring.new_data_key("resident-1")
    value = keyring.encrypt_field(key_a, "李秀英", CTX)
    with pytest.raises(DecryptionError):
        keyring.decrypt_field(key_b, value, CTX)


def test_relabelled_header_fails(keyring: Keyring) -> None:
    # Swapping in key B's header still fails: the header is part of the associated data.
    key_a, _ = keyring.new_data_key("resident-1")
    key_b, _ = keyring.new_data_key("resident-1")
    data = keyring.encrypt_field(key_a, "李秀英", CTX).to_bytes()
    other_header = keyring.encrypt_field(key_b, "x", CTX).to_bytes()[:16]
    with pytest.raises(DecryptionError):
        keyring.decrypt_field(key_b, EncryptedValue.from_bytes(other_header + data[16:]), CTX)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"EV",
        b"13812345678",
        b"XX\x01\x01" + b"\x00" * 60,
        b"EV\x02\x01" + b"\x00" * 60,
        b"EV\x01\x09" + b"\x00" * 60,
        b"EV\x01\x01" + b"\x00" * 20,
    ],
)
def test_from_bytes_refuses_what_the_cipher_did_not_produce(raw: bytes) -> None:
    with pytest.raises(FormatError):
        EncryptedValue.from_bytes(raw)


def test_constructor_refuses_str() -> None:
    with pytest.raises(FormatError):
        EncryptedValue("13812345678")  # type: ignore[arg-type]


def test_encrypt_refuses_non_str(keyring: Keyring) -> None:
    key, _ = keyring.new_data_key("resident-1")
    with pytest.raises(FormatError):
        keyring.encrypt_field(key, b"bytes", CTX)  # type: ignore[arg-type]


def test_reprs_show_no_secret(keyring: Keyring) -> None:
    key, wrapped = keyring.new_data_key("resident-1")
    value = keyring.encrypt_field(key, "李秀英", CTX)
    for text in (repr(value), str(value), repr(key), str(key), repr(wrapped), repr(keyring)):
        assert "李秀英" not in text
        assert key.material().hex() not in text
        assert value.to_bytes().hex()[32:] not in text
    assert "intl" in repr(value) and key.id_hex in repr(value)


def test_nonces_are_fresh(keyring: Keyring) -> None:
    key, _ = keyring.new_data_key("resident-1")
    a = keyring.encrypt_field(key, "same", CTX).to_bytes()
    b = keyring.encrypt_field(key, "same", CTX).to_bytes()
    assert a != b and a[:16] == b[:16]


def test_database_holding_both_suites_stays_readable(provider: MemoryKeyProvider) -> None:
    intl, gm = Keyring(provider, Suite.INTL), Keyring(provider, Suite.GM)
    key_i, wrapped_i = intl.new_data_key("resident-1")
    key_g, wrapped_g = gm.new_data_key("resident-1")
    value_i = intl.encrypt_field(key_i, "国际", CTX)
    value_g = gm.encrypt_field(key_g, "国密", CTX)
    assert value_i.suite is Suite.INTL and value_g.suite is Suite.GM
    # a keyring now configured for gm still reads the intl rows, and vice versa
    assert gm.decrypt_field(gm.unwrap(wrapped_i, "resident-1"), value_i, CTX) == "国际"
    assert intl.decrypt_field(intl.unwrap(wrapped_g, "resident-1"), value_g, CTX) == "国密"
    assert wrapped_g.header.kek_suite is Suite.GM


def test_decrypt_row_matches_decrypt_field_and_binds_columns(keyring: Keyring) -> None:
    key, _ = keyring.new_data_key("resident-1")
    columns = {"name": "李秀英", "phone": "13812345678", "room": "501"}
    stored = {
        c: keyring.encrypt_field(key, v, FieldContext("residents", c, "r-9"))
        for c, v in columns.items()
    }
    assert keyring.decrypt_row(key, "residents", "r-9", stored) == columns
    assert keyring.decrypt_row(key, "residents", "r-9", {}) == {}
    swapped = {"name": stored["phone"], "phone": stored["name"]}
    with pytest.raises(DecryptionError):
        keyring.decrypt_row(key, "residents", "r-9", swapped)
    with pytest.raises(DecryptionError):
        keyring.decrypt_row(key, "residents", "r-10", stored)
    with pytest.raises(DecryptionError):
        keyring.decrypt_row(key, "households", "r-9", stored)


def test_encrypted_value_is_an_immutable_value(keyring: Keyring) -> None:
    import pickle

    key, _ = keyring.new_data_key("resident-1")
    value = keyring.encrypt_field(key, "x", CTX)
    same = EncryptedValue.from_bytes(bytearray(value.to_bytes()))
    assert same == value and hash(same) == hash(value) and same != value.to_bytes()
    assert pickle.loads(pickle.dumps(value)) == value
    assert (value.key_id, value.key_version, value.suite) == (key.key_id, 1, Suite.INTL)
    with pytest.raises(AttributeError):
        value._data = b"EV"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        value.other = 1  # type: ignore[attr-defined]


def test_unicode_and_empty_values(keyring: Keyring) -> None:
    key, _ = keyring.new_data_key("resident-1")
    for text in ("", "城阳区城阳街道民城路社区春阳花园3号楼2单元501", "\x00\U0001f600"):
        assert keyring.decrypt_field(key, keyring.encrypt_field(key, text, CTX), CTX) == text
