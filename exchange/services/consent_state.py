"""A resident's current consent, read in one place: the fold of her consent events.

Consent is stored as append-only events (`exchange.services.consent` writes them). What is in
force for one agreement is their fold, in sequence order, over the events naming that agreement
or the programme: a grant adds its scopes, a withdrawal removes them, and child_data counts
only when a guardian granted it (PIPL Art. 31). Every reader folds here: assignment creation
(service_contact must be granted), a withdrawal (does the case lose service_contact?), the
consent history, and the disclosure path (the policy engine's `ConsentState` for each case of a
page, from one batched query).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from exchange.db import models as m
from policies.catalogue import ConsentScope
from policies.inputs import ConsentState

# scope code -> member: a dict lookup instead of an Enum() call per scope and event
_SCOPES = {scope.value: scope for scope in ConsentScope}


class ConsentEventRow(Protocol):
    """What the fold reads of an event: an ORM row or a Core row with these columns."""

    @property
    def id(self) -> str: ...
    @property
    def sequence(self) -> int: ...
    @property
    def agreement_id(self) -> str | None: ...
    @property
    def action(self) -> str: ...
    @property
    def scopes(self) -> Sequence[str]: ...
    @property
    def guardian(self) -> bool: ...


def fold(events: Iterable[ConsentEventRow], agreement_id: str) -> ConsentState:
    """Current consent for one agreement from the resident's events (any order); each granted
    scope maps to the event that granted it. Unknown scope codes are ignored."""
    granted: dict[ConsentScope, str] = {}
    for event in sorted(events, key=lambda e: e.sequence):
        if event.agreement_id is not None and event.agreement_id != agreement_id:
            continue
        withdraw = event.action == "withdraw"
        for name in event.scopes:
            scope = _SCOPES.get(name)
            if scope is None:
                continue
            if withdraw:
                granted.pop(scope, None)
            elif scope is not ConsentScope.CHILD_DATA or event.guardian:
                granted[scope] = event.id
    return ConsentState(granted)


def events(session: Session, resident_id: str, agreement_id: str | None) -> list[m.ConsentEvent]:
    """The resident's events in sequence order: all of them, or those that bear on one
    agreement (the agreement's own and the programme's)."""
    conds = [m.ConsentEvent.resident_id == resident_id]
    if agreement_id is not None:
        conds.append(or_(m.ConsentEvent.agreement_id == agreement_id,
                         m.ConsentEvent.programme.is_not(None)))  # fmt: skip
    return list(session.scalars(
        select(m.ConsentEvent).where(*conds).order_by(m.ConsentEvent.sequence)
    ))  # fmt: skip


def current_consent(session: Session, resident_id: str, agreement_id: str) -> dict[str, str]:
    """The resident's current consent for one agreement: scope code -> granting event id."""
    state = fold(events(session, resident_id, agreement_id), agreement_id)
    return {scope.value: event_id for scope, event_id in state.granted.items()}
