"""Errors of the flows, one tree. Messages name fields and codes, never a personal value.

    FlowError                   base; `status` and `slug` are what the API answers with
    ├── NotPermitted            the caller's role may not do this (or not this variant of it,
    │   │                       e.g. exact statistics)
    │   └── AuditedForbidden    ... and the refusal's entry is appended (an AuditedDenial)
    ├── NotFound                no such thing, or not visible to the caller (answers the same)
    │   ├── CaseNotFound        no visible case with that reference (an AuditedDenial)
    │   └── TombstoneNotFound   no tombstone with that reference for this contractor
    ├── Conflict                valid request that the current state does not allow
    │   └── AlreadyRegistered   a registration whose ID number is registered (an AuditedDenial)
    ├── InvalidInput            the request is malformed; `errors` lists (field, reason, message)
    │   └── IdempotencyMismatch an Idempotency-Key reused for a different request
    └── AuditUnavailable        the audit entry could not be appended: nothing is returned

    AuditedDenial               mixin: a refusal whose audit entry commits before it propagates
                                (exchange.db.engine.CommitThenRaise tells the unit of work)
    AuditedRefusal              any FlowError made an AuditedDenial (answers as the original)

Field names are the request's own names, one way for every source: a body field by its path in
the body (`national_id`, `bookings.0.service`), a query, path or header parameter by its name
(`limit`, `Idempotency-Key`). `FieldErrors` collects every problem of a request before raising,
so a caller learns all of them at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from exchange.db.engine import CommitThenRaise
from exchange.services.bounds import MAX_SQL_INT


@dataclass(frozen=True, slots=True)
class FieldProblem:
    field: str
    reason: str
    message: str


class FlowError(Exception):
    status = 400
    slug = "bad-request"
    retry_after: int | None = None  # seconds, for errors worth retrying

    def __init__(self, detail: str, errors: tuple[FieldProblem, ...] = ()) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors


class AuditedDenial(FlowError, CommitThenRaise):
    """A refused read that was audited: the entry commits, then the refusal is answered."""


class AuditedRefusal(AuditedDenial):
    """Any refusal made an audited one: answers as the original (status, slug, detail, field
    problems) after its entry commits; `original` is the refusal it stands for."""

    def __init__(self, original: FlowError) -> None:
        super().__init__(original.detail, original.errors)
        self.status = original.status
        self.slug = original.slug
        self.retry_after = original.retry_after
        self.original = original


class NotPermitted(FlowError):
    status = 403
    slug = "forbidden"


class AuditedForbidden(NotPermitted, AuditedDenial):
    """A 403 whose `access.denied` entry the flow appended: it commits, then the refusal is
    answered (a 403 that is not an AuditedDenial is audited by the door's error mapping)."""


class NotFound(FlowError):
    status = 404
    slug = "not-found"


class CaseNotFound(NotFound, AuditedDenial):
    """No visible case with that reference for this contractor (deliberately uninformative)."""

    def __init__(self, detail: str = "no such case") -> None:
        super().__init__(detail)


class TombstoneNotFound(NotFound):
    """No tombstone with that reference for this contractor."""

    def __init__(self, detail: str = "no such tombstone") -> None:
        super().__init__(detail)


class Conflict(FlowError):
    status = 409
    slug = "conflict"


class AlreadyRegistered(Conflict, AuditedDenial):
    """A registration valid in every field whose ID number is already registered: one answer
    whichever community holds her (issue 14: no existence oracle beyond this one bit, which
    a unique register cannot hide, and which is audited with the ID's keyed reference)."""

    def __init__(self) -> None:
        super().__init__("this ID number cannot be registered: it is already registered; "
                         "ask the street office to check the ledger",
                         (FieldProblem("national_id", "already_registered",
                                       "is already registered"),))


class InvalidInput(FlowError):
    status = 422
    slug = "validation-error"

    @classmethod
    def field(cls, field: str, reason: str, message: str) -> InvalidInput:
        return cls(f"invalid request: {field}", (FieldProblem(field, reason, message),))


class IdempotencyMismatch(InvalidInput):
    """The Idempotency-Key was used before for a different request."""

    def __init__(self) -> None:
        reused = FieldProblem(
            "Idempotency-Key", "reused", "this key was used for a different request"
        )
        super().__init__("invalid request: Idempotency-Key", (reused,))


class AuditUnavailable(FlowError):
    """The audit entry could not be appended; the transaction rolls back, nothing is returned."""

    status = 503
    slug = "audit-unavailable"
    retry_after = 5

    def __init__(self, cause: str = "") -> None:
        super().__init__("the audit log could not record this request; nothing was returned")
        self.cause = cause  # the failing error's type name, for logs


class FieldErrors:
    """Collects a request's field problems, then raises them together as one InvalidInput."""

    def __init__(self) -> None:
        self._problems: list[FieldProblem] = []

    def add(self, field: str, reason: str, message: str) -> None:
        self._problems.append(FieldProblem(field, reason, message))

    def __bool__(self) -> bool:
        return bool(self._problems)

    def fields(self) -> set[str]:
        return {p.field for p in self._problems}

    def raise_any(self) -> None:
        if self._problems:
            names = ", ".join(dict.fromkeys(p.field for p in self._problems))
            raise InvalidInput(f"invalid request: {names}", tuple(self._problems))


def check_page(limit: int, offset: int, max_page: int) -> None:
    """A page request's bounds (the API's own checks say the same; the CLI has none)."""
    errors = FieldErrors()
    if not 1 <= limit <= max_page:
        errors.add("limit", "out_of_range", f"must be 1-{max_page}")
    if not 0 <= offset <= MAX_SQL_INT:
        errors.add("offset", "out_of_range", f"must be 0-{MAX_SQL_INT}")
    errors.raise_any()
