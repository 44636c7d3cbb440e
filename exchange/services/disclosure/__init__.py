"""The disclosure path: what a contractor is shown of its cases, and the audit of it.

Both the feed (`services.feed`, a page of changes) and the single-case lookup
(`services.cases`) disclose through `disclose`; the office's preview and the benchmark use
the same steps. One module per step:

    1. load inputs    rows.py    the stored rows of the page, set-based Core queries, a fixed
                                 number of them whatever the page size
                      inputs.py  each case's policy inputs, typed once; only the fields the
                                 purpose's plans read are decrypted, each data key unwrapped once
    2. evaluate       evaluate.py  each case through its policy plan (`policies.plan`)
    3. present, seal  present.py   the case views; sealed fields under one HPKE encapsulation
                                   per response and agreement
    4. audit          audit.py     one `case.disclose` entry per agreement in the response

The entries are appended in the caller's transaction (fail closed: if the append fails,
`AuditUnavailable` propagates, the unit of work rolls back and nothing is returned).

One bad row does not block a page: a case whose stored data no longer decrypts or decodes is
withheld, audited as an error with its reason in the same response's entries, logged (ids and
reason only) and counted (`exchange_disclosure_withheld_on_error_total`). If no case of a
page of several can be read, that is the keyring's fault rather than the rows': the request
fails (`Unavailable`) instead of moving the contractor's cursor past every case.

Errors: `FlowError`s of `exchange.services.errors` (`Conflict`: no usable public key to seal
to), `AuditUnavailable`, and `keys.KeysError` from a key provider.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter
from sqlalchemy.orm import Session

from exchange.identity import Acting
from exchange.logs import get_logger
from exchange.services import auditing
from exchange.services.auditing import AuditSink
from exchange.services.disclosure import rows
from exchange.services.disclosure.audit import audit_entries
from exchange.services.disclosure.evaluate import Evaluated, evaluate
from exchange.services.disclosure.inputs import (
    ENCRYPTED,
    CaseInputs,
    Unreadable,
    load,
    read_plan,
)
from exchange.services.disclosure.present import Presenter, active_public_key, needs_sealing
from exchange.services.disclosure.rows import StoredRow, page_rows
from exchange.services.errors import FlowError, InvalidInput
from keys.keyring import Keyring
from policies.catalogue import Purpose
from policies.engine import PolicySet

__all__ = [
    "ENCRYPTED",
    "WITHHELD_ON_ERROR",
    "CaseInputs",
    "Disclosure",
    "Evaluated",
    "PageUnreadable",
    "Presenter",
    "Unreadable",
    "active_public_key",
    "audit_entries",
    "case_by_id",
    "changed_cases",
    "check_purpose",
    "disclose",
    "evaluate",
    "load",
    "page_rows",
    "policy_versions",
    "read_plan",
    "StoredRow",
]

_log = get_logger("exchange.disclosure")

# Not registered anywhere by default: each app's metrics registry registers it (api/metrics).
WITHHELD_ON_ERROR = Counter(
    "exchange_disclosure_withheld_on_error",
    "Cases withheld from a contractor because their stored data could not be read, by reason",
    ("reason",),
    registry=None,
)


class PageUnreadable(FlowError):
    """No case of a page of several could be read: a keyring fault, not a bad row."""

    status = 503
    slug = "cases-unreadable"
    retry_after = 60

    def __init__(self) -> None:
        super().__init__("the cases of this page cannot be read now; the cursor did not move")


def check_purpose(purpose: str) -> str:
    try:
        return Purpose(purpose).value
    except ValueError:
        raise InvalidInput.field("purpose", "unknown", "not a known purpose") from None


def policy_versions(policies: PolicySet) -> frozenset[str]:
    """The versions loaded, as the `id@version` references agreements pin (an agreement
    pinned to another version names no policy here)."""
    return frozenset(p.identity.reference for p in policies)


def changed_cases(
    session: Session,
    policies: PolicySet,
    purpose: str,
    contractor_id: str,
    after: int,
    limit: int,
) -> list[StoredRow]:
    """The contractor's active cases after feed position `after` (at most `limit`, in feed
    order), with what `purpose`'s plans read of their residents: step 1's first query."""
    columns = read_plan(policies.reads(purpose)).columns
    return rows.changed_cases(session.connection(), columns, contractor_id, after, limit)


def case_by_id(
    session: Session, policies: PolicySet, purpose: str, assignment_id: str
) -> StoredRow | None:
    """One case (any status) with what `purpose`'s plans read of its resident."""
    columns = read_plan(policies.reads(purpose)).columns
    return rows.case_by_id(session.connection(), columns, assignment_id)


@dataclass(frozen=True, slots=True)
class Disclosure:
    """The outcome of one disclosure: the visible cases' views by assignment id, the sealing
    envelopes, the appended audit indexes and the cases withheld as unreadable."""

    views: dict[str, dict[str, Any]]
    envelopes: dict[str, str]
    audit_indexes: list[int]
    unreadable: tuple[Unreadable, ...]


def _report(unreadable: Sequence[Unreadable], contractor_id: str) -> None:
    for item in unreadable:
        WITHHELD_ON_ERROR.labels(item.reason).inc()
        _log.error(
            "case_withheld_unreadable",
            reason=item.reason,
            assignment_id=item.assignment_id,
            agreement_id=item.agreement_id,
            contractor_id=contractor_id,
        )


def disclose(
    session: Session,
    keyring: Keyring,
    sink: AuditSink,
    acting: Acting,
    contractor_id: str,
    purpose: str,
    cases: Sequence[StoredRow],
    policies: PolicySet,
) -> Disclosure:
    """Load, evaluate, present and seal, audit: `cases` (from `changed_cases` or `case_by_id`
    for this purpose; the caller's own, already scoped), audited in the current transaction."""
    loaded = load(
        session,
        keyring,
        cases,
        policies.reads(purpose),
        policy_versions=policy_versions(policies),
    )
    readable = [c for c in loaded if isinstance(c, CaseInputs)]
    unreadable = tuple(c for c in loaded if isinstance(c, Unreadable))
    if unreadable:
        _report(unreadable, contractor_id)
        if not readable and len(unreadable) > 1:
            raise PageUnreadable()
    evaluated = evaluate(readable, purpose, acting.now, policies)
    presenter = Presenter(
        active_public_key(session, contractor_id) if needs_sealing(evaluated) else None
    )
    views = {e.case.assignment_id: presenter.present(e) for e in evaluated if e.visible}
    indexes = auditing.append(
        session, sink, audit_entries(keyring, acting, purpose, evaluated, unreadable)
    )
    return Disclosure(views, presenter.envelopes, indexes, unreadable)
