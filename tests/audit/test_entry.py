"""Audit entry validation and the frozen canonical encoding."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.entry import (
    Action,
    Actor,
    AuditEntry,
    FieldNames,
    KeyEvent,
    Outcome,
    Subject,
    Withheld,
    decode,
    encode,
    encode_reference,
)
from audit.errors import EntryError
from tests.audit.conftest import T0, disclosure

GOLDEN_DISCLOSURE = (
    b'{"action":"case.disclose","actor":{"id":"contractor-1","role":"contractor"},'
    b'"agreement":"agr-1","index":7,"key":null,"outcome":{"reason":null,"result":"ok"},'
    b'"policy":{"digest":"sha256-3f2a","id":"home_visit","version":"1"},'
    b'"purpose":"home_visit","request":"req-7","subjects":[{"case":"cr_000007_0",'
    b'"consents":["ce-7"],"disclosed":["address.room","resident.name"],'
    b'"pseudonym":"ap_000007_0","withheld":[{"field":"episode.due_date",'
    b'"reason":"no_consent"}]}],"time":"2025-03-01T08:00:07.000000Z","v":1}'
)
GOLDEN_KEY_EVENT = (
    b'{"action":"key.rotate","actor":{"id":"admin-1","role":"office_admin"},"agreement":null,'
    b'"index":0,"key":{"id":"kek","type":"root_kek","version":3},"outcome":{"reason":null,'
    b'"result":"ok"},"policy":null,"purpose":null,"request":null,"subjects":[],'
    b'"time":"2025-03-01T08:00:00.000000Z","v":1}'
)


def test_golden_disclosure() -> None:
    data = encode(7, disclosure(7))
    assert data == GOLDEN_DISCLOSURE
    assert hashlib.sha256(b"\x00" + data).hexdigest() == (
        hashlib.sha256(b"\x00" + GOLDEN_DISCLOSURE).hexdigest())
    assert decode(data).entry == disclosure(7)


def test_golden_key_event() -> None:
    e = AuditEntry(T0, Actor("admin-1", "office_admin"), Action.KEY_ROTATE,
                   key=KeyEvent("kek", 3, "root_kek"))
    assert encode(0, e) == GOLDEN_KEY_EVENT


def test_multi_subject_and_denial_round_trip() -> None:
    many = disclosure(3, cases=5)
    assert len(decode(encode(3, many)).entry.subjects) == 5
    denial = AuditEntry(T0, Actor("c-1", "contractor"), "case.disclose",
                        subjects=(Subject("ap_1"),), agreement="agr-1",
                        outcome=Outcome("denied", "case_not_assigned"))
    assert decode(encode(1, denial)).entry == denial
    read = AuditEntry(T0, Actor("aud-1", "auditor"), Action.AUDIT_READ)
    assert decode(encode(2, read)).entry == read


@pytest.mark.parametrize("bad", [
    lambda: Subject("370214199001011234"),  # a national ID number
    lambda: Subject("13812345678"),  # a mobile number
    lambda: Subject("李秀英"),  # a name
    lambda: Subject("ap_1", disclosed=("resident.name", "resident.name")),
    lambda: Subject("ap_1", disclosed=("Resident Name",)),
    lambda: Subject("ap_1", disclosed=("resident.name",),
                    withheld=(Withheld("resident.name", "no_consent"),)),
    lambda: Actor("a", "root"),
    lambda: Outcome("denied"),
    lambda: AuditEntry(datetime(2025, 1, 1), Actor("a", "auditor"), "audit.read"),  # naive
    lambda: KeyEvent("k", -1, "kek"),
])
def test_invalid_values_are_refused(bad) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(EntryError):
        bad()


@pytest.mark.parametrize("data", [
    GOLDEN_DISCLOSURE.replace(b'"v":1}', b'"v":1 }'),  # not canonical
    GOLDEN_DISCLOSURE.replace(b'"index":7', b'"index":7,"index":7'),  # duplicate key
    GOLDEN_DISCLOSURE.replace(b'"v":1', b'"v":2'),
    GOLDEN_DISCLOSURE.replace(b'"request":"req-7",', b''),
    GOLDEN_DISCLOSURE.replace(b'"ap_000007_0"', b'"13812345678"'),
    b"\xff",
    b"[]",
])
def test_decode_refuses_non_canonical_or_invalid(data: bytes) -> None:
    with pytest.raises(EntryError):
        decode(data)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**40), st.integers(1, 4), st.integers(0, 10**9))
def test_round_trip(index: int, cases: int, seconds: int) -> None:
    e = disclosure(seconds % 1000, cases=cases)
    e = replace(e, time=e.time.replace(microsecond=seconds % 10**6))
    assert decode(encode(index, e)).entry == e


_ident = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:/+=\-]{0,20}", fullmatch=True).filter(
    lambda s: not s.isdigit())
_field = st.from_regex(r"[a-z][a-z0-9_]{0,8}(\.[a-z][a-z0-9_]{0,8})?", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**53 - 1), _ident, _ident, st.lists(_field, unique=True, max_size=4),
       st.lists(_ident, max_size=3), st.one_of(st.none(), _ident))
def test_fast_encoder_equals_rfc8785(index: int, pseudonym: str, actor: str,
                                     fields: list[str], consents: list[str],
                                     agreement: str | None) -> None:
    e = AuditEntry(T0, Actor(actor, "contractor"), "case.disclose",
                   subjects=(Subject(pseudonym, None, tuple(fields), (), tuple(consents)),),
                   agreement=agreement, key=KeyEvent(actor, index % 1000, "data_key"))
    assert encode(index, e) == encode_reference(index, e)


# Any text, Chinese included: an entry either refuses it at construction or encodes it exactly
# as RFC 8785 does. (Validation keeps every string printable ASCII without '"' or '\\', which
# is what lets `encode` write canonical JSON directly.)
_any_text = st.one_of(
    _ident,
    st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), min_size=1, max_size=6),
    st.text(min_size=1, max_size=12),
    _ident.map(lambda s: s + "李"),
    _ident.map(lambda s: s + '"'),
    _ident.map(lambda s: s + "\\"),
)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**53 - 1), _any_text, _any_text, _any_text, _any_text, _any_text)
def test_encoder_equals_rfc8785_or_refuses_on_any_text(index: int, pseudonym: str, actor: str,
                                                       case: str, request: str,
                                                       field: str) -> None:
    try:
        e = AuditEntry(T0, Actor(actor, "contractor"), "case.disclose",
                       subjects=(Subject(pseudonym, case, (field,)),), request_id=request)
    except EntryError:
        return  # refused at construction: nothing non-canonical can reach the log
    assert all(s.isascii() for s in (pseudonym, actor, case, request, field))
    assert encode(index, e) == encode_reference(index, e)


@pytest.mark.parametrize("text", ["李秀英", "ap_李", 'ap"1', "ap\\1", "ap 1", "ap\u00e91"])
def test_non_ascii_and_json_special_strings_are_refused(text: str) -> None:
    for build in (lambda: Subject(text), lambda: Actor(text, "auditor"),
                  lambda: Subject("ap_1", case=text)):
        with pytest.raises(EntryError):
            build()


def test_name_checks_stay_strict_after_a_name_was_seen_once() -> None:
    """The cache of known names holds only str values that passed: look-alikes still fail."""
    from audit.entry import Withheld

    Withheld("resident.name", "no_consent")  # now known
    for bad in (["resident.name"], b"resident.name", "Resident.name", "resident.name "):
        with pytest.raises(EntryError):
            Withheld(bad, "no_consent")  # type: ignore[arg-type]


def test_personal_identifier_shapes_are_refused_as_identifiers() -> None:
    from audit.entry import Actor

    for personal in ("37021419900101123X", "370214199001011234", "13912345678"):
        with pytest.raises(EntryError, match="personal identifier"):
            Actor(personal, "contractor")
    assert Actor("1391234567", "contractor").id == "1391234567"  # too short for a mobile


# -- details (format 2) ----------------------------------------------------------------------

GOLDEN_DETAILS = (
    b'{"action":"ledger.import","actor":{"id":"cadre-1","role":"community_cadre"},'
    b'"agreement":null,"details":{"by":["community","stage"],"exact":false,'
    b'"file_sha256":"9f86d081884c7d65","rows_total":12},"index":4,"key":null,'
    b'"outcome":{"reason":null,"result":"ok"},"policy":null,"purpose":null,"request":null,'
    b'"subjects":[],"time":"2025-03-01T08:00:00.000000Z","v":2}'
)


def _with_details(details: object) -> AuditEntry:
    return AuditEntry(T0, Actor("cadre-1", "community_cadre"), "ledger.import",
                      details=details)  # type: ignore[arg-type]


def test_golden_details_entry_is_format_2_and_round_trips() -> None:
    e = _with_details({"rows_total": 12, "file_sha256": "9f86d081884c7d65",
                       "by": ("community", "stage"), "exact": False})
    assert encode(4, e) == GOLDEN_DETAILS == encode_reference(4, e)
    back = decode(GOLDEN_DETAILS).entry
    assert back == e and back.details == {"by": ("community", "stage"), "exact": False,
                                          "file_sha256": "9f86d081884c7d65", "rows_total": 12}
    assert hash(back) == hash(e)


def test_entries_without_details_keep_format_1_bytes() -> None:
    assert _with_details({}).format_version == 1
    assert encode(7, replace(disclosure(7), details={})) == GOLDEN_DISCLOSURE


@pytest.mark.parametrize("details", [
    {"national_id": "370214199001011234"},  # a personal value's shape
    {"phone": "13812345678"},
    {"by": ("community", "13812345678")},
    {"name": "李秀英"},
    {"note": "free text with spaces"},
    {"ratio": 0.5},
    {"rows": -1},
    {"rows": 2**53},
    {"nested": {"a": 1}},
    {"Bad Name": 1},
    {"index": 3},  # reserved: the verifier finds the entry's index by its first occurrence
    {f"k{i}": i for i in range(33)},
    {"by": tuple(f"d{i}" for i in range(33))},
])
def test_details_refuse_anything_but_names_identifiers_and_integers(details: object) -> None:
    with pytest.raises(EntryError):
        _with_details(details)


@pytest.mark.parametrize("data", [
    GOLDEN_DETAILS.replace(b'"v":2', b'"v":1'),  # v1 may not carry details
    GOLDEN_DISCLOSURE.replace(b'"v":1', b'"v":2'),  # v2 must carry them
    GOLDEN_DETAILS.replace(b'"details":{', b'"details":{"zz":1,', 1),  # not sorted
    GOLDEN_DETAILS.replace(b'"rows_total":12', b'"rows_total":12.0'),
    GOLDEN_DETAILS.replace(b'"rows_total":12', b'"rows_total":"12 rows"'),
    GOLDEN_DETAILS.replace(b'"file_sha256":"9f86d081884c7d65"', b'"phone":"13812345678"'),
    GOLDEN_DETAILS.replace(GOLDEN_DETAILS[GOLDEN_DETAILS.index(b'"details"'):
                                          GOLDEN_DETAILS.index(b'"index"')], b'"details":{},'),
])
def test_decode_refuses_malformed_details(data: bytes) -> None:
    with pytest.raises(EntryError):
        decode(data)


_detail_values = st.one_of(
    st.integers(0, 2**53 - 1), st.booleans(), _ident, st.tuples(_field, _field).map(tuple))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**53 - 1), st.dictionaries(_field.filter(lambda n: n != "index"),
                                                  _detail_values, max_size=6))
def test_fast_encoder_equals_rfc8785_with_details(index: int, details: dict[str, object]
                                                  ) -> None:
    e = replace(disclosure(1), details=details)
    assert encode(index, e) == encode_reference(index, e)
    assert decode(encode(index, e)).entry == e


# -- subjects built from shared, pre-checked field names (the disclosure path's lean build) --

_reasons = st.sampled_from(["no_consent", "never_share", "condition_unmet", "not_in_policy"])


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**53 - 1), _ident, st.one_of(st.none(), _ident),
       st.lists(_field, unique=True, max_size=6), st.lists(st.tuples(_field, _reasons),
       unique_by=lambda p: p[0], max_size=6), st.lists(_ident, max_size=3))  # fmt: skip
def test_a_subject_naming_shared_field_names_encodes_as_one_built_field_by_field(
    index: int, pseudonym: str, case: str | None, disclosed: list[str],
    withheld: list[tuple[str, str]], consents: list[str],
) -> None:  # fmt: skip
    held = tuple(Withheld(f, r) for f, r in withheld if f not in disclosed)
    names = FieldNames(tuple(disclosed), held)
    lean = Subject.naming(pseudonym, case, names, consents)
    plain = Subject(pseudonym, case, tuple(disclosed), held, tuple(consents))
    assert lean == plain
    entries = [
        AuditEntry(T0, Actor("contractor-1", "contractor"), "case.disclose", subjects=(s, s))
        for s in (lean, plain)
    ]
    assert encode(index, entries[0]) == encode(index, entries[1])
    assert encode(index, entries[0]) == encode_reference(index, entries[0])
    assert decode(encode(index, entries[0])).entry == entries[1]


@pytest.mark.parametrize("disclosed, withheld", [
    (("resident.name", "resident.name"), ()),
    (("resident.name",), (Withheld("resident.name", "no_consent"),)),
    ((), (Withheld("address", "no_consent"), Withheld("address", "never_share"))),
    (("Resident.Name",), ()),
    ((), ("address",)),
])  # fmt: skip
def test_field_names_are_checked_as_a_subject_checks_them(disclosed, withheld) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(EntryError):
        FieldNames(disclosed, withheld)
    with pytest.raises(EntryError):
        Subject("ap_1", None, disclosed, withheld)


def test_a_subject_naming_field_names_still_checks_its_identifiers() -> None:
    names = FieldNames(("resident.name",))
    for pseudonym, case, consents in [
        ("13912345678", None, ()),
        ("ap_1", "370214199001011232", ()),
        ("ap_1", None, ("bad id with spaces",)),
        ("", None, ()),
    ]:
        with pytest.raises(EntryError):
            Subject.naming(pseudonym, case, names, consents)
    with pytest.raises(EntryError):
        Subject.naming("ap_1", None, ("resident.name",), ())  # type: ignore[arg-type]
