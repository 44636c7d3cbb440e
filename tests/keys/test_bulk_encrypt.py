"""encrypt_row_bytes gives the stored bytes encrypt_row gives, and nothing else."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keys import DecryptionError, EncryptedValue, FieldContext, FormatError, Keyring, WrappedKey
from keys.fields import HEADER_LENGTH, header_for
from keys.suites import NONCE_LENGTH, TAG_LENGTH

COLUMNS = ("name", "phone", "room")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.none() | st.text(max_size=40), min_size=3, max_size=3))
def test_bytes_parse_and_decrypt_like_encrypt_row(texts: list[str | None]) -> None:
    from keys import MemoryKeyProvider

    ring = Keyring(MemoryKeyProvider.generate())
    key, _ = ring.new_data_key("resident-1")
    stored = ring.encrypt_row_bytes(key, "residents", "r-1", COLUMNS, texts)
    assert [s is None for s in stored] == [t is None for t in texts]
    values = {
        c: EncryptedValue.from_bytes(s)
        for c, s in zip(COLUMNS, stored, strict=True)
        if s is not None
    }
    expected = {c: t for c, t in zip(COLUMNS, texts, strict=True) if t is not None}
    assert ring.decrypt_row(key, "residents", "r-1", values) == expected
    for column, value in values.items():
        ctx = FieldContext("residents", column, "r-1")
        assert ring.decrypt_field(key, value, ctx) == expected[column]


@pytest.mark.parametrize("suite_name", ["keyring", "gm_keyring"])
def test_layout_matches_encrypt_row(suite_name: str, request: pytest.FixtureRequest) -> None:
    ring: Keyring = request.getfixturevalue(suite_name)
    key, _ = ring.new_data_key("resident-1")
    plain = {"name": "李秀英", "phone": "13900001111"}
    reference = ring.encrypt_row(key, "residents", "r-9", plain)
    stored = ring.encrypt_row_bytes(key, "residents", "r-9", tuple(plain), tuple(plain.values()))
    for (column, value), data in zip(reference.items(), stored, strict=True):
        assert type(data) is bytes
        expected = value.to_bytes()
        # same header (format, suite, key id, version); nonces differ; same length
        assert data[:HEADER_LENGTH] == expected[:HEADER_LENGTH] == header_for(key)
        assert len(data) == len(expected)
        assert len(data) == HEADER_LENGTH + NONCE_LENGTH + len(plain[column].encode()) + TAG_LENGTH
        assert (
            data[HEADER_LENGTH : HEADER_LENGTH + NONCE_LENGTH]
            != expected[HEADER_LENGTH : HEADER_LENGTH + NONCE_LENGTH]
        )


def test_nonces_are_fresh_per_value(keyring: Keyring) -> None:
    key, _ = keyring.new_data_key("resident-1")
    stored = keyring.encrypt_row_bytes(key, "residents", "r-1", COLUMNS, ("a", "a", "a"))
    nonces = {s[HEADER_LENGTH : HEADER_LENGTH + NONCE_LENGTH] for s in stored if s is not None}
    assert len(nonces) == 3


def test_bound_to_row_column_and_table(keyring: Keyring) -> None:
    key, _ = keyring.new_data_key("resident-1")
    (data,) = keyring.encrypt_row_bytes(key, "residents", "r-1", ("name",), ("李秀英",))
    assert data is not None
    value = EncryptedValue.from_bytes(data)
    for ctx in (
        FieldContext("residents", "name", "r-2"),
        FieldContext("residents", "phone", "r-1"),
        FieldContext("children", "name", "r-1"),
    ):
        with pytest.raises(DecryptionError):
            keyring.decrypt_field(key, value, ctx)
    other, _ = keyring.new_data_key("resident-1")
    with pytest.raises(DecryptionError):
        keyring.decrypt_field(other, value, FieldContext("residents", "name", "r-1"))


def test_refuses_non_text_and_mismatched_lengths(keyring: Keyring) -> None:
    key, _ = keyring.new_data_key("resident-1")
    with pytest.raises(FormatError):
        keyring.encrypt_row_bytes(key, "residents", "r-1", ("name",), (b"x",))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        keyring.encrypt_row_bytes(key, "residents", "r-1", ("name", "phone"), ("x",))


@pytest.mark.parametrize("suite_name", ["keyring", "gm_keyring"])
def test_wrap_bytes_is_a_wrapped_key_that_unwraps(
    suite_name: str, request: pytest.FixtureRequest
) -> None:
    ring: Keyring = request.getfixturevalue(suite_name)
    key, reference = ring.new_data_key("resident-1")
    data = ring.wrap_bytes(key, "resident-1", ring.current_root())
    parsed = WrappedKey.from_bytes(data)
    # same header as `wrap` (root key and data key named alike); a fresh nonce in the blob
    assert parsed.header == reference.header
    assert parsed.header_bytes == reference.header_bytes
    assert len(data) == len(reference.to_bytes()) and data != reference.to_bytes()
    ring.clear_cache()
    unwrapped = ring.unwrap(parsed, "resident-1")
    assert unwrapped.material() == key.material() and unwrapped.label == key.label
    (sealed,) = ring.encrypt_row_bytes(key, "residents", "r-1", ("name",), ("王丹",))
    assert sealed is not None
    value = EncryptedValue.from_bytes(sealed)
    assert ring.decrypt_row(unwrapped, "residents", "r-1", {"name": value}) == {"name": "王丹"}
