"""The fixed, catalogue-owned derivation step: derived fields from the record and today.

Not policy-controlled: a policy may only name a derived field and a transform its kind
admits. `resident_age_band` and `infant_age_months_band` read the never-share birth dates
here, inside the engine; they yield an exact age that the catalogue's kinds let out only
through `age_band` / `infant_age_band`, so the raw date never reaches a view.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from types import MappingProxyType

Derivation = Callable[[Mapping[str, object], dt.date], object]

FULL_TERM_DAYS = 280
MAX_GESTATION_WEEKS = 44


def _date(values: Mapping[str, object], name: str) -> dt.date | None:
    value = values.get(name)
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    return None


def completed_years(born: dt.date, today: dt.date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def completed_months(born: dt.date, today: dt.date) -> int:
    return (today.year - born.year) * 12 + today.month - born.month - (today.day < born.day)


def resident_age(values: Mapping[str, object], today: dt.date) -> int | None:
    """Age in completed years from resident.birth_date; None if unknown or in the future."""
    born = _date(values, "resident.birth_date")
    if born is None or born > today:
        return None
    return completed_years(born, today)


def gestation_weeks(values: Mapping[str, object], today: dt.date) -> int | None:
    """Completed weeks of pregnancy from the due date (due = 280 days); pregnant only."""
    due = _date(values, "episode.due_date")
    if due is None or values.get("episode.stage") != "pregnant":
        return None
    weeks = (FULL_TERM_DAYS - (due - today).days) // 7
    return weeks if 0 <= weeks <= MAX_GESTATION_WEEKS else None


def delivery_month(values: Mapping[str, object], today: dt.date) -> str | None:
    """'YYYY-MM' of the delivery date; None if not delivered yet (or dated in the future)."""
    delivered = _date(values, "episode.delivery_date")
    if delivered is None or delivered > today:
        return None
    return f"{delivered.year:04d}-{delivered.month:02d}"


def infant_age_months(values: Mapping[str, object], today: dt.date) -> int | None:
    """The infant's age in completed months from child.birth_date."""
    born = _date(values, "child.birth_date")
    if born is None or born > today:
        return None
    return completed_months(born, today)


DERIVATIONS: Mapping[str, Derivation] = MappingProxyType(
    {
        "derived.resident_age_band": resident_age,
        "derived.gestation_weeks": gestation_weeks,
        "derived.delivery_month": delivery_month,
        "derived.infant_age_months_band": infant_age_months,
    }
)

# The record fields each derivation reads: a loader must supply them for the derived field to
# have a value (`policies.plan.record_fields_read`).
DERIVATION_READS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "derived.resident_age_band": ("resident.birth_date",),
        "derived.gestation_weeks": ("episode.due_date", "episode.stage"),
        "derived.delivery_month": ("episode.delivery_date",),
        "derived.infant_age_months_band": ("child.birth_date",),
    }
)
