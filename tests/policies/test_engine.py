import dataclasses
import datetime as dt

import pytest

from policies import (
    AgreementTerms,
    AssignmentTerms,
    Booking,
    ConsentState,
    EngineInputError,
    PolicySet,
    Reason,
    ResidentRecord,
    UnknownPolicyError,
    evaluate,
    parse_policy,
    render_preview,
    shipped_policies,
    shipped_policy,
)
from policies.catalogue import ConsentScope
from policies.shipped import SHIPPED_DIR
from tests.policies.synthetic import (
    AGREEMENT,
    ALL_CONSENT,
    NOW,
    POSTPARTUM,
    POSTPARTUM_ASSIGNMENT,
    PREGNANCY_ASSIGNMENT,
    PREGNANT,
)


def decisions(evaluation):
    return {d.field: (d.shared, d.reason) for d in evaluation.decisions}


def home_visit(**changes):
    args = {
        "record": PREGNANT,
        "consents": ALL_CONSENT,
        "agreement": AGREEMENT,
        "assignment": PREGNANCY_ASSIGNMENT,
        "purpose": "home_visit",
        "now": NOW,
    }
    args.update(changes)
    return evaluate(**args)


def test_every_policy_field_gets_exactly_one_decision():
    result = home_visit()
    names = [d.field for d in result.decisions]
    assert len(names) == len(set(names))
    assert {f.name for f in shipped_policy("home_visit").fields} <= set(names)
    assert set(result.view) == {d.field for d in result.decisions if d.shared}


def test_identity_carried_for_the_audit_entry():
    result = home_visit()
    assert result.policy == shipped_policy("home_visit").identity
    assert len(result.policy.sha256) == 64


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("draft", Reason.AGREEMENT_INACTIVE),
        ("suspended", Reason.AGREEMENT_INACTIVE),
        ("terminated", Reason.AGREEMENT_INACTIVE),
    ],
)
def test_inactive_agreement_shares_nothing(status, reason):
    result = home_visit(agreement=dataclasses.replace(AGREEMENT, status=status))
    assert result.view == {}
    assert result.consent_event_ids == ()
    assert {
        r
        for s, r in decisions(result).values()
        if r not in (Reason.NEVER_SHARE, Reason.NOT_IN_POLICY)
    } == {reason}


@pytest.mark.parametrize(
    "now",
    [
        dt.datetime(2024, 12, 31, 15, 59, tzinfo=dt.UTC),  # 23:59 CST
        dt.datetime(2026, 1, 1, 0, 0, tzinfo=dt.UTC),
    ],
)
def test_out_of_date_agreement_shares_nothing(now):
    result = home_visit(now=now)
    assert result.view == {}
    assert decisions(result)["case_ref"] == (False, Reason.AGREEMENT_OUT_OF_DATE)


def test_agreement_period_uses_china_standard_time():
    # 2024-12-31 16:00 UTC is 2025-01-01 00:00 in Qingdao: the first day of the agreement.
    result = home_visit(now=dt.datetime(2024, 12, 31, 16, 0, tzinfo=dt.UTC))
    assert "case_ref" in result.view


def test_revoked_or_foreign_assignment_shares_nothing():
    revoked = home_visit(assignment=dataclasses.replace(PREGNANCY_ASSIGNMENT, status="revoked"))
    assert revoked.view == {}
    assert decisions(revoked)["case_ref"] == (False, Reason.ASSIGNMENT_REVOKED)
    other = home_visit(assignment=dataclasses.replace(PREGNANCY_ASSIGNMENT, agreement_id="ag-x"))
    assert other.view == {}
    assert decisions(other)["case_ref"] == (False, Reason.ASSIGNMENT_OTHER_AGREEMENT)


def test_purpose_not_in_agreement_shares_nothing():
    agreement = dataclasses.replace(AGREEMENT, purposes={"home_visit": "cy1000.home_visit"})
    result = home_visit(agreement=agreement, purpose="class_invitation")
    assert result.view == {} and result.policy is None
    assert decisions(result)["resident.name"] == (False, Reason.PURPOSE_NOT_AGREED)
    assert decisions(result)["resident.national_id"] == (False, Reason.NEVER_SHARE)


def test_agreement_mapping_purpose_to_another_purposes_policy_shares_nothing():
    agreement = dataclasses.replace(AGREEMENT, purposes={"home_visit": "cy1000.class_invitation"})
    assert home_visit(agreement=agreement).view == {}


