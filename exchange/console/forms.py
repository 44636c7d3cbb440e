"""Form errors in the reader's words: “用户名：格式不正确”. The services name the field and a
reason code (never the value); here they become a label and a message."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from exchange.console.i18n import N_
from exchange.services.errors import FieldProblem, FlowError

FIELD_LABELS: Final = {
    "name": N_("User name"),
    "username": N_("User name"),
    "display_name": N_("Display name"),
    "role": N_("Role"),
    "communities": N_("Communities"),
    "password": N_("Password"),
    "current_password": N_("Current password"),
    "new_password": N_("New password"),
    "confirm_password": N_("Confirm new password"),
    "code": N_("Verification code"),
    "community": N_("Community"),
    "stage": N_("Stage"),
    "due_month": N_("Due month"),
    "assignment": N_("Assignment"),
    "national_id": N_("ID number"),
    "phone": N_("Phone"),
    "field": N_("Value to show"),
    "reason": N_("Reason"),
    "note": N_("Note"),
    "scopes": N_("Scopes"),
    "separate": N_("Separate consent"),
    "guardian": N_("Guardian consent"),
    "method": N_("How"),
    "notice_version": N_("Notice version"),
    "evidence": N_("Signed form"),
    "evidence_sha256": N_("Signed form"),
    "agreement_id": N_("Agreement"),
    "programme": N_("Applies to"),
    "contractor_id": N_("Contractor"),
    "services": N_("Services"),
    "bookings.0.service": N_("Booking service"),
    "bookings.0.on": N_("Booking date"),
    "compound": N_("Compound"),
    "building": N_("Building"),
    "unit": N_("Unit"),
    "room": N_("Room"),
    "due_date": N_("Due date"),
    "delivery_date": N_("Delivery date"),
    "parity": N_("Parity"),
    "risk_flags": N_("Risk factors"),
    "child_birth_date": N_("Infant's birth date"),
    "child_sex": N_("Infant's sex"),
    "file": N_("File"),
    "reference": N_("Agreement number"),
    "valid_from": N_("Valid from"),
    "valid_to": N_("Valid to"),
    "retention_days": N_("Retention (days)"),
    "purposes": N_("Purposes and policy versions"),
    "purposes.home_visit": N_("Home visit"),
    "purposes.online_guidance": N_("Online guidance"),
    "purposes.class_invitation": N_("Class invitation"),
    "purpose": N_("Purpose"),
    "to": N_("Policy version"),
    "document": N_("Policy document"),
    "confirm_widening": N_("Confirmation"),
    "public_key": N_("Public key"),
    "cert_thumbprint": N_("Certificate thumbprint"),
    "ttl_days": N_("Valid for (days)"),
    "principal": N_("System account"),
}

REASONS: Final = {
    "format": N_("the format is not valid"),
    "length": N_("must be 10 to 128 characters"),
    "too_simple": N_("needs three of: lower-case, upper-case, digit, symbol"),
    "contains_username": N_("must not contain the user name"),
    "taken": N_("is already in use"),
    "required": N_("is required"),
    "one_of": N_("give an ID number or a phone, not both"),
    "unknown": N_("is not a known value"),
    "not_allowed": N_("does not apply to this role"),
    "mismatch": N_("does not match"),
    "unchanged": N_("must differ from the current password"),
    "too_large": N_("is too large (at most 10 MB)"),
    "services_invalid": N_("choose exactly 4 different services of the 6"),
    "service_not_assigned": N_("must be one of the services chosen"),
    "separate_consent_required": N_(
        "pregnancy and birth health are sensitive: confirm the separate consent"
    ),
    "guardian_consent_required": N_("infant data needs the guardian's consent: confirm it"),
    "agreement_or_programme": N_("choose an agreement or the whole programme"),
    "scope_unknown": N_("is not a known value"),
    "method_unknown": N_("is not a known value"),
    "duplicate": N_("names a value twice"),
    "not_party": N_("is not party to this agreement"),
    "file_type": N_("must be a .xlsx or .csv file"),
    # the ledger's row reasons (exchange.ledger.validate.MESSAGES): a registration and the
    # import report
    "id_format": N_("must be 18 characters (17 digits and a digit or X) or 15 digits"),
    "id_region": N_("does not start with a valid province code"),
    "id_birth_date": N_("contains an impossible birth date"),
    "id_check_digit": N_("has a wrong check digit"),
    "id_stored_as_number": N_("was stored as a number by Excel and lost digits: format the "
                              "column as text and enter it again"),
    "resident_age": N_("gives an age outside 14 to 60 years"),
    "duplicate_in_file": N_("repeats the ID number of an earlier row"),
    "already_registered": N_("is already registered: ask the street office to check the "
                             "ledger"),
    "phone_format": N_("must be an 11-digit mobile number"),
    "name_format": N_("must be 1 to 50 characters of a name (no digits or symbols)"),
    "community_unknown": N_("is not a community of this street office"),
    "community_out_of_scope": N_("is not one of your communities"),
    "district_mismatch": N_("must be 城阳区"),
    "street_mismatch": N_("must be 城阳街道"),
    "text_format": N_("must be at most 50 printable characters"),
    "formula_lead": N_("must not begin with = + - or @"),
    "stage_unknown": N_("must be 备孕, 孕期 or 产后"),
    "date_format": N_("must be a real date (YYYY-MM-DD)"),
    "date_future": N_("cannot be in the future"),
    "date_range": N_("is outside the range this programme allows"),
    "due_date_missing": N_("is required when the stage is 孕期"),
    "delivery_missing": N_("分娩日期 or 婴儿出生日期 is required when the stage is 产后"),
    "dates_inconsistent": N_("does not match 分娩日期"),
    "parity_format": N_("must be a whole number from 1 to 20"),
    "risk_flag_unknown": N_("names a risk factor not in the list"),
    "sex_unknown": N_("must be 男 or 女"),
    # agreements, policies, contractors and tokens
    "before_valid_from": N_("must not be before the start date"),
    "out_of_range": N_("is out of range"),
    "purpose_unknown": N_("is not a known purpose"),
    "policy_unknown": N_("is not a published policy version"),
    "policy_purpose_mismatch": N_("is a policy for another purpose"),
    "purpose_changed": N_("cannot change the purpose of a published policy; publish it under "
                          "another id"),
    "purpose_not_agreed": N_("is not a purpose of this agreement"),
    "policy_file_type": N_("must be a .toml file"),
    "policy_too_large": N_("is too large (at most 64 KiB)"),
    "key_invalid": N_("is not a contractor public key in its text form"),
    "inactive": N_("is not active"),
    "revoked": N_("is revoked"),
    "thumbprint_format": N_("must be the certificate's SHA-256 thumbprint (43 characters, "
                            "base64url)"),
}


# the services' whole-request refusals the console shows (English ids, translated)
DETAILS: Final = {
    "the user is not locked": N_("The user is not locked"),
    "an office admin cannot take away her own admin role": N_(
        "An office admin cannot take away her own admin role"
    ),
    "no such console user": N_("No such user"),
    "no such live session": N_("The session has already ended"),
    "no second factor is waiting for confirmation": N_(
        "No second factor is waiting for confirmation"
    ),
    "the resident has not consented to service_contact for this agreement": N_(
        "The resident has not consented to service contact for this agreement: record her "
        "consent first"
    ),
    "the resident already has an active assignment under this agreement": N_(
        "The resident already has an active assignment under this agreement"
    ),
    "the resident was erased": N_("This resident's data was erased."),
    "the contractor is not active": N_("The contractor is not active"),
    "the assignment is already revoked": N_("The assignment is already revoked"),
    "the assignment is revoked": N_("The assignment is already revoked"),
    "the agreement is already terminated": N_("The agreement is already terminated"),
    "the agreement is terminated": N_("The agreement is terminated"),
    "a contractor with this name exists": N_("A contractor with this name exists"),
    "this public key is already registered": N_("This public key is already registered"),
}
# whole-request refusals whose words carry a code or a state after a fixed beginning
DETAIL_PREFIXES: Final = (
    ("the agreement is already on ", N_("The agreement is already on this version")),
    ("an agreement that is ", N_("The agreement's status does not allow this")),
    ("the agreement is ", N_("The agreement is not active")),
)


def message(problem: FieldProblem, _: Callable[[str], str],
            labels: Mapping[str, str] | None = None) -> str:  # fmt: skip
    """`labels`: a page's own names for its fields, over FIELD_LABELS."""
    label = _({**FIELD_LABELS, **(labels or {})}.get(problem.field, problem.field))
    reason = REASONS.get(problem.reason)
    return f"{label}{_(': ')}{_(reason) if reason else _('is not valid')}"


def field_errors(error: FlowError, _: Callable[[str], str],
                 labels: Mapping[str, str] | None = None) -> dict[str, list[str]]:  # fmt: skip
    """Messages by field name; a flow error without fields goes under "" (the whole form)."""
    out: dict[str, list[str]] = {}
    for problem in error.errors:
        out.setdefault(problem.field, []).append(message(problem, _, labels))
    if not error.errors:
        detail = DETAILS.get(error.detail)
        for prefix, words in DETAIL_PREFIXES:
            if detail is None and error.detail.startswith(prefix):
                detail = words
        out[""] = [_(detail or N_("The request could not be completed"))]
    return out
