"""The batch and cached paths give exactly what the one-at-a-time paths give, and stay closed."""

from __future__ import annotations

import pytest
import structlog
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
from keys.datakeys import DataKey, WrappedHeader
from keys.providers import Purpose, RootKey
from keys.pseudonyms import case_reference


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(["name", "phone", "room"]), st.text(max_size=40)))
def test_encrypt_row_values_decrypt_per_field(values: dict[str, str]) -> None:
    from keys import MemoryKeyProvider

    ring = Keyring(MemoryKeyProvider.generate())
    key, _ = ring.new_data_key("resident-1")
    sealed = ring.encrypt_row(key, "residents", "r-1", values)
    assert set(sealed) == set(values)
    for column, value in sealed.items():
        stored = EncryptedValue.from_bytes(value.to_bytes())
        ctx = FieldContext("residents", column, "r-1")
        assert ring.decrypt_field(key, stored, ctx) == values[column]
    assert ring.decrypt_row(key, "residents", "r-1", sealed) == values


def test_encrypt_row_binds_row_column_and_table(keyring: Keyring) -> None:
    key, _ = keyring.new_data_key("resident-1")
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
    key, _ = keyring.new_data_key("resident-1")
    with pytest.raises(FormatError):
        keyring.encrypt_row(key, "residents", "r-1", {"name": b"bytes"})  # type: ignore[dict-item]
    # a NULL is left out by the caller, never encrypted as a value (encrypt_row_bytes skips it)
    with pytest.raises(FormatError, match="residents.phone"):
        keyring.encrypt_row(key, "residents", "r-1", {"name": "李", "phone": None})  # type: ignore[dict-item]


def test_per_key_prefix_cache_keeps_tables_and_columns_apart(keyring: Keyring) -> None:
    key, _ = keyring.new_data_key("resident-1")
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
    key_a, _ = keyring.new_data_key("resident-1")
    key_b, _ = keyring.new_data_key("resident-1")
    ctx = FieldContext("residents", "name", "1")
    keyring.decrypt_field(key_b, keyring.encrypt_field(key_b, "warm", ctx), ctx)
    with pytest.raises(DecryptionError):
        keyring.decrypt_field(key_b, keyring.encrypt_field(key_a, "x", ctx), ctx)


@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_from_bytes_accepts_buffers_and_still_validates(keyring: Keyring, kind: type) -> None:
    key, _ = keyring.new_data_key("resident-1")
    ctx = FieldContext("residents", "name", "1")
    raw = keyring.encrypt_field(key, "李", ctx).to_bytes()
    value = EncryptedValue.from_bytes(kind(raw))
    assert type(value.to_bytes()) is bytes and keyring.decrypt_field(key, value, ctx) == "李"
    with pytest.raises(FormatError):
        EncryptedValue.from_bytes(kind(b"EV\x01\x07" + raw[4:]))
    with pytest.raises(AttributeError):
        value._data = b""  # type: ignore[misc]


def test_wrap_builds_the_same_wrapped_key_as_parsing_it(keyring: Keyring) -> None:
    key, wrapped = keyring.new_data_key("resident-1")
    parsed = WrappedKey.from_bytes(wrapped.to_bytes())
    assert parsed == wrapped
    assert (parsed.header, parsed.header_length, parsed.blob) == (
        wrapped.header, wrapped.header_length, wrapped.blob)  # fmt: skip
    assert keyring.unwrap(parsed, "resident-1").material() == key.material()


def test_case_reference_paths_agree(keyring: Keyring) -> None:
    by_api = keyring.case_reference("agr-1", "res-1")
    assert by_api == case_reference(keyring.case_key("agr-1"), "res-1")
    assert by_api == keyring.case_reference("agr-1", "res-1", version=1)
    assert by_api != keyring.case_reference("agr-2", "res-1")
    assert len(by_api) == 20


def _sealed_row(keyring: Keyring, key: DataKey, row_id: str) -> dict[str, EncryptedValue]:
    texts = {"name": "李秀英", "phone": "13812345678", "room": "501"}
    return keyring.encrypt_row(key, "residents", row_id, texts)


def test_decrypt_row_warm_and_cold_caches_agree(keyring: Keyring) -> None:
    key, _ = keyring.new_data_key("resident-1")
    row = _sealed_row(keyring, key, "r-1")
    cold = keyring.decrypt_row(key, "residents", "r-1", row)  # fills this key's cache
    warm = keyring.decrypt_row(key, "residents", "r-1", row)
    assert cold == warm == {"name": "李秀英", "phone": "13812345678", "room": "501"}
    # a column this warm key has not decrypted yet, after warm ones
    extra = keyring.encrypt_field(key, "户主", FieldContext("residents", "relation", "r-1"))
    assert keyring.decrypt_row(key, "residents", "r-1", {**row, "relation": extra}) == {
        **warm, "relation": "户主"}  # fmt: skip


