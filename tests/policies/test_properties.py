"""Property tests over random records, consents, agreements, assignments and policies."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies import (
    AgreementTerms,
    AssignmentTerms,
    Booking,
    ConsentState,
    PolicySet,
    ResidentRecord,
    parse_policy,
)
from policies.catalogue import (
    ADDRESS_PARTS,
    SOURCE_FIELDS,
    ConsentScope,
    Kind,
    Purpose,
    Service,
    Stage,
)
from policies.transforms import TRANSFORMS

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

COMBOS = sorted(
    (name, t.name, t.must_seal)
    for name, f in SOURCE_FIELDS.items()
    if not f.never_share and f.kind is not Kind.ADDRESS_PART
    for t in TRANSFORMS.values()
    if f.kind in t.kinds
)
SERVICES = [s.value for s in Service]
STAGES = [s.value for s in Stage]


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"


conditions = st.fixed_dictionaries(
    {},
    optional={
        "visit_booked_within_days": st.integers(0, 90),
        "services_any": st.lists(st.sampled_from(SERVICES), min_size=1, max_size=3, unique=True),
        "stage_in": st.lists(st.sampled_from(STAGES), min_size=1, max_size=2, unique=True),
    },
)


@st.composite
def policy_texts(draw: st.DrawFn, purpose: str = "home_visit") -> str:
    chosen = draw(st.lists(st.sampled_from(COMBOS), min_size=1, max_size=12))
    lines = [
        'id = "prop.policy"',
        "version = 1",
        f'purpose = "{purpose}"',
        "[legal_basis]",
        'kind = "entrusted_processing"',
        'reference = "PIPL Art. 21"',
        "[consent]",
        "scopes = " + toml_value([s.value for s in ConsentScope]),
        "required = " + toml_value(draw(st.sampled_from([[], ["service_contact"]]))),
    ]
    for i, (source, transform, must_seal) in enumerate(chosen):
        sealed = must_seal or draw(st.booleans())
        lines += [
            f"[fields.f{i}]",
            f'source = "{source}"',
            f'transform = "{transform}"',
            f"sealed = {toml_value(sealed)}",
        ]
        when = draw(conditions)
        if when:
            lines.append(f"when = {toml_value(when)}")
    return "\n".join(lines) + "\n"


DAYS = st.dates(dt.date(1975, 1, 1), dt.date(2026, 12, 31))
phones = st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)
cjk = st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5), min_size=1, max_size=4)


@st.composite
def records(draw: st.DrawFn) -> ResidentRecord:
    born = draw(st.dates(dt.date(1975, 1, 1), dt.date(2007, 1, 1)))
    serial = draw(st.integers(0, 999))
    national_id = f"370214{born:%Y%m%d}{serial:03d}" + draw(st.sampled_from("0123456789X"))
    values: dict[str, object] = {
        "resident.national_id": national_id,
        "resident.birth_date": born,
        "resident.name": draw(cjk),
        "resident.phone": draw(phones),
        **{p: draw(st.none() | cjk) for p in ADDRESS_PARTS},
        "episode.stage": draw(st.sampled_from(STAGES)),
        "episode.due_date": draw(st.none() | DAYS),
        "episode.delivery_date": draw(st.none() | DAYS),
        "episode.parity": draw(st.integers(0, 6)),
        "episode.risk_flags": tuple(
            draw(st.lists(st.sampled_from(["advanced_maternal_age", "anaemia"]), unique=True))
        ),
        "child.birth_date": draw(st.none() | DAYS),
        "child.sex": draw(st.sampled_from([None, "F", "M"])),
    }
    keep = draw(st.sets(st.sampled_from(sorted(values))))
    return ResidentRecord(
        {
            k: v
            for k, v in values.items()
            if k in keep or k.startswith(("resident.national", "resident.birth", "child.birth"))
        },
        "c1_" + draw(st.from_regex(r"[A-Za-z0-9]{10}", fullmatch=True)),
    )


consents = st.dictionaries(
    st.sampled_from(list(ConsentScope)), st.from_regex(r"ev-[0-9]{1,4}", fullmatch=True)
).map(ConsentState)


@st.composite
def assignments(draw: st.DrawFn) -> AssignmentTerms:
    services = tuple(draw(st.lists(st.sampled_from(SERVICES), min_size=1, max_size=4, unique=True)))
    bookings = tuple(
        Booking(
            draw(st.sampled_from(services)),
            draw(st.dates(dt.date(2025, 2, 1), dt.date(2025, 5, 1))),
        )  # type: ignore[arg-type]
        for _ in range(draw(st.integers(0, 3)))
    )
    status = draw(st.sampled_from(["active", "active", "active", "revoked"]))
    return AssignmentTerms("as-1", "ag-1", status, services, bookings)  # type: ignore[arg-type]


def agreement(status: str = "active") -> AgreementTerms:
    return AgreementTerms(
        "ag-1",
        status,
        dt.date(2025, 1, 1),
        dt.date(2025, 12, 31),  # type: ignore[arg-type]
        {p.value: "prop.policy" for p in Purpose},
    )


nows = st.datetimes(dt.datetime(2024, 12, 1), dt.datetime(2026, 1, 31), timezones=st.just(dt.UTC))


def run(text, record, consent, assignment, now, status="active"):
    policy = parse_policy(text)
    return policy, PolicySet([policy]).evaluate(
        record, consent, agreement(status), assignment, "home_visit", now
    )


def serialise(evaluation) -> bytes:
    def default(value: object) -> object:
        raise TypeError(type(value).__name__)

    view = {k: [d.value, d.sealed, d.transform] for k, d in evaluation.view.items()}
    decisions = [list(d) for d in evaluation.decisions]
    return json.dumps(
        {"view": view, "decisions": decisions}, ensure_ascii=False, default=default
    ).encode()


@SETTINGS
@given(policy_texts(), records(), consents, assignments(), nows)
def test_view_holds_only_fields_the_policy_lists(text, record, consent, assignment, now):
    policy, result = run(text, record, consent, assignment, now)
    listed = {f.name for f in policy.fields if f.discloses}
    assert set(result.view) <= listed
    for name in result.view:
        rule = next(f for f in policy.fields if f.name == name)
        assert rule.scope is None or rule.scope in consent.scopes
        assert result.view[name].sealed == rule.sealed


@SETTINGS
@given(policy_texts(), records(), consents, assignments(), nows)
def test_serialised_view_never_holds_a_never_share_value(text, record, consent, assignment, now):
    _, result = run(text, record, consent, assignment, now)
    data = serialise(result)
    for name in ("resident.national_id", "resident.birth_date", "child.birth_date"):
        value = record.values.get(name)
        if value is None:
            continue
        assert (
            value.isoformat() if isinstance(value, dt.date) else str(value)
        ).encode() not in data


@SETTINGS
@given(
    policy_texts(), records(), consents, assignments(), nows, st.sampled_from(list(ConsentScope))
)
def test_withdrawing_a_scope_never_adds_a_field(text, record, consent, assignment, now, scope):
    policy = parse_policy(text)
    engine = PolicySet([policy])
    before = engine.evaluate(record, consent, agreement(), assignment, "home_visit", now)
    after = engine.evaluate(
        record, consent.without(scope), agreement(), assignment, "home_visit", now
    )
    assert set(after.view) <= set(before.view)
    assert all(after.view[k] == before.view[k] for k in after.view)
    assert set(after.consent_event_ids) <= set(before.consent_event_ids)


@SETTINGS
@given(
    policy_texts(),
    records(),
    consents,
    assignments(),
    nows,
    st.sampled_from(["draft", "suspended", "terminated"]),
)
def test_inactive_agreement_yields_nothing(text, record, consent, assignment, now, status):
    _, result = run(text, record, consent, assignment, now, status)
    assert result.view == {}
    assert result.consent_event_ids == ()
    assert not any(d.shared for d in result.decisions)


@SETTINGS
@given(policy_texts(), records(), consents, assignments(), nows)
def test_revoked_assignment_yields_nothing(text, record, consent, assignment, now):
    revoked = dataclasses.replace(assignment, status="revoked")
    _, result = run(text, record, consent, revoked, now)
    assert result.view == {}


@SETTINGS
@given(policy_texts(), records(), consents, assignments(), nows)
def test_one_decision_per_policy_field_and_per_present_unused_record_field(
    text, record, consent, assignment, now
):
    policy, result = run(text, record, consent, assignment, now)
    names = [d.field for d in result.decisions]
    assert len(names) == len(set(names))
    assert {f.name for f in policy.fields} <= set(names)
    for name in ("resident.national_id", "resident.birth_date"):
        assert name in names
