"""A resident's requests, answered through the office (PIPL Art. 44-47).

- "Who saw my data": every disclosure of her fields, read from the audit log by her audit
  pseudonym: to whom, when, which fields, under which agreement, purpose and policy, and on
  which consents. The lookup itself is audited.
- Erasure: crypto-shred her data key (the wrapped-key row is deleted; SQLite runs with
  secure_delete and the WAL is checkpointed after commit), clear every ciphertext and the blind
  index, revoke her assignments and tombstone her case at every contractor that held it.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from audit.entry import Action, Outcome
from audit.entry import KeyEvent as AuditKeyEvent
from audit.store import AuditLog, EntryFilter
from exchange.db import models as m
from exchange.identity import Acting
from exchange.services.assignments import revoke_assignment, tombstone
from exchange.services.audit_access import (
    EntryJson,
    PolicyJson,
    SubjectJson,
    WithheldJson,
    record,
    subject,
)
from exchange.services.errors import Conflict
from exchange.services.residents import visible_resident
from keys.datakeys import WrappedKey
from keys.events import KeyEvent
from keys.keyring import Keyring
from keys.shredding import shred_data_key

DISCLOSURE_ACTIONS = frozenset({Action.DISCLOSE, Action.REVEAL})
DELETION_ACTIONS = frozenset({Action.TOMBSTONE, Action.DELETION_ACK})
_PAGE = 1000
_PERSONAL_COLUMNS = ("name", "national_id", "phone", "birth_date", "address_compound",
                     "address_building", "address_unit", "address_room",
                     "national_id_index", "phone_index")  # fmt: skip


def audit_pseudonym(session: Session, keyring: Keyring, acting: Acting, resident_id: str) -> str:
    """The resident's audit pseudonym (to search the log for her); the lookup is audited."""
    resident = visible_resident(session, acting, resident_id)
    record(session, acting, "resident.pseudonym_lookup", subjects=[subject(keyring, resident.id)])
    return keyring.audit_pseudonym(resident.id)


def _names(session: Session, principal_ids: set[str]) -> dict[str, tuple[str, str | None]]:
    if not principal_ids:
        return {}
    rows = session.execute(
        select(m.Principal.id, m.Principal.name, m.Contractor.name)
        .outerjoin(m.Contractor, m.Contractor.id == m.Principal.contractor_id)
        .where(m.Principal.id.in_(principal_ids))
    )
    return {pid: (name, contractor) for pid, name, contractor in rows}


class Recipient(TypedDict):
    principal_id: str
    principal: str | None
    role: str
    contractor: str | None


class Disclosure(TypedDict):
    audit_index: int
    time: str
    action: str
    recipient: Recipient
    agreement_id: str | None
    agreement_reference: str | None
    purpose: str | None
    policy: PolicyJson | None
    case_reference: str | None
    fields: list[str]
    withheld: list[WithheldJson]
    consents: list[str]


class Deletion(TypedDict):
    audit_index: int
    time: str
    action: str
    agreement_id: str | None
    case_reference: str | None
    reason: str | None


class DisclosureReport(TypedDict):
    resident_id: str
    audit_pseudonym: str
    disclosures: list[Disclosure]
    deletions: list[Deletion]


class Erasure(TypedDict):
    resident_id: str
    erased_at: str
    data_key_destroyed: bool
    contractors_notified: int


def disclosures(
    session: Session, keyring: Keyring, acting: Acting, resident_id: str
) -> DisclosureReport:
    """The "who saw my data" report of one resident, oldest first."""
    resident = visible_resident(session, acting, resident_id)
    pseudonym = keyring.audit_pseudonym(resident.id)
    log = AuditLog(session)
    found: list[tuple[int, EntryJson, SubjectJson]] = []
    after = -1
    while True:
        page = log.entries(EntryFilter(pseudonym=pseudonym), after=after, limit=_PAGE)
        for item in page.items:
            entry = cast(EntryJson, item["entry"])
            mine = [s for s in entry["subjects"] if s["pseudonym"] == pseudonym]
            if mine:
                found.append((int(str(item["index"])), entry, mine[0]))
        if page.next_after is None:
            break
        after = page.next_after
    agreements = {
        a.id: (a.reference, a.contractor_id)
        for a in session.scalars(select(m.Agreement).where(
            m.Agreement.id.in_({e["agreement"] for _, e, _ in found if e["agreement"]})))
    }  # fmt: skip
    people = _names(session, {e["actor"]["id"] for _, e, _ in found})
    shown: list[Disclosure] = []
    deletions: list[Deletion] = []
    for index, entry, subj in found:
        if entry["action"] in DISCLOSURE_ACTIONS and entry["outcome"]["result"] == "ok" \
                and subj["disclosed"]:  # fmt: skip
            principal, contractor = people.get(entry["actor"]["id"], (None, None))
            reference = agreements.get(entry["agreement"] or "", (None, None))[0]
            shown.append({
                "audit_index": index, "time": entry["time"], "action": entry["action"],
                "recipient": {"principal_id": entry["actor"]["id"], "principal": principal,
                              "role": entry["actor"]["role"], "contractor": contractor},
                "agreement_id": entry["agreement"], "agreement_reference": reference,
                "purpose": entry["purpose"], "policy": entry["policy"],
                "case_reference": subj["case"], "fields": subj["disclosed"],
                "withheld": subj["withheld"], "consents": subj["consents"],
            })  # fmt: skip
        elif entry["action"] in DELETION_ACTIONS:
            deletions.append({
                "audit_index": index, "time": entry["time"], "action": entry["action"],
                "agreement_id": entry["agreement"], "case_reference": subj["case"],
                "reason": entry["outcome"]["reason"],
            })  # fmt: skip
    record(session, acting, "resident.disclosure_report", subjects=[subject(keyring, resident.id)])
    return {"resident_id": resident.id, "audit_pseudonym": pseudonym,
            "disclosures": shown, "deletions": deletions}  # fmt: skip