@pytest.mark.parametrize("position", [0, 2])
def test_decrypt_row_warm_failures_are_opaque_and_name_the_column(
    keyring: Keyring, position: int
) -> None:
    key, _ = keyring.new_data_key("resident-1")
    other, _ = keyring.new_data_key("resident-1")
    row = _sealed_row(keyring, key, "r-1")
    keyring.decrypt_row(key, "residents", "r-1", row)  # warm
    column = list(row)[position]
    tampered = bytearray(row[column].to_bytes())
    tampered[-1] ^= 1
    bad_rows = [
        {**row, column: _sealed_row(keyring, other, "r-1")[column]},  # another key's header
        {**row, column: EncryptedValue.from_bytes(bytes(tampered))},  # tag fails
        {**row, column: row["phone" if column != "phone" else "name"]},  # moved column
    ]
    with structlog.testing.capture_logs() as logs:
        for bad in bad_rows:
            with pytest.raises(DecryptionError) as info:
                keyring.decrypt_row(key, "residents", "r-1", bad)
            error = info.value
            assert str(error) == "decryption failed"
            assert error.__cause__ is None
            assert error.__context__ is None or error.__suppress_context__
    assert [entry["column"] for entry in logs] == [column] * len(bad_rows)
    assert "李秀英" not in repr(logs) and key.material().hex() not in repr(logs)


def test_encrypt_row_gives_each_value_its_own_nonce(keyring: Keyring) -> None:
    key, _ = keyring.new_data_key("resident-1")
    texts = {f"c{i}": "same" for i in range(8)}
    sealed = keyring.encrypt_row(key, "residents", "r-1", texts)
    nonces = [v.to_bytes()[16:28] for v in sealed.values()]
    assert len(set(nonces)) == len(nonces) and all(len(n) == 12 for n in nonces)
    assert keyring.decrypt_row(key, "residents", "r-1", sealed) == texts


def test_wrap_follows_the_root_key_it_is_given(provider: MemoryKeyProvider) -> None:
    keyring = Keyring(provider)
    key, before = keyring.new_data_key("resident-1")
    provider.add_version(Purpose.ROOT)
    after = keyring.wrap(key, "resident-1", keyring.current_root())
    assert (before.header.kek_version, after.header.kek_version) == (1, 2)
    for wrapped in (before, after):
        parsed = WrappedKey.from_bytes(wrapped.to_bytes())
        assert parsed.header == wrapped.header and parsed.header.to_bytes() == wrapped.header_bytes
        assert keyring._unwrap_uncached(parsed, "resident-1").material() == key.material()


def test_wrapped_header_of_is_the_constructor(keyring: Keyring) -> None:
    args = (Suite.GM, "root", 7, Suite.INTL, b"\x01" * 8, 3)
    fast, plain = WrappedHeader.of(*args), WrappedHeader(*args)
    assert fast == plain and hash(fast) == hash(plain) and fast.to_bytes() == plain.to_bytes()
    with pytest.raises(AttributeError):
        fast.kek_version = 8  # type: ignore[misc]


def test_generated_data_keys_are_fresh_and_well_formed() -> None:
    keys = [DataKey.generate(suite) for suite in (Suite.INTL, Suite.INTL, Suite.GM)]
    assert len({k.key_id for k in keys}) == 3 and len({k.material() for k in keys}) == 3
    assert [len(k.material()) for k in keys] == [32, 32, 16]
    assert all(k.material()[:8] != k.key_id for k in keys)


def test_from_bytes_takes_bytes_subclasses_and_refuses_text(keyring: Keyring) -> None:
    class Raw(bytes):
        pass

    key, _ = keyring.new_data_key("resident-1")
    raw = keyring.encrypt_field(key, "李", FieldContext("residents", "name", "1")).to_bytes()
    parsed = EncryptedValue.from_bytes(Raw(raw))
    assert type(parsed.to_bytes()) is bytes and parsed.to_bytes() == raw
    with pytest.raises(FormatError):
        EncryptedValue.from_bytes(raw.hex())  # type: ignore[arg-type]


def _with_byte(raw: bytes, index: int, value: int) -> bytes:
    return raw[:index] + bytes([value]) + raw[index + 1 :]


