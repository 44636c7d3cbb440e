"""Closed sets of codes the schema enforces (names from helpers' shared DOMAIN vocabulary)."""

from __future__ import annotations

from typing import Final

ROLES: Final = ("office_admin", "community_cadre", "contractor", "auditor")
PURPOSES: Final = ("home_visit", "online_guidance", "class_invitation")
SERVICES: Final = (
    "mid_pregnancy",
    "late_pregnancy",
    "confinement",
    "early_education",
    "postpartum_recovery",
    "parenting",
)
SERVICES_PER_ASSIGNMENT: Final = 4
CONSENT_SCOPES: Final = ("service_contact", "pregnancy_health", "birth_health", "child_data")
CONSENT_ACTIONS: Final = ("grant", "withdraw")
CONSENT_METHODS: Final = ("paper", "phone", "wechat")
STAGES: Final = ("preparing", "pregnant", "postpartum")
AGREEMENT_STATUSES: Final = ("draft", "active", "suspended", "terminated")
ASSIGNMENT_STATUSES: Final = ("active", "revoked")
CONTRACTOR_STATUSES: Final = ("active", "inactive")
KEY_STATUSES: Final = ("active", "retired")
TOMBSTONE_REASONS: Final = (
    "consent_withdrawn",
    "assignment_revoked",
    "agreement_terminated",
    "agreement_expired",
    "erased",
)


def validate_services(services: object) -> list[str]:
    """The services of an assignment: exactly 4 distinct codes of the 6, else ValueError."""
    if not isinstance(services, list | tuple) or not all(isinstance(s, str) for s in services):
        raise ValueError("services must be a list of service codes")
    unknown = sorted(set(services) - set(SERVICES))
    if unknown:
        raise ValueError(f"unknown service code(s): {', '.join(unknown)}")
    if len(set(services)) != len(services):
        raise ValueError("services must be distinct")
    if len(services) != SERVICES_PER_ASSIGNMENT:
        raise ValueError(
            f"an assignment picks exactly {SERVICES_PER_ASSIGNMENT} services, got {len(services)}"
        )
    return list(services)
