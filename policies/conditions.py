"""Conditions under which a field is shared; all of a field's conditions must hold.

In a document they form the field's `when` table, e.g.
`when = { visit_booked_within_days = 7, services_any = ["mid_pregnancy"] }`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from policies.catalogue import Service, Stage
from policies.inputs import AssignmentTerms

Predicate = Callable[[Mapping[str, object], AssignmentTerms, dt.date], bool]

MAX_BOOKING_WINDOW_DAYS = 90


@dataclass(frozen=True, slots=True)
class Condition:
    """One parsed condition: its key in the `when` table and its argument."""

    name: str
    arg: int | tuple[str, ...]

    def describe(self) -> str:
        if isinstance(self.arg, int):
            return f"{self.name}={self.arg}"
        return f"{self.name}=[{', '.join(self.arg)}]"

    def predicate(self) -> Predicate:
        return _BUILDERS[self.name](self.arg)

    @property
    def reads(self) -> tuple[str, ...]:
        """The record fields the condition looks at (the others look at the assignment)."""
        return _READS.get(self.name, ())


def _booked_within(arg: int | tuple[str, ...]) -> Predicate:
    days = dt.timedelta(days=int(arg) if isinstance(arg, int) else 0)

    def holds(values: Mapping[str, object], assignment: AssignmentTerms, today: dt.date) -> bool:
        last = today + days
        return any(today <= booking.on <= last for booking in assignment.bookings)

    return holds


def _services_any(arg: int | tuple[str, ...]) -> Predicate:
    wanted = frozenset(arg) if isinstance(arg, tuple) else frozenset()

    def holds(values: Mapping[str, object], assignment: AssignmentTerms, today: dt.date) -> bool:
        return not wanted.isdisjoint(assignment.services)

    return holds


def _stage_in(arg: int | tuple[str, ...]) -> Predicate:
    wanted = frozenset(arg) if isinstance(arg, tuple) else frozenset()

    def holds(values: Mapping[str, object], assignment: AssignmentTerms, today: dt.date) -> bool:
        return values.get("episode.stage") in wanted

    return holds


_BUILDERS: dict[str, Callable[[int | tuple[str, ...]], Predicate]] = {
    "visit_booked_within_days": _booked_within,
    "services_any": _services_any,
    "stage_in": _stage_in,
}

_READS: Mapping[str, tuple[str, ...]] = {"stage_in": ("episode.stage",)}

# What each condition's argument must be: an int range, or a list drawn from a vocabulary.
INT_CONDITIONS: Mapping[str, tuple[int, int]] = {
    "visit_booked_within_days": (0, MAX_BOOKING_WINDOW_DAYS)
}
LIST_CONDITIONS: Mapping[str, frozenset[str]] = {
    "services_any": frozenset(s.value for s in Service),
    "stage_in": frozenset(s.value for s in Stage),
}
KNOWN = frozenset(_BUILDERS)
