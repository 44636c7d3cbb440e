"""Audit entries of the flows, appended inside the caller's transaction (invariant 3).

An entry names the actor, the action, the request, the agreement/purpose/policy and, per case,
the resident's *audit pseudonym* (keys/, never her identity), the case reference and the
names of the fields disclosed or withheld with their reason codes. Never a value.

`AuditSink` is the port the flows write through; `SqlAuditSink` appends to the audit store in
the same Session, so the read it records and the entry commit or roll back together. Any
failure surfaces as `AuditUnavailable` and the flow must return nothing (fail closed).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.orm import Session

from audit.entry import AuditEntry, Outcome, PolicyRef, Subject
from audit.errors import AuditError
from audit.store import append_many
from exchange.identity import Acting
from exchange.services.errors import AuditUnavailable
from policies.results import PolicyIdentity


class AuditSink(Protocol):
    def append_many(self, session: Session, entries: Sequence[AuditEntry]) -> list[int]: ...


class SqlAuditSink:
    """Appends to the audit store in the caller's Session (never commits)."""

    def append_many(self, session: Session, entries: Sequence[AuditEntry]) -> list[int]:
        return append_many(session, entries)


@dataclass
class MemoryAuditSink:
    """In-memory twin for tests: keeps what was appended; `fail=True` refuses every append."""

    entries: list[AuditEntry] = field(default_factory=list)
    fail: bool = False

    def append_many(self, session: Session, entries: Sequence[AuditEntry]) -> list[int]:
        if self.fail:
            raise AuditError("audit store unavailable (test double)")
        start = len(self.entries)
        self.entries.extend(entries)
        return list(range(start, start + len(entries)))


def policy_ref(identity: PolicyIdentity | None) -> PolicyRef | None:
    if identity is None:
        return None
    return PolicyRef(identity.id, str(identity.version), identity.sha256)


def entry(
    acting: Acting,
    action: str,
    *,
    subjects: Iterable[Subject] = (),
    agreement: str | None = None,
    purpose: str | None = None,
    policy: PolicyIdentity | None = None,
    denied: str | None = None,
) -> AuditEntry:
    """An entry; `denied` (a reason code) makes it a denial."""
    return AuditEntry(
        time=acting.now,
        actor=acting.actor,
        action=action,
        subjects=tuple(subjects),
        agreement=agreement,
        purpose=purpose,
        policy=policy_ref(policy),
        request_id=acting.request_id,
        outcome=Outcome() if denied is None else Outcome("denied", denied),
        details=acting.details,
    )


def append(session: Session, sink: AuditSink, entries: Sequence[AuditEntry]) -> list[int]:
    """Append in the current transaction; any failure is `AuditUnavailable` (fail closed)."""
    try:
        return sink.append_many(session, entries)
    except Exception as exc:  # the store's, the driver's, or an invalid entry: all fail closed
        raise AuditUnavailable(type(exc).__name__) from None
