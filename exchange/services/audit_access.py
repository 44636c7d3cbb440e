"""The office flows' side of the audit log: appending their entries in the current transaction
for whoever is acting (`exchange.identity.Acting`), and the auditor's read-only views
(checkpoint, entries, proofs, cosignatures).

What an auditor's read leaves in the log (docs/audit.md, "What reading the log leaves in it"):
a search of entries, which shows pseudonyms, agreements and who did what, appends one
`audit.read` entry *after* the page was read, naming the tree size it read and its filters; the
page covers exactly the entries below that tree size. A checkpoint, the verifier key and the
proofs show tree sizes and hashes only, which C2SP treats as public; they append nothing, so
fetching a checkpoint never moves the head it signs, and a checkpoint then the entries are one
consistent picture (the page's `tree_size` is the checkpoint's, unless the office wrote
between the two calls; then a consistency proof links them). A cosignature is a write, audited.

Entries carry names, codes and pseudonyms only (audit.entry refuses anything else).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NotRequired, cast

from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from audit.entry import AuditEntry, DetailValue, KeyEvent, Outcome, Subject
from audit.errors import AuditError, NotFoundError
from audit.note import Signer
from audit.store import AuditLog, EntryFilter
from exchange.identity import Acting
from exchange.services.auditing import SqlAuditSink
from exchange.services.auditing import append as audit_append
from exchange.services.bounds import MAX_SQL_INT
from exchange.services.errors import FieldErrors, InvalidInput, NotFound
from exchange.services.log_origin import require_origin
from keys.keyring import Keyring

AUDIT_READ = "audit.read"
MAX_PAGE = 1000


def record(
    session: Session,
    acting: Acting,
    action: str,
    *,
    subjects: Sequence[Subject] = (),
    agreement: str | None = None,
    key: KeyEvent | None = None,
    outcome: Outcome | None = None,
    details: Mapping[str, DetailValue] | None = None,
) -> int:
    """Append one entry for `acting` in the current transaction; returns its index.
    Fails closed: any failure is `auditing.AuditUnavailable` and the transaction rolls back.
    `details`: names and codes of what was asked and counted (audit.entry), never a value."""
    entry = AuditEntry(
        time=acting.now,
        actor=acting.actor,
        action=action,
        subjects=tuple(subjects),
        agreement=agreement,
        key=key,
        request_id=acting.request_id,
        outcome=outcome or Outcome(),
        details={**acting.details, **(details or {})},
    )
    return audit_append(session, SqlAuditSink(), [entry])[0]


def lookup_reference(keyring: Keyring, field: str, value: str) -> str:
    """The keyed reference of a looked-up value (an ID number, a phone): the audit pseudonym
    key over a text no resident id can equal (ids are UUIDs), so the office can recompute it
    for a value it holds; nobody without the key can test a guess."""
    return keyring.audit_pseudonym(f"lookup/{field}/{value}")


def subject(keyring: Keyring, resident_id: str, **extra: object) -> Subject:
    """The audit subject of a resident: her audit pseudonym, never her id."""
    return Subject(pseudonym=keyring.audit_pseudonym(resident_id), **extra)  # type: ignore[arg-type]


# -- the auditor's reads ------------------------------------------------------------------


def log_signer(keyring: Keyring) -> Signer:
    """The audit log's checkpoint signer: the keyring's current audit key, under its name
    (one place, so the API, the schedule and the CLI always sign alike)."""
    return Signer(keyring.audit_key_name, keyring.audit_signing_key())


def audit_log(session: Session, keyring: Keyring, acting: Acting) -> AuditLog:
    require_origin(session, keyring.audit_key_name)  # never sign under another origin
    return AuditLog(session, signer=log_signer(keyring), clock=lambda: acting.now)


def checkpoint_note(session: Session, keyring: Keyring, acting: Acting) -> str:
    """The signed checkpoint of the current head (issued now if none covers it). Appends no
    entry: it shows a size and a root hash only, and the checkpoint covers the log's head."""
    return audit_log(session, keyring, acting).issue_checkpoint().note


def vkey(session: Session, keyring: Keyring, acting: Acting) -> str:
    return audit_log(session, keyring, acting).vkey()


@dataclass(frozen=True, slots=True)
class EntryQuery:
    actor: str | None = None
    action: str | None = None
    pseudonym: str | None = None
    agreement: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after: int = -1
    limit: int = 100
    tree_size: int | None = None  # read the log as of this size (a checkpoint's), not the head

    def filters(self) -> dict[str, DetailValue]:
        """The filters given, for the read's own audit entry (identifiers and names only)."""
        named = {"actor": self.actor, "action": self.action, "pseudonym": self.pseudonym,
                 "agreement": self.agreement, "outcome": self.outcome}  # fmt: skip
        out: dict[str, DetailValue] = {f"filter.{k}": v for k, v in named.items() if v}
        if self.since is not None or self.until is not None:
            out["filter.time"] = True
        return out