def test_unknown_policy_id_is_a_configuration_error():
    agreement = dataclasses.replace(AGREEMENT, purposes={"home_visit": "nope"})
    with pytest.raises(UnknownPolicyError):
        home_visit(agreement=agreement)


def test_without_required_contact_consent_nothing_is_shared():
    result = home_visit(consents=ALL_CONSENT.without(ConsentScope.SERVICE_CONTACT))
    assert result.view == {}
    assert decisions(result)["stage"] == (False, Reason.NO_CONSENT)


def test_sensitive_fields_need_their_separate_consent():
    result = home_visit(consents=ALL_CONSENT.without(ConsentScope.PREGNANCY_HEALTH))
    assert "display_name" in result.view
    for name in ("stage", "gestation_weeks", "due_month", "risk_flags", "age_band"):
        assert decisions(result)[name] == (False, Reason.NO_CONSENT)
    assert "ev-pregnancy" not in result.consent_event_ids


def test_consent_events_relied_on_are_exactly_those_of_shared_fields():
    assert home_visit().consent_event_ids == ("ev-contact", "ev-pregnancy")
    postpartum = home_visit(record=POSTPARTUM, assignment=POSTPARTUM_ASSIGNMENT)
    assert postpartum.consent_event_ids == ("ev-birth", "ev-child", "ev-contact", "ev-pregnancy")


def test_sealed_contact_only_while_a_visit_is_booked_within_7_days():
    booked = home_visit()
    assert booked.view["phone"].sealed and booked.view["address"].sealed
    assert booked.view["address"].value == "民城路社区春阳花园3号楼2单元501"
    later = home_visit(now=dt.datetime(2025, 2, 20, tzinfo=dt.UTC))  # visit 12 days away
    assert "phone" not in later.view and "address" not in later.view
    assert decisions(later)["address"] == (False, Reason.CONDITION_UNMET)
    assert "phone_masked" in later.view and "area" in later.view
    past = home_visit(now=dt.datetime(2025, 3, 5, tzinfo=dt.UTC))  # visit was yesterday
    assert "phone" not in past.view


def test_service_conditions():
    pregnant = home_visit()
    assert pregnant.view["gestation_weeks"].value == 26
    assert (
        decisions(pregnant)["infant_age_band"][1] is Reason.NO_VALUE
    )  # parenting chosen, no child yet
    postpartum = home_visit(record=POSTPARTUM, assignment=POSTPARTUM_ASSIGNMENT)
    assert postpartum.view["delivery_month"].value == "2024-11"
    assert postpartum.view["infant_age_band"].value == "3-5m"
    assert decisions(postpartum)["gestation_weeks"][1] is Reason.CONDITION_UNMET


def test_missing_value_is_withheld_with_reason():
    record = ResidentRecord({"resident.name": "王芳", "episode.stage": "preparing"}, "c1_Aa11Bb22")
    result = home_visit(record=record)
    assert decisions(result)["phone_masked"] == (False, Reason.NO_VALUE)
    assert set(result.view) == {"case_ref", "display_name", "services", "stage"}


def test_never_share_and_unused_record_fields_are_reported_withheld():
    result = home_visit()
    assert decisions(result)["resident.national_id"] == (False, Reason.NEVER_SHARE)
    assert decisions(result)["resident.birth_date"] == (False, Reason.NEVER_SHARE)
    assert decisions(result)["episode.parity"] == (False, Reason.NOT_IN_POLICY)


def test_dropped_field_is_withheld_with_its_own_reason():
    result = evaluate(
        PREGNANT, ALL_CONSENT, AGREEMENT, PREGNANCY_ASSIGNMENT, "class_invitation", NOW
    )
    assert decisions(result)["risk_flags"] == (False, Reason.DROPPED_BY_POLICY)


def test_record_refuses_ledger_fields_and_wrong_types_without_echoing_values():
    with pytest.raises(EngineInputError, match="ledger.cadre_notes") as caught:
        ResidentRecord({"ledger.cadre_notes": "秘密备注"}, "c1_Aa11Bb22")
    assert "秘密" not in str(caught.value)
    with pytest.raises(EngineInputError) as caught:
        ResidentRecord({"resident.phone": 13812345678}, "c1_Aa11Bb22")
    assert "13812345678" not in str(caught.value)


def test_reprs_show_no_values():
    result = home_visit()
    for text in (repr(PREGNANT), repr(result), repr(result.view["display_name"])):
        assert "李" not in text and "13812345678" not in text


def test_naive_clock_refused():
    with pytest.raises(EngineInputError, match="timezone-aware"):
        home_visit(now=dt.datetime(2025, 3, 1))


