"""The contractor's deletion acknowledgement of a tombstone (invariant 8), audited.

A tombstone carries only the case reference; the resident behind it is found by recomputing
the references of the contractor's assignments under the tombstone's agreement (the resident
row outlives erasure, so her audit pseudonym can still be named). Acknowledging again is
harmless and returns the first acknowledgement time.
"""

from __future__ import annotations

import hmac

from sqlalchemy import select
from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from audit.entry import Action, Subject
from exchange.db import models as m
from exchange.identity import Acting
from exchange.services import auditing
from exchange.services.auditing import AuditSink
from exchange.services.errors import TombstoneNotFound
from keys.keyring import Keyring
from keys.pseudonyms import case_reference


def _resident_of(
    session: Session, keyring: Keyring, contractor_id: str, agreement_id: str, reference: str
) -> str | None:
    key = keyring.case_key(agreement_id)
    found = None
    for resident_id in session.scalars(
        select(m.Assignment.resident_id)
        .where(
            m.Assignment.contractor_id == contractor_id,
            m.Assignment.agreement_id == agreement_id,
        )
        .distinct()
    ):
        if hmac.compare_digest(case_reference(key, resident_id), reference):
            found = resident_id
    return found


class Acknowledgement(TypedDict):
    case_reference: str
    acknowledged_at: str  # the first acknowledgement's time
    tombstones: int


def acknowledge(
    session: Session,
    keyring: Keyring,
    sink: AuditSink,
    acting: Acting,
    contractor_id: str,
    reference: str,
) -> Acknowledgement:
    """Mark every tombstone of `reference` for this contractor acknowledged; audit it."""
    rows = list(
        session.scalars(
            select(m.Tombstone)
            .where(
                m.Tombstone.contractor_id == contractor_id,
                m.Tombstone.case_reference == reference,
            )
            .order_by(m.Tombstone.seq)
        )
    )
    if not rows:
        raise TombstoneNotFound()
    newly = [row for row in rows if row.acknowledged_at is None]
    for row in newly:
        row.acknowledged_at = acting.now
    if newly:
        session.flush()
        entries = []
        for agreement_id in sorted({row.agreement_id for row in newly}):
            resident_id = _resident_of(session, keyring, contractor_id, agreement_id, reference)
            subjects = (
                [Subject(keyring.audit_pseudonym(resident_id), reference)]
                if resident_id is not None
                else []
            )
            entries.append(
                auditing.entry(
                    acting, Action.DELETION_ACK, subjects=subjects, agreement=agreement_id
                )
            )
        auditing.append(session, sink, entries)
    first = min(row.acknowledged_at for row in rows if row.acknowledged_at is not None)
    return {
        "case_reference": reference,
        "acknowledged_at": first.isoformat(),
        "tombstones": len(rows),
    }