# -- erasure ------------------------------------------------------------------------------


class _AuditKeySink:
    """keys.KeyEventSink that appends each key event to the audit log in this transaction."""

    def __init__(self, session: Session, keyring: Keyring, acting: Acting, resident_id: str):
        self._args = (session, keyring, acting, resident_id)

    def record(self, event: KeyEvent) -> None:
        session, keyring, acting, resident_id = self._args
        record(session, acting, Action.KEY_DESTROY, subjects=[subject(keyring, resident_id)],
               key=AuditKeyEvent(event.key_id, event.version, "data_key"),
               outcome=Outcome("ok", event.event.value))  # fmt: skip


def erase(session: Session, keyring: Keyring, acting: Acting, resident_id: str) -> Erasure:
    resident = visible_resident(session, acting, resident_id)
    if resident.erased_at is not None:
        raise Conflict("the resident is already erased")
    rid = resident.id
    record(session, acting, "resident.erase", subjects=[subject(keyring, rid)])

    # every contractor that ever held the case is told to delete it
    told: set[tuple[str, str]] = set()
    for assignment in session.scalars(
        select(m.Assignment).where(m.Assignment.resident_id == rid).order_by(m.Assignment.id)
    ):
        pair = (assignment.contractor_id, assignment.agreement_id)
        if assignment.status == "active":
            revoke_assignment(session, keyring, acting, assignment, "erased")
        elif pair not in told:
            tombstone(session, keyring, acting, contractor_id=pair[0], agreement_id=pair[1],
                      resident_id=rid, reason="erased")  # fmt: skip
        told.add(pair)

    # clear every ciphertext of hers, then destroy the only key that opened them
    assignment_ids = select(m.Assignment.id).where(m.Assignment.resident_id == rid)
    session.execute(update(m.ServiceRecord).where(m.ServiceRecord.assignment_id.in_(
        assignment_ids)).values(notes=None))  # fmt: skip
    session.execute(delete(m.Child).where(m.Child.resident_id == rid))
    session.execute(delete(m.MaternalEpisode).where(m.MaternalEpisode.resident_id == rid))
    session.execute(update(m.Resident).where(m.Resident.id == rid).values(
        erased_at=acting.now, updated_at=acting.now,
        **dict.fromkeys(_PERSONAL_COLUMNS)))  # fmt: skip
    key_row = session.get(m.ResidentDataKey, rid, with_for_update=True)  # waits out writers
    shredded = key_row is not None
    if key_row is not None:
        wrapped = WrappedKey.from_bytes(bytes(key_row.wrapped_key))
        session.execute(delete(m.ResidentDataKey).where(m.ResidentDataKey.resident_id == rid))
        shred_data_key(keyring, wrapped, _AuditKeySink(session, keyring, acting, rid),
                       lambda: acting.now)  # fmt: skip
    session.flush()
    session.expire_all()  # loaded rows still hold the old values in memory
    return {"resident_id": rid, "erased_at": acting.now.isoformat(), "data_key_destroyed": shredded,
            "contractors_notified": len({c for c, _ in told})}  # fmt: skip


def compact_storage(engine: Engine) -> None:
    """After an erasure commits: move the WAL into the database file and truncate it, so no
    earlier page image holding the destroyed key survives in the WAL (SQLite only; the
    database's secure_delete zeroes the freed cells). PostgreSQL needs VACUUM for dead tuples."""
    if engine.dialect.name != "sqlite":
        return
    raw = engine.raw_connection()  # outside any transaction: a checkpoint cannot run inside one
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cursor.close()
    finally:
        raw.close()
