"""Form errors in the reader's words: “用户名：格式不正确”. The services name the field and a
reason code (never the value); here they become a label and a message."""

from __future__ import annotations

from collections.abc import Callable
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
}

REASONS: Final = {
    "format": N_("the format is not valid"),
    "length": N_("must be 10 to 128 characters"),
    "too_simple": N_("needs three of: lower-case, upper-case, digit, symbol"),
    "contains_username": N_("must not contain the user name"),
    "taken": N_("is already in use"),
    "required": N_("is required"),
    "unknown": N_("is not a known value"),
    "not_allowed": N_("does not apply to this role"),
    "mismatch": N_("does not match"),
    "unchanged": N_("must differ from the current password"),
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
}


def message(problem: FieldProblem, _: Callable[[str], str]) -> str:
    label = _(FIELD_LABELS.get(problem.field, problem.field))
    reason = REASONS.get(problem.reason)
    return f"{label}{_(': ')}{_(reason) if reason else _('is not valid')}"


def field_errors(error: FlowError, _: Callable[[str], str]) -> dict[str, list[str]]:
    """Messages by field name; a flow error without fields goes under "" (the whole form)."""
    out: dict[str, list[str]] = {}
    for problem in error.errors:
        out.setdefault(problem.field, []).append(message(problem, _))
    if not error.errors:
        out[""] = [_(DETAILS.get(error.detail, N_("The request could not be completed")))]
    return out
