"""Errors of the flows, one tree. Messages name fields and codes, never a personal value.

    FlowError                 base; `status` is the HTTP status the API answers with
    ├── NotPermitted          the caller's role may not do this at all
    ├── NotFound              no such thing, or not visible to the caller (answers the same)
    ├── Conflict              valid request that the current state does not allow
    └── InvalidInput          the request is malformed; `errors` lists (field, reason, message)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldProblem:
    field: str
    reason: str
    message: str


class FlowError(Exception):
    status = 400
    slug = "bad-request"

    def __init__(self, detail: str, errors: tuple[FieldProblem, ...] = ()) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors


class NotPermitted(FlowError):
    status = 403
    slug = "forbidden"


class NotFound(FlowError):
    status = 404
    slug = "not-found"


class Conflict(FlowError):
    status = 409
    slug = "conflict"


class InvalidInput(FlowError):
    status = 422
    slug = "validation-error"

    @classmethod
    def field(cls, field: str, reason: str, message: str) -> InvalidInput:
        return cls(f"invalid request: {field}", (FieldProblem(field, reason, message),))
