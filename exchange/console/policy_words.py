"""A policy version and a change of version in the reader's words: “手机号 → 完整手机号，加密；
条件：已预约且 7 天内上门”. The facts come from `services.policy_views` (source, transform,
sealed, conditions, the kind of each change); only the words are chosen here, each one a
catalogue message."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Final

from exchange.console.i18n import N_
from exchange.console.pages.resident import PURPOSE_LABELS, SCOPE_LABELS, SERVICE_LABELS
from exchange.console.pages.residents import STAGE_LABELS
from exchange.services.policy_views import ChangeView, RuleView

STATUS_LABELS: Final = {"draft": N_("Draft"), "active": N_("In force"),
                        "suspended": N_("Suspended"), "terminated": N_("Terminated")}  # fmt: skip
SOURCE_LABELS: Final = {
    "case.reference": N_("Case reference"), "resident.name": N_("Name"),
    "resident.phone": N_("Phone"), "address": N_("Residential address"),
    "assignment.services": N_("Services chosen"), "episode.stage": N_("Stage"),
    "episode.due_date": N_("Due date"), "episode.delivery_date": N_("Delivery date"),
    "episode.risk_flags": N_("Risk factors"), "episode.parity": N_("Parity"),
    "child.sex": N_("Infant's sex"), "child.birth_date": N_("Infant's birth date"),
    "derived.delivery_month": N_("Delivery month"),
    "derived.gestation_weeks": N_("Weeks of pregnancy"),
    "derived.infant_age_months_band": N_("Infant's age band (months)"),
    "derived.resident_age_band": N_("Age band"),
}  # fmt: skip
TRANSFORM_LABELS: Final = {
    "case_pseudonym": N_("pseudonym per agreement"), "surname_title": N_("surname and title"),
    "phone_masked": N_("masked phone"), "phone_full": N_("full phone number"),
    "address_community": N_("to the community"), "address_compound": N_("to the compound"),
    "address_building": N_("to the building"), "address_full": N_("full address"),
    "month": N_("to the month"), "week": N_("to the week"), "age_band": N_("five-year band"),
    "infant_age_band": N_("age band"), "service_codes": N_("service codes"),
    "as_is": N_("as recorded"), "drop": N_("not disclosed"),
}  # fmt: skip
CONDITION_LABELS: Final = {
    "visit_booked_within_days": N_("a visit is booked within %(v)s days"),
    "services_any": N_("the services chosen include %(v)s"),
    "stage_in": N_("the stage is %(v)s"),
}
CHANGE_LABELS: Final = {
    "disclosed": N_("newly disclosed: %(after)s"),
    "dropped": N_("no longer disclosed"),
    "removed": N_("removed: no longer disclosed"),
    "source": N_("source %(before)s → %(after)s"),
    "transform": N_("transform %(before)s → %(after)s"),
    "unsealed": N_("no longer sealed: disclosed in clear"),
    "sealed": N_("now sealed"),
    "condition_removed": N_("condition removed (disclosed more often): %(before)s"),
    "condition_added": N_("condition added: %(after)s"),
    "condition_changed": N_("condition %(before)s → %(after)s"),
    "purpose": N_("purpose %(before)s → %(after)s"),
    "scope_dropped": N_("consent no longer required: %(before)s"),
    "scope_required": N_("consent now required: %(after)s"),
}
LEGAL_BASIS_LABELS: Final = {"entrusted_processing": N_("Entrusted processing (PIPL Art. 21)")}
_CODES: Final = {**SERVICE_LABELS, **STAGE_LABELS}


class PolicyWords:
    """Bound to a page's translation function; templates call it."""

    def __init__(self, gettext: Callable[[str], str]) -> None:
        self._ = gettext

    def label(self, table: Mapping[str, str], code: str) -> str:
        found = table.get(code)
        return self._(found) if found else code

    def purpose(self, code: str) -> str:
        return self.label(PURPOSE_LABELS, code)

    def scope(self, code: str) -> str:
        return self.label(SCOPE_LABELS, code)

    def status(self, code: str) -> str:
        return self.label(STATUS_LABELS, code)

    def legal_basis(self, code: str) -> str:
        return self.label(LEGAL_BASIS_LABELS, code)

    def condition(self, name: str, value: str) -> str:
        codes = "、".join(self.label(_CODES, v.strip()) for v in value.split(","))
        template = CONDITION_LABELS.get(name)
        return self._(template) % {"v": codes} if template else f"{name}={value}"

    def _described(self, text: str) -> str:
        """A condition as `Change` carries it (`name=value` or `name=[a, b]`)."""
        name, _, value = text.partition("=")
        return self.condition(name, value.strip("[]"))

    def rule(self, rule: RuleView) -> str:
        text = (f"{self.label(SOURCE_LABELS, rule['source'])} → "
                f"{self.label(TRANSFORM_LABELS, rule['transform'])}")  # fmt: skip
        if rule["sealed"]:
            text += self._("; sealed (opened only on the instructor's device)")
        for c in rule["conditions"]:
            text += self._("; only when ") + self.condition(c["name"], c["value"])
        return text

    def change(self, change: ChangeView, rules: Sequence[RuleView]) -> str:
        """`rules`: the new version's, to word a newly disclosed field as its rule."""
        kind, before, after = change["kind"], change["before"], change["after"]
        rule = next((r for r in rules if r["name"] == change["field"]), None)
        if kind == "disclosed" and rule is not None:
            after = self.rule(rule)
        elif kind == "source":
            before, after = (self.label(SOURCE_LABELS, before),
                             self.label(SOURCE_LABELS, after))  # fmt: skip
        elif kind == "transform":
            before, after = (self.label(TRANSFORM_LABELS, before),
                             self.label(TRANSFORM_LABELS, after))  # fmt: skip
        elif kind.startswith("condition"):
            before = self._described(before) if before else before
            after = self._described(after) if after else after
        elif kind == "purpose":
            before, after = self.purpose(before), self.purpose(after)
        elif kind.startswith("scope"):
            before, after = self.scope(before), self.scope(after)
        template = CHANGE_LABELS.get(kind)
        if template is None:
            return change["text"]
        return self._(template) % {"before": before, "after": after}
