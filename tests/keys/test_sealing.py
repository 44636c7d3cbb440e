from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keys import (
    ContractorPrivateKey,
    ContractorPublicKey,
    DecryptionError,
    FormatError,
    Kem,
    ResponseOpener,
    ResponseSealer,
    generate_keypair,
    open_field,
    seal_field,
)
from keys._codec import b64url, unb64url
from keys.sealing import kem_of_envelope

KEYS = {kem: generate_keypair(kem) for kem in Kem}
KEMS = list(Kem)


@pytest.mark.parametrize("kem", KEMS)
def test_single_seal_round_trip_and_binding(kem: Kem) -> None:
    private, public = KEYS[kem]
    token = seal_field(public, "agr-1", "case-a", "resident.phone", "13812345678")
    assert token.startswith("s1.") and "13812345678" not in token
    assert open_field(private, "agr-1", "case-a", "resident.phone", token) == "13812345678"
    for agreement, case, field in [
        ("agr-2", "case-a", "resident.phone"),
        ("agr-1", "case-b", "resident.phone"),
        ("agr-1", "case-a", "resident.name"),
    ]:
        with pytest.raises(DecryptionError):
            open_field(private, agreement, case, field, token)


@pytest.mark.parametrize("kem", KEMS)
def test_response_seal_round_trip_and_binding(kem: Kem) -> None:
    private, public = KEYS[kem]
    sealer = ResponseSealer(public, "agr-1")
    token = sealer.seal("case-a", "resident.phone", "13812345678")
    other = sealer.seal("case-b", "resident.name", "李秀英")
    opener = ResponseOpener(private, sealer.envelope, "agr-1")
    assert opener.open("case-a", "resident.phone", token) == "13812345678"
    assert opener.open("case-b", "resident.name", other) == "李秀英"
    with pytest.raises(DecryptionError):
        opener.open("case-b", "resident.phone", token)  # moved to another case
    with pytest.raises(DecryptionError):
        opener.open("case-a", "resident.name", token)  # moved to another field
    with pytest.raises(DecryptionError):
        ResponseOpener(private, sealer.envelope, "agr-2")  # envelope of another agreement
    assert kem_of_envelope(sealer.envelope) is kem


def test_token_from_another_response_fails() -> None:
    private, public = KEYS[Kem.X25519]
    first, second = ResponseSealer(public, "agr-1"), ResponseSealer(public, "agr-1")
    token = first.seal("case-a", "f", "v")
    with pytest.raises(DecryptionError):
        ResponseOpener(private, second.envelope, "agr-1").open("case-a", "f", token)


@pytest.mark.parametrize("kem", KEMS)
def test_wrong_private_key_fails(kem: Kem) -> None:
    _, public = KEYS[kem]
    stranger, _ = generate_keypair(kem)
    token = seal_field(public, "a", "c", "f", "v")
    with pytest.raises(DecryptionError):
        open_field(stranger, "a", "c", "f", token)
    with pytest.raises(DecryptionError):
        ResponseOpener(stranger, ResponseSealer(public, "a").envelope, "a")


@pytest.mark.parametrize("kem", KEMS)
def test_flipping_bytes_of_sealed_values_fails(kem: Kem) -> None:
    private, public = KEYS[kem]
    raw = unb64url(seal_field(public, "a", "c", "f", "13812345678")[3:], "t")
    # every byte of the key header, a spread over enc, and every byte of the ciphertext tail
    positions = sorted({*range(12), *range(10, len(raw), 37), *range(len(raw) - 27, len(raw))})
    for index in positions:
        tampered = bytearray(raw)
        tampered[index] ^= 0x01
        with pytest.raises(DecryptionError):
            open_field(private, "a", "c", "f", "s1." + b64url(bytes(tampered)))
    sealer = ResponseSealer(public, "a")
    opener = ResponseOpener(private, sealer.envelope, "a")
    raw = unb64url(sealer.seal("c", "f", "13812345678")[3:], "t")
    for index in range(len(raw)):
        tampered = bytearray(raw)
        tampered[index] ^= 0x80
        with pytest.raises(DecryptionError):
            opener.open("c", "f", "t1." + b64url(bytes(tampered)))


@pytest.mark.parametrize("garbage", ["", "s1.", "t1.!!!", "r1.AAAA", "plain text"])
def test_garbage_is_opaque(garbage: str) -> None:
    private, _ = KEYS[Kem.X25519]
    with pytest.raises(DecryptionError):
        open_field(private, "a", "c", "f", garbage)
    with pytest.raises(DecryptionError):
        ResponseOpener(private, garbage, "a")


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=300), st.text(min_size=1, max_size=30))
def test_response_round_trip_any_text(value: str, case_ref: str) -> None:
    private, public = KEYS[Kem.X25519]
    sealer = ResponseSealer(public, "agr")
    assert (
        ResponseOpener(private, sealer.envelope, "agr").open(
            case_ref, "f", sealer.seal(case_ref, "f", value)
        )
        == value
    )


@pytest.mark.parametrize("kem", KEMS)
def test_key_text_round_trip(kem: Kem) -> None:
    private, public = KEYS[kem]
    public_text, private_text = public.to_text(), private.to_text()
    assert f"KEM: {kem.value}" in public_text and f"KEM: {kem.value}" in private_text
    assert public_text.startswith("-----BEGIN EXCHANGE HPKE PUBLIC KEY-----\n")
    assert ContractorPublicKey.from_text(public_text) == public
    assert ContractorPrivateKey.from_text(private_text) == private
    assert ContractorPrivateKey.from_text(private_text).public_key() == public
    assert public.fingerprint.hex() in public_text
    # loaded keys interoperate with the originals
    token = seal_field(ContractorPublicKey.from_text(public_text), "a", "c", "f", "v")
    assert open_field(ContractorPrivateKey.from_text(private_text), "a", "c", "f", token) == "v"


def test_key_text_refusals() -> None:
    private, public = KEYS[Kem.X25519]
    text = public.to_text()
    with pytest.raises(FormatError, match="fingerprint"):
        ContractorPublicKey.from_text(text.replace(public.fingerprint.hex(), "00" * 8))
    with pytest.raises(FormatError):
        ContractorPublicKey.from_text(private.to_text())  # a private block is not a public key
    with pytest.raises(FormatError):
        ContractorPublicKey.from_text(text.replace("KEM: x25519", "KEM: rsa"))
    with pytest.raises(FormatError):
        ContractorPublicKey(Kem.MLKEM768_X25519, public.raw)  # wrong length for the KEM
    assert "<hidden>" in repr(private) and private.raw.hex() not in repr(private)