# -- the JSON an entry reads as (audit.entry.to_json; docs/audit.md) ---------------------------


class ActorJson(TypedDict):
    id: str
    role: str


class PolicyJson(TypedDict):
    id: str
    version: str
    digest: str


class WithheldJson(TypedDict):
    field: str
    reason: str


class SubjectJson(TypedDict):
    pseudonym: str
    case: str | None
    disclosed: list[str]
    withheld: list[WithheldJson]
    consents: list[str]


class KeyJson(TypedDict):
    id: str
    version: int
    type: str


class OutcomeJson(TypedDict):
    result: str
    reason: str | None


class EntryJson(TypedDict):
    v: int
    index: int
    time: str
    actor: ActorJson
    action: str
    agreement: str | None
    purpose: str | None
    policy: PolicyJson | None
    subjects: list[SubjectJson]
    key: KeyJson | None
    request: str | None
    outcome: OutcomeJson
    details: NotRequired[dict[str, object]]  # format v2 entries only


class EntryItem(TypedDict):
    index: int
    entry: EntryJson
    entry_b64: str  # the canonical bytes the leaf hash covers
    leaf_hash: str


class EntriesPage(TypedDict):
    tree_size: int
    items: list[EntryItem]
    next_after: int | None


class InclusionProof(TypedDict):
    index: int
    tree_size: int
    leaf_hash: str
    hashes: list[str]


class ConsistencyProof(TypedDict):
    first: int
    second: int
    hashes: list[str]


def entries(
    session: Session, keyring: Keyring, acting: Acting, query: EntryQuery
) -> EntriesPage:
    errors = FieldErrors()
    if not 1 <= query.limit <= MAX_PAGE:
        errors.add("limit", "out_of_range", f"must be 1-{MAX_PAGE}")
    if not -1 <= query.after <= MAX_SQL_INT:
        errors.add("after", "out_of_range", f"must be -1-{MAX_SQL_INT}")
    for name, value in (("since", query.since), ("until", query.until)):
        if value is not None and value.tzinfo is None:
            errors.add(name, "timezone_required", "give a UTC offset, e.g. Z")
    if not errors and query.since and query.until and query.until <= query.since:
        errors.add("until", "before_since", "must be after since")
    errors.raise_any()
    log = audit_log(session, keyring, acting)
    head = log.size()
    if query.tree_size is not None and not 0 <= query.tree_size <= head:
        raise NotFound(f"tree size {query.tree_size} is beyond the log")
    size = head if query.tree_size is None else query.tree_size
    page = log.entries(
        EntryFilter(query.actor, query.action, query.pseudonym, query.agreement, query.outcome,
                    query.since, query.until),
        after=query.after,
        limit=query.limit,
    )  # fmt: skip
    items = [cast(EntryItem, item) for item in page.items if int(str(item["index"])) < size]
    next_after = page.next_after if len(items) == len(page.items) else None
    # recorded after the page: it lands at `head` or later, outside what was read
    record(session, acting, AUDIT_READ, outcome=Outcome("ok", "audit.entries"),
           details={"read.tree_size": size, "read.items": len(items), **query.filters()})
    return {"tree_size": size, "items": items, "next_after": next_after}


def _b64(hashes: Sequence[bytes]) -> list[str]:
    return [base64.b64encode(h).decode() for h in hashes]


def inclusion(
    session: Session, keyring: Keyring, acting: Acting, index: int, tree_size: int
) -> InclusionProof:
    log = audit_log(session, keyring, acting)
    try:
        proof = log.inclusion_proof(index, tree_size)
        _, leaf = log.leaf(index)
    except NotFoundError:
        raise NotFound(f"tree size {tree_size} is beyond the log") from None
    except AuditError as exc:
        raise InvalidInput.field("index", "out_of_range", str(exc)) from None
    return {
        "index": index,
        "tree_size": tree_size,
        "leaf_hash": base64.b64encode(leaf).decode(),
        "hashes": _b64(proof.hashes),
    }


def consistency(
    session: Session, keyring: Keyring, acting: Acting, first: int, second: int
) -> ConsistencyProof:
    log = audit_log(session, keyring, acting)
    try:
        proof = log.consistency_proof(first, second)
    except NotFoundError:
        raise NotFound(f"tree size {second} is beyond the log") from None
    except AuditError as exc:
        raise InvalidInput.field("first", "out_of_range", str(exc)) from None
    return {"first": first, "second": second, "hashes": _b64(proof.hashes)}


def add_cosignature(
    session: Session, keyring: Keyring, acting: Acting, note: str, witness_vkey: str
) -> str:
    log = audit_log(session, keyring, acting)
    try:
        stored = log.add_cosignature(note, witness_vkey)
    except AuditError as exc:
        raise InvalidInput.field("note", "cosignature_invalid", str(exc)) from None
    record(session, acting, "audit.cosign", outcome=Outcome("ok", "audit.cosignature"))
    return stored.note