def test_input_values_validated():
    with pytest.raises(EngineInputError):
        ConsentState({"everything": "ev-1"})
    with pytest.raises(EngineInputError):
        AgreementTerms("a", "active", dt.date(2025, 2, 1), dt.date(2025, 1, 1), {})
    with pytest.raises(EngineInputError):
        AssignmentTerms(
            "x", "a", "active", ("parenting",), (Booking("confinement", dt.date(2025, 1, 1)),)
        )
    with pytest.raises(EngineInputError):
        AssignmentTerms(
            "x",
            "a",
            "active",
            tuple(s.value for s in list(ConsentScope)[:0])
            + ("mid_pregnancy", "late_pregnancy", "confinement", "parenting", "early_education"),
        )


def test_duplicate_policy_versions_refused():
    from policies import DuplicatePolicyError

    policy = shipped_policy("home_visit")
    with pytest.raises(DuplicatePolicyError):
        PolicySet([policy, policy])


def test_preview_shows_sealed_and_withheld_with_reasons():
    text = render_preview(home_visit())
    assert "«sealed»" in text
    assert "13812345678" not in text and "2单元501" not in text
    assert "138****5678" in text
    assert "resident.national_id" in text and "never_share" in text
    assert "370214198912150026" not in text
    assert shipped_policy("home_visit").identity.sha256 in text


def test_preview_of_a_denial():
    text = render_preview(home_visit(agreement=dataclasses.replace(AGREEMENT, status="suspended")))
    assert "shared:  nothing" in text and "agreement_inactive" in text


def test_custom_policy_set():
    policy = parse_policy(
        'id = "x.only_name"\nversion = 3\npurpose = "home_visit"\n'
        '[legal_basis]\nkind = "entrusted_processing"\nreference = "PIPL Art. 21"\n'
        '[consent]\nscopes = ["service_contact"]\n'
        '[fields.name]\nsource = "resident.name"\ntransform = "surname_title"\n'
    )
    agreement = dataclasses.replace(AGREEMENT, purposes={"home_visit": "x.only_name"})
    result = evaluate(
        PREGNANT,
        ALL_CONSENT,
        agreement,
        PREGNANCY_ASSIGNMENT,
        "home_visit",
        NOW,
        policies=PolicySet([policy]),
    )
    assert dict(result.view) == {"name": ("李女士", False, "surname_title")}
    assert "x.only_name" not in shipped_policies()


def test_office_date_is_the_date_in_china_standard_time() -> None:
    from policies import office_date

    assert office_date(dt.datetime(2026, 11, 23, 15, 59, tzinfo=dt.UTC)) == dt.date(2026, 11, 23)
    # 16:00 UTC is midnight in Qingdao: a booking "today" there is already the 24th
    assert office_date(dt.datetime(2026, 11, 23, 16, 0, tzinfo=dt.UTC)) == dt.date(2026, 11, 24)
    with pytest.raises(EngineInputError):
        office_date(dt.datetime(2026, 11, 23, 16, 0))  # naive: whose midnight?


def test_one_set_holds_several_versions_and_agreements_pin_theirs():
    """An office publishes v2 while agreements stay on v1 until moved: both evaluate."""
    v1 = shipped_policy("home_visit")
    text = (SHIPPED_DIR / "home_visit.toml").read_text(encoding="utf-8")
    narrower = text.replace("version = 1", "version = 2", 1)
    narrower = narrower[: narrower.index("[fields.phone]")]  # v2 drops the fields after it
    v2 = parse_policy(narrower, "home_visit_v2.toml")
    both = PolicySet([v2, v1])
    assert list(both) == [v2, v1]
    assert both.get(v1.id) is v2 and both.get(f"{v1.id}@1") is v1  # bare id: the latest
    assert v1.identity.reference == "cy1000.home_visit@1"

    pinned_v1 = dataclasses.replace(AGREEMENT, purposes={"home_visit": v1.identity.reference})
    pinned_v2 = dataclasses.replace(AGREEMENT, purposes={"home_visit": v2.identity.reference})
    on_v1 = home_visit(agreement=pinned_v1, policies=both)
    on_v2 = home_visit(agreement=pinned_v2, policies=both)
    assert on_v1.policy == v1.identity and on_v2.policy == v2.identity
    assert "phone" in {d.field for d in on_v1.decisions}
    assert "phone" not in {d.field for d in on_v2.decisions}
    with pytest.raises(UnknownPolicyError):
        home_visit(agreement=dataclasses.replace(
            AGREEMENT, purposes={"home_visit": f"{v1.id}@3"}), policies=both)
