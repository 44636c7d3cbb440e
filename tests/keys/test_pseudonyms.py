from __future__ import annotations

import base64
import hashlib
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keys import (
    BlindIndexField,
    InvalidIdentifierError,
    Keyring,
    MemoryKeyProvider,
    Purpose,
    Suite,
)
from keys.idnumbers import check_digit

URL_SAFE = re.compile(r"^[A-Za-z0-9_-]+$")


def test_case_reference_stable_within_agreement(keyring: Keyring) -> None:
    ref = keyring.case_reference("agr-1", "res-1")
    assert ref == keyring.case_reference("agr-1", "res-1")
    assert len(ref) == 20 and URL_SAFE.match(ref)


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40))
def test_case_reference_differs_across_agreements(resident: str, agreement: str) -> None:
    ring = Keyring(_PROVIDER)
    other = agreement + "x"
    a, b = ring.case_reference(agreement, resident), ring.case_reference(other, resident)
    assert a != b
    assert len(a) == len(b) == 20 and URL_SAFE.match(a) and URL_SAFE.match(b)


_PROVIDER = MemoryKeyProvider.generate()


def test_different_residents_and_keyrings_differ(keyring: Keyring) -> None:
    refs = {keyring.case_reference("agr-1", f"res-{i}") for i in range(500)}
    assert len(refs) == 500
    other = Keyring(MemoryKeyProvider.generate())
    assert other.case_reference("agr-1", "res-1") != keyring.case_reference("agr-1", "res-1")


def test_case_reference_is_not_an_unkeyed_hash(keyring: Keyring) -> None:
    ref = keyring.case_reference("agr-1", "res-1")
    for candidate in ("res-1", "agr-1res-1", "agr-1:res-1"):
        digest = hashlib.sha256(candidate.encode()).digest()
        assert ref not in (digest.hex(), base64.urlsafe_b64encode(digest[:15]).decode())


def test_audit_pseudonym_separate_from_case_reference(keyring: Keyring) -> None:
    audit = keyring.audit_pseudonym("res-1")
    assert audit == keyring.audit_pseudonym("res-1")
    assert audit != keyring.case_reference("", "res-1")
    assert len(audit) == 20


def _id18(first17: str) -> str:
    return first17 + check_digit(first17)


def test_blind_index_normalises() -> None:
    ring = Keyring(_PROVIDER)
    modern = "11010519491231002X"
    assert ring.blind_index(modern) == ring.blind_index("11010519491231002x")
    assert ring.blind_index(modern) == ring.blind_index(" 110105491231002 ")  # 15-digit legacy
    assert ring.blind_index(modern) != ring.blind_index(_id18("37021419900101123"))
    assert len(ring.blind_index(modern)) == 32


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "123",
        "11010519491231002Y",
        "110105194912310021",
        "1101051949123100２X",
        "11010549123100A",
    ],
)
def test_blind_index_refuses_invalid_ids_without_echoing(keyring: Keyring, bad: str) -> None:
    with pytest.raises(InvalidIdentifierError) as info:
        keyring.blind_index(bad)
    if bad:
        assert bad not in str(info.value)


def test_suites_and_versions_give_different_pseudonyms(provider: MemoryKeyProvider) -> None:
    intl, gm = Keyring(provider, Suite.INTL), Keyring(provider, Suite.GM)
    assert intl.case_reference("a", "r") != gm.case_reference("a", "r")
    old = intl.case_reference("a", "r")
    provider.add_version(Purpose.CASE_PSEUDONYM)
    assert intl.case_reference("a", "r") == old  # resolved once, until refreshed
    intl.refresh()
    assert intl.case_reference("a", "r") != old
    assert intl.case_reference("a", "r", version=1) == old


@pytest.mark.parametrize("bad", ["", "1234567890", "12812345678", "178123460789", "1781234607a",
                                 "+87 17812346078", "١٧٨١٢٣٤٦٠٧٨"])  # fmt: skip
def test_phone_blind_index_refuses_invalid_numbers_without_echoing(keyring: Keyring,
                                                                   bad: str) -> None:  # fmt: skip
    with pytest.raises(InvalidIdentifierError) as info:
        keyring.blind_index(bad, field=BlindIndexField.PHONE)
    if bad:
        assert bad not in str(info.value)


def test_phone_blind_index_normalises_like_the_ledger(keyring: Keyring) -> None:
    index = keyring.blind_index("17812346078", field=BlindIndexField.PHONE)
    for written in ("178 1234 6078", "+8617812346078", "8617812346078", "178-1234-6078"):
        assert keyring.blind_index(written, field=BlindIndexField.PHONE) == index
    assert keyring.blind_index("17812346079", field=BlindIndexField.PHONE) != index
