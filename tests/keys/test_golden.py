"""Golden tests: freeze the at-rest byte formats, and known-answer tests for the primitives."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes

from keys import (
    BlindIndexField,
    DecryptionError,
    EncryptedValue,
    FieldContext,
    Keyring,
    Suite,
    WrappedKey,
)
from keys._codec import framed
from keys.datakeys import DataKey, WrappedHeader, owner_binding
from keys.fields import decrypt, encrypt
from keys.idnumbers import check_digit, normalise_national_id
from keys.keyring_document import Versions, fresh_keys
from keys.providers import LocalKeyProvider, LocalRootKey, Purpose
from keys.pseudonyms import PseudonymKey, blind_index_key
from keys.suites import Sm4Gcm

KEY_ID = bytes.fromhex("0011223344556677")
MATERIAL_32 = bytes(range(32))
MATERIAL_16 = bytes(range(16))
NONCE = bytes.fromhex("000102030405060708090a0b")
CTX = FieldContext("residents", "phone", "42")

# Frozen outputs. If one of these changes, stored data no longer reads: add a format version.
GOLDEN_INTL_HEX = (
    "45560101001122334455667700000003000102030405060708090a0b"
    "7631ee2af7d6f62ebb76af107e84a80c7f6bc8cf3974ca7347ae6d"
)
GOLDEN_GM_HEX = (
    "45560102001122334455667700000001000102030405060708090a0b"
    "a675e6cafb59b135c9ab4c56e7d69d6529bdb4eff63dd4e3282f8a"
)
# WrappedKey format 1 (unbound): read, never written any more.
GOLDEN_WRAPPED_HEX = (
    "574b010104726f6f7400000002010011223344556677000000010876d72525b1be9e91aea293"
    "9546b7b8a6deb9a884a7ba7631225d15557b5e06ec736b1780c7398e920e26cde8d350266967"
    "b961ce39ef7191a54592"
)
# WrappedKey format 2: bound to its owner "resident-42" (associated data = header ‖ owner).
GOLDEN_WRAPPED_V2_HEX = (
    "574b020104726f6f740000000201001122334455667700000001876525a627f835ff2a69bc56"
    "4293253b71be702be5a5095b7ee93a402be8e8e3f9e688073a7ba40e8ace91f19389e4f175d1"
    "76bd3a6c8ae73103d3d7"
)
OWNER = "resident-42"


def test_field_header_layout() -> None:
    key = DataKey(KEY_ID, 3, Suite.INTL, MATERIAL_32)
    value = encrypt(key, "13812345678", CTX, nonce=NONCE)
    data = value.to_bytes()
    assert data[:16] == bytes.fromhex("45560101001122334455667700000003")
    assert data[16:28] == NONCE
    assert len(data) == 16 + 12 + len("13812345678") + 16


def test_field_golden_intl() -> None:
    key = DataKey(KEY_ID, 3, Suite.INTL, MATERIAL_32)
    assert encrypt(key, "13812345678", CTX, nonce=NONCE).to_bytes().hex() == GOLDEN_INTL_HEX
    assert (
        decrypt(key, EncryptedValue.from_bytes(bytes.fromhex(GOLDEN_INTL_HEX)), CTX)
        == "13812345678"
    )


def test_field_golden_gm() -> None:
    key = DataKey(KEY_ID, 1, Suite.GM, MATERIAL_16)
    assert encrypt(key, "13812345678", CTX, nonce=NONCE).to_bytes().hex() == GOLDEN_GM_HEX
    assert (
        decrypt(key, EncryptedValue.from_bytes(bytes.fromhex(GOLDEN_GM_HEX)), CTX) == "13812345678"
    )


def test_context_framing_golden() -> None:
    assert CTX.associated_data() == (
        b"exchange/field/v1\x00\x00\x00\x00\x09residents\x00\x00\x00\x05phone\x00\x00\x00\x0242"
    )


def _ring_with_root_v2() -> Keyring:
    """A keyring whose root version 2 is the material the golden keys were wrapped under."""
    keys = fresh_keys()
    keys[Purpose.ROOT] = Versions(2, {2: MATERIAL_32})
    return Keyring(LocalKeyProvider(keys, development=True))


def test_wrapped_key_golden() -> None:
    header = WrappedHeader(Suite.INTL, "root", 2, Suite.INTL, KEY_ID, 1, format=1)
    assert header.to_bytes().hex() == ("574b010104726f6f740000000201001122334455667700000001")
    # A frozen wrapped key made under root material 00..1f must keep unwrapping to 20..3f.
    wrapped = WrappedKey.from_bytes(bytes.fromhex(GOLDEN_WRAPPED_HEX))
    assert wrapped.header == header and not wrapped.bound
    root = LocalRootKey("root", 2, Suite.INTL, MATERIAL_32)
    assert root.unwrap(wrapped.blob, wrapped.header_bytes) == bytes(range(32, 64))
    # through the keyring too: an old row still reads (its owner cannot be checked)
    ring = _ring_with_root_v2()
    assert ring.unwrap(wrapped, OWNER).material() == bytes(range(32, 64))
    assert ring.needs_rewrap(wrapped)  # the rotation job binds it


def test_wrapped_key_v2_golden_is_bound_to_its_owner() -> None:
    header = WrappedHeader(Suite.INTL, "root", 2, Suite.INTL, KEY_ID, 1)
    assert header.to_bytes().hex() == "574b020104726f6f740000000201001122334455667700000001"
    assert owner_binding(OWNER) == b"exchange/data-key-owner/v2\x00\x00\x00\x00\x0bresident-42"
    assert owner_binding("李秀英的") == framed(b"exchange/data-key-owner/v2", "李秀英的")
    wrapped = WrappedKey.from_bytes(bytes.fromhex(GOLDEN_WRAPPED_V2_HEX))
    assert wrapped.header == header and wrapped.bound
    root = LocalRootKey("root", 2, Suite.INTL, MATERIAL_32)
    aad = wrapped.header_bytes + owner_binding(OWNER)
    assert root.unwrap(wrapped.blob, aad) == bytes(range(32, 64))
    ring = _ring_with_root_v2()
    assert ring.unwrap(wrapped, OWNER).material() == bytes(range(32, 64))
    assert not ring.needs_rewrap(wrapped)
    with pytest.raises(DecryptionError):  # moved to another resident's row
        ring.unwrap(wrapped, "resident-43")
    new = ring.wrap(ring.unwrap(wrapped, OWNER), OWNER)
    assert new.header_bytes == wrapped.header_bytes  # what a wrap writes today is format 2


# -- known-answer tests for the primitives we rely on ------------------------------------------
def test_hmac_sha256_rfc4231_case_2() -> None:
    mac = PseudonymKey(Suite.INTL, b"Jefe").digest("what do ya want for nothing?")
    assert mac.hex() == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


def test_sm3_gbt32905_abc() -> None:
    digest = hashes.Hash(Suite.GM.hash())
    digest.update(b"abc")
    assert digest.finalize().hex() == (
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    )


def test_sm4_gcm_rfc8998_vector() -> None:
    key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    iv = bytes.fromhex("00001234567800000000ABCD")
    aad = bytes.fromhex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2")
    plain = bytes.fromhex(
        "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"
        "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA"
    )
    expected = bytes.fromhex(
        "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735"
        "D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D"
        "83DE3541E4C2B58177E065A9BF7B62EC"
    )
    aead = Sm4Gcm(key)
    assert aead.encrypt(iv, plain, aad) == expected
    assert aead.decrypt(iv, expected, aad) == plain


def test_gb11643_check_digit_and_widening() -> None:
    assert check_digit("11010519491231002") == "X"
    assert normalise_national_id("11010519491231002x") == "11010519491231002X"
    assert normalise_national_id("110105491231002") == "11010519491231002X"


# -- blind indexes ----------------------------------------------------------------------------
# Frozen: the ID number's index under blind-index material 00..1f is what every stored
# `national_id_index` was computed with; the phone has its own domain (its own derived key).
GOLDEN_ID = "11010519491231002X"
GOLDEN_ID_INDEX = {Suite.INTL: "4ohmrGroaxU2DD5J6-_PFnY8Qc419-oA",
                   Suite.GM: "QlKF-HZ8F9EkyHkrIStPzKsznUCPOUsK"}  # fmt: skip
GOLDEN_PHONE = "17812346078"
GOLDEN_PHONE_INDEX = {Suite.INTL: "lxi6aEetSD3aUpReOOgXoFrmB5zhipR-",
                      Suite.GM: "iYuX8HYHw-_WjP1u4To9DOXJEuYlHq4j"}  # fmt: skip


def _ring_with_blind_index_material(suite: Suite) -> Keyring:
    keys = fresh_keys()
    keys[Purpose.BLIND_INDEX] = Versions(1, {1: MATERIAL_32})
    return Keyring(LocalKeyProvider(keys, development=True), suite)


@pytest.mark.parametrize("suite", [Suite.INTL, Suite.GM])
def test_blind_index_golden(suite: Suite) -> None:
    ring = _ring_with_blind_index_material(suite)
    assert ring.blind_index(GOLDEN_ID) == GOLDEN_ID_INDEX[suite]
    assert ring.blind_index(GOLDEN_ID, field=BlindIndexField.NATIONAL_ID) == GOLDEN_ID_INDEX[suite]
    written_ways = (GOLDEN_PHONE, "+86 178-1234-6078", "(178) 1234 6078",
                    "８６１７８１２３４６０７８")  # fmt: skip
    for written in written_ways:
        assert ring.blind_index(written, field=BlindIndexField.PHONE) == GOLDEN_PHONE_INDEX[suite]


@pytest.mark.parametrize("suite", [Suite.INTL, Suite.GM])
def test_phone_and_id_number_indexes_are_in_separate_domains(suite: Suite) -> None:
    # the same text under both fields' keys: they differ, so no index of one field can equal
    # an index of the other (no value is both a phone and an ID number, so compare the HMACs)
    national = blind_index_key(suite, MATERIAL_32, BlindIndexField.NATIONAL_ID)
    phone = blind_index_key(suite, MATERIAL_32, BlindIndexField.PHONE)
    both = GOLDEN_ID
    assert national.digest(both) != phone.digest(both)
    assert national.digest(GOLDEN_PHONE) != phone.digest(GOLDEN_PHONE)
