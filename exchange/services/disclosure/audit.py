"""Step 4: the audit entries of one disclosure (one response), appended by the caller.

One `case.disclose` entry per agreement in the response (normally exactly one) naming every
case by audit pseudonym and case reference with the fields disclosed and withheld (reason
codes) and the consents relied on; a response that shows nothing is a denial with the first
reason. Cases whose stored data could not be read get their own `case.disclose` entry per
agreement and reason, with outcome `error`: withheld, and why, in the same response's entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from audit.entry import Action, AuditEntry, FieldNames, Outcome, Subject, Withheld
from audit.errors import AuditError
from exchange.identity import Acting
from exchange.services import auditing
from exchange.services.disclosure.evaluate import Evaluated
from exchange.services.disclosure.inputs import Unreadable
from exchange.services.errors import AuditUnavailable
from keys.keyring import Keyring
from policies.results import FieldDecision


def audit_entries(
    keyring: Keyring,
    acting: Acting,
    purpose: str,
    evaluated: Sequence[Evaluated],
    unreadable: Sequence[Unreadable] = (),
) -> list[AuditEntry]:
    try:
        return _disclosed(keyring, acting, purpose, evaluated) + _errors(
            keyring, acting, purpose, unreadable
        )
    except AuditError as exc:
        raise AuditUnavailable(type(exc).__name__) from None


def _disclosed(
    keyring: Keyring, acting: Acting, purpose: str, evaluated: Sequence[Evaluated]
) -> list[AuditEntry]:
    groups: dict[str, list[Evaluated]] = {}
    for item in evaluated:
        groups.setdefault(item.case.agreement_id, []).append(item)
    out = []
    for agreement_id, items in groups.items():
        identities = {i.evaluation.policy for i in items}
        policy = identities.pop() if len(identities) == 1 else None
        pseudonym = keyring.audit_pseudonym
        subjects = [
            Subject.naming(
                pseudonym(i.case.resident_id),
                i.case.record.case_reference,
                _field_names(i.evaluation.decisions),
                i.evaluation.consent_event_ids,
            )
            for i in items
        ]
        visible = any(i.visible for i in items)
        out.append(
            auditing.entry(
                acting,
                Action.DISCLOSE,
                subjects=subjects,
                agreement=agreement_id,
                purpose=purpose,
                policy=policy,
                denied=None if visible else _denial_reason(items),
            )
        )
    return out


@lru_cache(maxsize=1024)
def _field_names(decisions: tuple[FieldDecision, ...]) -> FieldNames:
    """The disclosed and withheld names of a decision record, checked and encoded once: the
    cases of a page share a few decision patterns (decisions hash by value)."""
    return FieldNames(
        tuple(d.field for d in decisions if d.shared),
        tuple(Withheld(d.field, d.reason.value) for d in decisions if not d.shared),
    )


def _denial_reason(items: Sequence[Evaluated]) -> str:
    for item in items:
        for decision in item.evaluation.decisions:
            if not decision.shared:
                return decision.reason.value
    return "nothing_disclosed"


def _errors(
    keyring: Keyring, acting: Acting, purpose: str, unreadable: Sequence[Unreadable]
) -> list[AuditEntry]:
    groups: dict[tuple[str, str], list[Unreadable]] = {}
    for item in unreadable:
        groups.setdefault((item.agreement_id, item.reason), []).append(item)
    return [
        AuditEntry(
            time=acting.now,
            actor=acting.actor,
            action=Action.DISCLOSE,
            subjects=tuple(
                Subject(
                    keyring.audit_pseudonym(i.resident_id),
                    keyring.case_reference(agreement_id, i.resident_id),
                )
                for i in items
            ),
            agreement=agreement_id,
            purpose=purpose,
            request_id=acting.request_id,
            outcome=Outcome("error", reason),
            details=acting.details,
        )
        for (agreement_id, reason), items in groups.items()
    ]
