"""Policies the office publishes without a code release, and the policy set the engine uses.

Publishing (`exchange policy publish FILE`, and the console's agreements page later) checks
the document exactly as `exchange policy check` does (`policies.parse_policy`), compares it with
the version in force (the latest published version of the same policy id), refuses a change
that newly discloses anything unless the office admin confirms it, stores the document with its
hash and version (`published_policies`, write-once) and audits the publication
(`policy.publish`). A published version applies to an agreement only when an office admin moves
the agreement to it (`agreement_policies`). The shipped policies are the defaults `admin init`
publishes.

`published_set(session)` is the engine's policy set: every published version, parsed once per
process and cached by hash (a published document never changes, so the cache cannot go stale);
a database where nothing is published yet (never initialised) gets the shipped set, which is
what `admin init` would publish. A stored document that no longer hashes to its recorded
digest stops the read (fail closed).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session
from typing_extensions import TypedDict

from audit.entry import Actor, AuditEntry, DetailValue
from exchange.db import models as m
from exchange.identity import OFFICE_ADMIN, Acting
from exchange.services.auditing import SqlAuditSink, policy_ref
from exchange.services.auditing import append as audit_append
from exchange.services.errors import Conflict, FieldProblem, FlowError, InvalidInput, NotFound
from policies.diff import Change, diff_policies, introduce
from policies.document import Policy, parse_policy
from policies.engine import PolicySet
from policies.errors import PolicyLoadError
from policies.results import PolicyIdentity
from policies.shipped import shipped_paths, shipped_policies

PUBLISH = "policy.publish"
INIT_ACTOR = Actor("exchange-admin-init", "system")
_SETS_KEPT = 8


class PublishForbidden(FlowError):
    status = 403
    slug = "forbidden"


class WideningNotConfirmed(Conflict):
    """The document newly discloses something and the office admin has not confirmed it."""


class PublishedPolicyCorrupt(RuntimeError):
    """A stored policy document does not hash to its recorded digest (the table was altered)."""


@dataclass(frozen=True, slots=True)
class Proposal:
    """What publishing a document would do; nothing is written until `publish`."""

    policy: Policy
    text: str
    in_force: Policy | None  # the latest published version of the same id, if any
    changes: tuple[Change, ...]  # against `in_force` (or all a new policy discloses)
    already_published: bool

    @property
    def widens(self) -> bool:
        return any(c.widens for c in self.changes)


def _problems(exc: PolicyLoadError) -> InvalidInput:
    problems = tuple(FieldProblem(p.field or "document", "policy_invalid", str(p))
                     for p in exc.problems)  # fmt: skip
    return InvalidInput(f"invalid policy document ({len(problems)} problem(s))", problems)


def propose(session: Session, text: str, file: str = "<policy>") -> Proposal:
    """Check a document as `policy check` does and compare it with the version in force (the
    latest published version of its id; the shipped one if nothing is published yet). Refuses
    a version not above the one in force, and a change of purpose (agreements map each
    purpose to a policy)."""
    try:
        policy = parse_policy(text, file)
    except PolicyLoadError as exc:
        raise _problems(exc) from None
    ident = policy.identity
    current = published_set(session)
    in_force = current.get(ident.id) if ident.id in current else None
    same = session.scalar(select(m.PublishedPolicy.id)
                          .where(m.PublishedPolicy.sha256 == ident.sha256))  # fmt: skip
    if same is not None or (in_force is not None and in_force.identity == ident):
        return Proposal(policy, text, in_force, (), already_published=True)
    if in_force is not None:
        if ident.version <= in_force.version:
            raise Conflict(f"{ident.id} version {in_force.version} is in force; a new "
                           f"document needs a higher version (not {ident.version})")  # fmt: skip
        if policy.purpose != in_force.purpose:
            raise InvalidInput.field("purpose", "purpose_changed",
                                     f"{ident.id} is a {in_force.purpose.value} policy; "
                                     "publish another purpose under another id")  # fmt: skip
    changes = introduce(policy) if in_force is None else diff_policies(in_force, policy)
    return Proposal(policy, text, in_force, changes, already_published=False)


def _store(session: Session, policy: Policy, text: str, origin: str, by: str | None,
           now: datetime) -> None:  # fmt: skip
    ident = policy.identity
    session.add(m.PublishedPolicy(
        policy_id=ident.id, version=ident.version, purpose=policy.purpose.value,
        sha256=ident.sha256, document=text, origin=origin, published_by=by, published_at=now,
    ))  # fmt: skip
    session.flush()


def _entry(actor: Actor, now: datetime, request_id: str | None, policy: PolicyIdentity,
           purpose: str, details: dict[str, DetailValue]) -> AuditEntry:  # fmt: skip
    return AuditEntry(time=now, actor=actor, action=PUBLISH, purpose=purpose,
                      policy=policy_ref(policy), request_id=request_id, details=details)


def publish(
    session: Session, acting: Acting, proposal: Proposal, *, confirm_widening: bool = False
) -> int | None:
    """Store and audit the proposed document as an office admin; returns the audit entry's
    index (None when it was already published: nothing to do). Never commits."""
    if acting.identity.role != OFFICE_ADMIN:
        raise PublishForbidden(f"role {acting.identity.role} may not publish policies")
    if proposal.already_published:
        return None
    if proposal.widens and not confirm_widening:
        raise WideningNotConfirmed(
            "the document newly discloses something (the changes marked +); confirm to publish"
        )
    ensure_defaults(session, acting.now)  # the shipped versions first, as `admin init` does
    policy = proposal.policy
    _store(session, policy, proposal.text, "office", acting.identity.id, acting.now)
    details: dict[str, DetailValue] = {"policy.widens": proposal.widens,
                                       "policy.changes": len(proposal.changes),
                                       "policy.origin": "office"}  # fmt: skip
    if proposal.in_force is not None:
        details["policy.previous_version"] = proposal.in_force.version
    entry = _entry(acting.actor, acting.now, acting.request_id, policy.identity,
                   policy.purpose.value, {**acting.details, **details})  # fmt: skip
    return audit_append(session, SqlAuditSink(), [entry])[0]


def ensure_defaults(session: Session, now: datetime) -> list[PolicyIdentity]:
    """Publish the shipped policies not published yet (`admin init`); audited as the system.
    A shipped document whose id and version are published with other content is refused:
    a release must raise the version of a policy it changes."""
    published: list[PolicyIdentity] = []
    entries: list[AuditEntry] = []
    for path in shipped_paths():
        text = path.read_text(encoding="utf-8")
        policy = parse_policy(text, str(path.name))
        ident = policy.identity
        if session.scalar(select(m.PublishedPolicy.id)
                          .where(m.PublishedPolicy.sha256 == ident.sha256)):  # fmt: skip
            continue
        if session.scalar(select(m.PublishedPolicy.id).where(
                m.PublishedPolicy.policy_id == ident.id,
                m.PublishedPolicy.version == ident.version)):  # fmt: skip
            raise Conflict(f"shipped {ident.id} version {ident.version} differs from the "
                           "published one of that version; the release must raise it")  # fmt: skip
        _store(session, policy, text, "shipped", None, now)
        entries.append(_entry(INIT_ACTOR, now, None, ident, policy.purpose.value,
                              {"policy.origin": "shipped"}))  # fmt: skip
        published.append(ident)
    if entries:
        audit_append(session, SqlAuditSink(), entries)
    return published


# -- the engine's set, cached by hash --------------------------------------------------------


class _Cache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.policies: dict[str, Policy] = {}
        self.sets: OrderedDict[tuple[str, ...], PolicySet] = OrderedDict()
        # per database: (rows published, their set)
        self.latest: dict[str, tuple[int, PolicySet]] = {}


_CACHE = _Cache()
_TABLE = cast(Table, m.PublishedPolicy.__table__)
_COUNT = select(func.count()).select_from(_TABLE)


def _verified(row: m.PublishedPolicy) -> Policy:
    """The stored document parsed, refused unless it still hashes to its recorded digest."""
    try:
        policy = parse_policy(row.document, f"published {row.policy_id}@{row.version}")
    except PolicyLoadError:
        raise PublishedPolicyCorrupt(f"published {row.policy_id}@{row.version} no longer "
                                     "parses; the table was altered") from None  # fmt: skip
    if policy.identity.sha256 != row.sha256 or policy.identity.reference != (
            f"{row.policy_id}@{row.version}"):  # fmt: skip
        raise PublishedPolicyCorrupt(f"published {row.policy_id}@{row.version} does not hash "
                                     "to its recorded digest; the table was altered")  # fmt: skip
    return policy


def _parse_stored(row: m.PublishedPolicy) -> Policy:
    with _CACHE.lock:
        cached = _CACHE.policies.get(row.sha256)
    if cached is not None:
        return cached  # parsed and verified from a row with this hash before
    policy = _verified(row)
    with _CACHE.lock:
        _CACHE.policies[row.sha256] = policy
    return policy


def published_set(session: Session) -> PolicySet:
    """Every published version as one set (shipped defaults if nothing is published yet).

    The table only grows (the database refuses updates and deletes), so in one database its
    row count names its content: one `count(*)` per call (about 60 us on SQLite here, against
    about 380 us for reading the hashes) decides whether the cached set is current; a new count
    reads the hashes and parses only documents not seen before."""
    count = session.execute(_COUNT).scalar_one()
    if count == 0:
        return shipped_policies()
    database = session.get_bind().engine.url.render_as_string(hide_password=True)
    with _CACHE.lock:
        latest = _CACHE.latest.get(database)
        if latest is not None and latest[0] == count:
            return latest[1]
    hashes = tuple(sorted(session.execute(select(_TABLE.c.sha256)).scalars()))
    with _CACHE.lock:
        found = _CACHE.sets.get(hashes)
        missing = [h for h in hashes if h not in _CACHE.policies]
    if found is None:
        if missing:
            for row in session.scalars(
                select(m.PublishedPolicy).where(m.PublishedPolicy.sha256.in_(missing))
            ):
                _parse_stored(row)
        with _CACHE.lock:
            found = PolicySet(_CACHE.policies[h] for h in hashes)
    with _CACHE.lock:
        _CACHE.sets[hashes] = found
        _CACHE.sets.move_to_end(hashes)
        while len(_CACHE.sets) > _SETS_KEPT:
            _CACHE.sets.popitem(last=False)
        _CACHE.latest[database] = (len(hashes), found)
        while len(_CACHE.latest) > _SETS_KEPT:
            _CACHE.latest.pop(next(iter(_CACHE.latest)))
    return found


# -- reading --------------------------------------------------------------------------------


def by_hash(session: Session, sha256: str) -> m.PublishedPolicy:
    row = None
    if len(sha256) == 64:
        wanted = m.PublishedPolicy.sha256 == sha256.lower()
        row = session.scalars(select(m.PublishedPolicy).where(wanted)).first()
    if row is None:
        raise NotFound("no published policy has that hash")
    _verified(row)  # served only if it still is the document its hash names
    return row


def usage(session: Session) -> dict[tuple[str, int], list[tuple[str, str]]]:
    """(policy id, version) -> [(agreement reference, purpose)] of agreements not terminated."""
    rows = session.execute(
        select(m.AgreementPurpose.policy_id, m.AgreementPurpose.policy_version,
               m.Agreement.reference, m.AgreementPurpose.purpose)
        .join(m.Agreement, m.Agreement.id == m.AgreementPurpose.agreement_id)
        .where(m.Agreement.status != "terminated")
        .order_by(m.Agreement.reference, m.AgreementPurpose.purpose)
    )  # fmt: skip
    out: dict[tuple[str, int], list[tuple[str, str]]] = {}
    for policy_id, version, reference, purpose in rows:
        out.setdefault((policy_id, version), []).append((reference, purpose))
    return out


def listing(session: Session) -> Sequence[m.PublishedPolicy]:
    return session.scalars(select(m.PublishedPolicy).order_by(
        m.PublishedPolicy.policy_id, m.PublishedPolicy.version)).all()  # fmt: skip


class AgreementUse(TypedDict):
    reference: str
    purpose: str


class PublishedView(TypedDict):
    id: str
    version: int
    purpose: str
    sha256: str
    origin: str
    published_at: str
    published_by: str | None
    agreements: list[AgreementUse]


class PublishedDocument(PublishedView):
    document: str  # the TOML text exactly as published


class PublishedList(TypedDict):
    items: list[PublishedView]


def _view(row: m.PublishedPolicy, users: list[tuple[str, str]]) -> PublishedView:
    return PublishedView(
        id=row.policy_id, version=row.version, purpose=row.purpose, sha256=row.sha256,
        origin=row.origin, published_at=row.published_at.isoformat(),
        published_by=row.published_by,
        agreements=[AgreementUse(reference=ref, purpose=purpose) for ref, purpose in users],
    )  # fmt: skip


def list_view(session: Session) -> PublishedList:
    """Every published version, by id then version, with the agreements on it."""
    used = usage(session)
    return PublishedList(items=[_view(row, used.get((row.policy_id, row.version), []))
                                for row in listing(session)])  # fmt: skip


def document_view(session: Session, sha256: str) -> PublishedDocument:
    """One published version with its document, re-verified against its hash."""
    row = by_hash(session, sha256)
    users = usage(session).get((row.policy_id, row.version), [])
    return PublishedDocument(**_view(row, users), document=row.document)