def test_wrapped_key_parsing_refuses_every_malformed_header(keyring: Keyring) -> None:
    _, wrapped = keyring.new_data_key("resident-1")
    raw = wrapped.to_bytes()
    id_length = raw[4]
    bad = [
        b"",
        b"WK\x02",
        b"XX" + raw[2:],
        _with_byte(raw, 2, 3),  # format version (1 and 2 are read)
        _with_byte(raw, 2, 0),
        _with_byte(raw, 3, 9),  # root key suite
        _with_byte(raw, 4, 0),  # empty root key id
        _with_byte(raw, 4, 65),  # root key id too long
        _with_byte(raw, 5, 0xE4),  # non-ASCII root key id
        _with_byte(raw, 5 + id_length + 4, 9),  # data key suite
        raw[: wrapped.header_length],  # no blob
    ]
    for data in bad:
        with pytest.raises(FormatError):
            WrappedKey.from_bytes(data)
        with pytest.raises(FormatError):
            WrappedKey(data)
    parsed = WrappedKey.from_bytes(bytearray(raw))  # type: ignore[arg-type]
    assert parsed == wrapped and parsed.header == wrapped.header
    assert repr(parsed) == repr(wrapped) and parsed.blob == wrapped.blob


def _cipher_could_have_made(data: bytes) -> bool:
    return len(data) >= 44 and data[:2] == b"EV" and data[2] == 1 and data[3] in (1, 2)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([b"EV\x01\x00", b"EV\x01\x01", b"EV\x01\x02", b"EV\x01\x03", b"EV\x01\xff",
                     b"EV\x00\xff", b"EV\x02\x00", b"EU\xff\xff", b"EW\x00\x00", b"EV\x01", b""])
    | st.binary(max_size=4),
    st.binary(max_size=60),
)  # fmt: skip
def test_from_bytes_accepts_exactly_the_cipher_headers(head: bytes, rest: bytes) -> None:
    data = head + rest
    if _cipher_could_have_made(data):
        assert EncryptedValue.from_bytes(data).to_bytes() == data
        assert EncryptedValue(data).to_bytes() == data
    else:
        with pytest.raises(FormatError):
            EncryptedValue.from_bytes(data)
        with pytest.raises(FormatError):
            EncryptedValue(data)


class _SwitchingRoot:
    """One root-key object whose version changes underneath (a "current key" proxy)."""

    def __init__(self, current: RootKey) -> None:
        self.current = current

    @property
    def key_id(self) -> str:
        return self.current.key_id

    @property
    def version(self) -> int:
        return self.current.version

    @property
    def suite(self) -> Suite:
        return self.current.suite

    def wrap(self, plaintext: bytes, associated_data: bytes) -> bytes:
        return self.current.wrap(plaintext, associated_data)

    def unwrap(self, blob: bytes, associated_data: bytes) -> bytes:
        return self.current.unwrap(blob, associated_data)


def test_wrap_reads_the_root_key_fields_on_every_wrap(provider: MemoryKeyProvider) -> None:
    keyring = Keyring(provider)
    root = _SwitchingRoot(provider.root_key(Suite.INTL))
    key = DataKey.generate(Suite.INTL)
    first = keyring.wrap(key, "resident-1", root)
    provider.add_version(Purpose.ROOT)
    root.current = provider.root_key(Suite.INTL)
    second = keyring.wrap(key, "resident-1", root)
    assert (first.header.kek_version, second.header.kek_version) == (1, 2)
    for wrapped in (first, second):
        parsed = WrappedKey.from_bytes(wrapped.to_bytes())
        assert keyring.unwrap(parsed, "resident-1").material() == key.material()


def test_unwrap_stored_is_unwrap_of_the_parsed_bytes(keyring: Keyring) -> None:
    key, wrapped = keyring.new_data_key("resident-1")
    raw = wrapped.to_bytes()
    cold = keyring.unwrap_stored(bytearray(raw), "resident-1")  # type: ignore[arg-type]
    assert cold.material() == key.material()
    parsed = WrappedKey.from_bytes(raw)
    assert keyring.unwrap_stored(raw, "resident-1") is cold is keyring.unwrap(parsed, "resident-1")
    keyring.forget(wrapped)
    with pytest.raises(FormatError):
        keyring.unwrap_stored(b"WK\x02" + raw[3:4], "resident-1")
    tampered = raw[:-1] + bytes([raw[-1] ^ 1])
    with pytest.raises(DecryptionError):
        keyring.unwrap_stored(tampered, "resident-1")
