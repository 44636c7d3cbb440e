"""The engine's outputs: the disclosed view, one decision per field, the policy identity.

Decisions and disclosures are NamedTuples: immutable, cheap to build, and the engine reuses
the decision objects it prebuilt when compiling a policy. Reprs never show values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

DisclosedValue = str | int | tuple[str, ...]


class Reason(StrEnum):
    """Why a field was shared or withheld. Stable strings: audit entries and the API use them."""

    SHARED = "shared"
    SHARED_SEALED = "shared_sealed"
    NOT_IN_POLICY = "not_in_policy"
    NEVER_SHARE = "never_share"
    DROPPED_BY_POLICY = "dropped_by_policy"
    NO_CONSENT = "no_consent"
    CONDITION_UNMET = "condition_unmet"
    NO_VALUE = "no_value"
    AGREEMENT_INACTIVE = "agreement_inactive"
    AGREEMENT_OUT_OF_DATE = "agreement_out_of_date"
    PURPOSE_NOT_AGREED = "purpose_not_agreed"
    ASSIGNMENT_REVOKED = "assignment_revoked"
    ASSIGNMENT_OTHER_AGREEMENT = "assignment_other_agreement"


class Disclosed(NamedTuple):
    """One output field as the contractor receives it (sealed: exchange/ seals it via keys/)."""

    value: DisclosedValue
    sealed: bool
    transform: str

    def __repr__(self) -> str:
        return f"Disclosed(value=<redacted>, sealed={self.sealed}, transform={self.transform!r})"


class FieldDecision(NamedTuple):
    """The decision for one output field of the policy, or for a record field no rule used.

    `detail` is a fixed, value-free explanation (the transform used, the condition unmet).
    """

    field: str
    shared: bool
    reason: Reason
    detail: str


@dataclass(frozen=True, slots=True)
class PolicyIdentity:
    """What every disclosure cites: id, version and SHA-256 of the canonical document."""

    id: str
    version: int
    sha256: str

    def __str__(self) -> str:
        return f"{self.id}@{self.version}#{self.sha256[:12]}"

    @property
    def reference(self) -> str:
        """`id@version`: how an agreement pins this exact version (see `PolicySet`)."""
        return policy_reference(self.id, self.version)


def policy_reference(policy_id: str, version: int) -> str:
    """The reference `id@version` of one version of a policy ('@' is not in the id alphabet)."""
    return f"{policy_id}@{version}"


@dataclass(frozen=True, slots=True, repr=False)
class Evaluation:
    """The result of one evaluation: what to send, and why each field was or was not sent."""

    purpose: str
    policy: PolicyIdentity | None
    view: Mapping[str, Disclosed]
    decisions: tuple[FieldDecision, ...]
    consent_event_ids: tuple[str, ...]

    @property
    def shared_fields(self) -> tuple[str, ...]:
        return tuple(d.field for d in self.decisions if d.shared)

    @property
    def withheld(self) -> tuple[FieldDecision, ...]:
        return tuple(d for d in self.decisions if not d.shared)

    def __repr__(self) -> str:
        return (
            f"Evaluation(purpose={self.purpose!r}, policy={self.policy}, "
            f"view_fields={sorted(self.view)!r}, decisions={len(self.decisions)})"
        )
