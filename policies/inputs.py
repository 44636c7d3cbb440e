"""The engine's inputs: frozen values, valid once constructed, built by exchange/ from the DB.

Construction checks shapes and names the offending field on error, never its value; reprs
show field names only, so a record can be logged by accident without leaking anything.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import TypeVar

from policies.catalogue import RECORD_FIELDS, SOURCE_FIELDS, ConsentScope, Kind, Service, Stage
from policies.errors import EngineInputError

E = TypeVar("E", bound=StrEnum)
_STAGES = frozenset(s.value for s in Stage)


def _enum(cls: type[E], value: object, what: str) -> E:
    if type(value) is cls:  # already a member: the loader typed it once
        return value
    try:
        if not isinstance(value, str):
            raise ValueError(what)
        return cls(value)
    except ValueError:
        raise EngineInputError(f"{what}: not a known {cls.__name__}") from None


def _is_date(value: object) -> bool:
    return isinstance(value, dt.date) and not isinstance(value, dt.datetime)


def _is_str(value: object) -> bool:
    return isinstance(value, str)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_flags(value: object) -> bool:
    return isinstance(value, tuple) and all(isinstance(v, str) for v in value)


def _check_for(kind: Kind, name: str) -> Callable[[object], bool]:
    """How a value of a record field of `kind` is checked (built once per field name)."""
    if kind in (Kind.NAME, Kind.PHONE, Kind.ADDRESS_PART):
        return _is_str
    if kind is Kind.DATE:
        return _is_date
    if kind is Kind.STAGE:
        return _STAGES.__contains__
    if kind is Kind.COUNT:
        return _is_count
    if kind is Kind.FLAGS:
        return _is_flags
    if kind is Kind.SEX:
        return ("F", "M").__contains__
    if kind is Kind.FORBIDDEN:
        return _is_date if name.endswith("birth_date") else _is_str
    return lambda value: False


# record field -> its value check: one dict lookup and one call per field of a record
_CHECKS: Mapping[str, Callable[[object], bool]] = MappingProxyType(
    {name: _check_for(SOURCE_FIELDS[name].kind, name) for name in RECORD_FIELDS}
)


@dataclass(frozen=True, slots=True, repr=False)
class ResidentRecord:
    """Decrypted source values (catalogue name -> value or None) and the case pseudonym.

    `case_reference` is computed by keys/ (HMAC under the agreement's pseudonym key) and
    handed in, so the engine stays pure.
    """

    values: Mapping[str, object]
    case_reference: str

    def __post_init__(self) -> None:
        checked: dict[str, object] = {}
        checks = _CHECKS
        for name, value in self.values.items():
            check = checks.get(name)
            if check is None:
                raise EngineInputError(f"record field {name!r}: not an importable source field")
            if value is not None and not check(value):
                raise EngineInputError(f"record field {name!r}: wrong type of value")
            checked[name] = value
        if not isinstance(self.case_reference, str) or not self.case_reference:
            raise EngineInputError("case_reference: must be a non-empty string")
        object.__setattr__(self, "values", MappingProxyType(checked))

    def __repr__(self) -> str:
        return f"ResidentRecord(fields={sorted(self.values)!r}, case_reference=<redacted>)"


@dataclass(frozen=True, slots=True)
class ConsentState:
    """The resident's current consent (the fold of her consent events) for one agreement.

    `granted` maps each granted scope to the id of the consent event that granted it, so an
    evaluation can name exactly the events it relied on. child_data counts only if that grant
    was given by a guardian; exchange/ folds that before building this value.
    """

    granted: Mapping[ConsentScope, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        checked: dict[ConsentScope, str] = {}
        for scope, event_id in self.granted.items():
            key = _enum(ConsentScope, scope, "consent scope")
            if not isinstance(event_id, str) or not event_id:
                raise EngineInputError(f"consent {key.value}: event id must be a non-empty string")
            checked[key] = event_id
        object.__setattr__(self, "granted", MappingProxyType(checked))

    @property
    def scopes(self) -> frozenset[ConsentScope]:
        return frozenset(self.granted)

    def without(self, scope: ConsentScope) -> ConsentState:
        """The state after withdrawing one scope."""
        return ConsentState({s: e for s, e in self.granted.items() if s is not scope})


class AgreementStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"


@dataclass(frozen=True, slots=True)
class AgreementTerms:
    """The entrusted-processing agreement: status, period (inclusive) and purpose -> policy id."""

    id: str
    status: AgreementStatus
    valid_from: dt.date
    valid_to: dt.date
    purposes: Mapping[str, str]

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", _enum(AgreementStatus, self.status, "agreement status"))
        if not (_is_date(self.valid_from) and _is_date(self.valid_to)):
            raise EngineInputError("agreement valid_from/valid_to: must be dates")
        if self.valid_to < self.valid_from:
            raise EngineInputError("agreement valid_to: before valid_from")
        object.__setattr__(self, "purposes", MappingProxyType(dict(self.purposes)))


class AssignmentStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class Booking:
    """A booked visit for one of the assigned services."""

    service: Service
    on: dt.date

    def __post_init__(self) -> None:
        object.__setattr__(self, "service", _enum(Service, self.service, "booking service"))
        if not _is_date(self.on):
            raise EngineInputError("booking date: must be a date")


@dataclass(frozen=True, slots=True)
class AssignmentTerms:
    """A case assigned to the contractor under one agreement, with the chosen services."""

    id: str
    agreement_id: str
    status: AssignmentStatus
    services: tuple[Service, ...]
    bookings: tuple[Booking, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "status", _enum(AssignmentStatus, self.status, "assignment status")
        )
        services = tuple(_enum(Service, s, "assignment service") for s in self.services)
        if len(set(services)) != len(services):
            raise EngineInputError("assignment services: duplicated")
        if len(services) > 4:
            raise EngineInputError("assignment services: at most 4 of the 6 may be chosen")
        object.__setattr__(self, "services", services)
        for booking in self.bookings:
            if not isinstance(booking, Booking):
                raise EngineInputError("assignment bookings: must be Booking values")
            if booking.service not in services:
                raise EngineInputError("assignment bookings: service not assigned")
        object.__setattr__(self, "bookings", tuple(self.bookings))


def consent(pairs: Iterable[tuple[str, str]]) -> ConsentState:
    """Shorthand: ConsentState from (scope, event id) pairs."""
    return ConsentState({ConsentScope(s): e for s, e in pairs})
