"""Compiled plans against the engine as it was (tests/policies/reference_engine.py).

For random policies, records, consents, agreements, assignments and times, a plan gives the
same Evaluation as the reference: the same view, the same decision record (every field, its
reason and detail, in order), the same consents relied on. And a record cut down to what the
plan says it reads discloses the same view: a loader that decrypts only `reads` loses nothing.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from policies import AgreementTerms, PolicySet, ResidentRecord, parse_policy
from policies.catalogue import Purpose
from policies.shipped import shipped_policies
from tests.policies import reference_engine
from tests.policies.test_properties import (
    SETTINGS,
    assignments,
    consents,
    nows,
    policy_texts,
    records,
)

AGREEMENT_STATUSES = st.sampled_from(["active", "active", "active", "suspended", "terminated"])
# how the agreement maps purposes: to the policy, to nothing, or to another purpose's policy
MAPPINGS = st.sampled_from(["policy", "policy", "none", "other"])
PERIODS = st.sampled_from(
    [(dt.date(2025, 1, 1), dt.date(2025, 12, 31)), (dt.date(2025, 6, 1), dt.date(2025, 6, 30))]
)


def agreement(status: str, mapping: str, period: tuple[dt.date, dt.date]) -> AgreementTerms:
    purposes = {
        "policy": {"home_visit": "prop.policy"},
        "none": {},
        "other": {"home_visit": "prop.other"},
    }[mapping]
    return AgreementTerms("ag-1", status, *period, purposes)  # type: ignore[arg-type]


def both(policies: list, *args: object) -> tuple[object, object]:
    new = PolicySet(policies).evaluate(*args)  # type: ignore[arg-type]
    old = reference_engine.PolicySet(policies).evaluate(*args)
    return new, old


@SETTINGS
@given(
    policy_texts(), policy_texts("online_guidance"), records(), consents, assignments(), nows,
    AGREEMENT_STATUSES, MAPPINGS, PERIODS,
)  # fmt: skip
def test_plan_gives_the_reference_evaluation(
    text, other_text, record, consent, assignment, now, status, mapping, period
) -> None:
    policies = [parse_policy(text), parse_policy(other_text.replace("prop.policy", "prop.other"))]
    terms = agreement(status, mapping, period)
    new, old = both(policies, record, consent, terms, assignment, "home_visit", now)
    assert new == old
    assert new.decisions == old.decisions  # type: ignore[attr-defined]
    assert dict(new.view) == dict(old.view)  # type: ignore[attr-defined]


@SETTINGS
@given(records(), consents, assignments(), nows, st.sampled_from(list(Purpose)))
def test_shipped_plans_give_the_reference_evaluation(record, consent, assignment, now, purpose):
    shipped = list(shipped_policies())
    terms = AgreementTerms(
        "ag-1", "active", dt.date(2024, 1, 1), dt.date(2026, 12, 31),  # type: ignore[arg-type]
        {p.purpose.value: p.id for p in shipped},
    )  # fmt: skip
    new, old = both(shipped, record, consent, terms, assignment, purpose.value, now)
    assert new == old


@SETTINGS
@given(policy_texts(), records(), consents, assignments(), nows)
def test_a_record_cut_to_what_the_plan_reads_discloses_the_same(
    text, record, consent, assignment, now
) -> None:
    policy = parse_policy(text)
    policies = PolicySet([policy])
    terms = agreement("active", "policy", (dt.date(2024, 1, 1), dt.date(2026, 12, 31)))
    reads = policies.reads("home_visit")
    assert reads == policies.plan("prop.policy").reads
    cut = ResidentRecord(
        {k: v for k, v in record.values.items() if k in reads}, record.case_reference
    )
    full = policies.evaluate(record, consent, terms, assignment, "home_visit", now)
    lean = policies.evaluate(cut, consent, terms, assignment, "home_visit", now)
    assert dict(lean.view) == dict(full.view)
    assert lean.shared_fields == full.shared_fields


def test_reads_name_the_sources_of_disclosing_rules_and_their_conditions() -> None:
    text = (
        'id = "prop.reads"\nversion = 1\npurpose = "home_visit"\n'
        '[legal_basis]\nkind = "entrusted_processing"\nreference = "x"\n'
        '[consent]\nscopes = ["service_contact", "pregnancy_health"]\nrequired = []\n'
        '[fields.weeks]\nsource = "derived.gestation_weeks"\ntransform = "as_is"\n'
        '[fields.area]\nsource = "address"\ntransform = "address_building"\n'
        '[fields.name]\nsource = "resident.name"\ntransform = "surname_title"\n'
        'when = { stage_in = ["pregnant"] }\n'
        '[fields.phone]\nsource = "resident.phone"\ntransform = "drop"\n'
    )
    reads = PolicySet([parse_policy(text)]).reads("home_visit")
    assert reads == {
        "episode.due_date", "episode.stage", "resident.name",
        "address.district", "address.street", "address.community", "address.compound",
        "address.building", "address.unit", "address.room",
    }  # fmt: skip
    assert PolicySet([parse_policy(text)]).reads("online_guidance") == frozenset()


@SETTINGS
@given(policy_texts(), records(), consents, assignments(), nows, PERIODS)
def test_the_compiled_fields_step_gives_the_loop_evaluation(
    text, record, consent, assignment, now, period
) -> None:
    """`Plan.evaluate` runs the field loop unrolled by `compile_fields`, with shared
    conditions evaluated once; `evaluate_loop` is the loop itself."""
    plan = PolicySet([parse_policy(text)]).plan("prop.policy")
    terms = agreement("active", "policy", period)
    today = now.date()
    compiled = plan.evaluate(record, consent, terms, assignment, today)
    loop = plan.evaluate_loop(record, consent, terms, assignment, today)
    assert compiled == loop
    assert compiled.decisions == loop.decisions
    assert dict(compiled.view) == dict(loop.view)
    assert compiled.consent_event_ids == loop.consent_event_ids
